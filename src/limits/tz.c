/*
 * tz.c — TZif and POSIX TZ string parsing, and UTC offset lookup (see tz.h
 * for the accepted formats and bounds).
 *
 * A zone is: the transition times (strictly ascending int64) with the index
 * of the local time type each one starts, the types (UT offset, is-DST),
 * and optionally the footer rule.  The offset at t is, with i the last
 * transition <= t: type 0 when there is none; the footer rule when i is the
 * last transition and there is a footer (or there are no transitions and a
 * footer); else the type of transition i.
 *
 * The footer rule is evaluated without a cache: for t in UTC year y, the
 * DST start and end instants of years y-2..y+1 are computed (a start's
 * local time is read in standard time, an end's in DST); the last of these
 * events at or before t gives the state, an end ordered before a start at
 * the same instant.  Events of year y+2 cannot come before
 * Jan 1 (y+2) - 193 h (a rule time of -167 h at an offset of +26 h), so
 * the span returned stops 9 days before that year at the latest.
 *
 * Invariants of a tz_t: 1 <= typecnt <= 256; every idx[i] < typecnt;
 * times[] strictly ascending; every UT offset (types and rule) within
 * [TZ_MIN_UTOFF, TZ_MAX_UTOFF]; timecnt <= TZ_MAX_TRANSITIONS.
 *
 * Memory: one malloc per zone (struct, then the arrays and strings in the
 * same block); the parser reads the caller's buffer and keeps no pointer
 * to it.
 */
#include "limits/tz.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DAY 86400
#define TZIF_HEADER 44

typedef struct tz_rule {
    char kind;    /* 'J' Jn, 'D' n, 'M' Mm.w.d */
    int day;      /* J: 1..365; D: 0..365; M: weekday 0..6 */
    int week;     /* M: 1..5 */
    int mon;      /* M: 1..12 */
    int64_t secs; /* local time of day, -167 h .. 167 h */
} tz_rule_t;

typedef struct tz_posix {
    int32_t std_off, dst_off; /* seconds east */
    bool has_dst;
    tz_rule_t start, end;
} tz_posix_t;

typedef struct tz_type {
    int32_t utoff;
    bool isdst;
} tz_type_t;

struct tz {
    char *name;
    char *footer; /* "" when none */
    int version;
    size_t timecnt, typecnt;
    int64_t *times;
    uint8_t *idx;
    tz_type_t types[256];
    bool has_rule;
    tz_posix_t rule;
};

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt,
                                                          ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- calendar --------------------------------------------------------------- */

int64_t tz_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

int64_t tz_days_from_civil(int64_t y, int m, int d)
{
    /* carry the month into the year (Howard Hinnant's algorithm wants 1..12) */
    int64_t m0 = (int64_t)m - 1;
    y += tz_floor_div(m0, 12);
    m0 -= tz_floor_div(m0, 12) * 12;
    int64_t mm = m0 + 1;
    y -= mm <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (mm > 2 ? mm - 3 : mm + 9) + 2) / 5;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468 + (int64_t)d - 1;
}

void tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t dd = doy - (153 * mp + 2) / 5 + 1;
    int64_t mm = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (mm <= 2);
    *m = (int)mm;
    *d = (int)dd;
}

int tz_weekday(int64_t days)
{
    int64_t w = (days + 4) % 7; /* 1970-01-01 was a Thursday */
    return (int)(w < 0 ? w + 7 : w);
}

bool tz_is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int tz_days_in_month(int64_t y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12) return 0;
    return m == 2 && tz_is_leap(y) ? 29 : dim[m - 1];
}

/* ---- POSIX TZ strings --------------------------------------------------------- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* A zone abbreviation: end of it, or NULL. */
static const char *p_name(const char *s)
{
    const char *b;
    if (*s == '<') {
        b = ++s;
        while (is_alpha(*s) || is_digit(*s) || *s == '+' || *s == '-')
            s++;
        if (*s != '>' || s - b < 3) return NULL;
        return s + 1;
    }
    b = s;
    while (is_alpha(*s))
        s++;
    return s - b < 3 ? NULL : s;
}

