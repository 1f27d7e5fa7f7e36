/* zone_libc.h: a ChimeZone by name for standalone tests (zone_libc.c). */
#ifndef ZONE_LIBC_H
#define ZONE_LIBC_H

#include "zone.h"

extern const ChimeZone *zone_libc_get(const char *name);

#endif
