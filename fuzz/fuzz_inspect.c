/*
 * libFuzzer harness for the inspection engine: the same input is scanned as
 * text, as a stream in fuzzer-chosen chunk sizes, and as JSON, with the
 * built-in rules.  Checks: findings lie inside the input and arrive sorted;
 * the stream finds exactly what the one-shot scan finds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inspect/inspect.h"

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
    inspect_scan_json(engine, scratch, text, len, check, &js, err, sizeof err);
    return 0;
}
