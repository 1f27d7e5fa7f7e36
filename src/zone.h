/*-------------------------------------------------------------------------
 *
 * zone.h
 *	  The one question the time engine asks of a time zone.
 *
 * In the server a ChimeZone is PostgreSQL's pg_tz (zone_pg.c); the
 * standalone unit tests and fuzzer supply their own implementation.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHIME_ZONE_H
#define CHIME_ZONE_H

#include <stdint.h>

typedef struct ChimeZone ChimeZone;

/* Offset east of UTC, in seconds, in effect at Unix instant 't'. */
extern int32_t chime_zone_offset(const ChimeZone *zone, int64_t t);

#endif /* CHIME_ZONE_H */
