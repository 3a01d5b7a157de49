/*
 * test_gate.c — unit tests of src/inspect/gate.c: numeric phrases and
 * anchor bytes, checked against a byte-at-a-time reference on fixed cases
 * and on seeded random inputs (both vector paths, every alignment, blocks
 * skipped for sparseness).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inspect/gate.h"

#define MAXREP 4096

typedef struct rep {
    size_t v[MAXREP][3]; /* phrase: start, end, digits; anchor: pos, 0, 0 */
    size_t n, na;
    size_t a[MAXREP];
} rep_t;

static int on_phrase(size_t start, size_t end, unsigned digits, void *ctx)
{
    rep_t *r = ctx;
    assert_true(r->n < MAXREP);
    r->v[r->n][0] = start;
    r->v[r->n][1] = end;
    r->v[r->n][2] = digits;
    r->n++;
    return 0;
}

static int on_anchor(size_t pos, void *ctx)
{
    rep_t *r = ctx;
    assert_true(r->na < MAXREP);
    r->a[r->na++] = pos;
    return 0;
}

/* The definition, one byte at a time. */
static void reference(const gate_spec_t *g, const char *s, size_t n, rep_t *r)
{
    memset(r, 0, sizeof *r);
    bool open = false;
    size_t start = 0, last = 0;
    unsigned digits = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        for (unsigned k = 0; k < g->nanchors; k++)
            if (c == g->anchors[k]) r->a[r->na++] = i;
        if (c < '0' || c > '9') continue;
        size_t gap = open ? i - last - 1 : 99;
        bool joined =
            open && (gap == 0 || (gap <= 2 && gate_is_separator((unsigned char)s[last + 1]) &&
                                  (gap == 1 || gate_is_separator((unsigned char)s[last + 2]))));
        if (joined) {
            last = i;
            digits++;
            continue;
        }
        if (open && g->min_digits && digits >= g->min_digits) on_phrase(start, last + 1, digits, r);
        open = true;
        start = last = i;
        digits = 1;
    }
    if (open && g->min_digits && digits >= g->min_digits) on_phrase(start, last + 1, digits, r);
}

static void check_same(const gate_spec_t *g, const char *s, size_t n)
{
    static rep_t want, got;
    reference(g, s, n, &want);
    memset(&got, 0, sizeof got);
    /* an exact-size heap copy, so ASan sees any read past the end */
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, s, n);
    assert_int_equal(gate_scan(g, copy, n, on_phrase, on_anchor, &got), 0);
    free(copy);
    assert_int_equal(got.n, want.n);
    for (size_t i = 0; i < want.n; i++) {
        assert_int_equal(got.v[i][0], want.v[i][0]);
        assert_int_equal(got.v[i][1], want.v[i][1]);
        assert_int_equal(got.v[i][2], want.v[i][2]);
    }
    assert_int_equal(got.na, want.na);
    for (size_t i = 0; i < want.na; i++)
        assert_int_equal(got.a[i], want.a[i]);
}

static gate_spec_t spec(unsigned min_digits, bool avx2)
{
    gate_spec_t g;
    gate_init(&g);
    g.min_digits = min_digits;
    if (!avx2) g.avx2 = false;
    return g;
}

