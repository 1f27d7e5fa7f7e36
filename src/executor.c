/*-------------------------------------------------------------------------
 *
 * executor.c
 *	  The SQL executor: a background worker connected to one database as
 *	  one role, that runs the commands the scheduler sends it, one at a
 *	  time, and sends back the command tag or the error.  This file has the
 *	  worker's loop and the run of one request; the rest of the executor is
 *	  in the exec_*.c files:
 *
 *	  exec_queue.c		its side of the two queues to the scheduler
 *	  exec_marker.c		the crash marker naming the run going on
 *	  exec_session.c	each run starts as a new session of the role would
 *	  exec_statements.c	statements and transactions, as postgres.c has them
 *	  exec_commit.c		the success written with the run's own commit
 *
 * A command runs as PostgreSQL's simple query protocol runs a query string,
 * which is what psql sends: each statement in its own transaction unless
 * the string has several, and transaction control acting as it does there
 * (exec_statements.c).  A command that leaves a transaction block open is
 * rolled back and fails.  The statement timeout is the job's timeout, or
 * else the role's and database's own statement_timeout, armed per
 * statement.
 *
 * Every run starts as a new session of the role would: the session is
 * reset after each run, and before each run the executor checks that its
 * role and the role's settings are those it connected with; if not, it
 * hands the run back (EXEC_STALE) and the scheduler gives it to a new
 * executor (exec_session.c).  A reload of the configuration (SIGHUP) is
 * applied between runs only, at the top of the loop.
 *
 * A run's success commits with it (exec_commit.c); failures are recorded
 * by the scheduler, which decides on retries.
 *
 * A run holds its job's lock (unless its overlap is 'allow') and its
 * concurrency_key's; if another run holds one, it is skipped.  An idle
 * executor leaves a database that is being dropped.  The executor ends
 * when the scheduler detaches from its queue.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timeout.h"

#include "exec_internal.h"
#include "executor.h"
#include "locks.h"
#include "pg_chime.h"

/* How often an idle executor looks whether its database is being dropped */
#define EXEC_POLL_MS 1000

/*
 * 'result' gets "ERROR: <SQLSTATE>: <message>", and DETAIL, HINT and
 * CONTEXT lines when the error has them.
 */
static void
exec_error_message(const ErrorData *edata, StringInfo result)
{
	resetStringInfo(result);
	appendStringInfo(result, "ERROR: %s: %s", unpack_sql_state(edata->sqlerrcode), edata->message);
	if (edata->detail)
		appendStringInfo(result, "\nDETAIL: %s", edata->detail);
	if (edata->hint)
		appendStringInfo(result, "\nHINT: %s", edata->hint);
	if (edata->context)
		appendStringInfo(result, "\nCONTEXT: %s", edata->context);
	if (result->len > CHIME_MAX_MESSAGE_LEN)
	{
		int whole = result->len;

		/* one role's huge error must not make the batch it is recorded in too big */
		result->len = pg_mbcliplen(result->data, result->len, CHIME_MAX_MESSAGE_LEN);
		result->data[result->len] = '\0';
		appendStringInfo(result, " ... (cut: %d bytes in all)", whole);
	}
}

static const ExecRequest *exec_current = NULL; /* the run whose command runs */

const ExecRequest *
chime_exec_current_run(void)
{
	return exec_current;
}

/*
 * Run one command, holding the run's locks (locks.c's user locks, released by the
 * session reset after it).  'result' gets the command tag, or the error.
 */
static ExecOutcome
exec_run(const ExecRequest *req, const char *command, const char *username, StringInfo result,
		 bool *recorded)
{
	MemoryContext        cxt = CurrentMemoryContext;
	volatile ExecOutcome outcome = EXEC_SUCCEEDED;
	bool                 gone;

	Assert(req->kind == EXEC_RUN);
	Assert(!IsTransactionOrTransactionBlock());
	*recorded = false;

	/*
	 * The job's timeout is its statement_timeout, as if set at connection:
	 * outside any transaction, so that a ROLLBACK in the command keeps it.
	 */
	if (req->timeout_ms > 0)
	{
		char ms[32];

		snprintf(ms, sizeof(ms), "%d", req->timeout_ms);
		SetConfigOption("statement_timeout", ms, PGC_SUSET, PGC_S_SESSION);
	}

	/* the checks and the locks in the command's first transaction */
	SetCurrentStatementStartTimestamp();
	chime_exec_start_xact();
	MemoryContextSwitchTo(cxt);
	if (!chime_exec_session_current(username, result, &gone))
		outcome = gone ? EXEC_FAILED : EXEC_STALE;
	else if (!req->allow_superuser && superuser_arg(GetSessionUserId()))
	{
		appendStringInfo(result, "ERROR: 42501: role \"%s\" is a superuser and cron.enable_superuser_jobs is off\n"
								 "HINT: Give the job to a role that is not a superuser, or set cron.enable_superuser_jobs = on.",
						 username);
		outcome = EXEC_FAILED;
	}
	else if (req->lock_job && !chime_lock_try(CHIME_LOCK_JOB, (uint64) req->jobid, true))
	{
		appendStringInfo(result, "skipped: another run of job " INT64_FORMAT " is still going", req->jobid);
		outcome = EXEC_SKIPPED;
	}
	else if (req->lock_concurrency &&
			 !chime_lock_try(CHIME_LOCK_CONCURRENCY,
							 chime_lock_id_concurrency(GetSessionUserId(), req->concurrency_hash), true))
	{
		appendStringInfoString(result, "skipped: another run holds its concurrency_key");
		outcome = EXEC_SKIPPED;
	}
	if (outcome != EXEC_SUCCEEDED)
	{
		chime_exec_finish_xact();
		MemoryContextSwitchTo(cxt);
		chime_exec_reset_session();
		return outcome;
	}
	debug_query_string = command;
	pgstat_report_activity(STATE_RUNNING, command);
	chime_exec_marker_set(req->runid);
	exec_current = req;

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		chime_exec_statements(req, command, result, recorded);
		if (IsTransactionOrTransactionBlock())
		{
			/* BEGIN without COMMIT: roll it back, as closing psql would */
			chime_exec_abort_xact();
			*recorded = false;
			resetStringInfo(result);
			appendStringInfoString(result, "ERROR: 25001: the command left a transaction block open; "
										   "it was rolled back\n"
										   "HINT: End the command with COMMIT, or leave out BEGIN.");
			outcome = EXEC_FAILED;
		}
	}
	PG_CATCH();
	{
		ErrorData *edata;

		/* as PostgresMain's error recovery */
		HOLD_INTERRUPTS();
		disable_all_timeouts(false);
		QueryCancelPending = false;
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		chime_exec_abort_xact();
		RESUME_INTERRUPTS();
		exec_error_message(edata, result);
		FreeErrorData(edata);
		*recorded = false;
		outcome = EXEC_FAILED;
	}
	PG_END_TRY();
	exec_current = NULL;
	MemoryContextSwitchTo(cxt);
	/* a cancel that came as the command ended has nothing left to cancel */
	QueryCancelPending = false;

	/* a success the command's commit could not carry: right after it */
	if (outcome == EXEC_SUCCEEDED && req->record && !*recorded)
	{
		StartTransactionCommand();
		*recorded = chime_exec_record_success(req, result->data);
		CommitTransactionCommand();
		MemoryContextSwitchTo(cxt);
	}

	chime_exec_reset_session();
	chime_exec_marker_set(0);
	debug_query_string = NULL;
	pgstat_report_activity(STATE_IDLE, NULL);
	return outcome;
}

