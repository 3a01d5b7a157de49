/*
 * metrics — process-wide Prometheus counters, gauges and histograms.
 *
 * All updates are lock-free atomics so any worker thread can record without
 * contention beyond a cache line; the admin listener renders the text
 * exposition format (version 0.0.4) on demand.  Label sets are bounded: per
 * policy series are created at config load (metrics_policy_slot), never
 * from request data, so a client cannot blow up cardinality.  The LLM gateway
 * series (doc/gateway.md, "Metrics") are created on first use, from label
 * values that come from the config (provider, workspace, rule, action) or
 * are capped (model: METRICS_LLM_MODELS distinct values per process, then
 * "other"); each family holds at most METRICS_LLM_SERIES label sets, the
 * last of them being the all-"other" set that takes every later one.
 * Creating a series takes a mutex once; every later update of it is a
 * lock-free lookup and one atomic add.
 */
#ifndef CDEGUARD_METRICS_METRICS_H
#define CDEGUARD_METRICS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { MDEC_ALLOW = 0, MDEC_DENY = 1, MDEC_MONITOR = 2, MDEC_COUNT } metrics_decision_t;

typedef enum { MDIR_UP = 0, MDIR_DOWN = 1 } metrics_dir_t;

void metrics_init(void);
/* Make (or find) the series slot for a policy name; "" is the slot for
 * requests decided before any policy applied (no workspace, bad request). */
int metrics_policy_slot(const char *policy);

void metrics_egress_request(int policy_slot, metrics_decision_t d);
void metrics_egress_bytes(metrics_dir_t dir, uint64_t n);
void metrics_tunnel_active(int delta);
void metrics_upstream_connect_error(void);
void metrics_upload_alert(int policy_slot);
void metrics_egress_latency(double seconds); /* time to first upstream byte / decision */
void metrics_config_reload(int ok);
void metrics_audit_dropped(uint64_t n);
void metrics_connections_active(int delta);

/* ---- LLM gateway ---- */

#define METRICS_LLM_SERIES 1024   /* label sets per LLM family, the "other" set included */
#define METRICS_LLM_MODELS 256    /* distinct model label values; later ones are "other" */
#define METRICS_LLM_LABEL_MAX 128 /* a longer or non-UTF-8 model value is "other" */

typedef enum {
    MLLM_ALLOW = 0,
    MLLM_REDACT = 1,
    MLLM_DENY = 2,
    MLLM_DEC_COUNT
} metrics_llm_decision_t;

/* Label values: NULL is "".  provider, workspace, rule and action are taken
 * as they are (they come from the config); model is capped as above. */

/* cdeguard_llm_requests_total{provider,model,decision} += 1 (d out of range: ignored). */
void metrics_llm_request(const char *provider, const char *model, metrics_llm_decision_t d);
/* cdeguard_llm_tokens_total{provider,model,workspace,direction} += each count
 * (direction input, output, cache_read, cache_write); all zero: nothing. */
void metrics_llm_tokens(const char *provider, const char *model, const char *workspace,
                        uint64_t input, uint64_t output, uint64_t cache_read, uint64_t cache_write);
/* cdeguard_llm_findings_total{rule,action} += n (0: nothing). */
void metrics_llm_finding(const char *rule, const char *action, uint64_t n);
/* One observation in each of cdeguard_llm_request_duration_seconds and
 * cdeguard_llm_gateway_added_seconds; a NaN one is not recorded (pass NaN
 * to record only the other), a negative one counts as 0. */
void metrics_llm_latency(double total_seconds, double added_seconds);
/* cdeguard_llm_upstream_errors_total{provider,kind} += 1; kind is "connect",
 * "tls", "timeout", "reset" or "protocol" (anything else, NULL included,
 * counts as "protocol"). */
void metrics_llm_upstream_error(const char *provider, const char *kind);

/* ---- rate limits and budgets ---- */

/* cdeguard_limit_refusals_total{scope,metric,period} += 1 (scope: "team", ...). */
void metrics_limit_refusal(const char *scope, const char *metric, const char *period);
/* cdeguard_limit_soft_threshold_total{scope,metric,period} += 1. */
void metrics_limit_soft(const char *scope, const char *metric, const char *period);
/* cdeguard_limit_store_errors_total{store,outcome="refused"|"allowed"} += 1. */
void metrics_limit_store_error(const char *store, bool allowed);
/* Extra exposition text appended by metrics_render (the limiter's gauges):
 * the hook writes at most cap bytes to buf (which may be NULL when cap is
 * 0) and returns the length it needs. */
typedef size_t (*metrics_render_hook_fn)(char *buf, size_t cap);
void metrics_set_render_hook(metrics_render_hook_fn fn);

/* Render everything in Prometheus text format into buf; returns bytes
 * written, or the size needed when cap is too small (caller retries). */
size_t metrics_render(char *buf, size_t cap);

#endif
