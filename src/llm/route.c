/*
 * route — provider and API of a gateway request (see route.h).
 *
 * The endpoint tables are exact: a path that is not one of them (other
 * versions, traversal, doubled slashes, odd characters in a model name) is
 * a 404, never a guess.  The vendor prefix is one path segment; with the
 * x-llm-provider header the path is the provider's own (a prefix equal to
 * the header's vendor is accepted and stripped too).
 */
#include "llm/route.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const vendor_names[LLM_VENDOR_COUNT] = {"openai", "azure",   "anthropic",
                                                           "gemini", "mistral", "groq"};

const char *llm_vendor_name(llm_vendor_t v)
{
    return (unsigned)v < LLM_VENDOR_COUNT ? vendor_names[v] : "?";
}

llm_errfmt_t llm_vendor_errfmt(llm_vendor_t v)
{
    return v == LLM_VENDOR_ANTHROPIC ? LLM_ERRFMT_ANTHROPIC
           : v == LLM_VENDOR_GEMINI  ? LLM_ERRFMT_GEMINI
                                     : LLM_ERRFMT_OPENAI;
}

int llm_vendor_parse(const char *name, size_t len, llm_vendor_t *out)
{
    for (size_t i = 0; i < LLM_VENDOR_COUNT; i++)
        if (strlen(vendor_names[i]) == len && strncasecmp(vendor_names[i], name, len) == 0) {
            *out = (llm_vendor_t)i;
            return 0;
        }
    return -1;
}

