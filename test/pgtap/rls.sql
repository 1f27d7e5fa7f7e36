-- pgTAP: two ordinary roles see and change only their own jobs, runs, keys
-- and secrets; direct writes to the catalog are refused.
\set QUIET 1
\pset format unaligned
\pset tuples_only true
BEGIN;
SELECT plan(36);

CREATE ROLE pgtap_alice;
CREATE ROLE pgtap_bob;
GRANT USAGE ON SCHEMA cron TO pgtap_alice, pgtap_bob;

SET ROLE pgtap_alice;
SELECT cron.schedule('a1', '@daily', 'SELECT 1') AS a1 \gset
SELECT cron.schedule('shared', '@daily', 'SELECT ''alice''') AS alice_shared \gset
SELECT cron.set_secret('token', 'alice-secret-value');
SET ROLE pgtap_bob;
SELECT cron.schedule('b1', '@hourly', 'SELECT 2') AS b1 \gset
SELECT cron.schedule('shared', '@daily', 'SELECT ''bob''') AS bob_shared \gset
RESET ROLE;

-- run history and keys, as the scheduler would write them
INSERT INTO cron.job_run_details (jobid, username, command, status, end_time)
    VALUES (:a1, 'pgtap_alice', 'SELECT 1', 'succeeded', now() - interval '1 hour'),
           (:b1, 'pgtap_bob', 'SELECT 2', 'failed', now() - interval '1 hour');
INSERT INTO cron.job_run_key (jobid, run_key, state, claimed_at)
    VALUES (:a1, '2026-03-08', 'succeeded', now()), (:b1, '2026-03-08', 'failed', now());
INSERT INTO cron.job_stats (jobid, total_runs) VALUES (:a1, 5), (:b1, 7);

SET ROLE pgtap_bob;
SELECT results_eq($$SELECT jobname FROM cron.job ORDER BY jobname$$,
                  ARRAY['b1', 'shared'], 'bob sees only his jobs');
SELECT isnt(:alice_shared::bigint, :bob_shared::bigint, 'the same job name is a different job per owner');
SELECT results_eq($$SELECT command FROM cron.job_run_details$$, ARRAY['SELECT 2'], 'bob sees only his runs');
SELECT results_eq($$SELECT jobid FROM cron.job_run_key$$, ARRAY[:b1::bigint], 'bob sees only his keys');
SELECT is((SELECT count(*) FROM cron.secret), 0::bigint, 'bob sees none of alice''s secrets');
SELECT results_eq($$SELECT jobname FROM cron.job_status ORDER BY jobname$$,
                  ARRAY['b1', 'shared'], 'bob''s cron.job_status lists only his jobs');
SELECT results_eq($$SELECT total_runs FROM cron.job_stats$$, ARRAY[7::bigint], 'bob reads only his statistics');
SELECT throws_ok($$UPDATE cron.job_stats SET total_runs = 0$$, '42501', NULL, 'direct UPDATE of cron.job_stats is refused');
SELECT throws_ok($$SELECT cron.schedule('b2', '@daily', 'SELECT 2', on_failure => 'a1')$$, '42704',
                 'invalid on_failure: job "a1" does not exist', 'a hook names a job of the same owner only');
SELECT throws_ok(format($$SELECT cron.alter_job(%s, on_success => 'a1')$$, :b1), '42704',
                 'invalid on_success: job "a1" does not exist', 'alter_job refuses another role''s job as a hook');

SELECT throws_ok($$INSERT INTO cron.job (schedule, command, username) VALUES ('@daily', 'SELECT 1', 'pgtap_alice')$$,
                 '42501', NULL, 'direct INSERT into cron.job is refused');
SELECT throws_ok($$UPDATE cron.job SET command = 'SELECT 666'$$, '42501', NULL, 'direct UPDATE of cron.job is refused');
SELECT throws_ok($$DELETE FROM cron.job$$, '42501', NULL, 'direct DELETE from cron.job is refused');
SELECT throws_ok($$INSERT INTO cron.job_run_details (jobid, status) VALUES (1, 'succeeded')$$,
                 '42501', NULL, 'direct INSERT into cron.job_run_details is refused');
