/*
 * limits/redis — shared counters, usage report and overrides in Redis (see
 * redis.h for the design and the callback rules).
 *
 * Bookkeeping of the asynchronous side.  Every command is a cmd_t that owns
 * a copy of its arguments.  A cmd_t awaiting its result is on r->pending
 * (in the order sent, so the head is the oldest: the timeout timer looks at
 * it); one whose failure is known before it was sent is on r->deferred,
 * delivered by the uv_idle handle.  hiredis holds a cmd_t as the privdata of
 * its reply callback while `in_hiredis`; hiredis calls that callback exactly
 * once, with a NULL reply when the context is freed.  When this module gives
 * up on a connection (timeout, error, lim_redis_free) it first detaches the
 * context (r->ac = NULL, ac->data = NULL: the connect and disconnect
 * callbacks ignore it from then on), then fails every pending command; one
 * still held by hiredis is marked `orphan` and freed by on_reply when
 * hiredis lets go of it, without touching the store.  So each user callback
 * runs exactly once, and the store never frees a context hiredis is freeing
 * (connect failure, lost connection: hiredis frees it itself).
 *
 * Teardown: the store's memory outlives lim_redis_free until the close
 * callbacks of its three handles and an outstanding uv_getaddrinfo have
 * run (nrefs), so code that called back into user code can always look at
 * r->closing afterwards.
 */
#include "limits/redis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/sds.h>
#include <openssl/evp.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define MAX_ARGS 128                 /* per command, with EVAL and the script */
#define REPORT_TTL_S (400 * 86400LL) /* a report hash lives 400 days after its hour */
#define QUERY_PAST_S (402 * 86400LL)
#define QUERY_FUTURE_S (2 * 86400LL)
#define QUERY_BATCH 64 /* HGETALLs per pipeline round */
#define MGET_BATCH 100
#define SEP '\x1f'

/* ---- scripts ---------------------------------------------------------- */

/* The scripts read every counter with one MGET and set a counter's expiry
 * only when they create it (a counter is always created with its window's
 * expiry, so an existing one has it): per call with 8 counters about 25 Redis
 * commands run inside the scripts instead of about 55, which is what bounds a shared
 * store's requests/s (bench/llm.sh).
 *
 * KEYS: the counters.  ARGV: max, amount, expire_at per counter.
 * Reply {1} or {0, refused index (0-based), value}. */
static const char reserve_lua[] =
    "local n = #KEYS\n"
    "local cur = redis.call('MGET', unpack(KEYS))\n"
    "for i = 1, n do\n"
    "  local v = 0\n"
    "  if cur[i] then\n"
    "    v = tonumber(cur[i])\n"
    "    if not v then return redis.error_reply('ERR counter ' .. KEYS[i] .. ' is not a number') "
    "end\n"
    "  end\n"
    "  local max = tonumber(ARGV[3 * i - 2])\n"
    "  local amt = tonumber(ARGV[3 * i - 1])\n"
    "  if max > 0 and (v >= max or v + amt > max) then return {0, i - 1, v} end\n"
    "end\n"
    "for i = 1, n do\n"
    "  redis.call('INCRBY', KEYS[i], ARGV[3 * i - 1])\n"
    "  if not cur[i] then redis.call('EXPIREAT', KEYS[i], ARGV[3 * i]) end\n"
    "end\n"
    "return {1}\n";

/* KEYS: n counters, their n soft markers, then the report hash when there
 * is a row.  ARGV[1] = n; per counter: delta, expire_at, soft threshold (0:
 * none); then the report's expire_at and field/increment pairs.  A delta of 0
 * (a request counter: reserved 1, used 1) leaves its counter alone.  Reply:
 * the (0-based) indexes whose soft marker this call set. */
static const char settle_lua[] =
    "local n = tonumber(ARGV[1])\n"
    "local cur = {}\n"
    "if n > 0 then cur = redis.call('MGET', unpack(KEYS, 1, n)) end\n"
    "for i = 1, n do\n"
    "  if cur[i] and not tonumber(cur[i]) then\n"
    "    return redis.error_reply('ERR counter ' .. KEYS[i] .. ' is not a number')\n"
    "  end\n"
    "end\n"
    "local soft = {}\n"
    "for i = 1, n do\n"
    "  local a = 2 + (i - 1) * 3\n"
    "  local d = ARGV[a]\n"
    "  local v = tonumber(cur[i] or '0')\n"
    "  if d ~= '0' or not cur[i] then\n"
    "    v = redis.call('INCRBY', KEYS[i], d)\n"
    "    if v < 0 then\n"
    "      redis.call('SET', KEYS[i], '0', 'EXAT', ARGV[a + 1])\n"
    "      v = 0\n"
    "    elseif not cur[i] then\n"
    "      redis.call('EXPIREAT', KEYS[i], ARGV[a + 1])\n"
    "    end\n"
    "  end\n"
    "  local th = tonumber(ARGV[a + 2])\n"
    "  if th > 0 and v >= th then\n"
    "    if redis.call('SET', KEYS[n + i], '1', 'NX', 'EXAT', ARGV[a + 1]) then\n"
    "      soft[#soft + 1] = i - 1\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if #KEYS > 2 * n then\n"
    "  local h = KEYS[2 * n + 1]\n"
    "  local p = 2 + 3 * n\n"
    "  for j = p + 1, #ARGV - 1, 2 do\n"
    "    redis.call('HINCRBY', h, ARGV[j], ARGV[j + 1])\n"
    "  end\n"
    "  redis.call('EXPIREAT', h, ARGV[p])\n"
    "end\n"
    "return soft\n";

enum { SCRIPT_RESERVE = 0, SCRIPT_SETTLE = 1, NSCRIPTS = 2 };
static const char *const scripts[NSCRIPTS] = {reserve_lua, settle_lua};

static const char *const metric_fields[6] = {"requests",   "input",       "output",
                                             "cache_read", "cache_write", "cost"};

/* ---- errors ----------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen) snprintf(err, errlen, "%s", msg);
}

/* ---- argument builder --------------------------------------------------- */

/* Arguments as (offset, length) slices of one growing buffer, so that a
 * command can be copied into a single allocation. */
typedef struct argb {
    char *buf;
    size_t len, cap;
    size_t off[MAX_ARGS], alen[MAX_ARGS];
    size_t n;
    bool bad; /* out of memory or too many arguments */
} argb_t;

static void argb_init(argb_t *b)
{
    b->buf = NULL;
    b->len = b->cap = b->n = 0;
    b->bad = false;
}

static void argb_cat(argb_t *b, const char *s, size_t len)
{
    if (b->bad) return;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + len)
            cap *= 2;
        char *nb = realloc(b->buf, cap);
        if (!nb) {
            b->bad = true;
            return;
        }
        b->buf = nb;
        b->cap = cap;
    }
    if (len) memcpy(b->buf + b->len, s, len);
    b->len += len;
}

