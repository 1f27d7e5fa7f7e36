/*-------------------------------------------------------------------------
 *
 * job_def.c
 *	  The one decoder of a cron.job row: columns found by name, values
 *	  parsed and range-checked, the default time zone applied.
 *
 * Everything that reads a job's settings goes through here, so that the
 * scheduler, cron.next_runs and cron.run_now agree on what a row means.
 * Decoding never raises for a bad value (a row can be written around the
 * API's checks, or a zone can leave the tz database): it marks the field
 * invalid and describes the first such field, and the caller chooses to
 * raise (chime_job_def_raise) or to warn and skip the job.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "api.h"
#include "clock.h"
#include "job_def.h"
#include "pg_chime.h"

/* Each field's column, and the type the decoder reads it as */
static const struct
{
	const char *name;
	Oid         type;
} jd_columns[CHIME_JOB_NFIELDS] = {
	[CHIME_JOB_JOBID] = {"jobid", INT8OID},
	[CHIME_JOB_ACTIVE] = {"active", BOOLOID},
	[CHIME_JOB_SCHEDULE] = {"schedule", TEXTOID},
	[CHIME_JOB_TIMEZONE] = {"timezone", TEXTOID},
	[CHIME_JOB_RUN_WINDOW] = {"run_window", TEXTOID},
	[CHIME_JOB_DST_GAP] = {"dst_gap", TEXTOID},
	[CHIME_JOB_START_AT] = {"start_at", TIMESTAMPTZOID},
	[CHIME_JOB_END_AT] = {"end_at", TIMESTAMPTZOID},
	[CHIME_JOB_JITTER] = {"jitter", INTERVALOID},
	[CHIME_JOB_DATABASE] = {"database", TEXTOID},
	[CHIME_JOB_USERNAME] = {"username", TEXTOID},
	[CHIME_JOB_OVERLAP] = {"overlap", TEXTOID},
	[CHIME_JOB_TIMEOUT] = {"timeout", INTERVALOID},
	[CHIME_JOB_CATCHUP] = {"catchup", INTERVALOID},
	[CHIME_JOB_MAX_ATTEMPTS] = {"max_attempts", INT4OID},
	[CHIME_JOB_RETRY_DELAY] = {"retry_delay", INTERVALOID},
	[CHIME_JOB_ONCE_PER] = {"once_per", TEXTOID},
	[CHIME_JOB_CONCURRENCY_KEY] = {"concurrency_key", TEXTOID},
	[CHIME_JOB_CONCURRENCY_LIMIT] = {"concurrency_limit", INT4OID},
	[CHIME_JOB_KIND] = {"kind", TEXTOID},
	[CHIME_JOB_COMMAND] = {"command", TEXTOID},
	[CHIME_JOB_URL] = {"url", TEXTOID},
	[CHIME_JOB_METHOD] = {"method", TEXTOID},
	[CHIME_JOB_HEADERS] = {"headers", JSONBOID},
	[CHIME_JOB_BODY] = {"body", TEXTOID},
};

static const char *const jd_zone_hint =
	"Use a zone name from pg_timezone_names, e.g. 'America/New_York' or 'UTC'.";

/*
 * Where the wanted fields are in results of 'desc'.  A wanted field whose
 * column is missing, or of another type, is a bug of the caller's query.
 */
void
chime_job_def_map(ChimeJobDefMap *map, TupleDesc desc, uint32 fields)
{
	memset(map, 0, sizeof(*map));
	map->desc = desc;
	map->fields = fields;
	for (int f = 0; f < CHIME_JOB_NFIELDS; f++)
	{
		int attnum;

		if ((fields & CHIME_JOB_BIT(f)) == 0)
			continue;
		attnum = SPI_fnumber(desc, jd_columns[f].name);
		if (attnum <= 0)
			elog(ERROR, "job definition: no column \"%s\" in the result", jd_columns[f].name);
		if (SPI_gettypeid(desc, attnum) != jd_columns[f].type)
			elog(ERROR, "job definition: column \"%s\" is of type %u", jd_columns[f].name,
				 SPI_gettypeid(desc, attnum));
		map->attnum[f] = attnum;
	}
}

