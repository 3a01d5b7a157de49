/*
 * test_clienthello — unit tests for src/tls/clienthello.c.
 *
 * Real ClientHellos are made at test time by an OpenSSL client talking into a
 * BIO pair (TLS 1.3 and TLS 1.2-max, with and without SNI, ALPN h2,http/1.1),
 * then re-framed over several records, cut into prefixes, mutated, or given
 * extra extensions.  Every buffer handed to the parser is a malloc'd copy of
 * exactly the length passed, so ASan reports any read past `len`.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include "tls/clienthello.h"

typedef struct {
    uint8_t *buf;
    size_t len;
} blob_t;

/* Fixtures, made once by setup_group(). */
static blob_t hello13_sni;  /* TLS 1.3, SNI example.com, ALPN */
static blob_t hello13_bare; /* TLS 1.3, no SNI, ALPN */
static blob_t hello12_sni;  /* TLS 1.2 max, SNI api.example.org, ALPN */
static blob_t hello12_bare; /* TLS 1.2 max, no SNI, ALPN */

static const unsigned char alpn_h2_h11[] = "\x02h2\x08http/1.1";

/* ---- helpers ---------------------------------------------------------------------------- */

static blob_t blob_new(size_t len)
{
    blob_t b = {malloc(len ? len : 1), len};
    assert_non_null(b.buf);
    return b;
}

static blob_t blob_copy(const uint8_t *p, size_t len)
{
    blob_t b = blob_new(len);
    if (len) memcpy(b.buf, p, len);
    return b;
}

static void blob_free(blob_t *b)
{
    free(b->buf);
    b->buf = NULL;
    b->len = 0;
}

static blob_t blob_cat(const blob_t *a, const uint8_t *p, size_t n)
{
    blob_t b = blob_new(a->len + n);
    memcpy(b.buf, a->buf, a->len);
    memcpy(b.buf + a->len, p, n);
    return b;
}

/* Parse an exact-size heap copy of p[0..len), so ASan sees any over-read. */
static tlshello_status_t parse_exact(const uint8_t *p, size_t len, tlshello_t *out)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len) memcpy(copy, p, len);
    tlshello_status_t st = tlshello_parse(len ? copy : NULL, len, out);
    free(copy);
    return st;
}

static tlshello_status_t parse_blob(const blob_t *b, tlshello_t *out)
{
    return parse_exact(b->buf, b->len, out);
}

/* Properties that must hold for every result, whatever the input. */
static void check_invariants(tlshello_status_t st, const tlshello_t *h, size_t len)
{
    assert_true(st == TLSHELLO_DONE || st == TLSHELLO_NEED_MORE || st == TLSHELLO_NOT_TLS ||
                st == TLSHELLO_MALFORMED);
    if (st == TLSHELLO_NOT_TLS || st == TLSHELLO_MALFORMED) {
        assert_non_null(h->error);
        return;
    }
    assert_null(h->error);
    if (st != TLSHELLO_DONE) return;
    assert_true(h->consumed <= len);
    assert_true(h->sni_len < sizeof h->sni);
    assert_int_equal(h->sni[h->sni_len], '\0');
    assert_int_equal(strlen(h->sni), h->sni_len);
    if (!h->has_sni) assert_int_equal(h->sni_len, 0);
    assert_non_null(memchr(h->alpn, '\0', sizeof h->alpn));
}

static unsigned be16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static void put16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put24(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 16);
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)v;
}

/* Offsets in a single-record hello as OpenSSL writes it. */
typedef struct {
    size_t sid;     /* session_id length byte */
    size_t cs;      /* cipher_suites length */
    size_t comp;    /* compression_methods length byte */
    size_t ext_len; /* extensions block length */
    size_t ext;     /* first extension */
} layout_t;

static layout_t layout_of(const blob_t *b)
{
    layout_t l;
    size_t p = 5 + 4 + 2 + 32;
    assert_true(b->len > p);
    l.sid = p;
    p += 1 + b->buf[p];
    l.cs = p;
    p += 2 + be16(b->buf + p);
    l.comp = p;
    p += 1 + b->buf[p];
    l.ext_len = p;
    l.ext = p + 2;
    assert_true(l.ext <= b->len);
    assert_int_equal(l.ext + be16(b->buf + l.ext_len), b->len);
    return l;
}

/* Offset of the header of extension `type`, or 0 when absent. */
static size_t find_ext(const blob_t *b, unsigned type)
{
    layout_t l = layout_of(b);
    for (size_t p = l.ext; p + 4 <= b->len; p += 4 + be16(b->buf + p + 2))
        if (be16(b->buf + p) == type) return p;
    return 0;
}