static void argb_begin(argb_t *b)
{
    if (b->n >= MAX_ARGS) b->bad = true;
    if (!b->bad) b->off[b->n] = b->len;
}

static void argb_end(argb_t *b)
{
    if (b->bad) return;
    b->alen[b->n] = b->len - b->off[b->n];
    b->n++;
}

static void arg_str(argb_t *b, const char *s)
{
    argb_begin(b);
    argb_cat(b, s, strlen(s));
    argb_end(b);
}

static void arg_u64(argb_t *b, uint64_t v)
{
    char t[24];
    int k = snprintf(t, sizeof t, "%" PRIu64, v);
    argb_begin(b);
    argb_cat(b, t, (size_t)k);
    argb_end(b);
}

static void arg_i64(argb_t *b, int64_t v)
{
    char t[24];
    int k = snprintf(t, sizeof t, "%" PRId64, v);
    argb_begin(b);
    argb_cat(b, t, (size_t)k);
    argb_end(b);
}

/* "<prefix>:<kind>:<name><suffix>" */
static void arg_key(argb_t *b, const char *prefix, const char *kind, const char *name,
                    const char *suffix)
{
    argb_begin(b);
    argb_cat(b, prefix, strlen(prefix));
    argb_cat(b, ":", 1);
    argb_cat(b, kind, strlen(kind));
    if (name) {
        argb_cat(b, ":", 1);
        argb_cat(b, name, strlen(name));
    }
    argb_cat(b, suffix, strlen(suffix));
    argb_end(b);
}

static void argb_free(argb_t *b)
{
    free(b->buf);
    b->buf = NULL;
}

/* ---- options ------------------------------------------------------------ */

static int opts_check(const lim_redis_opts_t *o, char *err, size_t errlen)
{
    const char *why = NULL;
    if (!o)
        why = "redis: no options";
    else if (!o->host || !o->host[0])
        why = "redis: no host";
    else if (o->port == 0)
        why = "redis: port 0";
    else if (o->db < 0)
        why = "redis: negative db";
    else if (!o->prefix || !o->prefix[0] || strlen(o->prefix) > LIM_REDIS_PREFIX_MAX)
        why = "redis: prefix empty or too long";
    if (why) set_err(err, errlen, why);
    return why ? -1 : 0;
}

static uint64_t opts_timeout(const lim_redis_opts_t *o)
{
    return o->timeout_ms ? o->timeout_ms : LIM_REDIS_DEFAULT_TIMEOUT_MS;
}

/* A counter is usable when its key is a NUL-terminated string and its numbers
 * are Redis integers. */
static bool counter_ok(const lim_counter_t *c)
{
    return memchr(c->key, '\0', sizeof c->key) != NULL && c->max <= (uint64_t)INT64_MAX &&
           c->amount <= (uint64_t)INT64_MAX && c->expire_at > 0 && c->soft_pct <= 100;
}

/* ceil(max * pct / 100) without overflow (max <= INT64_MAX, pct <= 100);
 * 0 when there is no soft threshold. */
static uint64_t soft_threshold(uint64_t max, uint32_t pct)
{
    if (max == 0 || pct == 0) return 0;
    return max / 100 * pct + (max % 100 * pct + 99) / 100;
}

/* ---- the asynchronous store ------------------------------------------- */

typedef enum { K_AUTH, K_SELECT, K_RESERVE, K_SETTLE } kind_t;
typedef enum { ST_DOWN, ST_RESOLVING, ST_CONNECTING, ST_UP } state_t;

typedef struct cmd {
    struct cmd *prev, *next; /* on r->pending or r->deferred, or on none */
    lim_redis_t *r;
    kind_t kind;
    bool in_hiredis; /* hiredis holds a reply callback with this as privdata */
    bool orphan;     /* given up (result delivered): on_reply only frees it */
    bool used_sha;   /* sent as EVALSHA */
    size_t ncounters;
    uint64_t sent_at; /* loop time (ms) it was queued or last sent */
    lim_redis_reserve_cb reserve_cb;
    lim_redis_settle_cb settle_cb;
    void *ctx;
    char err[352]; /* the failure to deliver, when on r->deferred */
    size_t nargs;  /* arguments after EVAL/EVALSHA and the script */
    size_t *off, *alen;
    char *buf;
} cmd_t;

typedef struct cmd_list {
    cmd_t *head, *tail;
} cmd_list_t;

typedef struct gai_req {
    uv_getaddrinfo_t req;
    lim_redis_t *r;
} gai_req_t;

struct lim_redis {
    uv_loop_t *loop;
    char *host, *password, *prefix;
    uint16_t port;
    int db;
    uint64_t timeout_ms;

    state_t state;
    redisAsyncContext *ac; /* current context (connecting or up), or NULL */
    gai_req_t *gai;        /* current resolution, or NULL */
    uint64_t conn_started; /* loop time the current attempt began */
    int setup_left;        /* AUTH/SELECT replies still awaited */
    uint64_t backoff_ms;
    bool loaded[NSCRIPTS]; /* the server has the script: use EVALSHA */
    char sha[NSCRIPTS][41];
    char last_err[320];

    cmd_list_t pending, deferred;
    uv_timer_t tick;  /* command and connect timeouts */
    uv_timer_t retry; /* reconnect */
    uv_idle_t defer;  /* delivers r->deferred */
    bool closing;
    int nrefs; /* handles not yet closed + resolutions in flight */
};

static void list_add(cmd_list_t *l, cmd_t *c)
{
    c->next = NULL;
    c->prev = l->tail;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
}

static void list_del(cmd_list_t *l, cmd_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
}

static cmd_t *list_pop(cmd_list_t *l)
{
    cmd_t *c = l->head;
    if (!c) return NULL;
    l->head = c->next;
    if (l->head)
        l->head->prev = NULL;
    else
        l->tail = NULL;
    c->prev = c->next = NULL;
    return c;
}

static cmd_t *cmd_new(lim_redis_t *r, kind_t kind, const argb_t *b, size_t ncounters)
{
    if (b->bad) return NULL;
    size_t arrays = 2 * b->n * sizeof(size_t);
    cmd_t *c = calloc(1, sizeof *c + arrays + b->len + 1);
    if (!c) return NULL;
    c->r = r;
    c->kind = kind;
    c->ncounters = ncounters;
    c->nargs = b->n;
    c->off = (size_t *)(void *)(c + 1);
    c->alen = c->off + b->n;
    c->buf = (char *)(c->alen + b->n);
    if (b->n) {
        memcpy(c->off, b->off, b->n * sizeof(size_t));
        memcpy(c->alen, b->alen, b->n * sizeof(size_t));
    }
    if (b->len) memcpy(c->buf, b->buf, b->len);
    return c;
}

static bool is_script(const cmd_t *c)
{
    return c->kind == K_RESERVE || c->kind == K_SETTLE;
}

