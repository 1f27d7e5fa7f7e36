/*-------------------------------------------------------------------------
 *
 * job_api.c
 *	  The job catalog's SQL API: cron.schedule (both forms),
 *	  cron.schedule_in_database, cron.schedule_http, cron.alter_job and
 *	  cron.unschedule (both forms).
 *
 * Every function gathers its arguments into a JobArgs (one slot per
 * cron.job column, "given" or not), checks all of them and the caller's
 * rights before writing anything (job_check.c), and then inserts or
 * updates only the given columns, so the table's defaults stay the one
 * source of defaults and bad input changes nothing (and consumes no job
 * id).  cron.run_now, cron.release_key and cron.delete_runs are in
 * job_run.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "api.h"
#include "locks.h"

/* The columns of cron.job that the API writes, by name */
const JobColumnInfo chime_job_columns[JC_COUNT] = {
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
	[JC_ON_SUCCESS] = {"on_success", TEXTOID},
	[JC_ON_FAILURE] = {"on_failure", TEXTOID},
	[JC_ALERT_AFTER] = {"alert_after", INT4OID},
	[JC_NOTIFY_CHANNEL] = {"notify_channel", TEXTOID},
	[JC_START_AT] = {"start_at", TIMESTAMPTZOID},
	[JC_END_AT] = {"end_at", TIMESTAMPTZOID},
	[JC_JITTER] = {"jitter", INTERVALOID},
	[JC_CONCURRENCY_LIMIT] = {"concurrency_limit", INT4OID},
};

/* The options shared by cron.schedule and cron.schedule_http, in order. */
#define JOB_OPTIONS \
	JC_TIMEZONE, JC_RUN_WINDOW, JC_ONCE_PER, JC_OVERLAP, JC_CONCURRENCY_KEY, \
		JC_MAX_ATTEMPTS, JC_RETRY_DELAY, JC_TIMEOUT, JC_CATCHUP, JC_DST_GAP, \
		JC_DATABASE, JC_USERNAME, JC_ACTIVE, JC_ON_SUCCESS, JC_ON_FAILURE, \
		JC_ALERT_AFTER, JC_NOTIFY_CHANNEL, JC_START_AT, JC_END_AT, JC_JITTER, JC_CONCURRENCY_LIMIT

static const JobColumn schedule_named_args[] = {
	JC_JOBNAME, JC_SCHEDULE, JC_COMMAND, JOB_OPTIONS};
static const JobColumn schedule_in_database_args[] = {
	JC_JOBNAME, JC_SCHEDULE, JC_COMMAND, JC_DATABASE, JC_USERNAME, JC_ACTIVE};
static const JobColumn schedule_http_args[] = {
	JC_JOBNAME, JC_SCHEDULE, JC_URL, JC_METHOD, JC_HEADERS, JC_BODY, JOB_OPTIONS};
static const JobColumn alter_job_args[] = {
	JC_NONE, JC_SCHEDULE, JC_COMMAND, JC_DATABASE, JC_USERNAME, JC_ACTIVE,
	JC_TIMEZONE, JC_RUN_WINDOW, JC_ONCE_PER, JC_OVERLAP, JC_CONCURRENCY_KEY,
	JC_MAX_ATTEMPTS, JC_RETRY_DELAY, JC_TIMEOUT, JC_CATCHUP, JC_DST_GAP,
	JC_URL, JC_METHOD, JC_HEADERS, JC_BODY, JC_ON_SUCCESS, JC_ON_FAILURE,
	JC_ALERT_AFTER, JC_NOTIFY_CHANNEL, JC_START_AT, JC_END_AT, JC_JITTER, JC_CONCURRENCY_LIMIT};

/* Who is calling (before the functions act as the catalog's owner) */
void
chime_job_caller(JobCaller *caller)
{
	caller->id = GetUserId();
	caller->name = GetUserNameFromId(caller->id, false);
	caller->super = superuser_arg(caller->id);
}

/* Give column c a value (NULL when isnull) */
void
chime_job_set(JobArgs *a, JobColumn c, Datum value, bool isnull)
{
	a->given[c] = true;
	a->value[c] = value;
	a->isnull[c] = isnull;
}

