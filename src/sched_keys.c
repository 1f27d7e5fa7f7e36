/*-------------------------------------------------------------------------
 *
 * sched_keys.c
 *	  Concurrency keys: how many runs hold each key of an owner (and which
 *	  of its slots), and the runs waiting for one, first come first served.
 *
 * A run whose key is full (as many runs hold it as its job's
 * concurrency_limit), or has runs waiting already, waits: it is recorded
 * with status 'waiting' and queued by its scheduled time.  When runs end,
 * sched_keys_admit starts the first waiting runs that fit, through the path
 * that takes manual runs (sched_start_manual), and records 'missed' those
 * whose job's catchup ran out first.  Waiting rows are read back at
 * scheduler start, so a restart loses none.
 *
 * Each run holding a key has a slot (0 to limit - 1): its executor holds
 * the slot's lock, so that a run of an executor left over from before a
 * restart still counts.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "executor.h"
#include "job_def.h"
#include "locks.h"
#include "pg_chime.h"
#include "run_log.h"
#include "sched.h"

typedef struct SchedKeyId
{
	char   username[NAMEDATALEN]; /* the owner, exactly */
	uint64 key_hash;              /* the key (a collision is between one owner's keys) */
} SchedKeyId;

/* A run waiting for its key */
typedef struct SchedWaiting
{
	int64       runid;
	int64       jobid;
	TimestampTz scheduled; /* the order: by scheduled time, then runid */
	TimestampTz deadline;  /* then it is missed */
	int32       limit;     /* its job's concurrency_limit */
} SchedWaiting;

typedef struct SchedKey
{
	SchedKeyId id; /* hash key */
	int        running;
	uint64     slots;   /* bit i: slot i is held */
	List      *waiting; /* SchedWaiting, in order */
	char      *name;    /* the key, for messages */
} SchedKey;

static HTAB *sched_keys;                /* in sched_runs_cxt */
static List *sched_keys_pending = NIL;  /* SchedWaiting + key of this transaction's waits */
static List *sched_keys_admitted = NIL; /* runids for sched_start_manual to take */
static int   sched_keys_nwaiting = 0;   /* runs in all the lines (none: nothing to look at) */

typedef struct SchedPendingWait
{
	char        *username;
	char        *key;
	SchedWaiting w;
} SchedPendingWait;

void
sched_keys_init(void)
{
	sched_keys = sched_hash("pg_chime concurrency keys", 64, sizeof(SchedKeyId), sizeof(SchedKey),
							sched_runs_cxt);
}

static SchedKey *
sched_key(const char *username, const char *key, bool create)
{
	SchedKeyId id;
	bool       found;
	SchedKey  *k;

	memset(&id, 0, sizeof(id));
	strlcpy(id.username, username, NAMEDATALEN);
	id.key_hash = chime_lock_id_text(key);
	k = hash_search(sched_keys, &id, create ? HASH_ENTER : HASH_FIND, &found);
	if (k && !found)
	{
		k->running = 0;
		k->slots = 0;
		k->waiting = NIL;
		k->name = MemoryContextStrdup(sched_runs_cxt, key);
	}
	return k;
}

/* Must a new run of a job with this key and limit wait (full, or others wait)? */
bool
sched_key_must_wait(const char *username, const char *key, int32 limit)
{
	SchedKey *k = sched_key(username, key, false);

	return k != NULL && (k->running >= limit || k->waiting != NIL);
}

/* Is there a free slot for a run of a job with this limit (the line aside)? */
bool
sched_key_has_room(const char *username, const char *key, int32 limit)
{
	SchedKey *k = sched_key(username, key, false);

	return k == NULL || k->running < limit;
}

/* A run takes the key: its slot, the lowest free one */
int
sched_key_take(const char *username, const char *key)
{
	SchedKey *k = sched_key(username, key, true);
	int       slot = 0;

	while (slot < 63 && (k->slots >> slot) & 1)
		slot++;
	k->slots |= (uint64) 1 << slot;
	k->running++;
	return slot;
}

void
sched_key_release(const char *username, const char *key, int slot)
{
	SchedKey *k = sched_key(username, key, false);

	if (k == NULL)
		return;
	k->running--;
	k->slots &= ~((uint64) 1 << slot);
}

/*
 * A run recorded 'waiting' in this transaction: queued when it commits
 * (sched_keys_commit), forgotten if it fails (sched_keys_undo).
 */
void
sched_key_wait(const char *username, const char *key, int64 runid, int64 jobid, TimestampTz scheduled,
			   int64 catchup_s, int32 limit)
{
	MemoryContext     old = MemoryContextSwitchTo(sched_runs_cxt);
	SchedPendingWait *p = palloc0(sizeof(SchedPendingWait));

	p->username = pstrdup(username);
	p->key = pstrdup(key);
	p->w.runid = runid;
	p->w.jobid = jobid;
	p->w.scheduled = scheduled;
	p->w.deadline = scheduled + catchup_s * USECS_PER_SEC;
	p->w.limit = limit;
	sched_keys_pending = lappend(sched_keys_pending, p);
	MemoryContextSwitchTo(old);
	sched_active_for(jobid, true)->waiting_runid = runid;
}

