/*
 * request.c — read an LLM API request body by provider schema (see
 * request.h for every field read, the token estimator and the errors).
 *
 * One reader per kind walks the jval tree of the body: it validates the
 * fields the gateway relies on (model, stream, token caps, the message
 * arrays), adds the bytes of every piece of prompt text to prompt_bytes,
 * counts messages, and records attached file names.  The estimate is
 * computed once at the end.
 *
 * Invariants: counters saturate at UINT64_MAX; nfiles <= files_seen and
 * nfiles <= LLM_REQUEST_MAX_FILES; every kept name is at most
 * LLM_REQUEST_MAX_FILE_NAME bytes and ends at a UTF-8 character boundary.
 *
 * Memory: nothing is allocated.  The result borrows strings from the jval
 * document (and url_model); recursion (content blocks, JSON size) follows
 * the document's nesting, which jval bounds by JVAL_MAX_DEPTH.
 */
#include "llm/request.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rctx {
    llm_request_t *r;
    char *err;
    size_t errlen;
    const char *url_model; /* the model the URL names (Azure deployment), or NULL */
} rctx_t;

static const char *const kind_names[] = {
    "openai-chat",        "openai-responses",       "openai-embeddings",
    "anthropic-messages", "anthropic-count-tokens", "gemini-generate"};

__attribute__((format(printf, 2, 3))) static int fail(rctx_t *c, const char *fmt, ...)
{
    if (c->err && c->errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    return LLM_REQUEST_EINVAL;
}

static uint64_t sat_add(uint64_t x, uint64_t y)
{
    return x > UINT64_MAX - y ? UINT64_MAX : x + y;
}

static void add_bytes(rctx_t *c, uint64_t n)
{
    c->r->prompt_bytes = sat_add(c->r->prompt_bytes, n);
}

static void add_message(rctx_t *c)
{
    c->r->prompt_messages = sat_add(c->r->prompt_messages, 1);
}

/* Bytes of v if it is a string. */
static void add_str(rctx_t *c, const jval_t *v)
{
    size_t n = 0;
    if (jval_str(v, &n)) add_bytes(c, n);
}

static bool absent(const jval_t *v)
{
    return v == NULL || jval_is_null(v);
}

/* obj[camel], else obj[snake] (Gemini accepts both spellings). */
static const jval_t *get2(const jval_t *obj, const char *camel, const char *snake)
{
    const jval_t *v = jval_get(obj, camel);
    return v ? v : jval_get(obj, snake);
}

/* ---- compact JSON size ------------------------------------------------------ */

static uint64_t json_str_size(const char *s, size_t len)
{
    uint64_t n = 2;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\' || ch == '\n' || ch == '\r' || ch == '\t' || ch == '\b' ||
            ch == '\f')
            n += 2;
        else if (ch < 0x20)
            n += 6; /* \u00XX */
        else
            n += 1;
    }
    return n;
}

static uint64_t json_num_size(const jval_t *v)
{
    int64_t i;
    if (jval_int64(v, &i) == JVAL_OK) {
        char buf[32];
        int k = snprintf(buf, sizeof buf, "%" PRId64, i);
        return k > 0 ? (uint64_t)k : 1;
    }
    double d = 0;
    (void)jval_number(v, &d);
    char buf[40];
    int k = 1;
    for (int prec = 1; prec <= 17; prec++) {
        k = snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) break;
    }
    return k > 0 ? (uint64_t)k : 1;
}

/* Length of v serialized as compact JSON.  Recursion depth is bounded by
 * the document's nesting (JVAL_MAX_DEPTH). */
static uint64_t json_size(const jval_t *v)
{
    size_t n = 0;
    uint64_t total = 0;
    const char *s;
    switch (jval_type(v)) {
    case JVAL_NONE:
        return 0;
    case JVAL_NULL:
        return 4;
    case JVAL_BOOL: {
        bool b = false;
        (void)jval_bool(v, &b);
        return b ? 4 : 5;
    }
    case JVAL_NUMBER:
        return json_num_size(v);
    case JVAL_STRING:
        s = jval_str(v, &n);
        return json_str_size(s, n);
    case JVAL_ARRAY:
        n = jval_len(v);
        total = 2 + (n > 0 ? n - 1 : 0);
        for (size_t i = 0; i < n; i++)
            total = sat_add(total, json_size(jval_at(v, i)));
        return total;
    case JVAL_OBJECT:
        n = jval_len(v);
        total = 2 + (n > 0 ? n - 1 : 0);
        for (size_t i = 0; i < n; i++) {
            const char *key = NULL;
            size_t klen = 0;
            const jval_t *m = jval_member(v, i, &key, &klen);
            total = sat_add(total, json_str_size(key, klen) + 1);
            total = sat_add(total, json_size(m));
        }
        return total;
    }
    return 0;
}

