/*
 * libFuzzer harness for http1: request and response streams fed in random
 * slices, with the proxy's own post-head checks, Connection token parsing,
 * hop-by-hop filtering and target parsing on every head.
 * Invariants checked: `used` never exceeds the input, header slices stay
 * inside the arena, and a stop is reported at most once per message.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_head(const http_msg_t *m)
{
    for (size_t i = 0; i < m->nhdr; i++) {
        if (m->hdr[i].name.off + m->hdr[i].name.len > m->arena_len) abort();
        if (m->hdr[i].value.off + m->hdr[i].value.len > m->arena_len) abort();
    }
    const char *why;
    if (m->parser.type == HTTP_REQUEST) {
        (void)http_msg_check_request(m, &why);
        http_url_t u;
        const char *t = http_ptr(m, m->target);
        if (m->method == HTTP_CONNECT)
            (void)http_parse_authority(t, m->target.len, &u, &why);
        else if (http_parse_absolute_url(t, m->target.len, &u, &why) == 0 &&
                 (u.host_len == 0 || u.host < t || u.host + u.host_len > t + m->target.len))
            abort();
    }
    http_slice_t tok[HTTP_MAX_CONN_TOKENS];
    int n = http_msg_connection_tokens(m, tok, HTTP_MAX_CONN_TOKENS);
    for (size_t i = 0; i < m->nhdr && n >= 0; i++)
        (void)http_is_hop_by_hop(m, m->hdr[i].name, tok, (size_t)n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    llhttp_type_t type = (data[0] & 1) ? HTTP_RESPONSE : HTTP_REQUEST;
    size_t step = (size_t)(data[1] % 64) + 1;
    data += 2;
    size -= 2;
    http_msg_t m;
    http_msg_init(&m, type, 4096);
    if (type == HTTP_RESPONSE && (size & 1)) http_msg_expect_no_body(&m);
    size_t pos = 0;
    int messages = 0;
    while (pos <= size && messages < 64) {
        size_t n = size - pos < step ? size - pos : step;
        size_t used = 0;
        http_event_t ev = http_msg_feed(&m, (const char *)data + pos, n, &used);
        if (used > n) abort();
        pos += used;
        if (ev < 0) break;
        if (ev == HTTP_HEAD_DONE) check_head(&m);
        if (ev == HTTP_MSG_DONE) {
            messages++;
            http_msg_reset(&m);
            continue;
        }
        if (ev == HTTP_NEED_MORE && used == 0 && n == 0) break;
        if (pos == size) {
            if (type == HTTP_RESPONSE) (void)http_msg_finish(&m);
            break;
        }
    }
    http_msg_free(&m);
    return 0;
}