/* Give a text column a value (NULL: a null) */
void
chime_job_set_text(JobArgs *a, JobColumn c, const char *value)
{
	chime_job_set(a, c, value ? CStringGetTextDatum(value) : (Datum) 0, value == NULL);
}

/* Non-null arguments become given columns, following 'map'. */
static void
job_read_args(JobArgs *a, FunctionCallInfo fcinfo, const JobColumn *map, int n)
{
	memset(a, 0, sizeof(*a));
	for (int i = 0; i < n && i < PG_NARGS(); i++)
	{
		if (map[i] != JC_NONE && !PG_ARGISNULL(i))
			chime_job_set(a, map[i], PG_GETARG_DATUM(i), false);
	}
}

/* A given text column's value; NULL when not given or null */
char *
chime_job_text(const JobArgs *a, JobColumn c)
{
	if (!a->given[c] || a->isnull[c])
		return NULL;
	return TextDatumGetCString(a->value[c]);
}

#define JOB_NAME_HINT \
	"Give the job a name (a job of the same name and owner is replaced), or use cron.schedule(schedule, command) for an unnamed job."

static void
job_require(const JobArgs *a, JobColumn c, const char *hint)
{
	if (!a->given[c] || a->isnull[c])
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s can not be NULL", c == JC_JOBNAME ? "job_name" : chime_job_columns[c].name),
				 errhint("%s", hint)));
}

/*
 * Fetch a job, locked for update when 'lock' (FOR NO KEY UPDATE: the
 * scheduler, claiming a key of the job, checks the key's reference to it
 * without waiting for the lock); NULL if there is none.  What
 * checks of a change depend on is decoded: jobid, owner, database, kind
 * and an HTTP job's request.  SPI must be connected.
 */
ChimeJobDef *
chime_job_fetch(const char *where, int nargs, Oid *types, Datum *values, bool lock)
{
	StringInfoData   sql;
	ChimeJobDefMap   map;
	ChimeJobDef     *row;
	ChimeJobDefError err;

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT jobid, username, database, kind, url, method, headers, body "
					 "FROM cron.job WHERE %s%s",
					 where, lock ? " FOR NO KEY UPDATE" : "");
	if (SPI_execute_with_args(sql.data, nargs, types, values, NULL, !lock, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read cron.job");
	if (SPI_processed == 0)
		return NULL;

	chime_job_def_map(&map, SPI_tuptable->tupdesc,
					  CHIME_JOB_BIT(CHIME_JOB_JOBID) | CHIME_JOB_BIT(CHIME_JOB_USERNAME) |
						  CHIME_JOB_BIT(CHIME_JOB_DATABASE) | CHIME_JOB_BIT(CHIME_JOB_KIND) |
						  CHIME_JOB_BIT(CHIME_JOB_URL) | CHIME_JOB_BIT(CHIME_JOB_METHOD) |
						  CHIME_JOB_BIT(CHIME_JOB_HEADERS) | CHIME_JOB_BIT(CHIME_JOB_BODY));
	row = palloc(sizeof(ChimeJobDef));
	if (!chime_job_def_decode(&map, SPI_tuptable->vals[0], row, &err))
		chime_job_def_raise(&err);
	return row;
}

/*
 * Fetch a job by id, which must exist and belong to the caller (or the
 * caller is a superuser); for cron.alter_job, with pg_cron's message for
 * a job that is not there or not the caller's.
 */
#define JOB_ALTER_MISSING "Job " INT64_FORMAT " does not exist or you don't own it"

static ChimeJobDef *
job_fetch_checked(const JobCaller *caller, int64 jobid, bool lock, bool alter)
{
	Oid          types[1] = {INT8OID};
	Datum        values[1] = {Int64GetDatum(jobid)};
	ChimeJobDef *row = chime_job_fetch("jobid OPERATOR(pg_catalog.=) $1", 1, types, values, lock);

	if (row == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 alter ? errmsg(JOB_ALTER_MISSING, jobid) : errmsg("could not find valid entry for job " INT64_FORMAT, jobid),
				 errhint("SELECT jobid, jobname FROM cron.job lists your jobs.")));
	if (!caller->super && strcmp(row->username, caller->name) != 0)
	{
		/* (alter_job, as pg_cron: no word of whether another role's job exists) */
		if (alter)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg(JOB_ALTER_MISSING, jobid),
					 errhint("SELECT jobid, jobname FROM cron.job lists your jobs.")));
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for job " INT64_FORMAT, jobid),
				 errdetail("The job belongs to another role.")));
	}
	return row;
}

