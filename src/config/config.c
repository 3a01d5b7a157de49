/*
 * config — load cdeguard's YAML configuration into an immutable config_t.
 *
 * Pipeline:
 *   bytes (at most CONFIG_MAX_FILE)
 *   → libyaml events → a flat node tree (config_node_t array + one string
 *     pool; nesting limited to CONFIG_MAX_DEPTH, built without recursion;
 *     YAML aliases are refused, so no node is ever shared)
 *   → schema walk filling a config_t, every problem recorded with the line
 *     of the node at fault (never stops at the first)
 *   → cross checks: duplicate workspace ids / policy names / tokens, group
 *     coverage (each workspace group covered by exactly one policy),
 *     overlapping workspace sources, equal ports of any two enabled listeners
 *     (egress, admin, gateway, ext_authz); gateway provider / group names
 *     unique, a group's providers defined
 *   → the limits section, whose entries must name workspaces, teams and
 *     projects that exist (so it is read after the cross checks)
 *   → the inspection engine: the inspect section's, or (gateway on, no
 *     inspect section, no error so far) the built-in rules
 *   → either the config (refs == 1) or NULL and every error, sorted by line,
 *     as "FILE:LINE: message" (LINE is 1-based; file-wide problems use 1).
 *
 * Invariants of a returned config_t: every workspace has an id, a group and
 * a non-NULL policy pointing into cfg->policies; every policy has a name,
 * at least one group and non-NULL allow/deny domain sets; global_deny is
 * non-NULL; the ids stored in a domain set index the matching *_patterns
 * array, which keeps each pattern exactly as written (for audit messages);
 * audit_path and path are non-NULL; workspace ids, group, team and policy
 * names are 1..64 of [A-Za-z0-9._-] (they go into credentials, headers, JSON
 * and metric labels unescaped), and so are projects; every workspace has a
 * team (default: a copy of its group), a project only when it names one;
 * timeouts are 1 ms..168 h.  When gateway.enabled:
 * inspect.engine is non-NULL; there is at least one provider (the defaults
 * when the file lists none), each with a name ([a-z0-9][a-z0-9_-]*, <= 63),
 * a vendor (an llm_vendor_t), 1..16 endpoints with url, host, base_path
 * non-NULL, and key non-NULL exactly when key_ref loaded; every name in a
 * gateway group's providers is a provider's name.  Paths of files the
 * gateway reads (tls, ca_file, file: keys) are resolved against the config
 * file's directory and were readable at load.  limits (whether or not the
 * file has the section): time_zone, db_path and key_prefix are non-NULL,
 * tz is NULL exactly for "UTC", redis_url and redis_host are non-NULL when
 * the store is redis; every entry has a name ("*" or one that exists: a
 * workspace id, "<workspace id>/<agent id>", a workspace's team or
 * project) and at most one rule per (metric, period), with soft_pct 0 for
 * minute rules; the entries of a scope are sorted by name (strcmp) and
 * unique, so config_lim_entry() is a binary search.
 *
 * Messages quote user values sanitised and truncated (CONFIG_ECHO_BUF), never
 * a token, a provider key, a `key:` or `password:` that is not an env:/file:
 * reference, or a store URL with user information (each may be a clear-text
 * secret); at most CONFIG_MAX_ERRORS are kept,
 * followed by a "too many errors" line.
 *
 * Memory: the config_t owns everything it points to (strings, arrays, CIDR
 * sets, domain sets); the last config_unref() frees it.  During loading all
 * scratch memory (tree, error list, cross-check tables) lives in a
 * config_ctx_t and is freed before returning.  Error strings handed to the
 * caller are owned by its config_errors_t (config_errors_free).
 *
 * Return convention: parse helpers return 0 on success and -1 on invalid
 * input; schema functions return nothing and record errors in the context.
 * Bad input is never fatal: no abort(), no unbounded recursion, every
 * allocation failure becomes an "out of memory" error.
 */
#include "config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "llm/route.h"
#include "llm/secret.h"

#define CONFIG_MAX_FILE (4u << 20) /* bytes */
#define CONFIG_MAX_DEPTH 32        /* the schema itself needs 4 */
#define CONFIG_MAX_NODES 1000000u
#define CONFIG_MAX_ERRORS 200
#define CONFIG_MAX_TIMEOUT_MS (168ull * 3600 * 1000) /* one week */
#define CONFIG_ECHO_BUF 72 /* a user value quoted in a message, truncated */
#define CONFIG_LABEL_BUF 96
#define CONFIG_WHAT_BUF 160
#define CONFIG_NONE UINT32_MAX

/* ------------------------------------------------------------------------ */
/* Node tree                                                                 */

typedef enum {
    CONFIG_N_SCALAR = 0,
    CONFIG_N_SEQ,
    CONFIG_N_MAP,
    CONFIG_N_BAD, /* an alias: already reported, ignored by every check */
} config_kind_t;

/* One YAML node.  Children are linked through first/next; a mapping's
 * children alternate key, value.  Scalars are NUL-terminated in the pool
 * (len may be shorter than strlen only if the text contains a NUL). */
typedef struct config_node {
    uint8_t kind;
    bool plain; /* plain (unquoted, untagged) scalar */
    int line;   /* 1-based */
    uint32_t str, len;
    uint32_t first, next, n;
} config_node_t;

typedef struct config_msg {
    int line;
    size_t seq;
    char *text;
} config_msg_t;

/* An entry of a cross-check table: a key (string or token hash), who owns
 * it (workspace or policy index) and where it was written. */
typedef struct config_key {
    const void *key;
    size_t len;
    size_t owner;
    int line;
} config_key_t;

typedef struct config_keys {
    config_key_t *v;
    size_t n, cap;
} config_keys_t;

typedef struct config_src {
    netcidr_t cidr;
    size_t ws;
    int line;
    uint32_t node;
} config_src_t;

typedef struct config_ctx {
    const char *name;
    const char *data;
    size_t len;
    config_node_t *nodes;
    size_t nnodes, capnodes;
    char *strs;
    size_t nstrs, capstrs;
    config_msg_t *msgs;
    size_t nmsgs, capmsgs, dropped;
    bool oom;
    config_t *cfg;
    /* cross checks */
    config_keys_t wsids, polnames, groups, tokens;
    config_keys_t gwproviders, gwgroups; /* gateway provider and group names */
    config_keys_t teams, projects;       /* of the workspaces, for limits entries */
    config_src_t *srcs;
    size_t nsrcs, capsrcs;
    int *ws_group_line;
    int egress_line, admin_line, gateway_line, ext_authz_line;
    bool gateway_listed; /* listeners.gateway was given */
} config_ctx_t;

static void *config_grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return p;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / size) return NULL;
        ncap *= 2;
    }
    void *np = realloc(p, ncap * size);
    if (np) *cap = ncap;
    return np;
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */

static void config_msg_push(config_ctx_t *c, int line, char *text)
{
    void *np = config_grow(c->msgs, &c->capmsgs, c->nmsgs + 1, sizeof *c->msgs);
    if (!np) {
        free(text);
        c->oom = true;
        return;
    }
    c->msgs = np;
    c->msgs[c->nmsgs] = (config_msg_t){.line = line, .seq = c->nmsgs, .text = text};
    c->nmsgs++;
}

static char *config_format(const char *name, int line, const char *body)
{
    int n = snprintf(NULL, 0, "%s:%d: %s", name, line, body);
    if (n < 0) return NULL;
    char *text = malloc((size_t)n + 1);
    if (text) snprintf(text, (size_t)n + 1, "%s:%d: %s", name, line, body);
    return text;
}

__attribute__((format(printf, 3, 4))) static void config_err(config_ctx_t *c, int line,
                                                             const char *fmt, ...)
{
    if (c->nmsgs >= CONFIG_MAX_ERRORS) {
        c->dropped++;
        return;
    }
    char body[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    char *text = config_format(c->name, line, body);
    if (!text) {
        c->oom = true;
        return;
    }
    config_msg_push(c, line, text);
}

static int config_msg_cmp(const void *pa, const void *pb)
{
    const config_msg_t *a = pa, *b = pb;
    if (a->line != b->line) return a->line < b->line ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

static void config_errors_push(config_errors_t *e, char *msg)
{
    void *np = config_grow(e->msgs, &e->cap, e->n + 1, sizeof *e->msgs);
    if (!np) {
        free(msg);
        return;
    }
    e->msgs = np;
    e->msgs[e->n++] = msg;
}

/* Sort the errors by line and hand them to the caller (or drop them). */
static void config_flush(config_ctx_t *c, config_errors_t *errs)
{
    if (c->oom) {
        char *t = config_format(c->name, 1, "out of memory while loading the configuration");
        if (t) config_msg_push(c, 0, t); /* line 0 sorts it first; its text says 1 */
    }
    if (c->nmsgs > 1) qsort(c->msgs, c->nmsgs, sizeof *c->msgs, config_msg_cmp);
    if (c->dropped) {
        char body[128];
        snprintf(body, sizeof body, "too many errors: %zu more not shown", c->dropped);
        int line = c->nmsgs ? c->msgs[c->nmsgs - 1].line : 1;
        char *t = config_format(c->name, line > 0 ? line : 1, body);
        if (t) config_msg_push(c, line, t);
    }
    for (size_t i = 0; i < c->nmsgs; i++) {
        if (errs)
            config_errors_push(errs, c->msgs[i].text);
        else
            free(c->msgs[i].text);
        c->msgs[i].text = NULL;
    }
}

void config_errors_free(config_errors_t *e)
{
    if (!e) return;
    for (size_t i = 0; i < e->n; i++)
        free(e->msgs[i]);
    free(e->msgs);
    e->msgs = NULL;
    e->n = e->cap = 0;
}

/* Copy a user value for a message: control characters become '?', long
 * values are cut (on a UTF-8 boundary) and end with "...". */
static const char *config_echo(const char *s, size_t len, char *buf, size_t buflen)
{
    size_t o = 0, i = 0, max = buflen - 4;
    while (i < len && o < max) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x80) {
            buf[o++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
            i++;
            continue;
        }
        size_t sl = ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : ch >= 0xc0 ? 2 : 1;
        if (sl == 1 || i + sl > len) {
            buf[o++] = '?';
            i++;
            continue;
        }
        if (o + sl > max) break;
        memcpy(buf + o, s + i, sl);
        o += sl;
        i += sl;
    }
    if (i < len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

/* ------------------------------------------------------------------------ */
/* Tree building from libyaml events                                         */

typedef struct config_builder {
    uint32_t open[CONFIG_MAX_DEPTH];
    uint32_t last[CONFIG_MAX_DEPTH];
    int depth;
    uint32_t root;
} config_builder_t;

static uint32_t config_node_add(config_ctx_t *c, config_builder_t *b, config_kind_t kind, int line)
{
    if (c->nnodes >= CONFIG_MAX_NODES) {
        config_err(c, line, "too many YAML nodes (more than %u)", CONFIG_MAX_NODES);
        return CONFIG_NONE;
    }
    void *np = config_grow(c->nodes, &c->capnodes, c->nnodes + 1, sizeof *c->nodes);
    if (!np) {
        c->oom = true;
        return CONFIG_NONE;
    }
    c->nodes = np;
    uint32_t i = (uint32_t)c->nnodes++;
    c->nodes[i] = (config_node_t){
        .kind = (uint8_t)kind, .line = line, .first = CONFIG_NONE, .next = CONFIG_NONE};
    if (b->depth == 0) {
        if (b->root == CONFIG_NONE) b->root = i;
        return i;
    }
    int d = b->depth - 1;
    config_node_t *parent = &c->nodes[b->open[d]];
    if (b->last[d] == CONFIG_NONE)
        parent->first = i;
    else
        c->nodes[b->last[d]].next = i;
    b->last[d] = i;
    parent->n++;
    return i;
}

static int config_scalar_add(config_ctx_t *c, config_builder_t *b, const yaml_event_t *ev, int line)
{
    size_t len = ev->data.scalar.length;
    void *np = config_grow(c->strs, &c->capstrs, c->nstrs + len + 1, 1);
    if (!np || c->nstrs + len + 1 > UINT32_MAX) {
        c->oom = true;
        return -1;
    }
    c->strs = np;
    uint32_t i = config_node_add(c, b, CONFIG_N_SCALAR, line);
    if (i == CONFIG_NONE) return -1;
    config_node_t *n = &c->nodes[i];
    n->str = (uint32_t)c->nstrs;
    n->len = (uint32_t)len;
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag;
    if (len) memcpy(c->strs + c->nstrs, ev->data.scalar.value, len);
    c->strs[c->nstrs + len] = '\0';
    c->nstrs += len + 1;
    return 0;
}

static int config_offset_line(const config_ctx_t *c, size_t off)
{
    int line = 1;
    for (size_t i = 0; i < off && i < c->len; i++)
        if (c->data[i] == '\n') line++;
    return line;
}

static void config_yaml_error(config_ctx_t *c, const yaml_parser_t *p)
{
    if (p->error == YAML_MEMORY_ERROR) {
        c->oom = true;
        return;
    }
    const char *prob = p->problem ? p->problem : "unknown problem";
    if (p->error == YAML_READER_ERROR) {
        config_err(c, config_offset_line(c, p->problem_offset), "YAML syntax error: %s", prob);
        return;
    }
    int line = (int)p->problem_mark.line + 1;
    if (p->context)
        config_err(c, line, "YAML syntax error: %s (%s at line %d)", prob, p->context,
                   (int)p->context_mark.line + 1);
    else
        config_err(c, line, "YAML syntax error: %s", prob);
}

/* Parse the whole input into c->nodes.  0 when the tree is usable (alias
 * errors may have been recorded), -1 when it is not (syntax error, too
 * deep, too big, out of memory). */
static int config_tree_build(config_ctx_t *c, uint32_t *root)
{
    yaml_parser_t p;
    config_builder_t b = {.root = CONFIG_NONE};
    int ndocs = 0, rc = -1;
    bool done = false;

    *root = CONFIG_NONE;
    if (!yaml_parser_initialize(&p)) {
        c->oom = true;
        return -1;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)c->data, c->len);
    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            config_yaml_error(c, &p);
            goto out;
        }
        int line = (int)ev.start_mark.line + 1;
        int st = 0;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (ndocs++ > 0) {
                config_err(c, line, "only one YAML document is allowed in a config file");
                st = -1;
            }
            break;
        case YAML_ALIAS_EVENT:
            config_err(c, line, "YAML aliases are not supported (*%s): write the value out in full",
                       ev.data.alias.anchor ? (const char *)ev.data.alias.anchor : "");
            if (config_node_add(c, &b, CONFIG_N_BAD, line) == CONFIG_NONE) st = -1;
            break;
        case YAML_SCALAR_EVENT:
            st = config_scalar_add(c, &b, &ev, line);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            if (b.depth >= CONFIG_MAX_DEPTH) {
                config_err(c, line, "YAML nesting is deeper than %d levels", CONFIG_MAX_DEPTH);
                st = -1;
                break;
            }
            config_kind_t k = ev.type == YAML_MAPPING_START_EVENT ? CONFIG_N_MAP : CONFIG_N_SEQ;
            uint32_t i = config_node_add(c, &b, k, line);
            if (i == CONFIG_NONE) {
                st = -1;
                break;
            }
            b.open[b.depth] = i;
            b.last[b.depth] = CONFIG_NONE;
            b.depth++;
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (b.depth > 0) b.depth--;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (st < 0 || c->oom) goto out;
    }
    *root = b.root;
    rc = 0;
out:
    yaml_parser_delete(&p);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Node helpers                                                              */

static const config_node_t *config_node(const config_ctx_t *c, uint32_t i)
{
    return &c->nodes[i];
}

static const char *config_text(const config_ctx_t *c, uint32_t i)
{
    return c->strs + c->nodes[i].str;
}

static bool config_is_null(const config_ctx_t *c, uint32_t i)
{
    const config_node_t *n = config_node(c, i);
    if (n->kind != CONFIG_N_SCALAR || !n->plain) return false;
    const char *s = config_text(c, i);
    return n->len == 0 || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
           !strcmp(s, "NULL");
}

static const char *config_kind_name(const config_ctx_t *c, uint32_t i)
{
    switch (config_node(c, i)->kind) {
    case CONFIG_N_SCALAR:
        return config_is_null(c, i) ? "empty value" : "string";
    case CONFIG_N_SEQ:
        return "list";
    case CONFIG_N_MAP:
        return "mapping";
    default:
        return "value";
    }
}

static const char *config_echo_node(const config_ctx_t *c, uint32_t i, char *buf, size_t buflen)
{
    return config_echo(config_text(c, i), config_node(c, i)->len, buf, buflen);
}

/* A mapping, or an empty value (= empty mapping). */
static bool config_want_map(config_ctx_t *c, uint32_t i, const char *what)
{
    const config_node_t *n = config_node(c, i);
    if (n->kind == CONFIG_N_MAP || config_is_null(c, i)) return true;
    if (n->kind != CONFIG_N_BAD)
        config_err(c, n->line, "%s must be a mapping, not a %s", what, config_kind_name(c, i));
    return false;
}

/* A list, or an empty value (= empty list). */
static bool config_want_seq(config_ctx_t *c, uint32_t i, const char *what)
{
    const config_node_t *n = config_node(c, i);
    char eb[CONFIG_ECHO_BUF];
    if (n->kind == CONFIG_N_SEQ || config_is_null(c, i)) return true;
    if (n->kind == CONFIG_N_SCALAR)
        config_err(c, n->line, "%s must be a list, not a string (write [%s])", what,
                   config_echo_node(c, i, eb, sizeof eb));
    else if (n->kind != CONFIG_N_BAD)
        config_err(c, n->line, "%s must be a list, not a %s", what, config_kind_name(c, i));
    return false;
}

/* The text of a non-empty scalar, or NULL after reporting why not; `expect`
 * names what was wanted ("a string", "a duration"...). */
static const char *config_want_str(config_ctx_t *c, uint32_t i, const char *what,
                                   const char *expect)
{
    const config_node_t *n = config_node(c, i);
    if (n->kind == CONFIG_N_BAD) return NULL;
    if (n->kind != CONFIG_N_SCALAR) {
        config_err(c, n->line, "%s must be %s, not a %s", what, expect, config_kind_name(c, i));
        return NULL;
    }
    const char *s = config_text(c, i);
    if (n->len == 0 || config_is_null(c, i)) {
        config_err(c, n->line, "%s must not be empty", what);
        return NULL;
    }
    if (memchr(s, '\0', n->len)) {
        config_err(c, n->line, "%s must not contain a NUL character", what);
        return NULL;
    }
    return s;
}

/* The same for an entry of the list `what`. */
static const char *config_want_item(config_ctx_t *c, uint32_t i, const char *what)
{
    const config_node_t *n = config_node(c, i);
    if (n->kind == CONFIG_N_BAD) return NULL;
    if (n->kind != CONFIG_N_SCALAR) {
        config_err(c, n->line, "%s: entries must be strings, not a %s", what,
                   config_kind_name(c, i));
        return NULL;
    }
    const char *s = config_text(c, i);
    if (n->len == 0 || config_is_null(c, i)) {
        config_err(c, n->line, "%s: empty entry", what);
        return NULL;
    }
    if (memchr(s, '\0', n->len)) {
        config_err(c, n->line, "%s: entries must not contain a NUL character", what);
        return NULL;
    }
    return s;
}

/* Optimal string alignment distance (edits, with adjacent swaps), for
 * "did you mean" hints.  Strings longer than 32 bytes get 99. */
static int config_distance(const char *a, size_t la, const char *b, size_t lb)
{
    int d[33][33];
    if (la > 32 || lb > 32) return 99;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[la][lb];
}

static const char *config_suggest(const char *s, size_t len, const char *const *keys, size_t nkeys)
{
    const char *best = NULL;
    int bestd = 3;
    for (size_t k = 0; k < nkeys; k++) {
        int d = config_distance(s, len, keys[k], strlen(keys[k]));
        if (d < bestd && (size_t)d < len) {
            best = keys[k];
            bestd = d;
        }
    }
    return best;
}

/* "a, b, c or d" into buf (truncated if it must be). */
static void config_join(const char *const *names, size_t n, char *buf, size_t buflen)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && o < buflen; i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
        int w = snprintf(buf + o, buflen - o, "%s%s", sep, names[i]);
        if (w < 0) break;
        o += (size_t)w;
    }
}

/* Match the keys of mapping `map` against `keys`: found[k] is the node of
 * the key keys[k] (its value is the next node) or CONFIG_NONE.  Unknown,
 * duplicate and non-string keys are reported; `where` completes the
 * message ("at top level", "in policy 'x'").  With `list`, the message of
 * an unknown key also lists the accepted keys (for mappings whose keys are
 * not otherwise obvious, such as limits rules). */
