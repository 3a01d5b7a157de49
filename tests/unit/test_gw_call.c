/*
 * gateway/call: the decision pipeline on real request heads and bodies,
 * with a config loaded from text (the built-in inspection rules).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/jval.h"
#include "gateway/call.h"
#include "http/http1.h"
#include "identity/identity.h"

/* sha256("demo-token-change-me") and sha256("eu-token") */
#define TOKEN "demo-token-change-me"
#define TOKEN_HASH "sha256:b5d56f2eacf505c2639b22468f3a8b1bcaf7d619cadbab47dc6ce515fc4c3612"

static const char CFG[] = "version: 1\n"
                          "workspaces:\n"
                          "  - id: ws-demo\n"
                          "    group: dev\n"
                          "    tokens: [\"" TOKEN_HASH "\"]\n"
                          "  - id: ws-eu\n"
                          "    group: dev\n"
                          "    region: eu\n"
                          "    tokens: [\"sha256:%s\"]\n"
                          "  - id: ws-ops\n"
                          "    group: ops\n"
                          "    tokens: [\"sha256:%s\"]\n"
                          "  - id: ws-none\n"
                          "    group: nogw\n"
                          "    tokens: [\"sha256:%s\"]\n"
                          "policies:\n"
                          "  - name: p\n"
                          "    groups: [dev, ops, nogw]\n"
                          "    allow_domains: [.example.com]\n"
                          "gateway:\n"
                          "  content: {max_prompt_tokens: 200}\n"
                          "  providers:\n"
                          "    - name: openai\n"
                          "      key: env:CDEGUARD_TEST_OPENAI\n"
                          "      endpoints:\n"
                          "        - url: https://api.openai.test\n"
                          "        - url: https://eu.openai.test:8443/base\n"
                          "          region: eu\n"
                          "    - name: anthropic\n"
                          "      key: env:CDEGUARD_TEST_ANTHROPIC\n"
                          "      endpoints: [{url: https://api.anthropic.test}]\n"
                          "    - name: gemini\n"
                          "      key: env:CDEGUARD_TEST_GEMINI\n"
                          "      endpoints: [{url: https://gemini.test}]\n"
                          "    - name: groq\n"
                          "      endpoints: [{url: https://groq.test}]\n"
                          "  groups:\n"
                          "    - name: dev\n"
                          "      models: [\"gpt-4o*\", \"claude-*\", \"gemini-*\", \"llama-*\"]\n"
                          "    - name: ops\n"
                          "      providers: [anthropic]\n";

static config_t *cfg;
static inspect_scratch_t *scratch;

static void hex_sha(const char *s, char out[65])
{
    uint8_t d[32];
    ident_hash_token(s, strlen(s), d);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static int setup(void **state)
{
    (void)state;
    setenv("CDEGUARD_TEST_OPENAI", "sk-test-openai", 1);
    setenv("CDEGUARD_TEST_ANTHROPIC", "sk-ant-test", 1);
    setenv("CDEGUARD_TEST_GEMINI", "AIza-test", 1);
    char h1[65], h2[65], h3[65];
    hex_sha("eu-token", h1);
    hex_sha("ops-token", h2);
    hex_sha("none-token", h3);
    char text[sizeof CFG + 256];
    snprintf(text, sizeof text, CFG, h1, h2, h3);
    config_errors_t errs = {0};
    cfg = config_load_buffer("test.yaml", text, strlen(text), &errs);
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "%s\n", errs.msgs[i]);
    config_errors_free(&errs);
    assert_non_null(cfg);
    assert_non_null(cfg->inspect.engine);
    scratch = inspect_scratch_new(cfg->inspect.engine);
    assert_non_null(scratch);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    inspect_scratch_free(scratch);
    config_unref(cfg);
    return 0;
}

typedef struct req {
    http_msg_t m;
    char target[512];
    char body[8192];
    size_t body_len;
} req_t;

/* Parse "METHOD TARGET" + headers (each "Name: value\r\n") into r->m. */
static void make_req(req_t *r, const char *method, const char *target, const char *headers,
                     const char *body)
{
    char raw[4096];
    snprintf(raw, sizeof raw, "%s %s HTTP/1.1\r\nHost: gw\r\n%sContent-Length: %zu\r\n\r\n", method,
             target, headers, strlen(body));
    assert_int_equal(http_msg_init(&r->m, HTTP_REQUEST, 65536), 0);
    size_t used = 0;
    assert_int_equal(http_msg_feed(&r->m, raw, strlen(raw), &used), HTTP_HEAD_DONE);
    snprintf(r->target, sizeof r->target, "%s", target);
    snprintf(r->body, sizeof r->body, "%s", body);
    r->body_len = strlen(body);
}

