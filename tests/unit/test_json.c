/*
 * test_json.c — unit tests of src/inspect/json through its public API:
 * string decoding (every escape, \uXXXX and surrogate pairs, raw UTF-8) with
 * the decoded-byte → raw-offset map checked entry by entry; keys vs values,
 * depths and JSON Pointer paths; every class of malformed input with its
 * return code and error offset; valid numbers; the callback's stop value and
 * the scratch limit; and json_redact (exact output, widening of spans that
 * cut escapes, merging, refusal of spans outside string bodies, label
 * escaping) with every output re-walked and searched for the secret.
 *
 * Usage: test_json [cmocka test-name filter].
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

#include "inspect/json.h"

/* ---- helpers -------------------------------------------------------------- */

#define MAXS 64

typedef struct rec {
    char text[512];
    size_t len;
    uint32_t map[513];
    size_t raw_start, raw_end;
    bool is_key;
    int depth;
    char path[256];
} rec_t;

typedef struct coll {
    rec_t r[MAXS];
    size_t n;
    size_t total; /* strings seen, including those not recorded */
    int stop_at;  /* return stop_rc at this 1-based string, 0 = never */
    int stop_rc;
} coll_t;

static int collect(const json_string_t *s, void *ctx)
{
    coll_t *c = ctx;
    c->total++;
    if (c->n < MAXS && s->len < 512) {
        rec_t *r = &c->r[c->n++];
        memcpy(r->text, s->text, s->len);
        r->text[s->len] = '\0';
        r->len = s->len;
        memcpy(r->map, s->map, (s->len + 1) * sizeof *s->map);
        r->raw_start = s->raw_start;
        r->raw_end = s->raw_end;
        r->is_key = s->is_key;
        r->depth = s->depth;
        snprintf(r->path, sizeof r->path, "%s", s->path);
    }
    if (c->stop_at && (int)c->total == c->stop_at) return c->stop_rc;
    return 0;
}

/* Walk a document of explicit length, expecting success. */
static void walk_ok_n(const char *doc, size_t len, coll_t *c)
{
    json_scratch_t sc;
    char err[256];
    json_scratch_init(&sc);
    memset(c, 0, sizeof *c);
    int rc = json_walk(doc, len, &sc, collect, c, err, sizeof err);
    if (rc != 0) print_error("input: %.*s\nerror: %s\n", (int)len, doc, err);
    assert_int_equal(rc, 0);
    assert_string_equal(err, "");
    json_scratch_free(&sc);
}

static void walk_ok(const char *doc, coll_t *c)
{
    walk_ok_n(doc, strlen(doc), c);
}

/* Walk must fail with rc, and the message must start "offset <off>: " and
 * contain `what`.  The input is copied to an exact-size buffer so ASan sees
 * any read past the end. */
static void walk_bad_n(const char *doc, size_t len, int want_rc, size_t off, const char *what)
{
    json_scratch_t sc;
    char err[256], prefix[48];
    coll_t *c = calloc(1, sizeof *c);
    char *copy = malloc(len ? len : 1);
    assert_non_null(c);
    assert_non_null(copy);
    memcpy(copy, doc, len);
    json_scratch_init(&sc);
    int rc = json_walk(copy, len, &sc, collect, c, err, sizeof err);
    if (rc != want_rc) print_error("input: %.*s\nrc %d error: %s\n", (int)len, doc, rc, err);
    assert_int_equal(rc, want_rc);
    snprintf(prefix, sizeof prefix, "offset %zu: ", off);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        print_error("input: %.*s\nerror: %s (want %s)\n", (int)len, doc, err, prefix);
    assert_true(strncmp(err, prefix, strlen(prefix)) == 0);
    if (!strstr(err, what)) print_error("error: %s (want \"%s\")\n", err, what);
    assert_non_null(strstr(err, what));
    json_scratch_free(&sc);
    free(copy);
    free(c);
}

static void walk_bad(const char *doc, int want_rc, size_t off, const char *what)
{
    walk_bad_n(doc, strlen(doc), want_rc, off, what);
}

/* Every map entry of r equals want[i] (len + 1 entries). */
static void map_is(const rec_t *r, const uint32_t *want, size_t n)
{
    assert_int_equal(r->len + 1, n);
    for (size_t i = 0; i < n; i++) {
        if (r->map[i] != want[i]) print_error("map[%zu] = %u, want %u\n", i, r->map[i], want[i]);
        assert_int_equal(r->map[i], want[i]);
    }
}

/* ---- decoding ------------------------------------------------------------- */

