/*
 * tunnel — CONNECT tunnel relay with splice(2): socket → pipe → socket.
 *
 * First the client's first flight is peeked (read into `hello`, parsed with
 * tlshello_parse): SNI against the CONNECT host, TLS-only ports.  While that
 * happens on a TLS-only port nothing flows from upstream; on other ports the
 * upstream → client direction already runs, so server-speaks-first
 * protocols work.  The peeked bytes are then written upstream.
 *
 * Bytes never enter user space once a tunnel is running: each direction has
 * its own pipe, filled from the source socket and drained into the
 * destination socket with SPLICE_F_MOVE.  Both sockets are watched with
 * uv_poll (level-triggered); interest is recomputed after every pump so the
 * loop never spins: a direction whose pipe is full stops watching its source
 * until the destination drains it.  Memory per tunnel is two pipes
 * (TUNNEL_PIPE bytes each, in the kernel) and this struct.
 *
 * Limits: when the CONNECT request holds a limits ticket, a timer offers the
 * bytes moved since the last charge to the limiter every TUNNEL_METER_MS (a
 * meter call: the workspace's byte rules, current windows, at most one
 * pending); a refusal cuts the tunnel, or only marks the record under a
 * monitor policy.  The ticket itself is settled when the record is emitted,
 * with the request and the bytes no meter call took.
 *
 * Ownership: the tunnel owns both socket fds (dup'ed from the libuv handles
 * of the HTTP connection, which closes its own copies), both pipes, the
 * pending ClientHello bytes and the audit record; everything is released in
 * tunnel_release() after the last uv_close callback.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "egress/egress_int.h"
#include "limits/limiter.h"
#include "metrics/metrics.h"
#include "tls/clienthello.h"

#define TUNNEL_PIPE (256 * 1024)
#define HELLO_MAX (16 * 1024 + 5) /* one full TLS record */
#define TUNNEL_METER_MS 1000      /* a running tunnel's bytes are charged this often */

typedef struct tdir {
    int src, dst;
    int pipe_r, pipe_w;
    size_t in_pipe;
    bool src_eof, shut, pipe_full;
    uint64_t bytes;
} tdir_t;

typedef struct tunnel {
    struct tunnel *prev, *next;
    worker_t *w;
    uv_poll_t pc, pu;
    uv_timer_t timer;
    uv_timer_t meter;          /* charges the bytes moved so far (limits on) */
    lim_pending_t *meter_wait; /* a meter call the store has not answered */
    uint64_t metering;         /* bytes that call charges */
    int cfd, ufd;
    tdir_t up, down; /* up: client → upstream; down: upstream → client */
    bool peeking;    /* still reading the client's first flight into `pending` */
    char *pending;   /* first flight (HELLO_MAX bytes), then written upstream */
    size_t npending, pending_off;
    egress_record_t rec;
    tunnel_opts_t opts;
    char host[DOMAIN_MAX + 1];
    uint64_t idle_ms, last_activity_ms, hello_deadline_ms;
    int open_handles;
    bool closing;
    int pc_events, pu_events;
} tunnel_t;

static void tunnel_close(tunnel_t *t);

static void tunnel_link(tunnel_t *t)
{
    tunnel_t *head = t->w->tunnels;
    t->next = head;
    t->prev = NULL;
    if (head) head->prev = t;
    t->w->tunnels = t;
}

static void tunnel_unlink(tunnel_t *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        t->w->tunnels = t->next;
    if (t->next) t->next->prev = t->prev;
}

static uint64_t now_ms(tunnel_t *t)
{
    return uv_now(&t->w->loop);
}

static int make_pipe(tdir_t *d)
{
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) return -1;
    (void)fcntl(p[1], F_SETPIPE_SZ, TUNNEL_PIPE); /* best effort: default is 64 KiB */
    d->pipe_r = p[0];
    d->pipe_w = p[1];
    return 0;
}

/* Move what can be moved in one direction without blocking.
 * Returns bytes delivered to dst, or -1 on a socket error. */
static ssize_t pump(tdir_t *d)
{
    ssize_t delivered = 0;
    for (;;) {
        bool progress = false;
        if (!d->src_eof && !d->pipe_full) {
            ssize_t n = splice(d->src, NULL, d->pipe_w, NULL, TUNNEL_PIPE,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                d->in_pipe += (size_t)n;
                progress = true;
            } else if (n == 0) {
                d->src_eof = true;
                progress = true;
            } else if (errno == EAGAIN) {
                /* Either nothing to read or the pipe has no room left. */
                if (d->in_pipe > 0) d->pipe_full = true;
            } else if (errno != EINTR) {
                return -1;
            }
        }
        if (d->in_pipe > 0) {
            ssize_t n = splice(d->pipe_r, NULL, d->dst, NULL, d->in_pipe,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                d->in_pipe -= (size_t)n;
                d->bytes += (uint64_t)n;
                delivered += n;
                d->pipe_full = false;
                progress = true;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                return -1;
            }
        }
        if (d->src_eof && d->in_pipe == 0 && !d->shut) {
            shutdown(d->dst, SHUT_WR);
            d->shut = true;
        }
        if (!progress) return delivered;
    }
}

