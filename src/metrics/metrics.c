/*
 * metrics.c — process-wide Prometheus series in C11 atomics, rendered in the
 * text exposition format 0.0.4.
 *
 * Hot path: every update of an egress series is one relaxed atomic add (or
 * store) on a fixed array; nothing allocates or locks.  Per-policy series
 * live in slots: a slot is made by metrics_policy_slot() at config load
 * (under slot_mu, linear search, at most METRICS_POLICY_SLOTS names) and is
 * never freed, so a reload that keeps a name keeps its counters.  Once all
 * slots are taken, further names — and the name "other" itself, so that no
 * two series share a label set — map to the extra slot OTHER_SLOT, rendered
 * as policy="other".  An out-of-range slot number is counted there too
 * rather than lost.
 *
 * LLM families (requests, tokens, findings, upstream errors): each is a
 * table of label tuples, a family_t.  A series (one tuple, with one counter
 * per decision / direction / kind) is allocated on first use under the
 * family's mutex and never freed until metrics_init; its labels are copied
 * into it and immutable.  Lookup is lock-free: FNV-1a of the tuple, then
 * linear probing in hash[] (LLM_HASH_SLOTS, twice the capacity, so a probe
 * always meets an empty slot), each slot loaded with acquire and compared by
 * hash then strings.  Slots go from NULL to a series exactly once, stored with
 * release after the series is complete.  A family holds at most
 * METRICS_LLM_SERIES tuples: the last place is kept for the tuple whose labels
 * are all "other" (unless that tuple already has a series), which takes every
 * new tuple once the rest are used (then `full` is set, so that unknown
 * tuples go to it without taking the mutex).  Model values are interned
 * first, in a table of the same kind (METRICS_LLM_MODELS names; a value too
 * long, not UTF-8, over the limit or "other" itself is "other"), so a client
 * choosing model names adds at most that many values.  order[] and n
 * (release) publish the series in creation order for metrics_render, which
 * reads them without the lock.
 *
 * Invariants: slots[0 .. n_slots) have an immutable name (heap copy owned by
 * this module, freed only by metrics_init); n_slots only grows, published with
 * release order after the name is written, so metrics_render() reads names
 * without the lock.  Histograms keep per-bucket (non-cumulative) counts;
 * _count is their total, so the +Inf bucket always equals _count.  _sum is
 * kept in integer micro- or nanoseconds (one fetch_add, exact rendering).
 *
 * Memory: LLM series, interned model names and policy names are owned by this
 * module and freed only by metrics_init(), which must not run concurrently
 * with any other call.
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

#include "core/utf8.h"

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

/* ---- histograms ----------------------------------------------------------- */

#define HIST_BUCKETS_MAX 24

typedef struct hist {
    const double *le;         /* upper bounds in seconds, nb - 1 of them */
    const char *const *label; /* the same as rendered in le="...", then "+Inf" */
    size_t nb;                /* buckets with +Inf */
    double scale;             /* _sum unit per second: 1e6 (us) or 1e9 (ns) */
    int digits;               /* 6 or 9: decimals of the rendered _sum */
    _Alignas(CACHELINE) atomic_uint_fast64_t buckets[HIST_BUCKETS_MAX];
    atomic_uint_fast64_t sum; /* in 1/scale seconds */
} hist_t;

#define NB(a) (sizeof(a) / sizeof((a)[0]) + 1) /* with +Inf */

static const double egress_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                   0.1,    0.25,  0.5,    1,     2.5,  5,     10};
static const char *const egress_label[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01",
                                           "0.025",  "0.05",  "0.1",    "0.25",  "0.5",
                                           "1",      "2.5",   "5",      "10",    "+Inf"};

/* An LLM call: 50 us (refused locally) to 10 min (a long stream). */
static const double llm_dur_le[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                    0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,
                                    10,      30,     60,      120,    300,   600};
static const char *const llm_dur_label[] = {
    "0.00005", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
    "0.025",   "0.05",   "0.1",     "0.25",   "0.5",   "1",      "2.5",   "5",
    "10",      "30",     "60",      "120",    "300",   "600",    "+Inf"};

/* What the gateway adds: 10 us to 100 ms. */
static const double llm_gw_le[] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                   0.0025,  0.005,    0.01,    0.025,  0.05,    0.1};
static const char *const llm_gw_label[] = {"0.00001", "0.000025", "0.00005", "0.0001", "0.00025",
                                           "0.0005",  "0.001",    "0.0025",  "0.005",  "0.01",
                                           "0.025",   "0.05",     "0.1",     "+Inf"};

