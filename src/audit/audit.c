/*
 * audit.c — JSON-lines audit writer: formatting on the caller's thread, one
 * writer thread, a bounded byte ring between them.
 *
 * Formatting (audit_format_egress, audit_format_llm, audit_json_escape,
 * audit_format_time) is pure: it writes only into the caller's buffer and
 * never allocates.  Every string is escaped for JSON (", \, control bytes,
 * NUL in the length-bounded prompt, and DEL as \u00XX, each byte that is not
 * part of a well-formed UTF-8 sequence as \ufffd) and a record is cut to fit
 * its bound including its '\n': strings are shrunk by water-filling (the
 * shortest keep their full value, the longest share what is left) and cut
 * only between escape units, so a line is always one valid JSON object.
 * Bounds: an egress line AUDIT_LINE_MAX; an LLM line AUDIT_LINE_MAX for
 * everything but findings and prompt, then findings (each bounded by
 * FINDING_COST_MAX, at most AUDIT_LLM_FINDINGS_MAX), then the prompt, up to
 * AUDIT_LLM_LINE_MAX in all.  audit_llm() formats into a stack buffer when
 * llm_line_bound() says the line fits there, else into a heap buffer of that
 * size allocated and freed within the call (on allocation failure, the stack
 * buffer: findings or prompt are cut, the line stays valid).
 *
 * Queue: a ring of ring_cap bytes holding complete '\n'-terminated lines of
 * any length (no fixed slots: an LLM line of up to AUDIT_LLM_LINE_MAX takes
 * its bytes and no more).  Invariants (under g.mu): 0 <= used <= ring_cap,
 * head < ring_cap; the bytes [head, head + used) mod ring_cap are lines not
 * yet written.  Producers copy a whole line into the free part or, when it
 * does not fit, count a drop and return: they never block on I/O.  The
 * writer takes a snapshot of the used part, writes it with writev() without
 * holding the lock (producers never touch used bytes) and only then releases
 * the space.  When the queue empties head goes back to 0, and when at most
 * AUDIT_COMPACT_BYTES remain after a write (lines queued while it ran) and
 * they do not overlap the start, they are copied there, so the ring keeps
 * resident about its largest backlog, not all of ring_cap.  The writer
 * writes when 64 KiB are queued, 100 ms after it first saw pending data, on
 * a sink switch and at close.
 *
 * Sink switch (audit_reopen, audit_reconfigure): the new sink is opened by the
 * caller, then queued in g.sw[] with the queue position of the switch (seq, in
 * bytes ever queued); the writer writes exactly what was queued before it to
 * the old sink, closes that and continues with the new one.  So a line reaches
 * the sink that was current when it was queued, even across switches in quick
 * succession (up to AUDIT_SWITCHES pending; beyond that the last pending one
 * is replaced, keeping its position).  Control calls (open, reconfigure,
 * reopen, close) are serialised by ctl_mu, which is held across open(2) so
 * that producers (g.mu) never wait for the disk.
 *
 * Ownership: the module owns the ring, the copy of the path and the sink fd
 * (never STDOUT_FILENO, which is only borrowed).  All of them are released by
 * audit_close(), after which every call is a no-op until audit_open().
 *
 * Return convention: 0 ok, -1 error (with a message in err when given).
 */
#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef AUDIT_QUEUE_BYTES
#define AUDIT_QUEUE_BYTES ((size_t)16 << 20) /* ~45k typical lines of backlog */
#endif
#define AUDIT_BATCH_BYTES ((size_t)64 << 10)   /* write as soon as this much is queued */
#define AUDIT_FLUSH_MS 100                     /* ...or this long after data appeared */
#define AUDIT_COMPACT_BYTES ((size_t)16 << 10) /* moved back to the start after a write */
#define AUDIT_FILE_MODE 0640
#define AUDIT_SWITCHES 4 /* sink switches pending at once */

/* 9999-12-31T23:59:59.999Z: the last instant RFC 3339's four-digit year can hold. */
#define AUDIT_TIME_MAX_MS UINT64_C(253402300799999)

typedef enum { ST_CLOSED = 0, ST_OPEN, ST_CLOSING } audit_state_t;

static struct {
    pthread_mutex_t mu;  /* guards the fields down to nsw */
    pthread_cond_t wake; /* the writer waits here */
    audit_state_t state;
    char *ring;
    size_t ring_cap, head, used;
    bool writer_waiting;
    bool stop;
    uint64_t enq_bytes, deq_bytes; /* totals queued and released since open */
    struct audit_switch {
        uint64_t seq; /* for the bytes queued from enq_bytes == seq on */
        int fd;
        bool owned;
    } sw[AUDIT_SWITCHES]; /* pending sink switches, oldest first */
    int nsw;
    /* Writer-owned while the thread runs; set up and torn down around it. */
    int fd;
    bool fd_owned;
    /* Guarded by ctl_mu. */
    bool to_stdout;
    char *path;
    pthread_t thread;
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .fd = -1};

static pthread_mutex_t ctl_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool g_open;              /* hint for the fast path only */
static atomic_uint_least64_t g_dropped; /* monotonic over the process */

