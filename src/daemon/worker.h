/*
 * worker — one event loop per thread, and what its services share.
 *
 * Each worker owns a libuv loop, its own SO_REUSEPORT listening socket per
 * service, the list of its live connections and its reference to the current
 * config.  Nothing in a worker is touched by another thread except the
 * mailbox (mu, next_cfg, stop), which the main thread fills and signals with
 * `wake`.  The config a worker holds is swapped only on its own thread, so a
 * request that took a reference keeps a consistent config to its end.
 */
#ifndef CDEGUARD_DAEMON_WORKER_H
#define CDEGUARD_DAEMON_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "config/config.h"

typedef struct worker {
    int id;
    uv_loop_t loop;
    uv_tcp_t egress_listener;
    bool egress_listening;
    uv_async_t wake;
    uv_timer_t drain_timer;
    pthread_t thread;
    config_t *cfg; /* owned reference; swapped on this thread only */

    pthread_mutex_t mu; /* guards the mailbox */
    config_t *next_cfg; /* mailbox: new config to adopt (owned ref) */
    bool stop;          /* mailbox: drain and exit */

    bool draining;
    void *conns;   /* egress connections (intrusive list, egress.c) */
    void *tunnels; /* splice tunnels (intrusive list, tunnel.c) */
    size_t nconns; /* client connections + tunnels alive */
    int listen_fd; /* SO_REUSEPORT socket opened by the main thread */

    /* LLM gateway (src/gateway): listeners, sockets, per-worker state */
    uv_tcp_t gw_listener, authz_listener;
    bool gw_listening, authz_listening;
    int gw_fd, authz_fd; /* -1 when the listener is off */
    void *gw;            /* gw_worker_t (gateway.c) */

    void *lim; /* lim_worker_t (limits/limiter.h): rate limits and budgets */
} worker_t;

/* Count a service's live objects (connections, tunnels): they keep a
 * draining worker alive; the metric of active connections follows. */
void worker_conn_count(worker_t *w, int delta);

/* Called by a service when one of its objects goes away during a drain. */
void worker_maybe_finish(worker_t *w);

#endif
