/*
 * admin — /metrics and /healthz over HTTP/1.1 (one request per connection).
 *
 * Invariant: an admin connection holds at most ADMIN_HEAD_MAX request head
 * bytes and ADMIN_BODY_MAX body bytes and lives at most ADMIN_TIMEOUT_MS;
 * the response buffer is sized by what it answers and freed after the write.
 * A limits request in the thread pool holds a config reference and keeps its
 * connection alive (the timeout does not close it) until the answer lands.
 */
#include "admin/admin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "audit/audit.h"
#include "core/log.h"
#include "http/http1.h"
#include "metrics/metrics.h"

#define ADMIN_HEAD_MAX 8192
#define ADMIN_TIMEOUT_MS 10000
#define ADMIN_BODY_MAX (64 * 1024)

typedef enum { JOB_USAGE, JOB_BUDGET_GET, JOB_BUDGET_SET } job_kind_t;

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
    bool head_done;
    char *body;
    size_t body_len;
    bool body_over;
    /* a limits job on the thread pool */
    uv_work_t work;
    bool working, close_when_done;
    job_kind_t job;
    config_t *job_cfg;
    lim_by_t by;
    int64_t since, until;
    int job_status;
    char *job_out;
    char job_err[320];
} admin_conn_t;

static uv_tcp_t admin_listener;
static bool admin_listening;
static lim_shared_t *admin_lim;
static config_t **admin_cfgp;

void admin_set_limits(lim_shared_t *lim, config_t **cfgp)
{
    admin_lim = lim;
    admin_cfgp = cfgp;
}

static void admin_closed(uv_handle_t *h)
{
    admin_conn_t *a = h->data;
    if (--a->open_handles > 0) return;
    http_msg_free(&a->req);
    free(a->out);
    free(a->body);
    free(a);
}

static void admin_close(admin_conn_t *a)
{
    if (a->working) { /* the job's answer frees nothing until it lands */
        a->close_when_done = true;
        return;
    }
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

static void admin_respond_json(admin_conn_t *a, int status, const char *msg)
{
    char body[512];
    size_t o = 0;
    o += (size_t)snprintf(body, sizeof body, "{\"error\":\"");
    audit_json_escape(body, sizeof body - 8, &o, msg);
    o += (size_t)snprintf(body + o, sizeof body - o, "\"}\n");
    const char *phrase = status == 400   ? "Bad Request"
                         : status == 401 ? "Unauthorized"
                         : status == 403 ? "Forbidden"
                         : status == 404 ? "Not Found"
                         : status == 405 ? "Method Not Allowed"
                         : status == 413 ? "Payload Too Large"
                                         : "Service Unavailable";
    admin_respond(a, status, phrase, "application/json", body, o);
}

/* ---- the limits API ---- */

static void job_run(uv_work_t *req)
{
    admin_conn_t *a = req->data;
    a->job_status = 0;
    switch (a->job) {
    case JOB_USAGE:
        if (lim_report(admin_lim, a->job_cfg, a->by, a->since, a->until, true, &a->job_out,
                       a->job_err, sizeof a->job_err) < 0)
            a->job_status = 503;
        break;
    case JOB_BUDGET_GET:
        if (lim_budget_status(admin_lim, a->job_cfg, &a->job_out, a->job_err, sizeof a->job_err) <
            0)
            a->job_status = 503;
        break;
    case JOB_BUDGET_SET:
        a->job_status = lim_budget_set(admin_lim, a->job_cfg, a->body ? a->body : "", a->body_len,
                                       &a->job_out, a->job_err, sizeof a->job_err);
        break;
    }
}

static void job_done(uv_work_t *req, int status)
{
    admin_conn_t *a = req->data;
    a->working = false;
    config_unref(a->job_cfg);
    a->job_cfg = NULL;
    if (a->close_when_done || status < 0) {
        free(a->job_out);
        a->job_out = NULL;
        a->closing = false;
        admin_close(a);
        return;
    }
    if (a->job_status == 0 && a->job_out) {
        admin_respond(a, 200, "OK", "application/json", a->job_out, strlen(a->job_out));
    } else {
        admin_respond_json(a, a->job_status ? a->job_status : 503, a->job_err);
    }
    free(a->job_out);
    a->job_out = NULL;
}

/* The value of query parameter `name` (not decoded: values here need none). */
static bool query_param(const char *q, size_t qlen, const char *name, const char **v, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *p = q, *end = q + qlen;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=') {
            *v = p + nl + 1;
            *vlen = (size_t)(stop - *v);
            return true;
        }
        p = stop + 1;
    }
    return false;
}

/* 0 when the request may use the limits API, else the status (answered). */
static int admin_authorize(admin_conn_t *a, const config_t *cfg, bool write)
{
    if (!cfg->limits.admin_token_set) {
        if (!write) return 0;
        admin_respond_json(a, 403,
                           "POST /v1/budgets needs limits.admin_token in the config (the sha256 "
                           "of a token given as Authorization: Bearer <token>)");
        return 403;
    }
    size_t n = 0;
    const http_header_t *h = http_msg_header(&a->req, "authorization", &n);
    const char *v = h ? http_ptr(&a->req, h->value) : NULL;
    size_t vl = h ? h->value.len : 0;
    if (n == 1 && vl > 7 && strncasecmp(v, "Bearer ", 7) == 0) {
        unsigned char d[SHA256_DIGEST_LENGTH];
        SHA256((const unsigned char *)v + 7, vl - 7, d);
        if (CRYPTO_memcmp(d, cfg->limits.admin_token_sha256, sizeof d) == 0) return 0;
    }
    admin_respond_json(a, 401, "the limits API needs Authorization: Bearer <admin token>");
    return 401;
}

