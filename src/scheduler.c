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

#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "utils/acl.h"

#include "api.h"
#include "compat.h"
#include "executor.h"
#include "http.h"
#include "locks.h"
#include "pg_chime.h"
#include "run_log.h"
#include "shared.h"

/*
 * A (database, role) pair that runs execute as.  Interned: one copy each,
 * kept for the life of the scheduler, compared by address.
 */
typedef struct SchedRole
{
	char		database[NAMEDATALEN];	/* hash key, with username */
	char		username[NAMEDATALEN];
	int			nexec;			/* its executors (sched_fair_shares) */
} SchedRole;

#define SCHED_ROLE_KEYSIZE (2 * NAMEDATALEN)

/*
 * What decides when and how a job runs, except its command: timing, role
 * and policy.  Jobs with the same settings share one, so that a million
 * jobs on a few schedules cost a few bytes each.  The command is read
 * when a run starts.
 */
typedef struct SchedClass
{
	char	   *key;			/* hash key: the settings as text */
	ChimeTiming timing;
	SchedRole  *role;
	char		overlap;		/* 's'kip, 'b'uffer_one, 'a'llow */
	int32		timeout_ms;
	int32		max_attempts;
	int64		catchup_s;
	int64		retry_delay_us;
	ChimeOncePer once_per;
	char	   *concurrency_key;	/* NULL: none */
	bool		http;			/* an HTTP job: run here, by libcurl */
} SchedClass;

/* A job the scheduler knows */
typedef struct SchedJob
{
	int64		jobid;			/* hash key */
	pairingheap_node node;
	int64		due;			/* next occurrence, Unix seconds */
	const SchedClass *cls;
	bool		in_heap;
} SchedJob;

/* A run handed to an executor */
typedef struct SchedRun
{
	int64		runid;			/* < 0 when runs are not recorded */
	int64		jobid;
	int64		due;			/* the occurrence (Unix seconds) */
	int32		attempt;
	int64		from_runid;		/* a retry: the failed attempt before it (0: none) */
	SchedRole  *role;
	bool		marked_running; /* its row names the executor's pid */
	bool		ack;			/* not a run: an EXEC_ACK in the executor's queue */
	char		run_key[CHIME_RUN_KEY_LEN]; /* its once_per key ("": none) */
	char	   *concurrency_key;	/* held while it runs (NULL: none) */
	ChimeHttpRequest *http;		/* an HTTP run's request (secrets in place) */
	char	   *http_error;		/* why an HTTP run cannot even start */
	bool		http_inflight;	/* its transfer is going (counted by its owner) */
	char	   *msg;			/* ExecRequest + command (SQL runs; NULL for HTTP) */
	Size		len;
} SchedRun;

/* An executor: one of possibly several for its role */
typedef struct SchedExecutor
{
	SchedRole  *role;
	dsm_segment *seg;
	shm_mq_handle *requests;
	shm_mq_handle *replies;
	BackgroundWorkerHandle *handle;
	int			pid;			/* 0 until known */
	List	   *queue;			/* SchedRun waiting to be sent */
	List	   *inflight;		/* SchedRun sent, in order */
	TimestampTz idle_since;
	bool		retiring;		/* stale: takes no more runs, goes once idle */
} SchedExecutor;

/* Per-job state that outlives a reload of the job list */
typedef struct SchedActive
{
	int64		jobid;			/* hash key */
	int			running;
	int64		buffered_due;	/* buffer_one: a run to start next (0: none) */
	int64		skip_runid;		/* the 'skipped' row of the current streak (0: none) */
} SchedActive;

static MemoryContext sched_jobs_cxt;	/* the job list; reset on a full reload */
static MemoryContext sched_runs_cxt;	/* roles, executors, runs, active counts */
static MemoryContext sched_scratch_cxt;	/* reset every iteration */
static HTAB *sched_jobs;
static HTAB *sched_classes;
static HTAB *sched_roles;
static HTAB *sched_active;
static pairingheap *sched_heap;
static List *sched_executors = NIL;
static List *sched_backlog = NIL;	/* SchedRun with no executor yet */
static int64 sched_horizon;		/* every occurrence up to here is handled */
static TimestampTz sched_no_slot_until = 0; /* no executor can start before then
											 * (0: the last one started) */
static TimestampTz sched_slot_warned = 0;	/* when slots were last said to be short */
static int64 sched_unlogged_runid = 0;	/* runids while cron.log_run is off */

/*
 * How many runs an executor is given ahead (one running, the rest queued
 * in its shared memory queue), when no idle executor of its role is left
 * and no new one may start.
 */
#define SCHED_PIPELINE 8

/* How many job rows are read at a time when loading */
#define SCHED_LOAD_BATCH 10000

/* A run ended (or was lost with its executor): record it in 'done'. */
typedef struct SchedDone
{
	SchedRun   *run;			/* freed once recorded */
	bool		ok;
	bool		skipped;
	bool		recorded;		/* its success is in cron.run_commit too */
	bool		lost;			/* its executor exited before replying */
	char	   *message;
	int			pid;
	bool		http;			/* an HTTP run: the fields below apply */
	bool		http_retry;		/* a retry could change its outcome */
	int			http_status;	/* 0: no response */
	int64		retry_after_us;
	char	   *body;			/* the start of the response body, or NULL */
} SchedDone;

static List *sched_done = NIL;	/* runs ended, not recorded yet (sched_runs_cxt) */

/* A run about to commit in another database, waiting for its EXEC_ACK */
typedef struct SchedConfirm
{
	SchedExecutor *ex;
	int64		runid;
	uint64		xid;			/* its last transaction (FullTransactionId) */
} SchedConfirm;

static List *sched_confirms = NIL;	/* in sched_runs_cxt */

/* A failed attempt to make again */
typedef struct SchedRetry
{
	int64		jobid;
	int64		due;			/* the occurrence it belongs to */
	int32		attempt;		/* the attempt to make (1: a first attempt put off) */
	TimestampTz at;
	int64		from_runid;		/* the failed attempt, whose retry_at says when (0: none) */
	bool		buffered;		/* a buffer_one run let go by the end of the one before */
	bool		crashed;		/* follows a crash of its process: made even past max_attempts */
	int64		seq;			/* in the order planned (sched_retry_seq) */
	char		run_key[CHIME_RUN_KEY_LEN];
} SchedRetry;

static List *sched_retries = NIL;
static int64 sched_retry_seq = 0;	/* the last SchedRetry.seq given */
static List *sched_fired = NIL; /* retries taken by the transaction that starts runs */
static HTAB *sched_manual;		/* runids of manual runs handed over */
static bool sched_manual_all = false;	/* look for every manual run still to start */

/* After a failure to record: no recording before then (0: none), and the pause */
static TimestampTz sched_log_wait_until = 0;
static Oid	sched_extension = InvalidOid;	/* the pg_chime extension we run for */
static int	sched_log_backoff_ms = 0;

/*
 * What a job runs, read when it starts (inside a transaction): the command,
 * and for an HTTP job its request as written (secrets not yet in place).
 */
typedef struct SchedCommand
{
	int64		jobid;			/* hash key */
	char	   *command;
	bool		http;
	char	   *url;
	char	   *method;
	char	   *body;
	List	   *headers;		/* "Name: value" */
} SchedCommand;

/* The commands read in this iteration of the main loop (scratch memory) */
static HTAB *sched_cmd_cache = NULL;

/* Runs started in the current transaction, recorded together at commit */
typedef struct SchedStart
{
	SchedRun   *run;
	ChimeRunRow row;
} SchedStart;

static List *sched_starts = NIL;
static List *sched_deactivate = NIL;	/* @at jobs that have had their run */

/* How many due jobs one transaction starts before handing them over */
#define SCHED_CHUNK 64

static void sched_fire_retries(TimestampTz now);
static ErrorData *sched_catch(void);
static void sched_recording_failed(const char *what);
static void sched_recording_failed_with(const char *what, ErrorData *edata);
static bool sched_log_waiting(void);
static void sched_http_forget(SchedRun *run);
static void sched_http_queue(SchedRun *run);
static void sched_http_unqueue(SchedRun *run);
static void sched_http_cancel_jobs(HTAB *gone);
static void sched_send(void);
static void sched_read_replies(void);
static void sched_http_collect(void);
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

/* Milliseconds from pg_chime's now until 'at' (0 if past) */
static long
sched_ms_until(TimestampTz at)
{
	TimestampTz now = chime_now();

	return at <= now ? 0 : (long) ((at - now + 999) / 1000);
}

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
	int64		jobid;
	bool		deactivate;		/* else a key update */
	char		run_key[CHIME_RUN_KEY_LEN];
	int64		runid;
	char		state[16];		/* "": the key is released */
	TimestampTz at;
} SchedLater;

static List *sched_later = NIL;	/* in sched_runs_cxt */
static int	sched_later_mark = 0;	/* its length when the transaction began */

static void sched_commit(void);

static void
sched_begin(const char *activity)
{
	sched_later_mark = list_length(sched_later);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

static void sched_flush_starts(void);

static bool
sched_later_has(int64 jobid)
{
	ListCell   *lc;

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
	SchedLater *l = palloc0(sizeof(SchedLater));

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
static void
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
static void
sched_deactivate_jobs(const int64 *jobids, int n, bool later_only)
{
	Datum	   *ids = palloc(sizeof(Datum) * (n + 1));
	Oid			types[1] = {INT8ARRAYOID};
	Datum		values[1];

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
		bool		isnull;
		int64		held = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));

		if (!later_only)
			sched_later_add(held, true, NULL, 0, NULL, 0);
	}
}

/*
 * Make the writes of sched_later that nobody holds any longer, in their
 * own transaction; an entry of a job still held keeps those after it.
 */
