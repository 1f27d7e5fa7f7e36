/*-------------------------------------------------------------------------
 *
 * locks.c
 *	  pg_chime's advisory locks: see locks.h for the classes.
 *
 * Session locks are taken by an executor around a run and released by the
 * DISCARD ALL that follows every run; transaction locks serialise the
 * claims of a once_per key between the scheduler, cron.run_now and
 * cron.release_key.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/lock.h"

#include "locks.h"

uint32
chime_lock_id_job(int64 jobid)
{
	return hash_bytes_uint32((uint32) jobid) ^ (uint32) (jobid >> 32);
}

uint32
chime_lock_id_text(const char *text)
{
	return hash_bytes((const unsigned char *) text, (int) strlen(text));
}

uint32
chime_lock_id_run_key(int64 jobid, const char *run_key)
{
	return chime_lock_id_job(jobid) ^ chime_lock_id_text(run_key);
}

static void
lock_tag(LOCKTAG *tag, uint32 classid, uint32 objid)
{
	/* the two-int form: field4 = 2, as pg_advisory_lock(int4, int4) sets it */
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, classid, objid, 2);
}

bool
chime_lock_try(uint32 classid, uint32 objid, bool session)
{
	LOCKTAG		tag;

	lock_tag(&tag, classid, objid);
	return LockAcquire(&tag, ExclusiveLock, session, true) != LOCKACQUIRE_NOT_AVAIL;
}

void
chime_lock_wait(uint32 classid, uint32 objid)
{
	LOCKTAG		tag;

	lock_tag(&tag, classid, objid);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}
