/*
 * gateway — client connections of the LLM gateway and ext_authz listeners.
 *
 * One gw_conn_t per accepted connection, one call at a time (HTTP/1.1
 * keep-alive; pipelined bytes wait in `pending`):
 *
 *   C_HEAD ─head─▶ C_BODY ─body─▶ decide (call.c) ─refuse─▶ error response ─┐
 *     ▲                              │ allow (gateway)                     │
 *     │                              ▼                                     │
 *     └──────── keep-alive ◀── C_CALL: upstream request, response relayed ◀┘
 *
 * Bodies: the request body is held whole (bounded by gateway.max_body)
 * because it is inspected and may be rewritten before anything leaves.  The
 * response is never held: each upstream slice is written to the client in
 * the callback that brought it (SSE through llm_relay, which in strip mode
 * holds only the event in progress); a copy of a non-streamed body is kept
 * up to RESP_USAGE_MAX bytes to read its usage.  Back-pressure: above the
 * io's high-water mark the upstream is paused until the client drains.
 *
 * A client that goes away while the response streams aborts the upstream
 * request; the usage so far is recorded (llm_relay estimates the rest).
 *
 * An early refusal (413, 400, 408...) ends the connection in C_LINGER: the
 * client may still be sending the body, and closing a socket with unread
 * bytes makes the kernel send a reset that destroys the refusal before the
 * client reads it.  So once the refusal is flushed the write side is shut
 * (FIN) and what still arrives is read and dropped until the client closes,
 * for at most LINGER_MS or LINGER_MAX bytes.
 *
 * Ownership: a conn owns its io, timer, parser, buffers, the current call
 * (gw_call_t) and a config reference for that call; it is freed from the
 * last close callback only.
 */
#include "gateway/gateway.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "audit/audit.h"
#include "core/log.h"
#include "gateway/call.h"
#include "gateway/io.h"
#include "gateway/upstream.h"
#include "limits/limiter.h"
#include "llm/cred.h"
#include "llm/secret.h"
#include "llm/relay.h"
#include "llm/usage.h"
#include "metrics/metrics.h"

#define RESP_USAGE_MAX (8u << 20) /* non-streamed body copy kept for its usage */
#define PENDING_MAX (64 * 1024)   /* pipelined bytes held during a call */
#define LINGER_MS 2000            /* an early refusal's connection drains input this long */
#define LINGER_MAX (16u << 20)    /* ... or this many bytes */
#define UP_HEAD_MAX (64 * 1024)
#define KEY_HEADER_MAX (LLM_SECRET_MAX + 64) /* "Bearer " + key */
/* The output a call may produce when its body sets no maximum: what limits
 * reserve for it (doc/config.md, "Limits"). */
#define LIM_DEFAULT_OUTPUT_EST 4096

struct gateway_shared {
    SSL_CTX *server_ctx; /* NULL: plain HTTP listener */
    SSL_CTX *client_ctx; /* upstream verification */
};

typedef struct gw_conn gw_conn_t;

typedef struct gw_worker {
    worker_t *w;
    gateway_shared_t *sh;
    gw_pool_t *pool; /* NULL once draining */
    gw_conn_t *conns;
    inspect_scratch_t *scratch;
    config_t *scratch_cfg; /* reference: keeps the engine the scratch was made for */
} gw_worker_t;

typedef enum { C_HEAD, C_BODY, C_CALL, C_LINGER, C_CLOSING } conn_state_t;

struct gw_conn {
    gw_conn_t *prev, *next;
    gw_worker_t *gw;
    gw_io_t io;
    uv_timer_t timer;
    int handles;
    bool ext_authz;
    conn_state_t state;
    char peer[80];
    char cn[256];
    bool have_cn, cn_checked;

    http_msg_t req;
    bool head_started;
    char *body;
    size_t body_len, body_cap;
    bool body_over;
    char *pending;
    size_t npending;
    bool close_after;       /* close once the response is flushed */
    uv_shutdown_t shut_req; /* C_LINGER: the write side's FIN */
    bool shut_started;
    size_t linger_bytes;

    /* the call */
    config_t *cfg;
    gw_call_t call;
    bool call_init;
    gw_up_t *up;
    bool resp_started, resp_chunked, resp_done, sse;
    char *resp_head; /* response head not yet sent: it leaves with the first body bytes */
    size_t resp_head_len;
    int status;
    llm_relay_t relay;
    bool relay_init;
    llm_usage_acc_t uacc;
    char *rbody;
    size_t rbody_len, rbody_cap;
    bool rbody_over;
    bool client_aborted;
    bool client_gone; /* a write to the client failed: end the call at the next safe point */
    const char *fail_reason;
    char upstream[300];
    uint64_t bytes_up, bytes_down;
    uint64_t t0_wall_ms, t0_ns, t_body_ns, t_sent_ns, t_uphead_ns, t_head_sent_ns;

    /* limits */
    lim_ticket_t *lim_ticket;   /* reserved: settled when the call ends */
    lim_pending_t *lim_pending; /* the store has not answered yet */
    int64_t retry_after;        /* a 429/503 refusal's Retry-After, or 0 */
    bool lim_fail_open;         /* allowed although the store did not answer */
};

static void conn_close(gw_conn_t *c);
static void conn_timer_cb(uv_timer_t *t);
static void call_end(gw_conn_t *c);
static void conn_next_request(gw_conn_t *c);

/* ------------------------------------------------------------------ */
/* shared TLS                                                           */

gateway_shared_t *gateway_shared_new(const config_t *cfg, char *err, size_t errlen)
{
    gateway_shared_t *sh = calloc(1, sizeof *sh);
    if (!sh) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const config_gateway_t *g = &cfg->gateway;
    if (g->tls_cert) {
        sh->server_ctx = tlsio_server_ctx(g->tls_cert, g->tls_key, g->tls_min_version,
                                          g->tls_client_ca, err, errlen);
        if (!sh->server_ctx) goto fail;
    }
    sh->client_ctx = tlsio_client_ctx(g->ca_file, err, errlen);
    if (!sh->client_ctx) goto fail;
    return sh;
fail:
    gateway_shared_free(sh);
    return NULL;
}

