/*
 * upstream — provider connections and the keep-alive pool (see upstream.h).
 *
 * A gw_up_t is one connection.  Its life:
 *
 *   RESOLVE ─▶ CONNECT (TCP, TLS) ─▶ SEND/HEAD ─▶ BODY ─▶ IDLE (pooled) ─▶ SEND ...
 *        any failure / abort / pool expiry ─▶ CLOSED (freed when its handles are)
 *
 * It owns a timer (every timeout is the same timer, re-armed per phase), its
 * gw_io_t and, while resolving, a getaddrinfo request; it is freed when the
 * last of these has called back (`handles`).  Idle connections keep reading
 * so that a provider closing one is noticed and it leaves the pool.
 */
#include "gateway/upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "gateway/io.h"
#include "net/ipaddr.h"

#define POOL_IDLE_MS 30000
#define KEY_MAX 320

typedef enum { UP_RESOLVE, UP_CONNECT, UP_HEAD, UP_BODY, UP_IDLE, UP_CLOSED } up_state_t;

struct gw_pool {
    uv_loop_t *loop;
    SSL_CTX *tls_ctx;
    size_t max_idle;
    gw_up_t *idle; /* doubly linked through prev/next */
    size_t nidle;
    size_t live; /* gw_up_t not yet freed */
    bool freeing;
};

struct gw_up {
    gw_io_t io;
    bool io_init;
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    int handles; /* callbacks still due: timer close, io close, gai */
    gw_pool_t *pool;
    gw_up_t *prev, *next;
    up_state_t state;
    char key[KEY_MAX]; /* "tls|host|port" */
    char host[256];
    char peer[300];
    bool reused;   /* this request runs on a pooled connection */
    bool got_byte; /* some response byte arrived for this request */
    http_msg_t resp;
    /* the request */
    char *head;
    size_t head_len;
    const char *body;
    size_t body_len;
    gw_up_opts_t opts;
    const gw_up_cbs_t *cbs;
    void *ctx;               /* NULL once the request is over */
    config_gw_endpoint_t ep; /* host (pointing at host[]), port and tls: enough for a retry */
};

static const gw_io_cbs_t up_io_cbs;
static void up_close(gw_up_t *u);
static void up_start_connect(gw_up_t *u, const struct sockaddr *sa);

/* ---- lifetime ---- */

static void up_release(gw_up_t *u)
{
    if (--u->handles > 0) return;
    gw_pool_t *p = u->pool;
    http_msg_free(&u->resp);
    if (u->head) OPENSSL_cleanse(u->head, u->head_len); /* it carries the provider key */
    free(u->head);
    free(u);
    if (--p->live == 0 && p->freeing) free(p);
}

static void up_timer_closed(uv_handle_t *h)
{
    up_release(h->data);
}

static void pool_unlink(gw_up_t *u)
{
    if (u->state != UP_IDLE) return;
    gw_pool_t *p = u->pool;
    if (u->prev)
        u->prev->next = u->next;
    else
        p->idle = u->next;
    if (u->next) u->next->prev = u->prev;
    u->prev = u->next = NULL;
    p->nidle--;
}

static void up_close(gw_up_t *u)
{
    if (u->state == UP_CLOSED) return;
    pool_unlink(u);
    u->state = UP_CLOSED;
    u->ctx = NULL;
    uv_timer_stop(&u->timer);
    uv_close((uv_handle_t *)&u->timer, up_timer_closed);
    if (u->io_init) gw_io_close(&u->io);
}

/* ---- request outcome ---- */

static void up_fail(gw_up_t *u, const char *kind, const char *why);

static void up_arm(gw_up_t *u, uint64_t ms, uv_timer_cb cb)
{
    uv_timer_stop(&u->timer);
    if (ms) uv_timer_start(&u->timer, cb, ms, 0);
}

static void up_timeout(uv_timer_t *t)
{
    gw_up_t *u = t->data;
    switch (u->state) {
    case UP_RESOLVE:
    case UP_CONNECT:
        up_fail(u, "timeout", "connect timeout");
        break;
    case UP_HEAD:
        up_fail(u, "timeout", "no response from the provider within the first-byte timeout");
        break;
    case UP_BODY:
        up_fail(u, "timeout", "the provider's response stalled (idle timeout)");
        break;
    case UP_IDLE:
        up_close(u);
        break;
    default:
        break;
    }
}

