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

#include "schedule.h"

/* What chime_api_begin() changed, for chime_api_end() to put back. */
typedef struct ApiPrivilege
{
	Oid			userid;
	int			sec_context;
	int			guc_nest;
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

/* secret.c */
extern List *chime_secret_refs(const char *text);
extern void chime_secret_require(const char *owner, List *names);
extern char *chime_secret_expand(const char *text, const char *owner, bool one_line,
								 List **used, char **error);
extern void chime_secret_forget(void);

#endif							/* CHIME_API_H */
