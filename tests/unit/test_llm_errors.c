/*
 * test_llm_errors.c — unit tests of src/llm/errors.c: each provider's error
 * shape parsed back with jval, the type/status per HTTP status, escaping of
 * quotes, control bytes and invalid UTF-8, truncation on a character
 * boundary, and the argument checks.
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

#include "core/jval.h"
#include "llm/errors.h"

static char body[LLM_ERROR_MAX_BODY];

/* Build a body and parse it; the caller frees the document. */
static jval_doc_t *make(llm_errfmt_t fmt, int status, const char *msg, const char *code)
{
    int n = llm_error_body(fmt, status, msg, code, body, sizeof body);
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(body));
    jval_doc_t *d = NULL;
    char err[128];
    if (jval_parse(body, (size_t)n, 0, &d, err, sizeof err) != JVAL_OK)
        fail_msg("not JSON (%s): %s", err, body);
    return d;
}

static void test_openai(void **state)
{
    (void)state;
    jval_doc_t *d = make(LLM_ERRFMT_OPENAI, 403, "secret in prompt: aws-access-key-id",
                         "cdeguard_secret_blocked");
    const jval_t *e = jval_get(jval_root(d), "error");
    assert_true(jval_str_eq(jval_get(e, "message"), "secret in prompt: aws-access-key-id"));
    assert_true(jval_str_eq(jval_get(e, "type"), "permission_error"));
    assert_true(jval_str_eq(jval_get(e, "code"), "cdeguard_secret_blocked"));
    assert_true(jval_is_null(jval_get(e, "param")));
    jval_free(d);
    d = make(LLM_ERRFMT_OPENAI, 401, "bad token", NULL);
    assert_true(jval_is_null(jval_path(jval_root(d), "error.code")));
    assert_true(jval_str_eq(jval_path(jval_root(d), "error.type"), "authentication_error"));
    jval_free(d);
}

static void test_anthropic(void **state)
{
    (void)state;
    jval_doc_t *d = make(LLM_ERRFMT_ANTHROPIC, 413, "prompt too large", "x");
    const jval_t *r = jval_root(d);
    assert_true(jval_str_eq(jval_get(r, "type"), "error"));
    assert_true(jval_str_eq(jval_path(r, "error.type"), "request_too_large"));
    assert_true(jval_str_eq(jval_path(r, "error.message"), "prompt too large"));
    assert_int_equal(jval_len(jval_get(r, "error")), 2);
    jval_free(d);
}

static void test_gemini(void **state)
{
    (void)state;
    jval_doc_t *d = make(LLM_ERRFMT_GEMINI, 429, "budget spent", NULL);
    const jval_t *e = jval_get(jval_root(d), "error");
    int64_t code = 0;
    assert_int_equal(jval_int64(jval_get(e, "code"), &code), JVAL_OK);
    assert_int_equal(code, 429);
    assert_true(jval_str_eq(jval_get(e, "status"), "RESOURCE_EXHAUSTED"));
    jval_free(d);
}

