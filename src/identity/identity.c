/*
 * identity — workspace attribution by Proxy-Authorization or source CIDR.
 *
 * Invariant: every token comparison runs over all stored digests of the
 * candidate set, so the time taken depends only on the number of stored
 * tokens, not on where (or whether) a match is.  Decoded credentials live in
 * a stack buffer that is cleansed (OPENSSL_cleanse) before return.
 */
#include "identity/identity.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>
#include <strings.h>

#define AUTH_MAX 1024

void ident_hash_token(const char *token, size_t len, uint8_t out[32])
{
    SHA256((const unsigned char *)token, len, out);
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int ident_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    if (len % 4 != 0) return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)in[i + (size_t)k];
            if (c == '=') {
                /* padding only in the last quantum, only in the last two places */
                if (i + 4 != len || k < 2) return -1;
                pad++;
                v[k] = 0;
                continue;
            }
            if (pad) return -1;
            v[k] = b64_value(c);
            if (v[k] < 0) return -1;
        }
        uint32_t q = ((uint32_t)v[0] << 18) | ((uint32_t)v[1] << 12) | ((uint32_t)v[2] << 6) |
                     (uint32_t)v[3];
        int nbytes = 3 - pad;
        if (o + (size_t)nbytes > cap) return -1;
        out[o++] = (uint8_t)(q >> 16);
        if (nbytes > 1) out[o++] = (uint8_t)(q >> 8);
        if (nbytes > 2) out[o++] = (uint8_t)q;
    }
    return (int)o;
}

/* Constant-time over all tokens of ws: returns 1 when one matches. */
static int workspace_token_match(const config_workspace_t *ws, const uint8_t digest[32])
{
    int found = 0;
    for (size_t i = 0; i < ws->ntokens; i++)
        found |= CRYPTO_memcmp(ws->tokens[i].sha256, digest, 32) == 0;
    return found;
}

const config_workspace_t *ident_workspace_by_token(const config_t *cfg, const char *token,
                                                   size_t len)
{
    if (!token || len == 0 || len > AUTH_MAX) return NULL;
    uint8_t digest[32];
    ident_hash_token(token, len, digest);
    const config_workspace_t *match = NULL;
    /* every workspace is compared (no early exit) */
    for (size_t i = 0; i < cfg->nworkspaces; i++)
        if (workspace_token_match(&cfg->workspaces[i], digest) && !match)
            match = &cfg->workspaces[i];
    OPENSSL_cleanse(digest, sizeof digest);
    return match;
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

static ident_result_t attribute_credentials(const config_t *cfg, const char *auth, size_t len)
{
    ident_result_t r = {
        .status = IDENT_BAD_CREDS, .ws = NULL, .authenticated = 0, .rule = "auth:invalid"};
    const char *p = auth, *end = auth + len;
    p = skip_ws(p, end);
    const char *scheme = p;
    while (p < end && *p != ' ')
        p++;
    size_t scheme_len = (size_t)(p - scheme);
    p = skip_ws(p, end);
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t cred_len = (size_t)(end - p);
    if (cred_len == 0 || cred_len > AUTH_MAX) return r;

    uint8_t digest[32];
    if (scheme_len == 5 && strncasecmp(scheme, "Basic", 5) == 0) {
        uint8_t dec[AUTH_MAX];
        int n = ident_base64_decode(p, cred_len, dec, sizeof dec);
        if (n <= 0) return r;
        uint8_t *colon = memchr(dec, ':', (size_t)n);
        if (!colon) {
            OPENSSL_cleanse(dec, sizeof dec);
            return r;
        }
        size_t id_len = (size_t)(colon - dec);
        const char *tok = (const char *)colon + 1;
        size_t tok_len = (size_t)n - id_len - 1;
        ident_hash_token(tok, tok_len, digest);
        const config_workspace_t *match = NULL;
        for (size_t i = 0; i < cfg->nworkspaces; i++) {
            const config_workspace_t *ws = &cfg->workspaces[i];
            if (strlen(ws->id) == id_len && memcmp(ws->id, dec, id_len) == 0) match = ws;
        }
        OPENSSL_cleanse(dec, sizeof dec);
        /* Compare even when the id is unknown, against an impossible digest
         * set, so the work done does not reveal which ids exist. */
        if (match && workspace_token_match(match, digest) && tok_len > 0) {
            r.status = IDENT_OK;
            r.ws = match;
            r.authenticated = 1;
            r.rule = NULL;
        }
    } else if (scheme_len == 6 && strncasecmp(scheme, "Bearer", 6) == 0) {
        const config_workspace_t *match = ident_workspace_by_token(cfg, p, cred_len);
        if (match) {
            r.status = IDENT_OK;
            r.ws = match;
            r.authenticated = 1;
            r.rule = NULL;
        }
    }
    OPENSSL_cleanse(digest, sizeof digest);
    return r;
}

ident_result_t ident_attribute(const config_t *cfg, const netaddr_t *client, const char *auth,
                               size_t auth_len)
{
    if (auth && auth_len > 0) return attribute_credentials(cfg, auth, auth_len);

    ident_result_t r = {
        .status = IDENT_NONE, .ws = NULL, .authenticated = 0, .rule = "auth:missing"};
    for (size_t i = 0; i < cfg->nworkspaces; i++) {
        const config_workspace_t *ws = &cfg->workspaces[i];
        if (cidrset_match(&ws->sources, client) >= 0) {
            if (ws->policy && ws->policy->require_auth) {
                r.rule = "auth:required";
                return r;
            }
            r.status = IDENT_OK;
            r.ws = ws;
            r.rule = NULL;
            return r;
        }
    }
    return r;
}
