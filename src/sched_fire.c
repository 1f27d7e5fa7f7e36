/*-------------------------------------------------------------------------
 *
 * sched_fire.c
 *	  What a due occurrence becomes: a run, a skipped row, a missed row
 *	  or nothing, by overlap, concurrency key, once_per key, catchup and
 *	  run_window; and the manual runs cron.run_now handed over.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/proc.h"

#include "executor.h"
#include "locks.h"
#include "run_log.h"
#include "shared.h"
#include "job_def.h"
#include "run_outcome.h"
#include "sched.h"

static HTAB *sched_manual; /* runids of manual runs handed over */

static bool sched_manual_all = false; /* look for every manual run still to start */

static List       *sched_hooks_waiting = NIL; /* runids of hook runs whose key was locked */
static TimestampTz sched_hooks_retry_at = 0;  /* when to try them again */

/*
 * The HTTP request of a run being started, from sched_http_prepare until
 * the run is queued with it: freed by the error handlers, since it lives
 * in sched_runs_cxt with its secrets.
 */
static ChimeHttpRequest *sched_http_unqueued = NULL;

/* Free the request of a run that will not be queued */
static void
sched_http_unqueued_free(void)
{
	if (sched_http_unqueued)
		sched_http_request_free(sched_http_unqueued);
	sched_http_unqueued = NULL;
}

/* How many due jobs one transaction starts before handing them over */
#define SCHED_CHUNK 64

static void  sched_row(ChimeRunRow *row, const SchedJob *job, const char *command, int64 due, TimestampTz now, const char *status, const char *trigger, int32 attempt, const char *run_key);
static int64 sched_insert_row(const ChimeRunRow *row);
static void  sched_skip(SchedActive *active, ChimeRunRow *row, const char *message);
static void  sched_fire_job(SchedJob *job, const char *command, int64 now_s, TimestampTz now);

/* A run row of the job for occurrence 'due', starting at 'now'. */
static void
sched_row(ChimeRunRow *row, const SchedJob *job, const char *command, int64 due,
		  TimestampTz now, const char *status, const char *trigger, int32 attempt,
		  const char *run_key)
{
	memset(row, 0, sizeof(*row));
	row->run_key = run_key;
	row->jobid = job->jobid;
	row->database = job->cls->role->database;
	row->username = job->cls->role->username;
	row->command = command;
	row->status = status;
	row->start_time = now;
	row->scheduled_time = chime_timestamptz_from_unix(due);
	row->trigger = trigger;
	row->attempt = attempt;
	row->occurrences = 1;
}

/*
 * A skipped or missed row (not written while cron.log_run is off), and its
 * WARNING (one per row: the later occurrences of a streak are counted in
 * its row).
 */
static int64
sched_insert_row(const ChimeRunRow *row)
{
	int64         runid = chime_log_run ? chime_run_insert(row) : 0;
	SchedCommand *c;

	if (!chime_log_enabled(WARNING))
		return runid;
	c = sched_command_of(row->jobid);
	ereport(WARNING,
			(errmsg("pg_chime: job " INT64_FORMAT " (%s) run %s %s: %s",
					row->jobid, c ? c->jobname : "",
					runid > 0 ? psprintf(INT64_FORMAT, runid) : "(not recorded)", row->status,
					row->message ? row->message : (strcmp(row->status, "missed") == 0 ? "could not start within catchup" : "the previous run was still running")),
			 errdetail("Occurrence at %s%s.", timestamptz_to_str(row->scheduled_time),
					   row->occurrences > 1 ? psprintf(" and %d after it", row->occurrences - 1) : "")));
	return runid;
}

/* Record a skipped occurrence: one row per streak of them */
static void
sched_skip(SchedActive *active, ChimeRunRow *row, const char *message)
{
	if (active->skip_runid == 0 || !chime_run_add_occurrence(active->skip_runid))
	{
		row->status = "skipped";
		row->message = message;
		active->skip_runid = sched_insert_row(row);
	}
}

/*
 * Start an attempt of a job for occurrence 'due': record it and queue it.
 * A first attempt starts nothing when its once_per key is claimed, and is
 * recorded skipped when the previous run is still going (overlap 'skip';
 * 'buffer_one' keeps it for later) or its concurrency_key is held; it
 * claims its key in this transaction.  A later attempt (run_key given)
 * that meets a run still going waits a second.  Inside a transaction.
 */