static void test_escape_newline_pem(void **state)
{
    (void)state;
    const char *doc =
        "{\"key\":\"-----BEGIN PRIVATE KEY-----\\nMIIEvQ\\n-----END PRIVATE KEY-----\"}";
    coll_t c;
    walk_ok(doc, &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.r[1].text,
                        "-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----");
    const rec_t *r = &c.r[1];
    assert_int_equal(r->raw_start, 8);
    const char *nl = strchr(r->text, '\n');
    size_t i = (size_t)(nl - r->text);
    /* the newline maps to its backslash, the next byte to the byte after "\n" */
    assert_int_equal(doc[r->map[i]], '\\');
    assert_int_equal(doc[r->map[i] + 1], 'n');
    assert_int_equal(r->map[i + 1], r->map[i] + 2);
    assert_int_equal(r->map[r->len], r->raw_end);
    assert_int_equal(doc[r->raw_end], '"');
    assert_int_equal(r->raw_end, strlen(doc) - 2);
}

static void test_unicode_escape_A(void **state)
{
    (void)state;
    coll_t c;
    walk_ok("\"\\u0041BC\"", &c);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.r[0].text, "ABC");
    const uint32_t want[] = {1, 7, 8, 9};
    map_is(&c.r[0], want, 4);
    assert_int_equal(c.r[0].raw_start, 1);
    assert_int_equal(c.r[0].raw_end, 9);
    assert_false(c.r[0].is_key);
    assert_int_equal(c.r[0].depth, 0);
    assert_string_equal(c.r[0].path, "");

    /* two- and three-byte results, upper-case hex */
    walk_ok("\"\\u00E9\\u20ac\"", &c);
    assert_string_equal(c.r[0].text, "\xc3\xa9\xe2\x82\xac");
    const uint32_t want2[] = {1, 1, 7, 7, 7, 13};
    map_is(&c.r[0], want2, 6);
}

static void test_surrogate_pair(void **state)
{
    (void)state;
    coll_t c;
    walk_ok("\"x\\ud83d\\ude00y\"", &c);
    assert_int_equal(c.r[0].len, 6);
    assert_memory_equal(c.r[0].text, "x\xf0\x9f\x98\x80y", 6);
    const uint32_t want[] = {1, 2, 2, 2, 2, 14, 15};
    map_is(&c.r[0], want, 7);

    /* highest code point */
    walk_ok("\"\\uDBFF\\uDFFF\"", &c);
    assert_memory_equal(c.r[0].text, "\xf4\x8f\xbf\xbf", 4);
}

static void test_raw_utf8(void **state)
{
    (void)state;
    coll_t c;
    /* é (2), € (3), 😀 (4), then 'a' */
    walk_ok("[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
            "a\"]",
            &c);
    assert_int_equal(c.r[0].len, 10);
    const uint32_t want[] = {2, 2, 4, 4, 4, 7, 7, 7, 7, 11, 12};
    map_is(&c.r[0], want, 11);
    assert_string_equal(c.r[0].path, "/0");
    assert_int_equal(c.r[0].depth, 1);
}

static void test_simple_escapes(void **state)
{
    (void)state;
    coll_t c;
    walk_ok("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", &c);
    assert_string_equal(c.r[0].text, "\"\\/\b\f\n\r\t");
    const uint32_t want[] = {1, 3, 5, 7, 9, 11, 13, 15, 17};
    map_is(&c.r[0], want, 9);

    /* \u0000 decodes to a NUL byte that counts in len */
    walk_ok("\"a\\u0000b\"", &c);
    assert_int_equal(c.r[0].len, 3);
    assert_memory_equal(c.r[0].text, "a\0b", 3);

    /* empty string */
    walk_ok("\"\"", &c);
    assert_int_equal(c.r[0].len, 0);
    assert_int_equal(c.r[0].map[0], 1);
    assert_int_equal(c.r[0].raw_start, 1);
    assert_int_equal(c.r[0].raw_end, 1);
}

/* ---- keys, values and paths ----------------------------------------------- */

static void test_keys_values_paths(void **state)
{
    (void)state;
    const char *doc = "{\"model\":\"gpt-4\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
                      "{\"role\":\"assistant\",\"content\":\"yo\"}],\"n\":1,\"stream\":true}";
    static const struct {
        const char *text;
        bool key;
        int depth;
        const char *path;
    } want[] = {
        {"model", true, 1, "/model"},
        {"gpt-4", false, 1, "/model"},
        {"messages", true, 1, "/messages"},
        {"role", true, 3, "/messages/0/role"},
        {"user", false, 3, "/messages/0/role"},
        {"content", true, 3, "/messages/0/content"},
        {"hi", false, 3, "/messages/0/content"},
        {"role", true, 3, "/messages/1/role"},
        {"assistant", false, 3, "/messages/1/role"},
        {"content", true, 3, "/messages/1/content"},
        {"yo", false, 3, "/messages/1/content"},
        {"n", true, 1, "/n"},
        {"stream", true, 1, "/stream"},
    };
    coll_t c;
    walk_ok(doc, &c);
    assert_int_equal(c.n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < c.n; i++) {
        assert_string_equal(c.r[i].text, want[i].text);
        assert_int_equal(c.r[i].is_key, want[i].key);
        assert_int_equal(c.r[i].depth, want[i].depth);
        assert_string_equal(c.r[i].path, want[i].path);
        assert_memory_equal(doc + c.r[i].raw_start, want[i].text, c.r[i].len);
    }
}

