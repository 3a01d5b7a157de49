/*
 * ipaddr — cdeguard's own IP literal parsers, text formatting, CIDR sets and
 * the address classification behind the SSRF guard (API: ipaddr.h).
 *
 * No libc address parser is used (no inet_aton/inet_pton/getaddrinfo): every
 * spelling a resolver might accept is recognised here and normalised, so the
 * proxy checks and connects to the same 16 bytes.
 *
 * Invariants:
 *   - every parser zeroes *out first, so the result is fully initialised
 *     whatever the outcome; on success AF_INET uses bytes[0..3] only
 *     (bytes[4..15] and scope_id stay zero);
 *   - inputs are (pointer, length) slices: nothing reads past len, no NUL is
 *     needed, a NUL inside len is an error; work is linear in len and
 *     ipaddr_parse_host refuses hosts longer than HOST_MAX_LEN bytes;
 *   - a netcidr_t produced here has its host bits cleared and a prefix of at
 *     most 32 (AF_INET) or 128 (AF_INET6);
 *   - unknown families classify as NETCLASS_RESERVED (fail closed), and so
 *     does IPv6 outside 2000::/3 that no other rule names (unassigned).
 * Limitation: 64:ff9b:1::/48 (RFC 8215) is read with the IPv4 address in the
 * last 32 bits, as ipaddr.h says; a site whose NAT64 uses a shorter RFC 6052
 * prefix inside it must deny that prefix explicitly.
 * Memory: nothing allocates except cidrset_add (realloc of s->v, at most
 * CIDRSET_MAX entries); the cidrset owns that array, cidrset_free releases it.
 * No mutable static state: every function is re-entrant and thread-safe.
 * Return values follow ipaddr.h: 0 / -1, a length or -1, an index or -1.
 */
#include "net/ipaddr.h"

#include <arpa/inet.h> /* htons/ntohs only */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOST_MAX_LEN 1024u /* longer than any DNS name or sane literal: refused */
#define ZONE_MAX_LEN 64u   /* IPv6 zone text after the optional "25" */
#define CIDR_MAX_LEN 64u   /* "ffff:...:255.255.255.255/128" is 49 bytes */
#define CIDRSET_MAX 65536u /* config lists are short; more is a mistake */

/* ---- small helpers ---- */

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Copy a C string into a caller buffer, truncating; tolerates NULL / 0. */
static void copy_text(char *buf, size_t buflen, const char *text)
{
    if (buf == NULL || buflen == 0) return;
    size_t n = strlen(text);
    if (n >= buflen) n = buflen - 1;
    memcpy(buf, text, n);
    buf[n] = '\0';
}

static unsigned family_bits(int family)
{
    if (family == AF_INET) return 32;
    if (family == AF_INET6) return 128;
    return 0;
}

/* First `prefix` bits of a and b equal? */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
    unsigned full = prefix / 8, rem = prefix % 8;
    if (memcmp(a, b, full) != 0) return false;
    if (rem == 0) return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rem));
    return (a[full] & mask) == (b[full] & mask);
}

/* Clear every bit after `prefix` (bytes has `bits` bits). */
static void clear_host_bits(uint8_t *bytes, unsigned prefix, unsigned bits)
{
    for (unsigned i = 0; i < bits / 8; i++) {
        if (prefix >= 8 * (i + 1)) continue;
        if (prefix <= 8 * i) {
            bytes[i] = 0;
        } else {
            unsigned keep = prefix - 8 * i;
            bytes[i] &= (uint8_t)(0xffu << (8 - keep));
        }
    }
}

/* ---- strict parsers ---- */

/* Exactly four decimal octets 0..255, no leading zeros, nothing else. */
static int parse_v4_strict(const char *s, size_t len, uint8_t out[4])
{
    uint8_t tmp[4];
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= len || s[i] != '.') return -1;
            i++;
        }
        size_t start = i;
        unsigned v = 0;
        while (i < len && i - start < 3 && is_digit((unsigned char)s[i])) {
            v = v * 10 + (unsigned)(s[i] - '0');
            i++;
        }
        size_t nd = i - start;
        if (nd == 0 || (nd > 1 && s[start] == '0') || v > 255) return -1;
        tmp[part] = (uint8_t)v;
    }
    if (i != len) return -1;
    memcpy(out, tmp, 4);
    return 0;
}

