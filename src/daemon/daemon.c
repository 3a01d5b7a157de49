/*
 * daemon — process lifecycle of `cdeguard serve`.
 *
 * Threads: the main thread runs a small loop (signals, admin listener);
 * N workers each run their own loop with their own SO_REUSEPORT egress
 * socket, so the kernel spreads connections and no lock sits on the
 * request path.
 *
 * Reload (SIGHUP): the file is loaded and validated on the main thread; only
 * a valid config is published, by putting a reference in every worker's
 * mailbox and waking it.  Listeners are never touched by a reload, so no
 * connection is dropped.  Drain (SIGTERM/SIGINT): workers stop accepting,
 * close idle connections, wait for the rest up to timeouts.drain, then force
 * them closed; the main thread joins them and flushes the audit log.
 */
#include "daemon/daemon.h"

#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin/admin.h"
#include "audit/audit.h"
#include "config/config.h"
#include "core/log.h"
#include "daemon/worker.h"
#include "egress/egress.h"
#include "gateway/gateway.h"
#include "inspect/inspect.h"
#include "limits/limiter.h"
#include "metrics/metrics.h"
#include "net/ipaddr.h"

#define MAX_WORKERS 256

typedef struct daemon_state {
    const char *path;
    config_t *cfg;
    worker_t *workers;
    int nworkers;
    uv_loop_t *loop;
    uv_signal_t sighup, sigterm, sigint;
    bool stopping;
    gateway_shared_t *gw_shared; /* TLS contexts of the gateway, or NULL */
    lim_shared_t *lim;           /* rate limits and budgets: the store */
} daemon_state_t;

static daemon_state_t D;

