/*-------------------------------------------------------------------------
 *
 * fuzz_schedule.c
 *	  libFuzzer target for the schedule parser and the time engine.
 *
 * Input: a schedule, optionally followed by "|window|dst_gap".  Checks that
 * bad input always gets a detail and a hint, and that good input yields
 * strictly increasing instants in a few zones.
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "occurrence.h"
#include "schedule.h"
#include "zone_libc.h"

static const char *const fuzz_zones[] = {
	"UTC", "America/New_York", "Australia/Lord_Howe", "America/Santiago"
};

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		buf[512];
	char	   *window_text;
	char	   *gap_text = NULL;
	ChimeTiming tm;
	ChimeError	err;

	if (size >= sizeof(buf))
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';

	memset(&tm, 0, sizeof(tm));
	window_text = strchr(buf, '|');
	if (window_text)
	{
		*window_text++ = '\0';
		gap_text = strchr(window_text, '|');
		if (gap_text)
			*gap_text++ = '\0';
		if (!chime_parse_window(window_text, &tm.window, &err) &&
			(err.detail[0] == '\0' || err.hint[0] == '\0'))
			abort();
		if (gap_text && !chime_parse_dst_gap(gap_text, &tm.gap, &err) &&
			(err.detail[0] == '\0' || err.hint[0] == '\0'))
			abort();
	}

	if (!chime_parse_schedule(buf, &tm.sched, &err))
	{
		if (err.detail[0] == '\0' || err.hint[0] == '\0')
			abort();
		return 0;
	}

	for (size_t z = 0; z < sizeof(fuzz_zones) / sizeof(fuzz_zones[0]); z++)
	{
		/* 2026-03-01 00:00Z: the spring and autumn transitions lie ahead */
		int64_t		t = 1772323200;

		tm.zone = zone_libc_get(fuzz_zones[z]);
		/* every other zone with a jitter taken from the input's length */
		tm.jitter = (z % 2) ? (int64_t) (size % 600) : 0;
		for (int i = 0; i < 4; i++)
		{
			int64_t		next;

			if (!chime_next_run(&tm, (int64_t) size, t, &next))
				break;
			if (next <= t)
				abort();
			if (tm.window.set && !chime_in_window(&tm.window, tm.zone, next))
				abort();
			t = next;
		}
	}
	return 0;
}