ChimeJobDef *
chime_job_fetch_owned(const JobCaller *caller, int64 jobid, bool lock)
{
	return job_fetch_checked(caller, jobid, lock, false);
}

/* Whether any column is given */
static bool
job_any_given(const JobArgs *a)
{
	for (int c = 0; c < JC_COUNT; c++)
		if (a->given[c])
			return true;
	return false;
}

/* Write the given columns: a new job (jobid 0) or an update.  Returns jobid. */
static int64
job_write(const JobArgs *a, int64 jobid)
{
	StringInfoData sql;
	Oid            types[JC_COUNT + 1];
	Datum          values[JC_COUNT + 1];
	char           nulls[JC_COUNT + 1];
	int            n = 0;
	bool           isnull;
	int            rc;

	initStringInfo(&sql);
	for (int c = 0; c < JC_COUNT; c++)
	{
		if (!a->given[c])
			continue;
		types[n] = chime_job_columns[c].type;
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
			appendStringInfo(&sql, "%s%s", i ? ", " : "", chime_job_columns[c].name);
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
			appendStringInfo(&sql, "%s%s = $%d", i ? ", " : "", chime_job_columns[c].name, i + 1);
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
	JobCaller    caller;
	char        *jobname = chime_job_text(a, JC_JOBNAME);
	char        *username;
	char        *database;
	ChimeJobDef *row = NULL;
	ApiPrivilege saved;
	int64        jobid;

	job_require(a, JC_SCHEDULE, "Give a schedule such as '0 3 * * *'.");
	if (http)
	{
		char *url = chime_job_text(a, JC_URL);

		job_require(a, JC_URL, "Give an http:// or https:// URL.");
		chime_job_check_values(a);
		chime_job_set_text(a, JC_KIND, "http");
		chime_job_set_text(a, JC_COMMAND,
						   psprintf("%s %s", chime_job_text(a, JC_METHOD) ? chime_job_text(a, JC_METHOD) : "POST", url));
		if (!a->given[JC_BODY])
			chime_job_set(a, JC_BODY, (Datum) 0, true);
	}
	else
	{
		job_require(a, JC_COMMAND, "Give the SQL command the job runs.");
		chime_job_check_values(a);
		chime_job_set_text(a, JC_KIND, "sql");
		chime_job_set_text(a, JC_URL, NULL);
		chime_job_set_text(a, JC_METHOD, NULL);
		chime_job_set(a, JC_HEADERS, (Datum) 0, true);
		chime_job_set_text(a, JC_BODY, NULL);
	}

	chime_job_caller(&caller);
	username = chime_job_text(a, JC_USERNAME);
	if (username == NULL)
		username = caller.name;

	chime_api_begin(&saved);
	if (jobname != NULL)
	{
		Oid   types[2] = {TEXTOID, TEXTOID};
		Datum values[2] = {CStringGetTextDatum(jobname), CStringGetTextDatum(username)};

		row = chime_job_fetch("jobname OPERATOR(pg_catalog.=) $1 AND username OPERATOR(pg_catalog.=) $2", 2, types, values, true);
	}

	database = chime_job_text(a, JC_DATABASE);
	if (database == NULL)
		database = row ? row->database : get_database_name(MyDatabaseId);
	chime_job_check_rights(&caller, username, database, a->given[JC_USERNAME]);
	if (http)
		chime_job_check_secrets(username, chime_job_text(a, JC_URL),
								a->isnull[JC_HEADERS] ? NULL : DatumGetJsonbP(a->value[JC_HEADERS]),
								chime_job_text(a, JC_BODY));

	chime_job_check_hooks(a, username, jobname, row ? row->jobid : 0);
	chime_job_check_span(a, row ? row->jobid : 0);
	if (row == NULL)
	{
		chime_job_check_quota(username);
		chime_job_set_text(a, JC_USERNAME, username);
		chime_job_set_text(a, JC_DATABASE, database);
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
	JobArgs                a;

	job_read_args(&a, fcinfo, map, lengthof(map));
	PG_RETURN_INT64(job_schedule(&a, false));
}

/* cron.schedule(job_name, schedule, command, <options>) */
PG_FUNCTION_INFO_V1(chime_schedule_named);
Datum
chime_schedule_named(PG_FUNCTION_ARGS)
{
	JobArgs a;

	job_read_args(&a, fcinfo, schedule_named_args, lengthof(schedule_named_args));
	job_require(&a, JC_JOBNAME, JOB_NAME_HINT);
	PG_RETURN_INT64(job_schedule(&a, false));
}

/* cron.schedule_in_database(job_name, schedule, command, database, username, active) */
PG_FUNCTION_INFO_V1(chime_schedule_in_database);
Datum
chime_schedule_in_database(PG_FUNCTION_ARGS)
{
	JobArgs a;

	job_read_args(&a, fcinfo, schedule_in_database_args, lengthof(schedule_in_database_args));
	job_require(&a, JC_JOBNAME, JOB_NAME_HINT);
	/* a NULL database is the current one, for a job it replaces too (as in pg_cron) */
	if (!a.given[JC_DATABASE])
		chime_job_set_text(&a, JC_DATABASE, get_database_name(MyDatabaseId));
	PG_RETURN_INT64(job_schedule(&a, false));
}

/* cron.schedule_http(job_name, schedule, url, method, headers, body, <options>) */
PG_FUNCTION_INFO_V1(chime_schedule_http);
Datum
chime_schedule_http(PG_FUNCTION_ARGS)
{
	JobArgs a;

	job_read_args(&a, fcinfo, schedule_http_args, lengthof(schedule_http_args));
	job_require(&a, JC_JOBNAME, JOB_NAME_HINT);
	if (!a.given[JC_METHOD])
		chime_job_set_text(&a, JC_METHOD, "POST");
	if (!a.given[JC_HEADERS])
		chime_job_set(&a, JC_HEADERS, DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")), false);
	PG_RETURN_INT64(job_schedule(&a, true));
}

/* cron.alter_job(job_id, ...): change the given fields of a job. */
PG_FUNCTION_INFO_V1(chime_alter_job);
Datum
chime_alter_job(PG_FUNCTION_ARGS)
{
	JobArgs      a;
	JobCaller    caller;
	ChimeJobDef *row;
	ApiPrivilege saved;
	int64        jobid;
	char        *username;
	char        *database;
	bool         http_fields;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job_id can not be NULL"),
				 errhint("SELECT jobid, jobname FROM cron.job lists your jobs.")));
	jobid = PG_GETARG_INT64(0);
	job_read_args(&a, fcinfo, alter_job_args, lengthof(alter_job_args));
	if (!job_any_given(&a))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no updates specified"),
				 errhint("Give at least one setting to change, e.g. cron.alter_job(" INT64_FORMAT
						 ", schedule => '0 4 * * *'); a NULL leaves a setting as it is.",
						 jobid)));
	chime_job_check_values(&a);

	chime_job_caller(&caller);
	chime_api_begin(&saved);
	row = job_fetch_checked(&caller, jobid, true, true);

	http_fields = a.given[JC_URL] || a.given[JC_METHOD] || a.given[JC_HEADERS] || a.given[JC_BODY];
	if (row->kind == CHIME_JOB_HTTP)
	{
		if (a.given[JC_COMMAND])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("job " INT64_FORMAT " is an HTTP job and has no SQL command", jobid),
					 errhint("Change url, method, headers or body instead.")));
		if (http_fields)
		{
			const char *url = a.given[JC_URL] ? chime_job_text(&a, JC_URL) : row->url;
			const char *method = a.given[JC_METHOD] ? chime_job_text(&a, JC_METHOD) : row->method;

			chime_job_set_text(&a, JC_COMMAND, psprintf("%s %s", method, url));
		}
	}
	else if (http_fields)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job " INT64_FORMAT " is not an HTTP job", jobid),
				 errhint("url, method, headers and body apply to jobs made with cron.schedule_http.")));

	if (a.given[JC_USERNAME] && !caller.super &&
		strcmp(chime_job_text(&a, JC_USERNAME), row->username) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be superuser to alter username"),
				 errhint("Only a superuser can move a job to another role.")));
	username = a.given[JC_USERNAME] ? chime_job_text(&a, JC_USERNAME) : row->username;
	database = a.given[JC_DATABASE] ? chime_job_text(&a, JC_DATABASE) : row->database;
	chime_job_check_rights(&caller, username, database, false);
	chime_job_check_span(&a, row->jobid);
	if (strcmp(username, row->username) != 0)
		chime_job_check_quota(username);
	chime_job_check_hooks(&a, username, NULL, jobid);
	if (row->kind == CHIME_JOB_HTTP)
		chime_job_check_secrets(username,
								a.given[JC_URL] ? chime_job_text(&a, JC_URL) : row->url,
								a.given[JC_HEADERS] ? DatumGetJsonbP(a.value[JC_HEADERS]) : row->headers,
								a.given[JC_BODY] ? chime_job_text(&a, JC_BODY) : row->body);

	job_write(&a, jobid);
	chime_api_end(&saved);
	PG_RETURN_VOID();
}