static void deliver_error(cmd_t *c, const char *msg)
{
    if (c->kind == K_RESERVE)
        c->reserve_cb(c->ctx, LIM_RS_ERROR, 0, 0, msg);
    else if (c->kind == K_SETTLE && c->settle_cb)
        c->settle_cb(c->ctx, LIM_RS_ERROR, NULL, 0, msg);
}

/* Fail every pending command.  The context must be detached first, so that
 * nothing a callback does can make hiredis free a command under us. */
static void fail_pending(lim_redis_t *r, const char *msg)
{
    cmd_t *c;
    while ((c = list_pop(&r->pending))) {
        bool ours = !c->in_hiredis;
        if (!ours) c->orphan = true;
        deliver_error(c, msg);
        if (ours) free(c);
    }
}

/* The hiredis event hooks on a uv_poll_t.  Not hiredis 0.14's
 * adapters/libuv.h: its poll callback drops events that come with an error
 * status, and libuv reports POLLERR (a refused connect, a reset) as
 * UV_EBADF and stops the handle, so such a failure would only be noticed
 * by the timeout.  Here an error status hands hiredis the events it waits
 * for, and it reads the error from the socket.
 *
 * Writes do not go through the poll handle while the connection is up:
 * hiredis asks for a write event after every command, and switching the
 * poll's events costs two epoll_ctl calls and a loop iteration per command.
 * A check handle (run once per loop iteration, after the I/O callbacks that
 * issued the commands) writes everything queued in that iteration with one
 * write; only when the socket does not take it all does the poll wait for
 * writability.  An idle handle runs alongside the check so that a command
 * queued after the check phase (from a close callback) does not wait for
 * the next I/O event: the loop does not block while it is active.  The
 * record is freed when its three handles have closed. */
typedef struct uvev {
    redisAsyncContext *ac; /* NULL once hiredis cleaned up */
    uv_poll_t poll;
    uv_check_t flush;
    uv_idle_t nowait;
    int events;
    int open_handles;
    bool closing;
    bool in_flush; /* inside redisAsyncHandleWrite from the check handle */
} uvev_t;

static void ev_poll_cb(uv_poll_t *h, int status, int events)
{
    uvev_t *p = h->data;
    int ev = status < 0 ? p->events : events;
    if (p->ac && (ev & UV_READABLE)) redisAsyncHandleRead(p->ac);
    if (p->ac && (ev & UV_WRITABLE)) redisAsyncHandleWrite(p->ac);
}

static void ev_update(uvev_t *p)
{
    if (p->closing) return;
    if (p->events)
        uv_poll_start(&p->poll, p->events, ev_poll_cb);
    else
        uv_poll_stop(&p->poll);
}

static void ev_add_read(void *d)
{
    uvev_t *p = d;
    p->events |= UV_READABLE;
    ev_update(p);
}

static void ev_del_read(void *d)
{
    uvev_t *p = d;
    p->events &= ~UV_READABLE;
    ev_update(p);
}

static void ev_flush_cb(uv_check_t *h)
{
    uvev_t *p = h->data;
    uv_check_stop(&p->flush);
    uv_idle_stop(&p->nowait);
    if (!p->ac) return;
    p->in_flush = true;
    redisAsyncHandleWrite(p->ac); /* what it cannot write it asks the poll for */
    p->in_flush = false;
}

static void ev_nowait_cb(uv_idle_t *h)
{
    (void)h; /* only there to keep the loop from blocking before the flush */
}

static void ev_add_write(void *d)
{
    uvev_t *p = d;
    if (p->closing) return;
    /* connecting (hiredis learns of the connect by writability) or a write
     * that did not complete: wait for the socket */
    if (p->in_flush || !p->ac || !(p->ac->c.flags & REDIS_CONNECTED)) {
        p->events |= UV_WRITABLE;
        ev_update(p);
        return;
    }
    if (!(p->events & UV_WRITABLE)) {
        uv_check_start(&p->flush, ev_flush_cb);
        uv_idle_start(&p->nowait, ev_nowait_cb);
    }
}

static void ev_del_write(void *d)
{
    uvev_t *p = d;
    if (p->closing) return;
    uv_check_stop(&p->flush);
    uv_idle_stop(&p->nowait);
    if (p->events & UV_WRITABLE) {
        p->events &= ~UV_WRITABLE;
        ev_update(p);
    }
}

static void ev_closed(uv_handle_t *h)
{
    uvev_t *p = h->data;
    if (--p->open_handles == 0) free(p);
}

static void ev_cleanup(void *d)
{
    uvev_t *p = d;
    p->ac = NULL;
    if (p->closing) return;
    p->closing = true;
    uv_close((uv_handle_t *)&p->poll, ev_closed);
    uv_close((uv_handle_t *)&p->flush, ev_closed);
    uv_close((uv_handle_t *)&p->nowait, ev_closed);
}

static int ev_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    if (ac->ev.data) return REDIS_ERR;
    uvev_t *p = calloc(1, sizeof *p);
    if (!p) return REDIS_ERR;
    if (uv_poll_init(loop, &p->poll, ac->c.fd) != 0) {
        free(p);
        return REDIS_ERR;
    }
    p->poll.data = p;
    uv_check_init(loop, &p->flush);
    p->flush.data = p;
    uv_idle_init(loop, &p->nowait);
    p->nowait.data = p;
    p->open_handles = 3;
    p->ac = ac;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    ac->ev.data = p;
    return REDIS_OK;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv);
static void on_connect(const redisAsyncContext *ac, int status);
static void on_disconnect(const redisAsyncContext *ac, int status);
static void on_tick(uv_timer_t *t);
static void on_retry(uv_timer_t *t);
static void on_defer(uv_idle_t *h);

static int send_cmd(lim_redis_t *r, cmd_t *c)
{
    const char *argv[MAX_ARGS + 2];
    size_t lens[MAX_ARGS + 2];
    size_t k = 0;
    if (is_script(c)) {
        int s = c->kind == K_RESERVE ? SCRIPT_RESERVE : SCRIPT_SETTLE;
        c->used_sha = r->loaded[s];
        argv[0] = c->used_sha ? "EVALSHA" : "EVAL";
        argv[1] = c->used_sha ? r->sha[s] : scripts[s];
        lens[0] = strlen(argv[0]);
        lens[1] = strlen(argv[1]);
        k = 2;
    }
    for (size_t i = 0; i < c->nargs; i++, k++) {
        argv[k] = c->buf + c->off[i];
        lens[k] = c->alen[i];
    }
    if (!r->ac || redisAsyncCommandArgv(r->ac, on_reply, c, (int)k, argv, lens) != REDIS_OK)
        return -1;
    c->in_hiredis = true;
    return 0;
}

/* Arm the timeout timer for the earliest deadline, unless it is armed (every
 * later command has a later deadline; on_tick re-arms). */
