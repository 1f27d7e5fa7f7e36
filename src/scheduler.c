/*-------------------------------------------------------------------------
 *
 * scheduler.c
 *	  The scheduler background worker: one per cluster, connected to
 *	  cron.database_name, only on a primary.
 *
 * It keeps the active SQL jobs in memory with their next due instants in a
 * pairing heap (the earliest on top, no scan of all jobs), sleeps on its
 * latch until the earliest one, and is woken early by a commit that
 * changed jobs (shared.c) or by an executor's reply.  Each due job's
 * instants come from chime_next_run(), the code behind cron.next_runs.
 *
 * Every iteration: collect executors' replies and record them; start the
 * due runs (one transaction records them all as started, before anything
 * runs); hand them to the executors; reload the jobs if they changed.
 *
 * Runs go to persistent executors (executor.c), one per (database, role),
 * started on demand and retired after a minute with nothing to do.  At
 * start, rows a previous scheduler left 'starting' or 'running' become
 * 'failed'; when an executor dies, the runs it had become 'failed'.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/pairingheap.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shm_mq.h"
#include "storage/shm_toc.h"
#include "tcop/tcopprot.h"
#include "common/hashfn.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "executor.h"
#include "pg_chime.h"
#include "run_log.h"
#include "shared.h"

/* A job the scheduler knows */
typedef struct SchedJob
{
	int64		jobid;			/* hash key */
	pairingheap_node node;
	bool		in_heap;
	int64		due;			/* next occurrence, Unix seconds */
	ChimeTiming timing;
	char	   *command;
	char	   *database;
	char	   *username;
	char		overlap;		/* 's'kip, 'b'uffer_one, 'a'llow */
	int32		timeout_ms;
	int64		catchup_s;
	int32		max_attempts;
	int64		retry_delay_us;
} SchedJob;

/* A run handed to an executor */
typedef struct SchedRun
{
	int64		runid;
	int64		jobid;
	int64		due;			/* the occurrence (Unix seconds) */
	int32		attempt;
	char	   *msg;			/* ExecRequest + command */
	Size		len;
} SchedRun;

typedef struct SchedExecutor
{
	char		database[NAMEDATALEN];
	char		username[NAMEDATALEN];
	dsm_segment *seg;
	shm_mq_handle *requests;
	shm_mq_handle *replies;
	BackgroundWorkerHandle *handle;
	int			pid;			/* 0 until known */
	List	   *queue;			/* SchedRun waiting to be sent */
	List	   *inflight;		/* SchedRun sent, in order */
	TimestampTz idle_since;
} SchedExecutor;

/* Per-job state that outlives a reload of the job list */
typedef struct SchedActive
{
	int64		jobid;			/* hash key */
	int			running;
	int64		buffered_due;	/* buffer_one: a run to start next (0: none) */
	int64		skip_runid;		/* the 'skipped' row of the current streak (0: none) */
} SchedActive;

static MemoryContext sched_jobs_cxt;	/* the job list; reset on reload */
static MemoryContext sched_runs_cxt;	/* executors, runs, active counts */
static MemoryContext sched_scratch_cxt;	/* reset every iteration */
static HTAB *sched_jobs;
static HTAB *sched_active;
static pairingheap *sched_heap;
static List *sched_executors = NIL;
static List *sched_backlog = NIL;	/* SchedRun with no executor yet */
static List *sched_backlog_exec = NIL;	/* their "database\0username" */
static int64 sched_horizon;		/* every occurrence up to here is handled */

/* A failed attempt to make again */
typedef struct SchedRetry
{
	int64		jobid;
	int64		due;			/* the occurrence it belongs to */
	int32		attempt;		/* the attempt to make */
	TimestampTz at;
} SchedRetry;

static List *sched_retries = NIL;
static HTAB *sched_manual;		/* runids of manual runs handed over */

/* Runs started in the current transaction, recorded together at commit */
typedef struct SchedStart
{
	SchedRun   *run;
	ChimeRunRow row;
} SchedStart;

static List *sched_starts = NIL;
static List *sched_deactivate = NIL;	/* @at jobs that have had their run */

/* How many due jobs one transaction starts before handing them over */
#define SCHED_CHUNK 256

static void sched_fire_retries(TimestampTz now);
static void sched_send(void);
static TimestampTz sched_next_retry(void);

/* Earliest due on top */
static int
sched_cmp(const pairingheap_node *a, const pairingheap_node *b, void *arg)
{
	const SchedJob *ja = pairingheap_const_container(SchedJob, node, a);
	const SchedJob *jb = pairingheap_const_container(SchedJob, node, b);

	if (ja->due < jb->due)
		return 1;
	if (ja->due > jb->due)
		return -1;
	return 0;
}

static int64
sched_now_unix(TimestampTz now)
{
	return chime_unix_from_timestamptz(now);
}