void
sched_start_run(SchedJob *job, const char *command, int64 due, TimestampTz now,
				const char *trigger, int32 attempt, const char *run_key, int64 from_runid)
{
	SchedActive      *active = sched_active_for(job->jobid, true);
	const SchedClass *cls = job->cls;
	SchedExecutor    *ex;
	ChimeRunRow       row;
	char              key[CHIME_RUN_KEY_LEN] = "";
	ChimeHttpRequest *http = NULL;
	char             *http_error = NULL;
	char             *payload = NULL;
	int64             first_runid = 0;
	bool              busy = active->running > 0 && cls->overlap != 'a';
	/* (a retry needs a free slot only: it does not queue behind the runs waiting) */
	bool full = cls->concurrency_key &&
		(attempt > 1 ? !sched_key_has_room(cls->role->username, cls->concurrency_key, cls->concurrency_limit) : sched_key_must_wait(cls->role->username, cls->concurrency_key, cls->concurrency_limit));
	/*
	 * This attempt claims its occurrence's key: the first, or a later one
	 * whose first claimed none (it failed before it could, and a restart
	 * made it again).
	 */
	bool claims = attempt == 1 || run_key == NULL || run_key[0] == '\0';

	if (run_key && run_key[0] != '\0')
		strlcpy(key, run_key, sizeof(key));
	else
		chime_run_key(cls->once_per, cls->timing.zone, due, key);
	sched_row(&row, job, command, due, now, "starting", trigger, attempt, key);
	row.from_runid = from_runid;

	if (key[0] != '\0' && claims && chime_key_claimed(job->jobid, key))
	{
		/* the period has had its run (a retry claiming the key ends its run) */
		if (attempt > 1)
			sched_retry_period_taken(job->jobid, from_runid);
		return;
	}

	if (busy || full)
	{
		if (attempt > 1)
		{
			/* an attempt inside a key waits for the run in its way (one still to claim it, unclaimed) */
			sched_defer(job->jobid, due, attempt, claims ? "" : key, now + USECS_PER_SEC, from_runid);
			return;
		}
		if (busy && cls->overlap == 'b' && active->buffered_due == 0)
		{
			active->buffered_due = due;
			return;
		}
		if (!busy && chime_log_run && active->waiting_runid == 0)
		{
			/* the key is full: wait in its line, within catchup */
			row.status = "waiting";
			row.run_key = NULL; /* (its once_per key is claimed when it starts) */
			row.message = psprintf("waiting: concurrency_key \"%s\" is full (concurrency_limit %d)",
								   cls->concurrency_key, cls->concurrency_limit);
			sched_key_wait(cls->role->username, cls->concurrency_key, chime_run_insert(&row), job->jobid,
						   row.scheduled_time, cls->catchup_s, cls->concurrency_limit);
			return;
		}
		sched_skip(active, &row,
				   busy ? NULL : (active->waiting_runid != 0 ? psprintf("a run of the job is waiting for concurrency_key \"%s\" already", cls->concurrency_key) : psprintf("concurrency_key \"%s\" was full (cron.log_run is off: runs cannot wait)", cls->concurrency_key)));
		return;
	}

	/*
	 * An HTTP run is this process's own transfer; one that cannot start (a
	 * secret missing, as after a restore) fails without claiming its key,
	 * so that the period's next occurrence runs once the secret is set.
	 */
	if (cls->http)
	{
		bool secret_missing = false;

		http = sched_http_unqueued = sched_http_prepare(job->jobid, cls->role->username, cls->timeout_ms,
														&http_error, &secret_missing);
		if (http == NULL && secret_missing && claims && key[0] != '\0')
		{
			http_error = MemoryContextStrdup(sched_runs_cxt,
											 psprintf("%s; its once_per key %s was not claimed", http_error, key));
			key[0] = '\0';
		}
	}

	if (key[0] != '\0' && claims)
	{
		/* cron.run_now or cron.release_key may be at it: try again in a second */
		bool locked = chime_lock_try(CHIME_LOCK_RUN_KEY, (uint64) job->jobid, false);

		if (!locked || !chime_key_claim(job->jobid, key, now))
		{
			sched_http_unqueued_free();
			if (!locked)
				sched_defer(job->jobid, due, attempt, attempt == 1 ? key : "", now + USECS_PER_SEC, from_runid);
			else if (attempt > 1)
				sched_retry_period_taken(job->jobid, from_runid);
			return;
		}
	}

	/* a retry keeps its occurrence's payload, idempotency key and scheduled_time */
	if (from_runid > 0)
		payload = chime_run_origin(from_runid, &first_runid, &row.scheduled_time);

	/* a SQL run is 'running' when a live executor takes it, 'starting' while one starts */
	ex = cls->http ? NULL : sched_executor_for(cls->role);
	if (chime_log_statement && chime_log_enabled(LOG))
		ereport(LOG,
				(errmsg("pg_chime: job " INT64_FORMAT " starting: %s", job->jobid, command)));
	row.job_pid = cls->http ? MyProcPid : (ex ? sched_executor_pid(ex) : 0);
	row.status = row.job_pid != 0 ? "running" : "starting";
	active->running++;
	active->skip_runid = 0;
	{
		MemoryContext old = MemoryContextSwitchTo(sched_scratch_cxt);
		SchedRun     *run = sched_queue_run(job->jobid, cls->role, command, cls->timeout_ms, cls->overlap,
											cls->concurrency_key, key, ex, 0, due, attempt, http, http_error);

		sched_http_unqueued = NULL;

		run->from_runid = from_runid;
		MemoryContextSwitchTo(old);
		sched_start_add(run, &row, cls->timing.sched.kind == CHIME_SCHED_AT);
		sched_http_context(run, payload, first_runid);
	}
}