/*
 * The executor's main: attach to the queues the scheduler made, connect,
 * and run what comes, one request at a time, until the scheduler lets go
 * of the queues (or the database is being dropped while idle).
 */
void
chime_executor_main(Datum arg)
{
	const char   *database = MyBgworkerEntry->bgw_extra;
	const char   *username = database + strlen(database) + 1;
	MemoryContext run_cxt;
	bool          stale = false;

	/* every handler before signals are unblocked */
	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGQUIT, chime_exec_quickdie);
	BackgroundWorkerUnblockSignals();

	chime_exec_queue_attach(DatumGetUInt32(arg));

	BackgroundWorkerInitializeConnection(database, username, 0);
	pgstat_report_appname("pg_chime executor");
	chime_exec_marker_open();
	chime_exec_session_begin();

	/* what one request needs, reset when the next comes */
	run_cxt = AllocSetContextCreate(TopMemoryContext, "pg_chime run", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(run_cxt);

	for (;;)
	{
		Size           len;
		void          *data;
		shm_mq_result  res;
		ExecRequest    req;
		char          *command;
		StringInfoData out;
		ExecOutcome    outcome;
		bool           recorded = false;

		/* between runs: the last one reset its session and ended its transactions */
		Assert(CurrentMemoryContext == run_cxt);
		Assert(!IsTransactionOrTransactionBlock());
		Assert(debug_query_string == NULL);
		Assert(!get_timeout_active(STATEMENT_TIMEOUT));

		CHECK_FOR_INTERRUPTS();

		/*
		 * A reload is applied here only, between runs and never in one:
		 * after the last run's session reset, outside any transaction.  So
		 * a run sees one configuration from its checks to its reset, and
		 * the reload finds every setting at the value a new session of the
		 * role would have (a setting of ALTER ROLE/DATABASE stays, as in
		 * any session).
		 */
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		res = chime_exec_receive(&len, &data);
		if (res == SHM_MQ_WOULD_BLOCK)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 EXEC_POLL_MS, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			/* a cancel (pg_cancel_backend) while idle cancels nothing */
			QueryCancelPending = false;
			CHECK_FOR_INTERRUPTS();
			if (chime_exec_database_wanted())
			{
				elog(LOG, "pg_chime executor for %s leaves database \"%s\": it is being dropped or changed",
					 username, database);
				break;
			}
			continue;
		}
		if (res != SHM_MQ_SUCCESS)
			break; /* the scheduler let go of us */
		if (len < sizeof(ExecRequest))
			elog(ERROR, "pg_chime executor: short request");

		memcpy(&req, data, sizeof(req));
		Assert(req.kind == EXEC_RUN || req.kind == EXEC_ACK);
		MemoryContextReset(run_cxt);
		command = pnstrdup((char *) data + sizeof(req), len - sizeof(req));
		if (req.kind != EXEC_RUN)
			continue; /* an answer that came too late: its run was rolled back */

		/* a run as the scheduler makes it (sched_request_recording) */
		Assert(!(req.record && req.confirm));
		Assert(req.runid > 0 || !(req.record || req.confirm));
		Assert(memchr(req.run_key, '\0', sizeof(req.run_key)) != NULL);
		initStringInfo(&out);

		/* once stale, every run goes back to the scheduler */
		if (stale)
			outcome = EXEC_STALE;
		else
			outcome = exec_run(&req, command, username, &out, &recorded);
		MemoryContextSwitchTo(run_cxt);
		if (outcome == EXEC_STALE)
			stale = true;
		if (!chime_exec_reply(req.runid, outcome, recorded, 0, out.data))
			break;
	}
	proc_exit(0);
}
