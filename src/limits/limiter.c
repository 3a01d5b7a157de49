/*
 * limiter — scopes, estimates, check-and-reserve and settlement over the
 * embedded ledger or Redis (see limiter.h).
 *
 * A ticket is one allocation that holds everything a settlement needs: the
 * counters it reserved in (Redis) or the ledger reservation (embedded), the
 * price of its model, and the usage row's dimensions.
 *
 * In Redis mode settlements are not sent one per call: each worker sums
 * them per counter (and usage rows per row) for LIM_BATCH_MS and sends the
 * sums in one script call per LIM_SETTLE_CHUNK counters.  Reservations are
 * made per call, so enforcement is unchanged; a counter shows a call's
 * actual use (instead of its reservation) up to LIM_BATCH_MS later.  The
 * reserve script stays the only round trip on a call's path.
 *
 * Overrides (POST /v1/budgets) are kept in memory under sh->mu, keyed by
 * scope key ("team:platform"), as canonical text "metric period max soft;"
 * that is also what the store keeps; in Redis mode the main loop reloads
 * them from Redis every LIM_REFRESH_MS so every replica follows.
 */
#include "limits/limiter.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "audit/audit.h"
#include "core/jval.h"
#include "core/log.h"
#include "limits/ledger.h"
#include "limits/price.h"
#include "limits/redis.h"
#include "limits/usage_db.h"
#include "limits/window.h"
#include "metrics/metrics.h"

#define LIM_TICKET_MAX 32   /* counters of one call: 5 scopes would allow 40; see scope_rules */
#define LIM_REFRESH_MS 2000 /* Redis: overrides and gauges */
#define LIM_TICK_MS 1000    /* embedded: expiry and gauges */
#define LIM_GRACE_S 3600    /* a counter outlives its window by this much in Redis */
#define LIM_KEEP_DAYS 400   /* usage rows kept */
#define LIM_GAUGES_MAX 512  /* remaining-budget series */
#define LIM_OVERRIDES_MAX 4096
#define LIM_BATCH_MS 20     /* Redis: how long a worker sums settlements */
#define LIM_BATCH_CTRS 256  /* counters of one batch (a full batch goes at once) */
#define LIM_BATCH_ROWS 64   /* usage rows of one batch */
#define LIM_SETTLE_CHUNK 16 /* counters per settle script call */

/* ------------------------------------------------------------------ */
/* rule keys (the config's and POST /v1/budgets')                      */

#define SC_LLM                                                                                     \
    ((1u << CONFIG_LIM_WORKSPACE) | (1u << CONFIG_LIM_AGENT) | (1u << CONFIG_LIM_PROJECT) |        \
     (1u << CONFIG_LIM_TEAM))
#define SC_EGRESS (1u << CONFIG_LIM_EGRESS)

static const struct rule_key {
    const char *key;
    lim_metric_t metric;
    lim_window_t period;
    unsigned scopes;
} rule_keys[] = {
    {"requests_per_minute", LIM_REQUESTS, LIM_WIN_MINUTE, SC_LLM | SC_EGRESS},
    {"requests_per_day", LIM_REQUESTS, LIM_WIN_DAY, SC_LLM | SC_EGRESS},
    {"tokens_per_minute", LIM_TOKENS, LIM_WIN_MINUTE, SC_LLM},
    {"tokens_per_day", LIM_TOKENS, LIM_WIN_DAY, SC_LLM},
    {"tokens_per_month", LIM_TOKENS, LIM_WIN_MONTH, SC_LLM},
    {"cost_per_day", LIM_COST, LIM_WIN_DAY, SC_LLM},
    {"cost_per_month", LIM_COST, LIM_WIN_MONTH, SC_LLM},
    {"bytes_per_minute", LIM_BYTES, LIM_WIN_MINUTE, SC_EGRESS},
    {"bytes_per_day", LIM_BYTES, LIM_WIN_DAY, SC_EGRESS},
};
#define NRULE_KEYS (sizeof rule_keys / sizeof rule_keys[0])

static const char *rule_key_name(lim_metric_t m, lim_window_t p)
{
    for (size_t i = 0; i < NRULE_KEYS; i++)
        if (rule_keys[i].metric == m && rule_keys[i].period == p) return rule_keys[i].key;
    return "?";
}

/* ------------------------------------------------------------------ */
/* state                                                                */

typedef struct override {
    char key[LIM_SCOPE_KEY_MAX]; /* "team:platform" */
    lim_rule_t rules[CONFIG_LIM_MAX_RULES];
    size_t nrules;
} override_t;

typedef struct gauge {
    char scope[16], name[LIM_DIM_MAX];
    lim_metric_t metric;
    lim_window_t period;
    uint64_t max, used;
} gauge_t;

struct lim_shared {
    bool enabled;
    config_lim_store_t kind;
    bool fail_open;
    lim_ledger_t *ledger; /* embedded */
    lim_db_t *db;         /* embedded */
    lim_redis_opts_t ro;  /* redis; strings owned */
    char *r_host, *r_password, *r_prefix;
    char store_sig[600];

    pthread_mutex_t mu; /* overrides, gauges, cfg */
    override_t *ovr;
    size_t novr;
    gauge_t gauges[LIM_GAUGES_MAX];
    size_t ngauges;
    config_t *cfg; /* for the gauges (referenced) */

    uv_loop_t *loop;
    uv_timer_t timer;
    bool timer_on;
    uv_work_t work;
    bool work_busy;
    int64_t last_prune;
    gauge_t work_gauges[LIM_GAUGES_MAX]; /* filled on the thread pool */
    size_t work_ngauges;
    override_t *work_ovr;
    size_t work_novr;
    bool work_ovr_ok;
};

typedef struct tk_item {
    char scope[LIM_SCOPE_KEY_MAX];
    lim_rule_t rule;
    int64_t start, end;
} tk_item_t;

/* One counter of a Redis settlement batch: the sum of its calls' actual
 * minus reserved amounts, and what its soft threshold event needs. */
typedef struct bt_ctr {
    lim_counter_t ctr;
    int64_t delta;
    tk_item_t item;
} bt_ctr_t;

/* Open-addressing index over a batch array: slot = position + 1, 0 empty;
 * twice as many slots as entries, so probes stay short. */
typedef struct bt_index {
    uint16_t slot[4 * LIM_BATCH_CTRS];
} bt_index_t;

struct lim_worker {
    lim_shared_t *sh;
    lim_redis_t *redis;
    /* Redis settlement batch (allocated with the first settlement) */
    uv_timer_t batch_timer;
    bool batch_armed;
    bt_ctr_t *bc;
    size_t nbc;
    bt_index_t *bc_idx;
    lim_usage_row_t *br;
    size_t nbr;
    bt_index_t *br_idx;
};

/* What one settle script call of a batch needs when it answers. */
typedef struct bt_sent {
    lim_shared_t *sh;
    size_t n;
    tk_item_t item[LIM_SETTLE_CHUNK];
} bt_sent_t;

struct lim_ticket {
    lim_shared_t *sh;
    bool egress;
    bool meter;   /* bytes only: no request is counted */
    bool counted; /* false: fail_open, nothing reserved */
    lim_resv_t *resv;
    size_t n;
    tk_item_t item[LIM_TICKET_MAX];
    lim_counter_t ctr[LIM_TICKET_MAX];
    uint64_t reserved[LIM_TICKET_MAX];
    uint64_t actual[LIM_TICKET_MAX];
    bool has_price;
    lim_price_t price; /* pattern NULL */
    lim_usage_row_t row;
};

struct lim_pending {
    lim_worker_t *w;
    lim_ticket_t *t;
    lim_done_fn done;
    void *ctx;
    bool cancelled;
};

static lim_shared_t *g_shared; /* for the metrics hook */

/* ------------------------------------------------------------------ */
/* clock                                                                */

static pthread_mutex_t clock_mu = PTHREAD_MUTEX_INITIALIZER;

int64_t lim_now(void)
{
    static int inited;
    static const char *file;
    static struct timespec mtime;
    static int64_t offset;
    int64_t now = (int64_t)time(NULL);
    pthread_mutex_lock(&clock_mu);
    if (!inited) {
        file = getenv("CDEGUARD_TEST_CLOCK_FILE");
        inited = 1;
    }
    if (file) {
        struct stat st;
        if (stat(file, &st) == 0 &&
            (st.st_mtim.tv_sec != mtime.tv_sec || st.st_mtim.tv_nsec != mtime.tv_nsec)) {
            FILE *f = fopen(file, "r");
            long long v = 0;
            if (f) {
                if (fscanf(f, "%lld", &v) == 1) offset = v;
                fclose(f);
            }
            mtime = st.st_mtim;
        }
        now += offset;
    }
    pthread_mutex_unlock(&clock_mu);
    return now;
}

/* ------------------------------------------------------------------ */
/* overrides                                                            */

/* "metric period max soft;..." -> rules.  0, or -1. */
static int override_parse(const char *text, lim_rule_t *rules, size_t *n)
{
    *n = 0;
    const char *p = text;
    while (*p) {
        char m[16], per[16];
        unsigned long long max = 0;
        unsigned soft = 0;
        int used = 0;
        if (sscanf(p, "%15s %15s %llu %u;%n", m, per, &max, &soft, &used) != 4 || used == 0)
            return -1;
        lim_rule_t r = {.max = max, .soft_pct = soft};
        bool ok = false;
        for (int k = 0; k < LIM_METRICS; k++)
            if (strcmp(lim_metric_name((lim_metric_t)k), m) == 0) {
                r.metric = (lim_metric_t)k;
                ok = true;
            }
        if (!ok || lim_window_parse(per, &r.period) < 0 || max == 0 || soft > 99 ||
            *n >= CONFIG_LIM_MAX_RULES)
            return -1;
        rules[(*n)++] = r;
        p += used;
        while (*p == ' ')
            p++;
    }
    return 0;
}

