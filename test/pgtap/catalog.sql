-- pgTAP: the shape of pg_chime's catalog, its functions and its privileges.
\set QUIET 1
\pset format unaligned
\pset tuples_only true
BEGIN;
SELECT plan(60);

SELECT has_schema('cron');
SELECT has_table('cron', 'job', 'cron.job exists');
SELECT has_table('cron', 'job_run_details', 'cron.job_run_details exists');
SELECT has_table('cron', 'job_run_key', 'cron.job_run_key exists');
SELECT has_table('cron', 'secret', 'cron.secret exists');

SELECT columns_are('cron', 'job', ARRAY[
    'jobid', 'schedule', 'command', 'nodename', 'nodeport', 'database', 'username',
    'active', 'jobname', 'kind', 'timezone', 'run_window', 'once_per', 'overlap',
    'concurrency_key', 'max_attempts', 'retry_delay', 'timeout', 'catchup', 'dst_gap',
    'url', 'method', 'headers', 'body', 'on_success', 'on_failure', 'alert_after',
    'notify_channel', 'start_at', 'end_at', 'jitter', 'concurrency_limit']);
SELECT columns_are('cron', 'job_run_details', ARRAY[
    'jobid', 'runid', 'job_pid', 'database', 'username', 'command', 'status',
    'return_message', 'start_time', 'end_time', 'scheduled_time', 'attempt', 'run_key',
    'trigger', 'http_status', 'response_body', 'occurrences', 'retry_at', 'commit_xid',
    'payload', 'hook_chain', 'first_runid']);
SELECT has_index('cron', 'job_run_details', 'job_run_details_retry_idx', 'pending retries are indexed');
SELECT columns_are('cron', 'job_run_key', ARRAY[
    'jobid', 'run_key', 'runid', 'state', 'claimed_at', 'finished_at']);
SELECT columns_are('cron', 'secret', ARRAY['owner', 'name', 'value', 'created_at', 'updated_at']);
SELECT has_view('cron', 'job_status', 'cron.job_status exists');
SELECT columns_are('cron', 'job_status', ARRAY[
    'jobid', 'jobname', 'username', 'active', 'schedule', 'next_run', 'last_start', 'last_end',
    'last_status', 'last_message', 'running', 'consecutive_failures', 'last_success', 'total_runs',
    'total_successes', 'total_failures', 'avg_duration', 'last_duration']);
SELECT col_type_is('cron', 'job_status', 'avg_duration', 'interval', 'job_status.avg_duration is interval');
SELECT col_type_is('cron', 'job_status', 'last_success', 'timestamp with time zone', 'job_status.last_success is timestamptz');
SELECT table_privs_are('cron', 'job_stats', 'public', ARRAY['SELECT'], 'public may only read cron.job_stats');

-- pg_cron's columns keep pg_cron's types
SELECT col_type_is('cron', 'job', 'jobid', 'bigint', 'job.jobid is bigint');
SELECT col_type_is('cron', 'job', 'nodeport', 'integer', 'job.nodeport is integer');
SELECT col_type_is('cron', 'job', 'active', 'boolean', 'job.active is boolean');
SELECT col_type_is('cron', 'job_run_details', 'runid', 'bigint', 'job_run_details.runid is bigint');
SELECT col_type_is('cron', 'job_run_details', 'job_pid', 'integer', 'job_run_details.job_pid is integer');
SELECT col_type_is('cron', 'job_run_details', 'start_time', 'timestamp with time zone', 'start_time is timestamptz');
SELECT col_type_is('cron', 'job_run_details', 'scheduled_time', 'timestamp with time zone', 'scheduled_time is timestamptz');
SELECT col_type_is('cron', 'job', 'headers', 'jsonb', 'job.headers is jsonb');
SELECT col_type_is('cron', 'job', 'retry_delay', 'interval', 'job.retry_delay is interval');
SELECT col_type_is('cron', 'job_run_key', 'claimed_at', 'timestamp with time zone', 'claimed_at is timestamptz');

SELECT col_is_pk('cron', 'job', 'jobid', 'job is keyed by jobid');
SELECT col_is_pk('cron', 'job_run_details', 'runid', 'job_run_details is keyed by runid');
SELECT col_is_pk('cron', 'job_run_key', ARRAY['jobid', 'run_key'], 'job_run_key is keyed by (jobid, run_key)');
SELECT col_is_pk('cron', 'secret', ARRAY['owner', 'name'], 'secret is keyed by (owner, name)');
SELECT has_index('cron', 'job_run_details', 'job_run_details_jobid_start_time_idx',
                 ARRAY['jobid', 'start_time'], 'runs are indexed on (jobid, start_time)');
