--
-- Daylight-saving rules (SPEC section 3) through cron.next_runs.  Each line
-- shows the UTC instant and the local reading with its offset.
--
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
CREATE FUNCTION dst(sched text, zone text, after timestamptz, n int DEFAULT 3,
                    gap text DEFAULT 'end', win text DEFAULT NULL)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz;
BEGIN
    PERFORM set_config('TimeZone', zone, true);
    FOR t IN SELECT * FROM cron.next_runs(sched, zone, after, n, gap, win) LOOP
        RETURN NEXT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI"Z"')
                    || '  =  ' || to_char(t, 'YYYY-MM-DD HH24:MI:SS OF');
    END LOOP;
END $$;

-- New York 2026: spring forward 03-08 02:00 EST -> 03:00 EDT
-- fixed-time job in the gap: 'end' fires at 03:00, 'skip' not at all,
-- 'shift' at the reading with the old offset (03:30)
SELECT dst('30 2 * * *', 'America/New_York', '2026-03-07', 3, 'end');
SELECT dst('30 2 * * *', 'America/New_York', '2026-03-07', 3, 'skip');
SELECT dst('30 2 * * *', 'America/New_York', '2026-03-07', 3, 'shift');
-- several readings in one gap: once at the end, or each shifted
SELECT dst('0,30 2 * * *', 'America/New_York', '2026-03-08', 3, 'end');
SELECT dst('0,30 2 * * *', 'America/New_York', '2026-03-08', 3, 'shift');
-- wildcard job: slots in the gap do not exist, no make-up run
SELECT dst('*/30 * * * *', 'America/New_York', '2026-03-08 06:00Z', 3);
-- classification: a seconds field does not count, ranges are fixed-time
SELECT dst('0 30 2 * * *', 'America/New_York', '2026-03-08', 1, 'end');
SELECT dst('0-59 0-23 * * *', 'America/New_York', '2026-03-08 06:58Z', 2);

-- New York 2026: fall back 11-01 02:00 EDT -> 01:00 EST
-- wildcard job: both passes fire
SELECT dst('*/30 * * * *', 'America/New_York', '2026-11-01 04:45Z', 5);
SELECT dst('@hourly', 'America/New_York', '2026-11-01 04:30Z', 3);
SELECT dst('0 */2 * * *', 'America/New_York', '2026-11-01 03:30Z', 3);
-- fixed-time job: once, at the first pass
SELECT dst('30 1 * * *', 'America/New_York', '2026-10-31', 3);
-- asked between the two passes, it does not fire in the second
SELECT dst('30 1 * * *', 'America/New_York', '2026-11-01 05:45Z', 1);

-- London 2026: 03-29 01:00 GMT -> 02:00 BST; 10-25 02:00 BST -> 01:00 GMT
SELECT dst('30 1 * * *', 'Europe/London', '2026-03-28', 3, 'end');
SELECT dst('30 1 * * *', 'Europe/London', '2026-10-24 12:00Z', 2);
-- Sydney 2026: 10-04 02:00 AEST -> 03:00 AEDT; 04-05 03:00 AEDT -> 02:00 AEST
SELECT dst('30 2 * * *', 'Australia/Sydney', '2026-10-02', 3, 'shift');
SELECT dst('30 2 * * *', 'Australia/Sydney', '2026-04-03', 3);
-- Lord Howe, 30-minute shifts: 10-04 02:00 -> 02:30; 04-05 02:00 -> 01:30
SELECT dst('15 2 * * *', 'Australia/Lord_Howe', '2026-10-03', 2, 'end');
SELECT dst('15 2 * * *', 'Australia/Lord_Howe', '2026-10-03', 2, 'skip');
SELECT dst('15 2 * * *', 'Australia/Lord_Howe', '2026-10-03', 2, 'shift');
SELECT dst('45 1 * * *', 'Australia/Lord_Howe', '2026-04-04', 2);
SELECT dst('*/15 * * * *', 'Australia/Lord_Howe', '2026-04-04 14:40Z', 4);
-- Santiago, transitions at midnight: 09-06 00:00 -> 01:00; 04-05 00:00 -> 04-04 23:00
SELECT dst('0 0 * * *', 'America/Santiago', '2026-09-05', 3, 'end');
SELECT dst('0 0 * * *', 'America/Santiago', '2026-09-05', 2, 'skip');
SELECT dst('0 * * * *', 'America/Santiago', '2026-09-06 02:30Z', 3);
SELECT dst('30 23 * * *', 'America/Santiago', '2026-04-04 12:00Z', 2);
-- Havana, transitions at midnight: 03-08 00:00 -> 01:00; 11-01 01:00 -> 00:00
SELECT dst('30 0 * * *', 'America/Havana', '2026-03-07', 3, 'end');
SELECT dst('30 0 * * *', 'America/Havana', '2026-10-31 12:00Z', 2);
-- Chatham, +12:45/+13:45: 09-27 02:45 -> 03:45
SELECT dst('0 3 * * *', 'Pacific/Chatham', '2026-09-26', 2, 'end');
SELECT dst('0 3 * * *', 'Pacific/Chatham', '2026-09-26', 2, 'shift');
-- Troll, a 2-hour gap: 03-29 01:00 -> 03:00; 'shift' moves 02:30 to 04:30
SELECT dst('30 2 * * *', 'Antarctica/Troll', '2026-03-28 12:00Z', 2, 'shift');

-- run_window is checked against the actual instant: 02:30 moved to 03:00
-- by 'end' is inside 03:00-06:00 (once a year, on the gap day)
SELECT dst('30 2 * * *', 'America/New_York', '2026-03-01', 3, 'end', '03:00-06:00');
-- @at without offset in a gap or overlap is read like a fixed-time job
SELECT dst('@at 2026-03-08 02:30', 'America/New_York', '2026-01-01', 1, 'end');
SELECT dst('@at 2026-03-08 02:30', 'America/New_York', '2026-01-01', 1, 'shift');
SELECT dst('@at 2026-11-01 01:30', 'America/New_York', '2026-01-01', 1);
-- seconds intervals are real elapsed time across a transition
SELECT dst('@every 30 minutes', 'America/New_York', '2026-11-01 05:15Z', 4);

DROP FUNCTION dst(text, text, timestamptz, int, text, text);
