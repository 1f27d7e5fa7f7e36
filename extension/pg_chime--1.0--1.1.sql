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

-- Hooks: jobs started after a run's final outcome, and notifications.
ALTER TABLE cron.job ADD COLUMN on_success text;
ALTER TABLE cron.job ADD COLUMN on_failure text;
ALTER TABLE cron.job ADD COLUMN alert_after int NOT NULL DEFAULT 1 CHECK (alert_after >= 1);
ALTER TABLE cron.job ADD COLUMN notify_channel text;
-- A schedule bounded in time, and starts spread over a jitter
ALTER TABLE cron.job ADD COLUMN start_at timestamptz;
ALTER TABLE cron.job ADD COLUMN end_at timestamptz;
ALTER TABLE cron.job ADD COLUMN jitter interval;
-- How many runs may hold a concurrency_key at once; the others wait
ALTER TABLE cron.job ADD COLUMN concurrency_limit int NOT NULL DEFAULT 1
    CHECK (concurrency_limit >= 1 AND concurrency_limit <= 64);
-- A run waiting for its concurrency_key
ALTER TABLE cron.job_run_details DROP CONSTRAINT job_run_details_status_check;
ALTER TABLE cron.job_run_details ADD CONSTRAINT job_run_details_status_check
    CHECK (status IN ('starting', 'running', 'succeeded', 'failed', 'skipped', 'missed', 'waiting'));
CREATE INDEX job_run_details_waiting_idx ON cron.job_run_details (runid) WHERE status = 'waiting';

-- A hook run: its trigger, the payload describing the run it follows, and
-- the jobs of its chain (which it never starts again).
ALTER TABLE cron.job_run_details DROP CONSTRAINT job_run_details_trigger_check;
ALTER TABLE cron.job_run_details ADD CONSTRAINT job_run_details_trigger_check
    CHECK (trigger IN ('schedule', 'catchup', 'retry', 'manual', 'hook'));
ALTER TABLE cron.job_run_details ADD COLUMN payload jsonb;
ALTER TABLE cron.job_run_details ADD COLUMN hook_chain bigint[];
-- A retry's first attempt: {{run.idempotency_key}} is the same for each
ALTER TABLE cron.job_run_details ADD COLUMN first_runid bigint;

-- What cron.job_status shows, kept by the scheduler as runs start and end
-- (not aggregated over the history, which retention deletes).  A run is
-- counted once, at its final outcome (after its last attempt).
CREATE TABLE cron.job_stats (
    jobid                bigint PRIMARY KEY,
    running              int NOT NULL DEFAULT 0,
    last_start           timestamptz,
    last_end             timestamptz,
    last_status          text,
    last_message         text,
    last_duration        interval,
    last_success         timestamptz,
    total_runs           bigint NOT NULL DEFAULT 0,
    total_successes      bigint NOT NULL DEFAULT 0,
    total_failures       bigint NOT NULL DEFAULT 0,
    total_duration       interval NOT NULL DEFAULT '0',
    consecutive_failures int NOT NULL DEFAULT 0,
    alerted              boolean NOT NULL DEFAULT false
) WITH (fillfactor = 50);
ALTER TABLE cron.job_stats ENABLE ROW LEVEL SECURITY;
CREATE POLICY cron_job_stats_policy ON cron.job_stats
    USING (EXISTS (SELECT 1 FROM cron.job j
                   WHERE j.jobid OPERATOR(pg_catalog.=) job_stats.jobid
                     AND j.username OPERATOR(pg_catalog.=) CURRENT_USER));
GRANT SELECT ON cron.job_stats TO PUBLIC;

-- The next instant a job fires (what cron.next_runs(job_id, 1) returns)
CREATE FUNCTION cron._next_run(schedule text, timezone text, run_window text, dst_gap text,
                               start_at timestamptz, end_at timestamptz, jitter interval,
                               jobid bigint)
    RETURNS timestamptz
    LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'chime_next_run_of';

-- One row per job the caller may see: its own, or all of them for a role
-- that bypasses row-level security (the rows cron.job shows it).  The
-- filter is the view's own, not the tables' policies (evaluated once, not
-- per row); security_barrier keeps the caller's functions behind it.
CREATE VIEW cron.job_status WITH (security_barrier) AS
SELECT j.jobid, j.jobname, j.username, j.active, j.schedule,
       CASE WHEN j.active THEN cron._next_run(j.schedule, j.timezone, j.run_window, j.dst_gap,
                                                 j.start_at, j.end_at, j.jitter, j.jobid) END AS next_run,
       s.last_start, s.last_end, s.last_status, s.last_message,
       GREATEST(s.running, 0) AS running,
       coalesce(s.consecutive_failures, 0) AS consecutive_failures,
       s.last_success,
       coalesce(s.total_runs, 0) AS total_runs,
       coalesce(s.total_successes, 0) AS total_successes,
       coalesce(s.total_failures, 0) AS total_failures,
       CASE WHEN s.total_runs OPERATOR(pg_catalog.>) 0
            THEN s.total_duration OPERATOR(pg_catalog./) s.total_runs::pg_catalog.float8 END AS avg_duration,
       s.last_duration
