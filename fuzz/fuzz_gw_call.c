/*
 * fuzz_gw_call — libFuzzer harness for the gateway's request decision
 * (src/gateway/call: route, identity, policy, body schema, inspection,
 * redaction and the include_usage rewrite) driven through the HTTP/1.1
 * request parser, as the listener does.
 *
 * Input: an HTTP/1.1 request (head and body) as a client would send it.
 * The body is what the parser delivers through its body sink.  A fixed
 * config (two providers, one group, the built-in rules) is loaded once.
 * Checks, on every request whose head parses:
 *   - gw_call_decide returns 0 exactly when status is 0; a refusal has a
 *     status in 400..599, a reason and a message, and its provider-shaped
 *     body renders;
 *   - a forwarded call has a provider, an endpoint, a workspace, and an
 *     upstream body that is valid JSON (jval) — redacted or rewritten
 *     bodies included;
 *   - the upstream body never contains the workspace token.
 * A violated invariant calls abort() so libFuzzer records the input.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/jval.h"
#include "gateway/call.h"
#include "http/http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* token "demo-token-change-me" */
static const char CFG[] =
    "version: 1\n"
    "workspaces:\n"
    "  - id: ws-demo\n"
    "    group: dev\n"
    "    tokens: [\"sha256:b5d56f2eacf505c2639b22468f3a8b1bcaf7d619cadbab47dc6ce515fc4c3612\"]\n"
    "policies:\n"
    "  - name: p\n"
    "    groups: [dev]\n"
    "    allow_domains: [.example.com]\n"
    "gateway:\n"
    "  content: {max_prompt_tokens: 5000}\n"
    "  providers:\n"
    "    - name: openai\n"
    "      key: env:FUZZ_OPENAI_KEY\n"
    "      endpoints: [{url: https://api.openai.test}]\n"
    "    - name: anthropic\n"
    "      key: env:FUZZ_ANTHROPIC_KEY\n"
    "      endpoints: [{url: https://api.anthropic.test}]\n"
    "    - name: gemini\n"
    "      key: env:FUZZ_GEMINI_KEY\n"
    "      endpoints: [{url: https://gemini.test}]\n"
    "  groups:\n"
    "    - name: dev\n"
    "      models: [\"gpt-*\", \"claude-*\", \"gemini-*\"]\n";

static config_t *cfg;
static inspect_scratch_t *scratch;

typedef struct body {
    char *p;
    size_t n, cap;
} body_t;

static int sink(void *ctx, const char *d, size_t n)
{
    body_t *b = ctx;
    if (b->n + n > (1u << 20)) return -1;
    if (b->n + n > b->cap) {
        size_t nc = (b->n + n) * 2;
        char *np = realloc(b->p, nc);
        if (!np) return -1;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
    return 0;
}

static void init(void)
{
    setenv("FUZZ_OPENAI_KEY", "sk-fuzz", 1);
    setenv("FUZZ_ANTHROPIC_KEY", "sk-ant-fuzz", 1);
    setenv("FUZZ_GEMINI_KEY", "AIza-fuzz", 1);
    config_errors_t errs = {0};
    cfg = config_load_buffer("fuzz.yaml", CFG, sizeof CFG - 1, &errs);
    config_errors_free(&errs);
    CHECK(cfg && cfg->inspect.engine);
    scratch = inspect_scratch_new(cfg->inspect.engine);
    CHECK(scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cfg) init();
    http_msg_t m;
    if (http_msg_init(&m, HTTP_REQUEST, 16384) < 0) return 0;
    body_t b = {0};
    http_msg_set_body_sink(&m, sink, &b);
    const char *in = (const char *)data;
    size_t left = size, used = 0;
    http_event_t ev = http_msg_feed(&m, in, left, &used);
    if (ev != HTTP_HEAD_DONE) goto out;
    in += used;
    left -= used;
    if (http_msg_has_body(&m)) {
        ev = http_msg_feed(&m, in, left, &used);
        if (ev != HTTP_MSG_DONE) goto out;
    }
    char target[LLM_ROUTE_MAX_PATH + 1];
    snprintf(target, sizeof target, "%.*s",
             (int)(m.target.len > LLM_ROUTE_MAX_PATH ? LLM_ROUTE_MAX_PATH : m.target.len),
             http_ptr(&m, m.target));
    gw_call_in_t ci = {
        .cfg = cfg,
        .req = &m,
        .method = llhttp_method_name((llhttp_method_t)m.method),
        .target = target,
        .body = b.p ? b.p : "",
        .body_len = b.n,
        .scratch = scratch,
    };
    gw_call_t c;
    int rc = gw_call_decide(&ci, &c);
    CHECK((rc == 0) == (c.status == 0));
    if (rc < 0) {
        CHECK(c.status >= 400 && c.status <= 599);
        CHECK(c.reason && c.message[0]);
        char eb[LLM_ERROR_MAX_BODY];
        CHECK(gw_call_error_body(&c, eb, sizeof eb) > 0);
    } else {
        CHECK(c.provider && c.endpoint && c.ws && c.group);
        jval_doc_t *doc = NULL;
        char err[64];
        CHECK(jval_parse(c.upstream_body, c.upstream_body_len, (size_t)1 << 20, &doc, err,
                         sizeof err) == JVAL_OK);
        jval_free(doc);
        CHECK(!memmem(c.upstream_body, c.upstream_body_len, "demo-token-change-me", 20) ||
              memmem(b.p, b.n, "demo-token-change-me", 20));
    }
    gw_call_free(&c);
out:
    free(b.p);
    http_msg_free(&m);
    return 0;
}
