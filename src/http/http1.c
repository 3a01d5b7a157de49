/*
 * http1 — llhttp glue: head capture into an arena, stops at head and message
 * boundaries, smuggling checks, Connection tokens and hop-by-hop filtering.
 *
 * Invariants: arena_len <= arena_cap <= max_head + 1; header slices point into
 * the arena only; nhdr <= HTTP_MAX_HEADERS.  The parser is paused (HPE_PAUSED)
 * at the two stops and resumed by the next http_msg_feed call.
 */
#include "http/http1.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ARENA_INITIAL 2048

static http_msg_t *msg_of(llhttp_t *p)
{
    return (http_msg_t *)p->data;
}

static int arena_append(http_msg_t *m, const char *at, size_t len)
{
    if (len == 0) return 0;
    if (m->arena_len + len > m->max_head) {
        m->err = "request head too large";
        return -1;
    }
    if (m->arena_len + len > m->arena_cap) {
        size_t cap = m->arena_cap ? m->arena_cap : ARENA_INITIAL;
        while (cap < m->arena_len + len)
            cap *= 2;
        if (cap > m->max_head) cap = m->max_head;
        char *a = realloc(m->arena, cap);
        if (!a) {
            m->err = "out of memory";
            return -1;
        }
        m->arena = a;
        m->arena_cap = cap;
    }
    memcpy(m->arena + m->arena_len, at, len);
    m->arena_len += len;
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    http_msg_t *m = msg_of(p);
    m->arena_len = 0;
    m->nhdr = 0;
    m->target = (http_slice_t){0, 0};
    m->reason = (http_slice_t){0, 0};
    m->in_value = false;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    http_msg_t *m = msg_of(p);
    if (m->target.len == 0) m->target.off = (uint32_t)m->arena_len;
    if (arena_append(m, at, len) < 0) return -1;
    m->target.len += (uint32_t)len;
    return 0;
}

static int on_status(llhttp_t *p, const char *at, size_t len)
{
    http_msg_t *m = msg_of(p);
    if (m->reason.len == 0) m->reason.off = (uint32_t)m->arena_len;
    if (arena_append(m, at, len) < 0) return -1;
    m->reason.len += (uint32_t)len;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    http_msg_t *m = msg_of(p);
    if (m->nhdr >= HTTP_MAX_HEADERS) {
        m->err = "too many header fields";
        return -1;
    }
    http_header_t *h = &m->hdr[m->nhdr];
    if (h->name.len == 0) h->name.off = (uint32_t)m->arena_len;
    if (arena_append(m, at, len) < 0) return -1;
    h->name.len += (uint32_t)len;
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    http_msg_t *m = msg_of(p);
    if (m->nhdr >= HTTP_MAX_HEADERS) return -1;
    m->hdr[m->nhdr].value = (http_slice_t){(uint32_t)m->arena_len, 0};
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    http_msg_t *m = msg_of(p);
    if (m->nhdr >= HTTP_MAX_HEADERS) return -1;
    if (arena_append(m, at, len) < 0) return -1;
    m->hdr[m->nhdr].value.len += (uint32_t)len;
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    http_msg_t *m = msg_of(p);
    if (m->nhdr >= HTTP_MAX_HEADERS) return -1;
    http_header_t *h = &m->hdr[m->nhdr];
    while (h->value.len > 0) {
        char c = m->arena[h->value.off + h->value.len - 1];
        if (c != ' ' && c != '\t') break;
        h->value.len--;
    }
    m->nhdr++;
    if (m->nhdr < HTTP_MAX_HEADERS) m->hdr[m->nhdr] = (http_header_t){{0, 0}, {0, 0}};
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    http_msg_t *m = msg_of(p);
    m->head_done = true;
    m->http_major = p->http_major;
    m->http_minor = p->http_minor;
    m->method = p->method;
    m->status = p->status_code;
    if (p->type == HTTP_RESPONSE) {
        int st = p->status_code;
        if (m->skip_body || (st >= 100 && st < 200) || st == 204 || st == 304)
            p->flags |= F_SKIPBODY;
    }
    return HPE_PAUSED;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    http_msg_t *m = msg_of(p);
    if (!m->on_body) return 0;
    if (m->on_body(m->on_body_ctx, at, len) != 0) {
        m->err = "body sink refused";
        return HPE_USER;
    }
    return 0;
}

