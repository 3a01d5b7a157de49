/*
 * Unit tests for src/config/config.c: the bundled and the seed configs load
 * with the expected values, every error class yields an exact
 * "FILE:LINE: message", every error of a file is reported, the broken
 * configs under tests/configs/bad/ fail with the error and line their first
 * lines announce, the inspect section builds its engine (inline rules,
 * rules_files, enable/disable) and resolves actions (rule_actions, then
 * actions, then the rule's own), the duration/size parsers handle the edge
 * cases, and reference counting frees once.  Run from the repository root.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "inspect/validate.h"
#include "limits/window.h"
#include "llm/route.h"

#define BAD_DIR "tests/configs/bad"

/* A minimal valid config, 9 lines; cases append to it or replace parts. */
#define V "version: 1\n"
#define WS "workspaces:\n  - id: a\n    group: g\n    sources: [10.0.0.0/24]\n"
#define POL "policies:\n  - name: p\n    groups: [g]\n    allow_domains: [.example.com]\n"

static config_t *load(const char *yaml, config_errors_t *errs)
{
    return config_load_buffer("t.yaml", yaml, strlen(yaml), errs);
}

static void dump(const config_errors_t *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        print_error("  got: %s\n", errs->msgs[i]);
}

/* The load fails and one error is exactly `expected` (or starts with it). */
static void check_error(const char *yaml, const char *expected, bool prefix)
{
    config_errors_t errs = {0};
    config_t *c = load(yaml, &errs);
    bool found = false;
    for (size_t i = 0; i < errs.n; i++) {
        const char *m = errs.msgs[i];
        if (prefix ? !strncmp(m, expected, strlen(expected)) : !strcmp(m, expected)) found = true;
    }
    if (!found || c) {
        print_error("expected: %s\n", expected);
        dump(&errs);
    }
    config_unref(c);
    assert_null(c);
    assert_true(found);
    config_errors_free(&errs);
}

static void check_exact(const char *yaml, const char *expected)
{
    check_error(yaml, expected, false);
}

static void check_prefix(const char *yaml, const char *expected)
{
    check_error(yaml, expected, true);
}

static config_t *load_ok(const char *yaml)
{
    config_errors_t errs = {0};
    config_t *c = load(yaml, &errs);
    if (!c) dump(&errs);
    assert_non_null(c);
    assert_int_equal(errs.n, 0);
    config_errors_free(&errs);
    return c;
}

static bool matches(const domain_set_t *s, const char *host)
{
    return domain_set_match(s, host, strlen(host)) >= 0;
}

static const char *matched(const domain_set_t *s, char **patterns, const char *host)
{
    int id = domain_set_match(s, host, strlen(host));
    return id >= 0 ? patterns[id] : NULL;
}

/* ---- valid configs ---- */

static void test_bundled_config_loads(void **state)
{
    (void)state;
    config_errors_t errs = {0};
    config_t *c = config_load("cdeguard.yaml", &errs);
    if (!c) dump(&errs);
    assert_non_null(c);
    assert_int_equal(errs.n, 0);
    assert_string_equal(c->path, "cdeguard.yaml");
    assert_int_equal(atomic_load(&c->refs), 1);
    assert_int_equal(c->version, 1);
    assert_true(c->egress.enabled);
    assert_string_equal(c->egress.host, "127.0.0.1");
    assert_int_equal(c->egress.port, 3128);
    assert_true(c->admin.enabled);
    assert_string_equal(c->admin.host, "127.0.0.1");
    assert_int_equal(c->admin.port, 9090);
    assert_int_equal(c->workers, 0);
    assert_int_equal(c->audit_sink, AUDIT_FILE);
    assert_string_equal(c->audit_path, "cdeguard-audit.log");
    assert_int_equal(c->client_header_timeout_ms, 10000);
    assert_int_equal(c->idle_timeout_ms, 60000);
    assert_int_equal(c->connect_timeout_ms, 10000);
    assert_int_equal(c->client_hello_timeout_ms, 10000);
    assert_int_equal(c->drain_timeout_ms, 30000);
    assert_int_equal(c->max_header_bytes, 65536);
    assert_int_equal(c->workspace_subnets.n, 1);
    assert_int_equal(c->workspace_subnets.v[0].prefix, 16);
    assert_int_equal(c->nglobal_deny, 3);
    assert_string_equal(c->global_deny_patterns[0], "api.openai.com");

    assert_int_equal(c->npolicies, 1);
    const config_policy_t *p = &c->policies[0];
    assert_string_equal(p->name, "developers-egress");
    assert_int_equal(p->ngroups, 1);
    assert_string_equal(p->groups[0], "developers");
    assert_int_equal(p->mode, POLICY_ENFORCE);
    assert_false(p->require_auth);
    assert_int_equal(p->nallow, 6);
    assert_int_equal(p->ndeny, 3);
    assert_int_equal(p->connect_ports.n, 1);
    assert_true(port_set_has(&p->connect_ports, 443));
    assert_false(port_set_has(&p->connect_ports, 22));
    assert_int_equal(p->http_ports.n, 2);
    assert_true(port_set_has(&p->http_ports, 80));
    assert_true(port_set_has(&p->http_ports, 8080));
    assert_true(port_set_has(&p->tls_only_ports, 443));
    assert_int_equal(p->upload_alert_bytes, 10000000); /* 10MB, decimal */
    assert_int_equal(p->upload_action, UPLOAD_ALERT);
    assert_int_equal(p->line, 43);
    assert_int_equal(p->allow_cidrs.n, 0);

    assert_int_equal(c->nworkspaces, 2);
    const config_workspace_t *w = &c->workspaces[0];
    assert_string_equal(w->id, "local");
    assert_string_equal(w->group, "developers");
    assert_int_equal(w->sources.n, 2);
    assert_int_equal(w->ntokens, 0);
    assert_ptr_equal(w->policy, p);
    assert_int_equal(w->line, 32);
    w = &c->workspaces[1];
    assert_string_equal(w->id, "ws-demo");
    assert_int_equal(w->sources.n, 0);
    assert_int_equal(w->ntokens, 1);
    assert_int_equal(w->tokens[0].sha256[0], 0xb5);
    assert_int_equal(w->tokens[0].sha256[31], 0x12);
    assert_ptr_equal(w->policy, p);

    assert_string_equal(w->team, "developers");
    assert_string_equal(w->region, "");

    /* the gateway: default providers (no keys), one group allowing everything */
    assert_true(c->gateway.enabled);
    assert_true(c->gateway.listen.enabled);
    assert_string_equal(c->gateway.listen.host, "127.0.0.1");
    assert_int_equal(c->gateway.listen.port, 8080);
    assert_false(c->gateway.ext_authz.enabled);
    assert_null(c->gateway.tls_cert);
    assert_int_equal(c->gateway.nproviders, 5);
    for (size_t i = 0; i < c->gateway.nproviders; i++)
        assert_null(c->gateway.providers[i].key);
    assert_non_null(config_gw_provider(c, "anthropic", 9));
    assert_int_equal(c->gateway.ngroups, 1);
    const config_gw_group_t *g = config_gw_group(c, "developers");
    assert_non_null(g);
    assert_int_equal(g->nproviders, 0);
    assert_int_equal(g->nmodels, 0);
    assert_non_null(c->inspect.engine);

    assert_string_equal(matched(c->global_deny, c->global_deny_patterns, "api.anthropic.com"),
                        "api.anthropic.com");
    assert_string_equal(matched(p->allow, p->allow_patterns, "api.github.com"), ".github.com");
    assert_string_equal(matched(p->deny, p->deny_patterns, "www.dropbox.com"), ".dropbox.com");
    config_unref(c);
}

static void test_seed_squid_allowlist(void **state)
{
    (void)state;
    static const char *const allowed[] = {".github.com", ".npmjs.org", ".pypi.org",
                                          ".docker.io",  ".gcr.io",    ".amazonaws.com"};
    static const char *const denied[] = {
        "api.openai.com", "api.anthropic.com", "generativelanguage.googleapis.com",
        ".dropbox.com",   ".wetransfer.com",   ".pastebin.com"};
    config_errors_t errs = {0};
    config_t *c = config_load("tests/configs/seed-squid.yaml", &errs);
    if (!c) dump(&errs);
    assert_non_null(c);
    assert_int_equal(c->npolicies, 1);
    assert_int_equal(c->nworkspaces, 1);
    const config_policy_t *p = &c->policies[0];
    assert_ptr_equal(c->workspaces[0].policy, p);

    /* one pattern per Squid entry, kept as written, in order */
    assert_int_equal(p->nallow, 6);
    assert_int_equal(domain_set_count(p->allow), 6);
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(p->allow_patterns[i], allowed[i]);
    assert_int_equal(c->nglobal_deny, 6);
    assert_int_equal(domain_set_count(c->global_deny), 6);
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(c->global_deny_patterns[i], denied[i]);
    assert_int_equal(p->ndeny, 0);

    /* Squid dstdomain ".x" matches x and its subdomains */
    static const char *const allow_hosts[][2] = {
        {"github.com", ".github.com"},
        {"api.github.com", ".github.com"},
        {"codeload.github.com", ".github.com"},
        {"registry.npmjs.org", ".npmjs.org"},
        {"pypi.org", ".pypi.org"},
        {"files.pypi.org", ".pypi.org"},
        {"registry-1.docker.io", ".docker.io"},
        {"gcr.io", ".gcr.io"},
        {"s3.us-east-1.amazonaws.com", ".amazonaws.com"},
    };
    for (size_t i = 0; i < sizeof allow_hosts / sizeof allow_hosts[0]; i++) {
        const char *m = matched(p->allow, p->allow_patterns, allow_hosts[i][0]);
        assert_non_null(m);
        assert_string_equal(m, allow_hosts[i][1]);
    }
    static const char *const not_allowed[] = {"githubusercontent.com", "notgithub.com",
                                              "example.com", "api.openai.com",
                                              "npmjs.org.evil.com"};
    for (size_t i = 0; i < sizeof not_allowed / sizeof not_allowed[0]; i++)
        assert_false(matches(p->allow, not_allowed[i]));

    static const char *const deny_hosts[][2] = {
        {"api.openai.com", "api.openai.com"},
        {"api.anthropic.com", "api.anthropic.com"},
        {"generativelanguage.googleapis.com", "generativelanguage.googleapis.com"},
        {"dropbox.com", ".dropbox.com"},
        {"www.dropbox.com", ".dropbox.com"},
        {"wetransfer.com", ".wetransfer.com"},
        {"pastebin.com", ".pastebin.com"},
    };
    for (size_t i = 0; i < sizeof deny_hosts / sizeof deny_hosts[0]; i++) {
        const char *m = matched(c->global_deny, c->global_deny_patterns, deny_hosts[i][0]);
        assert_non_null(m);
        assert_string_equal(m, deny_hosts[i][1]);
    }
    /* exact entries do not cover subdomains or parents */
    assert_false(matches(c->global_deny, "openai.com"));
    assert_false(matches(c->global_deny, "x.api.openai.com"));
    assert_false(matches(c->global_deny, "github.com"));
    config_unref(c);
    config_errors_free(&errs);
}

static void test_full_schema_valid(void **state)
{
    (void)state;
    config_t *c = load_ok(
        V "listeners:\n  egress: \"[::1]:3128\"\n  admin: off\n"
          "workers: 8\naudit: {sink: stdout, path: /var/log/x.log}\n"
          "timeouts: {client_header: 500ms, idle: 2m, connect: 3, client_hello: 1h, drain: 45s}\n"
          "max_header_bytes: 16KiB\n"
          "workspace_subnets: [10.42.0.0/16, \"fd00::/8\"]\n"
          "workspaces:\n"
          "  - id: a\n    group: g\n    sources: [10.0.0.0/24]\n"
          "  - id: b\n    group: h\n"
          "    tokens: "
          "[\"sha256:B5D56F2EACF505C2639B22468F3A8B1BCAF7D619CADBAB47DC6CE515FC4C3612\"]\n"
          "policies:\n"
          "  - name: p\n    groups: [g]\n    mode: monitor\n    require_auth: true\n"
          "    allow_domains: [.example.com, \"*.example.org\", example.net]\n"
          "    deny_domains: [bad.example.com]\n"
          "    allow_cidrs: [192.168.1.0/24]\n"
          "    connect_ports: [443, 8443, 443]\n    http_ports: []\n    tls_only_ports: [8443]\n"
          "    upload: {alert_bytes: 1MiB, action: block}\n"
          "  - name: q\n    groups: [h, unused]\n    allow_domains:\n");
    assert_string_equal(c->egress.host, "::1");
    assert_int_equal(c->egress.port, 3128);
    assert_true(c->egress.enabled);
    assert_false(c->admin.enabled);
    assert_int_equal(c->workers, 8);
    assert_int_equal(c->audit_sink, AUDIT_STDOUT);
    assert_string_equal(c->audit_path, "/var/log/x.log");
    assert_int_equal(c->client_header_timeout_ms, 500);
    assert_int_equal(c->idle_timeout_ms, 120000);
    assert_int_equal(c->connect_timeout_ms, 3000);
    assert_int_equal(c->client_hello_timeout_ms, 3600000);
    assert_int_equal(c->drain_timeout_ms, 45000);
    assert_int_equal(c->max_header_bytes, 16384);
    assert_int_equal(c->workspace_subnets.n, 2);
    assert_int_equal(c->nglobal_deny, 0);
    assert_non_null(c->global_deny);

    const config_policy_t *p = &c->policies[0], *q = &c->policies[1];
    assert_int_equal(p->mode, POLICY_MONITOR);
    assert_true(p->require_auth);
    assert_int_equal(p->nallow, 3);
    assert_string_equal(matched(p->allow, p->allow_patterns, "a.example.org"), "*.example.org");
    assert_false(matches(p->allow, "example.org"));
    assert_string_equal(matched(p->allow, p->allow_patterns, "example.net"), "example.net");
    assert_string_equal(matched(p->deny, p->deny_patterns, "bad.example.com"), "bad.example.com");
    assert_int_equal(p->allow_cidrs.n, 1);
    assert_int_equal(p->connect_ports.n, 2); /* duplicate 443 dropped */
    assert_true(port_set_has(&p->connect_ports, 8443));
    assert_int_equal(p->http_ports.n, 0);
    assert_false(port_set_has(&p->http_ports, 80));
    assert_int_equal(p->tls_only_ports.n, 1);
    assert_true(port_set_has(&p->tls_only_ports, 8443));
    assert_int_equal(p->upload_alert_bytes, 1048576);
    assert_int_equal(p->upload_action, UPLOAD_BLOCK);

    assert_int_equal(q->mode, POLICY_ENFORCE);
    assert_int_equal(q->nallow, 0);
    assert_non_null(q->allow);
    assert_non_null(q->deny);
    assert_int_equal(q->upload_alert_bytes, 10485760);
    assert_true(port_set_has(&q->http_ports, 8080));

    assert_ptr_equal(c->workspaces[0].policy, p);
    assert_ptr_equal(c->workspaces[1].policy, q);
    assert_int_equal(c->workspaces[1].ntokens, 1);
    assert_int_equal(c->workspaces[1].tokens[0].sha256[0], 0xb5);
    config_unref(c);
}

static void test_defaults(void **state)
{
    (void)state;
    config_t *c = load_ok(V WS POL);
    assert_string_equal(c->path, "t.yaml");
    assert_string_equal(c->egress.host, "127.0.0.1");
    assert_int_equal(c->egress.port, 3128);
    assert_int_equal(c->admin.port, 9090);
    assert_int_equal(c->workers, 0);
    assert_int_equal(c->audit_sink, AUDIT_FILE);
    assert_string_equal(c->audit_path, "cdeguard-audit.log");
    assert_int_equal(c->client_header_timeout_ms, 10000);
    assert_int_equal(c->idle_timeout_ms, 60000);
    assert_int_equal(c->connect_timeout_ms, 10000);
    assert_int_equal(c->client_hello_timeout_ms, 10000);
    assert_int_equal(c->drain_timeout_ms, 30000);
    assert_int_equal(c->max_header_bytes, 65536);
    const config_policy_t *p = &c->policies[0];
    assert_int_equal(p->mode, POLICY_ENFORCE);
    assert_false(p->require_auth);
    assert_int_equal(p->connect_ports.n, 1);
    assert_true(port_set_has(&p->connect_ports, 443));
    assert_int_equal(p->http_ports.n, 2);
    assert_true(port_set_has(&p->http_ports, 80));
    assert_true(port_set_has(&p->http_ports, 8080));
    assert_int_equal(p->tls_only_ports.n, 1);
    assert_int_equal(p->upload_alert_bytes, 10485760);
    assert_int_equal(p->upload_action, UPLOAD_ALERT);
    assert_int_equal(p->line, 7);
    assert_int_equal(c->workspaces[0].line, 3);
    config_unref(c);
}

/* ---- one case per error class: exact text and line ---- */

