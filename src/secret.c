/*-------------------------------------------------------------------------
 *
 * secret.c
 *	  Per-role secrets: cron.set_secret, cron.drop_secret, and finding the
 *	  {{secret.NAME}} references in an HTTP job's URL, headers and body.
 *
 * Secret values are write-only for their owners: no SELECT on the value
 * column is granted, and no message here ever contains a value.  Values
 * are at most 64 kB.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "api.h"
#include "http.h"
#include "pg_chime.h"

#define SECRET_OPEN      "{{secret."
#define SECRET_MAX_VALUE 65536 /* bytes, SPEC 14 */

/* Is 'name' (of length len) a valid secret name? */
bool
chime_secret_name_ok(const char *name, size_t len)
{
	if (len == 0 || len > 63)
		return false;
	if (!(isalpha((unsigned char) name[0]) || name[0] == '_'))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!(isalnum((unsigned char) name[i]) || name[i] == '_'))
			return false;
	return true;
}

/* Secret values looked up since chime_secret_forget(), by owner and name */
typedef struct SecretEntry
{
	char  key[2 * NAMEDATALEN + 2]; /* "owner\0name" */
	char *value;                    /* NULL: the owner has no such secret */
} SecretEntry;

static HTAB         *secret_cache = NULL;
static MemoryContext secret_cxt = NULL;

/* Forget the values looked up (the scheduler, once per iteration). */
void
chime_secret_forget(void)
{
	if (secret_cxt)
		MemoryContextReset(secret_cxt);
	secret_cache = NULL;
}

