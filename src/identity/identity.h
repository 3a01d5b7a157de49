/*
 * identity — attribute a proxy request to a configured workspace.
 *
 * Credentials (Proxy-Authorization Basic "id:token" or Bearer "token") win
 * over the source address; tokens are compared as SHA-256 digests with
 * CRYPTO_memcmp against every candidate (no early exit), so neither timing
 * nor the presence of a workspace id leaks.  Nothing here allocates or keeps
 * the token: it is hashed from the caller's buffer and forgotten.
 */
#ifndef CDEGUARD_IDENTITY_IDENTITY_H
#define CDEGUARD_IDENTITY_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

typedef enum {
    IDENT_OK = 0,        /* *ws set */
    IDENT_NONE = 1,      /* no credentials and no source match (or auth required) */
    IDENT_BAD_CREDS = 2, /* credentials present but wrong or malformed */
} ident_status_t;

typedef struct ident_result {
    ident_status_t status;
    const config_workspace_t *ws;
    int authenticated; /* 1 when attributed by a valid token */
    const char *rule;  /* "auth:missing", "auth:invalid", "auth:required" ... */
} ident_result_t;

/* `auth` is the Proxy-Authorization value (NULL/0 when absent). */
ident_result_t ident_attribute(const config_t *cfg, const netaddr_t *client, const char *auth,
                               size_t auth_len);

/* The workspace whose tokens include this one (a bare token, as sent to
 * the LLM gateway), or NULL.  Constant time over all configured tokens. */
const config_workspace_t *ident_workspace_by_token(const config_t *cfg, const char *token,
                                                   size_t len);

void ident_hash_token(const char *token, size_t len, uint8_t out[32]);

/* Strict RFC 4648 base64 decode (padding required, no whitespace).
 * Returns decoded length or -1. */
int ident_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap);

#endif
