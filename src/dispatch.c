/*-------------------------------------------------------------------------
 *
 * dispatch.c
 *	  Where an SQL run goes: the run record made for it (sched_queue_run),
 *	  and the pool of persistent executors (executor.c), one or more per
 *	  (database, role), started on demand, shared fairly between roles,
 *	  retired when idle.  dispatch_io.c talks to them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "pgstat.h"
#include "storage/shm_toc.h"

#include "executor.h"
#include "locks.h"
#include "run_log.h"
#include "sched.h"
#include "dispatch.h"

static HTAB *sched_roles;           /* SchedRole, interned */
List        *sched_executors = NIL; /* SchedExecutor */
List        *sched_backlog = NIL;   /* SchedRun with no executor yet */

/* No executor can start before then (0: the last one started) */
static TimestampTz sched_no_slot_until = 0;

static TimestampTz sched_slot_warned = 0; /* when slots were last said to be short */

static SchedExecutor *sched_executor_start(SchedRole *role);
static int            sched_executor_load(const SchedExecutor *ex);
static bool           sched_over_share(const SchedRole *role);
static bool           sched_role_may_grow(const SchedRole *role);

/* Start an executor for the role; NULL if none can start now. */
static SchedExecutor *
sched_executor_start(SchedRole *role)
{
	SchedExecutor    *ex;
	shm_toc_estimator e;
	Size              size;
	shm_toc          *toc;
	shm_mq           *mq;
	BackgroundWorker  w;
	MemoryContext     old;

	if (chime_server_now() < sched_no_slot_until)
		return NULL;
	old = MemoryContextSwitchTo(sched_runs_cxt);
	ex = palloc0(sizeof(SchedExecutor));
	ex->role = role;

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
	snprintf(w.bgw_name, BGW_MAXLEN, "pg_chime executor for %s in %s", role->username, role->database);
	strlcpy(w.bgw_type, "pg_chime executor", BGW_MAXLEN);
	w.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(ex->seg));
	memcpy(w.bgw_extra, role->database, strlen(role->database) + 1);
	memcpy(w.bgw_extra + strlen(role->database) + 1, role->username, strlen(role->username) + 1);
	w.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&w, &ex->handle))
	{
		/*
		 * Every worker slot is taken: idle executors of other roles give
		 * way (sched_retire_idle), and we are woken when a worker ends;
		 * try again shortly in any case.
		 */
		TimestampTz now = chime_server_now();

		dsm_detach(ex->seg);
		pfree(ex);
		MemoryContextSwitchTo(old);
		sched_no_slot_until = now + 200 * 1000;
		if (now >= sched_slot_warned + 60 * USECS_PER_SEC)
		{
			ereport(WARNING,
					(errmsg("pg_chime: no background worker slot is free for an executor of role %s in database %s",
							role->username, role->database),
					 errdetail("%d executors run; max_worker_processes is %d.",
							   list_length(sched_executors), max_worker_processes),
					 errhint("Raise max_worker_processes; until then idle executors give way to waiting runs.")));
			sched_slot_warned = now;
		}
		return NULL;
	}
	sched_no_slot_until = 0;
	shm_mq_set_handle(ex->requests, ex->handle);
	shm_mq_set_handle(ex->replies, ex->handle);
	ex->idle_since = chime_server_now();
	sched_executors = lappend(sched_executors, ex);
	MemoryContextSwitchTo(old);
	return ex;
}

static int
sched_executor_load(const SchedExecutor *ex)
{
	return list_length(ex->queue) + list_length(ex->inflight);
}

/*
 * Fair shares of the executors.  While runs wait for an executor and no
 * more can start, every role with runs waiting or going has a share of
 * cron.max_running_jobs; if a role waiting has fewer executors than its
 * share, the roles at or over theirs are given no more runs (not even
 * queued behind their own), so that their executors go idle and give way
 * (sched_retire_idle) to the roles under theirs.  sched_share is that
 * share, 0 when no role is short of one.  Recomputed at each sched_send.
 */
static int sched_share = 0;

void
sched_fair_shares(void)
{
	HASH_SEQ_STATUS seq;
	SchedRole      *r;
	ListCell       *lc;
	List           *waiting = NIL;
	int             ndemand = 0;
	int             share;

	sched_share = 0;
	if (sched_backlog == NIL || hash_get_num_entries(sched_roles) < 2)
		return; /* (nexec is read only while sched_share > 0) */
	hash_seq_init(&seq, sched_roles);
	while ((r = hash_seq_search(&seq)) != NULL)
		r->nexec = 0;
	foreach(lc, sched_executors)
		((SchedExecutor *) lfirst(lc))->role->nexec++;

	foreach(lc, sched_backlog)
		waiting = list_append_unique_ptr(waiting, ((SchedRun *) lfirst(lc))->role);
	hash_seq_init(&seq, sched_roles);
	while ((r = hash_seq_search(&seq)) != NULL)
		if (r->nexec > 0 || list_member_ptr(waiting, r))
			ndemand++;
	/* what can run: cron.max_running_jobs, or the executors there are when worker slots are short */
	share = Max(1, (sched_no_slot_until != 0 ? list_length(sched_executors) : chime_max_running_jobs) / Max(ndemand, 1));
	foreach(lc, waiting)
	{
		SchedRole *w = lfirst(lc);

		/* (a role at its cron.max_running_jobs_per_role waits for itself) */
		if (w->nexec < share && sched_role_may_grow(w))
		{
			sched_share = share;
			break;
		}
	}
	list_free(waiting);
}

