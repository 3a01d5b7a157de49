/*
 * test_jval.c — unit tests of src/core/jval through its public API: every
 * value type and accessor, member order and duplicate keys, decoded strings
 * (escapes, surrogate pairs, raw UTF-8, embedded NUL), numbers as double and
 * as int64 at the int64 limits, jval_path over objects and arrays, the depth
 * and node limits, NULL-safety, a document spanning many arena blocks, and
 * malformed inputs, whose return code and message are checked against
 * json_walk (src/inspect/json), the walker jval must agree with.
 *
 * Usage: test_jval [cmocka test-name filter].
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jval.h"
#include "inspect/json.h"

static jval_doc_t *parse_ok(const char *s)
{
    jval_doc_t *doc = NULL;
    char err[128];
    int rc = jval_parse(s, strlen(s), 0, &doc, err, sizeof err);
    if (rc != JVAL_OK) fprintf(stderr, "parse failed: %s\n", err);
    assert_int_equal(rc, JVAL_OK);
    assert_non_null(doc);
    assert_string_equal(err, "");
    return doc;
}

static void test_types_and_accessors(void **state)
{
    (void)state;
    const char *s = " {\"a\": null, \"b\": true, \"c\": false, \"d\": -12.5e1, \"e\": \"x\","
                    " \"f\": [1, [], {}], \"g\": {\"h\": \"i\"}} ";
    jval_doc_t *doc = parse_ok(s);
    const jval_t *r = jval_root(doc);
    assert_int_equal(jval_type(r), JVAL_OBJECT);
    assert_int_equal(jval_len(r), 7);
    assert_int_equal(jval_offset(r), 1);
    assert_int_equal(jval_doc_nodes(doc), 12);

    assert_true(jval_is_null(jval_get(r, "a")));
    bool b = false;
    assert_true(jval_bool(jval_get(r, "b"), &b));
    assert_true(b);
    assert_true(jval_bool(jval_get(r, "c"), &b));
    assert_false(b);
    assert_false(jval_bool(jval_get(r, "a"), &b));
    double d = 0;
    assert_int_equal(jval_number(jval_get(r, "d"), &d), JVAL_OK);
    assert_true(d == -125.0);
    int64_t n = 0;
    assert_int_equal(jval_int64(jval_get(r, "d"), &n), JVAL_OK);
    assert_int_equal(n, -125);
    size_t len = 0;
    assert_string_equal(jval_str(jval_get(r, "e"), &len), "x");
    assert_int_equal(len, 1);
    assert_true(jval_str_eq(jval_get(r, "e"), "x"));
    assert_false(jval_str_eq(jval_get(r, "e"), "xy"));
    assert_int_equal(jval_len(jval_get(r, "e")), 1);

    const jval_t *f = jval_get(r, "f");
    assert_int_equal(jval_type(f), JVAL_ARRAY);
    assert_int_equal(jval_len(f), 3);
    assert_int_equal(jval_type(jval_at(f, 1)), JVAL_ARRAY);
    assert_int_equal(jval_len(jval_at(f, 1)), 0);
    assert_int_equal(jval_type(jval_at(f, 2)), JVAL_OBJECT);
    assert_null(jval_at(f, 3));
    assert_null(jval_at(r, 0));    /* not an array */
    assert_null(jval_get(f, "a")); /* not an object */
    assert_string_equal(jval_str(jval_path(r, "g.h"), NULL), "i");

    /* members in document order */
    const char *want[] = {"a", "b", "c", "d", "e", "f", "g"};
    for (size_t i = 0; i < 7; i++) {
        const char *k = NULL;
        size_t kl = 0;
        assert_non_null(jval_member(r, i, &k, &kl));
        assert_int_equal(kl, 1);
        assert_memory_equal(k, want[i], 1);
    }
    assert_null(jval_member(r, 7, NULL, NULL));
    assert_string_equal(jval_type_name(jval_type(f)), "array");
    assert_string_equal(jval_type_name(JVAL_NONE), "none");
    jval_free(doc);
}