static int decide(req_t *r, const char *method, gw_call_t *out, const char *cn, bool ext,
                  bool partial)
{
    gw_call_in_t in = {
        .cfg = cfg,
        .req = &r->m,
        .method = method,
        .target = r->target,
        .mtls_cn = cn,
        .body = r->body,
        .body_len = r->body_len,
        .body_partial = partial,
        .ext_authz = ext,
        .scratch = scratch,
    };
    return gw_call_decide(&in, out);
}

/* One call; returns the status (0 = forwarded). */
static int run(const char *method, const char *target, const char *headers, const char *body,
               gw_call_t *out)
{
    req_t r;
    make_req(&r, method, target, headers, body);
    int rc = decide(&r, method, out, NULL, false, false);
    http_msg_free(&r.m);
    assert_int_equal(rc == 0, out->status == 0);
    return out->status;
}

#define AUTH "Authorization: Bearer " TOKEN "\r\n"
#define CHAT "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"

static void test_forward_openai(void **state)
{
    (void)state;
    gw_call_t c;
    assert_int_equal(run("POST", "/openai/v1/chat/completions", AUTH, CHAT, &c), 0);
    assert_string_equal(c.provider->name, "openai");
    assert_string_equal(c.ws->id, "ws-demo");
    assert_string_equal(c.model, "gpt-4o-mini");
    assert_int_equal(c.decision, GW_DEC_ALLOW);
    assert_string_equal(c.endpoint->host, "api.openai.test");
    assert_string_equal(c.route.upstream_path, "/v1/chat/completions");
    assert_string_equal(c.cred_header, "authorization");
    assert_false(c.add_include_usage);
    assert_int_equal(c.upstream_body_len, strlen(CHAT)); /* untouched */
    gw_call_free(&c);
}

static void test_route_and_identity_refusals(void **state)
{
    (void)state;
    gw_call_t c;
    assert_int_equal(run("POST", "/nope/v1/chat/completions", AUTH, CHAT, &c), 404);
    assert_string_equal(c.reason, "cdeguard_unknown_provider");
    gw_call_free(&c);
    assert_int_equal(run("GET", "/openai/v1/chat/completions", AUTH, "", &c), 405);
    gw_call_free(&c);
    assert_int_equal(run("POST", "/openai/v1/files", AUTH, CHAT, &c), 404);
    assert_string_equal(c.reason, "cdeguard_unknown_endpoint");
    gw_call_free(&c);
    assert_int_equal(run("POST", "/openai/v1/chat/completions", "", CHAT, &c), 401);
    gw_call_free(&c);
    assert_int_equal(
        run("POST", "/openai/v1/chat/completions", "Authorization: Bearer wrong\r\n", CHAT, &c),
        401);
    assert_non_null(strstr(c.message, "unknown or revoked"));
    gw_call_free(&c);
    /* Anthropic-shaped refusal for an Anthropic route */
    assert_int_equal(run("POST", "/anthropic/v1/messages", "x-api-key: nope\r\n", "{}", &c), 401);
    char body[LLM_ERROR_MAX_BODY];
    assert_true(gw_call_error_body(&c, body, sizeof body) > 0);
    assert_non_null(strstr(body, "\"type\":\"error\""));
    assert_non_null(strstr(body, "authentication_error"));
    gw_call_free(&c);
    /* bad agent id */
    assert_int_equal(
        run("POST", "/openai/v1/chat/completions", AUTH "x-agent-id: has space\r\n", CHAT, &c),
        400);
    gw_call_free(&c);
    assert_int_equal(run("POST", "/openai/v1/chat/completions",
                         AUTH "x-agent-id: claude-code-1\r\nx-task-id: T-42\r\n", CHAT, &c),
                     0);
    assert_string_equal(c.agent, "claude-code-1");
    assert_string_equal(c.task, "T-42");
    gw_call_free(&c);
}

static void test_header_routing(void **state)
{
    (void)state;
    gw_call_t c;
    const char *msg = "{\"model\":\"claude-sonnet-4\",\"max_tokens\":10,\"messages\":[{\"role\":"
                      "\"user\",\"content\":\"hi\"}]}";
    assert_int_equal(run("POST", "/v1/messages",
                         "x-llm-provider: anthropic\r\nx-api-key: " TOKEN "\r\n", msg, &c),
                     0);
    assert_string_equal(c.provider->name, "anthropic");
    assert_string_equal(c.cred_header, "x-api-key");
    gw_call_free(&c);
    /* header and the same prefix: the prefix is stripped */
    assert_int_equal(run("POST", "/anthropic/v1/messages",
                         "x-llm-provider: anthropic\r\nx-api-key: " TOKEN "\r\n", msg, &c),
                     0);
    assert_string_equal(c.route.upstream_path, "/v1/messages");
    gw_call_free(&c);
    assert_int_equal(run("POST", "/v1/messages", "x-llm-provider: bogus\r\n" AUTH, msg, &c), 404);
    gw_call_free(&c);
}

