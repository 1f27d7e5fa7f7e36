/*-------------------------------------------------------------------------
 *
 * pg_chime.c
 *	  Module entry point: settings, the clock, and the install-time checks.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/dbcommands.h"
#include "common/int.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "http.h"
#include "pg_chime.h"
#include "shared.h"

PG_MODULE_MAGIC;

void _PG_init(void);

char *chime_database_name = NULL;
char *chime_timezone = NULL;
int   chime_max_running_jobs = 32;
bool  chime_log_run = true;
bool  chime_launch_active_jobs = true;

/* pg_cron's settings that mean nothing here, accepted so its configuration loads */
static char *chime_pg_cron_host = NULL;
static bool  chime_pg_cron_use_background_workers = false;
int          chime_log_min_messages = WARNING;
bool         chime_log_statement = true;
bool         chime_enable_superuser_jobs = true;
int          chime_max_jobs_per_role = 0;
int          chime_max_running_jobs_per_role = 0;
int          chime_http_max_in_flight_per_role = 0;
bool         chime_preloaded = false;

static char *chime_clock_skew_text = NULL;
static char *chime_max_retry_delay_text = NULL;
int64        chime_max_retry_delay_us = USECS_PER_HOUR;
static char *chime_run_retention_text = NULL;
int64        chime_run_retention_us = 30 * USECS_PER_DAY;

/* The levels of cron.log_min_messages, as log_min_messages names them */
static const struct config_enum_entry chime_log_levels[] = {
	{"debug5", DEBUG5, false},
	{"debug4", DEBUG4, false},
	{"debug3", DEBUG3, false},
	{"debug2", DEBUG2, false},
	{"debug1", DEBUG1, false},
	{"debug", DEBUG2, true},
	{"info", INFO, false},
	{"notice", NOTICE, false},
	{"warning", WARNING, false},
	{"error", ERROR, false},
	{"log", LOG, false},
	{"fatal", FATAL, false},
	{"panic", PANIC, false},
	{NULL, 0, false}};

/*
 * Length of an interval in microseconds, a year counted as DAYS_PER_YEAR
 * days and a month as 30; false if it does not fit in an int64.
 */
static bool
chime_interval_usecs(const Interval *iv, int64 *us)
{
	int64 years;
	int64 months;
	int64 days;

	return !pg_mul_s64_overflow(iv->month / MONTHS_PER_YEAR, (int64) (DAYS_PER_YEAR * USECS_PER_DAY), &years) &&
		!pg_mul_s64_overflow(iv->month % MONTHS_PER_YEAR, DAYS_PER_MONTH * USECS_PER_DAY, &months) &&
		!pg_mul_s64_overflow(iv->day, USECS_PER_DAY, &days) &&
		!pg_add_s64_overflow(years, months, us) &&
		!pg_add_s64_overflow(*us, days, us) &&
		!pg_add_s64_overflow(*us, iv->time, us);
}

/*
 * The microseconds of an interval-valued setting; false, with the GUC
 * error's detail and 'hint', when it is not an interval or too long.
 */
static bool
chime_setting_usecs(const char *value, int64 *us, const char *hint)
{
	Interval iv;

	if (value == NULL || !compat_parse_interval(value, &iv))
	{
		GUC_check_errdetail("\"%s\" is not an interval.", value ? value : "");
		GUC_check_errhint("%s", hint);
		return false;
	}
	if (!chime_interval_usecs(&iv, us))
	{
		GUC_check_errdetail("\"%s\" is out of range.", value);
		GUC_check_errhint("Use an interval shorter than 290,000 years.");
		return false;
	}
	return true;
}

/* Hand the microseconds to the assign hook */
static bool
chime_keep_usecs(int64 us, void **extra)
{
	int64 *kept = compat_guc_malloc(sizeof(int64));

	if (kept == NULL)
		return false;
	*kept = us;
	*extra = kept;
	return true;
}

