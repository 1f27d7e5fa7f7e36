/*-------------------------------------------------------------------------
 *
 * dispatch_http.c
 *	  Where an HTTP run goes: the request made from the job (secrets put
 *	  in at the last moment), per-owner queues taking turns for
 *	  cron.http_max_in_flight slots, handing transfers to http.c and
 *	  reading their results back.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"

#include "utils/acl.h"
#include "utils/memutils.h"

#include "api.h"
#include "executor.h"
#include "run_log.h"
#include "sched.h"
#include "template.h"

/*
 * Queue a run for the executor (NULL: the backlog).  A run with runid 0 is
 * recorded, and its runid set, when the transaction commits.  The run
 * counts against its concurrency key until it ends.
 */

/*
 * The HTTP runs of one owner waiting to start, and its transfers going.
 * Owners with runs waiting take turns (sched_http_turns), one transfer
 * each per turn, so that one role's runs cannot take every slot before
 * another's get one; cron.http_max_in_flight_per_role caps each.
 */
typedef struct SchedHttpOwner
{
	char  username[NAMEDATALEN]; /* hash key */
	List *pending;               /* SchedRun, in order */
	int   inflight;
	bool  in_turns; /* in sched_http_turns */
} SchedHttpOwner;

static HTAB *sched_http_owners;      /* in sched_runs_cxt */
static List *sched_http_turns = NIL; /* SchedHttpOwner with runs waiting */

static SchedHttpOwner   *sched_http_owner(const SchedRun *run);
static void              sched_http_take_turn(SchedHttpOwner *o);
static bool              sched_http_run_gone(void *owner, void *arg);
static ChimeHttpRequest *sched_http_request(int64 jobid, const char *owner, int32 timeout_ms, char **error,
											bool *secret_missing);
static void              sched_http_done(SchedRun *run, const ChimeHttpResult *r, const char *error);

static SchedHttpOwner *
sched_http_owner(const SchedRun *run)
{
	bool            found;
	SchedHttpOwner *o = hash_search(sched_http_owners, run->role->username, HASH_ENTER, &found);

	if (!found)
	{
		o->pending = NIL;
		o->inflight = 0;
		o->in_turns = false;
	}
	return o;
}

/* Put the owner in line for a turn, unless it is already */
static void
sched_http_take_turn(SchedHttpOwner *o)
{
	MemoryContext old;

	if (o->in_turns || o->pending == NIL)
		return;
	old = MemoryContextSwitchTo(sched_runs_cxt);
	sched_http_turns = lappend(sched_http_turns, o);
	o->in_turns = true;
	MemoryContextSwitchTo(old);
}

/* An HTTP run to start when a slot and its owner's turn come */
void
sched_http_queue(SchedRun *run)
{
	SchedHttpOwner *o = sched_http_owner(run);
	MemoryContext   old = MemoryContextSwitchTo(sched_runs_cxt);

	o->pending = lappend(o->pending, run);
	MemoryContextSwitchTo(old);
	sched_http_take_turn(o);
}

#define SCHED_CANCELLED "cancelled: the job was unscheduled or deactivated"

static bool
sched_http_run_gone(void *owner, void *arg)
{
	return hash_search((HTAB *) arg, &((SchedRun *) owner)->jobid, HASH_FIND, NULL) != NULL;
}

/*
 * The jobs in 'gone' (jobid keys) were unscheduled or deactivated: their
 * HTTP runs waiting to start and their transfers going end, failed as
 * cancelled.
 */
void
sched_http_cancel_jobs(HTAB *gone)
{
	HASH_SEQ_STATUS seq;
	SchedHttpOwner *o;
	ListCell       *lc;
	List           *ended = chime_http_cancel(sched_http_run_gone, gone, SCHED_CANCELLED);

	foreach(lc, ended)
	{
		ChimeHttpResult *r = lfirst(lc);

		sched_http_done(r->owner, r, NULL);
	}
	hash_seq_init(&seq, sched_http_owners);
	while ((o = hash_seq_search(&seq)) != NULL)
	{
		foreach(lc, o->pending)
		{
			SchedRun *run = lfirst(lc);

			if (!sched_http_run_gone(run, gone))
				continue;
			o->pending = foreach_delete_current(o->pending, lc);
			sched_http_forget(run);
			sched_http_done(run, NULL, SCHED_CANCELLED);
		}
	}
}

/* A run that will not start after all (its transaction was undone) */
void
sched_http_unqueue(SchedRun *run)
{
	if (run->http != NULL || run->http_error != NULL)
	{
		SchedHttpOwner *o = sched_http_owner(run);

		o->pending = list_delete_ptr(o->pending, run);
	}
}

/*
 * The request of an HTTP job, as read with its command, its variables not
 * yet filled in but its owner's secrets looked up (and kept with it, for
 * sched_http_fill to put in and chime_http to scrub from messages), in
 * sched_runs_cxt; NULL with *error when a secret is missing or its value
 * cannot go where it is referred to (and then *secret_missing).
 */
