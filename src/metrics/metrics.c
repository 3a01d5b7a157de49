/*
 * metrics.c — process-wide Prometheus series in C11 atomics, rendered in the
 * text exposition format 0.0.4.
 *
 * Hot path: every update is one relaxed atomic add (or store) on a fixed
 * array; nothing allocates or locks.  Per-policy series live in slots: a slot
 * is made by metrics_policy_slot() at config load (under slot_mu, linear
 * search, at most METRICS_POLICY_SLOTS names) and is never freed, so a reload
 * that keeps a name keeps its counters.  Once all slots are taken, further
 * names — and the name "other" itself, so that no two series share a label
 * set — map to the extra slot OTHER_SLOT, rendered as policy="other".  An
 * out-of-range slot number is counted there too rather than lost.
 *
 * Invariants: slots[0 .. n_slots) have an immutable name (heap copy owned by
 * this module, freed only by metrics_init); n_slots only grows, published with
 * release order after the name is written, so metrics_render() reads names
 * without the lock.  The latency histogram keeps per-bucket (non-cumulative)
 * counts; _count is their total, so the +Inf bucket always equals _count.
 * _sum is kept in integer microseconds (one fetch_add, exact rendering).
 */
#include "metrics/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef CDEGUARD_VERSION
#define CDEGUARD_VERSION "dev"
#endif

#define METRICS_POLICY_SLOTS 256
#define OTHER_SLOT METRICS_POLICY_SLOTS
#define OTHER_NAME "other"
#define CACHELINE 64

typedef struct policy_series {
    _Alignas(CACHELINE) atomic_uint_fast64_t requests[MDEC_COUNT];
    atomic_uint_fast64_t upload_alerts;
} policy_series_t;

static const char *const decision_names[MDEC_COUNT] = {"allow", "deny", "monitor"};

/* Upper bounds in seconds, and the same as rendered in le="..." labels. */
static const double bucket_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                   0.1,    0.25,  0.5,    1,     2.5,  5,     10};
static const char *const bucket_label[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01",
                                           "0.025",  "0.05",  "0.1",    "0.25",  "0.5",
                                           "1",      "2.5",   "5",      "10",    "+Inf"};
#define NBUCKETS (sizeof bucket_le / sizeof bucket_le[0] + 1) /* with +Inf */

static pthread_mutex_t slot_mu = PTHREAD_MUTEX_INITIALIZER;
static char *slot_names[METRICS_POLICY_SLOTS]; /* written under slot_mu, then immutable */
static atomic_int n_slots;
static atomic_bool other_used;
static policy_series_t slots[METRICS_POLICY_SLOTS + 1];

static struct {
    _Alignas(CACHELINE) atomic_uint_fast64_t bytes[2]; /* indexed by metrics_dir_t */
    _Alignas(CACHELINE) atomic_int_fast64_t tunnels;
    _Alignas(CACHELINE) atomic_int_fast64_t connections;
    _Alignas(CACHELINE) atomic_uint_fast64_t buckets[NBUCKETS];
    atomic_uint_fast64_t sum_us;
    _Alignas(CACHELINE) atomic_uint_fast64_t connect_errors;
    atomic_uint_fast64_t reloads_ok, reloads_error;
    atomic_uint_fast64_t audit_dropped;
    atomic_int_fast64_t start_time;
} m;

#define ADD(x, n) atomic_fetch_add_explicit(&(x), (n), memory_order_relaxed)
#define GET(x) atomic_load_explicit(&(x), memory_order_relaxed)

void metrics_init(void)
{
    /* Startup (and tests) only: no other thread may be using the metrics. */
    pthread_mutex_lock(&slot_mu);
    int n = atomic_load(&n_slots);
    for (int i = 0; i < n; i++) {
        free(slot_names[i]);
        slot_names[i] = NULL;
    }
    atomic_store(&n_slots, 0);
    atomic_store(&other_used, false);
    for (size_t i = 0; i <= METRICS_POLICY_SLOTS; i++) {
        for (size_t d = 0; d < MDEC_COUNT; d++)
            atomic_store(&slots[i].requests[d], 0);
        atomic_store(&slots[i].upload_alerts, 0);
    }
    pthread_mutex_unlock(&slot_mu);

    atomic_store(&m.bytes[MDIR_UP], 0);
    atomic_store(&m.bytes[MDIR_DOWN], 0);
    atomic_store(&m.tunnels, 0);
    atomic_store(&m.connections, 0);
    for (size_t i = 0; i < NBUCKETS; i++)
        atomic_store(&m.buckets[i], 0);
    atomic_store(&m.sum_us, 0);
    atomic_store(&m.connect_errors, 0);
    atomic_store(&m.reloads_ok, 0);
    atomic_store(&m.reloads_error, 0);
    atomic_store(&m.audit_dropped, 0);
    atomic_store(&m.start_time, (int_fast64_t)time(NULL));
}