/* Does the role hold its fair share while another waits for one? */
static bool
sched_over_share(const SchedRole *role)
{
	return sched_share > 0 && role->nexec >= sched_share;
}

/* May another executor start for the role (cron.max_running_jobs_per_role)? */
static bool
sched_role_may_grow(const SchedRole *role)
{
	ListCell *lc;
	int       n = 0;

	if (chime_max_running_jobs_per_role <= 0)
		return true;
	foreach(lc, sched_executors)
	{
		if (strcmp(((SchedExecutor *) lfirst(lc))->role->username, role->username) == 0)
			n++;
	}
	return n < chime_max_running_jobs_per_role;
}

/*
 * The executor to give a run of the role: an idle one, else a new one
 * while fewer than cron.max_running_jobs run (and fewer than
 * cron.max_running_jobs_per_role of its role), else the least busy one if
 * it has room; NULL when the run must wait.  A role over its fair share
 * gets none.
 */
SchedExecutor *
sched_executor_for(SchedRole *role)
{
	SchedExecutor *best = NULL;
	int            best_load = 0;
	ListCell      *lc;

	if (sched_over_share(role))
		return NULL;
	foreach(lc, sched_executors)
	{
		SchedExecutor *ex = lfirst(lc);

		if (ex->role == role && !ex->retiring &&
			(best == NULL || sched_executor_load(ex) < best_load))
		{
			best = ex;
			best_load = sched_executor_load(ex);
		}
	}
	if (best != NULL && best_load == 0)
		return best;
	if (list_length(sched_executors) < chime_max_running_jobs && sched_role_may_grow(role))
	{
		SchedExecutor *ex = sched_executor_start(role);

		if (ex != NULL)
		{
			role->nexec++;
			return ex;
		}
	}
	if (best != NULL && best_load < SCHED_PIPELINE)
		return best;
	return NULL;
}

/*
 * Executors for runs about to be due: idle ones of the role are started
 * until it has 'want' (within cron.max_running_jobs and the role's limit),
 * so that the first runs of an instant do not wait for a worker to start.
 */
void
sched_executors_prestart(SchedRole *role, int want)
{
	ListCell *lc;
	int       have = 0;

	/* runs are waiting for an executor, or the role has its share: none ahead */
	if (sched_backlog != NIL || sched_over_share(role))
		return;
	foreach(lc, sched_executors)
	{
		SchedExecutor *ex = lfirst(lc);

		if (ex->role == role && !ex->retiring)
			have++;
	}
	while (have < want && list_length(sched_executors) < chime_max_running_jobs &&
		   sched_role_may_grow(role) && sched_executor_start(role) != NULL)
	{
		role->nexec++;
		have++;
	}
}

/* Is there room for one more run, in some executor or a new one? */
bool
sched_any_room(void)
{
	ListCell *lc;

	if (list_length(sched_executors) < chime_max_running_jobs &&
		chime_server_now() >= sched_no_slot_until)
		return true;
	foreach(lc, sched_executors)
		if (sched_executor_load(lfirst(lc)) < SCHED_PIPELINE)
			return true;
	return false;
}

/*
 * Retire executors idle for EXEC_IDLE_MS; returns ms until the next one is
 * due (0: at once, -1: none).
 */