static void test_err_syntax(void **state)
{
    (void)state;
    check_exact(V "workspaces:\n  - id: a\n   group: g\n",
                "t.yaml:4: YAML syntax error: did not find expected '-' indicator "
                "(while parsing a block collection at line 3)");
    check_exact(V WS "policies: [\n",
                "t.yaml:7: YAML syntax error: did not find expected node content "
                "(while parsing a flow node at line 7)");
    check_exact(V "deny_domains: [\"a.com]\n",
                "t.yaml:3: YAML syntax error: found unexpected end of stream "
                "(while scanning a quoted scalar at line 2)");
    check_exact(V "\tworkers: 1\n",
                "t.yaml:2: YAML syntax error: found a tab character that "
                "violates indentation (while scanning a plain scalar at line 1)");
    static const char nul[] = "version: 1\nworkers: 1\0\n";
    config_errors_t errs = {0};
    assert_null(config_load_buffer("t.yaml", nul, sizeof nul - 1, &errs));
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.msgs[0],
                        "t.yaml:2: YAML syntax error: control characters are not allowed");
    config_errors_free(&errs);
}

static void test_err_unknown_keys(void **state)
{
    (void)state;
    check_exact(
        V WS "policies:\n  - name: x\n    groups: [g]\n    alow_domains: [a.com]\n",
        "t.yaml:9: unknown key 'alow_domains' in policy 'x' (did you mean 'allow_domains'?)");
    check_exact(V WS POL "worker: 4\n",
                "t.yaml:10: unknown key 'worker' at top level (did you mean 'workers'?)");
    check_exact(V WS POL "frobnicate: 1\n", "t.yaml:10: unknown key 'frobnicate' at top level");
    check_exact(V WS POL "timeouts:\n  idel: 5s\n",
                "t.yaml:11: unknown key 'idel' in timeouts (did you mean 'idle'?)");
    check_exact(V WS POL "listeners: {egres: 127.0.0.1:1}\n",
                "t.yaml:10: unknown key 'egres' in listeners (did you mean 'egress'?)");
    check_exact(V "workspaces:\n  - id: a\n    group: g\n    source: [10.0.0.0/8]\n" POL,
                "t.yaml:5: unknown key 'source' in workspace 'a' (did you mean 'sources'?)");
    check_exact(V "workspaces:\n  - group: g\n    tokesn: []\n    sources: [10.0.0.0/8]\n" POL,
                "t.yaml:4: unknown key 'tokesn' in workspace #1 (did you mean 'tokens'?)");
    check_exact(V WS POL "    upload: {alert_byte: 1MB}\n",
                "t.yaml:10: unknown key 'alert_byte' in upload of policy 'p' (did you mean "
                "'alert_bytes'?)");
    check_exact(V WS POL "    upload: {alert: 1MB}\n",
                "t.yaml:10: unknown key 'alert' in upload of policy 'p'");
    check_exact(V WS POL "audit: {Sink: file}\n",
                "t.yaml:10: unknown key 'Sink' in audit (did you mean 'sink'?)");
    check_exact(V WS POL "[a]: 1\n", "t.yaml:10: keys must be strings, not a list (at top level)");
}

static void test_err_types(void **state)
{
    (void)state;
    check_exact(V WS POL "deny_domains: {a: b}\n",
                "t.yaml:10: deny_domains must be a list, not a mapping");
    check_exact(V WS "policies:\n  - name: p\n    groups: g\n",
                "t.yaml:8: groups of policy 'p' must be a list, not a string (write [g])");
    check_exact(V WS POL "workers: [1]\n", "t.yaml:10: workers must be a number, not a list");
    check_exact(V WS POL "timeouts: 5s\n", "t.yaml:10: timeouts must be a mapping, not a string");
    check_exact(V WS "policies:\n  p: {}\n", "t.yaml:7: policies must be a list, not a mapping");
    check_exact(V WS "policies:\n  - just-a-name\n",
                "t.yaml:7: policy #1 must be a mapping, not a string");
    check_exact(V WS POL "workspace_subnets: [[10.0.0.0/8]]\n",
                "t.yaml:10: workspace_subnets: entries must be strings, not a list");
    check_exact(V WS POL "deny_domains: [a.com, \"\", b.com]\n",
                "t.yaml:10: deny_domains: empty entry");
    check_exact(V "workspaces:\n  - id:\n    group: g\n    sources: [10.0.0.0/8]\n" POL,
                "t.yaml:3: id of workspace #1 must not be empty");
    check_exact(V WS POL "    require_auth: maybe\n",
                "t.yaml:10: require_auth of policy 'p' must be true or false, not 'maybe'");
    check_exact(V WS POL "    mode: open\n",
                "t.yaml:10: mode of policy 'p' must be 'enforce' or 'monitor', not 'open'");
    check_exact(V WS POL "    upload: {action: drop}\n",
                "t.yaml:10: upload.action of policy 'p' must be 'alert' or 'block', not 'drop'");
    check_exact(V WS POL "audit: {sink: syslog}\n",
                "t.yaml:10: audit.sink must be 'file' or 'stdout', not 'syslog'");
    check_exact(V WS POL "workers: 257\n",
                "t.yaml:10: workers must be an integer from 0 to 256 (0 = one per CPU core), not "
                "'257'");
    check_exact(V WS POL "workers: -1\n",
                "t.yaml:10: workers must be an integer from 0 to 256 (0 = one per CPU core), not "
                "'-1'");
    check_exact("- version: 1\n",
                "t.yaml:1: the top level must be a mapping of settings (key: value), not a list");
    check_exact("# nothing here\n",
                "t.yaml:1: the file is empty: a config starts with 'version: 1'");
    check_exact("", "t.yaml:1: the file is empty: a config starts with 'version: 1'");
    check_exact(WS POL,
                "t.yaml:1: missing required key 'version' (this cdeguard reads 'version: 1')");
    check_exact("version: 2\n" WS POL,
                "t.yaml:1: unsupported version '2': this cdeguard reads version 1");
    check_exact(V "workspaces:\n  - id: a b\n    group: g\n    sources: [10.0.0.0/8]\n" POL,
                "t.yaml:3: workspace id 'a b' is invalid: use 1 to 64 letters, digits, '.', '_' or "
                "'-'");
    check_exact(
        V "workspaces:\n  - id: a\n    group: \"g\\r\\nX: y\"\n    sources: [10.0.0.0/8]\n" POL,
        "t.yaml:4: group 'g??X: y' is invalid: use 1 to 64 letters, digits, '.', '_' or "
        "'-'");
    check_exact(V WS "policies:\n  - name: \"p q\"\n    groups: [g, \"h/i\"]\n",
                "t.yaml:7: policy name 'p q' is invalid: use 1 to 64 letters, digits, '.', '_' or "
                "'-'");
    check_exact(V WS "policies:\n  - name: p\n    groups: [g, \"h/i\"]\n",
                "t.yaml:8: group 'h/i' is invalid: use 1 to 64 letters, digits, '.', '_' or '-'");
    check_exact(V "workspaces:\n  - id: a\n    sources: [10.0.0.0/8]\n" POL,
                "t.yaml:3: workspace 'a': missing required key 'group'");
    check_exact(V WS "policies:\n  - groups: [g]\n",
                "t.yaml:7: policy #1: missing required key 'name'");
    check_exact(V WS "policies:\n  - name: p\n",
                "t.yaml:7: policy 'p': missing required key 'groups'");
    check_exact(V WS "policies:\n  - name: p\n    groups: []\n",
                "t.yaml:8: groups of policy 'p' must name at least one workspace group");
}

static void test_err_values(void **state)
{
    (void)state;
    check_exact(V WS POL "timeouts:\n  idle: 10x\n",
                "t.yaml:11: timeouts.idle: bad duration '10x' (use e.g. 500ms, 10s, 2m, 1h)");
    check_exact(V WS POL "timeouts:\n  drain: 0s\n",
                "t.yaml:11: timeouts.drain must be greater than 0");
    check_exact(V WS POL "timeouts:\n  connect: 169h\n",
                "t.yaml:11: timeouts.connect must be at most 168h");
    check_exact(V WS POL "max_header_bytes: 2MiB\n",
                "t.yaml:10: max_header_bytes must be between 1KiB and 1MiB, not '2MiB'");
    check_exact(V WS POL "max_header_bytes: 1023\n",
                "t.yaml:10: max_header_bytes must be between 1KiB and 1MiB, not '1023'");
    check_exact(V WS POL "max_header_bytes: 64 KiB\n",
                "t.yaml:10: max_header_bytes: bad size '64 KiB' (use e.g. 65536, 64KiB, 1MiB)");
    check_exact(V WS POL "    upload: {alert_bytes: 0}\n",
                "t.yaml:10: upload.alert_bytes of policy 'p': bad size '0' (use e.g. 10MB, 512KiB, "
                "1GB; must be greater than 0)");
    check_exact(V WS POL "    connect_ports: [443, 0]\n",
                "t.yaml:10: connect_ports of policy 'p': bad port '0' (must be 1..65535)");
    check_exact(V WS POL "    http_ports:\n      - 80\n      - 65536\n",
                "t.yaml:12: http_ports of policy 'p': bad port '65536' (must be 1..65535)");
    check_exact(V WS POL "    tls_only_ports: [0443]\n",
                "t.yaml:10: tls_only_ports of policy 'p': bad port '0443' (must be 1..65535)");
    check_prefix(V "workspaces:\n  - id: a\n    group: g\n    sources: [10.0.0.1/8]\n" POL,
                 "t.yaml:5: sources of workspace 'a': bad CIDR '10.0.0.1/8': ");
    check_prefix(V WS POL "workspace_subnets: [10.0.0.0/33]\n",
                 "t.yaml:10: workspace_subnets: bad CIDR '10.0.0.0/33': ");
    check_prefix(V WS POL "    allow_cidrs: [example.com]\n",
                 "t.yaml:10: allow_cidrs of policy 'p': bad CIDR 'example.com': ");
    check_prefix(V WS POL "deny_domains: [\"bad domain.com\"]\n",
                 "t.yaml:10: deny_domains: bad domain pattern 'bad domain.com': ");
    check_prefix(V WS POL "    deny_domains: [-bad.example.com]\n",
                 "t.yaml:10: deny_domains of policy 'p': bad domain pattern '-bad.example.com': ");
}

static void test_err_listeners(void **state)
{
    (void)state;
    check_exact(V WS POL "listeners: {egress: 127.0.0.1:3128, admin: 127.0.0.1:3128}\n",
                "t.yaml:10: listeners.admin and listeners.egress both use port 3128");
    check_exact(V WS POL "listeners: {egress: \"off\"}\n",
                "t.yaml:10: listeners.egress is off and there is no gateway listener: nothing to "
                "serve");
    check_exact(V WS POL "listeners: {egress: \"off\", gateway: \"off\"}\ngateway:\n",
                "t.yaml:10: listeners.egress is off and there is no gateway listener: nothing to "
                "serve");
    check_exact(V WS POL "listeners:\n  admin: 0.0.0.0:3128\n",
                "t.yaml:11: listeners.admin and listeners.egress both use port 3128");
    check_exact(V WS POL "listeners:\n  egress: localhost:3128\n",
                "t.yaml:11: listeners.egress: 'localhost' is not an IP address (host names are not "
                "allowed here; write e.g. 127.0.0.1:3128 or [::1]:3128)");
    check_exact(V WS POL "listeners:\n  egress: \"::1:3128\"\n",
                "t.yaml:11: listeners.egress: IPv6 addresses must be in brackets, e.g. [::1]:3128");
    check_exact(V WS POL "listeners:\n  egress: 127.0.0.1\n",
                "t.yaml:11: listeners.egress: '127.0.0.1' has no port (write ADDRESS:PORT, e.g. "
                "127.0.0.1:3128, or off)");
    check_exact(V WS POL "listeners:\n  admin: 127.0.0.1:99999\n",
                "t.yaml:11: listeners.admin: bad port '99999' (must be 1..65535)");
    check_exact(V WS POL "listeners:\n  admin: \"[127.0.0.1]:80\"\n",
                "t.yaml:11: listeners.admin: '127.0.0.1' is not an IP address (host names are not "
                "allowed here; write e.g. 127.0.0.1:3128 or [::1]:3128)");
    check_exact(
        V WS POL "listeners:\n  admin: 127.000.0.1:80\n",
        "t.yaml:11: listeners.admin: '127.000.0.1' is not an IP address (host names are not "
        "allowed here; write e.g. 127.0.0.1:3128 or [::1]:3128)");
    /* a disabled listener frees its port */
    config_t *c = load_ok(V WS POL "listeners: {egress: 127.0.0.1:3128, admin: 'off'}\n"
                                   "workers: 0\n");
    assert_false(c->admin.enabled);
    config_unref(c);
}

static void test_err_workspaces(void **state)
{
    (void)state;
    check_exact(V WS "  - id: a\n    group: g\n    sources: [10.1.0.0/24]\n" POL,
                "t.yaml:6: duplicate workspace id 'a' (first defined at line 3)");
    check_exact(V WS POL "  - name: p\n    groups: [h]\n",
                "t.yaml:10: duplicate policy name 'p' (first defined at line 7)");
    check_exact(V WS "  - id: b\n    group: nobody\n    sources: [10.1.0.0/24]\n" POL,
                "t.yaml:7: workspace 'b': no policy covers its group 'nobody'");
    check_exact(V WS POL "  - name: q\n    groups: [h, g]\n",
                "t.yaml:11: group 'g' is covered by two policies: policy 'p' (line 8) and policy "
                "'q'");
    check_exact(V "workspaces:\n  - id: a\n    group: g\n" POL,
                "t.yaml:3: workspace 'a' has neither sources nor tokens, so no request can be "
                "attributed to it");
    check_exact(V "workspaces:\n  - id: a\n    group: g\n    sources: []\n    tokens: []\n" POL,
                "t.yaml:3: workspace 'a' has neither sources nor tokens, so no request can be "
                "attributed to it");
    check_exact(V "workspaces:\n  - id: a\n    group: g\n    tokens: [demo-token-change-me]\n" POL,
                "t.yaml:5: tokens of workspace 'a': a token must be written as 'sha256:<64 hex "
                "digits>': store the SHA-256 hash of the token, never the token itself (make one "
                "with `cdeguard hash-token`)");
    check_exact(
        V "workspaces:\n  - id: a\n    group: g\n    tokens:\n"
          "      - sha256:b5d56f2eacf505c2639b22468f3a8b1bcaf7d619cadbab47dc6ce515fc4c361\n" POL,
        "t.yaml:6: tokens of workspace 'a': a token must be written as 'sha256:<64 hex "
        "digits>': store the SHA-256 hash of the token, never the token itself (make one "
        "with `cdeguard hash-token`)");
    check_exact(V WS "  - id: b\n    group: g\n    sources: [10.0.0.128/25]\n" POL,
                "t.yaml:8: source 10.0.0.128/25 of workspace 'b' overlaps source 10.0.0.0/24 of "
                "workspace 'a' (line 5)");
    check_exact(V "workspaces:\n  - id: a\n    group: g\n    sources: [10.0.0.0/8]\n"
                  "  - id: b\n    group: g\n    sources: [192.168.0.0/16, 10.0.0.0/8]\n" POL,
                "t.yaml:8: source 10.0.0.0/8 of workspace 'b' overlaps source 10.0.0.0/8 of "
                "workspace 'a' (line 5)");
    check_exact(V "workspaces:\n  - id: a\n    group: g\n    sources: [\"2001:db8::/64\"]\n"
                  "  - id: b\n    group: g\n    sources: [\"::/0\"]\n" POL,
                "t.yaml:8: source ::/0 of workspace 'b' overlaps source 2001:db8::/64 of "
                "workspace 'a' (line 5)");
    check_exact(
        V "workspaces:\n  - id: a\n    group: g\n    tokens: "
          "[\"sha256:b5d56f2eacf505c2639b22468f3a8b1bcaf7d619cadbab47dc6ce515fc4c3612\"]\n"
          "  - id: b\n    group: g\n    tokens: "
          "[\"sha256:B5D56F2EACF505C2639B22468F3A8B1BCAF7D619CADBAB47DC6CE515FC4C3612\"]\n" POL,
        "t.yaml:8: workspace 'b' uses the same token as workspace 'a' (line 5): a token "
        "must identify one workspace");
    /* the same CIDR twice in one workspace, and disjoint CIDRs, are fine */
    config_t *c =
        load_ok(V "workspaces:\n  - id: a\n    group: g\n"
                  "    sources: [10.0.0.0/24, 10.0.0.0/24, 10.0.0.0/25]\n"
                  "  - id: b\n    group: g\n    sources: [10.0.1.0/24, \"::1/128\"]\n" POL);
    config_unref(c);
}

static void test_err_yaml_structure(void **state)
{
    (void)state;
    check_exact(V WS "policies:\n  - name: p\n    groups: &gs [g]\n  - name: q\n    groups: *gs\n",
                "t.yaml:10: YAML aliases are not supported (*gs): write the value out in full");
    check_exact(V WS POL "workers: 1\nworkers: 2\n",
                "t.yaml:11: duplicate key 'workers' at top level (first at line 10)");
    check_exact(V WS "policies:\n  - name: p\n    groups: [g]\n    groups: [h]\n",
                "t.yaml:9: duplicate key 'groups' in policy 'p' (first at line 8)");
    check_exact(V WS POL "---\nversion: 1\n",
                "t.yaml:10: only one YAML document is allowed in a config file");
    char deep[200];
    size_t o = (size_t)snprintf(deep, sizeof deep, "version: 1\nx: ");
    for (int i = 0; i < 40; i++)
        deep[o++] = '[';
    deep[o] = '\0';
    check_exact(deep, "t.yaml:2: YAML nesting is deeper than 32 levels");
}

