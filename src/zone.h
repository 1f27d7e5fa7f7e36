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

#include <stdbool.h>
#include <stdint.h>

typedef struct ChimeZone ChimeZone;

/* Offset east of UTC, in seconds, in effect at Unix instant 't'. */
extern int32_t chime_zone_offset(const ChimeZone *zone, int64_t t);

/* Has the zone always had one offset?  Then *offset is it. */
extern bool chime_zone_fixed(const ChimeZone *zone, int32_t *offset);

#endif /* CHIME_ZONE_H */
