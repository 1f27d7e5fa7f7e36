--
-- cron.explain: why a job will or will not run next, one sentence a row.
--
-- pg_chime's now is placed at 2028-02-28 23:00 UTC in this session only
-- (the scheduler keeps the real clock), and the jobs that recur fire only
-- on 29 February, so the scheduler starts none of them while the test
-- runs.  Their history and keys are written here directly, with runids far
-- above the sequence's; jobids start at 1001.  So the sentences are fixed.
--
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SELECT set_config('cron.clock_skew',
                  (timestamptz '2028-02-28 23:00:00+00' - clock_timestamp())::text,
                  false) IS NOT NULL AS clock_placed;
SELECT setval('cron.jobid_seq', 1000) AS jobids_after;

-- a run row of a job, as the scheduler would have written it
CREATE FUNCTION explain_run(job bigint, run bigint, st text, scheduled timestamptz,
                            occ int DEFAULT 1, msg text DEFAULT NULL, att int DEFAULT 1,
                            retry timestamptz DEFAULT NULL, trig text DEFAULT 'schedule')
RETURNS void LANGUAGE sql AS $$
    INSERT INTO cron.job_run_details (jobid, runid, database, username, command, status,
                                      return_message, start_time, end_time, scheduled_time,
                                      attempt, trigger, occurrences, retry_at)
    SELECT j.jobid, run, j.database, j.username, j.command, st, msg,
           scheduled + interval '1 second',
           CASE WHEN st NOT IN ('starting', 'running') THEN scheduled + interval '2 seconds' END,
           scheduled, att, trig, occ, retry
    FROM cron.job j WHERE j.jobid = job
$$;

-- the next runs, and no skipped or missed occurrence
SELECT cron.schedule('leap-hourly', '0 * 29 2 *', 'SELECT 1') AS plain \gset
SELECT * FROM cron.explain(:plain);

-- what cron.explain lists is what cron.next_runs(job_id) lists
SELECT bool_and(strpos(l.line, to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) > 0)
       AND count(*) = 3 AS agrees_with_next_runs
FROM cron.next_runs(:plain, 3) t,
     (SELECT line FROM cron.explain(:plain) line WHERE line LIKE 'Next run%') l;

-- the last occurrences that did not run (the latest five) and the last failure
SELECT explain_run(:plain, 900001, 'skipped', '2024-02-29 03:00+00');
SELECT explain_run(:plain, 900002, 'missed', '2024-02-29 04:00+00', 2, 'could not start within catchup');
SELECT explain_run(:plain, 900003, 'skipped', '2024-02-29 06:00+00', 1,
                   'concurrency_key "nightly" was held by another run');
SELECT explain_run(:plain, 900004, 'missed', '2024-02-29 07:00+00', 1,
                   'could not start: the run_window had closed');
SELECT explain_run(:plain, 900005, 'skipped', '2024-02-29 08:00+00', 3, 'the previous run was still running');
SELECT explain_run(:plain, 900006, 'missed', '2024-02-29 11:00+00', 1, 'could not start within catchup');
SELECT explain_run(:plain, 900007, 'failed', '2024-02-29 12:00+00', 1,
                   E'ERROR: 22012: division by zero\nCONTEXT: SQL statement "SELECT 1/0"');
SELECT explain_run(:plain, 900008, 'succeeded', '2024-02-29 13:00+00', 1, 'SELECT 1');
SELECT * FROM cron.explain(:plain);

-- an inactive job
SELECT cron.schedule('leap-off', '0 * 29 2 *', 'SELECT 1', active => false) AS off \gset
SELECT * FROM cron.explain(:off);

-- an @at job that ran, and is now inactive (a local reading, in Paris)
SELECT cron.schedule('at-done', '@at 2028-02-28 12:00', 'SELECT 1', timezone => 'Europe/Paris',
                     active => false) AS at_done \gset
SELECT explain_run(:at_done, 900010, 'succeeded', '2028-02-28 11:00+00', 1, 'SELECT 1');
SELECT * FROM cron.explain(:at_done);

-- an @at job still to come, and one whose instant has passed
SELECT cron.schedule('at-ahead', '@at 2028-03-01 08:00+00', 'SELECT 1') AS at_ahead \gset
SELECT * FROM cron.explain(:at_ahead);
SELECT cron.alter_job(:at_ahead, schedule => '@at 2028-02-27 08:00+00');
SELECT * FROM cron.explain(:at_ahead);

-- @reboot
SELECT cron.schedule('at-start', '@reboot', 'SELECT 1') AS reboot \gset
SELECT * FROM cron.explain(:reboot);

-- a schedule that never fires, and one that never fires inside its window
SELECT cron.schedule('never', '0 0 30 2 *', 'SELECT 1') AS never \gset
SELECT * FROM cron.explain(:never);
SELECT cron.schedule('never-in-window', '0 3 29 2 *', 'SELECT 1', run_window => '09:00-17:00') AS never_window \gset
SELECT * FROM cron.explain(:never_window);

