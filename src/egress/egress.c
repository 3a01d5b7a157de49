/*
 * egress — HTTP/1.1 forward proxy connections (absolute-form and CONNECT).
 *
 * One conn_t per accepted client connection, driven by a single state
 * machine (conn_state_t) on its worker's loop:
 *
 *   CS_HEAD ──head──▶ decide ──▶ CS_RESOLVING ──▶ CS_CONNECTING ──▶ CS_RELAY ──┐
 *      ▲                 │ deny: 403/407/400                       (CONNECT)   │
 *      └──── keep-alive ─┴──────────────────────── response done ◀──┘  CS_HELLO ─▶ tunnel.c
 *
 * Buffers: each side has one fixed read buffer (CONN_BUF bytes).  Bodies are
 * relayed raw, a slice at a time: while a slice is being written to the
 * other side, reading from its source stops (back-pressure), so memory per
 * connection is bounded whatever the body size.  Bytes in cbuf/ubuf before
 * cpos/upos have been parsed and forwarded; [cpos, clen) are unparsed.
 *
 * Ownership: the conn owns its handles, buffers, parsers and (per request) a
 * config reference inside its egress_record_t.  It is freed only from the
 * last close callback (conn_release), never from inside a libuv callback
 * that may still touch it.
 */
#include "egress/egress.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "audit/audit.h"
#include "core/log.h"
#include "egress/egress_int.h"
#include "http/http1.h"
#include "identity/identity.h"
#include "limits/limiter.h"
#include "metrics/metrics.h"
#include "net/ipaddr.h"
#include "policy/policy.h"
#include "tls/clienthello.h"

#define CONN_BUF (32 * 1024)
#define MAX_CANDIDATES 8
#define LINGER_MS 2000         /* a refused connection drains the client's input this long */
#define LINGER_MAX (16u << 20) /* ... or this many bytes */

typedef enum {
    CS_HEAD,       /* reading a request head (or idle between requests) */
    CS_RESOLVING,  /* getaddrinfo in flight */
    CS_CONNECTING, /* upstream connect in flight */
    CS_RELAY,      /* request forwarded; relaying body and response */
    CS_HELLO,      /* CONNECT answered 200; waiting for the ClientHello */
    CS_LINGER,     /* a refusal sent and the write side shut: input read and dropped */
    CS_CLOSING,
} conn_state_t;

typedef struct conn conn_t;

/* Upstream socket: heap-allocated so that a closing one (uv_close is
 * asynchronous) never shares memory with its successor. */
typedef struct upstream {
    uv_tcp_t tcp;
    uv_connect_t creq;
    conn_t *c;
} upstream_t;

struct conn {
    struct conn *prev, *next;
    worker_t *w;
    conn_state_t state;
    int pending_handles; /* handles and requests whose callbacks are still due */

    uv_tcp_t client;
    upstream_t *up; /* NULL when there is no upstream socket */
    bool up_connected, up_reusable;
    char up_host[DOMAIN_MAX + 1];
    uint16_t up_port;
    netaddr_t up_addr;
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    bool gai_pending;
    lim_pending_t *lim_pending; /* the limits store has not answered yet */

    netaddr_t peer;
    uint16_t peer_port;

    char *cbuf; /* client → proxy */
    size_t cpos, clen;
    char *ubuf; /* upstream → proxy */
    size_t upos, ulen;
    bool c_write_busy; /* a slice of cbuf is being written upstream */
    bool u_write_busy; /* a slice of ubuf is being written to the client */
    int writes_to_client;
    bool client_reading, up_reading;
    bool client_eof, up_eof;
    bool close_when_flushed;
    uv_shutdown_t shut_req; /* CS_LINGER: the client side's FIN */
    size_t linger_bytes;

    http_msg_t req, resp;
    bool head_started;
    bool is_connect, is_head_method, resp_head_sent;
    bool keep_client;
    bool in_client_process;
    char *resp_head; /* rewritten response head waiting to go out with the first body bytes */
    size_t resp_head_len;
    policy_target_t target;
    netaddr_t cands[MAX_CANDIDATES];
    size_t ncands, cand_idx;
    bool monitor;
    uint64_t alert_bytes;
    bool block_upload;
    egress_record_t rec;
};

typedef struct wreq {
    uv_write_t req;
    conn_t *c;
    char *owned; /* heap buffer to free, or NULL when writing from cbuf/ubuf */
    int from;    /* 0: generated, 1: cbuf slice, 2: ubuf slice */
    bool then_close;
} wreq_t;

static void conn_close(conn_t *c);
static void conn_linger(conn_t *c);
static void conn_release(conn_t *c);
static void up_close(conn_t *c);
static void arm_timer(conn_t *c, uint64_t ms, uv_timer_cb cb);
static void client_process(conn_t *c);
static void up_process(conn_t *c);
static void conn_update_reading(conn_t *c);
static void request_start_connect(conn_t *c);

/* ------------------------------------------------------------------ */
/* connection list                                                      */

static void conn_link(conn_t *c)
{
    conn_t *head = c->w->conns;
    c->next = head;
    c->prev = NULL;
    if (head) head->prev = c;
    c->w->conns = c;
}

static void conn_unlink(conn_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->w->conns = c->next;
    if (c->next) c->next->prev = c->prev;
}

/* ------------------------------------------------------------------ */
/* audit records                                                        */

void egress_record_emit(egress_record_t *r)
{
    if (!r->active) return;
    r->active = false;
    double dur = (double)(clock_mono_ns() - r->start_ns) / 1e6;
    const char *mode = (r->pol && r->pol->mode == POLICY_MONITOR) ? "monitor" : "enforce";
    audit_egress_t a = {
        .time_ms = r->start_wall_ms,
        .workspace = r->ws ? r->ws->id : "",
        .group = r->ws ? r->ws->group : "",
        .policy = r->pol ? r->pol->name : "",
        .client = r->client,
        .method = r->method,
        .host = r->host,
        .port = r->port,
        .resolved = r->resolved,
        .sni = r->has_sni ? r->sni : NULL,
        .decision = r->decision ? r->decision : "deny",
        .rule = r->rule,
        .reason = r->reason,
        .mode = mode,
        .alert = r->alert,
        .status = r->status,
        .bytes_up = r->bytes_up,
        .bytes_down = r->bytes_down,
        .duration_ms = dur,
    };
    audit_egress(&a);
    int slot = metrics_policy_slot(r->pol ? r->pol->name : "");
    metrics_decision_t d = MDEC_DENY;
    if (a.decision[0] == 'a')
        d = MDEC_ALLOW;
    else if (a.decision[0] == 'm')
        d = MDEC_MONITOR;
    metrics_egress_request(slot, d);
    if (!r->latency_recorded) metrics_egress_latency(dur / 1000.0);
    if (r->lim_ticket) { /* bytes both ways count against bytes_per_* */
        uint64_t moved = r->bytes_up + r->bytes_down;
        lim_used_t used = {.bytes = moved > r->lim_metered ? moved - r->lim_metered : 0};
        lim_settle(r->lim_worker, r->lim_ticket, &used);
        r->lim_ticket = NULL;
    }
    if (r->cfg) config_unref(r->cfg);
    r->cfg = NULL;
}