/* The waits of the transaction that committed join their keys' lines */
void
sched_keys_commit(void)
{
	ListCell     *lc;
	MemoryContext old = MemoryContextSwitchTo(sched_runs_cxt);

	foreach(lc, sched_keys_pending)
	{
		SchedPendingWait *p = lfirst(lc);
		SchedKey         *k = sched_key(p->username, p->key, true);
		SchedWaiting     *w = palloc(sizeof(SchedWaiting));
		ListCell         *at;
		int               i = 0;

		*w = p->w;
		foreach(at, k->waiting)
		{
			SchedWaiting *o = lfirst(at);

			if (o->scheduled > w->scheduled || (o->scheduled == w->scheduled && o->runid > w->runid))
				break;
			i++;
		}
		k->waiting = list_insert_nth(k->waiting, i, w);
		sched_keys_nwaiting++;
		pfree(p->username);
		pfree(p->key);
	}
	list_free_deep(sched_keys_pending);
	sched_keys_pending = NIL;
	MemoryContextSwitchTo(old);
}

/* The transaction that recorded them failed: they wait nowhere */
void
sched_keys_undo(void)
{
	ListCell *lc;

	foreach(lc, sched_keys_pending)
	{
		SchedPendingWait *p = lfirst(lc);
		SchedActive      *a = sched_active_for(p->w.jobid, false);

		if (a && a->waiting_runid == p->w.runid)
			a->waiting_runid = 0;
		pfree(p->username);
		pfree(p->key);
	}
	list_free_deep(sched_keys_pending);
	sched_keys_pending = NIL;
}

/* The earliest instant a waiting run runs out of catchup (0: none waits) */
TimestampTz
sched_keys_next_deadline(void)
{
	HASH_SEQ_STATUS seq;
	SchedKey       *k;
	TimestampTz     first = 0;

	if (sched_keys_nwaiting == 0)
		return 0;
	hash_seq_init(&seq, sched_keys);
	while ((k = hash_seq_search(&seq)) != NULL)
	{
		ListCell *lc;

		foreach(lc, k->waiting)
		{
			SchedWaiting *w = lfirst(lc);

			if (first == 0 || w->deadline < first)
				first = w->deadline;
		}
	}
	return first;
}

/* The runids admitted to start, for sched_start_manual (in *n; NULL: none) */
int64 *
sched_keys_take_admitted(int *n)
{
	int64    *ids;
	ListCell *lc;
	int       i = 0;

	*n = list_length(sched_keys_admitted);
	if (*n == 0)
		return NULL;
	ids = palloc(sizeof(int64) * *n);
	foreach(lc, sched_keys_admitted)
		ids[i++] = *(int64 *) lfirst(lc);
	list_free_deep(sched_keys_admitted);
	sched_keys_admitted = NIL;
	return ids;
}

/* A waiting run is taken, or will not start: its job waits no more */
static void
sched_keys_done_waiting(const SchedWaiting *w)
{
	SchedActive *a = sched_active_for(w->jobid, false);

	if (a && a->waiting_runid == w->runid)
		a->waiting_runid = 0;
}

/* Waiting runs that ran out of catchup, to record missed (SchedExpired) */
typedef struct SchedExpired
{
	int64 runid;
	int64 jobid;
	char *message;
} SchedExpired;

static List *sched_keys_expired = NIL;

/*
 * Let the first waiting runs of each key start while they fit, in order
 * (one that does not fit holds back those behind it), and record missed
 * those whose catchup ran out (kept to record again when that fails).
 * Returns whether runs were admitted: sched_start_manual takes them.
 * Outside a transaction.
 */
