/*
 * domain — host name normalisation (IDNA to A-labels, RFC 3492 punycode) and
 * the Squid `dstdomain` pattern set (see domain.h for the semantics).
 *
 * Normalisation
 *   Input is a byte string (not NUL-terminated).  Labels are split on '.' and
 *   on the IDNA full stops U+3002, U+FF0E, U+FF61 (RFC 3490 3.1); one trailing
 *   dot is dropped.  ASCII is lower-cased and must be [a-z0-9-_].  A label with
 *   non-ASCII code points is lower-cased (ASCII, Latin-1 Supplement, Latin
 *   Extended-A; U+0130 becomes "i" U+0307 as in UTS #46), checked, and encoded
 *   as "xn--" + punycode.  An "xn--" label is decoded, must hold a non-ASCII
 *   code point, pass the same checks, be in lower-cased form and re-encode to
 *   exactly itself, so normalisation is idempotent and a name has one spelling.
 *   Not done (documented limitation): full UTS #46 mapping, NFC, the IDNA2008
 *   code point tables, bidi and CONTEXTJ/CONTEXTO rules.  Instead a fixed list
 *   of invisible, space, control, bidi-control, full-width-ASCII and
 *   non-character code points is refused (that includes ZWJ/ZWNJ).  Names that
 *   a browser would map differently (decomposed "u" + U+0308, full-width
 *   letters) therefore get a different A-label or an error, never a different
 *   verdict for the same A-label: policy matches exactly the name that is then
 *   resolved.
 *
 * Pattern set
 *   Open addressing with linear probing; capacity a power of two, load <= 1/2
 *   (so a probe always reaches an empty slot).  A key is (kind, name) where
 *   kind is EXACT ("a.b"), SUFFIX (".a.b") or WILD ("*.a.b") and name is the
 *   normalised domain without the prefix.  Hashes are FNV-1a over the name
 *   read right to left, so the hashes of every label suffix of a host come out
 *   of one pass; a lookup then costs at most two probes per label, with no
 *   allocation and no writes: the set is immutable once built and may be read
 *   from any number of threads.  domain_set_add must not run concurrently with
 *   anything else on the same set (build, then publish).
 *
 * Memory: a domain_set_t owns its slot array and one pool holding copies of
 * the normalised names (slots refer to names by offset, so the pool may move
 * while the set is built).  domain_set_free releases all of it.  The
 * normalisation and punycode functions only write to caller buffers.
 *
 * Return convention: counts/lengths/ids >= 0, -1 on error, with a message in
 * err when the function takes one.  No input ever aborts the process.
 */
#include "policy/domain.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LABEL_MAX 63
#define ACE_PREFIX "xn--"
#define ACE_LEN 4

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- punycode (RFC 3492 section 5 parameters, section 6 algorithms) -------------------- */

enum {
    PY_BASE = 36,
    PY_TMIN = 1,
    PY_TMAX = 26,
    PY_SKEW = 38,
    PY_DAMP = 700,
    PY_INITIAL_BIAS = 72,
    PY_INITIAL_N = 0x80,
};

#define UNICODE_MAX 0x10FFFFu

static uint32_t py_adapt(uint32_t delta, uint32_t numpoints, bool first)
{
    delta = first ? delta / PY_DAMP : delta / 2;
    delta += delta / numpoints;
    uint32_t k = 0;
    while (delta > ((PY_BASE - PY_TMIN) * PY_TMAX) / 2) {
        delta /= PY_BASE - PY_TMIN;
        k += PY_BASE;
    }
    return k + ((PY_BASE - PY_TMIN + 1) * delta) / (delta + PY_SKEW);
}

static uint32_t py_threshold(uint32_t k, uint32_t bias)
{
    if (k <= bias) return PY_TMIN;
    if (k >= bias + PY_TMAX) return PY_TMAX;
    return k - bias;
}

static char py_digit(uint32_t d)
{
    return (char)(d < 26 ? 'a' + d : '0' + (d - 26));
}

