/*-------------------------------------------------------------------------
 *
 * engine_bench.c
 *	  Micro-benchmark of the time engine: nanoseconds per "next instant
 *	  after t" for typical schedules, walking forward through two years so
 *	  daylight-saving transitions are included.  Zones come from the C
 *	  library's tz database through the unit tests' zone table.
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "occurrence.h"
#include "schedule.h"
#include "zone_libc.h"

static const struct
{
	const char *schedule;
	const char *zone;
	const char *gap;
	const char *window;
}			bench_cases[] = {
	{"0 3 * * *", "America/New_York", "end", NULL},
	{"*/15 * * * *", "America/New_York", "end", NULL},
	{"*/20 * * * * *", "UTC", "end", NULL},
	{"0 12 * * 5L", "Europe/London", "end", NULL},
	{"0 9 * * 1#2", "Australia/Lord_Howe", "end", NULL},
	{"0 0 29 2 *", "UTC", "end", NULL},
	{"0 3 * * *", "America/New_York", "end", "03:00-06:00"},
	{"30 2 * * *", "America/New_York", "shift", "03:00-06:00"},
	{"@every 90 seconds", "America/New_York", "end", NULL},
};

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int
main(int argc, char **argv)
{
	long		calls = argc > 1 ? atol(argv[1]) : 200000;
	double		worst = 0;

	printf("%-20s %-20s %-6s %-12s %12s %14s\n", "schedule", "zone", "gap", "window",
		   "ns/call", "calls");
	for (size_t i = 0; i < sizeof(bench_cases) / sizeof(bench_cases[0]); i++)
	{
		ChimeTiming tm;
		ChimeError	err;
		int64_t		start = 1767225600; /* 2026-01-01 */
		int64_t		t = start;
		long		n = 0;
		double		t0,
					t1;

		memset(&tm, 0, sizeof(tm));
		if (!chime_parse_schedule(bench_cases[i].schedule, &tm.sched, &err) ||
			!chime_parse_dst_gap(bench_cases[i].gap, &tm.gap, &err) ||
			(bench_cases[i].window && !chime_parse_window(bench_cases[i].window, &tm.window, &err)))
		{
			fprintf(stderr, "bad case %s: %s\n", bench_cases[i].schedule, err.detail);
			return 1;
		}
		tm.zone = zone_libc_get(bench_cases[i].zone);

		t0 = now_ns();
		for (long k = 0; k < calls; k++)
		{
			int64_t		next;

			/* walk forward for two years, then start over */
			if (!chime_next_run(&tm, 0, t, &next) || next > start + 2 * 366 * 86400)
				next = start;
			t = next;
			n++;
		}
		t1 = now_ns();
		printf("%-20s %-20s %-6s %-12s %12.0f %14ld\n", bench_cases[i].schedule,
			   bench_cases[i].zone, bench_cases[i].gap,
			   bench_cases[i].window ? bench_cases[i].window : "-", (t1 - t0) / n, n);
		if ((t1 - t0) / n > worst)
			worst = (t1 - t0) / n;
	}
	printf("\nnext instant, slowest case above: %.0f ns per call = %.2f s of CPU for 1,000,000 jobs"
		   " (target: cheap enough for the scheduler to do it for 1,000,000 jobs)\n",
		   worst, worst * 1e6 / 1e9);
	return 0;
}