/*
 * RFC 4291 text form: eight groups of 1-4 hex digits (either case), at most
 * one "::" standing for one or more zero groups, optionally ending in a
 * strict dotted-quad that fills the last two groups.  No zone, no brackets.
 */
static int parse_v6(const char *s, size_t len, uint8_t out[16])
{
    uint8_t tmp[16] = {0};
    size_t tp = 0, i = 0, curtok = 0;
    long gap = -1; /* index in tmp where "::" stands */
    unsigned val = 0, ndig = 0;
    bool saw_digit = false;

    if (len < 2) return -1;
    if (s[0] == ':') {
        if (s[1] != ':') return -1;
        i = 1;
    }
    curtok = i;
    while (i < len) {
        unsigned char c = (unsigned char)s[i++];
        int d = hex_value(c);
        if (d >= 0) {
            if (++ndig > 4) return -1;
            val = (val << 4) | (unsigned)d;
            saw_digit = true;
            continue;
        }
        if (c == ':') {
            curtok = i;
            if (!saw_digit) {
                if (gap >= 0) return -1;
                gap = (long)tp;
                continue;
            }
            if (i == len || tp + 2 > 16) return -1;
            tmp[tp++] = (uint8_t)(val >> 8);
            tmp[tp++] = (uint8_t)val;
            saw_digit = false;
            val = 0;
            ndig = 0;
            continue;
        }
        if (c == '.' && tp + 4 <= 16) {
            if (parse_v4_strict(s + curtok, len - curtok, tmp + tp) < 0) return -1;
            tp += 4;
            saw_digit = false;
            break;
        }
        return -1;
    }
    if (saw_digit) {
        if (tp + 2 > 16) return -1;
        tmp[tp++] = (uint8_t)(val >> 8);
        tmp[tp++] = (uint8_t)val;
    }
    if (gap >= 0) {
        if (tp == 16) return -1; /* "::" must stand for at least one group */
        size_t tail = tp - (size_t)gap;
        memmove(tmp + 16 - tail, tmp + gap, tail);
        memset(tmp + gap, 0, 16 - tail - (size_t)gap);
        tp = 16;
    }
    if (tp != 16) return -1;
    memcpy(out, tmp, 16);
    return 0;
}

int ipaddr_parse_strict(const char *s, size_t len, netaddr_t *out)
{
    netaddr_t a;
    memset(&a, 0, sizeof a);
    if (out != NULL) *out = a;
    if (s == NULL || out == NULL || len == 0 || len > CIDR_MAX_LEN) return -1;
    if (memchr(s, ':', len) != NULL) {
        if (parse_v6(s, len, a.bytes) < 0) return -1;
        a.family = AF_INET6;
    } else {
        if (parse_v4_strict(s, len, a.bytes) < 0) return -1;
        a.family = AF_INET;
    }
    *out = a;
    return 0;
}

/* ---- embedded IPv4 ---- */

typedef enum {
    EMB_NONE = 0,
    EMB_MAPPED,      /* ::ffff:0:0/96 */
    EMB_TRANSLATED,  /* ::ffff:0:0:0/96 */
    EMB_COMPATIBLE,  /* ::/96 minus :: and ::1 */
    EMB_NAT64,       /* 64:ff9b::/96 */
    EMB_NAT64_LOCAL, /* 64:ff9b:1::/48 */
    EMB_6TO4,        /* 2002::/16 */
    EMB_TEREDO,      /* 2001::/32 */
} embedding_t;

static embedding_t find_embedded(const uint8_t *b, uint8_t v4[4])
{
    static const uint8_t zero[12];
    if (memcmp(b, zero, 10) == 0 && b[10] == 0xff && b[11] == 0xff) {
        memcpy(v4, b + 12, 4);
        return EMB_MAPPED;
    }
    if (memcmp(b, zero, 8) == 0 && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0) {
        memcpy(v4, b + 12, 4);
        return EMB_TRANSLATED;
    }
    if (memcmp(b, zero, 12) == 0) {
        if (b[12] == 0 && b[13] == 0 && b[14] == 0 && b[15] <= 1) return EMB_NONE;
        memcpy(v4, b + 12, 4);
        return EMB_COMPATIBLE;
    }
    if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b) {
        if (memcmp(b + 4, zero, 8) == 0) {
            memcpy(v4, b + 12, 4);
            return EMB_NAT64;
        }
        if (b[4] == 0x00 && b[5] == 0x01) {
            memcpy(v4, b + 12, 4);
            return EMB_NAT64_LOCAL;
        }
        return EMB_NONE;
    }
    if (b[0] == 0x20 && b[1] == 0x02) {
        memcpy(v4, b + 2, 4);
        return EMB_6TO4;
    }
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x00 && b[3] == 0x00) {
        for (int i = 0; i < 4; i++)
            v4[i] = (uint8_t)(b[12 + i] ^ 0xffu);
        return EMB_TEREDO;
    }
    return EMB_NONE;
}

