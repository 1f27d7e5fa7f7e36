/*-------------------------------------------------------------------------
 *
 * schedule.c
 *	  Parser for the pg_chime schedule language.
 *
 * Accepted forms:
 *	  - 5 cron fields (minute hour day-of-month month day-of-week) or 6 with
 *		seconds first; '*', lists, ranges, steps after '*' or a range, month
 *		and weekday names; 'L'/'$' (last day) in day-of-month; 'nL' (last
 *		weekday n) and 'n#k' (k-th weekday n) in day-of-week;
 *	  - @yearly @annually @monthly @weekly @daily @midnight @hourly;
 *	  - 'N seconds' (1-59) and '@every <interval>';
 *	  - '@at <timestamp>' and '@reboot' (or '@restart').
 * Anything else is rejected with a detail naming the field and value and a
 * hint with the valid form.
 *
 * Pure C: no PostgreSQL calls, so it is unit-tested and fuzzed standalone.
 *
 *-------------------------------------------------------------------------
 */
#include "schedule.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define CRON_HINT "Use five cron fields \"minute hour day-of-month month day-of-week\" (e.g. '5 4 * * *'), six with seconds first, an @macro such as '@daily', '[1-59] seconds', '@every <interval>', '@at <timestamp>' or '@reboot'."

/* What a cron field accepts. */
typedef struct FieldSpec
{
	const char        *name;
	int                min;
	int                max;   /* largest value, also the largest step */
	const char *const *names; /* names for min.., or NULL */
	const char        *hint;
} FieldSpec;

static const char *const parse_month_names[] = {
	"jan", "feb", "mar", "apr", "may", "jun",
	"jul", "aug", "sep", "oct", "nov", "dec", NULL};

static const char *const parse_wday_names[] = {
	"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const FieldSpec parse_fields[6] = {
	{"second", 0, 59, NULL, "Seconds are 0-59, e.g. '0', '*/15' or '0,30'."},
	{"minute", 0, 59, NULL, "Minutes are 0-59, e.g. '5', '*/15', '0-30/5' or '0,30'."},
	{"hour", 0, 23, NULL, "Hours are 0-23, e.g. '3', '*/2', '9-17' or '0,12'."},
	{"day-of-month", 1, 31, NULL, "Days of the month are 1-31 or 'L' / '$' for the last day, e.g. '1', '1,15', '10-20' or 'L'."},
	{"month", 1, 12, parse_month_names, "Months are 1-12 or jan-dec, e.g. '1', 'jan-mar' or '*/3'."},
	{"day-of-week", 0, 7, parse_wday_names, "Days of the week are 0-7 (0 and 7 = Sunday) or sun-sat, e.g. 'mon-fri', '5L' (last Friday) or '1#2' (second Monday)."},
};

enum
{
	F_SEC,
	F_MIN,
	F_HOUR,
	F_MDAY,
	F_MONTH,
	F_WDAY
};

/* Fill a ChimeError: a detail (printf-style) and a hint */
void
chime_error_set(ChimeError *err, const char *hint, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
	snprintf(err->hint, sizeof(err->hint), "%s", hint);
}

/* A parse fails: the error says why (chime_error_set), and false */
#define parse_fail(err, hint, ...) (chime_error_set((err), (hint), __VA_ARGS__), false)

/* Copy [start, end) into buf, NUL-terminated and cut to fit. */
static void
parse_copy(char *buf, size_t size, const char *start, const char *end)
{
	size_t n = (size_t) (end - start);

	if (n >= size)
		n = size - 1;
	memcpy(buf, start, n);
	buf[n] = '\0';
}

/*
 * Read one value of a field (a number or, where the field has them, a
 * name) from *p.  On success advance *p past it.
 */
