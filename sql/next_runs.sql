--
-- cron.next_runs(schedule, ...): the schedule language, one form at a time.
-- All instants in UTC unless a zone is named.
--
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
CREATE FUNCTION runs(sched text, after timestamptz, n int DEFAULT 4, zone text DEFAULT 'UTC')
RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS Dy'), ' | ' ORDER BY t)
    FROM cron.next_runs(sched, zone, after, n) AS t
$$;

-- the five fields, lists, ranges, steps, names
SELECT runs('0 3 * * *', '2026-01-01');
SELECT runs('*/15 * * * *', '2026-01-01');
SELECT runs('0-30/10 9,17 * * *', '2026-01-01', 6);
SELECT runs('0 0 1 JAN-mar/2 *', '2026-01-01', 3);
SELECT runs('0 12 * * MON-fri', '2026-01-02', 3);
SELECT runs('0 0 * * 7', '2026-01-01', 2);
SELECT runs('0 0 * * 0', '2026-01-01', 2);
-- both day fields restricted: either matches (Vixie); one starred: both
SELECT runs('0 0 13 * 5', '2026-01-01', 4);
SELECT runs('0 0 */10 * mon', '2026-01-01', 3);
-- six fields: seconds first
SELECT runs('*/20 * * * * *', '2026-01-01', 4);
SELECT runs('30 0 12 * * *', '2026-01-01', 2);
-- last day, last weekday, n-th weekday
SELECT runs('0 0 L * *', '2026-01-01', 3);
SELECT runs('0 0 $ 2 *', '2027-06-01', 2);
SELECT runs('0 12 * * 5L', '2026-01-01', 3);
SELECT runs('0 9 * * 1#2', '2026-01-01', 3);
-- macros
SELECT runs('@yearly', '2026-06-01', 2);
SELECT runs('@annually', '2026-06-01', 1);
SELECT runs('@monthly', '2026-06-01', 2);
SELECT runs('@weekly', '2026-06-01', 2);
SELECT runs('@daily', '2026-06-01', 2);
SELECT runs('@midnight', '2026-06-01', 1);
SELECT runs('@hourly', '2026-06-01', 2);
SELECT runs('@HOURLY', '2026-06-01', 1);
-- seconds and @every: multiples of the period since the Unix epoch
SELECT runs('7 seconds', '2026-01-01', 3);
SELECT runs('1 second', '2026-01-01 00:00:00.5', 2);
SELECT runs('@every 90 seconds', '2026-01-01', 3);
SELECT runs('@every 1h30m', '2026-01-01', 2);
SELECT runs('@every 2 hours 30 minutes', '2026-01-01', 2);
SELECT runs('@every 1 day', '2026-03-07 12:00', 2, 'America/New_York');
SELECT runs('@every 1 week', '2026-01-01', 2);
-- @at: once; a literal without offset is read in the zone
SELECT runs('@at 2026-12-24 18:00', '2026-01-01', 3, 'America/New_York');
SELECT runs('@at 2026-12-24 18:00:00+01', '2026-01-01', 3, 'America/New_York');
SELECT runs('@at 2026-12-24T18:00:00.5Z', '2026-01-01', 3);
SELECT runs('@at 2026-12-24 18:00', '2026-12-24 23:00', 3, 'America/New_York') IS NULL AS past;
-- @reboot and @restart are valid and list nothing
SELECT count(*) AS reboot_runs FROM cron.next_runs('@reboot');
SELECT count(*) AS restart_runs FROM cron.next_runs('@restart');
-- rare and never
SELECT runs('0 0 29 2 *', '2026-01-01', 3);
SELECT runs('0 0 29 2 *', '2096-03-01', 1);
SELECT count(*) AS never FROM cron.next_runs('0 0 30 2 *');
SELECT count(*) AS never FROM cron.next_runs('0 0 31 4,6,9,11 *');

-- count: the default is 10, 0 returns nothing
SELECT count(*) AS default_count FROM cron.next_runs('* * * * *');
SELECT count(*) AS zero_count FROM cron.next_runs('* * * * *', count => 0);
-- 'after' is exclusive
SELECT runs('0 3 * * *', '2026-01-01 03:00:00', 1);
SELECT runs('0 3 * * *', '2026-01-01 02:59:59.999999', 1);
-- NULL zone: cron.timezone (UTC); NULL after: pg_chime's now
SHOW cron.timezone;
SELECT t > now() AND t <= now() + interval '1 minute' AS next_minute
  FROM cron.next_runs('* * * * *', count => 1) AS t;
-- cron.clock_skew moves pg_chime's now
SET cron.clock_skew = '-400 days';
SELECT t < now() - interval '399 days' AS in_the_past
  FROM cron.next_runs('* * * * *', count => 1) AS t;
SET cron.clock_skew = '-9600:00:00';
SELECT t < now() - interval '399 days' AS in_the_past
  FROM cron.next_runs('* * * * *', count => 1) AS t;
SET cron.clock_skew = '100 years';
SELECT t > now() + interval '99 years' AS far_future
  FROM cron.next_runs('* * * * *', count => 1) AS t;
RESET cron.clock_skew;

-- zone names in any letter case; the session's TimeZone changes nothing
SELECT runs('0 3 * * *', '2026-01-01', 1, 'america/NEW_YORK');
SET TimeZone = 'Asia/Tokyo';
SELECT runs('0 3 * * *', '2026-01-01 00:00+00', 1, 'America/New_York');
SELECT runs('@at 2026-12-24 18:00', '2026-01-01 00:00+00', 1, 'America/New_York');
SELECT runs('30 2 * * *', '2026-03-07 00:00+00', 3, 'America/New_York');
SET TimeZone = 'UTC';
SELECT runs('30 2 * * *', '2026-03-07 00:00+00', 3, 'America/New_York');

-- run_window: only instants inside [start, end) local time
SELECT string_agg(to_char(t, 'MM-DD HH24:MI'), ' | ' ORDER BY t)
  FROM cron.next_runs('0 * * * *', 'UTC', '2026-01-01', 5, run_window => '03:00-06:00') AS t;
SELECT string_agg(to_char(t, 'MM-DD HH24:MI'), ' | ' ORDER BY t)
  FROM cron.next_runs('0 * * * *', 'UTC', '2026-01-01', 5, run_window => '22:00-02:00') AS t;
SELECT count(*) AS never_in_window
  FROM cron.next_runs('0 12 * * *', 'UTC', '2026-01-01', 5, run_window => '03:00-06:00');
SELECT string_agg(to_char(t, 'MM-DD HH24:MI:SS'), ' | ' ORDER BY t)
  FROM cron.next_runs('@every 20 minutes', 'UTC', '2026-01-01', 5, run_window => '03:00-04:00') AS t;

DROP FUNCTION runs(text, timestamptz, int, text);
