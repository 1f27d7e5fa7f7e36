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

-- pg_cron's cron.schedule(schedule, command) is STRICT: NULL in, NULL out
ALTER FUNCTION cron.schedule(text, text) STRICT;

-- pg_dump keeps the claimed once-per keys too (not those of runs still
-- going, unless the run's success has committed: the dump has its effects
-- then), and the run ids
SELECT pg_catalog.pg_extension_config_dump('cron.job_run_key',
    'WHERE state OPERATOR(pg_catalog.<>) ''running'' OR EXISTS (SELECT 1 FROM cron.run_commit c '
    'WHERE c.jobid OPERATOR(pg_catalog.=) job_run_key.jobid AND c.run_key OPERATOR(pg_catalog.=) job_run_key.run_key)');
-- and the run ids, so that restored keys name no run of the new cluster
SELECT pg_catalog.pg_extension_config_dump('cron.runid_seq', '');

-- The extension belongs to schema cron, as a fresh 1.1 install does: 1.0
-- was recorded in the schema current at CREATE EXTENSION (public, as a
-- rule), so that DROP SCHEMA public CASCADE dropped it and every job.
-- Schema cron stops being a member (a fresh install makes it before the
-- extension, and pg_dump then dumps it with CREATE SCHEMA).
ALTER EXTENSION pg_chime DROP SCHEMA cron;
UPDATE pg_catalog.pg_depend
   SET refobjid = 'cron'::pg_catalog.regnamespace
 WHERE classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
   AND objid OPERATOR(pg_catalog.=) (SELECT e.oid FROM pg_catalog.pg_extension e
                                     WHERE e.extname OPERATOR(pg_catalog.=) 'pg_chime')
   AND refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
   AND refobjid OPERATOR(pg_catalog.=) (SELECT e.extnamespace FROM pg_catalog.pg_extension e
                                        WHERE e.extname OPERATOR(pg_catalog.=) 'pg_chime')
   AND deptype OPERATOR(pg_catalog.=) 'n';
UPDATE pg_catalog.pg_extension
   SET extnamespace = 'cron'::pg_catalog.regnamespace
 WHERE extname OPERATOR(pg_catalog.=) 'pg_chime';

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

-- What each object is, for \d+, \df+ and anyone reading the catalog
COMMENT ON TABLE cron.job IS 'pg_chime''s jobs: pg_cron''s columns first, then pg_chime''s options; changed through the API (cron.schedule, cron.alter_job, cron.unschedule)';
COMMENT ON COLUMN cron.job.jobid IS 'the job''s id (cron.jobid_seq)';
COMMENT ON COLUMN cron.job.schedule IS 'when it runs: five cron fields, six with seconds first, an @macro, N seconds, @every <interval>, @at <timestamp> or @reboot';
COMMENT ON COLUMN cron.job.command IS 'the SQL it runs (an HTTP job: its method and URL, for reading)';
COMMENT ON COLUMN cron.job.nodename IS 'pg_cron''s; kept, not used (jobs run on the local server)';
COMMENT ON COLUMN cron.job.nodeport IS 'pg_cron''s; kept, not used (jobs run on the local server)';
COMMENT ON COLUMN cron.job.database IS 'the database the job runs in';
COMMENT ON COLUMN cron.job.username IS 'the role the job runs as, and its owner';
COMMENT ON COLUMN cron.job.active IS 'false: the job never runs';
COMMENT ON COLUMN cron.job.jobname IS 'the job''s name, unique per owner (NULL: unnamed)';
COMMENT ON COLUMN cron.job.kind IS 'sql or http';
COMMENT ON COLUMN cron.job.timezone IS 'the zone its schedule is read in (NULL: cron.timezone at run time)';
COMMENT ON COLUMN cron.job.run_window IS 'HH:MM-HH:MM local time: a run starts only inside it (NULL: any time)';
COMMENT ON COLUMN cron.job.once_per IS 'day, week or month: at most one run per period (NULL: no key)';
COMMENT ON COLUMN cron.job.overlap IS 'skip, buffer_one or allow: what an occurrence does while a run of the job is going';
COMMENT ON COLUMN cron.job.concurrency_key IS 'runs of the owner''s jobs with this key: at most concurrency_limit at once, the others wait';
COMMENT ON COLUMN cron.job.max_attempts IS 'attempts per run, counting the first (1 to 100)';
COMMENT ON COLUMN cron.job.retry_delay IS 'delay before the second attempt, doubling after (NULL: 10 seconds)';
COMMENT ON COLUMN cron.job.timeout IS 'statement timeout (SQL) or whole-transfer timeout (HTTP); NULL: none (HTTP: cron.http_timeout)';
COMMENT ON COLUMN cron.job.catchup IS 'how late an occurrence may still start (NULL: 1 minute)';
COMMENT ON COLUMN cron.job.dst_gap IS 'end, skip or shift: a local time that does not exist on the night clocks spring forward (NULL: end)';
COMMENT ON COLUMN cron.job.url IS 'an HTTP job''s URL, with {{...}} variables and secrets not yet filled in';
COMMENT ON COLUMN cron.job.method IS 'an HTTP job''s method';
COMMENT ON COLUMN cron.job.headers IS 'an HTTP job''s request headers, a JSON object of strings';
COMMENT ON COLUMN cron.job.body IS 'an HTTP job''s request body (NULL: none, or the run''s payload)';
COMMENT ON COLUMN cron.job.on_success IS 'the job run after a run succeeds (its name or id; NULL: none)';
COMMENT ON COLUMN cron.job.on_failure IS 'the job run when failed runs in a row reach alert_after, and at the recovery (its name or id; NULL: none)';
COMMENT ON COLUMN cron.job.alert_after IS 'failed runs in a row that start on_failure (and again at twice, three times as many)';
COMMENT ON COLUMN cron.job.notify_channel IS 'the channel pg_notify tells of every final outcome (NULL: none)';
COMMENT ON COLUMN cron.job.start_at IS 'no occurrence before it (NULL: none)';
COMMENT ON COLUMN cron.job.end_at IS 'no occurrence at or after it (NULL: none)';
COMMENT ON COLUMN cron.job.jitter IS 'each occurrence starts a fixed delay in [0, jitter) late (NULL: none)';
COMMENT ON COLUMN cron.job.concurrency_limit IS 'how many runs may hold the concurrency_key at once (1 to 64)';

