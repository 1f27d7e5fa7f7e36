/*-------------------------------------------------------------------------
 *
 * sched_retention.c
 *	  cron.run_retention: in the scheduler's idle time, delete the runs
 *	  that ended longer ago than the setting, and the inactive @at jobs
 *	  whose run is older, a small batch per transaction.
 *
 * A pass walks cron.job_run_details by runid (its primary key), one chunk
 * of RETENTION_CHUNK rows per transaction, from a cursor kept here.  Of
 * each chunk it deletes the finished rows (succeeded, failed, skipped,
 * missed, no retry planned) that ended before the cutoff, passing over
 * rows a session has locked: it waits for nobody, and the rows the
 * scheduler records (new ones, and updates of those in flight) are
 * others.  Runids grow with time, so the pass ends at the first row that
 * began after the cutoff, and the next one starts RETENTION_PASS_MS
 * later from the first row the last one kept: walking the index entries
 * of the rows deleted before it again would cost as much as the rows
 * did, until VACUUM removes them.  Once an hour a pass starts from the
 * beginning, for the rows a long transaction committed behind a pass.
 * There is no index on end_time, so recording a run costs what it did.
 *
 * An @at job is inactive once it has run.  It is deleted when it is
 * inactive, its instant is before the cutoff, no row of it is newer than
 * the cutoff, in flight or waiting for a retry, and no session holds its
 * row or its once_per keys.  The candidates are the jobs of the rows a
 * batch deleted, and a sweep of RETENTION_SWEEP jobs of cron.job at the
 * end of each pass for the others (rows gone through cron.delete_runs,
 * or never written with cron.log_run off).  Deleting the row tells the
 * scheduler to reload the job, as any change to cron.job does.
 *
 * Batches run only when the loop has nothing to do for a while
 * (sched_retention_ready), and only when they can take their tables'
 * locks at once; a batch that fails is logged and tried again later,
 * and recording runs goes on meanwhile.  While recording pauses
 * after a failure (sched_tx.c), retention waits too.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "executor.h"
#include "job_def.h"
#include "locks.h"
#include "pg_chime.h"
#include "run_log.h"
#include "sched.h"

/* Rows of cron.job_run_details a batch looks at (and so deletes at most) */
#define RETENTION_CHUNK     500
#define RETENTION_CHUNK_SQL "500"
/* Jobs of cron.job the sweep for inactive @at jobs looks at per pass */
#define RETENTION_SWEEP     1000
#define RETENTION_SWEEP_SQL "1000"

/* Between two batches of a pass, and from the end of a pass to the next (ms) */
#define RETENTION_BATCH_MS 100
#define RETENTION_PASS_MS  30000
/* How often a pass starts from the first runid (ms) */
#define RETENTION_RESTART_MS (3600 * 1000)
/* The longest wait after a batch failed (ms) */
#define RETENTION_BACKOFF_MAX_MS 60000
/* The wait when a session holds a table the batch writes (ms) */
#define RETENTION_HELD_MS 1000

/* A row's status once its run is over */
#define RETENTION_FINAL "'{succeeded,failed,skipped,missed}'::pg_catalog.text[]"
/* The schedules of @at jobs, as the scheduler's job load reads them */
#define RETENTION_AT "schedule OPERATOR(pg_catalog.~*) '^\\s*@at\\s'"

/* What one batch did, applied once its transaction has committed */
typedef struct RetentionChunk
{
	int   nrows;      /* rows in the chunk */
	int64 last;       /* its last runid (0: none) */
	int64 edge;       /* its first row that began after the cutoff (0: none) */
	int64 first_kept; /* its first row not deleted (0: none) */
	int   runs;       /* rows deleted */
	int   jobs;       /* @at jobs deleted */
	int   swept;      /* jobs the sweep looked at */
	int64 swept_to;   /* the last of them */
} RetentionChunk;

static int64       retention_seen_us = -1; /* the setting the state below is for */
static bool        retention_in_pass = false;
static int64       retention_cursor = 0;     /* the pass goes on after this runid */
static int64       retention_floor = 0;      /* passes start after it: no row left before */
static int64       retention_pass_kept = 0;  /* the first runid the pass kept (0: none yet) */
static TimestampTz retention_next = 0;       /* server clock: the next batch (0: at once) */
static TimestampTz retention_restarted = 0;  /* when a pass last started from the first runid */
static int         retention_backoff_ms = 0; /* after failed batches */
static int64       retention_sweep_from = 0; /* the sweep of cron.job goes on after this jobid */
static int64       retention_pass_runs = 0;
static int64       retention_pass_jobs = 0;

