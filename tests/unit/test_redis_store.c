/*
 * limits/redis: the shared store against a real redis-server started by the
 * test (reserve/refuse, settle and soft thresholds across two replicas,
 * expiry, usage report round trip, overrides, counters, NOSCRIPT, AUTH and
 * SELECT, a server that dies and comes back, a server that never answers,
 * teardown with commands in flight).  Each test runs its own uv loop with a
 * guard timer, and the whole binary has an alarm() watchdog.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "limits/redis.h"

#ifndef REDIS_SERVER
#define REDIS_SERVER "/usr/bin/redis-server"
#endif

static uint16_t g_port; /* the shared server */
static pid_t g_pid;

/* ---- servers -------------------------------------------------------------- */

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0) close(fd);
        return 0;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static redisContext *sync_conn(uint16_t port, const char *password)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c || c->err) {
        if (c) redisFree(c);
        return NULL;
    }
    if (password) {
        redisReply *rep = redisCommand(c, "AUTH %s", password);
        if (rep) freeReplyObject(rep);
    }
    return c;
}

static bool pings(uint16_t port, const char *password)
{
    redisContext *c = sync_conn(port, password);
    if (!c) return false;
    redisReply *rep = redisCommand(c, "PING");
    bool ok = rep && rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "PONG") == 0;
    if (rep) freeReplyObject(rep);
    redisFree(c);
    return ok;
}

/* Start redis-server on port (extra: NULL or "--requirepass", "x"); wait
 * until it answers PING.  0 on failure. */
static pid_t start_server(uint16_t port, const char *password)
{
    char sport[16];
    snprintf(sport, sizeof sport, "%u", port);
    pid_t pid = fork();
    if (pid < 0) return 0;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        if (password)
            execl(REDIS_SERVER, REDIS_SERVER, "--port", sport, "--save", "", "--appendonly", "no",
                  "--bind", "127.0.0.1", "--requirepass", password, (char *)NULL);
        else
            execl(REDIS_SERVER, REDIS_SERVER, "--port", sport, "--save", "", "--appendonly", "no",
                  "--bind", "127.0.0.1", (char *)NULL);
        _exit(127);
    }
    uint64_t t0 = now_ms();
    while (now_ms() - t0 < 10000) {
        if (pings(port, password)) return pid;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) return 0;
        usleep(20000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return 0;
}

static void stop_server(pid_t pid)
{
    if (pid <= 0) return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void redis_do(uint16_t port, const char *password, const char *cmd)
{
    redisContext *c = sync_conn(port, password);
    assert_non_null(c);
    redisReply *rep = redisCommand(c, cmd);
    assert_non_null(rep);
    assert_int_not_equal(rep->type, REDIS_REPLY_ERROR);
    freeReplyObject(rep);
    redisFree(c);
}

static long long redis_int(uint16_t port, const char *cmd, const char *key)
{
    redisContext *c = sync_conn(port, NULL);
    assert_non_null(c);
    redisReply *rep = redisCommand(c, cmd, key);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    long long v = rep->integer;
    freeReplyObject(rep);
    redisFree(c);
    return v;
}

/* ---- loop with a guard ------------------------------------------------------ */

typedef struct tloop {
    uv_loop_t loop;
    uv_timer_t guard, poll;
    bool expired;
    bool (*pred)(void *);
    void *pred_arg;
} tloop_t;

static void on_guard(uv_timer_t *t)
{
    tloop_t *tl = t->data;
    tl->expired = true;
    uv_stop(&tl->loop);
}

static void on_poll(uv_timer_t *t)
{
    tloop_t *tl = t->data;
    if (tl->pred && tl->pred(tl->pred_arg)) uv_stop(&tl->loop);
}

static void tl_init(tloop_t *tl)
{
    memset(tl, 0, sizeof *tl);
    assert_int_equal(uv_loop_init(&tl->loop), 0);
    uv_timer_init(&tl->loop, &tl->guard);
    uv_timer_init(&tl->loop, &tl->poll);
    tl->guard.data = tl->poll.data = tl;
}

/* Run until pred(arg) or ms elapse; true when pred held. */
static bool tl_run(tloop_t *tl, bool (*pred)(void *), void *arg, uint64_t ms)
{
    tl->expired = false;
    tl->pred = pred;
    tl->pred_arg = arg;
    uv_timer_start(&tl->guard, on_guard, ms, 0);
    uv_timer_start(&tl->poll, on_poll, 5, 5);
    while (!pred(arg) && !tl->expired)
        uv_run(&tl->loop, UV_RUN_ONCE);
    uv_timer_stop(&tl->guard);
    uv_timer_stop(&tl->poll);
    return pred(arg);
}

/* Close the guard handles, let every handle close, and check none is left. */
static void tl_done(tloop_t *tl)
{
    uv_close((uv_handle_t *)&tl->guard, NULL);
    uv_close((uv_handle_t *)&tl->poll, NULL);
    uv_run(&tl->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&tl->loop), 0);
}

/* ---- results ------------------------------------------------------------------ */

typedef struct res {
    int calls;
    int status;
    size_t idx;
    uint64_t value;
    size_t soft[LIM_REDIS_MAX_COUNTERS], nsoft;
    char err[256];
    uint64_t at;
} res_t;

static void reserve_cb(void *ctx, int status, size_t idx, uint64_t value, const char *err)
{
    res_t *r = ctx;
    r->calls++;
    r->status = status;
    r->idx = idx;
    r->value = value;
    r->at = now_ms();
    snprintf(r->err, sizeof r->err, "%s", err ? err : "");
}

static void settle_cb(void *ctx, int status, const size_t *soft, size_t nsoft, const char *err)
{
    res_t *r = ctx;
    r->calls++;
    r->status = status;
    r->nsoft = nsoft;
    for (size_t i = 0; i < nsoft && i < LIM_REDIS_MAX_COUNTERS; i++)
        r->soft[i] = soft[i];
    r->at = now_ms();
    snprintf(r->err, sizeof r->err, "%s", err ? err : "");
}

static bool called(void *arg)
{
    return ((res_t *)arg)->calls > 0;
}

typedef struct many {
    res_t *r;
    size_t n;
} many_t;

static bool all_called(void *arg)
{
    many_t *m = arg;
    for (size_t i = 0; i < m->n; i++)
        if (m->r[i].calls == 0) return false;
    return true;
}

