/*-------------------------------------------------------------------------
 *
 * exec_internal.h
 *	  What the files of the SQL executor share among themselves: the
 *	  executor's queues, its crash marker, its session, its transactions
 *	  and statements, and the success written with a run's own commit.
 *	  Nothing here is for the scheduler (that is executor.h).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHIME_EXEC_INTERNAL_H
#define CHIME_EXEC_INTERNAL_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "storage/dsm.h"
#include "storage/shm_mq.h"

#include "executor.h"

/* ---- exec_queue.c: the executor's side of its two queues --------------- */

/* Map the queue segment and attach as receiver of requests, sender of replies. */
extern void chime_exec_queue_attach(dsm_handle handle);

/*
 * The next request: one kept aside while a run waited for its EXEC_ACK,
 * else one from the queue without waiting.  *data stays valid until the
 * next call.  SHM_MQ_WOULD_BLOCK: none yet; SHM_MQ_DETACHED: the scheduler
 * let go of the queue.
 */
extern shm_mq_result chime_exec_receive(Size *len, void **data);

/* Send a reply; false when the scheduler is gone. */
extern bool chime_exec_reply(int64 runid, ExecOutcome outcome, bool recorded, uint64 xid,
							 const char *msg);

/*
 * Wait for the scheduler's EXEC_ACK of run 'runid', keeping the requests
 * that come meanwhile for chime_exec_receive; false when the scheduler is
 * gone first.
 */
extern bool chime_exec_wait_ack(int64 runid);

/* ---- exec_marker.c: the crash marker ------------------------------------ */

/* Create this executor's marker, removed at exit (0: idle). */
extern void chime_exec_marker_open(void);

/* Note the run going on (0: none). */
extern void chime_exec_marker_set(int64 runid);

/* The SIGQUIT handler: remove the marker and exit at once. */
extern void chime_exec_quickdie(SIGNAL_ARGS);

/* ---- exec_session.c: the session is what a new one of its role would be - */

/* Note the role's and database's settings the session connected with. */
extern void chime_exec_session_begin(void);

/*
 * Is this session still what a new session of its role would be?  Inside
 * a transaction; see exec_session.c.
 */
extern bool chime_exec_session_current(const char *username, StringInfo result, bool *gone);

/* Is a DROP DATABASE (or another exclusive change of the database) waiting? */
extern bool chime_exec_database_wanted(void);

/* Leave nothing of a run's session state to the next run. */
extern void chime_exec_reset_session(void);

/* ---- exec_statements.c: transactions and statements, as postgres.c ----- */

/* Start a transaction unless one is, and arm the statement timeout. */
extern void chime_exec_start_xact(void);

/* Disarm the statement timeout and commit the transaction, if one is open. */
extern void chime_exec_finish_xact(void);

/* Abort whatever transaction (or block) is open, after an error. */
extern void chime_exec_abort_xact(void);

extern void chime_exec_disable_statement_timeout(void);

/* Run the statements of 'command'; 'tag' gets the last command tag. */
extern void chime_exec_statements(const ExecRequest *req, const char *command, StringInfo tag,
								  bool *recorded);

/* ---- exec_commit.c: the success commits with the run ------------------- */

/* Can the outcome be written in the current transaction and commit with it? */
extern bool chime_exec_can_record_here(bool explicit_ok);

/* Write the run's success in the current transaction (cron.run_commit). */
extern bool chime_exec_record_success(const ExecRequest *req, const char *tag);

/* Have the scheduler note the last transaction's id before it commits. */
extern void chime_exec_confirm_commit(const ExecRequest *req);

#endif /* CHIME_EXEC_INTERNAL_H */
