/*
 * test_window.c — unit tests of src/limits/window: minute, day and month
 * windows in real zones (Europe/Berlin's 23 h and 25 h days, minutes
 * across its DST jumps, Australia/Lord_Howe's 23.5 h and 24.5 h days,
 * Asia/Kolkata and Pacific/Chatham's odd offsets, America/Santiago with no
 * local midnight, Asia/Beirut turning its clock back across midnight,
 * Pacific/Apia's skipped day), month ends and leap days (2024-02-29, 2000,
 * 2100 not leap), years before 1970 and after the last transition (2100,
 * the footer rule), the range limits, and the partition property: every
 * instant is in exactly one window and each window ends where the next
 * starts, stepping through ranges by odd amounts.
 *
 * Usage: test_window [cmocka test-name filter].
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limits/tz.h"
#include "limits/window.h"

/* ---- helpers -------------------------------------------------------------- */

static int64_t ts(int64_t y, int mo, int d, int h, int mi, int s)
{
    return tz_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
}

static tz_t *load(const char *name)
{
    char err[256] = "";
    tz_t *tz = NULL;
    int rc = tz_load(name, &tz, err, sizeof err);
    if (rc != TZ_OK) fprintf(stderr, "tz_load(%s): %s\n", name, err);
    assert_int_equal(rc, TZ_OK);
    return tz;
}

/* The window of kind at t is [start, end) named key. */
static void check_win(const tz_t *tz, lim_window_t kind, int64_t t, int64_t start, int64_t end,
                      const char *key)
{
    lim_span_t w;
    assert_int_equal(lim_window_at(tz, kind, t, &w), LIM_WIN_OK);
    if (w.start != start || w.end != end || strcmp(w.key, key) != 0)
        fprintf(stderr, "t %lld: got [%lld, %lld) %s, want [%lld, %lld) %s\n", (long long)t,
                (long long)w.start, (long long)w.end, w.key, (long long)start, (long long)end, key);
    assert_int_equal(w.start, start);
    assert_int_equal(w.end, end);
    assert_string_equal(w.key, key);
}

/* The same window at its first and last second and at t. */
static void check_whole(const tz_t *tz, lim_window_t kind, int64_t start, int64_t end,
                        const char *key)
{
    check_win(tz, kind, start, start, end, key);
    check_win(tz, kind, end - 1, start, end, key);
    check_win(tz, kind, start + (end - start) / 2, start, end, key);
}

static void partition(const tz_t *tz, lim_window_t kind, int64_t from, int64_t to, int64_t step,
                      int64_t min_len, int64_t max_len);

/* ---- days ----------------------------------------------------------------- */

