/*-------------------------------------------------------------------------
 *
 * locks.h
 *	  pg_chime's own locks (locks.c).
 *
 * They are locks of the user lock method, as advisory locks are, but with
 * the tag type PostgreSQL reserves for such modules (LOCKTAG_USERLOCK),
 * which no SQL function can take: no role can hold one of them to make
 * another role's job skip or wait.  Each names a 64-bit value made of
 * exact ids (a jobid, a role's OID), so that no two roles' locks can
 * meet, whatever names they choose; only a concurrency key's own part is
 * a hash, and a collision there is between keys of one owner.  In
 * pg_locks: locktype 'userlock', classid and objid the high and low
 * halves of the value, objsubid the class.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHIME_LOCKS_H
#define CHIME_LOCKS_H

#include "postgres.h"

/* One running instance of a job: the jobid (executor, session) */
#define CHIME_LOCK_JOB 1
/* A concurrency_key: the owner's OID, a hash of the key (executor, session) */
#define CHIME_LOCK_CONCURRENCY 2
/* Claiming or releasing a once_per key of a job: the jobid (transaction) */
#define CHIME_LOCK_RUN_KEY 3
/* Creating a job of an owner, counted against cron.max_jobs_per_role: its OID (transaction) */
#define CHIME_LOCK_OWNER_JOBS 4

extern uint64 chime_lock_id_text(const char *text);
extern uint64 chime_lock_id_concurrency(Oid owner, uint32 key_hash);

/* Take the lock if it is free: held to the end of the session or transaction. */
extern bool chime_lock_try(uint16 classid, uint64 id, bool session);

/* Take the transaction-level lock, waiting for it. */
extern void chime_lock_wait(uint16 classid, uint64 id);

#endif /* CHIME_LOCKS_H */
