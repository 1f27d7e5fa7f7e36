/*-------------------------------------------------------------------------
 *
 * job_api.c
 *	  The job catalog's SQL API: cron.schedule (both forms),
 *	  cron.schedule_in_database, cron.schedule_http, cron.alter_job,
 *	  cron.unschedule (both forms), cron.run_now, cron.release_key and
 *	  cron.delete_runs.
 *
 * Every function gathers its arguments into a JobArgs (one slot per
 * cron.job column, "given" or not), checks all of them and the caller's
 * rights before writing anything, and then inserts or updates only the
 * given columns, so the table's defaults stay the one source of defaults
 * and bad input changes nothing (and consumes no job id).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "api.h"
#include "compat.h"
#include "pg_chime.h"
#include "locks.h"
#include "run_log.h"
#include "shared.h"

/* The columns of cron.job that the API writes. */
typedef enum JobColumn
{
	JC_SCHEDULE,
	JC_COMMAND,
	JC_DATABASE,
	JC_USERNAME,
	JC_ACTIVE,
	JC_JOBNAME,
	JC_KIND,
	JC_TIMEZONE,
	JC_RUN_WINDOW,
	JC_ONCE_PER,
	JC_OVERLAP,
	JC_CONCURRENCY_KEY,
	JC_MAX_ATTEMPTS,
	JC_RETRY_DELAY,
	JC_TIMEOUT,
	JC_CATCHUP,
	JC_DST_GAP,
	JC_URL,
	JC_METHOD,
	JC_HEADERS,
	JC_BODY,
	JC_COUNT,
	JC_NONE = -1				/* an argument that is not a column */
} JobColumn;

static const struct
{
	const char *name;
	Oid			type;
}			job_columns[JC_COUNT] = {
	[JC_SCHEDULE] = {"schedule", TEXTOID},
	[JC_COMMAND] = {"command", TEXTOID},
	[JC_DATABASE] = {"database", TEXTOID},
	[JC_USERNAME] = {"username", TEXTOID},
	[JC_ACTIVE] = {"active", BOOLOID},
	[JC_JOBNAME] = {"jobname", TEXTOID},
	[JC_KIND] = {"kind", TEXTOID},
	[JC_TIMEZONE] = {"timezone", TEXTOID},
	[JC_RUN_WINDOW] = {"run_window", TEXTOID},
	[JC_ONCE_PER] = {"once_per", TEXTOID},
	[JC_OVERLAP] = {"overlap", TEXTOID},
	[JC_CONCURRENCY_KEY] = {"concurrency_key", TEXTOID},
	[JC_MAX_ATTEMPTS] = {"max_attempts", INT4OID},
	[JC_RETRY_DELAY] = {"retry_delay", INTERVALOID},
	[JC_TIMEOUT] = {"timeout", INTERVALOID},
	[JC_CATCHUP] = {"catchup", INTERVALOID},
	[JC_DST_GAP] = {"dst_gap", TEXTOID},
	[JC_URL] = {"url", TEXTOID},
	[JC_METHOD] = {"method", TEXTOID},
	[JC_HEADERS] = {"headers", JSONBOID},
	[JC_BODY] = {"body", TEXTOID},
};

/* Values for the columns to write: given[c] false leaves column c alone. */
typedef struct JobArgs
{
	bool		given[JC_COUNT];
	bool		isnull[JC_COUNT];
	Datum		value[JC_COUNT];
} JobArgs;

/* The options shared by cron.schedule and cron.schedule_http, in order. */
#define JOB_OPTIONS \
	JC_TIMEZONE, JC_RUN_WINDOW, JC_ONCE_PER, JC_OVERLAP, JC_CONCURRENCY_KEY, \
	JC_MAX_ATTEMPTS, JC_RETRY_DELAY, JC_TIMEOUT, JC_CATCHUP, JC_DST_GAP, \
	JC_DATABASE, JC_USERNAME, JC_ACTIVE

static const JobColumn schedule_named_args[] = {
	JC_JOBNAME, JC_SCHEDULE, JC_COMMAND, JOB_OPTIONS
};
static const JobColumn schedule_in_database_args[] = {
	JC_JOBNAME, JC_SCHEDULE, JC_COMMAND, JC_DATABASE, JC_USERNAME, JC_ACTIVE
};
static const JobColumn schedule_http_args[] = {
	JC_JOBNAME, JC_SCHEDULE, JC_URL, JC_METHOD, JC_HEADERS, JC_BODY, JOB_OPTIONS
};
static const JobColumn alter_job_args[] = {
	JC_NONE, JC_SCHEDULE, JC_COMMAND, JC_DATABASE, JC_USERNAME, JC_ACTIVE,
	JC_TIMEZONE, JC_RUN_WINDOW, JC_ONCE_PER, JC_OVERLAP, JC_CONCURRENCY_KEY,
	JC_MAX_ATTEMPTS, JC_RETRY_DELAY, JC_TIMEOUT, JC_CATCHUP, JC_DST_GAP,
	JC_URL, JC_METHOD, JC_HEADERS, JC_BODY
};

/*
 * Who is calling: taken on entry, before the functions act as the catalog's
 * owner, and used for every rights check after that.
 */
typedef struct JobCaller
{
	Oid			id;
	char	   *name;
	bool		super;
} JobCaller;

/* The parts of an existing job that checks of a change depend on. */
typedef struct JobRow
{
	int64		jobid;
	char	   *username;
	char	   *database;
	char	   *kind;
	char	   *url;
	char	   *method;
	Jsonb	   *headers;
	char	   *body;
} JobRow;

static void
job_caller(JobCaller *caller)
{
	caller->id = GetUserId();
	caller->name = GetUserNameFromId(caller->id, false);
	caller->super = superuser_arg(caller->id);
}

