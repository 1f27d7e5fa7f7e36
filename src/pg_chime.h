/*-------------------------------------------------------------------------
 *
 * pg_chime.h
 *	  Declarations shared by pg_chime's server-side files: settings, the
 *	  clock, time zones and time conversions.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_CHIME_H
#define PG_CHIME_H

#include "postgres.h"

#include "datatype/timestamp.h"

#include "occurrence.h"

/* Settings (pg_chime.c) */
extern char *chime_database_name;
extern char *chime_timezone;
extern int   chime_max_running_jobs;
extern bool  chime_log_run;
extern bool  chime_launch_active_jobs; /* cron.launch_active_jobs: off, nothing starts */
extern int   chime_log_min_messages;
extern bool  chime_log_statement;
extern bool  chime_enable_superuser_jobs;
extern int   chime_max_jobs_per_role;
extern int   chime_max_running_jobs_per_role;
extern int   chime_http_max_in_flight_per_role;
extern bool  chime_preloaded;
extern int64 chime_max_retry_delay_us;
extern int64 chime_run_retention_us; /* cron.run_retention; 0: runs are kept */

/*
 * The longest values of a job's interval options (microseconds): a timeout
 * is a statement_timeout (an int of milliseconds); the others stay far
 * from overflowing the scheduler's arithmetic.
 */
#define CHIME_MAX_TIMEOUT_US        ((int64) 24 * USECS_PER_DAY)
#define CHIME_MAX_RETRY_DELAY_US    ((int64) 36525 * USECS_PER_DAY)
#define CHIME_MAX_CATCHUP_US        ((int64) 36525 * USECS_PER_DAY)
#define CHIME_MAX_JITTER_US         ((int64) USECS_PER_DAY)
#define CHIME_MAX_CONCURRENCY_LIMIT 64 /* a key's slots are the bits of a uint64 */

/* The longest values a job may hold (bytes) */
#define CHIME_MAX_JOBNAME_LEN  200
#define CHIME_MAX_TEXT_LEN     (1024 * 1024) /* command, url, headers, body */
#define CHIME_MAX_KEY_LEN      200           /* concurrency_key */
#define CHIME_MAX_SCHEDULE_LEN 4096
/* A URL, header or body with its secrets in place (an HTTP run fails past it) */
#define CHIME_MAX_EXPANDED_LEN (8 * 1024 * 1024)
/* The longest return_message an executor sends; the rest is cut */
#define CHIME_MAX_MESSAGE_LEN (64 * 1024)

/* pg_chime's clock, the server's, and the conversions (clock.c) */
#include "clock.h"

/* Time zones (zone_pg.c); a job's, cron.timezone by default: job_def.h */
extern const ChimeZone *chime_zone_lookup(const char *name, const char **canonical);

/* Background workers (scheduler.c, executor.c) */
extern PGDLLEXPORT void chime_scheduler_main(Datum arg);

#endif /* PG_CHIME_H */