/* ---- JSON formatting (pure) ---------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s (Unicode table 3-7: no
 * overlongs, no surrogates, nothing above U+10FFFF), or 0.  avail >= 1 bytes
 * may be read; for a NUL-terminated s avail may be SIZE_MAX: NUL is never a
 * continuation byte, so the short-circuit tests never read past the end. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
#define CONT(x) ((x) >= 0x80 && (x) <= 0xbf)
    if (c >= 0xc2 && c <= 0xdf) return avail >= 2 && CONT(s[1]) ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        unsigned char lo = c == 0xe0 ? 0xa0 : 0x80;
        unsigned char hi = c == 0xed ? 0x9f : 0xbf;
        return avail >= 3 && s[1] >= lo && s[1] <= hi && CONT(s[2]) ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned char lo = c == 0xf0 ? 0x90 : 0x80;
        unsigned char hi = c == 0xf4 ? 0x8f : 0xbf;
        return avail >= 4 && s[1] >= lo && s[1] <= hi && CONT(s[2]) && CONT(s[3]) ? 4 : 0;
    }
#undef CONT
    return 0;
}

/* The escaped form of the next character of s (avail >= 1 bytes readable, see
 * utf8_seq_len): fills out (up to 6 bytes) and *outlen, returns the input
 * bytes consumed (>= 1).  A NUL byte (only in a length-bounded string) is
 * escaped like any control byte. */
static size_t esc_unit(const unsigned char *s, size_t avail, char out[6], size_t *outlen)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = s[0];

    if (c == '"' || c == '\\') {
        out[0] = '\\';
        out[1] = (char)c;
        *outlen = 2;
        return 1;
    }
    if (c < 0x20 || c == 0x7f) {
        memcpy(out, "\\u00", 4);
        out[4] = hex[c >> 4];
        out[5] = hex[c & 0xf];
        *outlen = 6;
        return 1;
    }
    if (c < 0x80) {
        out[0] = (char)c;
        *outlen = 1;
        return 1;
    }
    size_t n = utf8_seq_len(s, avail);
    if (n == 0) {
        memcpy(out, "\\ufffd", 6);
        *outlen = 6;
        return 1;
    }
    memcpy(out, s, n);
    *outlen = n;
    return n;
}

/* Escaped length of s, counting no further than limit + 1. */
static size_t esc_len(const char *s, size_t limit)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t total = 0;
    char unit[6];
    size_t ulen;

    while (*p && total <= limit) {
        p += esc_unit(p, SIZE_MAX, unit, &ulen);
        total += ulen;
    }
    return total;
}

/* esc_len() of the n bytes at s (NUL bytes included). */
static size_t esc_len_n(const char *s, size_t n, size_t limit)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    size_t total = 0;
    char unit[6];
    size_t ulen;

    while (p < end && total <= limit) {
        p += esc_unit(p, (size_t)(end - p), unit, &ulen);
        total += ulen;
    }
    return total;
}

/* Append the escaped form of s to buf at *pos, stopping before the first
 * unit that would end past cap.  Returns -1 when s was cut. */
static int esc_put(char *buf, size_t cap, size_t *pos, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    char unit[6];
    size_t ulen;

    while (*p) {
        size_t used = esc_unit(p, SIZE_MAX, unit, &ulen);
        if (*pos > cap || cap - *pos < ulen) return -1;
        memcpy(buf + *pos, unit, ulen);
        *pos += ulen;
        p += used;
    }
    return 0;
}

/* esc_put() of the n bytes at s (NUL bytes included). */
static int esc_put_n(char *buf, size_t cap, size_t *pos, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    char unit[6];
    size_t ulen;

    while (p < end) {
        size_t used = esc_unit(p, (size_t)(end - p), unit, &ulen);
        if (*pos > cap || cap - *pos < ulen) return -1;
        memcpy(buf + *pos, unit, ulen);
        *pos += ulen;
        p += used;
    }
    return 0;
}

int audit_json_escape(char *buf, size_t cap, size_t *pos, const char *s)
{
    if (!s) return 0;
    return esc_put(buf, cap, pos, s);
}

void audit_format_time(uint64_t time_ms, char *buf, size_t len)
{
    if (!buf || len == 0) return;
    if (time_ms > AUDIT_TIME_MAX_MS) time_ms = AUDIT_TIME_MAX_MS;

    uint64_t secs = time_ms / 1000;
    unsigned ms = (unsigned)(time_ms % 1000);
    uint64_t days = secs / 86400;
    unsigned sod = (unsigned)(secs % 86400);

    /* Days since 1970-01-01 → proleptic Gregorian date (H. Hinnant's
     * civil_from_days, for non-negative day numbers). */
    uint64_t z = days + 719468;
    uint64_t era = z / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned day = doy - (153 * mp + 2) / 5 + 1;
    unsigned mon = mp < 10 ? mp + 3 : mp - 9;
    unsigned year = (unsigned)(yoe + era * 400) + (mon <= 2);

    snprintf(buf, len, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", year, mon, day, sod / 3600,
             sod / 60 % 60, sod % 60, ms);
}

enum {
    FLD_FIXED,    /* a quoted value copied verbatim (no escaping needed) */
    FLD_STR,      /* escaped; NULL → "" */
    FLD_OPT,      /* escaped, or the field omitted when NULL */
    FLD_NUM,      /* an unquoted value copied verbatim (number, true, false, null, object) */
    FLD_NSTR,     /* escaped, or null when NULL or "" (made FLD_STR or FLD_NUM on measuring) */
    FLD_FINDINGS, /* audit_llm: the findings array (costed and written by the caller) */
    FLD_PROMPT,   /* audit_llm: the prompt (idem) */
};