void gateway_shared_free(gateway_shared_t *sh)
{
    if (!sh) return;
    SSL_CTX_free(sh->server_ctx);
    SSL_CTX_free(sh->client_ctx);
    free(sh);
}

/* ------------------------------------------------------------------ */
/* writing to the client                                                */

static double ms_since(uint64_t t0)
{
    return (double)(clock_mono_ns() - t0) / 1e6;
}

static void conn_write(gw_conn_t *c, const char *data, size_t len)
{
    if (c->state == C_CLOSING || c->io.closing) return;
    if (gw_io_write(&c->io, data, len) < 0) {
        c->client_aborted = c->state == C_CALL;
        conn_close(c);
    }
}

static const char *status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Error";
    }
}

/* A complete response of our own (refusal or ext_authz answer), head and
 * body in one write.  extra_headers: "Name: value\r\n" lines, or NULL. */
static void conn_respond(gw_conn_t *c, int status, const char *extra_headers, const char *ctype,
                         const char *body, size_t len)
{
    char head[4096];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\n%s%s%s%sContent-Length: %zu\r\nConnection: %s\r\n\r\n",
                     status, status_text(status), extra_headers ? extra_headers : "",
                     ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "", len,
                     c->close_after ? "close" : "keep-alive");
    if (n < 0 || (size_t)n >= sizeof head) {
        conn_close(c);
        return;
    }
    if (c->state == C_CLOSING || c->io.closing) return;
    uv_buf_t b[2] = {uv_buf_init(head, (unsigned)n), uv_buf_init((char *)body, (unsigned)len)};
    int rc = gw_io_writev(&c->io, b, len ? 2 : 1);
    OPENSSL_cleanse(head, (size_t)n); /* ext_authz heads carry the provider key */
    if (rc < 0) {
        conn_close(c);
        return;
    }
    c->bytes_down += len;
}

static void conn_shut_cb(uv_shutdown_t *req, int status)
{
    gw_conn_t *c = req->data;
    /* UV_ECANCELED: the connection is closing already */
    if (status < 0 && status != UV_ECANCELED && c->state != C_CLOSING) conn_close(c);
}

/* C_LINGER, the refusal flushed: send FIN, go on reading (and dropping). */
static void conn_linger_shut(gw_conn_t *c)
{
    if (c->shut_started || c->state != C_LINGER) return;
    c->shut_started = true;
    c->shut_req.data = c;
    if (uv_shutdown(&c->shut_req, (uv_stream_t *)&c->io.tcp, conn_shut_cb) < 0) {
        c->shut_started = false;
        conn_close(c);
    }
}

/* A refusal before the request could be read whole: the rest of the
 * connection cannot be trusted, so it ends after the answer, lingering (see
 * the top of the file). */
static void conn_refuse_early(gw_conn_t *c, int status, const char *reason, const char *msg)
{
    char body[LLM_ERROR_MAX_BODY];
    llm_errfmt_t fmt =
        c->req.head_done ? gw_call_errfmt_guess(c->gw->w->cfg, &c->req) : LLM_ERRFMT_OPENAI;
    int n = llm_error_body(fmt, status, msg, reason, body, sizeof body);
    c->close_after = true;
    conn_respond(c, status, NULL, "application/json", body, n > 0 ? (size_t)n : 0);
    if (c->state == C_CLOSING || c->io.closing) return;
    call_end(c); /* a call in progress (none, normally) is recorded now */
    c->state = C_LINGER;
    uv_timer_start(&c->timer, conn_timer_cb, LINGER_MS, 0);
    gw_io_read_start(&c->io);
    if (c->io.queued == 0)
        conn_linger_shut(c);
    else
        c->io.notify_empty = true;
}

/* ------------------------------------------------------------------ */
/* audit and metrics                                                    */