static void on_poll(uv_poll_t *h, int status, int events);

static void set_interest(tunnel_t *t)
{
    bool pending = !t->peeking && t->pending_off < t->npending;
    bool hold_down = t->peeking && t->opts.tls_only;
    int ec = 0, eu = 0;
    if (t->peeking || (!t->up.src_eof && !t->up.pipe_full && !pending)) ec |= UV_READABLE;
    if (t->down.in_pipe > 0) ec |= UV_WRITABLE;
    if (!hold_down && !t->down.src_eof && !t->down.pipe_full) eu |= UV_READABLE;
    if (t->up.in_pipe > 0 || pending) eu |= UV_WRITABLE;
    if (ec != t->pc_events) {
        if (ec)
            uv_poll_start(&t->pc, ec, on_poll);
        else
            uv_poll_stop(&t->pc);
        t->pc_events = ec;
    }
    if (eu != t->pu_events) {
        if (eu)
            uv_poll_start(&t->pu, eu, on_poll);
        else
            uv_poll_stop(&t->pu);
        t->pu_events = eu;
    }
}

static void count_up(tunnel_t *t, uint64_t n)
{
    if (n == 0) return;
    t->rec.bytes_up += n;
    metrics_egress_bytes(MDIR_UP, n);
    if (t->rec.bytes_up > t->opts.alert_bytes && !t->rec.alert) {
        t->rec.alert = "upload_threshold";
        metrics_upload_alert(metrics_policy_slot(t->rec.pol ? t->rec.pol->name : ""));
    }
}

/* Policy verdict on the first flight; false when the tunnel must end. */
static bool refuse(tunnel_t *t, const char *rule, const char *reason)
{
    snprintf(t->rec.rule, sizeof t->rec.rule, "%s", rule);
    if (t->opts.monitor) {
        t->rec.decision = "monitor";
        t->rec.reason = reason;
        return true;
    }
    t->rec.decision = "deny";
    t->rec.reason = reason;
    tunnel_close(t);
    return false;
}

/* Read and judge the first flight.  Returns true when relaying may go on
 * (t->peeking cleared), false when still peeking or closed. */
static bool peek_hello(tunnel_t *t)
{
    bool eof = false;
    while (t->npending < HELLO_MAX) {
        ssize_t n = recv(t->cfd, t->pending + t->npending, HELLO_MAX - t->npending, 0);
        if (n > 0) {
            t->npending += (size_t)n;
            continue;
        }
        if (n == 0) {
            eof = true;
            break;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN) break;
        t->rec.reason = "client connection error";
        tunnel_close(t);
        return false;
    }
    if (t->npending == 0 && !eof) return false;
    tlshello_t th;
    tlshello_status_t st = tlshello_parse((const uint8_t *)t->pending, t->npending, &th);
    if (st == TLSHELLO_NEED_MORE && t->npending < HELLO_MAX && !eof) return false;
    t->peeking = false;
    t->up.src_eof = eof;
    if (st == TLSHELLO_DONE) {
        if (th.has_sni) {
            snprintf(t->rec.sni, sizeof t->rec.sni, "%s", th.sni);
            t->rec.has_sni = true;
            char norm[DOMAIN_MAX + 1], err[128];
            int n = domain_normalize(th.sni, th.sni_len, norm, sizeof norm, err, sizeof err);
            bool match = !t->opts.host_is_ip && n >= 0 && strcmp(norm, t->host) == 0;
            if (!match && !refuse(t, "sni_mismatch", "TLS SNI names another host than CONNECT"))
                return false;
        }
    } else if (t->opts.tls_only) {
        const char *rule = st == TLSHELLO_NOT_TLS ? "not_tls" : "malformed_tls";
        if (!refuse(t, rule, th.error ? th.error : "no TLS ClientHello on a TLS-only port"))
            return false;
    }
    return true;
}