typedef struct field {
    const char *key;
    int type;        /* FLD_* */
    const char *val; /* NUL-terminated; NULL → see the type */
    size_t len;      /* FIXED/NUM: length; STR/OPT: escaped length, capped */
    size_t alloc;    /* STR/OPT: output bytes granted */
} field_t;

#define FIELDS_MAX 32 /* fields of any one record type */

static void put_raw(char *buf, size_t *pos, const char *s, size_t n)
{
    memcpy(buf + *pos, s, n);
    *pos += n;
}

#define PUT_LIT(buf, pos, lit) put_raw((buf), (pos), (lit), sizeof(lit) - 1)

/* Grant each string min(its length, a fair share) of budget: the shortest are
 * kept whole and the rest split what remains equally. */
static void water_fill(field_t *f, size_t nf, size_t budget)
{
    field_t *s[FIELDS_MAX];
    size_t n = 0;

    for (size_t i = 0; i < nf && i < FIELDS_MAX; i++)
        if (f[i].type == FLD_STR || f[i].type == FLD_OPT) s[n++] = &f[i];
    for (size_t i = 1; i < n; i++) /* insertion sort by length, n <= FIELDS_MAX */
        for (size_t j = i; j > 0 && s[j - 1]->len > s[j]->len; j--) {
            field_t *t = s[j];
            s[j] = s[j - 1];
            s[j - 1] = t;
        }
    for (size_t i = 0; i < n; i++) {
        size_t share = budget / (n - i);
        s[i]->alloc = s[i]->len < share ? s[i]->len : share;
        budget -= s[i]->alloc;
    }
}

static bool field_present(const field_t *f)
{
    return !(f->type == FLD_OPT && !f->val);
}

/* Resolve NULLs and lengths of f[0..nf).  Returns the fixed cost (braces,
 * keys, separators, quotes, verbatim values; nothing for the value of a
 * FINDINGS or PROMPT field) and sets *strings to the escaped string bytes,
 * each counted no further than limit + 1. */
static size_t fields_measure(field_t *f, size_t nf, size_t limit, size_t *strings)
{
    size_t fixed = 2, nout = 0;

    *strings = 0;
    for (size_t i = 0; i < nf; i++) {
        if (f[i].type == FLD_NSTR) {
            bool null = !f[i].val || !*f[i].val;
            f[i].type = null ? FLD_NUM : FLD_STR;
            if (null) f[i].val = "null";
        }
        if (!field_present(&f[i])) continue;
        if (!f[i].val) f[i].val = "";
        fixed += (nout++ ? 1 : 0) + strlen(f[i].key) + 3; /* ,"key": */
        switch (f[i].type) {
        case FLD_FIXED:
        case FLD_NUM:
            f[i].len = strlen(f[i].val);
            fixed += f[i].len + (f[i].type == FLD_FIXED ? 2 : 0);
            break;
        case FLD_STR:
        case FLD_OPT:
            f[i].len = esc_len(f[i].val, limit);
            f[i].alloc = f[i].len;
            fixed += 2;
            *strings += f[i].len;
            break;
        default: /* FINDINGS, PROMPT: the caller adds their cost */
            break;
        }
    }
    return fixed;
}

/* ,"key": then a FIXED, NUM, STR or OPT value (its granted bytes). */
static void field_put(char *buf, size_t *pos, const field_t *f, bool first)
{
    if (!first) buf[(*pos)++] = ',';
    buf[(*pos)++] = '"';
    put_raw(buf, pos, f->key, strlen(f->key));
    PUT_LIT(buf, pos, "\":");
    switch (f->type) {
    case FLD_NUM:
        put_raw(buf, pos, f->val, f->len);
        break;
    case FLD_FIXED:
        buf[(*pos)++] = '"';
        put_raw(buf, pos, f->val, f->len);
        buf[(*pos)++] = '"';
        break;
    case FLD_STR:
    case FLD_OPT: {
        size_t end = *pos + 1 + f->alloc;
        buf[(*pos)++] = '"';
        (void)esc_put(buf, end, pos, f->val); /* a cut is expected here */
        buf[(*pos)++] = '"';
        break;
    }
    default: /* the caller writes FINDINGS and PROMPT values */
        break;
    }
}

/* A duration in ms for JSON: NaN and negatives → 0, at most 1e12 (keeps
 * "%.3f" short, inf too; ~31 years). */
static double clamp_ms(double d)
{
    if (!(d >= 0.0)) /* negative or NaN */
        return 0.0;
    return d > 1e12 ? 1e12 : d;
}