static void call_record(gw_conn_t *c)
{
    gw_call_t *k = &c->call;
    const config_workspace_t *ws = k->ws;
    audit_llm_finding_t fnd_small[16];
    audit_llm_finding_t *fnd = fnd_small;
    size_t nf = 0;
    if (c->call_init && k->verdict_init && k->verdict.nrules > 16)
        fnd = malloc(k->verdict.nrules * sizeof *fnd);
    if (!fnd) fnd = fnd_small; /* out of memory: the first 16 */
    size_t maxf = fnd == fnd_small ? 16 : k->verdict.nrules;
    if (c->call_init && k->verdict_init) {
        for (size_t i = 0; i < k->verdict.nrules && nf < maxf; i++) {
            const inspect_verdict_rule_t *r = &k->verdict.rules[i];
            fnd[nf].rule = r->rule_id;
            fnd[nf].action = inspect_action_name(r->action);
            fnd[nf].count = r->count;
            metrics_llm_finding(r->rule_id, fnd[nf].action, r->count);
            nf++;
        }
    }
    llm_usage_t u = {0};
    bool has_usage = false;
    if (c->relay_init) {
        llm_relay_usage(&c->relay, &u);
        has_usage = true;
    } else if (c->resp_started && c->status >= 200 && c->status < 300) {
        if (!c->rbody_over && c->rbody_len > 0)
            llm_usage_feed_body(&c->uacc, c->rbody, c->rbody_len);
        llm_usage_get(&c->uacc, &u);
        has_usage = true;
    }
    double total_ms = ms_since(c->t0_ns);
    double added_ms = 0;
    if (c->t_sent_ns && c->t_body_ns) added_ms += (double)(c->t_sent_ns - c->t_body_ns) / 1e6;
    if (c->t_head_sent_ns && c->t_uphead_ns)
        added_ms += (double)(c->t_head_sent_ns - c->t_uphead_ns) / 1e6;
    if (!c->t_sent_ns && c->t_body_ns) added_ms = ms_since(c->t_body_ns); /* local answer */

    const char *provider = k->provider ? k->provider->name : "";
    const char *decision = gw_decision_name(k->decision);
    const config_t *cfg = c->cfg;
    bool full = cfg && cfg->gateway.log_prompts == GW_LOG_FULL && k->status == 0 && !c->ext_authz;
    audit_llm_t a = {
        .time_ms = c->t0_wall_ms,
        .listener = c->ext_authz ? "ext_authz" : "gateway",
        .workspace = ws ? ws->id : "",
        .group = ws ? ws->group : "",
        .team = ws && ws->team ? ws->team : (ws ? ws->group : ""),
        .agent = k->agent[0] ? k->agent : NULL,
        .task = k->task[0] ? k->task : NULL,
        .client = c->peer,
        .provider = provider,
        .endpoint = k->provider ? llm_request_kind_name(k->route.kind) : "",
        .region = k->endpoint && k->endpoint->region[0] ? k->endpoint->region : NULL,
        .upstream = c->upstream,
        .model = k->model,
        .stream = k->stream,
        .decision = decision,
        .reason = k->status ? k->reason : c->fail_reason,
        .status = c->status,
        .has_usage = has_usage,
        .input = u.input,
        .output = u.output,
        .cache_read = u.cache_read,
        .cache_write = u.cache_write,
        .reasoning = u.reasoning,
        .total = u.total,
        .estimated = u.estimated,
        .prompt_tokens_est = k->prompt_tokens_est,
        .findings = fnd,
        .nfindings = nf,
        .client_aborted = c->client_aborted,
        .bytes_up = c->bytes_up,
        .bytes_down = c->bytes_down,
        .duration_ms = total_ms,
        .gateway_ms = added_ms,
        .prompt = full ? k->upstream_body : NULL,
        .prompt_len = full ? k->upstream_body_len : 0,
    };
    audit_llm(&a);
    metrics_llm_request(provider, k->model,
                        k->decision == GW_DEC_ALLOW    ? MLLM_ALLOW
                        : k->decision == GW_DEC_REDACT ? MLLM_REDACT
                                                       : MLLM_DENY);
    if (has_usage && ws)
        metrics_llm_tokens(provider, k->model, ws->id, u.input, u.output, u.cache_read,
                           u.cache_write);
    metrics_llm_latency(total_ms / 1000.0, added_ms / 1000.0);
    if (fnd != fnd_small) free(fnd);
    if (c->lim_pending) {
        lim_cancel(c->lim_pending);
        c->lim_pending = NULL;
    }
    if (c->lim_ticket) {
        /* ext_authz: the call goes on without us, so what it may use (the
         * estimate) is what it is charged */
        lim_used_t lu = {.input = u.input,
                         .output = u.output,
                         .cache_read = u.cache_read,
                         .cache_write = u.cache_write};
        if (c->ext_authz && c->status == 200) {
            lu.input = k->prompt_tokens_est;
            lu.output = k->has_max_output ? k->max_output : LIM_DEFAULT_OUTPUT_EST;
        }
        bool went = c->t_sent_ns != 0 || (c->ext_authz && c->status == 200);
        lim_settle(c->gw->w->lim, c->lim_ticket, went ? &lu : NULL);
        c->lim_ticket = NULL;
    }
}

/* End of a call: record it, free it, go on with the connection. */
static void call_end(gw_conn_t *c)
{
    if (!c->cfg) return;
    free(c->resp_head);
    c->resp_head = NULL;
    call_record(c);
    if (c->up) gw_up_abort(c->up);
    c->up = NULL;
    if (c->relay_init) llm_relay_free(&c->relay);
    c->relay_init = false;
    if (c->call_init) gw_call_free(&c->call);
    c->call_init = false;
    free(c->rbody);
    c->rbody = NULL;
    c->rbody_len = c->rbody_cap = 0;
    config_unref(c->cfg);
    c->cfg = NULL;
}

/* ------------------------------------------------------------------ */
/* upstream callbacks                                                   */

/* Body bytes to the client, with the held response head in front and the
 * chunk framing around them, in one write. */
static void conn_send_body(gw_conn_t *c, const char *data, size_t len, bool last_chunk)
{
    if (c->state == C_CLOSING || c->io.closing) return;
    uv_buf_t b[5];
    size_t n = 0;
    char sz[24];
    if (c->resp_head) b[n++] = uv_buf_init(c->resp_head, (unsigned)c->resp_head_len);
    if (len > 0) {
        if (c->resp_chunked) {
            int k = snprintf(sz, sizeof sz, "%zx\r\n", len);
            b[n++] = uv_buf_init(sz, (unsigned)k);
        }
        b[n++] = uv_buf_init((char *)data, (unsigned)len);
        if (c->resp_chunked) b[n++] = uv_buf_init("\r\n", 2);
    }
    if (last_chunk && c->resp_chunked) b[n++] = uv_buf_init("0\r\n\r\n", 5);
    if (n == 0) return;
    int rc = gw_io_writev(&c->io, b, n);
    if (c->resp_head) {
        free(c->resp_head);
        c->resp_head = NULL;
        c->t_head_sent_ns = clock_mono_ns();
    }
    /* not closed here: this may run inside llm_relay_feed/finish, which
     * must return before the relay is freed */
    if (rc < 0) c->client_gone = true;
}

static int relay_emit(const char *data, size_t len, void *ctx)
{
    gw_conn_t *c = ctx;
    if (c->state == C_CLOSING || c->client_gone) return 1;
    conn_send_body(c, data, len, false);
    return c->client_gone ? 1 : 0;
}

static void conn_gone(gw_conn_t *c);

/* "name: value\r\n" at h + n (the caller sized h for every header of the
 * message plus 4 bytes each); returns the new length. */
static size_t put_header(char *h, size_t n, size_t cap, const char *name, size_t nlen,
                         const char *value, size_t vlen)
{
    if (n + nlen + vlen + 4 >= cap) return n;
    memcpy(h + n, name, nlen);
    n += nlen;
    h[n++] = ':';
    h[n++] = ' ';
    memcpy(h + n, value, vlen);
    n += vlen;
    h[n++] = '\r';
    h[n++] = '\n';
    return n;
}

static bool resp_header_dropped(const char *name, size_t len)
{
    static const char *const drop[] = {
        "connection", "keep-alive", "transfer-encoding", "content-length",
        "te",         "trailer",    "upgrade",           "proxy-connection"};
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
        if (strlen(drop[i]) == len && strncasecmp(name, drop[i], len) == 0) return true;
    return false;
}

