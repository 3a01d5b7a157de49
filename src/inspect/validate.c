/*
 * validate.c — checksum/format validators and noise filters that turn a regex
 * candidate into a finding or drop it (contract of each function: validate.h).
 *
 * Invariants: every function reads only s[0..n) (never past n, never needs a
 * NUL terminator), accepts any bytes (s may be NULL), never aborts, and keeps
 * no state: the only tables are const data.  Character classes are ASCII-only
 * helpers here, not <ctype.h>, so results do not depend on the locale.
 * Memory: nothing is allocated.  The largest stack users are the JWT header
 * decode buffer (JWT_HDR_MAX bytes) and the 256-entry entropy histogram.
 */
#include "inspect/validate.h"

#include <math.h>
#include <string.h>

/* ---- ASCII helpers --------------------------------------------------------- */

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_upper(unsigned char c)
{
    return c >= 'A' && c <= 'Z';
}

static bool is_lower(unsigned char c)
{
    return c >= 'a' && c <= 'z';
}

static bool is_alpha(unsigned char c)
{
    return is_upper(c) || is_lower(c);
}

static bool is_alnum(unsigned char c)
{
    return is_digit(c) || is_alpha(c);
}

static unsigned char to_lower(unsigned char c)
{
    return is_upper(c) ? (unsigned char)(c + ('a' - 'A')) : c;
}

static bool all_alnum(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_alnum((unsigned char)s[i])) return false;
    return true;
}

/* s[0..n) equals the lower-case literal lit, ignoring ASCII case. */
static bool ci_equals(const char *s, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    if (m != n) return false;
    for (size_t i = 0; i < n; i++)
        if (to_lower((unsigned char)s[i]) != (unsigned char)lit[i]) return false;
    return true;
}

/* s[at..) starts with the lower-case literal lit, ignoring ASCII case. */
static bool ci_at(const char *s, size_t n, size_t at, const char *lit)
{
    size_t m = strlen(lit);
    if (at > n || n - at < m) return false;
    for (size_t i = 0; i < m; i++)
        if (to_lower((unsigned char)s[at + i]) != (unsigned char)lit[i]) return false;
    return true;
}

/* Offset of the first case-insensitive occurrence of lit at or after from, or n. */
static size_t ci_find(const char *s, size_t n, size_t from, const char *lit)
{
    for (size_t i = from; i < n; i++)
        if (ci_at(s, n, i, lit)) return i;
    return n;
}

static bool starts_with(const char *s, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    return n >= m && memcmp(s, lit, m) == 0;
}

/* ---- CRC32 and base62 ------------------------------------------------------- */

/* Reflected CRC-32 (IEEE 802.3, polynomial 0xEDB88320), as zlib's crc32(). */
static const uint32_t crc32_table[256] = {
    0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u, 0x706af48fu, 0xe963a535u,
    0x9e6495a3u, 0x0edb8832u, 0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u, 0x09b64c2bu, 0x7eb17cbdu,
    0xe7b82d07u, 0x90bf1d91u, 0x1db71064u, 0x6ab020f2u, 0xf3b97148u, 0x84be41deu, 0x1adad47du,
    0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u, 0x136c9856u, 0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu,
    0x14015c4fu, 0x63066cd9u, 0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u,
    0xa2677172u, 0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu, 0x35b5a8fau, 0x42b2986cu,
    0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u, 0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u, 0x26d930acu,
    0x51de003au, 0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u, 0xcfba9599u, 0xb8bda50fu,
    0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u, 0x2f6f7c87u, 0x58684c11u, 0xc1611dabu,
    0xb6662d3du, 0x76dc4190u, 0x01db7106u, 0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu,
    0x9fbfe4a5u, 0xe8b8d433u, 0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u, 0x7f6a0dbbu,
    0x086d3d2du, 0x91646c97u, 0xe6635c01u, 0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu,
    0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u, 0x8bbeb8eau,
    0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u, 0x4db26158u, 0x3ab551ceu,
    0xa3bc0074u, 0xd4bb30e2u, 0x4adfa541u, 0x3dd895d7u, 0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au,
    0x346ed9fcu, 0xad678846u, 0xda60b8d0u, 0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u,
    0x5005713cu, 0x270241aau, 0xbe0b1010u, 0xc90c2086u, 0x5768b525u, 0x206f85b3u, 0xb966d409u,
    0xce61e49fu, 0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u, 0x2eb40d81u,
    0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au, 0xead54739u,
    0x9dd277afu, 0x04db2615u, 0x73dc1683u, 0xe3630b12u, 0x94643b84u, 0x0d6d6a3eu, 0x7a6a5aa8u,
    0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u, 0xf00f9344u, 0x8708a3d2u, 0x1e01f268u,
    0x6906c2feu, 0xf762575du, 0x806567cbu, 0x196c3671u, 0x6e6b06e7u, 0xfed41b76u, 0x89d32be0u,
    0x10da7a5au, 0x67dd4accu, 0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u, 0xd6d6a3e8u,
    0xa1d1937eu, 0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu,
    0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u, 0x41047a60u, 0xdf60efc3u, 0xa867df55u, 0x316e8eefu,
    0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u, 0xcc0c7795u, 0xbb0b4703u,
    0x220216b9u, 0x5505262fu, 0xc5ba3bbeu, 0xb2bd0b28u, 0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u,
    0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du, 0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au,
    0x9c0906a9u, 0xeb0e363fu, 0x72076785u, 0x05005713u, 0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu,
    0x0cb61b38u, 0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u,
    0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u, 0x88085ae6u,
    0xff0f6a70u, 0x66063bcau, 0x11010b5cu, 0x8f659effu, 0xf862ae69u, 0x616bffd3u, 0x166ccf45u,
    0xa00ae278u, 0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u, 0xa7672661u, 0xd06016f7u, 0x4969474du,
    0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu, 0x40df0b66u, 0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u,
    0x47b2cf7fu, 0x30b5ffe9u, 0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u, 0xbad03605u,
    0xcdd70693u, 0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
    0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du,
};