/* An unsigned number of 1..3 digits within [0, max]. */
static const char *p_num(const char *s, int max, int *out)
{
    int n = 0, k = 0;
    while (is_digit(*s) && k < 3) {
        n = n * 10 + (*s++ - '0');
        k++;
    }
    if (!k || is_digit(*s) || n > max) return NULL;
    *out = n;
    return s;
}

/* [+-]hh[:mm[:ss]] with hh <= maxh, in seconds. */
static const char *p_time(const char *s, int maxh, int64_t *out)
{
    int sign = 1, h = 0, m = 0, sec = 0;
    if (*s == '+' || *s == '-') sign = *s++ == '-' ? -1 : 1;
    if (!(s = p_num(s, maxh, &h))) return NULL;
    if (*s == ':') {
        if (!(s = p_num(s + 1, 59, &m))) return NULL;
        if (*s == ':' && !(s = p_num(s + 1, 59, &sec))) return NULL;
    }
    *out = sign * ((int64_t)h * 3600 + m * 60 + sec);
    return s;
}

static const char *p_date(const char *s, tz_rule_t *r)
{
    memset(r, 0, sizeof *r);
    if (*s == 'J') {
        r->kind = 'J';
        if (!(s = p_num(s + 1, 365, &r->day)) || r->day < 1) return NULL;
    } else if (*s == 'M') {
        r->kind = 'M';
        if (!(s = p_num(s + 1, 12, &r->mon)) || r->mon < 1 || *s != '.') return NULL;
        if (!(s = p_num(s + 1, 5, &r->week)) || r->week < 1 || *s != '.') return NULL;
        if (!(s = p_num(s + 1, 6, &r->day))) return NULL;
    } else {
        r->kind = 'D';
        if (!(s = p_num(s, 365, &r->day))) return NULL;
    }
    r->secs = 2 * 3600;
    if (*s == '/' && !(s = p_time(s + 1, 167, &r->secs))) return NULL;
    return s;
}

static bool utoff_ok(int64_t off)
{
    return off >= TZ_MIN_UTOFF && off <= TZ_MAX_UTOFF;
}

/* Parse a whole TZ string; 0, or -1 with a message. */
static int tzstr_parse(const char *spec, tz_posix_t *p, char *err, size_t errlen)
{
    const char *s = spec, *e;
    int64_t off;
    memset(p, 0, sizeof *p);
    if (!(e = p_name(s))) {
        set_err(err, errlen, "bad standard time name at offset %zu", (size_t)(s - spec));
        return -1;
    }
    s = e;
    if (!(e = p_time(s, 25, &off)) || !utoff_ok(-off)) {
        set_err(err, errlen, "bad standard time offset at offset %zu", (size_t)(s - spec));
        return -1;
    }
    s = e;
    p->std_off = p->dst_off = (int32_t)-off;
    if (!*s) return 0;
    if (!(e = p_name(s))) {
        set_err(err, errlen, "bad daylight time name at offset %zu", (size_t)(s - spec));
        return -1;
    }
    s = e;
    p->has_dst = true;
    p->dst_off = p->std_off + 3600;
    if (*s && *s != ',') {
        if (!(e = p_time(s, 25, &off)) || !utoff_ok(-off)) {
            set_err(err, errlen, "bad daylight time offset at offset %zu", (size_t)(s - spec));
            return -1;
        }
        s = e;
        p->dst_off = (int32_t)-off;
    }
    if (!utoff_ok(p->dst_off)) {
        set_err(err, errlen, "daylight time offset out of range");
        return -1;
    }
    if (!*s) s = ",M3.2.0,M11.1.0"; /* tzcode's default rule */
    if (*s != ',' || !(e = p_date(s + 1, &p->start))) {
        set_err(err, errlen, "bad DST start rule at offset %zu", (size_t)(s - spec));
        return -1;
    }
    s = e;
    if (*s != ',' || !(e = p_date(s + 1, &p->end))) {
        set_err(err, errlen, "bad DST end rule at offset %zu", (size_t)(s - spec));
        return -1;
    }
    s = e;
    if (*s) {
        set_err(err, errlen, "unexpected '%c' at offset %zu", *s, (size_t)(s - spec));
        return -1;
    }
    return 0;
}

