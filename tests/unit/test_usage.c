/*
 * test_usage.c — unit tests of src/llm/usage on realistic provider payloads
 * (shapes from the public API documentation: OpenAI chat completions with
 * stream_options.include_usage, Groq's x_groq.usage, Mistral, DeepSeek,
 * OpenAI Responses, Anthropic Messages, Gemini generateContent and
 * streamGenerateContent).  Streams go through the real SSE parser
 * (src/llm/sse), whole and one byte at a time.  Checked: the normalisation
 * of input / cache / reasoning per provider, cumulative figures (Anthropic
 * message_delta, Gemini usageMetadata: the last wins), streams cut short
 * (estimated from text deltas), the usage-only chunk detector, bad JSON.
 *
 * Usage: test_usage [cmocka test-name filter].
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
#include "llm/sse.h"
#include "llm/usage.h"

/* ---- helpers -------------------------------------------------------------- */

typedef struct feed_ctx {
    llm_usage_acc_t *acc;
    int usage_only; /* events for which llm_usage_openai_usage_only_data() said yes */
    int bad;        /* events the accumulator refused */
} feed_ctx_t;

static int on_event(const sse_event_t *ev, void *vctx)
{
    feed_ctx_t *f = vctx;
    if (llm_usage_openai_usage_only_data(ev->data, ev->data_len) == 1) f->usage_only++;
    if (llm_usage_feed_sse(f->acc, ev) != LLM_USAGE_OK) f->bad++;
    return 0;
}

/* Stream s through SSE into a fresh accumulator (chunk bytes at a time,
 * 0 = one shot); returns sse_finish()'s value. */
static int stream(llm_provider_t prov, const char *s, size_t chunk, llm_usage_t *u, feed_ctx_t *f,
                  llm_usage_acc_t *acc)
{
    llm_usage_init(acc, prov);
    memset(f, 0, sizeof *f);
    f->acc = acc;
    sse_parser_t p;
    sse_init(&p, 0, on_event, f);
    size_t n = strlen(s);
    if (!chunk) chunk = n ? n : 1;
    for (size_t o = 0; o < n; o += chunk)
        assert_int_equal(sse_feed(&p, s + o, n - o < chunk ? n - o : chunk), SSE_OK);
    int fin = sse_finish(&p);
    sse_free(&p);
    llm_usage_get(acc, u);
    return fin;
}

typedef struct want {
    uint64_t input, output, cache_read, cache_write, reasoning, total;
    bool seen;
} want_t;

static void check_usage(const llm_usage_t *u, want_t w)
{
    if (u->input != w.input || u->output != w.output || u->cache_read != w.cache_read ||
        u->cache_write != w.cache_write || u->reasoning != w.reasoning || u->total != w.total ||
        u->seen != w.seen)
        fprintf(stderr,
                "got in %llu out %llu cr %llu cw %llu rs %llu tot %llu seen %d\n"
                "want in %llu out %llu cr %llu cw %llu rs %llu tot %llu seen %d\n",
                (unsigned long long)u->input, (unsigned long long)u->output,
                (unsigned long long)u->cache_read, (unsigned long long)u->cache_write,
                (unsigned long long)u->reasoning, (unsigned long long)u->total, u->seen,
                (unsigned long long)w.input, (unsigned long long)w.output,
                (unsigned long long)w.cache_read, (unsigned long long)w.cache_write,
                (unsigned long long)w.reasoning, (unsigned long long)w.total, w.seen);
    assert_true(u->input == w.input);
    assert_true(u->output == w.output);
    assert_true(u->cache_read == w.cache_read);
    assert_true(u->cache_write == w.cache_write);
    assert_true(u->reasoning == w.reasoning);
    assert_true(u->total == w.total);
    assert_int_equal(u->seen, w.seen);
    assert_int_equal(u->estimated, !w.seen);
}

