/*
 * verdict — findings → action, per-rule counts and redaction ranges, and
 * the redacted payload (see verdict.h for the contract).
 *
 * Ranges are kept as added; inspect_verdict_spans() sorts a copy by start
 * (then longest, then first added) and merges every range that overlaps or touches the
 * current one, so the output has at most one label per run of secret bytes.
 * Text redaction copies the gaps and writes the labels into one buffer
 * sized exactly in a first pass; JSON redaction hands the merged ranges to
 * json_redact(), which widens them to whole escapes and keeps the document
 * valid.
 */
#include "inspect/verdict.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inspect/json.h"

#define VERDICT_LABEL_PREFIX "[REDACTED:"
#define VERDICT_LABEL_SUFFIX "]"
#define VERDICT_LABEL_MAX 160 /* a rule id is short; longer ids are cut */

void inspect_verdict_init(inspect_verdict_t *v, inspect_action_fn resolve, const void *ctx)
{
    memset(v, 0, sizeof *v);
    v->action = INSPECT_VERDICT_CLEAN;
    v->resolve = resolve;
    v->resolve_ctx = ctx;
}

void inspect_verdict_free(inspect_verdict_t *v)
{
    if (!v) return;
    free(v->rules);
    free(v->spans);
    v->rules = NULL;
    v->spans = NULL;
    v->nrules = v->caprules = v->nspans = v->capspans = 0;
}

static void *verdict_grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return p;
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    if (ncap > SIZE_MAX / size) return NULL;
    void *np = realloc(p, ncap * size);
    if (np) *cap = ncap;
    return np;
}

static int verdict_fail(inspect_verdict_t *v)
{
    v->failed = true;
    v->action = INSPECT_BLOCK;
    return -1;
}

int inspect_verdict_add(inspect_verdict_t *v, const inspect_finding_t *f)
{
    inspect_action_t a = v->resolve ? v->resolve(v->resolve_ctx, f) : f->action;
    if (a != INSPECT_ALERT && a != INSPECT_REDACT && a != INSPECT_BLOCK) a = INSPECT_BLOCK;

    inspect_verdict_rule_t *r = NULL;
    for (size_t i = 0; i < v->nrules; i++)
        if (v->rules[i].rule == f->rule) r = &v->rules[i];
    if (!r) {
        void *np = verdict_grow(v->rules, &v->caprules, v->nrules + 1, sizeof *v->rules);
        if (!np) return verdict_fail(v);
        v->rules = np;
        r = &v->rules[v->nrules++];
        *r = (inspect_verdict_rule_t){.rule = f->rule,
                                      .rule_id = f->rule_id ? f->rule_id : "",
                                      .category = f->category,
                                      .action = a};
    }
    r->count++;
    if (a > r->action) r->action = a;
    v->nfindings++;
    if ((int)a > v->action) v->action = (int)a;
    if (a == INSPECT_ALERT || f->end <= f->start) return (int)a;

    if (v->nspans >= INSPECT_VERDICT_MAX_SPANS) return verdict_fail(v);
    void *np = verdict_grow(v->spans, &v->capspans, v->nspans + 1, sizeof *v->spans);
    if (!np) return verdict_fail(v);
    v->spans = np;
    v->spans[v->nspans] = (inspect_verdict_span_t){.start = f->start,
                                                   .end = f->end,
                                                   .rule_id = f->rule_id ? f->rule_id : "",
                                                   .seq = v->nspans};
    v->nspans++;
    return (int)a;
}

int inspect_verdict_on_finding(const inspect_finding_t *f, void *ctx)
{
    return inspect_verdict_add(ctx, f) < 0 ? -1 : 0;
}

const char *inspect_verdict_name(int action)
{
    switch (action) {
    case INSPECT_ALERT:
        return "alert";
    case INSPECT_REDACT:
        return "redact";
    case INSPECT_BLOCK:
        return "block";
    default:
        return "clean";
    }
}

static int verdict_span_cmp(const void *pa, const void *pb)
{
    const inspect_verdict_span_t *a = pa, *b = pb;
    if (a->start != b->start) return a->start < b->start ? -1 : 1;
    if (a->end != b->end) return a->end > b->end ? -1 : 1; /* longer first */
    return a->seq < b->seq ? -1 : a->seq > b->seq;         /* the first added: stable labels */
}