static void tunnel_run(tunnel_t *t)
{
    if (t->closing) return;
    if (t->peeking && !peek_hello(t)) {
        if (!t->closing) {
            /* Meanwhile upstream → client runs unless the port is TLS-only. */
            if (!t->opts.tls_only) {
                ssize_t down = pump(&t->down);
                if (down < 0) {
                    t->rec.reason = "connection reset";
                    tunnel_close(t);
                    return;
                }
                if (down > 0) {
                    t->rec.bytes_down += (uint64_t)down;
                    metrics_egress_bytes(MDIR_DOWN, (uint64_t)down);
                    t->last_activity_ms = now_ms(t);
                }
            }
            set_interest(t);
        }
        return;
    }
    /* The peeked first flight goes upstream first. */
    while (t->pending_off < t->npending) {
        ssize_t n = write(t->ufd, t->pending + t->pending_off, t->npending - t->pending_off);
        if (n > 0) {
            t->pending_off += (size_t)n;
            count_up(t, (uint64_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) break;
        t->rec.reason = "upstream write failed";
        tunnel_close(t);
        return;
    }
    ssize_t up = 0, down = 0;
    if (t->pending_off == t->npending) up = pump(&t->up);
    if (up >= 0) down = pump(&t->down);
    if (up < 0 || down < 0) {
        t->rec.reason = "connection reset";
        tunnel_close(t);
        return;
    }
    if (up > 0 || down > 0) t->last_activity_ms = now_ms(t);
    count_up(t, (uint64_t)up);
    if (down > 0) {
        t->rec.bytes_down += (uint64_t)down;
        metrics_egress_bytes(MDIR_DOWN, (uint64_t)down);
    }
    if (t->opts.block_upload && t->rec.alert) {
        snprintf(t->rec.rule, sizeof t->rec.rule, "upload_limit");
        t->rec.decision = "deny";
        t->rec.reason = "tunnel upload exceeded the limit";
        tunnel_close(t);
        return;
    }
    if (t->up.shut && t->down.shut) {
        tunnel_close(t);
        return;
    }
    set_interest(t);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    (void)events;
    tunnel_t *t = h->data;
    if (status < 0) {
        t->rec.reason = "socket error";
        tunnel_close(t);
        return;
    }
    tunnel_run(t);
}

static void on_tunnel_timer(uv_timer_t *h)
{
    tunnel_t *t = h->data;
    if (t->peeking && t->opts.tls_only && now_ms(t) >= t->hello_deadline_ms) {
        refuse(t, "client_hello_timeout", "no TLS ClientHello in time on a TLS-only port");
        if (!t->closing) {
            t->peeking = false;
            tunnel_run(t);
        }
        return;
    }
    uint64_t idle = now_ms(t) - t->last_activity_ms;
    if (idle >= t->idle_ms) {
        t->rec.reason = "idle timeout";
        tunnel_close(t);
        return;
    }
    uint64_t next = t->idle_ms - idle;
    if (t->peeking && t->opts.tls_only) {
        uint64_t h2 = t->hello_deadline_ms > now_ms(t) ? t->hello_deadline_ms - now_ms(t) : 0;
        if (h2 < next) next = h2;
    }
    uv_timer_start(&t->timer, on_tunnel_timer, next, 0);
}

/* The store answered a meter call: the bytes count in the current windows,
 * or a byte limit is reached (the tunnel ends unless its policy monitors)
 * or the store is down and fail_closed (the same).  Refused bytes stay
 * uncharged: the next meter call offers them again, and the tunnel's own
 * ticket counts what is left when it closes. */
static void on_metered(void *ctx, lim_ticket_t *tk, const lim_result_t *res)
{
    tunnel_t *t = ctx;
    t->meter_wait = NULL;
    if (res->allowed) {
        t->rec.lim_metered += t->metering;
        lim_used_t used = {.bytes = t->metering};
        lim_settle(t->w->lim, tk, &used);
        return;
    }
    bool limit = res->status == 429;
    snprintf(t->rec.rule, sizeof t->rec.rule, "%s", limit ? "rate_limit" : "limits_store");
    if (t->opts.monitor) {
        if (!t->rec.alert) t->rec.alert = limit ? "bytes_limit" : "limits_store";
        return;
    }
    t->rec.decision = "deny";
    t->rec.reason = res->reason;
    log_info("egress: tunnel to %s cut: %s", t->host, res->message);
    tunnel_close(t);
}

static void on_meter_timer(uv_timer_t *h)
{
    tunnel_t *t = h->data;
    if (t->closing || t->meter_wait) return;
    uint64_t moved = t->rec.bytes_up + t->rec.bytes_down;
    if (moved <= t->rec.lim_metered) return;
    t->metering = moved - t->rec.lim_metered;
    lim_call_t lc = {
        .cfg = t->rec.cfg, .ws = t->rec.ws, .egress = true, .meter = true, .bytes = t->metering};
    lim_ticket_t *tk = NULL;
    lim_pending_t *p = NULL;
    lim_result_t res;
    if (lim_check(t->w->lim, &lc, &tk, &res, on_metered, t, &p) == LIM_PENDING)
        t->meter_wait = p;
    else
        on_metered(t, tk, &res);
}

static void tunnel_release(tunnel_t *t)
{
    close(t->cfd);
    close(t->ufd);
    close(t->up.pipe_r);
    close(t->up.pipe_w);
    close(t->down.pipe_r);
    close(t->down.pipe_w);
    egress_record_emit(&t->rec);
    worker_t *w = t->w;
    tunnel_unlink(t);
    free(t->pending);
    free(t);
    metrics_tunnel_active(-1);
    worker_conn_count(w, -1);
}

static void on_tunnel_handle_closed(uv_handle_t *h)
{
    tunnel_t *t = h->data;
    if (--t->open_handles == 0) tunnel_release(t);
}

static void tunnel_close(tunnel_t *t)
{
    if (t->closing) return;
    t->closing = true;
    if (t->meter_wait) { /* its bytes go with the tunnel's own ticket */
        lim_cancel(t->meter_wait);
        t->meter_wait = NULL;
    }
    t->open_handles = 4;
    uv_close((uv_handle_t *)&t->pc, on_tunnel_handle_closed);
    uv_close((uv_handle_t *)&t->pu, on_tunnel_handle_closed);
    uv_close((uv_handle_t *)&t->timer, on_tunnel_handle_closed);
    uv_close((uv_handle_t *)&t->meter, on_tunnel_handle_closed);
}

int tunnel_start(worker_t *w, int client_fd, int upstream_fd, const char *pending, size_t npending,
                 egress_record_t *r, const tunnel_opts_t *opts)
{
    tunnel_t *t = calloc(1, sizeof *t);
    if (!t) goto fail;
    t->up.pipe_r = t->up.pipe_w = t->down.pipe_r = t->down.pipe_w = -1;
    t->pending = malloc(HELLO_MAX);
    if (!t->pending) goto fail;
    if (npending > HELLO_MAX) npending = HELLO_MAX; /* the conn buffer is larger: never */
    memcpy(t->pending, pending, npending);
    t->npending = npending;
    t->peeking = true;
    t->opts = *opts;
    snprintf(t->host, sizeof t->host, "%s", opts->host ? opts->host : "");
    t->opts.host = t->host;
    if (make_pipe(&t->up) < 0 || make_pipe(&t->down) < 0) goto fail;
    t->w = w;
    t->cfd = client_fd;
    t->ufd = upstream_fd;
    t->up.src = client_fd;
    t->up.dst = upstream_fd;
    t->down.src = upstream_fd;
    t->down.dst = client_fd;
    t->idle_ms = opts->idle_ms ? opts->idle_ms : 60000;
    /* The record moves here; the HTTP connection must not emit it. */
    t->rec = *r;
    r->active = false;
    r->cfg = NULL;
    tunnel_link(t);
    worker_conn_count(w, 1);
    metrics_tunnel_active(1);
    if (uv_poll_init(&w->loop, &t->pc, client_fd) < 0) {
        t->rec.reason = "tunnel could not start";
        tunnel_release(t);
        return -1;
    }
    t->pc.data = t;
    if (uv_poll_init(&w->loop, &t->pu, upstream_fd) < 0) {
        t->rec.reason = "tunnel could not start";
        t->closing = true;
        t->open_handles = 1;
        uv_close((uv_handle_t *)&t->pc, on_tunnel_handle_closed);
        return -1;
    }
    uv_timer_init(&w->loop, &t->timer);
    uv_timer_init(&w->loop, &t->meter);
    t->pu.data = t->timer.data = t->meter.data = t;
    if (t->rec.lim_ticket && w->lim)
        uv_timer_start(&t->meter, on_meter_timer, TUNNEL_METER_MS, TUNNEL_METER_MS);
    t->last_activity_ms = now_ms(t);
    t->hello_deadline_ms = t->last_activity_ms + opts->hello_timeout_ms;
    uv_timer_start(&t->timer, on_tunnel_timer,
                   opts->tls_only && opts->hello_timeout_ms < t->idle_ms ? opts->hello_timeout_ms
                                                                         : t->idle_ms,
                   0);
    tunnel_run(t);
    return 0;

fail:
    if (t) {
        if (t->up.pipe_r >= 0) {
            close(t->up.pipe_r);
            close(t->up.pipe_w);
        }
        if (t->down.pipe_r >= 0) {
            close(t->down.pipe_r);
            close(t->down.pipe_w);
        }
        free(t->pending);
        free(t);
    }
    close(client_fd);
    close(upstream_fd);
    r->reason = "tunnel could not start";
    egress_record_emit(r);
    log_warn("tunnel could not start: %s", strerror(errno));
    return -1;
}

void tunnel_close_all(worker_t *w)
{
    tunnel_t *next;
    for (tunnel_t *t = w->tunnels; t; t = next) {
        next = t->next;
        t->rec.reason = "shutdown deadline";
        tunnel_close(t);
    }
}
