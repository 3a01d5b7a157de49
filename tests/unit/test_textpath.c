/*
 * test_textpath.c — unit tests of src/inspect/textpath.c (file paths
 * mentioned in free text) and of INSPECT_SCAN_TEXT_PATHS in the engine:
 * each shape found with its exact byte range, prose and code that only
 * look alike not reported, JSON strings mapped back to raw offsets, and
 * findings delivered in order of position; and JSON values scanned behind
 * their keys.
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
#include <strings.h>

#include "inspect/inspect.h"
#include "inspect/textpath.h"

#define MAXC 64

typedef struct cands {
    const char *text;
    char got[MAXC][TEXTPATH_MAX_PATH + 1];
    size_t n;
} cands_t;

static int on_cand(size_t start, size_t end, void *ctx)
{
    cands_t *c = ctx;
    assert_true(c->n < MAXC);
    assert_true(end > start);
    memcpy(c->got[c->n], c->text + start, end - start);
    c->got[c->n][end - start] = '\0';
    c->n++;
    return 0;
}

static cands_t *candidates(const char *text)
{
    static cands_t c;
    memset(&c, 0, sizeof c);
    c.text = text;
    assert_int_equal(inspect_textpath_candidates(text, strlen(text), on_cand, &c), 0);
    return &c;
}

static bool has(const cands_t *c, const char *path)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->got[i], path) == 0) return true;
    return false;
}

static void test_shapes(void **state)
{
    (void)state;
    cands_t *c = candidates("==> config/.env <==\nA=1\n\n==> id_rsa <==\n");
    assert_int_equal(c->n, 2);
    assert_string_equal(c->got[0], "config/.env");
    assert_string_equal(c->got[1], "id_rsa");

    c = candidates("$ cat ~/.aws/credentials\n[default]\n");
    assert_int_equal(c->n, 1);
    assert_string_equal(c->got[0], "~/.aws/credentials");

    c = candidates("dev@box:~/src$ head -n 5 .env.local secrets.yaml | grep KEY\n");
    assert_true(has(c, ".env.local"));
    assert_true(has(c, "secrets.yaml"));
    assert_false(has(c, "KEY"));

    c = candidates("ls && cat 'my dir/.npmrc'; echo done\n");
    assert_true(has(c, "my dir/.npmrc"));

    c = candidates("File: deploy/prod.tfstate\n");
    assert_int_equal(c->n, 1);
    assert_string_equal(c->got[0], "deploy/prod.tfstate");

    c = candidates("// file: `src/.git-credentials`\n");
    assert_true(has(c, "src/.git-credentials"));

    c = candidates("```yaml path=k8s/kubeconfig\n```\n```python title=\"app/.env\"\n```\n"
                   "```yaml:deploy/.pypirc\n```\n```.netrc\n```\n");
    assert_true(has(c, "k8s/kubeconfig"));
    assert_true(has(c, "app/.env"));
    assert_true(has(c, "deploy/.pypirc"));
    assert_true(has(c, ".netrc"));

    c = candidates("{\"file_path\": \"/home/u/.ssh/id_ed25519\", \"limit\": 20}");
    assert_int_equal(c->n, 1);
    assert_string_equal(c->got[0], "/home/u/.ssh/id_ed25519");

    c = candidates("{\"command\": \"cat server.pem\"}");
    assert_true(has(c, "server.pem"));
}

static void test_lookalikes(void **state)
{
    (void)state;
    /* a command word inside a word, in prose, or with no operand */
    cands_t *c = candidates("concat .env\nthe bobcat .env\nwe read the cat .env file later\n");
    assert_int_equal(c->n, 0);
    /* "cat" not in command position: prose after a word */
    c = candidates("Please do not cat id_rsa here.\n");
    assert_int_equal(c->n, 0);
    /* a code fence with a plain language */
    c = candidates("```python\nprint(1)\n```\n");
    assert_int_equal(c->n, 0);
    /* a quoted key that does not name a file */
    c = candidates("{\"model\": \".env\"}");
    assert_int_equal(c->n, 0);
    /* unterminated quotes and headers */
    c = candidates("cat '.env\n==> .env\n{\"path\": \"x");
    assert_int_equal(c->n, 0);
    c = candidates("");
    assert_int_equal(c->n, 0);
}

