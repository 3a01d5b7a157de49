/*
 * test_ipaddr.c — unit tests of src/net/ipaddr through its public API:
 * ipaddr_parse_host on every legacy IPv4 spelling, bracketed / bare / zoned /
 * IPv4-embedding IPv6, and everything that must be refused; the strict
 * parser; RFC 5952 formatting and round trips; sockaddr conversion; the
 * embedded-IPv4 forms and the classification of every class; CIDR parsing,
 * containment, formatting and cidrset matching.
 *
 * Every check asserts exact bytes, kinds, tags or strings, so a wrong answer
 * fails.  Usage: test_ipaddr [cmocka test-name filter].
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "net/ipaddr.h"

/* ---- helpers -------------------------------------------------------------- */

/* parse_host of a C string must give exactly this IPv4 address and tag. */
static void host_v4(const char *s, uint8_t a, uint8_t b, uint8_t c, uint8_t d, const char *tag)
{
    netaddr_t x;
    char sp[64];
    const uint8_t want[16] = {a, b, c, d};
    ipaddr_kind_t k = ipaddr_parse_host(s, strlen(s), &x, sp, sizeof sp);
    if (k != IPADDR_LITERAL) print_error("input: \"%s\"\n", s);
    assert_int_equal(k, IPADDR_LITERAL);
    assert_int_equal(x.family, AF_INET);
    assert_memory_equal(x.bytes, want, 16);
    assert_int_equal(x.scope_id, 0);
    assert_string_equal(sp, tag);
}

/* parse_host of a C string must give this IPv6 address (as canonical text),
 * this tag and this scope id. */
static void host_v6(const char *s, const char *canon, const char *tag, uint32_t scope)
{
    netaddr_t x;
    char sp[64], text[64];
    ipaddr_kind_t k = ipaddr_parse_host(s, strlen(s), &x, sp, sizeof sp);
    if (k != IPADDR_LITERAL) print_error("input: \"%s\"\n", s);
    assert_int_equal(k, IPADDR_LITERAL);
    assert_int_equal(x.family, AF_INET6);
    assert_int_equal(ipaddr_format(&x, text, sizeof text), (int)strlen(canon));
    assert_string_equal(text, canon);
    assert_string_equal(sp, tag);
    assert_int_equal(x.scope_id, scope);
}

static void host_kind_n(const char *s, size_t len, ipaddr_kind_t want)
{
    netaddr_t x;
    char sp[64] = "garbage";
    memset(&x, 0xa5, sizeof x);
    ipaddr_kind_t k = ipaddr_parse_host(s, len, &x, sp, sizeof sp);
    if (k != want) print_error("input: \"%.*s\" (len %zu)\n", (int)len, s, len);
    assert_int_equal(k, want);
    if (want != IPADDR_LITERAL) {
        /* fully initialised and empty tag even on failure */
        netaddr_t zero;
        memset(&zero, 0, sizeof zero);
        assert_memory_equal(&x, &zero, sizeof x);
        assert_string_equal(sp, "");
    }
}

static void host_kind(const char *s, ipaddr_kind_t want)
{
    host_kind_n(s, strlen(s), want);
}

static netaddr_t strict(const char *s)
{
    netaddr_t x;
    if (ipaddr_parse_strict(s, strlen(s), &x) != 0) print_error("input: \"%s\"\n", s);
    assert_int_equal(ipaddr_parse_strict(s, strlen(s), &x), 0);
    return x;
}

static void strict_fails(const char *s)
{
    netaddr_t x;
    int rc = ipaddr_parse_strict(s, strlen(s), &x);
    if (rc != -1) print_error("input: \"%s\"\n", s);
    assert_int_equal(rc, -1);
    assert_int_equal(x.family, 0);
}

static void format_is(const char *in, const char *out)
{
    netaddr_t x = strict(in);
    char text[64];
    int n = ipaddr_format(&x, text, sizeof text);
    assert_int_equal(n, (int)strlen(out));
    assert_string_equal(text, out);
}

static void class_is(const char *s, netclass_t want)
{
    netaddr_t x = strict(s);
    netclass_t got = ipaddr_classify(&x);
    if (got != want) print_error("input: \"%s\" got %s\n", s, netclass_name(got));
    assert_int_equal(got, want);
}

/* parse_host then classify (for bracketed or legacy spellings) */
static void host_class_is(const char *s, netclass_t want)
{
    netaddr_t x;
    assert_int_equal(ipaddr_parse_host(s, strlen(s), &x, NULL, 0), IPADDR_LITERAL);
    netclass_t got = ipaddr_classify(&x);
    if (got != want) print_error("input: \"%s\" got %s\n", s, netclass_name(got));
    assert_int_equal(got, want);
}

static void embedded_is(const char *s, const char *v4text)
{
    netaddr_t x = strict(s), v4;
    char text[64];
    memset(&v4, 0xa5, sizeof v4);
    if (!ipaddr_embedded_v4(&x, &v4)) print_error("input: \"%s\"\n", s);
    assert_true(ipaddr_embedded_v4(&x, &v4));
    assert_int_equal(v4.family, AF_INET);
    assert_int_equal(v4.scope_id, 0);
    for (int i = 4; i < 16; i++)
        assert_int_equal(v4.bytes[i], 0);
    assert_int_equal(ipaddr_format(&v4, text, sizeof text), (int)strlen(v4text));
    assert_string_equal(text, v4text);
}

static void cidr_ok(const char *s, const char *canon)
{
    netcidr_t c;
    char err[128], text[80];
    int rc = netcidr_parse(s, strlen(s), &c, err, sizeof err);
    if (rc != 0) print_error("input: \"%s\": %s\n", s, err);
    assert_int_equal(rc, 0);
    assert_int_equal(netcidr_format(&c, text, sizeof text), (int)strlen(canon));
    assert_string_equal(text, canon);
}

static void cidr_fails(const char *s, const char *err_part)
{
    netcidr_t c;
    char err[128] = "";
    memset(&c, 0xa5, sizeof c);
    int rc = netcidr_parse(s, strlen(s), &c, err, sizeof err);
    if (rc != -1) print_error("input: \"%s\"\n", s);
    assert_int_equal(rc, -1);
    assert_int_equal(c.addr.family, 0);
    assert_int_equal(c.prefix, 0);
    assert_true(err[0] != '\0');
    if (err_part != NULL && strstr(err, err_part) == NULL)
        print_error("input \"%s\": error \"%s\" lacks \"%s\"\n", s, err, err_part);
    if (err_part != NULL) assert_non_null(strstr(err, err_part));
}

static netcidr_t cidr(const char *s)
{
    netcidr_t c;
    assert_int_equal(netcidr_parse(s, strlen(s), &c, NULL, 0), 0);
    return c;
}

/* ---- ipaddr_parse_host: IPv4 spellings ------------------------------------ */

static void test_host_dotted_decimal(void **state)
{
    (void)state;
    host_v4("127.0.0.1", 127, 0, 0, 1, "dotted-decimal");
    host_v4("0.0.0.0", 0, 0, 0, 0, "dotted-decimal");
    host_v4("255.255.255.255", 255, 255, 255, 255, "dotted-decimal");
    host_v4("8.8.4.4", 8, 8, 4, 4, "dotted-decimal");
}

static void test_host_short_form_two_parts(void **state)
{
    (void)state;
    host_v4("127.1", 127, 0, 0, 1, "short-form");
    host_v4("10.16777215", 10, 255, 255, 255, "short-form");
}

static void test_host_short_form_three_parts(void **state)
{
    (void)state;
    host_v4("127.0.1", 127, 0, 0, 1, "short-form");
    host_v4("192.168.65535", 192, 168, 255, 255, "short-form");
}

