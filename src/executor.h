/*-------------------------------------------------------------------------
 *
 * executor.h
 *	  SQL executors: persistent background workers, one per (database,
 *	  role), fed runs by the scheduler through a pair of shm_mq queues.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHIME_EXECUTOR_H
#define CHIME_EXECUTOR_H

#include "postgres.h"

#include "fmgr.h"

/* The executor's queue segment: a shm_toc with two shm_mq queues */
#define PG_CHIME_TOC_MAGIC	0x63686d65

#define EXEC_KEY_REQUESTS	1	/* scheduler -> executor */
#define EXEC_KEY_REPLIES	2	/* executor -> scheduler */
#define EXEC_QUEUE_SIZE		(64 * 1024)

/* A run to execute; the command follows the header. */
typedef struct ExecRequest
{
	int64		runid;
	int64		jobid;
	int32		timeout_ms;		/* 0: none */
	bool		lock_job;		/* hold the job's lock: one instance at a time */
	bool		lock_concurrency;	/* hold the concurrency key's lock */
	uint32		concurrency_id; /* its lock id (locks.h) */
} ExecRequest;

/*
 * What became of it; the message (command tag, error, or why it was
 * skipped) follows.
 */
typedef struct ExecReply
{
	int64		runid;
	bool		ok;
	bool		skipped;		/* not run: a lock was held by another run */
} ExecReply;

/* How long an executor with nothing to do stays (milliseconds) */
#define EXEC_IDLE_MS		(60 * 1000)

extern PGDLLEXPORT void chime_executor_main(Datum arg);

#endif							/* CHIME_EXECUTOR_H */