uint32_t validate_crc32(const void *data, size_t n)
{
    const unsigned char *p = data;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++)
        c = crc32_table[(c ^ p[i]) & 0xffu] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static const char base62_alphabet[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* 62^6 > 2^32, so six digits always hold the whole value. */
void validate_base62_6(uint32_t v, char out[6])
{
    for (int i = 5; i >= 0; i--) {
        out[i] = base62_alphabet[v % 62u];
        v /= 62u;
    }
}

/* ---- GitHub ------------------------------------------------------------------ */

#define GH_CLASSIC_LEN 40 /* "ghX_" + 30 random + 6 checksum */
#define GH_FINE_LEN 93    /* "github_pat_" + 22 + "_" + 59 */

bool validate_github_token(const char *s, size_t n)
{
    if (s == NULL) return false;
    if (n == GH_CLASSIC_LEN && s[0] == 'g' && s[1] == 'h' && memchr("pousr", s[2], 5) != NULL &&
        s[3] == '_') {
        char want[6];
        if (!all_alnum(s + 4, GH_CLASSIC_LEN - 4)) return false;
        validate_base62_6(validate_crc32(s, GH_CLASSIC_LEN - 6), want);
        return memcmp(want, s + GH_CLASSIC_LEN - 6, 6) == 0;
    }
    if (n == GH_FINE_LEN && starts_with(s, n, "github_pat_"))
        return all_alnum(s + 11, 22) && s[33] == '_' && all_alnum(s + 34, 59);
    return false;
}

/* ---- payment cards ------------------------------------------------------------ */

#define CARD_LEN(a) (1u << (a))
#define CARD_LENS(lo, hi) ((CARD_LEN((hi) + 1) - 1u) & ~(CARD_LEN(lo) - 1u))

/* Issuer number ranges: the first plen digits fall in [lo, hi] and the number
 * length is in the bit set lens. */
static const struct card_range {
    uint16_t lo, hi;
    uint8_t plen;
    uint32_t lens;
} card_ranges[] = {
    {4, 4, 1, CARD_LEN(13) | CARD_LEN(16) | CARD_LEN(19)}, /* Visa */
    {51, 55, 2, CARD_LEN(16)},                             /* Mastercard */
    {2221, 2720, 4, CARD_LEN(16)},                         /* Mastercard 2-series */
    {34, 34, 2, CARD_LEN(15)},                             /* Amex */
    {37, 37, 2, CARD_LEN(15)},                             /* Amex */
    {6011, 6011, 4, CARD_LENS(16, 19)},                    /* Discover */
    {644, 649, 3, CARD_LENS(16, 19)},                      /* Discover */
    {65, 65, 2, CARD_LENS(16, 19)},                        /* Discover */
    {3528, 3589, 4, CARD_LENS(16, 19)},                    /* JCB */
    {300, 305, 3, CARD_LENS(14, 19)},                      /* Diners */
    {36, 36, 2, CARD_LENS(14, 19)},                        /* Diners */
    {38, 39, 2, CARD_LENS(14, 19)},                        /* Diners */
    {62, 62, 2, CARD_LENS(16, 19)},                        /* UnionPay */
    {50, 50, 2, CARD_LENS(12, 19)},                        /* Maestro */
    {56, 58, 2, CARD_LENS(12, 19)},                        /* Maestro */
    {6, 6, 1, CARD_LENS(12, 19)},                          /* Maestro */
};

static bool card_issuer_ok(const unsigned char *d, size_t nd)
{
    for (size_t i = 0; i < sizeof card_ranges / sizeof card_ranges[0]; i++) {
        const struct card_range *r = &card_ranges[i];
        unsigned v = 0;
        for (size_t k = 0; k < r->plen; k++)
            v = v * 10u + d[k];
        if (v >= r->lo && v <= r->hi && (r->lens & CARD_LEN(nd))) return true;
    }
    return false;
}

static bool luhn_ok(const unsigned char *d, size_t nd)
{
    unsigned sum = 0;
    for (size_t i = 0; i < nd; i++) {
        unsigned v = d[nd - 1 - i];
        if (i & 1u) {
            v *= 2u;
            if (v > 9u) v -= 9u;
        }
        sum += v;
    }
    return sum % 10u == 0;
}

#define CARD_MIN 12
#define CARD_MAX 19
#define CARD_GROUP_MIN                                                                             \
    3 /* groups of 4-4-4-4 or 4-6-5 digits; 1–2 digit groups are not card formatting */

bool validate_card(const char *s, size_t n)
{
    unsigned char d[CARD_MAX];
    size_t nd = 0, glen = 0;
    unsigned char sep = 0;
    bool same = true;

    if (s == NULL || n < CARD_MIN || n > 2 * CARD_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_digit(c)) {
            if (nd == CARD_MAX) return false;
            d[nd++] = (unsigned char)(c - '0');
            glen++;
            continue;
        }
        /* a single separator between groups, the same one throughout */
        if ((c != ' ' && c != '-') || glen < CARD_GROUP_MIN || i + 1 == n) return false;
        if (sep != 0 && c != sep) return false;
        sep = (unsigned char)c;
        glen = 0;
    }
    if (nd < CARD_MIN || (sep != 0 && glen < CARD_GROUP_MIN)) return false;
    for (size_t i = 1; i < nd; i++)
        if (d[i] != d[0]) same = false;
    return !same && luhn_ok(d, nd) && card_issuer_ok(d, nd);
}

