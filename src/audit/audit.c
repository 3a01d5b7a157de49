/*
 * audit.c — JSON-lines audit writer: formatting on the caller's thread, one
 * writer thread, a bounded byte ring between them.
 *
 * Formatting (audit_format_egress, audit_json_escape, audit_format_time) is
 * pure: it writes only into the caller's buffer and never allocates.  Every
 * string is escaped for JSON (", \, control bytes and DEL as \u00XX, each
 * byte that is not part of a well-formed UTF-8 sequence as \ufffd) and a
 * record is cut to fit AUDIT_LINE_MAX including its '\n': strings are shrunk
 * by water-filling (the shortest keep their full value, the longest share
 * what is left) and cut only between escape units, so a line is always one
 * valid JSON object.
 *
 * Queue: a ring of ring_cap bytes holding complete '\n'-terminated lines.
 * Invariants (under g.mu): 0 <= used <= ring_cap, head < ring_cap; the bytes
 * [head, head + used) mod ring_cap are lines not yet written.  Producers copy
 * a whole line into the free part or, when it does not fit, count a drop and
 * return: they never block on I/O.  The writer takes a snapshot of the used
 * part, writes it with writev() without holding the lock (producers never
 * touch used bytes) and only then releases the space.  When the queue empties
 * head goes back to 0 so that an idle ring touches few pages.  The writer
 * writes when 64 KiB are queued, 100 ms after it first saw pending data, on a
 * sink switch and at close.
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
#define AUDIT_BATCH_BYTES ((size_t)64 << 10) /* write as soon as this much is queued */
#define AUDIT_FLUSH_MS 100                   /* ...or this long after data appeared */
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
 * overlongs, no surrogates, nothing above U+10FFFF), or 0.  s is
 * NUL-terminated and NUL is never a continuation byte, so the short-circuit
 * tests never read past the end. */
static size_t utf8_seq_len(const unsigned char *s)
{
    unsigned char c = s[0];
#define CONT(x) ((x) >= 0x80 && (x) <= 0xbf)
    if (c >= 0xc2 && c <= 0xdf) return CONT(s[1]) ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        unsigned char lo = c == 0xe0 ? 0xa0 : 0x80;
        unsigned char hi = c == 0xed ? 0x9f : 0xbf;
        return s[1] >= lo && s[1] <= hi && CONT(s[2]) ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned char lo = c == 0xf0 ? 0x90 : 0x80;
        unsigned char hi = c == 0xf4 ? 0x8f : 0xbf;
        return s[1] >= lo && s[1] <= hi && CONT(s[2]) && CONT(s[3]) ? 4 : 0;
    }
#undef CONT
    return 0;
}

/* The escaped form of the next character of s: fills out (up to 6 bytes) and
 * *outlen, returns the input bytes consumed (>= 1).  *s must not be NUL. */
static size_t esc_unit(const unsigned char *s, char out[6], size_t *outlen)
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
    size_t n = utf8_seq_len(s);
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
        p += esc_unit(p, unit, &ulen);
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
        size_t used = esc_unit(p, unit, &ulen);
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

enum { FLD_FIXED, FLD_STR, FLD_OPT, FLD_NUM };

typedef struct field {
    const char *key;
    int type;        /* FLD_*: FIXED/NUM verbatim, STR escaped, OPT escaped or omitted */
    const char *val; /* NUL-terminated; NULL → "" (STR) or omitted (OPT) */
    size_t len;      /* FIXED/NUM: length; STR/OPT: escaped length, capped */
    size_t alloc;    /* STR/OPT: output bytes granted */
} field_t;

#define NFIELDS 20

static void put_raw(char *buf, size_t *pos, const char *s, size_t n)
{
    memcpy(buf + *pos, s, n);
    *pos += n;
}

/* Grant each string min(its length, a fair share) of budget: the shortest are
 * kept whole and the rest split what remains equally. */
static void water_fill(field_t *f, size_t nf, size_t budget)
{
    field_t *s[NFIELDS];
    size_t n = 0;

    for (size_t i = 0; i < nf; i++)
        if (f[i].type == FLD_STR || f[i].type == FLD_OPT) s[n++] = &f[i];
    for (size_t i = 1; i < n; i++) /* insertion sort by length, n <= 20 */
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
    double d = r->duration_ms;
    if (!(d >= 0.0)) /* negative or NaN */
        d = 0.0;
    if (d > 1e12) /* keeps "%.3f" short (inf too); ~31 years */
        d = 1e12;
    snprintf(dur, sizeof dur, "%.3f", d);

    field_t f[NFIELDS] = {
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

    /* Fixed cost: braces, keys, separators, quotes and the verbatim values. */
    size_t fixed = 2, strings = 0, nout = 0;
    for (size_t i = 0; i < NFIELDS; i++) {
        if (f[i].type == FLD_OPT && !f[i].val) continue;
        if (!f[i].val) f[i].val = "";
        fixed += (nout++ ? 1 : 0) + strlen(f[i].key) + 3; /* ,"key": */
        if (f[i].type == FLD_FIXED || f[i].type == FLD_NUM) {
            f[i].len = strlen(f[i].val);
            fixed += f[i].len + (f[i].type == FLD_FIXED ? 2 : 0);
        } else {
            f[i].len = esc_len(f[i].val, limit);
            f[i].alloc = f[i].len;
            fixed += 2;
            strings += f[i].len;
        }
    }
    if (fixed > limit) return 0;
    if (strings > limit - fixed) water_fill(f, NFIELDS, limit - fixed);

    size_t pos = 0;
    nout = 0;
    buf[pos++] = '{';
    for (size_t i = 0; i < NFIELDS; i++) {
        if (f[i].type == FLD_OPT && !f[i].val) continue;
        if (nout++) buf[pos++] = ',';
        buf[pos++] = '"';
        put_raw(buf, &pos, f[i].key, strlen(f[i].key));
        put_raw(buf, &pos, "\":", 2);
        if (f[i].type == FLD_NUM) {
            put_raw(buf, &pos, f[i].val, f[i].len);
            continue;
        }
        buf[pos++] = '"';
        if (f[i].type == FLD_FIXED) {
            put_raw(buf, &pos, f[i].val, f[i].len);
        } else {
            size_t end = pos + f[i].alloc;
            (void)esc_put(buf, end, &pos, f[i].val); /* a cut is expected here */
        }
        buf[pos++] = '"';
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
        if (g.used == 0) g.head = 0;
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
