/*
 * window — calendar-aligned limit windows (a minute, a local day, a local
 * month) in a time zone, for rate limits and token/cost budgets.
 *
 * lim_window_at() gives the window that contains an instant, as UTC
 * seconds [start, end), and a key naming it in the zone's local time:
 *   LIM_WIN_MINUTE  "2026-12-04T18:39"  60 s, aligned to UTC minutes (the
 *                   same as local minutes for every offset in use since
 *                   1972, all whole minutes); the key is the local time of
 *                   the start, truncated to the minute.  During an hour
 *                   that a DST change repeats, two minutes an hour apart
 *                   have the same key: a store identifies a window by
 *                   (kind, start), the key is for people and reports.
 *   LIM_WIN_DAY     "2026-12-04"  from local midnight to the next one: on
 *                   DST days 23 or 25 h.
 *   LIM_WIN_MONTH   "2026-12"     from local midnight of the 1st.
 *
 * Start of a local day or month: the first instant whose local time is at
 * or after its midnight, min { t : t + offset(t) >= midnight }.  When
 * midnight does not exist (a clock moved forward at 00:00, e.g.
 * America/Santiago in September) this is the first instant of that local
 * date.  A clock turned back at 24:00 to 23:00 (Santiago in April,
 * Asia/Beirut in October) repeats the last hour of the day, which is then
 * 25 h.  A clock turned back from after midnight to before it (00:30 ->
 * 23:30) repeats a stretch of the old date after the new day began: that
 * stretch belongs to the new day's window, whose key is the new date.  A
 * local date the clock skips entirely (Pacific/Apia, 2011-12-30) has an
 * empty window that no instant is in.  So the windows of a kind partition
 * time: every instant is in exactly one, and the end of one is the start of
 * the next.
 *
 * Range: instants in [LIM_WIN_T_MIN, LIM_WIN_T_MAX) (local years 0001 to
 * 9999), else LIM_WIN_ERANGE.  Return values: LIM_WIN_OK, LIM_WIN_EINVAL
 * (no output, or an unknown kind), LIM_WIN_ERANGE.
 *
 * Pure: no state, no allocation; tz may be NULL (UTC).  The civil-date
 * helpers (tz_days_from_civil, tz_civil_from_days, ...) are in tz.h.
 */
#ifndef CDEGUARD_LIMITS_WINDOW_H
#define CDEGUARD_LIMITS_WINDOW_H

#include <stdint.h>

#include "limits/tz.h"

#define LIM_WIN_OK 0
#define LIM_WIN_EINVAL (-1)
#define LIM_WIN_ERANGE (-2)

#define LIM_WIN_T_MIN ((int64_t)-62135424000) /* 0001-01-03T00:00:00Z */
#define LIM_WIN_T_MAX ((int64_t)253402041600) /* 9999-12-29T00:00:00Z */

typedef enum lim_window {
    LIM_WIN_MINUTE = 0,
    LIM_WIN_DAY,
    LIM_WIN_MONTH,
} lim_window_t;

typedef struct lim_span {
    int64_t start, end; /* UTC seconds, [start, end) */
    char key[24];       /* local name, NUL-terminated */
} lim_span_t;

int lim_window_at(const tz_t *tz, lim_window_t kind, int64_t utc_sec, lim_span_t *out);

/* The first instant at or after local time `local_sec` (seconds since
 * 1970-01-01T00:00 of local wall time): the start of any calendar unit that
 * begins then.  LIM_WIN_OK or LIM_WIN_ERANGE (beyond +-TZ_CLAMP). */
int lim_local_start(const tz_t *tz, int64_t local_sec, int64_t *utc_out);

/* "minute" | "day" | "month". */
const char *lim_window_name(lim_window_t kind);            /* "?" when unknown */
int lim_window_parse(const char *name, lim_window_t *out); /* 0, or -1 */

#endif
