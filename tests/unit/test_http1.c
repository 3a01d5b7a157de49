/*
 * Unit tests for http1: head capture, stops, smuggling refusals, Connection
 * tokens, hop-by-hop filtering and target parsing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "http/http1.h"

/* Feed a whole request head; return the event of the head stop (or error)
 * and the check_request verdict through *checked. */
static http_event_t parse_head(http_msg_t *m, const char *raw, int *checked, const char **why)
{
    http_msg_init(m, HTTP_REQUEST, 65536);
    size_t used = 0;
    http_event_t ev = http_msg_feed(m, raw, strlen(raw), &used);
    *checked = 0;
    *why = NULL;
    if (ev == HTTP_HEAD_DONE) *checked = http_msg_check_request(m, why);
    return ev;
}

static void expect_refused(const char *raw)
{
    http_msg_t m;
    int checked;
    const char *why;
    http_event_t ev = parse_head(&m, raw, &checked, &why);
    if (ev == HTTP_HEAD_DONE && checked == 0) {
        /* some vectors are only visible in the body (bad chunk sizes) */
        size_t used = 0;
        const char *body = strstr(raw, "\r\n\r\n");
        body = body ? body + 4 : raw + strlen(raw);
        ev = http_msg_feed(&m, body, strlen(body), &used);
        if (ev != HTTP_ERROR) print_error("not refused: %s\n", raw);
        assert_int_equal(ev, HTTP_ERROR);
    }
    http_msg_free(&m);
}

static void test_simple_get(void **state)
{
    (void)state;
    http_msg_t m;
    int checked;
    const char *why;
    const char *raw = "GET http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\n"
                      "X-A:  v1  \r\n\r\n";
    assert_int_equal(parse_head(&m, raw, &checked, &why), HTTP_HEAD_DONE);
    assert_int_equal(checked, 0);
    assert_int_equal(m.nhdr, 2);
    assert_true(http_slice_eq(&m, m.target, "http://example.com/a?b"));
    assert_true(http_slice_eq(&m, m.hdr[1].value, "v1"));
    assert_int_equal(m.method, HTTP_GET);
    /* body-less: a zero-length feed completes the message */
    size_t used = 99;
    assert_int_equal(http_msg_feed(&m, "", 0, &used), HTTP_MSG_DONE);
    assert_int_equal(used, 0);
    http_msg_free(&m);
}

static void test_split_feed(void **state)
{
    (void)state;
    http_msg_t m;
    http_msg_init(&m, HTTP_REQUEST, 65536);
    const char *raw =
        "POST http://h/x HTTP/1.1\r\nContent-Length: 5\r\nX-Long: abcdef\r\n\r\nhelloGET";
    size_t n = strlen(raw), used = 0, pos = 0;
    http_event_t ev = HTTP_NEED_MORE;
    /* one byte at a time until the head stop */
    while (pos < n && ev == HTTP_NEED_MORE) {
        ev = http_msg_feed(&m, raw + pos, 1, &used);
        pos += used;
    }
    assert_int_equal(ev, HTTP_HEAD_DONE);
    assert_true(http_slice_eq(&m, m.hdr[1].value, "abcdef"));
    ev = http_msg_feed(&m, raw + pos, n - pos, &used);
    assert_int_equal(ev, HTTP_MSG_DONE);
    assert_int_equal(used, 5); /* stops exactly at the end of the body */
    http_msg_free(&m);
}

static void test_chunked_body_stop(void **state)
{
    (void)state;
    http_msg_t m;
    int checked;
    const char *why;
    const char *raw = "POST http://h/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(parse_head(&m, raw, &checked, &why), HTTP_HEAD_DONE);
    assert_int_equal(checked, 0);
    const char *body = "5\r\nhello\r\n0\r\n\r\nNEXT";
    size_t used = 0;
    assert_int_equal(http_msg_feed(&m, body, strlen(body), &used), HTTP_MSG_DONE);
    assert_int_equal(used, strlen(body) - 4);
    http_msg_free(&m);
}