static void record_begin(conn_t *c)
{
    egress_record_t *r = &c->rec;
    egress_record_emit(r);
    memset(r, 0, sizeof *r);
    r->active = true;
    r->cfg = config_ref(c->w->cfg);
    r->start_wall_ms = clock_wall_ms();
    r->start_ns = clock_mono_ns();
    char ip[64];
    if (ipaddr_format(&c->peer, ip, sizeof ip) < 0) snprintf(ip, sizeof ip, "?");
    if (c->peer.family == AF_INET6)
        snprintf(r->client, sizeof r->client, "[%s]:%u", ip, c->peer_port);
    else
        snprintf(r->client, sizeof r->client, "%s:%u", ip, c->peer_port);
    snprintf(r->rule, sizeof r->rule, "none");
}

/* ------------------------------------------------------------------ */
/* writing                                                              */

static void on_write(uv_write_t *req, int status)
{
    wreq_t *wr = (wreq_t *)req;
    conn_t *c = wr->c;
    if (wr->from == 1) c->c_write_busy = false;
    if (wr->from == 2) c->u_write_busy = false;
    if (req->handle == (uv_stream_t *)&c->client) c->writes_to_client--;
    free(wr->owned);
    bool then_close = wr->then_close;
    free(wr);
    c->pending_handles--;
    if (c->state == CS_CLOSING) {
        if (c->pending_handles == 0) conn_release(c);
        return;
    }
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (then_close) {
        conn_linger(c);
        return;
    }
    if (c->state == CS_LINGER) return;
    if (c->close_when_flushed && c->writes_to_client == 0) {
        conn_close(c);
        return;
    }
    if (c->state == CS_RELAY) {
        client_process(c);
        if (c->state == CS_RELAY) up_process(c);
    } else if (c->state == CS_HEAD || c->state == CS_HELLO) {
        client_process(c);
    }
    if (c->state != CS_CLOSING) conn_update_reading(c);
}

/* Write `prefix` (a heap buffer we own, may be NULL) followed by `data`.
 * from: 0 = `data` is a heap buffer we own, 1/2 = slice of cbuf/ubuf. */
/* Write `prefix` (a heap buffer we own, may be NULL) followed by `data`.
 * from: 0 = `data` is a heap buffer we own, 1/2 = slice of cbuf/ubuf.
 *
 * The common case (the socket takes everything at once) completes here,
 * synchronously: nothing is queued, no callback follows, and the caller
 * simply carries on.  Only what the kernel does not take is queued with
 * uv_write, and then on_write continues the work (busy flags set). */
static int conn_write2(conn_t *c, uv_stream_t *dst, char *prefix, size_t plen, char *data,
                       size_t len, int from, bool then_close)
{
    char *owned = from == 0 ? data : prefix;
    uv_buf_t b[2];
    unsigned nb = 0;
    if (prefix && plen) b[nb++] = uv_buf_init(prefix, (unsigned)plen);
    if (len) b[nb++] = uv_buf_init(data, (unsigned)len);
    size_t total = 0;
    for (unsigned i = 0; i < nb; i++)
        total += b[i].len;
    size_t done = 0;
    if (uv_stream_get_write_queue_size(dst) == 0 && nb > 0) {
        int n = uv_try_write(dst, b, nb);
        if (n < 0 && n != UV_EAGAIN) {
            free(owned);
            return -1;
        }
        if (n > 0) done = (size_t)n;
    }
    if (done == total) {
        free(owned);
        if (then_close) conn_linger(c);
        return 0;
    }
    /* queue the rest */
    unsigned first = 0;
    size_t skip = done;
    while (first < nb && skip >= b[first].len) {
        skip -= b[first].len;
        first++;
    }
    b[first].base += skip;
    b[first].len -= skip;
    wreq_t *wr = calloc(1, sizeof *wr);
    if (!wr) {
        free(owned);
        return -1;
    }
    wr->c = c;
    wr->owned = owned;
    wr->from = from;
    wr->then_close = then_close;
    int rc = uv_write(&wr->req, dst, b + first, nb - first, on_write);
    if (rc < 0) {
        free(wr->owned);
        free(wr);
        return -1;
    }
    c->pending_handles++;
    if (from == 1) c->c_write_busy = true;
    if (from == 2) c->u_write_busy = true;
    if (dst == (uv_stream_t *)&c->client) c->writes_to_client++;
    return 0;
}

static int conn_write(conn_t *c, uv_stream_t *dst, char *data, size_t len, int from,
                      bool then_close)
{
    return conn_write2(c, dst, NULL, 0, data, len, from, then_close);
}

/* Send a response head that is still waiting for body bytes. */
static void flush_resp_head(conn_t *c)
{
    if (!c->resp_head) return;
    char *h = c->resp_head;
    c->resp_head = NULL;
    if (conn_write(c, (uv_stream_t *)&c->client, h, c->resp_head_len, 0, false) < 0) conn_close(c);
}

/* A response generated by the proxy (4xx/5xx). */
static void conn_reply(conn_t *c, int status, const char *reason_phrase, const char *extra_headers,
                       const char *body, bool close_after)
{
    size_t blen = strlen(body);
    size_t cap = 512 + strlen(extra_headers) + blen;
    char *out = malloc(cap);
    if (!out) {
        conn_close(c);
        return;
    }
    int n = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\n%sContent-Type: text/plain\r\nContent-Length: %zu\r\n%s"
                     "\r\n%s",
                     status, reason_phrase, extra_headers, blen,
                     close_after ? "Connection: close\r\n" : "", body);
    if (n < 0 || (size_t)n >= cap) {
        free(out);
        conn_close(c);
        return;
    }
    if (c->rec.active) c->rec.status = status;
    c->rec.bytes_down += (uint64_t)n;
    if (conn_write(c, (uv_stream_t *)&c->client, out, (size_t)n, 0, close_after) < 0) {
        conn_close(c);
        return;
    }
}

/* ------------------------------------------------------------------ */
/* closing                                                              */

static void on_handle_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    c->pending_handles--;
    if (c->state == CS_CLOSING && c->pending_handles == 0) conn_release(c);
}

static void on_up_closed(uv_handle_t *h)
{
    upstream_t *u = (upstream_t *)h;
    conn_t *c = u->c;
    free(u);
    c->pending_handles--;
    if (c->state == CS_CLOSING && c->pending_handles == 0) conn_release(c);
}

static void conn_release(conn_t *c)
{
    egress_record_emit(&c->rec);
    free(c->resp_head);
    http_msg_free(&c->req);
    http_msg_free(&c->resp);
    free(c->cbuf);
    free(c->ubuf);
    worker_t *w = c->w;
    conn_unlink(c);
    free(c);
    worker_conn_count(w, -1);
}

/* Start closing: never frees; the last completion callback does (see
 * conn_release), so a caller may keep using c after this returns. */
static void conn_close(conn_t *c)
{
    if (c->state != CS_CLOSING) {
        c->state = CS_CLOSING;
        if (c->lim_pending) {
            lim_cancel(c->lim_pending);
            c->lim_pending = NULL;
        }
        if (c->gai_pending) uv_cancel((uv_req_t *)&c->gai);
        uv_timer_stop(&c->timer);
        c->pending_handles++;
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
        c->pending_handles++;
        uv_close((uv_handle_t *)&c->client, on_handle_closed);
        if (c->up) {
            c->pending_handles++;
            uv_close((uv_handle_t *)&c->up->tcp, on_up_closed);
            c->up = NULL;
        }
    }
}

static void on_linger_shut(uv_shutdown_t *req, int status)
{
    conn_t *c = req->data;
    c->pending_handles--;
    if (c->state == CS_CLOSING) {
        if (c->pending_handles == 0) conn_release(c);
        return;
    }
    if (status < 0) conn_close(c);
}

static void on_linger_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