static void override_text(const lim_rule_t *rules, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && o < cap; i++) {
        int k = snprintf(out + o, cap - o, "%s%s %s %" PRIu64 " %u;", i ? " " : "",
                         lim_metric_name(rules[i].metric), lim_window_name(rules[i].period),
                         rules[i].max, rules[i].soft_pct);
        if (k < 0) break;
        o += (size_t)k;
    }
}

/* Under sh->mu. */
static override_t *override_find(lim_shared_t *sh, const char *key)
{
    for (size_t i = 0; i < sh->novr; i++)
        if (strcmp(sh->ovr[i].key, key) == 0) return &sh->ovr[i];
    return NULL;
}

/* Set (rules != NULL) or remove an override in memory.  0, or -1. */
static int override_put(lim_shared_t *sh, const char *key, const lim_rule_t *rules, size_t n)
{
    int rc = 0;
    pthread_mutex_lock(&sh->mu);
    override_t *o = override_find(sh, key);
    if (!rules) {
        if (o) *o = sh->ovr[--sh->novr];
    } else if (o) {
        memcpy(o->rules, rules, n * sizeof *rules);
        o->nrules = n;
    } else if (sh->novr < LIM_OVERRIDES_MAX) {
        override_t *a = realloc(sh->ovr, (sh->novr + 1) * sizeof *a);
        if (!a) {
            rc = -1;
        } else {
            sh->ovr = a;
            o = &a[sh->novr++];
            memset(o, 0, sizeof *o);
            snprintf(o->key, sizeof o->key, "%s", key);
            memcpy(o->rules, rules, n * sizeof *rules);
            o->nrules = n;
        }
    } else {
        rc = -1;
    }
    pthread_mutex_unlock(&sh->mu);
    return rc;
}

typedef struct ovr_list {
    override_t *v;
    size_t n;
    bool bad;
} ovr_list_t;

static int ovr_collect(void *ctx, const char *scope, const char *text)
{
    ovr_list_t *l = ctx;
    if (l->n >= LIM_OVERRIDES_MAX || strlen(scope) >= LIM_SCOPE_KEY_MAX) return 0;
    override_t o = {0};
    snprintf(o.key, sizeof o.key, "%s", scope);
    if (override_parse(text, o.rules, &o.nrules) < 0) {
        log_warn("limits: ignoring a stored budget override for %s that cannot be read", scope);
        return 0;
    }
    override_t *a = realloc(l->v, (l->n + 1) * sizeof *a);
    if (!a) {
        l->bad = true;
        return 1;
    }
    l->v = a;
    l->v[l->n++] = o;
    return 0;
}

static void overrides_replace(lim_shared_t *sh, override_t *v, size_t n)
{
    pthread_mutex_lock(&sh->mu);
    free(sh->ovr);
    sh->ovr = v;
    sh->novr = n;
    pthread_mutex_unlock(&sh->mu);
}

/* ------------------------------------------------------------------ */
/* shared state                                                         */

static int load_counter(void *ctx, const char *scope, int metric, int period, int64_t start,
                        int64_t end, uint64_t used)
{
    lim_shared_t *sh = ctx;
    lim_ledger_load(sh->ledger, scope, (lim_metric_t)metric, (lim_window_t)period, start, end,
                    used);
    return 0;
}

static void store_signature(const config_t *cfg, char *out, size_t cap)
{
    const config_limits_t *l = &cfg->limits;
    if (!l->enabled)
        snprintf(out, cap, "off");
    else if (l->store == CONFIG_LIM_STORE_SQLITE)
        snprintf(out, cap, "sqlite %s %" PRIu64, l->db_path ? l->db_path : "",
                 l->flush_interval_ms);
    else
        snprintf(out, cap, "redis %s %s %" PRIu64 " %d", l->redis_url ? l->redis_url : "",
                 l->key_prefix ? l->key_prefix : "", l->redis_timeout_ms, l->fail_open);
}

static void redis_opts_from(const config_t *cfg, lim_redis_opts_t *o)
{
    const config_limits_t *l = &cfg->limits;
    *o = (lim_redis_opts_t){
        .host = l->redis_host,
        .port = l->redis_port,
        .db = l->redis_db,
        .password = l->redis_password,
        .prefix = l->key_prefix ? l->key_prefix : "cdeguard",
        .timeout_ms = l->redis_timeout_ms ? l->redis_timeout_ms : 250,
    };
}

lim_shared_t *lim_shared_new(const config_t *cfg, char *err, size_t errlen)
{
    lim_shared_t *sh = calloc(1, sizeof *sh);
    if (!sh) {
        snprintf(err, errlen, "limits: out of memory");
        return NULL;
    }
    pthread_mutex_init(&sh->mu, NULL);
    store_signature(cfg, sh->store_sig, sizeof sh->store_sig);
    g_shared = sh;
    const config_limits_t *l = &cfg->limits;
    if (!l->enabled) return sh;
    sh->enabled = true;
    sh->kind = l->store;
    sh->fail_open = l->fail_open;
    char e[256];
    if (l->store == CONFIG_LIM_STORE_SQLITE) {
        sh->ledger = lim_ledger_new();
        if (!sh->ledger) {
            snprintf(err, errlen, "limits: out of memory");
            goto fail;
        }
        if (lim_db_open(l->db_path, l->flush_interval_ms, &sh->db, e, sizeof e) != LIM_DB_OK) {
            snprintf(err, errlen, "limits: store: %s", e);
            goto fail;
        }
        if (lim_db_load_counters(sh->db, lim_now(), load_counter, sh, e, sizeof e) != 0) {
            snprintf(err, errlen, "limits: store %s: %s", l->db_path, e);
            goto fail;
        }
        ovr_list_t ol = {0};
        if (lim_db_load_overrides(sh->db, ovr_collect, &ol, e, sizeof e) != 0 || ol.bad) {
            free(ol.v);
            snprintf(err, errlen, "limits: store %s: %s", l->db_path, ol.bad ? "out of memory" : e);
            goto fail;
        }
        overrides_replace(sh, ol.v, ol.n);
    } else {
        lim_redis_opts_t o;
        redis_opts_from(cfg, &o);
        sh->r_host = strdup(o.host ? o.host : "127.0.0.1");
        sh->r_prefix = strdup(o.prefix);
        sh->r_password = o.password ? strdup(o.password) : NULL;
        if (!sh->r_host || !sh->r_prefix || (o.password && !sh->r_password)) {
            snprintf(err, errlen, "limits: out of memory");
            goto fail;
        }
        sh->ro = o;
        sh->ro.host = sh->r_host;
        sh->ro.prefix = sh->r_prefix;
        sh->ro.password = sh->r_password;
        ovr_list_t ol = {0};
        if (lim_redis_load_overrides(&sh->ro, ovr_collect, &ol, e, sizeof e) != 0) {
            log_warn("limits: redis %s:%u not reachable at start (%s); calls get %s until it is",
                     sh->ro.host, sh->ro.port, e, sh->fail_open ? "fail_open" : "fail_closed");
            free(ol.v);
        } else {
            overrides_replace(sh, ol.v, ol.n);
        }
    }
    return sh;
fail:
    lim_shared_free(sh);
    return NULL;
}

const char *lim_shared_store_changed(const lim_shared_t *sh, const config_t *cfg)
{
    char sig[sizeof sh->store_sig];
    store_signature(cfg, sig, sizeof sig);
    if (strcmp(sig, sh->store_sig) == 0) return NULL;
    return "limits: the store settings changed; they apply at the next start (the running "
           "store is kept)";
}

void lim_shared_set_config(lim_shared_t *sh, config_t *cfg)
{
    if (!sh) return;
    config_t *old;
    pthread_mutex_lock(&sh->mu);
    old = sh->cfg;
    sh->cfg = cfg ? config_ref(cfg) : NULL;
    pthread_mutex_unlock(&sh->mu);
    if (old) config_unref(old);
}

void lim_shared_free(lim_shared_t *sh)
{
    if (!sh) return;
    if (g_shared == sh) g_shared = NULL;
    if (sh->db) lim_db_close(sh->db);
    lim_ledger_free(sh->ledger);
    free(sh->r_host);
    free(sh->r_prefix);
    if (sh->r_password) {
        memset(sh->r_password, 0, strlen(sh->r_password));
        free(sh->r_password);
    }
    free(sh->ovr);
    if (sh->cfg) config_unref(sh->cfg);
    pthread_mutex_destroy(&sh->mu);
    free(sh);
}

/* ------------------------------------------------------------------ */
/* scopes of a call                                                     */

typedef struct call_scope {
    config_lim_scope_t kind;
    char key[LIM_SCOPE_KEY_MAX]; /* "team:platform" */
    const char *name;            /* points into key, after the ':' */
    lim_rule_t rules[CONFIG_LIM_MAX_RULES];
    size_t nrules;
} call_scope_t;

/* The effective rules of one scope instance: an override, else its entry. */
static void scope_rules(lim_shared_t *sh, const config_t *cfg, call_scope_t *s)
{
    s->nrules = 0;
    pthread_mutex_lock(&sh->mu);
    const override_t *o = override_find(sh, s->key);
    if (o) {
        memcpy(s->rules, o->rules, o->nrules * sizeof o->rules[0]);
        s->nrules = o->nrules;
    }
    pthread_mutex_unlock(&sh->mu);
    if (o) return;
    const config_lim_entry_t *e = config_lim_entry(cfg, s->kind, s->name);
    if (!e) return;
    memcpy(s->rules, e->rules, e->nrules * sizeof e->rules[0]);
    s->nrules = e->nrules;
}

static bool scope_set(call_scope_t *s, config_lim_scope_t kind, const char *name)
{
    s->kind = kind;
    int n = snprintf(s->key, sizeof s->key, "%s:%s", config_lim_scope_name(kind), name);
    if (n < 0 || (size_t)n >= sizeof s->key) return false;
    s->name = strchr(s->key, ':') + 1;
    return true;
}

