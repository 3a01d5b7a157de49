/*
 * bench/scan_engine.c — in-process throughput and latency of the inspect engine.
 * Built and run by bench/scan.sh (links build/libcdeguard.a):
 *
 *   scan_engine text FILE [MIN_SECONDS]
 *       Reads FILE into memory and scans it whole with inspect_scan_text on
 *       one thread, run after run, until MIN_SECONDS (default 2) have passed
 *       and at least 3 runs were made (one untimed warm-up run first).
 *       Prints: ENGINE_TEXT bytes=… runs=… median_mbps=… min_mbps=… max_mbps=… findings=…
 *
 *   scan_engine json [ITER_1K ITER_100K ITER_1M]   (defaults 2000 2000 200)
 *       Builds OpenAI chat-completion request bodies of ~1 KB, ~100 KB and
 *       ~1 MB (system prompt, user/assistant turns with C and Python code,
 *       prose, a few planted fake secrets) and times each inspect_scan_json_flags
 *       call (with INSPECT_SCAN_TEXT_PATHS, as the gateway scans bodies) with
 *       CLOCK_MONOTONIC (warm-up iterations untimed).
 *       Prints per size: ENGINE_JSON label=… bytes=… iters=… p50_us=… p99_us=… max_us=… mean_us=… findings=…
 *
 *   scan_engine dump SIZE   — writes the generated body of SIZE bytes to stdout.
 *
 * MB = 10^6 bytes.  Exit status 0 ok, 2 on error.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inspect/inspect.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* nearest-rank percentile of a sorted array */
static double pct(const double *v, size_t n, double p)
{
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return v[k - 1];
}

static int count_cb(const inspect_finding_t *f, void *ctx)
{
    (void)f;
    (*(size_t *)ctx)++;
    return 0;
}

static void die(const char *msg)
{
    fprintf(stderr, "scan_engine: %s\n", msg);
    exit(2);
}

static inspect_engine_t *load_engine(void)
{
    inspect_engine_t *e = NULL;
    char err[512] = "";
    if (inspect_engine_load_with(inspect_builtin_rules, NULL, &e, err, sizeof err) != 0) {
        fprintf(stderr, "scan_engine: engine load failed: %s\n", err);
        exit(2);
    }
    return e;
}

/* ------------------------------------------------------------------ text --- */

static int run_text(const char *path, double min_s)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "scan_engine: %s: %s\n", path, strerror(errno));
        return 2;
    }
    if (fseek(f, 0, SEEK_END) != 0) die("fseek failed");
    long sz = ftell(f);
    if (sz <= 0) die("empty corpus file");
    rewind(f);
    char *buf = malloc((size_t)sz);
    if (!buf || fread(buf, 1, (size_t)sz, f) != (size_t)sz) die("cannot read corpus file");
    fclose(f);

    inspect_engine_t *e = load_engine();
    inspect_scratch_t *s = inspect_scratch_new(e);
    if (!s) die("inspect_scratch_new failed");

    size_t findings = 0;
    if (inspect_scan_text(e, s, buf, (size_t)sz, count_cb, &findings) < 0) die("scan failed");

    size_t cap = 64, n = 0;
    double *mbps = malloc(cap * sizeof *mbps);
    double t_start = now_s();
    while (n < 3 || now_s() - t_start < min_s) {
        size_t dummy = 0;
        double t0 = now_s();
        if (inspect_scan_text(e, s, buf, (size_t)sz, count_cb, &dummy) < 0) die("scan failed");
        double dt = now_s() - t0;
        if (n == cap) mbps = realloc(mbps, (cap *= 2) * sizeof *mbps);
        mbps[n++] = (double)sz / dt / 1e6;
    }
    qsort(mbps, n, sizeof *mbps, cmp_double);
    double med = n % 2 ? mbps[n / 2] : (mbps[n / 2 - 1] + mbps[n / 2]) / 2;
    printf("ENGINE_TEXT bytes=%ld runs=%zu median_mbps=%.1f min_mbps=%.1f max_mbps=%.1f findings=%zu\n",
           sz, n, med, mbps[0], mbps[n - 1], findings);
    free(mbps);
    inspect_scratch_free(s);
    inspect_engine_free(e);
    free(buf);
    return 0;
}

/* ------------------------------------------------------------------ json --- */

typedef struct {
    char *p;
    size_t len, cap;
} sbuf_t;

static void sb_put(sbuf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        while (b->len + n + 1 > b->cap) b->cap = b->cap ? b->cap * 2 : 4096;
        b->p = realloc(b->p, b->cap);
        if (!b->p) die("out of memory");
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}
static void sb_puts(sbuf_t *b, const char *s) { sb_put(b, s, strlen(s)); }