/* Digit value of c, or PY_BASE when c is not a digit. */
static uint32_t py_value(unsigned char c)
{
    if (c >= '0' && c <= '9') return (uint32_t)(c - '0') + 26;
    if (c >= 'a' && c <= 'z') return (uint32_t)(c - 'a');
    if (c >= 'A' && c <= 'Z') return (uint32_t)(c - 'A');
    return PY_BASE;
}

int domain_punycode_encode(const uint32_t *cp, size_t n, char *out, size_t outlen)
{
    if (!out || outlen == 0 || (n > 0 && !cp) || n >= UINT32_MAX) return -1;
    size_t o = 0;
    for (size_t j = 0; j < n; j++) {
        if (cp[j] > UNICODE_MAX) return -1;
        if (cp[j] < PY_INITIAL_N) {
            if (o + 1 >= outlen) return -1;
            out[o++] = (char)cp[j];
        }
    }
    const size_t b = o;
    size_t h = b;
    if (b > 0) {
        if (o + 1 >= outlen) return -1;
        out[o++] = '-';
    }
    uint32_t next = PY_INITIAL_N, delta = 0, bias = PY_INITIAL_BIAS;
    while (h < n) {
        uint32_t m = UINT32_MAX;
        for (size_t j = 0; j < n; j++)
            if (cp[j] >= next && cp[j] < m) m = cp[j];
        const uint32_t h1 = (uint32_t)h + 1;
        if (m - next > (UINT32_MAX - delta) / h1) return -1;
        delta += (m - next) * h1;
        next = m;
        for (size_t j = 0; j < n; j++) {
            if (cp[j] < next && ++delta == 0) return -1;
            if (cp[j] != next) continue;
            uint32_t q = delta;
            for (uint32_t k = PY_BASE;; k += PY_BASE) {
                const uint32_t t = py_threshold(k, bias);
                if (q < t) break;
                if (o + 1 >= outlen) return -1;
                out[o++] = py_digit(t + (q - t) % (PY_BASE - t));
                q = (q - t) / (PY_BASE - t);
            }
            if (o + 1 >= outlen) return -1;
            out[o++] = py_digit(q);
            bias = py_adapt(delta, (uint32_t)h + 1, h == b);
            delta = 0;
            h++;
        }
        if (++delta == 0) return -1;
        next++;
    }
    if (o > INT_MAX) return -1;
    out[o] = '\0';
    return (int)o;
}

int domain_punycode_decode(const char *in, size_t len, uint32_t *cp, size_t cpmax)
{
    if ((len > 0 && !in) || (cpmax > 0 && !cp)) return -1;
    if (cpmax > INT_MAX) cpmax = INT_MAX;
    size_t b = 0;
    for (size_t j = 0; j < len; j++)
        if (in[j] == '-') b = j;
    size_t out = 0;
    for (size_t j = 0; j < b; j++) {
        const unsigned char c = (unsigned char)in[j];
        if (c >= PY_INITIAL_N || out >= cpmax) return -1;
        cp[out++] = c;
    }
    size_t pos = b > 0 ? b + 1 : 0;
    uint32_t next = PY_INITIAL_N, i = 0, bias = PY_INITIAL_BIAS;
    while (pos < len) {
        const uint32_t oldi = i;
        uint32_t w = 1;
        for (uint32_t k = PY_BASE;; k += PY_BASE) {
            if (pos >= len) return -1;
            const uint32_t d = py_value((unsigned char)in[pos++]);
            if (d >= PY_BASE) return -1;
            if (d > (UINT32_MAX - i) / w) return -1;
            i += d * w;
            const uint32_t t = py_threshold(k, bias);
            if (d < t) break;
            if (w > UINT32_MAX / (PY_BASE - t)) return -1;
            w *= PY_BASE - t;
        }
        if (out >= cpmax) return -1;
        const uint32_t o1 = (uint32_t)out + 1;
        bias = py_adapt(i - oldi, o1, oldi == 0);
        if (i / o1 > UINT32_MAX - next) return -1;
        next += i / o1;
        i %= o1;
        if (next < PY_INITIAL_N || next > UNICODE_MAX) return -1;
        memmove(cp + i + 1, cp + i, (out - i) * sizeof *cp);
        cp[i++] = next;
        out++;
    }
    return (int)out;
}

