/*-------------------------------------------------------------------------
 *
 * exec_statements.c
 *	  How the executor runs a command's statements and their transactions:
 *	  as PostgreSQL's simple query protocol runs a query string.
 *
 * This follows exec_simple_query in src/backend/tcop/postgres.c, which is
 * what psql sends: statement by statement through the unnamed portal,
 * parse and plan trees in memory that outlives any transaction, each
 * statement in its own transaction unless the string has several (then
 * they form one implicit transaction block), and transaction control
 * (BEGIN, COMMIT, ROLLBACK, SAVEPOINT) acting as it does there.  So VACUUM,
 * CREATE INDEX CONCURRENTLY or a procedure that commits work when they are
 * the whole command.  The statement timeout is armed per statement.
 *
 * The run's success is written (or, for a job of another database, its
 * last transaction noted) just before the command's last commit: before a
 * final COMMIT, or before the implicit commit of its last statement
 * (exec_commit.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "parser/analyze.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"

#include "compat.h"
#include "exec_internal.h"

static bool exec_xact_started = false; /* as xact_started in postgres.c */

void
chime_exec_start_xact(void)
{
	if (!exec_xact_started)
	{
		StartTransactionCommand();
		exec_xact_started = true;
	}
	/* the statement timeout, per statement */
	if (StatementTimeout > 0)
	{
		if (!get_timeout_active(STATEMENT_TIMEOUT))
			enable_timeout_after(STATEMENT_TIMEOUT, StatementTimeout);
	}
	else if (get_timeout_active(STATEMENT_TIMEOUT))
		disable_timeout(STATEMENT_TIMEOUT, false);
}

void
chime_exec_disable_statement_timeout(void)
{
	if (get_timeout_active(STATEMENT_TIMEOUT))
		disable_timeout(STATEMENT_TIMEOUT, false);
}

void
chime_exec_finish_xact(void)
{
	chime_exec_disable_statement_timeout();
	if (exec_xact_started)
	{
		CommitTransactionCommand();
		exec_xact_started = false;
	}
}

/*
 * After an error (or a command that left a block open): abort the
 * transaction, and any block, subtransactions included.
 */
void
chime_exec_abort_xact(void)
{
	AbortOutOfAnyTransaction();
	exec_xact_started = false;
}

/* A statement allowed in an aborted transaction block */
static bool
exec_is_exit_stmt(Node *stmt)
{
	TransactionStmt *t = (TransactionStmt *) stmt;

	if (!IsA(stmt, TransactionStmt))
		return false;
	return t->kind == TRANS_STMT_COMMIT || t->kind == TRANS_STMT_PREPARE ||
		t->kind == TRANS_STMT_ROLLBACK || t->kind == TRANS_STMT_ROLLBACK_TO;
}

/* COMMIT (or END) that ends the block: the last point inside it */
static bool
exec_is_commit(Node *stmt)
{
	return IsA(stmt, TransactionStmt) &&
		((TransactionStmt *) stmt)->kind == TRANS_STMT_COMMIT &&
		!((TransactionStmt *) stmt)->chain;
}

/* The command tag as psql shows it: "INSERT 0 1", "UPDATE 2", "VACUUM" */
static void
exec_tag(const QueryCompletion *qc, StringInfo tag)
{
	resetStringInfo(tag);
	appendStringInfoString(tag, GetCommandTagName(qc->commandTag));
	if (qc->commandTag == CMDTAG_INSERT)
		appendStringInfo(tag, " 0 " UINT64_FORMAT, qc->nprocessed);
	else if (command_tag_display_rowcount(qc->commandTag))
		appendStringInfo(tag, " " UINT64_FORMAT, qc->nprocessed);
}

/*
 * Run the statements of 'command' as exec_simple_query does; 'tag' gets
 * the last command tag.  Parse and plan trees live in per-statement
 * contexts under the caller's (not a transaction's) memory, since a
 * statement may end the transaction it began in.  *recorded tells
 * whether the success was written with the last commit.  Called in the
 * run's first transaction, which the caller opened (with
 * chime_exec_start_xact) to check the session and take the run's locks;
 * returns with the last transaction committed, unless a BEGIN left its
 * block open (the caller rolls that back).
 */