/* The same stream one-shot and one byte at a time: the same usage. */
static int stream_check(llm_provider_t prov, const char *s, want_t w, feed_ctx_t *f)
{
    llm_usage_acc_t acc;
    llm_usage_t u;
    int fin1 = stream(prov, s, 0, &u, f, &acc);
    check_usage(&u, w);
    feed_ctx_t f2;
    int fin2 = stream(prov, s, 1, &u, &f2, &acc);
    check_usage(&u, w);
    assert_int_equal(fin1, fin2);
    assert_int_equal(f->usage_only, f2.usage_only);
    return fin1;
}

static void body_check(llm_provider_t prov, const char *body, want_t w)
{
    llm_usage_acc_t acc;
    llm_usage_init(&acc, prov);
    assert_int_equal(llm_usage_feed_body(&acc, body, strlen(body)), LLM_USAGE_OK);
    llm_usage_t u;
    llm_usage_get(&acc, &u);
    check_usage(&u, w);
}

/* ---- OpenAI chat completions ---------------------------------------------- */

#define OAI_HEAD                                                                                   \
    "{\"id\":\"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG\",\"object\":\"chat.completion.chunk\","     \
    "\"created\":1741570283,\"model\":\"o3-mini-2025-01-31\",\"service_tier\":\"default\","        \
    "\"system_fingerprint\":\"fp_42bfad963b\","

static const char openai_stream[] =
    "data: " OAI_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":"
    "\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: " OAI_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"The capital\"},"
    "\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: " OAI_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":\" of France is "
    "Paris.\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: " OAI_HEAD "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,"
    "\"finish_reason\":\"stop\"}],\"usage\":null}\n\n"
    "data: " OAI_HEAD "\"choices\":[],\"usage\":{\"prompt_tokens\":1834,\"completion_tokens\":"
    "213,\"total_tokens\":2047,\"prompt_tokens_details\":{\"cached_tokens\":1536,"
    "\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":192,"
    "\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}}\n\n"
    "data: [DONE]\n\n";

static void test_openai_chat_stream(void **state)
{
    (void)state;
    feed_ctx_t f;
    /* input includes the cached part, output includes reasoning */
    int fin = stream_check(LLM_OPENAI_CHAT, openai_stream,
                           (want_t){1834, 213, 1536, 0, 192, 2047, true}, &f);
    assert_int_equal(fin, SSE_END_CLEAN);
    assert_int_equal(f.usage_only, 1); /* exactly the last JSON chunk */
    assert_int_equal(f.bad, 0);
}

static void test_openai_chat_truncated(void **state)
{
    (void)state;
    /* the client went away after the content: no usage chunk, "The capital"
     * + " of France is Paris." = 11 + 20 bytes -> ceil(31 / 4) = 8 */
    const char *cut = strstr(openai_stream, "data: " OAI_HEAD "\"choices\":[],");
    assert_non_null(cut);
    size_t n = (size_t)(cut - openai_stream) + 40; /* inside the usage event */
    char *s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, openai_stream, n);
    s[n] = '\0';
    feed_ctx_t f;
    int fin = stream_check(LLM_OPENAI_CHAT, s, (want_t){0, 8, 0, 0, 0, 8, false}, &f);
    assert_int_equal(fin, SSE_END_TRUNCATED);
    free(s);

    /* tool call arguments and reasoning_content are output text too */
    static const char tools[] =
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"Hmm, "
        "weather.\"}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":"
        "\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":"
        "\"{\\\"loc\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
        "{\"arguments\":\"ation\\\":\\\"Paris\\\"}\"}}]}}]}\n\n";
    /* 13 + 5 + 16 = 34 bytes -> 9 */
    stream_check(LLM_OPENAI_CHAT, tools, (want_t){0, 9, 0, 0, 0, 9, false}, &f);
}