/* After a refusal that ends the connection: the client may still be sending
 * (a request body), and closing with its bytes unread makes the kernel send
 * a reset that destroys the refusal before the client reads it.  So the
 * write side is shut once the refusal is flushed (uv_shutdown waits for the
 * queued writes) and what still arrives is dropped until the client closes,
 * for at most LINGER_MS or LINGER_MAX bytes. */
static void conn_linger(conn_t *c)
{
    if (c->state == CS_CLOSING || c->state == CS_LINGER) return;
    if (c->client_eof) { /* nothing more can arrive */
        conn_close(c);
        return;
    }
    if (c->lim_pending) {
        lim_cancel(c->lim_pending);
        c->lim_pending = NULL;
    }
    if (c->gai_pending) uv_cancel((uv_req_t *)&c->gai);
    up_close(c);
    c->state = CS_LINGER;
    c->shut_req.data = c;
    if (uv_shutdown(&c->shut_req, (uv_stream_t *)&c->client, on_linger_shut) < 0) {
        conn_close(c);
        return;
    }
    c->pending_handles++;
    arm_timer(c, LINGER_MS, on_linger_timeout);
    c->cpos = c->clen = 0;
    conn_update_reading(c);
}

/* Close only the upstream side (not reusable). */
static void up_close(conn_t *c)
{
    if (!c->up) return;
    c->up_connected = false;
    c->up_reusable = false;
    c->up_reading = false;
    c->pending_handles++;
    uv_close((uv_handle_t *)&c->up->tcp, on_up_closed);
    c->up = NULL;
    c->upos = c->ulen = 0;
    c->u_write_busy = false;
}

/* ------------------------------------------------------------------ */
/* reading                                                              */

/* Reclaim buffer space once the bytes before cpos/upos are no longer
 * referenced by a write in flight. */
static void compact_buffers(conn_t *c)
{
    if (!c->c_write_busy) {
        if (c->cpos == c->clen) {
            c->cpos = c->clen = 0;
        } else if (c->cpos > 0 && c->clen == CONN_BUF) {
            memmove(c->cbuf, c->cbuf + c->cpos, c->clen - c->cpos);
            c->clen -= c->cpos;
            c->cpos = 0;
        }
    }
    if (!c->u_write_busy) {
        if (c->upos == c->ulen) {
            c->upos = c->ulen = 0;
        } else if (c->upos > 0 && c->ulen == CONN_BUF) {
            memmove(c->ubuf, c->ubuf + c->upos, c->ulen - c->upos);
            c->ulen -= c->upos;
            c->upos = 0;
        }
    }
}

static void on_alloc_client(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    conn_t *c = h->data;
    compact_buffers(c);
    *buf = uv_buf_init(c->cbuf + c->clen, (unsigned)(CONN_BUF - c->clen));
}

static void on_alloc_up(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    conn_t *c = ((upstream_t *)h)->c;
    compact_buffers(c);
    *buf = uv_buf_init(c->ubuf + c->ulen, (unsigned)(CONN_BUF - c->ulen));
}

static void arm_timer(conn_t *c, uint64_t ms, uv_timer_cb cb)
{
    uv_timer_start(&c->timer, cb, ms, 0);
}

static void on_idle_timeout(uv_timer_t *t)
{
    conn_t *c = t->data;
    if (c->state == CS_CLOSING) return;
    if (c->rec.active && !c->rec.decision) {
        c->rec.decision = "deny";
        snprintf(c->rec.rule, sizeof c->rec.rule, "timeout");
    }
    if (c->rec.active) c->rec.reason = "idle timeout";
    conn_close(c);
}

static void on_header_timeout(uv_timer_t *t)
{
    conn_t *c = t->data;
    if (c->state != CS_HEAD) return;
    /* Slow or stalled request head (slowloris): 408 and close. */
    if (c->head_started) {
        record_begin(c);
        c->rec.decision = "deny";
        snprintf(c->rec.rule, sizeof c->rec.rule, "timeout:client_header");
        c->rec.reason = "request head not received in time";
        conn_reply(c, 408, "Request Timeout", "", "cdeguard: request head timeout\n", true);
        c->client_reading = false;
        uv_read_stop((uv_stream_t *)&c->client);
    } else {
        conn_close(c);
    }
}

static void on_client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void conn_update_reading(conn_t *c)
{
    if (c->state == CS_CLOSING) return;
    if (c->state == CS_LINGER) {
        if (!c->client_reading && !c->client_eof) {
            uv_read_start((uv_stream_t *)&c->client, on_alloc_client, on_client_read);
            c->client_reading = true;
        }
        return;
    }
    compact_buffers(c);
    /* Reading goes on while a slice is being written: it fills the tail of
     * the buffer, never the slice; a full buffer is the back-pressure. */
    bool want_client = !c->client_eof && c->clen < CONN_BUF && !c->close_when_flushed;
    if (c->state == CS_RESOLVING || c->state == CS_CONNECTING) want_client = false;
    if (c->state == CS_RELAY && c->req.msg_done && c->clen - c->cpos > 0) want_client = false;
    if (want_client != c->client_reading) {
        if (want_client)
            uv_read_start((uv_stream_t *)&c->client, on_alloc_client, on_client_read);
        else
            uv_read_stop((uv_stream_t *)&c->client);
        c->client_reading = want_client;
    }
    /* An idle kept-alive upstream stays watched: a close or stray bytes
     * from it are noticed (and it is dropped) before it is reused. */
    bool want_up = c->up && c->up_connected &&
                   (c->state == CS_RELAY || (c->state == CS_HEAD && c->up_reusable)) &&
                   !c->up_eof && c->ulen < CONN_BUF;
    if (want_up != c->up_reading) {
        if (want_up)
            uv_read_start((uv_stream_t *)&c->up->tcp, on_alloc_up, on_up_read);
        else if (c->up)
            uv_read_stop((uv_stream_t *)&c->up->tcp);
        c->up_reading = want_up;
    }
}

/* ------------------------------------------------------------------ */
/* decisions                                                            */

/* Answer a refused request; the connection goes on to the next request
 * when nothing of this one is left unread, else it closes after the reply. */
static void reply_refusal(conn_t *c, int status, const char *phrase, const char *hdrs,
                          const char *body, bool close_after)
{
    conn_reply(c, status, phrase, hdrs, body, close_after);
    if (!close_after && c->state != CS_CLOSING) {
        egress_record_emit(&c->rec);
        c->state = CS_HEAD;
        http_msg_reset(&c->req);
        c->head_started = false;
        arm_timer(c, c->w->cfg->idle_timeout_ms, on_idle_timeout);
        client_process(c);
    } else {
        c->close_when_flushed = true;
    }
}

static void reply_deny(conn_t *c, int status, const char *phrase, const char *reason)
{
    egress_record_t *r = &c->rec;
    r->decision = "deny";
    r->reason = reason;
    const char *pname = r->pol ? r->pol->name : "";
    char hdrs[POLICY_RULE_MAX + 256];
    char body[POLICY_RULE_MAX + 256];
    snprintf(hdrs, sizeof hdrs, "X-Cdeguard-Policy: %s\r\nX-Cdeguard-Rule: %s\r\n", pname, r->rule);
    snprintf(body, sizeof body, "cdeguard: denied by policy \"%s\" rule \"%s\"\n", pname, r->rule);
    /* Keep the connection only when no request body is left unread. */
    bool close_after = c->is_connect || http_msg_has_body(&c->req) || !http_msg_keep_alive(&c->req);
    reply_refusal(c, status, phrase, hdrs, body, close_after);
}