/* Insert raw extension bytes at offset `at` of the extensions block; fix the three lengths. */
static blob_t insert_ext_at(const blob_t *b, size_t at, const uint8_t *ext, size_t n)
{
    layout_t l = layout_of(b);
    blob_t o = blob_new(b->len + n);
    memcpy(o.buf, b->buf, at);
    memcpy(o.buf + at, ext, n);
    memcpy(o.buf + at + n, b->buf + at, b->len - at);
    put16(o.buf + 3, o.len - 5);
    put24(o.buf + 6, o.len - 9);
    put16(o.buf + l.ext_len, o.len - l.ext);
    return o;
}

static blob_t insert_ext(const blob_t *b, const uint8_t *ext, size_t n)
{
    return insert_ext_at(b, layout_of(b).ext, ext, n);
}

/* Build an extension: type, then data. */
static size_t make_ext(uint8_t *dst, unsigned type, const uint8_t *data, size_t n)
{
    put16(dst, type);
    put16(dst + 2, n);
    if (n) memcpy(dst + 4, data, n);
    return 4 + n;
}

/* A server_name extension with one host_name of n bytes. */
static size_t make_sni_ext(uint8_t *dst, const char *name, size_t n)
{
    uint8_t data[512];
    assert_true(n + 5 <= sizeof data);
    put16(data, n + 3);
    data[2] = 0;
    put16(data + 3, n);
    memcpy(data + 5, name, n);
    return make_ext(dst, 0, data, n + 5);
}

/* Re-frame the handshake payload of single-record hello b, cutting it at the given offsets. */
static blob_t reframe(const blob_t *b, const size_t *cuts, size_t ncuts)
{
    const uint8_t *hs = b->buf + 5;
    size_t hs_len = b->len - 5;
    blob_t o = blob_new(hs_len + 5 * (ncuts + 1));
    size_t from = 0, w = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : hs_len;
        assert_true(to > from && to <= hs_len);
        o.buf[w] = 22;
        o.buf[w + 1] = 3;
        o.buf[w + 2] = 1;
        put16(o.buf + w + 3, to - from);
        memcpy(o.buf + w + 5, hs + from, to - from);
        w += 5 + to - from;
        from = to;
    }
    assert_int_equal(w, o.len);
    return o;
}

/* Re-frame into records of at most `chunk` payload bytes. */
static blob_t reframe_every(const blob_t *b, size_t chunk)
{
    size_t hs_len = b->len - 5, n = 0;
    size_t *cuts = malloc(sizeof *cuts * (hs_len / chunk + 1));
    assert_non_null(cuts);
    for (size_t c = chunk; c < hs_len; c += chunk)
        cuts[n++] = c;
    blob_t o = reframe(b, cuts, n);
    free(cuts);
    return o;
}

static blob_t make_hello(int max_version, const char *sni, const unsigned char *alpn,
                         size_t alpn_len)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION), 1);
    assert_int_equal(SSL_CTX_set_max_proto_version(ctx, max_version), 1);
    SSL *ssl = SSL_new(ctx);
    assert_non_null(ssl);
    BIO *inner = NULL, *net = NULL;
    assert_int_equal(BIO_new_bio_pair(&inner, 0, &net, 0), 1);
    SSL_set_bio(ssl, inner, inner);
    if (sni) assert_int_equal(SSL_set_tlsext_host_name(ssl, sni), 1);
    if (alpn) assert_int_equal(SSL_set_alpn_protos(ssl, alpn, (unsigned)alpn_len), 0);
    SSL_set_connect_state(ssl);
    int rc = SSL_connect(ssl);
    assert_int_equal(rc, -1);
    assert_int_equal(SSL_get_error(ssl, rc), SSL_ERROR_WANT_READ);
    size_t pending = BIO_ctrl_pending(net);
    assert_true(pending > 0);
    blob_t b = blob_new(pending);
    assert_int_equal(BIO_read(net, b.buf, (int)pending), (int)pending);
    SSL_free(ssl);
    BIO_free(net);
    SSL_CTX_free(ctx);
    return b;
}

static int setup_group(void **state)
{
    (void)state;
    size_t an = sizeof alpn_h2_h11 - 1;
    hello13_sni = make_hello(TLS1_3_VERSION, "example.com", alpn_h2_h11, an);
    hello13_bare = make_hello(TLS1_3_VERSION, NULL, alpn_h2_h11, an);
    hello12_sni = make_hello(TLS1_2_VERSION, "api.example.org", alpn_h2_h11, an);
    hello12_bare = make_hello(TLS1_2_VERSION, NULL, alpn_h2_h11, an);
    return 0;
}