static void test_openai_chat_body(void **state)
{
    (void)state;
    body_check(LLM_OPENAI_CHAT,
               "{\"id\":\"chatcmpl-abc123\",\"object\":\"chat.completion\",\"created\":1677858242,"
               "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
               "\"assistant\",\"content\":\"Hello there, how may I assist you today?\","
               "\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":"
               "{\"prompt_tokens\":2006,\"completion_tokens\":300,\"total_tokens\":2306,"
               "\"prompt_tokens_details\":{\"cached_tokens\":1920,\"audio_tokens\":0},"
               "\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,"
               "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}},"
               "\"service_tier\":\"default\"}",
               (want_t){2006, 300, 1920, 0, 0, 2306, true});
    /* Mistral: OpenAI-compatible, no details */
    body_check(LLM_OPENAI_CHAT,
               "{\"id\":\"cmpl-e5cc70bb28c444948073e77776eb30ef\",\"object\":\"chat.completion\","
               "\"model\":\"mistral-small-latest\",\"usage\":{\"prompt_tokens\":16,"
               "\"completion_tokens\":34,\"total_tokens\":50},\"created\":1702256327,"
               "\"choices\":[{\"index\":0,\"message\":{\"content\":\"Bonjour !\",\"tool_calls\":"
               "null,\"prefix\":false,\"role\":\"assistant\"},\"finish_reason\":\"stop\"}]}",
               (want_t){16, 34, 0, 0, 0, 50, true});
    /* DeepSeek: cache hits as prompt_cache_hit_tokens */
    body_check(LLM_OPENAI_CHAT,
               "{\"id\":\"x\",\"object\":\"chat.completion\",\"model\":\"deepseek-chat\","
               "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},"
               "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1000,"
               "\"completion_tokens\":10,\"total_tokens\":1010,\"prompt_cache_hit_tokens\":768,"
               "\"prompt_cache_miss_tokens\":232}}",
               (want_t){1000, 10, 768, 0, 0, 1010, true});
    /* no usage at all: estimated from the message, 40 bytes -> 10 */
    body_check(LLM_OPENAI_CHAT,
               "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
               "\"Hello there, how may I assist you today?\"},\"finish_reason\":\"stop\"}]}",
               (want_t){0, 10, 0, 0, 0, 10, false});
    /* a figure that is not a non-negative integer is absent; no total_tokens */
    body_check(LLM_OPENAI_CHAT,
               "{\"choices\":[],\"usage\":{\"prompt_tokens\":-5,\"completion_tokens\":7.5,"
               "\"prompt_tokens_details\":{\"cached_tokens\":\"3\"}}}",
               (want_t){0, 0, 0, 0, 0, 0, true});
    body_check(LLM_OPENAI_CHAT, "{\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}",
               (want_t){5, 2, 0, 0, 0, 7, true});
}

static void test_groq_and_mistral_stream(void **state)
{
    (void)state;
    static const char groq[] =
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1730241104,"
        "\"model\":\"llama-3.1-8b-instant\",\"system_fingerprint\":\"fp_f66ccb39ec\","
        "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
        "\"logprobs\":null,\"finish_reason\":null}],\"x_groq\":{\"id\":"
        "\"req_01jbd6g2qdfw2adyrt2az8hz4w\"}}\n\n"
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":"
        "[{\"index\":0,\"delta\":{\"content\":\"Fast inference\"},\"logprobs\":null,"
        "\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":"
        "[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"x_groq\":"
        "{\"id\":\"req_01jbd6g2qdfw2adyrt2az8hz4w\",\"usage\":{\"queue_time\":0.037,"
        "\"prompt_tokens\":18,\"prompt_time\":0.000680,\"completion_tokens\":556,"
        "\"completion_time\":0.463,\"total_tokens\":574,\"total_time\":0.464}}}\n\n"
        "data: [DONE]\n\n";
    feed_ctx_t f;
    stream_check(LLM_OPENAI_CHAT, groq, (want_t){18, 556, 0, 0, 0, 574, true}, &f);
    assert_int_equal(f.usage_only, 0); /* the x_groq chunk also ends the choice: keep it */

    /* Mistral streams usage in the chunk with the finish_reason */
    static const char mistral[] =
        "data: {\"id\":\"6e1c\",\"object\":\"chat.completion.chunk\",\"created\":1702256327,"
        "\"model\":\"mistral-large-latest\",\"choices\":[{\"index\":0,\"delta\":{\"role\":"
        "\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"6e1c\",\"object\":\"chat.completion.chunk\",\"created\":1702256327,"
        "\"model\":\"mistral-large-latest\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
        "\"Bonjour\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":10,"
        "\"total_tokens\":13,\"completion_tokens\":3}}\n\n"
        "data: [DONE]\n\n";
    stream_check(LLM_OPENAI_CHAT, mistral, (want_t){10, 3, 0, 0, 0, 13, true}, &f);
    assert_int_equal(f.usage_only, 0);
}