/* The scopes of a call, with their rules; their number. */
static size_t call_scopes(lim_shared_t *sh, const lim_call_t *call, call_scope_t *sc)
{
    size_t n = 0;
    const config_workspace_t *ws = call->ws;
    if (call->egress) {
        if (scope_set(&sc[n], CONFIG_LIM_EGRESS, ws->id)) n++;
    } else {
        if (scope_set(&sc[n], CONFIG_LIM_WORKSPACE, ws->id)) n++;
        if (call->agent && call->agent[0]) {
            char an[LIM_SCOPE_KEY_MAX];
            snprintf(an, sizeof an, "%s/%s", ws->id, call->agent);
            if (scope_set(&sc[n], CONFIG_LIM_AGENT, an)) n++;
        }
        if (ws->project && scope_set(&sc[n], CONFIG_LIM_PROJECT, ws->project)) n++;
        const char *team = ws->team ? ws->team : ws->group;
        if (team && scope_set(&sc[n], CONFIG_LIM_TEAM, team)) n++;
    }
    for (size_t i = 0; i < n; i++) {
        scope_rules(sh, call->cfg, &sc[i]);
        if (!call->meter) continue;
        size_t k = 0; /* a meter call checks the byte rules only */
        for (size_t j = 0; j < sc[i].nrules; j++)
            if (sc[i].rules[j].metric == LIM_BYTES) sc[i].rules[k++] = sc[i].rules[j];
        sc[i].nrules = k;
    }
    return n;
}

/* ------------------------------------------------------------------ */
/* messages                                                             */

/* "team" of "team:platform" (a metric label: from the config's names). */
static const char *scope_kind_label(const char *key)
{
    for (int k = 0; k < CONFIG_LIM_NSCOPES; k++) {
        const char *n = config_lim_scope_name((config_lim_scope_t)k);
        size_t len = strlen(n);
        if (strncmp(key, n, len) == 0 && key[len] == ':') return n;
    }
    return "other";
}

static void format_amount(lim_metric_t m, uint64_t v, char *buf, size_t cap)
{
    if (m == LIM_COST) {
        char usd[LIM_USD_BUFSZ];
        lim_format_usd(v, usd, sizeof usd);
        snprintf(buf, cap, "$%s", usd);
    } else {
        snprintf(buf, cap, "%" PRIu64, v);
    }
}

static void refusal_message(lim_result_t *res, const char *scope, lim_metric_t m, lim_window_t p,
                            uint64_t max, uint64_t value, uint64_t wanted, int64_t retry)
{
    char smax[40], sval[40], swant[40];
    format_amount(m, max, smax, sizeof smax);
    format_amount(m, value, sval, sizeof sval);
    format_amount(m, wanted, swant, sizeof swant);
    char sc[LIM_SCOPE_KEY_MAX];
    snprintf(sc, sizeof sc, "%s", scope);
    char *colon = strchr(sc, ':');
    if (colon) *colon = ' ';
    res->allowed = false;
    res->status = 429;
    res->reason = p == LIM_WIN_MINUTE ? LIM_REASON_RATE : LIM_REASON_BUDGET;
    res->retry_after = retry < 1 ? 1 : retry;
    int k; /* a message cut at 320 bytes is still a message */
    if (value >= max)
        k = snprintf(res->message, sizeof res->message,
                     "%s has used its %s limit (%s of %s); retry after %" PRId64 " s", sc,
                     rule_key_name(m, p), sval, smax, res->retry_after);
    else
        k = snprintf(res->message, sizeof res->message,
                     "%s: this call (up to %s) would overrun its %s limit (%s of %s in use); retry "
                     "after %" PRId64 " s or ask for less (max_tokens)",
                     sc, swant, rule_key_name(m, p), sval, smax, res->retry_after);
    (void)k;
    metrics_limit_refusal(scope_kind_label(scope), lim_metric_name(m), lim_window_name(p));
}

/* ------------------------------------------------------------------ */
/* soft thresholds                                                      */

static void soft_event(const char *scope, const lim_rule_t *rule, uint64_t used, int64_t start)
{
    char line[1024], ts[40], ws[40];
    size_t o = 0;
    audit_format_time((uint64_t)lim_now() * 1000, ts, sizeof ts);
    audit_format_time((uint64_t)start * 1000, ws, sizeof ws);
    o += (size_t)snprintf(line, sizeof line,
                          "{\"time\":\"%s\",\"type\":\"limit_soft_threshold\","
                          "\"scope\":\"",
                          ts);
    audit_json_escape(line, sizeof line, &o, scope);
    char su[40], sm[40];
    format_amount(rule->metric, used, su, sizeof su);
    format_amount(rule->metric, rule->max, sm, sizeof sm);
    if (o < sizeof line)
        o +=
            (size_t)snprintf(line + o, sizeof line - o,
                             "\",\"limit\":\"%s\",\"window_start\":\"%s\",\"used\":\"%s\","
                             "\"max\":\"%s\",\"threshold_pct\":%u}",
                             rule_key_name(rule->metric, rule->period), ws, su, sm, rule->soft_pct);
    if (o < sizeof line) audit_write_line(line, o);
    metrics_limit_soft(scope_kind_label(scope), lim_metric_name(rule->metric),
                       lim_window_name(rule->period));
    log_info("limits: %s passed %u%% of its %s", scope, rule->soft_pct,
             rule_key_name(rule->metric, rule->period));
}

static void ledger_soft(void *ctx, const char *scope, const lim_rule_t *rule, uint64_t used,
                        int64_t window_start)
{
    (void)ctx;
    soft_event(scope, rule, used, window_start);
}

static void ledger_put(void *ctx, const char *scope, lim_metric_t metric, lim_window_t period,
                       int64_t start, int64_t end, uint64_t used)
{
    lim_shared_t *sh = ctx;
    if (sh->db) lim_db_put_counter(sh->db, scope, (int)metric, (int)period, start, end, used);
}

/* ------------------------------------------------------------------ */
/* workers                                                              */

static void batch_flush(lim_worker_t *w);

static void on_batch_timer(uv_timer_t *t)
{
    lim_worker_t *w = t->data;
    w->batch_armed = false;
    batch_flush(w);
}

lim_worker_t *lim_worker_new(lim_shared_t *sh, uv_loop_t *loop, char *err, size_t errlen)
{
    lim_worker_t *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "limits: out of memory");
        return NULL;
    }
    w->sh = sh;
    if (sh->enabled && sh->kind == CONFIG_LIM_STORE_REDIS) {
        w->redis = lim_redis_new(loop, &sh->ro, err, errlen);
        if (!w->redis) {
            free(w);
            return NULL;
        }
        uv_timer_init(loop, &w->batch_timer);
        w->batch_timer.data = w;
    }
    return w;
}

static void worker_closed(uv_handle_t *h)
{
    lim_worker_t *w = h->data;
    free(w->bc);
    free(w->bc_idx);
    free(w->br);
    free(w->br_idx);
    free(w);
}

void lim_worker_free(lim_worker_t *w)
{
    if (!w) return;
    if (!w->redis) {
        free(w);
        return;
    }
    /* The batch goes out and the worker waits (at most the store timeout)
     * for the answers; what Redis has not answered by then fails (logged,
     * counted in cdeguard_limit_store_errors_total). */
    batch_flush(w);
    lim_redis_drain(w->redis, w->sh->ro.timeout_ms);
    lim_redis_free(w->redis);
    w->redis = NULL;
    uv_close((uv_handle_t *)&w->batch_timer, worker_closed);
}

/* ------------------------------------------------------------------ */
/* check                                                                */

static lim_ticket_t *ticket_new(lim_shared_t *sh, const lim_call_t *call)
{
    lim_ticket_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->sh = sh;
    t->egress = call->egress;
    t->meter = call->egress && call->meter;
    t->counted = true;
    const config_workspace_t *ws = call->ws;
    lim_usage_row_t *r = &t->row;
    snprintf(r->workspace, sizeof r->workspace, "%s", ws->id);
    snprintf(r->team, sizeof r->team, "%s", ws->team ? ws->team : (ws->group ? ws->group : ""));
    snprintf(r->project, sizeof r->project, "%s", ws->project ? ws->project : "");
    snprintf(r->agent, sizeof r->agent, "%s", call->agent ? call->agent : "");
    snprintf(r->provider, sizeof r->provider, "%s", call->provider ? call->provider : "");
    snprintf(r->model, sizeof r->model, "%s", call->model ? call->model : "");
    return t;
}

static void fill_store_error(lim_shared_t *sh, lim_result_t *res, const char *why)
{
    if (sh->fail_open) {
        res->allowed = true;
        res->fail_open = true;
        snprintf(res->message, sizeof res->message,
                 "limits store unreachable (%s): allowed by on_error: fail_open, not counted", why);
        metrics_limit_store_error(sh->kind == CONFIG_LIM_STORE_REDIS ? "redis" : "sqlite", true);
    } else {
        res->allowed = false;
        res->status = 503;
        res->reason = LIM_REASON_STORE;
        res->retry_after = 1;
        snprintf(res->message, sizeof res->message,
                 "the rate-limit and budget store is unreachable (%s); calls are refused until it "
                 "answers (on_error: fail_closed)",
                 why);
        metrics_limit_store_error(sh->kind == CONFIG_LIM_STORE_REDIS ? "redis" : "sqlite", false);
    }
}

static void on_reserved(void *ctx, int status, size_t idx, uint64_t value, const char *err)
{
    lim_pending_t *p = ctx;
    lim_ticket_t *t = p->t;
    lim_shared_t *sh = t->sh;
    if (p->cancelled) {
        if (status == LIM_RS_OK && p->w->redis)
            lim_redis_settle(p->w->redis, t->ctr, t->reserved, t->actual, t->n, NULL, NULL, NULL);
        free(t);
        free(p);
        return;
    }
    lim_result_t res = {.allowed = true};
    lim_ticket_t *give = t;
    if (status == LIM_RS_OK) {
        /* allowed */
    } else if (status == LIM_RS_REFUSED && idx < t->n) {
        const tk_item_t *it = &t->item[idx];
        refusal_message(&res, it->scope, it->rule.metric, it->rule.period, it->rule.max, value,
                        t->ctr[idx].amount, it->end - lim_now());
        free(t);
        give = NULL;
    } else {
        fill_store_error(sh, &res, err ? err : "no answer");
        if (res.allowed) {
            t->counted = false;
        } else {
            free(t);
            give = NULL;
        }
    }
    lim_done_fn done = p->done;
    void *dctx = p->ctx;
    free(p);
    done(dctx, give, &res);
}

