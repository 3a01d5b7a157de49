/*
 * usage.c — token usage accounting per provider (see usage.h for what every
 * field means for every provider).
 *
 * Each body or event is parsed into a jval document and handed to the
 * provider's reader, which either replaces the raw figures with a snapshot
 * (OpenAI chat, Responses and Gemini report whole usage objects: a field
 * absent from the snapshot is 0) or updates the fields present (Anthropic's
 * message_start and message_delta), and adds the bytes of output text deltas
 * to text_bytes.  llm_usage_get() normalises the raw figures and, when the
 * final ones were not seen, estimates the output.
 *
 * Invariants: raw figures are non-negative integers from the provider (a
 * value that is not one is ignored); sums saturate at UINT64_MAX; text_bytes
 * only grows.
 *
 * Memory: the accumulator owns nothing on the heap; every jval document is
 * freed before the feed function returns.
 */
#include "llm/usage.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const provider_names[] = {"openai-chat", "openai-responses", "anthropic",
                                             "gemini"};

__attribute__((format(printf, 2, 3))) static void set_err(llm_usage_acc_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->err, sizeof a->err, fmt, ap);
    va_end(ap);
}

static uint64_t sat_add(uint64_t x, uint64_t y)
{
    return x > UINT64_MAX - y ? UINT64_MAX : x + y;
}

/* A non-negative integer at path under v: true and *out, else false. */
static bool get_u64(const jval_t *v, const char *path, uint64_t *out)
{
    int64_t n;
    if (jval_int64(jval_path(v, path), &n) != JVAL_OK || n < 0) return false;
    *out = (uint64_t)n;
    return true;
}

static uint64_t u64_or0(const jval_t *v, const char *path)
{
    uint64_t n = 0;
    return get_u64(v, path, &n) ? n : 0;
}

/* Bytes of the string at path under v (0 if not a string). */
static size_t text_len(const jval_t *v, const char *path)
{
    size_t n = 0;
    return jval_str(jval_path(v, path), &n) ? n : 0;
}

static void add_text(llm_usage_acc_t *a, size_t n)
{
    a->text_bytes = sat_add(a->text_bytes, n);
}

void llm_usage_init(llm_usage_acc_t *a, llm_provider_t provider)
{
    memset(a, 0, sizeof *a);
    a->provider = provider;
    a->max_nodes = LLM_USAGE_DEFAULT_MAX_NODES;
}

/* ---- OpenAI chat completions ------------------------------------------------ */

static void openai_snapshot(llm_usage_acc_t *a, const jval_t *u)
{
    a->r_input = u64_or0(u, "prompt_tokens");
    a->r_extra_in = 0;
    if (!get_u64(u, "prompt_tokens_details.cached_tokens", &a->r_cache_read))
        a->r_cache_read = u64_or0(u, "prompt_cache_hit_tokens"); /* DeepSeek */
    a->r_cache_write = 0;
    a->r_output = u64_or0(u, "completion_tokens");
    a->r_reasoning = u64_or0(u, "completion_tokens_details.reasoning_tokens");
    a->r_has_total = get_u64(u, "total_tokens", &a->r_total);
    a->any = a->final = true;
}

/* Text of one chat message or delta object. */
static void openai_message_text(llm_usage_acc_t *a, const jval_t *m)
{
    add_text(a, text_len(m, "content"));
    add_text(a, text_len(m, "reasoning_content"));
    add_text(a, text_len(m, "refusal"));
    const jval_t *calls = jval_get(m, "tool_calls");
    for (size_t k = 0; k < jval_len(calls); k++)
        add_text(a, text_len(jval_at(calls, k), "function.arguments"));
}

static void openai_chat(llm_usage_acc_t *a, const jval_t *root, bool streaming)
{
    const jval_t *choices = jval_get(root, "choices");
    for (size_t i = 0; i < jval_len(choices); i++)
        openai_message_text(a, jval_get(jval_at(choices, i), streaming ? "delta" : "message"));
    const jval_t *u = jval_get(root, "usage");
    if (jval_type(u) != JVAL_OBJECT) u = jval_path(root, "x_groq.usage");
    if (jval_type(u) == JVAL_OBJECT) openai_snapshot(a, u);
}

bool llm_usage_openai_usage_only(const jval_t *chunk)
{
    const jval_t *choices = jval_get(chunk, "choices");
    return jval_type(jval_get(chunk, "usage")) == JVAL_OBJECT && jval_type(choices) == JVAL_ARRAY &&
           jval_len(choices) == 0;
}

int llm_usage_openai_usage_only_data(const char *data, size_t len)
{
    jval_doc_t *doc = NULL;
    if (jval_parse(data, len, LLM_USAGE_DEFAULT_MAX_NODES, &doc, NULL, 0) != JVAL_OK) return 0;
    int r = llm_usage_openai_usage_only(jval_root(doc)) ? 1 : 0;
    jval_free(doc);
    return r;
}

/* ---- OpenAI Responses ------------------------------------------------------- */