static void reply_bad_request(conn_t *c, int status, const char *phrase, const char *reason)
{
    if (!c->rec.active) record_begin(c);
    c->rec.decision = "deny";
    c->rec.reason = reason;
    snprintf(c->rec.rule, sizeof c->rec.rule, "bad_request");
    char body[256];
    snprintf(body, sizeof body, "cdeguard: bad request: %s\n", reason);
    c->close_when_flushed = true;
    conn_reply(c, status, phrase, "X-Cdeguard-Rule: bad_request\r\n", body, true);
}

static void reply_407(conn_t *c, const char *rule)
{
    egress_record_t *r = &c->rec;
    r->decision = "deny";
    snprintf(r->rule, sizeof r->rule, "%s", rule);
    r->reason = "proxy authentication required";
    bool close_after = http_msg_has_body(&c->req) || !http_msg_keep_alive(&c->req);
    char hdrs[256];
    snprintf(hdrs, sizeof hdrs,
             "Proxy-Authenticate: Basic realm=\"cdeguard\"\r\n"
             "Proxy-Authenticate: Bearer realm=\"cdeguard\"\r\nX-Cdeguard-Rule: %s\r\n",
             rule);
    reply_refusal(c, 407, "Proxy Authentication Required", hdrs,
                  "cdeguard: proxy authentication required\n", close_after);
}

/* Policy said no: deny, or (monitor mode) record and carry on. Returns true
 * when the request goes on. */
static bool policy_denied(conn_t *c, const char *reason)
{
    if (c->rec.pol && c->rec.pol->mode == POLICY_MONITOR) {
        if (!c->monitor) {
            c->monitor = true;
            c->rec.decision = "monitor";
            c->rec.reason = reason;
        }
        return true;
    }
    reply_deny(c, 403, "Forbidden", reason);
    return false;
}

static void set_allow_rule(conn_t *c, const char *rule)
{
    if (!c->monitor) {
        c->rec.decision = "allow";
        snprintf(c->rec.rule, sizeof c->rec.rule, "%s", rule);
    }
}

static const char *header_value(conn_t *c, const char *name, size_t *len)
{
    const http_header_t *h = http_msg_header(&c->req, name, NULL);
    if (!h) return NULL;
    *len = h->value.len;
    return http_ptr(&c->req, h->value);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res);

static void request_route(conn_t *c);
static void request_limits_done(void *ctx, lim_ticket_t *t, const lim_result_t *res);

static void request_head_done(conn_t *c)
{
    uv_timer_stop(&c->timer);
    record_begin(c);
    c->monitor = false;
    c->resp_head_sent = false;
    c->ncands = c->cand_idx = 0;
    config_t *cfg = c->rec.cfg;
    http_msg_t *m = &c->req;
    snprintf(c->rec.method, sizeof c->rec.method, "%s", llhttp_method_name(m->method));

    const char *why = NULL;
    if (http_msg_check_request(m, &why) < 0) {
        reply_bad_request(c, 400, "Bad Request", why);
        return;
    }
    http_url_t u;
    c->is_connect = m->method == HTTP_CONNECT;
    c->is_head_method = m->method == HTTP_HEAD;
    const char *target = http_ptr(m, m->target);
    int prc = c->is_connect ? http_parse_authority(target, m->target.len, &u, &why)
                            : http_parse_absolute_url(target, m->target.len, &u, &why);
    if (prc < 0) {
        reply_bad_request(c, 400, "Bad Request", why);
        return;
    }
    size_t copy = u.host_len < sizeof c->rec.host - 1 ? u.host_len : sizeof c->rec.host - 1;
    memcpy(c->rec.host, u.host, copy);
    c->rec.host[copy] = 0;
    c->rec.port = u.port;

    /* identity */
    size_t alen = 0;
    const char *auth = header_value(c, "Proxy-Authorization", &alen);
    ident_result_t id = ident_attribute(cfg, &c->peer, auth, alen);
    if (id.status != IDENT_OK) {
        reply_407(c, id.rule);
        return;
    }
    c->rec.ws = id.ws;
    c->rec.pol = id.ws->policy;
    const config_policy_t *pol = c->rec.pol;
    c->alert_bytes = pol->upload_alert_bytes;
    c->block_upload = pol->upload_action == UPLOAD_BLOCK && pol->mode == POLICY_ENFORCE;

    /* target */
    char err[160];
    const char *h = u.host;
    size_t hl = u.host_len;
    if (policy_target_parse(h, hl, u.port, &c->target, err, sizeof err) < 0) {
        snprintf(c->rec.rule, sizeof c->rec.rule, "invalid_host");
        reply_deny(c, 403, "Forbidden", "invalid host");
        return;
    }
    memcpy(c->rec.host, c->target.host, c->target.host_len + 1);
    char rule[POLICY_RULE_MAX];
    if (policy_check_target(cfg, pol, &c->target, c->is_connect, rule, sizeof rule) ==
        POLICY_DENY) {
        snprintf(c->rec.rule, sizeof c->rec.rule, "%s", rule);
        if (!policy_denied(c, "destination not allowed")) return;
    } else {
        set_allow_rule(c, rule);
    }

    /* upload size known in advance */
    size_t ncl = 0;
    http_msg_header(m, "Content-Length", &ncl);
    if (ncl && (m->parser.flags & F_CONTENT_LENGTH) && m->parser.content_length > c->alert_bytes) {
        if (pol->upload_action == UPLOAD_BLOCK) {
            if (!c->monitor) snprintf(c->rec.rule, sizeof c->rec.rule, "upload_limit");
            if (!policy_denied(c, "request body larger than the upload limit")) return;
        }
    }

    /* rate and byte limits of the workspace */
    lim_worker_t *lw = c->w->lim;
    if (lw && cfg->limits.enabled && cfg->limits.nentries[CONFIG_LIM_EGRESS] > 0) {
        lim_call_t lc = {.cfg = cfg, .ws = c->rec.ws, .egress = true};
        lim_ticket_t *t = NULL;
        lim_pending_t *p = NULL;
        lim_result_t res;
        c->state = CS_RESOLVING; /* not reading the client while the store answers */
        conn_update_reading(c);
        if (lim_check(lw, &lc, &t, &res, request_limits_done, c, &p) == LIM_PENDING) {
            c->lim_pending = p;
            return;
        }
        request_limits_done(c, t, &res);
        return;
    }
    request_route(c);
}

/* The limits answered: refuse (429 / 503) or go on to the destination. */
static void request_limits_done(void *ctx, lim_ticket_t *t, const lim_result_t *res)
{
    conn_t *c = ctx;
    c->lim_pending = NULL;
    egress_record_t *r = &c->rec;
    if (!res->allowed) {
        r->decision = "deny";
        r->reason = res->reason;
        const char *rule = res->status == 429 ? "rate_limit" : "limits_store";
        snprintf(r->rule, sizeof r->rule, "%s", rule);
        char hdrs[128], body[sizeof res->message + 32];
        snprintf(hdrs, sizeof hdrs, "Retry-After: %lld\r\nX-Cdeguard-Rule: %s\r\n",
                 (long long)res->retry_after, rule);
        snprintf(body, sizeof body, "cdeguard: %s\n", res->message);
        bool close_after =
            c->is_connect || http_msg_has_body(&c->req) || !http_msg_keep_alive(&c->req);
        reply_refusal(c, res->status,
                      res->status == 429 ? "Too Many Requests" : "Service Unavailable", hdrs, body,
                      close_after);
        return;
    }
    r->lim_ticket = t;
    r->lim_worker = c->w->lim;
    if (res->fail_open) log_warn("egress: %s", res->message);
    request_route(c);
}