COMMENT ON TABLE cron.job_run_details IS 'one row per attempt of a run, and per skipped or missed occurrence; old ones go by cron.run_retention';
COMMENT ON COLUMN cron.job_run_details.jobid IS 'the job';
COMMENT ON COLUMN cron.job_run_details.runid IS 'the attempt''s id (cron.runid_seq)';
COMMENT ON COLUMN cron.job_run_details.job_pid IS 'the process that ran the attempt (an executor, or the scheduler for HTTP)';
COMMENT ON COLUMN cron.job_run_details.database IS 'the database it ran in';
COMMENT ON COLUMN cron.job_run_details.username IS 'the role it ran as';
COMMENT ON COLUMN cron.job_run_details.command IS 'the command it ran';
COMMENT ON COLUMN cron.job_run_details.status IS 'starting, running, succeeded, failed, skipped, missed or waiting';
COMMENT ON COLUMN cron.job_run_details.return_message IS 'the command''s tag, the error, or why it was skipped or missed';
COMMENT ON COLUMN cron.job_run_details.start_time IS 'when the attempt started';
COMMENT ON COLUMN cron.job_run_details.end_time IS 'when it ended';
COMMENT ON COLUMN cron.job_run_details.scheduled_time IS 'the occurrence it is for';
COMMENT ON COLUMN cron.job_run_details.attempt IS 'which attempt of the run, from 1';
COMMENT ON COLUMN cron.job_run_details.run_key IS 'the once_per key it claimed (NULL: none)';
COMMENT ON COLUMN cron.job_run_details.trigger IS 'schedule, catchup, retry, manual or hook';
COMMENT ON COLUMN cron.job_run_details.http_status IS 'an HTTP attempt''s response status';
COMMENT ON COLUMN cron.job_run_details.response_body IS 'the first cron.http_max_logged_body bytes of the response';
COMMENT ON COLUMN cron.job_run_details.occurrences IS 'how many occurrences a skipped or missed row stands for';
COMMENT ON COLUMN cron.job_run_details.retry_at IS 'when a failed attempt will be made again (NULL: never, or started)';
COMMENT ON COLUMN cron.job_run_details.commit_xid IS 'the transaction that committed a run in another database';
COMMENT ON COLUMN cron.job_run_details.payload IS 'the data of the run: cron.run_now''s, or the outcome a hook run follows';
COMMENT ON COLUMN cron.job_run_details.hook_chain IS 'the jobs whose outcomes led to this hook run, first to last';
COMMENT ON COLUMN cron.job_run_details.first_runid IS 'a retry''s first attempt';