static int teardown_group(void **state)
{
    (void)state;
    blob_free(&hello13_sni);
    blob_free(&hello13_bare);
    blob_free(&hello12_sni);
    blob_free(&hello12_bare);
    return 0;
}

static void expect_done(const blob_t *b, tlshello_t *h)
{
    tlshello_status_t st = parse_blob(b, h);
    if (st != TLSHELLO_DONE) fail_msg("expected DONE, got %d (%s)", st, h->error);
    check_invariants(st, h, b->len);
}

static void expect_malformed(const blob_t *b)
{
    tlshello_t h;
    tlshello_status_t st = parse_blob(b, &h);
    if (st != TLSHELLO_MALFORMED) fail_msg("expected MALFORMED, got %d", st);
    check_invariants(st, &h, b->len);
}

static void expect_need_more(const blob_t *b)
{
    tlshello_t h;
    tlshello_status_t st = parse_blob(b, &h);
    if (st != TLSHELLO_NEED_MORE) fail_msg("expected NEED_MORE, got %d (%s)", st, h.error);
    check_invariants(st, &h, b->len);
}

/* ---- whole hellos ----------------------------------------------------------------------- */

static void test_tls13_sni_alpn(void **state)
{
    (void)state;
    tlshello_t h;
    expect_done(&hello13_sni, &h);
    assert_true(h.has_sni);
    assert_string_equal(h.sni, "example.com");
    assert_int_equal(h.sni_len, 11);
    assert_true(h.has_alpn);
    assert_string_equal(h.alpn, "h2,http/1.1");
    assert_true(h.tls13);
    assert_int_equal(h.consumed, hello13_sni.len);
    assert_int_equal(h.record_version, 0x0301);
    assert_int_equal(h.client_version, 0x0303);
}

static void test_tls12_sni_alpn(void **state)
{
    (void)state;
    tlshello_t h;
    expect_done(&hello12_sni, &h);
    assert_true(h.has_sni);
    assert_string_equal(h.sni, "api.example.org");
    assert_int_equal(h.sni_len, 15);
    assert_string_equal(h.alpn, "h2,http/1.1");
    assert_false(h.tls13);
    assert_int_equal(h.consumed, hello12_sni.len);
    assert_int_equal(h.client_version, 0x0303);
}

static void test_no_sni(void **state)
{
    (void)state;
    const blob_t *bs[] = {&hello13_bare, &hello12_bare};
    for (size_t i = 0; i < 2; i++) {
        tlshello_t h;
        expect_done(bs[i], &h);
        assert_false(h.has_sni);
        assert_int_equal(h.sni_len, 0);
        assert_string_equal(h.sni, "");
        assert_true(h.has_alpn);
        assert_int_equal(h.tls13, i == 0);
        assert_int_equal(h.consumed, bs[i]->len);
    }
}

static void test_every_prefix_needs_more(void **state)
{
    (void)state;
    const blob_t *bs[] = {&hello13_sni, &hello13_bare, &hello12_sni, &hello12_bare};
    for (size_t i = 0; i < 4; i++) {
        for (size_t n = 0; n < bs[i]->len; n++) {
            tlshello_t h;
            tlshello_status_t st = parse_exact(bs[i]->buf, n, &h);
            if (st != TLSHELLO_NEED_MORE)
                fail_msg("hello %zu prefix %zu: got %d (%s)", i, n, st, h.error);
            assert_null(h.error);
        }
    }
}

/* Bytes after the last record of the hello (early data, junk) are not its business. */
static void test_consumed_stops_at_record_end(void **state)
{
    (void)state;
    static const uint8_t tail[] = "\x17\x03\x03\x00\x05hello\x00\xff garbage";
    blob_t b = blob_cat(&hello13_sni, tail, sizeof tail - 1);
    tlshello_t h;
    expect_done(&b, &h);
    assert_int_equal(h.consumed, hello13_sni.len);
    assert_string_equal(h.sni, "example.com");
    blob_free(&b);
}

static void test_parse_is_repeatable(void **state)
{
    (void)state;
    tlshello_t a, b;
    expect_done(&hello13_sni, &a);
    expect_done(&hello13_sni, &b);
    assert_memory_equal(&a, &b, sizeof a);
    /* NEED_MORE and errors leave *out zeroed apart from record_version and error */
    assert_int_equal(parse_exact(hello13_sni.buf, 10, &a), TLSHELLO_NEED_MORE);
    assert_false(a.has_sni);
    assert_int_equal(a.consumed, 0);
    assert_int_equal(a.record_version, 0x0301);
}

/* ---- fragmentation ---------------------------------------------------------------------- */