static void test_null_safety(void **state)
{
    (void)state;
    assert_int_equal(jval_type(NULL), JVAL_NONE);
    assert_int_equal(jval_len(NULL), 0);
    assert_null(jval_at(NULL, 0));
    assert_null(jval_get(NULL, "a"));
    assert_null(jval_getn(NULL, "a", 1));
    assert_null(jval_member(NULL, 0, NULL, NULL));
    assert_null(jval_str(NULL, NULL));
    assert_false(jval_str_eq(NULL, ""));
    double d;
    int64_t n;
    bool b;
    assert_int_equal(jval_number(NULL, &d), JVAL_EMALFORMED);
    assert_int_equal(jval_int64(NULL, &n), JVAL_EMALFORMED);
    assert_false(jval_bool(NULL, &b));
    assert_false(jval_is_null(NULL));
    assert_null(jval_path(NULL, "a"));
    assert_null(jval_root(NULL));
    jval_free(NULL);

    char err[64];
    assert_int_equal(jval_parse("1", 1, 0, NULL, err, sizeof err), JVAL_EMALFORMED);
    jval_doc_t *doc = (jval_doc_t *)&err; /* must be reset to NULL */
    assert_int_equal(jval_parse(NULL, 0, 0, &doc, err, sizeof err), JVAL_EMALFORMED);
    assert_null(doc);
    assert_string_equal(err, "offset 0: empty document");
    /* no message buffer */
    assert_int_equal(jval_parse("[", 1, 0, &doc, NULL, 0), JVAL_EMALFORMED);
}