static int up_send(gw_up_t *u)
{
    u->state = UP_HEAD;
    u->got_byte = false;
    http_msg_reset(&u->resp);
    up_arm(u, u->opts.first_byte_timeout_ms, up_timeout);
    uv_buf_t b[2] = {uv_buf_init(u->head, (unsigned)u->head_len),
                     uv_buf_init((char *)u->body, (unsigned)u->body_len)};
    if (gw_io_writev(&u->io, b, 2) < 0) return -1;
    gw_io_read_start(&u->io);
    return 0;
}

/* Retry on a new connection: same request, fresh gw_up_t. */
static bool up_retry(gw_up_t *u)
{
    if (!u->reused || u->got_byte || !u->ctx) return false;
    char why[64];
    gw_up_t *n = gw_up_request(u->pool, &u->ep, u->head, u->head_len, u->body, u->body_len,
                               &u->opts, u->cbs, u->ctx, why, sizeof why);
    if (!n) return false;
    /* the caller's handle moves to n; u closes without callbacks */
    void *ctx = u->ctx;
    u->ctx = NULL;
    up_close(u);
    u->cbs->on_retry(ctx, n);
    return true;
}

static void up_fail(gw_up_t *u, const char *kind, const char *why)
{
    if (!u->ctx) {
        up_close(u);
        return;
    }
    const gw_up_cbs_t *cbs = u->cbs;
    void *ctx = u->ctx;
    bool got_head = u->state == UP_BODY;
    u->ctx = NULL;
    up_close(u);
    cbs->on_fail(ctx, kind, why, got_head);
}

static void up_done(gw_up_t *u, bool reusable)
{
    const gw_up_cbs_t *cbs = u->cbs;
    void *ctx = u->ctx;
    u->ctx = NULL;
    gw_pool_t *p = u->pool;
    size_t same = 0;
    for (gw_up_t *i = p->idle; i; i = i->next)
        same += strcmp(i->key, u->key) == 0;
    if (reusable && !p->freeing && same < p->max_idle) {
        u->state = UP_IDLE;
        u->reused = false;
        u->next = p->idle;
        u->prev = NULL;
        if (p->idle) p->idle->prev = u;
        p->idle = u;
        p->nidle++;
        up_arm(u, POOL_IDLE_MS, up_timeout);
        gw_io_read_start(&u->io);
    } else {
        up_close(u);
    }
    if (ctx) cbs->on_done(ctx);
}

/* ---- io callbacks ---- */

static int up_body(void *arg, const char *data, size_t len)
{
    gw_up_t *u = arg;
    if (u->ctx && len) u->cbs->on_body(u->ctx, data, len);
    return 0;
}

static void up_on_data(gw_io_t *io, const char *data, size_t len)
{
    gw_up_t *u = io->owner;
    if (u->state == UP_IDLE) { /* bytes on an idle connection: not HTTP we can use */
        up_close(u);
        return;
    }
    if (u->state != UP_HEAD && u->state != UP_BODY) return;
    u->got_byte = true;
    while (len > 0 && u->ctx) {
        size_t used = 0;
        http_event_t ev = http_msg_feed(&u->resp, data, len, &used);
        if (!u->ctx) return; /* the caller aborted from on_body */
        if (ev < 0) {
            up_fail(u, "protocol",
                    u->resp.err ? u->resp.err : "the provider's response is not valid HTTP/1.1");
            return;
        }
        data += used;
        len -= used;
        if (ev == HTTP_HEAD_DONE) {
            if (u->resp.status >= 100 && u->resp.status < 200) {
                http_msg_reset(&u->resp);
                continue;
            }
            u->state = UP_BODY;
            up_arm(u, u->opts.idle_timeout_ms, up_timeout);
            u->cbs->on_head(u->ctx, &u->resp);
            if (!u->ctx) return; /* aborted by the caller */
        } else if (ev == HTTP_MSG_DONE) {
            bool reusable = http_msg_keep_alive(&u->resp) && len == 0;
            up_done(u, reusable);
            return;
        } else if (u->state == UP_BODY) {
            up_arm(u, u->opts.idle_timeout_ms, up_timeout);
        }
    }
    if (u->state == UP_BODY && u->ctx) up_arm(u, u->opts.idle_timeout_ms, up_timeout);
}

