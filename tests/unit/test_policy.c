/*
 * Unit tests for policy (decision order, rule names, SSRF guard) and
 * identity (attribution by credentials and source address), on a config
 * loaded from YAML exactly as the daemon loads it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "identity/identity.h"
#include "policy/policy.h"

/* sha256("alice-token") and sha256("bob-token") */
static const char cfg_text[] =
    "version: 1\n"
    "workspace_subnets: [10.42.0.0/16]\n"
    "deny_domains: [api.openai.com, api.anthropic.com, generativelanguage.googleapis.com]\n"
    "workspaces:\n"
    "  - id: alice\n"
    "    group: dev\n"
    "    sources: [10.42.1.0/24]\n"
    "    tokens: [\"sha256:%s\"]\n"
    "  - id: bob\n"
    "    group: locked\n"
    "    sources: [10.42.2.0/24]\n"
    "    tokens: [\"sha256:%s\"]\n"
    "policies:\n"
    "  - name: dev-egress\n"
    "    groups: [dev]\n"
    "    allow_domains: [.github.com, .npmjs.org, .pypi.org, .docker.io, .gcr.io, "
    ".amazonaws.com, localhost]\n"
    "    deny_domains: [.dropbox.com, .wetransfer.com, .pastebin.com, gist.github.com]\n"
    "    allow_cidrs: [10.9.0.0/24, 10.42.5.0/24]\n"
    "  - name: locked-egress\n"
    "    groups: [locked]\n"
    "    mode: monitor\n"
    "    require_auth: true\n"
    "    connect_ports: [443, 8443]\n";

static config_t *cfg;