static void config_map_keys_list(config_ctx_t *c, uint32_t map, const char *const *keys,
                                 size_t nkeys, uint32_t *found, const char *where, bool list)
{
    char eb[CONFIG_ECHO_BUF], accepted[320] = "";
    if (list) config_join(keys, nkeys, accepted, sizeof accepted);
    for (size_t k = 0; k < nkeys; k++)
        found[k] = CONFIG_NONE;
    if (config_node(c, map)->kind != CONFIG_N_MAP) return;
    for (uint32_t key = config_node(c, map)->first; key != CONFIG_NONE;) {
        uint32_t val = config_node(c, key)->next;
        const config_node_t *kn = config_node(c, key);
        if (kn->kind == CONFIG_N_BAD) {
            /* already reported */
        } else if (kn->kind != CONFIG_N_SCALAR) {
            config_err(c, kn->line, "keys must be strings, not a %s (%s)", config_kind_name(c, key),
                       where);
        } else {
            const char *s = config_text(c, key);
            size_t k = 0;
            while (k < nkeys && !(strlen(keys[k]) == kn->len && !memcmp(keys[k], s, kn->len)))
                k++;
            if (k == nkeys) {
                const char *hint = config_suggest(s, kn->len, keys, nkeys);
                config_echo(s, kn->len, eb, sizeof eb);
                if (hint && list)
                    config_err(c, kn->line,
                               "unknown key '%s' %s (did you mean '%s'?); accepted keys: %s", eb,
                               where, hint, accepted);
                else if (hint)
                    config_err(c, kn->line, "unknown key '%s' %s (did you mean '%s'?)", eb, where,
                               hint);
                else if (list)
                    config_err(c, kn->line, "unknown key '%s' %s; accepted keys: %s", eb, where,
                               accepted);
                else
                    config_err(c, kn->line, "unknown key '%s' %s", eb, where);
            } else if (found[k] != CONFIG_NONE) {
                config_err(c, kn->line, "duplicate key '%s' %s (first at line %d)", keys[k], where,
                           config_node(c, found[k])->line);
            } else {
                found[k] = key;
            }
        }
        if (val == CONFIG_NONE) break;
        key = config_node(c, val)->next;
    }
}

static void config_map_keys(config_ctx_t *c, uint32_t map, const char *const *keys, size_t nkeys,
                            uint32_t *found, const char *where)
{
    config_map_keys_list(c, map, keys, nkeys, found, where, false);
}

static uint32_t config_val(const config_ctx_t *c, uint32_t key)
{
    return key == CONFIG_NONE ? CONFIG_NONE : config_node(c, key)->next;
}

/* First value of `key` in a mapping when it is a usable string (used to
 * name a workspace or policy in messages before it is validated). */
static const char *config_peek(const config_ctx_t *c, uint32_t map, const char *key, size_t *len)
{
    if (config_node(c, map)->kind != CONFIG_N_MAP) return NULL;
    size_t kl = strlen(key);
    for (uint32_t k = config_node(c, map)->first; k != CONFIG_NONE;) {
        uint32_t v = config_node(c, k)->next;
        if (v == CONFIG_NONE) break;
        const config_node_t *kn = config_node(c, k), *vn = config_node(c, v);
        if (kn->kind == CONFIG_N_SCALAR && kn->len == kl && !memcmp(config_text(c, k), key, kl)) {
            if (vn->kind != CONFIG_N_SCALAR || vn->len == 0 || config_is_null(c, v) ||
                memchr(config_text(c, v), '\0', vn->len))
                return NULL;
            *len = vn->len;
            return config_text(c, v);
        }
        k = vn->next;
    }
    return NULL;
}

/* How many entries a value gives (0 for an empty value or list); values of
 * the wrong type count as given, their type error is reported elsewhere. */
static size_t config_count(const config_ctx_t *c, uint32_t i)
{
    const config_node_t *n = config_node(c, i);
    if (n->kind == CONFIG_N_SEQ || n->kind == CONFIG_N_MAP) return n->n;
    return config_is_null(c, i) ? 0 : 1;
}

/* "workspace 'id'" or "workspace #N" (N 1-based). */
static void config_label(const char *kind, const char *s, size_t len, size_t idx, char *buf,
                         size_t buflen)
{
    char eb[CONFIG_ECHO_BUF];
    if (s)
        snprintf(buf, buflen, "%s '%s'", kind, config_echo(s, len, eb, sizeof eb));
    else
        snprintf(buf, buflen, "%s #%zu", kind, idx + 1);
}

static void config_key_push(config_ctx_t *c, config_keys_t *k, const void *key, size_t len,
                            size_t owner, int line)
{
    void *np = config_grow(k->v, &k->cap, k->n + 1, sizeof *k->v);
    if (!np) {
        c->oom = true;
        return;
    }
    k->v = np;
    k->v[k->n++] = (config_key_t){.key = key, .len = len, .owner = owner, .line = line};
}

static char *config_strdup(config_ctx_t *c, const char *s)
{
    char *d = strdup(s);
    if (!d) c->oom = true;
    return d;
}

/* ------------------------------------------------------------------------ */
/* Value parsers                                                             */

/* One or more decimal digits; *end points after them.  -1 on overflow or
 * when there is no digit. */
static int config_digits(const char *s, const char **end, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    if (p == s) return -1;
    *end = p;
    *out = v;
    return 0;
}

/* A whole string of decimal digits <= max, without sign or leading zero
 * (YAML 1.1 would read 0755 as octal). */
static int config_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    const char *end;
    uint64_t v;
    if (!s || (s[0] == '0' && s[1] != '\0')) return -1;
    if (config_digits(s, &end, &v) < 0 || *end != '\0' || v > max) return -1;
    *out = v;
    return 0;
}

int config_parse_duration_ms(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    const char *end;
    uint64_t v;
    if (!s || !out || config_digits(s, &end, &v) < 0) return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].unit) != 0) continue;
        if (v > UINT64_MAX / units[i].ms) return -1;
        *out = v * units[i].ms;
        return 0;
    }
    return -1;
}

int config_parse_size(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {
        {"", 1},
        {"B", 1},
        {"KB", 1000ull},
        {"kB", 1000ull},
        {"MB", 1000000ull},
        {"GB", 1000000000ull},
        {"TB", 1000000000000ull},
        {"KiB", 1ull << 10},
        {"MiB", 1ull << 20},
        {"GiB", 1ull << 30},
        {"TiB", 1ull << 40},
    };
    const char *end;
    uint64_t v;
    if (!s || !out || config_digits(s, &end, &v) < 0) return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].unit) != 0) continue;
        if (v > UINT64_MAX / units[i].mult) return -1;
        *out = v * units[i].mult;
        return 0;
    }
    return -1;
}

bool port_set_has(const port_set_t *s, uint16_t port)
{
    if (!s) return false;
    for (size_t i = 0; i < s->n && i < CONFIG_MAX_PORTS; i++)
        if (s->v[i] == port) return true;
    return false;
}

static int config_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes",
                                      "YES",  "on",   "On",   "ON"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No",
                                     "NO",    "off",   "Off",   "OFF"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (!strcmp(s, yes[i])) {
            *out = true;
            return 0;
        }
        if (!strcmp(s, no[i])) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static int config_hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* "sha256:" followed by exactly 64 hex digits. */