/*
 * Delete a job (its keys go with it).  First its key lock, as cron.run_now
 * and cron.release_key take it: while this transaction is open, the
 * scheduler defers the job's key claims instead of waiting for the row.
 * The caller's rights are checked before (an error after taking the lock
 * would keep it until the caller's ROLLBACK).
 */
static void
job_delete(int64 jobid)
{
	Oid   types[1] = {INT8OID};
	Datum values[1] = {Int64GetDatum(jobid)};

	chime_lock_wait(CHIME_LOCK_RUN_KEY, (uint64) jobid);
	if (SPI_execute_with_args("DELETE FROM cron.job WHERE jobid OPERATOR(pg_catalog.=) $1",
							  1, types, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete job " INT64_FORMAT, jobid);
}

/* cron.unschedule(job_id) */
PG_FUNCTION_INFO_V1(chime_unschedule_id);
Datum
chime_unschedule_id(PG_FUNCTION_ARGS)
{
	int64        jobid = PG_GETARG_INT64(0);
	JobCaller    caller;
	ApiPrivilege saved;

	chime_job_caller(&caller);
	chime_api_begin(&saved);
	(void) chime_job_fetch_owned(&caller, jobid, false);
	job_delete(jobid);
	chime_api_end(&saved);
	PG_RETURN_BOOL(true);
}

/* cron.unschedule(job_name): the caller's job of that name. */
PG_FUNCTION_INFO_V1(chime_unschedule_name);
Datum
chime_unschedule_name(PG_FUNCTION_ARGS)
{
	char        *jobname = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char        *owner = GetUserNameFromId(GetUserId(), false);
	Oid          types[2] = {TEXTOID, TEXTOID};
	Datum        values[2] = {CStringGetTextDatum(jobname), CStringGetTextDatum(owner)};
	ApiPrivilege saved;
	uint64       deleted;

	chime_api_begin(&saved);
	if (SPI_execute_with_args("SELECT jobid FROM cron.job WHERE jobname OPERATOR(pg_catalog.=) $1 "
							  "AND username OPERATOR(pg_catalog.=) $2",
							  2, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read job \"%s\"", jobname);
	deleted = SPI_processed;
	if (deleted > 0)
	{
		bool isnull;

		job_delete(DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)));
	}
	chime_api_end(&saved);

	if (deleted == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("could not find valid entry for job '%s'", jobname),
				 errhint("SELECT jobid, jobname FROM cron.job lists your jobs.")));
	PG_RETURN_BOOL(true);
}
