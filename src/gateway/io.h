/*
 * io — one TCP connection of the gateway, plain or TLS, on a libuv loop.
 *
 * The gateway's client connections (server side, optional TLS and mTLS)
 * and its upstream connections (client side, TLS with verification) have
 * the same needs: read application bytes, write them with back-pressure,
 * learn about EOF, errors and the end of a handshake, and close.  A gw_io_t
 * does that over a uv_tcp_t and an optional tlsio_t.
 *
 * Callbacks (all on the loop thread) may call gw_io_close() or stop
 * reading; the io checks for that after each one.  on_closed is the last
 * callback: the owner may free the io's memory there and not before.
 *
 * Writes are copied (or encrypted) into heap buffers and queued; `queued`
 * counts the bytes not yet handed to the kernel, which owners use for
 * back-pressure (stop reading the source above a high-water mark, resume in
 * on_drain).  Socket reads share one GW_IO_BUF buffer per thread; a TLS
 * connection has its own buffer for decrypted bytes.
 */
#ifndef CDEGUARD_GATEWAY_IO_H
#define CDEGUARD_GATEWAY_IO_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "tls/tlsio.h"

#define GW_IO_BUF (16 * 1024)
#define GW_IO_LOW_WATER (64 * 1024)

typedef struct gw_io gw_io_t;

typedef enum {
    GW_IO_ERR_CONNECT = 0, /* TCP connect failed */
    GW_IO_ERR_TLS,         /* handshake or verification failed */
    GW_IO_ERR_RESET,       /* read/write error, reset */
} gw_io_err_t;

typedef struct gw_io_cbs {
    void (*on_data)(gw_io_t *io, const char *data, size_t len);
    void (*on_eof)(gw_io_t *io);
    void (*on_error)(gw_io_t *io, gw_io_err_t kind, const char *why);
    void (*on_ready)(gw_io_t *io); /* connected (and TLS handshake done) */
    void (*on_drain)(gw_io_t *io); /* queued fell below GW_IO_LOW_WATER (or to 0
                                      with notify_empty) */
    void (*on_closed)(gw_io_t *io);
} gw_io_cbs_t;

struct gw_io {
    uv_tcp_t tcp;
    uv_connect_t creq;
    tlsio_t *tls;
    const gw_io_cbs_t *cbs;
    void *owner;
    char *plain;   /* own decrypted-bytes buffer, only when the thread's was held (io.c) */
    size_t queued; /* bytes written but not yet flushed to the kernel */
    bool reading, want_read, closing, ready, eof, high;
    bool notify_empty; /* call on_drain when everything queued is flushed */
    int in_cb;         /* callback nesting depth */
    char err[256];
};

/* Server side: tcp is already accepted on loop (uv_tcp_init + uv_accept by
 * the caller through gw_io_tcp()).  tls_ctx NULL: plain. 0 ok, -1. */
int gw_io_accepted(gw_io_t *io, SSL_CTX *tls_ctx, const gw_io_cbs_t *cbs, void *owner);
/* Client side: connect to addr; TLS to `host` when tls_ctx != NULL.
 * on_ready or on_error(CONNECT/TLS) follows.  0 started, -1 failed at once
 * (io is not initialised: nothing to close). */
int gw_io_connect(gw_io_t *io, uv_loop_t *loop, const struct sockaddr *addr, SSL_CTX *tls_ctx,
                  const char *host, const gw_io_cbs_t *cbs, void *owner);
void gw_io_read_start(gw_io_t *io);
void gw_io_read_stop(gw_io_t *io);
/* Queue bytes.  0 ok, -1 the connection is failing (an error callback will
 * not follow: the caller handles it). */
int gw_io_write(gw_io_t *io, const char *data, size_t len);
/* The same for several pieces, sent together (one writev, or one TLS
 * record when they are small). */
int gw_io_writev(gw_io_t *io, const uv_buf_t *bufs, size_t n);
/* Close now (pending writes are dropped); on_closed follows. */
void gw_io_close(gw_io_t *io);
/* "ip:port" of the peer. */
void gw_io_peer(const gw_io_t *io, char *buf, size_t len);

#endif
