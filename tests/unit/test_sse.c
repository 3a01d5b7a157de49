/*
 * test_sse.c — unit tests of src/llm/sse: the WHATWG field rules (event,
 * data joined with LF, id persistence and NUL, retry, comments, unknown
 * fields, "data" without a colon, one leading space stripped), CRLF / LF /
 * CR line ends, a CR and an LF split across chunks, the BOM (whole, split,
 * partial, not at the start), blocks that dispatch nothing, byte ranges,
 * oversize events, truncation at end of stream, the callback's stop value,
 * and chunk independence: every stream is also fed split at every byte
 * position (two pieces), at every pair of positions (three pieces, short
 * streams), and one byte at a time, and must give exactly the one-shot
 * events and sse_finish() result.
 *
 * Usage: test_sse [cmocka test-name filter].
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/sse.h"

/* ---- helpers -------------------------------------------------------------- */

/* Every event rendered into one log: "type|data|id|[start,end)|o\n". */
typedef struct log {
    char *p;
    size_t len, cap;
    size_t n;
    int stop_at; /* return 42 from the n-th event (1-based), 0 = never */
} log_t;

static void log_put(log_t *l, const char *s, size_t n)
{
    if (l->len + n + 1 > l->cap) {
        size_t cap = (l->cap ? l->cap * 2 : 1024) + n;
        char *np = realloc(l->p, cap);
        assert_non_null(np);
        l->p = np;
        l->cap = cap;
    }
    memcpy(l->p + l->len, s, n);
    l->len += n;
    l->p[l->len] = '\0';
}

static int on_event(const sse_event_t *ev, void *ctx)
{
    log_t *l = ctx;
    char num[64];
    assert_true(ev->start < ev->end);
    assert_int_equal(strlen(ev->type), ev->type_len);
    assert_true(ev->data[ev->data_len] == '\0');
    log_put(l, ev->type, ev->type_len);
    log_put(l, "|", 1);
    log_put(l, ev->data, ev->data_len);
    log_put(l, "|", 1);
    log_put(l, ev->id, ev->id_len);
    int k = snprintf(num, sizeof num, "|[%llu,%llu)|%d\n", (unsigned long long)ev->start,
                     (unsigned long long)ev->end, ev->oversize ? 1 : 0);
    log_put(l, num, (size_t)k);
    l->n++;
    return (l->stop_at && (int)l->n == l->stop_at) ? 42 : 0;
}

typedef struct result {
    log_t log;
    int fin;
    int feed_rc;
    uint64_t retry;
    bool has_retry;
} result_t;

static void result_free(result_t *r)
{
    free(r->log.p);
    memset(r, 0, sizeof *r);
}

/* Feed s[0..n) cut at the given positions (sorted, each in [0, n]). */
static void run(const char *s, size_t n, const size_t *cuts, size_t ncuts, size_t max, result_t *r)
{
    memset(r, 0, sizeof *r);
    sse_parser_t p;
    sse_init(&p, max, on_event, &r->log);
    size_t at = 0;
    for (size_t i = 0; i <= ncuts && r->feed_rc == 0; i++) {
        size_t to = i < ncuts ? cuts[i] : n;
        /* an exact-size heap copy of the piece, so ASan sees any over-read */
        char *piece = malloc(to - at + 1);
        assert_non_null(piece);
        memcpy(piece, s + at, to - at);
        r->feed_rc = sse_feed(&p, piece, to - at);
        free(piece);
        at = to;
    }
    if (r->feed_rc == 0) {
        r->fin = sse_finish(&p);
        assert_int_equal(p.pos, n);
    }
    r->retry = p.retry_ms;
    r->has_retry = p.has_retry;
    sse_free(&p);
}

static void assert_same(const result_t *a, const result_t *b, const char *what, size_t i, size_t j)
{
    bool same = a->log.len == b->log.len &&
                (a->log.len == 0 || memcmp(a->log.p, b->log.p, a->log.len) == 0);
    if (!same || a->fin != b->fin || a->feed_rc != b->feed_rc || a->retry != b->retry) {
        fprintf(stderr,
                "%s split at %zu,%zu differs:\n--- one-shot (fin %d)\n%s--- split (fin %d)\n%s",
                what, i, j, a->fin, a->log.p ? a->log.p : "", b->fin, b->log.p ? b->log.p : "");
        fail();
    }
}