/* Allowed: connect to the literal address, reuse the upstream connection,
 * or resolve the name. */
static void request_route(conn_t *c)
{
    config_t *cfg = c->rec.cfg;
    const config_policy_t *pol = c->rec.pol;
    if (c->target.is_ip) {
        c->cands[0] = c->target.ip;
        c->ncands = 1;
        request_start_connect(c);
        return;
    }
    /* Reuse the upstream connection when it goes to the same host and port. */
    if (c->up_connected && c->up_reusable && !c->is_connect && c->up_port == c->target.port &&
        strcmp(c->up_host, c->target.host) == 0) {
        char r2[POLICY_RULE_MAX];
        if (policy_check_address(cfg, pol, &c->up_addr, r2, sizeof r2) == POLICY_ALLOW) {
            c->cands[0] = c->up_addr;
            c->ncands = 1;
            request_start_connect(c);
            return;
        }
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    c->state = CS_RESOLVING;
    conn_update_reading(c);
    if (uv_getaddrinfo(&c->w->loop, &c->gai, on_resolved, c->target.host, NULL, &hints) < 0) {
        snprintf(c->rec.rule, sizeof c->rec.rule, "resolve_failed");
        reply_deny(c, 502, "Bad Gateway", "name resolution could not start");
        return;
    }
    c->gai_pending = true;
    c->pending_handles++;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    conn_t *c = req->data;
    c->gai_pending = false;
    c->pending_handles--;
    if (c->state == CS_CLOSING) {
        if (res) uv_freeaddrinfo(res);
        if (c->pending_handles == 0) conn_release(c);
        return;
    }
    if (c->state == CS_LINGER) {
        if (res) uv_freeaddrinfo(res);
        return;
    }
    if (status < 0 || !res) {
        if (res) uv_freeaddrinfo(res);
        snprintf(c->rec.rule, sizeof c->rec.rule, "resolve_failed");
        c->rec.decision = "deny";
        reply_deny(c, 502, "Bad Gateway", uv_strerror(status));
        return;
    }
    const config_policy_t *pol = c->rec.pol;
    char first_deny[POLICY_RULE_MAX] = "";
    char first_allow[POLICY_RULE_MAX] = "";
    size_t n = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        netaddr_t a;
        if (ipaddr_from_sockaddr(ai->ai_addr, &a, NULL) < 0) continue;
        bool dup = false;
        for (size_t i = 0; i < n; i++)
            if (ipaddr_equal(&c->cands[i], &a)) dup = true;
        if (dup) continue;
        char rule[POLICY_RULE_MAX];
        if (policy_check_address(c->rec.cfg, pol, &a, rule, sizeof rule) == POLICY_DENY) {
            if (!first_deny[0]) {
                snprintf(first_deny, sizeof first_deny, "%s", rule);
                ipaddr_format(&a, c->rec.resolved, sizeof c->rec.resolved);
            }
        } else if (!first_allow[0]) {
            snprintf(first_allow, sizeof first_allow, "%s", rule);
        }
        if (n < MAX_CANDIDATES) c->cands[n++] = a;
    }
    uv_freeaddrinfo(res);
    c->ncands = n;
    if (n == 0) {
        snprintf(c->rec.rule, sizeof c->rec.rule, "resolve_failed");
        reply_deny(c, 502, "Bad Gateway", "no usable address");
        return;
    }
    if (first_deny[0]) {
        /* One internal address among the answers is enough to refuse. */
        snprintf(c->rec.rule, sizeof c->rec.rule, "%s", first_deny);
        if (!policy_denied(c, "destination address not allowed")) return;
    }
    request_start_connect(c);
}

/* ------------------------------------------------------------------ */
/* upstream connect                                                     */

static void on_connect_timeout(uv_timer_t *t)
{
    conn_t *c = t->data;
    if (c->state != CS_CONNECTING) return;
    metrics_upstream_connect_error();
    snprintf(c->rec.rule, sizeof c->rec.rule, "connect_timeout");
    /* Closing the handle cancels the connect request; answer right away. */
    up_close(c);
    c->state = CS_HEAD;
    reply_deny(c, 504, "Gateway Timeout", "upstream connect timed out");
}

static void send_request_head(conn_t *c);
static void start_hello(conn_t *c);

static void try_connect_next(conn_t *c);

static void on_connected(uv_connect_t *req, int status)
{
    upstream_t *u = req->data;
    conn_t *c = u->c;
    /* A socket closed meanwhile (timeout, client gone) reports ECANCELED
     * before its close callback; it is no longer c->up. */
    if (u != c->up || c->state != CS_CONNECTING) return;
    if (status < 0) {
        metrics_upstream_connect_error();
        up_close(c);
        c->cand_idx++;
        if (c->cand_idx < c->ncands) {
            try_connect_next(c);
            return;
        }
        uv_timer_stop(&c->timer);
        snprintf(c->rec.rule, sizeof c->rec.rule, "connect_failed");
        c->state = CS_HEAD;
        reply_deny(c, 502, "Bad Gateway", uv_strerror(status));
        return;
    }
    uv_timer_stop(&c->timer);
    c->up_connected = true;
    c->up_addr = c->cands[c->cand_idx];
    snprintf(c->up_host, sizeof c->up_host, "%s", c->target.host);
    c->up_port = c->target.port;
    uv_tcp_nodelay(&c->up->tcp, 1);
    if (c->is_connect) {
        start_hello(c);
    } else {
        send_request_head(c);
    }
}

static void try_connect_next(conn_t *c)
{
    const netaddr_t *a = &c->cands[c->cand_idx];
    ipaddr_format(a, c->rec.resolved, sizeof c->rec.resolved);
    struct sockaddr_storage ss;
    socklen_t sl;
    ipaddr_to_sockaddr(a, c->target.port, &ss, &sl);
    upstream_t *u = calloc(1, sizeof *u);
    if (!u) {
        conn_close(c);
        return;
    }
    u->c = c;
    uv_tcp_init(&c->w->loop, &u->tcp);
    u->tcp.data = c;
    u->creq.data = u;
    c->up = u;
    int rc = uv_tcp_connect(&u->creq, &u->tcp, (struct sockaddr *)&ss, on_connected);
    if (rc < 0) {
        metrics_upstream_connect_error();
        up_close(c);
        snprintf(c->rec.rule, sizeof c->rec.rule, "connect_failed");
        c->state = CS_HEAD;
        reply_deny(c, 502, "Bad Gateway", uv_strerror(rc));
        return;
    }
}

static void request_start_connect(conn_t *c)
{
    if (c->state == CS_CLOSING) return;
    /* A kept-alive upstream connection to the same place is reused. */
    if (c->up_connected && c->up_reusable && !c->is_connect && c->up_port == c->target.port &&
        ipaddr_equal(&c->up_addr, &c->cands[0]) && strcmp(c->up_host, c->target.host) == 0) {
        ipaddr_format(&c->up_addr, c->rec.resolved, sizeof c->rec.resolved);
        c->up_reusable = false;
        send_request_head(c);
        return;
    }
    up_close(c);
    c->state = CS_CONNECTING;
    conn_update_reading(c);
    c->cand_idx = 0;
    arm_timer(c, c->rec.cfg->connect_timeout_ms, on_connect_timeout);
    try_connect_next(c);
}

