/*-------------------------------------------------------------------------
 *
 * shared.c
 *	  pg_chime's shared memory and the wake-up at commit.
 *
 * A backend whose transaction changes jobs calls chime_jobs_changed(); at
 * commit, one transaction callback marks the change and sets the
 * scheduler's latch, once per committing transaction however many jobs it
 * changed.  An aborted transaction wakes nobody.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "shared.h"

ChimeShared *chime_shared = NULL;

static bool shared_xact_changed = false;
static bool shared_xact_manual = false;
static bool shared_callback_registered = false;
static shmem_startup_hook_type shared_prev_startup_hook = NULL;
#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type shared_prev_request_hook = NULL;
#endif

static void
shared_request(void)
{
#if PG_VERSION_NUM >= 150000
	if (shared_prev_request_hook)
		shared_prev_request_hook();
#endif
	RequestAddinShmemSpace(MAXALIGN(sizeof(ChimeShared)));
}

static void
shared_startup(void)
{
	bool		found;

	if (shared_prev_startup_hook)
		shared_prev_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	chime_shared = ShmemInitStruct("pg_chime", sizeof(ChimeShared), &found);
	if (!found)
	{
		SpinLockInit(&chime_shared->mutex);
		chime_shared->scheduler_latch = NULL;
		chime_shared->scheduler_pid = 0;
		pg_atomic_init_u32(&chime_shared->jobs_changed, 0);
		pg_atomic_init_u32(&chime_shared->manual_runs, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Called from _PG_init when preloaded. */
void
chime_shared_init(void)
{
#if PG_VERSION_NUM >= 150000
	shared_prev_request_hook = shmem_request_hook;
	shmem_request_hook = shared_request;
#else
	shared_request();
#endif
	shared_prev_startup_hook = shmem_startup_hook;
	shmem_startup_hook = shared_startup;
}

static void
shared_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if ((shared_xact_changed || shared_xact_manual) && chime_shared != NULL)
			{
				Latch	   *latch;

				if (shared_xact_changed)
					pg_atomic_write_u32(&chime_shared->jobs_changed, 1);
				if (shared_xact_manual)
					pg_atomic_write_u32(&chime_shared->manual_runs, 1);
				SpinLockAcquire(&chime_shared->mutex);
				latch = chime_shared->scheduler_latch;
				SpinLockRelease(&chime_shared->mutex);
				if (latch)
					SetLatch(latch);
			}
			shared_xact_changed = shared_xact_manual = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			shared_xact_changed = shared_xact_manual = false;
			break;
		default:
			break;
	}
}

static void
shared_register_callback(void)
{
	if (!shared_callback_registered)
	{
		RegisterXactCallback(shared_xact_callback, NULL);
		shared_callback_registered = true;
	}
}

void
chime_jobs_changed(void)
{
	shared_register_callback();
	shared_xact_changed = true;
}

void
chime_manual_run_requested(void)
{
	shared_register_callback();
	shared_xact_manual = true;
}

void
chime_set_scheduler(Latch *latch)
{
	SpinLockAcquire(&chime_shared->mutex);
	chime_shared->scheduler_latch = latch;
	chime_shared->scheduler_pid = latch ? MyProcPid : 0;
	SpinLockRelease(&chime_shared->mutex);
}
