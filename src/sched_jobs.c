/*-------------------------------------------------------------------------
 *
 * sched_jobs.c
 *	  What is due: the jobs the scheduler knows, interned by their
 *	  settings ("classes"), in a pairing heap by next due instant (the
 *	  earliest on top, no scan of all jobs); loading and reloading them
 *	  from cron.job, the persisted horizon, and reading the commands of
 *	  jobs about to run.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "storage/fd.h"
#include "storage/proc.h"
#include "common/hashfn.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "executor.h"
#include "run_log.h"
#include "run_outcome.h"
#include "job_def.h"
#include "sched.h"

static MemoryContext sched_jobs_cxt; /* the job list; reset on a full reload */

static HTAB *sched_jobs;

static HTAB *sched_classes;

static HTAB *sched_active;

static pairingheap *sched_heap;

static int64 sched_horizon; /* every occurrence up to here is handled */

/*
 * How many job rows are read at a time when loading; before the first
 * runs start, only SCHED_LOAD_FIRST of the hint and of the first batch
 */
#define SCHED_LOAD_BATCH 10000
#define SCHED_LOAD_FIRST 1000

/*
 * The first load after a start reads the jobs a batch at a time, in jobid
 * order, one batch per iteration of the main loop (sched_jobs_load_more),
 * so that what is due among the jobs read so far starts while the rest are
 * read.  While it lasts, jobs not read yet go from the horizon the
 * scheduler started from (sched_load_from, and the jobs it found handled
 * after it), and that horizon stays the one saved, with its last runid:
 * after a crash the runs started meanwhile are found after it and the jobs
 * not read catch up.
 */
/*
 * When it stops, the scheduler writes down the jobs next due (at most
 * SCHED_HINT_MAX, the earliest first); the next start reads them before
 * the others (SCHED_LOAD_FIRST of them before the first runs start, the
 * rest right after), so that the occurrences missed while the server was
 * down, and those due first, start before the rest of a large job list is
 * read.
 * Only the order of reading depends on it: a stale or missing file changes
 * nothing else.
 */
#define SCHED_HINT_FILE  "pg_stat/pg_chime_next_due"
#define SCHED_HINT_MAX   10000
#define SCHED_HINT_MAGIC 0x43484d31 /* "CHM1" */

static bool        sched_loading = false;
static int64       sched_load_last;    /* the jobid of the last row read */
static int64       sched_load_from;    /* the horizon at start */
static HTAB       *sched_load_handled; /* sched_read_horizon's, in sched_runs_cxt */
static int64       sched_load_max;     /* the highest jobid at start: later ones are new */
static HTAB       *sched_load_read;    /* jobids it read out of order, in sched_runs_cxt */
static List      **sched_load_reboot;  /* the scheduler's @reboot list */
static int64      *sched_load_hinted;  /* the hint's jobs not read yet (NULL: none), in sched_runs_cxt */
static int         sched_load_nhinted;
static bool        sched_load_hint_rest; /* reading them: jobs not found are not "gone" */
static void        sched_load_hint_forget(void);
static uint64      sched_load_count; /* jobs it loaded */
static TimestampTz sched_load_began;

/* The commands read in this iteration of the main loop (scratch memory) */
static HTAB *sched_cmd_cache = NULL;

static int         sched_cmp(const pairingheap_node *a, const pairingheap_node *b, void *arg);
static uint32      sched_class_hash(const void *key, Size keysize);
static int         sched_class_match(const void *key1, const void *key2, Size keysize);
static void        sched_job_remove(int64 jobid);
static SchedClass *sched_class_of(const ChimeJobDefMap *map, HeapTuple tup, int64 jobid);
static int64       sched_read_horizon(int64 now_s, HTAB **handled);
static void        sched_jobs_empty(void);
static int         sched_read_hint(int64 *ids, int n);
static void        sched_load_rows(const int64 *ids, int nids, List **reboot, HTAB *handled,
								   TimestampTz since, bool batch);
static bool        sched_load_unread(int64 jobid);

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