static void
job_set(JobArgs *a, JobColumn c, Datum value, bool isnull)
{
	a->given[c] = true;
	a->value[c] = value;
	a->isnull[c] = isnull;
}

static void
job_set_text(JobArgs *a, JobColumn c, const char *value)
{
	job_set(a, c, value ? CStringGetTextDatum(value) : (Datum) 0, value == NULL);
}

/* Non-null arguments become given columns, following 'map'. */
static void
job_read_args(JobArgs *a, FunctionCallInfo fcinfo, const JobColumn *map, int n)
{
	memset(a, 0, sizeof(*a));
	for (int i = 0; i < n && i < PG_NARGS(); i++)
	{
		if (map[i] != JC_NONE && !PG_ARGISNULL(i))
			job_set(a, map[i], PG_GETARG_DATUM(i), false);
	}
}

static char *
job_text(const JobArgs *a, JobColumn c)
{
	if (!a->given[c] || a->isnull[c])
		return NULL;
	return TextDatumGetCString(a->value[c]);
}

static void
job_require(const JobArgs *a, JobColumn c, const char *hint)
{
	if (!a->given[c] || a->isnull[c])
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be null", job_columns[c].name),
				 errhint("%s", hint)));
}

/* One of a fixed set of words, case-insensitive; stored in lower case. */
static void
job_check_word(JobArgs *a, JobColumn c, const char *const *words, const char *hint)
{
	char	   *value = job_text(a, c);

	if (value == NULL)
		return;
	for (int i = 0; words[i]; i++)
	{
		if (pg_strcasecmp(value, words[i]) == 0)
		{
			job_set_text(a, c, words[i]);
			return;
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid %s: %s", job_columns[c].name, value),
			 errhint("%s", hint)));
}

/*
 * An interval option: no month part, at least 'min_us' and at most
 * 'max_us' long (so that the scheduler's arithmetic never overflows).
 */
static void
job_check_interval(const JobArgs *a, JobColumn c, int64 min_us, int64 max_us, const char *hint)
{
	Interval   *iv;
	double		us;

	if (!a->given[c] || a->isnull[c])
		return;
	iv = DatumGetIntervalP(a->value[c]);
	us = (double) iv->time + (double) iv->day * (double) USECS_PER_DAY;
	if (iv->month != 0 || us < (double) min_us || us > (double) max_us)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid %s: %s", job_columns[c].name,
						DatumGetCString(DirectFunctionCall1(interval_out, a->value[c]))),
				 errhint("%s", hint)));
}

static void
job_check_url(const char *url)
{
	const char *host = NULL;
	const char *why = NULL;

	if (pg_strncasecmp(url, "http://", 7) == 0)
		host = url + 7;
	else if (pg_strncasecmp(url, "https://", 8) == 0)
		host = url + 8;
	else
		why = "Only http:// and https:// URLs are allowed.";

	if (host && (*host == '\0' || *host == '/' || *host == '?' || *host == '#' || *host == ':'))
		why = "The URL has no host.";
	for (const char *p = url; why == NULL && *p; p++)
	{
		if ((unsigned char) *p <= ' ' || *p == 0x7f)
			why = "The URL contains white space or a control character.";
	}
	if (why)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid url: %s", url),
				 errdetail("%s", why),
				 errhint("Use an http:// or https:// URL, e.g. 'https://api.example.com/hook'.")));
}

static bool
job_header_name_ok(const char *name, int len)
{
	if (len == 0)
		return false;
	for (int i = 0; i < len; i++)
	{
		unsigned char ch = (unsigned char) name[i];

		if (!(isalnum(ch) || strchr("!#$%&'*+-.^_`|~", ch) != NULL) || ch == '\0')
			return false;
	}
	return true;
}

/* Headers: a JSON object of header names to string values. */
static void
job_check_headers(Jsonb *headers)
{
	const char *hint = "Headers are a JSON object of names to string values, e.g. '{\"x-cron-secret\": \"{{secret.cron_secret}}\"}'.";
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *name = NULL;

	if (!JB_ROOT_IS_OBJECT(headers) || JB_ROOT_IS_SCALAR(headers))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid headers: %s", JsonbToCString(NULL, &headers->root, VARSIZE(headers))),
				 errdetail("Headers must be a JSON object."),
				 errhint("%s", hint)));

	it = JsonbIteratorInit(&headers->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			name = pnstrdup(v.val.string.val, v.val.string.len);
			if (!job_header_name_ok(v.val.string.val, v.val.string.len))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid header: \"%s\"", name),
						 errdetail("A header name is letters, digits and !#$%%&'*+-.^_`|~ only."),
						 errhint("%s", hint)));
		}
		else if (tok == WJB_VALUE)
		{
			if (v.type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid header: \"%s\"", name),
						 errdetail("The value of header \"%s\" is not a string.", name),
						 errhint("%s", hint)));
			for (int i = 0; i < v.val.string.len; i++)
			{
				char		ch = v.val.string.val[i];

				if (ch == '\r' || ch == '\n' || ch == '\0')
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("invalid header: \"%s\"", name),
							 errdetail("The value of header \"%s\" contains a line break.", name),
							 errhint("%s", hint)));
			}
		}
	}
}

/* A text value no longer than 'limit' bytes (the value is not repeated: it may be huge). */
static void
job_check_size(const char *what, Size len, Size limit)
{
	if (len > limit)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is too long: %zu bytes", what, len),
				 errdetail("The limit is %zu bytes.", limit),
				 errhint("A job name and a concurrency_key are at most %d bytes, a schedule %d; "
						 "a command, URL, headers and body at most %d bytes each.",
						 CHIME_MAX_JOBNAME_LEN, CHIME_MAX_SCHEDULE_LEN, CHIME_MAX_TEXT_LEN)));
}

