/*
 * limits/ledger: reservations across scopes, windows, soft thresholds,
 * expiry, and no overspend under concurrent reserve/settle.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "limits/ledger.h"

static lim_spans_t spans_at(int64_t t)
{
    lim_spans_t s;
    s.start[LIM_WIN_MINUTE] = t - t % 60;
    s.end[LIM_WIN_MINUTE] = s.start[LIM_WIN_MINUTE] + 60;
    s.start[LIM_WIN_DAY] = t - t % 86400;
    s.end[LIM_WIN_DAY] = s.start[LIM_WIN_DAY] + 86400;
    s.start[LIM_WIN_MONTH] = 1000000; /* a fixed month for the tests */
    s.end[LIM_WIN_MONTH] = 1000000 + 31 * 86400;
    return s;
}

static lim_amount_t amt(uint64_t req, uint64_t tok, uint64_t cost)
{
    lim_amount_t a = {{req, tok, cost}};
    return a;
}

static void test_request_rate(void **state)
{
    (void)state;
    lim_ledger_t *l = lim_ledger_new();
    lim_rule_t rpm = {LIM_REQUESTS, LIM_WIN_MINUTE, 3, 0};
    lim_scope_t ws = {"workspace:a", &rpm, 1};
    int64_t now = 1200000 + 15; /* 15 s into a minute */
    lim_spans_t sp = spans_at(now);
    lim_amount_t one = amt(1, 0, 0);
    lim_resv_t *r[4];
    for (int i = 0; i < 3; i++)
        assert_int_equal(lim_ledger_reserve(l, &ws, 1, &one, &sp, now, &r[i], NULL), LIM_OK);
    lim_refusal_t why;
    assert_int_equal(lim_ledger_reserve(l, &ws, 1, &one, &sp, now, &r[3], &why), LIM_REFUSED);
    assert_null(r[3]);
    assert_string_equal(why.scope, "workspace:a");
    assert_int_equal(why.metric, LIM_REQUESTS);
    assert_int_equal(why.period, LIM_WIN_MINUTE);
    assert_int_equal(why.max, 3);
    assert_int_equal(why.reserved, 3);
    assert_int_equal(why.retry_after, 45);
    /* settling does not free request slots: they were used */
    for (int i = 0; i < 3; i++)
        lim_ledger_settle(l, r[i], &one, NULL, NULL, NULL);
    assert_int_equal(lim_ledger_reserve(l, &ws, 1, &one, &sp, now, &r[3], NULL), LIM_REFUSED);
    /* the next minute has room again */
    int64_t later = now + 45;
    lim_spans_t sp2 = spans_at(later);
    assert_int_equal(lim_ledger_reserve(l, &ws, 1, &one, &sp2, later, &r[3], NULL), LIM_OK);
    lim_ledger_settle(l, r[3], NULL, NULL, NULL, NULL);
    lim_ledger_free(l);
}

static void test_budget_reservations(void **state)
{
    (void)state;
    lim_ledger_t *l = lim_ledger_new();
    lim_rule_t day = {LIM_TOKENS, LIM_WIN_DAY, 100, 0};
    lim_scope_t team = {"team:t", &day, 1};
    int64_t now = 5 * 86400 + 100;
    lim_spans_t sp = spans_at(now);
    lim_amount_t est = amt(1, 60, 0);
    lim_resv_t *a, *b;
    assert_int_equal(lim_ledger_reserve(l, &team, 1, &est, &sp, now, &a, NULL), LIM_OK);
    /* a second request in flight would overrun: refused though not exhausted */
    lim_refusal_t why;
    assert_int_equal(lim_ledger_reserve(l, &team, 1, &est, &sp, now, &b, &why), LIM_REFUSED);
    assert_int_equal(why.used, 0);
    assert_int_equal(why.reserved, 60);
    assert_int_equal(why.wanted, 60);
    assert_int_equal(why.retry_after, 86400 - 100);
    /* the first used less than its estimate: the second now fits */
    lim_amount_t act = amt(1, 30, 0);
    lim_ledger_settle(l, a, &act, NULL, NULL, NULL);
    assert_int_equal(lim_ledger_reserve(l, &team, 1, &est, &sp, now, &b, NULL), LIM_OK);
    uint64_t used, resv;
    lim_ledger_peek(l, "team:t", LIM_TOKENS, LIM_WIN_DAY, sp.start[LIM_WIN_DAY], &used, &resv);
    assert_int_equal(used, 30);
    assert_int_equal(resv, 60);
    /* a stream that used more than estimated is charged in full */
    act = amt(1, 75, 0);
    lim_ledger_settle(l, b, &act, NULL, NULL, NULL);
    lim_ledger_peek(l, "team:t", LIM_TOKENS, LIM_WIN_DAY, sp.start[LIM_WIN_DAY], &used, &resv);
    assert_int_equal(used, 105);
    assert_int_equal(resv, 0);
    /* exhausted: even a zero estimate is refused */
    lim_amount_t zero = amt(0, 0, 0);
    assert_int_equal(lim_ledger_reserve(l, &team, 1, &zero, &sp, now, &b, NULL), LIM_REFUSED);
    lim_ledger_free(l);
}