/* ---- code points ------------------------------------------------------------------------ */

/* One UTF-8 sequence at p[0..len) (len >= 1): its length, or 0 when it is
 * malformed (stray continuation, truncated, overlong, surrogate, > U+10FFFF). */
static size_t utf8_decode(const unsigned char *p, size_t len, uint32_t *cp)
{
    const unsigned char c = p[0];
    size_t n;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2, v = c & 0x1Fu, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3, v = c & 0x0Fu, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4, v = c & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (len < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (p[i] & 0x3Fu);
    }
    if (v < min || v > UNICODE_MAX || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return n;
}

/* Label separators: '.' and the IDNA full stops of RFC 3490 section 3.1. */
static bool cp_is_dot(uint32_t c)
{
    return c == '.' || c == 0x3002 || c == 0xFF0E || c == 0xFF61;
}

/* Lower-case c (ASCII, Latin-1 Supplement, Latin Extended-A) into out[];
 * returns 1 or 2 (U+0130 -> "i" U+0307, as UTS #46 maps it).  Any other code
 * point is returned unchanged. */
static size_t cp_fold(uint32_t c, uint32_t out[2])
{
    if ((c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7)) {
        c += 0x20; /* ASCII and Latin-1 upper-case letters */
    } else if (c == 0x130) {
        out[0] = 'i';
        out[1] = 0x307;
        return 2;
    } else if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) {
        c |= 1; /* even = upper, odd = lower (U+0131 dotless i is odd) */
    } else if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) {
        c += c & 1; /* odd = upper, even = lower */
    } else if (c == 0x178) {
        c = 0xFF;
    }
    out[0] = c;
    return 1;
}

/* Non-ASCII code points never accepted in a label: C1 controls and NBSP,
 * spaces, invisible and bidi format characters (soft hyphen, CGJ, fillers,
 * ZWSP/ZWNJ/ZWJ/LRM/RLM, embeddings, isolates, variation selectors, BOM, tags),
 * the ideographic full stops (separators, never part of a label), full-width
 * ASCII, specials, surrogates and non-characters. */
static bool cp_forbidden(uint32_t c)
{
    return c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0xA0) || c == 0xAD || c == 0x34F ||
           c == 0x115F || c == 0x1160 || c == 0x1680 || c == 0x180E ||
           (c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) ||
           (c >= 0x205F && c <= 0x206F) || c == 0x3000 || c == 0x3002 || c == 0x3164 ||
           (c >= 0xD800 && c <= 0xDFFF) || (c >= 0xFDD0 && c <= 0xFDEF) ||
           (c >= 0xFE00 && c <= 0xFE0F) || c == 0xFEFF || (c >= 0xFF01 && c <= 0xFF5E) ||
           c == 0xFF61 || c == 0xFFA0 || (c >= 0xFFF0 && c <= 0xFFFF) || (c & 0xFFFEu) == 0xFFFEu ||
           (c >= 0xE0000 && c <= 0xE0FFF) || c > UNICODE_MAX;
}