int lim_check(lim_worker_t *w, const lim_call_t *call, lim_ticket_t **tout, lim_result_t *res,
              lim_done_fn done, void *ctx, lim_pending_t **pending)
{
    memset(res, 0, sizeof *res);
    res->allowed = true;
    *tout = NULL;
    *pending = NULL;
    lim_shared_t *sh = w->sh;
    const config_t *cfg = call->cfg;
    if (!sh->enabled || !cfg->limits.enabled || !call->ws) return LIM_DONE;

    int64_t now = lim_now();
    call_scope_t sc[5];
    size_t ns = call_scopes(sh, call, sc);
    lim_ticket_t *t = ticket_new(sh, call);
    if (!t) goto store_fail;

    bool cost_rule = false;
    for (size_t i = 0; i < ns; i++)
        for (size_t k = 0; k < sc[i].nrules; k++)
            if (sc[i].rules[k].metric == LIM_COST) cost_rule = true;

    lim_amount_t est = {.v = {t->meter ? 0 : 1, 0, 0, t->meter ? call->bytes : 0}};
    if (!call->egress) {
        const char *model = call->model ? call->model : "";
        const lim_price_t *pr =
            lim_price_find(cfg->limits.prices, cfg->limits.nprices, model, strlen(model));
        if (pr) {
            t->has_price = true;
            t->price = *pr;
            t->price.pattern = NULL;
        } else if (cost_rule && !cfg->limits.unpriced_free) {
            res->allowed = false;
            res->status = 403;
            res->reason = LIM_REASON_UNPRICED;
            snprintf(res->message, sizeof res->message,
                     "model '%s' has no price in limits.prices and a cost budget applies to this "
                     "call; add a price for it (or set limits.unpriced: free)",
                     model);
            free(t);
            return LIM_DONE;
        }
        est.v[LIM_TOKENS] = call->est_input + call->est_output;
        est.v[LIM_COST] =
            lim_cost_nano(t->has_price ? &t->price : NULL, call->est_input, call->est_output, 0, 0);
    }

    lim_spans_t spans;
    for (int k = 0; k < LIM_WINDOWS; k++) {
        lim_span_t sp;
        if (lim_window_at(cfg->limits.tz, (lim_window_t)k, now, &sp) < 0) {
            sp.start = now;
            sp.end = now + 1;
        }
        spans.start[k] = sp.start;
        spans.end[k] = sp.end;
    }
    /* the ticket's items: every rule of every scope, in order */
    for (size_t i = 0; i < ns; i++) {
        for (size_t k = 0; k < sc[i].nrules && t->n < LIM_TICKET_MAX; k++) {
            const lim_rule_t *r = &sc[i].rules[k];
            tk_item_t *it = &t->item[t->n];
            snprintf(it->scope, sizeof it->scope, "%s", sc[i].key);
            it->rule = *r;
            it->start = spans.start[r->period];
            it->end = spans.end[r->period];
            lim_counter_t *c = &t->ctr[t->n];
            snprintf(c->key, sizeof c->key, "%s|%s|%s|%" PRId64, sc[i].key,
                     lim_metric_name(r->metric), lim_window_name(r->period), it->start);
            c->max = r->max;
            c->amount = est.v[r->metric];
            c->expire_at = it->end + LIM_GRACE_S;
            c->soft_pct = r->soft_pct;
            t->reserved[t->n] = c->amount;
            t->n++;
        }
    }

    if (sh->kind == CONFIG_LIM_STORE_SQLITE) {
        lim_scope_t ls[5];
        for (size_t i = 0; i < ns; i++)
            ls[i] = (lim_scope_t){.key = sc[i].key, .rules = sc[i].rules, .nrules = sc[i].nrules};
        lim_refusal_t why;
        int rc = lim_ledger_reserve(sh->ledger, ls, ns, &est, &spans, now, &t->resv, &why);
        if (rc == LIM_REFUSED) {
            refusal_message(res, why.scope, why.metric, why.period, why.max,
                            why.used + why.reserved, why.wanted, why.retry_after);
            free(t);
            return LIM_DONE;
        }
        if (rc != LIM_OK) {
            free(t);
            goto store_fail;
        }
        *tout = t;
        return LIM_DONE;
    }

    /* Redis */
    if (t->n == 0) { /* nothing to check: the ticket only records usage */
        *tout = t;
        return LIM_DONE;
    }
    if (t->n > LIM_REDIS_MAX_COUNTERS) {
        free(t);
        fill_store_error(sh, res,
                         "more than 16 limits apply to this call; the redis store checks "
                         "at most 16 per call");
        return LIM_DONE;
    }
    lim_pending_t *p = calloc(1, sizeof *p);
    if (!p) {
        free(t);
        goto store_fail;
    }
    *p = (lim_pending_t){.w = w, .t = t, .done = done, .ctx = ctx};
    if (lim_redis_reserve(w->redis, t->ctr, t->n, on_reserved, p) < 0) {
        free(p);
        free(t);
        goto store_fail;
    }
    *pending = p;
    return LIM_PENDING;

store_fail:
    fill_store_error(sh, res, "out of memory");
    if (res->allowed) res->fail_open = true;
    return LIM_DONE;
}

void lim_cancel(lim_pending_t *p)
{
    if (p) p->cancelled = true;
}

/* ------------------------------------------------------------------ */
/* settle                                                               */

/* ---- Redis settlement batches ---- */

/* FNV-1a */
static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static uint16_t *bt_find(bt_index_t *ix, uint64_t h,
                         bool (*same)(const void *, size_t, const void *), const void *base,
                         const void *key)
{
    size_t mask = sizeof ix->slot / sizeof ix->slot[0] - 1;
    for (size_t j = h & mask;; j = (j + 1) & mask) {
        uint16_t *s = &ix->slot[j];
        if (*s == 0 || same(base, *s - 1u, key)) return s;
    }
}

static bool same_ctr(const void *base, size_t i, const void *key)
{
    return strcmp(((const bt_ctr_t *)base)[i].ctr.key, key) == 0;
}

static uint64_t row_hash(const lim_usage_row_t *r)
{
    const char *dims[6] = {r->workspace, r->team, r->project, r->agent, r->provider, r->model};
    uint64_t h = (uint64_t)r->hour * 1099511628211ULL;
    for (int i = 0; i < 6; i++)
        h = (h ^ str_hash(dims[i])) * 1099511628211ULL;
    return h;
}

static bool same_row(const void *base, size_t i, const void *key)
{
    const lim_usage_row_t *a = &((const lim_usage_row_t *)base)[i], *b = key;
    return a->hour == b->hour && !strcmp(a->workspace, b->workspace) && !strcmp(a->team, b->team) &&
           !strcmp(a->project, b->project) && !strcmp(a->agent, b->agent) &&
           !strcmp(a->provider, b->provider) && !strcmp(a->model, b->model);
}

static bool batch_alloc(lim_worker_t *w)
{
    if (w->bc) return true;
    w->bc = calloc(LIM_BATCH_CTRS, sizeof *w->bc);
    w->bc_idx = calloc(1, sizeof *w->bc_idx);
    w->br = calloc(LIM_BATCH_ROWS, sizeof *w->br);
    w->br_idx = calloc(1, sizeof *w->br_idx);
    if (w->bc && w->bc_idx && w->br && w->br_idx) return true;
    free(w->bc);
    free(w->bc_idx);
    free(w->br);
    free(w->br_idx);
    w->bc = NULL;
    w->bc_idx = w->br_idx = NULL;
    w->br = NULL;
    return false;
}

static void batch_add_counter(lim_worker_t *w, const lim_counter_t *c, int64_t delta,
                              const tk_item_t *item)
{
    if (!batch_alloc(w)) {
        log_warn("limits: out of memory: a settlement is not counted");
        return;
    }
    uint64_t h = str_hash(c->key);
    uint16_t *s = bt_find(w->bc_idx, h, same_ctr, w->bc, c->key);
    if (*s) {
        w->bc[*s - 1].delta += delta;
        return;
    }
    if (w->nbc == LIM_BATCH_CTRS) {
        batch_flush(w);
        s = bt_find(w->bc_idx, h, same_ctr, w->bc, c->key);
    }
    bt_ctr_t *b = &w->bc[w->nbc];
    b->ctr = *c;
    b->ctr.amount = 0;
    b->delta = delta;
    b->item = *item;
    *s = (uint16_t)++w->nbc;
}

static void batch_add_row(lim_worker_t *w, const lim_usage_row_t *r)
{
    if (!batch_alloc(w)) {
        log_warn("limits: out of memory: a usage row is not counted");
        return;
    }
    uint64_t h = row_hash(r);
    uint16_t *s = bt_find(w->br_idx, h, same_row, w->br, r);
    if (*s) {
        lim_usage_row_t *a = &w->br[*s - 1];
        a->requests += r->requests;
        a->input += r->input;
        a->output += r->output;
        a->cache_read += r->cache_read;
        a->cache_write += r->cache_write;
        a->cost_nano += r->cost_nano;
        return;
    }
    if (w->nbr == LIM_BATCH_ROWS) {
        batch_flush(w);
        s = bt_find(w->br_idx, h, same_row, w->br, r);
    }
    w->br[w->nbr] = *r;
    *s = (uint16_t)++w->nbr;
}

