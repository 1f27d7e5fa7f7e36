--
-- Every error path of the API: SQLSTATE, message, detail and hint, and
-- that a failed call writes nothing and consumes no job id.
--
CREATE FUNCTION try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
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

SELECT cron.schedule('keeper', '0 3 * * *', 'SELECT 1') AS keeper \gset
SELECT last_value AS ids_before FROM cron.jobid_seq \gset

-- schedules
SELECT try($$SELECT cron.schedule('0 61 * * *', 'SELECT 1')$$);
SELECT try($$SELECT cron.schedule('x', '* * * *', 'SELECT 1')$$);
SELECT try($$SELECT cron.schedule('x', '* * * * * * *', 'SELECT 1')$$);
SELECT try($$SELECT cron.schedule('x', '5-1 * * * *', 'SELECT 1')$$);
SELECT try($$SELECT cron.schedule('x', '*/60 * * * *', 'SELECT 1')$$);
SELECT try($$SELECT cron.schedule('x', '5/10 * * * *', 'SELECT 1')$$);
SELECT try($$SELECT cron.schedule('x', '0 0 * foo *', 'SELECT 1')$$);
SELECT try($$SELECT cron.schedule('x', '0 0 * * 1#6', 'SELECT 1')$$);
SELECT try($$SELECT cron.schedule('x', '@fortnightly', 'SELECT 1')$$);
SELECT try($$SELECT cron.schedule('x', '90 seconds', 'SELECT 1')$$);
SELECT try($$SELECT cron.schedule('x', '5 minutes', 'SELECT 1')$$);
SELECT try($$SELECT cron.schedule('x', '@every 1 month', 'SELECT 1')$$);
SELECT try($$SELECT cron.schedule('x', '@every 0.5 seconds', 'SELECT 1')$$);
SELECT try($$SELECT cron.schedule('x', '@at 2026-02-30 03:00', 'SELECT 1')$$);
SELECT try($$SELECT cron.schedule('x', '', 'SELECT 1')$$);
SELECT try($$SELECT cron.schedule('x', NULL, 'SELECT 1')$$);
SELECT try($$SELECT cron.schedule('x', '@daily', NULL)$$);

-- options
SELECT try($$SELECT cron.schedule('x', '@daily', 'SELECT 1', timezone => 'Mars/Olympus_Mons')$$);
SELECT try($$SELECT cron.schedule('x', '@daily', 'SELECT 1', timezone => 'FOO+3')$$);
SELECT try($$SELECT cron.schedule('x', '@daily', 'SELECT 1', run_window => '3:00-6:00')$$);
SELECT try($$SELECT cron.schedule('x', '@daily', 'SELECT 1', run_window => '03:00-03:00')$$);
SELECT try($$SELECT cron.schedule('x', '@daily', 'SELECT 1', run_window => '24:00-01:00')$$);
SELECT try($$SELECT cron.schedule('x', '@daily', 'SELECT 1', once_per => 'year')$$);
SELECT try($$SELECT cron.schedule('x', '@daily', 'SELECT 1', overlap => 'queue')$$);
SELECT try($$SELECT cron.schedule('x', '@daily', 'SELECT 1', max_attempts => 0)$$);
SELECT try($$SELECT cron.schedule('x', '@daily', 'SELECT 1', max_attempts => 101)$$);
SELECT try($$SELECT cron.schedule('x', '@daily', 'SELECT 1', retry_delay => '-1 second')$$);
SELECT try($$SELECT cron.schedule('x', '@daily', 'SELECT 1', retry_delay => '1 month')$$);
SELECT try($$SELECT cron.schedule('x', '@daily', 'SELECT 1', timeout => '-5 seconds')$$);
SELECT try($$SELECT cron.schedule('x', '@daily', 'SELECT 1', catchup => '-1 minute')$$);
-- values that would overflow the scheduler's arithmetic are refused
SELECT try($$SELECT cron.schedule('x', '@daily', 'SELECT 1', retry_delay => '2000000000 days')$$);
SELECT try($$SELECT cron.schedule('x', '@daily', 'SELECT 1', timeout => '1000000 days')$$);
SELECT try($$SELECT cron.schedule('x', '@daily', 'SELECT 1', timeout => '25 days')$$);
SELECT try($$SELECT cron.schedule('x', '@daily', 'SELECT 1', catchup => '40000 days')$$);
SELECT count(*) AS written FROM cron.job WHERE jobname = 'x';
SELECT try($$SELECT cron.schedule('x', '@daily', 'SELECT 1', dst_gap => 'later')$$);
SELECT try($$SELECT cron.schedule('x', '@daily', 'SELECT 1', database => 'no_such_db')$$);
SELECT try($$SELECT cron.schedule('x', '@daily', 'SELECT 1', username => 'no_such_role')$$);
SELECT try($$SELECT cron.schedule_in_database('x', '@daily', 'SELECT 1', 'no_such_db')$$);
SELECT try($$SELECT cron.schedule_in_database('x', '@daily', 'SELECT 1', NULL)$$);