/* Letters, digits, '-' and '_' (after lower-casing). */
static bool ascii_ok(uint32_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static void ascii_reason(unsigned char c, char *err, size_t errlen)
{
    if (c < 0x20 || c == 0x7F)
        seterr(err, errlen, "control byte 0x%02x in host name", c);
    else if (c == ' ')
        seterr(err, errlen, "space in host name");
    else if (c == '%')
        seterr(err, errlen, "'%%' in host name (percent-encoding is not decoded)");
    else if (c == '@')
        seterr(err, errlen, "'@' in host name (user info is not allowed)");
    else if (c == ':')
        seterr(err, errlen, "':' in host name (port or IPv6 literal?)");
    else if (c == '/' || c == '\\')
        seterr(err, errlen, "'%c' in host name (path separator)", c);
    else if (c == '*')
        seterr(err, errlen, "'*' in host name (wildcards only as a leading \"*.\" of a pattern)");
    else
        seterr(err, errlen, "invalid character '%c' in host name", c);
}

/* ---- labels ----------------------------------------------------------------------------- */

typedef struct {
    uint32_t cp[LABEL_MAX];
    size_t n;   /* 0..LABEL_MAX */
    bool ascii; /* every cp < 0x80 */
} label_t;

/* Rules for a label in Unicode form (from UTF-8 input, or decoded from an
 * xn-- label): no leading/trailing '-', no "--" in positions 3-4 (RFC 5891
 * 4.2.3.1), allowed ASCII, no forbidden code point, already lower-cased. */
static int check_ulabel(const uint32_t *cp, size_t n, char *err, size_t errlen)
{
    if (cp[0] == '-' || cp[n - 1] == '-') {
        seterr(err, errlen, "label starts or ends with '-'");
        return -1;
    }
    if (n >= 4 && cp[2] == '-' && cp[3] == '-') {
        seterr(err, errlen, "internationalised label with \"--\" in positions 3-4");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const uint32_t c = cp[i];
        uint32_t f[2];
        if (c < 0x80) {
            if (ascii_ok(c)) continue;
            ascii_reason((unsigned char)c, err, errlen);
            return -1;
        }
        if (cp_forbidden(c)) {
            seterr(err, errlen, "code point U+%04X not allowed in host name", (unsigned)c);
            return -1;
        }
        if (cp_fold(c, f) != 1 || f[0] != c) {
            seterr(err, errlen, "upper-case U+%04X in xn-- label", (unsigned)c);
            return -1;
        }
    }
    return 0;
}

/* puny[0..len): the part of a lower-cased ASCII label after "xn--". */
static int check_alabel(const char *puny, size_t len, char *err, size_t errlen)
{
    uint32_t cp[LABEL_MAX];
    char re[LABEL_MAX + 1];
    if (len == 0) {
        seterr(err, errlen, "empty xn-- label");
        return -1;
    }
    const int n = domain_punycode_decode(puny, len, cp, LABEL_MAX);
    if (n <= 0) {
        seterr(err, errlen, "invalid punycode in xn-- label");
        return -1;
    }
    bool wide = false;
    for (int i = 0; i < n; i++)
        wide |= cp[i] >= 0x80;
    if (!wide) {
        seterr(err, errlen, "xn-- label encodes a plain ASCII label");
        return -1;
    }
    if (check_ulabel(cp, (size_t)n, err, errlen) < 0) return -1;
    const int r = domain_punycode_encode(cp, (size_t)n, re, sizeof re);
    if (r < 0 || (size_t)r != len || memcmp(re, puny, len) != 0) {
        seterr(err, errlen, "non-canonical punycode in xn-- label");
        return -1;
    }
    return 0;
}

/* Append one finished label (as an A-label) to out[0..*o). */
static int finish_label(const label_t *lab, char *out, size_t *o, char *err, size_t errlen)
{
    char buf[LABEL_MAX + 1];
    size_t n;
    if (lab->n == 0) {
        seterr(err, errlen, "empty label in host name");
        return -1;
    }
    if (lab->ascii) {
        for (n = 0; n < lab->n; n++)
            buf[n] = (char)lab->cp[n];
        if (buf[0] == '-' || buf[n - 1] == '-') {
            seterr(err, errlen, "label starts or ends with '-'");
            return -1;
        }
        if (n >= ACE_LEN && memcmp(buf, ACE_PREFIX, ACE_LEN) == 0 &&
            check_alabel(buf + ACE_LEN, n - ACE_LEN, err, errlen) < 0)
            return -1;
    } else {
        if (check_ulabel(lab->cp, lab->n, err, errlen) < 0) return -1;
        memcpy(buf, ACE_PREFIX, ACE_LEN);
        const int k = domain_punycode_encode(lab->cp, lab->n, buf + ACE_LEN, sizeof buf - ACE_LEN);
        if (k < 0) {
            seterr(err, errlen, "label longer than %d bytes once IDNA-encoded", LABEL_MAX);
            return -1;
        }
        n = ACE_LEN + (size_t)k;
    }
    const size_t dot = *o > 0 ? 1 : 0;
    if (*o + dot + n > DOMAIN_MAX) {
        seterr(err, errlen, "host name longer than %d bytes", DOMAIN_MAX);
        return -1;
    }
    if (dot) out[(*o)++] = '.';
    memcpy(out + *o, buf, n);
    *o += n;
    return 0;
}

int domain_normalize(const char *in, size_t len, char *out, size_t outlen, char *err, size_t errlen)
{
    seterr(err, errlen, "%s", "");
    if (!out || outlen <= DOMAIN_MAX) {
        seterr(err, errlen, "output buffer smaller than %d bytes", DOMAIN_MAX + 1);
        return -1;
    }
    out[0] = '\0';
    if (!in || len == 0) {
        seterr(err, errlen, "empty host name");
        return -1;
    }
    const unsigned char *p = (const unsigned char *)in;
    label_t lab = {.n = 0, .ascii = true};
    size_t o = 0, i = 0, labels = 0;
    for (;;) {
        uint32_t c = 0;
        size_t clen = 0;
        const bool end = i >= len;
        if (!end) {
            clen = utf8_decode(p + i, len - i, &c);
            if (clen == 0) {
                seterr(err, errlen, "invalid UTF-8 at byte %zu of host name", i);
                goto fail;
            }
        }
        if (end || cp_is_dot(c)) {
            if (lab.n == 0) {
                if (end && labels > 0) break; /* the one trailing dot allowed */
                const bool whole = labels == 0 && (end || i + clen == len);
                seterr(err, errlen, whole ? "empty host name" : "empty label in host name");
                goto fail;
            }
            if (finish_label(&lab, out, &o, err, errlen) < 0) goto fail;
            labels++;
            if (end) break;
            lab.n = 0;
            lab.ascii = true;
            i += clen;
            continue;
        }
        uint32_t f[2];
        const size_t k = cp_fold(c, f);
        if (c < 0x80 && !ascii_ok(f[0])) {
            ascii_reason((unsigned char)c, err, errlen);
            goto fail;
        }
        if (lab.n + k > LABEL_MAX) {
            seterr(err, errlen, "label longer than %d bytes", LABEL_MAX);
            goto fail;
        }
        for (size_t j = 0; j < k; j++)
            lab.cp[lab.n++] = f[j];
        if (c >= 0x80) lab.ascii = false;
        i += clen;
    }
    out[o] = '\0';
    return (int)o;
fail:
    out[0] = '\0';
    return -1;
}

/* ---- the pattern set -------------------------------------------------------------------- */

enum { KIND_EXACT = 0, KIND_SUFFIX = 1, KIND_WILD = 2 };

typedef struct {
    uint64_t hash; /* key_hash(name_hash(name), kind) */
    size_t off;    /* name in set->names */
    int id;
    uint16_t len; /* 0: empty slot (names are never empty) */
    uint8_t kind;
} slot_t;

struct domain_set {
    slot_t *slots; /* cap entries, cap a power of two or 0 */
    size_t cap;
    size_t count; /* distinct patterns, count * 2 <= cap */
    char *names;  /* normalised names, each NUL-terminated */
    size_t names_len;
    size_t names_cap;
};

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull
#define SET_MIN_CAP 16

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 0x20) : c;
}