static void test_berlin_days(void **state)
{
    (void)state;
    tz_t *tz = load("Europe/Berlin");
    /* an ordinary winter day: 23:00Z to 23:00Z */
    check_whole(tz, LIM_WIN_DAY, ts(2026, 1, 14, 23, 0, 0), ts(2026, 1, 15, 23, 0, 0),
                "2026-01-15");
    /* 2026-03-29: clocks go 02:00 -> 03:00, a 23 h day */
    check_whole(tz, LIM_WIN_DAY, ts(2026, 3, 28, 23, 0, 0), ts(2026, 3, 29, 22, 0, 0),
                "2026-03-29");
    lim_span_t w;
    assert_int_equal(lim_window_at(tz, LIM_WIN_DAY, ts(2026, 3, 29, 12, 0, 0), &w), LIM_WIN_OK);
    assert_int_equal(w.end - w.start, 23 * 3600);
    /* 2026-10-25: 03:00 -> 02:00, a 25 h day */
    check_whole(tz, LIM_WIN_DAY, ts(2026, 10, 24, 22, 0, 0), ts(2026, 10, 25, 23, 0, 0),
                "2026-10-25");
    assert_int_equal(lim_window_at(tz, LIM_WIN_DAY, ts(2026, 10, 25, 1, 30, 0), &w), LIM_WIN_OK);
    assert_int_equal(w.end - w.start, 25 * 3600);
    /* the days around them are 24 h */
    check_whole(tz, LIM_WIN_DAY, ts(2026, 3, 27, 23, 0, 0), ts(2026, 3, 28, 23, 0, 0),
                "2026-03-28");
    check_whole(tz, LIM_WIN_DAY, ts(2026, 3, 29, 22, 0, 0), ts(2026, 3, 30, 22, 0, 0),
                "2026-03-30");
    check_whole(tz, LIM_WIN_DAY, ts(2026, 10, 25, 23, 0, 0), ts(2026, 10, 26, 23, 0, 0),
                "2026-10-26");

    /* month ends: Jan 31 -> Feb 1; Feb 28 -> Mar 1 (2026); Feb 29 (2024) */
    check_whole(tz, LIM_WIN_DAY, ts(2026, 1, 30, 23, 0, 0), ts(2026, 1, 31, 23, 0, 0),
                "2026-01-31");
    check_whole(tz, LIM_WIN_DAY, ts(2026, 1, 31, 23, 0, 0), ts(2026, 2, 1, 23, 0, 0), "2026-02-01");
    check_whole(tz, LIM_WIN_DAY, ts(2026, 2, 27, 23, 0, 0), ts(2026, 2, 28, 23, 0, 0),
                "2026-02-28");
    check_whole(tz, LIM_WIN_DAY, ts(2026, 2, 28, 23, 0, 0), ts(2026, 3, 1, 23, 0, 0), "2026-03-01");
    check_whole(tz, LIM_WIN_DAY, ts(2024, 2, 28, 23, 0, 0), ts(2024, 2, 29, 23, 0, 0),
                "2024-02-29");
    check_whole(tz, LIM_WIN_DAY, ts(2024, 2, 29, 23, 0, 0), ts(2024, 3, 1, 23, 0, 0), "2024-03-01");
    check_whole(tz, LIM_WIN_DAY, ts(2026, 12, 31, 23, 0, 0), ts(2027, 1, 1, 23, 0, 0),
                "2027-01-01");

    /* after the last transition (2037): the footer rule, 2100-03-28 is 23 h */
    check_whole(tz, LIM_WIN_DAY, ts(2100, 3, 27, 23, 0, 0), ts(2100, 3, 28, 22, 0, 0),
                "2100-03-28");
    check_whole(tz, LIM_WIN_DAY, ts(2100, 10, 30, 22, 0, 0), ts(2100, 10, 31, 23, 0, 0),
                "2100-10-31");
    /* 2100 is not a leap year */
    check_whole(tz, LIM_WIN_DAY, ts(2100, 2, 28, 23, 0, 0), ts(2100, 3, 1, 23, 0, 0), "2100-03-01");
    /* before 1970: 1945's double summer time (+03) began at 02:00Z May 24 */
    check_whole(tz, LIM_WIN_DAY, ts(1945, 5, 23, 22, 0, 0), ts(1945, 5, 24, 21, 0, 0),
                "1945-05-24");
    check_whole(tz, LIM_WIN_DAY, ts(1959, 12, 31, 23, 0, 0), ts(1960, 1, 1, 23, 0, 0),
                "1960-01-01");
    /* local mean time (+00:53:28) */
    check_whole(tz, LIM_WIN_DAY, ts(1890, 1, 1, 0, 0, 0) - 3208, ts(1890, 1, 2, 0, 0, 0) - 3208,
                "1890-01-01");
    tz_free(tz);

    /* UTC, and tz NULL (the same) */
    tz = load("UTC");
    check_whole(tz, LIM_WIN_DAY, ts(2026, 12, 4, 0, 0, 0), ts(2026, 12, 5, 0, 0, 0), "2026-12-04");
    check_whole(NULL, LIM_WIN_DAY, ts(1969, 12, 31, 0, 0, 0), 0, "1969-12-31");
    check_whole(NULL, LIM_WIN_DAY, ts(1, 1, 3, 0, 0, 0), ts(1, 1, 4, 0, 0, 0), "0001-01-03");
    tz_free(tz);
}