/*
 * The occurrences of one key (all of them for a job without once_per):
 * those that could not start become one 'missed' row, unless the key has
 * or gets its run; of the rest, the latest starts.
 */
void
sched_fire_group(SchedJob *job, const char *command, const char *key, int64 first_missed,
				 int32 missed, const char *why, int64 latest, int32 coalesced, int64 now_s,
				 TimestampTz now)
{
	if (missed > 0 &&
		!(key[0] != '\0' && (latest != 0 || chime_key_claimed(job->jobid, key))))
	{
		ChimeRunRow row;

		sched_row(&row, job, command, first_missed, now, "missed", "schedule", 1, key);
		row.occurrences = missed;
		row.message = why;
		(void) sched_insert_row(&row);
	}
	if (latest != 0)
		sched_start_run(job, command, latest, now,
						(coalesced > 1 || now_s - latest >= 1) ? "catchup" : "schedule", 1, NULL, 0);
}

/*
 * Handle one due job.  Its occurrences up to now (more than one when the
 * scheduler was late or down) start if they are within catchup and the
 * run window is open now; several coalesce into one run of the latest (one
 * per once_per key).  The others are recorded missed, saying why.
 */
static void
sched_fire_job(SchedJob *job, const char *command, int64 now_s, TimestampTz now)
{
	const SchedClass *cls = job->cls;
	bool              open = chime_in_window(&cls->timing.window, cls->timing.zone, now_s);
	int64             occ = job->due;
	int64             first_missed = 0;
	int64             latest = 0;
	int32             missed = 0;
	int32             coalesced = 0;
	const char       *why = NULL;
	char              group[CHIME_RUN_KEY_LEN] = "";
	bool              more = true;

	for (int guard = 0; more && occ <= now_s && guard < 1000000; guard++)
	{
		char key[CHIME_RUN_KEY_LEN];

		/* (a long catch-up still answers a shutdown) */
		if ((guard & 4095) == 4095)
			CHECK_FOR_INTERRUPTS();
		chime_run_key(cls->once_per, cls->timing.zone, occ, key);
		if (strcmp(key, group) != 0)
		{
			sched_fire_group(job, command, group, first_missed, missed, why, latest, coalesced,
							 now_s, now);
			strlcpy(group, key, sizeof(group));
			first_missed = latest = 0;
			missed = coalesced = 0;
		}
		if (now_s - occ > cls->catchup_s || !open)
		{
			if (missed++ == 0)
				first_missed = occ;
			why = open ? "could not start within catchup" :
						 "could not start: the run_window had closed";
		}
		else
		{
			latest = occ;
			coalesced++;
		}
		more = chime_next_run(&cls->timing, job->jobid, occ, &occ);
	}
	sched_fire_group(job, command, group, first_missed, missed, why, latest, coalesced, now_s, now);

	if (more)
		sched_jobs_requeue(job, occ);
}

