/*-------------------------------------------------------------------------
 *
 * run_outcome.h
 *	  What follows the end of a run (run_outcome.c): the job's statistics
 *	  (cron.job_stats), the log line, and after a run's final outcome its
 *	  hooks and notification.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHIME_RUN_OUTCOME_H
#define CHIME_RUN_OUTCOME_H

#include "postgres.h"

#include "datatype/timestamp.h"

/* How an attempt ended, as the statistics and hooks see it */
typedef struct ChimeOutcome
{
	int64       runid; /* <= 0: not recorded (cron.log_run is off) */
	int64       jobid;
	const char *status;  /* 'succeeded', 'failed' or 'skipped' */
	bool        final;   /* the run's last attempt: its outcome */
	bool        counted; /* it was counted running when it started */
	int32       attempt;
	TimestampTz scheduled_time;
	TimestampTz start_time; /* 0: it never started */
	TimestampTz end_time;
	TimestampTz retry_at; /* a failed attempt: when it is tried again (0: never) */
	const char *run_key;  /* NULL or "": none */
	const char *message;
	int32       http_status; /* 0: none */
	const char *trigger;
} ChimeOutcome;

extern void chime_outcomes_record(const ChimeOutcome *o, int n);
extern void chime_outcomes_of_runs(const int64 *runids, int n);
extern void chime_outcomes_notify(void);
extern void chime_stats_started(const int64 *jobids, const TimestampTz *at, int n);
extern void chime_stats_reset_running(void);
extern void chime_stats_forget_gone(const int64 *jobids, int n);
extern bool chime_log_enabled(int elevel);

#endif /* CHIME_RUN_OUTCOME_H */
