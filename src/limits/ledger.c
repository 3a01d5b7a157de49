/*
 * ledger — check, reserve, settle (see ledger.h).
 *
 * Counters live in a chained hash table keyed by (scope, metric, period,
 * window start); each counter is its own allocation so that reservations
 * can point at it while the table grows.  A reservation lists, for every
 * rule it passed, the counter and the amount it holds there.
 */
#include "limits/ledger.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct counter {
    struct counter *next; /* hash chain */
    uint64_t hash;
    char *scope;
    lim_metric_t metric;
    lim_window_t period;
    int64_t start, end;
    uint64_t used, reserved;
    uint32_t holders; /* live reservation items pointing here (amounts may be 0) */
    bool soft_fired;
    uint64_t loaded_past_soft; /* used as loaded at start: a threshold below it was told before */
} counter_t;

typedef struct resv_item {
    counter_t *c;
    lim_rule_t rule_copy; /* the rule as it was at reserve time */
    uint64_t amount;
} resv_item_t;

struct lim_resv {
    size_t n;
    resv_item_t items[];
};

struct lim_ledger {
    pthread_mutex_t mu;
    counter_t **buckets;
    size_t nbuckets, ncounters;
};

static const char *const metric_names[LIM_METRICS] = {"requests", "tokens", "cost", "bytes"};

const char *lim_metric_name(lim_metric_t m)
{
    return (unsigned)m < LIM_METRICS ? metric_names[m] : "?";
}

static uint64_t key_hash(const char *scope, lim_metric_t m, lim_window_t p, int64_t start)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *s = (const unsigned char *)scope; *s; s++)
        h = (h ^ *s) * 1099511628211ULL;
    uint64_t extra[3] = {(uint64_t)m, (uint64_t)p, (uint64_t)start};
    for (size_t i = 0; i < 3; i++)
        for (int b = 0; b < 64; b += 8)
            h = (h ^ ((extra[i] >> b) & 0xff)) * 1099511628211ULL;
    return h;
}

lim_ledger_t *lim_ledger_new(void)
{
    lim_ledger_t *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->nbuckets = 64;
    l->buckets = calloc(l->nbuckets, sizeof(counter_t *));
    if (!l->buckets) {
        free(l);
        return NULL;
    }
    pthread_mutex_init(&l->mu, NULL);
    return l;
}

void lim_ledger_free(lim_ledger_t *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->nbuckets; i++) {
        counter_t *c = l->buckets[i];
        while (c) {
            counter_t *n = c->next;
            free(c->scope);
            free(c);
            c = n;
        }
    }
    free(l->buckets);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static counter_t *find(lim_ledger_t *l, const char *scope, lim_metric_t m, lim_window_t p,
                       int64_t start, uint64_t h)
{
    for (counter_t *c = l->buckets[h % l->nbuckets]; c; c = c->next)
        if (c->hash == h && c->metric == m && c->period == p && c->start == start &&
            strcmp(c->scope, scope) == 0)
            return c;
    return NULL;
}

static void grow(lim_ledger_t *l)
{
    size_t nb = l->nbuckets * 2;
    counter_t **b = calloc(nb, sizeof(counter_t *));
    if (!b) return; /* keep the longer chains */
    for (size_t i = 0; i < l->nbuckets; i++) {
        counter_t *c = l->buckets[i];
        while (c) {
            counter_t *n = c->next;
            c->next = b[c->hash % nb];
            b[c->hash % nb] = c;
            c = n;
        }
    }
    free(l->buckets);
    l->buckets = b;
    l->nbuckets = nb;
}