static void on_batch_settled(void *ctx, int status, const size_t *soft, size_t nsoft,
                             const char *err)
{
    bt_sent_t *b = ctx;
    if (status != LIM_RS_OK) {
        log_warn("limits: a settlement did not reach redis (%s); its usage is not counted",
                 err ? err : "error");
        metrics_limit_store_error("redis", b->sh->fail_open);
    }
    for (size_t i = 0; i < nsoft; i++)
        if (soft[i] < b->n)
            soft_event(b->item[soft[i]].scope, &b->item[soft[i]].rule, 0, b->item[soft[i]].start);
    free(b);
}

/* Send the batch: one settle call per LIM_SETTLE_CHUNK counters, the usage
 * rows one per call (the first ones with the counters). */
static void batch_flush(lim_worker_t *w)
{
    if (!w->bc || (w->nbc == 0 && w->nbr == 0)) return;
    if (w->batch_armed) {
        uv_timer_stop(&w->batch_timer);
        w->batch_armed = false;
    }
    size_t ci = 0, ri = 0;
    while (ci < w->nbc || ri < w->nbr) {
        lim_counter_t ctr[LIM_SETTLE_CHUNK];
        uint64_t rsv[LIM_SETTLE_CHUNK], act[LIM_SETTLE_CHUNK];
        bt_sent_t *b = malloc(sizeof *b);
        if (!b) {
            log_warn("limits: out of memory: settlements are not counted");
            break;
        }
        b->sh = w->sh;
        b->n = 0;
        for (; ci < w->nbc && b->n < LIM_SETTLE_CHUNK; ci++, b->n++) {
            const bt_ctr_t *c = &w->bc[ci];
            ctr[b->n] = c->ctr;
            rsv[b->n] = c->delta < 0 ? (uint64_t)-c->delta : 0;
            act[b->n] = c->delta > 0 ? (uint64_t)c->delta : 0;
            b->item[b->n] = c->item;
        }
        const lim_usage_row_t *row = ri < w->nbr ? &w->br[ri++] : NULL;
        if (lim_redis_settle(w->redis, ctr, rsv, act, b->n, row, on_batch_settled, b) < 0) {
            log_warn("limits: cannot send a settlement to redis (out of memory or a bad row)");
            free(b);
        }
    }
    w->nbc = w->nbr = 0;
    memset(w->bc_idx, 0, sizeof *w->bc_idx);
    memset(w->br_idx, 0, sizeof *w->br_idx);
}

void lim_settle(lim_worker_t *w, lim_ticket_t *t, const lim_used_t *used)
{
    if (!t) return;
    lim_shared_t *sh = t->sh;
    lim_amount_t act = {0};
    if (used) {
        act.v[LIM_REQUESTS] = t->meter ? 0 : 1;
        act.v[LIM_TOKENS] = used->input + used->output;
        act.v[LIM_COST] = t->egress
                              ? 0
                              : lim_cost_nano(t->has_price ? &t->price : NULL, used->input,
                                              used->output, used->cache_read, used->cache_write);
        act.v[LIM_BYTES] = used->bytes;
        lim_usage_row_t *r = &t->row;
        r->hour = lim_now() / 3600 * 3600;
        r->requests = 1;
        r->input = used->input;
        r->output = used->output;
        r->cache_read = used->cache_read;
        r->cache_write = used->cache_write;
        r->cost_nano = act.v[LIM_COST];
    }
    if (sh->kind == CONFIG_LIM_STORE_SQLITE) {
        lim_ledger_settle(sh->ledger, t->resv, used ? &act : NULL, ledger_soft, ledger_put, sh);
        if (used && !t->egress && sh->db) lim_db_add_usage(sh->db, &t->row);
        free(t);
        return;
    }
    if (!w || !w->redis) {
        free(t);
        return;
    }
    for (size_t i = 0; i < t->n; i++) {
        int64_t delta =
            (int64_t)act.v[t->item[i].rule.metric] - (t->counted ? (int64_t)t->reserved[i] : 0);
        /* nothing to change and no soft threshold to look at */
        if (delta == 0 && t->ctr[i].soft_pct == 0) continue;
        batch_add_counter(w, &t->ctr[i], delta, &t->item[i]);
    }
    if (used && !t->egress) batch_add_row(w, &t->row);
    free(t);
    if (!w->batch_armed && (w->nbc || w->nbr)) {
        uv_timer_start(&w->batch_timer, on_batch_timer, LIM_BATCH_MS, 0);
        w->batch_armed = true;
    }
}

/* ------------------------------------------------------------------ */
/* current values of counters (gauges, budget status)                  */

typedef struct probe {
    char scope[LIM_SCOPE_KEY_MAX];
    lim_rule_t rule;
    int64_t start, end;
    uint64_t used; /* used + reserved */
} probe_t;

/* Fill probes[i].used from the store.  0, or -1 with err (Redis: blocking). */
static int probe_values(lim_shared_t *sh, probe_t *pr, size_t n, char *err, size_t errlen)
{
    if (n == 0) return 0;
    if (sh->kind == CONFIG_LIM_STORE_SQLITE) {
        for (size_t i = 0; i < n; i++) {
            uint64_t u = 0, r = 0;
            lim_ledger_peek(sh->ledger, pr[i].scope, pr[i].rule.metric, pr[i].rule.period,
                            pr[i].start, &u, &r);
            pr[i].used = u + r;
        }
        return 0;
    }
    char(*keys)[LIM_COUNTER_KEY_MAX] = calloc(n, sizeof *keys);
    const char **kp = calloc(n, sizeof *kp);
    uint64_t *vals = calloc(n, sizeof *vals);
    int rc = -1;
    if (!keys || !kp || !vals) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(keys[i], sizeof keys[i], "%s|%s|%s|%" PRId64, pr[i].scope,
                 lim_metric_name(pr[i].rule.metric), lim_window_name(pr[i].rule.period),
                 pr[i].start);
        kp[i] = keys[i];
    }
    rc = lim_redis_get_counters(&sh->ro, kp, n, vals, err, errlen);
    if (rc == 0)
        for (size_t i = 0; i < n; i++)
            pr[i].used = vals[i];
out:
    free(keys);
    free(kp);
    free(vals);
    return rc;
}

static void probe_window(const config_t *cfg, probe_t *p, int64_t now)
{
    lim_span_t sp;
    if (lim_window_at(cfg->limits.tz, p->rule.period, now, &sp) < 0) {
        sp.start = now;
        sp.end = now + 1;
    }
    p->start = sp.start;
    p->end = sp.end;
}

/* Is `name` an instance of the scope in cfg? */
static bool instance_exists(const config_t *cfg, config_lim_scope_t kind, const char *name)
{
    for (size_t i = 0; i < cfg->nworkspaces; i++) {
        const config_workspace_t *ws = &cfg->workspaces[i];
        const char *team = ws->team ? ws->team : ws->group;
        switch (kind) {
        case CONFIG_LIM_WORKSPACE:
        case CONFIG_LIM_EGRESS:
            if (strcmp(ws->id, name) == 0) return true;
            break;
        case CONFIG_LIM_TEAM:
            if (team && strcmp(team, name) == 0) return true;
            break;
        case CONFIG_LIM_PROJECT:
            if (ws->project && strcmp(ws->project, name) == 0) return true;
            break;
        case CONFIG_LIM_AGENT: {
            size_t l = strlen(ws->id);
            const char *a = name + l + 1;
            if (strncmp(name, ws->id, l) == 0 && name[l] == '/' && *a && strlen(a) < 129) {
                for (; *a; a++)
                    if (*a <= ' ' || *a > '~') return false;
                return true;
            }
            break;
        }
        default:
            break;
        }
    }
    return false;
}

/* Every (scope instance, budget rule) of teams and projects: the gauges. */
static size_t gauge_probes(lim_shared_t *sh, const config_t *cfg, int64_t now, probe_t *pr,
                           size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->nworkspaces; i++) {
        const config_workspace_t *ws = &cfg->workspaces[i];
        const char *names[2] = {ws->team ? ws->team : ws->group, ws->project};
        config_lim_scope_t kinds[2] = {CONFIG_LIM_TEAM, CONFIG_LIM_PROJECT};
        for (int k = 0; k < 2; k++) {
            if (!names[k]) continue;
            call_scope_t s;
            if (!scope_set(&s, kinds[k], names[k])) continue;
            bool seen = false;
            for (size_t j = 0; j < n && !seen; j++)
                seen = strcmp(pr[j].scope, s.key) == 0;
            if (seen) continue;
            scope_rules(sh, cfg, &s);
            for (size_t r = 0; r < s.nrules && n < cap; r++) {
                if (s.rules[r].period == LIM_WIN_MINUTE) continue;
                probe_t *p = &pr[n++];
                memset(p, 0, sizeof *p);
                snprintf(p->scope, sizeof p->scope, "%s", s.key);
                p->rule = s.rules[r];
                probe_window(cfg, p, now);
            }
        }
    }
    return n;
}

static size_t gauges_from_probes(const probe_t *pr, size_t n, gauge_t *g)
{
    size_t m = 0;
    for (size_t i = 0; i < n && m < LIM_GAUGES_MAX; i++) {
        const char *colon = strchr(pr[i].scope, ':');
        if (!colon) continue;
        gauge_t *x = &g[m++];
        snprintf(x->scope, sizeof x->scope, "%.*s", (int)(colon - pr[i].scope), pr[i].scope);
        snprintf(x->name, sizeof x->name, "%s", colon + 1);
        x->metric = pr[i].rule.metric;
        x->period = pr[i].rule.period;
        x->max = pr[i].rule.max;
        x->used = pr[i].used;
    }
    return m;
}

static config_t *current_config(lim_shared_t *sh)
{
    pthread_mutex_lock(&sh->mu);
    config_t *c = sh->cfg ? config_ref(sh->cfg) : NULL;
    pthread_mutex_unlock(&sh->mu);
    return c;
}

/* ------------------------------------------------------------------ */
/* timers (main loop)                                                   */