static SPIPlanPtr retention_chunk_plan = NULL;
static SPIPlanPtr retention_lock_plan = NULL;
static SPIPlanPtr retention_delete_plan = NULL;
static SPIPlanPtr retention_sweep_plan = NULL;
static SPIPlanPtr retention_at_lock_plan = NULL;
static SPIPlanPtr retention_at_runs_plan = NULL;
static SPIPlanPtr retention_at_delete_plan = NULL;

static void  retention_check_setting(void);
static bool  retention_tables_free(void);
static bool  retention_cutoff(TimestampTz *cutoff);
static bool  retention_listed(const Datum *ids, int n, int64 jobid);
static int   retention_cmp_int64(const void *a, const void *b);
static Datum retention_int8_array(const int64 *values, int n);
static int   retention_delete_at_jobs(Datum ids, TimestampTz cutoff);
static void  retention_chunk(int64 after, TimestampTz cutoff, RetentionChunk *c);
static void  retention_sweep(TimestampTz cutoff, RetentionChunk *c);

/* A new value of cron.run_retention: a pass starts at once */
static void
retention_check_setting(void)
{
	if (chime_run_retention_us == retention_seen_us)
		return;
	retention_seen_us = chime_run_retention_us;
	retention_in_pass = false;
	retention_next = 0;
	retention_backoff_ms = 0;
}

/*
 * Take the locks the batch's statements take on the tables they write
 * (cron.job_run_details; cron.job and cron.job_run_key for @at jobs)
 * if nobody holds or waits for a lock that would make them wait (DDL, a
 * superuser's LOCK TABLE); false if somebody does.  Inside a transaction.
 */
static bool
retention_tables_free(void)
{
	static const char *const tables[] = {"job_run_details", "job", "job_run_key"};
	Oid                      cron = get_namespace_oid("cron", false);

	for (int i = 0; i < lengthof(tables); i++)
	{
		Oid rel = get_relname_relid(tables[i], cron);

		if (!OidIsValid(rel) || !ConditionalLockRelationOid(rel, RowExclusiveLock))
			return false;
	}
	return true;
}

/* The cutoff: pg_chime's now less cron.run_retention; false if before any timestamp */
static bool
retention_cutoff(TimestampTz *cutoff)
{
	return !pg_sub_s64_overflow(chime_now(), chime_run_retention_us, cutoff) &&
		IS_VALID_TIMESTAMP(*cutoff);
}

static bool
retention_listed(const Datum *ids, int n, int64 jobid)
{
	for (int i = 0; i < n; i++)
		if (DatumGetInt64(ids[i]) == jobid)
			return true;
	return false;
}