COMMENT ON TABLE cron.job_run_key IS 'the once_per keys claimed: one run per job and period; kept by pg_dump';
COMMENT ON COLUMN cron.job_run_key.jobid IS 'the job';
COMMENT ON COLUMN cron.job_run_key.run_key IS 'the period (2026-12-01, 2026-W49, 2026-12)';
COMMENT ON COLUMN cron.job_run_key.runid IS 'the run that claimed it';
COMMENT ON COLUMN cron.job_run_key.state IS 'running, succeeded or failed';
COMMENT ON COLUMN cron.job_run_key.claimed_at IS 'when the run claimed it';
COMMENT ON COLUMN cron.job_run_key.finished_at IS 'when that run ended';

COMMENT ON TABLE cron.scheduler_state IS 'where the scheduler has got to (one row): occurrences up to horizon are handled';
COMMENT ON COLUMN cron.scheduler_state.id IS 'true: the one row';
COMMENT ON COLUMN cron.scheduler_state.horizon IS 'every occurrence up to it has been handled';
COMMENT ON COLUMN cron.scheduler_state.last_runid IS 'the last runid the scheduler has read back';

COMMENT ON TABLE cron.secret IS 'secrets for {{secret.NAME}} in HTTP jobs, per owner; values are never readable and never dumped';
COMMENT ON COLUMN cron.secret.owner IS 'the role whose jobs may use it';
COMMENT ON COLUMN cron.secret.name IS 'the name jobs refer to';
COMMENT ON COLUMN cron.secret.value IS 'the value (no role may read it)';
COMMENT ON COLUMN cron.secret.created_at IS 'when it was first set';
COMMENT ON COLUMN cron.secret.updated_at IS 'when it was last set';

COMMENT ON TABLE cron.run_commit IS 'successes executors wrote in their runs'' own transactions, until the scheduler records them';
COMMENT ON COLUMN cron.run_commit.runid IS 'the attempt';
COMMENT ON COLUMN cron.run_commit.jobid IS 'its job';
COMMENT ON COLUMN cron.run_commit.run_key IS 'the once_per key it holds';
COMMENT ON COLUMN cron.run_commit.message IS 'the command''s tag';
COMMENT ON COLUMN cron.run_commit.end_time IS 'when it ended';
COMMENT ON COLUMN cron.run_commit.job_pid IS 'the executor that ran it';

COMMENT ON TABLE cron.job_stats IS 'what cron.job_status shows, kept as runs start and end (not from the history)';
COMMENT ON COLUMN cron.job_stats.jobid IS 'the job';
COMMENT ON COLUMN cron.job_stats.running IS 'attempts in flight';
COMMENT ON COLUMN cron.job_stats.last_start IS 'when its last run started';
COMMENT ON COLUMN cron.job_stats.last_end IS 'when its last run ended';
COMMENT ON COLUMN cron.job_stats.last_status IS 'its last run''s final status';
COMMENT ON COLUMN cron.job_stats.last_message IS 'its last run''s message';
COMMENT ON COLUMN cron.job_stats.last_duration IS 'how long its last run took';
COMMENT ON COLUMN cron.job_stats.last_success IS 'when its last successful run ended';
COMMENT ON COLUMN cron.job_stats.total_runs IS 'runs that reached a final outcome';
COMMENT ON COLUMN cron.job_stats.total_successes IS 'of them, successes';
COMMENT ON COLUMN cron.job_stats.total_failures IS 'of them, failures';
COMMENT ON COLUMN cron.job_stats.total_duration IS 'their durations added up';
COMMENT ON COLUMN cron.job_stats.consecutive_failures IS 'failures since the last success';
COMMENT ON COLUMN cron.job_stats.alerted IS 'whether the current failure streak has reached alert_after';

