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

#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/spin.h"

typedef struct ChimeShared
{
	slock_t		mutex;
	Latch	   *scheduler_latch;	/* NULL while no scheduler runs */
	pid_t		scheduler_pid;
	pg_atomic_uint32 jobs_changed;	/* set at commit of a job change */
	pg_atomic_uint32 manual_runs;	/* set at commit of cron.run_now */
} ChimeShared;

extern ChimeShared *chime_shared;

extern void chime_shared_init(void);

/* Note that this transaction changed jobs: the scheduler is woken at commit. */
extern void chime_jobs_changed(void);

/* Note that this transaction asked for manual runs (cron.run_now). */
extern void chime_manual_run_requested(void);

/* The scheduler registers its latch here; NULL on exit. */
extern void chime_set_scheduler(Latch *latch);

#endif							/* CHIME_SHARED_H */
