/*-------------------------------------------------------------------------
 *
 * occurrence.c
 *	  The time engine: next firing instant of a schedule in a time zone.
 *
 * Cron fields describe local wall-clock readings.  The engine walks the
 * matching readings in order and maps each to the real instants that show
 * it, by the zone's offsets:
 *	  - a reading shown once maps to that instant;
 *	  - a reading shown twice (fall-back overlap) maps to both instants for a
 *		wildcard job and to the first for a fixed-time job;
 *	  - a reading never shown (spring-forward gap) maps to nothing for a
 *		wildcard job, and for a fixed-time job to the gap's end ('end'),
 *		nothing ('skip'), or the reading taken with the pre-transition offset
 *		('shift').
 * Instants are Unix seconds; readings are seconds since 1970-01-01 00:00 on
 * the local calendar.  Offsets come from chime_zone_offset() and the engine
 * assumes a zone changes its offset at most once in any 32 hours, and does
 * not change it and back within a week, which holds for every zone in the
 * tz database since 1970.
 *
 *-------------------------------------------------------------------------
 */
#include "occurrence.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define DAY  ((int64_t) 86400)
#define HOUR ((int64_t) 3600)
/* No zone's offset reaches 16 hours either side of UTC. */
#define MAX_OFFSET (16 * HOUR)
/* Largest spring-forward jump a window search allows for. */
#define MAX_GAP (3 * HOUR)

static int64_t
occ_floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t
occ_offset(const ChimeZone *zone, int64_t t)
{
	return chime_zone_offset(zone, t);
}

/* Lowest set bit of 'mask' at or above 'from', or -1. */
static int
occ_next_bit(uint64_t mask, int from)
{
	if (from >= 64)
		return -1;
	mask >>= from;
	if (mask == 0)
		return -1;
	return from + __builtin_ctzll(mask);
}

/* Does the date match the day-of-month / day-of-week / month fields? */
static bool
occ_day_matches(const ChimeSchedule *s, int64_t y, int m, int d, int64_t days)
{
	int  dim = chime_days_in_month(y, m);
	int  wday = (int) (((days + 4) % 7 + 7) % 7); /* 1970-01-01: Thu */
	bool mday_ok,
		wday_ok;

	mday_ok = ((s->mdays >> d) & 1) || (s->mday_last && d == dim);
	wday_ok = ((s->wdays >> wday) & 1) ||
		(((s->wday_last >> wday) & 1) && d + 7 > dim) ||
		((s->wday_nth[wday] >> ((d - 1) / 7 + 1)) & 1);

	/* Vixie's rule: both restricted means either may match */
	if (s->mday_star || s->wday_star)
		return mday_ok && wday_ok;
	return mday_ok || wday_ok;
}

/*
 * Does the day of the month alone decide which days match?  So when the
 * day-of-week field allows every day without 'L' or '#', and either field
 * is '*'-led (otherwise both restricted means either may match, and every
 * day does).
 */
static bool
occ_mday_only(const ChimeSchedule *s)
{
	if ((s->wdays & 0x7F) != 0x7F || s->wday_last != 0)
		return false;
	for (int i = 0; i < 7; i++)
		if (s->wday_nth[i] != 0)
			return false;
	return s->mday_star || s->wday_star;
}

/* First matching time of day at or after 'sod' seconds, or -1. */
static int64_t
occ_next_tod(const ChimeSchedule *s, int64_t sod)
{
	int h0 = (int) (sod / 3600);
	int m0 = (int) (sod / 60 % 60);
	int s0 = (int) (sod % 60);

	for (int h = occ_next_bit(s->hours, h0); h >= 0; h = occ_next_bit(s->hours, h + 1))
	{
		for (int mi = occ_next_bit(s->minutes, h == h0 ? m0 : 0); mi >= 0;
			 mi = occ_next_bit(s->minutes, mi + 1))
		{
			int sec = occ_next_bit(s->seconds, (h == h0 && mi == m0) ? s0 : 0);

			if (sec >= 0)
				return h * 3600 + mi * 60 + sec;
		}
	}
	return -1;
}