static void
sched_flush_later(void)
{
	List	   *held = NIL;		/* SchedLater of the jobs still held */
	List	   *done = NIL;

	if (sched_later == NIL)
		return;
	PG_TRY();
	{
		ListCell   *lc;

		sched_begin("pg_chime: writing what sessions held up");
		foreach(lc, sched_later)
		{
			SchedLater *l = lfirst(lc);
			ListCell   *hc;
			bool		blocked = false;
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

static void
sched_commit(void)
{
	sched_flush_starts();
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	/* committed: nothing of them is to undo */
	sched_starts = NIL;
	sched_deactivate = NIL;
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
		if (SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'pg_chime'",
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
		}
}

/* The interned (database, role) pair */
static SchedRole *
sched_role(const char *database, const char *username)
{
	SchedRole	key;
	SchedRole  *role;
	bool		found;

	memset(&key, 0, sizeof(key));
	strlcpy(key.database, database, NAMEDATALEN);
	strlcpy(key.username, username, NAMEDATALEN);
	role = hash_search(sched_roles, &key, HASH_ENTER, &found);
	if (!found)
		role->nexec = 0;
	return role;
}

/* Classes are keyed by a pointer to their settings' text */
static uint32
sched_class_hash(const void *key, Size keysize)
{
	const char *text = *(char *const *) key;

	return hash_bytes((const unsigned char *) text, (int) strlen(text));
}

static int
sched_class_match(const void *key1, const void *key2, Size keysize)
{
	return strcmp(*(char *const *) key1, *(char *const *) key2);
}

/* Take a job out of the heap and the job list. */
static void
sched_job_remove(int64 jobid)
{
	SchedJob   *job = hash_search(sched_jobs, &jobid, HASH_FIND, NULL);

	if (job == NULL)
		return;
	if (job->in_heap)
		pairingheap_remove(sched_heap, &job->node);
	(void) hash_search(sched_jobs, &jobid, HASH_REMOVE, NULL);
}

/*
 * An interval column as microseconds (NULL: 0); false when it is negative
 * or longer than max_us.  Computed in double, so no stored value can
 * overflow it.
 */
static bool
sched_interval_us(HeapTuple tup, TupleDesc desc, int col, int64 max_us, int64 *us)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);
	Interval   *iv;
	double		v;

	*us = 0;
	if (isnull)
		return true;
	iv = DatumGetIntervalP(d);
	v = (double) iv->time + (double) iv->day * (double) USECS_PER_DAY +
		(double) iv->month * (double) (DAYS_PER_MONTH * USECS_PER_DAY);
	if (v < 0 || v > (double) max_us)
		return false;
	*us = (int64) v;
	return true;
}

/*
 * The class of a job row (columns as in sched_load's query), found or
 * made; NULL, with a warning, if the row cannot be scheduled.
 */
static SchedClass *
sched_class_of(HeapTuple tup, TupleDesc desc, int64 jobid)
{
	StringInfoData key;
	char	   *k;
	SchedClass *cls;
	bool		found;
	bool		isnull;
	char	   *schedule = SPI_getvalue(tup, desc, 2);
	char	   *zone = SPI_getvalue(tup, desc, 5);
	char	   *window = SPI_getvalue(tup, desc, 6);
	char	   *gap = SPI_getvalue(tup, desc, 7);
	ChimeError	err;
	int64		timeout_us;
	int64		catchup_us;

	if (zone == NULL)
		zone = chime_timezone;
	initStringInfo(&key);
	for (int c = 2; c <= 15; c++)
	{
		char	   *v = c == 5 ? zone : SPI_getvalue(tup, desc, c);

		appendStringInfoString(&key, v ? v : "\x01");
		appendStringInfoChar(&key, '\x1f');
	}
	k = key.data;
	cls = hash_search(sched_classes, &k, HASH_ENTER, &found);
	if (found)
		return cls->timing.zone ? cls : NULL;

	cls->key = MemoryContextStrdup(sched_jobs_cxt, k);
	memset(&cls->timing, 0, sizeof(cls->timing));
	cls->timing.zone = chime_zone_lookup(zone, NULL);
	if (!chime_parse_schedule(schedule, &cls->timing.sched, &err) ||
		(window && !chime_parse_window(window, &cls->timing.window, &err)) ||
		!chime_parse_dst_gap(gap, &cls->timing.gap, &err))
		cls->timing.zone = NULL;
	if (cls->timing.zone == NULL)
	{
		ereport(WARNING,
				(errmsg("pg_chime: job " INT64_FORMAT " cannot be scheduled", jobid),
				 errdetail("schedule \"%s\", time zone \"%s\"", schedule, zone)));
		return NULL;
	}
	if (!sched_interval_us(tup, desc, 9, CHIME_MAX_TIMEOUT_US, &timeout_us) ||
		!sched_interval_us(tup, desc, 10, CHIME_MAX_CATCHUP_US, &catchup_us) ||
		!sched_interval_us(tup, desc, 12, CHIME_MAX_RETRY_DELAY_US, &cls->retry_delay_us))
	{
		/* a row written around the API's range checks */
		cls->timing.zone = NULL;
		ereport(WARNING,
				(errmsg("pg_chime: job " INT64_FORMAT " cannot be scheduled", jobid),
				 errdetail("Its timeout, catchup or retry_delay is out of range."),
				 errhint("Set them with cron.alter_job.")));
		return NULL;
	}
	cls->role = sched_role(SPI_getvalue(tup, desc, 3), SPI_getvalue(tup, desc, 4));
	cls->overlap = SPI_getvalue(tup, desc, 8)[0];
	cls->timeout_ms = (int32) ((timeout_us + 999) / 1000);
	cls->catchup_s = catchup_us / USECS_PER_SEC;
	cls->max_attempts = DatumGetInt32(SPI_getbinval(tup, desc, 11, &isnull));
	(void) chime_parse_once_per(SPI_getvalue(tup, desc, 13), &cls->once_per);
	cls->concurrency_key = SPI_getvalue(tup, desc, 14);
	if (cls->concurrency_key)
		cls->concurrency_key = MemoryContextStrdup(sched_jobs_cxt, cls->concurrency_key);
	cls->http = strcmp(SPI_getvalue(tup, desc, 15), "http") == 0;
	return cls;
}

/* A hash table keyed by the bytes of its keys, in cxt */
static HTAB *
sched_hash(const char *name, long nelem, Size keysize, Size entrysize, MemoryContext cxt)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = keysize;
	ctl.entrysize = entrysize;
	ctl.hcxt = cxt;
	return hash_create(name, nelem, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/*
 * Where the scheduler had got to before it (re)started: the persisted
 * horizon (never later than now), and in *handled the jobs whose
 * occurrences after it were already recorded (jobid -> Unix seconds of
 * the latest), which a crash between two groups of due runs leaves.
 */
static int64
sched_read_horizon(int64 now_s, HTAB **handled)
{
	int64		horizon = now_s;

	*handled = sched_hash("pg_chime handled jobs", 64, sizeof(int64), 2 * sizeof(int64),
						  sched_scratch_cxt);

	if (SPI_execute("SELECT pg_catalog.extract('epoch', horizon)::pg_catalog.int8, last_runid "
					"FROM cron.scheduler_state",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the scheduler's horizon");
	if (SPI_processed == 1)
	{
		bool		isnull;
		int64		saved = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		Datum		last = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		Oid			types[1] = {INT8OID};

		if (saved < horizon)
			horizon = saved;
		if (SPI_execute_with_args("SELECT jobid, pg_catalog.extract('epoch', "
								  "pg_catalog.max(scheduled_time))::pg_catalog.int8 "
								  "FROM cron.job_run_details WHERE runid OPERATOR(pg_catalog.>) $1 "
								  "AND trigger OPERATOR(pg_catalog.=) ANY ('{schedule,catchup}'::pg_catalog.text[]) "
								  "GROUP BY jobid",
								  1, types, &last, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read the runs recorded after the horizon");
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			int64		jobid = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
			int64	   *entry = hash_search(*handled, &jobid, HASH_ENTER, NULL);

			entry[1] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
		}
	}
	return horizon;
}

/* Persist the horizon (inside the transaction that recorded the runs up to it). */
static void
sched_save_horizon(void)
{
	Oid			types[1] = {TIMESTAMPTZOID};
	Datum		values[1] = {TimestampTzGetDatum(chime_timestamptz_from_unix(sched_horizon))};

	static SPIPlanPtr plan = NULL;

	if (SPI_execute_plan(chime_plan(&plan,
									"INSERT INTO cron.scheduler_state (horizon, last_runid) "
									"SELECT $1, last_value FROM cron.runid_seq "
									"ON CONFLICT (id) DO UPDATE SET horizon = excluded.horizon, "
									"last_runid = excluded.last_runid",
									1, types),
						 values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not save the scheduler's horizon");
}

/*
 * Load the active SQL jobs and their next instants: all of them (ids
 * NULL), or those listed (the others are kept as they are).  A job loaded
 * before keeps going from the horizon; a job new to the scheduler (created
 * or activated) from the start of the transaction that made it, 'since'
 * (0: the horizon), so an occurrence that fell before that commit, or
 * while the scheduler was busy, starts late rather than never.  At
 * startup, @reboot jobs are returned in *reboot to run once now, and
 * 'handled' tells which jobs have runs recorded after the horizon.
 */
static void
sched_load(const int64 *ids, int nids, List **reboot, HTAB *handled, TimestampTz since)
{
	StringInfoData sql;
	Oid			types[2] = {INT8ARRAYOID, INT8ARRAYOID};
	Datum		values[2];
	Datum	   *retry_ids;
	int			n = 0;
	uint64		loaded = 0;
	ListCell   *lc;
	Portal		portal;
	MemoryContext batch_cxt;
	MemoryContext old_cxt = NULL;
	HTAB	   *old_jobs = NULL;	/* full reload: the jobs loaded before */
	HTAB	   *old_classes = sched_classes;
	pairingheap *old_heap = sched_heap;
	HTAB	   *known = NULL;	/* reload of some: those of them loaded before */
	int64		new_after = sched_horizon;

	if (since != 0 && chime_unix_from_timestamptz(since) < new_after)
		new_after = chime_unix_from_timestamptz(since);
	if (ids == NULL)
	{
		HASHCTL		ctl;

		old_cxt = sched_jobs_cxt;
		old_jobs = sched_jobs;
		sched_jobs_cxt = AllocSetContextCreate(TopMemoryContext, "pg_chime jobs",
											   ALLOCSET_DEFAULT_SIZES);
		sched_jobs = sched_hash("pg_chime jobs", 1024, sizeof(int64), sizeof(SchedJob),
								sched_jobs_cxt);
		memset(&ctl, 0, sizeof(ctl));
		ctl.hcxt = sched_jobs_cxt;
		ctl.keysize = sizeof(char *);
		ctl.entrysize = sizeof(SchedClass);
		ctl.hash = sched_class_hash;
		ctl.match = sched_class_match;
		sched_classes = hash_create("pg_chime job classes", 64, &ctl,
									HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
		MemoryContextSwitchTo(sched_jobs_cxt);
		sched_heap = pairingheap_allocate(sched_cmp, NULL);
		MemoryContextSwitchTo(sched_scratch_cxt);
	}
	else
	{
		known = sched_hash("pg_chime known jobs", Max(nids, 16), sizeof(int64), sizeof(int64),
						   sched_scratch_cxt);
		for (int i = 0; i < nids; i++)
		{
			if (hash_search(sched_jobs, &ids[i], HASH_FIND, NULL) != NULL)
				(void) hash_search(known, &ids[i], HASH_ENTER, NULL);
			sched_job_remove(ids[i]);
		}
	}

	/*
	 * Active jobs, and the @at jobs (inactive once they have run) that are
	 * running or still have a retry to make.
	 */
	retry_ids = palloc(sizeof(Datum) * (list_length(sched_retries) + hash_get_num_entries(sched_active) + 1));
	foreach(lc, sched_retries)
		retry_ids[n++] = Int64GetDatum(((SchedRetry *) lfirst(lc))->jobid);
	{
		HASH_SEQ_STATUS seq;
		SchedActive *a;

		hash_seq_init(&seq, sched_active);
		while ((a = hash_seq_search(&seq)) != NULL)
			if (a->running > 0)
				retry_ids[n++] = Int64GetDatum(a->jobid);
	}
	values[0] = PointerGetDatum(construct_array(retry_ids, n, INT8OID, 8, true, TYPALIGN_DOUBLE));
	initStringInfo(&sql);
	appendStringInfoString(&sql,
						   "SELECT jobid, schedule, database, username, timezone, run_window, "
						   "dst_gap, overlap, timeout, catchup, max_attempts, "
						   "retry_delay, once_per, concurrency_key, kind "
						   "FROM cron.job WHERE (active OR "
						   "(jobid OPERATOR(pg_catalog.=) ANY ($1) AND schedule OPERATOR(pg_catalog.~*) '^\\s*@at\\s'))");
	if (ids != NULL)
	{
		Datum	   *d = palloc(sizeof(Datum) * (nids + 1));

		for (int i = 0; i < nids; i++)
			d[i] = Int64GetDatum(ids[i]);
		values[1] = PointerGetDatum(construct_array(d, nids, INT8OID, 8, true, TYPALIGN_DOUBLE));
		appendStringInfoString(&sql, " AND jobid OPERATOR(pg_catalog.=) ANY ($2)");
	}

	batch_cxt = AllocSetContextCreate(sched_scratch_cxt, "pg_chime load batch",
									  ALLOCSET_DEFAULT_SIZES);
	PG_TRY();
	{
	sched_begin("pg_chime: loading jobs");
	portal = SPI_cursor_open_with_args(NULL, sql.data, ids ? 2 : 1, types, values, NULL, true, 0);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, SCHED_LOAD_BATCH);
		if (SPI_processed == 0)
			break;
		MemoryContextSwitchTo(batch_cxt);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			int64		jobid = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			SchedClass *cls = sched_class_of(tup, desc, jobid);
			SchedJob   *job;
			int64		after = new_after;
			int64	   *seen;

			if (cls == NULL)
				continue;
			if ((old_jobs && hash_search(old_jobs, &jobid, HASH_FIND, NULL)) ||
				(known && hash_search(known, &jobid, HASH_FIND, NULL)))
				after = sched_horizon;
			job = hash_search(sched_jobs, &jobid, HASH_ENTER, NULL);
			job->cls = cls;
			job->in_heap = false;
			seen = handled ? hash_search(handled, &jobid, HASH_FIND, NULL) : NULL;
			if (seen && seen[1] > after)
				after = seen[1];
			if (cls->timing.sched.kind == CHIME_SCHED_REBOOT)
			{
				if (reboot)
				{
					int64	   *id;

					/* by id: a reload before they start frees the jobs */
					MemoryContextSwitchTo(sched_runs_cxt);
					id = palloc(sizeof(int64));
					*id = jobid;
					*reboot = lappend(*reboot, id);
					MemoryContextSwitchTo(batch_cxt);
				}
			}
			else if (chime_next_run(&cls->timing, after, &job->due))
			{
				pairingheap_add(sched_heap, &job->node);
				job->in_heap = true;
			}
			loaded++;
		}
		MemoryContextSwitchTo(sched_scratch_cxt);
		SPI_freetuptable(SPI_tuptable);
		MemoryContextReset(batch_cxt);
	}
	SPI_cursor_close(portal);
	sched_save_horizon();
	sched_commit();
	}
	PG_CATCH();
	{
		/* a full reload that failed: keep going with the jobs loaded before */
		if (old_cxt != NULL)
		{
			MemoryContextDelete(sched_jobs_cxt);
			sched_jobs_cxt = old_cxt;
			sched_jobs = old_jobs;
			sched_classes = old_classes;
			sched_heap = old_heap;
		}
		PG_RE_THROW();
	}
	PG_END_TRY();

	/* jobs gone (unscheduled, or deactivated): their HTTP runs end now */
	{
		HTAB	   *gone = sched_hash("pg_chime jobs gone", 16, sizeof(int64), sizeof(int64),
									  sched_scratch_cxt);

		if (old_cxt != NULL)
		{
			HASH_SEQ_STATUS seq;
			SchedJob   *job;

			hash_seq_init(&seq, old_jobs);
			while ((job = hash_seq_search(&seq)) != NULL)
				if (hash_search(sched_jobs, &job->jobid, HASH_FIND, NULL) == NULL)
					(void) hash_search(gone, &job->jobid, HASH_ENTER, NULL);
		}
		else
		{
			for (int i = 0; i < nids; i++)
				if (hash_search(sched_jobs, &ids[i], HASH_FIND, NULL) == NULL)
					(void) hash_search(gone, &ids[i], HASH_ENTER, NULL);
		}
		if (hash_get_num_entries(gone) > 0)
			sched_http_cancel_jobs(gone);
	}
	if (old_cxt != NULL)
		MemoryContextDelete(old_cxt);
	elog(DEBUG1, "pg_chime: loaded " UINT64_FORMAT " jobs", loaded);
}

/* Start an executor for the role; NULL if none can start now. */
static SchedExecutor *
sched_executor_start(SchedRole *role)
{
	SchedExecutor *ex;
	shm_toc_estimator e;
	Size		size;
	shm_toc    *toc;
	shm_mq	   *mq;
	BackgroundWorker w;
	MemoryContext old;

	if (GetCurrentTimestamp() < sched_no_slot_until)
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
		TimestampTz now = GetCurrentTimestamp();

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
	ex->idle_since = GetCurrentTimestamp();
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
static int	sched_share = 0;

static bool sched_role_may_grow(const SchedRole *role);

static void
sched_fair_shares(void)
{
	HASH_SEQ_STATUS seq;
	SchedRole  *r;
	ListCell   *lc;
	List	   *waiting = NIL;
	int			ndemand = 0;
	int			share;

	sched_share = 0;
	if (sched_backlog == NIL || hash_get_num_entries(sched_roles) < 2)
		return;					/* (nexec is read only while sched_share > 0) */
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
	share = Max(1, (sched_no_slot_until != 0 ? list_length(sched_executors) : chime_max_running_jobs) /
				Max(ndemand, 1));
	foreach(lc, waiting)
	{
		SchedRole  *w = lfirst(lc);

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
	ListCell   *lc;
	int			n = 0;

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
static SchedExecutor *
sched_executor_for(SchedRole *role)
{
	SchedExecutor *best = NULL;
	int			best_load = 0;
	ListCell   *lc;

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

/* A run row of the job for occurrence 'due', starting at 'now'. */
static void
sched_row(ChimeRunRow *row, const SchedJob *job, const char *command, int64 due,
		  TimestampTz now, const char *status, const char *trigger, int32 attempt,
		  const char *run_key)
{
	memset(row, 0, sizeof(*row));
	row->run_key = run_key;
	row->jobid = job->jobid;
	row->database = job->cls->role->database;
	row->username = job->cls->role->username;
	row->command = command;
	row->status = status;
	row->start_time = now;
	row->scheduled_time = chime_timestamptz_from_unix(due);
	row->trigger = trigger;
	row->attempt = attempt;
	row->occurrences = 1;
}

/* How many runs hold each concurrency key of an owner */
typedef struct SchedKeyId
{
	char		username[NAMEDATALEN];	/* the owner, exactly */
	uint64		key_hash;		/* the key (a collision is between one owner's keys) */
} SchedKeyId;

typedef struct SchedKeyCount
{
	SchedKeyId	id;				/* hash key */
	int			running;
} SchedKeyCount;

static HTAB *sched_concurrency;

static int *
sched_concurrency_count(const SchedRole *role, const char *key, bool create)
{
	SchedKeyId	id;
	bool		found;
	SchedKeyCount *k;

	memset(&id, 0, sizeof(id));
	strlcpy(id.username, role->username, NAMEDATALEN);
	id.key_hash = chime_lock_id_text(key);
	k = hash_search(sched_concurrency, &id, create ? HASH_ENTER : HASH_FIND, &found);

	if (k && !found)
		k->running = 0;
	return k ? &k->running : NULL;
}

/*
 * Queue a run for the executor (NULL: the backlog).  A run with runid 0 is
 * recorded, and its runid set, when the transaction commits.  The run
 * counts against its concurrency key until it ends.
 */

/*
 * The HTTP runs of one owner waiting to start, and its transfers going.
 * Owners with runs waiting take turns (sched_http_turns), one transfer
 * each per turn, so that one role's runs cannot take every slot before
 * another's get one; cron.http_max_in_flight_per_role caps each.
 */
typedef struct SchedHttpOwner
{
	char		username[NAMEDATALEN];	/* hash key */
	List	   *pending;		/* SchedRun, in order */
	int			inflight;
	bool		in_turns;		/* in sched_http_turns */
} SchedHttpOwner;

static HTAB *sched_http_owners;	/* in sched_runs_cxt */
static List *sched_http_turns = NIL;	/* SchedHttpOwner with runs waiting */

static SchedHttpOwner *
sched_http_owner(const SchedRun *run)
{
	bool		found;
	SchedHttpOwner *o = hash_search(sched_http_owners, run->role->username, HASH_ENTER, &found);

	if (!found)
	{
		o->pending = NIL;
		o->inflight = 0;
		o->in_turns = false;
	}
	return o;
}

/* Put the owner in line for a turn, unless it is already */
static void
sched_http_take_turn(SchedHttpOwner *o)
{
	MemoryContext old;

	if (o->in_turns || o->pending == NIL)
		return;
	old = MemoryContextSwitchTo(sched_runs_cxt);
	sched_http_turns = lappend(sched_http_turns, o);
	o->in_turns = true;
	MemoryContextSwitchTo(old);
}

/* An HTTP run to start when a slot and its owner's turn come */
static void
sched_http_queue(SchedRun *run)
{
	SchedHttpOwner *o = sched_http_owner(run);
	MemoryContext old = MemoryContextSwitchTo(sched_runs_cxt);

	o->pending = lappend(o->pending, run);
	MemoryContextSwitchTo(old);
	sched_http_take_turn(o);
}

#define SCHED_CANCELLED "cancelled: the job was unscheduled or deactivated"

static void sched_http_done(SchedRun *run, const ChimeHttpResult *r, const char *error);

static bool
sched_http_run_gone(void *owner, void *arg)
{
	return hash_search((HTAB *) arg, &((SchedRun *) owner)->jobid, HASH_FIND, NULL) != NULL;
}

/*
 * The jobs in 'gone' (jobid keys) were unscheduled or deactivated: their
 * HTTP runs waiting to start and their transfers going end, failed as
 * cancelled.
 */
static void
sched_http_cancel_jobs(HTAB *gone)
{
	HASH_SEQ_STATUS seq;
	SchedHttpOwner *o;
	ListCell   *lc;
	List	   *ended = chime_http_cancel(sched_http_run_gone, gone, SCHED_CANCELLED);

	foreach(lc, ended)
	{
		ChimeHttpResult *r = lfirst(lc);

		sched_http_done(r->owner, r, NULL);
	}
	hash_seq_init(&seq, sched_http_owners);
	while ((o = hash_seq_search(&seq)) != NULL)
	{
		foreach(lc, o->pending)
		{
			SchedRun   *run = lfirst(lc);

			if (!sched_http_run_gone(run, gone))
				continue;
			o->pending = foreach_delete_current(o->pending, lc);
			sched_http_forget(run);
			sched_http_done(run, NULL, SCHED_CANCELLED);
		}
	}
}

/* A run that will not start after all (its transaction was undone) */
static void
sched_http_unqueue(SchedRun *run)
{
	if (run->http != NULL || run->http_error != NULL)
	{
		SchedHttpOwner *o = sched_http_owner(run);

		o->pending = list_delete_ptr(o->pending, run);
	}
}


/*
 * How the executor makes a run's success commit with it: in the catalog's
 * database it writes it (record); elsewhere it has its transaction noted
 * first (confirm).  Neither when runs are not recorded (runid <= 0).
 */
static void
sched_request_recording(ExecRequest *req, const SchedRole *role, int64 runid)
{
	req->runid = runid;
	req->record = runid > 0 && strcmp(role->database, chime_database_name) == 0;
	req->confirm = runid > 0 && !req->record;
}

static SchedRun *
sched_queue_run(int64 jobid, SchedRole *role, const char *command, int32 timeout_ms, char overlap,
				const char *concurrency_key, const char *run_key, SchedExecutor *ex,
				int64 runid, int64 due, int32 attempt, ChimeHttpRequest *http, char *http_error)
{
	MemoryContext old = MemoryContextSwitchTo(sched_runs_cxt);
	SchedRun   *run = palloc0(sizeof(SchedRun));
	ExecRequest req;
	size_t		clen = strlen(command);

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
	sched_request_recording(&req, role, runid);
	if (run_key)
		strlcpy(req.run_key, run_key, sizeof(req.run_key));
	if (concurrency_key)
	{
		run->concurrency_key = pstrdup(concurrency_key);
		req.lock_concurrency = true;
		req.concurrency_hash = (uint32) chime_lock_id_text(concurrency_key);
		(*sched_concurrency_count(role, concurrency_key, true))++;
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

static HTAB *sched_commands(SchedJob **jobs, int n);


/*
 * The request of an HTTP job, as read with its command, with its owner's
 * secrets in place (and kept with it, for chime_http to scrub messages of
 * their values), in sched_runs_cxt; NULL with *error when a secret is
 * missing or its value cannot go where it is referred to.
 */
static ChimeHttpRequest *
sched_http_request(int64 jobid, const char *owner, int32 timeout_ms, char **error)
{
	SchedCommand *c = sched_cmd_cache ? hash_search(sched_cmd_cache, &jobid, HASH_FIND, NULL) : NULL;
	ChimeHttpRequest *req;
	char	   *failed = NULL;
	char	   *url;
	char	   *body;
	List	   *headers = NIL;
	List	   *secrets = NIL;
	ListCell   *lc;
	MemoryContext old;

	if (c == NULL)
	{
		SchedJob	job;
		SchedJob   *one = &job;

		job.jobid = jobid;
		c = hash_search(sched_commands(&one, 1), &jobid, HASH_FIND, NULL);
	}
	if (c == NULL || !c->http)
	{
		*error = MemoryContextStrdup(sched_runs_cxt, "failed: the job is gone");
		return NULL;
	}
	url = chime_secret_expand(c->url, owner, true, &secrets, &failed);
	body = failed ? NULL : chime_secret_expand(c->body, owner, false, &secrets, &failed);
	foreach(lc, c->headers)
	{
		char	   *h = failed ? NULL : chime_secret_expand(lfirst(lc), owner, true, &secrets, &failed);

		if (h)
			headers = lappend(headers, h);
	}
	if (failed)
	{
		*error = MemoryContextStrdup(sched_runs_cxt, failed);
		return NULL;
	}
	old = MemoryContextSwitchTo(sched_runs_cxt);
	req = chime_http_request_new(secrets);
	req->url = pstrdup(url);
	req->method = pstrdup(c->method);
	req->body = body ? pstrdup(body) : NULL;
	foreach(lc, headers)
		req->headers = lappend(req->headers, pstrdup(lfirst(lc)));
	req->timeout_ms = timeout_ms;
	MemoryContextSwitchTo(old);
	return req;
}

/*
 * The request of an HTTP run about to start, as sched_http_request makes
 * it; none, with *error, when its owner is a superuser now and
 * cron.enable_superuser_jobs is off (checked at each start, not only when
 * the job was scheduled).  Inside a transaction.
 */
static ChimeHttpRequest *
sched_http_prepare(int64 jobid, const char *owner, int32 timeout_ms, char **error)
{
	Oid			roleid = get_role_oid(owner, true);

	if (!chime_enable_superuser_jobs && OidIsValid(roleid) && superuser_arg(roleid))
	{
		*error = MemoryContextStrdup(sched_runs_cxt,
									 psprintf("failed: role %s is a superuser and cron.enable_superuser_jobs is off",
											  owner));
		return NULL;
	}
	return sched_http_request(jobid, owner, timeout_ms, error);
}

/*
 * Record the runs started in this transaction (unless cron.log_run is off)
 * and deactivate @at jobs.
 */
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
		runids = palloc(sizeof(int64) * n);
		if (chime_log_run)
		{
			rows = palloc(sizeof(ChimeRunRow) * n);
			foreach(lc, sched_starts)
				rows[i++] = ((SchedStart *) lfirst(lc))->row;
			chime_run_insert_batch(rows, n, runids);
		}
		else
			for (i = 0; i < n; i++)
				runids[i] = --sched_unlogged_runid;
		i = 0;
		foreach(lc, sched_starts)
		{
			SchedRun   *run = ((SchedStart *) lfirst(lc))->run;
			ExecRequest req;

			if (run->from_runid > 0)
				chime_run_set_retry(&run->from_runid, NULL, 1);

			run->runid = runids[i++];
			if (run->msg)
			{
				memcpy(&req, run->msg, sizeof(req));
				sched_request_recording(&req, run->role, run->runid);
				memcpy(run->msg, &req, sizeof(req));
			}
			/* the key's run is now this attempt */
			if (run->run_key[0] != '\0')
				sched_key_update(run->jobid, run->run_key, Max(run->runid, 0), "running",
								 ((SchedStart *) lfirst(lc))->row.start_time);
		}
	}
	if (sched_deactivate != NIL)
	{
		int64	   *ids = palloc(sizeof(int64) * list_length(sched_deactivate));

		i = 0;
		foreach(lc, sched_deactivate)
			ids[i++] = *(int64 *) lfirst(lc);
		sched_deactivate_jobs(ids, i, false);
	}
}

/* A skipped or missed row (not written while cron.log_run is off) */
static int64
sched_insert_row(const ChimeRunRow *row)
{
	return chime_log_run ? chime_run_insert(row) : 0;
}

/*
 * Make an attempt later: at 'at', inside the key it belongs to; a retry
 * names the failed attempt it follows (from_runid).
 */
static SchedRetry *
sched_defer(int64 jobid, int64 due, int32 attempt, const char *run_key, TimestampTz at,
			int64 from_runid)
{
	MemoryContext old = MemoryContextSwitchTo(sched_runs_cxt);
	SchedRetry *r = palloc0(sizeof(SchedRetry));

	r->jobid = jobid;
	r->due = due;
	r->attempt = attempt;
	r->at = at;
	r->from_runid = from_runid;
	r->seq = ++sched_retry_seq;
	if (run_key)
		strlcpy(r->run_key, run_key, sizeof(r->run_key));
	sched_retries = lappend(sched_retries, r);
	MemoryContextSwitchTo(old);
	return r;
}

/* Record a skipped occurrence: one row per streak of them */
static void
sched_skip(SchedActive *active, ChimeRunRow *row, const char *message)
{
	if (active->skip_runid == 0 || !chime_run_add_occurrence(active->skip_runid))
	{
		row->status = "skipped";
		row->message = message;
		active->skip_runid = sched_insert_row(row);
	}
}

/*
 * Start an attempt of a job for occurrence 'due': record it and queue it.
 * A first attempt starts nothing when its once_per key is claimed, and is
 * recorded skipped when the previous run is still going (overlap 'skip';
 * 'buffer_one' keeps it for later) or its concurrency_key is held; it
 * claims its key in this transaction.  A later attempt (run_key given)
 * that meets a run still going waits a second.  Inside a transaction.
 */
static void
sched_start_run(SchedJob *job, const char *command, int64 due, TimestampTz now,
				const char *trigger, int32 attempt, const char *run_key, int64 from_runid)
{
	SchedActive *active = sched_active_for(job->jobid, true);
	const SchedClass *cls = job->cls;
	SchedExecutor *ex;
	ChimeRunRow row;
	char		key[CHIME_RUN_KEY_LEN] = "";
	ChimeHttpRequest *http = NULL;
	char	   *http_error = NULL;
	bool		busy = active->running > 0 && cls->overlap != 'a';
	int		   *held = cls->concurrency_key ? sched_concurrency_count(cls->role, cls->concurrency_key, false) : NULL;

	if (run_key)
		strlcpy(key, run_key, sizeof(key));
	else
		chime_run_key(cls->once_per, cls->timing.zone, due, key);
	sched_row(&row, job, command, due, now, "starting", trigger, attempt, key);

	if (key[0] != '\0' && attempt == 1 && chime_key_claimed(job->jobid, key))
		return;					/* the period has had its run */

	if (busy || (held && *held > 0))
	{
		if (attempt > 1)
		{
			/* an attempt inside a key waits for the run in its way */
			sched_defer(job->jobid, due, attempt, key, now + USECS_PER_SEC, from_runid);
			return;
		}
		if (busy && cls->overlap == 'b' && active->buffered_due == 0)
		{
			active->buffered_due = due;
			return;
		}
		sched_skip(active, &row, busy ? NULL :
				   psprintf("concurrency_key \"%s\" was held by another run", cls->concurrency_key));
		return;
	}

	if (key[0] != '\0' && attempt == 1)
	{
		/* cron.run_now or cron.release_key may be at it: try again in a second */
		if (!chime_lock_try(CHIME_LOCK_RUN_KEY, (uint64) job->jobid, false))
		{
			sched_defer(job->jobid, due, 1, key, now + USECS_PER_SEC, 0);
			return;
		}
		if (!chime_key_claim(job->jobid, key, now))
			return;
	}

	/*
	 * An HTTP run is this process's own transfer.  A SQL run is 'running'
	 * when a live executor takes it, 'starting' while one starts.
	 */
	if (cls->http)
	{
		ex = NULL;
		http = sched_http_prepare(job->jobid, cls->role->username, cls->timeout_ms, &http_error);
	}
	else
		ex = sched_executor_for(cls->role);
	if (ex && ex->pid == 0)
	{
		pid_t		pid;

		if (GetBackgroundWorkerPid(ex->handle, &pid) == BGWH_STARTED)
			ex->pid = pid;
	}
	if (chime_log_statement)
		ereport(LOG,
				(errmsg("pg_chime: job " INT64_FORMAT " starting: %s", job->jobid, command)));
	row.job_pid = cls->http ? MyProcPid : ex ? ex->pid : 0;
	row.status = row.job_pid != 0 ? "running" : "starting";
	active->running++;
	active->skip_runid = 0;
	{
		/* in scratch memory: an undo after a failed commit still reads them */
		MemoryContext old = MemoryContextSwitchTo(sched_scratch_cxt);
		SchedStart *start = palloc(sizeof(SchedStart));

		start->run = sched_queue_run(job->jobid, cls->role, command, cls->timeout_ms, cls->overlap,
									 cls->concurrency_key, key, ex, 0, due, attempt, http, http_error);
		start->run->from_runid = from_runid;
		start->row = row;
		start->row.run_key = start->run->run_key;
		sched_starts = lappend(sched_starts, start);
		if (cls->timing.sched.kind == CHIME_SCHED_AT)
		{
			int64	   *id = palloc(sizeof(int64));

			*id = job->jobid;
			sched_deactivate = lappend(sched_deactivate, id);
		}
		MemoryContextSwitchTo(old);
	}
}


static HTAB *
sched_commands(SchedJob **jobs, int n)
{
	static SPIPlanPtr plan = NULL;
	Datum	   *ids = palloc(sizeof(Datum) * (n + 1));
	Oid			types[1] = {INT8ARRAYOID};
	Datum		values[1];
	MemoryContext old;

	if (sched_cmd_cache == NULL)
		sched_cmd_cache = sched_hash("pg_chime commands", Max(n, 256), sizeof(int64),
									 sizeof(SchedCommand), sched_scratch_cxt);
	for (int i = 0; i < n; i++)
		ids[i] = Int64GetDatum(jobs[i]->jobid);
	values[0] = PointerGetDatum(construct_array(ids, n, INT8OID, 8, true, TYPALIGN_DOUBLE));
	if (SPI_execute_plan(chime_plan(&plan,
									"SELECT jobid, command, kind OPERATOR(pg_catalog.=) 'http', url, method, body, "
									"CASE WHEN kind OPERATOR(pg_catalog.=) 'http' THEN "
									"(SELECT pg_catalog.array_agg(key OPERATOR(pg_catalog.||) ': ' "
									"OPERATOR(pg_catalog.||) value) FROM pg_catalog.jsonb_each_text(headers)) END "
									"FROM cron.job WHERE jobid OPERATOR(pg_catalog.=) ANY ($1)",
									1, types),
						 values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the commands of due jobs");
	old = MemoryContextSwitchTo(sched_scratch_cxt);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		jobid = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		SchedCommand *c = hash_search(sched_cmd_cache, &jobid, HASH_ENTER, NULL);
		Datum		hdrs;

		c->command = SPI_getvalue(tup, desc, 2);
		c->http = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		c->url = SPI_getvalue(tup, desc, 4);
		c->method = SPI_getvalue(tup, desc, 5);
		c->body = SPI_getvalue(tup, desc, 6);
		c->headers = NIL;
		hdrs = SPI_getbinval(tup, desc, 7, &isnull);
		if (!isnull)
		{
			Datum	   *elems;
			int			nh;

			deconstruct_array(DatumGetArrayTypeP(hdrs), TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, &nh);
			for (int h = 0; h < nh; h++)
				c->headers = lappend(c->headers, TextDatumGetCString(elems[h]));
		}
	}
	MemoryContextSwitchTo(old);
	return sched_cmd_cache;
}

/* The command of one job (NULL if it is gone), inside a transaction */
static char *
sched_command(SchedJob *job)
{
	HTAB	   *commands = sched_commands(&job, 1);
	SchedCommand *c = hash_search(commands, &job->jobid, HASH_FIND, NULL);

	return c ? c->command : NULL;
}

/*
 * The occurrences of one key (all of them for a job without once_per):
 * those that could not start become one 'missed' row, unless the key has
 * or gets its run; of the rest, the latest starts.
 */
static void
sched_fire_group(SchedJob *job, const char *command, const char *key, int64 first_missed,
				 int32 missed, const char *why, int64 latest, int32 coalesced, int64 now_s,
				 TimestampTz now)
{
	if (missed > 0 &&
		!(key[0] != '\0' && (latest != 0 || chime_key_claimed(job->jobid, key))))
	{
		ChimeRunRow row;

		sched_row(&row, job, command, first_missed, now, "missed", "schedule", 1, key);
		row.occurrences = missed;
		row.message = why;
		(void) sched_insert_row(&row);
	}
	if (latest != 0)
		sched_start_run(job, command, latest, now,
						(coalesced > 1 || now_s - latest >= 1) ? "catchup" : "schedule", 1, NULL, 0);
}

/*
 * Handle one due job.  Its occurrences up to now (more than one when the
 * scheduler was late or down) start if they are within catchup and the
 * run window is open now; several coalesce into one run of the latest (one
 * per once_per key).  The others are recorded missed, saying why.
 */
static void
sched_fire_job(SchedJob *job, const char *command, int64 now_s, TimestampTz now)
{
	const SchedClass *cls = job->cls;
	bool		open = chime_in_window(&cls->timing.window, cls->timing.zone, now_s);
	int64		occ = job->due;
	int64		first_missed = 0;
	int64		latest = 0;
	int32		missed = 0;
	int32		coalesced = 0;
	const char *why = NULL;
	char		group[CHIME_RUN_KEY_LEN] = "";
	bool		more = true;

	for (int guard = 0; more && occ <= now_s && guard < 1000000; guard++)
	{
		char		key[CHIME_RUN_KEY_LEN];

		chime_run_key(cls->once_per, cls->timing.zone, occ, key);
		if (strcmp(key, group) != 0)
		{
			sched_fire_group(job, command, group, first_missed, missed, why, latest, coalesced,
							 now_s, now);
			strlcpy(group, key, sizeof(group));
			first_missed = latest = 0;
			missed = coalesced = 0;
		}
		if (now_s - occ > cls->catchup_s || !open)
		{
			if (missed++ == 0)
				first_missed = occ;
			why = open ? "could not start within catchup" :
				"could not start: the run_window had closed";
		}
		else
		{
			latest = occ;
			coalesced++;
		}
		more = chime_next_run(&cls->timing, occ, &occ);
	}
	sched_fire_group(job, command, group, first_missed, missed, why, latest, coalesced, now_s, now);

	if (more)
	{
		job->due = occ;
		pairingheap_add(sched_heap, &job->node);
		job->in_heap = true;
	}
}

/*
 * Take over the manual runs cron.run_now recorded: rows 'starting' with
 * trigger 'manual' that are not handed over yet.  They wait in the backlog
 * for an executor.
 */
static bool
sched_start_manual(void)
{
	SPITupleTable *rows;
	uint64		n;
	List	   *volatile taken = NIL;
	volatile bool ok = true;

	PG_TRY();
	{
	sched_begin("pg_chime: starting manual runs");
	{
		int64	   *ids = palloc(sizeof(int64) * CHIME_MANUAL_MAX);
		int			nids = sched_manual_all ? -1 : chime_take_manual(ids);
		Datum	   *d = palloc(sizeof(Datum) * (Max(nids, 0) + 1));
		Oid			types[1] = {INT8ARRAYOID};
		Datum		values[1];

		if (sched_manual_all)
			(void) chime_take_manual(ids);
		sched_manual_all = false;
		for (int i = 0; i < nids; i++)
			d[i] = Int64GetDatum(ids[i]);
		values[0] = PointerGetDatum(construct_array(d, Max(nids, 0), INT8OID, 8, true, TYPALIGN_DOUBLE));

		/*
		 * By runid (the primary key) the runs cron.run_now named; all those
		 * still to start only when there were too many to name.
		 */
		if (SPI_execute_with_args(psprintf("SELECT r.runid, r.jobid, r.scheduled_time, j.command, j.database, "
										   "j.username, j.timeout, j.overlap, j.concurrency_key, r.run_key, j.kind "
										   "FROM cron.job_run_details r JOIN cron.job j "
										   "ON j.jobid OPERATOR(pg_catalog.=) r.jobid "
										   "WHERE r.trigger OPERATOR(pg_catalog.=) 'manual' "
										   "AND r.status OPERATOR(pg_catalog.=) 'starting' "
										   "AND r.job_pid IS NULL%s",
										   nids >= 0 ? " AND r.runid OPERATOR(pg_catalog.=) ANY ($1)" : ""),
								  nids >= 0 ? 1 : 0, types, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read manual runs");
	}
	/* kept: reading an HTTP job's request runs statements of its own */
	rows = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tup = rows->vals[i];
		TupleDesc	desc = rows->tupdesc;
		bool		isnull;
		bool		found;
		int64		runid = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		int64		jobid = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		int64		timeout_us;
		int32		timeout_ms;
		char	   *username = SPI_getvalue(tup, desc, 6);
		ChimeHttpRequest *http = NULL;
		char	   *http_error = NULL;
		SchedRun   *run;
		MemoryContext old;

		(void) hash_search(sched_manual, &runid, HASH_FIND, &found);
		if (found)
			continue;
		if (!sched_interval_us(tup, desc, 7, CHIME_MAX_TIMEOUT_US, &timeout_us))
			timeout_us = CHIME_MAX_TIMEOUT_US;
		timeout_ms = (int32) ((timeout_us + 999) / 1000);
		if (strcmp(SPI_getvalue(tup, desc, 11), "http") == 0)
		{
			int32		pid = MyProcPid;

			http = sched_http_prepare(jobid, username, timeout_ms, &http_error);
			chime_run_running(&runid, &pid, 1);
		}
		sched_active_for(jobid, true)->running++;
		run = sched_queue_run(jobid, sched_role(SPI_getvalue(tup, desc, 5), username),
							   SPI_getvalue(tup, desc, 4), timeout_ms,
							   SPI_getvalue(tup, desc, 8)[0], SPI_getvalue(tup, desc, 9),
							   SPI_getvalue(tup, desc, 10), NULL, runid,
							   chime_unix_from_timestamptz(DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull))),
							   1, http, http_error);
		old = MemoryContextSwitchTo(sched_scratch_cxt);
		taken = lappend(taken, run);
		MemoryContextSwitchTo(old);
		(void) hash_search(sched_manual, &runid, HASH_ENTER, NULL);
	}
	sched_commit();
	}
	PG_CATCH();
	{
		ListCell   *lc;
		ErrorData  *edata = sched_catch();

		foreach(lc, taken)
		{
			SchedRun   *run = lfirst(lc);
			SchedActive *active = sched_active_for(run->jobid, false);

			(void) hash_search(sched_manual, &run->runid, HASH_REMOVE, NULL);
			sched_backlog = list_delete_ptr(sched_backlog, run);
			sched_http_unqueue(run);
			if (active)
				active->running--;
			if (run->concurrency_key)
				(*sched_concurrency_count(run->role, run->concurrency_key, true))--;
			sched_http_forget(run);
		}
		sched_recording_failed_with("take the manual runs", edata);
		/* the runids it took are gone with it: look for all next time */
		sched_manual_all = true;
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * A transaction that starts runs failed: undo what it did in memory, so
 * that it can be made again.  The runs it queued are dropped (their rows
 * were rolled back), the jobs from the first one it handled go back into
 * the heap at the instants they had ('orig_due'), the retries it took are
 * planned again, and skipped streaks start a new row.
 */
static void
sched_undo_starts(SchedJob **due, const int64 *orig_due, int first, int ndue, int64 retry_mark)
{
	ListCell   *lc;

	/* retries planned inside it go; those it took come back */
	foreach(lc, sched_retries)
	{
		SchedRetry *r = lfirst(lc);

		if (r->seq > retry_mark)
		{
			sched_retries = foreach_delete_current(sched_retries, lc);
			pfree(r);
		}
	}

	foreach(lc, sched_starts)
	{
		SchedRun   *run = ((SchedStart *) lfirst(lc))->run;
		SchedActive *active = sched_active_for(run->jobid, false);
		ListCell   *ec;

		foreach(ec, sched_executors)
		{
			SchedExecutor *ex = lfirst(ec);

			ex->queue = list_delete_ptr(ex->queue, run);
		}
		sched_backlog = list_delete_ptr(sched_backlog, run);
		sched_http_unqueue(run);
		if (active)
			active->running--;
		if (run->concurrency_key)
			(*sched_concurrency_count(run->role, run->concurrency_key, true))--;
		sched_http_forget(run);
		if (run->msg)
			pfree(run->msg);
		pfree(run);
	}
	sched_starts = NIL;
	sched_deactivate = NIL;
	for (int i = first; i < ndue; i++)
	{
		SchedJob   *job = due[i];
		SchedActive *active = sched_active_for(job->jobid, false);

		if (job->in_heap)
			pairingheap_remove(sched_heap, &job->node);
		job->due = orig_due[i];
		pairingheap_add(sched_heap, &job->node);
		job->in_heap = true;
		if (active)
			active->skip_runid = 0;
	}
	MemoryContextSwitchTo(sched_runs_cxt);
	sched_retries = list_concat(sched_retries, sched_fired);
	MemoryContextSwitchTo(sched_scratch_cxt);
	sched_fired = NIL;
}

/*
 * A unit of the scheduler's work failed: roll its transaction back and
 * wait before recording anything again (1 s, doubling up to 5 s).  The
 * run log may be full, locked or refusing rows; nothing stops.
 */
static ErrorData *
sched_catch(void)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(sched_scratch_cxt);
	edata = CopyErrorData();
	FlushErrorState();
	/* what the failed transaction planned for later goes with it */
	while (list_length(sched_later) > sched_later_mark)
	{
		MemoryContextSwitchTo(sched_runs_cxt);
		pfree(llast(sched_later));
		sched_later = list_delete_last(sched_later);
		MemoryContextSwitchTo(sched_scratch_cxt);
	}
	return edata;
}

static void
sched_recording_failed(const char *what)
{
	sched_recording_failed_with(what, sched_catch());
}

/* The same, once the error is caught (sched_catch) */
static void
sched_recording_failed_with(const char *what, ErrorData *edata)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		gone;

	AbortCurrentTransaction();

	/* DROP EXTENSION (and maybe CREATE again): start over, waiting for it */
	StartTransactionCommand();
	gone = get_extension_oid("pg_chime", true) != sched_extension;
	CommitTransactionCommand();
	if (gone)
	{
		elog(LOG, "pg_chime scheduler: the extension was dropped; restarting");
		proc_exit(1);
	}
	pgstat_report_activity(STATE_IDLE, NULL);
	sched_log_backoff_ms = sched_log_backoff_ms == 0 ? 1000 : Min(sched_log_backoff_ms * 2, 5000);
	sched_log_wait_until = now + (int64) sched_log_backoff_ms * 1000;
	ereport(WARNING,
			(errmsg("pg_chime: could not %s: %s", what, edata->message),
			 errdetail("Nothing is lost: pg_chime tries again in %d ms; due runs wait and then "
					   "start late (within catchup) or are recorded missed.", sched_log_backoff_ms)));
	FreeErrorData(edata);
	MemoryContextSwitchTo(sched_scratch_cxt);
}

/*
 * One recording transaction: write(arg) between begin and commit.  When it
 * fails, it is rolled back and recording pauses (sched_recording_failed,
 * 'what' says what failed); returns whether it committed.  No
 * transaction while recording pauses.
 */
static bool
sched_record_tx(const char *activity, const char *what, void (*write) (void *arg), void *arg)
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
static bool
sched_log_waiting(void)
{
	if (sched_log_wait_until == 0)
		return false;
	return GetCurrentTimestamp() < sched_log_wait_until;
}

/*
 * Start every run that is due; then move the horizon.  In groups of
 * SCHED_CHUNK: each is recorded in one transaction and handed over before
 * the next, so executors start on the first runs at once, and finished
 * runs are collected in between.  The horizon is saved with the last.
 * *reboot (the @reboot jobs, at startup) is emptied once they started.
 * When a transaction fails (the run log unavailable), what it started is
 * undone and tried again after a pause: returns false.
 */
static bool
sched_fire_due(List **reboot)
{
	TimestampTz now = chime_now();
	int64		now_s = sched_now_unix(now);
	SchedJob  **due;
	int64	   *orig_due;
	int			ndue = 0;
	int			size = 64;
	volatile int first = 0;
	volatile int committed = 0; /* due[] before it: their runs are committed */
	volatile int64 retry_mark = sched_retry_seq;	/* retries planned up to then are committed */
	ListCell   *lc;
	volatile bool ok = true;
	int64		old_horizon = sched_horizon;

	if (sched_log_waiting())
		return false;
	due = palloc(sizeof(SchedJob *) * size);
	while (!pairingheap_is_empty(sched_heap))
	{
		SchedJob   *job = pairingheap_container(SchedJob, node, pairingheap_first(sched_heap));

		if (job->due > now_s)
			break;
		(void) pairingheap_remove_first(sched_heap);
		job->in_heap = false;
		if (ndue == size)
		{
			size *= 2;
			due = repalloc(due, sizeof(SchedJob *) * size);
		}
		due[ndue++] = job;
	}
	if (ndue == 0 && *reboot == NIL &&
		!(sched_retries != NIL && sched_next_retry() <= now))
	{
		sched_horizon = now_s;
		return true;
	}
	orig_due = palloc(sizeof(int64) * Max(ndue, 1));
	for (int i = 0; i < ndue; i++)
		orig_due[i] = due[i]->due;

	PG_TRY();
	{
		sched_begin("pg_chime: starting due runs");
		sched_fire_retries(now);
		foreach(lc, *reboot)
		{
			SchedJob   *job = hash_search(sched_jobs, lfirst(lc), HASH_FIND, NULL);
			char	   *command = job ? sched_command(job) : NULL;

			if (command)
				sched_start_run(job, command, now_s, now, "schedule", 1, NULL, 0);
		}
		for (first = 0; first < ndue; first += SCHED_CHUNK)
		{
			int			n = Min(SCHED_CHUNK, ndue - first);
			HTAB	   *commands;

			if (first > 0)
			{
				/* recording ended runs waits until every due run has started */
				sched_commit();
				committed = first;
				retry_mark = sched_retry_seq;
				list_free_deep(sched_fired);
				sched_fired = NIL;
				list_free_deep(*reboot);
				*reboot = NIL;
				sched_read_replies();
				sched_send();
				sched_begin("pg_chime: starting due runs");
			}
			commands = sched_commands(due + first, n);
			for (int i = first; i < first + n; i++)
			{
				SchedCommand *c = hash_search(commands, &due[i]->jobid, HASH_FIND, NULL);

				/* a job deleted since it was loaded is dropped at the next reload */
				if (c != NULL)
					sched_fire_job(due[i], c->command, now_s, now);
			}
		}
		sched_horizon = now_s;
		sched_save_horizon();
		sched_commit();
		list_free_deep(*reboot);
		*reboot = NIL;
	}
	PG_CATCH();
	{
		ErrorData  *edata = sched_catch();

		sched_horizon = old_horizon;
		sched_undo_starts(due, orig_due, committed, ndue, retry_mark);
		sched_recording_failed_with("record the runs that are due", edata);
		ok = false;
	}
	PG_END_TRY();
	if (!ok)
		return false;
	list_free_deep(sched_fired);
	sched_fired = NIL;
	sched_log_backoff_ms = 0;
	sched_log_wait_until = 0;
	return true;
}

/*
 * The delay before attempt 'attempt' + 1: retry_delay doubled for each
 * attempt made, capped by cron.max_retry_delay, with a jitter of +-10 %
 * that depends only on the job, the occurrence and the attempt.
 */
/*
 * A planned retry of a failed attempt that will not be made: the key that
 * the retry kept taken failed with that attempt.  Inside a transaction.
 */
static void
sched_retry_key_failed(const SchedRetry *r, TimestampTz now)
{
	if (r->run_key[0] != '\0' && r->from_runid > 0)
		sched_key_update(r->jobid, r->run_key, r->from_runid, "failed", now);
}

static int64
sched_retry_delay_us(const SchedJob *job, int64 due, int32 attempt)
{
	double		delay = (double) job->cls->retry_delay_us;
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
 * After a failed attempt: when to make the next one (0: never), if the
 * job allows more and the error is one a retry can change (not SQLSTATE
 * class 42, a syntax or access rule error; for HTTP, a transport error, a
 * timeout, 429 or 5xx).
 */
static TimestampTz
sched_retry_at(const SchedDone *d, TimestampTz now)
{
	SchedRun   *run = d->run;
	SchedJob   *job = hash_search(sched_jobs, &run->jobid, HASH_FIND, NULL);
	int64		delay;

	if (d->ok || d->skipped || job == NULL || run->attempt >= job->cls->max_attempts)
		return 0;
	if (d->http ? !d->http_retry : (d->message && strncmp(d->message, "ERROR: 42", 9) == 0))
		return 0;
	/* an HTTP server's Retry-After, if longer, within cron.max_retry_delay */
	delay = sched_retry_delay_us(job, run->due, run->attempt);
	if (d->retry_after_us > delay)
		delay = Min(d->retry_after_us, chime_max_retry_delay_us);
	return now + delay;
}

/*
 * Start the retries whose time has come (inside a transaction); they are
 * kept in sched_fired, so that they can be planned again if the
 * transaction fails.
 */
static void
sched_fire_retries(TimestampTz now)
{
	ListCell   *lc;
	List	   *due = NIL;
	int64		now_s = sched_now_unix(now);

	MemoryContext old = MemoryContextSwitchTo(sched_scratch_cxt);

	foreach(lc, sched_retries)
	{
		SchedRetry *r = lfirst(lc);

		if (r->at > now)
			continue;
		sched_retries = foreach_delete_current(sched_retries, lc);
		/* outlives the transaction: planned again if it fails */
		due = lappend(due, r);
	}
	MemoryContextSwitchTo(old);
	sched_fired = due;
	foreach(lc, due)
	{
		SchedRetry *r = lfirst(lc);
		SchedJob   *job = hash_search(sched_jobs, &r->jobid, HASH_FIND, NULL);
		char	   *command = job ? sched_command(job) : NULL;

		/* a job removed ends its retries */
		if (command == NULL)
		{
			if (r->from_runid > 0)
				chime_run_set_retry(&r->from_runid, NULL, 1);
			sched_retry_key_failed(r, now);
		}
		else if (r->buffered)
			sched_start_run(job, command, r->due, now, "schedule", 1, NULL, 0);
		else if (r->attempt == 1)
		{
			/* a first attempt put off: it is a late occurrence now */
			bool		open = chime_in_window(&job->cls->timing.window, job->cls->timing.zone, now_s);
			bool		late = now_s - r->due > job->cls->catchup_s || !open;

			sched_fire_group(job, command, r->run_key, r->due, late ? 1 : 0,
							 open ? "could not start within catchup" :
							 "could not start: the run_window had closed",
							 late ? 0 : r->due, 1, now_s, now);
		}
		/* a closed window ends them too */
		else if (chime_in_window(&job->cls->timing.window, job->cls->timing.zone, now_s))
			sched_start_run(job, command, r->due, now, "retry", r->attempt, r->run_key, r->from_runid);
		else if (r->from_runid > 0)
		{
			chime_run_set_retry(&r->from_runid, NULL, 1);
			sched_retry_key_failed(r, now);
		}
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


static void
sched_executor_lost(SchedExecutor *ex, List **done)
{
	ListCell   *lc;

	foreach(lc, ex->inflight)
	{
		SchedRun   *run = lfirst(lc);
		SchedDone  *d = palloc0(sizeof(SchedDone));

		d->run = run;
		d->ok = false;
		d->lost = true;
		d->message = psprintf("failed: the executor for role %s in database %s exited "
							  "before the run finished (see the server log)",
							  ex->role->username, ex->role->database);
		d->pid = ex->pid;
		*done = lappend(*done, d);
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
		SchedRun   *run = lfirst(lc);

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
static void
sched_read_replies(void)
{
	List	   *lost = NIL;
	List	   *stale = NIL;
	ListCell   *lc;
	MemoryContext old = MemoryContextSwitchTo(sched_runs_cxt);

	foreach(lc, sched_executors)
	{
		SchedExecutor *ex = lfirst(lc);

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
				SchedRun   *run = linitial(ex->inflight);

				ex->inflight = list_delete_first(ex->inflight);
				run->marked_running = false;
				stale = lappend(stale, run);
				ex->retiring = true;
				continue;
			}
			d = palloc0(sizeof(SchedDone));
			d->run = linitial(ex->inflight);
			d->ok = reply.outcome == EXEC_SUCCEEDED;
			d->skipped = reply.outcome == EXEC_SKIPPED;
			d->recorded = reply.recorded;
			d->message = pnstrdup((char *) data + sizeof(reply), len - sizeof(reply));
			d->pid = ex->pid;
			ex->inflight = list_delete_first(ex->inflight);
			sched_done = lappend(sched_done, d);
			if (ex->inflight == NIL && ex->queue == NIL)
				ex->idle_since = GetCurrentTimestamp();
		}
	}
	foreach(lc, lost)
		sched_executor_lost(lfirst(lc), &sched_done);
	list_free(lost);
	/* runs handed back go first, in their order; a retiring executor's queue too */
	foreach(lc, sched_executors)
	{
		SchedExecutor *ex = lfirst(lc);

		if (ex->retiring && ex->queue != NIL)
		{
			ListCell   *qc;

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
 * A run lost with its executor.  If it committed before the executor
 * ended (its success is in cron.run_commit, or the transaction it noted
 * committed), it succeeded.  When the executor could not connect because
 * its role or database is gone, say so (an error a retry cannot change).
 * Inside a transaction.
 */
static void
sched_lost_outcome(SchedDone *d)
{
	SchedRole  *role = d->run->role;
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(d->run->runid)};

	if (d->run->runid > 0)
	{
		if (SPI_execute_with_args("SELECT message FROM cron.run_commit WHERE runid OPERATOR(pg_catalog.=) $1 "
								  "UNION ALL SELECT 'committed (its executor ended before it could reply)' "
								  "FROM cron.job_run_details WHERE runid OPERATOR(pg_catalog.=) $1 "
								  "AND pg_catalog.pg_xact_status(commit_xid) OPERATOR(pg_catalog.=) 'committed'",
								  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not look up run " INT64_FORMAT, d->run->runid);
		if (SPI_processed == 1)
		{
			d->ok = true;
			d->recorded = true;
			d->message = MemoryContextStrdup(sched_runs_cxt,
											 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
			return;
		}
	}
	if (!OidIsValid(get_role_oid(role->username, true)))
		d->message = MemoryContextStrdup(sched_runs_cxt,
										 psprintf("ERROR: 42704: role \"%s\" does not exist\n"
												  "HINT: The job's role was dropped; drop the job or give it to another role.",
												  role->username));
	else if (!OidIsValid(get_database_oid(role->database, true)))
		d->message = MemoryContextStrdup(sched_runs_cxt,
										 psprintf("ERROR: 3D000: database \"%s\" does not exist",
												  role->database));
}

/*
 * Record the runs in sched_done, in one transaction: their rows (with when
 * a failed one will be retried), their keys ('succeeded'; 'failed' unless
 * a retry is planned; released when the run was skipped); the
 * cron.run_commit rows of those whose executor wrote their success with
 * their own commit go.
 * Once that commits: their retries are planned, their counts drop, and
 * the buffered runs their end lets go are started.  If it fails, the runs
 * stay in sched_done and are recorded after a pause.
 */
static void
sched_record_done(void)
{
	int			n = list_length(sched_done);
	int64	   *runids;
	const char **statuses;
	char	  **messages;
	int32	   *pids;
	int32	   *http_status;
	char	  **bodies;
	TimestampTz *retry_at;
	TimestampTz *plan;
	int64	   *committed;
	int			ncommitted = 0;
	int			nrec = 0;
	int			i;
	ListCell   *lc;
	TimestampTz now;
	volatile bool ok = true;

	if (n == 0 || sched_log_waiting())
		return;
	runids = palloc(sizeof(int64) * n);
	statuses = palloc(sizeof(char *) * n);
	messages = palloc(sizeof(char *) * n);
	pids = palloc(sizeof(int32) * n);
	http_status = palloc(sizeof(int32) * n);
	bodies = palloc(sizeof(char *) * n);
	retry_at = palloc(sizeof(TimestampTz) * n);
	plan = palloc(sizeof(TimestampTz) * n);
	committed = palloc(sizeof(int64) * n);

	now = chime_now();

	PG_TRY();
	{
		sched_begin("pg_chime: recording finished runs");
		/* runs lost with their executor: did they commit? then what next */
		i = 0;
		foreach(lc, sched_done)
		{
			SchedDone  *d = lfirst(lc);

			if (d->lost && !d->ok)
				sched_lost_outcome(d);
			plan[i++] = sched_retry_at(d, now);
		}
		i = 0;
		foreach(lc, sched_done)
		{
			SchedDone  *d = lfirst(lc);
			TimestampTz at = plan[i++];

			if (d->run->runid <= 0)
				continue;
			if (d->recorded)
				committed[ncommitted++] = d->run->runid;
			runids[nrec] = d->run->runid;
			statuses[nrec] = d->skipped ? "skipped" : d->ok ? "succeeded" : "failed";
			messages[nrec] = d->message;
			http_status[nrec] = d->http_status;
			bodies[nrec] = d->body;
			retry_at[nrec] = at;
			pids[nrec++] = d->pid;
		}
		if (nrec > 0)
			chime_run_finish(runids, statuses, messages, pids, http_status, bodies, retry_at, nrec, now);
		if (ncommitted > 0)
			chime_run_commit_forget(committed, ncommitted);
		i = 0;
		foreach(lc, sched_done)
		{
			SchedDone  *d = lfirst(lc);
			SchedRun   *run = d->run;
			TimestampTz at = plan[i++];

			if (run->run_key[0] != '\0')
				sched_key_update(run->jobid, run->run_key, Max(run->runid, 0),
								 d->skipped ? NULL : d->ok ? "succeeded" : at != 0 ? "running" : "failed",
								 now);
		}
		sched_commit();
	}
	PG_CATCH();
	{
		sched_recording_failed("record the runs that ended");
		ok = false;
	}
	PG_END_TRY();
	if (!ok)
		return;
	sched_log_backoff_ms = 0;
	sched_log_wait_until = 0;

	i = 0;
	foreach(lc, sched_done)
	{
		SchedDone  *d = lfirst(lc);
		SchedRun   *run = d->run;
		SchedActive *active = sched_active_for(run->jobid, false);
		TimestampTz at = plan[i++];

		(void) hash_search(sched_manual, &run->runid, HASH_REMOVE, NULL);
		if (run->concurrency_key)
			(*sched_concurrency_count(run->role, run->concurrency_key, true))--;
		if (at != 0)
			sched_defer(run->jobid, run->due, run->attempt + 1, run->run_key, at, Max(run->runid, 0));
		if (active)
		{
			active->running--;
			if (active->running == 0 && active->buffered_due != 0)
			{
				SchedRetry *r = sched_defer(run->jobid, active->buffered_due, 1, NULL, now, 0);

				r->buffered = true;
				active->buffered_due = 0;
			}
		}
		pfree(d->message);
		if (d->body)
			pfree(d->body);
		if (run->msg)
			pfree(run->msg);
		if (run->concurrency_key)
			pfree(run->concurrency_key);
		pfree(run);
	}
	list_free_deep(sched_done);
	sched_done = NIL;
}

/*
 * Runs about to commit in another database: write their transaction ids on
 * their rows (one transaction), then tell each executor to commit.  A
 * restarted scheduler finds by the id whether such a run committed.
 */
typedef struct SchedCommitXids
{
	int64	   *runids;
	uint64	   *xids;
	int			n;
} SchedCommitXids;

static void
sched_write_commit_xids(void *arg)
{
	SchedCommitXids *x = arg;

	chime_run_set_commit_xid(x->runids, x->xids, x->n);
}

static void
sched_confirm(void)
{
	SchedCommitXids x;
	ListCell   *lc;

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
		SchedRun   *ack = palloc0(sizeof(SchedRun));
		ExecRequest req;

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

/* Read the executors' replies and record them. */
static void
sched_collect(void)
{
	sched_read_replies();
	sched_record_done();
}

static int	sched_http_fd = -1;	/* libcurl's sockets, as one descriptor */

/* An HTTP run that ended (or could not start): to be recorded */
static void
sched_http_done(SchedRun *run, const ChimeHttpResult *r, const char *error)
{
	MemoryContext old = MemoryContextSwitchTo(sched_runs_cxt);
	SchedDone  *d = palloc0(sizeof(SchedDone));

	d->run = run;
	d->http = true;
	d->pid = MyProcPid;
	if (run->http_inflight)
	{
		SchedHttpOwner *o = sched_http_owner(run);

		run->http_inflight = false;
		o->inflight--;
		sched_http_take_turn(o);
	}
	if (r)
	{
		d->ok = r->ok;
		d->http_retry = r->retry;
		d->http_status = r->status;
		d->retry_after_us = r->retry_after_us;
		d->message = pstrdup(r->message);
		d->body = r->body ? pstrdup(r->body) : NULL;
	}
	else
		d->message = pstrdup(error);
	sched_done = lappend(sched_done, d);
	MemoryContextSwitchTo(old);
}

/* Forget a request once libcurl has its copy (it holds secret values). */
static void
sched_http_forget(SchedRun *run)
{
	ChimeHttpRequest *req = run->http;

	if (req == NULL)
		return;
	list_free_deep(req->headers);
	pfree(req->url);
	pfree(req->method);
	if (req->body)
		pfree(req->body);
	pfree(req);
	run->http = NULL;
}

/*
 * Start the HTTP runs waiting, while fewer than cron.http_max_in_flight
 * go: owners in turn, one run each, none past its
 * cron.http_max_in_flight_per_role (it takes its turn again when one of
 * its transfers ends).
 */
static void
sched_http_send(void)
{
	while (sched_http_turns != NIL && chime_http_in_flight() < chime_http_max_in_flight)
	{
		SchedHttpOwner *o = linitial(sched_http_turns);
		SchedRun   *run;
		char	   *error;

		MemoryContextSwitchTo(sched_runs_cxt);
		sched_http_turns = list_delete_first(sched_http_turns);
		o->in_turns = false;
		if (o->pending == NIL ||
			(chime_http_max_in_flight_per_role > 0 && o->inflight >= chime_http_max_in_flight_per_role))
		{
			MemoryContextSwitchTo(sched_scratch_cxt);
			continue;
		}
		run = linitial(o->pending);
		o->pending = list_delete_first(o->pending);
		MemoryContextSwitchTo(sched_scratch_cxt);
		sched_http_take_turn(o);

		error = run->http_error;
		if (error == NULL && chime_http_start(run, run->http, &error))
		{
			run->http_inflight = true;
			o->inflight++;
			sched_http_forget(run);
			continue;
		}
		sched_http_forget(run);
		sched_http_done(run, NULL, error);
	}
}

/* The HTTP transfers that ended go to sched_done. */
static void
sched_http_collect(void)
{
	ListCell   *lc;
	List	   *results = chime_http_work();

	foreach(lc, results)
	{
		ChimeHttpResult *r = lfirst(lc);

		sched_http_done(r->owner, r, NULL);
	}
}

/* Is there room for one more run, in some executor or a new one? */
static bool
sched_any_room(void)
{
	ListCell   *lc;

	if (list_length(sched_executors) < chime_max_running_jobs &&
		GetCurrentTimestamp() >= sched_no_slot_until)
		return true;
	foreach(lc, sched_executors)
		if (sched_executor_load(lfirst(lc)) < SCHED_PIPELINE)
			return true;
	return false;
}

/*
 * Give backlog runs an executor, in order (a role with no room is passed
 * over); hand queued runs to executors.
 */
static void
sched_send(void)
{
	ListCell   *lc;
	List	   *full = NIL;

	sched_http_send();
	sched_fair_shares();

	foreach(lc, sched_backlog)
	{
		SchedRun   *run = lfirst(lc);
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
			SchedRun   *run = linitial(ex->queue);
			shm_mq_result res = compat_shm_mq_send(ex->requests, run->len, run->msg, true);

			if (res != SHM_MQ_SUCCESS)
				break;			/* full (retried when woken) or gone (seen on read) */
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
	int64	   *runids;
	int32	   *pids;
	int			n;
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
static void
sched_mark_running(void)
{
	ListCell   *lc;
	int64	   *runids = NULL;
	int32	   *pids = NULL;
	int			n = 0;
	int			size = 0;

	foreach(lc, sched_executors)
	{
		SchedExecutor *ex = lfirst(lc);
		ListCell   *rc;

		if (ex->pid == 0)
		{
			pid_t		pid;

			if (GetBackgroundWorkerPid(ex->handle, &pid) != BGWH_STARTED)
				continue;
			ex->pid = pid;
		}
		foreach(rc, ex->inflight)
		{
			SchedRun   *run = lfirst(rc);

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
		ListCell   *rc;

		if (ex->pid == 0)
			continue;
		foreach(rc, ex->inflight)
			((SchedRun *) lfirst(rc))->marked_running = true;
	}
}

/*
 * Retire executors idle for EXEC_IDLE_MS; returns ms until the next one is
 * due (0: at once, -1: none).
 */
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
		/* an idle executor also gives way to runs of another role waiting */
		if (left <= 0 || ex->retiring ||
			(sched_backlog != NIL &&
			 (list_length(sched_executors) >= chime_max_running_jobs || sched_no_slot_until != 0)))
		{
			if (left > 0)
				next = 0;		/* come back at once to start their executor */
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
static void
sched_stop_orphans(void)
{
	for (int round = 0;; round++)
	{
		List	   *pids = NIL;
		ListCell   *lc;

		sched_begin("pg_chime: stopping the executors of a previous scheduler");
		if (SPI_execute("SELECT pid FROM pg_catalog.pg_stat_activity "
						"WHERE backend_type OPERATOR(pg_catalog.=) 'pg_chime executor'", true, 0) != SPI_OK_SELECT)

			elog(ERROR, "could not list executors");
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;

			pids = lappend_int(pids, DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
																 SPI_tuptable->tupdesc, 1, &isnull)));
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
	List	   *pending = NIL;
	List	   *crashed;
	TimestampTz started;
	int64	   *changed;
	TimestampTz since;
	WaitEventSet *wait_set;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(chime_database_name, NULL, 0);
	pgstat_report_appname("pg_chime scheduler");

	/*
	 * The scheduler never waits long for a lock a session holds on its
	 * tables: shorter than deadlock_timeout, so that in a deadlock with
	 * DDL (DROP EXTENSION) it is the scheduler that gives way.
	 */
	SetConfigOption("lock_timeout", "500", PGC_SUSET, PGC_S_OVERRIDE);
	/* and its transactions are as it expects, whatever the server's defaults */
	SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);
	/* nor may a database's settings (its owner's) cut its statements short */
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("idle_in_transaction_session_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);

	/*
	 * It runs as the bootstrap superuser: nothing a role can create (in
	 * public, say) may stand in for a function or operator of its
	 * statements, which also name pg_catalog's explicitly.
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	chime_set_scheduler(MyLatch);
	on_proc_exit(sched_on_exit, 0);

	sched_jobs_cxt = NULL;		/* made by each full load */
	sched_runs_cxt = AllocSetContextCreate(TopMemoryContext, "pg_chime runs", ALLOCSET_DEFAULT_SIZES);
	sched_scratch_cxt = AllocSetContextCreate(TopMemoryContext, "pg_chime scratch", ALLOCSET_DEFAULT_SIZES);
	sched_active = sched_hash("pg_chime active jobs", 256, sizeof(int64), sizeof(SchedActive),
							  sched_runs_cxt);
	sched_manual = sched_hash("pg_chime manual runs", 64, sizeof(int64), sizeof(int64),
							  sched_runs_cxt);
	sched_concurrency = sched_hash("pg_chime concurrency keys", 64, sizeof(SchedKeyId),
								   sizeof(SchedKeyCount), sched_runs_cxt);
	sched_roles = sched_hash("pg_chime roles", 16, SCHED_ROLE_KEYSIZE, sizeof(SchedRole),
							 sched_runs_cxt);
	sched_http_owners = sched_hash("pg_chime HTTP owners", 16, NAMEDATALEN, sizeof(SchedHttpOwner),
								   sched_runs_cxt);
	MemoryContextSwitchTo(sched_scratch_cxt);

	sched_wait_for_extension();
	StartTransactionCommand();
	sched_extension = get_extension_oid("pg_chime", false);
	CommitTransactionCommand();
	changed = MemoryContextAlloc(sched_runs_cxt, sizeof(int64) * CHIME_CHANGED_MAX);
	sched_http_fd = chime_http_init();

	/*
	 * One wait set for the life of the scheduler: its latch, postmaster
	 * death, and libcurl's sockets (the epoll set http.c keeps them in,
	 * readable when one of them is ready).
	 */
	wait_set = CreateWaitEventSet(TopMemoryContext, 3);
	AddWaitEventToSet(wait_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(wait_set, WL_SOCKET_READABLE, sched_http_fd, NULL, NULL);
	(void) chime_take_changed(changed, &since);

	sched_stop_orphans();
	crashed = chime_crashed_runs();
	/* a manual run recorded since then cannot have been taken by a scheduler */
	SpinLockAcquire(&chime_shared->mutex);
	started = Max(chime_shared->started_at, chime_shared->manual_read_at);
	SpinLockRelease(&chime_shared->mutex);
	sched_begin("pg_chime: reconciling interrupted runs");
	{
		int64	   *manual = palloc(sizeof(int64) * CHIME_MANUAL_MAX);
		int			nmanual = chime_peek_manual(manual);

		chime_run_reconcile(chime_now(), started, manual, nmanual, crashed, sched_runs_cxt, &interrupted);
	}
	chime_run_pending_retries(sched_runs_cxt, &pending);
	sched_commit();
	if (interrupted != NIL)
		elog(LOG, "pg_chime: %d interrupted runs marked failed", list_length(interrupted));

	/*
	 * Interrupted attempts are retried as their job's policy allows (one
	 * whose process crashed, once whatever max_attempts says), and the
	 * retries planned before the restart are made when they were due.
	 * They are listed before loading the jobs, so that an @at job,
	 * inactive once it has run, is loaded for its retry; the time of an
	 * interrupted one is set once the job's policy is known, and saved.
	 */
	{
		ListCell   *lc;
		TimestampTz now = chime_now();
		HTAB	   *handled;
		int64	   *ids;
		TimestampTz *ats;
		int			nids = 0;
		List	   *dropped = NIL;

		/* the interrupted ones are among them, with no time yet */
		foreach(lc, pending)
		{
			ChimeInterrupted *run = lfirst(lc);

			sched_defer(run->jobid, run->due, run->attempt + 1, run->run_key,
						TIMESTAMP_IS_NOBEGIN(run->retry_at) ? 0 : Max(run->retry_at, 1),
						run->runid)->crashed = run->crashed;
		}
		list_free_deep(interrupted);
		list_free_deep(pending);
		MemoryContextSwitchTo(sched_scratch_cxt);

		/* occurrences since the last scheduler handled them: catch up */
		sched_begin("pg_chime: reading the horizon");
		sched_horizon = sched_read_horizon(sched_now_unix(now), &handled);
		sched_commit();
		sched_load(NULL, 0, &reboot, handled, 0);

		ids = palloc(sizeof(int64) * (list_length(sched_retries) + 1));
		ats = palloc(sizeof(TimestampTz) * (list_length(sched_retries) + 1));
		foreach(lc, sched_retries)
		{
			SchedRetry *r = lfirst(lc);
			SchedJob   *job = hash_search(sched_jobs, &r->jobid, HASH_FIND, NULL);

			if (job == NULL || (r->attempt > job->cls->max_attempts && !r->crashed))
			{
				ids[nids] = r->from_runid;
				ats[nids++] = 0;
				sched_retries = foreach_delete_current(sched_retries, lc);
				dropped = lappend(dropped, r);
				continue;
			}
			if (r->at == 0)
				r->at = now + sched_retry_delay_us(job, r->due, r->attempt - 1);
			ids[nids] = r->from_runid;
			ats[nids++] = r->at;
		}
		if (nids > 0)
		{
			sched_begin("pg_chime: saving the retries to make");
			chime_run_set_retry(ids, ats, nids);
			foreach(lc, dropped)
				sched_retry_key_failed(lfirst(lc), now);
			sched_commit();
		}
		list_free_deep(dropped);
	}
	elog(LOG, "pg_chime scheduler started");

	for (;;)
	{
		long		timeout = -1;
		long		retire;
		bool		reload_all = false;
		static bool manual_pending = false;
		static bool reload_pending = false;
		static TimestampTz pending_since = 0;

		MemoryContextReset(sched_scratch_cxt);
		sched_cmd_cache = NULL;
		chime_secret_forget();
		sched_collect();
		sched_confirm();
		(void) sched_fire_due(&reboot);
		sched_send();
		/* the runs that ended while due runs were starting */
		sched_record_done();
		sched_send();
		sched_mark_running();
		if (sched_later != NIL && !sched_log_waiting())
			sched_flush_later();
		retire = sched_retire_idle();

		if (!pairingheap_is_empty(sched_heap))
		{
			SchedJob   *job = pairingheap_container(SchedJob, node, pairingheap_first(sched_heap));
			int64		us = chime_timestamptz_from_unix(job->due) - chime_now();

			/*
			 * The latch waits whole milliseconds: wait until the last one
			 * before the instant, then sleep the rest exactly.
			 */
			if (us > 0 && us <= 2000)
			{
				pg_usleep(us);
				us = 0;
			}
			timeout = us <= 0 ? 0 : (long) (us / 1000);
		}
		if (retire >= 0 && (timeout < 0 || retire < timeout))
			timeout = retire;
		if (sched_retries != NIL)
		{
			long		left = sched_ms_until(sched_next_retry());

			if (timeout < 0 || left < timeout)
				timeout = left;
		}
		if (sched_backlog != NIL && sched_no_slot_until != 0)
		{
			/* runs wait for a worker slot: look again when one may be free */
			long		left = (long) Max(0, (sched_no_slot_until - GetCurrentTimestamp() + 999) / 1000);

			if (timeout < 0 || left < timeout)
				timeout = left;
		}
		if (sched_later != NIL && (timeout < 0 || timeout > 1000))
			timeout = 1000;		/* writes a session held up: try again in a second */
		if (sched_log_wait_until != 0)
		{
			/* recording failed: try again after the pause */
			long		left = (long) Max(0, (sched_log_wait_until - GetCurrentTimestamp() + 999) / 1000);

			if (timeout < 0 || left < timeout)
				timeout = left;
		}
		if (chime_http_in_flight() > 0)
		{
			/* libcurl's timers; its sockets are in the wait set */
			long		left = chime_http_timeout();

			if (left >= 0 && (timeout < 0 || left < timeout))
				timeout = left;
		}

		{
			WaitEvent	event;

			(void) WaitEventSetWait(wait_set, timeout, &event, 1, PG_WAIT_EXTENSION);
		}
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			reload_all = true;
		}
		if (reload_all || reload_pending || pg_atomic_read_u32(&chime_shared->jobs_changed) != 0)
		{
			List	   *none = NIL;
			int			n;

			if (sched_log_waiting())
				goto reloaded;	/* after the pause (a reload pending stays so) */
			n = chime_take_changed(changed, &since);
			if (reload_pending && pending_since != 0 && (since == 0 || pending_since < since))
				since = pending_since;
			if (reload_pending)
				n = -1;
			/* occurrences up to now belong to the old job list */
			(void) sched_fire_due(&none);
			PG_TRY();
			{
				if (reload_all || n < 0)
					sched_load(NULL, 0, NULL, NULL, since);
				else if (n > 0)
					sched_load(changed, n, NULL, NULL, since);
				reload_pending = false;
				pending_since = 0;
			}
			PG_CATCH();
			{
				/* the changes it took are known no more: reload every job */
				sched_recording_failed("reload the jobs");
				reload_pending = true;
				if (since != 0 && (pending_since == 0 || since < pending_since))
					pending_since = since;
			}
			PG_END_TRY();
		}
reloaded:
		if (pg_atomic_exchange_u32(&chime_shared->manual_runs, 0) != 0)
			manual_pending = true;
		if (manual_pending && !sched_log_waiting())
			manual_pending = !sched_start_manual();
	}
}
