/*
 * test_metrics.c — unit tests of src/metrics: exact exposition text after
 * known updates (egress and LLM series), histogram cumulative buckets, _count
 * and _sum, label escaping, rendering into a too-small buffer, policy slot
 * reuse and the 256-slot cap, the LLM caps (256 model values then "other",
 * too long or non-UTF-8 models, 1024 label sets per family with the last for
 * the all-"other" set), and exact counts from concurrent threads (egress,
 * and LLM series created and updated by 4 threads at once).
 *
 * Each test starts with metrics_init(), which resets every series.
 * Usage: test_metrics [cmocka test-name filter].
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics/metrics.h"

enum { BIG = 1 << 20 };

static char *render(void)
{
    char *buf = malloc(BIG);
    assert_non_null(buf);
    size_t n = metrics_render(buf, BIG);
    assert_true(n < BIG);
    assert_int_equal(strlen(buf), n);
    return buf;
}

/* The text contains line as a whole line. */
static void assert_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n') return;
    fail_msg("missing line: %s", line);
}

static size_t count_prefix(const char *text, const char *prefix)
{
    size_t n = 0, k = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        n += strncmp(p, prefix, k) == 0;
    return n;
}

static int setup(void **state)
{
    (void)state;
    metrics_init();
    return 0;
}