/* One-shot, then every 2-piece split, every 3-piece split (short streams)
 * and byte by byte: all the same.  Returns the one-shot result. */
static void check_chunking(const char *s, size_t n, size_t max, result_t *one)
{
    run(s, n, NULL, 0, max, one);
    result_t r;
    for (size_t i = 0; i <= n; i++) {
        run(s, n, &i, 1, max, &r);
        assert_same(one, &r, "2-piece", i, 0);
        result_free(&r);
    }
    if (n <= 160) {
        for (size_t i = 0; i <= n; i++) {
            for (size_t j = i; j <= n; j++) {
                size_t c[2] = {i, j};
                run(s, n, c, 2, max, &r);
                assert_same(one, &r, "3-piece", i, j);
                result_free(&r);
            }
        }
    }
    size_t *bytes = malloc((n + 1) * sizeof *bytes);
    assert_non_null(bytes);
    for (size_t i = 0; i < n; i++)
        bytes[i] = i + 1;
    run(s, n, bytes, n ? n - 1 : 0, max, &r);
    assert_same(one, &r, "bytewise", 0, 0);
    result_free(&r);
    free(bytes);
}

#define CHECK(stream, max, want_log, want_fin)                                                     \
    do {                                                                                           \
        result_t res_;                                                                             \
        check_chunking(stream, sizeof(stream) - 1, max, &res_);                                    \
        assert_string_equal(res_.log.p ? res_.log.p : "", want_log);                               \
        assert_int_equal(res_.fin, want_fin);                                                      \
        result_free(&res_);                                                                        \
    } while (0)

/* ---- tests ---------------------------------------------------------------- */

static void test_basic_fields(void **state)
{
    (void)state;
    CHECK("data: hello\n\n", 0, "message|hello||[0,13)|0\n", SSE_END_CLEAN);
    /* event type, multi-line data, id */
    CHECK("event: add\ndata: 73857293\ndata:8\ndata\nid: 7\n\n", 0,
          "add|73857293\n8\n|7|[0,45)|0\n", SSE_END_CLEAN);
    /* only one leading space is stripped; no colon means an empty value */
    CHECK("data:  two\ndata\n\n", 0, "message| two\n||[0,17)|0\n", SSE_END_CLEAN);
    /* "data:" alone dispatches an empty data string */
    CHECK("data:\n\n", 0, "message|||[0,7)|0\n", SSE_END_CLEAN);
    /* the event type resets after each dispatch; the id persists */
    CHECK("event: a\nid: 1\ndata: x\n\ndata: y\n\nid\ndata: z\n\n", 0,
          "a|x|1|[0,24)|0\nmessage|y|1|[24,33)|0\nmessage|z||[33,45)|0\n", SSE_END_CLEAN);
    /* unknown fields, a colon in the value, field names are case-sensitive */
    CHECK("foo: bar\nData: no\ndata: a:b: c\n\n", 0, "message|a:b: c||[0,32)|0\n", SSE_END_CLEAN);
    /* event: with an empty value means "message" */
    CHECK("event:\ndata: e\n\n", 0, "message|e||[0,16)|0\n", SSE_END_CLEAN);
    /* an id containing NUL is ignored */
    CHECK("id: 5\ndata: a\n\nid: 6\0x\ndata: b\n\n", 0,
          "message|a|5|[0,15)|0\nmessage|b|5|[15,32)|0\n", SSE_END_CLEAN);
}

static void test_no_dispatch_blocks(void **state)
{
    (void)state;
    /* comments, keep-alives, event without data, blank lines: nothing */
    CHECK(": keep-alive\n\n:\n\nevent: ping\n\n\n\n\nid: 3\n\n", 0, "", SSE_END_CLEAN);
    /* a comment inside an event is part of its range */
    CHECK(": c\ndata: x\n\n\n\ndata: y\n\n", 0, "message|x||[0,13)|0\nmessage|y||[15,24)|0\n",
          SSE_END_CLEAN);
    /* the id set by a block that dispatched nothing still sticks */
    CHECK("id: 9\n\ndata: q\n\n", 0, "message|q|9|[7,16)|0\n", SSE_END_CLEAN);
}

