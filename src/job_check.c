/*-------------------------------------------------------------------------
 *
 * job_check.c
 *	  What the job catalog's API checks before it writes anything: the
 *	  values of a job's options and their sizes, the caller's rights over
 *	  the job's role and database, the role's job quota, and the secrets an
 *	  HTTP job names.
 *
 * The value checks touch no table and put values into their stored form;
 * the others read the catalogs (SPI connected, acting as the catalog's
 * owner).  Each failure is an ERROR with a hint that shows a valid form.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "api.h"
#include "compat.h"
#include "locks.h"
#include "pg_chime.h"
#include "template.h"

/* One of a fixed set of words, case-insensitive; stored in lower case. */
static void
job_check_word(JobArgs *a, JobColumn c, const char *const *words, const char *hint)
{
	char *value = chime_job_text(a, c);

	if (value == NULL)
		return;
	for (int i = 0; words[i]; i++)
	{
		if (pg_strcasecmp(value, words[i]) == 0)
		{
			chime_job_set_text(a, c, words[i]);
			return;
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid %s: %s", chime_job_columns[c].name, value),
			 errhint("%s", hint)));
}

/*
 * An interval option: no month part, at least 'min_us' and at most
 * 'max_us' long (so that the scheduler's arithmetic never overflows).
 */
static void
job_check_interval(const JobArgs *a, JobColumn c, int64 min_us, int64 max_us, const char *hint)
{
	Interval *iv;
	double    us;

	if (!a->given[c] || a->isnull[c])
		return;
	iv = DatumGetIntervalP(a->value[c]);
	us = (double) iv->time + (double) iv->day * (double) USECS_PER_DAY;
	if (iv->month != 0 || us < (double) min_us || us > (double) max_us)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid %s: %s", chime_job_columns[c].name,
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
	const char        *hint = "Headers are a JSON object of names to string values, e.g. '{\"x-cron-secret\": \"{{secret.cron_secret}}\"}'.";
	JsonbIterator     *it;
	JsonbValue         v;
	JsonbIteratorToken tok;
	char              *name = NULL;

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
				char ch = v.val.string.val[i];

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
		JobColumn   c;
		const char *what;
		Size        limit;
	} limits[] = {
		{JC_JOBNAME, "job name", CHIME_MAX_JOBNAME_LEN},
		{JC_COMMAND, "command", CHIME_MAX_TEXT_LEN},
		{JC_URL, "url", CHIME_MAX_TEXT_LEN},
		{JC_BODY, "body", CHIME_MAX_TEXT_LEN},
		{JC_HEADERS, "headers", CHIME_MAX_TEXT_LEN},
		{JC_CONCURRENCY_KEY, "concurrency_key", CHIME_MAX_KEY_LEN},
		{JC_SCHEDULE, "schedule", CHIME_MAX_SCHEDULE_LEN},
		{JC_ON_SUCCESS, "on_success", CHIME_MAX_JOBNAME_LEN},
		{JC_ON_FAILURE, "on_failure", CHIME_MAX_JOBNAME_LEN},
	};

	for (int i = 0; i < lengthof(limits); i++)
	{
		JobColumn c = limits[i].c;

		if (a->given[c] && !a->isnull[c])
			job_check_size(limits[i].what, toast_raw_datum_size(a->value[c]) - VARHDRSZ,
						   limits[i].limit);
	}
}

/*
 * start_at ('start') or end_at: '-infinity' for a start and 'infinity' for
 * an end mean none (stored NULL: the way cron.alter_job clears them), the
 * other infinity is refused.
 */
static void
job_check_bound(JobArgs *a, JobColumn c, const char *what, bool start)
{
	TimestampTz t;

	if (!a->given[c] || a->isnull[c])
		return;
	t = DatumGetTimestampTz(a->value[c]);
	if (start ? TIMESTAMP_IS_NOBEGIN(t) : TIMESTAMP_IS_NOEND(t))
		chime_job_set(a, c, (Datum) 0, true);
	else if (TIMESTAMP_NOT_FINITE(t))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid %s: %s", what, start ? "infinity" : "-infinity"),
				 errhint("%s", start ? "start_at is the first instant a job may run, or '-infinity' for none." : "end_at is the instant a job stops running, or 'infinity' for none.")));
}