static void test_usage_only_detector(void **state)
{
    (void)state;
    static const struct {
        const char *data;
        int want;
    } cases[] = {
        {"{\"choices\":[],\"usage\":{\"prompt_tokens\":1}}", 1},
        {"{\"choices\":[],\"usage\":null}", 0},
        {"{\"choices\":[{}],\"usage\":{\"prompt_tokens\":1}}", 0},
        {"{\"usage\":{\"prompt_tokens\":1}}", 0},
        {"{\"choices\":{},\"usage\":{}}", 0},
        {"[DONE]", 0},
        {"", 0},
        {"[]", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(llm_usage_openai_usage_only_data(cases[i].data, strlen(cases[i].data)),
                         cases[i].want);
    assert_false(llm_usage_openai_usage_only(NULL));
}

/* ---- OpenAI Responses ----------------------------------------------------- */

#define RESP_OBJ(status, usage)                                                                    \
    "{\"id\":\"resp_67ccd3a9da748190baa7f1570fe91ac6\",\"object\":\"response\",\"created_at\":"    \
    "1741476777,\"status\":\"" status "\",\"model\":\"o4-mini-2025-04-16\",\"output\":[],"         \
    "\"usage\":" usage "}"

static const char responses_stream[] =
    "event: response.created\n"
    "data: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":" RESP_OBJ(
        "in_progress",
        "null") "}\n\n"
                "event: response.in_progress\n"
                "data: {\"type\":\"response.in_progress\",\"sequence_number\":1,"
                "\"response\":" RESP_OBJ("in_progress",
                                         "null") "}\n\n"
                                                 "event: response.reasoning_summary_text.delta\n"
                                                 "data: "
                                                 "{\"type\":\"response.reasoning_summary_text."
                                                 "delta\",\"sequence_number\":3,\"item_id\":"
                                                 "\"rs_1\",\"output_index\":0,\"summary_index\":0,"
                                                 "\"delta\":\"Thinking\"}\n\n"
                                                 "event: response.output_text.delta\n"
                                                 "data: "
                                                 "{\"type\":\"response.output_text.delta\","
                                                 "\"sequence_number\":5,\"item_id\":\"msg_1\","
                                                 "\"output_index\":1,\"content_index\":0,\"delta\":"
                                                 "\"In a shimmering\",\"logprobs\":[]}\n\n"
                                                 "event: response.output_text.delta\n"
                                                 "data: "
                                                 "{\"type\":\"response.output_text.delta\","
                                                 "\"sequence_number\":6,\"item_id\":\"msg_1\","
                                                 "\"output_index\":1,\"content_index\":0,\"delta\":"
                                                 "\" forest\",\"logprobs\":[]}\n\n"
                                                 "event: response.output_text.done\n"
                                                 "data: "
                                                 "{\"type\":\"response.output_text.done\","
                                                 "\"sequence_number\":7,\"item_id\":\"msg_1\","
                                                 "\"output_index\":1,\"content_index\":0,\"text\":"
                                                 "\"In a shimmering forest\"}\n\n"
                                                 "event: response.completed\n"
                                                 "data: "
                                                 "{\"type\":\"response.completed\",\"sequence_"
                                                 "number\":9,\"response\":" RESP_OBJ(
                                                     "completed",
                                                     "{\"input_tokens\":3024,\"input_tokens_"
                                                     "details\":{\"cached_tokens\":2048},"
                                                     "\"output_tokens\":1523,\"output_tokens_"
                                                     "details\":{\"reasoning_tokens\":1408},"
                                                     "\"total_tokens\":4547}") "}\n\n";

static void test_responses_stream(void **state)
{
    (void)state;
    feed_ctx_t f;
    stream_check(LLM_OPENAI_RESPONSES, responses_stream,
                 (want_t){3024, 1523, 2048, 0, 1408, 4547, true}, &f);
    assert_int_equal(f.bad, 0);

    /* cut before response.completed: "Thinking" + "In a shimmering" + " forest"
     * = 8 + 15 + 7 = 30 bytes -> 8 */
    const char *cut = strstr(responses_stream, "event: response.completed");
    assert_non_null(cut);
    size_t n = (size_t)(cut - responses_stream);
    char *s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, responses_stream, n);
    s[n] = '\0';
    stream_check(LLM_OPENAI_RESPONSES, s, (want_t){0, 8, 0, 0, 0, 8, false}, &f);
    free(s);

    /* response.incomplete carries usage too (max_output_tokens reached) */
    static const char inc[] =
        "event: response.incomplete\n"
        "data: {\"type\":\"response.incomplete\",\"sequence_number\":4,\"response\":" RESP_OBJ(
            "incomplete",
            "{\"input_tokens\":50,\"input_tokens_details\":{\"cached_tokens\":0},"
            "\"output_tokens\":16,\"output_tokens_details\":{\"reasoning_tokens\":16},"
            "\"total_tokens\":66}") "}\n\n";
    stream_check(LLM_OPENAI_RESPONSES, inc, (want_t){50, 16, 0, 0, 16, 66, true}, &f);

    /* response.failed without usage: not seen */
    static const char failed[] = "event: response.failed\n"
                                 "data: {\"type\":\"response.failed\",\"sequence_number\":2,"
                                 "\"response\":" RESP_OBJ("failed", "null") "}\n\n";
    stream_check(LLM_OPENAI_RESPONSES, failed, (want_t){0, 0, 0, 0, 0, 0, false}, &f);
}