/* ------------------------------------------------------------------ */
/* HTTP relay                                                           */

static int buf_put(char *out, size_t cap, size_t *pos, const char *s, size_t n)
{
    if (*pos + n > cap) return -1;
    memcpy(out + *pos, s, n);
    *pos += n;
    return 0;
}

static int put_headers(const http_msg_t *m, char *out, size_t cap, size_t *pos, bool skip_host)
{
    http_slice_t toks[HTTP_MAX_CONN_TOKENS];
    int nt = http_msg_connection_tokens(m, toks, HTTP_MAX_CONN_TOKENS);
    if (nt < 0) return -1;
    for (size_t i = 0; i < m->nhdr; i++) {
        const http_header_t *h = &m->hdr[i];
        if (http_is_hop_by_hop(m, h->name, toks, (size_t)nt)) continue;
        if (skip_host && http_slice_eq(m, h->name, "Host")) continue;
        if (http_slice_eq(m, h->name, "Via")) continue; /* rewritten below */
        if (buf_put(out, cap, pos, http_ptr(m, h->name), h->name.len) < 0 ||
            buf_put(out, cap, pos, ": ", 2) < 0 ||
            buf_put(out, cap, pos, http_ptr(m, h->value), h->value.len) < 0 ||
            buf_put(out, cap, pos, "\r\n", 2) < 0)
            return -1;
    }
    /* Keep earlier Via hops and add ours (RFC 9110 §7.6.3). */
    size_t nvia = 0;
    const http_header_t *via = http_msg_header(m, "Via", &nvia);
    char line[128];
    if (via) {
        for (size_t i = 0; i < m->nhdr; i++) {
            const http_header_t *h = &m->hdr[i];
            if (!http_slice_eq(m, h->name, "Via")) continue;
            if (buf_put(out, cap, pos, "Via: ", 5) < 0 ||
                buf_put(out, cap, pos, http_ptr(m, h->value), h->value.len) < 0 ||
                buf_put(out, cap, pos, "\r\n", 2) < 0)
                return -1;
        }
    }
    int n = snprintf(line, sizeof line, "Via: %d.%d cdeguard\r\n", m->http_major, m->http_minor);
    return buf_put(out, cap, pos, line, (size_t)n);
}

static void send_request_head(conn_t *c)
{
    http_msg_t *m = &c->req;
    http_url_t u;
    const char *why;
    http_parse_absolute_url(http_ptr(m, m->target), m->target.len, &u, &why);
    size_t cap = m->arena_len + 4 * m->nhdr + 512;
    char *out = malloc(cap);
    if (!out) {
        conn_close(c);
        return;
    }
    size_t pos = 0;
    char line[64];
    const char *meth = llhttp_method_name(m->method);
    int rc = buf_put(out, cap, &pos, meth, strlen(meth));
    rc |= buf_put(out, cap, &pos, " ", 1);
    if (u.path_len == 0 || u.path[0] != '/') rc |= buf_put(out, cap, &pos, "/", 1);
    rc |= buf_put(out, cap, &pos, u.path, u.path_len);
    int n = snprintf(line, sizeof line, " HTTP/%d.%d\r\nHost: ", m->http_major, m->http_minor);
    rc |= buf_put(out, cap, &pos, line, (size_t)n);
    rc |= buf_put(out, cap, &pos, u.authority, u.authority_len);
    rc |= buf_put(out, cap, &pos, "\r\n", 2);
    if (rc < 0 || put_headers(m, out, cap, &pos, true) < 0 ||
        buf_put(out, cap, &pos, "\r\n", 2) < 0) {
        free(out);
        reply_bad_request(c, 400, "Bad Request", "request head cannot be forwarded");
        return;
    }
    c->state = CS_RELAY;
    http_msg_reset(&c->resp);
    if (c->is_head_method) http_msg_expect_no_body(&c->resp);
    c->up_eof = false;
    c->keep_client = http_msg_keep_alive(m);
    if (conn_write(c, (uv_stream_t *)&c->up->tcp, out, pos, 0, false) < 0) {
        conn_close(c);
        return;
    }
    arm_timer(c, c->rec.cfg->idle_timeout_ms, on_idle_timeout);
    client_process(c);
    if (c->state == CS_RELAY) conn_update_reading(c);
}

static void upload_alert(conn_t *c)
{
    if (c->rec.alert) return;
    c->rec.alert = "upload_threshold";
    metrics_upload_alert(metrics_policy_slot(c->rec.pol ? c->rec.pol->name : ""));
}

/* Relay request body bytes from cbuf upstream. */
static void relay_request_body(conn_t *c)
{
    /* A zero-length feed is how a body-less message reaches its end. */
    if (c->c_write_busy || c->req.msg_done || c->is_connect) return;
    size_t used = 0;
    http_event_t ev = http_msg_feed(&c->req, c->cbuf + c->cpos, c->clen - c->cpos, &used);
    if (ev == HTTP_ERROR) {
        c->rec.reason = c->req.err;
        snprintf(c->rec.rule, sizeof c->rec.rule, "bad_request");
        if (!c->resp_head_sent) {
            up_close(c);
            reply_bad_request(c, 400, "Bad Request", c->req.err ? c->req.err : "bad body");
        } else {
            conn_close(c);
        }
        return;
    }
    if (used == 0) return;
    char *slice = c->cbuf + c->cpos;
    c->cpos += used;
    c->rec.bytes_up += used;
    metrics_egress_bytes(MDIR_UP, used);
    if (c->rec.bytes_up > c->alert_bytes) {
        upload_alert(c);
        if (c->block_upload) {
            snprintf(c->rec.rule, sizeof c->rec.rule, "upload_limit");
            c->rec.decision = "deny";
            c->rec.reason = "upload exceeded the limit";
            if (!c->resp_head_sent) {
                up_close(c);
                c->state = CS_HEAD;
                c->rec.status = 403;
                c->is_connect = true; /* forces close after the reply */
                reply_deny(c, 403, "Forbidden", "upload exceeded the limit");
            } else {
                conn_close(c);
            }
            return;
        }
    }
    if (conn_write(c, (uv_stream_t *)&c->up->tcp, slice, used, 1, false) < 0) conn_close(c);
}

static void finish_exchange(conn_t *c);

static void client_process_loop(conn_t *c);

/* Re-entrancy guard: a decision taken inside the loop (a 403 on a
 * pipelined request, a synchronous write) may ask for more processing; the
 * running loop picks it up instead of recursing once per request. */
static void client_process(conn_t *c)
{
    if (c->in_client_process) return;
    c->in_client_process = true;
    client_process_loop(c);
    c->in_client_process = false;
}

static void client_process_loop(conn_t *c)
{
    for (;;) {
        if (c->state == CS_CLOSING) return;
        if (c->state == CS_RELAY) {
            relay_request_body(c);
            return;
        }
        if (c->state == CS_HELLO) {
            start_hello(c);
            return;
        }
        if (c->state != CS_HEAD || c->close_when_flushed || c->writes_to_client > 0) return;
        if (c->cpos == c->clen) {
            if (c->client_eof) conn_close(c);
            return;
        }
        if (!c->head_started) {
            c->head_started = true;
            arm_timer(c, c->w->cfg->client_header_timeout_ms, on_header_timeout);
        }
        size_t used = 0;
        http_event_t ev = http_msg_feed(&c->req, c->cbuf + c->cpos, c->clen - c->cpos, &used);
        c->cpos += used;
        if (ev == HTTP_ERROR) {
            reply_bad_request(c, 400, "Bad Request", c->req.err ? c->req.err : "malformed");
            return;
        }
        if (ev == HTTP_HEAD_TOO_BIG) {
            reply_bad_request(c, 431, "Request Header Fields Too Large", "request head too large");
            return;
        }
        if (ev == HTTP_HEAD_DONE || ev == HTTP_MSG_DONE) {
            request_head_done(c);
            continue;
        }
        if (c->cpos == c->clen && c->client_eof) {
            conn_close(c);
            return;
        }
        return; /* need more */
    }
}

