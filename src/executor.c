/*-------------------------------------------------------------------------
 *
 * executor.c
 *	  The SQL executor: a background worker connected to one database as
 *	  one role, that runs the commands the scheduler sends it, one at a
 *	  time, and sends back the command tag or the error.
 *
 * A command runs as PostgreSQL's simple query protocol runs a query string
 * (exec_simple_query in src/backend/tcop/postgres.c), which is what psql
 * sends: statement by statement through the unnamed portal, parse and plan
 * trees in memory that outlives any transaction, each statement in its own
 * transaction unless the string has several (then they form one implicit
 * transaction block), and transaction control (BEGIN, COMMIT, ROLLBACK,
 * SAVEPOINT) acting as it does there.  So VACUUM, CREATE INDEX
 * CONCURRENTLY or a procedure that commits work when they are the whole
 * command.  A command that leaves a transaction block open is rolled back
 * and fails.  The statement timeout is the job's timeout, or else the
 * role's and database's own statement_timeout, armed per statement.
 *
 * Every run starts as a new session of the role would: the session is
 * reset after each run (DISCARD ALL: settings, SET ROLE, temporary
 * tables, prepared statements, cursors, LISTEN, advisory locks), and
 * before each run the executor checks that its role still exists as the
 * same role and that the role's and database's settings (ALTER ROLE/
 * DATABASE ... SET) are those it connected with; if not, it hands the run
 * back (EXEC_STALE) and the scheduler gives it to a new executor.
 *
 * For jobs in the catalog's database, success is written in the command's
 * last transaction (before a final COMMIT, or before the implicit
 * commit), as a row of cron.run_commit, so the job's effects and the
 * record of its success commit together or not at all.  For jobs in
 * another database, the last transaction's id is noted on the run row
 * before it commits (exec_confirm_commit).  Commands whose
 * commit may not be shared (CREATE DATABASE, ALTER SYSTEM) are recorded
 * right after.  Failures are recorded by the scheduler, which decides on
 * retries.
 *
 * A run holds its job's advisory lock (unless its overlap is 'allow') and
 * its concurrency_key's; if another run holds one, it is skipped.  An
 * idle executor leaves a database that is being dropped.  The executor
 * ends when the scheduler detaches from its queue.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>
#include <dirent.h>
#include <fcntl.h>

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "catalog/pg_db_role_setting.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/prepare.h"
#include "commands/sequence.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "parser/analyze.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/dsm.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/shm_mq.h"
#include "storage/shm_toc.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"

#include "compat.h"
#include "executor.h"
#include "locks.h"
#include "pg_chime.h"

/* How often an idle executor looks whether its database is being dropped */
#define EXEC_POLL_MS		1000

static bool exec_xact_started = false;	/* as xact_started in postgres.c */
static shm_mq_handle *exec_requests;
static shm_mq_handle *exec_replies;
static List *exec_waiting = NIL;	/* requests read while waiting for an EXEC_ACK */
static uint32 exec_settings_hash;	/* of the role's and database's settings at connection */
static char exec_marker_path[MAXPGPATH];
static int	exec_marker_fd = -1;

/* ---- crash markers --------------------------------------------------- */

static void
exec_marker_set(int64 runid)
{
	char		buf[32];
	int			len;

	if (exec_marker_fd < 0)
		return;
	len = snprintf(buf, sizeof(buf), "%020lld\n", (long long) runid);
	if (pwrite(exec_marker_fd, buf, len, 0) != len)
		elog(LOG, "pg_chime executor: could not write \"%s\": %m", exec_marker_path);
}

static void
exec_marker_remove(int code, Datum arg)
{
	if (exec_marker_fd >= 0)
	{
		close(exec_marker_fd);
		exec_marker_fd = -1;
		(void) unlink(exec_marker_path);
	}
}