static void test_responses_body(void **state)
{
    (void)state;
    body_check(
        LLM_OPENAI_RESPONSES,
        "{\"id\":\"resp_67ccd2bed1ec8190b14f964abc054267\",\"object\":\"response\","
        "\"created_at\":1741476542,\"status\":\"completed\",\"model\":\"gpt-4.1-2025-04-14\","
        "\"output\":[{\"type\":\"message\",\"id\":\"msg_1\",\"status\":\"completed\","
        "\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hi\","
        "\"annotations\":[]}]}],\"usage\":{\"input_tokens\":36,\"input_tokens_details\":"
        "{\"cached_tokens\":0},\"output_tokens\":87,\"output_tokens_details\":"
        "{\"reasoning_tokens\":0},\"total_tokens\":123}}",
        (want_t){36, 87, 0, 0, 0, 123, true});
}

/* ---- Anthropic ------------------------------------------------------------ */

static const char anthropic_stream[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\","
    "\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":"
    "\"claude-sonnet-4-20250514\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":"
    "{\"input_tokens\":25,\"cache_creation_input_tokens\":1200,\"cache_read_input_tokens\":3000,"
    "\"output_tokens\":1,\"service_tier\":\"standard\"}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\","
    "\"thinking\":\"\",\"signature\":\"\"}}\n\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\","
    "\"thinking\":\"Let me think step by step.\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\","
    "\"signature\":\"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Hello! How can I help?\"}}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"pause_turn\","
    "\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
    "\"stop_sequence\":null},\"usage\":{\"output_tokens\":42}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

static void test_anthropic_stream(void **state)
{
    (void)state;
    feed_ctx_t f;
    /* input = 25 + 1200 + 3000; output: the last message_delta (42), not 15 + 42 */
    stream_check(LLM_ANTHROPIC, anthropic_stream, (want_t){4225, 42, 3000, 1200, 0, 4267, true},
                 &f);
    assert_int_equal(f.bad, 0);
    assert_int_equal(f.usage_only, 0);

    /* newer API versions repeat the input side in message_delta: taken */
    static const char newer[] =
        "event: message_start\n"
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\","
        "\"role\":\"assistant\",\"content\":[],\"model\":\"claude-opus-4-1\",\"usage\":"
        "{\"input_tokens\":472,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
        "\"output_tokens\":2}}}\n\n"
        "event: message_delta\n"
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":"
        "{\"input_tokens\":480,\"cache_creation_input_tokens\":100,\"cache_read_input_tokens\":"
        "50,\"output_tokens\":89,\"server_tool_use\":{\"web_search_requests\":1}}}\n\n";
    stream_check(LLM_ANTHROPIC, newer, (want_t){630, 89, 50, 100, 0, 719, true}, &f);
}

static void test_anthropic_truncated(void **state)
{
    (void)state;
    /* cut after the text delta: the input side is known from message_start,
     * output = max(1, ceil((26 + 22) / 4) = 12) */
    const char *cut = strstr(anthropic_stream, "event: message_delta");
    assert_non_null(cut);
    size_t n = (size_t)(cut - anthropic_stream);
    char *s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, anthropic_stream, n);
    s[n] = '\0';
    feed_ctx_t f;
    int fin = stream_check(LLM_ANTHROPIC, s, (want_t){4225, 12, 3000, 1200, 0, 4237, false}, &f);
    assert_int_equal(fin, SSE_END_CLEAN);
    free(s);

    /* an overloaded error mid-stream ends it without message_delta */
    static const char err[] =
        "event: message_start\n"
        "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,"
        "\"output_tokens\":1}}}\n\n"
        "event: content_block_delta\n"
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
        "\"input_json_delta\",\"partial_json\":\"{\\\"location\\\": \\\"San Fra\"}}\n\n"
        "event: error\n"
        "data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
        "\"Overloaded\"}}\n\n";
    /* partial_json decoded: {"location": "San Fra = 23 bytes -> 6 */
    stream_check(LLM_ANTHROPIC, err, (want_t){10, 6, 0, 0, 0, 16, false}, &f);
}