static bool
parse_value(const FieldSpec *f, const char *item, const char **p, int *out,
			ChimeError *err)
{
	const char *s = *p;

	if (isdigit((unsigned char) *s))
	{
		long v = 0;

		while (isdigit((unsigned char) *s))
		{
			v = v * 10 + (*s - '0');
			if (v > 1000000)
				v = 1000000; /* big enough to be out of range */
			s++;
		}
		if (v < f->min || v > f->max)
		{
			if ((size_t) (s - *p) == strlen(item))
				return parse_fail(err, f->hint, "%s field: value \"%s\" is out of range %d-%d",
								  f->name, item, f->min, f->max);
			return parse_fail(err, f->hint,
							  "%s field: value \"%.*s\" in \"%s\" is out of range %d-%d",
							  f->name, (int) (s - *p), *p, item, f->min, f->max);
		}
		*out = (int) v;
		*p = s;
		return true;
	}
	if (f->names && isalpha((unsigned char) *s))
	{
		const char *e = s;
		char        word[16];

		while (isalpha((unsigned char) *e))
			e++;
		parse_copy(word, sizeof(word), s, e);
		for (int i = 0; f->names[i]; i++)
		{
			if (e - s == 3 && strncasecmp(s, f->names[i], 3) == 0)
			{
				*out = f->min + i;
				*p = e;
				return true;
			}
		}
		return parse_fail(err, f->hint, "%s field: unknown name \"%s\" in \"%s\"",
						  f->name, word, item);
	}
	return parse_fail(err, f->hint, "%s field: expected a number%s in \"%s\"",
					  f->name, f->names ? " or a name" : "", item);
}

/* Read a step (after '/'): a number from 1 to the field's largest value. */
static bool
parse_step(const FieldSpec *f, const char *item, const char **p, int *step,
		   ChimeError *err)
{
	const char *s = *p;
	long        v = 0;

	if (!isdigit((unsigned char) *s))
		return parse_fail(err, f->hint, "%s field: expected a step number after \"/\" in \"%s\"",
						  f->name, item);
	while (isdigit((unsigned char) *s))
	{
		v = v * 10 + (*s - '0');
		if (v > 1000000)
			v = 1000000;
		s++;
	}
	if (v < 1 || v > f->max)
		return parse_fail(err, f->hint, "%s field: step \"%.*s\" in \"%s\" must be between 1 and %d",
						  f->name, (int) (s - *p), *p, item, f->max);
	*step = (int) v;
	*p = s;
	return true;
}

/*
 * Parse one comma-separated item of field 'fi' and add its values to the
 * schedule.
 */
static bool
parse_item(int fi, const char *item, ChimeSchedule *s, uint64_t *bits,
		   ChimeError *err)
{
	const FieldSpec *f = &parse_fields[fi];
	const char      *p = item;
	int              lo,
		hi,
		step = 1;
	bool ranged = false;

	if (*p == '\0')
		return parse_fail(err, f->hint, "%s field: empty list item", f->name);

	if (fi == F_MDAY && (strcmp(p, "L") == 0 || strcmp(p, "l") == 0 || strcmp(p, "$") == 0))
	{
		s->mday_last = true;
		return true;
	}

	if (*p == '*')
	{
		lo = f->min;
		hi = f->max;
		if (fi == F_WDAY)
			hi = 6;
		p++;
		ranged = true;
	}
	else
	{
		if (!parse_value(f, item, &p, &lo, err))
			return false;
		hi = lo;
		if (*p == '-')
		{
			p++;
			if (!parse_value(f, item, &p, &hi, err))
				return false;
			if (hi < lo)
				return parse_fail(err, f->hint,
								  "%s field: range \"%s\" is reversed (%d > %d)",
								  f->name, item, lo, hi);
			ranged = true;
		}
		else if (fi == F_WDAY && (*p == 'L' || *p == 'l'))
		{
			p++;
			if (*p != '\0')
				return parse_fail(err, f->hint, "day-of-week field: unexpected text after \"L\" in \"%s\"", item);
			s->wday_last |= (uint8_t) (1u << (lo % 7));
			return true;
		}
		else if (fi == F_WDAY && *p == '#')
		{
			long k = 0;

			p++;
			if (!isdigit((unsigned char) *p))
				return parse_fail(err, f->hint, "day-of-week field: expected a number 1-5 after \"#\" in \"%s\"", item);
			while (isdigit((unsigned char) *p) && k < 100)
				k = k * 10 + (*p++ - '0');
			if (*p != '\0')
				return parse_fail(err, f->hint, "day-of-week field: unexpected text in \"%s\"", item);
			if (k < 1 || k > 5)
				return parse_fail(err, f->hint, "day-of-week field: occurrence \"%ld\" in \"%s\" is out of range 1-5", k, item);
			s->wday_nth[lo % 7] |= (uint8_t) (1u << k);
			return true;
		}
	}

	if (*p == '/')
	{
		p++;
		if (!ranged)
			return parse_fail(err, f->hint,
							  "%s field: a step must follow \"*\" or a range, not a single value, in \"%s\"",
							  f->name, item);
		if (!parse_step(f, item, &p, &step, err))
			return false;
	}
	if (*p != '\0')
		return parse_fail(err, f->hint, "%s field: unexpected \"%c\" in \"%s\"",
						  f->name, *p, item);

	for (int v = lo; v <= hi; v += step)
		*bits |= (uint64_t) 1 << (fi == F_WDAY ? v % 7 : v);
	return true;
}

