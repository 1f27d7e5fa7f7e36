/* pg_chime 1.0 -> 1.1 */

\echo Use "ALTER EXTENSION pg_chime UPDATE TO '1.1'" to load this file. \quit

-- When a failed attempt will be made again: pending retries survive a
-- restart of the scheduler or the server.
ALTER TABLE cron.job_run_details ADD COLUMN retry_at timestamptz;
CREATE INDEX job_run_details_retry_idx ON cron.job_run_details (jobid)
    WHERE retry_at IS NOT NULL;

-- The scheduler finds the manual runs to start without reading the history.
CREATE INDEX job_run_details_manual_idx ON cron.job_run_details (runid)
    WHERE trigger = 'manual' AND status = 'starting' AND job_pid IS NULL;