static void refresh_work(uv_work_t *req)
{
    lim_shared_t *sh = req->data;
    char err[256];
    ovr_list_t ol = {0};
    sh->work_ovr_ok =
        lim_redis_load_overrides(&sh->ro, ovr_collect, &ol, err, sizeof err) == 0 && !ol.bad;
    if (sh->work_ovr_ok) {
        sh->work_ovr = ol.v;
        sh->work_novr = ol.n;
    } else {
        free(ol.v);
    }
    sh->work_ngauges = 0;
    config_t *cfg = current_config(sh);
    if (!cfg) return;
    probe_t *pr = calloc(LIM_GAUGES_MAX, sizeof *pr);
    if (pr) {
        size_t n = gauge_probes(sh, cfg, lim_now(), pr, LIM_GAUGES_MAX);
        if (probe_values(sh, pr, n, err, sizeof err) == 0)
            sh->work_ngauges = gauges_from_probes(pr, n, sh->work_gauges);
    }
    free(pr);
    config_unref(cfg);
}

static void refresh_done(uv_work_t *req, int status)
{
    lim_shared_t *sh = req->data;
    sh->work_busy = false;
    if (status < 0) return;
    if (sh->work_ovr_ok) overrides_replace(sh, sh->work_ovr, sh->work_novr);
    sh->work_ovr = NULL;
    pthread_mutex_lock(&sh->mu);
    memcpy(sh->gauges, sh->work_gauges, sh->work_ngauges * sizeof sh->gauges[0]);
    sh->ngauges = sh->work_ngauges;
    pthread_mutex_unlock(&sh->mu);
}

static void tick(uv_timer_t *tm)
{
    lim_shared_t *sh = tm->data;
    int64_t now = lim_now();
    if (sh->kind == CONFIG_LIM_STORE_REDIS) {
        if (!sh->work_busy) {
            sh->work_busy = true;
            sh->work.data = sh;
            if (uv_queue_work(sh->loop, &sh->work, refresh_work, refresh_done) < 0)
                sh->work_busy = false;
        }
        return;
    }
    lim_ledger_expire(sh->ledger, now);
    if (now - sh->last_prune >= 3600) {
        char err[256];
        sh->last_prune = now;
        if (sh->db &&
            lim_db_prune(sh->db, now, now - (int64_t)LIM_KEEP_DAYS * 86400, err, sizeof err) < 0)
            log_warn("limits: pruning the store: %s", err);
    }
    char err[256];
    if (sh->db && lim_db_last_error(sh->db, err, sizeof err))
        log_warn("limits: the store could not be written: %s (kept for the next flush)", err);
    config_t *cfg = current_config(sh);
    if (!cfg) return;
    probe_t *pr = calloc(LIM_GAUGES_MAX, sizeof *pr);
    if (pr) {
        size_t n = gauge_probes(sh, cfg, now, pr, LIM_GAUGES_MAX);
        probe_values(sh, pr, n, err, sizeof err);
        pthread_mutex_lock(&sh->mu);
        sh->ngauges = gauges_from_probes(pr, n, sh->gauges);
        pthread_mutex_unlock(&sh->mu);
    }
    free(pr);
    config_unref(cfg);
}

int lim_shared_start(lim_shared_t *sh, uv_loop_t *loop)
{
    if (!sh->enabled) return 0;
    sh->loop = loop;
    uv_timer_init(loop, &sh->timer);
    sh->timer.data = sh;
    sh->timer_on = true;
    uint64_t every = sh->kind == CONFIG_LIM_STORE_REDIS ? LIM_REFRESH_MS : LIM_TICK_MS;
    uv_timer_start(&sh->timer, tick, 10, every);
    return 0;
}

void lim_shared_stop(lim_shared_t *sh)
{
    if (!sh) return;
    while (sh->work_busy) /* a refresh on the thread pool: let it land */
        uv_run(sh->loop, UV_RUN_ONCE);
    if (sh->timer_on) {
        uv_timer_stop(&sh->timer);
        uv_close((uv_handle_t *)&sh->timer, NULL);
        sh->timer_on = false;
    }
    char err[256];
    if (sh->db && lim_db_flush(sh->db, err, sizeof err) != LIM_DB_OK)
        log_warn("limits: flushing the store: %s", err);
}

/* ------------------------------------------------------------------ */
/* metrics hook                                                         */

static size_t put_label(char *buf, size_t cap, size_t o, const char *s)
{
    for (; *s; s++) {
        const char *esc = *s == '"' ? "\\\"" : *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" : NULL;
        if (esc) {
            for (; *esc; esc++, o++)
                if (o < cap) buf[o] = *esc;
        } else {
            if (o < cap) buf[o] = *s;
            o++;
        }
    }
    return o;
}

size_t lim_render_gauges(char *buf, size_t cap)
{
    lim_shared_t *sh = g_shared;
    if (!sh || !sh->enabled) return 0;
    size_t o = 0;
    char tmp[256];
    pthread_mutex_lock(&sh->mu);
    for (int fam = 0; fam < 2; fam++) {
        const char *name = fam == 0 ? "cdeguard_budget_remaining" : "cdeguard_budget_limit";
        int k = snprintf(tmp, sizeof tmp,
                         "# HELP %s %s of the current window by team or project, metric and "
                         "period (cost in USD).\n# TYPE %s gauge\n",
                         name, fam == 0 ? "Budget left" : "Budget", name);
        for (int j = 0; j < k; j++, o++)
            if (o < cap) buf[o] = tmp[j];
        for (size_t i = 0; i < sh->ngauges; i++) {
            const gauge_t *g = &sh->gauges[i];
            k = snprintf(tmp, sizeof tmp, "%s{scope=\"%s\",name=\"", name, g->scope);
            for (int j = 0; j < k; j++, o++)
                if (o < cap) buf[o] = tmp[j];
            o = put_label(buf, cap, o, g->name);
            uint64_t v = fam == 0 ? (g->used >= g->max ? 0 : g->max - g->used) : g->max;
            if (g->metric == LIM_COST) {
                char usd[LIM_USD_BUFSZ];
                lim_format_usd(v, usd, sizeof usd);
                k = snprintf(tmp, sizeof tmp, "\",metric=\"%s\",period=\"%s\"} %s\n",
                             lim_metric_name(g->metric), lim_window_name(g->period), usd);
            } else {
                k = snprintf(tmp, sizeof tmp, "\",metric=\"%s\",period=\"%s\"} %" PRIu64 "\n",
                             lim_metric_name(g->metric), lim_window_name(g->period), v);
            }
            for (int j = 0; j < k; j++, o++)
                if (o < cap) buf[o] = tmp[j];
        }
    }
    pthread_mutex_unlock(&sh->mu);
    return o;
}

/* ------------------------------------------------------------------ */
/* growing text                                                         */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf_t;

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf_t *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->n;
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)k < room) {
            b->n += (size_t)k;
            return;
        }
        size_t nc = (b->cap ? b->cap * 2 : 4096) + (size_t)k;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
}

static void sb_json_str(sbuf_t *b, const char *s)
{
    char tmp[LIM_DIM_MAX * 6 + 8];
    size_t o = 0;
    audit_json_escape(tmp, sizeof tmp, &o, s);
    tmp[o < sizeof tmp ? o : sizeof tmp - 1] = '\0';
    sb_printf(b, "\"%s\"", tmp);
}

/* ------------------------------------------------------------------ */
/* reports                                                              */

static const char *const by_names[] = {"workspace", "team",  "project",
                                       "agent",     "model", "provider"};

/* "2026-12-01", "2026-12-01T10:00:00Z", a Unix time, or "7d" / "24h" / "30m"
 * ago.  0, or -1. */
int lim_parse_when(const char *s, size_t len, int64_t now, int64_t *out)
{
    char b[40];
    if (len == 0 || len >= sizeof b) return -1;
    memcpy(b, s, len);
    b[len] = '\0';
    char unit = b[len - 1];
    if (unit == 'd' || unit == 'h' || unit == 'm') {
        char *end;
        long long v = strtoll(b, &end, 10);
        if (end != b + len - 1 || v < 0 || v > 100000) return -1;
        *out = now - v * (unit == 'd' ? 86400 : unit == 'h' ? 3600 : 60);
        return 0;
    }
    struct tm tm = {0};
    const char *e = strptime(b, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!e || *e) {
        memset(&tm, 0, sizeof tm);
        e = strptime(b, "%Y-%m-%d", &tm);
    }
    if (e && !*e) {
        *out = (int64_t)timegm(&tm);
        return 0;
    }
    char *end;
    long long v = strtoll(b, &end, 10);
    if (*end || v < 0) return -1;
    *out = v;
    return 0;
}

int lim_by_parse(const char *s, lim_by_t *out)
{
    for (size_t i = 0; i < sizeof by_names / sizeof by_names[0]; i++)
        if (strcmp(s, by_names[i]) == 0) {
            *out = (lim_by_t)i;
            return 0;
        }
    return -1;
}

const char *lim_by_name(lim_by_t b)
{
    return (unsigned)b < sizeof by_names / sizeof by_names[0] ? by_names[b] : "?";
}

typedef struct group {
    char key[2 * LIM_DIM_MAX];
    uint64_t requests, input, output, cache_read, cache_write, cost;
} group_t;

typedef struct agg {
    lim_by_t by;
    group_t *g;
    size_t n, cap;
    size_t *slots; /* open addressing: index + 1 */
    size_t nslots;
    bool oom;
    group_t total;
} agg_t;

static void agg_rehash(agg_t *a)
{
    size_t ns = a->nslots ? a->nslots * 2 : 256;
    size_t *sl = calloc(ns, sizeof *sl);
    if (!sl) {
        a->oom = true;
        return;
    }
    for (size_t i = 0; i < a->n; i++) {
        size_t j = str_hash(a->g[i].key) & (ns - 1);
        while (sl[j])
            j = (j + 1) & (ns - 1);
        sl[j] = i + 1;
    }
    free(a->slots);
    a->slots = sl;
    a->nslots = ns;
}

