/*
 * ledger — rate limits and budgets on one machine: check, reserve, settle.
 *
 * A request belongs to several scopes at once (workspace, agent, project,
 * team); each scope has rules: a metric (requests, tokens, cost in
 * nano-USD) over a calendar window (minute, day, month) with a hard maximum
 * and an optional soft threshold in percent.  Before a request is
 * forwarded, lim_ledger_reserve() checks every rule of every scope and, only
 * if all of them have room, reserves the request's estimate in each (all or
 * nothing), so concurrent and streaming requests cannot overspend together.
 * After the response, lim_ledger_settle() releases the reservation and adds
 * what was actually used, to the windows the request started in.
 *
 * Refusal rule, per (scope, rule, window): with used + reserved = U and the
 * request's estimate A, the request is refused when U >= max (exhausted) or
 * U + A > max (it would overrun).  A refusal names the first such rule (in
 * the order given) and a retry-after: the seconds until that window ends.
 * Soft thresholds: when settling pushes `used` across soft_pct of max for
 * the first time in a window, the callback is told once (audit + metric).
 *
 * Counters are keyed by (scope key, metric, period, window start), so two
 * rules of a scope must not share a metric and a period; windows are
 * computed by the caller (limits/window) and passed in, so the ledger has no
 * clock or time zone of its own.  lim_ledger_expire() drops counters of
 * windows that have ended and that no reservation points to.
 *
 * Threads: one mutex per ledger; every call takes it once.  Memory: the
 * ledger owns its counters and reservations; scope keys are copied.  A
 * reservation is freed by settle; the counters it points to stay alive until
 * then, whatever it reserved on them (an egress request reserves 0 bytes).
 */
#ifndef CDEGUARD_LIMITS_LEDGER_H
#define CDEGUARD_LIMITS_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limits/window.h"

#define LIM_WINDOWS 3 /* minute, day, month (lim_window_t): indexes of lim_spans_t */
#define LIM_METRICS 4
#define LIM_SCOPE_KEY_MAX                                                                          \
    208 /* "agent:" + workspace id (64) + "/" + agent id (128), with its NUL */

/* bytes: the egress proxy's bytes per minute */
typedef enum { LIM_REQUESTS = 0, LIM_TOKENS = 1, LIM_COST = 2, LIM_BYTES = 3 } lim_metric_t;

typedef struct lim_rule {
    lim_metric_t metric;
    lim_window_t period;
    uint64_t max;      /* hard maximum in the window (> 0) */
    uint32_t soft_pct; /* 1..99, or 0 for none */
} lim_rule_t;

typedef struct lim_scope {
    const char *key; /* e.g. "workspace:alice-ws", "team:platform"; distinct per call */
    const lim_rule_t *rules;
    size_t nrules;
} lim_scope_t;

typedef struct lim_amount {
    uint64_t v[LIM_METRICS]; /* requests, tokens, cost (nano-USD), bytes */
} lim_amount_t;

/* The windows that contain `now`, one per period: [start, end) in UTC s. */
typedef struct lim_spans {
    int64_t start[LIM_WINDOWS], end[LIM_WINDOWS];
} lim_spans_t;

typedef struct lim_refusal {
    char scope[LIM_SCOPE_KEY_MAX];
    lim_metric_t metric;
    lim_window_t period;
    uint64_t max, used, reserved, wanted;
    int64_t retry_after; /* seconds until the window ends (>= 1) */
} lim_refusal_t;

typedef struct lim_ledger lim_ledger_t;
typedef struct lim_resv lim_resv_t;

/* Called (under the ledger's lock: do not call back into it) when a soft
 * threshold is crossed. */
typedef void (*lim_soft_fn)(void *ctx, const char *scope, const lim_rule_t *rule, uint64_t used,
                            int64_t window_start);

/* Called (under the ledger's lock) for every counter a settle changed, with
 * its new `used`: how the embedded store persists counters. */
typedef void (*lim_put_fn)(void *ctx, const char *scope, lim_metric_t metric, lim_window_t period,
                           int64_t start, int64_t end, uint64_t used);

lim_ledger_t *lim_ledger_new(void);
void lim_ledger_free(lim_ledger_t *l);

#define LIM_OK 0
#define LIM_REFUSED 1
#define LIM_ENOMEM (-1)
#define LIM_EINVAL (-2)

/* LIM_OK with *out (settle or release it), LIM_REFUSED with *why filled,
 * or an error (nothing reserved). */
int lim_ledger_reserve(lim_ledger_t *l, const lim_scope_t *scopes, size_t nscopes,
                       const lim_amount_t *estimate, const lim_spans_t *spans, int64_t now,
                       lim_resv_t **out, lim_refusal_t *why);
/* Release the reservation and add `actual` (NULL: nothing was used); soft
 * and put may be NULL. */
void lim_ledger_settle(lim_ledger_t *l, lim_resv_t *r, const lim_amount_t *actual, lim_soft_fn soft,
                       lim_put_fn put, void *ctx);
/* A counter as persisted (a restart): `used` becomes the larger of its
 * value and the loaded one.  The soft threshold of a loaded counter that is
 * already past it is not told again (soft_pct of the rule that will use it:
 * 0 when unknown).  LIM_OK or LIM_ENOMEM / LIM_EINVAL. */
int lim_ledger_load(lim_ledger_t *l, const char *scope, lim_metric_t metric, lim_window_t period,
                    int64_t start, int64_t end, uint64_t used);
/* Drop counters of windows ended at `now` with nothing reserved; returns
 * how many were dropped. */
size_t lim_ledger_expire(lim_ledger_t *l, int64_t now);

/* What a scope has used and reserved of a metric in the window of `period`
 * starting at window_start (0 and 0 when there is no counter).  For reports
 * and tests. */
void lim_ledger_peek(lim_ledger_t *l, const char *scope, lim_metric_t metric, lim_window_t period,
                     int64_t window_start, uint64_t *used, uint64_t *reserved);
size_t lim_ledger_counters(lim_ledger_t *l);

const char *lim_metric_name(lim_metric_t m); /* "requests", "tokens", "cost", "bytes" */

#endif
