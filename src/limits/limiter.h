/*
 * limiter — rate limits and budgets for the LLM gateway and the egress
 * proxy: which scopes and rules a call belongs to, what it may cost, the
 * check-and-reserve before it goes out and the settlement after it.
 *
 * A call belongs to up to four scopes: its workspace, its agent
 * ("<workspace>/<x-agent-id>", when the header is sent), the workspace's
 * project (when it has one) and team; an egress request to its workspace's
 * egress scope.  Each scope instance has the rules of its own config entry,
 * else of the scope's "*" entry, unless a budget override (POST
 * /v1/budgets) replaces them at run time.  The estimate of an LLM call:
 * 1 request, prompt estimate + max output tokens, and their cost at the
 * model's price; of an egress request: 1 request and 0 bytes (bytes are
 * settled as they are counted).  A call must fit every rule of every scope
 * (limits/ledger.h states the refusal rule); what it reserves is released
 * when it is settled with what was used.
 *
 * Stores.  Embedded (sqlite): one ledger for the process (all workers),
 * persisted by limits/usage_db (counters, hourly usage rows, overrides),
 * batched by its writer thread; a reserve is decided at once.  Redis: every
 * worker has its own connection on its own loop (limits/redis); a reserve
 * is one EVALSHA and its answer comes back on the worker's loop; when the
 * store cannot answer, fail_closed refuses with 503 and fail_open lets the
 * call through (recorded, not counted).
 *
 * Threads: lim_shared_t is made and freed on the main thread and used by
 * every worker; a lim_worker_t belongs to one worker loop, and the tickets
 * and pending checks it makes are settled / cancelled on that loop.
 * Memory: a ticket owns copies of what it needs (scope keys, prices, row
 * dimensions): the config it was made under may be gone when it settles.
 */
#ifndef CDEGUARD_LIMITS_LIMITER_H
#define CDEGUARD_LIMITS_LIMITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config/config.h"
#include "limits/types.h"

typedef struct lim_shared lim_shared_t;
typedef struct lim_worker lim_worker_t;
typedef struct lim_ticket lim_ticket_t;
typedef struct lim_pending lim_pending_t;

/* ---- process and worker state ---- */

/* Open the store the config names (nothing when limits are off: returns a
 * state that lets every call through).  Embedded: opens the database and
 * loads the counters of windows still open and the overrides.  Redis: keeps
 * the settings and loads the overrides (an unreachable server is not an
 * error here: it is logged and calls get the failure behaviour).  NULL with
 * err on a store that cannot be opened. */
lim_shared_t *lim_shared_new(const config_t *cfg, char *err, size_t errlen);
/* Timers on the main loop: expiry of ended windows, pruning, and in Redis
 * mode the refresh of overrides and budget gauges (on the thread pool). */
int lim_shared_start(lim_shared_t *sh, uv_loop_t *main_loop);
/* Stop the timers (handles closed on the loop); flush the embedded store. */
void lim_shared_stop(lim_shared_t *sh);
void lim_shared_free(lim_shared_t *sh);
/* Store settings of a reloaded config differ from the running ones (they
 * apply at the next start): a message for the log, or NULL. */
const char *lim_shared_store_changed(const lim_shared_t *sh, const config_t *cfg);

lim_worker_t *lim_worker_new(lim_shared_t *sh, uv_loop_t *loop, char *err, size_t errlen);
/* Pending checks must have been cancelled; the loop must run afterwards. */
void lim_worker_free(lim_worker_t *w);

/* ---- one call ---- */

typedef struct lim_call {
    const config_t *cfg; /* the config the call was decided under */
    const config_workspace_t *ws;
    const char *agent;    /* x-agent-id, or NULL / "" */
    const char *provider; /* LLM: provider name; egress: NULL */
    const char *model;    /* LLM: model; egress: NULL */
    uint64_t est_input;   /* LLM: estimated prompt tokens */
    uint64_t est_output;  /* LLM: max_tokens (or the default estimate) */
    bool egress;          /* an egress proxy request, not an LLM call */
    bool meter;           /* egress: bytes a running tunnel moved since its last charge; only
                             the byte rules apply, in the current windows, no request counted */
    uint64_t bytes;       /* meter: those bytes */
} lim_call_t;

#define LIM_REASON_RATE "cdeguard_rate_limited"
#define LIM_REASON_BUDGET "cdeguard_budget_exceeded"
#define LIM_REASON_STORE "cdeguard_limits_unavailable"
#define LIM_REASON_UNPRICED "cdeguard_unpriced_model"