/* A text field (NULL for a null) */
static char *
jd_text(const ChimeJobDefMap *map, HeapTuple tup, ChimeJobField f)
{
	bool  isnull;
	Datum d = SPI_getbinval(tup, map->desc, map->attnum[f], &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* The name a timezone column stands for: its own, or cron.timezone when NULL */
static const char *
jd_zone_name(const char *timezone)
{
	return timezone ? timezone : chime_timezone;
}

/* Field f is invalid; the first invalid field is the one described. */
static void
jd_fail(ChimeJobDef *def, ChimeJobDefError *err, ChimeJobField f, const char *value,
		const ChimeError *why)
{
	def->invalid |= CHIME_JOB_BIT(f);
	if (err->field != CHIME_JOB_NFIELDS)
		return;
	err->field = f;
	err->column = jd_columns[f].name;
	err->value = value ? value : "NULL";
	err->err = *why;
}

/* A field that must not be null, and is */
static void
jd_fail_null(ChimeJobDef *def, ChimeJobDefError *err, ChimeJobField f)
{
	ChimeError why;

	chime_error_set(&why, "Set it with cron.alter_job.", "%s is null", jd_columns[f].name);
	jd_fail(def, err, f, NULL, &why);
}

/*
 * The zone a job runs in: its timezone column, or cron.timezone when that
 * is NULL.  False, with the reason in *err, for a name the tz database
 * does not know (a zone removed from it, say).
 */
bool
chime_job_zone(const char *timezone, const ChimeZone **zone, ChimeJobDefError *err)
{
	const char *name = jd_zone_name(timezone);

	*zone = chime_zone_lookup(name, NULL);
	if (*zone != NULL)
		return true;
	err->field = CHIME_JOB_TIMEZONE;
	err->column = jd_columns[CHIME_JOB_TIMEZONE].name;
	err->value = name ? name : "NULL";
	chime_error_set(&err->err, jd_zone_hint, "%s", "");
	return false;
}

/*
 * An interval as microseconds, a month counted as 30 days; false (and 0)
 * when it is negative or longer than max_us.  Computed in double, so no
 * stored value can overflow it.
 */
bool
chime_job_interval_us(Datum interval, int64 max_us, int64 *us)
{
	Interval *iv = DatumGetIntervalP(interval);
	double    v;

	*us = 0;
	v = (double) iv->time + (double) iv->day * (double) USECS_PER_DAY +
		(double) iv->month * (double) (DAYS_PER_MONTH * USECS_PER_DAY);
	if (v < 0 || v > (double) max_us)
		return false;
	*us = (int64) v;
	return true;
}

/* An interval field (NULL: 0), from 0 to max_us */
static void
jd_interval(const ChimeJobDefMap *map, HeapTuple tup, ChimeJobField f, int64 max_us,
			int64 *us, ChimeJobDef *def, ChimeJobDefError *err)
{
	bool       isnull;
	Datum      d = SPI_getbinval(tup, map->desc, map->attnum[f], &isnull);
	ChimeError why;

	*us = 0;
	if (isnull || chime_job_interval_us(d, max_us, us))
		return;
	chime_error_set(&why, "Set it with cron.alter_job.", "%s is out of range: from 0 to %lld days",
					jd_columns[f].name, (long long) (max_us / USECS_PER_DAY));
	jd_fail(def, err, f, SPI_getvalue(tup, map->desc, map->attnum[f]), &why);
}

bool
chime_job_has_bounds(void)
{
	Oid nsp = get_namespace_oid("cron", true);
	Oid rel = OidIsValid(nsp) ? get_relname_relid("job", nsp) : InvalidOid;

	return OidIsValid(rel) && get_attnum(rel, "jitter") != InvalidAttrNumber;
}

/*
 * start_at or end_at as the engine's bound: the first whole second at or
 * after it (an occurrence is a whole second), 0 for none.  A start before
 * 1970 bounds nothing; an end before it excludes every occurrence, and so
 * does a start of 'infinity' (the API refuses infinite bounds; a row
 * written around it may have them).
 */
int64
chime_job_bound_seconds(TimestampTz t, bool start)
{
	int64 s;

	if (TIMESTAMP_IS_NOBEGIN(t))
		return start ? 0 : 1;
	if (TIMESTAMP_IS_NOEND(t))
		return start ? ((int64) 1 << 40) : 0;
	s = chime_unix_from_timestamptz(t);
	if (chime_timestamptz_from_unix(s) < t)
		s++;
	return s < 1 ? 1 : s;
}

/* One field of the row into def */
static void
jd_decode_field(const ChimeJobDefMap *map, HeapTuple tup, ChimeJobField f, ChimeJobDef *def,
				ChimeJobDefError *err)
{
	ChimeError why;
	bool       isnull;
	Datum      d;
	char      *text;

	switch (f)
	{
		case CHIME_JOB_JOBID:
			d = SPI_getbinval(tup, map->desc, map->attnum[f], &isnull);
			if (isnull)
				jd_fail_null(def, err, f);
			else
				def->jobid = DatumGetInt64(d);
			break;
		case CHIME_JOB_ACTIVE:
			d = SPI_getbinval(tup, map->desc, map->attnum[f], &isnull);
			def->active = !isnull && DatumGetBool(d);
			break;
		case CHIME_JOB_SCHEDULE:
			def->schedule_text = jd_text(map, tup, f);
			if (def->schedule_text == NULL)
				jd_fail_null(def, err, f);
			else if (!chime_parse_schedule(def->schedule_text, &def->timing.sched, &why))
			{
				memset(&def->timing.sched, 0, sizeof(def->timing.sched));
				jd_fail(def, err, f, def->schedule_text, &why);
			}
			break;
		case CHIME_JOB_TIMEZONE:
		{
			ChimeJobDefError zerr;

			text = jd_text(map, tup, f);
			def->zone_name = jd_zone_name(text);
			if (!chime_job_zone(text, &def->timing.zone, &zerr))
				jd_fail(def, err, f, zerr.value, &zerr.err);
		}
		break;
		case CHIME_JOB_RUN_WINDOW:
			def->window_text = jd_text(map, tup, f);
			if (def->window_text &&
				!chime_parse_window(def->window_text, &def->timing.window, &why))
			{
				memset(&def->timing.window, 0, sizeof(def->timing.window));
				jd_fail(def, err, f, def->window_text, &why);
			}
			break;
		case CHIME_JOB_DST_GAP:
			text = jd_text(map, tup, f);
			if (text == NULL)
				jd_fail_null(def, err, f);
			else if (!chime_parse_dst_gap(text, &def->timing.gap, &why))
			{
				def->timing.gap = CHIME_GAP_END;
				jd_fail(def, err, f, text, &why);
			}
			break;
		case CHIME_JOB_START_AT:
			d = SPI_getbinval(tup, map->desc, map->attnum[f], &isnull);
			def->start_at = isnull ? DT_NOBEGIN : DatumGetTimestampTz(d);
			def->timing.start_at = chime_job_bound_seconds(def->start_at, true);
			break;
		case CHIME_JOB_END_AT:
			d = SPI_getbinval(tup, map->desc, map->attnum[f], &isnull);
			def->end_at = isnull ? DT_NOEND : DatumGetTimestampTz(d);
			def->timing.end_at = chime_job_bound_seconds(def->end_at, false);
			break;
		case CHIME_JOB_JITTER:
		{
			int64 us;

			jd_interval(map, tup, f, CHIME_MAX_JITTER_US, &us, def, err);
			def->timing.jitter = us / USECS_PER_SEC;
		}
		break;
		case CHIME_JOB_DATABASE:
			def->database = jd_text(map, tup, f);
			if (def->database == NULL)
				jd_fail_null(def, err, f);
			break;
		case CHIME_JOB_USERNAME:
			def->username = jd_text(map, tup, f);
			if (def->username == NULL)
				jd_fail_null(def, err, f);
			break;
		case CHIME_JOB_OVERLAP:
			text = jd_text(map, tup, f);
			if (text == NULL)
				jd_fail_null(def, err, f);
			else if (strcmp(text, "skip") == 0 || strcmp(text, "buffer_one") == 0 ||
					 strcmp(text, "allow") == 0)
				def->overlap = text[0];
			else
			{
				chime_error_set(&why, "overlap is one of 'skip', 'buffer_one' or 'allow'.",
								"\"%s\" is not an overlap rule", text);
				jd_fail(def, err, f, text, &why);
			}
			break;
		case CHIME_JOB_TIMEOUT:
			jd_interval(map, tup, f, CHIME_MAX_TIMEOUT_US, &def->timeout_us, def, err);
			break;
		case CHIME_JOB_CATCHUP:
			jd_interval(map, tup, f, CHIME_MAX_CATCHUP_US, &def->catchup_us, def, err);
			break;
		case CHIME_JOB_RETRY_DELAY:
			jd_interval(map, tup, f, CHIME_MAX_RETRY_DELAY_US, &def->retry_delay_us, def, err);
			break;
		case CHIME_JOB_CONCURRENCY_LIMIT:
			d = SPI_getbinval(tup, map->desc, map->attnum[f], &isnull);
			if (isnull)
				jd_fail_null(def, err, f);
			else if (DatumGetInt32(d) < 1 || DatumGetInt32(d) > CHIME_MAX_CONCURRENCY_LIMIT)
			{
				chime_error_set(&why, "concurrency_limit is how many runs may hold the concurrency_key at once, from 1 to 64.",
								"concurrency_limit is out of range: from 1 to 64");
				jd_fail(def, err, f, psprintf("%d", DatumGetInt32(d)), &why);
			}
			else
				def->concurrency_limit = DatumGetInt32(d);
			break;
		case CHIME_JOB_MAX_ATTEMPTS:
			d = SPI_getbinval(tup, map->desc, map->attnum[f], &isnull);
			if (isnull)
				jd_fail_null(def, err, f);
			else if (DatumGetInt32(d) < 1 || DatumGetInt32(d) > 100)
			{
				chime_error_set(&why, "max_attempts counts the first attempt and is from 1 to 100.",
								"max_attempts is out of range: from 1 to 100");
				jd_fail(def, err, f, psprintf("%d", DatumGetInt32(d)), &why);
			}
			else
				def->max_attempts = DatumGetInt32(d);
			break;
		case CHIME_JOB_ONCE_PER:
			def->once_per_text = jd_text(map, tup, f);
			if (!chime_parse_once_per(def->once_per_text, &def->once_per))
			{
				def->once_per = CHIME_ONCE_NONE;
				chime_error_set(&why, "once_per is one of 'day', 'week' (ISO) or 'month'.",
								"\"%s\" is not a once_per period", def->once_per_text);
				jd_fail(def, err, f, def->once_per_text, &why);
			}
			break;
		case CHIME_JOB_CONCURRENCY_KEY:
			def->concurrency_key = jd_text(map, tup, f);
			break;
		case CHIME_JOB_KIND:
			text = jd_text(map, tup, f);
			if (text == NULL)
				jd_fail_null(def, err, f);
			else if (strcmp(text, "http") == 0)
				def->kind = CHIME_JOB_HTTP;
			else if (strcmp(text, "sql") != 0)
			{
				chime_error_set(&why, "kind is 'sql' or 'http'.", "\"%s\" is not a kind of job", text);
				jd_fail(def, err, f, text, &why);
			}
			break;
		case CHIME_JOB_COMMAND:
			def->command = jd_text(map, tup, f);
			if (def->command == NULL)
				jd_fail_null(def, err, f);
			break;
		case CHIME_JOB_URL:
			def->url = jd_text(map, tup, f);
			break;
		case CHIME_JOB_METHOD:
			def->method = jd_text(map, tup, f);
			break;
		case CHIME_JOB_HEADERS:
			d = SPI_getbinval(tup, map->desc, map->attnum[f], &isnull);
			def->headers = isnull ? NULL : DatumGetJsonbPCopy(d);
			break;
		case CHIME_JOB_BODY:
			def->body = jd_text(map, tup, f);
			break;
		case CHIME_JOB_NFIELDS:
			break;
	}
}

/*
 * Decode the fields of 'map' from a row of its result.  Returns whether
 * all of them are valid; every field is decoded either way (an invalid one
 * keeps its neutral value), def->invalid tells which are not, and *err
 * describes the first of them in ChimeJobField order.  The strings are
 * palloc'd in the current memory context.
 */
bool
chime_job_def_decode(const ChimeJobDefMap *map, HeapTuple tup, ChimeJobDef *def,
					 ChimeJobDefError *err)
{
	memset(def, 0, sizeof(*def));
	def->start_at = DT_NOBEGIN;
	def->end_at = DT_NOEND;
	def->concurrency_limit = 1;
	def->fields = map->fields;
	def->overlap = 's';
	def->max_attempts = 1;
	err->field = CHIME_JOB_NFIELDS;
	err->column = NULL;
	err->value = NULL;
	err->err.detail[0] = '\0';
	err->err.hint[0] = '\0';

	for (int f = 0; f < CHIME_JOB_NFIELDS; f++)
	{
		if (map->fields & CHIME_JOB_BIT(f))
			jd_decode_field(map, tup, (ChimeJobField) f, def, err);
	}
	return def->invalid == 0;
}

/* The jobid of a row (the map must have it) */
int64
chime_job_def_jobid(const ChimeJobDefMap *map, HeapTuple tup)
{
	bool  isnull;
	Datum d;

	Assert(map->fields & CHIME_JOB_BIT(CHIME_JOB_JOBID));
	d = SPI_getbinval(tup, map->desc, map->attnum[CHIME_JOB_JOBID], &isnull);
	return isnull ? 0 : DatumGetInt64(d);
}

/*
 * Append to 'key' the row's CHIME_JOB_CLASS_FIELDS among the map's, each
 * as it is stored (no output function: the scheduler keys a million rows
 * at start), the timezone as the name of the zone it stands for: rows with
 * equal keys decode alike (under the same cron.timezone), so a caller can
 * keep one decoded definition per key and decode only a key it has not
 * seen.  The key is binary: key->len bytes, zero bytes among them.
 */
void
chime_job_def_key(const ChimeJobDefMap *map, HeapTuple tup, StringInfo key)
{
	for (int f = 0; f < CHIME_JOB_NFIELDS; f++)
	{
		Form_pg_attribute att;
		bool              isnull;
		Datum             d;

		if ((map->fields & CHIME_JOB_CLASS_FIELDS & CHIME_JOB_BIT(f)) == 0)
			continue;
		if (f == CHIME_JOB_TIMEZONE)
		{
			const char *zone = jd_zone_name(jd_text(map, tup, CHIME_JOB_TIMEZONE));

			appendStringInfoChar(key, zone ? 1 : 0);
			if (zone)
				appendBinaryStringInfo(key, zone, strlen(zone) + 1);
			continue;
		}
		d = SPI_getbinval(tup, map->desc, map->attnum[f], &isnull);
		appendStringInfoChar(key, isnull ? 0 : 1);
		if (isnull)
			continue;
		att = TupleDescAttr(map->desc, map->attnum[f] - 1);
		if (att->attbyval)
			appendBinaryStringInfo(key, (const char *) &d, sizeof(Datum));
		else if (att->attlen > 0)
			appendBinaryStringInfo(key, DatumGetPointer(d), att->attlen);
		else if (att->attlen == -1)
		{
			struct varlena *v = PG_DETOAST_DATUM_PACKED(d);
			uint32          len = VARSIZE_ANY_EXHDR(v);

			appendBinaryStringInfo(key, (const char *) &len, sizeof(len));
			appendBinaryStringInfo(key, VARDATA_ANY(v), len);
		}
		else
			appendBinaryStringInfo(key, DatumGetCString(d), strlen(DatumGetCString(d)) + 1);
	}
}

/*
 * ERROR for an invalid field, as the SQL API reports it: SQLSTATE 22023,
 * "invalid time zone: \"...\"" for a zone, "invalid <column>: <value>"
 * with the parser's detail and hint otherwise.
 */
void
chime_job_def_raise(const ChimeJobDefError *err)
{
	if (err->field == CHIME_JOB_TIMEZONE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid time zone: \"%s\"", err->value),
				 errhint("%s", err->err.hint)));
	if (err->field == CHIME_JOB_NFIELDS)
		elog(ERROR, "job definition: no invalid field to report");
	chime_invalid_value(err->column, err->value, &err->err);
}
