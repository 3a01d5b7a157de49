/*
 * window.c — calendar windows in a zone (see window.h for the definitions).
 *
 * The start of a local unit beginning at local time L is found by walking
 * the zone's constant-offset spans forward from L - (TZ_MAX_UTOFF + 1),
 * where the local time is surely before L: in a span [a, b) with offset o
 * the first instant whose local time is >= L is max(a, L - o), if that is
 * before b; else the walk goes on at b.  It ends within L + |TZ_MIN_UTOFF|
 * + 1, so after at most the zone's transitions in that stretch (bounded by
 * TZ_MAX_TRANSITIONS) plus a few footer-rule events.
 *
 * A day window: D = the local date of t; start(D) <= t always (t itself has
 * a local time >= D's midnight); while t >= start(D + 1) (a clock turned
 * back across midnight) D moves on.  Months the same with the 1st.
 *
 * Pure: no state, no allocation.
 */
#include "limits/window.h"

#include <stdio.h>
#include <string.h>

#define DAY 86400
#define WALK_MAX (TZ_MAX_TRANSITIONS + 64)
#define ADVANCE_MAX 8 /* a turned-back clock moves D by at most 3 days (|offsets| < 26 h) */

int lim_local_start(const tz_t *tz, int64_t local_sec, int64_t *utc_out)
{
    if (local_sec < -TZ_CLAMP || local_sec > TZ_CLAMP) return LIM_WIN_ERANGE;
    int64_t t = local_sec - (TZ_MAX_UTOFF + 1);
    for (int n = 0; n < WALK_MAX; n++) {
        int64_t until;
        int64_t off = tz_utc_offset_until(tz, t, &until);
        int64_t c = local_sec - off;
        if (c < t) c = t;
        if (c < until) {
            *utc_out = c;
            return LIM_WIN_OK;
        }
        t = until;
    }
    return LIM_WIN_ERANGE; /* not reached with a zone that keeps tz.h's bounds */
}

static int day_key(int64_t days, char *key, size_t len, bool with_day)
{
    int64_t y;
    int m, d;
    tz_civil_from_days(days, &y, &m, &d);
    if (y < 1 || y > 9999) return LIM_WIN_ERANGE;
    if (with_day)
        snprintf(key, len, "%04d-%02d-%02d", (int)y, m, d);
    else
        snprintf(key, len, "%04d-%02d", (int)y, m);
    return LIM_WIN_OK;
}

static int minute_window(const tz_t *tz, int64_t t, lim_span_t *out)
{
    int64_t start = tz_floor_div(t, 60) * 60;
    int64_t local = start + tz_utc_offset(tz, start);
    int64_t days = tz_floor_div(local, DAY);
    int64_t sod = local - days * DAY;
    char date[16];
    if (day_key(days, date, sizeof date, true) != LIM_WIN_OK) return LIM_WIN_ERANGE;
    out->start = start;
    out->end = start + 60;
    snprintf(out->key, sizeof out->key, "%sT%02d:%02d", date, (int)(sod / 3600),
             (int)(sod % 3600 / 60));
    return LIM_WIN_OK;
}

static int day_window(const tz_t *tz, int64_t t, lim_span_t *out)
{
    int64_t d = tz_floor_div(t + tz_utc_offset(tz, t), DAY);
    int64_t start, end;
    if (lim_local_start(tz, d * DAY, &start) != LIM_WIN_OK) return LIM_WIN_ERANGE;
    for (int k = 0;; k++) {
        if (k == ADVANCE_MAX || lim_local_start(tz, (d + 1) * DAY, &end) != LIM_WIN_OK)
            return LIM_WIN_ERANGE;
        if (t < end) break;
        d++;
        start = end;
    }
    if (day_key(d, out->key, sizeof out->key, true) != LIM_WIN_OK) return LIM_WIN_ERANGE;
    out->start = start;
    out->end = end;
    return LIM_WIN_OK;
}

static int month_window(const tz_t *tz, int64_t t, lim_span_t *out)
{
    int64_t y;
    int m, d;
    tz_civil_from_days(tz_floor_div(t + tz_utc_offset(tz, t), DAY), &y, &m, &d);
    int64_t first = tz_days_from_civil(y, m, 1);
    int64_t start, end;
    if (lim_local_start(tz, first * DAY, &start) != LIM_WIN_OK) return LIM_WIN_ERANGE;
    for (int k = 0;; k++) {
        int64_t next = first + tz_days_in_month(y, m);
        if (k == ADVANCE_MAX || lim_local_start(tz, next * DAY, &end) != LIM_WIN_OK)
            return LIM_WIN_ERANGE;
        if (t < end) break;
        tz_civil_from_days(next, &y, &m, &d);
        first = next;
        start = end;
    }
    if (day_key(first, out->key, sizeof out->key, false) != LIM_WIN_OK) return LIM_WIN_ERANGE;
    out->start = start;
    out->end = end;
    return LIM_WIN_OK;
}

int lim_window_at(const tz_t *tz, lim_window_t kind, int64_t utc_sec, lim_span_t *out)
{
    if (!out) return LIM_WIN_EINVAL;
    memset(out, 0, sizeof *out);
    if (kind != LIM_WIN_MINUTE && kind != LIM_WIN_DAY && kind != LIM_WIN_MONTH)
        return LIM_WIN_EINVAL;
    if (utc_sec < LIM_WIN_T_MIN || utc_sec >= LIM_WIN_T_MAX) return LIM_WIN_ERANGE;
    int rc;
    if (kind == LIM_WIN_MINUTE)
        rc = minute_window(tz, utc_sec, out);
    else if (kind == LIM_WIN_DAY)
        rc = day_window(tz, utc_sec, out);
    else
        rc = month_window(tz, utc_sec, out);
    if (rc != LIM_WIN_OK) memset(out, 0, sizeof *out);
    return rc;
}

static const char *const window_names[] = {"minute", "day", "month"};

const char *lim_window_name(lim_window_t kind)
{
    return (unsigned)kind < sizeof window_names / sizeof *window_names ? window_names[kind] : "?";
}

int lim_window_parse(const char *name, lim_window_t *out)
{
    if (!name || !out) return -1;
    for (size_t i = 0; i < sizeof window_names / sizeof *window_names; i++) {
        if (strcmp(name, window_names[i]) == 0) {
            *out = (lim_window_t)i;
            return 0;
        }
    }
    return -1;
}