int inspect_verdict_spans(const inspect_verdict_t *v, inspect_verdict_span_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (v->nspans == 0) return 0;
    inspect_verdict_span_t *s = malloc(v->nspans * sizeof *s);
    if (!s) return -1;
    memcpy(s, v->spans, v->nspans * sizeof *s);
    qsort(s, v->nspans, sizeof *s, verdict_span_cmp);
    size_t m = 0;
    for (size_t i = 0; i < v->nspans; i++) {
        if (m > 0 && s[i].start <= s[m - 1].end) { /* overlaps or touches */
            if (s[i].end > s[m - 1].end) s[m - 1].end = s[i].end;
            continue;
        }
        s[m++] = s[i];
    }
    *out = s;
    *n = m;
    return 0;
}

/* "[REDACTED:<id>]" into buf (id cut to fit; a byte outside
 * [A-Za-z0-9._-] becomes '_', so the label needs no escaping in JSON); its
 * length. */
static size_t verdict_label(const char *id, char *buf, size_t buflen)
{
    size_t o = 0, pl = sizeof VERDICT_LABEL_PREFIX - 1, sl = sizeof VERDICT_LABEL_SUFFIX - 1;
    memcpy(buf, VERDICT_LABEL_PREFIX, pl);
    o = pl;
    for (size_t i = 0; id[i] && o + sl + 1 < buflen; i++) {
        char ch = id[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        buf[o++] = ok ? ch : '_';
    }
    memcpy(buf + o, VERDICT_LABEL_SUFFIX, sl);
    o += sl;
    buf[o] = '\0';
    return o;
}

int inspect_redact_text(const inspect_verdict_t *v, const char *in, size_t len, char **out,
                        size_t *outlen)
{
    inspect_verdict_span_t *s = NULL;
    size_t n = 0, total = 0, pos = 0, o = 0;
    char *buf = NULL, label[VERDICT_LABEL_MAX];
    int rc = -1;

    *out = NULL;
    *outlen = 0;
    if (v->failed || inspect_verdict_spans(v, &s, &n) < 0) goto out;
    /* first pass: size, and every range inside the input */
    for (size_t i = 0; i < n; i++) {
        if (s[i].end > len) goto out;
        total += (size_t)(s[i].start - pos) + verdict_label(s[i].rule_id, label, sizeof label);
        pos = (size_t)s[i].end;
    }
    total += len - pos;
    buf = malloc(total + 1);
    if (!buf) goto out;
    pos = 0;
    for (size_t i = 0; i < n; i++) {
        size_t gap = (size_t)s[i].start - pos;
        memcpy(buf + o, in + pos, gap);
        o += gap;
        size_t ll = verdict_label(s[i].rule_id, label, sizeof label);
        memcpy(buf + o, label, ll);
        o += ll;
        pos = (size_t)s[i].end;
    }
    memcpy(buf + o, in + pos, len - pos);
    o += len - pos;
    buf[o] = '\0';
    *out = buf;
    *outlen = o;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    free(s);
    return rc;
}

int inspect_redact_json(const inspect_verdict_t *v, const char *in, size_t len, char **out,
                        size_t *outlen, char *err, size_t errlen)
{
    inspect_verdict_span_t *s = NULL;
    json_span_t *js = NULL;
    char(*labels)[VERDICT_LABEL_MAX] = NULL;
    size_t n = 0;
    int rc = -1;

    *out = NULL;
    *outlen = 0;
    if (v->failed) {
        snprintf(err, errlen, "the verdict is incomplete (out of memory or too many findings)");
        goto out;
    }
    if (inspect_verdict_spans(v, &s, &n) < 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (n > 0) {
        js = calloc(n, sizeof *js);
        labels = calloc(n, sizeof *labels);
        if (!js || !labels) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i].end > len) {
            snprintf(err, errlen, "a finding lies outside the document");
            goto out;
        }
        verdict_label(s[i].rule_id, labels[i], sizeof labels[i]);
        js[i] =
            (json_span_t){.start = (size_t)s[i].start, .end = (size_t)s[i].end, .label = labels[i]};
    }
    rc = json_redact(in, len, js, n, out, outlen, err, errlen) == 0 ? 0 : -1;
out:
    free(labels);
    free(js);
    free(s);
    return rc;
}
