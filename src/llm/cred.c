/*
 * cred — workspace token in, provider key out (see cred.h).
 */
#include "llm/cred.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const cred_headers[] = {"authorization", "x-api-key", "x-goog-api-key",
                                           "api-key"};
#define NCRED (sizeof cred_headers / sizeof cred_headers[0])

static int cred_fail(int *status, int code, char *msg, size_t msglen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int cred_fail(int *status, int code, char *msg, size_t msglen, const char *fmt, ...)
{
    va_list ap;
    *status = code;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
    return -1;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

bool llm_cred_is_header(const char *name, size_t len)
{
    for (size_t i = 0; i < NCRED; i++)
        if (strlen(cred_headers[i]) == len && strncasecmp(cred_headers[i], name, len) == 0)
            return true;
    return len == 19 && strncasecmp(name, "proxy-authorization", len) == 0;
}

int llm_cred_find(const http_msg_t *m, llm_cred_t *out, int *status, char *msg, size_t msglen)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < NCRED; i++) {
        size_t count = 0;
        const http_header_t *h = http_msg_header(m, cred_headers[i], &count);
        if (!h) continue;
        if (count > 1)
            return cred_fail(status, 400, msg, msglen, "the %s header is given %zu times",
                             cred_headers[i], count);
        const char *v = http_ptr(m, h->value);
        size_t n = h->value.len;
        while (n && is_blank(v[0]))
            v++, n--;
        while (n && is_blank(v[n - 1]))
            n--;
        if (i == 0) { /* Authorization: Bearer <token> */
            if (n < 7 || strncasecmp(v, "bearer", 6) != 0 || !is_blank(v[6]))
                return cred_fail(status, 401, msg, msglen,
                                 "Authorization must be 'Bearer <workspace token>'");
            v += 7, n -= 7;
            while (n && is_blank(v[0]))
                v++, n--;
        }
        if (n == 0)
            return cred_fail(status, 401, msg, msglen, "the %s header is empty", cred_headers[i]);
        if (n > LLM_CRED_MAX_TOKEN)
            return cred_fail(status, 401, msg, msglen, "the token in %s is too long",
                             cred_headers[i]);
        for (size_t k = 0; k < n; k++)
            if ((unsigned char)v[k] <= 0x20 || (unsigned char)v[k] >= 0x7f)
                return cred_fail(status, 401, msg, msglen,
                                 "the token in %s has a byte that is not visible ASCII",
                                 cred_headers[i]);
        if (out->token && (out->len != n || memcmp(out->token, v, n) != 0))
            return cred_fail(status, 401, msg, msglen,
                             "two different tokens (in %s and %s): send one workspace token",
                             out->header, cred_headers[i]);
        if (!out->token) {
            out->token = v;
            out->len = n;
            out->header = cred_headers[i];
        }
    }
    if (!out->token)
        return cred_fail(status, 401, msg, msglen,
                         "no workspace token: send it where the SDK sends its API key "
                         "(Authorization: Bearer, x-api-key, x-goog-api-key or api-key)");
    return 0;
}

int llm_cred_upstream(llm_vendor_t v, const char *key, const char **name, char *buf, size_t buflen)
{
    int n;
    switch (v) {
    case LLM_VENDOR_ANTHROPIC:
        *name = "x-api-key";
        n = snprintf(buf, buflen, "%s", key);
        break;
    case LLM_VENDOR_GEMINI:
        *name = "x-goog-api-key";
        n = snprintf(buf, buflen, "%s", key);
        break;
    case LLM_VENDOR_AZURE:
        *name = "api-key";
        n = snprintf(buf, buflen, "%s", key);
        break;
    default: /* OpenAI, Mistral, Groq */
        *name = "Authorization";
        n = snprintf(buf, buflen, "Bearer %s", key);
        break;
    }
    return n >= 0 && (size_t)n < buflen ? 0 : -1;
}
