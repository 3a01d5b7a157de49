/*
 * io — plain or TLS TCP connections for the gateway (see io.h).
 *
 * Write path: plain bytes are first offered to uv_try_write() straight from
 * the caller's buffer when nothing is queued (the common case: no copy, no
 * extra loop turn); what the kernel does not take is copied into a write
 * request.  TLS output is drained from the tlsio into heap buffers and goes
 * the same way.
 */
#include "gateway/io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/ipaddr.h"

typedef struct io_wreq {
    uv_write_t req;
    gw_io_t *io;
    size_t len;
    char data[]; /* owned copy */
} io_wreq_t;

#define GW_IO_HIGH_WATER (256 * 1024)

static void io_flush_tls(gw_io_t *io);

/* Socket reads land in one buffer per thread (each worker runs one loop):
 * libuv calls alloc and read back to back and never nests read callbacks,
 * and whatever a callback keeps is copied (the HTTP head into its arena, a
 * body into its buffer, ciphertext into the TLS BIO), so connections need
 * no read buffer of their own. */
static _Thread_local char io_rbuf[GW_IO_BUF];

/* Decrypted bytes land in one buffer per thread as well.  A connection that
 * starts reading from inside another one's callback (an owner resuming the
 * other side of a relay) finds that buffer held and uses one of its own,
 * allocated then and kept until it closes: idle TLS connections cost no
 * plaintext buffer. */
static _Thread_local char io_pbuf[GW_IO_BUF];
static _Thread_local bool io_pbuf_held;

static char *plain_take(gw_io_t *io)
{
    if (!io_pbuf_held) {
        io_pbuf_held = true;
        return io_pbuf;
    }
    if (!io->plain) io->plain = malloc(GW_IO_BUF);
    return io->plain;
}

static void plain_give(const char *p)
{
    if (p == io_pbuf) io_pbuf_held = false;
}

static void io_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = io_rbuf;
    buf->len = sizeof io_rbuf;
}

static void io_error(gw_io_t *io, gw_io_err_t kind, const char *why)
{
    if (io->closing) return;
    snprintf(io->err, sizeof io->err, "%s", why);
    io->in_cb++;
    io->cbs->on_error(io, kind, io->err);
    io->in_cb--;
}

static void io_write_done(uv_write_t *req, int status)
{
    io_wreq_t *w = (io_wreq_t *)req;
    gw_io_t *io = w->io;
    io->queued -= w->len;
    free(w);
    if (io->closing) return;
    if (status < 0) {
        io_error(io, GW_IO_ERR_RESET, uv_strerror(status));
        return;
    }
    if ((io->high && io->queued < GW_IO_LOW_WATER) || (io->notify_empty && io->queued == 0)) {
        io->high = false;
        if (io->cbs->on_drain) {
            io->in_cb++;
            io->cbs->on_drain(io);
            io->in_cb--;
        }
    }
}

/* Queue bytes for the socket: one uv_try_write (a writev) first when
 * nothing is queued; what the kernel does not take is copied into one
 * write request. */
static int io_sendv(gw_io_t *io, const uv_buf_t *bufs, size_t n)
{
    if (io->closing) return -1;
    size_t total = 0, skip = 0;
    for (size_t i = 0; i < n; i++)
        total += bufs[i].len;
    if (total == 0) return 0;
    if (io->queued == 0) {
        int w = uv_try_write((uv_stream_t *)&io->tcp, bufs, (unsigned)n);
        if (w > 0) {
            skip = (size_t)w;
        } else if (w < 0 && w != UV_EAGAIN) {
            snprintf(io->err, sizeof io->err, "%s", uv_strerror(w));
            return -1;
        }
        if (skip == total) return 0;
    }
    size_t len = total - skip;
    io_wreq_t *wr = malloc(sizeof *wr + len);
    if (!wr) return -1;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t bl = bufs[i].len;
        if (skip >= bl) {
            skip -= bl;
            continue;
        }
        memcpy(wr->data + off, bufs[i].base + skip, bl - skip);
        off += bl - skip;
        skip = 0;
    }
    wr->io = io;
    wr->len = len;
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)len);
    int rc = uv_write(&wr->req, (uv_stream_t *)&io->tcp, &b, 1, io_write_done);
    if (rc < 0) {
        free(wr);
        snprintf(io->err, sizeof io->err, "%s", uv_strerror(rc));
        return -1;
    }
    io->queued += len;
    if (io->queued > GW_IO_HIGH_WATER) io->high = true;
    return 0;
}