/* Mentions longer than TEXTPATH_MAX_PATH are not candidates. */
static void test_bounds(void **state)
{
    (void)state;
    size_t n = TEXTPATH_MAX_PATH + 64;
    char *t = malloc(n + 16);
    assert_non_null(t);
    memcpy(t, "cat ", 4);
    memset(t + 4, 'a', n);
    memcpy(t + 4 + n, "/.env\n", 7);
    cands_t *c = candidates(t);
    assert_int_equal(c->n, 0);
    free(t);
}

/* Every occurrence of every trigger, case-insensitively (what the engine's
 * Vectorscan pass reports). */
static size_t naive_hits(const char *t, size_t len, inspect_textpath_hit_t *h, size_t max)
{
    size_t n = 0;
    for (size_t k = 0; inspect_textpath_trigger(k); k++) {
        const char *w = inspect_textpath_trigger(k);
        size_t wl = strlen(w);
        for (size_t i = 0; i + wl <= len; i++)
            if (strncasecmp(t + i, w, wl) == 0) {
                assert_true(n < max);
                h[n++] = (inspect_textpath_hit_t){i, (unsigned)k};
            }
    }
    return n;
}

/* Looking only around the trigger hits finds what the full pass finds. */
static void test_hits_equal_full_pass(void **state)
{
    (void)state;
    static const char *const parts[] = {"==> config/.env <==\n",
                                        "$ cat ~/.aws/credentials\n",
                                        "  dev@box:~$ head -n 3 .env a.pem\n",
                                        "ls && cat 'x/.npmrc'; echo\n",
                                        "File: deploy/prod.tfstate\n",
                                        "// file: `s/.git-credentials`\n",
                                        "```yaml path=k8s/kubeconfig\n",
                                        "```.netrc\n",
                                        "{\"file_path\": \"/h/.ssh/id_rsa\"}\n",
                                        "{\"command\": \"cat server.pem\"}\n",
                                        "concat .env and the cat .env story\n",
                                        "CAT .ENV\n",
                                        "Filename: id_ed25519\n",
                                        "x = \"path\"\n",
                                        "\"source\" = \"a/.env\" | tail .env\n",
                                        "plain text line with nothing\n",
                                        "(tac .env.local)\n",
                                        "\t\tnl\tsecrets.yaml\n"};
    size_t np = sizeof parts / sizeof parts[0];
    char text[8192];
    static inspect_textpath_hit_t hits[4096];
    unsigned seed = 12345;
    for (int round = 0; round < 200; round++) {
        size_t len = 0;
        for (int k = 0; k < 12; k++) {
            seed = seed * 1103515245u + 12345u;
            const char *p = parts[(seed >> 8) % np];
            size_t pl = strlen(p);
            memcpy(text + len, p, pl);
            len += pl;
        }
        text[len] = '\0';
        cands_t full = *candidates(text);
        static cands_t at;
        memset(&at, 0, sizeof at);
        at.text = text;
        size_t nh = naive_hits(text, len, hits, 4096);
        assert_int_equal(inspect_textpath_candidates_at(text, len, hits, nh, on_cand, &at), 0);
        if (full.n != at.n)
            fail_msg("round %d: %zu vs %zu candidates in:\n%s", round, full.n, at.n, text);
        for (size_t i = 0; i < full.n; i++)
            assert_string_equal(full.got[i], at.got[i]);
    }
}

/* ---- through the engine ---------------------------------------------- */

static inspect_engine_t *eng;

static int setup(void **state)
{
    (void)state;
    char err[512];
    return inspect_engine_load_with(inspect_builtin_rules, NULL, &eng, err, sizeof err);
}

static int teardown(void **state)
{
    (void)state;
    inspect_engine_free(eng);
    return 0;
}

typedef struct found {
    const char *rule[MAXC];
    uint64_t start[MAXC], end[MAXC];
    uint32_t line[MAXC], column[MAXC];
    inspect_category_t cat[MAXC];
    size_t n;
} found_t;

static int on_finding(const inspect_finding_t *f, void *ctx)
{
    found_t *r = ctx;
    assert_true(r->n < MAXC);
    r->rule[r->n] = f->rule_id;
    r->start[r->n] = f->start;
    r->end[r->n] = f->end;
    r->line[r->n] = f->line;
    r->column[r->n] = f->column;
    r->cat[r->n] = f->category;
    r->n++;
    return 0;
}