static void test_policy(void **state)
{
    (void)state;
    gw_call_t c;
    /* model pattern */
    assert_int_equal(
        run("POST", "/openai/v1/chat/completions", AUTH, "{\"model\":\"o3\",\"messages\":[]}", &c),
        403);
    assert_string_equal(c.reason, "cdeguard_model_not_allowed");
    gw_call_free(&c);
    /* ops may use anthropic only */
    assert_int_equal(
        run("POST", "/openai/v1/chat/completions", "Authorization: Bearer ops-token\r\n", CHAT, &c),
        403);
    assert_string_equal(c.reason, "cdeguard_provider_not_allowed");
    gw_call_free(&c);
    /* group without a gateway entry */
    assert_int_equal(run("POST", "/openai/v1/chat/completions",
                         "Authorization: Bearer none-token\r\n", CHAT, &c),
                     403);
    assert_string_equal(c.reason, "cdeguard_group_not_allowed");
    gw_call_free(&c);
    /* region pin: eu endpoint chosen; no eu endpoint for anthropic */
    assert_int_equal(
        run("POST", "/openai/v1/chat/completions", "Authorization: Bearer eu-token\r\n", CHAT, &c),
        0);
    assert_string_equal(c.endpoint->host, "eu.openai.test");
    assert_int_equal(c.endpoint->port, 8443);
    assert_string_equal(c.endpoint->base_path, "/base");
    gw_call_free(&c);
    assert_int_equal(run("POST", "/anthropic/v1/messages", "x-api-key: eu-token\r\n",
                         "{\"model\":\"claude-x\",\"max_tokens\":5,\"messages\":[]}", &c),
                     403);
    assert_string_equal(c.reason, "cdeguard_region_unavailable");
    gw_call_free(&c);
    /* a provider without a key */
    assert_int_equal(run("POST", "/groq/openai/v1/chat/completions", AUTH,
                         "{\"model\":\"llama-3\",\"messages\":[]}", &c),
                     503);
    assert_string_equal(c.reason, "cdeguard_provider_unconfigured");
    gw_call_free(&c);
}

static void test_body_checks(void **state)
{
    (void)state;
    gw_call_t c;
    assert_int_equal(run("POST", "/openai/v1/chat/completions", AUTH, "{\"model\":", &c), 400);
    assert_string_equal(c.reason, "cdeguard_invalid_json");
    gw_call_free(&c);
    assert_int_equal(run("POST", "/openai/v1/chat/completions", AUTH, "{\"model\":\"gpt-4o\"}", &c),
                     400);
    assert_string_equal(c.reason, "cdeguard_invalid_request");
    assert_non_null(strstr(c.message, "messages"));
    gw_call_free(&c);
    /* max_prompt_tokens is 200 in this config: ~1000 bytes is ~250 tokens */
    char big[2048];
    char text[1001];
    memset(text, 'a', 1000);
    text[1000] = '\0';
    for (size_t i = 0; i < 1000; i += 10)
        text[i] = ' ';
    snprintf(big, sizeof big,
             "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}", text);
    assert_int_equal(run("POST", "/openai/v1/chat/completions", AUTH, big, &c), 400);
    assert_string_equal(c.reason, "cdeguard_prompt_too_large");
    gw_call_free(&c);
}

