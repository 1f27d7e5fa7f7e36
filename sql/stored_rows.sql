--
-- Rows of cron.job the API did not write (a superuser's UPDATE, a zone
-- gone from the tz database): cron.next_runs(job_id) and cron.run_now
-- read them through the one job decoder.  A value they need that does not
-- decode is an error with the API's message; values they do not need are
-- left to the scheduler.
--
CREATE FUNCTION stored_try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    msg text; det text; hnt text;
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ': ' || msg
        || CASE WHEN det <> '' THEN E'\n  detail: ' || det ELSE '' END
        || CASE WHEN hnt <> '' THEN E'\n  hint: ' || hnt ELSE '' END;
END $$;

-- a manual run, undone: true when cron.run_now recorded one
CREATE FUNCTION stored_run_now(job bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    runid bigint;
BEGIN
    runid := cron.run_now(job);
    RAISE EXCEPTION USING ERRCODE = 'P0099', MESSAGE = 'recorded ' || (runid IS NOT NULL);
EXCEPTION WHEN SQLSTATE 'P0099' THEN
    RETURN SQLERRM;
WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- an @at far enough ahead never to run during the test
SELECT cron.schedule('stored', '@at 2030-06-01 12:00', 'SELECT 1', timezone => 'Europe/Paris') AS stored \gset
SELECT t AT TIME ZONE 'UTC' AS paris_noon FROM cron.next_runs(:stored) AS t;

-- a NULL timezone is cron.timezone (UTC here), in next_runs(job_id) as in next_runs(schedule)
UPDATE cron.job SET timezone = NULL WHERE jobid = :stored;
SELECT t AT TIME ZONE 'UTC' AS utc_noon FROM cron.next_runs(:stored) AS t;
SELECT array(SELECT cron.next_runs(:stored)) = array(SELECT cron.next_runs('@at 2030-06-01 12:00'))
    AS same_as_schedule;

-- a zone the tz database does not know: the API's error, in both functions
UPDATE cron.job SET timezone = 'Mars/Olympus_Mons' WHERE jobid = :stored;
SELECT stored_try(format('SELECT cron.next_runs(%s)', :stored));
SELECT stored_run_now(:stored);
UPDATE cron.job SET timezone = 'Europe/Paris' WHERE jobid = :stored;

-- a schedule that does not parse: next_runs says why; run_now does not read it
UPDATE cron.job SET schedule = '61 * * * *' WHERE jobid = :stored;
SELECT stored_try(format('SELECT cron.next_runs(%s)', :stored));
SELECT stored_run_now(:stored);
UPDATE cron.job SET schedule = '@at 2030-06-01 12:00' WHERE jobid = :stored;

-- a run window that does not parse: next_runs says why; run_now does not enforce it
UPDATE cron.job SET run_window = '25:00-26:00' WHERE jobid = :stored;
SELECT stored_try(format('SELECT cron.next_runs(%s)', :stored));
SELECT stored_run_now(:stored);
UPDATE cron.job SET run_window = NULL WHERE jobid = :stored;

-- intervals out of the scheduler's range: neither function reads them
UPDATE cron.job SET timeout = '1000000 days', retry_delay = '2000000000 days',
    catchup = '-1 hour' WHERE jobid = :stored;
SELECT t AT TIME ZONE 'UTC' AS still_paris_noon FROM cron.next_runs(:stored) AS t;
SELECT stored_run_now(:stored);

-- an inactive job lists nothing, but a stored value it needs is still checked
UPDATE cron.job SET active = false, timeout = NULL, retry_delay = '10 seconds',
    catchup = '1 minute' WHERE jobid = :stored;
SELECT count(*) AS inactive_lists FROM cron.next_runs(:stored);
UPDATE cron.job SET timezone = 'Nowhere/Land' WHERE jobid = :stored;
SELECT stored_try(format('SELECT cron.next_runs(%s)', :stored));

SELECT cron.unschedule(:stored);
SELECT count(*) AS runs_left FROM cron.job_run_details WHERE jobid = :stored;
DROP FUNCTION stored_try(text);
DROP FUNCTION stored_run_now(bigint);
