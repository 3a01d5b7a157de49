/*
 * test_usage_db.c — unit tests of src/limits/usage_db: counters (latest
 * value wins, only windows not ended), hourly usage (summed across calls and
 * flushes, hour ranges), pending data visible before a flush, overrides
 * (replace, delete), persistence across a restart, a read-only handle that
 * sees what a running writer flushed (WAL), the writer thread's own flushes
 * and its early wake-up, close flushing, the bound on pending entries, open
 * errors (a directory, a missing directory, a file that is not a database,
 * a newer schema, another program's database, a missing file read-only), a
 * real write failure that keeps the pending data (RLIMIT_FSIZE: works as
 * root too), prune, rejected input, and concurrent writers and readers.
 *
 * Files live in a mkdtemp() directory under /tmp made by the group setup and
 * removed by its teardown.  Usage: test_usage_db [cmocka test-name filter].
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "limits/usage_db.h"

static char tmpdir[64];

/* ---- helpers -------------------------------------------------------------- */

static void tpath(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmpdir, name);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static lim_db_t *open_rw(const char *path, uint64_t interval_ms)
{
    lim_db_t *db = NULL;
    char err[512] = "";
    int rc = lim_db_open(path, interval_ms, &db, err, sizeof err);
    if (rc != LIM_DB_OK) fail_msg("lim_db_open(%s): %s", path, err);
    assert_non_null(db);
    return db;
}

static lim_db_t *open_ro(const char *path)
{
    lim_db_t *db = NULL;
    char err[512] = "";
    int rc = lim_db_open_readonly(path, &db, err, sizeof err);
    if (rc != LIM_DB_OK) fail_msg("lim_db_open_readonly(%s): %s", path, err);
    assert_non_null(db);
    return db;
}

static void flush_ok(lim_db_t *db)
{
    char err[512] = "";
    int rc = lim_db_flush(db, err, sizeof err);
    if (rc != LIM_DB_OK) fail_msg("lim_db_flush: %s", err);
}

static lim_usage_row_t mkrow(int64_t hour, const char *ws, const char *agent, const char *model,
                             uint64_t req, uint64_t in, uint64_t cost)
{
    lim_usage_row_t r;
    memset(&r, 0, sizeof r);
    r.hour = hour;
    snprintf(r.workspace, sizeof r.workspace, "%s", ws);
    snprintf(r.team, sizeof r.team, "platform");
    snprintf(r.project, sizeof r.project, "%s", "");
    snprintf(r.agent, sizeof r.agent, "%s", agent);
    snprintf(r.provider, sizeof r.provider, "anthropic");
    snprintf(r.model, sizeof r.model, "%s", model);
    r.requests = req;
    r.input = in;
    r.output = in / 2;
    r.cache_read = 1;
    r.cache_write = 2;
    r.cost_nano = cost;
    return r;
}

/* -- collectors -- */

typedef struct crec {
    char scope[LIM_DB_SCOPE_MAX];
    int metric, period;
    int64_t start, end;
    uint64_t used;
} crec_t;

typedef struct clist {
    crec_t v[32];
    size_t n, calls;
    size_t stop_after; /* 0: never */
} clist_t;

static int collect_counter(void *ctx, const char *scope, int metric, int period, int64_t start,
                           int64_t end, uint64_t used)
{
    clist_t *l = ctx;
    l->calls++;
    if (l->n < 32) {
        crec_t *c = &l->v[l->n++];
        snprintf(c->scope, sizeof c->scope, "%s", scope);
        c->metric = metric;
        c->period = period;
        c->start = start;
        c->end = end;
        c->used = used;
    }
    return l->stop_after && l->calls >= l->stop_after;
}

static clist_t *load_counters(lim_db_t *db, int64_t now)
{
    clist_t *l = calloc(1, sizeof *l);
    assert_non_null(l);
    char err[512] = "";
    if (lim_db_load_counters(db, now, collect_counter, l, err, sizeof err) != LIM_DB_OK)
        fail_msg("lim_db_load_counters: %s", err);
    return l;
}

static const crec_t *find_counter(const clist_t *l, const char *scope, int metric, int period,
                                  int64_t start)
{
    const crec_t *found = NULL;
    for (size_t i = 0; i < l->n; i++) {
        const crec_t *c = &l->v[i];
        if (strcmp(c->scope, scope) == 0 && c->metric == metric && c->period == period &&
            c->start == start) {
            assert_null(found); /* reported once */
            found = c;
        }
    }
    return found;
}

typedef struct ulist {
    lim_usage_row_t v[16];
    size_t n, calls;
    size_t stop_after;
} ulist_t;

static int collect_row(void *ctx, const lim_usage_row_t *row)
{
    ulist_t *l = ctx;
    l->calls++;
    if (l->n < 16) l->v[l->n++] = *row;
    return l->stop_after && l->calls >= l->stop_after;
}

static ulist_t *query(lim_db_t *db, int64_t since, int64_t until)
{
    ulist_t *l = calloc(1, sizeof *l);
    assert_non_null(l);
    char err[512] = "";
    if (lim_db_query_usage(db, since, until, collect_row, l, err, sizeof err) != LIM_DB_OK)
        fail_msg("lim_db_query_usage: %s", err);
    return l;
}

