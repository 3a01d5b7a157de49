/*
 * errors — provider-shaped error bodies (see errors.h for the formats).
 *
 * The body is assembled with snprintf into the caller's buffer; the only
 * variable-length parts, the message and the code, are escaped and bounded
 * first, so the result always fits LLM_ERROR_MAX_BODY.
 */
#include "llm/errors.h"

#include <stdio.h>
#include <string.h>

#include "core/utf8.h"

/* Escaped message: at most 6 bytes of output per input byte. */
#define ESCAPED_MAX (LLM_ERROR_MAX_MESSAGE * 6 + 1)

const char *llm_error_type(llm_errfmt_t fmt, int status)
{
    if (fmt == LLM_ERRFMT_GEMINI) {
        switch (status) {
        case 400:
        case 413:
            return "INVALID_ARGUMENT";
        case 401:
            return "UNAUTHENTICATED";
        case 403:
            return "PERMISSION_DENIED";
        case 404:
            return "NOT_FOUND";
        case 429:
            return "RESOURCE_EXHAUSTED";
        case 502:
        case 503:
            return "UNAVAILABLE";
        case 504:
            return "DEADLINE_EXCEEDED";
        default:
            return status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
        }
    }
    switch (status) {
    case 400:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return fmt == LLM_ERRFMT_ANTHROPIC ? "request_too_large" : "invalid_request_error";
    case 429:
        return "rate_limit_error";
    case 529:
        return fmt == LLM_ERRFMT_ANTHROPIC ? "overloaded_error" : "server_error";
    default:
        if (status >= 500) return fmt == LLM_ERRFMT_ANTHROPIC ? "api_error" : "server_error";
        return "invalid_request_error";
    }
}

/* s (NUL-terminated, may be NULL) escaped for a JSON string body, at most
 * `max` input bytes, cut on a character boundary. */
static void escape(const char *s, size_t max, char *out)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t full = strnlen((const char *)p, max + 1), n = full > max ? max : full, o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(out + o, "\\u00", 4);
            out[o + 4] = hex[c >> 4];
            out[o + 5] = hex[c & 15];
            o += 6;
            i++;
        } else if (c < 0x80) {
            out[o++] = (char)c;
            i++;
        } else {
            size_t k = utf8_seq_len(p + i, n - i); /* 0 also when cut mid-character */
            if (k == 0) {
                if (n - i < 4 && n < full) break; /* a character cut at `max`: stop */
                memcpy(out + o, "\\ufffd", 6);
                o += 6;
                i++;
            } else {
                memcpy(out + o, p + i, k);
                o += k;
                i += k;
            }
        }
    }
    out[o] = '\0';
}

int llm_error_body(llm_errfmt_t fmt, int status, const char *message, const char *code, char *out,
                   size_t outlen)
{
    char msg[ESCAPED_MAX], cd[6 * 64 + 1];
    int n;
    if (!out || outlen < LLM_ERROR_MAX_BODY || status < 100 || status > 599) return -1;
    escape(message, LLM_ERROR_MAX_MESSAGE, msg);
    escape(code, 64, cd);
    const char *type = llm_error_type(fmt, status);
    switch (fmt) {
    case LLM_ERRFMT_OPENAI:
        if (code)
            n = snprintf(out, outlen,
                         "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":null,"
                         "\"code\":\"%s\"}}",
                         msg, type, cd);
        else
            n = snprintf(out, outlen,
                         "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":null,"
                         "\"code\":null}}",
                         msg, type);
        break;
    case LLM_ERRFMT_ANTHROPIC:
        n = snprintf(out, outlen,
                     "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"%s\"}}", type,
                     msg);
        break;
    case LLM_ERRFMT_GEMINI:
        n = snprintf(out, outlen, "{\"error\":{\"code\":%d,\"message\":\"%s\",\"status\":\"%s\"}}",
                     status, msg, type);
        break;
    default:
        return -1;
    }
    return n > 0 && (size_t)n < outlen ? n : -1;
}