/* First reading at or after 'from' that the cron fields match, up to 'limit'. */
static bool
occ_next_reading(const ChimeSchedule *s, int64_t from, int64_t limit, int64_t *out)
{
	int64_t days = occ_floor_div(from, DAY);
	int64_t sod = from - days * DAY;
	int64_t y;
	int     m,
		d;
	bool mday_only = occ_mday_only(s);

	chime_civil_from_days(days, &y, &m, &d);
	while (days * DAY <= limit)
	{
		int  dim = chime_days_in_month(y, m);
		int  nd = d;
		bool next_month = ((s->months >> m) & 1) == 0;

		/* when only the day of the month decides, jump to the next such day */
		if (!next_month && mday_only)
		{
			nd = occ_next_bit(s->mdays, d);
			if (s->mday_last && (nd < 0 || nd > dim))
				nd = dim;
			next_month = nd < 0 || nd > dim;
		}
		if (next_month)
		{
			/* skip to the first of the next month */
			days += dim - d + 1;
			d = 1;
			sod = 0;
			if (++m > 12)
			{
				m = 1;
				y++;
			}
			continue;
		}
		if (nd > d)
		{
			days += nd - d;
			d = nd;
			sod = 0;
		}
		if (occ_day_matches(s, y, m, d, days))
		{
			int64_t tod = occ_next_tod(s, sod);

			if (tod >= 0)
			{
				*out = days * DAY + tod;
				return *out <= limit;
			}
		}
		days++;
		sod = 0;
		if (++d > dim)
		{
			d = 1;
			if (++m > 12)
			{
				m = 1;
				y++;
			}
		}
	}
	return false;
}