static bool is_connected(void *arg)
{
    return lim_redis_connected(arg);
}

static lim_redis_opts_t opts(uint16_t port, const char *prefix)
{
    lim_redis_opts_t o = {.host = "127.0.0.1",
                          .port = port,
                          .db = 0,
                          .password = NULL,
                          .prefix = prefix,
                          .timeout_ms = 2000};
    return o;
}

static lim_counter_t ctr(const char *key, uint64_t max, uint64_t amount, uint32_t soft)
{
    lim_counter_t c;
    memset(&c, 0, sizeof c);
    snprintf(c.key, sizeof c.key, "%s", key);
    c.max = max;
    c.amount = amount;
    c.expire_at = (int64_t)time(NULL) + 3600;
    c.soft_pct = soft;
    return c;
}

static res_t reserve_wait(tloop_t *tl, lim_redis_t *r, const lim_counter_t *c, size_t n)
{
    res_t res;
    memset(&res, 0, sizeof res);
    assert_int_equal(lim_redis_reserve(r, c, n, reserve_cb, &res), 0);
    assert_int_equal(res.calls, 0); /* never synchronous */
    assert_true(tl_run(tl, called, &res, 5000));
    assert_int_equal(res.calls, 1);
    return res;
}

static res_t settle_wait(tloop_t *tl, lim_redis_t *r, const lim_counter_t *c, const uint64_t *rsv,
                         const uint64_t *act, size_t n, const lim_usage_row_t *row)
{
    res_t res;
    memset(&res, 0, sizeof res);
    assert_int_equal(lim_redis_settle(r, c, rsv, act, n, row, settle_cb, &res), 0);
    assert_int_equal(res.calls, 0);
    assert_true(tl_run(tl, called, &res, 5000));
    assert_int_equal(res.calls, 1);
    return res;
}

static uint64_t counter(uint16_t port, const char *prefix, const char *key)
{
    lim_redis_opts_t o = opts(port, prefix);
    const char *keys[1] = {key};
    uint64_t v = 12345;
    char err[256] = "";
    if (lim_redis_get_counters(&o, keys, 1, &v, err, sizeof err) != 0) fail_msg("%s", err);
    return v;
}