static void test_all_or_nothing(void **state)
{
    (void)state;
    lim_ledger_t *l = lim_ledger_new();
    lim_rule_t ws_rules[] = {{LIM_REQUESTS, LIM_WIN_MINUTE, 100, 0},
                             {LIM_COST, LIM_WIN_MONTH, 1000, 0}};
    lim_rule_t team_rule = {LIM_COST, LIM_WIN_MONTH, 500, 0};
    lim_scope_t scopes[] = {{"workspace:a", ws_rules, 2}, {"team:t", &team_rule, 1}};
    int64_t now = 2000000;
    lim_spans_t sp = spans_at(now);
    lim_amount_t est = amt(1, 0, 600);
    lim_resv_t *r;
    lim_refusal_t why;
    assert_int_equal(lim_ledger_reserve(l, scopes, 2, &est, &sp, now, &r, &why), LIM_REFUSED);
    assert_string_equal(why.scope, "team:t");
    assert_int_equal(why.metric, LIM_COST);
    uint64_t used, resv;
    lim_ledger_peek(l, "workspace:a", LIM_COST, LIM_WIN_MONTH, sp.start[LIM_WIN_MONTH], &used,
                    &resv);
    assert_int_equal(resv, 0); /* nothing held where it passed */
    lim_ledger_peek(l, "workspace:a", LIM_REQUESTS, LIM_WIN_MINUTE, sp.start[LIM_WIN_MINUTE], &used,
                    &resv);
    assert_int_equal(resv, 0);
    est = amt(1, 0, 400);
    assert_int_equal(lim_ledger_reserve(l, scopes, 2, &est, &sp, now, &r, NULL), LIM_OK);
    lim_ledger_peek(l, "team:t", LIM_COST, LIM_WIN_MONTH, sp.start[LIM_WIN_MONTH], &used, &resv);
    assert_int_equal(resv, 400);
    lim_ledger_settle(l, r, NULL, NULL, NULL, NULL); /* nothing used: all released */
    lim_ledger_peek(l, "team:t", LIM_COST, LIM_WIN_MONTH, sp.start[LIM_WIN_MONTH], &used, &resv);
    assert_int_equal(used + resv, 0);
    lim_ledger_free(l);
}

typedef struct soft_log {
    int calls;
    uint64_t used;
    char scope[64];
} soft_log_t;

static void on_soft(void *ctx, const char *scope, const lim_rule_t *rule, uint64_t used,
                    int64_t start)
{
    (void)rule;
    (void)start;
    soft_log_t *s = ctx;
    s->calls++;
    s->used = used;
    strncpy(s->scope, scope, sizeof s->scope - 1);
}