static void test_anthropic_body(void **state)
{
    (void)state;
    body_check(LLM_ANTHROPIC,
               "{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":"
               "\"assistant\",\"model\":\"claude-sonnet-4-20250514\",\"content\":[{\"type\":"
               "\"text\",\"text\":\"Hi! My name is Claude.\"}],\"stop_reason\":\"end_turn\","
               "\"stop_sequence\":null,\"usage\":{\"input_tokens\":2095,"
               "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":1800,"
               "\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":"
               "0},\"output_tokens\":503,\"service_tier\":\"standard\"}}",
               (want_t){3895, 503, 1800, 0, 0, 4398, true});
}

/* ---- Gemini --------------------------------------------------------------- */

static const char gemini_stream[] =
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"The\"}],\"role\": "
    "\"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 1500,"
    "\"totalTokenCount\": 1500,\"cachedContentTokenCount\": 1024,\"promptTokensDetails\": "
    "[{\"modality\": \"TEXT\",\"tokenCount\": 1500}]},\"modelVersion\": \"gemini-2.5-flash\","
    "\"responseId\": \"mJJxaOr9DZeBm9IPy_WqeA\"}\r\n\r\n"
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" quick brown fox jumps\"}],"
    "\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 1500,"
    "\"candidatesTokenCount\": 5,\"totalTokenCount\": 1605,\"cachedContentTokenCount\": 1024,"
    "\"thoughtsTokenCount\": 100},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": "
    "\"mJJxaOr9DZeBm9IPy_WqeA\"}\r\n\r\n"
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" over the lazy dog.\"}],"
    "\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": "
    "{\"promptTokenCount\": 1500,\"candidatesTokenCount\": 12,\"totalTokenCount\": 1612,"
    "\"cachedContentTokenCount\": 1024,\"thoughtsTokenCount\": 100,\"promptTokensDetails\": "
    "[{\"modality\": \"TEXT\",\"tokenCount\": 1500}],\"cacheTokensDetails\": [{\"modality\": "
    "\"TEXT\",\"tokenCount\": 1024}]},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": "
    "\"mJJxaOr9DZeBm9IPy_WqeA\"}\r\n\r\n";

