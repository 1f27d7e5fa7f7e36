/*-------------------------------------------------------------------------
 *
 * sched_start.c
 *	  Runs started in a transaction: recorded as started all together
 *	  before its commit (sched_commit_starts), and undone when it fails.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"

#include "executor.h"
#include "run_log.h"
#include "run_outcome.h"
#include "sched.h"

static int64 sched_unlogged_runid = 0; /* runids while cron.log_run is off */

static List *sched_starts = NIL;     /* SchedRun started in this transaction */
static List *sched_deactivate = NIL; /* @at jobs that have had their run */

static void sched_flush_starts(void);

/*
 * Record the runs started in this transaction (unless cron.log_run is off)
 * and deactivate @at jobs.
 */
static void
sched_flush_starts(void)
{
	int          n = list_length(sched_starts);
	ChimeRunRow *rows;
	int64       *runids;
	ListCell    *lc;
	int          i = 0;

	if (n > 0)
	{
		runids = palloc(sizeof(int64) * n);
		if (chime_log_run)
		{
			rows = palloc(sizeof(ChimeRunRow) * n);
			foreach(lc, sched_starts)
				rows[i++] = ((SchedRun *) lfirst(lc))->row;
			chime_run_insert_batch(rows, n, runids);
		}
		else
			for (i = 0; i < n; i++)
				runids[i] = --sched_unlogged_runid;
		sched_count_started(sched_starts);
		i = 0;
		foreach(lc, sched_starts)
		{
			SchedRun *run = lfirst(lc);

			if (run->from_runid > 0)
				chime_run_set_retry(&run->from_runid, NULL, 1);

			run->runid = runids[i++];
			/* an SQL run's request starts with its header (msg is palloc'd: aligned) */
			if (run->msg)
				sched_request_recording((ExecRequest *) run->msg, run->role, run->runid);
			/* the key's run is now this attempt */
			if (run->run_key[0] != '\0')
				sched_key_update(run->jobid, run->run_key, Max(run->runid, 0), "running",
								 run->row.start_time);
			/* (in scratch memory, gone with this iteration) */
			run->row.command = NULL;
		}
	}
	if (sched_deactivate != NIL)
	{
		int64 *ids = palloc(sizeof(int64) * list_length(sched_deactivate));

		i = 0;
		foreach(lc, sched_deactivate)
			ids[i++] = *(int64 *) lfirst(lc);
		sched_deactivate_jobs(ids, i, false);
	}
}

/*
 * Runs (SchedRun) started in this transaction: counted running in their
 * jobs' statistics, from their row's start time.
 */
void
sched_count_started(List *runs)
{
	int64       *jobids = palloc(sizeof(int64) * (list_length(runs) + 1));
	TimestampTz *at = palloc(sizeof(TimestampTz) * (list_length(runs) + 1));
	int          n = 0;
	ListCell    *lc;

	foreach(lc, runs)
	{
		jobids[n] = ((SchedRun *) lfirst(lc))->jobid;
		at[n++] = ((SchedRun *) lfirst(lc))->row.start_time;
	}
	chime_stats_started(jobids, at, n);
}

/*
 * A transaction that starts runs failed: the runs it queued are dropped
 * (their rows were rolled back).  The jobs and retries it took are put
 * back by sched_jobs_restore_due and sched_retry_undo.
 */
void
sched_undo_starts(void)
{
	ListCell *lc;

	foreach(lc, sched_starts)
	{
		SchedRun *run = lfirst(lc);

		sched_run_abandon(run);
		if (run->msg)
			pfree(run->msg);
		pfree(run);
	}
	sched_starts = NIL;
	sched_deactivate = NIL;
}

/*
 * A run started in this transaction, with its row, to record as started
 * at commit (sched_commit_starts); 'at_job': its job, an @at job, is made
 * inactive then.  The list is kept in scratch memory: an undo after a
 * failed commit still reads it.
 */
void
sched_start_add(SchedRun *run, const ChimeRunRow *row, bool at_job)
{
	MemoryContext old = MemoryContextSwitchTo(sched_scratch_cxt);

	run->row = *row;
	run->row.run_key = run->run_key;
	sched_starts = lappend(sched_starts, run);
	if (at_job)
	{
		int64 *id = palloc(sizeof(int64));

		*id = run->jobid;
		sched_deactivate = lappend(sched_deactivate, id);
	}
	MemoryContextSwitchTo(old);
}

/* Are runs started in this transaction still to be recorded? */
bool
sched_starts_pending(void)
{
	return sched_starts != NIL || sched_deactivate != NIL;
}

/*
 * Commit a transaction that started runs: record them as started first
 * (one statement for all), then commit; once committed, nothing of them is
 * to undo.  A shutdown that cut the commit's wait for a synchronous
 * standby short ends the scheduler here, before any of those runs is
 * handed on: the commit is local only, and the standby that may be
 * promoted has none of them.
 */
void
sched_commit_starts(void)
{
	sched_flush_starts();
	sched_commit();
	sched_starts = NIL;
	sched_deactivate = NIL;
	sched_fence();
}