static int config_parse_token(const char *s, size_t len, uint8_t out[32])
{
    static const char prefix[] = "sha256:";
    size_t pl = sizeof prefix - 1;
    if (len != pl + 64 || memcmp(s, prefix, pl) != 0) return -1;
    for (size_t i = 0; i < 32; i++) {
        int hi = config_hexval(s[pl + 2 * i]), lo = config_hexval(s[pl + 2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* Workspace ids, group and policy names travel in Basic credentials
 * ("id:token"), response headers (X-Cdeguard-Policy), JSON audit records and
 * metric labels: keep them to a set that needs no escaping anywhere. */
static const char config_name_rule[] = "use 1 to 64 letters, digits, '.', '_' or '-'";

static bool config_valid_id(const char *s, size_t len)
{
    if (len == 0 || len > 64) return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

/* A string that is a valid name (config_valid_id), or NULL after reporting. */
static const char *config_want_name(config_ctx_t *c, uint32_t v, const char *what, const char *kind)
{
    char eb[CONFIG_ECHO_BUF];
    const char *s = config_want_str(c, v, what, "a string");
    if (s && !config_valid_id(s, config_node(c, v)->len)) {
        config_err(c, config_node(c, v)->line, "%s '%s' is invalid: %s", kind,
                   config_echo_node(c, v, eb, sizeof eb), config_name_rule);
        return NULL;
    }
    return s;
}

/* ------------------------------------------------------------------------ */
/* Schema                                                                    */

/* A duration of 1 ms..168 h into *dst. */
static void config_duration(config_ctx_t *c, uint32_t n, const char *what, uint64_t *dst)
{
    char eb[CONFIG_ECHO_BUF];
    int line = config_node(c, n)->line;
    uint64_t ms;
    const char *s = config_want_str(c, n, what, "a duration");
    if (!s) return;
    if (config_parse_duration_ms(s, &ms) < 0)
        config_err(c, line, "%s: bad duration '%s' (use e.g. 500ms, 10s, 2m, 1h)", what,
                   config_echo_node(c, n, eb, sizeof eb));
    else if (ms == 0)
        config_err(c, line, "%s must be greater than 0", what);
    else if (ms > CONFIG_MAX_TIMEOUT_MS)
        config_err(c, line, "%s must be at most 168h", what);
    else
        *dst = ms;
}

/* One of the NULL-terminated `names`: its index, or -1 after reporting
 * ("WHAT must be 'a', 'b' or 'c', not 'x'"). */
static int config_enum(config_ctx_t *c, uint32_t n, const char *what, const char *const *names)
{
    char eb[CONFIG_ECHO_BUF], list[CONFIG_WHAT_BUF];
    const char *s = config_want_str(c, n, what, "a string");
    size_t count = 0, o = 0;
    if (!s) return -1;
    for (; names[count]; count++)
        if (!strcmp(s, names[count])) return (int)count;
    list[0] = '\0';
    for (size_t i = 0; i < count && o < sizeof list; i++) {
        const char *sep = i == 0 ? "" : i + 1 == count ? " or " : ", ";
        int w = snprintf(list + o, sizeof list - o, "%s'%s'", sep, names[i]);
        if (w < 0) break;
        o += (size_t)w;
    }
    config_err(c, config_node(c, n)->line, "%s must be %s, not '%s'", what, list,
               config_echo_node(c, n, eb, sizeof eb));
    return -1;
}

static void config_bool(config_ctx_t *c, uint32_t n, const char *what, bool *dst)
{
    char eb[CONFIG_ECHO_BUF];
    const char *s = config_want_str(c, n, what, "true or false");
    if (s && config_parse_bool(s, dst) < 0)
        config_err(c, config_node(c, n)->line, "%s must be true or false, not '%s'", what,
                   config_echo_node(c, n, eb, sizeof eb));
}

/* An integer min..max into *dst. */
static void config_uint(config_ctx_t *c, uint32_t n, const char *what, uint64_t min, uint64_t max,
                        uint64_t *dst)
{
    char eb[CONFIG_ECHO_BUF];
    uint64_t v;
    const char *s = config_want_str(c, n, what, "a number");
    if (!s) return;
    if (config_parse_uint(s, max, &v) < 0 || v < min)
        config_err(c, config_node(c, n)->line, "%s must be an integer from %llu to %llu, not '%s'",
                   what, (unsigned long long)min, (unsigned long long)max,
                   config_echo_node(c, n, eb, sizeof eb));
    else
        *dst = v;
}

/* A path from the file: relative to the directory of the config file (as
 * for inspect.rules_files).  malloc'ed; NULL when out of memory. */
static char *config_resolve(config_ctx_t *c, const char *s)
{
    const char *slash = c->cfg->path ? strrchr(c->cfg->path, '/') : NULL;
    if (s[0] == '/' || !slash) return config_strdup(c, s);
    size_t dl = (size_t)(slash - c->cfg->path) + 1, sl = strlen(s);
    char *full = malloc(dl + sl + 1);
    if (!full) {
        c->oom = true;
        return NULL;
    }
    memcpy(full, c->cfg->path, dl);
    memcpy(full + dl, s, sl + 1);
    return full;
}

/* A file that must be readable now (certificates, keys, CA bundles): its
 * resolved path replaces *out. */
static void config_file(config_ctx_t *c, uint32_t n, const char *what, char **out)
{
    char eb[CONFIG_ECHO_BUF], ebuf[128];
    const char *s = config_want_str(c, n, what, "a file path");
    int line = config_node(c, n)->line;
    if (!s) return;
    char *path = config_resolve(c, s);
    if (!path) return;
    config_echo(path, strlen(path), eb, sizeof eb);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        config_err(c, line, "%s: cannot read '%s': %s", what, eb,
                   strerror_r(errno, ebuf, sizeof ebuf));
        free(path);
        return;
    }
    struct stat st;
    bool regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    close(fd);
    if (!regular) {
        config_err(c, line, "%s: '%s' is not a regular file", what, eb);
        free(path);
        return;
    }
    free(*out);
    *out = path;
}

static void config_listen(config_ctx_t *c, uint32_t v, const char *what, config_listen_t *out)
{
    char eb[CONFIG_ECHO_BUF];
    const char *s = config_want_str(c, v, what, "a string");
    if (!s) return;
    int line = config_node(c, v)->line;
    size_t len = config_node(c, v)->len;
    if (!strcmp(s, "off")) {
        out->enabled = false;
        return;
    }
    const char *host, *port;
    size_t hlen;
    bool bracket = s[0] == '[';
    if (bracket) {
        const char *close = memchr(s, ']', len);
        if (!close || close[1] != ':') {
            config_err(c, line, "%s: '%s' is not [IPV6]:PORT (e.g. [::1]:3128)", what,
                       config_echo(s, len, eb, sizeof eb));
            return;
        }
        host = s + 1;
        hlen = (size_t)(close - host);
        port = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon) {
            config_err(c, line,
                       "%s: '%s' has no port (write ADDRESS:PORT, e.g. 127.0.0.1:3128, or off)",
                       what, config_echo(s, len, eb, sizeof eb));
            return;
        }
        if (memchr(s, ':', (size_t)(colon - s))) {
            config_err(c, line, "%s: IPv6 addresses must be in brackets, e.g. [::1]:3128", what);
            return;
        }
        host = s;
        hlen = (size_t)(colon - s);
        port = colon + 1;
    }
    netaddr_t a;
    uint64_t p = 0;
    bool ok = true;
    if (hlen == 0 || hlen >= sizeof out->host || ipaddr_parse_strict(host, hlen, &a) < 0 ||
        a.family != (bracket ? AF_INET6 : AF_INET)) {
        config_err(c, line,
                   "%s: '%s' is not an IP address (host names are not allowed here; write e.g. "
                   "127.0.0.1:3128 or [::1]:3128)",
                   what, config_echo(host, hlen, eb, sizeof eb));
        ok = false;
    }
    if (config_parse_uint(port, 65535, &p) < 0 || p == 0) {
        config_err(c, line, "%s: bad port '%s' (must be 1..65535)", what,
                   config_echo(port, strlen(port), eb, sizeof eb));
        ok = false;
    }
    if (!ok) return;
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    out->port = (uint16_t)p;
    out->enabled = true;
}

static void config_listeners(config_ctx_t *c, uint32_t v)
{
    static const char *const keys[] = {"egress", "admin", "gateway", "ext_authz"};
    config_listen_t *dst[] = {&c->cfg->egress, &c->cfg->admin, &c->cfg->gateway.listen,
                              &c->cfg->gateway.ext_authz};
    int *lines[] = {&c->egress_line, &c->admin_line, &c->gateway_line, &c->ext_authz_line};
    uint32_t k[4];
    char what[CONFIG_WHAT_BUF];
    if (!config_want_map(c, v, "listeners")) return;
    config_map_keys(c, v, keys, 4, k, "in listeners");
    for (size_t i = 0; i < 4; i++) {
        if (k[i] == CONFIG_NONE) continue;
        *lines[i] = config_node(c, config_val(c, k[i]))->line;
        snprintf(what, sizeof what, "listeners.%s", keys[i]);
        config_listen(c, config_val(c, k[i]), what, dst[i]);
    }
    c->gateway_listed = k[2] != CONFIG_NONE;
}

static void config_audit(config_ctx_t *c, uint32_t v)
{
    static const char *const keys[] = {"sink", "path"};
    uint32_t k[2];
    char eb[CONFIG_ECHO_BUF];
    if (!config_want_map(c, v, "audit")) return;
    config_map_keys(c, v, keys, 2, k, "in audit");
    if (k[0] != CONFIG_NONE) {
        uint32_t n = config_val(c, k[0]);
        const char *s = config_want_str(c, n, "audit.sink", "a string");
        if (s && !strcmp(s, "file"))
            c->cfg->audit_sink = AUDIT_FILE;
        else if (s && !strcmp(s, "stdout"))
            c->cfg->audit_sink = AUDIT_STDOUT;
        else if (s)
            config_err(c, config_node(c, n)->line,
                       "audit.sink must be 'file' or 'stdout', not '%s'",
                       config_echo_node(c, n, eb, sizeof eb));
    }
    if (k[1] != CONFIG_NONE) {
        const char *s = config_want_str(c, config_val(c, k[1]), "audit.path", "a string");
        char *d = s ? config_strdup(c, s) : NULL;
        if (d) {
            free(c->cfg->audit_path);
            c->cfg->audit_path = d;
        }
    }
}

static void config_timeouts(config_ctx_t *c, uint32_t v)
{
    static const char *const keys[] = {"client_header", "idle", "connect", "client_hello", "drain"};
    config_t *cfg = c->cfg;
    uint64_t *dst[] = {&cfg->client_header_timeout_ms, &cfg->idle_timeout_ms,
                       &cfg->connect_timeout_ms, &cfg->client_hello_timeout_ms,
                       &cfg->drain_timeout_ms};
    uint32_t k[5];
    char what[CONFIG_WHAT_BUF];
    if (!config_want_map(c, v, "timeouts")) return;
    config_map_keys(c, v, keys, 5, k, "in timeouts");
    for (size_t i = 0; i < 5; i++) {
        if (k[i] == CONFIG_NONE) continue;
        snprintf(what, sizeof what, "timeouts.%s", keys[i]);
        config_duration(c, config_val(c, k[i]), what, dst[i]);
    }
}

static void config_max_header(config_ctx_t *c, uint32_t v)
{
    char eb[CONFIG_ECHO_BUF];
    const char *s = config_want_str(c, v, "max_header_bytes", "a size");
    uint64_t n;
    if (!s) return;
    int line = config_node(c, v)->line;
    if (config_parse_size(s, &n) < 0)
        config_err(c, line, "max_header_bytes: bad size '%s' (use e.g. 65536, 64KiB, 1MiB)",
                   config_echo_node(c, v, eb, sizeof eb));
    else if (n < 1024 || n > (1u << 20))
        config_err(c, line, "max_header_bytes must be between 1KiB and 1MiB, not '%s'",
                   config_echo_node(c, v, eb, sizeof eb));
    else
        c->cfg->max_header_bytes = (size_t)n;
}

static void config_workers(config_ctx_t *c, uint32_t v)
{
    char eb[CONFIG_ECHO_BUF];
    const char *s = config_want_str(c, v, "workers", "a number");
    uint64_t n;
    if (!s) return;
    if (config_parse_uint(s, 256, &n) < 0)
        config_err(c, config_node(c, v)->line,
                   "workers must be an integer from 0 to 256 (0 = one per CPU core), not '%s'",
                   config_echo_node(c, v, eb, sizeof eb));
    else
        c->cfg->workers = (int)n;
}

/* A list of CIDRs into `set`.  With ws != SIZE_MAX the entries are also
 * recorded for the overlapping-sources check. */
static void config_cidrs(config_ctx_t *c, uint32_t v, const char *what, cidrset_t *set, size_t ws)
{
    char eb[CONFIG_ECHO_BUF];
    if (!config_want_seq(c, v, what)) return;
    for (uint32_t it = config_node(c, v)->first; it != CONFIG_NONE; it = config_node(c, it)->next) {
        const char *s = config_want_item(c, it, what);
        if (!s) continue;
        netcidr_t cidr;
        char err[160] = "";
        int line = config_node(c, it)->line;
        if (netcidr_parse(s, config_node(c, it)->len, &cidr, err, sizeof err) < 0) {
            err[sizeof err - 1] = '\0';
            config_err(c, line, "%s: bad CIDR '%s': %s", what,
                       config_echo_node(c, it, eb, sizeof eb), err[0] ? err : "invalid");
            continue;
        }
        if (cidrset_add(set, &cidr) < 0) {
            config_err(c, line, "%s: cannot store '%s' (too many entries, or out of memory)", what,
                       config_echo_node(c, it, eb, sizeof eb));
            return;
        }
        if (ws == SIZE_MAX) continue;
        void *np = config_grow(c->srcs, &c->capsrcs, c->nsrcs + 1, sizeof *c->srcs);
        if (!np) {
            c->oom = true;
            return;
        }
        c->srcs = np;
        c->srcs[c->nsrcs++] = (config_src_t){.cidr = cidr, .ws = ws, .line = line, .node = it};
    }
}

/* A list of domain patterns into `set`; the id of each pattern is its index
 * in *pats, which keeps the text as written. */
static void config_domains(config_ctx_t *c, uint32_t v, const char *what, domain_set_t *set,
                           char ***pats, size_t *npats)
{
    char eb[CONFIG_ECHO_BUF];
    if (!set || !config_want_seq(c, v, what)) return;
    size_t n = config_node(c, v)->kind == CONFIG_N_SEQ ? config_node(c, v)->n : 0;
    if (n == 0) return;
    char **p = calloc(n, sizeof *p);
    if (!p) {
        c->oom = true;
        return;
    }
    *pats = p;
    for (uint32_t it = config_node(c, v)->first; it != CONFIG_NONE; it = config_node(c, it)->next) {
        const char *s = config_want_item(c, it, what);
        if (!s) continue;
        char err[160] = "";
        if (domain_set_add(set, s, (int)*npats, err, sizeof err) < 0) {
            err[sizeof err - 1] = '\0';
            config_err(c, config_node(c, it)->line, "%s: bad domain pattern '%s': %s", what,
                       config_echo_node(c, it, eb, sizeof eb), err[0] ? err : "invalid");
            continue;
        }
        p[*npats] = config_strdup(c, s);
        if (!p[*npats]) return;
        (*npats)++;
    }
}

static void config_ports(config_ctx_t *c, uint32_t v, const char *what, port_set_t *out)
{
    char eb[CONFIG_ECHO_BUF];
    port_set_t tmp = {.n = 0};
    if (!config_want_seq(c, v, what)) return;
    for (uint32_t it = config_node(c, v)->first; it != CONFIG_NONE; it = config_node(c, it)->next) {
        const char *s = config_want_item(c, it, what);
        uint64_t p;
        if (!s) continue;
        if (config_parse_uint(s, 65535, &p) < 0 || p == 0) {
            config_err(c, config_node(c, it)->line, "%s: bad port '%s' (must be 1..65535)", what,
                       config_echo_node(c, it, eb, sizeof eb));
            continue;
        }
        if (port_set_has(&tmp, (uint16_t)p)) continue;
        if (tmp.n == CONFIG_MAX_PORTS) {
            config_err(c, config_node(c, it)->line, "%s: too many ports (at most %d)", what,
                       CONFIG_MAX_PORTS);
            break;
        }
        tmp.v[tmp.n++] = (uint16_t)p;
    }
    *out = tmp;
}

static void config_tokens(config_ctx_t *c, uint32_t v, const char *what, config_workspace_t *ws,
                          size_t wsi)
{
    if (!config_want_seq(c, v, what)) return;
    size_t n = config_node(c, v)->kind == CONFIG_N_SEQ ? config_node(c, v)->n : 0;
    if (n == 0) return;
    ws->tokens = calloc(n, sizeof *ws->tokens);
    if (!ws->tokens) {
        c->oom = true;
        return;
    }
    for (uint32_t it = config_node(c, v)->first; it != CONFIG_NONE; it = config_node(c, it)->next) {
        const char *s = config_want_item(c, it, what);
        int line = config_node(c, it)->line;
        if (!s) continue;
        /* Never echo the value: it may be a clear-text secret. */
        if (config_parse_token(s, config_node(c, it)->len, ws->tokens[ws->ntokens].sha256) < 0) {
            config_err(c, line,
                       "%s: a token must be written as 'sha256:<64 hex digits>': store the "
                       "SHA-256 hash of the token, never the token itself (make one with "
                       "`cdeguard hash-token`)",
                       what);
            continue;
        }
        config_key_push(c, &c->tokens, ws->tokens[ws->ntokens].sha256, 32, wsi, line);
        ws->ntokens++;
    }
}

/* A gateway region ("eu", "us-east"): 1..31 of [a-z0-9-], into out[32]. */
static void config_region(config_ctx_t *c, uint32_t v, const char *what,
                          char out[CONFIG_GW_REGION_MAX])
{
    char eb[CONFIG_ECHO_BUF];
    const char *s = config_want_str(c, v, what, "a string");
    if (!s) return;
    size_t len = config_node(c, v)->len;
    bool ok = len < CONFIG_GW_REGION_MAX;
    for (size_t i = 0; ok && i < len; i++)
        ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-';
    if (!ok) {
        config_err(c, config_node(c, v)->line,
                   "%s: region '%s' is invalid: use 1 to %d lowercase letters, digits or '-'", what,
                   config_echo_node(c, v, eb, sizeof eb), CONFIG_GW_REGION_MAX - 1);
        return;
    }
    memcpy(out, s, len);
    out[len] = '\0';
}

enum {
    CONFIG_WS_ID,
    CONFIG_WS_GROUP,
    CONFIG_WS_SOURCES,
    CONFIG_WS_TOKENS,
    CONFIG_WS_TEAM,
    CONFIG_WS_REGION,
    CONFIG_WS_PROJECT,
    CONFIG_WS_NKEYS
};
static const char *const config_ws_keys[CONFIG_WS_NKEYS] = {"id",   "group",  "sources", "tokens",
                                                            "team", "region", "project"};

static void config_workspace(config_ctx_t *c, uint32_t node, size_t i)
{
    config_workspace_t *ws = &c->cfg->workspaces[i];
    char label[CONFIG_LABEL_BUF], what[CONFIG_WHAT_BUF];
    uint32_t k[CONFIG_WS_NKEYS];
    size_t idlen = 0;
    const char *peek = config_peek(c, node, "id", &idlen);

    ws->line = config_node(c, node)->line;
    config_label("workspace", peek, idlen, i, label, sizeof label);
    if (!config_want_map(c, node, label)) return;
    snprintf(what, sizeof what, "in %s", label);
    config_map_keys(c, node, config_ws_keys, CONFIG_WS_NKEYS, k, what);

    if (k[CONFIG_WS_ID] == CONFIG_NONE) {
        config_err(c, ws->line, "%s: missing required key 'id'", label);
    } else {
        uint32_t v = config_val(c, k[CONFIG_WS_ID]);
        snprintf(what, sizeof what, "id of %s", label);
        const char *s = config_want_name(c, v, what, "workspace id");
        if (s && (ws->id = config_strdup(c, s)) != NULL)
            config_key_push(c, &c->wsids, ws->id, strlen(ws->id), i, config_node(c, v)->line);
    }
    if (k[CONFIG_WS_GROUP] == CONFIG_NONE) {
        config_err(c, ws->line, "%s: missing required key 'group'", label);
    } else {
        uint32_t v = config_val(c, k[CONFIG_WS_GROUP]);
        snprintf(what, sizeof what, "group of %s", label);
        const char *s = config_want_name(c, v, what, "group");
        c->ws_group_line[i] = config_node(c, v)->line;
        if (s) ws->group = config_strdup(c, s);
    }
    if (k[CONFIG_WS_TEAM] != CONFIG_NONE) {
        uint32_t v = config_val(c, k[CONFIG_WS_TEAM]);
        snprintf(what, sizeof what, "team of %s", label);
        const char *s = config_want_name(c, v, what, "team");
        if (s) ws->team = config_strdup(c, s);
    } else if (ws->group) {
        ws->team = config_strdup(c, ws->group);
    }
    if (ws->team) config_key_push(c, &c->teams, ws->team, strlen(ws->team), i, ws->line);
    if (k[CONFIG_WS_PROJECT] != CONFIG_NONE) {
        uint32_t v = config_val(c, k[CONFIG_WS_PROJECT]);
        snprintf(what, sizeof what, "project of %s", label);
        const char *s = config_want_name(c, v, what, "project");
        if (s && (ws->project = config_strdup(c, s)) != NULL)
            config_key_push(c, &c->projects, ws->project, strlen(ws->project), i,
                            config_node(c, v)->line);
    }
    if (k[CONFIG_WS_REGION] != CONFIG_NONE) {
        snprintf(what, sizeof what, "region of %s", label);
        config_region(c, config_val(c, k[CONFIG_WS_REGION]), what, ws->region);
    }
    size_t given = 0;
    if (k[CONFIG_WS_SOURCES] != CONFIG_NONE) {
        uint32_t v = config_val(c, k[CONFIG_WS_SOURCES]);
        snprintf(what, sizeof what, "sources of %s", label);
        given += config_count(c, v);
        config_cidrs(c, v, what, &ws->sources, i);
    }
    if (k[CONFIG_WS_TOKENS] != CONFIG_NONE) {
        uint32_t v = config_val(c, k[CONFIG_WS_TOKENS]);
        snprintf(what, sizeof what, "tokens of %s", label);
        given += config_count(c, v);
        config_tokens(c, v, what, ws, i);
    }
    if (given == 0)
        config_err(c, ws->line,
                   "%s has neither sources nor tokens, so no request can be attributed to it",
                   label);
}

static void config_upload(config_ctx_t *c, uint32_t v, const char *label, config_policy_t *pol)
{
    static const char *const keys[] = {"alert_bytes", "action"};
    uint32_t k[2];
    char what[CONFIG_WHAT_BUF], eb[CONFIG_ECHO_BUF];
    snprintf(what, sizeof what, "upload of %s", label);
    if (!config_want_map(c, v, what)) return;
    snprintf(what, sizeof what, "in upload of %s", label);
    config_map_keys(c, v, keys, 2, k, what);
    if (k[0] != CONFIG_NONE) {
        uint32_t n = config_val(c, k[0]);
        uint64_t bytes;
        snprintf(what, sizeof what, "upload.alert_bytes of %s", label);
        const char *s = config_want_str(c, n, what, "a size");
        if (s && (config_parse_size(s, &bytes) < 0 || bytes == 0))
            config_err(c, config_node(c, n)->line,
                       "%s: bad size '%s' (use e.g. 10MB, 512KiB, 1GB; must be greater than 0)",
                       what, config_echo_node(c, n, eb, sizeof eb));
        else if (s)
            pol->upload_alert_bytes = bytes;
    }
    if (k[1] != CONFIG_NONE) {
        uint32_t n = config_val(c, k[1]);
        snprintf(what, sizeof what, "upload.action of %s", label);
        const char *s = config_want_str(c, n, what, "a string");
        if (s && !strcmp(s, "alert"))
            pol->upload_action = UPLOAD_ALERT;
        else if (s && !strcmp(s, "block"))
            pol->upload_action = UPLOAD_BLOCK;
        else if (s)
            config_err(c, config_node(c, n)->line, "%s must be 'alert' or 'block', not '%s'", what,
                       config_echo_node(c, n, eb, sizeof eb));
    }
}

enum {
    CONFIG_P_NAME,
    CONFIG_P_GROUPS,
    CONFIG_P_MODE,
    CONFIG_P_REQUIRE_AUTH,
    CONFIG_P_ALLOW_DOMAINS,
    CONFIG_P_DENY_DOMAINS,
    CONFIG_P_ALLOW_CIDRS,
    CONFIG_P_CONNECT_PORTS,
    CONFIG_P_HTTP_PORTS,
    CONFIG_P_TLS_ONLY_PORTS,
    CONFIG_P_UPLOAD,
    CONFIG_P_NKEYS
};
static const char *const config_policy_keys[CONFIG_P_NKEYS] = {
    "name",        "groups",        "mode",       "require_auth",   "allow_domains", "deny_domains",
    "allow_cidrs", "connect_ports", "http_ports", "tls_only_ports", "upload"};

static void config_policy_groups(config_ctx_t *c, uint32_t v, const char *label,
                                 config_policy_t *pol, size_t i)
{
    char what[CONFIG_WHAT_BUF], eb[CONFIG_ECHO_BUF];
    snprintf(what, sizeof what, "groups of %s", label);
    if (!config_want_seq(c, v, what)) return;
    size_t n = config_node(c, v)->kind == CONFIG_N_SEQ ? config_node(c, v)->n : 0;
    if (n == 0) {
        config_err(c, config_node(c, v)->line, "%s must name at least one workspace group", what);
        return;
    }
    pol->groups = calloc(n, sizeof *pol->groups);
    if (!pol->groups) {
        c->oom = true;
        return;
    }
    for (uint32_t it = config_node(c, v)->first; it != CONFIG_NONE; it = config_node(c, it)->next) {
        const char *s = config_want_item(c, it, what);
        if (!s) continue;
        if (!config_valid_id(s, config_node(c, it)->len)) {
            config_err(c, config_node(c, it)->line, "group '%s' is invalid: %s",
                       config_echo_node(c, it, eb, sizeof eb), config_name_rule);
            continue;
        }
        char *g = config_strdup(c, s);
        if (!g) return;
        pol->groups[pol->ngroups++] = g;
        config_key_push(c, &c->groups, g, strlen(g), i, config_node(c, it)->line);
    }
}

static void config_policy(config_ctx_t *c, uint32_t node, size_t i)
{
    config_policy_t *pol = &c->cfg->policies[i];
    char label[CONFIG_LABEL_BUF], what[CONFIG_WHAT_BUF], eb[CONFIG_ECHO_BUF];
    uint32_t k[CONFIG_P_NKEYS];
    size_t nlen = 0;
    const char *peek = config_peek(c, node, "name", &nlen);

    pol->line = config_node(c, node)->line;
    pol->mode = POLICY_ENFORCE;
    pol->connect_ports = (port_set_t){.v = {443}, .n = 1};
    pol->http_ports = (port_set_t){.v = {80, 8080}, .n = 2};
    pol->tls_only_ports = (port_set_t){.v = {443}, .n = 1};
    pol->upload_alert_bytes = 10485760;
    pol->upload_action = UPLOAD_ALERT;
    pol->allow = domain_set_new();
    pol->deny = domain_set_new();
    if (!pol->allow || !pol->deny) {
        c->oom = true;
        return;
    }
    config_label("policy", peek, nlen, i, label, sizeof label);
    if (!config_want_map(c, node, label)) return;
    snprintf(what, sizeof what, "in %s", label);
    config_map_keys(c, node, config_policy_keys, CONFIG_P_NKEYS, k, what);

    if (k[CONFIG_P_NAME] == CONFIG_NONE) {
        config_err(c, pol->line, "%s: missing required key 'name'", label);
    } else {
        uint32_t v = config_val(c, k[CONFIG_P_NAME]);
        snprintf(what, sizeof what, "name of %s", label);
        const char *s = config_want_name(c, v, what, "policy name");
        if (s && (pol->name = config_strdup(c, s)) != NULL)
            config_key_push(c, &c->polnames, pol->name, strlen(pol->name), i,
                            config_node(c, v)->line);
    }
    if (k[CONFIG_P_GROUPS] == CONFIG_NONE)
        config_err(c, pol->line, "%s: missing required key 'groups'", label);
    else
        config_policy_groups(c, config_val(c, k[CONFIG_P_GROUPS]), label, pol, i);

    if (k[CONFIG_P_MODE] != CONFIG_NONE) {
        uint32_t v = config_val(c, k[CONFIG_P_MODE]);
        snprintf(what, sizeof what, "mode of %s", label);
        const char *s = config_want_str(c, v, what, "a string");
        if (s && !strcmp(s, "enforce"))
            pol->mode = POLICY_ENFORCE;
        else if (s && !strcmp(s, "monitor"))
            pol->mode = POLICY_MONITOR;
        else if (s)
            config_err(c, config_node(c, v)->line, "%s must be 'enforce' or 'monitor', not '%s'",
                       what, config_echo_node(c, v, eb, sizeof eb));
    }
    if (k[CONFIG_P_REQUIRE_AUTH] != CONFIG_NONE) {
        uint32_t v = config_val(c, k[CONFIG_P_REQUIRE_AUTH]);
        snprintf(what, sizeof what, "require_auth of %s", label);
        const char *s = config_want_str(c, v, what, "true or false");
        if (s && config_parse_bool(s, &pol->require_auth) < 0)
            config_err(c, config_node(c, v)->line, "%s must be true or false, not '%s'", what,
                       config_echo_node(c, v, eb, sizeof eb));
    }
    if (k[CONFIG_P_ALLOW_DOMAINS] != CONFIG_NONE) {
        snprintf(what, sizeof what, "allow_domains of %s", label);
        config_domains(c, config_val(c, k[CONFIG_P_ALLOW_DOMAINS]), what, pol->allow,
                       &pol->allow_patterns, &pol->nallow);
    }
    if (k[CONFIG_P_DENY_DOMAINS] != CONFIG_NONE) {
        snprintf(what, sizeof what, "deny_domains of %s", label);
        config_domains(c, config_val(c, k[CONFIG_P_DENY_DOMAINS]), what, pol->deny,
                       &pol->deny_patterns, &pol->ndeny);
    }
    if (k[CONFIG_P_ALLOW_CIDRS] != CONFIG_NONE) {
        snprintf(what, sizeof what, "allow_cidrs of %s", label);
        config_cidrs(c, config_val(c, k[CONFIG_P_ALLOW_CIDRS]), what, &pol->allow_cidrs, SIZE_MAX);
    }
    port_set_t *ports[] = {&pol->connect_ports, &pol->http_ports, &pol->tls_only_ports};
    for (size_t p = 0; p < 3; p++) {
        uint32_t key = k[CONFIG_P_CONNECT_PORTS + p];
        if (key == CONFIG_NONE) continue;
        snprintf(what, sizeof what, "%s of %s", config_policy_keys[CONFIG_P_CONNECT_PORTS + p],
                 label);
        config_ports(c, config_val(c, key), what, ports[p]);
    }
    if (k[CONFIG_P_UPLOAD] != CONFIG_NONE)
        config_upload(c, config_val(c, k[CONFIG_P_UPLOAD]), label, pol);
}

/* ------------------------------------------------------------------------ */
/* Cross checks                                                              */

static int config_key_cmp(const void *pa, const void *pb)
{
    const config_key_t *a = pa, *b = pb;
    size_t l = a->len < b->len ? a->len : b->len;
    int r = memcmp(a->key, b->key, l);
    if (r) return r;
    if (a->len != b->len) return a->len < b->len ? -1 : 1;
    if (a->line != b->line) return a->line < b->line ? -1 : 1;
    return (a->owner > b->owner) - (a->owner < b->owner);
}

static bool config_key_same(const config_key_t *a, const config_key_t *b)
{
    return a->len == b->len && !memcmp(a->key, b->key, a->len);
}

static void config_ws_label(const config_ctx_t *c, size_t i, char *buf, size_t buflen)
{
    const char *id = c->cfg->workspaces[i].id;
    config_label("workspace", id, id ? strlen(id) : 0, i, buf, buflen);
}

static void config_pol_label(const config_ctx_t *c, size_t i, char *buf, size_t buflen)
{
    const char *name = c->cfg->policies[i].name;
    config_label("policy", name, name ? strlen(name) : 0, i, buf, buflen);
}

typedef enum {
    CONFIG_DUP_WSID,
    CONFIG_DUP_POLNAME,
    CONFIG_DUP_GROUP,
    CONFIG_DUP_TOKEN,
    CONFIG_DUP_GW_PROVIDER,
    CONFIG_DUP_GW_GROUP
} config_dup_t;

/* Sort a table and report every entry whose key was already used by another
 * owner (against the first use). */
static void config_dups(config_ctx_t *c, config_keys_t *k, config_dup_t kind)
{
    char eb[CONFIG_ECHO_BUF], l1[CONFIG_LABEL_BUF], l2[CONFIG_LABEL_BUF];
    if (k->n > 1) qsort(k->v, k->n, sizeof *k->v, config_key_cmp);
    for (size_t i = 0; i < k->n;) {
        const config_key_t *first = &k->v[i];
        size_t j = i + 1;
        for (; j < k->n && config_key_same(first, &k->v[j]); j++) {
            const config_key_t *dup = &k->v[j];
            if (dup->owner == first->owner) continue;
            config_echo(dup->key, dup->len, eb, sizeof eb);
            switch (kind) {
            case CONFIG_DUP_WSID:
                config_err(c, dup->line, "duplicate workspace id '%s' (first defined at line %d)",
                           eb, first->line);
                break;
            case CONFIG_DUP_POLNAME:
                config_err(c, dup->line, "duplicate policy name '%s' (first defined at line %d)",
                           eb, first->line);
                break;
            case CONFIG_DUP_GROUP:
                config_pol_label(c, first->owner, l1, sizeof l1);
                config_pol_label(c, dup->owner, l2, sizeof l2);
                config_err(c, dup->line,
                           "group '%s' is covered by two policies: %s (line %d) and %s", eb, l1,
                           first->line, l2);
                break;
            case CONFIG_DUP_TOKEN:
                config_ws_label(c, first->owner, l1, sizeof l1);
                config_ws_label(c, dup->owner, l2, sizeof l2);
                config_err(c, dup->line,
                           "%s uses the same token as %s (line %d): a token must identify one "
                           "workspace",
                           l2, l1, first->line);
                break;
            case CONFIG_DUP_GW_PROVIDER:
                config_err(c, dup->line,
                           "duplicate gateway provider name '%s' (first defined at line %d)", eb,
                           first->line);
                break;
            case CONFIG_DUP_GW_GROUP:
                config_err(c, dup->line, "duplicate gateway group '%s' (first defined at line %d)",
                           eb, first->line);
                break;
            }
        }
        i = j;
    }
}

/* The first entry (by line) with key `name` in a table sorted by
 * config_key_cmp (e.g. the first policy listing a group). */
static const config_key_t *config_key_find(const config_keys_t *k, const char *name, size_t len)
{
    config_key_t probe = {.key = name, .len = len, .line = -1};
    size_t lo = 0, hi = k->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (config_key_cmp(&k->v[mid], &probe) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < k->n && config_key_same(&k->v[lo], &probe)) return &k->v[lo];
    return NULL;
}

static int config_src_cmp(const void *pa, const void *pb)
{
    const config_src_t *a = pa, *b = pb;
    if (a->cidr.addr.family != b->cidr.addr.family)
        return a->cidr.addr.family < b->cidr.addr.family ? -1 : 1;
    int r = memcmp(a->cidr.addr.bytes, b->cidr.addr.bytes, sizeof a->cidr.addr.bytes);
    if (r) return r;
    if (a->cidr.prefix != b->cidr.prefix) return a->cidr.prefix < b->cidr.prefix ? -1 : 1;
    return (a->line > b->line) - (a->line < b->line);
}

/* outer contains every address of inner */
static bool config_cidr_covers(const netcidr_t *outer, const netcidr_t *inner)
{
    if (outer->addr.family != inner->addr.family || outer->prefix > inner->prefix ||
        outer->prefix > 128)
        return false;
    unsigned full = outer->prefix / 8, rem = outer->prefix % 8;
    if (memcmp(outer->addr.bytes, inner->addr.bytes, full) != 0) return false;
    if (rem == 0 || full >= 16) return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rem));
    return ((outer->addr.bytes[full] ^ inner->addr.bytes[full]) & mask) == 0;
}

static bool config_cidr_equal(const netcidr_t *a, const netcidr_t *b)
{
    return a->addr.family == b->addr.family && a->prefix == b->prefix &&
           !memcmp(a->addr.bytes, b->addr.bytes, sizeof a->addr.bytes);
}

/* Sources claimed by two workspaces.  After sorting (family, address,
 * prefix) a CIDR can only overlap an earlier one that contains it; the
 * stack holds the chain of enclosing CIDRs (at most one per prefix length). */
static void config_check_sources(config_ctx_t *c)
{
    const config_src_t *stack[130];
    size_t top = 0;
    char e1[CONFIG_ECHO_BUF], e2[CONFIG_ECHO_BUF], l1[CONFIG_LABEL_BUF], l2[CONFIG_LABEL_BUF];

    if (c->nsrcs > 1) qsort(c->srcs, c->nsrcs, sizeof *c->srcs, config_src_cmp);
    for (size_t i = 0; i < c->nsrcs; i++) {
        const config_src_t *x = &c->srcs[i];
        while (top > 0 && !config_cidr_covers(&stack[top - 1]->cidr, &x->cidr))
            top--;
        for (size_t s = top; s > 0; s--) {
            const config_src_t *y = stack[s - 1];
            if (y->ws == x->ws) continue;
            const config_src_t *later = y->line > x->line ? y : x;
            const config_src_t *earlier = later == x ? y : x;
            config_ws_label(c, later->ws, l1, sizeof l1);
            config_ws_label(c, earlier->ws, l2, sizeof l2);
            config_err(c, later->line, "source %s of %s overlaps source %s of %s (line %d)",
                       config_echo_node(c, later->node, e1, sizeof e1), l1,
                       config_echo_node(c, earlier->node, e2, sizeof e2), l2, earlier->line);
            break;
        }
        if (top > 0 && config_cidr_equal(&stack[top - 1]->cidr, &x->cidr)) continue;
        if (top < sizeof stack / sizeof stack[0]) stack[top++] = x;
    }
}

static void config_cross_checks(config_ctx_t *c)
{
    config_t *cfg = c->cfg;
    char label[CONFIG_LABEL_BUF], eb[CONFIG_ECHO_BUF];

    config_dups(c, &c->wsids, CONFIG_DUP_WSID);
    config_dups(c, &c->polnames, CONFIG_DUP_POLNAME);
    config_dups(c, &c->groups, CONFIG_DUP_GROUP);
    config_dups(c, &c->tokens, CONFIG_DUP_TOKEN);
    for (size_t i = 0; i < cfg->nworkspaces; i++) {
        config_workspace_t *ws = &cfg->workspaces[i];
        if (!ws->group) continue;
        const config_key_t *g = config_key_find(&c->groups, ws->group, strlen(ws->group));
        if (g) {
            ws->policy = &cfg->policies[g->owner];
            continue;
        }
        config_ws_label(c, i, label, sizeof label);
        config_err(c, c->ws_group_line[i], "%s: no policy covers its group '%s'", label,
                   config_echo(ws->group, strlen(ws->group), eb, sizeof eb));
    }
    config_check_sources(c);
    if (!cfg->egress.enabled &&
        !(cfg->gateway.enabled && (cfg->gateway.listen.enabled || cfg->gateway.ext_authz.enabled)))
        config_err(c, c->egress_line ? c->egress_line : 1,
                   "listeners.egress is off and there is no gateway listener: nothing to serve");
    /* equal ports between any two enabled listeners (even on different
     * addresses: one of them would be a surprise), at the later listener */
    static const char *const lnames[] = {"egress", "admin", "gateway", "ext_authz"};
    const config_listen_t *ls[] = {&cfg->egress, &cfg->admin, &cfg->gateway.listen,
                                   &cfg->gateway.ext_authz};
    const int llines[] = {c->egress_line, c->admin_line, c->gateway_line, c->ext_authz_line};
    for (size_t j = 1; j < 4; j++) {
        for (size_t i = 0; i < j; i++) {
            if (!ls[i]->enabled || !ls[j]->enabled || ls[i]->port != ls[j]->port) continue;
            int line = llines[j] ? llines[j] : llines[i] ? llines[i] : 1;
            if (llines[j] || !llines[i])
                config_err(c, line, "listeners.%s and listeners.%s both use port %u", lnames[j],
                           lnames[i], (unsigned)ls[j]->port);
            else
                config_err(c, line,
                           "listeners.%s and listeners.%s both use port %u (listeners.%s is at "
                           "its default: set it to another port)",
                           lnames[j], lnames[i], (unsigned)ls[j]->port, lnames[j]);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* inspect: rules, enable/disable, actions                                   */

/* Inline rules reach the engine as YAML text, so there is one rule parser:
 * each entry of inspect.rules is emitted back (libyaml's emitter) as a
 * one-rule list and handed to inspect_engine_load_with() as a blob named
 * "inspect.rules#N"; an engine error naming that blob is reported at the
 * entry's line. */

#define CONFIG_BLOB_NAME 32
#define CONFIG_MAX_RULES_FILES 64

typedef struct config_yout {
    char *buf;
    size_t len, cap;
    bool overflow;
} config_yout_t;

static int config_yout_write(void *data, unsigned char *buffer, size_t size)
{
    config_yout_t *o = data;
    if (o->len + size + 1 > CONFIG_MAX_FILE * 2u) {
        o->overflow = true;
        return 0;
    }
    void *np = config_grow(o->buf, &o->cap, o->len + size + 1, 1);
    if (!np) {
        o->overflow = true;
        return 0;
    }
    o->buf = np;
    memcpy(o->buf + o->len, buffer, size);
    o->len += size;
    o->buf[o->len] = '\0';
    return 1;
}

/* Emit node i and everything under it; depth is bounded by the tree
 * (CONFIG_MAX_DEPTH), so the recursion is too.  0 ok, -1 emitter error. */
static int config_emit_node(yaml_emitter_t *em, const config_ctx_t *c, uint32_t i)
{
    yaml_event_t ev;
    const config_node_t *n = config_node(c, i);
    switch (n->kind) {
    case CONFIG_N_SCALAR:
        /* plain stays plain (so `true` / `3.0` resolve as written), quoted
         * stays a string */
        if (!yaml_scalar_event_initialize(
                &ev, NULL, NULL, (yaml_char_t *)(c->strs + n->str), (int)n->len, n->plain,
                !n->plain, n->plain ? YAML_PLAIN_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE))
            return -1;
        return yaml_emitter_emit(em, &ev) ? 0 : -1;
    case CONFIG_N_SEQ:
    case CONFIG_N_MAP: {
        bool map = n->kind == CONFIG_N_MAP;
        int ok =
            map ? yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE)
                : yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
                                                       YAML_BLOCK_SEQUENCE_STYLE);
        if (!ok || !yaml_emitter_emit(em, &ev)) return -1;
        for (uint32_t it = n->first; it != CONFIG_NONE; it = config_node(c, it)->next)
            if (config_emit_node(em, c, it) < 0) return -1;
        ok = map ? yaml_mapping_end_event_initialize(&ev) : yaml_sequence_end_event_initialize(&ev);
        return ok && yaml_emitter_emit(em, &ev) ? 0 : -1;
    }
    default:
        return -1; /* an alias, already reported */
    }
}

/* Does the subtree at i hold an alias (already reported)? */
static bool config_has_bad(const config_ctx_t *c, uint32_t i)
{
    const config_node_t *n = config_node(c, i);
    if (n->kind == CONFIG_N_BAD) return true;
    if (n->kind != CONFIG_N_SEQ && n->kind != CONFIG_N_MAP) return false;
    for (uint32_t it = n->first; it != CONFIG_NONE; it = config_node(c, it)->next)
        if (config_has_bad(c, it)) return true;
    return false;
}

/* Duplicate keys in the inline rule at `rule` (the rule parser would keep
 * one of them silently): reported as everywhere else in the file.  true if
 * there is one. */
static bool config_rule_dup_keys(config_ctx_t *c, uint32_t rule, size_t idx)
{
    char label[CONFIG_LABEL_BUF], eb[CONFIG_ECHO_BUF];
    size_t idlen = 0;
    const char *peek = config_peek(c, rule, "id", &idlen);
    bool dup = false;
    config_label("inspect rule", peek, idlen, idx, label, sizeof label);
    for (uint32_t k = config_node(c, rule)->first; k != CONFIG_NONE;) {
        uint32_t v = config_node(c, k)->next;
        const config_node_t *kn = config_node(c, k);
        for (uint32_t p = config_node(c, rule)->first; p != k && kn->kind == CONFIG_N_SCALAR;
             p = config_node(c, config_node(c, p)->next)->next) {
            const config_node_t *pn = config_node(c, p);
            if (pn->kind == CONFIG_N_SCALAR && pn->len == kn->len &&
                !memcmp(config_text(c, p), config_text(c, k), kn->len)) {
                config_err(c, kn->line, "duplicate key '%s' in %s (first at line %d)",
                           config_echo_node(c, k, eb, sizeof eb), label, pn->line);
                dup = true;
                break;
            }
        }
        if (v == CONFIG_NONE) break;
        k = config_node(c, v)->next;
    }
    return dup;
}

/* The rule mapping at `rule` as YAML text of a one-rule list (malloc'ed,
 * NUL-terminated), or NULL (out of memory / too large). */
static char *config_emit_rule(config_ctx_t *c, uint32_t rule, size_t *len)
{
    yaml_emitter_t em;
    yaml_event_t ev;
    config_yout_t o = {0};
    char *res = NULL;

    if (!yaml_emitter_initialize(&em)) {
        c->oom = true;
        return NULL;
    }
    yaml_emitter_set_output(&em, config_yout_write, &o);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1);
    if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) ||
        !yaml_emitter_emit(&em, &ev))
        goto out;
    if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) ||
        !yaml_emitter_emit(&em, &ev))
        goto out;
    if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE) ||
        !yaml_emitter_emit(&em, &ev))
        goto out;
    if (config_emit_node(&em, c, rule) < 0) goto out;
    if (!yaml_sequence_end_event_initialize(&ev) || !yaml_emitter_emit(&em, &ev)) goto out;
    if (!yaml_document_end_event_initialize(&ev, 1) || !yaml_emitter_emit(&em, &ev)) goto out;
    if (!yaml_stream_end_event_initialize(&ev) || !yaml_emitter_emit(&em, &ev)) goto out;
    if (!yaml_emitter_flush(&em) || o.overflow || !o.buf) goto out;
    res = o.buf;
    *len = o.len;
    o.buf = NULL;