/* ---- IBAN ------------------------------------------------------------------------ */

/* Country code → IBAN length, from the SWIFT IBAN registry (89 countries). */
static const struct iban_country {
    char cc[3];
    uint8_t len;
} iban_countries[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22},
    {"BH", 22}, {"BI", 27}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24},
    {"DE", 22}, {"DJ", 27}, {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18},
    {"FK", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27},
    {"GT", 28}, {"HN", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26},
    {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20},
    {"LU", 20}, {"LV", 21}, {"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MN", 20},
    {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NI", 28}, {"NL", 18}, {"NO", 15}, {"OM", 23}, {"PK", 24},
    {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"RU", 33}, {"SA", 24},
    {"SC", 31}, {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"SO", 23}, {"ST", 25},
    {"SV", 28}, {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20},
    {"YE", 30},
};

#define IBAN_MIN 15
#define IBAN_MAX 34

static size_t iban_length(char a, char b)
{
    for (size_t i = 0; i < sizeof iban_countries / sizeof iban_countries[0]; i++)
        if (iban_countries[i].cc[0] == a && iban_countries[i].cc[1] == b)
            return iban_countries[i].len;
    return 0;
}

bool validate_iban(const char *s, size_t n)
{
    char c[IBAN_MAX];
    size_t nc = 0, spaces = 0;
    unsigned rem = 0;

    if (s == NULL || n < IBAN_MIN || n > IBAN_MAX + IBAN_MAX / 4) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == ' ') {
            /* one space after each complete group of four, never at the end */
            if (nc == 0 || nc % 4 != 0 || i + 1 == n || s[i + 1] == ' ') return false;
            spaces++;
            continue;
        }
        if (is_lower(ch)) ch = (unsigned char)(ch - ('a' - 'A'));
        if (!is_digit(ch) && !is_upper(ch)) return false;
        if (nc == IBAN_MAX) return false;
        c[nc++] = (char)ch;
    }
    /* grouped either not at all or all the way through */
    if (spaces != 0 && spaces != (nc - 1) / 4) return false;
    if (!is_upper((unsigned char)c[0]) || !is_upper((unsigned char)c[1]) ||
        !is_digit((unsigned char)c[2]) || !is_digit((unsigned char)c[3]))
        return false;
    if (iban_length(c[0], c[1]) != nc) return false;
    /* ISO 13616: check digits are 02..98 (00, 01 and 99 alias 97, 98 and 02) */
    if ((c[2] == '0' && c[3] <= '1') || (c[2] == '9' && c[3] == '9')) return false;
    /* move the first four characters to the end; letters count as 10..35 */
    for (size_t k = 0; k < nc; k++) {
        unsigned char ch = (unsigned char)c[(k + 4) % nc];
        if (is_digit(ch))
            rem = (rem * 10u + (unsigned)(ch - '0')) % 97u;
        else
            rem = (rem * 100u + (unsigned)(ch - 'A' + 10)) % 97u;
    }
    return rem == 1u;
}

/* ---- US SSN ------------------------------------------------------------------------ */

static unsigned digits_value(const char *s, size_t n)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10u + (unsigned)(s[i] - '0');
    return v;
}

bool validate_us_ssn(const char *s, size_t n)
{
    char d[9];
    unsigned area, group, serial;

    if (s == NULL) return false;
    if (n == 11) {
        if (s[3] != '-' || s[6] != '-') return false;
        memcpy(d, s, 3);
        memcpy(d + 3, s + 4, 2);
        memcpy(d + 5, s + 7, 4);
    } else if (n == 9) {
        memcpy(d, s, 9);
    } else {
        return false;
    }
    for (size_t i = 0; i < sizeof d; i++)
        if (!is_digit((unsigned char)d[i])) return false;
    area = digits_value(d, 3);
    group = digits_value(d + 3, 2);
    serial = digits_value(d + 5, 4);
    if (area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0) return false;
    /* advertising numbers (Woolworth wallet card, Ross ad) and the stock
     * "123-45-6789" example, which the SSA says it never issues */
    if ((area == 78 && group == 5 && serial == 1120) ||
        (area == 219 && group == 9 && serial == 9999) ||
        (area == 123 && group == 45 && serial == 6789))
        return false;
    return true;
}

/* ---- JWT ------------------------------------------------------------------------------ */

#define JWT_HDR_MAX 4096 /* decoded header bytes we are willing to look at */

