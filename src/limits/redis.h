/*
 * limits/redis — the shared store for rate limits and budgets when the
 * gateway runs as several replicas, and the hourly usage report they share.
 *
 * Design.  Every counter is one plain Redis integer key
 * `<prefix>:c:<counter key>` holding used + reserved (a single number: the
 * store does not tell them apart).  A reserve is one round trip: a Lua
 * script (EVALSHA; on NOSCRIPT the same command is re-sent as EVAL with the
 * script text, and the next commands use EVALSHA again) that checks every
 * counter and, only if all have room, INCRBYs the amount into each and sets
 * its expiry (EXPIREAT c[i].expire_at).  Scripts run atomically in Redis, so
 * replicas cannot overspend together.  A settle is one more round trip (a
 * second script) that adds actual - reserved, sets the soft-threshold marker
 * `<prefix>:c:<counter key>:soft` (SET NX, so a soft threshold is reported
 * by exactly one settle over all replicas, once per counter key, i.e. once
 * per window), and adds the request's usage row to the hour's report hash
 * `<prefix>:u:<hour>` (fields "workspace\x1fteam\x1fproject\x1fagent\x1f
 * provider\x1fmodel\x1f<metric>", metric one of requests, input, output,
 * cache_read, cache_write, cost; kept 400 days after the hour).  Run-time
 * budget overrides live in the hash `<prefix>:budgets` (scope -> text).
 *
 * Invariants.  A counter never goes below 0 (settle clamps).  Refusal: for
 * a counter with max > 0 and value v, v >= max or v + amount > max; a
 * refused reserve changes nothing anywhere.  Lua numbers are doubles: the
 * comparisons are exact for values up to 2^53 (9.0e15: 9 million USD in
 * nano-USD), which is enough; INCRBY/HINCRBY get the decimal strings as
 * they are, so stored values are exact int64.  Arguments above INT64_MAX are
 * bad arguments.  The soft threshold is compared as
 * value >= ceil(max * soft_pct / 100), computed in C without overflow.  A
 * usage dimension containing the separator byte 0x1f has it replaced by
 * '_'.  One call's counters should have distinct keys (each is checked on
 * its own value, not on the sum of the call's amounts).
 *
 * Asynchronous API (lim_redis_t, one per worker loop).  Connection states:
 * down (waiting for the reconnect timer), resolving (uv_getaddrinfo on the
 * thread pool when host is a name), connecting (TCP, then AUTH and SELECT,
 * which are queued before any command), up.  Commands made while resolving
 * or connecting are queued and sent in order; while down they fail fast.  A
 * command that has no reply within timeout_ms, or a connection not up
 * within timeout_ms, fails every pending command and drops the connection.
 * A lost or failed connection fails every pending command and schedules a
 * reconnect after 100 ms, doubling to 5 s, reset once a connection is up.
 * Each callback runs exactly once, always from the loop and never inside
 * the lim_redis_reserve/settle call that made the command (a failure known
 * at call time is delivered from a uv_idle handle on the next loop turn).
 * Status: LIM_RS_OK, LIM_RS_REFUSED or LIM_RS_ERROR with a message that is
 * only valid during the callback.  Callbacks may call lim_redis_reserve,
 * lim_redis_settle and lim_redis_free (once) on the same store.
 *
 * lim_redis_free calls every outstanding callback (sent, queued or waiting
 * to deliver a failure) with LIM_RS_ERROR and the message "redis: closing"
 * before it returns; no callback runs after it returns.  During those
 * callbacks reserve/settle on that store return -1.  The store's memory is
 * freed from the uv close callbacks (and after an outstanding
 * uv_getaddrinfo completes), so the loop must run afterwards.
 *
 * Memory: lim_redis_new copies the option strings; reserve/settle copy
 * their arguments (the caller's arrays may be freed on return).  Threads: a
 * lim_redis_t belongs to its loop's thread and is not locked; the process
 * must ignore SIGPIPE (hiredis writes with write(2); the daemon does).  The
 * synchronous functions open their own blocking connection (connect and
 * command timeout: timeout_ms), so they may be called from any thread but
 * must never run on a worker loop.  Return values: 0 ok (or command sent),
 * -1 error; messages go to err[errlen] when err is not NULL.
 */
#ifndef CDEGUARD_LIMITS_REDIS_H
#define CDEGUARD_LIMITS_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "limits/types.h"

#define LIM_REDIS_MAX_COUNTERS 16 /* per reserve or settle */
#define LIM_REDIS_PREFIX_MAX 128  /* bytes of the key prefix */
#define LIM_REDIS_DEFAULT_TIMEOUT_MS 1000

typedef struct lim_redis_opts {
    const char *host;     /* name or literal address */
    uint16_t port;        /* != 0 */
    int db;               /* SELECT db when != 0 (>= 0) */
    const char *password; /* AUTH when non-NULL */
    const char *prefix;   /* key prefix, e.g. "cdeguard" (non-empty) */
    uint64_t timeout_ms;  /* per command: no reply within it = store error, connection
                             dropped and re-made; 0: LIM_REDIS_DEFAULT_TIMEOUT_MS */
} lim_redis_opts_t;       /* strings are copied by lim_redis_new */

typedef struct lim_redis lim_redis_t;

