/*-------------------------------------------------------------------------
 *
 * next_runs.c
 *	  cron.next_runs: the instants a schedule, or a job, fires next.
 *
 * Both forms go through chime_next_run(), the same code the scheduler
 * uses, so what they list is what runs.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "api.h"
#include "job_def.h"
#include "pg_chime.h"

typedef struct NextRunsState
{
	ChimeTiming timing;
	int64       seed;   /* the job's id: its jitter (0: no job) */
	int64       cursor; /* last instant returned (or 'after') */
	int32       remaining;
} NextRunsState;

static int32
next_runs_count(FunctionCallInfo fcinfo, int argno)
{
	int32 count = PG_ARGISNULL(argno) ? 10 : PG_GETARG_INT32(argno);

	if (count < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid count: %d", count),
				 errhint("count is the number of instants to return, 0 or more.")));
	return count;
}

/* Emit the next instant of the state, or finish. */
static Datum
next_runs_step(FunctionCallInfo fcinfo)
{
	FuncCallContext *funcctx = SRF_PERCALL_SETUP();
	NextRunsState   *st = funcctx->user_fctx;
	int64            next;

	if (st->remaining > 0 && chime_next_run(&st->timing, st->seed, st->cursor, &next))
	{
		st->remaining--;
		st->cursor = next;
		SRF_RETURN_NEXT(funcctx, TimestampTzGetDatum(chime_timestamptz_from_unix(next)));
	}
	SRF_RETURN_DONE(funcctx);
}

/*
 * cron.next_runs(schedule, timezone, after, count, dst_gap, run_window):
 * a pure function of its arguments (NULL after = pg_chime's now, NULL
 * timezone = cron.timezone).
 */
PG_FUNCTION_INFO_V1(chime_next_runs_schedule);
Datum
chime_next_runs_schedule(PG_FUNCTION_ARGS)
{
	if (SRF_IS_FIRSTCALL())
	{
		FuncCallContext *funcctx = SRF_FIRSTCALL_INIT();
		MemoryContext    old = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		NextRunsState   *st = palloc0(sizeof(NextRunsState));
		ChimeError       err;
		char            *arg;

		if (PG_ARGISNULL(0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("schedule must not be null"),
					 errhint("Give a schedule such as '0 3 * * *'.")));
		arg = text_to_cstring(PG_GETARG_TEXT_PP(0));
		if (!chime_parse_schedule(arg, &st->timing.sched, &err))
			chime_invalid_value("schedule", arg, &err);

		if (PG_ARGISNULL(1))
		{
			ChimeJobDefError zerr;

			if (!chime_job_zone(NULL, &st->timing.zone, &zerr))
				chime_job_def_raise(&zerr);
		}
		else
		{
			arg = text_to_cstring(PG_GETARG_TEXT_PP(1));
			st->timing.zone = chime_zone_lookup(arg, NULL);
			if (st->timing.zone == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid time zone: %s", arg),
						 errhint("Use a zone name from pg_timezone_names, e.g. 'America/New_York' or 'UTC'.")));
		}

		st->cursor = chime_unix_from_timestamptz(PG_ARGISNULL(2) ? chime_now() : PG_GETARG_TIMESTAMPTZ(2));
		st->remaining = next_runs_count(fcinfo, 3);

		if (!PG_ARGISNULL(4))
		{
			arg = text_to_cstring(PG_GETARG_TEXT_PP(4));
			if (!chime_parse_dst_gap(arg, &st->timing.gap, &err))
				chime_invalid_value("dst_gap", arg, &err);
		}
		if (!PG_ARGISNULL(5))
		{
			arg = text_to_cstring(PG_GETARG_TEXT_PP(5));
			if (!chime_parse_window(arg, &st->timing.window, &err))
				chime_invalid_value("run_window", arg, &err);
		}

		funcctx->user_fctx = st;
		MemoryContextSwitchTo(old);
	}
	return next_runs_step(fcinfo);
}

/*
 * The timing of a job, for cron.next_runs(job_id); returns whether the job
 * is active.  Errors as cron.alter_job for a job the caller cannot see,
 * and with the API's texts for a stored value that does not decode.
 */