static void
job_check_sizes(const JobArgs *a)
{
	static const struct
	{
		JobColumn	c;
		const char *what;
		Size		limit;
	}			limits[] = {
		{JC_JOBNAME, "job name", CHIME_MAX_JOBNAME_LEN},
		{JC_COMMAND, "command", CHIME_MAX_TEXT_LEN},
		{JC_URL, "url", CHIME_MAX_TEXT_LEN},
		{JC_BODY, "body", CHIME_MAX_TEXT_LEN},
		{JC_HEADERS, "headers", CHIME_MAX_TEXT_LEN},
		{JC_CONCURRENCY_KEY, "concurrency_key", CHIME_MAX_KEY_LEN},
		{JC_SCHEDULE, "schedule", CHIME_MAX_SCHEDULE_LEN},
	};

	for (int i = 0; i < lengthof(limits); i++)
	{
		JobColumn	c = limits[i].c;

		if (a->given[c] && !a->isnull[c])
			job_check_size(limits[i].what, toast_raw_datum_size(a->value[c]) - VARHDRSZ,
						   limits[i].limit);
	}
}

/*
 * Check every given value, and put values into their stored form (zone
 * names as the tz database spells them, words in lower case, methods in
 * upper case).  Touches no table.
 */
static void
job_check_values(JobArgs *a)
{
	static const char *const once_per_words[] = {"day", "week", "month", NULL};
	static const char *const overlap_words[] = {"skip", "buffer_one", "allow", NULL};
	static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", NULL};
	static const JobColumn clearable[] = {JC_TIMEZONE, JC_RUN_WINDOW, JC_ONCE_PER, JC_CONCURRENCY_KEY};
	ChimeError	err;
	char	   *value;

	/* first the sizes: nothing below reads a value past its limit */
	job_check_sizes(a);

	/* an empty string clears a text option, a zero timeout means none */

	for (int i = 0; i < lengthof(clearable); i++)
	{
		if ((value = job_text(a, clearable[i])) != NULL && value[0] == '\0')
			job_set(a, clearable[i], (Datum) 0, true);
	}
	if (a->given[JC_TIMEOUT] && !a->isnull[JC_TIMEOUT])
	{
		Interval   *iv = DatumGetIntervalP(a->value[JC_TIMEOUT]);

		if (iv->month == 0 && iv->day == 0 && iv->time == 0)
			job_set(a, JC_TIMEOUT, (Datum) 0, true);
	}

	if ((value = job_text(a, JC_SCHEDULE)) != NULL)
	{
		ChimeSchedule sched;

		if (!chime_parse_schedule(value, &sched, &err))
			chime_invalid_value("schedule", value, &err);
	}
	if ((value = job_text(a, JC_TIMEZONE)) != NULL)
	{
		const char *canonical;

		if (chime_zone_lookup(value, &canonical) == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid time zone: %s", value),
					 errhint("Use a zone name from pg_timezone_names, e.g. 'America/New_York' or 'UTC'.")));
		job_set_text(a, JC_TIMEZONE, canonical);
	}
	if ((value = job_text(a, JC_RUN_WINDOW)) != NULL)
	{
		ChimeWindow w;

		if (!chime_parse_window(value, &w, &err))
			chime_invalid_value("run_window", value, &err);
		job_set_text(a, JC_RUN_WINDOW,
					 psprintf("%02d:%02d-%02d:%02d", w.start / 60, w.start % 60,
							  w.end / 60, w.end % 60));
	}
	job_check_word(a, JC_ONCE_PER, once_per_words,
				   "once_per is one of 'day', 'week' (ISO) or 'month'.");
	job_check_word(a, JC_OVERLAP, overlap_words,
				   "overlap is one of 'skip', 'buffer_one' or 'allow'.");
	if (a->given[JC_MAX_ATTEMPTS] && !a->isnull[JC_MAX_ATTEMPTS])
	{
		int32		n = DatumGetInt32(a->value[JC_MAX_ATTEMPTS]);

		if (n < 1 || n > 100)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid max_attempts: %d", n),
					 errhint("max_attempts counts the first attempt and is from 1 to 100.")));
	}
	job_check_interval(a, JC_RETRY_DELAY, 0, CHIME_MAX_RETRY_DELAY_US,
					   "retry_delay is an interval from 0 to 100 years, without months, e.g. '10 seconds'.");
	job_check_interval(a, JC_TIMEOUT, 1, CHIME_MAX_TIMEOUT_US,
					   "timeout is a positive interval of at most 24 days, without months, e.g. '2 minutes' (0 for none).");
	job_check_interval(a, JC_CATCHUP, 0, CHIME_MAX_CATCHUP_US,
					   "catchup is an interval from 0 to 100 years, without months, e.g. '1 minute' or '1 hour'.");
	if ((value = job_text(a, JC_DST_GAP)) != NULL)
	{
		ChimeDstGap gap;

		if (!chime_parse_dst_gap(value, &gap, &err))
			chime_invalid_value("dst_gap", value, &err);
		job_set_text(a, JC_DST_GAP, chime_dst_gap_name(gap));
	}
	if ((value = job_text(a, JC_URL)) != NULL)
		job_check_url(value);
	if ((value = job_text(a, JC_METHOD)) != NULL)
	{
		int			i;

		for (i = 0; methods[i] && pg_strcasecmp(value, methods[i]) != 0; i++)
			;
		if (methods[i] == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid method: %s", value),
					 errhint("Use one of GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS.")));
		job_set_text(a, JC_METHOD, methods[i]);
	}
	if (a->given[JC_HEADERS] && !a->isnull[JC_HEADERS])
		job_check_headers(DatumGetJsonbP(a->value[JC_HEADERS]));
}

