/*
 * fuzz_json — libFuzzer harness for src/inspect/json (json_walk, json_redact).
 *
 * The input is used as is (an exact-size heap copy, not NUL-terminated, so
 * ASan catches any read past len).  Checks:
 *   - json_walk returns 0, -1 or -2, the same on a second run, and on error
 *     writes a message starting "offset N: " with N <= len;
 *   - for every string: raw_start - 1 and raw_end are quotes inside the
 *     input, map[0] == raw_start (len > 0), map is non-decreasing with every
 *     entry in [raw_start, raw_end] and map[len] == raw_end, the decoded
 *     length is within [raw/6, raw] bytes, the text is valid UTF-8, the
 *     path is NUL-terminated, <= 255 bytes, and "" only at depth 0, and the
 *     depth is in [0, JSON_MAX_DEPTH] (>= 1 for keys);
 *   - json_redact with spans picked from the strings (on character boundaries
 *     and at arbitrary raw offsets, so they cut escapes) succeeds exactly when
 *     the input is valid, and its output is valid JSON with the same number
 *     of strings; redact with no spans is an exact copy; a malformed input
 *     is refused.
 * A violated invariant calls abort() so libFuzzer records the input.
 * Seeds: fuzz/corpus/fuzz_json/; dictionary: fuzz/fuzz_json.dict.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inspect/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_SPANS 32

typedef struct fctx {
    const char *in;
    size_t len;
    uint64_t rng;
    size_t strings;
    json_span_t spans[MAX_SPANS];
    size_t nspans;
} fctx_t;

static uint64_t next_rand(fctx_t *f)
{
    f->rng ^= f->rng << 13;
    f->rng ^= f->rng >> 7;
    f->rng ^= f->rng << 17;
    return f->rng;
}

static bool valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t l;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            l = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            l = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            l = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            return false;
        }
        if (n - i < l || s[i + 1] < lo || s[i + 1] > hi) return false;
        for (size_t k = 2; k < l; k++)
            if ((s[i + k] & 0xC0) != 0x80) return false;
        i += l;
    }
    return true;
}

static const char *const labels[] = {"[R]", "[REDACTED:x]", "", "[\"\\\t]", "\xc3\xa9"};

static int check_cb(const json_string_t *s, void *vctx)
{
    fctx_t *f = vctx;
    f->strings++;
    CHECK(s->raw_start >= 1 && s->raw_start <= s->raw_end && s->raw_end < f->len);
    CHECK(f->in[s->raw_start - 1] == '"' && f->in[s->raw_end] == '"');
    CHECK(s->map[s->len] == s->raw_end);
    if (s->len > 0) CHECK(s->map[0] == s->raw_start);
    for (size_t i = 0; i < s->len; i++) {
        CHECK(s->map[i] <= s->map[i + 1]);
        CHECK(s->map[i] >= s->raw_start && s->map[i] < s->raw_end);
    }
    size_t raw = s->raw_end - s->raw_start;
    CHECK(s->len <= raw);
    CHECK(s->len * 6 >= raw);
    CHECK(valid_utf8((const unsigned char *)s->text, s->len));
    CHECK(s->depth >= 0 && s->depth <= JSON_MAX_DEPTH);
    if (s->is_key) CHECK(s->depth >= 1);
    size_t pl = strnlen(s->path, 256);
    CHECK(pl <= 255);
    CHECK((pl == 0) == (s->depth == 0));
    if (pl) CHECK(s->path[0] == '/');

    /* pick up to two spans from this string */
    for (int k = 0; k < 2 && f->nspans < MAX_SPANS; k++) {
        uint64_t r = next_rand(f);
        if (r % 3 == 0) continue;
        json_span_t *sp = &f->spans[f->nspans++];
        if (r & 8) {
            /* character-aligned span */
            size_t a = (size_t)(next_rand(f) % (s->len + 1));
            size_t b = a + (size_t)(next_rand(f) % (s->len - a + 1));
            sp->start = s->map[a];
            sp->end = s->map[b];
        } else {
            /* arbitrary raw offsets inside the body (may cut escapes) */
            size_t a = s->raw_start + (size_t)(next_rand(f) % (raw + 1));
            size_t b = a + (size_t)(next_rand(f) % (s->raw_end - a + 1));
            sp->start = a;
            sp->end = b;
        }
        sp->label = labels[(r >> 8) % (sizeof labels / sizeof labels[0])];
    }
    return 0;
}

static int count_cb(const json_string_t *s, void *vctx)
{
    (void)s;
    (*(size_t *)vctx)++;
    return 0;
}

static void check_err(int rc, const char *err, size_t len)
{
    if (rc == 0) {
        CHECK(err[0] == '\0');
        return;
    }
    unsigned long long off;
    int used = 0;
    CHECK(sscanf(err, "offset %llu: %n", &off, &used) == 1 && used > 0);
    CHECK(off <= len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_scratch_t sc;
    static bool inited;
    char err[256];
    const char *in = (const char *)data;
    if (!inited) {
        json_scratch_init(&sc);
        inited = true;
    }

    fctx_t f;
    memset(&f, 0, sizeof f);
    f.in = in;
    f.len = size;
    f.rng = 0x9E3779B97F4A7C15ull ^ size;
    for (size_t i = 0; i < size && i < 64; i++)
        f.rng = (f.rng ^ data[i]) * 0x100000001B3ull;
    if (!f.rng) f.rng = 1;

    int rc = json_walk(in, size, &sc, check_cb, &f, err, sizeof err);
    CHECK(rc == 0 || rc == -1 || rc == -2);
    check_err(rc, err, size);
    int rc2 = json_walk(in, size, &sc, NULL, NULL, err, sizeof err);
    CHECK(rc2 == rc);

    char *out = NULL;
    size_t outlen = 0;

    /* no spans: exact copy, or refusal */
    int r0 = json_redact(in, size, NULL, 0, &out, &outlen, err, sizeof err);
    CHECK(r0 == (rc == 0 ? 0 : -1));
    check_err(r0, err, size);
    if (r0 == 0) {
        CHECK(outlen == size && (size == 0 || memcmp(out, in, size) == 0));
        CHECK(out[outlen] == '\0');
    } else {
        CHECK(out == NULL && outlen == 0);
    }
    free(out);
    out = NULL;

    if (rc != 0) {
        /* whatever the spans, a malformed document is refused */
        json_span_t sp = {0, size, "[R]"};
        CHECK(json_redact(in, size, &sp, 1, &out, &outlen, err, sizeof err) == -1);
        CHECK(out == NULL);
        return 0;
    }

    int r = json_redact(in, size, f.spans, f.nspans, &out, &outlen, err, sizeof err);
    if (r != 0) fprintf(stderr, "redact refused: %s\n", err);
    CHECK(r == 0);
    CHECK(out[outlen] == '\0');
    size_t nstr = 0;
    int rw = json_walk(out, outlen, &sc, count_cb, &nstr, err, sizeof err);
    if (rw != 0) fprintf(stderr, "redacted output invalid: %s\n", err);
    CHECK(rw == 0);
    CHECK(nstr == f.strings);
    free(out);
    return 0;
}