bool ipaddr_embedded_v4(const netaddr_t *a, netaddr_t *v4)
{
    uint8_t b[4];
    if (a == NULL || a->family != AF_INET6) return false;
    if (find_embedded(a->bytes, b) == EMB_NONE) return false;
    if (v4 != NULL) {
        memset(v4, 0, sizeof *v4);
        v4->family = AF_INET;
        memcpy(v4->bytes, b, 4);
    }
    return true;
}

/* ---- ipaddr_parse_host ---- */

/* One part of a legacy (inet_aton) dotted address: decimal, 0-octal, 0x-hex. */
enum { PART_OCTAL = 1, PART_HEX = 2 };

static int parse_v4_part(const char *s, size_t len, uint32_t *val, unsigned *kinds)
{
    unsigned base = 10, kind = 0;
    size_t i = 0;
    if (len == 0) return -1;
    if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        if (len == 2) return -1; /* "0x" alone: resolvers disagree, refuse */
        base = 16;
        i = 2;
        kind = PART_HEX;
    } else if (len >= 2 && s[0] == '0') {
        base = 8;
        i = 1;
        kind = PART_OCTAL;
    }
    uint64_t v = 0;
    for (; i < len; i++) {
        int d = hex_value((unsigned char)s[i]);
        if (d < 0 || (unsigned)d >= base) return -1;
        v = v * base + (unsigned)d;
        if (v > UINT32_MAX) return -1;
    }
    *val = (uint32_t)v;
    *kinds |= kind;
    return 0;
}

/* inet_aton forms: 1-4 parts, the last one fills the remaining bytes. */
static int parse_v4_legacy(const char *s, size_t len, uint8_t out[4], const char **tag)
{
    uint32_t parts[4];
    size_t n = 0, start = 0;
    unsigned kinds = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.') continue;
        if (n == 4) return -1;
        if (parse_v4_part(s + start, i - start, &parts[n], &kinds) < 0) return -1;
        n++;
        start = i + 1;
    }
    for (size_t k = 0; k + 1 < n; k++)
        if (parts[k] > 255) return -1;
    uint32_t last_max = UINT32_MAX >> (8 * (n - 1));
    if (parts[n - 1] > last_max) return -1;
    uint32_t v = parts[n - 1];
    for (size_t k = 0; k + 1 < n; k++)
        v |= parts[k] << (24 - 8 * k);
    out[0] = (uint8_t)(v >> 24);
    out[1] = (uint8_t)(v >> 16);
    out[2] = (uint8_t)(v >> 8);
    out[3] = (uint8_t)v;
    if (kinds & PART_HEX)
        *tag = "hex";
    else if (kinds & PART_OCTAL)
        *tag = "octal";
    else if (n == 1)
        *tag = "integer";
    else if (n < 4)
        *tag = "short-form";
    else
        *tag = "dotted-decimal";
    return 0;
}

/* WHATWG "ends in a number": digits, or 0x + hex digits; we also count a
 * leading sign, which strtoul-based parsers accept. */
static bool label_is_numeric(const char *s, size_t len)
{
    if (len > 0 && (s[0] == '+' || s[0] == '-')) {
        s++;
        len--;
    }
    if (len == 0) return false;
    size_t i = 0;
    if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        for (i = 2; i < len; i++)
            if (hex_value((unsigned char)s[i]) < 0) return false;
        return true;
    }
    for (; i < len; i++)
        if (!is_digit((unsigned char)s[i])) return false;
    return true;
}

/* WHATWG forbidden domain code points (ASCII part): never in a host name. */
static bool forbidden_host_byte(unsigned char c)
{
    if (c <= 0x20 || c == 0x7f) return true;
    switch (c) {
    case '#':
    case '%':
    case '/':
    case ':':
    case '<':
    case '>':
    case '?':
    case '@':
    case '[':
    case '\\':
    case ']':
    case '^':
    case '|':
        return true;
    default:
        return false;
    }
}