static const char expected_fresh[] =
    "# HELP cdeguard_egress_requests_total Egress requests by decision and policy.\n"
    "# TYPE cdeguard_egress_requests_total counter\n"
    "cdeguard_egress_requests_total{decision=\"allow\",policy=\"\"} 1\n"
    "cdeguard_egress_requests_total{decision=\"deny\",policy=\"\"} 0\n"
    "cdeguard_egress_requests_total{decision=\"monitor\",policy=\"\"} 0\n"
    "cdeguard_egress_requests_total{decision=\"allow\",policy=\"dev\"} 3\n"
    "cdeguard_egress_requests_total{decision=\"deny\",policy=\"dev\"} 1\n"
    "cdeguard_egress_requests_total{decision=\"monitor\",policy=\"dev\"} 2\n"
    "# HELP cdeguard_egress_upload_alerts_total Requests or tunnels whose upload exceeded the "
    "policy threshold.\n"
    "# TYPE cdeguard_egress_upload_alerts_total counter\n"
    "cdeguard_egress_upload_alerts_total{policy=\"\"} 0\n"
    "cdeguard_egress_upload_alerts_total{policy=\"dev\"} 1\n"
    "# HELP cdeguard_egress_bytes_total Bytes relayed, up = client to upstream, down = upstream "
    "to client.\n"
    "# TYPE cdeguard_egress_bytes_total counter\n"
    "cdeguard_egress_bytes_total{direction=\"up\"} 100\n"
    "cdeguard_egress_bytes_total{direction=\"down\"} 18446744073709551615\n"
    "# HELP cdeguard_egress_active_tunnels CONNECT tunnels currently open.\n"
    "# TYPE cdeguard_egress_active_tunnels gauge\n"
    "cdeguard_egress_active_tunnels 1\n"
    "# HELP cdeguard_egress_active_connections Client connections currently open.\n"
    "# TYPE cdeguard_egress_active_connections gauge\n"
    "cdeguard_egress_active_connections -2\n"
    "# HELP cdeguard_egress_upstream_connect_errors_total Upstream connections that failed.\n"
    "# TYPE cdeguard_egress_upstream_connect_errors_total counter\n"
    "cdeguard_egress_upstream_connect_errors_total 2\n"
    "# HELP cdeguard_egress_request_duration_seconds Time from request to decision or first "
    "upstream byte.\n"
    "# TYPE cdeguard_egress_request_duration_seconds histogram\n"
    "cdeguard_egress_request_duration_seconds_bucket{le=\"0.0005\"} 0\n"
    "cdeguard_egress_request_duration_seconds_bucket{le=\"0.001\"} 0\n"
    "cdeguard_egress_request_duration_seconds_bucket{le=\"0.0025\"} 0\n"
    "cdeguard_egress_request_duration_seconds_bucket{le=\"0.005\"} 0\n"
    "cdeguard_egress_request_duration_seconds_bucket{le=\"0.01\"} 0\n"
    "cdeguard_egress_request_duration_seconds_bucket{le=\"0.025\"} 0\n"
    "cdeguard_egress_request_duration_seconds_bucket{le=\"0.05\"} 0\n"
    "cdeguard_egress_request_duration_seconds_bucket{le=\"0.1\"} 0\n"
    "cdeguard_egress_request_duration_seconds_bucket{le=\"0.25\"} 0\n"
    "cdeguard_egress_request_duration_seconds_bucket{le=\"0.5\"} 0\n"
    "cdeguard_egress_request_duration_seconds_bucket{le=\"1\"} 0\n"
    "cdeguard_egress_request_duration_seconds_bucket{le=\"2.5\"} 0\n"
    "cdeguard_egress_request_duration_seconds_bucket{le=\"5\"} 0\n"
    "cdeguard_egress_request_duration_seconds_bucket{le=\"10\"} 0\n"
    "cdeguard_egress_request_duration_seconds_bucket{le=\"+Inf\"} 0\n"
    "cdeguard_egress_request_duration_seconds_sum 0.000000\n"
    "cdeguard_egress_request_duration_seconds_count 0\n"
    "# HELP cdeguard_llm_requests_total LLM gateway calls by provider, model and decision.\n"
    "# TYPE cdeguard_llm_requests_total counter\n"
    "cdeguard_llm_requests_total{provider=\"openai\",model=\"gpt-4o\",decision=\"allow\"} 2\n"
    "cdeguard_llm_requests_total{provider=\"openai\",model=\"gpt-4o\",decision=\"redact\"} 0\n"
    "cdeguard_llm_requests_total{provider=\"openai\",model=\"gpt-4o\",decision=\"deny\"} 1\n"
    "cdeguard_llm_requests_total{provider=\"anthropic\",model=\"claude-3\",decision=\"allow\"} 0\n"
    "cdeguard_llm_requests_total{provider=\"anthropic\",model=\"claude-3\",decision=\"redact\"} 1\n"
    "cdeguard_llm_requests_total{provider=\"anthropic\",model=\"claude-3\",decision=\"deny\"} 0\n"
    "# HELP cdeguard_llm_tokens_total LLM tokens by provider, model, workspace and direction.\n"
    "# TYPE cdeguard_llm_tokens_total counter\n"
    "cdeguard_llm_tokens_total{provider=\"openai\",model=\"gpt-4o\",workspace=\"ws-demo\","
    "direction=\"input\"} 12\n"
    "cdeguard_llm_tokens_total{provider=\"openai\",model=\"gpt-4o\",workspace=\"ws-demo\","
    "direction=\"output\"} 30\n"
    "cdeguard_llm_tokens_total{provider=\"openai\",model=\"gpt-4o\",workspace=\"ws-demo\","
    "direction=\"cache_read\"} 0\n"
    "cdeguard_llm_tokens_total{provider=\"openai\",model=\"gpt-4o\",workspace=\"ws-demo\","
    "direction=\"cache_write\"} 5\n"
    "# HELP cdeguard_llm_findings_total Inspection findings in LLM calls by rule and action.\n"
    "# TYPE cdeguard_llm_findings_total counter\n"
    "cdeguard_llm_findings_total{rule=\"email\",action=\"redact\"} 3\n"
    "# HELP cdeguard_llm_upstream_errors_total Failed LLM upstream calls by provider and kind.\n"
    "# TYPE cdeguard_llm_upstream_errors_total counter\n"
    "cdeguard_llm_upstream_errors_total{provider=\"openai\",kind=\"connect\"} 0\n"
    "cdeguard_llm_upstream_errors_total{provider=\"openai\",kind=\"tls\"} 0\n"
    "cdeguard_llm_upstream_errors_total{provider=\"openai\",kind=\"timeout\"} 1\n"
    "cdeguard_llm_upstream_errors_total{provider=\"openai\",kind=\"reset\"} 0\n"
    "cdeguard_llm_upstream_errors_total{provider=\"openai\",kind=\"protocol\"} 1\n"
    "# HELP cdeguard_llm_request_duration_seconds LLM call duration, from request received to "
    "response complete.\n"
    "# TYPE cdeguard_llm_request_duration_seconds histogram\n"
    "cdeguard_llm_request_duration_seconds_bucket{le=\"0.00005\"} 0\n"
    "cdeguard_llm_request_duration_seconds_bucket{le=\"0.0001\"} 0\n"
    "cdeguard_llm_request_duration_seconds_bucket{le=\"0.00025\"} 0\n"
    "cdeguard_llm_request_duration_seconds_bucket{le=\"0.0005\"} 0\n"
    "cdeguard_llm_request_duration_seconds_bucket{le=\"0.001\"} 0\n"
    "cdeguard_llm_request_duration_seconds_bucket{le=\"0.0025\"} 0\n"
    "cdeguard_llm_request_duration_seconds_bucket{le=\"0.005\"} 0\n"
    "cdeguard_llm_request_duration_seconds_bucket{le=\"0.01\"} 0\n"
    "cdeguard_llm_request_duration_seconds_bucket{le=\"0.025\"} 0\n"
    "cdeguard_llm_request_duration_seconds_bucket{le=\"0.05\"} 0\n"
    "cdeguard_llm_request_duration_seconds_bucket{le=\"0.1\"} 0\n"
    "cdeguard_llm_request_duration_seconds_bucket{le=\"0.25\"} 0\n"
    "cdeguard_llm_request_duration_seconds_bucket{le=\"0.5\"} 0\n"
    "cdeguard_llm_request_duration_seconds_bucket{le=\"1\"} 0\n"
    "cdeguard_llm_request_duration_seconds_bucket{le=\"2.5\"} 0\n"
    "cdeguard_llm_request_duration_seconds_bucket{le=\"5\"} 0\n"
    "cdeguard_llm_request_duration_seconds_bucket{le=\"10\"} 0\n"
    "cdeguard_llm_request_duration_seconds_bucket{le=\"30\"} 0\n"
    "cdeguard_llm_request_duration_seconds_bucket{le=\"60\"} 0\n"
    "cdeguard_llm_request_duration_seconds_bucket{le=\"120\"} 0\n"
    "cdeguard_llm_request_duration_seconds_bucket{le=\"300\"} 0\n"
    "cdeguard_llm_request_duration_seconds_bucket{le=\"600\"} 0\n"
    "cdeguard_llm_request_duration_seconds_bucket{le=\"+Inf\"} 0\n"
    "cdeguard_llm_request_duration_seconds_sum 0.000000\n"
    "cdeguard_llm_request_duration_seconds_count 0\n"
    "# HELP cdeguard_llm_gateway_added_seconds Time the gateway itself added to an LLM call.\n"
    "# TYPE cdeguard_llm_gateway_added_seconds histogram\n"
    "cdeguard_llm_gateway_added_seconds_bucket{le=\"0.00001\"} 0\n"
    "cdeguard_llm_gateway_added_seconds_bucket{le=\"0.000025\"} 0\n"
    "cdeguard_llm_gateway_added_seconds_bucket{le=\"0.00005\"} 0\n"
    "cdeguard_llm_gateway_added_seconds_bucket{le=\"0.0001\"} 0\n"
    "cdeguard_llm_gateway_added_seconds_bucket{le=\"0.00025\"} 0\n"
    "cdeguard_llm_gateway_added_seconds_bucket{le=\"0.0005\"} 0\n"
    "cdeguard_llm_gateway_added_seconds_bucket{le=\"0.001\"} 0\n"
    "cdeguard_llm_gateway_added_seconds_bucket{le=\"0.0025\"} 0\n"
    "cdeguard_llm_gateway_added_seconds_bucket{le=\"0.005\"} 0\n"
    "cdeguard_llm_gateway_added_seconds_bucket{le=\"0.01\"} 0\n"
    "cdeguard_llm_gateway_added_seconds_bucket{le=\"0.025\"} 0\n"
    "cdeguard_llm_gateway_added_seconds_bucket{le=\"0.05\"} 0\n"
    "cdeguard_llm_gateway_added_seconds_bucket{le=\"0.1\"} 0\n"
    "cdeguard_llm_gateway_added_seconds_bucket{le=\"+Inf\"} 0\n"
    "cdeguard_llm_gateway_added_seconds_sum 0.000000000\n"
    "cdeguard_llm_gateway_added_seconds_count 0\n"
    "# HELP cdeguard_limit_refusals_total Calls refused by a rate limit or budget, by scope kind, "
    "metric and period.\n"
    "# TYPE cdeguard_limit_refusals_total counter\n"
    "# HELP cdeguard_limit_soft_threshold_total Soft budget thresholds crossed (once per scope and "
    "window).\n"
    "# TYPE cdeguard_limit_soft_threshold_total counter\n"
    "# HELP cdeguard_limit_store_errors_total Calls the limits store could not answer, by what "
    "happened to them.\n"
    "# TYPE cdeguard_limit_store_errors_total counter\n"
    "# HELP cdeguard_config_reloads_total Configuration reloads by result.\n"
    "# TYPE cdeguard_config_reloads_total counter\n"
    "cdeguard_config_reloads_total{result=\"ok\"} 1\n"
    "cdeguard_config_reloads_total{result=\"error\"} 2\n"
    "# HELP cdeguard_audit_dropped_total Audit records dropped because the queue was full or "
    "the sink failed.\n"
    "# TYPE cdeguard_audit_dropped_total counter\n"
    "cdeguard_audit_dropped_total 9\n"
    "# HELP cdeguard_build_info Build information; the value is always 1.\n"
    "# TYPE cdeguard_build_info gauge\n"
    "cdeguard_build_info{version=\"0.1.0\"} 1\n"
    "# HELP cdeguard_start_time_seconds Start time of the process since the Unix epoch, in "
    "seconds.\n"
    "# TYPE cdeguard_start_time_seconds gauge\n"
    "cdeguard_start_time_seconds ";

