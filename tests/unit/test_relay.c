/*
 * test_relay.c — unit tests of src/llm/relay.c: a pass-through stream is
 * emitted byte for byte in the call that brought it; in strip mode the
 * OpenAI usage-only chunk (and only it) is removed whatever the chunking
 * (every split point, one byte at a time, CRLF line ends); usage is counted
 * in both modes; a client that stops the relay stops it, with the usage
 * streamed so far still available.
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

#include "llm/relay.h"

#define OUTMAX 16384

typedef struct out {
    char buf[OUTMAX];
    size_t len;
    size_t calls;
    size_t stop_after; /* stop (return 1) once this many bytes were emitted; 0 = never */
} out_t;

static int emit(const char *data, size_t len, void *ctx)
{
    out_t *o = ctx;
    assert_true(o->len + len <= OUTMAX);
    memcpy(o->buf + o->len, data, len);
    o->len += len;
    o->calls++;
    return o->stop_after && o->len >= o->stop_after ? 1 : 0;
}

/* An OpenAI chat stream with stream_options.include_usage: deltas, the
 * finish chunk, the usage-only chunk, [DONE]. */
static const char CHUNK1[] =
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":"
    "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}],"
    "\"usage\":null}\n\n";
static const char CHUNK2[] = ": keep-alive\n\ndata: {\"id\":\"c1\",\"choices\":[{\"index\":0,"
                             "\"delta\":{\"content\":\"lo there\"},\"finish_reason\":\"stop\"}],"
                             "\"usage\":null}\n\n";
static const char USAGE[] = "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,"
                            "\"completion_tokens\":3,\"total_tokens\":15,"
                            "\"prompt_tokens_details\":{\"cached_tokens\":8}}}\n\n";
static const char DONE[] = "data: [DONE]\n\n";

static size_t build(char *s, bool crlf)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s%s%s%s", CHUNK1, CHUNK2, USAGE, DONE);
    if (!crlf) {
        strcpy(s, tmp);
        return strlen(s);
    }
    size_t o = 0;
    for (size_t i = 0; tmp[i]; i++) {
        if (tmp[i] == '\n') s[o++] = '\r';
        s[o++] = tmp[i];
    }
    s[o] = '\0';
    return o;
}

/* The stream without the usage chunk (same line ends). */
static size_t expected_stripped(char *s, bool crlf)
{
    char full[4096];
    size_t n = build(full, crlf);
    const char *u = strstr(full, crlf ? "data: {\"id\":\"c1\",\"choices\":[]"
                                      : "data: {\"id\":\"c1\",\"choices\":[]");
    assert_non_null(u);
    size_t start = (size_t)(u - full);
    /* the event runs to its blank line; in CRLF the range ends at the blank
     * line's CR, so that LF stays (inert for a client) */
    const char *blank = strstr(u, crlf ? "\r\n\r\n" : "\n\n");
    size_t end = (size_t)(blank - full) + (crlf ? 3 : 2);
    memcpy(s, full, start);
    memcpy(s + start, full + end, n - end);
    s[n - (end - start)] = '\0';
    return n - (end - start);
}

static void run_split(const char *s, size_t n, size_t split, bool strip, out_t *o, llm_usage_t *u)
{
    llm_relay_t r;
    memset(o, 0, sizeof *o);
    llm_relay_init(&r, LLM_OPENAI_CHAT, strip, 0, emit, o);
    assert_int_equal(llm_relay_feed(&r, s, split), 0);
    assert_int_equal(llm_relay_feed(&r, s + split, n - split), 0);
    assert_int_equal(llm_relay_finish(&r), 0);
    llm_relay_usage(&r, u);
    if (strip) assert_int_equal(r.stripped, 1);
    llm_relay_free(&r);
}

static void check_usage(const llm_usage_t *u)
{
    assert_true(u->seen);
    assert_int_equal(u->input, 12);
    assert_int_equal(u->cache_read, 8);
    assert_int_equal(u->output, 3);
    assert_int_equal(u->total, 15);
}

static void test_pass_through_every_split(void **state)
{
    (void)state;
    char s[4096];
    static out_t o;
    size_t n = build(s, false);
    for (size_t split = 0; split <= n; split++) {
        llm_usage_t u;
        run_split(s, n, split, false, &o, &u);
        assert_int_equal(o.len, n);
        assert_memory_equal(o.buf, s, n);
        check_usage(&u);
    }
}

static void test_strip_every_split(void **state)
{
    (void)state;
    for (int crlf = 0; crlf < 2; crlf++) {
        char s[4096], want[4096];
        static out_t o;
        size_t n = build(s, crlf), wn = expected_stripped(want, crlf);
        for (size_t split = 0; split <= n; split++) {
            llm_usage_t u;
            run_split(s, n, split, true, &o, &u);
            if (o.len != wn || memcmp(o.buf, want, wn) != 0)
                fail_msg("crlf=%d split=%zu: got %zu bytes, want %zu", crlf, split, o.len, wn);
            check_usage(&u);
        }
    }
}