static void add_json(rctx_t *c, const jval_t *v)
{
    add_bytes(c, json_size(v));
}

/* ---- scalar fields ------------------------------------------------------------ */

static int read_model(rctx_t *c, const jval_t *v)
{
    if (c->url_model && c->url_model[0]) { /* the deployment in the URL decides */
        c->r->model.ptr = c->url_model;
        c->r->model.len = strlen(c->url_model);
        return LLM_REQUEST_OK;
    }
    size_t n = 0;
    const char *s = jval_str(v, &n);
    if (s == NULL || n == 0) return fail(c, "model: required string");
    c->r->model.ptr = s;
    c->r->model.len = n;
    return LLM_REQUEST_OK;
}

/* An optional boolean: absent or null leaves *out. */
static int read_bool(rctx_t *c, const jval_t *v, const char *name, bool *out)
{
    if (absent(v)) return LLM_REQUEST_OK;
    if (!jval_bool(v, out)) return fail(c, "%s: must be a boolean", name);
    return LLM_REQUEST_OK;
}

/* An optional non-negative integer token cap. */
static int read_max(rctx_t *c, const jval_t *v, const char *name)
{
    int64_t n;
    if (absent(v)) return LLM_REQUEST_OK;
    if (jval_int64(v, &n) != JVAL_OK || n < 0)
        return fail(c, "%s: must be a non-negative integer", name);
    c->r->has_max_output = true;
    c->r->max_output = (uint64_t)n;
    return LLM_REQUEST_OK;
}

static void add_file(rctx_t *c, const jval_t *v)
{
    size_t n = 0;
    const char *s = jval_str(v, &n);
    llm_request_t *r = c->r;
    if (s == NULL || n == 0) return;
    r->files_seen++;
    if (r->nfiles >= LLM_REQUEST_MAX_FILES) return;
    if (n > LLM_REQUEST_MAX_FILE_NAME) {
        n = LLM_REQUEST_MAX_FILE_NAME;
        /* s[n] is the first byte cut: back up over a split character */
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
        r->files_clipped++;
    }
    r->files[r->nfiles].ptr = s;
    r->files[r->nfiles].len = n;
    r->nfiles++;
}

/* A function/tool definition: name, description, JSON size of its schema. */
static void add_function(rctx_t *c, const jval_t *f)
{
    static const char *const schema_keys[] = {"parameters", "input_schema", "parametersJsonSchema",
                                              "parameters_json_schema"};
    add_str(c, jval_get(f, "name"));
    add_str(c, jval_get(f, "description"));
    for (size_t i = 0; i < sizeof schema_keys / sizeof schema_keys[0]; i++)
        add_json(c, jval_get(f, schema_keys[i]));
}

/* An optional array of tool objects under `name`, each handed to
 * add_function (with openai_wrap, its "function" member when that is an
 * object: chat's {"type": "function", "function": {...}}). */
static int read_tools(rctx_t *c, const jval_t *tools, const char *name, bool openai_wrap)
{
    if (absent(tools)) return LLM_REQUEST_OK;
    if (jval_type(tools) != JVAL_ARRAY) return fail(c, "%s: must be an array", name);
    for (size_t i = 0; i < jval_len(tools); i++) {
        const jval_t *t = jval_at(tools, i);
        if (jval_type(t) != JVAL_OBJECT) return fail(c, "%s[%zu]: must be an object", name, i);
        const jval_t *fn = jval_get(t, "function");
        add_function(c, openai_wrap && jval_type(fn) == JVAL_OBJECT ? fn : t);
    }
    return LLM_REQUEST_OK;
}

/* ---- OpenAI ------------------------------------------------------------------- */

