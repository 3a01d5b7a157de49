/*
 * fuzz_sse — libFuzzer harness for src/llm/sse (sse_feed, sse_finish).
 *
 * Input: byte 0 picks max_event (1..64, or the 4 MiB default when its top
 * bit is set), byte 1 seeds the chunking; the rest is the stream.  Checks:
 *   - the stream fed one-shot and cut into random chunks (three different
 *     chunkings, including empty chunks) gives byte-identical event logs,
 *     the same sse_finish() result, retry and counters;
 *   - events come in stream order with non-overlapping ranges inside the
 *     input; a dispatched event is at most max_event bytes and ends on a CR
 *     or LF; an oversize report spans exactly max_event + 1 bytes; type and
 *     data are NUL-terminated at their lengths; data is no longer than its
 *     range;
 *   - the bytes of a dispatched event's range, fed to a fresh parser, give
 *     exactly one event with the same type and data (unless the range starts
 *     with a BOM, which a fresh parser strips).
 * A violated invariant calls abort() so libFuzzer records the input.
 * Seeds: fuzz/corpus/fuzz_sse/; dictionary: fuzz/fuzz_sse.dict.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef struct flog {
    unsigned char *p;
    size_t len, cap;
    size_t n;
    uint64_t last_end;
    const char *stream;
    size_t stream_len;
    size_t max;
    bool reparse; /* run the re-parse check (one-shot run only) */
} flog_t;

static void put(flog_t *l, const void *s, size_t n)
{
    size_t need = l->len + n;
    if (need > l->cap) {
        size_t cap = l->cap ? l->cap : 256;
        while (cap < need)
            cap *= 2;
        unsigned char *np = realloc(l->p, cap);
        CHECK(np != NULL);
        l->p = np;
        l->cap = cap;
    }
    if (n) memcpy(l->p + l->len, s, n);
    l->len += n;
}

typedef struct single {
    size_t n;
    char type[80];
    size_t type_len;
    char *data;
    size_t data_len;
} single_t;

static int single_cb(const sse_event_t *ev, void *ctx)
{
    single_t *s = ctx;
    s->n++;
    if (s->n > 1) return 0;
    s->type_len = ev->type_len;
    memcpy(s->type, ev->type, ev->type_len < sizeof s->type ? ev->type_len : sizeof s->type);
    s->data = malloc(ev->data_len + 1);
    CHECK(s->data != NULL);
    memcpy(s->data, ev->data, ev->data_len);
    s->data_len = ev->data_len;
    return 0;
}

static int log_cb(const sse_event_t *ev, void *ctx)
{
    flog_t *l = ctx;
    CHECK(ev->start < ev->end);
    CHECK(ev->start >= l->last_end);
    CHECK(ev->end <= l->stream_len || ev->oversize);
    CHECK(ev->type[ev->type_len] == '\0' && ev->data[ev->data_len] == '\0');
    CHECK(ev->id[ev->id_len] == '\0');
    if (ev->oversize) {
        CHECK(ev->end - ev->start == (uint64_t)l->max + 1);
        CHECK(ev->type_len == 0 && ev->data_len == 0);
    } else {
        CHECK(ev->end - ev->start <= l->max);
        CHECK(ev->data_len < ev->end - ev->start);
        char last = l->stream[ev->end - 1];
        CHECK(last == '\n' || last == '\r');
    }
    l->last_end = ev->oversize ? ev->start + 1 : ev->end;
    l->n++;

    uint64_t v[5] = {ev->start, ev->end, ev->type_len, ev->data_len, ev->id_len};
    put(l, v, sizeof v);
    put(l, &ev->oversize, sizeof ev->oversize);
    put(l, ev->type, ev->type_len);
    put(l, ev->data, ev->data_len);
    put(l, ev->id, ev->id_len);

    /* the event's own bytes make the same event */
    const unsigned char *s = (const unsigned char *)l->stream + ev->start;
    size_t rl = (size_t)(ev->end - ev->start);
    if (l->reparse && !ev->oversize && !(rl >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF)) {
        single_t one;
        memset(&one, 0, sizeof one);
        sse_parser_t p;
        sse_init(&p, l->max, single_cb, &one);
        CHECK(sse_feed(&p, (const char *)s, rl) == SSE_OK);
        CHECK(sse_finish(&p) == SSE_END_CLEAN);
        sse_free(&p);
        CHECK(one.n == 1);
        CHECK(one.type_len == ev->type_len);
        CHECK(memcmp(one.type, ev->type, ev->type_len < 80 ? ev->type_len : 80) == 0);
        CHECK(one.data_len == ev->data_len && memcmp(one.data, ev->data, ev->data_len) == 0);
        free(one.data);
    }
    return 0;
}

typedef struct outcome {
    flog_t log;
    int fin;
    uint64_t pos, dispatched, oversized, retry;
    bool has_retry;
} outcome_t;

static void run(const char *s, size_t n, size_t max, uint64_t seed, bool reparse, outcome_t *o)
{
    memset(o, 0, sizeof *o);
    o->log.stream = s;
    o->log.stream_len = n;
    sse_parser_t p;
    sse_init(&p, max, log_cb, &o->log);
    o->log.max = p.max_event;
    o->log.reparse = reparse;
    size_t at = 0;
    while (at < n) {
        size_t k = n - at;
        if (seed) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            k = (size_t)(seed % 9);
            if ((seed >> 20) % 5 == 0) k = (size_t)((seed >> 8) % 97);
            if (k > n - at) k = n - at;
        }
        /* an exact-size heap copy, so ASan sees any over-read */
        char *piece = malloc(k ? k : 1);
        CHECK(piece != NULL);
        if (k) memcpy(piece, s + at, k);
        CHECK(sse_feed(&p, piece, k) == SSE_OK);
        free(piece);
        at += k;
    }
    o->fin = sse_finish(&p);
    CHECK(o->fin == SSE_END_CLEAN || o->fin == SSE_END_TRUNCATED);
    CHECK(sse_feed(&p, "x", 1) == SSE_ESTATE);
    o->pos = p.pos;
    o->dispatched = p.dispatched;
    o->oversized = p.oversized;
    o->retry = p.retry_ms;
    o->has_retry = p.has_retry;
    CHECK(p.pos == n);
    CHECK(o->log.n == p.dispatched + p.oversized);
    sse_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t max = (data[0] & 0x80) ? 0 : (size_t)(data[0] % 64) + 1;
    uint64_t seed = 0x9E3779B97F4A7C15ull * (uint64_t)(data[1] + 1);
    const char *s = (const char *)data + 2;
    size_t n = size - 2;

    outcome_t one, other;
    run(s, n, max, 0, true, &one);
    for (int k = 0; k < 3; k++) {
        run(s, n, max, seed + (uint64_t)k * 0x2545F4914F6CDD1Dull, false, &other);
        CHECK(other.fin == one.fin);
        CHECK(other.pos == one.pos && other.dispatched == one.dispatched);
        CHECK(other.oversized == one.oversized);
        CHECK(other.has_retry == one.has_retry && other.retry == one.retry);
        CHECK(other.log.len == one.log.len);
        CHECK(one.log.len == 0 || memcmp(other.log.p, one.log.p, one.log.len) == 0);
        free(other.log.p);
    }
    free(one.log.p);
    return 0;
}