static ChimeHttpRequest *
sched_http_request(int64 jobid, const char *owner, int32 timeout_ms, char **error, bool *secret_missing)
{
	SchedCommand     *c = sched_command_of(jobid);
	ChimeHttpRequest *req;
	char             *failed = NULL;
	List             *secrets = NIL;
	ListCell         *lc;
	MemoryContext     old;

	if (c == NULL || !c->http)
	{
		*error = MemoryContextStrdup(sched_runs_cxt, "failed: the job is gone");
		return NULL;
	}
	if (chime_secret_collect(c->url, owner, true, &secrets, &failed) &&
		chime_secret_collect(c->body, owner, false, &secrets, &failed))
	{
		foreach(lc, c->headers)
			if (!chime_secret_collect(lfirst(lc), owner, true, &secrets, &failed))
				break;
	}
	if (failed)
	{
		*error = MemoryContextStrdup(sched_runs_cxt, failed);
		*secret_missing = true;
		return NULL;
	}
	old = MemoryContextSwitchTo(sched_runs_cxt);
	req = chime_http_request_new(secrets);
	req->url = pstrdup(c->url);
	req->method = pstrdup(c->method);
	req->body = c->body ? pstrdup(c->body) : NULL;
	foreach(lc, c->headers)
		req->headers = lappend(req->headers, pstrdup(lfirst(lc)));
	req->timeout_ms = timeout_ms;
	MemoryContextSwitchTo(old);
	return req;
}

/*
 * The request of an HTTP run about to start, as sched_http_request makes
 * it; none, with *error, when its owner is a superuser now and
 * cron.enable_superuser_jobs is off (checked at each start, not only when
 * the job was scheduled).  *secret_missing says that a secret is what it
 * lacks (a run that cannot start for that claims no once_per key).  Inside
 * a transaction.
 */
ChimeHttpRequest *
sched_http_prepare(int64 jobid, const char *owner, int32 timeout_ms, char **error, bool *secret_missing)
{
	Oid roleid = get_role_oid(owner, true);

	*secret_missing = false;
	if (!chime_enable_superuser_jobs && OidIsValid(roleid) && superuser_arg(roleid))
	{
		*error = MemoryContextStrdup(sched_runs_cxt,
									 psprintf("failed: role %s is a superuser and cron.enable_superuser_jobs is off",
											  owner));
		return NULL;
	}
	return sched_http_request(jobid, owner, timeout_ms, error, secret_missing);
}

/*
 * What an HTTP run's variables need besides the run itself: its job's
 * name, its payload (a hook's, or cron.run_now's; NULL: none) and for a
 * retry the occurrence's first attempt.  Inside the transaction that
 * starts it.
 */
void
sched_http_context(SchedRun *run, const char *payload, int64 first_runid)
{
	SchedCommand *c;

	if (run->http == NULL)
		return;
	c = sched_command_of(run->jobid);
	run->jobname = c && c->jobname[0] ? MemoryContextStrdup(sched_runs_cxt, c->jobname) : NULL;
	run->payload = payload ? MemoryContextStrdup(sched_runs_cxt, payload) : NULL;
	run->first_runid = first_runid;
}

/* Has the request a Content-Type header? */
static bool
sched_http_has_content_type(const List *headers)
{
	ListCell *lc;

	foreach(lc, headers)
		if (pg_strncasecmp(lfirst(lc), "content-type:", 13) == 0)
			return true;
	return false;
}

/*
 * The request of a run about to be sent, its variables filled in from the
 * run (in sched_runs_cxt; it replaces run->http).  A run with a payload
 * and no body posts the payload.  A body without a Content-Type header
 * goes as application/json when it is JSON, as text/plain otherwise.
 * NULL, with *error, when a variable cannot be filled in.
 */
static ChimeHttpRequest *
sched_http_fill(SchedRun *run, char **error)
{
	ChimeHttpRequest *raw = run->http;
	ChimeHttpRequest *req;
	ChimeRunContext   ctx;
	StringInfoData    buf;
	List             *secrets = NIL;
	ListCell         *lc;
	MemoryContext     old = MemoryContextSwitchTo(sched_runs_cxt);

	memset(&ctx, 0, sizeof(ctx));
	ctx.runid = run->runid;
	ctx.first_runid = run->first_runid;
	ctx.attempt = run->attempt;
	ctx.jobid = run->jobid;
	ctx.jobname = run->jobname;
	ctx.run_key = run->run_key;
	ctx.scheduled_time = run->row.scheduled_time;
	ctx.trigger = run->row.trigger;
	ctx.payload = run->payload;
	ctx.secrets = raw;

	for (int i = 0; i < raw->nsecrets; i++)
		secrets = lappend(secrets, &raw->secrets[i]);
	req = chime_http_request_new(secrets);
	req->method = pstrdup(raw->method);
	req->timeout_ms = raw->timeout_ms;
	initStringInfo(&buf);
	if (!chime_template_fill(raw->url, CHIME_TPL_URL, &ctx, &buf, error))
		goto fail;
	req->url = buf.data;
	foreach(lc, raw->headers)
	{
		initStringInfo(&buf);
		if (!chime_template_fill(lfirst(lc), CHIME_TPL_HEADER, &ctx, &buf, error))
			goto fail;
		req->headers = lappend(req->headers, buf.data);
	}
	if (raw->body)
	{
		initStringInfo(&buf);
		if (!chime_template_fill(raw->body, CHIME_TPL_BODY, &ctx, &buf, error))
			goto fail;
		req->body = buf.data;
	}
	else if (run->payload)
		req->body = pstrdup(run->payload);
	if (req->body && !sched_http_has_content_type(req->headers))
		req->headers = lappend(req->headers,
							   pstrdup(chime_text_is_json(req->body) ? "Content-Type: application/json" : "Content-Type: text/plain"));
	list_free(secrets);
	MemoryContextSwitchTo(old);
	return req;

fail:
	list_free_deep(req->headers);
	if (req->url)
		pfree(req->url);
	pfree(req->method);
	pfree(req);
	list_free(secrets);
	MemoryContextSwitchTo(old);
	return NULL;
}