/* UTF-8 for characters that IDNA (UTS #46) maps to ASCII digits or '.':
 * U+FF10..U+FF19 fullwidth digits, U+FF0E fullwidth full stop, U+3002
 * ideographic full stop, U+FF61 halfwidth ideographic full stop.  A browser
 * would read "１２７。０。０。１" as 127.0.0.1, so such hosts are refused. */
static bool has_digit_confusable(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i + 2 < len; i++) {
        if (s[i] == 0xe3 && s[i + 1] == 0x80 && s[i + 2] == 0x82) return true;
        if (s[i] == 0xef && s[i + 1] == 0xbc &&
            (s[i + 2] == 0x8e || (s[i + 2] >= 0x90 && s[i + 2] <= 0x99)))
            return true;
        if (s[i] == 0xef && s[i + 1] == 0xbd && s[i + 2] == 0xa1) return true;
    }
    return false;
}

static ipaddr_kind_t parse_name_or_v4(const char *s, size_t len, netaddr_t *a, const char **tag)
{
    for (size_t i = 0; i < len; i++)
        if (forbidden_host_byte((unsigned char)s[i])) return IPADDR_INVALID;
    if (has_digit_confusable((const unsigned char *)s, len)) return IPADDR_INVALID;

    size_t t = len;
    if (s[t - 1] == '.') t--; /* one trailing dot: the DNS root */
    if (t == 0) return IPADDR_INVALID;
    if (parse_v4_legacy(s, t, a->bytes, tag) == 0) {
        a->family = AF_INET;
        return IPADDR_LITERAL;
    }
    /* Not an IPv4 literal: look at the last non-empty label. */
    size_t end = len;
    while (end > 0 && s[end - 1] == '.')
        end--;
    if (end == 0) return IPADDR_INVALID;
    size_t beg = end;
    while (beg > 0 && s[beg - 1] != '.')
        beg--;
    if (label_is_numeric(s + beg, end - beg)) return IPADDR_INVALID;
    return IPADDR_NAME;
}

static const char *v6_tag(const netaddr_t *a, bool zone)
{
    uint8_t v4[4];
    switch (find_embedded(a->bytes, v4)) {
    case EMB_MAPPED:
        return "ipv4-mapped";
    case EMB_TRANSLATED:
        return "ipv4-translated";
    case EMB_COMPATIBLE:
        return "ipv4-compatible";
    case EMB_NAT64:
    case EMB_NAT64_LOCAL:
        return "nat64";
    case EMB_6TO4:
        return "6to4";
    case EMB_TEREDO:
        return "teredo";
    case EMB_NONE:
        break;
    }
    return zone ? "ipv6-zone" : "ipv6";
}

/* Zone text (after "%" or "%25"): RFC 6874 unreserved characters; a numeric
 * zone is an interface index and becomes scope_id, a name is not resolved. */
static int parse_zone(const char *z, size_t len, uint32_t *scope)
{
    bool numeric = true;
    uint64_t v = 0;
    if (len == 0 || len > ZONE_MAX_LEN) return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)z[i];
        if (is_digit(c)) {
            if (numeric) {
                v = v * 10 + (unsigned)(c - '0');
                if (v > UINT32_MAX) return -1;
            }
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '.' ||
                   c == '_' || c == '~') {
            numeric = false;
        } else {
            return -1;
        }
    }
    *scope = numeric ? (uint32_t)v : 0;
    return 0;
}

static ipaddr_kind_t parse_bracketed(const char *s, size_t len, netaddr_t *a, const char **tag)
{
    if (len < 3 || s[len - 1] != ']') return IPADDR_INVALID;
    const char *in = s + 1;
    size_t n = len - 2;
    const char *pct = memchr(in, '%', n);
    size_t alen = pct != NULL ? (size_t)(pct - in) : n;
    if (parse_v6(in, alen, a->bytes) < 0) return IPADDR_INVALID;
    a->family = AF_INET6;
    if (pct != NULL) {
        const char *z = pct + 1;
        size_t zlen = n - alen - 1;
        /* "%25" is the URI encoding of '%' (RFC 6874).  "%25" alone is
         * ambiguous (empty encoded zone, or zone "25"): it leaves an empty
         * zone, which parse_zone refuses. */
        if (zlen >= 2 && z[0] == '2' && z[1] == '5') {
            z += 2;
            zlen -= 2;
        }
        if (parse_zone(z, zlen, &a->scope_id) < 0) return IPADDR_INVALID;
    }
    *tag = v6_tag(a, pct != NULL);
    return IPADDR_LITERAL;
}

