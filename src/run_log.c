/*-------------------------------------------------------------------------
 *
 * run_log.c
 *	  Where runs are recorded: the rows of cron.job_run_details.
 *
 * Called by the scheduler inside its own transactions (SPI connected), with
 * saved plans for the statements it runs on every iteration, and by
 * cron.run_now for a manual run.  Every timestamp comes from pg_chime's
 * clock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "pg_chime.h"
#include "run_log.h"
#include "run_outcome.h"

static SPIPlanPtr run_key_claim_plan = NULL;
static SPIPlanPtr run_key_update_plan = NULL;
static SPIPlanPtr run_finish_plan = NULL;
static SPIPlanPtr run_batch_plan = NULL;

/* A statement prepared once and kept for the life of the process */
SPIPlanPtr
chime_plan(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types)
{
	if (*plan == NULL)
	{
		SPIPlanPtr p = SPI_prepare(sql, nargs, types);

		if (p == NULL || SPI_keepplan(p) != 0)
			elog(ERROR, "could not prepare \"%s\"", sql);
		*plan = p;
	}
	return *plan;
}

static int
run_cmp_int64(const void *a, const void *b)
{
	int64 x = *(const int64 *) a;
	int64 y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/* A skipped or missed row's message when the row gives none */
static const char *
run_default_message(const char *status)
{
	if (strcmp(status, "skipped") == 0)
		return "the previous run was still running";
	if (strcmp(status, "missed") == 0)
		return "could not start within catchup";
	return NULL;
}

/*
 * Record many runs with one statement; their runids go to runids[], in the
 * order of rows[].  (Runids come from the sequence in row order, so sorting
 * the returned ones restores that order.)  A 'skipped' or 'missed' row
 * ends as it starts.  'job_pid' 0 is stored as NULL.
 */
void
chime_run_insert_batch(const ChimeRunRow *rows, int n, int64 *runids)
{
#define RUN_COLS 14
	Oid    types[RUN_COLS] = {INT8ARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
							  TEXTARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID,
							  TEXTARRAYOID, INT4ARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
							  INT8ARRAYOID};
	Datum  values[RUN_COLS];
	Datum *cols[RUN_COLS];
	bool  *key_nulls = palloc(sizeof(bool) * n);
	bool  *msg_nulls = palloc(sizeof(bool) * n);
	int    dims[1] = {n};
	int    lbs[1] = {1};
	bool   isnull;

	for (int c = 0; c < RUN_COLS; c++)
		cols[c] = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
	{
		const char *message = rows[i].message ? rows[i].message : run_default_message(rows[i].status);

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
		key_nulls[i] = rows[i].run_key == NULL || rows[i].run_key[0] == '\0';
		cols[11][i] = key_nulls[i] ? (Datum) 0 : CStringGetTextDatum(rows[i].run_key);
		msg_nulls[i] = message == NULL;
		cols[12][i] = message ? CStringGetTextDatum(message) : (Datum) 0;
		cols[13][i] = Int64GetDatum(rows[i].from_runid);
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
	values[11] = PointerGetDatum(construct_md_array(cols[11], key_nulls, 1, dims, lbs, TEXTOID, -1,
													false, TYPALIGN_INT));
	values[12] = PointerGetDatum(construct_md_array(cols[12], msg_nulls, 1, dims, lbs, TEXTOID, -1,
													false, TYPALIGN_INT));
	values[13] = PointerGetDatum(construct_array(cols[13], n, INT8OID, 8, true, TYPALIGN_DOUBLE));

	if (SPI_execute_plan(chime_plan(&run_batch_plan,
									"INSERT INTO cron.job_run_details (runid, jobid, job_pid, database, "
									"username, command, status, start_time, scheduled_time, trigger, "
									"attempt, occurrences, run_key, return_message, end_time, payload, hook_chain, first_runid) "
									"SELECT pg_catalog.nextval('cron.runid_seq'::pg_catalog.regclass), j, "
									"CASE WHEN p OPERATOR(pg_catalog.<>) 0 THEN p END, d, u, c, s, st, sc, "
									"t, a, o, k, m, CASE WHEN s OPERATOR(pg_catalog.=) ANY "
									"('{skipped,missed}'::pg_catalog.text[]) THEN st END, "
									"CASE WHEN f OPERATOR(pg_catalog.<>) 0 THEN (SELECT b.payload FROM cron.job_run_details b "
									"WHERE b.runid OPERATOR(pg_catalog.=) f) END, "
									"CASE WHEN f OPERATOR(pg_catalog.<>) 0 THEN (SELECT b.hook_chain FROM cron.job_run_details b "
									"WHERE b.runid OPERATOR(pg_catalog.=) f) END, "
									"CASE WHEN f OPERATOR(pg_catalog.<>) 0 THEN (SELECT COALESCE(b.first_runid, b.runid) "
									"FROM cron.job_run_details b WHERE b.runid OPERATOR(pg_catalog.=) f) END "
									"FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), "
									"pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5), "
									"pg_catalog.unnest($6), pg_catalog.unnest($7), pg_catalog.unnest($8), "
									"pg_catalog.unnest($9), pg_catalog.unnest($10), pg_catalog.unnest($11), "
									"pg_catalog.unnest($12), pg_catalog.unnest($13), pg_catalog.unnest($14)) "
									"AS x(j, p, d, u, c, s, st, sc, t, a, o, k, m, f) RETURNING runid",
									RUN_COLS, types),
						 values, NULL, false, 0) != SPI_OK_INSERT_RETURNING ||
		SPI_processed != (uint64) n)
		elog(ERROR, "could not record %d runs", n);
	for (int i = 0; i < n; i++)
		runids[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	qsort(runids, n, sizeof(int64), run_cmp_int64);
}

/* Record one run (or a skipped or missed streak) and return its runid. */
int64
chime_run_insert(const ChimeRunRow *row)
{
	int64 runid;

	chime_run_insert_batch(row, 1, &runid);
	return runid;
}

/*
 * Record a run for the scheduler to take, 'starting' at 'now' (its
 * scheduled time too), first attempt, with trigger 'manual' or 'hook' (a
 * hook run with the payload of the outcome it follows and its chain of
 * hooks).  A once_per key (NULL or "": none), which the caller has
 * claimed, is recorded on the run and names the run as its own.  Returns
 * the runid.
 */
static int64
run_insert_pending(int64 jobid, const char *database, const char *username, const char *command,
				   const char *run_key, const char *trigger, const char *payload, Datum chain,
				   TimestampTz now)
{
	Oid   types[9] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, INT8ARRAYOID,
					  TEXTOID};
	Datum values[9];
	char  nulls[9] = "         ";
	bool  has_key = run_key != NULL && run_key[0] != '\0';
	bool  isnull;
	int64 runid;

	values[0] = Int64GetDatum(jobid);
	values[1] = CStringGetTextDatum(database);
	values[2] = CStringGetTextDatum(username);
	values[3] = CStringGetTextDatum(command);
	values[4] = TimestampTzGetDatum(now);
	values[5] = has_key ? CStringGetTextDatum(run_key) : (Datum) 0;
	nulls[5] = has_key ? ' ' : 'n';
	values[6] = payload ? CStringGetTextDatum(payload) : (Datum) 0;
	nulls[6] = payload ? ' ' : 'n';
	values[7] = chain;
	nulls[7] = chain ? ' ' : 'n';
	values[8] = CStringGetTextDatum(trigger);
	if (SPI_execute_with_args("INSERT INTO cron.job_run_details (jobid, database, username, command, "
							  "status, start_time, scheduled_time, trigger, attempt, run_key, payload, hook_chain) "
							  "VALUES ($1, $2, $3, $4, 'starting', $5, $5, $9, 1, $6, $7::pg_catalog.jsonb, $8) "
							  "RETURNING runid",
							  9, types, values, nulls, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "could not record a %s run of job " INT64_FORMAT, trigger, jobid);
	runid = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (has_key)
		chime_key_update(jobid, run_key, runid, "running", now);
	return runid;
}

/* A manual run (cron.run_now), as run_insert_pending records it */
int64
chime_run_insert_manual(int64 jobid, const char *database, const char *username,
						const char *command, const char *run_key, const char *payload, TimestampTz now)
{
	return run_insert_pending(jobid, database, username, command, run_key, "manual", payload, (Datum) 0, now);
}

/* A hook run, as run_insert_pending records it (its key, if any, is claimed when it is taken) */
int64
chime_run_insert_hook(int64 jobid, const char *database, const char *username, const char *command,
					  const char *payload, Datum chain, TimestampTz now)
{
	return run_insert_pending(jobid, database, username, command, NULL, "hook", payload, chain, now);
}

/*
 * Finish runs, all with one statement: status ('succeeded', 'failed' or
 * 'skipped'), return message (NULL allowed), the pid that ran it (0: keep),
 * end time, for HTTP runs the status (0: none) and the start of the
 * response body (NULL: none), and when a failed run will be tried again
 * (0: it will not).
 */
void
chime_run_finish(const ChimeRunEnd *ends, int n, TimestampTz end_time)
{
	Oid    types[8] = {INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT4ARRAYOID, TIMESTAMPTZOID,
					   INT4ARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID};
	Datum  values[8];
	Datum *ra = palloc(sizeof(Datum) * n);
	bool  *ra_nulls = palloc(sizeof(bool) * n);
	Datum *hs = palloc(sizeof(Datum) * n);
	Datum *bs = palloc(sizeof(Datum) * n);
	bool  *body_nulls = palloc(sizeof(bool) * n);
	Datum *ids = palloc(sizeof(Datum) * n);
	Datum *sts = palloc(sizeof(Datum) * n);
	Datum *msgs = palloc(sizeof(Datum) * n);
	bool  *msg_nulls = palloc(sizeof(bool) * n);
	Datum *ps = palloc(sizeof(Datum) * n);
	int    dims[1] = {n};
	int    lbs[1] = {1};

	for (int i = 0; i < n; i++)
	{
		const ChimeRunEnd *e = &ends[i];

		ids[i] = Int64GetDatum(e->runid);
		sts[i] = CStringGetTextDatum(e->status);
		msg_nulls[i] = e->message == NULL;
		msgs[i] = e->message ? CStringGetTextDatum(e->message) : (Datum) 0;
		ps[i] = Int32GetDatum(e->pid);
		ra_nulls[i] = e->retry_at == 0;
		ra[i] = TimestampTzGetDatum(e->retry_at);
		hs[i] = Int32GetDatum(e->http_status);
		body_nulls[i] = e->body == NULL;
		/* a body that is not valid text is kept as its escaped bytes */
		bs[i] = (Datum) 0;
		if (e->body)
			bs[i] = CStringGetTextDatum(pg_verifymbstr(e->body, strlen(e->body), true) ? e->body : "(binary body)");
	}
	values[0] = PointerGetDatum(construct_array(ids, n, INT8OID, 8, true, TYPALIGN_DOUBLE));
	values[1] = PointerGetDatum(construct_array(sts, n, TEXTOID, -1, false, TYPALIGN_INT));
	values[5] = PointerGetDatum(construct_array(hs, n, INT4OID, 4, true, TYPALIGN_INT));
	values[6] = PointerGetDatum(construct_md_array(bs, body_nulls, 1, dims, lbs, TEXTOID, -1, false,
												   TYPALIGN_INT));
	values[2] = PointerGetDatum(construct_md_array(msgs, msg_nulls, 1, dims, lbs, TEXTOID, -1, false,
												   TYPALIGN_INT));
	values[3] = PointerGetDatum(construct_array(ps, n, INT4OID, 4, true, TYPALIGN_INT));
	values[4] = TimestampTzGetDatum(end_time);
	values[7] = PointerGetDatum(construct_md_array(ra, ra_nulls, 1, dims, lbs, TIMESTAMPTZOID, 8, true,
												   TYPALIGN_DOUBLE));

	if (SPI_execute_plan(chime_plan(&run_finish_plan,
									"UPDATE cron.job_run_details r SET status = x.st, "
									"return_message = x.msg, "
									"job_pid = CASE WHEN x.pid OPERATOR(pg_catalog.<>) 0 THEN x.pid ELSE r.job_pid END, "
									"end_time = $5, http_status = CASE WHEN x.hs OPERATOR(pg_catalog.<>) 0 THEN x.hs END, "
									"response_body = x.b, retry_at = x.ra "
									"FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), "
									"pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($6), "
									"pg_catalog.unnest($7), pg_catalog.unnest($8)) AS x(id, st, msg, pid, hs, b, ra) "
									"WHERE r.runid OPERATOR(pg_catalog.=) x.id",
									8, types),
						 values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not finish %d runs", n);
}

/*
 * Claim a once_per key for a job (the caller holds its CHIME_LOCK_RUN_KEY
 * lock); false if it is claimed already.
 */
bool
chime_key_claim(int64 jobid, const char *run_key, TimestampTz now)
{
	Oid   types[3] = {INT8OID, TEXTOID, TIMESTAMPTZOID};
	Datum values[3] = {Int64GetDatum(jobid), CStringGetTextDatum(run_key), TimestampTzGetDatum(now)};

	if (SPI_execute_plan(chime_plan(&run_key_claim_plan,
									"INSERT INTO cron.job_run_key (jobid, run_key, state, claimed_at) "
									"VALUES ($1, $2, 'running', $3) ON CONFLICT DO NOTHING",
									3, types),
						 values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not claim key %s of job " INT64_FORMAT, run_key, jobid);
	return SPI_processed == 1;
}

/*
 * Where a claimed key stands: its run is 'runid' and its state 'state'
 * ('running', 'succeeded', 'failed'; NULL: the key is released, deleted).
 * Finished states get finished_at.
 */
void
chime_key_update(int64 jobid, const char *run_key, int64 runid, const char *state, TimestampTz now)
{
	Oid   types[5] = {INT8OID, TEXTOID, INT8OID, TEXTOID, TIMESTAMPTZOID};
	Datum values[5] = {Int64GetDatum(jobid), CStringGetTextDatum(run_key), Int64GetDatum(runid),
					   CStringGetTextDatum(state ? state : "released"), TimestampTzGetDatum(now)};

	if (state == NULL)
	{
		if (SPI_execute_with_args("DELETE FROM cron.job_run_key "
								  "WHERE jobid OPERATOR(pg_catalog.=) $1 AND run_key OPERATOR(pg_catalog.=) $2",
								  2, types, values, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not release key %s of job " INT64_FORMAT, run_key, jobid);
		return;
	}
	if (SPI_execute_plan(chime_plan(&run_key_update_plan,
									"UPDATE cron.job_run_key SET runid = $3, state = $4, "
									"finished_at = CASE WHEN $4 OPERATOR(pg_catalog.=) 'running' THEN NULL ELSE $5 END "
									"WHERE jobid OPERATOR(pg_catalog.=) $1 AND run_key OPERATOR(pg_catalog.=) $2",
									5, types),
						 values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update key %s of job " INT64_FORMAT, run_key, jobid);
}

/* Is the key claimed? */
bool
chime_key_claimed(int64 jobid, const char *run_key)
{
	Oid   types[2] = {INT8OID, TEXTOID};
	Datum values[2] = {Int64GetDatum(jobid), CStringGetTextDatum(run_key)};

	if (SPI_execute_with_args("SELECT 1 FROM cron.job_run_key "
							  "WHERE jobid OPERATOR(pg_catalog.=) $1 AND run_key OPERATOR(pg_catalog.=) $2",
							  2, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read key %s of job " INT64_FORMAT, run_key, jobid);
	return SPI_processed > 0;
}

/*
 * One more occurrence in the streak a 'skipped' or 'missed' row stands
 * for; false when the row is gone or locked (a role deleting its history
 * holds its rows until it commits): the caller starts a new row.
 */
bool
chime_run_add_occurrence(int64 runid)
{
	Oid   types[1] = {INT8OID};
	Datum values[1] = {Int64GetDatum(runid)};

	if (SPI_execute_with_args("UPDATE cron.job_run_details r SET occurrences = r.occurrences OPERATOR(pg_catalog.+) 1 "
							  "FROM (SELECT runid FROM cron.job_run_details WHERE runid OPERATOR(pg_catalog.=) $1 "
							  "FOR UPDATE SKIP LOCKED) x WHERE r.runid OPERATOR(pg_catalog.=) x.runid",
							  1, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not count a skipped occurrence in run " INT64_FORMAT, runid);
	return SPI_processed == 1;
}

/*
 * Runs handed to an executor after they were recorded: now they are
 * running, in the executor with the given pid.
 */
void
chime_run_running(const int64 *runids, const int32 *pids, int n)
{
	Oid    types[2] = {INT8ARRAYOID, INT4ARRAYOID};
	Datum  values[2];
	Datum *ids = palloc(sizeof(Datum) * n);
	Datum *ps = palloc(sizeof(Datum) * n);

	for (int i = 0; i < n; i++)
	{
		ids[i] = Int64GetDatum(runids[i]);
		ps[i] = Int32GetDatum(pids[i]);
	}
	values[0] = PointerGetDatum(construct_array(ids, n, INT8OID, 8, true, TYPALIGN_DOUBLE));
	values[1] = PointerGetDatum(construct_array(ps, n, INT4OID, 4, true, TYPALIGN_INT));
	/* rows an executor is finishing (locked by its commit) are passed over */
	if (SPI_execute_with_args("UPDATE cron.job_run_details r SET status = 'running', job_pid = y.p "
							  "FROM (SELECT d.runid, x.p FROM ROWS FROM (pg_catalog.unnest($1), "
							  "pg_catalog.unnest($2)) AS x(id, p) "
							  "JOIN cron.job_run_details d ON d.runid OPERATOR(pg_catalog.=) x.id "
							  "WHERE d.status OPERATOR(pg_catalog.=) ANY ('{starting,running}'::pg_catalog.text[]) "
							  "FOR UPDATE OF d SKIP LOCKED) y "
							  "WHERE r.runid OPERATOR(pg_catalog.=) y.runid",
							  2, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not mark %d runs running", n);
}

/* An int8[] of n values, for a statement's parameter */
Datum
chime_int8_array(const int64 *values, int n)
{
	Datum *d = palloc(sizeof(Datum) * (n + 1));

	for (int i = 0; i < n; i++)
		d[i] = Int64GetDatum(values[i]);
	return PointerGetDatum(construct_array(d, n, INT8OID, 8, true, TYPALIGN_DOUBLE));
}

/*
 * Set (at != 0) or clear when runs will be tried again.
 */
void
chime_run_set_retry(const int64 *runids, const TimestampTz *at, int n)
{
	Oid    types[2] = {INT8ARRAYOID, TIMESTAMPTZARRAYOID};
	Datum  values[2];
	Datum *ats = palloc(sizeof(Datum) * n);
	bool  *nulls = palloc(sizeof(bool) * n);
	int    dims[1] = {n};
	int    lbs[1] = {1};

	static SPIPlanPtr plan = NULL;

	for (int i = 0; i < n; i++)
	{
		ats[i] = TimestampTzGetDatum(at ? at[i] : 0);
		nulls[i] = at == NULL || at[i] == 0;
	}
	values[0] = chime_int8_array(runids, n);
	values[1] = PointerGetDatum(construct_md_array(ats, nulls, 1, dims, lbs, TIMESTAMPTZOID, 8, true,
												   TYPALIGN_DOUBLE));
	if (SPI_execute_plan(chime_plan(&plan,
									"UPDATE cron.job_run_details r SET retry_at = x.at "
									"FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS x(id, at) "
									"WHERE r.runid OPERATOR(pg_catalog.=) x.id",
									2, types),
						 values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not note the retries of %d runs", n);
}

/*
 * A run read back from a row whose first five columns are runid, jobid,
 * scheduled_time, attempt, run_key; appended to *list, in 'cxt'.
 */
static ChimeInterrupted *
run_read_attempt(HeapTuple tup, TupleDesc desc, MemoryContext cxt, List **list)
{
	bool              isnull;
	ChimeInterrupted *run = MemoryContextAllocZero(cxt, sizeof(ChimeInterrupted));
	char             *key = SPI_getvalue(tup, desc, 5);
	MemoryContext     old;

	run->runid = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	run->jobid = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
	run->due = chime_unix_from_timestamptz(DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull)));
	run->attempt = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
	if (key)
		strlcpy(run->run_key, key, sizeof(run->run_key));
	old = MemoryContextSwitchTo(cxt);
	*list = lappend(*list, run);
	MemoryContextSwitchTo(old);
	return run;
}

/*
 * The runs recorded now: their cron.run_commit rows (written by their
 * executors with the runs' own commits) are no longer needed.
 */
void
chime_run_commit_forget(const int64 *runids, int n)
{
	Oid   types[1] = {INT8ARRAYOID};
	Datum values[1] = {chime_int8_array(runids, n)};

	static SPIPlanPtr plan = NULL;

	if (SPI_execute_plan(chime_plan(&plan, "DELETE FROM cron.run_commit WHERE runid OPERATOR(pg_catalog.=) ANY ($1)", 1, types),
						 values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not clear %d committed runs", n);
}

/*
 * Note the transaction that is about to commit each run (a job in another
 * database), before it commits.
 */
void
chime_run_set_commit_xid(const int64 *runids, const uint64 *xids, int n)
{
	Oid   types[2] = {INT8ARRAYOID, INT8ARRAYOID};
	Datum values[2] = {chime_int8_array(runids, n), chime_int8_array((const int64 *) xids, n)};

	static SPIPlanPtr plan = NULL;

	if (SPI_execute_plan(chime_plan(&plan,
									"UPDATE cron.job_run_details r "
									"SET commit_xid = x.xid::pg_catalog.text::pg_catalog.xid8 "
									"FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS x(id, xid) "
									"WHERE r.runid OPERATOR(pg_catalog.=) x.id",
									2, types),
						 values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not note the transactions of %d runs", n);
}

/*
 * The retries planned before the scheduler stopped: failed attempts with
 * retry_at set ('-infinity': an interrupted attempt whose retry has no time
 * yet).  Appended to *pending (ChimeInterrupted, in 'cxt').
 */
void
chime_run_pending_retries(MemoryContext cxt, List **pending)
{
	if (SPI_execute("SELECT runid, jobid, scheduled_time, attempt, run_key, retry_at, "
					"pg_catalog.starts_with(return_message, '" RUN_CRASHED "') IS TRUE "
					"FROM cron.job_run_details WHERE retry_at IS NOT NULL",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the pending retries");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple         tup = SPI_tuptable->vals[i];
		TupleDesc         desc = SPI_tuptable->tupdesc;
		bool              isnull;
		ChimeInterrupted *run = run_read_attempt(tup, desc, cxt, pending);

		run->retry_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 6, &isnull));
		run->crashed = DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull));
	}
}

/*
 * A run whose own process crashed: was the job's attempt before it (by
 * start time) cut short by a crash too?
 */
static bool
run_crashed_before(int64 jobid, int64 runid)
{
	Oid   types[2] = {INT8OID, INT8OID};
	Datum values[2] = {Int64GetDatum(jobid), Int64GetDatum(runid)};
	bool  crashed = false;

	if (SPI_execute_with_args("SELECT return_message FROM cron.job_run_details "
							  "WHERE jobid OPERATOR(pg_catalog.=) $1 AND runid OPERATOR(pg_catalog.<>) $2 "
							  "AND status OPERATOR(pg_catalog.=) ANY ('{succeeded,failed}'::pg_catalog.text[]) "
							  "ORDER BY start_time DESC, runid DESC LIMIT 1",
							  2, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the runs of job " INT64_FORMAT, jobid);
	if (SPI_processed == 1)
	{
		char *msg = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		crashed = msg && strncmp(msg, RUN_CRASHED, strlen(RUN_CRASHED)) == 0;
	}
	return crashed;
}

/* Append v to the growing array *a (*n values of *cap) */
static void
run_push(int64 **a, int *n, int *cap, int64 v)
{
	if (*n == *cap)
	{
		*cap = Max(*cap * 2, 16);
		*a = *a ? repalloc(*a, sizeof(int64) * *cap) : palloc(sizeof(int64) * *cap);
	}
	(*a)[(*n)++] = v;
}

/*
 * A condition on a key row k: no session holds it (cron.release_key or
 * cron.run_now in an open transaction), so the statement never waits for
 * one; a row held keeps its state, which only its own job's owner can
 * cause.
 */
#define KEY_NOT_HELD \
	"AND EXISTS (SELECT 1 FROM cron.job_run_key l WHERE l.jobid OPERATOR(pg_catalog.=) k.jobid " \
	"AND l.run_key OPERATOR(pg_catalog.=) k.run_key FOR UPDATE SKIP LOCKED)"

/*
 * At scheduler start no run can still be going: every row left 'starting'
 * or 'running' becomes 'failed', but for the runs still to be taken: the
 * hook runs, and the manual runs named in 'manual' (with nmanual -1, those
 * recorded after 'started'), none of them with a crash marker or a
 * transaction noted.  Those whose runid 'crashed' lists (their
 * executor's crash marker was left behind) say that their process crashed;
 * a job whose attempt before that one crashed too is deactivated (the
 * poison-job rule), with a WARNING.  The runs so ended are appended to
 * *interrupted (ChimeInterrupted, allocated in 'cxt'), 'crashed' set for
 * those retried once whatever max_attempts says, 'poisoned' for those of a
 * deactivated job.  The others get retry_at '-infinity', "a retry whose
 * time is still to be set", in the same transaction: a scheduler that stops
 * before it has set the time leaves them to the next one as pending
 * retries, and their keys stay taken.
 */
void
chime_run_reconcile(TimestampTz now, TimestampTz started, const int64 *manual, int nmanual,
					List *crashed, MemoryContext cxt, List **interrupted)
{
	Oid            types[5] = {TIMESTAMPTZOID, INT8ARRAYOID, TIMESTAMPTZOID, INT8ARRAYOID, BOOLOID};
	Datum          values[5];
	Datum         *mids = palloc(sizeof(Datum) * (Max(nmanual, 0) + 1));
	Datum         *ids = palloc(sizeof(Datum) * (list_length(crashed) + 1));
	int            n = 0;
	ListCell      *lc;
	SPITupleTable *rows;
	uint64         nrows;
	int64         *finals = NULL; /* runs that reached their final outcome here */
	int            nfinals = 0;
	int            maxfinals = 0;

	foreach(lc, crashed)
		ids[n++] = Int64GetDatum(*(int64 *) lfirst(lc));
	values[0] = TimestampTzGetDatum(now);
	values[1] = PointerGetDatum(construct_array(ids, n, INT8OID, 8, true, TYPALIGN_DOUBLE));
	values[2] = TimestampTzGetDatum(started);
	for (int i = 0; i < nmanual; i++)
		mids[i] = Int64GetDatum(manual[i]);
	values[3] = PointerGetDatum(construct_array(mids, Max(nmanual, 0), INT8OID, 8, true, TYPALIGN_DOUBLE));
	values[4] = BoolGetDatum(nmanual < 0);

	/*
	 * First the runs whose success their executors wrote with their own
	 * commits (cron.run_commit) and the scheduler never recorded: they
	 * succeeded, and so did their keys.
	 */
	if (SPI_execute_with_args("WITH c AS (DELETE FROM cron.run_commit RETURNING *), "
							  "runs AS (UPDATE cron.job_run_details r SET status = 'succeeded', "
							  "return_message = c.message, end_time = c.end_time, job_pid = c.job_pid "
							  "FROM c WHERE r.runid OPERATOR(pg_catalog.=) c.runid "
							  "AND r.status OPERATOR(pg_catalog.=) ANY ('{starting,running}'::pg_catalog.text[]) "
							  "RETURNING r.runid), "
							  "keys AS (UPDATE cron.job_run_key k SET state = 'succeeded', runid = c.runid, "
							  "finished_at = c.end_time FROM c WHERE k.jobid OPERATOR(pg_catalog.=) c.jobid "
							  "AND k.run_key OPERATOR(pg_catalog.=) c.run_key " KEY_NOT_HELD ") "
							  "SELECT runid FROM runs",
							  0, NULL, NULL, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the runs that committed");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool isnull;

		run_push(&finals, &nfinals, &maxfinals,
				 DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)));
	}

	/*
	 * Manual runs that cron.run_now handed over and no scheduler took yet
	 * ('manual', or when there were too many to list, those recorded after
	 * 'started') were never given to anyone: they are still to start.  A run of another database
	 * that noted its last transaction (commit_xid) before committing it
	 * succeeded if that transaction committed; its key too.
	 */
	if (SPI_execute_with_args("WITH ended AS (UPDATE cron.job_run_details SET end_time = $1, "
							  "status = CASE WHEN pg_catalog.pg_xact_status(commit_xid) OPERATOR(pg_catalog.=) 'committed' "
							  "THEN 'succeeded' ELSE 'failed' END, "
							  "return_message = CASE WHEN pg_catalog.pg_xact_status(commit_xid) OPERATOR(pg_catalog.=) 'committed' "
							  "THEN 'committed (its end was recorded when the scheduler restarted)' "
							  "WHEN runid OPERATOR(pg_catalog.=) ANY ($2) THEN '" RUN_CRASHED " the process "
							  "running it ended abnormally and the server restarted' "
							  "ELSE 'interrupted: the process running it ended "
							  "(server or scheduler restart)' END, "
							  "retry_at = CASE WHEN pg_catalog.pg_xact_status(commit_xid) OPERATOR(pg_catalog.=) 'committed' "
							  "THEN NULL ELSE '-infinity'::pg_catalog.timestamptz END "
							  "WHERE status OPERATOR(pg_catalog.=) ANY ('{starting,running}'::pg_catalog.text[]) "
							  "AND NOT (trigger OPERATOR(pg_catalog.=) ANY ('{manual,hook}'::pg_catalog.text[]) "
							  "AND status OPERATOR(pg_catalog.=) 'starting' AND job_pid IS NULL AND commit_xid IS NULL "
							  "AND NOT runid OPERATOR(pg_catalog.=) ANY ($2) "
							  "AND (trigger OPERATOR(pg_catalog.=) 'hook' OR runid OPERATOR(pg_catalog.=) ANY ($4) "
							  "OR ($5 AND start_time OPERATOR(pg_catalog.>=) $3))) "
							  "RETURNING runid, jobid, scheduled_time, attempt, run_key, "
							  "runid OPERATOR(pg_catalog.=) ANY ($2) AS crashed, status), "
							  "keys AS (UPDATE cron.job_run_key k SET state = 'succeeded', runid = e.runid, finished_at = $1 "
							  "FROM ended e WHERE e.status OPERATOR(pg_catalog.=) 'succeeded' "
							  "AND k.jobid OPERATOR(pg_catalog.=) e.jobid AND k.run_key OPERATOR(pg_catalog.=) e.run_key " KEY_NOT_HELD ") "
							  "SELECT runid, jobid, scheduled_time, attempt, run_key, crashed, "
							  "status OPERATOR(pg_catalog.=) 'failed' FROM ended",
							  5, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not reconcile interrupted runs");

	rows = SPI_tuptable;
	nrows = SPI_processed;
	for (uint64 i = 0; i < nrows; i++)
	{
		HeapTuple tup = rows->vals[i];
		TupleDesc desc = rows->tupdesc;
		bool      isnull;

		if (!DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull)))
			run_push(&finals, &nfinals, &maxfinals, DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull)));
		else
			run_read_attempt(tup, desc, cxt, interrupted)->crashed =
				DatumGetBool(SPI_getbinval(tup, desc, 6, &isnull));
	}

	/* the poison-job rule */
	foreach(lc, *interrupted)
	{
		ChimeInterrupted *run = lfirst(lc);
		Oid               ptypes[2] = {INT8OID, INT8OID};
		Datum             pvalues[2] = {Int64GetDatum(run->jobid), Int64GetDatum(run->runid)};

		if (!run->crashed || !run_crashed_before(run->jobid, run->runid))
			continue;
		run->poisoned = true;
		if (SPI_execute_with_args("UPDATE cron.job j SET active = false WHERE jobid OPERATOR(pg_catalog.=) $1 "
								  "AND EXISTS (SELECT 1 FROM cron.job l WHERE l.jobid OPERATOR(pg_catalog.=) j.jobid "
								  "FOR UPDATE SKIP LOCKED) "
								  "RETURNING coalesce(jobname, ''), username",
								  1, ptypes, pvalues, NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
			elog(ERROR, "could not deactivate job " INT64_FORMAT, run->jobid);
		if (SPI_processed == 1)
			ereport(WARNING,
					(errmsg("pg_chime: job " INT64_FORMAT " (%s, role %s) deactivated: two attempts in a row "
							"crashed the process running them",
							run->jobid,
							SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
							SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2)),
					 errhint("See the server log for the crashes; cron.alter_job(" INT64_FORMAT
							 ", active => true) lets it run again.",
							 run->jobid)));
		if (SPI_execute_with_args("UPDATE cron.job_run_details SET return_message = return_message OPERATOR(pg_catalog.||) "
								  "'; the job was deactivated: its previous attempt crashed too', retry_at = NULL "
								  "WHERE runid OPERATOR(pg_catalog.=) $2 AND jobid OPERATOR(pg_catalog.=) $1",
								  2, ptypes, pvalues, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not record the deactivation of job " INT64_FORMAT, run->jobid);
		/* no retry: this was the run's outcome */
		run_push(&finals, &nfinals, &maxfinals, run->runid);
	}

	/*
	 * Nothing runs now; the runs that reached their final outcome here are
	 * counted, and fire their hooks, in this transaction.
	 */
	chime_stats_reset_running();
	chime_outcomes_of_runs(finals, nfinals);

	/*
	 * Their keys failed with them (a retry takes its key up again); keys
	 * with a retry still to be made stay as they are.
	 */
	if (SPI_execute_with_args("UPDATE cron.job_run_key k SET state = 'failed', finished_at = $1 "
							  "WHERE state OPERATOR(pg_catalog.=) 'running' AND NOT EXISTS (SELECT 1 FROM cron.job_run_details r "
							  "WHERE r.jobid OPERATOR(pg_catalog.=) k.jobid AND r.retry_at IS NOT NULL "
							  "AND r.run_key OPERATOR(pg_catalog.=) k.run_key) " KEY_NOT_HELD,

							  1, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not reconcile the keys of interrupted runs");
}

/*
 * What a retry keeps of the attempt before it ('runid'): the payload (as
 * text, NULL if none), the runid of the occurrence's first attempt and its
 * scheduled_time (that of a manual run has microseconds; unchanged when
 * the attempt is gone).
 */
char *
chime_run_origin(int64 runid, int64 *first_runid, TimestampTz *scheduled_time)
{
	Oid   types[1] = {INT8OID};
	Datum values[1] = {Int64GetDatum(runid)};
	bool  isnull;
	Datum d;

	*first_runid = runid;
	if (SPI_execute_with_args("SELECT payload::pg_catalog.text, COALESCE(first_runid, runid), scheduled_time "
							  "FROM cron.job_run_details WHERE runid OPERATOR(pg_catalog.=) $1",
							  1, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read run " INT64_FORMAT, runid);
	if (SPI_processed != 1)
		return NULL;
	*first_runid = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
	if (!isnull)
		*scheduled_time = DatumGetTimestampTz(d);
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/* A run recorded 'starting' that will not start: skipped, saying why */
void
chime_run_skip_pending(int64 runid, const char *why, TimestampTz now)
{
	Oid   types[3] = {INT8OID, TEXTOID, TIMESTAMPTZOID};
	Datum values[3] = {Int64GetDatum(runid), CStringGetTextDatum(why), TimestampTzGetDatum(now)};

	if (SPI_execute_with_args("UPDATE cron.job_run_details SET status = 'skipped', return_message = $2, "
							  "end_time = $3 WHERE runid OPERATOR(pg_catalog.=) $1",
							  3, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record run " INT64_FORMAT " skipped", runid);
}

/* The once_per key a run claimed when it was taken */
void
chime_run_set_key(int64 runid, const char *run_key)
{
	Oid   types[2] = {INT8OID, TEXTOID};
	Datum values[2] = {Int64GetDatum(runid), CStringGetTextDatum(run_key)};

	if (SPI_execute_with_args("UPDATE cron.job_run_details SET run_key = $2 WHERE runid OPERATOR(pg_catalog.=) $1",
							  2, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record the key of run " INT64_FORMAT, runid);
}

/* A run 'waiting' for its concurrency_key ends without starting (missed) */
void
chime_run_end_waiting(int64 runid, const char *status, const char *message, TimestampTz now)
{
	Oid   types[4] = {INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
	Datum values[4] = {Int64GetDatum(runid), CStringGetTextDatum(status), CStringGetTextDatum(message),
					   TimestampTzGetDatum(now)};

	if (SPI_execute_with_args("UPDATE cron.job_run_details SET status = $2, return_message = $3, end_time = $4 "
							  "WHERE runid OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'waiting'",
							  4, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record run " INT64_FORMAT " %s", runid, status);
}

/* A manual or hook run recorded 'starting' waits for its concurrency_key */
void
chime_run_set_waiting(int64 runid, const char *message)
{
	Oid   types[2] = {INT8OID, TEXTOID};
	Datum values[2] = {Int64GetDatum(runid), CStringGetTextDatum(message)};

	if (SPI_execute_with_args("UPDATE cron.job_run_details SET status = 'waiting', return_message = $2 "
							  "WHERE runid OPERATOR(pg_catalog.=) $1",
							  2, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record run " INT64_FORMAT " waiting", runid);
}

/* A waiting run starts: 'starting' from now, as a manual run taken */
void
chime_run_unwait(int64 runid, TimestampTz now)
{
	Oid   types[2] = {INT8OID, TIMESTAMPTZOID};
	Datum values[2] = {Int64GetDatum(runid), TimestampTzGetDatum(now)};

	if (SPI_execute_with_args("UPDATE cron.job_run_details SET status = 'starting', start_time = $2, "
							  "return_message = NULL WHERE runid OPERATOR(pg_catalog.=) $1",
							  2, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record run " INT64_FORMAT " starting", runid);
}
