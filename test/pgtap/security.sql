-- pgTAP: what a hostile role with USAGE on cron cannot do to others, and
-- the limits every role meets (SPEC §14): sizes, the job quota, pinned
-- search paths.
\set QUIET 1
\pset format unaligned
\pset tuples_only true
BEGIN;
SELECT plan(25);

CREATE ROLE pgtap_sec_alice;
CREATE ROLE pgtap_sec_mallory;
GRANT USAGE ON SCHEMA cron TO pgtap_sec_alice, pgtap_sec_mallory;

-- every function of the extension runs with a fixed search_path, but the
-- one that runs no SQL and is called per row of cron.job_status
SELECT is((SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
           WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_chime')
             AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)),
          'cron._next_run(text,text,text,text,timestamp with time zone,timestamp with time zone,interval,bigint)', 'every pg_chime function but cron._next_run pins search_path = pg_catalog, pg_temp');

-- sizes: 22023, the limit in the message, nothing written
SET ROLE pgtap_sec_mallory;
SELECT lives_ok(format($$SELECT cron.schedule(%L, '@daily', 'SELECT 1')$$, repeat('n', 200)),
                'a job name of 200 bytes is taken');
SELECT throws_ok(format($$SELECT cron.schedule(%L, '@daily', 'SELECT 1')$$, repeat('n', 201)),
                 '22023', 'job name is too long: 201 bytes', 'a job name of 201 bytes is refused');
SELECT throws_ok(format($$SELECT cron.schedule(%L, '@daily', 'SELECT 1')$$, repeat('é', 101)),
                 '22023', 'job name is too long: 202 bytes', 'the limit counts bytes, not characters');
SELECT throws_ok(format($$SELECT cron.schedule('big', '@daily', %L)$$, 'SELECT ' || repeat('1', 1048576)),
                 '22023', 'command is too long: 1048583 bytes', 'a command over 1 MB is refused');
SELECT lives_ok(format($$SELECT cron.schedule('big-ok', '@daily', %L)$$, 'SELECT ' || repeat(' ', 1048569)),
                'a command of exactly 1 MB is taken');
SELECT throws_ok(format($$SELECT cron.schedule_http('u', '@daily', %L)$$, 'http://example.invalid/' || repeat('a', 1048576)),
                 '22023', NULL, 'a URL over 1 MB is refused');
SELECT throws_ok(format($$SELECT cron.schedule_http('b', '@daily', 'http://example.invalid/', body => %L)$$, repeat('b', 1048577)),
                 '22023', 'body is too long: 1048577 bytes', 'a body over 1 MB is refused');
SELECT throws_ok(format($$SELECT cron.schedule_http('h', '@daily', 'http://example.invalid/', headers => %L::jsonb)$$,
                        json_build_object('x-big', repeat('h', 1048576))),
                 '22023', NULL, 'headers over 1 MB are refused');
SELECT throws_ok(format($$SELECT cron.set_secret('huge', %L)$$, repeat('s', 65537)),
                 '22023', NULL, 'a secret value over 64 kB is refused');
SELECT throws_ok(format($$SELECT cron.schedule('k', '@daily', 'SELECT 1', concurrency_key => %L)$$, repeat('k', 201)),
                 '22023', 'concurrency_key is too long: 201 bytes', 'a concurrency_key over 200 bytes is refused');
SELECT throws_ok(format($$SELECT cron.schedule('s', %L, 'SELECT 1')$$, '@daily' || repeat(' ', 4091)),
                 '22023', 'schedule is too long: 4097 bytes', 'a schedule over 4 kB is refused');
SELECT is((SELECT count(*) FROM cron.job WHERE jobname IN ('big', 'u', 'b', 'h', 'k', 's') OR length(jobname) > 200), 0::bigint,
          'the refused calls wrote nothing');

-- the job quota: a role's own setting, 54000 naming it, counted per owner
RESET ROLE;
ALTER ROLE pgtap_sec_alice SET cron.max_jobs_per_role = 2;
SET ROLE pgtap_sec_alice;
SELECT lives_ok($$SELECT cron.schedule('q1', '@daily', 'SELECT 1')$$, 'alice schedules her first job');
SELECT lives_ok($$SELECT cron.schedule('q2', '@daily', 'SELECT 1')$$, 'and her second');
SELECT throws_ok($$SELECT cron.schedule('q3', '@daily', 'SELECT 1')$$, '54000',
                 'role pgtap_sec_alice has 2 jobs, the most cron.max_jobs_per_role (2) allows',
                 'her third is refused with 54000, naming the setting and its value');
SELECT lives_ok($$SELECT cron.schedule('q2', '@hourly', 'SELECT 2')$$, 'replacing a job of the same name is no new job');
SELECT lives_ok($$SELECT cron.alter_job((SELECT jobid FROM cron.job WHERE jobname = 'q1'), schedule => '@hourly')$$,
                'altering a job is no new job');
SET ROLE pgtap_sec_mallory;
SELECT lives_ok($$SELECT cron.schedule('m-more', '@daily', 'SELECT 1')$$, 'mallory is not counted against alice''s quota');
SELECT throws_ok($$SET cron.max_jobs_per_role = 0$$, '42501', NULL, 'a role cannot lift its quota itself');
RESET ROLE;
SELECT throws_ok(format($$SELECT cron.alter_job(%s, username => 'pgtap_sec_alice')$$,
                        (SELECT jobid FROM cron.job WHERE jobname = 'm-more')),
                 '54000', NULL, 'moving a job to a role at its quota is refused');

-- run history: no direct DELETE or LOCK; cron.delete_runs keeps unfinished rows
INSERT INTO cron.job_run_details (jobid, username, command, status, start_time, end_time)
    SELECT jobid, 'pgtap_sec_alice', 'SELECT 1', s, now() - interval '2 hours', e
    FROM cron.job, (VALUES ('succeeded', now() - interval '1 hour'), ('running', NULL::timestamptz)) v(s, e)
    WHERE jobname = 'q1';
INSERT INTO cron.job_run_details (jobid, username, command, status, end_time, retry_at)
    SELECT jobid, 'pgtap_sec_alice', 'SELECT 1', 'failed', now() - interval '1 hour', now() + interval '1 hour'
    FROM cron.job WHERE jobname = 'q1';
SET ROLE pgtap_sec_mallory;
SELECT is(cron.delete_runs(now()), 0::bigint, 'mallory''s cron.delete_runs reaches none of alice''s rows');
SET ROLE pgtap_sec_alice;
SELECT throws_ok($$DELETE FROM cron.job_run_details$$, '42501', NULL, 'alice cannot DELETE from the run log directly');
SELECT is(cron.delete_runs(now()), 1::bigint, 'alice prunes her finished run');
SELECT is((SELECT string_agg(status, ',' ORDER BY status) FROM cron.job_run_details), 'failed,running',
          'a running row and a failed one with its retry still to be made stay');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
