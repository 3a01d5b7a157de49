/*
 * tz — time zones read from the system's TZif files, without the C
 * library's TZ / localtime machinery (which is process-global and not
 * thread-safe).  A loaded zone is an immutable value: any number of threads
 * may query it at once.
 *
 * Sources:
 *   tz_load()         "UTC" and "Etc/UTC" are built in (no file needed);
 *                     any other IANA name ("Europe/Berlin") is read from
 *                     TZ_ZONEINFO_DIR/<name>.  A name is 1..TZ_NAME_MAX
 *                     bytes of [A-Za-z0-9_+-/], with no leading, trailing
 *                     or doubled '/' and no "..".
 *   tz_load_buffer()  the bytes of a TZif file (tests, the fuzzer).
 *   tz_load_posix()   a POSIX TZ string alone ("CET-1CEST,M3.5.0,M10.5.0/3").
 *
 * TZif (RFC 9636, versions 1 to 4): the 64-bit data block of version 2+
 * files is used (the 32-bit block is skipped); version 1 files use the
 * 32-bit block.  The footer's TZ string (v2+) gives the offset after the
 * last transition; with no footer (v1, or an empty one) the last
 * transition's type stays in force.  Before the first transition, and at
 * all times for a file with no transition and no footer, type 0 applies.
 * Leap-second files ("right/...") are refused: their transition times are
 * not POSIX times.
 *
 * POSIX TZ strings: std offset [dst [offset] [,start[/time],end[/time]]];
 * names alphabetic (3+) or quoted <...> ([A-Za-z0-9+-], 3+); offsets
 * [+-]hh[:mm[:ss]], positive WEST of Greenwich as POSIX says; dst defaults
 * to one hour ahead of std; dates Jn (1..365, Feb 29 never counted), n
 * (0..365, Feb 29 counted) or Mm.w.d (d-th weekday, 0 = Sunday, of week w,
 * 5 = last, of month m); times [+-]hh[:mm[:ss]] with hh up to 167 (the
 * RFC 9636 extension), default 02:00:00.  A dst with no rule takes the US
 * rule M3.2.0,M11.1.0 (as tzcode does).  Rules with DST all year
 * ("EST5EDT,0/0,J365/25") work: an end and a start at the same instant
 * leave DST in force.
 *
 * Bounds (bad input is an error with a message, never a crash): files of
 * at most TZ_MAX_FILE bytes, TZ_MAX_TRANSITIONS transitions, 256 types,
 * TZ_MAX_CHARS designation bytes, a footer of at most TZ_MAX_FOOTER bytes;
 * every count must fit in the data, transitions strictly ascending, type
 * indexes in range, UT offsets within [TZ_MIN_UTOFF, TZ_MAX_UTOFF]
 * (-24:59:59 .. +25:59:59), nothing after the footer.
 *
 * Time range: instants are int64 seconds since 1970-01-01T00:00:00Z (no
 * leap seconds).  Outside [-TZ_CLAMP, TZ_CLAMP] (about 35 million years)
 * the offset at the nearer bound is used.
 *
 * Return values: TZ_OK, or a negative TZ_E* with a message in err (a
 * NUL-terminated string of at most errlen - 1 bytes; err may be NULL).
 *
 * Memory: a tz_t is one heap allocation owned by the caller of the load
 * function and released with tz_free(); it keeps no pointer into the
 * caller's buffer.  Query functions allocate nothing.
 */
#ifndef CDEGUARD_LIMITS_TZ_H
#define CDEGUARD_LIMITS_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TZ_OK 0
#define TZ_EINVAL (-1)  /* bad argument or zone name */
#define TZ_ENOENT (-2)  /* no such zone, or the file could not be read */
#define TZ_EFORMAT (-3) /* not a valid TZif file / TZ string, or over a bound */
#define TZ_ENOMEM (-4)

#define TZ_ZONEINFO_DIR "/usr/share/zoneinfo"
#define TZ_NAME_MAX 128
#define TZ_MAX_FILE ((size_t)1 << 20)
#define TZ_MAX_TRANSITIONS 2000
#define TZ_MAX_CHARS 1024
#define TZ_MAX_FOOTER 256
#define TZ_MIN_UTOFF (-89999) /* -24:59:59 */
#define TZ_MAX_UTOFF 93599    /* +25:59:59 */
#define TZ_CLAMP ((int64_t)1 << 50)

typedef struct tz tz_t;

/* What a loaded zone holds (for tests, logs and the fuzzer). */
typedef struct tz_info {
    const char *name;   /* as given to the load function */
    int version;        /* TZif version 1..4; 0 for built-in UTC and TZ strings */
    size_t transitions; /* transitions kept */
    size_t types;       /* local time types */
    const char *footer; /* the TZ string in force after the last transition, "" none */
} tz_info_t;

int tz_load(const char *name, tz_t **out, char *err, size_t errlen);
int tz_load_buffer(const char *name, const unsigned char *data, size_t len, tz_t **out, char *err,
                   size_t errlen);
int tz_load_posix(const char *spec, tz_t **out, char *err, size_t errlen);
void tz_free(tz_t *tz);

/* Seconds east of UTC in force at utc_sec (tz NULL: UTC, 0). */
int64_t tz_utc_offset(const tz_t *tz, int64_t utc_sec);
/* The same, and *until: the offset stays the same over [utc_sec, *until);
 * *until > utc_sec, or INT64_MAX when the offset never changes again.  It
 * is a safe bound, not always the next change (it may split a span). */
int64_t tz_utc_offset_until(const tz_t *tz, int64_t utc_sec, int64_t *until);

void tz_get_info(const tz_t *tz, tz_info_t *out); /* tz NULL: built-in UTC */
/* The i-th transition time (ascending); INT64_MIN when i is out of range. */
int64_t tz_transition_at(const tz_t *tz, size_t i);

/* Valid zone name for tz_load (the syntax only, not whether it exists). */
bool tz_name_ok(const char *name);

/* ---- proleptic Gregorian calendar (int64 days since 1970-01-01) ----------
 * Exact for |year| < 2^40.  Months outside 1..12 are carried into the year
 * (month 13 of 2026 is January 2027), days outside the month run on
 * (2026-01-32 is 2026-02-01). */
int64_t tz_days_from_civil(int64_t y, int m, int d);
void tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
int tz_weekday(int64_t days); /* 0 = Sunday .. 6 */
bool tz_is_leap(int64_t y);
int tz_days_in_month(int64_t y, int m);     /* m in 1..12, else 0 */
int64_t tz_floor_div(int64_t a, int64_t b); /* b > 0 */

#endif
