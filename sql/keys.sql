--
-- once_per keys, cron.release_key, concurrency keys and the job lock.
-- Waits poll with a deadline; nothing sleeps a fixed time.
--
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

\i sql/wait_for.psql

CREATE TABLE key_runs (job text, at timestamptz DEFAULT clock_timestamp());

-- the daily jobs use a zone where it is about noon now, so that no local
-- midnight falls while the test runs (Etc/GMT+N is N hours behind UTC)
SELECT format('Etc/GMT%s%s', CASE WHEN n >= 0 THEN '+' ELSE '-' END, abs(n)) AS midday
FROM (SELECT extract(hour FROM now() AT TIME ZONE 'UTC')::int - 12 AS n) s \gset

-- a job every second, once per day: one run, the key claimed, and later
-- occurrences start nothing and write nothing
SELECT cron.schedule('daily-once', '* * * * * *', $$INSERT INTO key_runs VALUES ('daily-once')$$,
                     once_per => 'day', timezone => :'midday') AS daily \gset
SELECT wait_for(format($$(SELECT state FROM cron.job_run_key WHERE jobid = %s) = 'succeeded'$$, :daily));
SELECT wait_for(format($$clock_timestamp() > (SELECT finished_at FROM cron.job_run_key WHERE jobid = %s) + interval '2.5 seconds'$$, :daily));
SELECT count(*) AS runs_of_the_day FROM key_runs WHERE job = 'daily-once';
SELECT count(*) AS rows_of_the_day FROM cron.job_run_details WHERE jobid = :daily;
SELECT k.run_key = to_char(now() AT TIME ZONE :'midday', 'YYYY-MM-DD') AS key_is_local_date,
       k.runid = r.runid AS key_names_its_run, r.run_key = k.run_key AS run_has_key,
       k.claimed_at <= r.start_time AS claimed_with_start, k.finished_at >= r.end_time AS finished
FROM cron.job_run_key k JOIN cron.job_run_details r USING (jobid)
WHERE k.jobid = :daily;

-- run_now on a claimed key is refused, naming the key
\set VERBOSITY default
SELECT run_key AS daily_key FROM cron.job_run_key WHERE jobid = :daily \gset
SELECT set_config('regress.midday', :'midday', false) IS NOT NULL AS noted;
DO $$
BEGIN
    PERFORM cron.run_now('daily-once');
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'run_now on a claimed key: % (names the key: %)', SQLSTATE,
        position(to_char(now() AT TIME ZONE current_setting('regress.midday'), 'YYYY-MM-DD') IN SQLERRM) > 0;
END $$;

-- release_key: the owner (or a superuser) frees the key; run_now then runs
CREATE ROLE regress_key_owner LOGIN;
CREATE ROLE regress_key_other LOGIN;
GRANT USAGE ON SCHEMA cron TO regress_key_owner, regress_key_other;
GRANT INSERT ON key_runs TO regress_key_owner;
SET ROLE regress_key_owner;
SELECT cron.schedule('owned-daily', '0 0 1 1 *', $$INSERT INTO key_runs VALUES ('owned-daily')$$,
                     once_per => 'day', timezone => :'midday') AS owned \gset
SELECT cron.run_now('owned-daily') AS first_manual \gset
RESET ROLE;
SELECT wait_for(format($$(SELECT state FROM cron.job_run_key WHERE jobid = %s) = 'succeeded'$$, :owned));
SELECT r.trigger, r.run_key = to_char(now() AT TIME ZONE :'midday', 'YYYY-MM-DD') AS key_of_today, k.state
FROM cron.job_run_details r JOIN cron.job_run_key k USING (jobid) WHERE r.runid = :first_manual;
SET ROLE regress_key_other;
SELECT count(*) AS keys_seen_by_other FROM cron.job_run_key WHERE jobid = :owned;
SELECT set_config('regress.owned', :'owned', false) IS NOT NULL AS noted;
DO $$
BEGIN
    PERFORM cron.release_key(current_setting('regress.owned')::bigint,
                             to_char(now() AT TIME ZONE current_setting('regress.midday'), 'YYYY-MM-DD'));
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'release_key by another role: %', SQLSTATE;
END $$;
RESET ROLE;
SET ROLE regress_key_owner;
SELECT cron.release_key(:owned, to_char(now() AT TIME ZONE :'midday', 'YYYY-MM-DD')) AS released;
SELECT cron.release_key(:owned, to_char(now() AT TIME ZONE :'midday', 'YYYY-MM-DD')) AS released_twice;
SELECT cron.run_now('owned-daily') AS second_manual \gset
RESET ROLE;
SELECT wait_for(format($$(SELECT status FROM cron.job_run_details WHERE runid = %s) = 'succeeded'$$, :second_manual));
SELECT count(*) AS owned_runs FROM key_runs WHERE job = 'owned-daily';
SELECT cron.release_key(:owned, 'no-such-key') AS released_unknown;
SELECT cron.release_key(-1, 'x');
SELECT cron.release_key(:owned, NULL);
SELECT cron.unschedule(:owned);
SELECT count(*) AS keys_after_unschedule FROM cron.job_run_key WHERE jobid = :owned;

