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
#include "limits/ledger.h"
#include "limits/price.h"
#include "limits/tz.h"
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
    char *team;             /* optional; audit and budgets; default = group */
    char *project;          /* optional; budgets and reports; default NULL (no project scope) */
    char region[32];        /* optional gateway region pin; wins over the group's */
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
 * actions apply; but when the gateway is enabled the built-in rules are
 * compiled at load anyway, so `engine` is non-NULL whenever
 * gateway.enabled.  The action of a finding is, in this order, rule_actions
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

/* ---- the LLM gateway (`gateway:` section; see doc/config.md) ---- */

#define CONFIG_GW_MAX_PROVIDERS 64
#define CONFIG_GW_MAX_ENDPOINTS 16
#define CONFIG_GW_REGION_MAX 32

typedef enum { GW_PII_REDACT = 0, GW_PII_BLOCK = 1, GW_PII_ALLOW = 2 } gw_pii_mode_t;
typedef enum { GW_LOG_METADATA = 0, GW_LOG_FULL = 1 } gw_log_prompts_t;

/* One upstream base URL of a provider: https://host[:port][/base/path]. */
typedef struct config_gw_endpoint {
    char *url;       /* as written */
    char *host;      /* host name or literal address (no brackets); SNI when a name */
    uint16_t port;   /* default 443 (https) / 80 (http) */
    bool tls;        /* https; plain http:// is accepted only for a loopback host */
    char *base_path; /* "" or "/base" (no trailing slash); prefixed to the API path */
    char region[CONFIG_GW_REGION_MAX]; /* "" = not pinned to any region */
    int line;
} config_gw_endpoint_t;

typedef struct config_gw_provider {
    char *name;    /* path prefix /<name>/... and x-llm-provider value */
    int vendor;    /* llm_vendor_t: which API it speaks (type:, default from name) */
    char *key_ref; /* "env:NAME" / "file:PATH", or NULL: calls are refused (503) */
    char *key;     /* the key read from key_ref at load (wiped on free), or NULL */
    size_t key_len;
    config_gw_endpoint_t endpoints[CONFIG_GW_MAX_ENDPOINTS];
    size_t nendpoints; /* >= 1 */
    int line;
} config_gw_provider_t;

/* What a workspace group may do through the gateway. */
typedef struct config_gw_group {
    char *name;       /* a workspace group */
    char **providers; /* provider names allowed; NULL/0 = every provider */
    size_t nproviders;
    char **models; /* glob patterns ('*' any run, '?' one char), case-sensitive;
                      NULL/0 = every model */
    size_t nmodels;
    char region[CONFIG_GW_REGION_MAX]; /* "" = any; else only endpoints of this region */
    int line;
} config_gw_group_t;

typedef struct config_gateway {
    bool enabled;              /* the file has a gateway section (or listeners.gateway) */
    config_listen_t listen;    /* default 127.0.0.1:8080 */
    config_listen_t ext_authz; /* default 127.0.0.1:8081; enabled only when listed */
    /* listener TLS: off when cert is NULL */
    char *tls_cert, *tls_key;
    int tls_min_version;     /* 0x0303 (TLS 1.2) or 0x0304 (TLS 1.3); default 1.3 */
    char *tls_client_ca;     /* mTLS: client certs required, verified against this CA;
                                the certificate's subject CN names the workspace */
    uint64_t max_body_bytes; /* request body limit, default 10 MiB; 413 above */
    /* upstream */
    char *ca_file;                  /* CA bundle for provider certificates; NULL = system default */
    uint64_t connect_timeout_ms;    /* 10 s */
    uint64_t first_byte_timeout_ms; /* 120 s: request sent -> response head */
    uint64_t idle_timeout_ms;       /* 300 s: no byte from upstream while streaming */
    size_t pool_size;               /* idle upstream connections kept per endpoint per worker; 16 */
    /* content filter */
    bool block_secrets;           /* true: secret findings block (403); false: alert */
    gw_pii_mode_t pii;            /* redact (default) | block | allow (alert only) */
    bool block_restricted_files;  /* true (default): path findings and attached
                                     file names matching a path rule block */
    uint64_t max_prompt_tokens;   /* default 128000; 0 = no limit */
    gw_log_prompts_t log_prompts; /* metadata_only (default) | full */
    config_gw_provider_t *providers;
    size_t nproviders;
    config_gw_group_t *groups;
    size_t ngroups;
} config_gateway_t;

