/*
 * errors — refusals in each LLM provider's own error format.
 *
 * When the gateway refuses a call (bad token, secret in the prompt, model
 * not allowed, budget spent, upstream down), the agent's official SDK must
 * surface a readable error, so the body has the shape the provider itself
 * sends for that status:
 *
 *   OpenAI (also Azure OpenAI, Mistral, Groq: OpenAI-compatible)
 *     {"error":{"message":M,"type":T,"param":null,"code":C}}
 *   Anthropic
 *     {"type":"error","error":{"type":T,"message":M}}
 *   Gemini (Google APIs)
 *     {"error":{"code":STATUS,"message":M,"status":S}}
 *
 * with T / S chosen from the HTTP status (llm_error_type()).  C is a
 * cdeguard reason such as "cdeguard_secret_blocked", so a script can tell
 * the gateway's refusals from the provider's.
 *
 * The message is JSON-escaped (control bytes as \u00XX, invalid UTF-8 as
 * U+FFFD) and cut at LLM_ERROR_MAX_MESSAGE bytes on a character boundary;
 * the body always fits in LLM_ERROR_MAX_BODY bytes.  Pure: writes only to
 * the caller's buffer.
 */
#ifndef CDEGUARD_LLM_ERRORS_H
#define CDEGUARD_LLM_ERRORS_H

#include <stddef.h>

#define LLM_ERROR_MAX_MESSAGE 512
#define LLM_ERROR_MAX_BODY 4096

typedef enum llm_errfmt {
    LLM_ERRFMT_OPENAI = 0,
    LLM_ERRFMT_ANTHROPIC,
    LLM_ERRFMT_GEMINI,
} llm_errfmt_t;

/* The error type (OpenAI, Anthropic) or status (Gemini) for an HTTP status,
 * e.g. 401 -> "authentication_error" / "authentication_error" /
 * "UNAUTHENTICATED".  Never NULL. */
const char *llm_error_type(llm_errfmt_t fmt, int status);

/* The error body into out (NUL-terminated); its length, or -1 when out is
 * smaller than LLM_ERROR_MAX_BODY or fmt/status are out of range (100..599).
 * code may be NULL (OpenAI "code": null; not used by the other formats). */
int llm_error_body(llm_errfmt_t fmt, int status, const char *message, const char *code, char *out,
                   size_t outlen);

#endif