static void arm_tick(lim_redis_t *r)
{
    if (r->closing || uv_is_active((const uv_handle_t *)&r->tick)) return;
    uint64_t due = UINT64_MAX;
    if (r->pending.head) due = r->pending.head->sent_at + r->timeout_ms;
    if ((r->state == ST_RESOLVING || r->state == ST_CONNECTING) &&
        r->conn_started + r->timeout_ms < due)
        due = r->conn_started + r->timeout_ms;
    if (due == UINT64_MAX) return;
    uint64_t now = uv_now(r->loop);
    uv_timer_start(&r->tick, on_tick, due > now ? due - now : 0, 0);
}

static void schedule_retry(lim_redis_t *r)
{
    if (r->closing) return;
    uv_timer_start(&r->retry, on_retry, r->backoff_ms, 0);
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

/* Give up on the current connection attempt or connection: detach the
 * context, fail every pending command with msg, free the context when
 * free_ac (not when hiredis is freeing it itself), schedule a reconnect. */
static void go_down(lim_redis_t *r, const char *msg, bool free_ac)
{
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    if (ac) ac->data = NULL;
    if (r->gai) {
        uv_cancel((uv_req_t *)&r->gai->req);
        r->gai = NULL; /* its callback sees it is stale */
    }
    r->state = ST_DOWN;
    r->setup_left = 0;
    if (!r->closing) uv_timer_stop(&r->tick);
    snprintf(r->last_err, sizeof r->last_err, "%s", msg);
    fail_pending(r, msg);
    if (ac && free_ac) redisAsyncFree(ac);
    schedule_retry(r);
}

static void become_up(lim_redis_t *r)
{
    r->state = ST_UP;
    r->backoff_ms = BACKOFF_MIN_MS;
    r->last_err[0] = '\0';
}

static int queue_setup(lim_redis_t *r, kind_t kind)
{
    argb_t b;
    argb_init(&b);
    if (kind == K_AUTH) {
        arg_str(&b, "AUTH");
        arg_str(&b, r->password);
    } else {
        arg_str(&b, "SELECT");
        arg_i64(&b, r->db);
    }
    cmd_t *c = cmd_new(r, kind, &b, 0);
    argb_free(&b);
    if (!c) return -1;
    c->sent_at = uv_now(r->loop);
    list_add(&r->pending, c);
    if (send_cmd(r, c) != 0) {
        list_del(&r->pending, c);
        free(c);
        return -1;
    }
    r->setup_left++;
    return 0;
}

static void open_conn(lim_redis_t *r, const char *ip)
{
    char msg[sizeof r->last_err];
    redisAsyncContext *ac = redisAsyncConnect(ip, r->port);
    if (!ac) {
        go_down(r, "redis: out of memory", false);
        return;
    }
    if (ac->err) {
        snprintf(msg, sizeof msg, "redis: cannot connect to %s:%u: %s", r->host, r->port,
                 ac->c.errstr);
        redisAsyncFree(ac);
        go_down(r, msg, false);
        return;
    }
    if (ev_attach(ac, r->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        go_down(r, "redis: cannot attach the connection to the loop", false);
        return;
    }
    ac->data = r;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    r->state = ST_CONNECTING;
    r->setup_left = 0;
    for (int s = 0; s < NSCRIPTS; s++)
        r->loaded[s] = false; /* the first use sends EVAL: one round trip either way */

    /* AUTH and SELECT first: hiredis sends in order */
    if ((r->password && queue_setup(r, K_AUTH) != 0) || (r->db && queue_setup(r, K_SELECT) != 0)) {
        go_down(r, "redis: cannot queue AUTH/SELECT", true);
        return;
    }
    /* then what was queued while resolving */
    for (cmd_t *c = r->pending.head; c; c = c->next) {
        if (c->in_hiredis) continue;
        if (send_cmd(r, c) != 0) {
            go_down(r, "redis: cannot queue a command", true);
            return;
        }
    }
    arm_tick(r);
}

/* Drop one of the references that keep a closing store's memory. */
static void store_unref(lim_redis_t *r)
{
    if (--r->nrefs > 0) return;
    free(r->host);
    free(r->password);
    free(r->prefix);
    free(r);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    gai_req_t *g = (gai_req_t *)req;
    lim_redis_t *r = g->r;
    bool current = r->gai == g;
    free(g);
    if (current) r->gai = NULL;
    if (r->closing) {
        uv_freeaddrinfo(res);
        store_unref(r);
        return;
    }
    r->nrefs--;
    if (!current) {
        uv_freeaddrinfo(res);
        return;
    }
    char ip[INET6_ADDRSTRLEN] = "";
    if (status == 0 && res && res->ai_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)(void *)res->ai_addr, ip, sizeof ip);
    else if (status == 0 && res && res->ai_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)(void *)res->ai_addr, ip, sizeof ip);
    uv_freeaddrinfo(res);
    if (!ip[0]) {
        char msg[sizeof r->last_err];
        snprintf(msg, sizeof msg, "redis: cannot resolve %s: %s", r->host,
                 status ? uv_strerror(status) : "no address");
        go_down(r, msg, false);
        return;
    }
    open_conn(r, ip);
}

static void start_connect(lim_redis_t *r)
{
    unsigned char a[sizeof(struct in6_addr)];
    r->conn_started = uv_now(r->loop);
    if (inet_pton(AF_INET, r->host, a) == 1 || inet_pton(AF_INET6, r->host, a) == 1) {
        open_conn(r, r->host);
        return;
    }
    gai_req_t *g = calloc(1, sizeof *g);
    if (!g) {
        go_down(r, "redis: out of memory", false);
        return;
    }
    g->r = r;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = uv_getaddrinfo(r->loop, &g->req, on_resolved, r->host, NULL, &hints);
    if (rc != 0) {
        free(g);
        char msg[sizeof r->last_err];
        snprintf(msg, sizeof msg, "redis: cannot resolve %s: %s", r->host, uv_strerror(rc));
        go_down(r, msg, false);
        return;
    }
    r->gai = g;
    r->nrefs++;
    r->state = ST_RESOLVING;
    arm_tick(r);
}

static void on_retry(uv_timer_t *t)
{
    lim_redis_t *r = t->data;
    if (!r->closing && r->state == ST_DOWN) start_connect(r);
}