static void test_gemini_stream(void **state)
{
    (void)state;
    feed_ctx_t f;
    /* cumulative: the last usageMetadata; output = candidates + thoughts */
    stream_check(LLM_GEMINI, gemini_stream, (want_t){1500, 112, 1024, 0, 100, 1612, true}, &f);
    assert_int_equal(f.bad, 0);

    /* cut before the last chunk: the partial figures (5 + 100 output) beat
     * the estimate ("The quick brown fox jumps" = 25 bytes -> 7) */
    const char *cut = strstr(gemini_stream, "data: {\"candidates\": [{\"content\": {\"parts\": "
                                            "[{\"text\": \" over");
    assert_non_null(cut);
    size_t n = (size_t)(cut - gemini_stream) + 10;
    char *s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, gemini_stream, n);
    s[n] = '\0';
    int fin = stream_check(LLM_GEMINI, s, (want_t){1500, 105, 1024, 0, 100, 1605, false}, &f);
    assert_int_equal(fin, SSE_END_TRUNCATED);
    free(s);

    /* cut after the first chunk: estimate wins (3 bytes -> 1 > 0) */
    cut = strstr(gemini_stream, "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": "
                                "\" quick");
    assert_non_null(cut);
    n = (size_t)(cut - gemini_stream);
    s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, gemini_stream, n);
    s[n] = '\0';
    stream_check(LLM_GEMINI, s, (want_t){1500, 1, 1024, 0, 0, 1501, false}, &f);
    free(s);
}

static void test_gemini_body(void **state)
{
    (void)state;
    static const char body[] =
        "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hello\"}],\"role\": \"model\"},"
        "\"finishReason\": \"STOP\",\"avgLogprobs\": -0.1}],\"usageMetadata\": "
        "{\"promptTokenCount\": 8,\"candidatesTokenCount\": 2,\"totalTokenCount\": 40,"
        "\"toolUsePromptTokenCount\": 5,\"thoughtsTokenCount\": 25},\"modelVersion\": "
        "\"gemini-2.5-pro\"}";
    body_check(LLM_GEMINI, body, (want_t){13, 27, 0, 0, 25, 40, true});

    /* streamGenerateContent without alt=sse: one JSON array of chunks */
    static const char arr[] =
        "[{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"A\"}],\"role\": \"model\"}}],"
        "\"usageMetadata\": {\"promptTokenCount\": 4,\"totalTokenCount\": 4}},\r\n"
        "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"B\"}],\"role\": \"model\"},"
        "\"finishReason\": \"STOP\"}],\"usageMetadata\": {\"promptTokenCount\": 4,"
        "\"candidatesTokenCount\": 2,\"totalTokenCount\": 6}}]";
    body_check(LLM_GEMINI, arr, (want_t){4, 2, 0, 0, 0, 6, true});

    /* a blocked prompt: no candidates, usage is final */
    static const char blocked[] =
        "data: {\"promptFeedback\": {\"blockReason\": \"SAFETY\"},\"usageMetadata\": "
        "{\"promptTokenCount\": 9,\"totalTokenCount\": 9}}\r\n\r\n";
    feed_ctx_t f;
    stream_check(LLM_GEMINI, blocked, (want_t){9, 0, 0, 0, 0, 9, true}, &f);
}

/* ---- errors and API ------------------------------------------------------- */

