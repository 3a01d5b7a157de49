/*
 * test_price.c — unit tests of src/limits/price: decimal prices parsed
 * exactly (6 decimal places, no floating point, the bounds and every
 * refusal), first-match model lookup, the cost of a call with the cache
 * split of llm/usage.h's normalised usage (OpenAI cached reads, Anthropic
 * cache reads and writes), rounding half up, saturation, USD formatting,
 * and the cost arithmetic cross-checked against 128-bit integers.
 *
 * Usage: test_price [cmocka test-name filter].
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limits/price.h"

/* ---- helpers -------------------------------------------------------------- */

static uint64_t parse_ok(const char *s)
{
    char err[160] = "";
    uint64_t v = 0;
    int rc = lim_price_parse_usd_per_mtok(s, &v, err, sizeof err);
    if (rc != LIM_PRICE_OK) fprintf(stderr, "\"%s\": %s\n", s, err);
    assert_int_equal(rc, LIM_PRICE_OK);
    return v;
}

static void parse_bad(const char *s, const char *needle)
{
    char err[160] = "";
    uint64_t v = 777;
    int rc = lim_price_parse_usd_per_mtok(s, &v, err, sizeof err);
    if (rc != LIM_PRICE_EINVAL || !strstr(err, needle))
        fprintf(stderr, "\"%s\": rc %d err \"%s\" (want \"%s\")\n", s, rc, err, needle);
    assert_int_equal(rc, LIM_PRICE_EINVAL);
    assert_int_equal(v, 777); /* untouched */
    assert_non_null(strstr(err, needle));
}

static lim_price_t price(const char *pattern, const char *in, const char *out, const char *cr,
                         const char *cw)
{
    lim_price_t p;
    char err[160] = "";
    int rc = lim_price_set(&p, pattern, in, out, cr, cw, err, sizeof err);
    if (rc != LIM_PRICE_OK) fprintf(stderr, "%s: %s\n", pattern, err);
    assert_int_equal(rc, LIM_PRICE_OK);
    return p;
}

static const char *usd(uint64_t nano)
{
    static char buf[LIM_USD_BUFSZ];
    assert_true(lim_format_usd(nano, buf, sizeof buf) > 0);
    return buf;
}

/* ---- parsing ---------------------------------------------------------------- */

static void test_parse(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("2.50"), 2500000); /* 2.50 USD / 1M tokens */
    assert_int_equal(parse_ok("2.5"), 2500000);
    assert_int_equal(parse_ok("0"), 0);
    assert_int_equal(parse_ok("0.0"), 0);
    assert_int_equal(parse_ok("15"), 15000000);
    assert_int_equal(parse_ok("0.075"), 75000);
    assert_int_equal(parse_ok("0.0375"), 37500); /* not a whole nano-USD per token */
    assert_int_equal(parse_ok("0.01875"), 18750);
    assert_int_equal(parse_ok("0.000001"), 1);
    assert_int_equal(parse_ok("0.000009"), 9);
    assert_int_equal(parse_ok("123456.654321"), 123456654321);
    assert_int_equal(parse_ok("00002.50"), 2500000);
    assert_int_equal(parse_ok("2.5000000000"), 2500000); /* zeros past 6 places */
    assert_int_equal(parse_ok("1000000"), 1000000000000);
    assert_int_equal(parse_ok("1000000.000000"), 1000000000000);
    assert_int_equal(parse_ok("999999.999999"), 999999999999);
    assert_int_equal(parse_ok("0000000000000000000000001"), 1000000);

    parse_bad("1000000.000001", "over 1000000 USD per million tokens");
    parse_bad("1000001", "over 1000000 USD");
    parse_bad("99999999999999999999999", "over 1000000 USD");
    parse_bad("2.5000001", "more than 6 decimal places");
    parse_bad("0.0000001", "more than 6 decimal places");
    parse_bad("-1", "negative");
    parse_bad("-0", "negative");
    parse_bad("1e3", "exponents are not accepted");
    parse_bad("2.5E1", "exponents are not accepted");
    parse_bad("", "expected USD per million tokens");
    parse_bad(" 2", "expected USD per million tokens");
    parse_bad("+2", "expected USD per million tokens");
    parse_bad(".5", "expected USD per million tokens");
    parse_bad("$2", "expected USD per million tokens");
    parse_bad("abc", "expected USD per million tokens");
    parse_bad("2.", "a digit must follow '.'");
    parse_bad("2..5", "a digit must follow '.'");
    parse_bad("2 ", "unexpected ' '");
    parse_bad("2,50", "unexpected ','");
    parse_bad("2.5.1", "unexpected '.'");
    parse_bad("0x10", "unexpected 'x'");
    parse_bad("inf", "expected USD per million tokens");
    parse_bad("nan", "expected USD per million tokens");

    uint64_t v;
    assert_int_equal(lim_price_parse_usd_per_mtok(NULL, &v, NULL, 0), LIM_PRICE_EINVAL);
    assert_int_equal(lim_price_parse_usd_per_mtok("1", NULL, NULL, 0), LIM_PRICE_EINVAL);
    char tiny[5];
    assert_int_equal(lim_price_parse_usd_per_mtok("-1", &v, tiny, sizeof tiny), LIM_PRICE_EINVAL);
    assert_int_equal(strlen(tiny), 4);
}

