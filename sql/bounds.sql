--
-- start_at, end_at and jitter: what cron.next_runs(job_id), cron.job_status
-- and cron.explain say, and the errors of the options.
--
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
CREATE FUNCTION try_bounds(stmt text) RETURNS text LANGUAGE plpgsql AS $$
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

-- a campaign: every day at 09:00 from March to May 2031 (end_at excluded)
SELECT cron.schedule('campaign', '0 9 * * *', 'SELECT 1',
                     start_at => '2031-03-01 00:00+00', end_at => '2031-06-01 09:00+00') AS campaign \gset
SELECT min(t), max(t), count(*) FROM cron.next_runs(:campaign, 200) t;
SELECT start_at, end_at, jitter FROM cron.job WHERE jobid = :campaign;
SELECT next_run = '2031-03-01 09:00+00' AS next_is_the_first FROM cron.job_status WHERE jobid = :campaign;
SELECT * FROM cron.explain(:campaign) e WHERE e LIKE '%start_at%' OR e LIKE '%end_at%';
-- an occurrence at start_at counts; alter_job moves and clears the bounds
SELECT cron.alter_job(:campaign, start_at => '2031-03-02 09:00+00');
SELECT t FROM cron.next_runs(:campaign, 1) t;
SELECT cron.alter_job(:campaign, start_at => '-infinity', end_at => 'infinity');
SELECT start_at IS NULL AND end_at IS NULL AS cleared FROM cron.job WHERE jobid = :campaign;
-- a job past its end_at lists nothing, says so, and has no next_run
SELECT cron.alter_job(:campaign, end_at => '2020-01-01 00:00+00');
SELECT count(*) AS runs_ahead FROM cron.next_runs(:campaign, 5);
SELECT next_run IS NULL AS no_next_run FROM cron.job_status WHERE jobid = :campaign;
SELECT * FROM cron.explain(:campaign) e WHERE e LIKE '%end_at%';

-- jitter: each instant is its occurrence plus less than the jitter (and
-- less than the gap to the next one), the same every time it is listed,
-- and different between jobs
SELECT cron.schedule('spread-a', '0 9 * * *', 'SELECT 1', jitter => '1 minute') AS ja \gset
SELECT cron.schedule('spread-b', '0 9 * * *', 'SELECT 1', jitter => '1 minute') AS jb \gset
SELECT bool_and(t >= date_trunc('day', t) + interval '9 hours'
                AND t < date_trunc('day', t) + interval '9 hours 1 minute') AS within_the_jitter,
       count(DISTINCT t - date_trunc('day', t)) > 1 AS delays_vary,
       count(*)
FROM cron.next_runs(:ja, 50) t;
SELECT (SELECT array_agg(t) FROM cron.next_runs(:ja, 20) t) = (SELECT array_agg(t) FROM cron.next_runs(:ja, 20) t) AS stable;
SELECT (SELECT array_agg(t) FROM cron.next_runs(:ja, 20) t) <> (SELECT array_agg(t) FROM cron.next_runs(:jb, 20) t) AS per_job;
SELECT next_run = (SELECT t FROM cron.next_runs(:ja, 1) t) AS status_agrees FROM cron.job_status WHERE jobid = :ja;
-- a jitter longer than the gap between occurrences keeps them in order
SELECT cron.schedule('spread-c', '*/2 * * * *', 'SELECT 1', jitter => '1 hour') AS jc \gset
SELECT bool_and(d < interval '2 minutes') AS under_the_gap, bool_and(t > p) AS in_order
FROM (SELECT t, lag(t) OVER (ORDER BY t) AS p, t - date_trunc('minute', t) + (extract(minute FROM t)::int % 2) * interval '1 minute' AS d
      FROM cron.next_runs(:jc, 100) t) s WHERE p IS NOT NULL;
SELECT * FROM cron.explain(:ja) e WHERE e LIKE '%jitter%';
SELECT position(to_char((SELECT t FROM cron.next_runs(:ja, 1) t) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') IN e) = 12
       AS explain_lists_the_same_instants
FROM cron.explain(:ja) e WHERE e LIKE 'Next runs:%';
-- a jitter of a day on a schedule of every second costs no more than the
-- gap: each delay is below a second, so none
SELECT cron.schedule('spread-d', '* * * * * *', 'SELECT 1', jitter => '1 day') AS jd \gset
SELECT count(*) = 100 AND bool_and(t = date_trunc('second', t)) AS every_second
FROM (SELECT t, lag(t) OVER (ORDER BY t) AS p FROM cron.next_runs(:jd, 100) t) s
WHERE p IS NULL OR t - p = interval '1 second';
SELECT cron.unschedule(:jd);
SELECT cron.alter_job(:ja, jitter => '0');
SELECT jitter IS NULL AS cleared FROM cron.job WHERE jobid = :ja;

-- errors: nothing is written
SELECT count(*) AS jobs_before FROM cron.job \gset
SELECT try_bounds($$SELECT cron.schedule('bad', '@daily', 'SELECT 1', start_at => '2031-06-01', end_at => '2031-03-01')$$);
SELECT try_bounds($$SELECT cron.schedule('bad', '@daily', 'SELECT 1', start_at => '2031-03-01', end_at => '2031-03-01')$$);
SELECT try_bounds($$SELECT cron.schedule('bad', '@daily', 'SELECT 1', start_at => 'infinity')$$);
SELECT try_bounds($$SELECT cron.schedule('bad', '@daily', 'SELECT 1', end_at => '-infinity')$$);
SELECT try_bounds($$SELECT cron.schedule('bad', '@daily', 'SELECT 1', jitter => '2 days')$$);
SELECT try_bounds($$SELECT cron.schedule('bad', '@daily', 'SELECT 1', jitter => '1 month')$$);
SELECT try_bounds($$SELECT cron.schedule('bad', '@daily', 'SELECT 1', jitter => '-1 second')$$);
SELECT try_bounds($$SELECT cron.schedule('bad', '@daily', 'SELECT 1', jitter => '500 milliseconds')$$);
SELECT try_bounds(format($$SELECT cron.alter_job(%s, start_at => '2032-01-01')$$, :campaign));
SELECT count(*) = :jobs_before AS nothing_written FROM cron.job;

SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname IN ('campaign', 'spread-a', 'spread-b', 'spread-c') ORDER BY jobid;
DROP FUNCTION try_bounds(text);