static int b64url_value(unsigned char c)
{
    if (is_upper(c)) return c - 'A';
    if (is_lower(c)) return c - 'a' + 26;
    if (is_digit(c)) return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

/* Unpadded base64url: alphabet only, and no dangling single character. */
static bool b64url_ok(const char *s, size_t n)
{
    if (n == 0 || n % 4 == 1) return false;
    for (size_t i = 0; i < n; i++)
        if (b64url_value((unsigned char)s[i]) < 0) return false;
    return true;
}

/* Decode one quantum of m (2..4) valid characters into m - 1 bytes. */
static size_t b64url_quantum(const char *s, size_t m, unsigned char out[3])
{
    uint32_t v = 0;
    for (size_t i = 0; i < 4; i++)
        v = (v << 6) | (uint32_t)(i < m ? b64url_value((unsigned char)s[i]) : 0);
    out[0] = (unsigned char)(v >> 16);
    out[1] = (unsigned char)(v >> 8);
    out[2] = (unsigned char)v;
    return m - 1;
}

static bool json_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Minimal "is a JSON object" check over a byte range: trimmed, it starts with
 * '{' and ends with '}'. */
static bool json_object_shape(const unsigned char *p, size_t n)
{
    while (n > 0 && json_ws(p[0])) {
        p++;
        n--;
    }
    while (n > 0 && json_ws(p[n - 1]))
        n--;
    return n >= 2 && p[0] == '{' && p[n - 1] == '}';
}

/* The same check streamed over a base64url segment of any length, so the
 * payload is never buffered. */
static bool b64url_object_shape(const char *s, size_t n)
{
    unsigned char first = 0, last = 0, q[3];
    size_t count = 0;

    for (size_t i = 0; i < n; i += 4) {
        size_t k = b64url_quantum(s + i, n - i < 4 ? n - i : 4, q);
        for (size_t j = 0; j < k; j++) {
            if (json_ws(q[j])) continue;
            if (count++ == 0) first = q[j];
            last = q[j];
        }
    }
    return count >= 2 && first == '{' && last == '}';
}

/* Offset just past `"key"` + optional whitespace + ':' + optional whitespace
 * for the first such member in p[0..n), or 0 if there is none. */
static size_t json_member(const unsigned char *p, size_t n, const char *quoted_key)
{
    size_t kl = strlen(quoted_key);
    for (size_t i = 0; i + kl <= n; i++) {
        size_t j = i + kl;
        if (memcmp(p + i, quoted_key, kl) != 0) continue;
        while (j < n && json_ws(p[j]))
            j++;
        if (j == n || p[j] != ':') continue;
        j++;
        while (j < n && json_ws(p[j]))
            j++;
        return j;
    }
    return 0;
}

bool validate_jwt(const char *s, size_t n)
{
    unsigned char hdr[JWT_HDR_MAX];
    const char *dot1, *dot2;
    size_t hlen, plen, slen, hn = 0, at;

    if (s == NULL || n < 5) return false;
    dot1 = memchr(s, '.', n);
    if (dot1 == NULL) return false;
    hlen = (size_t)(dot1 - s);
    dot2 = memchr(dot1 + 1, '.', n - hlen - 1);
    if (dot2 == NULL) return false;
    plen = (size_t)(dot2 - dot1 - 1);
    slen = n - hlen - plen - 2;
    /* a token without a signature (alg "none") carries no secret: not accepted */
    if (!b64url_ok(s, hlen) || !b64url_ok(dot1 + 1, plen) || !b64url_ok(dot2 + 1, slen))
        return false;
    if (hlen / 4 * 3 + 3 > sizeof hdr) return false; /* each quantum stores 3 bytes */
    for (size_t i = 0; i < hlen; i += 4)
        hn += b64url_quantum(s + i, hlen - i < 4 ? hlen - i : 4, hdr + hn);
    if (!json_object_shape(hdr, hn) || json_member(hdr, hn, "\"alg\"") == 0) return false;
    at = json_member(hdr, hn, "\"typ\"");
    if (at != 0) {
        /* "typ" when present names a JWT/JOSE media type: JWT, at+jwt, JOSE+JSON... */
        size_t end = at + 1;
        const char *v = (const char *)hdr;
        if (at >= hn || hdr[at] != '"') return false;
        while (end < hn && hdr[end] != '"')
            end++;
        if (end == hn) return false;
        if (ci_find(v, end, at + 1, "jwt") == end && ci_find(v, end, at + 1, "jose") == end)
            return false;
    }
    return b64url_object_shape(dot1 + 1, plen);
}

/* ---- phone numbers ----------------------------------------------------------------- */

#define PHONE_MIN_DIGITS 7
#define PHONE_MAX_DIGITS 15
#define PHONE_MAX_LEN 32
#define PHONE_MAX_GROUPS 8

/*
 * Accepted shapes: "+" followed by digits and optional formatting (E.164 and
 * international notation), or national notation with formatting: a
 * parenthesised area code and/or groups split by single spaces, dashes or
 * dots.  A bare run of digits without '+' is NOT a phone number here: it is
 * far more often an id, a counter or a timestamp in code and logs.  Dates
 * (2024-01-15, 15.01.2024), versions and decimals (1.2.3, 3.14159),
 * dotted quads (IP addresses) and 1-then-3-3 thousands groupings are rejected.
 */
bool validate_phone(const char *s, size_t n)
{
    size_t glen[PHONE_MAX_GROUPS];
    size_t groups = 0, digits = 0, i = 0;
    bool plus = false, paren = false, inparen = false, dots = false, other_sep = false;
    bool same = true, in_group = false;

    if (s == NULL || n < PHONE_MIN_DIGITS || n > PHONE_MAX_LEN) return false;
    if (s[0] == '+') {
        plus = true;
        i = 1; /* a country code never starts with 0 */
        if (!is_digit((unsigned char)s[1]) || s[1] == '0') return false;
    }
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        unsigned char prev = i > 0 ? (unsigned char)s[i - 1] : 0;
        unsigned char next = i + 1 < n ? (unsigned char)s[i + 1] : 0;
        if (is_digit(c)) {
            if (!in_group) {
                if (groups == PHONE_MAX_GROUPS) return false;
                glen[groups++] = 0;
                in_group = true;
            }
            glen[groups - 1]++;
            if (++digits > PHONE_MAX_DIGITS) return false;
            if (c != (unsigned char)s[n - 1]) same = false;
            continue;
        }
        in_group = false;
        switch (c) {
        case '(':
            if (paren || inparen || !is_digit(next)) return false;
            if (prev != 0 && prev != ' ' && !is_digit(prev)) return false;
            inparen = true;
            break;
        case ')':
            if (!inparen || !is_digit(prev) || glen[groups - 1] > 5) return false;
            if (!is_digit(next) && next != ' ' && next != '-') return false;
            inparen = false;
            paren = true;
            break;
        case ' ':
        case '-':
        case '.':
            if (inparen || (!is_digit(prev) && prev != ')')) return false;
            if (!is_digit(next) && !(c == ' ' && next == '(')) return false;
            if (prev == ')' && c == '.') return false;
            if (c == '.')
                dots = true;
            else
                other_sep = true;
            break;
        default:
            return false;
        }
    }
    if (inparen || !is_digit((unsigned char)s[n - 1])) return false;
    if (digits < PHONE_MIN_DIGITS || same) return false;
    if (plus) return true;
    if (groups < 2) return false; /* bare run of digits */
    if (paren) return true;
    /* date-like: YYYY-MM-DD, DD.MM.YYYY, YYYY MM DD ... */
    if (groups == 3 && ((glen[0] == 4 && glen[1] == 2 && glen[2] == 2) ||
                        (glen[0] == 2 && glen[1] == 2 && glen[2] == 4)))
        return false;
    if (dots && !other_sep) {
        bool has_single = false, short_only = true;
        for (size_t g = 0; g < groups; g++) {
            if (glen[g] == 1) has_single = true;
            if (glen[g] > 3) short_only = false;
        }
        if (groups == 2 || has_single) return false; /* decimal or version */
        if (groups == 4 && short_only) return false; /* dotted quad */
    }
    /* 1 234 567 / 1.234.567: a number with thousands separators */
    if (glen[0] == 1) {
        bool thousands = true;
        for (size_t g = 1; g < groups; g++)
            if (glen[g] != 3) thousands = false;
        if (thousands) return false;
    }
    return true;
}

