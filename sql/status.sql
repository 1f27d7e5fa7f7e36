--
-- cron.job_status after known runs, the payload of hooks, and the errors of
-- the hook options.  Runs are started with cron.run_now; waits poll.
--
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

DROP FUNCTION IF EXISTS wait_for(text, int);
\i sql/wait_for.psql

-- a hook job: a schedule that never fires on its own
SELECT cron.schedule('on-fail', '0 0 30 2 *', 'SELECT 1') AS onfail \gset
SELECT cron.schedule('on-ok', '0 0 30 2 *', 'SELECT 1') AS onok \gset
SELECT cron.schedule('status-job', '0 0 30 2 *', 'SELECT 1/0',
                     on_success => 'on-ok', on_failure => 'on-fail', alert_after => 2) AS sj \gset

-- a job that never ran: zeros, no last run; next_run follows next_runs
SELECT jobname, active, schedule, next_run, last_start, last_end, last_status, last_message,
       running, consecutive_failures, last_success, total_runs, total_successes, total_failures,
       avg_duration, last_duration
FROM cron.job_status WHERE jobid = :sj;
SELECT cron.schedule('hourly', '0 * * * *', 'SELECT 1') AS hourly \gset
SELECT next_run = (SELECT t FROM cron.next_runs(:hourly, 1) t) AS next_run_as_listed,
       next_run > now() AS in_the_future
FROM cron.job_status WHERE jobid = :hourly;
SELECT cron.alter_job(:hourly, active => false);
SELECT next_run IS NULL AS inactive_has_no_next_run FROM cron.job_status WHERE jobid = :hourly;

-- one failure: below alert_after, no hook yet
SELECT cron.run_now(:sj) AS r1 \gset
SELECT wait_for(format($$(SELECT total_runs FROM cron.job_status WHERE jobid = %s) = 1$$, :sj));
SELECT last_status, last_message, running, consecutive_failures, total_runs, total_successes,
       total_failures, last_success IS NULL AS never_succeeded,
       last_end >= last_start AS ordered, last_duration > interval '0' AS timed,
       avg_duration = last_duration AS avg_of_one
FROM cron.job_status WHERE jobid = :sj;
SELECT count(*) AS hook_runs FROM cron.job_run_details WHERE trigger = 'hook';

-- the second failure in a row reaches alert_after: on_failure starts with
-- the payload of the run
SELECT cron.run_now(:sj) AS r2 \gset
SELECT wait_for(format($$EXISTS (SELECT 1 FROM cron.job_run_details WHERE jobid = %s AND trigger = 'hook'
                       AND status = 'succeeded')$$, :onfail));
SELECT jsonb_pretty(payload - ARRAY['job', 'run'] || jsonb_build_object('job', (payload->'job') - 'id'::text,
       'run', (payload->'run') - ARRAY['id', 'start_time', 'end_time', 'scheduled_time']))
FROM cron.job_run_details WHERE jobid = :onfail AND trigger = 'hook';
SELECT (payload->'run'->>'id')::bigint = :r2 AS names_the_run,
       (payload->'run'->>'start_time')::timestamptz <= (payload->'run'->>'end_time')::timestamptz AS times,
       payload->'run'->>'end_time' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$' AS iso_utc,
       hook_chain = ARRAY[:sj::bigint] AS chain, attempt, command
FROM cron.job_run_details WHERE jobid = :onfail AND trigger = 'hook';

-- a success after the alert: on_success, and on_failure once more with
-- "recovered"; the statistics start a new streak
SELECT cron.alter_job(:sj, command => 'SELECT 2');
SELECT cron.run_now(:sj) AS r3 \gset
SELECT wait_for(format($$(SELECT count(*) FROM cron.job_run_details WHERE trigger = 'hook'
                       AND status = 'succeeded') = 3$$));
SELECT j.jobname, r.payload->'run'->>'status' AS status, r.payload->>'consecutive_failures' AS failures,
       r.payload->>'recovered' AS recovered
FROM cron.job_run_details r JOIN cron.job j USING (jobid) WHERE r.trigger = 'hook' ORDER BY r.runid;
SELECT wait_for(format($$(SELECT total_runs FROM cron.job_status WHERE jobid = %s) = 3$$, :sj));
SELECT last_status, last_message, running, consecutive_failures, total_runs, total_successes,
       total_failures, last_success = last_end AS last_success_is_last_end,
       avg_duration > interval '0' AS averaged
FROM cron.job_status WHERE jobid = :sj;
-- the hook jobs count their own runs
SELECT jobname, total_runs, total_successes FROM cron.job_status WHERE jobid IN (:onfail, :onok) ORDER BY jobname;

-- a success with no alert before it fires on_success only
SELECT cron.run_now(:sj) AS r4 \gset
SELECT wait_for(format($$(SELECT count(*) FROM cron.job_run_details WHERE jobid = %s AND trigger = 'hook'
                       AND status = 'succeeded') = 2$$, :onok));
SELECT count(*) AS on_fail_runs FROM cron.job_run_details WHERE jobid = :onfail;

-- the hook options: bad values are refused and change nothing
SELECT cron.schedule('x', '@daily', 'SELECT 1', on_failure => 'no-such-job');
SELECT cron.alter_job(:sj, alert_after => 0);
SELECT cron.alter_job(:sj, notify_channel => repeat('c', 64));
SELECT cron.alter_job(:sj, on_success => 'missing');
SELECT on_success, on_failure, alert_after, notify_channel FROM cron.job WHERE jobid = :sj;
-- a job may not be its own hook; '' clears a hook
SELECT cron.schedule('self', '@daily', 'SELECT 1', on_failure => 'self');
SELECT cron.alter_job(:sj, on_failure => 'status-job');
SELECT cron.alter_job(:sj, on_success => '', notify_channel => 'outcomes');
SELECT on_success, on_failure, alert_after, notify_channel FROM cron.job WHERE jobid = :sj;

SELECT cron.unschedule(jobid) FROM cron.job ORDER BY jobid;
