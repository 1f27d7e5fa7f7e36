/*-------------------------------------------------------------------------
 *
 * sched_tx.c
 *	  The scheduler's transactions: begin and commit around a unit of
 *	  work, what happens when recording fails (a pause, then again), and
 *	  the writes a role's open transaction holds up, made later in order
 *	  per job.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "replication/syncrep.h"
#include "replication/walsender.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "utils/snapmgr.h"

#include "commands/extension.h"

#include "executor.h"
#include "locks.h"
#include "run_log.h"
#include "run_outcome.h"
#include "sched.h"

/* After a failure to record: no recording before then (0: none), and the pause */
static TimestampTz sched_log_wait_until = 0;
static Oid         sched_extension = InvalidOid; /* the pg_chime extension we run for */
static int         sched_log_backoff_ms = 0;

/* One transaction around a unit of the scheduler's work */
/*
 * Writes a role's open transaction could hold up: a once_per key's new
 * state while a session (cron.release_key, cron.run_now) holds the claims
 * of its job, and the deactivation of an @at job whose row a session has
 * locked (cron.alter_job).  The scheduler never waits for those: it makes
 * them later, in order per job, once nobody holds them
 * (sched_flush_later).  Those planned by a transaction that fails go with
 * it.
 */
typedef struct SchedLater
{
	int64       jobid;
	bool        deactivate; /* else a key update */
	char        run_key[CHIME_RUN_KEY_LEN];
	int64       runid;
	char        state[16]; /* "": the key is released */
	TimestampTz at;
} SchedLater;

static List *sched_later = NIL;    /* in sched_runs_cxt */
static int   sched_later_mark = 0; /* its length when the transaction began */

static void sched_later_add(int64 jobid, bool deactivate, const char *run_key, int64 runid, const char *state, TimestampTz at);

