/*
 * Unit tests for the inspection engine on a small rules file written by the
 * test: loading errors with file:line, prefilter + exact match, filters
 * (validator, entropy, allowlist, placeholders), ordering, line/column,
 * fingerprints, masking, window merging, and path rules.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inspect/inspect.h"

static const char rules_text[] =
    "- id: aws-access-key-id\n"
    "  description: AWS access key id\n"
    "  category: secret\n"
    "  regex: '\\b((?:AKIA|ASIA)[A-Z2-7]{16})\\b'\n"
    "  secret_group: 1\n"
    "  keywords: [akia, asia]\n"
    "  validator: aws_key_id\n"
    "- id: generic-password\n"
    "  description: password assignment\n"
    "  category: secret\n"
    "  regex: '(?i)\\bpassword\\s*[=:]\\s*\"([^\"\\s]{12,64})\"'\n"
    "  secret_group: 1\n"
    "  entropy: 3.5\n"
    "  allowlist: ['(?i)^not-a-secret']\n"
    "- id: email\n"
    "  description: e-mail address\n"
    "  category: pii\n"
    "  regex: '\\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\\.[A-Za-z]{2,24}\\b'\n"
    "- id: path-dotenv\n"
    "  description: dotenv\n"
    "  category: path\n"
    "  globs: ['.env', '.env.*']\n"
    "  exclude: ['.env.example']\n"
    "- id: path-aws-credentials\n"
    "  description: aws credentials\n"
    "  category: path\n"
    "  globs: ['.aws/credentials']\n";

static char rules_path[64];
static inspect_engine_t *E;
static inspect_scratch_t *S;

#define MAXF 64
typedef struct col {
    inspect_finding_t f[MAXF];
    int n;
} col_t;

static int collect(const inspect_finding_t *f, void *ctx)
{
    col_t *c = ctx;
    if (c->n < MAXF) c->f[c->n] = *f;
    c->n++;
    return 0;
}

static int write_file(char *path, size_t cap, const char *text)
{
    snprintf(path, cap, "/tmp/cdeguard-rules-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    size_t n = strlen(text);
    if (write(fd, text, n) != (ssize_t)n) return -1;
    close(fd);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    if (write_file(rules_path, sizeof rules_path, rules_text) < 0) return -1;
    const char *files[] = {rules_path, NULL};
    char err[256];
    if (inspect_engine_load(files, &E, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    S = inspect_scratch_new(E);
    return S ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    inspect_scratch_free(S);
    inspect_engine_free(E);
    unlink(rules_path);
    return 0;
}

static col_t scan_with(const inspect_engine_t *e, inspect_scratch_t *s, const char *text)
{
    col_t c;
    memset(&c, 0, sizeof c);
    assert_int_equal(inspect_scan_text(e, s, text, strlen(text), collect, &c), 0);
    return c;
}

static col_t scan(const char *text)
{
    return scan_with(E, S, text);
}

static void test_finds_and_positions(void **state)
{
    (void)state;
    const char *text = "first line\n"
                       "  key = AKIAQYLPMN5HFIQR7XYZ  # aws\n"
                       "password = \"Zt9#qLm2$vXw8!pR\"\n"
                       "mail me: alice.smith@corp-mail.de\n";
    col_t c = scan(text);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.f[0].rule_id, "aws-access-key-id");
    assert_int_equal(c.f[0].line, 2);
    assert_int_equal(c.f[0].column, 9);
    assert_int_equal(c.f[0].end - c.f[0].start, 20);
    assert_memory_equal(text + c.f[0].start, "AKIAQYLPMN5HFIQR7XYZ", 20);
    assert_int_equal(c.f[0].category, INSPECT_SECRET);
    assert_int_equal(c.f[0].action, INSPECT_BLOCK);
    assert_string_equal(c.f[1].rule_id, "generic-password");
    assert_int_equal(c.f[1].line, 3);
    assert_int_equal(c.f[1].column, 13);
    assert_string_equal(c.f[2].rule_id, "email");
    assert_int_equal(c.f[2].category, INSPECT_PII);
    assert_int_equal(c.f[2].action, INSPECT_REDACT);
    assert_int_equal(c.f[2].line, 4);
}

static void test_preview_is_masked_and_fingerprint_stable(void **state)
{
    (void)state;
    col_t a = scan("x AKIAQYLPMN5HFIQR7XYZ y");
    col_t b = scan("other text\n\nAKIAQYLPMN5HFIQR7XYZ");
    assert_int_equal(a.n, 1);
    assert_int_equal(b.n, 1);
    assert_null(strstr(a.f[0].preview, "AKIAQYLPMN5HFIQR7XYZ"));
    assert_null(strstr(a.f[0].preview, "QYLPMN"));
    assert_string_equal(a.f[0].preview, "AKIA********...(20)");
    assert_string_equal(a.f[0].fingerprint, b.f[0].fingerprint);
    assert_int_equal(strlen(a.f[0].fingerprint), 32);
    col_t c = scan("AKIAQYLPMN5HFIQR7XYA");
    assert_int_equal(c.n, 1);
    assert_string_not_equal(a.f[0].fingerprint, c.f[0].fingerprint);
}

static void test_filters(void **state)
{
    (void)state;
    /* documentation example and wrong alphabet (validator) */
    assert_int_equal(scan("AKIAIOSFODNN7EXAMPLE").n, 0);
    assert_int_equal(scan("AKIA0000000000000000").n, 0);
    /* low entropy and allowlisted values */
    assert_int_equal(scan("password = \"aaaaaaaaaaaaaaaa\"").n, 0);
    assert_int_equal(scan("password = \"not-a-secret-Zt9#qLm2\"").n, 0);
    /* placeholder */
    assert_int_equal(scan("password = \"${DB_PASSWORD_VALUE}\"").n, 0);
    /* word boundary: embedded in a longer token */
    assert_int_equal(scan("XAKIAQYLPMN5HFIQR7XYZ").n, 0);
}