static void on_tick(uv_timer_t *t)
{
    lim_redis_t *r = t->data;
    char msg[sizeof r->last_err];
    uint64_t now = uv_now(r->loop);
    if ((r->state == ST_RESOLVING || r->state == ST_CONNECTING) &&
        now - r->conn_started >= r->timeout_ms) {
        snprintf(msg, sizeof msg, "redis: cannot connect to %s:%u within %" PRIu64 " ms", r->host,
                 r->port, r->timeout_ms);
        go_down(r, msg, true);
        return;
    }
    if (r->pending.head && now - r->pending.head->sent_at >= r->timeout_ms) {
        snprintf(msg, sizeof msg, "redis: no reply within %" PRIu64 " ms", r->timeout_ms);
        go_down(r, msg, true);
        return;
    }
    arm_tick(r);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    lim_redis_t *r = ac->data;
    if (!r) return;
    if (status != REDIS_OK) {
        char msg[sizeof r->last_err];
        snprintf(msg, sizeof msg, "redis: cannot connect to %s:%u: %s", r->host, r->port,
                 ac->c.errstr[0] ? ac->c.errstr : "error");
        go_down(r, msg, false); /* hiredis frees the context after this */
        return;
    }
    if (r->setup_left == 0) become_up(r);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    lim_redis_t *r = ac->data;
    if (!r) return;
    char msg[sizeof r->last_err];
    snprintf(msg, sizeof msg, "redis: connection lost: %s",
             ac->c.errstr[0] ? ac->c.errstr : "closed");
    go_down(r, msg, false);
}

static void deliver_reply(cmd_t *c, const redisReply *rep)
{
    char msg[256];
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(msg, sizeof msg, "redis: %s", rep->str ? rep->str : "error");
        deliver_error(c, msg);
        return;
    }
    if (c->kind == K_RESERVE) {
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
            rep->element[0]->type == REDIS_REPLY_INTEGER) {
            if (rep->element[0]->integer == 1) {
                c->reserve_cb(c->ctx, LIM_RS_OK, 0, 0, NULL);
                return;
            }
            if (rep->element[0]->integer == 0 && rep->elements >= 3 &&
                rep->element[1]->type == REDIS_REPLY_INTEGER &&
                rep->element[2]->type == REDIS_REPLY_INTEGER && rep->element[1]->integer >= 0 &&
                (size_t)rep->element[1]->integer < c->ncounters) {
                long long v = rep->element[2]->integer;
                c->reserve_cb(c->ctx, LIM_RS_REFUSED, (size_t)rep->element[1]->integer,
                              v < 0 ? 0 : (uint64_t)v, NULL);
                return;
            }
        }
        deliver_error(c, "redis: unexpected reply to reserve");
        return;
    }
    /* settle */
    size_t soft[LIM_REDIS_MAX_COUNTERS], nsoft = 0;
    bool ok = rep->type == REDIS_REPLY_ARRAY && rep->elements <= LIM_REDIS_MAX_COUNTERS;
    for (size_t i = 0; ok && i < rep->elements; i++) {
        const redisReply *e = rep->element[i];
        ok = e->type == REDIS_REPLY_INTEGER && e->integer >= 0 && (size_t)e->integer < c->ncounters;
        if (ok) soft[nsoft++] = (size_t)e->integer;
    }
    if (!ok)
        deliver_error(c, "redis: unexpected reply to settle");
    else if (c->settle_cb)
        c->settle_cb(c->ctx, LIM_RS_OK, soft, nsoft, NULL);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    cmd_t *c = priv;
    const redisReply *rep = reply;
    c->in_hiredis = false;
    if (c->orphan) {
        free(c);
        return;
    }
    lim_redis_t *r = c->r;
    if (!rep) {
        /* hiredis is freeing the context (lost connection); c is pending and
         * is failed, and freed, with the rest */
        char msg[sizeof r->last_err];
        snprintf(msg, sizeof msg, "redis: connection lost: %s",
                 ac->c.errstr[0] ? ac->c.errstr : "closed");
        go_down(r, msg, false);
        return;
    }
    list_del(&r->pending, c);
    if (c->kind == K_AUTH || c->kind == K_SELECT) {
        bool failed = rep->type == REDIS_REPLY_ERROR;
        char msg[sizeof r->last_err];
        if (failed)
            snprintf(msg, sizeof msg, "redis: %s failed: %s", c->kind == K_AUTH ? "AUTH" : "SELECT",
                     rep->str ? rep->str : "error");
        free(c);
        if (failed)
            go_down(r, msg, true); /* hiredis frees the context after this callback */
        else if (--r->setup_left == 0 && r->state == ST_CONNECTING)
            become_up(r);
        return;
    }
    int s = c->kind == K_RESERVE ? SCRIPT_RESERVE : SCRIPT_SETTLE;
    if (rep->type == REDIS_REPLY_ERROR && c->used_sha && rep->str &&
        strncmp(rep->str, "NOSCRIPT", 8) == 0) {
        r->loaded[s] = false; /* resend as EVAL, which loads it again */
        c->sent_at = uv_now(r->loop);
        list_add(&r->pending, c);
        if (send_cmd(r, c) == 0) {
            arm_tick(r);
            return;
        }
        list_del(&r->pending, c);
        deliver_error(c, "redis: cannot resend the script");
        free(c);
        return;
    }
    if (!c->used_sha && rep->type != REDIS_REPLY_ERROR) r->loaded[s] = true;
    deliver_reply(c, rep);
    free(c);
}

static void on_defer(uv_idle_t *h)
{
    lim_redis_t *r = h->data;
    /* only what is queued now: a callback that retries waits for the next turn */
    cmd_t *last = r->deferred.tail, *c;
    while ((c = list_pop(&r->deferred))) {
        bool was_last = c == last;
        deliver_error(c, c->err);
        free(c);
        if (was_last) break;
    }
    if (!r->closing && !r->deferred.head) uv_idle_stop(&r->defer);
}

static void defer_error(lim_redis_t *r, cmd_t *c, const char *msg)
{
    snprintf(c->err, sizeof c->err, "%s", msg);
    list_add(&r->deferred, c);
    uv_idle_start(&r->defer, on_defer);
}

/* Take a command made by reserve/settle: send, queue or fail it later. */
static int submit(lim_redis_t *r, cmd_t *c)
{
    c->sent_at = uv_now(r->loop);
    if (r->state == ST_DOWN) {
        char msg[sizeof c->err];
        snprintf(msg, sizeof msg, "redis: not connected (%s)",
                 r->last_err[0] ? r->last_err : "connecting");
        defer_error(r, c, msg);
        return 0;
    }
    list_add(&r->pending, c);
    if (r->state != ST_RESOLVING && send_cmd(r, c) != 0) {
        list_del(&r->pending, c);
        defer_error(r, c, "redis: cannot queue the command");
        return 0;
    }
    arm_tick(r);
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    store_unref(h->data);
}

static int sha1_hex(const char *s, char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20) return -1;
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