ipaddr_kind_t ipaddr_parse_host(const char *s, size_t len, netaddr_t *out, char *spelling_out,
                                size_t spelling_len)
{
    netaddr_t a;
    const char *tag = "";
    ipaddr_kind_t kind;

    memset(&a, 0, sizeof a);
    if (out != NULL) *out = a;
    copy_text(spelling_out, spelling_len, "");
    if (s == NULL || out == NULL || len == 0 || len > HOST_MAX_LEN) return IPADDR_INVALID;
    if (memchr(s, '\0', len) != NULL) return IPADDR_INVALID;

    if (s[0] == '[') {
        kind = parse_bracketed(s, len, &a, &tag);
    } else if (memchr(s, ':', len) != NULL) {
        /* bare IPv6; a zone needs brackets ('%' is refused outside them) */
        if (parse_v6(s, len, a.bytes) < 0) return IPADDR_INVALID;
        a.family = AF_INET6;
        tag = v6_tag(&a, false);
        kind = IPADDR_LITERAL;
    } else {
        kind = parse_name_or_v4(s, len, &a, &tag);
    }
    if (kind != IPADDR_LITERAL) return kind;
    *out = a;
    copy_text(spelling_out, spelling_len, tag);
    return IPADDR_LITERAL;
}

/* ---- formatting ---- */

typedef struct {
    char b[64];
    size_t n;
} textbuf_t;

static void put_char(textbuf_t *t, char c)
{
    if (t->n + 1 < sizeof t->b) t->b[t->n++] = c;
}

static void put_str(textbuf_t *t, const char *s)
{
    while (*s != '\0')
        put_char(t, *s++);
}

static void put_uint(textbuf_t *t, unsigned v, unsigned base)
{
    static const char digits[] = "0123456789abcdef";
    char rev[12];
    size_t k = 0;
    do {
        rev[k++] = digits[v % base];
        v /= base;
    } while (v != 0 && k < sizeof rev);
    while (k > 0)
        put_char(t, rev[--k]);
}

static void put_v4(textbuf_t *t, const uint8_t *b)
{
    for (int i = 0; i < 4; i++) {
        if (i > 0) put_char(t, '.');
        put_uint(t, b[i], 10);
    }
}

/* RFC 5952: lower case, no leading zeros, the longest run (first on a tie)
 * of two or more zero groups as "::", IPv4-mapped as ::ffff:a.b.c.d. */
static void put_v6(textbuf_t *t, const uint8_t *b)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(b, mapped, sizeof mapped) == 0) {
        put_str(t, "::ffff:");
        put_v4(t, b + 12);
        return;
    }
    unsigned g[8];
    for (int i = 0; i < 8; i++)
        g[i] = (unsigned)b[2 * i] << 8 | b[2 * i + 1];
    int best = -1, best_len = 0;
    for (int i = 0; i < 8;) {
        if (g[i] != 0) {
            i++;
            continue;
        }
        int j = i;
        while (j < 8 && g[j] == 0)
            j++;
        if (j - i > best_len) {
            best = i;
            best_len = j - i;
        }
        i = j;
    }
    if (best_len < 2) best = -1;
    for (int i = 0; i < 8;) {
        if (i == best) {
            put_str(t, "::");
            i += best_len;
            continue;
        }
        if (i > 0 && !(best >= 0 && i == best + best_len)) put_char(t, ':');
        put_uint(t, g[i], 16);
        i++;
    }
}

static int emit(const textbuf_t *t, char *buf, size_t buflen)
{
    if (t->n + 1 > buflen) {
        buf[0] = '\0';
        return -1;
    }
    memcpy(buf, t->b, t->n);
    buf[t->n] = '\0';
    return (int)t->n;
}

int ipaddr_format(const netaddr_t *a, char *buf, size_t buflen)
{
    textbuf_t t = {.n = 0};
    if (buf == NULL || buflen == 0) return -1;
    if (a == NULL) {
        buf[0] = '\0';
        return -1;
    }
    if (a->family == AF_INET) {
        put_v4(&t, a->bytes);
    } else if (a->family == AF_INET6) {
        put_v6(&t, a->bytes);
    } else {
        buf[0] = '\0';
        return -1;
    }
    return emit(&t, buf, buflen);
}

/* ---- sockaddr ---- */

