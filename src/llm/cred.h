/*
 * cred — the workspace token an agent sends where its SDK sends an API key,
 * and the provider key the gateway puts in its place.
 *
 * Official SDKs send their key in one of four headers, and an agent sends
 * its cdeguard workspace token the same way:
 *
 *   Authorization: Bearer T   OpenAI, Mistral, Groq SDKs (and most others)
 *   x-api-key: T              Anthropic SDK
 *   x-goog-api-key: T         Google GenAI SDK
 *   api-key: T                Azure OpenAI
 *
 * llm_cred_find() takes the token from whichever is present.  Closed by
 * default: no token is a 401; a header given twice, two headers with
 * different tokens, another Authorization scheme or a token with bytes
 * outside visible ASCII are refusals too (400/401), each with a message
 * that says what to send.  llm_cred_is_header() names every header that
 * can carry a credential, so none of them is forwarded upstream; the
 * provider's own is then set from llm_cred_upstream().
 *
 * Pure; results point into the message's arena (valid while it is).
 */
#ifndef CDEGUARD_LLM_CRED_H
#define CDEGUARD_LLM_CRED_H

#include <stdbool.h>
#include <stddef.h>

#include "http/http1.h"
#include "llm/route.h"

#define LLM_CRED_MAX_TOKEN 512

typedef struct llm_cred {
    const char *token; /* not NUL-terminated */
    size_t len;
    const char *header; /* the header it came in: "authorization", "x-api-key", ... */
} llm_cred_t;

/* 0 with *out set; -1 with *status (400 or 401) and msg. */
int llm_cred_find(const http_msg_t *m, llm_cred_t *out, int *status, char *msg, size_t msglen);

/* Is this request header (name of len bytes, any case) one that can carry
 * a credential? (the four above, and Proxy-Authorization) */
bool llm_cred_is_header(const char *name, size_t len);

/* The header that carries the provider key upstream for vendor v, and its
 * value for key written into buf ("Bearer <key>" or the key).  0 ok, -1 if
 * buf is too small. */
int llm_cred_upstream(llm_vendor_t v, const char *key, const char **name, char *buf, size_t buflen);

#endif
