/*
 * gateway — the LLM gateway and Envoy ext_authz listeners of `cdeguard
 * serve` (doc/gateway.md).
 *
 * The daemon makes one gateway_shared_t at start (the TLS contexts: the
 * listener's certificate and mTLS CA, the upstream CA bundle; they are not
 * re-read on reload) and each worker runs gateway_start() with its own
 * SO_REUSEPORT sockets.  Per worker: the client connections, the upstream
 * keep-alive pool and one inspection scratch.  Every call ends in exactly
 * one audit record and its metrics.
 */
#ifndef CDEGUARD_GATEWAY_GATEWAY_H
#define CDEGUARD_GATEWAY_GATEWAY_H

#include <stddef.h>

#include "config/config.h"
#include "daemon/worker.h"

typedef struct gateway_shared gateway_shared_t;

/* NULL with err when a certificate, key or CA cannot be loaded. */
gateway_shared_t *gateway_shared_new(const config_t *cfg, char *err, size_t errlen);
void gateway_shared_free(gateway_shared_t *sh);

/* Start accepting on w->gw_fd / w->authz_fd (either may be -1). 0, or -1 with err. */
int gateway_start(worker_t *w, gateway_shared_t *sh, char *err, size_t errlen);
/* SIGTERM: stop accepting; idle connections close, calls finish. */
void gateway_drain(worker_t *w);
/* Drain deadline: close everything now. */
void gateway_close_all(worker_t *w);
/* After the worker's loop ended: free what is left (the pool). */
void gateway_stop(worker_t *w);

#endif