static int route_fail(int *status, int code, char *msg, size_t msglen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int route_fail(int *status, int code, char *msg, size_t msglen, const char *fmt, ...)
{
    va_list ap;
    *status = code;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
    return -1;
}

/* A model or deployment name: 1..255 of [A-Za-z0-9._-]. */
static bool name_ok(const char *s, size_t n)
{
    if (n == 0 || n >= LLM_ROUTE_MAX_MODEL) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return !(n <= 2 && s[0] == '.'); /* not "." or ".." */
}

static bool eq(const char *p, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(p, lit, n) == 0;
}

static bool starts(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n >= l && memcmp(p, lit, l) == 0;
}

/* path p[0..n) (the provider's own path, no query) → out->kind / model /
 * upstream prefix rewrite.  0 ok, -1 no such endpoint. */
static int match_endpoint(llm_vendor_t v, const char *p, size_t n, llm_route_t *out,
                          const char **rewrite)
{
    *rewrite = NULL;
    switch (v) {
    case LLM_VENDOR_OPENAI:
    case LLM_VENDOR_MISTRAL:
        if (eq(p, n, "/v1/chat/completions"))
            out->kind = LLM_REQ_OPENAI_CHAT;
        else if (eq(p, n, "/v1/embeddings"))
            out->kind = LLM_REQ_OPENAI_EMBEDDINGS;
        else if (v == LLM_VENDOR_OPENAI && eq(p, n, "/v1/responses"))
            out->kind = LLM_REQ_OPENAI_RESPONSES;
        else
            return -1;
        return 0;
    case LLM_VENDOR_GROQ:
        if (eq(p, n, "/openai/v1/chat/completions")) {
            out->kind = LLM_REQ_OPENAI_CHAT;
        } else if (eq(p, n, "/v1/chat/completions")) {
            out->kind = LLM_REQ_OPENAI_CHAT;
            *rewrite = "/openai/v1/chat/completions";
        } else {
            return -1;
        }
        return 0;
    case LLM_VENDOR_AZURE: {
        static const char dep[] = "/openai/deployments/";
        if (eq(p, n, "/openai/v1/chat/completions")) {
            out->kind = LLM_REQ_OPENAI_CHAT;
            return 0;
        }
        if (eq(p, n, "/openai/v1/responses")) {
            out->kind = LLM_REQ_OPENAI_RESPONSES;
            return 0;
        }
        if (!starts(p, n, dep)) return -1;
        const char *d = p + sizeof dep - 1;
        const char *slash = memchr(d, '/', n - (size_t)(d - p));
        if (!slash || !name_ok(d, (size_t)(slash - d))) return -1;
        size_t rest = n - (size_t)(slash - p);
        if (eq(slash, rest, "/chat/completions"))
            out->kind = LLM_REQ_OPENAI_CHAT;
        else if (eq(slash, rest, "/embeddings"))
            out->kind = LLM_REQ_OPENAI_EMBEDDINGS;
        else
            return -1;
        memcpy(out->model, d, (size_t)(slash - d));
        out->model[slash - d] = '\0';
        return 0;
    }
    case LLM_VENDOR_ANTHROPIC:
        if (eq(p, n, "/v1/messages"))
            out->kind = LLM_REQ_ANTHROPIC_MESSAGES;
        else if (eq(p, n, "/v1/messages/count_tokens"))
            out->kind = LLM_REQ_ANTHROPIC_COUNT_TOKENS;
        else
            return -1;
        return 0;
    case LLM_VENDOR_GEMINI: {
        const char *m;
        if (starts(p, n, "/v1beta/models/"))
            m = p + strlen("/v1beta/models/");
        else if (starts(p, n, "/v1/models/"))
            m = p + strlen("/v1/models/");
        else
            return -1;
        const char *colon = memchr(m, ':', n - (size_t)(m - p));
        if (!colon || !name_ok(m, (size_t)(colon - m))) return -1;
        size_t rest = n - (size_t)(colon - p);
        if (eq(colon, rest, ":streamGenerateContent"))
            out->endpoint_streams = true;
        else if (!eq(colon, rest, ":generateContent"))
            return -1;
        out->kind = LLM_REQ_GEMINI_GENERATE;
        memcpy(out->model, m, (size_t)(colon - m));
        out->model[colon - m] = '\0';
        return 0;
    }
    default:
        return -1;
    }
}

/* Does the query string (no '?') have alt=sse? */
static bool query_alt_sse(const char *q)
{
    for (const char *p = q; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t l = amp ? (size_t)(amp - p) : strlen(p);
        if (l == 7 && memcmp(p, "alt=sse", 7) == 0) return true;
        p = amp ? amp + 1 : NULL;
    }
    return false;
}

/* Method, target and length checks common to both entry points; *q gets
 * the query ("?..." or NULL) and *plen the length of the path before it. */
static int route_check(const char *method, const char *target, const char **q, size_t *plen,
                       int *status, char *msg, size_t msglen)
{
    if (!target || target[0] != '/')
        return route_fail(status, 400, msg, msglen, "the request target must be a path");
    if (!method || strcmp(method, "POST") != 0)
        return route_fail(status, 405, msg, msglen,
                          "method %.16s not allowed: the gateway's endpoints take POST",
                          method ? method : "(none)");
    *q = strchr(target, '?');
    *plen = *q ? (size_t)(*q - target) : strlen(target);
    if (*plen + (*q ? strlen(*q) : 0) >= LLM_ROUTE_MAX_PATH)
        return route_fail(status, 400, msg, msglen, "request path too long (at most %d bytes)",
                          LLM_ROUTE_MAX_PATH - 1);
    return 0;
}

/* The provider is chosen: p[0..n) is its own path, q the query ("?..."
 * or NULL). */
static int route_endpoint(llm_vendor_t v, const char *p, size_t n, const char *q, llm_route_t *out,
                          int *status, char *msg, size_t msglen)
{
    out->vendor = v;
    const char *rewrite;
    if (match_endpoint(v, p, n, out, &rewrite) < 0) {
        char path[129];
        snprintf(path, sizeof path, "%.*s", (int)(n < 128 ? n : 128), p);
        return route_fail(status, 404, msg, msglen, "%s has no endpoint %s behind the gateway",
                          vendor_names[v], path);
    }
    out->errfmt = llm_vendor_errfmt(v);
    out->usage = llm_request_usage_provider(out->kind);
    out->sse = out->endpoint_streams && q && query_alt_sse(q + 1);
    snprintf(out->upstream_path, sizeof out->upstream_path, "%.*s%s",
             (int)(rewrite ? strlen(rewrite) : n), rewrite ? rewrite : p, q ? q : "");
    return 0;
}

int llm_route(const char *method, const char *target, const char *provider_header, llm_route_t *out,
              int *status, char *msg, size_t msglen)
{
    memset(out, 0, sizeof *out);
    const char *q = NULL;
    size_t plen = 0;
    if (route_check(method, target, &q, &plen, status, msg, msglen) < 0) return -1;

    /* the vendor: the header, else the first segment */
    const char *p = target;
    size_t n = plen;
    const char *seg = target + 1;
    const char *segend = memchr(seg, '/', plen - 1);
    size_t seglen = segend ? (size_t)(segend - seg) : plen - 1;
    llm_vendor_t v = LLM_VENDOR_OPENAI, pv = LLM_VENDOR_OPENAI;
    bool prefixed = llm_vendor_parse(seg, seglen, &pv) == 0 && segend;
    if (provider_header) {
        if (llm_vendor_parse(provider_header, strlen(provider_header), &v) < 0)
            return route_fail(status, 400, msg, msglen,
                              "x-llm-provider: unknown provider '%.64s' (openai, azure, anthropic, "
                              "gemini, mistral, groq)",
                              provider_header);
        if (prefixed && pv == v) {
            p = segend;
            n = plen - (size_t)(segend - target);
        }
    } else if (prefixed) {
        v = pv;
        p = segend;
        n = plen - (size_t)(segend - target);
    } else {
        char first[65];
        snprintf(first, sizeof first, "%.*s", (int)(seglen < 64 ? seglen : 64), seg);
        return route_fail(status, 404, msg, msglen,
                          "no provider named by '/%s': use a path prefix (/openai, /azure, "
                          "/anthropic, /gemini, /mistral, /groq) or the x-llm-provider header",
                          first);
    }

    return route_endpoint(v, p, n, q, out, status, msg, msglen);
}

int llm_route_vendor(const char *method, llm_vendor_t v, const char *target, llm_route_t *out,
                     int *status, char *msg, size_t msglen)
{
    memset(out, 0, sizeof *out);
    if ((unsigned)v >= LLM_VENDOR_COUNT)
        return route_fail(status, 500, msg, msglen, "no such provider type");
    const char *q = NULL;
    size_t plen = 0;
    if (route_check(method, target, &q, &plen, status, msg, msglen) < 0) return -1;
    return route_endpoint(v, target, plen, q, out, status, msg, msglen);
}