static const lim_usage_row_t *find_row(const ulist_t *l, int64_t hour, const char *ws,
                                       const char *agent, const char *model)
{
    const lim_usage_row_t *found = NULL;
    for (size_t i = 0; i < l->n; i++) {
        const lim_usage_row_t *r = &l->v[i];
        if (r->hour == hour && strcmp(r->workspace, ws) == 0 && strcmp(r->agent, agent) == 0 &&
            strcmp(r->model, model) == 0) {
            assert_null(found); /* one row per key */
            found = r;
        }
    }
    return found;
}

typedef struct olist {
    char scope[8][LIM_DB_SCOPE_MAX];
    char text[8][64];
    size_t n;
} olist_t;

static int collect_override(void *ctx, const char *scope, const char *text)
{
    olist_t *l = ctx;
    assert_true(l->n < 8);
    snprintf(l->scope[l->n], sizeof l->scope[0], "%s", scope);
    snprintf(l->text[l->n], sizeof l->text[0], "%s", text);
    l->n++;
    return 0;
}

static void load_overrides(lim_db_t *db, olist_t *l)
{
    memset(l, 0, sizeof *l);
    char err[512] = "";
    if (lim_db_load_overrides(db, collect_override, l, err, sizeof err) != LIM_DB_OK)
        fail_msg("lim_db_load_overrides: %s", err);
}

static const char *override_of(const olist_t *l, const char *scope)
{
    const char *found = NULL;
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->scope[i], scope) == 0) {
            assert_null(found);
            found = l->text[i];
        }
    }
    return found;
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void sql_exec(const char *path, const char *sql)
{
    sqlite3 *c = NULL;
    assert_int_equal(sqlite3_open(path, &c), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(c, sql, NULL, NULL, &msg) != SQLITE_OK) fail_msg("%s: %s", sql, msg);
    sqlite3_close(c);
}