static void test_split_two_records(void **state)
{
    (void)state;
    size_t cut = (hello13_sni.len - 5) / 2;
    blob_t b = reframe(&hello13_sni, &cut, 1);
    tlshello_t h;
    expect_done(&b, &h);
    assert_string_equal(h.sni, "example.com");
    assert_string_equal(h.alpn, "h2,http/1.1");
    assert_true(h.tls13);
    assert_int_equal(h.consumed, b.len);
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(parse_exact(b.buf, n, &h), TLSHELLO_NEED_MORE);
    blob_free(&b);
}

static void test_split_three_records(void **state)
{
    (void)state;
    /* the first cut splits the 4-byte handshake header itself */
    size_t cuts[] = {2, (hello12_sni.len - 5) * 2 / 3};
    blob_t b = reframe(&hello12_sni, cuts, 2);
    tlshello_t h;
    expect_done(&b, &h);
    assert_string_equal(h.sni, "api.example.org");
    assert_false(h.tls13);
    assert_int_equal(h.consumed, b.len);
    blob_free(&b);
}

static void test_split_one_byte_records(void **state)
{
    (void)state;
    blob_t b = reframe_every(&hello13_sni, 1);
    tlshello_t h;
    expect_done(&b, &h);
    assert_string_equal(h.sni, "example.com");
    assert_string_equal(h.alpn, "h2,http/1.1");
    assert_int_equal(h.consumed, b.len);
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(parse_exact(b.buf, n, &h), TLSHELLO_NEED_MORE);
    blob_free(&b);
}

/* A ClientHello larger than one record (2^14) still parses when fragmented. */
static void test_large_hello_over_records(void **state)
{
    (void)state;
    static uint8_t ext[4 + 20000];
    size_t n = make_ext(ext, 0x4242, NULL, 0);
    put16(ext + 2, 20000);
    memset(ext + 4, 0xab, 20000);
    n += 20000;
    blob_t big = insert_ext(&hello13_sni, ext, n);
    blob_t b = reframe_every(&big, 16384);
    tlshello_t h;
    expect_done(&b, &h);
    assert_string_equal(h.sni, "example.com");
    assert_int_equal(h.consumed, b.len);
    /* the first full record alone is a valid prefix */
    blob_t first = blob_copy(b.buf, 5 + 16384);
    expect_need_more(&first);
    blob_free(&first);
    blob_free(&b);
    blob_free(&big);
}

static void test_interleaved_record_malformed(void **state)
{
    (void)state;
    static const uint8_t ccs[] = {20, 3, 3, 0, 1, 1};
    static const uint8_t alert[] = {21, 3, 3, 0, 2, 2, 40};
    static const uint8_t appdata[] = {23, 3, 3, 0, 3, 1, 2, 3};
    size_t cut = 100;
    blob_t two = reframe(&hello13_sni, &cut, 1);
    size_t first = 5 + cut;
    const uint8_t *ins[] = {ccs, alert, appdata};
    size_t ins_len[] = {sizeof ccs, sizeof alert, sizeof appdata};
    for (size_t i = 0; i < 3; i++) {
        blob_t b = blob_new(two.len + ins_len[i]);
        memcpy(b.buf, two.buf, first);
        memcpy(b.buf + first, ins[i], ins_len[i]);
        memcpy(b.buf + first + ins_len[i], two.buf + first, two.len - first);
        expect_malformed(&b);
        blob_free(&b);
    }
    blob_free(&two);
}

/* ---- record and handshake framing ------------------------------------------------------- */

static void test_record_limits(void **state)
{
    (void)state;
    /* zero-length handshake record in the middle */
    size_t cut = 50;
    blob_t two = reframe(&hello13_sni, &cut, 1);
    static const uint8_t empty[] = {22, 3, 1, 0, 0};
    blob_t b = blob_new(two.len + sizeof empty);
    memcpy(b.buf, two.buf, 5 + cut);
    memcpy(b.buf + 5 + cut, empty, sizeof empty);
    memcpy(b.buf + 5 + cut + sizeof empty, two.buf + 5 + cut, two.len - 5 - cut);
    expect_malformed(&b);
    blob_free(&b);
    blob_free(&two);

    /* record length beyond 2^14 + 2048, known from the header alone */
    static const uint8_t huge[] = {22, 3, 1, 0x48, 0x01, 1, 0, 0};
    blob_t c = blob_copy(huge, sizeof huge);
    expect_malformed(&c);
    blob_free(&c);
    /* a first record of length 0 */
    static const uint8_t zero[] = {22, 3, 1, 0, 0};
    c = blob_copy(zero, sizeof zero);
    expect_malformed(&c);
    blob_free(&c);
}

