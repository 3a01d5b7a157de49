/*
 * test_tz.c — unit tests of src/limits/tz: the proleptic Gregorian helpers,
 * zone names, the system's TZif files (Europe/Berlin, America/New_York,
 * Australia/Lord_Howe with its 30-minute DST, Asia/Kolkata at +05:30,
 * Pacific/Chatham at +12:45/+13:45, America/Santiago and Asia/Beirut
 * changing at midnight, America/Nuuk's negative rule times) checked at
 * their transitions, before the first one, far in the past, and after the
 * last one (footer rule, year 2100); POSIX TZ strings (Jn and n rules, DST
 * all year, rule times up to 167 h) and hand-built TZif buffers for every
 * error the parser reports.  Every file under /usr/share/zoneinfo (outside
 * right/) loads.  Expected figures come from the IANA data (cross-checked
 * with zdump / Python's zoneinfo when written).
 *
 * Usage: test_tz [cmocka test-name filter].
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limits/tz.h"

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
    assert_non_null(tz);
    return tz;
}

/* A change from `before` to `after` exactly at t. */
static void check_change(const tz_t *tz, int64_t t, int64_t before, int64_t after)
{
    assert_int_equal(tz_utc_offset(tz, t - 1), before);
    assert_int_equal(tz_utc_offset(tz, t), after);
    int64_t until = 0;
    assert_int_equal(tz_utc_offset_until(tz, t - 3600, &until), before);
    assert_true(until > t - 3600 && until <= t);
}

/* A growable byte buffer for hand-built TZif files. */
typedef struct bb {
    unsigned char p[65536];
    size_t n;
} bb_t;

