/*-------------------------------------------------------------------------
 *
 * exec_queue.c
 *	  The executor's side of its two shm_mq queues: requests from the
 *	  scheduler (runs, and answers to EXEC_COMMITTING), replies to it.
 *
 * While a run waits for the scheduler's EXEC_ACK before its last commit,
 * the runs that come meanwhile are kept aside, and handed out by
 * chime_exec_receive before anything newer from the queue, in the order
 * they came.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shm_toc.h"
#include "utils/memutils.h"

#include "compat.h"
#include "exec_internal.h"

static shm_mq_handle *queue_requests;
static shm_mq_handle *queue_replies;
static List          *queue_waiting = NIL; /* requests read while waiting for an EXEC_ACK */
static StringInfo     queue_held = NULL;   /* the one handed out last from there */

/*
 * Map the queue segment the scheduler made and attach to both queues.
 * Before the connection, as the scheduler waits for it (an executor that
 * cannot connect detaches by exiting).
 */
void
chime_exec_queue_attach(dsm_handle handle)
{
	dsm_segment *seg;
	shm_toc     *toc;
	shm_mq      *mq;

	Assert(queue_requests == NULL && queue_replies == NULL);
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
	queue_requests = shm_mq_attach(mq, seg, NULL);
	mq = shm_toc_lookup(toc, EXEC_KEY_REPLIES, false);
	shm_mq_set_sender(mq, MyProc);
	queue_replies = shm_mq_attach(mq, seg, NULL);
}

/*
 * The next request, without waiting: first those kept aside while a run
 * waited for its EXEC_ACK, in the order they came, then the queue's.
 * *data is the queue's buffer or the copy kept aside, valid until the
 * next call (which frees that copy).
 */
shm_mq_result
chime_exec_receive(Size *len, void **data)
{
	if (queue_held)
	{
		pfree(queue_held->data);
		pfree(queue_held);
		queue_held = NULL;
	}
	if (queue_waiting != NIL)
	{
		/* one that came while a run waited to commit */
		queue_held = linitial(queue_waiting);
		queue_waiting = list_delete_first(queue_waiting);
		Assert(queue_held->len >= sizeof(ExecRequest));
		*data = queue_held->data;
		*len = queue_held->len;
		return SHM_MQ_SUCCESS;
	}
	return shm_mq_receive(queue_requests, len, data, true);
}

/*
 * Send a reply: ExecReply, then the message.  Waits while the queue is
 * full; false when the scheduler is gone.
 */
bool
chime_exec_reply(int64 runid, ExecOutcome outcome, bool recorded, uint64 xid, const char *msg)
{
	StringInfoData buf;
	ExecReply      reply;
	bool           sent;

	Assert(outcome >= EXEC_SUCCEEDED && outcome <= EXEC_COMMITTING);
	Assert((outcome == EXEC_COMMITTING) == (xid != 0));
	memset(&reply, 0, sizeof(reply));
	reply.runid = runid;
	reply.outcome = (uint8) outcome;
	reply.recorded = recorded;
	reply.pid = MyProcPid;
	reply.xid = xid;
	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, (char *) &reply, sizeof(reply));
	appendStringInfoString(&buf, msg);
	sent = compat_shm_mq_send(queue_replies, buf.len, buf.data, false) == SHM_MQ_SUCCESS;
	pfree(buf.data);
	return sent;
}

/*
 * Wait for the EXEC_ACK of run 'runid'; a run (or a stale answer) that
 * comes first is copied aside, in TopMemoryContext, for
 * chime_exec_receive.  False when the scheduler detached or sent less
 * than a request header.  Interrupts are served while waiting (a SIGTERM
 * ends the run, rolled back); a configuration reload waits for the loop.
 */
bool
chime_exec_wait_ack(int64 runid)
{
	for (;;)
	{
		Size          len;
		void         *data;
		shm_mq_result res = shm_mq_receive(queue_requests, &len, &data, true);
		ExecRequest   msg;

		if (res == SHM_MQ_WOULD_BLOCK)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
			continue;
		}
		if (res != SHM_MQ_SUCCESS || len < sizeof(ExecRequest))
			return false;
		memcpy(&msg, data, sizeof(msg));
		if (msg.kind == EXEC_ACK && msg.runid == runid)
			return true;
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
			StringInfo    copy = makeStringInfo();

			appendBinaryStringInfo(copy, data, len);
			queue_waiting = lappend(queue_waiting, copy);
			MemoryContextSwitchTo(old);
		}
	}
}