size_t audit_format_egress(char *buf, size_t cap, const audit_egress_t *r)
{
    char tbuf[48], port[8], status[16], up[24], down[24], dur[32];

    if (!buf || cap == 0) return 0;
    buf[0] = '\0';
    if (!r) return 0;

    /* The object itself may use limit bytes; the caller adds '\n' or NUL. */
    size_t limit = (cap < AUDIT_LINE_MAX ? cap : AUDIT_LINE_MAX) - 1;

    audit_format_time(r->time_ms, tbuf, sizeof tbuf);
    snprintf(port, sizeof port, "%u", (unsigned)r->port);
    snprintf(status, sizeof status, "%d", r->status);
    snprintf(up, sizeof up, "%" PRIu64, r->bytes_up);
    snprintf(down, sizeof down, "%" PRIu64, r->bytes_down);
    snprintf(dur, sizeof dur, "%.3f", clamp_ms(r->duration_ms));

    field_t f[] = {
        {"time", FLD_FIXED, tbuf, 0, 0},
        {"kind", FLD_FIXED, "egress", 0, 0},
        {"workspace", FLD_STR, r->workspace, 0, 0},
        {"group", FLD_STR, r->group, 0, 0},
        {"policy", FLD_STR, r->policy, 0, 0},
        {"client", FLD_STR, r->client, 0, 0},
        {"method", FLD_STR, r->method, 0, 0},
        {"host", FLD_STR, r->host, 0, 0},
        {"port", FLD_NUM, port, 0, 0},
        {"resolved", FLD_STR, r->resolved, 0, 0},
        {"sni", FLD_OPT, r->sni, 0, 0},
        {"decision", FLD_STR, r->decision, 0, 0},
        {"rule", FLD_STR, r->rule, 0, 0},
        {"reason", FLD_OPT, r->reason, 0, 0},
        {"mode", FLD_STR, r->mode, 0, 0},
        {"alert", FLD_OPT, r->alert, 0, 0},
        {"status", FLD_NUM, status, 0, 0},
        {"bytes_up", FLD_NUM, up, 0, 0},
        {"bytes_down", FLD_NUM, down, 0, 0},
        {"duration_ms", FLD_NUM, dur, 0, 0},
    };
    size_t nf = sizeof f / sizeof f[0], strings;

    size_t fixed = fields_measure(f, nf, limit, &strings);
    if (fixed > limit) return 0;
    if (strings > limit - fixed) water_fill(f, nf, limit - fixed);

    size_t pos = 0, nout = 0;
    buf[pos++] = '{';
    for (size_t i = 0; i < nf; i++)
        if (field_present(&f[i])) field_put(buf, &pos, &f[i], nout++ == 0);
    buf[pos++] = '}';
    buf[pos] = '\0';
    return pos;
}

/* ---- LLM record ----------------------------------------------------------- */

static const char FINDINGS_TRUNC[] = ",\"findings_truncated\":true";
static const char PROMPT_TRUNC[] = ",\"prompt_truncated\":true";

/* The bytes of one finding in the array at most: ,{"rule":"R","action":"A","count":N} */
#define FINDING_COST_MAX                                                                           \
    (sizeof ",{\"rule\":\"\",\"action\":\"\",\"count\":}" - 1 + 2 * AUDIT_LLM_FINDING_STR + 20)

/* A duration in ms as the shortest of "%.3f" (trailing zeros dropped). */
static void fmt_ms(char *out, size_t len, double d)
{
    int n = snprintf(out, len, "%.3f", clamp_ms(d));
    if (n <= 0 || (size_t)n >= len) return;
    while (n > 1 && out[n - 1] == '0')
        n--;
    if (out[n - 1] == '.') n--;
    out[n] = '\0';
}

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

/* Escaped bytes granted to a finding's rule or action name. */
static size_t finding_str_len(const char *s)
{
    size_t n = esc_len(str_or_empty(s), AUDIT_LLM_FINDING_STR);
    return n < AUDIT_LLM_FINDING_STR ? n : AUDIT_LLM_FINDING_STR;
}

static size_t finding_cost(const audit_llm_finding_t *x, bool first, char *count, size_t clen)
{
    snprintf(count, clen, "%zu", x->count);
    return (first ? 0 : 1) + sizeof "{\"rule\":\"\",\"action\":\"\",\"count\":}" - 1 +
           finding_str_len(x->rule) + finding_str_len(x->action) + strlen(count);
}

static void finding_put(char *buf, size_t *pos, const audit_llm_finding_t *x, bool first)
{
    char count[24];
    size_t end;

    snprintf(count, sizeof count, "%zu", x->count);
    if (!first) buf[(*pos)++] = ',';
    PUT_LIT(buf, pos, "{\"rule\":\"");
    end = *pos + finding_str_len(x->rule);
    (void)esc_put(buf, end, pos, str_or_empty(x->rule)); /* may be cut */
    PUT_LIT(buf, pos, "\",\"action\":\"");
    end = *pos + finding_str_len(x->action);
    (void)esc_put(buf, end, pos, str_or_empty(x->action));
    PUT_LIT(buf, pos, "\",\"count\":");
    put_raw(buf, pos, count, strlen(count));
    buf[(*pos)++] = '}';
}

