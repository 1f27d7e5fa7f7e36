/*-------------------------------------------------------------------------
 *
 * job_run.c
 *	  The job catalog's SQL API for runs: cron.run_now (both forms),
 *	  cron.release_key and cron.delete_runs.
 *
 * Like the functions of job_api.c, each takes the caller on entry, checks
 * the caller's rights over the job, and then acts as the catalog's owner.
 * The manual run's row is written by run_log.c, the job read through the
 * job decoder (job_def.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "api.h"
#include "clock.h"
#include "executor.h"
#include "job_def.h"
#include "locks.h"
#include "pg_chime.h"
#include "run_log.h"
#include "shared.h"

/*
 * cron.run_now: record a manual run of the job, to start as soon as this
 * transaction commits; returns its runid.  Outside the job's run_window it
 * is refused unless ignore_window.  A once_per job claims the key of now's
 * period, and is refused if it is claimed already.  The payload (JSON
 * text, NULL: none) goes with the run: {{payload}} of an HTTP job (its body
 * when it has none), cron.current_run() of a SQL job.
 */
static int64
job_run_now(const JobCaller *caller, int64 jobid, bool ignore_window, const char *payload)
{
	Oid              types[1] = {INT8OID};
	Datum            values[1] = {Int64GetDatum(jobid)};
	ChimeJobDef     *row;
	TimestampTz      now = chime_now();
	char             key[CHIME_RUN_KEY_LEN];
	ChimeJobDefMap   map;
	ChimeJobDef      def;
	ChimeJobDefError err;
	int64            runid;

	row = chime_job_fetch_owned(caller, jobid, true);

	if (SPI_execute_with_args("SELECT " CHIME_JOB_DEF_COLUMNS ", command FROM cron.job "
							  "WHERE jobid OPERATOR(pg_catalog.=) $1",
							  1, types, values, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not read job " INT64_FORMAT, jobid);
	chime_job_def_map(&map, SPI_tuptable->tupdesc,
					  CHIME_JOB_BIT(CHIME_JOB_TIMEZONE) | CHIME_JOB_BIT(CHIME_JOB_RUN_WINDOW) |
						  CHIME_JOB_BIT(CHIME_JOB_ONCE_PER) | CHIME_JOB_BIT(CHIME_JOB_COMMAND));

	/*
	 * Only an unusable zone is an error here: a run window that does not
	 * parse is not enforced, a once_per that does not parse claims no key.
	 */
	if (!chime_job_def_decode(&map, SPI_tuptable->vals[0], &def, &err) &&
		(def.invalid & CHIME_JOB_BIT(CHIME_JOB_TIMEZONE)))
		chime_job_def_raise(&err);

	if (def.timing.window.set && !ignore_window &&
		!chime_in_window(&def.timing.window, def.timing.zone, chime_unix_from_timestamptz(now)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("job " INT64_FORMAT " may only start inside its run_window %s", jobid,
						def.window_text),
				 errhint("Pass ignore_window => true to run it now anyway.")));

	/*
	 * An HTTP run needs its secrets (a restore leaves none): without them
	 * it is refused here, before it claims its period's key.
	 */
	if (row->kind == CHIME_JOB_HTTP)
		chime_job_check_secrets(row->username, row->url, row->headers, row->body);

	chime_run_key(def.once_per, def.timing.zone, chime_unix_from_timestamptz(now), key);
	if (key[0] != '\0')
	{
		/* one claim at a time: the scheduler waits for ours */
		chime_lock_wait(CHIME_LOCK_RUN_KEY, (uint64) jobid);
		if (!chime_key_claim(jobid, key, now))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("job " INT64_FORMAT " has already run for key %s", jobid, key),
					 errdetail("The job runs once per %s, and its run for %s is claimed in cron.job_run_key.",
							   def.once_per_text, key),
					 errhint("SELECT cron.release_key(" INT64_FORMAT ", '%s') lets it run again.", jobid, key)));
	}
	runid = chime_run_insert_manual(jobid, row->database, row->username, def.command, key, payload, now);
	chime_manual_run_requested(runid);
	return runid;
}

/*
 * The payload argument of cron.run_now as JSON text (NULL: none, also when
 * called through the two-argument functions of version 1.0)
 */
static char *
job_run_payload(FunctionCallInfo fcinfo)
{
	Jsonb *jb;
	char  *text;

	if (PG_NARGS() < 3 || PG_ARGISNULL(2))
		return NULL;
	jb = PG_GETARG_JSONB_P(2);
	text = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
	if (strlen(text) > CHIME_MAX_TEXT_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("payload is too long: %zu bytes", strlen(text)),
				 errdetail("The limit is %d bytes.", CHIME_MAX_TEXT_LEN),
				 errhint("Pass the run a key to data in a table instead of the data itself.")));
	return text;
}

/* cron.run_now(job_id, ignore_window, payload) */
PG_FUNCTION_INFO_V1(chime_run_now_id);
Datum
chime_run_now_id(PG_FUNCTION_ARGS)
{
	JobCaller    caller;
	ApiPrivilege saved;
	int64        runid;
	char        *payload;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job_id must not be null"),
				 errhint("SELECT jobid, jobname FROM cron.job lists your jobs.")));
	payload = job_run_payload(fcinfo);
	chime_job_caller(&caller);
	chime_api_begin(&saved);
	runid = job_run_now(&caller, PG_GETARG_INT64(0), !PG_ARGISNULL(1) && PG_GETARG_BOOL(1), payload);
	chime_api_end(&saved);
	PG_RETURN_INT64(runid);
}

