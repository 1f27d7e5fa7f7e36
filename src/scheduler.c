/*-------------------------------------------------------------------------
 *
 * scheduler.c
 *	  The scheduler background worker: one per cluster, connected to
 *	  cron.database_name, only on a primary.
 *
 * Its loop: collect what executors and libcurl finished and record it
 * (sched_record.c), start what is due (sched_fire.c), hand runs over
 * (dispatch.c, dispatch_http.c), delete old runs when it is idle
 * (sched_retention.c), then sleep until the next wake-up
 * (sched_next_wakeup).  At start, runs a previous scheduler left
 * 'starting' or 'running' are reconciled (run_log.c) and their retries
 * planned (sched_retry.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"

#include "commands/extension.h"

#include "api.h"
#include "executor.h"
#include "run_log.h"
#include "shared.h"
#include "sched.h"

MemoryContext sched_runs_cxt; /* roles, executors, runs, active counts */

MemoryContext sched_scratch_cxt; /* reset every iteration */

/*
 * How long before an instant the executors its SQL runs need are started
 * (sched_prestart), and the instant they were last started for.
 */
#define SCHED_PRESTART_MS 500
static int64 sched_prestarted = 0;

static void sched_wait_for_extension(void);
static void sched_prestart(void);
static void sched_least(long *timeout, long left);
static long sched_next_wakeup(long retire, long *work);
static void sched_collect(void);
static void sched_on_exit(int code, Datum arg);

/*
 * Wait until CREATE EXTENSION pg_chime has committed in this database, in
 * the version of this library (an older one waits for ALTER EXTENSION
 * pg_chime UPDATE).
 */
