/*
 * admin — the admin listener: GET /metrics (Prometheus text), /healthz,
 * and the limits API: GET /v1/usage, GET /v1/budgets, POST /v1/budgets.
 *
 * Runs on the main thread's loop; the limits API runs its store queries on
 * libuv's thread pool (Redis answers are awaited there, not on a loop).
 * Each request is answered and the connection closed; request heads (8 KiB)
 * and bodies (64 KiB) are bounded and timed out.  When limits.admin_token is
 * set, every /v1/ request needs "Authorization: Bearer <token>"; without it
 * the GETs are open (like /metrics) and POST is refused.
 */
#ifndef CDEGUARD_ADMIN_ADMIN_H
#define CDEGUARD_ADMIN_ADMIN_H

#include <stddef.h>

#include <uv.h>

#include "config/config.h"
#include "limits/limiter.h"

/* Listen on fd (already bound).  0 ok, -1 with err. */
int admin_start(uv_loop_t *loop, int fd, char *err, size_t errlen);
void admin_stop(void);
/* The limits store and where the current config is (main thread: *cfgp is
 * read when a request arrives); NULL, NULL to forget them. */
void admin_set_limits(lim_shared_t *lim, config_t **cfgp);

#endif