/* cron.run_now(job_name, ignore_window, payload): the caller's job of that name */
PG_FUNCTION_INFO_V1(chime_run_now_name);
Datum
chime_run_now_name(PG_FUNCTION_ARGS)
{
	JobCaller    caller;
	ApiPrivilege saved;
	Oid          types[2] = {TEXTOID, TEXTOID};
	Datum        values[2];
	char        *jobname;
	ChimeJobDef *row;
	int64        runid;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job_name must not be null"),
				 errhint("SELECT jobid, jobname FROM cron.job lists your jobs.")));
	jobname = text_to_cstring(PG_GETARG_TEXT_PP(0));
	chime_job_caller(&caller);
	values[0] = CStringGetTextDatum(jobname);
	values[1] = CStringGetTextDatum(caller.name);
	chime_api_begin(&saved);
	row = chime_job_fetch("jobname OPERATOR(pg_catalog.=) $1 AND username OPERATOR(pg_catalog.=) $2", 2, types, values, false);
	if (row == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("could not find valid entry for job '%s'", jobname),
				 errhint("SELECT jobid, jobname FROM cron.job lists your jobs.")));
	runid = job_run_now(&caller, row->jobid, !PG_ARGISNULL(1) && PG_GETARG_BOOL(1), job_run_payload(fcinfo));
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
	JobCaller    caller;
	ApiPrivilege saved;
	int64        jobid;
	char        *key;
	Oid          types[2] = {INT8OID, TEXTOID};
	Datum        values[2];
	bool         released;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job_id and run_key must not be null"),
				 errhint("SELECT jobid, run_key, state FROM cron.job_run_key lists the claimed keys of your jobs.")));
	jobid = PG_GETARG_INT64(0);
	key = text_to_cstring(PG_GETARG_TEXT_PP(1));
	chime_job_caller(&caller);
	chime_api_begin(&saved);
	(void) chime_job_fetch_owned(&caller, jobid, true);
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
	JobCaller    caller;
	ApiPrivilege saved;
	Oid          types[4] = {TIMESTAMPTZOID, INT8OID, TEXTOID, BOOLOID};
	Datum        values[4];
	char         nulls[4] = "    ";
	uint64       deleted;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("before must not be null"),
				 errhint("SELECT cron.delete_runs(now() - interval '7 days') deletes the runs that ended over a week ago.")));
	chime_job_caller(&caller);
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

/*
 * cron.current_run(): inside a SQL job's command, one row describing its
 * run (jobid, runid, attempt, run_key, scheduled_time, trigger, payload);
 * no row anywhere else, and none for code running as a role without the
 * job owner's rights (a SECURITY DEFINER function of another role, or
 * after SET ROLE to one).  The run's row is read as the catalog's owner;
 * with cron.log_run off a run has no row, and its scheduled_time is the
 * occurrence, its trigger and payload NULL.
 */
PG_FUNCTION_INFO_V1(chime_current_run);
Datum
chime_current_run(PG_FUNCTION_ARGS)
{
	FuncCallContext   *funcctx;
	const ExecRequest *req = chime_exec_current_run();

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext old;
		TupleDesc     desc;

		funcctx = SRF_FIRSTCALL_INIT();
		old = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "cron.current_run must return a row");
		funcctx->tuple_desc = BlessTupleDesc(desc);
		/* the run's owner's (code running as another role does not see it) */
		funcctx->max_calls = req != NULL && has_privs_of_role(GetUserId(), GetSessionUserId()) ? 1 : 0;
		MemoryContextSwitchTo(old);
	}
	funcctx = SRF_PERCALL_SETUP();
	if (funcctx->call_cntr < funcctx->max_calls)
	{
		Datum     values[7];
		bool      nulls[7] = {false, false, false, false, false, true, true};
		HeapTuple tup = NULL;

		values[0] = Int64GetDatum(req->jobid);
		values[1] = Int64GetDatum(req->runid);
		values[2] = Int32GetDatum(req->attempt);
		nulls[3] = req->run_key[0] == '\0';
		values[3] = nulls[3] ? (Datum) 0 : CStringGetTextDatum(req->run_key);
		values[4] = TimestampTzGetDatum(chime_timestamptz_from_unix(req->due));
		if (req->runid > 0)
		{
			ApiPrivilege saved;
			Oid          types[1] = {INT8OID};
			Datum        args[1] = {Int64GetDatum(req->runid)};

			chime_api_begin(&saved);
			if (SPI_execute_with_args("SELECT scheduled_time, trigger, payload FROM cron.job_run_details "
									  "WHERE runid OPERATOR(pg_catalog.=) $1",
									  1, types, args, NULL, true, 1) != SPI_OK_SELECT)
				elog(ERROR, "could not read run " INT64_FORMAT, req->runid);
			if (SPI_processed == 1)
			{
				HeapTuple row = SPI_tuptable->vals[0];
				TupleDesc rdesc = SPI_tuptable->tupdesc;

				/* (copied out of SPI's memory, which SPI_finish frees) */
				values[4] = SPI_getbinval(row, rdesc, 1, &nulls[4]);
				for (int i = 5; i <= 6; i++)
				{
					Datum d = SPI_getbinval(row, rdesc, i - 3, &nulls[i]);

					values[i] = nulls[i] ? (Datum) 0 : SPI_datumTransfer(d, false, -1);
				}
			}
			chime_api_end(&saved);
		}
		tup = heap_form_tuple(funcctx->tuple_desc, values, nulls);
		SRF_RETURN_NEXT(funcctx, HeapTupleGetDatum(tup));
	}
	SRF_RETURN_DONE(funcctx);
}