/* ---- AWS ------------------------------------------------------------------------------- */

bool validate_aws_key_id(const char *s, size_t n)
{
    if (s == NULL || n != 20) return false;
    if (!starts_with(s, n, "AKIA") && !starts_with(s, n, "ASIA") && !starts_with(s, n, "ABIA") &&
        !starts_with(s, n, "ACCA"))
        return false;
    for (size_t i = 4; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!is_upper(c) && !(c >= '2' && c <= '7')) return false;
    }
    return true;
}

/* ---- base64-encoded credentials ------------------------------------------------------- */

#define B64_DECODED_MAX 3072 /* decoded bytes we are willing to look at */

static int b64std_value(unsigned char c)
{
    if (c == '+') return 62;
    if (c == '/') return 63;
    if (c == '-' || c == '_') return -1;
    return b64url_value(c);
}

/* Standard base64 (optional '=' padding, or none) into out[B64_DECODED_MAX];
 * returns the decoded length, or (size_t)-1 when s is not base64 or too long. */
static size_t b64std_decode(const char *s, size_t n, unsigned char *out)
{
    size_t o = 0, m = n;
    uint32_t v = 0;
    unsigned bits = 0;

    while (m > 0 && s[m - 1] == '=')
        m--;
    if (m == 0 || n - m > 2 || m % 4 == 1 || (n != m && n % 4 != 0)) return (size_t)-1;
    if (m / 4 * 3 + 2 > B64_DECODED_MAX) return (size_t)-1;
    for (size_t i = 0; i < m; i++) {
        int d = b64std_value((unsigned char)s[i]);
        if (d < 0) return (size_t)-1;
        v = (v << 6) | (uint32_t)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(v >> bits);
        }
    }
    return o;
}

static bool printable_ascii(const unsigned char *p, size_t n, bool allow_space)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == ' ' ? !allow_space : (p[i] < 0x21 || p[i] > 0x7e)) return false;
    }
    return true;
}

/* Passwords that are public knowledge: defaults and the words the docs use. */
static const char *const weak_passwords[] = {
    "pass", "password", "passwd", "pwd",   "admin",    "root",   "guest",   "test",
    "user", "secret",   "123456", "12345", "1234",     "qwerty", "letmein", "changeme",
    "sa",   "postgres", "mysql",  "redis", "rabbitmq", "mongo",  "example", "default",
};

