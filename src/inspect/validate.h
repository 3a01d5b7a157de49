/*
 * validate — checks that turn a regex candidate into a finding (or not).
 *
 * Pure functions over (pointer, length) slices: no allocation, no global
 * state, safe from any thread.  Each returns true when the candidate is
 * plausibly real (validators) or when it is known noise (the *_is_* filters).
 * Rules name their validator in the rules file; validate_lookup() maps that
 * name to the function.
 */
#ifndef CDEGUARD_INSPECT_VALIDATE_H
#define CDEGUARD_INSPECT_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* GitHub tokens ghp_/gho_/ghu_/ghs_/ghr_ + 30 base62 chars + 6-char base62
 * CRC32 of the prefix+30 chars; also github_pat_ fine-grained tokens
 * (github_pat_ + 22 + "_" + 59, checked for charset and length). */
bool validate_github_token(const char *s, size_t n);
/* Payment card: digits with optional single spaces or dashes between groups;
 * 12–19 digits, Luhn, and an issuer range whose lengths match (Visa 13/16/19,
 * Mastercard 51–55 and 2221–2720 (16), Amex 34/37 (15), Discover 6011/644–649/65 (16–19),
 * JCB 3528–3589 (16–19), Diners 300–305/36/38/39 (14–19), UnionPay 62 (16–19),
 * Maestro 50/56–58/6 (12–19)); all-same-digit numbers are rejected. */
bool validate_card(const char *s, size_t n);
/* IBAN: country code with its registered length (per-country table), spaces
 * allowed in groups of 4, mod-97 == 1. */
bool validate_iban(const char *s, size_t n);
/* US SSN AAA-GG-SSSS or AAAGGSSSS: area not 000, 666 or 900–999, group not
 * 00, serial not 0000; known advertising numbers (078-05-1120, 219-09-9999) rejected. */
bool validate_us_ssn(const char *s, size_t n);
/* JWT: three base64url segments; the header decodes to a JSON object with an
 * "alg" member (and "typ" if present is JWT/JOSE-ish); the payload decodes to a
 * JSON object. */
bool validate_jwt(const char *s, size_t n);
/* E.164 / national phone numbers: 7–15 digits after stripping + ( ) - . and
 * spaces; not all the same digit; not a date-like or version-like shape. */
bool validate_phone(const char *s, size_t n);
/* AWS access key id: AKIA/ASIA/ABIA/ACCA + 16 base32 chars [A-Z2-7]. */
bool validate_aws_key_id(const char *s, size_t n);

/* HTTP Basic / Docker "auth" value: standard base64 of printable ASCII
 * "user:password" (user may be empty, no spaces or control characters); the
 * password is at least 4 characters, differs from the user and is neither a
 * well-known default (admin, root, guest, postgres, ...) nor a placeholder;
 * "key:" with an empty password (API keys sent as the user) needs a key of
 * at least 8 characters. */
bool validate_basic_auth(const char *s, size_t n);
/* Base64 of a secret (Kubernetes Secret data, *_B64 values): decodes to at
 * least 8 printable ASCII bytes without spaces (trailing newline ignored),
 * not a word/identifier list or placeholder, entropy >= 3.0; or to
 * a PEM block that is a private key. */
bool validate_b64_secret(const char *s, size_t n);
/* Base64 of a URI with a password: scheme://user:password@host where the
 * password is not a well-known default or a placeholder. */
bool validate_b64_uri_credential(const char *s, size_t n);

/* Shannon entropy in bits per byte. */
double validate_entropy(const char *s, size_t n);

/* Known noise — true means "not a finding":
 * documentation examples (AKIAIOSFODNN7EXAMPLE, wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY,
 * "example", "sample", "dummy", "changeme", "redacted"...), placeholders (xxxx..., ****, <token>,
 * {{ var }},
 * ${VAR}, $VAR, %VAR%, YOUR_API_KEY, your-token-here, "...", TODO), test-mode keys (sk_test_,
 * pk_test_, rk_test_), a single repeated character or a run like 0123456789/abcdef. */
bool validate_is_placeholder(const char *s, size_t n);
/* Hex digests of MD5/SHA-1/SHA-256/SHA-512 length, UUIDs, git object ids,
 * lockfile integrity strings (sha512-…/sha1-… base64). */
bool validate_is_hash_or_uuid(const char *s, size_t n);

typedef bool (*validate_fn)(const char *s, size_t n);
/* "github", "card", "iban", "us_ssn", "jwt", "phone", "aws_key_id", "basic_auth", "b64_secret",
 * "b64_uri_credential" → function; NULL if unknown. */
validate_fn validate_lookup(const char *name);

/* CRC32 (IEEE) and base62 helpers, exposed for tests. */
uint32_t validate_crc32(const void *data, size_t n);
void validate_base62_6(uint32_t v, char out[6]); /* zero-padded, most significant first */

#endif