static void test_many_candidates(void **state)
{
    (void)state;
    /* 5000 e-mail addresses: windows merge, every one is found once */
    size_t n = 5000, cap = n * 40 + 1;
    char *text = malloc(cap);
    size_t pos = 0;
    for (size_t i = 0; i < n; i++)
        pos += (size_t)snprintf(text + pos, cap - pos, "user%zu@mail%zu.corpmail.net\n", i, i % 7);
    col_t c;
    memset(&c, 0, sizeof c);
    assert_int_equal(inspect_scan_text(E, S, text, pos, collect, &c), 0);
    assert_int_equal(c.n, (int)n);
    free(text);
}

static void test_empty_and_binary(void **state)
{
    (void)state;
    col_t c;
    memset(&c, 0, sizeof c);
    assert_int_equal(inspect_scan_text(E, S, "", 0, collect, &c), 0);
    assert_int_equal(c.n, 0);
    char bin[256];
    for (int i = 0; i < 256; i++)
        bin[i] = (char)i;
    assert_int_equal(inspect_scan_text(E, S, bin, sizeof bin, collect, &c), 0);
}

static int stop_first(const inspect_finding_t *f, void *ctx)
{
    (void)f;
    (*(int *)ctx)++;
    return 7;
}

static void test_callback_stops(void **state)
{
    (void)state;
    int calls = 0;
    const char *t = "anna.k@firma-mail.de berta.m@firma-mail.de";
    assert_int_equal(inspect_scan_text(E, S, t, strlen(t), stop_first, &calls), 7);
    assert_int_equal(calls, 1);
}

static void test_paths(void **state)
{
    (void)state;
    col_t c;
    const char *yes[] = {".env", "app/.env", "app/.env.production", "/home/u/.aws/credentials",
                         "C:\\Users\\u\\.aws\\credentials"};
    const char *no[] = {".env.example", "src/env.ts", "environment.yaml", ".aws/config",
                        "credentials"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        memset(&c, 0, sizeof c);
        inspect_check_path(E, yes[i], strlen(yes[i]), collect, &c);
        if (c.n != 1) fail_msg("path %s: %d findings", yes[i], c.n);
        assert_int_equal(c.f[0].category, INSPECT_PATH);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        memset(&c, 0, sizeof c);
        inspect_check_path(E, no[i], strlen(no[i]), collect, &c);
        if (c.n != 0) fail_msg("path %s: %d findings", no[i], c.n);
    }
}

/* Stream the text in chunks of `step` (0 = growing pseudo-random sizes)
 * and return what was found. */