lim_redis_t *lim_redis_new(uv_loop_t *loop, const lim_redis_opts_t *o, char *err, size_t errlen)
{
    if (!loop) {
        set_err(err, errlen, "redis: no loop");
        return NULL;
    }
    if (opts_check(o, err, errlen) != 0) return NULL;
    lim_redis_t *r = calloc(1, sizeof *r);
    if (!r) goto oom;
    r->host = strdup(o->host);
    r->prefix = strdup(o->prefix);
    r->password = o->password ? strdup(o->password) : NULL;
    if (!r->host || !r->prefix || (o->password && !r->password)) goto oom_free;
    for (int s = 0; s < NSCRIPTS; s++)
        if (sha1_hex(scripts[s], r->sha[s]) != 0) {
            set_err(err, errlen, "redis: cannot compute SHA1 of the scripts");
            goto fail_free;
        }
    r->loop = loop;
    r->port = o->port;
    r->db = o->db;
    r->timeout_ms = opts_timeout(o);
    r->backoff_ms = BACKOFF_MIN_MS;
    r->state = ST_DOWN;
    uv_timer_init(loop, &r->tick);
    uv_timer_init(loop, &r->retry);
    uv_idle_init(loop, &r->defer);
    r->tick.data = r->retry.data = r->defer.data = r;
    r->nrefs = 3;
    start_connect(r);
    return r;

oom_free:
    set_err(err, errlen, "redis: out of memory");
fail_free:
    free(r->host);
    free(r->prefix);
    free(r->password);
    free(r);
    return NULL;
oom:
    set_err(err, errlen, "redis: out of memory");
    return NULL;
}

void lim_redis_free(lim_redis_t *r)
{
    if (!r || r->closing) return;
    r->closing = true;
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    if (ac) ac->data = NULL;
    if (r->gai) {
        uv_cancel((uv_req_t *)&r->gai->req);
        r->gai = NULL;
    }
    r->state = ST_DOWN;
    fail_pending(r, "redis: closing");
    cmd_t *c;
    while ((c = list_pop(&r->deferred))) {
        deliver_error(c, "redis: closing");
        free(c);
    }
    /* in a reply callback hiredis frees it when the callback returns */
    if (ac) redisAsyncFree(ac);
    uv_close((uv_handle_t *)&r->tick, on_handle_closed);
    uv_close((uv_handle_t *)&r->retry, on_handle_closed);
    uv_close((uv_handle_t *)&r->defer, on_handle_closed);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void lim_redis_drain(lim_redis_t *r, uint64_t timeout_ms)
{
    if (!r || r->closing || r->state != ST_UP || !r->ac) return;
    uint64_t deadline = mono_ms() + timeout_ms;
    while (r->ac && r->state == ST_UP && r->pending.head) {
        redisAsyncContext *ac = r->ac;
        bool out = ac->c.obuf && sdslen(ac->c.obuf) > 0;
        uint64_t now = mono_ms();
        if (now >= deadline) break;
        struct pollfd p = {.fd = ac->c.fd, .events = (short)(POLLIN | (out ? POLLOUT : 0))};
        int rc = poll(&p, 1, (int)(deadline - now));
        if (rc < 0 && errno == EINTR) continue;
        if (rc <= 0) break;
        if (p.revents & POLLOUT) redisAsyncHandleWrite(ac);
        /* a reply, or an error or hang-up that hiredis reads from the socket */
        if (r->ac == ac && (p.revents & (POLLIN | POLLERR | POLLHUP))) redisAsyncHandleRead(ac);
    }
}

bool lim_redis_connected(const lim_redis_t *r)
{
    return r && r->state == ST_UP;
}

int lim_redis_reserve(lim_redis_t *r, const lim_counter_t *c, size_t n, lim_redis_reserve_cb cb,
                      void *ctx)
{
    if (!r || r->closing || !c || n == 0 || n > LIM_REDIS_MAX_COUNTERS || !cb) return -1;
    for (size_t i = 0; i < n; i++)
        if (!counter_ok(&c[i])) return -1;
    argb_t b;
    argb_init(&b);
    arg_u64(&b, n); /* numkeys */
    for (size_t i = 0; i < n; i++)
        arg_key(&b, r->prefix, "c", c[i].key, "");
    for (size_t i = 0; i < n; i++) {
        arg_u64(&b, c[i].max);
        arg_u64(&b, c[i].amount);
        arg_i64(&b, c[i].expire_at);
    }
    cmd_t *cmd = cmd_new(r, K_RESERVE, &b, n);
    argb_free(&b);
    if (!cmd) return -1;
    cmd->reserve_cb = cb;
    cmd->ctx = ctx;
    return submit(r, cmd);
}

/* One report field: the six dimensions and the metric, separated by 0x1f
 * (a 0x1f inside a dimension becomes '_'). */
static void arg_field(argb_t *b, const lim_usage_row_t *row, const char *metric)
{
    const char *dims[6] = {row->workspace, row->team,     row->project,
                           row->agent,     row->provider, row->model};
    char sep = SEP;
    argb_begin(b);
    for (int d = 0; d < 6; d++) {
        const char *s = dims[d];
        size_t len = strnlen(s, LIM_DIM_MAX - 1);
        size_t start = 0;
        for (size_t i = 0; i < len; i++)
            if (s[i] == SEP) {
                argb_cat(b, s + start, i - start);
                argb_cat(b, "_", 1);
                start = i + 1;
            }
        argb_cat(b, s + start, len - start);
        argb_cat(b, &sep, 1);
    }
    argb_cat(b, metric, strlen(metric));
    argb_end(b);
}

int lim_redis_settle(lim_redis_t *r, const lim_counter_t *c, const uint64_t *reserved,
                     const uint64_t *actual, size_t n, const lim_usage_row_t *row,
                     lim_redis_settle_cb cb, void *ctx)
{
    if (!r || r->closing || n > LIM_REDIS_MAX_COUNTERS || (n == 0 && !row)) return -1;
    if (n && (!c || !reserved || !actual)) return -1;
    for (size_t i = 0; i < n; i++)
        if (!counter_ok(&c[i]) || reserved[i] > (uint64_t)INT64_MAX ||
            actual[i] > (uint64_t)INT64_MAX)
            return -1;
    uint64_t vals[6] = {0};
    if (row) {
        if (row->hour < 0 || row->hour % 3600 != 0 || row->hour > INT64_MAX - REPORT_TTL_S)
            return -1;
        uint64_t v[6] = {row->requests,   row->input,       row->output,
                         row->cache_read, row->cache_write, row->cost_nano};
        for (int m = 0; m < 6; m++) {
            if (v[m] > (uint64_t)INT64_MAX) return -1;
            vals[m] = v[m];
        }
    }
    argb_t b;
    argb_init(&b);
    arg_u64(&b, 2 * n + (row ? 1 : 0)); /* numkeys */
    for (size_t i = 0; i < n; i++)
        arg_key(&b, r->prefix, "c", c[i].key, "");
    for (size_t i = 0; i < n; i++)
        arg_key(&b, r->prefix, "c", c[i].key, ":soft");
    if (row) {
        char hour[24];
        snprintf(hour, sizeof hour, "%" PRId64, row->hour);
        arg_key(&b, r->prefix, "u", hour, "");
    }
    arg_u64(&b, n);
    for (size_t i = 0; i < n; i++) {
        arg_i64(&b, (int64_t)actual[i] - (int64_t)reserved[i]);
        arg_i64(&b, c[i].expire_at);
        arg_u64(&b, soft_threshold(c[i].max, c[i].soft_pct));
    }
    if (row) {
        arg_i64(&b, row->hour + REPORT_TTL_S);
        for (int m = 0; m < 6; m++) {
            if (m > 0 && vals[m] == 0) continue;
            arg_field(&b, row, metric_fields[m]);
            arg_u64(&b, vals[m]);
        }
    }
    cmd_t *cmd = cmd_new(r, K_SETTLE, &b, n);
    argb_free(&b);
    if (!cmd) return -1;
    cmd->settle_cb = cb;
    cmd->ctx = ctx;
    return submit(r, cmd);
}

/* ---- synchronous functions -------------------------------------------- */

/* One command; NULL with err on a connection error or an error reply. */
static redisReply *sync_cmd(redisContext *rc, const argb_t *b, char *err, size_t errlen)
{
    const char *argv[MAX_ARGS];
    for (size_t i = 0; i < b->n; i++)
        argv[i] = b->buf + b->off[i];
    redisReply *rep = redisCommandArgv(rc, (int)b->n, argv, b->alen);
    char msg[256];
    if (!rep) {
        snprintf(msg, sizeof msg, "redis: %s", rc->errstr[0] ? rc->errstr : "no reply");
        set_err(err, errlen, msg);
        return NULL;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(msg, sizeof msg, "redis: %s", rep->str ? rep->str : "error");
        set_err(err, errlen, msg);
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

static redisContext *sync_open(const lim_redis_opts_t *o, char *err, size_t errlen)
{
    if (opts_check(o, err, errlen) != 0) return NULL;
    uint64_t ms = opts_timeout(o);
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000 * 1000)};
    char msg[256];
    redisContext *rc = redisConnectWithTimeout(o->host, o->port, tv);
    if (!rc) {
        set_err(err, errlen, "redis: out of memory");
        return NULL;
    }
    if (rc->err) {
        snprintf(msg, sizeof msg, "redis: cannot connect to %s:%u: %s", o->host, o->port,
                 rc->errstr);
        set_err(err, errlen, msg);
        redisFree(rc);
        return NULL;
    }
    if (redisSetTimeout(rc, tv) != REDIS_OK) {
        set_err(err, errlen, "redis: cannot set the socket timeout");
        redisFree(rc);
        return NULL;
    }
    for (int step = 0; step < 2; step++) {
        if (step == 0 && !o->password) continue;
        if (step == 1 && o->db == 0) continue;
        argb_t b;
        argb_init(&b);
        if (step == 0) {
            arg_str(&b, "AUTH");
            arg_str(&b, o->password);
        } else {
            arg_str(&b, "SELECT");
            arg_i64(&b, o->db);
        }
        redisReply *rep = b.bad ? NULL : sync_cmd(rc, &b, err, errlen);
        if (b.bad) set_err(err, errlen, "redis: out of memory");
        argb_free(&b);
        if (!rep) {
            redisFree(rc);
            return NULL;
        }
        freeReplyObject(rep);
    }
    return rc;
}

/* A field of a report hash, parsed: the dimensions part (up to the last
 * separator), the metric, the value. */
typedef struct field {
    const char *dims;
    size_t dlen;
    int metric;
    uint64_t value;
} field_t;

static int field_cmp(const void *a, const void *b)
{
    const field_t *x = a, *y = b;
    size_t n = x->dlen < y->dlen ? x->dlen : y->dlen;
    int c = memcmp(x->dims, y->dims, n);
    if (c) return c;
    if (x->dlen != y->dlen) return x->dlen < y->dlen ? -1 : 1;
    return x->metric - y->metric;
}

static bool parse_field(const redisReply *k, const redisReply *v, field_t *f)
{
    if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || !k->str || !v->str)
        return false;
    const char *s = k->str;
    size_t len = k->len, last = len, nsep = 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] == SEP) {
            nsep++;
            last = i;
        }
    if (nsep != 6) return false;
    f->dims = s;
    f->dlen = last;
    f->metric = -1;
    for (int m = 0; m < 6; m++)
        if (len - last - 1 == strlen(metric_fields[m]) &&
            memcmp(s + last + 1, metric_fields[m], len - last - 1) == 0)
            f->metric = m;
    if (f->metric < 0) return false;
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v->str, &end, 10);
    if (errno || end == v->str || *end) return false;
    f->value = n < 0 ? 0 : (uint64_t)n;
    return true;
}