/* content: a string, or an array of parts (chat and Responses part types). */
static int openai_content(rctx_t *c, const jval_t *v, const char *where)
{
    if (absent(v)) return LLM_REQUEST_OK;
    if (jval_type(v) == JVAL_STRING) {
        add_str(c, v);
        return LLM_REQUEST_OK;
    }
    if (jval_type(v) != JVAL_ARRAY) return fail(c, "%s: must be a string, an array or null", where);
    for (size_t i = 0; i < jval_len(v); i++) {
        const jval_t *p = jval_at(v, i);
        if (jval_type(p) != JVAL_OBJECT) return fail(c, "%s[%zu]: must be an object", where, i);
        add_str(c, jval_get(p, "text"));
        add_str(c, jval_get(p, "refusal"));
        const jval_t *type = jval_get(p, "type");
        if (jval_str_eq(type, "file"))
            add_file(c, jval_path(p, "file.filename"));
        else if (jval_str_eq(type, "input_file"))
            add_file(c, jval_get(p, "filename"));
    }
    return LLM_REQUEST_OK;
}

static void openai_call(rctx_t *c, const jval_t *fn)
{
    add_str(c, jval_get(fn, "name"));
    add_str(c, jval_get(fn, "arguments"));
}

static int openai_chat(rctx_t *c, const jval_t *b)
{
    llm_request_t *r = c->r;
    char where[64];
    int rc;
    if ((rc = read_model(c, jval_get(b, "model"))) != LLM_REQUEST_OK) return rc;
    if ((rc = read_bool(c, jval_get(b, "stream"), "stream", &r->stream)) != LLM_REQUEST_OK)
        return rc;
    const jval_t *so = jval_get(b, "stream_options");
    if (!absent(so) && jval_type(so) != JVAL_OBJECT)
        return fail(c, "stream_options: must be an object");
    rc = read_bool(c, jval_get(so, "include_usage"), "stream_options.include_usage",
                   &r->include_usage);
    if (rc != LLM_REQUEST_OK) return rc;
    if ((rc = read_max(c, jval_get(b, "max_tokens"), "max_tokens")) != LLM_REQUEST_OK) return rc;
    rc = read_max(c, jval_get(b, "max_completion_tokens"), "max_completion_tokens");
    if (rc != LLM_REQUEST_OK) return rc;

    const jval_t *msgs = jval_get(b, "messages");
    if (jval_type(msgs) != JVAL_ARRAY) return fail(c, "messages: required array");
    for (size_t i = 0; i < jval_len(msgs); i++) {
        const jval_t *m = jval_at(msgs, i);
        if (jval_type(m) != JVAL_OBJECT) return fail(c, "messages[%zu]: must be an object", i);
        add_message(c);
        snprintf(where, sizeof where, "messages[%zu].content", i);
        if ((rc = openai_content(c, jval_get(m, "content"), where)) != LLM_REQUEST_OK) return rc;
        add_str(c, jval_get(m, "name"));
        add_str(c, jval_get(m, "refusal"));
        const jval_t *calls = jval_get(m, "tool_calls");
        if (!absent(calls) && jval_type(calls) != JVAL_ARRAY)
            return fail(c, "messages[%zu].tool_calls: must be an array", i);
        for (size_t j = 0; j < jval_len(calls); j++)
            openai_call(c, jval_get(jval_at(calls, j), "function"));
        openai_call(c, jval_get(m, "function_call"));
    }
    if ((rc = read_tools(c, jval_get(b, "tools"), "tools", true)) != LLM_REQUEST_OK) return rc;
    return read_tools(c, jval_get(b, "functions"), "functions", false);
}

static int openai_responses(rctx_t *c, const jval_t *b)
{
    llm_request_t *r = c->r;
    char where[64];
    int rc;
    if ((rc = read_model(c, jval_get(b, "model"))) != LLM_REQUEST_OK) return rc;
    if ((rc = read_bool(c, jval_get(b, "stream"), "stream", &r->stream)) != LLM_REQUEST_OK)
        return rc;
    rc = read_max(c, jval_get(b, "max_output_tokens"), "max_output_tokens");
    if (rc != LLM_REQUEST_OK) return rc;

    const jval_t *ins = jval_get(b, "instructions");
    if (jval_type(ins) == JVAL_STRING) {
        add_message(c);
        add_str(c, ins);
    }
    const jval_t *in = jval_get(b, "input");
    if (jval_type(in) == JVAL_STRING) {
        add_message(c);
        add_str(c, in);
    } else if (jval_type(in) == JVAL_ARRAY) {
        for (size_t i = 0; i < jval_len(in); i++) {
            const jval_t *it = jval_at(in, i);
            if (jval_type(it) != JVAL_OBJECT) return fail(c, "input[%zu]: must be an object", i);
            add_message(c);
            snprintf(where, sizeof where, "input[%zu].content", i);
            if ((rc = openai_content(c, jval_get(it, "content"), where)) != LLM_REQUEST_OK)
                return rc;
            add_str(c, jval_get(it, "name"));
            add_str(c, jval_get(it, "arguments"));
            add_str(c, jval_get(it, "input"));
            snprintf(where, sizeof where, "input[%zu].output", i);
            if ((rc = openai_content(c, jval_get(it, "output"), where)) != LLM_REQUEST_OK)
                return rc;
            snprintf(where, sizeof where, "input[%zu].summary", i);
            if ((rc = openai_content(c, jval_get(it, "summary"), where)) != LLM_REQUEST_OK)
                return rc;
        }
    } else if (!absent(in)) {
        return fail(c, "input: must be a string or an array");
    }
    return read_tools(c, jval_get(b, "tools"), "tools", false);
}

