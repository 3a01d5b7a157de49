/*
 * engine — rules loading, compilation and scanning (see inspect.h).
 *
 * Scan in three steps over the input:
 *   1. Vectorscan, one database: the keywords of the rules that have
 *      selective ones (case-insensitive literals), explicit prefilters, and
 *      the other regexes in prefilter mode.  Each hit opens a window
 *      [to - width, to + width] on its rule (width = the rule's maximum match
 *      width, capped); windows of one rule that overlap are merged as they
 *      arrive (Vectorscan reports in end-offset order), so memory grows with
 *      clusters of candidates, not with input size.
 *   2. The gate (gate.h), one vector pass for the rules that no literal can
 *      find: numeric phrases with enough digits (cards, phones, SSNs, IBANs)
 *      and anchor bytes with the right neighbours ('@' of e-mail addresses)
 *      open windows on those rules.
 *   3. PCRE2 (JIT) on the merged windows of the rules that had candidates,
 *      with the whole buffer as subject so that \b sees real context.
 * Each exact match is filtered (allowlist, entropy, validator, noise
 * filters), findings are sorted by position, and line/column are computed
 * in one forward pass.
 *
 * Ownership: the engine owns its rules, compiled patterns and the Vectorscan
 * database; a scratch owns the per-scan arrays and the Vectorscan scratch.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "inspect/inspect.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdarg.h>
#include <hs/hs.h>
#include <openssl/evp.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml.h>

#include "inspect/gate.h"
#include "inspect/json.h"
#include "inspect/textpath.h"
#include "inspect/validate.h"

#define WINDOW_CAP 4096 /* longest match looked for around one candidate */
#define MAX_RULES 4096

typedef struct rule {
    char *id, *description;
    inspect_category_t category;
    inspect_action_t action;
    bool enabled;
    char *regex;
    char *prefilter; /* optional exact Vectorscan pattern that every match overlaps */
    int secret_group;
    double entropy;
    validate_fn validator;
    pcre2_code *re;
    pcre2_code **allow;
    size_t nallow;
    char **globs, **excludes;
    size_t nglobs, nexcludes;
    char **keywords; /* literals every match contains (the prefilter when present) */
    size_t nkeywords;
    unsigned digits; /* > 0: gated on numeric phrases with at least this many digits */
    int anchor;      /* >= 0: gated on this byte */
    unsigned char anchor_ctx[256]; /* bit 0: may precede the anchor, bit 1: may follow it */
    size_t width;                  /* window half-width for this rule */
    char *file;                    /* where the regex was defined, for compile errors */
    size_t line;
} rule_t;

#define ENGINE_MAX_TRIGGERS 64

struct inspect_engine {
    rule_t *rules;
    size_t nrules;
    /* One prefilter database: the keywords of the rules that have them
     * (case-insensitive literals), the explicit prefilters, and the other
     * regexes in prefilter mode. */
    hs_database_t *db;
    unsigned *db_ids;  /* Vectorscan id -> rule index, or DB_TEXTPATH_TRIGGER */
    size_t trig_first; /* Vectorscan id of the first textpath trigger */
    size_t trig_len[ENGINE_MAX_TRIGGERS];
    size_t ndb;
    /* Rules gated on numeric phrases or anchor bytes (see gate.h) */
    gate_spec_t gate;
    int *gated;
    size_t ngated;
};

#define DB_TEXTPATH_TRIGGER UINT_MAX
/* Trigger positions kept per scan; past that, the text-path pass reads the
 * whole text instead (same result, more time). */
#define SCAN_MAX_TRIGGER_HITS 1024

typedef struct window {
    size_t start, end;
} window_t;

typedef struct rule_windows {
    window_t *v;
    size_t n, cap;
} rule_windows_t;

typedef struct raw_finding {
    int rule;
    size_t start, end;
} raw_finding_t;

struct inspect_scratch {
    const inspect_engine_t *e;
    hs_scratch_t *hs;
    rule_windows_t *win; /* one per rule */
    int *touched;        /* rules with windows in this scan */
    size_t ntouched;
    raw_finding_t *found;
    size_t nfound, capfound;
    pcre2_match_data *md;
    const char *data; /* current subject */
    size_t len;

    bool oom;
    /* where textpath trigger literals are in the subject */
    inspect_textpath_hit_t hits[SCAN_MAX_TRIGGER_HITS];
    size_t nhits;
    bool hits_overflow;
};

const char *inspect_category_name(inspect_category_t c)
{
    return c == INSPECT_SECRET ? "secret" : c == INSPECT_PII ? "pii" : "path";
}

const char *inspect_action_name(inspect_action_t a)
{
    return a == INSPECT_BLOCK ? "block" : a == INSPECT_REDACT ? "redact" : "alert";
}

/* ------------------------------------------------------------------ */
/* loading                                                              */

typedef struct loader {
    const char *file;
    char *err;
    size_t errlen;
    bool failed;
} loader_t;