static int io_send(gw_io_t *io, const char *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    return io_sendv(io, &b, 1);
}

static void io_flush_tls(gw_io_t *io)
{
    char buf[GW_IO_BUF];
    while (io->tls && !io->closing && tlsio_pending(io->tls) > 0) {
        size_t n = tlsio_take(io->tls, buf, sizeof buf);
        if (n == 0) break;
        if (io_send(io, buf, n) < 0) {
            io_error(io, GW_IO_ERR_RESET, io->err[0] ? io->err : "write failed");
            return;
        }
    }
}

static void io_ready(gw_io_t *io)
{
    if (io->ready) return;
    io->ready = true;
    if (io->cbs->on_ready) {
        io->in_cb++;
        io->cbs->on_ready(io);
        io->in_cb--;
    }
}

static void io_eof(gw_io_t *io)
{
    if (io->eof || io->closing) return;
    io->eof = true;
    io->in_cb++;
    io->cbs->on_eof(io);
    io->in_cb--;
}

/* Decrypt and deliver what the TLS BIO holds, into p (plain_take). */
static void io_read_tls(gw_io_t *io, char *p)
{
    for (;;) {
        ssize_t n = tlsio_read(io->tls, p, GW_IO_BUF);
        if (io->closing) return;
        if (n > 0) {
            io_ready(io);
            if (io->closing) return;
            io->in_cb++;
            io->cbs->on_data(io, p, (size_t)n);
            io->in_cb--;
            if (io->closing) return;
            if (!io->reading) break; /* the owner paused: the rest stays in the BIO */
            continue;
        }
        io_flush_tls(io);
        if (io->closing) return;
        if (n == TLSIO_WANT) {
            if (tlsio_handshake_done(io->tls)) io_ready(io);
            break;
        }
        if (n == TLSIO_EOF) {
            gw_io_read_stop(io);
            io_eof(io);
            return;
        }
        io_error(io, io->ready ? GW_IO_ERR_RESET : GW_IO_ERR_TLS, tlsio_error(io->tls));
        return;
    }
    io_flush_tls(io);
}

static void io_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    gw_io_t *io = s->data;
    if (io->closing || nread == 0) return;
    if (nread < 0) {
        gw_io_read_stop(io);
        if (nread == UV_EOF)
            io_eof(io);
        else
            io_error(io, io->ready ? GW_IO_ERR_RESET : (io->tls ? GW_IO_ERR_TLS : GW_IO_ERR_RESET),
                     uv_strerror((int)nread));
        return;
    }
    if (!io->tls) {
        io->in_cb++;
        io->cbs->on_data(io, io_rbuf, (size_t)nread);
        io->in_cb--;
        return;
    }
    if (tlsio_feed(io->tls, io_rbuf, (size_t)nread) < 0) {
        io_error(io, GW_IO_ERR_TLS, "out of memory");
        return;
    }
    char *p = plain_take(io);
    if (!p) {
        io_error(io, GW_IO_ERR_TLS, "out of memory");
        return;
    }
    io_read_tls(io, p);
    plain_give(p);
}

void gw_io_read_start(gw_io_t *io)
{
    io->want_read = true;
    if (io->reading || io->closing || io->eof) return;
    if (uv_read_start((uv_stream_t *)&io->tcp, io_alloc, io_read) == 0) io->reading = true;
    /* TLS: application bytes may already sit decrypted-to-be in the BIO */
    if (io->tls && io->reading && tlsio_handshake_done(io->tls)) {
        char *p = plain_take(io);
        for (;;) {
            ssize_t n = p ? tlsio_read(io->tls, p, GW_IO_BUF) : 0;
            if (n <= 0 || io->closing) break;
            io->in_cb++;
            io->cbs->on_data(io, p, (size_t)n);
            io->in_cb--;
            if (io->closing || !io->reading) break;
        }
        plain_give(p);
    }
}

void gw_io_read_stop(gw_io_t *io)
{
    io->want_read = false;
    if (!io->reading) return;
    uv_read_stop((uv_stream_t *)&io->tcp);
    io->reading = false;
}