static void hex(const char *tok, char out[65])
{
    uint8_t d[32];
    ident_hash_token(tok, strlen(tok), d);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static int setup(void **state)
{
    (void)state;
    char a[65], b[65], text[2048];
    hex("alice-token", a);
    hex("bob-token", b);
    snprintf(text, sizeof text, cfg_text, a, b);
    config_errors_t errs = {0};
    cfg = config_load_buffer("test.yaml", text, strlen(text), &errs);
    for (size_t i = 0; i < errs.n; i++)
        print_error("%s\n", errs.msgs[i]);
    config_errors_free(&errs);
    return cfg ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    config_unref(cfg);
    return 0;
}

static const config_policy_t *policy(const char *name)
{
    for (size_t i = 0; i < cfg->npolicies; i++)
        if (strcmp(cfg->policies[i].name, name) == 0) return &cfg->policies[i];
    return NULL;
}

/* Decide for host:port; returns the verdict and leaves the rule in *rule. */
static policy_verdict_t decide(const char *host, uint16_t port, bool connect, char *rule)
{
    policy_target_t t;
    char err[128];
    if (policy_target_parse(host, strlen(host), port, &t, err, sizeof err) < 0) {
        strcpy(rule, "invalid_host");
        return POLICY_DENY;
    }
    return policy_check_target(cfg, policy("dev-egress"), &t, connect, rule, POLICY_RULE_MAX);
}

static void expect(const char *host, uint16_t port, bool connect, policy_verdict_t v,
                   const char *want_rule)
{
    char rule[POLICY_RULE_MAX];
    policy_verdict_t got = decide(host, port, connect, rule);
    if (got != v || strcmp(rule, want_rule) != 0)
        fail_msg("%s:%u: got %d %s, want %d %s", host, port, got, rule, v, want_rule);
}

static void test_seed_allowlist(void **state)
{
    (void)state;
    expect("github.com", 443, true, POLICY_ALLOW, "allow_domains:.github.com");
    expect("api.github.com", 443, true, POLICY_ALLOW, "allow_domains:.github.com");
    expect("GitHub.COM.", 443, true, POLICY_ALLOW, "allow_domains:.github.com");
    expect("registry.npmjs.org", 443, true, POLICY_ALLOW, "allow_domains:.npmjs.org");
    expect("s3.eu-west-1.amazonaws.com", 80, false, POLICY_ALLOW, "allow_domains:.amazonaws.com");
    expect("evilgithub.com", 443, true, POLICY_DENY, "default_deny");
    expect("github.com.evil.net", 443, true, POLICY_DENY, "default_deny");
    expect("example.com", 80, false, POLICY_DENY, "default_deny");
}

static void test_deny_wins(void **state)
{
    (void)state;
    expect("api.openai.com", 443, true, POLICY_DENY, "global_deny_domains:api.openai.com");
    expect("API.OpenAI.com.", 443, true, POLICY_DENY, "global_deny_domains:api.openai.com");
    expect("generativelanguage.googleapis.com", 443, true, POLICY_DENY,
           "global_deny_domains:generativelanguage.googleapis.com");
    /* exact rule: a subdomain is not covered by it (and is not allowed either) */
    expect("x.api.openai.com", 443, true, POLICY_DENY, "default_deny");
    expect("www.dropbox.com", 443, true, POLICY_DENY, "deny_domains:.dropbox.com");
    expect("dropbox.com", 443, true, POLICY_DENY, "deny_domains:.dropbox.com");
    /* deny beats a broader allow */
    expect("gist.github.com", 443, true, POLICY_DENY, "deny_domains:gist.github.com");
}

static void test_ports(void **state)
{
    (void)state;
    expect("github.com", 22, true, POLICY_DENY, "port:connect");
    expect("github.com", 80, true, POLICY_DENY, "port:connect");
    expect("github.com", 443, false, POLICY_DENY, "port:http");
    expect("github.com", 8080, false, POLICY_ALLOW, "allow_domains:.github.com");
    /* port checks come before domain checks */
    expect("api.openai.com", 22, true, POLICY_DENY, "port:connect");
}

static void test_ip_literals(void **state)
{
    (void)state;
    expect("127.0.0.1", 80, false, POLICY_DENY, "ssrf:loopback");
    expect("2130706433", 80, false, POLICY_DENY, "ssrf:loopback");
    expect("0177.0.0.1", 80, false, POLICY_DENY, "ssrf:loopback");
    expect("0x7f.1", 80, false, POLICY_DENY, "ssrf:loopback");
    expect("[::ffff:127.0.0.1]", 80, false, POLICY_DENY, "ssrf:loopback");
    expect("[::1]", 80, false, POLICY_DENY, "ssrf:loopback");
    expect("169.254.169.254", 80, false, POLICY_DENY, "ssrf:link_local");
    expect("[::ffff:a9fe:a9fe]", 80, false, POLICY_DENY, "ssrf:link_local");
    expect("012.0.0.1", 80, false, POLICY_DENY, "ssrf:private");
    expect("100.64.0.1", 80, false, POLICY_DENY, "ssrf:cgnat");
    expect("0.0.0.0", 80, false, POLICY_DENY, "ssrf:this_network");
    expect("224.0.0.1", 80, false, POLICY_DENY, "ssrf:multicast");
    expect("255.255.255.255", 80, false, POLICY_DENY, "ssrf:broadcast");
    expect("[fd00::1]", 80, false, POLICY_DENY, "ssrf:ula");
    expect("[64:ff9b::10.0.0.1]", 80, false, POLICY_DENY, "ssrf:private");
    expect("1.2.3.4.5", 80, false, POLICY_DENY, "invalid_host");
    expect("256.0.0.1", 80, false, POLICY_DENY, "invalid_host");
    /* a public literal names no domain rule: default deny */
    expect("8.8.8.8", 80, false, POLICY_DENY, "default_deny");
    /* explicit private allow */
    expect("10.9.0.7", 80, false, POLICY_ALLOW, "allow_cidrs:10.9.0.0/24");
    expect("012.9.0.7", 80, false, POLICY_ALLOW, "allow_cidrs:10.9.0.0/24");
    /* workspace subnets win even over allow_cidrs */
    expect("10.42.5.1", 80, false, POLICY_DENY, "ssrf:workspace_subnet");
}

static void test_resolved_addresses(void **state)
{
    (void)state;
    const config_policy_t *p = policy("dev-egress");
    char rule[POLICY_RULE_MAX];
    netaddr_t a;
    assert_int_equal(ipaddr_parse_strict("140.82.112.3", 12, &a), 0);
    assert_int_equal(policy_check_address(cfg, p, &a, rule, sizeof rule), POLICY_ALLOW);
    assert_string_equal(rule, "public_address");
    assert_int_equal(ipaddr_parse_strict("127.0.0.1", 9, &a), 0);
    assert_int_equal(policy_check_address(cfg, p, &a, rule, sizeof rule), POLICY_DENY);
    assert_string_equal(rule, "ssrf:loopback");
    assert_int_equal(ipaddr_parse_strict("10.42.1.9", 9, &a), 0);
    assert_int_equal(policy_check_address(cfg, p, &a, rule, sizeof rule), POLICY_DENY);
    assert_string_equal(rule, "ssrf:workspace_subnet");
}

static void test_identity_source(void **state)
{
    (void)state;
    netaddr_t a;
    ipaddr_parse_strict("10.42.1.7", 9, &a);
    ident_result_t r = ident_attribute(cfg, &a, NULL, 0);
    assert_int_equal(r.status, IDENT_OK);
    assert_string_equal(r.ws->id, "alice");
    assert_string_equal(r.ws->policy->name, "dev-egress");
    /* bob's policy requires credentials even from his subnet */
    ipaddr_parse_strict("10.42.2.7", 9, &a);
    r = ident_attribute(cfg, &a, NULL, 0);
    assert_int_equal(r.status, IDENT_NONE);
    assert_string_equal(r.rule, "auth:required");
    /* unknown source */
    ipaddr_parse_strict("192.0.2.1", 9, &a);
    r = ident_attribute(cfg, &a, NULL, 0);
    assert_int_equal(r.status, IDENT_NONE);
    assert_string_equal(r.rule, "auth:missing");
}

static void test_identity_credentials(void **state)
{
    (void)state;
    netaddr_t a;
    ipaddr_parse_strict("192.0.2.1", 9, &a);
    /* Basic base64("bob:bob-token") */
    const char *basic = "Basic Ym9iOmJvYi10b2tlbg==";
    ident_result_t r = ident_attribute(cfg, &a, basic, strlen(basic));
    assert_int_equal(r.status, IDENT_OK);
    assert_string_equal(r.ws->id, "bob");
    assert_true(r.authenticated);
    const char *bearer = "Bearer alice-token";
    r = ident_attribute(cfg, &a, bearer, strlen(bearer));
    assert_int_equal(r.status, IDENT_OK);
    assert_string_equal(r.ws->id, "alice");
    /* right token, wrong workspace id */
    const char *wrong_id = "Basic YWxpY2U6Ym9iLXRva2Vu"; /* alice:bob-token */
    r = ident_attribute(cfg, &a, wrong_id, strlen(wrong_id));
    assert_int_equal(r.status, IDENT_BAD_CREDS);
    /* credentials decide even from a matching source address */
    ipaddr_parse_strict("10.42.1.7", 9, &a);
    const char *bad = "Bearer nope";
    r = ident_attribute(cfg, &a, bad, strlen(bad));
    assert_int_equal(r.status, IDENT_BAD_CREDS);
    assert_string_equal(r.rule, "auth:invalid");
    const char *garbage[] = {"Basic",      "Basic !!!!", "Basic Ym9i",
                             "Digest x=y", "Bearer ",    "Basic Ym9iOg=="};
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        r = ident_attribute(cfg, &a, garbage[i], strlen(garbage[i]));
        assert_int_equal(r.status, IDENT_BAD_CREDS);
    }
}