/* One integer from a query on the file, through a separate connection. */
static long long sql_int(const char *path, const char *sql)
{
    sqlite3 *c = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &c, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(c, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(c);
    return v;
}

#define H0 ((int64_t)1764889200) /* a UTC hour: 2025-12-04 23:00 */

/* ---- counters ------------------------------------------------------------- */

static void test_counters_latest_value_open_windows(void **state)
{
    (void)state;
    char path[128];
    tpath(path, sizeof path, "counters.db");
    lim_db_t *db = open_rw(path, 0);

    lim_db_put_counter(db, "team:a", 1, 1, 1000, 2000, 5);
    lim_db_put_counter(db, "team:a", 1, 1, 1000, 2000, 7); /* replaces */
    lim_db_put_counter(db, "team:a", 2, 1, 1000, 2000, 3); /* another metric */
    lim_db_put_counter(db, "team:b", 1, 0, 0, 500, 11);    /* ended before now */
    lim_db_put_counter(db, "team:c", 1, 0, 940, 1000, 12); /* ends at now: ended */
    lim_db_stats_t s;
    lim_db_stats(db, &s);
    assert_int_equal(s.pending, 4);
    flush_ok(db);
    lim_db_stats(db, &s);
    assert_int_equal(s.pending, 0);
    assert_int_equal(s.flushes, 1);

    clist_t *l = load_counters(db, 1000);
    assert_int_equal(l->n, 2);
    const crec_t *c = find_counter(l, "team:a", 1, 1, 1000);
    assert_non_null(c);
    assert_int_equal(c->used, 7);
    assert_int_equal(c->end, 2000);
    c = find_counter(l, "team:a", 2, 1, 1000);
    assert_non_null(c);
    assert_int_equal(c->used, 3);
    free(l);
    /* ended windows are stored all the same until pruned */
    assert_int_equal(sql_int(path, "SELECT count(*) FROM counters"), 4);

    /* a pending value replaces the stored one; a new pending counter shows */
    lim_db_put_counter(db, "team:a", 1, 1, 1000, 2000, 9);
    lim_db_put_counter(db, "team:d", 0, 2, 1500, 3000, 1);
    l = load_counters(db, 1000);
    assert_int_equal(l->n, 3);
    assert_int_equal(find_counter(l, "team:a", 1, 1, 1000)->used, 9);
    assert_int_equal(find_counter(l, "team:d", 0, 2, 1500)->used, 1);
    free(l);
    l = load_counters(db, 2000);
    assert_int_equal(l->n, 1);
    assert_non_null(find_counter(l, "team:d", 0, 2, 1500));
    free(l);

    /* a restart: the values survive */
    lim_db_close(db);
    db = open_rw(path, 0);
    l = load_counters(db, 1000);
    assert_int_equal(l->n, 3);
    assert_int_equal(find_counter(l, "team:a", 1, 1, 1000)->used, 9);
    free(l);
    lim_db_close(db);
}

/* ---- usage ---------------------------------------------------------------- */

static void test_usage_summed_and_ranges(void **state)
{
    (void)state;
    char path[128];
    tpath(path, sizeof path, "usage.db");
    lim_db_t *db = open_rw(path, 0);

    lim_usage_row_t r = mkrow(H0, "ws-a", "bot", "claude", 1, 100, 1000);
    lim_db_add_usage(db, &r);
    lim_db_add_usage(db, &r);
    ulist_t *u = query(db, H0, H0 + 3600); /* pending only */
    assert_int_equal(u->n, 1);
    assert_int_equal(u->v[0].requests, 2);
    assert_int_equal(u->v[0].input, 200);
    assert_int_equal(u->v[0].cost_nano, 2000);
    free(u);
    flush_ok(db);

    lim_db_add_usage(db, &r); /* stored 2 + pending 1: one row */
    u = query(db, H0, H0 + 3600);
    assert_int_equal(u->n, 1);
    assert_int_equal(u->v[0].requests, 3);
    free(u);
    flush_ok(db);
    u = query(db, H0, H0 + 3600);
    assert_int_equal(u->n, 1);
    const lim_usage_row_t *x = &u->v[0];
    assert_int_equal(x->requests, 3);
    assert_int_equal(x->input, 300);
    assert_int_equal(x->output, 150);
    assert_int_equal(x->cache_read, 3);
    assert_int_equal(x->cache_write, 6);
    assert_int_equal(x->cost_nano, 3000);
    assert_string_equal(x->team, "platform");
    assert_string_equal(x->project, "");
    assert_string_equal(x->provider, "anthropic");
    free(u);

    /* other hours, other dimensions; an hour not on the hour is rounded down */
    lim_usage_row_t before = mkrow(H0 - 3600, "ws-a", "bot", "claude", 10, 0, 0);
    lim_usage_row_t after = mkrow(H0 + 3600, "ws-a", "bot", "claude", 20, 0, 0);
    lim_usage_row_t noagent = mkrow(H0, "ws-a", "", "claude", 30, 0, 0);
    lim_usage_row_t inside = mkrow(H0 + 1800, "ws-a", "bot", "claude", 40, 0, 0);
    lim_db_add_usage(db, &before);
    lim_db_add_usage(db, &after);
    lim_db_add_usage(db, &noagent);
    lim_db_add_usage(db, &inside);
    flush_ok(db);

    u = query(db, H0, H0 + 3600);
    assert_int_equal(u->n, 2);
    assert_int_equal(find_row(u, H0, "ws-a", "bot", "claude")->requests, 43);
    assert_int_equal(find_row(u, H0, "ws-a", "", "claude")->requests, 30);
    free(u);
    u = query(db, H0 - 3600, H0 + 7200);
    assert_int_equal(u->n, 4);
    assert_int_equal(find_row(u, H0 - 3600, "ws-a", "bot", "claude")->requests, 10);
    assert_int_equal(find_row(u, H0 + 3600, "ws-a", "bot", "claude")->requests, 20);
    free(u);
    u = query(db, H0 + 7200, H0 + 86400);
    assert_int_equal(u->n, 0);
    free(u);
    u = query(db, H0 + 3600, H0 + 3601);
    assert_int_equal(u->n, 1);
    free(u);
    assert_int_equal(sql_int(path, "SELECT count(*) FROM usage_hourly"), 4);
    lim_db_close(db);
}

static void test_pending_visible_before_flush(void **state)
{
    (void)state;
    char path[128];
    tpath(path, sizeof path, "pending.db");
    lim_db_t *db = open_rw(path, 0);
    lim_usage_row_t r = mkrow(H0, "ws-p", "a1", "gpt", 1, 5, 7);
    lim_db_add_usage(db, &r);
    lim_db_put_counter(db, "workspace:ws-p", 0, 0, H0, H0 + 60, 4);
    lim_db_put_override(db, "team:p", "{\"tokens_per_day\":5}");

    ulist_t *u = query(db, H0, H0 + 1);
    assert_int_equal(u->n, 1);
    assert_int_equal(u->v[0].requests, 1);
    assert_string_equal(u->v[0].agent, "a1");
    free(u);
    clist_t *c = load_counters(db, H0);
    assert_int_equal(c->n, 1);
    assert_int_equal(c->v[0].used, 4);
    free(c);
    olist_t o;
    load_overrides(db, &o);
    assert_int_equal(o.n, 1);
    assert_string_equal(override_of(&o, "team:p"), "{\"tokens_per_day\":5}");

    /* nothing is on disk yet: another handle sees none of it */
    lim_db_t *ro = open_ro(path);
    u = query(ro, H0, H0 + 1);
    assert_int_equal(u->n, 0);
    free(u);
    lim_db_close(ro);
    lim_db_close(db);
}

/* ---- overrides ------------------------------------------------------------ */

static void test_overrides_put_replace_delete(void **state)
{
    (void)state;
    char path[128];
    tpath(path, sizeof path, "overrides.db");
    lim_db_t *db = open_rw(path, 0);
    olist_t o;

    lim_db_put_override(db, "team:a", "x");
    lim_db_put_override(db, "team:b", "y");
    flush_ok(db);
    lim_db_put_override(db, "team:a", "z"); /* pending replaces stored */
    load_overrides(db, &o);
    assert_int_equal(o.n, 2);
    assert_string_equal(override_of(&o, "team:a"), "z");
    assert_string_equal(override_of(&o, "team:b"), "y");

    lim_db_put_override(db, "team:b", NULL); /* pending delete hides stored */
    lim_db_put_override(db, "team:c", "w");
    load_overrides(db, &o);
    assert_int_equal(o.n, 2);
    assert_string_equal(override_of(&o, "team:a"), "z");
    assert_string_equal(override_of(&o, "team:c"), "w");
    assert_null(override_of(&o, "team:b"));

    lim_db_put_override(db, "team:c", "v");  /* replace while pending */
    lim_db_put_override(db, "team:d", NULL); /* delete of nothing */
    flush_ok(db);
    lim_db_close(db);

    db = open_rw(path, 0);
    load_overrides(db, &o);
    assert_int_equal(o.n, 2);
    assert_string_equal(override_of(&o, "team:a"), "z");
    assert_string_equal(override_of(&o, "team:c"), "v");
    lim_db_put_override(db, "team:c", NULL);
    flush_ok(db);
    load_overrides(db, &o);
    assert_int_equal(o.n, 1);
    assert_string_equal(o.scope[0], "team:a");
    assert_int_equal(sql_int(path, "SELECT count(*) FROM overrides"), 1);
    lim_db_close(db);
}

/* ---- restart, read-only handle, writer thread ------------------------------ */

static void test_usage_survives_restart(void **state)
{
    (void)state;
    char path[128];
    tpath(path, sizeof path, "restart.db");
    lim_db_t *db = open_rw(path, 0);
    lim_usage_row_t r = mkrow(H0, "ws-r", "", "m", 2, 10, 100);
    lim_db_add_usage(db, &r);
    flush_ok(db);
    lim_db_add_usage(db, &r); /* left pending: close writes it */
    lim_db_close(db);

    db = open_rw(path, 0);
    ulist_t *u = query(db, 0, INT64_MAX);
    assert_int_equal(u->n, 1);
    assert_int_equal(u->v[0].requests, 4);
    assert_int_equal(u->v[0].cost_nano, 200);
    free(u);
    lim_db_add_usage(db, &r); /* added to what the last run stored */
    lim_db_close(db);
    db = open_ro(path);
    u = query(db, 0, INT64_MAX);
    assert_int_equal(u->n, 1);
    assert_int_equal(u->v[0].requests, 6);
    free(u);
    lim_db_close(db);
}

static void test_readonly_sees_running_writer(void **state)
{
    (void)state;
    char path[128];
    tpath(path, sizeof path, "wal.db");
    lim_db_t *db = open_rw(path, 0);
    lim_usage_row_t r = mkrow(H0, "ws-w", "", "m", 1, 1, 1);
    lim_db_add_usage(db, &r);
    lim_db_put_counter(db, "team:w", 0, 1, H0, H0 + 86400, 77);
    lim_db_put_override(db, "team:w", "t");
    flush_ok(db);

    lim_db_t *ro = open_ro(path);
    ulist_t *u = query(ro, H0, H0 + 3600);
    assert_int_equal(u->n, 1);
    assert_int_equal(u->v[0].requests, 1);
    free(u);
    lim_db_add_usage(db, &r);
    flush_ok(db); /* the writer commits while the reader is open */
    u = query(ro, H0, H0 + 3600);
    assert_int_equal(u->n, 1);
    assert_int_equal(u->v[0].requests, 2);
    free(u);
    clist_t *c = load_counters(ro, H0);
    assert_int_equal(c->n, 1);
    assert_int_equal(c->v[0].used, 77);
    free(c);
    olist_t o;
    load_overrides(ro, &o);
    assert_string_equal(override_of(&o, "team:w"), "t");

    /* a read-only handle writes nothing */
    lim_db_put_counter(ro, "team:w", 0, 1, H0, H0 + 86400, 1);
    lim_db_add_usage(ro, &r);
    lim_db_put_override(ro, "team:w", NULL);
    lim_db_stats_t s;
    lim_db_stats(ro, &s);
    assert_int_equal(s.rejected, 3);
    assert_int_equal(s.pending, 0);
    char err[512] = "";
    assert_int_equal(lim_db_flush(ro, err, sizeof err), LIM_DB_OK);
    assert_int_equal(lim_db_prune(ro, INT64_MAX, INT64_MAX, err, sizeof err), -1);
    assert_non_null(strstr(err, "read-only"));
    lim_db_close(ro);
    lim_db_close(db);
    assert_int_equal(sql_int(path, "SELECT count(*) FROM pragma_journal_mode WHERE "
                                   "journal_mode = 'wal'"),
                     1);
}

static void test_writer_thread_flushes_by_itself(void **state)
{
    (void)state;
    char path[128];
    tpath(path, sizeof path, "writer.db");
    lim_db_t *db = open_rw(path, 20);
    lim_db_t *ro = open_ro(path);
    lim_usage_row_t r = mkrow(H0, "ws-t", "", "m", 3, 0, 0);
    lim_db_add_usage(db, &r);
    int64_t t0 = mono_ms();
    bool seen = false;
    while (!seen && mono_ms() - t0 < 5000) {
        ulist_t *u = query(ro, H0, H0 + 3600);
        seen = u->n == 1 && u->v[0].requests == 3;
        free(u);
        if (!seen) sleep_ms(2);
    }
    assert_true(seen);
    lim_db_stats_t s;
    lim_db_stats(db, &s);
    assert_true(s.flushes >= 1);
    assert_int_equal(s.pending, 0);
    lim_db_close(ro);
    lim_db_close(db);
}

static void test_close_flushes_pending_promptly(void **state)
{
    (void)state;
    char path[128];
    tpath(path, sizeof path, "close.db");
    lim_db_t *db = open_rw(path, 3600 * 1000); /* the writer would wait an hour */
    lim_usage_row_t r = mkrow(H0, "ws-c", "", "m", 5, 0, 0);
    lim_db_add_usage(db, &r);
    lim_db_put_counter(db, "team:c", 0, 1, H0, H0 + 60, 8);
    int64_t t0 = mono_ms();
    lim_db_close(db);
    assert_true(mono_ms() - t0 < 2000);
    lim_db_t *ro = open_ro(path);
    ulist_t *u = query(ro, 0, INT64_MAX);
    assert_int_equal(u->n, 1);
    assert_int_equal(u->v[0].requests, 5);
    free(u);
    clist_t *c = load_counters(ro, H0);
    assert_int_equal(c->n, 1);
    assert_int_equal(c->v[0].used, 8);
    free(c);
    lim_db_close(ro);
}

static void test_many_pending_wake_the_writer(void **state)
{
    (void)state;
    char path[128];
    tpath(path, sizeof path, "wake.db");
    lim_db_t *db = open_rw(path, 3600 * 1000);
    char scope[64];
    for (int i = 0; i <= LIM_DB_PENDING_WAKE; i++) {
        snprintf(scope, sizeof scope, "agent:ws/%d", i);
        lim_db_put_counter(db, scope, 0, 0, H0, H0 + 60, (uint64_t)i);
    }
    int64_t t0 = mono_ms();
    lim_db_stats_t s;
    do {
        sleep_ms(5);
        lim_db_stats(db, &s);
    } while (s.flushes == 0 && mono_ms() - t0 < 20000);
    assert_int_equal(s.flushes, 1);
    assert_int_equal(s.dropped, 0);
    assert_int_equal(sql_int(path, "SELECT count(*) FROM counters"), LIM_DB_PENDING_WAKE + 1);
    lim_db_close(db);
}

/* ---- bounds and input ----------------------------------------------------- */

static int count_fn(void *ctx, const char *scope, int metric, int period, int64_t start,
                    int64_t end, uint64_t used)
{
    (void)scope, (void)metric, (void)period, (void)start, (void)end, (void)used;
    (*(size_t *)ctx)++;
    return 0;
}

static void test_pending_is_bounded(void **state)
{
    (void)state;
    char path[128];
    tpath(path, sizeof path, "bound.db");
    lim_db_t *db = open_rw(path, 0);
    char scope[64];
    for (int i = 0; i < LIM_DB_PENDING_MAX + 5; i++) {
        snprintf(scope, sizeof scope, "agent:ws/%d", i);
        lim_db_put_counter(db, scope, 0, 0, H0, H0 + 60, 1);
    }
    lim_usage_row_t r = mkrow(H0, "ws-b", "", "m", 1, 0, 0);
    lim_db_add_usage(db, &r);                                   /* a new entry: dropped too */
    lim_db_put_counter(db, "agent:ws/0", 0, 0, H0, H0 + 60, 2); /* an update: kept */
    lim_db_stats_t s;
    lim_db_stats(db, &s);
    assert_int_equal(s.pending, LIM_DB_PENDING_MAX);
    assert_int_equal(s.dropped, 6);
    assert_int_equal(s.rejected, 0);

    /* every pending counter is reported once (chunked reads of a big map) */
    size_t n = 0;
    char err[512] = "";
    assert_int_equal(lim_db_load_counters(db, H0, count_fn, &n, err, sizeof err), LIM_DB_OK);
    assert_int_equal(n, LIM_DB_PENDING_MAX);
    lim_db_close(db);
    assert_int_equal(sql_int(path, "SELECT count(*) FROM counters"), LIM_DB_PENDING_MAX);
    assert_int_equal(sql_int(path, "SELECT used FROM counters WHERE scope = 'agent:ws/0'"), 2);
}

static void test_rejected_input(void **state)
{
    (void)state;
    char path[128];
    tpath(path, sizeof path, "reject.db");
    lim_db_t *db = open_rw(path, 0);
    char longest[LIM_DB_SCOPE_MAX], too_long[LIM_DB_SCOPE_MAX + 1];
    memset(longest, 'a', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    memset(too_long, 'b', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';

    lim_db_put_counter(db, longest, 0, 0, H0, H0 + 60, 1); /* 159 bytes: fits */
    lim_db_put_counter(db, too_long, 0, 0, H0, H0 + 60, 1);
    lim_db_put_counter(db, NULL, 0, 0, H0, H0 + 60, 1);
    lim_db_put_override(db, too_long, "x");
    lim_db_put_override(db, NULL, "x");
    char *big = malloc(LIM_DB_TEXT_MAX + 2);
    assert_non_null(big);
    memset(big, '{', LIM_DB_TEXT_MAX + 1);
    big[LIM_DB_TEXT_MAX + 1] = '\0';
    lim_db_put_override(db, "team:big", big);
    big[LIM_DB_TEXT_MAX] = '\0'; /* exactly the maximum: kept */
    lim_db_put_override(db, "team:max", big);
    free(big);
    lim_usage_row_t r = mkrow(H0, "ws", "", "m", 1, 0, 0);
    memset(r.model, 'm', sizeof r.model); /* not terminated */
    lim_db_add_usage(db, &r);
    r = mkrow(-3600, "ws", "", "m", 1, 0, 0);
    lim_db_add_usage(db, &r);
    lim_db_add_usage(db, NULL);

    lim_db_stats_t s;
    lim_db_stats(db, &s);
    assert_int_equal(s.rejected, 8);
    assert_int_equal(s.pending, 2);
    flush_ok(db);
    assert_int_equal(sql_int(path, "SELECT count(*) FROM counters"), 1);
    assert_int_equal(sql_int(path, "SELECT length(scope) FROM counters"), LIM_DB_SCOPE_MAX - 1);
    assert_int_equal(sql_int(path, "SELECT count(*) FROM usage_hourly"), 0);
    assert_int_equal(sql_int(path, "SELECT length(text) FROM overrides WHERE scope='team:max'"),
                     LIM_DB_TEXT_MAX);
    assert_int_equal(sql_int(path, "SELECT count(*) FROM overrides"), 1);

    /* NULL handles are harmless */
    lim_db_put_counter(NULL, "x", 0, 0, 0, 1, 1);
    lim_db_add_usage(NULL, &r);
    lim_db_put_override(NULL, "x", "y");
    lim_db_close(NULL);
    assert_false(lim_db_last_error(NULL, NULL, 0));
    lim_db_close(db);
}

static void test_callback_stops_the_read(void **state)
{
    (void)state;
    char path[128];
    tpath(path, sizeof path, "stop.db");
    lim_db_t *db = open_rw(path, 0);
    lim_db_put_counter(db, "s:1", 0, 0, H0, H0 + 60, 1);
    lim_db_put_counter(db, "s:2", 0, 0, H0, H0 + 60, 1);
    flush_ok(db);
    lim_db_put_counter(db, "s:3", 0, 0, H0, H0 + 60, 1);
    lim_db_put_counter(db, "s:4", 0, 0, H0, H0 + 60, 1);
    char err[512] = "";
    for (size_t stop = 1; stop <= 4; stop++) {
        clist_t l = {.stop_after = stop};
        assert_int_equal(lim_db_load_counters(db, H0, collect_counter, &l, err, sizeof err),
                         LIM_DB_OK);
        assert_int_equal(l.calls, stop);
    }
    for (int i = 0; i < 3; i++) {
        lim_usage_row_t r = mkrow(H0 + 3600 * i, "ws", "", "m", 1, 0, 0);
        lim_db_add_usage(db, &r);
        if (i == 0) flush_ok(db);
    }
    for (size_t stop = 1; stop <= 3; stop++) {
        ulist_t u = {.stop_after = stop};
        assert_int_equal(lim_db_query_usage(db, 0, INT64_MAX, collect_row, &u, err, sizeof err),
                         LIM_DB_OK);
        assert_int_equal(u.calls, stop);
    }
    lim_db_close(db);
}

/* ---- errors --------------------------------------------------------------- */

static void expect_open_error(const char *path, bool readonly, const char *want1, const char *want2)
{
    char dummy;
    lim_db_t *db = (lim_db_t *)(void *)&dummy; /* must become NULL */
    char err[512] = "";
    int rc = readonly ? lim_db_open_readonly(path, &db, err, sizeof err)
                      : lim_db_open(path, 0, &db, err, sizeof err);
    assert_int_equal(rc, LIM_DB_ERROR);
    assert_null(db);
    if (!strstr(err, want1) || (want2 && !strstr(err, want2)))
        fail_msg("open(%s%s): \"%s\" lacks \"%s\" / \"%s\"", path, readonly ? ", ro" : "", err,
                 want1, want2 ? want2 : "");
}

static void test_open_errors(void **state)
{
    (void)state;
    char path[256], dir[128];

    /* a directory */
    expect_open_error(tmpdir, false, tmpdir, "is a directory");
    expect_open_error(tmpdir, true, tmpdir, "is a directory");

    /* a missing directory */
    tpath(dir, sizeof dir, "no-such-dir");
    snprintf(path, sizeof path, "%s/usage.db", dir);
    expect_open_error(path, false, dir, "does not exist");
    assert_int_equal(access(dir, F_OK), -1);

    /* a missing file, read-only: not created */
    tpath(path, sizeof path, "missing.db");
    expect_open_error(path, true, path, "no such file");
    assert_int_equal(access(path, F_OK), -1);

    /* not a database (long and short): refused, left untouched */
    char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)("this is not a database\n"[i % 23]);
    tpath(path, sizeof path, "junk.txt");
    write_file(path, junk, sizeof junk);
    expect_open_error(path, false, path, "not a SQLite database");
    expect_open_error(path, true, path, "not a SQLite database");
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, sizeof junk);
    char back[sizeof junk];
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, back, sizeof back), (ssize_t)sizeof back);
    close(fd);
    assert_memory_equal(back, junk, sizeof junk);
    tpath(path, sizeof path, "short.txt");
    write_file(path, "hello\n", 6);
    expect_open_error(path, false, path, "not a SQLite database");

    /* an empty file read-only: no schema */
    tpath(path, sizeof path, "empty.db");
    write_file(path, "", 0);
    expect_open_error(path, true, path, "not a cdeguard usage database");

    /* another program's database */
    tpath(path, sizeof path, "other.db");
    sql_exec(path, "CREATE TABLE notes (body TEXT)");
    expect_open_error(path, false, path, "another program");
    assert_int_equal(sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name='counters'"), 0);

    /* a newer schema: refused by both opens, left as it was */
    tpath(path, sizeof path, "newer.db");
    lim_db_close(open_rw(path, 0));
    assert_int_equal(sql_int(path, "SELECT version FROM schema_version"), LIM_DB_SCHEMA_VERSION);
    sql_exec(path, "UPDATE schema_version SET version = 99");
    expect_open_error(path, false, path, "newer cdeguard");
    expect_open_error(path, true, path, "schema version 99");
    assert_int_equal(sql_int(path, "SELECT version FROM schema_version"), 99);
}