/* The trigger of a run row, as a constant string */
static const char *
sched_trigger_word(const char *trigger)
{
	static const char *const words[] = {"schedule", "catchup", "retry", "manual", "hook"};

	for (int i = 0; i < lengthof(words); i++)
		if (trigger && strcmp(trigger, words[i]) == 0)
			return words[i];
	return "manual";
}

/*
 * A hook run of a once_per job claims the key of its period (its
 * scheduled time) when it is taken, as a scheduled run claims its own:
 * false when it is not to start now, because the key has had its run (it
 * is recorded skipped) or because a session holds the key's lock (it is
 * tried again in a second).  *run_key becomes the key claimed.  Inside the
 * transaction that takes it.
 */
static bool
sched_hook_key(int64 runid, int64 jobid, HeapTuple tup, TupleDesc desc, char **run_key, bool waiting,
			   bool claim)
{
	ChimeOncePer     per;
	const ChimeZone *zone;
	ChimeJobDefError err;
	char             key[CHIME_RUN_KEY_LEN];
	bool             isnull;
	TimestampTz      at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull));
	TimestampTz      now = chime_now();
	char            *once_per = SPI_getvalue(tup, desc, 14);

	if (*run_key != NULL || once_per == NULL || !chime_parse_once_per(once_per, &per) ||
		!chime_job_zone(SPI_getvalue(tup, desc, 15), &zone, &err))
		return true;
	chime_run_key(per, zone, chime_unix_from_timestamptz(at), key);
	/* a run that cannot start claims nothing, but is still no second run of a claimed period */
	if (!claim)
	{
		if (!chime_key_claimed(jobid, key))
			return true;
		chime_run_skip_pending(runid, psprintf("not started: key %s has had its run", key), now);
		return false;
	}
	if (!chime_lock_try(CHIME_LOCK_RUN_KEY, (uint64) jobid, false))
	{
		MemoryContext old;
		int64        *id;

		/* (a waiting run stays 'waiting': taken again in a second) */
		if (waiting)
		{
			sched_keys_readmit(&runid, 1);
			return false;
		}
		old = MemoryContextSwitchTo(sched_runs_cxt);
		id = palloc(sizeof(int64));
		*id = runid;
		sched_hooks_waiting = lappend(sched_hooks_waiting, id);
		sched_hooks_retry_at = now + USECS_PER_SEC;
		MemoryContextSwitchTo(old);
		return false;
	}
	if (!chime_key_claim(jobid, key, now))
	{
		chime_run_skip_pending(runid, psprintf("not started: key %s has had its run", key), now);
		return false;
	}
	chime_run_set_key(runid, key);
	chime_key_update(jobid, key, runid, "running", now);
	*run_key = pstrdup(key);
	return true;
}

/* When hook runs that waited for their key's lock are to be tried again (0: none) */
TimestampTz
sched_hooks_waiting_until(void)
{
	return sched_hooks_waiting != NIL ? sched_hooks_retry_at : 0;
}

/*
 * Take over the manual runs cron.run_now recorded: rows 'starting' with
 * trigger 'manual' that are not handed over yet.  They wait in the backlog
 * for an executor.
 */
