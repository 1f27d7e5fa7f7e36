/*-------------------------------------------------------------------------
 *
 * run_outcome.c
 *	  What follows the end of an attempt, in the transaction that records
 *	  it: one log line; the job's statistics in cron.job_stats (what
 *	  cron.job_status shows); and after a run's final outcome its hooks
 *	  (on_success, on_failure, alert_after) and its notification
 *	  (notify_channel), all from one payload describing the run.
 *
 * A hook run is recorded here, 'starting' with trigger 'hook', in the same
 * transaction as the outcome it follows: an outcome recorded is a hook
 * started, exactly once, whatever ends the scheduler after that.  The
 * scheduler takes it like a manual run.  A chain of hooks never starts a
 * job twice: each hook run lists the jobs before it (hook_chain).
 *
 * Called by the scheduler (SPI connected, inside its transactions).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "job_def.h"
#include "pg_chime.h"
#include "run_log.h"
#include "run_outcome.h"
#include "shared.h"

/* The longest return_message a payload carries */
#define OUTCOME_MESSAGE_MAX 4000

/* NOTIFY's payloads are shorter than this */
#define OUTCOME_NOTIFY_MAX 8000

/* Notifications (channel, payload, ...) of this transaction, and of those committed */
static List *outcome_notes = NIL;
static List *outcome_notes_ready = NIL;

/* What one batch of outcomes knows and changes about one job */
typedef struct OutcomeJob
{
	int64 jobid;
	bool  known; /* the job exists (its settings below are read) */
	char *jobname;
	char *username;
	char *on_success;
	char *on_failure;
	int32 alert_after;
	char *notify_channel;
	int32 consecutive_failures;
	bool  alerted; /* its failures in a row reached alert_after */

	/* the changes to its statistics */
	bool                changed;
	int32               running;
	int64               runs;
	int64               successes;
	int64               failures;
	int64               duration_us;
	const ChimeOutcome *last; /* its latest final outcome in the batch */
	TimestampTz         last_success;
} OutcomeJob;

static int         outcome_cmp_job(const void *a, const void *b);
static OutcomeJob *outcome_jobs(const ChimeOutcome *o, int n, int *njobs);
static OutcomeJob *outcome_job(OutcomeJob *jobs, int njobs, int64 jobid);
static void        outcome_log(const ChimeOutcome *o, const OutcomeJob *job);
static void        outcome_payload(StringInfo buf, const ChimeOutcome *o, const OutcomeJob *job, bool recovered);
static void        outcome_notify(const OutcomeJob *job, const char *payload);
static void        outcome_start_hook(const OutcomeJob *job, const char *hook, const ChimeOutcome *o,
									  const char *payload);
static void        outcome_save_stats(OutcomeJob *jobs, int njobs);

/*
 * Is a message of level 'elevel' written, given cron.log_min_messages?
 * (The server log's order: LOG ranks above ERROR.)
 */
bool
chime_log_enabled(int elevel)
{
	int rank = elevel == LOG ? ERROR + 1 : (elevel > ERROR ? elevel + 1 : elevel);
	int min = chime_log_min_messages == LOG ? ERROR + 1 :
											  (chime_log_min_messages > ERROR ? chime_log_min_messages + 1 : chime_log_min_messages);

	return rank >= min;
}

static int
outcome_cmp_job(const void *a, const void *b)
{
	int64 x = ((const OutcomeJob *) a)->jobid;
	int64 y = ((const OutcomeJob *) b)->jobid;

	return (x > y) - (x < y);
}

static OutcomeJob *
outcome_job(OutcomeJob *jobs, int njobs, int64 jobid)
{
	OutcomeJob key;

	key.jobid = jobid;
	return bsearch(&key, jobs, njobs, sizeof(OutcomeJob), outcome_cmp_job);
}

/*
 * The jobs of the outcomes, sorted by jobid, with their names, hooks and
 * failures in a row (one statement for all).
 */