void http_msg_set_body_sink(http_msg_t *m, int (*fn)(void *ctx, const char *data, size_t len),
                            void *ctx)
{
    m->on_body = fn;
    m->on_body_ctx = ctx;
}

static int on_message_complete(llhttp_t *p)
{
    msg_of(p)->msg_done = true;
    return HPE_PAUSED;
}

int http_msg_init(http_msg_t *m, llhttp_type_t type, size_t max_head)
{
    memset(m, 0, sizeof *m);
    llhttp_settings_init(&m->settings);
    m->settings.on_message_begin = on_message_begin;
    m->settings.on_url = on_url;
    m->settings.on_status = on_status;
    m->settings.on_header_field = on_header_field;
    m->settings.on_header_field_complete = on_header_field_complete;
    m->settings.on_header_value = on_header_value;
    m->settings.on_header_value_complete = on_header_value_complete;
    m->settings.on_headers_complete = on_headers_complete;
    m->settings.on_message_complete = on_message_complete;
    m->settings.on_body = on_body;
    llhttp_init(&m->parser, type, &m->settings);
    m->parser.data = m;
    m->max_head = max_head;
    return 0;
}

void http_msg_free(http_msg_t *m)
{
    free(m->arena);
    m->arena = NULL;
    m->arena_cap = m->arena_len = 0;
}

void http_msg_reset(http_msg_t *m)
{
    m->head_done = m->msg_done = false;
    m->skip_body = false;
    m->head_bytes = 0;
    m->prev_lf = false;
    m->prev_sp = false;
    m->start_line_done = false;
    m->err = NULL;
    m->nhdr = 0;
    m->arena_len = 0;
    m->hdr[0] = (http_header_t){{0, 0}, {0, 0}};
    /* Back to the start state whatever happened to the last message (a head
     * that was refused before its body was read must not complete later). */
    llhttp_reset(&m->parser);
    m->parser.data = m;
}

void http_msg_expect_no_body(http_msg_t *m)
{
    m->skip_body = true;
}

http_event_t http_msg_feed(http_msg_t *m, const char *data, size_t len, size_t *used)
{
    *used = 0;
    if (llhttp_get_errno(&m->parser) == HPE_PAUSED) llhttp_resume(&m->parser);
    bool head_before = m->head_done;
    llhttp_errno_t e = llhttp_execute(&m->parser, data, len);
    size_t n = len;
    if (e == HPE_PAUSED) {
        n = (size_t)(llhttp_get_error_pos(&m->parser) - data);
    } else if (e != HPE_OK) {
        if (!m->err) m->err = llhttp_get_error_reason(&m->parser);
        if (!m->err) m->err = llhttp_errno_name(e);
        if (m->head_bytes + len > m->max_head && !m->head_done) return HTTP_HEAD_TOO_BIG;
        if (m->err && strcmp(m->err, "request head too large") == 0) return HTTP_HEAD_TOO_BIG;
        return HTTP_ERROR;
    }
    *used = n;
    if (!head_before && m->parser.type == HTTP_REQUEST) {
        /* llhttp accepts obs-fold (a header line that starts with SP/HTAB);
         * RFC 9112 §5.2 lets a proxy reject it, and smuggling needs it. */
        for (size_t i = 0; i < n; i++) {
            char ch = data[i];
            if (m->prev_lf && (ch == ' ' || ch == '\t')) {
                m->err = "obsolete line folding in the head";
                return HTTP_ERROR;
            }
            /* start line: single SP separators only (RFC 9112 §3) */
            if (!m->start_line_done) {
                if (ch == ' ' && (m->prev_sp || m->head_bytes + i == 0)) {
                    m->err = "extra whitespace in the start line";
                    return HTTP_ERROR;
                }
                if (ch == '\n') m->start_line_done = true;
                m->prev_sp = ch == ' ';
            }
            m->prev_lf = ch == '\n';
        }
    }
    if (!head_before) {
        m->head_bytes += n;
        if (!m->head_done && m->head_bytes > m->max_head) {
            m->err = "request head too large";
            return HTTP_HEAD_TOO_BIG;
        }
    }
    if (e == HPE_PAUSED) {
        if (m->msg_done) return HTTP_MSG_DONE;
        if (m->head_done && !head_before) return HTTP_HEAD_DONE;
    }
    return HTTP_NEED_MORE;
}

