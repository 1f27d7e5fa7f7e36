/*-------------------------------------------------------------------------
 *
 * api.c
 *	  Plumbing shared by the SQL-callable API functions: acting as the
 *	  catalog's owner once the caller's rights are checked, and reporting
 *	  bad values the same way everywhere.
 *
 * The API functions run as the caller (so they know who is calling) and
 * the catalog tables grant callers no writes; the functions write them as
 * the bootstrap superuser, with search_path pinned so that nothing the
 * caller defined can stand in for a catalog operator.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "api.h"

void
chime_api_begin(ApiPrivilege *saved)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	GetUserIdAndSecContext(&saved->userid, &saved->sec_context);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   saved->sec_context | SECURITY_LOCAL_USERID_CHANGE);
	saved->guc_nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
}

void
chime_api_end(ApiPrivilege *saved)
{
	AtEOXact_GUC(true, saved->guc_nest);
	SetUserIdAndSecContext(saved->userid, saved->sec_context);
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
}

void
chime_invalid_value(const char *what, const char *value, const ChimeError *err)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid %s: %s", what, value),
			 err->detail[0] ? errdetail("%s", err->detail) : 0,
			 errhint("%s", err->hint)));
}