_Static_assert(NB(egress_le) == sizeof egress_label / sizeof egress_label[0], "egress buckets");
_Static_assert(NB(llm_dur_le) == sizeof llm_dur_label / sizeof llm_dur_label[0], "llm buckets");
_Static_assert(NB(llm_gw_le) == sizeof llm_gw_label / sizeof llm_gw_label[0], "gw buckets");
_Static_assert(NB(llm_dur_le) <= HIST_BUCKETS_MAX, "HIST_BUCKETS_MAX");

static hist_t h_egress = {
    .le = egress_le, .label = egress_label, .nb = NB(egress_le), .scale = 1e6, .digits = 6};
static hist_t h_llm_duration = {
    .le = llm_dur_le, .label = llm_dur_label, .nb = NB(llm_dur_le), .scale = 1e6, .digits = 6};
static hist_t h_llm_added = {
    .le = llm_gw_le, .label = llm_gw_label, .nb = NB(llm_gw_le), .scale = 1e9, .digits = 9};

/* ---- LLM families ---------------------------------------------------------- */

#define LLM_LABELS 3         /* labels of a tuple, at most */
#define LLM_VALUES 5         /* counters of a series, at most (one per kind) */
#define LLM_HASH_SLOTS 2048  /* power of two, >= 2 * METRICS_LLM_SERIES */
#define MODEL_HASH_SLOTS 512 /* power of two, >= 2 * METRICS_LLM_MODELS */

_Static_assert(LLM_HASH_SLOTS >= 2 * METRICS_LLM_SERIES, "LLM_HASH_SLOTS");
_Static_assert(MODEL_HASH_SLOTS >= 2 * METRICS_LLM_MODELS, "MODEL_HASH_SLOTS");

typedef struct lseries {
    _Alignas(CACHELINE) atomic_uint_fast64_t v[LLM_VALUES]; /* by decision/direction/kind */
    uint64_t hash;
    const char *label[LLM_LABELS]; /* point into text */
    char text[];                   /* the label values, NUL-separated */
} lseries_t;

typedef struct family {
    const char *name, *help;
    unsigned nlabels, nvalues;
    const char *const *label_names; /* nlabels */
    const char *value_label;        /* the label that tells the values apart, or NULL */
    const char *const *value_names; /* nvalues */
    pthread_mutex_t mu;             /* series creation */
    atomic_bool full;               /* only the "other" tuple is left */
    atomic_int n;                   /* order[0 .. n) published */
    lseries_t *order[METRICS_LLM_SERIES];
    _Atomic(lseries_t *) hash[LLM_HASH_SLOTS];
} family_t;

static const char *const lbl_provider_model[] = {"provider", "model"};
static const char *const lbl_provider_model_ws[] = {"provider", "model", "workspace"};
static const char *const lbl_rule_action[] = {"rule", "action"};
static const char *const lbl_provider[] = {"provider"};
static const char *const llm_decision_names[MLLM_DEC_COUNT] = {"allow", "redact", "deny"};
static const char *const direction_names[] = {"input", "output", "cache_read", "cache_write"};
static const char *const error_kinds[] = {"connect", "tls", "timeout", "reset", "protocol"};
#define KIND_PROTOCOL 4

static family_t f_requests = {
    .name = "cdeguard_llm_requests_total",
    .help = "LLM gateway calls by provider, model and decision.",
    .nlabels = 2,
    .nvalues = MLLM_DEC_COUNT,
    .label_names = lbl_provider_model,
    .value_label = "decision",
    .value_names = llm_decision_names,
    .mu = PTHREAD_MUTEX_INITIALIZER,
};
static family_t f_tokens = {
    .name = "cdeguard_llm_tokens_total",
    .help = "LLM tokens by provider, model, workspace and direction.",
    .nlabels = 3,
    .nvalues = 4,
    .label_names = lbl_provider_model_ws,
    .value_label = "direction",
    .value_names = direction_names,
    .mu = PTHREAD_MUTEX_INITIALIZER,
};
static family_t f_findings = {
    .name = "cdeguard_llm_findings_total",
    .help = "Inspection findings in LLM calls by rule and action.",
    .nlabels = 2,
    .nvalues = 1,
    .label_names = lbl_rule_action,
    .mu = PTHREAD_MUTEX_INITIALIZER,
};
static family_t f_errors = {
    .name = "cdeguard_llm_upstream_errors_total",
    .help = "Failed LLM upstream calls by provider and kind.",
    .nlabels = 1,
    .nvalues = 5,
    .label_names = lbl_provider,
    .value_label = "kind",
    .value_names = error_kinds,
    .mu = PTHREAD_MUTEX_INITIALIZER,
};