SELECT throws_ok($$UPDATE cron.job_run_details SET status = 'succeeded'$$,
                 '42501', NULL, 'direct UPDATE of cron.job_run_details is refused');
SELECT throws_ok($$INSERT INTO cron.job_run_key (jobid, run_key, state, claimed_at) VALUES (1, 'k', 'running', now())$$,
                 '42501', NULL, 'direct INSERT into cron.job_run_key is refused');
SELECT throws_ok($$INSERT INTO cron.secret (owner, name, value) VALUES ('pgtap_bob', 'x', 'y')$$,
                 '42501', NULL, 'direct INSERT into cron.secret is refused');

SELECT throws_ok(format($$SELECT cron.unschedule(%s)$$, :a1), '42501', NULL, 'bob cannot unschedule alice''s job');
SELECT throws_ok(format($$SELECT cron.alter_job(%s, command => 'SELECT 666')$$, :a1), '42704',
                 format('Job %s does not exist or you don''t own it', :a1),
                 'bob cannot alter alice''s job (and is not told it exists, as in pg_cron)');
SELECT throws_ok($$SELECT cron.schedule('evil', '@daily', 'SELECT 666', username => 'pgtap_alice')$$,
                 '42501', 'must be superuser to create a job for another role', 'bob cannot schedule as alice');
SELECT throws_ok($$SELECT cron.unschedule('a1')$$, '42704', NULL, 'alice''s job names mean nothing to bob');

-- run history: no DELETE, which would also let a role lock the table and
-- stop every role's runs; cron.delete_runs prunes one's own rows only
SELECT throws_ok($$DELETE FROM cron.job_run_details$$, '42501', NULL, 'bob may not DELETE from the run log');
SELECT throws_ok($$LOCK TABLE cron.job_run_details IN ACCESS EXCLUSIVE MODE$$, '42501', NULL,
                 'bob cannot lock the run log');
SELECT throws_ok($$LOCK TABLE cron.job IN SHARE MODE$$, '42501', NULL, 'bob cannot lock the job table');
SELECT is(cron.delete_runs(now() - interval '2 hours'), 0::bigint, 'cron.delete_runs keeps what ended later');
SELECT is(cron.delete_runs(now()), 1::bigint, 'bob prunes his own finished run');
RESET ROLE;
SELECT is((SELECT count(*) FROM cron.job_run_details WHERE username = 'pgtap_alice'), 1::bigint,
          'alice''s run history survives bob''s cron.delete_runs');
SELECT is((SELECT command FROM cron.job WHERE jobid = :a1), 'SELECT 1', 'alice''s job is unchanged');

-- secrets: names readable by their owner, values never
SET ROLE pgtap_alice;
SELECT results_eq($$SELECT name FROM cron.secret$$, ARRAY['token'], 'alice sees her secret''s name');
SELECT throws_ok($$SELECT value FROM cron.secret$$, '42501', NULL, 'alice cannot read her secret''s value');
SELECT lives_ok($$SELECT cron.set_secret('token', 'rotated')$$, 'alice can replace her secret');
SELECT ok(cron.drop_secret('token'), 'alice can drop her secret');
SELECT ok(NOT cron.drop_secret('token'), 'dropping it again reports false');
RESET ROLE;

-- a superuser sees everything and may act for another role
SELECT is((SELECT count(*) FROM cron.job WHERE username IN ('pgtap_alice', 'pgtap_bob')), 4::bigint,
          'a superuser sees every job');
SELECT lives_ok($$SELECT cron.schedule('for-bob', '@daily', 'SELECT 3', username => 'pgtap_bob')$$,
                'a superuser may schedule for another role');
SELECT is((SELECT username FROM cron.job WHERE jobname = 'for-bob'), 'pgtap_bob', 'the job runs as bob');

SELECT * FROM finish();
ROLLBACK;