static void test_odd_offsets(void **state)
{
    (void)state;
    tz_t *tz = load("Asia/Kolkata"); /* +05:30 */
    check_whole(tz, LIM_WIN_DAY, ts(2025, 12, 31, 18, 30, 0), ts(2026, 1, 1, 18, 30, 0),
                "2026-01-01");
    check_win(tz, LIM_WIN_MINUTE, ts(2026, 1, 1, 18, 29, 59), ts(2026, 1, 1, 18, 29, 0),
              ts(2026, 1, 1, 18, 30, 0), "2026-01-01T23:59");
    check_whole(tz, LIM_WIN_MONTH, ts(2026, 1, 31, 18, 30, 0), ts(2026, 2, 28, 18, 30, 0),
                "2026-02");
    /* 1900: Madras time, +05:21:10; a minute window is 60 UTC seconds named
     * by the local time of its start, truncated */
    check_win(tz, LIM_WIN_MINUTE, ts(1900, 6, 1, 0, 0, 30), ts(1900, 6, 1, 0, 0, 0),
              ts(1900, 6, 1, 0, 1, 0), "1900-06-01T05:21");
    check_whole(tz, LIM_WIN_DAY, ts(1900, 6, 1, 0, 0, 0) - 19270, ts(1900, 6, 2, 0, 0, 0) - 19270,
                "1900-06-01");
    tz_free(tz);

    tz = load("Pacific/Chatham"); /* +12:45 / +13:45 */
    check_whole(tz, LIM_WIN_DAY, ts(2026, 7, 14, 11, 15, 0), ts(2026, 7, 15, 11, 15, 0),
                "2026-07-15");
    /* DST from 2026-09-27 02:45 local: a 23 h day */
    check_whole(tz, LIM_WIN_DAY, ts(2026, 9, 26, 11, 15, 0), ts(2026, 9, 27, 10, 15, 0),
                "2026-09-27");
    check_win(tz, LIM_WIN_MINUTE, ts(2026, 9, 26, 13, 59, 59), ts(2026, 9, 26, 13, 59, 0),
              ts(2026, 9, 26, 14, 0, 0), "2026-09-27T02:44");
    check_win(tz, LIM_WIN_MINUTE, ts(2026, 9, 26, 14, 0, 0), ts(2026, 9, 26, 14, 0, 0),
              ts(2026, 9, 26, 14, 1, 0), "2026-09-27T03:45");
    tz_free(tz);

    tz = load("Australia/Lord_Howe"); /* +10:30, +11 in summer: 30-minute DST */
    /* 2026-10-04: 02:00 -> 02:30, a 23.5 h day */
    check_whole(tz, LIM_WIN_DAY, ts(2026, 10, 3, 13, 30, 0), ts(2026, 10, 4, 13, 0, 0),
                "2026-10-04");
    /* 2026-04-05: 02:00 -> 01:30, a 24.5 h day */
    check_whole(tz, LIM_WIN_DAY, ts(2026, 4, 4, 13, 0, 0), ts(2026, 4, 5, 13, 30, 0), "2026-04-05");
    /* the repeated half hour: two minutes 30 min apart with one name */
    check_win(tz, LIM_WIN_MINUTE, ts(2026, 4, 4, 14, 45, 10), ts(2026, 4, 4, 14, 45, 0),
              ts(2026, 4, 4, 14, 46, 0), "2026-04-05T01:45");
    check_win(tz, LIM_WIN_MINUTE, ts(2026, 4, 4, 15, 15, 10), ts(2026, 4, 4, 15, 15, 0),
              ts(2026, 4, 4, 15, 16, 0), "2026-04-05T01:45");
    tz_free(tz);
}

