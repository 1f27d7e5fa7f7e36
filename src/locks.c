/*-------------------------------------------------------------------------
 *
 * locks.c
 *	  pg_chime's locks: see locks.h for the classes.
 *
 * Session locks are taken by an executor around a run and released by the
 * session reset that follows every run; transaction locks serialise the
 * claims of a once_per key between the scheduler, cron.run_now and
 * cron.release_key, and the job count of an owner between the sessions
 * that schedule its jobs.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/lock.h"

#include "locks.h"

uint64
chime_lock_id_text(const char *text)
{
	return hash_bytes_extended((const unsigned char *) text, (int) strlen(text), 0);
}

/* An owner's concurrency key: the owner exactly, the key by its hash */
uint64
chime_lock_id_concurrency(Oid owner, uint32 key_hash)
{
	return ((uint64) owner << 32) | key_hash;
}

/*
 * A lock of the user lock method, as advisory locks are (so a session
 * lock goes with them, at the session reset or at exit), but of the tag
 * type that no SQL function takes.
 */
static void
lock_tag(LOCKTAG *tag, uint16 classid, uint64 id)
{
	tag->locktag_field1 = MyDatabaseId;
	tag->locktag_field2 = (uint32) (id >> 32);
	tag->locktag_field3 = (uint32) id;
	tag->locktag_field4 = classid;
	tag->locktag_type = LOCKTAG_USERLOCK;
	tag->locktag_lockmethodid = USER_LOCKMETHOD;
}

bool
chime_lock_try(uint16 classid, uint64 id, bool session)
{
	LOCKTAG tag;

	lock_tag(&tag, classid, id);
	return LockAcquire(&tag, ExclusiveLock, session, true) != LOCKACQUIRE_NOT_AVAIL;
}

void
chime_lock_wait(uint16 classid, uint64 id)
{
	LOCKTAG tag;

	lock_tag(&tag, classid, id);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}
