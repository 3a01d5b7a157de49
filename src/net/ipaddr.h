/*
 * ipaddr — cdeguard's own strict IP literal parser, CIDR sets and address
 * classification for the SSRF guard.
 *
 * Why our own parser: inet_aton() and getaddrinfo() accept legacy spellings
 * ("0177.0.0.1" is octal, "2130706433" is one 32-bit number, "127.1" is a
 * short form) and silently turn them into addresses.  A proxy that checks the
 * string one way and connects another way is an SSRF hole.  ipaddr_parse_host()
 * recognises every spelling a resolver would accept, normalises it to the
 * address it denotes, and reports which spelling it was, so that the caller
 * checks and connects to exactly the same 16 bytes.
 *
 * Invariants: a netaddr_t is always fully initialised by the parser; IPv4 is
 * stored as family AF_INET in bytes[0..3] (bytes[4..15] zero).  No function
 * here allocates, except cidrset_* (which owns its array).
 */
#ifndef CDEGUARD_NET_IPADDR_H
#define CDEGUARD_NET_IPADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct netaddr {
    int family;        /* AF_INET or AF_INET6 */
    uint8_t bytes[16]; /* network byte order; IPv4 uses bytes[0..3] */
    uint32_t scope_id; /* IPv6 zone id as a number (0 when none) */
} netaddr_t;

/* Result of ipaddr_parse_host(). */
typedef enum {
    IPADDR_NAME = 0,     /* not an IP literal: a DNS name to resolve */
    IPADDR_LITERAL = 1,  /* an IP literal; *out holds the address */
    IPADDR_INVALID = -1, /* looks numeric / bracketed but is malformed: deny */
} ipaddr_kind_t;

/*
 * Parse the host part of a URL authority or CONNECT target (without port).
 * Accepts: dotted IPv4 with 1–4 parts where each part is decimal, octal
 * (leading 0) or hex (0x), exactly as inet_aton would read them ("127.1",
 * "0177.0.0.1", "0x7f.1", "2130706433", "017700000001"); IPv6 in brackets
 * "[::1]" or bare "::1", with an optional zone "%eth0" / "%25eth0" (a zone
 * name is not resolved; scope_id is set only for numeric zones); IPv4-embedded
 * IPv6 ("::ffff:127.0.0.1").  A trailing dot after an IPv4 literal ("127.0.0.1.")
 * is still an IPv4 literal.  A string whose last dot-separated label is all
 * digits or a 0x-hex number but that is not a valid IPv4 literal (e.g.
 * "1.2.3.4.5", "256.1.1.1", "0x1g.0.0.1", "1.2.3.09") is IPADDR_INVALID, because
 * resolvers disagree about such names.  `spelling_out` (may be NULL, size >= 64)
 * receives a short tag for the audit log: "dotted-decimal", "octal", "hex",
 * "integer", "short-form", "ipv6", "ipv6-zone", "ipv4-mapped", ...
 */
ipaddr_kind_t ipaddr_parse_host(const char *s, size_t len, netaddr_t *out, char *spelling_out,
                                size_t spelling_len);

/* Strict canonical parsers (used for config files): IPv4 must be 4 decimal
 * octets without leading zeros; IPv6 per RFC 4291 text form.  0 on success,
 * -1 on error. */
int ipaddr_parse_strict(const char *s, size_t len, netaddr_t *out);

/* Text form: "1.2.3.4" or RFC 5952 "2001:db8::1" (no brackets). Returns
 * length written (excluding NUL) or -1 if buf too small (buflen >= 64 always
 * suffices). */
int ipaddr_format(const netaddr_t *a, char *buf, size_t buflen);

/* Conversions to/from sockaddr (port in host byte order). */
void ipaddr_to_sockaddr(const netaddr_t *a, uint16_t port, struct sockaddr_storage *ss,
                        socklen_t *sslen);
int ipaddr_from_sockaddr(const struct sockaddr *sa, netaddr_t *a, uint16_t *port_out);

bool ipaddr_equal(const netaddr_t *a, const netaddr_t *b);

/* If `a` is an IPv6 address that embeds an IPv4 address — IPv4-mapped
 * ::ffff:0:0/96, IPv4-compatible ::/96 (except :: and ::1), IPv4-translated
 * ::ffff:0:0:0/96, NAT64 64:ff9b::/96 and 64:ff9b:1::/48 (RFC 8215, v4 in the
 * last 32 bits), 6to4 2002::/16, Teredo 2001::/32 (client v4, inverted) — store
 * that IPv4 address in *v4 and return true. */
bool ipaddr_embedded_v4(const netaddr_t *a, netaddr_t *v4);

/* ---- CIDR ---- */
typedef struct netcidr {
    netaddr_t addr; /* host bits cleared */
    unsigned prefix;
} netcidr_t;

/* "10.0.0.0/8", "fd00::/8", or a bare address (= /32 or /128).  Strict
 * (ipaddr_parse_strict) address; host bits set after the prefix are an error
 * ("10.0.0.1/8" is refused: say 10.0.0.0/8).  0 ok, -1 error with a message in
 * err (errlen bytes). */
int netcidr_parse(const char *s, size_t len, netcidr_t *out, char *err, size_t errlen);
bool netcidr_contains(const netcidr_t *c, const netaddr_t *a);
int netcidr_format(const netcidr_t *c, char *buf, size_t buflen);

/* A growable list of CIDRs; lookup is a linear scan (config lists are short). */
typedef struct cidrset {
    netcidr_t *v;
    size_t n, cap;
} cidrset_t;
int cidrset_add(cidrset_t *s, const netcidr_t *c); /* 0 ok, -1 ENOMEM */
/* Index of the first CIDR containing a, or -1. IPv4-embedding IPv6
 * addresses also match through their embedded IPv4 address. */
int cidrset_match(const cidrset_t *s, const netaddr_t *a);
void cidrset_free(cidrset_t *s);

/* ---- classification for the SSRF guard ---- */
typedef enum {
    NETCLASS_PUBLIC = 0,
    NETCLASS_THIS_NETWORK, /* 0.0.0.0/8, ::/128 */
    NETCLASS_LOOPBACK,     /* 127.0.0.0/8, ::1 */
    NETCLASS_PRIVATE,      /* RFC 1918 */
    NETCLASS_CGNAT,        /* 100.64.0.0/10 */
    NETCLASS_LINK_LOCAL,   /* 169.254.0.0/16 (cloud metadata), fe80::/10 */
    NETCLASS_MULTICAST,    /* 224.0.0.0/4, ff00::/8 */
    NETCLASS_BROADCAST,    /* 255.255.255.255 */
    NETCLASS_RESERVED,     /* 240.0.0.0/4, 192.0.0.0/24, 198.18.0.0/15, TEST-NETs,
                              2001:db8::/32, 100::/64, site-local fec0::/10 ... */
    NETCLASS_ULA,          /* fc00::/7 */
} netclass_t;

/* Classify an address.  IPv6 forms that embed IPv4 (see ipaddr_embedded_v4)
 * are classified by the embedded IPv4 address.  Only NETCLASS_PUBLIC is
 * reachable without an explicit allow. */
netclass_t ipaddr_classify(const netaddr_t *a);
const char *netclass_name(netclass_t c); /* "public", "loopback", "private", ... */

#endif
