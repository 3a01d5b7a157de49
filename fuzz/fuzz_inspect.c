/*
 * libFuzzer harness for the inspection engine: the same input is scanned as
 * text, as a stream in fuzzer-chosen chunk sizes, and as JSON, with the
 * built-in rules; then as a payload (INSPECT_SCAN_TEXT_PATHS) into a
 * verdict, and redacted.  Checks: findings lie inside the input and arrive
 * sorted; the stream finds exactly what the one-shot scan finds; payload
 * scans find at least as much; redaction of a valid JSON document succeeds
 * and gives valid JSON, of text always succeeds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inspect/inspect.h"
#include "inspect/json.h"
#include "inspect/verdict.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXF 256

typedef struct acc {
    size_t len;
    uint64_t last_start;
    size_t n;
    uint64_t start[MAXF], end[MAXF];
} acc_t;

static int check(const inspect_finding_t *f, void *ctx)
{
    acc_t *a = ctx;
    if (f->end > a->len || f->start > f->end) abort();
    if (f->start < a->last_start) abort();
    a->last_start = f->start;
    if (f->line == 0 || f->column == 0) abort();
    if (a->n < MAXF) {
        a->start[a->n] = f->start;
        a->end[a->n] = f->end;
    }
    a->n++;
    return 0;
}

static inspect_action_t redact_all(const void *ctx, const inspect_finding_t *f)
{
    (void)ctx;
    (void)f;
    return INSPECT_REDACT;
}

struct both {
    acc_t *acc;
    inspect_verdict_t *v;
};

static int check_both(const inspect_finding_t *f, void *ctx)
{
    struct both *b = ctx;
    check(f, b->acc);
    return inspect_verdict_on_finding(f, b->v);
}

static inspect_engine_t *engine;
static inspect_scratch_t *scratch;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!engine) {
        char err[512];
        if (inspect_engine_load_with(inspect_builtin_rules, NULL, &engine, err, sizeof err) < 0)
            abort();
        scratch = inspect_scratch_new(engine);
    }
    if (size < 1) return 0;
    size_t step = (size_t)data[0] * 13 + 1;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    acc_t one = {.len = len};
    inspect_scan_text(engine, scratch, text, len, check, &one);

    acc_t st = {.len = len};
    inspect_stream_t *s = inspect_stream_new(engine, scratch, check, &st);
    for (size_t pos = 0; pos < len; pos += step)
        inspect_stream_feed(s, text + pos, len - pos < step ? len - pos : step);
    inspect_stream_finish(s);
    inspect_stream_free(s);
    if (st.n != one.n) abort();
    for (size_t i = 0; i < one.n && i < MAXF; i++)
        if (st.start[i] != one.start[i] || st.end[i] != one.end[i]) abort();

    acc_t js = {.len = len};
    char err[128];
    int jrc = inspect_scan_json(engine, scratch, text, len, check, &js, err, sizeof err);

    /* payloads: text paths on, every finding redacted */
    acc_t pt = {.len = len};
    inspect_verdict_t v;
    inspect_verdict_init(&v, redact_all, NULL);
    struct both b = {&pt, &v};
    if (inspect_scan_text_flags(engine, scratch, text, len, INSPECT_SCAN_TEXT_PATHS, check_both,
                                &b) == 0) {
        if (pt.n < one.n) abort();
        char *out = NULL;
        size_t outlen = 0;
        if (inspect_redact_text(&v, text, len, &out, &outlen) != 0 && !v.failed) abort();
        free(out);
    }
    inspect_verdict_free(&v);

    if (jrc == 0) {
        acc_t pj = {.len = len};
        inspect_verdict_init(&v, redact_all, NULL);
        b = (struct both){&pj, &v};
        if (inspect_scan_json_flags(engine, scratch, text, len, INSPECT_SCAN_TEXT_PATHS, check_both,
                                    &b, err, sizeof err) != 0)
            abort(); /* it parsed a moment ago */
        if (pj.n < js.n) abort();
        char *out = NULL;
        size_t outlen = 0;
        if (inspect_redact_json(&v, text, len, &out, &outlen, err, sizeof err) == 0) {
            json_scratch_t sc;
            json_scratch_init(&sc);
            if (json_walk(out, outlen, &sc, NULL, NULL, err, sizeof err) != 0) abort();
            json_scratch_free(&sc);
        } else if (!v.failed) {
            abort();
        }
        free(out);
        inspect_verdict_free(&v);
    }
    return 0;
}