out:
    if (!res) c->oom = true;
    free(o.buf);
    yaml_emitter_delete(&em);
    return res;
}

static int config_parse_action(const char *s, inspect_action_t *out)
{
    if (!strcmp(s, "block"))
        *out = INSPECT_BLOCK;
    else if (!strcmp(s, "redact"))
        *out = INSPECT_REDACT;
    else if (!strcmp(s, "alert"))
        *out = INSPECT_ALERT;
    else
        return -1;
    return 0;
}

/* Index of the rule `id` in the engine, or -1. */
static int config_rule_index(const inspect_engine_t *e, const char *id)
{
    size_t n = inspect_rule_count(e);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(inspect_rule_id(e, (int)i), id)) return (int)i;
    return -1;
}

/* inspect.actions: {secret|pii|path: block|redact|alert} */
static void config_inspect_actions(config_ctx_t *c, uint32_t v)
{
    static const char *const keys[] = {"secret", "pii", "path"};
    config_inspect_t *in = &c->cfg->inspect;
    uint32_t k[3];
    char eb[CONFIG_ECHO_BUF], what[CONFIG_WHAT_BUF];
    if (!config_want_map(c, v, "inspect.actions")) return;
    config_map_keys(c, v, keys, 3, k, "in inspect.actions (categories are secret, pii, path)");
    for (size_t i = 0; i < 3; i++) {
        if (k[i] == CONFIG_NONE) continue;
        uint32_t n = config_val(c, k[i]);
        snprintf(what, sizeof what, "inspect.actions.%s", keys[i]);
        const char *s = config_want_str(c, n, what, "an action");
        if (!s) continue;
        if (config_parse_action(s, &in->category_action[i]) < 0) {
            config_err(c, config_node(c, n)->line,
                       "%s must be 'block', 'redact' or 'alert', not '%s'", what,
                       config_echo_node(c, n, eb, sizeof eb));
            continue;
        }
        in->category_set[i] = true;
    }
}

/* Check an enable/disable list against the engine, then apply it. */
static void config_inspect_switch(config_ctx_t *c, uint32_t v, const char *what, bool on,
                                  uint32_t other)
{
    inspect_engine_t *e = c->cfg->inspect.engine;
    char eb[CONFIG_ECHO_BUF];
    if (!config_want_seq(c, v, what)) return;
    for (uint32_t it = config_node(c, v)->first; it != CONFIG_NONE; it = config_node(c, it)->next) {
        const char *s = config_want_item(c, it, what);
        int line = config_node(c, it)->line;
        if (!s || !e) continue;
        if (config_rule_index(e, s) < 0) {
            config_err(c, line, "%s: unknown rule id '%s'", what,
                       config_echo_node(c, it, eb, sizeof eb));
            continue;
        }
        /* the same id in enable and disable: say so once, at the later line */
        bool both = false;
        if (other != CONFIG_NONE && config_node(c, other)->kind == CONFIG_N_SEQ)
            for (uint32_t o = config_node(c, other)->first; o != CONFIG_NONE && !both;
                 o = config_node(c, o)->next)
                both = config_node(c, o)->kind == CONFIG_N_SCALAR &&
                       !strcmp(config_text(c, o), s) && o < it; /* nodes in document order */
        if (both) {
            config_err(c, line, "rule '%s' is both in inspect.enable and inspect.disable",
                       config_echo_node(c, it, eb, sizeof eb));
            continue;
        }
        if (inspect_rule_enable(e, s, on) < 0)
            config_err(c, line, "%s: '%s': the rules do not compile with this change", what,
                       config_echo_node(c, it, eb, sizeof eb));
    }
}

/* inspect.rule_actions: {rule-id: action}, resolved into rule_action[]. */
static void config_inspect_rule_actions(config_ctx_t *c, uint32_t v)
{
    config_inspect_t *in = &c->cfg->inspect;
    char eb[CONFIG_ECHO_BUF], what[CONFIG_WHAT_BUF];
    if (!config_want_map(c, v, "inspect.rule_actions")) return;
    if (config_node(c, v)->kind != CONFIG_N_MAP) return;
    for (uint32_t key = config_node(c, v)->first; key != CONFIG_NONE;) {
        uint32_t val = config_node(c, key)->next;
        if (val == CONFIG_NONE) break;
        const char *id = config_want_str(c, key, "inspect.rule_actions: a rule id", "a string");
        if (id) {
            snprintf(what, sizeof what, "inspect.rule_actions.%s",
                     config_echo_node(c, key, eb, sizeof eb));
            const char *s = config_want_str(c, val, what, "an action");
            inspect_action_t a = INSPECT_ALERT;
            int ri = in->engine ? config_rule_index(in->engine, id) : -1;
            if (in->engine && ri < 0)
                config_err(c, config_node(c, key)->line,
                           "inspect.rule_actions: unknown rule id '%s'",
                           config_echo_node(c, key, eb, sizeof eb));
            if (s && config_parse_action(s, &a) < 0)
                config_err(c, config_node(c, val)->line,
                           "%s must be 'block', 'redact' or 'alert', not '%s'", what,
                           config_echo_node(c, val, eb, sizeof eb));
            else if (s && ri >= 0 && (size_t)ri < in->nrules && in->rule_action)
                in->rule_action[ri] = (int8_t)a;
        }
        key = config_node(c, val)->next;
    }
}

/* Compile the engine: built-in rules, inline rules (as blobs), rules files. */
static void config_inspect_engine(config_ctx_t *c, uint32_t rules, uint32_t files)
{
    config_inspect_t *in = &c->cfg->inspect;
    size_t nbuiltin = 0, ninline = 0;
    inspect_rules_blob_t *blobs = NULL;
    char(*names)[CONFIG_BLOB_NAME] = NULL;
    int *lines = NULL;
    bool usable = true;

    while (inspect_builtin_rules[nbuiltin].name)
        nbuiltin++;
    if (rules != CONFIG_NONE && config_want_seq(c, rules, "inspect.rules"))
        ninline = config_node(c, rules)->kind == CONFIG_N_SEQ ? config_node(c, rules)->n : 0;
    else if (rules != CONFIG_NONE)
        usable = false;
    blobs = calloc(nbuiltin + ninline + 1, sizeof *blobs);
    names = calloc(ninline + 1, sizeof *names);
    lines = calloc(ninline + 1, sizeof *lines);
    if (!blobs || !names || !lines) {
        c->oom = true;
        goto out;
    }
    memcpy(blobs, inspect_builtin_rules, nbuiltin * sizeof *blobs);
    size_t nb = nbuiltin, idx = 0;
    for (uint32_t it = ninline ? config_node(c, rules)->first : CONFIG_NONE; it != CONFIG_NONE;
         it = config_node(c, it)->next, idx++) {
        const config_node_t *n = config_node(c, it);
        if (n->kind != CONFIG_N_MAP) {
            if (n->kind != CONFIG_N_BAD)
                config_err(c, n->line,
                           "inspect.rules: entries must be rules (a mapping with id, category, "
                           "regex or globs...), not a %s",
                           config_kind_name(c, it));
            usable = false;
            continue;
        }
        if (config_has_bad(c, it) || config_rule_dup_keys(c, it, idx)) {
            usable = false;
            continue;
        }
        size_t len = 0;
        char *text = config_emit_rule(c, it, &len);
        if (!text) goto out;
        snprintf(names[idx], sizeof names[idx], "inspect.rules#%zu", idx + 1);
        lines[idx] = n->line;
        blobs[nb++] = (inspect_rules_blob_t){.name = names[idx], .data = text, .len = len};
    }
    in->ninline = ninline;
    if (files != CONFIG_NONE && !config_want_seq(c, files, "inspect.rules_files")) usable = false;
    if (!usable) goto out;

    char err[1024] = "";
    if (inspect_engine_load_with(blobs, (const char *const *)in->rules_files, &in->engine, err,
                                 sizeof err) < 0) {
        in->engine = NULL;
        err[sizeof err - 1] = '\0';
        /* which source: an inline rule ("inspect.rules#N:L: ..."), a rules
         * file ("PATH:L: ...") or neither */
        for (size_t i = 0; i < ninline; i++) {
            size_t nl = strlen(names[i]);
            if (names[i][0] && !strncmp(err, names[i], nl) && err[nl] == ':') {
                const char *body = strchr(err + nl + 1, ':');
                body = body && body[1] == ' ' ? body + 2 : err + nl + 1;
                config_err(c, lines[i], "inspect.rules: %s", body);
                goto out;
            }
        }
        uint32_t it = files != CONFIG_NONE && config_node(c, files)->kind == CONFIG_N_SEQ
                          ? config_node(c, files)->first
                          : CONFIG_NONE;
        for (size_t fi = 0; it != CONFIG_NONE && fi < in->nrules_files;
             it = config_node(c, it)->next, fi++) {
            const char *fp = in->rules_files[fi]; /* as resolved */
            size_t fl = strlen(fp);
            if (!strncmp(err, fp, fl) && err[fl] == ':') {
                config_err(c, config_node(c, it)->line, "inspect.rules_files: %s", err);
                goto out;
            }
        }
        config_err(c,
                   rules != CONFIG_NONE   ? config_node(c, rules)->line
                   : files != CONFIG_NONE ? config_node(c, files)->line
                                          : 1,
                   "inspect: the rules do not compile: %s", err);
        goto out;
    }
    in->nrules = inspect_rule_count(in->engine);
    in->rule_action = calloc(in->nrules ? in->nrules : 1, sizeof *in->rule_action);
    if (!in->rule_action)
        c->oom = true;
    else
        memset(in->rule_action, -1, in->nrules ? in->nrules : 1);
out:
    for (size_t i = nbuiltin; blobs && i < nbuiltin + ninline; i++)
        free((void *)blobs[i].data);
    free(blobs);
    free(names);
    free(lines);
}