static const char *const lbl_limit[] = {"scope", "metric", "period"};
static const char *const store_outcomes[] = {"refused", "allowed"};
static const char *const lbl_store[] = {"store"};
static family_t f_limit_refusals = {
    .name = "cdeguard_limit_refusals_total",
    .help = "Calls refused by a rate limit or budget, by scope kind, metric and period.",
    .nlabels = 3,
    .nvalues = 1,
    .label_names = lbl_limit,
    .mu = PTHREAD_MUTEX_INITIALIZER,
};
static family_t f_limit_soft = {
    .name = "cdeguard_limit_soft_threshold_total",
    .help = "Soft budget thresholds crossed (once per scope and window).",
    .nlabels = 3,
    .nvalues = 1,
    .label_names = lbl_limit,
    .mu = PTHREAD_MUTEX_INITIALIZER,
};
static family_t f_limit_store = {
    .name = "cdeguard_limit_store_errors_total",
    .help = "Calls the limits store could not answer, by what happened to them.",
    .nlabels = 1,
    .nvalues = 2,
    .label_names = lbl_store,
    .value_label = "outcome",
    .value_names = store_outcomes,
    .mu = PTHREAD_MUTEX_INITIALIZER,
};

static family_t *const families[] = {&f_requests,       &f_tokens,     &f_findings,   &f_errors,
                                     &f_limit_refusals, &f_limit_soft, &f_limit_store};

static _Atomic(metrics_render_hook_fn) render_hook;

static struct {
    pthread_mutex_t mu; /* interning */
    atomic_bool full;   /* METRICS_LLM_MODELS names interned */
    int n;              /* under mu */
    char *names[METRICS_LLM_MODELS];
    _Atomic(const char *) hash[MODEL_HASH_SLOTS];
} models = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* ---- egress series -------------------------------------------------------- */

static pthread_mutex_t slot_mu = PTHREAD_MUTEX_INITIALIZER;
static char *slot_names[METRICS_POLICY_SLOTS]; /* written under slot_mu, then immutable */
static atomic_int n_slots;
static atomic_bool other_used;
static policy_series_t slots[METRICS_POLICY_SLOTS + 1];

static struct {
    _Alignas(CACHELINE) atomic_uint_fast64_t bytes[2]; /* indexed by metrics_dir_t */
    _Alignas(CACHELINE) atomic_int_fast64_t tunnels;
    _Alignas(CACHELINE) atomic_int_fast64_t connections;
    _Alignas(CACHELINE) atomic_uint_fast64_t connect_errors;
    atomic_uint_fast64_t reloads_ok, reloads_error;
    atomic_uint_fast64_t audit_dropped;
    atomic_int_fast64_t start_time;
} m;

#define ADD(x, n) atomic_fetch_add_explicit(&(x), (n), memory_order_relaxed)
#define GET(x) atomic_load_explicit(&(x), memory_order_relaxed)

static void hist_reset(hist_t *h)
{
    for (size_t i = 0; i < HIST_BUCKETS_MAX; i++)
        atomic_store(&h->buckets[i], 0);
    atomic_store(&h->sum, 0);
}

static void family_reset(family_t *f)
{
    int n = atomic_load(&f->n);
    for (int i = 0; i < n; i++) {
        free(f->order[i]);
        f->order[i] = NULL;
    }
    for (size_t i = 0; i < LLM_HASH_SLOTS; i++)
        atomic_store(&f->hash[i], NULL);
    atomic_store(&f->n, 0);
    atomic_store(&f->full, false);
}

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

    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        family_reset(families[i]);
    for (int i = 0; i < models.n; i++) {
        free(models.names[i]);
        models.names[i] = NULL;
    }
    models.n = 0;
    for (size_t i = 0; i < MODEL_HASH_SLOTS; i++)
        atomic_store(&models.hash[i], NULL);
    atomic_store(&models.full, false);

    atomic_store(&m.bytes[MDIR_UP], 0);
    atomic_store(&m.bytes[MDIR_DOWN], 0);
    atomic_store(&m.tunnels, 0);
    atomic_store(&m.connections, 0);
    hist_reset(&h_egress);
    hist_reset(&h_llm_duration);
    hist_reset(&h_llm_added);
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