size_t audit_format_llm(char *buf, size_t cap, const audit_llm_t *r)
{
    char tbuf[48], status[16], est[24], up[24], down[24], dur[32], gw[32], usage[256];

    if (!buf || cap == 0) return 0;
    buf[0] = '\0';
    if (!r) return 0;

    size_t limit = (cap < AUDIT_LLM_LINE_MAX ? cap : AUDIT_LLM_LINE_MAX) - 1;
    size_t nfind = r->findings ? r->nfindings : 0;
    bool has_prompt = r->prompt && r->prompt_len > 0;

    audit_format_time(r->time_ms, tbuf, sizeof tbuf);
    snprintf(status, sizeof status, "%d", r->status);
    snprintf(est, sizeof est, "%" PRIu64, r->prompt_tokens_est);
    snprintf(up, sizeof up, "%" PRIu64, r->bytes_up);
    snprintf(down, sizeof down, "%" PRIu64, r->bytes_down);
    fmt_ms(dur, sizeof dur, r->duration_ms);
    fmt_ms(gw, sizeof gw, r->gateway_ms);
    if (r->has_usage)
        snprintf(usage, sizeof usage,
                 "{\"input\":%" PRIu64 ",\"output\":%" PRIu64 ",\"cache_read\":%" PRIu64
                 ",\"cache_write\":%" PRIu64 ",\"reasoning\":%" PRIu64 ",\"total\":%" PRIu64
                 ",\"estimated\":%s}",
                 r->input, r->output, r->cache_read, r->cache_write, r->reasoning, r->total,
                 r->estimated ? "true" : "false");
    else
        snprintf(usage, sizeof usage, "null");

    field_t f[] = {
        {"time", FLD_FIXED, tbuf, 0, 0},
        {"type", FLD_FIXED, "llm", 0, 0},
        {"listener", FLD_STR, r->listener, 0, 0},
        {"workspace", FLD_STR, r->workspace, 0, 0},
        {"group", FLD_STR, r->group, 0, 0},
        {"team", FLD_STR, r->team, 0, 0},
        {"agent", FLD_NSTR, r->agent, 0, 0},
        {"task", FLD_NSTR, r->task, 0, 0},
        {"client", FLD_STR, r->client, 0, 0},
        {"provider", FLD_STR, r->provider, 0, 0},
        {"endpoint", FLD_STR, r->endpoint, 0, 0},
        {"region", FLD_NSTR, r->region, 0, 0},
        {"upstream", FLD_STR, r->upstream, 0, 0},
        {"model", FLD_STR, r->model, 0, 0},
        {"stream", FLD_NUM, r->stream ? "true" : "false", 0, 0},
        {"decision", FLD_STR, r->decision, 0, 0},
        {"reason", FLD_NSTR, r->reason, 0, 0},
        {"status", FLD_NUM, status, 0, 0},
        {"usage", FLD_NUM, usage, 0, 0},
        {"prompt_tokens_est", FLD_NUM, est, 0, 0},
        {"findings", FLD_FINDINGS, "", 0, 0},
        {"client_aborted", FLD_NUM, r->client_aborted ? "true" : "false", 0, 0},
        {"bytes_up", FLD_NUM, up, 0, 0},
        {"bytes_down", FLD_NUM, down, 0, 0},
        {"duration_ms", FLD_NUM, dur, 0, 0},
        {"gateway_ms", FLD_NUM, gw, 0, 0},
        {"prompt", FLD_PROMPT, "", 0, 0},
    };
    size_t nf = sizeof f / sizeof f[0], strings;
    _Static_assert(sizeof f / sizeof f[0] <= FIELDS_MAX, "FIELDS_MAX");

    /* Fixed cost, with room reserved for both truncation markers that may
     * be needed (given back when they are not). */
    size_t fixed = fields_measure(f, nf, AUDIT_LINE_MAX, &strings);
    fixed += 2; /* [] */
    if (nfind > 0) fixed += sizeof FINDINGS_TRUNC - 1;
    fixed += has_prompt ? 2 + sizeof PROMPT_TRUNC - 1 : 4; /* "" or null */
    if (fixed > limit) return 0;

    /* The strings: the line without findings and prompt fits AUDIT_LINE_MAX. */
    size_t meta = limit < AUDIT_LINE_MAX - 1 ? limit : AUDIT_LINE_MAX - 1;
    size_t sbudget = meta > fixed ? meta - fixed : 0;
    if (strings > sbudget) {
        water_fill(f, nf, sbudget);
        strings = 0;
        for (size_t i = 0; i < nf; i++)
            if (f[i].type == FLD_STR) strings += f[i].alloc;
    }
    size_t room = limit - fixed - strings;

    /* Findings: the first ones that fit, AUDIT_LLM_FINDINGS_MAX at most. */
    size_t kept = 0;
    char count[24];
    while (kept < nfind && kept < AUDIT_LLM_FINDINGS_MAX) {
        size_t c = finding_cost(&r->findings[kept], kept == 0, count, sizeof count);
        if (c > room) break;
        room -= c;
        kept++;
    }
    bool ftrunc = kept < nfind;
    if (nfind > 0 && !ftrunc) room += sizeof FINDINGS_TRUNC - 1;

    /* The prompt in what is left: whole if it fits without the marker. */
    size_t palloc = 0;
    bool ptrunc = false;
    if (has_prompt) {
        room += sizeof PROMPT_TRUNC - 1;
        size_t plen = esc_len_n(r->prompt, r->prompt_len, room);
        ptrunc = plen > room;
        palloc = ptrunc ? room - (sizeof PROMPT_TRUNC - 1) : plen;
    }

    size_t pos = 0;
    buf[pos++] = '{';
    for (size_t i = 0; i < nf; i++) {
        field_put(buf, &pos, &f[i], i == 0);
        if (f[i].type == FLD_FINDINGS) {
            buf[pos++] = '[';
            for (size_t k = 0; k < kept; k++)
                finding_put(buf, &pos, &r->findings[k], k == 0);
            buf[pos++] = ']';
            if (ftrunc) PUT_LIT(buf, &pos, FINDINGS_TRUNC);
        } else if (f[i].type == FLD_PROMPT) {
            if (!has_prompt) {
                PUT_LIT(buf, &pos, "null");
                continue;
            }
            size_t end = pos + 1 + palloc;
            buf[pos++] = '"';
            (void)esc_put_n(buf, end, &pos, r->prompt, r->prompt_len);
            buf[pos++] = '"';
            if (ptrunc) PUT_LIT(buf, &pos, PROMPT_TRUNC);
        }
    }
    buf[pos++] = '}';
    buf[pos] = '\0';
    return pos;
}

