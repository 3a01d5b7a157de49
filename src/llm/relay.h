/*
 * relay — a provider's streamed (SSE) response on its way to the client:
 * forwarded as it arrives, with usage counted from the same bytes.
 *
 * Two modes:
 *   - pass-through (the usual case): every byte is handed to the emit
 *     callback in the same call that brought it, from the caller's buffer
 *     (no copy, no buffering); the events are parsed alongside only to
 *     account usage (src/llm/usage).
 *   - strip (OpenAI chat, when the gateway added stream_options.
 *     include_usage for its own accounting and the client did not ask):
 *     the usage-only chunk must not reach the client, so the bytes of the
 *     event being received are held until its blank line arrives, then
 *     forwarded — or dropped if it is that chunk.  Bytes between events
 *     (blank lines, comments, the LF of a CRLF) are forwarded as they are.
 *     What is held is bounded by the SSE event limit.
 *
 * At any time llm_relay_usage() gives what the stream has used so far (the
 * provider's figures, or the estimate from the text streamed so far when a
 * client or upstream ends it early).
 *
 * Memory: the relay owns its SSE parser and its hold buffer (strip mode
 * only); llm_relay_free() releases them.  Emitted pointers are valid only
 * during the callback.
 *
 * Return values: 0 ok; the emit callback's non-zero value (the relay stops:
 * e.g. the client went away); -1 out of memory or a parser error (message
 * in r->err).
 */
#ifndef CDEGUARD_LLM_RELAY_H
#define CDEGUARD_LLM_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llm/sse.h"
#include "llm/usage.h"

/* Bytes to send to the client now; non-zero stops the relay. */
typedef int (*llm_relay_emit_fn)(const char *data, size_t len, void *ctx);

typedef struct llm_relay {
    sse_parser_t sse;
    llm_usage_acc_t usage;
    bool strip_usage_chunk;
    llm_relay_emit_fn emit;
    void *ctx;
    /* strip mode: the bytes [fwd, fwd + hold.len) of the stream not yet
     * forwarded; the current chunk while it is being parsed */
    uint64_t fwd;
    char *hold;
    size_t hold_len, hold_cap;
    uint64_t stripped; /* events dropped */
    int emit_rc;       /* a non-zero emit result, once seen */
    char err[160];
} llm_relay_t;

/* max_event 0: SSE_DEFAULT_MAX_EVENT.  strip_usage_chunk only makes sense
 * for LLM_OPENAI_CHAT. */
void llm_relay_init(llm_relay_t *r, llm_provider_t provider, bool strip_usage_chunk,
                    size_t max_event, llm_relay_emit_fn emit, void *ctx);
void llm_relay_free(llm_relay_t *r);

/* Upstream bytes, in order. */
int llm_relay_feed(llm_relay_t *r, const char *data, size_t len);

/* End of the upstream stream: whatever is still held is forwarded (an
 * incomplete last event is the client's to judge). */
int llm_relay_finish(llm_relay_t *r);

void llm_relay_usage(const llm_relay_t *r, llm_usage_t *out);

#endif