/*
 * Check who may run what where: the job's role exists, only a superuser
 * names another role, superuser jobs are allowed, and the database exists
 * and lets the role connect.
 */
static void
job_check_rights(const JobCaller *caller, const char *username, const char *database,
				 bool role_changed)
{
	Oid			role = get_role_oid(username, true);
	Oid			db;

	if (role_changed && strcmp(username, caller->name) != 0 && !caller->super)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be superuser to create a job for another role"),
				 errhint("Schedule the job while connected as role \"%s\", or ask a superuser.", username)));
	if (!OidIsValid(role))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("role \"%s\" does not exist", username),
				 errhint("Name an existing role, or leave username NULL for the current role.")));
	if (!chime_enable_superuser_jobs && superuser_arg(role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot schedule jobs as superuser"),
				 errhint("Scheduling jobs as superuser is disallowed when cron.enable_superuser_jobs is set to off.")));

	db = get_database_oid(database, true);
	if (!OidIsValid(db))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("database \"%s\" does not exist", database),
				 errhint("Name an existing database, or leave database NULL for the current one.")));
	if (!compat_database_connect_ok(db, role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("User %s does not have CONNECT privilege on %s", username, database),
				 errhint("GRANT CONNECT ON DATABASE %s TO %s;", quote_identifier(database),
						 quote_identifier(username))));
}

/*
 * cron.max_jobs_per_role for a role, as a session of it would have it:
 * ALTER ROLE ... IN DATABASE ... SET, then ALTER ROLE ... SET, then ALTER
 * DATABASE ... SET, then ALTER ROLE ALL ... SET, else the value in force
 * in this session (the server's, unless this session's own role or
 * database set it).  SPI must be connected.
 */
static int
job_role_limit(Oid role)
{
	Oid			types[2] = {OIDOID, OIDOID};
	Datum		values[2] = {ObjectIdGetDatum(role), ObjectIdGetDatum(MyDatabaseId)};
	const char *name = "cron.max_jobs_per_role=";

	if (SPI_execute_with_args("SELECT s.c FROM pg_catalog.pg_db_role_setting d, "
							  "pg_catalog.unnest(d.setconfig) WITH ORDINALITY AS s(c, n) "
							  "WHERE d.setrole OPERATOR(pg_catalog.=) ANY (ARRAY[$1, 0::pg_catalog.oid]) "
							  "AND d.setdatabase OPERATOR(pg_catalog.=) ANY (ARRAY[$2, 0::pg_catalog.oid]) "
							  "ORDER BY d.setrole OPERATOR(pg_catalog.<>) 0::pg_catalog.oid DESC, "
							  "d.setdatabase OPERATOR(pg_catalog.<>) 0::pg_catalog.oid DESC, s.n DESC",
							  2, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the settings of role %u", role);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *c = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		int			limit;

		if (c && pg_strncasecmp(c, name, strlen(name)) == 0 &&
			parse_int(c + strlen(name), &limit, 0, NULL))
			return Max(limit, 0);
	}
	return chime_max_jobs_per_role;
}

/*
 * One more job for 'username' must stay within its cron.max_jobs_per_role
 * (54000).  Sessions creating jobs of the same role take turns, so two at
 * once cannot both take the last place.  SPI must be connected.
 */
static void
job_check_quota(const char *username)
{
	Oid			role = get_role_oid(username, false);
	int			limit = job_role_limit(role);
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(username)};
	bool		isnull;
	int64		count;
	SPIPlanPtr	plan;

	if (limit <= 0)
		return;
	chime_lock_wait(CHIME_LOCK_OWNER_JOBS, (uint64) role);
	/* counted as committed now, also in a repeatable read transaction */
	plan = SPI_prepare("SELECT pg_catalog.count(*) FROM cron.job WHERE username OPERATOR(pg_catalog.=) $1",
					   1, types);
	if (plan == NULL ||
		SPI_execute_snapshot(plan, values, NULL, GetLatestSnapshot(), InvalidSnapshot,
							 true, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not count the jobs of role %s", username);
	count = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (count >= limit)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("role %s has %lld jobs, the most cron.max_jobs_per_role (%d) allows",
						username, (long long) count, limit),
				 errhint("Unschedule a job first, or ask a superuser to raise cron.max_jobs_per_role "
						 "(ALTER ROLE %s SET cron.max_jobs_per_role = ...).", quote_identifier(username))));
}

/* The secrets an HTTP job's URL, headers and body name must exist. */
static void
job_check_secrets(const char *owner, const char *url, Jsonb *headers, const char *body)
{
	List	   *names = NIL;

	if (url)
		names = list_concat(names, chime_secret_refs(url));
	if (headers)
		names = list_concat(names, chime_secret_refs(JsonbToCString(NULL, &headers->root, VARSIZE(headers))));
	if (body)
		names = list_concat(names, chime_secret_refs(body));
	chime_secret_require(owner, names);
}

/*
 * Fetch a job, locked for update when 'lock'; NULL if there is none.  SPI
 * must be connected.
 */
