/*
 * test_route.c — unit tests of src/llm/route.c: every endpoint of every
 * provider by path prefix and by x-llm-provider, the upstream path (prefix
 * stripped, query kept, Groq rewritten), models from Gemini and Azure paths,
 * Gemini streaming and alt=sse, error shape and usage kind per API, and the
 * refusals: unknown provider or endpoint, wrong method, odd model names,
 * traversal, over-long paths.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "llm/route.h"

static llm_route_t rt;
static char msg[256];

static void ok(const char *target, const char *hdr, llm_vendor_t v, llm_request_kind_t kind,
               const char *upstream, const char *model)
{
    int status = 0;
    if (llm_route("POST", target, hdr, &rt, &status, msg, sizeof msg) != 0)
        fail_msg("%s (%s): %d %s", target, hdr ? hdr : "-", status, msg);
    assert_int_equal(rt.vendor, v);
    assert_int_equal(rt.kind, kind);
    assert_string_equal(rt.upstream_path, upstream);
    assert_string_equal(rt.model, model);
}

static void bad(const char *method, const char *target, const char *hdr, int want,
                const char *words)
{
    int status = 0;
    msg[0] = '\0';
    assert_int_equal(llm_route(method, target, hdr, &rt, &status, msg, sizeof msg), -1);
    assert_int_equal(status, want);
    if (!strstr(msg, words)) fail_msg("'%s' lacks '%s'", msg, words);
}

static void test_prefixes(void **state)
{
    (void)state;
    ok("/openai/v1/chat/completions", NULL, LLM_VENDOR_OPENAI, LLM_REQ_OPENAI_CHAT,
       "/v1/chat/completions", "");
    ok("/openai/v1/responses", NULL, LLM_VENDOR_OPENAI, LLM_REQ_OPENAI_RESPONSES, "/v1/responses",
       "");
    assert_int_equal(rt.usage, LLM_OPENAI_RESPONSES);
    ok("/openai/v1/embeddings", NULL, LLM_VENDOR_OPENAI, LLM_REQ_OPENAI_EMBEDDINGS,
       "/v1/embeddings", "");
    ok("/anthropic/v1/messages", NULL, LLM_VENDOR_ANTHROPIC, LLM_REQ_ANTHROPIC_MESSAGES,
       "/v1/messages", "");
    assert_int_equal(rt.errfmt, LLM_ERRFMT_ANTHROPIC);
    assert_int_equal(rt.usage, LLM_ANTHROPIC);
    ok("/anthropic/v1/messages/count_tokens", NULL, LLM_VENDOR_ANTHROPIC,
       LLM_REQ_ANTHROPIC_COUNT_TOKENS, "/v1/messages/count_tokens", "");
    ok("/mistral/v1/chat/completions", NULL, LLM_VENDOR_MISTRAL, LLM_REQ_OPENAI_CHAT,
       "/v1/chat/completions", "");
    assert_int_equal(rt.errfmt, LLM_ERRFMT_OPENAI);
    ok("/groq/openai/v1/chat/completions", NULL, LLM_VENDOR_GROQ, LLM_REQ_OPENAI_CHAT,
       "/openai/v1/chat/completions", "");
    ok("/groq/v1/chat/completions", NULL, LLM_VENDOR_GROQ, LLM_REQ_OPENAI_CHAT,
       "/openai/v1/chat/completions", "");
    ok("/azure/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21", NULL,
       LLM_VENDOR_AZURE, LLM_REQ_OPENAI_CHAT,
       "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21", "gpt-4o-prod");
    ok("/azure/openai/deployments/emb/embeddings", NULL, LLM_VENDOR_AZURE,
       LLM_REQ_OPENAI_EMBEDDINGS, "/openai/deployments/emb/embeddings", "emb");
    ok("/azure/openai/v1/chat/completions", NULL, LLM_VENDOR_AZURE, LLM_REQ_OPENAI_CHAT,
       "/openai/v1/chat/completions", "");
}

static void test_gemini(void **state)
{
    (void)state;
    ok("/gemini/v1beta/models/gemini-2.5-flash:generateContent", NULL, LLM_VENDOR_GEMINI,
       LLM_REQ_GEMINI_GENERATE, "/v1beta/models/gemini-2.5-flash:generateContent",
       "gemini-2.5-flash");
    assert_false(rt.endpoint_streams);
    assert_int_equal(rt.errfmt, LLM_ERRFMT_GEMINI);
    assert_int_equal(rt.usage, LLM_GEMINI);
    ok("/gemini/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse", NULL,
       LLM_VENDOR_GEMINI, LLM_REQ_GEMINI_GENERATE,
       "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse", "gemini-2.5-pro");
    assert_true(rt.endpoint_streams);
    assert_true(rt.sse);
    ok("/gemini/v1/models/gemini-2.0-flash:streamGenerateContent?key=x&alt=json", NULL,
       LLM_VENDOR_GEMINI, LLM_REQ_GEMINI_GENERATE,
       "/v1/models/gemini-2.0-flash:streamGenerateContent?key=x&alt=json", "gemini-2.0-flash");
    assert_false(rt.sse);
}

static void test_header(void **state)
{
    (void)state;
    ok("/v1/messages", "anthropic", LLM_VENDOR_ANTHROPIC, LLM_REQ_ANTHROPIC_MESSAGES,
       "/v1/messages", "");
    ok("/v1/chat/completions", "OpenAI", LLM_VENDOR_OPENAI, LLM_REQ_OPENAI_CHAT,
       "/v1/chat/completions", "");
    /* a prefix naming the same provider is stripped too */
    ok("/anthropic/v1/messages", "anthropic", LLM_VENDOR_ANTHROPIC, LLM_REQ_ANTHROPIC_MESSAGES,
       "/v1/messages", "");
    /* the header wins: this is openai's own path */
    bad("POST", "/anthropic/v1/messages", "openai", 404, "openai has no endpoint");
    bad("POST", "/v1/messages", "claude", 400, "unknown provider 'claude'");
}