/* Parse one whole cron field (a comma-separated list) into the schedule. */
static bool
parse_field(int fi, const char *text, ChimeSchedule *s, ChimeError *err)
{
	uint64_t    bits = 0;
	const char *p = text;
	char        item[64];

	for (;;)
	{
		const char *e = strchr(p, ',');

		if (e == NULL)
			e = p + strlen(p);
		if ((size_t) (e - p) >= sizeof(item))
			return parse_fail(err, parse_fields[fi].hint, "%s field: item \"%.40s...\" is too long",
							  parse_fields[fi].name, p);
		parse_copy(item, sizeof(item), p, e);
		if (!parse_item(fi, item, s, &bits, err))
			return false;
		if (*e == '\0')
			break;
		p = e + 1;
	}

	switch (fi)
	{
		case F_SEC:
			s->seconds = bits;
			break;
		case F_MIN:
			s->minutes = bits;
			s->wildcard |= (text[0] == '*');
			break;
		case F_HOUR:
			s->hours = (uint32_t) bits;
			s->wildcard |= (text[0] == '*');
			break;
		case F_MDAY:
			s->mdays = (uint32_t) bits;
			s->mday_star = (text[0] == '*');
			break;
		case F_MONTH:
			s->months = (uint16_t) bits;
			break;
		case F_WDAY:
			s->wdays = (uint8_t) bits;
			s->wday_star = (text[0] == '*');
			break;
	}
	return true;
}

static bool parse_every(const char *text, int64_t *period, ChimeError *err);

/* Parse the cron fields of 'text' (already trimmed). */
static bool
parse_cron(const char *text, ChimeSchedule *s, ChimeError *err)
{
	char  buf[256];
	char *fields[8];
	int   n = 0;
	char *p;
	int   first;

	if (strlen(text) >= sizeof(buf))
		return parse_fail(err, CRON_HINT, "schedule is too long (%zu characters)", strlen(text));
	strcpy(buf, text);
	p = buf;
	while (*p)
	{
		while (isspace((unsigned char) *p))
			*p++ = '\0';
		if (*p == '\0')
			break;
		if (n < 8)
			fields[n] = p;
		n++;
		while (*p && !isspace((unsigned char) *p))
			p++;
	}
	if (n == 2 && isdigit((unsigned char) fields[0][0]) && isalpha((unsigned char) fields[1][0]))
	{
		char       every[sizeof(buf) + 1];
		int64_t    period;
		ChimeError ignored;

		snprintf(every, sizeof(every), "%s %s", fields[0], fields[1]);

		/* suggest '@every' only with what it reads */
		if (parse_every(every, &period, &ignored))
			return parse_fail(err, CRON_HINT,
							  "\"%s\" is not a schedule; for an interval write '@every %s'", every, every);
		return parse_fail(err, CRON_HINT, "\"%s\" is not a schedule: \"%s\" is not a unit of time",
						  every, fields[1]);
	}
	if (n != 5 && n != 6)
		return parse_fail(err, CRON_HINT,
						  "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with seconds first), found %d",
						  n);

	s->kind = CHIME_SCHED_CRON;
	s->seconds = 1; /* second 0 unless a seconds field says */
	first = (n == 6) ? F_SEC : F_MIN;
	for (int i = 0; i < n; i++)
	{
		if (!parse_field(first + i, fields[i], s, err))
			return false;
	}
	return true;
}

/*
 * Parse an @every interval into whole seconds.  Accepts a sequence of
 * "<number> <unit>" (units: s, sec, second, m, min, minute, h, hr, hour,
 * d, day, w, week, each with or without plural 's'), a bare number of
 * seconds, and "[N days] HH:MM[:SS]".  Month and year parts, fractions of a
 * second, and totals under one second are errors.
 */
#define EVERY_HINT        "Use '@every <interval>' with a whole number of seconds of at least 1 and no month or year part, e.g. '@every 90 seconds', '@every 2 hours 30 minutes' or '@every 1 day'."
#define EVERY_MAX_SECONDS ((int64_t) 100 * 366 * 86400)