static int openai_embeddings(rctx_t *c, const jval_t *b)
{
    llm_request_t *r = c->r;
    int64_t n;
    int rc;
    if ((rc = read_model(c, jval_get(b, "model"))) != LLM_REQUEST_OK) return rc;
    const jval_t *in = jval_get(b, "input");
    if (jval_type(in) == JVAL_STRING) {
        add_str(c, in);
        return LLM_REQUEST_OK;
    }
    if (jval_type(in) != JVAL_ARRAY) return fail(c, "input: required string or array");
    for (size_t i = 0; i < jval_len(in); i++) {
        const jval_t *e = jval_at(in, i);
        switch (jval_type(e)) {
        case JVAL_STRING:
            add_str(c, e);
            break;
        case JVAL_NUMBER:
            if (jval_int64(e, &n) != JVAL_OK || n < 0)
                return fail(c, "input[%zu]: must be a non-negative integer", i);
            r->prompt_token_ids = sat_add(r->prompt_token_ids, 1);
            break;
        case JVAL_ARRAY:
            for (size_t j = 0; j < jval_len(e); j++) {
                if (jval_int64(jval_at(e, j), &n) != JVAL_OK || n < 0)
                    return fail(c, "input[%zu][%zu]: must be a non-negative integer", i, j);
                r->prompt_token_ids = sat_add(r->prompt_token_ids, 1);
            }
            break;
        default:
            return fail(c, "input[%zu]: must be a string, an integer or an array of integers", i);
        }
    }
    return LLM_REQUEST_OK;
}

/* ---- Anthropic ---------------------------------------------------------------- */

static int anthropic_content(rctx_t *c, const jval_t *v, const char *where);

/* An array of content blocks.  Recursion (tool_result, search_result and
 * document content) is bounded by the document's nesting. */
static int anthropic_blocks(rctx_t *c, const jval_t *arr, const char *where)
{
    char sub[96];
    int rc;
    for (size_t i = 0; i < jval_len(arr); i++) {
        const jval_t *bl = jval_at(arr, i);
        if (jval_type(bl) != JVAL_OBJECT) return fail(c, "%s[%zu]: must be an object", where, i);
        const jval_t *type = jval_get(bl, "type");
        add_str(c, jval_get(bl, "text"));
        add_str(c, jval_get(bl, "thinking"));
        if (jval_str_eq(type, "tool_use") || jval_str_eq(type, "server_tool_use")) {
            add_str(c, jval_get(bl, "name"));
            add_json(c, jval_get(bl, "input"));
        } else if (jval_str_eq(type, "document") || jval_str_eq(type, "search_result")) {
            const jval_t *title = jval_get(bl, "title");
            if (jval_str_eq(type, "document")) add_file(c, title);
            add_str(c, title);
            add_str(c, jval_get(bl, "context"));
            const jval_t *src = jval_get(bl, "source");
            if (jval_str_eq(jval_get(src, "type"), "text")) add_str(c, jval_get(src, "data"));
            snprintf(sub, sizeof sub, "%s[%zu].source.content", where, i);
            if ((rc = anthropic_content(c, jval_get(src, "content"), sub)) != LLM_REQUEST_OK)
                return rc;
        }
        if (jval_str_eq(type, "tool_result") || jval_str_eq(type, "search_result")) {
            snprintf(sub, sizeof sub, "%s[%zu].content", where, i);
            if ((rc = anthropic_content(c, jval_get(bl, "content"), sub)) != LLM_REQUEST_OK)
                return rc;
        }
    }
    return LLM_REQUEST_OK;
}

/* A string or an array of blocks (or absent). */
static int anthropic_content(rctx_t *c, const jval_t *v, const char *where)
{
    if (absent(v)) return LLM_REQUEST_OK;
    if (jval_type(v) == JVAL_STRING) {
        add_str(c, v);
        return LLM_REQUEST_OK;
    }
    if (jval_type(v) != JVAL_ARRAY) return fail(c, "%s: must be a string or an array", where);
    return anthropic_blocks(c, v, where);
}