-- a rolled-back run_now leaves the key free
BEGIN;
SELECT cron.release_key(:daily, :'daily_key');
SELECT cron.run_now(:daily) > 0 AS claimed_in_transaction;
ROLLBACK;
SELECT count(*) AS daily_key_still_claimed FROM cron.job_run_key WHERE jobid = :daily;
SELECT cron.unschedule(:daily);

-- concurrency_key: two jobs sharing a key never run at the same time
SELECT cron.schedule('shared-a', '* * * * * *', 'SELECT pg_sleep(1.5)', concurrency_key => 'nightly') AS shared_a \gset
SELECT cron.schedule('shared-b', '* * * * * *', 'SELECT pg_sleep(1.5)', concurrency_key => 'nightly') AS shared_b \gset
SELECT wait_for(format($$(SELECT count(*) FROM cron.job_run_details WHERE jobid IN (%s, %s) AND status = 'succeeded') >= 3$$, :shared_a, :shared_b));
SELECT cron.unschedule(:shared_a), cron.unschedule(:shared_b);
SELECT wait_for(format($$NOT EXISTS (SELECT 1 FROM cron.job_run_details WHERE jobid IN (%s, %s) AND status IN ('starting', 'running'))$$, :shared_a, :shared_b));
SELECT count(*) AS overlapping_pairs
FROM cron.job_run_details a JOIN cron.job_run_details b
  ON a.runid < b.runid AND a.start_time < b.end_time AND b.start_time < a.end_time
WHERE a.jobid IN (:shared_a, :shared_b) AND b.jobid IN (:shared_a, :shared_b)
  AND a.status = 'succeeded' AND b.status = 'succeeded';
SELECT DISTINCT return_message FROM cron.job_run_details
WHERE jobid IN (:shared_a, :shared_b) AND status = 'skipped' AND return_message LIKE '%concurrency%';

-- the job's lock: run_now while a run is going is skipped by the executor
SELECT cron.schedule('locked', format('@at %s', to_char(now() + interval '1 second', 'YYYY-MM-DD HH24:MI:SS+00')),
                     'SELECT pg_sleep(3)') AS locked \gset
SELECT wait_for(format($$EXISTS (SELECT 1 FROM cron.job_run_details WHERE jobid = %s AND status = 'running')$$, :locked));
SELECT cron.run_now(:locked) AS locked_manual \gset
SELECT wait_for(format($$(SELECT status FROM cron.job_run_details WHERE runid = %s) = 'skipped'$$, :locked_manual));
SELECT status, return_message = format('skipped: another run of job %s is still going', :locked) AS says_why
FROM cron.job_run_details WHERE runid = :locked_manual;
SELECT wait_for(format($$NOT EXISTS (SELECT 1 FROM cron.job_run_details WHERE jobid = %s AND status IN ('starting', 'running'))$$, :locked));
SELECT cron.unschedule(:locked);

-- pg_chime's locks are of the tag no SQL function takes (userlock), objsubid the class
SELECT cron.schedule('lock-shape', format('@at %s', to_char(now() + interval '1 second', 'YYYY-MM-DD HH24:MI:SS+00')),
                     'SELECT pg_sleep(2)', concurrency_key => 'shape') AS shape \gset
SELECT wait_for(format($$EXISTS (SELECT 1 FROM cron.job_run_details WHERE jobid = %s AND status = 'running')$$, :shape));
SELECT wait_for($$(SELECT count(*) FROM pg_locks WHERE locktype = 'userlock' AND objsubid IN (1, 2)) = 2$$);
SELECT wait_for(format($$(SELECT status FROM cron.job_run_details WHERE jobid = %s) = 'succeeded'$$, :shape));
SELECT cron.unschedule(:shape);

DROP TABLE key_runs;
REVOKE USAGE ON SCHEMA cron FROM regress_key_owner, regress_key_other;
DROP ROLE regress_key_owner;
DROP ROLE regress_key_other;
DROP FUNCTION wait_for(text, int);
