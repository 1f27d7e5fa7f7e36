/*-------------------------------------------------------------------------
 *
 * test_engine.c
 *	  Table-driven unit tests of the schedule parser and the time engine.
 *	  Prints TAP, so prove (and make test) can count it.
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "occurrence.h"
#include "schedule.h"
#include "zone_libc.h"

/* One case: the first instants strictly after 'after', all in UTC. */
typedef struct RunCase
{
	const char *schedule;
	const char *zone;
	const char *gap;			/* NULL = 'end' */
	const char *window;			/* NULL = none */
	const char *after;
	const char *expect[6];		/* NULL-terminated; {NULL} = never fires */
} RunCase;

static const RunCase run_cases[] = {
	/* New York, spring forward 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z) */
	{"30 2 * * *", "America/New_York", "end", NULL, "2026-03-07 00:00:00",
	{"2026-03-07 07:30:00", "2026-03-08 07:00:00", "2026-03-09 06:30:00"}},
	{"30 2 * * *", "America/New_York", "skip", NULL, "2026-03-07 00:00:00",
	{"2026-03-07 07:30:00", "2026-03-09 06:30:00", "2026-03-10 06:30:00"}},
	{"30 2 * * *", "America/New_York", "shift", NULL, "2026-03-07 00:00:00",
	{"2026-03-07 07:30:00", "2026-03-08 07:30:00", "2026-03-09 06:30:00"}},
	{"0,30 2 * * *", "America/New_York", "end", NULL, "2026-03-08 00:00:00",
	{"2026-03-08 07:00:00", "2026-03-09 06:00:00", "2026-03-09 06:30:00"}},
	{"0,30 2 * * *", "America/New_York", "shift", NULL, "2026-03-08 00:00:00",
	{"2026-03-08 07:00:00", "2026-03-08 07:30:00", "2026-03-09 06:00:00"}},
	{"0,30 2,3 * * *", "America/New_York", "shift", NULL, "2026-03-08 06:59:59",
	{"2026-03-08 07:00:00", "2026-03-08 07:30:00", "2026-03-09 06:00:00"}},
	{"*/30 * * * *", "America/New_York", NULL, NULL, "2026-03-08 06:00:00",
	{"2026-03-08 06:30:00", "2026-03-08 07:00:00", "2026-03-08 07:30:00"}},
	/* New York, fall back 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z) */
	{"*/30 * * * *", "America/New_York", NULL, NULL, "2026-11-01 04:45:00",
	{"2026-11-01 05:00:00", "2026-11-01 05:30:00", "2026-11-01 06:00:00",
	"2026-11-01 06:30:00", "2026-11-01 07:00:00"}},
	{"30 1 * * *", "America/New_York", NULL, NULL, "2026-10-31 00:00:00",
	{"2026-10-31 05:30:00", "2026-11-01 05:30:00", "2026-11-02 06:30:00"}},
	{"30 1 * * *", "America/New_York", NULL, NULL, "2026-11-01 05:45:00",
	{"2026-11-02 06:30:00"}},
	{"@hourly", "America/New_York", NULL, NULL, "2026-11-01 04:30:00",
	{"2026-11-01 05:00:00", "2026-11-01 06:00:00", "2026-11-01 07:00:00"}},
	{"0 */2 * * *", "America/New_York", NULL, NULL, "2026-11-01 03:30:00",
	{"2026-11-01 04:00:00", "2026-11-01 07:00:00", "2026-11-01 09:00:00"}},
	{"0-59 0-23 * * *", "America/New_York", NULL, NULL, "2026-11-01 05:58:30",
	{"2026-11-01 05:59:00", "2026-11-01 07:00:00"}},
	{"*/20 * * * *", "America/New_York", NULL, NULL, "2026-11-01 05:50:00",
	{"2026-11-01 06:00:00", "2026-11-01 06:20:00"}},
	/* London: 2026-03-29 01:00 GMT -> 02:00 BST; 2026-10-25 02:00 BST -> 01:00 GMT */
	{"30 1 * * *", "Europe/London", "end", NULL, "2026-03-28 00:00:00",
	{"2026-03-28 01:30:00", "2026-03-29 01:00:00", "2026-03-30 00:30:00"}},
	{"30 1 * * *", "Europe/London", NULL, NULL, "2026-10-24 12:00:00",
	{"2026-10-25 00:30:00", "2026-10-26 01:30:00"}},
	/* Sydney: 2026-10-04 02:00 AEST -> 03:00 AEDT; 2026-04-05 03:00 AEDT -> 02:00 AEST */
	{"30 2 * * *", "Australia/Sydney", "shift", NULL, "2026-10-02 00:00:00",
	{"2026-10-02 16:30:00", "2026-10-03 16:30:00", "2026-10-04 15:30:00"}},
	{"30 2 * * *", "Australia/Sydney", NULL, NULL, "2026-04-03 00:00:00",
	{"2026-04-03 15:30:00", "2026-04-04 15:30:00", "2026-04-05 16:30:00"}},
	/* Lord Howe, 30-minute shifts: 2026-10-04 02:00 -> 02:30; 2026-04-05 02:00 -> 01:30 */
	{"15 2 * * *", "Australia/Lord_Howe", "end", NULL, "2026-10-03 00:00:00",
	{"2026-10-03 15:30:00", "2026-10-04 15:15:00"}},
	{"15 2 * * *", "Australia/Lord_Howe", "shift", NULL, "2026-10-03 00:00:00",
	{"2026-10-03 15:45:00", "2026-10-04 15:15:00"}},
	{"15 2 * * *", "Australia/Lord_Howe", "skip", NULL, "2026-10-03 00:00:00",
	{"2026-10-04 15:15:00", "2026-10-05 15:15:00"}},
	{"0,20,40 2 * * *", "Australia/Lord_Howe", "shift", NULL, "2026-10-03 15:35:00",
	{"2026-10-03 15:40:00", "2026-10-03 15:50:00", "2026-10-04 15:00:00"}},
	{"45 1 * * *", "Australia/Lord_Howe", NULL, NULL, "2026-04-04 00:00:00",
	{"2026-04-04 14:45:00", "2026-04-05 15:15:00"}},
	{"*/15 * * * *", "Australia/Lord_Howe", NULL, NULL, "2026-10-03 15:00:00",
	{"2026-10-03 15:15:00", "2026-10-03 15:30:00", "2026-10-03 15:45:00"}},
	{"*/15 * * * *", "Australia/Lord_Howe", NULL, NULL, "2026-04-04 14:40:00",
	{"2026-04-04 14:45:00", "2026-04-04 15:00:00", "2026-04-04 15:15:00"}},
	/* Santiago, transitions at midnight: 2026-09-06 00:00 -> 01:00; 2026-04-05 00:00 -> 04-04 23:00 */
	{"0 0 * * *", "America/Santiago", "end", NULL, "2026-09-05 00:00:00",
	{"2026-09-05 04:00:00", "2026-09-06 04:00:00", "2026-09-07 03:00:00"}},
	{"0 0 * * *", "America/Santiago", "skip", NULL, "2026-09-05 00:00:00",
	{"2026-09-05 04:00:00", "2026-09-07 03:00:00"}},
	{"0 * * * *", "America/Santiago", NULL, NULL, "2026-09-06 02:30:00",
	{"2026-09-06 03:00:00", "2026-09-06 04:00:00", "2026-09-06 05:00:00"}},
	{"30 23 * * *", "America/Santiago", NULL, NULL, "2026-04-04 00:00:00",
	{"2026-04-04 02:30:00", "2026-04-05 02:30:00", "2026-04-06 03:30:00"}},
	{"30 23 * * *", "America/Santiago", NULL, NULL, "2026-04-05 03:00:00",
	{"2026-04-06 03:30:00"}},
	/* Havana: 2026-03-08 00:00 CST -> 01:00 CDT; 2026-11-01 01:00 CDT -> 00:00 CST */
	{"30 0 * * *", "America/Havana", "end", NULL, "2026-03-07 00:00:00",
	{"2026-03-07 05:30:00", "2026-03-08 05:00:00", "2026-03-09 04:30:00"}},
	{"30 0 * * *", "America/Havana", "shift", NULL, "2026-03-07 12:00:00",
	{"2026-03-08 05:30:00", "2026-03-09 04:30:00"}},
	{"30 0 * * *", "America/Havana", NULL, NULL, "2026-10-31 12:00:00",
	{"2026-11-01 04:30:00", "2026-11-02 05:30:00"}},
	{"30 * * * *", "America/Havana", NULL, NULL, "2026-11-01 04:00:00",
	{"2026-11-01 04:30:00", "2026-11-01 05:30:00", "2026-11-01 06:30:00"}},
	/* Chatham, +12:45/+13:45: 2026-09-27 02:45 -> 03:45; 2026-04-05 03:45 -> 02:45 */
	{"0 3 * * *", "Pacific/Chatham", "end", NULL, "2026-09-26 00:00:00",
	{"2026-09-26 14:00:00", "2026-09-27 13:15:00"}},
	{"0 3 * * *", "Pacific/Chatham", "shift", NULL, "2026-09-26 00:00:00",
	{"2026-09-26 14:15:00", "2026-09-27 13:15:00"}},
	{"0 3 * * *", "Pacific/Chatham", NULL, NULL, "2026-04-04 00:00:00",
	{"2026-04-04 13:15:00", "2026-04-05 14:15:00"}},
	/* Troll, a 2-hour gap: 2026-03-29 01:00 -> 03:00 */
	{"30 2 * * *", "Antarctica/Troll", "shift", NULL, "2026-03-28 12:00:00",
	{"2026-03-29 02:30:00", "2026-03-30 00:30:00"}},
	{"30 2 * * *", "Antarctica/Troll", "end", NULL, "2026-03-28 12:00:00",
	{"2026-03-29 01:00:00", "2026-03-30 00:30:00"}},
	/* Each zone again, for the rules not shown above */
	{"30 1 * * *", "Europe/London", "skip", NULL, "2026-03-28 00:00:00",
	{"2026-03-28 01:30:00", "2026-03-30 00:30:00", "2026-03-31 00:30:00"}},
	{"30 1 * * *", "Europe/London", "shift", NULL, "2026-03-28 00:00:00",
	{"2026-03-28 01:30:00", "2026-03-29 01:30:00", "2026-03-30 00:30:00"}},
	{"*/30 * * * *", "Europe/London", NULL, NULL, "2026-03-29 00:15:00",
	{"2026-03-29 00:30:00", "2026-03-29 01:00:00", "2026-03-29 01:30:00"}},
	{"0 * * * *", "Europe/London", NULL, NULL, "2026-10-24 23:30:00",
	{"2026-10-25 00:00:00", "2026-10-25 01:00:00", "2026-10-25 02:00:00"}},
	{"30 2 * * *", "Australia/Sydney", "end", NULL, "2026-10-02 00:00:00",
	{"2026-10-02 16:30:00", "2026-10-03 16:00:00", "2026-10-04 15:30:00"}},
	{"30 2 * * *", "Australia/Sydney", "skip", NULL, "2026-10-02 00:00:00",
	{"2026-10-02 16:30:00", "2026-10-04 15:30:00", "2026-10-05 15:30:00"}},
	{"0 * * * *", "Australia/Sydney", NULL, NULL, "2026-10-03 14:30:00",
	{"2026-10-03 15:00:00", "2026-10-03 16:00:00", "2026-10-03 17:00:00"}},
	{"30 * * * *", "Australia/Sydney", NULL, NULL, "2026-04-04 14:45:00",
	{"2026-04-04 15:30:00", "2026-04-04 16:30:00", "2026-04-04 17:30:00"}},
	{"30 0 * * *", "America/Santiago", "shift", NULL, "2026-09-05 12:00:00",
	{"2026-09-06 04:30:00", "2026-09-07 03:30:00"}},
	{"30 * * * *", "America/Santiago", NULL, NULL, "2026-04-05 01:45:00",
	{"2026-04-05 02:30:00", "2026-04-05 03:30:00", "2026-04-05 04:30:00"}},
	{"30 0 * * *", "America/Havana", "skip", NULL, "2026-03-07 00:00:00",
	{"2026-03-07 05:30:00", "2026-03-09 04:30:00", "2026-03-10 04:30:00"}},
	{"*/30 * * * *", "America/Havana", NULL, NULL, "2026-03-08 04:15:00",
	{"2026-03-08 04:30:00", "2026-03-08 05:00:00", "2026-03-08 05:30:00"}},
	{"0 3 * * *", "Pacific/Chatham", "skip", NULL, "2026-09-26 00:00:00",
	{"2026-09-27 13:15:00", "2026-09-28 13:15:00"}},
	{"*/30 * * * *", "Pacific/Chatham", NULL, NULL, "2026-09-26 13:40:00",
	{"2026-09-26 13:45:00", "2026-09-26 14:15:00", "2026-09-26 14:45:00"}},
	{"0 * * * *", "Pacific/Chatham", NULL, NULL, "2026-04-04 12:30:00",
	{"2026-04-04 13:15:00", "2026-04-04 14:15:00", "2026-04-04 15:15:00"}},
	/* The cron language, in UTC */
	{"0 0 29 2 *", "UTC", NULL, NULL, "2026-01-01 00:00:00",
	{"2028-02-29 00:00:00", "2032-02-29 00:00:00"}},
	{"0 0 29 2 *", "UTC", NULL, NULL, "2096-03-01 00:00:00",
	{"2104-02-29 00:00:00"}},
	{"0 0 30 2 *", "UTC", NULL, NULL, "2026-01-01 00:00:00", {NULL}},
	{"0 0 L * *", "UTC", NULL, NULL, "2026-02-01 00:00:00",
	{"2026-02-28 00:00:00", "2026-03-31 00:00:00"}},
	{"0 0 $ 2 *", "UTC", NULL, NULL, "2028-01-01 00:00:00",
	{"2028-02-29 00:00:00", "2029-02-28 00:00:00"}},
	{"0 12 * * 5L", "UTC", NULL, NULL, "2026-01-01 00:00:00",
	{"2026-01-30 12:00:00", "2026-02-27 12:00:00", "2026-03-27 12:00:00"}},
	{"0 9 * * 1#2", "UTC", NULL, NULL, "2026-01-01 00:00:00",
	{"2026-01-12 09:00:00", "2026-02-09 09:00:00", "2026-03-09 09:00:00"}},
	{"0 0 13 * 5", "UTC", NULL, NULL, "2026-01-01 00:00:00",
	{"2026-01-02 00:00:00", "2026-01-09 00:00:00", "2026-01-13 00:00:00", "2026-01-16 00:00:00"}},
	{"0 0 */10 * mon", "UTC", NULL, NULL, "2026-01-01 00:00:00",
	{"2026-05-11 00:00:00", "2026-06-01 00:00:00", "2026-08-31 00:00:00"}},
	{"*/20 * * * * *", "UTC", NULL, NULL, "2026-01-01 00:00:00",
	{"2026-01-01 00:00:20", "2026-01-01 00:00:40", "2026-01-01 00:01:00"}},
	{"0 0 * * 7", "UTC", NULL, NULL, "2026-01-01 00:00:00", {"2026-01-04 00:00:00"}},
	{"0 0 1 JAN-mar/2 *", "UTC", NULL, NULL, "2026-01-01 00:00:00",
	{"2026-03-01 00:00:00", "2027-01-01 00:00:00"}},
	{"@yearly", "UTC", NULL, NULL, "2026-06-01 00:00:00", {"2027-01-01 00:00:00"}},
	{"@weekly", "UTC", NULL, NULL, "2026-01-01 00:00:00", {"2026-01-04 00:00:00"}},
	{"@every 90 seconds", "America/New_York", NULL, NULL, "2026-01-01 00:00:00",
	{"2026-01-01 00:01:30", "2026-01-01 00:03:00"}},
	{"7 seconds", "UTC", NULL, NULL, "2026-01-01 00:00:00",
	{"2026-01-01 00:00:07", "2026-01-01 00:00:14"}},
	{"@every 1h30m", "UTC", NULL, NULL, "2026-01-01 00:00:00",
	{"2026-01-01 01:30:00", "2026-01-01 03:00:00"}},
	{"@at 2026-12-24 18:00", "America/New_York", NULL, NULL, "2026-01-01 00:00:00",
	{"2026-12-24 23:00:00"}},
	{"@at 2026-12-24 18:00", "America/New_York", NULL, NULL, "2026-12-24 23:00:00", {NULL}},
	{"@at 2026-03-08 02:30", "America/New_York", "end", NULL, "2026-01-01 00:00:00",
	{"2026-03-08 07:00:00"}},
	{"@at 2026-11-01 01:30", "America/New_York", NULL, NULL, "2026-01-01 00:00:00",
	{"2026-11-01 05:30:00"}},
	{"@at 2026-12-24T18:00:00.25+01:00", "America/New_York", NULL, NULL, "2026-01-01 00:00:00",
	{"2026-12-24 17:00:01"}},
	{"@reboot", "UTC", NULL, NULL, "2026-01-01 00:00:00", {NULL}},
	/* Windows */
	{"0 * * * *", "UTC", NULL, "03:00-06:00", "2026-01-01 00:00:00",
	{"2026-01-01 03:00:00", "2026-01-01 04:00:00", "2026-01-01 05:00:00", "2026-01-02 03:00:00"}},
	{"0 * * * *", "UTC", NULL, "22:00-02:00", "2026-01-01 00:00:00",
	{"2026-01-01 01:00:00", "2026-01-01 22:00:00", "2026-01-01 23:00:00", "2026-01-02 00:00:00"}},
	{"30 2 * * *", "America/New_York", "end", "03:00-06:00", "2026-03-07 00:00:00",
	{"2026-03-08 07:00:00", "2027-03-14 07:00:00", "2028-03-12 07:00:00"}},
	{"0 12 * * *", "UTC", NULL, "03:00-06:00", "2026-01-01 00:00:00", {NULL}},
	{"@every 1 hour", "America/New_York", NULL, "01:00-01:30", "2026-10-31 12:00:00",
	{"2026-11-01 05:00:00", "2026-11-01 06:00:00", "2026-11-02 06:00:00"}},
};

