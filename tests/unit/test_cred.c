/*
 * test_cred.c — unit tests of src/llm/cred.c on request heads parsed by
 * src/http/http1: the token from each SDK's header, the same token in two
 * headers, and every refusal (none, twice, two tokens, another scheme,
 * empty, too long, bytes outside visible ASCII); the credential headers
 * that are never forwarded; the provider key header per vendor.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "llm/cred.h"

static http_msg_t msg_;
static llm_cred_t cred;
static char err[256];
static int status;

/* Parse a request with these header lines ("Name: value\r\n" each). */
static int find(const char *headers)
{
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: gw\r\n%s"
                     "Content-Length: 0\r\n\r\n",
                     headers);
    assert_true(n > 0 && (size_t)n < sizeof req);
    http_msg_reset(&msg_);
    size_t used = 0;
    http_event_t ev = http_msg_feed(&msg_, req, (size_t)n, &used);
    assert_true(ev == HTTP_HEAD_DONE || ev == HTTP_MSG_DONE);
    status = 0;
    err[0] = '\0';
    return llm_cred_find(&msg_, &cred, &status, err, sizeof err);
}

static void token_is(const char *want, const char *header)
{
    assert_int_equal(cred.len, strlen(want));
    assert_memory_equal(cred.token, want, cred.len);
    assert_string_equal(cred.header, header);
}

static void refused(const char *headers, int want, const char *words)
{
    assert_int_equal(find(headers), -1);
    assert_int_equal(status, want);
    if (!strstr(err, words)) fail_msg("'%s' lacks '%s'", err, words);
}

static int setup(void **state)
{
    (void)state;
    return http_msg_init(&msg_, HTTP_REQUEST, 16384);
}

static int teardown(void **state)
{
    (void)state;
    http_msg_free(&msg_);
    return 0;
}

static void test_each_header(void **state)
{
    (void)state;
    assert_int_equal(find("Authorization: Bearer cdg_ws_Tok3n\r\n"), 0);
    token_is("cdg_ws_Tok3n", "authorization");
    assert_int_equal(find("authorization: bearer   cdg_ws_Tok3n  \r\n"), 0);
    token_is("cdg_ws_Tok3n", "authorization");
    assert_int_equal(find("X-Api-Key: cdg_ws_A\r\n"), 0);
    token_is("cdg_ws_A", "x-api-key");
    assert_int_equal(find("x-goog-api-key: cdg_ws_G\r\n"), 0);
    token_is("cdg_ws_G", "x-goog-api-key");
    assert_int_equal(find("api-key: cdg_ws_Z\r\n"), 0);
    token_is("cdg_ws_Z", "api-key");
    /* the same token in two headers is one credential */
    assert_int_equal(find("Authorization: Bearer same\r\nx-api-key: same\r\n"), 0);
    token_is("same", "authorization");
}

static void test_refusals(void **state)
{
    (void)state;
    refused("", 401, "no workspace token");
    refused("Authorization: Basic dXNlcjpwYXNz\r\n", 401, "Bearer <workspace token>");
    refused("Authorization: Bearer\r\n", 401, "Bearer <workspace token>");
    refused("Authorization: Bearer a\r\nx-api-key: b\r\n", 401, "two different tokens");
    refused("x-api-key: a\r\nx-api-key: a\r\n", 400, "given 2 times");
    refused("api-key: a\xc3\xa9\r\n", 401, "not visible ASCII");
    char big[LLM_CRED_MAX_TOKEN + 64];
    int n = snprintf(big, sizeof big, "x-api-key: ");
    memset(big + n, 'k', LLM_CRED_MAX_TOKEN + 1);
    strcpy(big + n + LLM_CRED_MAX_TOKEN + 1, "\r\n");
    refused(big, 401, "too long");
}

static void test_headers_and_upstream(void **state)
{
    (void)state;
    assert_true(llm_cred_is_header("Authorization", 13));
    assert_true(llm_cred_is_header("X-GOOG-API-KEY", 14));
    assert_true(llm_cred_is_header("api-key", 7));
    assert_true(llm_cred_is_header("Proxy-Authorization", 19));
    assert_false(llm_cred_is_header("anthropic-version", 17));
    assert_false(llm_cred_is_header("api-key-x", 9));

    const char *name;
    char buf[128];
    assert_int_equal(llm_cred_upstream(LLM_VENDOR_OPENAI, "sk-real", &name, buf, sizeof buf), 0);
    assert_string_equal(name, "Authorization");
    assert_string_equal(buf, "Bearer sk-real");
    assert_int_equal(llm_cred_upstream(LLM_VENDOR_GROQ, "g", &name, buf, sizeof buf), 0);
    assert_string_equal(name, "Authorization");
    assert_int_equal(llm_cred_upstream(LLM_VENDOR_ANTHROPIC, "a", &name, buf, sizeof buf), 0);
    assert_string_equal(name, "x-api-key");
    assert_string_equal(buf, "a");
    assert_int_equal(llm_cred_upstream(LLM_VENDOR_GEMINI, "g", &name, buf, sizeof buf), 0);
    assert_string_equal(name, "x-goog-api-key");
    assert_int_equal(llm_cred_upstream(LLM_VENDOR_AZURE, "z", &name, buf, sizeof buf), 0);
    assert_string_equal(name, "api-key");
    char tiny[8];
    assert_int_equal(llm_cred_upstream(LLM_VENDOR_OPENAI, "sk-long-key", &name, tiny, sizeof tiny),
                     -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_header),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_headers_and_upstream),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
