/*
 * usage_db — the embedded store of limits: SQLite in WAL mode, writes
 * batched by a writer thread (see usage_db.h).
 *
 * Two mutexes.  pend_mu guards the pending map (three chained hash tables:
 * counters, usage, overrides), the entry counts, the stats, the last error
 * and the writer's wake/stop flags (the writer's condition variable waits
 * on it).  db_mu owns the SQLite connection and its prepared statements.
 * Lock order: db_mu, then pend_mu; the hot path takes pend_mu only and
 * never holds it across a disk access or a callback.
 *
 * A flush holds db_mu throughout: it moves the three tables out under
 * pend_mu (the hot path then fills fresh ones), writes them in one
 * transaction, and on an error merges them back under pend_mu.  A read also
 * holds db_mu, so it never runs while a batch is in flight: stored plus
 * pending is the whole picture.  A read merges each stored row with the
 * pending entry of the same key, marking that entry with the read's serial
 * number; then it reports the unmarked pending entries in chunks copied
 * under pend_mu, so that callbacks run without it.  A table only grows
 * (doubling) while a read holds db_mu, so a read can resume its scan at a
 * bucket index: entries of buckets not yet scanned move to buckets at or
 * after it.
 *
 * Entry keys are bytes: a counter "<scope>\0" + metric + period + window
 * start (native byte order: the map lives in memory only); a usage row its
 * hour + the six dimensions, each with its NUL; an override "<scope>\0".
 * They are hashed with SipHash-1-3 under a random key, since scopes and
 * agent names come from clients.
 */
#include "limits/usage_db.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "limits/ledger.h"

_Static_assert(LIM_DB_SCOPE_MAX >= LIM_SCOPE_KEY_MAX, "every ledger scope key can be stored");

#define NDIMS 6    /* workspace, team, project, agent, provider, model */
#define NAMOUNTS 6 /* requests, input, output, cache_read, cache_write, cost_nano */
#define CHUNK 32   /* pending entries copied per lock when a read reports them */
#define COUNTER_KEY_MAX (LIM_DB_SCOPE_MAX + 2 * sizeof(int) + sizeof(int64_t))
#define USAGE_KEY_MAX (sizeof(int64_t) + NDIMS * LIM_DIM_MAX)
#define I64_MAX_SQL "9223372036854775807"
#define XSTR(x) #x
#define STR(x) XSTR(x)

enum { K_COUNTER = 0, K_USAGE = 1, K_OVERRIDE = 2, NKINDS = 3 };

typedef struct pent {
    struct pent *next; /* hash chain */
    uint64_t hash;
    uint64_t seen; /* serial of the read that has reported it */
    union {
        struct {
            int64_t end;
            uint64_t used;
        } c;                  /* counter */
        uint64_t u[NAMOUNTS]; /* usage amounts */
        char *text;           /* override (owned); NULL: delete */
    } v;
    size_t klen;
    unsigned char key[];
} pent_t;

/* nb is 0 (no buckets yet) or a power of two. */
typedef struct ptab {
    pent_t **b;
    size_t nb, n;
} ptab_t;

enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_PUT_COUNTER,
    ST_ADD_USAGE,
    ST_PUT_OVERRIDE,
    ST_DEL_OVERRIDE,
    ST_PRUNE_COUNTERS,
    ST_PRUNE_USAGE,
    ST_FIRST_READ, /* statements from here on are prepared on read-only handles too */
    ST_LOAD_COUNTERS = ST_FIRST_READ,
    ST_QUERY_USAGE,
    ST_LOAD_OVERRIDES,
    ST_COUNT
};

#define SAT_ADD(c)                                                                                 \
    c " = CASE WHEN " c " > " I64_MAX_SQL " - excluded." c " THEN " I64_MAX_SQL " ELSE " c         \
      " + excluded." c " END"

static const char *const sql_text[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_PUT_COUNTER] =
        "INSERT INTO counters (scope, metric, period, window_start, window_end, used)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        " ON CONFLICT (scope, metric, period, window_start) DO UPDATE SET"
        " window_end = excluded.window_end, used = excluded.used",
    /* clang-format off */
    [ST_ADD_USAGE] =
        "INSERT INTO usage_hourly (hour, workspace, team, project, agent, provider,"
        " model, requests, input, output, cache_read, cache_write, cost_nano)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
        " ON CONFLICT (hour, workspace, team, project, agent, provider, model) DO UPDATE SET "
        SAT_ADD("requests") ", "
        SAT_ADD("input") ", "
        SAT_ADD("output") ", "
        SAT_ADD("cache_read") ", "
        SAT_ADD("cache_write") ", "
        SAT_ADD("cost_nano"),
    /* clang-format on */
    [ST_PUT_OVERRIDE] = "INSERT INTO overrides (scope, text) VALUES (?1, ?2)"
                        " ON CONFLICT (scope) DO UPDATE SET text = excluded.text",
    [ST_DEL_OVERRIDE] = "DELETE FROM overrides WHERE scope = ?1",
    [ST_PRUNE_COUNTERS] = "DELETE FROM counters WHERE window_end <= ?1",
    [ST_PRUNE_USAGE] = "DELETE FROM usage_hourly WHERE hour < ?1",
    [ST_LOAD_COUNTERS] = "SELECT scope, metric, period, window_start, window_end, used"
                         " FROM counters WHERE window_end > ?1",
    [ST_QUERY_USAGE] = "SELECT hour, workspace, team, project, agent, provider, model, requests,"
                       " input, output, cache_read, cache_write, cost_nano FROM usage_hourly"
                       " WHERE hour >= ?1 AND hour < ?2 ORDER BY hour",
    [ST_LOAD_OVERRIDES] = "SELECT scope, text FROM overrides ORDER BY scope",
};