void ipaddr_to_sockaddr(const netaddr_t *a, uint16_t port, struct sockaddr_storage *ss,
                        socklen_t *sslen)
{
    if (ss == NULL) return;
    memset(ss, 0, sizeof *ss);
    if (sslen != NULL) *sslen = 0;
    if (a == NULL) return;
    if (a->family == AF_INET) {
        struct sockaddr_in sin;
        memset(&sin, 0, sizeof sin);
        sin.sin_family = AF_INET;
        sin.sin_port = htons(port);
        memcpy(&sin.sin_addr, a->bytes, 4);
        memcpy(ss, &sin, sizeof sin);
        if (sslen != NULL) *sslen = (socklen_t)sizeof sin;
    } else if (a->family == AF_INET6) {
        struct sockaddr_in6 sin6;
        memset(&sin6, 0, sizeof sin6);
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(port);
        memcpy(&sin6.sin6_addr, a->bytes, 16);
        sin6.sin6_scope_id = a->scope_id;
        memcpy(ss, &sin6, sizeof sin6);
        if (sslen != NULL) *sslen = (socklen_t)sizeof sin6;
    } else {
        ss->ss_family = AF_UNSPEC;
    }
}

int ipaddr_from_sockaddr(const struct sockaddr *sa, netaddr_t *a, uint16_t *port_out)
{
    if (a != NULL) memset(a, 0, sizeof *a);
    if (port_out != NULL) *port_out = 0;
    if (sa == NULL || a == NULL) return -1;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, sa, sizeof sin);
        a->family = AF_INET;
        memcpy(a->bytes, &sin.sin_addr, 4);
        if (port_out != NULL) *port_out = ntohs(sin.sin_port);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, sa, sizeof sin6);
        a->family = AF_INET6;
        memcpy(a->bytes, &sin6.sin6_addr, 16);
        a->scope_id = sin6.sin6_scope_id;
        if (port_out != NULL) *port_out = ntohs(sin6.sin6_port);
        return 0;
    }
    return -1;
}

/* Same family, same address bytes, same zone.  An IPv4 address and its
 * IPv4-mapped IPv6 form are NOT equal (different families). */
bool ipaddr_equal(const netaddr_t *a, const netaddr_t *b)
{
    if (a == NULL || b == NULL) return false;
    if (a->family != b->family) return false;
    unsigned bits = family_bits(a->family);
    if (bits == 0) return false;
    return memcmp(a->bytes, b->bytes, bits / 8) == 0 && a->scope_id == b->scope_id;
}

/* ---- CIDR ---- */

static void set_err(char *err, size_t errlen, const char *msg)
{
    copy_text(err, errlen, msg);
}

int netcidr_parse(const char *s, size_t len, netcidr_t *out, char *err, size_t errlen)
{
    netcidr_t c;
    memset(&c, 0, sizeof c);
    if (out != NULL) *out = c;
    set_err(err, errlen, "");
    if (s == NULL || out == NULL || len == 0) {
        set_err(err, errlen, "empty CIDR");
        return -1;
    }
    if (len > CIDR_MAX_LEN) {
        set_err(err, errlen, "CIDR too long");
        return -1;
    }
    const char *slash = memchr(s, '/', len);
    size_t alen = slash != NULL ? (size_t)(slash - s) : len;
    if (ipaddr_parse_strict(s, alen, &c.addr) < 0) {
        set_err(err, errlen,
                "invalid address (want a.b.c.d without leading zeros, or an RFC 4291 IPv6)");
        return -1;
    }
    unsigned bits = family_bits(c.addr.family);
    c.prefix = bits;
    if (slash != NULL) {
        const char *p = slash + 1;
        size_t plen = len - alen - 1;
        unsigned v = 0;
        if (plen == 0 || plen > 3 || (plen > 1 && p[0] == '0')) {
            set_err(err, errlen, "invalid prefix length (want /0 to /32 or /128)");
            return -1;
        }
        for (size_t i = 0; i < plen; i++) {
            if (!is_digit((unsigned char)p[i])) {
                set_err(err, errlen, "invalid prefix length (want /0 to /32 or /128)");
                return -1;
            }
            v = v * 10 + (unsigned)(p[i] - '0');
        }
        if (v > bits) {
            if (err != NULL && errlen > 0)
                snprintf(err, errlen, "prefix /%u longer than the address (max /%u)", v, bits);
            return -1;
        }
        c.prefix = v;
    }
    netaddr_t net = c.addr;
    clear_host_bits(net.bytes, c.prefix, bits);
    if (memcmp(net.bytes, c.addr.bytes, sizeof net.bytes) != 0) {
        char text[64];
        if (ipaddr_format(&net, text, sizeof text) < 0) text[0] = '\0';
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "host bits set after /%u: did you mean %s/%u?", c.prefix, text,
                     c.prefix);
        return -1;
    }
    *out = c;
    return 0;
}