bool
sched_keys_admit(void)
{
	HASH_SEQ_STATUS seq;
	SchedKey       *k;
	TimestampTz     now = chime_now();
	bool            admitted = false;
	MemoryContext   old;

	/* (called every iteration of the scheduler's loop: nothing to do is cheap) */
	if (sched_keys_nwaiting == 0 && sched_keys_expired == NIL)
		return false;
	old = MemoryContextSwitchTo(sched_runs_cxt);

	hash_seq_init(&seq, sched_keys);
	while ((k = hash_seq_search(&seq)) != NULL)
	{
		int fits = 0;

		while (k->waiting != NIL)
		{
			SchedWaiting *w = linitial(k->waiting);

			if (w->deadline < now)
			{
				SchedExpired *e = palloc(sizeof(SchedExpired));

				e->runid = w->runid;
				e->jobid = w->jobid;
				e->message = psprintf("could not start within catchup: concurrency_key \"%s\" stayed full",
									  k->name);
				sched_keys_expired = lappend(sched_keys_expired, e);
			}
			else if (k->running + fits < (w->limit = sched_jobs_concurrency_limit(w->jobid, w->limit)))
			{
				int64 *id = palloc(sizeof(int64));

				*id = w->runid;
				sched_keys_admitted = lappend(sched_keys_admitted, id);
				fits++;
				admitted = true;
			}
			else
				break;
			sched_keys_done_waiting(w);
			pfree(w);
			k->waiting = list_delete_first(k->waiting);
			sched_keys_nwaiting--;
		}
	}
	MemoryContextSwitchTo(old);

	if (sched_keys_expired != NIL)
	{
		volatile bool ok = true;

		PG_TRY();
		{
			ListCell *lc;

			sched_begin("pg_chime: recording missed waiting runs");
			foreach(lc, sched_keys_expired)
			{
				SchedExpired *e = lfirst(lc);

				chime_run_end_waiting(e->runid, "missed", e->message, now);
			}
			sched_commit();
		}
		PG_CATCH();
		{
			sched_recording_failed("record the waiting runs that were missed");
			ok = false;
		}
		PG_END_TRY();
		if (ok)
		{
			ListCell *lc;

			foreach(lc, sched_keys_expired)
				pfree(((SchedExpired *) lfirst(lc))->message);
			list_free_deep(sched_keys_expired);
			sched_keys_expired = NIL;
		}
	}
	return admitted;
}

/* The admitted runs could not be taken: they are taken next time */
void
sched_keys_readmit(const int64 *ids, int n)
{
	MemoryContext old = MemoryContextSwitchTo(sched_runs_cxt);

	for (int i = 0; i < n; i++)
	{
		int64 *id = palloc(sizeof(int64));

		*id = ids[i];
		sched_keys_admitted = lappend(sched_keys_admitted, id);
	}
	MemoryContextSwitchTo(old);
}

/* Are runs admitted and not taken yet? */
bool
sched_keys_admitted_pending(void)
{
	return sched_keys_admitted != NIL;
}

/*
 * At scheduler start: the runs recorded 'waiting' before, back in their
 * keys' lines (those of a job that is gone, or whose key is, start at once:
 * sched_start_manual records them skipped when their job is gone).
 * Inside a transaction.
 */
void
sched_keys_restore(void)
{
	if (SPI_execute("SELECT r.runid, r.jobid, r.scheduled_time, j.username, j.concurrency_key, "
					"j.concurrency_limit, j.catchup FROM cron.job_run_details r "
					"LEFT JOIN cron.job j ON j.jobid OPERATOR(pg_catalog.=) r.jobid "
					"WHERE r.status OPERATOR(pg_catalog.=) 'waiting' ORDER BY r.scheduled_time, r.runid",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the waiting runs");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple   tup = SPI_tuptable->vals[i];
		TupleDesc   desc = SPI_tuptable->tupdesc;
		bool        isnull;
		int64       runid = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		int64       jobid = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		TimestampTz at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull));
		char       *username = SPI_getvalue(tup, desc, 4);
		char       *key = SPI_getvalue(tup, desc, 5);
		Datum       lim = SPI_getbinval(tup, desc, 6, &isnull);
		int32       limit = isnull ? 1 : DatumGetInt32(lim);
		Datum       cu = SPI_getbinval(tup, desc, 7, &isnull);
		int64       catchup_us = 0;

		if (!isnull && !chime_job_interval_us(cu, CHIME_MAX_CATCHUP_US, &catchup_us))
			catchup_us = CHIME_MAX_CATCHUP_US;
		if (username == NULL || key == NULL)
		{
			/* no line to wait in: taken at once */
			sched_keys_readmit(&runid, 1);
			continue;
		}
		sched_key_wait(username, key, runid, jobid, at, catchup_us / USECS_PER_SEC, limit);
	}
	sched_keys_commit();
}

/*
 * The jobs in 'gone' (jobid keys) were unscheduled or deactivated: their
 * runs waiting for a key will not start (recorded missed at the next
 * sched_keys_admit).
 */
void
sched_keys_cancel_jobs(HTAB *gone)
{
	HASH_SEQ_STATUS seq;
	SchedKey       *k;
	MemoryContext   old = MemoryContextSwitchTo(sched_runs_cxt);

	hash_seq_init(&seq, sched_keys);
	while ((k = hash_seq_search(&seq)) != NULL)
	{
		ListCell *lc;

		foreach(lc, k->waiting)
		{
			SchedWaiting *w = lfirst(lc);
			SchedExpired *e;

			if (hash_search(gone, &w->jobid, HASH_FIND, NULL) == NULL)
				continue;
			e = palloc(sizeof(SchedExpired));
			e->runid = w->runid;
			e->jobid = w->jobid;
			e->message = pstrdup("not started: the job was unscheduled or deactivated while it waited");
			sched_keys_expired = lappend(sched_keys_expired, e);
			sched_keys_done_waiting(w);
			k->waiting = foreach_delete_current(k->waiting, lc);
			sched_keys_nwaiting--;
			pfree(w);
		}
	}
	MemoryContextSwitchTo(old);
}