static void test_midnight_changes(void **state)
{
    (void)state;
    /* Santiago: 2026-09-06 has no 00:00 (00:00 -04 -> 01:00 -03): the day
     * starts at its first instant, 01:00 local, and lasts 23 h */
    tz_t *tz = load("America/Santiago");
    check_whole(tz, LIM_WIN_DAY, ts(2026, 9, 5, 4, 0, 0), ts(2026, 9, 6, 4, 0, 0), "2026-09-05");
    check_whole(tz, LIM_WIN_DAY, ts(2026, 9, 6, 4, 0, 0), ts(2026, 9, 7, 3, 0, 0), "2026-09-06");
    check_win(tz, LIM_WIN_MINUTE, ts(2026, 9, 6, 4, 0, 0), ts(2026, 9, 6, 4, 0, 0),
              ts(2026, 9, 6, 4, 1, 0), "2026-09-06T01:00");
    check_whole(tz, LIM_WIN_MONTH, ts(2026, 9, 1, 4, 0, 0), ts(2026, 10, 1, 3, 0, 0), "2026-09");
    /* 24:00 -03 -> 23:00 -04 on Saturday 2026-04-04: the clock never shows
     * 00:00 of the 5th before the change; the 4th repeats its last hour and
     * lasts 25 h */
    check_whole(tz, LIM_WIN_DAY, ts(2026, 4, 4, 3, 0, 0), ts(2026, 4, 5, 4, 0, 0), "2026-04-04");
    check_whole(tz, LIM_WIN_DAY, ts(2026, 4, 5, 4, 0, 0), ts(2026, 4, 6, 4, 0, 0), "2026-04-05");
    /* far future, footer rule: Sat 2100-09-04 24:00 */
    check_whole(tz, LIM_WIN_DAY, ts(2100, 9, 5, 4, 0, 0), ts(2100, 9, 6, 3, 0, 0), "2100-09-05");
    tz_free(tz);

    /* Beirut (EET-2EEST,M3.5.0/0,M10.5.0/0): DST ends at Sunday 00:00, back to
     * Saturday 23:00 (2026-10-24T21:00Z), so Saturday is 25 h */
    tz = load("Asia/Beirut");
    check_whole(tz, LIM_WIN_DAY, ts(2026, 10, 23, 21, 0, 0), ts(2026, 10, 24, 22, 0, 0),
                "2026-10-24");
    check_whole(tz, LIM_WIN_DAY, ts(2026, 10, 24, 22, 0, 0), ts(2026, 10, 25, 22, 0, 0),
                "2026-10-25");
    /* and starts at 00:00 -> 01:00: the 29th starts at 01:00 local, 23 h */
    check_whole(tz, LIM_WIN_DAY, ts(2026, 3, 28, 22, 0, 0), ts(2026, 3, 29, 21, 0, 0),
                "2026-03-29");
    /* the month of October ends at the first midnight of November */
    check_whole(tz, LIM_WIN_MONTH, ts(2026, 9, 30, 21, 0, 0), ts(2026, 10, 31, 22, 0, 0),
                "2026-10");
    tz_free(tz);

    /* A clock turned back across midnight: DST (+3) ends at 00:30 on Sunday
     * 2026-10-25, back to Saturday 23:30 (+2).  Sunday began at the first
     * midnight (2026-10-24T21:00Z); the repeated half hour, local date
     * Saturday, comes after it and belongs to Sunday's window (25 h). */
    char err[128];
    assert_int_equal(tz_load_posix("AAA-2BBB,M3.5.0/0,M10.5.0/0:30", &tz, err, sizeof err), TZ_OK);
    check_whole(tz, LIM_WIN_DAY, ts(2026, 10, 23, 21, 0, 0), ts(2026, 10, 24, 21, 0, 0),
                "2026-10-24");
    check_whole(tz, LIM_WIN_DAY, ts(2026, 10, 24, 21, 0, 0), ts(2026, 10, 25, 22, 0, 0),
                "2026-10-25");
    check_win(tz, LIM_WIN_DAY, ts(2026, 10, 24, 21, 45, 0), ts(2026, 10, 24, 21, 0, 0),
              ts(2026, 10, 25, 22, 0, 0), "2026-10-25"); /* local 2026-10-24 23:45 */
    /* the same across a month end: DST ends at 00:30 on the 1st */
    tz_free(tz);
    assert_int_equal(tz_load_posix("AAA-2BBB,M3.5.0/0,M11.1.0/0:30", &tz, err, sizeof err), TZ_OK);
    /* 2026-11-01 is a Sunday: 00:30 +3 = 2026-10-31T21:30Z */
    check_win(tz, LIM_WIN_MONTH, ts(2026, 10, 31, 21, 45, 0), ts(2026, 10, 31, 21, 0, 0),
              ts(2026, 11, 30, 22, 0, 0), "2026-11");
    check_win(tz, LIM_WIN_MONTH, ts(2026, 10, 31, 20, 59, 59), ts(2026, 9, 30, 21, 0, 0),
              ts(2026, 10, 31, 21, 0, 0), "2026-10");
    partition(tz, LIM_WIN_DAY, ts(2026, 10, 30, 0, 0, 0), ts(2026, 11, 3, 0, 0, 0), 61, 23 * 3600,
              25 * 3600);
    partition(tz, LIM_WIN_MONTH, ts(2026, 10, 29, 0, 0, 0), ts(2026, 11, 3, 0, 0, 0), 613,
              28 * 86400, 32 * 86400);
    tz_free(tz);

    /* Apia skipped 2011-12-30: the 29th ends where the 31st starts */
    tz = load("Pacific/Apia");
    check_whole(tz, LIM_WIN_DAY, ts(2011, 12, 29, 10, 0, 0), ts(2011, 12, 30, 10, 0, 0),
                "2011-12-29");
    check_whole(tz, LIM_WIN_DAY, ts(2011, 12, 30, 10, 0, 0), ts(2011, 12, 31, 10, 0, 0),
                "2011-12-31");
    int64_t start = 0;
    assert_int_equal(lim_local_start(tz, ts(2011, 12, 30, 0, 0, 0), &start), LIM_WIN_OK);
    assert_int_equal(start, ts(2011, 12, 30, 10, 0, 0));
    tz_free(tz);
}