static bool
parse_every(const char *text, int64_t *period, ChimeError *err)
{
	const char *p = text;
	int64_t     total_us = 0; /* microseconds */
	bool        any = false;

	while (*p)
	{
		int64_t ip = 0,
				frac_us = 0;
		int         fdigits = 0;
		int64_t     unit;
		const char *w;
		size_t      wl;

		while (isspace((unsigned char) *p) || *p == ',')
			p++;
		if (*p == '\0')
			break;
		if (*p == '-')
			return parse_fail(err, EVERY_HINT, "interval \"%s\" is negative", text);
		if (*p == '+')
			p++;
		if (!isdigit((unsigned char) *p) && *p != '.')
			return parse_fail(err, EVERY_HINT, "interval \"%s\": expected a number at \"%s\"", text, p);
		while (isdigit((unsigned char) *p))
		{
			ip = ip * 10 + (*p++ - '0');
			if (ip > EVERY_MAX_SECONDS)
				return parse_fail(err, EVERY_HINT, "interval \"%s\" is too long (at most 100 years)", text);
		}
		if (*p == ':')
		{
			/* HH:MM[:SS] */
			int64_t parts[3] = {ip, 0, 0};
			int     np = 1;

			while (*p == ':' && np < 3)
			{
				int64_t v = 0;
				int     nd = 0;

				p++;
				while (isdigit((unsigned char) *p) && nd < 3)
				{
					v = v * 10 + (*p++ - '0');
					nd++;
				}
				if (nd == 0 || v > 59)
					return parse_fail(err, EVERY_HINT, "interval \"%s\": invalid time of day part", text);
				parts[np++] = v;
			}
			if (*p == '.')
				return parse_fail(err, EVERY_HINT, "interval \"%s\" has a fraction of a second", text);
			if (*p && !isspace((unsigned char) *p))
				return parse_fail(err, EVERY_HINT, "interval \"%s\": unexpected \"%c\"", text, *p);
			total_us += (parts[0] * 3600 + parts[1] * 60 + parts[2]) * 1000000;
			any = true;
			continue;
		}
		if (*p == '.')
		{
			p++;
			while (isdigit((unsigned char) *p))
			{
				if (fdigits < 6)
				{
					frac_us = frac_us * 10 + (*p - '0');
					fdigits++;
				}
				else if (*p != '0')
					return parse_fail(err, EVERY_HINT, "interval \"%s\" has a fraction of a second", text);
				p++;
			}
		}
		while (fdigits < 6)
		{
			frac_us *= 10;
			fdigits++;
		}
		while (isspace((unsigned char) *p))
			p++;
		w = p;
		while (isalpha((unsigned char) *p))
			p++;
		wl = (size_t) (p - w);

#define UNIT_IS(lit) (wl == strlen(lit) && strncasecmp(w, lit, wl) == 0)
		if (wl == 0 || UNIT_IS("s") || UNIT_IS("sec") || UNIT_IS("secs") ||
			UNIT_IS("second") || UNIT_IS("seconds"))
			unit = 1;
		else if (UNIT_IS("m") || UNIT_IS("min") || UNIT_IS("mins") ||
				 UNIT_IS("minute") || UNIT_IS("minutes"))
			unit = 60;
		else if (UNIT_IS("h") || UNIT_IS("hr") || UNIT_IS("hrs") ||
				 UNIT_IS("hour") || UNIT_IS("hours"))
			unit = 3600;
		else if (UNIT_IS("d") || UNIT_IS("day") || UNIT_IS("days"))
			unit = 86400;
		else if (UNIT_IS("w") || UNIT_IS("week") || UNIT_IS("weeks"))
			unit = 7 * 86400;
		else if (UNIT_IS("mon") || UNIT_IS("mons") || UNIT_IS("month") ||
				 UNIT_IS("months") || UNIT_IS("y") || UNIT_IS("yr") ||
				 UNIT_IS("yrs") || UNIT_IS("year") || UNIT_IS("years") ||
				 UNIT_IS("decade") || UNIT_IS("decades") ||
				 UNIT_IS("century") || UNIT_IS("centuries"))
			return parse_fail(err, EVERY_HINT,
							  "interval \"%s\" has a month or year part; months and years have no fixed length",
							  text);
		else
		{
			char word[32];

			parse_copy(word, sizeof(word), w, p);
			return parse_fail(err, EVERY_HINT, "interval \"%s\": unknown unit \"%s\"", text, word);
		}
#undef UNIT_IS

		if (ip > EVERY_MAX_SECONDS / unit)
			return parse_fail(err, EVERY_HINT, "interval \"%s\" is too long (at most 100 years)", text);
		total_us += ip * unit * 1000000 + frac_us * unit;
		any = true;
		if (total_us / 1000000 > EVERY_MAX_SECONDS)
			return parse_fail(err, EVERY_HINT, "interval \"%s\" is too long (at most 100 years)", text);
	}

	if (!any)
		return parse_fail(err, EVERY_HINT, "\"@every\" needs an interval");
	if (total_us % 1000000 != 0)
		return parse_fail(err, EVERY_HINT, "interval \"%s\" has a fraction of a second", text);
	if (total_us < 1000000)
		return parse_fail(err, EVERY_HINT, "interval \"%s\" is shorter than 1 second", text);
	*period = total_us / 1000000;
	return true;
}

