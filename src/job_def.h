/*-------------------------------------------------------------------------
 *
 * job_def.h
 *	  What a row of cron.job means: the one decoder of a job's settings
 *	  (job_def.c).
 *
 * A caller selects CHIME_JOB_DEF_COLUMNS (plus "command" when it wants
 * the command), resolves the columns it wants by name once per result
 * (chime_job_def_map), and decodes each row (chime_job_def_decode).  The
 * decoder never raises for a bad row: it says which field is bad, and the
 * caller chooses between an ERROR (chime_job_def_raise, the API's texts)
 * and a WARNING.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHIME_JOB_DEF_H
#define CHIME_JOB_DEF_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "lib/stringinfo.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "occurrence.h"

/*
 * The fields of a job definition, in the order they are decoded (so the
 * first bad one reported is the first bad one in this order).
 */
typedef enum ChimeJobField
{
	CHIME_JOB_JOBID,
	CHIME_JOB_ACTIVE,
	CHIME_JOB_SCHEDULE,
	CHIME_JOB_TIMEZONE,
	CHIME_JOB_RUN_WINDOW,
	CHIME_JOB_DST_GAP,
	CHIME_JOB_START_AT,
	CHIME_JOB_END_AT,
	CHIME_JOB_JITTER,
	CHIME_JOB_DATABASE,
	CHIME_JOB_USERNAME,
	CHIME_JOB_OVERLAP,
	CHIME_JOB_TIMEOUT,
	CHIME_JOB_CATCHUP,
	CHIME_JOB_MAX_ATTEMPTS,
	CHIME_JOB_RETRY_DELAY,
	CHIME_JOB_ONCE_PER,
	CHIME_JOB_CONCURRENCY_KEY,
	CHIME_JOB_CONCURRENCY_LIMIT,
	CHIME_JOB_KIND,
	CHIME_JOB_COMMAND,
	CHIME_JOB_URL,
	CHIME_JOB_METHOD,
	CHIME_JOB_HEADERS,
	CHIME_JOB_BODY,
	CHIME_JOB_NFIELDS
} ChimeJobField;

#define CHIME_JOB_BIT(f) ((uint32) 1 << (f))

/* What decides a job's instants */
#define CHIME_JOB_TIMING_FIELDS_1_0 \
	(CHIME_JOB_BIT(CHIME_JOB_SCHEDULE) | CHIME_JOB_BIT(CHIME_JOB_TIMEZONE) | \
	 CHIME_JOB_BIT(CHIME_JOB_RUN_WINDOW) | CHIME_JOB_BIT(CHIME_JOB_DST_GAP))
#define CHIME_JOB_TIMING_FIELDS \
	(CHIME_JOB_TIMING_FIELDS_1_0 | CHIME_JOB_BIT(CHIME_JOB_START_AT) | \
	 CHIME_JOB_BIT(CHIME_JOB_END_AT) | CHIME_JOB_BIT(CHIME_JOB_JITTER))

/*
 * What decides when and how a job runs, except its command: the fields
 * whose text chime_job_def_key() joins (the scheduler's job classes).
 */
#define CHIME_JOB_CLASS_FIELDS \
	(CHIME_JOB_TIMING_FIELDS | CHIME_JOB_BIT(CHIME_JOB_DATABASE) | \
	 CHIME_JOB_BIT(CHIME_JOB_USERNAME) | CHIME_JOB_BIT(CHIME_JOB_OVERLAP) | \
	 CHIME_JOB_BIT(CHIME_JOB_TIMEOUT) | CHIME_JOB_BIT(CHIME_JOB_CATCHUP) | \
	 CHIME_JOB_BIT(CHIME_JOB_MAX_ATTEMPTS) | CHIME_JOB_BIT(CHIME_JOB_RETRY_DELAY) | \
	 CHIME_JOB_BIT(CHIME_JOB_ONCE_PER) | CHIME_JOB_BIT(CHIME_JOB_CONCURRENCY_KEY) | \
	 CHIME_JOB_BIT(CHIME_JOB_CONCURRENCY_LIMIT) | \
	 CHIME_JOB_BIT(CHIME_JOB_KIND))

/*
 * The select list of every field but the command and an HTTP job's
 * request (which can be large, and are read only by those who need them:
 * add ", command" or ", url, method, headers, body" to decode them).
 */
#define CHIME_JOB_DEF_COLUMNS \
	"jobid, active, schedule, timezone, run_window, dst_gap, database, username, " \
	"overlap, timeout, catchup, max_attempts, retry_delay, once_per, " \
	"concurrency_key, kind"