/* ---- minutes and months --------------------------------------------------- */

static void test_minutes(void **state)
{
    (void)state;
    tz_t *tz = load("Europe/Berlin");
    check_whole(tz, LIM_WIN_MINUTE, ts(2026, 12, 4, 17, 39, 0), ts(2026, 12, 4, 17, 40, 0),
                "2026-12-04T18:39");
    /* across the spring jump: 01:59 CET is followed by 03:00 CEST */
    check_win(tz, LIM_WIN_MINUTE, ts(2026, 3, 29, 0, 59, 30), ts(2026, 3, 29, 0, 59, 0),
              ts(2026, 3, 29, 1, 0, 0), "2026-03-29T01:59");
    check_win(tz, LIM_WIN_MINUTE, ts(2026, 3, 29, 1, 0, 0), ts(2026, 3, 29, 1, 0, 0),
              ts(2026, 3, 29, 1, 1, 0), "2026-03-29T03:00");
    /* autumn: 02:30 happens twice, an hour apart, in two 60 s windows */
    check_win(tz, LIM_WIN_MINUTE, ts(2026, 10, 25, 0, 30, 5), ts(2026, 10, 25, 0, 30, 0),
              ts(2026, 10, 25, 0, 31, 0), "2026-10-25T02:30");
    check_win(tz, LIM_WIN_MINUTE, ts(2026, 10, 25, 1, 30, 5), ts(2026, 10, 25, 1, 30, 0),
              ts(2026, 10, 25, 1, 31, 0), "2026-10-25T02:30");
    /* before 1970, negative instants round down */
    check_win(tz, LIM_WIN_MINUTE, -1, -60, 0, "1970-01-01T00:59");
    check_win(tz, LIM_WIN_MINUTE, -60, -60, 0, "1970-01-01T00:59");
    check_win(tz, LIM_WIN_MINUTE, -61, -120, -60, "1970-01-01T00:58");
    /* 2100, footer */
    check_win(tz, LIM_WIN_MINUTE, ts(2100, 7, 1, 12, 0, 59), ts(2100, 7, 1, 12, 0, 0),
              ts(2100, 7, 1, 12, 1, 0), "2100-07-01T14:00");
    tz_free(tz);
}