/* One byte at a time: the deltas reach the client as soon as their event
 * is complete, before the next event has arrived. */
static void test_strip_byte_at_a_time(void **state)
{
    (void)state;
    char s[4096];
    static out_t o;
    memset(&o, 0, sizeof o);
    size_t n = build(s, false);
    llm_relay_t r;
    llm_relay_init(&r, LLM_OPENAI_CHAT, true, 0, emit, &o);
    size_t first_event_end = strlen(CHUNK1);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(llm_relay_feed(&r, s + i, 1), 0);
        if (i + 1 == first_event_end) assert_int_equal(o.len, first_event_end);
    }
    assert_int_equal(llm_relay_finish(&r), 0);
    assert_int_equal(o.len, n - strlen(USAGE));
    llm_relay_free(&r);
}

/* Strip only applies to OpenAI chat; Anthropic passes through untouched. */
static void test_anthropic_pass_through(void **state)
{
    (void)state;
    static const char s[] =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":"
        "{\"input_tokens\":20,\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n"
        "event: message_delta\ndata: "
        "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":7}}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    static out_t o;
    memset(&o, 0, sizeof o);
    llm_relay_t r;
    llm_relay_init(&r, LLM_ANTHROPIC, true, 0, emit, &o);
    assert_int_equal(llm_relay_feed(&r, s, sizeof s - 1), 0);
    assert_int_equal(o.len, sizeof s - 1); /* emitted in the same call */
    assert_int_equal(llm_relay_finish(&r), 0);
    llm_usage_t u;
    llm_relay_usage(&r, &u);
    assert_true(u.seen);
    assert_int_equal(u.input, 25);
    assert_int_equal(u.cache_read, 5);
    assert_int_equal(u.output, 7);
    llm_relay_free(&r);
}

/* The client goes away after the first event: the relay stops, later feeds
 * return the same status, and the usage so far is an estimate. */
static void test_client_stops(void **state)
{
    (void)state;
    char s[4096];
    static out_t o;
    memset(&o, 0, sizeof o);
    o.stop_after = 1;
    size_t n = build(s, false);
    llm_relay_t r;
    llm_relay_init(&r, LLM_OPENAI_CHAT, false, 0, emit, &o);
    size_t a = strlen(CHUNK1);
    assert_int_equal(llm_relay_feed(&r, s, a), 1);
    assert_int_equal(llm_relay_feed(&r, s + a, n - a), 1);
    assert_int_equal(o.len, a);
    llm_usage_t u;
    llm_relay_usage(&r, &u);
    assert_false(u.seen);
    assert_true(u.estimated);
    assert_int_equal(u.output, 1); /* "Hel": ceil(3 / 4) */
    llm_relay_free(&r);
}

/* An event over the limit is forwarded as it comes, never held whole. */
static void test_oversize_forwarded(void **state)
{
    (void)state;
    static char s[8192];
    static out_t o;
    memset(&o, 0, sizeof o);
    size_t n = 0;
    n += (size_t)sprintf(s, "data: ");
    memset(s + n, 'x', 3000);
    n += 3000;
    n += (size_t)sprintf(s + n, "\n\n%s", DONE);
    llm_relay_t r;
    llm_relay_init(&r, LLM_OPENAI_CHAT, true, 1024, emit, &o);
    assert_int_equal(llm_relay_feed(&r, s, 2048), 0);
    assert_true(o.len >= 1024); /* not held until its end */
    assert_true(r.hold_len < 2048);
    assert_int_equal(llm_relay_feed(&r, s + 2048, n - 2048), 0);
    assert_int_equal(llm_relay_finish(&r), 0);
    assert_int_equal(o.len, n);
    assert_memory_equal(o.buf, s, n);
    llm_relay_free(&r);
}

/* The same in strip mode: the client goes away during the first event; the
 * rest of the chunk is still parsed, so the provider's figures are seen. */
static void test_client_stops_strip(void **state)
{
    (void)state;
    char s[4096];
    static out_t o;
    memset(&o, 0, sizeof o);
    o.stop_after = 1;
    size_t n = build(s, false);
    llm_relay_t r;
    llm_relay_init(&r, LLM_OPENAI_CHAT, true, 0, emit, &o);
    assert_int_equal(llm_relay_feed(&r, s, n), 1);
    assert_int_equal(o.calls, 1);
    assert_int_equal(llm_relay_feed(&r, "data: x\n\n", 9), 1);
    assert_int_equal(llm_relay_finish(&r), 1);
    llm_usage_t u;
    llm_relay_usage(&r, &u);
    check_usage(&u);
    llm_relay_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pass_through_every_split),
        cmocka_unit_test(test_strip_every_split),
        cmocka_unit_test(test_strip_byte_at_a_time),
        cmocka_unit_test(test_anthropic_pass_through),
        cmocka_unit_test(test_client_stops),
        cmocka_unit_test(test_client_stops_strip),
        cmocka_unit_test(test_oversize_forwarded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