static void test_bad_data_and_names(void **state)
{
    (void)state;
    llm_usage_acc_t acc;
    llm_usage_init(&acc, LLM_OPENAI_CHAT);
    assert_int_equal(llm_usage_feed_event(&acc, "message", "{\"choices\":[", 12),
                     LLM_USAGE_EBADJSON);
    assert_string_equal(acc.err,
                        "event 'message': offset 12: unexpected end of input, expected a value");
    assert_int_equal(llm_usage_feed_body(&acc, "nope", 4), LLM_USAGE_EBADJSON);
    assert_string_equal(acc.err, "body: offset 0: invalid literal (expected 'null')");
    assert_int_equal(llm_usage_feed_event(&acc, NULL, "[DONE]", 6), LLM_USAGE_OK);
    acc.max_nodes = 2;
    assert_int_equal(llm_usage_feed_event(&acc, NULL, "[1,2,3]", 7), LLM_USAGE_ELIMIT);
    assert_int_equal(acc.bad_events, 3);
    assert_int_equal(acc.events, 3);
    /* still usable afterwards */
    acc.max_nodes = 0; /* 0 = default */
    const char *ok = "{\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,"
                     "\"total_tokens\":7}}";
    assert_int_equal(llm_usage_feed_event(&acc, NULL, ok, strlen(ok)), LLM_USAGE_OK);
    llm_usage_t u;
    llm_usage_get(&acc, &u);
    check_usage(&u, (want_t){3, 4, 0, 0, 0, 7, true});

    /* oversize SSE reports are ignored */
    sse_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.oversize = true;
    assert_int_equal(llm_usage_feed_sse(&acc, &ev), LLM_USAGE_OK);

    /* a fresh accumulator: nothing seen, estimated zero */
    llm_usage_init(&acc, LLM_ANTHROPIC);
    llm_usage_get(&acc, &u);
    check_usage(&u, (want_t){0, 0, 0, 0, 0, 0, false});

    llm_provider_t p;
    for (int i = LLM_OPENAI_CHAT; i <= LLM_GEMINI; i++) {
        assert_int_equal(llm_provider_parse(llm_provider_name((llm_provider_t)i), &p), 0);
        assert_int_equal(p, i);
    }
    assert_int_equal(llm_provider_parse("openai", &p), -1);
    assert_int_equal(llm_provider_parse(NULL, &p), -1);
    assert_string_equal(llm_provider_name((llm_provider_t)99), "?");
}

static void test_feed_value(void **state)
{
    (void)state;
    /* a relay that parsed the event itself */
    jval_doc_t *doc = NULL;
    const char *d = "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":7}}";
    assert_int_equal(jval_parse(d, strlen(d), 0, &doc, NULL, 0), JVAL_OK);
    llm_usage_acc_t acc;
    llm_usage_init(&acc, LLM_ANTHROPIC);
    assert_int_equal(llm_usage_feed_value(&acc, NULL, jval_root(doc), true), LLM_USAGE_OK);
    jval_free(doc);
    /* no "type" member: the SSE event name is used */
    d = "{\"usage\":{\"output_tokens\":9}}";
    assert_int_equal(jval_parse(d, strlen(d), 0, &doc, NULL, 0), JVAL_OK);
    assert_int_equal(llm_usage_feed_value(&acc, "message_delta", jval_root(doc), true),
                     LLM_USAGE_OK);
    jval_free(doc);
    llm_usage_t u;
    llm_usage_get(&acc, &u);
    check_usage(&u, (want_t){0, 9, 0, 0, 0, 9, true});
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_chat_stream),  cmocka_unit_test(test_openai_chat_truncated),
        cmocka_unit_test(test_openai_chat_body),    cmocka_unit_test(test_groq_and_mistral_stream),
        cmocka_unit_test(test_usage_only_detector), cmocka_unit_test(test_responses_stream),
        cmocka_unit_test(test_responses_body),      cmocka_unit_test(test_anthropic_stream),
        cmocka_unit_test(test_anthropic_truncated), cmocka_unit_test(test_anthropic_body),
        cmocka_unit_test(test_gemini_stream),       cmocka_unit_test(test_gemini_body),
        cmocka_unit_test(test_bad_data_and_names),  cmocka_unit_test(test_feed_value),
    };
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
