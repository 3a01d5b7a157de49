/*
 * sse.c — incremental Server-Sent Events parser (see sse.h).
 *
 * Bytes go through two stages: the BOM check (up to three leading bytes are
 * held back until they are known to be, or not to be, EF BB BF), then the
 * line splitter.  A line that lies wholly inside one fed chunk is
 * interpreted in place; only a line that spans chunks is copied into the
 * line buffer.  A CR line end sets `cr`, so an LF at the start of the next
 * chunk is taken as the rest of that line end.
 *
 * Invariants:
 *   - block <= pos; pos counts every byte fed (held BOM bytes are counted
 *     when they are decided);
 *   - while not skipping, pos - block <= max_event, so line.len, data.len,
 *     type.len and id.len are all <= max_event (and each buffer holds one
 *     more byte, a NUL terminator, whenever it is allocated);
 *   - line_len is the length of the current line so far; when not skipping
 *     and the line spans chunks, line.len == line_len;
 *   - an oversize report happens at most once per block (skipping is set
 *     until the block's blank line).
 *
 * Memory: four heap buffers (line, data, type, id) owned by the parser,
 * grown geometrically up to max_event + 1 bytes, freed by sse_free().
 */
#include "llm/sse.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SSE_RUNNING = 0, SSE_FINISHED = 1, SSE_STOPPED = 2 };

#define SSE_BOM_DECIDED 3u /* the whole BOM matched, or a byte did not */
#define SSE_BUF_MIN 256u

static const unsigned char sse_bom[3] = {0xEF, 0xBB, 0xBF};

__attribute__((format(printf, 2, 3))) static void set_err(sse_parser_t *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
}

/* ---- buffers ---------------------------------------------------------------- */

/* Room for need bytes plus a NUL, never more than limit + 1 in all.
 * 0 ok, SSE_ENOMEM (out of memory or over the limit: a bug guard). */
static int buf_reserve(sse_buf_t *b, size_t need, size_t limit)
{
    if (need > limit) return SSE_ENOMEM;
    if (b->p && need + 1 <= b->cap) return SSE_OK;
    size_t cap = b->cap ? b->cap : SSE_BUF_MIN;
    while (cap < need + 1)
        cap = cap > (limit + 1) / 2 ? limit + 1 : cap * 2;
    if (cap > limit + 1) cap = limit + 1;
    char *np = realloc(b->p, cap);
    if (!np) return SSE_ENOMEM;
    b->p = np;
    b->cap = cap;
    return SSE_OK;
}

static int buf_append(sse_parser_t *p, sse_buf_t *b, const char *s, size_t n)
{
    if (n > SIZE_MAX - b->len || buf_reserve(b, b->len + n, p->max_event) != SSE_OK) {
        set_err(p, "out of memory buffering an event at offset %llu", (unsigned long long)p->block);
        return SSE_ENOMEM;
    }
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return SSE_OK;
}

static int buf_set(sse_parser_t *p, sse_buf_t *b, const char *s, size_t n)
{
    b->len = 0;
    return buf_append(p, b, s, n);
}