static void hist_observe(hist_t *h, double seconds)
{
    if (isnan(seconds)) return;
    if (seconds < 0) seconds = 0;
    size_t b = 0;
    while (b < h->nb - 1 && seconds > h->le[b])
        b++;
    ADD(h->buckets[b], 1);
    /* 1e19 caps the conversion inside uint64 (and catches +inf). */
    double units = seconds * h->scale + 0.5;
    ADD(h->sum, (uint_fast64_t)(units < 1e19 ? units : 1e19));
}

void metrics_egress_latency(double seconds)
{
    hist_observe(&h_egress, seconds);
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

/* ---- LLM series ----------------------------------------------------------- */

#define FNV_OFFSET UINT64_C(14695981039346656037)
#define FNV_PRIME UINT64_C(1099511628211)

/* FNV-1a of s and a separator byte, continuing from h. */
static uint64_t fnv_str(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= FNV_PRIME;
    }
    h ^= 0xff; /* separator: ("ab","c") and ("a","bc") differ */
    return h * FNV_PRIME;
}

static uint64_t tuple_hash(const char *const *l, unsigned n)
{
    uint64_t h = FNV_OFFSET;
    for (unsigned i = 0; i < n && i < LLM_LABELS; i++)
        h = fnv_str(h, l[i]);
    return h ^ (h >> 29);
}

static bool tuple_is_other(const char *const *l, unsigned n)
{
    for (unsigned i = 0; i < n && i < LLM_LABELS; i++)
        if (strcmp(l[i], OTHER_NAME) != 0) return false;
    return true;
}

static lseries_t *family_find(family_t *f, const char *const *l, uint64_t h)
{
    size_t mask = LLM_HASH_SLOTS - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) { /* never full: ends at a NULL */
        lseries_t *s = atomic_load_explicit(&f->hash[i], memory_order_acquire);
        if (!s) return NULL;
        if (s->hash != h) continue;
        unsigned k = 0;
        while (k < f->nlabels && k < LLM_LABELS && strcmp(s->label[k], l[k]) == 0)
            k++;
        if (k == f->nlabels) return s;
    }
}

/* Under f->mu, with n = f->n < METRICS_LLM_SERIES: a new series for l. */
static lseries_t *family_add(family_t *f, const char *const *l, uint64_t h, int n)
{
    size_t len[LLM_LABELS], total = sizeof(lseries_t);
    for (unsigned k = 0; k < f->nlabels && k < LLM_LABELS; k++) {
        len[k] = strlen(l[k]) + 1;
        total += len[k];
    }
    total = (total + CACHELINE - 1) / CACHELINE * CACHELINE;
    lseries_t *s = aligned_alloc(CACHELINE, total);
    if (!s) return NULL;
    memset(s, 0, total); /* zero counters: all-zero bits are a valid atomic 0 */
    s->hash = h;
    char *p = s->text;
    for (unsigned k = 0; k < f->nlabels && k < LLM_LABELS; k++) {
        memcpy(p, l[k], len[k]);
        s->label[k] = p;
        p += len[k];
    }
    f->order[n] = s;
    size_t mask = LLM_HASH_SLOTS - 1, i = h & mask;
    while (atomic_load_explicit(&f->hash[i], memory_order_relaxed))
        i = (i + 1) & mask;
    atomic_store_explicit(&f->hash[i], s, memory_order_release);
    atomic_store_explicit(&f->n, n + 1, memory_order_release);
    return s;
}