static int anthropic(rctx_t *c, const jval_t *b, bool count_tokens)
{
    llm_request_t *r = c->r;
    char where[64];
    int rc;
    if ((rc = read_model(c, jval_get(b, "model"))) != LLM_REQUEST_OK) return rc;
    if (!count_tokens) {
        rc = read_bool(c, jval_get(b, "stream"), "stream", &r->stream);
        if (rc != LLM_REQUEST_OK) return rc;
        if ((rc = read_max(c, jval_get(b, "max_tokens"), "max_tokens")) != LLM_REQUEST_OK)
            return rc;
    }
    const jval_t *sys = jval_get(b, "system");
    if (!absent(sys)) {
        add_message(c);
        if ((rc = anthropic_content(c, sys, "system")) != LLM_REQUEST_OK) return rc;
    }
    const jval_t *msgs = jval_get(b, "messages");
    if (jval_type(msgs) != JVAL_ARRAY) return fail(c, "messages: required array");
    for (size_t i = 0; i < jval_len(msgs); i++) {
        const jval_t *m = jval_at(msgs, i);
        if (jval_type(m) != JVAL_OBJECT) return fail(c, "messages[%zu]: must be an object", i);
        add_message(c);
        snprintf(where, sizeof where, "messages[%zu].content", i);
        if ((rc = anthropic_content(c, jval_get(m, "content"), where)) != LLM_REQUEST_OK) return rc;
    }
    return read_tools(c, jval_get(b, "tools"), "tools", false);
}

/* ---- Gemini ------------------------------------------------------------------- */

static int gemini_parts(rctx_t *c, const jval_t *parts, const char *where)
{
    if (absent(parts)) return LLM_REQUEST_OK;
    if (jval_type(parts) != JVAL_ARRAY) return fail(c, "%s: must be an array", where);
    for (size_t i = 0; i < jval_len(parts); i++) {
        const jval_t *p = jval_at(parts, i);
        if (jval_type(p) != JVAL_OBJECT) return fail(c, "%s[%zu]: must be an object", where, i);
        add_str(c, jval_get(p, "text"));
        const jval_t *fc = get2(p, "functionCall", "function_call");
        add_str(c, jval_get(fc, "name"));
        add_json(c, jval_get(fc, "args"));
        const jval_t *fr = get2(p, "functionResponse", "function_response");
        add_str(c, jval_get(fr, "name"));
        add_json(c, jval_get(fr, "response"));
        add_str(c, jval_get(get2(p, "executableCode", "executable_code"), "code"));
        add_str(c, jval_get(get2(p, "codeExecutionResult", "code_execution_result"), "output"));
        add_file(c, get2(get2(p, "fileData", "file_data"), "displayName", "display_name"));
    }
    return LLM_REQUEST_OK;
}

static int gemini(rctx_t *c, const jval_t *b, const char *url_model, bool url_stream)
{
    llm_request_t *r = c->r;
    char where[64];
    int rc;
    if (url_model == NULL || url_model[0] == '\0') return fail(c, "model: required string");
    r->model.ptr = url_model;
    r->model.len = strlen(url_model);
    r->stream = url_stream;

    const jval_t *gc = get2(b, "generationConfig", "generation_config");
    if (!absent(gc) && jval_type(gc) != JVAL_OBJECT)
        return fail(c, "generationConfig: must be an object");
    rc = read_max(c, get2(gc, "maxOutputTokens", "max_output_tokens"),
                  "generationConfig.maxOutputTokens");
    if (rc != LLM_REQUEST_OK) return rc;

    const jval_t *si = get2(b, "systemInstruction", "system_instruction");
    if (jval_type(si) == JVAL_STRING) {
        add_message(c);
        add_str(c, si);
    } else if (jval_type(si) == JVAL_OBJECT) {
        add_message(c);
        rc = gemini_parts(c, jval_get(si, "parts"), "systemInstruction.parts");
        if (rc != LLM_REQUEST_OK) return rc;
    } else if (!absent(si)) {
        return fail(c, "systemInstruction: must be an object");
    }

    const jval_t *contents = jval_get(b, "contents");
    if (jval_type(contents) != JVAL_ARRAY) return fail(c, "contents: required array");
    for (size_t i = 0; i < jval_len(contents); i++) {
        const jval_t *m = jval_at(contents, i);
        if (jval_type(m) != JVAL_OBJECT) return fail(c, "contents[%zu]: must be an object", i);
        add_message(c);
        snprintf(where, sizeof where, "contents[%zu].parts", i);
        if ((rc = gemini_parts(c, jval_get(m, "parts"), where)) != LLM_REQUEST_OK) return rc;
    }

    const jval_t *tools = jval_get(b, "tools");
    if (absent(tools)) return LLM_REQUEST_OK;
    if (jval_type(tools) != JVAL_ARRAY) return fail(c, "tools: must be an array");
    for (size_t i = 0; i < jval_len(tools); i++) {
        const jval_t *t = jval_at(tools, i);
        if (jval_type(t) != JVAL_OBJECT) return fail(c, "tools[%zu]: must be an object", i);
        snprintf(where, sizeof where, "tools[%zu].functionDeclarations", i);
        rc = read_tools(c, get2(t, "functionDeclarations", "function_declarations"), where, false);
        if (rc != LLM_REQUEST_OK) return rc;
    }
    return LLM_REQUEST_OK;
}