static void test_handshake_header(void **state)
{
    (void)state;
    blob_t b = blob_copy(hello13_sni.buf, hello13_sni.len);
    b.buf[5] = 2; /* server_hello */
    expect_malformed(&b);
    /* decided from the first handshake byte, before the rest arrives */
    tlshello_t h;
    assert_int_equal(parse_exact(b.buf, 6, &h), TLSHELLO_MALFORMED);
    assert_non_null(h.error);
    b.buf[5] = 1;
    put24(b.buf + 6, TLSHELLO_MAX_BYTES + 1);
    assert_int_equal(parse_exact(b.buf, 9, &h), TLSHELLO_MALFORMED);
    blob_free(&b);

    /* hello followed by more bytes inside its last record */
    static const uint8_t junk[] = {0, 0, 0};
    b = blob_cat(&hello13_sni, junk, sizeof junk);
    put16(b.buf + 3, b.len - 5);
    expect_malformed(&b);
    blob_free(&b);
}

/* A TLS 1.2 hello may end after compression_methods. */
static void test_no_extensions(void **state)
{
    (void)state;
    layout_t l = layout_of(&hello12_sni);
    blob_t b = blob_copy(hello12_sni.buf, l.ext_len);
    put16(b.buf + 3, b.len - 5);
    put24(b.buf + 6, b.len - 9);
    tlshello_t h;
    expect_done(&b, &h);
    assert_false(h.has_sni);
    assert_false(h.has_alpn);
    assert_false(h.tls13);
    /* one stray byte where the extensions length would be */
    blob_free(&b);
    b = blob_copy(hello12_sni.buf, l.ext_len + 1);
    put16(b.buf + 3, b.len - 5);
    put24(b.buf + 6, b.len - 9);
    expect_malformed(&b);
    blob_free(&b);
}

/* ---- corrupted lengths ------------------------------------------------------------------ */

typedef struct {
    const char *what;
    size_t at;    /* offset of the length field */
    size_t width; /* 1, 2 or 3 bytes */
    long delta;   /* added to the field, or ... */
    long set;     /* ... value to store when >= 0 */
    tlshello_status_t want;
} flip_t;

static void apply_flip(const blob_t *src, const flip_t *f)
{
    blob_t b = blob_copy(src->buf, src->len);
    size_t v = 0;
    for (size_t i = 0; i < f->width; i++)
        v = v << 8 | b.buf[f->at + i];
    v = f->set >= 0 ? (size_t)f->set : (size_t)((long)v + f->delta);
    for (size_t i = f->width; i-- > 0; v >>= 8)
        b.buf[f->at + i] = (uint8_t)v;
    tlshello_t h;
    tlshello_status_t st = parse_blob(&b, &h);
    check_invariants(st, &h, b.len);
    if (st != f->want) fail_msg("%s: got %d (%s), want %d", f->what, st, h.error, f->want);
    blob_free(&b);
}

