/*-------------------------------------------------------------------------
 *
 * locks.h
 *	  pg_chime's advisory locks (locks.c).
 *
 * They use the two-int form of PostgreSQL's advisory locks, the first int
 * a class id of pg_chime's own, so they cannot meet an application's
 * one-bigint locks, nor its two-int locks unless it picks the same class.
 * In pg_locks: locktype 'advisory', classid = the class, objid = the key,
 * objsubid 2.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHIME_LOCKS_H
#define CHIME_LOCKS_H

#include "postgres.h"

/* One running instance of a job: objid from the jobid (executor, session) */
#define CHIME_LOCK_JOB			0x63686D01
/* A concurrency_key: objid from the key's text (executor, session) */
#define CHIME_LOCK_CONCURRENCY	0x63686D02
/* Claiming or releasing a once_per key: objid from jobid and key (transaction) */
#define CHIME_LOCK_RUN_KEY		0x63686D03

extern uint32 chime_lock_id_job(int64 jobid);
extern uint32 chime_lock_id_text(const char *text);
extern uint32 chime_lock_id_run_key(int64 jobid, const char *run_key);

/* Take the lock if it is free: held to the end of the session or transaction. */
extern bool chime_lock_try(uint32 classid, uint32 objid, bool session);

/* Take the transaction-level lock, waiting for it. */
extern void chime_lock_wait(uint32 classid, uint32 objid);

#endif							/* CHIME_LOCKS_H */