static int open_listen_socket(const config_listen_t *l, char *err, size_t errlen)
{
    netaddr_t a;
    if (ipaddr_parse_strict(l->host, strlen(l->host), &a) < 0) {
        snprintf(err, errlen, "listen address %s is not an IP address", l->host);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl;
    ipaddr_to_sockaddr(&a, l->port, &ss, &sl);
    int fd = socket(a.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (a.family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 1024) < 0) {
        snprintf(err, errlen, "cannot listen on %s%s%s:%u: %s", a.family == AF_INET6 ? "[" : "",
                 l->host, a.family == AF_INET6 ? "]" : "", l->port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Compiling the inspection rules runs megabytes of Vectorscan's compiler
 * code that the daemon never needs again; scanning uses a small part of
 * the same library.  Ask the kernel to drop those clean, file-backed pages
 * now (they fault back in from the page cache if ever used), so the
 * resident size reflects what serving needs.  Best effort. */
static void release_compiler_pages(void)
{
#ifdef MADV_PAGEOUT
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        void *lo, *hi;
        char perms[8];
        if (sscanf(line, "%p-%p %7s", &lo, &hi, perms) != 3) continue;
        if (!strstr(line, "libhs") || perms[2] != 'x') continue;
        madvise(lo, (size_t)((char *)hi - (char *)lo), MADV_PAGEOUT);
    }
    fclose(f);
#endif
}

/* ---- worker side ---- */

void worker_conn_count(worker_t *w, int delta)
{
    if (delta > 0)
        w->nconns += (size_t)delta;
    else
        w->nconns -= (size_t)(-delta);
    metrics_connections_active(delta);
    if (delta < 0) worker_maybe_finish(w);
}

void worker_maybe_finish(worker_t *w)
{
    if (!w->draining || w->nconns > 0) return;
    if (w->lim) { /* no call is left to settle: the store connection goes */
        lim_worker_free(w->lim);
        w->lim = NULL;
    }
    if (!uv_is_closing((uv_handle_t *)&w->wake)) {
        uv_close((uv_handle_t *)&w->wake, NULL);
        uv_close((uv_handle_t *)&w->drain_timer, NULL);
    }
}

static void worker_drain_deadline(uv_timer_t *t)
{
    worker_t *w = t->data;
    log_warn("worker %d: drain deadline reached, closing %zu connections", w->id, w->nconns);
    egress_close_all(w);
    gateway_close_all(w);
}

static void worker_wake(uv_async_t *a)
{
    worker_t *w = a->data;
    pthread_mutex_lock(&w->mu);
    config_t *next = w->next_cfg;
    w->next_cfg = NULL;
    bool stop = w->stop;
    pthread_mutex_unlock(&w->mu);
    if (next) {
        config_t *old = w->cfg;
        w->cfg = next;
        config_unref(old);
    }
    if (stop && !w->draining) {
        w->draining = true;
        egress_drain(w);
        gateway_drain(w);
        uv_timer_start(&w->drain_timer, worker_drain_deadline, w->cfg->drain_timeout_ms, 0);
        worker_maybe_finish(w);
    }
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int worker_init(worker_t *w, int id, config_t *cfg, const int fds[3], char *err,
                       size_t errlen)
{
    memset(w, 0, sizeof *w);
    w->id = id;
    w->listen_fd = fds[0];
    w->gw_fd = fds[1];
    w->authz_fd = fds[2];
    pthread_mutex_init(&w->mu, NULL);
    if (uv_loop_init(&w->loop) < 0) {
        snprintf(err, errlen, "cannot create event loop");
        return -1;
    }
    w->cfg = config_ref(cfg);
    uv_async_init(&w->loop, &w->wake, worker_wake);
    w->wake.data = w;
    uv_timer_init(&w->loop, &w->drain_timer);
    w->drain_timer.data = w;
    w->lim = lim_worker_new(D.lim, &w->loop, err, errlen);
    if (!w->lim) return -1;
    if (egress_start(w, err, errlen) < 0) return -1;
    return gateway_start(w, D.gw_shared, err, errlen);
}

static void worker_post(worker_t *w, config_t *cfg, bool stop)
{
    pthread_mutex_lock(&w->mu);
    if (cfg) {
        if (w->next_cfg) config_unref(w->next_cfg);
        w->next_cfg = config_ref(cfg);
    }
    if (stop) w->stop = true;
    pthread_mutex_unlock(&w->mu);
    uv_async_send(&w->wake);
}

/* ---- main thread ---- */

static void register_policies(const config_t *cfg)
{
    metrics_policy_slot("");
    for (size_t i = 0; i < cfg->npolicies; i++)
        metrics_policy_slot(cfg->policies[i].name);
}

static bool listen_equal(const config_listen_t *a, const config_listen_t *b)
{
    return a->enabled == b->enabled && a->port == b->port && strcmp(a->host, b->host) == 0;
}

static void on_sighup(uv_signal_t *h, int sig)
{
    (void)h;
    (void)sig;
    config_errors_t errs = {0};
    config_t *next = config_load(D.path, &errs);
    if (!next) {
        for (size_t i = 0; i < errs.n; i++)
            log_error("reload refused: %s", errs.msgs[i]);
        if (errs.n == 0) log_error("reload refused: %s: cannot be loaded", D.path);
        log_error("reload refused: keeping the configuration loaded before");
        config_errors_free(&errs);
        metrics_config_reload(0);
        return;
    }
    config_errors_free(&errs);
    malloc_trim(0);
    release_compiler_pages();
    if (!listen_equal(&next->egress, &D.cfg->egress) ||
        !listen_equal(&next->admin, &D.cfg->admin) ||
        !listen_equal(&next->gateway.listen, &D.cfg->gateway.listen) ||
        !listen_equal(&next->gateway.ext_authz, &D.cfg->gateway.ext_authz))
        log_warn("listener addresses changed in %s: they take effect at the next restart", D.path);
    if (next->workers != D.cfg->workers)
        log_warn("workers changed in %s: takes effect at the next restart", D.path);
    const char *lim_changed = lim_shared_store_changed(D.lim, next);
    if (lim_changed) log_warn("%s", lim_changed);
    lim_shared_set_config(D.lim, next);
    char err[256];
    bool to_stdout = next->audit_sink == AUDIT_STDOUT;
    if (audit_reconfigure(to_stdout, next->audit_path, err, sizeof err) < 0)
        log_warn("audit sink unchanged: %s", err);
    register_policies(next);
    for (int i = 0; i < D.nworkers; i++)
        worker_post(&D.workers[i], next, false);
    config_unref(D.cfg);
    D.cfg = next;
    metrics_config_reload(1);
    log_info("config reloaded from %s", D.path);
}

static void on_sigterm(uv_signal_t *h, int sig)
{
    (void)h;
    if (D.stopping) return;
    D.stopping = true;
    log_info("received %s: draining (up to %llu ms)", sig == SIGINT ? "SIGINT" : "SIGTERM",
             (unsigned long long)D.cfg->drain_timeout_ms);
    for (int i = 0; i < D.nworkers; i++)
        worker_post(&D.workers[i], NULL, true);
    /* A second signal gets the default action (immediate exit). */
    uv_close((uv_handle_t *)&D.sigterm, NULL);
    uv_close((uv_handle_t *)&D.sigint, NULL);
    uv_close((uv_handle_t *)&D.sighup, NULL);
    admin_stop();
    uv_stop(D.loop);
}

static int default_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > MAX_WORKERS) n = MAX_WORKERS;
    return (int)n;
}

int daemon_serve(const char *config_path, int workers_override)
{
    int status = 1;
    char err[512];
    config_errors_t errs = {0};
    memset(&D, 0, sizeof D);
    D.path = config_path;
    inspect_compile_in_child(true);
    D.cfg = config_load(config_path, &errs);
    if (!D.cfg) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.msgs[i]);
        if (errs.n == 0) fprintf(stderr, "%s: cannot be loaded\n", config_path);
        config_errors_free(&errs);
        return 1;
    }
    config_errors_free(&errs);
    /* compiling the inspection rules leaves megabytes of freed heap: give
     * them back before the workers start */
    malloc_trim(0);
    release_compiler_pages();
    signal(SIGPIPE, SIG_IGN);
    metrics_init();
    register_policies(D.cfg);
    if (audit_open(D.cfg->audit_sink == AUDIT_STDOUT, D.cfg->audit_path, err, sizeof err) < 0) {
        fprintf(stderr, "audit: %s\n", err);
        goto out_cfg;
    }

    int n = workers_override > 0 ? workers_override : D.cfg->workers;
    if (n <= 0) n = default_workers();
    if (n > MAX_WORKERS) n = MAX_WORKERS;
    D.workers = calloc((size_t)n, sizeof *D.workers);
    if (!D.workers) goto out_audit;
    D.loop = uv_default_loop();
    /* Signals first: a SIGTERM that arrives while the listeners come up is
     * queued and handled as a drain, never the default (kill) action. */
    uv_signal_init(D.loop, &D.sighup);
    uv_signal_init(D.loop, &D.sigterm);
    uv_signal_init(D.loop, &D.sigint);
    uv_signal_start(&D.sighup, on_sighup, SIGHUP);
    uv_signal_start(&D.sigterm, on_sigterm, SIGTERM);
    uv_signal_start(&D.sigint, on_sigterm, SIGINT);

    int admin_fd = -1;
    if (D.cfg->admin.enabled) {
        admin_fd = open_listen_socket(&D.cfg->admin, err, sizeof err);
        if (admin_fd < 0) {
            fprintf(stderr, "admin: %s\n", err);
            goto out_workers;
        }
        if (admin_start(D.loop, admin_fd, err, sizeof err) < 0) {
            fprintf(stderr, "%s\n", err);
            goto out_workers;
        }
    }
    D.lim = lim_shared_new(D.cfg, err, sizeof err);
    if (!D.lim) {
        fprintf(stderr, "%s\n", err);
        goto out_workers;
    }
    lim_shared_set_config(D.lim, D.cfg);
    metrics_set_render_hook(lim_render_gauges);
    admin_set_limits(D.lim, &D.cfg);
    const config_gateway_t *g = &D.cfg->gateway;
    bool gw_on = g->enabled && g->listen.enabled, authz_on = g->enabled && g->ext_authz.enabled;
    bool eg_on = D.cfg->egress.enabled;
    if (gw_on || authz_on) {
        D.gw_shared = gateway_shared_new(D.cfg, err, sizeof err);
        if (!D.gw_shared) {
            fprintf(stderr, "gateway: %s\n", err);
            goto out_workers;
        }
    }
    for (int i = 0; i < n; i++) {
        int fds[3] = {-1, -1, -1};
        const char *what = "egress";
        if (eg_on) fds[0] = open_listen_socket(&D.cfg->egress, err, sizeof err);
        if ((!eg_on || fds[0] >= 0) && gw_on) {
            what = "gateway";
            fds[1] = open_listen_socket(&g->listen, err, sizeof err);
        }
        if ((!eg_on || fds[0] >= 0) && (!gw_on || fds[1] >= 0) && authz_on) {
            what = "ext_authz";
            fds[2] = open_listen_socket(&g->ext_authz, err, sizeof err);
        }
        bool ok = (!eg_on || fds[0] >= 0) && (!gw_on || fds[1] >= 0) && (!authz_on || fds[2] >= 0);
        if (!ok || worker_init(&D.workers[i], i, D.cfg, fds, err, sizeof err) < 0) {
            fprintf(stderr, "%s: %s\n", what, err);
            for (int k = 0; k < 3; k++)
                if (fds[k] >= 0) close(fds[k]);
            D.nworkers = i; /* workers 0..i-1 are initialised but not running */
            for (int k = 0; k < i; k++)
                config_unref(D.workers[k].cfg);
            goto out_workers;
        }
    }
    D.nworkers = n;
    lim_shared_start(D.lim, D.loop);
    for (int i = 0; i < n; i++) {
        if (pthread_create(&D.workers[i].thread, NULL, worker_main, &D.workers[i]) != 0) {
            fprintf(stderr, "cannot start worker thread %d\n", i);
            _exit(1);
        }
    }

    char egress_s[96] = "off", admin_s[96];
    if (eg_on) snprintf(egress_s, sizeof egress_s, "%s:%u", D.cfg->egress.host, D.cfg->egress.port);
    if (D.cfg->admin.enabled)
        snprintf(admin_s, sizeof admin_s, "%s:%u", D.cfg->admin.host, D.cfg->admin.port);
    else
        snprintf(admin_s, sizeof admin_s, "off");
    char gw_s[96] = "off", authz_s[96] = "off";
    if (gw_on)
        snprintf(gw_s, sizeof gw_s, "%s:%u%s", g->listen.host, g->listen.port,
                 g->tls_cert ? " (tls)" : "");
    if (authz_on) snprintf(authz_s, sizeof authz_s, "%s:%u", g->ext_authz.host, g->ext_authz.port);
    log_info("cdeguard %s listening egress=%s gateway=%s ext_authz=%s admin=%s workers=%d",
             CDEGUARD_VERSION, egress_s, gw_s, authz_s, admin_s, n);

    uv_run(D.loop, UV_RUN_DEFAULT);

    for (int i = 0; i < n; i++) {
        pthread_join(D.workers[i].thread, NULL);
        worker_t *w = &D.workers[i];
        if (w->lim) {
            lim_worker_free(w->lim);
            w->lim = NULL;
        }
        uv_run(&w->loop, UV_RUN_NOWAIT); /* run pending close callbacks */
        gateway_stop(w);
        uv_run(&w->loop, UV_RUN_NOWAIT);
        uv_loop_close(&w->loop);
        if (w->next_cfg) config_unref(w->next_cfg);
        config_unref(w->cfg);
        pthread_mutex_destroy(&w->mu);
    }
    lim_shared_stop(D.lim);
    /* Let closing handles of the main loop finish. */
    uv_run(D.loop, UV_RUN_NOWAIT);
    log_info("drained, exiting");
    status = 0;

out_workers:
    free(D.workers);
    admin_set_limits(NULL, NULL);
    metrics_set_render_hook(NULL);
    lim_shared_free(D.lim);
    D.lim = NULL;
    gateway_shared_free(D.gw_shared);
    D.gw_shared = NULL;
out_audit:
    audit_close();
out_cfg:
    config_unref(D.cfg);
    return status;
}