/*
 * start_at must come before end_at: each given, or as job 'jobid' has it
 * stored (0: a new job, none stored; read only when one of them is given,
 * so the functions also work on a catalog of version 1.0 that has no such
 * columns).  SPI must be connected.  Call after chime_job_check_values.
 */
void
chime_job_check_span(const JobArgs *a, int64 jobid)
{
	TimestampTz start = DT_NOBEGIN;
	TimestampTz end = DT_NOEND;

	if (!a->given[JC_START_AT] && !a->given[JC_END_AT])
		return;
	if (jobid != 0 && (!a->given[JC_START_AT] || !a->given[JC_END_AT]))
	{
		Oid   types[1] = {INT8OID};
		Datum values[1] = {Int64GetDatum(jobid)};
		bool  isnull;
		Datum d;

		if (SPI_execute_with_args("SELECT start_at, end_at FROM cron.job WHERE jobid OPERATOR(pg_catalog.=) $1",
								  1, types, values, NULL, false, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "could not read job " INT64_FORMAT, jobid);
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
			start = DatumGetTimestampTz(d);
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		if (!isnull)
			end = DatumGetTimestampTz(d);
	}
	if (a->given[JC_START_AT])
		start = a->isnull[JC_START_AT] ? DT_NOBEGIN : DatumGetTimestampTz(a->value[JC_START_AT]);
	if (a->given[JC_END_AT])
		end = a->isnull[JC_END_AT] ? DT_NOEND : DatumGetTimestampTz(a->value[JC_END_AT]);

	if (!TIMESTAMP_IS_NOBEGIN(start) && !TIMESTAMP_IS_NOEND(end) && start >= end)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid end_at: %s is not after start_at %s",
						DatumGetCString(DirectFunctionCall1(timestamptz_out, TimestampTzGetDatum(end))),
						DatumGetCString(DirectFunctionCall1(timestamptz_out, TimestampTzGetDatum(start)))),
				 errhint("A job runs from start_at up to (not including) end_at: give an end_at later than its start_at.")));
}

/*
 * Check every given value, and put values into their stored form (zone
 * names as the tz database spells them, words in lower case, methods in
 * upper case).  Touches no table.
 */