/* An HTTP run that ended (or could not start): to be recorded */
static void
sched_http_done(SchedRun *run, const ChimeHttpResult *r, const char *error)
{
	MemoryContext old = MemoryContextSwitchTo(sched_runs_cxt);
	SchedOutcome *d = &run->out;

	d->http = true;
	d->pid = MyProcPid;
	if (run->http_inflight)
	{
		SchedHttpOwner *o = sched_http_owner(run);

		run->http_inflight = false;
		o->inflight--;
		sched_http_take_turn(o);
	}
	if (r)
	{
		d->ok = r->ok;
		d->http_retry = r->retry;
		d->http_status = r->status;
		d->retry_after_us = r->retry_after_us;
		d->message = pstrdup(r->message);
		d->body = r->body ? pstrdup(r->body) : NULL;
	}
	else
		d->message = pstrdup(error);
	sched_done_add(run);
	MemoryContextSwitchTo(old);
}

/*
 * Forget a request once libcurl has its copy (it holds secret values), and
 * what its variables were filled in from.
 */
void
sched_http_forget(SchedRun *run)
{
	ChimeHttpRequest *req = run->http;

	if (run->jobname)
		pfree(run->jobname);
	if (run->payload)
		pfree(run->payload);
	run->jobname = run->payload = NULL;
	if (req == NULL)
		return;
	sched_http_request_free(req);
	run->http = NULL;
}

/* Free a request sched_http_prepare made */
void
sched_http_request_free(ChimeHttpRequest *req)
{
	list_free_deep(req->headers);
	pfree(req->url);
	pfree(req->method);
	if (req->body)
		pfree(req->body);
	pfree(req);
}

/*
 * Start the HTTP runs waiting, while fewer than cron.http_max_in_flight
 * go: owners in turn, one run each, none past its
 * cron.http_max_in_flight_per_role (it takes its turn again when one of
 * its transfers ends).
 */
void
sched_http_send(void)
{
	while (sched_http_turns != NIL && chime_http_in_flight() < chime_http_max_in_flight)
	{
		SchedHttpOwner *o = linitial(sched_http_turns);
		SchedRun       *run;
		char           *error;

		MemoryContextSwitchTo(sched_runs_cxt);
		sched_http_turns = list_delete_first(sched_http_turns);
		o->in_turns = false;
		if (o->pending == NIL ||
			(chime_http_max_in_flight_per_role > 0 && o->inflight >= chime_http_max_in_flight_per_role))
		{
			MemoryContextSwitchTo(sched_scratch_cxt);
			continue;
		}
		run = linitial(o->pending);
		o->pending = list_delete_first(o->pending);
		MemoryContextSwitchTo(sched_scratch_cxt);
		sched_http_take_turn(o);

		error = run->http_error;
		if (error == NULL)
		{
			ChimeHttpRequest *req = sched_http_fill(run, &error);

			/* (the request with its variables in place replaces the job's) */
			sched_http_forget(run);
			run->http = req;
		}
		if (error == NULL && chime_http_start(run, run->http, &error))
		{
			run->http_inflight = true;
			o->inflight++;
			sched_http_forget(run);
			continue;
		}
		sched_http_forget(run);
		sched_http_done(run, NULL, error);
	}
}

/* The HTTP transfers that ended go to sched_done. */
void
sched_http_collect(void)
{
	ListCell *lc;
	List     *results = chime_http_work();

	foreach(lc, results)
	{
		ChimeHttpResult *r = lfirst(lc);

		sched_http_done(r->owner, r, NULL);
	}
}

/* At start: the table of HTTP owners */
void
sched_http_init(void)
{
	sched_http_owners = sched_hash("pg_chime HTTP owners", 16, NAMEDATALEN, sizeof(SchedHttpOwner),
								   sched_runs_cxt);
}