/*
 * SIGQUIT: the postmaster ends every process after a crash, or for an
 * immediate shutdown.  This executor did not crash: remove its marker
 * (unlink is async-signal-safe) and exit as PostgreSQL's handler does.
 */
static void
exec_quickdie(SIGNAL_ARGS)
{
	if (exec_marker_path[0] != '\0')
		(void) unlink(exec_marker_path);
	_exit(2);
}

static void
exec_marker_open(void)
{
	if (MakePGDirectory(CHIME_CRASH_DIR) < 0 && errno != EEXIST)
	{
		elog(LOG, "pg_chime executor: could not create directory \"%s\": %m", CHIME_CRASH_DIR);
		return;
	}
	snprintf(exec_marker_path, sizeof(exec_marker_path), "%s/executor.%d", CHIME_CRASH_DIR, MyProcPid);
	exec_marker_fd = BasicOpenFile(exec_marker_path, O_RDWR | O_CREAT | O_TRUNC | PG_BINARY);
	if (exec_marker_fd < 0)
	{
		elog(LOG, "pg_chime executor: could not create \"%s\": %m", exec_marker_path);
		exec_marker_path[0] = '\0';
		return;
	}
	on_proc_exit(exec_marker_remove, 0);
	exec_marker_set(0);
}

List *
chime_crashed_runs(void)
{
	List	   *runids = NIL;
	DIR		   *dir = AllocateDir(CHIME_CRASH_DIR);
	struct dirent *de;

	if (dir == NULL)
		return NIL;				/* no executor ever ran */
	while ((de = ReadDir(dir, CHIME_CRASH_DIR)) != NULL)
	{
		char		path[MAXPGPATH];
		char		buf[32];
		int			fd;
		int			len;

		if (strncmp(de->d_name, "executor.", 9) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", CHIME_CRASH_DIR, de->d_name);
		fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
		if (fd >= 0)
		{
			len = read(fd, buf, sizeof(buf) - 1);
			CloseTransientFile(fd);
			if (len > 0)
			{
				int64		runid;

				buf[len] = '\0';
				runid = strtoi64(buf, NULL, 10);
				if (runid > 0)
				{
					int64	   *p = palloc(sizeof(int64));

					*p = runid;
					runids = lappend(runids, p);
				}
			}
		}
		(void) unlink(path);
	}
	FreeDir(dir);
	return runids;
}

/* ---- the session matches its role ------------------------------------ */

/*
 * A hash of the settings a new session of this role in this database
 * would get from pg_db_role_setting (ALTER ROLE/DATABASE ... SET).
 * Inside a transaction.
 */
static uint32
exec_settings_now(void)
{
	Relation	rel = table_open(DbRoleSettingRelationId, AccessShareLock);
	SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	HeapTuple	tup;
	uint32		h = 0;
	Oid			role = GetSessionUserId();

	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_db_role_setting s = (Form_pg_db_role_setting) GETSTRUCT(tup);
		bool		isnull;
		Datum		config;

		if ((s->setdatabase != MyDatabaseId && s->setdatabase != InvalidOid) ||
			(s->setrole != role && s->setrole != InvalidOid))
			continue;
		config = heap_getattr(tup, Anum_pg_db_role_setting_setconfig, RelationGetDescr(rel), &isnull);
		if (!isnull)
		{
			struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(config));

			h = hash_combine(h, hash_bytes_uint32(s->setdatabase) ^ (hash_bytes_uint32(s->setrole) << 1));
			h = hash_combine(h, hash_bytes((unsigned char *) VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v)));
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return h;
}

/*
 * Is this session still what a new session of its role would be?  If the
 * role is gone (dropped, or re-created under the same name), or its
 * settings changed, returns false: with *gone and a message in 'result'
 * when no role of that name exists any more.  Inside a transaction.
 */