-- HTTP jobs
SELECT try($$SELECT cron.schedule_http('h', '@daily', 'file:///etc/passwd')$$);
SELECT try($$SELECT cron.schedule_http('h', '@daily', 'ftp://example.com/x')$$);
SELECT try($$SELECT cron.schedule_http('h', '@daily', 'https:///path')$$);
SELECT try($$SELECT cron.schedule_http('h', '@daily', 'https://example.com/a b')$$);
SELECT try($$SELECT cron.schedule_http('h', '@daily', NULL)$$);
SELECT try($$SELECT cron.schedule_http('h', '@daily', 'https://example.com', method => 'FETCH')$$);
SELECT try($$SELECT cron.schedule_http('h', '@daily', 'https://example.com', headers => '["x"]')$$);
SELECT try($$SELECT cron.schedule_http('h', '@daily', 'https://example.com', headers => '{"x-n": 5}')$$);
SELECT try($$SELECT cron.schedule_http('h', '@daily', 'https://example.com', headers => '{"bad name": "v"}')$$);
SELECT try($$SELECT cron.schedule_http('h', '@daily', 'https://example.com', headers => '{"x": "a\r\nInjected: 1"}')$$);
SELECT try($$SELECT cron.schedule_http('h', '@daily', 'https://example.com', headers => '{"x": "{{secret.missing}}"}')$$);
SELECT try($$SELECT cron.schedule_http('h', '@daily', 'https://example.com/{{secret.bad-name}}')$$);
SELECT try($$SELECT cron.schedule_http('h', '@daily', 'https://example.com', body => '{{secret.missing}}')$$);

-- unknown jobs
SELECT try($$SELECT cron.unschedule(424242)$$);
SELECT try($$SELECT cron.unschedule('no such job')$$);
SELECT try($$SELECT cron.alter_job(424242, schedule => '@daily')$$);
SELECT try($$SELECT cron.alter_job(NULL, schedule => '@daily')$$);
SELECT try($$SELECT cron.next_runs(424242)$$);

-- alter_job: bad values, and fields of the other kind of job
SELECT try(format($$SELECT cron.alter_job(%s, schedule => '61 * * * *')$$, :keeper));
SELECT try(format($$SELECT cron.alter_job(%s, timezone => 'Nowhere/Land')$$, :keeper));
SELECT try(format($$SELECT cron.alter_job(%s, url => 'https://example.com')$$, :keeper));
SELECT cron.set_secret('tok', 'v');
SELECT cron.schedule_http('h-ok', '@daily', 'https://example.com') AS http_jobid \gset
SELECT try(format($$SELECT cron.alter_job(%s, command => 'SELECT 1')$$, :http_jobid));
SELECT try(format($$SELECT cron.alter_job(%s, headers => '{"a": "{{secret.nope}}"}')$$, :http_jobid));
SELECT cron.unschedule(:http_jobid);

-- next_runs
SELECT try($$SELECT cron.next_runs('@daily', count => -1)$$);
SELECT try($$SELECT cron.next_runs('@daily', 'Not/AZone')$$);
SELECT try($$SELECT cron.next_runs('@daily', dst_gap => 'maybe')$$);
SELECT try($$SELECT cron.next_runs('@daily', run_window => '03:00 to 06:00')$$);
SELECT try($$SELECT cron.next_runs(NULL::text)$$);
SELECT try($$SELECT cron.next_runs('0 0 * * 8')$$);

-- secrets
SELECT try($$SELECT cron.set_secret('bad-name', 'v')$$);
SELECT try($$SELECT cron.set_secret('ok_name', NULL)$$);
SELECT try($$SELECT cron.set_secret(NULL, 'v')$$);
SELECT try($$SELECT cron.drop_secret('9lives')$$);

-- the clock skew setting
SELECT try($$SET cron.clock_skew = 'yesterday-ish'$$);
SELECT try($$SET cron.timezone = 'UTC'$$);

-- privileges: ordinary roles act only on their own jobs
CREATE ROLE regress_alice;
CREATE ROLE regress_bob;
GRANT USAGE ON SCHEMA cron TO regress_alice, regress_bob;
SET ROLE regress_alice;
SELECT cron.schedule('alice-job', '@daily', 'SELECT 1') AS alice_jobid \gset
SELECT try($$SELECT cron.schedule('x', '@daily', 'SELECT 1', username => 'regress_bob')$$);
SELECT try($$SELECT cron.schedule_in_database('x', '@daily', 'SELECT 1', 'contrib_regression', 'regress_bob')$$);
SELECT try(format($$SELECT cron.alter_job(%s, username => 'regress_bob')$$, :alice_jobid));
SELECT try($$INSERT INTO cron.job (schedule, command, username) VALUES ('@daily', 'SELECT 1', 'regress_bob')$$);
SELECT try($$UPDATE cron.job SET username = 'regress_bob'$$);
SELECT try($$DELETE FROM cron.job$$);
SET ROLE regress_bob;
SELECT try(format($$SELECT cron.unschedule(%s)$$, :alice_jobid));
SELECT try(format($$SELECT cron.alter_job(%s, active => false)$$, :alice_jobid));
SELECT try(format($$SELECT cron.next_runs(%s)$$, :alice_jobid));
SELECT try($$SELECT cron.unschedule('alice-job')$$);
SELECT count(*) AS jobs_bob_sees FROM cron.job;
RESET ROLE;
-- CONNECT is needed on the job's database
REVOKE CONNECT ON DATABASE contrib_regression FROM PUBLIC;
SET ROLE regress_bob;
SELECT try($$SELECT cron.schedule('x', '@daily', 'SELECT 1')$$);
RESET ROLE;
GRANT CONNECT ON DATABASE contrib_regression TO PUBLIC;
-- without USAGE on schema cron nothing is reachable
CREATE ROLE regress_carol;
SET ROLE regress_carol;
SELECT try($$SELECT cron.schedule('x', '@daily', 'SELECT 1')$$);
RESET ROLE;

-- none of the failures wrote anything or took a job id
SELECT jobname, username = current_user AS mine FROM cron.job ORDER BY jobid;
SELECT last_value - :ids_before AS ids_taken_since FROM cron.jobid_seq;

SELECT cron.unschedule(jobid) FROM cron.job;
REVOKE USAGE ON SCHEMA cron FROM regress_alice, regress_bob;
DROP ROLE regress_alice, regress_bob, regress_carol;
SELECT cron.drop_secret('tok');
DROP FUNCTION try(text);