#define LIM_RS_OK 0
#define LIM_RS_REFUSED 1
#define LIM_RS_ERROR (-1) /* store unreachable, timed out, bad reply, closed */

/* reserve result: status; on REFUSED the index (0-based) of the first
 * counter that had no room and its value (used+reserved) at that moment; on
 * ERROR a message */
typedef void (*lim_redis_reserve_cb)(void *ctx, int status, size_t refused_index, uint64_t value,
                                     const char *err);
/* settle result: status (OK or ERROR); soft[] lists (0-based) indexes of
 * counters that crossed their soft threshold for the first time in their
 * window (over all replicas: exactly once per counter key), nsoft of them */
typedef void (*lim_redis_settle_cb)(void *ctx, int status, const size_t *soft, size_t nsoft,
                                    const char *err);

/* NULL only on bad options or out of memory (message in err); a server that
 * cannot be reached is not an error here: the store connects in the
 * background and retries. */
lim_redis_t *lim_redis_new(uv_loop_t *loop, const lim_redis_opts_t *o, char *err, size_t errlen);
/* Closes the connection; every pending callback is called with LIM_RS_ERROR
 * ("redis: closing") before this returns; after it returns no callback
 * runs.  Call it once, on the loop's thread (a callback may call it).  The
 * loop must run afterwards so the uv handles close (memory is freed in
 * their close callbacks). */
void lim_redis_free(lim_redis_t *r);

/* Shutdown only, on the loop's thread, before lim_redis_free: write what is
 * queued and wait, blocking the thread for at most timeout_ms, for the
 * replies of the commands sent (their callbacks run), so that the last
 * settlements of a stopping worker are not lost.  Does nothing when the
 * connection is not up. */
void lim_redis_drain(lim_redis_t *r, uint64_t timeout_ms);
/* The connection is up (TCP connected, AUTH and SELECT done). */
bool lim_redis_connected(const lim_redis_t *r);

/* Check every counter: refuse (no change anywhere) when for some i with
 * c[i].max > 0: value >= max, or value + amount > max.  Otherwise INCRBY
 * amount on each counter and EXPIREAT c[i].expire_at.  One Lua script,
 * atomic.  Returns 0 when the command was taken: cb then runs exactly once,
 * from the loop, never inside this call; -1 only on bad arguments (n not in
 * 1..16, cb NULL, a key not NUL-terminated, a value above INT64_MAX,
 * expire_at <= 0), out of memory or a closing store: cb is not called. */
int lim_redis_reserve(lim_redis_t *r, const lim_counter_t *c, size_t n, lim_redis_reserve_cb cb,
                      void *ctx);

/* Settle: for each counter INCRBY (actual[i] - reserved[i]) (the value
 * never goes below 0), EXPIREAT expire_at; when c[i].max > 0 and
 * c[i].soft_pct > 0 (<= 100) and new value * 100 >= max * soft_pct, SET
 * "<key>:soft" 1 NX EXAT expire_at and report i if that SET succeeded.  In
 * the same script, when row != NULL (hour a multiple of 3600), HINCRBY the
 * row into the hour's report hash (zeros skipped except requests) and
 * EXPIREAT it hour + 400 days.  n may be 0 when row != NULL.  cb may be
 * NULL.  Same sending and callback rules as lim_redis_reserve. */
int lim_redis_settle(lim_redis_t *r, const lim_counter_t *c, const uint64_t *reserved,
                     const uint64_t *actual, size_t n, const lim_usage_row_t *row,
                     lim_redis_settle_cb cb, void *ctx);

/* Synchronous functions (CLI, admin endpoint on a thread-pool thread,
 * periodic refreshes): each opens a blocking connection, AUTH/SELECT, does
 * its work, closes.  Never call them on a worker loop. */

typedef int (*lim_redis_row_fn)(void *ctx, const lim_usage_row_t *row); /* nonzero stops */
/* Every row of every hour key h (a multiple of 3600) with since <= h <
 * until, in hour order, rows of an hour sorted by their dimensions.  Hours
 * that cannot exist are not asked for: the range is clipped to [now - 402
 * days, now + 2 days] (rows expire 400 days after their hour).  Fields
 * that do not parse are skipped.  0 ok (also when fn stopped), -1 with err. */
int lim_redis_query_usage(const lim_redis_opts_t *o, int64_t since, int64_t until,
                          lim_redis_row_fn fn, void *ctx, char *err, size_t errlen);
/* Current values of counters (keys without the prefix; MGET, absent = 0). */
int lim_redis_get_counters(const lim_redis_opts_t *o, const char *const *keys, size_t n,
                           uint64_t *values, char *err, size_t errlen);
/* Budget overrides set at run time: hash <prefix>:budgets field scope ->
 * text (opaque to this module).  put with text NULL deletes the field. */
int lim_redis_put_override(const lim_redis_opts_t *o, const char *scope, const char *text,
                           char *err, size_t errlen);
/* nonzero from fn stops (and is not an error) */
typedef int (*lim_redis_override_fn)(void *ctx, const char *scope, const char *text);
int lim_redis_load_overrides(const lim_redis_opts_t *o, lim_redis_override_fn fn, void *ctx,
                             char *err, size_t errlen);

#endif