/* A real write failure that root cannot override: the file size limit
 * (RLIMIT_FSIZE 0: every write to the WAL fails with EFBIG). */
static int flush_with_no_file_size(lim_db_t *db, char *err, size_t errlen)
{
    struct rlimit old, none;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    none = (struct rlimit){0, old.rlim_max};
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &none), 0);
    int rc = lim_db_flush(db, err, errlen);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, oldsig);
    return rc;
}

static void test_write_failure_keeps_pending(void **state)
{
    (void)state;
    char path[128];
    tpath(path, sizeof path, "fail.db");
    lim_db_t *db = open_rw(path, 0);
    lim_usage_row_t r1 = mkrow(H0, "ws-f", "", "m", 1, 10, 0);
    lim_db_add_usage(db, &r1);
    lim_db_put_counter(db, "team:f", 1, 1, H0, H0 + 86400, 5);
    flush_ok(db);
    assert_false(lim_db_last_error(db, NULL, 0));

    lim_usage_row_t r2 = mkrow(H0, "ws-f", "", "m", 2, 20, 0);
    lim_db_add_usage(db, &r2);
    lim_db_put_counter(db, "team:f", 1, 1, H0, H0 + 86400, 6);
    lim_db_put_override(db, "team:f", "o1");
    char err[512] = "";
    assert_int_equal(flush_with_no_file_size(db, err, sizeof err), LIM_DB_ERROR);
    assert_non_null(strstr(err, path));
    char last[512] = "";
    assert_true(lim_db_last_error(db, last, sizeof last));
    assert_string_equal(last, err);
    lim_db_stats_t s;
    lim_db_stats(db, &s);
    assert_int_equal(s.flush_failures, 1);
    assert_int_equal(s.flushes, 1);
    assert_int_equal(s.pending, 3);

    /* nothing of it reached the file, all of it is still seen */
    assert_int_equal(sql_int(path, "SELECT requests FROM usage_hourly"), 1);
    assert_int_equal(sql_int(path, "SELECT used FROM counters"), 5);
    ulist_t *u = query(db, H0, H0 + 3600);
    assert_int_equal(u->n, 1);
    assert_int_equal(u->v[0].requests, 3);
    free(u);

    /* newer values since the failure win, usage is summed */
    lim_usage_row_t r3 = mkrow(H0, "ws-f", "", "m", 4, 40, 0);
    lim_db_add_usage(db, &r3);
    lim_db_put_counter(db, "team:f", 1, 1, H0, H0 + 86400, 8);
    flush_ok(db);
    assert_false(lim_db_last_error(db, last, sizeof last));
    lim_db_stats(db, &s);
    assert_int_equal(s.flush_failures, 1);
    assert_int_equal(s.pending, 0);
    lim_db_close(db);

    db = open_ro(path);
    u = query(db, H0, H0 + 3600);
    assert_int_equal(u->n, 1);
    assert_int_equal(u->v[0].requests, 7);
    assert_int_equal(u->v[0].input, 70);
    free(u);
    clist_t *c = load_counters(db, H0);
    assert_int_equal(c->n, 1);
    assert_int_equal(c->v[0].used, 8);
    free(c);
    olist_t o;
    load_overrides(db, &o);
    assert_string_equal(override_of(&o, "team:f"), "o1");
    lim_db_close(db);
}