static void test_counters_exact(void **state)
{
    (void)state;
    time_t before = time(NULL);
    metrics_init();
    time_t after = time(NULL);

    int none = metrics_policy_slot("");
    int dev = metrics_policy_slot("dev");
    assert_int_not_equal(none, dev);
    metrics_egress_request(none, MDEC_ALLOW);
    for (int i = 0; i < 3; i++)
        metrics_egress_request(dev, MDEC_ALLOW);
    metrics_egress_request(dev, MDEC_DENY);
    metrics_egress_request(dev, MDEC_MONITOR);
    metrics_egress_request(dev, MDEC_MONITOR);
    metrics_egress_request(dev, MDEC_COUNT); /* invalid: ignored */
    metrics_egress_bytes(MDIR_UP, 40);
    metrics_egress_bytes(MDIR_UP, 60);
    metrics_egress_bytes(MDIR_DOWN, UINT64_MAX);
    metrics_tunnel_active(1);
    metrics_tunnel_active(1);
    metrics_tunnel_active(-1);
    metrics_connections_active(-2); /* a gauge may go below zero; it is rendered signed */
    metrics_upstream_connect_error();
    metrics_upstream_connect_error();
    metrics_upload_alert(dev);
    metrics_config_reload(1);
    metrics_config_reload(0);
    metrics_config_reload(0);
    metrics_audit_dropped(7);
    metrics_audit_dropped(9); /* sets the total, does not add */
    metrics_llm_request("openai", "gpt-4o", MLLM_ALLOW);
    metrics_llm_request("openai", "gpt-4o", MLLM_ALLOW);
    metrics_llm_request("openai", "gpt-4o", MLLM_DENY);
    metrics_llm_request("anthropic", "claude-3", MLLM_REDACT);
    metrics_llm_request("anthropic", "claude-3", MLLM_DEC_COUNT); /* invalid: ignored */
    metrics_llm_tokens("openai", "gpt-4o", "ws-demo", 12, 30, 0, 5);
    metrics_llm_tokens("openai", "gpt-4o", "ws-demo", 0, 0, 0, 0);
    metrics_llm_finding("email", "redact", 2);
    metrics_llm_finding("email", "redact", 1);
    metrics_llm_finding("aws_key", "block", 0); /* nothing: no series */
    metrics_llm_upstream_error("openai", "timeout");
    metrics_llm_upstream_error("openai", "bogus"); /* unknown kind: protocol */

    char *text = render();
    size_t k = strlen(expected_fresh);
    if (strncmp(text, expected_fresh, k) != 0) fail_msg("render differs:\n%s", text);
    long long start;
    char nl;
    assert_int_equal(sscanf(text + k, "%lld%c", &start, &nl), 2);
    assert_int_equal(nl, '\n');
    assert_true(start >= (long long)before && start <= (long long)after);
    assert_string_equal(strchr(text + k, '\n'), "\n"); /* the last line */
    free(text);
}