static void test_months(void **state)
{
    (void)state;
    tz_t *tz = load("Europe/Berlin");
    /* March 2026 holds the spring change: 31 d - 1 h */
    check_whole(tz, LIM_WIN_MONTH, ts(2026, 2, 28, 23, 0, 0), ts(2026, 3, 31, 22, 0, 0), "2026-03");
    check_whole(tz, LIM_WIN_MONTH, ts(2026, 1, 31, 23, 0, 0), ts(2026, 2, 28, 23, 0, 0), "2026-02");
    check_whole(tz, LIM_WIN_MONTH, ts(2024, 1, 31, 23, 0, 0), ts(2024, 2, 29, 23, 0, 0), "2024-02");
    check_whole(tz, LIM_WIN_MONTH, ts(2026, 11, 30, 23, 0, 0), ts(2026, 12, 31, 23, 0, 0),
                "2026-12");
    check_whole(tz, LIM_WIN_MONTH, ts(2100, 1, 31, 23, 0, 0), ts(2100, 2, 28, 23, 0, 0), "2100-02");
    check_whole(tz, LIM_WIN_MONTH, ts(2100, 9, 30, 22, 0, 0), ts(2100, 10, 31, 23, 0, 0),
                "2100-10");
    check_whole(tz, LIM_WIN_MONTH, ts(1969, 11, 30, 23, 0, 0), ts(1969, 12, 31, 23, 0, 0),
                "1969-12");
    tz_free(tz);

    check_whole(NULL, LIM_WIN_MONTH, ts(2000, 2, 1, 0, 0, 0), ts(2000, 3, 1, 0, 0, 0), "2000-02");
    check_whole(NULL, LIM_WIN_MONTH, ts(1900, 2, 1, 0, 0, 0), ts(1900, 3, 1, 0, 0, 0), "1900-02");
    check_whole(NULL, LIM_WIN_MONTH, ts(2026, 1, 1, 0, 0, 0), ts(2026, 2, 1, 0, 0, 0), "2026-01");
    check_whole(NULL, LIM_WIN_MONTH, ts(2026, 4, 1, 0, 0, 0), ts(2026, 5, 1, 0, 0, 0), "2026-04");

    tz = load("America/New_York");
    check_whole(tz, LIM_WIN_MONTH, ts(2026, 11, 1, 4, 0, 0), ts(2026, 12, 1, 5, 0, 0), "2026-11");
    /* 2026-12-31 23:59:59 local is already January in UTC */
    check_win(tz, LIM_WIN_MONTH, ts(2027, 1, 1, 4, 59, 59), ts(2026, 12, 1, 5, 0, 0),
              ts(2027, 1, 1, 5, 0, 0), "2026-12");
    check_win(tz, LIM_WIN_DAY, ts(2027, 1, 1, 4, 59, 59), ts(2026, 12, 31, 5, 0, 0),
              ts(2027, 1, 1, 5, 0, 0), "2026-12-31");
    tz_free(tz);
}

/* ---- range, arguments, names ------------------------------------------------- */