static void up_on_eof(gw_io_t *io)
{
    gw_up_t *u = io->owner;
    if (u->state == UP_BODY && u->ctx && u->resp.head_done) {
        /* a body delimited by the end of the connection completes here */
        if (http_msg_finish(&u->resp) == HTTP_MSG_DONE) {
            up_done(u, false);
            return;
        }
        up_fail(u, "reset", "the provider closed the connection before the response ended");
        return;
    }
    if ((u->state == UP_HEAD) && up_retry(u)) return;
    if (u->state == UP_HEAD || u->state == UP_CONNECT)
        up_fail(u, "reset", "the provider closed the connection without a response");
    else
        up_close(u);
}

static void up_on_error(gw_io_t *io, gw_io_err_t kind, const char *why)
{
    gw_up_t *u = io->owner;
    char msg[640];
    if (u->state == UP_HEAD && up_retry(u)) return;
    if (kind == GW_IO_ERR_CONNECT) {
        snprintf(msg, sizeof msg, "cannot connect to %s: %s", u->peer, why);
        up_fail(u, "connect", msg);
    } else if (kind == GW_IO_ERR_TLS) {
        snprintf(msg, sizeof msg, "TLS with %s failed: %s", u->peer, why);
        up_fail(u, "tls", msg);
    } else {
        snprintf(msg, sizeof msg, "connection to %s failed: %s", u->peer, why);
        up_fail(u, "reset", msg);
    }
}

static void up_on_ready(gw_io_t *io)
{
    gw_up_t *u = io->owner;
    if (u->state != UP_CONNECT) return;
    if (up_send(u) < 0) up_fail(u, "reset", io->err[0] ? io->err : "write failed");
}

static void up_on_closed(gw_io_t *io)
{
    gw_up_t *u = io->owner;
    if (u->state != UP_CLOSED) { /* closed under us (connect could not start) */
        up_fail(u, "connect", "cannot connect");
    }
    up_release(u);
}

static const gw_io_cbs_t up_io_cbs = {
    .on_data = up_on_data,
    .on_eof = up_on_eof,
    .on_error = up_on_error,
    .on_ready = up_on_ready,
    .on_drain = NULL,
    .on_closed = up_on_closed,
};

/* ---- connecting ---- */

static void up_start_connect(gw_up_t *u, const struct sockaddr *sa)
{
    u->state = UP_CONNECT;
    u->handles++; /* the io */
    if (gw_io_connect(&u->io, u->pool->loop, sa, u->ep.tls ? u->pool->tls_ctx : NULL, u->host,
                      &up_io_cbs, u) < 0) {
        u->handles--;
        up_fail(u, "connect", "out of memory");
        return;
    }
    u->io_init = true;
}

static void up_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    gw_up_t *u = req->data;
    if (u->state != UP_RESOLVE) { /* closed while resolving */
        uv_freeaddrinfo(res);
        up_release(u);
        return;
    }
    if (status < 0 || !res) {
        char msg[400];
        snprintf(msg, sizeof msg, "cannot resolve %s: %s", u->host, uv_strerror(status));
        uv_freeaddrinfo(res);
        up_fail(u, "connect", msg);
        up_release(u);
        return;
    }
    struct sockaddr_storage ss;
    memcpy(&ss, res->ai_addr, res->ai_addrlen);
    uv_freeaddrinfo(res);
    if (ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = htons(u->ep.port);
    else
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(u->ep.port);
    up_start_connect(u, (struct sockaddr *)&ss);
    up_release(u); /* the gai reference */
}

/* The request a connection carries now (the head copy is owned; an
 * earlier one is wiped: it carries the provider key). */
static void up_set_request(gw_up_t *u, char *head, size_t head_len, const char *body,
                           size_t body_len, const gw_up_opts_t *o, const gw_up_cbs_t *cbs,
                           void *ctx)
{
    if (u->head) OPENSSL_cleanse(u->head, u->head_len);
    free(u->head);
    u->head = head;
    u->head_len = head_len;
    u->body = body;
    u->body_len = body_len;
    u->opts = *o;
    u->cbs = cbs;
    u->ctx = ctx;
}