/* Append s as the inside of a JSON string (escaped). */
static void sb_json(sbuf_t *b, const char *s)
{
    for (; *s; s++) {
        char esc[8];
        switch (*s) {
        case '"': sb_put(b, "\\\"", 2); break;
        case '\\': sb_put(b, "\\\\", 2); break;
        case '\n': sb_put(b, "\\n", 2); break;
        case '\t': sb_put(b, "\\t", 2); break;
        default:
            if ((unsigned char)*s < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *s);
                sb_puts(b, esc);
            } else {
                sb_put(b, s, 1);
            }
        }
    }
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static void rand_chars(char *out, size_t n, const char *alphabet)
{
    size_t k = strlen(alphabet);
    for (size_t i = 0; i < n; i++) out[i] = alphabet[next_rand() % k];
    out[n] = 0;
}

static const char *CODE_C =
    "```c\n"
    "static int parse_header(const char *line, size_t len, struct header *out)\n"
    "{\n"
    "    const char *colon = memchr(line, ':', len);\n"
    "    if (!colon || colon == line) return -1;\n"
    "    out->name = strndup(line, (size_t)(colon - line));\n"
    "    const char *v = colon + 1;\n"
    "    while (v < line + len && (*v == ' ' || *v == '\\t')) v++;\n"
    "    out->value = strndup(v, (size_t)(line + len - v));\n"
    "    return out->name && out->value ? 0 : -1;\n"
    "}\n"
    "```\n";

static const char *CODE_PY =
    "```python\n"
    "def load_config(path: str) -> dict:\n"
    "    \"\"\"Read the YAML config and fill in defaults.\"\"\"\n"
    "    with open(path, encoding=\"utf-8\") as fh:\n"
    "        cfg = yaml.safe_load(fh) or {}\n"
    "    cfg.setdefault(\"timeout\", 30)\n"
    "    cfg.setdefault(\"retries\", 3)\n"
    "    for key in (\"endpoint\", \"region\"):\n"
    "        if key not in cfg:\n"
    "            raise KeyError(f\"missing {key} in {path}\")\n"
    "    return cfg\n"
    "```\n";

static const char *PROSE[] = {
    "The service retries failed uploads three times with exponential backoff, but the "
    "second attempt sometimes reuses a connection that the load balancer already closed. "
    "Can you explain why the error only shows up under load, and suggest a fix that keeps "
    "the retry budget unchanged?\n",
    "Here is the stack trace from the staging cluster. The worker crashes while parsing "
    "the header block of a chunked response; the same request works when sent directly "
    "to the origin. I suspect an off-by-one in the length check near the colon search.\n",
    "Sure. The problem is that the loop advances past the end of the buffer when the value "
    "is empty. Bound the whitespace skip by the end pointer and return an error when the "
    "name is empty; then add a unit test with a header line that ends right after the colon.\n",
    "Please refactor the configuration loader so that defaults live in one place, the "
    "error message names the file and the key, and the function can be unit tested "
    "without touching the file system. Keep the public signature as it is.\n",
};