/* Day (since 1970) a rule names in year y. */
static int64_t rule_day(const tz_rule_t *r, int64_t y)
{
    int64_t jan1 = tz_days_from_civil(y, 1, 1);
    if (r->kind == 'J') return jan1 + r->day - 1 + (tz_is_leap(y) && r->day >= 60);
    if (r->kind == 'D') return jan1 + r->day;
    int64_t first = tz_days_from_civil(y, r->mon, 1);
    int64_t d = first + (r->day - tz_weekday(first) + 7) % 7 + 7 * (r->week - 1);
    while (d >= first + tz_days_in_month(y, r->mon))
        d -= 7;
    return d;
}

typedef struct event {
    int64_t at;
    int start; /* 1: DST starts, 0: DST ends */
} event_t;

static bool event_after(const event_t *a, const event_t *b)
{
    return a->at > b->at || (a->at == b->at && a->start > b->start);
}

/* Offset from the footer rule at t (|t| <= TZ_CLAMP), and a safe *until. */
static int64_t tzstr_offset(const tz_posix_t *p, int64_t t, int64_t *until)
{
    if (!p->has_dst) {
        *until = INT64_MAX;
        return p->std_off;
    }
    int64_t y;
    int m, d;
    tz_civil_from_days(tz_floor_div(t, DAY), &y, &m, &d);
    event_t best = {INT64_MIN, -1};
    int64_t next = (tz_days_from_civil(y + 2, 1, 1) - 9) * DAY;
    for (int64_t yy = y - 2; yy <= y + 1; yy++) {
        event_t ev[2] = {
            {rule_day(&p->start, yy) * DAY + p->start.secs - p->std_off, 1},
            {rule_day(&p->end, yy) * DAY + p->end.secs - p->dst_off, 0},
        };
        for (int k = 0; k < 2; k++) {
            if (ev[k].at <= t) {
                if (best.start < 0 || event_after(&ev[k], &best)) best = ev[k];
            } else if (ev[k].at < next) {
                next = ev[k].at;
            }
        }
    }
    *until = next;
    return best.start == 1 ? p->dst_off : p->std_off;
}

/* ---- offset lookup ---------------------------------------------------------- */

int64_t tz_utc_offset_until(const tz_t *tz, int64_t utc_sec, int64_t *until)
{
    int64_t u;
    int64_t t = utc_sec < -TZ_CLAMP ? -TZ_CLAMP : utc_sec > TZ_CLAMP ? TZ_CLAMP : utc_sec;
    int64_t off;
    if (!tz) {
        u = INT64_MAX;
        off = 0;
    } else if (tz->timecnt == 0 || t >= tz->times[tz->timecnt - 1]) {
        if (tz->has_rule) {
            off = tzstr_offset(&tz->rule, t, &u);
        } else {
            off = tz->types[tz->timecnt ? tz->idx[tz->timecnt - 1] : 0].utoff;
            u = INT64_MAX;
        }
    } else if (t < tz->times[0]) {
        off = tz->types[0].utoff;
        u = tz->times[0];
    } else {
        size_t lo = 0, hi = tz->timecnt - 1; /* times[lo] <= t < times[hi] */
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (tz->times[mid] <= t)
                lo = mid;
            else
                hi = mid;
        }
        off = tz->types[tz->idx[lo]].utoff;
        u = tz->times[hi];
    }
    if (utc_sec > TZ_CLAMP) u = INT64_MAX;
    if (until) *until = u;
    return off;
}

int64_t tz_utc_offset(const tz_t *tz, int64_t utc_sec)
{
    return tz_utc_offset_until(tz, utc_sec, NULL);
}

