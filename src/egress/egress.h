/*
 * egress — the workspace egress proxy (HTTP/1.1 forward proxy + CONNECT).
 *
 * Where a request enters: egress_on_connection() (accept), then the request
 * head is parsed (http1), attributed (identity), decided (policy), resolved
 * and checked (SSRF guard), connected, relayed; CONNECT tunnels are handed
 * to the splice relay (tunnel.c).  Every request or tunnel ends in exactly
 * one audit record.
 */
#ifndef CDEGUARD_EGRESS_EGRESS_H
#define CDEGUARD_EGRESS_EGRESS_H

#include "daemon/worker.h"

/* Start accepting on w->listen_fd. 0 ok, -1 with err. */
int egress_start(worker_t *w, char *err, size_t errlen);
/* SIGTERM: stop accepting, close idle connections, let the others finish. */
void egress_drain(worker_t *w);
/* Drain deadline passed: close everything now. */
void egress_close_all(worker_t *w);

#endif
