--
-- Calls as scripts written for pg_cron 1.6 make them: positional and
-- with pg_cron's argument names, pg_cron's NULL handling and error texts,
-- and pg_cron's settings.
--
CREATE FUNCTION pgc_try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    msg text;
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
    RETURN SQLSTATE || ': ' || msg;
END $$;

-- cron.schedule(schedule, command) is STRICT, as pg_cron's: NULL in, NULL out, no job
SELECT cron.schedule(NULL, 'SELECT 1') IS NULL AS null_schedule,
       cron.schedule('* * * * *', NULL) IS NULL AS null_command;
SELECT count(*) AS jobs FROM cron.job;

-- positional, as pg_cron's README writes them
SELECT cron.schedule('0 10 * * *', 'VACUUM') > 0 AS unnamed;
SELECT cron.schedule('nightly-vacuum', '0 3 * * *', 'VACUUM') AS nightly \gset
SELECT cron.schedule('nightly-vacuum', '0 4 * * *', 'VACUUM ANALYZE') = :nightly AS same_name_same_job;
SELECT schedule, command FROM cron.job WHERE jobname = 'nightly-vacuum';
SELECT cron.schedule('every-5s', '5 seconds', 'SELECT 1') > 0 AS seconds_form;
SELECT cron.schedule_in_database('in-db', '0 5 * * *', 'SELECT 1', 'postgres') > 0 AS in_database;
SELECT cron.schedule_in_database('in-db-inactive', '0 5 * * *', 'SELECT 1', 'postgres', NULL, false) > 0 AS inactive;
SELECT active FROM cron.job WHERE jobname = 'in-db-inactive';

-- with pg_cron's argument names
SELECT cron.schedule(job_name := 'named', schedule := '0 6 * * *', command := 'SELECT 2') > 0 AS named_args;
SELECT cron.schedule_in_database(job_name := 'named-db', schedule := '0 6 * * *', command := 'SELECT 2',
                                 database := 'postgres', username := current_user, active := true) > 0 AS named_db_args;
SELECT cron.alter_job(job_id := :nightly, schedule := '0 2 * * *', command := 'VACUUM',
                      database := 'postgres', username := current_user, active := true);
SELECT cron.alter_job(:nightly, '0 1 * * *', NULL, NULL, NULL, false);
SELECT schedule, command, active FROM cron.job WHERE jobid = :nightly;
SELECT cron.unschedule(job_id := :nightly);
SELECT cron.unschedule(job_name := 'named');

-- pg_cron's error texts
SELECT pgc_try($$SELECT cron.schedule(NULL, '0 6 * * *', 'SELECT 1')$$);
SELECT pgc_try($$SELECT cron.schedule('x', NULL, 'SELECT 1')$$);
SELECT pgc_try($$SELECT cron.schedule('x', '0 6 * * *', NULL)$$);
SELECT pgc_try($$SELECT cron.schedule_in_database(NULL, '0 6 * * *', 'SELECT 1', 'postgres')$$);
SELECT pgc_try($$SELECT cron.alter_job(NULL, '0 6 * * *')$$);
SELECT pgc_try(format($$SELECT cron.alter_job(%s)$$, (SELECT jobid FROM cron.job WHERE jobname = 'named-db')));
SELECT pgc_try($$SELECT cron.alter_job(424242, '0 6 * * *')$$);
SELECT pgc_try($$SELECT cron.unschedule(424242)$$);
SELECT pgc_try($$SELECT cron.unschedule('no-such-job')$$);
SELECT pgc_try($$SELECT cron.schedule('bad', '0 25 * * *', 'SELECT 1')$$);
SELECT count(*) AS bad_jobs FROM cron.job WHERE jobname = 'bad';

-- pg_cron's settings exist (cron.host and cron.use_background_workers have no effect)
SELECT name, setting FROM pg_settings
WHERE name IN ('cron.host', 'cron.use_background_workers', 'cron.launch_active_jobs',
               'cron.log_min_messages', 'cron.log_run', 'cron.log_statement',
               'cron.max_running_jobs', 'cron.enable_superuser_jobs', 'cron.database_name', 'cron.timezone')
ORDER BY name;

-- pg_cron's tables keep pg_cron's columns first, in pg_cron's order
SELECT string_agg(attname, ', ' ORDER BY attnum) FROM pg_attribute
WHERE attrelid = 'cron.job'::regclass AND attnum BETWEEN 1 AND 9;
SELECT string_agg(attname, ', ' ORDER BY attnum) FROM pg_attribute
WHERE attrelid = 'cron.job_run_details'::regclass AND attnum BETWEEN 1 AND 10;

-- the GRANT lines "Coming from pg_cron" gives
CREATE ROLE regress_pgc_user;
GRANT USAGE ON SCHEMA cron TO regress_pgc_user;
GRANT EXECUTE ON FUNCTION cron.alter_job TO regress_pgc_user;
REVOKE EXECUTE ON FUNCTION cron.alter_job FROM regress_pgc_user;
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT oid FROM pg_proc WHERE pronamespace = 'cron'::regnamespace
             AND proname IN ('schedule', 'schedule_in_database', 'unschedule', 'alter_job')
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO regress_pgc_user', f);
    END LOOP;
END $$;
SELECT p.oid::regprocedure AS granted FROM pg_proc p
WHERE p.pronamespace = 'cron'::regnamespace AND has_function_privilege('regress_pgc_user', p.oid, 'EXECUTE')
  AND p.proname IN ('schedule', 'schedule_in_database', 'unschedule', 'alter_job')
ORDER BY 1::text COLLATE "C";
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA cron FROM regress_pgc_user;
REVOKE USAGE ON SCHEMA cron FROM regress_pgc_user;
DROP ROLE regress_pgc_user;

SELECT count(cron.unschedule(jobid)) > 0 AS cleaned FROM cron.job;
DROP FUNCTION pgc_try(text);