void
chime_job_check_values(JobArgs *a)
{
	static const char *const once_per_words[] = {"day", "week", "month", NULL};
	static const char *const overlap_words[] = {"skip", "buffer_one", "allow", NULL};
	static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", NULL};
	static const JobColumn   clearable[] = {JC_TIMEZONE, JC_RUN_WINDOW, JC_ONCE_PER, JC_CONCURRENCY_KEY,
											JC_ON_SUCCESS, JC_ON_FAILURE, JC_NOTIFY_CHANNEL};
	ChimeError               err;
	char                    *value;

	/* first the sizes: nothing below reads a value past its limit */
	job_check_sizes(a);

	/* an empty string clears a text option, a zero timeout means none */

	for (int i = 0; i < lengthof(clearable); i++)
	{
		if ((value = chime_job_text(a, clearable[i])) != NULL && value[0] == '\0')
			chime_job_set(a, clearable[i], (Datum) 0, true);
	}
	if (a->given[JC_TIMEOUT] && !a->isnull[JC_TIMEOUT])
	{
		Interval *iv = DatumGetIntervalP(a->value[JC_TIMEOUT]);

		if (iv->month == 0 && iv->day == 0 && iv->time == 0)
			chime_job_set(a, JC_TIMEOUT, (Datum) 0, true);
	}

	if ((value = chime_job_text(a, JC_SCHEDULE)) != NULL)
	{
		ChimeSchedule sched;

		if (!chime_parse_schedule(value, &sched, &err))
			chime_invalid_value("schedule", value, &err);
	}
	if ((value = chime_job_text(a, JC_TIMEZONE)) != NULL)
	{
		const char *canonical;

		if (chime_zone_lookup(value, &canonical) == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid time zone: %s", value),
					 errhint("Use a zone name from pg_timezone_names, e.g. 'America/New_York' or 'UTC'.")));
		chime_job_set_text(a, JC_TIMEZONE, canonical);
	}
	if ((value = chime_job_text(a, JC_RUN_WINDOW)) != NULL)
	{
		ChimeWindow w;

		if (!chime_parse_window(value, &w, &err))
			chime_invalid_value("run_window", value, &err);
		chime_job_set_text(a, JC_RUN_WINDOW,
						   psprintf("%02d:%02d-%02d:%02d", w.start / 60, w.start % 60,
									w.end / 60, w.end % 60));
	}
	job_check_word(a, JC_ONCE_PER, once_per_words,
				   "once_per is one of 'day', 'week' (ISO) or 'month'.");
	job_check_word(a, JC_OVERLAP, overlap_words,
				   "overlap is one of 'skip', 'buffer_one' or 'allow'.");
	if (a->given[JC_MAX_ATTEMPTS] && !a->isnull[JC_MAX_ATTEMPTS])
	{
		int32 n = DatumGetInt32(a->value[JC_MAX_ATTEMPTS]);

		if (n < 1 || n > 100)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid max_attempts: %d", n),
					 errhint("max_attempts counts the first attempt and is from 1 to 100.")));
	}
	if (a->given[JC_CONCURRENCY_LIMIT] && !a->isnull[JC_CONCURRENCY_LIMIT] &&
		(DatumGetInt32(a->value[JC_CONCURRENCY_LIMIT]) < 1 ||
		 DatumGetInt32(a->value[JC_CONCURRENCY_LIMIT]) > CHIME_MAX_CONCURRENCY_LIMIT))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid concurrency_limit: %d", DatumGetInt32(a->value[JC_CONCURRENCY_LIMIT])),
				 errhint("concurrency_limit is how many runs may hold the concurrency_key at once, from 1 to %d.",
						 CHIME_MAX_CONCURRENCY_LIMIT)));
	if (a->given[JC_ALERT_AFTER] && !a->isnull[JC_ALERT_AFTER] &&
		DatumGetInt32(a->value[JC_ALERT_AFTER]) < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid alert_after: %d", DatumGetInt32(a->value[JC_ALERT_AFTER])),
				 errhint("alert_after is the number of failed runs in a row that fire on_failure, 1 or more.")));
	if ((value = chime_job_text(a, JC_NOTIFY_CHANNEL)) != NULL && strlen(value) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid notify_channel: %s", value),
				 errdetail("A channel name is at most %d bytes.", NAMEDATALEN - 1),
				 errhint("Use a channel name that LISTEN accepts, e.g. 'cron_outcomes'.")));
	job_check_interval(a, JC_RETRY_DELAY, 0, CHIME_MAX_RETRY_DELAY_US,
					   "retry_delay is an interval from 0 to 100 years, without months, e.g. '10 seconds'.");
	job_check_interval(a, JC_TIMEOUT, 1, CHIME_MAX_TIMEOUT_US,
					   "timeout is a positive interval of at most 24 days, without months, e.g. '2 minutes' (0 for none).");
	job_check_interval(a, JC_CATCHUP, 0, CHIME_MAX_CATCHUP_US,
					   "catchup is an interval from 0 to 100 years, without months, e.g. '1 minute' or '1 hour'.");
	job_check_interval(a, JC_JITTER, 0, CHIME_MAX_JITTER_US,
					   "jitter is an interval from 0 (none) to 1 day, without months, in whole seconds, e.g. '1 minute'.");
	if (a->given[JC_JITTER] && !a->isnull[JC_JITTER] && DatumGetIntervalP(a->value[JC_JITTER])->day == 0)
	{
		int64 us = DatumGetIntervalP(a->value[JC_JITTER])->time;

		if (us == 0)
			chime_job_set(a, JC_JITTER, (Datum) 0, true);
		else if (us < USECS_PER_SEC)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid jitter: %s", DatumGetCString(DirectFunctionCall1(interval_out, a->value[JC_JITTER]))),
					 errdetail("Starts are delayed by whole seconds: a jitter is at least 1 second."),
					 errhint("Give a jitter of '1 second' or more, or 0 for none.")));
	}
	job_check_bound(a, JC_START_AT, "start_at", true);
	job_check_bound(a, JC_END_AT, "end_at", false);
	if ((value = chime_job_text(a, JC_DST_GAP)) != NULL)
	{
		ChimeDstGap gap;

		if (!chime_parse_dst_gap(value, &gap, &err))
			chime_invalid_value("dst_gap", value, &err);
		chime_job_set_text(a, JC_DST_GAP, chime_dst_gap_name(gap));
	}
	if ((value = chime_job_text(a, JC_URL)) != NULL)
		job_check_url(value);
	if ((value = chime_job_text(a, JC_METHOD)) != NULL)
	{
		int i;

		for (i = 0; methods[i] && pg_strcasecmp(value, methods[i]) != 0; i++)
			;
		if (methods[i] == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid method: %s", value),
					 errhint("Use one of GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS.")));
		chime_job_set_text(a, JC_METHOD, methods[i]);
	}
	if (a->given[JC_HEADERS] && !a->isnull[JC_HEADERS])
		job_check_headers(DatumGetJsonbP(a->value[JC_HEADERS]));
}