void tz_get_info(const tz_t *tz, tz_info_t *out)
{
    memset(out, 0, sizeof *out);
    if (!tz) {
        out->name = "UTC";
        out->footer = "";
        out->types = 1;
        return;
    }
    out->name = tz->name;
    out->version = tz->version;
    out->transitions = tz->timecnt;
    out->types = tz->typecnt;
    out->footer = tz->footer;
}

int64_t tz_transition_at(const tz_t *tz, size_t i)
{
    return tz && i < tz->timecnt ? tz->times[i] : INT64_MIN;
}

/* ---- construction ------------------------------------------------------------- */

/* One block: the struct, the transitions, their type indexes, name, footer. */
static tz_t *tz_alloc(const char *name, size_t timecnt, const char *footer)
{
    size_t nl = strlen(name) + 1, fl = strlen(footer) + 1;
    size_t size = sizeof(tz_t) + timecnt * (sizeof(int64_t) + 1) + nl + fl;
    tz_t *tz = malloc(size);
    if (!tz) return NULL;
    memset(tz, 0, sizeof *tz);
    unsigned char *p = (unsigned char *)(tz + 1);
    tz->times = (int64_t *)(void *)p; /* tz_t is 8-aligned: int64_t members */
    p += timecnt * sizeof(int64_t);
    tz->idx = p;
    p += timecnt;
    tz->name = (char *)p;
    memcpy(tz->name, name, nl);
    p += nl;
    tz->footer = (char *)p;
    memcpy(tz->footer, footer, fl);
    tz->timecnt = timecnt;
    return tz;
}

void tz_free(tz_t *tz)
{
    free(tz);
}

static tz_t *utc_zone(const char *name)
{
    tz_t *tz = tz_alloc(name, 0, "");
    if (!tz) return NULL;
    tz->typecnt = 1;
    return tz;
}

int tz_load_posix(const char *spec, tz_t **out, char *err, size_t errlen)
{
    if (out) *out = NULL;
    if (!spec || !out) {
        set_err(err, errlen, "tz: no TZ string");
        return TZ_EINVAL;
    }
    size_t n = strnlen(spec, TZ_MAX_FOOTER + 1);
    if (n > TZ_MAX_FOOTER) {
        set_err(err, errlen, "TZ string longer than %d bytes", TZ_MAX_FOOTER);
        return TZ_EFORMAT;
    }
    tz_posix_t p;
    char msg[128];
    if (tzstr_parse(spec, &p, msg, sizeof msg) < 0) {
        set_err(err, errlen, "TZ string \"%.*s\": %s", 64, spec, msg);
        return TZ_EFORMAT;
    }
    tz_t *tz = tz_alloc(spec, 0, spec);
    if (!tz) {
        set_err(err, errlen, "out of memory");
        return TZ_ENOMEM;
    }
    tz->typecnt = 1;
    tz->types[0].utoff = p.std_off;
    tz->has_rule = true;
    tz->rule = p;
    *out = tz;
    return TZ_OK;
}

/* ---- TZif ----------------------------------------------------------------------- */

typedef struct hdr {
    int version; /* 1..4 */
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} hdr_t;

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64s(const unsigned char *p)
{
    uint64_t u = (uint64_t)be32(p) << 32 | be32(p + 4);
    return u <= (uint64_t)INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
}

static int32_t be32s(const unsigned char *p)
{
    uint32_t u = be32(p);
    return u <= (uint32_t)INT32_MAX ? (int32_t)u : -(int32_t)(~u) - 1;
}