static void test_soft_threshold_once(void **state)
{
    (void)state;
    lim_ledger_t *l = lim_ledger_new();
    lim_rule_t r = {LIM_TOKENS, LIM_WIN_DAY, 1000, 80};
    lim_scope_t s = {"project:p", &r, 1};
    int64_t now = 9 * 86400;
    lim_spans_t sp = spans_at(now);
    soft_log_t log = {0};
    lim_amount_t est = amt(1, 100, 0), act = amt(1, 399, 0);
    for (int i = 0; i < 2; i++) {
        lim_resv_t *x;
        assert_int_equal(lim_ledger_reserve(l, &s, 1, &est, &sp, now, &x, NULL), LIM_OK);
        lim_ledger_settle(l, x, &act, on_soft, NULL, &log);
    }
    assert_int_equal(log.calls, 0); /* 798 < 800 */
    act = amt(1, 2, 0);
    lim_resv_t *x;
    assert_int_equal(lim_ledger_reserve(l, &s, 1, &est, &sp, now, &x, NULL), LIM_OK);
    lim_ledger_settle(l, x, &act, on_soft, NULL, &log);
    assert_int_equal(log.calls, 1); /* 800: crossed */
    assert_int_equal(log.used, 800);
    assert_string_equal(log.scope, "project:p");
    assert_int_equal(lim_ledger_reserve(l, &s, 1, &est, &sp, now, &x, NULL), LIM_OK);
    lim_ledger_settle(l, x, &act, on_soft, NULL, &log);
    assert_int_equal(log.calls, 1); /* once per window */
    /* a new day fires again */
    int64_t tomorrow = now + 86400;
    lim_spans_t sp2 = spans_at(tomorrow);
    act = amt(1, 900, 0);
    est = amt(1, 900, 0);
    assert_int_equal(lim_ledger_reserve(l, &s, 1, &est, &sp2, tomorrow, &x, NULL), LIM_OK);
    lim_ledger_settle(l, x, &act, on_soft, NULL, &log);
    assert_int_equal(log.calls, 2);
    lim_ledger_free(l);
}

static void test_expire(void **state)
{
    (void)state;
    lim_ledger_t *l = lim_ledger_new();
    lim_rule_t r = {LIM_REQUESTS, LIM_WIN_MINUTE, 10, 0};
    lim_amount_t one = amt(1, 0, 0);
    int64_t now = 3000000;
    lim_spans_t sp = spans_at(now);
    char key[32];
    lim_resv_t *held = NULL;
    for (int i = 0; i < 200; i++) { /* also grows the table */
        snprintf(key, sizeof key, "workspace:%d", i);
        lim_scope_t s = {key, &r, 1};
        lim_resv_t *x;
        assert_int_equal(lim_ledger_reserve(l, &s, 1, &one, &sp, now, &x, NULL), LIM_OK);
        if (i == 7)
            held = x;
        else
            lim_ledger_settle(l, x, &one, NULL, NULL, NULL);
    }
    assert_int_equal(lim_ledger_counters(l), 200);
    assert_int_equal(lim_ledger_expire(l, now), 0);                      /* window still open */
    assert_int_equal(lim_ledger_expire(l, sp.end[LIM_WIN_MINUTE]), 199); /* one still reserved */
    uint64_t used, resv;
    lim_ledger_peek(l, "workspace:7", LIM_REQUESTS, LIM_WIN_MINUTE, sp.start[LIM_WIN_MINUTE], &used,
                    &resv);
    assert_int_equal(resv, 1);
    lim_ledger_settle(l, held, &one, NULL, NULL, NULL);
    assert_int_equal(lim_ledger_expire(l, sp.end[LIM_WIN_MINUTE]), 1);
    assert_int_equal(lim_ledger_counters(l), 0);
    lim_ledger_free(l);
}

/* A reservation of 0 on a rule (an egress request reserves no bytes) still
 * pins the counter: it outlives its window until settled, and the settle
 * lands on it (a freed counter here was a use-after-free under ASan). */
