/*
 * admin — the admin listener: GET /metrics (Prometheus text) and /healthz.
 *
 * Runs on the main thread's loop.  Each request is answered and the
 * connection closed; request heads are bounded (8 KiB) and timed out.
 */
#ifndef CDEGUARD_ADMIN_ADMIN_H
#define CDEGUARD_ADMIN_ADMIN_H

#include <stddef.h>

#include <uv.h>

/* Listen on fd (already bound).  0 ok, -1 with err. */
int admin_start(uv_loop_t *loop, int fd, char *err, size_t errlen);
void admin_stop(void);

#endif
