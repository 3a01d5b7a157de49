/*
 * policy — the egress decision, as pure functions of (config, policy, target).
 *
 * The proxy calls policy_check_target() once the request head is parsed and
 * policy_check_address() for every address a name resolved to.  Both write
 * the rule that decided into a caller buffer (for the 403 body, the
 * X-Cdeguard-Rule header and the audit record) and never allocate.
 * Mode (enforce/monitor) is not applied here: the caller turns a deny into a
 * "monitor" allow, so these functions stay mode-agnostic and testable.
 */
#ifndef CDEGUARD_POLICY_POLICY_H
#define CDEGUARD_POLICY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "net/ipaddr.h"
#include "policy/domain.h"

#define POLICY_RULE_MAX 320

typedef enum { POLICY_DENY = 0, POLICY_ALLOW = 1 } policy_verdict_t;

/* A destination as named by the client, normalised. */
typedef struct policy_target {
    char host[DOMAIN_MAX + 1]; /* normalised name, or the canonical IP text */
    size_t host_len;
    bool is_ip;
    netaddr_t ip;      /* when is_ip */
    char spelling[64]; /* how the IP literal was written ("octal", ...) */
    uint16_t port;
} policy_target_t;

/* Normalise a host as written in the request (no port, brackets allowed).
 * Returns 0, or -1 with the rule "invalid_host" and a reason in err. */
int policy_target_parse(const char *host, size_t len, uint16_t port, policy_target_t *t, char *err,
                        size_t errlen);

/* Ports, domains and (for IP literals) the address rules.  For names that
 * pass, the address check follows after resolution. */
policy_verdict_t policy_check_target(const config_t *cfg, const config_policy_t *pol,
                                     const policy_target_t *t, bool is_connect, char *rule,
                                     size_t rulelen);

/* SSRF guard for one resolved (or literal) address. */
policy_verdict_t policy_check_address(const config_t *cfg, const config_policy_t *pol,
                                      const netaddr_t *addr, char *rule, size_t rulelen);

#endif