static void test_strings(void **state)
{
    (void)state;
    const char *s = "[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\", \"\\u0041\\u00e9\\u20AC\\ud83d\\ude00\","
                    " \"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\", \"nul\\u0000in\", \"\"]";
    jval_doc_t *doc = parse_ok(s);
    const jval_t *r = jval_root(doc);
    size_t n;
    const char *t = jval_str(jval_at(r, 0), &n);
    assert_int_equal(n, 12);
    assert_memory_equal(t, "a\"b\\c/d\b\f\n\r\t", 13);
    t = jval_str(jval_at(r, 1), &n);
    assert_int_equal(n, 1 + 2 + 3 + 4);
    assert_memory_equal(t, "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 11);
    t = jval_str(jval_at(r, 2), &n);
    assert_string_equal(t, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    t = jval_str(jval_at(r, 3), &n);
    assert_int_equal(n, 6);
    assert_memory_equal(t, "nul\0in", 7);
    t = jval_str(jval_at(r, 4), &n);
    assert_int_equal(n, 0);
    assert_string_equal(t, "");
    jval_free(doc);

    /* keys are decoded too; an escaped key finds its member */
    doc = parse_ok("{\"\\u0070rompt_tokens\": 7, \"\": 1, \"a\\u0000b\": 2}");
    r = jval_root(doc);
    int64_t v;
    assert_int_equal(jval_int64(jval_get(r, "prompt_tokens"), &v), JVAL_OK);
    assert_int_equal(v, 7);
    assert_int_equal(jval_int64(jval_get(r, ""), &v), JVAL_OK);
    assert_int_equal(v, 1);
    assert_int_equal(jval_int64(jval_getn(r, "a\0b", 3), &v), JVAL_OK);
    assert_int_equal(v, 2);
    assert_null(jval_get(r, "a"));
    jval_free(doc);
}

static void test_duplicate_keys_last_wins(void **state)
{
    (void)state;
    jval_doc_t *doc = parse_ok("{\"k\": 1, \"x\": {\"k\": 5}, \"k\": 2}");
    int64_t v = 0;
    assert_int_equal(jval_int64(jval_get(jval_root(doc), "k"), &v), JVAL_OK);
    assert_int_equal(v, 2);
    assert_int_equal(jval_len(jval_root(doc)), 3);
    jval_free(doc);
}

static void test_numbers(void **state)
{
    (void)state;
    struct {
        const char *text;
        int rc64;
        int64_t v64;
        int rcd;
        double d;
    } cases[] = {
        {"0", JVAL_OK, 0, JVAL_OK, 0},
        {"-0", JVAL_OK, 0, JVAL_OK, -0.0},
        {"42", JVAL_OK, 42, JVAL_OK, 42},
        {"9223372036854775807", JVAL_OK, INT64_MAX, JVAL_OK, 9223372036854775807.0},
        {"-9223372036854775808", JVAL_OK, INT64_MIN, JVAL_OK, -9223372036854775808.0},
        {"9223372036854775808", JVAL_ELIMIT, 0, JVAL_OK, 9223372036854775808.0},
        {"-9223372036854775809", JVAL_ELIMIT, 0, JVAL_OK, -9223372036854775808.0},
        {"123456789012345678901234567890", JVAL_ELIMIT, 0, JVAL_OK, 1.2345678901234568e29},
        {"1.5", JVAL_EMALFORMED, 0, JVAL_OK, 1.5},
        {"1.0", JVAL_OK, 1, JVAL_OK, 1.0},
        {"1e3", JVAL_OK, 1000, JVAL_OK, 1000.0},
        {"25E-1", JVAL_EMALFORMED, 0, JVAL_OK, 2.5},
        {"-2.5E+2", JVAL_OK, -250, JVAL_OK, -250.0},
        {"1e19", JVAL_ELIMIT, 0, JVAL_OK, 1e19},
        {"-9.223372036854775808e18", JVAL_OK, INT64_MIN, JVAL_OK, -9223372036854775808.0},
        {"1e400", JVAL_ELIMIT, 0, JVAL_ELIMIT, HUGE_VAL},
        {"-1e400", JVAL_ELIMIT, 0, JVAL_ELIMIT, -HUGE_VAL},
        {"1e-400", JVAL_OK, 0, JVAL_OK, 0.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jval_doc_t *doc = parse_ok(cases[i].text);
        const jval_t *r = jval_root(doc);
        assert_int_equal(jval_type(r), JVAL_NUMBER);
        int64_t v = 777;
        int rc = jval_int64(r, &v);
        if (rc != cases[i].rc64) fprintf(stderr, "int64 of %s: %d\n", cases[i].text, rc);
        assert_int_equal(rc, cases[i].rc64);
        if (rc == JVAL_OK)
            assert_true(v == cases[i].v64);
        else
            assert_true(v == 777); /* untouched */
        double d = 0;
        assert_int_equal(jval_number(r, &d), cases[i].rcd);
        assert_true(d == cases[i].d);
        jval_free(doc);
    }
    /* other types are not numbers */
    jval_doc_t *doc = parse_ok("[\"1\", true, null]");
    for (size_t i = 0; i < 3; i++) {
        int64_t v;
        double d;
        assert_int_equal(jval_int64(jval_at(jval_root(doc), i), &v), JVAL_EMALFORMED);
        assert_int_equal(jval_number(jval_at(jval_root(doc), i), &d), JVAL_EMALFORMED);
    }
    jval_free(doc);
}

static void test_path(void **state)
{
    (void)state;
    const char *s =
        "{\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}},"
        "{\"index\":1,\"delta\":{\"content\":\"Yo\"}}],\"usage\":{\"prompt_tokens\":1200,"
        "\"prompt_tokens_details\":{\"cached_tokens\":1024}},\"7\":{\"x\":1},\"\":{\"y\":2}}";
    jval_doc_t *doc = parse_ok(s);
    const jval_t *r = jval_root(doc);
    int64_t v = 0;
    assert_int_equal(jval_int64(jval_path(r, "usage.prompt_tokens_details.cached_tokens"), &v),
                     JVAL_OK);
    assert_int_equal(v, 1024);
    assert_string_equal(jval_str(jval_path(r, "choices.1.delta.content"), NULL), "Yo");
    assert_string_equal(jval_str(jval_path(r, "choices.0.delta.content"), NULL), "Hi");
    assert_ptr_equal(jval_path(r, ""), r);
    assert_null(jval_path(r, "choices.2"));
    assert_null(jval_path(r, "choices.-1"));
    assert_null(jval_path(r, "choices.01x"));
    assert_null(jval_path(r, "choices.99999999999999999999"));
    assert_null(jval_path(r, "choices.x"));
    assert_null(jval_path(r, "usage.prompt_tokens.x"));
    assert_null(jval_path(r, "nope"));
    assert_null(jval_path(r, "usage."));
    /* a numeric segment names a key in an object */
    assert_int_equal(jval_int64(jval_path(r, "7.x"), &v), JVAL_OK);
    assert_int_equal(v, 1);
    /* an empty segment is the key "" */
    assert_int_equal(jval_int64(jval_path(r, ".y"), &v), JVAL_OK);
    assert_int_equal(v, 2);
    jval_free(doc);
}

static void nested(char *buf, int depth, const char *open, const char *close, const char *mid)
{
    size_t o = 0, lo = strlen(open), lc = strlen(close), lm = strlen(mid);
    for (int i = 0; i < depth; i++, o += lo)
        memcpy(buf + o, open, lo);
    memcpy(buf + o, mid, lm);
    o += lm;
    for (int i = 0; i < depth; i++, o += lc)
        memcpy(buf + o, close, lc);
    buf[o] = '\0';
}

static void test_limits(void **state)
{
    (void)state;
    static char buf[8192];
    char err[128];
    jval_doc_t *doc = NULL;

    nested(buf, JVAL_MAX_DEPTH, "[", "]", "1");
    doc = parse_ok(buf);
    jval_free(doc);
    nested(buf, JVAL_MAX_DEPTH + 1, "[", "]", "1");
    assert_int_equal(jval_parse(buf, strlen(buf), 0, &doc, err, sizeof err), JVAL_ELIMIT);
    assert_null(doc);
    assert_string_equal(err, "offset 128: nesting deeper than 128");
    nested(buf, JVAL_MAX_DEPTH, "{\"k\":", "}", "{}");
    assert_int_equal(jval_parse(buf, strlen(buf), 0, &doc, err, sizeof err), JVAL_ELIMIT);
    nested(buf, JVAL_MAX_DEPTH - 1, "{\"k\":", "}", "{}");
    doc = parse_ok(buf);
    const jval_t *v = jval_root(doc);
    for (int i = 0; i < JVAL_MAX_DEPTH - 1; i++)
        v = jval_get(v, "k");
    assert_int_equal(jval_type(v), JVAL_OBJECT);
    jval_free(doc);

    /* node limit: [1,2,3] is 4 values */
    assert_int_equal(jval_parse("[1,2,3]", 7, 4, &doc, err, sizeof err), JVAL_OK);
    jval_free(doc);
    assert_int_equal(jval_parse("[1,2,3]", 7, 3, &doc, err, sizeof err), JVAL_ELIMIT);
    assert_string_equal(err, "offset 5: more than 3 values");
    assert_null(doc);
    assert_int_equal(jval_parse("{\"a\":{}}", 8, 1, &doc, err, sizeof err), JVAL_ELIMIT);
    assert_string_equal(err, "offset 5: more than 1 values");
}

static void test_large_document(void **state)
{
    (void)state;
    /* many members and long strings: several arena blocks, pending growth */
    size_t n = 20000;
    size_t cap = n * 64 + 16;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t o = 0;
    s[o++] = '{';
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(s + o, cap - o, "%s\"k%zu\":[%zu,\"%0*zu\"]", i ? "," : "", i, i,
                              (int)(i % 40), i);
    s[o++] = '}';
    jval_doc_t *doc = NULL;
    char err[128];
    assert_int_equal(jval_parse(s, o, 0, &doc, err, sizeof err), JVAL_OK);
    free(s); /* the tree does not refer to the input */
    const jval_t *r = jval_root(doc);
    assert_int_equal(jval_len(r), n);
    assert_int_equal(jval_doc_nodes(doc), 1 + 3 * n);
    for (size_t i = 0; i < n; i += 997) {
        char key[32], want[64];
        snprintf(key, sizeof key, "k%zu", i);
        snprintf(want, sizeof want, "%0*zu", (int)(i % 40), i);
        int64_t v;
        assert_int_equal(jval_int64(jval_at(jval_get(r, key), 0), &v), JVAL_OK);
        assert_int_equal(v, (int64_t)i);
        assert_string_equal(jval_str(jval_at(jval_get(r, key), 1), NULL), want);
    }
    jval_free(doc);
}

/* jval and json_walk must agree on validity, return code and message. */
static void test_malformed_matches_json_walk(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "   ",
        "{",
        "[",
        "[1,]",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{a:1}",
        "{\"a\":}",
        "[1 2]",
        "01",
        "-",
        "1.",
        "1.e5",
        "1e",
        "+1",
        ".5",
        "NaN",
        "Infinity",
        "tru",
        "nul",
        "falsey",
        "\"abc",
        "\"a\\x\"",
        "\"\\u12\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"a\tb\"",
        "\"\xc0\xaf\"",
        "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"",
        "\"\xe2\x82\"",
        "\xef\xbb\xbf{}",
        "{} {}",
        "[]]",
        "]",
        "/* c */ 1",
        "[1,\n\"x\"\n,}",
        "\"\\",
        "{\"a\":1 \"b\":2}",
        "\x01",
        "[\"\x80\"]",
    };
    json_scratch_t sc;
    json_scratch_init(&sc);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char e1[160], e2[160];
        jval_doc_t *doc = NULL;
        size_t len = strlen(bad[i]);
        int r1 = jval_parse(bad[i], len, 0, &doc, e1, sizeof e1);
        int r2 = json_walk(bad[i], len, &sc, NULL, NULL, e2, sizeof e2);
        if (r1 != r2 || strcmp(e1, e2) != 0)
            fprintf(stderr, "case %zu: jval %d '%s' / json_walk %d '%s'\n", i, r1, e1, r2, e2);
        assert_int_equal(r1, JVAL_EMALFORMED);
        assert_int_equal(r1, r2);
        assert_string_equal(e1, e2);
        assert_null(doc);
    }
    static const char *const good[] = {
        "0",
        "-0.0e-0",
        "\"\"",
        "[]",
        "{}",
        " \t\r\n[ ] ",
        "[[[]]]",
        "{\"\":{\"\":[]}}",
        "\"\\ud83d\\ude00\"",
        "[true,false,null]",
        "1E+2",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char e2[160];
        jval_free(parse_ok(good[i]));
        assert_int_equal(json_walk(good[i], strlen(good[i]), &sc, NULL, NULL, e2, sizeof e2), 0);
    }
    json_scratch_free(&sc);
}

static void test_error_offsets(void **state)
{
    (void)state;
    char err[128];
    jval_doc_t *doc = NULL;
    const char *s = "{\"usage\": {\"prompt_tokens\": 12,, }}";
    assert_int_equal(jval_parse(s, strlen(s), 0, &doc, err, sizeof err), JVAL_EMALFORMED);
    assert_string_equal(err, "offset 31: expected '\"' to start an object key");
    /* input need not be NUL-terminated: only len bytes are read */
    assert_int_equal(jval_parse("[1]xyz", 3, 0, &doc, err, sizeof err), JVAL_OK);
    jval_free(doc);
    /* a short message buffer is truncated, not overrun */
    char small[8];
    assert_int_equal(jval_parse("[", 1, 0, &doc, small, sizeof small), JVAL_EMALFORMED);
    assert_string_equal(small, "offset ");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types_and_accessors),
        cmocka_unit_test(test_null_safety),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_duplicate_keys_last_wins),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_path),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_large_document),
        cmocka_unit_test(test_malformed_matches_json_walk),
        cmocka_unit_test(test_error_offsets),
    };
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
