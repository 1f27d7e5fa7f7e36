/*-------------------------------------------------------------------------
 *
 * sched_retry.c
 *	  Retries: when a failed attempt is made again (backoff with jitter,
 *	  max_attempts), the planned ones in time order, and the runs put off
 *	  until an executor or the run before them is free.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/hashfn.h"

#include "executor.h"
#include "run_log.h"
#include "run_outcome.h"
#include "sched.h"

static List *sched_retries = NIL;

static int64 sched_retry_seq = 0; /* the last SchedRetry.seq given */

static List *sched_fired = NIL; /* retries taken by the transaction that starts runs */

static void  sched_retry_dropped(const SchedRetry *r, TimestampTz now);
static int64 sched_retry_delay_us(const SchedJob *job, int64 due, int32 attempt);

/*
 * Make an attempt later: at 'at', inside the key it belongs to; a retry
 * names the failed attempt it follows (from_runid).
 */
SchedRetry *
sched_defer(int64 jobid, int64 due, int32 attempt, const char *run_key, TimestampTz at,
			int64 from_runid)
{
	MemoryContext old = MemoryContextSwitchTo(sched_runs_cxt);
	SchedRetry   *r = palloc0(sizeof(SchedRetry));

	r->jobid = jobid;
	r->due = due;
	r->attempt = attempt;
	r->at = at;
	r->from_runid = from_runid;
	r->seq = ++sched_retry_seq;
	if (run_key)
		strlcpy(r->run_key, run_key, sizeof(r->run_key));
	sched_retries = lappend(sched_retries, r);
	MemoryContextSwitchTo(old);
	return r;
}

/*
 * The delay before attempt 'attempt' + 1: retry_delay doubled for each
 * attempt made, capped by cron.max_retry_delay, with a jitter of +-10 %
 * that depends only on the job, the occurrence and the attempt.
 */
/*
 * A planned retry of a failed attempt that will not be made: that attempt
 * is the run's final outcome, and the key that the retry kept taken
 * failed with it.  Inside a transaction.
 */
static void
sched_retry_dropped(const SchedRetry *r, TimestampTz now)
{
	if (r->from_runid <= 0)
		return;
	if (r->run_key[0] != '\0')
		sched_key_update(r->jobid, r->run_key, r->from_runid, "failed", now);
	chime_outcomes_of_runs(&r->from_runid, 1);
}

/*
 * A retry that claims its occurrence's key (its first attempt claimed
 * none) and finds the period has had its run: it is not made, and the
 * attempt before it is the run's final outcome.  Inside a transaction.
 */
void
sched_retry_period_taken(int64 jobid, int64 from_runid)
{
	if (from_runid <= 0)
		return;
	chime_run_set_retry(&from_runid, NULL, 1);
	chime_outcomes_of_runs(&from_runid, 1);
}

static int64
sched_retry_delay_us(const SchedJob *job, int64 due, int32 attempt)
{
	double delay = (double) job->cls->retry_delay_us;
	uint64 h;

	for (int i = 1; i < attempt && delay < (double) chime_max_retry_delay_us; i++)
		delay *= 2;
	if (delay > (double) chime_max_retry_delay_us)
		delay = (double) chime_max_retry_delay_us;
	h = hash_bytes_uint32((uint32) job->jobid) ^
		((uint64) hash_bytes_uint32((uint32) due) << 1) ^
		hash_bytes_uint32((uint32) attempt * 2654435761u);
	delay *= 0.9 + 0.2 * (double) (h % 10001) / 10000.0;
	return (int64) delay;
}

/*
 * After a failed attempt: when to make the next one (0: never), if the
 * job allows more and the error is one a retry can change (not SQLSTATE
 * class 42, a syntax or access rule error; for HTTP, a transport error, a
 * timeout, 429 or 5xx).
 */
TimestampTz
sched_retry_at(const SchedRun *run, TimestampTz now)
{
	const SchedOutcome *d = &run->out;
	SchedJob           *job = sched_job_find(run->jobid);
	int64               delay;

	if (d->ok || d->skipped || job == NULL || run->attempt >= job->cls->max_attempts)
		return 0;
	if (d->http ? !d->http_retry : (d->message && strncmp(d->message, "ERROR: 42", 9) == 0))
		return 0;
	/* an HTTP server's Retry-After, if longer, within cron.max_retry_delay */
	delay = sched_retry_delay_us(job, run->due, run->attempt);
	if (d->retry_after_us > delay)
		delay = Min(d->retry_after_us, chime_max_retry_delay_us);
	return now + delay;
}

/*
 * Start the retries whose time has come (inside a transaction); they are
 * kept in sched_fired, so that they can be planned again if the
 * transaction fails.
 */