/* The concurrency_limit job 'jobid' has now ('fallback' when it is not loaded) */
int32
sched_jobs_concurrency_limit(int64 jobid, int32 fallback)
{
	SchedJob *job = sched_jobs ? hash_search(sched_jobs, &jobid, HASH_FIND, NULL) : NULL;

	return job && job->cls ? job->cls->concurrency_limit : fallback;
}

SchedActive *
sched_active_for(int64 jobid, bool create)
{
	bool         found;
	SchedActive *a = hash_search(sched_active, &jobid, create ? HASH_ENTER : HASH_FIND, &found);

	if (a && !found)
	{
		a->running = 0;
		a->buffered_due = 0;
		a->skip_runid = 0;
		a->waiting_runid = 0;
	}
	return a;
}

/*
 * Classes are keyed by a pointer to their settings as chime_job_def_key
 * makes them: a uint32 length, then that many bytes.
 */
static uint32
sched_class_hash(const void *key, Size keysize)
{
	const char *k = *(char *const *) key;
	uint32      len;

	memcpy(&len, k, sizeof(len));
	return hash_bytes((const unsigned char *) k + sizeof(len), (int) len);
}

static int
sched_class_match(const void *key1, const void *key2, Size keysize)
{
	const char *a = *(char *const *) key1;
	const char *b = *(char *const *) key2;
	uint32      alen;
	uint32      blen;

	memcpy(&alen, a, sizeof(alen));
	memcpy(&blen, b, sizeof(blen));
	if (alen != blen)
		return 1;
	return memcmp(a + sizeof(alen), b + sizeof(blen), alen);
}

/* Take a job out of the heap and the job list. */
static void
sched_job_remove(int64 jobid)
{
	SchedJob *job = hash_search(sched_jobs, &jobid, HASH_FIND, NULL);

	if (job == NULL)
		return;
	if (job->in_heap)
		pairingheap_remove(sched_heap, &job->node);
	(void) hash_search(sched_jobs, &jobid, HASH_REMOVE, NULL);
}

/*
 * The class of a job row (decoded with 'map'), found or made; NULL, with a
 * warning, if the row cannot be scheduled.  Only settings not seen before
 * are decoded.
 */
static SchedClass *
sched_class_of(const ChimeJobDefMap *map, HeapTuple tup, int64 jobid)
{
	StringInfoData   key;
	char            *k;
	SchedClass      *cls;
	bool             found;
	ChimeJobDef      def;
	ChimeJobDefError err;
	uint32           len;

	/* the length first, then the settings */
	initStringInfo(&key);
	appendBinaryStringInfo(&key, (const char *) &len, sizeof(len));
	chime_job_def_key(map, tup, &key);
	len = key.len - sizeof(len);
	memcpy(key.data, &len, sizeof(len));
	k = key.data;
	cls = hash_search(sched_classes, &k, HASH_ENTER, &found);
	if (found)
		return cls->timing.zone ? cls : NULL;

	cls->key = MemoryContextAlloc(sched_jobs_cxt, key.len);
	memcpy(cls->key, k, key.len);
	memset(&cls->timing, 0, sizeof(cls->timing));
	if (!chime_job_def_decode(map, tup, &def, &err))
	{
		if (def.invalid & CHIME_JOB_TIMING_FIELDS)
			ereport(WARNING,
					(errmsg("pg_chime: job " INT64_FORMAT " cannot be scheduled", jobid),
					 errdetail("schedule \"%s\", time zone \"%s\"",
							   def.schedule_text, def.zone_name)));
		else if (def.invalid & (CHIME_JOB_BIT(CHIME_JOB_TIMEOUT) | CHIME_JOB_BIT(CHIME_JOB_CATCHUP) | CHIME_JOB_BIT(CHIME_JOB_RETRY_DELAY)))
			/* a row written around the API's range checks */
			ereport(WARNING,
					(errmsg("pg_chime: job " INT64_FORMAT " cannot be scheduled", jobid),
					 errdetail("Its timeout, catchup or retry_delay is out of range."),
					 errhint("Set them with cron.alter_job.")));
		else
			ereport(WARNING,
					(errmsg("pg_chime: job " INT64_FORMAT " cannot be scheduled", jobid),
					 errdetail("invalid %s: %s", err.column, err.value)));
		return NULL;
	}
	cls->timing = def.timing;
	cls->role = sched_role(def.database, def.username);
	cls->overlap = def.overlap;
	cls->timeout_ms = (int32) ((def.timeout_us + 999) / 1000);
	cls->catchup_s = def.catchup_us / USECS_PER_SEC;
	cls->max_attempts = def.max_attempts;
	cls->retry_delay_us = def.retry_delay_us;
	cls->once_per = def.once_per;
	cls->concurrency_key = NULL;
	cls->concurrency_limit = def.concurrency_limit;
	if (def.concurrency_key)
		cls->concurrency_key = MemoryContextStrdup(sched_jobs_cxt, def.concurrency_key);
	cls->http = def.kind == CHIME_JOB_HTTP;
	return cls;
}