static void test_histogram(void **state)
{
    (void)state;
    metrics_egress_latency(0.0001);
    metrics_egress_latency(0.0005); /* le is inclusive */
    metrics_egress_latency(-1);     /* clamped to 0 */
    metrics_egress_latency(0.003);
    metrics_egress_latency(0.2);
    metrics_egress_latency(7);
    metrics_egress_latency(100);       /* +Inf only */
    metrics_egress_latency(0.0 / 0.0); /* NaN: ignored */

    char *text = render();
    static const char *const want[] = {
        "_bucket{le=\"0.0005\"} 3",
        "_bucket{le=\"0.001\"} 3",
        "_bucket{le=\"0.0025\"} 3",
        "_bucket{le=\"0.005\"} 4",
        "_bucket{le=\"0.01\"} 4",
        "_bucket{le=\"0.025\"} 4",
        "_bucket{le=\"0.05\"} 4",
        "_bucket{le=\"0.1\"} 4",
        "_bucket{le=\"0.25\"} 5",
        "_bucket{le=\"0.5\"} 5",
        "_bucket{le=\"1\"} 5",
        "_bucket{le=\"2.5\"} 5",
        "_bucket{le=\"5\"} 5",
        "_bucket{le=\"10\"} 6",
        "_bucket{le=\"+Inf\"} 7",
        "_sum 107.203600",
        "_count 7",
    };
    char line[128];
    const char *prev = text;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        snprintf(line, sizeof line, "cdeguard_egress_request_duration_seconds%s", want[i]);
        assert_line(text, line);
        const char *at = strstr(text, line);
        assert_true(at > prev); /* in this order */
        prev = at;
    }
    free(text);

    metrics_egress_latency(1.0 / 0.0); /* +inf: +Inf bucket, sum stays finite */
    text = render();
    assert_line(text, "cdeguard_egress_request_duration_seconds_bucket{le=\"+Inf\"} 8");
    assert_line(text, "cdeguard_egress_request_duration_seconds_count 8");
    free(text);
}

static void test_label_escaping(void **state)
{
    (void)state;
    int s = metrics_policy_slot("a\"b\\c\nd");
    metrics_egress_request(s, MDEC_DENY);
    metrics_upload_alert(s);
    char *text = render();
    assert_line(text,
                "cdeguard_egress_requests_total{decision=\"deny\",policy=\"a\\\"b\\\\c\\nd\"} 1");
    assert_line(text, "cdeguard_egress_upload_alerts_total{policy=\"a\\\"b\\\\c\\nd\"} 1");
    /* no raw newline inside a sample: every line starts with # or the prefix */
    for (const char *p = text; *p; p = strchr(p, '\n') + 1)
        assert_true(*p == '#' || strncmp(p, "cdeguard_", 9) == 0);
    free(text);
}