static int
retention_cmp_int64(const void *a, const void *b)
{
	int64 x = *(const int64 *) a;
	int64 y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/* An int8[] of n values */
static Datum
retention_int8_array(const int64 *values, int n)
{
	Datum *d = palloc(sizeof(Datum) * (n + 1));

	for (int i = 0; i < n; i++)
		d[i] = Int64GetDatum(values[i]);
	return PointerGetDatum(construct_array(d, n, INT8OID, 8, true, TYPALIGN_DOUBLE));
}

/*
 * Delete the inactive @at jobs among 'ids' (int8[]) whose instant is
 * before the cutoff and that have no run newer than it, in flight, or
 * waiting for a retry; those a session holds stay, their rows locked
 * (SKIP LOCKED) or their once_per keys being claimed or released.  Their
 * rows are locked first and decoded as locked, so a job changed meanwhile
 * is judged as it is now, and the runs are looked at in a statement
 * after that, which sees a run a session recorded before it let go of
 * the job's row (cron.run_now).  Inside a transaction; returns how many.
 */
static int
retention_delete_at_jobs(Datum ids, TimestampTz cutoff)
{
	Oid            types[2] = {INT8ARRAYOID, TIMESTAMPTZOID};
	Datum          values[2];
	int64          cutoff_s = chime_unix_from_timestamptz(cutoff);
	ChimeJobDefMap map;
	Datum         *retrying;
	int            nretrying;
	int64         *cand;
	int            ncand = 0;
	int            ngone = 0;

	values[0] = ids;
	if (SPI_execute_plan(chime_plan(&retention_at_lock_plan,
									"SELECT " CHIME_JOB_DEF_COLUMNS_1_1 " FROM cron.job "
									"WHERE jobid OPERATOR(pg_catalog.=) ANY ($1) AND NOT active AND " RETENTION_AT " "
									"FOR UPDATE SKIP LOCKED",
									1, types),
						 values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock inactive @at jobs");
	if (SPI_processed == 0)
		return 0;

	retrying = palloc(sizeof(Datum) * (sched_retry_count() + 1));
	nretrying = sched_retry_jobids(retrying);
	cand = palloc(sizeof(int64) * SPI_processed);
	chime_job_def_map(&map, SPI_tuptable->tupdesc, CHIME_JOB_BIT(CHIME_JOB_JOBID) | CHIME_JOB_TIMING_FIELDS);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		ChimeJobDef      def;
		ChimeJobDefError err;
		SchedActive     *active;
		int64            next;

		/* a row that does not decode stays: when it was due is not known */
		if (!chime_job_def_decode(&map, SPI_tuptable->vals[i], &def, &err) ||
			def.timing.sched.kind != CHIME_SCHED_AT)
			continue;
		/* its instant is at or after the cutoff */
		if (chime_next_occurrence(&def.timing, cutoff_s - 1, &next))
			continue;
		active = sched_active_for(def.jobid, false);
		if ((active && (active->running > 0 || active->buffered_due != 0)) ||
			retention_listed(retrying, nretrying, def.jobid) || sched_later_has(def.jobid))
			continue;
		cand[ncand++] = def.jobid;
	}

	/*
	 * No run of it newer than the cutoff, in flight or to be retried: one
	 * job at a time, each an index scan of its runs.
	 */
	types[0] = INT8OID;
	values[1] = TimestampTzGetDatum(cutoff);
	for (int i = 0; i < ncand; i++)
	{
		bool isnull;

		values[0] = Int64GetDatum(cand[i]);
		if (SPI_execute_plan(chime_plan(&retention_at_runs_plan,
										"SELECT EXISTS (SELECT FROM cron.job_run_details "
										"WHERE jobid OPERATOR(pg_catalog.=) $1 "
										"AND (status IS NULL OR status OPERATOR(pg_catalog.<>) ALL (" RETENTION_FINAL ") "
										"OR retry_at IS NOT NULL "
										"OR GREATEST(start_time, end_time, scheduled_time) OPERATOR(pg_catalog.>=) $2))",
										2, types),
							 values, NULL, false, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "could not read the runs of job " INT64_FORMAT, cand[i]);
		if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
			continue;
		/* its keys go with it: not while a session claims or releases one */
		if (chime_lock_try(CHIME_LOCK_RUN_KEY, (uint64) cand[i], false))
			cand[ngone++] = cand[i];
	}
	if (ngone == 0)
		return 0;

	/* the rows are ours (locked above): this waits for nobody */
	types[0] = INT8ARRAYOID;
	values[0] = retention_int8_array(cand, ngone);
	if (SPI_execute_plan(chime_plan(&retention_at_delete_plan,
									"DELETE FROM cron.job WHERE jobid OPERATOR(pg_catalog.=) ANY ($1)",
									1, types),
						 values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete inactive @at jobs");
	return (int) SPI_processed;
}

/*
 * One chunk of a pass: the RETENTION_CHUNK rows after runid 'after'; of
 * those before the first that began after the cutoff, the old finished
 * rows nobody holds are locked and deleted, and then the inactive @at
 * jobs of the rows deleted.  Three statements on one table each, the
 * rows found by their runids in the primary key, so that the plans do not
 * depend on the table's statistics (a join of the chunk with the table,
 * planned on statistics from when the table was small, can cost as much
 * as the chunk times the table).  Inside a transaction.
 */
static void
retention_chunk(int64 after, TimestampTz cutoff, RetentionChunk *c)
{
	Oid    types[2] = {INT8OID, TIMESTAMPTZOID};
	Datum  values[2];
	int64 *old;
	int    nold = 0;
	int64 *locked;
	int    nlocked;
	int    k;

	values[0] = Int64GetDatum(after);
	values[1] = TimestampTzGetDatum(cutoff);
	if (SPI_execute_plan(chime_plan(&retention_chunk_plan,
									"SELECT runid, coalesce(start_time, scheduled_time, end_time) OPERATOR(pg_catalog.>=) $2 "
									"FROM cron.job_run_details WHERE runid OPERATOR(pg_catalog.>) $1 "
									"ORDER BY runid LIMIT " RETENTION_CHUNK_SQL,
									2, types),
						 values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read run rows");
	c->nrows = (int) SPI_processed;
	old = palloc(sizeof(int64) * (c->nrows + 1));
	for (int i = 0; i < c->nrows; i++)
	{
		bool  isnull;
		int64 runid = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		Datum recent = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull);

		c->last = runid;
		if (c->edge == 0 && !isnull && DatumGetBool(recent))
			c->edge = runid;
		if (c->edge == 0)
			old[nold++] = runid;
	}
	c->first_kept = c->edge;
	if (nold == 0)
		return;

	/* the finished ones that ended before the cutoff, passing over those a session holds */
	values[0] = retention_int8_array(old, nold);
	types[0] = INT8ARRAYOID;
	if (SPI_execute_plan(chime_plan(&retention_lock_plan,
									"SELECT runid FROM cron.job_run_details WHERE runid OPERATOR(pg_catalog.=) ANY ($1) "
									"AND status OPERATOR(pg_catalog.=) ANY (" RETENTION_FINAL ") "
									"AND retry_at IS NULL AND end_time OPERATOR(pg_catalog.<) $2 "
									"FOR UPDATE SKIP LOCKED",
									2, types),
						 values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock old runs");
	nlocked = (int) SPI_processed;
	locked = palloc(sizeof(int64) * (nlocked + 1));
	for (int i = 0; i < nlocked; i++)
	{
		bool isnull;

		locked[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	}
	qsort(locked, nlocked, sizeof(int64), retention_cmp_int64);

	/* the first row kept: the first old one not locked, else the edge */
	k = 0;
	for (int i = 0; i < nold; i++)
	{
		if (k < nlocked && locked[k] == old[i])
			k++;
		else
		{
			c->first_kept = old[i];
			break;
		}
	}
	if (nlocked == 0)
		return;

	values[0] = retention_int8_array(locked, nlocked);
	if (SPI_execute_plan(chime_plan(&retention_delete_plan,
									"WITH gone AS (DELETE FROM cron.job_run_details "
									"WHERE runid OPERATOR(pg_catalog.=) ANY ($1) RETURNING jobid) "
									"SELECT (SELECT pg_catalog.count(*) FROM gone)::pg_catalog.int4, "
									"ARRAY(SELECT DISTINCT jobid FROM gone WHERE jobid IS NOT NULL)",
									1, types),
						 values, NULL, false, 0) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not delete old runs");
	{
		bool  isnull;
		Datum jobids;

		c->runs = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		jobids = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		c->jobs = retention_delete_at_jobs(jobids, cutoff);
	}
}

/*
 * The end of a pass: the next RETENTION_SWEEP jobs of cron.job (by jobid,
 * from where the last sweep stopped), for inactive @at jobs whose runs
 * went otherwise.  Inside a transaction.
 */
static void
retention_sweep(TimestampTz cutoff, RetentionChunk *c)
{
	Oid        types[1] = {INT8OID};
	Datum      values[1] = {Int64GetDatum(retention_sweep_from)};
	bool       isnull;
	ArrayType *ids;

	if (SPI_execute_plan(chime_plan(&retention_sweep_plan,
									"WITH c AS (SELECT jobid, active, schedule FROM cron.job "
									"WHERE jobid OPERATOR(pg_catalog.>) $1 ORDER BY jobid LIMIT " RETENTION_SWEEP_SQL ") "
									"SELECT (SELECT pg_catalog.count(*) FROM c)::pg_catalog.int4, "
									"(SELECT pg_catalog.max(jobid) FROM c), "
									"ARRAY(SELECT jobid FROM c WHERE NOT active AND " RETENTION_AT ")",
									1, types),
						 values, NULL, false, 0) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not look for inactive @at jobs");
	c->swept = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	c->swept_to = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	c->swept_to = isnull ? 0 : c->swept_to;
	ids = DatumGetArrayTypeP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	if (ArrayGetNItems(ARR_NDIM(ids), ARR_DIMS(ids)) > 0)
		c->jobs += retention_delete_at_jobs(PointerGetDatum(ids), cutoff);
}

/*
 * Milliseconds until the next batch is due (0: it is; -1: none, when
 * cron.run_retention is 0 or recording pauses after a failure).
 */
long
sched_retention_wakeup(void)
{
	retention_check_setting();
	if (chime_run_retention_us == 0 || sched_log_waiting())
		return -1;
	return chime_server_ms_until(retention_next);
}

/*
 * May a batch run now?  When one is due and the scheduler is idle: no
 * other work for SCHED_RETENTION_ROOM_MS ('work_ms', -1: none planned),
 * and nothing that woke it (an executor's reply, a change to the jobs)
 * still to read.  Runs waiting for a free executor do not wait for the
 * scheduler, and a batch that waited for them would wait as long as the
 * executors are busy.
 */
bool
sched_retention_ready(long work_ms)
{
	return sched_retention_wakeup() == 0 &&
		(work_ms < 0 || work_ms >= SCHED_RETENTION_ROOM_MS) &&
		!MyLatch->is_set;
}

/*
 * One batch of retention in its own transaction: a chunk of the pass (a
 * new pass when none is going), and the sweep for @at jobs when it ends
 * the pass.  When it fails it is rolled back, logged, and tried again
 * after a wait that doubles up to RETENTION_BACKOFF_MAX_MS.
 */
void
sched_retention_batch(void)
{
	TimestampTz    now = chime_server_now();
	TimestampTz    cutoff;
	RetentionChunk c;
	volatile bool  ended = false;
	volatile bool  held = false;

	Assert(chime_run_retention_us > 0);
	if (!retention_in_pass)
	{
		/* once an hour from the first runid; else after the rows the last pass deleted */
		if (now - retention_restarted >= (int64) RETENTION_RESTART_MS * 1000)
		{
			retention_floor = 0;
			retention_restarted = now;
		}
		retention_in_pass = true;
		retention_cursor = retention_floor;
		retention_pass_kept = 0;
		retention_pass_runs = 0;
		retention_pass_jobs = 0;
	}
	if (!retention_cutoff(&cutoff))
	{
		/* nothing can be that old */
		retention_in_pass = false;
		retention_next = now + (int64) RETENTION_PASS_MS * 1000;
		return;
	}

	memset(&c, 0, sizeof(c));
	PG_TRY();
	{
		sched_begin("pg_chime: deleting old runs (cron.run_retention)");
		held = !retention_tables_free();
		if (!held)
		{
			retention_chunk(retention_cursor, cutoff, &c);
			ended = c.edge != 0 || c.nrows < RETENTION_CHUNK;
			if (ended)
				retention_sweep(cutoff, &c);
		}
		sched_commit();
	}
	PG_CATCH();
	{
		ErrorData *edata = sched_catch();

		sched_abort();
		retention_in_pass = false;
		retention_backoff_ms = retention_backoff_ms == 0 ? 1000 : Min(retention_backoff_ms * 2, RETENTION_BACKOFF_MAX_MS);
		retention_next = chime_server_now() + (int64) retention_backoff_ms * 1000;
		ereport(WARNING,
				(errmsg("pg_chime: could not delete old runs (cron.run_retention): %s", edata->message),
				 errdetail("Runs are recorded meanwhile; pg_chime tries again in %d ms.", retention_backoff_ms)));
		FreeErrorData(edata);
		return;
	}
	PG_END_TRY();

	retention_backoff_ms = 0;
	if (held)
	{
		/* the pass goes on later from where it was */
		retention_next = chime_server_now() + (int64) RETENTION_HELD_MS * 1000;
		return;
	}
	retention_pass_runs += c.runs;
	retention_pass_jobs += c.jobs;
	if (retention_pass_kept == 0)
		retention_pass_kept = c.first_kept;
	if (!ended)
	{
		retention_cursor = c.last;
		retention_next = chime_server_now() + (int64) RETENTION_BATCH_MS * 1000;
		return;
	}

	/* the pass is over: the next starts from the first row it kept */
	if (retention_pass_kept != 0)
		retention_floor = retention_pass_kept - 1;
	else if (c.last != 0)
		retention_floor = c.last;
	else
		retention_floor = retention_cursor;
	retention_sweep_from = c.swept < RETENTION_SWEEP ? 0 : c.swept_to;
	retention_in_pass = false;
	retention_next = chime_server_now() + (int64) RETENTION_PASS_MS * 1000;
	if (retention_pass_runs > 0 || retention_pass_jobs > 0)
		elog(DEBUG1, "pg_chime: cron.run_retention deleted " INT64_FORMAT " runs and " INT64_FORMAT " @at jobs",
			 retention_pass_runs, retention_pass_jobs);
}
