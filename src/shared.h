/*-------------------------------------------------------------------------
 *
 * shared.h
 *	  pg_chime's shared memory: how backends reach the scheduler.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHIME_SHARED_H
#define CHIME_SHARED_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/spin.h"

/* How many changed job ids are passed to the scheduler before it reloads all */
#define CHIME_CHANGED_MAX 4096
/* How many manual runs are passed by id before the scheduler looks for all */
#define CHIME_MANUAL_MAX 1024

typedef struct ChimeShared
{
	slock_t          mutex;
	Latch           *scheduler_latch; /* NULL while no scheduler runs */
	pid_t            scheduler_pid;
	pg_atomic_uint32 jobs_changed; /* set at commit of a job change */
	/* The jobs changed since the scheduler last looked (under mutex) */
	int              nchanged;
	bool             reload_all;    /* too many to list, or a TRUNCATE */
	TimestampTz      changed_since; /* pg_chime's clock at the start of the earliest of those transactions (0: none) */
	int64            changed[CHIME_CHANGED_MAX];
	pg_atomic_uint32 manual_runs; /* set at commit of cron.run_now */

	/*
	 * Manual runs recorded after the later of these were never taken by a
	 * scheduler: when shared memory was made (server start, crash-restart),
	 * and when a scheduler last read the manual runs (under mutex).
	 */
	TimestampTz started_at;
	TimestampTz manual_read_at;

	/* The manual runs recorded since the scheduler last took them (under mutex) */
	int   nmanual;
	bool  manual_all; /* too many to list */
	int64 manual[CHIME_MANUAL_MAX];
} ChimeShared;

extern ChimeShared *chime_shared;

extern void chime_shared_init(void);

/*
 * Note that this transaction changed a job (jobid > 0) or possibly all of
 * them (0): at commit the scheduler is told which and woken.
 */
extern void chime_jobs_changed(int64 jobid);

/*
 * The scheduler takes the jobs changed since its last call: returns the
 * number copied to ids[] (at most CHIME_CHANGED_MAX), or -1 when it must
 * reload all jobs; *since is when the first of those changes committed, by
 * pg_chime's clock (0 if none).
 */
extern int chime_take_changed(int64 *ids, TimestampTz *since);

/* Note that this transaction recorded a manual run (cron.run_now). */
extern void chime_manual_run_requested(int64 runid);

/*
 * The scheduler takes the manual runs recorded since its last call: the
 * number of runids copied to ids[] (at most CHIME_MANUAL_MAX), or -1 when
 * it must look for all of them.
 */
extern int chime_take_manual(int64 *ids);

/* The same without taking them (-1: too many to list). */
extern int chime_peek_manual(int64 *ids);

/* The scheduler registers its latch here; NULL on exit. */
extern void chime_set_scheduler(Latch *latch);

/* For the scheduler's loop */
extern TimestampTz chime_manual_unread_since(void);
extern bool        chime_jobs_changed_pending(void);
extern bool        chime_manual_runs_pending(void);
extern void        chime_manual_take_all(void);

#endif /* CHIME_SHARED_H */