static void test_render_small_cap(void **state)
{
    (void)state;
    metrics_egress_request(metrics_policy_slot("p"), MDEC_ALLOW);
    char *full = render();
    size_t n = strlen(full);

    assert_int_equal(metrics_render(NULL, 0), n);
    char *buf = malloc(n + 16);
    assert_non_null(buf);
    for (size_t cap = 0; cap <= n + 1; cap += (cap < 64 || cap > n - 64 ? 1 : 97)) {
        memset(buf, '#', n + 16);
        size_t got = metrics_render(buf, cap);
        assert_int_equal(got, n);
        for (size_t i = cap; i < n + 16; i++)
            if (buf[i] != '#') fail_msg("cap %zu: byte %zu written", cap, i);
        size_t valid = cap < n ? cap : n;
        assert_memory_equal(buf, full, valid);
    }
    /* exactly n: complete, no room for NUL; n + 1: NUL-terminated */
    memset(buf, '#', n + 16);
    assert_int_equal(metrics_render(buf, n + 1), n);
    assert_string_equal(buf, full);
    free(buf);
    free(full);
}

static void test_policy_slots(void **state)
{
    char name[32];
    (void)state;

    int a = metrics_policy_slot("a");
    int b = metrics_policy_slot("b");
    assert_int_not_equal(a, b);
    assert_int_equal(metrics_policy_slot("a"), a); /* reload keeps the slot */
    assert_int_equal(metrics_policy_slot(NULL), metrics_policy_slot(""));
    metrics_egress_request(a, MDEC_ALLOW);
    assert_int_equal(metrics_policy_slot("a"), a);

    /* fill up to 256 names: "a", "b", "" and p3..p255 */
    int seen[257] = {0};
    seen[a] = seen[b] = seen[metrics_policy_slot("")] = 1;
    for (int i = 3; i < 256; i++) {
        snprintf(name, sizeof name, "p%d", i);
        int s = metrics_policy_slot(name);
        assert_true(s >= 0 && s < 256);
        assert_int_equal(seen[s], 0);
        seen[s] = 1;
    }
    char *text = render();
    assert_int_equal(count_prefix(text, "cdeguard_egress_requests_total{"), 3 * 256);
    assert_null(strstr(text, "policy=\"other\""));
    free(text);

    /* the 257th and later names, and "other" itself, share the overflow slot */
    int o1 = metrics_policy_slot("overflow-1");
    int o2 = metrics_policy_slot("overflow-2");
    assert_int_equal(o1, o2);
    assert_int_equal(metrics_policy_slot("other"), o1);
    assert_int_equal(seen[o1], 0);
    assert_int_equal(metrics_policy_slot("p100"), metrics_policy_slot("p100")); /* still there */
    metrics_egress_request(o1, MDEC_DENY);
    metrics_egress_request(o2, MDEC_DENY);
    metrics_egress_request(-1, MDEC_DENY);   /* out of range: counted as other */
    metrics_egress_request(9999, MDEC_DENY); /* idem */
    metrics_upload_alert(o2);

    text = render();
    assert_int_equal(count_prefix(text, "cdeguard_egress_requests_total{"), 3 * 257);
    assert_int_equal(count_prefix(text, "cdeguard_egress_upload_alerts_total{"), 257);
    assert_line(text, "cdeguard_egress_requests_total{decision=\"deny\",policy=\"other\"} 4");
    assert_line(text, "cdeguard_egress_requests_total{decision=\"allow\",policy=\"a\"} 1");
    assert_line(text, "cdeguard_egress_upload_alerts_total{policy=\"other\"} 1");
    assert_line(text, "cdeguard_egress_requests_total{decision=\"allow\",policy=\"p255\"} 0");
    free(text);
}

static void test_other_name_before_full(void **state)
{
    (void)state;
    /* "other" never gets a slot of its own, so its series cannot appear twice */
    int o = metrics_policy_slot("other");
    int x = metrics_policy_slot("x");
    assert_int_not_equal(o, x);
    metrics_egress_request(o, MDEC_MONITOR);
    char *text = render();
    assert_line(text, "cdeguard_egress_requests_total{decision=\"monitor\",policy=\"other\"} 1");
    assert_int_equal(count_prefix(text, "cdeguard_egress_requests_total{"), 3 * 2);
    free(text);
}

enum { NTHREADS = 4, PER_THREAD = 100000 };

static void *hammer(void *arg)
{
    int slot = *(const int *)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        metrics_egress_request(slot, (metrics_decision_t)(i % MDEC_COUNT));
        metrics_egress_bytes(MDIR_UP, 3);
        metrics_tunnel_active(1);
        metrics_tunnel_active(-1);
        metrics_egress_latency(0.002);
    }
    return NULL;
}