static void test_host_integer(void **state)
{
    (void)state;
    host_v4("2130706433", 127, 0, 0, 1, "integer");
    host_v4("4294967295", 255, 255, 255, 255, "integer");
    host_v4("0", 0, 0, 0, 0, "integer");
    host_v4("2852039166", 169, 254, 169, 254, "integer");
}

static void test_host_hex_integer(void **state)
{
    (void)state;
    host_v4("0x7f000001", 127, 0, 0, 1, "hex");
    host_v4("0xffffffff", 255, 255, 255, 255, "hex");
    host_v4("0x00000000000a9fea9fe", 169, 254, 169, 254, "hex");
}

static void test_host_hex_parts(void **state)
{
    (void)state;
    host_v4("0x7f.0.0.1", 127, 0, 0, 1, "hex");
    host_v4("0x7f.1", 127, 0, 0, 1, "hex");
    host_v4("0xa9.0xfe.0xa9.0xfe", 169, 254, 169, 254, "hex");
    host_v4("0xA9.0xFe.0xa9.0XFE", 169, 254, 169, 254, "hex");
}

static void test_host_hex_upper_case(void **state)
{
    (void)state;
    host_v4("0X7F.0.0.1", 127, 0, 0, 1, "hex");
    host_v4("0X7F000001", 127, 0, 0, 1, "hex");
}

static void test_host_octal(void **state)
{
    (void)state;
    host_v4("0177.0.0.1", 127, 0, 0, 1, "octal");
    host_v4("012.0.0.1", 10, 0, 0, 1, "octal");
    host_v4("127.0.0.01", 127, 0, 0, 1, "octal");
    host_v4("00", 0, 0, 0, 0, "octal");
}

static void test_host_octal_zero_padded(void **state)
{
    (void)state;
    host_v4("00000177.0.0.01", 127, 0, 0, 1, "octal");
    host_v4("0000000000000000000000000000000000000000001.0.0.1", 1, 0, 0, 1, "octal");
}

static void test_host_octal_integer(void **state)
{
    (void)state;
    host_v4("017700000001", 127, 0, 0, 1, "octal");
    host_v4("037777777777", 255, 255, 255, 255, "octal");
}

static void test_host_mixed_bases(void **state)
{
    (void)state;
    host_v4("0x7f.0.01", 127, 0, 0, 1, "hex"); /* hex wins over octal in the tag */
    host_v4("0251.0376.43518", 169, 254, 169, 254, "octal");
}

static void test_host_trailing_dot(void **state)
{
    (void)state;
    host_v4("127.0.0.1.", 127, 0, 0, 1, "dotted-decimal");
    host_v4("0x7f.1.", 127, 0, 0, 1, "hex");
    host_v4("2130706433.", 127, 0, 0, 1, "integer");
}

static void test_host_v4_canonical_text(void **state)
{
    (void)state;
    /* what policy_target_parse stores as the host */
    const char *spell[] = {"127.1", "0x7f000001", "0177.0.0.1", "2130706433", "127.0.0.1."};
    for (size_t i = 0; i < sizeof spell / sizeof spell[0]; i++) {
        netaddr_t x;
        char text[64];
        assert_int_equal(ipaddr_parse_host(spell[i], strlen(spell[i]), &x, NULL, 0),
                         IPADDR_LITERAL);
        assert_int_equal(ipaddr_format(&x, text, sizeof text), 9);
        assert_string_equal(text, "127.0.0.1");
    }
}

/* ---- ipaddr_parse_host: IPv4 refusals -------------------------------------- */

static void test_host_octet_out_of_range(void **state)
{
    (void)state;
    host_kind("256.0.0.1", IPADDR_INVALID);
    host_kind("1.2.3.256", IPADDR_INVALID);
    host_kind("1.256.3.4", IPADDR_INVALID);
    host_kind("0x100.0.0.1", IPADDR_INVALID);
    host_kind("0400.0.0.1", IPADDR_INVALID);
}

static void test_host_too_many_parts(void **state)
{
    (void)state;
    host_kind("1.2.3.4.5", IPADDR_INVALID);
    host_kind("1.2.3.4.5.6.7.8", IPADDR_INVALID);
    host_kind("127.0.0.1.1.", IPADDR_INVALID);
}

static void test_host_integer_overflow(void **state)
{
    (void)state;
    host_kind("0x100000000", IPADDR_INVALID);
    host_kind("4294967296", IPADDR_INVALID);
    host_kind("040000000000", IPADDR_INVALID);
    host_kind("99999999999999999999999999", IPADDR_INVALID);
    host_kind("0xffffffffffffffffffffffff7f000001", IPADDR_INVALID);
}

static void test_host_short_form_overflow(void **state)
{
    (void)state;
    host_kind("1.16777216", IPADDR_INVALID);
    host_kind("1.2.65536", IPADDR_INVALID);
    host_kind("256.1", IPADDR_INVALID);
    host_kind("1.256.1", IPADDR_INVALID);
}

static void test_host_bad_octal_digit(void **state)
{
    (void)state;
    host_kind("08.0.0.1", IPADDR_INVALID);
    host_kind("1.2.3.09", IPADDR_INVALID);
    host_kind("09", IPADDR_INVALID);
    host_kind("0178.0.0.1", IPADDR_INVALID);
}

static void test_host_bad_hex(void **state)
{
    (void)state;
    host_kind("0x1g.0.0.1", IPADDR_INVALID);
    host_kind("0x", IPADDR_INVALID);
    host_kind("0x.0x.0x.0x", IPADDR_INVALID);
    host_kind("1.2.3.0x", IPADDR_INVALID);
}

static void test_host_empty_parts(void **state)
{
    (void)state;
    host_kind("1..2.3", IPADDR_INVALID);
    host_kind(".1.2.3", IPADDR_INVALID);
    host_kind("127.0.0.1..", IPADDR_INVALID);
    host_kind(".", IPADDR_INVALID);
    host_kind("..", IPADDR_INVALID);
}

static void test_host_empty_and_null(void **state)
{
    (void)state;
    netaddr_t x;
    host_kind("", IPADDR_INVALID);
    host_kind_n("127.0.0.1", 0, IPADDR_INVALID);
    assert_int_equal(ipaddr_parse_host(NULL, 5, &x, NULL, 0), IPADDR_INVALID);
    assert_int_equal(x.family, 0);
}

static void test_host_whitespace(void **state)
{
    (void)state;
    host_kind(" 127.0.0.1", IPADDR_INVALID);
    host_kind("127.0.0.1 ", IPADDR_INVALID);
    host_kind("127.0.0.1\n", IPADDR_INVALID);
    host_kind("127.0.0.1\r", IPADDR_INVALID);
    host_kind("\t127.0.0.1", IPADDR_INVALID);
    host_kind("127. 0.0.1", IPADDR_INVALID);
    host_kind("127.0.0.1\v", IPADDR_INVALID);
    host_kind("github.com ", IPADDR_INVALID);
    host_kind("[ ::1]", IPADDR_INVALID);
}

static void test_host_signs(void **state)
{
    (void)state;
    host_kind("+127.0.0.1", IPADDR_INVALID);
    host_kind("-1", IPADDR_INVALID);
    host_kind("+2130706433", IPADDR_INVALID);
    host_kind("127.0.0.+1", IPADDR_INVALID);
    host_kind("127.0.0.-1", IPADDR_INVALID);
    host_kind("example.-0x1", IPADDR_INVALID);
}

static void test_host_nul_inside(void **state)
{
    (void)state;
    host_kind_n("127.0.0.1\0.evil.com", 19, IPADDR_INVALID);
    host_kind_n("evil.com\0", 9, IPADDR_INVALID);
    host_kind_n("\0", 1, IPADDR_INVALID);
    host_kind_n("[::1\0]", 6, IPADDR_INVALID);
}