static void test_retry(void **state)
{
    (void)state;
    result_t r;
    static const char s1[] = "retry: 1500\ndata: a\n\nretry: 12x\n\nretry:\n\n";
    check_chunking(s1, sizeof s1 - 1, 0, &r);
    assert_true(r.has_retry);
    assert_int_equal(r.retry, 1500);
    result_free(&r);
    static const char s2[] = "retry: 99999999999999999999999\n\n";
    check_chunking(s2, sizeof s2 - 1, 0, &r);
    assert_true(r.retry == UINT64_MAX);
    result_free(&r);
    static const char s3[] = "retry: -1\n\n";
    check_chunking(s3, sizeof s3 - 1, 0, &r);
    assert_false(r.has_retry);
    result_free(&r);
}

static void test_line_ends(void **state)
{
    (void)state;
    /* the same stream with LF, CRLF, CR and a mix */
    CHECK("event: e\ndata: 1\ndata: 2\n\ndata: 3\n\n", 0,
          "e|1\n2||[0,26)|0\nmessage|3||[26,35)|0\n", SSE_END_CLEAN);
    /* CRLF: the LF of the dispatching blank line is outside both ranges */
    CHECK("event: e\r\ndata: 1\r\ndata: 2\r\n\r\ndata: 3\r\n\r\n", 0,
          "e|1\n2||[0,29)|0\nmessage|3||[30,40)|0\n", SSE_END_CLEAN);
    CHECK("event: e\rdata: 1\rdata: 2\r\rdata: 3\r\r", 0,
          "e|1\n2||[0,26)|0\nmessage|3||[26,35)|0\n", SSE_END_CLEAN);
    CHECK("event: e\r\ndata: 1\rdata: 2\n\r\ndata: 3\n\r", 0,
          "e|1\n2||[0,27)|0\nmessage|3||[28,37)|0\n", SSE_END_CLEAN);
    /* CR CR is two line ends (a blank line), LF CR too, CR LF is one */
    CHECK("data: a\r\r\ndata: b\n\r", 0, "message|a||[0,9)|0\nmessage|b||[10,19)|0\n",
          SSE_END_CLEAN);
    /* data containing a lone CR cannot exist: CR ends the line */
    CHECK("data: a\rb\n\n", 0, "message|a||[0,11)|0\n", SSE_END_CLEAN);
}

static void test_crlf_split(void **state)
{
    (void)state;
    /* the CR ends chunk 1, the LF starts chunk 2: one line end, and the
     * event is dispatched as soon as the CR is seen */
    static const char s[] = "data: x\r\n\r\ndata: y\r\n\r\n";
    result_t r;
    size_t cut = 10; /* "data: x\r\n\r" | "\ndata: y..." */
    run(s, sizeof s - 1, &cut, 1, 0, &r);
    assert_string_equal(r.log.p, "message|x||[0,10)|0\nmessage|y||[11,21)|0\n");
    result_free(&r);

    log_t l;
    memset(&l, 0, sizeof l);
    sse_parser_t p;
    sse_init(&p, 0, on_event, &l);
    assert_int_equal(sse_feed(&p, s, 10), SSE_OK);
    assert_int_equal(l.n, 1); /* dispatched at the CR, before the LF arrived */
    assert_int_equal(sse_feed(&p, s + 10, 1), SSE_OK);
    assert_int_equal(l.n, 1);
    assert_int_equal(sse_feed(&p, s + 11, sizeof s - 12), SSE_OK);
    assert_int_equal(l.n, 2);
    assert_int_equal(sse_finish(&p), SSE_END_CLEAN);
    sse_free(&p);
    free(l.p);
}

static void test_bom(void **state)
{
    (void)state;
    CHECK("\xEF\xBB\xBF"
          "data: b\n\n",
          0, "message|b||[3,12)|0\n", SSE_END_CLEAN);
    /* only one BOM is stripped: a second one is part of the field name */
    CHECK("\xEF\xBB\xBF\xEF\xBB\xBF"
          "data: b\n\ndata: c\n\n",
          0, "message|c||[15,24)|0\n", SSE_END_CLEAN);
    /* a partial BOM is ordinary bytes */
    CHECK("\xEF\xBB"
          "data: b\n\ndata: c\n\n",
          0, "message|c||[11,20)|0\n", SSE_END_CLEAN);
    CHECK("\xEF", 0, "", SSE_END_TRUNCATED);
    CHECK("\xEF\xBB\xBF", 0, "", SSE_END_CLEAN);
    /* not at the start: data */
    CHECK("data: \xEF\xBB\xBFz\n\n", 0, "message|\xEF\xBB\xBFz||[0,12)|0\n", SSE_END_CLEAN);
}

