/*
 * test_secret.c — unit tests of src/llm/secret.c: keys from env: and file:
 * references (trailing newline and blanks stripped, first line only), and
 * every refusal, checking that no message ever contains the key.
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
#include <sys/stat.h>
#include <unistd.h>

#include "llm/secret.h"

static char dir[64];
static char err[512];

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/cdg-secret-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Write a file under dir with mode; its "file:" reference in ref. */
static void put(const char *name, const char *text, size_t len, mode_t mode, char *ref,
                size_t reflen)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
    snprintf(ref, reflen, "file:%s", path);
}

static void load_ok(const char *ref, const char *want)
{
    llm_secret_t s;
    if (llm_secret_load(ref, &s, err, sizeof err) != 0) fail_msg("%s: %s", ref, err);
    assert_string_equal(s.value, want);
    assert_int_equal(s.len, strlen(want));
    llm_secret_free(&s);
    assert_null(s.value);
}

static void load_bad(const char *ref, const char *words, const char *never)
{
    llm_secret_t s;
    err[0] = '\0';
    assert_int_equal(llm_secret_load(ref, &s, err, sizeof err), -1);
    assert_null(s.value);
    if (!strstr(err, words)) fail_msg("'%s' lacks '%s'", err, words);
    if (never && strstr(err, never)) fail_msg("'%s' shows the key", err);
}

static void test_env(void **state)
{
    (void)state;
    setenv("CDG_TEST_KEY", "sk-proj-Abc123\n", 1);
    load_ok("env:CDG_TEST_KEY", "sk-proj-Abc123");
    unsetenv("CDG_TEST_KEY");
    load_bad("env:CDG_TEST_KEY", "not set", NULL);
    setenv("CDG_TEST_KEY", "  \n", 1);
    load_bad("env:CDG_TEST_KEY", "empty", NULL);
    setenv("CDG_TEST_KEY", "sk-has space", 1);
    load_bad("env:CDG_TEST_KEY", "not visible ASCII", "sk-has");
    unsetenv("CDG_TEST_KEY");
    load_bad("env:", "variable name", NULL);
}

static void test_file(void **state)
{
    (void)state;
    char ref[160];
    put("k1", "sk-ant-api03-Zz9\r\n", 18, 0600, ref, sizeof ref);
    load_ok(ref, "sk-ant-api03-Zz9");
    put("k2", "AIzaKey\nsecond line\n", 20, 0644, ref, sizeof ref);
    load_ok(ref, "AIzaKey");
    put("k3", "sk-world-writable", 17, 0666, ref, sizeof ref);
    load_bad(ref, "world-writable", "sk-world");
    put("k4", "", 0, 0600, ref, sizeof ref);
    load_bad(ref, "empty", NULL);
    static char big[70 * 1024];
    memset(big, 'k', sizeof big);
    put("k5", big, sizeof big, 0600, ref, sizeof ref);
    load_bad(ref, "larger than", NULL);
    char longkey[LLM_SECRET_MAX + 2];
    memset(longkey, 'k', sizeof longkey);
    put("k6", longkey, sizeof longkey, 0600, ref, sizeof ref);
    load_bad(ref, "longer than", NULL);
    snprintf(ref, sizeof ref, "file:%s/missing", dir);
    load_bad(ref, "No such file", NULL);
    snprintf(ref, sizeof ref, "file:%s", dir);
    load_bad(ref, "not a regular file", NULL);
    load_bad("file:", "needs a path", NULL);
}

static void test_not_a_reference(void **state)
{
    (void)state;
    load_bad("sk-live-PlainValueInConfig", "env:NAME or file:PATH", "sk-live");
    load_bad(NULL, "no key reference", NULL);
    llm_secret_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_not_a_reference),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