http_event_t http_msg_finish(http_msg_t *m)
{
    if (llhttp_get_errno(&m->parser) == HPE_PAUSED) llhttp_resume(&m->parser);
    llhttp_errno_t e = llhttp_finish(&m->parser);
    if (e == HPE_PAUSED || m->msg_done) return HTTP_MSG_DONE;
    if (e != HPE_OK) {
        m->err = llhttp_get_error_reason(&m->parser);
        return HTTP_ERROR;
    }
    return HTTP_NEED_MORE;
}

bool http_msg_body_until_eof(const http_msg_t *m)
{
    return llhttp_message_needs_eof(&m->parser) != 0;
}

bool http_msg_has_body(const http_msg_t *m)
{
    const llhttp_t *p = &m->parser;
    if (p->flags & F_SKIPBODY) return false;
    if (p->flags & F_CHUNKED) return true;
    if (p->flags & F_CONTENT_LENGTH) return p->content_length > 0;
    return p->type == HTTP_RESPONSE && http_msg_body_until_eof(m);
}

bool http_msg_keep_alive(const http_msg_t *m)
{
    return llhttp_should_keep_alive(&m->parser) != 0;
}

bool http_slice_eq(const http_msg_t *m, http_slice_t s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && strncasecmp(http_ptr(m, s), lit, n) == 0;
}

const http_header_t *http_msg_header(const http_msg_t *m, const char *name, size_t *count)
{
    const http_header_t *first = NULL;
    size_t c = 0;
    for (size_t i = 0; i < m->nhdr; i++) {
        if (http_slice_eq(m, m->hdr[i].name, name)) {
            if (!first) first = &m->hdr[i];
            c++;
        }
    }
    if (count) *count = c;
    return first;
}

int http_msg_check_request(const http_msg_t *m, const char **reason)
{
    size_t ncl, nte, nhost;
    http_msg_header(m, "Content-Length", &ncl);
    const http_header_t *te = http_msg_header(m, "Transfer-Encoding", &nte);
    http_msg_header(m, "Host", &nhost);
    if (ncl > 1) {
        *reason = "duplicate Content-Length";
        return -1;
    }
    if (nte > 1) {
        *reason = "duplicate Transfer-Encoding";
        return -1;
    }
    if (ncl && nte) {
        *reason = "Content-Length together with Transfer-Encoding";
        return -1;
    }
    if (te && !http_slice_eq(m, te->value, "chunked")) {
        *reason = "Transfer-Encoding other than a sole \"chunked\"";
        return -1;
    }
    if (nhost > 1) {
        *reason = "duplicate Host";
        return -1;
    }
    for (size_t i = 0; i < m->nhdr; i++) {
        const http_header_t *h = &m->hdr[i];
        if (h->name.len == 0) {
            *reason = "empty header name";
            return -1;
        }
        const unsigned char *v = (const unsigned char *)http_ptr(m, h->value);
        for (uint32_t k = 0; k < h->value.len; k++) {
            if ((v[k] < 0x20 && v[k] != '\t') || v[k] == 0x7f) {
                *reason = "control character in header value";
                return -1;
            }
        }
    }
    return 0;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

int http_msg_connection_tokens(const http_msg_t *m, http_slice_t *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nhdr; i++) {
        if (!http_slice_eq(m, m->hdr[i].name, "Connection")) continue;
        uint32_t p = m->hdr[i].value.off, end = p + m->hdr[i].value.len;
        while (p < end) {
            while (p < end && (is_ows(m->arena[p]) || m->arena[p] == ','))
                p++;
            uint32_t s = p;
            while (p < end && m->arena[p] != ',')
                p++;
            uint32_t e = p;
            while (e > s && is_ows(m->arena[e - 1]))
                e--;
            if (e == s) continue;
            if (n >= HTTP_MAX_CONN_TOKENS || n >= max) return -1;
            out[n++] = (http_slice_t){s, e - s};
        }
    }
    return (int)n;
}

static const char *const hop_by_hop[] = {
    "Connection",         "Keep-Alive", "Proxy-Connection", "Proxy-Authorization",
    "Proxy-Authenticate", "TE",         "Trailer",          "Upgrade",
};

