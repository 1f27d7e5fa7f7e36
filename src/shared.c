/*-------------------------------------------------------------------------
 *
 * shared.c
 *	  pg_chime's shared memory and the wake-up at commit.
 *
 * Every change to cron.job passes through a row trigger
 * (chime_job_changed) that notes the job id; at commit, one transaction
 * callback hands the ids to the scheduler and sets its latch, once per
 * committing transaction however many jobs it changed, so the scheduler
 * reloads only those jobs.  An aborted transaction wakes nobody.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "executor/spi.h"
#include "storage/shmem.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "pg_chime.h"
#include "shared.h"

ChimeShared *chime_shared = NULL;

static bool   shared_xact_changed = false;
static bool   shared_xact_all = false; /* the scheduler must reload every job */
static int64 *shared_xact_ids = NULL;  /* the jobs changed, in TopMemoryContext */
static int    shared_xact_nids = 0;
static bool   shared_xact_manual = false;
static bool   shared_xact_manual_all = false; /* too many manual runs to list */
static int64 *shared_xact_manual_ids = NULL;  /* their runids, in TopMemoryContext */
static int    shared_xact_nmanual = 0;

static void                    shared_publish_manual(void);
static bool                    shared_callback_registered = false;
static shmem_startup_hook_type shared_prev_startup_hook = NULL;
static void (*shared_prev_request_hook)(void) = NULL;

static void
shared_request(void)
{
	if (shared_prev_request_hook)
		shared_prev_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(ChimeShared)));
}

static void
shared_startup(void)
{
	bool found;

	if (shared_prev_startup_hook)
		shared_prev_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	chime_shared = ShmemInitStruct("pg_chime", sizeof(ChimeShared), &found);
	if (!found)
	{
		SpinLockInit(&chime_shared->mutex);
		chime_shared->scheduler_latch = NULL;
		chime_shared->scheduler_pid = 0;
		chime_shared->nchanged = 0;
		chime_shared->reload_all = false;
		chime_shared->changed_since = 0;
		pg_atomic_init_u32(&chime_shared->jobs_changed, 0);
		pg_atomic_init_u32(&chime_shared->manual_runs, 0);
		chime_shared->started_at = chime_now();
		chime_shared->manual_read_at = 0;
		chime_shared->nmanual = 0;
		chime_shared->manual_all = false;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Called from _PG_init when preloaded. */
void
chime_shared_init(void)
{
	compat_shmem_request_install(shared_request, &shared_prev_request_hook);
	shared_prev_startup_hook = shmem_startup_hook;
	shmem_startup_hook = shared_startup;
}

/* Hand this transaction's changed jobs to the scheduler (at commit). */
static void
shared_publish_changes(void)
{
	/*
	 * The start of the transaction, by pg_chime's clock: a new job runs the
	 * occurrences after it, as cron.next_runs listed them in that
	 * transaction, including those that passed before the commit.
	 */
	TimestampTz began = chime_now() - (GetCurrentTimestamp() - GetCurrentTransactionStartTimestamp());

	SpinLockAcquire(&chime_shared->mutex);
	if (chime_shared->changed_since == 0 || began < chime_shared->changed_since)
		chime_shared->changed_since = began;
	if (shared_xact_all || chime_shared->nchanged + shared_xact_nids > CHIME_CHANGED_MAX)
		chime_shared->reload_all = true;
	else
	{
		memcpy(chime_shared->changed + chime_shared->nchanged, shared_xact_ids,
			   sizeof(int64) * shared_xact_nids);
		chime_shared->nchanged += shared_xact_nids;
	}
	SpinLockRelease(&chime_shared->mutex);
	pg_atomic_write_u32(&chime_shared->jobs_changed, 1);
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
				Latch *latch;

				if (shared_xact_changed)
					shared_publish_changes();
				if (shared_xact_manual)
					shared_publish_manual();
				SpinLockAcquire(&chime_shared->mutex);
				latch = chime_shared->scheduler_latch;
				SpinLockRelease(&chime_shared->mutex);
				if (latch)
					SetLatch(latch);
			}
			shared_xact_changed = shared_xact_manual = shared_xact_all = false;
			shared_xact_nids = 0;
			shared_xact_nmanual = 0;
			shared_xact_manual_all = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			shared_xact_changed = shared_xact_manual = shared_xact_all = false;
			shared_xact_nids = 0;
			shared_xact_nmanual = 0;
			shared_xact_manual_all = false;
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
chime_jobs_changed(int64 jobid)
{
	shared_register_callback();
	shared_xact_changed = true;
	if (jobid <= 0 || shared_xact_nids >= CHIME_CHANGED_MAX)
	{
		shared_xact_all = true;
		return;
	}
	if (shared_xact_ids == NULL)
		shared_xact_ids = MemoryContextAlloc(TopMemoryContext, sizeof(int64) * CHIME_CHANGED_MAX);
	shared_xact_ids[shared_xact_nids++] = jobid;
}

int
chime_take_changed(int64 *ids, TimestampTz *since)
{
	int n;

	pg_atomic_write_u32(&chime_shared->jobs_changed, 0);
	SpinLockAcquire(&chime_shared->mutex);
	*since = chime_shared->changed_since;
	chime_shared->changed_since = 0;
	n = chime_shared->reload_all ? -1 : chime_shared->nchanged;
	if (n > 0)
		memcpy(ids, chime_shared->changed, sizeof(int64) * n);
	chime_shared->nchanged = 0;
	chime_shared->reload_all = false;
	SpinLockRelease(&chime_shared->mutex);
	return n;
}

/*
 * The trigger on cron.job: every inserted, updated or deleted row (and a
 * TRUNCATE) is a change the scheduler must see, whoever made it: the API,
 * a restore, or a superuser's own statement.
 */
PG_FUNCTION_INFO_V1(chime_job_changed);
Datum
chime_job_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trig = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("cron._job_changed() must be called as a trigger")));
	if (TRIGGER_FIRED_FOR_ROW(trig->tg_event))
	{
		TupleDesc desc = trig->tg_relation->rd_att;
		int       attno = SPI_fnumber(desc, "jobid");
		bool      isnull;
		Datum     id;

		if (attno <= 0)
			chime_jobs_changed(0);
		else
		{
			id = heap_getattr(trig->tg_trigtuple, attno, desc, &isnull);
			chime_jobs_changed(isnull ? 0 : DatumGetInt64(id));
			if (trig->tg_newtuple != NULL)
			{
				id = heap_getattr(trig->tg_newtuple, attno, desc, &isnull);
				chime_jobs_changed(isnull ? 0 : DatumGetInt64(id));
			}
		}
	}
	else
		chime_jobs_changed(0);
	return PointerGetDatum(NULL);
}

