/*
 * metrics — process-wide Prometheus counters, gauges and histograms.
 *
 * All updates are lock-free atomics so any worker thread can record without
 * contention beyond a cache line; the admin listener renders the text
 * exposition format (version 0.0.4) on demand.  Label sets are bounded: per
 * policy series are created at config load (metrics_register_policy), never
 * from request data, so a client cannot blow up cardinality.
 */
#ifndef CDEGUARD_METRICS_METRICS_H
#define CDEGUARD_METRICS_METRICS_H

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

/* Render everything in Prometheus text format into buf; returns bytes
 * written, or the size needed when cap is too small (caller retries). */
size_t metrics_render(char *buf, size_t cap);

#endif