/* Planted fake secrets: random bodies with real formats (not placeholders). */
static void planted(char *out, size_t cap, int which)
{
    char r[64];
    switch (which % 3) {
    case 0:
        rand_chars(r, 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
        snprintf(out, cap, "Our deploy script exports AWS_ACCESS_KEY_ID=AKIA%s before the upload step.\n", r);
        break;
    case 1:
        rand_chars(r, 36, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
        snprintf(out, cap, "git clone https://x-access-token:ghp_%s@github.com/acme/infra.git\n", r);
        break;
    default:
        rand_chars(r, 8, "0123456789");
        snprintf(out, cap, "If it still fails, mail the logs to jordan.miller@acme-corp.io or call +44 20 7946 %.4s.\n", r);
        break;
    }
}

/* Body of about `target` bytes: messages are added until the size is reached. */
static void build_body(sbuf_t *b, size_t target)
{
    b->len = 0;
    sb_puts(b, "{\"model\":\"gpt-4o\",\"temperature\":0.2,\"stream\":false,\"messages\":[");
    sb_puts(b, "{\"role\":\"system\",\"content\":\"You are a senior software engineer. Answer "
               "with code when useful and keep explanations short.\"}");
    /* one secret every ~1/3 of the body, at least one */
    size_t nsecrets = target >= 100000 ? 6 : 1;
    size_t every = target / (nsecrets + 1), next_secret = every, planted_n = 0;
    int turn = 0;
    char line[256];
    while (b->len + 200 < target) {
        const char *role = turn % 2 ? "assistant" : "user";
        sb_puts(b, ",{\"role\":\"");
        sb_puts(b, role);
        sb_puts(b, "\",\"content\":\"");
        size_t msg_start = b->len, msg_max = target > 8000 ? 6000 : target / 2;
        for (int k = 0; b->len - msg_start < msg_max && b->len + 300 < target; k++) {
            const char *piece;
            switch ((turn + k) % 4) {
            case 0: piece = PROSE[(turn + k) % 4]; break;
            case 1: piece = CODE_C; break;
            case 2: piece = PROSE[(turn + k + 1) % 4]; break;
            default: piece = CODE_PY; break;
            }
            if (b->len + strlen(piece) + 16 > target) piece = PROSE[3] + strlen(PROSE[3]) - 60;
            sb_json(b, piece);
            if (planted_n < nsecrets && b->len >= next_secret) {
                planted(line, sizeof line, (int)planted_n);
                sb_json(b, line);
                planted_n++;
                next_secret += every;
            }
        }
        sb_puts(b, "\"}");
        turn++;
    }
    if (planted_n == 0) { /* tiny bodies: one secret in a last user turn */
        planted(line, sizeof line, 1);
        sb_puts(b, ",{\"role\":\"user\",\"content\":\"");
        sb_json(b, line);
        sb_puts(b, "\"}");
    }
    sb_puts(b, "],\"max_tokens\":1024}");
}

static int run_json_one(inspect_engine_t *e, inspect_scratch_t *s, const char *label, size_t target,
                        int iters)
{
    sbuf_t b = {0};
    build_body(&b, target);
    char err[256] = "";
    size_t findings = 0;
    int rc = inspect_scan_json_flags(e, s, b.p, b.len, INSPECT_SCAN_TEXT_PATHS, count_cb, &findings,
                                     err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "scan_engine: %s body rejected (%d): %s\n", label, rc, err);
        return 2;
    }
    int warm = iters / 10 < 5 ? 5 : iters / 10;
    for (int i = 0; i < warm; i++) {
        size_t d = 0;
        inspect_scan_json_flags(e, s, b.p, b.len, INSPECT_SCAN_TEXT_PATHS, count_cb, &d, err, sizeof err);
    }
    double *us = malloc((size_t)iters * sizeof *us), sum = 0;
    for (int i = 0; i < iters; i++) {
        size_t d = 0;
        double t0 = now_s();
        inspect_scan_json_flags(e, s, b.p, b.len, INSPECT_SCAN_TEXT_PATHS, count_cb, &d, err, sizeof err);
        us[i] = (now_s() - t0) * 1e6;
        sum += us[i];
    }
    qsort(us, (size_t)iters, sizeof *us, cmp_double);
    printf("ENGINE_JSON label=%s bytes=%zu iters=%d p50_us=%.1f p99_us=%.1f max_us=%.1f mean_us=%.1f "
           "mbps_p50=%.1f findings=%zu\n",
           label, b.len, iters, pct(us, (size_t)iters, 50), pct(us, (size_t)iters, 99), us[iters - 1],
           sum / iters, (double)b.len / pct(us, (size_t)iters, 50), findings);
    fflush(stdout);
    free(us);
    free(b.p);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "text") == 0)
        return run_text(argv[2], argc > 3 ? atof(argv[3]) : 2.0);
    if (argc >= 3 && strcmp(argv[1], "dump") == 0) {
        sbuf_t b = {0};
        build_body(&b, (size_t)strtoull(argv[2], NULL, 10));
        fwrite(b.p, 1, b.len, stdout);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "json") == 0) {
        int it1 = argc > 2 ? atoi(argv[2]) : 2000, it2 = argc > 3 ? atoi(argv[3]) : 2000,
            it3 = argc > 4 ? atoi(argv[4]) : 200;
        if (it1 < 1 || it2 < 1 || it3 < 1) die("iteration counts must be >= 1");
        inspect_engine_t *e = load_engine();
        inspect_scratch_t *s = inspect_scratch_new(e);
        if (!s) die("inspect_scratch_new failed");
        int rc = run_json_one(e, s, "1KB", 1000, it1);
        if (!rc) rc = run_json_one(e, s, "100KB", 100000, it2);
        if (!rc) rc = run_json_one(e, s, "1MB", 1000000, it3);
        inspect_scratch_free(s);
        inspect_engine_free(e);
        return rc;
    }
    fprintf(stderr, "usage: scan_engine text FILE [MIN_SECONDS] | json [N1K N100K N1M] | dump SIZE\n");
    return 2;
}
