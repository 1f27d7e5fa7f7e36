/* pg_chime 1.0 -> 1.1 */

\echo Use "ALTER EXTENSION pg_chime UPDATE TO '1.1'" to load this file. \quit

-- When a failed attempt will be made again: pending retries survive a
-- restart of the scheduler or the server.
ALTER TABLE cron.job_run_details ADD COLUMN retry_at timestamptz;
CREATE INDEX job_run_details_retry_idx ON cron.job_run_details (jobid)
    WHERE retry_at IS NOT NULL;

-- A run in another database notes its last transaction before committing
-- it, so that a restarted scheduler knows whether it committed.
ALTER TABLE cron.job_run_details ADD COLUMN commit_xid xid8;

-- A run's success, written by its executor in the run's own transaction
-- (so the job's effects and the record that it ran commit together); the
-- scheduler folds these rows into job_run_details and deletes them.
CREATE TABLE cron.run_commit (
    runid           bigint NOT NULL,
    jobid           bigint NOT NULL,
    run_key         text,
    message         text NOT NULL,
    end_time        timestamptz NOT NULL,
    job_pid         int NOT NULL
);
ALTER TABLE cron.run_commit ENABLE ROW LEVEL SECURITY;

-- No DELETE for roles: it would let them LOCK the table and so stop every
-- role's runs; they prune their history with cron.delete_runs.
REVOKE DELETE ON cron.job_run_details FROM PUBLIC;

CREATE FUNCTION cron.delete_runs(before timestamptz, job_id bigint DEFAULT NULL)
    RETURNS bigint
    LANGUAGE C AS 'MODULE_PATHNAME', 'chime_delete_runs';

-- Why a job will or will not run next, in sentences (explain.c)
CREATE FUNCTION cron.explain(job_id bigint)
    RETURNS SETOF text
    LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'chime_explain';

-- Every function runs with pg_catalog first and nothing a role can create
-- in its path (the C functions also pin it for their own statements).
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid FROM pg_catalog.pg_proc p
             WHERE p.pronamespace OPERATOR(pg_catalog.=) 'cron'::pg_catalog.regnamespace
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', f);
    END LOOP;
END
$$;