/* The series for tuple l, made on first use; NULL only when out of memory. */
static lseries_t *family_get(family_t *f, const char *const *l)
{
    static const char *const others[LLM_LABELS] = {OTHER_NAME, OTHER_NAME, OTHER_NAME};
    uint64_t h = tuple_hash(l, f->nlabels);
    lseries_t *s = family_find(f, l, h);
    if (s) return s;
    if (atomic_load_explicit(&f->full, memory_order_acquire))
        return family_find(f, others, tuple_hash(others, f->nlabels));

    pthread_mutex_lock(&f->mu);
    s = family_find(f, l, h);
    int n = atomic_load_explicit(&f->n, memory_order_relaxed);
    if (!s && n < METRICS_LLM_SERIES - 1) {
        s = family_add(f, l, h, n);
    } else if (!s) {
        /* One slot left, or none: it is the "other" tuple's.  When that
         * tuple has a series already, the last slot may go to this one. */
        uint64_t ho = tuple_hash(others, f->nlabels);
        lseries_t *o = family_find(f, others, ho);
        if (tuple_is_other(l, f->nlabels) || (o && n < METRICS_LLM_SERIES)) {
            s = n < METRICS_LLM_SERIES ? family_add(f, l, h, n) : NULL;
        } else {
            s = o ? o : family_add(f, others, ho, n);
            if (s) atomic_store_explicit(&f->full, true, memory_order_release);
        }
    }
    pthread_mutex_unlock(&f->mu);
    return s;
}

/* A model label value worth a series of its own: short and UTF-8. */
static bool model_ok(const char *s)
{
    size_t len = strnlen(s, METRICS_LLM_LABEL_MAX + 1);
    if (len > METRICS_LLM_LABEL_MAX) return false;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_seq_len((const unsigned char *)s + i, len - i);
        if (k == 0) return false;
        i += k;
    }
    return strcmp(s, OTHER_NAME) != 0;
}

static const char *model_find(const char *s, uint64_t h)
{
    size_t mask = MODEL_HASH_SLOTS - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) { /* never full: ends at a NULL */
        const char *name = atomic_load_explicit(&models.hash[i], memory_order_acquire);
        if (!name || strcmp(name, s) == 0) return name;
    }
}