/* GUC check hook for interval-valued settings: keeps the microseconds. */
static bool
chime_check_interval(char **newval, void **extra, GucSource source)
{
	int64 us;

	return chime_setting_usecs(*newval, &us, "Use an interval such as '-400 days', '-9600:00:00' or '30 minutes'.") &&
		chime_keep_usecs(us, extra);
}

/* cron.run_retention: an interval, 0 (keep every run) or longer */
static bool
chime_check_run_retention(char **newval, void **extra, GucSource source)
{
	const char *hint = "Use an interval such as '30 days', or 0 to keep every run.";
	int64       us;

	if (!chime_setting_usecs(*newval, &us, hint))
		return false;
	if (us < 0)
	{
		GUC_check_errdetail("cron.run_retention is how long runs are kept; \"%s\" is negative.", *newval);
		GUC_check_errhint("%s", hint);
		return false;
	}
	return chime_keep_usecs(us, extra);
}

static void
chime_assign_clock_skew(const char *newval, void *extra)
{
	chime_clock_set_skew(extra ? *(int64 *) extra : 0);
}

static void
chime_assign_max_retry_delay(const char *newval, void *extra)
{
	chime_max_retry_delay_us = extra ? *(int64 *) extra : USECS_PER_HOUR;
}

static void
chime_assign_run_retention(const char *newval, void *extra)
{
	chime_run_retention_us = extra ? *(int64 *) extra : 30 * USECS_PER_DAY;
}

static bool
chime_check_timezone(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || chime_zone_lookup(*newval, NULL) == NULL)
	{
		GUC_check_errdetail("\"%s\" is not a time zone.", *newval ? *newval : "");
		GUC_check_errhint("Use a zone name from pg_timezone_names, e.g. 'UTC' or 'America/New_York'.");
		return false;
	}
	return true;
}

/*
 * Define the settings.  The scheduler is started only when the library is
 * preloaded; loading it later (CREATE EXTENSION without preloading) only
 * defines the settings so the install check can explain what is missing.
 */