static void test_types(void **state)
{
    (void)state;
    static const struct {
        llm_errfmt_t f;
        int status;
        const char *want;
    } cases[] = {
        {LLM_ERRFMT_OPENAI, 400, "invalid_request_error"},
        {LLM_ERRFMT_OPENAI, 404, "not_found_error"},
        {LLM_ERRFMT_OPENAI, 429, "rate_limit_error"},
        {LLM_ERRFMT_OPENAI, 502, "server_error"},
        {LLM_ERRFMT_OPENAI, 413, "invalid_request_error"},
        {LLM_ERRFMT_ANTHROPIC, 401, "authentication_error"},
        {LLM_ERRFMT_ANTHROPIC, 403, "permission_error"},
        {LLM_ERRFMT_ANTHROPIC, 429, "rate_limit_error"},
        {LLM_ERRFMT_ANTHROPIC, 504, "api_error"},
        {LLM_ERRFMT_ANTHROPIC, 529, "overloaded_error"},
        {LLM_ERRFMT_GEMINI, 400, "INVALID_ARGUMENT"},
        {LLM_ERRFMT_GEMINI, 401, "UNAUTHENTICATED"},
        {LLM_ERRFMT_GEMINI, 403, "PERMISSION_DENIED"},
        {LLM_ERRFMT_GEMINI, 502, "UNAVAILABLE"},
        {LLM_ERRFMT_GEMINI, 504, "DEADLINE_EXCEEDED"},
        {LLM_ERRFMT_GEMINI, 500, "INTERNAL"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_string_equal(llm_error_type(cases[i].f, cases[i].status), cases[i].want);
}

static void test_escaping(void **state)
{
    (void)state;
    /* quotes, backslash, newline, DEL, valid UTF-8 kept, a lone 0xFF replaced */
    const char msg[] = "a \"q\" \\ b\nc\x7f \xc3\xa9 \xff end";
    jval_doc_t *d = make(LLM_ERRFMT_ANTHROPIC, 400, msg, NULL);
    const char *got = jval_str(jval_path(jval_root(d), "error.message"), NULL);
    assert_string_equal(got, "a \"q\" \\ b\nc\x7f \xc3\xa9 \xef\xbf\xbd end");
    jval_free(d);
    /* a code with a quote stays a string */
    d = make(LLM_ERRFMT_OPENAI, 400, "m", "x\"y");
    assert_true(jval_str_eq(jval_path(jval_root(d), "error.code"), "x\"y"));
    jval_free(d);
}

static void test_truncation(void **state)
{
    (void)state;
    /* 2-byte characters across the cut: the message is cut before a split
     * character, never inside it */
    char big[LLM_ERROR_MAX_MESSAGE * 2 + 2];
    size_t n = 0;
    big[n++] = 'x'; /* odd offset so the limit falls inside a character */
    while (n + 2 < sizeof big) {
        big[n++] = '\xc3';
        big[n++] = '\xa9';
    }
    big[n] = '\0';
    jval_doc_t *d = make(LLM_ERRFMT_GEMINI, 400, big, NULL);
    size_t len = 0;
    const char *got = jval_str(jval_path(jval_root(d), "error.message"), &len);
    assert_non_null(got);
    assert_int_equal(len, LLM_ERROR_MAX_MESSAGE - 1);
    assert_memory_equal(got, big, len);
    jval_free(d);
    /* the worst case (every byte escaped to 6) still fits */
    char ctl[LLM_ERROR_MAX_MESSAGE + 100];
    memset(ctl, 1, sizeof ctl - 1);
    ctl[sizeof ctl - 1] = '\0';
    d = make(LLM_ERRFMT_OPENAI, 500, ctl, "cdeguard_upstream_failed");
    assert_int_equal(jval_len(jval_path(jval_root(d), "error.message")), LLM_ERROR_MAX_MESSAGE);
    jval_free(d);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    char small[64];
    assert_int_equal(llm_error_body(LLM_ERRFMT_OPENAI, 400, "m", NULL, small, sizeof small), -1);
    assert_int_equal(llm_error_body(LLM_ERRFMT_OPENAI, 99, "m", NULL, body, sizeof body), -1);
    assert_int_equal(llm_error_body(LLM_ERRFMT_OPENAI, 600, "m", NULL, body, sizeof body), -1);
    assert_int_equal(llm_error_body((llm_errfmt_t)7, 400, "m", NULL, body, sizeof body), -1);
    assert_true(llm_error_body(LLM_ERRFMT_OPENAI, 400, NULL, NULL, body, sizeof body) > 0);
    assert_non_null(strstr(body, "\"message\":\"\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai),        cmocka_unit_test(test_anthropic),
        cmocka_unit_test(test_gemini),        cmocka_unit_test(test_types),
        cmocka_unit_test(test_escaping),      cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
