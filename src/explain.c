/*-------------------------------------------------------------------------
 *
 * explain.c
 *	  cron.explain: in sentences, why a job will or will not run next, and
 *	  why its last occurrences did not run.
 *
 * It reads what the scheduler reads: the job through the job decoder
 * (job_def.c); its instants through chime_next_run() from pg_chime's now,
 * as cron.next_runs(job_id) does, so the two agree; its run window, its
 * once_per key, its concurrency key and its runs going now from the
 * tables; and its history from cron.job_run_details.  Instants are given
 * in ISO form in UTC, with their reading in the job's zone where the
 * schedule or the window is local (and the zone is not UTC).
 *
 * The caller's rights are those of cron.next_runs(job_id): the job's
 * owner or a superuser; the tables are read as the catalog's owner.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "api.h"
#include "job_def.h"
#include "pg_chime.h"

/* How many next instants are listed, and skipped or missed rows shown */
#define EXPLAIN_NEXT_RUNS 3
#define EXPLAIN_HISTORY   5
/* Occurrences outside the window counted before the next run, at most */
#define EXPLAIN_MAX_OUTSIDE 1000
/* The longest part of a return_message quoted (bytes) */
#define EXPLAIN_MAX_MESSAGE 300

/* One explanation being written */
typedef struct ExplainJob
{
	MemoryContext cxt;   /* where the sentences live (the SRF's memory) */
	List         *lines; /* the sentences, C strings */
	int64         jobid;
	ChimeJobDef   def;            /* its strings in SPI memory, gone after SPI_finish */
	bool          zone_utc;       /* the job's zone is UTC: no local readings */
	bool          local_schedule; /* its instants are read on the local clock */
	int64         now;            /* pg_chime's now, Unix seconds */
} ExplainJob;

static void explain_say(ExplainJob *ex, const char *fmt, ...) pg_attribute_printf(2, 3);

/* Add one sentence. */
static void
explain_say(ExplainJob *ex, const char *fmt, ...)
{
	MemoryContext  old = MemoryContextSwitchTo(ex->cxt);
	StringInfoData buf;

	initStringInfo(&buf);
	for (;;)
	{
		va_list args;
		int     needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	ex->lines = lappend(ex->lines, buf.data);
	MemoryContextSwitchTo(old);
}

/* Unix seconds as a local calendar reading: date and time of day */
static void
explain_civil(int64 reading, int64 *y, int *mo, int *d, int *sod)
{
	int64 days = reading / 86400;

	if (reading % 86400 < 0)
		days--;
	chime_civil_from_days(days, y, mo, d);
	*sod = (int) (reading - days * 86400);
}

/*
 * Instant 't' in ISO form in UTC and, when 'local' and the job's zone is
 * not UTC, its reading there: "2028-02-29T14:00:00Z (2028-02-29 09:00
 * America/New_York)".
 */
static char *
explain_at(const ExplainJob *ex, int64 t, bool local)
{
	StringInfoData buf;
	int64          y;
	int            mo,
		d,
		sod;

	initStringInfo(&buf);
	explain_civil(t, &y, &mo, &d, &sod);
	appendStringInfo(&buf, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long) y, mo, d,
					 sod / 3600, sod / 60 % 60, sod % 60);
	if (local && !ex->zone_utc)
	{
		explain_civil(t + chime_zone_offset(ex->def.timing.zone, t), &y, &mo, &d, &sod);
		appendStringInfo(&buf, " (%04lld-%02d-%02d %02d:%02d", (long long) y, mo, d,
						 sod / 3600, sod / 60 % 60);
		if (sod % 60 != 0)
			appendStringInfo(&buf, ":%02d", sod % 60);
		appendStringInfo(&buf, " %s)", ex->def.zone_name);
	}
	return buf.data;
}

/* An instant of the job's schedule (local where the schedule is) */
static char *
explain_when(const ExplainJob *ex, int64 t)
{
	return explain_at(ex, t, ex->local_schedule);
}

/* A column of a result row, by name */
static Datum
explain_value(HeapTuple tup, TupleDesc desc, const char *column, bool *isnull)
{
	int attnum = SPI_fnumber(desc, column);

	if (attnum <= 0)
		elog(ERROR, "cron.explain: no column \"%s\" in the result", column);
	return SPI_getbinval(tup, desc, attnum, isnull);
}