static void test_set_and_find(void **state)
{
    (void)state;
    lim_price_t table[5];
    table[0] = price("gpt-4o-mini*", "0.15", "0.60", "0.075", NULL);
    table[1] = price("gpt-4o*", "2.50", "10.00", "1.25", NULL);
    table[2] = price("claude-?-5-*", "3", "15", "0.30", "3.75");
    table[3] = price("claude-*", "15", "75", "1.50", "18.75");
    table[4] = price("*", "1", "2", NULL, NULL);
    /* cache prices default to the input price */
    assert_int_equal(table[0].cache_write, table[0].in);
    assert_int_equal(table[4].cache_read, 1000000);
    assert_int_equal(table[2].cache_write, 3750000);
    assert_string_equal(table[1].pattern, "gpt-4o*");

    const struct {
        const char *model;
        int want;
    } cases[] = {
        {"gpt-4o-mini-2024-07-18", 0},
        {"gpt-4o-mini", 0},
        {"gpt-4o-2024-08-06", 1},
        {"gpt-4o", 1},
        {"claude-3-5-sonnet", 2},
        {"claude-3-opus", 3},
        {"claude-35-sonnet", 3},
        {"llama-3", 4},
        {"", 4},
        {"GPT-4o", 4}, /* case-sensitive */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const lim_price_t *p = lim_price_find(table, 5, cases[i].model, strlen(cases[i].model));
        assert_ptr_equal(p, &table[cases[i].want]);
    }
    /* the length bounds the name: "gpt-4o-mini" cut to "gpt-4o" */
    assert_ptr_equal(lim_price_find(table, 5, "gpt-4o-mini", 6), &table[1]);
    /* no catch-all: no match */
    assert_null(lim_price_find(table, 4, "llama-3", 7));
    assert_null(lim_price_find(table, 0, "gpt-4o", 6));
    assert_null(lim_price_find(NULL, 5, "gpt-4o", 6));
    assert_null(lim_price_find(table, 4, NULL, 3));
    assert_ptr_equal(lim_price_find(table, 5, NULL, 0), &table[4]);
    /* an entry without a pattern is skipped */
    lim_price_t holes[2] = {{NULL, 1, 1, 1, 1}, {NULL, 0, 0, 0, 0}};
    holes[1] = price("*", "1", "1", NULL, NULL);
    assert_ptr_equal(lim_price_find(holes, 2, "x", 1), &holes[1]);
    lim_price_clear(&holes[1]);
    for (int i = 0; i < 5; i++) {
        lim_price_clear(&table[i]);
        assert_null(table[i].pattern);
        assert_int_equal(table[i].in, 0);
    }
    lim_price_clear(NULL);

    /* errors: p zeroed, message names the model and the field */
    lim_price_t p;
    char err[200] = "";
    assert_int_equal(lim_price_set(&p, "gpt-4o", "2.50", "-1", NULL, NULL, err, sizeof err),
                     LIM_PRICE_EINVAL);
    assert_null(p.pattern);
    assert_non_null(strstr(err, "model \"gpt-4o\": output: price \"-1\": negative"));
    assert_int_equal(lim_price_set(&p, "m", "1", "1", "1e-3", NULL, err, sizeof err),
                     LIM_PRICE_EINVAL);
    assert_non_null(strstr(err, "cache_read"));
    assert_int_equal(lim_price_set(&p, "m", "1", "1", NULL, "2000000", err, sizeof err),
                     LIM_PRICE_EINVAL);
    assert_non_null(strstr(err, "cache_write"));
    assert_int_equal(lim_price_set(&p, "m", NULL, "1", NULL, NULL, err, sizeof err),
                     LIM_PRICE_EINVAL);
    assert_non_null(strstr(err, "input"));
    assert_int_equal(lim_price_set(&p, "", "1", "1", NULL, NULL, err, sizeof err),
                     LIM_PRICE_EINVAL);
    assert_non_null(strstr(err, "empty model pattern"));
    assert_int_equal(lim_price_set(&p, NULL, "1", "1", NULL, NULL, err, sizeof err),
                     LIM_PRICE_EINVAL);
    assert_int_equal(lim_price_set(NULL, "m", "1", "1", NULL, NULL, err, sizeof err),
                     LIM_PRICE_EINVAL);
}