static bool
exec_session_current(const char *username, StringInfo result, bool *gone)
{
	*gone = false;
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(GetSessionUserId())))
	{
		if (!OidIsValid(get_role_oid(username, true)))
		{
			*gone = true;
			appendStringInfo(result, "ERROR: 42704: role \"%s\" does not exist\n"
							 "HINT: The job's role was dropped; drop the job or give it to another role.",
							 username);
		}
		return false;
	}
	return exec_settings_now() == exec_settings_hash;
}

/* Is a DROP DATABASE (or another exclusive change of the database) waiting? */
static bool
exec_database_wanted(void)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, InvalidOid, DatabaseRelationId, MyDatabaseId, 0);
	if (LockAcquire(&tag, AccessShareLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		return true;
	LockRelease(&tag, AccessShareLock, true);
	return false;
}

/* ---- transactions and statements, as postgres.c has them ------------- */

static void
exec_start_xact(void)
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

static void
exec_disable_statement_timeout(void)
{
	if (get_timeout_active(STATEMENT_TIMEOUT))
		disable_timeout(STATEMENT_TIMEOUT, false);
}

static void
exec_finish_xact(void)
{
	exec_disable_statement_timeout();
	if (exec_xact_started)
	{
		CommitTransactionCommand();
		exec_xact_started = false;
	}
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

/*
 * Can the outcome be written in the current transaction so that it
 * commits with it?  Not in an aborted block, not when the transaction must
 * commit at once (CREATE DATABASE), not in a read-only one.  'explicit_ok':
 * a block open now (explicit or implicit: both say 'T') is about to be
 * committed; else one is open only if BEGIN left it so.
 */
static bool
exec_can_record_here(bool explicit_ok)
{
	char		state = TransactionBlockStatusCode();

	if (!IsTransactionState() || state == 'E' || (state == 'T' && !explicit_ok))
		return false;
	if ((MyXactFlags & XACT_FLAGS_NEEDIMMEDIATECOMMIT) || XactReadOnly)
		return false;
	return true;
}

/*
 * cron.run_commit, where a run's success is written in the run's own
 * transaction (0 until looked up, and again after a failure).
 */
static Oid	exec_run_commit_relid = InvalidOid;

/*
 * Write the run's success in the current transaction: one row of
 * cron.run_commit (runid, jobid, run_key, message, end_time, job_pid),
 * inserted straight into the heap (the table has no index and no trigger
 * of pg_chime's; this is the cheapest durable write there is), in a
 * subtransaction: a failure to write (the table locked or gone, the disk
 * full) never fails the job, it leaves the recording to the scheduler.
 * The scheduler folds these rows into cron.job_run_details with the run's
 * reply, or at its start if it never got the reply.  Returns whether the
 * row was written.
 */
static bool
exec_record_success(const ExecRequest *req, const char *tag)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = true;

	if (!OidIsValid(exec_run_commit_relid))
	{
		Oid			nsp = get_namespace_oid("cron", true);

		exec_run_commit_relid = OidIsValid(nsp) ? get_relname_relid("run_commit", nsp) : InvalidOid;
		if (!OidIsValid(exec_run_commit_relid))
			return false;
	}
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		Relation	rel = table_open(exec_run_commit_relid, RowExclusiveLock);
		TupleDesc	desc = RelationGetDescr(rel);
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};
		HeapTuple	tup;

		if (desc->natts != 6)
			elog(ERROR, "cron.run_commit does not have the columns pg_chime writes");
		values[0] = Int64GetDatum(req->runid);
		values[1] = Int64GetDatum(req->jobid);
		nulls[2] = req->run_key[0] == '\0';
		values[2] = nulls[2] ? (Datum) 0 : CStringGetTextDatum(req->run_key);
		values[3] = CStringGetTextDatum(tag);
		values[4] = TimestampTzGetDatum(chime_now());
		values[5] = Int32GetDatum(MyProcPid);
		tup = heap_form_tuple(desc, values, nulls);
		simple_heap_insert(rel, tup);
		table_close(rel, NoLock);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		exec_run_commit_relid = InvalidOid;
		elog(LOG, "pg_chime executor: run " INT64_FORMAT " succeeded; the scheduler records it (%s)",
			 req->runid, edata->message);
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return ok;
}

