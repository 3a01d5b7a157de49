/*
 * usage — token usage accounting from LLM provider responses.
 *
 * An accumulator (llm_usage_acc_t) is fed either one non-streaming JSON
 * response body, or the SSE events of one streaming response in order, and
 * yields one normalised llm_usage_t.  It reads the provider's own figures;
 * when the stream ends before they arrive (client abort, upstream reset) it
 * estimates the output from the text deltas seen: ceil(bytes / 4).
 *
 * Normalised meaning (the same for every provider):
 *   input       all prompt tokens, cached or not: input = uncached +
 *               cache_read + cache_write
 *   cache_read  the part of input read from the provider's prompt cache
 *   cache_write the part of input written to the prompt cache (Anthropic
 *               only; 0 elsewhere)
 *   output      all generated tokens, reasoning/thinking included
 *   reasoning   the reasoning part of output, when the provider reports it
 *   total       the provider's total when it gives one, else input + output
 *
 * Per provider (field names as in the public API documentation):
 *   OPENAI_CHAT  usage.prompt_tokens (includes cached) -> input;
 *                usage.prompt_tokens_details.cached_tokens -> cache_read
 *                (DeepSeek's usage.prompt_cache_hit_tokens when absent);
 *                usage.completion_tokens (includes reasoning) -> output;
 *                usage.completion_tokens_details.reasoning_tokens ->
 *                reasoning; usage.total_tokens -> total.  Streaming: the
 *                chunk whose "usage" is an object (with include_usage, the
 *                last chunk, "choices": []); other chunks have "usage": null.
 *                Groq sends the same object as x_groq.usage; Mistral and
 *                other OpenAI-compatible APIs use this shape.  The last
 *                usage object seen wins.
 *   OPENAI_RESPONSES  usage.input_tokens (includes cached) -> input;
 *                input_tokens_details.cached_tokens -> cache_read;
 *                output_tokens (includes reasoning) -> output;
 *                output_tokens_details.reasoning_tokens -> reasoning;
 *                total_tokens -> total.  Streaming: response.usage of the
 *                terminal events response.completed, response.incomplete
 *                and response.failed.
 *   ANTHROPIC    usage.input_tokens EXCLUDES cache reads and writes, so
 *                input = input_tokens + cache_creation_input_tokens +
 *                cache_read_input_tokens; cache_write =
 *                cache_creation_input_tokens; cache_read =
 *                cache_read_input_tokens; output = output_tokens (thinking
 *                included, not reported apart: reasoning = 0); total =
 *                input + output.  Streaming: message_start.message.usage
 *                gives the input side (and a provisional output_tokens);
 *                message_delta.usage.output_tokens is CUMULATIVE: the last
 *                one wins, never summed; input/cache fields present in a
 *                message_delta replace the earlier ones.  The figures are
 *                final once a message_delta with usage is seen.
 *   GEMINI       usageMetadata.promptTokenCount (includes cached) +
 *                toolUsePromptTokenCount -> input; cachedContentTokenCount
 *                -> cache_read; candidatesTokenCount + thoughtsTokenCount ->
 *                output; thoughtsTokenCount -> reasoning; totalTokenCount ->
 *                total.  Every streamed chunk carries the cumulative
 *                usageMetadata: the last one wins; it is final when it comes
 *                with (or after) a candidate's finishReason or a
 *                promptFeedback.blockReason.  A non-SSE streamGenerateContent
 *                body (a JSON array of chunks) is accepted as a body.
 *
 * Estimation (when the final figures were not seen): output = max(the
 * provider's partial output, ceil(text bytes / 4)), where text bytes are
 * the bytes of the decoded output text deltas: OpenAI chat
 * choices[].delta.content / reasoning_content / refusal /
 * tool_calls[].function.arguments; Responses *.delta of
 * response.output_text.delta, response.refusal.delta,
 * response.reasoning_text.delta, response.reasoning_summary_text.delta and
 * response.function_call_arguments.delta; Anthropic content_block_delta
 * delta.text / thinking / partial_json; Gemini
 * candidates[].content.parts[].text (the same fields of a non-streaming
 * body's messages).  input, cache_read, cache_write and reasoning keep
 * whatever partial figures were seen (Anthropic's message_start, Gemini's
 * early chunks) or 0; total = input + output; estimated = true.
 *
 * Return values of the feed functions: LLM_USAGE_OK (also for events that
 * carry nothing of interest, and for OpenAI's "[DONE]"), LLM_USAGE_EBADJSON
 * (the data is not JSON: the event is skipped, counted, and described in
 * a->err), LLM_USAGE_ELIMIT (larger than the node limit).  A token figure
 * that is not a non-negative integer is treated as absent.
 *
 * Memory: the accumulator is a plain value (no heap); each feed parses into
 * a temporary jval document freed before it returns.
 */