long
sched_retire_idle(void)
{
	TimestampTz now = chime_server_now();
	long        next = -1;
	ListCell   *lc;

	foreach(lc, sched_executors)
	{
		SchedExecutor *ex = lfirst(lc);
		long           left;

		if (ex->queue != NIL || ex->inflight != NIL)
			continue;
		left = EXEC_IDLE_MS - (long) ((now - ex->idle_since) / 1000);
		/* an idle executor also gives way to runs of another role waiting */
		if (left <= 0 || ex->retiring ||
			(sched_backlog != NIL &&
			 (list_length(sched_executors) >= chime_max_running_jobs || sched_no_slot_until != 0)))
		{
			if (left > 0)
				next = 0; /* come back at once to start their executor */
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

/*
 * Executors a previous scheduler left running (it ended while they ran a
 * command): stop them and wait until they are gone, so that no run of
 * theirs is still going when their rows are reconciled and retried.
 */
void
sched_stop_orphans(void)
{
	for (int round = 0;; round++)
	{
		List     *pids = NIL;
		ListCell *lc;

		sched_begin("pg_chime: stopping the executors of a previous scheduler");
		if (SPI_execute("SELECT pid FROM pg_catalog.pg_stat_activity "
						"WHERE backend_type OPERATOR(pg_catalog.=) 'pg_chime executor'",
						true, 0) != SPI_OK_SELECT)

			elog(ERROR, "could not list executors");
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool isnull;

			pids = lappend_int(pids, DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)));
		}
		sched_commit();
		if (pids == NIL)
			return;
		if (round == 0)
			elog(LOG, "pg_chime: stopping %d executors of a previous scheduler", list_length(pids));
		foreach(lc, pids)
			(void) kill(lfirst_int(lc), SIGTERM);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 100L,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Until when no executor can start (server clock), while runs wait for
 * one; 0 if none waits or a slot may be free now.
 */
TimestampTz
sched_slot_wait_until(void)
{
	return sched_backlog != NIL ? sched_no_slot_until : 0;
}

/* The interned (database, role) pair */
SchedRole *
sched_role(const char *database, const char *username)
{
	SchedRole  key;
	SchedRole *role;
	bool       found;

	memset(&key, 0, sizeof(key));
	strlcpy(key.database, database, NAMEDATALEN);
	strlcpy(key.username, username, NAMEDATALEN);
	role = hash_search(sched_roles, &key, HASH_ENTER, &found);
	if (!found)
		role->nexec = 0;
	return role;
}

/* At start: the table of (database, role) pairs */
void
sched_dispatch_init(void)
{
	sched_roles = sched_hash("pg_chime roles", 16, SCHED_ROLE_KEYSIZE, sizeof(SchedRole),
							 sched_runs_cxt);
}

/* The executor's pid, once its process is known to have started (0 until then) */
int
sched_executor_pid(SchedExecutor *ex)
{
	if (ex->pid == 0)
	{
		pid_t pid;

		if (GetBackgroundWorkerPid(ex->handle, &pid) == BGWH_STARTED)
			ex->pid = pid;
	}
	return ex->pid;
}

/*
 * A run that will not start after all (the transaction that started it
 * failed): out of its executor's queue, the backlog or the HTTP queue.
 */
void
sched_dispatch_withdraw(SchedRun *run)
{
	ListCell *lc;

	foreach(lc, sched_executors)
	{
		SchedExecutor *ex = lfirst(lc);

		ex->queue = list_delete_ptr(ex->queue, run);
	}
	sched_backlog = list_delete_ptr(sched_backlog, run);
	sched_http_unqueue(run);
}

/*
 * How the executor makes a run's success commit with it: in the catalog's
 * database it writes it (record); elsewhere it has its transaction noted
 * first (confirm).  Neither when runs are not recorded (runid <= 0).
 */
void
sched_request_recording(ExecRequest *req, const SchedRole *role, int64 runid)
{
	req->runid = runid;
	req->record = runid > 0 && strcmp(role->database, chime_database_name) == 0;
	req->confirm = runid > 0 && !req->record;
}

SchedRun *
sched_queue_run(int64 jobid, SchedRole *role, const char *command, int32 timeout_ms, char overlap,
				const char *concurrency_key, const char *run_key, SchedExecutor *ex,
				int64 runid, int64 due, int32 attempt, ChimeHttpRequest *http, char *http_error)
{
	MemoryContext old = MemoryContextSwitchTo(sched_runs_cxt);
	SchedRun     *run = palloc0(sizeof(SchedRun));
	ExecRequest   req;
	size_t        clen = strlen(command);

	run->runid = runid;
	run->jobid = jobid;
	run->due = due;
	run->attempt = attempt;
	run->role = role;
	run->marked_running = ex != NULL && ex->pid != 0;
	if (run_key)
		strlcpy(run->run_key, run_key, sizeof(run->run_key));
	memset(&req, 0, sizeof(req));
	req.runid = runid;
	req.jobid = jobid;
	req.timeout_ms = timeout_ms;
	req.lock_job = overlap != 'a';
	req.allow_superuser = chime_enable_superuser_jobs;
	req.kind = EXEC_RUN;
	req.attempt = attempt;
	req.due = due;
	sched_request_recording(&req, role, runid);
	if (run_key)
		strlcpy(req.run_key, run_key, sizeof(req.run_key));
	if (concurrency_key)
	{
		run->concurrency_key = pstrdup(concurrency_key);
		run->concurrency_slot = sched_key_take(role->username, concurrency_key);
		/* the executor holds its slot's lock: one of concurrency_limit per key */
		req.lock_concurrency = true;
		req.concurrency_hash = (uint32) chime_lock_id_text(concurrency_key) +
			(uint32) run->concurrency_slot * 0x9E3779B1u;
	}
	if (http || http_error)
	{
		run->http = http;
		run->http_error = http_error;
		run->marked_running = true;
		sched_http_queue(run);
	}
	else
	{
		/* the executor's request: ExecRequest, then the command */
		run->len = sizeof(req) + clen;
		run->msg = palloc(run->len);
		memcpy(run->msg, &req, sizeof(req));
		memcpy(run->msg + sizeof(req), command, clen);
		if (ex)
			ex->queue = lappend(ex->queue, run);
		else
			sched_backlog = lappend(sched_backlog, run);
	}
	MemoryContextSwitchTo(old);
	return run;
}
