/* pg_chime 1.1: schema cron, the job catalog and the SQL API */

\echo Use "CREATE EXTENSION pg_chime" to load this file. \quit

CREATE SCHEMA cron;

-- Refuse to install where the scheduler will not read the jobs, or when the
-- library is not preloaded (the scheduler could not start).
CREATE FUNCTION cron._check_installable() RETURNS void
    LANGUAGE C STRICT AS 'MODULE_PATHNAME', 'chime_check_installable';
SELECT cron._check_installable();
REVOKE ALL ON FUNCTION cron._check_installable() FROM PUBLIC;

CREATE SEQUENCE cron.jobid_seq;
CREATE SEQUENCE cron.runid_seq;

CREATE TABLE cron.job (
    jobid           bigint PRIMARY KEY DEFAULT pg_catalog.nextval('cron.jobid_seq'),
    schedule        text NOT NULL,
    command         text NOT NULL,
    nodename        text NOT NULL DEFAULT 'localhost',
    nodeport        int NOT NULL DEFAULT pg_catalog.current_setting('port')::int,
    database        text NOT NULL DEFAULT pg_catalog.current_database(),
    username        text NOT NULL DEFAULT CURRENT_USER,
    active          boolean NOT NULL DEFAULT true,
    jobname         text,
    kind            text NOT NULL DEFAULT 'sql' CHECK (kind IN ('sql', 'http')),
    timezone        text,
    run_window      text,
    once_per        text CHECK (once_per IN ('day', 'week', 'month')),
    overlap         text NOT NULL DEFAULT 'skip' CHECK (overlap IN ('skip', 'buffer_one', 'allow')),
    concurrency_key text,
    max_attempts    int NOT NULL DEFAULT 1 CHECK (max_attempts BETWEEN 1 AND 100),
    retry_delay     interval NOT NULL DEFAULT '10 seconds',
    timeout         interval,
    catchup         interval NOT NULL DEFAULT '1 minute',
    dst_gap         text NOT NULL DEFAULT 'end' CHECK (dst_gap IN ('end', 'skip', 'shift')),
    url             text,
    method          text,
    headers         jsonb,
    body            text,
    on_success      text,
    on_failure      text,
    alert_after     int NOT NULL DEFAULT 1 CHECK (alert_after >= 1),
    notify_channel  text,
    start_at        timestamptz,
    end_at          timestamptz,
    jitter          interval,
    concurrency_limit int NOT NULL DEFAULT 1 CHECK (concurrency_limit >= 1 AND concurrency_limit <= 64),
    CONSTRAINT jobname_username_uniq UNIQUE (jobname, username),
    CONSTRAINT http_has_url CHECK ((kind = 'http') = (url IS NOT NULL))
);
ALTER SEQUENCE cron.jobid_seq OWNED BY cron.job.jobid;

CREATE TABLE cron.job_run_details (
    jobid           bigint,
    runid           bigint PRIMARY KEY DEFAULT pg_catalog.nextval('cron.runid_seq'),
    job_pid         int,
    database        text,
    username        text,
    command         text,
    status          text CHECK (status IN ('starting', 'running', 'succeeded', 'failed', 'skipped', 'missed', 'waiting')),
    return_message  text,
    start_time      timestamptz,
    end_time        timestamptz,
    scheduled_time  timestamptz,
    attempt         int NOT NULL DEFAULT 1,
    run_key         text,
    trigger         text CHECK (trigger IN ('schedule', 'catchup', 'retry', 'manual', 'hook')),
    http_status     int,
    response_body   text,
    occurrences     int NOT NULL DEFAULT 1,
    retry_at        timestamptz,
    commit_xid      xid8,
    payload         jsonb,
    hook_chain      bigint[],
    first_runid     bigint
);
ALTER SEQUENCE cron.runid_seq OWNED BY cron.job_run_details.runid;
CREATE INDEX job_run_details_jobid_start_time_idx ON cron.job_run_details (jobid, start_time);
-- failed attempts whose retry is still to be made (read at scheduler start)
CREATE INDEX job_run_details_retry_idx ON cron.job_run_details (jobid)
    WHERE retry_at IS NOT NULL;
-- runs waiting for their concurrency_key (read at scheduler start)
CREATE INDEX job_run_details_waiting_idx ON cron.job_run_details (runid) WHERE status = 'waiting';

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

CREATE TABLE cron.job_run_key (
    jobid           bigint NOT NULL REFERENCES cron.job (jobid) ON DELETE CASCADE,
    run_key         text NOT NULL,
    runid           bigint,
    state           text NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
    claimed_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    PRIMARY KEY (jobid, run_key)
);

-- Where the scheduler has got to: every occurrence up to 'horizon' has been
-- handled.  After a restart or a promotion, occurrences after it start
-- under catchup or are recorded missed.  Runs recorded after last_runid
-- tell which of them a crash interrupted after they were handled.
CREATE TABLE cron.scheduler_state (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    horizon         timestamptz NOT NULL,
    last_runid      bigint NOT NULL
);

CREATE TABLE cron.secret (
    owner           text NOT NULL DEFAULT CURRENT_USER,
    name            text NOT NULL,
    value           text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (owner, name)
);

-- pg_dump keeps the jobs (not the run history, keys or secret values)
SELECT pg_catalog.pg_extension_config_dump('cron.job', '');
SELECT pg_catalog.pg_extension_config_dump('cron.jobid_seq', '');