static void test_inspection(void **state)
{
    (void)state;
    gw_call_t c;
    assert_int_equal(run("POST", "/openai/v1/chat/completions", AUTH,
                         "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":"
                         "\"deploy with AKIAIOSFODNN7EXAMPLF now\"}]}",
                         &c),
                     403);
    assert_string_equal(c.reason, "cdeguard_secret_blocked");
    assert_non_null(strstr(c.message, "aws-access-key-id"));
    assert_null(strstr(c.message, "AKIA")); /* never the value */
    gw_call_free(&c);

    const char *pii = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":"
                      "\"write to jane.roe@acme-corp.io today\"}]}";
    assert_int_equal(run("POST", "/openai/v1/chat/completions", AUTH, pii, &c), 0);
    assert_int_equal(c.decision, GW_DEC_REDACT);
    assert_non_null(c.owned_body);
    assert_null(strstr(c.upstream_body, "jane.roe"));
    assert_non_null(strstr(c.upstream_body, "[REDACTED:"));
    jval_doc_t *doc = NULL;
    char err[64];
    assert_int_equal(jval_parse(c.upstream_body, c.upstream_body_len, 1000, &doc, err, sizeof err),
                     JVAL_OK);
    jval_free(doc);
    gw_call_free(&c);

    /* ext_authz cannot redact */
    req_t r;
    make_req(&r, "POST", "/openai/v1/chat/completions", AUTH, pii);
    assert_int_equal(decide(&r, "POST", &c, NULL, true, false), -1);
    assert_string_equal(c.reason, "cdeguard_redaction_unavailable");
    gw_call_free(&c);
    assert_int_equal(decide(&r, "POST", &c, NULL, true, true), -1);
    assert_int_equal(c.status, 413);
    gw_call_free(&c);
    http_msg_free(&r.m);

    /* an attached file named like a private key */
    assert_int_equal(run("POST", "/anthropic/v1/messages", "x-api-key: " TOKEN "\r\n",
                         "{\"model\":\"claude-x\",\"max_tokens\":5,\"messages\":[{\"role\":"
                         "\"user\",\"content\":[{\"type\":\"document\",\"title\":\"id_rsa\","
                         "\"source\":{\"type\":\"text\",\"media_type\":\"text/plain\",\"data\":"
                         "\"hello\"}}]}]}",
                         &c),
                     403);
    assert_string_equal(c.reason, "cdeguard_restricted_file");
    gw_call_free(&c);
}

static void expect_body(const char *in, const char *want)
{
    gw_call_t c;
    assert_int_equal(run("POST", "/openai/v1/chat/completions", AUTH, in, &c), 0);
    if (!want) {
        assert_false(c.add_include_usage);
        assert_memory_equal(c.upstream_body, in, strlen(in));
    } else {
        assert_true(c.add_include_usage);
        assert_int_equal(c.upstream_body_len, strlen(want));
        assert_memory_equal(c.upstream_body, want, strlen(want));
    }
    gw_call_free(&c);
}

static void test_include_usage(void **state)
{
    (void)state;
    expect_body("{\"model\":\"gpt-4o\",\"stream\":true,\"messages\":[]}",
                "{\"stream_options\":{\"include_usage\":true},\"model\":\"gpt-4o\",\"stream\":true,"
                "\"messages\":[]}");
    expect_body("{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":null,\"messages\":[]}",
                "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                "\"messages\":[]}");
    expect_body("{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{},\"messages\":[]}",
                "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                "\"messages\":[]}");
    expect_body("{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{\"include_usage\": "
                "false},\"messages\":[]}",
                "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{\"include_usage\": "
                "true},\"messages\":[]}");
    /* the client asked, or no stream: untouched */
    expect_body("{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                "\"messages\":[]}",
                NULL);
    expect_body("{\"model\":\"gpt-4o\",\"messages\":[]}", NULL);
}

static void test_mtls_identity(void **state)
{
    (void)state;
    gw_call_t c;
    req_t r;
    make_req(&r, "POST", "/openai/v1/chat/completions", "", CHAT);
    assert_int_equal(decide(&r, "POST", &c, "ws-demo", false, false), 0);
    assert_string_equal(c.ws->id, "ws-demo");
    gw_call_free(&c);
    assert_int_equal(decide(&r, "POST", &c, "nobody", false, false), -1);
    assert_int_equal(c.status, 403);
    gw_call_free(&c);
    http_msg_free(&r.m);
    /* certificate and token must agree */
    make_req(&r, "POST", "/openai/v1/chat/completions", "Authorization: Bearer eu-token\r\n", CHAT);
    assert_int_equal(decide(&r, "POST", &c, "ws-demo", false, false), -1);
    assert_int_equal(c.status, 401);
    gw_call_free(&c);
    http_msg_free(&r.m);
}

static void test_dropped_headers(void **state)
{
    (void)state;
    assert_true(gw_call_header_dropped("Authorization", 13));
    assert_true(gw_call_header_dropped("x-goog-api-key", 14));
    assert_true(gw_call_header_dropped("X-LLM-Provider", 14));
    assert_true(gw_call_header_dropped("accept-encoding", 15));
    assert_true(gw_call_header_dropped("connection", 10));
    assert_false(gw_call_header_dropped("anthropic-version", 17));
    assert_false(gw_call_header_dropped("content-type", 12));
    assert_false(gw_call_header_dropped("openai-organization", 19));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_openai),  cmocka_unit_test(test_route_and_identity_refusals),
        cmocka_unit_test(test_header_routing),  cmocka_unit_test(test_policy),
        cmocka_unit_test(test_body_checks),     cmocka_unit_test(test_inspection),
        cmocka_unit_test(test_include_usage),   cmocka_unit_test(test_mtls_identity),
        cmocka_unit_test(test_dropped_headers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