static JobRow *
job_fetch(const char *where, int nargs, Oid *types, Datum *values, bool lock)
{
	StringInfoData sql;
	JobRow	   *row;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT jobid, username, database, kind, url, method, headers, body "
					 "FROM cron.job WHERE %s%s", where, lock ? " FOR UPDATE" : "");
	if (SPI_execute_with_args(sql.data, nargs, types, values, NULL, !lock, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read cron.job");
	if (SPI_processed == 0)
		return NULL;

	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	row = palloc0(sizeof(JobRow));
	row->jobid = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	row->username = SPI_getvalue(tup, desc, 2);
	row->database = SPI_getvalue(tup, desc, 3);
	row->kind = SPI_getvalue(tup, desc, 4);
	row->url = SPI_getvalue(tup, desc, 5);
	row->method = SPI_getvalue(tup, desc, 6);
	d = SPI_getbinval(tup, desc, 7, &isnull);
	row->headers = isnull ? NULL : DatumGetJsonbPCopy(d);
	row->body = SPI_getvalue(tup, desc, 8);
	return row;
}

/*
 * Fetch a job by id, which must exist and belong to the caller (or the
 * caller is a superuser).
 */
static JobRow *
job_fetch_owned(const JobCaller *caller, int64 jobid, bool lock)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(jobid)};
	JobRow	   *row = job_fetch("jobid OPERATOR(pg_catalog.=) $1", 1, types, values, lock);

	if (row == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("could not find valid entry for job " INT64_FORMAT, jobid),
				 errhint("SELECT jobid, jobname FROM cron.job lists your jobs.")));
	if (!caller->super && strcmp(row->username, caller->name) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for job " INT64_FORMAT, jobid),
				 errdetail("The job belongs to another role.")));
	return row;
}