static void put(bb_t *b, const void *s, size_t n)
{
    assert_true(b->n + n <= sizeof b->p);
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void put32(bb_t *b, uint32_t v)
{
    unsigned char c[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    put(b, c, 4);
}

static void put64(bb_t *b, int64_t v)
{
    put32(b, (uint32_t)((uint64_t)v >> 32));
    put32(b, (uint32_t)(uint64_t)v);
}

typedef struct spec {
    char version; /* 0, '2', '3', '4' */
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
    const int64_t *times;
    const unsigned char *idx;
    const int32_t *utoff;
    const unsigned char *isdst;
    const char *chars;  /* charcnt bytes */
    const char *footer; /* NULL: "\n\n" for v2+ */
} spec_t;

static void header(bb_t *b, const spec_t *s)
{
    put(b, "TZif", 4);
    unsigned char v = (unsigned char)s->version;
    put(b, &v, 1);
    static const unsigned char zero[15];
    put(b, zero, 15);
    put32(b, s->isutcnt);
    put32(b, s->isstdcnt);
    put32(b, s->leapcnt);
    put32(b, s->timecnt);
    put32(b, s->typecnt);
    put32(b, s->charcnt);
}

/* The data block for a spec whose counts match its arrays. */
static void block(bb_t *b, const spec_t *s, int tsize)
{
    for (uint32_t i = 0; i < s->timecnt; i++) {
        if (tsize == 8)
            put64(b, s->times[i]);
        else
            put32(b, (uint32_t)(int32_t)s->times[i]);
    }
    if (s->timecnt) put(b, s->idx, s->timecnt);
    for (uint32_t i = 0; i < s->typecnt; i++) {
        put32(b, (uint32_t)s->utoff[i]);
        unsigned char c[2] = {s->isdst ? s->isdst[i] : 0, 0};
        put(b, c, 2);
    }
    put(b, s->chars, s->charcnt);
    for (uint32_t i = 0; i < s->isstdcnt + s->isutcnt; i++)
        put(b, "\0", 1);
}

/* A whole file: v1 -> one block; v2+ -> a v1 block with the same data (times
 * that fit 32 bits), the 64-bit block and the footer. */
static void build(bb_t *b, const spec_t *s)
{
    b->n = 0;
    header(b, s);
    block(b, s, 4);
    if (s->version) {
        header(b, s);
        block(b, s, 8);
        put(b, "\n", 1);
        if (s->footer) put(b, s->footer, strlen(s->footer));
        put(b, "\n", 1);
    }
}

static const int64_t two_times[2] = {1000000000, 1100000000};
static const unsigned char two_idx[2] = {1, 0};
static const int32_t two_utoff[2] = {3600, 7200};
static const unsigned char two_dst[2] = {0, 1};

static spec_t good_spec(char version)
{
    spec_t s = {version,      2,   2, 0, 2, 2, 8, two_times, two_idx, two_utoff, two_dst,
                "AAA\0BBB\0", NULL};
    return s;
}

static void expect_error(const unsigned char *data, size_t len, int want, const char *needle)
{
    char err[256] = "";
    tz_t *tz = (tz_t *)&err; /* must be reset to NULL */
    int rc = tz_load_buffer("Test/Zone", data, len, &tz, err, sizeof err);
    if (rc != want || !strstr(err, needle))
        fprintf(stderr, "rc %d (want %d), err \"%s\" (want \"%s\")\n", rc, want, err, needle);
    assert_int_equal(rc, want);
    assert_null(tz);
    assert_non_null(strstr(err, needle));
    assert_non_null(strstr(err, "Test/Zone"));
}

/* ---- calendar ------------------------------------------------------------- */

static void test_civil(void **state)
{
    (void)state;
    assert_int_equal(tz_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(tz_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(tz_days_from_civil(1969, 12, 31), -1);
    assert_int_equal(tz_days_from_civil(1, 1, 1), -719162);
    assert_int_equal(tz_days_from_civil(0, 3, 1), -719468);
    assert_int_equal(tz_days_from_civil(-1, 12, 31), -719529);
    /* month and day carry */
    assert_int_equal(tz_days_from_civil(2026, 13, 1), tz_days_from_civil(2027, 1, 1));
    assert_int_equal(tz_days_from_civil(2026, 0, 1), tz_days_from_civil(2025, 12, 1));
    assert_int_equal(tz_days_from_civil(2026, -11, 1), tz_days_from_civil(2025, 1, 1));
    assert_int_equal(tz_days_from_civil(2026, 1, 32), tz_days_from_civil(2026, 2, 1));
    assert_int_equal(tz_days_from_civil(2026, 3, 0), tz_days_from_civil(2026, 2, 28));
    assert_int_equal(tz_days_from_civil(2024, 3, 0), tz_days_from_civil(2024, 2, 29));

    /* round trip over ~5500 years either side, and far out */
    int64_t prev_y = 0;
    int prev_m = 0, prev_d = 0;
    for (int64_t z = -2000000; z <= 2000000; z++) {
        int64_t y;
        int m, d;
        tz_civil_from_days(z, &y, &m, &d);
        assert_true(m >= 1 && m <= 12 && d >= 1 && d <= tz_days_in_month(y, m));
        assert_int_equal(tz_days_from_civil(y, m, d), z);
        if (z > -2000000) { /* the next day after the previous one */
            bool next = (y == prev_y && m == prev_m && d == prev_d + 1) ||
                        (y == prev_y && m == prev_m + 1 && d == 1 &&
                         prev_d == tz_days_in_month(prev_y, prev_m)) ||
                        (y == prev_y + 1 && m == 1 && d == 1 && prev_m == 12 && prev_d == 31);
            assert_true(next);
        }
        prev_y = y;
        prev_m = m;
        prev_d = d;
    }
    int64_t big[] = {INT64_C(365000000000), -INT64_C(365000000000), INT64_C(146097) * 1000003};
    for (size_t i = 0; i < sizeof big / sizeof *big; i++) {
        int64_t y;
        int m, d;
        tz_civil_from_days(big[i], &y, &m, &d);
        assert_int_equal(tz_days_from_civil(y, m, d), big[i]);
    }

    assert_true(tz_is_leap(2024));
    assert_true(tz_is_leap(2000));
    assert_true(tz_is_leap(1600));
    assert_true(tz_is_leap(0));
    assert_true(tz_is_leap(-4));
    assert_false(tz_is_leap(2100));
    assert_false(tz_is_leap(1900));
    assert_false(tz_is_leap(2026));
    assert_false(tz_is_leap(-1));
    assert_int_equal(tz_days_in_month(2024, 2), 29);
    assert_int_equal(tz_days_in_month(2100, 2), 28);
    assert_int_equal(tz_days_in_month(2000, 2), 29);
    assert_int_equal(tz_days_in_month(2026, 4), 30);
    assert_int_equal(tz_days_in_month(2026, 12), 31);
    assert_int_equal(tz_days_in_month(2026, 0), 0);
    assert_int_equal(tz_days_in_month(2026, 13), 0);

    assert_int_equal(tz_weekday(0), 4);                               /* Thursday */
    assert_int_equal(tz_weekday(tz_days_from_civil(2026, 3, 29)), 0); /* Sunday */
    assert_int_equal(tz_weekday(tz_days_from_civil(1969, 12, 28)), 0);
    assert_int_equal(tz_weekday(tz_days_from_civil(1, 1, 1)), 1); /* Monday */
    assert_int_equal(tz_weekday(-1), 3);

    assert_int_equal(tz_floor_div(7, 2), 3);
    assert_int_equal(tz_floor_div(-7, 2), -4);
    assert_int_equal(tz_floor_div(-8, 2), -4);
    assert_int_equal(tz_floor_div(-1, 86400), -1);
    assert_int_equal(tz_floor_div(0, 86400), 0);
    assert_int_equal(ts(2026, 3, 29, 1, 0, 0), 1774746000);
}

/* ---- names and loading ---------------------------------------------------- */

static void test_names(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "/etc/passwd",
                         "../etc/passwd",
                         "Europe/../../etc/passwd",
                         "Europe/..",
                         "Europe//Berlin",
                         "Europe/Berlin/",
                         "Europe/Ber lin",
                         "Europe/Berlin\n",
                         "Europe/Berlin.gz",
                         "Europe\\Berlin",
                         "Europe/Berlin;rm",
                         "Ëurope/Berlin"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char err[256] = "";
        tz_t *tz = NULL;
        assert_false(tz_name_ok(bad[i]));
        assert_int_equal(tz_load(bad[i], &tz, err, sizeof err), TZ_EINVAL);
        assert_null(tz);
        assert_non_null(strstr(err, "expected an IANA name"));
    }
    char longname[TZ_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_false(tz_name_ok(longname));
    longname[TZ_NAME_MAX] = '\0';
    assert_true(tz_name_ok(longname));
    assert_false(tz_name_ok(NULL));
    assert_true(tz_name_ok("America/Argentina/Buenos_Aires"));
    assert_true(tz_name_ok("Etc/GMT+5"));
    assert_true(tz_name_ok("Etc/GMT-14"));

    char err[256] = "";
    tz_t *tz = NULL;
    assert_int_equal(tz_load(NULL, &tz, err, sizeof err), TZ_EINVAL);
    assert_int_equal(tz_load("UTC", NULL, err, sizeof err), TZ_EINVAL);

    assert_int_equal(tz_load("Mars/Olympus_Mons", &tz, err, sizeof err), TZ_ENOENT);
    assert_null(tz);
    assert_non_null(strstr(err, "no such zone"));
    assert_int_equal(tz_load("Europe", &tz, err, sizeof err), TZ_ENOENT);
    assert_non_null(strstr(err, "not a regular file"));
    /* a leap-second file is refused with a reason */
    if (tz_load("right/Europe/Berlin", &tz, err, sizeof err) != TZ_ENOENT) {
        assert_null(tz);
        assert_non_null(strstr(err, "leap-second"));
    }
    /* err NULL or tiny is fine */
    assert_int_equal(tz_load("", &tz, NULL, 0), TZ_EINVAL);
    char tiny[4];
    assert_int_equal(tz_load("", &tz, tiny, sizeof tiny), TZ_EINVAL);
    assert_int_equal(strlen(tiny), 3);

    /* UTC is built in; Etc/GMT+5 is five hours WEST */
    const char *utc[] = {"UTC", "Etc/UTC"};
    for (size_t i = 0; i < 2; i++) {
        tz = load(utc[i]);
        tz_info_t info;
        tz_get_info(tz, &info);
        assert_string_equal(info.name, utc[i]);
        assert_int_equal(info.version, 0);
        assert_int_equal(info.transitions, 0);
        int64_t until = 0;
        assert_int_equal(tz_utc_offset_until(tz, 1774746000, &until), 0);
        assert_true(until == INT64_MAX);
        assert_int_equal(tz_utc_offset(tz, INT64_MIN), 0);
        tz_free(tz);
    }
    assert_int_equal(tz_utc_offset(NULL, 12345), 0);
    tz = load("Etc/GMT+5");
    assert_int_equal(tz_utc_offset(tz, 0), -18000);
    assert_int_equal(tz_utc_offset(tz, ts(2100, 6, 1, 0, 0, 0)), -18000);
    tz_free(tz);
    tz_free(NULL);
}

/* ---- real zones ------------------------------------------------------------- */

static void test_berlin(void **state)
{
    (void)state;
    tz_t *tz = load("Europe/Berlin");
    tz_info_t info;
    tz_get_info(tz, &info);
    assert_string_equal(info.name, "Europe/Berlin");
    assert_true(info.version >= 2);
    assert_true(info.transitions > 100);
    assert_string_equal(info.footer, "CET-1CEST,M3.5.0,M10.5.0/3");
    assert_true(tz_transition_at(tz, 0) < 0);
    assert_true(tz_transition_at(tz, info.transitions) == INT64_MIN);

    assert_int_equal(tz_utc_offset(tz, ts(2026, 1, 15, 12, 0, 0)), 3600);
    assert_int_equal(tz_utc_offset(tz, ts(2026, 7, 1, 12, 0, 0)), 7200);
    check_change(tz, ts(2026, 3, 29, 1, 0, 0), 3600, 7200);
    check_change(tz, ts(2026, 10, 25, 1, 0, 0), 7200, 3600);
    int64_t until = 0;
    assert_int_equal(tz_utc_offset_until(tz, ts(2026, 1, 15, 0, 0, 0), &until), 3600);
    assert_int_equal(until, ts(2026, 3, 29, 1, 0, 0));

    /* 1945: double summer time (+03) from May 24 to Sep 24 */
    check_change(tz, ts(1945, 5, 24, 0, 0, 0), 7200, 10800);
    check_change(tz, ts(1945, 9, 24, 0, 0, 0), 10800, 7200);
    /* local mean time before 1893-04-01: +00:53:28; before the first transition too */
    assert_int_equal(tz_utc_offset(tz, ts(1890, 1, 1, 0, 0, 0)), 3208);
    assert_int_equal(tz_utc_offset(tz, ts(1000, 1, 1, 0, 0, 0)), 3208);
    assert_int_equal(tz_utc_offset(tz, INT64_MIN), 3208);
    assert_int_equal(tz_utc_offset(tz, -TZ_CLAMP - 1), 3208);

    /* after the last transition (2037): the footer rule */
    check_change(tz, ts(2100, 3, 28, 1, 0, 0), 3600, 7200);
    check_change(tz, ts(2100, 10, 31, 1, 0, 0), 7200, 3600);
    assert_int_equal(tz_utc_offset_until(tz, ts(2100, 1, 1, 0, 0, 0), &until), 3600);
    assert_int_equal(until, ts(2100, 3, 28, 1, 0, 0));
    check_change(tz, ts(2400, 3, 26, 1, 0, 0), 3600, 7200); /* 2400 is leap */
    check_change(tz, ts(9999, 3, 28, 1, 0, 0), 3600, 7200); /* last Sunday of March 9999 */
    /* beyond the clamp (~35 million years) the offset at the bound holds */
    int64_t at_clamp = tz_utc_offset(tz, TZ_CLAMP);
    assert_true(at_clamp == 3600 || at_clamp == 7200);
    assert_int_equal(tz_utc_offset(tz, INT64_MAX), at_clamp);
    assert_int_equal(tz_utc_offset_until(tz, INT64_MAX - 5, &until), at_clamp);
    assert_true(until == INT64_MAX);
    tz_free(tz);
}

static void test_new_york(void **state)
{
    (void)state;
    tz_t *tz = load("America/New_York");
    tz_info_t info;
    tz_get_info(tz, &info);
    assert_string_equal(info.footer, "EST5EDT,M3.2.0,M11.1.0");
    check_change(tz, ts(2026, 3, 8, 7, 0, 0), -18000, -14400);
    check_change(tz, ts(2026, 11, 1, 6, 0, 0), -14400, -18000);
    check_change(tz, ts(2100, 3, 14, 7, 0, 0), -18000, -14400);
    check_change(tz, ts(2100, 11, 7, 6, 0, 0), -14400, -18000);
    /* 1883-11-18 12:03:58 local mean time -> EST */
    check_change(tz, ts(1883, 11, 18, 17, 0, 0), -17762, -18000);
    /* 1969 and 1970 (pre-epoch and around it) */
    check_change(tz, ts(1969, 4, 27, 7, 0, 0), -18000, -14400);
    assert_int_equal(tz_utc_offset(tz, 0), -18000);
    tz_free(tz);
}

static void test_lord_howe_chatham_kolkata(void **state)
{
    (void)state;
    tz_t *tz = load("Australia/Lord_Howe"); /* +10:30, +11 in summer: a 30-min DST */
    check_change(tz, ts(2026, 4, 4, 15, 0, 0), 39600, 37800);
    check_change(tz, ts(2026, 10, 3, 15, 30, 0), 37800, 39600);
    assert_int_equal(tz_utc_offset(tz, ts(2100, 1, 1, 0, 0, 0)), 39600);
    assert_int_equal(tz_utc_offset(tz, ts(2100, 7, 1, 0, 0, 0)), 37800);
    tz_free(tz);

    tz = load("Pacific/Chatham"); /* +12:45, +13:45 */
    check_change(tz, ts(2026, 4, 4, 14, 0, 0), 49500, 45900);
    check_change(tz, ts(2026, 9, 26, 14, 0, 0), 45900, 49500);
    assert_int_equal(tz_utc_offset(tz, ts(2150, 1, 1, 0, 0, 0)), 49500);
    tz_free(tz);

    tz = load("Asia/Kolkata");
    tz_info_t info;
    tz_get_info(tz, &info);
    assert_string_equal(info.footer, "IST-5:30");
    assert_int_equal(tz_utc_offset(tz, ts(2026, 6, 1, 0, 0, 0)), 19800);
    assert_int_equal(tz_utc_offset(tz, ts(2100, 6, 1, 0, 0, 0)), 19800);
    assert_int_equal(tz_utc_offset(tz, ts(1943, 6, 1, 0, 0, 0)), 23400); /* war time +06:30 */
    assert_int_equal(tz_utc_offset(tz, ts(1900, 6, 1, 0, 0, 0)), 19270); /* Madras time */
    int64_t until = 0;
    tz_utc_offset_until(tz, ts(2026, 6, 1, 0, 0, 0), &until);
    assert_true(until == INT64_MAX);
    tz_free(tz);
}

static void test_midnight_changes(void **state)
{
    (void)state;
    /* Santiago: DST starts at 24:00 on the first Saturday of September (no
     * local midnight on that Sunday) and ends at 24:00 (DST) on the first
     * Saturday of April; the file is TZif version 3 */
    tz_t *tz = load("America/Santiago");
    tz_info_t info;
    tz_get_info(tz, &info);
    assert_true(info.version >= 3);
    assert_string_equal(info.footer, "<-04>4<-03>,M9.1.6/24,M4.1.6/24");
    check_change(tz, ts(2026, 4, 5, 3, 0, 0), -10800, -14400);
    check_change(tz, ts(2026, 9, 6, 4, 0, 0), -14400, -10800);
    check_change(tz, ts(2100, 9, 5, 4, 0, 0), -14400, -10800); /* Sat 2100-09-04 24:00 */
    tz_free(tz);

    tz = load("Asia/Beirut"); /* EET-2EEST,M3.5.0/0,M10.5.0/0 */
    check_change(tz, ts(2026, 3, 28, 22, 0, 0), 7200, 10800);
    check_change(tz, ts(2026, 10, 24, 21, 0, 0), 10800, 7200);
    tz_free(tz);

    tz = load("America/Nuuk"); /* <-02>2<-01>,M3.5.0/-1,M10.5.0/0: negative rule time */
    tz_get_info(tz, &info);
    assert_string_equal(info.footer, "<-02>2<-01>,M3.5.0/-1,M10.5.0/0");
    /* last Sunday of March 2100 is the 28th; -1:00 local (-02) is Mar 27 23:00 -02 */
    check_change(tz, ts(2100, 3, 28, 1, 0, 0), -7200, -3600);
    check_change(tz, ts(2100, 10, 31, 1, 0, 0), -3600, -7200);
    tz_free(tz);

    tz = load("Pacific/Apia"); /* skipped 2011-12-30 entirely */
    check_change(tz, ts(2011, 12, 30, 10, 0, 0), -36000, 50400);
    tz_free(tz);
}

/* Every zone file of the system loads, with offsets inside the bounds. */
static int zones_ok, zones_skipped;

static int visit(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    const char *rel = path + strlen(TZ_ZONEINFO_DIR) + 1;
    if (flag != FTW_F || strncmp(rel, "right/", 6) == 0) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char magic[4] = "";
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    if (got != 4 || memcmp(magic, "TZif", 4) != 0) {
        zones_skipped++;
        return 0;
    }
    char err[256] = "";
    tz_t *tz = NULL;
    int rc = tz_load(rel, &tz, err, sizeof err);
    if (rc != TZ_OK) fprintf(stderr, "%s: %s\n", rel, err);
    assert_int_equal(rc, TZ_OK);
    for (int64_t t = ts(1800, 1, 1, 0, 0, 0); t < ts(2200, 1, 1, 0, 0, 0); t += 86400 * 97 + 3607) {
        int64_t until = 0, off = tz_utc_offset_until(tz, t, &until);
        assert_true(off >= TZ_MIN_UTOFF && off <= TZ_MAX_UTOFF);
        assert_true(until > t);
        if (until != INT64_MAX) assert_int_equal(tz_utc_offset(tz, until - 1), off);
    }
    tz_free(tz);
    zones_ok++;
    return 0;
}

static void test_all_system_zones(void **state)
{
    (void)state;
    zones_ok = zones_skipped = 0;
    assert_int_equal(nftw(TZ_ZONEINFO_DIR, visit, 16, FTW_PHYS), 0);
    assert_true(zones_ok > 300);
}

/* A version-1 file cut from a real one (32-bit data only) agrees with it
 * over the 32-bit range, and keeps the last type after its last transition. */
static void test_v1_from_real_file(void **state)
{
    (void)state;
    FILE *f = fopen(TZ_ZONEINFO_DIR "/Europe/Berlin", "rb");
    assert_non_null(f);
    static unsigned char buf[8192];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(n > 44 && n < sizeof buf);
    uint32_t c[6];
    for (int i = 0; i < 6; i++)
        c[i] = (uint32_t)buf[20 + 4 * i] << 24 | (uint32_t)buf[21 + 4 * i] << 16 |
               (uint32_t)buf[22 + 4 * i] << 8 | buf[23 + 4 * i];
    size_t v1 = 44 + c[3] * 5 + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0];
    buf[4] = 0;
    char err[256] = "";
    tz_t *v1tz = NULL, *full = load("Europe/Berlin");
    assert_int_equal(tz_load_buffer("Berlin-v1", buf, v1, &v1tz, err, sizeof err), TZ_OK);
    tz_info_t info;
    tz_get_info(v1tz, &info);
    assert_int_equal(info.version, 1);
    assert_string_equal(info.footer, "");
    for (int64_t t = INT32_MIN; t < INT32_MAX - 86400 * 30; t += 86400 * 13 + 1) {
        if (t < tz_transition_at(v1tz, 0)) continue; /* the 32-bit data starts at 1901 */
        assert_int_equal(tz_utc_offset(v1tz, t), tz_utc_offset(full, t));
    }
    assert_int_equal(tz_utc_offset(v1tz, ts(2100, 7, 1, 0, 0, 0)), 3600); /* no footer */
    tz_free(v1tz);
    tz_free(full);
}

/* ---- POSIX TZ strings ------------------------------------------------------ */

static tz_t *posix(const char *s)
{
    char err[256] = "";
    tz_t *tz = NULL;
    int rc = tz_load_posix(s, &tz, err, sizeof err);
    if (rc != TZ_OK) fprintf(stderr, "%s: %s\n", s, err);
    assert_int_equal(rc, TZ_OK);
    return tz;
}

static void test_posix_strings(void **state)
{
    (void)state;
    tz_t *tz = posix("UTC0");
    assert_int_equal(tz_utc_offset(tz, 0), 0);
    tz_free(tz);
    tz = posix("<+0330>-3:30");
    assert_int_equal(tz_utc_offset(tz, ts(2026, 1, 1, 0, 0, 0)), 12600);
    tz_info_t info;
    tz_get_info(tz, &info);
    assert_string_equal(info.footer, "<+0330>-3:30");
    assert_int_equal(info.version, 0);
    tz_free(tz);
    tz = posix("<-0230>+2:30:15");
    assert_int_equal(tz_utc_offset(tz, 0), -9015);
    tz_free(tz);

    /* no rule: the US default M3.2.0,M11.1.0 */
    tz = posix("EST5EDT");
    check_change(tz, ts(2026, 3, 8, 7, 0, 0), -18000, -14400);
    check_change(tz, ts(2026, 11, 1, 6, 0, 0), -14400, -18000);
    tz_free(tz);
    /* an explicit DST offset, 30 minutes */
    tz = posix("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0");
    check_change(tz, ts(2026, 10, 3, 15, 30, 0), 37800, 39600);
    tz_free(tz);

    /* Jn: Feb 29 never counted, J60 is always March 1 */
    tz = posix("AAA0BBB,J60/0,J300/0");
    check_change(tz, ts(2024, 3, 1, 0, 0, 0), 0, 3600);
    check_change(tz, ts(2023, 3, 1, 0, 0, 0), 0, 3600);
    check_change(tz, ts(2024, 10, 26, 23, 0, 0), 3600, 0); /* J300 = Oct 27 */
    tz_free(tz);
    /* n: zero-based, Feb 29 counted: day 59 is Feb 29 in a leap year */
    tz = posix("AAA0BBB,59/0,299/0");
    check_change(tz, ts(2024, 2, 29, 0, 0, 0), 0, 3600);
    check_change(tz, ts(2023, 3, 1, 0, 0, 0), 0, 3600);
    check_change(tz, ts(2024, 10, 25, 23, 0, 0), 3600, 0); /* day 299 of 2024 = Oct 26 */
    check_change(tz, ts(2023, 10, 26, 23, 0, 0), 3600, 0); /* day 299 of 2023 = Oct 27 */
    check_change(tz, ts(2100, 3, 1, 0, 0, 0), 0, 3600);    /* 2100: not leap */
    tz_free(tz);

    /* DST all year: an end and a start at the same instant leave DST on */
    tz = posix("EST5EDT,0/0,J365/25");
    for (int64_t y = 2020; y < 2030; y++) {
        int64_t jan1 = ts(y, 1, 1, 5, 0, 0);
        assert_int_equal(tz_utc_offset(tz, jan1 - 1), -14400);
        assert_int_equal(tz_utc_offset(tz, jan1), -14400);
        assert_int_equal(tz_utc_offset(tz, jan1 + 86400 * 180), -14400);
    }
    tz_free(tz);

    /* rule times up to 167 h, and negative */
    tz = posix("AAA0BBB,M3.1.0/167,M10.1.0/-1");
    /* first Sunday of March 2026 is the 1st; + 167 h = Mar 7 23:00 */
    check_change(tz, ts(2026, 3, 7, 23, 0, 0), 0, 3600);
    /* first Sunday of October 2026 is the 4th; -1 h local (+1) = Oct 3 22:00Z */
    check_change(tz, ts(2026, 10, 3, 22, 0, 0), 3600, 0);
    tz_free(tz);
    /* southern hemisphere: DST across the new year */
    tz = posix("AEST-10AEDT,M10.1.0,M4.1.0/3");
    assert_int_equal(tz_utc_offset(tz, ts(2026, 12, 31, 23, 59, 59)), 39600);
    assert_int_equal(tz_utc_offset(tz, ts(2027, 1, 1, 0, 0, 0)), 39600);
    assert_int_equal(tz_utc_offset(tz, ts(2026, 7, 1, 0, 0, 0)), 36000);
    tz_free(tz);
    /* week 5 = last: October 2026 has four Saturdays after the 3rd... the
     * last Saturday is Oct 31 */
    tz = posix("AAA0BBB,M3.5.6/0,M10.5.6/0");
    check_change(tz, ts(2026, 10, 30, 23, 0, 0), 3600, 0);
    check_change(tz, ts(2026, 3, 28, 0, 0, 0), 0, 3600);
    tz_free(tz);

    const struct {
        const char *s, *msg;
    } bad[] = {
        {"", "standard time name"},
        {"AB0", "standard time name"},
        {"ABC", "standard time offset"},
        {"ABC+", "standard time offset"},
        {"ABC1:60", "standard time offset"},
        {"ABC26", "standard time offset"},
        {"ABC-26", "standard time offset"},
        {"ABC1234", "standard time offset"},
        {"<AB>0", "standard time name"},
        {"<ABC0", "standard time name"},
        {"<A B>0", "standard time name"},
        {"ABC0D", "daylight time name"},
        {"ABC0DEF26", "daylight time offset"},
        {"ABC-25DEF", "daylight time offset out of range"},
        {"ABC0DEF,M13.1.0,M1.1.0", "DST start rule"},
        {"ABC0DEF,M0.1.0,M1.1.0", "DST start rule"},
        {"ABC0DEF,M3.6.0,M10.1.0", "DST start rule"},
        {"ABC0DEF,M3.0.0,M10.1.0", "DST start rule"},
        {"ABC0DEF,M3.1.7,M10.1.0", "DST start rule"},
        {"ABC0DEF,M3.1,M10.1.0", "DST start rule"},
        {"ABC0DEF,J0,J365", "DST start rule"},
        {"ABC0DEF,J366,J365", "DST start rule"},
        {"ABC0DEF,366,1", "DST start rule"},
        {"ABC0DEF,M3.2.0/168,M11.1.0", "DST start rule"},
        {"ABC0DEF,M3.2.0/2:60,M11.1.0", "DST start rule"},
        {"ABC0DEF,M3.2.0", "DST end rule"},
        {"ABC0DEF,M3.2.0,", "DST end rule"},
        {"ABC0DEF,M3.2.0,M11.1.0x", "unexpected 'x'"},
        {"ABC0DEF,M3.2.0,M11.1.0,", "unexpected ','"},
        {"ABC0 ", "daylight time name"},
        {"ABC0DEF;M3.2.0,M11.1.0", "daylight time offset"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char err[256] = "";
        tz = (tz_t *)&err;
        int rc = tz_load_posix(bad[i].s, &tz, err, sizeof err);
        if (rc != TZ_EFORMAT || !strstr(err, bad[i].msg))
            fprintf(stderr, "\"%s\": rc %d err \"%s\" (want \"%s\")\n", bad[i].s, rc, err,
                    bad[i].msg);
        assert_int_equal(rc, TZ_EFORMAT);
        assert_null(tz);
        assert_non_null(strstr(err, bad[i].msg));
    }
    char longs[TZ_MAX_FOOTER + 8];
    memset(longs, 'A', sizeof longs - 1);
    longs[sizeof longs - 1] = '\0';
    char err[256];
    assert_int_equal(tz_load_posix(longs, &tz, err, sizeof err), TZ_EFORMAT);
    assert_non_null(strstr(err, "longer than"));
    assert_int_equal(tz_load_posix(NULL, &tz, err, sizeof err), TZ_EINVAL);
}

/* ---- hand-built TZif files -------------------------------------------------- */

static void test_tzif_good(void **state)
{
    (void)state;
    static bb_t b;
    const char versions[] = {0, '2', '3', '4'};
    for (size_t v = 0; v < sizeof versions; v++) {
        spec_t s = good_spec(versions[v]);
        build(&b, &s);
        char err[256] = "";
        tz_t *tz = NULL;
        assert_int_equal(tz_load_buffer("Test/Good", b.p, b.n, &tz, err, sizeof err), TZ_OK);
        tz_info_t info;
        tz_get_info(tz, &info);
        assert_int_equal(info.version, v ? versions[v] - '0' : 1);
        assert_int_equal(info.transitions, 2);
        assert_int_equal(info.types, 2);
        assert_string_equal(info.footer, "");
        assert_int_equal(tz_transition_at(tz, 1), 1100000000);
        /* type 0 before the first transition; the new type exactly at one */
        assert_int_equal(tz_utc_offset(tz, 999999999), 3600);
        assert_int_equal(tz_utc_offset(tz, 1000000000), 7200);
        assert_int_equal(tz_utc_offset(tz, 1099999999), 7200);
        assert_int_equal(tz_utc_offset(tz, 1100000000), 3600);
        /* no footer: the last type stays */
        int64_t until = 0;
        assert_int_equal(tz_utc_offset_until(tz, 1100000000, &until), 3600);
        assert_true(until == INT64_MAX);
        assert_int_equal(tz_utc_offset_until(tz, 0, &until), 3600);
        assert_int_equal(until, 1000000000);
        tz_free(tz);
    }

    /* a footer takes over after the last transition, also with 64-bit times
     * beyond 2038 and no transition at all */
    static const int64_t far[2] = {-INT64_C(576460752303423488), INT64_C(4102444800)};
    spec_t s = good_spec('2');
    s.times = far;
    s.footer = "AAA-1BBB,M3.5.0,M10.5.0/3";
    build(&b, &s);
    tz_t *tz = NULL;
    assert_int_equal(tz_load_buffer("Test/Far", b.p, b.n, &tz, NULL, 0), TZ_OK);
    assert_int_equal(tz_utc_offset(tz, 0), 7200);                       /* type 1 from -2^59 */
    assert_int_equal(tz_utc_offset(tz, ts(2100, 1, 1, 0, 0, 0)), 3600); /* footer, winter */
    assert_int_equal(tz_utc_offset(tz, ts(2100, 7, 1, 0, 0, 0)), 7200); /* footer, summer */
    tz_free(tz);
    s = good_spec('2');
    s.timecnt = 0;
    s.footer = "<+0545>-5:45";
    build(&b, &s);
    assert_int_equal(tz_load_buffer("Test/Kathmandu", b.p, b.n, &tz, NULL, 0), TZ_OK);
    assert_int_equal(tz_utc_offset(tz, 0), 20700);
    assert_int_equal(tz_utc_offset(tz, INT64_MIN), 20700);
    tz_free(tz);

    /* TZ_MAX_TRANSITIONS is accepted; one more is not */
    static int64_t many[TZ_MAX_TRANSITIONS + 1];
    static unsigned char many_idx[TZ_MAX_TRANSITIONS + 1];
    for (int i = 0; i <= TZ_MAX_TRANSITIONS; i++) {
        many[i] = (int64_t)i * 1000;
        many_idx[i] = (unsigned char)(i & 1);
    }
    for (int extra = 0; extra < 2; extra++) {
        s = good_spec('2');
        s.times = many;
        s.idx = many_idx;
        s.timecnt = (uint32_t)(TZ_MAX_TRANSITIONS + extra);
        build(&b, &s);
        char err[256] = "";
        int rc = tz_load_buffer("Test/Many", b.p, b.n, &tz, err, sizeof err);
        if (extra == 0) {
            assert_int_equal(rc, TZ_OK);
            assert_int_equal(tz_utc_offset(tz, 1500), 7200);
            assert_int_equal(tz_utc_offset(tz, 1999999), 7200); /* transition 1999: type 1 */
            assert_int_equal(tz_utc_offset(tz, 1998999), 3600);
            tz_free(tz);
        } else {
            assert_int_equal(rc, TZ_EFORMAT);
            assert_non_null(strstr(err, "timecnt 2001 over the limit of 2000"));
        }
    }
}

static void test_tzif_errors(void **state)
{
    (void)state;
    static bb_t b;
    spec_t s;

    expect_error((const unsigned char *)"", 0, TZ_EFORMAT, "truncated header");
    expect_error((const unsigned char *)"TZif2", 5, TZ_EFORMAT, "truncated header");
    s = good_spec('2');
    build(&b, &s);
    memcpy(b.p, "TZic", 4);
    expect_error(b.p, b.n, TZ_EFORMAT, "no TZif magic at byte 0");
    b.p[3] = 'f';
    b.p[4] = '5';
    expect_error(b.p, b.n, TZ_EFORMAT, "unsupported TZif version");
    b.p[4] = '1';
    expect_error(b.p, b.n, TZ_EFORMAT, "unsupported TZif version");
    b.p[4] = '2';

    /* the second header */
    size_t v1end = 44 + 2 * 5 + 2 * 6 + 8 + 4;
    b.p[v1end] = 'X';
    expect_error(b.p, b.n, TZ_EFORMAT, "no TZif magic at byte 78");
    expect_error(b.p, v1end + 10, TZ_EFORMAT, "truncated header at byte 78");

    /* counts */
    s = good_spec('2');
    s.typecnt = 0;
    build(&b, &s);
    expect_error(b.p, b.n, TZ_EFORMAT, "typecnt 0 out of range");
    s = good_spec(0);
    s.typecnt = 257;
    s.isstdcnt = s.isutcnt = 0;
    b.n = 0;
    header(&b, &s);
    expect_error(b.p, b.n, TZ_EFORMAT, "typecnt 257 out of range");
    s = good_spec(0);
    s.timecnt = TZ_MAX_TRANSITIONS + 1;
    b.n = 0;
    header(&b, &s);
    expect_error(b.p, b.n, TZ_EFORMAT, "timecnt 2001 over the limit");
    s = good_spec(0);
    s.charcnt = 0;
    b.n = 0;
    header(&b, &s);
    expect_error(b.p, b.n, TZ_EFORMAT, "charcnt 0 out of range");
    s.charcnt = TZ_MAX_CHARS + 1;
    b.n = 0;
    header(&b, &s);
    expect_error(b.p, b.n, TZ_EFORMAT, "charcnt 1025 out of range");
    s = good_spec(0);
    s.isutcnt = 1;
    b.n = 0;
    header(&b, &s);
    expect_error(b.p, b.n, TZ_EFORMAT, "isutcnt 1 is neither 0 nor typecnt 2");
    s = good_spec(0);
    s.isstdcnt = 3;
    b.n = 0;
    header(&b, &s);
    expect_error(b.p, b.n, TZ_EFORMAT, "isstdcnt 3 is neither 0 nor typecnt 2");
    s = good_spec(0);
    s.leapcnt = 1;
    b.n = 0;
    header(&b, &s);
    expect_error(b.p, b.n, TZ_EFORMAT, "leap-second zone files are not supported");

    /* counts beyond the data */
    s = good_spec(0);
    build(&b, &s);
    expect_error(b.p, b.n - 1, TZ_EFORMAT, "counts need 34 bytes of data, the file has 33");
    s = good_spec(0);
    s.timecnt = 2000;
    b.n = 0;
    header(&b, &s);
    expect_error(b.p, b.n, TZ_EFORMAT, "counts need 10024 bytes of data, the file has 0");
    s = good_spec('2');
    build(&b, &s);
    expect_error(b.p, v1end + 44 + 10, TZ_EFORMAT, "64-bit counts need 42 bytes of data, 10 left");

    /* data */
    static const int64_t desc[2] = {1100000000, 1000000000};
    s = good_spec('2');
    s.times = desc;
    build(&b, &s);
    expect_error(b.p, b.n, TZ_EFORMAT, "transition 1 is not after transition 0");
    static const int64_t same[2] = {1000000000, 1000000000};
    s.times = same;
    build(&b, &s);
    expect_error(b.p, b.n, TZ_EFORMAT, "transition 1 is not after transition 0");
    static const unsigned char bad_idx[2] = {0, 2};
    s = good_spec('2');
    s.idx = bad_idx;
    build(&b, &s);
    expect_error(b.p, b.n, TZ_EFORMAT, "transition 1 has type 2 of 2");
    static const int32_t big_off[2] = {3600, 93600};
    s = good_spec('3');
    s.utoff = big_off;
    build(&b, &s);
    expect_error(b.p, b.n, TZ_EFORMAT, "type 1: UT offset 93600 s out of range");
    static const int32_t min_off[2] = {INT32_MIN, 0};
    s.utoff = min_off;
    build(&b, &s);
    expect_error(b.p, b.n, TZ_EFORMAT, "type 0: UT offset -2147483648 s out of range");
    static const int32_t edge_off[2] = {TZ_MIN_UTOFF, TZ_MAX_UTOFF};
    s.utoff = edge_off;
    build(&b, &s);
    tz_t *tz = NULL;
    assert_int_equal(tz_load_buffer("Test/Edge", b.p, b.n, &tz, NULL, 0), TZ_OK);
    assert_int_equal(tz_utc_offset(tz, 0), TZ_MIN_UTOFF);
    assert_int_equal(tz_utc_offset(tz, 1000000000), TZ_MAX_UTOFF);
    tz_free(tz);
    static const unsigned char bad_dst[2] = {0, 2};
    s = good_spec('2');
    s.isdst = bad_dst;
    build(&b, &s);
    expect_error(b.p, b.n, TZ_EFORMAT, "type 1: isdst 2 is not 0 or 1");
    /* designation indexes are 0 in build(): set type 1's to 8 by hand */
    s = good_spec('2');
    build(&b, &s);
    size_t ttinfo64 = v1end + 44 + 2 * 9;
    b.p[ttinfo64 + 6 + 5] = 8;
    expect_error(b.p, b.n, TZ_EFORMAT, "type 1: designation index 8 beyond 8 bytes");
    s = good_spec('2');
    s.chars = "AAA\0BBBB";
    build(&b, &s);
    expect_error(b.p, b.n, TZ_EFORMAT, "designations are not NUL-terminated");
    s = good_spec('2');
    build(&b, &s);
    b.p[b.n - 2 - 1] = 2; /* the last UT indicator */
    expect_error(b.p, b.n, TZ_EFORMAT, "standard/UT indicator 2 is not 0 or 1");

    /* footer */
    s = good_spec('2');
    build(&b, &s);
    expect_error(b.p, b.n - 2, TZ_EFORMAT, "no footer after the 64-bit data");
    b.p[b.n - 2] = 'x';
    expect_error(b.p, b.n, TZ_EFORMAT, "no footer after the 64-bit data");
    s.footer = "CET-1";
    build(&b, &s);
    expect_error(b.p, b.n - 1, TZ_EFORMAT, "footer is not terminated by a newline");
    static char longf[TZ_MAX_FOOTER + 2];
    memset(longf, 'A', sizeof longf - 1);
    s.footer = longf;
    build(&b, &s);
    expect_error(b.p, b.n, TZ_EFORMAT, "footer longer than 256 bytes");
    s.footer = "CET-1CEST,M3.5.0,M13.5.0/3";
    build(&b, &s);
    expect_error(b.p, b.n, TZ_EFORMAT,
                 "footer TZ string \"CET-1CEST,M3.5.0,M13.5.0/3\": bad DST "
                 "end rule at offset 16");
    s.footer = "CET-1";
    build(&b, &s);
    b.p[b.n - 3] = '\0';
    expect_error(b.p, b.n, TZ_EFORMAT, "NUL byte in the footer");
    s.footer = "CET-1";
    build(&b, &s);
    put(&b, "junk", 4);
    expect_error(b.p, b.n, TZ_EFORMAT, "4 unexpected bytes after the data");
    s = good_spec(0);
    build(&b, &s);
    put(&b, "\nCET-1\n", 7);
    expect_error(b.p, b.n, TZ_EFORMAT, "7 unexpected bytes after the data");

    /* size and arguments */
    unsigned char *huge = calloc(1, TZ_MAX_FILE + 1);
    assert_non_null(huge);
    memcpy(huge, b.p, b.n);
    expect_error(huge, TZ_MAX_FILE + 1, TZ_EFORMAT, "over the limit of 1048576");
    free(huge);
    char err[64];
    assert_int_equal(tz_load_buffer("x", NULL, 5, &tz, err, sizeof err), TZ_EINVAL);
    assert_int_equal(tz_load_buffer("x", b.p, b.n, NULL, err, sizeof err), TZ_EINVAL);
    /* a NULL name is named "(buffer)" in messages */
    assert_int_equal(tz_load_buffer(NULL, b.p, 3, &tz, err, sizeof err), TZ_EFORMAT);
    assert_non_null(strstr(err, "(buffer)"));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_civil),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_berlin),
        cmocka_unit_test(test_new_york),
        cmocka_unit_test(test_lord_howe_chatham_kolkata),
        cmocka_unit_test(test_midnight_changes),
        cmocka_unit_test(test_all_system_zones),
        cmocka_unit_test(test_v1_from_real_file),
        cmocka_unit_test(test_posix_strings),
        cmocka_unit_test(test_tzif_good),
        cmocka_unit_test(test_tzif_errors),
    };
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