static void up_on_head(void *ctx, const http_msg_t *resp)
{
    gw_conn_t *c = ctx;
    c->t_uphead_ns = clock_mono_ns();
    c->status = resp->status;
    c->resp_started = true;
    size_t ctn = 0;
    const http_header_t *ct = http_msg_header(resp, "content-type", &ctn);
    c->sse = ct && ct->value.len >= 17 &&
             strncasecmp(http_ptr(resp, ct->value), "text/event-stream", 17) == 0;
    size_t cln = 0;
    const http_header_t *cl = http_msg_header(resp, "content-length", &cln);
    bool strip = c->sse && c->call.add_include_usage && resp->status >= 200 && resp->status < 300;
    c->resp_chunked = !(cl && cln == 1 && !strip);
    if (c->sse && resp->status >= 200 && resp->status < 300) {
        llm_relay_init(&c->relay, c->call.route.usage, strip, 0, relay_emit, c);
        c->relay_init = true;
    } else {
        llm_usage_init(&c->uacc, c->call.route.usage);
    }
    /* the head to the client */
    size_t cap = 512 + resp->arena_len + resp->nhdr * 4;
    char *h = malloc(cap);
    if (!h) {
        conn_close(c);
        return;
    }
    size_t n = (size_t)snprintf(h, cap, "HTTP/1.1 %d %.*s\r\n", resp->status,
                                (int)(resp->reason.len > 64 ? 64 : resp->reason.len),
                                http_ptr(resp, resp->reason));
    for (size_t i = 0; i < resp->nhdr; i++) {
        const http_header_t *hd = &resp->hdr[i];
        const char *name = http_ptr(resp, hd->name);
        if (resp_header_dropped(name, hd->name.len)) continue;
        n = put_header(h, n, cap, name, hd->name.len, http_ptr(resp, hd->value), hd->value.len);
    }
    if (c->resp_chunked || !cl)
        n += (size_t)snprintf(h + n, cap - n, "Transfer-Encoding: chunked\r\n");
    else
        n += (size_t)snprintf(h + n, cap - n, "Content-Length: %.*s\r\n", (int)cl->value.len,
                              http_ptr(resp, cl->value));
    n += (size_t)snprintf(h + n, cap - n, "Connection: %s\r\n\r\n",
                          c->close_after ? "close" : "keep-alive");
    c->resp_head = h;
    c->resp_head_len = n;
    /* an event stream shows its head at once; other heads wait for the
     * first body bytes (usually in the same read) and leave with them */
    if (c->sse) conn_send_body(c, NULL, 0, false);
    if (c->client_gone) conn_gone(c);
}

static void up_on_body(void *ctx, const char *data, size_t len)
{
    gw_conn_t *c = ctx;
    c->bytes_down += len;
    if (c->relay_init) {
        int rc = llm_relay_feed(&c->relay, data, len);
        if (rc < 0) {
            /* not SSE we can parse: keep relaying raw, count what we can */
            log_warn("gateway: %s stream: %s", c->call.provider->name, c->relay.err);
        }
    } else {
        relay_emit(data, len, c);
        if (!c->rbody_over) {
            if (c->rbody_len + len > RESP_USAGE_MAX) {
                c->rbody_over = true;
            } else {
                if (c->rbody_len + len > c->rbody_cap) {
                    size_t nc = c->rbody_cap ? c->rbody_cap * 2 : 16384;
                    while (nc < c->rbody_len + len)
                        nc *= 2;
                    char *nb = realloc(c->rbody, nc);
                    if (!nb) {
                        c->rbody_over = true;
                        return;
                    }
                    c->rbody = nb;
                    c->rbody_cap = nc;
                }
                memcpy(c->rbody + c->rbody_len, data, len);
                c->rbody_len += len;
            }
        }
    }
    if (c->client_gone) {
        conn_gone(c);
        return;
    }
    if (c->state == C_CALL && c->up && c->io.high) gw_up_pause(c->up, true);
}

static void up_on_done(void *ctx)
{
    gw_conn_t *c = ctx;
    c->up = NULL;
    if (c->relay_init) llm_relay_finish(&c->relay);
    conn_send_body(c, NULL, 0, true);
    if (c->client_gone) {
        conn_gone(c);
        return;
    }
    c->resp_done = true;
    call_end(c);
    if (c->state == C_CLOSING) return;
    conn_next_request(c);
}

static void up_on_fail(void *ctx, const char *kind, const char *why, bool got_head)
{
    gw_conn_t *c = ctx;
    c->up = NULL;
    bool timeout = strcmp(kind, "timeout") == 0;
    metrics_llm_upstream_error(c->call.provider ? c->call.provider->name : "", kind);
    log_warn("gateway: upstream %s (%s): %s", c->upstream, kind, why);
    c->fail_reason = timeout ? "cdeguard_upstream_timeout" : "cdeguard_upstream_error";
    if (got_head || c->resp_started) {
        /* the response has begun: it cannot turn into an error; cut it */
        if (c->relay_init) llm_relay_finish(&c->relay);
        call_end(c);
        conn_close(c);
        return;
    }
    c->status = timeout ? 504 : 502;
    c->call.status = c->status;
    c->call.reason = c->fail_reason;
    snprintf(c->call.message, sizeof c->call.message, "%s: %s",
             timeout ? "the provider did not answer in time" : "the provider could not be reached",
             why);
    char body[LLM_ERROR_MAX_BODY];
    int n = gw_call_error_body(&c->call, body, sizeof body);
    c->call.status = 0; /* it was allowed: the record says allow with the failure reason */
    conn_respond(c, c->status, NULL, "application/json", body, n > 0 ? (size_t)n : 0);
    call_end(c);
    if (c->state != C_CLOSING) conn_next_request(c);
}

static void up_on_retry(void *ctx, gw_up_t *u)
{
    ((gw_conn_t *)ctx)->up = u;
}

static const gw_up_cbs_t conn_up_cbs = {
    .on_head = up_on_head,
    .on_body = up_on_body,
    .on_done = up_on_done,
    .on_fail = up_on_fail,
    .on_retry = up_on_retry,
};

/* ------------------------------------------------------------------ */
/* the call                                                             */