/* Write the given columns: a new job (jobid 0) or an update.  Returns jobid. */
static int64
job_write(const JobArgs *a, int64 jobid)
{
	StringInfoData sql;
	Oid			types[JC_COUNT + 1];
	Datum		values[JC_COUNT + 1];
	char		nulls[JC_COUNT + 1];
	int			n = 0;
	bool		isnull;
	int			rc;

	initStringInfo(&sql);
	for (int c = 0; c < JC_COUNT; c++)
	{
		if (!a->given[c])
			continue;
		types[n] = job_columns[c].type;
		values[n] = a->value[c];
		nulls[n] = a->isnull[c] ? 'n' : ' ';
		n++;
	}

	if (jobid == 0)
	{
		StringInfoData params;

		initStringInfo(&params);
		appendStringInfoString(&sql, "INSERT INTO cron.job (");
		for (int c = 0, i = 0; c < JC_COUNT; c++)
		{
			if (!a->given[c])
				continue;
			appendStringInfo(&sql, "%s%s", i ? ", " : "", job_columns[c].name);
			appendStringInfo(&params, "%s$%d", i ? ", " : "", i + 1);
			i++;
		}
		appendStringInfo(&sql, ") VALUES (%s) RETURNING jobid", params.data);
	}
	else
	{
		appendStringInfoString(&sql, "UPDATE cron.job SET ");
		for (int c = 0, i = 0; c < JC_COUNT; c++)
		{
			if (!a->given[c])
				continue;
			appendStringInfo(&sql, "%s%s = $%d", i ? ", " : "", job_columns[c].name, i + 1);
			i++;
		}
		if (n == 0)
			appendStringInfoString(&sql, "jobid = jobid");
		types[n] = INT8OID;
		values[n] = Int64GetDatum(jobid);
		nulls[n] = ' ';
		n++;
		appendStringInfo(&sql, " WHERE jobid OPERATOR(pg_catalog.=) $%d RETURNING jobid", n);
	}

	rc = SPI_execute_with_args(sql.data, n, types, values, nulls, false, 0);
	if ((rc != SPI_OK_INSERT_RETURNING && rc != SPI_OK_UPDATE_RETURNING) || SPI_processed != 1)
		elog(ERROR, "could not write cron.job");
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Create a job, or replace the one of the same name and owner (keeping its
 * jobid; options not given keep their values).  Returns the jobid.
 */
static int64
job_schedule(JobArgs *a, bool http)
{
	JobCaller	caller;
	char	   *jobname = job_text(a, JC_JOBNAME);
	char	   *username;
	char	   *database;
	JobRow	   *row = NULL;
	ApiPrivilege saved;
	int64		jobid;

	job_require(a, JC_SCHEDULE, "Give a schedule such as '0 3 * * *'.");
	if (http)
	{
		char	   *url = job_text(a, JC_URL);

		job_require(a, JC_URL, "Give an http:// or https:// URL.");
		job_check_values(a);
		job_set_text(a, JC_KIND, "http");
		job_set_text(a, JC_COMMAND,
					 psprintf("%s %s", job_text(a, JC_METHOD) ? job_text(a, JC_METHOD) : "POST", url));
		if (!a->given[JC_BODY])
			job_set(a, JC_BODY, (Datum) 0, true);
	}
	else
	{
		job_require(a, JC_COMMAND, "Give the SQL command the job runs.");
		job_check_values(a);
		job_set_text(a, JC_KIND, "sql");
		job_set_text(a, JC_URL, NULL);
		job_set_text(a, JC_METHOD, NULL);
		job_set(a, JC_HEADERS, (Datum) 0, true);
		job_set_text(a, JC_BODY, NULL);
	}

	job_caller(&caller);
	username = job_text(a, JC_USERNAME);
	if (username == NULL)
		username = caller.name;

	chime_api_begin(&saved);
	if (jobname != NULL)
	{
		Oid			types[2] = {TEXTOID, TEXTOID};
		Datum		values[2] = {CStringGetTextDatum(jobname), CStringGetTextDatum(username)};

		row = job_fetch("jobname OPERATOR(pg_catalog.=) $1 AND username OPERATOR(pg_catalog.=) $2", 2, types, values, true);
	}

	database = job_text(a, JC_DATABASE);
	if (database == NULL)
		database = row ? row->database : get_database_name(MyDatabaseId);
	job_check_rights(&caller, username, database, a->given[JC_USERNAME]);
	if (http)
		job_check_secrets(username, job_text(a, JC_URL),
						  a->isnull[JC_HEADERS] ? NULL : DatumGetJsonbP(a->value[JC_HEADERS]),
						  job_text(a, JC_BODY));

	if (row == NULL)
	{
		job_check_quota(username);
		job_set_text(a, JC_USERNAME, username);
		job_set_text(a, JC_DATABASE, database);
	}
	jobid = job_write(a, row ? row->jobid : 0);
	chime_api_end(&saved);
	return jobid;
}

/* cron.schedule(schedule, command): a new unnamed job. */
PG_FUNCTION_INFO_V1(chime_schedule_unnamed);
Datum
chime_schedule_unnamed(PG_FUNCTION_ARGS)
{
	static const JobColumn map[] = {JC_SCHEDULE, JC_COMMAND};
	JobArgs		a;

	job_read_args(&a, fcinfo, map, lengthof(map));
	PG_RETURN_INT64(job_schedule(&a, false));
}

/* cron.schedule(job_name, schedule, command, <options>) */
PG_FUNCTION_INFO_V1(chime_schedule_named);
Datum
chime_schedule_named(PG_FUNCTION_ARGS)
{
	JobArgs		a;

	job_read_args(&a, fcinfo, schedule_named_args, lengthof(schedule_named_args));
	PG_RETURN_INT64(job_schedule(&a, false));
}

/* cron.schedule_in_database(job_name, schedule, command, database, username, active) */
PG_FUNCTION_INFO_V1(chime_schedule_in_database);
Datum
chime_schedule_in_database(PG_FUNCTION_ARGS)
{
	JobArgs		a;

	job_read_args(&a, fcinfo, schedule_in_database_args, lengthof(schedule_in_database_args));
	job_require(&a, JC_DATABASE, "Name the database the job runs in.");
	PG_RETURN_INT64(job_schedule(&a, false));
}

/* cron.schedule_http(job_name, schedule, url, method, headers, body, <options>) */
PG_FUNCTION_INFO_V1(chime_schedule_http);
Datum
chime_schedule_http(PG_FUNCTION_ARGS)
{
	JobArgs		a;

	job_read_args(&a, fcinfo, schedule_http_args, lengthof(schedule_http_args));
	if (!a.given[JC_METHOD])
		job_set_text(&a, JC_METHOD, "POST");
	if (!a.given[JC_HEADERS])
		job_set(&a, JC_HEADERS, DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")), false);
	PG_RETURN_INT64(job_schedule(&a, true));
}

/* cron.alter_job(job_id, ...): change the given fields of a job. */
PG_FUNCTION_INFO_V1(chime_alter_job);
Datum
chime_alter_job(PG_FUNCTION_ARGS)
{
	JobArgs		a;
	JobCaller	caller;
	JobRow	   *row;
	ApiPrivilege saved;
	int64		jobid;
	char	   *username;
	char	   *database;
	bool		http_fields;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job_id must not be null"),
				 errhint("SELECT jobid, jobname FROM cron.job lists your jobs.")));
	jobid = PG_GETARG_INT64(0);
	job_read_args(&a, fcinfo, alter_job_args, lengthof(alter_job_args));
	job_check_values(&a);

	job_caller(&caller);
	chime_api_begin(&saved);
	row = job_fetch_owned(&caller, jobid, true);

	http_fields = a.given[JC_URL] || a.given[JC_METHOD] || a.given[JC_HEADERS] || a.given[JC_BODY];
	if (strcmp(row->kind, "http") == 0)
	{
		if (a.given[JC_COMMAND])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("job " INT64_FORMAT " is an HTTP job and has no SQL command", jobid),
					 errhint("Change url, method, headers or body instead.")));
		if (http_fields)
		{
			const char *url = a.given[JC_URL] ? job_text(&a, JC_URL) : row->url;
			const char *method = a.given[JC_METHOD] ? job_text(&a, JC_METHOD) : row->method;

			job_set_text(&a, JC_COMMAND, psprintf("%s %s", method, url));
		}
	}
	else if (http_fields)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job " INT64_FORMAT " is not an HTTP job", jobid),
				 errhint("url, method, headers and body apply to jobs made with cron.schedule_http.")));

	if (a.given[JC_USERNAME] && !caller.super &&
		strcmp(job_text(&a, JC_USERNAME), row->username) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be superuser to alter username"),
				 errhint("Only a superuser can move a job to another role.")));
	username = a.given[JC_USERNAME] ? job_text(&a, JC_USERNAME) : row->username;
	database = a.given[JC_DATABASE] ? job_text(&a, JC_DATABASE) : row->database;
	job_check_rights(&caller, username, database, false);
	if (strcmp(username, row->username) != 0)
		job_check_quota(username);
	if (strcmp(row->kind, "http") == 0)
		job_check_secrets(username,
						  a.given[JC_URL] ? job_text(&a, JC_URL) : row->url,
						  a.given[JC_HEADERS] ? DatumGetJsonbP(a.value[JC_HEADERS]) : row->headers,
						  a.given[JC_BODY] ? job_text(&a, JC_BODY) : row->body);

	job_write(&a, jobid);
	chime_api_end(&saved);
	PG_RETURN_VOID();
}

/* cron.unschedule(job_id) */
PG_FUNCTION_INFO_V1(chime_unschedule_id);
Datum
chime_unschedule_id(PG_FUNCTION_ARGS)
{
	int64		jobid = PG_GETARG_INT64(0);
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(jobid)};
	JobCaller	caller;
	ApiPrivilege saved;

	job_caller(&caller);
	chime_api_begin(&saved);
	(void) job_fetch_owned(&caller, jobid, true);
	if (SPI_execute_with_args("DELETE FROM cron.job WHERE jobid OPERATOR(pg_catalog.=) $1",
							  1, types, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete job " INT64_FORMAT, jobid);
	chime_api_end(&saved);
	PG_RETURN_BOOL(true);
}

/* cron.unschedule(job_name): the caller's job of that name. */
PG_FUNCTION_INFO_V1(chime_unschedule_name);
Datum
chime_unschedule_name(PG_FUNCTION_ARGS)
{
	char	   *jobname = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *owner = GetUserNameFromId(GetUserId(), false);
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(jobname), CStringGetTextDatum(owner)};
	ApiPrivilege saved;
	uint64		deleted;

	chime_api_begin(&saved);
	if (SPI_execute_with_args("DELETE FROM cron.job WHERE jobname OPERATOR(pg_catalog.=) $1 "
							  "AND username OPERATOR(pg_catalog.=) $2",
							  2, types, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete job \"%s\"", jobname);
	deleted = SPI_processed;
	chime_api_end(&saved);

	if (deleted == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("could not find valid entry for job '%s'", jobname),
				 errhint("SELECT jobid, jobname FROM cron.job lists your jobs.")));
	PG_RETURN_BOOL(true);
}