static counter_t *get(lim_ledger_t *l, const char *scope, lim_metric_t m, lim_window_t p,
                      int64_t start, int64_t end)
{
    uint64_t h = key_hash(scope, m, p, start);
    counter_t *c = find(l, scope, m, p, start, h);
    if (c) return c;
    c = calloc(1, sizeof *c);
    if (!c || !(c->scope = strdup(scope))) {
        free(c);
        return NULL;
    }
    c->hash = h;
    c->metric = m;
    c->period = p;
    c->start = start;
    c->end = end;
    if (l->ncounters + 1 > l->nbuckets * 3 / 4) grow(l);
    c->next = l->buckets[h % l->nbuckets];
    l->buckets[h % l->nbuckets] = c;
    l->ncounters++;
    return c;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static bool rule_ok(const lim_rule_t *r)
{
    return (unsigned)r->metric < LIM_METRICS && (unsigned)r->period < LIM_WINDOWS && r->max > 0 &&
           r->soft_pct < 100;
}

int lim_ledger_reserve(lim_ledger_t *l, const lim_scope_t *scopes, size_t nscopes,
                       const lim_amount_t *estimate, const lim_spans_t *spans, int64_t now,
                       lim_resv_t **out, lim_refusal_t *why)
{
    *out = NULL;
    size_t total = 0;
    for (size_t i = 0; i < nscopes; i++) {
        if (!scopes[i].key || strlen(scopes[i].key) >= LIM_SCOPE_KEY_MAX) return LIM_EINVAL;
        for (size_t k = 0; k < scopes[i].nrules; k++)
            if (!rule_ok(&scopes[i].rules[k])) return LIM_EINVAL;
        total += scopes[i].nrules;
    }
    lim_resv_t *r = malloc(sizeof *r + total * sizeof r->items[0]);
    if (!r) return LIM_ENOMEM;
    r->n = 0;

    pthread_mutex_lock(&l->mu);
    /* pass 1: find (or make) every counter and check it */
    for (size_t i = 0; i < nscopes; i++) {
        for (size_t k = 0; k < scopes[i].nrules; k++) {
            const lim_rule_t *rule = &scopes[i].rules[k];
            int w = (int)rule->period;
            counter_t *c =
                get(l, scopes[i].key, rule->metric, rule->period, spans->start[w], spans->end[w]);
            if (!c) {
                pthread_mutex_unlock(&l->mu);
                free(r);
                return LIM_ENOMEM;
            }
            uint64_t want = estimate->v[rule->metric];
            uint64_t u = sat_add(c->used, c->reserved);
            if (u >= rule->max || sat_add(u, want) > rule->max) {
                if (why) {
                    snprintf(why->scope, sizeof why->scope, "%s", scopes[i].key);
                    why->metric = rule->metric;
                    why->period = rule->period;
                    why->max = rule->max;
                    why->used = c->used;
                    why->reserved = c->reserved;
                    why->wanted = want;
                    int64_t ra = c->end - now;
                    why->retry_after = ra < 1 ? 1 : ra;
                }
                pthread_mutex_unlock(&l->mu);
                free(r);
                return LIM_REFUSED;
            }
            r->items[r->n++] = (resv_item_t){.c = c, .rule_copy = *rule, .amount = want};
        }
    }
    /* pass 2: every rule had room: hold the estimate everywhere */
    for (size_t i = 0; i < r->n; i++) {
        r->items[i].c->reserved = sat_add(r->items[i].c->reserved, r->items[i].amount);
        r->items[i].c->holders++;
    }
    pthread_mutex_unlock(&l->mu);
    *out = r;
    return LIM_OK;
}

void lim_ledger_settle(lim_ledger_t *l, lim_resv_t *r, const lim_amount_t *actual, lim_soft_fn soft,
                       lim_put_fn put, void *ctx)
{
    if (!r) return;
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < r->n; i++) {
        resv_item_t *it = &r->items[i];
        counter_t *c = it->c;
        c->reserved = c->reserved >= it->amount ? c->reserved - it->amount : 0;
        c->holders--;
        if (!actual) continue;
        uint64_t before = c->used;
        c->used = sat_add(c->used, actual->v[it->rule_copy.metric]);
        if (put && c->used != before)
            put(ctx, c->scope, c->metric, c->period, c->start, c->end, c->used);
        uint32_t pct = it->rule_copy.soft_pct;
        if (pct && !c->soft_fired && c->loaded_past_soft <= before) {
            /* threshold = ceil(max * pct / 100), without overflow */
            uint64_t max = it->rule_copy.max;
            uint64_t th = max / 100 * pct + (max % 100 * pct + 99) / 100;
            if (before < th && c->used >= th) {
                c->soft_fired = true;
                if (soft) soft(ctx, c->scope, &it->rule_copy, c->used, c->start);
            }
        }
    }
    pthread_mutex_unlock(&l->mu);
    free(r);
}

int lim_ledger_load(lim_ledger_t *l, const char *scope, lim_metric_t metric, lim_window_t period,
                    int64_t start, int64_t end, uint64_t used)
{
    if (!scope || strlen(scope) >= LIM_SCOPE_KEY_MAX || (unsigned)metric >= LIM_METRICS ||
        (unsigned)period >= LIM_WINDOWS || end <= start)
        return LIM_EINVAL;
    pthread_mutex_lock(&l->mu);
    counter_t *c = get(l, scope, metric, period, start, end);
    if (c && used > c->used) c->used = used;
    if (c) c->loaded_past_soft = c->used;
    pthread_mutex_unlock(&l->mu);
    return c ? LIM_OK : LIM_ENOMEM;
}

size_t lim_ledger_expire(lim_ledger_t *l, int64_t now)
{
    size_t dropped = 0;
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->nbuckets; i++) {
        counter_t **pp = &l->buckets[i];
        while (*pp) {
            counter_t *c = *pp;
            if (c->end <= now && c->holders == 0) {
                *pp = c->next;
                free(c->scope);
                free(c);
                l->ncounters--;
                dropped++;
            } else {
                pp = &c->next;
            }
        }
    }
    pthread_mutex_unlock(&l->mu);
    return dropped;
}

void lim_ledger_peek(lim_ledger_t *l, const char *scope, lim_metric_t metric, lim_window_t period,
                     int64_t window_start, uint64_t *used, uint64_t *reserved)
{
    pthread_mutex_lock(&l->mu);
    counter_t *c =
        find(l, scope, metric, period, window_start, key_hash(scope, metric, period, window_start));
    *used = c ? c->used : 0;
    *reserved = c ? c->reserved : 0;
    pthread_mutex_unlock(&l->mu);
}

size_t lim_ledger_counters(lim_ledger_t *l)
{
    pthread_mutex_lock(&l->mu);
    size_t n = l->ncounters;
    pthread_mutex_unlock(&l->mu);
    return n;
}
