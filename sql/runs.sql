--
-- The scheduler runs SQL jobs through persistent executors and records
-- every run.  Waits poll with a deadline; nothing sleeps a fixed time.
--
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

\i sql/wait_for.psql

CREATE TABLE ticks (jobid bigint, at timestamptz DEFAULT clock_timestamp(), who name DEFAULT current_user);

-- the scheduler and its name
SELECT wait_for($$EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'pg_chime scheduler')$$);

-- a job every second: runs are recorded with the pg_cron columns and ours
SELECT cron.schedule('tick', '* * * * * *', $$INSERT INTO ticks (jobid) VALUES (1)$$) AS tick \gset
SELECT wait_for(format($$(SELECT count(*) FROM cron.job_run_details WHERE jobid = %s AND status = 'succeeded') >= 3$$, :tick));
SELECT cron.unschedule(:tick);
SELECT status, return_message, attempt, trigger, occurrences, database = current_database() AS db,
       username = current_user AS usr, command,
       job_pid IS NOT NULL AS has_pid,
       scheduled_time = date_trunc('second', scheduled_time) AS whole_second,
       start_time >= scheduled_time AS not_early,
       start_time - scheduled_time < interval '5 seconds' AS on_time,
       end_time >= start_time AS ordered,
       run_key IS NULL AS no_key, http_status IS NULL AS no_http
FROM cron.job_run_details WHERE jobid = :tick AND status = 'succeeded'
-- (the first instant may have passed before the scheduler read the new
-- job, on a busy machine: that run is a catch-up, and the later ones are not)
ORDER BY trigger = 'schedule' DESC, runid LIMIT 1;
-- one row per occurrence, each a distinct second
SELECT count(*) = count(DISTINCT scheduled_time) AS distinct_instants
FROM cron.job_run_details WHERE jobid = :tick;
-- the executor ran them: a 'pg_chime executor' with the job in its query
SELECT DISTINCT a.backend_type, a.query
FROM cron.job_run_details r JOIN pg_stat_activity a ON a.pid = r.job_pid
WHERE r.jobid = :tick;
-- what runs is what next_runs lists
SELECT count(*) = 0 AS all_listed
FROM cron.job_run_details r
WHERE r.jobid = :tick AND r.scheduled_time NOT IN
      (SELECT t FROM cron.next_runs('* * * * * *', 'UTC', r.scheduled_time - interval '1 second', 1) t);

-- errors: the message with its SQLSTATE, status failed
SELECT cron.schedule('boom', '* * * * * *', 'SELECT 1/0') AS boom \gset
SELECT wait_for(format($$EXISTS (SELECT 1 FROM cron.job_run_details WHERE jobid = %s AND status = 'failed')$$, :boom));
SELECT cron.unschedule(:boom);
SELECT DISTINCT status, return_message FROM cron.job_run_details WHERE jobid = :boom AND status <> 'running';

-- several statements run as one implicit transaction; the tag is the last one's
SELECT cron.schedule('multi', '* * * * * *',
       $$INSERT INTO ticks (jobid) VALUES (3); INSERT INTO ticks (jobid) VALUES (3); UPDATE ticks SET jobid = 4 WHERE jobid = 3$$) AS multi \gset
SELECT wait_for(format($$EXISTS (SELECT 1 FROM cron.job_run_details WHERE jobid = %s AND status = 'succeeded')$$, :multi));
SELECT cron.unschedule(:multi);
SELECT DISTINCT return_message FROM cron.job_run_details WHERE jobid = :multi AND status = 'succeeded';

-- timeout: the statement is cancelled
SELECT cron.schedule('slow', '* * * * * *', 'SELECT pg_sleep(10)', timeout => '200 milliseconds') AS slow \gset
SELECT wait_for(format($$EXISTS (SELECT 1 FROM cron.job_run_details WHERE jobid = %s AND status = 'failed')$$, :slow));
SELECT cron.unschedule(:slow);
SELECT DISTINCT return_message FROM cron.job_run_details WHERE jobid = :slow AND status = 'failed';

-- overlap 'skip': while a run is going, occurrences are recorded as skipped
SELECT cron.schedule('long', '* * * * * *', 'SELECT pg_sleep(2.5)') AS long \gset
SELECT wait_for(format($$EXISTS (SELECT 1 FROM cron.job_run_details WHERE jobid = %s AND status = 'skipped')$$, :long));
SELECT cron.unschedule(:long);
SELECT DISTINCT status, return_message FROM cron.job_run_details
WHERE jobid = :long AND status = 'skipped';
-- a skipped row stands for a streak: never two in a row
SELECT bool_and(NOT (status = 'skipped' AND prev = 'skipped')) AS one_row_per_streak,
       sum(occurrences) FILTER (WHERE status = 'skipped') >= 1 AS counted
FROM (SELECT status, occurrences, lag(status) OVER (ORDER BY runid) AS prev
      FROM cron.job_run_details WHERE jobid = :long) s;

