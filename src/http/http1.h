/*
 * http1 — HTTP/1.1 message heads on top of llhttp (strict mode).
 *
 * An http_msg_t parses one message at a time from a byte stream and stops
 * (pauses llhttp) at two points: when the head is complete and when the
 * message is complete, reporting how many input bytes belong to what came
 * before the stop.  The proxy relays body bytes raw (chunk framing included,
 * which llhttp has validated), so no body is ever copied or buffered here.
 *
 * The head (request target or reason, header names and values) is copied
 * into an arena owned by the http_msg_t, bounded by max_head bytes; header
 * slices are offsets into that arena and stay valid until http_msg_reset().
 * On top of llhttp's own checks, http_msg_check_request() refuses what
 * request smuggling is made of (see doc/egress.md).
 */
#ifndef CDEGUARD_HTTP_HTTP1_H
#define CDEGUARD_HTTP_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

#define HTTP_MAX_HEADERS 128
#define HTTP_MAX_CONN_TOKENS 32

typedef struct http_slice {
    uint32_t off, len;
} http_slice_t;

typedef struct http_header {
    http_slice_t name, value;
} http_header_t;

typedef enum {
    HTTP_NEED_MORE = 0, /* consumed everything, message not at a stop */
    HTTP_HEAD_DONE = 1, /* head complete; body (if any) follows */
    HTTP_MSG_DONE = 2,  /* message complete */
    HTTP_ERROR = -1,    /* malformed: see err */
    HTTP_HEAD_TOO_BIG = -2,
} http_event_t;

typedef struct http_msg {
    llhttp_t parser;
    llhttp_settings_t settings;
    char *arena; /* head copy */
    size_t arena_len, arena_cap, max_head;
    size_t head_bytes;   /* raw bytes of the head seen so far */
    http_slice_t target; /* request target (requests) */
    http_slice_t reason; /* reason phrase (responses) */
    http_header_t hdr[HTTP_MAX_HEADERS];
    size_t nhdr;
    bool in_value; /* last span was a value */
    bool head_done, msg_done;
    bool skip_body; /* response to HEAD / 1xx, 204, 304 */
    bool prev_lf;   /* last head byte seen was LF (obs-fold check) */
    bool prev_sp;   /* last start-line byte was SP */
    bool start_line_done;
    const char *err; /* static reason on HTTP_ERROR */
    int http_major, http_minor;
    int method; /* llhttp_method_t, requests */
    int status; /* responses */
    /* Optional body sink (NULL: body bytes are only validated and skipped,
     * the proxy relays them raw).  Called from http_msg_feed with the
     * decoded body (chunk framing removed), in order; non-zero stops the
     * parser with HTTP_ERROR and err "body sink refused". */
    int (*on_body)(void *ctx, const char *data, size_t len);
    void *on_body_ctx;
} http_msg_t;

/* type: HTTP_REQUEST or HTTP_RESPONSE. 0 ok, -1 ENOMEM. */
int http_msg_init(http_msg_t *m, llhttp_type_t type, size_t max_head);
void http_msg_free(http_msg_t *m);
/* Decoded body bytes go to fn(ctx, ...) from now on (see on_body). */
void http_msg_set_body_sink(http_msg_t *m, int (*fn)(void *ctx, const char *data, size_t len),
                            void *ctx);
/* Ready for the next message on the same connection (keeps the arena). */
void http_msg_reset(http_msg_t *m);
/* For a response: the request was HEAD, so the response has no body. */
void http_msg_expect_no_body(http_msg_t *m);

/* Feed bytes; *used = bytes consumed up to the stop (or all of len). */
http_event_t http_msg_feed(http_msg_t *m, const char *data, size_t len, size_t *used);
/* The peer closed: for EOF-delimited responses this completes the message. */
http_event_t http_msg_finish(http_msg_t *m);
/* After the head is done, true when the message body runs until EOF. */
bool http_msg_body_until_eof(const http_msg_t *m);
bool http_msg_has_body(const http_msg_t *m);
bool http_msg_keep_alive(const http_msg_t *m);

/* Pointer to a slice; "" when nothing was stored yet (no arena). */
static inline const char *http_ptr(const http_msg_t *m, http_slice_t s)
{
    return m->arena ? m->arena + s.off : "";
}
bool http_slice_eq(const http_msg_t *m, http_slice_t s, const char *lit);
/* First header with this name (case-insensitive), or NULL; *count gets the number. */
const http_header_t *http_msg_header(const http_msg_t *m, const char *name, size_t *count);

/* Request-specific checks after the head: Content-Length / Transfer-Encoding
 * framing, Host, header bytes.  0 ok, -1 with a reason. */
int http_msg_check_request(const http_msg_t *m, const char **reason);

/* Connection header tokens (all Connection headers, comma lists, OWS and
 * empty elements skipped).  Returns the number stored (<= max); -1 when there
 * are more than HTTP_MAX_CONN_TOKENS (treated as malformed). */
int http_msg_connection_tokens(const http_msg_t *m, http_slice_t *out, size_t max);
/* True when header `name` must not be forwarded: RFC 9110 §7.6.1 hop-by-hop
 * fields plus every field named in `tokens`. */
bool http_is_hop_by_hop(const http_msg_t *m, http_slice_t name, const http_slice_t *tokens,
                        size_t ntokens);

/* Split an absolute-form target "http://host[:port]/path?q".  Host may be
 * "[v6]".  Userinfo is refused.  Returns 0 or -1 with a reason. */
typedef struct http_url {
    const char *host; /* not NUL-terminated; brackets stripped for IPv6 */
    size_t host_len;
    uint16_t port;
    const char *path; /* origin-form, "/" when empty */
    size_t path_len;
    const char *authority; /* as written (host[:port]) for the Host header */
    size_t authority_len;
} http_url_t;
int http_parse_absolute_url(const char *s, size_t len, http_url_t *u, const char **reason);
/* CONNECT authority-form "host:port" (port required). */
int http_parse_authority(const char *s, size_t len, http_url_t *u, const char **reason);

#endif