static void test_shapes(void **state)
{
    (void)state;
    gate_spec_t g = spec(7, true);
    static rep_t r;
    struct {
        const char *text;
        size_t start, end;
        unsigned digits;
    } cases[] = {
        {"tel (11) 98158-3054.", 5, 19, 11},
        {"07 37 51 86 83", 0, 14, 10},
        {"card 4111-1111-1111-1111 exp", 5, 24, 16},
        {"IBAN DE89 3704 0044 0532 0130 00", 7, 32, 20},
        {"mask 0x00000000;", 7, 15, 8},
        {"+1 (555) 010-0199", 1, 17, 11},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&r, 0, sizeof r);
        gate_scan(&g, cases[i].text, strlen(cases[i].text), on_phrase, on_anchor, &r);
        assert_int_equal(r.n, 1);
        assert_int_equal(r.v[0][0], cases[i].start);
        assert_int_equal(r.v[0][1], cases[i].end);
        assert_int_equal(r.v[0][2], cases[i].digits);
        check_same(&g, cases[i].text, strlen(cases[i].text));
    }
    /* three separators, a letter, a comma or a tab break a phrase */
    const char *broken[] = {"123 - 4567", "1234x567", "1234,567", "1234\t567", "12 34 5"};
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        memset(&r, 0, sizeof r);
        gate_scan(&g, broken[i], strlen(broken[i]), on_phrase, on_anchor, &r);
        assert_int_equal(r.n, 0);
    }
}

static void test_anchors(void **state)
{
    (void)state;
    gate_spec_t g = spec(0, true);
    assert_int_equal(gate_add_anchor(&g, '@'), 0);
    assert_int_equal(gate_add_anchor(&g, '@'), 0); /* no duplicate */
    assert_int_equal(g.nanchors, 1);
    char text[300];
    memset(text, 'a', sizeof text);
    size_t where[] = {0, 31, 32, 63, 64, 65, 127, 128, 250, 299};
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++)
        text[where[i]] = '@';
    static rep_t r;
    memset(&r, 0, sizeof r);
    gate_scan(&g, text, sizeof text, on_phrase, on_anchor, &r);
    assert_int_equal(r.na, sizeof where / sizeof where[0]);
    for (size_t i = 0; i < r.na; i++)
        assert_int_equal(r.a[i], where[i]);
    assert_int_equal(r.n, 0); /* min_digits 0: no phrases */
    for (int k = 1; k < GATE_MAX_ANCHORS; k++)
        assert_int_equal(gate_add_anchor(&g, (unsigned char)('#' + k)), 0);
    assert_int_equal(gate_add_anchor(&g, '!'), -1);
}

/* Random text over a small alphabet rich in digits and separators, whole
 * and at every offset of the first block, on both vector paths. */
static void test_random_against_reference(void **state)
{
    (void)state;
    static const char alphabet[] = "0123456789012345678901234567890123456789 .-/()x,@\n";
    static char buf[1200];
    srand(7);
    for (int round = 0; round < 400; round++) {
        size_t n = (size_t)(rand() % (int)sizeof buf);
        int density = 1 + rand() % 4; /* 1 = sparse digits, 4 = dense */
        for (size_t i = 0; i < n; i++) {
            int pick = rand() % (int)(sizeof alphabet - 1);
            if (pick < 40 && rand() % 4 >= density) pick = 40 + rand() % 10; /* thin digits */
            buf[i] = alphabet[pick];
        }
        unsigned min = 1 + (unsigned)(rand() % 24); /* also above the skip limit (21) */
        for (int avx2 = 0; avx2 <= 1; avx2++) {
            gate_spec_t g = spec(min, avx2 != 0);
            gate_add_anchor(&g, '@');
            size_t off = (size_t)(rand() % 64);
            if (off > n) off = n;
            check_same(&g, buf, n);
            check_same(&g, buf + off, n - off);
        }
    }
}

static int stop(size_t s, size_t e, unsigned d, void *c)
{
    (void)s;
    (void)e;
    (void)d;
    (void)c;
    return 5;
}

static void test_stop(void **state)
{
    (void)state;
    gate_spec_t g = spec(3, true);
    const char *text = "111 222 333 444";
    /* a callback's non-zero value stops the pass and is returned */
    assert_int_equal(gate_scan(&g, text, strlen(text), stop, NULL, NULL), 5);
    assert_int_equal(gate_scan(&g, "", 0, stop, NULL, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_anchors),
        cmocka_unit_test(test_random_against_reference),
        cmocka_unit_test(test_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