enum {
    CONFIG_I_FILES,
    CONFIG_I_RULES,
    CONFIG_I_DISABLE,
    CONFIG_I_ENABLE,
    CONFIG_I_ACTIONS,
    CONFIG_I_RULE_ACTIONS,
    CONFIG_I_NKEYS
};
static const char *const config_inspect_keys[CONFIG_I_NKEYS] = {
    "rules_files", "rules", "disable", "enable", "actions", "rule_actions"};

static void config_inspect(config_ctx_t *c, uint32_t v)
{
    config_inspect_t *in = &c->cfg->inspect;
    uint32_t k[CONFIG_I_NKEYS];
    if (!config_want_map(c, v, "inspect")) return;
    config_map_keys(c, v, config_inspect_keys, CONFIG_I_NKEYS, k, "in inspect");

    uint32_t files = config_val(c, k[CONFIG_I_FILES]);
    if (files != CONFIG_NONE && config_node(c, files)->kind == CONFIG_N_SEQ) {
        size_t n = config_node(c, files)->n;
        if (n > CONFIG_MAX_RULES_FILES) {
            config_err(c, config_node(c, files)->line,
                       "inspect.rules_files: too many files (at most %d)", CONFIG_MAX_RULES_FILES);
            return;
        }
        in->rules_files = calloc(n + 1, sizeof *in->rules_files);
        if (!in->rules_files) {
            c->oom = true;
            return;
        }
        for (uint32_t it = config_node(c, files)->first; it != CONFIG_NONE;
             it = config_node(c, it)->next) {
            const char *s = config_want_item(c, it, "inspect.rules_files");
            if (!s) continue;
            /* relative to the directory of the config file */
            const char *slash = c->cfg->path ? strrchr(c->cfg->path, '/') : NULL;
            if (s[0] != '/' && slash) {
                size_t dl = (size_t)(slash - c->cfg->path) + 1, sl = strlen(s);
                char *full = malloc(dl + sl + 1);
                if (!full) {
                    c->oom = true;
                    return;
                }
                memcpy(full, c->cfg->path, dl);
                memcpy(full + dl, s, sl + 1);
                in->rules_files[in->nrules_files] = full;
            } else if (!(in->rules_files[in->nrules_files] = config_strdup(c, s))) {
                return;
            }
            in->nrules_files++;
        }
        if (in->nrules_files != n) return; /* a bad entry, reported */
    }
    if (c->oom) return;
    config_inspect_engine(c, config_val(c, k[CONFIG_I_RULES]), files);
    if (k[CONFIG_I_ACTIONS] != CONFIG_NONE)
        config_inspect_actions(c, config_val(c, k[CONFIG_I_ACTIONS]));
    if (k[CONFIG_I_ENABLE] != CONFIG_NONE)
        config_inspect_switch(c, config_val(c, k[CONFIG_I_ENABLE]), "inspect.enable", true,
                              config_val(c, k[CONFIG_I_DISABLE]));
    if (k[CONFIG_I_DISABLE] != CONFIG_NONE)
        config_inspect_switch(c, config_val(c, k[CONFIG_I_DISABLE]), "inspect.disable", false,
                              config_val(c, k[CONFIG_I_ENABLE]));
    if (k[CONFIG_I_RULE_ACTIONS] != CONFIG_NONE)
        config_inspect_rule_actions(c, config_val(c, k[CONFIG_I_RULE_ACTIONS]));
}

inspect_action_t config_inspect_action(const config_t *c, const inspect_finding_t *f)
{
    if (!c || !f) return f ? f->action : INSPECT_BLOCK;
    const config_inspect_t *in = &c->inspect;
    if (in->engine && in->rule_action && f->rule >= 0 && (size_t)f->rule < in->nrules &&
        in->rule_action[f->rule] >= 0)
        return (inspect_action_t)in->rule_action[f->rule];
    if ((unsigned)f->category < 3 && in->category_set[f->category])
        return in->category_action[f->category];
    return f->action;
}

/* ------------------------------------------------------------------------ */
/* gateway: the LLM gateway                                                  */

static const char config_vendor_list[] = "openai, azure, anthropic, gemini, mistral or groq";

/* Provider names are path segments (/NAME/...), header values and metric
 * labels: [a-z0-9][a-z0-9_-]*, at most 63 bytes. */
static bool config_gw_valid_name(const char *s, size_t len)
{
    if (len == 0 || len > 63) return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (!alnum && (i == 0 || (ch != '_' && ch != '-'))) return false;
    }
    return true;
}

/* A DNS host name: dot-separated labels of 1..63 letters, digits and '-'
 * (not first or last), at most 253 bytes, no trailing dot. */
static bool config_gw_valid_host(const char *s, size_t len)
{
    if (len == 0 || len > 253) return false;
    size_t lab = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (lab == 0 || lab > 63 || s[i - 1] == '-' || s[i - lab] == '-') return false;
            lab = 0;
            continue;
        }
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-'))
            return false;
        lab++;
    }
    return true;
}

/* The authority of a URL, p..aend ("HOST", "HOST:PORT", "[IPV6]",
 * "[IPV6]:PORT"), shared by the provider endpoints and the Redis store.  A
 * literal must be canonical; a name must be a valid host name.  `scheme` and
 * `v4_example` only shape the messages.  0, or -1 with the error reported
 * (eb: the whole URL, echoed). */
typedef struct config_authority {
    const char *host; /* brackets stripped */
    size_t hlen;
    bool literal; /* host is an address, in addr */
    netaddr_t addr;
    uint64_t port; /* default_port when absent */
} config_authority_t;

static int config_authority(config_ctx_t *c, int line, const char *what, const char *eb,
                            const char *p, const char *aend, const char *scheme,
                            const char *v4_example, uint64_t default_port, config_authority_t *out)
{
    char hb[CONFIG_ECHO_BUF];
    const char *host = p, *hend, *port = NULL;
    bool bracket = *p == '[';
    if (bracket) {
        const char *close = memchr(p, ']', (size_t)(aend - p));
        if (!close || (close + 1 < aend && close[1] != ':')) {
            config_err(c, line, "%s: '%s': an IPv6 address is written [ADDRESS] or [ADDRESS]:PORT",
                       what, eb);
            return -1;
        }
        host = p + 1;
        hend = close;
        if (close + 1 < aend) port = close + 2;
    } else {
        const char *colon = memchr(p, ':', (size_t)(aend - p));
        hend = colon ? colon : aend;
        if (colon) port = colon + 1;
        if (port && memchr(port, ':', (size_t)(aend - port))) {
            config_err(c, line, "%s: '%s': IPv6 addresses must be in brackets, e.g. %s://[::1]",
                       what, eb, scheme);
            return -1;
        }
    }
    size_t hlen = (size_t)(hend - host);
    config_echo(host, hlen, hb, sizeof hb);
    memset(out, 0, sizeof *out);
    if (hlen == 0) {
        config_err(c, line, "%s: '%s' has no host", what, eb);
        return -1;
    }
    if (bracket) {
        if (ipaddr_parse_strict(host, hlen, &out->addr) < 0 || out->addr.family != AF_INET6) {
            config_err(c, line, "%s: '[%s]' is not an IPv6 address", what, hb);
            return -1;
        }
        out->literal = true;
    } else {
        ipaddr_kind_t kind = ipaddr_parse_host(host, hlen, &out->addr, NULL, 0);
        if (kind == IPADDR_LITERAL &&
            (ipaddr_parse_strict(host, hlen, &out->addr) < 0 || out->addr.family != AF_INET)) {
            config_err(c, line,
                       "%s: '%s' is not a canonical IPv4 address (write four decimal numbers, "
                       "e.g. %s)",
                       what, hb, v4_example);
            return -1;
        }
        if (kind != IPADDR_LITERAL && (kind != IPADDR_NAME || !config_gw_valid_host(host, hlen))) {
            config_err(c, line, "%s: '%s' is not a valid host name", what, hb);
            return -1;
        }
        out->literal = kind == IPADDR_LITERAL;
    }
    out->host = host;
    out->hlen = hlen;
    out->port = default_port;
    if (port) {
        char pb[8];
        size_t plen = (size_t)(aend - port);
        if (plen < sizeof pb) {
            memcpy(pb, port, plen);
            pb[plen] = '\0';
        }
        if (plen == 0 || plen >= sizeof pb || config_parse_uint(pb, 65535, &out->port) < 0 ||
            out->port == 0) {
            config_err(c, line, "%s: '%s' has a bad port (must be 1..65535)", what, eb);
            return -1;
        }
    }
    return 0;
}

/* url: https://host[:port][/base] (http:// only for a loopback host). */
static void config_gw_url(config_ctx_t *c, uint32_t v, const char *what, config_gw_endpoint_t *ep)
{
    char eb[CONFIG_ECHO_BUF];
    const char *s = config_want_str(c, v, what, "a URL");
    if (!s) return;
    int line = config_node(c, v)->line;
    size_t len = config_node(c, v)->len;
    const char *end = s + len, *p;
    bool tls;

    config_echo_node(c, v, eb, sizeof eb);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch >= 0x7f) {
            config_err(c, line,
                       "%s: '%s' has a space, control or non-ASCII character (percent-encode it)",
                       what, eb);
            return;
        }
    }
    if (len >= 8 && !strncasecmp(s, "https://", 8)) {
        tls = true;
        p = s + 8;
    } else if (len >= 7 && !strncasecmp(s, "http://", 7)) {
        tls = false;
        p = s + 7;
    } else {
        config_err(c, line,
                   "%s: '%s' is not an https:// URL (write https://HOST[:PORT][/BASE/PATH])", what,
                   eb);
        return;
    }
    if (memchr(p, '?', (size_t)(end - p)) || memchr(p, '#', (size_t)(end - p))) {
        config_err(c, line,
                   "%s: '%s' has a query or fragment: write only https://HOST[:PORT][/BASE/PATH]",
                   what, eb);
        return;
    }
    const char *aend = memchr(p, '/', (size_t)(end - p));
    if (!aend) aend = end;
    if (memchr(p, '@', (size_t)(aend - p))) {
        config_err(c, line,
                   "%s: '%s' has user information (USER@): the provider key is given with 'key', "
                   "never in the URL",
                   what, eb);
        return;
    }
    config_authority_t au;
    if (config_authority(c, line, what, eb, p, aend, "https", "127.0.0.1", tls ? 443 : 80, &au) < 0)
        return;
    static const uint8_t one[16] = {[15] = 1};
    bool loopback = au.literal ? (au.addr.family == AF_INET6 ? !memcmp(au.addr.bytes, one, 16)
                                                             : au.addr.bytes[0] == 127)
                               : au.hlen == 9 && !strncasecmp(au.host, "localhost", 9);
    if (!tls && !loopback) {
        config_err(c, line,
                   "%s: '%s': http:// is only allowed for a loopback host (127.0.0.0/8, ::1, "
                   "localhost); use https://",
                   what, eb);
        return;
    }
    size_t blen = (size_t)(end - aend);
    while (blen > 0 && aend[blen - 1] == '/')
        blen--;
    ep->url = config_strdup(c, s);
    ep->host = strndup(au.host, au.hlen);
    ep->base_path = strndup(aend, blen);
    if (!ep->host || !ep->base_path) {
        c->oom = true;
        return;
    }
    for (char *h = ep->host; *h; h++)
        if (*h >= 'A' && *h <= 'Z') *h = (char)(*h - 'A' + 'a');
    ep->port = (uint16_t)au.port;
    ep->tls = tls;
}

enum { CONFIG_GE_URL, CONFIG_GE_REGION, CONFIG_GE_NKEYS };
static const char *const config_gw_endpoint_keys[CONFIG_GE_NKEYS] = {"url", "region"};

static void config_gw_endpoint(config_ctx_t *c, uint32_t node, const char *plabel, size_t j,
                               config_gw_endpoint_t *ep)
{
    char label[CONFIG_LABEL_BUF + 32], what[CONFIG_WHAT_BUF];
    uint32_t k[CONFIG_GE_NKEYS];
    snprintf(label, sizeof label, "endpoint #%zu of %s", j + 1, plabel);
    ep->line = config_node(c, node)->line;
    if (!config_want_map(c, node, label)) return;
    snprintf(what, sizeof what, "in %s", label);
    config_map_keys(c, node, config_gw_endpoint_keys, CONFIG_GE_NKEYS, k, what);
    if (k[CONFIG_GE_URL] == CONFIG_NONE) {
        config_err(c, ep->line, "%s: missing required key 'url'", label);
    } else {
        snprintf(what, sizeof what, "url of %s", label);
        config_gw_url(c, config_val(c, k[CONFIG_GE_URL]), what, ep);
    }
    if (k[CONFIG_GE_REGION] != CONFIG_NONE) {
        snprintf(what, sizeof what, "region of %s", label);
        config_region(c, config_val(c, k[CONFIG_GE_REGION]), what, ep->region);
    }
}

/* A secret named by reference, env:NAME / file:PATH (a relative path is
 * relative to the config file), loaded now: *value (heap, NUL-terminated;
 * whoever frees it wipes it first) and *len, and, when ref_out is not
 * NULL, the reference as written.  `noun` names the secret in messages
 * ("key", "password").  The value is never echoed: it may be the secret
 * itself written by mistake. */
static void config_secret(config_ctx_t *c, uint32_t v, const char *what, const char *noun,
                          char **ref_out, char **value, size_t *len)
{
    char err[512] = "";
    const char *s = config_want_str(c, v, what, "env:NAME or file:PATH");
    int line = config_node(c, v)->line;
    if (!s) return;
    bool env = !strncmp(s, "env:", 4), file = !strncmp(s, "file:", 5);
    if (!env && !file) {
        config_err(c, line,
                   "%s: write the %s as a reference, env:NAME or file:PATH, never the %s itself",
                   what, noun, noun);
        return;
    }
    if (ref_out && !(*ref_out = config_strdup(c, s))) return;
    char *ref = NULL;
    if (file && s[5]) {
        char *path = config_resolve(c, s + 5);
        if (!path) return;
        ref = malloc(strlen(path) + 6);
        if (ref) {
            memcpy(ref, "file:", 5);
            memcpy(ref + 5, path, strlen(path) + 1);
        }
        free(path);
    } else {
        ref = config_strdup(c, s);
    }
    if (!ref) {
        c->oom = true;
        return;
    }
    llm_secret_t sec;
    if (llm_secret_load(ref, &sec, err, sizeof err) < 0) {
        err[sizeof err - 1] = '\0';
        if (err[0])
            config_err(c, line, "%s: %s", what, err);
        else
            config_err(c, line, "%s: cannot load the %s", what, noun);
    } else {
        *value = sec.value; /* owned by the config now; wiped in config_free */
        *len = sec.len;
    }
    free(ref);
}

/* key: env:NAME / file:PATH, loaded now. */
static void config_gw_key(config_ctx_t *c, uint32_t v, const char *what, config_gw_provider_t *pr)
{
    config_secret(c, v, what, "key", &pr->key_ref, &pr->key, &pr->key_len);
}

enum { CONFIG_GP_NAME, CONFIG_GP_TYPE, CONFIG_GP_KEY, CONFIG_GP_ENDPOINTS, CONFIG_GP_NKEYS };
static const char *const config_gw_provider_keys[CONFIG_GP_NKEYS] = {"name", "type", "key",
                                                                     "endpoints"};

static void config_gw_provider_one(config_ctx_t *c, uint32_t node, size_t i)
{
    config_gw_provider_t *pr = &c->cfg->gateway.providers[i];
    char label[CONFIG_LABEL_BUF], what[CONFIG_WHAT_BUF], eb[CONFIG_ECHO_BUF];
    uint32_t k[CONFIG_GP_NKEYS];
    size_t nlen = 0;
    const char *peek = config_peek(c, node, "name", &nlen);
    llm_vendor_t vendor;

    pr->line = config_node(c, node)->line;
    pr->vendor = -1;
    config_label("provider", peek, nlen, i, label, sizeof label);
    if (!config_want_map(c, node, label)) return;
    snprintf(what, sizeof what, "in %s", label);
    config_map_keys(c, node, config_gw_provider_keys, CONFIG_GP_NKEYS, k, what);

    if (k[CONFIG_GP_NAME] == CONFIG_NONE) {
        config_err(c, pr->line, "%s: missing required key 'name'", label);
    } else {
        uint32_t v = config_val(c, k[CONFIG_GP_NAME]);
        snprintf(what, sizeof what, "name of %s", label);
        const char *s = config_want_str(c, v, what, "a string");
        if (s && !config_gw_valid_name(s, config_node(c, v)->len))
            config_err(c, config_node(c, v)->line,
                       "provider name '%s' is invalid: use 1 to 63 lowercase letters, digits, "
                       "'_' or '-', starting with a letter or digit",
                       config_echo_node(c, v, eb, sizeof eb));
        else if (s && (pr->name = config_strdup(c, s)) != NULL)
            config_key_push(c, &c->gwproviders, pr->name, strlen(pr->name), i,
                            config_node(c, v)->line);
    }
    if (k[CONFIG_GP_TYPE] != CONFIG_NONE) {
        uint32_t v = config_val(c, k[CONFIG_GP_TYPE]);
        snprintf(what, sizeof what, "type of %s", label);
        const char *s = config_want_str(c, v, what, "a string");
        if (s && llm_vendor_parse(s, config_node(c, v)->len, &vendor) == 0)
            pr->vendor = (int)vendor;
        else if (s)
            config_err(c, config_node(c, v)->line, "%s must be %s, not '%s'", what,
                       config_vendor_list, config_echo_node(c, v, eb, sizeof eb));
    } else if (pr->name && llm_vendor_parse(pr->name, strlen(pr->name), &vendor) == 0) {
        pr->vendor = (int)vendor;
    } else if (pr->name) {
        config_err(c, pr->line,
                   "%s: missing 'type' (its name is not a provider type; set type: %s)", label,
                   config_vendor_list);
    }
    if (k[CONFIG_GP_KEY] != CONFIG_NONE) {
        snprintf(what, sizeof what, "key of %s", label);
        config_gw_key(c, config_val(c, k[CONFIG_GP_KEY]), what, pr);
    }
    if (k[CONFIG_GP_ENDPOINTS] == CONFIG_NONE) {
        config_err(c, pr->line, "%s: missing required key 'endpoints'", label);
        return;
    }
    uint32_t v = config_val(c, k[CONFIG_GP_ENDPOINTS]);
    snprintf(what, sizeof what, "endpoints of %s", label);
    if (!config_want_seq(c, v, what)) return;
    size_t n = config_count(c, v);
    if (n == 0 || n > CONFIG_GW_MAX_ENDPOINTS) {
        config_err(c, config_node(c, v)->line, "%s must list 1 to %d endpoints, not %zu", what,
                   CONFIG_GW_MAX_ENDPOINTS, n);
        return;
    }
    size_t j = 0;
    for (uint32_t it = config_node(c, v)->first; it != CONFIG_NONE;
         it = config_node(c, it)->next, j++)
        config_gw_endpoint(c, it, label, j, &pr->endpoints[j]);
    pr->nendpoints = n;
}

/* Without a `providers` list: every vendor under its own name, at its public
 * API, without a key (calls get 503 until one is configured).  Azure is left
 * out: its URL names the customer's resource. */
static void config_gw_default_providers(config_ctx_t *c, int line)
{
    static const struct {
        llm_vendor_t vendor;
        const char *host;
    } defs[] = {
        {LLM_VENDOR_OPENAI, "api.openai.com"},
        {LLM_VENDOR_ANTHROPIC, "api.anthropic.com"},
        {LLM_VENDOR_GEMINI, "generativelanguage.googleapis.com"},
        {LLM_VENDOR_MISTRAL, "api.mistral.ai"},
        {LLM_VENDOR_GROQ, "api.groq.com"},
    };
    size_t n = sizeof defs / sizeof defs[0];
    config_gateway_t *gw = &c->cfg->gateway;
    gw->providers = calloc(n, sizeof *gw->providers);
    if (!gw->providers) {
        c->oom = true;
        return;
    }
    gw->nproviders = n;
    for (size_t i = 0; i < n; i++) {
        config_gw_provider_t *pr = &gw->providers[i];
        config_gw_endpoint_t *ep = &pr->endpoints[0];
        char url[128];
        snprintf(url, sizeof url, "https://%s", defs[i].host);
        pr->vendor = (int)defs[i].vendor;
        pr->line = ep->line = line;
        pr->nendpoints = 1;
        pr->name = config_strdup(c, llm_vendor_name(defs[i].vendor));
        ep->url = config_strdup(c, url);
        ep->host = config_strdup(c, defs[i].host);
        ep->base_path = config_strdup(c, "");
        ep->port = 443;
        ep->tls = true;
        if (!pr->name || !ep->url || !ep->host || !ep->base_path) return;
    }
}

