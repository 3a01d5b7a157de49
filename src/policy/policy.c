/*
 * policy — egress decisions (see policy.h and doc/egress.md for the order).
 *
 * Order for a target: port rules, then global deny list, the policy's deny
 * list, its allow list, default deny.  IP-literal targets skip the domain
 * lists and go straight to the address rules, where workspace subnets win
 * over everything, then the policy's explicit allow_cidrs, then the address
 * class (only public addresses pass by default).
 */
#include "policy/policy.h"

#include <stdio.h>
#include <string.h>

int policy_target_parse(const char *host, size_t len, uint16_t port, policy_target_t *t, char *err,
                        size_t errlen)
{
    memset(t, 0, sizeof *t);
    t->port = port;
    if (len == 0) {
        snprintf(err, errlen, "empty host");
        return -1;
    }
    ipaddr_kind_t k = ipaddr_parse_host(host, len, &t->ip, t->spelling, sizeof t->spelling);
    if (k == IPADDR_INVALID) {
        snprintf(err, errlen, "malformed IP address literal");
        return -1;
    }
    if (k == IPADDR_LITERAL) {
        t->is_ip = true;
        int n = ipaddr_format(&t->ip, t->host, sizeof t->host);
        if (n < 0) {
            snprintf(err, errlen, "unprintable address");
            return -1;
        }
        t->host_len = (size_t)n;
        return 0;
    }
    int n = domain_normalize(host, len, t->host, sizeof t->host, err, errlen);
    if (n < 0) return -1;
    t->host_len = (size_t)n;
    return 0;
}

static policy_verdict_t deny(char *rule, size_t rulelen, const char *prefix, const char *arg)
{
    snprintf(rule, rulelen, "%s%s", prefix, arg);
    return POLICY_DENY;
}

policy_verdict_t policy_check_address(const config_t *cfg, const config_policy_t *pol,
                                      const netaddr_t *addr, char *rule, size_t rulelen)
{
    if (cidrset_match(&cfg->workspace_subnets, addr) >= 0)
        return deny(rule, rulelen, "ssrf:workspace_subnet", "");
    int i = cidrset_match(&pol->allow_cidrs, addr);
    if (i >= 0) {
        char c[80];
        netcidr_format(&pol->allow_cidrs.v[i], c, sizeof c);
        snprintf(rule, rulelen, "allow_cidrs:%s", c);
        return POLICY_ALLOW;
    }
    netclass_t cls = ipaddr_classify(addr);
    if (cls != NETCLASS_PUBLIC) return deny(rule, rulelen, "ssrf:", netclass_name(cls));
    snprintf(rule, rulelen, "public_address");
    return POLICY_ALLOW;
}

policy_verdict_t policy_check_target(const config_t *cfg, const config_policy_t *pol,
                                     const policy_target_t *t, bool is_connect, char *rule,
                                     size_t rulelen)
{
    if (is_connect ? !port_set_has(&pol->connect_ports, t->port)
                   : !port_set_has(&pol->http_ports, t->port))
        return deny(rule, rulelen, is_connect ? "port:connect" : "port:http", "");

    if (t->is_ip) {
        /* No domain rule names an address: only allow_cidrs can admit one. */
        policy_verdict_t v = policy_check_address(cfg, pol, &t->ip, rule, rulelen);
        if (v == POLICY_ALLOW && strncmp(rule, "allow_cidrs:", 12) != 0)
            return deny(rule, rulelen, "default_deny", "");
        return v;
    }
    int id;
    if (cfg->global_deny && (id = domain_set_match(cfg->global_deny, t->host, t->host_len)) >= 0)
        return deny(rule, rulelen, "global_deny_domains:", cfg->global_deny_patterns[id]);
    if (pol->deny && (id = domain_set_match(pol->deny, t->host, t->host_len)) >= 0)
        return deny(rule, rulelen, "deny_domains:", pol->deny_patterns[id]);
    if (pol->allow && (id = domain_set_match(pol->allow, t->host, t->host_len)) >= 0) {
        snprintf(rule, rulelen, "allow_domains:%s", pol->allow_patterns[id]);
        return POLICY_ALLOW;
    }
    return deny(rule, rulelen, "default_deny", "");
}
