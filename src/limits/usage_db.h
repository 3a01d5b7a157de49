/*
 * limits/usage_db — the embedded store of rate limits and budgets: one
 * SQLite file in WAL mode.  The in-memory ledger (limits/ledger) decides;
 * this module persists (a) the value of every counter, so that usage
 * survives a restart, (b) hourly usage aggregates for reports (`cdeguard
 * usage`), and (c) the budget overrides set at run time.
 *
 * Writes are batched off the hot path.  lim_db_put_counter(),
 * lim_db_add_usage() and lim_db_put_override() never touch the disk: they
 * take a mutex and update an in-memory pending map (a hash table keyed by a
 * counter's identity, by a usage row's hour and six dimensions, by an
 * override's scope).  A writer thread (started when flush_interval_ms > 0)
 * writes the whole pending map in ONE transaction every flush interval,
 * earlier when the map holds more than LIM_DB_PENDING_WAKE entries, and
 * lim_db_close() writes what is left.  A crash of the process therefore
 * loses at most one flush interval of counters, usage and overrides; a
 * flush is all or nothing.  (A power loss or an OS crash may also undo the
 * last flushes before it: synchronous=NORMAL syncs the WAL at checkpoints
 * only.  The file stays consistent.)
 *
 * What a flush writes: a counter's value replaces the stored one (UPSERT:
 * set), a usage row is added to the stored row of the same hour and
 * dimensions (UPSERT: add), an override replaces or deletes the stored one.
 * On a write error the transaction is rolled back and the batch is merged
 * back into the pending map (newer counter values and overrides win, usage
 * amounts are summed) for the next flush; the error is kept for
 * lim_db_last_error() and counted (lim_db_stats()).  The writer thread logs
 * nothing itself; after a failure it retries at the next interval, not
 * earlier.  A failed flush at close loses its data: call
 * lim_db_flush() before lim_db_close() to learn whether the last write
 * succeeded.
 *
 * Invariants and bounds:
 *  - entries pending + entries in flight (being written) never exceed
 *    LIM_DB_PENDING_MAX; a call that needs a new entry beyond it (or when
 *    memory runs out) stores nothing and is counted as dropped.  Updating an
 *    entry that is already pending always succeeds.
 *  - a call whose input cannot be stored whole stores nothing and is counted
 *    as rejected (never truncated): a NULL scope or one of
 *    LIM_DB_SCOPE_MAX bytes or more (at least the ledger's
 *    LIM_SCOPE_KEY_MAX, so every ledger scope fits), an
 *    override text of more than LIM_DB_TEXT_MAX bytes, a usage dimension
 *    not NUL-terminated within its array, a negative hour; and every write
 *    call on a read-only handle.
 *  - a usage row's hour is rounded down to a multiple of 3600.
 *  - amounts are SQLite integers: counter values and usage sums saturate at
 *    INT64_MAX (for cost: 9.2 billion USD in nano-USD).
 *  - the file carries a schema version (table schema_version);
 *    a file written by a newer cdeguard (a higher version) is refused, and so
 *    is a SQLite file of something else (tables but no schema_version).
 *
 * Reading: lim_db_load_counters(), lim_db_query_usage() and
 * lim_db_load_overrides() return what is stored merged with what is
 * pending (the database as the next flush will leave it): a pending counter
 * value or override replaces the stored one, a pending delete hides it, a
 * pending usage row is added to the stored row of the same key (one row per
 * key).  Each row is a snapshot; rows changed while a read runs may or may
 * not show the change.  A read-only handle (lim_db_open_readonly(), for
 * reports while a daemon writes) sees what the writer has committed (WAL
 * readers do not block the writer), not the writer's pending data.
 * Rows in the file that this module cannot have written (NULL, or a string
 * too long for its field) are skipped.
 *
 * Threads: every function may be called from any thread.  The hot-path
 * calls take only the pending-map mutex.  Flushes, reads and prune are
 * serialised by a second mutex that owns the SQLite connection (a report on
 * the writer's handle delays its flush, never the hot path).  Callbacks of
 * the reading functions run without the pending-map mutex: they may call
 * the hot-path functions, but not lim_db_flush(), lim_db_prune(), the
 * reading functions or lim_db_close() of the same handle (deadlock); a
 * nonzero return stops the read, which then returns 0.
 *
 * Memory: the handle owns its connection, its prepared statements and the
 * pending map; scope keys, dimensions and override texts are copied.
 * Strings and rows given to callbacks are valid during the call only.
 *
 * Return values: LIM_DB_OK (0) or LIM_DB_ERROR (-1) with a message in err
 * (err may be NULL; messages about opening name the path), lim_db_prune()
 * a count or -1.
 */
#ifndef CDEGUARD_LIMITS_USAGE_DB_H
#define CDEGUARD_LIMITS_USAGE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limits/types.h"

typedef struct lim_db lim_db_t;

#define LIM_DB_OK 0
#define LIM_DB_ERROR (-1)