static void test_zero_reservation_pins_counter(void **state)
{
    (void)state;
    lim_ledger_t *l = lim_ledger_new();
    lim_rule_t r = {LIM_BYTES, LIM_WIN_MINUTE, 1000, 0};
    lim_amount_t none = {{1, 0, 0, 0}}, moved = {{1, 0, 0, 400}};
    int64_t now = 3000000;
    lim_spans_t sp = spans_at(now);
    lim_scope_t s = {"egress:local", &r, 1};
    lim_resv_t *x = NULL;
    assert_int_equal(lim_ledger_reserve(l, &s, 1, &none, &sp, now, &x, NULL), LIM_OK);
    assert_int_equal(lim_ledger_expire(l, sp.end[LIM_WIN_MINUTE] + 3600), 0);
    assert_int_equal(lim_ledger_counters(l), 1);
    lim_ledger_settle(l, x, &moved, NULL, NULL, NULL);
    uint64_t used, resv;
    lim_ledger_peek(l, "egress:local", LIM_BYTES, LIM_WIN_MINUTE, sp.start[LIM_WIN_MINUTE], &used,
                    &resv);
    assert_int_equal(used, 400);
    assert_int_equal(resv, 0);
    assert_int_equal(lim_ledger_expire(l, sp.end[LIM_WIN_MINUTE] + 3600), 1);
    lim_ledger_free(l);
}

static void test_invalid(void **state)
{
    (void)state;
    lim_ledger_t *l = lim_ledger_new();
    lim_rule_t bad[] = {{LIM_TOKENS, LIM_WIN_DAY, 0, 0},
                        {LIM_TOKENS, LIM_WIN_DAY, 5, 100},
                        {(lim_metric_t)7, LIM_WIN_DAY, 5, 0}};
    lim_spans_t sp = spans_at(100);
    lim_amount_t one = amt(1, 1, 1);
    for (size_t i = 0; i < 3; i++) {
        lim_scope_t s = {"x", &bad[i], 1};
        lim_resv_t *r = (lim_resv_t *)&one;
        assert_int_equal(lim_ledger_reserve(l, &s, 1, &one, &sp, 100, &r, NULL), LIM_EINVAL);
        assert_null(r);
    }
    assert_int_equal(lim_ledger_counters(l), 0);
    assert_string_equal(lim_metric_name(LIM_COST), "cost");
    assert_string_equal(lim_window_name(LIM_WIN_MONTH), "month");
    lim_ledger_free(l);
}

/* Threads reserve 1 token (max 1000) and settle 1: exactly 1000 succeed
 * over all attempts, and the counter never exceeds the maximum. */
typedef struct thr {
    lim_ledger_t *l;
    int ok;
} thr_t;

static void *worker(void *arg)
{
    thr_t *t = arg;
    lim_rule_t r = {LIM_TOKENS, LIM_WIN_MONTH, 1000, 0};
    lim_scope_t s = {"team:shared", &r, 1};
    lim_spans_t sp = spans_at(1000000);
    lim_amount_t one = amt(1, 1, 0);
    for (int i = 0; i < 2000; i++) {
        lim_resv_t *x;
        if (lim_ledger_reserve(t->l, &s, 1, &one, &sp, 1000000, &x, NULL) == LIM_OK) {
            t->ok++;
            lim_ledger_settle(t->l, x, &one, NULL, NULL, NULL);
        }
    }
    return NULL;
}

static void test_concurrent_no_overspend(void **state)
{
    (void)state;
    lim_ledger_t *l = lim_ledger_new();
    pthread_t th[4];
    thr_t t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (thr_t){l, 0};
        pthread_create(&th[i], NULL, worker, &t[i]);
    }
    int ok = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ok += t[i].ok;
    }
    assert_int_equal(ok, 1000);
    uint64_t used, resv;
    lim_ledger_peek(l, "team:shared", LIM_TOKENS, LIM_WIN_MONTH, 1000000, &used, &resv);
    assert_int_equal(used, 1000);
    assert_int_equal(resv, 0);
    lim_ledger_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_rate),   cmocka_unit_test(test_budget_reservations),
        cmocka_unit_test(test_all_or_nothing), cmocka_unit_test(test_soft_threshold_once),
        cmocka_unit_test(test_expire),         cmocka_unit_test(test_zero_reservation_pins_counter),
        cmocka_unit_test(test_invalid),        cmocka_unit_test(test_concurrent_no_overspend),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