static void test_concurrent_updates(void **state)
{
    pthread_t th[NTHREADS];
    char line[160];
    (void)state;

    int slot = metrics_policy_slot("busy");
    for (int t = 0; t < NTHREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, hammer, &slot), 0);
    for (int k = 0; k < 20; k++) { /* render concurrently with the updates */
        char *text = render();
        free(text);
    }
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);

    char *text = render();
    long total = (long)NTHREADS * PER_THREAD;
    snprintf(line, sizeof line,
             "cdeguard_egress_requests_total{decision=\"allow\",policy=\"busy\"} %ld",
             NTHREADS * ((PER_THREAD + 2) / 3L));
    assert_line(text, line);
    snprintf(line, sizeof line, "cdeguard_egress_bytes_total{direction=\"up\"} %ld", total * 3);
    assert_line(text, line);
    assert_line(text, "cdeguard_egress_active_tunnels 0");
    snprintf(line, sizeof line, "cdeguard_egress_request_duration_seconds_count %ld", total);
    assert_line(text, line);
    snprintf(line, sizeof line, "cdeguard_egress_request_duration_seconds_sum %ld.000000",
             total * 2 / 1000);
    assert_line(text, line);
    free(text);
}

/* ---- LLM gateway series --------------------------------------------------- */

static void test_llm_histograms(void **state)
{
    (void)state;
    metrics_llm_latency(0.00004, 0.000005); /* first buckets of both */
    metrics_llm_latency(0.00005, 0.00001);  /* le is inclusive */
    metrics_llm_latency(1.5, 0.0003);
    metrics_llm_latency(700, 0.2);            /* +Inf of both */
    metrics_llm_latency(-1, 0.0 / 0.0);       /* 0; NaN: not recorded */
    metrics_llm_latency(0.0 / 0.0, 0.000002); /* idem */

    char *text = render();
    static const char *const want[] = {
        "cdeguard_llm_request_duration_seconds_bucket{le=\"0.00005\"} 3",
        "cdeguard_llm_request_duration_seconds_bucket{le=\"0.0001\"} 3",
        "cdeguard_llm_request_duration_seconds_bucket{le=\"1\"} 3",
        "cdeguard_llm_request_duration_seconds_bucket{le=\"2.5\"} 4",
        "cdeguard_llm_request_duration_seconds_bucket{le=\"600\"} 4",
        "cdeguard_llm_request_duration_seconds_bucket{le=\"+Inf\"} 5",
        "cdeguard_llm_request_duration_seconds_sum 701.500090",
        "cdeguard_llm_request_duration_seconds_count 5",
        "cdeguard_llm_gateway_added_seconds_bucket{le=\"0.00001\"} 3",
        "cdeguard_llm_gateway_added_seconds_bucket{le=\"0.000025\"} 3",
        "cdeguard_llm_gateway_added_seconds_bucket{le=\"0.00025\"} 3",
        "cdeguard_llm_gateway_added_seconds_bucket{le=\"0.0005\"} 4",
        "cdeguard_llm_gateway_added_seconds_bucket{le=\"0.1\"} 4",
        "cdeguard_llm_gateway_added_seconds_bucket{le=\"+Inf\"} 5",
        "cdeguard_llm_gateway_added_seconds_sum 0.200317000",
        "cdeguard_llm_gateway_added_seconds_count 5",
    };
    const char *prev = text;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_line(text, want[i]);
        const char *at = strstr(text, want[i]);
        assert_true(at > prev); /* in this order */
        prev = at;
    }
    /* the egress histogram is separate */
    assert_line(text, "cdeguard_egress_request_duration_seconds_count 0");
    free(text);
}

static void test_llm_label_escaping(void **state)
{
    (void)state;
    metrics_llm_request("p\"q", "m\\n\nx", MLLM_DENY);
    metrics_llm_finding("r\n", "a\"", 4);
    metrics_llm_tokens(NULL, NULL, NULL, 1, 0, 0, 0);
    char *text = render();
    assert_line(text, "cdeguard_llm_requests_total{provider=\"p\\\"q\",model=\"m\\\\n\\nx\","
                      "decision=\"deny\"} 1");
    assert_line(text, "cdeguard_llm_findings_total{rule=\"r\\n\",action=\"a\\\"\"} 4");
    assert_line(text, "cdeguard_llm_tokens_total{provider=\"\",model=\"\",workspace=\"\","
                      "direction=\"input\"} 1");
    for (const char *p = text; *p; p = strchr(p, '\n') + 1)
        assert_true(*p == '#' || strncmp(p, "cdeguard_", 9) == 0);
    free(text);
}