/* Header at data[off]: 0, or -1 with a message. */
static int read_header(const unsigned char *data, size_t len, size_t off, hdr_t *h, char *msg,
                       size_t msglen)
{
    if (len - off < TZIF_HEADER) {
        set_err(msg, msglen, "truncated header at byte %zu", off);
        return -1;
    }
    const unsigned char *p = data + off;
    if (memcmp(p, "TZif", 4) != 0) {
        set_err(msg, msglen, "no TZif magic at byte %zu", off);
        return -1;
    }
    switch (p[4]) {
    case 0:
        h->version = 1;
        break;
    case '2':
        h->version = 2;
        break;
    case '3':
        h->version = 3;
        break;
    case '4':
        h->version = 4;
        break;
    default:
        set_err(msg, msglen, "unsupported TZif version byte 0x%02x", p[4]);
        return -1;
    }
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    if (h->leapcnt) {
        set_err(msg, msglen, "leap-second zone files are not supported (leapcnt %u)",
                (unsigned)h->leapcnt);
        return -1;
    }
    if (h->typecnt == 0 || h->typecnt > 256) {
        set_err(msg, msglen, "typecnt %u out of range 1..256", (unsigned)h->typecnt);
        return -1;
    }
    if (h->timecnt > TZ_MAX_TRANSITIONS) {
        set_err(msg, msglen, "timecnt %u over the limit of %d", (unsigned)h->timecnt,
                TZ_MAX_TRANSITIONS);
        return -1;
    }
    if (h->charcnt == 0 || h->charcnt > TZ_MAX_CHARS) {
        set_err(msg, msglen, "charcnt %u out of range 1..%d", (unsigned)h->charcnt, TZ_MAX_CHARS);
        return -1;
    }
    if (h->isutcnt != 0 && h->isutcnt != h->typecnt) {
        set_err(msg, msglen, "isutcnt %u is neither 0 nor typecnt %u", (unsigned)h->isutcnt,
                (unsigned)h->typecnt);
        return -1;
    }
    if (h->isstdcnt != 0 && h->isstdcnt != h->typecnt) {
        set_err(msg, msglen, "isstdcnt %u is neither 0 nor typecnt %u", (unsigned)h->isstdcnt,
                (unsigned)h->typecnt);
        return -1;
    }
    return 0;
}