FROM cron.job j LEFT JOIN cron.job_stats s ON s.jobid OPERATOR(pg_catalog.=) j.jobid
WHERE j.username OPERATOR(pg_catalog.=) CURRENT_USER
   OR (SELECT r.rolsuper OR r.rolbypassrls FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER);
GRANT SELECT ON cron.job_status TO PUBLIC;

-- The statistics start from the history kept so far: a run is its last
-- attempt (the latest of the attempts for one occurrence of a job).
WITH attempts AS (
    SELECT r.jobid, r.status, r.return_message, r.start_time, r.end_time, r.runid,
           pg_catalog.row_number() OVER (PARTITION BY r.jobid, r.scheduled_time,
                                                      CASE WHEN r.scheduled_time IS NULL THEN r.runid END
                                         ORDER BY r.attempt DESC, r.runid DESC) AS later
    FROM cron.job_run_details r
    WHERE r.status OPERATOR(pg_catalog.=) ANY ('{succeeded,failed}'::pg_catalog.text[])
), runs AS (
    SELECT a.*, pg_catalog.row_number() OVER (PARTITION BY a.jobid
                                              ORDER BY a.end_time DESC NULLS LAST, a.runid DESC) AS latest
    FROM attempts a WHERE a.later OPERATOR(pg_catalog.=) 1
), totals AS (
    SELECT r.jobid, pg_catalog.count(*) AS total,
           pg_catalog.count(*) FILTER (WHERE r.status OPERATOR(pg_catalog.=) 'succeeded') AS successes,
           pg_catalog.max(r.end_time) FILTER (WHERE r.status OPERATOR(pg_catalog.=) 'succeeded') AS last_success,
           coalesce(pg_catalog.sum(r.end_time OPERATOR(pg_catalog.-) r.start_time), '0') AS duration
    FROM runs r GROUP BY r.jobid
)
INSERT INTO cron.job_stats (jobid, last_start, last_end, last_status, last_message, last_duration,
                            last_success, total_runs, total_successes, total_failures,
                            total_duration, consecutive_failures)
SELECT t.jobid, l.start_time, l.end_time, l.status, l.return_message,
       l.end_time OPERATOR(pg_catalog.-) l.start_time, t.last_success, t.total, t.successes,
       t.total OPERATOR(pg_catalog.-) t.successes, t.duration,
       (SELECT pg_catalog.count(*) FROM runs f
        WHERE f.jobid OPERATOR(pg_catalog.=) t.jobid AND f.status OPERATOR(pg_catalog.=) 'failed'
          AND f.end_time OPERATOR(pg_catalog.>) coalesce(t.last_success, '-infinity'))
FROM totals t
JOIN runs l ON l.jobid OPERATOR(pg_catalog.=) t.jobid AND l.latest OPERATOR(pg_catalog.=) 1
WHERE EXISTS (SELECT 1 FROM cron.job j WHERE j.jobid OPERATOR(pg_catalog.=) t.jobid);

-- The hook options of cron.schedule, cron.schedule_http and cron.alter_job
DROP FUNCTION cron.schedule(text, text, text, text, text, text, text, text, int, interval, interval,
                            interval, text, text, text, boolean);
DROP FUNCTION cron.schedule_http(text, text, text, text, jsonb, text, text, text, text, text, text,
                                 int, interval, interval, interval, text, text, text, boolean);
DROP FUNCTION cron.alter_job(bigint, text, text, text, text, boolean, text, text, text, text, text,
                             int, interval, interval, interval, text, text, text, jsonb, text);

CREATE FUNCTION cron.schedule(job_name text, schedule text, command text,
                              timezone text DEFAULT NULL,
                              run_window text DEFAULT NULL,
                              once_per text DEFAULT NULL,
                              overlap text DEFAULT NULL,
                              concurrency_key text DEFAULT NULL,
                              max_attempts int DEFAULT NULL,
                              retry_delay interval DEFAULT NULL,
                              timeout interval DEFAULT NULL,
                              catchup interval DEFAULT NULL,
                              dst_gap text DEFAULT NULL,
                              database text DEFAULT NULL,
                              username text DEFAULT NULL,
                              active boolean DEFAULT NULL,
                              on_success text DEFAULT NULL,
                              on_failure text DEFAULT NULL,
                              alert_after int DEFAULT NULL,
                              notify_channel text DEFAULT NULL,
                              start_at timestamptz DEFAULT NULL,
                              end_at timestamptz DEFAULT NULL,
                              jitter interval DEFAULT NULL,
                              concurrency_limit int DEFAULT NULL)
    RETURNS bigint
    LANGUAGE C AS 'MODULE_PATHNAME', 'chime_schedule_named';