/* ---- queue (producers) ---------------------------------------------------- */

static void ring_copy(size_t at, const char *src, size_t n)
{
    size_t first = g.ring_cap - at;
    if (first >= n) {
        memcpy(g.ring + at, src, n);
    } else {
        memcpy(g.ring + at, src, first);
        memcpy(g.ring, src + first, n - first);
    }
}

/* Queue data[0..len) plus a '\n' when nl is set, or count a drop. */
static void enqueue(const char *data, size_t len, bool nl)
{
    size_t n = len + (nl ? 1 : 0);

    pthread_mutex_lock(&g.mu);
    if (g.state != ST_OPEN) {
        pthread_mutex_unlock(&g.mu);
        return;
    }
    if (g.ring_cap - g.used < n) {
        pthread_mutex_unlock(&g.mu);
        atomic_fetch_add_explicit(&g_dropped, 1, memory_order_relaxed);
        return;
    }
    size_t tail = (g.head + g.used) % g.ring_cap;
    ring_copy(tail, data, len);
    if (nl) ring_copy((tail + len) % g.ring_cap, "\n", 1);
    bool was_empty = g.used == 0;
    g.used += n;
    g.enq_bytes += n;
    if (g.writer_waiting && (was_empty || g.used >= AUDIT_BATCH_BYTES))
        pthread_cond_signal(&g.wake);
    pthread_mutex_unlock(&g.mu);
}

void audit_egress(const audit_egress_t *r)
{
    char line[AUDIT_LINE_MAX];

    if (!r || !atomic_load_explicit(&g_open, memory_order_relaxed)) return;
    size_t n = audit_format_egress(line, sizeof line, r);
    if (n == 0) return;
    line[n] = '\n'; /* n <= AUDIT_LINE_MAX - 1 */
    enqueue(line, n + 1, false);
}

/* A buffer size that holds r's line whole (with its '\n'), capped at
 * AUDIT_LLM_LINE_MAX: the line without findings and prompt fits in
 * AUDIT_LINE_MAX (audit_format_llm), each finding takes at most
 * FINDING_COST_MAX and each prompt byte at most 6 escaped bytes. */
static size_t llm_line_bound(const audit_llm_t *r)
{
    size_t nfind = r->findings ? r->nfindings : 0;
    if (nfind > AUDIT_LLM_FINDINGS_MAX) nfind = AUDIT_LLM_FINDINGS_MAX;
    size_t b = AUDIT_LINE_MAX + nfind * FINDING_COST_MAX;
    if (r->prompt && r->prompt_len > 0) {
        if (r->prompt_len >= AUDIT_LLM_LINE_MAX) return AUDIT_LLM_LINE_MAX;
        b += 6 * r->prompt_len;
    }
    return b < AUDIT_LLM_LINE_MAX ? b : AUDIT_LLM_LINE_MAX;
}

void audit_llm(const audit_llm_t *r)
{
    char stack[2 * AUDIT_LINE_MAX];

    if (!r || !atomic_load_explicit(&g_open, memory_order_relaxed)) return;
    size_t cap = llm_line_bound(r);
    char *line = stack, *heap = NULL;
    if (cap > sizeof stack && (heap = malloc(cap)) != NULL)
        line = heap;
    else
        cap = sizeof stack; /* no memory: a shorter line (findings or prompt cut) */
    size_t n = audit_format_llm(line, cap, r);
    if (n > 0) {
        line[n] = '\n'; /* n <= cap - 1 */
        enqueue(line, n + 1, false);
    }
    free(heap);
}

void audit_write_line(const char *json, size_t len)
{
    if (!json || len == 0 || !atomic_load_explicit(&g_open, memory_order_relaxed)) return;
    /* A line that cannot be framed as one JSON line is refused, not cut. */
    if (len > AUDIT_LINE_MAX - 1 || memchr(json, '\n', len)) {
        atomic_fetch_add_explicit(&g_dropped, 1, memory_order_relaxed);
        return;
    }
    enqueue(json, len, true);
}

uint64_t audit_dropped(void)
{
    return atomic_load_explicit(&g_dropped, memory_order_relaxed);
}

/* ---- writer thread -------------------------------------------------------- */

static size_t count_lines(const struct iovec *iov, int n)
{
    size_t lines = 0;
    for (int i = 0; i < n; i++) {
        const char *p = iov[i].iov_base, *end = p + iov[i].iov_len;
        while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            lines++;
            p++;
        }
    }
    return lines;
}

/* writev() everything in *iovp; 0 ok, -1 with errno, *iovp and *np then
 * describing what was not written. */
static int write_all(int fd, struct iovec **iovp, int *np)
{
    struct iovec *iov = *iovp;
    int n = *np;
    int rc = 0;

    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) { /* a non-blocking stdout */
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                (void)poll(&pfd, 1, 1000);
                continue;
            }
            rc = -1;
            break;
        }
        size_t left = (size_t)w;
        while (n > 0 && left >= iov[0].iov_len) {
            left -= iov[0].iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov[0].iov_base = (char *)iov[0].iov_base + left;
            iov[0].iov_len -= left;
        }
    }
    *iovp = iov;
    *np = n;
    return rc;
}