static void test_llm_model_other(void **state)
{
    char model[32], line[256];
    (void)state;

    /* METRICS_LLM_MODELS distinct values keep their own label */
    for (int i = 0; i < METRICS_LLM_MODELS; i++) {
        snprintf(model, sizeof model, "model-%d", i);
        metrics_llm_request("openai", model, MLLM_ALLOW);
    }
    metrics_llm_request("openai", "model-7", MLLM_ALLOW); /* known: not "other" */
    char *text = render();
    assert_int_equal(count_prefix(text, "cdeguard_llm_requests_total{"), 3 * METRICS_LLM_MODELS);
    assert_null(strstr(text, "model=\"other\""));
    assert_line(text, "cdeguard_llm_requests_total{provider=\"openai\",model=\"model-7\","
                      "decision=\"allow\"} 2");
    free(text);

    /* later ones, and "other" itself, share model="other" */
    for (int i = 0; i < 10; i++) {
        snprintf(model, sizeof model, "late-%d", i);
        metrics_llm_request("openai", model, MLLM_DENY);
        metrics_llm_tokens("openai", model, "ws", 1, 2, 3, 4);
    }
    metrics_llm_request("openai", "other", MLLM_DENY);
    metrics_llm_request("openai", "model-255", MLLM_DENY); /* still its own */
    text = render();
    assert_int_equal(count_prefix(text, "cdeguard_llm_requests_total{"),
                     3 * (METRICS_LLM_MODELS + 1));
    assert_line(text, "cdeguard_llm_requests_total{provider=\"openai\",model=\"other\","
                      "decision=\"deny\"} 11");
    assert_line(text, "cdeguard_llm_requests_total{provider=\"openai\",model=\"model-255\","
                      "decision=\"deny\"} 1");
    assert_line(text, "cdeguard_llm_tokens_total{provider=\"openai\",model=\"other\","
                      "workspace=\"ws\",direction=\"cache_write\"} 40");
    assert_int_equal(count_prefix(text, "cdeguard_llm_tokens_total{"), 4);
    assert_null(strstr(text, "late-"));
    free(text);

    /* before the limit: too long or not UTF-8 is "other" too */
    metrics_init();
    char longm[METRICS_LLM_LABEL_MAX + 2];
    memset(longm, 'x', sizeof longm - 1);
    longm[sizeof longm - 1] = '\0';
    metrics_llm_request("g", longm, MLLM_ALLOW);
    metrics_llm_request("g", "bad\xff", MLLM_ALLOW);
    metrics_llm_request("g", "gemini-\xc3\xa9", MLLM_ALLOW); /* UTF-8 is fine */
    longm[METRICS_LLM_LABEL_MAX] = '\0';                     /* the longest kept */
    metrics_llm_request("g", longm, MLLM_ALLOW);
    text = render();
    assert_line(text, "cdeguard_llm_requests_total{provider=\"g\",model=\"other\","
                      "decision=\"allow\"} 2");
    assert_line(text, "cdeguard_llm_requests_total{provider=\"g\",model=\"gemini-\xc3\xa9\","
                      "decision=\"allow\"} 1");
    snprintf(line, sizeof line,
             "cdeguard_llm_requests_total{provider=\"g\",model=\"%s\",decision=\"allow\"} 1",
             longm);
    assert_line(text, line);
    free(text);
}

static void test_llm_series_cap(void **state)
{
    char rule[32], line[128];
    (void)state;

    /* the ("other","other") tuple used early is the same series as the overflow */
    metrics_llm_finding("other", "other", 5);
    for (int i = 0; i < 1500; i++) {
        snprintf(rule, sizeof rule, "rule-%d", i);
        metrics_llm_finding(rule, "alert", (uint64_t)i + 1);
    }
    metrics_llm_finding("rule-3", "alert", 1000); /* an existing series stays itself */
    char *text = render();
    assert_int_equal(count_prefix(text, "cdeguard_llm_findings_total{"), METRICS_LLM_SERIES);
    /* "other" + rule-0 .. rule-1022 have a series; rule-1023 .. rule-1499 are other */
    uint64_t rest = 0;
    for (int i = METRICS_LLM_SERIES - 1; i < 1500; i++)
        rest += (uint64_t)i + 1;
    snprintf(line, sizeof line,
             "cdeguard_llm_findings_total{rule=\"other\",action=\"other\"} %" PRIu64, rest + 5);
    assert_line(text, line);
    assert_line(text, "cdeguard_llm_findings_total{rule=\"rule-1022\",action=\"alert\"} 1023");
    assert_line(text, "cdeguard_llm_findings_total{rule=\"rule-3\",action=\"alert\"} 1004");
    assert_null(strstr(text, "rule-1023"));
    free(text);

    /* the same without an early "other": the last slot is kept for it */
    metrics_init();
    for (int i = 0; i < METRICS_LLM_SERIES + 5; i++) {
        snprintf(rule, sizeof rule, "prov-%d", i);
        metrics_llm_upstream_error(rule, "reset");
    }
    text = render();
    assert_int_equal(count_prefix(text, "cdeguard_llm_upstream_errors_total{"),
                     5 * METRICS_LLM_SERIES);
    assert_line(text, "cdeguard_llm_upstream_errors_total{provider=\"other\",kind=\"reset\"} 6");
    snprintf(line, sizeof line,
             "cdeguard_llm_upstream_errors_total{provider=\"prov-%d\",kind=\"reset\"} 1",
             METRICS_LLM_SERIES - 2);
    assert_line(text, line);
    free(text);
}

