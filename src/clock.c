/*-------------------------------------------------------------------------
 *
 * clock.c
 *	  pg_chime's clock and the server's (see clock.h), and the conversions
 *	  between Unix seconds and timestamptz.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "clock.h"

/* Seconds between 1970-01-01 and 2000-01-01 */
#define CLOCK_UNIX_TO_PG_SECONDS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)

static int64 clock_skew_us = 0; /* cron.clock_skew */

/* pg_chime's clock: the server's plus cron.clock_skew */
TimestampTz
chime_now(void)
{
	return GetCurrentTimestamp() + clock_skew_us;
}

/* The server's clock, whatever cron.clock_skew says */
TimestampTz
chime_server_now(void)
{
	return GetCurrentTimestamp();
}

/* cron.clock_skew's assign hook sets it */
void
chime_clock_set_skew(int64 skew_us)
{
	clock_skew_us = skew_us;
}

static long
clock_ms_between(TimestampTz now, TimestampTz at)
{
	return at <= now ? 0 : (long) ((at - now + 999) / 1000);
}

long
chime_ms_until(TimestampTz at)
{
	return clock_ms_between(chime_now(), at);
}

long
chime_server_ms_until(TimestampTz at)
{
	return clock_ms_between(chime_server_now(), at);
}

int64
chime_unix_from_timestamptz(TimestampTz ts)
{
	int64 secs = ts / USECS_PER_SEC;

	if (ts % USECS_PER_SEC < 0)
		secs--;
	return secs + CLOCK_UNIX_TO_PG_SECONDS;
}

TimestampTz
chime_timestamptz_from_unix(int64 t)
{
	return (t - CLOCK_UNIX_TO_PG_SECONDS) * USECS_PER_SEC;
}
