--
-- Run context: the {{...}} variables of HTTP jobs (checked when scheduled),
-- cron.current_run() in SQL jobs, and cron.run_now's payload.
--
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

DROP FUNCTION IF EXISTS wait_for(text, int);
\i sql/wait_for.psql
CREATE FUNCTION try_ctx(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    msg text; hnt text;
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, hnt = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ': ' || msg || CASE WHEN hnt <> '' THEN E'\n  hint: ' || hnt ELSE '' END;
END $$;

-- every variable is accepted, in the URL, a header and the body
SELECT try_ctx($$SELECT cron.schedule_http('ctx-all', '0 0 30 2 *',
    'http://127.0.0.1:9/{{job.id}}/{{run.id}}?k={{run.key}}&t={{run.trigger}}',
    headers => '{"Idempotency-Key": "{{run.idempotency_key}}", "X-Attempt": "{{run.attempt}}"}',
    body => '{"job": "{{job.name}}", "at": "{{run.scheduled_time}}", "p": {{payload}}, "org": "{{payload.org.id}}"}')$$);
-- an unknown variable, anywhere, is refused and nothing is written
SELECT count(*) AS jobs_before FROM cron.job \gset
SELECT try_ctx($$SELECT cron.schedule_http('ctx-bad', '@daily', 'http://127.0.0.1:9/{{run.foo}}')$$);
SELECT try_ctx($$SELECT cron.schedule_http('ctx-bad', '@daily', 'http://127.0.0.1:9/',
    headers => '{"X-Run": "{{ run.id }}"}')$$);
SELECT try_ctx($$SELECT cron.schedule_http('ctx-bad', '@daily', 'http://127.0.0.1:9/', body => 'key={{key}}')$$);
SELECT try_ctx($$SELECT cron.schedule_http('ctx-bad', '@daily', 'http://127.0.0.1:9/', body => '{{payload.}}')$$);
SELECT try_ctx($$SELECT cron.schedule_http('ctx-bad', '@daily', 'http://127.0.0.1:9/', body => '{{payload.a..b}}')$$);
SELECT try_ctx($$SELECT cron.schedule_http('ctx-bad', '@daily', 'http://127.0.0.1:9/', body => '{{secret.9lives}}')$$);
SELECT try_ctx($$SELECT cron.schedule_http('ctx-bad', '@daily', 'http://127.0.0.1:9/', body => '{{secret.missing}}')$$);
SELECT try_ctx($$SELECT cron.alter_job((SELECT jobid FROM cron.job WHERE jobname = 'ctx-all'), body => '{{run.ID}}')$$);
SELECT count(*) = :jobs_before AS nothing_written FROM cron.job;
SELECT body FROM cron.job WHERE jobname = 'ctx-all';
-- an unclosed {{ is text
SELECT try_ctx($$SELECT cron.schedule_http('ctx-text', '@daily', 'http://127.0.0.1:9/', body => 'a {{ b')$$);

-- outside a run, cron.current_run() has no row
SELECT count(*) AS rows_outside_a_run FROM cron.current_run();

-- a SQL job reads its run: run_now's payload, the trigger, its own runid
CREATE TABLE ctx_seen (jobid bigint, runid bigint, attempt int, run_key text,
                   scheduled_time timestamptz, trigger text, payload jsonb);
SELECT cron.schedule('ctx-sql', '0 0 30 2 *', 'INSERT INTO ctx_seen SELECT * FROM cron.current_run()') AS ctx \gset
SELECT cron.run_now(:ctx, payload => '{"org": 7, "name": "acme"}') AS r1 \gset
SELECT wait_for('(SELECT count(*) FROM ctx_seen) = 1');
SELECT jobid = :ctx AS its_job, runid = :r1 AS its_run, attempt, run_key, trigger, payload,
       scheduled_time = (SELECT scheduled_time FROM cron.job_run_details WHERE runid = :r1) AS its_time
FROM ctx_seen;
-- without a payload: NULL
SELECT cron.run_now('ctx-sql') AS r2 \gset
SELECT wait_for('(SELECT count(*) FROM ctx_seen) = 2');
SELECT runid = :r2 AS its_run, trigger, payload IS NULL AS no_payload FROM ctx_seen WHERE runid <> :r1;
-- the payload is kept with the run
SELECT payload FROM cron.job_run_details WHERE runid = :r1;

-- a once_per job: its run_key
SELECT cron.schedule('ctx-key', '0 0 30 2 *', 'INSERT INTO ctx_seen SELECT * FROM cron.current_run()',
                     once_per => 'day') AS ctxk \gset
SELECT cron.run_now(:ctxk) AS r3 \gset
SELECT wait_for('(SELECT count(*) FROM ctx_seen) = 3');
SELECT run_key = to_char(now(), 'YYYY-MM-DD') AS its_day FROM ctx_seen WHERE runid = :r3;

-- a retry keeps the payload; its attempt and trigger are its own
SELECT cron.schedule('ctx-retry', '0 0 30 2 *',
    $$SELECT 1 / (attempt - 1) FROM cron.current_run();
      INSERT INTO ctx_seen SELECT * FROM cron.current_run()$$,
    max_attempts => 2, retry_delay => '1 second') AS ctxr \gset
SELECT cron.run_now(:ctxr, payload => '{"batch": [1, 2]}') AS r4 \gset
SELECT wait_for('(SELECT count(*) FROM ctx_seen) = 4');
SELECT runid > :r4 AS a_later_run, attempt, trigger, payload FROM ctx_seen WHERE jobid = :ctxr;
SELECT attempt, status, trigger, payload FROM cron.job_run_details WHERE jobid = :ctxr ORDER BY runid;
SELECT count(DISTINCT scheduled_time) AS one_scheduled_time FROM cron.job_run_details WHERE jobid = :ctxr;
SELECT first_runid IS NULL AS first_has_none FROM cron.job_run_details WHERE runid = :r4;
SELECT first_runid = :r4 AS retry_knows_its_first FROM cron.job_run_details WHERE jobid = :ctxr AND attempt = 2;

-- code running as a role without the owner's rights sees no run: a
-- SECURITY DEFINER function of another role that the job calls
CREATE ROLE regress_ctx_other;
GRANT USAGE ON SCHEMA cron TO regress_ctx_other;
CREATE FUNCTION ctx_peek() RETURNS bigint LANGUAGE sql SECURITY DEFINER
    AS $$SELECT count(*) FROM cron.current_run()$$;
ALTER FUNCTION ctx_peek() OWNER TO regress_ctx_other;
CREATE TABLE ctx_peeked (n bigint, own bigint);
SELECT cron.schedule('ctx-peek', '0 0 30 2 *',
    $$INSERT INTO ctx_peeked SELECT ctx_peek(), (SELECT count(*) FROM cron.current_run())$$) AS ctxp \gset
SELECT cron.run_now(:ctxp, payload => '{"private": true}') AS r5 \gset
SELECT wait_for('(SELECT count(*) FROM ctx_peeked) = 1');
SELECT n AS seen_by_the_definer, own AS seen_by_the_job FROM ctx_peeked;
DROP TABLE ctx_peeked;
DROP FUNCTION ctx_peek();
REVOKE USAGE ON SCHEMA cron FROM regress_ctx_other;
DROP ROLE regress_ctx_other;

-- a payload must be at most 1 MB of JSON
SELECT try_ctx($$SELECT cron.run_now('ctx-sql', payload => jsonb_build_object('x', repeat('y', 1100000)))$$);
SELECT try_ctx($$SELECT cron.run_now('ctx-sql', payload => 'not json')$$);

SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'ctx-%' ORDER BY jobid;
DROP TABLE ctx_seen;
DROP FUNCTION try_ctx(text);