static void buf_free(sse_buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- set-up ----------------------------------------------------------------- */

void sse_init(sse_parser_t *p, size_t max_event, sse_event_cb cb, void *ctx)
{
    memset(p, 0, sizeof *p);
    p->max_event = max_event ? max_event : SSE_DEFAULT_MAX_EVENT;
    if (p->max_event > SIZE_MAX / 2) p->max_event = SIZE_MAX / 2;
    p->cb = cb;
    p->ctx = ctx;
    p->state = SSE_RUNNING;
}

void sse_free(sse_parser_t *p)
{
    buf_free(&p->line);
    buf_free(&p->data);
    buf_free(&p->type);
    buf_free(&p->id);
}

/* ---- interpretation --------------------------------------------------------- */

static int call(sse_parser_t *p, const sse_event_t *ev)
{
    if (!p->cb) return 0;
    int rc = p->cb(ev, p->ctx);
    if (rc) {
        p->state = SSE_STOPPED;
        set_err(p, "stopped by the callback (%d) at offset %llu", rc, (unsigned long long)ev->end);
    }
    return rc;
}

/* A blank line ended at `end` (just after its first terminator byte). */
static int dispatch(sse_parser_t *p, uint64_t end)
{
    int rc = 0;
    if (p->data.len > 0) {
        sse_event_t ev;
        ev.type = p->type.len ? p->type.p : "message";
        ev.type_len = p->type.len ? p->type.len : 7;
        ev.data_len = p->data.len - 1;
        p->data.p[ev.data_len] = '\0'; /* drop the trailing LF */
        ev.data = p->data.p;
        ev.id = p->id.len ? p->id.p : "";
        ev.id_len = p->id.len;
        ev.start = p->block;
        ev.end = end;
        ev.oversize = false;
        p->dispatched++;
        rc = call(p, &ev);
    }
    p->data.len = 0;
    p->type.len = 0;
    return rc;
}

static bool all_digits(const char *s, size_t n)
{
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

/* One complete, non-blank line. */
static int field_line(sse_parser_t *p, const char *s, size_t n)
{
    if (s[0] == ':') return SSE_OK; /* comment */
    const char *colon = memchr(s, ':', n);
    size_t flen = colon ? (size_t)(colon - s) : n;
    const char *v = colon ? colon + 1 : s + n;
    size_t vlen = colon ? n - flen - 1 : 0;
    if (vlen > 0 && v[0] == ' ') {
        v++;
        vlen--;
    }
    if (flen == 5 && memcmp(s, "event", 5) == 0) return buf_set(p, &p->type, v, vlen);
    if (flen == 4 && memcmp(s, "data", 4) == 0) {
        int rc = buf_append(p, &p->data, v, vlen);
        return rc ? rc : buf_append(p, &p->data, "\n", 1);
    }
    if (flen == 2 && memcmp(s, "id", 2) == 0) {
        if (vlen && memchr(v, '\0', vlen)) return SSE_OK;
        return buf_set(p, &p->id, v, vlen);
    }
    if (flen == 5 && memcmp(s, "retry", 5) == 0 && all_digits(v, vlen)) {
        uint64_t ms = 0;
        for (size_t i = 0; i < vlen; i++) {
            uint64_t d = (uint64_t)(v[i] - '0');
            ms = ms > (UINT64_MAX - d) / 10 ? UINT64_MAX : ms * 10 + d;
        }
        p->retry_ms = ms;
        p->has_retry = true;
    }
    return SSE_OK;
}

/* The block crossed max_event: report it once and skip to its blank line. */
static int oversize(sse_parser_t *p)
{
    sse_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = ev.data = ev.id = "";
    ev.start = p->block;
    ev.end = p->block + p->max_event + 1;
    ev.oversize = true;
    p->skipping = true;
    p->line.len = 0;
    p->data.len = 0;
    p->type.len = 0;
    p->oversized++;
    set_err(p, "event at offset %llu is larger than %zu bytes", (unsigned long long)p->block,
            p->max_event);
    return call(p, &ev);
}

/* Would the block, through stream offset `upto` (exclusive), be too large? */
static bool too_large(const sse_parser_t *p, uint64_t upto)
{
    return !p->skipping && upto - p->block > p->max_event;
}

/* Split buf[0..len) (which starts at stream offset p->pos) into lines. */
static int lines(sse_parser_t *p, const char *buf, size_t len)
{
    size_t i = 0;
    int rc;
    while (i < len) {
        if (p->cr) {
            p->cr = false;
            if (buf[i] == '\n') {
                /* the rest of a CRLF */
                if (p->cr_blank) {
                    p->block++; /* outside every block */
                } else if (too_large(p, p->pos + 1) && (rc = oversize(p))) {
                    p->pos++;
                    return rc;
                }
                p->pos++;
                i++;
                continue;
            }
        }

        /* next line end */
        size_t j = i;
        while (j < len && buf[j] != '\n' && buf[j] != '\r')
            j++;
        size_t n = j - i;

        if (j == len) {
            /* a partial line: keep it for the next chunk */
            if (too_large(p, p->pos + n)) {
                rc = oversize(p);
                p->line_len += n;
                p->pos += n;
                return rc;
            }
            if (!p->skipping && (rc = buf_append(p, &p->line, buf + i, n))) return rc;
            p->line_len += n;
            p->pos += n;
            return SSE_OK;
        }

        uint64_t end = p->pos + n + 1; /* after the terminator's first byte */
        bool blank = p->line_len + n == 0;
        rc = SSE_OK;
        if (too_large(p, end)) rc = oversize(p);
        if (rc == SSE_OK && !p->skipping) {
            if (blank) {
                rc = dispatch(p, end);
            } else if (p->line_len) {
                rc = buf_append(p, &p->line, buf + i, n);
                if (rc == SSE_OK) rc = field_line(p, p->line.p, p->line.len);
            } else {
                rc = field_line(p, buf + i, n);
            }
        }
        if (blank) {
            p->skipping = false;
            p->data.len = 0;
            p->type.len = 0;
        }
        p->line.len = 0;
        p->line_len = 0;
        p->pos = end;
        if (blank) p->block = end;
        if (buf[j] == '\r') {
            p->cr = true;
            p->cr_blank = blank;
        }
        i = j + 1;
        if (rc) return rc;
    }
    return SSE_OK;
}

/* ---- entry points ----------------------------------------------------------- */

static int check_running(sse_parser_t *p)
{
    if (p->state == SSE_RUNNING) return SSE_OK;
    if (p->state == SSE_FINISHED) set_err(p, "fed after the end of the stream");
    return SSE_ESTATE;
}

/* Release held BOM bytes as ordinary bytes. */
static int bom_release(sse_parser_t *p)
{
    unsigned k = p->bom_seen;
    p->bom_seen = SSE_BOM_DECIDED;
    return k ? lines(p, (const char *)sse_bom, k) : SSE_OK;
}

int sse_feed(sse_parser_t *p, const char *buf, size_t len)
{
    int rc = check_running(p);
    if (rc) return rc;
    if (!buf && len) {
        set_err(p, "no input");
        return SSE_ESTATE;
    }
    size_t i = 0;
    while (p->bom_seen < SSE_BOM_DECIDED && i < len) {
        if ((unsigned char)buf[i] != sse_bom[p->bom_seen]) {
            if ((rc = bom_release(p))) goto out_stop;
            break;
        }
        i++;
        if (++p->bom_seen == SSE_BOM_DECIDED) p->pos = p->block = 3;
    }
    if (i < len && (rc = lines(p, buf + i, len - i))) goto out_stop;
    return SSE_OK;

out_stop:
    p->state = SSE_STOPPED;
    return rc;
}

int sse_finish(sse_parser_t *p)
{
    int rc = check_running(p);
    if (rc) return rc;
    if (p->bom_seen < SSE_BOM_DECIDED && (rc = bom_release(p))) {
        p->state = SSE_STOPPED;
        return rc;
    }
    p->state = SSE_FINISHED;
    bool partial = p->line_len > 0 && !p->skipping && p->line.p && p->line.p[0] != ':';
    if (p->skipping || p->data.len > 0 || partial) {
        set_err(p, "stream ended inside the event that began at offset %llu",
                (unsigned long long)p->block);
        return SSE_END_TRUNCATED;
    }
    return SSE_END_CLEAN;
}