static void test_paths_escaped_keys(void **state)
{
    (void)state;
    coll_t c;
    walk_ok("{\"a/b\":{\"m~n\":\"v\",\"~/\":[\"w\"]},\"\":\"e\"}", &c);
    assert_string_equal(c.r[0].path, "/a~1b");
    assert_string_equal(c.r[1].path, "/a~1b/m~0n");
    assert_string_equal(c.r[2].text, "v");
    assert_string_equal(c.r[2].path, "/a~1b/m~0n");
    assert_string_equal(c.r[3].path, "/a~1b/~0~1");
    assert_string_equal(c.r[4].text, "w");
    assert_string_equal(c.r[4].path, "/a~1b/~0~1/0");
    assert_int_equal(c.r[4].depth, 3);
    assert_string_equal(c.r[5].path, "/"); /* empty key */
    assert_string_equal(c.r[6].path, "/");

    /* escaped key text is decoded before it goes into the path */
    walk_ok("{\"\\u0061\\/b\":\"v\"}", &c);
    assert_string_equal(c.r[0].text, "a/b");
    assert_string_equal(c.r[1].path, "/a~1b");

    /* nested arrays, path restored after closing containers */
    walk_ok("[[\"a\",[],{},\"b\"],\"c\",{\"k\":[1,\"d\"]}]", &c);
    assert_string_equal(c.r[0].path, "/0/0");
    assert_string_equal(c.r[1].path, "/0/3");
    assert_string_equal(c.r[2].path, "/1");
    assert_string_equal(c.r[3].path, "/2/k");
    assert_string_equal(c.r[4].path, "/2/k/1");
    assert_int_equal(c.r[4].depth, 3);
}

static void test_path_truncated(void **state)
{
    (void)state;
    char doc[800];
    coll_t c;
    /* a 300-byte key: path is "/" + 254 bytes */
    int n = snprintf(doc, sizeof doc, "{\"%0300d\":\"v\"}", 0);
    walk_ok_n(doc, (size_t)n, &c);
    assert_int_equal(strlen(c.r[1].path), 255);
    assert_int_equal(c.r[1].path[0], '/');

    /* a key of 3-byte characters is cut on a character boundary: 1 + 3*84 = 253 */
    size_t o = 0;
    doc[o++] = '{';
    doc[o++] = '"';
    for (int i = 0; i < 100; i++) {
        memcpy(doc + o, "\xe2\x82\xac", 3);
        o += 3;
    }
    memcpy(doc + o, "\":\"v\"}", 6);
    o += 6;
    walk_ok_n(doc, o, &c);
    assert_int_equal(strlen(c.r[1].path), 253);
}

/* ---- malformed input ------------------------------------------------------ */

static void test_bad_trailing_comma(void **state)
{
    (void)state;
    walk_bad("[1,2,]", -1, 5, "expected a value");
    walk_bad("{\"a\":1,}", -1, 7, "object key");
    walk_bad("[,]", -1, 1, "expected a value");
    walk_bad("{,}", -1, 1, "object key");
}

static void test_bad_numbers(void **state)
{
    (void)state;
    walk_bad("01", -1, 0, "leading zero");
    walk_bad("[-01]", -1, 2, "leading zero");
    walk_bad("-", -1, 1, "digit");
    walk_bad("[-]", -1, 2, "digit");
    walk_bad("1.", -1, 2, "decimal point");
    walk_bad("1.e5", -1, 2, "decimal point");
    walk_bad(".5", -1, 0, "expected a value");
    walk_bad("1e", -1, 2, "exponent");
    walk_bad("1e+", -1, 3, "exponent");
    walk_bad("+1", -1, 0, "expected a value");
    walk_bad("0x10", -1, 1, "after the top-level value");
    walk_bad("NaN", -1, 0, "expected a value");
    walk_bad("-Infinity", -1, 1, "digit");
}