static void config_gw_providers(config_ctx_t *c, uint32_t v)
{
    config_gateway_t *gw = &c->cfg->gateway;
    if (!config_want_seq(c, v, "gateway.providers")) return;
    size_t n = config_count(c, v);
    if (n == 0) {
        config_err(c, config_node(c, v)->line,
                   "gateway.providers must list at least one provider (leave it out for the "
                   "defaults)");
        return;
    }
    if (n > CONFIG_GW_MAX_PROVIDERS) {
        config_err(c, config_node(c, v)->line, "gateway.providers: too many providers (at most %d)",
                   CONFIG_GW_MAX_PROVIDERS);
        return;
    }
    gw->providers = calloc(n, sizeof *gw->providers);
    if (!gw->providers) {
        c->oom = true;
        return;
    }
    gw->nproviders = n;
    size_t i = 0;
    for (uint32_t it = config_node(c, v)->first; it != CONFIG_NONE && !c->oom;
         it = config_node(c, it)->next)
        config_gw_provider_one(c, it, i++);
    config_dups(c, &c->gwproviders, CONFIG_DUP_GW_PROVIDER);
}

/* A list of strings for a gateway group (providers or models); an explicit
 * empty list is refused: leaving the key out allows everything. */
static char **config_gw_list(config_ctx_t *c, uint32_t v, const char *what, const char *noun,
                             size_t *n_out)
{
    *n_out = 0;
    if (!config_want_seq(c, v, what)) return NULL;
    size_t n = config_count(c, v);
    if (n == 0) {
        config_err(c, config_node(c, v)->line,
                   "%s must name at least one %s (leave it out to allow every %s)", what, noun,
                   noun);
        return NULL;
    }
    char **out = calloc(n, sizeof *out);
    if (!out) c->oom = true;
    return out;
}

enum { CONFIG_GG_NAME, CONFIG_GG_PROVIDERS, CONFIG_GG_MODELS, CONFIG_GG_REGION, CONFIG_GG_NKEYS };
static const char *const config_gw_group_keys[CONFIG_GG_NKEYS] = {"name", "providers", "models",
                                                                  "region"};

static void config_gw_group_one(config_ctx_t *c, uint32_t node, size_t i)
{
    config_gateway_t *gw = &c->cfg->gateway;
    config_gw_group_t *g = &gw->groups[i];
    char label[CONFIG_LABEL_BUF], what[CONFIG_WHAT_BUF], eb[CONFIG_ECHO_BUF];
    uint32_t k[CONFIG_GG_NKEYS];
    size_t nlen = 0;
    const char *peek = config_peek(c, node, "name", &nlen);

    g->line = config_node(c, node)->line;
    config_label("gateway group", peek, nlen, i, label, sizeof label);
    if (!config_want_map(c, node, label)) return;
    snprintf(what, sizeof what, "in %s", label);
    config_map_keys(c, node, config_gw_group_keys, CONFIG_GG_NKEYS, k, what);

    if (k[CONFIG_GG_NAME] == CONFIG_NONE) {
        config_err(c, g->line, "%s: missing required key 'name'", label);
    } else {
        uint32_t v = config_val(c, k[CONFIG_GG_NAME]);
        snprintf(what, sizeof what, "name of %s", label);
        const char *s = config_want_name(c, v, what, "group");
        if (s && (g->name = config_strdup(c, s)) != NULL)
            config_key_push(c, &c->gwgroups, g->name, strlen(g->name), i, config_node(c, v)->line);
    }
    if (k[CONFIG_GG_PROVIDERS] != CONFIG_NONE) {
        uint32_t v = config_val(c, k[CONFIG_GG_PROVIDERS]);
        snprintf(what, sizeof what, "providers of %s", label);
        g->providers = config_gw_list(c, v, what, "provider", &g->nproviders);
        for (uint32_t it = g->providers ? config_node(c, v)->first : CONFIG_NONE; it != CONFIG_NONE;
             it = config_node(c, it)->next) {
            const char *s = config_want_item(c, it, what);
            if (!s) continue;
            size_t len = config_node(c, it)->len;
            bool known = false, dup = false;
            for (size_t p = 0; p < gw->nproviders && !known; p++)
                known = gw->providers[p].name && strlen(gw->providers[p].name) == len &&
                        !memcmp(gw->providers[p].name, s, len);
            for (size_t p = 0; p < g->nproviders && !dup; p++)
                dup = !strcmp(g->providers[p], s);
            if (!known)
                config_err(c, config_node(c, it)->line, "%s: unknown provider '%s'", what,
                           config_echo_node(c, it, eb, sizeof eb));
            else if (!dup && !(g->providers[g->nproviders++] = config_strdup(c, s)))
                return;
        }
    }
    if (k[CONFIG_GG_MODELS] != CONFIG_NONE) {
        uint32_t v = config_val(c, k[CONFIG_GG_MODELS]);
        snprintf(what, sizeof what, "models of %s", label);
        g->models = config_gw_list(c, v, what, "model", &g->nmodels);
        for (uint32_t it = g->models ? config_node(c, v)->first : CONFIG_NONE; it != CONFIG_NONE;
             it = config_node(c, it)->next) {
            const char *s = config_want_item(c, it, what);
            if (!s) continue;
            size_t len = config_node(c, it)->len;
            bool ok = len <= 256;
            for (size_t b = 0; ok && b < len; b++)
                ok = (unsigned char)s[b] > 0x20 && (unsigned char)s[b] < 0x7f;
            if (!ok)
                config_err(c, config_node(c, it)->line,
                           "%s: model pattern '%s' is invalid: use at most 256 visible ASCII "
                           "characters ('*' any run, '?' one character)",
                           what, config_echo_node(c, it, eb, sizeof eb));
            else if (!(g->models[g->nmodels++] = config_strdup(c, s)))
                return;
        }
    }
    if (k[CONFIG_GG_REGION] != CONFIG_NONE) {
        snprintf(what, sizeof what, "region of %s", label);
        config_region(c, config_val(c, k[CONFIG_GG_REGION]), what, g->region);
    }
}

static void config_gw_groups(config_ctx_t *c, uint32_t v)
{
    config_gateway_t *gw = &c->cfg->gateway;
    if (!config_want_seq(c, v, "gateway.groups")) return;
    size_t n = config_count(c, v);
    if (n == 0) return;
    gw->groups = calloc(n, sizeof *gw->groups);
    if (!gw->groups) {
        c->oom = true;
        return;
    }
    gw->ngroups = n;
    size_t i = 0;
    for (uint32_t it = config_node(c, v)->first; it != CONFIG_NONE && !c->oom;
         it = config_node(c, it)->next)
        config_gw_group_one(c, it, i++);
    config_dups(c, &c->gwgroups, CONFIG_DUP_GW_GROUP);
}

static void config_gw_tls(config_ctx_t *c, uint32_t v)
{
    static const char *const keys[] = {"cert", "key", "min_version", "client_ca"};
    static const char *const versions[] = {"1.2", "1.3", NULL};
    config_gateway_t *gw = &c->cfg->gateway;
    uint32_t k[4];
    if (!config_want_map(c, v, "gateway.tls")) return;
    config_map_keys(c, v, keys, 4, k, "in gateway.tls");
    if (k[0] != CONFIG_NONE) config_file(c, config_val(c, k[0]), "gateway.tls.cert", &gw->tls_cert);
    if (k[1] != CONFIG_NONE) config_file(c, config_val(c, k[1]), "gateway.tls.key", &gw->tls_key);
    if (k[2] != CONFIG_NONE) {
        int r = config_enum(c, config_val(c, k[2]), "gateway.tls.min_version", versions);
        if (r >= 0) gw->tls_min_version = r == 0 ? 0x0303 : 0x0304;
    }
    if (k[3] != CONFIG_NONE)
        config_file(c, config_val(c, k[3]), "gateway.tls.client_ca", &gw->tls_client_ca);
    if ((k[0] == CONFIG_NONE) != (k[1] == CONFIG_NONE))
        config_err(c, config_node(c, k[0] != CONFIG_NONE ? k[0] : k[1])->line,
                   "gateway.tls: 'cert' and 'key' go together ('%s' is missing)",
                   k[0] == CONFIG_NONE ? "cert" : "key");
    if (k[3] != CONFIG_NONE && k[0] == CONFIG_NONE)
        config_err(c, config_node(c, k[3])->line,
                   "gateway.tls.client_ca needs 'cert' and 'key': client certificates are only "
                   "asked for over TLS");
}

static void config_gw_max_body(config_ctx_t *c, uint32_t v)
{
    char eb[CONFIG_ECHO_BUF];
    const char *s = config_want_str(c, v, "gateway.max_body", "a size");
    uint64_t n;
    if (!s) return;
    int line = config_node(c, v)->line;
    if (config_parse_size(s, &n) < 0)
        config_err(c, line, "gateway.max_body: bad size '%s' (use e.g. 10MiB, 512KiB, 1GiB)",
                   config_echo_node(c, v, eb, sizeof eb));
    else if (n < (1u << 10) || n > (1u << 30))
        config_err(c, line, "gateway.max_body must be between 1KiB and 1GiB, not '%s'",
                   config_echo_node(c, v, eb, sizeof eb));
    else
        c->cfg->gateway.max_body_bytes = n;
}

static void config_gw_upstream(config_ctx_t *c, uint32_t v)
{
    static const char *const keys[] = {"ca_file", "connect_timeout", "first_byte_timeout",
                                       "idle_timeout", "pool_size"};
    config_gateway_t *gw = &c->cfg->gateway;
    uint64_t *dst[] = {&gw->connect_timeout_ms, &gw->first_byte_timeout_ms, &gw->idle_timeout_ms};
    uint32_t k[5];
    char what[CONFIG_WHAT_BUF];
    if (!config_want_map(c, v, "gateway.upstream")) return;
    config_map_keys(c, v, keys, 5, k, "in gateway.upstream");
    if (k[0] != CONFIG_NONE)
        config_file(c, config_val(c, k[0]), "gateway.upstream.ca_file", &gw->ca_file);
    for (size_t i = 1; i < 4; i++) {
        if (k[i] == CONFIG_NONE) continue;
        snprintf(what, sizeof what, "gateway.upstream.%s", keys[i]);
        config_duration(c, config_val(c, k[i]), what, dst[i - 1]);
    }
    if (k[4] != CONFIG_NONE) {
        uint64_t n = gw->pool_size;
        config_uint(c, config_val(c, k[4]), "gateway.upstream.pool_size", 0, 1024, &n);
        gw->pool_size = (size_t)n;
    }
}

static void config_gw_content(config_ctx_t *c, uint32_t v)
{
    static const char *const keys[] = {"block_secrets", "pii", "restricted_files",
                                       "max_prompt_tokens", "log_prompts"};
    static const char *const pii[] = {"redact", "block", "allow", NULL};
    static const char *const files[] = {"block", "allow", NULL};
    static const char *const logp[] = {"metadata_only", "full", NULL};
    config_gateway_t *gw = &c->cfg->gateway;
    uint32_t k[5];
    int r;
    if (!config_want_map(c, v, "gateway.content")) return;
    config_map_keys(c, v, keys, 5, k, "in gateway.content");
    if (k[0] != CONFIG_NONE)
        config_bool(c, config_val(c, k[0]), "gateway.content.block_secrets", &gw->block_secrets);
    if (k[1] != CONFIG_NONE &&
        (r = config_enum(c, config_val(c, k[1]), "gateway.content.pii", pii)) >= 0)
        gw->pii = r == 0 ? GW_PII_REDACT : r == 1 ? GW_PII_BLOCK : GW_PII_ALLOW;
    if (k[2] != CONFIG_NONE &&
        (r = config_enum(c, config_val(c, k[2]), "gateway.content.restricted_files", files)) >= 0)
        gw->block_restricted_files = r == 0;
    if (k[3] != CONFIG_NONE)
        config_uint(c, config_val(c, k[3]), "gateway.content.max_prompt_tokens", 0, 100000000,
                    &gw->max_prompt_tokens);
    if (k[4] != CONFIG_NONE &&
        (r = config_enum(c, config_val(c, k[4]), "gateway.content.log_prompts", logp)) >= 0)
        gw->log_prompts = r == 0 ? GW_LOG_METADATA : GW_LOG_FULL;
}

enum {
    CONFIG_G_TLS,
    CONFIG_G_MAX_BODY,
    CONFIG_G_UPSTREAM,
    CONFIG_G_CONTENT,
    CONFIG_G_PROVIDERS,
    CONFIG_G_GROUPS,
    CONFIG_G_NKEYS
};
static const char *const config_gw_keys[CONFIG_G_NKEYS] = {"tls",     "max_body",  "upstream",
                                                           "content", "providers", "groups"};

/* The gateway: enabled by a `gateway:` section (v) or by listeners.gateway;
 * runs whether or not it is, to settle the listeners. */
static void config_gateway(config_ctx_t *c, uint32_t v)
{
    config_gateway_t *gw = &c->cfg->gateway;
    uint32_t k[CONFIG_G_NKEYS];
    for (size_t i = 0; i < CONFIG_G_NKEYS; i++)
        k[i] = CONFIG_NONE;

    if (!c->gateway_listed) gw->listen.enabled = v != CONFIG_NONE;
    gw->enabled = v != CONFIG_NONE || gw->listen.enabled;
    if (gw->ext_authz.enabled && !gw->enabled)
        config_err(c, c->ext_authz_line ? c->ext_authz_line : 1,
                   "listeners.ext_authz needs the gateway: add a gateway: section");
    if (!gw->enabled) return;
    if (v != CONFIG_NONE && config_want_map(c, v, "gateway")) {
        config_map_keys(c, v, config_gw_keys, CONFIG_G_NKEYS, k, "in gateway");
        if (k[CONFIG_G_TLS] != CONFIG_NONE) config_gw_tls(c, config_val(c, k[CONFIG_G_TLS]));
        if (k[CONFIG_G_MAX_BODY] != CONFIG_NONE)
            config_gw_max_body(c, config_val(c, k[CONFIG_G_MAX_BODY]));
        if (k[CONFIG_G_UPSTREAM] != CONFIG_NONE)
            config_gw_upstream(c, config_val(c, k[CONFIG_G_UPSTREAM]));
        if (k[CONFIG_G_CONTENT] != CONFIG_NONE)
            config_gw_content(c, config_val(c, k[CONFIG_G_CONTENT]));
    }
    if (c->oom) return;
    if (k[CONFIG_G_PROVIDERS] != CONFIG_NONE)
        config_gw_providers(c, config_val(c, k[CONFIG_G_PROVIDERS]));
    else
        config_gw_default_providers(c, v != CONFIG_NONE  ? config_node(c, v)->line
                                       : c->gateway_line ? c->gateway_line
                                                         : 1);
    if (!c->oom && k[CONFIG_G_GROUPS] != CONFIG_NONE)
        config_gw_groups(c, config_val(c, k[CONFIG_G_GROUPS]));
}

const config_gw_provider_t *config_gw_provider(const config_t *c, const char *name, size_t len)
{
    if (!c || !name) return NULL;
    for (size_t i = 0; i < c->gateway.nproviders; i++) {
        const config_gw_provider_t *p = &c->gateway.providers[i];
        if (p->name && strlen(p->name) == len && !memcmp(p->name, name, len)) return p;
    }
    return NULL;
}

const config_gw_group_t *config_gw_group(const config_t *c, const char *group)
{
    if (!c || !group) return NULL;
    for (size_t i = 0; i < c->gateway.ngroups; i++) {
        const config_gw_group_t *g = &c->gateway.groups[i];
        if (g->name && !strcmp(g->name, group)) return g;
    }
    return NULL;
}

const config_workspace_t *config_workspace_by_id(const config_t *c, const char *id, size_t len)
{
    if (!c || !id) return NULL;
    for (size_t i = 0; i < c->nworkspaces; i++) {
        const config_workspace_t *w = &c->workspaces[i];
        if (w->id && strlen(w->id) == len && !memcmp(w->id, id, len)) return w;
    }
    return NULL;
}

/* Iterative, with one backtrack point: on a mismatch after a '*', the star
 * takes one more byte and matching resumes after it.  O(len * strlen(pat))
 * at worst, linear for the usual patterns. */
bool config_glob_match(const char *pat, const char *s, size_t len)
{
    if (!pat || (!s && len)) return false;
    size_t p = 0, i = 0, star = SIZE_MAX, mark = 0;
    while (i < len) {
        if (pat[p] == '*') {
            star = ++p;
            mark = i;
        } else if (pat[p] && (pat[p] == '?' || pat[p] == s[i])) {
            p++;
            i++;
        } else if (star != SIZE_MAX) {
            p = star;
            i = ++mark;
        } else {
            return false;
        }
    }
    while (pat[p] == '*')
        p++;
    return pat[p] == '\0';
}

/* ------------------------------------------------------------------------ */
/* limits: rate limits and budgets                                           */

static const char *const config_lim_scope_names[CONFIG_LIM_NSCOPES] = {"workspace", "agent",
                                                                       "project", "team", "egress"};
/* the keys of the scope mappings in the limits section */
static const char *const config_lim_scope_keys[CONFIG_LIM_NSCOPES] = {
    "workspaces", "agents", "projects", "teams", "egress"};

#define CONFIG_LIM_AGENT_MAX 128 /* bytes of an agent id (x-agent-id) */

/* The keys of a limits entry and the rule each makes.  Entries of the
 * workspaces, agents, projects and teams scopes take every key of
 * config_lim_rule_keys (the rules, then soft_threshold); egress entries
 * only those of config_lim_egress_keys. */
typedef struct config_lim_kind {
    lim_metric_t metric;
    lim_window_t period;
} config_lim_kind_t;

#define CONFIG_LIM_NRULEKEYS 7
static const char *const config_lim_rule_keys[CONFIG_LIM_NRULEKEYS + 1] = {
    "requests_per_minute", "requests_per_day", "tokens_per_minute", "tokens_per_day",
    "tokens_per_month",    "cost_per_day",     "cost_per_month",    "soft_threshold"};
static const config_lim_kind_t config_lim_rule_kinds[CONFIG_LIM_NRULEKEYS] = {
    {LIM_REQUESTS, LIM_WIN_MINUTE}, {LIM_REQUESTS, LIM_WIN_DAY}, {LIM_TOKENS, LIM_WIN_MINUTE},
    {LIM_TOKENS, LIM_WIN_DAY},      {LIM_TOKENS, LIM_WIN_MONTH}, {LIM_COST, LIM_WIN_DAY},
    {LIM_COST, LIM_WIN_MONTH}};

#define CONFIG_LIM_NEGRESSKEYS 4
static const char *const config_lim_egress_keys[CONFIG_LIM_NEGRESSKEYS] = {
    "requests_per_minute", "requests_per_day", "bytes_per_minute", "bytes_per_day"};
static const config_lim_kind_t config_lim_egress_kinds[CONFIG_LIM_NEGRESSKEYS] = {
    {LIM_REQUESTS, LIM_WIN_MINUTE},
    {LIM_REQUESTS, LIM_WIN_DAY},
    {LIM_BYTES, LIM_WIN_MINUTE},
    {LIM_BYTES, LIM_WIN_DAY}};

/* A soft threshold: a percentage 0..99 written "80" or "80%" (0 = off). */
static int config_parse_pct(const char *s, uint32_t *out)
{
    char buf[4];
    uint64_t v;
    size_t len = strlen(s);
    if (len > 0 && s[len - 1] == '%') len--;
    if (len == 0 || len >= sizeof buf) return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (config_parse_uint(buf, 99, &v) < 0) return -1;
    *out = (uint32_t)v;
    return 0;
}

static void config_lim_pct(config_ctx_t *c, uint32_t n, const char *what, uint32_t *dst)
{
    char eb[CONFIG_ECHO_BUF];
    const char *s = config_want_str(c, n, what, "a percentage");
    if (s && config_parse_pct(s, dst) < 0)
        config_err(c, config_node(c, n)->line,
                   "%s must be a percentage from 0 to 99 (e.g. 80 or 80%%; 0 = off), not '%s'",
                   what, config_echo_node(c, n, eb, sizeof eb));
}

/* A duration of min..max ms into *dst; `range` says so in words. */
static void config_lim_duration(config_ctx_t *c, uint32_t n, const char *what, uint64_t min,
                                uint64_t max, const char *range, uint64_t *dst)
{
    char eb[CONFIG_ECHO_BUF];
    uint64_t ms;
    const char *s = config_want_str(c, n, what, "a duration");
    if (!s) return;
    config_echo_node(c, n, eb, sizeof eb);
    if (config_parse_duration_ms(s, &ms) < 0)
        config_err(c, config_node(c, n)->line,
                   "%s: bad duration '%s' (use e.g. 500ms, 10s, 2m, 1h)", what, eb);
    else if (ms < min || ms > max)
        config_err(c, config_node(c, n)->line, "%s must be between %s, not '%s'", what, range, eb);
    else
        *dst = ms;
}