/* The upstream request head into a malloc'ed buffer. */
static char *build_upstream_head(gw_conn_t *c, size_t *len)
{
    const http_msg_t *m = &c->req;
    const gw_call_t *k = &c->call;
    const config_gw_endpoint_t *ep = k->endpoint;
    char keyhdr[KEY_HEADER_MAX];
    const char *keyname = NULL;
    if (llm_cred_upstream((llm_vendor_t)k->provider->vendor, k->provider->key, &keyname, keyhdr,
                          sizeof keyhdr) < 0)
        return NULL;
    size_t cap = 1024 + strlen(ep->base_path) + strlen(k->route.upstream_path) + m->arena_len +
                 m->nhdr * 4 + sizeof keyhdr;
    char *h = malloc(cap);
    if (!h) return NULL;
    bool default_port = ep->port == (ep->tls ? 443 : 80);
    size_t n = (size_t)snprintf(h, cap, "POST %s%s HTTP/1.1\r\nHost: %s%s%s", ep->base_path,
                                k->route.upstream_path, strchr(ep->host, ':') ? "[" : "", ep->host,
                                strchr(ep->host, ':') ? "]" : "");
    if (!default_port) n += (size_t)snprintf(h + n, cap - n, ":%u", ep->port);
    n += (size_t)snprintf(h + n, cap - n, "\r\n");
    bool has_ct = false;
    for (size_t i = 0; i < m->nhdr; i++) {
        const http_header_t *hd = &m->hdr[i];
        const char *name = http_ptr(m, hd->name);
        if (gw_call_header_dropped(name, hd->name.len)) continue;
        if (hd->name.len == 12 && strncasecmp(name, "content-type", 12) == 0) has_ct = true;
        n = put_header(h, n, cap, name, hd->name.len, http_ptr(m, hd->value), hd->value.len);
    }
    n += (size_t)snprintf(h + n, cap - n,
                          "%s%s: %s\r\nAccept-Encoding: identity\r\nContent-Length: %zu\r\n"
                          "Connection: keep-alive\r\n\r\n",
                          has_ct ? "" : "Content-Type: application/json\r\n", keyname, keyhdr,
                          k->upstream_body_len);
    OPENSSL_cleanse(keyhdr, sizeof keyhdr);
    if (n >= cap) {
        OPENSSL_cleanse(h, cap);
        free(h);
        return NULL;
    }
    *len = n;
    return h;
}

/* The worker's inspection scratch for cfg's engine.  A scratch refers to
 * its engine, which a reload frees with its config: the worker holds a
 * reference to that config until the scratch is replaced. */
static void ensure_scratch(gw_worker_t *gw, config_t *cfg)
{
    const inspect_engine_t *e = cfg->inspect.engine;
    if (gw->scratch && gw->scratch_cfg && gw->scratch_cfg->inspect.engine == e) return;
    inspect_scratch_free(gw->scratch);
    gw->scratch = NULL;
    if (gw->scratch_cfg) config_unref(gw->scratch_cfg);
    gw->scratch_cfg = NULL;
    if (!e) return;
    gw->scratch = inspect_scratch_new(e);
    if (gw->scratch) gw->scratch_cfg = config_ref(cfg);
}

static void conn_answer_refusal(gw_conn_t *c)
{
    char body[LLM_ERROR_MAX_BODY];
    int n = gw_call_error_body(&c->call, body, sizeof body);
    c->status = c->call.status;
    const char *extra = NULL;
    char hdr[128];
    if (c->call.status == 401 && c->call.errfmt == LLM_ERRFMT_OPENAI) {
        snprintf(hdr, sizeof hdr, "WWW-Authenticate: Bearer realm=\"cdeguard\"\r\n");
        extra = hdr;
    } else if (c->retry_after > 0) {
        snprintf(hdr, sizeof hdr, "Retry-After: %" PRId64 "\r\n", c->retry_after);
        extra = hdr;
    }
    conn_respond(c, c->call.status, extra, "application/json", body, n > 0 ? (size_t)n : 0);
}

/* A call the gateway itself cannot carry out after it was allowed. */
static void conn_call_refuse(gw_conn_t *c, int status, const char *reason, const char *msg,
                             bool close)
{
    c->call.status = status;
    c->call.reason = reason;
    c->call.decision = GW_DEC_DENY;
    snprintf(c->call.message, sizeof c->call.message, "%s", msg);
    if (close) c->close_after = true;
    conn_answer_refusal(c);
    call_end(c);
    if (close)
        conn_close(c);
    else if (c->state != C_CLOSING)
        conn_next_request(c);
}

static void ext_authz_allow(gw_conn_t *c)
{
    const gw_call_t *k = &c->call;
    char keyhdr[KEY_HEADER_MAX];
    const char *keyname = NULL;
    char extra[KEY_HEADER_MAX + 512];
    if (llm_cred_upstream((llm_vendor_t)k->provider->vendor, k->provider->key, &keyname, keyhdr,
                          sizeof keyhdr) < 0) {
        c->status = 500;
        conn_respond(c, 500, NULL, NULL, "", 0);
        return;
    }
    size_t n = 0;
    if (k->cred_header && strcasecmp(k->cred_header, keyname) != 0)
        n += (size_t)snprintf(extra + n, sizeof extra - n, "x-envoy-auth-headers-to-remove: %s\r\n",
                              k->cred_header);
    snprintf(extra + n, sizeof extra - n, "%s: %s\r\nx-cdeguard-workspace: %s\r\n", keyname, keyhdr,
             k->ws->id);
    OPENSSL_cleanse(keyhdr, sizeof keyhdr);
    c->status = 200;
    conn_respond(c, 200, extra, NULL, "", 0);
    OPENSSL_cleanse(extra, sizeof extra);
}

static void conn_forward(gw_conn_t *c);
static void conn_limits_done(void *ctx, lim_ticket_t *t, const lim_result_t *res);