/* ---- entry points ------------------------------------------------------------- */

int llm_request_parse(llm_request_kind_t kind, const jval_t *body, const char *url_model,
                      bool url_stream, llm_request_t *out, char *err, size_t errlen)
{
    llm_request_t scratch;
    rctx_t c = {out ? out : &scratch, err, errlen,
                kind == LLM_REQ_GEMINI_GENERATE ? NULL : url_model};
    int rc;
    memset(c.r, 0, sizeof *c.r);
    c.r->kind = kind;
    if (err && errlen > 0) err[0] = '\0';
    if (out == NULL) return fail(&c, "no output");
    if (jval_type(body) != JVAL_OBJECT)
        return fail(&c, "body: must be a JSON object, not %s", jval_type_name(jval_type(body)));

    switch (kind) {
    case LLM_REQ_OPENAI_CHAT:
        rc = openai_chat(&c, body);
        break;
    case LLM_REQ_OPENAI_RESPONSES:
        rc = openai_responses(&c, body);
        break;
    case LLM_REQ_OPENAI_EMBEDDINGS:
        rc = openai_embeddings(&c, body);
        break;
    case LLM_REQ_ANTHROPIC_MESSAGES:
        rc = anthropic(&c, body, false);
        break;
    case LLM_REQ_ANTHROPIC_COUNT_TOKENS:
        rc = anthropic(&c, body, true);
        break;
    case LLM_REQ_GEMINI_GENERATE:
        rc = gemini(&c, body, url_model, url_stream);
        break;
    default:
        return fail(&c, "unknown request kind %d", (int)kind);
    }

    llm_request_t *r = c.r;
    uint64_t est = r->prompt_bytes / 4 + (r->prompt_bytes % 4 != 0);
    est = sat_add(est, r->prompt_messages > UINT64_MAX / 4 ? UINT64_MAX : r->prompt_messages * 4);
    r->prompt_tokens_est = sat_add(est, r->prompt_token_ids);
    return rc;
}

const char *llm_request_kind_name(llm_request_kind_t kind)
{
    size_t k = (size_t)kind;
    return k < sizeof kind_names / sizeof kind_names[0] ? kind_names[k] : "?";
}

int llm_request_kind_parse(const char *name, llm_request_kind_t *out)
{
    if (name == NULL || out == NULL) return -1;
    if (strcmp(name, "mistral") == 0 || strcmp(name, "groq") == 0) {
        *out = LLM_REQ_OPENAI_CHAT;
        return 0;
    }
    for (size_t i = 0; i < sizeof kind_names / sizeof kind_names[0]; i++) {
        if (strcmp(name, kind_names[i]) == 0) {
            *out = (llm_request_kind_t)i;
            return 0;
        }
    }
    return -1;
}

llm_provider_t llm_request_usage_provider(llm_request_kind_t kind)
{
    switch (kind) {
    case LLM_REQ_OPENAI_RESPONSES:
        return LLM_OPENAI_RESPONSES;
    case LLM_REQ_ANTHROPIC_MESSAGES:
    case LLM_REQ_ANTHROPIC_COUNT_TOKENS:
        return LLM_ANTHROPIC;
    case LLM_REQ_GEMINI_GENERATE:
        return LLM_GEMINI;
    case LLM_REQ_OPENAI_CHAT:
    case LLM_REQ_OPENAI_EMBEDDINGS:
    default:
        return LLM_OPENAI_CHAT;
    }
}