static void fill_row(lim_usage_row_t *row, const field_t *f)
{
    char *dims[6] = {row->workspace, row->team,     row->project,
                     row->agent,     row->provider, row->model};
    const char *p = f->dims, *end = f->dims + f->dlen;
    for (int d = 0; d < 6; d++) {
        const char *q = d < 5 ? memchr(p, SEP, (size_t)(end - p)) : end;
        if (!q) q = end;
        size_t len = (size_t)(q - p);
        if (len > LIM_DIM_MAX - 1) len = LIM_DIM_MAX - 1;
        memcpy(dims[d], p, len);
        dims[d][len] = '\0';
        p = q < end ? q + 1 : end;
    }
}

/* The rows of one hour's HGETALL reply.  1 when fn stopped, -1 on error. */
static int emit_hour(int64_t hour, const redisReply *rep, lim_redis_row_fn fn, void *ctx, char *err,
                     size_t errlen)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 2) {
        set_err(err, errlen, "redis: unexpected reply to HGETALL");
        return -1;
    }
    if (rep->elements == 0) return 0;
    field_t *fs = malloc(rep->elements / 2 * sizeof *fs);
    if (!fs) {
        set_err(err, errlen, "redis: out of memory");
        return -1;
    }
    size_t nf = 0;
    for (size_t i = 0; i + 1 < rep->elements; i += 2)
        if (parse_field(rep->element[i], rep->element[i + 1], &fs[nf])) nf++;
    qsort(fs, nf, sizeof *fs, field_cmp);
    lim_usage_row_t *row = malloc(sizeof *row);
    if (!row) {
        free(fs);
        set_err(err, errlen, "redis: out of memory");
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < nf && rc == 0;) {
        memset(row, 0, sizeof *row);
        row->hour = hour;
        fill_row(row, &fs[i]);
        size_t j = i;
        for (;
             j < nf && fs[j].dlen == fs[i].dlen && memcmp(fs[j].dims, fs[i].dims, fs[i].dlen) == 0;
             j++) {
            uint64_t *dst[6] = {&row->requests,   &row->input,       &row->output,
                                &row->cache_read, &row->cache_write, &row->cost_nano};
            *dst[fs[j].metric] = fs[j].value;
        }
        if (fn(ctx, row) != 0) rc = 1;
        i = j;
    }
    free(row);
    free(fs);
    return rc;
}