/* ---- prune ---------------------------------------------------------------- */

static void test_prune(void **state)
{
    (void)state;
    char path[128];
    tpath(path, sizeof path, "prune.db");
    lim_db_t *db = open_rw(path, 0);
    lim_db_put_counter(db, "s", 0, 0, 0, 100, 1);
    lim_db_put_counter(db, "s", 0, 0, 100, 200, 2);
    lim_db_put_counter(db, "s", 0, 0, 200, 300, 3);
    for (int i = 0; i < 3; i++) {
        lim_usage_row_t r = mkrow(H0 + 3600 * i, "ws", "", "m", 1, 0, 0);
        lim_db_add_usage(db, &r);
    }
    flush_ok(db);
    char err[512] = "";
    /* windows ended at 200 (end <= 200) and hours before H0 + 3600 */
    assert_int_equal(lim_db_prune(db, 200, H0 + 3600, err, sizeof err), 3);
    clist_t *c = load_counters(db, 0);
    assert_int_equal(c->n, 1);
    assert_int_equal(c->v[0].end, 300);
    free(c);
    ulist_t *u = query(db, 0, INT64_MAX);
    assert_int_equal(u->n, 2);
    assert_null(find_row(u, H0, "ws", "", "m"));
    free(u);
    assert_int_equal(lim_db_prune(db, 200, H0 + 3600, err, sizeof err), 0);
    assert_int_equal(lim_db_prune(db, INT64_MAX, INT64_MAX, err, sizeof err), 3);
    assert_int_equal(sql_int(path, "SELECT count(*) FROM usage_hourly"), 0);
    lim_db_close(db);
}