/*
 * The timing of a job, for cron.next_runs(job_id); returns whether the job
 * is active.  Errors as cron.alter_job for a job the caller
 * cannot see.
 */
bool
chime_job_timing(int64 jobid, ChimeTiming *timing)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(jobid)};
	ApiPrivilege saved;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	bool		active;
	char	   *schedule;
	char	   *zone;
	char	   *window;
	char	   *gap;
	ChimeError	err;
	JobCaller	caller;

	job_caller(&caller);
	chime_api_begin(&saved);
	(void) job_fetch_owned(&caller, jobid, false);
	if (SPI_execute_with_args("SELECT active, schedule, timezone, run_window, dst_gap "
							  "FROM cron.job WHERE jobid OPERATOR(pg_catalog.=) $1",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not read job " INT64_FORMAT, jobid);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	active = DatumGetBool(SPI_getbinval(tup, desc, 1, &isnull));
	schedule = SPI_getvalue(tup, desc, 2);
	zone = SPI_getvalue(tup, desc, 3);
	window = SPI_getvalue(tup, desc, 4);
	gap = SPI_getvalue(tup, desc, 5);
	memset(timing, 0, sizeof(*timing));
	if (!chime_parse_schedule(schedule, &timing->sched, &err))
		chime_invalid_value("schedule", schedule, &err);
	timing->zone = chime_zone_for_job(zone);
	if (window && !chime_parse_window(window, &timing->window, &err))
		chime_invalid_value("run_window", window, &err);
	if (!chime_parse_dst_gap(gap, &timing->gap, &err))
		chime_invalid_value("dst_gap", gap, &err);
	chime_api_end(&saved);
	return active;
}

/*
 * cron.run_now: record a manual run of the job, to start as soon as this
 * transaction commits; returns its runid.  Outside the job's run_window it
 * is refused unless ignore_window.  A once_per job claims the key of now's
 * period, and is refused if it is claimed already.
 */
static int64
job_run_now(const JobCaller *caller, int64 jobid, bool ignore_window)
{
	Oid			types[6] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TEXTOID};
	Datum		values[6];
	char		nulls[6] = "      ";
	JobRow	   *row;
	TimestampTz now = chime_now();
	ChimeOncePer per;
	char		key[CHIME_RUN_KEY_LEN];
	HeapTuple	tup;
	TupleDesc	desc;
	char	   *window;
	char	   *zone;
	bool		isnull;
	int64		runid;

	row = job_fetch_owned(caller, jobid, true);

	values[0] = Int64GetDatum(jobid);
	if (SPI_execute_with_args("SELECT run_window, timezone, command, once_per FROM cron.job "
							  "WHERE jobid OPERATOR(pg_catalog.=) $1",
							  1, types, values, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read job " INT64_FORMAT, jobid);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	window = SPI_getvalue(tup, desc, 1);
	zone = SPI_getvalue(tup, desc, 2);
	if (window && !ignore_window)
	{
		ChimeWindow w;
		ChimeError	err;

		if (chime_parse_window(window, &w, &err) &&
			!chime_in_window(&w, chime_zone_for_job(zone), chime_unix_from_timestamptz(now)))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("job " INT64_FORMAT " may only start inside its run_window %s", jobid, window),
					 errhint("Pass ignore_window => true to run it now anyway.")));
	}

	if (!chime_parse_once_per(SPI_getvalue(tup, desc, 4), &per))
		per = CHIME_ONCE_NONE;
	chime_run_key(per, chime_zone_for_job(zone), chime_unix_from_timestamptz(now), key);

	values[1] = CStringGetTextDatum(row->database);
	values[2] = CStringGetTextDatum(row->username);
	values[3] = SPI_getbinval(tup, desc, 3, &isnull);
	values[4] = TimestampTzGetDatum(now);
	values[5] = CStringGetTextDatum(key);
	nulls[5] = key[0] == '\0' ? 'n' : ' ';
	if (key[0] != '\0')
	{
		/* one claim at a time: the scheduler waits for ours */
		chime_lock_wait(CHIME_LOCK_RUN_KEY, (uint64) jobid);
		if (!chime_key_claim(jobid, key, now))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("job " INT64_FORMAT " has already run for key %s", jobid, key),
					 errdetail("The job runs once per %s, and its run for %s is claimed in cron.job_run_key.",
							   SPI_getvalue(tup, desc, 4), key),
					 errhint("SELECT cron.release_key(" INT64_FORMAT ", '%s') lets it run again.", jobid, key)));
	}
	if (SPI_execute_with_args("INSERT INTO cron.job_run_details (jobid, database, username, command, "
							  "status, start_time, scheduled_time, trigger, attempt, run_key) "
							  "VALUES ($1, $2, $3, $4, 'starting', $5, $5, 'manual', 1, $6) "
							  "RETURNING runid",
							  6, types, values, nulls, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not record a manual run of job " INT64_FORMAT, jobid);
	runid = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (key[0] != '\0')
		chime_key_update(jobid, key, runid, "running", now);
	chime_manual_run_requested(runid);
	return runid;
}

/* cron.run_now(job_id, ignore_window) */
PG_FUNCTION_INFO_V1(chime_run_now_id);
Datum
chime_run_now_id(PG_FUNCTION_ARGS)
{
	JobCaller	caller;
	ApiPrivilege saved;
	int64		runid;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job_id must not be null"),
				 errhint("SELECT jobid, jobname FROM cron.job lists your jobs.")));
	job_caller(&caller);
	chime_api_begin(&saved);
	runid = job_run_now(&caller, PG_GETARG_INT64(0), !PG_ARGISNULL(1) && PG_GETARG_BOOL(1));
	chime_api_end(&saved);
	PG_RETURN_INT64(runid);
}