static void test_host_percent(void **state)
{
    (void)state;
    host_kind("127.0.0.1%00", IPADDR_INVALID);
    host_kind("%31%32%37.0.0.1", IPADDR_INVALID);
    host_kind("example.com%2f", IPADDR_INVALID);
    host_kind("fe80::1%eth0", IPADDR_INVALID); /* zone only inside brackets */
    host_kind("%", IPADDR_INVALID);
}

static void test_host_forbidden_characters(void **state)
{
    (void)state;
    const char *bad[] = {"a@b.com", "a/b",    "a\\b", "a#b", "a?b",     "a|b",
                         "a^b",     "a<b",    "a>b",  "a]b", "a[b",     "127.0.0.1:80",
                         "a\177b",  "a\x01b", "a:b",  "a]",  "@1.2.3.4"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        host_kind(bad[i], IPADDR_INVALID);
}

static void test_host_long_inputs(void **state)
{
    (void)state;
    char buf[4096];
    /* over the limit: refused whatever it is */
    memset(buf, 'a', sizeof buf);
    host_kind_n(buf, sizeof buf, IPADDR_INVALID);
    /* a long name under the limit is still a name (domain_normalize judges it) */
    memset(buf, 'a', 300);
    memcpy(buf + 300, ".com", 4);
    host_kind_n(buf, 304, IPADDR_NAME);
    /* ... unless its last label is numeric */
    memcpy(buf + 300, ".123", 4);
    host_kind_n(buf, 304, IPADDR_INVALID);
    /* many numeric labels */
    for (size_t i = 0; i < 1000; i += 2)
        memcpy(buf + i, "1.", 2);
    host_kind_n(buf, 999, IPADDR_INVALID);
    /* zero-padded literal of 900 bytes */
    memset(buf, '0', 900);
    memcpy(buf + 893, "1.0.0.1", 7);
    netaddr_t x;
    assert_int_equal(ipaddr_parse_host(buf, 900, &x, NULL, 0), IPADDR_LITERAL);
    assert_int_equal(x.bytes[0], 1);
    assert_int_equal(x.bytes[3], 1);
}

static void test_host_last_label_numeric(void **state)
{
    (void)state;
    host_kind("example.123", IPADDR_INVALID);
    host_kind("example.0x1f", IPADDR_INVALID);
    host_kind("example.0X", IPADDR_INVALID);
    host_kind("example.123.", IPADDR_INVALID);
    host_kind("a.b.c.08", IPADDR_INVALID);
    host_kind("1.2.3.4.5.", IPADDR_INVALID);
    /* not numeric: WHATWG domain */
    host_kind("example.0x1g", IPADDR_NAME);
    host_kind("example.123a", IPADDR_NAME);
    host_kind("123abc", IPADDR_NAME);
}

static void test_host_names(void **state)
{
    (void)state;
    const char *names[] = {"github.com",
                           "a1.b2",
                           "0x.example",
                           "1.2.3.example",
                           "xn--bcher-kva.de",
                           "localhost",
                           "example.com.",
                           "b\303\274cher.de" /* bücher.de */,
                           "api.openai.com",
                           "_dmarc.example.com",
                           "x",
                           "0x7fg",
                           "1e3"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        host_kind(names[i], IPADDR_NAME);
}

static void test_host_fullwidth_confusables(void **state)
{
    (void)state;
    /* "１２７.０.０.１" */
    host_kind("\xef\xbc\x91\xef\xbc\x92\xef\xbc\x97.\xef\xbc\x90.\xef\xbc\x90.\xef\xbc\x91",
              IPADDR_INVALID);
    /* "127。0。0。1" (ideographic full stop) */
    host_kind("127\xe3\x80\x82"
              "0\xe3\x80\x82"
              "0\xe3\x80\x82"
              "1",
              IPADDR_INVALID);
    /* "127．0．0．1" (fullwidth full stop) and halfwidth ideographic stop */
    host_kind("127\xef\xbc\x8e"
              "0.0.1",
              IPADDR_INVALID);
    host_kind("127\xef\xbd\xa1"
              "0.0.1",
              IPADDR_INVALID);
}

static void test_host_spelling_buffer(void **state)
{
    (void)state;
    netaddr_t x;
    char small[4] = "zzz";
    assert_int_equal(ipaddr_parse_host("0177.1", 6, &x, NULL, 0), IPADDR_LITERAL);
    assert_int_equal(ipaddr_parse_host("0177.1", 6, &x, small, sizeof small), IPADDR_LITERAL);
    assert_string_equal(small, "oct");
    assert_int_equal(ipaddr_parse_host("0177.1", 6, &x, small, 0), IPADDR_LITERAL);
    assert_string_equal(small, "oct");
    assert_int_equal(ipaddr_parse_host("github.com", 10, &x, small, sizeof small), IPADDR_NAME);
    assert_string_equal(small, "");
}

static void test_host_len_not_strlen(void **state)
{
    (void)state;
    netaddr_t x;
    /* only len bytes count; no NUL is needed */
    assert_int_equal(ipaddr_parse_host("127.0.0.1:8080", 9, &x, NULL, 0), IPADDR_LITERAL);
    assert_int_equal(x.bytes[0], 127);
    assert_int_equal(ipaddr_parse_host("[::1]:443", 5, &x, NULL, 0), IPADDR_LITERAL);
    assert_int_equal(x.family, AF_INET6);
}

/* ---- ipaddr_parse_host: IPv6 ------------------------------------------------ */

static void test_host_v6_bracketed_loopback(void **state)
{
    (void)state;
    host_v6("[::1]", "::1", "ipv6", 0);
    host_v6("[0:0:0:0:0:0:0:1]", "::1", "ipv6", 0);
    host_v6("[0000:0000:0000:0000:0000:0000:0000:0001]", "::1", "ipv6", 0);
}

static void test_host_v6_bare(void **state)
{
    (void)state;
    host_v6("::1", "::1", "ipv6", 0);
    host_v6("2001:db8::1", "2001:db8::1", "ipv6", 0);
    host_v6("::", "::", "ipv6", 0);
}

static void test_host_v6_mapped_dotted(void **state)
{
    (void)state;
    host_v6("[::ffff:127.0.0.1]", "::ffff:127.0.0.1", "ipv4-mapped", 0);
    host_v6("[0:0:0:0:0:ffff:127.0.0.1]", "::ffff:127.0.0.1", "ipv4-mapped", 0);
    host_v6("[::FFFF:169.254.169.254]", "::ffff:169.254.169.254", "ipv4-mapped", 0);
}

static void test_host_v6_mapped_hex(void **state)
{
    (void)state;
    netaddr_t x;
    const uint8_t want[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
    host_v6("[::ffff:7f00:1]", "::ffff:127.0.0.1", "ipv4-mapped", 0);
    assert_int_equal(ipaddr_parse_host("[::ffff:7f00:1]", 15, &x, NULL, 0), IPADDR_LITERAL);
    assert_memory_equal(x.bytes, want, 16);
}

static void test_host_v6_embedded_tags(void **state)
{
    (void)state;
    host_v6("[::127.0.0.1]", "::7f00:1", "ipv4-compatible", 0);
    host_v6("[::ffff:0:127.0.0.1]", "::ffff:0:7f00:1", "ipv4-translated", 0);
    host_v6("[64:ff9b::7f00:1]", "64:ff9b::7f00:1", "nat64", 0);
    host_v6("[64:ff9b:1::a9fe:a9fe]", "64:ff9b:1::a9fe:a9fe", "nat64", 0);
    host_v6("[2002:7f00:1::]", "2002:7f00:1::", "6to4", 0);
    host_v6("[2001:0:4136:e378:8000:63bf:80ff:fffe]", "2001:0:4136:e378:8000:63bf:80ff:fffe",
            "teredo", 0);
}

static void test_host_v6_zone_name(void **state)
{
    (void)state;
    host_v6("[fe80::1%eth0]", "fe80::1", "ipv6-zone", 0);
    host_v6("[fe80::1%25eth0]", "fe80::1", "ipv6-zone", 0);
    host_v6("[fe80::1%en0.100]", "fe80::1", "ipv6-zone", 0);
}

static void test_host_v6_zone_numeric(void **state)
{
    (void)state;
    host_v6("[fe80::1%2]", "fe80::1", "ipv6-zone", 2);
    host_v6("[fe80::1%252]", "fe80::1", "ipv6-zone", 2);
    host_v6("[fe80::1%4294967295]", "fe80::1", "ipv6-zone", 4294967295u);
    host_v6("[ff02::1%1]", "ff02::1", "ipv6-zone", 1);
}

static void test_host_v6_zone_invalid(void **state)
{
    (void)state;
    host_kind("[fe80::1%]", IPADDR_INVALID);
    host_kind("[fe80::1%25]", IPADDR_INVALID);
    host_kind("[fe80::1%eth0%1]", IPADDR_INVALID);
    host_kind("[fe80::1%25%65th0]", IPADDR_INVALID);
    host_kind("[fe80::1%4294967296]", IPADDR_INVALID);
    host_kind("[fe80::1%eth/0]", IPADDR_INVALID);
    host_kind("[fe80::1%eth0 ]", IPADDR_INVALID);
    host_kind("[%eth0]", IPADDR_INVALID);
    host_kind("[fe80::1%"
              "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]",
              IPADDR_INVALID);
}

static void test_host_v6_bracket_errors(void **state)
{
    (void)state;
    host_kind("[127.0.0.1]", IPADDR_INVALID);
    host_kind("[::1", IPADDR_INVALID);
    host_kind("[]", IPADDR_INVALID);
    host_kind("[", IPADDR_INVALID);
    host_kind("[::1]]", IPADDR_INVALID);
    host_kind("[[::1]]", IPADDR_INVALID);
    host_kind("[::1]:80", IPADDR_INVALID);
    host_kind("[v1.fe80::1]", IPADDR_INVALID);
    host_kind("::1]", IPADDR_INVALID);
    host_kind("[1:2:3:4:5:6:7:8:9]", IPADDR_INVALID);
    host_kind("[github.com]", IPADDR_INVALID);
    host_kind("[::1].", IPADDR_INVALID);
}

static void test_host_v6_syntax_errors(void **state)
{
    (void)state;
    const char *bad[] = {"::1::",
                         ":::",
                         "1:2:3:4:5:6:7:8::",
                         "::1:2:3:4:5:6:7:8",
                         "1:2:3:4:5:6:7",
                         "1:2:3:4:5:6:7:8:9",
                         "12345::",
                         ":1::",
                         "1:",
                         ":",
                         "1::2::3",
                         "g::1",
                         "::ffff:127.0.0.01",
                         "::ffff:1.2.3",
                         "::ffff:1.2.3.4.5",
                         "::1.2.3.4:5",
                         "::ffff:256.0.0.1",
                         "::ffff:0x7f.0.0.1",
                         "1:2:3:4:5:6:7:1.2.3.4",
                         "::1.",
                         "::-1",
                         "::+1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        host_kind(bad[i], IPADDR_INVALID);
        strict_fails(bad[i]);
    }
}

static void test_host_v6_edge_forms(void **state)
{
    (void)state;
    host_v6("[1:2:3:4:5:6:7::]", "1:2:3:4:5:6:7:0", "ipv6", 0);
    host_v6("[::2:3:4:5:6:7:8]", "0:2:3:4:5:6:7:8", "ipv6", 0);
    host_v6("[FE80::ABCD]", "fe80::abcd", "ipv6", 0);
    host_v6("[1:2:3:4:5:6:1.2.3.4]", "1:2:3:4:5:6:102:304", "ipv6", 0);
}

/* ---- strict parser ----------------------------------------------------------- */

static void test_strict_accepts_canonical(void **state)
{
    (void)state;
    const uint8_t v4[16] = {1, 2, 3, 4};
    netaddr_t x = strict("1.2.3.4");
    assert_int_equal(x.family, AF_INET);
    assert_memory_equal(x.bytes, v4, 16);
    x = strict("::ffff:1.2.3.4");
    assert_int_equal(x.family, AF_INET6);
    assert_int_equal(x.bytes[10], 0xff);
    assert_int_equal(x.bytes[15], 4);
    (void)strict("0.0.0.0");
    (void)strict("255.255.255.255");
    (void)strict("::");
    (void)strict("2001:DB8::1");
}

static void test_strict_rejects_legacy(void **state)
{
    (void)state;
    const char *bad[] = {"127.1",    "0177.0.0.1", "0x7f.0.0.1",   "2130706433", "01.2.3.4",
                         "1.2.3.4.", "[::1]",      "fe80::1%eth0", " 1.2.3.4",   "1.2.3.256",
                         "1.2.3.4 ", "",           "1.2.3.-4",     "1.2.3.+4",   "1.2.3.1234"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        strict_fails(bad[i]);
    netaddr_t x;
    assert_int_equal(ipaddr_parse_strict(NULL, 3, &x), -1);
    assert_int_equal(ipaddr_parse_strict("1.2.3.4\0", 8, &x), -1);
}

/* ---- formatting -------------------------------------------------------------- */

static void test_format_longest_zero_run(void **state)
{
    (void)state;
    format_is("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"); /* tie: first run */
    format_is("2001:0:0:1:0:0:0:1", "2001:0:0:1::1");       /* longer second run */
    format_is("2001:db8:0:0:0:0:2:1", "2001:db8::2:1");
    format_is("0:0:0:0:0:0:0:0", "::");
    format_is("1:0:0:0:0:0:0:0", "1::");
    format_is("0:0:0:0:0:0:0:1", "::1");
}

static void test_format_single_zero_group(void **state)
{
    (void)state;
    format_is("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1");
    format_is("2001:db8::1:1:1:1:1", "2001:db8:0:1:1:1:1:1");
}

static void test_format_lowercase_no_leading_zeros(void **state)
{
    (void)state;
    format_is("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1");
    format_is("FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
    format_is("2001:0db8:00a0:0b00:0000:0000:0000:0000", "2001:db8:a0:b00::");
}

static void test_format_mapped(void **state)
{
    (void)state;
    format_is("::ffff:1.2.3.4", "::ffff:1.2.3.4");
    format_is("::ffff:102:304", "::ffff:1.2.3.4");
    format_is("0:0:0:0:0:ffff:0:0", "::ffff:0.0.0.0");
    format_is("::ffff:0:102:304", "::ffff:0:102:304"); /* translated: plain hex */
    format_is("::1.2.3.4", "::102:304");               /* compatible: plain hex */
}

static void test_format_v4(void **state)
{
    (void)state;
    format_is("0.0.0.0", "0.0.0.0");
    format_is("255.255.255.255", "255.255.255.255");
    format_is("10.20.30.40", "10.20.30.40");
}

static void test_format_buffer_limits(void **state)
{
    (void)state;
    netaddr_t x = strict("255.255.255.255"), bad;
    char buf[64];
    assert_int_equal(ipaddr_format(&x, buf, 16), 15);
    assert_string_equal(buf, "255.255.255.255");
    assert_int_equal(ipaddr_format(&x, buf, 15), -1);
    assert_string_equal(buf, "");
    assert_int_equal(ipaddr_format(&x, buf, 0), -1);
    assert_int_equal(ipaddr_format(&x, NULL, 64), -1);
    x = strict("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
    assert_int_equal(ipaddr_format(&x, buf, 40), 39);
    assert_int_equal(ipaddr_format(&x, buf, 39), -1);
    memset(&bad, 0, sizeof bad);
    bad.family = AF_UNIX;
    assert_int_equal(ipaddr_format(&bad, buf, sizeof buf), -1);
    assert_int_equal(ipaddr_format(NULL, buf, sizeof buf), -1);
}

static void test_format_round_trip(void **state)
{
    (void)state;
    const char *canon[] = {"1.2.3.4",
                           "0.0.0.0",
                           "::",
                           "::1",
                           "fe80::1",
                           "2001:db8::",
                           "2001:db8:1:2:3:4:5:6",
                           "::ffff:10.0.0.1",
                           "64:ff9b::a00:1",
                           "1:0:1:0:1:0:1:0",
                           "1::1:0:0:1",
                           "fd00:0:0:1::",
                           "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"};
    for (size_t i = 0; i < sizeof canon / sizeof canon[0]; i++) {
        netaddr_t x = strict(canon[i]), y;
        char text[64];
        assert_int_equal(ipaddr_format(&x, text, sizeof text), (int)strlen(canon[i]));
        assert_string_equal(text, canon[i]);
        assert_int_equal(ipaddr_parse_strict(text, strlen(text), &y), 0);
        assert_true(ipaddr_equal(&x, &y));
    }
}

/* ---- sockaddr and equality --------------------------------------------------- */

static void test_sockaddr_v4_round_trip(void **state)
{
    (void)state;
    netaddr_t x = strict("192.0.2.7"), y;
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    uint16_t port = 0;
    ipaddr_to_sockaddr(&x, 8080, &ss, &sl);
    assert_int_equal(sl, sizeof(struct sockaddr_in));
    struct sockaddr_in sin;
    memcpy(&sin, &ss, sizeof sin);
    assert_int_equal(sin.sin_family, AF_INET);
    assert_int_equal(ntohs(sin.sin_port), 8080);
    assert_int_equal(ntohl(sin.sin_addr.s_addr), 0xc0000207u);
    assert_int_equal(ipaddr_from_sockaddr((struct sockaddr *)&ss, &y, &port), 0);
    assert_int_equal(port, 8080);
    assert_true(ipaddr_equal(&x, &y));
    assert_memory_equal(&x, &y, sizeof x);
}

static void test_sockaddr_v6_round_trip(void **state)
{
    (void)state;
    netaddr_t x, y;
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    uint16_t port = 0;
    assert_int_equal(ipaddr_parse_host("[fe80::abcd%7]", 14, &x, NULL, 0), IPADDR_LITERAL);
    ipaddr_to_sockaddr(&x, 443, &ss, &sl);
    assert_int_equal(sl, sizeof(struct sockaddr_in6));
    struct sockaddr_in6 sin6;
    memcpy(&sin6, &ss, sizeof sin6);
    assert_int_equal(sin6.sin6_family, AF_INET6);
    assert_int_equal(ntohs(sin6.sin6_port), 443);
    assert_int_equal(sin6.sin6_scope_id, 7);
    assert_int_equal(sin6.sin6_addr.s6_addr[0], 0xfe);
    assert_int_equal(sin6.sin6_addr.s6_addr[15], 0xcd);
    assert_int_equal(ipaddr_from_sockaddr((struct sockaddr *)&ss, &y, &port), 0);
    assert_int_equal(port, 443);
    assert_int_equal(y.scope_id, 7);
    assert_true(ipaddr_equal(&x, &y));
}

static void test_sockaddr_unknown_family(void **state)
{
    (void)state;
    struct sockaddr_un sun;
    netaddr_t y, bad;
    uint16_t port = 99;
    struct sockaddr_storage ss;
    socklen_t sl = 99;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    assert_int_equal(ipaddr_from_sockaddr((struct sockaddr *)&sun, &y, &port), -1);
    assert_int_equal(y.family, 0);
    assert_int_equal(port, 0);
    memset(&bad, 0, sizeof bad);
    bad.family = 12345;
    ipaddr_to_sockaddr(&bad, 1, &ss, &sl);
    assert_int_equal(sl, 0);
    assert_int_equal(ss.ss_family, AF_UNSPEC);
}

static void test_equal(void **state)
{
    (void)state;
    netaddr_t a = strict("10.0.0.1"), b = strict("10.0.0.1"), m = strict("::ffff:10.0.0.1");
    netaddr_t z1, z2, z3;
    assert_true(ipaddr_equal(&a, &b));
    assert_false(ipaddr_equal(&a, &m));
    b = strict("10.0.0.2");
    assert_false(ipaddr_equal(&a, &b));
    assert_int_equal(ipaddr_parse_host("[fe80::1%1]", 11, &z1, NULL, 0), IPADDR_LITERAL);
    assert_int_equal(ipaddr_parse_host("[fe80::1%2]", 11, &z2, NULL, 0), IPADDR_LITERAL);
    assert_int_equal(ipaddr_parse_host("[fe80::1%1]", 11, &z3, NULL, 0), IPADDR_LITERAL);
    assert_false(ipaddr_equal(&z1, &z2));
    assert_true(ipaddr_equal(&z1, &z3));
    assert_false(ipaddr_equal(NULL, &a));
}

/* ---- embedded IPv4 ----------------------------------------------------------- */

static void test_embedded_forms(void **state)
{
    (void)state;
    embedded_is("::ffff:169.254.169.254", "169.254.169.254"); /* mapped */
    embedded_is("::ffff:0:10.1.2.3", "10.1.2.3");             /* translated */
    embedded_is("::127.0.0.1", "127.0.0.1");                  /* compatible */
    embedded_is("::2", "0.0.0.2");                            /* compatible */
    embedded_is("64:ff9b::7f00:1", "127.0.0.1");              /* NAT64 well-known */
    embedded_is("64:ff9b:1::a9fe:a9fe", "169.254.169.254");   /* NAT64 local-use */
    embedded_is("64:ff9b:1:ffff::808:808", "8.8.8.8");
    embedded_is("2002:7f00:1::", "127.0.0.1"); /* 6to4 */
    embedded_is("2002:c000:204:1::5", "192.0.2.4");
    /* Teredo (RFC 4380 example): client 192.0.2.45 stored inverted */
    embedded_is("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45");
}

static void test_embedded_negative(void **state)
{
    (void)state;
    const char *none[] = {
        "::",           "::1",          "2001:db8::1", "fe80::1",    "64:ff9b::1:0:0:0",
        "64:ff9b:2::1", "2003::7f00:1", "2001:1::1",   "::1:0:0:0:1"};
    netaddr_t v4;
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        netaddr_t x = strict(none[i]);
        if (ipaddr_embedded_v4(&x, &v4)) print_error("input: \"%s\"\n", none[i]);
        assert_false(ipaddr_embedded_v4(&x, &v4));
    }
    netaddr_t x = strict("127.0.0.1");
    assert_false(ipaddr_embedded_v4(&x, &v4));
    assert_false(ipaddr_embedded_v4(NULL, &v4));
    x = strict("::ffff:1.2.3.4");
    assert_true(ipaddr_embedded_v4(&x, NULL));
}

/* ---- classification ---------------------------------------------------------- */

static void test_classify_v4_this_network_loopback(void **state)
{
    (void)state;
    class_is("0.0.0.0", NETCLASS_THIS_NETWORK);
    class_is("0.255.255.255", NETCLASS_THIS_NETWORK);
    class_is("127.0.0.1", NETCLASS_LOOPBACK);
    class_is("127.255.255.254", NETCLASS_LOOPBACK);
    class_is("1.0.0.0", NETCLASS_PUBLIC);
    class_is("126.255.255.255", NETCLASS_PUBLIC);
    class_is("128.0.0.0", NETCLASS_PUBLIC);
}

static void test_classify_v4_private(void **state)
{
    (void)state;
    class_is("10.0.0.1", NETCLASS_PRIVATE);
    class_is("10.255.255.255", NETCLASS_PRIVATE);
    class_is("172.16.0.1", NETCLASS_PRIVATE);
    class_is("172.31.255.255", NETCLASS_PRIVATE);
    class_is("192.168.1.1", NETCLASS_PRIVATE);
    class_is("9.255.255.255", NETCLASS_PUBLIC);
    class_is("11.0.0.0", NETCLASS_PUBLIC);
    class_is("172.15.255.255", NETCLASS_PUBLIC);
    class_is("172.32.0.0", NETCLASS_PUBLIC);
    class_is("192.169.0.0", NETCLASS_PUBLIC);
}

static void test_classify_v4_cgnat_link_local(void **state)
{
    (void)state;
    class_is("100.64.0.1", NETCLASS_CGNAT);
    class_is("100.127.255.255", NETCLASS_CGNAT);
    class_is("100.63.255.255", NETCLASS_PUBLIC);
    class_is("100.128.0.0", NETCLASS_PUBLIC);
    class_is("169.254.169.254", NETCLASS_LINK_LOCAL);
    class_is("169.254.0.0", NETCLASS_LINK_LOCAL);
    class_is("169.253.255.255", NETCLASS_PUBLIC);
    class_is("169.255.0.0", NETCLASS_PUBLIC);
}

static void test_classify_v4_multicast_broadcast_reserved(void **state)
{
    (void)state;
    class_is("224.0.0.1", NETCLASS_MULTICAST);
    class_is("239.255.255.255", NETCLASS_MULTICAST);
    class_is("223.255.255.255", NETCLASS_PUBLIC);
    class_is("255.255.255.255", NETCLASS_BROADCAST);
    class_is("255.255.255.254", NETCLASS_RESERVED);
    class_is("240.0.0.1", NETCLASS_RESERVED);
}

static void test_classify_v4_special_purpose(void **state)
{
    (void)state;
    class_is("192.0.0.8", NETCLASS_RESERVED);
    class_is("192.0.2.1", NETCLASS_RESERVED);
    class_is("198.18.0.1", NETCLASS_RESERVED);
    class_is("198.19.255.255", NETCLASS_RESERVED);
    class_is("198.51.100.1", NETCLASS_RESERVED);
    class_is("203.0.113.255", NETCLASS_RESERVED);
    class_is("192.0.1.255", NETCLASS_PUBLIC);
    class_is("192.0.3.0", NETCLASS_PUBLIC);
    class_is("198.17.255.255", NETCLASS_PUBLIC);
    class_is("198.20.0.0", NETCLASS_PUBLIC);
    class_is("203.0.114.0", NETCLASS_PUBLIC);
    class_is("8.8.8.8", NETCLASS_PUBLIC);
    class_is("140.82.112.3", NETCLASS_PUBLIC);
}

static void test_classify_v4_legacy_spellings(void **state)
{
    (void)state;
    host_class_is("0x7f.1", NETCLASS_LOOPBACK);
    host_class_is("2852039166", NETCLASS_LINK_LOCAL);
    host_class_is("012.0.0.1", NETCLASS_PRIVATE);
    host_class_is("0", NETCLASS_THIS_NETWORK);
    host_class_is("0xffffffff", NETCLASS_BROADCAST);
}

static void test_classify_v6_classes(void **state)
{
    (void)state;
    class_is("::", NETCLASS_THIS_NETWORK);
    class_is("::1", NETCLASS_LOOPBACK);
    class_is("fc00::1", NETCLASS_ULA);
    class_is("fdff:ffff::1", NETCLASS_ULA);
    class_is("fe80::1", NETCLASS_LINK_LOCAL);
    class_is("febf:ffff::1", NETCLASS_LINK_LOCAL);
    class_is("fec0::1", NETCLASS_RESERVED);
    class_is("ff02::1", NETCLASS_MULTICAST);
    class_is("ff0e::101", NETCLASS_MULTICAST);
}

static void test_classify_v6_reserved(void **state)
{
    (void)state;
    class_is("2001:db8::1", NETCLASS_RESERVED);
    class_is("2001:db8:ffff::", NETCLASS_RESERVED);
    class_is("100::1", NETCLASS_RESERVED);
    class_is("100::ffff:ffff:ffff:ffff", NETCLASS_RESERVED);
    class_is("3fff::1", NETCLASS_RESERVED);
    class_is("2001:2::1", NETCLASS_RESERVED);
    class_is("4000::1", NETCLASS_RESERVED); /* outside 2000::/3 */
    class_is("64:ff9b::1:0:0:0", NETCLASS_RESERVED);
}

static void test_classify_v6_public(void **state)
{
    (void)state;
    class_is("2606:4700:4700::1111", NETCLASS_PUBLIC);
    class_is("2a00:1450:4001:82b::200e", NETCLASS_PUBLIC);
    class_is("2001:db9::1", NETCLASS_PUBLIC);
    class_is("2001:4860:4860::8888", NETCLASS_PUBLIC);
}

static void test_classify_embedded_mapped(void **state)
{
    (void)state;
    host_class_is("[::ffff:169.254.169.254]", NETCLASS_LINK_LOCAL);
    host_class_is("[::ffff:127.0.0.1]", NETCLASS_LOOPBACK);
    host_class_is("[::ffff:7f00:1]", NETCLASS_LOOPBACK);
    host_class_is("[0:0:0:0:0:ffff:127.0.0.1]", NETCLASS_LOOPBACK);
    host_class_is("[::ffff:10.0.0.1]", NETCLASS_PRIVATE);
    host_class_is("[::ffff:0.0.0.0]", NETCLASS_THIS_NETWORK);
    host_class_is("[::ffff:8.8.8.8]", NETCLASS_PUBLIC);
}

static void test_classify_embedded_other_forms(void **state)
{
    (void)state;
    host_class_is("[::ffff:0:a9fe:a9fe]", NETCLASS_LINK_LOCAL); /* translated */
    host_class_is("[::7f00:1]", NETCLASS_LOOPBACK);             /* compatible */
    host_class_is("[::192.168.0.1]", NETCLASS_PRIVATE);         /* compatible */
    host_class_is("[64:ff9b::7f00:1]", NETCLASS_LOOPBACK);
    host_class_is("[64:ff9b::808:808]", NETCLASS_PUBLIC);
    host_class_is("[64:ff9b:1::a9fe:a9fe]", NETCLASS_LINK_LOCAL);
    host_class_is("[2002:7f00:1::]", NETCLASS_LOOPBACK);
    host_class_is("[2002:a9fe:a9fe::1]", NETCLASS_LINK_LOCAL);
    host_class_is("[2002:808:808::1]", NETCLASS_PUBLIC);
}

static void test_classify_teredo(void **state)
{
    (void)state;
    /* client 127.0.0.1 inverted = 80ff:fffe */
    host_class_is("[2001:0:4136:e378:8000:63bf:80ff:fffe]", NETCLASS_LOOPBACK);
    /* client 169.254.169.254 inverted = 5601:5601 */
    host_class_is("[2001::5601:5601]", NETCLASS_LINK_LOCAL);
    /* client 8.8.8.8 inverted = f7f7:f7f7 */
    host_class_is("[2001:0:4136:e378:8000:63bf:f7f7:f7f7]", NETCLASS_PUBLIC);
    /* RFC 4380 example: client 192.0.2.45 is TEST-NET-1 */
    host_class_is("[2001:0:4136:e378:8000:63bf:3fff:fdd2]", NETCLASS_RESERVED);
}

static void test_classify_nat64_local_encodings(void **state)
{
    (void)state;
    /* RFC 8215 local-use prefix: IPv4 in the last 32 bits (ipaddr.h) */
    class_is("64:ff9b:1::7f00:1", NETCLASS_LOOPBACK);
    class_is("64:ff9b:1:abcd::a00:1", NETCLASS_PRIVATE);
    class_is("64:ff9b:1:ffff:ffff:ffff:808:808", NETCLASS_PUBLIC);
    class_is("64:ff9b:1::", NETCLASS_THIS_NETWORK);
}

static void test_classify_bad_family_and_names(void **state)
{
    (void)state;
    netaddr_t x;
    memset(&x, 0, sizeof x);
    assert_int_equal(ipaddr_classify(&x), NETCLASS_RESERVED);
    x.family = AF_UNIX;
    assert_int_equal(ipaddr_classify(&x), NETCLASS_RESERVED);
    assert_int_equal(ipaddr_classify(NULL), NETCLASS_RESERVED);
    assert_string_equal(netclass_name(NETCLASS_PUBLIC), "public");
    assert_string_equal(netclass_name(NETCLASS_THIS_NETWORK), "this_network");
    assert_string_equal(netclass_name(NETCLASS_LOOPBACK), "loopback");
    assert_string_equal(netclass_name(NETCLASS_PRIVATE), "private");
    assert_string_equal(netclass_name(NETCLASS_CGNAT), "cgnat");
    assert_string_equal(netclass_name(NETCLASS_LINK_LOCAL), "link_local");
    assert_string_equal(netclass_name(NETCLASS_MULTICAST), "multicast");
    assert_string_equal(netclass_name(NETCLASS_BROADCAST), "broadcast");
    assert_string_equal(netclass_name(NETCLASS_RESERVED), "reserved");
    assert_string_equal(netclass_name(NETCLASS_ULA), "ula");
    assert_string_equal(netclass_name((netclass_t)99), "unknown");
}

/* ---- CIDR -------------------------------------------------------------------- */

static void test_cidr_parse_ok(void **state)
{
    (void)state;
    cidr_ok("10.0.0.0/8", "10.0.0.0/8");
    cidr_ok("172.16.0.0/12", "172.16.0.0/12");
    cidr_ok("192.168.1.0/24", "192.168.1.0/24");
    cidr_ok("0.0.0.0/0", "0.0.0.0/0");
    cidr_ok("1.2.3.4", "1.2.3.4/32");
    cidr_ok("1.2.3.4/32", "1.2.3.4/32");
    cidr_ok("fd00::/8", "fd00::/8");
    cidr_ok("::/0", "::/0");
    cidr_ok("2001:DB8::1", "2001:db8::1/128");
    cidr_ok("fe80::/10", "fe80::/10");
    cidr_ok("::ffff:10.0.0.0/104", "::ffff:10.0.0.0/104");
    netcidr_t c = cidr("10.0.0.0/8");
    assert_int_equal(c.addr.family, AF_INET);
    assert_int_equal(c.prefix, 8);
}

static void test_cidr_host_bits_set(void **state)
{
    (void)state;
    cidr_fails("10.0.0.1/8", "10.0.0.0/8");
    cidr_fails("192.168.1.1/24", "192.168.1.0/24");
    cidr_fails("172.17.0.0/12", "172.16.0.0/12");
    cidr_fails("fd00::1/8", "fd00::/8");
    cidr_fails("fe80::1/10", "fe80::/10");
    cidr_fails("1.0.0.0/0", "0.0.0.0/0");
}

static void test_cidr_prefix_too_long(void **state)
{
    (void)state;
    cidr_fails("10.0.0.0/33", "max /32");
    cidr_fails("::/129", "max /128");
    cidr_fails("1.2.3.4/999", "max /32");
}

static void test_cidr_garbage(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "/8",
                         "10.0.0.0/",
                         "10.0.0.0/8/8",
                         "10.0.0.0/08",
                         "10.0.0.0/+8",
                         "10.0.0.0/ 8",
                         "10/8",
                         "10.0.0.0/-1",
                         "010.0.0.0/8",
                         "10.0.0.0/8 ",
                         "[::]/0",
                         "fe80::%eth0/64",
                         "10.0.0.0/1000",
                         "0x0a.0.0.0/8",
                         "example.com/8",
                         "10.0.0.0/8x",
                         "::/0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cidr_fails(bad[i], NULL);
    netcidr_t c;
    assert_int_equal(netcidr_parse("10.0.0.1/8", 10, &c, NULL, 0), -1);
    assert_int_equal(netcidr_parse(NULL, 4, &c, NULL, 0), -1);
    char err[8];
    assert_int_equal(netcidr_parse("10.0.0.1/8", 10, &c, err, sizeof err), -1);
    assert_int_equal(strlen(err), 7); /* truncated, terminated */
}

static void test_cidr_contains(void **state)
{
    (void)state;
    netcidr_t c = cidr("10.0.0.0/8");
    netaddr_t a = strict("10.255.255.255");
    assert_true(netcidr_contains(&c, &a));
    a = strict("11.0.0.0");
    assert_false(netcidr_contains(&c, &a));
    a = strict("9.255.255.255");
    assert_false(netcidr_contains(&c, &a));
    a = strict("::ffff:10.0.0.1"); /* plain containment: families differ */
    assert_false(netcidr_contains(&c, &a));
    c = cidr("0.0.0.0/0");
    a = strict("255.255.255.255");
    assert_true(netcidr_contains(&c, &a));
    a = strict("::1");
    assert_false(netcidr_contains(&c, &a));
    c = cidr("fc00::/7");
    a = strict("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
    assert_true(netcidr_contains(&c, &a));
    a = strict("fe00::");
    assert_false(netcidr_contains(&c, &a));
    c = cidr("172.16.0.0/12");
    a = strict("172.31.255.255");
    assert_true(netcidr_contains(&c, &a));
    a = strict("172.32.0.0");
    assert_false(netcidr_contains(&c, &a));
}

static void test_cidr_format_small_buffer(void **state)
{
    (void)state;
    netcidr_t c = cidr("192.168.100.0/24");
    char buf[80];
    assert_int_equal(netcidr_format(&c, buf, 17), 16);
    assert_string_equal(buf, "192.168.100.0/24");
    assert_int_equal(netcidr_format(&c, buf, 16), -1);
    assert_int_equal(netcidr_format(&c, buf, 0), -1);
    c = cidr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
    assert_int_equal(netcidr_format(&c, buf, sizeof buf), 43);
}

static void test_cidrset_match_order(void **state)
{
    (void)state;
    cidrset_t s = {0};
    netcidr_t c;
    netaddr_t a = strict("10.1.2.3");
    assert_int_equal(cidrset_match(&s, &a), -1); /* empty set */
    c = cidr("192.168.0.0/16");
    assert_int_equal(cidrset_add(&s, &c), 0);
    c = cidr("10.1.0.0/16");
    assert_int_equal(cidrset_add(&s, &c), 0);
    c = cidr("10.0.0.0/8");
    assert_int_equal(cidrset_add(&s, &c), 0);
    c = cidr("fd00::/8");
    assert_int_equal(cidrset_add(&s, &c), 0);
    assert_int_equal(s.n, 4);
    assert_int_equal(cidrset_match(&s, &a), 1);
    a = strict("10.2.0.0");
    assert_int_equal(cidrset_match(&s, &a), 2);
    a = strict("fd12::1");
    assert_int_equal(cidrset_match(&s, &a), 3);
    a = strict("8.8.8.8");
    assert_int_equal(cidrset_match(&s, &a), -1);
    a = strict("2001:db8::1");
    assert_int_equal(cidrset_match(&s, &a), -1);
    cidrset_free(&s);
    assert_null(s.v);
    assert_int_equal(s.n, 0);
    assert_int_equal(s.cap, 0);
    cidrset_free(&s); /* twice is harmless */
}

static void test_cidrset_match_embedded(void **state)
{
    (void)state;
    cidrset_t s = {0};
    netcidr_t c = cidr("10.0.0.0/8");
    assert_int_equal(cidrset_add(&s, &c), 0);
    c = cidr("169.254.169.254");
    assert_int_equal(cidrset_add(&s, &c), 0);
    netaddr_t a;
    assert_int_equal(ipaddr_parse_host("[::ffff:10.1.2.3]", 17, &a, NULL, 0), IPADDR_LITERAL);
    assert_int_equal(cidrset_match(&s, &a), 0);
    a = strict("64:ff9b::a00:1");
    assert_int_equal(cidrset_match(&s, &a), 0);
    a = strict("2002:a9fe:a9fe::");
    assert_int_equal(cidrset_match(&s, &a), 1);
    a = strict("::ffff:169.254.169.254");
    assert_int_equal(cidrset_match(&s, &a), 1);
    a = strict("2001::5601:5601"); /* Teredo client 169.254.169.254 */
    assert_int_equal(cidrset_match(&s, &a), 1);
    a = strict("::ffff:11.0.0.1");
    assert_int_equal(cidrset_match(&s, &a), -1);
    cidrset_free(&s);
}

static void test_cidrset_grows_and_rejects(void **state)
{
    (void)state;
    cidrset_t s = {0};
    for (unsigned i = 0; i < 200; i++) {
        char text[32];
        snprintf(text, sizeof text, "10.%u.0.0/16", i);
        netcidr_t c = cidr(text);
        assert_int_equal(cidrset_add(&s, &c), 0);
    }
    assert_int_equal(s.n, 200);
    assert_true(s.cap >= 200);
    netaddr_t a = strict("10.199.1.1");
    assert_int_equal(cidrset_match(&s, &a), 199);
    netcidr_t bad;
    memset(&bad, 0, sizeof bad);
    bad.addr.family = AF_INET;
    bad.prefix = 33;
    assert_int_equal(cidrset_add(&s, &bad), -1);
    bad.addr.family = AF_UNIX;
    bad.prefix = 0;
    assert_int_equal(cidrset_add(&s, &bad), -1);
    assert_int_equal(cidrset_add(NULL, &bad), -1);
    assert_int_equal(s.n, 200);
    assert_int_equal(cidrset_match(NULL, &a), -1);
    cidrset_free(&s);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_dotted_decimal),
        cmocka_unit_test(test_host_short_form_two_parts),
        cmocka_unit_test(test_host_short_form_three_parts),
        cmocka_unit_test(test_host_integer),
        cmocka_unit_test(test_host_hex_integer),
        cmocka_unit_test(test_host_hex_parts),
        cmocka_unit_test(test_host_hex_upper_case),
        cmocka_unit_test(test_host_octal),
        cmocka_unit_test(test_host_octal_zero_padded),
        cmocka_unit_test(test_host_octal_integer),
        cmocka_unit_test(test_host_mixed_bases),
        cmocka_unit_test(test_host_trailing_dot),
        cmocka_unit_test(test_host_v4_canonical_text),
        cmocka_unit_test(test_host_octet_out_of_range),
        cmocka_unit_test(test_host_too_many_parts),
        cmocka_unit_test(test_host_integer_overflow),
        cmocka_unit_test(test_host_short_form_overflow),
        cmocka_unit_test(test_host_bad_octal_digit),
        cmocka_unit_test(test_host_bad_hex),
        cmocka_unit_test(test_host_empty_parts),
        cmocka_unit_test(test_host_empty_and_null),
        cmocka_unit_test(test_host_whitespace),
        cmocka_unit_test(test_host_signs),
        cmocka_unit_test(test_host_nul_inside),
        cmocka_unit_test(test_host_percent),
        cmocka_unit_test(test_host_forbidden_characters),
        cmocka_unit_test(test_host_long_inputs),
        cmocka_unit_test(test_host_last_label_numeric),
        cmocka_unit_test(test_host_names),
        cmocka_unit_test(test_host_fullwidth_confusables),
        cmocka_unit_test(test_host_spelling_buffer),
        cmocka_unit_test(test_host_len_not_strlen),
        cmocka_unit_test(test_host_v6_bracketed_loopback),
        cmocka_unit_test(test_host_v6_bare),
        cmocka_unit_test(test_host_v6_mapped_dotted),
        cmocka_unit_test(test_host_v6_mapped_hex),
        cmocka_unit_test(test_host_v6_embedded_tags),
        cmocka_unit_test(test_host_v6_zone_name),
        cmocka_unit_test(test_host_v6_zone_numeric),
        cmocka_unit_test(test_host_v6_zone_invalid),
        cmocka_unit_test(test_host_v6_bracket_errors),
        cmocka_unit_test(test_host_v6_syntax_errors),
        cmocka_unit_test(test_host_v6_edge_forms),
        cmocka_unit_test(test_strict_accepts_canonical),
        cmocka_unit_test(test_strict_rejects_legacy),
        cmocka_unit_test(test_format_longest_zero_run),
        cmocka_unit_test(test_format_single_zero_group),
        cmocka_unit_test(test_format_lowercase_no_leading_zeros),
        cmocka_unit_test(test_format_mapped),
        cmocka_unit_test(test_format_v4),
        cmocka_unit_test(test_format_buffer_limits),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_sockaddr_v4_round_trip),
        cmocka_unit_test(test_sockaddr_v6_round_trip),
        cmocka_unit_test(test_sockaddr_unknown_family),
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_embedded_forms),
        cmocka_unit_test(test_embedded_negative),
        cmocka_unit_test(test_classify_v4_this_network_loopback),
        cmocka_unit_test(test_classify_v4_private),
        cmocka_unit_test(test_classify_v4_cgnat_link_local),
        cmocka_unit_test(test_classify_v4_multicast_broadcast_reserved),
        cmocka_unit_test(test_classify_v4_special_purpose),
        cmocka_unit_test(test_classify_v4_legacy_spellings),
        cmocka_unit_test(test_classify_v6_classes),
        cmocka_unit_test(test_classify_v6_reserved),
        cmocka_unit_test(test_classify_v6_public),
        cmocka_unit_test(test_classify_embedded_mapped),
        cmocka_unit_test(test_classify_embedded_other_forms),
        cmocka_unit_test(test_classify_teredo),
        cmocka_unit_test(test_classify_nat64_local_encodings),
        cmocka_unit_test(test_classify_bad_family_and_names),
        cmocka_unit_test(test_cidr_parse_ok),
        cmocka_unit_test(test_cidr_host_bits_set),
        cmocka_unit_test(test_cidr_prefix_too_long),
        cmocka_unit_test(test_cidr_garbage),
        cmocka_unit_test(test_cidr_contains),
        cmocka_unit_test(test_cidr_format_small_buffer),
        cmocka_unit_test(test_cidrset_match_order),
        cmocka_unit_test(test_cidrset_match_embedded),
        cmocka_unit_test(test_cidrset_grows_and_rejects),
    };
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
