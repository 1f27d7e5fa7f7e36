/*-------------------------------------------------------------------------
 *
 * executor.c
 *	  The SQL executor: a background worker connected to one database as
 *	  one role, that runs the commands the scheduler sends it, one at a
 *	  time, each in its own transaction, and sends back the command tag or
 *	  the error.
 *
 * Commands run the way the simple query protocol runs them: statement by
 * statement through a portal, an implicit transaction block around several
 * statements, so VACUUM works alone and is refused inside a list, as in
 * psql.  A run holds its job's advisory lock (unless its overlap is
 * 'allow') and its concurrency_key's; if another run holds one, it is
 * skipped.  After each run the session is reset (DISCARD ALL), so one
 * job's SET or advisory lock, or ours, never leaks into the next.  The executor ends when
 * the scheduler detaches from its queue.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "parser/analyze.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/shm_mq.h"
#include "storage/shm_toc.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"

#include "compat.h"
#include "executor.h"
#include "locks.h"
#include "pg_chime.h"

/* Run the statements of 'command'; put the last command tag in 'tag'. */
static void
exec_statements(const char *command, StringInfo tag)
{
	List	   *parsetrees = pg_parse_query(command);
	bool		several = list_length(parsetrees) > 1;
	ListCell   *lc;

	if (several)
		BeginImplicitTransactionBlock();
	foreach(lc, parsetrees)
	{
		RawStmt    *parsetree = lfirst_node(RawStmt, lc);
		CommandTag	commandtag = CreateCommandTag(parsetree->stmt);
		bool		snapshot_set = false;
		List	   *querytrees;
		List	   *plantrees;
		Portal		portal;
		DestReceiver *receiver;
		QueryCompletion qc;
		int16		format = 0;

		if (analyze_requires_snapshot(parsetree))
		{
			PushActiveSnapshot(GetTransactionSnapshot());
			snapshot_set = true;
		}
		querytrees = pg_analyze_and_rewrite_fixedparams(parsetree, command, NULL, 0, NULL);
		plantrees = pg_plan_queries(querytrees, command, CURSOR_OPT_PARALLEL_OK, NULL);
		if (snapshot_set)
			PopActiveSnapshot();

		portal = CreatePortal("", true, true);
		portal->visible = false;
		PortalDefineQuery(portal, NULL, command, commandtag, plantrees, NULL);
		PortalStart(portal, NULL, 0, InvalidSnapshot);
		PortalSetResultFormat(portal, 1, &format);
		receiver = CreateDestReceiver(DestNone);
		InitializeQueryCompletion(&qc);
		(void) PortalRun(portal, FETCH_ALL, true, true, receiver, receiver, &qc);
		receiver->rDestroy(receiver);
		PortalDrop(portal, false);

		resetStringInfo(tag);
		appendStringInfoString(tag, GetCommandTagName(qc.commandTag));
		if (qc.commandTag == CMDTAG_INSERT)
			appendStringInfo(tag, " 0 " UINT64_FORMAT, qc.nprocessed);
		else if (command_tag_display_rowcount(qc.commandTag))
			appendStringInfo(tag, " " UINT64_FORMAT, qc.nprocessed);

		if (lnext(parsetrees, lc) != NULL)
			CommandCounterIncrement();
	}
	if (several)
		EndImplicitTransactionBlock();
}

/*
 * Run one command in its own transaction with an optional statement
 * timeout, holding the run's advisory locks (released by the DISCARD ALL
 * after it).  Returns success; 'result' gets the command tag, or
 * "ERROR: <SQLSTATE>: <message>".  When a lock is held by another run,
 * nothing runs: *skipped is set and 'result' says why.
 */