static void test_bad_strings(void **state)
{
    (void)state;
    walk_bad("\"abc", -1, 4, "unterminated string (opened at offset 0)");
    walk_bad("{\"a\":\"b", -1, 7, "unterminated string");
    walk_bad("\"ab\\", -1, 3, "unterminated escape");
    walk_bad("\"a\x01"
             "b\"",
             -1, 2, "control character 0x01");
    walk_bad("\"a\tb\"", -1, 2, "control character 0x09");
    walk_bad("\"a\nb\"", -1, 2, "control character");
    walk_bad_n("\"a\0b\"", 5, -1, 2, "control character 0x00");
    walk_bad("\"\\x41\"", -1, 1, "invalid escape '\\x'");
    walk_bad("\"\\u12G4\"", -1, 1, "invalid \\u escape");
    walk_bad("\"\\u12\"", -1, 1, "invalid \\u escape");
    walk_bad("'a'", -1, 0, "expected a value");
}

static void test_bad_utf8(void **state)
{
    (void)state;
    walk_bad("\"\xff\"", -1, 1, "invalid UTF-8");
    walk_bad("\"ab\x80\"", -1, 3, "invalid UTF-8");           /* stray continuation */
    walk_bad("\"\xc0\x80\"", -1, 1, "invalid UTF-8");         /* overlong NUL */
    walk_bad("\"\xc1\xbf\"", -1, 1, "invalid UTF-8");         /* overlong */
    walk_bad("\"\xe0\x80\xaf\"", -1, 1, "invalid UTF-8");     /* overlong '/' */
    walk_bad("\"\xed\xa0\x80\"", -1, 1, "invalid UTF-8");     /* encoded surrogate */
    walk_bad("\"\xf4\x90\x80\x80\"", -1, 1, "invalid UTF-8"); /* > U+10FFFF */
    walk_bad("\"\xf5\x80\x80\x80\"", -1, 1, "invalid UTF-8");
    walk_bad("\"x\xe2\x82\"", -1, 2, "invalid UTF-8");     /* truncated before the quote */
    walk_bad_n("\"\xe2\x82", 3, -1, 1, "invalid UTF-8");   /* truncated at end of input */
    walk_bad("\xef\xbb\xbf{}", -1, 0, "expected a value"); /* BOM */
}

static void test_bad_lone_surrogate(void **state)
{
    (void)state;
    walk_bad("\"\\ud800\"", -1, 1, "lone high surrogate \\uD800");
    walk_bad("\"ab\\ud800\\u0041\"", -1, 3, "lone high surrogate");
    walk_bad("\"\\ud800\\ud800\"", -1, 1, "lone high surrogate");
    walk_bad("\"\\udc00x\"", -1, 1, "lone low surrogate \\uDC00");
    walk_bad("\"\\ud83d\\ude0\"", -1, 1, "lone high surrogate");
    walk_bad_n("\"\\ud83d\\u", 9, -1, 1, "lone high surrogate");
}

static void test_depth(void **state)
{
    (void)state;
    char doc[2 * 130 + 1];
    coll_t *c = malloc(sizeof *c);
    assert_non_null(c);
    /* 128 nested arrays are fine */
    memset(doc, '[', 128);
    memset(doc + 128, ']', 128);
    walk_ok_n(doc, 256, c);
    /* 129: limit (-2) at the 129th bracket */
    memset(doc, '[', 129);
    memset(doc + 129, ']', 129);
    walk_bad_n(doc, 258, -2, 128, "nesting deeper than 128");
    free(c);
    /* objects count too */
    char *big = malloc(129 * 5 + 1);
    assert_non_null(big);
    size_t o = 0;
    for (int i = 0; i < 129; i++) {
        memcpy(big + o, "{\"a\":", 5);
        o += 5;
    }
    walk_bad_n(big, o, -2, 128 * 5, "nesting deeper");
    free(big);
}

static void test_bad_structure(void **state)
{
    (void)state;
    walk_bad("", -1, 0, "empty document");
    walk_bad(" \t\r\n", -1, 4, "empty document");
    walk_bad("1 2", -1, 2, "after the top-level value");
    walk_bad("{} x", -1, 3, "after the top-level value");
    walk_bad("\"a\"\"b\"", -1, 3, "after the top-level value");
    walk_bad("[1 2]", -1, 3, "expected ',' or ']'");
    walk_bad("{\"a\":1 \"b\":2}", -1, 7, "expected ',' or '}'");
    walk_bad("{\"a\" 1}", -1, 5, "expected ':' after object key");
    walk_bad("{\"a\"", -1, 4, "expected ':' after object key");
    walk_bad("{1:2}", -1, 1, "object key");
    walk_bad("[1", -1, 2, "end of input in array");
    walk_bad("{\"a\":1", -1, 6, "end of input in object");
    walk_bad("{\"a\":", -1, 5, "expected a value");
    walk_bad("[", -1, 1, "expected a value");
    walk_bad("[}", -1, 1, "before '}'");
    walk_bad("{]", -1, 1, "object key");
    walk_bad("]", -1, 0, "before ']'");
    walk_bad("nul", -1, 0, "expected 'null'");
    walk_bad("truex", -1, 4, "after the top-level value");
    walk_bad("True", -1, 0, "expected a value");
    walk_bad("[1]/*c*/", -1, 3, "after the top-level value");
    walk_bad("//c\n1", -1, 0, "expected a value");
    walk_bad("\x0b"
             "1",
             -1, 0, "expected a value, got byte 0x0B");
}

