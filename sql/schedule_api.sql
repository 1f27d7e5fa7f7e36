--
-- The job catalog API: schedule (both forms), schedule_in_database,
-- schedule_http, alter_job, unschedule (both forms), next_runs(job_id),
-- secrets.  Errors are in errors.sql.
--
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
-- pg_chime's now, placed at 2026-03-07 00:00 UTC, so next_runs(job_id) is fixed
SELECT set_config('cron.clock_skew',
                  (timestamptz '2026-03-07 00:00:00+00' - clock_timestamp())::text,
                  false) IS NOT NULL AS clock_placed;

CREATE VIEW jobs AS
    SELECT jobid, schedule, command, database, username = current_user AS mine,
           active, jobname, kind,
           timezone, run_window, once_per, overlap, concurrency_key, max_attempts,
           retry_delay, timeout, catchup, dst_gap, url, method, headers, body
    FROM cron.job ORDER BY jobid;

-- pg_cron's two-argument form: a new unnamed job each time, with defaults
SELECT cron.schedule('0 3 * * *', 'SELECT 1') AS jobid;
SELECT cron.schedule('0 3 * * *', 'SELECT 1') AS jobid;
\x on
SELECT * FROM jobs WHERE jobid = 1;
\x off

-- a named job with every option; values stored in their canonical form
SELECT cron.schedule('nightly', '45 2 * * *', 'SELECT 2',
                     timezone => 'america/new_york', run_window => '03:00-06:00',
                     once_per => 'DAY', overlap => 'Buffer_One',
                     concurrency_key => 'batch', max_attempts => 3,
                     retry_delay => '30 seconds', timeout => '2 minutes',
                     catchup => '1 hour', dst_gap => 'SHIFT') AS jobid;
\x on
SELECT * FROM jobs WHERE jobname = 'nightly';
\x off

-- 02:45 New York is outside 03:00-06:00 except when 'shift' moves it to
-- 03:45 on the spring-forward day: once a year
SELECT cron.next_runs(3, 3) AS nightly_runs;

-- the same name again replaces the definition and keeps the jobid; options
-- not given keep their values
SELECT cron.schedule('nightly', '0 4 * * *', 'SELECT 3') AS same_jobid;
SELECT jobid, schedule, command, timezone, run_window, once_per, overlap,
       max_attempts, dst_gap FROM jobs WHERE jobname = 'nightly';
SELECT cron.next_runs(3, 2) AS nightly_runs;

-- alter_job changes only what it is given; '' clears a text option and a
-- zero timeout means none
SELECT cron.alter_job(3, schedule => '*/30 4 * * *', run_window => '', timeout => '0');
SELECT jobid, schedule, command, timezone, run_window, timeout, max_attempts FROM jobs WHERE jobid = 3;
SELECT cron.next_runs(3, 3) AS nightly_runs;
SELECT cron.alter_job(3, timezone => '', active => false);
SELECT jobid, timezone, active FROM jobs WHERE jobid = 3;
SELECT count(*) AS inactive_runs FROM cron.next_runs(3);
SELECT cron.alter_job(3, active => true, command => 'SELECT 4', database => 'contrib_regression');
SELECT jobid, command, active, database FROM jobs WHERE jobid = 3;
-- a job without its own zone follows cron.timezone (UTC here)
SELECT cron.next_runs(3, 2) AS nightly_runs;

-- schedule_in_database (pg_cron's form)
SELECT cron.schedule_in_database('in-db', '@hourly', 'SELECT 5', 'postgres') AS jobid;
SELECT jobid, jobname, database, mine, active FROM jobs WHERE jobname = 'in-db';
SELECT cron.schedule_in_database('in-db', '@hourly', 'SELECT 5', 'postgres', active => false) AS same_jobid;
SELECT jobid, active FROM jobs WHERE jobname = 'in-db';

-- HTTP jobs; secrets are named, never stored in the job
SELECT cron.set_secret('cron_secret', 'first value');
SELECT cron.set_secret('cron_secret', 'second value');
SELECT name, value FROM cron.secret ORDER BY name;
SELECT cron.schedule_http('hook', '0 3 * * *', 'https://api.example.com/batch',
                          headers => '{"x-cron-secret": "{{secret.cron_secret}}"}',
                          timezone => 'America/New_York', run_window => '03:00-06:00',
                          once_per => 'day', max_attempts => 3, timeout => '120 seconds') AS jobid;
\x on
SELECT * FROM jobs WHERE jobname = 'hook';
\x off
SELECT cron.alter_job(5, url => 'https://api.example.com/v2?token={{secret.cron_secret}}',
                      method => 'put', body => '{"run": 1}');
SELECT command, url, method, body FROM jobs WHERE jobid = 5;
SELECT cron.schedule_http('get-hook', '@every 90 seconds', 'http://localhost:8080/ping', 'GET') AS jobid;
SELECT jobid, command, method, headers, body FROM jobs WHERE jobname = 'get-hook';
-- scheduling a SQL job under an HTTP job's name turns it into a SQL job
SELECT cron.schedule('get-hook', '@every 90 seconds', 'SELECT 6') AS same_jobid;
SELECT jobid, kind, command, url, method, headers FROM jobs WHERE jobname = 'get-hook';

-- unschedule by id and by name
SELECT cron.unschedule(2);
SELECT cron.unschedule('get-hook');
SELECT jobid, jobname FROM jobs;

-- dropping a secret
SELECT cron.drop_secret('cron_secret') AS dropped, cron.drop_secret('cron_secret') AS again;

-- the job id sequence: only successful schedules took an id
SELECT last_value FROM cron.jobid_seq;

RESET cron.clock_skew;
SELECT cron.unschedule(jobid) FROM cron.job;
DROP VIEW jobs;