static col_t scan_stream(const char *text, size_t len, size_t step)
{
    col_t c;
    memset(&c, 0, sizeof c);
    inspect_stream_t *st = inspect_stream_new(E, S, collect, &c);
    assert_non_null(st);
    size_t pos = 0, k = 1;
    while (pos < len) {
        size_t n = step ? step : (k * 7919) % 3001 + 1;
        if (n > len - pos) n = len - pos;
        assert_int_equal(inspect_stream_feed(st, text + pos, n), 0);
        pos += n;
        k++;
    }
    assert_int_equal(inspect_stream_finish(st), 0);
    inspect_stream_free(st);
    return c;
}

static void assert_same_findings(const col_t *a, const col_t *b)
{
    assert_int_equal(a->n, b->n);
    for (int i = 0; i < a->n && i < MAXF; i++) {
        assert_string_equal(a->f[i].rule_id, b->f[i].rule_id);
        assert_int_equal(a->f[i].start, b->f[i].start);
        assert_int_equal(a->f[i].end, b->f[i].end);
        assert_int_equal(a->f[i].line, b->f[i].line);
        assert_int_equal(a->f[i].column, b->f[i].column);
        assert_string_equal(a->f[i].fingerprint, b->f[i].fingerprint);
    }
}

static void test_stream_matches_one_shot(void **state)
{
    (void)state;
    const char *text = "line one\n  key = AKIAQYLPMN5HFIQR7XYZ # aws\n"
                       "password = \"Zt9#qLm2$vXw8!pR\"\nmail: alice.smith@corp-mail.de\n";
    col_t one = scan(text);
    assert_int_equal(one.n, 3);
    for (size_t step = 1; step <= 9; step++) {
        col_t st = scan_stream(text, strlen(text), step);
        assert_same_findings(&one, &st);
    }
}

static void test_stream_large_with_splits(void **state)
{
    (void)state;
    /* ~400 KB of filler with secrets every ~37 KB: crosses many slices */
    size_t cap = 420 * 1024;
    char *text = malloc(cap);
    size_t pos = 0;
    int planted = 0;
    while (pos + 200 < cap - 1024) {
        if (pos / (37 * 1024) > (size_t)planted) {
            pos += (size_t)snprintf(text + pos, cap - pos, "k%d = AKIAQYLPMN5HFIQR7X%c%c\n",
                                    planted, 'A' + planted % 26, 'B' + planted % 20);
            planted++;
        }
        pos += (size_t)snprintf(text + pos, cap - pos,
                                "static int f(int x) { return x * 31 + %zu; }\n", pos);
    }
    col_t one;
    memset(&one, 0, sizeof one);
    assert_int_equal(inspect_scan_text(E, S, text, pos, collect, &one), 0);
    assert_int_equal(one.n, planted);
    col_t a = scan_stream(text, pos, 0);
    assert_same_findings(&one, &a);
    col_t b = scan_stream(text, pos, 65536 + 17);
    assert_same_findings(&one, &b);
    free(text);
}

static void test_json_decoded_and_mapped(void **state)
{
    (void)state;
    const char *doc = "{\"messages\": [{\"role\": \"user\",\n"
                      "  \"content\": \"key AKIA\\u0051YLPMN5HFIQR7XYZ here\"}],\n"
                      " \"attachments\": [{\"path\": \"app/.env\"}]}";
    col_t c;
    memset(&c, 0, sizeof c);
    char err[128];
    assert_int_equal(inspect_scan_json(E, S, doc, strlen(doc), collect, &c, err, sizeof err), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.f[0].rule_id, "aws-access-key-id");
    const char *raw = strstr(doc, "AKIA");
    assert_int_equal(c.f[0].start, (uint64_t)(raw - doc));
    assert_int_equal(c.f[0].end - c.f[0].start, 25); /* 20 chars, one of them as \u0051 */
    assert_int_equal(c.f[0].line, 2);
    /* same secret, same fingerprint, escaped or not */
    col_t plain = scan("AKIAQYLPMN5HFIQR7XYZ");
    assert_string_equal(c.f[0].fingerprint, plain.f[0].fingerprint);
    assert_string_equal(c.f[1].rule_id, "path-dotenv");
    assert_int_equal(c.f[1].line, 3);
    memset(&c, 0, sizeof c);
    assert_int_equal(inspect_scan_json(E, S, "{\"a\": ", 6, collect, &c, err, sizeof err), -2);
    assert_true(strlen(err) > 0);
}