/* Sort a table of names and report each name used again, at the later
 * use: "WHAT: duplicate NOUN 'x' (first at line N)NOTE". */
static void config_lim_dups(config_ctx_t *c, config_keys_t *k, const char *what, const char *noun,
                            const char *note)
{
    char eb[CONFIG_ECHO_BUF];
    if (k->n > 1) qsort(k->v, k->n, sizeof *k->v, config_key_cmp);
    for (size_t i = 0; i < k->n;) {
        size_t j = i + 1;
        for (; j < k->n && config_key_same(&k->v[i], &k->v[j]); j++)
            config_err(c, k->v[j].line, "%s: duplicate %s '%s' (first at line %d)%s", what, noun,
                       config_echo(k->v[j].key, k->v[j].len, eb, sizeof eb), k->v[i].line, note);
        i = j;
    }
}

/* A Redis key prefix: 1..64 of [A-Za-z0-9_.:-]. */
static bool config_lim_valid_prefix(const char *s, size_t len)
{
    if (len == 0 || len > 64) return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == ':' || ch == '-'))
            return false;
    }
    return true;
}

/* store.url: redis://host[:port][/db]; host a name, a canonical IPv4
 * address or [IPv6].  A password never goes in the URL: the whole URL is
 * then not echoed (it may hold the password). */
static void config_lim_redis_url(config_ctx_t *c, uint32_t v, config_limits_t *lim)
{
    static const char what[] = "limits.store.url";
    char eb[CONFIG_ECHO_BUF];
    const char *s = config_want_str(c, v, what, "a URL");
    if (!s) return;
    int line = config_node(c, v)->line;
    size_t len = config_node(c, v)->len;
    const char *end = s + len;

    if (memchr(s, '@', len)) {
        config_err(c, line,
                   "%s has user information (USER:PASSWORD@): put the password in password: "
                   "env:NAME (or file:PATH), never in the URL",
                   what);
        return;
    }
    config_echo_node(c, v, eb, sizeof eb);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch >= 0x7f) {
            config_err(c, line, "%s: '%s' has a space, control or non-ASCII character", what, eb);
            return;
        }
    }
    if (len < 8 || strncasecmp(s, "redis://", 8) != 0) {
        config_err(c, line, "%s: '%s' is not a redis:// URL (write redis://HOST[:PORT][/DB])", what,
                   eb);
        return;
    }
    const char *p = s + 8;
    if (memchr(p, '?', (size_t)(end - p)) || memchr(p, '#', (size_t)(end - p))) {
        config_err(c, line, "%s: '%s' has a query or fragment: write only redis://HOST[:PORT][/DB]",
                   what, eb);
        return;
    }
    const char *aend = memchr(p, '/', (size_t)(end - p));
    if (!aend) aend = end;
    config_authority_t au;
    if (config_authority(c, line, what, eb, p, aend, "redis", "10.0.0.5", 6379, &au) < 0) return;
    uint64_t db = 0;
    char num[16];
    if (aend < end && aend + 1 < end) { /* "/" alone is database 0 */
        size_t dlen = (size_t)(end - aend - 1);
        if (dlen < sizeof num) {
            memcpy(num, aend + 1, dlen);
            num[dlen] = '\0';
        }
        if (dlen >= sizeof num || config_parse_uint(num, INT32_MAX, &db) < 0) {
            config_err(c, line,
                       "%s: '%s' has a bad database number (write /N, N a decimal number, e.g. "
                       "/0)",
                       what, eb);
            return;
        }
    }
    char *url = config_strdup(c, s), *h = strndup(au.host, au.hlen);
    if (!url || !h) {
        free(url);
        free(h);
        c->oom = true;
        return;
    }
    for (char *q = h; *q; q++)
        if (*q >= 'A' && *q <= 'Z') *q = (char)(*q - 'A' + 'a');
    free(lim->redis_url);
    free(lim->redis_host);
    lim->redis_url = url;
    lim->redis_host = h;
    lim->redis_port = (uint16_t)au.port;
    lim->redis_db = (int)db;
}

enum {
    CONFIG_LS_TYPE,
    CONFIG_LS_PATH,
    CONFIG_LS_FLUSH,
    CONFIG_LS_URL, /* this one and the ones after it: redis only */
    CONFIG_LS_PASSWORD,
    CONFIG_LS_PREFIX,
    CONFIG_LS_TIMEOUT,
    CONFIG_LS_ON_ERROR,
    CONFIG_LS_NKEYS
};
static const char *const config_lim_store_keys[CONFIG_LS_NKEYS] = {
    "type", "path", "flush_interval", "url", "password", "key_prefix", "timeout", "on_error"};

static void config_lim_store(config_ctx_t *c, uint32_t v)
{
    static const char *const types[] = {"sqlite", "redis", NULL};
    static const char *const on_error[] = {"fail_closed", "fail_open", NULL};
    config_limits_t *lim = &c->cfg->limits;
    uint32_t k[CONFIG_LS_NKEYS];
    char eb[CONFIG_ECHO_BUF];
    bool known = true;

    if (!config_want_map(c, v, "limits.store")) return;
    config_map_keys(c, v, config_lim_store_keys, CONFIG_LS_NKEYS, k, "in limits.store");
    if (k[CONFIG_LS_TYPE] != CONFIG_NONE) {
        int r = config_enum(c, config_val(c, k[CONFIG_LS_TYPE]), "limits.store.type", types);
        if (r >= 0)
            lim->store = r == 0 ? CONFIG_LIM_STORE_SQLITE : CONFIG_LIM_STORE_REDIS;
        else
            known = false;
    }
    bool redis = lim->store == CONFIG_LIM_STORE_REDIS;
    for (size_t i = CONFIG_LS_PATH; i < CONFIG_LS_NKEYS; i++) {
        if (k[i] == CONFIG_NONE) continue;
        bool redis_only = i >= CONFIG_LS_URL;
        if (known && redis_only != redis) {
            config_err(c, config_node(c, k[i])->line, "limits.store.%s is only for type: %s%s",
                       config_lim_store_keys[i], redis_only ? "redis" : "sqlite",
                       redis_only ? " (the store is sqlite: set type: redis to use Redis)" : "");
            k[i] = CONFIG_NONE;
        }
    }
    if (!known) return;
    if (k[CONFIG_LS_PATH] != CONFIG_NONE) {
        const char *s =
            config_want_str(c, config_val(c, k[CONFIG_LS_PATH]), "limits.store.path", "a path");
        char *d = s ? config_strdup(c, s) : NULL;
        if (d) {
            free(lim->db_path);
            lim->db_path = d;
        }
    }
    if (k[CONFIG_LS_FLUSH] != CONFIG_NONE)
        config_lim_duration(c, config_val(c, k[CONFIG_LS_FLUSH]), "limits.store.flush_interval", 10,
                            60000, "10ms and 60s", &lim->flush_interval_ms);
    if (!redis) return;
    if (k[CONFIG_LS_URL] != CONFIG_NONE)
        config_lim_redis_url(c, config_val(c, k[CONFIG_LS_URL]), lim);
    else
        config_err(c, config_node(c, k[CONFIG_LS_TYPE])->line,
                   "limits.store: type: redis needs 'url' (redis://HOST[:PORT][/DB])");
    if (k[CONFIG_LS_PASSWORD] != CONFIG_NONE) {
        size_t len = 0;
        config_secret(c, config_val(c, k[CONFIG_LS_PASSWORD]), "limits.store.password", "password",
                      NULL, &lim->redis_password, &len);
    }
    if (k[CONFIG_LS_PREFIX] != CONFIG_NONE) {
        uint32_t n = config_val(c, k[CONFIG_LS_PREFIX]);
        const char *s = config_want_str(c, n, "limits.store.key_prefix", "a string");
        char *d = NULL;
        if (s && !config_lim_valid_prefix(s, config_node(c, n)->len))
            config_err(c, config_node(c, n)->line,
                       "limits.store.key_prefix '%s' is invalid: use 1 to 64 letters, digits, "
                       "'_', '.', ':' or '-'",
                       config_echo_node(c, n, eb, sizeof eb));
        else if (s && (d = config_strdup(c, s)) != NULL) {
            free(lim->key_prefix);
            lim->key_prefix = d;
        }
    }
    if (k[CONFIG_LS_TIMEOUT] != CONFIG_NONE)
        config_lim_duration(c, config_val(c, k[CONFIG_LS_TIMEOUT]), "limits.store.timeout", 1,
                            10000, "1ms and 10s", &lim->redis_timeout_ms);
    if (k[CONFIG_LS_ON_ERROR] != CONFIG_NONE) {
        int r =
            config_enum(c, config_val(c, k[CONFIG_LS_ON_ERROR]), "limits.store.on_error", on_error);
        if (r >= 0) lim->fail_open = r == 1;
    }
}

static void config_lim_time_zone(config_ctx_t *c, uint32_t v)
{
    config_limits_t *lim = &c->cfg->limits;
    char eb[CONFIG_ECHO_BUF], err[256] = "";
    const char *s = config_want_str(c, v, "limits.time_zone", "a time zone name");
    if (!s) return;
    int line = config_node(c, v)->line;
    char *name = config_strdup(c, s);
    if (!name) return;
    tz_t *tz = NULL;
    if (strcmp(s, "UTC") != 0) {
        int rc = tz_load(s, &tz, err, sizeof err);
        err[sizeof err - 1] = '\0';
        config_echo_node(c, v, eb, sizeof eb);
        if (rc == TZ_ENOMEM) {
            c->oom = true;
        } else if (rc == TZ_EINVAL) { /* tz's message would quote the name unsanitised */
            config_err(c, line,
                       "limits.time_zone: '%s' is not a time zone name (write an IANA name such "
                       "as Europe/Berlin, or UTC)",
                       eb);
        } else if (rc == TZ_ENOENT) {
            config_err(c, line, "limits.time_zone: unknown time zone '%s' (%s)", eb,
                       err[0] ? err : "no such zone");
        } else if (rc != TZ_OK) {
            config_err(c, line, "limits.time_zone: %s", err[0] ? err : "invalid time zone");
        }
        if (rc != TZ_OK) {
            free(name);
            return;
        }
    }
    free(lim->time_zone);
    tz_free(lim->tz);
    lim->time_zone = name;
    lim->tz = tz;
}

static void config_lim_admin_token(config_ctx_t *c, uint32_t v)
{
    config_limits_t *lim = &c->cfg->limits;
    const char *s = config_want_str(c, v, "limits.admin_token", "a string");
    if (!s) return;
    /* Never echo the value: it may be a clear-text secret. */
    if (config_parse_token(s, config_node(c, v)->len, lim->admin_token_sha256) < 0) {
        config_err(c, config_node(c, v)->line,
                   "limits.admin_token must be written as 'sha256:<64 hex digits>': store the "
                   "SHA-256 hash of the token, never the token itself (make one with `cdeguard "
                   "hash-token`)");
        return;
    }
    lim->admin_token_set = true;
}

enum {
    CONFIG_LP_MODEL,
    CONFIG_LP_INPUT,
    CONFIG_LP_OUTPUT,
    CONFIG_LP_CACHE_READ,
    CONFIG_LP_CACHE_WRITE,
    CONFIG_LP_NKEYS
};
static const char *const config_lim_price_keys[CONFIG_LP_NKEYS] = {"model", "input", "output",
                                                                   "cache_read", "cache_write"};

/* One entry of limits.prices into lim->prices[lim->nprices] (counted only
 * when it is complete and valid). */
static void config_lim_price(config_ctx_t *c, uint32_t node, size_t i, config_keys_t *models)
{
    config_limits_t *lim = &c->cfg->limits;
    char label[CONFIG_LABEL_BUF], what[CONFIG_WHAT_BUF], eb[CONFIG_ECHO_BUF], err[160];
    uint32_t k[CONFIG_LP_NKEYS];
    const char *val[CONFIG_LP_NKEYS] = {NULL};
    size_t mlen = 0;
    const char *peek = config_peek(c, node, "model", &mlen);
    int line = config_node(c, node)->line;
    bool ok = true;

    config_label("limits.prices", peek, mlen, i, label, sizeof label);
    if (!config_want_map(c, node, label)) return;
    snprintf(what, sizeof what, "in %s", label);
    config_map_keys(c, node, config_lim_price_keys, CONFIG_LP_NKEYS, k, what);
    for (size_t j = 0; j < CONFIG_LP_NKEYS; j++) {
        if (k[j] == CONFIG_NONE) {
            if (j <= CONFIG_LP_OUTPUT) {
                config_err(c, line, "%s: missing required key '%s'", label,
                           config_lim_price_keys[j]);
                ok = false;
            }
            continue;
        }
        uint32_t v = config_val(c, k[j]);
        snprintf(what, sizeof what, "%s of %s", config_lim_price_keys[j], label);
        val[j] = config_want_str(c, v, what, j == CONFIG_LP_MODEL ? "a string" : "a price");
        if (!val[j]) {
            ok = false;
            continue;
        }
        size_t len = config_node(c, v)->len;
        if (j == CONFIG_LP_MODEL) {
            bool good = len <= 256;
            for (size_t b = 0; good && b < len; b++)
                good = (unsigned char)val[j][b] > 0x20 && (unsigned char)val[j][b] < 0x7f;
            if (!good) {
                config_err(c, config_node(c, v)->line,
                           "%s: model pattern '%s' is invalid: use at most 256 visible ASCII "
                           "characters ('*' any run, '?' one character)",
                           label, config_echo_node(c, v, eb, sizeof eb));
                ok = false;
            } else {
                config_key_push(c, models, val[j], len, i, config_node(c, v)->line);
            }
            continue;
        }
        uint64_t pico;
        err[0] = '\0';
        if (lim_price_parse_usd_per_mtok(val[j], &pico, err, sizeof err) != LIM_PRICE_OK) {
            err[sizeof err - 1] = '\0';
            config_err(c, config_node(c, v)->line,
                       "%s: %s (USD per million tokens, at most 6 decimals)", what,
                       err[0] ? err : "invalid price");
            ok = false;
        }
    }
    if (!ok) return;
    err[0] = '\0';
    int rc = lim_price_set(&lim->prices[lim->nprices], val[CONFIG_LP_MODEL], val[CONFIG_LP_INPUT],
                           val[CONFIG_LP_OUTPUT], val[CONFIG_LP_CACHE_READ],
                           val[CONFIG_LP_CACHE_WRITE], err, sizeof err);
    if (rc == LIM_PRICE_ENOMEM) {
        c->oom = true;
    } else if (rc != LIM_PRICE_OK) {
        err[sizeof err - 1] = '\0';
        config_err(c, line, "%s: %s", label, err[0] ? err : "invalid price");
    } else {
        lim->nprices++;
    }
}

static void config_lim_prices(config_ctx_t *c, uint32_t v)
{
    config_limits_t *lim = &c->cfg->limits;
    config_keys_t models = {0};
    if (!config_want_seq(c, v, "limits.prices")) return;
    size_t n = config_node(c, v)->kind == CONFIG_N_SEQ ? config_node(c, v)->n : 0;
    if (n == 0) return;
    lim->prices = calloc(n, sizeof *lim->prices);
    if (!lim->prices) {
        c->oom = true;
        return;
    }
    size_t i = 0;
    for (uint32_t it = config_node(c, v)->first; it != CONFIG_NONE && !c->oom;
         it = config_node(c, it)->next)
        config_lim_price(c, it, i++, &models);
    config_lim_dups(c, &models, "limits.prices", "model pattern",
                    ": the first matching entry wins, so this one would never apply");
    free(models.v);
}

/* The rules of one entry (value v) into e. */
static void config_lim_rules(config_ctx_t *c, uint32_t v, const char *label,
                             config_lim_scope_t scope, config_lim_entry_t *e)
{
    bool egress = scope == CONFIG_LIM_EGRESS;
    const char *const *keys = egress ? config_lim_egress_keys : config_lim_rule_keys;
    const config_lim_kind_t *kinds = egress ? config_lim_egress_kinds : config_lim_rule_kinds;
    size_t nrules = egress ? CONFIG_LIM_NEGRESSKEYS : CONFIG_LIM_NRULEKEYS;
    size_t nkeys = egress ? nrules : nrules + 1; /* + soft_threshold */
    uint32_t k[CONFIG_LIM_NRULEKEYS + 1];
    char what[CONFIG_WHAT_BUF + CONFIG_LABEL_BUF], eb[CONFIG_ECHO_BUF];
    uint32_t soft = c->cfg->limits.soft_pct;

    if (!config_want_map(c, v, label)) return;
    snprintf(what, sizeof what, "in %s", label);
    config_map_keys_list(c, v, keys, nkeys, k, what, true);
    if (!egress && k[nrules] != CONFIG_NONE) {
        snprintf(what, sizeof what, "soft_threshold of %s", label);
        config_lim_pct(c, config_val(c, k[nrules]), what, &soft);
    }
    for (size_t j = 0; j < nrules; j++) {
        if (k[j] == CONFIG_NONE) continue;
        uint32_t n = config_val(c, k[j]);
        snprintf(what, sizeof what, "%s of %s", keys[j], label);
        const char *s = config_want_str(c, n, what, "a number");
        if (!s) continue;
        int line = config_node(c, n)->line;
        uint64_t max = 0, micro;
        config_echo_node(c, n, eb, sizeof eb);
        switch (kinds[j].metric) {
        case LIM_COST:
            /* micro-USD (lim_price's unit per million tokens) -> nano-USD */
            if (lim_price_parse_usd_per_mtok(s, &micro, NULL, 0) == LIM_PRICE_OK)
                max = micro * 1000;
            if (max == 0)
                config_err(c, line,
                           "%s must be a positive amount of USD, at most %d with at most 6 "
                           "decimals (e.g. 100 or 12.50), not '%s'",
                           what, LIM_PRICE_MAX_USD, eb);
            break;
        case LIM_BYTES:
            if (config_parse_size(s, &max) < 0) max = 0;
            if (max == 0)
                config_err(c, line,
                           "%s must be a positive size (e.g. 100MB, 64MiB or a number of "
                           "bytes), not '%s'",
                           what, eb);
            break;
        default:
            if (config_parse_uint(s, UINT64_MAX, &max) < 0) max = 0;
            if (max == 0) config_err(c, line, "%s must be a positive integer, not '%s'", what, eb);
            break;
        }
        if (max == 0 || e->nrules >= CONFIG_LIM_MAX_RULES) continue;
        e->rules[e->nrules++] = (lim_rule_t){
            .metric = kinds[j].metric,
            .period = kinds[j].period,
            .max = max,
            .soft_pct = kinds[j].period == LIM_WIN_MINUTE ? 0 : soft,
        };
    }
}

/* Whether the name of an entry of `scope` names something that exists
 * (else reported); "*" always does. */
static bool config_lim_name_ok(config_ctx_t *c, config_lim_scope_t scope, const char *s, size_t len,
                               int line, const char *what)
{
    char eb[CONFIG_ECHO_BUF], eb2[CONFIG_ECHO_BUF];
    if (len == 1 && s[0] == '*') return true;
    config_echo(s, len, eb, sizeof eb);
    switch (scope) {
    case CONFIG_LIM_WORKSPACE:
    case CONFIG_LIM_EGRESS:
        if (config_key_find(&c->wsids, s, len)) return true;
        config_err(c, line,
                   "%s: unknown workspace '%s' (name a workspace id, or \"*\" for every workspace "
                   "without its own entry)",
                   what, eb);
        return false;
    case CONFIG_LIM_PROJECT:
        if (config_key_find(&c->projects, s, len)) return true;
        config_err(c, line,
                   "%s: no workspace has the project '%s' (set it with project: in the "
                   "workspace)",
                   what, eb);
        return false;
    case CONFIG_LIM_TEAM:
        if (config_key_find(&c->teams, s, len)) return true;
        config_err(c, line,
                   "%s: no workspace has the team '%s' (a workspace's team is its team:, else its "
                   "group)",
                   what, eb);
        return false;
    case CONFIG_LIM_AGENT: {
        const char *slash = memchr(s, '/', len);
        if (!slash || slash == s) {
            config_err(c, line, "%s: '%s' must be \"*\" or WORKSPACE/AGENT-ID", what, eb);
            return false;
        }
        size_t wlen = (size_t)(slash - s), alen = len - wlen - 1;
        bool ok = alen > 0 && alen <= CONFIG_LIM_AGENT_MAX;
        for (size_t i = 0; ok && i < alen; i++)
            ok = (unsigned char)slash[1 + i] > 0x20 && (unsigned char)slash[1 + i] < 0x7f;
        if (!ok) {
            config_err(c, line,
                       "%s: agent id '%s' in '%s' is invalid: use 1 to %d visible ASCII "
                       "characters, no spaces",
                       what, config_echo(slash + 1, alen, eb2, sizeof eb2), eb,
                       CONFIG_LIM_AGENT_MAX);
            return false;
        }
        if (config_key_find(&c->wsids, s, wlen)) return true;
        config_err(c, line, "%s: unknown workspace '%s' in '%s'", what,
                   config_echo(s, wlen, eb2, sizeof eb2), eb);
        return false;
    }
    default:
        return false;
    }
}