int metrics_policy_slot(const char *policy)
{
    int slot = OTHER_SLOT;

    if (!policy) policy = "";
    if (strcmp(policy, OTHER_NAME) == 0) goto out_other;

    pthread_mutex_lock(&slot_mu);
    int n = atomic_load_explicit(&n_slots, memory_order_relaxed);
    for (int i = 0; i < n; i++)
        if (strcmp(slot_names[i], policy) == 0) {
            pthread_mutex_unlock(&slot_mu);
            return i;
        }
    if (n < METRICS_POLICY_SLOTS && (slot_names[n] = strdup(policy)) != NULL) {
        slot = n;
        atomic_store_explicit(&n_slots, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&slot_mu);
    if (slot != OTHER_SLOT) return slot;
out_other:
    atomic_store_explicit(&other_used, true, memory_order_relaxed);
    return OTHER_SLOT;
}

static policy_series_t *series(int slot)
{
    if (slot < 0 || slot > OTHER_SLOT) {
        atomic_store_explicit(&other_used, true, memory_order_relaxed);
        slot = OTHER_SLOT;
    }
    return &slots[slot];
}

void metrics_egress_request(int policy_slot, metrics_decision_t d)
{
    if ((unsigned)d >= MDEC_COUNT) return;
    ADD(series(policy_slot)->requests[d], 1);
}

void metrics_egress_bytes(metrics_dir_t dir, uint64_t n)
{
    if (dir != MDIR_UP && dir != MDIR_DOWN) return;
    ADD(m.bytes[dir], n);
}

void metrics_tunnel_active(int delta)
{
    ADD(m.tunnels, delta);
}

void metrics_connections_active(int delta)
{
    ADD(m.connections, delta);
}

void metrics_upstream_connect_error(void)
{
    ADD(m.connect_errors, 1);
}

void metrics_upload_alert(int policy_slot)
{
    ADD(series(policy_slot)->upload_alerts, 1);
}

void metrics_egress_latency(double seconds)
{
    if (isnan(seconds)) return;
    if (seconds < 0) seconds = 0;
    size_t b = 0;
    while (b < NBUCKETS - 1 && seconds > bucket_le[b])
        b++;
    ADD(m.buckets[b], 1);
    /* 1e13 s caps the conversion well inside uint64 (and catches +inf). */
    double us = seconds < 1e13 ? seconds * 1e6 + 0.5 : 1e19;
    ADD(m.sum_us, (uint_fast64_t)us);
}

void metrics_config_reload(int ok)
{
    if (ok)
        ADD(m.reloads_ok, 1);
    else
        ADD(m.reloads_error, 1);
}

void metrics_audit_dropped(uint64_t n)
{
    atomic_store_explicit(&m.audit_dropped, n, memory_order_relaxed);
}

/* ---- rendering ------------------------------------------------------------ */

/* Output cursor: len counts every byte produced, bytes beyond cap are dropped,
 * so after a too-small render len is the size needed. */
typedef struct out {
    char *buf;
    size_t cap, len;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (o->len < o->cap) {
        size_t room = o->cap - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void puts_(out_t *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_u64(out_t *o, uint64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof t, "%" PRIu64, v);
    put(o, t, (size_t)n);
}

static void put_i64(out_t *o, int64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof t, "%" PRId64, v);
    put(o, t, (size_t)n);
}

/* A label value: \ → \\, " → \", newline → \n. */
static void put_label(out_t *o, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *e = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
        if (!e) continue;
        put(o, run, (size_t)(s - run));
        put(o, e, 2);
        run = s + 1;
    }
    put(o, run, (size_t)(s - run));
}

static void head(out_t *o, const char *name, const char *type, const char *help)
{
    puts_(o, "# HELP ");
    puts_(o, name);
    puts_(o, " ");
    puts_(o, help);
    puts_(o, "\n# TYPE ");
    puts_(o, name);
    puts_(o, " ");
    puts_(o, type);
    puts_(o, "\n");
}

/* name{k="v"} value\n, with one optional label. */
static void line_u64(out_t *o, const char *name, const char *k, const char *v, uint64_t val)
{
    puts_(o, name);
    if (k) {
        puts_(o, "{");
        puts_(o, k);
        puts_(o, "=\"");
        put_label(o, v);
        puts_(o, "\"}");
    }
    puts_(o, " ");
    put_u64(o, val);
    puts_(o, "\n");
}

static void render_policy_series(out_t *o, int n, bool other)
{
    static const char name[] = "cdeguard_egress_requests_total";

    head(o, name, "counter", "Egress requests by decision and policy.");
    for (int i = 0; i <= OTHER_SLOT; i++) {
        if (i == n) i = OTHER_SLOT;
        if (i == OTHER_SLOT && !other) break;
        const char *pname = i == OTHER_SLOT ? OTHER_NAME : slot_names[i];
        for (int d = 0; d < MDEC_COUNT; d++) {
            puts_(o, name);
            puts_(o, "{decision=\"");
            puts_(o, decision_names[d]);
            puts_(o, "\",policy=\"");
            put_label(o, pname);
            puts_(o, "\"} ");
            put_u64(o, GET(slots[i].requests[d]));
            puts_(o, "\n");
        }
    }

    head(o, "cdeguard_egress_upload_alerts_total", "counter",
         "Requests or tunnels whose upload exceeded the policy threshold.");
    for (int i = 0; i <= OTHER_SLOT; i++) {
        if (i == n) i = OTHER_SLOT;
        if (i == OTHER_SLOT && !other) break;
        line_u64(o, "cdeguard_egress_upload_alerts_total", "policy",
                 i == OTHER_SLOT ? OTHER_NAME : slot_names[i], GET(slots[i].upload_alerts));
    }
}

static void render_histogram(out_t *o)
{
    static const char name[] = "cdeguard_egress_request_duration_seconds";
    uint64_t cum = 0;

    head(o, name, "histogram", "Time from request to decision or first upstream byte.");
    for (size_t b = 0; b < NBUCKETS; b++) {
        cum += GET(m.buckets[b]);
        puts_(o, name);
        puts_(o, "_bucket{le=\"");
        puts_(o, bucket_label[b]);
        puts_(o, "\"} ");
        put_u64(o, cum);
        puts_(o, "\n");
    }
    uint64_t us = GET(m.sum_us);
    char t[48];
    int n = snprintf(t, sizeof t, "_sum %" PRIu64 ".%06" PRIu64 "\n", us / 1000000, us % 1000000);
    puts_(o, name);
    put(o, t, (size_t)n);
    line_u64(o, "cdeguard_egress_request_duration_seconds_count", NULL, NULL, cum);
}

size_t metrics_render(char *buf, size_t cap)
{
    out_t o = {.buf = buf, .cap = buf ? cap : 0, .len = 0};
    int n = atomic_load_explicit(&n_slots, memory_order_acquire);
    bool other = atomic_load_explicit(&other_used, memory_order_relaxed);

    render_policy_series(&o, n, other);

    head(&o, "cdeguard_egress_bytes_total", "counter",
         "Bytes relayed, up = client to upstream, down = upstream to client.");
    line_u64(&o, "cdeguard_egress_bytes_total", "direction", "up", GET(m.bytes[MDIR_UP]));
    line_u64(&o, "cdeguard_egress_bytes_total", "direction", "down", GET(m.bytes[MDIR_DOWN]));

    head(&o, "cdeguard_egress_active_tunnels", "gauge", "CONNECT tunnels currently open.");
    puts_(&o, "cdeguard_egress_active_tunnels ");
    put_i64(&o, GET(m.tunnels));
    puts_(&o, "\n");

    head(&o, "cdeguard_egress_active_connections", "gauge", "Client connections currently open.");
    puts_(&o, "cdeguard_egress_active_connections ");
    put_i64(&o, GET(m.connections));
    puts_(&o, "\n");

    head(&o, "cdeguard_egress_upstream_connect_errors_total", "counter",
         "Upstream connections that failed.");
    line_u64(&o, "cdeguard_egress_upstream_connect_errors_total", NULL, NULL,
             GET(m.connect_errors));

    render_histogram(&o);

    head(&o, "cdeguard_config_reloads_total", "counter", "Configuration reloads by result.");
    line_u64(&o, "cdeguard_config_reloads_total", "result", "ok", GET(m.reloads_ok));
    line_u64(&o, "cdeguard_config_reloads_total", "result", "error", GET(m.reloads_error));

    head(&o, "cdeguard_audit_dropped_total", "counter",
         "Audit records dropped because the queue was full or the sink failed.");
    line_u64(&o, "cdeguard_audit_dropped_total", NULL, NULL, GET(m.audit_dropped));

    head(&o, "cdeguard_build_info", "gauge", "Build information; the value is always 1.");
    line_u64(&o, "cdeguard_build_info", "version", CDEGUARD_VERSION, 1);

    head(&o, "cdeguard_start_time_seconds", "gauge",
         "Start time of the process since the Unix epoch, in seconds.");
    puts_(&o, "cdeguard_start_time_seconds ");
    put_i64(&o, GET(m.start_time));
    puts_(&o, "\n");

    if (o.len < o.cap) buf[o.len] = '\0';
    return o.len;
}
