/*-------------------------------------------------------------------------
 *
 * sched_record.c
 *	  What happened: the outcomes of runs that ended (or were lost with
 *	  their executor), written to the run log with their keys and the
 *	  retries they call for, and the marks of runs now running.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/dbcommands.h"
#include "utils/acl.h"

#include "executor.h"
#include "run_log.h"
#include "run_outcome.h"
#include "sched.h"

static List *sched_done = NIL; /* runs ended, not recorded yet (sched_runs_cxt) */

static void sched_lost_outcome(SchedRun *run);

/*
 * A run lost with its executor.  If it committed before the executor
 * ended (its success is in cron.run_commit, or the transaction it noted
 * committed), it succeeded.  When the executor could not connect because
 * its role or database is gone, say so (an error a retry cannot change).
 * Inside a transaction.
 */
static void
sched_lost_outcome(SchedRun *run)
{
	SchedOutcome *d = &run->out;
	SchedRole    *role = run->role;
	Oid           types[1] = {INT8OID};
	Datum         values[1] = {Int64GetDatum(run->runid)};

	if (run->runid > 0)
	{
		if (SPI_execute_with_args("SELECT message, job_pid FROM cron.run_commit WHERE runid OPERATOR(pg_catalog.=) $1 "
								  "UNION ALL SELECT 'committed (its executor ended before it could reply)', NULL "
								  "FROM cron.job_run_details WHERE runid OPERATOR(pg_catalog.=) $1 "
								  "AND pg_catalog.pg_xact_status(commit_xid) OPERATOR(pg_catalog.=) 'committed'",
								  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not look up run " INT64_FORMAT, run->runid);
		if (SPI_processed == 1)
		{
			bool  isnull;
			Datum pid = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);

			/* the pid that wrote the success (the executor's may not have been known) */
			if (!isnull)
				d->pid = DatumGetInt32(pid);
			d->ok = true;
			d->recorded = true;
			d->message = MemoryContextStrdup(sched_runs_cxt,
											 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
			return;
		}
	}
	if (!OidIsValid(get_role_oid(role->username, true)))
		d->message = MemoryContextStrdup(sched_runs_cxt,
										 psprintf("ERROR: 42704: role \"%s\" does not exist\n"
												  "HINT: The job's role was dropped; drop the job or give it to another role.",
												  role->username));
	else if (!OidIsValid(get_database_oid(role->database, true)))
		d->message = MemoryContextStrdup(sched_runs_cxt,
										 psprintf("ERROR: 3D000: database \"%s\" does not exist",
												  role->database));
}

/*
 * Record the runs in sched_done, in one transaction: their rows (with when
 * a failed one will be retried), their keys ('succeeded'; 'failed' unless
 * a retry is planned; released when the run was skipped); the
 * cron.run_commit rows of those whose executor wrote their success with
 * their own commit go.
 * Once that commits: their retries are planned, their counts drop, and
 * the buffered runs their end lets go are started.  If it fails, the runs
 * stay in sched_done and are recorded after a pause.
 */
void
sched_record_done(void)
{
	int           n = list_length(sched_done);
	ChimeRunEnd  *ends;
	ChimeOutcome *outs;
	TimestampTz  *plan;
	int64        *committed;
	int           ncommitted = 0;
	int           nrec = 0;
	int           i;
	ListCell     *lc;
	TimestampTz   now;
	volatile bool ok = true;

	if (n == 0 || sched_log_waiting())
		return;
	ends = palloc(sizeof(ChimeRunEnd) * n);
	plan = palloc(sizeof(TimestampTz) * n);
	committed = palloc(sizeof(int64) * n);
	outs = palloc0(sizeof(ChimeOutcome) * n);

	now = chime_now();

	PG_TRY();
	{
		sched_begin("pg_chime: recording finished runs");
		/* runs lost with their executor: did they commit? then what next */
		i = 0;
		foreach(lc, sched_done)
		{
			SchedRun *run = lfirst(lc);

			if (run->out.lost && !run->out.ok)
				sched_lost_outcome(run);
			plan[i++] = sched_retry_at(run, now);
		}
		i = 0;
		foreach(lc, sched_done)
		{
			SchedRun     *run = lfirst(lc);
			SchedOutcome *d = &run->out;
			TimestampTz   at = plan[i];
			ChimeOutcome *o = &outs[i++];

			/* what follows its end (statistics, log, hooks), recorded with it */
			o->runid = run->runid;
			o->jobid = run->jobid;
			o->status = d->skipped ? "skipped" : (d->ok ? "succeeded" : "failed");
			o->final = !d->skipped && (d->ok || at == 0);
			o->counted = true;
			o->attempt = run->attempt;
			/* (a manual run's has microseconds; its retries keep them) */
			o->scheduled_time = run->row.scheduled_time != 0 ? run->row.scheduled_time : chime_timestamptz_from_unix(run->due);
			o->start_time = run->row.start_time;
			o->end_time = now;
			o->retry_at = at;
			o->run_key = run->run_key;
			o->message = d->message;
			o->http_status = d->http_status;
			o->trigger = run->row.trigger;
			if (run->runid <= 0)
				continue;
			if (d->recorded)
				committed[ncommitted++] = run->runid;
			ends[nrec].runid = run->runid;
			ends[nrec].status = o->status;
			ends[nrec].message = d->message;
			ends[nrec].pid = d->pid;
			ends[nrec].http_status = d->http_status;
			ends[nrec].body = d->body;
			ends[nrec++].retry_at = at;
		}
		if (nrec > 0)
			chime_run_finish(ends, nrec, now);
		if (ncommitted > 0)
			chime_run_commit_forget(committed, ncommitted);
		chime_outcomes_record(outs, n);
		i = 0;
		foreach(lc, sched_done)
		{
			SchedRun     *run = lfirst(lc);
			SchedOutcome *d = &run->out;
			TimestampTz   at = plan[i++];

			if (run->run_key[0] != '\0')
				sched_key_update(run->jobid, run->run_key, Max(run->runid, 0),
								 d->skipped ? NULL : (d->ok ? "succeeded" : (at != 0 ? "running" : "failed")),
								 now);
		}
		sched_commit();
	}
	PG_CATCH();
	{
		sched_recording_failed("record the runs that ended");
		ok = false;
	}
	PG_END_TRY();
	if (!ok)
		return;
	sched_recording_ok();

	i = 0;
	foreach(lc, sched_done)
	{
		SchedRun     *run = lfirst(lc);
		SchedOutcome *d = &run->out;
		SchedActive  *active = sched_active_for(run->jobid, false);
		TimestampTz   at = plan[i++];

		sched_manual_forget(run->runid);
		if (run->concurrency_key)
			sched_key_release(run->role->username, run->concurrency_key, run->concurrency_slot);
		if (at != 0)
			sched_defer(run->jobid, run->due, run->attempt + 1, run->run_key, at, Max(run->runid, 0));
		if (active)
		{
			active->running--;
			if (active->running == 0 && active->buffered_due != 0)
			{
				SchedRetry *r = sched_defer(run->jobid, active->buffered_due, 1, NULL, now, 0);

				r->buffered = true;
				active->buffered_due = 0;
			}
		}
		pfree(d->message);
		if (d->body)
			pfree(d->body);
		if (run->msg)
			pfree(run->msg);
		if (run->concurrency_key)
			pfree(run->concurrency_key);
		pfree(run);
	}
	list_free(sched_done);
	sched_done = NIL;
}

/* A run that ended (or was lost with its executor), to be recorded */
void
sched_done_add(SchedRun *run)
{
	MemoryContext old;

	/* a run, not an acknowledgement, that ended once */
	Assert(!run->ack);
	Assert(!list_member_ptr(sched_done, run));
	old = MemoryContextSwitchTo(sched_runs_cxt);

	sched_done = lappend(sched_done, run);
	MemoryContextSwitchTo(old);
}