static int agg_row(void *ctx, const lim_usage_row_t *r)
{
    agg_t *a = ctx;
    char key[sizeof a->g[0].key];
    switch (a->by) {
    case LIM_BY_WORKSPACE:
        snprintf(key, sizeof key, "%s", r->workspace);
        break;
    case LIM_BY_TEAM:
        snprintf(key, sizeof key, "%s", r->team);
        break;
    case LIM_BY_PROJECT:
        snprintf(key, sizeof key, "%s", r->project);
        break;
    case LIM_BY_AGENT:
        snprintf(key, sizeof key, "%s/%s", r->workspace, r->agent);
        break;
    case LIM_BY_MODEL:
        snprintf(key, sizeof key, "%s", r->model);
        break;
    default:
        snprintf(key, sizeof key, "%s", r->provider);
        break;
    }
    if ((a->n + 1) * 2 > a->nslots) agg_rehash(a);
    if (a->oom) return 1;
    size_t j = str_hash(key) & (a->nslots - 1);
    while (a->slots[j] && strcmp(a->g[a->slots[j] - 1].key, key) != 0)
        j = (j + 1) & (a->nslots - 1);
    group_t *g;
    if (a->slots[j]) {
        g = &a->g[a->slots[j] - 1];
    } else {
        if (a->n == a->cap) {
            size_t nc = a->cap ? a->cap * 2 : 64;
            group_t *ng = realloc(a->g, nc * sizeof *ng);
            if (!ng) {
                a->oom = true;
                return 1;
            }
            a->g = ng;
            a->cap = nc;
        }
        g = &a->g[a->n++];
        memset(g, 0, sizeof *g);
        snprintf(g->key, sizeof g->key, "%s", key);
        a->slots[j] = a->n;
    }
    group_t *ts[2] = {g, &a->total};
    for (int k = 0; k < 2; k++) {
        ts[k]->requests += r->requests;
        ts[k]->input += r->input;
        ts[k]->output += r->output;
        ts[k]->cache_read += r->cache_read;
        ts[k]->cache_write += r->cache_write;
        ts[k]->cost += r->cost_nano;
    }
    return 0;
}

static int group_cmp(const void *x, const void *y)
{
    const group_t *a = x, *b = y;
    if (a->cost != b->cost) return a->cost < b->cost ? 1 : -1;
    uint64_t ta = a->input + a->output, tb = b->input + b->output;
    if (ta != tb) return ta < tb ? 1 : -1;
    return strcmp(a->key, b->key);
}

static void json_group(sbuf_t *b, const char *dim, const group_t *g)
{
    char usd[LIM_USD_BUFSZ];
    lim_format_usd(g->cost, usd, sizeof usd);
    sb_printf(b, "{");
    if (dim) {
        sb_printf(b, "\"%s\":", dim);
        sb_json_str(b, g->key);
        sb_printf(b, ",");
    }
    sb_printf(b,
              "\"requests\":%" PRIu64 ",\"input_tokens\":%" PRIu64 ",\"output_tokens\":%" PRIu64
              ",\"cache_read_tokens\":%" PRIu64 ",\"cache_write_tokens\":%" PRIu64
              ",\"tokens\":%" PRIu64 ",\"cost_usd\":\"%s\"}",
              g->requests, g->input, g->output, g->cache_read, g->cache_write, g->input + g->output,
              usd);
}

