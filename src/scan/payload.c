/*
 * payload — `cdeguard inspect`: one payload, judged the way the LLM gateway
 * judges a request body.
 *
 * Where `cdeguard scan` looks for secrets in a code base, this command
 * answers "may this leave the workspace?" for one body: every finding gets
 * its action from the config (inspect.rule_actions, inspect.actions, the
 * rule's own), the verdict is the highest action, and with --redact the
 * body that may leave is written out (JSON stays valid).  File paths the
 * text mentions (`cat .env`, tool-call file arguments, head/tail headers)
 * count as restricted-file findings, as they do for the gateway.
 *
 * Flow: options -> engine (the config's, or the built-in rules) -> read the
 * payload whole (bounded by --max-size) -> scan (JSON when it parses, or as
 * told) into a verdict -> a JSON report, or the redacted payload.
 *
 * Memory: the payload buffer, the findings and the verdict are owned here
 * and freed before returning; the engine belongs to the config when one is
 * given.  Secrets are never printed: the report carries fingerprints and
 * masked previews only.
 */
#include "scan/scan.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "inspect/inspect.h"
#include "inspect/verdict.h"
#include "scan/scan_int.h"

#define PAYLOAD_DEFAULT_MAX ((uint64_t)64 * 1024 * 1024)
/* one payload is scanned whole; JSON offsets are 32-bit */
#define PAYLOAD_LIMIT ((uint64_t)1024 * 1024 * 1024)

const char payload_usage[] =
    "usage: cdeguard inspect [options] [FILE|-]\n"
    "\n"
    "Judges one payload (what an agent would send to an LLM provider) the way\n"
    "the gateway does: secrets, PII and restricted files in its content, and the\n"
    "file paths it mentions (`cat .env`, {\"file_path\": ...} tool arguments,\n"
    "`==> id_rsa <==` headers, code-fence titles).  FILE '-' or none: standard input.\n"
    "\n"
    "  -c, --config FILE   rules and actions from this cdeguard config (its\n"
    "                      inspect: section); built-in rules and actions without\n"
    "  --format FMT        auto (default: JSON when the payload parses as JSON),\n"
    "                      json or text\n"
    "  --redact            write the payload that may leave to standard output:\n"
    "                      each finding whose action is redact replaced by\n"
    "                      [REDACTED:<rule-id>] (JSON stays valid); nothing when\n"
    "                      the verdict is block\n"
    "  --max-size SIZE     largest payload read (default 64MiB, at most 1GiB)\n"
    "  -q, --quiet         no summary on standard error\n"
    "\n"
    "Without --redact, a JSON report goes to standard output: the verdict, and\n"
    "each finding with its rule, action, range, fingerprint and masked preview.\n"
    "Exit status: 0 the payload may leave as is (clean, or alerts only),\n"
    "1 blocked, 3 redacted, 2 error.\n";

typedef enum { PAYLOAD_AUTO, PAYLOAD_JSON, PAYLOAD_TEXT } payload_format_t;

typedef struct payload {
    const char *config_path, *input;
    payload_format_t format;
    bool redact, quiet;
    uint64_t max;
    config_t *cfg;
    inspect_engine_t *eng; /* the config's, or owned (built-in rules) */
    bool own_eng;
    inspect_verdict_t verdict;
    inspect_finding_t *find; /* with the action each was given */
    size_t nfind, capfind;
    bool oom;
} payload_t;

static void payload_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void payload_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("cdeguard inspect: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int payload_args(payload_t *p, int argc, char **argv)
{
    p->max = PAYLOAD_DEFAULT_MAX;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = "";
        bool takes = !strcmp(a, "-c") || !strcmp(a, "--config") || !strcmp(a, "--format") ||
                     !strcmp(a, "--max-size");
        if (takes) {
            if (i + 1 >= argc) {
                payload_error("%s needs a value", a);
                return -1;
            }
            v = argv[++i];
        }
        if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
            p->config_path = v;
        } else if (!strcmp(a, "--format")) {
            if (!strcmp(v, "auto"))
                p->format = PAYLOAD_AUTO;
            else if (!strcmp(v, "json"))
                p->format = PAYLOAD_JSON;
            else if (!strcmp(v, "text"))
                p->format = PAYLOAD_TEXT;
            else {
                payload_error("--format must be auto, json or text, not '%s'", v);
                return -1;
            }
        } else if (!strcmp(a, "--max-size")) {
            if (config_parse_size(v, &p->max) < 0 || p->max == 0 || p->max > PAYLOAD_LIMIT) {
                payload_error("--max-size: bad size '%s' (e.g. 512KiB, 64MiB; at most 1GiB)", v);
                return -1;
            }
        } else if (!strcmp(a, "--redact")) {
            p->redact = true;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            p->quiet = true;
        } else if (a[0] == '-' && a[1] != '\0') {
            payload_error("unknown option '%s' (see cdeguard inspect --help)", a);
            return -1;
        } else if (p->input) {
            payload_error("one payload at a time ('%s' and '%s')", p->input, a);
            return -1;
        } else {
            p->input = a;
        }
    }
    return 0;
}

