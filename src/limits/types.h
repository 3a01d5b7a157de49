/*
 * limits/types — the plain types shared by the limits modules and their
 * stores (ledger, usage_db, redis, limiter): a usage row for reports and a
 * counter as a store sees it.  Types only, no functions (HAProxy's -t.h).
 */
#ifndef CDEGUARD_LIMITS_TYPES_H
#define CDEGUARD_LIMITS_TYPES_H

#include <stdint.h>

#define LIM_DIM_MAX 160         /* one dimension of a usage row, with its NUL */
#define LIM_COUNTER_KEY_MAX 256 /* a counter's identity, with its NUL */

/* One aggregate of usage: what a (workspace, team, project, agent,
 * provider, model) did in one UTC hour.  `input` includes cache_read and
 * cache_write (the normalised usage of llm/usage.h); cost in nano-USD.
 * Strings are NUL-terminated, "" when absent (agent: no x-agent-id). */
typedef struct lim_usage_row {
    int64_t hour; /* UTC seconds, a multiple of 3600 */
    char workspace[LIM_DIM_MAX], team[LIM_DIM_MAX], project[LIM_DIM_MAX];
    char agent[LIM_DIM_MAX], provider[LIM_DIM_MAX], model[LIM_DIM_MAX];
    uint64_t requests, input, output, cache_read, cache_write, cost_nano;
} lim_usage_row_t;

/* One counter a request touches, as a shared store sees it: the identity
 * (built by the limiter: "<scope>|<metric>|<period>|<window start>", e.g.
 * "team:platform|tokens|day|1764889200"; no prefix: the store adds its own),
 * the hard maximum (0: count only, never refuse), the amount to reserve,
 * when the counter may be dropped (UTC seconds: window end plus a grace
 * period), and the soft threshold in percent (0: none). */
typedef struct lim_counter {
    char key[LIM_COUNTER_KEY_MAX];
    uint64_t max;
    uint64_t amount;
    int64_t expire_at;
    uint32_t soft_pct;
} lim_counter_t;

#endif