static OutcomeJob *
outcome_jobs(const ChimeOutcome *o, int n, int *njobs)
{
	static SPIPlanPtr plan = NULL;
	OutcomeJob       *jobs = palloc0(sizeof(OutcomeJob) * n);
	int64            *ids = palloc(sizeof(int64) * n);
	Oid               types[1] = {INT8ARRAYOID};
	Datum             values[1];
	int               m = 0;

	for (int i = 0; i < n; i++)
		jobs[i].jobid = o[i].jobid;
	qsort(jobs, n, sizeof(OutcomeJob), outcome_cmp_job);
	for (int i = 0; i < n; i++)
	{
		if (m > 0 && jobs[m - 1].jobid == jobs[i].jobid)
			continue;
		jobs[m] = jobs[i];
		ids[m++] = jobs[i].jobid;
	}
	values[0] = chime_int8_array(ids, m);
	if (SPI_execute_plan(chime_plan(&plan,
									"SELECT j.jobid, coalesce(j.jobname, ''), j.username, j.on_success, j.on_failure, "
									"j.alert_after, j.notify_channel, coalesce(s.consecutive_failures, 0), "
									"coalesce(s.alerted, false) "
									"FROM cron.job j LEFT JOIN cron.job_stats s ON s.jobid OPERATOR(pg_catalog.=) j.jobid "
									"WHERE j.jobid OPERATOR(pg_catalog.=) ANY ($1)",
									1, types),
						 values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the jobs of %d outcomes", n);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple   tup = SPI_tuptable->vals[i];
		TupleDesc   desc = SPI_tuptable->tupdesc;
		bool        isnull;
		OutcomeJob *job = outcome_job(jobs, m, DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull)));

		job->known = true;
		job->jobname = SPI_getvalue(tup, desc, 2);
		job->username = SPI_getvalue(tup, desc, 3);
		job->on_success = SPI_getvalue(tup, desc, 4);
		job->on_failure = SPI_getvalue(tup, desc, 5);
		job->alert_after = DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull));
		job->notify_channel = SPI_getvalue(tup, desc, 7);
		job->consecutive_failures = DatumGetInt32(SPI_getbinval(tup, desc, 8, &isnull));
		job->alerted = DatumGetBool(SPI_getbinval(tup, desc, 9, &isnull));
	}
	*njobs = m;
	return jobs;
}

/*
 * The log line of an attempt's end, by cron.log_min_messages: a success
 * at LOG (none when cron.log_run is off), a failure or a skip at WARNING.
 */
static void
outcome_log(const ChimeOutcome *o, const OutcomeJob *job)
{
	bool        ok = strcmp(o->status, "succeeded") == 0;
	int         elevel = ok ? LOG : WARNING;
	const char *name = job && job->known ? job->jobname : "";
	char        runid[32] = "(not recorded)";
	char        retry[64] = "";

	if ((ok && !chime_log_run) || !chime_log_enabled(elevel))
		return;
	if (o->runid > 0)
		snprintf(runid, sizeof(runid), INT64_FORMAT, o->runid);
	if (o->retry_at != 0)
		snprintf(retry, sizeof(retry), " (attempt %d; tried again at %s)", o->attempt,
				 timestamptz_to_str(o->retry_at));
	ereport(elevel,
			(errmsg("pg_chime: job " INT64_FORMAT " (%s) run %s %s%s: %s",
					o->jobid, name, runid, o->status, retry, o->message ? o->message : "")));
}