static void responses_snapshot(llm_usage_acc_t *a, const jval_t *u)
{
    a->r_input = u64_or0(u, "input_tokens");
    a->r_extra_in = 0;
    a->r_cache_read = u64_or0(u, "input_tokens_details.cached_tokens");
    a->r_cache_write = 0;
    a->r_output = u64_or0(u, "output_tokens");
    a->r_reasoning = u64_or0(u, "output_tokens_details.reasoning_tokens");
    a->r_has_total = get_u64(u, "total_tokens", &a->r_total);
    a->any = a->final = true;
}

static void responses_output_text(llm_usage_acc_t *a, const jval_t *response)
{
    const jval_t *out = jval_get(response, "output");
    for (size_t i = 0; i < jval_len(out); i++) {
        const jval_t *item = jval_at(out, i);
        add_text(a, text_len(item, "arguments")); /* function_call items */
        const jval_t *content = jval_get(item, "content");
        for (size_t k = 0; k < jval_len(content); k++) {
            add_text(a, text_len(jval_at(content, k), "text"));
            add_text(a, text_len(jval_at(content, k), "refusal"));
        }
    }
}

static bool is_text_delta_event(const char *type)
{
    static const char *const kinds[] = {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.reasoning_text.delta",
        "response.reasoning_summary_text.delta",
        "response.function_call_arguments.delta",
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(type, kinds[i]) == 0) return true;
    return false;
}

static void openai_responses(llm_usage_acc_t *a, const char *type, const jval_t *root,
                             bool streaming)
{
    if (!streaming) {
        responses_output_text(a, root);
        const jval_t *u = jval_get(root, "usage");
        if (jval_type(u) == JVAL_OBJECT) responses_snapshot(a, u);
        return;
    }
    if (is_text_delta_event(type)) {
        add_text(a, text_len(root, "delta"));
        return;
    }
    if (strcmp(type, "response.completed") == 0 || strcmp(type, "response.incomplete") == 0 ||
        strcmp(type, "response.failed") == 0) {
        const jval_t *u = jval_path(root, "response.usage");
        if (jval_type(u) == JVAL_OBJECT) responses_snapshot(a, u);
    }
}

/* ---- Anthropic messages ----------------------------------------------------- */

/* Fields present replace the earlier ones. */
static void anthropic_update(llm_usage_acc_t *a, const jval_t *u)
{
    if (jval_type(u) != JVAL_OBJECT) return;
    bool got = false;
    got |= get_u64(u, "input_tokens", &a->r_input);
    got |= get_u64(u, "cache_creation_input_tokens", &a->r_cache_write);
    got |= get_u64(u, "cache_read_input_tokens", &a->r_cache_read);
    got |= get_u64(u, "output_tokens", &a->r_output);
    if (got) a->any = true;
}

static void anthropic_content_text(llm_usage_acc_t *a, const jval_t *block)
{
    add_text(a, text_len(block, "text"));
    add_text(a, text_len(block, "thinking"));
    add_text(a, text_len(block, "partial_json"));
}

static void anthropic(llm_usage_acc_t *a, const char *type, const jval_t *root, bool streaming)
{
    if (!streaming) {
        const jval_t *content = jval_get(root, "content");
        for (size_t i = 0; i < jval_len(content); i++)
            anthropic_content_text(a, jval_at(content, i));
        const jval_t *u = jval_get(root, "usage");
        if (jval_type(u) == JVAL_OBJECT) {
            a->r_input = a->r_cache_write = a->r_cache_read = a->r_output = 0;
            anthropic_update(a, u);
            a->any = a->final = true;
        }
        return;
    }
    if (strcmp(type, "content_block_delta") == 0) {
        anthropic_content_text(a, jval_get(root, "delta"));
    } else if (strcmp(type, "message_start") == 0) {
        anthropic_update(a, jval_path(root, "message.usage"));
    } else if (strcmp(type, "message_delta") == 0) {
        const jval_t *u = jval_get(root, "usage");
        if (jval_type(u) == JVAL_OBJECT) {
            anthropic_update(a, u);
            a->any = a->final = true;
        }
    }
}

/* ---- Gemini ----------------------------------------------------------------- */

static void gemini_chunk(llm_usage_acc_t *a, const jval_t *root)
{
    const jval_t *cands = jval_get(root, "candidates");
    for (size_t i = 0; i < jval_len(cands); i++) {
        const jval_t *c = jval_at(cands, i);
        const jval_t *parts = jval_path(c, "content.parts");
        for (size_t k = 0; k < jval_len(parts); k++)
            add_text(a, text_len(jval_at(parts, k), "text"));
        if (jval_type(jval_get(c, "finishReason")) == JVAL_STRING) a->gemini_finished = true;
    }
    if (jval_type(jval_path(root, "promptFeedback.blockReason")) == JVAL_STRING)
        a->gemini_finished = true;
    const jval_t *u = jval_get(root, "usageMetadata");
    if (jval_type(u) != JVAL_OBJECT) return;
    a->r_input = u64_or0(u, "promptTokenCount");
    a->r_extra_in = u64_or0(u, "toolUsePromptTokenCount");
    a->r_cache_read = u64_or0(u, "cachedContentTokenCount");
    a->r_cache_write = 0;
    a->r_output = u64_or0(u, "candidatesTokenCount");
    a->r_reasoning = u64_or0(u, "thoughtsTokenCount");
    a->r_has_total = get_u64(u, "totalTokenCount", &a->r_total);
    a->any = true;
    a->final = a->gemini_finished;
}