static void send_response_head(conn_t *c)
{
    http_msg_t *m = &c->resp;
    size_t cap = m->arena_len + 4 * m->nhdr + 512;
    char *out = malloc(cap);
    if (!out) {
        conn_close(c);
        return;
    }
    size_t pos = 0;
    char line[64];
    /* The client gets our version (1.1), or 1.0 when it spoke 1.0. */
    int n = snprintf(line, sizeof line, "HTTP/1.%d %d ", c->req.http_minor == 0 ? 0 : 1, m->status);
    int rc = buf_put(out, cap, &pos, line, (size_t)n);
    rc |= buf_put(out, cap, &pos, http_ptr(m, m->reason), m->reason.len);
    rc |= buf_put(out, cap, &pos, "\r\n", 2);
    if (rc < 0 || put_headers(m, out, cap, &pos, false) < 0) {
        free(out);
        snprintf(c->rec.rule, sizeof c->rec.rule, "bad_response");
        up_close(c);
        c->state = CS_HEAD;
        reply_deny(c, 502, "Bad Gateway", "upstream response head cannot be forwarded");
        return;
    }
    bool informational = m->status >= 100 && m->status < 200;
    if (!informational) {
        bool eof_body = http_msg_body_until_eof(m);
        if (eof_body || !c->keep_client || c->w->draining || !http_msg_keep_alive(&c->req))
            c->keep_client = false;
        const char *conn_hdr = c->keep_client
                                   ? (c->req.http_minor == 0 ? "Connection: keep-alive\r\n" : "")
                                   : "Connection: close\r\n";
        rc = buf_put(out, cap, &pos, conn_hdr, strlen(conn_hdr));
    }
    rc |= buf_put(out, cap, &pos, "\r\n", 2);
    if (rc < 0) {
        free(out);
        conn_close(c);
        return;
    }
    if (!informational) {
        c->resp_head_sent = true;
        c->rec.status = m->status;
        if (!c->rec.latency_recorded) {
            c->rec.latency_recorded = true;
            metrics_egress_latency((double)(clock_mono_ns() - c->rec.start_ns) / 1e9);
        }
    }
    c->rec.bytes_down += pos;
    metrics_egress_bytes(MDIR_DOWN, pos);
    if (informational) {
        if (conn_write(c, (uv_stream_t *)&c->client, out, pos, 0, false) < 0) conn_close(c);
        return;
    }
    /* Held back so that it leaves with the first body bytes in one writev. */
    free(c->resp_head);
    c->resp_head = out;
    c->resp_head_len = pos;
}

static void up_eof_reached(conn_t *c)
{
    http_event_t ev = http_msg_finish(&c->resp);
    if (ev == HTTP_MSG_DONE && c->resp.head_done) {
        c->up_reusable = false;
        c->keep_client = false;
        finish_exchange(c);
    } else if (!c->resp_head_sent) {
        snprintf(c->rec.rule, sizeof c->rec.rule, "upstream_closed");
        up_close(c);
        c->state = CS_HEAD;
        c->is_connect = true; /* close after the reply */
        reply_deny(c, 502, "Bad Gateway", "upstream closed without a response");
    } else {
        c->rec.reason = "upstream closed mid-response";
        conn_close(c);
    }
}

static void up_process(conn_t *c)
{
    for (;;) {
        if (c->state != CS_RELAY || c->u_write_busy) return;
        size_t avail = c->ulen - c->upos;
        bool head_was_done = c->resp.head_done;
        if (avail == 0 && !head_was_done) {
            if (c->up_eof) up_eof_reached(c);
            return;
        }
        size_t used = 0;
        /* Once the head is done a zero-length feed lets a body-less
         * response (HEAD, 204, 304) reach its end. */
        http_event_t ev = http_msg_feed(&c->resp, c->ubuf + c->upos, avail, &used);
        if (ev == HTTP_ERROR || ev == HTTP_HEAD_TOO_BIG) {
            c->rec.reason = c->resp.err;
            if (!c->resp_head_sent) {
                snprintf(c->rec.rule, sizeof c->rec.rule, "bad_response");
                up_close(c);
                c->state = CS_HEAD;
                c->is_connect = true;
                reply_deny(c, 502, "Bad Gateway", "malformed upstream response");
            } else {
                conn_close(c);
            }
            return;
        }
        if (!head_was_done) {
            c->upos += used;
            if (ev == HTTP_HEAD_DONE) {
                send_response_head(c);
                continue;
            }
            if (c->up_eof) up_eof_reached(c);
            return; /* need more of the head */
        }
        char *slice = c->ubuf + c->upos;
        c->upos += used;
        if (used > 0) {
            c->rec.bytes_down += used;
            metrics_egress_bytes(MDIR_DOWN, used);
            char *head = c->resp_head;
            size_t head_len = head ? c->resp_head_len : 0;
            c->resp_head = NULL;
            if (conn_write2(c, (uv_stream_t *)&c->client, head, head_len, slice, used, 2, false) <
                0) {
                conn_close(c);
                return;
            }
        }
        if (ev == HTTP_MSG_DONE) {
            finish_exchange(c);
            return;
        }
        if (used == 0) {
            flush_resp_head(c);
            if (c->up_eof) up_eof_reached(c);
            return;
        }
    }
}

/* A response message is complete (upstream side). */
static void finish_exchange(conn_t *c)
{
    http_msg_t *m = &c->resp;
    flush_resp_head(c);
    if (m->status >= 100 && m->status < 200 && m->status != 101) {
        bool head_req = c->is_head_method;
        http_msg_reset(m);
        if (head_req) http_msg_expect_no_body(m);
        return; /* the final response follows */
    }
    if (!c->req.msg_done) {
        /* Upstream answered before the request body ended: cannot resync. */
        c->keep_client = false;
        c->up_reusable = false;
    } else {
        c->up_reusable = http_msg_keep_alive(m) && c->upos == c->ulen && !c->up_eof;
    }
    egress_record_emit(&c->rec);
    if (!c->up_reusable) up_close(c);
    if (!c->keep_client || c->w->draining) {
        c->close_when_flushed = true;
        if (c->writes_to_client == 0) conn_close(c);
        return;
    }
    c->state = CS_HEAD;
    http_msg_reset(&c->req);
    c->head_started = false;
    arm_timer(c, c->w->cfg->idle_timeout_ms, on_idle_timeout);
    conn_update_reading(c);
    if (c->writes_to_client == 0) client_process(c);
}

/* ------------------------------------------------------------------ */
/* CONNECT                                                              */