-- @at: one run, then the job is inactive and stays listed
SELECT cron.schedule('once', format('@at %s', to_char(now() + interval '2 seconds', 'YYYY-MM-DD HH24:MI:SS+00')),
                     $$INSERT INTO ticks (jobid) VALUES (5)$$) AS once \gset
SELECT wait_for(format($$EXISTS (SELECT 1 FROM cron.job_run_details WHERE jobid = %s AND status = 'succeeded')$$, :once));
SELECT wait_for(format($$NOT (SELECT active FROM cron.job WHERE jobid = %s)$$, :once));
SELECT count(*) AS once_runs FROM cron.job_run_details WHERE jobid = :once;
SELECT count(*) AS next_runs_of_inactive FROM cron.next_runs(:once);
SELECT cron.unschedule(:once);

-- an instant that passes before the scheduling transaction commits (as
-- cron.next_runs listed it there) still runs, late, as a catch-up run
BEGIN;
SELECT cron.schedule('before-commit', format('@at %s', to_char(now() + interval '1 second', 'YYYY-MM-DD HH24:MI:SS+00')),
                     $$INSERT INTO ticks (jobid) VALUES (55)$$) AS before_commit \gset
SELECT t AS instant FROM cron.next_runs(:before_commit) AS t \gset
SELECT wait_for(format($$clock_timestamp() > %L::timestamptz + interval '1.5 seconds'$$, :'instant'));
COMMIT;
SELECT wait_for(format($$EXISTS (SELECT 1 FROM cron.job_run_details WHERE jobid = %s AND status = 'succeeded')$$, :before_commit));
SELECT status, trigger, scheduled_time = :'instant' AS nominal FROM cron.job_run_details WHERE jobid = :before_commit;
SELECT cron.unschedule(:before_commit);

-- retries: a failed attempt is made again after retry_delay, doubling,
-- with the same scheduled_time; attempt counts from 1
CREATE SEQUENCE flaky_calls;
SELECT cron.schedule('flaky', format('@at %s', to_char(now() + interval '2 seconds', 'YYYY-MM-DD HH24:MI:SS+00')),
                     $$SELECT 1 / CASE WHEN nextval('flaky_calls') < 3 THEN 0 ELSE 1 END$$,
                     max_attempts => 3, retry_delay => '1 second') AS flaky \gset
SELECT wait_for(format($$EXISTS (SELECT 1 FROM cron.job_run_details WHERE jobid = %s AND status = 'succeeded')$$, :flaky));
SELECT attempt, status, trigger, return_message FROM cron.job_run_details WHERE jobid = :flaky ORDER BY attempt;
SELECT count(DISTINCT scheduled_time) AS occurrences FROM cron.job_run_details WHERE jobid = :flaky;
-- the delays: 1 s, then 2 s, each +-10 %, give or take the scheduler's reaction
SELECT bool_and(gap >= expected * 0.9 AND gap < expected * 0.9 + 5) AS backoff
FROM (SELECT extract(epoch FROM start_time - lag(end_time) OVER (ORDER BY attempt)) AS gap,
             2 ^ (attempt - 2) AS expected, attempt
      FROM cron.job_run_details WHERE jobid = :flaky) s
WHERE attempt > 1;
SELECT cron.unschedule(:flaky);
-- an error a retry cannot change (SQLSTATE class 42) is not retried
SELECT cron.schedule('broken', format('@at %s', to_char(now() + interval '2 seconds', 'YYYY-MM-DD HH24:MI:SS+00')),
                     'SELECT * FROM no_such_table', max_attempts => 3, retry_delay => '1 second') AS broken \gset
SELECT wait_for(format($$EXISTS (SELECT 1 FROM cron.job_run_details WHERE jobid = %s AND status = 'failed')$$, :broken));
SELECT wait_for(format($$(SELECT max(end_time) FROM cron.job_run_details WHERE jobid = %s) < clock_timestamp() - interval '2.5 seconds'$$, :broken));
SELECT attempt, status, return_message FROM cron.job_run_details WHERE jobid = :broken;
SELECT cron.unschedule(:broken);
DROP SEQUENCE flaky_calls;

-- run_now: a manual run, now, whatever the schedule; it returns the runid
SELECT cron.schedule('yearly', '0 0 1 1 *', $$INSERT INTO ticks (jobid) VALUES (7)$$) AS yearly \gset
SELECT cron.run_now('yearly') AS manual_run \gset
SELECT wait_for(format($$(SELECT status FROM cron.job_run_details WHERE runid = %s) = 'succeeded'$$, :manual_run));
SELECT jobid = :yearly AS same_job, status, trigger, attempt, return_message,
       scheduled_time = start_time AS scheduled_now