static void lerr(loader_t *L, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record the first error as "FILE:LINE: message". */
static void lerr(loader_t *L, const yaml_node_t *n, const char *fmt, ...)
{
    if (L->failed) return;
    L->failed = true;
    int k = snprintf(L->err, L->errlen, "%s:%zu: ", L->file, n ? n->start_mark.line + 1 : 1);
    if (k < 0 || (size_t)k >= L->errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L->err + k, L->errlen - (size_t)k, fmt, ap);
    va_end(ap);
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static char **string_list(loader_t *L, yaml_document_t *d, yaml_node_t *n, size_t *count,
                          const char *key)
{
    *count = 0;
    if (n->type == YAML_SCALAR_NODE) {
        char **v = calloc(1, sizeof *v);
        if (!v || !(v[0] = strdup(scalar(n)))) {
            free(v);
            return NULL;
        }
        *count = 1;
        return v;
    }
    if (n->type != YAML_SEQUENCE_NODE) {
        lerr(L, n, "'%s' must be a list of strings", key);
        return NULL;
    }
    size_t len = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    char **v = calloc(len ? len : 1, sizeof *v);
    if (!v) return NULL;
    for (size_t i = 0; i < len; i++) {
        const char *s = scalar(yaml_document_get_node(d, n->data.sequence.items.start[i]));
        if (!s) {
            lerr(L, n, "'%s' must be a list of strings", key);
            break;
        }
        v[(*count)++] = strdup(s);
    }
    return v;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static pcre2_code *compile_re(loader_t *L, const yaml_node_t *n, const char *id, const char *re)
{
    int ec;
    PCRE2_SIZE off;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, 0, &ec, &off, NULL);
    if (!c) {
        char msg[160];
        pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof msg);
        lerr(L, n, "rule '%s': bad regex: %s", id, msg);
        return NULL;
    }
    (void)pcre2_jit_compile(c, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    return c;
}

static void rule_free(rule_t *r)
{
    free(r->id);
    free(r->description);
    free(r->regex);
    free(r->prefilter);
    pcre2_code_free(r->re);
    for (size_t i = 0; i < r->nallow; i++)
        pcre2_code_free(r->allow[i]);
    free(r->allow);
    free_list(r->globs, r->nglobs);
    free_list(r->excludes, r->nexcludes);
    free_list(r->keywords, r->nkeywords);
    free(r->file);
}

/* Set `bit` in cls[c] for every byte of a bracket-expression body such as
 * "A-Za-z0-9._%+-" (a '-' first or last is literal); all bytes when NULL. */
static void byte_class(unsigned char cls[256], const char *spec, unsigned char bit)
{
    if (!spec) {
        for (int c = 0; c < 256; c++)
            cls[c] |= bit;
        return;
    }
    for (size_t i = 0; spec[i]; i++) {
        unsigned char a = (unsigned char)spec[i], b = a;
        if (spec[i + 1] == '-' && spec[i + 2]) {
            b = (unsigned char)spec[i + 2];
            i += 2;
        }
        for (unsigned c = a; c <= b; c++)
            cls[c] |= bit;
    }
}

static int load_rule(loader_t *L, yaml_document_t *d, yaml_node_t *m, rule_t *r)
{
    memset(r, 0, sizeof *r);
    r->enabled = true;
    r->entropy = 0;
    if (m->type != YAML_MAPPING_NODE) {
        lerr(L, m, "each rule must be a mapping");
        return -1;
    }
    if (m->data.mapping.pairs.top - m->data.mapping.pairs.start > 64) {
        lerr(L, m, "a rule has at most 64 keys");
        return -1;
    }
    yaml_node_t *allow_node = NULL, *re_node = m;
    const char *action = NULL, *category = NULL, *validator = NULL;
    const char *digits = NULL, *anchor = NULL, *before = NULL, *after = NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(d, p->key);
        yaml_node_t *vn = yaml_document_get_node(d, p->value);
        const char *k = scalar(kn), *v = scalar(vn);
        if (!k) continue;
        bool dup = false;
        for (yaml_node_pair_t *q = m->data.mapping.pairs.start; q < p && !dup; q++) {
            const char *qk = scalar(yaml_document_get_node(d, q->key));
            dup = qk && strcmp(qk, k) == 0;
        }
        if (dup) { /* YAML says keys are unique; the first is kept */
            lerr(L, kn, "duplicate rule key '%s'", k);
            continue;
        }
        if (strcmp(k, "id") == 0 && v) {
            r->id = strdup(v);
        } else if (strcmp(k, "description") == 0 && v) {
            r->description = strdup(v);
        } else if (strcmp(k, "category") == 0 && v) {
            category = v;
        } else if (strcmp(k, "regex") == 0 && v) {
            r->regex = strdup(v);
            re_node = vn;
        } else if (strcmp(k, "prefilter") == 0 && v) {
            r->prefilter = strdup(v);
        } else if (strcmp(k, "digits") == 0 && v) {
            digits = v;
        } else if (strcmp(k, "anchor") == 0 && v) {
            anchor = v;
        } else if (strcmp(k, "anchor_before") == 0 && v) {
            before = v;
        } else if (strcmp(k, "anchor_after") == 0 && v) {
            after = v;
        } else if (strcmp(k, "secret_group") == 0 && v) {
            r->secret_group = atoi(v);
        } else if (strcmp(k, "entropy") == 0 && v) {
            r->entropy = strtod(v, NULL);
        } else if (strcmp(k, "validator") == 0 && v) {
            validator = v;
        } else if (strcmp(k, "action") == 0 && v) {
            action = v;
        } else if (strcmp(k, "enabled") == 0 && v) {
            r->enabled = strcmp(v, "false") != 0 && strcmp(v, "no") != 0;
        } else if (strcmp(k, "allowlist") == 0) {
            allow_node = vn;
        } else if (strcmp(k, "globs") == 0) {
            r->globs = string_list(L, d, vn, &r->nglobs, "globs");
        } else if (strcmp(k, "exclude") == 0) {
            r->excludes = string_list(L, d, vn, &r->nexcludes, "exclude");
        } else if (strcmp(k, "keywords") == 0) {
            r->keywords = string_list(L, d, vn, &r->nkeywords, "keywords");
        } else if (strcmp(k, "examples") == 0) {
            /* for the tests (tests/unit/test_rules_data.c) */
        } else {
            lerr(L, kn, "unknown rule key '%s'", k);
        }
    }
    if (!r->id) lerr(L, m, "rule without an id");
    const char *id = r->id ? r->id : "?";
    if (!category || (strcmp(category, "secret") != 0 && strcmp(category, "pii") != 0 &&
                      strcmp(category, "path") != 0))
        lerr(L, m, "rule '%s': category must be secret, pii or path", id);
    else
        r->category = category[0] == 's'   ? INSPECT_SECRET
                      : category[1] == 'i' ? INSPECT_PII
                                           : INSPECT_PATH;
    r->action = r->category == INSPECT_PII ? INSPECT_REDACT : INSPECT_BLOCK;
    if (action) {
        if (strcmp(action, "block") == 0)
            r->action = INSPECT_BLOCK;
        else if (strcmp(action, "redact") == 0)
            r->action = INSPECT_REDACT;
        else if (strcmp(action, "alert") == 0)
            r->action = INSPECT_ALERT;
        else
            lerr(L, m, "rule '%s': action must be block, redact or alert", id);
    }
    r->anchor = -1;
    if (digits) {
        char *end = NULL;
        long dv = strtol(digits, &end, 10);
        if (*digits == 0 || *end || dv < 1 || dv > 64)
            lerr(L, m, "rule '%s': digits must be an integer from 1 to 64", id);
        else
            r->digits = (unsigned)dv;
    }
    if (anchor) {
        if (strlen(anchor) != 1)
            lerr(L, m, "rule '%s': anchor must be one byte", id);
        else
            r->anchor = (unsigned char)anchor[0];
    }
    if ((before || after) && !anchor) lerr(L, m, "rule '%s': anchor_before/after need anchor", id);
    if (digits && anchor) lerr(L, m, "rule '%s': digits and anchor exclude each other", id);
    if ((digits || anchor) && (r->nkeywords || r->prefilter))
        lerr(L, m, "rule '%s': a gated rule (digits, anchor) has no keywords or prefilter", id);
    byte_class(r->anchor_ctx, before, 1);
    byte_class(r->anchor_ctx, after, 2);
    if (validator && !(r->validator = validate_lookup(validator)))
        lerr(L, m, "rule '%s': unknown validator '%s'", id, validator);
    r->file = strdup(L->file);
    r->line = re_node->start_mark.line + 1;
    if (r->category == INSPECT_PATH) {
        if (r->nglobs == 0) lerr(L, m, "path rule '%s' needs globs", id);
    } else if (!r->regex) {
        lerr(L, m, "rule '%s' needs a regex", id);
    } else if (!L->failed) {
        r->re = compile_re(L, re_node, id, r->regex);
        uint32_t groups = 0;
        if (r->re) pcre2_pattern_info(r->re, PCRE2_INFO_CAPTURECOUNT, &groups);
        if (r->re && (r->secret_group < 0 || (uint32_t)r->secret_group > groups))
            lerr(L, re_node, "rule '%s': secret_group larger than the number of groups", id);
    }
    if (allow_node && !L->failed) {
        size_t n = 0;
        char **pats = string_list(L, d, allow_node, &n, "allowlist");
        r->allow = calloc(n ? n : 1, sizeof(pcre2_code *));
        for (size_t i = 0; r->allow && i < n && !L->failed; i++) {
            r->allow[i] = compile_re(L, allow_node, id, pats[i]);
            if (r->allow[i]) r->nallow++;
        }
        free_list(pats, n);
    }
    return L->failed ? -1 : 0;
}

/* Load one rules document from a file (f) or a buffer (data, len). */
static int load_rules(const char *path, FILE *f, const char *data, size_t len, inspect_engine_t *e,
                      size_t *cap, char *err, size_t errlen)
{
    loader_t L = {.file = path, .err = err, .errlen = errlen, .failed = false};
    yaml_parser_t p;
    yaml_document_t d;
    yaml_parser_initialize(&p);
    if (f)
        yaml_parser_set_input_file(&p, f);
    else
        yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
    int rc = -1;
    if (!yaml_parser_load(&p, &d)) {
        snprintf(err, errlen, "%s:%zu: YAML error: %s", path, p.problem_mark.line + 1,
                 p.problem ? p.problem : "syntax");
        yaml_parser_delete(&p);
        return -1;
    }
    yaml_node_t *root = yaml_document_get_root_node(&d);
    if (!root || root->type != YAML_SEQUENCE_NODE) {
        lerr(&L, root, "a rules file is a list of rules");
        goto out;
    }
    for (yaml_node_item_t *it = root->data.sequence.items.start; it < root->data.sequence.items.top;
         it++) {
        if (e->nrules == *cap) {
            size_t nc = *cap ? *cap * 2 : 64;
            if (nc > MAX_RULES) {
                lerr(&L, root, "too many rules");
                goto out;
            }
            rule_t *nr = realloc(e->rules, nc * sizeof *nr);
            if (!nr) goto out;
            e->rules = nr;
            *cap = nc;
        }
        yaml_node_t *m = yaml_document_get_node(&d, *it);
        rule_t *r = &e->rules[e->nrules];
        if (load_rule(&L, &d, m, r) < 0) {
            rule_free(r);
            goto out;
        }
        for (size_t i = 0; i < e->nrules; i++) {
            if (strcmp(e->rules[i].id, r->id) == 0) {
                /* a later file overrides an earlier rule with the same id */
                rule_free(&e->rules[i]);
                e->rules[i] = *r;
                r = NULL;
                break;
            }
        }
        if (r) e->nrules++;
    }
    rc = 0;
out:
    yaml_document_delete(&d);
    yaml_parser_delete(&p);
    return L.failed ? -1 : rc;
}

static int load_file(const char *path, inspect_engine_t *e, size_t *cap, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s:1: cannot open rules file", path);
        return -1;
    }
    int rc = load_rules(path, f, NULL, 0, e, cap, err, errlen);
    fclose(f);
    return rc;
}