static void test_range_and_args(void **state)
{
    (void)state;
    assert_int_equal(LIM_WIN_T_MIN, ts(1, 1, 3, 0, 0, 0));
    assert_int_equal(LIM_WIN_T_MAX, ts(9999, 12, 29, 0, 0, 0));
    tz_t *tz = load("America/New_York");
    lim_span_t w;
    for (int k = LIM_WIN_MINUTE; k <= LIM_WIN_MONTH; k++) {
        assert_int_equal(lim_window_at(tz, (lim_window_t)k, LIM_WIN_T_MIN, &w), LIM_WIN_OK);
        assert_true(w.start <= LIM_WIN_T_MIN && LIM_WIN_T_MIN < w.end);
        assert_int_equal(lim_window_at(tz, (lim_window_t)k, LIM_WIN_T_MAX - 1, &w), LIM_WIN_OK);
        assert_true(w.start < LIM_WIN_T_MAX && LIM_WIN_T_MAX - 1 < w.end);
        assert_int_equal(lim_window_at(tz, (lim_window_t)k, LIM_WIN_T_MIN - 1, &w), LIM_WIN_ERANGE);
        assert_int_equal(w.start, 0);
        assert_string_equal(w.key, "");
        assert_int_equal(lim_window_at(tz, (lim_window_t)k, LIM_WIN_T_MAX, &w), LIM_WIN_ERANGE);
        assert_int_equal(lim_window_at(tz, (lim_window_t)k, INT64_MIN, &w), LIM_WIN_ERANGE);
        assert_int_equal(lim_window_at(tz, (lim_window_t)k, INT64_MAX, &w), LIM_WIN_ERANGE);
    }
    check_win(tz, LIM_WIN_MONTH, LIM_WIN_T_MIN, ts(1, 1, 1, 0, 0, 0) + 17762,
              ts(1, 2, 1, 0, 0, 0) + 17762, "0001-01");
    check_win(tz, LIM_WIN_MONTH, LIM_WIN_T_MAX - 1, ts(9999, 12, 1, 5, 0, 0),
              ts(10000, 1, 1, 5, 0, 0), "9999-12");
    assert_int_equal(lim_window_at(tz, (lim_window_t)3, 0, &w), LIM_WIN_EINVAL);
    assert_int_equal(lim_window_at(tz, (lim_window_t)-1, 0, &w), LIM_WIN_EINVAL);
    assert_int_equal(lim_window_at(tz, LIM_WIN_DAY, 0, NULL), LIM_WIN_EINVAL);

    int64_t start = 0;
    assert_int_equal(lim_local_start(tz, ts(2026, 3, 8, 2, 30, 0), &start), LIM_WIN_OK);
    assert_int_equal(start, ts(2026, 3, 8, 7, 0, 0)); /* 02:30 does not exist: 03:00 EDT */
    assert_int_equal(lim_local_start(tz, ts(2026, 11, 1, 1, 30, 0), &start), LIM_WIN_OK);
    assert_int_equal(start, ts(2026, 11, 1, 5, 30, 0)); /* the first 01:30, EDT */
    assert_int_equal(lim_local_start(tz, INT64_MAX, &start), LIM_WIN_ERANGE);
    assert_int_equal(lim_local_start(tz, -TZ_CLAMP - 1, &start), LIM_WIN_ERANGE);
    tz_free(tz);

    lim_window_t k;
    for (int i = LIM_WIN_MINUTE; i <= LIM_WIN_MONTH; i++) {
        assert_int_equal(lim_window_parse(lim_window_name((lim_window_t)i), &k), 0);
        assert_int_equal(k, i);
    }
    assert_string_equal(lim_window_name(LIM_WIN_DAY), "day");
    assert_string_equal(lim_window_name((lim_window_t)7), "?");
    assert_int_equal(lim_window_parse("week", &k), -1);
    assert_int_equal(lim_window_parse("Day", &k), -1);
    assert_int_equal(lim_window_parse(NULL, &k), -1);
}

/* ---- partition ----------------------------------------------------------------- */

/* Over [from, to) stepping by step: each t is inside its window; the window
 * is the same at its start and its last second; the next window starts at
 * its end; keys of consecutive day and month windows increase; lengths are
 * within [min_len, max_len]. */
static void partition(const tz_t *tz, lim_window_t kind, int64_t from, int64_t to, int64_t step,
                      int64_t min_len, int64_t max_len)
{
    lim_span_t w, a, b, next;
    for (int64_t t = from; t < to; t += step) {
        assert_int_equal(lim_window_at(tz, kind, t, &w), LIM_WIN_OK);
        assert_true(w.start <= t && t < w.end);
        if (w.end - w.start < min_len || w.end - w.start > max_len)
            fprintf(stderr, "%s window %s: %lld s\n", lim_window_name(kind), w.key,
                    (long long)(w.end - w.start));
        assert_true(w.end - w.start >= min_len && w.end - w.start <= max_len);
        assert_int_equal(lim_window_at(tz, kind, w.start, &a), LIM_WIN_OK);
        assert_int_equal(lim_window_at(tz, kind, w.end - 1, &b), LIM_WIN_OK);
        assert_int_equal(lim_window_at(tz, kind, w.end, &next), LIM_WIN_OK);
        assert_true(a.start == w.start && a.end == w.end && strcmp(a.key, w.key) == 0);
        assert_true(b.start == w.start && b.end == w.end && strcmp(b.key, w.key) == 0);
        assert_int_equal(next.start, w.end);
        if (kind != LIM_WIN_MINUTE) assert_true(strcmp(next.key, w.key) > 0);
        if (w.start > LIM_WIN_T_MIN) {
            lim_span_t prev;
            assert_int_equal(lim_window_at(tz, kind, w.start - 1, &prev), LIM_WIN_OK);
            assert_int_equal(prev.end, w.start);
        }
    }
}