static int config_lim_entry_cmp(const void *pa, const void *pb)
{
    const config_lim_entry_t *a = pa, *b = pb;
    if (!a->name || !b->name) return (a->name != NULL) - (b->name != NULL);
    return strcmp(a->name, b->name);
}

/* limits.<scope>: a mapping name -> rules. */
static void config_lim_scope(config_ctx_t *c, uint32_t v, config_lim_scope_t scope)
{
    config_limits_t *lim = &c->cfg->limits;
    char what[32], label[CONFIG_LABEL_BUF + 32], eb[CONFIG_ECHO_BUF];
    config_keys_t seen = {0};

    snprintf(what, sizeof what, "limits.%s", config_lim_scope_keys[scope]);
    if (!config_want_map(c, v, what)) return;
    size_t n = config_node(c, v)->kind == CONFIG_N_MAP ? config_node(c, v)->n / 2 : 0;
    if (n == 0) return;
    config_lim_entry_t *entries = calloc(n, sizeof *entries);
    if (!entries) {
        c->oom = true;
        return;
    }
    lim->entries[scope] = entries;
    for (uint32_t key = config_node(c, v)->first; key != CONFIG_NONE && !c->oom;) {
        uint32_t val = config_node(c, key)->next;
        if (val == CONFIG_NONE) break;
        const config_node_t *kn = config_node(c, key);
        config_lim_entry_t *e = &entries[lim->nentries[scope]];
        e->line = kn->line;
        if (kn->kind == CONFIG_N_BAD) {
            /* already reported */
        } else if (kn->kind != CONFIG_N_SCALAR) {
            config_err(c, kn->line, "%s: the name of an entry must be a string, not a %s", what,
                       config_kind_name(c, key));
        } else if (kn->len == 0 || config_is_null(c, key) ||
                   memchr(config_text(c, key), '\0', kn->len)) {
            config_err(c, kn->line, "%s: an entry has an empty name (or one with a NUL character)",
                       what);
        } else {
            const char *s = config_text(c, key);
            snprintf(label, sizeof label, "%s '%s'", what, config_echo(s, kn->len, eb, sizeof eb));
            config_key_push(c, &seen, s, kn->len, lim->nentries[scope], kn->line);
            if (config_lim_name_ok(c, scope, s, kn->len, kn->line, what))
                e->name = config_strdup(c, s);
            config_lim_rules(c, val, label, scope, e);
            lim->nentries[scope]++;
        }
        key = config_node(c, val)->next;
    }
    config_lim_dups(c, &seen, what, "entry", "");
    free(seen.v);
    if (lim->nentries[scope] > 1)
        qsort(entries, lim->nentries[scope], sizeof *entries, config_lim_entry_cmp);
}

enum {
    CONFIG_L_TIME_ZONE,
    CONFIG_L_SOFT,
    CONFIG_L_STORE,
    CONFIG_L_ADMIN_TOKEN,
    CONFIG_L_UNPRICED,
    CONFIG_L_PRICES,
    CONFIG_L_SCOPES, /* CONFIG_LIM_NSCOPES keys, in config_lim_scope_t order */
    CONFIG_L_NKEYS = CONFIG_L_SCOPES + CONFIG_LIM_NSCOPES
};
static const char *const config_lim_keys[CONFIG_L_NKEYS] = {
    "time_zone",  "soft_threshold", "store",    "admin_token", "unpriced", "prices",
    "workspaces", "agents",         "projects", "teams",       "egress"};

/* The limits section (v).  Runs after the cross checks: entry names are
 * looked up in the sorted tables of workspace ids, teams and projects. */
static void config_limits(config_ctx_t *c, uint32_t v)
{
    static const char *const unpriced[] = {"refuse", "free", NULL};
    config_limits_t *lim = &c->cfg->limits;
    uint32_t k[CONFIG_L_NKEYS];

    lim->enabled = true;
    if (!config_want_map(c, v, "limits")) return;
    config_map_keys(c, v, config_lim_keys, CONFIG_L_NKEYS, k, "in limits");
    if (k[CONFIG_L_TIME_ZONE] != CONFIG_NONE)
        config_lim_time_zone(c, config_val(c, k[CONFIG_L_TIME_ZONE]));
    if (k[CONFIG_L_SOFT] != CONFIG_NONE)
        config_lim_pct(c, config_val(c, k[CONFIG_L_SOFT]), "limits.soft_threshold", &lim->soft_pct);
    if (k[CONFIG_L_STORE] != CONFIG_NONE) config_lim_store(c, config_val(c, k[CONFIG_L_STORE]));
    if (k[CONFIG_L_ADMIN_TOKEN] != CONFIG_NONE)
        config_lim_admin_token(c, config_val(c, k[CONFIG_L_ADMIN_TOKEN]));
    if (k[CONFIG_L_UNPRICED] != CONFIG_NONE) {
        int r = config_enum(c, config_val(c, k[CONFIG_L_UNPRICED]), "limits.unpriced", unpriced);
        if (r >= 0) lim->unpriced_free = r == 1;
    }
    if (!c->oom && k[CONFIG_L_PRICES] != CONFIG_NONE)
        config_lim_prices(c, config_val(c, k[CONFIG_L_PRICES]));
    if (c->teams.n > 1) qsort(c->teams.v, c->teams.n, sizeof *c->teams.v, config_key_cmp);
    if (c->projects.n > 1)
        qsort(c->projects.v, c->projects.n, sizeof *c->projects.v, config_key_cmp);
    for (size_t s = 0; s < CONFIG_LIM_NSCOPES && !c->oom; s++)
        if (k[CONFIG_L_SCOPES + s] != CONFIG_NONE)
            config_lim_scope(c, config_val(c, k[CONFIG_L_SCOPES + s]), (config_lim_scope_t)s);
}

const config_lim_entry_t *config_lim_entry(const config_t *c, config_lim_scope_t scope,
                                           const char *name)
{
    if (!c || (unsigned)scope >= CONFIG_LIM_NSCOPES) return NULL;
    const config_lim_entry_t *v = c->limits.entries[scope];
    size_t n = c->limits.nentries[scope];
    if (!v || n == 0) return NULL;
    config_lim_entry_t probe = {.name = (char *)(name ? name : "*")};
    const config_lim_entry_t *e = bsearch(&probe, v, n, sizeof *v, config_lim_entry_cmp);
    if (e || !name) return e;
    probe.name = (char *)"*";
    return bsearch(&probe, v, n, sizeof *v, config_lim_entry_cmp);
}

const char *config_lim_scope_name(config_lim_scope_t s)
{
    return (unsigned)s < CONFIG_LIM_NSCOPES ? config_lim_scope_names[s] : "?";
}

/* ------------------------------------------------------------------------ */
/* Top level                                                                 */

enum {
    CONFIG_T_VERSION,
    CONFIG_T_LISTENERS,
    CONFIG_T_WORKERS,
    CONFIG_T_AUDIT,
    CONFIG_T_TIMEOUTS,
    CONFIG_T_MAX_HEADER,
    CONFIG_T_SUBNETS,
    CONFIG_T_DENY,
    CONFIG_T_WORKSPACES,
    CONFIG_T_POLICIES,
    CONFIG_T_INSPECT,
    CONFIG_T_GATEWAY,
    CONFIG_T_LIMITS,
    CONFIG_T_NKEYS
};
static const char *const config_top_keys[CONFIG_T_NKEYS] = {
    "version",          "listeners",         "workers",      "audit",      "timeouts",
    "max_header_bytes", "workspace_subnets", "deny_domains", "workspaces", "policies",
    "inspect",          "gateway",           "limits"};

static void config_defaults(config_ctx_t *c)
{
    config_t *cfg = c->cfg;
    cfg->version = 1;
    cfg->egress = (config_listen_t){.host = "127.0.0.1", .port = 3128, .enabled = true};
    cfg->admin = (config_listen_t){.host = "127.0.0.1", .port = 9090, .enabled = true};
    cfg->workers = 0;
    cfg->audit_sink = AUDIT_FILE;
    cfg->audit_path = config_strdup(c, "cdeguard-audit.log");
    cfg->path = config_strdup(c, c->name);
    cfg->client_header_timeout_ms = 10000;
    cfg->idle_timeout_ms = 60000;
    cfg->connect_timeout_ms = 10000;
    cfg->client_hello_timeout_ms = 10000;
    cfg->drain_timeout_ms = 30000;
    cfg->max_header_bytes = 65536;
    cfg->global_deny = domain_set_new();
    if (!cfg->global_deny) c->oom = true;
    config_gateway_t *gw = &cfg->gateway;
    gw->listen = (config_listen_t){.host = "127.0.0.1", .port = 8080, .enabled = false};
    gw->ext_authz = (config_listen_t){.host = "127.0.0.1", .port = 8081, .enabled = false};
    gw->tls_min_version = 0x0304;
    gw->max_body_bytes = 10485760;
    gw->connect_timeout_ms = 10000;
    gw->first_byte_timeout_ms = 120000;
    gw->idle_timeout_ms = 300000;
    gw->pool_size = 16;
    gw->block_secrets = true;
    gw->pii = GW_PII_REDACT;
    gw->block_restricted_files = true;
    gw->max_prompt_tokens = 128000;
    gw->log_prompts = GW_LOG_METADATA;
    config_limits_t *lim = &cfg->limits;
    lim->enabled = false;
    lim->time_zone = config_strdup(c, "UTC");
    lim->tz = NULL;
    lim->soft_pct = 80;
    lim->store = CONFIG_LIM_STORE_SQLITE;
    lim->db_path = config_strdup(c, "cdeguard-usage.db");
    lim->flush_interval_ms = 1000;
    lim->redis_port = 6379;
    lim->key_prefix = config_strdup(c, "cdeguard");
    lim->redis_timeout_ms = 250;
}

static void config_build(config_ctx_t *c, uint32_t root)
{
    config_t *cfg = c->cfg;
    uint32_t k[CONFIG_T_NKEYS];
    char eb[CONFIG_ECHO_BUF];

    if (root == CONFIG_NONE || config_is_null(c, root)) {
        config_err(c, root == CONFIG_NONE ? 1 : config_node(c, root)->line,
                   "the file is empty: a config starts with 'version: 1'");
        return;
    }
    if (config_node(c, root)->kind != CONFIG_N_MAP) {
        if (config_node(c, root)->kind != CONFIG_N_BAD)
            config_err(c, config_node(c, root)->line,
                       "the top level must be a mapping of settings (key: value), not a %s",
                       config_kind_name(c, root));
        return;
    }
    config_map_keys(c, root, config_top_keys, CONFIG_T_NKEYS, k, "at top level");

    if (k[CONFIG_T_VERSION] == CONFIG_NONE) {
        config_err(c, config_node(c, root)->line,
                   "missing required key 'version' (this cdeguard reads 'version: 1')");
    } else {
        uint32_t v = config_val(c, k[CONFIG_T_VERSION]);
        const char *s = config_want_str(c, v, "version", "a number");
        if (s && strcmp(s, "1") != 0)
            config_err(c, config_node(c, v)->line,
                       "unsupported version '%s': this cdeguard reads version 1",
                       config_echo_node(c, v, eb, sizeof eb));
    }
    if (k[CONFIG_T_LISTENERS] != CONFIG_NONE)
        config_listeners(c, config_val(c, k[CONFIG_T_LISTENERS]));
    if (k[CONFIG_T_WORKERS] != CONFIG_NONE) config_workers(c, config_val(c, k[CONFIG_T_WORKERS]));
    if (k[CONFIG_T_AUDIT] != CONFIG_NONE) config_audit(c, config_val(c, k[CONFIG_T_AUDIT]));
    if (k[CONFIG_T_TIMEOUTS] != CONFIG_NONE)
        config_timeouts(c, config_val(c, k[CONFIG_T_TIMEOUTS]));
    if (k[CONFIG_T_MAX_HEADER] != CONFIG_NONE)
        config_max_header(c, config_val(c, k[CONFIG_T_MAX_HEADER]));
    if (k[CONFIG_T_SUBNETS] != CONFIG_NONE)
        config_cidrs(c, config_val(c, k[CONFIG_T_SUBNETS]), "workspace_subnets",
                     &cfg->workspace_subnets, SIZE_MAX);
    if (k[CONFIG_T_DENY] != CONFIG_NONE)
        config_domains(c, config_val(c, k[CONFIG_T_DENY]), "deny_domains", cfg->global_deny,
                       &cfg->global_deny_patterns, &cfg->nglobal_deny);

    if (k[CONFIG_T_POLICIES] != CONFIG_NONE) {
        uint32_t v = config_val(c, k[CONFIG_T_POLICIES]);
        size_t n = config_node(c, v)->kind == CONFIG_N_SEQ ? config_node(c, v)->n : 0;
        if (config_want_seq(c, v, "policies") && n > 0) {
            cfg->policies = calloc(n, sizeof *cfg->policies);
            if (!cfg->policies) {
                c->oom = true;
                return;
            }
            cfg->npolicies = n;
            size_t i = 0;
            for (uint32_t it = config_node(c, v)->first; it != CONFIG_NONE && !c->oom;
                 it = config_node(c, it)->next)
                config_policy(c, it, i++);
        }
    }
    if (k[CONFIG_T_WORKSPACES] != CONFIG_NONE) {
        uint32_t v = config_val(c, k[CONFIG_T_WORKSPACES]);
        size_t n = config_node(c, v)->kind == CONFIG_N_SEQ ? config_node(c, v)->n : 0;
        if (config_want_seq(c, v, "workspaces") && n > 0) {
            cfg->workspaces = calloc(n, sizeof *cfg->workspaces);
            c->ws_group_line = calloc(n, sizeof *c->ws_group_line);
            if (!cfg->workspaces || !c->ws_group_line) {
                c->oom = true;
                return;
            }
            cfg->nworkspaces = n;
            size_t i = 0;
            for (uint32_t it = config_node(c, v)->first; it != CONFIG_NONE && !c->oom;
                 it = config_node(c, it)->next)
                config_workspace(c, it, i++);
        }
    }
    if (!c->oom) config_gateway(c, config_val(c, k[CONFIG_T_GATEWAY]));
    if (!c->oom) config_cross_checks(c);
    if (!c->oom && k[CONFIG_T_LIMITS] != CONFIG_NONE)
        config_limits(c, config_val(c, k[CONFIG_T_LIMITS]));
    if (!c->oom && k[CONFIG_T_INSPECT] != CONFIG_NONE)
        config_inspect(c, config_val(c, k[CONFIG_T_INSPECT]));
    /* The gateway inspects every request: without an inspect section it
     * still needs the built-in engine (not compiled when the file is
     * already refused: it cannot add an error of its own). */
    if (!c->oom && cfg->gateway.enabled && !cfg->inspect.engine &&
        k[CONFIG_T_INSPECT] == CONFIG_NONE && c->nmsgs == 0 && c->dropped == 0)
        config_inspect_engine(c, CONFIG_NONE, CONFIG_NONE);
}

/* ------------------------------------------------------------------------ */
/* Life cycle                                                                */

static void config_free_strv(char **v, size_t n)
{
    if (!v) return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void config_free(config_t *cfg)
{
    free(cfg->path);
    free(cfg->audit_path);
    cidrset_free(&cfg->workspace_subnets);
    if (cfg->global_deny) domain_set_free(cfg->global_deny);
    config_free_strv(cfg->global_deny_patterns, cfg->nglobal_deny);
    for (size_t i = 0; i < cfg->nworkspaces; i++) {
        config_workspace_t *ws = &cfg->workspaces[i];
        free(ws->id);
        free(ws->group);
        free(ws->team);
        free(ws->project);
        cidrset_free(&ws->sources);
        free(ws->tokens);
    }
    free(cfg->workspaces);
    for (size_t i = 0; i < cfg->npolicies; i++) {
        config_policy_t *pol = &cfg->policies[i];
        free(pol->name);
        config_free_strv(pol->groups, pol->ngroups);
        if (pol->allow) domain_set_free(pol->allow);
        if (pol->deny) domain_set_free(pol->deny);
        config_free_strv(pol->allow_patterns, pol->nallow);
        config_free_strv(pol->deny_patterns, pol->ndeny);
        cidrset_free(&pol->allow_cidrs);
    }
    free(cfg->policies);
    inspect_engine_free(cfg->inspect.engine);
    free(cfg->inspect.rule_action);
    config_free_strv(cfg->inspect.rules_files, cfg->inspect.nrules_files);
    config_gateway_t *gw = &cfg->gateway;
    free(gw->tls_cert);
    free(gw->tls_key);
    free(gw->tls_client_ca);
    free(gw->ca_file);
    for (size_t i = 0; i < gw->nproviders; i++) {
        config_gw_provider_t *pr = &gw->providers[i];
        free(pr->name);
        free(pr->key_ref);
        if (pr->key) {
            explicit_bzero(pr->key, pr->key_len);
            free(pr->key);
        }
        for (size_t j = 0; j < CONFIG_GW_MAX_ENDPOINTS; j++) {
            free(pr->endpoints[j].url);
            free(pr->endpoints[j].host);
            free(pr->endpoints[j].base_path);
        }
    }
    free(gw->providers);
    for (size_t i = 0; i < gw->ngroups; i++) {
        config_gw_group_t *g = &gw->groups[i];
        free(g->name);
        config_free_strv(g->providers, g->nproviders);
        config_free_strv(g->models, g->nmodels);
    }
    free(gw->groups);
    config_limits_t *lim = &cfg->limits;
    free(lim->time_zone);
    tz_free(lim->tz);
    free(lim->db_path);
    free(lim->redis_url);
    free(lim->redis_host);
    if (lim->redis_password) {
        OPENSSL_cleanse(lim->redis_password, strlen(lim->redis_password));
        free(lim->redis_password);
    }
    free(lim->key_prefix);
    for (size_t i = 0; i < lim->nprices; i++)
        lim_price_clear(&lim->prices[i]);
    free(lim->prices);
    for (size_t s = 0; s < CONFIG_LIM_NSCOPES; s++) {
        for (size_t i = 0; i < lim->nentries[s]; i++)
            free(lim->entries[s][i].name);
        free(lim->entries[s]);
    }
    free(cfg);
}

static void config_ctx_free(config_ctx_t *c)
{
    free(c->nodes);
    free(c->strs);
    for (size_t i = 0; i < c->nmsgs; i++)
        free(c->msgs[i].text);
    free(c->msgs);
    free(c->wsids.v);
    free(c->polnames.v);
    free(c->groups.v);
    free(c->tokens.v);
    free(c->gwproviders.v);
    free(c->gwgroups.v);
    free(c->teams.v);
    free(c->projects.v);
    free(c->srcs);
    free(c->ws_group_line);
}

config_t *config_load_buffer(const char *name, const char *data, size_t len, config_errors_t *errs)
{
    config_ctx_t c;
    config_t *cfg = NULL;
    uint32_t root;

    memset(&c, 0, sizeof c);
    c.name = name && *name ? name : "<config>";
    c.data = data ? data : "";
    c.len = data ? len : 0;
    if (c.len > CONFIG_MAX_FILE) {
        config_err(&c, 1, "the file is larger than 4 MiB (%zu bytes)", c.len);
        goto out;
    }
    cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        c.oom = true;
        goto out;
    }
    atomic_init(&cfg->refs, 1);
    c.cfg = cfg;
    config_defaults(&c);
    if (!c.oom && config_tree_build(&c, &root) == 0) config_build(&c, root);
out:;
    bool failed = c.nmsgs > 0 || c.dropped > 0 || c.oom;
    config_flush(&c, errs);
    config_ctx_free(&c);
    if (failed && cfg) {
        config_free(cfg);
        cfg = NULL;
    }
    return cfg;
}

config_t *config_load(const char *path, config_errors_t *errs)
{
    config_ctx_t c;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    config_t *cfg = NULL;
    char eb[128];

    memset(&c, 0, sizeof c);
    c.name = path && *path ? path : "<config>";
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f) {
        config_err(&c, 1, "cannot open: %s", strerror_r(path ? errno : EINVAL, eb, sizeof eb));
        goto out;
    }
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            if (ncap > CONFIG_MAX_FILE + 1) ncap = CONFIG_MAX_FILE + 1;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                c.oom = true;
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (len > CONFIG_MAX_FILE) {
            config_err(&c, 1, "the file is larger than 4 MiB");
            goto out;
        }
        if (n == 0) {
            if (ferror(f)) {
                config_err(&c, 1, "cannot read: %s", strerror_r(errno, eb, sizeof eb));
                goto out;
            }
            break;
        }
    }
    cfg = config_load_buffer(c.name, buf, len, errs);
out:
    if (f) fclose(f);
    free(buf);
    config_flush(&c, errs);
    config_ctx_free(&c);
    return cfg;
}

config_t *config_ref(config_t *c)
{
    if (c) atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void config_unref(config_t *c)
{
    if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1) config_free(c);
}