static bool weak_password(const char *p, size_t n)
{
    if (n < 4) return true;
    for (size_t i = 0; i < sizeof weak_passwords / sizeof weak_passwords[0]; i++)
        if (ci_equals(p, n, weak_passwords[i])) return true;
    return validate_is_placeholder(p, n);
}

bool validate_basic_auth(const char *s, size_t n)
{
    unsigned char d[B64_DECODED_MAX];
    size_t m, colon;
    const char *user, *pass;

    if (s == NULL || n == 0) return false;
    m = b64std_decode(s, n, d);
    if (m == (size_t)-1 || m < 5 || m > 512 || !printable_ascii(d, m, false)) return false;
    for (colon = 0; colon < m && d[colon] != ':'; colon++)
        ;
    if (colon == m || colon > 128) return false;
    user = (const char *)d;
    pass = (const char *)d + colon + 1;
    if (colon + 1 == m) /* "apikey:" — the key is the user name */
        return colon >= 8 && !weak_password(user, colon);
    if (weak_password(pass, m - colon - 1)) return false;
    if (colon == m - colon - 1 && memcmp(user, pass, colon) == 0) return false; /* admin:admin */
    return true;
}

/* A "-----BEGIN ..." block is a secret only when it is a private key. */
static bool pem_private(const unsigned char *d, size_t m)
{
    const char *s = (const char *)d;
    return starts_with(s, m, "-----BEGIN ") && ci_find(s, m, 0, "private key-----") < m;
}

bool validate_b64_secret(const char *s, size_t n)
{
    unsigned char d[B64_DECODED_MAX];
    size_t m;
    bool words = true;

    if (s == NULL || n == 0) return false;
    m = b64std_decode(s, n, d);
    if (m == (size_t)-1) return false;
    while (m > 0 && (d[m - 1] == '\n' || d[m - 1] == '\r'))
        m--; /* echo secret | base64 */
    if (m < 8) return false;
    if (starts_with((const char *)d, m, "-----BEGIN ")) return pem_private(d, m);
    if (!printable_ascii(d, m, false)) return false;
    for (size_t i = 0; i < m; i++)
        if (!is_alpha(d[i]) && !((d[i] == '_' || d[i] == '-' || d[i] == '.') && i > 0))
            words = false;
    if (words) return false; /* an identifier or word list, not a secret */
    if (validate_is_placeholder((const char *)d, m)) return false;
    return validate_entropy((const char *)d, m) >= 3.0;
}

bool validate_b64_uri_credential(const char *s, size_t n)
{
    unsigned char d[B64_DECODED_MAX];
    size_t m, sep, end, at = (size_t)-1, colon = (size_t)-1;
    const char *t = (const char *)d;

    if (s == NULL || n == 0) return false;
    m = b64std_decode(s, n, d);
    if (m == (size_t)-1 || m < 12 || !printable_ascii(d, m, false)) return false;
    sep = ci_find(t, m, 0, "://");
    if (sep >= m || sep == 0) return false;
    for (size_t i = 0; i < sep; i++)
        if (!is_alnum(d[i]) && d[i] != '+' && d[i] != '.' && d[i] != '-') return false;
    for (end = sep + 3; end < m && d[end] != '/' && d[end] != '?' && d[end] != '#'; end++)
        if (d[end] == '@') at = end;
    if (at == (size_t)-1 || at + 1 == end) return false;
    for (size_t i = sep + 3; i < at; i++)
        if (d[i] == ':') {
            colon = i;
            break;
        }
    if (colon == (size_t)-1) return false;
    return !weak_password(t + colon + 1, at - colon - 1);
}

/* ---- entropy ----------------------------------------------------------------------------- */

double validate_entropy(const char *s, size_t n)
{
    size_t count[256] = {0};
    double h = 0.0, dn = (double)n;

    if (s == NULL || n == 0) return 0.0;
    for (size_t i = 0; i < n; i++)
        count[(unsigned char)s[i]]++;
    for (size_t k = 0; k < 256; k++) {
        if (count[k] == 0) continue;
        double p = (double)count[k] / dn;
        h -= p * log2(p);
    }
    /* clamp rounding noise: -0.0 for one symbol, 8 + epsilon for 256 */
    if (!(h > 0.0)) return 0.0;
    return h > 8.0 ? 8.0 : h;
}

/* ---- placeholders ----------------------------------------------------------------------- */

/* Published documentation values, matched anywhere (case-sensitive). */
static const char *const doc_examples[] = {
    "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AKIAI44QH8DHBEXAMPLE",
    "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", /* signature of the jwt.io sample token */
};

/* Words that mark a value as a stand-in wherever they occur (case-insensitive).
 * All are long enough (or contain a character outside base62) that a random
 * token essentially never contains one by chance. */
static const char *const noise_words[] = {
    "example",    "sample",     "changeme",   "redacted", "placeholder", "notreal",
    "not_a_real", "not-a-real", "notasecret", "yourkey",  "yourtoken",   "yoursecret",
};

/* Short words that count only as a whole word: at the start or after a
 * non-alphanumeric character, and followed by the end, a non-alphanumeric
 * character or a camelCase capital ("dummy_key", "sk-fake-1", "yourApiKey",
 * "YOUR_API_KEY", "token-here"), never in the middle of a random token. */
static const char *const noise_whole_words[] = {"dummy", "fake",   "your", "todo",
                                                "fixme", "insert", "here"};

