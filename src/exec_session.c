/*-------------------------------------------------------------------------
 *
 * exec_session.c
 *	  The executor's session: every run starts as a new session of the
 *	  role would.
 *
 * An executor connects once and lives on, so the session is reset after
 * each run (chime_exec_reset_session: DISCARD ALL but for the plans), and
 * before each run the executor checks that its role still exists as the
 * same role and that the role's and database's settings (ALTER ROLE/
 * DATABASE ... SET), which PostgreSQL applied at connection and the reset
 * goes back to, are still those it connected with
 * (chime_exec_session_current); if not, the run goes back to the scheduler
 * (EXEC_STALE), which gives it to a new executor.
 *
 * A reload of the configuration files (SIGHUP) changes the values the
 * reset goes back to only for the settings no ALTER ROLE/DATABASE set, as
 * in any session; the executor's loop applies it between runs only, after
 * one run's reset and before the next run's checks (executor.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "catalog/pg_db_role_setting.h"
#include "commands/async.h"
#include "commands/prepare.h"
#include "commands/sequence.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/syscache.h"

#include "exec_internal.h"

static uint32 session_settings_hash; /* of the role's and database's settings at connection */

/*
 * A hash of the settings a new session of this role in this database
 * would get from pg_db_role_setting (ALTER ROLE/DATABASE ... SET).
 * Inside a transaction.
 */
static uint32
session_settings_now(void)
{
	Relation    rel = table_open(DbRoleSettingRelationId, AccessShareLock);
	SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	HeapTuple   tup;
	uint32      h = 0;
	Oid         role = GetSessionUserId();

	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_db_role_setting s = (Form_pg_db_role_setting) GETSTRUCT(tup);
		bool                    isnull;
		Datum                   config;

		if ((s->setdatabase != MyDatabaseId && s->setdatabase != InvalidOid) ||
			(s->setrole != role && s->setrole != InvalidOid))
			continue;
		config = heap_getattr(tup, Anum_pg_db_role_setting_setconfig, RelationGetDescr(rel), &isnull);
		if (!isnull)
		{
			struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(config));

			h = hash_combine(h, hash_bytes_uint32(s->setdatabase) ^ (hash_bytes_uint32(s->setrole) << 1));
			h = hash_combine(h, hash_bytes((unsigned char *) VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v)));
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return h;
}

/*
 * Note the settings the session connected with, in a transaction of its
 * own, right after the connection (when PostgreSQL applied them).
 */
void
chime_exec_session_begin(void)
{
	Assert(!IsTransactionOrTransactionBlock());
	StartTransactionCommand();
	session_settings_hash = session_settings_now();
	CommitTransactionCommand();
}

/*
 * Is this session still what a new session of its role would be?  If the
 * role is gone (dropped, or re-created under the same name), or its
 * settings changed, returns false: with *gone and a message in 'result'
 * when no role of that name exists any more.  Inside a transaction.
 */
bool
chime_exec_session_current(const char *username, StringInfo result, bool *gone)
{
	Assert(IsTransactionState());
	*gone = false;
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(GetSessionUserId())))
	{
		if (!OidIsValid(get_role_oid(username, true)))
		{
			*gone = true;
			appendStringInfo(result, "ERROR: 42704: role \"%s\" does not exist\n"
									 "HINT: The job's role was dropped; drop the job or give it to another role.",
							 username);
		}
		return false;
	}
	return session_settings_now() == session_settings_hash;
}

/* Is a DROP DATABASE (or another exclusive change of the database) waiting? */
bool
chime_exec_database_wanted(void)
{
	LOCKTAG tag;

	SET_LOCKTAG_OBJECT(tag, InvalidOid, DatabaseRelationId, MyDatabaseId, 0);
	if (LockAcquire(&tag, AccessShareLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		return true;
	LockRelease(&tag, AccessShareLock, true);
	return false;
}

/*
 * Leave nothing of this run's session state to the next: what DISCARD ALL
 * does (portals, SET SESSION AUTHORIZATION, every setting, prepared
 * statements, LISTEN, advisory locks, temporary tables, sequence caches),
 * but for DISCARD PLANS: cached plans are not visible to a job (they
 * revalidate themselves), and keeping them saves re-planning pg_chime's
 * own statements and a job's PL/pgSQL at every run.  Outside any
 * transaction: the run's last one has ended, committed or aborted.
 */
void
chime_exec_reset_session(void)
{
	MemoryContext cxt = CurrentMemoryContext;

	Assert(!IsTransactionOrTransactionBlock());
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PortalHashTableDeleteAll();
	SetPGVariable("session_authorization", NIL, false);
	ResetAllOptions();
	DropAllPreparedStatements();
	Async_UnlistenAll();
	LockReleaseAll(USER_LOCKMETHOD, true);
	ResetTempTableNamespace();
	ResetSequenceCaches();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
	/* the session is the role's again: no SET ROLE or SESSION AUTHORIZATION of the run */
	Assert(GetUserId() == GetSessionUserId());
}