/* Plain containment: same family and prefix bits equal (zone ignored). */
bool netcidr_contains(const netcidr_t *c, const netaddr_t *a)
{
    if (c == NULL || a == NULL) return false;
    unsigned bits = family_bits(c->addr.family);
    if (bits == 0 || a->family != c->addr.family || c->prefix > bits) return false;
    return prefix_equal(c->addr.bytes, a->bytes, c->prefix);
}

int netcidr_format(const netcidr_t *c, char *buf, size_t buflen)
{
    textbuf_t t = {.n = 0};
    if (buf == NULL || buflen == 0) return -1;
    if (c == NULL) {
        buf[0] = '\0';
        return -1;
    }
    if (c->addr.family == AF_INET) {
        put_v4(&t, c->addr.bytes);
    } else if (c->addr.family == AF_INET6) {
        put_v6(&t, c->addr.bytes);
    } else {
        buf[0] = '\0';
        return -1;
    }
    put_char(&t, '/');
    put_uint(&t, c->prefix, 10);
    return emit(&t, buf, buflen);
}

int cidrset_add(cidrset_t *s, const netcidr_t *c)
{
    if (s == NULL || c == NULL) return -1;
    unsigned bits = family_bits(c->addr.family);
    if (bits == 0 || c->prefix > bits) return -1;
    if (s->n >= CIDRSET_MAX) return -1;
    if (s->n == s->cap) {
        size_t cap = s->cap == 0 ? 8 : s->cap * 2;
        if (cap > CIDRSET_MAX) cap = CIDRSET_MAX;
        netcidr_t *v = realloc(s->v, cap * sizeof *v);
        if (v == NULL) return -1;
        s->v = v;
        s->cap = cap;
    }
    netcidr_t e = *c;
    clear_host_bits(e.addr.bytes, e.prefix, bits);
    if (bits == 32) memset(e.addr.bytes + 4, 0, 12);
    e.addr.scope_id = 0;
    s->v[s->n++] = e;
    return 0;
}

int cidrset_match(const cidrset_t *s, const netaddr_t *a)
{
    netaddr_t v4;
    if (s == NULL || a == NULL || s->v == NULL) return -1;
    bool has_v4 = ipaddr_embedded_v4(a, &v4);
    for (size_t i = 0; i < s->n && i < CIDRSET_MAX; i++) {
        if (netcidr_contains(&s->v[i], a)) return (int)i;
        if (has_v4 && netcidr_contains(&s->v[i], &v4)) return (int)i;
    }
    return -1;
}

void cidrset_free(cidrset_t *s)
{
    if (s == NULL) return;
    free(s->v);
    s->v = NULL;
    s->n = 0;
    s->cap = 0;
}

/* ---- classification ---- */

typedef struct {
    uint32_t net;
    unsigned prefix;
    netclass_t cls;
} v4_range_t;

/* First match wins: broadcast before 240/4. */
static const v4_range_t v4_ranges[] = {
    {0xffffffffu, 32, NETCLASS_BROADCAST},   /* 255.255.255.255 */
    {0x00000000u, 8, NETCLASS_THIS_NETWORK}, /* 0.0.0.0/8 */
    {0x7f000000u, 8, NETCLASS_LOOPBACK},     /* 127.0.0.0/8 */
    {0x0a000000u, 8, NETCLASS_PRIVATE},      /* 10.0.0.0/8 */
    {0xac100000u, 12, NETCLASS_PRIVATE},     /* 172.16.0.0/12 */
    {0xc0a80000u, 16, NETCLASS_PRIVATE},     /* 192.168.0.0/16 */
    {0x64400000u, 10, NETCLASS_CGNAT},       /* 100.64.0.0/10 */
    {0xa9fe0000u, 16, NETCLASS_LINK_LOCAL},  /* 169.254.0.0/16, cloud metadata */
    {0xe0000000u, 4, NETCLASS_MULTICAST},    /* 224.0.0.0/4 */
    {0xf0000000u, 4, NETCLASS_RESERVED},     /* 240.0.0.0/4 */
    {0xc0000000u, 24, NETCLASS_RESERVED},    /* 192.0.0.0/24 IETF protocol */
    {0xc0000200u, 24, NETCLASS_RESERVED},    /* 192.0.2.0/24 TEST-NET-1 */
    {0xc6120000u, 15, NETCLASS_RESERVED},    /* 198.18.0.0/15 benchmarking */
    {0xc6336400u, 24, NETCLASS_RESERVED},    /* 198.51.100.0/24 TEST-NET-2 */
    {0xcb007100u, 24, NETCLASS_RESERVED},    /* 203.0.113.0/24 TEST-NET-3 */
};

