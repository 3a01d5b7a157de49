/*
 * egress internals shared by the proxy (egress.c) and the splice tunnel
 * relay (tunnel.c).  Not part of the public API.
 *
 * An egress_record_t carries what the audit record of one request or tunnel
 * needs; it holds a config reference (so workspace and policy names stay
 * valid) and is emitted exactly once by egress_record_emit(), which also
 * drops that reference.
 */
#ifndef CDEGUARD_EGRESS_EGRESS_INT_H
#define CDEGUARD_EGRESS_EGRESS_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "daemon/worker.h"
#include "policy/domain.h"
#include "policy/policy.h"

typedef struct egress_record {
    config_t *cfg; /* reference held until emit */
    const config_workspace_t *ws;
    const config_policy_t *pol;
    uint64_t start_wall_ms;
    uint64_t start_ns;
    char client[96];
    char method[24];
    char host[DOMAIN_MAX + 1];
    uint16_t port;
    char resolved[64];
    char sni[256];
    bool has_sni;
    char rule[POLICY_RULE_MAX];
    const char *decision; /* "allow" | "deny" | "monitor" */
    const char *reason;
    const char *alert;
    int status;
    uint64_t bytes_up, bytes_down;
    bool active;
    bool latency_recorded;
    void *lim_ticket;     /* lim_ticket_t: the request's reservation, settled at emit */
    void *lim_worker;     /* lim_worker_t of the worker that made it */
    uint64_t lim_metered; /* bytes a running tunnel's meter calls already charged */
} egress_record_t;

void egress_record_emit(egress_record_t *r);

/* How a tunnel treats its first client bytes and its lifetime. */
typedef struct tunnel_opts {
    uint64_t alert_bytes; /* upload alert threshold */
    bool block_upload;    /* cut the tunnel at the threshold */
    uint64_t idle_ms;
    bool tls_only; /* the first flight must be a TLS ClientHello; nothing is
                      relayed from upstream until it has been checked */
    uint64_t hello_timeout_ms;
    bool monitor;     /* policy in monitor mode: record, do not refuse */
    const char *host; /* CONNECT host, normalised (copied) */
    bool host_is_ip;
} tunnel_opts_t;

/* Take over two connected, non-blocking sockets.  The client's first bytes
 * (`pending`, already read, plus what follows) are peeked: a TLS ClientHello
 * whose SNI names another host than the CONNECT target is refused (domain
 * fronting), and on a TLS-only port anything but a ClientHello is refused.
 * Then bytes are relayed both ways with splice(2) until both directions end.
 * The record is moved into the tunnel (r->active is cleared) and emitted
 * when it ends.  Returns -1 (record emitted, fds closed) when it cannot start. */
int tunnel_start(worker_t *w, int client_fd, int upstream_fd, const char *pending, size_t npending,
                 egress_record_t *r, const tunnel_opts_t *opts);
void tunnel_close_all(worker_t *w);

#endif
