/*
 * fuzz_ipaddr — libFuzzer harness for src/net/ipaddr.
 *
 * The input is used as is (not NUL-terminated, so ASan catches any read past
 * len) by ipaddr_parse_host, ipaddr_parse_strict and netcidr_parse, and the
 * results are checked against the module's invariants:
 *   - a parser always initialises its output; IPv4 leaves bytes[4..15] zero;
 *   - a literal formats (RFC 5952) and parse_strict(format(x)) == x (zone
 *     aside), and parse_host accepts the formatted text (bracketed for IPv6)
 *     as the same address;
 *   - whatever parse_strict accepts, parse_host accepts as the same address;
 *   - classification and netclass_name never fail; an embedded IPv4 address
 *     classifies the same as its IPv6 carrier;
 *   - sockaddr conversion round-trips;
 *   - a parsed CIDR has host bits clear, contains its own address, formats
 *     and re-parses to itself, and cidrset_match agrees with netcidr_contains.
 * A violated invariant calls abort() so libFuzzer records the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/ipaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_tail_zero(const netaddr_t *a)
{
    if (a->family != AF_INET) return;
    for (int i = 4; i < 16; i++)
        CHECK(a->bytes[i] == 0);
    CHECK(a->scope_id == 0);
}

/* Invariants that hold for any address a parser produced. */
static void check_address(const netaddr_t *a)
{
    char text[64], host[80];
    netaddr_t b, c, v4;

    CHECK(a->family == AF_INET || a->family == AF_INET6);
    check_tail_zero(a);

    int n = ipaddr_format(a, text, sizeof text);
    CHECK(n > 0 && (size_t)n == strlen(text));
    CHECK(ipaddr_format(a, text, (size_t)n) == -1);    /* one byte short */
    CHECK(ipaddr_format(a, text, (size_t)n + 1) == n); /* exact fit */

    /* strict round trip: same address, zone dropped by the text form */
    CHECK(ipaddr_parse_strict(text, (size_t)n, &b) == 0);
    netaddr_t noscope = *a;
    noscope.scope_id = 0;
    CHECK(ipaddr_equal(&b, &noscope));
    CHECK(memcmp(&b, &noscope, sizeof b) == 0);

    /* parse_host of the canonical text is the same literal */
    size_t hl;
    if (a->family == AF_INET6) {
        host[0] = '[';
        memcpy(host + 1, text, (size_t)n);
        host[n + 1] = ']';
        hl = (size_t)n + 2;
    } else {
        memcpy(host, text, (size_t)n);
        hl = (size_t)n;
    }
    char sp[64];
    CHECK(ipaddr_parse_host(host, hl, &c, sp, sizeof sp) == IPADDR_LITERAL);
    CHECK(ipaddr_equal(&c, &noscope));
    CHECK(sp[0] != '\0');

    /* classification never fails and follows the embedded IPv4 address */
    netclass_t cls = ipaddr_classify(a);
    const char *name = netclass_name(cls);
    CHECK(name != NULL && strcmp(name, "unknown") != 0);
    if (ipaddr_embedded_v4(a, &v4)) {
        CHECK(a->family == AF_INET6);
        CHECK(v4.family == AF_INET);
        check_tail_zero(&v4);
        CHECK(ipaddr_classify(&v4) == cls);
    }
    if (a->family == AF_INET) CHECK(!ipaddr_embedded_v4(a, &v4));

    /* sockaddr round trip */
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    uint16_t port = 0;
    ipaddr_to_sockaddr(a, 4242, &ss, &sl);
    CHECK(sl > 0);
    CHECK(ipaddr_from_sockaddr((const struct sockaddr *)&ss, &b, &port) == 0);
    CHECK(port == 4242);
    CHECK(ipaddr_equal(&b, a));
}

static void fuzz_host(const char *s, size_t len)
{
    netaddr_t a;
    char sp[64];
    memset(sp, 'x', sizeof sp);
    ipaddr_kind_t k = ipaddr_parse_host(s, len, &a, sp, sizeof sp);
    CHECK(memchr(sp, '\0', sizeof sp) != NULL);
    if (k == IPADDR_LITERAL) {
        CHECK(sp[0] != '\0');
        check_address(&a);
        return;
    }
    CHECK(k == IPADDR_NAME || k == IPADDR_INVALID);
    CHECK(sp[0] == '\0');
    netaddr_t zero;
    memset(&zero, 0, sizeof zero);
    CHECK(memcmp(&a, &zero, sizeof a) == 0);
    if (k == IPADDR_NAME) {
        /* a name has no ':' '%' '[' ']' or whitespace, and is not a literal */
        for (size_t i = 0; i < len; i++) {
            unsigned char ch = (unsigned char)s[i];
            CHECK(ch > 0x20 && ch != 0x7f && ch != ':' && ch != '%' && ch != '[' && ch != ']');
        }
    }
}

static void fuzz_strict(const char *s, size_t len)
{
    netaddr_t a, h;
    if (ipaddr_parse_strict(s, len, &a) != 0) {
        CHECK(a.family == 0);
        return;
    }
    check_address(&a);
    CHECK(a.scope_id == 0);
    /* the lenient parser accepts everything the strict one does, identically */
    CHECK(ipaddr_parse_host(s, len, &h, NULL, 0) == IPADDR_LITERAL);
    CHECK(ipaddr_equal(&a, &h));
}

static void fuzz_cidr(const char *s, size_t len)
{
    netcidr_t c, d;
    char err[128], text[80];
    if (netcidr_parse(s, len, &c, err, sizeof err) != 0) {
        CHECK(err[0] != '\0');
        CHECK(c.addr.family == 0 && c.prefix == 0);
        return;
    }
    unsigned bits = c.addr.family == AF_INET ? 32 : 128;
    CHECK(c.addr.family == AF_INET || c.addr.family == AF_INET6);
    CHECK(c.prefix <= bits);
    check_tail_zero(&c.addr);
    CHECK(netcidr_contains(&c, &c.addr));
    /* host bits clear: the last address in the block differs only there */
    netaddr_t last = c.addr;
    for (unsigned i = c.prefix; i < bits; i++)
        last.bytes[i / 8] |= (uint8_t)(0x80u >> (i % 8));
    CHECK(netcidr_contains(&c, &last));
    int n = netcidr_format(&c, text, sizeof text);
    CHECK(n > 0);
    CHECK(netcidr_parse(text, (size_t)n, &d, err, sizeof err) == 0);
    CHECK(memcmp(&c, &d, sizeof c) == 0);

    cidrset_t set = {0};
    CHECK(cidrset_add(&set, &c) == 0);
    CHECK(cidrset_match(&set, &c.addr) == 0);
    CHECK(cidrset_match(&set, &last) == 0);
    /* an address just outside the block (when there is one) does not match;
     * nor can it through an embedded IPv4 address, the set holding a single
     * CIDR of the address's own family */
    if (c.prefix > 0) {
        netaddr_t out = c.addr;
        out.bytes[(c.prefix - 1) / 8] ^= (uint8_t)(0x80u >> ((c.prefix - 1) % 8));
        CHECK(!netcidr_contains(&c, &out));
        CHECK(cidrset_match(&set, &out) == -1);
    }
    cidrset_free(&set);
    CHECK(set.v == NULL && set.n == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    fuzz_host(s, size);
    fuzz_strict(s, size);
    fuzz_cidr(s, size);
    return 0;
}