/* Read exactly n digits. */
static bool
parse_digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++)
	{
		if (!isdigit((unsigned char) (*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

/*
 * Parse an @at timestamp: "YYYY-MM-DD[ T]HH:MM[:SS[.ffffff]][offset]" with
 * offset "Z", "UTC", "+HH", "+HH:MM" or "+HHMM" (or '-').  A fraction of a
 * second rounds up to the next whole second, so the run never starts before
 * the instant given.  Without an offset the time is a local reading.
 */
#define AT_HINT "Use '@at YYYY-MM-DD HH:MM[:SS][+HH[:MM]]', e.g. '@at 2026-12-24 18:00' (read in the job's time zone) or '@at 2026-12-24 18:00:00+00'."

static bool
parse_at(const char *text, ChimeSchedule *s, ChimeError *err)
{
	const char *p = text;
	int         y,
		mo,
		d,
		h,
		mi,
		sec = 0;
	bool    frac = false;
	int64_t t;

	if (!parse_digits(&p, 4, &y) || *p++ != '-' ||
		!parse_digits(&p, 2, &mo) || *p++ != '-' ||
		!parse_digits(&p, 2, &d) || (*p != ' ' && *p != 'T' && *p != 't'))
		return parse_fail(err, AT_HINT, "\"%s\" is not a timestamp", text);
	while (*p == ' ' || *p == 'T' || *p == 't')
		p++;
	if (!parse_digits(&p, 2, &h) || *p++ != ':' || !parse_digits(&p, 2, &mi))
		return parse_fail(err, AT_HINT, "\"%s\" is not a timestamp", text);
	if (*p == ':')
	{
		p++;
		if (!parse_digits(&p, 2, &sec))
			return parse_fail(err, AT_HINT, "\"%s\" is not a timestamp", text);
		if (*p == '.')
		{
			p++;
			if (!isdigit((unsigned char) *p))
				return parse_fail(err, AT_HINT, "\"%s\" is not a timestamp", text);
			while (isdigit((unsigned char) *p))
				frac |= (*p++ != '0');
		}
	}
	if (mo < 1 || mo > 12 || d < 1 || d > chime_days_in_month(y, mo) ||
		h > 23 || mi > 59 || sec > 59)
		return parse_fail(err, AT_HINT, "\"%s\" is not a valid date and time", text);

	t = chime_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec + (frac ? 1 : 0);

	while (*p == ' ')
		p++;
	s->at_has_offset = false;
	if (*p == 'Z' || *p == 'z')
	{
		p++;
		s->at_has_offset = true;
	}
	else if (strncasecmp(p, "UTC", 3) == 0 || strncasecmp(p, "GMT", 3) == 0)
	{
		p += 3;
		s->at_has_offset = true;
	}
	else if (*p == '+' || *p == '-')
	{
		int sign = (*p == '-') ? -1 : 1;
		int oh,
			om = 0;

		p++;
		if (!parse_digits(&p, 2, &oh))
			return parse_fail(err, AT_HINT, "\"%s\": invalid UTC offset", text);
		if (*p == ':')
			p++;
		if (isdigit((unsigned char) *p) && !parse_digits(&p, 2, &om))
			return parse_fail(err, AT_HINT, "\"%s\": invalid UTC offset", text);
		if (oh > 15 || om > 59)
			return parse_fail(err, AT_HINT, "\"%s\": UTC offset out of range", text);
		t -= sign * (oh * 3600 + om * 60);
		s->at_has_offset = true;
	}
	while (*p == ' ')
		p++;
	if (*p != '\0')
		return parse_fail(err, AT_HINT, "\"%s\": unexpected text \"%s\"", text, p);

	s->kind = CHIME_SCHED_AT;
	s->at_time = t;
	return true;
}

/* Does 's' (up to white space) equal the keyword, ignoring case? */
static bool
parse_word_is(const char *s, size_t len, const char *kw)
{
	return len == strlen(kw) && strncasecmp(s, kw, len) == 0;
}

/*
 * Parse 'text' into 'sched'.  Returns false and fills 'err' on bad input;
 * 'sched' is then unspecified.
 */
bool
chime_parse_schedule(const char *text, ChimeSchedule *sched, ChimeError *err)
{
	const char *p = text;
	const char *end;
	size_t      len;

	memset(sched, 0, sizeof(*sched));
	err->detail[0] = err->hint[0] = '\0';

	while (isspace((unsigned char) *p))
		p++;
	end = p + strlen(p);
	while (end > p && isspace((unsigned char) end[-1]))
		end--;
	len = (size_t) (end - p);
	if (len == 0)
		return parse_fail(err, CRON_HINT, "schedule is empty");
	if (len > 200)
		return parse_fail(err, CRON_HINT, "schedule is too long (%zu characters, at most 200)", len);

	{
		char        buf[256];
		const char *w;
		size_t      wl;
		const char *rest;

		parse_copy(buf, sizeof(buf), p, end);
		w = buf;
		rest = w;
		while (*rest && !isspace((unsigned char) *rest))
			rest++;
		wl = (size_t) (rest - w);
		while (isspace((unsigned char) *rest))
			rest++;

		if (buf[0] == '@')
		{
			const char *expansion = NULL;

			if (parse_word_is(w, wl, "@yearly") || parse_word_is(w, wl, "@annually"))
				expansion = "0 0 1 1 *";
			else if (parse_word_is(w, wl, "@monthly"))
				expansion = "0 0 1 * *";
			else if (parse_word_is(w, wl, "@weekly"))
				expansion = "0 0 * * 0";
			else if (parse_word_is(w, wl, "@daily") || parse_word_is(w, wl, "@midnight"))
				expansion = "0 0 * * *";
			else if (parse_word_is(w, wl, "@hourly"))
				expansion = "0 * * * *";
			else if (parse_word_is(w, wl, "@reboot") || parse_word_is(w, wl, "@restart"))
			{
				if (*rest)
					return parse_fail(err, CRON_HINT, "unexpected text \"%s\" after \"%.*s\"", rest, (int) wl, w);
				sched->kind = CHIME_SCHED_REBOOT;
				return true;
			}
			else if (parse_word_is(w, wl, "@every"))
			{
				if (!parse_every(rest, &sched->period, err))
					return false;
				sched->kind = CHIME_SCHED_INTERVAL;
				return true;
			}
			else if (parse_word_is(w, wl, "@at"))
			{
				if (*rest == '\0')
					return parse_fail(err, AT_HINT, "\"@at\" needs a timestamp");
				return parse_at(rest, sched, err);
			}
			else
				return parse_fail(err, CRON_HINT, "unknown macro \"%.*s\"", (int) wl, w);

			if (*rest)
				return parse_fail(err, CRON_HINT, "unexpected text \"%s\" after \"%.*s\"", rest, (int) wl, w);
			return parse_cron(expansion, sched, err);
		}

		/* 'N seconds' */
		if (isdigit((unsigned char) buf[0]))
		{
			const char *q = buf;
			long        n = 0;

			while (isdigit((unsigned char) *q))
			{
				n = n * 10 + (*q++ - '0');
				if (n > 1000000)
					n = 1000000;
			}
			while (isspace((unsigned char) *q))
				q++;
			if (strcasecmp(q, "seconds") == 0 || strcasecmp(q, "second") == 0 ||
				strcasecmp(q, "secs") == 0 || strcasecmp(q, "sec") == 0)
			{
				if (n < 1 || n > 59)
					return parse_fail(err, "Use '[1-59] seconds', or '@every <interval>' for longer intervals (e.g. '@every 90 seconds').",
									  "\"%s\": the number of seconds must be between 1 and 59", buf);
				sched->kind = CHIME_SCHED_INTERVAL;
				sched->period = n;
				return true;
			}
		}
		return parse_cron(buf, sched, err);
	}
}