static int64
explain_int8(HeapTuple tup, TupleDesc desc, const char *column)
{
	bool  isnull;
	Datum d = explain_value(tup, desc, column, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

static int32
explain_int4(HeapTuple tup, TupleDesc desc, const char *column)
{
	bool  isnull;
	Datum d = explain_value(tup, desc, column, &isnull);

	return isnull ? 0 : DatumGetInt32(d);
}

/* A text column (NULL for a null) */
static char *
explain_text(HeapTuple tup, TupleDesc desc, const char *column)
{
	bool  isnull;
	Datum d = explain_value(tup, desc, column, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* A timestamptz column as explain_at writes it ("-infinity", "infinity", "NULL" too) */
static char *
explain_ts(const ExplainJob *ex, HeapTuple tup, TupleDesc desc, const char *column, bool local)
{
	bool        isnull;
	Datum       d = explain_value(tup, desc, column, &isnull);
	TimestampTz ts;

	if (isnull)
		return pstrdup("NULL");
	ts = DatumGetTimestampTz(d);
	if (TIMESTAMP_IS_NOBEGIN(ts))
		return pstrdup("-infinity");
	if (TIMESTAMP_IS_NOEND(ts))
		return pstrdup("infinity");
	return explain_at(ex, chime_unix_from_timestamptz(ts), local);
}

/*
 * A return_message on one line, cut to EXPLAIN_MAX_MESSAGE bytes: ": " and
 * the message, or "" when there is none.
 */
static const char *
explain_message(HeapTuple tup, TupleDesc desc)
{
	char          *msg = explain_text(tup, desc, "return_message");
	StringInfoData buf;
	int            len;

	if (msg == NULL)
		return "";
	/* its lines (DETAIL, HINT, CONTEXT) joined; no full stop of its own */
	initStringInfo(&buf);
	for (const char *p = msg; *p; p++)
	{
		if (*p == '\n')
			appendStringInfoString(&buf, "; ");
		else if (*p != '\r')
			appendStringInfoChar(&buf, *p);
	}
	msg = buf.data;
	len = buf.len;
	while (len > 0 && (msg[len - 1] == '.' || isspace((unsigned char) msg[len - 1])))
		msg[--len] = '\0';
	if (len == 0)
		return "";
	if (len > EXPLAIN_MAX_MESSAGE)
	{
		len = pg_mbcliplen(msg, len, EXPLAIN_MAX_MESSAGE);
		return psprintf(": %.*s...", len, msg);
	}
	return psprintf(": %s", msg);
}

/* Run a read-only statement about the job; its rows in SPI_tuptable */
static uint64
explain_rows(const char *sql, int nargs, Oid *types, Datum *values, long limit)
{
	if (SPI_execute_with_args(sql, nargs, types, values, NULL, true, limit) != SPI_OK_SELECT)
		elog(ERROR, "cron.explain: could not read \"%s\"", sql);
	return SPI_processed;
}

/* The @at instant of the job's schedule, as the time engine reads it */
static bool
explain_at_instant(const ExplainJob *ex, int64 *t)
{
	const ChimeSchedule *s = &ex->def.timing.sched;

	/* a local reading is at most a day away from its instant */
	return chime_next_occurrence(&ex->def.timing, s->at_time - 2 * 86400, t);
}

/* Inactive: why, for an @at job that ran, and how to make it run */
static void
explain_inactive(ExplainJob *ex)
{
	Oid   types[1] = {INT8OID};
	Datum values[1] = {Int64GetDatum(ex->jobid)};
	int64 at;

	if (ex->def.timing.zone != NULL && ex->def.timing.sched.kind == CHIME_SCHED_AT &&
		explain_at_instant(ex, &at) &&
		explain_rows("SELECT runid, status, start_time FROM cron.job_run_details "
					 "WHERE jobid OPERATOR(pg_catalog.=) $1 "
					 "AND trigger OPERATOR(pg_catalog.<>) 'manual' "
					 "AND status OPERATOR(pg_catalog.<>) ALL ('{skipped,missed}'::pg_catalog.text[]) "
					 "ORDER BY start_time DESC, runid DESC LIMIT 1",
					 1, types, values, 1) == 1)
	{
		HeapTuple tup = SPI_tuptable->vals[0];
		TupleDesc desc = SPI_tuptable->tupdesc;

		explain_say(ex, "It ran as run " INT64_FORMAT " (%s) at %s, for its @at instant %s, and is now inactive.",
					explain_int8(tup, desc, "runid"), explain_text(tup, desc, "status"),
					explain_ts(ex, tup, desc, "start_time", ex->local_schedule), explain_when(ex, at));
		return;
	}
	explain_say(ex, "It is inactive: the scheduler does not start it until SELECT cron.alter_job(" INT64_FORMAT ", active => true); cron.run_now still runs it.",
				ex->jobid);
}

/*
 * The next instants, as cron.next_runs(job_id) lists them; when there is
 * none, why.  Returns how many there are (up to EXPLAIN_NEXT_RUNS).
 */
static int
explain_next_runs(ExplainJob *ex, int64 *next)
{
	const ChimeTiming *tm = &ex->def.timing;
	StringInfoData     buf;
	int64              cursor = ex->now;
	int                n = 0;
	int64              t;

	while (n < EXPLAIN_NEXT_RUNS && chime_next_run(tm, ex->jobid, cursor, &next[n]))
		cursor = next[n++];

	if (n > 0)
	{
		initStringInfo(&buf);
		for (int i = 0; i < n; i++)
			appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "", explain_when(ex, next[i]));
		explain_say(ex, "Next %s: %s.", n > 1 ? "runs" : "run", buf.data);
		if (tm->sched.kind == CHIME_SCHED_AT)
			explain_say(ex, "It is an @at job: it runs once, and then the scheduler makes it inactive.");
		return n;
	}

	/* the bounds are why, when the schedule fires past them */
	if (tm->start_at != 0 || tm->end_at != 0)
	{
		ChimeTiming unbounded = *tm;

		unbounded.start_at = unbounded.end_at = 0;
		if (chime_next_run(&unbounded, ex->jobid, ex->now, &t))
		{
			int64 end = chime_unix_from_timestamptz(ex->def.end_at);

			if (end <= ex->now)
				explain_say(ex, "Its end_at %s has passed: it will not run again.", explain_at(ex, end, true));
			else
				explain_say(ex, "No occurrence of its schedule falls between its start_at and its end_at %s: it will not run.",
							explain_at(ex, end, true));
			return 0;
		}
	}

	if (tm->sched.kind == CHIME_SCHED_AT)
	{
		if (!explain_at_instant(ex, &t))
			explain_say(ex, "Its @at reading falls in a daylight-saving gap that dst_gap '%s' skips: it never runs.",
						chime_dst_gap_name(tm->gap));
		else if (t <= ex->now)
			explain_say(ex, "Its @at instant %s has passed: it will not run.", explain_when(ex, t));
		else
			explain_say(ex, "Its @at instant %s falls outside its run_window %s: it will never start.",
						explain_when(ex, t), ex->def.window_text);
	}
	else if (tm->window.set && chime_next_occurrence(tm, ex->now, &t))
		explain_say(ex, "Its schedule never fires inside its run_window %s (%s): no instant it matches in the next 50 years falls in the window.",
					ex->def.window_text, ex->def.zone_name);
	else
		explain_say(ex, "Its schedule '%s' never fires: no instant matches it in the next 50 years.",
					ex->def.schedule_text);
	return 0;
}

/* start_at, end_at and jitter, when the job has them and it has runs ahead */
static void
explain_bounds(ExplainJob *ex, int nnext)
{
	const ChimeTiming *tm = &ex->def.timing;

	if (nnext == 0)
		return;
	if (!TIMESTAMP_IS_NOBEGIN(ex->def.start_at) && chime_unix_from_timestamptz(ex->def.start_at) > ex->now)
		explain_say(ex, "It starts at its start_at %s: no occurrence before it runs.",
					explain_at(ex, chime_unix_from_timestamptz(ex->def.start_at), true));
	if (!TIMESTAMP_IS_NOEND(ex->def.end_at))
		explain_say(ex, "It runs until its end_at %s: no occurrence at or after it runs.",
					explain_at(ex, chime_unix_from_timestamptz(ex->def.end_at), true));
	if (tm->jitter > 0)
		explain_say(ex, "Each run starts up to " INT64_FORMAT " seconds after its occurrence (jitter): a delay fixed by the job and the occurrence, and shorter than the time to the next occurrence; the instants above include it.",
					tm->jitter);
}

/* The run window: open or closed now, when it opens, what it keeps out */
static void
explain_window(ExplainJob *ex, int nnext, const int64 *next)
{
	const ChimeTiming *tm = &ex->def.timing;
	int64              opens;
	int64              t = ex->now;
	int64              first = 0;
	int                outside = 0;

	if (!tm->window.set || nnext == 0)
		return;
	if (chime_in_window(&tm->window, tm->zone, ex->now))
		explain_say(ex, "Its run_window %s (%s) is open now.", ex->def.window_text, ex->def.zone_name);
	else if (chime_window_next_open(tm, ex->now, &opens))
		explain_say(ex, "Its run_window %s (%s) is closed now; it next opens at %s.",
					ex->def.window_text, ex->def.zone_name, explain_at(ex, opens, true));
	else
		explain_say(ex, "Its run_window %s (%s) is closed now.", ex->def.window_text, ex->def.zone_name);

	/* the occurrences before the next run: all outside the window */
	while (outside < EXPLAIN_MAX_OUTSIDE && chime_next_occurrence(tm, t, &t) && t < next[0])
	{
		if (outside++ == 0)
			first = t;
	}
	if (outside == 1)
		explain_say(ex, "The next occurrence, at %s, falls outside the run_window and will not be started.",
					explain_when(ex, first));
	else if (outside > 1)
		explain_say(ex, "%s%d occurrences before the next run fall outside the run_window and will not be started, the first at %s.",
					outside == EXPLAIN_MAX_OUTSIDE ? "At least " : "", outside, explain_when(ex, first));
}

/* once_per: is the key of the next run's period claimed? */
static void
explain_key(ExplainJob *ex, int64 next)
{
	char  key[CHIME_RUN_KEY_LEN];
	Oid   types[2] = {INT8OID, TEXTOID};
	Datum values[2];

	chime_run_key(ex->def.once_per, ex->def.timing.zone, next, key);
	if (key[0] == '\0')
		return;
	values[0] = Int64GetDatum(ex->jobid);
	values[1] = CStringGetTextDatum(key);
	if (explain_rows("SELECT runid, state, claimed_at FROM cron.job_run_key "
					 "WHERE jobid OPERATOR(pg_catalog.=) $1 AND run_key OPERATOR(pg_catalog.=) $2",
					 2, types, values, 1) == 1)
	{
		HeapTuple tup = SPI_tuptable->vals[0];
		TupleDesc desc = SPI_tuptable->tupdesc;
		int64     runid = explain_int8(tup, desc, "runid");

		explain_say(ex, "Once per %s: the key %s of the next run's period is already claimed in cron.job_run_key (%s%s, claimed at %s), so the occurrences of that period will not start until SELECT cron.release_key(" INT64_FORMAT ", '%s').",
					ex->def.once_per_text, key,
					runid != 0 ? psprintf("by run " INT64_FORMAT ", state ", runid) : "state ",
					explain_text(tup, desc, "state"),
					explain_ts(ex, tup, desc, "claimed_at", false), ex->jobid, key);
	}
	else
		explain_say(ex, "Once per %s: the key %s of the next run's period is free; the run that starts first in it claims it.",
					ex->def.once_per_text, key);
}

/* concurrency_key: how many runs of the owner's jobs hold it now, and wait */
static void
explain_concurrency(ExplainJob *ex)
{
	Oid       types[2] = {TEXTOID, TEXTOID};
	Datum     values[2];
	HeapTuple tup;
	TupleDesc desc;
	int64     holding;
	int64     waiting;
	int32     limit = ex->def.concurrency_limit;

	if (ex->def.concurrency_key == NULL)
		return;
	values[0] = CStringGetTextDatum(ex->def.username);
	values[1] = CStringGetTextDatum(ex->def.concurrency_key);
	if (explain_rows("SELECT pg_catalog.count(*) FILTER (WHERE r.status OPERATOR(pg_catalog.<>) 'waiting') AS holding, "
					 "pg_catalog.count(*) FILTER (WHERE r.status OPERATOR(pg_catalog.=) 'waiting') AS waiting "
					 "FROM cron.job j JOIN cron.job_run_details r ON r.jobid OPERATOR(pg_catalog.=) j.jobid "
					 "WHERE j.username OPERATOR(pg_catalog.=) $1 "
					 "AND j.concurrency_key OPERATOR(pg_catalog.=) $2 "
					 "AND r.status OPERATOR(pg_catalog.=) ANY ('{starting,running,waiting}'::pg_catalog.text[])",
					 2, types, values, 1) != 1)
		return;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	holding = explain_int8(tup, desc, "holding");
	waiting = explain_int8(tup, desc, "waiting");
	if (holding >= limit || waiting > 0)
		explain_say(ex, "Its concurrency_key \"%s\" is full now (runs of the owner's jobs holding it: " INT64_FORMAT ", concurrency_limit %d, waiting: " INT64_FORMAT "): a run due now waits its turn (status 'waiting'), in the order of the runs' scheduled times, and is recorded missed if it cannot start within catchup.",
					ex->def.concurrency_key, holding, limit, waiting);
	else if (holding > 0)
		explain_say(ex, "Its concurrency_key \"%s\" has room now (runs of the owner's jobs holding it: " INT64_FORMAT ", concurrency_limit %d): a run due now starts.",
					ex->def.concurrency_key, holding, limit);
	else
		explain_say(ex, "Its concurrency_key \"%s\" is free now (concurrency_limit %d): no run of the owner's jobs with that key is going.",
					ex->def.concurrency_key, limit);
}

/* The job's runs going now, and what overlap does with the next occurrence */
static void
explain_running(ExplainJob *ex, int nnext, const int64 *next)
{
	Oid       types[1] = {INT8OID};
	Datum     values[1] = {Int64GetDatum(ex->jobid)};
	uint64    n;
	uint64    i;
	TupleDesc desc;

	n = explain_rows("SELECT runid, status, start_time, attempt, trigger FROM cron.job_run_details "
					 "WHERE jobid OPERATOR(pg_catalog.=) $1 "
					 "AND status OPERATOR(pg_catalog.=) ANY ('{starting,running}'::pg_catalog.text[]) "
					 "ORDER BY start_time, runid LIMIT 5",
					 1, types, values, 5);
	if (n == 0)
		return;
	desc = SPI_tuptable->tupdesc;
	for (i = 0; i < n; i++)
	{
		HeapTuple tup = SPI_tuptable->vals[i];

		explain_say(ex, "Run " INT64_FORMAT " is %s now, since %s (attempt %d, trigger %s).",
					explain_int8(tup, desc, "runid"), explain_text(tup, desc, "status"),
					explain_ts(ex, tup, desc, "start_time", false),
					explain_int4(tup, desc, "attempt"), explain_text(tup, desc, "trigger"));
	}
	if (!ex->def.active || nnext == 0)
		return;
	switch (ex->def.overlap)
	{
		case 's':
			explain_say(ex, "With overlap 'skip', the next occurrence (%s) is skipped if a run is still going then.",
						explain_when(ex, next[0]));
			break;
		case 'b':
			explain_say(ex, "With overlap 'buffer_one', one occurrence due while a run is going starts right after it ends; any more are skipped.");
			break;
		case 'a':
			explain_say(ex, "With overlap 'allow', the next occurrence (%s) starts anyway.",
						explain_when(ex, next[0]));
			break;
	}
}

/* Failed attempts whose retry is still to be made */
static void
explain_retries(ExplainJob *ex)
{
	Oid       types[1] = {INT8OID};
	Datum     values[1] = {Int64GetDatum(ex->jobid)};
	uint64    n;
	TupleDesc desc;

	n = explain_rows("SELECT runid, attempt, scheduled_time, retry_at, return_message "
					 "FROM cron.job_run_details WHERE jobid OPERATOR(pg_catalog.=) $1 "
					 "AND retry_at IS NOT NULL ORDER BY runid LIMIT 5",
					 1, types, values, 5);
	desc = SPI_tuptable->tupdesc;
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple   tup = SPI_tuptable->vals[i];
		int32       attempt = explain_int4(tup, desc, "attempt");
		bool        isnull;
		TimestampTz at = DatumGetTimestampTz(explain_value(tup, desc, "retry_at", &isnull));
		const char *when = TIMESTAMP_IS_NOBEGIN(at) ?
			"is to be made once the scheduler has set its time (retry_at is -infinity)" :
			psprintf("is due at %s", explain_ts(ex, tup, desc, "retry_at", false));

		explain_say(ex, "Attempt %d of %d (run " INT64_FORMAT ", for the occurrence at %s) failed%s; attempt %d %s.",
					attempt, ex->def.max_attempts, explain_int8(tup, desc, "runid"),
					explain_ts(ex, tup, desc, "scheduled_time", ex->local_schedule),
					explain_message(tup, desc), attempt + 1, when);
	}
}

/* The last occurrences that did not run, and the last failed run */
static void
explain_history(ExplainJob *ex)
{
	Oid       types[1] = {INT8OID};
	Datum     values[1] = {Int64GetDatum(ex->jobid)};
	uint64    n;
	TupleDesc desc;

	n = explain_rows("SELECT runid, status, scheduled_time, occurrences, return_message "
					 "FROM cron.job_run_details WHERE jobid OPERATOR(pg_catalog.=) $1 "
					 "AND status OPERATOR(pg_catalog.=) ANY ('{skipped,missed}'::pg_catalog.text[]) "
					 "ORDER BY start_time DESC, runid DESC LIMIT 6", /* EXPLAIN_HISTORY + 1 */
					 1, types, values, EXPLAIN_HISTORY + 1);
	desc = SPI_tuptable->tupdesc;
	if (!chime_log_run)
		explain_say(ex, "cron.log_run is off: skipped and missed occurrences are not recorded.");
	else if (n == 0)
		explain_say(ex, "No skipped or missed occurrence of it is recorded.");
	for (uint64 i = 0; i < n && i < EXPLAIN_HISTORY; i++)
	{
		HeapTuple tup = SPI_tuptable->vals[i];
		int32     occurrences = explain_int4(tup, desc, "occurrences");
		char     *when = explain_ts(ex, tup, desc, "scheduled_time", ex->local_schedule);

		explain_say(ex, "Run " INT64_FORMAT " %s %s%s.", explain_int8(tup, desc, "runid"),
					explain_text(tup, desc, "status"),
					occurrences > 1 ? psprintf("%d occurrences from %s", occurrences, when) :
									  psprintf("the occurrence at %s", when),
					explain_message(tup, desc));
	}
	if (n > EXPLAIN_HISTORY)
		explain_say(ex, "Older skipped or missed runs are recorded too: SELECT * FROM cron.job_run_details WHERE jobid = " INT64_FORMAT " AND status IN ('skipped', 'missed') lists them.",
					ex->jobid);

	/* a failed run: its last attempt (none after it for the same occurrence) */
	if (explain_rows("SELECT f.runid, f.attempt, f.scheduled_time, f.end_time, f.return_message "
					 "FROM cron.job_run_details f WHERE f.jobid OPERATOR(pg_catalog.=) $1 "
					 "AND f.status OPERATOR(pg_catalog.=) 'failed' AND f.retry_at IS NULL "
					 "AND NOT EXISTS (SELECT 1 FROM cron.job_run_details n "
					 "WHERE n.jobid OPERATOR(pg_catalog.=) f.jobid "
					 "AND n.scheduled_time OPERATOR(pg_catalog.=) f.scheduled_time "
					 "AND n.attempt OPERATOR(pg_catalog.>) f.attempt) "
					 "ORDER BY f.start_time DESC, f.runid DESC LIMIT 1",
					 1, types, values, 1) == 1)
	{
		HeapTuple tup = SPI_tuptable->vals[0];

		desc = SPI_tuptable->tupdesc;
		explain_say(ex, "The last failed run is run " INT64_FORMAT " (attempt %d, for the occurrence at %s), ended at %s%s.",
					explain_int8(tup, desc, "runid"), explain_int4(tup, desc, "attempt"),
					explain_ts(ex, tup, desc, "scheduled_time", ex->local_schedule),
					explain_ts(ex, tup, desc, "end_time", false), explain_message(tup, desc));
	}
}

/*
 * Explain job 'jobid' into ex->lines.  Errors as cron.next_runs(job_id)
 * for a job the caller may not see.
 */
static void
explain_job(ExplainJob *ex)
{
	Oid               types[1] = {INT8OID};
	Datum             values[1] = {Int64GetDatum(ex->jobid)};
	ApiPrivilege      saved;
	JobCaller         caller;
	ChimeJobDefMap    map;
	ChimeJobDefError  err;
	char             *jobname;
	int64             next[EXPLAIN_NEXT_RUNS];
	int               nnext = 0;
	bool              valid;
	ChimeScheduleKind kind;

	chime_job_caller(&caller);
	chime_api_begin(&saved);
	(void) chime_job_fetch_owned(&caller, ex->jobid, false);
	if (explain_rows("SELECT " CHIME_JOB_DEF_COLUMNS_1_1 ", jobname FROM cron.job "
					 "WHERE jobid OPERATOR(pg_catalog.=) $1",
					 1, types, values, 1) != 1)
		elog(ERROR, "could not read job " INT64_FORMAT, ex->jobid);
	chime_job_def_map(&map, SPI_tuptable->tupdesc,
					  CHIME_JOB_CLASS_FIELDS | CHIME_JOB_BIT(CHIME_JOB_ACTIVE));
	valid = chime_job_def_decode(&map, SPI_tuptable->vals[0], &ex->def, &err);
	jobname = explain_text(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, "jobname");
	ex->now = chime_unix_from_timestamptz(chime_now());
	kind = ex->def.timing.sched.kind;
	ex->zone_utc = ex->def.timing.zone == NULL || pg_strcasecmp(ex->def.zone_name, "UTC") == 0 ||
		pg_strcasecmp(ex->def.zone_name, "Etc/UTC") == 0;
	ex->local_schedule = kind == CHIME_SCHED_CRON ||
		(kind == CHIME_SCHED_AT && !ex->def.timing.sched.at_has_offset);

	if (jobname)
		explain_say(ex, "Job " INT64_FORMAT " \"%s\": schedule '%s'%s%s.", ex->jobid, jobname,
					ex->def.schedule_text, ex->local_schedule ? " in time zone " : "",
					ex->local_schedule ? ex->def.zone_name : "");
	else
		explain_say(ex, "Job " INT64_FORMAT ": schedule '%s'%s%s.", ex->jobid,
					ex->def.schedule_text, ex->local_schedule ? " in time zone " : "",
					ex->local_schedule ? ex->def.zone_name : "");

	if (!chime_launch_active_jobs)
		explain_say(ex, "cron.launch_active_jobs is off: no run starts, on its schedule or by cron.run_now, until it is on again; what comes due meanwhile is then handled as after downtime.");
	if (!valid)
		explain_say(ex, "It cannot be scheduled: its %s \"%s\" is invalid%s%s%s, so the scheduler does not load it and it does not run. %s",
					err.column, err.value, err.err.detail[0] ? " (" : "", err.err.detail,
					err.err.detail[0] ? ")" : "", err.err.hint);
	if (!ex->def.active)
		explain_inactive(ex);
	else if (valid && kind == CHIME_SCHED_REBOOT)
		explain_say(ex, "It runs only when the scheduler starts (@reboot), once each time; it has no next instant on the clock.");
	else if (valid)
	{
		nnext = explain_next_runs(ex, next);
		explain_bounds(ex, nnext);
		explain_window(ex, nnext, next);
		if (nnext > 0)
			explain_key(ex, next[0]);
	}
	if (valid && ex->def.active)
		explain_concurrency(ex);
	explain_running(ex, nnext, next);
	explain_retries(ex);
	explain_history(ex);
	chime_api_end(&saved);
}

/* cron.explain(job_id): one sentence per row */
PG_FUNCTION_INFO_V1(chime_explain);
Datum
chime_explain(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;
	ExplainJob      *ex;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext old;

		funcctx = SRF_FIRSTCALL_INIT();
		old = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		if (PG_ARGISNULL(0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("job_id must not be null"),
					 errhint("SELECT jobid, jobname FROM cron.job lists your jobs.")));
		ex = palloc0(sizeof(ExplainJob));
		ex->cxt = funcctx->multi_call_memory_ctx;
		ex->jobid = PG_GETARG_INT64(0);
		explain_job(ex);
		funcctx->user_fctx = ex;
		MemoryContextSwitchTo(old);
	}
	funcctx = SRF_PERCALL_SETUP();
	ex = funcctx->user_fctx;
	if (funcctx->call_cntr < (uint64) list_length(ex->lines))
	{
		/* (SRF_RETURN_NEXT counts the call before it reads its result) */
		Datum line = CStringGetTextDatum(list_nth(ex->lines, (int) funcctx->call_cntr));

		SRF_RETURN_NEXT(funcctx, line);
	}
	SRF_RETURN_DONE(funcctx);
}