COMMENT ON VIEW cron.job_status IS 'one row per job the caller may see: its next run, its last run and its totals';
COMMENT ON COLUMN cron.job_status.jobid IS 'the job';
COMMENT ON COLUMN cron.job_status.jobname IS 'its name';
COMMENT ON COLUMN cron.job_status.username IS 'its owner';
COMMENT ON COLUMN cron.job_status.active IS 'whether it runs';
COMMENT ON COLUMN cron.job_status.schedule IS 'its schedule';
COMMENT ON COLUMN cron.job_status.next_run IS 'when it runs next, as cron.next_runs(jobid, 1) says (NULL: never, or inactive)';
COMMENT ON COLUMN cron.job_status.last_start IS 'when its last run started';
COMMENT ON COLUMN cron.job_status.last_end IS 'when its last run ended';
COMMENT ON COLUMN cron.job_status.last_status IS 'its last run''s final status';
COMMENT ON COLUMN cron.job_status.last_message IS 'its last run''s message';
COMMENT ON COLUMN cron.job_status.running IS 'attempts in flight';
COMMENT ON COLUMN cron.job_status.consecutive_failures IS 'failures since the last success';
COMMENT ON COLUMN cron.job_status.last_success IS 'when its last successful run ended';
COMMENT ON COLUMN cron.job_status.total_runs IS 'runs that reached a final outcome';
COMMENT ON COLUMN cron.job_status.total_successes IS 'of them, successes';
COMMENT ON COLUMN cron.job_status.total_failures IS 'of them, failures';
COMMENT ON COLUMN cron.job_status.avg_duration IS 'their average duration';
COMMENT ON COLUMN cron.job_status.last_duration IS 'how long its last run took';

COMMENT ON SEQUENCE cron.jobid_seq IS 'job ids; kept by pg_dump';
COMMENT ON SEQUENCE cron.runid_seq IS 'run ids';

COMMENT ON FUNCTION cron._check_installable() IS 'refuses CREATE EXTENSION where the scheduler would not read the jobs (internal)';
COMMENT ON FUNCTION cron._job_changed() IS 'tells the scheduler which jobs changed, at commit (trigger on cron.job; internal)';
COMMENT ON FUNCTION cron._next_run(text, text, text, text, timestamptz, timestamptz, interval, bigint) IS 'the next instant a job with these settings fires (for cron.job_status; internal)';
COMMENT ON FUNCTION cron.schedule(text, text) IS 'a new unnamed SQL job (pg_cron''s form); returns its id';
COMMENT ON FUNCTION cron.schedule(text, text, text, text, text, text, text, text, int, interval, interval, interval, text, text, text, boolean, text, text, int, text, timestamptz, timestamptz, interval, int) IS 'a named SQL job, with options; replaces the caller''s job of that name; returns its id';
COMMENT ON FUNCTION cron.schedule_in_database(text, text, text, text, text, boolean) IS 'a named SQL job in a given database, for a given role (pg_cron''s form); returns its id';
COMMENT ON FUNCTION cron.schedule_http(text, text, text, text, jsonb, text, text, text, text, text, text, int, interval, interval, interval, text, text, text, boolean, text, text, int, text, timestamptz, timestamptz, interval, int) IS 'a named HTTP job, with options; replaces the caller''s job of that name; returns its id';
COMMENT ON FUNCTION cron.unschedule(bigint) IS 'deletes a job by id, with its keys';
COMMENT ON FUNCTION cron.unschedule(text) IS 'deletes the caller''s job of that name, with its keys';
COMMENT ON FUNCTION cron.alter_job(bigint, text, text, text, text, boolean, text, text, text, text, text, int, interval, interval, interval, text, text, text, jsonb, text, text, text, int, text, timestamptz, timestamptz, interval, int) IS 'changes the settings given of a job (NULL: left as it is)';
COMMENT ON FUNCTION cron.next_runs(text, text, timestamptz, int, text, text) IS 'the next instants a schedule fires in a zone, as the scheduler computes them';
COMMENT ON FUNCTION cron.next_runs(bigint, int) IS 'the next instants a job runs, its window, bounds and jitter applied';
COMMENT ON FUNCTION cron.set_secret(text, text) IS 'sets one of the caller''s secrets (write-only)';
COMMENT ON FUNCTION cron.drop_secret(text) IS 'deletes one of the caller''s secrets';
COMMENT ON FUNCTION cron.run_now(bigint, boolean, jsonb) IS 'starts a run of a job now, with an optional payload; returns its runid';
COMMENT ON FUNCTION cron.run_now(text, boolean, jsonb) IS 'starts a run of the caller''s job of that name now; returns its runid';
COMMENT ON FUNCTION cron.release_key(bigint, text) IS 'releases a claimed once_per key, so that its period may run again';
COMMENT ON FUNCTION cron.delete_runs(timestamptz, bigint) IS 'deletes the caller''s finished runs that started before a time; returns how many';
COMMENT ON FUNCTION cron.current_run() IS 'inside a SQL job''s command: the run it is part of (no row elsewhere)';
COMMENT ON FUNCTION cron.explain(bigint) IS 'in sentences: why a job will or will not run next, and why its last occurrences did not run';

-- A scheduler waiting for this version starts when the update commits.
SELECT cron._check_installable();