static bool exec_reply(shm_mq_handle *replies, int64 runid, ExecOutcome outcome, bool recorded,
					   uint64 xid, const char *msg);

/*
 * Before the last commit of a run whose success the scheduler records (a
 * job in another database): send the transaction's id, and wait until the
 * scheduler has written it on the run row.  Then, whatever ends the
 * scheduler, the row tells whether the run committed (pg_xact_status), so
 * it is never run again when it did.  Runs sent meanwhile are kept for
 * later.
 */
static void
exec_confirm_commit(const ExecRequest *req)
{
	FullTransactionId fxid = GetTopFullTransactionId();

	exec_disable_statement_timeout();
	if (!exec_reply(exec_replies, req->runid, EXEC_COMMITTING, false, U64FromFullTransactionId(fxid), ""))
		ereport(ERROR,
				(errcode(ERRCODE_ADMIN_SHUTDOWN),
				 errmsg("the scheduler stopped before the run could commit; it was rolled back")));
	for (;;)
	{
		Size		len;
		void	   *data;
		shm_mq_result res = shm_mq_receive(exec_requests, &len, &data, true);
		ExecRequest msg;

		if (res == SHM_MQ_WOULD_BLOCK)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
			continue;
		}
		if (res != SHM_MQ_SUCCESS || len < sizeof(ExecRequest))
			ereport(ERROR,
					(errcode(ERRCODE_ADMIN_SHUTDOWN),
					 errmsg("the scheduler stopped before the run could commit; it was rolled back")));
		memcpy(&msg, data, sizeof(msg));
		if (msg.kind == EXEC_ACK && msg.runid == req->runid)
			return;
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
			StringInfo	copy = makeStringInfo();

			appendBinaryStringInfo(copy, data, len);
			exec_waiting = lappend(exec_waiting, copy);
			MemoryContextSwitchTo(old);
		}
	}
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
 * whether the success was written with the last commit.
 */
static void
exec_statements(const ExecRequest *req, const char *command, StringInfo tag, bool *recorded)
{
	MemoryContext run_cxt = CurrentMemoryContext;
	List	   *parsetrees;
	bool		implicit_block;
	ListCell   *lc;

	exec_start_xact();
	MemoryContextSwitchTo(run_cxt);
	parsetrees = pg_parse_query(command);
	implicit_block = list_length(parsetrees) > 1;

	foreach(lc, parsetrees)
	{
		RawStmt    *parsetree = lfirst_node(RawStmt, lc);
		bool		last = lnext(parsetrees, lc) == NULL;
		CommandTag	commandtag = CreateCommandTag(parsetree->stmt);
		bool		snapshot_set = false;
		MemoryContext stmt_cxt;
		MemoryContext xact_cxt;
		List	   *querytrees;
		List	   *plantrees;
		Portal		portal;
		DestReceiver *receiver;
		QueryCompletion qc;
		int16		format = 0;

		if (IsAbortedTransactionBlockState() && !exec_is_exit_stmt(parsetree->stmt))
			ereport(ERROR,
					(errcode(ERRCODE_IN_FAILED_SQL_TRANSACTION),
					 errmsg("current transaction is aborted, commands ignored until end of transaction block")));

		exec_start_xact();
		if (implicit_block)
			BeginImplicitTransactionBlock();
		CHECK_FOR_INTERRUPTS();
		xact_cxt = CurrentMemoryContext;

		/* a final COMMIT: the success goes in just before it */
		if (last && exec_is_commit(parsetree->stmt) && exec_can_record_here(true))
		{
			if (req->record)
				*recorded = exec_record_success(req, "COMMIT");
			else if (req->confirm)
				exec_confirm_commit(req);
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
			if (req->record && !*recorded && exec_can_record_here(false))
				*recorded = exec_record_success(req, tag->data);
			else if (req->confirm && !exec_is_commit(parsetree->stmt) && exec_can_record_here(false))
				exec_confirm_commit(req);
			exec_finish_xact();
		}
		else if (IsA(parsetree->stmt, TransactionStmt))
			exec_finish_xact();
		else
		{
			CommandCounterIncrement();
			exec_disable_statement_timeout();
		}
		MemoryContextSwitchTo(run_cxt);
		MemoryContextDelete(stmt_cxt);
	}
	exec_finish_xact();
	MemoryContextSwitchTo(run_cxt);
}

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
		int			whole = result->len;

		/* one role's huge error must not make the batch it is recorded in too big */
		result->len = pg_mbcliplen(result->data, result->len, CHIME_MAX_MESSAGE_LEN);
		result->data[result->len] = '\0';
		appendStringInfo(result, " ... (cut: %d bytes in all)", whole);
	}
}

