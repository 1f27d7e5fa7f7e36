/*-------------------------------------------------------------------------
 *
 * api.h
 *	  Plumbing shared by the SQL-callable API functions.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHIME_API_H
#define CHIME_API_H

#include "postgres.h"

#include "nodes/pg_list.h"
#include "utils/jsonb.h"

#include "job_def.h"
#include "schedule.h"

/* What chime_api_begin() changed, for chime_api_end() to put back. */
typedef struct ApiPrivilege
{
	Oid userid;
	int sec_context;
	int guc_nest;
} ApiPrivilege;

/*
 * Connect SPI and act as the catalog's owner with a pinned search_path,
 * after the caller's rights have been checked.  An error in between undoes
 * both with the transaction.
 */
extern void chime_api_begin(ApiPrivilege *saved);
extern void chime_api_end(ApiPrivilege *saved);

/* ereport(ERROR) for a bad option value, with the parser's detail and hint. */
extern void chime_invalid_value(const char *what, const char *value,
								const ChimeError *err) pg_attribute_noreturn();

/*
 * The job catalog's API: job_api.c (the SQL-callable functions that write
 * cron.job), job_check.c (what they check first) and job_run.c (manual
 * runs, run keys and the run history).
 */

/* The columns of cron.job that the API writes. */
typedef enum JobColumn
{
	JC_SCHEDULE,
	JC_COMMAND,
	JC_DATABASE,
	JC_USERNAME,
	JC_ACTIVE,
	JC_JOBNAME,
	JC_KIND,
	JC_TIMEZONE,
	JC_RUN_WINDOW,
	JC_ONCE_PER,
	JC_OVERLAP,
	JC_CONCURRENCY_KEY,
	JC_MAX_ATTEMPTS,
	JC_RETRY_DELAY,
	JC_TIMEOUT,
	JC_CATCHUP,
	JC_DST_GAP,
	JC_URL,
	JC_METHOD,
	JC_HEADERS,
	JC_BODY,
	JC_ON_SUCCESS,
	JC_ON_FAILURE,
	JC_ALERT_AFTER,
	JC_NOTIFY_CHANNEL,
	JC_START_AT,
	JC_END_AT,
	JC_JITTER,
	JC_CONCURRENCY_LIMIT,
	JC_COUNT,
	JC_NONE = -1 /* an argument that is not a column */
} JobColumn;

/* Each column's name and type */
typedef struct JobColumnInfo
{
	const char *name;
	Oid         type;
} JobColumnInfo;

extern const JobColumnInfo chime_job_columns[JC_COUNT];

/* Values for the columns to write: given[c] false leaves column c alone. */
typedef struct JobArgs
{
	bool  given[JC_COUNT];
	bool  isnull[JC_COUNT];
	Datum value[JC_COUNT];
} JobArgs;

/*
 * Who is calling: taken on entry, before the functions act as the catalog's
 * owner, and used for every rights check after that.
 */
typedef struct JobCaller
{
	Oid   id;
	char *name;
	bool  super;
} JobCaller;

/* job_api.c; a job read back is a ChimeJobDef (job_def.h) */
extern void         chime_job_caller(JobCaller *caller);
extern void         chime_job_set(JobArgs *a, JobColumn c, Datum value, bool isnull);
extern void         chime_job_set_text(JobArgs *a, JobColumn c, const char *value);
extern char        *chime_job_text(const JobArgs *a, JobColumn c);
extern ChimeJobDef *chime_job_fetch(const char *where, int nargs, Oid *types, Datum *values,
									bool lock);
extern ChimeJobDef *chime_job_fetch_owned(const JobCaller *caller, int64 jobid, bool lock);

/* job_check.c */
extern void chime_job_check_values(JobArgs *a);
extern void chime_job_check_span(const JobArgs *a, int64 jobid);
extern void chime_job_check_rights(const JobCaller *caller, const char *username,
								   const char *database, bool role_changed);
extern void chime_job_check_quota(const char *username);
extern void chime_job_check_hooks(const JobArgs *a, const char *owner, const char *jobname,
								  int64 jobid);
extern void chime_job_check_secrets(const char *owner, const char *url, Jsonb *headers,
									const char *body);

/* secret.c */
#define CHIME_SECRET_NAME_HINT "A secret name starts with a letter or underscore, has only letters, digits and underscores, and is at most 63 characters, e.g. 'cron_secret'."
extern bool chime_secret_name_ok(const char *name, size_t len);
extern void chime_secret_require(const char *owner, List *names);
extern bool chime_secret_collect(const char *text, const char *owner, bool one_line, List **used,
								 char **error);
extern void chime_secret_forget(void);

#endif /* CHIME_API_H */
