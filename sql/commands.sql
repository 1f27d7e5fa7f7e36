--
-- Commands run as psql runs them (SPEC 12): what users give pg_cron.
-- Each job is started with cron.run_now and waited for; each case shows
-- the run's status and return_message and what it committed.  At the
-- end, the server has not restarted and the executor still runs.
--
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

\i sql/wait_for.psql

-- the server and the scheduler as they are now
SELECT wait_for($$EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'pg_chime scheduler')$$);
CREATE TABLE up AS
SELECT pg_postmaster_start_time() AS started,
       (SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_chime scheduler') AS scheduler;
SELECT scheduler IS NOT NULL AS scheduler_up FROM up;

-- run_job(name): run the job now, wait for its end, say how it ended
CREATE PROCEDURE run_job(job text, INOUT result text DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    rid bigint;
    deadline timestamptz := clock_timestamp() + interval '90 seconds';
BEGIN
    rid := cron.run_now((SELECT jobid FROM cron.job WHERE jobname = run_job.job), true);
    COMMIT;
    LOOP
        SELECT status || ': ' || coalesce(return_message, '') INTO result
        FROM cron.job_run_details WHERE runid = rid AND status NOT IN ('starting', 'running');
        EXIT WHEN result IS NOT NULL;
        IF clock_timestamp() > deadline THEN
            result := 'still not ended after 90 s';
            EXIT;
        END IF;
        PERFORM pg_sleep(0.02);
        COMMIT;                 -- hold no snapshot: CREATE INDEX CONCURRENTLY waits for those
    END LOOP;
END $$;

-- job(name, command, ...): a job that never fires by itself
CREATE FUNCTION job(name text, command text, username text DEFAULT NULL,
                    timeout interval DEFAULT NULL) RETURNS boolean
LANGUAGE sql AS $$
    SELECT cron.schedule(name, '0 0 30 2 *', command, username => username, timeout => timeout) > 0
$$;

CREATE TABLE t (x int);
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE child (pid int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);
CREATE MATERIALIZED VIEW mv AS SELECT 1 AS id;
CREATE UNIQUE INDEX mv_id ON mv (id);
CREATE PROCEDURE batches() LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..3 LOOP
        INSERT INTO t VALUES (100 + i);
        COMMIT;
    END LOOP;
END $$;

-- statements that refuse a transaction block work alone...
SELECT job('vacuum', 'VACUUM');
CALL run_job('vacuum');
SELECT job('vacuum-analyze', 'VACUUM (ANALYZE) t');
CALL run_job('vacuum-analyze');
SELECT job('analyze', 'ANALYZE');
CALL run_job('analyze');
SELECT job('cic', 'CREATE INDEX CONCURRENTLY t_x ON t (x)');
CALL run_job('cic');
SELECT indisvalid FROM pg_index WHERE indexrelid = 't_x'::regclass;
SELECT job('reindex', 'REINDEX INDEX CONCURRENTLY t_x');
CALL run_job('reindex');
SELECT job('refresh', 'REFRESH MATERIALIZED VIEW CONCURRENTLY mv');
CALL run_job('refresh');
SELECT job('createdb', 'CREATE DATABASE chime_commands_db');
CALL run_job('createdb');
DROP DATABASE chime_commands_db;
SELECT job('alter-system', $$ALTER SYSTEM SET cron.log_statement = 'on'$$);
CALL run_job('alter-system');
ALTER SYSTEM RESET cron.log_statement;
-- ...and fail with PostgreSQL's own error inside a list, committing nothing
SELECT job('vacuum-in-list', 'INSERT INTO t VALUES (1); VACUUM');
CALL run_job('vacuum-in-list');
SELECT count(*) AS committed FROM t WHERE x = 1;

-- explicit transaction control behaves as in psql
SELECT job('begin-commit', 'BEGIN; INSERT INTO t VALUES (2); COMMIT;');
CALL run_job('begin-commit');
SELECT count(*) AS committed FROM t WHERE x = 2;
SELECT job('rollback-first', 'ROLLBACK; INSERT INTO t VALUES (3)');
CALL run_job('rollback-first');
SELECT count(*) AS committed FROM t WHERE x = 3;
SELECT job('savepoint', 'BEGIN; INSERT INTO t VALUES (5); SAVEPOINT a; INSERT INTO t VALUES (6); ROLLBACK TO a; COMMIT');
CALL run_job('savepoint');
SELECT array_agg(x ORDER BY x) AS committed FROM t WHERE x IN (5, 6);
SELECT job('commit-midway', 'INSERT INTO t VALUES (7); COMMIT; INSERT INTO t VALUES (8); SELECT 1/0');
CALL run_job('commit-midway');
SELECT array_agg(x ORDER BY x) AS committed FROM t WHERE x IN (7, 8);
-- a transaction left open is rolled back; the run says so
SELECT job('left-open', 'BEGIN; INSERT INTO t VALUES (4)');
CALL run_job('left-open');
SELECT count(*) AS committed FROM t WHERE x = 4;
-- the same executor goes on
SELECT job('after-open', 'INSERT INTO t VALUES (9)');
CALL run_job('after-open');
SELECT count(DISTINCT job_pid) AS executors, count(*) FILTER (WHERE job_pid IS NULL) AS without_pid
FROM cron.job_run_details r JOIN cron.job j USING (jobid)
WHERE j.jobname IN ('left-open', 'after-open');

-- procedures that commit, DO blocks
SELECT job('call', 'CALL batches()');
CALL run_job('call');
SELECT array_agg(x ORDER BY x) AS committed FROM t WHERE x > 100;
SELECT job('do', $x$DO $d$BEGIN INSERT INTO t VALUES (10); END$d$$x$);
CALL run_job('do');
SELECT count(*) AS committed FROM t WHERE x = 10;

-- a failure keeps DETAIL, HINT and CONTEXT, each on its own line
SELECT job('raise', $x$DO $d$BEGIN RAISE EXCEPTION 'batch % failed', 7 USING DETAIL = 'row 12 is bad', HINT = 'fix row 12'; END$d$$x$);
CALL run_job('raise');
-- a deferred constraint fails at commit: nothing of it stays
SELECT job('deferred', 'INSERT INTO child VALUES (42)');
CALL run_job('deferred');
SELECT count(*) AS committed FROM child;

-- ten million rows: nothing is kept of them, the executor's memory stays bounded
SELECT job('big', 'SELECT g FROM generate_series(1, 10000000) g');
CALL run_job('big');
SELECT (regexp_match(pg_read_file('/proc/' || job_pid || '/status'), 'VmHWM:\s+(\d+) kB'))[1]::int < 200 * 1024
       AS peak_rss_under_200mb
FROM cron.job_run_details r JOIN cron.job j USING (jobid) WHERE j.jobname = 'big';
-- a hundred thousand notices
SELECT job('notices', $x$DO $d$BEGIN FOR i IN 1..100000 LOOP RAISE NOTICE 'n %', i; END LOOP; END$d$$x$);
CALL run_job('notices');

-- nothing a run sets reaches the next run (LISTEN is refused in background workers)
CREATE ROLE chime_cmd_bob LOGIN;
GRANT USAGE ON SCHEMA cron TO chime_cmd_bob;
CREATE TABLE seen (what text, value text);
GRANT ALL ON t, seen TO chime_cmd_bob;
SELECT job('su-leaky', $$SET ROLE chime_cmd_bob; SET search_path = nowhere$$);
CALL run_job('su-leaky');
SELECT job('su-probe', $$INSERT INTO public.seen
    SELECT 'superuser', current_user || ' ' || session_user || ' ' || current_setting('search_path')$$);
CALL run_job('su-probe');
SELECT value = current_user || ' ' || current_user || ' "$user", public' AS superuser_session_clean
FROM seen WHERE what = 'superuser';
SELECT count(DISTINCT job_pid) AS executors
FROM cron.job_run_details r JOIN cron.job j USING (jobid) WHERE j.jobname IN ('su-leaky', 'su-probe');
DELETE FROM seen;
SELECT job('leaky-bob', $$SET search_path = nowhere; SET work_mem = '77MB';
    CREATE TEMP TABLE tmp_leak (x int); PREPARE leak_plan AS SELECT 1;
    SELECT pg_advisory_lock(4242); BEGIN; DECLARE leak_cursor CURSOR WITH HOLD FOR SELECT 1; COMMIT$$,
    username => 'chime_cmd_bob');
CALL run_job('leaky-bob');
SELECT job('probe', $$INSERT INTO public.seen VALUES
    ('user', current_user = session_user AND current_user = 'chime_cmd_bob'),
    ('search_path', current_setting('search_path')),
    ('work_mem', current_setting('work_mem')),
    ('temp table', (SELECT count(*) FROM pg_class WHERE relname = 'tmp_leak' AND relpersistence = 't')::text),
    ('prepared', (SELECT count(*) FROM pg_prepared_statements)::text),
    ('cursors', (SELECT count(*) FROM pg_cursors)::text),
    -- (pg_chime's own lock on the running job is a 'userlock')
    ('advisory locks', (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())::text)$$,
    username => 'chime_cmd_bob');
CALL run_job('probe');
SELECT * FROM seen ORDER BY what;
-- the same executor ran both
SELECT count(DISTINCT job_pid) AS executors
FROM cron.job_run_details r JOIN cron.job j USING (jobid) WHERE j.jobname IN ('leaky-bob', 'probe');
SELECT count(*) AS advisory_4242 FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242;

-- role and database settings apply to every run, also when set later
SELECT job('sleepy', 'SELECT pg_sleep(1.5)', username => 'chime_cmd_bob');
CALL run_job('sleepy');
ALTER ROLE chime_cmd_bob SET statement_timeout = '300ms';
CALL run_job('sleepy');
-- the job's own timeout is its statement timeout, over the role's
SELECT job('patient', 'SELECT pg_sleep(1)', username => 'chime_cmd_bob', timeout => '10 seconds');
CALL run_job('patient');
ALTER ROLE chime_cmd_bob RESET statement_timeout;
CALL run_job('sleepy');
-- a SET inside the command holds for it
SELECT job('self-timeout', $$SET statement_timeout = '100ms'; SELECT pg_sleep(1)$$);
CALL run_job('self-timeout');
-- a database setting too
DO $$BEGIN EXECUTE format('ALTER DATABASE %I SET work_mem = %L', current_database(), '3MB'); END$$;
DELETE FROM seen;
CALL run_job('probe');
SELECT value AS work_mem FROM seen WHERE what = 'work_mem';
DO $$BEGIN EXECUTE format('ALTER DATABASE %I RESET work_mem', current_database()); END$$;

-- a role dropped: its runs fail saying so; re-created, it works again
SELECT job('bob-insert', 'INSERT INTO public.t VALUES (11)', username => 'chime_cmd_bob');
CALL run_job('bob-insert');
REVOKE ALL ON t, seen FROM chime_cmd_bob;
REVOKE USAGE ON SCHEMA cron FROM chime_cmd_bob;
DROP ROLE chime_cmd_bob;
CALL run_job('bob-insert');
CREATE ROLE chime_cmd_bob LOGIN;
GRANT ALL ON t TO chime_cmd_bob;
CALL run_job('bob-insert');
SELECT count(*) AS committed FROM t WHERE x = 11;

-- success is written with the job's own commit: the row says who ran it
SELECT count(*) AS succeeded_without_pid
FROM cron.job_run_details WHERE status = 'succeeded' AND (job_pid IS NULL OR end_time IS NULL);

-- nothing took the server down, and the scheduler is the one we started with
SELECT started = pg_postmaster_start_time() AS no_restart,
       scheduler = (SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_chime scheduler') AS same_scheduler
FROM up;

SELECT bool_and(cron.unschedule(jobid)) AS all_removed FROM cron.job;
REVOKE ALL ON t FROM chime_cmd_bob;
DROP ROLE chime_cmd_bob;