static void test_valid_numbers_and_literals(void **state)
{
    (void)state;
    static const char *ok[] = {
        "-0",
        "0",
        "1e10",
        "1.5E-3",
        "-12.34e+56",
        "1E0",
        "0.0",
        "-0.0e-0",
        "9",
        "10",
        "123",
        "[0,-0,1]",
        "true",
        "false",
        "null",
        " 1 ",
        "\n[\r\n\t1 , 2 ]\n",
        "{}",
        "[]",
        "{ }",
        "[ ]",
        "{\"a\":{\"b\":[true,false,null,{}]}}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        coll_t c;
        size_t quotes = 0;
        for (const char *q = ok[i]; *q; q++)
            quotes += *q == '"';
        walk_ok(ok[i], &c);
        assert_int_equal(c.n, quotes / 2);
    }
}

/* ---- callback, scratch ---------------------------------------------------- */

static void test_callback_stop(void **state)
{
    (void)state;
    json_scratch_t sc;
    char err[128];
    coll_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    json_scratch_init(&sc);
    c->stop_at = 2;
    c->stop_rc = 7;
    /* stops at the second string, before seeing the malformed tail */
    const char *doc = "{\"a\":\"b\",\"c\":\"d\"} garbage";
    assert_int_equal(json_walk(doc, strlen(doc), &sc, collect, c, err, sizeof err), 7);
    assert_int_equal(c->total, 2);
    assert_string_equal(err, "");

    /* NULL callback and NULL err are allowed */
    assert_int_equal(json_walk(doc, 17, &sc, NULL, NULL, NULL, 0), 0);
    assert_int_equal(json_walk(doc, strlen(doc), &sc, NULL, NULL, NULL, 0), -1);
    json_scratch_free(&sc);
    free(c);
}

static int count_cb(const json_string_t *s, void *ctx)
{
    size_t *n = ctx;
    *n += s->len;
    for (size_t i = 1; i <= s->len; i++)
        if (s->map[i] < s->map[i - 1]) return 99;
    return 0;
}

static void test_scratch_limit_and_growth(void **state)
{
    (void)state;
    json_scratch_t sc;
    char err[128];
    size_t total = 0;
    json_scratch_init(&sc);
    assert_int_equal(sc.max, (size_t)64 << 20);

    sc.max = 8;
    assert_int_equal(json_walk("\"12345678\"", 10, &sc, count_cb, &total, err, sizeof err), 0);
    assert_int_equal(total, 8);
    assert_int_equal(json_walk("\"123456789\"", 11, &sc, count_cb, &total, err, sizeof err), -2);
    assert_non_null(strstr(err, "longer than 8"));
    /* a multi-byte character that would cross the limit */
    assert_int_equal(json_walk("\"1234567\xc3\xa9\"", 11, &sc, count_cb, &total, err, sizeof err),
                     -2);
    json_scratch_free(&sc);

    /* growth: a 300 kB string with escapes and UTF-8 */
    json_scratch_init(&sc);
    size_t n = 300000;
    char *doc = malloc(n + 2);
    assert_non_null(doc);
    doc[0] = '"';
    for (size_t i = 1; i < n; i += 6)
        memcpy(doc + i, (i / 6) % 2 ? "\\n\xc3\xa9xy" : "abcdef", 6);
    doc[n] = '"';
    total = 0;
    assert_int_equal(json_walk(doc, n + 1, &sc, count_cb, &total, err, sizeof err), 0);
    assert_true(sc.cap >= total);
    assert_true(total > 200000);
    /* lowering max after growth still applies the new limit */
    sc.max = 8;
    assert_int_equal(json_walk("\"123456789\"", 11, &sc, NULL, NULL, err, sizeof err), -2);
    assert_string_equal(err, "offset 1: string longer than 8 bytes");
    free(doc);
    json_scratch_free(&sc);
}

/* ---- redaction ------------------------------------------------------------ */

