/*-------------------------------------------------------------------------
 *
 * exec_commit.c
 *	  A run's success commits with the run: what the executor writes, or
 *	  has the scheduler write, in the command's last transaction.
 *
 * For jobs in the catalog's database, success is written in the command's
 * last transaction (before a final COMMIT, or before the implicit commit),
 * as a row of cron.run_commit, so the job's effects and the record of its
 * success commit together or not at all (chime_exec_record_success).  For
 * jobs in another database, the last transaction's id is noted on the run
 * row before it commits (chime_exec_confirm_commit).  Commands whose
 * commit may not be shared (CREATE DATABASE, ALTER SYSTEM) are recorded
 * right after (executor.c).  Failures are recorded by the scheduler, which
 * decides on retries.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/resowner.h"

#include "exec_internal.h"
#include "pg_chime.h"

/*
 * cron.run_commit, where a run's success is written in the run's own
 * transaction (0 until looked up, and again after a failure).
 */
static Oid commit_run_commit_relid = InvalidOid;

/*
 * Can the outcome be written in the current transaction so that it
 * commits with it?  Not in an aborted block, not when the transaction must
 * commit at once (CREATE DATABASE), not in a read-only one.  'explicit_ok':
 * a block open now (explicit or implicit: both say 'T') is about to be
 * committed; else one is open only if BEGIN left it so.
 */
bool
chime_exec_can_record_here(bool explicit_ok)
{
	char state = TransactionBlockStatusCode();

	if (!IsTransactionState() || state == 'E' || (state == 'T' && !explicit_ok))
		return false;
	if ((MyXactFlags & XACT_FLAGS_NEEDIMMEDIATECOMMIT) || XactReadOnly)
		return false;
	return true;
}

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
bool
chime_exec_record_success(const ExecRequest *req, const char *tag)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = true;

	Assert(req->record && req->runid > 0);
	Assert(IsTransactionState());
	Assert(memchr(req->run_key, '\0', sizeof(req->run_key)) != NULL);
	if (!OidIsValid(commit_run_commit_relid))
	{
		Oid nsp = get_namespace_oid("cron", true);

		commit_run_commit_relid = OidIsValid(nsp) ? get_relname_relid("run_commit", nsp) : InvalidOid;
		if (!OidIsValid(commit_run_commit_relid))
			return false;
	}
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		Relation  rel = table_open(commit_run_commit_relid, RowExclusiveLock);
		TupleDesc desc = RelationGetDescr(rel);
		Datum     values[6];
		bool      nulls[6] = {false, false, false, false, false, false};
		HeapTuple tup;

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
		ErrorData *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		commit_run_commit_relid = InvalidOid;
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

/*
 * Before the last commit of a run whose success the scheduler records (a
 * job in another database): send the transaction's id, and wait until the
 * scheduler has written it on the run row.  Then, whatever ends the
 * scheduler, the row tells whether the run committed (pg_xact_status), so
 * it is never run again when it did.  Runs sent meanwhile are kept for
 * later.  The wait takes no configuration reload: that waits for the loop
 * between runs.
 */
void
chime_exec_confirm_commit(const ExecRequest *req)
{
	FullTransactionId fxid = GetTopFullTransactionId();

	Assert(req->confirm && req->runid > 0);
	chime_exec_disable_statement_timeout();
	if (!chime_exec_reply(req->runid, EXEC_COMMITTING, false, U64FromFullTransactionId(fxid), "") ||
		!chime_exec_wait_ack(req->runid))
		ereport(ERROR,
				(errcode(ERRCODE_ADMIN_SHUTDOWN),
				 errmsg("the scheduler stopped before the run could commit; it was rolled back")));
}