int lim_redis_query_usage(const lim_redis_opts_t *o, int64_t since, int64_t until,
                          lim_redis_row_fn fn, void *ctx, char *err, size_t errlen)
{
    if (!fn) {
        set_err(err, errlen, "redis: no row function");
        return -1;
    }
    int64_t now = (int64_t)time(NULL);
    int64_t lo = since, hi = until;
    if (lo < now - QUERY_PAST_S) lo = now - QUERY_PAST_S;
    if (lo < 0) lo = 0;
    if (hi > now + QUERY_FUTURE_S) hi = now + QUERY_FUTURE_S;
    redisContext *rc = sync_open(o, err, errlen);
    if (!rc) return -1;
    int64_t first = (lo + 3599) / 3600 * 3600;
    int ret = 0;
    for (int64_t h0 = first; h0 < hi && ret == 0; h0 += 3600 * QUERY_BATCH) {
        redisReply *reps[QUERY_BATCH] = {NULL};
        size_t k = 0;
        for (int64_t h = h0; h < hi && k < QUERY_BATCH; h += 3600, k++) {
            char key[LIM_REDIS_PREFIX_MAX + 32];
            int klen = snprintf(key, sizeof key, "%s:u:%" PRId64, o->prefix, h);
            const char *argv[2] = {"HGETALL", key};
            size_t lens[2] = {7, (size_t)klen};
            if (redisAppendCommandArgv(rc, 2, argv, lens) != REDIS_OK) {
                set_err(err, errlen, "redis: out of memory");
                ret = -1;
                break;
            }
        }
        for (size_t i = 0; i < k && ret == 0; i++) {
            void *rep = NULL;
            if (redisGetReply(rc, &rep) != REDIS_OK || !rep) {
                char msg[256];
                snprintf(msg, sizeof msg, "redis: %s", rc->errstr[0] ? rc->errstr : "no reply");
                set_err(err, errlen, msg);
                ret = -1;
                break;
            }
            reps[i] = rep;
        }
        for (size_t i = 0; i < k; i++) {
            if (ret == 0 && reps[i]) {
                int e = emit_hour(h0 + (int64_t)i * 3600, reps[i], fn, ctx, err, errlen);
                if (e < 0) ret = -1;
                if (e > 0) ret = 1;
            }
            if (reps[i]) freeReplyObject(reps[i]);
        }
    }
    redisFree(rc);
    return ret < 0 ? -1 : 0;
}

int lim_redis_get_counters(const lim_redis_opts_t *o, const char *const *keys, size_t n,
                           uint64_t *values, char *err, size_t errlen)
{
    if (n && (!keys || !values)) {
        set_err(err, errlen, "redis: no keys or values");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (!keys[i]) {
            set_err(err, errlen, "redis: NULL key");
            return -1;
        }
    redisContext *rc = sync_open(o, err, errlen);
    if (!rc) return -1;
    int ret = 0;
    for (size_t i0 = 0; i0 < n && ret == 0; i0 += MGET_BATCH) {
        size_t k = n - i0 < MGET_BATCH ? n - i0 : MGET_BATCH;
        argb_t b;
        argb_init(&b);
        arg_str(&b, "MGET");
        for (size_t i = 0; i < k; i++)
            arg_key(&b, o->prefix, "c", keys[i0 + i], "");
        redisReply *rep = NULL;
        if (b.bad) {
            set_err(err, errlen, "redis: out of memory");
            ret = -1;
        } else if (!(rep = sync_cmd(rc, &b, err, errlen))) {
            ret = -1;
        } else if (rep->type != REDIS_REPLY_ARRAY || rep->elements != k) {
            set_err(err, errlen, "redis: unexpected reply to MGET");
            ret = -1;
        }
        for (size_t i = 0; ret == 0 && i < k; i++) {
            const redisReply *e = rep->element[i];
            if (e->type == REDIS_REPLY_NIL) {
                values[i0 + i] = 0;
                continue;
            }
            char *end = NULL;
            errno = 0;
            long long v = e->type == REDIS_REPLY_STRING && e->str ? strtoll(e->str, &end, 10) : 0;
            if (e->type != REDIS_REPLY_STRING || !e->str || errno || end == e->str || *end) {
                char msg[LIM_COUNTER_KEY_MAX + 64];
                snprintf(msg, sizeof msg, "redis: counter %s is not a number", keys[i0 + i]);
                set_err(err, errlen, msg);
                ret = -1;
                break;
            }
            values[i0 + i] = v < 0 ? 0 : (uint64_t)v;
        }
        if (rep) freeReplyObject(rep);
        argb_free(&b);
    }
    redisFree(rc);
    return ret;
}

int lim_redis_put_override(const lim_redis_opts_t *o, const char *scope, const char *text,
                           char *err, size_t errlen)
{
    if (!scope || !scope[0]) {
        set_err(err, errlen, "redis: empty scope");
        return -1;
    }
    redisContext *rc = sync_open(o, err, errlen);
    if (!rc) return -1;
    argb_t b;
    argb_init(&b);
    arg_str(&b, text ? "HSET" : "HDEL");
    arg_key(&b, o->prefix, "budgets", NULL, "");
    arg_str(&b, scope);
    if (text) arg_str(&b, text);
    int ret = -1;
    if (b.bad) {
        set_err(err, errlen, "redis: out of memory");
    } else {
        redisReply *rep = sync_cmd(rc, &b, err, errlen);
        if (rep) {
            ret = 0;
            freeReplyObject(rep);
        }
    }
    argb_free(&b);
    redisFree(rc);
    return ret;
}

int lim_redis_load_overrides(const lim_redis_opts_t *o, lim_redis_override_fn fn, void *ctx,
                             char *err, size_t errlen)
{
    if (!fn) {
        set_err(err, errlen, "redis: no override function");
        return -1;
    }
    redisContext *rc = sync_open(o, err, errlen);
    if (!rc) return -1;
    argb_t b;
    argb_init(&b);
    arg_str(&b, "HGETALL");
    arg_key(&b, o->prefix, "budgets", NULL, "");
    int ret = -1;
    redisReply *rep = NULL;
    if (b.bad) {
        set_err(err, errlen, "redis: out of memory");
    } else if ((rep = sync_cmd(rc, &b, err, errlen))) {
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 2) {
            set_err(err, errlen, "redis: unexpected reply to HGETALL");
        } else {
            ret = 0;
            for (size_t i = 0; i + 1 < rep->elements; i += 2) {
                const redisReply *k = rep->element[i], *v = rep->element[i + 1];
                if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
                if (fn(ctx, k->str, v->str) != 0) break;
            }
        }
        freeReplyObject(rep);
    }
    argb_free(&b);
    redisFree(rc);
    return ret;
}
