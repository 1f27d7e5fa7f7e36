/*-------------------------------------------------------------------------
 *
 * executor.h
 *	  SQL executors: persistent background workers, one or more per
 *	  (database, role), fed runs by the scheduler through a pair of shm_mq
 *	  queues.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHIME_EXECUTOR_H
#define CHIME_EXECUTOR_H

#include "postgres.h"

#include "fmgr.h"
#include "nodes/pg_list.h"

#include "occurrence.h"

/* The executor's queue segment: a shm_toc with two shm_mq queues */
#define PG_CHIME_TOC_MAGIC 0x63686d65

#define EXEC_KEY_REQUESTS 1 /* scheduler -> executor */
#define EXEC_KEY_REPLIES  2 /* executor -> scheduler */
#define EXEC_QUEUE_SIZE   (64 * 1024)

/* What the scheduler sends: a run, or the answer to EXEC_COMMITTING */
#define EXEC_RUN 0
#define EXEC_ACK 1

/* A run to execute; the command follows the header. */
typedef struct ExecRequest
{
	uint8 kind; /* EXEC_RUN, or EXEC_ACK (no command) */
	int64 runid;
	int64 jobid;
	int32 timeout_ms;                  /* 0: the role's own statement_timeout */
	bool  lock_job;                    /* hold the job's lock: one instance at a time */
	bool  lock_concurrency;            /* hold the concurrency key's lock */
	bool  record;                      /* write the success in the run's own commit */
	bool  confirm;                     /* else: have the last transaction's id recorded
										* before committing it (EXEC_COMMITTING) */
	bool   allow_superuser;            /* cron.enable_superuser_jobs: the role may be one */
	uint32 concurrency_hash;           /* hash of its concurrency_key (locks.h) */
	char   run_key[CHIME_RUN_KEY_LEN]; /* its once_per key ("": none) */
	int32  attempt;
	int64  due; /* its occurrence (Unix seconds) */
} ExecRequest;

/*
 * The run this process's command is part of (an executor, while it runs
 * one; NULL otherwise): what cron.current_run() shows.
 */
extern const ExecRequest *chime_exec_current_run(void);

/* What became of a run */
typedef enum ExecOutcome
{
	EXEC_SUCCEEDED,
	EXEC_FAILED,
	EXEC_SKIPPED,   /* not run: a lock was held by another run */
	EXEC_STALE,     /* not run: this session no longer matches its
					 * role (settings changed, role re-created);
					 * give the run to a new executor */
	EXEC_COMMITTING /* not an end: the run's last transaction is
					 * 'xid'; record it, then answer EXEC_ACK */
} ExecOutcome;

/*
 * The reply to a request; the message (command tag, error, or why it was
 * not run) follows.  'recorded': the executor wrote the success with the
 * command's own effects, as a row of cron.run_commit, which the scheduler
 * deletes when it records the run.
 */
typedef struct ExecReply
{
	int64  runid;
	uint8  outcome; /* ExecOutcome */
	bool   recorded;
	int32  pid; /* the executor's own (the postmaster may not have told the scheduler yet) */
	uint64 xid; /* EXEC_COMMITTING: the full transaction id */
} ExecReply;

/* How long an executor with nothing to do stays (milliseconds) */
#define EXEC_IDLE_MS (60 * 1000)

/*
 * Crash markers: while it runs a command, an executor keeps the runid in
 * the file CHIME_CRASH_DIR/executor.<pid> (0 while idle).  The file goes
 * when the executor exits in any orderly way, also when the postmaster
 * tells it to quit because another process crashed; so a file left behind
 * after a crash-restart names the run whose own process died.
 */
#define CHIME_CRASH_DIR "pg_chime"

extern PGDLLEXPORT void chime_executor_main(Datum arg);

/*
 * The runids that crash markers left behind name (the scheduler reads them
 * at start, when no executor runs), removing the files.
 */
extern List *chime_crashed_runs(void);

#endif /* CHIME_EXECUTOR_H */