typedef struct find_ctx {
    const char *needle;
    bool found;
} find_ctx_t;

static int find_cb(const json_string_t *s, void *ctx)
{
    find_ctx_t *f = ctx;
    if (f->needle && memmem(s->text, s->len, f->needle, strlen(f->needle))) f->found = true;
    return 0;
}

/* out must be valid JSON, contain label (raw), and neither its raw bytes nor
 * its decoded strings may contain secret. */
static void check_redacted(const char *out, size_t outlen, const char *label, const char *secret)
{
    json_scratch_t sc;
    char err[256];
    find_ctx_t f = {.needle = secret, .found = false};
    json_scratch_init(&sc);
    assert_int_equal(strlen(out), outlen);
    int rc = json_walk(out, outlen, &sc, find_cb, &f, err, sizeof err);
    if (rc) print_error("output: %s\nerror: %s\n", out, err);
    assert_int_equal(rc, 0);
    if (label) assert_non_null(strstr(out, label));
    if (secret) {
        assert_false(f.found);
        assert_null(memmem(out, outlen, secret, strlen(secret)));
    }
    json_scratch_free(&sc);
}

static void redact_expect(const char *doc, const json_span_t *sp, size_t n, const char *want)
{
    char *out = NULL, err[256];
    size_t outlen = 0;
    int rc = json_redact(doc, strlen(doc), sp, n, &out, &outlen, err, sizeof err);
    if (rc) print_error("input: %s\nerror: %s\n", doc, err);
    assert_int_equal(rc, 0);
    if (strcmp(out, want) != 0) print_error("got:  %s\nwant: %s\n", out, want);
    assert_string_equal(out, want);
    check_redacted(out, outlen, NULL, NULL);
    free(out);
}

static void redact_refused(const char *doc, const json_span_t *sp, size_t n, const char *what)
{
    char *out = (char *)1, err[256];
    size_t outlen = 5;
    assert_int_equal(json_redact(doc, strlen(doc), sp, n, &out, &outlen, err, sizeof err), -1);
    assert_null(out);
    assert_int_equal(outlen, 0);
    assert_true(strncmp(err, "offset ", 7) == 0);
    if (!strstr(err, what)) print_error("error: %s (want \"%s\")\n", err, what);
    assert_non_null(strstr(err, what));
}

static size_t off_of(const char *doc, const char *s)
{
    const char *p = strstr(doc, s);
    assert_non_null(p);
    return (size_t)(p - doc);
}

static void test_redact_basic(void **state)
{
    (void)state;
    const char *doc = "{\"k\":\"my AKIAIOSFODNN7EXAMPLE key\"}";
    size_t s = off_of(doc, "AKIA");
    json_span_t sp = {s, s + 20, "[REDACTED:aws]"};
    redact_expect(doc, &sp, 1, "{\"k\":\"my [REDACTED:aws] key\"}");

    /* whole string body, and a span in a key */
    json_span_t whole = {6, off_of(doc, "\"}"), "[X]"};
    redact_expect(doc, &whole, 1, "{\"k\":\"[X]\"}");
    json_span_t key = {2, 3, "K"};
    redact_expect(doc, &key, 1, "{\"K\":\"my AKIAIOSFODNN7EXAMPLE key\"}");

    /* no spans: an exact copy; an empty span is dropped */
    redact_expect(doc, NULL, 0, doc);
    json_span_t empty = {s, s, "[E]"};
    redact_expect(doc, &empty, 1, doc);

    /* NULL label → default */
    json_span_t nl = {s, s + 20, NULL};
    redact_expect(doc, &nl, 1, "{\"k\":\"my [REDACTED] key\"}");
}