#ifndef CDEGUARD_LLM_USAGE_H
#define CDEGUARD_LLM_USAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/jval.h"
#include "llm/sse.h"

#define LLM_USAGE_OK 0
#define LLM_USAGE_EBADJSON (-1)
#define LLM_USAGE_ELIMIT (-2)

#define LLM_USAGE_DEFAULT_MAX_NODES ((size_t)1 << 18)

typedef enum llm_provider {
    LLM_OPENAI_CHAT = 0,
    LLM_OPENAI_RESPONSES,
    LLM_ANTHROPIC,
    LLM_GEMINI,
} llm_provider_t;

typedef struct llm_usage {
    uint64_t input, output, cache_read, cache_write, reasoning, total;
    bool seen;      /* the provider's own final figures were seen */
    bool estimated; /* == !seen: output is (at least partly) estimated */
} llm_usage_t;

typedef struct llm_usage_acc {
    llm_provider_t provider;
    size_t max_nodes; /* per event / body; LLM_USAGE_DEFAULT_MAX_NODES */

    /* the provider's figures as reported, before normalisation (private) */
    uint64_t r_input;    /* prompt_tokens / input_tokens / promptTokenCount */
    uint64_t r_extra_in; /* Gemini toolUsePromptTokenCount */
    uint64_t r_cache_read, r_cache_write;
    uint64_t r_output; /* completion_tokens / output_tokens / candidatesTokenCount */
    uint64_t r_reasoning, r_total;
    bool r_has_total;
    bool any;             /* some provider figure was seen */
    bool final;           /* the final figures were seen */
    bool gemini_finished; /* a finishReason / blockReason was seen */

    uint64_t text_bytes; /* output text delta bytes (for the estimate) */
    uint64_t events;     /* events / bodies fed */
    uint64_t bad_events; /* of which not JSON or over the limit */
    char err[160];
} llm_usage_acc_t;

void llm_usage_init(llm_usage_acc_t *a, llm_provider_t provider);

/* A whole non-streaming response body. */
int llm_usage_feed_body(llm_usage_acc_t *a, const char *body, size_t len);

/* One SSE event of a streaming response: its type (the SSE event name, used
 * when the data has no "type" member; may be NULL) and its data. */
int llm_usage_feed_event(llm_usage_acc_t *a, const char *type, const char *data, size_t len);
int llm_usage_feed_sse(llm_usage_acc_t *a, const sse_event_t *ev); /* oversize: ignored */

/* The same with data already parsed (a relay that parses each event once). */
int llm_usage_feed_value(llm_usage_acc_t *a, const char *type, const jval_t *root, bool streaming);

/* The normalised usage so far (estimated when the final figures are missing). */
void llm_usage_get(const llm_usage_acc_t *a, llm_usage_t *out);

/* True for OpenAI's usage-only chunk (stream_options.include_usage): an
 * object whose "usage" is an object and whose "choices" is an empty array.
 * A relay that added include_usage for accounting strips that event for a
 * client that did not ask for it. */
bool llm_usage_openai_usage_only(const jval_t *chunk);
/* The same on raw event data: 1 yes, 0 no (or not JSON). */
int llm_usage_openai_usage_only_data(const char *data, size_t len);

const char *llm_provider_name(llm_provider_t p); /* "openai-chat", ..., "?" */
/* "openai-chat" | "openai-responses" | "anthropic" | "gemini": 0, else -1. */
int llm_provider_parse(const char *name, llm_provider_t *out);

#endif