/* Run inside one transaction by lim_db_open (IF NOT EXISTS: also on an
 * existing file, to complete it). */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS counters ("
    " scope TEXT NOT NULL, metric INTEGER NOT NULL, period INTEGER NOT NULL,"
    " window_start INTEGER NOT NULL, window_end INTEGER NOT NULL, used INTEGER NOT NULL,"
    " PRIMARY KEY (scope, metric, period, window_start)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS counters_by_end ON counters (window_end);"
    "CREATE TABLE IF NOT EXISTS usage_hourly ("
    " hour INTEGER NOT NULL, workspace TEXT NOT NULL, team TEXT NOT NULL,"
    " project TEXT NOT NULL, agent TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,"
    " requests INTEGER NOT NULL, input INTEGER NOT NULL, output INTEGER NOT NULL,"
    " cache_read INTEGER NOT NULL, cache_write INTEGER NOT NULL, cost_nano INTEGER NOT NULL,"
    " PRIMARY KEY (hour, workspace, team, project, agent, provider, model)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS overrides ("
    " scope TEXT NOT NULL PRIMARY KEY, text TEXT NOT NULL) WITHOUT ROWID;"
    "INSERT INTO schema_version (version)"
    " SELECT " STR(LIM_DB_SCHEMA_VERSION) " WHERE NOT EXISTS (SELECT 1 FROM schema_version);";

struct lim_db {
    char *path;
    bool readonly;

    pthread_mutex_t db_mu; /* owns conn and st[]; serial */
    sqlite3 *conn;
    sqlite3_stmt *st[ST_COUNT];
    uint64_t serial; /* of reads */

    pthread_mutex_t pend_mu; /* everything below */
    pthread_cond_t cv;       /* the writer waits here */
    ptab_t tab[NKINDS];
    size_t npending, ninflight;
    bool wake, stop;
    uint64_t flushes, failures, rejected, dropped;
    bool has_err;
    char last_err[256];

    bool has_writer;
    pthread_t writer;
    uint64_t interval_ms;
    uint64_t hkey[2]; /* SipHash key */
};

/* ------------------------------------------------------------------ */
/* small helpers                                                        */

__attribute__((format(printf, 3, 4))) static void seterr(char *err, size_t errlen, const char *fmt,
                                                         ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    const uint64_t max = (uint64_t)INT64_MAX;
    return a > max || b > max - a ? max : a + b;
}

static int64_t clamp_i64(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

static uint64_t col_u64(sqlite3_stmt *st, int i)
{
    int64_t v = sqlite3_column_int64(st, i);
    return v < 0 ? 0 : (uint64_t)v;
}

/* A text column into dst[cap]; false when NULL or too long (a row this
 * module cannot have written). */
static bool col_text(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    if (!s || n < 0 || (size_t)n >= cap) return false;
    memcpy(dst, s, (size_t)n);
    dst[n] = '\0';
    return true;
}

/* Step a statement that returns no rows, then make it ready for reuse. */
static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static void row_amounts(const lim_usage_row_t *r, uint64_t a[NAMOUNTS])
{
    a[0] = r->requests;
    a[1] = r->input;
    a[2] = r->output;
    a[3] = r->cache_read;
    a[4] = r->cache_write;
    a[5] = r->cost_nano;
}

static void set_row_amounts(lim_usage_row_t *r, const uint64_t a[NAMOUNTS])
{
    r->requests = a[0];
    r->input = a[1];
    r->output = a[2];
    r->cache_read = a[3];
    r->cache_write = a[4];
    r->cost_nano = a[5];
}

static const char *row_dim(const lim_usage_row_t *r, int i)
{
    const char *const d[NDIMS] = {r->workspace, r->team,     r->project,
                                  r->agent,     r->provider, r->model};
    return d[i];
}

static char *row_dim_mut(lim_usage_row_t *r, int i)
{
    char *const d[NDIMS] = {r->workspace, r->team, r->project, r->agent, r->provider, r->model};
    return d[i];
}

/* ------------------------------------------------------------------ */
/* keys and hashing                                                     */

static uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = rotl(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = rotl(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = rotl(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = rotl(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = rotl(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = rotl(v2, 32);                                                                         \
    } while (0)

/* SipHash-1-3 (one compression round, three finalisation rounds). */
static uint64_t key_hash(const lim_db_t *db, const unsigned char *in, size_t len)
{
    uint64_t v0 = 0x736f6d6570736575ULL ^ db->hkey[0], v1 = 0x646f72616e646f6dULL ^ db->hkey[1];
    uint64_t v2 = 0x6c7967656e657261ULL ^ db->hkey[0], v3 = 0x7465646279746573ULL ^ db->hkey[1];
    size_t whole = len - len % 8;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m;
        memcpy(&m, in + i, sizeof m);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < len % 8; i++)
        b |= (uint64_t)in[whole + i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* The key of a counter into buf[COUNTER_KEY_MAX]; 0 when the scope is too
 * long. */
static size_t counter_key(unsigned char *buf, const char *scope, int metric, int period,
                          int64_t start)
{
    size_t sl = strnlen(scope, LIM_DB_SCOPE_MAX);
    if (sl >= LIM_DB_SCOPE_MAX) return 0;
    unsigned char *p = buf;
    memcpy(p, scope, sl + 1);
    p += sl + 1;
    memcpy(p, &metric, sizeof metric);
    p += sizeof metric;
    memcpy(p, &period, sizeof period);
    p += sizeof period;
    memcpy(p, &start, sizeof start);
    p += sizeof start;
    return (size_t)(p - buf);
}

static void counter_decode(const pent_t *e, int *metric, int *period, int64_t *start)
{
    const unsigned char *p = e->key + strlen((const char *)e->key) + 1;
    memcpy(metric, p, sizeof *metric);
    p += sizeof *metric;
    memcpy(period, p, sizeof *period);
    p += sizeof *period;
    memcpy(start, p, sizeof *start);
}

/* The key of a usage row into buf[USAGE_KEY_MAX]; 0 when a dimension is
 * not terminated within its array. */
static size_t usage_key(unsigned char *buf, int64_t hour, const lim_usage_row_t *r)
{
    unsigned char *p = buf;
    memcpy(p, &hour, sizeof hour);
    p += sizeof hour;
    for (int i = 0; i < NDIMS; i++) {
        const char *d = row_dim(r, i);
        size_t l = strnlen(d, LIM_DIM_MAX);
        if (l >= LIM_DIM_MAX) return 0;
        memcpy(p, d, l + 1);
        p += l + 1;
    }
    return (size_t)(p - buf);
}

static int64_t usage_hour(const pent_t *e)
{
    int64_t h;
    memcpy(&h, e->key, sizeof h);
    return h;
}

/* The dimensions of a usage entry, in key order. */
static void usage_dims(const pent_t *e, const char *d[NDIMS])
{
    const char *p = (const char *)e->key + sizeof(int64_t);
    for (int i = 0; i < NDIMS; i++) {
        d[i] = p;
        p += strlen(p) + 1;
    }
}

static void usage_decode(const pent_t *e, lim_usage_row_t *r)
{
    const char *d[NDIMS];
    usage_dims(e, d);
    r->hour = usage_hour(e);
    for (int i = 0; i < NDIMS; i++)
        snprintf(row_dim_mut(r, i), LIM_DIM_MAX, "%s", d[i]); /* fits: checked on entry */
    set_row_amounts(r, e->v.u);
}

/* ------------------------------------------------------------------ */
/* the pending map                                                      */

static pent_t *ptab_find(const ptab_t *t, uint64_t h, const unsigned char *key, size_t klen)
{
    if (!t->nb) return NULL;
    for (pent_t *e = t->b[h & (t->nb - 1)]; e; e = e->next)
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0) return e;
    return NULL;
}

static void ptab_grow(ptab_t *t)
{
    size_t nb = t->nb * 2;
    pent_t **b = calloc(nb, sizeof(pent_t *));
    if (!b) return; /* keep the longer chains */
    for (size_t i = 0; i < t->nb; i++) {
        pent_t *e = t->b[i];
        while (e) {
            pent_t *next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    free(t->b);
    t->b = b;
    t->nb = nb;
}

static int ptab_insert(ptab_t *t, pent_t *e)
{
    if (!t->nb) {
        t->b = calloc(64, sizeof(pent_t *));
        if (!t->b) return -1;
        t->nb = 64;
    } else if (t->n + 1 > t->nb / 4 * 3) {
        ptab_grow(t);
    }
    pent_t **head = &t->b[e->hash & (t->nb - 1)];
    e->next = *head;
    *head = e;
    t->n++;
    return 0;
}

static void pent_free(pent_t *e, int kind)
{
    if (kind == K_OVERRIDE) free(e->v.text);
    free(e);
}

static void ptab_clear(ptab_t *t, int kind)
{
    for (size_t i = 0; i < t->nb; i++) {
        pent_t *e = t->b[i];
        while (e) {
            pent_t *next = e->next;
            pent_free(e, kind);
            e = next;
        }
    }
    free(t->b);
    *t = (ptab_t){0};
}

/* A new entry in table `kind` (pend_mu held): NULL, counted as dropped,
 * when pending + in flight is at LIM_DB_PENDING_MAX or memory runs out.
 * Wakes the writer when the map grows past LIM_DB_PENDING_WAKE. */
static pent_t *pent_add(lim_db_t *db, int kind, uint64_t h, const unsigned char *key, size_t klen)
{
    if (db->npending + db->ninflight >= LIM_DB_PENDING_MAX) {
        db->dropped++;
        return NULL;
    }
    pent_t *e = calloc(1, sizeof *e + klen);
    if (!e) {
        db->dropped++;
        return NULL;
    }
    e->hash = h;
    e->klen = klen;
    memcpy(e->key, key, klen);
    if (ptab_insert(&db->tab[kind], e) != 0) {
        free(e);
        db->dropped++;
        return NULL;
    }
    db->npending++;
    if (db->has_writer && db->npending > LIM_DB_PENDING_WAKE && !db->wake) {
        db->wake = true;
        pthread_cond_signal(&db->cv);
    }
    return e;
}

static void count_rejected(lim_db_t *db)
{
    pthread_mutex_lock(&db->pend_mu);
    db->rejected++;
    pthread_mutex_unlock(&db->pend_mu);
}

/* A failed batch back into the pending map (pend_mu held): what was put
 * since is newer (counters, overrides) or is added to (usage). */
static void merge_back(lim_db_t *db, int kind, ptab_t *batch)
{
    ptab_t *t = &db->tab[kind];
    for (size_t i = 0; i < batch->nb; i++) {
        pent_t *e = batch->b[i];
        while (e) {
            pent_t *next = e->next;
            pent_t *p = ptab_find(t, e->hash, e->key, e->klen);
            if (p) {
                if (kind == K_USAGE)
                    for (int k = 0; k < NAMOUNTS; k++)
                        p->v.u[k] = sat_add(p->v.u[k], e->v.u[k]);
                pent_free(e, kind);
            } else if (ptab_insert(t, e) == 0) {
                db->npending++;
            } else {
                pent_free(e, kind);
                db->dropped++;
            }
            e = next;
        }
    }
    free(batch->b);
    *batch = (ptab_t){0};
}

/* ------------------------------------------------------------------ */
/* hot path                                                             */

void lim_db_put_counter(lim_db_t *db, const char *scope, int metric, int period, int64_t start,
                        int64_t end, uint64_t used)
{
    if (!db) return;
    unsigned char key[COUNTER_KEY_MAX];
    size_t klen = 0;
    if (db->readonly || !scope || !(klen = counter_key(key, scope, metric, period, start))) {
        count_rejected(db);
        return;
    }
    uint64_t h = key_hash(db, key, klen);
    pthread_mutex_lock(&db->pend_mu);
    pent_t *e = ptab_find(&db->tab[K_COUNTER], h, key, klen);
    if (!e) e = pent_add(db, K_COUNTER, h, key, klen);
    if (e) {
        e->v.c.end = end;
        e->v.c.used = (uint64_t)clamp_i64(used);
    }
    pthread_mutex_unlock(&db->pend_mu);
}

void lim_db_add_usage(lim_db_t *db, const lim_usage_row_t *row)
{
    if (!db) return;
    unsigned char key[USAGE_KEY_MAX];
    size_t klen = 0;
    if (db->readonly || !row || row->hour < 0 ||
        !(klen = usage_key(key, row->hour - row->hour % 3600, row))) {
        count_rejected(db);
        return;
    }
    uint64_t a[NAMOUNTS];
    row_amounts(row, a);
    uint64_t h = key_hash(db, key, klen);
    pthread_mutex_lock(&db->pend_mu);
    pent_t *e = ptab_find(&db->tab[K_USAGE], h, key, klen);
    if (!e) e = pent_add(db, K_USAGE, h, key, klen);
    if (e)
        for (int i = 0; i < NAMOUNTS; i++)
            e->v.u[i] = sat_add(e->v.u[i], a[i]);
    pthread_mutex_unlock(&db->pend_mu);
}

void lim_db_put_override(lim_db_t *db, const char *scope, const char *text)
{
    if (!db) return;
    size_t sl = scope ? strnlen(scope, LIM_DB_SCOPE_MAX) : LIM_DB_SCOPE_MAX;
    if (db->readonly || sl >= LIM_DB_SCOPE_MAX ||
        (text && strnlen(text, LIM_DB_TEXT_MAX + 1) > LIM_DB_TEXT_MAX)) {
        count_rejected(db);
        return;
    }
    char *copy = NULL;
    if (text && !(copy = strdup(text))) {
        pthread_mutex_lock(&db->pend_mu);
        db->dropped++;
        pthread_mutex_unlock(&db->pend_mu);
        return;
    }
    const unsigned char *key = (const unsigned char *)scope;
    uint64_t h = key_hash(db, key, sl + 1);
    pthread_mutex_lock(&db->pend_mu);
    pent_t *e = ptab_find(&db->tab[K_OVERRIDE], h, key, sl + 1);
    if (!e) e = pent_add(db, K_OVERRIDE, h, key, sl + 1);
    char *old = copy; /* freed below: the replaced text, or ours when nothing was stored */
    if (e) {
        old = e->v.text;
        e->v.text = copy;
    }
    pthread_mutex_unlock(&db->pend_mu);
    free(old);
}

/* ------------------------------------------------------------------ */
/* flushing                                                             */

static void bind_usage(sqlite3_stmt *st, const pent_t *e)
{
    const char *d[NDIMS];
    usage_dims(e, d);
    sqlite3_bind_int64(st, 1, usage_hour(e));
    for (int i = 0; i < NDIMS; i++)
        sqlite3_bind_text(st, 2 + i, d[i], -1, SQLITE_STATIC);
    for (int i = 0; i < NAMOUNTS; i++)
        sqlite3_bind_int64(st, 2 + NDIMS + i, clamp_i64(e->v.u[i]));
}

static int write_entry(lim_db_t *db, int kind, const pent_t *e)
{
    sqlite3_stmt *st;
    if (kind == K_COUNTER) {
        int metric, period;
        int64_t start;
        counter_decode(e, &metric, &period, &start);
        st = db->st[ST_PUT_COUNTER];
        sqlite3_bind_text(st, 1, (const char *)e->key, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, metric);
        sqlite3_bind_int(st, 3, period);
        sqlite3_bind_int64(st, 4, start);
        sqlite3_bind_int64(st, 5, e->v.c.end);
        sqlite3_bind_int64(st, 6, clamp_i64(e->v.c.used));
    } else if (kind == K_USAGE) {
        st = db->st[ST_ADD_USAGE];
        bind_usage(st, e);
    } else if (e->v.text) {
        st = db->st[ST_PUT_OVERRIDE];
        sqlite3_bind_text(st, 1, (const char *)e->key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, e->v.text, -1, SQLITE_STATIC);
    } else {
        st = db->st[ST_DEL_OVERRIDE];
        sqlite3_bind_text(st, 1, (const char *)e->key, -1, SQLITE_STATIC);
    }
    return step_done(st);
}

static int cmp_i64(int64_t a, int64_t b)
{
    return (a > b) - (a < b);
}

/* Primary-key order of each table (text as memcmp, SQLite's BINARY). */
static int cmp_counter(const void *pa, const void *pb)
{
    const pent_t *a = *(const pent_t *const *)pa, *b = *(const pent_t *const *)pb;
    int c = strcmp((const char *)a->key, (const char *)b->key);
    if (c) return c;
    int ma, pa_, mb, pb_;
    int64_t sa, sb;
    counter_decode(a, &ma, &pa_, &sa);
    counter_decode(b, &mb, &pb_, &sb);
    if (ma != mb) return ma < mb ? -1 : 1;
    if (pa_ != pb_) return pa_ < pb_ ? -1 : 1;
    return cmp_i64(sa, sb);
}

static int cmp_usage(const void *pa, const void *pb)
{
    const pent_t *a = *(const pent_t *const *)pa, *b = *(const pent_t *const *)pb;
    int c = cmp_i64(usage_hour(a), usage_hour(b));
    if (c) return c;
    /* NUL-separated strings compare bytewise as the tuple of the strings */
    size_t la = a->klen - sizeof(int64_t), lb = b->klen - sizeof(int64_t);
    c = memcmp(a->key + sizeof(int64_t), b->key + sizeof(int64_t), la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

static int cmp_override(const void *pa, const void *pb)
{
    const pent_t *a = *(const pent_t *const *)pa, *b = *(const pent_t *const *)pb;
    return strcmp((const char *)a->key, (const char *)b->key);
}

/* The entries of a table in primary-key order: B-tree inserts in order
 * are several times faster than in hash order for big batches.  NULL when
 * memory runs out (the batch is then written in hash order). */
static pent_t **sort_entries(const ptab_t *t, int kind)
{
    static int (*const cmp[NKINDS])(const void *, const void *) = {cmp_counter, cmp_usage,
                                                                   cmp_override};
    pent_t **v = malloc(t->n * sizeof(pent_t *));
    if (!v) return NULL;
    size_t n = 0;
    for (size_t i = 0; i < t->nb; i++)
        for (pent_t *e = t->b[i]; e; e = e->next)
            v[n++] = e;
    qsort(v, n, sizeof(pent_t *), cmp[kind]);
    return v;
}

static int write_table(lim_db_t *db, int kind, const ptab_t *t)
{
    if (!t->n) return SQLITE_DONE;
    int rc = SQLITE_DONE;
    pent_t **v = sort_entries(t, kind);
    if (v) {
        for (size_t i = 0; i < t->n && rc == SQLITE_DONE; i++)
            rc = write_entry(db, kind, v[i]);
        free(v);
        return rc;
    }
    for (size_t i = 0; i < t->nb; i++)
        for (const pent_t *e = t->b[i]; e && rc == SQLITE_DONE; e = e->next)
            rc = write_entry(db, kind, e);
    return rc;
}

/* The batch in one transaction (db_mu held). */
static int write_batch(lim_db_t *db, const ptab_t batch[NKINDS], char *e, size_t elen)
{
    static const char *const what[NKINDS] = {"counters", "usage", "overrides"};
    if (step_done(db->st[ST_BEGIN]) != SQLITE_DONE) {
        seterr(e, elen, "%s: write failed (begin): %s", db->path, sqlite3_errmsg(db->conn));
        return LIM_DB_ERROR;
    }
    for (int k = 0; k < NKINDS; k++) {
        if (write_table(db, k, &batch[k]) != SQLITE_DONE) {
            seterr(e, elen, "%s: write failed (%s): %s", db->path, what[k],
                   sqlite3_errmsg(db->conn));
            goto rollback;
        }
    }
    if (step_done(db->st[ST_COMMIT]) != SQLITE_DONE) {
        seterr(e, elen, "%s: write failed (commit): %s", db->path, sqlite3_errmsg(db->conn));
        goto rollback;
    }
    return LIM_DB_OK;
rollback:
    if (!sqlite3_get_autocommit(db->conn)) step_done(db->st[ST_ROLLBACK]);
    return LIM_DB_ERROR;
}

int lim_db_flush(lim_db_t *db, char *err, size_t errlen)
{
    if (!db) {
        seterr(err, errlen, "usage db: not open");
        return LIM_DB_ERROR;
    }
    ptab_t batch[NKINDS];
    pthread_mutex_lock(&db->db_mu);
    pthread_mutex_lock(&db->pend_mu);
    size_t n = db->npending;
    if (n) {
        for (int k = 0; k < NKINDS; k++) {
            batch[k] = db->tab[k];
            db->tab[k] = (ptab_t){0};
        }
        db->ninflight = n;
        db->npending = 0;
    }
    pthread_mutex_unlock(&db->pend_mu);
    if (n == 0) {
        pthread_mutex_unlock(&db->db_mu);
        return LIM_DB_OK;
    }

    char e[sizeof db->last_err];
    int rc = write_batch(db, batch, e, sizeof e);

    pthread_mutex_lock(&db->pend_mu);
    if (rc == LIM_DB_OK) {
        db->flushes++;
        db->has_err = false;
    } else {
        for (int k = 0; k < NKINDS; k++)
            merge_back(db, k, &batch[k]);
        db->failures++;
        db->has_err = true;
        snprintf(db->last_err, sizeof db->last_err, "%s", e);
    }
    db->ninflight = 0;
    pthread_mutex_unlock(&db->pend_mu);
    pthread_mutex_unlock(&db->db_mu);

    for (int k = 0; k < NKINDS; k++)
        ptab_clear(&batch[k], k); /* empty after a merge */
    if (rc != LIM_DB_OK) seterr(err, errlen, "%s", e);
    return rc;
}

bool lim_db_last_error(lim_db_t *db, char *buf, size_t len)
{
    if (!db) return false;
    pthread_mutex_lock(&db->pend_mu);
    bool has = db->has_err;
    if (has && buf && len) snprintf(buf, len, "%s", db->last_err);
    pthread_mutex_unlock(&db->pend_mu);
    return has;
}

void lim_db_stats(lim_db_t *db, lim_db_stats_t *out)
{
    *out = (lim_db_stats_t){0};
    if (!db) return;
    pthread_mutex_lock(&db->pend_mu);
    out->flushes = db->flushes;
    out->flush_failures = db->failures;
    out->rejected = db->rejected;
    out->dropped = db->dropped;
    out->pending = db->npending + db->ninflight;
    pthread_mutex_unlock(&db->pend_mu);
}

/* The writer: a flush every interval, earlier when woken (not after a
 * failed flush: a failing disk is retried once per interval). */
static void *writer_main(void *arg)
{
    lim_db_t *db = arg;
    bool failed = false;
    uint64_t ms = db->interval_ms > 86400000ULL ? 86400000ULL : db->interval_ms;
    pthread_mutex_lock(&db->pend_mu);
    while (!db->stop) {
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += (time_t)(ms / 1000);
        deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        while (!db->stop && (failed || !db->wake))
            if (pthread_cond_timedwait(&db->cv, &db->pend_mu, &deadline) == ETIMEDOUT) break;
        if (db->stop) break;
        db->wake = false;
        pthread_mutex_unlock(&db->pend_mu);
        failed = lim_db_flush(db, NULL, 0) != LIM_DB_OK;
        pthread_mutex_lock(&db->pend_mu);
    }
    pthread_mutex_unlock(&db->pend_mu);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* opening and closing                                                  */

static void db_free(lim_db_t *db)
{
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(db->st[i]);
    if (db->conn) sqlite3_close(db->conn);
    for (int k = 0; k < NKINDS; k++)
        ptab_clear(&db->tab[k], k);
    pthread_cond_destroy(&db->cv);
    pthread_mutex_destroy(&db->pend_mu);
    pthread_mutex_destroy(&db->db_mu);
    free(db->path);
    free(db);
}

static lim_db_t *db_new(const char *path, bool readonly)
{
    lim_db_t *db = calloc(1, sizeof *db);
    if (!db) return NULL;
    if (!(db->path = strdup(path))) {
        free(db);
        return NULL;
    }
    db->readonly = readonly;
    pthread_mutex_init(&db->db_mu, NULL);
    pthread_mutex_init(&db->pend_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&db->cv, &ca);
    pthread_condattr_destroy(&ca);
    db->serial = 1;
    if (getrandom(db->hkey, sizeof db->hkey, GRND_NONBLOCK) != (ssize_t)sizeof db->hkey) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        db->hkey[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)ts.tv_sec;
        db->hkey[1] = (uint64_t)(uintptr_t)db ^ ((uint64_t)getpid() << 32);
    }
    return db;
}

/* What is wrong with the path before SQLite sees it: a directory, a
 * missing file (read-only), a missing or (read-write) unwritable directory:
 * WAL mode creates <path>-wal and <path>-shm next to the file. */
static int check_path(const char *path, bool readonly, char *err, size_t errlen)
{
    struct stat sb;
    if (!path || !*path) {
        seterr(err, errlen, "usage db: no path");
        return -1;
    }
    bool exists = stat(path, &sb) == 0;
    int e = errno;
    if (exists && S_ISDIR(sb.st_mode)) {
        seterr(err, errlen, "%s: is a directory, not a database file", path);
        return -1;
    }
    if (!exists && e == ENOENT && readonly) {
        seterr(err, errlen, "%s: no such file (the daemon creates it)", path);
        return -1;
    }
    if (!exists && e != ENOENT) {
        seterr(err, errlen, "%s: %s", path, strerror(e));
        return -1;
    }
    if (readonly) return 0;
    const char *slash = strrchr(path, '/');
    size_t dl = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    char *dir = slash ? strndup(path, dl) : strdup(".");
    if (!dir) {
        seterr(err, errlen, "%s: out of memory", path);
        return -1;
    }
    int rc = -1;
    if (stat(dir, &sb) != 0) {
        e = errno;
        if (e == ENOENT)
            seterr(err, errlen, "%s: directory %s does not exist", path, dir);
        else
            seterr(err, errlen, "%s: directory %s: %s", path, dir, strerror(e));
    } else if (!S_ISDIR(sb.st_mode)) {
        seterr(err, errlen, "%s: %s is not a directory", path, dir);
    } else if (eaccess(dir, W_OK | X_OK) != 0) {
        e = errno;
        seterr(err, errlen, "%s: directory %s is not writable (%s): the database %s", path, dir,
               strerror(e), exists ? "needs its -wal and -shm files there" : "cannot be created");
    } else {
        rc = 0;
    }
    free(dir);
    return rc;
}

/* An SQLite error while opening, as a message naming the path. */
static void open_error(lim_db_t *db, const char *what, int rc, char *err, size_t errlen)
{
    int sys = db->conn ? sqlite3_system_errno(db->conn) : 0;
    const char *msg = db->conn ? sqlite3_errmsg(db->conn) : sqlite3_errstr(rc);
    if ((rc & 0xff) == SQLITE_NOTADB)
        seterr(err, errlen, "%s: not a SQLite database (%s)", db->path, msg);
    else if ((rc & 0xff) == SQLITE_CORRUPT)
        seterr(err, errlen, "%s: the database is corrupt (%s)", db->path, msg);
    else if (sys == EACCES || sys == EPERM || sys == EROFS)
        seterr(err, errlen, "%s: %s: %s", db->path, what, strerror(sys));
    else
        seterr(err, errlen, "%s: %s: %s", db->path, what, msg);
}

/* The tables of the file: *fresh when it has none of ours (and none at
 * all); an error for a newer schema or another program's database. */
static int check_schema(lim_db_t *db, bool *fresh, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    bool has_version = false, has_other = false;
    int rc = sqlite3_prepare_v2(db->conn, "SELECT name FROM sqlite_master WHERE type = 'table'", -1,
                                &st, NULL);
    if (rc == SQLITE_OK) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *name = (const char *)sqlite3_column_text(st, 0);
            if (!name) continue;
            if (strcmp(name, "schema_version") == 0)
                has_version = true;
            else if (strncmp(name, "sqlite_", 7) != 0)
                has_other = true;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        open_error(db, "cannot read", rc, err, errlen);
        return -1;
    }
    *fresh = !has_version;
    if (!has_version) {
        if (has_other) {
            seterr(err, errlen,
                   "%s: a SQLite database of another program (tables but no schema_version): "
                   "refusing to use it",
                   db->path);
            return -1;
        }
        return 0;
    }
    st = NULL;
    sqlite3_int64 v = 0;
    bool none = true;
    rc = sqlite3_prepare_v2(db->conn, "SELECT max(version) FROM schema_version", -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        none = sqlite3_column_type(st, 0) == SQLITE_NULL;
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) {
        open_error(db, "cannot read the schema version", rc, err, errlen);
        return -1;
    }
    if (none) {
        *fresh = true; /* an empty version table: completed by create_schema */
        return 0;
    }
    if (v > LIM_DB_SCHEMA_VERSION) {
        seterr(err, errlen,
               "%s: written by a newer cdeguard (schema version %lld; this build knows versions "
               "up to %d): refusing to use it",
               db->path, (long long)v, LIM_DB_SCHEMA_VERSION);
        return -1;
    }
    if (v < 1) {
        seterr(err, errlen, "%s: bad schema version %lld", db->path, (long long)v);
        return -1;
    }
    return 0;
}

static int prepare_all(lim_db_t *db, char *err, size_t errlen)
{
    for (int i = db->readonly ? ST_FIRST_READ : 0; i < ST_COUNT; i++) {
        int rc = sqlite3_prepare_v3(db->conn, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT,
                                    &db->st[i], NULL);
        if (rc != SQLITE_OK) {
            open_error(db, "cannot prepare a statement", rc, err, errlen);
            return -1;
        }
    }
    return 0;
}

static int open_conn(lim_db_t *db, int flags, char *err, size_t errlen)
{
    if (!sqlite3_threadsafe()) {
        seterr(err, errlen, "%s: SQLite was built without thread support", db->path);
        return -1;
    }
    int rc = sqlite3_open_v2(db->path, &db->conn, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        open_error(db, "cannot open", rc, err, errlen);
        return -1;
    }
    sqlite3_extended_result_codes(db->conn, 1);
    sqlite3_busy_timeout(db->conn, LIM_DB_BUSY_TIMEOUT_MS);
    return 0;
}

static int set_wal(lim_db_t *db, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->conn, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    char mode[16] = "";
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *m = (const char *)sqlite3_column_text(st, 0);
        snprintf(mode, sizeof mode, "%s", m ? m : "");
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) {
        open_error(db, "cannot switch to WAL mode", rc, err, errlen);
        return -1;
    }
    if (strcmp(mode, "wal") != 0) {
        seterr(err, errlen, "%s: cannot use WAL mode (journal mode stays %s)", db->path, mode);
        return -1;
    }
    rc = sqlite3_exec(db->conn, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        open_error(db, "cannot set synchronous=NORMAL", rc, err, errlen);
        return -1;
    }
    return 0;
}

static int create_schema(lim_db_t *db, char *err, size_t errlen)
{
    int rc = sqlite3_exec(db->conn, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db->conn, schema_sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db->conn, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        open_error(db, "cannot create the tables", rc, err, errlen);
        if (!sqlite3_get_autocommit(db->conn)) sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

static int start_writer(lim_db_t *db, char *err, size_t errlen)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* signals go to the daemon's threads */
    int rc = pthread_create(&db->writer, NULL, writer_main, db);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        seterr(err, errlen, "%s: cannot start the writer thread: %s", db->path, strerror(rc));
        return -1;
    }
    pthread_setname_np(db->writer, "lim-db-writer");
    db->has_writer = true;
    return 0;
}

int lim_db_open(const char *path, uint64_t flush_interval_ms, lim_db_t **out, char *err,
                size_t errlen)
{
    *out = NULL;
    if (check_path(path, false, err, errlen) != 0) return LIM_DB_ERROR;
    lim_db_t *db = db_new(path, false);
    if (!db) {
        seterr(err, errlen, "%s: out of memory", path);
        return LIM_DB_ERROR;
    }
    db->interval_ms = flush_interval_ms;
    bool fresh = false;
    if (open_conn(db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, err, errlen) != 0) goto fail;
    if (sqlite3_db_readonly(db->conn, "main") == 1) {
        seterr(err, errlen, "%s: permission denied (the file can be read, not written)", path);
        goto fail;
    }
    if (check_schema(db, &fresh, err, errlen) != 0 || set_wal(db, err, errlen) != 0 ||
        create_schema(db, err, errlen) != 0 || prepare_all(db, err, errlen) != 0)
        goto fail;
    if (flush_interval_ms > 0 && start_writer(db, err, errlen) != 0) goto fail;
    *out = db;
    return LIM_DB_OK;
fail:
    db_free(db);
    return LIM_DB_ERROR;
}

int lim_db_open_readonly(const char *path, lim_db_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (check_path(path, true, err, errlen) != 0) return LIM_DB_ERROR;
    lim_db_t *db = db_new(path, true);
    if (!db) {
        seterr(err, errlen, "%s: out of memory", path);
        return LIM_DB_ERROR;
    }
    bool fresh = false;
    if (open_conn(db, SQLITE_OPEN_READONLY, err, errlen) != 0 ||
        check_schema(db, &fresh, err, errlen) != 0)
        goto fail;
    if (fresh) {
        seterr(err, errlen, "%s: not a cdeguard usage database (no schema version)", path);
        goto fail;
    }
    if (prepare_all(db, err, errlen) != 0) goto fail;
    *out = db;
    return LIM_DB_OK;
fail:
    db_free(db);
    return LIM_DB_ERROR;
}

void lim_db_close(lim_db_t *db)
{
    if (!db) return;
    if (db->has_writer) {
        pthread_mutex_lock(&db->pend_mu);
        db->stop = true;
        pthread_cond_signal(&db->cv);
        pthread_mutex_unlock(&db->pend_mu);
        pthread_join(db->writer, NULL);
        db->has_writer = false;
    }
    lim_db_flush(db, NULL, 0);
    db_free(db);
}

/* ------------------------------------------------------------------ */
/* reading                                                              */

/* Copy entry e into slot i of the caller's chunk when the read wants it. */
typedef bool (*take_fn)(void *arg, const pent_t *e, size_t i);

/* Up to max entries of t not yet reported by read `serial` that take()
 * accepts, marked as reported; the scan resumes at bucket *pos (pend_mu
 * held).  The scan is over when *pos reaches t->nb. */
static size_t take_unseen(ptab_t *t, size_t *pos, uint64_t serial, size_t max, take_fn take,
                          void *arg)
{
    size_t k = 0;
    for (; *pos < t->nb; (*pos)++) {
        for (pent_t *e = t->b[*pos]; e; e = e->next) {
            if (e->seen == serial) continue;
            if (k == max) return k;
            if (take(arg, e, k)) {
                e->seen = serial;
                k++;
            }
        }
    }
    return k;
}

typedef struct ccopy {
    char scope[LIM_DB_SCOPE_MAX];
    int metric, period;
    int64_t start, end;
    uint64_t used;
} ccopy_t;

typedef struct ctake {
    int64_t now;
    ccopy_t *out;
} ctake_t;

static bool take_counter(void *arg, const pent_t *e, size_t i)
{
    ctake_t *c = arg;
    if (e->v.c.end <= c->now) return false;
    ccopy_t *o = &c->out[i];
    snprintf(o->scope, sizeof o->scope, "%s", (const char *)e->key);
    counter_decode(e, &o->metric, &o->period, &o->start);
    o->end = e->v.c.end;
    o->used = e->v.c.used;
    return true;
}

static void read_error(lim_db_t *db, const char *what, char *err, size_t errlen)
{
    seterr(err, errlen, "%s: %s: %s", db->path, what, sqlite3_errmsg(db->conn));
}

int lim_db_load_counters(lim_db_t *db, int64_t now, lim_db_counter_fn fn, void *ctx, char *err,
                         size_t errlen)
{
    if (!db || !fn) {
        seterr(err, errlen, "usage db: bad arguments");
        return LIM_DB_ERROR;
    }
    ccopy_t *chunk = malloc(CHUNK * sizeof *chunk);
    if (!chunk) {
        seterr(err, errlen, "%s: out of memory", db->path);
        return LIM_DB_ERROR;
    }
    int ret = LIM_DB_OK;
    bool stop = false;
    pthread_mutex_lock(&db->db_mu);
    uint64_t serial = ++db->serial;
    sqlite3_stmt *st = db->st[ST_LOAD_COUNTERS];
    sqlite3_bind_int64(st, 1, now);
    int rc = SQLITE_DONE;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        ccopy_t c;
        if (!col_text(st, 0, c.scope, sizeof c.scope)) continue;
        c.metric = sqlite3_column_int(st, 1);
        c.period = sqlite3_column_int(st, 2);
        c.start = sqlite3_column_int64(st, 3);
        c.end = sqlite3_column_int64(st, 4);
        c.used = col_u64(st, 5);
        unsigned char key[COUNTER_KEY_MAX];
        size_t klen = counter_key(key, c.scope, c.metric, c.period, c.start);
        uint64_t h = key_hash(db, key, klen);
        pthread_mutex_lock(&db->pend_mu);
        pent_t *e = ptab_find(&db->tab[K_COUNTER], h, key, klen);
        if (e) {
            e->seen = serial;
            c.end = e->v.c.end;
            c.used = e->v.c.used;
        }
        pthread_mutex_unlock(&db->pend_mu);
        if (c.end > now && fn(ctx, c.scope, c.metric, c.period, c.start, c.end, c.used))
            stop = true;
    }
    if (!stop && rc != SQLITE_DONE) {
        read_error(db, "cannot read the counters", err, errlen);
        ret = LIM_DB_ERROR;
    }
    sqlite3_reset(st);
    ctake_t ct = {now, chunk};
    for (size_t pos = 0; ret == LIM_DB_OK && !stop;) {
        pthread_mutex_lock(&db->pend_mu);
        size_t k = take_unseen(&db->tab[K_COUNTER], &pos, serial, CHUNK, take_counter, &ct);
        bool done = pos >= db->tab[K_COUNTER].nb;
        pthread_mutex_unlock(&db->pend_mu);
        for (size_t i = 0; i < k && !stop; i++) {
            const ccopy_t *c = &chunk[i];
            if (fn(ctx, c->scope, c->metric, c->period, c->start, c->end, c->used)) stop = true;
        }
        if (done) break;
    }
    pthread_mutex_unlock(&db->db_mu);
    free(chunk);
    return ret;
}

typedef struct utake {
    int64_t since, until;
    lim_usage_row_t *out;
} utake_t;

static bool take_usage(void *arg, const pent_t *e, size_t i)
{
    utake_t *u = arg;
    int64_t h = usage_hour(e);
    if (h < u->since || h >= u->until) return false;
    usage_decode(e, &u->out[i]);
    return true;
}

int lim_db_query_usage(lim_db_t *db, int64_t since, int64_t until, lim_db_row_fn fn, void *ctx,
                       char *err, size_t errlen)
{
    if (!db || !fn) {
        seterr(err, errlen, "usage db: bad arguments");
        return LIM_DB_ERROR;
    }
    lim_usage_row_t *chunk = malloc(CHUNK * sizeof *chunk);
    if (!chunk) {
        seterr(err, errlen, "%s: out of memory", db->path);
        return LIM_DB_ERROR;
    }
    int ret = LIM_DB_OK;
    bool stop = false;
    pthread_mutex_lock(&db->db_mu);
    uint64_t serial = ++db->serial;
    sqlite3_stmt *st = db->st[ST_QUERY_USAGE];
    sqlite3_bind_int64(st, 1, since);
    sqlite3_bind_int64(st, 2, until);
    int rc = SQLITE_DONE;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        lim_usage_row_t *r = &chunk[0];
        r->hour = sqlite3_column_int64(st, 0);
        bool ok = true;
        for (int i = 0; i < NDIMS && ok; i++)
            ok = col_text(st, 1 + i, row_dim_mut(r, i), LIM_DIM_MAX);
        if (!ok) continue;
        uint64_t a[NAMOUNTS];
        for (int i = 0; i < NAMOUNTS; i++)
            a[i] = col_u64(st, 1 + NDIMS + i);
        unsigned char key[USAGE_KEY_MAX];
        size_t klen = usage_key(key, r->hour, r);
        uint64_t h = key_hash(db, key, klen);
        pthread_mutex_lock(&db->pend_mu);
        pent_t *e = ptab_find(&db->tab[K_USAGE], h, key, klen);
        if (e) {
            e->seen = serial;
            for (int i = 0; i < NAMOUNTS; i++)
                a[i] = sat_add(a[i], e->v.u[i]);
        }
        pthread_mutex_unlock(&db->pend_mu);
        set_row_amounts(r, a);
        if (fn(ctx, r)) stop = true;
    }
    if (!stop && rc != SQLITE_DONE) {
        read_error(db, "cannot read the usage rows", err, errlen);
        ret = LIM_DB_ERROR;
    }
    sqlite3_reset(st);
    utake_t ut = {since, until, chunk};
    for (size_t pos = 0; ret == LIM_DB_OK && !stop;) {
        pthread_mutex_lock(&db->pend_mu);
        size_t k = take_unseen(&db->tab[K_USAGE], &pos, serial, CHUNK, take_usage, &ut);
        bool done = pos >= db->tab[K_USAGE].nb;
        pthread_mutex_unlock(&db->pend_mu);
        for (size_t i = 0; i < k && !stop; i++)
            if (fn(ctx, &chunk[i])) stop = true;
        if (done) break;
    }
    pthread_mutex_unlock(&db->db_mu);
    free(chunk);
    return ret;
}

typedef struct ocopy {
    char scope[LIM_DB_SCOPE_MAX];
    char *text;
} ocopy_t;

typedef struct otake {
    ocopy_t *out;
    bool oom;
} otake_t;

static bool take_override(void *arg, const pent_t *e, size_t i)
{
    otake_t *o = arg;
    if (!e->v.text || o->oom) return false;
    char *t = strdup(e->v.text);
    if (!t) {
        o->oom = true;
        return false;
    }
    snprintf(o->out[i].scope, sizeof o->out[i].scope, "%s", (const char *)e->key);
    o->out[i].text = t;
    return true;
}

int lim_db_load_overrides(lim_db_t *db, lim_db_override_fn fn, void *ctx, char *err, size_t errlen)
{
    if (!db || !fn) {
        seterr(err, errlen, "usage db: bad arguments");
        return LIM_DB_ERROR;
    }
    ocopy_t *chunk = calloc(CHUNK, sizeof *chunk);
    if (!chunk) {
        seterr(err, errlen, "%s: out of memory", db->path);
        return LIM_DB_ERROR;
    }
    int ret = LIM_DB_OK;
    bool stop = false;
    pthread_mutex_lock(&db->db_mu);
    uint64_t serial = ++db->serial;
    sqlite3_stmt *st = db->st[ST_LOAD_OVERRIDES];
    int rc = SQLITE_DONE;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        char scope[LIM_DB_SCOPE_MAX];
        const char *text = (const char *)sqlite3_column_text(st, 1);
        if (!col_text(st, 0, scope, sizeof scope) || !text) continue;
        size_t sl = strlen(scope);
        uint64_t h = key_hash(db, (const unsigned char *)scope, sl + 1);
        char *pending = NULL;
        bool deleted = false, oom = false;
        pthread_mutex_lock(&db->pend_mu);
        pent_t *e = ptab_find(&db->tab[K_OVERRIDE], h, (const unsigned char *)scope, sl + 1);
        if (e) {
            e->seen = serial;
            deleted = !e->v.text;
            if (!deleted) oom = !(pending = strdup(e->v.text));
        }
        pthread_mutex_unlock(&db->pend_mu);
        if (oom) {
            seterr(err, errlen, "%s: out of memory", db->path);
            ret = LIM_DB_ERROR;
            break;
        }
        if (!deleted && fn(ctx, scope, pending ? pending : text)) stop = true;
        free(pending);
    }
    if (ret == LIM_DB_OK && !stop && rc != SQLITE_DONE) {
        read_error(db, "cannot read the overrides", err, errlen);
        ret = LIM_DB_ERROR;
    }
    sqlite3_reset(st);
    otake_t ot = {chunk, false};
    for (size_t pos = 0; ret == LIM_DB_OK && !stop;) {
        pthread_mutex_lock(&db->pend_mu);
        size_t k = take_unseen(&db->tab[K_OVERRIDE], &pos, serial, CHUNK, take_override, &ot);
        bool done = pos >= db->tab[K_OVERRIDE].nb;
        pthread_mutex_unlock(&db->pend_mu);
        for (size_t i = 0; i < k; i++) {
            if (!stop && fn(ctx, chunk[i].scope, chunk[i].text)) stop = true;
            free(chunk[i].text);
        }
        if (ot.oom) {
            seterr(err, errlen, "%s: out of memory", db->path);
            ret = LIM_DB_ERROR;
        }
        if (done) break;
    }
    pthread_mutex_unlock(&db->db_mu);
    free(chunk);
    return ret;
}

long lim_db_prune(lim_db_t *db, int64_t now, int64_t keep_before, char *err, size_t errlen)
{
    if (!db) {
        seterr(err, errlen, "usage db: not open");
        return -1;
    }
    if (db->readonly) {
        seterr(err, errlen, "%s: opened read-only: cannot prune", db->path);
        return -1;
    }
    long n = 0;
    const char *what = "begin";
    pthread_mutex_lock(&db->db_mu);
    if (step_done(db->st[ST_BEGIN]) != SQLITE_DONE) goto fail;
    what = "counters";
    sqlite3_bind_int64(db->st[ST_PRUNE_COUNTERS], 1, now);
    if (step_done(db->st[ST_PRUNE_COUNTERS]) != SQLITE_DONE) goto fail;
    n += (long)sqlite3_changes64(db->conn);
    what = "usage";
    sqlite3_bind_int64(db->st[ST_PRUNE_USAGE], 1, keep_before);
    if (step_done(db->st[ST_PRUNE_USAGE]) != SQLITE_DONE) goto fail;
    n += (long)sqlite3_changes64(db->conn);
    what = "commit";
    if (step_done(db->st[ST_COMMIT]) != SQLITE_DONE) goto fail;
    pthread_mutex_unlock(&db->db_mu);
    return n;
fail:
    seterr(err, errlen, "%s: prune failed (%s): %s", db->path, what, sqlite3_errmsg(db->conn));
    if (!sqlite3_get_autocommit(db->conn)) step_done(db->st[ST_ROLLBACK]);
    pthread_mutex_unlock(&db->db_mu);
    return -1;
}
