/*-------------------------------------------------------------------------
 *
 * schedule.h
 *	  The pg_chime schedule language: parsed form and parser.
 *
 * This header and schedule.c are plain C with no PostgreSQL dependency, so
 * the parser can be unit-tested and fuzzed outside a server.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CHIME_SCHEDULE_H
#define CHIME_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

/* Longest message, detail or hint the parsers produce (with the value). */
#define CHIME_ERROR_LEN 512

/*
 * A parse error: "detail" says which part of the input is wrong and why,
 * "hint" shows the valid form.  The SQL layer puts its own primary message
 * ("invalid schedule: ...") in front.
 */
typedef struct ChimeError
{
	char detail[CHIME_ERROR_LEN];
	char hint[CHIME_ERROR_LEN];
} ChimeError;

extern void chime_error_set(ChimeError *err, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

typedef enum ChimeScheduleKind
{
	CHIME_SCHED_CRON,     /* 5 or 6 cron fields, or an @macro */
	CHIME_SCHED_INTERVAL, /* 'N seconds' or '@every <interval>' */
	CHIME_SCHED_AT,       /* '@at <timestamp>' */
	CHIME_SCHED_REBOOT    /* '@reboot' / '@restart' */
} ChimeScheduleKind;

typedef struct ChimeSchedule
{
	ChimeScheduleKind kind;

	/* CHIME_SCHED_CRON: one bit per allowed value */
	uint64_t seconds;     /* bits 0..59; only bit 0 without a seconds field */
	uint64_t minutes;     /* bits 0..59 */
	uint32_t hours;       /* bits 0..23 */
	uint32_t mdays;       /* bits 1..31 */
	uint16_t months;      /* bits 1..12 */
	uint8_t  wdays;       /* bits 0..6, 0 = Sunday */
	bool     mday_last;   /* 'L' or '$' in day-of-month */
	uint8_t  wday_last;   /* 'nL': bit n = last weekday n of the month */
	uint8_t  wday_nth[7]; /* 'n#k': bit k (1..5) of wday_nth[n] */
	bool     mday_star;   /* day-of-month field begins with '*' */
	bool     wday_star;   /* day-of-week field begins with '*' */
	bool     wildcard;    /* minute or hour field begins with '*' */

	/* CHIME_SCHED_INTERVAL: period in seconds, occurrences at multiples */
	int64_t period;

	/*
	 * CHIME_SCHED_AT: with at_has_offset, at_time is a Unix instant;
	 * otherwise it is a local wall-clock reading (seconds since 1970-01-01
	 * 00:00 on the local calendar) to be read in the job's zone.
	 */
	int64_t at_time;
	bool    at_has_offset;
} ChimeSchedule;

extern bool chime_parse_schedule(const char *text, ChimeSchedule *sched,
								 ChimeError *err);

/* Calendar arithmetic, shared by the parser and the time engine (occurrence.c) */
extern int64_t chime_days_from_civil(int64_t y, int m, int d);
extern void    chime_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
extern int     chime_days_in_month(int64_t y, int m);

#endif /* CHIME_SCHEDULE_H */
