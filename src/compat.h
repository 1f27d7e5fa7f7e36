/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Every difference between the PostgreSQL versions pg_chime builds
 *	  against (13 to 17) lives here, so the rest of the code has none.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHIME_COMPAT_H
#define CHIME_COMPAT_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#if PG_VERSION_NUM >= 160000
#include "catalog/pg_database.h"
#endif

#if PG_VERSION_NUM < 130000
#error "pg_chime needs PostgreSQL 13 or later"
#endif

/* Reserving a GUC prefix: PostgreSQL 15 renamed the call. */
#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

/* Analysing a statement without parameters: PostgreSQL 15 renamed the call. */
#if PG_VERSION_NUM < 150000
#define pg_analyze_and_rewrite_fixedparams(parsetree, query, types, ntypes, env) \
	pg_analyze_and_rewrite(parsetree, query, types, ntypes, env)
#endif

/*
 * Requesting shared memory: since PostgreSQL 15 only from shmem_request_hook;
 * before, straight from _PG_init.  Installs 'hook' there, with the hook it
 * replaces in *prev for it to call first; before 15 calls it at once, with
 * *prev NULL.
 */
static inline void
compat_shmem_request_install(void (*hook)(void), void (**prev)(void))
{
#if PG_VERSION_NUM >= 150000
	*prev = shmem_request_hook;
	shmem_request_hook = hook;
#else
	*prev = NULL;
	hook();
#endif
}

/* shm_mq_send: PostgreSQL 15 added force_flush (we always flush). */
#define compat_shm_mq_send(mqh, nbytes, data, nowait) \
	shm_mq_send_compat((mqh), (nbytes), (data), (nowait))
#if PG_VERSION_NUM >= 150000
#define shm_mq_send_compat(mqh, nbytes, data, nowait) shm_mq_send(mqh, nbytes, data, nowait, true)
#else
#define shm_mq_send_compat(mqh, nbytes, data, nowait) shm_mq_send(mqh, nbytes, data, nowait)
#endif

/* Memory a GUC check hook hands to GUC (freed with free()). */
static inline void *
compat_guc_malloc(size_t size)
{
#if PG_VERSION_NUM >= 160000
	return guc_malloc(LOG, size);
#else
	return malloc(size);
#endif
}

/* May 'role' connect to database 'db'?  (PostgreSQL 16 renamed the check.) */
static inline bool
compat_database_connect_ok(Oid db, Oid role)
{
#if PG_VERSION_NUM >= 160000
	return object_aclcheck(DatabaseRelationId, db, role, ACL_CONNECT) == ACLCHECK_OK;
#else
	return pg_database_aclcheck(db, role, ACL_CONNECT) == ACLCHECK_OK;
#endif
}

/*
 * Parse interval text without raising an error (for GUC check hooks).
 * Returns false when the text is not an interval.
 */
static inline bool
compat_parse_interval(const char *str, Interval *result)
{
	char  workbuf[256];
	char *field[MAXDATEFIELDS];
	int   ftype[MAXDATEFIELDS];
	int   nf;
	int   dtype;
	int   dterr;

#if PG_VERSION_NUM >= 150000
	struct pg_itm_in itm_in;

	dterr = ParseDateTime(str, workbuf, sizeof(workbuf), field, ftype,
						  MAXDATEFIELDS, &nf);
	if (dterr == 0)
		dterr = DecodeInterval(field, ftype, nf, INTERVAL_FULL_RANGE,
							   &dtype, &itm_in);
	if (dterr == DTERR_BAD_FORMAT)
		dterr = DecodeISO8601Interval(unconstify(char *, str), &dtype, &itm_in);
	if (dterr != 0 || dtype != DTK_DELTA)
		return false;
	return itmin2interval(&itm_in, result) == 0;
#else
	struct pg_tm tt;
	fsec_t       fsec;

	dterr = ParseDateTime(str, workbuf, sizeof(workbuf), field, ftype,
						  MAXDATEFIELDS, &nf);
	if (dterr == 0)
		dterr = DecodeInterval(field, ftype, nf, INTERVAL_FULL_RANGE,
							   &dtype, &tt, &fsec);
	if (dterr == DTERR_BAD_FORMAT)
		dterr = DecodeISO8601Interval(unconstify(char *, str), &dtype, &tt, &fsec);
	if (dterr != 0 || dtype != DTK_DELTA)
		return false;
	return tm2interval(&tt, fsec, result) == 0;
#endif
}

/*
 * Parse 'len' bytes of JSON only to see whether they are valid, result in
 * 'r': PostgreSQL 17 lets the lexer's state live on the stack.
 */
#if PG_VERSION_NUM >= 170000
#define CHIME_JSON_PARSE(r, text, len, encoding) \
	do \
	{ \
		JsonLexContext lex_; \
		makeJsonLexContextCstringLen(&lex_, (text), (len), (encoding), false); \
		(r) = pg_parse_json(&lex_, &nullSemAction); \
		freeJsonLexContext(&lex_); \
	} while (0)
#else
#define CHIME_JSON_PARSE(r, text, len, encoding) \
	do \
	{ \
		JsonLexContext *lex_ = makeJsonLexContextCstringLen(unconstify(char *, (text)), (len), \
															(encoding), false); \
		(r) = pg_parse_json(lex_, &nullSemAction); \
	} while (0)
#endif

#endif /* CHIME_COMPAT_H */