static void test_length_flips(void **state)
{
    (void)state;
    const blob_t *src = &hello13_sni;
    layout_t l = layout_of(src);
    size_t sni = find_ext(src, 0), alpn = find_ext(src, 16), sv = find_ext(src, 43);
    assert_true(sni && alpn && sv);
    size_t last = l.ext;
    while (last + 4 + be16(src->buf + last + 2) < src->len)
        last += 4 + be16(src->buf + last + 2);
    const flip_t flips[] = {
        {"record length +1", 3, 2, 1, -1, TLSHELLO_MALFORMED},
        {"record length 0", 3, 2, 0, 0, TLSHELLO_MALFORMED},
        {"record length 0xffff", 3, 2, 0, 0xffff, TLSHELLO_MALFORMED},
        {"handshake length -1", 6, 3, -1, -1, TLSHELLO_MALFORMED},
        {"handshake length 0", 6, 3, 0, 0, TLSHELLO_MALFORMED},
        {"handshake length 0xffffff", 6, 3, 0, 0xffffff, TLSHELLO_MALFORMED},
        {"legacy_version 0x0203", 9, 2, 0, 0x0203, TLSHELLO_MALFORMED},
        {"session_id length 33", l.sid, 1, 0, 33, TLSHELLO_MALFORMED},
        {"session_id length 0xff", l.sid, 1, 0, 0xff, TLSHELLO_MALFORMED},
        {"cipher_suites length +1", l.cs, 2, 1, -1, TLSHELLO_MALFORMED},
        {"cipher_suites length 0", l.cs, 2, 0, 0, TLSHELLO_MALFORMED},
        {"cipher_suites length 0xfffe", l.cs, 2, 0, 0xfffe, TLSHELLO_MALFORMED},
        {"compression length 0", l.comp, 1, 0, 0, TLSHELLO_MALFORMED},
        {"compression length 0xff", l.comp, 1, 0, 0xff, TLSHELLO_MALFORMED},
        {"extensions length +1", l.ext_len, 2, 1, -1, TLSHELLO_MALFORMED},
        {"extensions length -1", l.ext_len, 2, -1, -1, TLSHELLO_MALFORMED},
        {"extensions length 0xffff", l.ext_len, 2, 0, 0xffff, TLSHELLO_MALFORMED},
        {"server_name ext length +1", sni + 2, 2, 1, -1, TLSHELLO_MALFORMED},
        {"server_name ext length -1", sni + 2, 2, -1, -1, TLSHELLO_MALFORMED},
        {"server_name_list length +1", sni + 4, 2, 1, -1, TLSHELLO_MALFORMED},
        {"server_name_list length -1", sni + 4, 2, -1, -1, TLSHELLO_MALFORMED},
        {"server_name_list length 0", sni + 4, 2, 0, 0, TLSHELLO_MALFORMED},
        {"host_name length +1", sni + 7, 2, 1, -1, TLSHELLO_MALFORMED},
        {"host_name length -1", sni + 7, 2, -1, -1, TLSHELLO_MALFORMED},
        {"host_name length 0", sni + 7, 2, 0, 0, TLSHELLO_MALFORMED},
        {"ALPN ext length +1", alpn + 2, 2, 1, -1, TLSHELLO_MALFORMED},
        {"ALPN list length -1", alpn + 4, 2, -1, -1, TLSHELLO_MALFORMED},
        {"ALPN first name length +1", alpn + 6, 1, 1, -1, TLSHELLO_MALFORMED},
        {"ALPN first name length 0", alpn + 6, 1, 0, 0, TLSHELLO_MALFORMED},
        {"supported_versions length +1", sv + 4, 1, 1, -1, TLSHELLO_MALFORMED},
        {"supported_versions length 0", sv + 4, 1, 0, 0, TLSHELLO_MALFORMED},
        {"last extension length +1", last + 2, 2, 1, -1, TLSHELLO_MALFORMED},
        /* the extensions block no longer ends with the message */
        {"handshake length +1", 6, 3, 1, -1, TLSHELLO_MALFORMED},
        /* the record ends one byte early: that byte would start a record header */
        {"record length -1", 3, 2, -1, -1, TLSHELLO_NEED_MORE},
    };
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++)
        apply_flip(src, &flips[i]);

    /* ... and once more bytes arrive, it is broken: the last hello byte opens no valid record */
    static const uint8_t more[] = {3, 3, 0, 0, 9, 9, 9, 9, 9, 9};
    blob_t b = blob_cat(src, more, sizeof more);
    put16(b.buf + 3, src->len - 5 - 1);
    expect_malformed(&b);
    blob_free(&b);
}

/* Mutate every byte several ways: never a crash, an over-read, or a bad invariant. */
static void test_byte_mutation_sweep(void **state)
{
    (void)state;
    const blob_t *bs[] = {&hello13_sni, &hello12_bare};
    static const uint8_t xors[] = {0x01, 0x80, 0xff};
    size_t malformed = 0;
    for (size_t i = 0; i < 2; i++) {
        blob_t b = blob_copy(bs[i]->buf, bs[i]->len);
        for (size_t at = 0; at < b.len; at++) {
            for (size_t x = 0; x < sizeof xors; x++) {
                b.buf[at] ^= xors[x];
                tlshello_t h;
                tlshello_status_t st = parse_blob(&b, &h);
                check_invariants(st, &h, b.len);
                malformed += st == TLSHELLO_MALFORMED;
                b.buf[at] ^= xors[x];
            }
        }
        blob_free(&b);
    }
    assert_true(malformed > 0);
}

/* ---- not TLS ---------------------------------------------------------------------------- */

static void expect_not_tls(const char *s, size_t n)
{
    tlshello_t h;
    tlshello_status_t st = parse_exact((const uint8_t *)s, n, &h);
    if (st != TLSHELLO_NOT_TLS) fail_msg("%zu bytes: got %d, want NOT_TLS", n, st);
    assert_non_null(h.error);
}