static void conn_call(gw_conn_t *c)
{
    gw_worker_t *gw = c->gw;
    c->cfg = config_ref(gw->w->cfg);
    c->t_body_ns = clock_mono_ns();
    c->status = 0;
    c->resp_started = c->resp_done = c->sse = false;
    c->relay_init = false;
    c->client_aborted = false;
    c->fail_reason = NULL;
    c->upstream[0] = '\0';
    c->rbody_over = false;
    c->retry_after = 0;
    c->lim_fail_open = false;
    if (gw->w->draining) c->close_after = true;
    if (c->io.tls && !c->cn_checked) {
        c->cn_checked = true;
        c->have_cn = c->gw->sh->server_ctx && c->cfg->gateway.tls_client_ca &&
                     tlsio_peer_cn(c->io.tls, c->cn, sizeof c->cn) == 0;
    }
    ensure_scratch(gw, c->cfg);
    char target[LLM_ROUTE_MAX_PATH + 1];
    const char *t = http_ptr(&c->req, c->req.target);
    snprintf(target, sizeof target, "%.*s",
             (int)(c->req.target.len > LLM_ROUTE_MAX_PATH ? LLM_ROUTE_MAX_PATH : c->req.target.len),
             t);
    size_t pn = 0;
    const http_header_t *partial = http_msg_header(&c->req, "x-envoy-auth-partial-body", &pn);
    gw_call_in_t in = {
        .cfg = c->cfg,
        .req = &c->req,
        .method = llhttp_method_name((llhttp_method_t)c->req.method),
        .target = target,
        .mtls_cn = c->have_cn ? c->cn : NULL,
        .body = c->body ? c->body : "",
        .body_len = c->body_len,
        .body_partial = c->ext_authz && partial && http_slice_eq(&c->req, partial->value, "true"),
        .ext_authz = c->ext_authz,
        .scratch = gw->scratch,
    };
    c->call_init = true;
    c->bytes_up = c->body_len;
    if (gw_call_decide(&in, &c->call) < 0) {
        conn_answer_refusal(c);
        call_end(c);
        if (c->state != C_CLOSING) conn_next_request(c);
        return;
    }
    lim_worker_t *lw = gw->w->lim;
    if (lw) {
        const gw_call_t *k = &c->call;
        lim_call_t lc = {
            .cfg = c->cfg,
            .ws = k->ws,
            .agent = k->agent,
            .provider = k->provider ? k->provider->name : "",
            .model = k->model,
            .est_input = k->prompt_tokens_est,
            .est_output = k->has_max_output ? k->max_output : LIM_DEFAULT_OUTPUT_EST,
        };
        lim_ticket_t *tk = NULL;
        lim_result_t res;
        lim_pending_t *p = NULL;
        c->state = C_CALL; /* a Redis answer may be awaited */
        if (lim_check(lw, &lc, &tk, &res, conn_limits_done, c, &p) == LIM_PENDING) {
            c->lim_pending = p;
            return;
        }
        conn_limits_done(c, tk, &res);
        return;
    }
    conn_forward(c);
}

/* The limits said yes or no (at once, or when the store answered). */
static void conn_limits_done(void *ctx, lim_ticket_t *t, const lim_result_t *res)
{
    gw_conn_t *c = ctx;
    c->lim_pending = NULL;
    if (!res->allowed) {
        c->retry_after = res->retry_after;
        conn_call_refuse(c, res->status, res->reason, res->message, false);
        return;
    }
    c->lim_ticket = t;
    c->lim_fail_open = res->fail_open;
    if (res->fail_open) log_warn("gateway: %s", res->message);
    conn_forward(c);
}

/* An allowed call: ext_authz answers, the gateway sends it upstream. */
static void conn_forward(gw_conn_t *c)
{
    gw_worker_t *gw = c->gw;
    if (c->ext_authz) {
        ext_authz_allow(c);
        call_end(c);
        if (c->state != C_CLOSING) conn_next_request(c);
        return;
    }
    const config_gw_endpoint_t *ep = c->call.endpoint;
    if (!gw->pool) {
        conn_call_refuse(c, 503, "cdeguard_shutting_down", "the gateway is shutting down", true);
        return;
    }
    size_t hl = 0;
    char *head = build_upstream_head(c, &hl);
    if (!head) {
        conn_call_refuse(c, 500, "cdeguard_internal", "cannot build the upstream request", false);
        return;
    }
    snprintf(c->upstream, sizeof c->upstream, strchr(ep->host, ':') ? "[%s]:%u" : "%s:%u", ep->host,
             ep->port);
    gw_up_opts_t o = {
        .connect_timeout_ms = c->cfg->gateway.connect_timeout_ms,
        .first_byte_timeout_ms = c->cfg->gateway.first_byte_timeout_ms,
        .idle_timeout_ms = c->cfg->gateway.idle_timeout_ms,
        .max_head = UP_HEAD_MAX,
    };
    char why[160];
    c->state = C_CALL;
    c->bytes_up = c->call.upstream_body_len;
    c->t_sent_ns = clock_mono_ns();
    c->up = gw_up_request(gw->pool, ep, head, hl, c->call.upstream_body, c->call.upstream_body_len,
                          &o, &conn_up_cbs, c, why, sizeof why);
    OPENSSL_cleanse(head, hl);
    free(head);
    if (!c->up) up_on_fail(c, "connect", why, false);
}

/* ------------------------------------------------------------------ */
/* reading requests                                                     */

static void conn_timer_cb(uv_timer_t *t)
{
    gw_conn_t *c = t->data;
    if (c->state == C_LINGER || (c->state == C_HEAD && !c->head_started)) {
        conn_close(c); /* idle keep-alive */
        return;
    }
    if (c->state == C_HEAD || c->state == C_BODY) {
        conn_refuse_early(c, 408, "cdeguard_request_timeout",
                          "the request did not arrive within the client header timeout");
    }
}

static int conn_body(void *ctx, const char *data, size_t len)
{
    gw_conn_t *c = ctx;
    uint64_t max = c->gw->w->cfg->gateway.max_body_bytes;
    if (c->body_len + len > max) {
        c->body_over = true;
        return -1;
    }
    if (c->body_len + len > c->body_cap) {
        size_t nc = c->body_cap ? c->body_cap : 4096;
        while (nc < c->body_len + len)
            nc *= 2;
        char *nb = realloc(c->body, nc + 1);
        if (!nb) return -1;
        c->body = nb;
        c->body_cap = nc;
    }
    memcpy(c->body + c->body_len, data, len);
    c->body_len += len;
    return 0;
}

