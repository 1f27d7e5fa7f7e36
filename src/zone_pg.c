/*-------------------------------------------------------------------------
 *
 * zone_pg.c
 *	  Time zones in the server: PostgreSQL's tz library behind the time
 *	  engine's chime_zone_offset().
 *
 * Only zones of the tz database are accepted (the names pg_timezone_names
 * lists, in any letter case); a POSIX rule string such as 'FOO+3', which
 * pg_tzset() would also take, is refused.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>

#include "miscadmin.h"
#include "pgtime.h"
#include "port.h"
#include "utils/guc.h"

#include "pg_chime.h"

/* The directory PostgreSQL reads zone files from. */
static const char *
zone_directory(void)
{
	static char dir[MAXPGPATH];
	struct stat st;

	if (dir[0] != '\0')
		return dir;
	get_share_path(my_exec_path, dir);
	strlcat(dir, "/timezone", sizeof(dir));
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		strlcpy(dir, "/usr/share/zoneinfo", sizeof(dir));
	return dir;
}

/*
 * Look up a zone by name.  Returns NULL for an unknown name; on success
 * *canonical (if given) is the name as the tz database spells it.
 */
const ChimeZone *
chime_zone_lookup(const char *name, const char **canonical)
{
	pg_tz      *tz;
	const char *canon;
	char        path[MAXPGPATH];
	struct stat st;

	if (name == NULL || name[0] == '\0' || name[0] == ':' || name[0] == '/' ||
		strstr(name, "..") != NULL || strlen(name) > 200)
		return NULL;
	tz = pg_tzset(name);
	if (tz == NULL)
		return NULL;
	canon = pg_get_timezone_name(tz);
	snprintf(path, sizeof(path), "%s/%s", zone_directory(), canon);
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return NULL;
	if (canonical)
		*canonical = canon;
	return (const ChimeZone *) tz;
}

int32_t
chime_zone_offset(const ChimeZone *zone, int64_t t)
{
	pg_time_t     tt = (pg_time_t) t;
	struct pg_tm *tm = pg_localtime(&tt, (const pg_tz *) zone);

	return tm ? (int32_t) tm->tm_gmtoff : 0;
}

bool
chime_zone_fixed(const ChimeZone *zone, int32_t *offset)
{
	long gmtoff;

	if (!pg_get_timezone_offset((const pg_tz *) zone, &gmtoff))
		return false;
	*offset = (int32_t) gmtoff;
	return true;
}