/*
 * The same with the columns of version 1.1 (start_at, end_at, jitter):
 * what the scheduler and the functions of 1.1 read.  The functions that
 * version 1.0 also has read CHIME_JOB_DEF_COLUMNS and the timing fields
 * without the bounds (CHIME_JOB_TIMING_FIELDS_1_0) when chime_job_has_bounds()
 * says the catalog is still 1.0's.
 */
#define CHIME_JOB_DEF_COLUMNS_1_1 \
	"jobid, active, schedule, timezone, run_window, dst_gap, database, username, " \
	"overlap, timeout, catchup, max_attempts, retry_delay, once_per, " \
	"concurrency_key, kind, start_at, end_at, jitter, concurrency_limit"

/* Has cron.job the columns of 1.1 (the extension is updated)? */
extern bool chime_job_has_bounds(void);

/*
 * Where the wanted fields are in a result: resolved by column name once
 * per tuple descriptor (once per batch of a cursor), not per row.
 */
typedef struct ChimeJobDefMap
{
	TupleDesc desc;
	uint32    fields;                    /* the fields to decode (CHIME_JOB_BIT) */
	int       attnum[CHIME_JOB_NFIELDS]; /* 0: not wanted */
} ChimeJobDefMap;

typedef enum ChimeJobKind
{
	CHIME_JOB_SQL,
	CHIME_JOB_HTTP
} ChimeJobKind;

/*
 * A decoded job.  Fields not decoded, and fields that are invalid, keep
 * neutral values (zero, NULL, no window, no once_per).  Strings are
 * palloc'd in the caller's memory context.
 */
typedef struct ChimeJobDef
{
	uint32 fields;  /* the fields decoded */
	uint32 invalid; /* those of them that are invalid */

	int64        jobid;
	bool         active;
	ChimeTiming  timing;   /* schedule, zone, run window, dst_gap, start/end, jitter */
	TimestampTz  start_at; /* DT_NOBEGIN: none */
	TimestampTz  end_at;   /* DT_NOEND: none */
	char        *schedule_text;
	const char  *zone_name;   /* its timezone, or cron.timezone when NULL */
	char        *window_text; /* NULL: no run window */
	char        *database;
	char        *username;
	char         overlap;    /* 's'kip, 'b'uffer_one, 'a'llow */
	int64        timeout_us; /* 0: none */
	int64        catchup_us;
	int32        max_attempts;
	int64        retry_delay_us;
	ChimeOncePer once_per;
	char        *once_per_text;     /* NULL: none */
	char        *concurrency_key;   /* NULL: none */
	int32        concurrency_limit; /* runs that may hold it at once (1 when not decoded) */
	ChimeJobKind kind;
	char        *command;
	char        *url; /* an HTTP job's request; NULL for SQL jobs */
	char        *method;
	Jsonb       *headers;
	char        *body; /* NULL: none */
} ChimeJobDef;

/* Why a row does not decode: its first invalid field, in ChimeJobField order */
typedef struct ChimeJobDefError
{
	ChimeJobField field;  /* CHIME_JOB_NFIELDS: none */
	const char   *column; /* the field's column name */
	const char   *value;  /* its value as text ("NULL" for a null) */
	ChimeError    err;    /* detail ("" if none) and hint */
} ChimeJobDefError;

extern void  chime_job_def_map(ChimeJobDefMap *map, TupleDesc desc, uint32 fields);
extern bool  chime_job_def_decode(const ChimeJobDefMap *map, HeapTuple tup, ChimeJobDef *def,
								  ChimeJobDefError *err);
extern int64 chime_job_def_jobid(const ChimeJobDefMap *map, HeapTuple tup);
extern void  chime_job_def_key(const ChimeJobDefMap *map, HeapTuple tup, StringInfo key);
extern void  chime_job_def_raise(const ChimeJobDefError *err) pg_attribute_noreturn();

/* The zone of a timezone column (NULL: cron.timezone); false if unusable */
extern bool chime_job_zone(const char *timezone, const ChimeZone **zone, ChimeJobDefError *err);

/* start_at (start) or end_at as ChimeTiming's bound in whole seconds (0: none) */
extern int64 chime_job_bound_seconds(TimestampTz t, bool start);

/* An interval as microseconds, months of 30 days; false if < 0 or > max_us */
extern bool chime_job_interval_us(Datum interval, int64 max_us, int64 *us);

#endif /* CHIME_JOB_DEF_H */