bool
sched_start_manual(void)
{
	SPITupleTable *rows;
	uint64         n;
	List *volatile taken = NIL;
	volatile bool ok = true;
	int           nadmitted;
	int64 *volatile admitted;
	HTAB *returned = NULL;

	/* cron.launch_active_jobs off: they wait, as due occurrences do */
	if (!chime_launch_active_jobs)
		return false;
	admitted = sched_keys_take_admitted(&nadmitted);
	PG_TRY();
	{
		sched_begin("pg_chime: starting manual runs");
		{
			int64 *ids = palloc(sizeof(int64) * CHIME_MANUAL_MAX);
			int    nids = sched_manual_all ? -1 : chime_take_manual(ids);
			int    nwaiting = list_length(sched_hooks_waiting);
			Datum *d = palloc(sizeof(Datum) * (Max(nids, 0) + nwaiting + 1));
			Oid    types[2] = {INT8ARRAYOID, INT8ARRAYOID};
			Datum  values[2];
			int    nd = 0;

			if (sched_manual_all)
				(void) chime_take_manual(ids);
			sched_manual_all = false;
			for (int i = 0; i < nids; i++)
				d[nd++] = Int64GetDatum(ids[i]);
			/* and the hook runs that waited for their key's lock */
			if (nids >= 0 && sched_hooks_retry_at <= chime_now())
			{
				ListCell *lc;

				foreach(lc, sched_hooks_waiting)
					d[nd++] = Int64GetDatum(*(int64 *) lfirst(lc));
				list_free_deep(sched_hooks_waiting);
				sched_hooks_waiting = NIL;
			}
			else if (nids < 0)
			{
				list_free_deep(sched_hooks_waiting);
				sched_hooks_waiting = NIL;
			}
			values[0] = PointerGetDatum(construct_array(d, nd, INT8OID, 8, true, TYPALIGN_DOUBLE));
			/* and the waiting runs that fit in their key now */
			{
				Datum *w = palloc(sizeof(Datum) * (nadmitted + 1));

				for (int i = 0; i < nadmitted; i++)
					w[i] = Int64GetDatum(admitted[i]);
				values[1] = PointerGetDatum(construct_array(w, nadmitted, INT8OID, 8, true, TYPALIGN_DOUBLE));
			}

			/*
			 * By runid (the primary key) the runs cron.run_now named; all those
			 * still to start only when there were too many to name.
			 */
			if (SPI_execute_with_args(psprintf("SELECT r.runid, r.jobid, r.scheduled_time, j.command, j.database, "
											   "j.username, j.timeout, j.overlap, j.concurrency_key, r.run_key, j.kind, "
											   "r.trigger, r.payload::pg_catalog.text, j.once_per, j.timezone, "
											   "r.status, j.concurrency_limit, j.catchup "
											   "FROM cron.job_run_details r JOIN cron.job j "
											   "ON j.jobid OPERATOR(pg_catalog.=) r.jobid "
											   "WHERE r.job_pid IS NULL AND ((r.trigger OPERATOR(pg_catalog.=) ANY ('{manual,hook}'::pg_catalog.text[]) "
											   "AND r.status OPERATOR(pg_catalog.=) 'starting'%s) "
											   "OR (r.status OPERATOR(pg_catalog.=) 'waiting' AND r.runid OPERATOR(pg_catalog.=) ANY ($2))) "
											   "ORDER BY r.scheduled_time, r.runid",
											   nids >= 0 ? " AND r.runid OPERATOR(pg_catalog.=) ANY ($1)" : ""),
									  2, types, values, NULL, false, 0) != SPI_OK_SELECT)
				elog(ERROR, "could not read manual runs");
		}
		/* kept: reading an HTTP job's request runs statements of its own */
		rows = SPI_tuptable;
		n = SPI_processed;
		returned = sched_hash("pg_chime waiting runs taken", Max(nadmitted, 4), sizeof(int64), sizeof(int64),
							  sched_scratch_cxt);
		for (uint64 i = 0; i < n; i++)
		{
			HeapTuple         tup = rows->vals[i];
			TupleDesc         desc = rows->tupdesc;
			bool              isnull;
			bool              found;
			int64             runid = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			int64             jobid = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
			int64             timeout_us;
			int32             timeout_ms;
			char             *username = SPI_getvalue(tup, desc, 6);
			const char       *trigger = sched_trigger_word(SPI_getvalue(tup, desc, 12));
			bool              hook = strcmp(trigger, "hook") == 0;
			bool              waiting = strcmp(SPI_getvalue(tup, desc, 16), "waiting") == 0;
			char             *run_key = SPI_getvalue(tup, desc, 10);
			char             *ckey = SPI_getvalue(tup, desc, 9);
			int32             limit = DatumGetInt32(SPI_getbinval(tup, desc, 17, &isnull));
			TimestampTz       scheduled = DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull));
			ChimeHttpRequest *http = NULL;
			char             *http_error = NULL;
			bool              secret_missing = false;
			SchedRun         *run;
			MemoryContext     old;

			(void) hash_search(sched_manual, &runid, HASH_FIND, &found);
			if (found)
				continue;
			if (waiting)
				(void) hash_search(returned, &runid, HASH_ENTER, NULL);
			/*
			 * A run whose key is full waits in the key's line, within catchup;
			 * one let in from the line starts if its job's key (as it is now:
			 * alter_job may have changed it, or the limit) has a free slot.
			 */
			if (ckey && (waiting ? !sched_key_has_room(username, ckey, limit) : sched_key_must_wait(username, ckey, limit)))
			{
				/* its key is full: it waits in the key's line, within catchup */
				Datum d = SPI_getbinval(tup, desc, 18, &isnull);
				int64 catchup_us = 0;

				if (!isnull && !chime_job_interval_us(d, CHIME_MAX_CATCHUP_US, &catchup_us))
					catchup_us = CHIME_MAX_CATCHUP_US;
				chime_run_set_waiting(runid, psprintf("waiting: concurrency_key \"%s\" is full (concurrency_limit %d)", ckey, limit));
				sched_key_wait(username, ckey, runid, jobid, scheduled, catchup_us / USECS_PER_SEC, limit);
				continue;
			}
			{
				Datum d = SPI_getbinval(tup, desc, 7, &isnull);

				/* (a NULL timeout is none; one out of range, the longest) */
				if (isnull)
					timeout_us = 0;
				else if (!chime_job_interval_us(d, CHIME_MAX_TIMEOUT_US, &timeout_us))
					timeout_us = CHIME_MAX_TIMEOUT_US;
			}
			timeout_ms = (int32) ((timeout_us + 999) / 1000);
			if (strcmp(SPI_getvalue(tup, desc, 11), "http") == 0)
				http = sched_http_unqueued = sched_http_prepare(jobid, username, timeout_ms, &http_error,
																&secret_missing);
			/*
			 * A hook or a waiting run claims its once_per key now, unless it
			 * cannot start (a secret missing): then it fails unclaimed.
			 */
			if ((hook || waiting) && !sched_hook_key(runid, jobid, tup, desc, &run_key, waiting, !secret_missing))
			{
				sched_http_unqueued_free();
				continue;
			}
			if (waiting)
				chime_run_unwait(runid, chime_now());
			if (http || http_error)
			{
				int32 pid = MyProcPid;

				chime_run_running(&runid, &pid, 1);
			}
			sched_active_for(jobid, true)->running++;
			run = sched_queue_run(jobid, sched_role(SPI_getvalue(tup, desc, 5), username),
								  SPI_getvalue(tup, desc, 4), timeout_ms,
								  hook ? 'a' : SPI_getvalue(tup, desc, 8)[0], ckey,
								  run_key, NULL, runid,
								  chime_unix_from_timestamptz(scheduled), 1, http, http_error);
			sched_http_unqueued = NULL;
			run->row.jobid = jobid;
			run->row.scheduled_time = scheduled;
			run->row.start_time = chime_now();
			run->row.trigger = trigger;
			sched_http_context(run, SPI_getvalue(tup, desc, 13), 0);
			old = MemoryContextSwitchTo(sched_scratch_cxt);
			taken = lappend(taken, run);
			MemoryContextSwitchTo(old);
			(void) hash_search(sched_manual, &runid, HASH_ENTER, NULL);
		}
		/* waiting runs admitted whose row is gone or changed: their job was unscheduled */
		for (int i = 0; i < nadmitted; i++)
			if (hash_search(returned, &admitted[i], HASH_FIND, NULL) == NULL)
				chime_run_end_waiting(admitted[i], "missed", "not started: the job was unscheduled while it waited",
									  chime_now());
		sched_count_started(taken);
		sched_commit();
		sched_fence();
	}
	PG_CATCH();
	{
		ListCell  *lc;
		ErrorData *edata = sched_catch();

		sched_http_unqueued_free();
		/* the runs it admitted wait to be taken again */
		sched_keys_readmit(admitted, nadmitted);
		foreach(lc, taken)
		{
			SchedRun *run = lfirst(lc);

			(void) hash_search(sched_manual, &run->runid, HASH_REMOVE, NULL);
			sched_run_abandon(run);
		}
		sched_recording_failed_with("take the manual runs", edata);
		/* the runids it took are gone with it: look for all next time */
		sched_manual_all = true;
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * Start every run that is due; then move the horizon.  In groups of
 * SCHED_CHUNK: each is recorded in one transaction and handed over before
 * the next, so executors start on the first runs at once, and finished
 * runs are collected in between.  The horizon is saved with the last.
 * *reboot (the @reboot jobs, at startup) is emptied once they started.
 * When a transaction fails (the run log unavailable), what it started is
 * undone and tried again after a pause: returns false.
 */
bool
sched_fire_due(List **reboot)
{
	TimestampTz    now = chime_now();
	int64          now_s = chime_unix_from_timestamptz(now);
	SchedJob     **due;
	int64         *orig_due;
	int            ndue = 0;
	volatile int   first = 0;
	volatile int   committed = 0;                   /* due[] before it: their runs are committed */
	volatile int64 retry_mark = sched_retry_mark(); /* retries planned up to then are committed */
	ListCell      *lc;
	volatile bool  ok = true;
	int64          old_horizon = sched_jobs_horizon();

	if (sched_log_waiting() || !chime_launch_active_jobs)
		return false;
	due = sched_jobs_take_due(now_s, &ndue);
	if (ndue == 0 && *reboot == NIL &&
		!(sched_retries_pending() && sched_next_retry() <= now))
	{
		sched_jobs_set_horizon(now_s);
		return true;
	}
	orig_due = palloc(sizeof(int64) * Max(ndue, 1));
	for (int i = 0; i < ndue; i++)
		orig_due[i] = due[i]->due;

	PG_TRY();
	{
		sched_begin("pg_chime: starting due runs");
		sched_fire_retries(now);
		foreach(lc, *reboot)
		{
			SchedJob *job = sched_job_find(*(int64 *) lfirst(lc));
			char     *command = job ? sched_command(job) : NULL;

			if (command)
				sched_start_run(job, command, now_s, now, "schedule", 1, NULL, 0);
		}
		for (first = 0; first < ndue; first += SCHED_CHUNK)
		{
			int   n = Min(SCHED_CHUNK, ndue - first);
			HTAB *commands;

			if (first > 0)
			{
				/* recording ended runs waits until every due run has started */
				sched_commit_starts();
				committed = first;
				retry_mark = sched_retry_mark();
				sched_retry_fired_forget();
				list_free_deep(*reboot);
				*reboot = NIL;
				sched_read_replies();
				sched_send();
				sched_begin("pg_chime: starting due runs");
			}
			commands = sched_commands(due + first, n);
			for (int i = first; i < first + n; i++)
			{
				SchedCommand *c = hash_search(commands, &due[i]->jobid, HASH_FIND, NULL);

				/* a job deleted since it was loaded is dropped at the next reload */
				if (c != NULL)
					sched_fire_job(due[i], c->command, now_s, now);
			}
		}
		sched_save_horizon(now_s);
		sched_commit_starts();
		list_free_deep(*reboot);
		*reboot = NIL;
	}
	PG_CATCH();
	{
		ErrorData *edata = sched_catch();

		sched_http_unqueued_free();
		sched_jobs_set_horizon(old_horizon);
		sched_retry_undo(retry_mark);
		sched_undo_starts();
		sched_jobs_restore_due(due, orig_due, committed, ndue);
		sched_recording_failed_with("record the runs that are due", edata);
		ok = false;
	}
	PG_END_TRY();
	if (!ok)
		return false;
	sched_retry_fired_forget();
	sched_recording_ok();
	return true;
}

/* At start: the tables of manual runs handed over and of concurrency keys held */
void
sched_fire_init(void)
{
	sched_manual = sched_hash("pg_chime manual runs", 64, sizeof(int64), sizeof(int64),
							  sched_runs_cxt);
	sched_keys_init();
}

/* A manual run recorded: no longer one handed over and still to start */
void
sched_manual_forget(int64 runid)
{
	(void) hash_search(sched_manual, &runid, HASH_REMOVE, NULL);
}

/*
 * A run whose start was rolled back: out of the queues, no longer counted
 * as running or as holding its concurrency key.  The caller frees it.
 */
void
sched_run_abandon(SchedRun *run)
{
	SchedActive *active = sched_active_for(run->jobid, false);

	sched_dispatch_withdraw(run);
	if (active)
		active->running--;
	if (run->concurrency_key)
		sched_key_release(run->role->username, run->concurrency_key, run->concurrency_slot);
	sched_http_forget(run);
}