void
sched_fire_retries(TimestampTz now)
{
	ListCell *lc;
	List     *due = NIL;
	int64     now_s = chime_unix_from_timestamptz(now);

	MemoryContext old = MemoryContextSwitchTo(sched_scratch_cxt);

	foreach(lc, sched_retries)
	{
		SchedRetry *r = lfirst(lc);

		if (r->at > now)
			continue;
		sched_retries = foreach_delete_current(sched_retries, lc);
		/* outlives the transaction: planned again if it fails */
		due = lappend(due, r);
	}
	MemoryContextSwitchTo(old);
	sched_fired = due;
	foreach(lc, due)
	{
		SchedRetry *r = lfirst(lc);
		SchedJob   *job = sched_job_find(r->jobid);
		char       *command = job ? sched_command(job) : NULL;

		/* a job removed ends its retries */
		if (command == NULL)
		{
			if (r->from_runid > 0)
				chime_run_set_retry(&r->from_runid, NULL, 1);
			sched_retry_dropped(r, now);
		}
		else if (r->buffered)
			sched_start_run(job, command, r->due, now, "schedule", 1, NULL, 0);
		else if (r->attempt == 1)
		{
			/* a first attempt put off: it is a late occurrence now */
			bool open = chime_in_window(&job->cls->timing.window, job->cls->timing.zone, now_s);
			bool late = now_s - r->due > job->cls->catchup_s || !open;

			sched_fire_group(job, command, r->run_key, r->due, late ? 1 : 0,
							 open ? "could not start within catchup" :
									"could not start: the run_window had closed",
							 late ? 0 : r->due, 1, now_s, now);
		}
		/* a closed window ends them too */
		else if (chime_in_window(&job->cls->timing.window, job->cls->timing.zone, now_s))
			sched_start_run(job, command, r->due, now, "retry", r->attempt, r->run_key, r->from_runid);
		else if (r->from_runid > 0)
		{
			chime_run_set_retry(&r->from_runid, NULL, 1);
			sched_retry_dropped(r, now);
		}
	}
}

/* When the next retry is due, or 0 if none is planned. */
TimestampTz
sched_next_retry(void)
{
	TimestampTz next = 0;
	ListCell   *lc;

	foreach(lc, sched_retries)
	{
		SchedRetry *r = lfirst(lc);

		if (next == 0 || r->at < next)
			next = r->at;
	}
	return next;
}

/* Are retries planned? */
bool
sched_retries_pending(void)
{
	return sched_retries != NIL;
}

/*
 * At start: the retries a previous scheduler left (ChimeInterrupted, from
 * chime_run_pending_retries), the interrupted attempts among them with no
 * time yet.  Planned before the jobs are loaded (an @at job, inactive once
 * it has run, is loaded for its retry); their times are set by
 * sched_retry_plan_restored once the jobs' policies are known.
 */
void
sched_retry_restore(List *pending)
{
	ListCell *lc;

	foreach(lc, pending)
	{
		ChimeInterrupted *run = lfirst(lc);

		sched_defer(run->jobid, run->due, run->attempt + 1, run->run_key,
					TIMESTAMP_IS_NOBEGIN(run->retry_at) ? 0 : Max(run->retry_at, 1),
					run->runid)
			->crashed = run->crashed;
	}
}

/*
 * Once the jobs are loaded: drop the restored retries their job no longer
 * allows (gone, or out of attempts unless the attempt's process crashed),
 * give the interrupted ones their time, and save the times.
 */
void
sched_retry_plan_restored(TimestampTz now)
{
	ListCell    *lc;
	int64       *ids = palloc(sizeof(int64) * (list_length(sched_retries) + 1));
	TimestampTz *ats = palloc(sizeof(TimestampTz) * (list_length(sched_retries) + 1));
	int          nids = 0;
	List        *dropped = NIL;

	foreach(lc, sched_retries)
	{
		SchedRetry *r = lfirst(lc);
		SchedJob   *job = sched_job_find(r->jobid);

		if (job == NULL || (r->attempt > job->cls->max_attempts && !r->crashed))
		{
			ids[nids] = r->from_runid;
			ats[nids++] = 0;
			sched_retries = foreach_delete_current(sched_retries, lc);
			dropped = lappend(dropped, r);
			continue;
		}
		if (r->at == 0)
			r->at = now + sched_retry_delay_us(job, r->due, r->attempt - 1);
		ids[nids] = r->from_runid;
		ats[nids++] = r->at;
	}
	if (nids > 0)
	{
		sched_begin("pg_chime: saving the retries to make");
		chime_run_set_retry(ids, ats, nids);
		foreach(lc, dropped)
			sched_retry_dropped(lfirst(lc), now);
		sched_commit();
	}
	list_free_deep(dropped);
}

/* How many retries are planned */
int
sched_retry_count(void)
{
	return list_length(sched_retries);
}

/* The jobs of the planned retries, into ids (sched_retry_count() of them) */
int
sched_retry_jobids(Datum *ids)
{
	ListCell *lc;
	int       n = 0;

	foreach(lc, sched_retries)
		ids[n++] = Int64GetDatum(((SchedRetry *) lfirst(lc))->jobid);
	return n;
}

/* A mark for sched_retry_undo: the retries planned so far */
int64
sched_retry_mark(void)
{
	return sched_retry_seq;
}

/* The retries the transaction that starts runs took are committed: forget them */
void
sched_retry_fired_forget(void)
{
	list_free_deep(sched_fired);
	sched_fired = NIL;
}

/*
 * The transaction that starts runs failed: the retries planned since
 * 'mark' go, and those it took are planned again.
 */
void
sched_retry_undo(int64 mark)
{
	ListCell *lc;

	foreach(lc, sched_retries)
	{
		SchedRetry *r = lfirst(lc);

		if (r->seq > mark)
		{
			sched_retries = foreach_delete_current(sched_retries, lc);
			pfree(r);
		}
	}
	MemoryContextSwitchTo(sched_runs_cxt);
	sched_retries = list_concat(sched_retries, sched_fired);
	MemoryContextSwitchTo(sched_scratch_cxt);
	sched_fired = NIL;
}