static void test_multiple_errors(void **state)
{
    (void)state;
    const char *yaml = "version: 1\n"                      /* 1 */
                       "workers: many\n"                   /* 2 */
                       "timeouts: {idle: soon}\n"          /* 3 */
                       "workspaces:\n"                     /* 4 */
                       "  - id: a\n"                       /* 5 */
                       "    group: g\n"                    /* 6 */
                       "    sources: [10.0.0.0/24]\n"      /* 7 */
                       "  - id: a\n"                       /* 8 */
                       "    group: orphan\n"               /* 9 */
                       "    tokens: [secret]\n"            /* 10 */
                       "policies:\n"                       /* 11 */
                       "  - name: p\n"                     /* 12 */
                       "    groups: [g]\n"                 /* 13 */
                       "    alow_domains: [x.com]\n"       /* 14 */
                       "    connect_ports: [22, 99999]\n"; /* 15 */
    static const char *const want[] = {
        "t.yaml:2: workers must be an integer from 0 to 256 (0 = one per CPU core), not 'many'",
        "t.yaml:3: timeouts.idle: bad duration 'soon' (use e.g. 500ms, 10s, 2m, 1h)",
        "t.yaml:8: duplicate workspace id 'a' (first defined at line 5)",
        "t.yaml:9: workspace 'a': no policy covers its group 'orphan'",
        "t.yaml:10: tokens of workspace 'a': a token must be written as 'sha256:<64 hex digits>': "
        "store the SHA-256 hash of the token, never the token itself (make one with `cdeguard "
        "hash-token`)",
        "t.yaml:14: unknown key 'alow_domains' in policy 'p' (did you mean 'allow_domains'?)",
        "t.yaml:15: connect_ports of policy 'p': bad port '99999' (must be 1..65535)",
    };
    config_errors_t errs = {0};
    config_t *c = load(yaml, &errs);
    if (errs.n != sizeof want / sizeof want[0]) dump(&errs);
    assert_null(c);
    assert_int_equal(errs.n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < errs.n; i++)
        assert_string_equal(errs.msgs[i], want[i]);
    /* errors accumulate across loads until freed */
    assert_null(load("version: 3\n", &errs));
    assert_true(errs.n > sizeof want / sizeof want[0]);
    config_errors_free(&errs);
    assert_int_equal(errs.n, 0);
    assert_null(errs.msgs);
}

static void test_error_flood_is_capped(void **state)
{
    (void)state;
    size_t cap = 300 * 16 + 64, o = 0;
    char *yaml = malloc(cap);
    assert_non_null(yaml);
    o += (size_t)snprintf(yaml + o, cap - o, "version: 1\n");
    for (int i = 0; i < 300; i++)
        o += (size_t)snprintf(yaml + o, cap - o, "k%d: 1\n", i);
    config_errors_t errs = {0};
    assert_null(config_load_buffer("t.yaml", yaml, o, &errs));
    assert_int_equal(errs.n, 201);
    assert_string_equal(errs.msgs[0], "t.yaml:2: unknown key 'k0' at top level");
    assert_string_equal(errs.msgs[200], "t.yaml:201: too many errors: 100 more not shown");
    config_errors_free(&errs);
    free(yaml);
}

static void test_file_errors(void **state)
{
    (void)state;
    config_errors_t errs = {0};
    assert_null(config_load("tests/configs/does-not-exist.yaml", &errs));
    assert_int_equal(errs.n, 1);
    assert_string_equal(
        errs.msgs[0],
        "tests/configs/does-not-exist.yaml:1: cannot open: No such file or directory");
    config_errors_free(&errs);

    assert_null(config_load("tests/configs", &errs));
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.msgs[0], "tests/configs:1: cannot read: Is a directory");
    config_errors_free(&errs);

    size_t big = (4u << 20) + 1;
    char *buf = malloc(big);
    assert_non_null(buf);
    memset(buf, '#', big);
    assert_null(config_load_buffer("big.yaml", buf, big, &errs));
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.msgs[0], "big.yaml:1: the file is larger than 4 MiB (4194305 bytes)");
    config_errors_free(&errs);
    free(buf);

    /* no error list: still refused, nothing leaks */
    assert_null(config_load_buffer(NULL, "version: 2\n", 11, NULL));
    assert_null(config_load_buffer("x", NULL, 0, NULL));
}

/* ---- inspect: engine built from the config, actions, errors ---- */

/* Test secrets, assembled at run time (this file is no secret source). */
static void make_aws(char out[21])
{
    snprintf(out, 21, "%s%s%s", "AK", "IA", "R5TXQM2WHJ7BKZ3N");
}

static void make_ghp(char out[41])
{
    snprintf(out, 41, "%s%s", "gh", "p_Zq8Lm3Rt9Vx2Kp7Wn4Hs6Jd1Fg5Cb0");
    validate_base62_6(validate_crc32(out, 34), out + 34);
    out[40] = '\0';
}

#define MAXF 16
typedef struct found {
    inspect_finding_t f[MAXF];
    int n;
} found_t;

static int collect(const inspect_finding_t *f, void *ctx)
{
    found_t *r = ctx;
    if (r->n < MAXF) r->f[r->n] = *f;
    r->n++;
    return 0;
}

static found_t scan_with(const config_t *c, const char *text)
{
    found_t r;
    memset(&r, 0, sizeof r);
    inspect_scratch_t *s = inspect_scratch_new(c->inspect.engine);
    assert_non_null(s);
    assert_int_equal(inspect_scan_text(c->inspect.engine, s, text, strlen(text), collect, &r), 0);
    inspect_scratch_free(s);
    assert_true(r.n <= MAXF);
    return r;
}

static const inspect_finding_t *finding(const found_t *r, const char *id)
{
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->f[i].rule_id, id)) return &r->f[i];
    return NULL;
}

static int rule_index(const inspect_engine_t *e, const char *id, int *count)
{
    int idx = -1;
    *count = 0;
    for (size_t i = 0; i < inspect_rule_count(e); i++)
        if (!strcmp(inspect_rule_id(e, (int)i), id)) {
            idx = (int)i;
            (*count)++;
        }
    return idx;
}

/* Lines 10-24 after the 9 lines of V WS POL. */
#define INSPECT_A                                                                                  \
    "inspect:\n"                                                                                   \
    "  rules:\n"                                                                                   \
    "    - id: acme-deploy-token\n"                                                                \
    "      description: ACME deploy token\n"                                                       \
    "      category: secret\n"                                                                     \
    "      regex: '\\b(acmetok_[A-Za-z0-9]{24})\\b'\n"                                             \
    "      secret_group: 1\n"                                                                      \
    "      keywords: [acmetok_]\n"                                                                 \
    "      action: alert\n"                                                                        \
    "      examples:\n"                                                                            \
    "        positive: ['acmetok_Q7v2Lp9XkR4mZt8WcN3bHy6D']\n"                                     \
    "        negative: ['acmetok_short']\n"                                                        \
    "  disable: [aws-access-key-id]\n"                                                             \
    "  actions: {secret: redact, pii: block}\n"                                                    \
    "  rule_actions: {email-address: alert, acme-deploy-token: block}\n"

static void test_inspect_absent(void **state)
{
    (void)state;
    config_t *c = load_ok(V WS POL);
    assert_null(c->inspect.engine);
    assert_null(c->inspect.rule_action);
    assert_int_equal(c->inspect.nrules, 0);
    assert_int_equal(c->inspect.ninline, 0);
    assert_int_equal(c->inspect.nrules_files, 0);
    inspect_finding_t f;
    memset(&f, 0, sizeof f);
    for (int a = INSPECT_ALERT; a <= INSPECT_BLOCK; a++) {
        f.action = (inspect_action_t)a;
        f.category = INSPECT_PII;
        assert_int_equal(config_inspect_action(c, &f), a);
        assert_int_equal(config_inspect_action(NULL, &f), a);
    }
    config_unref(c);

    /* an empty section still compiles the built-in rules */
    c = load_ok(V WS POL "inspect:\n");
    assert_non_null(c->inspect.engine);
    assert_int_equal(c->inspect.nrules, inspect_rule_count(c->inspect.engine));
    assert_true(c->inspect.nrules > 100);
    int n = 0;
    assert_true(rule_index(c->inspect.engine, "aws-access-key-id", &n) >= 0);
    assert_int_equal(n, 1);
    for (size_t i = 0; i < c->inspect.nrules; i++)
        assert_int_equal(c->inspect.rule_action[i], -1);
    config_unref(c);
}

static void test_inspect_inline_rule_and_actions(void **state)
{
    (void)state;
    char aws[21], ghp[41], email[64], text[512];
    make_aws(aws);
    make_ghp(ghp);
    snprintf(email, sizeof email, "%s%c%s", "jan.kowalski", '@', "acme-corp.io");
    config_t *c = load_ok(V WS POL INSPECT_A);
    const inspect_engine_t *e = c->inspect.engine;
    assert_non_null(e);
    assert_int_equal(c->inspect.ninline, 1);
    assert_int_equal(c->inspect.nrules, inspect_rule_count(e));
    int n = 0, acme = rule_index(e, "acme-deploy-token", &n);
    assert_true(acme >= 0);
    assert_int_equal(n, 1);
    assert_int_equal(inspect_rule_category(e, acme), INSPECT_SECRET);
    assert_string_equal(inspect_rule_description(e, acme), "ACME deploy token");
    assert_int_equal(c->inspect.rule_action[acme], INSPECT_BLOCK);
    assert_true(c->inspect.category_set[INSPECT_SECRET]);
    assert_true(c->inspect.category_set[INSPECT_PII]);
    assert_false(c->inspect.category_set[INSPECT_PATH]);

    snprintf(text, sizeof text,
             "deploy with acmetok_Q7v2Lp9XkR4mZt8WcN3bHy6D\n"
             "GITHUB_TOKEN=%s\n"
             "owner %s\n"
             "aws_access_key_id = %s\n",
             ghp, email, aws);
    found_t r = scan_with(c, text);
    /* the inline rule finds its pattern, with its own action */
    const inspect_finding_t *fa = finding(&r, "acme-deploy-token");
    assert_non_null(fa);
    assert_int_equal(fa->rule, acme);
    assert_int_equal(fa->start, 12);
    assert_int_equal(fa->end, 12 + 32);
    assert_int_equal(fa->line, 1);
    assert_int_equal(fa->action, INSPECT_ALERT);
    /* rule_actions beats actions beats the rule's own */
    assert_int_equal(config_inspect_action(c, fa), INSPECT_BLOCK);
    const inspect_finding_t *fg = finding(&r, "github-pat-classic");
    assert_non_null(fg);
    assert_int_equal(fg->action, INSPECT_BLOCK);
    assert_int_equal(config_inspect_action(c, fg), INSPECT_REDACT); /* actions.secret */
    const inspect_finding_t *fe = finding(&r, "email-address");
    assert_non_null(fe);
    assert_int_equal(fe->action, INSPECT_REDACT);
    assert_int_equal(config_inspect_action(c, fe), INSPECT_ALERT); /* not actions.pii */
    /* disabled: not found although present */
    assert_null(finding(&r, "aws-access-key-id"));
    assert_non_null(strstr(text, aws));

    /* no rule_actions or actions entry: the rule's own */
    inspect_finding_t f = *fg;
    f.category = INSPECT_PATH;
    f.rule = rule_index(e, "path-dotenv", &n);
    f.action = INSPECT_ALERT;
    assert_int_equal(config_inspect_action(c, &f), INSPECT_ALERT);
    /* a rule index the engine does not have: rule_actions do not apply,
     * actions still do */
    f = *fa;
    f.rule = (int)c->inspect.nrules;
    assert_int_equal(config_inspect_action(c, &f), INSPECT_REDACT);
    f.rule = -1;
    assert_int_equal(config_inspect_action(c, &f), INSPECT_REDACT);
    config_unref(c);
}

static void test_inspect_override_and_rules_files(void **state)
{
    (void)state;
    char path[64], aws[21], yaml[2048], text[512];
    make_aws(aws);
    snprintf(path, sizeof path, "/tmp/cdeguard-rules-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char rules[] = "- id: tmpfile-token\n"
                                "  category: secret\n"
                                "  regex: '\\b(tmptok_[A-Za-z0-9]{20})\\b'\n"
                                "  secret_group: 1\n"
                                "  keywords: [tmptok_]\n";
    assert_int_equal(write(fd, rules, sizeof rules - 1), (ssize_t)(sizeof rules - 1));
    close(fd);
    /* the inline rule replaces the built-in one with the same id */
    snprintf(yaml, sizeof yaml,
             V WS POL "inspect:\n"
                      "  rules:\n"
                      "    - id: email-address\n"
                      "      category: pii\n"
                      "      regex: '\\b([a-z.]{1,32}@acme-corp\\.io)\\b'\n"
                      "      secret_group: 1\n"
                      "      keywords: ['@acme-corp.io']\n"
                      "      action: alert\n"
                      "  actions: {secret: alert}\n"
                      "  rules_files: [%s]\n",
             path);
    config_t *c = load_ok(yaml);
    unlink(path);
    const inspect_engine_t *e = c->inspect.engine;
    assert_int_equal(c->inspect.nrules_files, 1);
    assert_string_equal(c->inspect.rules_files[0], path);
    assert_null(c->inspect.rules_files[1]);
    int n = 0;
    assert_true(rule_index(e, "email-address", &n) >= 0);
    assert_int_equal(n, 1);
    assert_true(rule_index(e, "tmpfile-token", &n) >= 0);
    assert_int_equal(n, 1);

    snprintf(text, sizeof text,
             "key %s\nmail jan.kowalski@acme-corp.io, x.y@other-corp.io\n"
             "tok tmptok_Zq8Lm3Rt9Vx2Kp7Wn4Hs\n",
             aws);
    found_t r = scan_with(c, text);
    const inspect_finding_t *f = finding(&r, "aws-access-key-id"); /* not disabled here */
    assert_non_null(f);
    assert_int_equal(f->action, INSPECT_BLOCK);
    assert_int_equal(config_inspect_action(c, f), INSPECT_ALERT);
    f = finding(&r, "email-address");
    assert_non_null(f);
    assert_memory_equal(text + f->start, "jan.kowalski@acme-corp.io", 25);
    assert_int_equal(f->action, INSPECT_ALERT);
    assert_int_equal(config_inspect_action(c, f), INSPECT_ALERT);
    int emails = 0;
    for (int i = 0; i < r.n; i++)
        emails += !strcmp(r.f[i].rule_id, "email-address");
    assert_int_equal(emails, 1); /* the built-in rule would find other-corp.io too */
    f = finding(&r, "tmpfile-token");
    assert_non_null(f);
    assert_int_equal(f->line, 3);
    assert_int_equal(config_inspect_action(c, f), INSPECT_ALERT);
    config_unref(c);
}

static void test_err_inspect(void **state)
{
    (void)state;
    check_exact(V WS POL "inspect: [a]\n", "t.yaml:10: inspect must be a mapping, not a list");
    check_exact(V WS POL "inspect:\n  rule_action: {jwt: alert}\n",
                "t.yaml:11: unknown key 'rule_action' in inspect (did you mean 'rule_actions'?)");
    check_exact(V WS POL "inspect:\n  actions: {secret: deny}\n",
                "t.yaml:11: inspect.actions.secret must be 'block', 'redact' or 'alert', not "
                "'deny'");
    check_exact(V WS POL "inspect:\n  actions: {secrets: block}\n",
                "t.yaml:11: unknown key 'secrets' in inspect.actions (categories are secret, pii, "
                "path) (did you mean 'secret'?)");
    check_exact(V WS POL "inspect:\n  rule_actions:\n    email-address: hide\n",
                "t.yaml:12: inspect.rule_actions.email-address must be 'block', 'redact' or "
                "'alert', not 'hide'");
    check_exact(V WS POL "inspect:\n  rule_actions:\n    jwt: alert\n    nope: block\n",
                "t.yaml:13: inspect.rule_actions: unknown rule id 'nope'");
    check_exact(V WS POL "inspect:\n  disable: [aws-access-key-id, no-such-rule]\n",
                "t.yaml:11: inspect.disable: unknown rule id 'no-such-rule'");
    check_exact(V WS POL "inspect:\n  enable:\n    - ipv4-address\n    - no-such-rule\n",
                "t.yaml:13: inspect.enable: unknown rule id 'no-such-rule'");
    check_exact(V WS POL "inspect:\n  enable: [ipv4-address, jwt]\n  disable:\n    - jwt\n",
                "t.yaml:13: rule 'jwt' is both in inspect.enable and inspect.disable");
    check_exact(V WS POL "inspect:\n  rules_files: [tests/configs/no-such-rules.yaml]\n",
                "t.yaml:11: inspect.rules_files: tests/configs/no-such-rules.yaml:1: cannot open "
                "rules file");
    check_exact(V WS POL "inspect:\n  rules: x\n",
                "t.yaml:11: inspect.rules must be a list, not a string (write [x])");
    /* inline rules: errors at the line of the rule */
    check_exact(V WS POL "inspect:\n"
                         "  rules:\n"
                         "    - id: good-one\n"
                         "      category: secret\n"
                         "      regex: '\\b(good_[a-z]{8})\\b'\n"
                         "      keywords: [good_]\n"
                         "    - id: bad-re\n" /* 16 */
                         "      category: secret\n"
                         "      regex: '(unclosed'\n"
                         "      keywords: [unc]\n",
                "t.yaml:16: inspect.rules: rule 'bad-re': bad regex: missing closing parenthesis");
    check_prefix(V WS POL "inspect:\n  rules:\n    - id: unbounded\n      category: secret\n"
                          "      regex: 'a*'\n",
                 "t.yaml:12: inspect.rules: rule 'unbounded': Vectorscan: ");
    check_exact(V WS POL "inspect:\n  rules:\n    - description: no id\n      category: secret\n"
                         "      regex: x\n",
                "t.yaml:12: inspect.rules: rule without an id");
    check_exact(V WS POL "inspect:\n  rules:\n    - id: x\n      category: secret\n"
                         "      regex: '\\b(x_[a-z]{8})\\b'\n      regx: y\n",
                "t.yaml:12: inspect.rules: unknown rule key 'regx'");
    check_exact(V WS POL "inspect:\n  rules:\n    - [x]\n",
                "t.yaml:12: inspect.rules: entries must be rules (a mapping with id, category, "
                "regex or globs...), not a list");
    check_exact(V WS POL "inspect:\n  rules:\n    - id: dup\n      category: secret\n"
                         "      keywords: [dup_]\n      regex: '\\b(dup_[a-z]{8})\\b'\n"
                         "      keywords: [dup_]\n",
                "t.yaml:16: duplicate key 'keywords' in inspect rule 'dup' (first at line 14)");
}

static void test_err_inspect_all_reported(void **state)
{
    (void)state;
    const char *yaml = V WS POL "inspect:\n"                 /* 10 */
                                "  disable: [jwt, nope-1]\n" /* 11 */
                                "  enable: [jwt]\n"          /* 12 */
                                "  actions: {pii: maybe}\n"  /* 13 */
                                "  rule_actions:\n"          /* 14 */
                                "    nope-2: alert\n"        /* 15 */
                                "    jwt: never\n";          /* 16 */
    static const char *const want[] = {
        "t.yaml:11: inspect.disable: unknown rule id 'nope-1'",
        "t.yaml:12: rule 'jwt' is both in inspect.enable and inspect.disable",
        "t.yaml:13: inspect.actions.pii must be 'block', 'redact' or 'alert', not 'maybe'",
        "t.yaml:15: inspect.rule_actions: unknown rule id 'nope-2'",
        "t.yaml:16: inspect.rule_actions.jwt must be 'block', 'redact' or 'alert', not 'never'",
    };
    config_errors_t errs = {0};
    config_t *c = load(yaml, &errs);
    if (errs.n != sizeof want / sizeof want[0]) dump(&errs);
    assert_null(c);
    assert_int_equal(errs.n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < errs.n; i++)
        assert_string_equal(errs.msgs[i], want[i]);
    config_errors_free(&errs);

    /* both lists on one line: said once */
    assert_null(load(V WS POL "inspect: {enable: [jwt], disable: [jwt]}\n", &errs));
    if (errs.n != 1) dump(&errs);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.msgs[0],
                        "t.yaml:10: rule 'jwt' is both in inspect.enable and inspect.disable");
    config_errors_free(&errs);
}