static void engine_drop_dbs(inspect_engine_t *e)
{
    if (e->db) hs_free_database(e->db);
    e->db = NULL;
    free(e->db_ids);
    free(e->gated);
    e->db_ids = NULL;
    e->gated = NULL;
    e->ndb = e->ngated = 0;
    gate_init(&e->gate);
}

/* ---- compiling the database, optionally in a child process ---- */

static bool compile_isolated;

void inspect_compile_in_child(bool on)
{
    compile_isolated = on;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, void *p, size_t n)
{
    char *c = p;
    while (n > 0) {
        ssize_t r = read(fd, c, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

typedef struct compile_reply {
    int32_t ok;   /* 1: the widths and a serialized database follow; 0: an error message */
    int32_t expr; /* failing expression, or -1 */
    int32_t rule; /* rule whose regex Vectorscan cannot analyse, or -1 */
    uint32_t nrules;
    uint64_t len;
} compile_reply_t;

#define COMPILE_REPLY_MAX ((uint64_t)1 << 30)

static bool rule_compiled(const rule_t *r)
{
    return r->re && r->enabled;
}

/* Window half-widths: the longest match each compiled rule can have
 * (capped).  0 ok; -1 with *bad_rule and Vectorscan's message. */
static int rule_widths(inspect_engine_t *e, int *bad_rule, char *msg, size_t msglen)
{
    for (size_t i = 0; i < e->nrules; i++) {
        rule_t *r = &e->rules[i];
        if (!rule_compiled(r)) continue;
        hs_expr_info_t *info = NULL;
        hs_compile_error_t *ce = NULL;
        r->width = WINDOW_CAP;
        if (hs_expression_info(r->regex, HS_FLAG_PREFILTER, &info, &ce) != HS_SUCCESS || !info) {
            *bad_rule = (int)i;
            snprintf(msg, msglen, "%s", ce ? ce->message : "?");
            hs_free_compile_error(ce);
            return -1;
        }
        if (info->max_width != UINT_MAX && info->max_width < WINDOW_CAP)
            r->width = info->max_width + 1;
        free(info);
    }
    return 0;
}

/* The rules' widths (rule_widths) and hs_compile_multi of exprs (none when
 * n is 0), in this process or (inspect_compile_in_child) in a forked child
 * that sends the widths and the serialized database back through a pipe.
 * Both run the Vectorscan compiler, which allocates a great deal for a short
 * time: in a child, that memory never counts against the daemon.  0 ok; -1
 * with *bad_rule (width) or *bad_expr (compile) and msg. */
static int compile_db(inspect_engine_t *e, const char *const *exprs, const unsigned *flags,
                      const unsigned *ids, unsigned n, hs_database_t **db, int *bad_rule,
                      int *bad_expr, char *msg, size_t msglen)
{
    hs_compile_error_t *ce = NULL;
    if (!compile_isolated) {
        if (rule_widths(e, bad_rule, msg, msglen) < 0) return -1;
        if (n == 0 ||
            hs_compile_multi(exprs, flags, ids, n, HS_MODE_BLOCK, NULL, db, &ce) == HS_SUCCESS)
            return 0;
        *bad_expr = ce ? ce->expression : -1;
        snprintf(msg, msglen, "%s", ce ? ce->message : "compile failed");
        hs_free_compile_error(ce);
        return -1;
    }
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        snprintf(msg, msglen, "pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(msg, msglen, "fork: %s", strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) { /* child: measure, compile, reply, exit without atexit handlers */
        close(pfd[0]);
        hs_database_t *d = NULL;
        compile_reply_t h = {0, -1, -1, (uint32_t)e->nrules, 0};
        char *bytes = NULL, cmsg[256] = "";
        size_t len = 0;
        uint32_t *widths = calloc(e->nrules + 1, sizeof *widths);
        if (!widths) {
            bytes = (char *)"out of memory";
        } else if (rule_widths(e, &h.rule, cmsg, sizeof cmsg) < 0) {
            bytes = cmsg;
        } else if (n == 0 || (hs_compile_multi(exprs, flags, ids, n, HS_MODE_BLOCK, NULL, &d,
                                               &ce) == HS_SUCCESS &&
                              hs_serialize_database(d, &bytes, &len) == HS_SUCCESS)) {
            h.ok = 1;
            for (size_t i = 0; i < e->nrules; i++)
                widths[i] = (uint32_t)e->rules[i].width;
        } else {
            h.expr = ce ? ce->expression : -1;
            bytes = (char *)(ce ? ce->message : "compile failed");
        }
        if (!h.ok) len = strlen(bytes);
        h.len = len;
        int rc = write_all(pfd[1], &h, sizeof h) == 0 &&
                 (!h.ok || write_all(pfd[1], widths, e->nrules * sizeof *widths) == 0) &&
                 write_all(pfd[1], bytes ? bytes : "", len) == 0;
        _exit(rc ? 0 : 1);
    }
    close(pfd[1]);
    compile_reply_t h;
    char *bytes = NULL;
    uint32_t *widths = NULL;
    int rc = -1;
    if (read_all(pfd[0], &h, sizeof h) < 0 || h.len > COMPILE_REPLY_MAX || h.nrules != e->nrules ||
        !(bytes = malloc(h.len + 1)) ||
        (h.ok && (!(widths = calloc(e->nrules + 1, sizeof *widths)) ||
                  read_all(pfd[0], widths, e->nrules * sizeof *widths) < 0)) ||
        read_all(pfd[0], bytes, h.len) < 0) {
        snprintf(msg, msglen, "the rule compiler process failed");
    } else if (!h.ok) {
        bytes[h.len] = '\0';
        *bad_rule = h.rule >= 0 && (size_t)h.rule < e->nrules ? h.rule : -1;
        *bad_expr = h.expr;
        snprintf(msg, msglen, "%s", bytes);
    } else if (n > 0 && hs_deserialize_database(bytes, h.len, db) != HS_SUCCESS) {
        snprintf(msg, msglen, "cannot load the compiled rules");
    } else {
        for (size_t i = 0; i < e->nrules; i++)
            e->rules[i].width = widths[i];
        rc = 0;
    }
    free(widths);
    free(bytes);
    close(pfd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return rc;
}

#define KEYWORD_MIN 3

/* Keywords prefilter a rule only when every one of them is selective: a
 * one- or two-byte keyword ("sk", "@") fires everywhere and would send most
 * of the input to the exact pass; such rules use their regex instead. */
static bool uses_keywords(const rule_t *r)
{
    if (r->nkeywords == 0 || r->prefilter) return false;
    for (size_t j = 0; j < r->nkeywords; j++)
        if (strlen(r->keywords[j]) < KEYWORD_MIN) return false;
    return true;
}

static bool is_gated(const rule_t *r)
{
    return r->digits > 0 || r->anchor >= 0;
}

/* A keyword as a Vectorscan expression: every byte but [A-Za-z0-9] escaped. */
static char *literal_expr(const char *kw)
{
    size_t n = strlen(kw);
    char *o = malloc(4 * n + 1), *q = o;
    if (!o) return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)kw[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            *q++ = (char)c;
        else
            q += sprintf(q, "\\x%02x", c);
    }
    *q = 0;
    return o;
}

static int engine_compile(inspect_engine_t *e, char *err, size_t errlen)
{
    engine_drop_dbs(e);
    size_t n = 0, ng = 0;
    for (size_t i = 0; i < e->nrules; i++) {
        const rule_t *r = &e->rules[i];
        if (!rule_compiled(r)) continue;
        if (is_gated(r))
            ng++;
        else
            n += uses_keywords(r) ? r->nkeywords : 1;
    }
    size_t ntrig = inspect_textpath_ntriggers();
    if (ntrig > ENGINE_MAX_TRIGGERS) ntrig = ENGINE_MAX_TRIGGERS; /* textpath.c keeps fewer */
    n += ntrig;
    const char **exprs = calloc(n + 1, sizeof *exprs);
    char **owned = calloc(n + 1, sizeof *owned);
    unsigned *flags = calloc(n + 1, sizeof *flags);
    unsigned *ids = calloc(n + 1, sizeof *ids);
    e->db_ids = calloc(n + 1, sizeof *e->db_ids);
    e->gated = calloc(ng + 1, sizeof *e->gated);
    int rc = -1;
    if (!exprs || !owned || !flags || !ids || !e->db_ids || !e->gated) goto out;
    size_t k = 0;
    for (size_t i = 0; i < e->nrules; i++) {
        rule_t *r = &e->rules[i];
        if (!rule_compiled(r)) continue;
        if (is_gated(r)) {
            e->gated[e->ngated++] = (int)i;
            if (r->digits && (!e->gate.min_digits || r->digits < e->gate.min_digits))
                e->gate.min_digits = r->digits;
            if (r->anchor >= 0 && gate_add_anchor(&e->gate, (unsigned char)r->anchor) < 0) {
                snprintf(err, errlen, "%s:%zu: rule '%s': more than %d distinct anchor bytes",
                         r->file, r->line, r->id, GATE_MAX_ANCHORS);
                goto out;
            }
        } else if (uses_keywords(r)) {
            for (size_t j = 0; j < r->nkeywords; j++) {
                if (!r->keywords[j][0]) {
                    snprintf(err, errlen, "%s:%zu: rule '%s': empty keyword", r->file, r->line,
                             r->id);
                    goto out;
                }
                if (!(owned[k] = literal_expr(r->keywords[j]))) goto out;
                exprs[k] = owned[k];
                flags[k] = HS_FLAG_CASELESS;
                ids[k] = (unsigned)k;
                e->db_ids[k++] = (unsigned)i;
            }
        } else {
            /* an explicit prefilter is matched exactly (cheap, few candidates);
             * otherwise the rule's own regex in prefilter mode */
            exprs[k] = r->prefilter ? r->prefilter : r->regex;
            flags[k] = r->prefilter ? 0 : HS_FLAG_PREFILTER;
            ids[k] = (unsigned)k;
            e->db_ids[k++] = (unsigned)i;
        }
    }
    /* the literals every path mention contains (textpath.h): their
     * positions tell the text-path pass where to look */
    e->trig_first = k;
    for (size_t t = 0; t < ntrig; t++) {
        if (!(owned[k] = literal_expr(inspect_textpath_trigger(t)))) goto out;
        e->trig_len[t] = strlen(inspect_textpath_trigger(t));
        exprs[k] = owned[k];
        flags[k] = HS_FLAG_CASELESS;
        ids[k] = (unsigned)k;
        e->db_ids[k++] = DB_TEXTPATH_TRIGGER;
    }
    int bad_rule = -1, bad_expr = -1;
    char cmsg[256] = "";
    if (compile_db(e, exprs, flags, ids, (unsigned)k, &e->db, &bad_rule, &bad_expr, cmsg,
                   sizeof cmsg) < 0) {
        if (bad_rule >= 0) {
            const rule_t *r = &e->rules[bad_rule];
            snprintf(err, errlen, "%s:%zu: rule '%s': regex not supported by Vectorscan: %s",
                     r->file ? r->file : "?", r->line, r->id, cmsg);
            goto out;
        }
        int bad =
            bad_expr >= 0 && (size_t)bad_expr < k && e->db_ids[bad_expr] != DB_TEXTPATH_TRIGGER
                ? (int)e->db_ids[bad_expr]
                : -1;
        const rule_t *br = bad >= 0 ? &e->rules[bad] : NULL;
        snprintf(err, errlen, "%s:%zu: rule '%s': Vectorscan: %s", br && br->file ? br->file : "?",
                 br ? br->line : 0, br ? br->id : "?", cmsg[0] ? cmsg : "compile failed");
        goto out;
    }
    e->ndb = k;
    rc = 0;
out:
    for (size_t i = 0; owned && i < n; i++)
        free(owned[i]);
    free(owned);
    free(exprs);
    free(flags);
    free(ids);
    if (rc < 0) engine_drop_dbs(e);
    return rc;
}

int inspect_engine_load(const char *const *paths, inspect_engine_t **out, char *err, size_t errlen)
{
    return inspect_engine_load_with(NULL, paths, out, err, errlen);
}

int inspect_engine_load_with(const inspect_rules_blob_t *blobs, const char *const *paths,
                             inspect_engine_t **out, char *err, size_t errlen)
{
    *out = NULL;
    inspect_engine_t *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t cap = 0;
    for (size_t i = 0; blobs && blobs[i].name; i++) {
        if (load_rules(blobs[i].name, NULL, blobs[i].data, blobs[i].len, e, &cap, err, errlen) <
            0) {
            inspect_engine_free(e);
            return -1;
        }
    }
    for (size_t i = 0; paths && paths[i]; i++) {
        if (load_file(paths[i], e, &cap, err, errlen) < 0) {
            inspect_engine_free(e);
            return -1;
        }
    }
    if (engine_compile(e, err, errlen) < 0) {
        inspect_engine_free(e);
        return -1;
    }
    *out = e;
    return 0;
}

void inspect_engine_free(inspect_engine_t *e)
{
    if (!e) return;
    for (size_t i = 0; i < e->nrules; i++)
        rule_free(&e->rules[i]);
    free(e->rules);
    engine_drop_dbs(e);
    free(e);
}

size_t inspect_rule_count(const inspect_engine_t *e)
{
    return e->nrules;
}

const char *inspect_rule_id(const inspect_engine_t *e, int rule)
{
    return rule >= 0 && (size_t)rule < e->nrules ? e->rules[rule].id : "";
}

const char *inspect_rule_description(const inspect_engine_t *e, int rule)
{
    if (rule < 0 || (size_t)rule >= e->nrules || !e->rules[rule].description) return "";
    return e->rules[rule].description;
}

inspect_category_t inspect_rule_category(const inspect_engine_t *e, int rule)
{
    return e->rules[rule].category;
}

int inspect_rule_enable(inspect_engine_t *e, const char *id, bool on)
{
    for (size_t i = 0; i < e->nrules; i++) {
        if (strcmp(e->rules[i].id, id) == 0) {
            if (e->rules[i].enabled == on) return 0;
            e->rules[i].enabled = on;
            char err[256];
            return engine_compile(e, err, sizeof err);
        }
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* scratch                                                              */

inspect_scratch_t *inspect_scratch_new(const inspect_engine_t *e)
{
    inspect_scratch_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->e = e;
    s->win = calloc(e->nrules ? e->nrules : 1, sizeof *s->win);
    s->touched = calloc(e->nrules ? e->nrules : 1, sizeof *s->touched);
    s->md = pcre2_match_data_create(32, NULL);
    if (!s->win || !s->touched || !s->md ||
        (e->db && hs_alloc_scratch(e->db, &s->hs) != HS_SUCCESS)) {
        inspect_scratch_free(s);
        return NULL;
    }
    return s;
}

void inspect_scratch_free(inspect_scratch_t *s)
{
    if (!s) return;
    if (s->win)
        for (size_t i = 0; i < s->e->nrules; i++)
            free(s->win[i].v);
    free(s->win);
    free(s->touched);
    free(s->found);
    if (s->md) pcre2_match_data_free(s->md);
    if (s->hs) hs_free_scratch(s->hs);
    free(s);
}

/* ------------------------------------------------------------------ */
/* scanning                                                             */

/* Open (or extend) the window [start, end) of a rule.  Windows of one rule
 * arrive in increasing start order (Vectorscan reports in end-offset order
 * and a rule's width is fixed; the gate reports in position order), and
 * each rule is fed by one source only, so merging with the rule's last
 * window is enough. */
static int add_window(inspect_scratch_t *s, int ri, size_t start, size_t end)
{
    if (end > s->len) end = s->len;
    rule_windows_t *w = &s->win[ri];
    if (w->n > 0 && start <= w->v[w->n - 1].end) {
        if (end > w->v[w->n - 1].end) w->v[w->n - 1].end = end;
        return 0;
    }
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 8;
        window_t *nv = realloc(w->v, nc * sizeof *nv);
        if (!nv) {
            s->oom = true;
            return 1;
        }
        w->v = nv;
        w->cap = nc;
    }
    if (w->n == 0) s->touched[s->ntouched++] = ri;
    w->v[w->n++] = (window_t){start, end};
    return 0;
}

static int on_candidate(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                        void *ctx)
{
    (void)from;
    (void)flags;
    inspect_scratch_t *s = ctx;
    if (s->e->db_ids[id] == DB_TEXTPATH_TRIGGER) {
        size_t t = id - s->e->trig_first;
        if (s->nhits < SCAN_MAX_TRIGGER_HITS)
            s->hits[s->nhits++] =
                (inspect_textpath_hit_t){(size_t)to - s->e->trig_len[t], (unsigned)t};
        else
            s->hits_overflow = true;
        return 0;
    }
    int ri = (int)s->e->db_ids[id];
    size_t w = s->e->rules[ri].width;
    return add_window(s, ri, to > w ? (size_t)to - w : 0, (size_t)to + w);
}

static int on_phrase(size_t start, size_t end, unsigned digits, void *ctx)
{
    inspect_scratch_t *s = ctx;
    const inspect_engine_t *e = s->e;
    for (size_t i = 0; i < e->ngated; i++) {
        const rule_t *r = &e->rules[e->gated[i]];
        if (!r->digits || digits < r->digits) continue;
        if (add_window(s, e->gated[i], start > r->width ? start - r->width : 0, end + r->width))
            return 1;
    }
    return 0;
}

static int on_anchor(size_t pos, void *ctx)
{
    inspect_scratch_t *s = ctx;
    const inspect_engine_t *e = s->e;
    unsigned char c = (unsigned char)s->data[pos];
    unsigned char prev = pos > 0 ? (unsigned char)s->data[pos - 1] : 0;
    unsigned char next = pos + 1 < s->len ? (unsigned char)s->data[pos + 1] : 0;
    for (size_t i = 0; i < e->ngated; i++) {
        const rule_t *r = &e->rules[e->gated[i]];
        if (r->anchor != c || !(r->anchor_ctx[prev] & 1) || !(r->anchor_ctx[next] & 2)) continue;
        /* a match starts in the run of anchor_before bytes that ends at the
         * anchor, or on the one byte of context before that run */
        size_t start = pos;
        while (start > 0 && pos - start < r->width &&
               (r->anchor_ctx[(unsigned char)s->data[start - 1]] & 1))
            start--;
        if (start > 0) start--;
        if (add_window(s, e->gated[i], start, pos + 1 + r->width)) return 1;
    }
    return 0;
}

static bool secret_passes(const rule_t *r, const char *p, size_t n)
{
    if (n == 0) return false;
    if (r->entropy > 0 && validate_entropy(p, n) < r->entropy) return false;
    if (r->validator && !r->validator(p, n)) return false;
    /* Documentation values, placeholders and test data are never findings
     * (a test card number is not personal data either).  Hashes and UUIDs
     * are noise only for generic shapes (rules with an entropy threshold):
     * a vendor token may well be 32 hex digits after its prefix. */
    if (validate_is_placeholder(p, n)) return false;
    if (r->entropy > 0 && validate_is_hash_or_uuid(p, n)) return false;
    for (size_t i = 0; i < r->nallow; i++) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(r->allow[i], NULL);
        int rc = md ? pcre2_match(r->allow[i], (PCRE2_SPTR)p, n, 0, 0, md, NULL) : -1;
        if (md) pcre2_match_data_free(md);
        if (rc >= 0) return false;
    }
    return true;
}

static int add_found(inspect_scratch_t *s, int rule, size_t start, size_t end)
{
    if (s->nfound == s->capfound) {
        size_t nc = s->capfound ? s->capfound * 2 : 16;
        raw_finding_t *nf = realloc(s->found, nc * sizeof *nf);
        if (!nf) return -1;
        s->found = nf;
        s->capfound = nc;
    }
    s->found[s->nfound++] = (raw_finding_t){rule, start, end};
    return 0;
}

static void exact_rule(inspect_scratch_t *s, int ri, const char *data)
{
    const rule_t *r = &s->e->rules[ri];
    rule_windows_t *w = &s->win[ri];
    size_t last_end = 0;
    for (size_t k = 0; k < w->n; k++) {
        size_t pos = w->v[k].start > last_end ? w->v[k].start : last_end;
        size_t lim = w->v[k].end;
        while (pos < lim) {
            int rc = pcre2_match(r->re, (PCRE2_SPTR)data, lim, pos, 0, s->md, NULL);
            if (rc < 0) break;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
            size_t ms = ov[0], me = ov[1];
            size_t gs = ov[2 * r->secret_group], ge = ov[2 * r->secret_group + 1];
            if (gs != PCRE2_UNSET && ge > gs && secret_passes(r, data + gs, ge - gs))
                if (add_found(s, ri, gs, ge) < 0) s->oom = true;
            pos = me > ms ? me : ms + 1;
            last_end = pos;
        }
    }
    w->n = 0;
}

static int cmp_found(const void *a, const void *b)
{
    const raw_finding_t *x = a, *y = b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    if (x->end != y->end) return x->end > y->end ? -1 : 1; /* longer first */
    return x->rule - y->rule;
}

static void fill_finding(const inspect_engine_t *e, inspect_finding_t *f, int rule,
                         const char *secret, size_t n)
{
    const rule_t *r = &e->rules[rule];
    f->rule = rule;
    f->rule_id = r->id;
    f->category = r->category;
    f->action = r->action;
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned int hl = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(c, r->id, strlen(r->id) + 1) != 1 || EVP_DigestUpdate(c, secret, n) != 1 ||
        EVP_DigestFinal_ex(c, h, &hl) != 1)
        memset(h, 0, sizeof h);
    EVP_MD_CTX_free(c);
    static const char hexd[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        f->fingerprint[2 * i] = hexd[h[i] >> 4];
        f->fingerprint[2 * i + 1] = hexd[h[i] & 15];
    }
    f->fingerprint[32] = 0;
    /* masked preview: a short visible prefix only for long secrets */
    size_t show = n >= 16 ? 4 : 0;
    size_t p = 0;
    for (size_t i = 0; i < show; i++) {
        unsigned char ch = (unsigned char)secret[i];
        f->preview[p++] = (ch >= 0x21 && ch < 0x7f) ? (char)ch : '?';
    }
    size_t stars = n - show < 8 ? n - show : 8;
    for (size_t i = 0; i < stars; i++)
        f->preview[p++] = '*';
    snprintf(f->preview + p, sizeof f->preview - p, "...(%zu)", n);
}

/* Move the line cursor from *scanned to `to`: count the newlines in
 * between in one vectorisable pass (a memchr per line would cost more than
 * the scan itself on large inputs with few findings). */
static void advance_lines(const char *data, size_t *scanned, size_t to, uint32_t *line,
                          size_t *line_start)
{
    if (to <= *scanned) return;
    const unsigned char *u = (const unsigned char *)data;
    size_t n = 0, i = *scanned;
    /* eight bytes at a time: a byte of w is 0x80 exactly where v has '\n' */
    const uint64_t lo7 = 0x7f7f7f7f7f7f7f7fULL, nls = 0x0a0a0a0a0a0a0a0aULL;
    for (; i + 8 <= to; i += 8) {
        uint64_t v;
        memcpy(&v, u + i, 8);
        v ^= nls;
        uint64_t w = ~(((v & lo7) + lo7) | v | lo7);
        n += (size_t)(((w >> 7) * 0x0101010101010101ULL) >> 56); /* bytes set */
    }
    for (; i < to; i++)
        n += u[i] == '\n';
    if (n) {
        const char *nl = memrchr(data + *scanned, '\n', to - *scanned);
        *line_start = (size_t)(nl - data) + 1;
        *line += (uint32_t)n;
    }
    *scanned = to;
}

/* Findings collected before delivery (path mentions in text, JSON). */
typedef struct finding_list {
    inspect_finding_t *v;
    size_t n, cap;
} finding_list_t;

static int finding_list_add(finding_list_t *l, const inspect_finding_t *f)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        inspect_finding_t *nv = realloc(l->v, nc * sizeof *nv);
        if (!nv) return -1;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = *f;
    return 0;
}

static int keep_finding(const inspect_finding_t *f, void *ctx)
{
    return finding_list_add(ctx, f) < 0 ? -1 : 0;
}

/* Path mentions in what was just scanned, around the trigger hits (or
 * everywhere when there were too many to keep). */
static int text_paths(const inspect_engine_t *e, inspect_scratch_t *s, const char *data, size_t len,
                      inspect_cb cb, void *ctx)
{
    if (s->hits_overflow) return inspect_textpath_scan(e, data, len, cb, ctx);
    if (s->nhits == 0) return 0;
    return inspect_textpath_scan_at(e, data, len, s->hits, s->nhits, cb, ctx);
}

/* The scan proper.  With INSPECT_SCAN_TEXT_PATHS, path mentions
 * (textpath.h) are looked for when the Vectorscan pass saw one of their
 * trigger literals, and delivered merged with the content findings, in
 * order of position. */
static int scan_text(const inspect_engine_t *e, inspect_scratch_t *s, const char *data, size_t len,
                     unsigned flags, inspect_cb cb, void *ctx)
{
    finding_list_t paths = {0};
    int rc = 0;
    if (len > UINT_MAX) return -1; /* Vectorscan takes 32-bit lengths: stream larger inputs */
    s->nfound = 0;
    s->ntouched = 0;
    s->oom = false;
    s->nhits = 0;
    s->hits_overflow = false;
    s->len = len;
    s->data = data;
    if (e->db && len > 0) {
        hs_error_t hr = hs_scan(e->db, data, (unsigned)len, 0, s->hs, on_candidate, s);
        if (hr != HS_SUCCESS && hr != HS_SCAN_TERMINATED) return -1;
    }
    if (e->ngated && len > 0) gate_scan(&e->gate, data, len, on_phrase, on_anchor, s);
    for (size_t i = 0; i < s->ntouched; i++)
        exact_rule(s, s->touched[i], data);
    if (s->oom) return -1;
    if ((flags & INSPECT_SCAN_TEXT_PATHS) && text_paths(e, s, data, len, keep_finding, &paths)) {
        free(paths.v);
        return -1;
    }
    if (s->nfound > 1) qsort(s->found, s->nfound, sizeof *s->found, cmp_found);
    uint32_t line = 1;
    size_t line_start = 0, scanned = 0, p = 0;
    for (size_t i = 0; i < s->nfound && rc == 0; i++) {
        raw_finding_t *r = &s->found[i];
        if (i > 0 && r->rule == s->found[i - 1].rule && r->start == s->found[i - 1].start)
            continue; /* same rule, same place */
        for (; p < paths.n && paths.v[p].start < r->start && rc == 0; p++)
            rc = cb(&paths.v[p], ctx);
        if (rc) break;
        advance_lines(data, &scanned, r->start, &line, &line_start);
        inspect_finding_t f;
        memset(&f, 0, sizeof f);
        fill_finding(e, &f, r->rule, data + r->start, r->end - r->start);
        f.start = r->start;
        f.end = r->end;
        f.line = line;
        f.column = (uint32_t)(r->start - line_start) + 1;
        rc = cb(&f, ctx);
    }
    for (; p < paths.n && rc == 0; p++)
        rc = cb(&paths.v[p], ctx);
    free(paths.v);
    return rc;
}

int inspect_scan_text(const inspect_engine_t *e, inspect_scratch_t *s, const char *data, size_t len,
                      inspect_cb cb, void *ctx)
{
    return scan_text(e, s, data, len, 0, cb, ctx);
}

int inspect_scan_text_flags(const inspect_engine_t *e, inspect_scratch_t *s, const char *data,
                            size_t len, unsigned flags, inspect_cb cb, void *ctx)
{
    return scan_text(e, s, data, len, flags, cb, ctx);
}

/* ------------------------------------------------------------------ */
/* paths                                                                */

static bool glob_hit(char *const *globs, size_t n, const char *path, const char *base)
{
    for (size_t i = 0; i < n; i++) {
        const char *g = globs[i];
        if (strchr(g, '/')) {
            /* match the whole path, or any suffix starting at a '/' */
            if (fnmatch(g, path, FNM_PATHNAME | FNM_PERIOD) == 0) return true;
            for (const char *p = strchr(path, '/'); p; p = strchr(p + 1, '/'))
                if (fnmatch(g, p + 1, FNM_PATHNAME) == 0) return true;
        } else if (fnmatch(g, base, 0) == 0) {
            return true;
        }
    }
    return false;
}

int inspect_check_path(const inspect_engine_t *e, const char *path, size_t len, inspect_cb cb,
                       void *ctx)
{
    char buf[4096];
    if (len == 0 || len >= sizeof buf) return 0;
    memcpy(buf, path, len);
    buf[len] = 0;
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\\') buf[i] = '/';
    const char *base = strrchr(buf, '/');
    base = base ? base + 1 : buf;
    for (size_t i = 0; i < e->nrules; i++) {
        const rule_t *r = &e->rules[i];
        if (r->category != INSPECT_PATH || !r->enabled) continue;
        if (!glob_hit(r->globs, r->nglobs, buf, base)) continue;
        if (glob_hit(r->excludes, r->nexcludes, buf, base)) continue;
        inspect_finding_t f;
        memset(&f, 0, sizeof f);
        fill_finding(e, &f, (int)i, buf, len);
        snprintf(f.preview, sizeof f.preview, "%.40s", base);
        f.start = 0;
        f.end = len;
        f.line = f.column = 1;
        int rc = cb(&f, ctx);
        if (rc) return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* streams                                                              */

struct inspect_stream {
    const inspect_engine_t *e;
    inspect_scratch_t *s;
    inspect_cb cb;
    void *ctx;
    char *buf;         /* carry + slice */
    size_t len;        /* bytes in buf */
    uint64_t base;     /* stream offset of buf[0] */
    uint64_t reported; /* findings ending at or before this were delivered */
    uint32_t line0;    /* line number of buf[0] */
    uint32_t col0;     /* column of buf[0] (1-based) */
    bool final;
    int stop;
};

typedef struct stream_pass {
    inspect_stream_t *st;
    uint64_t limit; /* deliver findings ending at or before this (stream offsets) */
} stream_pass_t;

static int stream_deliver(const inspect_finding_t *f, void *ctx)
{
    stream_pass_t *p = ctx;
    inspect_stream_t *st = p->st;
    uint64_t end = st->base + f->end;
    if (end <= st->reported || end > p->limit) return 0;
    inspect_finding_t g = *f;
    g.start = st->base + f->start;
    g.end = end;
    if (f->line == 1) g.column = st->col0 + f->column - 1;
    g.line = st->line0 + f->line - 1;
    return st->cb(&g, st->ctx);
}

inspect_stream_t *inspect_stream_new(const inspect_engine_t *e, inspect_scratch_t *s, inspect_cb cb,
                                     void *ctx)
{
    inspect_stream_t *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->buf = malloc(INSPECT_STREAM_CARRY + INSPECT_STREAM_SLICE);
    if (!st->buf) {
        free(st);
        return NULL;
    }
    st->e = e;
    st->s = s;
    st->cb = cb;
    st->ctx = ctx;
    st->line0 = 1;
    st->col0 = 1;
    return st;
}

/* Scan the buffer, deliver what is safe, keep the carry. */
static int stream_pass(inspect_stream_t *st)
{
    stream_pass_t p = {st, st->base + st->len};
    if (!st->final)
        p.limit = st->len > INSPECT_STREAM_HOLD ? p.limit - INSPECT_STREAM_HOLD : st->base;
    int rc = inspect_scan_text(st->e, st->s, st->buf, st->len, stream_deliver, &p);
    if (rc) return rc;
    if (p.limit > st->reported) st->reported = p.limit;
    if (st->len <= INSPECT_STREAM_CARRY) return 0;
    /* keep the last CARRY bytes; advance line/column over what is dropped */
    size_t drop = st->len - INSPECT_STREAM_CARRY;
    for (size_t i = 0; i < drop; i++) {
        if (st->buf[i] == '\n') {
            st->line0++;
            st->col0 = 1;
        } else {
            st->col0++;
        }
    }
    memmove(st->buf, st->buf + drop, INSPECT_STREAM_CARRY);
    st->len = INSPECT_STREAM_CARRY;
    st->base += drop;
    return 0;
}

int inspect_stream_feed(inspect_stream_t *st, const char *data, size_t len)
{
    if (st->stop) return st->stop;
    while (len > 0) {
        size_t room = INSPECT_STREAM_CARRY + INSPECT_STREAM_SLICE - st->len;
        size_t n = len < room ? len : room;
        memcpy(st->buf + st->len, data, n);
        st->len += n;
        data += n;
        len -= n;
        if (st->len == INSPECT_STREAM_CARRY + INSPECT_STREAM_SLICE) {
            int rc = stream_pass(st);
            if (rc) return st->stop = rc;
        }
    }
    return 0;
}

int inspect_stream_finish(inspect_stream_t *st)
{
    if (st->stop) return st->stop;
    st->final = true;
    return st->stop = stream_pass(st);
}

void inspect_stream_free(inspect_stream_t *st)
{
    if (!st) return;
    free(st->buf);
    free(st);
}

/* ------------------------------------------------------------------ */
/* JSON                                                                 */

/* Values up to this size are scanned behind their key (see json_ctx_t);
 * longer ones (prompts, documents) on their own. */
#define JSON_PAIR_KEY_MAX 64
#define JSON_PAIR_VALUE_MAX 4096

typedef struct json_ctx {
    const inspect_engine_t *e;
    inspect_scratch_t *s;
    const json_string_t *str; /* string being scanned */
    finding_list_t out;       /* raw offsets; delivered sorted at the end */
    bool next_is_path;        /* the last key named a file */
    unsigned flags;           /* INSPECT_SCAN_* */
    /* the last key (when short) and a buffer for `"key": "value"`, so that
     * rules which need the key ("password": "...") see it next to the value */
    char key[JSON_PAIR_KEY_MAX];
    size_t keylen;
    bool have_key;
    char pair[JSON_PAIR_KEY_MAX + JSON_PAIR_VALUE_MAX + 8];
    size_t pair_prefix; /* bytes before the value in pair */
} json_ctx_t;

static int json_keep(json_ctx_t *j, const inspect_finding_t *f, size_t rs, size_t re)
{
    inspect_finding_t g = *f; /* fingerprint and preview of the decoded secret */
    g.start = rs;
    g.end = re;
    return finding_list_add(&j->out, &g);
}

static int json_on_finding(const inspect_finding_t *f, void *ctx)
{
    json_ctx_t *j = ctx;
    const json_string_t *s = j->str;
    /* decoded [start, end) -> raw: from the escape that produced the first
     * byte to where the escape after the last byte begins */
    return json_keep(j, f, s->map[f->start], s->map[f->end]) < 0 ? -1 : 0;
}

/* A finding in `"key": "value"`: the part inside the value, mapped to raw
 * offsets; one wholly in the key (found when the key was scanned on its
 * own) or the quotes is dropped. */
static int json_on_pair_finding(const inspect_finding_t *f, void *ctx)
{
    json_ctx_t *j = ctx;
    const json_string_t *s = j->str;
    size_t p = j->pair_prefix, fs = (size_t)f->start, fe = (size_t)f->end;
    if (fe <= p || fs >= p + s->len) return 0;
    fs = fs > p ? fs - p : 0;
    fe = fe - p < s->len ? fe - p : s->len;
    return json_keep(j, f, s->map[fs], s->map[fe]) < 0 ? -1 : 0;
}

static int json_on_path(const inspect_finding_t *f, void *ctx)
{
    json_ctx_t *j = ctx;
    return json_keep(j, f, j->str->raw_start, j->str->raw_end) < 0 ? -1 : 0;
}

static bool key_names_file(const char *k, size_t n)
{
    static const char *const keys[] = {"path",     "file",      "filename",   "file_path",
                                       "filepath", "file_name", "target_file"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strlen(keys[i]) == n && strncasecmp(keys[i], k, n) == 0) return true;
    return false;
}

static int json_on_string(const json_string_t *str, void *ctx)
{
    json_ctx_t *j = ctx;
    j->str = str;
    int rc;
    bool scanned_pair = !str->is_key && j->have_key && str->len <= JSON_PAIR_VALUE_MAX;
    if (scanned_pair) {
        size_t o = 0;
        j->pair[o++] = '"';
        memcpy(j->pair + o, j->key, j->keylen);
        o += j->keylen;
        memcpy(j->pair + o, "\": \"", 4);
        o += 4;
        j->pair_prefix = o;
        memcpy(j->pair + o, str->text, str->len);
        o += str->len;
        j->pair[o++] = '"';
        rc = inspect_scan_text(j->e, j->s, j->pair, o, json_on_pair_finding, j);
    } else {
        rc = inspect_scan_text(j->e, j->s, str->text, str->len, json_on_finding, j);
    }
    if (rc) return rc;
    if (!str->is_key && j->next_is_path && str->len < 4096) {
        rc = inspect_check_path(j->e, str->text, str->len, json_on_path, j);
        if (rc) return rc;
    }
    if (!str->is_key && (j->flags & INSPECT_SCAN_TEXT_PATHS)) {
        /* hits in `"key": "value"` are moved to the value (those in the
         * key or the closing quote dropped); mentions are mapped back like
         * content findings */
        inspect_scratch_t *s = j->s;
        if (scanned_pair) {
            size_t m = 0, p = j->pair_prefix;
            for (size_t i = 0; i < s->nhits; i++) {
                const inspect_textpath_hit_t *h = &s->hits[i];
                if (h->start < p || h->start - p + j->e->trig_len[h->trigger] > str->len) continue;
                s->hits[m++] = (inspect_textpath_hit_t){h->start - p, h->trigger};
            }
            s->nhits = m;
        }
        rc = text_paths(j->e, s, str->text, str->len, json_on_finding, j);
        if (rc) return rc;
    }
    j->next_is_path = str->is_key && key_names_file(str->text, str->len);
    j->have_key = str->is_key && str->len <= JSON_PAIR_KEY_MAX;
    if (j->have_key) {
        memcpy(j->key, str->text, str->len);
        j->keylen = str->len;
    }
    return 0;
}

static int cmp_finding(const void *a, const void *b)
{
    const inspect_finding_t *x = a, *y = b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    if (x->end != y->end) return x->end > y->end ? -1 : 1;
    return x->rule - y->rule;
}

int inspect_scan_json(const inspect_engine_t *e, inspect_scratch_t *s, const char *data, size_t len,
                      inspect_cb cb, void *ctx, char *err, size_t errlen)
{
    return inspect_scan_json_flags(e, s, data, len, 0, cb, ctx, err, errlen);
}

int inspect_scan_json_flags(const inspect_engine_t *e, inspect_scratch_t *s, const char *data,
                            size_t len, unsigned flags, inspect_cb cb, void *ctx, char *err,
                            size_t errlen)
{
    json_scratch_t js;
    json_scratch_init(&js);
    json_ctx_t j = {.e = e, .s = s, .flags = flags};
    int rc = json_walk(data, len, &js, json_on_string, &j, err, errlen);
    json_scratch_free(&js);
    if (rc != 0) {
        free(j.out.v);
        return rc == -1 || rc == -2 ? -2 : rc;
    }
    if (j.out.n > 1) qsort(j.out.v, j.out.n, sizeof *j.out.v, cmp_finding);
    uint32_t line = 1;
    size_t line_start = 0, scanned = 0;
    for (size_t i = 0; i < j.out.n && rc == 0; i++) {
        inspect_finding_t *f = &j.out.v[i];
        if (i > 0 && f->rule == j.out.v[i - 1].rule && f->start == j.out.v[i - 1].start) continue;
        advance_lines(data, &scanned, f->start, &line, &line_start);
        f->line = line;
        f->column = (uint32_t)(f->start - line_start) + 1;
        rc = cb(f, ctx);
    }
    free(j.out.v);
    return rc;
}