static netclass_t classify_v4(const uint8_t *b)
{
    uint32_t v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    for (size_t i = 0; i < sizeof v4_ranges / sizeof v4_ranges[0]; i++) {
        const v4_range_t *r = &v4_ranges[i];
        uint32_t mask = r->prefix == 0 ? 0 : UINT32_MAX << (32 - r->prefix);
        if ((v & mask) == r->net) return r->cls;
    }
    return NETCLASS_PUBLIC;
}

typedef struct {
    uint8_t net[4]; /* the first bytes of the prefix; the rest are zero */
    unsigned prefix;
    netclass_t cls;
} v6_range_t;

static const v6_range_t v6_ranges[] = {
    {{0xff, 0x00}, 8, NETCLASS_MULTICAST},             /* ff00::/8 */
    {{0xfe, 0x80}, 10, NETCLASS_LINK_LOCAL},           /* fe80::/10 */
    {{0xfe, 0xc0}, 10, NETCLASS_RESERVED},             /* fec0::/10 site-local */
    {{0xfc, 0x00}, 7, NETCLASS_ULA},                   /* fc00::/7 */
    {{0x20, 0x01, 0x0d, 0xb8}, 32, NETCLASS_RESERVED}, /* 2001:db8::/32 documentation */
    {{0x20, 0x01, 0x00, 0x02}, 48, NETCLASS_RESERVED}, /* 2001:2::/48 benchmarking */
    {{0x20, 0x01, 0x00, 0x10}, 28, NETCLASS_RESERVED}, /* 2001:10::/28 ORCHID */
    {{0x3f, 0xff}, 20, NETCLASS_RESERVED},             /* 3fff::/20 documentation */
    {{0x01, 0x00}, 64, NETCLASS_RESERVED},             /* 100::/64 discard-only */
};

static netclass_t classify_v6(const uint8_t *b)
{
    static const uint8_t zero[16];
    uint8_t v4[4];
    if (memcmp(b, zero, 16) == 0) return NETCLASS_THIS_NETWORK;
    if (memcmp(b, zero, 15) == 0 && b[15] == 1) return NETCLASS_LOOPBACK;
    if (find_embedded(b, v4) != EMB_NONE) return classify_v4(v4);
    for (size_t i = 0; i < sizeof v6_ranges / sizeof v6_ranges[0]; i++) {
        const v6_range_t *r = &v6_ranges[i];
        uint8_t net[16] = {0};
        memcpy(net, r->net, sizeof r->net);
        if (prefix_equal(net, b, r->prefix)) return r->cls;
    }
    /* Outside 2000::/3 nothing is assigned for global unicast (IANA). */
    if ((b[0] & 0xe0) != 0x20) return NETCLASS_RESERVED;
    return NETCLASS_PUBLIC;
}

netclass_t ipaddr_classify(const netaddr_t *a)
{
    if (a == NULL) return NETCLASS_RESERVED;
    if (a->family == AF_INET) return classify_v4(a->bytes);
    if (a->family == AF_INET6) return classify_v6(a->bytes);
    return NETCLASS_RESERVED;
}

const char *netclass_name(netclass_t c)
{
    switch (c) {
    case NETCLASS_PUBLIC:
        return "public";
    case NETCLASS_THIS_NETWORK:
        return "this_network";
    case NETCLASS_LOOPBACK:
        return "loopback";
    case NETCLASS_PRIVATE:
        return "private";
    case NETCLASS_CGNAT:
        return "cgnat";
    case NETCLASS_LINK_LOCAL:
        return "link_local";
    case NETCLASS_MULTICAST:
        return "multicast";
    case NETCLASS_BROADCAST:
        return "broadcast";
    case NETCLASS_RESERVED:
        return "reserved";
    case NETCLASS_ULA:
        return "ula";
    }
    return "unknown";
}