static gw_up_t *pool_take(gw_pool_t *p, const char *key)
{
    for (gw_up_t *u = p->idle; u; u = u->next) {
        if (strcmp(u->key, key) != 0) continue;
        pool_unlink(u);
        return u;
    }
    return NULL;
}

gw_up_t *gw_up_request(gw_pool_t *p, const config_gw_endpoint_t *ep, const char *head,
                       size_t head_len, const char *body, size_t body_len, const gw_up_opts_t *o,
                       const gw_up_cbs_t *cbs, void *ctx, char *why, size_t whylen)
{
    char key[KEY_MAX];
    snprintf(key, sizeof key, "%d|%s|%u", ep->tls ? 1 : 0, ep->host, ep->port);
    gw_up_t *u = pool_take(p, key);
    char *hcopy = malloc(head_len ? head_len : 1);
    if (!hcopy) {
        snprintf(why, whylen, "out of memory");
        if (u) up_close(u);
        return NULL;
    }
    memcpy(hcopy, head, head_len);
    if (u) {
        up_set_request(u, hcopy, head_len, body, body_len, o, cbs, ctx);
        u->reused = true;
        if (up_send(u) < 0) {
            /* a pooled connection that cannot take the write: start afresh */
            u->ctx = NULL;
            up_close(u);
            return gw_up_request(p, ep, head, head_len, body, body_len, o, cbs, ctx, why, whylen);
        }
        return u;
    }
    u = calloc(1, sizeof *u);
    if (!u) {
        free(hcopy);
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    u->pool = p;
    p->live++;
    snprintf(u->key, sizeof u->key, "%s", key);
    snprintf(u->host, sizeof u->host, "%s", ep->host);
    u->ep.host = u->host;
    u->ep.port = ep->port;
    u->ep.tls = ep->tls;
    snprintf(u->peer, sizeof u->peer, strchr(ep->host, ':') ? "[%s]:%u" : "%s:%u", ep->host,
             ep->port);
    up_set_request(u, hcopy, head_len, body, body_len, o, cbs, ctx);
    if (http_msg_init(&u->resp, HTTP_RESPONSE, o->max_head ? o->max_head : 65536) < 0) {
        free(hcopy);
        free(u);
        p->live--;
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    http_msg_set_body_sink(&u->resp, up_body, u);
    uv_timer_init(p->loop, &u->timer);
    u->timer.data = u;
    u->handles = 1; /* the timer */
    u->state = UP_RESOLVE;
    up_arm(u, o->connect_timeout_ms, up_timeout);

    netaddr_t a;
    if (ipaddr_parse_strict(ep->host, strlen(ep->host), &a) == 0) {
        struct sockaddr_storage ss;
        socklen_t sl;
        ipaddr_to_sockaddr(&a, ep->port, &ss, &sl);
        up_start_connect(u, (struct sockaddr *)&ss);
        return u;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    u->gai.data = u;
    u->handles++;
    if (uv_getaddrinfo(p->loop, &u->gai, up_resolved, ep->host, NULL, &hints) < 0) {
        u->handles--;
        u->ctx = NULL;
        up_close(u);
        snprintf(why, whylen, "cannot resolve %s", ep->host);
        return NULL;
    }
    return u;
}

void gw_up_abort(gw_up_t *u)
{
    if (!u) return;
    u->ctx = NULL;
    up_close(u);
}

void gw_up_pause(gw_up_t *u, bool paused)
{
    if (!u->io_init || u->state == UP_CLOSED) return;
    if (paused)
        gw_io_read_stop(&u->io);
    else
        gw_io_read_start(&u->io);
}

const char *gw_up_peer(const gw_up_t *u)
{
    return u->peer;
}

gw_pool_t *gw_pool_new(uv_loop_t *loop, SSL_CTX *tls_ctx, size_t max_idle_per_endpoint)
{
    gw_pool_t *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->loop = loop;
    p->tls_ctx = tls_ctx;
    p->max_idle = max_idle_per_endpoint;
    return p;
}

void gw_pool_free(gw_pool_t *p)
{
    if (!p) return;
    p->freeing = true;
    while (p->idle)
        up_close(p->idle);
    if (p->live == 0) free(p); /* else the last connection frees it */
}

size_t gw_pool_idle(const gw_pool_t *p)
{
    return p->nidle;
}