typedef struct lim_result {
    bool allowed;
    int status;          /* refused: 429 (limit), 503 (store down, fail_closed), 403 (unpriced) */
    const char *reason;  /* refused: a LIM_REASON_* */
    int64_t retry_after; /* 429: seconds until the window that refused ends */
    bool fail_open;      /* allowed although the store could not answer */
    char message[512];   /* refused or fail_open: what happened, naming scope and limit */
} lim_result_t;

/* The answer to a pending check, on the worker's loop: t is the ticket to
 * settle when res->allowed (else NULL). */
typedef void (*lim_done_fn)(void *ctx, lim_ticket_t *t, const lim_result_t *res);

#define LIM_DONE 0
#define LIM_PENDING 1

/* Check and reserve.  LIM_DONE: decided now, *res filled, *t the ticket when
 * allowed (NULL when limits are off).  LIM_PENDING: the store is asked; done
 * runs later on the worker's loop (never inside this call) unless
 * lim_cancel(*pending) comes first. */
int lim_check(lim_worker_t *w, const lim_call_t *call, lim_ticket_t **t, lim_result_t *res,
              lim_done_fn done, void *ctx, lim_pending_t **pending);
/* The caller gives up a pending check: done never runs; a reservation the
 * store makes all the same is released. */
void lim_cancel(lim_pending_t *p);

/* What a call used (input includes cache_read and cache_write). */
typedef struct lim_used {
    uint64_t input, output, cache_read, cache_write;
    uint64_t bytes; /* egress */
} lim_used_t;

/* Release the reservation and count what was used (NULL: nothing was, the
 * call did not go out); frees t.  A running egress tunnel is charged by
 * meter calls (lim_call_t.meter) checked and settled as it goes; its own
 * ticket, settled when it closes, counts the request and the bytes no meter
 * call took. */
void lim_settle(lim_worker_t *w, lim_ticket_t *t, const lim_used_t *used);

/* ---- reports and administration (main thread or thread pool) ---- */

typedef enum {
    LIM_BY_WORKSPACE = 0,
    LIM_BY_TEAM,
    LIM_BY_PROJECT,
    LIM_BY_AGENT,
    LIM_BY_MODEL,
    LIM_BY_PROVIDER
} lim_by_t;
int lim_by_parse(const char *s, lim_by_t *out); /* 0, or -1 */
/* A point in time for reports: "2026-12-01" (UTC midnight),
 * "2026-12-01T10:00:00Z", a Unix time, or "7d" / "24h" / "30m" before now.
 * 0, or -1. */
int lim_parse_when(const char *s, size_t len, int64_t now, int64_t *out);
const char *lim_by_name(lim_by_t b);

/* Usage summed by one dimension over [since, until) (UTC hours), as JSON
 * (admin) or as a text table (CLI); *out is malloc'd.  Reads the store of
 * cfg: the embedded database (sh's, with what is not flushed yet; or, sh
 * NULL, read-only while a daemon writes it) or Redis (blocking: call it on
 * the thread pool, not on a loop).  0, or -1 with err. */
int lim_report(lim_shared_t *sh, const config_t *cfg, lim_by_t by, int64_t since, int64_t until,
               bool json, char **out, char *err, size_t errlen);

/* POST /v1/budgets: body {"scope":"team","name":"platform","limits":{...}}
 * with the rule keys of the config ("limits": null removes the override).
 * Stored in the store (Redis: seen by every replica within its refresh).
 * 0 with a JSON answer in *out, or an HTTP status (400, 404, 503) with a
 * message in err. */
int lim_budget_set(lim_shared_t *sh, const config_t *cfg, const char *body, size_t len, char **out,
                   char *err, size_t errlen);
/* GET /v1/budgets?... current rules and use of every configured scope
 * instance, JSON in *out.  0, or -1 with err. */
int lim_budget_status(lim_shared_t *sh, const config_t *cfg, char **out, char *err, size_t errlen);

/* The config whose teams and projects the budget gauges show (the daemon
 * calls it at start and after each reload; main thread). */
void lim_shared_set_config(lim_shared_t *sh, config_t *cfg);
/* Prometheus lines for the remaining budgets of teams and projects
 * (metrics_render's hook): bytes written, or the size needed when cap is too
 * small. */
size_t lim_render_gauges(char *buf, size_t cap);

/* The time the limiter uses: wall clock, plus in tests the offset in the
 * file named by CDEGUARD_TEST_CLOCK_FILE (read when it changes). */
int64_t lim_now(void);

#endif