static void test_truncated(void **state)
{
    (void)state;
    /* per the spec, an event without its blank line is not dispatched */
    CHECK("data: a\n\ndata: {\"partial\":", 0, "message|a||[0,9)|0\n", SSE_END_TRUNCATED);
    CHECK("data: a\n\ndata: b\n", 0, "message|a||[0,9)|0\n", SSE_END_TRUNCATED);
    CHECK("data: a\n\nda", 0, "message|a||[0,9)|0\n", SSE_END_TRUNCATED);
    /* ending on a comment or a non-data field is clean */
    CHECK("data: a\n\n: keep", 0, "message|a||[0,9)|0\n", SSE_END_CLEAN);
    CHECK("data: a\n\nevent: x\n", 0, "message|a||[0,9)|0\n", SSE_END_CLEAN);
    CHECK("", 0, "", SSE_END_CLEAN);

    /* after finish, feeding is refused */
    sse_parser_t p;
    sse_init(&p, 0, NULL, NULL);
    assert_int_equal(sse_feed(&p, "data: a\n", 8), SSE_OK);
    assert_int_equal(sse_finish(&p), SSE_END_TRUNCATED);
    assert_string_equal(p.err, "stream ended inside the event that began at offset 0");
    assert_int_equal(sse_feed(&p, "\n", 1), SSE_ESTATE);
    assert_int_equal(sse_finish(&p), SSE_ESTATE);
    assert_int_equal(sse_feed(&p, NULL, 0), SSE_ESTATE);
    sse_free(&p);
}

static void test_oversize(void **state)
{
    (void)state;
    /* max 16: "data: 0123456789\n" is 17 bytes: crosses at byte 17 */
    CHECK("data: 0123456789\n\ndata: ok\n\n", 16, "|||[0,17)|1\nmessage|ok||[18,28)|0\n",
          SSE_END_CLEAN);
    /* exactly at the limit: "data: 01234567\n\n" is 16 bytes through the
     * blank line's LF */
    CHECK("data: 01234567\n\n", 16, "message|01234567||[0,16)|0\n", SSE_END_CLEAN);
    /* one more: the blank line's own LF crosses the limit */
    CHECK("data: 012345678\n\ndata: ok\n\n", 16, "|||[0,17)|1\nmessage|ok||[17,27)|0\n",
          SSE_END_CLEAN);
    /* several lines, each small, sum large; skipping ignores blank-looking
     * CRs inside lines; the report is once per event */
    CHECK("data: aaaaaa\ndata: bbbbbb\ndata: cccccc\r\n\r\ndata: a\n\n"
          "data: dddddddddddddddddddddddddddddddd\n\n",
          16, "|||[0,17)|1\nmessage|a||[42,51)|0\n|||[51,68)|1\n", SSE_END_CLEAN);
    /* truncated inside an oversize event */
    CHECK("data: 0123456789abcdef", 16, "|||[0,17)|1\n", SSE_END_TRUNCATED);
    /* the CRLF's LF counts in the block when the line is not blank */
    CHECK("data: 012345678\r\n\r\n", 16, "|||[0,17)|1\n", SSE_END_CLEAN);

    /* default bound is 4 MiB; a 5 MiB line is reported once, memory stays bounded */
    size_t n = (size_t)5 << 20;
    char *big = malloc(n + 32);
    assert_non_null(big);
    memcpy(big, "data: ", 6);
    memset(big + 6, 'x', n - 6);
    memcpy(big + n, "\n\ndata: after\n\n", 15);
    log_t l;
    memset(&l, 0, sizeof l);
    sse_parser_t p;
    sse_init(&p, 0, on_event, &l);
    for (size_t o = 0; o < n + 15; o += 65536) {
        size_t k = n + 15 - o < 65536 ? n + 15 - o : 65536;
        assert_int_equal(sse_feed(&p, big + o, k), SSE_OK);
    }
    assert_int_equal(sse_finish(&p), SSE_END_CLEAN);
    assert_int_equal(p.oversized, 1);
    assert_int_equal(p.dispatched, 1);
    assert_true(p.line.cap <= SSE_DEFAULT_MAX_EVENT + 1);
    char want[128];
    snprintf(want, sizeof want, "|||[0,%zu)|1\nmessage|after||[%zu,%zu)|0\n",
             SSE_DEFAULT_MAX_EVENT + 1, n + 2, n + 15);
    assert_string_equal(l.p, want);
    sse_free(&p);
    free(l.p);
    free(big);
}