static void write_region(size_t head, size_t n, bool *failing)
{
    struct iovec iov[2];
    int niov = 1;
    size_t first = g.ring_cap - head;

    iov[0].iov_base = g.ring + head;
    iov[0].iov_len = first < n ? first : n;
    if (first < n) {
        iov[1].iov_base = g.ring;
        iov[1].iov_len = n - first;
        niov = 2;
    }
    struct iovec *left = iov;
    int nleft = niov;
    if (write_all(g.fd, &left, &nleft) == 0) {
        *failing = false;
        return;
    }
    int err = errno;
    /* Whatever was not written is lost: count it (a line cut in the middle
     * counts as lost too, its '\n' being in the unwritten part). */
    atomic_fetch_add_explicit(&g_dropped, count_lines(left, nleft), memory_order_relaxed);
    if (!*failing) {
        char eb[128];
        fprintf(stderr, "cdeguard: audit: write failed, records dropped: %s\n",
                strerror_r(err, eb, sizeof eb));
        *failing = true;
    }
}

static void deadline_after_ms(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *writer_main(void *arg)
{
    bool failing = false;
    (void)arg;

    pthread_mutex_lock(&g.mu);
    for (;;) {
        struct timespec deadline;
        bool have_deadline = false;
        while (!g.stop && g.nsw == 0 && g.used < AUDIT_BATCH_BYTES) {
            int rc;
            g.writer_waiting = true;
            if (g.used == 0) {
                have_deadline = false;
                rc = pthread_cond_wait(&g.wake, &g.mu);
            } else {
                if (!have_deadline) {
                    deadline_after_ms(&deadline, AUDIT_FLUSH_MS);
                    have_deadline = true;
                }
                rc = pthread_cond_timedwait(&g.wake, &g.mu, &deadline);
            }
            g.writer_waiting = false;
            if (rc == ETIMEDOUT) break;
        }

        size_t head = g.head, n = g.used;
        bool swap = g.nsw > 0;
        struct audit_switch next = g.sw[0];
        if (swap) {
            /* Only what was queued before the switch goes to the old sink. */
            uint64_t old_part = next.seq - g.deq_bytes;
            if (old_part < n) n = (size_t)old_part;
            memmove(&g.sw[0], &g.sw[1], (size_t)(g.nsw - 1) * sizeof g.sw[0]);
            g.nsw--;
        }
        pthread_mutex_unlock(&g.mu);

        if (n > 0) write_region(head, n, &failing);
        if (swap) {
            if (g.fd_owned) close(g.fd);
            g.fd = next.fd;
            g.fd_owned = next.owned;
            failing = false;
        }

        pthread_mutex_lock(&g.mu);
        g.head = (head + n) % g.ring_cap;
        g.used -= n;
        g.deq_bytes += n;
        if (g.used == 0) {
            g.head = 0;
        } else if (g.used <= AUDIT_COMPACT_BYTES && g.head >= g.used &&
                   g.head + g.used <= g.ring_cap) {
            /* under steady load the queue is seldom empty when a write
             * ends: move the few lines queued meanwhile to the start, or
             * head would creep through (and keep resident) the whole ring */
            memcpy(g.ring, g.ring + g.head, g.used);
            g.head = 0;
        }
        if (g.stop && g.used == 0 && g.nsw == 0) break;
    }
    pthread_mutex_unlock(&g.mu);
    return NULL;
}

/* ---- control -------------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *what, const char *path, int e)
{
    char eb[128];
    if (!err || errlen == 0) return;
    if (path)
        snprintf(err, errlen, "audit: %s %s: %s", what, path, strerror_r(e, eb, sizeof eb));
    else if (e)
        snprintf(err, errlen, "audit: %s: %s", what, strerror_r(e, eb, sizeof eb));
    else
        snprintf(err, errlen, "audit: %s", what);
}

static int sink_open(bool to_stdout, const char *path, int *fd, bool *owned, char *err,
                     size_t errlen)
{
    if (to_stdout) {
        *fd = STDOUT_FILENO;
        *owned = false;
        return 0;
    }
    if (!path || !*path) {
        set_err(err, errlen, "no file path for the audit sink", NULL, 0);
        return -1;
    }
    *fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, AUDIT_FILE_MODE);
    if (*fd < 0) {
        set_err(err, errlen, "cannot open", path, errno);
        return -1;
    }
    *owned = true;
    return 0;
}

/* Hand a freshly opened sink to the writer: everything queued from now on
 * goes there.  When AUDIT_SWITCHES are already pending the newest of them is
 * replaced but keeps its position, so that nothing queued after either call
 * reaches a sink that was switched away from. */
static void install_swap(int fd, bool owned)
{
    pthread_mutex_lock(&g.mu);
    if (g.nsw == AUDIT_SWITCHES) {
        struct audit_switch *last = &g.sw[AUDIT_SWITCHES - 1];
        if (last->owned) close(last->fd);
        last->fd = fd;
        last->owned = owned;
    } else {
        g.sw[g.nsw++] = (struct audit_switch){.seq = g.enq_bytes, .fd = fd, .owned = owned};
    }
    if (g.writer_waiting) pthread_cond_signal(&g.wake);
    pthread_mutex_unlock(&g.mu);
}

static int open_locked(bool to_stdout, const char *path, char *err, size_t errlen)
{
    int fd, rc;
    bool owned;
    char *pcopy = NULL;
    char *ring = NULL;
    pthread_condattr_t ca;
    sigset_t all, old;

    if (sink_open(to_stdout, path, &fd, &owned, err, errlen) < 0) return -1;
    if (!to_stdout && !(pcopy = strdup(path))) {
        set_err(err, errlen, "out of memory", NULL, 0);
        goto out_close;
    }
    if (!(ring = malloc(AUDIT_QUEUE_BYTES))) {
        set_err(err, errlen, "out of memory for the queue", NULL, 0);
        goto out_free_path;
    }
    if (pthread_condattr_init(&ca) != 0) {
        set_err(err, errlen, "cannot create condition variable", NULL, 0);
        goto out_free_ring;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    rc = pthread_cond_init(&g.wake, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0) {
        set_err(err, errlen, "cannot create condition variable", NULL, 0);
        goto out_free_ring;
    }

    pthread_mutex_lock(&g.mu);
    g.ring = ring;
    g.ring_cap = AUDIT_QUEUE_BYTES;
    g.head = g.used = 0;
    g.enq_bytes = g.deq_bytes = 0;
    g.nsw = 0;
    g.stop = g.writer_waiting = false;
    g.fd = fd;
    g.fd_owned = owned;
    pthread_mutex_unlock(&g.mu);
    g.to_stdout = to_stdout;
    g.path = pcopy;

    /* The writer takes no signals: they belong to the event loop, and a
     * closed stdout pipe must give EPIPE there rather than kill the process. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&g.thread, NULL, writer_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        set_err(err, errlen, "cannot start the writer thread", NULL, rc);
        goto out_reset;
    }

    pthread_mutex_lock(&g.mu);
    g.state = ST_OPEN;
    pthread_mutex_unlock(&g.mu);
    atomic_store(&g_open, true);
    return 0;

out_reset:
    pthread_mutex_lock(&g.mu);
    g.ring = NULL;
    g.ring_cap = 0;
    g.fd = -1;
    pthread_mutex_unlock(&g.mu);
    g.path = NULL;
    pthread_cond_destroy(&g.wake);
out_free_ring:
    free(ring);
out_free_path:
    free(pcopy);
out_close:
    if (owned) close(fd);
    return -1;
}

int audit_open(bool to_stdout, const char *path, char *err, size_t errlen)
{
    int rc = -1;

    pthread_mutex_lock(&ctl_mu);
    if (g.state != ST_CLOSED)
        set_err(err, errlen, "already open", NULL, 0);
    else
        rc = open_locked(to_stdout, path, err, errlen);
    pthread_mutex_unlock(&ctl_mu);
    return rc;
}

int audit_reconfigure(bool to_stdout, const char *path, char *err, size_t errlen)
{
    int fd, rc = -1;
    bool owned;
    char *pcopy = NULL;

    pthread_mutex_lock(&ctl_mu);
    if (g.state == ST_CLOSED) {
        rc = open_locked(to_stdout, path, err, errlen);
        goto out_unlock;
    }
    if (sink_open(to_stdout, path, &fd, &owned, err, errlen) < 0)
        goto out_unlock; /* the old sink stays */
    if (!to_stdout && !(pcopy = strdup(path))) {
        set_err(err, errlen, "out of memory", NULL, 0);
        if (owned) close(fd);
        goto out_unlock;
    }
    install_swap(fd, owned);
    free(g.path);
    g.path = pcopy;
    g.to_stdout = to_stdout;
    rc = 0;
out_unlock:
    pthread_mutex_unlock(&ctl_mu);
    return rc;
}

int audit_reopen(void)
{
    int fd, rc = 0;

    pthread_mutex_lock(&ctl_mu);
    if (g.state != ST_OPEN || g.to_stdout) goto out_unlock;
    fd = open(g.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, AUDIT_FILE_MODE);
    if (fd < 0) {
        rc = -1; /* errno is the caller's message; the old file stays in use */
        goto out_unlock;
    }
    install_swap(fd, true);
out_unlock:
    pthread_mutex_unlock(&ctl_mu);
    return rc;
}

void audit_close(void)
{
    pthread_mutex_lock(&ctl_mu);
    pthread_mutex_lock(&g.mu);
    if (g.state != ST_OPEN) {
        pthread_mutex_unlock(&g.mu);
        pthread_mutex_unlock(&ctl_mu);
        return;
    }
    g.state = ST_CLOSING; /* producers return from here on */
    atomic_store(&g_open, false);
    g.stop = true;
    pthread_cond_signal(&g.wake);
    pthread_mutex_unlock(&g.mu);

    pthread_join(g.thread, NULL); /* it drains the queue first */

    pthread_mutex_lock(&g.mu);
    if (g.fd_owned) close(g.fd);
    g.fd = -1;
    g.fd_owned = false;
    free(g.ring);
    g.ring = NULL;
    g.ring_cap = g.head = g.used = 0;
    g.stop = false;
    g.state = ST_CLOSED;
    pthread_mutex_unlock(&g.mu);
    pthread_cond_destroy(&g.wake);
    free(g.path);
    g.path = NULL;
    pthread_mutex_unlock(&ctl_mu);
}
