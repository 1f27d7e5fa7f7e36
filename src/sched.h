/*-------------------------------------------------------------------------
 *
 * sched.h
 *	  What the files of the scheduler share: the job table's types, the
 *	  run record (run.h), and each stage's functions, listed by the file
 *	  that owns the stage.  Private to the scheduler.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHIME_SCHED_H
#define CHIME_SCHED_H

#include "lib/pairingheap.h"
#include "nodes/pg_list.h"
#include "utils/hsearch.h"
#include "utils/palloc.h"

#include "occurrence.h"
#include "run.h"

/* An executor of the pool (dispatch.h) */
typedef struct SchedExecutor SchedExecutor;

/*
 * A (database, role) pair that runs execute as.  Interned: one copy each,
 * kept for the life of the scheduler, compared by address.
 */
typedef struct SchedRole
{
	char database[NAMEDATALEN]; /* hash key, with username */
	char username[NAMEDATALEN];
	int  nexec; /* its executors (sched_fair_shares) */
} SchedRole;

#define SCHED_ROLE_KEYSIZE (2 * NAMEDATALEN)

/*
 * What decides when and how a job runs, except its command: timing, role
 * and policy.  Jobs with the same settings share one, so that a million
 * jobs on a few schedules cost a few bytes each.  The command is read
 * when a run starts.
 */
typedef struct SchedClass
{
	char        *key; /* hash key: its length, then the settings (chime_job_def_key) */
	ChimeTiming  timing;
	SchedRole   *role;
	char         overlap; /* 's'kip, 'b'uffer_one, 'a'llow */
	int32        timeout_ms;
	int32        max_attempts;
	int64        catchup_s;
	int64        retry_delay_us;
	ChimeOncePer once_per;
	char        *concurrency_key; /* NULL: none */
	int32        concurrency_limit;
	bool         http; /* an HTTP job: run here, by libcurl */
} SchedClass;

/* A job the scheduler knows */
typedef struct SchedJob
{
	int64             jobid; /* hash key */
	pairingheap_node  node;
	int64             due; /* next occurrence, Unix seconds */
	const SchedClass *cls;
	bool              in_heap;
} SchedJob;

/* Per-job state that outlives a reload of the job list */
typedef struct SchedActive
{
	int64 jobid; /* hash key */
	int   running;
	int64 buffered_due;  /* buffer_one: a run to start next (0: none) */
	int64 skip_runid;    /* the 'skipped' row of the current streak (0: none) */
	int64 waiting_runid; /* its run waiting for its concurrency_key (0: none) */
} SchedActive;

/* A failed attempt to make again */
typedef struct SchedRetry
{
	int64       jobid;
	int64       due;     /* the occurrence it belongs to */
	int32       attempt; /* the attempt to make (1: a first attempt put off) */
	TimestampTz at;
	int64       from_runid; /* the failed attempt, whose retry_at says when (0: none) */
	bool        buffered;   /* a buffer_one run let go by the end of the one before */
	bool        crashed;    /* follows a crash of its process: made even past max_attempts */
	int64       seq;        /* in the order planned (sched_retry_seq) */
	char        run_key[CHIME_RUN_KEY_LEN];
} SchedRetry;

/*
 * What a job runs, read when it starts (inside a transaction): the command,
 * and for an HTTP job its request as written (secrets not yet in place).
 */
typedef struct SchedCommand
{
	int64 jobid; /* hash key */
	char *command;
	bool  http;
	char *url;
	char *method;
	char *body;
	List *headers; /* "Name: value" */
	char *jobname; /* "" if none */
} SchedCommand;

/* scheduler.c: the memory of runs and roles, and the scratch memory reset every iteration */
extern MemoryContext sched_runs_cxt;
extern MemoryContext sched_scratch_cxt;

/* sched_tx.c */
extern void        sched_begin(const char *activity);
extern void        sched_key_update(int64 jobid, const char *run_key, int64 runid, const char *state, TimestampTz now);
extern void        sched_deactivate_jobs(const int64 *jobids, int n, bool later_only);
extern void        sched_flush_later(void);
extern void        sched_commit(void);
extern void        sched_fence(void);
extern ErrorData  *sched_catch(void);
extern void        sched_abort(void);
extern void        sched_recording_failed(const char *what);
extern void        sched_recording_failed_with(const char *what, ErrorData *edata);
extern bool        sched_record_tx(const char *activity, const char *what, void (*write)(void *arg), void *arg);
extern bool        sched_log_waiting(void);
extern void        sched_tx_set_extension(Oid extension);
extern bool        sched_later_pending(void);
extern bool        sched_later_has(int64 jobid);
extern TimestampTz sched_log_paused_until(void);
extern void        sched_recording_ok(void);

/* sched_jobs.c */
extern SchedActive  *sched_active_for(int64 jobid, bool create);
extern HTAB         *sched_hash(const char *name, long nelem, Size keysize, Size entrysize, MemoryContext cxt);
extern void          sched_save_horizon(int64 horizon);
extern void          sched_load(const int64 *ids, int nids, TimestampTz since);
extern HTAB         *sched_commands(SchedJob **jobs, int n);
extern char         *sched_command(SchedJob *job);
extern void          sched_jobs_init(void);
extern void          sched_jobs_first_load(TimestampTz now, List **reboot);
extern void          sched_jobs_load_more(List **reboot);
extern void          sched_jobs_save_hint(void);
extern int           sched_jobs_peek_next(SchedJob **jobs, int max);
extern bool          sched_jobs_loading(void);
extern SchedJob     *sched_job_find(int64 jobid);
extern bool          sched_jobs_next_due(TimestampTz *due);
extern void          sched_commands_forget(void);
extern int64         sched_jobs_horizon(void);
extern void          sched_jobs_set_horizon(int64 horizon);
extern SchedJob    **sched_jobs_take_due(int64 now_s, int *n);
extern void          sched_jobs_requeue(SchedJob *job, int64 due);
extern SchedCommand *sched_command_of(int64 jobid);
extern void          sched_jobs_restore_due(SchedJob **due, const int64 *orig_due, int first, int ndue);