int lim_report(lim_shared_t *sh, const config_t *cfg, lim_by_t by, int64_t since, int64_t until,
               bool json, char **out, char *err, size_t errlen)
{
    *out = NULL;
    const config_limits_t *l = &cfg->limits;
    if (!l->enabled) {
        snprintf(err, errlen,
                 "the config has no limits section: usage is recorded only when it "
                 "has one (it may hold no rules)");
        return -1;
    }
    since = since / 3600 * 3600;
    agg_t a = {.by = by};
    int rc;
    if (l->store == CONFIG_LIM_STORE_SQLITE) {
        lim_db_t *db = sh && sh->db ? sh->db : NULL;
        bool own = !db;
        if (own && lim_db_open_readonly(l->db_path, &db, err, errlen) != LIM_DB_OK) return -1;
        rc = lim_db_query_usage(db, since, until, agg_row, &a, err, errlen);
        if (own) lim_db_close(db);
    } else {
        lim_redis_opts_t o;
        redis_opts_from(cfg, &o);
        rc = lim_redis_query_usage(&o, since, until, agg_row, &a, err, errlen);
    }
    if (rc == 0 && a.oom) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    if (rc != 0) {
        free(a.g);
        free(a.slots);
        return -1;
    }
    if (a.n) qsort(a.g, a.n, sizeof a.g[0], group_cmp);
    sbuf_t b = {0};
    char s1[40], s2[40];
    audit_format_time((uint64_t)since * 1000, s1, sizeof s1);
    audit_format_time((uint64_t)until * 1000, s2, sizeof s2);
    const char *dim = lim_by_name(by);
    if (json) {
        sb_printf(&b, "{\"by\":\"%s\",\"since\":\"%s\",\"until\":\"%s\",\"rows\":[", dim, s1, s2);
        for (size_t i = 0; i < a.n; i++) {
            if (i) sb_printf(&b, ",");
            json_group(&b, dim, &a.g[i]);
        }
        sb_printf(&b, "],\"total\":");
        json_group(&b, NULL, &a.total);
        sb_printf(&b, "}\n");
    } else {
        sb_printf(&b, "usage by %s from %s to %s\n", dim, s1, s2);
        sb_printf(&b, "%-32s %10s %14s %14s %14s %14s\n", dim, "requests", "input", "output",
                  "cached", "cost_usd");
        for (size_t i = 0; i <= a.n; i++) {
            const group_t *g = i < a.n ? &a.g[i] : &a.total;
            char usd[LIM_USD_BUFSZ];
            lim_format_usd(g->cost, usd, sizeof usd);
            sb_printf(&b, "%-32s %10" PRIu64 " %14" PRIu64 " %14" PRIu64 " %14" PRIu64 " %14s\n",
                      i < a.n ? (g->key[0] ? g->key : "-") : "TOTAL", g->requests, g->input,
                      g->output, g->cache_read + g->cache_write, usd);
        }
    }
    free(a.g);
    free(a.slots);
    if (b.oom) {
        free(b.p);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *out = b.p;
    return 0;
}

/* ------------------------------------------------------------------ */
/* budgets at run time                                                  */

static int scope_kind_parse(const char *s, size_t len, config_lim_scope_t *out)
{
    for (int k = 0; k < CONFIG_LIM_NSCOPES; k++) {
        const char *n = config_lim_scope_name((config_lim_scope_t)k);
        if (strlen(n) == len && memcmp(n, s, len) == 0) {
            *out = (config_lim_scope_t)k;
            return 0;
        }
    }
    return -1;
}

/* One "key": value of a limits object -> rule.  0, or -1 with err. */
static int rule_from_json(config_lim_scope_t kind, const char *body, const char *key, size_t klen,
                          const jval_t *v, uint32_t soft, lim_rule_t *out, char *err, size_t errlen)
{
    const struct rule_key *rk = NULL;
    for (size_t i = 0; i < NRULE_KEYS; i++)
        if (strlen(rule_keys[i].key) == klen && memcmp(rule_keys[i].key, key, klen) == 0)
            rk = &rule_keys[i];
    if (!rk || !(rk->scopes & (1u << kind))) {
        snprintf(err, errlen, "limits.%.*s: not a limit of a %s scope", (int)klen, key,
                 config_lim_scope_name(kind));
        return -1;
    }
    char text[64];
    size_t tl = 0;
    if (jval_type(v) == JVAL_STRING) {
        const char *s = jval_str(v, &tl);
        if (tl >= sizeof text)
            tl = 0;
        else
            memcpy(text, s, tl);
    } else if (jval_type(v) == JVAL_NUMBER) { /* its text as written: exact decimals */
        const char *s = body + jval_offset(v);
        while (tl < sizeof text - 1 && strchr("0123456789+-.eE", s[tl]) && s[tl])
            tl++;
        memcpy(text, s, tl);
    }
    text[tl] = '\0';
    uint64_t max = 0;
    int bad = tl == 0;
    if (!bad && rk->metric == LIM_COST) {
        char e[128];
        bad = lim_price_parse_usd_per_mtok(text, &max, e, sizeof e) != LIM_PRICE_OK ||
              max > UINT64_MAX / 1000;
        max *= 1000; /* micro-USD -> nano-USD */
    } else if (!bad && rk->metric == LIM_BYTES) {
        bad = config_parse_size(text, &max) < 0;
    } else if (!bad) {
        char *end = NULL;
        errno = 0;
        unsigned long long x = strtoull(text, &end, 10);
        bad = errno || *end || text[0] == '-' || text[0] == '+';
        max = x;
    }
    if (bad || max == 0) {
        snprintf(err, errlen, "limits.%s: want a positive %s, got '%s'", rk->key,
                 rk->metric == LIM_COST    ? "amount in USD (e.g. \"25.50\")"
                 : rk->metric == LIM_BYTES ? "size (e.g. 100MB)"
                                           : "integer",
                 text);
        return -1;
    }
    *out = (lim_rule_t){.metric = rk->metric,
                        .period = rk->period,
                        .max = max,
                        .soft_pct = rk->period == LIM_WIN_MINUTE ? 0 : soft};
    return 0;
}

static void json_rules(sbuf_t *b, const lim_rule_t *r, size_t n)
{
    sb_printf(b, "{");
    for (size_t i = 0; i < n; i++) {
        char v[40];
        format_amount(r[i].metric, r[i].max, v, sizeof v);
        sb_printf(b, "%s\"%s\":%s%s%s", i ? "," : "", rule_key_name(r[i].metric, r[i].period),
                  r[i].metric == LIM_COST ? "\"" : "", r[i].metric == LIM_COST ? v + 1 : v,
                  r[i].metric == LIM_COST ? "\"" : "");
    }
    sb_printf(b, "}");
}

int lim_budget_set(lim_shared_t *sh, const config_t *cfg, const char *body, size_t len, char **out,
                   char *err, size_t errlen)
{
    *out = NULL;
    if (!sh || !sh->enabled) {
        snprintf(err, errlen, "limits are off: the config has no limits section");
        return 404;
    }
    jval_doc_t *doc = NULL;
    char e[200];
    if (jval_parse(body, len, 4096, &doc, e, sizeof e) < 0) {
        snprintf(err, errlen, "the body is not JSON: %s", e);
        return 400;
    }
    int status = 400;
    const jval_t *root = jval_root(doc);
    const jval_t *js = jval_get(root, "scope"), *jn = jval_get(root, "name");
    const jval_t *jl = jval_get(root, "limits");
    size_t sl = 0, nl = 0;
    const char *ss = js ? jval_str(js, &sl) : NULL, *ns = jn ? jval_str(jn, &nl) : NULL;
    config_lim_scope_t kind;
    if (jval_type(root) != JVAL_OBJECT || !ss || !ns || !jl) {
        snprintf(err, errlen,
                 "want {\"scope\": \"workspace|agent|project|team|egress\", \"name\": "
                 "\"...\", \"limits\": {\"tokens_per_day\": 100000, ...} or null}");
        goto out;
    }
    if (scope_kind_parse(ss, sl, &kind) < 0) {
        snprintf(err, errlen, "scope '%.*s': want workspace, agent, project, team or egress",
                 (int)(sl > 40 ? 40 : sl), ss);
        goto out;
    }
    char name[LIM_SCOPE_KEY_MAX];
    if (nl == 0 || nl >= 130 || memchr(ns, '\0', nl)) {
        snprintf(err, errlen, "name: want 1 to 129 bytes");
        goto out;
    }
    snprintf(name, sizeof name, "%.*s", (int)nl, ns);
    if (!instance_exists(cfg, kind, name)) {
        snprintf(err, errlen, "%s '%s' is not in the config%s", config_lim_scope_name(kind), name,
                 kind == CONFIG_LIM_AGENT ? " (an agent is \"<workspace>/<agent id>\")" : "");
        status = 404;
        goto out;
    }
    call_scope_t s;
    scope_set(&s, kind, name);
    lim_rule_t rules[CONFIG_LIM_MAX_RULES];
    size_t n = 0;
    bool remove = jval_is_null(jl);
    if (!remove) {
        if (jval_type(jl) != JVAL_OBJECT) {
            snprintf(err, errlen, "limits: want an object of limits, or null to remove");
            goto out;
        }
        uint32_t soft = cfg->limits.soft_pct;
        const jval_t *jsoft = jval_get(jl, "soft_threshold");
        if (jsoft) {
            int64_t x;
            if (jval_int64(jsoft, &x) < 0 || x < 0 || x > 99) {
                snprintf(err, errlen, "limits.soft_threshold: want a percentage 0..99");
                goto out;
            }
            soft = (uint32_t)x;
        }
        const char *key;
        size_t klen;
        const jval_t *v;
        for (size_t i = 0; (v = jval_member(jl, i, &key, &klen)) != NULL; i++) {
            if (klen == 14 && memcmp(key, "soft_threshold", 14) == 0) continue;
            if (n == CONFIG_LIM_MAX_RULES) {
                snprintf(err, errlen, "limits: at most %d", CONFIG_LIM_MAX_RULES);
                goto out;
            }
            lim_rule_t r;
            if (rule_from_json(kind, body, key, klen, v, soft, &r, err, errlen) < 0) goto out;
            for (size_t j = 0; j < n; j++)
                if (rules[j].metric == r.metric && rules[j].period == r.period) {
                    snprintf(err, errlen, "limits.%.*s: given twice", (int)klen, key);
                    goto out;
                }
            rules[n++] = r;
        }
        if (n == 0) {
            snprintf(err, errlen,
                     "limits: empty; give at least one limit, or null to remove the "
                     "override");
            goto out;
        }
    }
    char text[512];
    override_text(rules, n, text, sizeof text);
    if (sh->kind == CONFIG_LIM_STORE_SQLITE) {
        lim_db_put_override(sh->db, s.key, remove ? NULL : text);
        if (lim_db_flush(sh->db, e, sizeof e) != LIM_DB_OK) {
            snprintf(err, errlen, "the store could not be written: %s", e);
            status = 503;
            goto out;
        }
    } else if (lim_redis_put_override(&sh->ro, s.key, remove ? NULL : text, e, sizeof e) != 0) {
        snprintf(err, errlen, "redis: %s", e);
        status = 503;
        goto out;
    }
    if (override_put(sh, s.key, remove ? NULL : rules, n) < 0) {
        snprintf(err, errlen, "too many overrides (at most %d)", LIM_OVERRIDES_MAX);
        status = 503;
        goto out;
    }
    sbuf_t b = {0};
    sb_printf(&b, "{\"scope\":\"%s\",\"name\":", config_lim_scope_name(kind));
    sb_json_str(&b, name);
    if (remove) {
        sb_printf(&b, ",\"override\":null}\n");
    } else {
        sb_printf(&b, ",\"override\":");
        json_rules(&b, rules, n);
        sb_printf(&b, "}\n");
    }
    if (b.oom) {
        free(b.p);
        snprintf(err, errlen, "out of memory");
        status = 503;
        goto out;
    }
    log_info("limits: budget override %s for %s", remove ? "removed" : "set", s.key);
    *out = b.p;
    status = 0;
out:
    jval_free(doc);
    return status;
}

int lim_budget_status(lim_shared_t *sh, const config_t *cfg, char **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!sh || !sh->enabled) {
        snprintf(err, errlen, "limits are off: the config has no limits section");
        return -1;
    }
    int64_t now = lim_now();
    size_t cap = 64, n = 0;
    probe_t *pr = calloc(cap, sizeof *pr);
    bool *ovr = calloc(cap, sizeof *ovr);
    if (!pr || !ovr) goto oom;
    /* every scope instance of the config with rules (agents: those named) */
    for (int k = 0; k < CONFIG_LIM_NSCOPES; k++) {
        for (size_t i = 0; i < cfg->nworkspaces + cfg->limits.nentries[k]; i++) {
            const char *name = NULL;
            if (i >= cfg->nworkspaces) {
                name = cfg->limits.entries[k][i - cfg->nworkspaces].name;
                if (strcmp(name, "*") == 0) continue;
            } else {
                const config_workspace_t *ws = &cfg->workspaces[i];
                name = k == CONFIG_LIM_TEAM      ? (ws->team ? ws->team : ws->group)
                       : k == CONFIG_LIM_PROJECT ? ws->project
                       : k == CONFIG_LIM_AGENT   ? NULL
                                                 : ws->id;
            }
            if (!name) continue;
            call_scope_t s;
            if (!scope_set(&s, (config_lim_scope_t)k, name)) continue;
            bool seen = false;
            for (size_t j = 0; j < n && !seen; j++)
                seen = strcmp(pr[j].scope, s.key) == 0;
            if (seen) continue;
            scope_rules(sh, cfg, &s);
            pthread_mutex_lock(&sh->mu);
            bool is_ovr = override_find(sh, s.key) != NULL;
            pthread_mutex_unlock(&sh->mu);
            for (size_t r = 0; r < s.nrules; r++) {
                if (n == cap) {
                    probe_t *np = realloc(pr, 2 * cap * sizeof *pr);
                    if (np) pr = np;
                    bool *no = np ? realloc(ovr, 2 * cap * sizeof *ovr) : NULL;
                    if (!no) goto oom;
                    ovr = no;
                    cap *= 2;
                }
                memset(&pr[n], 0, sizeof pr[n]);
                snprintf(pr[n].scope, sizeof pr[n].scope, "%s", s.key);
                pr[n].rule = s.rules[r];
                probe_window(cfg, &pr[n], now);
                ovr[n] = is_ovr;
                n++;
            }
        }
    }
    if (probe_values(sh, pr, n, err, errlen) < 0) {
        free(pr);
        free(ovr);
        return -1;
    }
    sbuf_t b = {0};
    sb_printf(&b, "{\"store\":\"%s\",\"time_zone\":",
              sh->kind == CONFIG_LIM_STORE_SQLITE ? "sqlite" : "redis");
    sb_json_str(&b, cfg->limits.time_zone ? cfg->limits.time_zone : "UTC");
    sb_printf(&b, ",\"limits\":[");
    for (size_t i = 0; i < n; i++) {
        const probe_t *p = &pr[i];
        const char *colon = strchr(p->scope, ':');
        char smax[40], sused[40], sleft[40], t1[40], t2[40];
        format_amount(p->rule.metric, p->rule.max, smax, sizeof smax);
        format_amount(p->rule.metric, p->used, sused, sizeof sused);
        format_amount(p->rule.metric, p->used >= p->rule.max ? 0 : p->rule.max - p->used, sleft,
                      sizeof sleft);
        audit_format_time((uint64_t)p->start * 1000, t1, sizeof t1);
        audit_format_time((uint64_t)p->end * 1000, t2, sizeof t2);
        bool cost = p->rule.metric == LIM_COST;
        const char *q = cost ? "\"" : "";
        sb_printf(&b, "%s{\"scope\":\"%.*s\",\"name\":", i ? "," : "",
                  (int)(colon ? colon - p->scope : 0), p->scope);
        sb_json_str(&b, colon ? colon + 1 : p->scope);
        sb_printf(&b,
                  ",\"limit\":\"%s\",\"max\":%s%s%s,\"used\":%s%s%s,\"remaining\":%s%s%s,"
                  "\"window_start\":\"%s\",\"window_end\":\"%s\",\"override\":%s}",
                  rule_key_name(p->rule.metric, p->rule.period), q, cost ? smax + 1 : smax, q, q,
                  cost ? sused + 1 : sused, q, q, cost ? sleft + 1 : sleft, q, t1, t2,
                  ovr[i] ? "true" : "false");
    }
    sb_printf(&b, "]}\n");
    free(pr);
    free(ovr);
    if (b.oom) {
        free(b.p);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *out = b.p;
    return 0;
oom:
    free(pr);
    free(ovr);
    snprintf(err, errlen, "out of memory");
    return -1;
}