/*
 * Leave nothing of this run's session state to the next: what DISCARD ALL
 * does (portals, SET SESSION AUTHORIZATION, every setting, prepared
 * statements, LISTEN, advisory locks, temporary tables, sequence caches),
 * but for DISCARD PLANS: cached plans are not visible to a job (they
 * revalidate themselves), and keeping them saves re-planning pg_chime's
 * own statements and a job's PL/pgSQL at every run.
 */
static void
exec_reset_session(void)
{
	MemoryContext cxt = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PortalHashTableDeleteAll();
	SetPGVariable("session_authorization", NIL, false);
	ResetAllOptions();
	DropAllPreparedStatements();
	Async_UnlistenAll();
	LockReleaseAll(USER_LOCKMETHOD, true);
	ResetTempTableNamespace();
	ResetSequenceCaches();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
}

/*
 * Run one command, holding the run's advisory locks (released by the
 * session reset after it).  'result' gets the command tag, or the error.
 */
static ExecOutcome
exec_run(const ExecRequest *req, const char *command, const char *username, StringInfo result,
		 bool *recorded)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile ExecOutcome outcome = EXEC_SUCCEEDED;
	bool		gone;

	*recorded = false;

	/*
	 * The job's timeout is its statement_timeout, as if set at connection:
	 * outside any transaction, so that a ROLLBACK in the command keeps it.
	 */
	if (req->timeout_ms > 0)
	{
		char		ms[32];

		snprintf(ms, sizeof(ms), "%d", req->timeout_ms);
		SetConfigOption("statement_timeout", ms, PGC_SUSET, PGC_S_SESSION);
	}

	/* the checks and the locks in the command's first transaction */
	SetCurrentStatementStartTimestamp();
	exec_start_xact();
	MemoryContextSwitchTo(cxt);
	if (!exec_session_current(username, result, &gone))
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
		exec_finish_xact();
		MemoryContextSwitchTo(cxt);
		exec_reset_session();
		return outcome;
	}
	debug_query_string = command;
	pgstat_report_activity(STATE_RUNNING, command);
	exec_marker_set(req->runid);

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		exec_statements(req, command, result, recorded);
		if (IsTransactionOrTransactionBlock())
		{
			/* BEGIN without COMMIT: roll it back, as closing psql would */
			AbortOutOfAnyTransaction();
			exec_xact_started = false;
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
		ErrorData  *edata;

		/* as PostgresMain's error recovery */
		HOLD_INTERRUPTS();
		disable_all_timeouts(false);
		QueryCancelPending = false;
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		exec_xact_started = false;
		RESUME_INTERRUPTS();
		exec_error_message(edata, result);
		FreeErrorData(edata);
		*recorded = false;
		outcome = EXEC_FAILED;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	/* a cancel that came as the command ended has nothing left to cancel */
	QueryCancelPending = false;

	/* a success the command's commit could not carry: right after it */
	if (outcome == EXEC_SUCCEEDED && req->record && !*recorded)
	{
		StartTransactionCommand();
		*recorded = exec_record_success(req, result->data);
		CommitTransactionCommand();
		MemoryContextSwitchTo(cxt);
	}

	exec_reset_session();
	exec_marker_set(0);
	debug_query_string = NULL;
	pgstat_report_activity(STATE_IDLE, NULL);
	return outcome;
}

