/*
 * fuzz_domain — libFuzzer harness for src/policy/domain.c.
 *
 * Input format: line 1 is a host, every further line (up to MAX_PATTERNS) a
 * pattern for domain_set_add with id = its line number.  Checked:
 *   - domain_normalize either fails with a message or returns <= DOMAIN_MAX
 *     bytes of [a-z0-9-_.] with no empty label, and normalising that output
 *     again gives the same output (idempotence);
 *   - domain_set_match on the normalised host returns what a brute-force
 *     reference matcher (longest name wins; exact before ".x" on the apex,
 *     "*.x" before ".x" below it; first id of duplicates) returns, and the
 *     raw, un-normalised line never crashes it;
 *   - raw punycode: decode(encode(cps)) == cps for the input read as code
 *     points, and decoding line 1 then re-encoding round-trips.
 * Any violation aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/domain.h"

#define MAX_PATTERNS 32
#define MAX_LINE 600

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_domain: check failed: %s (line %d)\n", #cond, __LINE__);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

enum { REF_EXACT, REF_SUFFIX, REF_WILD };

typedef struct {
    int kind;
    char name[DOMAIN_MAX + 1];
    size_t len;
    int id;
} ref_t;

static void check_normalised(const char *out, int n)
{
    CHECK(n > 0 && n <= DOMAIN_MAX);
    CHECK(out[n] == '\0');
    CHECK(out[0] != '.' && out[n - 1] != '.');
    for (int i = 0; i < n; i++) {
        const char c = out[i];
        CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.');
        if (c == '.') CHECK(out[i + 1] != '.');
    }
    char again[DOMAIN_MAX + 1];
    char err[160];
    const int m = domain_normalize(out, (size_t)n, again, sizeof again, err, sizeof err);
    if (m != n || memcmp(again, out, (size_t)n) != 0) {
        fprintf(stderr, "not idempotent: \"%s\" -> %d \"%s\" (%s)\n", out, m, m >= 0 ? again : "",
                m < 0 ? err : "");
        abort();
    }
}

static int ref_match(const ref_t *refs, size_t nrefs, const char *host, size_t hlen)
{
    int best = -1;
    size_t best_rank = 0;
    for (size_t i = 0; i < nrefs; i++) {
        const ref_t *r = &refs[i];
        size_t rank = 0;
        if (r->len == hlen && memcmp(r->name, host, hlen) == 0) {
            if (r->kind == REF_EXACT) rank = r->len * 4 + 2;
            if (r->kind == REF_SUFFIX) rank = r->len * 4 + 1;
        } else if (r->len < hlen && host[hlen - r->len - 1] == '.' &&
                   memcmp(r->name, host + hlen - r->len, r->len) == 0) {
            if (r->kind == REF_WILD) rank = r->len * 4 + 2;
            if (r->kind == REF_SUFFIX) rank = r->len * 4 + 1;
        }
        if (rank > best_rank) {
            best_rank = rank;
            best = r->id;
        }
    }
    return best;
}

static void fuzz_punycode(const uint8_t *data, size_t size, const char *line, size_t linelen)
{
    uint32_t cp[64];
    uint32_t back[64];
    char enc[512];
    size_t n = size / 4 < 64 ? size / 4 : 64;
    for (size_t i = 0; i < n; i++) {
        uint32_t v;
        memcpy(&v, data + 4 * i, 4);
        cp[i] = v % 0x110000u;
    }
    int e = domain_punycode_encode(cp, n, enc, sizeof enc);
    if (e >= 0) {
        CHECK(domain_punycode_decode(enc, (size_t)e, back, 64) == (int)n);
        CHECK(n == 0 || memcmp(back, cp, n * sizeof cp[0]) == 0);
    }
    int d = domain_punycode_decode(line, linelen, cp, 64);
    if (d >= 0) {
        e = domain_punycode_encode(cp, (size_t)d, enc, sizeof enc);
        CHECK(e >= 0);
        CHECK(domain_punycode_decode(enc, (size_t)e, back, 64) == d);
        CHECK(d == 0 || memcmp(back, cp, (size_t)d * sizeof cp[0]) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    const char *nl = memchr(p, '\n', size);
    const size_t hlen = nl ? (size_t)(nl - p) : size;

    char host[DOMAIN_MAX + 1];
    char err[160] = "";
    const int hn = domain_normalize(p, hlen, host, sizeof host, err, sizeof err);
    if (hn >= 0)
        check_normalised(host, hn);
    else
        CHECK(err[0] != '\0' && memchr(err, '\0', sizeof err) != NULL);

    fuzz_punycode(data, size, p, hlen);

    domain_set_t *s = domain_set_new();
    if (!s) return 0;
    static ref_t refs[MAX_PATTERNS];
    size_t nrefs = 0;
    size_t off = nl ? hlen + 1 : size;
    for (int id = 1; off < size && id <= MAX_PATTERNS; id++) {
        const char *q = p + off;
        const char *e = memchr(q, '\n', size - off);
        size_t len = e ? (size_t)(e - q) : size - off;
        off += len + 1;
        char pat[MAX_LINE];
        if (len >= sizeof pat) len = sizeof pat - 1;
        memcpy(pat, q, len);
        pat[len] = '\0';
        if (domain_set_add(s, pat, id, err, sizeof err) != 0) {
            CHECK(err[0] != '\0');
            continue;
        }
        /* Accepted: the reference must agree on what it means. */
        ref_t r = {.kind = REF_EXACT, .id = id};
        const char *body = pat;
        if (pat[0] == '*' && pat[1] == '.') {
            r.kind = REF_WILD;
            body += 2;
        } else if (pat[0] == '.') {
            r.kind = REF_SUFFIX;
            body += 1;
        }
        const int rn = domain_normalize(body, strlen(body), r.name, sizeof r.name, NULL, 0);
        CHECK(rn > 0);
        check_normalised(r.name, rn);
        r.len = (size_t)rn;
        bool dup = false;
        for (size_t i = 0; i < nrefs; i++)
            dup |= refs[i].kind == r.kind && refs[i].len == r.len &&
                   memcmp(refs[i].name, r.name, r.len) == 0;
        if (!dup) refs[nrefs++] = r;
    }
    CHECK(domain_set_count(s) == nrefs);

    if (hn >= 0) {
        const int got = domain_set_match(s, host, (size_t)hn);
        const int want = ref_match(refs, nrefs, host, (size_t)hn);
        if (got != want) {
            fprintf(stderr, "match \"%s\": set %d, reference %d\n", host, got, want);
            abort();
        }
    }
    /* Each pattern's name, and a subdomain of it, used as hosts: the set and
     * the reference agree (random hosts rarely hit random patterns). */
    for (size_t i = 0; i < nrefs; i++) {
        const ref_t *r = &refs[i];
        CHECK(domain_set_match(s, r->name, r->len) == ref_match(refs, nrefs, r->name, r->len));
        if (r->len + 2 > DOMAIN_MAX) continue;
        char sub[DOMAIN_MAX + 1];
        sub[0] = 'a';
        sub[1] = '.';
        memcpy(sub + 2, r->name, r->len);
        CHECK(domain_set_match(s, sub, r->len + 2) == ref_match(refs, nrefs, sub, r->len + 2));
    }
    (void)domain_set_match(s, p, hlen); /* raw bytes: must not crash */
    domain_set_free(s);
    return 0;
}