/* ---- cost ----------------------------------------------------------------------- */

static void test_cost(void **state)
{
    (void)state;
    /* OpenAI: prompt_tokens 1834 of which 1536 cached, completion 213 */
    lim_price_t gpt = price("gpt-4o*", "2.50", "10.00", "1.25", NULL);
    /* 298 * 2.5 + 1536 * 1.25 + 213 * 10 = 745 + 1920 + 2130 = 4795 micro-USD */
    assert_int_equal(lim_cost_nano(&gpt, 1834, 213, 1536, 0), 4795000);
    assert_string_equal(usd(lim_cost_nano(&gpt, 1834, 213, 1536, 0)), "0.004795");
    /* no cache */
    assert_int_equal(lim_cost_nano(&gpt, 1000000, 1000000, 0, 0), 12500000000);
    assert_string_equal(usd(12500000000), "12.500000");

    /* Anthropic: input = 100 uncached + 2000 written + 5000 read */
    lim_price_t claude = price("claude-*", "3.00", "15.00", "0.30", "3.75");
    /* 100*3 + 2000*3.75 + 5000*0.3 + 500*15 = 300 + 7500 + 1500 + 7500 = 16800 micro */
    assert_int_equal(lim_cost_nano(&claude, 7100, 500, 5000, 2000), 16800000);
    /* cache figures beyond the input: uncached saturates at 0 */
    assert_int_equal(lim_cost_nano(&claude, 100, 0, 5000, 2000), 5000 * 300 + 2000 * 3750);
    assert_int_equal(lim_cost_nano(&claude, 4000, 0, 5000, 0), 5000 * 300);
    assert_int_equal(lim_cost_nano(&claude, 0, 0, 0, 0), 0);
    assert_int_equal(lim_cost_nano(NULL, 1000, 1000, 0, 0), 0);

    /* rounding: 1 pico-USD per token, half up to nano-USD */
    lim_price_t pico = {"*", 1, 1, 1, 1};
    assert_int_equal(lim_cost_nano(&pico, 499, 0, 0, 0), 0);
    assert_int_equal(lim_cost_nano(&pico, 500, 0, 0, 0), 1);
    assert_int_equal(lim_cost_nano(&pico, 1499, 0, 0, 0), 1);
    assert_int_equal(lim_cost_nano(&pico, 1500, 0, 0, 0), 2);
    /* remainders of the parts add up before rounding: 250 + 250 pico */
    assert_int_equal(lim_cost_nano(&pico, 250, 250, 0, 0), 1);
    assert_int_equal(lim_cost_nano(&pico, 500, 0, 250, 0), 1);   /* 250 uncached + 250 read */
    assert_int_equal(lim_cost_nano(&pico, 500, 0, 251, 0), 1);   /* 249 + 251 */
    assert_int_equal(lim_cost_nano(&pico, 499, 0, 250, 0), 0);   /* 249 + 250 */
    assert_int_equal(lim_cost_nano(&pico, 999, 999, 999, 0), 2); /* 0 + 999 + 999 pico */
    /* "0.0375" per 1M = 37 500 pico-USD = 37.5 nano-USD per token: exact */
    lim_price_t flash = price("gemini-*", "0.0375", "0.15", "0.01", NULL);
    assert_int_equal(lim_cost_nano(&flash, 1000000, 0, 0, 0), 37500000);
    assert_int_equal(lim_cost_nano(&flash, 1, 0, 0, 0), 38); /* 37.5 -> 38 */
    assert_int_equal(lim_cost_nano(&flash, 2, 0, 0, 0), 75);
    assert_int_equal(lim_cost_nano(&flash, 3, 0, 0, 0), 113); /* 112.5 */
    /* 1 token at "0.000001" per 1M is 1 pico-USD: 1e-12 USD */
    lim_price_t tiny = price("t", "0.000001", "0.000001", NULL, NULL);
    assert_int_equal(tiny.in, 1);
    assert_int_equal(lim_cost_nano(&tiny, 1000, 0, 0, 0), 1);
    lim_price_clear(&tiny);

    /* saturation */
    lim_price_t max = {"*", LIM_PRICE_MAX_PICO, LIM_PRICE_MAX_PICO, LIM_PRICE_MAX_PICO,
                       LIM_PRICE_MAX_PICO};
    assert_true(lim_cost_nano(&max, 0, UINT64_MAX, 0, 0) == UINT64_MAX);
    assert_true(lim_cost_nano(&max, UINT64_MAX, 0, UINT64_MAX, 0) == UINT64_MAX);
    assert_true(lim_cost_nano(&max, 1000000000000, 0, 0, 0) == UINT64_MAX); /* 1e21 nano */
    assert_true(lim_cost_nano(&max, 1000000000, 0, 0, 0) == 1000000000000000000ull);
    assert_true(lim_cost_nano(&max, 18446744073, 0, 0, 0) == 18446744073000000000ull);
    assert_true(lim_cost_nano(&max, 18446744073, 1, 0, 0) == UINT64_MAX);
    /* (2^64 - 1) pico = 18446744073709551.615 nano -> ...552 */
    assert_true(lim_cost_nano(&pico, UINT64_MAX, 0, 0, 0) == 18446744073709552ull);
    assert_true(lim_cost_nano(&pico, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX) ==
                55340232221128655ull); /* 3 parts (uncached is 0): 55340232221128654.845 */
    lim_price_clear(&gpt);
    lim_price_clear(&claude);
    lim_price_clear(&flash);
}