static void test_not_tls(void **state)
{
    (void)state;
    static const char ssh[] = "SSH-2.0-OpenSSH_9.2\r\n";
    static const char get[] = "GET / HTTP/1.1\r\n";
    expect_not_tls(ssh, sizeof ssh - 1);
    expect_not_tls(get, sizeof get - 1);
    expect_not_tls(get, 1); /* decided on the first byte */
    /* SSLv2-compatible ClientHello: 2-byte header with the high bit set */
    static const char v2[] = "\x80\x2e\x01\x03\x01\x00\x15\x00\x00\x00\x10";
    expect_not_tls(v2, sizeof v2 - 1);
    /* a handshake record whose version major is not 3 */
    static const char v2rec[] = "\x16\x02\x00\x00\x05\x01\x00\x00\x01\x00";
    expect_not_tls(v2rec, 2);
    expect_not_tls(v2rec, sizeof v2rec - 1);
    /* an empty buffer and a lone 0x16 are still possible TLS */
    tlshello_t h;
    assert_int_equal(tlshello_parse(NULL, 0, &h), TLSHELLO_NEED_MORE);
    assert_int_equal(parse_exact((const uint8_t *)"\x16", 1, &h), TLSHELLO_NEED_MORE);
}

/* ---- server_name ------------------------------------------------------------------------ */

static void test_sni_with_nul_malformed(void **state)
{
    (void)state;
    uint8_t ext[64];
    size_t n = make_sni_ext(ext, "exa\0mple.com", 12);
    blob_t b = insert_ext(&hello13_bare, ext, n);
    expect_malformed(&b);
    tlshello_t h;
    assert_int_equal(parse_blob(&b, &h), TLSHELLO_MALFORMED);
    assert_string_equal(h.error, "NUL byte in host_name");
    blob_free(&b);
}

static void test_two_server_name_extensions(void **state)
{
    (void)state;
    uint8_t ext[64];
    size_t n = make_sni_ext(ext, "evil.example", 12);
    blob_t b = insert_ext(&hello13_sni, ext, n);
    expect_malformed(&b);
    tlshello_t h;
    parse_blob(&b, &h);
    assert_string_equal(h.error, "duplicate extension type");
    blob_free(&b);
}

static void test_two_host_names_malformed(void **state)
{
    (void)state;
    static const uint8_t data[] = {0, 14, 0, 0, 4, 'a', '.', 'c', 'o', 0, 0, 4, 'b', '.', 'c', 'o'};
    uint8_t ext[64];
    size_t n = make_ext(ext, 0, data, sizeof data);
    blob_t b = insert_ext(&hello12_bare, ext, n);
    expect_malformed(&b);
    blob_free(&b);
}

/* An entry of another name_type is skipped; the host_name is still found. */
static void test_other_name_type_skipped(void **state)
{
    (void)state;
    static const uint8_t data[] = {0, 12, 7, 0, 2, 'x', 'y', 0, 0, 4, 'a', '.', 'c', 'o'};
    uint8_t ext[64];
    size_t n = make_ext(ext, 0, data, sizeof data);
    blob_t b = insert_ext(&hello12_bare, ext, n);
    tlshello_t h;
    expect_done(&b, &h);
    assert_string_equal(h.sni, "a.co");
    blob_free(&b);
}

static void test_sni_length_bounds(void **state)
{
    (void)state;
    char name[256];
    memset(name, 'a', sizeof name);
    uint8_t ext[300];
    tlshello_t h;

    size_t n = make_sni_ext(ext, name, 255);
    blob_t b = insert_ext(&hello13_bare, ext, n);
    expect_done(&b, &h);
    assert_int_equal(h.sni_len, 255);
    assert_int_equal(strlen(h.sni), 255);
    blob_free(&b);

    n = make_sni_ext(ext, name, 256);
    b = insert_ext(&hello13_bare, ext, n);
    expect_malformed(&b);
    blob_free(&b);

    n = make_sni_ext(ext, name, 0);
    b = insert_ext(&hello13_bare, ext, n);
    expect_malformed(&b);
    blob_free(&b);

    /* an empty server_name extension is only valid in a ServerHello */
    n = make_ext(ext, 0, NULL, 0);
    b = insert_ext(&hello13_bare, ext, n);
    expect_malformed(&b);
    blob_free(&b);
}

/* ---- other extensions ------------------------------------------------------------------- */

static void test_duplicate_and_unknown_extensions(void **state)
{
    (void)state;
    static const uint8_t data[] = {1, 2, 3};
    uint8_t ext[32];
    size_t n = make_ext(ext, 0xfafa, data, sizeof data);
    n += make_ext(ext + n, 0x1a1a, NULL, 0);
    blob_t once = insert_ext(&hello13_sni, ext, n);
    tlshello_t h;
    expect_done(&once, &h); /* unknown types are skipped */
    assert_string_equal(h.sni, "example.com");
    blob_t twice = insert_ext(&once, ext, 7); /* 0xfafa again */
    expect_malformed(&twice);
    blob_free(&twice);
    blob_free(&once);

    /* a second ALPN extension */
    static const uint8_t alpn[] = {0, 3, 2, 'h', '2'};
    n = make_ext(ext, 16, alpn, sizeof alpn);
    blob_t b = insert_ext(&hello12_sni, ext, n);
    expect_malformed(&b);
    blob_free(&b);
}