static void expect_load_error(const char *text, const char *want)
{
    char path[64], err[512];
    assert_int_equal(write_file(path, sizeof path, text), 0);
    const char *files[] = {path, NULL};
    inspect_engine_t *e = NULL;
    int rc = inspect_engine_load(files, &e, err, sizeof err);
    unlink(path);
    assert_int_equal(rc, -1);
    assert_null(e);
    if (!strstr(err, want)) fail_msg("error '%s' lacks '%s'", err, want);
    assert_non_null(strstr(err, path));
}

static void test_load_errors(void **state)
{
    (void)state;
    expect_load_error("- id: a\n  category: secret\n  regex: '('\n", ":3: rule 'a': bad regex");
    expect_load_error("- id: a\n  category: secret\n  regx: 'a'\n", ":3: unknown rule key 'regx'");
    expect_load_error("- id: a\n  category: nope\n  regex: 'a'\n", "category must be");
    expect_load_error("- id: a\n  category: secret\n  regex: 'a'\n  validator: crc\n",
                      "unknown validator 'crc'");
    expect_load_error("- id: a\n  category: secret\n  regex: 'a*'\n", "Vectorscan");
    expect_load_error("- id: a\n  category: secret\n  regex: 'a\\Kb'\n",
                      ":3: rule 'a': regex not supported by Vectorscan: \\K");
    expect_load_error("- id: a\n  category: path\n", "needs globs");
    expect_load_error("id: a\n", "list of rules");
    expect_load_error("- id: a\n  category: secret\n  regex: 'a(b)'\n  secret_group: 2\n",
                      "secret_group");
    expect_load_error("- [unclosed\n", "YAML error");
}

/* The daemon compiles in a child process (the window widths and the
 * database come back through a pipe): same findings, same errors. */
static void test_compile_in_child(void **state)
{
    (void)state;
    const char *text = "first line\n"
                       "  key = AKIAQYLPMN5HFIQR7XYZ  # aws\n"
                       "password = \"Zt9#qLm2$vXw8!pRZt9#qLm2$vXw8!pRZt9#qLm2$vXw8!pR\"\n"
                       "mail me: alice.smith@corp-mail.de, bob.jones@corp-mail.de\n";
    col_t want = scan(text);
    assert_int_equal(want.n, 4);

    inspect_compile_in_child(true);
    const char *files[] = {rules_path, NULL};
    char err[512];
    inspect_engine_t *e = NULL;
    int rc = inspect_engine_load(files, &e, err, sizeof err);
    if (rc < 0) fail_msg("%s", err);
    inspect_scratch_t *s = inspect_scratch_new(e);
    assert_non_null(s);
    col_t got = scan_with(e, s, text);
    assert_int_equal(got.n, want.n);
    for (int i = 0; i < want.n; i++) {
        assert_string_equal(got.f[i].rule_id, want.f[i].rule_id);
        assert_int_equal(got.f[i].start, want.f[i].start);
        assert_int_equal(got.f[i].end, want.f[i].end);
    }
    /* recompiling after a rule change goes through the child too */
    assert_int_equal(inspect_rule_enable(e, "email", false), 0);
    inspect_scratch_free(s);
    s = inspect_scratch_new(e);
    assert_int_equal(scan_with(e, s, text).n, 2);
    inspect_scratch_free(s);
    inspect_engine_free(e);

    expect_load_error("- id: a\n  category: secret\n  regex: 'a\\Kb'\n",
                      ":3: rule 'a': regex not supported by Vectorscan: \\K");
    expect_load_error("- id: a\n  category: secret\n  regex: 'a*'\n", "rule 'a': Vectorscan: ");
    inspect_compile_in_child(false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finds_and_positions),
        cmocka_unit_test(test_preview_is_masked_and_fingerprint_stable),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_many_candidates),
        cmocka_unit_test(test_empty_and_binary),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_stream_matches_one_shot),
        cmocka_unit_test(test_json_decoded_and_mapped),
        cmocka_unit_test(test_stream_large_with_splits),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_compile_in_child),
    };
    return cmocka_run_group_tests_name("inspect", tests, setup, teardown);
}