/* A timestamp in ISO 8601, UTC ("null" for none) */
static void
outcome_append_time(StringInfo buf, TimestampTz t)
{
	struct pg_tm tm;
	fsec_t       fsec;

	if (t == 0 || TIMESTAMP_NOT_FINITE(t) || timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	appendStringInfo(buf, "\"%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year, tm.tm_mon, tm.tm_mday,
					 tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (fsec != 0)
		appendStringInfo(buf, ".%06d", (int) fsec);
	appendStringInfoString(buf, "Z\"");
}

/*
 * A JSON string of at most 'max' bytes once escaped (cut at a character
 * boundary), or null
 */
static void
outcome_append_text(StringInfo buf, const char *text, int max)
{
	StringInfoData quoted;
	int            len;

	if (text == NULL)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	initStringInfo(&quoted);
	len = strlen(text);
	for (;;)
	{
		resetStringInfo(&quoted);
		escape_json(&quoted, len < (int) strlen(text) ? pnstrdup(text, len) : text);
		if (quoted.len <= max + 2 || len == 0)
			break;
		/* escapes at most sextuple a byte: cut in proportion, at a character boundary */
		len = pg_mbcliplen(text, len, Max((int) ((int64) len * max / quoted.len), 0));
	}
	appendBinaryStringInfo(buf, quoted.data, quoted.len);
}

/*
 * The payload of a run's outcome (SPEC's form): the job, the run, the
 * job's failures in a row after it, and "recovered" at the first success
 * after an alert.
 */
static void
outcome_payload(StringInfo buf, const ChimeOutcome *o, const OutcomeJob *job, bool recovered)
{
	appendStringInfo(buf, "{\"job\": {\"id\": " INT64_FORMAT ", \"name\": ", o->jobid);
	outcome_append_text(buf, job->jobname[0] ? job->jobname : NULL, NAMEDATALEN * 4);
	appendStringInfoString(buf, "}, \"run\": {\"id\": ");
	if (o->runid > 0)
		appendStringInfo(buf, INT64_FORMAT, o->runid);
	else
		appendStringInfoString(buf, "null");
	appendStringInfoString(buf, ", \"status\": ");
	escape_json(buf, o->status);
	appendStringInfo(buf, ", \"attempt\": %d, \"scheduled_time\": ", o->attempt);
	outcome_append_time(buf, o->scheduled_time);
	appendStringInfoString(buf, ", \"start_time\": ");
	outcome_append_time(buf, o->start_time);
	appendStringInfoString(buf, ", \"end_time\": ");
	outcome_append_time(buf, o->end_time);
	appendStringInfoString(buf, ", \"run_key\": ");
	outcome_append_text(buf, o->run_key && o->run_key[0] ? o->run_key : NULL, CHIME_RUN_KEY_LEN);
	appendStringInfoString(buf, ", \"return_message\": ");
	outcome_append_text(buf, o->message, OUTCOME_MESSAGE_MAX);
	appendStringInfoString(buf, ", \"http_status\": ");
	if (o->http_status != 0)
		appendStringInfo(buf, "%d", o->http_status);
	else
		appendStringInfoString(buf, "null");
	appendStringInfo(buf, "}, \"consecutive_failures\": %d", job->consecutive_failures);
	if (recovered)
		appendStringInfoString(buf, ", \"recovered\": true");
	appendStringInfoChar(buf, '}');
}

/* Drop the notifications of a transaction that aborted; keep those of one that committed */
static void
outcome_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT)
	{
		list_free_deep(outcome_notes);
		outcome_notes = NIL;
	}
	else if (event == XACT_EVENT_COMMIT && outcome_notes != NIL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		outcome_notes_ready = list_concat(outcome_notes_ready, outcome_notes);
		MemoryContextSwitchTo(old);
		list_free(outcome_notes);
		outcome_notes = NIL;
	}
}

/*
 * pg_notify(notify_channel, payload), sent once the outcome is recorded
 * (chime_outcomes_notify): a NOTIFY queue that listeners have let fill
 * up fails the notification, not the recording of runs.
 */
