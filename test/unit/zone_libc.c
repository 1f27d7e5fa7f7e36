/*-------------------------------------------------------------------------
 *
 * zone_libc.c
 *	  chime_zone_offset() for the standalone unit tests, fuzzer and
 *	  micro-benchmark, from the C library's reading of the same tz database
 *	  the server uses.
 *
 * The C library answers one zone at a time (TZ), and slowly, so each zone's
 * offsets from 1900 to 2200 are read once into a table of transitions
 * (found week by week, then to the second) and looked up by binary search.
 *
 *-------------------------------------------------------------------------
 */
#include "zone_libc.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ZL_FROM ((int64_t) -2208988800)	/* 1900-01-01 */
#define ZL_TO ((int64_t) 7258118400)	/* 2200-01-01 */
#define ZL_STEP (7 * 86400)

struct ChimeZone
{
	char		name[64];
	int			n;				/* transitions */
	int64_t    *at;				/* at[i]: first instant of offset off[i + 1] */
	int32_t    *off;			/* off[0] before at[0] */
};

static int32_t
zl_libc_offset(const char *name, int64_t t)
{
	static char current[64];
	time_t		tt = (time_t) t;
	struct tm	tm;

	if (strcmp(current, name) != 0)
	{
		setenv("TZ", name, 1);
		tzset();
		strcpy(current, name);
	}
	if (localtime_r(&tt, &tm) == NULL)
		return 0;
	return (int32_t) tm.tm_gmtoff;
}

static void
zl_load(ChimeZone *z)
{
	int			cap = 1024;
	int32_t		o = zl_libc_offset(z->name, ZL_FROM);

	z->at = malloc(cap * sizeof(int64_t));
	z->off = malloc((cap + 1) * sizeof(int32_t));
	z->off[0] = o;
	for (int64_t t = ZL_FROM; t < ZL_TO; t += ZL_STEP)
	{
		int32_t		o2 = zl_libc_offset(z->name, t + ZL_STEP);
		int64_t		lo = t,
					hi = t + ZL_STEP;

		if (o2 == o)
			continue;
		while (hi - lo > 1)
		{
			int64_t		mid = lo + (hi - lo) / 2;

			if (zl_libc_offset(z->name, mid) == o2)
				hi = mid;
			else
				lo = mid;
		}
		if (z->n == cap)
		{
			cap *= 2;
			z->at = realloc(z->at, cap * sizeof(int64_t));
			z->off = realloc(z->off, (cap + 1) * sizeof(int32_t));
		}
		z->at[z->n] = hi;
		z->off[++z->n] = o2;
		o = o2;
	}
}

const ChimeZone *
zone_libc_get(const char *name)
{
	static ChimeZone zones[32];
	static int	nzones;
	ChimeZone  *z;

	for (int i = 0; i < nzones; i++)
		if (strcmp(zones[i].name, name) == 0)
			return &zones[i];
	if (nzones == 32)
		abort();
	z = &zones[nzones++];
	strncpy(z->name, name, sizeof(z->name) - 1);
	zl_load(z);
	return z;
}

int32_t
chime_zone_offset(const ChimeZone *zone, int64_t t)
{
	int			lo = 0,
				hi = zone->n;

	if (t < ZL_FROM || t >= ZL_TO)
		return zl_libc_offset(zone->name, t);
	/* number of transitions at or before t */
	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (zone->at[mid] <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return zone->off[lo];
}

bool
chime_zone_fixed(const ChimeZone *zone, int32_t *offset)
{
	if (zone->n != 0)
		return false;
	*offset = zone->off[0];
	return true;
}