/* The split arithmetic against 128-bit integers on pseudo-random figures. */
static void test_cost_exact(void **state)
{
    (void)state;
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 200000; i++) {
        uint64_t r[8];
        for (int k = 0; k < 8; k++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            r[k] = s;
        }
        /* mix small, medium and huge magnitudes */
        int shift = (int)(r[7] % 64);
        lim_price_t p = {"*", r[0] % (LIM_PRICE_MAX_PICO + 1) >> (shift % 40),
                         r[1] % (LIM_PRICE_MAX_PICO + 1) >> (shift % 37),
                         r[2] % (LIM_PRICE_MAX_PICO + 1) >> (shift % 30),
                         r[3] % (LIM_PRICE_MAX_PICO + 1) >> (shift % 23)};
        uint64_t in = r[4] >> shift, out = r[5] >> ((shift + 13) % 64);
        uint64_t cr = (r[6] >> ((shift + 29) % 64)) % (in / 2 + 1);
        uint64_t cw = (r[6] >> 7) % (in / 3 + 1);
        if (i % 7 == 0) cr = r[6]; /* sometimes beyond the input */
        uint64_t unc = in > cr ? in - cr : 0;
        unc = unc > cw ? unc - cw : 0;
        unsigned __int128 pico =
            (unsigned __int128)unc * p.in + (unsigned __int128)cr * p.cache_read;
        unsigned __int128 pico2 =
            (unsigned __int128)cw * p.cache_write + (unsigned __int128)out * p.out;
        /* the sum can exceed 2^128 only if both halves are near 2^127: they are not
         * (each product < 2^64 * 2^40) */
        pico += pico2;
        unsigned __int128 nano = pico / 1000 + (pico % 1000 >= 500);
        uint64_t want = nano > UINT64_MAX ? UINT64_MAX : (uint64_t)nano;
        uint64_t got = lim_cost_nano(&p, in, out, cr, cw);
        if (got != want)
            fprintf(stderr, "in %llu out %llu cr %llu cw %llu: got %llu want %llu\n",
                    (unsigned long long)in, (unsigned long long)out, (unsigned long long)cr,
                    (unsigned long long)cw, (unsigned long long)got, (unsigned long long)want);
        assert_true(got == want);
    }
}

static void test_format(void **state)
{
    (void)state;
    assert_string_equal(usd(0), "0.000000");
    assert_string_equal(usd(499), "0.000000");
    assert_string_equal(usd(500), "0.000001");
    assert_string_equal(usd(1499), "0.000001");
    assert_string_equal(usd(1234567), "0.001235");
    assert_string_equal(usd(1234499), "0.001234");
    assert_string_equal(usd(999999499), "0.999999");
    assert_string_equal(usd(999999500), "1.000000");
    assert_string_equal(usd(1000000000), "1.000000");
    assert_string_equal(usd(1234567890123), "1234.567890");
    assert_string_equal(usd(UINT64_MAX), "18446744073.709552");
    char buf[LIM_USD_BUFSZ];
    assert_int_equal(lim_format_usd(UINT64_MAX, buf, sizeof buf), 18);
    assert_int_equal(lim_format_usd(1000000000, buf, 9), 8); /* "1.000000" fits exactly */
    assert_string_equal(buf, "1.000000");
    assert_int_equal(lim_format_usd(1000000000, buf, 8), -1);
    assert_string_equal(buf, "");
    assert_int_equal(lim_format_usd(1, NULL, 10), -1);
    assert_int_equal(lim_format_usd(1, buf, 0), -1);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),  cmocka_unit_test(test_set_and_find),
        cmocka_unit_test(test_cost),   cmocka_unit_test(test_cost_exact),
        cmocka_unit_test(test_format),
    };
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
