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
#include "nodes/pg_list.h"

typedef struct ChimeRunRow
{
	int64		jobid;
	int			job_pid;		/* 0: not known yet */
	const char *database;
	const char *username;
	const char *command;
	const char *status;
	TimestampTz start_time;
	TimestampTz scheduled_time;
	const char *trigger;
	int32		attempt;
	int32		occurrences;
} ChimeRunRow;

#include "executor/spi.h"

extern SPIPlanPtr chime_plan(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types);
extern int64 chime_run_insert(const ChimeRunRow *row);
extern void chime_run_insert_batch(const ChimeRunRow *rows, int n, int64 *runids);
extern void chime_run_finish(const int64 *runids, const bool *ok, char *const *messages,
							 const int32 *pids, int n, TimestampTz end_time);
extern void chime_run_add_occurrence(int64 runid);
extern void chime_run_running(const int64 *runids, const int32 *pids, int n);
/* A run that a restart interrupted */
typedef struct ChimeInterrupted
{
	int64		jobid;
	int64		due;			/* its occurrence, Unix seconds */
	int32		attempt;
} ChimeInterrupted;

extern void chime_run_reconcile(TimestampTz now, MemoryContext cxt, List **interrupted);

#endif							/* CHIME_RUN_LOG_H */