static void conn_on_head(gw_conn_t *c)
{
    const char *why = NULL;
    if (http_msg_check_request(&c->req, &why) < 0) {
        conn_refuse_early(c, 400, "cdeguard_invalid_request", why);
        return;
    }
    uint64_t max = c->gw->w->cfg->gateway.max_body_bytes;
    size_t n = 0;
    const http_header_t *cl = http_msg_header(&c->req, "content-length", &n);
    if (cl) {
        /* llhttp validated the digits; the slice is not NUL-terminated */
        uint64_t v = 0;
        const char *d = http_ptr(&c->req, cl->value);
        for (uint32_t i = 0; i < cl->value.len && d[i] >= '0' && d[i] <= '9'; i++)
            v = v > UINT64_MAX / 10 ? UINT64_MAX : v * 10 + (uint64_t)(d[i] - '0');
        if (v > max) {
            char msg[160];
            snprintf(msg, sizeof msg,
                     "the request body is %" PRIu64 " bytes, above this gateway's limit of %" PRIu64
                     " (gateway.max_body)",
                     v, max);
            conn_refuse_early(c, 413, "cdeguard_body_too_large", msg);
            return;
        }
    }
    const http_header_t *ex = http_msg_header(&c->req, "expect", &n);
    if (ex && http_slice_eq(&c->req, ex->value, "100-continue"))
        conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    if (!http_msg_keep_alive(&c->req)) c->close_after = true;
    c->state = C_BODY;
}

static void conn_feed(gw_conn_t *c, const char *data, size_t len)
{
    while (len > 0 && (c->state == C_HEAD || c->state == C_BODY)) {
        if (!c->head_started) {
            c->head_started = true;
            c->t0_ns = clock_mono_ns();
            c->t0_wall_ms = clock_wall_ms();
            uv_timer_start(&c->timer, conn_timer_cb, c->gw->w->cfg->client_header_timeout_ms, 0);
        }
        size_t used = 0;
        http_event_t ev = http_msg_feed(&c->req, data, len, &used);
        if (ev == HTTP_HEAD_TOO_BIG) {
            conn_refuse_early(c, 431, "cdeguard_invalid_request", "request head too large");
            return;
        }
        if (ev == HTTP_ERROR) {
            if (c->body_over) {
                char msg[160];
                snprintf(msg, sizeof msg,
                         "the request body is above this gateway's limit of %" PRIu64
                         " bytes (gateway.max_body)",
                         c->gw->w->cfg->gateway.max_body_bytes);
                conn_refuse_early(c, 413, "cdeguard_body_too_large", msg);
            } else {
                conn_refuse_early(c, 400, "cdeguard_invalid_request",
                                  c->req.err ? c->req.err : "malformed HTTP request");
            }
            return;
        }
        data += used;
        len -= used;
        bool complete = ev == HTTP_MSG_DONE;
        if (ev == HTTP_HEAD_DONE) {
            conn_on_head(c);
            /* a message without a body is complete with its head */
            complete = c->state == C_BODY && !http_msg_has_body(&c->req);
        }
        if (complete) {
            if (c->state != C_BODY) return;
            uv_timer_stop(&c->timer);
            if (len > 0) { /* pipelined: keep for later */
                if (len > PENDING_MAX) len = PENDING_MAX;
                char *p = malloc(len);
                if (!p) {
                    conn_close(c);
                    return;
                }
                memcpy(p, data, len);
                free(c->pending);
                c->pending = p;
                c->npending = len;
            }
            conn_call(c);
            return;
        }
    }
}

static void conn_next_request(gw_conn_t *c)
{
    if (c->state == C_CLOSING) return;
    if (c->close_after || c->gw->w->draining) {
        c->close_after = true;
        if (c->io.queued == 0)
            conn_close(c);
        else
            c->io.notify_empty = true;
        return;
    }
    c->state = C_HEAD;
    c->head_started = false;
    c->body_len = 0;
    c->bytes_up = c->bytes_down = 0; /* the audit record counts one call's bytes */
    c->body_over = false;
    if (c->body_cap > (1u << 20)) { /* do not keep a big buffer on an idle connection */
        free(c->body);
        c->body = NULL;
        c->body_cap = 0;
    }
    http_msg_reset(&c->req);
    uv_timer_start(&c->timer, conn_timer_cb, c->gw->w->cfg->idle_timeout_ms, 0);
    gw_io_read_start(&c->io);
    if (c->npending) {
        char *p = c->pending;
        size_t n = c->npending;
        c->pending = NULL;
        c->npending = 0;
        conn_feed(c, p, n);
        free(p);
    }
}

/* ------------------------------------------------------------------ */
/* io callbacks                                                         */

static void conn_on_data(gw_io_t *io, const char *data, size_t len)
{
    gw_conn_t *c = io->owner;
    if (c->state == C_LINGER) {
        c->linger_bytes += len;
        if (c->linger_bytes > LINGER_MAX) conn_close(c);
        return;
    }
    if (c->state == C_CALL) {
        /* pipelined bytes during a call: keep (bounded), stop reading beyond */
        if (c->npending + len > PENDING_MAX) {
            gw_io_read_stop(io);
            return;
        }
        char *p = realloc(c->pending, c->npending + len);
        if (!p) return;
        memcpy(p + c->npending, data, len);
        c->pending = p;
        c->npending += len;
        return;
    }
    conn_feed(c, data, len);
}

static void conn_gone(gw_conn_t *c)
{
    if (c->state == C_CALL) {
        c->client_aborted = true;
        if (c->up) gw_up_abort(c->up);
        c->up = NULL;
        call_end(c); /* the usage so far: nothing more goes to this client */
    }
    conn_close(c);
}

static void conn_on_eof(gw_io_t *io)
{
    conn_gone(io->owner);
}

static void conn_on_error(gw_io_t *io, gw_io_err_t kind, const char *why)
{
    (void)kind;
    (void)why;
    conn_gone(io->owner);
}

static void conn_on_drain(gw_io_t *io)
{
    gw_conn_t *c = io->owner;
    if (c->state == C_LINGER) {
        if (io->queued == 0) conn_linger_shut(c);
        return;
    }
    if (c->close_after && c->state != C_CALL && io->queued == 0) {
        conn_close(c);
        return;
    }
    if (c->state == C_CALL && c->up) gw_up_pause(c->up, false);
}

