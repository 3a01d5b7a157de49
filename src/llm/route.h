/*
 * route — which provider and which API a gateway request is for.
 *
 * An official SDK works through the gateway by setting only its base URL,
 * so the provider is named by a path prefix, or by the x-llm-provider
 * header (as in Envoy deployments, where the path is the provider's own):
 *
 *   /openai/v1/chat/completions | /responses | /embeddings
 *   /azure/openai/deployments/{deployment}/chat/completions | /embeddings
 *   /anthropic/v1/messages | /v1/messages/count_tokens
 *   /gemini/{v1,v1beta}/models/{model}:generateContent | :streamGenerateContent
 *   /mistral/v1/chat/completions | /v1/embeddings
 *   /groq/openai/v1/chat/completions        (Groq's own base is .../openai/v1)
 *
 * llm_route() strips the prefix (the header form has none), checks the
 * endpoint against the provider's API, and says how to treat the call:
 * the schema of its body (an llm_request_kind_t), the error shape for
 * refusals, how its usage is reported, the model when the path names it (Gemini, Azure deployments)
 * and whether the endpoint itself streams (Gemini; alt=sse).  The query
 * string is kept on the upstream path.
 *
 * Pure; the result points into the caller's path or into the fixed buffers
 * of the llm_route_t.  Errors: -1 with an HTTP status (404 unknown provider
 * or endpoint, 405 method, 400 bad header or path) and a message.
 */
#ifndef CDEGUARD_LLM_ROUTE_H
#define CDEGUARD_LLM_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "llm/errors.h"
#include "llm/request.h"
#include "llm/usage.h"

#define LLM_ROUTE_MAX_MODEL 256
#define LLM_ROUTE_MAX_PATH 2048

typedef enum llm_vendor {
    LLM_VENDOR_OPENAI = 0,
    LLM_VENDOR_AZURE,
    LLM_VENDOR_ANTHROPIC,
    LLM_VENDOR_GEMINI,
    LLM_VENDOR_MISTRAL,
    LLM_VENDOR_GROQ,
    LLM_VENDOR_COUNT
} llm_vendor_t;

typedef struct llm_route {
    llm_vendor_t vendor;
    llm_request_kind_t kind;                /* the body's schema (src/llm/request) */
    llm_errfmt_t errfmt;                    /* refusals in this shape */
    llm_provider_t usage;                   /* how usage is reported */
    bool endpoint_streams;                  /* Gemini streamGenerateContent */
    bool sse;                               /* ... with alt=sse (else a JSON array) */
    char model[LLM_ROUTE_MAX_MODEL];        /* from the path, or "" */
    char upstream_path[LLM_ROUTE_MAX_PATH]; /* path (and query) to send upstream */
} llm_route_t;

/* method, the request target (path and query, as received) and the value
 * of x-llm-provider (NULL when absent).  0 ok; -1 with *status and msg. */
int llm_route(const char *method, const char *target, const char *provider_header, llm_route_t *out,
              int *status, char *msg, size_t msglen);

/* The same when the caller already chose the provider (the gateway maps
 * its configured provider names to a vendor): target is the provider's own
 * path and query, without any prefix. */
int llm_route_vendor(const char *method, llm_vendor_t v, const char *target, llm_route_t *out,
                     int *status, char *msg, size_t msglen);

/* The error shape of a vendor's API (Azure, Mistral, Groq: OpenAI's). */
llm_errfmt_t llm_vendor_errfmt(llm_vendor_t v);
const char *llm_vendor_name(llm_vendor_t v);                           /* "openai", ..., "?" */
int llm_vendor_parse(const char *name, size_t len, llm_vendor_t *out); /* 0 / -1 */

#endif