/* Invalid schedules and a phrase their detail must contain. */
static const struct
{
	const char *schedule;
	const char *detail;
}			bad_cases[] = {
	{"", "schedule is empty"},
	{"   ", "schedule is empty"},
	{"* * * *", "found 4"},
	{"* * * * * * *", "found 7"},
	{"60 * * * *", "minute field: value \"60\""},
	{"* 24 * * *", "hour field: value \"24\""},
	{"* * 0 * *", "day-of-month field: value \"0\""},
	{"* * 32 * *", "out of range 1-31"},
	{"* * * 13 *", "month field: value \"13\""},
	{"* * * * 8", "day-of-week field: value \"8\""},
	{"60 * * * * *", "second field"},
	{"5-1 * * * *", "reversed"},
	{"*/60 * * * *", "step \"60\""},
	{"*/0 * * * *", "step \"0\""},
	{"0 */24 * * *", "step \"24\""},
	{"5/10 * * * *", "a step must follow"},
	{"* * * foo *", "unknown name \"foo\""},
	{"* * * * funday", "unknown name \"funday\""},
	{"1,,2 * * * *", "empty list item"},
	{"1, * * * *", "empty list item"},
	{"* * * * 1#6", "occurrence \"6\""},
	{"* * * * 1#", "after \"#\""},
	{"L * * * *", "minute field: expected a number"},
	{"* * 5L * *", "unexpected \"L\""},
	{"? * * * *", "expected a number"},
	{"1-2-3 * * * *", "unexpected \"-\""},
	{"@foo", "unknown macro \"@foo\""},
	{"@daily now", "unexpected text"},
	{"@reboot 5", "unexpected text"},
	{"0 seconds", "between 1 and 59"},
	{"5 minutes", "write '@every 5 minutes'"},
	{"60 seconds", "between 1 and 59"},
	{"@every 1 month", "month or year part"},
	{"@every 2 years", "month or year part"},
	{"@every 1.5 seconds", "fraction of a second"},
	{"@every 0 seconds", "shorter than 1 second"},
	{"@every -5 seconds", "negative"},
	{"@every", "needs an interval"},
	{"@every 5 fortnights", "unknown unit"},
	{"@at", "needs a timestamp"},
	{"@at tomorrow", "is not a timestamp"},
	{"@at 2026-02-30 10:00", "not a valid date"},
	{"@at 2026-02-10 10:00 Mars", "unexpected text"},
};