int gw_io_accepted(gw_io_t *io, SSL_CTX *tls_ctx, const gw_io_cbs_t *cbs, void *owner)
{
    io->cbs = cbs;
    io->owner = owner;
    io->tcp.data = io;
    uv_tcp_nodelay(&io->tcp, 1);
    if (tls_ctx) {
        io->tls = tlsio_new_server(tls_ctx);
        if (!io->tls) return -1;
    } else {
        io->ready = true;
    }
    return 0;
}

static void io_connected(uv_connect_t *req, int status)
{
    gw_io_t *io = req->data;
    if (io->closing) return;
    if (status < 0) {
        io_error(io, GW_IO_ERR_CONNECT, uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&io->tcp, 1);
    if (!io->tls) {
        gw_io_read_start(io);
        io_ready(io);
        return;
    }
    gw_io_read_start(io);
    char dummy[1];
    ssize_t n = tlsio_read(io->tls, dummy, 0); /* ClientHello */
    if (n == TLSIO_ERROR) {
        io_error(io, GW_IO_ERR_TLS, tlsio_error(io->tls));
        return;
    }
    io_flush_tls(io);
}

int gw_io_connect(gw_io_t *io, uv_loop_t *loop, const struct sockaddr *addr, SSL_CTX *tls_ctx,
                  const char *host, const gw_io_cbs_t *cbs, void *owner)
{
    memset(io, 0, sizeof *io);
    io->cbs = cbs;
    io->owner = owner;
    if (tls_ctx) {
        io->tls = tlsio_new_client(tls_ctx, host);
        if (!io->tls) goto fail;
    }
    if (uv_tcp_init(loop, &io->tcp) < 0) goto fail;
    io->tcp.data = io;
    io->creq.data = io;
    if (uv_tcp_connect(&io->creq, &io->tcp, addr, io_connected) < 0) {
        /* the handle exists: it must be closed */
        gw_io_close(io);
        return 0; /* on_closed follows; report as a connect error first */
    }
    return 0;
fail:
    tlsio_free(io->tls);
    free(io->plain);
    memset(io, 0, sizeof *io);
    return -1;
}

int gw_io_writev(gw_io_t *io, const uv_buf_t *bufs, size_t n)
{
    if (io->closing) return -1;
    if (!io->tls) return io_sendv(io, bufs, n);
    /* TLS: small pieces are joined so they leave in one record */
    char join[GW_IO_BUF];
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += bufs[i].len;
    int rc = 0;
    if (n > 1 && total <= sizeof join) {
        size_t off = 0;
        for (size_t i = 0; i < n; i++) {
            memcpy(join + off, bufs[i].base, bufs[i].len);
            off += bufs[i].len;
        }
        rc = tlsio_write(io->tls, join, total);
    } else {
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = tlsio_write(io->tls, bufs[i].base, bufs[i].len);
    }
    if (rc < 0) {
        snprintf(io->err, sizeof io->err, "%s", tlsio_error(io->tls));
        return -1;
    }
    char buf[GW_IO_BUF];
    while (tlsio_pending(io->tls) > 0) {
        size_t k = tlsio_take(io->tls, buf, sizeof buf);
        if (k == 0) break;
        if (io_send(io, buf, k) < 0) return -1;
    }
    return 0;
}

int gw_io_write(gw_io_t *io, const char *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    return gw_io_writev(io, &b, 1);
}

static void io_closed(uv_handle_t *h)
{
    gw_io_t *io = h->data;
    tlsio_free(io->tls);
    io->tls = NULL;
    free(io->plain);
    io->plain = NULL;
    io->cbs->on_closed(io);
}

void gw_io_close(gw_io_t *io)
{
    if (io->closing) return;
    io->closing = true;
    io->reading = false;
    uv_close((uv_handle_t *)&io->tcp, io_closed);
}

void gw_io_peer(const gw_io_t *io, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    buf[0] = '\0';
    if (uv_tcp_getpeername(&io->tcp, (struct sockaddr *)&ss, &sl) != 0) return;
    netaddr_t a;
    uint16_t port = 0;
    if (ipaddr_from_sockaddr((struct sockaddr *)&ss, &a, &port) < 0) return;
    char ip[64];
    ipaddr_format(&a, ip, sizeof ip);
    snprintf(buf, len, a.family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
}