static void test_callback_stop(void **state)
{
    (void)state;
    static const char s[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    log_t l;
    memset(&l, 0, sizeof l);
    l.stop_at = 2;
    sse_parser_t p;
    sse_init(&p, 0, on_event, &l);
    assert_int_equal(sse_feed(&p, s, sizeof s - 1), 42);
    assert_int_equal(l.n, 2);
    assert_int_equal(sse_feed(&p, "data: 4\n\n", 9), SSE_ESTATE);
    assert_int_equal(sse_finish(&p), SSE_ESTATE);
    assert_int_equal(l.n, 2);
    sse_free(&p);
    free(l.p);

    /* with no callback, events are only counted */
    sse_init(&p, 0, NULL, NULL);
    assert_int_equal(sse_feed(&p, s, sizeof s - 1), SSE_OK);
    assert_int_equal(p.dispatched, 3);
    assert_int_equal(sse_finish(&p), SSE_END_CLEAN);
    sse_free(&p);
}

static void test_provider_streams(void **state)
{
    (void)state;
    /* Anthropic: event names, LF */
    CHECK("event: message_start\n"
          "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25}}}\n\n"
          "event: ping\n"
          "data: {\"type\": \"ping\"}\n\n"
          "event: message_stop\n"
          "data: {\"type\":\"message_stop\"}\n\n",
          0,
          "message_start|{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":"
          "25}}}||[0,93)|0\n"
          "ping|{\"type\": \"ping\"}||[93,129)|0\n"
          "message_stop|{\"type\":\"message_stop\"}||[129,180)|0\n",
          SSE_END_CLEAN);
    /* Gemini alt=sse: CRLF CRLF */
    CHECK("data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi\"}]}}]}\r\n\r\n"
          "data: {\"usageMetadata\": {\"promptTokenCount\": 4}}\r\n\r\n",
          0,
          "message|{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi\"}]}}]}||"
          "[0,67)|0\n"
          "message|{\"usageMetadata\": {\"promptTokenCount\": 4}}||[68,119)|0\n",
          SSE_END_CLEAN);
    /* OpenAI: [DONE] */
    CHECK("data: {\"choices\":[]}\n\ndata: [DONE]\n\n", 0,
          "message|{\"choices\":[]}||[0,22)|0\nmessage|[DONE]||[22,36)|0\n", SSE_END_CLEAN);
}

/* Pseudo-random streams from a small alphabet of SSE fragments: chunking
 * must never matter. */
static void test_random_streams(void **state)
{
    (void)state;
    static const char *const frag[] = {"data",  ":",  " ",     "x", "\n",  "\r",           "\r\n",
                                       "event", "id", "retry", "1", ": c", "\xEF\xBB\xBF", "\0"};
    uint64_t rng = 0x2545F4914F6CDD1Dull;
    char s[120];
    for (int iter = 0; iter < 300; iter++) {
        size_t n = 0;
        while (n < 60) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            size_t k = (size_t)(rng % (sizeof frag / sizeof frag[0]));
            size_t fl = frag[k][0] ? strlen(frag[k]) : 1;
            memcpy(s + n, frag[k], fl);
            n += fl;
        }
        result_t one;
        check_chunking(s, n, 12 + (size_t)(rng % 40), &one);
        result_free(&one);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_fields),   cmocka_unit_test(test_no_dispatch_blocks),
        cmocka_unit_test(test_retry),          cmocka_unit_test(test_line_ends),
        cmocka_unit_test(test_crlf_split),     cmocka_unit_test(test_bom),
        cmocka_unit_test(test_truncated),      cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_callback_stop),  cmocka_unit_test(test_provider_streams),
        cmocka_unit_test(test_random_streams),
    };
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