static void test_engine_text(void **state)
{
    (void)state;
    inspect_scratch_t *s = inspect_scratch_new(eng);
    assert_non_null(s);
    const char *t = "mail bob@corp-mail.io\n$ cat .env\nhello\n==> keys/server.pem <==\n";
    found_t r = {0};
    assert_int_equal(
        inspect_scan_text_flags(eng, s, t, strlen(t), INSPECT_SCAN_TEXT_PATHS, on_finding, &r), 0);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.rule[0], "email-address");
    assert_int_equal(r.cat[1], INSPECT_PATH);
    assert_int_equal(r.start[1], strstr(t, ".env") - t);
    assert_int_equal(r.end[1], r.start[1] + 4);
    assert_int_equal(r.line[1], 2);
    assert_int_equal(r.column[1], 7);
    assert_int_equal(r.cat[2], INSPECT_PATH);
    assert_int_equal(r.start[2], strstr(t, "keys/") - t);
    assert_int_equal(r.line[2], 4);
    for (size_t i = 1; i < r.n; i++)
        assert_true(r.start[i - 1] <= r.start[i]);

    /* without the flag, text paths are not looked for */
    memset(&r, 0, sizeof r);
    assert_int_equal(inspect_scan_text(eng, s, t, strlen(t), on_finding, &r), 0);
    assert_int_equal(r.n, 1);
    inspect_scratch_free(s);
}

static void test_engine_json(void **state)
{
    (void)state;
    inspect_scratch_t *s = inspect_scratch_new(eng);
    assert_non_null(s);
    /* a tool-call argument serialised inside a string, escapes and all */
    const char *j = "{\"tool_calls\":[{\"arguments\":\"{\\\"file_path\\\": "
                    "\\\"/home/u/.aws/credentials\\\"}\"}],"
                    "\"content\":\"ok\\n$ cat id_rsa\"}";
    found_t r = {0};
    char err[128];
    assert_int_equal(inspect_scan_json_flags(eng, s, j, strlen(j), INSPECT_SCAN_TEXT_PATHS,
                                             on_finding, &r, err, sizeof err),
                     0);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.cat[0], INSPECT_PATH);
    const char *p0 = strstr(j, "/home/u/.aws/credentials");
    assert_int_equal(r.start[0], p0 - j);
    assert_int_equal(r.end[0], p0 - j + (long)strlen("/home/u/.aws/credentials"));
    const char *p1 = strstr(j, "id_rsa");
    assert_int_equal(r.start[1], p1 - j);
    assert_int_equal(r.end[1], p1 - j + 6);

    memset(&r, 0, sizeof r);
    assert_int_equal(inspect_scan_json(eng, s, j, strlen(j), on_finding, &r, err, sizeof err), 0);
    assert_int_equal(r.n, 0);
    inspect_scratch_free(s);
}

/* A JSON value is scanned behind its key, so rules that need the key see
 * it; the finding is the value's raw range, and the same value without a
 * key (in an array) is not a finding. */
static void test_json_key_context(void **state)
{
    (void)state;
    inspect_scratch_t *s = inspect_scratch_new(eng);
    assert_non_null(s);
    const char *j = "{\"db\": {\"password\": \"Zq8mT2vL9xKp4wR7\"}, "
                    "\"list\": [\"Zq8mT2vL9xKp4wR7\"], \"note\": \"password reset\"}";
    found_t r = {0};
    char err[128];
    assert_int_equal(inspect_scan_json(eng, s, j, strlen(j), on_finding, &r, err, sizeof err), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.cat[0], INSPECT_SECRET);
    const char *v = strstr(j, "Zq8m");
    assert_int_equal(r.start[0], v - j);
    assert_int_equal(r.end[0], v - j + 16);
    inspect_scratch_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes),           cmocka_unit_test(test_lookalikes),
        cmocka_unit_test(test_bounds),           cmocka_unit_test(test_hits_equal_full_pass),
        cmocka_unit_test(test_engine_text),      cmocka_unit_test(test_engine_json),
        cmocka_unit_test(test_json_key_context),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