static void test_pre_shared_key_must_be_last(void **state)
{
    (void)state;
    static const uint8_t psk[] = {0xde, 0xad};
    uint8_t ext[16];
    size_t n = make_ext(ext, 41, psk, sizeof psk);
    blob_t first = insert_ext(&hello13_sni, ext, n);
    expect_malformed(&first);
    blob_t last = insert_ext_at(&hello13_sni, hello13_sni.len, ext, n);
    tlshello_t h;
    expect_done(&last, &h);
    blob_free(&first);
    blob_free(&last);
}

static void test_supported_versions(void **state)
{
    (void)state;
    static const uint8_t v13[] = {4, 0x03, 0x04, 0x03, 0x03};
    static const uint8_t v12[] = {2, 0x03, 0x03};
    static const uint8_t odd[] = {3, 0x03, 0x04, 0x03};
    uint8_t ext[16];
    tlshello_t h;

    blob_t b = insert_ext(&hello12_sni, ext, make_ext(ext, 43, v13, sizeof v13));
    expect_done(&b, &h);
    assert_true(h.tls13);
    blob_free(&b);

    b = insert_ext(&hello12_sni, ext, make_ext(ext, 43, v12, sizeof v12));
    expect_done(&b, &h);
    assert_false(h.tls13);
    blob_free(&b);

    b = insert_ext(&hello12_sni, ext, make_ext(ext, 43, odd, sizeof odd));
    expect_malformed(&b);
    blob_free(&b);
}

static void test_alpn_truncated_and_sanitised(void **state)
{
    (void)state;
    /* 20 protocols of 10 bytes: 219 characters joined, kept to 127 */
    unsigned char list[20 * 11];
    for (size_t i = 0; i < 20; i++) {
        list[i * 11] = 10;
        memcpy(list + i * 11 + 1, "proto-xyz", 9);
        list[i * 11 + 10] = (unsigned char)('a' + i);
    }
    blob_t b = make_hello(TLS1_3_VERSION, "example.com", list, sizeof list);
    tlshello_t h;
    expect_done(&b, &h);
    assert_true(h.has_alpn);
    assert_int_equal(strlen(h.alpn), sizeof h.alpn - 1);
    assert_memory_equal(h.alpn, "proto-xyza,proto-xyzb,", 22);
    blob_free(&b);

    /* a comma, a space and a NUL inside names cannot forge or hide entries */
    static const uint8_t odd[] = {0, 9, 3, 'a', ',', 'b', 4, ' ', 0, 'c', 0x7f};
    uint8_t ext[32];
    tlshello_t h2;
    blob_t noalpn = make_hello(TLS1_2_VERSION, NULL, NULL, 0);
    b = insert_ext(&noalpn, ext, make_ext(ext, 16, odd, sizeof odd));
    expect_done(&b, &h2);
    assert_string_equal(h2.alpn, "a?b,??c?");
    blob_free(&b);
    blob_free(&noalpn);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls13_sni_alpn),
        cmocka_unit_test(test_tls12_sni_alpn),
        cmocka_unit_test(test_no_sni),
        cmocka_unit_test(test_every_prefix_needs_more),
        cmocka_unit_test(test_consumed_stops_at_record_end),
        cmocka_unit_test(test_parse_is_repeatable),
        cmocka_unit_test(test_split_two_records),
        cmocka_unit_test(test_split_three_records),
        cmocka_unit_test(test_split_one_byte_records),
        cmocka_unit_test(test_large_hello_over_records),
        cmocka_unit_test(test_interleaved_record_malformed),
        cmocka_unit_test(test_record_limits),
        cmocka_unit_test(test_handshake_header),
        cmocka_unit_test(test_no_extensions),
        cmocka_unit_test(test_length_flips),
        cmocka_unit_test(test_byte_mutation_sweep),
        cmocka_unit_test(test_not_tls),
        cmocka_unit_test(test_sni_with_nul_malformed),
        cmocka_unit_test(test_two_server_name_extensions),
        cmocka_unit_test(test_two_host_names_malformed),
        cmocka_unit_test(test_other_name_type_skipped),
        cmocka_unit_test(test_sni_length_bounds),
        cmocka_unit_test(test_duplicate_and_unknown_extensions),
        cmocka_unit_test(test_pre_shared_key_must_be_last),
        cmocka_unit_test(test_supported_versions),
        cmocka_unit_test(test_alpn_truncated_and_sanitised),
    };
    return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