-- Row-level security: every role sees and changes only its own rows.
-- Writes go through the API functions; roles get read access only
-- (and may delete their own run history, as in pg_cron).
ALTER TABLE cron.job ENABLE ROW LEVEL SECURITY;
ALTER TABLE cron.job_run_details ENABLE ROW LEVEL SECURITY;
ALTER TABLE cron.job_run_key ENABLE ROW LEVEL SECURITY;
ALTER TABLE cron.secret ENABLE ROW LEVEL SECURITY;
ALTER TABLE cron.scheduler_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE cron.run_commit ENABLE ROW LEVEL SECURITY;

CREATE POLICY cron_job_policy ON cron.job
    USING (username = CURRENT_USER);
CREATE POLICY cron_job_run_details_policy ON cron.job_run_details
    USING (username = CURRENT_USER);
CREATE POLICY cron_job_run_key_policy ON cron.job_run_key
    USING (EXISTS (SELECT 1 FROM cron.job j
                   WHERE j.jobid = job_run_key.jobid AND j.username = CURRENT_USER));
CREATE POLICY cron_secret_policy ON cron.secret
    USING (owner = CURRENT_USER);

GRANT SELECT ON cron.job TO PUBLIC;
-- No DELETE for roles: it would let them LOCK the table and so stop every
-- role's runs; they prune their history with cron.delete_runs.
GRANT SELECT ON cron.job_run_details TO PUBLIC;
GRANT SELECT ON cron.job_run_key TO PUBLIC;
GRANT SELECT (owner, name, created_at, updated_at) ON cron.secret TO PUBLIC;

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

-- Every change to cron.job, however it is made, tells the scheduler which
-- jobs to reload when the transaction commits.
CREATE FUNCTION cron._job_changed() RETURNS trigger
    LANGUAGE C AS 'MODULE_PATHNAME', 'chime_job_changed';
REVOKE ALL ON FUNCTION cron._job_changed() FROM PUBLIC;
CREATE TRIGGER job_changed AFTER INSERT OR UPDATE OR DELETE ON cron.job
    FOR EACH ROW EXECUTE FUNCTION cron._job_changed();
CREATE TRIGGER job_truncated AFTER TRUNCATE ON cron.job
    FOR EACH STATEMENT EXECUTE FUNCTION cron._job_changed();

-- The API.  These are C functions running as the caller: they check the
-- caller's rights themselves and write the tables as the extension owner.

CREATE FUNCTION cron.schedule(schedule text, command text)
    RETURNS bigint
    LANGUAGE C AS 'MODULE_PATHNAME', 'chime_schedule_unnamed';

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

CREATE FUNCTION cron.schedule_in_database(job_name text, schedule text, command text,
                                          database text,
                                          username text DEFAULT NULL,
                                          active boolean DEFAULT true)
    RETURNS bigint
    LANGUAGE C AS 'MODULE_PATHNAME', 'chime_schedule_in_database';

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

CREATE FUNCTION cron.unschedule(job_id bigint)
    RETURNS boolean
    LANGUAGE C STRICT AS 'MODULE_PATHNAME', 'chime_unschedule_id';

CREATE FUNCTION cron.unschedule(job_name text)
    RETURNS boolean
    LANGUAGE C STRICT AS 'MODULE_PATHNAME', 'chime_unschedule_name';

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

CREATE FUNCTION cron.next_runs(schedule text,
                               timezone text DEFAULT NULL,
                               after timestamptz DEFAULT NULL,
                               count int DEFAULT 10,
                               dst_gap text DEFAULT 'end',
                               run_window text DEFAULT NULL)
    RETURNS SETOF timestamptz
    LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'chime_next_runs_schedule';

CREATE FUNCTION cron.next_runs(job_id bigint, count int DEFAULT 10)
    RETURNS SETOF timestamptz
    LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'chime_next_runs_job';

CREATE FUNCTION cron.set_secret(name text, value text)
    RETURNS void
    LANGUAGE C AS 'MODULE_PATHNAME', 'chime_set_secret';

CREATE FUNCTION cron.drop_secret(name text)
    RETURNS boolean
    LANGUAGE C AS 'MODULE_PATHNAME', 'chime_drop_secret';

CREATE FUNCTION cron.run_now(job_id bigint, ignore_window boolean DEFAULT false,
                             payload jsonb DEFAULT NULL)
    RETURNS bigint
    LANGUAGE C AS 'MODULE_PATHNAME', 'chime_run_now_id';

CREATE FUNCTION cron.release_key(job_id bigint, run_key text)
    RETURNS boolean
    LANGUAGE C AS 'MODULE_PATHNAME', 'chime_release_key';

CREATE FUNCTION cron.run_now(job_name text, ignore_window boolean DEFAULT false,
                             payload jsonb DEFAULT NULL)
    RETURNS bigint
    LANGUAGE C AS 'MODULE_PATHNAME', 'chime_run_now_name';

CREATE FUNCTION cron.delete_runs(before timestamptz, job_id bigint DEFAULT NULL)
    RETURNS bigint
    LANGUAGE C AS 'MODULE_PATHNAME', 'chime_delete_runs';

-- The run a SQL job's command is part of (no row outside a run)
CREATE FUNCTION cron.current_run(OUT jobid bigint, OUT runid bigint, OUT attempt int,
                                 OUT run_key text, OUT scheduled_time timestamptz,
                                 OUT trigger text, OUT payload jsonb)
    RETURNS SETOF record
    LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'chime_current_run';

-- Why a job will or will not run next, in sentences (explain.c)
CREATE FUNCTION cron.explain(job_id bigint)
    RETURNS SETOF text
    LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'chime_explain';

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