static void test_redact_widens_escapes(void **state)
{
    (void)state;
    const char *doc = "{\"k\":\"x\\u0041KIAIOSFODNN7EXAMPL\\u0045y\"}";
    size_t esc1 = off_of(doc, "\\u0041");
    size_t esc2 = off_of(doc, "\\u0045");
    /* start in the middle of the first escape, end in the middle of the second */
    json_span_t sp = {esc1 + 3, esc2 + 2, "[R]"};
    redact_expect(doc, &sp, 1, "{\"k\":\"x[R]y\"}");
    /* span covering only the digits of one escape */
    json_span_t digits = {esc1 + 2, esc1 + 6, "[D]"};
    redact_expect(doc, &digits, 1, "{\"k\":\"x[D]KIAIOSFODNN7EXAMPL\\u0045y\"}");

    /* a surrogate pair is one unit: cutting between its halves takes both */
    const char *emoji = "[\"a\\ud83d\\ude00b\"]";
    size_t mid = off_of(emoji, "\\ude00");
    json_span_t half = {mid, mid + 1, "[E]"};
    redact_expect(emoji, &half, 1, "[\"a[E]b\"]");

    /* a span inside a raw multi-byte character takes the whole character */
    const char *utf = "[\"a\xe2\x82\xac"
                      "b\"]";
    json_span_t inner = {4, 5, "[U]"};
    redact_expect(utf, &inner, 1, "[\"a[U]b\"]");

    /* \n escape cut after its backslash */
    const char *pem = "[\"-----BEGIN\\nMIIE\"]";
    size_t bs = off_of(pem, "\\n");
    json_span_t cut = {bs + 1, bs + 6, "[P]"};
    redact_expect(pem, &cut, 1, "[\"-----BEGIN[P]\"]");

    /* nothing of the secret survives, in raw or decoded form */
    char *out;
    size_t outlen;
    char err[128];
    json_span_t sec = {esc1 + 1, esc2 + 1, "[S]"};
    assert_int_equal(json_redact(doc, strlen(doc), &sec, 1, &out, &outlen, err, sizeof err), 0);
    check_redacted(out, outlen, "[S]", "AKIA");
    check_redacted(out, outlen, "[S]", "EXAMPLE");
    free(out);
}

static void test_redact_overlap_unsorted(void **state)
{
    (void)state;
    const char *doc = "[\"0123456789\",\"abcdefghij\"]";
    /* unsorted, overlapping: [2,6) and [4,9) merge under the first label */
    json_span_t sp[] = {
        {off_of(doc, "b"), off_of(doc, "d"), "[C]"}, /* second string */
        {off_of(doc, "4"), off_of(doc, "9"), "[B]"},
        {off_of(doc, "2"), off_of(doc, "6"), "[A]"},
    };
    redact_expect(doc, sp, 3, "[\"01[A]9\",\"a[C]defghij\"]");

    /* same start: the caller's first wins; containment merges */
    json_span_t same[] = {
        {off_of(doc, "3"), off_of(doc, "5"), "[first]"},
        {off_of(doc, "3"), off_of(doc, "8"), "[second]"},
        {off_of(doc, "4"), off_of(doc, "5"), "[inner]"},
    };
    redact_expect(doc, same, 3, "[\"012[first]89\",\"abcdefghij\"]");

    /* touching spans keep both labels */
    json_span_t touch[] = {
        {off_of(doc, "5"), off_of(doc, "7"), "[Y]"},
        {off_of(doc, "3"), off_of(doc, "5"), "[X]"},
    };
    redact_expect(doc, touch, 2, "[\"012[X][Y]789\",\"abcdefghij\"]");

    /* spans that overlap only after widening merge */
    const char *esc = "[\"a\\u0042\\u0043d\"]";
    size_t e1 = off_of(esc, "\\u0042"), e2 = off_of(esc, "\\u0043");
    json_span_t wid[] = {{e1, e1 + 3, "[1]"}, {e1 + 4, e2 + 1, "[2]"}};
    redact_expect(esc, wid, 2, "[\"a[1]d\"]");
}

static void test_redact_refuses(void **state)
{
    (void)state;
    const char *doc = "{\"key\":\"value\",\"n\":12}";
    json_span_t colon = {off_of(doc, ":"), off_of(doc, ":") + 1, "[X]"};
    redact_refused(doc, &colon, 1, "not inside a string body");
    json_span_t quote = {1, 3, "[X]"}; /* starts on the opening quote */
    redact_refused(doc, &quote, 1, "not inside a string body");
    json_span_t cross = {off_of(doc, "lue"), off_of(doc, ",\"n"), "[X]"}; /* eats the quote */
    redact_refused(doc, &cross, 1, "runs past the end of the string");
    json_span_t two = {off_of(doc, "ey"), off_of(doc, "al"), "[X]"}; /* spans two strings */
    redact_refused(doc, &two, 1, "runs past the end");
    json_span_t num = {off_of(doc, "12"), off_of(doc, "12") + 1, "[X]"};
    redact_refused(doc, &num, 1, "not inside a string body");
    json_span_t after = {strlen(doc) - 1, strlen(doc), "[X]"};
    redact_refused(doc, &after, 1, "not inside a string body");
    json_span_t backwards = {10, 9, "[X]"};
    redact_refused(doc, &backwards, 1, "not a range of the input");
    json_span_t past = {10, 100, "[X]"};
    redact_refused(doc, &past, 1, "not a range of the input");
    json_span_t badlabel = {9, 10, "\xff"};
    redact_refused(doc, &badlabel, 1, "not valid UTF-8");
    /* one bad span among good ones refuses the whole call */
    json_span_t mix[] = {{9, 10, "[ok]"}, colon};
    redact_refused(doc, mix, 2, "not inside a string body");
    /* malformed document */
    json_span_t ok = {2, 3, "[X]"};
    redact_refused("{\"a\":1,}", &ok, 1, "object key");
    redact_refused("", NULL, 0, "empty document");
}