void
sched_begin(const char *activity)
{
	/* the runs a transaction started were committed or undone with it */
	Assert(!sched_starts_pending());
	Assert(!IsTransactionState());
	sched_later_mark = list_length(sched_later);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	/*
	 * DROP EXTENSION and CREATE again between two transactions leave tables
	 * of the same names that the scheduler's statements would use with the
	 * old job list: it starts over, waiting for the new one.
	 */
	if (OidIsValid(sched_extension) && get_extension_oid("pg_chime", true) != sched_extension)
	{
		AbortCurrentTransaction();
		elog(LOG, "pg_chime scheduler: the extension was dropped; restarting");
		proc_exit(1);
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

/* Does a write of the job wait in sched_later? */
bool
sched_later_has(int64 jobid)
{
	ListCell *lc;

	foreach(lc, sched_later)
		if (((SchedLater *) lfirst(lc))->jobid == jobid)
			return true;
	return false;
}

static void
sched_later_add(int64 jobid, bool deactivate, const char *run_key, int64 runid, const char *state,
				TimestampTz at)
{
	MemoryContext old = MemoryContextSwitchTo(sched_runs_cxt);
	SchedLater   *l = palloc0(sizeof(SchedLater));

	l->jobid = jobid;
	l->deactivate = deactivate;
	if (run_key)
		strlcpy(l->run_key, run_key, sizeof(l->run_key));
	l->runid = runid;
	if (state)
		strlcpy(l->state, state, sizeof(l->state));
	l->at = at;
	sched_later = lappend(sched_later, l);
	MemoryContextSwitchTo(old);
}

/*
 * A once_per key's new state (NULL: released): now if no session holds the
 * claims of the job and nothing of the job waits, else later.  Inside a
 * transaction.
 */
void
sched_key_update(int64 jobid, const char *run_key, int64 runid, const char *state, TimestampTz now)
{
	if (!sched_later_has(jobid) && chime_lock_try(CHIME_LOCK_RUN_KEY, (uint64) jobid, false))
		chime_key_update(jobid, run_key, runid, state, now);
	else
		sched_later_add(jobid, false, run_key, runid, state, now);
}

/*
 * Deactivate @at jobs that have had their run; those whose row a session
 * holds go to sched_later (and stay there as long as it does).  Inside a
 * transaction.
 */
void
sched_deactivate_jobs(const int64 *jobids, int n, bool later_only)
{
	Datum *ids = palloc(sizeof(Datum) * (n + 1));
	Oid    types[1] = {INT8ARRAYOID};
	Datum  values[1];

	for (int i = 0; i < n; i++)
		ids[i] = Int64GetDatum(jobids[i]);
	values[0] = PointerGetDatum(construct_array(ids, n, INT8OID, 8, true, TYPALIGN_DOUBLE));
	if (SPI_execute_with_args("WITH l AS (SELECT jobid FROM cron.job WHERE jobid OPERATOR(pg_catalog.=) ANY ($1) "
							  "FOR UPDATE SKIP LOCKED), "
							  "u AS (UPDATE cron.job j SET active = false FROM l "
							  "WHERE j.jobid OPERATOR(pg_catalog.=) l.jobid RETURNING j.jobid) "
							  "SELECT jobid FROM cron.job WHERE jobid OPERATOR(pg_catalog.=) ANY ($1) "
							  "AND jobid OPERATOR(pg_catalog.<>) ALL (ARRAY(SELECT jobid FROM u))",
							  1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not deactivate @at jobs");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool  isnull;
		int64 held = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));

		if (!later_only)
			sched_later_add(held, true, NULL, 0, NULL, 0);
	}
}

/*
 * Make the writes of sched_later that nobody holds any longer, in their
 * own transaction; an entry of a job still held keeps those after it.
 */
void
sched_flush_later(void)
{
	List *held = NIL; /* SchedLater of the jobs still held */
	List *done = NIL;

	if (sched_later == NIL)
		return;
	PG_TRY();
	{
		ListCell *lc;

		sched_begin("pg_chime: writing what sessions held up");
		foreach(lc, sched_later)
		{
			SchedLater   *l = lfirst(lc);
			ListCell     *hc;
			bool          blocked = false;
			MemoryContext old;

			foreach(hc, held)
				blocked |= ((SchedLater *) lfirst(hc))->jobid == l->jobid;
			if (!blocked && l->deactivate)
			{
				sched_deactivate_jobs(&l->jobid, 1, true);
				blocked = SPI_processed > 0;
			}
			else if (!blocked)
			{
				blocked = !chime_lock_try(CHIME_LOCK_RUN_KEY, (uint64) l->jobid, false);
				if (!blocked)
					chime_key_update(l->jobid, l->run_key, l->runid, l->state[0] ? l->state : NULL, l->at);
			}
			/* (not in SPI's memory, which the commit frees) */
			old = MemoryContextSwitchTo(sched_scratch_cxt);
			if (blocked)
				held = lappend(held, l);
			else
				done = lappend(done, l);
			MemoryContextSwitchTo(old);
		}
		sched_commit();
		MemoryContextSwitchTo(sched_runs_cxt);
		foreach(lc, done)
		{
			sched_later = list_delete_ptr(sched_later, lfirst(lc));
			pfree(lfirst(lc));
		}
		MemoryContextSwitchTo(sched_scratch_cxt);
	}
	PG_CATCH();
	{
		sched_recording_failed_with("write what sessions held up", sched_catch());
	}
	PG_END_TRY();
}

void
sched_commit(void)
{
	bool wrote = TransactionIdIsValid(GetTopTransactionIdIfAny());

	Assert(IsTransactionState());
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	/*
	 * A commit that waited for a synchronous standby reset the latch: what
	 * told the scheduler meanwhile (a reply, a job changed, a manual run)
	 * is looked at in the next iteration, not at the next timer
	 */
	if (wrote && SyncRepRequested())
		SetLatch(MyLatch);
	/* the outcomes it recorded are told to their channels now */
	chime_outcomes_notify();
	/* and the runs it recorded waiting join their keys' lines */
	sched_keys_commit();
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(sched_scratch_cxt);
}

/*
 * After the commit of runs' starts, before they are handed on: a shutdown
 * that cut the commit's wait for the synchronous standbys short leaves the
 * starts on this server only, and a standby promoted now would start the
 * same runs again.  The scheduler ends here then (its next start, if any,
 * fails those runs as interrupted and retries them, fenced again).  A
 * cancel is left for the next statement, as before: it cannot undo what
 * committed.
 */
void
sched_fence(void)
{
	if (ProcDiePending)
		CHECK_FOR_INTERRUPTS();
}

/*
 * A unit of the scheduler's work failed: roll its transaction back and
 * wait before recording anything again (1 s, doubling up to 5 s).  The
 * run log may be full, locked or refusing rows; nothing stops.
 */
ErrorData *
sched_catch(void)
{
	ErrorData *edata;

	MemoryContextSwitchTo(sched_scratch_cxt);
	edata = CopyErrorData();
	FlushErrorState();
	/* what the failed transaction planned for later goes with it */
	sched_keys_undo();
	while (list_length(sched_later) > sched_later_mark)
	{
		MemoryContextSwitchTo(sched_runs_cxt);
		pfree(llast(sched_later));
		sched_later = list_delete_last(sched_later);
		MemoryContextSwitchTo(sched_scratch_cxt);
	}
	return edata;
}

void
sched_recording_failed(const char *what)
{
	sched_recording_failed_with(what, sched_catch());
}

/*
 * Roll back the transaction of a unit of work that failed (its error
 * caught, sched_catch).  When the failure was DROP EXTENSION (and maybe
 * CREATE again), the scheduler starts over, waiting for it.
 */
void
sched_abort(void)
{
	bool gone;

	AbortCurrentTransaction();
	StartTransactionCommand();
	gone = get_extension_oid("pg_chime", true) != sched_extension;
	CommitTransactionCommand();
	if (gone)
	{
		elog(LOG, "pg_chime scheduler: the extension was dropped; restarting");
		proc_exit(1);
	}
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(sched_scratch_cxt);
}

/* The same, once the error is caught (sched_catch) */
void
sched_recording_failed_with(const char *what, ErrorData *edata)
{
	TimestampTz now = chime_server_now();

	sched_abort();
	sched_log_backoff_ms = sched_log_backoff_ms == 0 ? 1000 : Min(sched_log_backoff_ms * 2, 5000);
	sched_log_wait_until = now + (int64) sched_log_backoff_ms * 1000;
	ereport(WARNING,
			(errmsg("pg_chime: could not %s: %s", what, edata->message),
			 errdetail("Nothing is lost: pg_chime tries again in %d ms; due runs wait and then "
					   "start late (within catchup) or are recorded missed.",
					   sched_log_backoff_ms)));
	FreeErrorData(edata);
	MemoryContextSwitchTo(sched_scratch_cxt);
}

/*
 * One recording transaction: write(arg) between begin and commit.  When it
 * fails, it is rolled back and recording pauses (sched_recording_failed,
 * 'what' says what failed); returns whether it committed.  No
 * transaction while recording pauses.
 */
bool
sched_record_tx(const char *activity, const char *what, void (*write)(void *arg), void *arg)
{
	volatile bool ok = true;

	if (sched_log_waiting())
		return false;
	PG_TRY();
	{
		sched_begin(activity);
		write(arg);
		sched_commit();
	}
	PG_CATCH();
	{
		sched_recording_failed(what);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/* Is recording waiting after a failure? */
bool
sched_log_waiting(void)
{
	if (sched_log_wait_until == 0)
		return false;
	return chime_server_now() < sched_log_wait_until;
}

/* The pg_chime extension the scheduler runs for (its dropping is noticed) */
void
sched_tx_set_extension(Oid extension)
{
	sched_extension = extension;
}

/* Are writes held up by a session waiting to be made? */
bool
sched_later_pending(void)
{
	return sched_later != NIL;
}

/* Until when recording pauses after a failure (server clock; 0: it does not) */
TimestampTz
sched_log_paused_until(void)
{
	return sched_log_wait_until;
}

/* Recording worked: no pause, and the next failure pauses shortly again */
void
sched_recording_ok(void)
{
	sched_log_backoff_ms = 0;
	sched_log_wait_until = 0;
}