CREATE FUNCTION cron.schedule_http(job_name text, schedule text, url text,
                                   method text DEFAULT 'POST',
                                   headers jsonb DEFAULT '{}',
                                   body text DEFAULT NULL,
                                   timezone text DEFAULT NULL,
                                   run_window text DEFAULT NULL,
                                   once_per text DEFAULT NULL,
                                   overlap text DEFAULT NULL,
                                   concurrency_key text DEFAULT NULL,
                                   max_attempts int DEFAULT NULL,
                                   retry_delay interval DEFAULT NULL,
                                   timeout interval DEFAULT NULL,
                                   catchup interval DEFAULT NULL,
                                   dst_gap text DEFAULT NULL,
                                   database text DEFAULT NULL,
                                   username text DEFAULT NULL,
                                   active boolean DEFAULT NULL,
                                   on_success text DEFAULT NULL,
                                   on_failure text DEFAULT NULL,
                                   alert_after int DEFAULT NULL,
                                   notify_channel text DEFAULT NULL,
                                   start_at timestamptz DEFAULT NULL,
                                   end_at timestamptz DEFAULT NULL,
                                   jitter interval DEFAULT NULL,
                                   concurrency_limit int DEFAULT NULL)
    RETURNS bigint
    LANGUAGE C AS 'MODULE_PATHNAME', 'chime_schedule_http';

CREATE FUNCTION cron.alter_job(job_id bigint,
                               schedule text DEFAULT NULL,
                               command text DEFAULT NULL,
                               database text DEFAULT NULL,
                               username text DEFAULT NULL,
                               active boolean DEFAULT NULL,
                               timezone text DEFAULT NULL,
                               run_window text DEFAULT NULL,
                               once_per text DEFAULT NULL,
                               overlap text DEFAULT NULL,
                               concurrency_key text DEFAULT NULL,
                               max_attempts int DEFAULT NULL,
                               retry_delay interval DEFAULT NULL,
                               timeout interval DEFAULT NULL,
                               catchup interval DEFAULT NULL,
                               dst_gap text DEFAULT NULL,
                               url text DEFAULT NULL,
                               method text DEFAULT NULL,
                               headers jsonb DEFAULT NULL,
                               body text DEFAULT NULL,
                               on_success text DEFAULT NULL,
                               on_failure text DEFAULT NULL,
                               alert_after int DEFAULT NULL,
                               notify_channel text DEFAULT NULL,
                               start_at timestamptz DEFAULT NULL,
                               end_at timestamptz DEFAULT NULL,
                               jitter interval DEFAULT NULL,
                               concurrency_limit int DEFAULT NULL)
    RETURNS void
    LANGUAGE C AS 'MODULE_PATHNAME', 'chime_alter_job';

-- Why a job will or will not run next, in sentences (explain.c)
CREATE FUNCTION cron.explain(job_id bigint)
    RETURNS SETOF text
    LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'chime_explain';

-- A manual run with a payload; the run a SQL job's command is part of
DROP FUNCTION cron.run_now(bigint, boolean);
DROP FUNCTION cron.run_now(text, boolean);
CREATE FUNCTION cron.run_now(job_id bigint, ignore_window boolean DEFAULT false,
                             payload jsonb DEFAULT NULL)
    RETURNS bigint
    LANGUAGE C AS 'MODULE_PATHNAME', 'chime_run_now_id';
CREATE FUNCTION cron.run_now(job_name text, ignore_window boolean DEFAULT false,
                             payload jsonb DEFAULT NULL)
    RETURNS bigint
    LANGUAGE C AS 'MODULE_PATHNAME', 'chime_run_now_name';
CREATE FUNCTION cron.current_run(OUT jobid bigint, OUT runid bigint, OUT attempt int,
                                 OUT run_key text, OUT scheduled_time timestamptz,
                                 OUT trigger text, OUT payload jsonb)
    RETURNS SETOF record
    LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'chime_current_run';

-- Every function runs with pg_catalog first and nothing a role can create
-- in its path (the C functions also pin it for their own statements), but
-- cron._next_run: it runs no statement and looks up no name, and is called
-- once per row of cron.job_status, where setting a path per call would be
-- most of the view's cost.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid FROM pg_catalog.pg_proc p
             WHERE p.pronamespace OPERATOR(pg_catalog.=) 'cron'::pg_catalog.regnamespace
               AND p.proname OPERATOR(pg_catalog.<>) '_next_run'
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', f);
    END LOOP;
END
$$;

-- A scheduler waiting for this version starts when the update commits.
SELECT cron._check_installable();

