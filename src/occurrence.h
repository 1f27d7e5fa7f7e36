/*-------------------------------------------------------------------------
 *
 * occurrence.h
 *	  The time engine: when does a schedule fire, in a zone, after an
 *	  instant, with pg_chime's daylight-saving rules and run windows.
 *
 * Pure C: the only outside call is chime_zone_offset() (zone.h).  This is
 * the single code path behind cron.next_runs and the scheduler.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHIME_OCCURRENCE_H
#define CHIME_OCCURRENCE_H

#include "schedule.h"
#include "zone.h"

/* What a fixed-time job does when its reading falls in a spring-forward gap */
typedef enum ChimeDstGap
{
	CHIME_GAP_END,  /* fire at the first instant after the gap */
	CHIME_GAP_SKIP, /* do not fire */
	CHIME_GAP_SHIFT /* read it with the pre-transition offset */
} ChimeDstGap;

/* A daily local-time window [start, end), in minutes after midnight. */
typedef struct ChimeWindow
{
	bool set;
	int  start;
	int  end; /* end < start: the window crosses midnight */
} ChimeWindow;

/* once_per: at most one logical run per local calendar period */
typedef enum ChimeOncePer
{
	CHIME_ONCE_NONE,
	CHIME_ONCE_DAY,
	CHIME_ONCE_WEEK, /* ISO week */
	CHIME_ONCE_MONTH
} ChimeOncePer;

/* Room for any run key and its terminating zero */
#define CHIME_RUN_KEY_LEN 24

/*
 * Everything that decides a job's instants.  start_at, end_at and jitter
 * are whole seconds, 0 for none: an occurrence counts when start_at <= it
 * < end_at, and then starts a delay in [0, jitter) late.
 */
typedef struct ChimeTiming
{
	ChimeSchedule    sched;
	const ChimeZone *zone;
	ChimeDstGap      gap;
	ChimeWindow      window;
	int64_t          start_at;
	int64_t          end_at;
	int64_t          jitter;
} ChimeTiming;

/* How far ahead a search looks before it says "never". */
#define CHIME_HORIZON_SECONDS ((int64_t) 50 * 366 * 86400)

extern bool        chime_parse_dst_gap(const char *text, ChimeDstGap *gap, ChimeError *err);
extern const char *chime_dst_gap_name(ChimeDstGap gap);
extern bool        chime_parse_window(const char *text, ChimeWindow *window, ChimeError *err);

/* Next instant strictly after 'after' at which the schedule fires. */
extern bool chime_next_occurrence(const ChimeTiming *timing, int64_t after,
								  int64_t *next);

/*
 * The next instant strictly after 'after' at which a job with this timing
 * starts a run: occurrences inside the run window and between start_at and
 * end_at, each delayed by its jitter.  The delay is derived from 'seed'
 * (the job's id) and the occurrence, and is also less than the time to
 * the job's next occurrence, to the end of the window and to end_at, so
 * that runs keep their order and their bounds.
 */
extern bool chime_next_run(const ChimeTiming *timing, int64_t seed, int64_t after,
						   int64_t *next);

/* The delay chime_next_run adds to occurrence 't' (0 without jitter) */
extern int64_t chime_jitter_of(const ChimeTiming *timing, int64_t seed, int64_t t);

/* Is instant 't' inside the window, read in the zone? */
extern bool chime_in_window(const ChimeWindow *window, const ChimeZone *zone,
							int64_t t);

/*
 * When the run window next opens: the earliest instant after 'after' inside
 * it, for an 'after' outside it (from inside it, the next day's opening).
 * False if the job has no window.
 */
extern bool chime_window_next_open(const ChimeTiming *timing, int64_t after, int64_t *opens);

/* 'day', 'week', 'month' or NULL (none); false for anything else */
extern bool chime_parse_once_per(const char *text, ChimeOncePer *per);

/*
 * The run key of the occurrence at instant 't': its local calendar period
 * in the zone, '2026-03-08', '2026-W10' or '2026-03'.  'key' has room for
 * CHIME_RUN_KEY_LEN bytes; it is "" for CHIME_ONCE_NONE.
 */
extern void chime_run_key(ChimeOncePer per, const ChimeZone *zone, int64_t t, char *key);

#endif /* CHIME_OCCURRENCE_H */