static void test_base64(void **state)
{
    (void)state;
    uint8_t out[16];
    assert_int_equal(ident_base64_decode("YWJj", 4, out, sizeof out), 3);
    assert_memory_equal(out, "abc", 3);
    assert_int_equal(ident_base64_decode("YWI=", 4, out, sizeof out), 2);
    assert_int_equal(ident_base64_decode("YQ==", 4, out, sizeof out), 1);
    assert_int_equal(ident_base64_decode("YQ=", 3, out, sizeof out), -1);
    assert_int_equal(ident_base64_decode("Y===", 4, out, sizeof out), -1);
    assert_int_equal(ident_base64_decode("YQ==YWJj", 8, out, sizeof out), -1);
    assert_int_equal(ident_base64_decode("YW J", 4, out, sizeof out), -1);
    assert_int_equal(ident_base64_decode("YWJjYWJjYWJjYWJjYWJj", 20, out, 4), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_allowlist),
        cmocka_unit_test(test_deny_wins),
        cmocka_unit_test(test_ports),
        cmocka_unit_test(test_ip_literals),
        cmocka_unit_test(test_resolved_addresses),
        cmocka_unit_test(test_identity_source),
        cmocka_unit_test(test_identity_credentials),
        cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests_name("policy", tests, setup, teardown);
}