static bool word_at(const char *s, size_t n, size_t at, const char *lower_word)
{
    size_t m = strlen(lower_word);
    bool lower = true;
    unsigned char next;

    if (at > 0 && is_alnum((unsigned char)s[at - 1])) return false;
    if (!ci_at(s, n, at, lower_word)) return false;
    if (at + m == n) return true;
    next = (unsigned char)s[at + m];
    for (size_t i = 0; i < m; i++)
        lower = lower && is_lower((unsigned char)s[at + i]);
    return !is_alnum(next) || (lower && is_upper(next));
}

/* Whole values that are placeholders (case-insensitive). */
static const char *const noise_values[] = {
    "todo",   "tbd",     "fixme",  "none",    "null",    "nil",      "undefined", "empty",
    "secret", "token",   "apikey", "api_key", "api-key", "password", "passwd",    "changeit",
    "test",   "testing", "foo",    "bar",     "foobar",  "string",   "value",     "key",
};

/* Stripe-style test-mode keys. */
static const char *const test_key_prefixes[] = {"sk_test_", "pk_test_", "rk_test_"};

static bool is_ident_char(unsigned char c)
{
    return is_alnum(c) || c == '_';
}

/* [A-Z_][A-Z0-9_]* or [a-z_][a-z0-9_]*: one case throughout, like env/shell variables. */
static bool is_var_name(const char *s, size_t n)
{
    bool upper = false, lower = false;
    if (n == 0 || is_digit((unsigned char)s[0])) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!is_ident_char(c)) return false;
        upper |= is_upper(c);
        lower |= is_lower(c);
    }
    return !(upper && lower);
}

/* Template and masking shapes: <token>, [TOKEN], {{ var }}, ${VAR}, $VAR,
 * %VAR%, "...", "…", "****". */
static bool template_shape(const char *s, size_t n)
{
    size_t open;

    if (n >= 3 && s[0] == '<' && s[n - 1] == '>') return true;
    if (n >= 3 && s[0] == '[' && s[n - 1] == ']') {
        bool words = true;
        for (size_t i = 1; i + 1 < n; i++) {
            unsigned char c = (unsigned char)s[i];
            if (!is_alpha(c) && c != '_' && c != '-' && c != ' ') words = false;
        }
        if (words) return true;
    }
    open = ci_find(s, n, 0, "{{");
    if (open < n && ci_find(s, n, open + 2, "}}") < n) return true;
    open = ci_find(s, n, 0, "${");
    if (open < n && memchr(s + open, '}', n - open) != NULL) return true;
    if (n >= 2 && s[0] == '$' && is_var_name(s + 1, n - 1)) return true;
    if (n >= 3 && s[0] == '%' && s[n - 1] == '%' && is_var_name(s + 1, n - 2)) return true;
    if (ci_find(s, n, 0, "...") < n || ci_find(s, n, 0, "\xe2\x80\xa6") < n) return true;
    if (ci_find(s, n, 0, "****") < n) return true;
    return false;
}

/* +1 for an ascending step (with 9→0, 9→a, 9→A as in 7890 and 89ab), -1 for
 * a descending one, 0 otherwise. */
static int seq_step(unsigned char a, unsigned char b)
{
    if (!is_alnum(a) || !is_alnum(b)) return 0;
    if (b == a + 1 || (a == '9' && (b == '0' || b == 'a' || b == 'A'))) return 1;
    if (a == b + 1) return -1;
    return 0;
}

/* True when s carries almost no information: one character repeated; or
 * runs of >= 4 of one character ("xxxx") or of >= 4 consecutive characters
 * ("0123", "abcd", "89ab", "4321") cover at least half of s; or s is a
 * period-2..4 repetition ("abababab", "12341234").  Short runs in a random
 * token are common and never enough on their own. */
static bool low_information(const char *s, size_t n)
{
    size_t covered = 0, i = 0;

    if (n == 0) return true;
    while (i < n) {
        size_t same = 1, seq = 1;
        int dir = i + 1 < n ? seq_step((unsigned char)s[i], (unsigned char)s[i + 1]) : 0;
        while (i + same < n && s[i + same] == s[i])
            same++;
        if (same == n) return true;
        while (dir != 0 && i + seq < n &&
               seq_step((unsigned char)s[i + seq - 1], (unsigned char)s[i + seq]) == dir)
            seq++;
        if (same >= 4 || seq >= 4) {
            size_t run = same > seq ? same : seq;
            covered += run;
            i += run;
        } else {
            i++;
        }
    }
    if (covered * 2 >= n) return true;
    for (size_t p = 2; p <= 4 && n >= 2 * p + 4; p++) {
        size_t k = p;
        while (k < n && s[k] == s[k - p])
            k++;
        if (k == n) return true;
    }
    return false;
}

/* Start of the part after the last '_', '-', '.' or ':' (a vendor prefix is
 * not part of the random body). */
static size_t body_start(const char *s, size_t n)
{
    size_t b = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '_' || s[i] == '-' || s[i] == '.' || s[i] == ':') b = i + 1;
    return b;
}