void
_PG_init(void)
{
	chime_preloaded = process_shared_preload_libraries_in_progress;

	/* settings read at server start exist only when preloaded */
	if (chime_preloaded)
	{
		DefineCustomStringVariable("cron.database_name",
								   "Database in which pg_chime's catalog lives.",
								   NULL,
								   &chime_database_name,
								   "postgres",
								   PGC_POSTMASTER,
								   GUC_SUPERUSER_ONLY,
								   NULL, NULL, NULL);

		DefineCustomStringVariable("cron.host",
								   "pg_cron's host for job connections; pg_chime makes none (no effect).",
								   NULL,
								   &chime_pg_cron_host,
								   "localhost",
								   PGC_POSTMASTER,
								   0,
								   NULL, NULL, NULL);

		DefineCustomBoolVariable("cron.use_background_workers",
								 "pg_cron's choice of background workers for jobs; pg_chime always uses them (no effect).",
								 NULL,
								 &chime_pg_cron_use_background_workers,
								 false,
								 PGC_POSTMASTER,
								 0,
								 NULL, NULL, NULL);

		DefineCustomIntVariable("cron.max_running_jobs",
								"Most SQL runs at the same time.",
								NULL,
								&chime_max_running_jobs,
								32, 1, 10000,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);
	}

	DefineCustomIntVariable("cron.max_jobs_per_role",
							"Most jobs a role may have (0: no limit).",
							"Settable per role with ALTER ROLE ... SET; a role's own setting wins.",
							&chime_max_jobs_per_role,
							0, 0, INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("cron.max_running_jobs_per_role",
							"Most SQL runs of one role at the same time (0: only cron.max_running_jobs).",
							NULL,
							&chime_max_running_jobs_per_role,
							0, 0, 10000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("cron.http_max_in_flight_per_role",
							"Most HTTP transfers of one role at the same time (0: only cron.http_max_in_flight).",
							NULL,
							&chime_http_max_in_flight_per_role,
							0, 0, 100000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("cron.timezone",
							   "Time zone of jobs that do not name their own.",
							   NULL,
							   &chime_timezone,
							   "UTC",
							   PGC_SIGHUP,
							   0,
							   chime_check_timezone, NULL, NULL);

	DefineCustomBoolVariable("cron.log_run",
							 "Record runs in cron.job_run_details.",
							 NULL,
							 &chime_log_run,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("cron.launch_active_jobs",
							 "Start the runs of active jobs; when off, nothing starts until it is on again.",
							 "Occurrences that pass while it is off are then treated as after downtime (catchup).",
							 &chime_launch_active_jobs,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomEnumVariable("cron.log_min_messages",
							 "Least level of the run outcomes pg_chime writes to the server log.",
							 "Failures, timeouts, missed and skipped occurrences are WARNING; starts and successes LOG.",
							 &chime_log_min_messages,
							 WARNING,
							 chime_log_levels,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("cron.log_statement",
							 "Log each command before running it.",
							 NULL,
							 &chime_log_statement,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("cron.enable_superuser_jobs",
							 "Allow jobs that run as a superuser.",
							 NULL,
							 &chime_enable_superuser_jobs,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("cron.clock_skew",
							   "Testing aid: shifts pg_chime's notion of now by this interval.",
							   NULL,
							   &chime_clock_skew_text,
							   "0",
							   PGC_SUSET,
							   0,
							   chime_check_interval, chime_assign_clock_skew, NULL);

	DefineCustomStringVariable("cron.max_retry_delay",
							   "Longest delay between two attempts of a run.",
							   NULL,
							   &chime_max_retry_delay_text,
							   "1 hour",
							   PGC_SIGHUP,
							   0,
							   chime_check_interval, chime_assign_max_retry_delay, NULL);

	DefineCustomStringVariable("cron.run_retention",
							   "How long finished runs are kept in cron.job_run_details (0: for ever).",
							   "The scheduler deletes older runs, and inactive @at jobs whose run is older, "
							   "in small batches in its idle time.",
							   &chime_run_retention_text,
							   "30 days",
							   PGC_SIGHUP,
							   0,
							   chime_check_run_retention, chime_assign_run_retention, NULL);

	chime_http_define_settings();

	MarkGUCPrefixReserved("cron");

	if (chime_preloaded)
	{
		BackgroundWorker w;

		chime_shared_init();

		memset(&w, 0, sizeof(w));
		w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		w.bgw_start_time = BgWorkerStart_RecoveryFinished;
		w.bgw_restart_time = 1;
		strlcpy(w.bgw_library_name, "pg_chime", BGW_MAXLEN);
		strlcpy(w.bgw_function_name, "chime_scheduler_main", BGW_MAXLEN);
		strlcpy(w.bgw_name, "pg_chime scheduler", BGW_MAXLEN);
		strlcpy(w.bgw_type, "pg_chime scheduler", BGW_MAXLEN);
		RegisterBackgroundWorker(&w);
	}
}

/*
 * Called by the install script: refuse CREATE EXTENSION when the library is
 * not preloaded, or in a database other than cron.database_name.
 */
PG_FUNCTION_INFO_V1(chime_check_installable);
Datum
chime_check_installable(PG_FUNCTION_ARGS)
{
	const char *dbname = get_database_name(MyDatabaseId);

	if (!chime_preloaded)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_chime must be loaded via shared_preload_libraries"),
				 errhint("Add pg_chime to shared_preload_libraries in postgresql.conf and restart the server.")));

	if (strcmp(dbname, chime_database_name) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("can only create extension in database %s", chime_database_name),
				 errdetail("Jobs must be scheduled from the database configured in cron.database_name, since the pg_chime scheduler reads its jobs from there."),
				 errhint("Add cron.database_name = '%s' in postgresql.conf to use the current database.", dbname)));

	/* the scheduler waits for the extension: wake it at commit */
	chime_jobs_changed(0);
	PG_RETURN_VOID();
}