/* The label value for a model: its interned copy, or "other". */
static const char *model_label(const char *model)
{
    if (!model) model = "";
    const char *const key[LLM_LABELS] = {model, "", ""};
    uint64_t h = tuple_hash(key, 1);
    const char *name = model_find(model, h);
    if (name) return name;
    if (atomic_load_explicit(&models.full, memory_order_acquire) || !model_ok(model))
        return OTHER_NAME;

    pthread_mutex_lock(&models.mu);
    name = model_find(model, h);
    if (!name && models.n < METRICS_LLM_MODELS && (name = strdup(model)) != NULL) {
        models.names[models.n++] = (char *)name;
        size_t mask = MODEL_HASH_SLOTS - 1, i = h & mask;
        while (atomic_load_explicit(&models.hash[i], memory_order_relaxed))
            i = (i + 1) & mask;
        atomic_store_explicit(&models.hash[i], name, memory_order_release);
        if (models.n == METRICS_LLM_MODELS)
            atomic_store_explicit(&models.full, true, memory_order_release);
    }
    pthread_mutex_unlock(&models.mu);
    return name ? name : OTHER_NAME;
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

void metrics_llm_request(const char *provider, const char *model, metrics_llm_decision_t d)
{
    if ((unsigned)d >= MLLM_DEC_COUNT) return;
    const char *l[LLM_LABELS] = {nz(provider), model_label(model), ""};
    lseries_t *s = family_get(&f_requests, l);
    if (s) ADD(s->v[d], 1);
}

void metrics_llm_tokens(const char *provider, const char *model, const char *workspace,
                        uint64_t input, uint64_t output, uint64_t cache_read, uint64_t cache_write)
{
    const uint64_t n[4] = {input, output, cache_read, cache_write};
    if ((input | output | cache_read | cache_write) == 0) return;
    const char *l[LLM_LABELS] = {nz(provider), model_label(model), nz(workspace)};
    lseries_t *s = family_get(&f_tokens, l);
    if (!s) return;
    for (size_t i = 0; i < 4; i++)
        if (n[i]) ADD(s->v[i], n[i]);
}

void metrics_llm_finding(const char *rule, const char *action, uint64_t n)
{
    if (n == 0) return;
    const char *l[LLM_LABELS] = {nz(rule), nz(action), ""};
    lseries_t *s = family_get(&f_findings, l);
    if (s) ADD(s->v[0], n);
}

void metrics_llm_latency(double total_seconds, double added_seconds)
{
    hist_observe(&h_llm_duration, total_seconds);
    hist_observe(&h_llm_added, added_seconds);
}

void metrics_limit_refusal(const char *scope, const char *metric, const char *period)
{
    const char *l[3] = {nz(scope), nz(metric), nz(period)};
    lseries_t *x = family_get(&f_limit_refusals, l);
    if (x) ADD(x->v[0], 1);
}

void metrics_limit_soft(const char *scope, const char *metric, const char *period)
{
    const char *l[3] = {nz(scope), nz(metric), nz(period)};
    lseries_t *x = family_get(&f_limit_soft, l);
    if (x) ADD(x->v[0], 1);
}

void metrics_limit_store_error(const char *store, bool allowed)
{
    const char *l[LLM_LABELS] = {nz(store)}; /* family_get reads nlabels (1) entries */
    lseries_t *x = family_get(&f_limit_store, l);
    if (x) ADD(x->v[allowed ? 1 : 0], 1);
}

void metrics_set_render_hook(metrics_render_hook_fn fn)
{
    atomic_store(&render_hook, fn);
}

void metrics_llm_upstream_error(const char *provider, const char *kind)
{
    size_t k = 0;
    while (k < KIND_PROTOCOL && !(kind && strcmp(kind, error_kinds[k]) == 0))
        k++;
    const char *l[LLM_LABELS] = {nz(provider), "", ""};
    lseries_t *s = family_get(&f_errors, l);
    if (s) ADD(s->v[k], 1);
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
    if (o->buf && o->len < o->cap) {
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

static void render_histogram(out_t *o, const hist_t *h, const char *name, const char *help)
{
    uint64_t cum = 0;

    head(o, name, "histogram", help);
    for (size_t b = 0; b < h->nb; b++) {
        cum += GET(h->buckets[b]);
        puts_(o, name);
        puts_(o, "_bucket{le=\"");
        puts_(o, h->label[b]);
        puts_(o, "\"} ");
        put_u64(o, cum);
        puts_(o, "\n");
    }
    uint64_t units = GET(h->sum), per = h->digits == 9 ? UINT64_C(1000000000) : UINT64_C(1000000);
    char t[48];
    int n = snprintf(t, sizeof t, "_sum %" PRIu64 ".%0*" PRIu64 "\n", units / per, h->digits,
                     units % per);
    puts_(o, name);
    put(o, t, (size_t)n);
    puts_(o, name);
    puts_(o, "_count ");
    put_u64(o, cum);
    puts_(o, "\n");
}

/* Every series of f, in creation order: one line per value. */
static void render_family(out_t *o, const family_t *f)
{
    head(o, f->name, "counter", f->help);
    int n = atomic_load_explicit(&f->n, memory_order_acquire);
    for (int i = 0; i < n; i++) {
        const lseries_t *s = f->order[i];
        for (unsigned v = 0; v < f->nvalues; v++) {
            puts_(o, f->name);
            for (unsigned k = 0; k < f->nlabels; k++) {
                puts_(o, k ? "," : "{");
                puts_(o, f->label_names[k]);
                puts_(o, "=\"");
                put_label(o, s->label[k]);
                puts_(o, "\"");
            }
            if (f->value_label) {
                puts_(o, ",");
                puts_(o, f->value_label);
                puts_(o, "=\"");
                puts_(o, f->value_names[v]);
                puts_(o, "\"");
            }
            puts_(o, "} ");
            put_u64(o, GET(s->v[v]));
            puts_(o, "\n");
        }
    }
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

    render_histogram(&o, &h_egress, "cdeguard_egress_request_duration_seconds",
                     "Time from request to decision or first upstream byte.");

    render_family(&o, &f_requests);
    render_family(&o, &f_tokens);
    render_family(&o, &f_findings);
    render_family(&o, &f_errors);
    render_histogram(&o, &h_llm_duration, "cdeguard_llm_request_duration_seconds",
                     "LLM call duration, from request received to response complete.");
    render_histogram(&o, &h_llm_added, "cdeguard_llm_gateway_added_seconds",
                     "Time the gateway itself added to an LLM call.");

    render_family(&o, &f_limit_refusals);
    render_family(&o, &f_limit_soft);
    render_family(&o, &f_limit_store);
    metrics_render_hook_fn hook = atomic_load(&render_hook);
    if (hook) {
        int fits = o.buf && o.len < o.cap;
        o.len += hook(fits ? o.buf + o.len : NULL, fits ? o.cap - o.len : 0);
    }

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

    if (o.buf && o.len < o.cap) o.buf[o.len] = '\0';
    return o.len;
}