static const struct
{
	const char *window;
	bool		ok;
}			window_cases[] = {
	{"03:00-06:00", true},
	{"22:00-02:00", true},
	{"00:00-23:59", true},
	{"3:00-06:00", false},
	{"03:00-03:00", false},
	{"24:00-01:00", false},
	{"03:60-04:00", false},
	{"03:00", false},
	{"03:00-06:00x", false},
	{"", false},
};

/* When a run window next opens, from an instant outside it (all in UTC) */
static const struct
{
	const char *window;
	const char *zone;
	const char *after;
	const char *opens;
}			open_cases[] = {
	/* 18:00 EST: opens at 09:00 EST the next morning */
	{"09:00-17:00", "America/New_York", "2028-02-28 23:00:00", "2028-02-29 14:00:00"},
	/* a window across midnight, later the same day */
	{"22:00-02:00", "UTC", "2026-03-07 12:00:00", "2026-03-07 22:00:00"},
	/* 02:30 does not exist on 2026-03-08 in New York: the gap's end, 03:00 EDT */
	{"02:30-04:00", "America/New_York", "2026-03-08 05:00:00", "2026-03-08 07:00:00"},
	/* just after it closed: the next day's opening */
	{"03:00-06:00", "UTC", "2026-03-07 06:00:00", "2026-03-08 03:00:00"},
};