static uint64_t fnv_step(uint64_t h, unsigned char c)
{
    return (h ^ c) * FNV_PRIME;
}

/* FNV-1a of the name read right to left, so that a host's suffix hashes are
 * the prefixes of one pass. */
static uint64_t name_hash(const char *s, size_t n)
{
    uint64_t h = FNV_OFFSET;
    for (size_t i = n; i-- > 0;)
        h = fnv_step(h, lower((unsigned char)s[i]));
    return h;
}

/* Mix in the kind, then a finaliser (murmur3 fmix64) so that the low bits
 * used as the slot index depend on every byte. */
static uint64_t key_hash(uint64_t h, unsigned kind)
{
    h = fnv_step(h, (unsigned char)(kind + 1));
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static bool name_equal(const char *stored, const char *name, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)stored[i] != lower((unsigned char)name[i])) return false;
    return true;
}

/* Slot holding (kind, name), or NULL.  Never writes: safe for concurrent readers. */
static const slot_t *set_find(const domain_set_t *s, const char *name, size_t n, uint64_t kh,
                              unsigned kind)
{
    if (s->cap == 0) return NULL;
    const size_t mask = s->cap - 1;
    for (size_t i = (size_t)kh & mask;; i = (i + 1) & mask) {
        const slot_t *e = &s->slots[i];
        if (e->len == 0) return NULL;
        if (e->hash == kh && e->kind == kind && e->len == n &&
            name_equal(s->names + e->off, name, n))
            return e;
    }
}