static void test_smuggling_vectors(void **state)
{
    (void)state;
    expect_refused("POST http://h/ HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: "
                   "chunked\r\n\r\n0\r\n\r\n");
    expect_refused("POST http://h/ HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
    expect_refused("POST http://h/ HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
    expect_refused("POST http://h/ HTTP/1.1\r\nContent-Length: +5\r\n\r\n");
    expect_refused("POST http://h/ HTTP/1.1\r\nContent-Length: 5x\r\n\r\n");
    expect_refused("POST http://h/ HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n");
    expect_refused("POST http://h/ HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n");
    expect_refused("POST http://h/ HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n");
    expect_refused("POST http://h/ HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
    expect_refused("POST http://h/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n");
    expect_refused("GET http://h/ HTTP/1.1\r\nHost : h\r\n\r\n");
    expect_refused("GET http://h/ HTTP/1.1\r\n: empty\r\n\r\n");
    expect_refused("GET http://h/ HTTP/1.1\r\nX-A: a\r\n folded\r\n\r\n");
    expect_refused("POST http://h/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    expect_refused("POST http://h/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "ffffffffffffffffff\r\n");
    expect_refused("GET http://h/ HTTP/1.1\r\nX-A: a\x01b\r\n\r\n");
    expect_refused("GET http://h/ HTTP/1.1\nHost: h\n\n");
    expect_refused("GET http://h/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
    expect_refused("GET  http://h/ HTTP/1.1\r\n\r\n");
}

static void test_head_too_big(void **state)
{
    (void)state;
    http_msg_t m;
    http_msg_init(&m, HTTP_REQUEST, 1024);
    char raw[4096];
    memset(raw, 'a', sizeof raw);
    memcpy(raw, "GET http://h/ HTTP/1.1\r\nX: ", 27);
    size_t used;
    http_event_t ev = http_msg_feed(&m, raw, sizeof raw, &used);
    assert_int_equal(ev, HTTP_HEAD_TOO_BIG);
    http_msg_free(&m);
}

static void test_connection_tokens(void **state)
{
    (void)state;
    http_msg_t m;
    int checked;
    const char *why;
    const char *raw = "GET http://h/ HTTP/1.1\r\nConnection: ,,,close, ,X-Secret ,\r\n"
                      "Connection: keep-alive\r\nX-Secret: s\r\nX-Other: o\r\n"
                      "Keep-Alive: 5\r\nTE: trailers\r\n\r\n";
    assert_int_equal(parse_head(&m, raw, &checked, &why), HTTP_HEAD_DONE);
    http_slice_t t[HTTP_MAX_CONN_TOKENS];
    int n = http_msg_connection_tokens(&m, t, HTTP_MAX_CONN_TOKENS);
    assert_int_equal(n, 3);
    assert_true(http_slice_eq(&m, t[0], "close"));
    assert_true(http_slice_eq(&m, t[1], "X-Secret"));
    assert_true(http_slice_eq(&m, t[2], "keep-alive"));
    size_t i;
    for (i = 0; i < m.nhdr; i++) {
        bool hop = http_is_hop_by_hop(&m, m.hdr[i].name, t, (size_t)n);
        bool other = http_slice_eq(&m, m.hdr[i].name, "X-Other");
        assert_int_equal(hop, !other);
    }
    http_msg_free(&m);
}

static void test_connection_cannot_strip_framing(void **state)
{
    (void)state;
    http_msg_t m;
    int checked;
    const char *why;
    const char *raw = "POST http://h/ HTTP/1.1\r\nConnection: Content-Length, Host\r\n"
                      "Content-Length: 3\r\nHost: h\r\n\r\n";
    assert_int_equal(parse_head(&m, raw, &checked, &why), HTTP_HEAD_DONE);
    http_slice_t t[HTTP_MAX_CONN_TOKENS];
    int n = http_msg_connection_tokens(&m, t, HTTP_MAX_CONN_TOKENS);
    assert_int_equal(n, 2);
    assert_false(http_is_hop_by_hop(&m, m.hdr[1].name, t, (size_t)n));
    assert_false(http_is_hop_by_hop(&m, m.hdr[2].name, t, (size_t)n));
    http_msg_free(&m);
}

static void test_too_many_connection_tokens(void **state)
{
    (void)state;
    char raw[2048] = "GET http://h/ HTTP/1.1\r\nConnection: ";
    for (int i = 0; i < 40; i++)
        strcat(raw, "a,");
    strcat(raw, "\r\n\r\n");
    http_msg_t m;
    int checked;
    const char *why;
    assert_int_equal(parse_head(&m, raw, &checked, &why), HTTP_HEAD_DONE);
    http_slice_t t[HTTP_MAX_CONN_TOKENS];
    assert_int_equal(http_msg_connection_tokens(&m, t, HTTP_MAX_CONN_TOKENS), -1);
    http_msg_free(&m);
}

static void test_absolute_url(void **state)
{
    (void)state;
    http_url_t u;
    const char *why;
    const char *s = "http://Example.COM:8080/p?q=1";
    assert_int_equal(http_parse_absolute_url(s, strlen(s), &u, &why), 0);
    assert_int_equal(u.port, 8080);
    assert_int_equal(u.host_len, 11);
    assert_memory_equal(u.host, "Example.COM", 11);
    assert_int_equal(u.path_len, 6);
    s = "http://[::1]/";
    assert_int_equal(http_parse_absolute_url(s, strlen(s), &u, &why), 0);
    assert_int_equal(u.host_len, 5);
    assert_int_equal(u.port, 80);
    s = "http://h";
    assert_int_equal(http_parse_absolute_url(s, strlen(s), &u, &why), 0);
    assert_int_equal(u.path_len, 0);
    s = "http://u:p@h/";
    assert_int_equal(http_parse_absolute_url(s, strlen(s), &u, &why), -1);
    s = "https://h/";
    assert_int_equal(http_parse_absolute_url(s, strlen(s), &u, &why), -1);
    s = "/origin-form";
    assert_int_equal(http_parse_absolute_url(s, strlen(s), &u, &why), -1);
    s = "http://h:0/";
    assert_int_equal(http_parse_absolute_url(s, strlen(s), &u, &why), -1);
    s = "http://h:65536/";
    assert_int_equal(http_parse_absolute_url(s, strlen(s), &u, &why), -1);
    s = "http://h/#frag";
    assert_int_equal(http_parse_absolute_url(s, strlen(s), &u, &why), -1);
    s = "http://:80/";
    assert_int_equal(http_parse_absolute_url(s, strlen(s), &u, &why), -1);
}

static void test_authority(void **state)
{
    (void)state;
    http_url_t u;
    const char *why;
    assert_int_equal(http_parse_authority("github.com:443", 14, &u, &why), 0);
    assert_int_equal(u.port, 443);
    assert_int_equal(http_parse_authority("github.com", 10, &u, &why), -1);
    assert_int_equal(http_parse_authority("[::1]:22", 8, &u, &why), 0);
    assert_int_equal(u.port, 22);
    assert_int_equal(http_parse_authority("h:443/x", 7, &u, &why), -1);
    assert_int_equal(http_parse_authority("a@h:443", 7, &u, &why), -1);
}

static void test_response_head_and_no_body(void **state)
{
    (void)state;
    http_msg_t m;
    http_msg_init(&m, HTTP_RESPONSE, 65536);
    http_msg_expect_no_body(&m);
    const char *raw = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
    size_t used;
    assert_int_equal(http_msg_feed(&m, raw, strlen(raw), &used), HTTP_HEAD_DONE);
    assert_int_equal(m.status, 200);
    assert_true(http_slice_eq(&m, m.reason, "OK"));
    assert_int_equal(http_msg_feed(&m, "", 0, &used), HTTP_MSG_DONE);
    http_msg_reset(&m);
    raw = "HTTP/1.1 200 OK\r\n\r\nabc";
    assert_int_equal(http_msg_feed(&m, raw, strlen(raw), &used), HTTP_HEAD_DONE);
    assert_true(http_msg_body_until_eof(&m));
    assert_int_equal(http_msg_feed(&m, "abc", 3, &used), HTTP_NEED_MORE);
    assert_int_equal(http_msg_finish(&m), HTTP_MSG_DONE);
    http_msg_free(&m);
}

static void test_reset_discards_unfinished(void **state)
{
    (void)state;
    http_msg_t m;
    http_msg_init(&m, HTTP_REQUEST, 65536);
    const char *raw = "GET http://a/ HTTP/1.1\r\n\r\n";
    size_t used;
    assert_int_equal(http_msg_feed(&m, raw, strlen(raw), &used), HTTP_HEAD_DONE);
    http_msg_reset(&m); /* refused before completion */
    raw = "GET http://b/ HTTP/1.1\r\n\r\n";
    assert_int_equal(http_msg_feed(&m, raw, strlen(raw), &used), HTTP_HEAD_DONE);
    assert_true(http_slice_eq(&m, m.target, "http://b/"));
    http_msg_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_split_feed),
        cmocka_unit_test(test_chunked_body_stop),
        cmocka_unit_test(test_smuggling_vectors),
        cmocka_unit_test(test_head_too_big),
        cmocka_unit_test(test_connection_tokens),
        cmocka_unit_test(test_connection_cannot_strip_framing),
        cmocka_unit_test(test_too_many_connection_tokens),
        cmocka_unit_test(test_absolute_url),
        cmocka_unit_test(test_authority),
        cmocka_unit_test(test_response_head_and_no_body),
        cmocka_unit_test(test_reset_discards_unfinished),
    };
    return cmocka_run_group_tests_name("http1", tests, NULL, NULL);
}