static int	test_no;
static int	failures;

static void
ok(int cond, const char *fmt, const char *a, const char *b)
{
	test_no++;
	if (!cond)
		failures++;
	printf("%sok %d - ", cond ? "" : "not ", test_no);
	printf(fmt, a, b);
	printf("\n");
}

static int64_t
parse_utc(const char *s)
{
	int			y,
				mo,
				d,
				h,
				mi,
				sec;

	if (sscanf(s, "%d-%d-%d %d:%d:%d", &y, &mo, &d, &h, &mi, &sec) != 6)
		abort();
	return chime_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
}

static void
format_utc(int64_t t, char *buf, size_t size)
{
	int64_t		days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
	int64_t		sod = t - days * 86400;
	int64_t		y;
	int			m,
				d;

	chime_civil_from_days(days, &y, &m, &d);
	snprintf(buf, size, "%04lld-%02d-%02d %02d:%02d:%02d", (long long) y, m, d,
			 (int) (sod / 3600), (int) (sod / 60 % 60), (int) (sod % 60));
}

static void
run_case(const RunCase *c)
{
	ChimeTiming tm;
	ChimeError	err;
	char		got[512] = "";
	char		want[512] = "";
	char		label[256];
	int64_t		t = parse_utc(c->after);
	int			n = 0;

	memset(&tm, 0, sizeof(tm));
	if (!chime_parse_schedule(c->schedule, &tm.sched, &err) ||
		(c->gap && !chime_parse_dst_gap(c->gap, &tm.gap, &err)) ||
		(c->window && !chime_parse_window(c->window, &tm.window, &err)))
	{
		ok(0, "%s: parse failed: %s", c->schedule, err.detail);
		return;
	}
	tm.zone = zone_libc_get(c->zone);

	for (int i = 0; c->expect[i]; i++)
	{
		strcat(want, c->expect[i]);
		strcat(want, "; ");
		n++;
	}
	/* one more than expected, so a spurious extra instant shows up too */
	if (n == 0)
		n = 1;
	for (int i = 0; i < n; i++)
	{
		char		buf[32];

		if (!chime_next_run(&tm, 0, t, &t))
			break;
		format_utc(t, buf, sizeof(buf));
		strcat(got, buf);
		strcat(got, "; ");
	}
	snprintf(label, sizeof(label), "%s in %s (gap %s, window %s) after %s",
			 c->schedule, c->zone, c->gap ? c->gap : "end",
			 c->window ? c->window : "none", c->after);
	ok(strcmp(got, want) == 0, "%s%s", label, "");
	if (strcmp(got, want) != 0)
		printf("#   want: %s\n#    got: %s\n", want, got);
}

