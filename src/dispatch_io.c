/*-------------------------------------------------------------------------
 *
 * dispatch_io.c
 *	  Both ends of the executors' shared memory queues: runs sent as
 *	  executors have room, outcomes read back, executors lost with their
 *	  runs, commits in other databases confirmed, and the rows of runs an
 *	  executor has taken marked 'running' with its pid.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "compat.h"
#include "executor.h"
#include "run_log.h"
#include "sched.h"
#include "dispatch.h"

/* A run about to commit in another database, waiting for its EXEC_ACK */
typedef struct SchedConfirm
{
	SchedExecutor *ex;
	int64          runid;
	uint64         xid; /* its last transaction (FullTransactionId) */
} SchedConfirm;

static List *sched_confirms = NIL; /* in sched_runs_cxt */

static void sched_executor_lost(SchedExecutor *ex);
static void sched_write_commit_xids(void *arg);
static void sched_write_running(void *arg);

static void
sched_executor_lost(SchedExecutor *ex)
{
	ListCell *lc;

	foreach(lc, ex->inflight)
	{
		SchedRun     *run = lfirst(lc);
		SchedOutcome *d = &run->out;

		d->ok = false;
		d->lost = true;
		d->message = psprintf("failed: the executor for role %s in database %s exited "
							  "before the run finished (see the server log)",
							  ex->role->username, ex->role->database);
		d->pid = ex->pid;
		sched_done_add(run);
	}
	foreach(lc, sched_confirms)
	{
		SchedConfirm *c = lfirst(lc);

		if (c->ex == ex)
		{
			sched_confirms = foreach_delete_current(sched_confirms, lc);
			pfree(c);
		}
	}
	/* runs not sent yet go back to the head of the backlog; answers go */
	foreach(lc, ex->queue)
	{
		SchedRun *run = lfirst(lc);

		if (run->ack)
		{
			ex->queue = foreach_delete_current(ex->queue, lc);
			pfree(run->msg);
			pfree(run);
			continue;
		}
		run->marked_running = false;
	}
	MemoryContextSwitchTo(sched_runs_cxt);
	sched_backlog = list_concat(ex->queue, sched_backlog);
	MemoryContextSwitchTo(sched_scratch_cxt);
	shm_mq_detach(ex->requests);
	shm_mq_detach(ex->replies);
	dsm_detach(ex->seg);
	sched_executors = list_delete_ptr(sched_executors, ex);
}

/*
 * Read every executor's replies (no transaction): the runs that ended go
 * to sched_done, and their executors have room again.
 */
void
sched_read_replies(void)
{
	List         *lost = NIL;
	List         *stale = NIL;
	ListCell     *lc;
	MemoryContext old = MemoryContextSwitchTo(sched_runs_cxt);

	foreach(lc, sched_executors)
	{
		SchedExecutor *ex = lfirst(lc);

		for (;;)
		{
			Size          len;
			void         *data;
			shm_mq_result res = shm_mq_receive(ex->replies, &len, &data, true);
			ExecReply     reply;
			SchedRun     *run;
			SchedOutcome *d;

			if (res == SHM_MQ_WOULD_BLOCK)
				break;
			if (res == SHM_MQ_DETACHED)
			{
				lost = lappend(lost, ex);
				break;
			}
			memcpy(&reply, data, sizeof(reply));
			/* the pid from the reply: the worker slot may not show it yet */
			if (ex->pid == 0)
				ex->pid = reply.pid;
			if (ex->inflight == NIL)
				elog(ERROR, "pg_chime: executor %d replied for run " INT64_FORMAT " it was not given",
					 ex->pid, reply.runid);
			if (reply.outcome == EXEC_COMMITTING)
			{
				/* a run in another database: note its transaction, then let it commit */
				SchedConfirm *c = palloc0(sizeof(SchedConfirm));

				c->ex = ex;
				c->runid = reply.runid;
				c->xid = reply.xid;
				sched_confirms = lappend(sched_confirms, c);
				continue;
			}
			if (reply.outcome == EXEC_STALE)
			{
				/* its session no longer fits the role: a new executor runs it */
				SchedRun *run = linitial(ex->inflight);

				ex->inflight = list_delete_first(ex->inflight);
				run->marked_running = false;
				stale = lappend(stale, run);
				ex->retiring = true;
				continue;
			}
			run = linitial(ex->inflight);
			d = &run->out;
			d->ok = reply.outcome == EXEC_SUCCEEDED;
			d->skipped = reply.outcome == EXEC_SKIPPED;
			d->recorded = reply.recorded;
			d->message = pnstrdup((char *) data + sizeof(reply), len - sizeof(reply));
			d->pid = reply.pid;
			ex->inflight = list_delete_first(ex->inflight);
			sched_done_add(run);
			if (ex->inflight == NIL && ex->queue == NIL)
				ex->idle_since = chime_server_now();
		}
	}
	foreach(lc, lost)
		sched_executor_lost(lfirst(lc));
	list_free(lost);
	/* runs handed back go first, in their order; a retiring executor's queue too */
	foreach(lc, sched_executors)
	{
		SchedExecutor *ex = lfirst(lc);

		if (ex->retiring && ex->queue != NIL)
		{
			ListCell *qc;

			foreach(qc, ex->queue)
				if (!((SchedRun *) lfirst(qc))->ack)
					stale = lappend(stale, lfirst(qc));
			list_free(ex->queue);
			ex->queue = NIL;
		}
	}
	sched_backlog = list_concat(stale, sched_backlog);
	MemoryContextSwitchTo(old);
	sched_http_collect();
}

/*
 * Runs about to commit in another database: write their transaction ids on
 * their rows (one transaction), then tell each executor to commit.  A
 * restarted scheduler finds by the id whether such a run committed.
 */