/* Bytes of the data block after a header (counts already bounded). */
static size_t block_size(const hdr_t *h, size_t tsize)
{
    return (size_t)h->timecnt * (tsize + 1) + (size_t)h->typecnt * 6 + h->charcnt +
           (size_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

/* Parse the data block at data[off] into tz: 0, or -1 with a message. */
static int read_block(const unsigned char *p, const hdr_t *h, size_t tsize, tz_t *tz, char *msg,
                      size_t msglen)
{
    for (size_t i = 0; i < h->timecnt; i++) {
        tz->times[i] = tsize == 8 ? be64s(p + 8 * i) : be32s(p + 4 * i);
        if (i && tz->times[i] <= tz->times[i - 1]) {
            set_err(msg, msglen, "transition %zu is not after transition %zu", i, i - 1);
            return -1;
        }
    }
    p += (size_t)h->timecnt * tsize;
    for (size_t i = 0; i < h->timecnt; i++) {
        if (p[i] >= h->typecnt) {
            set_err(msg, msglen, "transition %zu has type %u of %u", i, p[i], (unsigned)h->typecnt);
            return -1;
        }
        tz->idx[i] = p[i];
    }
    p += h->timecnt;
    for (size_t i = 0; i < h->typecnt; i++, p += 6) {
        int32_t off = be32s(p);
        if (!utoff_ok(off)) {
            set_err(msg, msglen, "type %zu: UT offset %ld s out of range", i, (long)off);
            return -1;
        }
        if (p[4] > 1) {
            set_err(msg, msglen, "type %zu: isdst %u is not 0 or 1", i, p[4]);
            return -1;
        }
        if (p[5] >= h->charcnt) {
            set_err(msg, msglen, "type %zu: designation index %u beyond %u bytes", i, p[5],
                    (unsigned)h->charcnt);
            return -1;
        }
        tz->types[i].utoff = off;
        tz->types[i].isdst = p[4] != 0;
    }
    if (p[h->charcnt - 1] != '\0') {
        set_err(msg, msglen, "designations are not NUL-terminated");
        return -1;
    }
    p += h->charcnt; /* no leap seconds (refused in the header) */
    for (size_t i = 0; i < (size_t)h->isstdcnt + h->isutcnt; i++) {
        if (p[i] > 1) {
            set_err(msg, msglen, "standard/UT indicator %u is not 0 or 1", p[i]);
            return -1;
        }
    }
    tz->timecnt = h->timecnt;
    tz->typecnt = h->typecnt;
    return 0;
}

static int parse_tzif(const char *name, const unsigned char *data, size_t len, tz_t **out,
                      char *msg, size_t msglen)
{
    hdr_t h;
    size_t off = 0;
    if (read_header(data, len, 0, &h, msg, msglen) < 0) return TZ_EFORMAT;
    int version = h.version;
    size_t tsize = 4;
    size_t bs = block_size(&h, 4);
    if (bs > len - TZIF_HEADER) {
        set_err(msg, msglen, "counts need %zu bytes of data, the file has %zu", bs,
                len - TZIF_HEADER);
        return TZ_EFORMAT;
    }
    off = TZIF_HEADER;
    if (version >= 2) { /* skip the 32-bit block: the 64-bit one follows */
        off += bs;
        if (read_header(data, len, off, &h, msg, msglen) < 0) return TZ_EFORMAT;
        tsize = 8;
        bs = block_size(&h, 8);
        if (bs > len - off - TZIF_HEADER) {
            set_err(msg, msglen, "64-bit counts need %zu bytes of data, %zu left", bs,
                    len - off - TZIF_HEADER);
            return TZ_EFORMAT;
        }
        off += TZIF_HEADER;
    }
    const unsigned char *block = data + off;
    off += bs;

    /* footer: "\n" TZ string "\n" */
    char footer[TZ_MAX_FOOTER + 1] = "";
    if (version >= 2) {
        if (off >= len || data[off] != '\n') {
            set_err(msg, msglen, "no footer after the 64-bit data (byte %zu)", off);
            return TZ_EFORMAT;
        }
        const unsigned char *nl = memchr(data + off + 1, '\n', len - off - 1);
        if (!nl) {
            set_err(msg, msglen, "footer is not terminated by a newline");
            return TZ_EFORMAT;
        }
        size_t fl = (size_t)(nl - (data + off + 1));
        if (fl > TZ_MAX_FOOTER) {
            set_err(msg, msglen, "footer longer than %d bytes", TZ_MAX_FOOTER);
            return TZ_EFORMAT;
        }
        if (memchr(data + off + 1, '\0', fl)) {
            set_err(msg, msglen, "NUL byte in the footer");
            return TZ_EFORMAT;
        }
        memcpy(footer, data + off + 1, fl);
        footer[fl] = '\0';
        off += fl + 2;
    }
    if (off != len) {
        set_err(msg, msglen, "%zu unexpected bytes after the data", len - off);
        return TZ_EFORMAT;
    }
    tz_posix_t rule;
    char pmsg[128];
    if (footer[0] && tzstr_parse(footer, &rule, pmsg, sizeof pmsg) < 0) {
        set_err(msg, msglen, "footer TZ string \"%.64s\": %s", footer, pmsg);
        return TZ_EFORMAT;
    }

    tz_t *tz = tz_alloc(name, h.timecnt, footer);
    if (!tz) {
        set_err(msg, msglen, "out of memory");
        return TZ_ENOMEM;
    }
    tz->version = version;
    if (read_block(block, &h, tsize, tz, msg, msglen) < 0) {
        tz_free(tz);
        return TZ_EFORMAT;
    }
    if (footer[0]) {
        tz->has_rule = true;
        tz->rule = rule;
    }
    *out = tz;
    return TZ_OK;
}

int tz_load_buffer(const char *name, const unsigned char *data, size_t len, tz_t **out, char *err,
                   size_t errlen)
{
    if (out) *out = NULL;
    if (!out || (!data && len)) {
        set_err(err, errlen, "tz: bad arguments");
        return TZ_EINVAL;
    }
    if (!name) name = "(buffer)";
    if (strnlen(name, TZ_NAME_MAX + 1) > TZ_NAME_MAX) {
        set_err(err, errlen, "zone name longer than %d bytes", TZ_NAME_MAX);
        return TZ_EINVAL;
    }
    if (len > TZ_MAX_FILE) {
        set_err(err, errlen, "zone %s: %zu bytes, over the limit of %zu", name, len, TZ_MAX_FILE);
        return TZ_EFORMAT;
    }
    char msg[160];
    int rc = parse_tzif(name, data, len, out, msg, sizeof msg);
    if (rc != TZ_OK) set_err(err, errlen, "zone %s: %s", name, msg);
    return rc;
}

bool tz_name_ok(const char *name)
{
    if (!name || !*name || name[0] == '/') return false;
    size_t n = strnlen(name, TZ_NAME_MAX + 1);
    if (n > TZ_NAME_MAX || name[n - 1] == '/' || strstr(name, "..") || strstr(name, "//"))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!(is_alpha(c) || is_digit(c) || c == '_' || c == '+' || c == '-' || c == '/'))
            return false;
    }
    return true;
}