#define LIM_DB_SCHEMA_VERSION 1     /* the version this build writes and reads */
#define LIM_DB_SCOPE_MAX 208        /* a scope key, with its NUL (>= LIM_SCOPE_KEY_MAX) */
#define LIM_DB_TEXT_MAX 65536       /* an override text, without its NUL */
#define LIM_DB_PENDING_WAKE 100000  /* more pending entries wake the writer early */
#define LIM_DB_PENDING_MAX 200000   /* pending + in-flight entries, at most */
#define LIM_DB_BUSY_TIMEOUT_MS 5000 /* how long a statement waits for a lock */

/* Open (create) the file read-write: journal_mode=WAL, synchronous=NORMAL,
 * busy timeout LIM_DB_BUSY_TIMEOUT_MS, tables created if missing; start the
 * writer thread when flush_interval_ms > 0 (else only lim_db_flush() and
 * lim_db_close() write).  LIM_DB_ERROR with a message naming the path for a
 * directory, a missing directory, permission denied (on the file or on its
 * directory, where WAL mode keeps <path>-wal and <path>-shm), a file that is
 * not a SQLite database, another program's database, or one of a newer
 * schema version; nothing is written to a file that is refused. */
int lim_db_open(const char *path, uint64_t flush_interval_ms, lim_db_t **out, char *err,
                size_t errlen);
/* Open read-only (reports, while a daemon writes): no writer thread, no
 * schema creation; a missing file is an error naming the path. */
int lim_db_open_readonly(const char *path, lim_db_t **out, char *err, size_t errlen);
/* Stop the writer thread (at once, not at the end of its interval), flush
 * what is pending, close.  No other call on db may run or follow.  NULL is
 * allowed. */
void lim_db_close(lim_db_t *db);

/* ---- hot path: any thread, never touches the disk ---- */

/* The absolute value of one counter: identity (scope, metric, period,
 * window start), end = the window end (UTC s).  A later call for the same
 * identity replaces the pending value. */
void lim_db_put_counter(lim_db_t *db, const char *scope, int metric, int period, int64_t start,
                        int64_t end, uint64_t used);
/* Add a usage row to its hourly aggregate (summed with the pending and the
 * stored rows of the same hour and dimensions). */
void lim_db_add_usage(lim_db_t *db, const lim_usage_row_t *row);
/* Set the budget override of a scope (text opaque to this module), or
 * delete it (text NULL). */
void lim_db_put_override(lim_db_t *db, const char *scope, const char *text);

/* ---- writing ---- */

/* Write everything pending now, in one transaction (what the writer thread
 * calls).  On an error the data is kept for the next flush, the error is
 * returned, kept for lim_db_last_error() and counted.  Nothing pending (or
 * a read-only handle): LIM_DB_OK at once. */
int lim_db_flush(lim_db_t *db, char *err, size_t errlen);
/* The error of the last failed flush, if the flush after it has not
 * succeeded: true with the message in buf (when buf is not NULL), else
 * false. */
bool lim_db_last_error(lim_db_t *db, char *buf, size_t len);

typedef struct lim_db_stats {
    uint64_t flushes;        /* flushes that wrote something */
    uint64_t flush_failures; /* flushes that failed (their data was kept) */
    uint64_t rejected;       /* hot-path calls refused for their input (see above) */
    uint64_t dropped;        /* hot-path calls dropped: LIM_DB_PENDING_MAX reached, no memory */
    size_t pending;          /* entries waiting to be written (pending + in flight) */
} lim_db_stats_t;
void lim_db_stats(lim_db_t *db, lim_db_stats_t *out);

/* ---- reading: any thread (see above for the callbacks) ---- */

typedef int (*lim_db_counter_fn)(void *ctx, const char *scope, int metric, int period,
                                 int64_t start, int64_t end, uint64_t used);
/* Counters whose window has not ended at `now` (end > now). */
int lim_db_load_counters(lim_db_t *db, int64_t now, lim_db_counter_fn fn, void *ctx, char *err,
                         size_t errlen);

typedef int (*lim_db_row_fn)(void *ctx, const lim_usage_row_t *row);
/* Usage rows with since <= hour < until: stored rows (in hour order), then
 * pending rows that have no stored row yet. */
int lim_db_query_usage(lim_db_t *db, int64_t since, int64_t until, lim_db_row_fn fn, void *ctx,
                       char *err, size_t errlen);

typedef int (*lim_db_override_fn)(void *ctx, const char *scope, const char *text);
/* Every override: stored ones (in scope order), then pending ones that
 * have no stored row yet. */
int lim_db_load_overrides(lim_db_t *db, lim_db_override_fn fn, void *ctx, char *err, size_t errlen);

/* Delete the stored counters whose window has ended at `now` (end <= now:
 * those lim_db_load_counters() no longer returns) and the stored usage rows
 * with hour < keep_before, in one transaction.  Pending data is not
 * touched.  The number of rows deleted, or -1 with err (also on a
 * read-only handle). */
long lim_db_prune(lim_db_t *db, int64_t now, int64_t keep_before, char *err, size_t errlen);

#endif