/* Run keys: the local calendar period of an instant */
static const struct
{
	const char *per;
	const char *zone;
	int64_t		t;				/* Unix seconds */
	const char *key;
}			key_cases[] = {
	/* 2026-03-08 07:30Z is 03:30 EDT, the morning of the spring change */
	{"day", "America/New_York", 1772955000, "2026-03-08"},
	/* 2026-03-08 04:59Z is still 23:59 EST on the 7th */
	{"day", "America/New_York", 1772945940, "2026-03-07"},
	/* the repeated hour of 2026-11-01: both 01:30 readings are the 1st */
	{"day", "America/New_York", 1793511000, "2026-11-01"},
	{"day", "America/New_York", 1793514600, "2026-11-01"},
	{"week", "America/New_York", 1772955000, "2026-W10"},
	/* Friday 2027-01-01 belongs to the 53rd ISO week of 2026 */
	{"week", "UTC", 1798761600, "2026-W53"},
	/* Monday 2024-12-30 begins week 1 of 2025 */
	{"week", "UTC", 1735516800, "2025-W01"},
	{"month", "America/New_York", 1772955000, "2026-03"},
	/* 2026-04-01 03:00Z is still March 31st in New York */
	{"month", "America/New_York", 1775012400, "2026-03"},
	{"day", "Asia/Kolkata", 1772994600, "2026-03-09"},
};