FROM cron.job_run_details WHERE runid = :manual_run;
SELECT cron.run_now(:yearly) AS manual_run \gset
SELECT wait_for(format($$(SELECT status FROM cron.job_run_details WHERE runid = %s) = 'succeeded'$$, :manual_run));
SELECT count(*) AS manual_ticks FROM ticks WHERE jobid = 7;
-- outside its run_window only with ignore_window
SELECT cron.alter_job(:yearly, run_window => to_char(now() + interval '2 hours', 'HH24:00') || '-' ||
                                             to_char(now() + interval '3 hours', 'HH24:00'));
DO $$
BEGIN
    PERFORM cron.run_now('yearly');
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'run_now outside the window: %', SQLSTATE;
END $$;
SELECT cron.run_now('yearly', ignore_window => true) AS manual_run \gset
SELECT wait_for(format($$(SELECT status FROM cron.job_run_details WHERE runid = %s) = 'succeeded'$$, :manual_run));
SELECT cron.unschedule(:yearly);
-- a rolled-back run_now runs nothing
BEGIN;
SELECT cron.schedule('never', '0 0 1 1 *', $$INSERT INTO ticks (jobid) VALUES (8)$$) AS never \gset
SELECT cron.run_now('never') > 0 AS recorded;
ROLLBACK;
SELECT count(*) AS rolled_back_runs FROM cron.job_run_details WHERE jobid = :never;
-- an HTTP job runs now too: here against a port where nothing listens
SELECT cron.schedule_http('http-now', '@daily', 'http://127.0.0.1:1/nothing-here') AS http_now \gset
SELECT cron.run_now('http-now') AS http_run \gset
SELECT wait_for(format($$(SELECT status FROM cron.job_run_details WHERE runid = %s) = 'failed'$$, :http_run));
SELECT status, http_status, return_message, command FROM cron.job_run_details WHERE runid = :http_run;
SELECT cron.unschedule(:http_now);

-- a job runs as its role, in its database
CREATE ROLE regress_runner LOGIN;
GRANT USAGE ON SCHEMA cron TO regress_runner;
GRANT INSERT ON ticks TO regress_runner;
SET ROLE regress_runner;
SELECT cron.schedule('as-runner', '* * * * * *', $$INSERT INTO ticks (jobid) VALUES (6)$$) AS runner \gset
RESET ROLE;
SELECT wait_for($$EXISTS (SELECT 1 FROM ticks WHERE jobid = 6)$$);
SELECT cron.unschedule(:runner);
SELECT DISTINCT who FROM ticks WHERE jobid = 6;
SELECT DISTINCT r.username, a.usename
FROM cron.job_run_details r LEFT JOIN pg_stat_activity a ON a.pid = r.job_pid
WHERE r.jobid = :runner AND r.status = 'succeeded';

-- several executors: overlap 'allow' runs overlap, in different executors
SELECT cron.schedule('overlapping', '* * * * * *', 'SELECT pg_sleep(2.5)', overlap => 'allow') AS overlapping \gset
SELECT wait_for(format($$(SELECT count(DISTINCT job_pid) FROM cron.job_run_details
                          WHERE jobid = %s AND status = 'running') >= 2$$, :overlapping));
SELECT cron.unschedule(:overlapping);
SELECT count(*) AS skipped_when_allowed FROM cron.job_run_details WHERE jobid = :overlapping AND status = 'skipped';
-- a long run does not hold up another job of the same role
SELECT cron.schedule('hog', format('@at %s', to_char(now() + interval '1 second', 'YYYY-MM-DD HH24:MI:SS+00')),
                     'SELECT pg_sleep(4)') AS hog \gset
SELECT wait_for(format($$EXISTS (SELECT 1 FROM cron.job_run_details WHERE jobid = %s AND status = 'running')$$, :hog));
SELECT cron.schedule('quick', '* * * * * *', $$INSERT INTO ticks (jobid) VALUES (9)$$) AS quick \gset
SELECT wait_for(format($$(SELECT count(*) FROM cron.job_run_details WHERE jobid = %s AND status = 'succeeded') >= 2$$, :quick));
SELECT cron.unschedule(:quick);
SELECT (SELECT status FROM cron.job_run_details WHERE jobid = :hog) = 'running' AS hog_still_running;
SELECT wait_for(format($$(SELECT status FROM cron.job_run_details WHERE jobid = %s) = 'succeeded'$$, :hog));
SELECT cron.unschedule(:hog);

-- a superuser's own INSERT into cron.job is seen like the API's
INSERT INTO cron.job (jobname, schedule, command) VALUES ('direct', '* * * * * *', $$INSERT INTO ticks (jobid) VALUES (10)$$);
SELECT wait_for($$EXISTS (SELECT 1 FROM ticks WHERE jobid = 10)$$);
SELECT cron.unschedule('direct');

-- when everything is done, no run is left starting or running
SELECT wait_for($$NOT EXISTS (SELECT 1 FROM cron.job_run_details WHERE status IN ('starting', 'running'))$$);

DROP TABLE ticks;
REVOKE USAGE ON SCHEMA cron FROM regress_runner;
DROP FUNCTION wait_for(text, int);