/* One transaction around a unit of the scheduler's work */
static void
sched_begin(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

static void sched_flush_starts(void);

static void
sched_commit(void)
{
	sched_flush_starts();
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(sched_scratch_cxt);
}

static SchedActive *
sched_active_for(int64 jobid, bool create)
{
	bool		found;
	SchedActive *a = hash_search(sched_active, &jobid, create ? HASH_ENTER : HASH_FIND, &found);

	if (a && !found)
	{
		a->running = 0;
		a->buffered_due = 0;
		a->skip_runid = 0;
	}
	return a;
}

/* Wait until CREATE EXTENSION pg_chime has committed in this database. */
static void
sched_wait_for_extension(void)
{
	for (;;)
	{
		bool		installed;

		sched_begin("pg_chime: waiting for CREATE EXTENSION pg_chime");
		if (SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_chime'",
						true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not look up the pg_chime extension");
		installed = SPI_processed > 0;
		sched_commit();
		if (installed)
			return;

		/* CREATE EXTENSION wakes us at commit; the timeout is a safety net */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		pg_atomic_write_u32(&chime_shared->jobs_changed, 0);
	}
}

/*
 * (Re)load the active SQL jobs and their next instants after the horizon.
 * At startup, @reboot jobs are returned in *reboot to run once now.
 */
static void
sched_reload(List **reboot)
{
	HASHCTL		ctl;
	uint64		n;

	MemoryContextReset(sched_jobs_cxt);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(SchedJob);
	ctl.hcxt = sched_jobs_cxt;
	sched_jobs = hash_create("pg_chime jobs", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	MemoryContextSwitchTo(sched_jobs_cxt);
	sched_heap = pairingheap_allocate(sched_cmp, NULL);
	MemoryContextSwitchTo(sched_scratch_cxt);

	/*
	 * Active jobs, and the @at jobs (inactive once they have run) that
	 * still have a retry to make.
	 */
	{
		ListCell   *lc;
		int			i = 0;
		Datum	   *ids = palloc(sizeof(Datum) * (list_length(sched_retries) + 1));
		Oid			types[1] = {INT8ARRAYOID};
		Datum		values[1];

		foreach(lc, sched_retries)
			ids[i++] = Int64GetDatum(((SchedRetry *) lfirst(lc))->jobid);
		values[0] = PointerGetDatum(construct_array(ids, i, INT8OID, sizeof(int64), true,
													TYPALIGN_DOUBLE));

		sched_begin("pg_chime: loading jobs");
		if (SPI_execute_with_args("SELECT jobid, schedule, command, database, username, timezone, "
								  "run_window, dst_gap, overlap, "
								  "coalesce(extract(epoch FROM timeout) * 1000, 0)::int4, "
								  "extract(epoch FROM catchup)::int8, max_attempts, "
								  "(extract(epoch FROM retry_delay) * 1000000)::int8 "
								  "FROM cron.job WHERE kind = 'sql' AND (active OR "
								  "(jobid = ANY ($1) AND schedule ~* '^\\s*@at\\s'))",
								  1, types, values, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not load jobs");
	}

	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		jobid = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		char	   *schedule = SPI_getvalue(tup, desc, 2);
		char	   *zone = SPI_getvalue(tup, desc, 6);
		char	   *window = SPI_getvalue(tup, desc, 7);
		char	   *gap = SPI_getvalue(tup, desc, 8);
		char	   *overlap = SPI_getvalue(tup, desc, 9);
		ChimeTiming timing;
		ChimeError	err;
		SchedJob   *job;
		bool		found;

		memset(&timing, 0, sizeof(timing));
		timing.zone = chime_zone_lookup(zone ? zone : chime_timezone, NULL);
		if (!chime_parse_schedule(schedule, &timing.sched, &err) || timing.zone == NULL ||
			(window && !chime_parse_window(window, &timing.window, &err)) ||
			!chime_parse_dst_gap(gap, &timing.gap, &err))
		{
			ereport(WARNING,
					(errmsg("pg_chime: job " INT64_FORMAT " cannot be scheduled", jobid),
					 errdetail("schedule \"%s\", time zone \"%s\"", schedule,
							   zone ? zone : chime_timezone)));
			continue;
		}

		MemoryContextSwitchTo(sched_jobs_cxt);
		job = hash_search(sched_jobs, &jobid, HASH_ENTER, &found);
		job->timing = timing;
		job->command = pstrdup(SPI_getvalue(tup, desc, 3));
		job->database = pstrdup(SPI_getvalue(tup, desc, 4));
		job->username = pstrdup(SPI_getvalue(tup, desc, 5));
		job->overlap = overlap[0];
		job->timeout_ms = DatumGetInt32(SPI_getbinval(tup, desc, 10, &isnull));
		job->catchup_s = DatumGetInt64(SPI_getbinval(tup, desc, 11, &isnull));
		job->max_attempts = DatumGetInt32(SPI_getbinval(tup, desc, 12, &isnull));
		job->retry_delay_us = DatumGetInt64(SPI_getbinval(tup, desc, 13, &isnull));
		job->in_heap = false;
		if (timing.sched.kind == CHIME_SCHED_REBOOT)
		{
			if (reboot)
				*reboot = lappend(*reboot, job);
		}
		else if (chime_next_run(&job->timing, sched_horizon, &job->due))
		{
			pairingheap_add(sched_heap, &job->node);
			job->in_heap = true;
		}
		MemoryContextSwitchTo(sched_scratch_cxt);
	}
	sched_commit();
	elog(DEBUG1, "pg_chime: loaded " UINT64_FORMAT " jobs", n);
}

/* The executor for (database, username), started if need be; NULL if none can be. */
static SchedExecutor *
sched_executor_for(const char *database, const char *username)
{
	ListCell   *lc;
	SchedExecutor *ex;
	shm_toc_estimator e;
	Size		size;
	shm_toc    *toc;
	shm_mq	   *mq;
	BackgroundWorker w;
	MemoryContext old;

	foreach(lc, sched_executors)
	{
		ex = lfirst(lc);
		if (strcmp(ex->database, database) == 0 && strcmp(ex->username, username) == 0)
			return ex;
	}
	if (list_length(sched_executors) >= chime_max_running_jobs)
		return NULL;

	old = MemoryContextSwitchTo(sched_runs_cxt);
	ex = palloc0(sizeof(SchedExecutor));
	strlcpy(ex->database, database, NAMEDATALEN);
	strlcpy(ex->username, username, NAMEDATALEN);

	shm_toc_initialize_estimator(&e);
	shm_toc_estimate_chunk(&e, EXEC_QUEUE_SIZE);
	shm_toc_estimate_chunk(&e, EXEC_QUEUE_SIZE);
	shm_toc_estimate_keys(&e, 2);
	size = shm_toc_estimate(&e);
	ex->seg = dsm_create(size, 0);
	dsm_pin_mapping(ex->seg);
	toc = shm_toc_create(PG_CHIME_TOC_MAGIC, dsm_segment_address(ex->seg), size);
	mq = shm_mq_create(shm_toc_allocate(toc, EXEC_QUEUE_SIZE), EXEC_QUEUE_SIZE);
	shm_toc_insert(toc, EXEC_KEY_REQUESTS, mq);
	shm_mq_set_sender(mq, MyProc);
	ex->requests = shm_mq_attach(mq, ex->seg, NULL);
	mq = shm_mq_create(shm_toc_allocate(toc, EXEC_QUEUE_SIZE), EXEC_QUEUE_SIZE);
	shm_toc_insert(toc, EXEC_KEY_REPLIES, mq);
	shm_mq_set_receiver(mq, MyProc);
	ex->replies = shm_mq_attach(mq, ex->seg, NULL);

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(w.bgw_library_name, "pg_chime", BGW_MAXLEN);
	strlcpy(w.bgw_function_name, "chime_executor_main", BGW_MAXLEN);
	snprintf(w.bgw_name, BGW_MAXLEN, "pg_chime executor for %s in %s", username, database);
	strlcpy(w.bgw_type, "pg_chime executor", BGW_MAXLEN);
	w.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(ex->seg));
	memcpy(w.bgw_extra, database, strlen(database) + 1);
	memcpy(w.bgw_extra + strlen(database) + 1, username, strlen(username) + 1);
	w.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&w, &ex->handle))
	{
		dsm_detach(ex->seg);
		pfree(ex);
		MemoryContextSwitchTo(old);
		return NULL;
	}
	shm_mq_set_handle(ex->requests, ex->handle);
	shm_mq_set_handle(ex->replies, ex->handle);
	ex->idle_since = GetCurrentTimestamp();
	sched_executors = lappend(sched_executors, ex);
	MemoryContextSwitchTo(old);
	return ex;
}

/* A run row of the job for occurrence 'due', starting at 'now'. */
static void
sched_row(ChimeRunRow *row, const SchedJob *job, int64 due, TimestampTz now,
		  const char *status, const char *trigger, int32 attempt)
{
	memset(row, 0, sizeof(*row));
	row->jobid = job->jobid;
	row->database = job->database;
	row->username = job->username;
	row->command = job->command;
	row->status = status;
	row->start_time = now;
	row->scheduled_time = chime_timestamptz_from_unix(due);
	row->trigger = trigger;
	row->attempt = attempt;
	row->occurrences = 1;
}

/* Put a run in the backlog, to wait for an executor for (database, username). */
static void
sched_backlog_add(SchedRun *run, const char *database, const char *username)
{
	MemoryContext old = MemoryContextSwitchTo(sched_runs_cxt);
	StringInfoData key;

	initStringInfo(&key);
	appendStringInfoString(&key, database);
	appendStringInfoChar(&key, '\0');
	appendStringInfoString(&key, username);
	sched_backlog = lappend(sched_backlog, run);
	sched_backlog_exec = lappend(sched_backlog_exec, key.data);
	MemoryContextSwitchTo(old);
}

/*
 * Queue a run for the executor (NULL: the backlog).  A run with runid 0 is
 * recorded, and its runid set, when the transaction commits.
 */
static SchedRun *
sched_queue_run(SchedJob *job, SchedExecutor *ex, int64 runid, int64 due, int32 attempt)
{
	MemoryContext old = MemoryContextSwitchTo(sched_runs_cxt);
	SchedRun   *run = palloc0(sizeof(SchedRun));
	ExecRequest req;
	size_t		clen = strlen(job->command);

	run->runid = runid;
	run->jobid = job->jobid;
	run->due = due;
	run->attempt = attempt;
	req.runid = runid;
	req.timeout_ms = job->timeout_ms;
	run->len = sizeof(req) + clen;
	run->msg = palloc(run->len);
	memcpy(run->msg, &req, sizeof(req));
	memcpy(run->msg + sizeof(req), job->command, clen);

	if (ex)
		ex->queue = lappend(ex->queue, run);
	else
		sched_backlog_add(run, job->database, job->username);
	MemoryContextSwitchTo(old);
	return run;
}

/* Record the runs started in this transaction and deactivate @at jobs. */
static void
sched_flush_starts(void)
{
	int			n = list_length(sched_starts);
	ChimeRunRow *rows;
	int64	   *runids;
	ListCell   *lc;
	int			i = 0;

	if (n > 0)
	{
		rows = palloc(sizeof(ChimeRunRow) * n);
		runids = palloc(sizeof(int64) * n);
		foreach(lc, sched_starts)
			rows[i++] = ((SchedStart *) lfirst(lc))->row;
		chime_run_insert_batch(rows, n, runids);
		i = 0;
		foreach(lc, sched_starts)
		{
			SchedRun   *run = ((SchedStart *) lfirst(lc))->run;
			ExecRequest req;

			run->runid = runids[i++];
			memcpy(&req, run->msg, sizeof(req));
			req.runid = run->runid;
			memcpy(run->msg, &req, sizeof(req));
		}
	}
	if (sched_deactivate != NIL)
	{
		Datum	   *ids = palloc(sizeof(Datum) * list_length(sched_deactivate));
		Oid			types[1] = {INT8ARRAYOID};
		Datum		values[1];

		i = 0;
		foreach(lc, sched_deactivate)
			ids[i++] = Int64GetDatum(*(int64 *) lfirst(lc));
		values[0] = PointerGetDatum(construct_array(ids, i, INT8OID, 8, true, TYPALIGN_DOUBLE));
		if (SPI_execute_with_args("UPDATE cron.job SET active = false WHERE jobid = ANY ($1)",
								  1, types, values, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not deactivate @at jobs");
	}
	sched_starts = NIL;
	sched_deactivate = NIL;
}

/*
 * Start an attempt of a job for occurrence 'due': record it and queue it,
 * or, for a first attempt, record it skipped when the previous run is still
 * going (overlap 'skip') or keep it for later ('buffer_one').  Inside a
 * transaction.
 */
static void
sched_start_run(SchedJob *job, int64 due, TimestampTz now, const char *trigger, int32 attempt)
{
	SchedActive *active = sched_active_for(job->jobid, true);
	SchedExecutor *ex;
	ChimeRunRow row;

	sched_row(&row, job, due, now, "starting", trigger, attempt);

	if (attempt == 1 && active->running > 0 && job->overlap != 'a')
	{
		if (job->overlap == 'b' && active->buffered_due == 0)
		{
			active->buffered_due = due;
			return;
		}
		/* one 'skipped' row per streak of skipped occurrences */
		if (active->skip_runid != 0)
			chime_run_add_occurrence(active->skip_runid);
		else
		{
			row.status = "skipped";
			active->skip_runid = chime_run_insert(&row);
		}
		return;
	}

	/* 'running' when a live executor takes it, 'starting' while one starts */
	ex = sched_executor_for(job->database, job->username);
	if (ex && ex->pid == 0)
	{
		pid_t		pid;

		if (GetBackgroundWorkerPid(ex->handle, &pid) == BGWH_STARTED)
			ex->pid = pid;
	}
	if (chime_log_statement)
		ereport(LOG,
				(errmsg("pg_chime: job " INT64_FORMAT " starting: %s", job->jobid, job->command)));
	row.job_pid = ex ? ex->pid : 0;
	row.status = row.job_pid != 0 ? "running" : "starting";
	active->running++;
	active->skip_runid = 0;
	{
		SchedStart *start = palloc(sizeof(SchedStart));

		start->run = sched_queue_run(job, ex, 0, due, attempt);
		start->row = row;
		sched_starts = lappend(sched_starts, start);
		if (job->timing.sched.kind == CHIME_SCHED_AT)
		{
			int64	   *id = palloc(sizeof(int64));

			*id = job->jobid;
			sched_deactivate = lappend(sched_deactivate, id);
		}
	}
}

/*
 * Handle one due job: occurrences too late for catchup become one 'missed'
 * row; of the rest, the latest starts (several coalesce into one run).
 */
static void
sched_fire_job(SchedJob *job, int64 now_s, TimestampTz now)
{
	int64		occ = job->due;
	int64		first_missed = 0;
	int64		latest = 0;
	int32		missed = 0;
	int32		coalesced = 0;
	bool		more = true;

	for (int guard = 0; more && occ <= now_s && guard < 1000000; guard++)
	{
		if (now_s - occ > job->catchup_s)
		{
			if (missed++ == 0)
				first_missed = occ;
		}
		else
		{
			latest = occ;
			coalesced++;
		}
		more = chime_next_run(&job->timing, occ, &occ);
	}

	if (missed > 0)
	{
		ChimeRunRow row;

		sched_row(&row, job, first_missed, now, "missed", "schedule", 1);
		row.occurrences = missed;
		(void) chime_run_insert(&row);
	}
	if (latest != 0)
		sched_start_run(job, latest, now,
						(coalesced > 1 || now_s - latest >= 1) ? "catchup" : "schedule", 1);

	if (more)
	{
		job->due = occ;
		pairingheap_add(sched_heap, &job->node);
		job->in_heap = true;
	}
}

/*
 * Hand over the manual runs cron.run_now recorded: rows 'starting' with
 * trigger 'manual' that are not handed over yet.
 */
static void
sched_start_manual(void)
{
	uint64		n;

	sched_begin("pg_chime: starting manual runs");
	if (SPI_execute("SELECT r.runid, r.jobid, chime_epoch, j.command, j.database, j.username, "
					"coalesce(extract(epoch FROM j.timeout) * 1000, 0)::int4 "
					"FROM cron.job_run_details r JOIN cron.job j USING (jobid), "
					"LATERAL (SELECT extract(epoch FROM r.scheduled_time)::int8 AS chime_epoch) e "
					"WHERE r.trigger = 'manual' AND r.status = 'starting' AND r.job_pid IS NULL",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read manual runs");
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		bool		found;
		int64		runid = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		SchedJob	job;
		SchedExecutor *ex;

		(void) hash_search(sched_manual, &runid, HASH_ENTER, &found);
		if (found)
			continue;
		memset(&job, 0, sizeof(job));
		job.jobid = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		job.command = SPI_getvalue(tup, desc, 4);
		job.database = SPI_getvalue(tup, desc, 5);
		job.username = SPI_getvalue(tup, desc, 6);
		job.timeout_ms = DatumGetInt32(SPI_getbinval(tup, desc, 7, &isnull));

		ex = sched_executor_for(job.database, job.username);
		if (ex && ex->pid != 0)
			chime_run_running(runid, ex->pid);
		sched_active_for(job.jobid, true)->running++;
		(void) sched_queue_run(&job, ex, runid, DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull)), 1);
	}
	sched_commit();
}

/* Start every run that is due, in one transaction; then move the horizon. */
static void
sched_fire_due(List *reboot)
{
	TimestampTz now = chime_now();
	int64		now_s = sched_now_unix(now);
	List	   *due = NIL;
	ListCell   *lc;

	while (!pairingheap_is_empty(sched_heap))
	{
		SchedJob   *job = pairingheap_container(SchedJob, node, pairingheap_first(sched_heap));

		if (job->due > now_s)
			break;
		(void) pairingheap_remove_first(sched_heap);
		job->in_heap = false;
		due = lappend(due, job);
	}

	if (due != NIL || reboot != NIL ||
		(sched_retries != NIL && sched_next_retry() <= now))
	{
		int			done = 0;

		/*
		 * In chunks: each is recorded and handed over before the next is
		 * recorded, so executors start on the first runs at once.
		 */
		sched_begin("pg_chime: starting due runs");
		sched_fire_retries(now);
		foreach(lc, reboot)
			sched_start_run(lfirst(lc), now_s, now, "schedule", 1);
		foreach(lc, due)
		{
			sched_fire_job(lfirst(lc), now_s, now);
			if (++done % SCHED_CHUNK == 0 && lnext(due, lc) != NULL)
			{
				sched_commit();
				sched_send();
				sched_begin("pg_chime: starting due runs");
			}
		}
		sched_commit();
	}
	sched_horizon = now_s;
}

/*
 * The delay before attempt 'attempt' + 1: retry_delay doubled for each
 * attempt made, capped by cron.max_retry_delay, with a jitter of +-10 %
 * that depends only on the job, the occurrence and the attempt.
 */
static int64
sched_retry_delay_us(const SchedJob *job, int64 due, int32 attempt)
{
	double		delay = (double) job->retry_delay_us;
	uint64		h;

	for (int i = 1; i < attempt && delay < (double) chime_max_retry_delay_us; i++)
		delay *= 2;
	if (delay > (double) chime_max_retry_delay_us)
		delay = (double) chime_max_retry_delay_us;
	h = hash_bytes_uint32((uint32) job->jobid) ^
		((uint64) hash_bytes_uint32((uint32) due) << 1) ^
		hash_bytes_uint32((uint32) attempt * 2654435761u);
	delay *= 0.9 + 0.2 * (double) (h % 10001) / 10000.0;
	return (int64) delay;
}

/*
 * After a failed attempt: plan the next one if the job allows more and
 * the error is one a retry can change (SQLSTATE class 42, a syntax or
 * access rule error, cannot).
 */
static void
sched_plan_retry(int64 jobid, int64 due, int32 attempt, const char *message, TimestampTz now)
{
	SchedJob   *job = hash_search(sched_jobs, &jobid, HASH_FIND, NULL);
	MemoryContext old;
	SchedRetry *r;

	if (job == NULL || attempt >= job->max_attempts)
		return;
	if (message && strncmp(message, "ERROR: 42", 9) == 0)
		return;
	old = MemoryContextSwitchTo(sched_runs_cxt);
	r = palloc(sizeof(SchedRetry));
	r->jobid = jobid;
	r->due = due;
	r->attempt = attempt + 1;
	r->at = now + sched_retry_delay_us(job, due, attempt);
	sched_retries = lappend(sched_retries, r);
	MemoryContextSwitchTo(old);
}

/* Start the retries whose time has come (inside a transaction). */
static void
sched_fire_retries(TimestampTz now)
{
	ListCell   *lc;

	foreach(lc, sched_retries)
	{
		SchedRetry *r = lfirst(lc);
		SchedJob   *job;

		if (r->at > now)
			continue;
		sched_retries = foreach_delete_current(sched_retries, lc);
		job = hash_search(sched_jobs, &r->jobid, HASH_FIND, NULL);
		/* a job removed, or a window closed, ends its retries */
		if (job && chime_in_window(&job->timing.window, job->timing.zone, sched_now_unix(now)))
			sched_start_run(job, r->due, now, "retry", r->attempt);
		pfree(r);
	}
}

/* When the next retry is due, or 0 if none is planned. */
static TimestampTz
sched_next_retry(void)
{
	TimestampTz next = 0;
	ListCell   *lc;

	foreach(lc, sched_retries)
	{
		SchedRetry *r = lfirst(lc);

		if (next == 0 || r->at < next)
			next = r->at;
	}
	return next;
}

/* A run ended (or was lost with its executor): record it in 'done'. */
typedef struct SchedDone
{
	int64		runid;
	int64		jobid;
	int64		due;
	int32		attempt;
	bool		ok;
	char	   *message;
	int			pid;
} SchedDone;

static void
sched_executor_lost(SchedExecutor *ex, List **done)
{
	ListCell   *lc;

	foreach(lc, ex->inflight)
	{
		SchedRun   *run = lfirst(lc);
		SchedDone  *d = palloc0(sizeof(SchedDone));

		d->runid = run->runid;
		d->jobid = run->jobid;
		d->due = run->due;
		d->attempt = run->attempt;
		d->ok = false;
		d->message = psprintf("failed: the executor for role %s in database %s exited "
							  "before the run finished (see the server log)",
							  ex->username, ex->database);
		d->pid = ex->pid;
		*done = lappend(*done, d);
	}
	/* runs not sent yet go back to the backlog for a new executor */
	foreach(lc, ex->queue)
		sched_backlog_add(lfirst(lc), ex->database, ex->username);
	shm_mq_detach(ex->requests);
	shm_mq_detach(ex->replies);
	dsm_detach(ex->seg);
	sched_executors = list_delete_ptr(sched_executors, ex);
}

/* Read every executor's replies; record finished runs in one transaction. */
static void
sched_collect(void)
{
	List	   *done = NIL;
	List	   *lost = NIL;
	List	   *started = NIL;	/* runs whose executor has just started */
	ListCell   *lc;
	TimestampTz now;

	foreach(lc, sched_executors)
	{
		SchedExecutor *ex = lfirst(lc);

		if (ex->pid == 0)
		{
			pid_t		pid;

			if (GetBackgroundWorkerPid(ex->handle, &pid) == BGWH_STARTED)
			{
				ListCell   *rc;

				ex->pid = pid;
				foreach(rc, ex->inflight)
					started = lappend(started, lfirst(rc));
				foreach(rc, ex->queue)
					started = lappend(started, lfirst(rc));
			}
		}
		for (;;)
		{
			Size		len;
			void	   *data;
			shm_mq_result res = shm_mq_receive(ex->replies, &len, &data, true);
			ExecReply	reply;
			SchedDone  *d;

			if (res == SHM_MQ_WOULD_BLOCK)
				break;
			if (res == SHM_MQ_DETACHED)
			{
				lost = lappend(lost, ex);
				break;
			}
			memcpy(&reply, data, sizeof(reply));
			d = palloc0(sizeof(SchedDone));
			d->runid = reply.runid;
			d->ok = reply.ok;
			d->message = pnstrdup((char *) data + sizeof(reply), len - sizeof(reply));
			d->pid = ex->pid;
			if (ex->inflight != NIL)
			{
				SchedRun   *run = linitial(ex->inflight);

				d->jobid = run->jobid;
				d->due = run->due;
				d->attempt = run->attempt;
				ex->inflight = list_delete_first(ex->inflight);
				pfree(run->msg);
				pfree(run);
			}
			done = lappend(done, d);
			if (ex->inflight == NIL && ex->queue == NIL)
				ex->idle_since = GetCurrentTimestamp();
		}
	}
	foreach(lc, lost)
		sched_executor_lost(lfirst(lc), &done);

	if (done == NIL && started == NIL)
		return;

	now = chime_now();
	sched_begin("pg_chime: recording finished runs");
	foreach(lc, started)
	{
		SchedRun   *run = lfirst(lc);
		ListCell   *xc;

		foreach(xc, sched_executors)
		{
			SchedExecutor *ex = lfirst(xc);

			if (list_member_ptr(ex->inflight, run) || list_member_ptr(ex->queue, run))
				chime_run_running(run->runid, ex->pid);
		}
	}
	foreach(lc, done)
	{
		SchedDone  *d = lfirst(lc);
		SchedActive *active = sched_active_for(d->jobid, false);

		chime_run_finish(d->runid, d->ok ? "succeeded" : "failed", d->message, d->pid, now);
		(void) hash_search(sched_manual, &d->runid, HASH_REMOVE, NULL);
		if (!d->ok)
			sched_plan_retry(d->jobid, d->due, d->attempt, d->message, now);
		if (active)
		{
			active->running--;
			if (active->running == 0 && active->buffered_due != 0)
			{
				SchedJob   *job = hash_search(sched_jobs, &d->jobid, HASH_FIND, NULL);
				int64		buffered = active->buffered_due;

				active->buffered_due = 0;
				if (job)
					sched_start_run(job, buffered, now, "schedule", 1);
			}
		}
	}
	sched_commit();
}

/* Hand queued runs to executors; give backlog runs an executor. */
static void
sched_send(void)
{
	ListCell   *lc;

	while (sched_backlog != NIL)
	{
		char	   *key = linitial(sched_backlog_exec);
		SchedExecutor *ex = sched_executor_for(key, key + strlen(key) + 1);

		if (ex == NULL)
			break;
		ex->queue = lappend(ex->queue, linitial(sched_backlog));
		sched_backlog = list_delete_first(sched_backlog);
		sched_backlog_exec = list_delete_first(sched_backlog_exec);
		pfree(key);
	}

	foreach(lc, sched_executors)
	{
		SchedExecutor *ex = lfirst(lc);

		while (ex->queue != NIL)
		{
			SchedRun   *run = linitial(ex->queue);
			shm_mq_result res = compat_shm_mq_send(ex->requests, run->len, run->msg, true);

			if (res != SHM_MQ_SUCCESS)
				break;			/* full (retried when woken) or gone (seen on read) */
			MemoryContextSwitchTo(sched_runs_cxt);
			ex->queue = list_delete_first(ex->queue);
			ex->inflight = lappend(ex->inflight, run);
			MemoryContextSwitchTo(sched_scratch_cxt);
		}
	}
}

/* Retire executors idle for EXEC_IDLE_MS; returns ms until the next one is due. */
static long
sched_retire_idle(void)
{
	TimestampTz now = GetCurrentTimestamp();
	long		next = -1;
	ListCell   *lc;

	foreach(lc, sched_executors)
	{
		SchedExecutor *ex = lfirst(lc);
		long		left;

		if (ex->queue != NIL || ex->inflight != NIL)
			continue;
		left = EXEC_IDLE_MS - (long) ((now - ex->idle_since) / 1000);
		if (left <= 0 || sched_backlog != NIL)
		{
			shm_mq_detach(ex->requests);
			shm_mq_detach(ex->replies);
			dsm_detach(ex->seg);
			sched_executors = foreach_delete_current(sched_executors, lc);
		}
		else if (next < 0 || left < next)
			next = left;
	}
	return next;
}

static void
sched_on_exit(int code, Datum arg)
{
	if (chime_shared)
		chime_set_scheduler(NULL);
}

void
chime_scheduler_main(Datum arg)
{
	List	   *reboot = NIL;
	List	   *interrupted = NIL;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(chime_database_name, NULL, 0);
	pgstat_report_appname("pg_chime scheduler");
	chime_set_scheduler(MyLatch);
	on_proc_exit(sched_on_exit, 0);

	sched_jobs_cxt = AllocSetContextCreate(TopMemoryContext, "pg_chime jobs", ALLOCSET_DEFAULT_SIZES);
	sched_runs_cxt = AllocSetContextCreate(TopMemoryContext, "pg_chime runs", ALLOCSET_DEFAULT_SIZES);
	sched_scratch_cxt = AllocSetContextCreate(TopMemoryContext, "pg_chime scratch", ALLOCSET_DEFAULT_SIZES);
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(SchedActive);
		ctl.hcxt = sched_runs_cxt;
		sched_active = hash_create("pg_chime active jobs", 256, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		ctl.entrysize = sizeof(int64);
		sched_manual = hash_create("pg_chime manual runs", 64, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	MemoryContextSwitchTo(sched_scratch_cxt);

	sched_wait_for_extension();

	sched_begin("pg_chime: reconciling interrupted runs");
	chime_run_reconcile(chime_now(), sched_runs_cxt, &interrupted);
	sched_commit();
	if (interrupted != NIL)
		elog(LOG, "pg_chime: %d interrupted runs marked failed", list_length(interrupted));

	/*
	 * Interrupted attempts are retried as their job's policy allows.  They
	 * are listed before loading the jobs, so that an @at job, inactive once
	 * it has run, is loaded for its retry; their time is set once the job's
	 * policy is known.
	 */
	{
		ListCell   *lc;
		TimestampTz now = chime_now();

		MemoryContextSwitchTo(sched_runs_cxt);
		foreach(lc, interrupted)
		{
			ChimeInterrupted *run = lfirst(lc);
			SchedRetry *r = palloc(sizeof(SchedRetry));

			r->jobid = run->jobid;
			r->due = run->due;
			r->attempt = run->attempt + 1;
			r->at = 0;
			sched_retries = lappend(sched_retries, r);
		}
		list_free_deep(interrupted);
		MemoryContextSwitchTo(sched_scratch_cxt);

		sched_horizon = sched_now_unix(now);
		sched_reload(&reboot);

		foreach(lc, sched_retries)
		{
			SchedRetry *r = lfirst(lc);
			SchedJob   *job = hash_search(sched_jobs, &r->jobid, HASH_FIND, NULL);

			if (job == NULL || r->attempt > job->max_attempts)
			{
				sched_retries = foreach_delete_current(sched_retries, lc);
				pfree(r);
			}
			else
				r->at = now + sched_retry_delay_us(job, r->due, r->attempt - 1);
		}
	}
	elog(LOG, "pg_chime scheduler started");

	for (;;)
	{
		long		timeout = -1;
		long		retire;
		int			events = WL_LATCH_SET | WL_EXIT_ON_PM_DEATH;
		bool		reload = false;

		MemoryContextReset(sched_scratch_cxt);
		sched_collect();
		sched_fire_due(reboot);
		reboot = NIL;
		sched_send();
		retire = sched_retire_idle();

		if (!pairingheap_is_empty(sched_heap))
		{
			SchedJob   *job = pairingheap_container(SchedJob, node, pairingheap_first(sched_heap));
			TimestampTz due = chime_timestamptz_from_unix(job->due);
			TimestampTz now = chime_now();

			timeout = due <= now ? 0 : (long) ((due - now + 999) / 1000);
		}
		if (retire >= 0 && (timeout < 0 || retire < timeout))
			timeout = retire;
		if (sched_retries != NIL)
		{
			TimestampTz at = sched_next_retry();
			TimestampTz now = chime_now();
			long		left = at <= now ? 0 : (long) ((at - now + 999) / 1000);

			if (timeout < 0 || left < timeout)
				timeout = left;
		}
		if (timeout >= 0)
			events |= WL_TIMEOUT;

		(void) WaitLatch(MyLatch, events, timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			reload = true;
		}
		if (pg_atomic_exchange_u32(&chime_shared->jobs_changed, 0) != 0)
			reload = true;
		if (reload)
		{
			/* occurrences up to now belong to the old job list */
			sched_fire_due(NIL);
			sched_reload(NULL);
		}
		if (pg_atomic_exchange_u32(&chime_shared->manual_runs, 0) != 0)
			sched_start_manual();
	}
}
