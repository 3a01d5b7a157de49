/*
 * domain — host name normalisation and Squid `dstdomain` matching.
 *
 * Semantics (Squid dstdomain, plus a `*.` form):
 *   "example.com"    matches exactly example.com
 *   ".example.com"   matches example.com and every subdomain (a.example.com, a.b.example.com)
 *   "*.example.com"  matches every subdomain of example.com but not example.com itself
 * Matching is case-insensitive, ignores one trailing dot on the host and on
 * the pattern, and compares A-labels: a pattern or host written in Unicode
 * (UTF-8) is converted to punycode ("bücher.de" == "xn--bcher-kva.de") before
 * comparison.
 *
 * A domain_set_t is built once per config (at load or reload) and then only
 * read, so it can be shared by all worker threads without locking.  It owns
 * copies of its patterns.  Lookups cost O(number of labels) hash probes.
 */
#ifndef CDEGUARD_POLICY_DOMAIN_H
#define CDEGUARD_POLICY_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DOMAIN_MAX 253 /* longest DNS name in text form, without trailing dot */

/*
 * Normalise a host name for matching and for resolving: ASCII lower-case,
 * one trailing dot removed, each non-ASCII label converted to its A-label
 * (RFC 3492 punycode with "xn--"; lower-casing of non-ASCII is limited to
 * what is needed for Latin-1 supplement / Latin Extended-A, others kept as is),
 * then validated: labels 1..63 bytes of [a-z0-9-] (underscore also allowed,
 * as in real DNS names like _dmarc), not starting or ending with '-', total
 * <= 253.  Existing "xn--" labels are kept (lower-cased) and their punycode is
 * checked for validity.  Returns the length written to out (outlen must be >
 * DOMAIN_MAX) or -1 when the name is invalid, with a reason in err.
 * Also: U+3002, U+FF0E and U+FF61 separate labels like '.' (RFC 3490); invalid
 * UTF-8 and invisible, space, bidi-control and full-width code points are
 * refused; no full UTS #46 mapping or NFC is done (see domain.c).  out is
 * NUL-terminated; err may be NULL.
 */
int domain_normalize(const char *in, size_t len, char *out, size_t outlen, char *err,
                     size_t errlen);

typedef struct domain_set domain_set_t;

domain_set_t *domain_set_new(void);
void domain_set_free(domain_set_t *s);

/* Add a pattern (as written in the config); `id` is returned by
 * domain_set_match and is the caller's index (e.g. rule number).  When the same
 * normalised pattern is added twice the first id is kept.  0 ok, -1 invalid
 * pattern (message in err).  id must be >= 0.  Refused: an empty pattern, a bare
 * "*" or ".", '*' anywhere but a leading "*.", and IP literals (a last label
 * that is numeric, as URL parsers read it, or anything with ':' or '['). */
int domain_set_add(domain_set_t *s, const char *pattern, int id, char *err, size_t errlen);

/* `host` must already be normalised (domain_normalize).  Returns the id of
 * the matching pattern, or -1.  When several match, the most specific (longest
 * pattern) wins; an exact pattern beats ".x" for the same name, and "*.x"
 * beats ".x" for a subdomain of x.  ASCII case and one trailing dot are
 * ignored here too; a malformed host (empty label, > DOMAIN_MAX) matches
 * nothing.  Read-only: safe from any number of threads at once. */
int domain_set_match(const domain_set_t *s, const char *host, size_t len);

size_t domain_set_count(const domain_set_t *s);

/*
 * RFC 3492 punycode, exposed for tests and for code that wants to show a
 * U-label (e.g. in a log line).  No "xn--" prefix, no case mapping, no IDNA
 * validation: these are the raw Bootstring algorithm with base 36.
 *
 * domain_punycode_encode: code points -> ASCII; returns the length written
 * (NUL-terminated, so outlen must be > the result) or -1 on overflow, on a
 * code point above U+10FFFF or when out is too small.
 * domain_punycode_decode: ASCII -> code points; returns the number of code
 * points or -1 on malformed input, overflow, a code point above U+10FFFF or
 * more than cpmax code points.
 * Upper- and lower-case digits are accepted; basic code points keep their case.
 */
int domain_punycode_encode(const uint32_t *cp, size_t n, char *out, size_t outlen);
int domain_punycode_decode(const char *in, size_t len, uint32_t *cp, size_t cpmax);

#endif
