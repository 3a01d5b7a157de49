/*
 * fuzz_tz.c — libFuzzer harness for src/limits/tz and src/limits/window.
 *
 * The input is a TZif file (tz_load_buffer) when it starts with "TZif",
 * else a POSIX TZ string (tz_load_posix, up to the first NUL).  A load
 * either fails with a message or gives a zone, which is then queried at
 * fixed instants (1900, 1970, 2026, 2100, the window range limits), at
 * three instants taken from the input's last 24 bytes, and around its
 * first and last transitions.  Invariants:
 *   - a failed load leaves *out NULL and a non-empty message; a second load
 *     of the same bytes gives the same result;
 *   - offsets are within [TZ_MIN_UTOFF, TZ_MAX_UTOFF] (under +-26 h); the
 *     span from tz_utc_offset_until is non-empty and the offset at its last
 *     second is the same;
 *   - lim_window_at is OK inside [LIM_WIN_T_MIN, LIM_WIN_T_MAX) (ERANGE
 *     only at the far edges, where a key year could leave 1..9999), with
 *     start <= t < end, lengths of 60 s (minute), at most 24 h + 52 h
 *     (day), at most 31 days + 52 h (month); the key is non-empty; the
 *     window at start (when in range) and at end - 1 is the same one; the
 *     window at end starts at end and has a greater key (day, month).
 * A violated invariant calls abort() so libFuzzer records the input.
 * Seeds: fuzz/corpus/fuzz_tz/ (small system zone files); dictionary:
 * fuzz/fuzz_tz.dict.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limits/tz.h"
#include "limits/window.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define H 3600
#define D 86400

static void check_offset(const tz_t *tz, int64_t t)
{
    int64_t until = 0;
    int64_t off = tz_utc_offset_until(tz, t, &until);
    CHECK(off >= TZ_MIN_UTOFF && off <= TZ_MAX_UTOFF);
    CHECK(off > -26 * H && off < 26 * H);
    CHECK(until > t || until == INT64_MAX);
    CHECK(tz_utc_offset(tz, t) == off);
    if (until != INT64_MAX) CHECK(tz_utc_offset(tz, until - 1) == off);
}

static bool same(const lim_span_t *a, const lim_span_t *b)
{
    return a->start == b->start && a->end == b->end && strcmp(a->key, b->key) == 0;
}

static bool near_edge(int64_t t)
{
    return t < LIM_WIN_T_MIN + 40 * D || t >= LIM_WIN_T_MAX - 40 * D;
}

static void check_window(const tz_t *tz, lim_window_t kind, int64_t t)
{
    lim_span_t w, a, b, n;
    int rc = lim_window_at(tz, kind, t, &w);
    if (t < LIM_WIN_T_MIN || t >= LIM_WIN_T_MAX) {
        CHECK(rc == LIM_WIN_ERANGE);
        return;
    }
    CHECK(rc == LIM_WIN_OK || (rc == LIM_WIN_ERANGE && near_edge(t)));
    if (rc != LIM_WIN_OK) return;
    CHECK(w.start <= t && t < w.end);
    CHECK(w.key[0] != '\0' && memchr(w.key, '\0', sizeof w.key) != NULL);
    int64_t len = w.end - w.start;
    if (kind == LIM_WIN_MINUTE)
        CHECK(len == 60);
    else if (kind == LIM_WIN_DAY)
        CHECK(len > 0 && len <= 24 * H + 52 * H);
    else
        CHECK(len > 0 && len <= 31 * D + 52 * H);
    /* a window may begin before LIM_WIN_T_MIN or end after LIM_WIN_T_MAX */
    if (w.start >= LIM_WIN_T_MIN)
        CHECK(lim_window_at(tz, kind, w.start, &a) == LIM_WIN_OK && same(&a, &w));
    if (w.end - 1 < LIM_WIN_T_MAX)
        CHECK(lim_window_at(tz, kind, w.end - 1, &b) == LIM_WIN_OK && same(&b, &w));
    rc = lim_window_at(tz, kind, w.end, &n);
    if (w.end < LIM_WIN_T_MAX) CHECK(rc == LIM_WIN_OK || near_edge(w.end));
    if (rc == LIM_WIN_OK) {
        CHECK(n.start == w.end);
        if (kind != LIM_WIN_MINUTE) CHECK(strcmp(n.key, w.key) > 0);
    }
}