static void
sched_wait_for_extension(void)
{
	bool told = false;

	for (;;)
	{
		char *version = NULL;

		sched_begin("pg_chime: waiting for CREATE EXTENSION pg_chime");
		if (SPI_execute("SELECT extversion FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'pg_chime'",
						true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not look up the pg_chime extension");
		if (SPI_processed > 0)
			version = MemoryContextStrdup(sched_scratch_cxt,
										  SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
		sched_commit();
		if (version && strcmp(version, CHIME_EXTVERSION) == 0)
			return;
		if (version && !told)
			ereport(LOG,
					(errmsg("pg_chime scheduler: the extension installed is version %s, the library %s; waiting",
							version, CHIME_EXTVERSION),
					 errhint("ALTER EXTENSION pg_chime UPDATE brings the extension to %s.", CHIME_EXTVERSION)));
		told = told || version != NULL;

		/* CREATE EXTENSION wakes us at commit; the timeout is a safety net */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
}

/* The least of *timeout (-1: none yet) and 'left' */
static void
sched_least(long *timeout, long left)
{
	if (*timeout < 0 || left < *timeout)
		*timeout = left;
}

/*
 * How long the loop may sleep, in milliseconds (-1: until woken): until
 * the next due job, the next retry, a worker slot that may be free, the
 * end of a recording pause, libcurl's next timer, or 'retire' (when an
 * idle executor is to go; -1: none).  Writes a session held up are tried
 * again every second.  The latch waits whole milliseconds: when the next
 * job is due within 2 ms, this sleeps until the instant and returns 0.
 * *work is the sleep until the next of those.  The last term, the next
 * batch of retention (sched_retention.c), counts only when that batch
 * would leave SCHED_RETENTION_ROOM_MS before the next other work.
 */
static long
sched_next_wakeup(long retire, long *work)
{
	long        timeout = -1;
	long        left;
	TimestampTz due;
	TimestampTz until;

	/* cron.launch_active_jobs off: nothing is due until a reload turns it on */
	if (chime_launch_active_jobs && sched_jobs_next_due(&due))
	{
		int64 us = due - chime_now();

		/* its executors start ahead of it (sched_prestart) */
		if (chime_unix_from_timestamptz(due) != sched_prestarted && us > SCHED_PRESTART_MS * 1000)
			sched_least(&timeout, (long) ((us - SCHED_PRESTART_MS * 1000) / 1000) + 1);

		if (us > 0 && us <= 2000)
		{
			pg_usleep(us);
			us = 0;
		}
		sched_least(&timeout, us <= 0 ? 0 : (long) (us / 1000));
	}
	if (retire >= 0)
		sched_least(&timeout, retire);
	/* runs wait for a worker slot: look again when one may be free */
	if ((until = sched_slot_wait_until()) != 0)
		sched_least(&timeout, chime_server_ms_until(until));
	if (sched_later_pending())
		sched_least(&timeout, 1000);
	/* what is to start besides due jobs (nothing while cron.launch_active_jobs is off) */
	if (chime_launch_active_jobs)
	{
		if (sched_retries_pending())
			sched_least(&timeout, chime_ms_until(sched_next_retry()));
		/* hook runs whose key's lock a session held */
		if ((until = sched_hooks_waiting_until()) != 0)
			sched_least(&timeout, chime_ms_until(until));
		/* runs waiting for their concurrency_key: the first to run out of catchup */
		if ((until = sched_keys_next_deadline()) != 0)
			sched_least(&timeout, chime_ms_until(until) + 1);
		if (sched_keys_admitted_pending())
			sched_least(&timeout, 1000);
	}
	/* the first load has more jobs to read */
	if (sched_jobs_loading() && !sched_log_waiting())
		sched_least(&timeout, 0);
	/*
	 * Jobs changed, or the configuration, while a commit waited (for a
	 * synchronous standby, say): the latch that told it was reset by
	 * that wait
	 */
	if (ConfigReloadPending || (chime_jobs_changed_pending() && !sched_log_waiting()))
		sched_least(&timeout, 0);
	/* recording failed: try again after the pause */
	if ((until = sched_log_paused_until()) != 0)
		sched_least(&timeout, chime_server_ms_until(until));
	/* libcurl's timers; its sockets are in the wait set */
	if (chime_http_in_flight() > 0)
	{
		left = chime_http_timeout();
		if (left >= 0)
			sched_least(&timeout, left);
	}
	*work = timeout;
	if ((left = sched_retention_wakeup()) >= 0 &&
		(timeout < 0 || left + SCHED_RETENTION_ROOM_MS <= timeout))
		timeout = left;
	return timeout;
}

/*
 * Within SCHED_PRESTART_MS of the next instant: start the executors its
 * SQL runs will need (one per run, up to cron.max_running_jobs, counted
 * per role), once per instant.  They start idle; an executor takes a
 * few tens of milliseconds to start, which the first runs of a burst
 * would otherwise wait.
 */
static void
sched_prestart(void)
{
	TimestampTz due;
	SchedJob  **jobs;
	SchedRole **roles;
	int        *want;
	int         nroles = 0;
	int         n;

	if (!chime_launch_active_jobs || !sched_jobs_next_due(&due) ||
		chime_unix_from_timestamptz(due) == sched_prestarted ||
		due - chime_now() > SCHED_PRESTART_MS * 1000)
		return;
	sched_prestarted = chime_unix_from_timestamptz(due);
	jobs = palloc(sizeof(SchedJob *) * chime_max_running_jobs);
	roles = palloc(sizeof(SchedRole *) * chime_max_running_jobs);
	want = palloc0(sizeof(int) * chime_max_running_jobs);
	n = sched_jobs_peek_next(jobs, chime_max_running_jobs);
	for (int i = 0; i < n; i++)
	{
		SchedRole *role = jobs[i]->cls->role;
		int        r = 0;

		if (jobs[i]->cls->http)
			continue;
		while (r < nroles && roles[r] != role)
			r++;
		if (r == nroles)
			roles[nroles++] = role;
		want[r]++;
	}
	for (int r = 0; r < nroles; r++)
		sched_executors_prestart(roles[r], want[r]);
}

/* Read the executors' replies and record them. */
static void
sched_collect(void)
{
	sched_read_replies();
	sched_record_done();
}

static int sched_http_fd = -1; /* libcurl's sockets, as one descriptor */

static void
sched_on_exit(int code, Datum arg)
{
	if (chime_shared)
		chime_set_scheduler(NULL);
	sched_jobs_save_hint();
}

void
chime_scheduler_main(Datum arg)
{
	List         *reboot = NIL;
	List         *interrupted = NIL;
	List         *pending = NIL;
	List         *crashed;
	TimestampTz   started;
	int64        *changed;
	TimestampTz   since;
	WaitEventSet *wait_set;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(chime_database_name, NULL, 0);
	pgstat_report_appname("pg_chime scheduler");

	/*
	 * The scheduler never waits long for a lock a session holds on its
	 * tables: shorter than deadlock_timeout, so that in a deadlock with
	 * DDL (DROP EXTENSION) it is the scheduler that gives way.
	 */
	SetConfigOption("lock_timeout", "500", PGC_SUSET, PGC_S_OVERRIDE);
	/* and its transactions are as it expects, whatever the server's defaults */
	SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);
	/* nor may a database's settings (its owner's) cut its statements short */
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("idle_in_transaction_session_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	/*
	 * A run's start is committed before the run is handed on, so that a
	 * server taking over has it: its commits wait for the synchronous
	 * standbys (and the local flush), whatever synchronous_commit says.
	 */
	SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);

	/*
	 * It runs as the bootstrap superuser: nothing a role can create (in
	 * public, say) may stand in for a function or operator of its
	 * statements, which also name pg_catalog's explicitly.
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	chime_set_scheduler(MyLatch);
	on_proc_exit(sched_on_exit, 0);

	sched_runs_cxt = AllocSetContextCreate(TopMemoryContext, "pg_chime runs", ALLOCSET_DEFAULT_SIZES);
	sched_scratch_cxt = AllocSetContextCreate(TopMemoryContext, "pg_chime scratch", ALLOCSET_DEFAULT_SIZES);
	sched_dispatch_init();
	sched_jobs_init();
	sched_fire_init();
	sched_http_init();
	MemoryContextSwitchTo(sched_scratch_cxt);

	sched_wait_for_extension();
	StartTransactionCommand();
	sched_tx_set_extension(get_extension_oid("pg_chime", false));
	CommitTransactionCommand();
	changed = MemoryContextAlloc(sched_runs_cxt, sizeof(int64) * CHIME_CHANGED_MAX);
	sched_http_fd = chime_http_init();

	/*
	 * One wait set for the life of the scheduler: its latch, postmaster
	 * death, and libcurl's sockets (the epoll set http.c keeps them in,
	 * readable when one of them is ready).
	 */
	wait_set = CreateWaitEventSet(TopMemoryContext, 3);
	AddWaitEventToSet(wait_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(wait_set, WL_SOCKET_READABLE, sched_http_fd, NULL, NULL);
	(void) chime_take_changed(changed, &since);

	sched_stop_orphans();
	crashed = chime_crashed_runs();
	/* a manual run recorded since then cannot have been taken by a scheduler */
	started = chime_manual_unread_since();
	sched_begin("pg_chime: reconciling interrupted runs");
	{
		int64 *manual = palloc(sizeof(int64) * CHIME_MANUAL_MAX);
		int    nmanual = chime_peek_manual(manual);

		chime_run_reconcile(chime_now(), started, manual, nmanual, crashed, sched_runs_cxt, &interrupted);
	}
	chime_run_pending_retries(sched_runs_cxt, &pending);
	sched_commit();
	/* hook runs recorded before the restart, and not started, start now */
	chime_manual_take_all();
	if (interrupted != NIL)
		elog(LOG, "pg_chime: %d interrupted runs marked failed", list_length(interrupted));

	/*
	 * Interrupted attempts are retried as their job's policy allows, and
	 * the retries planned before the restart are made when they were due.
	 * They are listed before loading the jobs, so that an @at job,
	 * inactive once it has run, is loaded for its retry.
	 */
	{
		TimestampTz now = chime_now();

		sched_retry_restore(pending);
		list_free_deep(interrupted);
		list_free_deep(pending);
		MemoryContextSwitchTo(sched_scratch_cxt);
		sched_jobs_first_load(now, &reboot);
		sched_retry_plan_restored(now);
		/* runs that waited for their concurrency_key before the restart wait again */
		sched_begin("pg_chime: reading the waiting runs");
		sched_keys_restore();
		sched_commit();
	}
	elog(LOG, "pg_chime scheduler started");
	if (!chime_launch_active_jobs)
		ereport(LOG, (errmsg("pg_chime: cron.launch_active_jobs is off: no run starts until it is on")));

	for (;;)
	{
		long               timeout;
		long               work;
		bool               reload_all = false;
		static bool        manual_pending = false;
		static bool        reload_pending = false;
		static TimestampTz pending_since = 0;

		/* between iterations: no transaction, and the scratch memory current */
		Assert(!IsTransactionState());
		Assert(CurrentMemoryContext == sched_scratch_cxt);
		MemoryContextReset(sched_scratch_cxt);
		sched_commands_forget();
		chime_secret_forget();
		sched_collect();
		sched_confirm();
		(void) sched_fire_due(&reboot);
		sched_send();
		/* after a start, the jobs are read a batch at a time: what is due among them starts next */
		sched_jobs_load_more(&reboot);
		/* the runs that ended while due runs were starting */
		sched_record_done();
		sched_send();
		sched_mark_running();
		if (sched_later_pending() && !sched_log_waiting())
			sched_flush_later();
		/* runs that waited for their concurrency_key, now that others ended */
		if (!sched_log_waiting() && chime_launch_active_jobs &&
			(sched_keys_admit() || sched_keys_admitted_pending()) &&
			sched_start_manual())
		{
			sched_send();
			sched_mark_running();
		}
		sched_prestart();
		timeout = sched_next_wakeup(sched_retire_idle(), &work);
		/* idle: old runs go, a small batch at a time (cron.run_retention) */
		if (sched_retention_ready(work))
		{
			sched_retention_batch();
			timeout = sched_next_wakeup(sched_retire_idle(), &work);
		}

		{
			WaitEvent event;

			(void) WaitEventSetWait(wait_set, timeout, &event, 1, PG_WAIT_EXTENSION);
		}
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			bool launching = chime_launch_active_jobs;

			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			reload_all = true;
			if (launching != chime_launch_active_jobs)
				ereport(LOG,
						(errmsg(chime_launch_active_jobs ? "pg_chime: cron.launch_active_jobs is on: runs start again" : "pg_chime: cron.launch_active_jobs is off: no run starts until it is on")));
		}
		if (reload_all || reload_pending || chime_jobs_changed_pending())
		{
			List *none = NIL;
			int   n;

			if (sched_log_waiting())
				goto reloaded; /* after the pause (a reload pending stays so) */
			n = chime_take_changed(changed, &since);
			if (reload_pending && pending_since != 0 && (since == 0 || pending_since < since))
				since = pending_since;
			if (reload_pending)
				n = -1;
			/* occurrences up to now belong to the old job list */
			(void) sched_fire_due(&none);
			PG_TRY();
			{
				if (reload_all || n < 0)
					sched_load(NULL, 0, since);
				else if (n > 0)
					sched_load(changed, n, since);
				reload_pending = false;
				pending_since = 0;
			}
			PG_CATCH();
			{
				/* the changes it took are known no more: reload every job */
				sched_recording_failed("reload the jobs");
				reload_pending = true;
				if (since != 0 && (pending_since == 0 || since < pending_since))
					pending_since = since;
			}
			PG_END_TRY();
		}
reloaded:
		if (chime_manual_runs_pending() ||
			(sched_hooks_waiting_until() != 0 && sched_hooks_waiting_until() <= chime_now()))
			manual_pending = true;
		if (manual_pending && !sched_log_waiting())
			manual_pending = !sched_start_manual();
	}
}
