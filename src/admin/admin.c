/*
 * admin — /metrics and /healthz over HTTP/1.1 (one request per connection).
 *
 * Invariant: an admin connection holds at most ADMIN_HEAD_MAX request bytes
 * and lives at most ADMIN_TIMEOUT_MS; the response buffer is sized by
 * metrics_render and freed after the write.
 */
#include "admin/admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "http/http1.h"
#include "metrics/metrics.h"

#define ADMIN_HEAD_MAX 8192
#define ADMIN_TIMEOUT_MS 10000

typedef struct admin_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wr;
    http_msg_t req;
    char buf[ADMIN_HEAD_MAX];
    size_t len;
    char *out;
    int open_handles;
    bool closing;
} admin_conn_t;

static uv_tcp_t admin_listener;
static bool admin_listening;

static void admin_closed(uv_handle_t *h)
{
    admin_conn_t *a = h->data;
    if (--a->open_handles > 0) return;
    http_msg_free(&a->req);
    free(a->out);
    free(a);
}

static void admin_close(admin_conn_t *a)
{
    if (a->closing) return;
    a->closing = true;
    a->open_handles = 2;
    uv_close((uv_handle_t *)&a->tcp, admin_closed);
    uv_close((uv_handle_t *)&a->timer, admin_closed);
}

static void admin_written(uv_write_t *w, int status)
{
    (void)status;
    admin_close(w->data);
}

static void admin_respond(admin_conn_t *a, int status, const char *phrase, const char *ctype,
                          const char *body, size_t blen)
{
    size_t cap = blen + 256;
    a->out = malloc(cap);
    if (!a->out) {
        admin_close(a);
        return;
    }
    int n = snprintf(a->out, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, phrase, ctype, blen);
    memcpy(a->out + n, body, blen);
    uv_buf_t b = uv_buf_init(a->out, (unsigned)((size_t)n + blen));
    a->wr.data = a;
    uv_read_stop((uv_stream_t *)&a->tcp);
    if (uv_write(&a->wr, (uv_stream_t *)&a->tcp, &b, 1, admin_written) < 0) admin_close(a);
}

static void admin_handle(admin_conn_t *a)
{
    const http_msg_t *m = &a->req;
    const char *path = http_ptr(m, m->target);
    size_t plen = m->target.len;
    const char *q = memchr(path, '?', plen);
    if (q) plen = (size_t)(q - path);
    if (m->method != HTTP_GET && m->method != HTTP_HEAD) {
        admin_respond(a, 405, "Method Not Allowed", "text/plain", "method not allowed\n", 19);
        return;
    }
    if (plen == 8 && memcmp(path, "/healthz", 8) == 0) {
        admin_respond(a, 200, "OK", "text/plain", "ok\n", 3);
        return;
    }
    if (plen == 8 && memcmp(path, "/metrics", 8) == 0) {
        size_t cap = 64 * 1024;
        for (int tries = 0; tries < 4; tries++) {
            char *body = malloc(cap);
            if (!body) break;
            size_t n = metrics_render(body, cap);
            if (n < cap) {
                admin_respond(a, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body, n);
                free(body);
                return;
            }
            free(body);
            cap = n + 4096;
        }
        admin_respond(a, 500, "Internal Server Error", "text/plain", "metrics too large\n", 18);
        return;
    }
    admin_respond(a, 404, "Not Found", "text/plain", "not found: try /metrics or /healthz\n", 36);
}

static void admin_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    admin_conn_t *a = h->data;
    *buf = uv_buf_init(a->buf + a->len, (unsigned)(sizeof a->buf - a->len));
}

static void admin_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    admin_conn_t *a = s->data;
    if (nread == 0 || a->closing) return;
    if (nread < 0) {
        admin_close(a);
        return;
    }
    size_t used = 0;
    http_event_t ev = http_msg_feed(&a->req, a->buf + a->len, (size_t)nread, &used);
    a->len += (size_t)nread;
    if (ev == HTTP_HEAD_DONE || ev == HTTP_MSG_DONE) {
        admin_handle(a);
    } else if (ev < 0 || a->len >= sizeof a->buf) {
        admin_respond(a, 400, "Bad Request", "text/plain", "bad request\n", 12);
    }
}

static void admin_timeout(uv_timer_t *t)
{
    admin_close(t->data);
}

static void admin_accept(uv_stream_t *server, int status)
{
    if (status < 0) return;
    admin_conn_t *a = calloc(1, sizeof *a);
    if (!a) return;
    uv_tcp_init(server->loop, &a->tcp);
    uv_timer_init(server->loop, &a->timer);
    a->tcp.data = a->timer.data = a;
    http_msg_init(&a->req, HTTP_REQUEST, ADMIN_HEAD_MAX);
    if (uv_accept(server, (uv_stream_t *)&a->tcp) < 0) {
        admin_close(a);
        return;
    }
    uv_timer_start(&a->timer, admin_timeout, ADMIN_TIMEOUT_MS, 0);
    uv_read_start((uv_stream_t *)&a->tcp, admin_alloc, admin_read);
}

int admin_start(uv_loop_t *loop, int fd, char *err, size_t errlen)
{
    uv_tcp_init(loop, &admin_listener);
    int rc = uv_tcp_open(&admin_listener, fd);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&admin_listener, 128, admin_accept);
    if (rc < 0) {
        snprintf(err, errlen, "admin listener: %s", uv_strerror(rc));
        return -1;
    }
    admin_listening = true;
    return 0;
}

void admin_stop(void)
{
    if (!admin_listening) return;
    admin_listening = false;
    uv_close((uv_handle_t *)&admin_listener, NULL);
}
