/*
 * fuzz_relay — libFuzzer harness for src/llm/relay.
 *
 * Input: byte 0 seeds the chunking and picks strip mode (low bit); the rest
 * is an upstream event stream.  Checks:
 *   - pass-through: the client receives exactly the input, whatever the
 *     chunking;
 *   - strip: one-shot and chunked feeding emit identical bytes, identical
 *     usage and the same number of stripped events; the output is never
 *     longer than the input and is the input with whole byte ranges removed
 *     (a subsequence);
 *   - nothing is held after finish.
 * A violated invariant calls abort() so libFuzzer records the input.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/relay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef struct sink {
    char *p;
    size_t len, cap;
} sink_t;

static int emit(const char *d, size_t n, void *ctx)
{
    sink_t *s = ctx;
    CHECK(s->len + n <= s->cap);
    memcpy(s->p + s->len, d, n);
    s->len += n;
    return 0;
}

static void run(const char *in, size_t n, bool strip, unsigned seed, sink_t *out, llm_usage_t *u,
                uint64_t *stripped)
{
    llm_relay_t r;
    llm_relay_init(&r, LLM_OPENAI_CHAT, strip, 64, emit, out);
    size_t pos = 0;
    while (pos < n) {
        size_t step = seed ? 1 + (seed = seed * 1103515245u + 12345u, (seed >> 16) % 17) : n - pos;
        if (step > n - pos) step = n - pos;
        CHECK(llm_relay_feed(&r, in + pos, step) == 0);
        pos += step;
    }
    CHECK(llm_relay_finish(&r) == 0);
    CHECK(r.hold_len == 0);
    llm_relay_usage(&r, u);
    *stripped = r.stripped;
    llm_relay_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536) return 0;
    bool strip = data[0] & 1;
    unsigned seed = data[0] | 1u;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    char *b1 = malloc(n + 1), *b2 = malloc(n + 1);
    if (!b1 || !b2) abort();
    sink_t one = {b1, 0, n}, chunked = {b2, 0, n};
    llm_usage_t u1, u2;
    uint64_t s1, s2;
    run(in, n, strip, 0, &one, &u1, &s1);
    run(in, n, strip, seed, &chunked, &u2, &s2);
    CHECK(one.len == chunked.len && memcmp(one.p, chunked.p, one.len) == 0);
    CHECK(s1 == s2);
    CHECK(u1.input == u2.input && u1.output == u2.output && u1.seen == u2.seen);
    if (!strip) {
        CHECK(one.len == n && memcmp(one.p, in, n) == 0);
    } else {
        /* a subsequence of the input */
        size_t j = 0;
        for (size_t i = 0; i < n && j < one.len; i++)
            if (in[i] == one.p[j]) j++;
        CHECK(j == one.len);
    }
    free(b1);
    free(b2);
    return 0;
}