/* Read path whole (a regular file of at most TZ_MAX_FILE bytes). */
static int read_file(const char *path, unsigned char **buf, size_t *len, char *err, size_t errlen,
                     const char *name)
{
    /* O_NONBLOCK: a FIFO must not block the open; a regular file ignores it */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        set_err(err, errlen, "zone %s: %s: %s", name, path,
                e == ENOENT ? "no such zone" : strerror(e));
        return TZ_ENOENT;
    }
    int rc = TZ_ENOENT;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        set_err(err, errlen, "zone %s: %s: %s", name, path, strerror(errno));
        goto out_close;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(err, errlen, "zone %s: %s is not a regular file", name, path);
        goto out_close;
    }
    if ((uint64_t)st.st_size > TZ_MAX_FILE) {
        set_err(err, errlen, "zone %s: %s is %lld bytes, over the limit of %zu", name, path,
                (long long)st.st_size, TZ_MAX_FILE);
        rc = TZ_EFORMAT;
        goto out_close;
    }
    /* one byte more than its size, to notice a file that grew meanwhile */
    size_t cap = (size_t)st.st_size + 1;
    unsigned char *b = malloc(cap);
    if (!b) {
        set_err(err, errlen, "out of memory");
        rc = TZ_ENOMEM;
        goto out_close;
    }
    size_t got = 0;
    while (got < cap) {
        ssize_t r = read(fd, b + got, cap - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            set_err(err, errlen, "zone %s: %s: %s", name, path, strerror(errno));
            free(b);
            goto out_close;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    if (got == cap) {
        set_err(err, errlen, "zone %s: %s changed while being read", name, path);
        free(b);
        goto out_close;
    }
    *buf = b;
    *len = got;
    rc = TZ_OK;
out_close:
    close(fd);
    return rc;
}

int tz_load(const char *name, tz_t **out, char *err, size_t errlen)
{
    if (out) *out = NULL;
    if (!out || !name) {
        set_err(err, errlen, "tz: no zone name");
        return TZ_EINVAL;
    }
    if (!tz_name_ok(name)) {
        set_err(err, errlen,
                "zone name \"%.*s\": expected an IANA name such as Europe/Berlin "
                "(1..%d of [A-Za-z0-9_+-/], no leading '/', no \"..\")",
                64, name, TZ_NAME_MAX);
        return TZ_EINVAL;
    }
    if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0) {
        if (!(*out = utc_zone(name))) {
            set_err(err, errlen, "out of memory");
            return TZ_ENOMEM;
        }
        return TZ_OK;
    }
    char path[sizeof TZ_ZONEINFO_DIR + TZ_NAME_MAX + 2];
    snprintf(path, sizeof path, "%s/%s", TZ_ZONEINFO_DIR, name);
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = read_file(path, &buf, &len, err, errlen, name);
    if (rc != TZ_OK) return rc;
    rc = tz_load_buffer(name, buf, len, out, err, errlen);
    free(buf);
    return rc;
}