static void test_partition(void **state)
{
    (void)state;
    const char *zones[] = {
        "UTC",          "Europe/Berlin",    "America/New_York", "Australia/Lord_Howe",
        "Asia/Kolkata", "Pacific/Chatham",  "America/Santiago", "Asia/Beirut",
        "Pacific/Apia", "America/St_Johns", "Europe/Dublin"};
    const int64_t H = 3600, D = 86400;
    for (size_t i = 0; i < sizeof zones / sizeof *zones; i++) {
        tz_t *tz = load(zones[i]);
        /* 2025-12 .. 2027-02: every DST change of 2026 */
        int64_t a = ts(2025, 12, 1, 0, 0, 0), b = ts(2027, 2, 1, 0, 0, 0);
        partition(tz, LIM_WIN_DAY, a, b, 7919, 22 * H, 26 * H);
        partition(tz, LIM_WIN_MONTH, a, b, 86413 * 3, 28 * D - 2 * H, 31 * D + 2 * H);
        /* minutes: a day and a half around each local date where it matters */
        partition(tz, LIM_WIN_MINUTE, ts(2026, 3, 28, 12, 0, 0), ts(2026, 3, 30, 0, 0, 0), 37, 60,
                  60);
        partition(tz, LIM_WIN_MINUTE, ts(2026, 10, 24, 12, 0, 0), ts(2026, 10, 26, 0, 0, 0), 37, 60,
                  60);
        /* after the last transition, and before 1970 */
        partition(tz, LIM_WIN_DAY, ts(2099, 12, 1, 0, 0, 0), ts(2101, 2, 1, 0, 0, 0), 7919, 22 * H,
                  26 * H);
        partition(tz, LIM_WIN_MONTH, ts(2099, 12, 1, 0, 0, 0), ts(2101, 2, 1, 0, 0, 0), 259243,
                  28 * D - 2 * H, 31 * D + 2 * H);
        partition(tz, LIM_WIN_DAY, ts(1938, 1, 1, 0, 0, 0), ts(1950, 1, 1, 0, 0, 0), 86400 + 3601,
                  20 * H, 26 * H);
        tz_free(tz);
    }
    /* Apia's skipped day and the 1890s with local mean time, stepped finely */
    tz_t *tz = load("Pacific/Apia");
    partition(tz, LIM_WIN_DAY, ts(2011, 12, 25, 0, 0, 0), ts(2012, 1, 5, 0, 0, 0), 997, 22 * H,
              26 * H);
    partition(tz, LIM_WIN_MONTH, ts(2011, 11, 1, 0, 0, 0), ts(2012, 2, 1, 0, 0, 0), 9973, 29 * D,
              32 * D);
    tz_free(tz);
    tz = load("Europe/Amsterdam"); /* +00:19:32 until 1937, then +00:20 */
    partition(tz, LIM_WIN_DAY, ts(1937, 6, 1, 0, 0, 0), ts(1937, 8, 1, 0, 0, 0), 997, 86400 - 60,
              86400 + 60);
    partition(tz, LIM_WIN_MINUTE, ts(1937, 6, 30, 22, 0, 0), ts(1937, 7, 1, 2, 0, 0), 7, 60, 60);
    tz_free(tz);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_berlin_days),      cmocka_unit_test(test_odd_offsets),
        cmocka_unit_test(test_midnight_changes), cmocka_unit_test(test_minutes),
        cmocka_unit_test(test_months),           cmocka_unit_test(test_range_and_args),
        cmocka_unit_test(test_partition),
    };
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