static void
exec_statements(const ExecRequest *req, const char *command, StringInfo tag, bool *recorded)
{
	MemoryContext run_cxt = CurrentMemoryContext;
	List         *parsetrees;
	bool          implicit_block;
	ListCell     *lc;

	chime_exec_start_xact();
	MemoryContextSwitchTo(run_cxt);
	parsetrees = pg_parse_query(command);
	implicit_block = list_length(parsetrees) > 1;

	foreach(lc, parsetrees)
	{
		RawStmt        *parsetree = lfirst_node(RawStmt, lc);
		bool            last = lnext(parsetrees, lc) == NULL;
		CommandTag      commandtag = CreateCommandTag(parsetree->stmt);
		bool            snapshot_set = false;
		MemoryContext   stmt_cxt;
		MemoryContext   xact_cxt;
		List           *querytrees;
		List           *plantrees;
		Portal          portal;
		DestReceiver   *receiver;
		QueryCompletion qc;
		int16           format = 0;

		if (IsAbortedTransactionBlockState() && !exec_is_exit_stmt(parsetree->stmt))
			ereport(ERROR,
					(errcode(ERRCODE_IN_FAILED_SQL_TRANSACTION),
					 errmsg("current transaction is aborted, commands ignored until end of transaction block")));

		chime_exec_start_xact();
		if (implicit_block)
			BeginImplicitTransactionBlock();
		CHECK_FOR_INTERRUPTS();
		xact_cxt = CurrentMemoryContext;

		/* a final COMMIT: the success goes in just before it */
		if (last && exec_is_commit(parsetree->stmt) && chime_exec_can_record_here(true))
		{
			if (req->record)
				*recorded = chime_exec_record_success(req, "COMMIT");
			else if (req->confirm)
				chime_exec_confirm_commit(req);
		}

		if (analyze_requires_snapshot(parsetree))
		{
			PushActiveSnapshot(GetTransactionSnapshot());
			snapshot_set = true;
		}
		stmt_cxt = AllocSetContextCreate(run_cxt, "pg_chime statement", ALLOCSET_DEFAULT_SIZES);
		MemoryContextSwitchTo(stmt_cxt);
		querytrees = pg_analyze_and_rewrite_fixedparams(parsetree, command, NULL, 0, NULL);
		plantrees = pg_plan_queries(querytrees, command, CURSOR_OPT_PARALLEL_OK, NULL);
		if (snapshot_set)
			PopActiveSnapshot();
		CHECK_FOR_INTERRUPTS();

		portal = CreatePortal("", true, true);
		portal->visible = false;
		PortalDefineQuery(portal, NULL, command, commandtag, plantrees, NULL);
		PortalStart(portal, NULL, 0, InvalidSnapshot);
		PortalSetResultFormat(portal, 1, &format);
		receiver = CreateDestReceiver(DestNone);
		MemoryContextSwitchTo(xact_cxt);

		InitializeQueryCompletion(&qc);
		(void) PortalRun(portal, FETCH_ALL, true, true, receiver, receiver, &qc);
		receiver->rDestroy(receiver);
		PortalDrop(portal, false);
		exec_tag(&qc, tag);

		if (last)
		{
			/*
			 * Outside an explicit block (an implicit one ends here, so that
			 * one left open by BEGIN is told apart): the success commits
			 * with the command.
			 */
			if (implicit_block)
				EndImplicitTransactionBlock();
			if (req->record && !*recorded && chime_exec_can_record_here(false))
				*recorded = chime_exec_record_success(req, tag->data);
			else if (req->confirm && !exec_is_commit(parsetree->stmt) && chime_exec_can_record_here(false))
				chime_exec_confirm_commit(req);
			chime_exec_finish_xact();
		}
		else if (IsA(parsetree->stmt, TransactionStmt))
			chime_exec_finish_xact();
		else
		{
			CommandCounterIncrement();
			chime_exec_disable_statement_timeout();
		}
		MemoryContextSwitchTo(run_cxt);
		MemoryContextDelete(stmt_cxt);
	}
	chime_exec_finish_xact();
	MemoryContextSwitchTo(run_cxt);
}

/*
 * A run's statements, between the invariants of the run around them: its
 * first transaction open on entry, none of its own on return.  The work
 * stays in exec_statements, the name under which test/planted.pl reviews
 * the name lookups in it.
 */
void
chime_exec_statements(const ExecRequest *req, const char *command, StringInfo tag, bool *recorded)
{
	Assert(exec_xact_started && IsTransactionState());
	Assert(!(req->record && req->confirm));
	exec_statements(req, command, tag, recorded);
	Assert(!exec_xact_started);
}