static int payload_engine(payload_t *p)
{
    char err[512] = "";
    if (p->config_path) {
        config_errors_t errs = {0};
        p->cfg = config_load(p->config_path, &errs);
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.msgs[i]);
        config_errors_free(&errs);
        if (!p->cfg) {
            payload_error("--config %s: the config has errors", p->config_path);
            return -1;
        }
        p->eng = p->cfg->inspect.engine;
    }
    if (!p->eng) {
        if (inspect_engine_load_with(inspect_builtin_rules, NULL, &p->eng, err, sizeof err) < 0) {
            payload_error("rules: %s", err);
            return -1;
        }
        p->own_eng = true;
    }
    return 0;
}

/* The whole payload, at most p->max bytes. */
static char *payload_read(const payload_t *p, size_t *len)
{
    const char *name = p->input && strcmp(p->input, "-") != 0 ? p->input : NULL;
    FILE *f = name ? fopen(name, "rb") : stdin;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    if (!f) {
        payload_error("%s: %s", name, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64 * 1024;
            if (nc > p->max + 1) nc = (size_t)p->max + 1;
            char *nb = nc > cap ? realloc(buf, nc) : NULL;
            if (!nb) {
                payload_error("%s: %s", name ? name : "stdin",
                              nc > cap ? "out of memory" : "larger than --max-size");
                goto fail;
            }
            buf = nb;
            cap = nc;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
        if (n > p->max) {
            payload_error("%s: larger than --max-size (%llu bytes)", name ? name : "stdin",
                          (unsigned long long)p->max);
            goto fail;
        }
    }
    if (ferror(f)) {
        payload_error("%s: %s", name ? name : "stdin", strerror(errno));
        goto fail;
    }
    if (name) fclose(f);
    *len = n;
    return buf ? buf : calloc(1, 1);
fail:
    if (name) fclose(f);
    free(buf);
    return NULL;
}

static inspect_action_t payload_resolve(const void *ctx, const inspect_finding_t *f)
{
    return config_inspect_action(ctx, f);
}

static int payload_on_finding(const inspect_finding_t *f, void *ctx)
{
    payload_t *p = ctx;
    int a = inspect_verdict_add(&p->verdict, f);
    if (a < 0) return -1;
    if (p->nfind == p->capfind) {
        size_t nc = p->capfind ? p->capfind * 2 : 32;
        inspect_finding_t *nf = realloc(p->find, nc * sizeof *nf);
        if (!nf) {
            p->oom = true;
            return -1;
        }
        p->find = nf;
        p->capfind = nc;
    }
    p->find[p->nfind] = *f;
    p->find[p->nfind++].action = (inspect_action_t)a;
    return 0;
}

static void payload_report(const payload_t *p, const char *format, size_t len)
{
    FILE *o = stdout;
    fprintf(o, "{\"verdict\":\"%s\",\"format\":\"%s\",\"bytes\":%zu,\"findings\":[",
            inspect_verdict_name(p->verdict.action), format, len);
    for (size_t i = 0; i < p->nfind; i++) {
        const inspect_finding_t *f = &p->find[i];
        fputs(i ? ",\n{\"rule_id\":" : "\n{\"rule_id\":", o);
        scan_json_str(o, f->rule_id, strlen(f->rule_id));
        fprintf(o,
                ",\"category\":\"%s\",\"action\":\"%s\",\"start\":%llu,\"end\":%llu,"
                "\"line\":%u,\"column\":%u,\"fingerprint\":\"%s\",\"preview\":",
                inspect_category_name(f->category), inspect_action_name(f->action),
                (unsigned long long)f->start, (unsigned long long)f->end, f->line, f->column,
                f->fingerprint);
        scan_json_str(o, f->preview, strlen(f->preview));
        fputc('}', o);
    }
    fputs("],\"rules\":[", o);
    for (size_t i = 0; i < p->verdict.nrules; i++) {
        const inspect_verdict_rule_t *r = &p->verdict.rules[i];
        fputs(i ? ",{\"rule_id\":" : "{\"rule_id\":", o);
        scan_json_str(o, r->rule_id, strlen(r->rule_id));
        fprintf(o, ",\"category\":\"%s\",\"action\":\"%s\",\"count\":%zu}",
                inspect_category_name(r->category), inspect_action_name(r->action), r->count);
    }
    fputs("]}\n", o);
}

/* "verdict redact: email-address x2, aws-access-key-id x1" on stderr. */
static void payload_summary(const payload_t *p)
{
    fprintf(stderr, "cdeguard inspect: %s", inspect_verdict_name(p->verdict.action));
    for (size_t i = 0; i < p->verdict.nrules; i++)
        fprintf(stderr, "%s%s x%zu (%s)", i ? ", " : ": ", p->verdict.rules[i].rule_id,
                p->verdict.rules[i].count, inspect_action_name(p->verdict.rules[i].action));
    fputc('\n', stderr);
}

/* The body that may leave, on stdout. -1 on error. */
static int payload_write_redacted(const payload_t *p, const char *buf, size_t len, bool json)
{
    char *out = NULL, err[256] = "";
    size_t outlen = 0;
    int rc;
    if (p->verdict.action != INSPECT_REDACT) {
        rc = fwrite(buf, 1, len, stdout) == len ? 0 : -1;
    } else {
        rc = json ? inspect_redact_json(&p->verdict, buf, len, &out, &outlen, err, sizeof err)
                  : inspect_redact_text(&p->verdict, buf, len, &out, &outlen);
        if (rc < 0)
            payload_error("cannot redact: %s", err[0] ? err : "out of memory");
        else
            rc = fwrite(out, 1, outlen, stdout) == outlen ? 0 : -1;
        free(out);
    }
    if (fflush(stdout) != 0) rc = -1;
    return rc;
}

int payload_main(int argc, char **argv)
{
    payload_t p;
    memset(&p, 0, sizeof p);
    int status = 2;
    char *buf = NULL, err[256] = "";
    size_t len = 0;
    inspect_scratch_t *scratch = NULL;

    if (payload_args(&p, argc, argv) < 0) goto out;
    if ((!p.input || !strcmp(p.input, "-")) && isatty(STDIN_FILENO)) {
        payload_error("no payload: give a FILE, or pipe one into standard input");
        goto out;
    }
    if (payload_engine(&p) < 0) goto out;
    if (!(buf = payload_read(&p, &len))) goto out;
    if (!(scratch = inspect_scratch_new(p.eng))) {
        payload_error("out of memory");
        goto out;
    }
    inspect_verdict_init(&p.verdict, p.cfg ? payload_resolve : NULL, p.cfg);
    bool json = false;
    int rc = 0;
    if (p.format != PAYLOAD_TEXT) {
        rc = inspect_scan_json_flags(p.eng, scratch, buf, len, INSPECT_SCAN_TEXT_PATHS,
                                     payload_on_finding, &p, err, sizeof err);
        json = rc != -2;
        if (rc == -2 && p.format == PAYLOAD_JSON) {
            payload_error("not valid JSON: %s", err);
            goto out;
        }
    }
    if (!json) {
        /* auto and not JSON: drop whatever a partial walk recorded */
        inspect_verdict_free(&p.verdict);
        inspect_verdict_init(&p.verdict, p.cfg ? payload_resolve : NULL, p.cfg);
        p.nfind = 0;
        rc = inspect_scan_text_flags(p.eng, scratch, buf, len, INSPECT_SCAN_TEXT_PATHS,
                                     payload_on_finding, &p);
    }
    if (rc != 0 || p.oom || p.verdict.failed) {
        payload_error("the scan failed (out of memory or too many findings): treat as blocked");
        goto out;
    }
    if (!p.quiet) payload_summary(&p);
    if (p.redact) {
        if (p.verdict.action != INSPECT_BLOCK && payload_write_redacted(&p, buf, len, json) < 0)
            goto out;
    } else {
        payload_report(&p, json ? "json" : "text", len);
        if (fflush(stdout) != 0) goto out;
    }
    status = p.verdict.action == INSPECT_BLOCK ? 1 : p.verdict.action == INSPECT_REDACT ? 3 : 0;
out:
    inspect_verdict_free(&p.verdict);
    inspect_scratch_free(scratch);
    if (p.own_eng) inspect_engine_free(p.eng);
    config_unref(p.cfg);
    free(p.find);
    free(buf);
    return status;
}
