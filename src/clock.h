/*-------------------------------------------------------------------------
 *
 * clock.h
 *	  pg_chime's two clocks, one name each, and the conversions between
 *	  its units of time.
 *
 * chime_now() is pg_chime's clock: the server's moved by cron.clock_skew.
 * Every decision about schedules (what is due, keys, windows, catchup) and
 * every time written to a run row reads it, so that cron.clock_skew moves
 * them all together.  chime_server_now() is the server's own clock, not
 * moved by cron.clock_skew: for how long to wait, back off or time out.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHIME_CLOCK_H
#define CHIME_CLOCK_H

#include "datatype/timestamp.h"

extern TimestampTz chime_now(void);
extern TimestampTz chime_server_now(void);
extern void        chime_clock_set_skew(int64 skew_us);

/* Milliseconds (rounded up, 0 if past) until 'at', on each clock */
extern long chime_ms_until(TimestampTz at);
extern long chime_server_ms_until(TimestampTz at);

/* Unix seconds <-> timestamptz (floor for the way in) */
extern int64       chime_unix_from_timestamptz(TimestampTz ts);
extern TimestampTz chime_timestamptz_from_unix(int64 t);

#endif /* CHIME_CLOCK_H */