/* Send a reply; false when the scheduler is gone. */
static bool
exec_reply(shm_mq_handle *replies, int64 runid, ExecOutcome outcome, bool recorded, uint64 xid,
		   const char *msg)
{
	StringInfoData buf;
	ExecReply	reply;
	bool		sent;

	memset(&reply, 0, sizeof(reply));
	reply.runid = runid;
	reply.outcome = (uint8) outcome;
	reply.recorded = recorded;
	reply.xid = xid;
	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, (char *) &reply, sizeof(reply));
	appendStringInfoString(&buf, msg);
	sent = compat_shm_mq_send(replies, buf.len, buf.data, false) == SHM_MQ_SUCCESS;
	pfree(buf.data);
	return sent;
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
	bool		stale = false;
	StringInfo	held = NULL;	/* the request being read, when it was kept aside */

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGQUIT, exec_quickdie);
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
	exec_requests = requests;
	exec_replies = replies;

	BackgroundWorkerInitializeConnection(database, username, 0);
	pgstat_report_appname("pg_chime executor");
	exec_marker_open();

	StartTransactionCommand();
	exec_settings_hash = exec_settings_now();
	CommitTransactionCommand();

	run_cxt = AllocSetContextCreate(TopMemoryContext, "pg_chime run", ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		Size		len;
		void	   *data;
		shm_mq_result res;
		ExecRequest req;
		char	   *command;
		StringInfoData out;
		ExecOutcome outcome;
		bool		recorded = false;

		CHECK_FOR_INTERRUPTS();
		if (exec_waiting != NIL)
		{
			/* one that came while a run waited to commit */
			held = linitial(exec_waiting);
			exec_waiting = list_delete_first(exec_waiting);
			data = held->data;
			len = held->len;
			res = SHM_MQ_SUCCESS;
		}
		else
			res = shm_mq_receive(requests, &len, &data, true);
		if (res == SHM_MQ_WOULD_BLOCK)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 EXEC_POLL_MS, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			/* a cancel (pg_cancel_backend) while idle cancels nothing */
			QueryCancelPending = false;
			CHECK_FOR_INTERRUPTS();
			if (ConfigReloadPending)
			{
				ConfigReloadPending = false;
				ProcessConfigFile(PGC_SIGHUP);
			}
			if (exec_database_wanted())
			{
				elog(LOG, "pg_chime executor for %s leaves database \"%s\": it is being dropped or changed",
					 username, database);
				break;
			}
			continue;
		}
		if (res != SHM_MQ_SUCCESS)
			break;				/* the scheduler let go of us */
		if (len < sizeof(ExecRequest))
			elog(ERROR, "pg_chime executor: short request");

		memcpy(&req, data, sizeof(req));
		MemoryContextReset(run_cxt);
		MemoryContextSwitchTo(run_cxt);
		command = pnstrdup((char *) data + sizeof(req), len - sizeof(req));
		if (held)
		{
			pfree(held->data);
			pfree(held);
			held = NULL;
		}
		if (req.kind != EXEC_RUN)
			continue;			/* an answer that came too late: its run was rolled back */
		initStringInfo(&out);

		/* once stale, every run goes back to the scheduler */
		if (stale)
			outcome = EXEC_STALE;
		else
			outcome = exec_run(&req, command, username, &out, &recorded);
		MemoryContextSwitchTo(run_cxt);
		if (outcome == EXEC_STALE)
			stale = true;
		if (!exec_reply(replies, req.runid, outcome, recorded, 0, out.data))
			break;
	}
	proc_exit(0);
}