SELECT fk_ok('cron', 'job_run_key', 'jobid', 'cron', 'job', 'jobid');
SELECT col_default_is('cron', 'job', 'overlap', 'skip', 'overlap defaults to skip');
SELECT col_default_is('cron', 'job', 'max_attempts', 1, 'max_attempts defaults to 1');
SELECT col_default_is('cron', 'job', 'dst_gap', 'end', 'dst_gap defaults to end');

-- the API (pg_cron's names and return types)
SELECT function_returns('cron', 'schedule', ARRAY['text', 'text'], 'bigint');
SELECT function_returns('cron', 'schedule', ARRAY['text', 'text', 'text', 'text', 'text', 'text', 'text',
       'text', 'integer', 'interval', 'interval', 'interval', 'text', 'text', 'text', 'boolean',
       'text', 'text', 'integer', 'text', 'timestamp with time zone', 'timestamp with time zone',
       'interval', 'integer'], 'bigint');
SELECT function_returns('cron', 'schedule_in_database',
       ARRAY['text', 'text', 'text', 'text', 'text', 'boolean'], 'bigint');
SELECT function_returns('cron', 'unschedule', ARRAY['bigint'], 'boolean');
SELECT function_returns('cron', 'unschedule', ARRAY['text'], 'boolean');
SELECT has_function('cron', 'alter_job', 'cron.alter_job exists');
SELECT has_function('cron', 'schedule_http', 'cron.schedule_http exists');
SELECT function_returns('cron', 'next_runs', ARRAY['text', 'text', 'timestamp with time zone', 'integer', 'text', 'text'], 'setof timestamp with time zone');
SELECT function_returns('cron', 'next_runs', ARRAY['bigint', 'integer'], 'setof timestamp with time zone');
SELECT function_returns('cron', 'explain', ARRAY['bigint'], 'setof text');
SELECT function_returns('cron', 'run_now', ARRAY['bigint', 'boolean', 'jsonb'], 'bigint');
SELECT function_returns('cron', 'run_now', ARRAY['text', 'boolean', 'jsonb'], 'bigint');
SELECT function_returns('cron', 'current_run', ARRAY[]::text[], 'setof record');
SELECT function_returns('cron', 'set_secret', ARRAY['text', 'text'], 'void');
SELECT function_returns('cron', 'drop_secret', ARRAY['text'], 'boolean');

-- privileges: read-only tables, row-level security everywhere, no
-- SECURITY DEFINER functions, secret values write-only
SELECT table_privs_are('cron', 'job', 'public', ARRAY['SELECT'], 'public may only read cron.job');
SELECT table_privs_are('cron', 'job_run_details', 'public', ARRAY['SELECT'], 'public may only read its runs (pruned with cron.delete_runs)');
SELECT table_privs_are('cron', 'job_run_key', 'public', ARRAY['SELECT'], 'public may only read cron.job_run_key');
SELECT is((SELECT count(*) FROM pg_class
           WHERE relnamespace = 'cron'::regnamespace AND relkind = 'r' AND NOT relrowsecurity),
          0::bigint, 'every cron table has row-level security');
SELECT ok(NOT has_table_privilege('public', 'cron.scheduler_state', 'SELECT'),
          'the scheduler''s state is not public');
SELECT has_table('cron', 'run_commit', 'cron.run_commit exists');
SELECT ok(NOT has_table_privilege('public', 'cron.run_commit', 'SELECT,INSERT,UPDATE,DELETE'),
          'cron.run_commit is not public');
SELECT is((SELECT count(*) FROM pg_proc WHERE pronamespace = 'cron'::regnamespace AND prosecdef),
          0::bigint, 'no cron function is SECURITY DEFINER');
SELECT ok(NOT has_column_privilege('public', 'cron.secret', 'value', 'SELECT'), 'secret values are write-only');
SELECT ok(has_column_privilege('public', 'cron.secret', 'name', 'SELECT'), 'secret names are readable');
SELECT ok(NOT has_function_privilege('public', 'cron._check_installable()', 'EXECUTE'), 'the install check is not public');

SELECT * FROM finish();
ROLLBACK;