/* First instant in (lo, hi] whose offset equals the offset at 'hi'. */
static int64_t
occ_transition(const ChimeZone *zone, int64_t lo, int64_t hi)
{
	int64_t target = occ_offset(zone, hi);

	while (hi - lo > 1)
	{
		int64_t mid = lo + (hi - lo) / 2;

		if (occ_offset(zone, mid) == target)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}

/* How resolution treats a reading shown twice, or never. */
typedef struct Resolve
{
	bool        both_passes; /* overlap: return the second instant too */
	bool        gap_fires;   /* gap: return an instant at all */
	ChimeDstGap gap;         /* gap: which one */
} Resolve;

/*
 * Map reading 'L' to the instants that fire for it (0, 1 or 2, in order).
 * In a gap, *gap_end is set to the first reading after the gap (else -1).
 */
static int
occ_resolve(const ChimeZone *zone, int64_t L, const Resolve *how,
			int64_t out[2], int64_t *gap_end)
{
	int64_t a = occ_offset(zone, L - MAX_OFFSET);
	int64_t b = occ_offset(zone, L + MAX_OFFSET);
	int64_t c1 = L - a;
	int64_t c2 = L - b;
	bool    v1 = occ_offset(zone, c1) == a;
	bool    v2 = (a == b) ? v1 : occ_offset(zone, c2) == b;

	*gap_end = -1;
	if (a == b || (v1 && !v2))
	{
		out[0] = c1;
		return v1 ? 1 : 0;
	}
	if (v2 && !v1)
	{
		out[0] = c2;
		return 1;
	}
	if (v1 && v2)
	{
		/* overlap: c1 (earlier offset) and c2 are both readings of L */
		out[0] = c1 < c2 ? c1 : c2;
		out[1] = c1 < c2 ? c2 : c1;
		return how->both_passes ? 2 : 1;
	}

	/* gap: the offset jumps from a to b > a somewhere in (c2, c1] */
	if (b <= a)
		return 0;
	{
		int64_t t = occ_transition(zone, c2, c1);

		*gap_end = t + b;
		if (!how->gap_fires)
			return 0;
		switch (how->gap)
		{
			case CHIME_GAP_END:
				out[0] = t;
				return 1;
			case CHIME_GAP_SHIFT:
				out[0] = c1;
				return 1;
			case CHIME_GAP_SKIP:
				return 0;
		}
	}
	return 0;
}

/*
 * Next instant after 'after' for cron fields.  Walks matching readings from
 * the earliest one that can show an instant after 'after' and keeps the
 * smallest instant found; stops once no later reading can show an earlier
 * instant than the best so far.
 *
 * The first reading to look at is 'after' read with the smallest offset
 * around it: a fall-back transition within the next day repeats earlier
 * readings, and a 'shift' reading in a recent gap maps to an instant read
 * with the offset from before the gap.
 */
static bool
occ_next_cron(const ChimeTiming *tm, int64_t after, int64_t *next)
{
	const ChimeSchedule *s = &tm->sched;
	const ChimeZone     *zone = tm->zone;
	Resolve              how = {s->wildcard, !s->wildcard, tm->gap};
	int64_t              o0 = occ_offset(zone, after - MAX_GAP);
	int64_t              o1 = occ_offset(zone, after);
	int64_t              o2 = occ_offset(zone, after + DAY);
	int64_t              omin = o0 < o1 ? (o0 < o2 ? o0 : o2) : (o1 < o2 ? o1 : o2);
	int64_t              L = after + omin;
	int64_t              limit = after + CHIME_HORIZON_SECONDS;
	int64_t              best = 0;
	int64_t              stop = 0;
	bool                 have = false;

	/*
	 * The common case: no transition from a gap before 'after' to a day
	 * after it, so every reading in that span shows exactly once, at its
	 * reading minus the one offset.
	 */
	if (o0 == o1 && o1 == o2)
	{
		if (!occ_next_reading(s, after + o1 + 1, limit, &L))
			return false;
		if (L - o1 <= after + DAY)
		{
			*next = L - o1;
			return true;
		}
		/* no reading before L can show an instant after 'after' */
	}

	while (occ_next_reading(s, L, limit, &L))
	{
		int64_t inst[2];
		int64_t gap_end;
		int     n;

		if (have && L >= stop)
			break;
		n = occ_resolve(zone, L, &how, inst, &gap_end);
		for (int i = 0; i < n; i++)
		{
			if (inst[i] > after && (!have || inst[i] < best))
			{
				int64_t ob = occ_offset(zone, inst[i]);
				int64_t oa = occ_offset(zone, inst[i] - DAY);

				best = inst[i];
				have = true;
				stop = best + (ob > oa ? ob : oa);
			}
		}
		/* readings inside a gap that cannot fire: jump past the gap */
		if (n == 0 && gap_end > L)
			L = gap_end;
		else
			L++;
	}
	if (have)
		*next = best;
	return have;
}

bool
chime_next_occurrence(const ChimeTiming *tm, int64_t after, int64_t *next)
{
	const ChimeSchedule *s = &tm->sched;

	switch (s->kind)
	{
		case CHIME_SCHED_CRON:
		{
			int32_t off;
			int64_t L;

			/* a zone that never changes its offset shows every reading once */
			if (!chime_zone_fixed(tm->zone, &off))
				return occ_next_cron(tm, after, next);
			if (!occ_next_reading(s, after + off + 1, after + CHIME_HORIZON_SECONDS, &L))
				return false;
			*next = L - off;
			return true;
		}
		case CHIME_SCHED_INTERVAL:
			if (after > INT64_MAX - 2 * s->period)
				return false;
			*next = (occ_floor_div(after, s->period) + 1) * s->period;
			return true;
		case CHIME_SCHED_AT:
		{
			int64_t t = s->at_time;

			if (!s->at_has_offset)
			{
				Resolve how = {false, true, tm->gap};
				int64_t inst[2];
				int64_t gap_end;

				if (occ_resolve(tm->zone, s->at_time, &how, inst, &gap_end) == 0)
					return false;
				t = inst[0];
			}
			if (t <= after)
				return false;
			*next = t;
			return true;
		}
		case CHIME_SCHED_REBOOT:
			return false;
	}
	return false;
}

bool
chime_in_window(const ChimeWindow *w, const ChimeZone *zone, int64_t t)
{
	int64_t reading = t + occ_offset(zone, t);
	int     minute = (int) ((reading - occ_floor_div(reading, DAY) * DAY) / 60);

	if (!w->set)
		return true;
	if (w->start < w->end)
		return minute >= w->start && minute < w->end;
	return minute >= w->start || minute < w->end;
}

/*
 * Earliest instant after 't' that lies inside the window: the window's
 * opening reading on the surrounding days (both passes of an overlap, the
 * gap's end if the opening falls in a gap), or a transition that jumps the
 * clock into the window.
 */
static bool
occ_window_entry(const ChimeTiming *tm, int64_t t, int64_t *entry)
{
	const ChimeZone *zone = tm->zone;
	Resolve          how = {true, true, CHIME_GAP_END};
	int64_t          day = occ_floor_div(t + occ_offset(zone, t), DAY);
	bool             have = false;
	int64_t          o1,
		o2;

	for (int64_t d = day - 1; d <= day + 2; d++)
	{
		int64_t inst[2];
		int64_t gap_end;
		int     n = occ_resolve(zone, d * DAY + tm->window.start * 60, &how, inst, &gap_end);

		for (int i = 0; i < n; i++)
		{
			if (inst[i] > t && (!have || inst[i] < *entry))
			{
				*entry = inst[i];
				have = true;
			}
		}
	}

	o1 = occ_offset(zone, t);
	o2 = occ_offset(zone, t + 2 * DAY);
	if (o1 != o2)
	{
		int64_t tr = occ_transition(zone, t, t + 2 * DAY);

		if (chime_in_window(&tm->window, zone, tr) && (!have || tr < *entry))
		{
			*entry = tr;
			have = true;
		}
	}
	return have;
}

bool
chime_window_next_open(const ChimeTiming *tm, int64_t after, int64_t *opens)
{
	if (!tm->window.set)
		return false;
	return occ_window_entry(tm, after, opens);
}

/*
 * Can a reading of the cron fields fall in the window, taking readings up
 * to 'widen' minutes before the window's start as well?
 */
static bool
occ_cron_meets_window(const ChimeSchedule *s, const ChimeWindow *w, int widen)
{
	int start = w->start - widen;
	int end = w->end > w->start ? w->end : w->end + 1440;

	for (int h = occ_next_bit(s->hours, 0); h >= 0; h = occ_next_bit(s->hours, h + 1))
	{
		for (int mi = occ_next_bit(s->minutes, 0); mi >= 0; mi = occ_next_bit(s->minutes, mi + 1))
		{
			for (int shift = -1440; shift <= 1440; shift += 1440)
			{
				int x = h * 60 + mi + shift;

				if (x >= start && x < end)
					return true;
			}
		}
	}
	return false;
}

/* The first instant in (after, limit] at which the zone's offset changes. */
static bool
occ_next_transition(const ChimeZone *zone, int64_t after, int64_t limit, int64_t *tr)
{
	int64_t o = occ_offset(zone, after);

	for (int64_t t = after; t < limit; t += 7 * DAY)
	{
		int64_t hi = t + 7 * DAY < limit ? t + 7 * DAY : limit;

		if (occ_offset(zone, hi) != o)
		{
			*tr = occ_transition(zone, t, hi);
			return true;
		}
	}
	return false;
}

/*
 * Next in-window instant of cron fields whose readings all lie outside the
 * window: only a spring-forward gap can move one in ('end' to the gap's
 * end, 'shift' past it), so look only just after each transition.
 */
static bool
occ_next_gap_run(const ChimeTiming *tm, int64_t after, int64_t limit, int64_t *next)
{
	int64_t cur = after;
	int64_t tr;

	while (occ_next_transition(tm->zone, cur, limit, &tr))
	{
		int64_t x = tr - 1 > after ? tr - 1 : after;
		int64_t y;

		while (chime_next_occurrence(tm, x, &y) && y <= tr + MAX_GAP)
		{
			if (chime_in_window(&tm->window, tm->zone, y))
			{
				*next = y;
				return true;
			}
			x = y;
		}
		cur = tr + MAX_GAP > cur ? tr + MAX_GAP : cur + 1;
	}
	return false;
}

/* The next occurrence strictly after 'after' inside the run window */
static bool
occ_next_windowed(const ChimeTiming *tm, int64_t after, int64_t *next)
{
	int64_t limit = after + CHIME_HORIZON_SECONDS;

	if (tm->window.set && tm->sched.kind == CHIME_SCHED_CRON &&
		!occ_cron_meets_window(&tm->sched, &tm->window, 0))
	{
		if (!occ_cron_meets_window(&tm->sched, &tm->window, (int) (MAX_GAP / 60)))
			return false;
		return occ_next_gap_run(tm, after, limit, next);
	}

	while (after < limit)
	{
		int64_t t,
			entry = 0;

		if (!chime_next_occurrence(tm, after, &t) || t > limit)
			return false;
		if (chime_in_window(&tm->window, tm->zone, t))
		{
			*next = t;
			return true;
		}
		if (!occ_window_entry(tm, t, &entry))
			return false;
		after = entry - 1;
	}
	return false;
}

/* The next occurrence after 'after' inside the window and the bounds */
static bool
occ_next_bounded(const ChimeTiming *tm, int64_t after, int64_t *next)
{
	if (tm->start_at != 0 && after < tm->start_at - 1)
		after = tm->start_at - 1;
	if (!occ_next_windowed(tm, after, next))
		return false;
	return tm->end_at == 0 || *next < tm->end_at;
}

/* A well-mixed 64-bit value of (seed, t) (splitmix64's finaliser) */
static uint64_t
occ_mix(int64_t seed, int64_t t)
{
	uint64_t z = (uint64_t) seed * 0x9E3779B97F4A7C15ULL + (uint64_t) t;

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* Seconds from 't' (inside the window) to the window's close (0: no window) */
static int64_t
occ_window_left(const ChimeTiming *tm, int64_t t)
{
	int64_t reading;
	int     minute,
		left;

	if (!tm->window.set)
		return 0;
	reading = t + occ_offset(tm->zone, t);
	minute = (int) ((reading - occ_floor_div(reading, DAY) * DAY) / 60);
	left = tm->window.end - minute;
	if (left <= 0)
		left += 24 * 60;
	/* the minutes left, less the seconds gone of this one */
	return (int64_t) left * 60 - (reading - occ_floor_div(reading, 60) * 60);
}

/* The delay of occurrence 't', whose next occurrence is 'following' (0: none) */
static int64_t
occ_jitter(const ChimeTiming *tm, int64_t seed, int64_t t, int64_t following)
{
	int64_t bound = tm->jitter;
	int64_t left;
	int64_t delay;
	int64_t reading;

	if (bound <= 0)
		return 0;
	if (following != 0 && following - t < bound)
		bound = following - t;
	if (tm->end_at != 0 && tm->end_at - t < bound)
		bound = tm->end_at - t;
	left = occ_window_left(tm, t);
	if (left > 0 && left < bound)
		bound = left;
	/* within the occurrence's local day: once_per periods end at midnight */
	reading = t + occ_offset(tm->zone, t);
	left = (occ_floor_div(reading, DAY) + 1) * DAY - reading;
	if (left < bound)
		bound = left;
	if (bound <= 1)
		return 0;
	delay = (int64_t) (occ_mix(seed, t) % (uint64_t) bound);
	/* (a clock change can close the window, or end the day, sooner) */
	if (tm->window.set && !chime_in_window(&tm->window, tm->zone, t + delay))
		return 0;
	if (occ_floor_div(t + delay + occ_offset(tm->zone, t + delay), DAY) != occ_floor_div(reading, DAY))
		return 0;
	return delay;
}

int64_t
chime_jitter_of(const ChimeTiming *tm, int64_t seed, int64_t t)
{
	int64_t following;

	if (tm->jitter <= 0)
		return 0;
	if (!occ_next_bounded(tm, t, &following))
		following = 0;
	return occ_jitter(tm, seed, t, following);
}

/*
 * The last occurrence at or before 'after' and less than 'reach' before
 * it, in *last (false: none).  The window searched doubles until it holds
 * one, so that a schedule far denser than the reach costs a few steps, not
 * one per occurrence in it.
 */
static bool
occ_last_within(const ChimeTiming *tm, int64_t after, int64_t reach, int64_t *last)
{
	int64_t span = 1;
	int64_t t;
	int64_t following;

	for (;;)
	{
		if (span > reach)
			span = reach;
		if (occ_next_bounded(tm, after - span, &t) && t <= after)
			break;
		if (span == reach)
			return false;
		span *= 2;
	}
	/* (no occurrence in the half of the span nearest 'after' but t: few steps) */
	while (occ_next_bounded(tm, t, &following) && following <= after)
		t = following;
	*last = t;
	return true;
}

bool
chime_next_run(const ChimeTiming *tm, int64_t seed, int64_t after, int64_t *next)
{
	int64_t last;
	int64_t t;
	int64_t following;

	if (tm->jitter <= 0)
		return occ_next_bounded(tm, after, next);

	/*
	 * An occurrence starts before the next one does: only the last one at or
	 * before 'after' (if less than a jitter before it) can start after it;
	 * otherwise the first one after it starts next.
	 */
	if (occ_last_within(tm, after, tm->jitter, &last))
	{
		bool    more = occ_next_bounded(tm, last, &following);
		int64_t start = last + occ_jitter(tm, seed, last, more ? following : 0);

		if (start > after)
		{
			*next = start;
			return true;
		}
		if (!more)
			return false;
		t = following;
	}
	else if (!occ_next_bounded(tm, after, &t))
		return false;
	*next = t + occ_jitter(tm, seed, t, occ_next_bounded(tm, t, &following) ? following : 0);
	return true;
}

bool
chime_parse_dst_gap(const char *text, ChimeDstGap *gap, ChimeError *err)
{
	static const char *const hint = "dst_gap is one of 'end', 'skip' or 'shift'.";

	if (strcasecmp(text, "end") == 0)
		*gap = CHIME_GAP_END;
	else if (strcasecmp(text, "skip") == 0)
		*gap = CHIME_GAP_SKIP;
	else if (strcasecmp(text, "shift") == 0)
		*gap = CHIME_GAP_SHIFT;
	else
	{
		snprintf(err->detail, sizeof(err->detail), "\"%s\" is not a dst_gap rule", text);
		snprintf(err->hint, sizeof(err->hint), "%s", hint);
		return false;
	}
	return true;
}

const char *
chime_dst_gap_name(ChimeDstGap gap)
{
	switch (gap)
	{
		case CHIME_GAP_END:
			return "end";
		case CHIME_GAP_SKIP:
			return "skip";
		case CHIME_GAP_SHIFT:
			return "shift";
	}
	return "end";
}

/* Parse "HH:MM" at *p; advance past it. */
static bool
occ_hhmm(const char **p, int *minutes)
{
	const char *s = *p;
	int         h,
		m;

	if (!isdigit((unsigned char) s[0]) || !isdigit((unsigned char) s[1]) || s[2] != ':' ||
		!isdigit((unsigned char) s[3]) || !isdigit((unsigned char) s[4]))
		return false;
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	if (h > 23 || m > 59)
		return false;
	*minutes = h * 60 + m;
	*p = s + 5;
	return true;
}

bool
chime_parse_window(const char *text, ChimeWindow *w, ChimeError *err)
{
	static const char *const hint = "A run window is 'HH:MM-HH:MM' in the job's local time, hours 00-23, start different from end, e.g. '03:00-06:00' or '22:00-02:00' (crossing midnight).";
	const char              *p = text;

	while (*p == ' ')
		p++;
	if (!occ_hhmm(&p, &w->start))
		goto bad;
	while (*p == ' ')
		p++;
	if (*p++ != '-')
		goto bad;
	while (*p == ' ')
		p++;
	if (!occ_hhmm(&p, &w->end))
		goto bad;
	while (*p == ' ')
		p++;
	if (*p != '\0')
		goto bad;
	if (w->start == w->end)
	{
		snprintf(err->detail, sizeof(err->detail), "run window \"%s\" is empty: start equals end", text);
		snprintf(err->hint, sizeof(err->hint), "%s", hint);
		return false;
	}
	w->set = true;
	return true;

bad:
	snprintf(err->detail, sizeof(err->detail), "\"%s\" is not a run window", text);
	snprintf(err->hint, sizeof(err->hint), "%s", hint);
	return false;
}

bool
chime_parse_once_per(const char *text, ChimeOncePer *per)
{
	if (text == NULL)
		*per = CHIME_ONCE_NONE;
	else if (strcmp(text, "day") == 0)
		*per = CHIME_ONCE_DAY;
	else if (strcmp(text, "week") == 0)
		*per = CHIME_ONCE_WEEK;
	else if (strcmp(text, "month") == 0)
		*per = CHIME_ONCE_MONTH;
	else
		return false;
	return true;
}

void
chime_run_key(ChimeOncePer per, const ChimeZone *zone, int64_t t, char *key)
{
	int64_t days = occ_floor_div(t + occ_offset(zone, t), DAY);
	int64_t y;
	int     m,
		d;

	key[0] = '\0';
	switch (per)
	{
		case CHIME_ONCE_NONE:
			break;
		case CHIME_ONCE_DAY:
			chime_civil_from_days(days, &y, &m, &d);
			snprintf(key, CHIME_RUN_KEY_LEN, "%04lld-%02d-%02d", (long long) y, m, d);
			break;
		case CHIME_ONCE_MONTH:
			chime_civil_from_days(days, &y, &m, &d);
			snprintf(key, CHIME_RUN_KEY_LEN, "%04lld-%02d", (long long) y, m);
			break;
		case CHIME_ONCE_WEEK:
		{
			/* ISO: the week belongs to the year of its Thursday */
			int     weekday = (int) ((days % 7 + 7 + 3) % 7) + 1; /* Monday 1 */
			int64_t thursday = days - weekday + 4;

			chime_civil_from_days(thursday, &y, &m, &d);
			snprintf(key, CHIME_RUN_KEY_LEN, "%04lld-W%02d", (long long) y,
					 (int) ((thursday - chime_days_from_civil(y, 1, 1)) / 7 + 1));
		}
		break;
	}
}

/*
 * Days since 1970-01-01 of a proleptic Gregorian date, and back.
 * (Era-based arithmetic; valid far beyond any date a schedule reaches.)
 */
int64_t
chime_days_from_civil(int64_t y, int m, int d)
{
	int64_t era;
	int64_t yoe,
		doy,
		doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

void
chime_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;

	*d = (int) (doy - (153 * mp + 2) / 5 + 1);
	*m = (int) (mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

int
chime_days_in_month(int64_t y, int m)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return mdays[m - 1];
}