/* The owner's secret 'name' (of length len), NULL if there is none */
static char *
secret_lookup(const char *owner, const char *name, int len)
{
	SecretEntry *e;
	char         key[2 * NAMEDATALEN + 2];
	bool         found;
	Oid          types[2] = {TEXTOID, TEXTOID};
	Datum        values[2];

	if (secret_cxt == NULL)
		secret_cxt = AllocSetContextCreate(TopMemoryContext, "pg_chime secrets", ALLOCSET_SMALL_SIZES);
	if (secret_cache == NULL)
	{
		HASHCTL ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(key);
		ctl.entrysize = sizeof(SecretEntry);
		ctl.hcxt = secret_cxt;
		secret_cache = hash_create("pg_chime secrets", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	memset(key, 0, sizeof(key));
	strlcpy(key, owner, NAMEDATALEN);
	memcpy(key + NAMEDATALEN + 1, name, Min(len, NAMEDATALEN));
	e = hash_search(secret_cache, key, HASH_ENTER, &found);
	if (found)
		return e->value;
	e->value = NULL;
	values[0] = CStringGetTextDatum(owner);
	values[1] = PointerGetDatum(cstring_to_text_with_len(name, len));
	if (SPI_execute_with_args("SELECT value FROM cron.secret WHERE owner OPERATOR(pg_catalog.=) $1 "
							  "AND name OPERATOR(pg_catalog.=) $2",
							  2, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up a secret");
	if (SPI_processed > 0)
		e->value = MemoryContextStrdup(secret_cxt,
									   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	return e->value;
}

/*
 * Look up the owner's secrets that 'text' names as {{secret.NAME}}, at
 * send time, adding each to *used (a List of ChimeHttpSecret, each name
 * once, in the current memory context): the request carries them, to be
 * filled in (chime_template_fill) and scrubbed from its messages.
 *
 * 'one_line' is for a URL or a header value: there a CR or LF would end the
 * line and let the value add headers of its own, so such a value is
 * refused.  (A NUL cannot occur: a text value cannot hold one.)  In a body
 * anything goes.
 *
 * false, with *error set to a message naming the secret (never showing its
 * value), when the owner has no such secret or its value cannot go where it
 * is referred to.  SPI must be connected.  (A malformed reference was
 * refused when the job was scheduled.)
 */
bool
chime_secret_collect(const char *text, const char *owner, bool one_line, List **used, char **error)
{
	const char *p = text;
	const char *open;

	while (text && (open = strstr(p, SECRET_OPEN)) != NULL)
	{
		const char *name = open + strlen(SECRET_OPEN);
		const char *close = strstr(name, "}}");
		char       *value;
		char       *copy;
		ListCell   *lc;
		bool        known = false;

		if (close == NULL)
			break;
		copy = pnstrdup(name, close - name);
		value = secret_lookup(owner, name, (int) (close - name));
		if (value == NULL)
		{
			*error = psprintf("failed: secret \"%s\" of role %s does not exist (pg_dump does not keep secret values); "
							  "as %s, SELECT cron.set_secret('%s', '<value>')",
							  copy, owner, owner, copy);
			return false;
		}
		if (one_line && strpbrk(value, "\r\n") != NULL)
		{
			*error = psprintf("failed: secret \"%s\" of role %s contains a line break; "
							  "it cannot go into a URL or header",
							  copy, owner);
			return false;
		}
		foreach(lc, *used)
			if (strcmp(((ChimeHttpSecret *) lfirst(lc))->name, copy) == 0)
				known = true;
		if (!known)
		{
			ChimeHttpSecret *s = palloc(sizeof(ChimeHttpSecret));

			s->name = copy;
			s->value = pstrdup(value);
			*used = lappend(*used, s);
		}
		p = close + 2;
	}
	return true;
}

/*
 * Error unless 'owner' has every secret in 'names'.  SPI must be connected
 * and the caller must be able to read cron.secret.
 */
void
chime_secret_require(const char *owner, List *names)
{
	ListCell *lc;

	foreach(lc, names)
	{
		const char *name = lfirst(lc);
		Oid         types[2] = {TEXTOID, TEXTOID};
		Datum       values[2] = {CStringGetTextDatum(owner), CStringGetTextDatum(name)};

		if (SPI_execute_with_args("SELECT 1 FROM cron.secret WHERE owner OPERATOR(pg_catalog.=) $1 "
								  "AND name OPERATOR(pg_catalog.=) $2",
								  2, types, values, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not look up secret \"%s\"", name);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("secret \"%s\" does not exist", name),
					 errhint("Create it first with SELECT cron.set_secret('%s', '...');", name)));
	}
}

static char *
secret_name_arg(FunctionCallInfo fcinfo)
{
	char *name;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("secret name must not be null"),
				 errhint(CHIME_SECRET_NAME_HINT)));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (!chime_secret_name_ok(name, strlen(name)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid secret name: \"%s\"", name),
				 errhint(CHIME_SECRET_NAME_HINT)));
	return name;
}

/* cron.set_secret(name, value): create or replace the caller's secret. */
PG_FUNCTION_INFO_V1(chime_set_secret);
Datum
chime_set_secret(PG_FUNCTION_ARGS)
{
	char        *name = secret_name_arg(fcinfo);
	char        *owner = GetUserNameFromId(GetUserId(), false);
	Oid          types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum        values[3];
	int          size;
	ApiPrivilege saved;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("value of secret \"%s\" must not be null", name),
				 errhint("Use cron.drop_secret('%s') to remove a secret.", name)));

	size = (int) VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(1));
	if (size > SECRET_MAX_VALUE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("value of secret \"%s\" is too long: %d bytes", name, size),
				 errhint("A secret value is at most %d bytes.", SECRET_MAX_VALUE)));

	values[0] = CStringGetTextDatum(owner);
	values[1] = CStringGetTextDatum(name);
	values[2] = PointerGetDatum(PG_GETARG_TEXT_PP(1));

	chime_api_begin(&saved);
	if (SPI_execute_with_args("INSERT INTO cron.secret (owner, name, value) VALUES ($1, $2, $3) "
							  "ON CONFLICT (owner, name) DO UPDATE "
							  "SET value = excluded.value, updated_at = pg_catalog.now()",
							  3, types, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store secret \"%s\"", name);
	chime_api_end(&saved);

	PG_RETURN_VOID();
}

/* cron.drop_secret(name): true if the caller had such a secret. */
PG_FUNCTION_INFO_V1(chime_drop_secret);
Datum
chime_drop_secret(PG_FUNCTION_ARGS)
{
	char        *name = secret_name_arg(fcinfo);
	char        *owner = GetUserNameFromId(GetUserId(), false);
	Oid          types[2] = {TEXTOID, TEXTOID};
	Datum        values[2] = {CStringGetTextDatum(owner), CStringGetTextDatum(name)};
	bool         dropped;
	ApiPrivilege saved;

	chime_api_begin(&saved);
	if (SPI_execute_with_args("DELETE FROM cron.secret WHERE owner OPERATOR(pg_catalog.=) $1 "
							  "AND name OPERATOR(pg_catalog.=) $2",
							  2, types, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not drop secret \"%s\"", name);
	dropped = SPI_processed > 0;
	chime_api_end(&saved);

	PG_RETURN_BOOL(dropped);
}