enum { LLM_PER_THREAD = 50000 };

static const char *const llm_kinds[] = {"connect", "tls", "timeout", "reset", "protocol"};

static void *llm_hammer(void *arg)
{
    char model[16], rule[16];
    (void)arg;
    for (int i = 0; i < LLM_PER_THREAD; i++) {
        /* series are created by whichever thread comes first */
        snprintf(model, sizeof model, "m%d", i % 8);
        snprintf(rule, sizeof rule, "r%d", i % 50);
        metrics_llm_request("openai", model, (metrics_llm_decision_t)(i % MLLM_DEC_COUNT));
        metrics_llm_tokens("openai", model, "ws", 1, 2, 0, 3);
        metrics_llm_finding(rule, "redact", 1);
        metrics_llm_latency(0.5, 0.00002);
        metrics_llm_upstream_error("openai", llm_kinds[i % 5]);
    }
    return NULL;
}

static void test_llm_concurrent(void **state)
{
    pthread_t th[NTHREADS];
    char line[200];
    (void)state;

    for (int t = 0; t < NTHREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, llm_hammer, NULL), 0);
    for (int k = 0; k < 20; k++) { /* render while series are made and updated */
        char *text = render();
        free(text);
    }
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);

    char *text = render();
    long total = (long)NTHREADS * LLM_PER_THREAD;
    assert_int_equal(count_prefix(text, "cdeguard_llm_requests_total{"), 3 * 8);
    assert_int_equal(count_prefix(text, "cdeguard_llm_tokens_total{"), 4 * 8);
    assert_int_equal(count_prefix(text, "cdeguard_llm_findings_total{"), 50);
    assert_int_equal(count_prefix(text, "cdeguard_llm_upstream_errors_total{"), 5);
    /* i % 24 picks (model, decision): 50000 = 2083 * 24 + 8 */
    for (int mi = 0; mi < 8; mi++)
        for (int d = 0; d < 3; d++) {
            long per = 0;
            for (int i = 0; i < LLM_PER_THREAD; i++)
                per += i % 8 == mi && i % 3 == d;
            static const char *const dn[] = {"allow", "redact", "deny"};
            snprintf(line, sizeof line,
                     "cdeguard_llm_requests_total{provider=\"openai\",model=\"m%d\","
                     "decision=\"%s\"} %ld",
                     mi, dn[d], per * NTHREADS);
            assert_line(text, line);
        }
    snprintf(line, sizeof line,
             "cdeguard_llm_tokens_total{provider=\"openai\",model=\"m0\",workspace=\"ws\","
             "direction=\"cache_write\"} %ld",
             3L * NTHREADS * (LLM_PER_THREAD / 8));
    assert_line(text, line);
    snprintf(line, sizeof line, "cdeguard_llm_findings_total{rule=\"r49\",action=\"redact\"} %ld",
             (long)NTHREADS * (LLM_PER_THREAD / 50));
    assert_line(text, line);
    snprintf(line, sizeof line,
             "cdeguard_llm_upstream_errors_total{provider=\"openai\",kind=\"tls\"} %ld",
             (long)NTHREADS * (LLM_PER_THREAD / 5));
    assert_line(text, line);
    snprintf(line, sizeof line, "cdeguard_llm_request_duration_seconds_count %ld", total);
    assert_line(text, line);
    snprintf(line, sizeof line, "cdeguard_llm_request_duration_seconds_sum %ld.000000", total / 2);
    assert_line(text, line);
    snprintf(line, sizeof line, "cdeguard_llm_gateway_added_seconds_bucket{le=\"0.000025\"} %ld",
             total);
    assert_line(text, line);
    snprintf(line, sizeof line, "cdeguard_llm_gateway_added_seconds_sum %ld.%09ld",
             total * 20000 / 1000000000, total * 20000 % 1000000000);
    assert_line(text, line);
    free(text);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_counters_exact, setup),
        cmocka_unit_test_setup(test_histogram, setup),
        cmocka_unit_test_setup(test_label_escaping, setup),
        cmocka_unit_test_setup(test_render_small_cap, setup),
        cmocka_unit_test_setup(test_policy_slots, setup),
        cmocka_unit_test_setup(test_other_name_before_full, setup),
        cmocka_unit_test_setup(test_concurrent_updates, setup),
        cmocka_unit_test_setup(test_llm_histograms, setup),
        cmocka_unit_test_setup(test_llm_label_escaping, setup),
        cmocka_unit_test_setup(test_llm_model_other, setup),
        cmocka_unit_test_setup(test_llm_series_cap, setup),
        cmocka_unit_test_setup(test_llm_concurrent, setup),
    };
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