/* ---- rate limits and budgets (`limits:` section; see doc/config.md) ---- */

#define CONFIG_LIM_MAX_RULES 8

/* The scopes a limit attaches to.  An agent is "<workspace>/<x-agent-id>";
 * egress limits apply to a workspace's traffic through the egress proxy. */
typedef enum {
    CONFIG_LIM_WORKSPACE = 0,
    CONFIG_LIM_AGENT,
    CONFIG_LIM_PROJECT,
    CONFIG_LIM_TEAM,
    CONFIG_LIM_EGRESS,
    CONFIG_LIM_NSCOPES
} config_lim_scope_t;

/* The limits of one scope instance, or of every instance without its own
 * entry (name "*").  A named entry replaces "*" entirely (no merging). */
typedef struct config_lim_entry {
    char *name; /* "*", a workspace id, agent "ws/agent-id", project, team */
    lim_rule_t rules[CONFIG_LIM_MAX_RULES];
    size_t nrules;
    int line;
} config_lim_entry_t;

typedef enum { CONFIG_LIM_STORE_SQLITE = 0, CONFIG_LIM_STORE_REDIS = 1 } config_lim_store_t;

typedef struct config_limits {
    bool enabled;      /* the file has a limits section */
    char *time_zone;   /* IANA name as written; default "UTC" */
    tz_t *tz;          /* loaded at config load; NULL = UTC */
    uint32_t soft_pct; /* default soft threshold for day/month budgets: 80; 0 = off */
    config_lim_store_t store;
    /* sqlite */
    char *db_path;              /* default "cdeguard-usage.db" */
    uint64_t flush_interval_ms; /* default 1000; 10 ms .. 60 s */
    /* redis */
    char *redis_url;           /* as written: redis://host[:port][/db] */
    char *redis_host;          /* parsed */
    uint16_t redis_port;       /* default 6379 */
    int redis_db;              /* default 0 */
    char *redis_password;      /* read from password: env:/file: at load; wiped on free; or NULL */
    char *key_prefix;          /* default "cdeguard" */
    uint64_t redis_timeout_ms; /* per command, default 250 */
    bool fail_open;            /* on_error: fail_open; default fail_closed */
    /* admin */
    bool admin_token_set;
    uint8_t admin_token_sha256[32]; /* POST /v1/budgets: Authorization: Bearer <token> */
    /* prices */
    bool unpriced_free; /* unpriced: free; default refuse: a model without a price is
                           refused when a cost rule applies to the call */
    lim_price_t *prices;
    size_t nprices;
    config_lim_entry_t *entries[CONFIG_LIM_NSCOPES];
    size_t nentries[CONFIG_LIM_NSCOPES];
} config_limits_t;

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
    config_gateway_t gateway;
    config_limits_t limits;
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

/* Gateway lookups (NULL when absent). */
const config_gw_provider_t *config_gw_provider(const config_t *c, const char *name, size_t len);
const config_gw_group_t *config_gw_group(const config_t *c, const char *group);
/* A workspace by id. */
const config_workspace_t *config_workspace_by_id(const config_t *c, const char *id, size_t len);
/* The limits entry of a scope instance: the named one, else "*", else NULL. */
const config_lim_entry_t *config_lim_entry(const config_t *c, config_lim_scope_t scope,
                                           const char *name);
const char *config_lim_scope_name(config_lim_scope_t s); /* "workspace", "agent", ... */

/* Glob match used for model patterns: '*' any run (also empty), '?' one byte. */
bool config_glob_match(const char *pat, const char *s, size_t len);

/* The action the config assigns to a finding of c->inspect.engine: the
 * finding's own action when c is NULL or has no engine; rule_actions apply
 * only to a rule index of that engine (an index out of range still gets
 * actions by its category, else its own action). */
inspect_action_t config_inspect_action(const config_t *c, const inspect_finding_t *f);

#endif