/* ---- gateway ---- */

#define GW_WS                                                                                      \
    "workspaces:\n"                                                                                \
    "  - id: a\n    group: g\n    sources: [10.0.0.0/24]\n"                                        \
    "  - id: b\n    group: g\n    team: platform\n    region: eu\n    sources: [10.1.0.0/24]\n"

/* A file under a fresh temporary directory; its path in `path`. */
static void write_tmp(char *path, size_t len, const char *dir, const char *name, const char *text,
                      mode_t mode)
{
    snprintf(path, len, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_gateway_full(void **state)
{
    (void)state;
    char dir[] = "/tmp/cdeguard-test-config-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cert[256], key[256], ca[256], bundle[256], keyfile[256], yaml[4096];
    write_tmp(cert, sizeof cert, dir, "gw.crt", "not parsed at load\n", 0644);
    write_tmp(key, sizeof key, dir, "gw.key", "not parsed at load\n", 0600);
    write_tmp(ca, sizeof ca, dir, "ca.crt", "x\n", 0644);
    write_tmp(bundle, sizeof bundle, dir, "bundle.crt", "x\n", 0644);
    write_tmp(keyfile, sizeof keyfile, dir, "anthropic", "sk-ant-from-file\n", 0600);
    assert_int_equal(setenv("CDEGUARD_TEST_OPENAI_KEY", "sk-test-123", 1), 0);
    snprintf(yaml, sizeof yaml,
             V "listeners:\n  gateway: \"[::1]:8443\"\n  ext_authz: 127.0.0.1:9191\n" GW_WS POL
               "gateway:\n"
               "  tls:\n    cert: %s\n    key: %s\n    min_version: \"1.2\"\n    client_ca: %s\n"
               "  max_body: 2MiB\n"
               "  upstream:\n    ca_file: %s\n    connect_timeout: 3s\n"
               "    first_byte_timeout: 1m\n    idle_timeout: 500ms\n    pool_size: 0\n"
               "  content:\n    block_secrets: false\n    pii: block\n"
               "    restricted_files: allow\n    max_prompt_tokens: 0\n    log_prompts: full\n"
               "  providers:\n"
               "    - name: openai\n      key: env:CDEGUARD_TEST_OPENAI_KEY\n      endpoints:\n"
               "        - url: https://api.openai.com\n"
               "        - url: https://eu.api.openai.com/\n          region: eu\n"
               "    - name: claude-eu\n      type: anthropic\n      key: file:%s\n"
               "      endpoints:\n        - {url: \"https://[2001:db8::1]:8443/v1/base/\", region: "
               "eu-west-1}\n"
               "    - name: local_llm\n      type: openai\n"
               "      endpoints: [{url: \"http://127.0.0.1:11434/v1\"}]\n"
               "  groups:\n"
               "    - name: g\n      providers: [openai, claude-eu, openai]\n"
               "      models: [\"gpt-4o*\", \"claude-?-*\"]\n      region: eu\n"
               "    - name: h\n",
             cert, key, ca, bundle, keyfile);
    config_t *c = load_ok(yaml);
    const config_gateway_t *g = &c->gateway;
    assert_true(g->enabled);
    assert_true(g->listen.enabled);
    assert_string_equal(g->listen.host, "::1");
    assert_int_equal(g->listen.port, 8443);
    assert_true(g->ext_authz.enabled);
    assert_int_equal(g->ext_authz.port, 9191);
    assert_string_equal(g->tls_cert, cert);
    assert_string_equal(g->tls_key, key);
    assert_string_equal(g->tls_client_ca, ca);
    assert_int_equal(g->tls_min_version, 0x0303);
    assert_int_equal(g->max_body_bytes, 2 << 20);
    assert_string_equal(g->ca_file, bundle);
    assert_int_equal(g->connect_timeout_ms, 3000);
    assert_int_equal(g->first_byte_timeout_ms, 60000);
    assert_int_equal(g->idle_timeout_ms, 500);
    assert_int_equal(g->pool_size, 0);
    assert_false(g->block_secrets);
    assert_int_equal(g->pii, GW_PII_BLOCK);
    assert_false(g->block_restricted_files);
    assert_int_equal(g->max_prompt_tokens, 0);
    assert_int_equal(g->log_prompts, GW_LOG_FULL);

    assert_int_equal(g->nproviders, 3);
    const config_gw_provider_t *p = &g->providers[0];
    assert_string_equal(p->name, "openai");
    assert_int_equal(p->vendor, LLM_VENDOR_OPENAI);
    assert_string_equal(p->key_ref, "env:CDEGUARD_TEST_OPENAI_KEY");
    assert_int_equal(p->key_len, 11);
    assert_memory_equal(p->key, "sk-test-123", 11);
    assert_int_equal(p->nendpoints, 2);
    assert_string_equal(p->endpoints[0].url, "https://api.openai.com");
    assert_string_equal(p->endpoints[0].host, "api.openai.com");
    assert_int_equal(p->endpoints[0].port, 443);
    assert_true(p->endpoints[0].tls);
    assert_string_equal(p->endpoints[0].base_path, "");
    assert_string_equal(p->endpoints[0].region, "");
    assert_string_equal(p->endpoints[1].url, "https://eu.api.openai.com/");
    assert_string_equal(p->endpoints[1].base_path, "");
    assert_string_equal(p->endpoints[1].region, "eu");
    assert_int_equal(p->endpoints[1].line, 42);
    p = &g->providers[1];
    assert_string_equal(p->name, "claude-eu");
    assert_int_equal(p->vendor, LLM_VENDOR_ANTHROPIC);
    assert_int_equal(p->key_len, 16);
    assert_string_equal(p->key, "sk-ant-from-file");
    assert_int_equal(p->nendpoints, 1);
    assert_string_equal(p->endpoints[0].host, "2001:db8::1");
    assert_int_equal(p->endpoints[0].port, 8443);
    assert_string_equal(p->endpoints[0].base_path, "/v1/base");
    assert_string_equal(p->endpoints[0].region, "eu-west-1");
    p = &g->providers[2];
    assert_int_equal(p->vendor, LLM_VENDOR_OPENAI);
    assert_null(p->key);
    assert_null(p->key_ref);
    assert_false(p->endpoints[0].tls);
    assert_string_equal(p->endpoints[0].host, "127.0.0.1");
    assert_int_equal(p->endpoints[0].port, 11434);
    assert_string_equal(p->endpoints[0].base_path, "/v1");

    assert_int_equal(g->ngroups, 2);
    const config_gw_group_t *gr = &g->groups[0];
    assert_string_equal(gr->name, "g");
    assert_int_equal(gr->nproviders, 2); /* the repeated name is kept once */
    assert_string_equal(gr->providers[0], "openai");
    assert_string_equal(gr->providers[1], "claude-eu");
    assert_int_equal(gr->nmodels, 2);
    assert_string_equal(gr->models[1], "claude-?-*");
    assert_string_equal(gr->region, "eu");
    gr = &g->groups[1];
    assert_string_equal(gr->name, "h");
    assert_null(gr->providers);
    assert_int_equal(gr->nproviders, 0);
    assert_null(gr->models);
    assert_string_equal(gr->region, "");

    assert_string_equal(c->workspaces[0].team, "g");
    assert_string_equal(c->workspaces[0].region, "");
    assert_string_equal(c->workspaces[1].team, "platform");
    assert_string_equal(c->workspaces[1].region, "eu");
    /* the gateway needs an engine even without an inspect section */
    assert_non_null(c->inspect.engine);

    /* lookups */
    assert_ptr_equal(config_gw_provider(c, "claude-eu", 9), &g->providers[1]);
    assert_ptr_equal(config_gw_provider(c, "openai/v1", 6), &g->providers[0]);
    assert_null(config_gw_provider(c, "claude", 6));
    assert_null(config_gw_provider(c, "anthropic", 9));
    assert_ptr_equal(config_gw_group(c, "h"), &g->groups[1]);
    assert_null(config_gw_group(c, "nobody"));
    assert_null(config_gw_group(c, NULL));
    assert_ptr_equal(config_workspace_by_id(c, "bxyz", 1), &c->workspaces[1]);
    assert_null(config_workspace_by_id(c, "ab", 2));
    assert_null(config_workspace_by_id(NULL, "a", 1));
    config_unref(c);

    unsetenv("CDEGUARD_TEST_OPENAI_KEY");
    unlink(cert);
    unlink(key);
    unlink(ca);
    unlink(bundle);
    unlink(keyfile);
    rmdir(dir);
}

static void test_gateway_defaults(void **state)
{
    (void)state;
    /* no gateway section: off, nothing compiled */
    config_t *c = load_ok(V WS POL);
    assert_false(c->gateway.enabled);
    assert_false(c->gateway.listen.enabled);
    assert_false(c->gateway.ext_authz.enabled);
    assert_int_equal(c->gateway.nproviders, 0);
    assert_null(c->inspect.engine);
    assert_string_equal(c->workspaces[0].team, "g");
    config_unref(c);

    c = load_ok(V WS POL "gateway:\n");
    const config_gateway_t *g = &c->gateway;
    assert_true(g->enabled);
    assert_true(g->listen.enabled);
    assert_string_equal(g->listen.host, "127.0.0.1");
    assert_int_equal(g->listen.port, 8080);
    assert_false(g->ext_authz.enabled);
    assert_string_equal(g->ext_authz.host, "127.0.0.1");
    assert_int_equal(g->ext_authz.port, 8081);
    assert_null(g->tls_cert);
    assert_null(g->tls_key);
    assert_null(g->tls_client_ca);
    assert_int_equal(g->tls_min_version, 0x0304);
    assert_int_equal(g->max_body_bytes, 10485760);
    assert_null(g->ca_file);
    assert_int_equal(g->connect_timeout_ms, 10000);
    assert_int_equal(g->first_byte_timeout_ms, 120000);
    assert_int_equal(g->idle_timeout_ms, 300000);
    assert_int_equal(g->pool_size, 16);
    assert_true(g->block_secrets);
    assert_int_equal(g->pii, GW_PII_REDACT);
    assert_true(g->block_restricted_files);
    assert_int_equal(g->max_prompt_tokens, 128000);
    assert_int_equal(g->log_prompts, GW_LOG_METADATA);
    assert_int_equal(g->ngroups, 0);
    static const struct {
        const char *name, *host;
        int vendor;
    } defs[] = {
        {"openai", "api.openai.com", LLM_VENDOR_OPENAI},
        {"anthropic", "api.anthropic.com", LLM_VENDOR_ANTHROPIC},
        {"gemini", "generativelanguage.googleapis.com", LLM_VENDOR_GEMINI},
        {"mistral", "api.mistral.ai", LLM_VENDOR_MISTRAL},
        {"groq", "api.groq.com", LLM_VENDOR_GROQ},
    };
    assert_int_equal(g->nproviders, 5);
    for (size_t i = 0; i < 5; i++) {
        const config_gw_provider_t *p = &g->providers[i];
        char url[128];
        snprintf(url, sizeof url, "https://%s", defs[i].host);
        assert_string_equal(p->name, defs[i].name);
        assert_int_equal(p->vendor, defs[i].vendor);
        assert_null(p->key);
        assert_null(p->key_ref);
        assert_int_equal(p->nendpoints, 1);
        assert_string_equal(p->endpoints[0].url, url);
        assert_string_equal(p->endpoints[0].host, defs[i].host);
        assert_int_equal(p->endpoints[0].port, 443);
        assert_true(p->endpoints[0].tls);
        assert_string_equal(p->endpoints[0].base_path, "");
        assert_string_equal(p->endpoints[0].region, "");
    }
    assert_null(config_gw_provider(c, "azure", 5));
    assert_non_null(c->inspect.engine);
    config_unref(c);

    /* listeners.gateway alone enables it with the defaults */
    c = load_ok(V "listeners:\n  gateway: 127.0.0.1:18080\n" WS POL);
    assert_true(c->gateway.enabled);
    assert_true(c->gateway.listen.enabled);
    assert_int_equal(c->gateway.listen.port, 18080);
    assert_int_equal(c->gateway.nproviders, 5);
    assert_non_null(c->inspect.engine);
    config_unref(c);

    /* "off": no gateway listener (ext_authz only) */
    c = load_ok(V "listeners:\n  gateway: 'off'\n  ext_authz: 127.0.0.1:9000\n" WS POL
                  "gateway:\n  groups: [{name: g}]\n");
    assert_true(c->gateway.enabled);
    assert_false(c->gateway.listen.enabled);
    assert_true(c->gateway.ext_authz.enabled);
    config_unref(c);
    c = load_ok(V "listeners:\n  gateway: 'off'\n" WS POL);
    assert_false(c->gateway.enabled);
    assert_false(c->gateway.listen.enabled);
    assert_int_equal(c->gateway.nproviders, 0);
    assert_null(c->inspect.engine);
    config_unref(c);

    /* an inspect section's engine is the gateway's */
    c = load_ok(V WS POL "inspect:\n  disable: [jwt]\ngateway:\n");
    assert_non_null(c->inspect.engine);
    config_unref(c);
}

static void test_gateway_enums(void **state)
{
    (void)state;
    /* few loads: each compiles the inspection engine */
    config_t *c = load_ok(V WS POL "gateway:\n  tls: {min_version: 1.3}\n  content:\n"
                                   "    pii: allow\n    restricted_files: block\n"
                                   "    log_prompts: metadata_only\n    block_secrets: no\n"
                                   "    max_prompt_tokens: 100000000\n");
    assert_int_equal(c->gateway.tls_min_version, 0x0304);
    assert_null(c->gateway.tls_cert);
    assert_int_equal(c->gateway.pii, GW_PII_ALLOW);
    assert_true(c->gateway.block_restricted_files);
    assert_int_equal(c->gateway.log_prompts, GW_LOG_METADATA);
    assert_false(c->gateway.block_secrets);
    assert_int_equal(c->gateway.max_prompt_tokens, 100000000);
    config_unref(c);
    c = load_ok(V WS POL "gateway:\n  content: {pii: redact, block_secrets: true}\n"
                         "  max_body: 1GiB\n  upstream: {pool_size: 1024}\n");
    assert_int_equal(c->gateway.pii, GW_PII_REDACT);
    assert_true(c->gateway.block_secrets);
    assert_int_equal(c->gateway.max_body_bytes, 1u << 30);
    assert_int_equal(c->gateway.pool_size, 1024);
    config_unref(c);
    /* the others (block, allow, full, 1.2) are in test_gateway_full */

    check_exact(V WS POL "gateway:\n  content:\n    pii: mask\n",
                "t.yaml:12: gateway.content.pii must be 'redact', 'block' or 'allow', not 'mask'");
    check_exact(V WS POL "gateway:\n  content:\n    restricted_files: redact\n",
                "t.yaml:12: gateway.content.restricted_files must be 'block' or 'allow', not "
                "'redact'");
    check_exact(V WS POL "gateway:\n  content:\n    log_prompts: all\n",
                "t.yaml:12: gateway.content.log_prompts must be 'metadata_only' or 'full', not "
                "'all'");
    check_exact(V WS POL "gateway:\n  content:\n    block_secrets: maybe\n",
                "t.yaml:12: gateway.content.block_secrets must be true or false, not 'maybe'");
    check_exact(V WS POL "gateway:\n  content:\n    max_prompt_tokens: 100000001\n",
                "t.yaml:12: gateway.content.max_prompt_tokens must be an integer from 0 to "
                "100000000, not '100000001'");
    check_exact(V WS POL "gateway:\n  tls:\n    min_version: \"1.1\"\n",
                "t.yaml:12: gateway.tls.min_version must be '1.2' or '1.3', not '1.1'");
    check_exact(V WS POL "gateway:\n  upstream:\n    pool_size: 1025\n",
                "t.yaml:12: gateway.upstream.pool_size must be an integer from 0 to 1024, not "
                "'1025'");
    check_exact(V WS POL "gateway:\n  upstream:\n    first_byte_timeout: 0s\n",
                "t.yaml:12: gateway.upstream.first_byte_timeout must be greater than 0");
    check_exact(V WS POL "gateway:\n  upstream:\n    idle_timeout: soon\n",
                "t.yaml:12: gateway.upstream.idle_timeout: bad duration 'soon' (use e.g. 500ms, "
                "10s, 2m, 1h)");
    check_exact(V WS POL "gateway:\n  max_body: 512\n",
                "t.yaml:11: gateway.max_body must be between 1KiB and 1GiB, not '512'");
    check_exact(V WS POL "gateway:\n  max_body: 2GiB\n",
                "t.yaml:11: gateway.max_body must be between 1KiB and 1GiB, not '2GiB'");
    check_exact(V WS POL "gateway:\n  max_body: big\n",
                "t.yaml:11: gateway.max_body: bad size 'big' (use e.g. 10MiB, 512KiB, 1GiB)");
}

/* One provider with one endpoint `url`; line 14 is the url. */
#define GW_URL(url)                                                                                \
    V WS POL "gateway:\n  providers:\n    - name: openai\n      endpoints:\n        - url: " url   \
             "\n"

static void test_gateway_urls(void **state)
{
    (void)state;
    static const struct {
        const char *url, *host, *base;
        int port;
        bool tls;
    } good[] = {
        {"https://api.openai.com", "api.openai.com", "", 443, true},
        {"https://api.openai.com/", "api.openai.com", "", 443, true},
        {"HTTPS://API.OpenAI.com:8443/v1//", "api.openai.com", "/v1", 8443, true},
        {"https://example.com/a/b", "example.com", "/a/b", 443, true},
        {"https://10.1.2.3:1/x/", "10.1.2.3", "/x", 1, true},
        {"'https://[::1]'", "::1", "", 443, true},
        {"'https://[2001:db8::a]:65535/p'", "2001:db8::a", "/p", 65535, true},
        {"http://127.0.0.1", "127.0.0.1", "", 80, false},
        {"http://127.9.8.7:8000/v1", "127.9.8.7", "/v1", 8000, false},
        {"'http://[::1]:11434'", "::1", "", 11434, false},
        {"http://localhost:11434/v1/", "localhost", "/v1", 11434, false},
        {"http://LocalHost", "localhost", "", 80, false},
    };
    /* one load (each compiles the inspection engine): one endpoint per case */
    size_t ngood = sizeof good / sizeof good[0];
    char yaml[4096];
    int o = snprintf(yaml, sizeof yaml,
                     V WS POL "gateway:\n  providers:\n    - name: openai\n"
                              "      endpoints:\n");
    for (size_t i = 0; i < ngood; i++)
        o += snprintf(yaml + o, sizeof yaml - (size_t)o, "        - url: %s\n", good[i].url);
    assert_true(ngood <= CONFIG_GW_MAX_ENDPOINTS && (size_t)o < sizeof yaml);
    config_t *c = load_ok(yaml);
    assert_int_equal(c->gateway.providers[0].nendpoints, ngood);
    for (size_t i = 0; i < ngood; i++) {
        const config_gw_endpoint_t *e = &c->gateway.providers[0].endpoints[i];
        assert_string_equal(e->host, good[i].host);
        assert_string_equal(e->base_path, good[i].base);
        assert_int_equal(e->port, good[i].port);
        assert_int_equal(e->tls, good[i].tls);
        assert_int_equal(e->line, 14 + (int)i);
    }
    config_unref(c);
    static const char pre[] = "t.yaml:14: url of endpoint #1 of provider 'openai': ";
    static const struct {
        const char *url, *msg;
    } bad[] = {
        {"http://api.openai.com",
         "'http://api.openai.com': http:// is only allowed for a loopback host (127.0.0.0/8, ::1, "
         "localhost); use https://"},
        {"http://10.0.0.1:8080",
         "'http://10.0.0.1:8080': http:// is only allowed for a loopback host (127.0.0.0/8, ::1, "
         "localhost); use https://"},
        {"'http://[::2]'", "'http://[::2]': http:// is only allowed for a loopback host "
                           "(127.0.0.0/8, ::1, localhost); use https://"},
        {"http://localhost.evil.com", "'http://localhost.evil.com': http:// is only allowed for "
                                      "a loopback host (127.0.0.0/8, ::1, localhost); use "
                                      "https://"},
        {"ftp://x.com",
         "'ftp://x.com' is not an https:// URL (write https://HOST[:PORT][/BASE/PATH])"},
        {"api.openai.com",
         "'api.openai.com' is not an https:// URL (write https://HOST[:PORT][/BASE/PATH])"},
        {"https://x.com/v1?key=1", "'https://x.com/v1?key=1' has a query or fragment: write only "
                                   "https://HOST[:PORT][/BASE/PATH]"},
        {"'https://x.com/#f'", "'https://x.com/#f' has a query or fragment: write only "
                               "https://HOST[:PORT][/BASE/PATH]"},
        {"https://user:pw@x.com", "'https://user:pw@x.com' has user information (USER@): the "
                                  "provider key is given with 'key', never in the URL"},
        {"https://", "'https://' has no host"},
        {"https://:443/v1", "'https://:443/v1' has no host"},
        {"https://x.com:0", "'https://x.com:0' has a bad port (must be 1..65535)"},
        {"https://x.com:65536", "'https://x.com:65536' has a bad port (must be 1..65535)"},
        {"'https://x.com:'", "'https://x.com:' has a bad port (must be 1..65535)"},
        {"https://x.com:08", "'https://x.com:08' has a bad port (must be 1..65535)"},
        {"'https://::1/v1'", "'https://::1/v1': IPv6 addresses must be in brackets, e.g. "
                             "https://[::1]"},
        {"'https://[::1'", "'https://[::1': an IPv6 address is written [ADDRESS] or "
                           "[ADDRESS]:PORT"},
        {"'https://[::1]x'", "'https://[::1]x': an IPv6 address is written [ADDRESS] or "
                             "[ADDRESS]:PORT"},
        {"'https://[127.0.0.1]'", "'[127.0.0.1]' is not an IPv6 address"},
        {"https://127.1", "'127.1' is not a canonical IPv4 address (write four decimal numbers, "
                          "e.g. 127.0.0.1)"},
        {"https://1.2.3.4.5", "'1.2.3.4.5' is not a valid host name"},
        {"https://a_b.com", "'a_b.com' is not a valid host name"},
        {"https://-a.com", "'-a.com' is not a valid host name"},
        {"https://x.com.", "'x.com.' is not a valid host name"},
        {"'https://x.com/a b'", "'https://x.com/a b' has a space, control or non-ASCII "
                                "character (percent-encode it)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[512];
        snprintf(yaml, sizeof yaml, GW_URL("%s"), bad[i].url);
        snprintf(want, sizeof want, "%s%s", pre, bad[i].msg);
        check_exact(yaml, want);
    }
}

static void test_gateway_keys(void **state)
{
    (void)state;
    unsetenv("CDEGUARD_TEST_UNSET_KEY");
    check_exact(V WS POL "gateway:\n  providers:\n    - name: openai\n"
                         "      key: env:CDEGUARD_TEST_UNSET_KEY\n"
                         "      endpoints: [{url: https://api.openai.com}]\n",
                "t.yaml:13: key of provider 'openai': env:CDEGUARD_TEST_UNSET_KEY: not set");
    assert_int_equal(setenv("CDEGUARD_TEST_EMPTY_KEY", "", 1), 0);
    check_exact(V WS POL "gateway:\n  providers:\n    - name: openai\n"
                         "      key: env:CDEGUARD_TEST_EMPTY_KEY\n"
                         "      endpoints: [{url: https://api.openai.com}]\n",
                "t.yaml:13: key of provider 'openai': env:CDEGUARD_TEST_EMPTY_KEY: the key is "
                "empty");
    unsetenv("CDEGUARD_TEST_EMPTY_KEY");
    check_exact(V WS POL "gateway:\n  providers:\n    - name: openai\n"
                         "      key: file:/nonexistent/cdeguard/key\n"
                         "      endpoints: [{url: https://api.openai.com}]\n",
                "t.yaml:13: key of provider 'openai': file:/nonexistent/cdeguard/key: No such "
                "file or directory");
    /* a key written as its value: refused, and never echoed */
    const char *yaml = V WS POL "gateway:\n  providers:\n    - name: openai\n"
                                "      key: sk-proj-SECRETVALUE123\n"
                                "      endpoints: [{url: https://api.openai.com}]\n";
    check_exact(yaml, "t.yaml:13: key of provider 'openai': write the key as a reference, "
                      "env:NAME or file:PATH, never the key itself");
    config_errors_t errs = {0};
    assert_null(load(yaml, &errs));
    for (size_t i = 0; i < errs.n; i++)
        assert_null(strstr(errs.msgs[i], "SECRETVALUE"));
    config_errors_free(&errs);
    /* the loaded key is not part of any message either */
    assert_int_equal(setenv("CDEGUARD_TEST_KEY2", "sk-SECRETVALUE", 1), 0);
    yaml = V WS POL "gateway:\n  providers:\n    - name: openai\n"
                    "      key: env:CDEGUARD_TEST_KEY2\n      endpoints: []\n";
    check_exact(yaml, "t.yaml:14: endpoints of provider 'openai' must list 1 to 16 endpoints, "
                      "not 0");
    errs = (config_errors_t){0};
    assert_null(load(yaml, &errs));
    for (size_t i = 0; i < errs.n; i++)
        assert_null(strstr(errs.msgs[i], "SECRETVALUE"));
    config_errors_free(&errs);
    unsetenv("CDEGUARD_TEST_KEY2");
}

static void test_gateway_errors(void **state)
{
    (void)state;
#define PROV(name) "    - name: " name "\n      endpoints: [{url: https://api.openai.com}]\n"
    check_exact(V WS POL "gateway:\n  providers:\n" PROV("openai") PROV("openai"),
                "t.yaml:14: duplicate gateway provider name 'openai' (first defined at line 12)");
    check_exact(V WS POL "gateway:\n  providers:\n" PROV(
                    "openai") "  groups:\n    - name: g\n      providers: [openai, anthropic]\n",
                "t.yaml:16: providers of gateway group 'g': unknown provider 'anthropic'");
    /* against the default providers: azure is not among them */
    check_exact(V WS POL "gateway:\n  groups:\n    - name: g\n      providers: [azure]\n",
                "t.yaml:13: providers of gateway group 'g': unknown provider 'azure'");
    check_exact(V WS POL "gateway:\n  groups:\n    - name: g\n    - name: h\n    - name: g\n",
                "t.yaml:14: duplicate gateway group 'g' (first defined at line 12)");
    check_exact(V WS POL "gateway:\n  groups:\n    - name: g\n      providers: []\n",
                "t.yaml:13: providers of gateway group 'g' must name at least one provider "
                "(leave it out to allow every provider)");
    check_exact(V WS POL "gateway:\n  groups:\n    - name: g\n      models: []\n",
                "t.yaml:13: models of gateway group 'g' must name at least one model (leave it "
                "out to allow every model)");
    check_exact(V WS POL "gateway:\n  groups:\n    - name: g\n      models: [\"gpt 4\"]\n",
                "t.yaml:13: models of gateway group 'g': model pattern 'gpt 4' is invalid: use at "
                "most 256 visible ASCII characters ('*' any run, '?' one character)");
    check_exact(V WS POL "gateway:\n  groups:\n    - name: g\n      region: EU\n",
                "t.yaml:13: region of gateway group 'g': region 'EU' is invalid: use 1 to 31 "
                "lowercase letters, digits or '-'");
    check_exact(V WS POL "gateway:\n  groups:\n    - name: g\n      modles: [x]\n",
                "t.yaml:13: unknown key 'modles' in gateway group 'g' (did you mean 'models'?)");
    check_exact(V WS POL "gateway:\n  groups:\n    - providers: [openai]\n",
                "t.yaml:12: gateway group #1: missing required key 'name'");
    check_exact(V WS POL "gateway:\n  providers:\n    - name: corp\n"
                         "      endpoints: [{url: https://llm.corp.example}]\n",
                "t.yaml:12: provider 'corp': missing 'type' (its name is not a provider type; set "
                "type: openai, azure, anthropic, gemini, mistral or groq)");
    check_exact(V WS POL "gateway:\n  providers:\n    - name: corp\n      type: llama\n"
                         "      endpoints: [{url: https://llm.corp.example}]\n",
                "t.yaml:13: type of provider 'corp' must be openai, azure, anthropic, gemini, "
                "mistral or groq, not 'llama'");
    check_exact(V WS POL "gateway:\n  providers:\n" PROV("OpenAI"),
                "t.yaml:12: provider name 'OpenAI' is invalid: use 1 to 63 lowercase letters, "
                "digits, '_' or '-', starting with a letter or digit");
    check_exact(V WS POL "gateway:\n  providers:\n" PROV("-x"),
                "t.yaml:12: provider name '-x' is invalid: use 1 to 63 lowercase letters, "
                "digits, '_' or '-', starting with a letter or digit");
    check_exact(V WS POL "gateway:\n  providers:\n    - name: openai\n",
                "t.yaml:12: provider 'openai': missing required key 'endpoints'");
    check_exact(V WS POL "gateway:\n  providers:\n    - name: openai\n      endpoints:\n"
                         "        - region: eu\n",
                "t.yaml:14: endpoint #1 of provider 'openai': missing required key 'url'");
    check_exact(V WS POL "gateway:\n  providers:\n    - name: openai\n      endpoints:\n"
                         "        - {url: https://a.com, regoin: eu}\n",
                "t.yaml:14: unknown key 'regoin' in endpoint #1 of provider 'openai' (did you "
                "mean 'region'?)");
    check_exact(V WS POL "gateway:\n  providers:\n    - name: openai\n      endpoints:\n"
                         "        - {url: https://a.com, region: eu_west}\n",
                "t.yaml:14: region of endpoint #1 of provider 'openai': region 'eu_west' is "
                "invalid: use 1 to 31 lowercase letters, digits or '-'");
    check_exact(V WS POL "gateway:\n  providers: []\n",
                "t.yaml:11: gateway.providers must list at least one provider (leave it out for "
                "the defaults)");
    check_exact(V WS POL "gateway:\n  provider: []\n",
                "t.yaml:11: unknown key 'provider' in gateway (did you mean 'providers'?)");
    check_exact(V WS POL "gateway:\n  content: {pi: block}\n",
                "t.yaml:11: unknown key 'pi' in gateway.content (did you mean 'pii'?)");
    check_exact(V WS POL "gateway: [x]\n", "t.yaml:10: gateway must be a mapping, not a list");

    /* listeners */
    check_exact(V "listeners:\n  ext_authz: 127.0.0.1:8081\n" WS POL,
                "t.yaml:3: listeners.ext_authz needs the gateway: add a gateway: section");
    check_exact(V "listeners:\n  gateway: 127.0.0.1:3128\n" WS POL "gateway:\n",
                "t.yaml:3: listeners.gateway and listeners.egress both use port 3128");
    check_exact(V "listeners:\n  egress: 127.0.0.1:8080\n" WS POL "gateway:\n",
                "t.yaml:3: listeners.gateway and listeners.egress both use port 8080 "
                "(listeners.gateway is at its default: set it to another port)");
    check_exact(V "listeners:\n  admin: 127.0.0.1:8081\n  ext_authz: \"[::1]:8081\"\n" WS POL
                  "gateway:\n",
                "t.yaml:4: listeners.ext_authz and listeners.admin both use port 8081");
    check_exact(V "listeners:\n  gateway: localhost:80\n" WS POL "gateway:\n",
                "t.yaml:3: listeners.gateway: 'localhost' is not an IP address (host names are "
                "not allowed here; write e.g. 127.0.0.1:3128 or [::1]:3128)");
    /* no gateway: its default port is free */
    config_t *c = load_ok(V "listeners:\n  egress: 127.0.0.1:8080\n" WS POL);
    config_unref(c);

    /* tls */
    check_exact(V WS POL "gateway:\n  tls:\n    cert: /nonexistent/gw.crt\n",
                "t.yaml:12: gateway.tls.cert: cannot read '/nonexistent/gw.crt': No such file or "
                "directory");
    check_exact(V WS POL "gateway:\n  tls:\n    cert: cdeguard.yaml\n",
                "t.yaml:12: gateway.tls: 'cert' and 'key' go together ('key' is missing)");
    check_exact(V WS POL "gateway:\n  tls:\n    key: cdeguard.yaml\n",
                "t.yaml:12: gateway.tls: 'cert' and 'key' go together ('cert' is missing)");
    check_exact(V WS POL "gateway:\n  tls:\n    client_ca: cdeguard.yaml\n",
                "t.yaml:12: gateway.tls.client_ca needs 'cert' and 'key': client certificates "
                "are only asked for over TLS");
    check_exact(V WS POL "gateway:\n  tls:\n    cert: /tmp\n    key: cdeguard.yaml\n",
                "t.yaml:12: gateway.tls.cert: '/tmp' is not a regular file");
    check_exact(V WS POL "gateway:\n  upstream:\n    ca_file: /nonexistent/ca.crt\n",
                "t.yaml:12: gateway.upstream.ca_file: cannot read '/nonexistent/ca.crt': No such "
                "file or directory");

    /* workspaces */
    check_exact(V "workspaces:\n  - id: a\n    group: g\n    team: \"a b\"\n"
                  "    sources: [10.0.0.0/24]\n" POL,
                "t.yaml:5: team 'a b' is invalid: use 1 to 64 letters, digits, '.', '_' or '-'");
    check_exact(V "workspaces:\n  - id: a\n    group: g\n    region: eu.west\n"
                  "    sources: [10.0.0.0/24]\n" POL,
                "t.yaml:5: region of workspace 'a': region 'eu.west' is invalid: use 1 to 31 "
                "lowercase letters, digits or '-'");
    check_exact(V "workspaces:\n  - id: a\n    group: g\n"
                  "    region: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n    sources: [10.0.0.0/24]\n" POL,
                "t.yaml:5: region of workspace 'a': region 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' is "
                "invalid: use 1 to 31 lowercase letters, digits or '-'");
    /* a pin no endpoint serves is not a config error (refused per call) */
    c = load_ok(V "workspaces:\n  - id: a\n    group: g\n    region: mars\n"
                  "    sources: [10.0.0.0/24]\n" POL);
    assert_string_equal(c->workspaces[0].region, "mars");
    config_unref(c);
#undef PROV
}

/* ---- limits ---- */

/* Workspaces for the limits tests, lines 2-10: ws-demo (team platform,
 * project checkout) and ws-b (team = its group g, no project). */
#define LIM_WS                                                                                     \
    "workspaces:\n"                                                                                \
    "  - id: ws-demo\n    group: g\n    team: platform\n    project: checkout\n"                   \
    "    sources: [10.0.0.0/24]\n"                                                                 \
    "  - id: ws-b\n    group: g\n    sources: [10.1.0.0/24]\n"
/* V LIM_WS POL: `limits:` is at line 15, its first key at line 16 */
#define LIM V LIM_WS POL "limits:\n"

#define ADMIN_HASH "b5d56f2eacf505c2639b22468f3a8b1bcaf7d619cadbab47dc6ce515fc4c3612"

static const lim_rule_t *rule_of(const config_lim_entry_t *e, lim_metric_t m, lim_window_t p)
{
    for (size_t i = 0; e && i < e->nrules; i++)
        if (e->rules[i].metric == m && e->rules[i].period == p) return &e->rules[i];
    return NULL;
}

static void check_rule(const config_lim_entry_t *e, lim_metric_t m, lim_window_t p, uint64_t max,
                       uint32_t soft)
{
    const lim_rule_t *r = rule_of(e, m, p);
    if (!r) print_error("no rule %s/%s\n", lim_metric_name(m), lim_window_name(p));
    assert_non_null(r);
    assert_int_equal(r->max, max);
    assert_int_equal(r->soft_pct, soft);
}

static void test_limits_full(void **state)
{
    (void)state;
    assert_int_equal(setenv("CDEGUARD_TEST_REDIS_PW", "redis-SECRET-pw", 1), 0);
    config_t *c = load_ok(
        LIM "  time_zone: Europe/Berlin\n"
            "  soft_threshold: 75%\n"
            "  store:\n    type: redis\n    url: \"redis://[::1]:6380/2\"\n"
            "    password: env:CDEGUARD_TEST_REDIS_PW\n    key_prefix: \"cg:prod-1\"\n"
            "    timeout: 50ms\n    on_error: fail_open\n"
            "  admin_token: sha256:" ADMIN_HASH "\n"
            "  unpriced: free\n"
            "  prices:\n"
            "    - model: \"claude-sonnet-4*\"\n      input: 3.00\n      output: 15\n"
            "      cache_read: 0.30\n      cache_write: \"3.75\"\n"
            "    - {model: \"gpt-4o*\", input: 2.5, output: 10}\n"
            "  workspaces:\n"
            "    \"*\": {requests_per_minute: 120, tokens_per_minute: 200000}\n"
            "    ws-demo: {tokens_per_day: 2000000, cost_per_month: 100, soft_threshold: 90,\n"
            "              cost_per_day: 0.000001, requests_per_day: 5000, tokens_per_month: 7,\n"
            "              requests_per_minute: 3, tokens_per_minute: 4}\n"
            "    ws-b: {}\n"
            "  agents:\n"
            "    \"*\": {tokens_per_day: 500000}\n"
            "    ws-demo/bot-1: {requests_per_day: 1000, soft_threshold: 0}\n"
            "    \"ws-b/team/agent:x\": {tokens_per_minute: 10}\n"
            "  projects: {checkout: {cost_per_month: 500}}\n"
            "  teams: {platform: {cost_per_day: 50.5}, g: {requests_per_minute: 5}}\n"
            "  egress:\n"
            "    \"*\": {requests_per_minute: 600, bytes_per_minute: 100MB}\n"
            "    ws-b: {requests_per_day: 10000, bytes_per_day: 64MiB}\n");
    const config_limits_t *l = &c->limits;
    assert_true(l->enabled);
    assert_string_equal(l->time_zone, "Europe/Berlin");
    assert_non_null(l->tz);
    tz_info_t info;
    tz_get_info(l->tz, &info);
    assert_string_equal(info.name, "Europe/Berlin");
    assert_int_equal(l->soft_pct, 75);
    assert_int_equal(l->store, CONFIG_LIM_STORE_REDIS);
    assert_string_equal(l->redis_url, "redis://[::1]:6380/2");
    assert_string_equal(l->redis_host, "::1");
    assert_int_equal(l->redis_port, 6380);
    assert_int_equal(l->redis_db, 2);
    assert_string_equal(l->redis_password, "redis-SECRET-pw");
    assert_string_equal(l->key_prefix, "cg:prod-1");
    assert_int_equal(l->redis_timeout_ms, 50);
    assert_true(l->fail_open);
    assert_string_equal(l->db_path, "cdeguard-usage.db"); /* sqlite settings keep defaults */
    assert_int_equal(l->flush_interval_ms, 1000);
    assert_true(l->admin_token_set);
    assert_int_equal(l->admin_token_sha256[0], 0xb5);
    assert_int_equal(l->admin_token_sha256[31], 0x12);
    assert_true(l->unpriced_free);

    assert_int_equal(l->nprices, 2);
    assert_string_equal(l->prices[0].pattern, "claude-sonnet-4*");
    assert_int_equal(l->prices[0].in, 3000000);
    assert_int_equal(l->prices[0].out, 15000000);
    assert_int_equal(l->prices[0].cache_read, 300000);
    assert_int_equal(l->prices[0].cache_write, 3750000);
    assert_string_equal(l->prices[1].pattern, "gpt-4o*");
    assert_int_equal(l->prices[1].in, 2500000);
    assert_int_equal(l->prices[1].out, 10000000);
    assert_int_equal(l->prices[1].cache_read, 2500000); /* default: the input price */
    assert_int_equal(l->prices[1].cache_write, 2500000);
    const lim_price_t *p = lim_price_find(l->prices, l->nprices, "claude-sonnet-4-5", 17);
    assert_ptr_equal(p, &l->prices[0]);

    /* workspaces: "*" has only minute rules, so no soft threshold */
    assert_int_equal(l->nentries[CONFIG_LIM_WORKSPACE], 3);
    const config_lim_entry_t *star = config_lim_entry(c, CONFIG_LIM_WORKSPACE, "*");
    assert_non_null(star);
    assert_string_equal(star->name, "*");
    assert_int_equal(star->line, 35);
    assert_int_equal(star->nrules, 2);
    check_rule(star, LIM_REQUESTS, LIM_WIN_MINUTE, 120, 0);
    check_rule(star, LIM_TOKENS, LIM_WIN_MINUTE, 200000, 0);
    const config_lim_entry_t *demo = config_lim_entry(c, CONFIG_LIM_WORKSPACE, "ws-demo");
    assert_non_null(demo);
    assert_string_equal(demo->name, "ws-demo");
    assert_int_equal(demo->line, 36);
    assert_int_equal(demo->nrules, 7); /* every rule key: fits CONFIG_LIM_MAX_RULES */
    check_rule(demo, LIM_REQUESTS, LIM_WIN_MINUTE, 3, 0);
    check_rule(demo, LIM_REQUESTS, LIM_WIN_DAY, 5000, 90);
    check_rule(demo, LIM_TOKENS, LIM_WIN_MINUTE, 4, 0);
    check_rule(demo, LIM_TOKENS, LIM_WIN_DAY, 2000000, 90);
    check_rule(demo, LIM_TOKENS, LIM_WIN_MONTH, 7, 90);
    check_rule(demo, LIM_COST, LIM_WIN_DAY, 1000, 90); /* 0.000001 USD = 1000 nano-USD */
    check_rule(demo, LIM_COST, LIM_WIN_MONTH, 100000000000ull, 90);
    /* an empty entry replaces "*": ws-b has no workspace limits */
    const config_lim_entry_t *wsb = config_lim_entry(c, CONFIG_LIM_WORKSPACE, "ws-b");
    assert_non_null(wsb);
    assert_string_equal(wsb->name, "ws-b");
    assert_int_equal(wsb->nrules, 0);
    assert_ptr_equal(config_lim_entry(c, CONFIG_LIM_WORKSPACE, "nobody"), star);

    /* agents */
    assert_int_equal(l->nentries[CONFIG_LIM_AGENT], 3);
    const config_lim_entry_t *e = config_lim_entry(c, CONFIG_LIM_AGENT, "ws-demo/bot-1");
    assert_non_null(e);
    assert_int_equal(e->nrules, 1);
    check_rule(e, LIM_REQUESTS, LIM_WIN_DAY, 1000, 0); /* soft_threshold: 0 = off */
    e = config_lim_entry(c, CONFIG_LIM_AGENT, "ws-b/team/agent:x");
    assert_non_null(e);
    check_rule(e, LIM_TOKENS, LIM_WIN_MINUTE, 10, 0);
    e = config_lim_entry(c, CONFIG_LIM_AGENT, "ws-demo/bot-2");
    assert_non_null(e);
    assert_string_equal(e->name, "*");
    check_rule(e, LIM_TOKENS, LIM_WIN_DAY, 500000, 75); /* the section default */

    /* projects, teams (ws-b's team is its group) */
    assert_int_equal(l->nentries[CONFIG_LIM_PROJECT], 1);
    e = config_lim_entry(c, CONFIG_LIM_PROJECT, "checkout");
    assert_non_null(e);
    check_rule(e, LIM_COST, LIM_WIN_MONTH, 500000000000ull, 75);
    assert_null(config_lim_entry(c, CONFIG_LIM_PROJECT, "other"));
    assert_int_equal(l->nentries[CONFIG_LIM_TEAM], 2);
    e = config_lim_entry(c, CONFIG_LIM_TEAM, "platform");
    assert_non_null(e);
    check_rule(e, LIM_COST, LIM_WIN_DAY, 50500000000ull, 75);
    e = config_lim_entry(c, CONFIG_LIM_TEAM, "g");
    assert_non_null(e);
    check_rule(e, LIM_REQUESTS, LIM_WIN_MINUTE, 5, 0);
    assert_null(config_lim_entry(c, CONFIG_LIM_TEAM, "nobody"));

    /* egress */
    assert_int_equal(l->nentries[CONFIG_LIM_EGRESS], 2);
    e = config_lim_entry(c, CONFIG_LIM_EGRESS, "ws-demo");
    assert_non_null(e);
    assert_string_equal(e->name, "*");
    assert_int_equal(e->nrules, 2);
    check_rule(e, LIM_REQUESTS, LIM_WIN_MINUTE, 600, 0);
    check_rule(e, LIM_BYTES, LIM_WIN_MINUTE, 100000000, 0);
    e = config_lim_entry(c, CONFIG_LIM_EGRESS, "ws-b");
    assert_non_null(e);
    assert_string_equal(e->name, "ws-b");
    check_rule(e, LIM_REQUESTS, LIM_WIN_DAY, 10000, 75);
    check_rule(e, LIM_BYTES, LIM_WIN_DAY, 64ull << 20, 75);

    /* the workspace's project and team */
    assert_string_equal(c->workspaces[0].project, "checkout");
    assert_string_equal(c->workspaces[0].team, "platform");
    assert_null(c->workspaces[1].project);
    assert_string_equal(c->workspaces[1].team, "g");
    config_unref(c); /* ASan: the password, prices, tz and entries are freed */
    unsetenv("CDEGUARD_TEST_REDIS_PW");
}

static void test_limits_defaults(void **state)
{
    (void)state;
    config_t *c = load_ok(V LIM_WS POL);
    const config_limits_t *l = &c->limits;
    assert_false(l->enabled);
    assert_string_equal(l->time_zone, "UTC");
    assert_null(l->tz);
    assert_int_equal(l->soft_pct, 80);
    assert_int_equal(l->store, CONFIG_LIM_STORE_SQLITE);
    assert_string_equal(l->db_path, "cdeguard-usage.db");
    assert_int_equal(l->flush_interval_ms, 1000);
    assert_null(l->redis_url);
    assert_null(l->redis_host);
    assert_int_equal(l->redis_port, 6379);
    assert_int_equal(l->redis_db, 0);
    assert_null(l->redis_password);
    assert_string_equal(l->key_prefix, "cdeguard");
    assert_int_equal(l->redis_timeout_ms, 250);
    assert_false(l->fail_open);
    assert_false(l->admin_token_set);
    assert_false(l->unpriced_free);
    assert_null(l->prices);
    assert_int_equal(l->nprices, 0);
    for (int s = 0; s < CONFIG_LIM_NSCOPES; s++) {
        assert_null(l->entries[s]);
        assert_int_equal(l->nentries[s], 0);
        assert_null(config_lim_entry(c, (config_lim_scope_t)s, "ws-demo"));
    }
    assert_null(config_lim_entry(NULL, CONFIG_LIM_WORKSPACE, "ws-demo"));
    assert_null(config_lim_entry(c, CONFIG_LIM_NSCOPES, "ws-demo"));
    config_unref(c);

    /* an empty section turns limits on with the defaults; UTC is no tz */
    c = load_ok(LIM "  time_zone: UTC\n");
    assert_true(c->limits.enabled);
    assert_null(c->limits.tz);
    assert_string_equal(c->limits.time_zone, "UTC");
    config_unref(c);
    c = load_ok(LIM);
    assert_true(c->limits.enabled);
    assert_int_equal(c->limits.soft_pct, 80);
    config_unref(c);

    /* sqlite settings; soft_threshold 0 turns soft thresholds off */
    c = load_ok(LIM "  soft_threshold: 0\n"
                    "  store: {type: sqlite, path: /var/lib/cdeguard/usage.db, "
                    "flush_interval: 10ms}\n"
                    "  workspaces: {ws-demo: {tokens_per_day: 10}}\n");
    assert_int_equal(c->limits.store, CONFIG_LIM_STORE_SQLITE);
    assert_string_equal(c->limits.db_path, "/var/lib/cdeguard/usage.db");
    assert_int_equal(c->limits.flush_interval_ms, 10);
    assert_int_equal(c->limits.soft_pct, 0);
    check_rule(config_lim_entry(c, CONFIG_LIM_WORKSPACE, "ws-demo"), LIM_TOKENS, LIM_WIN_DAY, 10,
               0);
    assert_null(config_lim_entry(c, CONFIG_LIM_WORKSPACE, "ws-b")); /* no "*" */
    config_unref(c);
    c = load_ok(LIM "  store: {flush_interval: 60s}\n");
    assert_int_equal(c->limits.flush_interval_ms, 60000);
    config_unref(c);

    assert_string_equal(config_lim_scope_name(CONFIG_LIM_WORKSPACE), "workspace");
    assert_string_equal(config_lim_scope_name(CONFIG_LIM_AGENT), "agent");
    assert_string_equal(config_lim_scope_name(CONFIG_LIM_PROJECT), "project");
    assert_string_equal(config_lim_scope_name(CONFIG_LIM_TEAM), "team");
    assert_string_equal(config_lim_scope_name(CONFIG_LIM_EGRESS), "egress");
    assert_string_equal(config_lim_scope_name(CONFIG_LIM_NSCOPES), "?");
}

static void test_limits_project(void **state)
{
    (void)state;
    config_t *c = load_ok(V "workspaces:\n  - id: a\n    group: g\n    project: shop.v2\n"
                            "    sources: [10.0.0.0/24]\n"
                            "  - id: b\n    group: g\n    project: shop.v2\n"
                            "    sources: [10.1.0.0/24]\n" POL
                            "limits:\n  projects: {shop.v2: {tokens_per_day: 9}}\n");
    assert_string_equal(c->workspaces[0].project, "shop.v2");
    assert_string_equal(c->workspaces[1].project, "shop.v2");
    assert_non_null(config_lim_entry(c, CONFIG_LIM_PROJECT, "shop.v2"));
    config_unref(c);
    c = load_ok(V WS POL);
    assert_null(c->workspaces[0].project);
    config_unref(c);
    check_exact(V "workspaces:\n  - id: a\n    group: g\n    project: \"a b\"\n"
                  "    sources: [10.0.0.0/24]\n" POL,
                "t.yaml:5: project 'a b' is invalid: use 1 to 64 letters, digits, '.', '_' or "
                "'-'");
    check_exact(V "workspaces:\n  - id: a\n    group: g\n    project: [x]\n"
                  "    sources: [10.0.0.0/24]\n" POL,
                "t.yaml:5: project of workspace 'a' must be a string, not a list");
    check_exact(V "workspaces:\n  - id: a\n    group: g\n    projcet: x\n"
                  "    sources: [10.0.0.0/24]\n" POL,
                "t.yaml:5: unknown key 'projcet' in workspace 'a' (did you mean 'project'?)");
}

static void test_limits_redis_urls(void **state)
{
    (void)state;
    static const struct {
        const char *url, *host;
        int port, db;
    } ok[] = {
        {"redis://10.0.0.5:6379/0", "10.0.0.5", 6379, 0},
        {"redis://10.0.0.5", "10.0.0.5", 6379, 0},
        {"redis://Cache.Internal:7000", "cache.internal", 7000, 0},
        {"redis://cache/", "cache", 6379, 0},
        {"redis://cache/15", "cache", 6379, 15},
        {"REDIS://[::1]", "::1", 6379, 0},
        {"redis://[2001:db8::5]:6380/3", "2001:db8::5", 6380, 3},
    };
    char yaml[1024];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(yaml, sizeof yaml, LIM "  store: {type: redis, url: \"%s\"}\n", ok[i].url);
        config_t *c = load_ok(yaml);
        assert_string_equal(c->limits.redis_url, ok[i].url);
        assert_string_equal(c->limits.redis_host, ok[i].host);
        assert_int_equal(c->limits.redis_port, ok[i].port);
        assert_int_equal(c->limits.redis_db, ok[i].db);
        assert_null(c->limits.redis_password);
        config_unref(c);
    }
    static const struct {
        const char *url, *msg;
    } bad[] = {
        {"http://cache:6379", "t.yaml:16: limits.store.url: 'http://cache:6379' is not a redis:// "
                              "URL (write redis://HOST[:PORT][/DB])"},
        {"rediss://cache", "t.yaml:16: limits.store.url: 'rediss://cache' is not a redis:// URL "
                           "(write redis://HOST[:PORT][/DB])"},
        {"redis://", "t.yaml:16: limits.store.url: 'redis://' has no host"},
        {"redis://::1", "t.yaml:16: limits.store.url: 'redis://::1': IPv6 addresses must be in "
                        "brackets, e.g. redis://[::1]"},
        {"redis://[::1", "t.yaml:16: limits.store.url: 'redis://[::1': an IPv6 address is "
                         "written [ADDRESS] or [ADDRESS]:PORT"},
        {"redis://[10.0.0.1]", "t.yaml:16: limits.store.url: '[10.0.0.1]' is not an IPv6 address"},
        {"redis://10.0.0.05", "t.yaml:16: limits.store.url: '10.0.0.05' is not a canonical IPv4 "
                              "address (write four decimal numbers, e.g. 10.0.0.5)"},
        {"redis://bad_host", "t.yaml:16: limits.store.url: 'bad_host' is not a valid host name"},
        {"redis://cache:0", "t.yaml:16: limits.store.url: 'redis://cache:0' has a bad port (must "
                            "be 1..65535)"},
        {"redis://cache:65536", "t.yaml:16: limits.store.url: 'redis://cache:65536' has a bad "
                                "port (must be 1..65535)"},
        {"redis://cache:", "t.yaml:16: limits.store.url: 'redis://cache:' has a bad port (must "
                           "be 1..65535)"},
        {"redis://cache/x", "t.yaml:16: limits.store.url: 'redis://cache/x' has a bad database "
                            "number (write /N, N a decimal number, e.g. /0)"},
        {"redis://cache/01", "t.yaml:16: limits.store.url: 'redis://cache/01' has a bad database "
                             "number (write /N, N a decimal number, e.g. /0)"},
        {"redis://cache/0/1", "t.yaml:16: limits.store.url: 'redis://cache/0/1' has a bad "
                              "database number (write /N, N a decimal number, e.g. /0)"},
        {"redis://cache?db=1", "t.yaml:16: limits.store.url: 'redis://cache?db=1' has a query or "
                               "fragment: write only redis://HOST[:PORT][/DB]"},
        {"redis://ca che", "t.yaml:16: limits.store.url: 'redis://ca che' has a space, control or "
                           "non-ASCII character"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(yaml, sizeof yaml, LIM "  store: {type: redis, url: \"%s\"}\n", bad[i].url);
        check_exact(yaml, bad[i].msg);
    }
    /* a password in the URL: refused, and the URL is not echoed */
    static const char *const userinfo[] = {"redis://:SECRETPW@cache:6379/0",
                                           "redis://default:SECRETPW@[::1]", "http://u:SECRETPW@x"};
    for (size_t i = 0; i < sizeof userinfo / sizeof userinfo[0]; i++) {
        snprintf(yaml, sizeof yaml, LIM "  store: {type: redis, url: \"%s\"}\n", userinfo[i]);
        check_exact(yaml, "t.yaml:16: limits.store.url has user information (USER:PASSWORD@): "
                          "put the password in password: env:NAME (or file:PATH), never in the "
                          "URL");
        config_errors_t errs = {0};
        assert_null(load(yaml, &errs));
        for (size_t j = 0; j < errs.n; j++)
            assert_null(strstr(errs.msgs[j], "SECRETPW"));
        config_errors_free(&errs);
    }
    check_exact(LIM "  store:\n    type: redis\n",
                "t.yaml:17: limits.store: type: redis needs 'url' (redis://HOST[:PORT][/DB])");
}

static void test_limits_errors(void **state)
{
    (void)state;
    /* the section and the store */
    check_exact(LIM "  stroe: {}\n",
                "t.yaml:16: unknown key 'stroe' in limits (did you mean 'store'?)");
    check_exact(V LIM_WS POL "limits: [x]\n", "t.yaml:15: limits must be a mapping, not a list");
    check_exact(LIM "  time_zone: Mars/Olympus_Mons\n",
                "t.yaml:16: limits.time_zone: unknown time zone 'Mars/Olympus_Mons' (zone "
                "Mars/Olympus_Mons: /usr/share/zoneinfo/Mars/Olympus_Mons: no such zone)");
    check_exact(LIM "  time_zone: \"../etc/passwd\"\n",
                "t.yaml:16: limits.time_zone: '../etc/passwd' is not a time zone name (write an "
                "IANA name such as Europe/Berlin, or UTC)");
    check_exact(LIM "  time_zone: \"\"\n", "t.yaml:16: limits.time_zone must not be empty");
    check_exact(LIM "  soft_threshold: 100\n",
                "t.yaml:16: limits.soft_threshold must be a percentage from 0 to 99 (e.g. 80 or "
                "80%; 0 = off), not '100'");
    check_exact(LIM "  soft_threshold: 80.5%\n",
                "t.yaml:16: limits.soft_threshold must be a percentage from 0 to 99 (e.g. 80 or "
                "80%; 0 = off), not '80.5%'");
    check_exact(LIM "  soft_threshold: \"%\"\n",
                "t.yaml:16: limits.soft_threshold must be a percentage from 0 to 99 (e.g. 80 or "
                "80%; 0 = off), not '%'");
    check_exact(LIM "  soft_threshold: -1\n",
                "t.yaml:16: limits.soft_threshold must be a percentage from 0 to 99 (e.g. 80 or "
                "80%; 0 = off), not '-1'");
    check_exact(LIM "  store: {type: memcached}\n",
                "t.yaml:16: limits.store.type must be 'sqlite' or 'redis', not 'memcached'");
    check_exact(LIM "  store:\n    url: redis://cache\n",
                "t.yaml:17: limits.store.url is only for type: redis (the store is sqlite: set "
                "type: redis to use Redis)");
    check_exact(LIM "  store:\n    type: sqlite\n    timeout: 1s\n",
                "t.yaml:18: limits.store.timeout is only for type: redis (the store is sqlite: "
                "set type: redis to use Redis)");
    check_exact(LIM "  store:\n    type: sqlite\n    on_error: fail_open\n",
                "t.yaml:18: limits.store.on_error is only for type: redis (the store is sqlite: "
                "set type: redis to use Redis)");
    check_exact(LIM "  store:\n    password: env:X\n    key_prefix: x\n",
                "t.yaml:18: limits.store.key_prefix is only for type: redis (the store is sqlite: "
                "set type: redis to use Redis)");
    check_exact(LIM "  store:\n    type: redis\n    url: redis://cache\n    path: /tmp/u.db\n",
                "t.yaml:19: limits.store.path is only for type: sqlite");
    check_exact(LIM "  store:\n    type: redis\n    url: redis://cache\n    flush_interval: 1s\n",
                "t.yaml:19: limits.store.flush_interval is only for type: sqlite");
    check_exact(LIM "  store: {flush_interval: 5ms}\n",
                "t.yaml:16: limits.store.flush_interval must be between 10ms and 60s, not '5ms'");
    check_exact(LIM "  store: {flush_interval: 2m}\n",
                "t.yaml:16: limits.store.flush_interval must be between 10ms and 60s, not '2m'");
    check_exact(LIM "  store: {flush_interval: soon}\n",
                "t.yaml:16: limits.store.flush_interval: bad duration 'soon' (use e.g. 500ms, 10s, "
                "2m, 1h)");
    check_exact(LIM "  store: {type: redis, url: redis://cache, timeout: 11s}\n",
                "t.yaml:16: limits.store.timeout must be between 1ms and 10s, not '11s'");
    check_exact(LIM "  store: {type: redis, url: redis://cache, timeout: 0}\n",
                "t.yaml:16: limits.store.timeout must be between 1ms and 10s, not '0'");
    check_exact(LIM "  store: {type: redis, url: redis://cache, on_error: ignore}\n",
                "t.yaml:16: limits.store.on_error must be 'fail_closed' or 'fail_open', not "
                "'ignore'");
    check_exact(LIM "  store: {type: redis, url: redis://cache, key_prefix: \"a b\"}\n",
                "t.yaml:16: limits.store.key_prefix 'a b' is invalid: use 1 to 64 letters, "
                "digits, '_', '.', ':' or '-'");
    check_exact(LIM "  store: {type: redis, url: redis://cache, key_prefix: "
                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}\n",
                "t.yaml:16: limits.store.key_prefix "
                "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' is invalid: "
                "use 1 to 64 letters, digits, '_', '.', ':' or '-'");
    unsetenv("CDEGUARD_TEST_UNSET_PW");
    check_exact(LIM "  store:\n    type: redis\n    url: redis://cache\n"
                    "    password: env:CDEGUARD_TEST_UNSET_PW\n",
                "t.yaml:19: limits.store.password: env:CDEGUARD_TEST_UNSET_PW: not set");
    const char *yaml = LIM "  store:\n    type: redis\n    url: redis://cache\n"
                           "    password: hunter2-SECRETPW\n";
    check_exact(yaml, "t.yaml:19: limits.store.password: write the password as a reference, "
                      "env:NAME or file:PATH, never the password itself");
    config_errors_t errs = {0};
    assert_null(load(yaml, &errs));
    for (size_t i = 0; i < errs.n; i++)
        assert_null(strstr(errs.msgs[i], "SECRETPW"));
    config_errors_free(&errs);
    yaml = LIM "  admin_token: my-SECRET-admin-token\n";
    check_exact(yaml, "t.yaml:16: limits.admin_token must be written as 'sha256:<64 hex digits>': "
                      "store the SHA-256 hash of the token, never the token itself (make one "
                      "with `cdeguard hash-token`)");
    errs = (config_errors_t){0};
    assert_null(load(yaml, &errs));
    for (size_t i = 0; i < errs.n; i++)
        assert_null(strstr(errs.msgs[i], "SECRET"));
    config_errors_free(&errs);
    check_exact(LIM "  unpriced: allow\n",
                "t.yaml:16: limits.unpriced must be 'refuse' or 'free', not 'allow'");

    /* prices */
    check_exact(LIM "  prices:\n    - {input: 1, output: 2}\n",
                "t.yaml:17: limits.prices #1: missing required key 'model'");
    check_exact(LIM "  prices:\n    - {model: m, input: 1}\n",
                "t.yaml:17: limits.prices 'm': missing required key 'output'");
    check_exact(LIM "  prices:\n    - {model: m, input: 1, output: 2, cached: 1}\n",
                "t.yaml:17: unknown key 'cached' in limits.prices 'm'");
    check_exact(LIM "  prices:\n    - {model: m, input: abc, output: 2}\n",
                "t.yaml:17: input of limits.prices 'm': price \"abc\": expected USD per million "
                "tokens, such as 2.50 (USD per million tokens, at most 6 decimals)");
    check_exact(LIM "  prices:\n    - {model: m, input: 1, output: 0.1234567}\n",
                "t.yaml:17: output of limits.prices 'm': price \"0.1234567\": more than 6 decimal "
                "places (USD per million tokens, at most 6 decimals)");
    check_exact(LIM "  prices:\n    - {model: m, input: 1, output: 2, cache_read: -1}\n",
                "t.yaml:17: cache_read of limits.prices 'm': price \"-1\": negative (USD per "
                "million tokens, at most 6 decimals)");
    check_exact(LIM "  prices:\n    - {model: m, input: 1, output: 2, cache_write: 1e3}\n",
                "t.yaml:17: cache_write of limits.prices 'm': price \"1e3\": exponents are not "
                "accepted (USD per million tokens, at most 6 decimals)");
    check_exact(LIM "  prices:\n    - {model: \"gpt 4\", input: 1, output: 2}\n",
                "t.yaml:17: limits.prices 'gpt 4': model pattern 'gpt 4' is invalid: use at most "
                "256 visible ASCII characters ('*' any run, '?' one character)");
    check_exact(LIM "  prices:\n    - {model: m, input: 1, output: 2}\n"
                    "    - {model: n, input: 1, output: 2}\n"
                    "    - {model: m, input: 3, output: 4}\n",
                "t.yaml:19: limits.prices: duplicate model pattern 'm' (first at line 17): the "
                "first matching entry wins, so this one would never apply");
    check_exact(LIM "  prices: {model: m}\n",
                "t.yaml:16: limits.prices must be a list, not a mapping");

    /* scope entries: names */
    check_exact(LIM "  workspaces: {ws-c: {tokens_per_day: 1}}\n",
                "t.yaml:16: limits.workspaces: unknown workspace 'ws-c' (name a workspace id, or "
                "\"*\" for every workspace without its own entry)");
    check_exact(LIM "  egress: {ws-c: {bytes_per_day: 1}}\n",
                "t.yaml:16: limits.egress: unknown workspace 'ws-c' (name a workspace id, or "
                "\"*\" for every workspace without its own entry)");
    check_exact(LIM "  teams: {checkout: {cost_per_day: 1}}\n",
                "t.yaml:16: limits.teams: no workspace has the team 'checkout' (a workspace's "
                "team is its team:, else its group)");
    check_exact(LIM "  projects: {platform: {cost_per_day: 1}}\n",
                "t.yaml:16: limits.projects: no workspace has the project 'platform' (set it "
                "with project: in the workspace)");
    check_exact(LIM "  agents: {bot-1: {tokens_per_day: 1}}\n",
                "t.yaml:16: limits.agents: 'bot-1' must be \"*\" or WORKSPACE/AGENT-ID");
    check_exact(LIM "  agents: {/bot-1: {tokens_per_day: 1}}\n",
                "t.yaml:16: limits.agents: '/bot-1' must be \"*\" or WORKSPACE/AGENT-ID");
    check_exact(LIM "  agents: {ws-demo/: {tokens_per_day: 1}}\n",
                "t.yaml:16: limits.agents: agent id '' in 'ws-demo/' is invalid: use 1 to 128 "
                "visible ASCII characters, no spaces");
    check_exact(LIM "  agents: {\"ws-demo/bot 1\": {tokens_per_day: 1}}\n",
                "t.yaml:16: limits.agents: agent id 'bot 1' in 'ws-demo/bot 1' is invalid: use 1 "
                "to 128 visible ASCII characters, no spaces");
    check_exact(LIM "  agents: {\"ws-demo/b\\u00e9\": {tokens_per_day: 1}}\n",
                "t.yaml:16: limits.agents: agent id 'b\xc3\xa9' in 'ws-demo/b\xc3\xa9' is "
                "invalid: use 1 to 128 visible ASCII characters, no spaces");
    check_exact(LIM "  agents: {nobody/bot-1: {tokens_per_day: 1}}\n",
                "t.yaml:16: limits.agents: unknown workspace 'nobody' in 'nobody/bot-1'");
    char big[512];
    char agent[130];
    memset(agent, 'x', 129);
    agent[129] = '\0';
    snprintf(big, sizeof big, LIM "  agents: {ws-demo/%s: {tokens_per_day: 1}}\n", agent);
    check_prefix(big, "t.yaml:16: limits.agents: agent id 'xxxxxxxx");
    agent[128] = '\0'; /* 128 bytes: fine */
    snprintf(big, sizeof big, LIM "  agents: {ws-demo/%s: {tokens_per_day: 1}}\n", agent);
    config_t *c = load_ok(big);
    config_unref(c);
    check_exact(LIM "  workspaces:\n    ws-demo: {tokens_per_day: 1}\n    ws-b: {}\n"
                    "    ws-demo: {tokens_per_day: 2}\n",
                "t.yaml:19: limits.workspaces: duplicate entry 'ws-demo' (first at line 17)");
    check_exact(LIM "  workspaces:\n    \"*\": {}\n    '*': {}\n",
                "t.yaml:18: limits.workspaces: duplicate entry '*' (first at line 17)");
    check_exact(LIM "  workspaces: [ws-demo]\n",
                "t.yaml:16: limits.workspaces must be a mapping, not a list");
    check_exact(LIM "  workspaces: {ws-demo: 5}\n",
                "t.yaml:16: limits.workspaces 'ws-demo' must be a mapping, not a string");
    check_exact(LIM "  workspaces: {[a]: {}}\n",
                "t.yaml:16: limits.workspaces: the name of an entry must be a string, not a list");
    check_exact(LIM "  workspaces: {\"\": {}}\n",
                "t.yaml:16: limits.workspaces: an entry has an empty name (or one with a NUL "
                "character)");

    /* scope entries: rules */
    check_exact(LIM "  workspaces: {ws-demo: {tokens_per_dya: 1}}\n",
                "t.yaml:16: unknown key 'tokens_per_dya' in limits.workspaces 'ws-demo' (did you "
                "mean 'tokens_per_day'?); accepted keys: requests_per_minute, requests_per_day, "
                "tokens_per_minute, tokens_per_day, tokens_per_month, cost_per_day, "
                "cost_per_month or soft_threshold");
    check_exact(LIM "  teams: {g: {budget: 1}}\n",
                "t.yaml:16: unknown key 'budget' in limits.teams 'g'; accepted keys: "
                "requests_per_minute, requests_per_day, tokens_per_minute, tokens_per_day, "
                "tokens_per_month, cost_per_day, cost_per_month or soft_threshold");
    check_exact(LIM "  egress: {\"*\": {tokens_per_minute: 1}}\n",
                "t.yaml:16: unknown key 'tokens_per_minute' in limits.egress '*'; accepted keys: "
                "requests_per_minute, requests_per_day, bytes_per_minute or bytes_per_day");
    check_exact(LIM "  egress: {\"*\": {soft_threshold: 50}}\n",
                "t.yaml:16: unknown key 'soft_threshold' in limits.egress '*'; accepted keys: "
                "requests_per_minute, requests_per_day, bytes_per_minute or bytes_per_day");
    check_exact(LIM "  workspaces: {ws-demo: {tokens_per_day: 1, tokens_per_day: 2}}\n",
                "t.yaml:16: duplicate key 'tokens_per_day' in limits.workspaces 'ws-demo' (first "
                "at line 16)");
    check_exact(LIM "  workspaces: {ws-demo: {tokens_per_day: 0}}\n",
                "t.yaml:16: tokens_per_day of limits.workspaces 'ws-demo' must be a positive "
                "integer, not '0'");
    check_exact(LIM "  agents: {\"*\": {requests_per_minute: -5}}\n",
                "t.yaml:16: requests_per_minute of limits.agents '*' must be a positive integer, "
                "not '-5'");
    check_exact(LIM "  agents: {\"*\": {requests_per_day: 1.5}}\n",
                "t.yaml:16: requests_per_day of limits.agents '*' must be a positive integer, not "
                "'1.5'");
    check_exact(LIM "  agents: {\"*\": {tokens_per_month: lots}}\n",
                "t.yaml:16: tokens_per_month of limits.agents '*' must be a positive integer, not "
                "'lots'");
    check_exact(LIM "  agents: {\"*\": {tokens_per_minute: }}\n",
                "t.yaml:16: tokens_per_minute of limits.agents '*' must not be empty");
    check_exact(LIM "  projects: {checkout: {cost_per_month: 0}}\n",
                "t.yaml:16: cost_per_month of limits.projects 'checkout' must be a positive amount "
                "of USD, at most 1000000 with at most 6 decimals (e.g. 100 or 12.50), not '0'");
    check_exact(LIM "  projects: {checkout: {cost_per_month: 0.0000001}}\n",
                "t.yaml:16: cost_per_month of limits.projects 'checkout' must be a positive amount "
                "of USD, at most 1000000 with at most 6 decimals (e.g. 100 or 12.50), not "
                "'0.0000001'");
    check_exact(LIM "  teams: {platform: {cost_per_day: $5}}\n",
                "t.yaml:16: cost_per_day of limits.teams 'platform' must be a positive amount of "
                "USD, at most 1000000 with at most 6 decimals (e.g. 100 or 12.50), not '$5'");
    check_exact(LIM "  teams: {platform: {cost_per_day: -5}}\n",
                "t.yaml:16: cost_per_day of limits.teams 'platform' must be a positive amount of "
                "USD, at most 1000000 with at most 6 decimals (e.g. 100 or 12.50), not '-5'");
    check_exact(LIM "  teams: {platform: {cost_per_day: 1000001}}\n",
                "t.yaml:16: cost_per_day of limits.teams 'platform' must be a positive amount of "
                "USD, at most 1000000 with at most 6 decimals (e.g. 100 or 12.50), not '1000001'");
    check_exact(LIM "  egress: {ws-b: {bytes_per_minute: 0MB}}\n",
                "t.yaml:16: bytes_per_minute of limits.egress 'ws-b' must be a positive size (e.g. "
                "100MB, 64MiB or a number of bytes), not '0MB'");
    check_exact(LIM "  egress: {ws-b: {bytes_per_day: 10 MB}}\n",
                "t.yaml:16: bytes_per_day of limits.egress 'ws-b' must be a positive size (e.g. "
                "100MB, 64MiB or a number of bytes), not '10 MB'");
    check_exact(LIM "  workspaces: {ws-demo: {tokens_per_day: 5, soft_threshold: 99.9}}\n",
                "t.yaml:16: soft_threshold of limits.workspaces 'ws-demo' must be a percentage "
                "from 0 to 99 (e.g. 80 or 80%; 0 = off), not '99.9'");

    /* every error of the section is reported, each at its line */
    errs = (config_errors_t){0};
    assert_null(load(LIM "  time_zone: Nowhere/Land\n"
                         "  store: {type: redis}\n"
                         "  workspaces:\n    ws-c: {tokens_per_day: 0}\n"
                         "  teams: {nobody: {}}\n",
                     &errs));
    if (errs.n != 5) dump(&errs);
    assert_int_equal(errs.n, 5);
    assert_true(!strncmp(errs.msgs[0], "t.yaml:16: limits.time_zone: unknown time zone", 46));
    assert_true(!strncmp(errs.msgs[1], "t.yaml:17: limits.store: type: redis needs 'url'", 48));
    assert_true(
        !strncmp(errs.msgs[2], "t.yaml:19: limits.workspaces: unknown workspace 'ws-c'", 54));
    assert_true(
        !strncmp(errs.msgs[3], "t.yaml:19: tokens_per_day of limits.workspaces 'ws-c'", 53));
    assert_true(!strncmp(errs.msgs[4], "t.yaml:20: limits.teams: no workspace has the team", 50));
    config_errors_free(&errs);
}

static void test_glob_match(void **state)
{
    (void)state;
    static const struct {
        const char *pat, *s;
        bool match;
    } cases[] = {
        {"", "", true},
        {"", "a", false},
        {"*", "", true},
        {"*", "anything", true},
        {"**", "x", true},
        {"?", "", false},
        {"?", "a", true},
        {"?", "ab", false},
        {"gpt-4o", "gpt-4o", true},
        {"gpt-4o", "gpt-4o-mini", false},
        {"gpt-4o*", "gpt-4o", true},
        {"gpt-4o*", "gpt-4o-mini", true},
        {"gpt-4o*", "gpt-4", false},
        {"GPT-4o*", "gpt-4o", false}, /* case-sensitive */
        {"claude-*", "claude-3-5-sonnet-20241022", true},
        {"claude-?-*", "claude-3-opus", true},
        {"claude-?-*", "claude-35-opus", false},
        {"*-mini", "gpt-4o-mini", true},
        {"*-mini", "gpt-4o-mini-2024", false},
        {"*mini*", "o4-mini-high", true},
        {"a*b*c", "abc", true},
        {"a*b*c", "aXbYc", true},
        {"a*b*c", "aXbYcZ", false},
        {"a*b*c", "acb", false},
        {"*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
        {"*ab", "aab", true},
        {"a?c", "abc", true},
        {"a?c", "ac", false},
        {"models/*", "models/gemini-2.0-flash", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool got = config_glob_match(cases[i].pat, cases[i].s, strlen(cases[i].s));
        if (got != cases[i].match)
            print_error("glob '%s' on '%s': got %d\n", cases[i].pat, cases[i].s, got);
        assert_int_equal(got, cases[i].match);
    }
    /* the length counts, not a NUL */
    assert_true(config_glob_match("gpt-4o", "gpt-4o-mini", 6));
    assert_true(config_glob_match("gpt-4o?", "gpt-4o\0x", 7)); /* '?' takes any byte */
    assert_false(config_glob_match("a", "a\0", 2));
    assert_true(config_glob_match("*", NULL, 0));
    assert_false(config_glob_match(NULL, "a", 1));
    /* long inputs stay fast: one backtrack point */
    static char big[100001];
    memset(big, 'a', sizeof big - 1);
    assert_false(config_glob_match("*a*a*a*a*a*b", big, sizeof big - 1));
    assert_true(config_glob_match("*a*a*a*a*a*", big, sizeof big - 1));
}

/* ---- tests/configs/bad: "# expect: TEXT" and "# line: N" on the first two lines ---- */

static void test_bad_config_folder(void **state)
{
    (void)state;
    DIR *d = opendir(BAD_DIR);
    assert_non_null(d);
    size_t files = 0;
    const struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t nl = strlen(de->d_name);
        if (nl < 6 || strcmp(de->d_name + nl - 5, ".yaml") != 0) continue;
        char path[512], l1[512], l2[512];
        snprintf(path, sizeof path, "%s/%s", BAD_DIR, de->d_name);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        bool ok = fgets(l1, sizeof l1, f) && fgets(l2, sizeof l2, f);
        fclose(f);
        assert_true(ok);
        l1[strcspn(l1, "\n")] = '\0';
        int line = 0;
        if (strncmp(l1, "# expect: ", 10) != 0 || sscanf(l2, "# line: %d", &line) != 1) {
            print_error("%s: first lines must be '# expect: TEXT' and '# line: N'\n", path);
            fail();
        }
        const char *expect = l1 + 10;
        char prefix[600];
        snprintf(prefix, sizeof prefix, "%s:%d: ", path, line);

        config_errors_t errs = {0};
        config_t *c = config_load(path, &errs);
        bool found = false;
        for (size_t i = 0; i < errs.n; i++)
            if (!strncmp(errs.msgs[i], prefix, strlen(prefix)) && strstr(errs.msgs[i], expect))
                found = true;
        if (c || !found) {
            print_error("%s: expected an error '%s...%s'\n", path, prefix, expect);
            dump(&errs);
        }
        config_unref(c);
        assert_null(c);
        assert_true(found);
        config_errors_free(&errs);
        files++;
    }
    closedir(d);
    assert_true(files >= 15);
}

/* ---- parse helpers ---- */

static void test_parse_duration(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t ms;
    } ok[] = {
        {"0", 0},
        {"10", 10000},
        {"10s", 10000},
        {"500ms", 500},
        {"2m", 120000},
        {"1h", 3600000},
        {"007s", 7000},
        {"0ms", 0},
        {"18446744073709551615ms", UINT64_MAX},
        {"5124095576030h", 5124095576030ull * 3600000ull},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 1;
        assert_int_equal(config_parse_duration_ms(ok[i].s, &v), 0);
        assert_true(v == ok[i].ms);
    }
    static const char *const bad[] = {
        "",
        "s",
        "-1s",
        "+1s",
        "1.5s",
        " 1s",
        "1s ",
        "1 s",
        "10x",
        "1S",
        "1sec",
        "1d",
        "0x10",
        "1hh",
        "1mss",
        "18446744073709551616ms",
        "18446744073709551615s",
        "5124095576031h",
        "99999999999999999999999",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 42;
        if (config_parse_duration_ms(bad[i], &v) != -1) print_error("accepted '%s'\n", bad[i]);
        assert_int_equal(config_parse_duration_ms(bad[i], &v), -1);
        assert_int_equal(v, 42);
    }
    uint64_t v;
    assert_int_equal(config_parse_duration_ms(NULL, &v), -1);
    assert_int_equal(config_parse_duration_ms("1s", NULL), -1);
}

static void test_parse_size(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t n;
    } ok[] = {
        {"0", 0},
        {"1024", 1024},
        {"10B", 10},
        {"512KB", 512000},
        {"512kB", 512000},
        {"10MB", 10000000},
        {"10MiB", 10485760},
        {"1GB", 1000000000},
        {"1GiB", 1073741824},
        {"64KiB", 65536},
        {"2TiB", 2ull << 40},
        {"18446744073709551615", UINT64_MAX},
        {"16777215TiB", 16777215ull << 40},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 1;
        assert_int_equal(config_parse_size(ok[i].s, &v), 0);
        assert_true(v == ok[i].n);
    }
    static const char *const bad[] = {
        "",
        "MB",
        "-1",
        "+1",
        "1.5MB",
        "10 MB",
        " 10MB",
        "10MB ",
        "10mb",
        "10Mb",
        "10M",
        "10K",
        "10XB",
        "10MiBs",
        "0x10",
        "18446744073709551616",
        "16777216TiB",
        "18446744073709552GB",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 42;
        if (config_parse_size(bad[i], &v) != -1) print_error("accepted '%s'\n", bad[i]);
        assert_int_equal(config_parse_size(bad[i], &v), -1);
        assert_int_equal(v, 42);
    }
    uint64_t v;
    assert_int_equal(config_parse_size(NULL, &v), -1);
    assert_int_equal(config_parse_size("1", NULL), -1);
}

static void test_port_set_has(void **state)
{
    (void)state;
    port_set_t s = {.v = {80, 443, 65535}, .n = 3};
    assert_true(port_set_has(&s, 80));
    assert_true(port_set_has(&s, 65535));
    assert_false(port_set_has(&s, 0));
    assert_false(port_set_has(&s, 22));
    s.n = 0;
    assert_false(port_set_has(&s, 80));
    assert_false(port_set_has(NULL, 80));
}

static void test_refcount(void **state)
{
    (void)state;
    config_t *c = load_ok(V WS POL);
    assert_int_equal(atomic_load(&c->refs), 1);
    assert_ptr_equal(config_ref(c), c);
    assert_ptr_equal(config_ref(c), c);
    assert_int_equal(atomic_load(&c->refs), 3);
    config_unref(c);
    config_unref(c);
    assert_int_equal(atomic_load(&c->refs), 1);
    assert_string_equal(c->policies[0].name, "p"); /* still alive */
    config_unref(c); /* freed here; ASan reports a leak or double free otherwise */
    assert_null(config_ref(NULL));
    config_unref(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bundled_config_loads),
        cmocka_unit_test(test_seed_squid_allowlist),
        cmocka_unit_test(test_full_schema_valid),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_err_syntax),
        cmocka_unit_test(test_err_unknown_keys),
        cmocka_unit_test(test_err_types),
        cmocka_unit_test(test_err_values),
        cmocka_unit_test(test_err_listeners),
        cmocka_unit_test(test_err_workspaces),
        cmocka_unit_test(test_err_yaml_structure),
        cmocka_unit_test(test_inspect_absent),
        cmocka_unit_test(test_inspect_inline_rule_and_actions),
        cmocka_unit_test(test_inspect_override_and_rules_files),
        cmocka_unit_test(test_err_inspect),
        cmocka_unit_test(test_err_inspect_all_reported),
        cmocka_unit_test(test_gateway_full),
        cmocka_unit_test(test_gateway_defaults),
        cmocka_unit_test(test_gateway_enums),
        cmocka_unit_test(test_gateway_urls),
        cmocka_unit_test(test_gateway_keys),
        cmocka_unit_test(test_gateway_errors),
        cmocka_unit_test(test_glob_match),
        cmocka_unit_test(test_limits_full),
        cmocka_unit_test(test_limits_defaults),
        cmocka_unit_test(test_limits_project),
        cmocka_unit_test(test_limits_redis_urls),
        cmocka_unit_test(test_limits_errors),
        cmocka_unit_test(test_multiple_errors),
        cmocka_unit_test(test_error_flood_is_capped),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_bad_config_folder),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_port_set_has),
        cmocka_unit_test(test_refcount),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