typedef struct SchedCommitXids
{
	int64  *runids;
	uint64 *xids;
	int     n;
} SchedCommitXids;

static void
sched_write_commit_xids(void *arg)
{
	SchedCommitXids *x = arg;

	chime_run_set_commit_xid(x->runids, x->xids, x->n);
}

void
sched_confirm(void)
{
	SchedCommitXids x;
	ListCell       *lc;

	if (sched_confirms == NIL)
		return;
	x.n = 0;
	x.runids = palloc(sizeof(int64) * list_length(sched_confirms));
	x.xids = palloc(sizeof(uint64) * list_length(sched_confirms));
	foreach(lc, sched_confirms)
	{
		SchedConfirm *c = lfirst(lc);

		x.runids[x.n] = c->runid;
		x.xids[x.n++] = c->xid;
	}
	if (!sched_record_tx("pg_chime: noting the runs about to commit", "note the runs about to commit",
						 sched_write_commit_xids, &x))
		return;

	/*
	 * The answers go in each executor's queue behind what it has been sent
	 * in part (shm_mq sends a message whole or resumes it), and so are sent
	 * with the runs by sched_send.
	 */
	MemoryContextSwitchTo(sched_runs_cxt);
	foreach(lc, sched_confirms)
	{
		SchedConfirm *c = lfirst(lc);
		SchedRun     *ack = palloc0(sizeof(SchedRun));
		ExecRequest   req;

		memset(&req, 0, sizeof(req));
		req.kind = EXEC_ACK;
		req.runid = c->runid;
		ack->ack = true;
		ack->runid = c->runid;
		ack->len = sizeof(req);
		ack->msg = palloc(sizeof(req));
		memcpy(ack->msg, &req, sizeof(req));
		c->ex->queue = lappend(c->ex->queue, ack);
		pfree(c);
	}
	list_free(sched_confirms);
	sched_confirms = NIL;
	MemoryContextSwitchTo(sched_scratch_cxt);
}

/*
 * Give backlog runs an executor, in order (a role with no room is passed
 * over); hand queued runs to executors.
 */
void
sched_send(void)
{
	ListCell *lc;
	List     *full = NIL;

	sched_http_send();
	sched_fair_shares();

	foreach(lc, sched_backlog)
	{
		SchedRun      *run = lfirst(lc);
		SchedExecutor *ex;

		if (list_member_ptr(full, run->role))
			continue;
		ex = sched_executor_for(run->role);
		if (ex == NULL)
		{
			full = lappend(full, run->role);
			if (!sched_any_room())
				break;
			continue;
		}
		MemoryContextSwitchTo(sched_runs_cxt);
		ex->queue = lappend(ex->queue, run);
		sched_backlog = foreach_delete_current(sched_backlog, lc);
		MemoryContextSwitchTo(sched_scratch_cxt);
	}

	foreach(lc, sched_executors)
	{
		SchedExecutor *ex = lfirst(lc);

		while (ex->queue != NIL)
		{
			SchedRun     *run = linitial(ex->queue);
			shm_mq_result res = compat_shm_mq_send(ex->requests, run->len, run->msg, true);

			if (res != SHM_MQ_SUCCESS)
				break; /* full (retried when woken) or gone (seen on read) */
			MemoryContextSwitchTo(sched_runs_cxt);
			ex->queue = list_delete_first(ex->queue);
			if (run->ack)
			{
				pfree(run->msg);
				pfree(run);
			}
			else
				ex->inflight = lappend(ex->inflight, run);
			MemoryContextSwitchTo(sched_scratch_cxt);
		}
	}
}

typedef struct SchedStarted
{
	int64 *runids;
	int32 *pids;
	int    n;
} SchedStarted;

static void
sched_write_running(void *arg)
{
	SchedStarted *x = arg;

	chime_run_running(x->runids, x->pids, x->n);
}

/*
 * Before sleeping: record as running the runs handed to an executor after
 * they were recorded (from the backlog).  Runs that end while the
 * scheduler is busy go from 'starting' to their end directly.
 */
void
sched_mark_running(void)
{
	ListCell *lc;
	int64    *runids = NULL;
	int32    *pids = NULL;
	int       n = 0;
	int       size = 0;

	foreach(lc, sched_executors)
	{
		SchedExecutor *ex = lfirst(lc);
		ListCell      *rc;

		if (ex->pid == 0)
		{
			pid_t pid;

			if (GetBackgroundWorkerPid(ex->handle, &pid) != BGWH_STARTED)
				continue;
			ex->pid = pid;
		}
		foreach(rc, ex->inflight)
		{
			SchedRun *run = lfirst(rc);

			if (run->marked_running || run->runid <= 0)
				continue;
			if (n == size)
			{
				size = Max(16, size * 2);
				runids = runids ? repalloc(runids, sizeof(int64) * size) : palloc(sizeof(int64) * size);
				pids = pids ? repalloc(pids, sizeof(int32) * size) : palloc(sizeof(int32) * size);
			}
			runids[n] = run->runid;
			pids[n++] = ex->pid;
		}
	}

	if (n > 0)
	{
		SchedStarted started = {runids, pids, n};

		if (!sched_record_tx("pg_chime: recording started runs", "record the runs that started",
							 sched_write_running, &started))
			return;
	}
	/* also those not recorded (cron.log_run off) */
	foreach(lc, sched_executors)
	{
		SchedExecutor *ex = lfirst(lc);
		ListCell      *rc;

		if (ex->pid == 0)
			continue;
		foreach(rc, ex->inflight)
			((SchedRun *) lfirst(rc))->marked_running = true;
	}
}