static void slot_place(slot_t *slots, size_t cap, const slot_t *e)
{
    size_t i = (size_t)e->hash & (cap - 1);
    while (slots[i].len != 0)
        i = (i + 1) & (cap - 1);
    slots[i] = *e;
}

static int set_grow(domain_set_t *s)
{
    const size_t cap = s->cap ? s->cap * 2 : SET_MIN_CAP;
    if (cap > SIZE_MAX / sizeof(slot_t)) return -1;
    slot_t *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i].len != 0) slot_place(slots, cap, &s->slots[i]);
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return 0;
}

static int names_append(domain_set_t *s, const char *name, size_t n, size_t *off)
{
    if (s->names_cap - s->names_len < n + 1) {
        size_t cap = s->names_cap ? s->names_cap : 1024;
        while (cap - s->names_len < n + 1) {
            if (cap > SIZE_MAX / 2) return -1;
            cap *= 2;
        }
        char *p = realloc(s->names, cap);
        if (!p) return -1;
        s->names = p;
        s->names_cap = cap;
    }
    *off = s->names_len;
    memcpy(s->names + s->names_len, name, n);
    s->names[s->names_len + n] = '\0';
    s->names_len += n + 1;
    return 0;
}

domain_set_t *domain_set_new(void)
{
    return calloc(1, sizeof(domain_set_t));
}

void domain_set_free(domain_set_t *s)
{
    if (!s) return;
    free(s->names);
    free(s->slots);
    free(s);
}

size_t domain_set_count(const domain_set_t *s)
{
    return s ? s->count : 0;
}

/* WHATWG URL "ends in a number": a last label of decimal digits or 0x-hex is
 * read as IPv4 by URL parsers, and no real TLD looks like that. */
static bool looks_like_ip(const char *name, size_t n)
{
    size_t start = n;
    while (start > 0 && name[start - 1] != '.')
        start--;
    const char *l = name + start;
    const size_t ln = n - start;
    size_t i = 0;
    bool hex = ln >= 2 && l[0] == '0' && l[1] == 'x';
    if (hex) i = 2;
    for (; i < ln; i++) {
        const char c = l[i];
        if (!(c >= '0' && c <= '9') && !(hex && c >= 'a' && c <= 'f')) return false;
    }
    return true;
}