static lim_redis_t *store(tloop_t *tl, const lim_redis_opts_t *o)
{
    char err[256] = "";
    lim_redis_t *r = lim_redis_new(&tl->loop, o, err, sizeof err);
    if (!r) fail_msg("lim_redis_new: %s", err);
    return r;
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_reserve_refuse(void **state)
{
    (void)state;
    tloop_t tl;
    tl_init(&tl);
    lim_redis_opts_t o = opts(g_port, "t_res");
    lim_redis_t *r = store(&tl, &o);

    lim_counter_t c[2] = {ctr("a", 10, 4, 0), ctr("b", 0, 4, 0)};
    res_t x = reserve_wait(&tl, r, c, 2);
    assert_int_equal(x.status, LIM_RS_OK);
    assert_true(lim_redis_connected(r));
    x = reserve_wait(&tl, r, c, 2);
    assert_int_equal(x.status, LIM_RS_OK);
    assert_int_equal(counter(g_port, "t_res", "a"), 8);
    assert_int_equal(counter(g_port, "t_res", "b"), 8);

    /* 8 + 4 > 10: would overrun */
    x = reserve_wait(&tl, r, c, 2);
    assert_int_equal(x.status, LIM_RS_REFUSED);
    assert_int_equal(x.idx, 0);
    assert_int_equal(x.value, 8);
    assert_int_equal(counter(g_port, "t_res", "a"), 8);
    assert_int_equal(counter(g_port, "t_res", "b"), 8);

    /* fill a exactly, then it is exhausted even for 0; the first counter is
     * not touched by the refusal of the second */
    lim_counter_t d[2] = {ctr("c", 100, 1, 0), ctr("a", 10, 2, 0)};
    x = reserve_wait(&tl, r, d, 2);
    assert_int_equal(x.status, LIM_RS_OK);
    assert_int_equal(counter(g_port, "t_res", "a"), 10);
    d[1].amount = 0;
    x = reserve_wait(&tl, r, d, 2);
    assert_int_equal(x.status, LIM_RS_REFUSED);
    assert_int_equal(x.idx, 1);
    assert_int_equal(x.value, 10);
    assert_int_equal(counter(g_port, "t_res", "c"), 1);
    assert_int_equal(counter(g_port, "t_res", "a"), 10);

    /* many in flight at once on one connection */
    res_t many[50];
    memset(many, 0, sizeof many);
    lim_counter_t e = ctr("e", 30, 1, 0);
    for (int i = 0; i < 50; i++)
        assert_int_equal(lim_redis_reserve(r, &e, 1, reserve_cb, &many[i]), 0);
    many_t m = {many, 50};
    assert_true(tl_run(&tl, all_called, &m, 5000));
    int ok = 0, refused = 0;
    for (int i = 0; i < 50; i++) {
        assert_int_equal(many[i].calls, 1);
        ok += many[i].status == LIM_RS_OK;
        refused += many[i].status == LIM_RS_REFUSED;
    }
    assert_int_equal(ok, 30);
    assert_int_equal(refused, 20);
    assert_int_equal(counter(g_port, "t_res", "e"), 30);

    lim_redis_free(r);
    tl_done(&tl);
}

static void test_settle_soft_two_replicas(void **state)
{
    (void)state;
    tloop_t tl;
    tl_init(&tl);
    lim_redis_opts_t o = opts(g_port, "t_soft");
    lim_redis_t *r1 = store(&tl, &o), *r2 = store(&tl, &o);

    lim_counter_t k = ctr("k", 100, 30, 50);
    res_t x = reserve_wait(&tl, r1, &k, 1);
    assert_int_equal(x.status, LIM_RS_OK);
    uint64_t rsv = 30, act = 40;
    x = settle_wait(&tl, r1, &k, &rsv, &act, 1, NULL);
    assert_int_equal(x.status, LIM_RS_OK);
    assert_int_equal(x.nsoft, 0);
    assert_int_equal(counter(g_port, "t_soft", "k"), 40);

    k.amount = 10;
    x = reserve_wait(&tl, r2, &k, 1);
    assert_int_equal(x.status, LIM_RS_OK);
    rsv = 10;
    act = 20;
    x = settle_wait(&tl, r2, &k, &rsv, &act, 1, NULL);
    assert_int_equal(x.status, LIM_RS_OK);
    assert_int_equal(x.nsoft, 1);
    assert_int_equal(x.soft[0], 0);
    assert_int_equal(counter(g_port, "t_soft", "k"), 60);

    /* past the threshold again, on the other replica: not reported again */
    x = reserve_wait(&tl, r1, &k, 1);
    assert_int_equal(x.status, LIM_RS_OK);
    rsv = 10;
    act = 15;
    x = settle_wait(&tl, r1, &k, &rsv, &act, 1, NULL);
    assert_int_equal(x.nsoft, 0);
    assert_int_equal(counter(g_port, "t_soft", "k"), 75);

    /* the second counter of a settle crosses (80% of 10 = 8) */
    lim_counter_t two[2] = {ctr("k", 100, 0, 50), ctr("k2", 10, 0, 80)};
    uint64_t rs2[2] = {0, 0}, ac2[2] = {0, 8};
    x = settle_wait(&tl, r2, two, rs2, ac2, 2, NULL);
    assert_int_equal(x.nsoft, 1);
    assert_int_equal(x.soft[0], 1);

    /* both replicas cross a fresh threshold at once: exactly one report */
    lim_counter_t k3 = ctr("k3", 10, 0, 50);
    uint64_t z = 0, six = 6;
    res_t both[2];
    memset(both, 0, sizeof both);
    assert_int_equal(lim_redis_settle(r1, &k3, &z, &six, 1, NULL, settle_cb, &both[0]), 0);
    assert_int_equal(lim_redis_settle(r2, &k3, &z, &six, 1, NULL, settle_cb, &both[1]), 0);
    many_t m = {both, 2};
    assert_true(tl_run(&tl, all_called, &m, 5000));
    assert_int_equal(both[0].status, LIM_RS_OK);
    assert_int_equal(both[1].status, LIM_RS_OK);
    assert_int_equal(both[0].nsoft + both[1].nsoft, 1);
    assert_int_equal(counter(g_port, "t_soft", "k3"), 12);

    /* actual below the reservation never takes the counter below 0 */
    lim_counter_t n = ctr("n", 100, 5, 0);
    x = reserve_wait(&tl, r1, &n, 1);
    assert_int_equal(x.status, LIM_RS_OK);
    assert_int_equal(counter(g_port, "t_soft", "n"), 5);
    rsv = 50;
    act = 0;
    x = settle_wait(&tl, r1, &n, &rsv, &act, 1, NULL);
    assert_int_equal(x.status, LIM_RS_OK);
    assert_int_equal(counter(g_port, "t_soft", "n"), 0);
    rsv = 5;
    act = 3;
    x = reserve_wait(&tl, r1, &n, 1);
    assert_int_equal(x.status, LIM_RS_OK);
    x = settle_wait(&tl, r1, &n, &rsv, &act, 1, NULL);
    assert_int_equal(x.status, LIM_RS_OK);
    assert_int_equal(counter(g_port, "t_soft", "n"), 3);

    /* fire and forget: no callback; a later command on the same connection
     * is answered after it */
    rsv = 0;
    act = 7;
    assert_int_equal(lim_redis_settle(r1, &n, &rsv, &act, 1, NULL, NULL, NULL), 0);
    n.max = 0;
    n.amount = 0;
    x = reserve_wait(&tl, r1, &n, 1);
    assert_int_equal(x.status, LIM_RS_OK);
    assert_int_equal(counter(g_port, "t_soft", "n"), 10);

    lim_redis_free(r1);
    lim_redis_free(r2);
    tl_done(&tl);
}

static void test_expiry(void **state)
{
    (void)state;
    tloop_t tl;
    tl_init(&tl);
    lim_redis_opts_t o = opts(g_port, "t_exp");
    lim_redis_t *r = store(&tl, &o);
    int64_t now = (int64_t)time(NULL);

    lim_counter_t k = ctr("x", 10, 6, 50);
    k.expire_at = now + 1000;
    res_t x = reserve_wait(&tl, r, &k, 1);
    assert_int_equal(x.status, LIM_RS_OK);
    long long ttl = redis_int(g_port, "TTL %s", "t_exp:c:x");
    assert_true(ttl > 990 && ttl <= 1000);

    /* An existing counter keeps the expiry it was created with (every call
     * of a window carries the same one); the soft marker gets the settle's. */
    k.expire_at = now + 2000;
    uint64_t rsv = 6, act = 6;
    lim_usage_row_t row;
    memset(&row, 0, sizeof row);
    row.hour = now - now % 3600;
    snprintf(row.workspace, sizeof row.workspace, "w");
    row.requests = 1;
    x = settle_wait(&tl, r, &k, &rsv, &act, 1, &row);
    assert_int_equal(x.status, LIM_RS_OK);
    assert_int_equal(x.nsoft, 1);
    ttl = redis_int(g_port, "TTL %s", "t_exp:c:x");
    assert_true(ttl > 990 && ttl <= 1000);
    ttl = redis_int(g_port, "TTL %s", "t_exp:c:x:soft");
    assert_true(ttl > 1990 && ttl <= 2000);

    /* A counter gone before its settle (expired, or deleted by hand) is
     * created again by it, with the settle's expiry; so is one whose
     * refund took it below zero (clamped to 0). */
    lim_counter_t y = ctr("y", 0, 0, 0);
    y.expire_at = now + 3000;
    uint64_t rsv_y = 0, act_y = 3;
    x = settle_wait(&tl, r, &y, &rsv_y, &act_y, 1, NULL);
    assert_int_equal(x.status, LIM_RS_OK);
    assert_int_equal(counter(g_port, "t_exp", "y"), 3);
    ttl = redis_int(g_port, "TTL %s", "t_exp:c:y");
    assert_true(ttl > 2990 && ttl <= 3000);
    rsv_y = 10;
    act_y = 0;
    x = settle_wait(&tl, r, &y, &rsv_y, &act_y, 1, NULL);
    assert_int_equal(x.status, LIM_RS_OK);
    assert_int_equal(counter(g_port, "t_exp", "y"), 0);
    ttl = redis_int(g_port, "TTL %s", "t_exp:c:y");
    assert_true(ttl > 2990 && ttl <= 3000);
    char hkey[64];
    snprintf(hkey, sizeof hkey, "t_exp:u:%" PRId64, row.hour);
    ttl = redis_int(g_port, "TTL %s", hkey);
    assert_true(ttl > 399LL * 86400 && ttl <= 400LL * 86400);

    lim_redis_free(r);
    tl_done(&tl);
}

typedef struct rows {
    lim_usage_row_t r[16];
    size_t n;
    size_t stop_after; /* 0: never */
} rows_t;

static int collect_row(void *ctx, const lim_usage_row_t *row)
{
    rows_t *rs = ctx;
    if (rs->n < 16) rs->r[rs->n++] = *row;
    return rs->stop_after && rs->n >= rs->stop_after;
}

static lim_usage_row_t mkrow(int64_t hour, const char *ws, const char *agent, const char *model)
{
    lim_usage_row_t row;
    memset(&row, 0, sizeof row);
    row.hour = hour;
    snprintf(row.workspace, sizeof row.workspace, "%s", ws);
    snprintf(row.team, sizeof row.team, "platform");
    snprintf(row.project, sizeof row.project, "proj");
    snprintf(row.agent, sizeof row.agent, "%s", agent);
    snprintf(row.provider, sizeof row.provider, "openai");
    snprintf(row.model, sizeof row.model, "%s", model);
    return row;
}

static void test_usage_rows(void **state)
{
    (void)state;
    tloop_t tl;
    tl_init(&tl);
    lim_redis_opts_t o = opts(g_port, "t_use");
    lim_redis_t *r = store(&tl, &o);
    int64_t now = (int64_t)time(NULL), hour = now - now % 3600;

    lim_usage_row_t a = mkrow(hour, "ws-a", "", "gpt-4o");
    a.requests = 1;
    a.input = 100;
    a.output = 50;
    a.cost_nano = 1234;
    res_t x = settle_wait(&tl, r, NULL, NULL, NULL, 0, &a);
    assert_int_equal(x.status, LIM_RS_OK);
    /* the same row again, with a counter in the same call */
    lim_counter_t k = ctr("k", 0, 0, 0);
    uint64_t rsv = 0, act = 150;
    a.cache_read = 10;
    x = settle_wait(&tl, r, &k, &rsv, &act, 1, &a);
    assert_int_equal(x.status, LIM_RS_OK);
    assert_int_equal(counter(g_port, "t_use", "k"), 150);

    lim_usage_row_t b = mkrow(hour, "ws-a", "bot\x1fone", "claude");
    b.requests = 0; /* requests is written even when 0 */
    b.output = 7;
    x = settle_wait(&tl, r, NULL, NULL, NULL, 0, &b);
    assert_int_equal(x.status, LIM_RS_OK);
    lim_usage_row_t c = mkrow(hour - 3600, "ws-b", "agent", "gpt-4o");
    c.requests = 3;
    c.cache_write = 9;
    x = settle_wait(&tl, r, NULL, NULL, NULL, 0, &c);
    assert_int_equal(x.status, LIM_RS_OK);

    char hkey[64];
    snprintf(hkey, sizeof hkey, "t_use:u:%" PRId64, hour);
    /* a: requests input output cache_read cost; b: requests output */
    assert_int_equal(redis_int(g_port, "HLEN %s", hkey), 7);

    rows_t rs;
    memset(&rs, 0, sizeof rs);
    char err[256] = "";
    if (lim_redis_query_usage(&o, hour - 3600, hour + 3600, collect_row, &rs, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(rs.n, 3);
    /* the earlier hour first */
    assert_int_equal(rs.r[0].hour, hour - 3600);
    assert_string_equal(rs.r[0].workspace, "ws-b");
    assert_string_equal(rs.r[0].team, "platform");
    assert_string_equal(rs.r[0].project, "proj");
    assert_string_equal(rs.r[0].agent, "agent");
    assert_string_equal(rs.r[0].provider, "openai");
    assert_string_equal(rs.r[0].model, "gpt-4o");
    assert_int_equal(rs.r[0].requests, 3);
    assert_int_equal(rs.r[0].cache_write, 9);
    assert_int_equal(rs.r[0].input, 0);
    /* then this hour, sorted by dimensions: agent "" before "bot_one" */
    assert_int_equal(rs.r[1].hour, hour);
    assert_string_equal(rs.r[1].agent, "");
    assert_string_equal(rs.r[1].model, "gpt-4o");
    assert_int_equal(rs.r[1].requests, 2);
    assert_int_equal(rs.r[1].input, 200);
    assert_int_equal(rs.r[1].output, 100);
    assert_int_equal(rs.r[1].cache_read, 10);
    assert_int_equal(rs.r[1].cache_write, 0);
    assert_int_equal(rs.r[1].cost_nano, 2468);
    assert_string_equal(rs.r[2].agent, "bot_one");
    assert_string_equal(rs.r[2].model, "claude");
    assert_int_equal(rs.r[2].requests, 0);
    assert_int_equal(rs.r[2].output, 7);

    /* [hour, hour + 1): this hour only; since not on an hour: next hour on */
    memset(&rs, 0, sizeof rs);
    assert_int_equal(lim_redis_query_usage(&o, hour, hour + 1, collect_row, &rs, err, sizeof err),
                     0);
    assert_int_equal(rs.n, 2);
    memset(&rs, 0, sizeof rs);
    assert_int_equal(
        lim_redis_query_usage(&o, hour - 3599, hour + 3600, collect_row, &rs, err, sizeof err), 0);
    assert_int_equal(rs.n, 2);
    /* a stop from the callback is not an error */
    memset(&rs, 0, sizeof rs);
    rs.stop_after = 1;
    assert_int_equal(lim_redis_query_usage(&o, 0, INT64_MAX, collect_row, &rs, err, sizeof err), 0);
    assert_int_equal(rs.n, 1);
    /* a wide range is clipped, not walked hour by hour since 1970 */
    memset(&rs, 0, sizeof rs);
    uint64_t t0 = now_ms();
    assert_int_equal(
        lim_redis_query_usage(&o, INT64_MIN, INT64_MAX, collect_row, &rs, err, sizeof err), 0);
    assert_int_equal(rs.n, 3);
    assert_true(now_ms() - t0 < 5000);

    lim_redis_free(r);
    tl_done(&tl);
}

typedef struct ovr {
    char scope[8][64], text[8][64];
    size_t n;
} ovr_t;

static int collect_override(void *ctx, const char *scope, const char *text)
{
    ovr_t *v = ctx;
    if (v->n < 8) {
        snprintf(v->scope[v->n], sizeof v->scope[0], "%s", scope);
        snprintf(v->text[v->n], sizeof v->text[0], "%s", text);
        v->n++;
    }
    return 0;
}

static void test_overrides(void **state)
{
    (void)state;
    lim_redis_opts_t o = opts(g_port, "t_ovr");
    char err[256] = "";
    ovr_t v;
    memset(&v, 0, sizeof v);
    assert_int_equal(lim_redis_load_overrides(&o, collect_override, &v, err, sizeof err), 0);
    assert_int_equal(v.n, 0);
    assert_int_equal(lim_redis_put_override(&o, "team:a", "{\"tokens/day\": 5}", err, sizeof err),
                     0);
    assert_int_equal(lim_redis_put_override(&o, "workspace:b", "old", err, sizeof err), 0);
    assert_int_equal(lim_redis_put_override(&o, "workspace:b", "new", err, sizeof err), 0);
    assert_int_equal(lim_redis_load_overrides(&o, collect_override, &v, err, sizeof err), 0);
    assert_int_equal(v.n, 2);
    for (size_t i = 0; i < 2; i++) {
        if (strcmp(v.scope[i], "team:a") == 0)
            assert_string_equal(v.text[i], "{\"tokens/day\": 5}");
        else if (strcmp(v.scope[i], "workspace:b") == 0)
            assert_string_equal(v.text[i], "new");
        else
            fail_msg("unexpected scope %s", v.scope[i]);
    }
    assert_int_equal(lim_redis_put_override(&o, "team:a", NULL, err, sizeof err), 0);
    /* deleting what is not there is fine */
    assert_int_equal(lim_redis_put_override(&o, "team:zz", NULL, err, sizeof err), 0);
    memset(&v, 0, sizeof v);
    assert_int_equal(lim_redis_load_overrides(&o, collect_override, &v, err, sizeof err), 0);
    assert_int_equal(v.n, 1);
    assert_string_equal(v.scope[0], "workspace:b");
    assert_int_equal(lim_redis_put_override(&o, "", "x", err, sizeof err), -1);

    /* unreachable: an error with a message, quickly */
    uint16_t dead = free_port();
    lim_redis_opts_t d = opts(dead, "t_ovr");
    err[0] = '\0';
    assert_int_equal(lim_redis_load_overrides(&d, collect_override, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot connect"));
}

static void test_get_counters(void **state)
{
    (void)state;
    tloop_t tl;
    tl_init(&tl);
    lim_redis_opts_t o = opts(g_port, "t_get");
    lim_redis_t *r = store(&tl, &o);
    lim_counter_t c[2] = {ctr("team:t|tokens|day|1", 0, 17, 0), ctr("ws:w|cost|month|2", 0, 5, 0)};
    res_t x = reserve_wait(&tl, r, c, 2);
    assert_int_equal(x.status, LIM_RS_OK);

    /* more keys than one MGET batch, absent ones are 0 */
    enum { N = 230 };
    static char names[N][32];
    const char *keys[N];
    uint64_t vals[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "absent-%d", i);
        keys[i] = names[i];
    }
    keys[3] = "team:t|tokens|day|1";
    keys[N - 1] = "ws:w|cost|month|2";
    char err[256] = "";
    if (lim_redis_get_counters(&o, keys, N, vals, err, sizeof err) != 0) fail_msg("%s", err);
    for (int i = 0; i < N; i++)
        assert_int_equal(vals[i], i == 3 ? 17 : i == N - 1 ? 5 : 0);

    /* a key that is not a counter: an error naming it */
    redis_do(g_port, NULL, "SET t_get:c:bad notanumber");
    const char *bad[2] = {"team:t|tokens|day|1", "bad"};
    assert_int_equal(lim_redis_get_counters(&o, bad, 2, vals, err, sizeof err), -1);
    assert_non_null(strstr(err, "bad"));
    /* and a reserve touching it fails without changing the others */
    lim_counter_t withbad[2] = {ctr("team:t|tokens|day|1", 0, 1, 0), ctr("bad", 0, 1, 0)};
    x = reserve_wait(&tl, r, withbad, 2);
    assert_int_equal(x.status, LIM_RS_ERROR);
    assert_non_null(strstr(x.err, "not a number"));
    assert_int_equal(counter(g_port, "t_get", "team:t|tokens|day|1"), 17);
    assert_int_equal(lim_redis_get_counters(&o, keys, 0, vals, err, sizeof err), 0);

    lim_redis_free(r);
    tl_done(&tl);
}

static void test_noscript(void **state)
{
    (void)state;
    tloop_t tl;
    tl_init(&tl);
    lim_redis_opts_t o = opts(g_port, "t_nos");
    lim_redis_t *r = store(&tl, &o);
    lim_counter_t k = ctr("k", 100, 1, 0);
    uint64_t rsv = 1, act = 2;
    for (int round = 0; round < 3; round++) {
        /* twice each: the second goes out as EVALSHA */
        for (int i = 0; i < 2; i++) {
            res_t x = reserve_wait(&tl, r, &k, 1);
            assert_int_equal(x.status, LIM_RS_OK);
            x = settle_wait(&tl, r, &k, &rsv, &act, 1, NULL);
            assert_int_equal(x.status, LIM_RS_OK);
        }
        redis_do(g_port, NULL, "SCRIPT FLUSH");
    }
    assert_int_equal(counter(g_port, "t_nos", "k"), 12);
    /* several in flight when the scripts are gone */
    res_t many[10];
    memset(many, 0, sizeof many);
    for (int i = 0; i < 10; i++)
        assert_int_equal(lim_redis_reserve(r, &k, 1, reserve_cb, &many[i]), 0);
    many_t m = {many, 10};
    assert_true(tl_run(&tl, all_called, &m, 5000));
    for (int i = 0; i < 10; i++)
        assert_int_equal(many[i].status, LIM_RS_OK);
    redis_do(g_port, NULL, "SCRIPT FLUSH");
    memset(many, 0, sizeof many);
    for (int i = 0; i < 10; i++)
        assert_int_equal(lim_redis_reserve(r, &k, 1, reserve_cb, &many[i]), 0);
    assert_true(tl_run(&tl, all_called, &m, 5000));
    for (int i = 0; i < 10; i++) {
        assert_int_equal(many[i].calls, 1);
        assert_int_equal(many[i].status, LIM_RS_OK);
    }
    assert_int_equal(counter(g_port, "t_nos", "k"), 32);
    /* the EVALSHA fallback really ran: NOSCRIPT errors were counted */
    redisContext *c = sync_conn(g_port, NULL);
    assert_non_null(c);
    redisReply *rep = redisCommand(c, "INFO commandstats");
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    const char *es = strstr(rep->str, "cmdstat_evalsha:");
    assert_non_null(es);
    const char *fc = strstr(es, "failed_calls=");
    assert_non_null(fc);
    assert_true(atoi(fc + strlen("failed_calls=")) >= 10);
    freeReplyObject(rep);
    redisFree(c);
    lim_redis_free(r);
    tl_done(&tl);
}

static void test_auth_select_hostname(void **state)
{
    (void)state;
    uint16_t port = free_port();
    pid_t pid = start_server(port, "s3cret");
    if (!pid) fail_msg("cannot start %s on port %u", REDIS_SERVER, port);
    tloop_t tl;
    tl_init(&tl);
    lim_redis_opts_t o = opts(port, "t_auth");
    o.host = "localhost"; /* resolved on the thread pool */
    o.password = "s3cret";
    o.db = 3;
    lim_redis_t *r = store(&tl, &o);
    lim_counter_t k = ctr("k", 10, 4, 0);
    res_t x = reserve_wait(&tl, r, &k, 1);
    if (x.status != LIM_RS_OK) fail_msg("reserve: %s", x.err);
    assert_true(lim_redis_connected(r));
    const char *keys[1] = {"k"};
    uint64_t v = 0;
    char err[256] = "";
    if (lim_redis_get_counters(&o, keys, 1, &v, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(v, 4);
    /* it is in db 3, not in db 0 */
    lim_redis_opts_t o0 = o;
    o0.db = 0;
    assert_int_equal(lim_redis_get_counters(&o0, keys, 1, &v, err, sizeof err), 0);
    assert_int_equal(v, 0);
    lim_redis_free(r);

    /* freed while resolving, with a command queued: the memory waits for
     * the resolution to come back (tl_done checks nothing is left) */
    r = store(&tl, &o);
    res_t q;
    memset(&q, 0, sizeof q);
    assert_int_equal(lim_redis_reserve(r, &k, 1, reserve_cb, &q), 0);
    lim_redis_free(r);
    assert_int_equal(q.calls, 1);
    assert_string_equal(q.err, "redis: closing");

    /* a wrong password: the command fails with the AUTH error, not hangs */
    o.password = "wrong";
    r = store(&tl, &o);
    x = reserve_wait(&tl, r, &k, 1);
    assert_int_equal(x.status, LIM_RS_ERROR);
    assert_non_null(strstr(x.err, "AUTH"));
    assert_false(lim_redis_connected(r));
    assert_int_equal(lim_redis_get_counters(&o, keys, 1, &v, err, sizeof err), -1);
    lim_redis_free(r);
    tl_done(&tl);
    stop_server(pid);
}

static void test_server_killed_and_back(void **state)
{
    (void)state;
    uint16_t port = free_port();
    pid_t pid = start_server(port, NULL);
    if (!pid) fail_msg("cannot start %s on port %u", REDIS_SERVER, port);
    tloop_t tl;
    tl_init(&tl);
    lim_redis_opts_t o = opts(port, "t_kill");
    o.timeout_ms = 1000;
    lim_redis_t *r = store(&tl, &o);
    lim_counter_t k = ctr("k", 100, 1, 0);
    res_t x = reserve_wait(&tl, r, &k, 1);
    assert_int_equal(x.status, LIM_RS_OK);

    /* pending when the server dies */
    res_t p;
    memset(&p, 0, sizeof p);
    assert_int_equal(lim_redis_reserve(r, &k, 1, reserve_cb, &p), 0);
    stop_server(pid);
    uint64_t t0 = now_ms();
    assert_true(tl_run(&tl, called, &p, 3000));
    assert_int_equal(p.status, LIM_RS_ERROR);
    assert_true(p.at - t0 < 900); /* the lost connection, not the timeout */
    assert_false(lim_redis_connected(r));

    /* new ones fail fast, from the loop */
    for (int i = 0; i < 3; i++) {
        t0 = now_ms();
        x = reserve_wait(&tl, r, &k, 1);
        assert_int_equal(x.status, LIM_RS_ERROR);
        assert_true(x.at - t0 < 900);
    }
    /* a settle too, and a fire-and-forget one does no harm */
    uint64_t rsv = 1, act = 1;
    x = settle_wait(&tl, r, &k, &rsv, &act, 1, NULL);
    assert_int_equal(x.status, LIM_RS_ERROR);
    assert_int_equal(lim_redis_settle(r, &k, &rsv, &act, 1, NULL, NULL, NULL), 0);

    /* let a few reconnect attempts fail, then bring it back */
    res_t never;
    memset(&never, 0, sizeof never);
    tl_run(&tl, called, &never, 400);
    pid = start_server(port, NULL);
    if (!pid) fail_msg("cannot restart %s on port %u", REDIS_SERVER, port);
    assert_true(tl_run(&tl, is_connected, r, 10000));
    x = reserve_wait(&tl, r, &k, 1);
    assert_int_equal(x.status, LIM_RS_OK);
    assert_int_equal(counter(port, "t_kill", "k"), 1); /* a new, empty server */

    lim_redis_free(r);
    tl_done(&tl);
    stop_server(pid);
}

static void test_unreachable_at_start(void **state)
{
    (void)state;
    tloop_t tl;
    tl_init(&tl);
    lim_redis_opts_t o = opts(free_port(), "t_dead");
    lim_redis_t *r = store(&tl, &o); /* not an error of lim_redis_new */
    lim_counter_t k = ctr("k", 100, 1, 0);
    for (int i = 0; i < 3; i++) {
        uint64_t t0 = now_ms();
        res_t x = reserve_wait(&tl, r, &k, 1);
        assert_int_equal(x.status, LIM_RS_ERROR);
        if (x.at - t0 >= 1000) fail_msg("%d: %" PRIu64 " ms: %s", i, x.at - t0, x.err);
        assert_true(strlen(x.err) > 0);
    }
    assert_false(lim_redis_connected(r));
    lim_redis_free(r);
    tl_done(&tl);
}

static void test_timeout(void **state)
{
    (void)state;
    /* a server that accepts (the kernel does, from the backlog) but never answers */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 64), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);

    tloop_t tl;
    tl_init(&tl);
    lim_redis_opts_t o = opts(ntohs(a.sin_port), "t_to");
    o.timeout_ms = 300;
    lim_redis_t *r = store(&tl, &o);
    lim_counter_t k = ctr("k", 100, 1, 0);
    for (int i = 0; i < 2; i++) {
        res_t x, y;
        memset(&x, 0, sizeof x);
        memset(&y, 0, sizeof y);
        uint64_t t0 = now_ms();
        assert_int_equal(lim_redis_reserve(r, &k, 1, reserve_cb, &x), 0);
        uint64_t rsv = 1, act = 1;
        assert_int_equal(lim_redis_settle(r, &k, &rsv, &act, 1, NULL, settle_cb, &y), 0);
        assert_true(tl_run(&tl, called, &x, 3000));
        assert_true(tl_run(&tl, called, &y, 3000));
        assert_int_equal(x.status, LIM_RS_ERROR);
        assert_int_equal(y.status, LIM_RS_ERROR);
        assert_int_equal(x.calls, 1);
        assert_int_equal(y.calls, 1);
        uint64_t took = x.at - t0;
        if (took < 250 || took > 1200) fail_msg("timed out after %" PRIu64 " ms", took);
        if (i == 0) assert_non_null(strstr(x.err, "no reply within 300 ms"));
        /* wait out the reconnect back-off: the next one is sent again */
        res_t never;
        memset(&never, 0, sizeof never);
        tl_run(&tl, called, &never, 250);
    }
    lim_redis_free(r);
    tl_done(&tl);
    close(fd);
}

typedef struct freer {
    lim_redis_t *r;
    res_t res;
    int again; /* reserve from the callback */
} freer_t;

static void free_from_cb(void *ctx, int status, size_t idx, uint64_t value, const char *err)
{
    freer_t *f = ctx;
    reserve_cb(&f->res, status, idx, value, err);
    lim_redis_free(f->r);
}

/* lim_redis_drain: commands queued (not even written yet) get their
 * replies before free, without the loop running; a store that is down
 * returns at once. */
static void test_drain_before_free(void **state)
{
    (void)state;
    tloop_t tl;
    tl_init(&tl);
    lim_redis_opts_t o = opts(g_port, "t_drain");
    lim_redis_t *r = store(&tl, &o);
    assert_true(tl_run(&tl, is_connected, r, 5000));
    lim_counter_t k = ctr("k", 0, 0, 0);
    res_t x[20];
    memset(x, 0, sizeof x);
    for (int i = 0; i < 20; i++) {
        uint64_t rsv = 0, act = (uint64_t)i + 1;
        assert_int_equal(lim_redis_settle(r, &k, &rsv, &act, 1, NULL, settle_cb, &x[i]), 0);
    }
    lim_redis_drain(r, 2000);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(x[i].calls, 1);
        assert_int_equal(x[i].status, LIM_RS_OK);
    }
    lim_redis_free(r);
    assert_int_equal(counter(g_port, "t_drain", "k"), 210); /* 1 + 2 + ... + 20 */

    /* nothing listens on the port: not up, so no wait */
    lim_redis_opts_t dead = opts(1, "t_drain");
    r = store(&tl, &dead);
    res_t y;
    memset(&y, 0, sizeof y);
    uint64_t rsv = 0, act = 1;
    assert_int_equal(lim_redis_settle(r, &k, &rsv, &act, 1, NULL, settle_cb, &y), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    lim_redis_drain(r, 3000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 2);
    lim_redis_free(r);
    assert_int_equal(y.calls, 1);
    assert_int_equal(y.status, LIM_RS_ERROR);
    tl_done(&tl);
}

static void test_free_with_pending(void **state)
{
    (void)state;
    tloop_t tl;
    tl_init(&tl);
    lim_redis_opts_t o = opts(g_port, "t_free");
    lim_counter_t k = ctr("k", 100, 1, 0);

    /* right after new (still connecting): every callback before free returns */
    lim_redis_t *r = store(&tl, &o);
    res_t x[3];
    memset(x, 0, sizeof x);
    assert_int_equal(lim_redis_reserve(r, &k, 1, reserve_cb, &x[0]), 0);
    assert_int_equal(lim_redis_reserve(r, &k, 1, reserve_cb, &x[1]), 0);
    uint64_t rsv = 1, act = 1;
    assert_int_equal(lim_redis_settle(r, &k, &rsv, &act, 1, NULL, settle_cb, &x[2]), 0);
    lim_redis_free(r);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(x[i].calls, 1);
        assert_int_equal(x[i].status, LIM_RS_ERROR);
        assert_string_equal(x[i].err, "redis: closing");
    }
    /* and none after */
    res_t never;
    memset(&never, 0, sizeof never);
    tl_run(&tl, called, &never, 200);
    for (int i = 0; i < 3; i++)
        assert_int_equal(x[i].calls, 1);

    /* free from inside a reply callback, with more commands in flight */
    r = store(&tl, &o);
    assert_true(tl_run(&tl, is_connected, r, 5000));
    freer_t f;
    memset(&f, 0, sizeof f);
    f.r = r;
    memset(x, 0, sizeof x);
    assert_int_equal(lim_redis_reserve(r, &k, 1, free_from_cb, &f), 0);
    assert_int_equal(lim_redis_reserve(r, &k, 1, reserve_cb, &x[0]), 0);
    assert_int_equal(lim_redis_settle(r, &k, &rsv, &act, 1, NULL, settle_cb, &x[1]), 0);
    assert_true(tl_run(&tl, called, &f.res, 5000));
    assert_int_equal(f.res.status, LIM_RS_OK);
    assert_int_equal(x[0].calls, 1);
    assert_string_equal(x[0].err, "redis: closing");
    assert_int_equal(x[1].calls, 1);
    tl_run(&tl, called, &never, 100);

    /* free from inside a deferred failure (store down) */
    lim_redis_opts_t d = opts(free_port(), "t_free");
    r = store(&tl, &d);
    tl_run(&tl, called, &never, 50); /* let the connect fail */
    memset(&f, 0, sizeof f);
    f.r = r;
    memset(x, 0, sizeof x);
    assert_int_equal(lim_redis_reserve(r, &k, 1, free_from_cb, &f), 0);
    assert_int_equal(lim_redis_reserve(r, &k, 1, reserve_cb, &x[0]), 0);
    assert_true(tl_run(&tl, called, &f.res, 5000));
    assert_int_equal(f.res.status, LIM_RS_ERROR);
    assert_int_equal(x[0].calls, 1);
    tl_done(&tl);
}

typedef struct retry {
    lim_redis_t *r;
    lim_counter_t k;
    int calls, sync_calls;
    bool inside;
} retry_t;

static void retry_cb(void *ctx, int status, size_t idx, uint64_t value, const char *err)
{
    (void)idx;
    (void)value;
    (void)err;
    retry_t *t = ctx;
    if (t->inside) t->sync_calls++;
    t->calls++;
    assert_int_equal(status, LIM_RS_ERROR);
    if (t->calls < 20) {
        t->inside = true;
        assert_int_equal(lim_redis_reserve(t->r, &t->k, 1, retry_cb, t), 0);
        t->inside = false;
    }
}

static bool retried(void *arg)
{
    return ((retry_t *)arg)->calls >= 20;
}

static void test_retry_from_callback_while_down(void **state)
{
    (void)state;
    tloop_t tl;
    tl_init(&tl);
    lim_redis_opts_t o = opts(free_port(), "t_rt");
    retry_t t;
    memset(&t, 0, sizeof t);
    t.r = store(&tl, &o);
    t.k = ctr("k", 10, 1, 0);
    t.inside = true;
    assert_int_equal(lim_redis_reserve(t.r, &t.k, 1, retry_cb, &t), 0);
    t.inside = false;
    assert_true(tl_run(&tl, retried, &t, 5000));
    assert_int_equal(t.sync_calls, 0);
    lim_redis_free(t.r);
    tl_done(&tl);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    tloop_t tl;
    tl_init(&tl);
    char err[256] = "";
    lim_redis_opts_t o = opts(g_port, "t_bad");
    lim_redis_opts_t b = o;
    b.host = NULL;
    assert_null(lim_redis_new(&tl.loop, &b, err, sizeof err));
    assert_true(strlen(err) > 0);
    b = o;
    b.port = 0;
    assert_null(lim_redis_new(&tl.loop, &b, err, sizeof err));
    b = o;
    b.prefix = "";
    assert_null(lim_redis_new(&tl.loop, &b, err, sizeof err));
    assert_null(lim_redis_new(&tl.loop, NULL, err, sizeof err));
    b = o;
    b.db = -1;
    assert_int_equal(lim_redis_put_override(&b, "s", "t", err, sizeof err), -1);

    lim_redis_t *r = store(&tl, &o);
    res_t x;
    memset(&x, 0, sizeof x);
    lim_counter_t k[17];
    for (int i = 0; i < 17; i++)
        k[i] = ctr("k", 10, 1, 0);
    assert_int_equal(lim_redis_reserve(r, k, 0, reserve_cb, &x), -1);
    assert_int_equal(lim_redis_reserve(r, k, 17, reserve_cb, &x), -1);
    assert_int_equal(lim_redis_reserve(r, k, 1, NULL, &x), -1);
    assert_int_equal(lim_redis_reserve(r, NULL, 1, reserve_cb, &x), -1);
    lim_counter_t bad = k[0];
    memset(bad.key, 'x', sizeof bad.key); /* no NUL */
    assert_int_equal(lim_redis_reserve(r, &bad, 1, reserve_cb, &x), -1);
    bad = k[0];
    bad.amount = (uint64_t)INT64_MAX + 1;
    assert_int_equal(lim_redis_reserve(r, &bad, 1, reserve_cb, &x), -1);
    bad = k[0];
    bad.expire_at = 0;
    assert_int_equal(lim_redis_reserve(r, &bad, 1, reserve_cb, &x), -1);
    uint64_t z = 0;
    assert_int_equal(lim_redis_settle(r, NULL, NULL, NULL, 0, NULL, settle_cb, &x), -1);
    assert_int_equal(lim_redis_settle(r, k, NULL, &z, 1, NULL, settle_cb, &x), -1);
    lim_usage_row_t row;
    memset(&row, 0, sizeof row);
    row.hour = 3601;
    assert_int_equal(lim_redis_settle(r, NULL, NULL, NULL, 0, &row, settle_cb, &x), -1);
    assert_int_equal(x.calls, 0);
    /* 16 is fine */
    for (int i = 0; i < 16; i++)
        snprintf(k[i].key, sizeof k[i].key, "k%d", i);
    res_t y = reserve_wait(&tl, r, k, 16);
    assert_int_equal(y.status, LIM_RS_OK);
    assert_int_equal(counter(g_port, "t_bad", "k15"), 1);
    lim_redis_free(r);
    tl_done(&tl);
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN); /* as the daemon does: hiredis writes with write(2) */
    alarm(300);               /* a watchdog over the whole binary */
    if (access(REDIS_SERVER, X_OK) != 0) {
        fprintf(stderr,
                "test_redis_store: %s not found: install redis-server (scripts/install-deps "
                "installs it)\n",
                REDIS_SERVER);
        return -1;
    }
    g_port = free_port();
    g_pid = start_server(g_port, NULL);
    if (!g_pid) {
        fprintf(stderr, "test_redis_store: cannot start %s on port %u\n", REDIS_SERVER, g_port);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    stop_server(g_pid);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reserve_refuse),
        cmocka_unit_test(test_settle_soft_two_replicas),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_usage_rows),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_get_counters),
        cmocka_unit_test(test_noscript),
        cmocka_unit_test(test_auth_select_hostname),
        cmocka_unit_test(test_server_killed_and_back),
        cmocka_unit_test(test_unreachable_at_start),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_drain_before_free),
        cmocka_unit_test(test_free_with_pending),
        cmocka_unit_test(test_retry_from_callback_while_down),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