/*
 * Check who may run what where: the job's role exists, only a superuser
 * names another role, superuser jobs are allowed, and the database exists
 * and lets the role connect.
 */
void
chime_job_check_rights(const JobCaller *caller, const char *username, const char *database,
					   bool role_changed)
{
	Oid role = get_role_oid(username, true);
	Oid db;

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
	Oid         types[2] = {OIDOID, OIDOID};
	Datum       values[2] = {ObjectIdGetDatum(role), ObjectIdGetDatum(MyDatabaseId)};
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
		char *c = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		int   limit;

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
void
chime_job_check_quota(const char *username)
{
	Oid        role = get_role_oid(username, false);
	int        limit = job_role_limit(role);
	Oid        types[1] = {TEXTOID};
	Datum      values[1] = {CStringGetTextDatum(username)};
	bool       isnull;
	int64      count;
	SPIPlanPtr plan;

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
						 "(ALTER ROLE %s SET cron.max_jobs_per_role = ...).",
						 quote_identifier(username))));
}

/*
 * The {{...}} variables of an HTTP job's URL, headers and body must be
 * known ones, and the secrets they name must exist.
 */
void
chime_job_check_secrets(const char *owner, const char *url, Jsonb *headers, const char *body)
{
	List *names = NIL;

	if (url)
		names = list_concat(names, chime_template_refs(url, "url"));
	if (headers)
		names = list_concat(names, chime_template_refs(JsonbToCString(NULL, &headers->root, VARSIZE(headers)), "headers"));
	if (body)
		names = list_concat(names, chime_template_refs(body, "body"));
	chime_secret_require(owner, names);
}
/*
 * The hook jobs named by on_success and on_failure must be other jobs of
 * the owner: the job itself is refused ('jobname', the name of the job
 * being scheduled, or 'jobid', the job being altered; a hook never starts
 * a job already in its chain, the job it follows included).  SPI must be
 * connected.
 */
void
chime_job_check_hooks(const JobArgs *a, const char *owner, const char *jobname, int64 jobid)
{
	static const JobColumn hooks[] = {JC_ON_SUCCESS, JC_ON_FAILURE};

	for (int i = 0; i < lengthof(hooks); i++)
	{
		const char *option = chime_job_columns[hooks[i]].name;
		char       *name = chime_job_text(a, hooks[i]);
		Oid         types[2] = {TEXTOID, TEXTOID};
		Datum       values[2];
		bool        isnull;

		if (name == NULL)
			continue;
		values[0] = CStringGetTextDatum(name);
		values[1] = CStringGetTextDatum(owner);
		if (SPI_execute_with_args("SELECT jobid FROM cron.job WHERE jobname OPERATOR(pg_catalog.=) $1 "
								  "AND username OPERATOR(pg_catalog.=) $2",
								  2, types, values, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not look up job \"%s\"", name);
		if ((jobname && strcmp(name, jobname) == 0) ||
			(SPI_processed == 1 &&
			 DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) == jobid))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid %s: job \"%s\" is the job itself", option, name),
					 errdetail("A hook never starts the job whose outcome it follows."),
					 errhint("Name another job of role %s, e.g. one that alerts, with a schedule that never fires on its own ('0 0 30 2 *').",
							 owner)));
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("invalid %s: job \"%s\" does not exist", option, name),
					 errdetail("A hook is a job of the same owner (role %s), named by its job name.", owner),
					 errhint("Schedule the hook job first, with a schedule that never fires on its own if it should run only as a hook, "
							 "e.g. cron.schedule('%s', '0 0 30 2 *', '...').",
							 name)));
	}
}