int
main(void)
{
	size_t		nrun = sizeof(run_cases) / sizeof(run_cases[0]);
	size_t		nbad = sizeof(bad_cases) / sizeof(bad_cases[0]);
	size_t		nwin = sizeof(window_cases) / sizeof(window_cases[0]);

	size_t		nkey = sizeof(key_cases) / sizeof(key_cases[0]);
	size_t		nopen = sizeof(open_cases) / sizeof(open_cases[0]);

	printf("1..%zu\n", nrun + nbad + nwin + nkey + nopen + 5 + 3 + 8 + 1);

	for (size_t i = 0; i < nrun; i++)
		run_case(&run_cases[i]);

	for (size_t i = 0; i < nbad; i++)
	{
		ChimeSchedule s;
		ChimeError	err;
		bool		parsed = chime_parse_schedule(bad_cases[i].schedule, &s, &err);
		bool		good = !parsed && strstr(err.detail, bad_cases[i].detail) != NULL &&
			err.hint[0] != '\0';

		ok(good, "rejects \"%s\" (%s)", bad_cases[i].schedule, bad_cases[i].detail);
		if (!good)
			printf("#   detail: %s\n", parsed ? "(accepted)" : err.detail);
	}

	for (size_t i = 0; i < nwin; i++)
	{
		ChimeWindow w = {0};
		ChimeError	err;
		bool		parsed = chime_parse_window(window_cases[i].window, &w, &err);

		ok(parsed == window_cases[i].ok, "window \"%s\" %s", window_cases[i].window,
		   window_cases[i].ok ? "accepted" : "rejected");
	}

	/* classification looks at the first character of minute and hour only */
	{
		ChimeSchedule s;
		ChimeError	err;

		chime_parse_schedule("0-59 0-23 * * *", &s, &err);
		ok(!s.wildcard, "%s is fixed-time%s", "0-59 0-23 * * *", "");
		chime_parse_schedule("* 0 3 * * *", &s, &err);
		ok(!s.wildcard, "%s is fixed-time (seconds field ignored)%s", "* 0 3 * * *", "");
		chime_parse_schedule("@hourly", &s, &err);
		ok(s.wildcard, "%s is wildcard%s", "@hourly", "");
	}

	for (size_t i = 0; i < nkey; i++)
	{
		ChimeOncePer per;
		char		key[CHIME_RUN_KEY_LEN];

		chime_parse_once_per(key_cases[i].per, &per);
		chime_run_key(per, zone_libc_get(key_cases[i].zone), key_cases[i].t, key);
		ok(strcmp(key, key_cases[i].key) == 0, "once_per %s key %s", key_cases[i].per, key_cases[i].key);
		if (strcmp(key, key_cases[i].key) != 0)
			printf("#   got: %s\n", key);
	}
	{
		ChimeOncePer per;

		ok(!chime_parse_once_per("fortnight", &per), "once_per %s is refused%s", "fortnight", "");
	}

	for (size_t i = 0; i < nopen; i++)
	{
		ChimeTiming tm;
		ChimeError	err;
		int64_t		opens = 0;
		char		got[32] = "never";

		memset(&tm, 0, sizeof(tm));
		chime_parse_window(open_cases[i].window, &tm.window, &err);
		tm.zone = zone_libc_get(open_cases[i].zone);
		if (chime_window_next_open(&tm, parse_utc(open_cases[i].after), &opens))
			format_utc(opens, got, sizeof(got));
		ok(strcmp(got, open_cases[i].opens) == 0, "window %s opens at %s", open_cases[i].window,
		   open_cases[i].opens);
		if (strcmp(got, open_cases[i].opens) != 0)
			printf("#   got: %s\n", got);
	}
	{
		ChimeTiming tm;
		int64_t		opens;

		memset(&tm, 0, sizeof(tm));
		tm.zone = zone_libc_get("UTC");
		ok(!chime_window_next_open(&tm, 0, &opens), "no window: %s%s", "it never opens", "");
	}

	/* start_at and end_at bound the occurrences */
	{
		ChimeTiming tm;
		ChimeError	err;
		int64_t		t;
		char		got[32];

		memset(&tm, 0, sizeof(tm));
		tm.zone = zone_libc_get("UTC");
		chime_parse_schedule("0 9 * * *", &tm.sched, &err);
		tm.start_at = parse_utc("2027-03-01 00:00:00");
		tm.end_at = parse_utc("2027-03-03 09:00:00");
		chime_next_run(&tm, 0, parse_utc("2026-12-01 00:00:00"), &t);
		format_utc(t, got, sizeof(got));
		ok(strcmp(got, "2027-03-01 09:00:00") == 0, "start_at: the first run is %s%s", got, "");
		chime_next_run(&tm, 0, t, &t);
		ok(chime_next_run(&tm, 0, t, &t) == false, "end_at: %s%s", "no occurrence at it or after", "");
		tm.start_at = parse_utc("2027-03-01 09:00:00");
		chime_next_run(&tm, 0, parse_utc("2026-12-01 00:00:00"), &t);
		format_utc(t, got, sizeof(got));
		ok(strcmp(got, "2027-03-01 09:00:00") == 0, "an occurrence at start_at counts: %s%s", got, "");
	}

	/*
	 * jitter: each start is its occurrence plus a delay below the jitter
	 * and below the gap to the next occurrence, the same for every caller
	 * and seed-dependent; from any instant, chime_next_run gives the next
	 * start in that list.
	 */
	{
		static const char *const scheds[] = {"0 9 * * *", "*/5 * * * *", "10 seconds", "0,1,30 * * * *"};

		for (int k = 0; k < 4; k++)
		{
			ChimeTiming tm;
			ChimeError	err;
			int64_t		occ[200],
						start[200];
			int64_t		t = parse_utc("2026-12-01 00:00:07");
			int			bad = 0,
						spread = 0;

			memset(&tm, 0, sizeof(tm));
			tm.zone = zone_libc_get("UTC");
			chime_parse_schedule(scheds[k], &tm.sched, &err);
			for (int i = 0; i < 200; i++)
			{
				tm.jitter = 0;
				chime_next_run(&tm, 0, i ? occ[i - 1] : t, &occ[i]);
			}
			tm.jitter = 120;
			for (int i = 0; i < 200; i++)
			{
				int64_t		bound = i < 199 && occ[i + 1] - occ[i] < 120 ? occ[i + 1] - occ[i] : 120;
				int64_t		d = chime_jitter_of(&tm, 42, occ[i]);

				start[i] = occ[i] + d;
				if (d < 0 || d >= bound || (i > 0 && start[i] <= start[i - 1]))
					bad++;
				if (d != chime_jitter_of(&tm, 43, occ[i]))
					spread++;
			}
			for (int i = 0; i < 199; i++)
			{
				int64_t		next;

				/* from the start before, from just before, from between */
				if (!chime_next_run(&tm, 42, start[i], &next) || next != start[i + 1] ||
					!chime_next_run(&tm, 42, start[i + 1] - 1, &next) || next != start[i + 1] ||
					!chime_next_run(&tm, 42, occ[i + 1] - 1, &next) ||
					next != (occ[i + 1] - 1 < start[i] ? start[i] : start[i + 1]))
					bad++;
			}
			ok(bad == 0, "jitter on %s: delays in range, in order, as chime_next_run lists them%s",
			   scheds[k], "");
			ok(k == 2 || spread > 100, "jitter on %s: another seed, other delays%s", scheds[k], "");
		}
	}

	/* a delay never carries a start into the next local day (once_per keys) */
	{
		ChimeTiming tm;
		ChimeError	err;
		int64_t		t = parse_utc("2026-12-01 00:00:00");
		int			crossed = 0;

		memset(&tm, 0, sizeof(tm));
		tm.zone = zone_libc_get("America/New_York");
		chime_parse_schedule("0 23 * * *", &tm.sched, &err);
		tm.jitter = 86400;
		for (int i = 0; i < 100; i++)
		{
			int64_t		occ;
			int64_t		start;

			tm.jitter = 0;
			chime_next_run(&tm, 0, t, &occ);
			tm.jitter = 86400;
			start = occ + chime_jitter_of(&tm, 7, occ);
			if ((occ - 5 * 3600) / 86400 != (start - 5 * 3600) / 86400)
				crossed++;
			t = occ;
		}
		ok(crossed == 0, "jitter keeps each start on its occurrence's local day%s%s", "", "");
	}

	return failures ? 1 : 0;
}