/* sched_fire.c */

/* sched_keys.c */
extern void        sched_keys_init(void);
extern bool        sched_key_must_wait(const char *username, const char *key, int32 limit);
extern int         sched_key_take(const char *username, const char *key);
extern void        sched_key_release(const char *username, const char *key, int slot);
extern void        sched_key_wait(const char *username, const char *key, int64 runid, int64 jobid,
								  TimestampTz scheduled, int64 catchup_s, int32 limit);
extern void        sched_keys_commit(void);
extern void        sched_keys_undo(void);
extern TimestampTz sched_keys_next_deadline(void);
extern int64      *sched_keys_take_admitted(int *n);
extern bool        sched_keys_admit(void);
extern void        sched_keys_readmit(const int64 *ids, int n);
extern bool        sched_keys_admitted_pending(void);
extern void        sched_keys_restore(void);
extern void        sched_keys_cancel_jobs(HTAB *gone);
extern bool        sched_key_has_room(const char *username, const char *key, int32 limit);
extern int32       sched_jobs_concurrency_limit(int64 jobid, int32 fallback);
extern void        sched_start_run(SchedJob *job, const char *command, int64 due, TimestampTz now, const char *trigger, int32 attempt, const char *run_key, int64 from_runid);
extern void        sched_fire_group(SchedJob *job, const char *command, const char *key, int64 first_missed, int32 missed, const char *why, int64 latest, int32 coalesced, int64 now_s, TimestampTz now);
extern bool        sched_start_manual(void);
extern bool        sched_fire_due(List **reboot);
extern void        sched_fire_init(void);
extern void        sched_manual_forget(int64 runid);
extern void        sched_run_abandon(SchedRun *run);
extern TimestampTz sched_hooks_waiting_until(void);

/* sched_start.c */
extern void sched_undo_starts(void);
extern void sched_start_add(SchedRun *run, const ChimeRunRow *row, bool at_job);
extern bool sched_starts_pending(void);
extern void sched_commit_starts(void);
extern void sched_count_started(List *runs);

/* sched_retry.c */
extern SchedRetry *sched_defer(int64 jobid, int64 due, int32 attempt, const char *run_key, TimestampTz at, int64 from_runid);
extern TimestampTz sched_retry_at(const SchedRun *run, TimestampTz now);
extern void        sched_fire_retries(TimestampTz now);
extern TimestampTz sched_next_retry(void);
extern bool        sched_retries_pending(void);
extern void        sched_retry_restore(List *pending);
extern void        sched_retry_plan_restored(TimestampTz now);
extern int         sched_retry_count(void);
extern int         sched_retry_jobids(Datum *ids);
extern int64       sched_retry_mark(void);
extern void        sched_retry_fired_forget(void);
extern void        sched_retry_undo(int64 mark);

/* sched_retention.c: a batch runs only when nothing else is due for this long (ms) */
#define SCHED_RETENTION_ROOM_MS 100
extern long sched_retention_wakeup(void);
extern bool sched_retention_ready(long work_ms);
extern void sched_retention_batch(void);

/* sched_record.c */
extern void sched_record_done(void);
extern void sched_done_add(SchedRun *run);

/* dispatch.c */
extern void           sched_fair_shares(void);
extern SchedExecutor *sched_executor_for(SchedRole *role);
extern void           sched_executors_prestart(SchedRole *role, int want);
extern bool           sched_any_room(void);
extern long           sched_retire_idle(void);
extern void           sched_stop_orphans(void);
extern TimestampTz    sched_slot_wait_until(void);
extern SchedRole     *sched_role(const char *database, const char *username);
extern void           sched_dispatch_init(void);
extern int            sched_executor_pid(SchedExecutor *ex);
extern void           sched_dispatch_withdraw(SchedRun *run);
extern void           sched_request_recording(ExecRequest *req, const SchedRole *role, int64 runid);
extern SchedRun      *sched_queue_run(int64 jobid, SchedRole *role, const char *command, int32 timeout_ms, char overlap, const char *concurrency_key, const char *run_key, SchedExecutor *ex, int64 runid, int64 due, int32 attempt, ChimeHttpRequest *http, char *http_error);

/* dispatch_io.c */
extern void sched_read_replies(void);
extern void sched_confirm(void);
extern void sched_send(void);
extern void sched_mark_running(void);

/* dispatch_http.c */
extern void              sched_http_queue(SchedRun *run);
extern void              sched_http_cancel_jobs(HTAB *gone);
extern void              sched_http_unqueue(SchedRun *run);
extern ChimeHttpRequest *sched_http_prepare(int64 jobid, const char *owner, int32 timeout_ms, char **error,
											bool *secret_missing);
extern void              sched_http_forget(SchedRun *run);
extern void              sched_http_request_free(ChimeHttpRequest *req);
extern void              sched_retry_period_taken(int64 jobid, int64 from_runid);
extern void              sched_http_send(void);
extern void              sched_http_context(SchedRun *run, const char *payload, int64 first_runid);
extern void              sched_http_collect(void);
extern void              sched_http_init(void);

#endif /* CHIME_SCHED_H */