static bool
exec_run(const char *command, const ExecRequest *req, StringInfo result, bool *skipped)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = true;
	int			timeout_ms = req->timeout_ms;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	*skipped = false;
	if (req->lock_job && !chime_lock_try(CHIME_LOCK_JOB, chime_lock_id_job(req->jobid), true))
	{
		appendStringInfo(result, "skipped: another run of job " INT64_FORMAT " is still going", req->jobid);
		*skipped = true;
	}
	else if (req->lock_concurrency &&
			 !chime_lock_try(CHIME_LOCK_CONCURRENCY, req->concurrency_id, true))
	{
		appendStringInfoString(result, "skipped: another run holds its concurrency_key");
		*skipped = true;
	}
	if (*skipped)
	{
		CommitTransactionCommand();
		LockReleaseAll(USER_LOCKMETHOD, true);
		return false;
	}
	debug_query_string = command;
	pgstat_report_activity(STATE_RUNNING, command);
	if (timeout_ms > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, timeout_ms);

	PG_TRY();
	{
		exec_statements(command, result);
		if (timeout_ms > 0)
			disable_timeout(STATEMENT_TIMEOUT, false);
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		if (timeout_ms > 0)
			disable_timeout(STATEMENT_TIMEOUT, false);
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		resetStringInfo(result);
		appendStringInfo(result, "ERROR: %s: %s", unpack_sql_state(edata->sqlerrcode),
						 edata->message);
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();

	/* leave nothing of this run's session state to the next */
	{
		StringInfoData ignore;

		initStringInfo(&ignore);
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		exec_statements("DISCARD ALL", &ignore);
		CommitTransactionCommand();
		pfree(ignore.data);
	}

	debug_query_string = NULL;
	pgstat_report_activity(STATE_IDLE, NULL);
	return ok;
}

void
chime_executor_main(Datum arg)
{
	dsm_handle	handle = DatumGetUInt32(arg);
	const char *database = MyBgworkerEntry->bgw_extra;
	const char *username = database + strlen(database) + 1;
	dsm_segment *seg;
	shm_toc    *toc;
	shm_mq	   *mq;
	shm_mq_handle *requests;
	shm_mq_handle *replies;
	MemoryContext run_cxt;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	seg = dsm_attach(handle);
	if (seg == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_chime executor could not map its queues")));
	toc = shm_toc_attach(PG_CHIME_TOC_MAGIC, dsm_segment_address(seg));
	if (toc == NULL)
		elog(ERROR, "pg_chime executor: bad queue segment");
	mq = shm_toc_lookup(toc, EXEC_KEY_REQUESTS, false);
	shm_mq_set_receiver(mq, MyProc);
	requests = shm_mq_attach(mq, seg, NULL);
	mq = shm_toc_lookup(toc, EXEC_KEY_REPLIES, false);
	shm_mq_set_sender(mq, MyProc);
	replies = shm_mq_attach(mq, seg, NULL);

	BackgroundWorkerInitializeConnection(database, username, 0);
	pgstat_report_appname("pg_chime executor");

	run_cxt = AllocSetContextCreate(TopMemoryContext, "pg_chime run", ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		Size		len;
		void	   *data;
		shm_mq_result res;
		ExecRequest req;
		char	   *command;
		StringInfoData out;
		ExecReply	reply;
		bool		ok;
		bool		skipped;

		CHECK_FOR_INTERRUPTS();
		res = shm_mq_receive(requests, &len, &data, false);
		if (res != SHM_MQ_SUCCESS)
			break;				/* the scheduler let go of us */
		if (len < sizeof(ExecRequest))
			elog(ERROR, "pg_chime executor: short request");

		MemoryContextReset(run_cxt);
		MemoryContextSwitchTo(run_cxt);
		memcpy(&req, data, sizeof(req));
		command = pnstrdup((char *) data + sizeof(req), len - sizeof(req));

		initStringInfo(&out);
		ok = exec_run(command, &req, &out, &skipped);
		MemoryContextSwitchTo(run_cxt);

		reply.runid = req.runid;
		reply.ok = ok;
		reply.skipped = skipped;
		{
			StringInfoData msg;

			initStringInfo(&msg);
			appendBinaryStringInfo(&msg, (char *) &reply, sizeof(reply));
			appendBinaryStringInfo(&msg, out.data, out.len);
			if (compat_shm_mq_send(replies, msg.len, msg.data, false) != SHM_MQ_SUCCESS)
				break;
		}
	}
	proc_exit(0);
}