static void test_refusals(void **state)
{
    (void)state;
    bad("GET", "/openai/v1/chat/completions", NULL, 405, "GET not allowed");
    bad(NULL, "/openai/v1/chat/completions", NULL, 405, "(none)");
    bad("POST", "openai/v1/chat/completions", NULL, 400, "must be a path");
    bad("POST", "/v1/chat/completions", NULL, 404, "no provider named by '/v1'");
    bad("POST", "/cohere/v1/chat", NULL, 404, "no provider named by '/cohere'");
    bad("POST", "/openai", NULL, 404, "no provider named");
    bad("POST", "/openai/v1/completions", NULL, 404, "openai has no endpoint /v1/completions");
    bad("POST", "/openai/v1/chat/completions/", NULL, 404, "no endpoint");
    bad("POST", "/openai//v1/chat/completions", NULL, 404, "no endpoint");
    bad("POST", "/openai/v1/../v1/chat/completions", NULL, 404, "no endpoint");
    bad("POST", "/mistral/v1/responses", NULL, 404, "mistral has no endpoint");
    bad("POST", "/gemini/v1beta/models/../x:generateContent", NULL, 404, "no endpoint");
    bad("POST", "/gemini/v1beta/models/a%2Fb:generateContent", NULL, 404, "no endpoint");
    bad("POST", "/gemini/v1beta/models/:generateContent", NULL, 404, "no endpoint");
    bad("POST", "/gemini/v1beta/models/m:countTokens", NULL, 404, "no endpoint");
    bad("POST", "/azure/openai/deployments/../chat/completions", NULL, 404, "no endpoint");
    bad("POST", "/azure/openai/deployments/d/completions", NULL, 404, "no endpoint");
    char longp[LLM_ROUTE_MAX_PATH + 16];
    memset(longp, 'a', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = '\0';
    bad("POST", longp, NULL, 400, "too long");
    char model[LLM_ROUTE_MAX_MODEL + 64];
    snprintf(model, sizeof model, "/gemini/v1beta/models/%0*d:generateContent", LLM_ROUTE_MAX_MODEL,
             7);
    bad("POST", model, NULL, 404, "no endpoint");
}

static void test_names(void **state)
{
    (void)state;
    llm_vendor_t v;
    assert_string_equal(llm_vendor_name(LLM_VENDOR_GROQ), "groq");
    assert_string_equal(llm_vendor_name((llm_vendor_t)99), "?");
    assert_int_equal(llm_vendor_parse("Gemini", 6, &v), 0);
    assert_int_equal(v, LLM_VENDOR_GEMINI);
    assert_int_equal(llm_vendor_parse("gem", 3, &v), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefixes), cmocka_unit_test(test_gemini),
        cmocka_unit_test(test_header),   cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