static void admin_limits(admin_conn_t *a, const char *path, size_t plen, const char *q, size_t qlen)
{
    const http_msg_t *m = &a->req;
    config_t *cfg = admin_cfgp ? *admin_cfgp : NULL;
    bool usage = plen == 9 && memcmp(path, "/v1/usage", 9) == 0;
    bool budgets = plen == 11 && memcmp(path, "/v1/budgets", 11) == 0;
    if (!usage && !budgets) {
        admin_respond_json(a, 404, "not found: the API has /v1/usage and /v1/budgets");
        return;
    }
    bool post = m->method == HTTP_POST;
    if (post ? !budgets : m->method != HTTP_GET) {
        admin_respond_json(a, 405, budgets ? "use GET or POST" : "use GET");
        return;
    }
    if (!cfg || !admin_lim || !cfg->limits.enabled) {
        admin_respond_json(a, 404, "limits are off: the config has no limits section");
        return;
    }
    if (admin_authorize(a, cfg, post) != 0) return;
    if (a->body_over) {
        admin_respond_json(a, 413, "the body is larger than 64 KiB");
        return;
    }
    if (usage) {
        const char *v;
        size_t vl;
        int64_t now = lim_now();
        a->by = LIM_BY_WORKSPACE;
        a->since = now / 86400 * 86400;
        a->until = now + 3600;
        if (query_param(q, qlen, "by", &v, &vl)) {
            char b[16];
            snprintf(b, sizeof b, "%.*s", (int)(vl < 15 ? vl : 15), v);
            if (lim_by_parse(b, &a->by) < 0) {
                admin_respond_json(a, 400,
                                   "by: want workspace, team, project, agent, model or "
                                   "provider");
                return;
            }
        }
        if (query_param(q, qlen, "since", &v, &vl) && lim_parse_when(v, vl, now, &a->since) < 0) {
            admin_respond_json(a, 400,
                               "since: want 2026-12-01, 2026-12-01T10:00:00Z, a Unix "
                               "time, or 7d / 24h / 30m");
            return;
        }
        if (query_param(q, qlen, "until", &v, &vl) && lim_parse_when(v, vl, now, &a->until) < 0) {
            admin_respond_json(a, 400, "until: same forms as since");
            return;
        }
        a->job = JOB_USAGE;
    } else {
        a->job = post ? JOB_BUDGET_SET : JOB_BUDGET_GET;
    }
    a->job_cfg = config_ref(cfg);
    a->work.data = a;
    a->working = true;
    if (uv_queue_work(a->tcp.loop, &a->work, job_run, job_done) < 0) {
        a->working = false;
        config_unref(a->job_cfg);
        a->job_cfg = NULL;
        admin_respond_json(a, 503, "cannot queue the request");
    }
}

static void admin_handle(admin_conn_t *a)
{
    const http_msg_t *m = &a->req;
    const char *path = http_ptr(m, m->target);
    size_t plen = m->target.len;
    const char *q = memchr(path, '?', plen);
    size_t qlen = 0;
    if (q) {
        qlen = plen - (size_t)(q - path) - 1;
        plen = (size_t)(q - path);
        q++;
    }
    if (plen >= 4 && memcmp(path, "/v1/", 4) == 0) {
        admin_limits(a, path, plen, q ? q : "", qlen);
        return;
    }
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
    static const char nf[] = "not found: try /metrics, /healthz, /v1/usage or /v1/budgets\n";
    admin_respond(a, 404, "Not Found", "text/plain", nf, sizeof nf - 1);
}

static int admin_body(void *ctx, const char *data, size_t len)
{
    admin_conn_t *a = ctx;
    if (a->body_over || a->body_len + len > ADMIN_BODY_MAX) {
        a->body_over = true;
        return 0;
    }
    if (!a->body && !(a->body = malloc(ADMIN_BODY_MAX + 1))) {
        a->body_over = true;
        return 0;
    }
    memcpy(a->body + a->body_len, data, len);
    a->body_len += len;
    return 0;
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
    if (a->out || a->working) return; /* answered or answering: the rest is ignored */
    const char *p = a->buf + a->len;
    size_t left = (size_t)nread;
    a->len += (size_t)nread;
    while (left > 0) {
        size_t used = 0;
        http_event_t ev = http_msg_feed(&a->req, p, left, &used);
        if (used > left) used = left;
        p += used;
        left -= used;
        if (ev < 0) {
            admin_respond(a, 400, "Bad Request", "text/plain", "bad request\n", 12);
            return;
        }
        if (ev == HTTP_MSG_DONE || (ev == HTTP_HEAD_DONE && !http_msg_has_body(&a->req))) {
            admin_handle(a);
            return;
        }
        if (ev == HTTP_HEAD_DONE) a->head_done = true;
        if (used == 0) break;
    }
    /* the head must fit; a body streams into its own buffer */
    if (a->head_done) {
        a->len = 0;
    } else if (a->len >= sizeof a->buf) {
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
    http_msg_set_body_sink(&a->req, admin_body, a);
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