/* ---- threads -------------------------------------------------------------- */

#define NTHREADS 4
#define NADDS 20000

typedef struct worker_arg {
    lim_db_t *db;
    int id;
} worker_arg_t;

static void *adder(void *p)
{
    worker_arg_t *a = p;
    char scope[32];
    snprintf(scope, sizeof scope, "worker:%d", a->id);
    for (int i = 0; i < NADDS; i++) {
        char ws[16];
        snprintf(ws, sizeof ws, "ws-%d", i % 8);
        lim_usage_row_t r = mkrow(H0 + 3600 * (i % 2), ws, "", "m", 1, 2, 3);
        lim_db_add_usage(a->db, &r);
        lim_db_put_counter(a->db, scope, 0, 0, H0, H0 + 60, (uint64_t)i + 1);
    }
    return NULL;
}

static int sum_requests(void *ctx, const lim_usage_row_t *row)
{
    *(uint64_t *)ctx += row->requests;
    return 0;
}

typedef struct reader_arg {
    lim_db_t *db;
    int errors; /* cmocka asserts belong to the main thread */
} reader_arg_t;

static void *reader(void *p)
{
    reader_arg_t *a = p;
    uint64_t last = 0;
    for (int i = 0; i < 200; i++) {
        uint64_t total = 0;
        char err[512] = "";
        if (lim_db_query_usage(a->db, 0, INT64_MAX, sum_requests, &total, err, sizeof err) !=
                LIM_DB_OK ||
            total < last) /* usage never goes backwards */
            a->errors++;
        last = total;
    }
    return NULL;
}