void
chime_manual_run_requested(int64 runid)
{
	shared_register_callback();
	shared_xact_manual = true;
	if (shared_xact_nmanual >= CHIME_MANUAL_MAX)
	{
		shared_xact_manual_all = true;
		return;
	}
	if (shared_xact_manual_ids == NULL)
		shared_xact_manual_ids = MemoryContextAlloc(TopMemoryContext, sizeof(int64) * CHIME_MANUAL_MAX);
	shared_xact_manual_ids[shared_xact_nmanual++] = runid;
}

/* Hand this transaction's manual runs to the scheduler (at commit). */
static void
shared_publish_manual(void)
{
	SpinLockAcquire(&chime_shared->mutex);
	if (shared_xact_manual_all || chime_shared->nmanual + shared_xact_nmanual > CHIME_MANUAL_MAX)
		chime_shared->manual_all = true;
	else
	{
		memcpy(chime_shared->manual + chime_shared->nmanual, shared_xact_manual_ids,
			   sizeof(int64) * shared_xact_nmanual);
		chime_shared->nmanual += shared_xact_nmanual;
	}
	SpinLockRelease(&chime_shared->mutex);
	pg_atomic_write_u32(&chime_shared->manual_runs, 1);
}

int
chime_peek_manual(int64 *ids)
{
	int n;

	SpinLockAcquire(&chime_shared->mutex);
	n = chime_shared->manual_all ? -1 : chime_shared->nmanual;
	if (n > 0)
		memcpy(ids, chime_shared->manual, sizeof(int64) * n);
	SpinLockRelease(&chime_shared->mutex);
	return n;
}

int
chime_take_manual(int64 *ids)
{
	int n;

	pg_atomic_write_u32(&chime_shared->manual_runs, 0);
	SpinLockAcquire(&chime_shared->mutex);
	n = chime_shared->manual_all ? -1 : chime_shared->nmanual;
	if (n > 0)
		memcpy(ids, chime_shared->manual, sizeof(int64) * n);
	chime_shared->nmanual = 0;
	chime_shared->manual_all = false;
	/* a manual run recorded from now on cannot have been taken before */
	chime_shared->manual_read_at = chime_now();
	SpinLockRelease(&chime_shared->mutex);
	return n;
}

void
chime_set_scheduler(Latch *latch)
{
	SpinLockAcquire(&chime_shared->mutex);
	chime_shared->scheduler_latch = latch;
	chime_shared->scheduler_pid = latch ? MyProcPid : 0;
	SpinLockRelease(&chime_shared->mutex);
}

/*
 * Since when a manual run recorded cannot have been taken by a scheduler:
 * the later of this scheduler's start and the last time one read them.
 */
TimestampTz
chime_manual_unread_since(void)
{
	TimestampTz since;

	SpinLockAcquire(&chime_shared->mutex);
	since = Max(chime_shared->started_at, chime_shared->manual_read_at);
	SpinLockRelease(&chime_shared->mutex);
	return since;
}

/* Have jobs changed since chime_take_changed last read them? */
bool
chime_jobs_changed_pending(void)
{
	return pg_atomic_read_u32(&chime_shared->jobs_changed) != 0;
}

/*
 * Have the scheduler look for every manual or hook run still to start (at
 * its start: hook runs recorded before a restart wait in the run log).
 */
void
chime_manual_take_all(void)
{
	SpinLockAcquire(&chime_shared->mutex);
	chime_shared->manual_all = true;
	SpinLockRelease(&chime_shared->mutex);
	pg_atomic_write_u32(&chime_shared->manual_runs, 1);
}

/* Were manual runs requested since the last call?  (Clears the flag.) */
bool
chime_manual_runs_pending(void)
{
	return pg_atomic_exchange_u32(&chime_shared->manual_runs, 0) != 0;
}
