/*-------------------------------------------------------------------------
 *
 * run_log.c
 *	  Where runs are recorded: the rows of cron.job_run_details.
 *
 * Called by the scheduler inside its own transactions (SPI connected), with
 * saved plans for the statements it runs on every iteration.  Every
 * timestamp comes from pg_chime's clock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "pg_chime.h"
#include "run_log.h"

static SPIPlanPtr run_insert_plan = NULL;
static SPIPlanPtr run_finish_plan = NULL;
static SPIPlanPtr run_batch_plan = NULL;

/* A statement prepared once and kept for the life of the process */
SPIPlanPtr
chime_plan(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, types);

		if (p == NULL || SPI_keepplan(p) != 0)
			elog(ERROR, "could not prepare \"%s\"", sql);
		*plan = p;
	}
	return *plan;
}

/*
 * Record a run (or a skipped or missed streak) and return its runid.
 * 'job_pid' 0 and 'start' 0 are stored as NULL.
 */
int64
chime_run_insert(const ChimeRunRow *row)
{
	Oid			types[11] = {INT8OID, INT4OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, INT4OID, INT4OID};
	Datum		values[11];
	char		nulls[11];
	bool		isnull;
	SPIPlanPtr	plan;

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(row->jobid);
	values[1] = Int32GetDatum(row->job_pid);
	if (row->job_pid == 0)
		nulls[1] = 'n';
	values[2] = CStringGetTextDatum(row->database);
	values[3] = CStringGetTextDatum(row->username);
	values[4] = CStringGetTextDatum(row->command);
	values[5] = CStringGetTextDatum(row->status);
	values[6] = TimestampTzGetDatum(row->start_time);
	if (row->start_time == 0)
		nulls[6] = 'n';
	values[7] = TimestampTzGetDatum(row->scheduled_time);
	values[8] = CStringGetTextDatum(row->trigger);
	values[9] = Int32GetDatum(row->attempt);
	values[10] = Int32GetDatum(row->occurrences);

	plan = chime_plan(&run_insert_plan,
					"INSERT INTO cron.job_run_details (jobid, job_pid, database, username, command, "
					"status, start_time, scheduled_time, trigger, attempt, occurrences, end_time, return_message) "
					"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
					"CASE WHEN $6 IN ('skipped', 'missed') THEN $7 END, "
					"CASE $6 WHEN 'skipped' THEN 'the previous run was still running' "
					"WHEN 'missed' THEN 'could not start within catchup' END) "
					"RETURNING runid",
					11, types);
	if (SPI_execute_plan(plan, values, nulls, false, 0) != SPI_OK_INSERT_RETURNING ||
		SPI_processed != 1)
		elog(ERROR, "could not record a run of job " INT64_FORMAT, row->jobid);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

static int
run_cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/*
 * Record many runs with one statement; their runids go to runids[], in the
 * order of rows[].  (Runids come from the sequence in row order, so sorting
 * the returned ones restores that order.)
 */
void
chime_run_insert_batch(const ChimeRunRow *rows, int n, int64 *runids)
{
	Oid			types[11] = {INT8ARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		TEXTARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID,
	TEXTARRAYOID, INT4ARRAYOID, INT4ARRAYOID};
	Datum		values[11];
	Datum	   *cols[11];
	bool		isnull;

	for (int c = 0; c < 11; c++)
		cols[c] = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
	{
		cols[0][i] = Int64GetDatum(rows[i].jobid);
		cols[1][i] = Int32GetDatum(rows[i].job_pid);
		cols[2][i] = CStringGetTextDatum(rows[i].database);
		cols[3][i] = CStringGetTextDatum(rows[i].username);
		cols[4][i] = CStringGetTextDatum(rows[i].command);
		cols[5][i] = CStringGetTextDatum(rows[i].status);
		cols[6][i] = TimestampTzGetDatum(rows[i].start_time);
		cols[7][i] = TimestampTzGetDatum(rows[i].scheduled_time);
		cols[8][i] = CStringGetTextDatum(rows[i].trigger);
		cols[9][i] = Int32GetDatum(rows[i].attempt);
		cols[10][i] = Int32GetDatum(rows[i].occurrences);
	}
	values[0] = PointerGetDatum(construct_array(cols[0], n, INT8OID, 8, true, TYPALIGN_DOUBLE));
	values[1] = PointerGetDatum(construct_array(cols[1], n, INT4OID, 4, true, TYPALIGN_INT));
	for (int c = 2; c <= 5; c++)
		values[c] = PointerGetDatum(construct_array(cols[c], n, TEXTOID, -1, false, TYPALIGN_INT));
	values[6] = PointerGetDatum(construct_array(cols[6], n, TIMESTAMPTZOID, 8, true, TYPALIGN_DOUBLE));
	values[7] = PointerGetDatum(construct_array(cols[7], n, TIMESTAMPTZOID, 8, true, TYPALIGN_DOUBLE));
	values[8] = PointerGetDatum(construct_array(cols[8], n, TEXTOID, -1, false, TYPALIGN_INT));
	values[9] = PointerGetDatum(construct_array(cols[9], n, INT4OID, 4, true, TYPALIGN_INT));
	values[10] = PointerGetDatum(construct_array(cols[10], n, INT4OID, 4, true, TYPALIGN_INT));

	if (SPI_execute_plan(chime_plan(&run_batch_plan,
								  "INSERT INTO cron.job_run_details (runid, jobid, job_pid, database, "
								  "username, command, status, start_time, scheduled_time, trigger, "
								  "attempt, occurrences) "
								  "SELECT nextval('cron.runid_seq'), j, nullif(p, 0), d, u, c, s, st, sc, "
								  "t, a, o FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
								  "AS x(j, p, d, u, c, s, st, sc, t, a, o) RETURNING runid",
								  11, types),
						 values, NULL, false, 0) != SPI_OK_INSERT_RETURNING ||
		SPI_processed != (uint64) n)
		elog(ERROR, "could not record %d runs", n);
	for (int i = 0; i < n; i++)
		runids[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	qsort(runids, n, sizeof(int64), run_cmp_int64);
}

/*
 * Finish runs, all with one statement: status ('succeeded' when ok[i]),
 * return message (NULL allowed), the pid that ran it (0: keep), end time.
 */
void
chime_run_finish(const int64 *runids, const bool *ok, char *const *messages,
				 const int32 *pids, int n, TimestampTz end_time)
{
	Oid			types[5] = {INT8ARRAYOID, BOOLARRAYOID, TEXTARRAYOID, INT4ARRAYOID, TIMESTAMPTZOID};
	Datum		values[5];
	Datum	   *ids = palloc(sizeof(Datum) * n);
	Datum	   *oks = palloc(sizeof(Datum) * n);
	Datum	   *msgs = palloc(sizeof(Datum) * n);
	bool	   *msg_nulls = palloc(sizeof(bool) * n);
	Datum	   *ps = palloc(sizeof(Datum) * n);
	int			dims[1] = {n};
	int			lbs[1] = {1};

	for (int i = 0; i < n; i++)
	{
		ids[i] = Int64GetDatum(runids[i]);
		oks[i] = BoolGetDatum(ok[i]);
		msg_nulls[i] = messages[i] == NULL;
		msgs[i] = messages[i] ? CStringGetTextDatum(messages[i]) : (Datum) 0;
		ps[i] = Int32GetDatum(pids[i]);
	}
	values[0] = PointerGetDatum(construct_array(ids, n, INT8OID, 8, true, TYPALIGN_DOUBLE));
	values[1] = PointerGetDatum(construct_array(oks, n, BOOLOID, 1, true, TYPALIGN_CHAR));
	values[2] = PointerGetDatum(construct_md_array(msgs, msg_nulls, 1, dims, lbs, TEXTOID, -1, false,
												   TYPALIGN_INT));
	values[3] = PointerGetDatum(construct_array(ps, n, INT4OID, 4, true, TYPALIGN_INT));
	values[4] = TimestampTzGetDatum(end_time);

	if (SPI_execute_plan(chime_plan(&run_finish_plan,
								  "UPDATE cron.job_run_details r SET "
								  "status = CASE WHEN x.ok THEN 'succeeded' ELSE 'failed' END, "
								  "return_message = x.msg, job_pid = coalesce(nullif(x.pid, 0), r.job_pid), "
								  "end_time = $5 "
								  "FROM unnest($1, $2, $3, $4) AS x(id, ok, msg, pid) WHERE r.runid = x.id",
								  5, types),
						 values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not finish %d runs", n);
}

/* One more occurrence in the streak a 'skipped' or 'missed' row stands for */
void
chime_run_add_occurrence(int64 runid)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(runid)};

	if (SPI_execute_with_args("UPDATE cron.job_run_details SET occurrences = occurrences + 1 "
							  "WHERE runid = $1", 1, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not count a skipped occurrence in run " INT64_FORMAT, runid);
}

/*
 * Runs handed to an executor after they were recorded: now they are
 * running, in the executor with the given pid.
 */
void
chime_run_running(const int64 *runids, const int32 *pids, int n)
{
	Oid			types[2] = {INT8ARRAYOID, INT4ARRAYOID};
	Datum		values[2];
	Datum	   *ids = palloc(sizeof(Datum) * n);
	Datum	   *ps = palloc(sizeof(Datum) * n);

	for (int i = 0; i < n; i++)
	{
		ids[i] = Int64GetDatum(runids[i]);
		ps[i] = Int32GetDatum(pids[i]);
	}
	values[0] = PointerGetDatum(construct_array(ids, n, INT8OID, 8, true, TYPALIGN_DOUBLE));
	values[1] = PointerGetDatum(construct_array(ps, n, INT4OID, 4, true, TYPALIGN_INT));
	if (SPI_execute_with_args("UPDATE cron.job_run_details r SET status = 'running', job_pid = x.p "
							  "FROM unnest($1, $2) AS x(id, p) "
							  "WHERE r.runid = x.id AND r.status IN ('starting', 'running')",
							  2, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not mark %d runs running", n);
}

/*
 * At scheduler start no run can still be going: every row left 'starting'
 * or 'running' becomes 'failed'.  The runs so ended are appended to
 * *interrupted (ChimeInterrupted, allocated in 'cxt') so that they can be
 * retried.
 */
void
chime_run_reconcile(TimestampTz now, MemoryContext cxt, List **interrupted)
{
	Oid			types[1] = {TIMESTAMPTZOID};
	Datum		values[1] = {TimestampTzGetDatum(now)};

	if (SPI_execute_with_args("UPDATE cron.job_run_details SET status = 'failed', end_time = $1, "
							  "return_message = 'interrupted: the process running it ended "
							  "(server or scheduler restart)' "
							  "WHERE status IN ('starting', 'running') "
							  "RETURNING jobid, scheduled_time, attempt",
							  1, types, values, NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "could not reconcile interrupted runs");

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		ChimeInterrupted *run = MemoryContextAlloc(cxt, sizeof(ChimeInterrupted));
		MemoryContext old = MemoryContextSwitchTo(cxt);

		run->jobid = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		run->due = chime_unix_from_timestamptz(DatumGetTimestampTz(SPI_getbinval(tup, desc, 2, &isnull)));
		run->attempt = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		*interrupted = lappend(*interrupted, run);
		MemoryContextSwitchTo(old);
	}
}