static void conn_release(gw_conn_t *c)
{
    if (--c->handles > 0) return;
    gw_worker_t *gw = c->gw;
    if (c->prev)
        c->prev->next = c->next;
    else
        gw->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    http_msg_free(&c->req);
    free(c->body);
    free(c->pending);
    worker_t *w = gw->w;
    free(c);
    worker_conn_count(w, -1);
}

static void conn_timer_closed(uv_handle_t *h)
{
    conn_release(h->data);
}

static void conn_on_closed(gw_io_t *io)
{
    conn_release(io->owner);
}

static const gw_io_cbs_t conn_io_cbs = {
    .on_data = conn_on_data,
    .on_eof = conn_on_eof,
    .on_error = conn_on_error,
    .on_ready = NULL,
    .on_drain = conn_on_drain,
    .on_closed = conn_on_closed,
};

static void conn_close(gw_conn_t *c)
{
    if (c->state == C_CLOSING) return;
    if (c->cfg) { /* a call still open: it ends here */
        if (c->up) {
            c->client_aborted = c->client_aborted || c->resp_started;
            gw_up_abort(c->up);
            c->up = NULL;
        }
        c->state = C_CLOSING;
        call_end(c);
    }
    c->state = C_CLOSING;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, conn_timer_closed);
    if (c->io.tls && !c->io.closing) {
        tlsio_shutdown(c->io.tls);
    }
    gw_io_close(&c->io);
}

static void on_connection(uv_stream_t *server, int status, bool ext_authz)
{
    worker_t *w = server->data;
    gw_worker_t *gw = w->gw;
    if (status < 0) return;
    gw_conn_t *c = calloc(1, sizeof *c);
    if (!c) return;
    c->gw = gw;
    c->ext_authz = ext_authz;
    uv_tcp_init(&w->loop, &c->io.tcp);
    c->io.tcp.data = &c->io;
    c->handles = 1;
    if (uv_accept(server, (uv_stream_t *)&c->io.tcp) < 0 ||
        http_msg_init(&c->req, HTTP_REQUEST, w->cfg->max_header_bytes) < 0 ||
        gw_io_accepted(&c->io, ext_authz ? NULL : gw->sh->server_ctx, &conn_io_cbs, c) < 0) {
        c->io.cbs = &conn_io_cbs;
        c->io.owner = c;
        c->state = C_CLOSING;
        worker_conn_count(w, 1);
        c->next = gw->conns;
        if (gw->conns) gw->conns->prev = c;
        gw->conns = c;
        gw_io_close(&c->io);
        return;
    }
    http_msg_set_body_sink(&c->req, conn_body, c);
    uv_timer_init(&w->loop, &c->timer);
    c->timer.data = c;
    c->handles = 2;
    c->next = gw->conns;
    if (gw->conns) gw->conns->prev = c;
    gw->conns = c;
    worker_conn_count(w, 1);
    gw_io_peer(&c->io, c->peer, sizeof c->peer);
    uv_timer_start(&c->timer, conn_timer_cb, w->cfg->client_header_timeout_ms, 0);
    gw_io_read_start(&c->io);
}

static void on_gw_connection(uv_stream_t *server, int status)
{
    on_connection(server, status, false);
}

static void on_authz_connection(uv_stream_t *server, int status)
{
    on_connection(server, status, true);
}

/* ------------------------------------------------------------------ */
/* worker life                                                          */

static int listen_on(worker_t *w, uv_tcp_t *t, int fd, uv_connection_cb cb, const char *what,
                     char *err, size_t errlen)
{
    uv_tcp_init(&w->loop, t);
    t->data = w;
    int rc = uv_tcp_open(t, fd);
    if (rc == 0) rc = uv_listen((uv_stream_t *)t, 1024, cb);
    if (rc < 0) {
        snprintf(err, errlen, "%s listener: %s", what, uv_strerror(rc));
        return -1;
    }
    return 0;
}

int gateway_start(worker_t *w, gateway_shared_t *sh, char *err, size_t errlen)
{
    if (w->gw_fd < 0 && w->authz_fd < 0) return 0;
    gw_worker_t *gw = calloc(1, sizeof *gw);
    if (!gw) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    gw->w = w;
    gw->sh = sh;
    gw->pool = gw_pool_new(&w->loop, sh->client_ctx, w->cfg->gateway.pool_size);
    if (!gw->pool) {
        free(gw);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    w->gw = gw;
    if (w->gw_fd >= 0) {
        if (listen_on(w, &w->gw_listener, w->gw_fd, on_gw_connection, "gateway", err, errlen) < 0)
            return -1;
        w->gw_listening = true;
    }
    if (w->authz_fd >= 0) {
        if (listen_on(w, &w->authz_listener, w->authz_fd, on_authz_connection, "ext_authz", err,
                      errlen) < 0)
            return -1;
        w->authz_listening = true;
    }
    return 0;
}

void gateway_drain(worker_t *w)
{
    gw_worker_t *gw = w->gw;
    if (w->gw_listening) {
        w->gw_listening = false;
        uv_close((uv_handle_t *)&w->gw_listener, NULL);
    }
    if (w->authz_listening) {
        w->authz_listening = false;
        uv_close((uv_handle_t *)&w->authz_listener, NULL);
    }
    if (!gw) return;
    gw_pool_free(gw->pool); /* idle upstream connections close now */
    gw->pool = NULL;
    gw_conn_t *next;
    for (gw_conn_t *c = gw->conns; c; c = next) {
        next = c->next;
        if (c->state == C_HEAD && !c->head_started && c->io.queued == 0) conn_close(c);
    }
}

void gateway_close_all(worker_t *w)
{
    gw_worker_t *gw = w->gw;
    if (!gw) return;
    gw_conn_t *next;
    for (gw_conn_t *c = gw->conns; c; c = next) {
        next = c->next;
        if (c->state != C_CLOSING) {
            if (c->cfg && !c->fail_reason) c->fail_reason = "cdeguard_shutdown";
            conn_close(c);
        }
    }
}

void gateway_stop(worker_t *w)
{
    gw_worker_t *gw = w->gw;
    if (!gw) return;
    if (gw->pool) gw_pool_free(gw->pool);
    inspect_scratch_free(gw->scratch);
    if (gw->scratch_cfg) config_unref(gw->scratch_cfg);
    free(gw);
    w->gw = NULL;
}