int domain_set_add(domain_set_t *s, const char *pattern, int id, char *err, size_t errlen)
{
    seterr(err, errlen, "%s", "");
    if (!s || !pattern) {
        seterr(err, errlen, "no domain set or pattern");
        return -1;
    }
    if (id < 0) {
        seterr(err, errlen, "pattern id must be >= 0");
        return -1;
    }
    const char *p = pattern;
    size_t len = strlen(pattern);
    unsigned kind = KIND_EXACT;
    if (len == 0) {
        seterr(err, errlen, "empty domain pattern");
        return -1;
    }
    if (len >= 2 && p[0] == '*' && p[1] == '.') {
        kind = KIND_WILD;
        p += 2, len -= 2;
    } else if (p[0] == '.') {
        kind = KIND_SUFFIX;
        p += 1, len -= 1;
    }
    if (len == 0 || (len == 1 && (p[0] == '.' || p[0] == '*'))) {
        seterr(err, errlen,
               "pattern names no domain (a bare \"*\" or \".\" would match every host)");
        return -1;
    }
    if (memchr(p, '*', len)) {
        seterr(err, errlen,
               "wildcard '*' is only allowed as a leading \"*.\" label, as in \"*.example.com\"");
        return -1;
    }
    if (p[0] == '[' || memchr(p, ':', len)) {
        seterr(err, errlen,
               "IPv6 address literal or port in a domain pattern (use allow_cidrs for addresses)");
        return -1;
    }
    char name[DOMAIN_MAX + 1];
    char why[160];
    const int n = domain_normalize(p, len, name, sizeof name, why, sizeof why);
    if (n < 0) {
        seterr(err, errlen, "%s", why);
        return -1;
    }
    if (looks_like_ip(name, (size_t)n)) {
        seterr(err, errlen,
               "IP address literal in a domain pattern (its last label is numeric; use "
               "allow_cidrs for addresses)");
        return -1;
    }
    const uint64_t kh = key_hash(name_hash(name, (size_t)n), kind);
    if (set_find(s, name, (size_t)n, kh, kind)) return 0; /* duplicate: first id stays */
    if ((s->count + 1) * 2 > s->cap && set_grow(s) < 0) goto oom;
    slot_t e = {.hash = kh, .id = id, .len = (uint16_t)n, .kind = (uint8_t)kind};
    if (names_append(s, name, (size_t)n, &e.off) < 0) goto oom;
    slot_place(s->slots, s->cap, &e);
    s->count++;
    return 0;
oom:
    seterr(err, errlen, "out of memory adding domain pattern");
    return -1;
}

int domain_set_match(const domain_set_t *s, const char *host, size_t len)
{
    if (!s || !host || s->count == 0) return -1;
    if (len > 0 && host[len - 1] == '.') len--;
    if (len == 0 || len > DOMAIN_MAX || host[0] == '.') return -1;

    /* Suffix start offsets and their hashes, longest suffix (the host) last. */
    size_t start[DOMAIN_MAX / 2 + 2];
    uint64_t hash[DOMAIN_MAX / 2 + 2];
    size_t nl = 0;
    uint64_t h = FNV_OFFSET;
    for (size_t i = len; i-- > 0;) {
        const unsigned char c = lower((unsigned char)host[i]);
        if (c == '.') {
            if (i + 1 == len || host[i + 1] == '.') return -1; /* empty label */
            start[nl] = i + 1;
            hash[nl++] = h;
        }
        h = fnv_step(h, c);
    }
    start[nl] = 0;
    hash[nl++] = h;

    /* Longest suffix first, so the first hit is the most specific pattern. */
    for (size_t j = nl; j-- > 0;) {
        const char *name = host + start[j];
        const size_t n = len - start[j];
        const bool whole = j == nl - 1;
        const unsigned first = whole ? KIND_EXACT : KIND_WILD;
        const slot_t *e = set_find(s, name, n, key_hash(hash[j], first), first);
        if (!e) e = set_find(s, name, n, key_hash(hash[j], KIND_SUFFIX), KIND_SUFFIX);
        if (e) return e->id;
    }
    return -1;
}
