/*-------------------------------------------------------------------------
 *
 * run_log.h
 *	  Recording runs in cron.job_run_details (run_log.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHIME_RUN_LOG_H
#define CHIME_RUN_LOG_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "nodes/pg_list.h"

#include "occurrence.h"

typedef struct ChimeRunRow
{
	int64       jobid;
	int         job_pid; /* 0: not known yet */
	const char *database;
	const char *username;
	const char *command;
	const char *status;
	TimestampTz start_time;
	TimestampTz scheduled_time;
	const char *trigger;
	int32       attempt;
	int32       occurrences;
	const char *run_key;    /* NULL or "": none */
	const char *message;    /* return_message of a skipped or missed row (NULL: the usual) */
	int64       from_runid; /* a retry: the attempt before, whose payload and hook chain it keeps (0: none) */
} ChimeRunRow;

/* How a run ended, as chime_run_finish records it */
typedef struct ChimeRunEnd
{
	int64       runid;
	const char *status;      /* 'succeeded', 'failed' or 'skipped' */
	const char *message;     /* its return_message (NULL allowed) */
	int32       pid;         /* the pid that ran it (0: the row's stays) */
	int32       http_status; /* 0: none */
	const char *body;        /* the start of an HTTP response's body (NULL: none) */
	TimestampTz retry_at;    /* when it will be tried again (0: it will not) */
} ChimeRunEnd;

extern Datum      chime_int8_array(const int64 *values, int n);
extern SPIPlanPtr chime_plan(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types);
extern int64      chime_run_insert(const ChimeRunRow *row);
extern void       chime_run_insert_batch(const ChimeRunRow *rows, int n, int64 *runids);
extern int64      chime_run_insert_manual(int64 jobid, const char *database, const char *username,
										  const char *command, const char *run_key, const char *payload,
										  TimestampTz now);
extern int64      chime_run_insert_hook(int64 jobid, const char *database, const char *username,
										const char *command, const char *payload, Datum chain,
										TimestampTz now);
extern void       chime_run_end_waiting(int64 runid, const char *status, const char *message, TimestampTz now);
extern void       chime_run_set_waiting(int64 runid, const char *message);
extern void       chime_run_unwait(int64 runid, TimestampTz now);
extern char      *chime_run_origin(int64 runid, int64 *first_runid, TimestampTz *scheduled_time);
extern void       chime_run_skip_pending(int64 runid, const char *why, TimestampTz now);
extern void       chime_run_set_key(int64 runid, const char *run_key);
extern void       chime_run_finish(const ChimeRunEnd *ends, int n, TimestampTz end_time);
extern void       chime_run_set_retry(const int64 *runids, const TimestampTz *at, int n);
extern void       chime_run_set_commit_xid(const int64 *runids, const uint64 *xids, int n);
extern void       chime_run_commit_forget(const int64 *runids, int n);
extern bool       chime_key_claim(int64 jobid, const char *run_key, TimestampTz now);
extern void       chime_key_update(int64 jobid, const char *run_key, int64 runid, const char *state,
								   TimestampTz now);
extern bool       chime_key_claimed(int64 jobid, const char *run_key);
extern bool       chime_run_add_occurrence(int64 runid);
extern void       chime_run_running(const int64 *runids, const int32 *pids, int n);
/* The start of return_message of a run whose own process crashed */
#define RUN_CRASHED "crashed:"

/* A run that a restart interrupted, or whose retry was pending */
typedef struct ChimeInterrupted
{
	int64       runid;
	int64       jobid;
	int64       due; /* its occurrence, Unix seconds */
	int32       attempt;
	bool        crashed;                    /* its process crashed: retried once anyway */
	bool        poisoned;                   /* and the one before too: the job is deactivated */
	TimestampTz retry_at;                   /* a pending retry: when */
	char        run_key[CHIME_RUN_KEY_LEN]; /* "" if none */
} ChimeInterrupted;

extern void chime_run_reconcile(TimestampTz now, TimestampTz started, const int64 *manual,
								int nmanual, List *crashed, MemoryContext cxt, List **interrupted);
extern void chime_run_pending_retries(MemoryContext cxt, List **pending);

#endif /* CHIME_RUN_LOG_H */