/* cron.run_now(job_name, ignore_window): the caller's job of that name */
PG_FUNCTION_INFO_V1(chime_run_now_name);
Datum
chime_run_now_name(PG_FUNCTION_ARGS)
{
	JobCaller	caller;
	ApiPrivilege saved;
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	char	   *jobname;
	JobRow	   *row;
	int64		runid;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job_name must not be null"),
				 errhint("SELECT jobid, jobname FROM cron.job lists your jobs.")));
	jobname = text_to_cstring(PG_GETARG_TEXT_PP(0));
	job_caller(&caller);
	values[0] = CStringGetTextDatum(jobname);
	values[1] = CStringGetTextDatum(caller.name);
	chime_api_begin(&saved);
	row = job_fetch("jobname OPERATOR(pg_catalog.=) $1 AND username OPERATOR(pg_catalog.=) $2", 2, types, values, false);
	if (row == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("could not find valid entry for job '%s'", jobname),
				 errhint("SELECT jobid, jobname FROM cron.job lists your jobs.")));
	runid = job_run_now(&caller, row->jobid, !PG_ARGISNULL(1) && PG_GETARG_BOOL(1));
	chime_api_end(&saved);
	PG_RETURN_INT64(runid);
}

/*
 * cron.release_key(job_id, run_key): forget a claimed once_per key, so
 * that the period can run again (by the scheduler, or cron.run_now).  The
 * job's owner or a superuser.  Returns whether the key was claimed.
 */
PG_FUNCTION_INFO_V1(chime_release_key);
Datum
chime_release_key(PG_FUNCTION_ARGS)
{
	JobCaller	caller;
	ApiPrivilege saved;
	int64		jobid;
	char	   *key;
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2];
	bool		released;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job_id and run_key must not be null"),
				 errhint("SELECT jobid, run_key, state FROM cron.job_run_key lists the claimed keys of your jobs.")));
	jobid = PG_GETARG_INT64(0);
	key = text_to_cstring(PG_GETARG_TEXT_PP(1));
	job_caller(&caller);
	chime_api_begin(&saved);
	(void) job_fetch_owned(&caller, jobid, true);
	chime_lock_wait(CHIME_LOCK_RUN_KEY, (uint64) jobid);
	values[0] = Int64GetDatum(jobid);
	values[1] = CStringGetTextDatum(key);
	if (SPI_execute_with_args("DELETE FROM cron.job_run_key WHERE jobid OPERATOR(pg_catalog.=) $1 "
							  "AND run_key OPERATOR(pg_catalog.=) $2",
							  2, types, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not release key %s of job " INT64_FORMAT, key, jobid);
	released = SPI_processed > 0;
	chime_api_end(&saved);
	PG_RETURN_BOOL(released);
}

/*
 * cron.delete_runs(before, job_id): delete the caller's finished run rows
 * that ended before 'before' (of one job, or of all the caller's jobs);
 * returns how many.  Rows still running, or whose retry is still to be
 * made, stay; so do rows the scheduler is writing (they are passed over,
 * never waited for).  A superuser deletes any role's rows.  This is how
 * roles prune their history: cron.job_run_details grants them no DELETE,
 * which would also let them lock the table and so stop every role's runs.
 */
PG_FUNCTION_INFO_V1(chime_delete_runs);
Datum
chime_delete_runs(PG_FUNCTION_ARGS)
{
	JobCaller	caller;
	ApiPrivilege saved;
	Oid			types[4] = {TIMESTAMPTZOID, INT8OID, TEXTOID, BOOLOID};
	Datum		values[4];
	char		nulls[4] = "    ";
	uint64		deleted;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("before must not be null"),
				 errhint("SELECT cron.delete_runs(now() - interval '7 days') deletes the runs that ended over a week ago.")));
	job_caller(&caller);
	values[0] = PG_GETARG_DATUM(0);
	values[1] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	nulls[1] = PG_ARGISNULL(1) ? 'n' : ' ';
	values[2] = CStringGetTextDatum(caller.name);
	values[3] = BoolGetDatum(caller.super);
	chime_api_begin(&saved);
	if (SPI_execute_with_args("DELETE FROM cron.job_run_details r USING "
							  "(SELECT runid FROM cron.job_run_details "
							  "WHERE end_time OPERATOR(pg_catalog.<) $1 AND retry_at IS NULL "
							  "AND status OPERATOR(pg_catalog.=) ANY ('{succeeded,failed,skipped,missed}'::pg_catalog.text[]) "
							  "AND ($2 IS NULL OR jobid OPERATOR(pg_catalog.=) $2) "
							  "AND ($4 OR username OPERATOR(pg_catalog.=) $3) "
							  "FOR UPDATE SKIP LOCKED) x WHERE r.runid OPERATOR(pg_catalog.=) x.runid",
							  4, types, values, nulls, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete runs");
	deleted = SPI_processed;
	chime_api_end(&saved);
	PG_RETURN_INT64((int64) deleted);
}