static void test_redact_label_escaped(void **state)
{
    (void)state;
    const char *doc = "[\"secret!\"]";
    json_span_t sp = {2, 9, "[\"q\\ \t\x01 \xc3\xa9]"};
    redact_expect(doc, &sp, 1, "[\"[\\\"q\\\\ \\t\\u0001 \xc3\xa9]\"]");
}

/* The OpenAI-style request of the brief: a key id split by an escape is found
 * in the decoded text and mapped back to exact raw offsets, then redacted. */
typedef struct aws_ctx {
    size_t start, end;
    char path[64];
    int hits;
} aws_ctx_t;

static int aws_cb(const json_string_t *s, void *vctx)
{
    aws_ctx_t *a = vctx;
    const char *p = memmem(s->text, s->len, "AKIAIOSFODNN7ABCDEFG", 20);
    if (p && !s->is_key) {
        size_t i = (size_t)(p - s->text);
        a->start = s->map[i];
        a->end = s->map[i + 20];
        snprintf(a->path, sizeof a->path, "%s", s->path);
        a->hits++;
    }
    return 0;
}

static void test_redact_openai_request(void **state)
{
    (void)state;
    const char *doc =
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"You are a helpful "
        "assistant.\"},{\"role\":\"user\",\"content\":\"Why does this fail?\\n```\\nexport "
        "AWS_ACCESS_KEY_ID=AKIA\\u0049OSFODNN7ABCDEFG\\nexport AWS_REGION=eu-west-1\\n```\"}],"
        "\"temperature\":0.2,\"stream\":true,\"max_tokens\":512}";
    json_scratch_t sc;
    char err[256];
    aws_ctx_t a = {0};
    json_scratch_init(&sc);
    assert_int_equal(json_walk(doc, strlen(doc), &sc, aws_cb, &a, err, sizeof err), 0);
    json_scratch_free(&sc);
    assert_int_equal(a.hits, 1);
    assert_string_equal(a.path, "/messages/1/content");
    assert_int_equal(a.start, off_of(doc, "AKIA\\u0049"));
    assert_int_equal(a.end, off_of(doc, "\\nexport AWS_REGION"));
    assert_int_equal(a.end - a.start, 25); /* 20 characters, one of them a 6-byte escape */

    json_span_t sp = {a.start, a.end, "[REDACTED:aws-access-key-id]"};
    char *out;
    size_t outlen;
    assert_int_equal(json_redact(doc, strlen(doc), &sp, 1, &out, &outlen, err, sizeof err), 0);
    check_redacted(out, outlen, "[REDACTED:aws-access-key-id]", "AKIAIOSFODNN7ABCDEFG");
    check_redacted(out, outlen, NULL, "OSFODNN7");
    /* everything else is byte-identical */
    size_t lab = strlen(sp.label);
    assert_int_equal(outlen, strlen(doc) - (a.end - a.start) + lab);
    assert_memory_equal(out, doc, a.start);
    assert_memory_equal(out + a.start, sp.label, lab);
    assert_string_equal(out + a.start + lab, doc + a.end);
    free(out);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_newline_pem),
        cmocka_unit_test(test_unicode_escape_A),
        cmocka_unit_test(test_surrogate_pair),
        cmocka_unit_test(test_raw_utf8),
        cmocka_unit_test(test_simple_escapes),
        cmocka_unit_test(test_keys_values_paths),
        cmocka_unit_test(test_paths_escaped_keys),
        cmocka_unit_test(test_path_truncated),
        cmocka_unit_test(test_bad_trailing_comma),
        cmocka_unit_test(test_bad_numbers),
        cmocka_unit_test(test_bad_strings),
        cmocka_unit_test(test_bad_utf8),
        cmocka_unit_test(test_bad_lone_surrogate),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_bad_structure),
        cmocka_unit_test(test_valid_numbers_and_literals),
        cmocka_unit_test(test_callback_stop),
        cmocka_unit_test(test_scratch_limit_and_growth),
        cmocka_unit_test(test_redact_basic),
        cmocka_unit_test(test_redact_widens_escapes),
        cmocka_unit_test(test_redact_overlap_unsorted),
        cmocka_unit_test(test_redact_refuses),
        cmocka_unit_test(test_redact_label_escaped),
        cmocka_unit_test(test_redact_openai_request),
    };
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