static bool
next_runs_job_timing(int64 jobid, ChimeTiming *timing)
{
	Oid              types[1] = {INT8OID};
	Datum            values[1] = {Int64GetDatum(jobid)};
	ApiPrivilege     saved;
	JobCaller        caller;
	ChimeJobDefMap   map;
	ChimeJobDef      def;
	ChimeJobDefError err;
	bool             bounds;

	chime_job_caller(&caller);
	chime_api_begin(&saved);
	(void) chime_job_fetch_owned(&caller, jobid, false);
	bounds = chime_job_has_bounds();
	if (SPI_execute_with_args(bounds ? "SELECT " CHIME_JOB_DEF_COLUMNS_1_1 " FROM cron.job "
									   "WHERE jobid OPERATOR(pg_catalog.=) $1" :
									   "SELECT " CHIME_JOB_DEF_COLUMNS " FROM cron.job "
									   "WHERE jobid OPERATOR(pg_catalog.=) $1",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not read job " INT64_FORMAT, jobid);
	chime_job_def_map(&map, SPI_tuptable->tupdesc,
					  CHIME_JOB_BIT(CHIME_JOB_ACTIVE) |
						  (bounds ? CHIME_JOB_TIMING_FIELDS : CHIME_JOB_TIMING_FIELDS_1_0));
	if (!chime_job_def_decode(&map, SPI_tuptable->vals[0], &def, &err))
		chime_job_def_raise(&err);
	*timing = def.timing;
	chime_api_end(&saved);
	return def.active;
}

/*
 * cron.next_runs(job_id, count): with all the job's options, from pg_chime's
 * now; an inactive job lists nothing.
 */
PG_FUNCTION_INFO_V1(chime_next_runs_job);
Datum
chime_next_runs_job(PG_FUNCTION_ARGS)
{
	if (SRF_IS_FIRSTCALL())
	{
		FuncCallContext *funcctx = SRF_FIRSTCALL_INIT();
		MemoryContext    old = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		NextRunsState   *st = palloc0(sizeof(NextRunsState));

		if (PG_ARGISNULL(0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("job_id must not be null"),
					 errhint("SELECT jobid, jobname FROM cron.job lists your jobs.")));
		st->remaining = next_runs_count(fcinfo, 1);
		if (!next_runs_job_timing(PG_GETARG_INT64(0), &st->timing))
			st->remaining = 0;
		st->seed = PG_GETARG_INT64(0);
		st->cursor = chime_unix_from_timestamptz(chime_now());

		funcctx->user_fctx = st;
		MemoryContextSwitchTo(old);
	}
	return next_runs_step(fcinfo);
}

/*
 * The timings cron._next_run decoded, by the text of their arguments, in a
 * table of NEXT_RUN_SLOTS entries each arguments' text may go to one of (a
 * later text of the same slot replaces it): no growth and no allocation
 * per row, however many distinct schedules the query meets, and jobs that
 * share their settings decode them once.
 */
#define NEXT_RUN_SLOTS 1024
#define NEXT_RUN_KEY   120

typedef struct NextRunEntry
{
	int         len; /* of key; 0: unused */
	char        key[NEXT_RUN_KEY];
	bool        valid;
	ChimeTiming timing;
} NextRunEntry;

/* What cron._next_run keeps for the rest of a query */
typedef struct NextRunCache
{
	int64            now;       /* pg_chime's now when the query first called it */
	char            *zone_name; /* the zone looked up last ("" for cron.timezone) */
	const ChimeZone *zone;      /* and what it gave (NULL: unusable) */
	NextRunEntry     slots[NEXT_RUN_SLOTS];
} NextRunCache;

/* The zone of a timezone argument (NULL: cron.timezone); the last one is kept */
static bool
next_run_zone(NextRunCache *cache, const char *name, const ChimeZone **zone)
{
	ChimeJobDefError err;

	if (cache->zone_name == NULL || strcmp(cache->zone_name, name ? name : "") != 0)
	{
		if (!chime_job_zone(name, &cache->zone, &err))
			cache->zone = NULL;
		if (cache->zone_name)
			pfree(cache->zone_name);
		cache->zone_name = MemoryContextStrdup(GetMemoryChunkContext(cache), name ? name : "");
	}
	*zone = cache->zone;
	return *zone != NULL;
}

/*
 * cron._next_run(schedule, timezone, run_window, dst_gap, start_at, end_at,
 * jitter, jobid): the instant a job with these settings starts next from
 * pg_chime's now, as
 * cron.next_runs(job_id, 1) lists it; NULL when there is none, or when a
 * stored value does not decode (the view that calls it lists every job:
 * one bad row does not hide the others).  Every row of a query is read
 * from the same now.  The timings decoded are kept for the rest of the
 * query, by their text (longer texts, or texts with control characters,
 * are decoded each time).
 */
PG_FUNCTION_INFO_V1(chime_next_run_of);
Datum
chime_next_run_of(PG_FUNCTION_ARGS)
{
	NextRunCache *cache = fcinfo->flinfo->fn_extra;
	char         *arg[4] = {NULL, NULL, NULL, NULL};
	char          key[NEXT_RUN_KEY];
	NextRunEntry  scratch;
	NextRunEntry *e = NULL;
	int           len = 0;
	int64         next;
	ChimeTiming   tm;
	int64         seed = 0;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (cache == NULL)
	{
		cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(NextRunCache));
		cache->now = chime_unix_from_timestamptz(chime_now());
		fcinfo->flinfo->fn_extra = cache;
	}
	/* the key: each argument's bytes and a mark of null or not */
	for (int i = 0; i < 4 && len >= 0; i++)
	{
		text *t = PG_ARGISNULL(i) ? NULL : PG_GETARG_TEXT_PP(i);
		int   n = t ? VARSIZE_ANY_EXHDR(t) : 0;

		/* a mark inside a value would make the key ambiguous: not kept */
		if (len + n + 1 <= (int) sizeof(key) &&
			(t == NULL || (memchr(VARDATA_ANY(t), '\x01', n) == NULL && memchr(VARDATA_ANY(t), '\x02', n) == NULL)))
		{
			memcpy(key + len, t ? VARDATA_ANY(t) : "", n);
			key[len + n] = t ? '\x02' : '\x01';
			len += n + 1;
		}
		else
			len = -1;
	}
	if (len > 0)
	{
		e = &cache->slots[hash_bytes((const unsigned char *) key, len) % NEXT_RUN_SLOTS];
		if (e->len != len || memcmp(e->key, key, len) != 0)
		{
			memcpy(e->key, key, len);
			e->len = -len; /* (decoded below) */
		}
	}
	else
	{
		e = &scratch;
		e->len = -1;
	}
	if (e->len < 0)
	{
		ChimeError err;

		e->len = -e->len;
		for (int i = 0; i < 4; i++)
			if (!PG_ARGISNULL(i))
				arg[i] = text_to_cstring(PG_GETARG_TEXT_PP(i));
		memset(&e->timing, 0, sizeof(e->timing));
		e->valid = chime_parse_schedule(arg[0], &e->timing.sched, &err) &&
			next_run_zone(cache, arg[1], &e->timing.zone) &&
			(arg[2] == NULL || chime_parse_window(arg[2], &e->timing.window, &err)) &&
			(arg[3] == NULL || chime_parse_dst_gap(arg[3], &e->timing.gap, &err));
	}
	if (!e->valid)
		PG_RETURN_NULL();
	tm = e->timing;
	if (PG_NARGS() >= 8)
	{
		int64 jitter_us = 0;

		tm.start_at = PG_ARGISNULL(4) ? 0 : chime_job_bound_seconds(PG_GETARG_TIMESTAMPTZ(4), true);
		tm.end_at = PG_ARGISNULL(5) ? 0 : chime_job_bound_seconds(PG_GETARG_TIMESTAMPTZ(5), false);
		if (!PG_ARGISNULL(6) && !chime_job_interval_us(PG_GETARG_DATUM(6), CHIME_MAX_JITTER_US, &jitter_us))
			PG_RETURN_NULL();
		tm.jitter = jitter_us / USECS_PER_SEC;
		seed = PG_ARGISNULL(7) ? 0 : PG_GETARG_INT64(7);
	}
	if (!chime_next_run(&tm, seed, cache->now, &next))
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(chime_timestamptz_from_unix(next));
}