/* A hash table keyed by the bytes of its keys, in cxt */
HTAB *
sched_hash(const char *name, long nelem, Size keysize, Size entrysize, MemoryContext cxt)
{
	HASHCTL ctl;

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
	int64 horizon = now_s;

	*handled = sched_hash("pg_chime handled jobs", 64, sizeof(int64), 2 * sizeof(int64),
						  sched_runs_cxt);

	if (SPI_execute("SELECT pg_catalog.extract('epoch', horizon)::pg_catalog.int8, last_runid "
					"FROM cron.scheduler_state",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the scheduler's horizon");
	if (SPI_processed == 1)
	{
		bool  isnull;
		int64 saved = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		Datum last = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		Oid   types[1] = {INT8OID};

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
			int64  jobid = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
			int64 *entry = hash_search(*handled, &jobid, HASH_ENTER, NULL);

			entry[1] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
		}
	}
	return horizon;
}

/* Persist the horizon (inside the transaction that recorded the runs up to it). */
void
sched_save_horizon(int64 horizon)
{
	Oid   types[1] = {TIMESTAMPTZOID};
	Datum values[1];

	static SPIPlanPtr plan = NULL;

	sched_horizon = horizon;
	/* the first load goes on: the horizon saved stays the one it started from */
	if (sched_loading)
		return;
	values[0] = TimestampTzGetDatum(chime_timestamptz_from_unix(sched_horizon));

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
 * while the scheduler was busy, starts late rather than never.  A full
 * load ends the first load if it is still going.
 */
void
sched_load(const int64 *ids, int nids, TimestampTz since)
{
	sched_load_rows(ids, nids, NULL, NULL, since, false);
}

/*
 * The jobs to load whatever their active flag says, as Datums: those with
 * a retry to make or a run going (an @at job is inactive once it has run).
 * Returns how many.
 */
static int
sched_load_kept(Datum **ids)
{
	HASH_SEQ_STATUS seq;
	SchedActive    *a;
	int             n;

	*ids = palloc(sizeof(Datum) * (sched_retry_count() + hash_get_num_entries(sched_active) + 1));
	n = sched_retry_jobids(*ids);
	hash_seq_init(&seq, sched_active);
	while ((a = hash_seq_search(&seq)) != NULL)
		if (a->running > 0)
			(*ids)[n++] = Int64GetDatum(a->jobid);
	return n;
}

/* A job list with no job: its memory, tables and heap, made current */
static void
sched_jobs_empty(void)
{
	HASHCTL ctl;

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

/*
 * During the first load: whether the job existed at start and the load has
 * not read it yet.  Its next instant is then looked for from the horizon
 * the scheduler started from, as the first load would have; else from
 * where any job new to the job list goes from (the horizon, or the commit
 * of the change that made or activated it).
 */
static bool
sched_load_unread(int64 jobid)
{
	return jobid <= sched_load_max && jobid > sched_load_last &&
		hash_search(sched_load_read, &jobid, HASH_FIND, NULL) == NULL;
}

/*
 * sched_load, or (batch) the next SCHED_LOAD_BATCH rows of the first load
 * after those read before.  At startup, @reboot jobs are returned in
 * *reboot to run once now.  'handled' (NULL: the first load's, while it
 * goes on) tells which jobs have runs recorded after the horizon.
 */
static void
sched_load_rows(const int64 *ids, int nids, List **reboot, HTAB *handled, TimestampTz since,
				bool batch)
{
	StringInfoData sql;
	Oid            types[2] = {INT8ARRAYOID, INT8ARRAYOID};
	Datum          values[2];
	Datum         *retry_ids;
	int            n = 0;
	uint64         loaded = 0;
	uint64         read = 0;
	bool           last_batch = false; /* the first load's last */
	int            limit = sched_load_last == PG_INT64_MIN ? SCHED_LOAD_FIRST : SCHED_LOAD_BATCH;
	Portal         portal;
	MemoryContext  batch_cxt;
	ChimeJobDefMap map;
	MemoryContext  old_cxt = NULL;
	HTAB          *old_jobs = NULL; /* full reload: the jobs loaded before */
	HTAB          *old_classes = sched_classes;
	pairingheap   *old_heap = sched_heap;
	HTAB          *known = NULL; /* reload of some: those of them loaded before */
	int64          new_after = sched_horizon;
	bool           full = ids == NULL && !batch;

	if (since != 0 && chime_unix_from_timestamptz(since) < new_after)
		new_after = chime_unix_from_timestamptz(since);
	if (handled == NULL && sched_loading)
		handled = sched_load_handled;
	/* during the first load, a job read the first time lists its @reboot run */
	if (reboot == NULL && sched_loading)
		reboot = sched_load_reboot;
	if (full)
	{
		old_cxt = sched_jobs_cxt;
		old_jobs = sched_jobs;
		sched_jobs_empty();
	}
	else if (ids != NULL)
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
	n = sched_load_kept(&retry_ids);
	values[0] = PointerGetDatum(construct_array(retry_ids, n, INT8OID, 8, true, TYPALIGN_DOUBLE));
	initStringInfo(&sql);
	appendStringInfoString(&sql,
						   "SELECT " CHIME_JOB_DEF_COLUMNS_1_1 " FROM cron.job WHERE (active OR "
						   "(jobid OPERATOR(pg_catalog.=) ANY ($1) AND schedule OPERATOR(pg_catalog.~*) '^\\s*@at\\s'))");
	if (ids != NULL)
	{
		Datum *d = palloc(sizeof(Datum) * (nids + 1));

		for (int i = 0; i < nids; i++)
			d[i] = Int64GetDatum(ids[i]);
		values[1] = PointerGetDatum(construct_array(d, nids, INT8OID, 8, true, TYPALIGN_DOUBLE));
		appendStringInfoString(&sql, " AND jobid OPERATOR(pg_catalog.=) ANY ($2)");
	}
	else if (batch)
	{
		types[1] = INT8OID;
		values[1] = Int64GetDatum(sched_load_last);
		appendStringInfo(&sql, " AND jobid OPERATOR(pg_catalog.>) $2 ORDER BY jobid LIMIT %d", limit);
	}

	batch_cxt = AllocSetContextCreate(sched_scratch_cxt, "pg_chime load batch",
									  ALLOCSET_DEFAULT_SIZES);
	PG_TRY();
	{
		sched_begin("pg_chime: loading jobs");
		portal = SPI_cursor_open_with_args(NULL, sql.data, full ? 1 : 2, types, values, NULL, true, 0);
		for (;;)
		{
			SPI_cursor_fetch(portal, true, SCHED_LOAD_BATCH);
			if (SPI_processed == 0)
				break;
			MemoryContextSwitchTo(batch_cxt);
			chime_job_def_map(&map, SPI_tuptable->tupdesc,
							  CHIME_JOB_BIT(CHIME_JOB_JOBID) | CHIME_JOB_CLASS_FIELDS);
			for (uint64 i = 0; i < SPI_processed; i++)
			{
				HeapTuple   tup = SPI_tuptable->vals[i];
				int64       jobid = chime_job_def_jobid(&map, tup);
				SchedClass *cls;
				SchedJob   *job;
				int64       after = new_after;
				bool        first_read = true; /* the first time this load reads the job */
				int64      *seen;

				if (batch)
				{
					read++;
					/* made since the start: the reload of the jobs changed loads it */
					if (jobid > sched_load_max)
					{
						last_batch = true; /* and every row after it is newer still */
						break;
					}
					sched_load_last = jobid;
					/* read before, out of order (the retries, the hint, a reload of the jobs changed) */
					if (hash_search(sched_load_read, &jobid, HASH_FIND, NULL) != NULL)
						continue;
					/* loaded by an attempt at this batch that failed after its rows: in the heap already */
					if (hash_search(sched_jobs, &jobid, HASH_FIND, NULL) != NULL)
						continue;
					after = sched_load_from;
				}
				else if (sched_loading)
				{
					first_read = sched_load_unread(jobid);
					if (first_read)
						after = sched_load_from;
					if (!full)
						(void) hash_search(sched_load_read, &jobid, HASH_ENTER, NULL);
				}
				cls = sched_class_of(&map, tup, jobid);
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
					int64 now_s = chime_unix_from_timestamptz(chime_now());
					/*
					 * Its one occurrence, the start, within start_at and
					 * end_at: once, though the first load may read the job
					 * twice, and not for a job made since the start
					 */
					if (reboot && first_read && (cls->timing.start_at == 0 || now_s >= cls->timing.start_at) &&
						(cls->timing.end_at == 0 || now_s < cls->timing.end_at))
					{
						int64 *id;

						/* by id: a reload before they start frees the jobs */
						MemoryContextSwitchTo(sched_runs_cxt);
						id = palloc(sizeof(int64));
						*id = jobid;
						*reboot = lappend(*reboot, id);
						MemoryContextSwitchTo(batch_cxt);
					}
				}
				else if (chime_next_run(&cls->timing, jobid, after, &job->due))
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
		last_batch = batch && (last_batch || read < limit);
		/* the statistics of jobs unscheduled go with them (with the first load's last batch) */
		if (last_batch)
			chime_stats_forget_gone(NULL, 0);
		else if (!batch)
			chime_stats_forget_gone(ids, nids);
		sched_save_horizon(sched_horizon);
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

	/*
	 * The first load is over when a batch came short or every job was
	 * loaded at once; the horizon is saved with the next runs started.
	 */
	if (last_batch || (full && sched_loading))
	{
		sched_loading = false;
		hash_destroy(sched_load_handled);
		hash_destroy(sched_load_read);
		sched_load_handled = NULL;
		sched_load_read = NULL;
		/* (hinted jobs not read yet were read with the others) */
		sched_load_hint_forget();
		ereport(LOG,
				(errmsg("pg_chime: every job is loaded: " UINT64_FORMAT " in %ld ms",
						full ? loaded : sched_load_count + loaded,
						(long) ((GetCurrentTimestamp() - sched_load_began) / 1000))));
	}
	if (sched_loading)
		sched_load_count += loaded;
	/* (a hinted job no longer active was never loaded in this start: nothing of it to end) */
	if (batch || sched_load_hint_rest)
		return;

	/* jobs gone (unscheduled, or deactivated): their HTTP runs end now */
	{
		HTAB *gone = sched_hash("pg_chime jobs gone", 16, sizeof(int64), sizeof(int64),
								sched_scratch_cxt);

		if (old_cxt != NULL)
		{
			HASH_SEQ_STATUS seq;
			SchedJob       *job;

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
		sched_keys_cancel_jobs(gone);
	}
	if (old_cxt != NULL)
		MemoryContextDelete(old_cxt);
	elog(DEBUG1, "pg_chime: loaded " UINT64_FORMAT " jobs", loaded);
}

HTAB *
sched_commands(SchedJob **jobs, int n)
{
	static SPIPlanPtr plan = NULL;
	Datum            *ids = palloc(sizeof(Datum) * (n + 1));
	Oid               types[1] = {INT8ARRAYOID};
	Datum             values[1];
	MemoryContext     old;

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
									"OPERATOR(pg_catalog.||) value) FROM pg_catalog.jsonb_each_text(headers)) END, coalesce(jobname, '') "
									"FROM cron.job WHERE jobid OPERATOR(pg_catalog.=) ANY ($1)",
									1, types),
						 values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the commands of due jobs");
	old = MemoryContextSwitchTo(sched_scratch_cxt);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple     tup = SPI_tuptable->vals[i];
		TupleDesc     desc = SPI_tuptable->tupdesc;
		bool          isnull;
		int64         jobid = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		SchedCommand *c = hash_search(sched_cmd_cache, &jobid, HASH_ENTER, NULL);
		Datum         hdrs;

		c->command = SPI_getvalue(tup, desc, 2);
		c->http = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		c->url = SPI_getvalue(tup, desc, 4);
		c->method = SPI_getvalue(tup, desc, 5);
		c->body = SPI_getvalue(tup, desc, 6);
		c->headers = NIL;
		c->jobname = SPI_getvalue(tup, desc, 8);
		hdrs = SPI_getbinval(tup, desc, 7, &isnull);
		if (!isnull)
		{
			Datum *elems;
			int    nh;

			deconstruct_array(DatumGetArrayTypeP(hdrs), TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, &nh);
			for (int h = 0; h < nh; h++)
				c->headers = lappend(c->headers, TextDatumGetCString(elems[h]));
		}
	}
	MemoryContextSwitchTo(old);
	return sched_cmd_cache;
}

/* The command of one job (NULL if it is gone), inside a transaction */
char *
sched_command(SchedJob *job)
{
	HTAB         *commands = sched_commands(&job, 1);
	SchedCommand *c = hash_search(commands, &job->jobid, HASH_FIND, NULL);

	return c ? c->command : NULL;
}

/* At start: the job table's memory and hash tables */
void
sched_jobs_init(void)
{
	sched_jobs_cxt = NULL; /* made by each full load */
	sched_active = sched_hash("pg_chime active jobs", 256, sizeof(int64), sizeof(SchedActive),
							  sched_runs_cxt);
}

/*
 * At start: read the horizon, then load the jobs with a retry to make,
 * those next due when the scheduler stopped, and the first batch of the
 * others (sched_jobs_load_more reads the rest);
 * occurrences since the last scheduler handled them are caught up.
 * @reboot jobs are appended to *reboot.
 */
void
sched_jobs_first_load(TimestampTz now, List **reboot)
{
	Datum *kept;
	int64 *ids;
	int    n;

	sched_begin("pg_chime: reading the horizon");
	sched_horizon = sched_read_horizon(chime_unix_from_timestamptz(now), &sched_load_handled);
	if (SPI_execute("SELECT pg_catalog.max(jobid) FROM cron.job", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the highest jobid");
	{
		bool  isnull;
		Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		sched_load_max = isnull ? PG_INT64_MIN : DatumGetInt64(d);
	}
	sched_commit();
	sched_load_read = sched_hash("pg_chime jobs read first", 64, sizeof(int64), sizeof(int64),
								 sched_runs_cxt);
	sched_load_reboot = reboot;
	sched_load_from = sched_horizon;
	sched_load_last = PG_INT64_MIN;
	sched_load_count = 0;
	sched_load_began = GetCurrentTimestamp();
	sched_jobs_empty();
	sched_loading = true;
	/* first those with a retry to make, then those next due when it stopped */
	n = sched_load_kept(&kept);
	ids = palloc(sizeof(int64) * (n + SCHED_HINT_MAX));
	for (int i = 0; i < n; i++)
		ids[i] = DatumGetInt64(kept[i]);
	{
		int kept_n = n;

		n = sched_read_hint(ids, n);
		/* the hint's first jobs (the earliest due) now, the rest at the first load_more */
		sched_load_nhinted = Max(n - kept_n - SCHED_LOAD_FIRST, 0);
		n -= sched_load_nhinted;
		if (sched_load_nhinted > 0)
		{
			sched_load_hinted = MemoryContextAlloc(sched_runs_cxt, sizeof(int64) * sched_load_nhinted);
			memcpy(sched_load_hinted, ids + n, sizeof(int64) * sched_load_nhinted);
		}
	}
	/* without a run log (cron.log_run off), a crash while reading would repeat runs: all at once */
	if (!chime_log_run)
		sched_load_rows(NULL, 0, reboot, NULL, 0, false);
	else
	{
		if (n > 0)
			sched_load_rows(ids, n, reboot, NULL, 0, false);
		sched_load_rows(NULL, 0, reboot, NULL, 0, true);
	}
}

/*
 * At exit: the jobs next due, for the next start (the heap is emptied).
 * Nothing is reported: a file not written only makes that start read the
 * jobs in jobid order.
 */
void
sched_jobs_save_hint(void)
{
	FILE  *f;
	uint32 magic = SCHED_HINT_MAGIC;
	bool   ok;

	if (sched_heap == NULL || pairingheap_is_empty(sched_heap))
	{
		(void) unlink(SCHED_HINT_FILE);
		return;
	}
	f = AllocateFile(SCHED_HINT_FILE ".tmp", PG_BINARY_W);
	if (f == NULL)
		return;
	ok = fwrite(&magic, sizeof(magic), 1, f) == 1;
	for (int i = 0; ok && i < SCHED_HINT_MAX && !pairingheap_is_empty(sched_heap); i++)
	{
		SchedJob *job = pairingheap_container(SchedJob, node, pairingheap_remove_first(sched_heap));

		ok = fwrite(&job->jobid, sizeof(int64), 1, f) == 1;
	}
	if (FreeFile(f) != 0)
		ok = false;
	if (!ok || rename(SCHED_HINT_FILE ".tmp", SCHED_HINT_FILE) != 0)
		(void) unlink(SCHED_HINT_FILE ".tmp");
}

/*
 * The jobs the last scheduler had next due (sched_jobs_save_hint), after
 * the n in ids[]; the file is used once.  Returns the new count.
 */
static int
sched_read_hint(int64 *ids, int n)
{
	FILE  *f = AllocateFile(SCHED_HINT_FILE, PG_BINARY_R);
	uint32 magic;

	if (f == NULL)
		return n;
	if (fread(&magic, sizeof(magic), 1, f) == 1 && magic == SCHED_HINT_MAGIC)
	{
		int max = n + SCHED_HINT_MAX;

		while (n < max && fread(&ids[n], sizeof(int64), 1, f) == 1)
			n++;
	}
	FreeFile(f);
	(void) unlink(SCHED_HINT_FILE);
	return n;
}

/* The rest of the hint is read, or read with the others: it goes */
static void
sched_load_hint_forget(void)
{
	if (sched_load_hinted != NULL)
		pfree(sched_load_hinted);
	sched_load_hinted = NULL;
	sched_load_nhinted = 0;
}

/*
 * While the first load goes on (and the run log is not paused): read its
 * next batch of jobs.  When that fails, the rows it loaded stay, and the
 * batch is read again after the pause from where it began.
 */
void
sched_jobs_load_more(List **reboot)
{
	int64 last = sched_load_last;

	if (!sched_loading || sched_log_waiting())
		return;
	PG_TRY();
	{
		if (sched_load_hinted != NULL)
		{
			int n = 0;

			/* those the first batch read are loaded already (kept so, if this fails) */
			for (int i = 0; i < sched_load_nhinted; i++)
				if (sched_load_unread(sched_load_hinted[i]))
					sched_load_hinted[n++] = sched_load_hinted[i];
			sched_load_nhinted = n;
			if (n > 0)
			{
				sched_load_hint_rest = true;
				sched_load_rows(sched_load_hinted, n, reboot, NULL, 0, false);
				sched_load_hint_rest = false;
			}
			sched_load_hint_forget();
		}
		else
			sched_load_rows(NULL, 0, reboot, NULL, 0, true);
	}
	PG_CATCH();
	{
		sched_load_hint_rest = false;
		sched_load_last = last;
		sched_recording_failed("read the jobs");
	}
	PG_END_TRY();
}

/* Whether the first load has jobs still to read */
bool
sched_jobs_loading(void)
{
	return sched_loading;
}

/* The job, or NULL if it is not loaded */
SchedJob *
sched_job_find(int64 jobid)
{
	return hash_search(sched_jobs, &jobid, HASH_FIND, NULL);
}

/* When the next job is due (pg_chime's clock); false if none is */
bool
sched_jobs_next_due(TimestampTz *due)
{
	SchedJob *job;

	if (pairingheap_is_empty(sched_heap))
		return false;
	job = pairingheap_container(SchedJob, node, pairingheap_first(sched_heap));
	*due = chime_timestamptz_from_unix(job->due);
	return true;
}

/* A new iteration: the commands read in the last one (scratch memory) are gone */
void
sched_commands_forget(void)
{
	sched_cmd_cache = NULL;
}

/* Every occurrence up to then has been handled (Unix seconds) */
int64
sched_jobs_horizon(void)
{
	return sched_horizon;
}

/* Occurrences up to 'horizon' are handled (not saved: sched_save_horizon does) */
void
sched_jobs_set_horizon(int64 horizon)
{
	sched_horizon = horizon;
}

/*
 * Take the jobs due at or before now_s off the heap, the earliest first;
 * *n is set to how many.  They go back with sched_jobs_requeue.
 */
SchedJob **
sched_jobs_take_due(int64 now_s, int *n)
{
	int        size = 64;
	SchedJob **due = palloc(sizeof(SchedJob *) * size);

	*n = 0;
	while (!pairingheap_is_empty(sched_heap))
	{
		SchedJob *job = pairingheap_container(SchedJob, node, pairingheap_first(sched_heap));

		if (job->due > now_s)
			break;
		(void) pairingheap_remove_first(sched_heap);
		job->in_heap = false;
		if (*n == size)
		{
			size *= 2;
			due = repalloc(due, sizeof(SchedJob *) * size);
		}
		due[(*n)++] = job;
	}
	return due;
}

/*
 * The jobs due at the next instant, at most 'max' of them (the heap as it
 * was); returns how many.
 */
int
sched_jobs_peek_next(SchedJob **jobs, int max)
{
	int   n = 0;
	int64 due;

	if (pairingheap_is_empty(sched_heap))
		return 0;
	due = pairingheap_container(SchedJob, node, pairingheap_first(sched_heap))->due;
	while (n < max && !pairingheap_is_empty(sched_heap))
	{
		SchedJob *job = pairingheap_container(SchedJob, node, pairingheap_first(sched_heap));

		if (job->due != due)
			break;
		(void) pairingheap_remove_first(sched_heap);
		jobs[n++] = job;
	}
	for (int i = 0; i < n; i++)
		pairingheap_add(sched_heap, &jobs[i]->node);
	return n;
}

/* Put a job back on the heap, next due at 'due' (Unix seconds) */
void
sched_jobs_requeue(SchedJob *job, int64 due)
{
	job->due = due;
	pairingheap_add(sched_heap, &job->node);
	job->in_heap = true;
}

/*
 * What the job runs, from this iteration's commands if they were read
 * (sched_commands), else read now; NULL if the job is gone.  Inside a
 * transaction.
 */
SchedCommand *
sched_command_of(int64 jobid)
{
	SchedCommand *c = sched_cmd_cache ? hash_search(sched_cmd_cache, &jobid, HASH_FIND, NULL) : NULL;

	if (c == NULL)
	{
		SchedJob  job;
		SchedJob *one = &job;

		job.jobid = jobid;
		c = hash_search(sched_commands(&one, 1), &jobid, HASH_FIND, NULL);
	}
	return c;
}

/*
 * A transaction that started runs failed: the jobs from the first one it
 * handled go back into the heap at the instants they had ('orig_due'), and
 * their skipped streaks start a new row.
 */
void
sched_jobs_restore_due(SchedJob **due, const int64 *orig_due, int first, int ndue)
{
	for (int i = first; i < ndue; i++)
	{
		SchedJob    *job = due[i];
		SchedActive *active = sched_active_for(job->jobid, false);

		if (job->in_heap)
			pairingheap_remove(sched_heap, &job->node);
		sched_jobs_requeue(job, orig_due[i]);
		if (active)
			active->skip_runid = 0;
	}
}