static void hand_to_tunnel(conn_t *c)
{
    uv_timer_stop(&c->timer);
    uv_os_fd_t cfd, ufd;
    if (uv_fileno((uv_handle_t *)&c->client, &cfd) < 0 || !c->up ||
        uv_fileno((uv_handle_t *)&c->up->tcp, &ufd) < 0) {
        conn_close(c);
        return;
    }
    int cdup = dup(cfd), udup = dup(ufd);
    if (cdup < 0 || udup < 0) {
        if (cdup >= 0) close(cdup);
        if (udup >= 0) close(udup);
        c->rec.reason = "out of file descriptors";
        conn_close(c);
        return;
    }
    uv_read_stop((uv_stream_t *)&c->client);
    c->client_reading = false;
    const config_t *cfg = c->rec.cfg;
    const config_policy_t *pol = c->rec.pol;
    tunnel_opts_t o = {
        .alert_bytes = c->alert_bytes,
        .block_upload = c->block_upload,
        .idle_ms = cfg->idle_timeout_ms,
        .tls_only = port_set_has(&pol->tls_only_ports, c->target.port),
        .hello_timeout_ms = cfg->client_hello_timeout_ms,
        .monitor = pol->mode == POLICY_MONITOR,
        .host = c->target.host,
        .host_is_ip = c->target.is_ip,
    };
    tunnel_start(c->w, cdup, udup, c->cbuf + c->cpos, c->clen - c->cpos, &c->rec, &o);
    c->cpos = c->clen;
    conn_close(c);
}

/* CONNECT: answer 200 once connected; the tunnel takes over when it is out. */
static void start_hello(conn_t *c)
{
    if (c->state != CS_HELLO) {
        c->state = CS_HELLO;
        static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
        char *out = malloc(sizeof ok);
        if (!out) {
            conn_close(c);
            return;
        }
        memcpy(out, ok, sizeof ok);
        c->rec.status = 200;
        if (conn_write(c, (uv_stream_t *)&c->client, out, sizeof ok - 1, 0, false) < 0) {
            conn_close(c);
            return;
        }
        if (!c->rec.latency_recorded) {
            c->rec.latency_recorded = true;
            metrics_egress_latency((double)(clock_mono_ns() - c->rec.start_ns) / 1e9);
        }
        if (c->state == CS_CLOSING) return;
        if (c->writes_to_client > 0) {
            conn_update_reading(c);
            return; /* goes on from on_write once the 200 is out */
        }
    }
    if (c->writes_to_client > 0) return;
    hand_to_tunnel(c);
}

/* ------------------------------------------------------------------ */
/* read callbacks                                                       */

static void on_client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    conn_t *c = s->data;
    if (c->state == CS_CLOSING) return;
    if (nread == 0) return;
    if (c->state == CS_LINGER) { /* dropped; the client's EOF (or an error) ends it */
        c->cpos = c->clen = 0;
        if (nread < 0 || (c->linger_bytes += (size_t)nread) > LINGER_MAX) conn_close(c);
        return;
    }
    if (nread == UV_ENOBUFS) { /* buffer full: wait for the writes to drain it */
        uv_read_stop(s);
        c->client_reading = false;
        return;
    }
    if (nread < 0) {
        if (nread != UV_EOF) {
            if (c->rec.active) c->rec.reason = "client connection error";
            conn_close(c);
            return;
        }
        c->client_eof = true;
        uv_read_stop(s);
        c->client_reading = false;
        if (c->state == CS_RELAY && !c->req.msg_done) {
            c->rec.reason = "client closed mid-request";
            conn_close(c);
            return;
        }
        if (c->state == CS_HEAD || c->state == CS_HELLO) client_process(c);
        if (c->state != CS_CLOSING && (c->state == CS_RESOLVING || c->state == CS_CONNECTING)) {
            c->rec.reason = "client closed";
            conn_close(c);
        }
        return;
    }
    c->clen += (size_t)nread;
    if (c->state == CS_RELAY) arm_timer(c, c->rec.cfg->idle_timeout_ms, on_idle_timeout);
    client_process(c);
    conn_update_reading(c);
}

static void on_up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    conn_t *c = ((upstream_t *)s)->c;
    if (c->state == CS_CLOSING) return;
    if (nread == 0) return;
    if (nread == UV_ENOBUFS) {
        uv_read_stop(s);
        c->up_reading = false;
        return;
    }
    if (c->state != CS_RELAY) {
        /* Bytes or EOF from an idle kept-alive upstream: it is no longer usable. */
        up_close(c);
        return;
    }
    if (nread < 0) {
        c->up_eof = true;
        uv_read_stop(s);
        c->up_reading = false;
    } else {
        c->ulen += (size_t)nread;
        arm_timer(c, c->rec.cfg->idle_timeout_ms, on_idle_timeout);
    }
    up_process(c);
    conn_update_reading(c);
}

/* ------------------------------------------------------------------ */
/* accept, drain                                                        */

static void on_connection(uv_stream_t *server, int status)
{
    worker_t *w = server->data;
    if (status < 0) {
        log_warn("egress accept failed: %s", uv_strerror(status));
        return;
    }
    conn_t *c = calloc(1, sizeof *c);
    char *cb = malloc(CONN_BUF), *ub = malloc(CONN_BUF);
    if (!c || !cb || !ub) {
        free(c);
        free(cb);
        free(ub);
        uv_tcp_t tmp;
        uv_tcp_init(&w->loop, &tmp);
        if (uv_accept(server, (uv_stream_t *)&tmp) == 0) uv_close((uv_handle_t *)&tmp, NULL);
        return;
    }
    c->w = w;
    c->cbuf = cb;
    c->ubuf = ub;
    c->state = CS_HEAD;
    uv_tcp_init(&w->loop, &c->client);
    c->client.data = c;
    c->gai.data = c;
    uv_timer_init(&w->loop, &c->timer);
    c->timer.data = c;
    http_msg_init(&c->req, HTTP_REQUEST, w->cfg->max_header_bytes);
    http_msg_init(&c->resp, HTTP_RESPONSE, w->cfg->max_header_bytes);
    conn_link(c);
    worker_conn_count(w, 1);
    if (uv_accept(server, (uv_stream_t *)&c->client) < 0) {
        conn_close(c);
        return;
    }
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    if (uv_tcp_getpeername(&c->client, (struct sockaddr *)&ss, &sl) < 0 ||
        ipaddr_from_sockaddr((struct sockaddr *)&ss, &c->peer, &c->peer_port) < 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->client, 1);
    arm_timer(c, w->cfg->idle_timeout_ms, on_idle_timeout);
    conn_update_reading(c);
}

int egress_start(worker_t *w, char *err, size_t errlen)
{
    if (w->listen_fd < 0) return 0; /* listeners.egress: off */
    uv_tcp_init(&w->loop, &w->egress_listener);
    w->egress_listener.data = w;
    int rc = uv_tcp_open(&w->egress_listener, w->listen_fd);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&w->egress_listener, 1024, on_connection);
    if (rc < 0) {
        snprintf(err, errlen, "egress listener: %s", uv_strerror(rc));
        return -1;
    }
    w->egress_listening = true;
    return 0;
}

void egress_drain(worker_t *w)
{
    if (w->egress_listening) {
        w->egress_listening = false;
        uv_close((uv_handle_t *)&w->egress_listener, NULL);
    }
    /* Idle keep-alive connections go now; busy ones close after their response. */
    conn_t *next;
    for (conn_t *c = w->conns; c; c = next) {
        next = c->next;
        if (c->state == CS_HEAD && !c->head_started && c->writes_to_client == 0) conn_close(c);
    }
}

void egress_close_all(worker_t *w)
{
    conn_t *next;
    for (conn_t *c = w->conns; c; c = next) {
        next = c->next;
        if (c->state != CS_CLOSING) {
            if (c->rec.active) c->rec.reason = "shutdown deadline";
            conn_close(c);
        }
    }
    tunnel_close_all(w);
}