bool http_is_hop_by_hop(const http_msg_t *m, http_slice_t name, const http_slice_t *tokens,
                        size_t ntokens)
{
    for (size_t i = 0; i < sizeof hop_by_hop / sizeof hop_by_hop[0]; i++)
        if (http_slice_eq(m, name, hop_by_hop[i])) return true;
    for (size_t i = 0; i < ntokens; i++) {
        if (tokens[i].len == name.len &&
            strncasecmp(http_ptr(m, tokens[i]), http_ptr(m, name), name.len) == 0) {
            /* Never let Connection strip the framing of the message itself. */
            if (http_slice_eq(m, name, "Content-Length") ||
                http_slice_eq(m, name, "Transfer-Encoding") || http_slice_eq(m, name, "Host"))
                return false;
            return true;
        }
    }
    return false;
}

static int parse_port(const char *s, size_t len, uint16_t *port)
{
    if (len == 0 || len > 5) return -1;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535) return -1;
    *port = (uint16_t)v;
    return 0;
}

static int split_host_port(const char *a, size_t len, http_url_t *u, bool port_required,
                           const char **reason)
{
    if (len == 0) {
        *reason = "empty authority";
        return -1;
    }
    if (memchr(a, '@', len)) {
        *reason = "userinfo in the request target is not accepted";
        return -1;
    }
    const char *port_s = NULL;
    size_t port_len = 0;
    if (a[0] == '[') {
        const char *rb = memchr(a, ']', len);
        if (!rb) {
            *reason = "unterminated IPv6 literal";
            return -1;
        }
        u->host = a;
        u->host_len = (size_t)(rb - a) + 1;
        size_t rest = len - u->host_len;
        if (rest > 0) {
            if (rb[1] != ':') {
                *reason = "garbage after IPv6 literal";
                return -1;
            }
            port_s = rb + 2;
            port_len = rest - 1;
        }
    } else {
        const char *colon = memchr(a, ':', len);
        u->host = a;
        u->host_len = colon ? (size_t)(colon - a) : len;
        if (colon) {
            port_s = colon + 1;
            port_len = len - u->host_len - 1;
        }
    }
    if (port_s) {
        if (parse_port(port_s, port_len, &u->port) < 0) {
            *reason = "invalid port";
            return -1;
        }
    } else if (port_required) {
        *reason = "CONNECT target needs host:port";
        return -1;
    }
    if (u->host_len == 0) {
        *reason = "empty host";
        return -1;
    }
    return 0;
}

int http_parse_absolute_url(const char *s, size_t len, http_url_t *u, const char **reason)
{
    memset(u, 0, sizeof *u);
    static const char http[] = "http://";
    if (len < 7 || strncasecmp(s, http, 7) != 0) {
        if (len >= 8 && strncasecmp(s, "https://", 8) == 0)
            *reason = "https:// targets must use CONNECT";
        else if (len > 0 && s[0] == '/')
            *reason = "not a proxy request (origin-form target)";
        else
            *reason = "unsupported request target";
        return -1;
    }
    const char *a = s + 7, *end = s + len;
    const char *p = a;
    while (p < end && *p != '/' && *p != '?' && *p != '#')
        p++;
    if (p < end && *p == '#') {
        *reason = "fragment in request target";
        return -1;
    }
    if (memchr(p, '#', (size_t)(end - p))) {
        *reason = "fragment in request target";
        return -1;
    }
    u->authority = a;
    u->authority_len = (size_t)(p - a);
    u->port = 80;
    if (split_host_port(a, (size_t)(p - a), u, false, reason) < 0) return -1;
    u->path = p;
    u->path_len = (size_t)(end - p);
    return 0;
}

int http_parse_authority(const char *s, size_t len, http_url_t *u, const char **reason)
{
    memset(u, 0, sizeof *u);
    u->authority = s;
    u->authority_len = len;
    if (len == 0) {
        *reason = "empty authority";
        return -1;
    }
    if (memchr(s, '/', len) || memchr(s, '?', len) || memchr(s, '#', len)) {
        *reason = "CONNECT target must be host:port";
        return -1;
    }
    return split_host_port(s, len, u, true, reason);
}