bool validate_is_placeholder(const char *s, size_t n)
{
    size_t b;

    if (s == NULL || n == 0) return true;
    /* look through surrounding quotes and blanks */
    while (n > 0 && (s[0] == ' ' || s[0] == '\t' || s[0] == '"' || s[0] == '\'' || s[0] == '`')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '"' || s[n - 1] == '\'' ||
                     s[n - 1] == '`'))
        n--;
    if (n == 0) return true;

    for (size_t i = 0; i < sizeof doc_examples / sizeof doc_examples[0]; i++) {
        size_t m = strlen(doc_examples[i]);
        for (size_t j = 0; j + m <= n; j++)
            if (memcmp(s + j, doc_examples[i], m) == 0) return true;
    }
    for (size_t i = 0; i < sizeof test_key_prefixes / sizeof test_key_prefixes[0]; i++)
        if (starts_with(s, n, test_key_prefixes[i])) return true;
    for (size_t i = 0; i < sizeof noise_values / sizeof noise_values[0]; i++)
        if (ci_equals(s, n, noise_values[i])) return true;
    for (size_t i = 0; i < sizeof noise_words / sizeof noise_words[0]; i++)
        if (ci_find(s, n, 0, noise_words[i]) < n) return true;
    for (size_t j = 0; j < n; j++)
        for (size_t i = 0; i < sizeof noise_whole_words / sizeof noise_whole_words[0]; i++)
            if (word_at(s, n, j, noise_whole_words[i])) return true;
    if (template_shape(s, n)) return true;
    if (low_information(s, n)) return true;
    b = body_start(s, n);
    if (b > 0 && n - b >= 8 && low_information(s + b, n - b)) return true;
    return false;
}

/* ---- hashes, UUIDs, integrity strings ---------------------------------------------------- */

static bool is_hex_lower(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f');
}

static bool is_hex_upper(unsigned char c)
{
    return is_digit(c) || (c >= 'A' && c <= 'F');
}

static bool is_hex(unsigned char c)
{
    return is_hex_lower(c) || is_hex_upper(c);
}

/* Hex in one case throughout (digests are printed lower- or upper-case,
 * never mixed). */
static bool hex_one_case(const char *s, size_t n)
{
    bool lo = true, up = true;
    for (size_t i = 0; i < n; i++) {
        lo = lo && is_hex_lower((unsigned char)s[i]);
        up = up && is_hex_upper((unsigned char)s[i]);
    }
    return lo || up;
}

static bool is_digest_hex(const char *s, size_t n)
{
    return (n == 32 || n == 40 || n == 64 || n == 128) && hex_one_case(s, n);
}

/* 8-4-4-4-12 hex, optionally in braces or after "urn:uuid:". */
static bool is_uuid(const char *s, size_t n)
{
    if (n == 38 && s[0] == '{' && s[37] == '}') {
        s++;
        n -= 2;
    } else if (n == 45 && ci_at(s, n, 0, "urn:uuid:")) {
        s += 9;
        n -= 9;
    }
    if (n != 36) return false;
    for (size_t i = 0; i < n; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !is_hex((unsigned char)s[i])) return false;
    }
    return true;
}

/* Standard padded base64 of exactly `bytes` bytes. */
static bool is_b64_of(const char *s, size_t n, size_t bytes)
{
    size_t want = (bytes + 2) / 3 * 4, pad = (3 - bytes % 3) % 3;
    if (n != want) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i >= n - pad) {
            if (c != '=') return false;
        } else if (!is_alnum(c) && c != '+' && c != '/') {
            return false;
        }
    }
    return true;
}

static const struct digest_prefix {
    const char *prefix;
    size_t bytes;
    bool hex; /* hex digest ("sha256:…", OCI) or base64 (SRI "sha512-…", go.sum "h1:…") */
} digest_prefixes[] = {
    {"sha1-", 20, false},   {"sha256-", 32, false}, {"sha384-", 48, false},
    {"sha512-", 64, false}, {"h1:", 32, false},     {"md5:", 16, true},
    {"sha1:", 20, true},    {"sha256:", 32, true},  {"sha512:", 64, true},
};

bool validate_is_hash_or_uuid(const char *s, size_t n)
{
    if (s == NULL || n == 0) return false;
    if (is_digest_hex(s, n) || is_uuid(s, n)) return true;
    for (size_t i = 0; i < sizeof digest_prefixes / sizeof digest_prefixes[0]; i++) {
        const struct digest_prefix *d = &digest_prefixes[i];
        size_t m = strlen(d->prefix);
        if (!starts_with(s, n, d->prefix)) continue;
        if (d->hex ? (n - m == 2 * d->bytes && hex_one_case(s + m, n - m))
                   : is_b64_of(s + m, n - m, d->bytes))
            return true;
    }
    return false;
}

/* ---- lookup ---------------------------------------------------------------------------------- */

static const struct validator_name {
    const char *name;
    validate_fn fn;
} validator_names[] = {
    {"github", validate_github_token},
    {"card", validate_card},
    {"iban", validate_iban},
    {"us_ssn", validate_us_ssn},
    {"jwt", validate_jwt},
    {"phone", validate_phone},
    {"aws_key_id", validate_aws_key_id},
    {"basic_auth", validate_basic_auth},
    {"b64_secret", validate_b64_secret},
    {"b64_uri_credential", validate_b64_uri_credential},
};

validate_fn validate_lookup(const char *name)
{
    if (name == NULL) return NULL;
    for (size_t i = 0; i < sizeof validator_names / sizeof validator_names[0]; i++)
        if (strcmp(validator_names[i].name, name) == 0) return validator_names[i].fn;
    return NULL;
}