static void check_all(const tz_t *tz, int64_t t)
{
    check_offset(tz, t);
    check_window(tz, LIM_WIN_MINUTE, t);
    check_window(tz, LIM_WIN_DAY, t);
    check_window(tz, LIM_WIN_MONTH, t);
}

static int load(const uint8_t *data, size_t size, tz_t **tz, char *err, size_t errlen)
{
    if (size >= 4 && memcmp(data, "TZif", 4) == 0)
        return tz_load_buffer("fuzz", data, size, tz, err, errlen);
    size_t n = 0;
    while (n < size && n < 512 && data[n])
        n++;
    char spec[513];
    memcpy(spec, data, n);
    spec[n] = '\0';
    return tz_load_posix(spec, tz, err, errlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size heap copy, so ASan sees any over-read */
    uint8_t *copy = malloc(size ? size : 1);
    CHECK(copy != NULL);
    if (size) memcpy(copy, data, size);

    char err[256] = "", err2[256] = "";
    tz_t *tz = (tz_t *)err, *tz2 = (tz_t *)err;
    int rc = load(copy, size, &tz, err, sizeof err);
    int rc2 = load(copy, size, &tz2, err2, sizeof err2);
    CHECK(rc == rc2);
    if (rc != TZ_OK) {
        CHECK(tz == NULL && tz2 == NULL);
        CHECK(err[0] != '\0' && strcmp(err, err2) == 0);
        free(copy);
        return 0;
    }
    CHECK(tz != NULL && tz2 != NULL);
    tz_info_t info;
    tz_get_info(tz, &info);
    CHECK(info.types >= 1 && info.types <= 256);
    CHECK(info.transitions <= TZ_MAX_TRANSITIONS);
    for (size_t i = 1; i < info.transitions; i++)
        CHECK(tz_transition_at(tz, i - 1) < tz_transition_at(tz, i));

    static const int64_t fixed[] = {
        -2208988800, /* 1900 */
        -1,
        0,
        1774746000, /* 2026-03-29T01:00Z */
        4102444800, /* 2100 */
        LIM_WIN_T_MIN,
        LIM_WIN_T_MAX - 1,
        LIM_WIN_T_MIN - 1,
        LIM_WIN_T_MAX,
        INT64_MIN,
        INT64_MAX,
    };
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
        check_all(tz, fixed[i]);
        CHECK(tz_utc_offset(tz, fixed[i]) == tz_utc_offset(tz2, fixed[i]));
    }
    if (size >= 24) {
        for (int k = 0; k < 3; k++) {
            uint64_t u = 0;
            memcpy(&u, copy + size - 24 + 8 * k, 8);
            /* mostly inside the window range, sometimes anywhere */
            int64_t t =
                (u & 1) ? (int64_t)u
                        : LIM_WIN_T_MIN + (int64_t)(u % (uint64_t)(LIM_WIN_T_MAX - LIM_WIN_T_MIN));
            check_all(tz, t);
        }
    }
    for (size_t i = 0; i < info.transitions && i < 4; i++) {
        int64_t t = tz_transition_at(tz, i);
        int64_t s = tz_transition_at(tz, info.transitions - 1 - i);
        for (int64_t d = -1; d <= 1; d++) {
            if ((d < 0 && t > INT64_MIN) || (d > 0 && t < INT64_MAX) || d == 0)
                check_all(tz, t + d);
            if ((d < 0 && s > INT64_MIN) || (d > 0 && s < INT64_MAX) || d == 0)
                check_all(tz, s + d);
        }
    }
    tz_free(tz);
    tz_free(tz2);
    free(copy);
    return 0;
}