static void
outcome_notify(const OutcomeJob *job, const char *payload)
{
	static bool   registered = false;
	MemoryContext old;

	if (strlen(payload) >= OUTCOME_NOTIFY_MAX)
	{
		ereport(WARNING,
				(errmsg("pg_chime: job " INT64_FORMAT " (%s): its outcome is too long to notify channel %s",
						job->jobid, job->jobname, job->notify_channel)));
		return;
	}
	if (!registered)
	{
		RegisterXactCallback(outcome_xact_callback, NULL);
		registered = true;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	outcome_notes = lappend(outcome_notes, pstrdup(job->notify_channel));
	outcome_notes = lappend(outcome_notes, pstrdup(payload));
	MemoryContextSwitchTo(old);
}

/*
 * Send the notifications of the outcomes recorded, in a transaction of
 * their own; if that fails (the NOTIFY queue is full), they are dropped
 * with a WARNING.  Outside a transaction.
 */
void
chime_outcomes_notify(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	List         *notes = outcome_notes_ready;

	if (notes == NIL)
		return;
	outcome_notes_ready = NIL;
	PG_TRY();
	{
		ListCell *lc;

		StartTransactionCommand();
		for (lc = list_head(notes); lc != NULL; lc = lnext(notes, lnext(notes, lc)))
			Async_Notify(lfirst(lc), lfirst(lnext(notes, lc)));
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		ereport(WARNING,
				(errmsg("pg_chime: could not notify %d outcomes: %s", list_length(notes) / 2, edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	list_free_deep(notes);
}

/*
 * Start the hook job 'hook' (a job name of the owner) after outcome 'o' of
 * 'job', with 'payload': recorded 'starting' with trigger 'hook', taken by
 * the scheduler when this transaction commits.  Not started, with a
 * WARNING, when the hook job is gone or inactive, or already ran in the
 * chain of hooks that led here.
 */
static void
outcome_start_hook(const OutcomeJob *job, const char *hook, const ChimeOutcome *o, const char *payload)
{
	static SPIPlanPtr plan = NULL;
	Oid               types[3] = {TEXTOID, TEXTOID, INT8OID};
	Datum             values[3] = {CStringGetTextDatum(hook), CStringGetTextDatum(job->username),
								   Int64GetDatum(o->runid)};
	HeapTuple         tup;
	TupleDesc         desc;
	bool              isnull;
	int64             hookid;
	Datum             chain;
	ArrayType        *prior;
	Datum            *elems = NULL;
	int               nelems = 0;
	Datum            *ids;
	ChimeJobDefMap    map;
	ChimeJobDef       def;
	ChimeJobDefError  err;
	TimestampTz       now = chime_now();
	bool              in_chain = false;
	int64             runid;

	if (SPI_execute_plan(chime_plan(&plan,
									"SELECT j.jobid, j.active, j.database, j.username, j.command, "
									"(SELECT r.hook_chain FROM cron.job_run_details r "
									"WHERE r.runid OPERATOR(pg_catalog.=) $3) AS chain "
									"FROM cron.job j WHERE j.jobname OPERATOR(pg_catalog.=) $1 "
									"AND j.username OPERATOR(pg_catalog.=) $2",
									3, types),
						 values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read hook job \"%s\"", hook);
	if (SPI_processed == 0)
	{
		ereport(WARNING,
				(errmsg("pg_chime: job " INT64_FORMAT " (%s): its hook job \"%s\" does not exist",
						job->jobid, job->jobname, hook),
				 errhint("Schedule a job named \"%s\" for role %s, or change the job's on_success or on_failure.",
						 hook, job->username)));
		return;
	}
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	chime_job_def_map(&map, desc,
					  CHIME_JOB_BIT(CHIME_JOB_JOBID) | CHIME_JOB_BIT(CHIME_JOB_ACTIVE) |
						  CHIME_JOB_BIT(CHIME_JOB_DATABASE) | CHIME_JOB_BIT(CHIME_JOB_USERNAME) |
						  CHIME_JOB_BIT(CHIME_JOB_COMMAND));
	(void) chime_job_def_decode(&map, tup, &def, &err);
	hookid = def.jobid;
	if (!def.active)
	{
		ereport(WARNING,
				(errmsg("pg_chime: job " INT64_FORMAT " (%s): its hook job " INT64_FORMAT " (%s) is inactive and was not started",
						job->jobid, job->jobname, hookid, hook)));
		return;
	}

	/* the chain: the jobs before this outcome's run, then its job */
	chain = SPI_getbinval(tup, desc, 6, &isnull);
	if (!isnull)
	{
		prior = DatumGetArrayTypeP(chain);
		deconstruct_array(prior, INT8OID, 8, true, TYPALIGN_DOUBLE, &elems, NULL, &nelems);
	}
	ids = palloc(sizeof(Datum) * (nelems + 1));
	for (int i = 0; i < nelems; i++)
	{
		ids[i] = elems[i];
		in_chain |= DatumGetInt64(elems[i]) == hookid;
	}
	ids[nelems] = Int64GetDatum(o->jobid);
	if (o->jobid == hookid || in_chain)
	{
		ereport(WARNING,
				(errmsg("pg_chime: job " INT64_FORMAT " (%s): its hook job " INT64_FORMAT " (%s) already ran in this chain of hooks and was not started again",
						job->jobid, job->jobname, hookid, hook),
				 errdetail("A chain of on_success and on_failure hooks starts each job at most once.")));
		return;
	}
	chain = PointerGetDatum(construct_array(ids, nelems + 1, INT8OID, 8, true, TYPALIGN_DOUBLE));

	/* (a once_per hook job's key is claimed when the scheduler takes the run) */
	runid = chime_run_insert_hook(hookid, def.database, def.username, def.command, payload, chain, now);
	chime_manual_run_requested(runid);
}

/* A duration in microseconds as an interval */
static Datum
outcome_interval(int64 us)
{
	Interval *iv = palloc0(sizeof(Interval));

	iv->time = us;
	return IntervalPGetDatum(iv);
}

/*
 * Save the changes to the statistics of the known jobs, one statement for
 * all: attempts running, and for final outcomes the totals and the last
 * run, the failures in a row and whether they were alerted.
 */
static void
outcome_save_stats(OutcomeJob *jobs, int njobs)
{
#define STATS_COLS 14
	static SPIPlanPtr plan = NULL;
	Oid               types[STATS_COLS] = {INT8ARRAYOID, INT4ARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID,
										   TEXTARRAYOID, INTERVALARRAYOID, TIMESTAMPTZARRAYOID, INT8ARRAYOID,
										   INT8ARRAYOID, INT8ARRAYOID, INTERVALARRAYOID, INT4ARRAYOID,
										   BOOLARRAYOID, TIMESTAMPTZARRAYOID};
	Oid               elem[STATS_COLS] = {INT8OID, INT4OID, TIMESTAMPTZOID, TEXTOID, TEXTOID, INTERVALOID,
										  TIMESTAMPTZOID, INT8OID, INT8OID, INT8OID, INTERVALOID, INT4OID,
										  BOOLOID, TIMESTAMPTZOID};
	Datum             values[STATS_COLS];
	Datum            *cols[STATS_COLS];
	bool             *nulls[STATS_COLS];
	int               m = 0;
	int               dims[1];
	int               lbs[1] = {1};

	for (int c = 0; c < STATS_COLS; c++)
	{
		cols[c] = palloc0(sizeof(Datum) * njobs);
		nulls[c] = palloc0(sizeof(bool) * njobs);
	}
	for (int i = 0; i < njobs; i++)
	{
		OutcomeJob         *job = &jobs[i];
		const ChimeOutcome *l = job->last;

		if (!job->known || !job->changed)
			continue;
		cols[0][m] = Int64GetDatum(job->jobid);
		cols[1][m] = Int32GetDatum(job->running);
		for (int c = 2; c <= 6; c++)
			nulls[c][m] = l == NULL;
		if (l)
		{
			cols[2][m] = TimestampTzGetDatum(l->end_time);
			cols[3][m] = CStringGetTextDatum(l->status);
			nulls[4][m] = l->message == NULL;
			if (l->message)
				cols[4][m] = CStringGetTextDatum(l->message);
			nulls[5][m] = l->start_time == 0;
			cols[5][m] = outcome_interval(l->end_time - l->start_time);
			nulls[6][m] = job->last_success == 0;
			cols[6][m] = TimestampTzGetDatum(job->last_success);
		}
		cols[7][m] = Int64GetDatum(job->runs);
		cols[8][m] = Int64GetDatum(job->successes);
		cols[9][m] = Int64GetDatum(job->failures);
		cols[10][m] = outcome_interval(job->duration_us);
		cols[11][m] = Int32GetDatum(job->consecutive_failures);
		cols[12][m] = BoolGetDatum(job->alerted);
		nulls[13][m] = l == NULL || l->start_time == 0;
		if (l)
			cols[13][m] = TimestampTzGetDatum(l->start_time);
		m++;
	}
	if (m == 0)
		return;
	dims[0] = m;
	for (int c = 0; c < STATS_COLS; c++)
	{
		int16 len;
		bool  byval;
		char  align;

		get_typlenbyvalalign(elem[c], &len, &byval, &align);
		values[c] = PointerGetDatum(construct_md_array(cols[c], nulls[c], 1, dims, lbs, elem[c], len, byval, align));
	}
	if (SPI_execute_plan(chime_plan(&plan,
									"INSERT INTO cron.job_stats AS s (jobid, running, last_start, last_end, last_status, "
									"last_message, last_duration, last_success, total_runs, total_successes, "
									"total_failures, total_duration, consecutive_failures, alerted) "
									"SELECT id, run, st, le, ls, lm, ld, lsu, tr, ts, tf, td, cf, al FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3), "
									"pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6), pg_catalog.unnest($7), "
									"pg_catalog.unnest($8), pg_catalog.unnest($9), pg_catalog.unnest($10), pg_catalog.unnest($11), "
									"pg_catalog.unnest($12), pg_catalog.unnest($13), pg_catalog.unnest($14)) "
									"AS x(id, run, le, ls, lm, ld, lsu, tr, ts, tf, td, cf, al, st) "
									"ON CONFLICT (jobid) DO UPDATE SET "
									"running = GREATEST(s.running OPERATOR(pg_catalog.+) excluded.running, 0), "
									"last_start = GREATEST(s.last_start, excluded.last_start), "
									"last_end = coalesce(excluded.last_end, s.last_end), "
									"last_status = coalesce(excluded.last_status, s.last_status), "
									"last_message = CASE WHEN excluded.last_end IS NULL THEN s.last_message ELSE excluded.last_message END, "
									"last_duration = CASE WHEN excluded.last_end IS NULL THEN s.last_duration ELSE excluded.last_duration END, "
									"last_success = coalesce(excluded.last_success, s.last_success), "
									"total_runs = s.total_runs OPERATOR(pg_catalog.+) excluded.total_runs, "
									"total_successes = s.total_successes OPERATOR(pg_catalog.+) excluded.total_successes, "
									"total_failures = s.total_failures OPERATOR(pg_catalog.+) excluded.total_failures, "
									"total_duration = s.total_duration OPERATOR(pg_catalog.+) excluded.total_duration, "
									"consecutive_failures = excluded.consecutive_failures, alerted = excluded.alerted",
									STATS_COLS, types),
						 values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not update the statistics of %d jobs", m);
}

/*
 * Attempts that ended, in the order they ended, recorded in this
 * transaction: log them, count them, and after the final outcome of a run
 * fire what follows it.
 */
void
chime_outcomes_record(const ChimeOutcome *o, int n)
{
	int         njobs;
	OutcomeJob *jobs;

	if (n == 0)
		return;
	jobs = outcome_jobs(o, n, &njobs);
	for (int i = 0; i < n; i++)
	{
		OutcomeJob    *job = outcome_job(jobs, njobs, o[i].jobid);
		bool           ok = strcmp(o[i].status, "succeeded") == 0;
		bool           recovered = false;
		StringInfoData payload;

		outcome_log(&o[i], job);
		if (o[i].counted)
		{
			job->running--;
			job->changed = true;
		}
		if (!o[i].final || !job->known || (!ok && strcmp(o[i].status, "failed") != 0))
			continue;

		job->changed = true;
		job->last = &o[i];
		job->runs++;
		if (o[i].start_time != 0)
			job->duration_us += o[i].end_time - o[i].start_time;
		if (ok)
		{
			job->successes++;
			job->last_success = o[i].end_time;
			recovered = job->alerted;
			job->consecutive_failures = 0;
			job->alerted = false;
		}
		else
		{
			job->failures++;
			job->consecutive_failures++;
			if (job->consecutive_failures % Max(job->alert_after, 1) == 0)
				job->alerted = true;
		}

		if (!job->notify_channel && !(ok ? job->on_success || (recovered && job->on_failure) : job->on_failure != NULL))
			continue;
		initStringInfo(&payload);
		outcome_payload(&payload, &o[i], job, recovered);
		if (job->notify_channel)
			outcome_notify(job, payload.data);
		if (ok && job->on_success)
			outcome_start_hook(job, job->on_success, &o[i], payload.data);
		if (job->on_failure &&
			(ok ? recovered : job->consecutive_failures % Max(job->alert_after, 1) == 0))
			outcome_start_hook(job, job->on_failure, &o[i], payload.data);
	}
	outcome_save_stats(jobs, njobs);
}

/*
 * The final outcomes of runs already recorded (a run a restart found
 * committed, a failed attempt whose retry will not be made): read back
 * from their rows, then as chime_outcomes_record.
 */
void
chime_outcomes_of_runs(const int64 *runids, int n)
{
	Oid           types[1] = {INT8ARRAYOID};
	Datum         values[1];
	ChimeOutcome *o;
	int           m;

	if (n == 0)
		return;
	values[0] = chime_int8_array(runids, n);
	if (SPI_execute_with_args("SELECT runid, jobid, status, attempt, scheduled_time, start_time, end_time, "
							  "run_key, return_message, http_status, trigger FROM cron.job_run_details "
							  "WHERE runid OPERATOR(pg_catalog.=) ANY ($1) "
							  "AND status OPERATOR(pg_catalog.=) ANY ('{succeeded,failed}'::pg_catalog.text[]) "
							  "ORDER BY end_time, runid",
							  1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read %d run outcomes", n);
	m = (int) SPI_processed;
	o = palloc0(sizeof(ChimeOutcome) * (m + 1));
	for (int i = 0; i < m; i++)
	{
		HeapTuple tup = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;
		bool      isnull;
		Datum     d;

		o[i].runid = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		o[i].jobid = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		o[i].status = SPI_getvalue(tup, desc, 3);
		o[i].final = true;
		o[i].attempt = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
		d = SPI_getbinval(tup, desc, 5, &isnull);
		o[i].scheduled_time = isnull ? 0 : DatumGetTimestampTz(d);
		d = SPI_getbinval(tup, desc, 6, &isnull);
		o[i].start_time = isnull ? 0 : DatumGetTimestampTz(d);
		d = SPI_getbinval(tup, desc, 7, &isnull);
		o[i].end_time = isnull ? chime_now() : DatumGetTimestampTz(d);
		o[i].run_key = SPI_getvalue(tup, desc, 8);
		o[i].message = SPI_getvalue(tup, desc, 9);
		d = SPI_getbinval(tup, desc, 10, &isnull);
		o[i].http_status = isnull ? 0 : DatumGetInt32(d);
		o[i].trigger = SPI_getvalue(tup, desc, 11);
	}
	chime_outcomes_record(o, m);
}

/*
 * Attempts started in this transaction (jobids[i] at at[i]): counted
 * running, and the jobs' last start.  One statement for all.
 */
void
chime_stats_started(const int64 *jobids, const TimestampTz *at, int n)
{
	static SPIPlanPtr plan = NULL;
	Oid               types[2] = {INT8ARRAYOID, TIMESTAMPTZARRAYOID};
	Datum             values[2];
	Datum            *ts;

	if (n == 0)
		return;
	ts = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
		ts[i] = TimestampTzGetDatum(at[i]);
	values[0] = chime_int8_array(jobids, n);
	values[1] = PointerGetDatum(construct_array(ts, n, TIMESTAMPTZOID, 8, true, TYPALIGN_DOUBLE));
	/* only jobs that exist: a job unscheduled meanwhile leaves no row behind */
	if (SPI_execute_plan(chime_plan(&plan,
									"INSERT INTO cron.job_stats AS s (jobid, running, last_start) "
									"SELECT x.id, pg_catalog.count(*), pg_catalog.max(x.at) "
									"FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS x(id, at) "
									"WHERE EXISTS (SELECT 1 FROM cron.job j WHERE j.jobid OPERATOR(pg_catalog.=) x.id) "
									"GROUP BY x.id "
									"ON CONFLICT (jobid) DO UPDATE SET "
									"running = s.running OPERATOR(pg_catalog.+) excluded.running, "
									"last_start = GREATEST(s.last_start, excluded.last_start)",
									2, types),
						 values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not count %d runs started", n);
}

/* At scheduler start, nothing is running. */
void
chime_stats_reset_running(void)
{
	if (SPI_execute("UPDATE cron.job_stats SET running = 0 WHERE running OPERATOR(pg_catalog.<>) 0",
					false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not reset the running counts");
}

/*
 * The statistics of jobs no longer in cron.job go: of the jobs 'jobids'
 * (NULL: of any job).  Rows a session holds are passed over, never waited
 * for (a later reload takes them).
 */
void
chime_stats_forget_gone(const int64 *jobids, int n)
{
	Oid   types[1] = {INT8ARRAYOID};
	Datum values[1] = {chime_int8_array(jobids, jobids ? n : 0)};
	if (SPI_execute_with_args(psprintf("DELETE FROM cron.job_stats s USING (SELECT x.jobid FROM cron.job_stats x "
									   "WHERE %s NOT EXISTS (SELECT 1 FROM cron.job j "
									   "WHERE j.jobid OPERATOR(pg_catalog.=) x.jobid) "
									   "FOR UPDATE SKIP LOCKED) g WHERE s.jobid OPERATOR(pg_catalog.=) g.jobid",
									   jobids ? "x.jobid OPERATOR(pg_catalog.=) ANY ($1) AND" : ""),
							  jobids ? 1 : 0, types, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not forget the statistics of jobs unscheduled");
}
