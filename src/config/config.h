/*
 * config — cdeguard's configuration: YAML file → immutable config_t.
 *
 * A config_t is built once by config_load(), validated as a whole (every
 * error is collected with file:line, not only the first), and never modified
 * afterwards.  Workers share it read-only; it is reference-counted
 * (config_ref / config_unref, atomic) so that a SIGHUP reload can swap in a
 * new one while connections that started under the old one finish with it.
 * Everything a config_t points to is owned by it and freed with the last
 * reference.
 *
 * Schema: see doc/config.md and the bundled cdeguard.yaml.
 */
#ifndef CDEGUARD_CONFIG_CONFIG_H
#define CDEGUARD_CONFIG_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inspect/inspect.h"
#include "net/ipaddr.h"
#include "policy/domain.h"

#define CONFIG_MAX_PORTS 64

typedef enum { POLICY_ENFORCE = 0, POLICY_MONITOR = 1 } policy_mode_t;
typedef enum { UPLOAD_ALERT = 0, UPLOAD_BLOCK = 1 } upload_action_t;
typedef enum { AUDIT_FILE = 0, AUDIT_STDOUT = 1 } audit_sink_t;

typedef struct config_listen {
    char host[64]; /* literal address, e.g. "127.0.0.1" or "::1" */
    uint16_t port;
    bool enabled;
} config_listen_t;

typedef struct port_set {
    uint16_t v[CONFIG_MAX_PORTS];
    size_t n;
} port_set_t;

typedef struct config_policy {
    char *name;
    char **groups; /* workspace groups this policy applies to */
    size_t ngroups;
    policy_mode_t mode;
    bool require_auth;   /* Proxy-Authorization required even if source matches */
    domain_set_t *allow; /* ids index allow_patterns */
    char **allow_patterns;
    size_t nallow;
    domain_set_t *deny; /* ids index deny_patterns */
    char **deny_patterns;
    size_t ndeny;
    cidrset_t allow_cidrs;       /* explicit SSRF exceptions (private ranges) */
    port_set_t connect_ports;    /* default {443} */
    port_set_t http_ports;       /* default {80, 8080} */
    port_set_t tls_only_ports;   /* default {443} */
    uint64_t upload_alert_bytes; /* default 10 MiB (10485760) */
    upload_action_t upload_action;
    int line; /* where it was defined, for messages */
} config_policy_t;

typedef struct config_token {
    uint8_t sha256[32];
} config_token_t;

typedef struct config_workspace {
    char *id;
    char *group;
    cidrset_t sources;      /* attribution by source address */
    config_token_t *tokens; /* attribution by Proxy-Authorization */
    size_t ntokens;
    const config_policy_t *policy; /* resolved: the policy whose groups contain group */
    int line;
} config_workspace_t;

/* The `inspect:` section: the inspection engine and what to do with its
 * findings.  When the file has an inspect section, `engine` is compiled at
 * load (built-in rules, then the inline `rules`, then `rules_files`; a later
 * rule with the same id replaces an earlier one; then enable/disable), so a
 * bad rule is a config error with its line, and the config owns and frees
 * it.  Without an inspect section `engine` is NULL (a config load stays
 * cheap: compiling costs ~0.2 s) and the built-in rules with their own
 * actions apply.  The action of a finding is, in this order, rule_actions
 * (by id), actions (by category), the rule's own `action` or its
 * category's built-in default: see config_inspect_action(). */
typedef struct config_inspect {
    inspect_engine_t *engine; /* NULL when the file has no inspect section */
    int8_t *rule_action;      /* nrules entries, indexed like findings' rule: an
                                 inspect_action_t from rule_actions, or -1 */
    size_t nrules;
    char **rules_files; /* NULL-terminated, as written */
    size_t nrules_files;
    bool category_set[3];                /* actions: given for this category */
    inspect_action_t category_action[3]; /* indexed by inspect_category_t */
    size_t ninline;                      /* inline rules given */
} config_inspect_t;

typedef struct config {
    atomic_int refs;
    char *path;             /* file it was loaded from */
    int version;            /* schema version, 1 */
    config_listen_t egress; /* default 127.0.0.1:3128 */
    config_listen_t admin;  /* default 127.0.0.1:9090 */
    int workers;            /* 0 = number of cores */
    audit_sink_t audit_sink;
    char *audit_path; /* when sink is file; default "cdeguard-audit.log" */
    /* timeouts in milliseconds */
    uint64_t client_header_timeout_ms; /* 10000 */
    uint64_t idle_timeout_ms;          /* 60000 */
    uint64_t connect_timeout_ms;       /* 10000 */
    uint64_t client_hello_timeout_ms;  /* 10000 */
    uint64_t drain_timeout_ms;         /* 30000 */
    size_t max_header_bytes;           /* 65536 */
    cidrset_t workspace_subnets;
    domain_set_t *global_deny; /* top-level deny_domains */
    char **global_deny_patterns;
    size_t nglobal_deny;
    config_workspace_t *workspaces;
    size_t nworkspaces;
    config_policy_t *policies;
    size_t npolicies;
    config_inspect_t inspect;
} config_t;

/* Error list filled by config_load: each message is "FILE:LINE: text". */
typedef struct config_errors {
    char **msgs;
    size_t n, cap;
} config_errors_t;

void config_errors_free(config_errors_t *e);

/* Load and validate a file.  Returns a config with refs == 1, or NULL with
 * every problem found appended to *errs. */
config_t *config_load(const char *path, config_errors_t *errs);
/* The same from a memory buffer; `name` is used in messages. */
config_t *config_load_buffer(const char *name, const char *data, size_t len, config_errors_t *errs);

config_t *config_ref(config_t *c);
void config_unref(config_t *c);

/* Parse helpers, exposed for unit tests: "10s", "500ms", "2m", "1h", bare
 * number = seconds → milliseconds; "10MB", "10MiB", "512KB", "1GB", bare
 * number = bytes (MB = 10^6, MiB = 2^20).  0 ok, -1 invalid. */
int config_parse_duration_ms(const char *s, uint64_t *out);
int config_parse_size(const char *s, uint64_t *out);

bool port_set_has(const port_set_t *s, uint16_t port);

/* The action the config assigns to a finding of c->inspect.engine: the
 * finding's own action when c is NULL or has no engine; rule_actions apply
 * only to a rule index of that engine (an index out of range still gets
 * actions by its category, else its own action). */
inspect_action_t config_inspect_action(const config_t *c, const inspect_finding_t *f);

#endif
