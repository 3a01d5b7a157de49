/*
 * upstream — the gateway's HTTP/1.1 client to LLM providers: resolve,
 * connect, TLS with certificate and host-name verification (SNI), one
 * request at a time per connection, a keep-alive pool per worker.
 *
 * gw_up_request() takes a connection for the endpoint from the pool (or
 * opens one), sends the request head and body, and reports the response
 * through callbacks: on_head once, on_body for each slice of the decoded
 * body (chunk framing removed), then exactly one of on_done or on_fail.
 * The connection returns to the pool after on_done when the response
 * allows keep-alive.  gw_up_abort() ends a request early (client gone): the
 * connection is closed, never reused, and no callback follows.
 *
 * Timeouts: connect (resolve + TCP + TLS), first byte (request sent →
 * response head), idle (silence while the body streams).  Failures carry a
 * kind for metrics: "connect", "tls", "timeout", "reset", "protocol".
 * A request that fails on a reused connection before any response byte
 * arrived (the provider closed an idle connection as it was reused) is
 * retried once on a new connection.
 *
 * Memory: the pool owns its idle connections; a connection in use belongs
 * to its request until on_done / on_fail / gw_up_abort.  The request head
 * is copied (it carries the provider key: the copy is wiped when it is
 * replaced or freed); the body is borrowed and must live until one of
 * those.
 */
#ifndef CDEGUARD_GATEWAY_UPSTREAM_H
#define CDEGUARD_GATEWAY_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config/config.h"
#include "http/http1.h"
#include "tls/tlsio.h"

typedef struct gw_pool gw_pool_t;
typedef struct gw_up gw_up_t;

typedef struct gw_up_cbs {
    void (*on_head)(void *ctx, const http_msg_t *resp);
    void (*on_body)(void *ctx, const char *data, size_t len);
    void (*on_done)(void *ctx);
    void (*on_fail)(void *ctx, const char *kind, const char *why, bool got_head);
    /* the request moved to a new connection (retry): use `u` from now on */
    void (*on_retry)(void *ctx, gw_up_t *u);
} gw_up_cbs_t;

typedef struct gw_up_opts {
    uint64_t connect_timeout_ms, first_byte_timeout_ms, idle_timeout_ms;
    size_t max_head; /* response head limit */
} gw_up_opts_t;

/* tls_ctx: client context for https endpoints (verification on). */
gw_pool_t *gw_pool_new(uv_loop_t *loop, SSL_CTX *tls_ctx, size_t max_idle_per_endpoint);
/* Close idle connections; connections in use close when their request ends. */
void gw_pool_free(gw_pool_t *p);
size_t gw_pool_idle(const gw_pool_t *p);

/* NULL (with why) when nothing could be started; otherwise callbacks follow. */
gw_up_t *gw_up_request(gw_pool_t *p, const config_gw_endpoint_t *ep, const char *head,
                       size_t head_len, const char *body, size_t body_len, const gw_up_opts_t *o,
                       const gw_up_cbs_t *cbs, void *ctx, char *why, size_t whylen);
void gw_up_abort(gw_up_t *u);
/* Back-pressure: stop / resume reading the response. */
void gw_up_pause(gw_up_t *u, bool paused);
/* "host:port" (for audit). */
const char *gw_up_peer(const gw_up_t *u);

#endif