static void test_concurrent_writers_and_readers(void **state)
{
    (void)state;
    char path[128];
    tpath(path, sizeof path, "threads.db");
    lim_db_t *db = open_rw(path, 1);
    pthread_t t[NTHREADS + 1];
    worker_arg_t args[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        args[i] = (worker_arg_t){db, i};
        assert_int_equal(pthread_create(&t[i], NULL, adder, &args[i]), 0);
    }
    reader_arg_t ra = {db, 0};
    assert_int_equal(pthread_create(&t[NTHREADS], NULL, reader, &ra), 0);
    for (int i = 0; i <= NTHREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(ra.errors, 0);
    lim_db_close(db);

    db = open_ro(path);
    uint64_t total = 0;
    char err[512] = "";
    assert_int_equal(lim_db_query_usage(db, 0, INT64_MAX, sum_requests, &total, err, sizeof err),
                     LIM_DB_OK);
    assert_int_equal(total, NTHREADS * NADDS);
    ulist_t *u = query(db, 0, INT64_MAX);
    assert_int_equal(u->n, 8); /* ws-0..7, each always in the same hour */
    free(u);
    clist_t *c = load_counters(db, H0);
    assert_int_equal(c->n, NTHREADS);
    for (size_t i = 0; i < c->n; i++)
        assert_int_equal(c->v[i].used, NADDS);
    free(c);
    lim_db_close(db);
}

/* ---- main ----------------------------------------------------------------- */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cdeguard-usage-db-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_latest_value_open_windows),
        cmocka_unit_test(test_usage_summed_and_ranges),
        cmocka_unit_test(test_pending_visible_before_flush),
        cmocka_unit_test(test_overrides_put_replace_delete),
        cmocka_unit_test(test_usage_survives_restart),
        cmocka_unit_test(test_readonly_sees_running_writer),
        cmocka_unit_test(test_writer_thread_flushes_by_itself),
        cmocka_unit_test(test_close_flushes_pending_promptly),
        cmocka_unit_test(test_many_pending_wake_the_writer),
        cmocka_unit_test(test_pending_is_bounded),
        cmocka_unit_test(test_rejected_input),
        cmocka_unit_test(test_callback_stops_the_read),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_write_failure_keeps_pending),
        cmocka_unit_test(test_prune),
        cmocka_unit_test(test_concurrent_writers_and_readers),
    };
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
