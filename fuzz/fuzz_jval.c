/*
 * fuzz_jval — libFuzzer harness for src/core/jval (jval_parse and accessors).
 *
 * The input is used as is (an exact-size heap copy, not NUL-terminated, so
 * ASan catches any read past len).  Checks:
 *   - jval_parse returns JVAL_OK, JVAL_EMALFORMED or JVAL_ELIMIT and agrees
 *     with json_walk (src/inspect/json) on the return code and the error
 *     message: both accept and reject exactly the same inputs;
 *   - on success, the strings of the tree (keys and values, in document
 *     order, decoded) are exactly the strings json_walk reports; the number
 *     of values counted by walking the tree is jval_doc_nodes(); the
 *     document is valid with max_nodes = that count and refused with
 *     JVAL_ELIMIT with one less;
 *   - every member is found by its key (jval_getn returns the last member
 *     with that key); jval_int64 and jval_number agree when both succeed;
 *     jval_path with a path taken from the input does not crash.
 * A violated invariant calls abort() so libFuzzer records the input.
 * Seeds: fuzz/corpus/fuzz_jval/ (fuzz/corpus/fuzz_json/ fits too);
 * dictionary: fuzz/fuzz_json.dict.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jval.h"
#include "inspect/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Strings recorded as (is_key, len, bytes) in one growing buffer. */
typedef struct strlog {
    unsigned char *p;
    size_t len, cap;
} strlog_t;

static void log_put(strlog_t *l, bool is_key, const char *s, size_t n)
{
    size_t need = l->len + 1 + sizeof n + n;
    if (need > l->cap) {
        size_t cap = l->cap ? l->cap : 256;
        while (cap < need)
            cap *= 2;
        unsigned char *np = realloc(l->p, cap);
        CHECK(np != NULL);
        l->p = np;
        l->cap = cap;
    }
    l->p[l->len++] = is_key ? 'k' : 'v';
    memcpy(l->p + l->len, &n, sizeof n);
    l->len += sizeof n;
    if (n) memcpy(l->p + l->len, s, n);
    l->len += n;
}

static int walk_cb(const json_string_t *s, void *ctx)
{
    log_put(ctx, s->is_key, s->text, s->len);
    return 0;
}

/* Document-order traversal: strings into the log; returns the value count. */
static size_t traverse(const jval_t *v, strlog_t *l, int depth)
{
    CHECK(depth <= JVAL_MAX_DEPTH);
    size_t nodes = 1;
    size_t n = 0;
    switch (jval_type(v)) {
    case JVAL_STRING: {
        const char *s = jval_str(v, &n);
        CHECK(s != NULL && s[n] == '\0' && jval_len(v) == n);
        log_put(l, false, s, n);
        break;
    }
    case JVAL_ARRAY:
        CHECK(depth < JVAL_MAX_DEPTH);
        for (size_t i = 0; i < jval_len(v); i++)
            nodes += traverse(jval_at(v, i), l, depth + 1);
        CHECK(jval_at(v, jval_len(v)) == NULL);
        break;
    case JVAL_OBJECT:
        CHECK(depth < JVAL_MAX_DEPTH);
        for (size_t i = 0; i < jval_len(v); i++) {
            const char *k = NULL;
            size_t kl = 0;
            const jval_t *m = jval_member(v, i, &k, &kl);
            CHECK(m != NULL && k != NULL && k[kl] == '\0');
            log_put(l, true, k, kl);
            /* lookup finds this member or a later one with the same key */
            const jval_t *g = jval_getn(v, k, kl);
            CHECK(g != NULL);
            size_t j = i;
            while (j < jval_len(v) && jval_member(v, j, NULL, NULL) != g)
                j++;
            CHECK(j < jval_len(v));
            nodes += traverse(m, l, depth + 1);
        }
        break;
    case JVAL_NUMBER: {
        int64_t iv;
        double d;
        int ri = jval_int64(v, &iv);
        int rd = jval_number(v, &d);
        CHECK(ri == JVAL_OK || ri == JVAL_EMALFORMED || ri == JVAL_ELIMIT);
        CHECK(rd == JVAL_OK || rd == JVAL_ELIMIT);
        if (ri == JVAL_OK && rd == JVAL_OK) CHECK((double)iv == d);
        break;
    }
    case JVAL_BOOL:
        CHECK(jval_bool(v, NULL));
        break;
    case JVAL_NULL:
        CHECK(jval_is_null(v));
        break;
    case JVAL_NONE:
        CHECK(!"a tree value of type NONE");
    }
    return nodes;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_scratch_t sc;
    static bool inited;
    if (!inited) {
        json_scratch_init(&sc);
        inited = true;
    }
    char *in = malloc(size ? size : 1);
    CHECK(in != NULL);
    if (size) memcpy(in, data, size);

    char e1[256], e2[256];
    strlog_t want = {0}, got = {0};
    jval_doc_t *doc = NULL;
    /* every value takes at least one byte: size + 1 nodes is never the limit */
    int r1 = jval_parse(in, size, size + 1, &doc, e1, sizeof e1);
    int r2 = json_walk(in, size, &sc, walk_cb, &want, e2, sizeof e2);
    CHECK(r1 == JVAL_OK || r1 == JVAL_EMALFORMED || r1 == JVAL_ELIMIT);
    if (r1 != r2 || strcmp(e1, e2) != 0)
        fprintf(stderr, "jval %d '%s' / json_walk %d '%s'\n", r1, e1, r2, e2);
    CHECK(r1 == r2);
    CHECK(strcmp(e1, e2) == 0);
    CHECK((r1 == JVAL_OK) == (doc != NULL));

    if (r1 == JVAL_OK) {
        const jval_t *root = jval_root(doc);
        size_t nodes = traverse(root, &got, 0);
        CHECK(nodes == jval_doc_nodes(doc));
        CHECK(got.len == want.len && (got.len == 0 || memcmp(got.p, want.p, got.len) == 0));

        /* a path from the input bytes */
        char path[33];
        size_t pl = size < 32 ? size : 32;
        memcpy(path, in, pl);
        path[pl] = '\0';
        (void)jval_path(root, path);

        jval_doc_t *d2 = NULL;
        CHECK(jval_parse(in, size, nodes, &d2, NULL, 0) == JVAL_OK);
        jval_free(d2);
        d2 = NULL;
        if (nodes > 1) {
            CHECK(jval_parse(in, size, nodes - 1, &d2, e1, sizeof e1) == JVAL_ELIMIT);
            CHECK(d2 == NULL);
        }
    }
    jval_free(doc);
    free(want.p);
    free(got.p);
    free(in);
    return 0;
}