-- a window closed now (18:00 in New York), when it opens, and the
-- occurrences before it that will not start
SELECT cron.schedule('office-hours', '0 * 29 2 *', 'SELECT 1', timezone => 'America/New_York',
                     run_window => '09:00-17:00') AS win \gset
SELECT * FROM cron.explain(:win);
SELECT bool_and(strpos(l.line, to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) > 0)
       AND count(*) = 3 AS agrees_with_next_runs
FROM cron.next_runs(:win, 3) t,
     (SELECT line FROM cron.explain(:win) line WHERE line LIKE 'Next run%') l;

-- once_per: in Tokyo it is 08:00 on 29 February, the window is open; the
-- day's key is free, then claimed by a manual run
SELECT cron.schedule('tokyo-daily', '0 * 29 2 *', 'SELECT 1', timezone => 'Asia/Tokyo',
                     run_window => '06:00-12:00', once_per => 'day') AS once \gset
SELECT * FROM cron.explain(:once);
SELECT explain_run(:once, 900020, 'succeeded', '2028-02-28 22:30+00', 1, 'SELECT 1', 1, NULL, 'manual');
INSERT INTO cron.job_run_key (jobid, run_key, runid, state, claimed_at, finished_at)
VALUES (:once, '2028-02-29', 900020, 'succeeded', '2028-02-28 22:30:01+00', '2028-02-28 22:30:02+00');
SELECT * FROM cron.explain(:once);
SELECT cron.release_key(:once, '2028-02-29');
SELECT line FROM cron.explain(:once) line WHERE line LIKE 'Once per%';

-- a concurrency key held by a run of another job of the owner; that job
-- is running now, and its next occurrence is skipped if it still is
SELECT cron.schedule('shared-a', '0 * 29 2 *', 'SELECT 1', concurrency_key => 'nightly') AS shared_a \gset
SELECT cron.schedule('shared-b', '0 * 29 2 *', 'SELECT 1', concurrency_key => 'nightly') AS shared_b \gset
SELECT explain_run(:shared_a, 900030, 'running', '2028-02-28 22:50+00', 1, NULL, 1, NULL, 'manual');
SELECT * FROM cron.explain(:shared_b);
SELECT * FROM cron.explain(:shared_a);
SELECT cron.alter_job(:shared_a, overlap => 'buffer_one');
SELECT line FROM cron.explain(:shared_a) line WHERE line LIKE 'With overlap%';
SELECT cron.alter_job(:shared_a, overlap => 'allow');
SELECT line FROM cron.explain(:shared_a) line WHERE line LIKE 'With overlap%';

-- a failed attempt whose retry is pending, then one whose time is not set yet
SELECT cron.schedule('flaky', '0 * 29 2 *', 'SELECT 1', max_attempts => 3) AS flaky \gset
SELECT explain_run(:flaky, 900040, 'failed', '2028-02-28 22:40+00', 1,
                   'ERROR: 57014: canceling statement due to statement timeout', 1,
                   '2028-02-28 23:05+00', 'manual');
SELECT * FROM cron.explain(:flaky);
UPDATE cron.job_run_details SET retry_at = '-infinity' WHERE runid = 900040;
SELECT line FROM cron.explain(:flaky) line WHERE line LIKE 'Attempt%';

-- a stored value the scheduler cannot load
SELECT cron.schedule('lost-zone', '0 * 29 2 *', 'SELECT 1') AS lost \gset
UPDATE cron.job SET timezone = 'Mars/Olympus_Mons' WHERE jobid = :lost;
SELECT * FROM cron.explain(:lost);

-- rights: as cron.next_runs(job_id); another role's job is refused, its
-- own explained; a key of the same name is another role's key
CREATE ROLE regress_explain_other LOGIN;
GRANT USAGE ON SCHEMA cron TO regress_explain_other;
SET ROLE regress_explain_other;
SELECT * FROM cron.explain(:shared_b);
SELECT * FROM cron.next_runs(:shared_b);
SELECT cron.schedule('other-nightly', '0 * 29 2 *', 'SELECT 1', concurrency_key => 'nightly') AS other \gset
SELECT * FROM cron.explain(:other);
RESET ROLE;
SELECT * FROM cron.explain(-1);
SELECT * FROM cron.explain(NULL);

SELECT bool_and(cron.unschedule(jobid)) AS unscheduled FROM cron.job WHERE jobid > 1000;
DELETE FROM cron.job_run_details WHERE runid BETWEEN 900000 AND 900099;
REVOKE USAGE ON SCHEMA cron FROM regress_explain_other;
DROP ROLE regress_explain_other;
DROP FUNCTION explain_run(bigint, bigint, text, timestamptz, int, text, int, timestamptz, text);
RESET cron.clock_skew;