static void gemini(llm_usage_acc_t *a, const jval_t *root, bool streaming)
{
    if (streaming || jval_type(root) != JVAL_ARRAY) {
        gemini_chunk(a, root);
        if (!streaming && a->any) a->final = true; /* a whole body is complete */
        return;
    }
    /* streamGenerateContent without alt=sse: a JSON array of chunks */
    for (size_t i = 0; i < jval_len(root); i++)
        gemini_chunk(a, jval_at(root, i));
    if (a->any) a->final = true;
}

/* ---- feeding ---------------------------------------------------------------- */

int llm_usage_feed_value(llm_usage_acc_t *a, const char *type, const jval_t *root, bool streaming)
{
    a->events++;
    /* the data's own "type" member names the event when present (Anthropic, Responses) */
    const char *t = jval_str(jval_get(root, "type"), NULL);
    if (!t) t = type ? type : "";
    switch (a->provider) {
    case LLM_OPENAI_CHAT:
        openai_chat(a, root, streaming);
        break;
    case LLM_OPENAI_RESPONSES:
        openai_responses(a, t, root, streaming);
        break;
    case LLM_ANTHROPIC:
        anthropic(a, t, root, streaming);
        break;
    case LLM_GEMINI:
        gemini(a, root, streaming);
        break;
    }
    return LLM_USAGE_OK;
}

static int feed_text(llm_usage_acc_t *a, const char *type, const char *data, size_t len,
                     bool streaming)
{
    char err[96];
    jval_doc_t *doc = NULL;
    int rc = jval_parse(data, len, a->max_nodes, &doc, err, sizeof err);
    if (rc != JVAL_OK) {
        a->events++;
        a->bad_events++;
        if (streaming)
            set_err(a, "event '%s': %s", type ? type : "", err);
        else
            set_err(a, "body: %s", err);
        return rc == JVAL_ELIMIT ? LLM_USAGE_ELIMIT : LLM_USAGE_EBADJSON;
    }
    rc = llm_usage_feed_value(a, type, jval_root(doc), streaming);
    jval_free(doc);
    return rc;
}

int llm_usage_feed_body(llm_usage_acc_t *a, const char *body, size_t len)
{
    return feed_text(a, NULL, body, len, false);
}

int llm_usage_feed_event(llm_usage_acc_t *a, const char *type, const char *data, size_t len)
{
    /* OpenAI's end-of-stream sentinel */
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) return LLM_USAGE_OK;
    return feed_text(a, type, data, len, true);
}

int llm_usage_feed_sse(llm_usage_acc_t *a, const sse_event_t *ev)
{
    if (ev->oversize) return LLM_USAGE_OK;
    return llm_usage_feed_event(a, ev->type, ev->data, ev->data_len);
}

/* ---- results ---------------------------------------------------------------- */

void llm_usage_get(const llm_usage_acc_t *a, llm_usage_t *out)
{
    memset(out, 0, sizeof *out);
    out->cache_read = a->r_cache_read;
    out->cache_write = a->r_cache_write;
    out->reasoning = a->r_reasoning;
    out->output = a->r_output;
    switch (a->provider) {
    case LLM_ANTHROPIC:
        out->input = sat_add(sat_add(a->r_input, a->r_cache_read), a->r_cache_write);
        break;
    case LLM_GEMINI:
        out->input = sat_add(a->r_input, a->r_extra_in);
        out->output = sat_add(a->r_output, a->r_reasoning);
        break;
    case LLM_OPENAI_CHAT:
    case LLM_OPENAI_RESPONSES:
        out->input = a->r_input;
        break;
    }
    bool provider_total = a->r_has_total && a->provider != LLM_ANTHROPIC;
    out->seen = a->final;
    out->estimated = !a->final;
    if (!a->final) {
        uint64_t est = a->text_bytes / 4 + (a->text_bytes % 4 != 0);
        if (est > out->output) out->output = est;
        provider_total = false;
    }
    out->total = provider_total ? a->r_total : sat_add(out->input, out->output);
}

/* ---- names ------------------------------------------------------------------ */

const char *llm_provider_name(llm_provider_t p)
{
    if ((unsigned)p < sizeof provider_names / sizeof provider_names[0]) return provider_names[p];
    return "?";
}

int llm_provider_parse(const char *name, llm_provider_t *out)
{
    for (size_t i = 0; name && i < sizeof provider_names / sizeof provider_names[0]; i++) {
        if (strcmp(name, provider_names[i]) == 0) {
            *out = (llm_provider_t)i;
            return 0;
        }
    }
    return -1;
}
