/*-------------------------------------------------------------------------
 *
 * run.h
 *	  The run record: one run of a job, from the moment the scheduler
 *	  starts it to its outcome.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHIME_RUN_H
#define CHIME_RUN_H

#include "http.h"
#include "pg_chime.h"
#include "run_log.h"

typedef struct SchedRole SchedRole;

/*
 * How a run ended (or that it was lost with its executor), filled in when
 * it ends; the run is then in sched_done until recorded.
 */
typedef struct SchedOutcome
{
	bool  ok;
	bool  skipped;
	bool  recorded; /* its success is in cron.run_commit too */
	bool  lost;     /* its executor exited before replying */
	char *message;
	int   pid;
	bool  http;        /* an HTTP run: the fields below apply */
	bool  http_retry;  /* a retry could change its outcome */
	int   http_status; /* 0: no response */
	int64 retry_after_us;
	char *body; /* the start of the response body, or NULL */
} SchedOutcome;

/*
 * A run: made when the scheduler starts it (sched_queue_run), handed to an
 * executor or to libcurl, given its outcome when it ends, recorded and
 * freed (sched_record_done).
 */
typedef struct SchedRun
{
	int64             runid; /* < 0 when runs are not recorded */
	int64             jobid;
	int64             due; /* the occurrence (Unix seconds) */
	int32             attempt;
	int64             from_runid; /* a retry: the failed attempt before it (0: none) */
	SchedRole        *role;
	bool              marked_running;             /* its row names the executor's pid */
	bool              ack;                        /* not a run: an EXEC_ACK in the executor's queue */
	char              run_key[CHIME_RUN_KEY_LEN]; /* its once_per key ("": none) */
	char             *concurrency_key;            /* held while it runs (NULL: none) */
	int               concurrency_slot;           /* which of the key's slots */
	ChimeHttpRequest *http;                       /* an HTTP run's request (its secrets looked up) */
	char             *jobname;                    /* for an HTTP run's {{job.name}} */
	char             *payload;                    /* its payload, JSON text (NULL: none) */
	int64             first_runid;                /* a retry: the occurrence's first attempt */
	char             *http_error;                 /* why an HTTP run cannot even start */
	bool              http_inflight;              /* its transfer is going (counted by its owner) */
	char             *msg;                        /* ExecRequest + command (SQL runs; NULL for HTTP) */
	Size              len;
	ChimeRunRow       row; /* its row as started (sched_start_add); command valid until recorded */
	SchedOutcome      out; /* once it has ended */
} SchedRun;

#endif /* CHIME_RUN_H */
