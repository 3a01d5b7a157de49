/*
 * utf8 — see utf8.h.  Table-free: the RFC 3629 ranges are a few compares.
 */
#include "core/utf8.h"

#include <stdbool.h>
#include <stdio.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    unsigned lo = 0x80, hi = 0xBF;
    size_t l;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        l = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        l = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        l = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (n < l) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < l; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return l;
}

size_t utf8_encode(uint32_t cp, unsigned char out[4])
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Four hex digits at in[o] → *cp; false if short or not hex. */
static bool read_hex4(const unsigned char *in, size_t len, size_t o, uint32_t *cp)
{
    if (len < o || len - o < 4) return false;
    uint32_t v = 0;
    for (size_t i = 0; i < 4; i++) {
        int h = hexval(in[o + i]);
        if (h < 0) return false;
        v = v << 4 | (uint32_t)h;
    }
    *cp = v;
    return true;
}

int utf8_json_escape(const unsigned char *in, size_t len, size_t o, unsigned char out[4],
                     size_t *next, char *msg, size_t msglen)
{
    static const char simple_in[] = "\"\\/bfnrt";
    static const char simple_out[] = "\"\\/\b\f\n\r\t";
    if (len < o || len - o < 2) {
        snprintf(msg, msglen, "unterminated escape sequence");
        return -1;
    }
    unsigned char e = in[o + 1];
    if (e == 'u') {
        uint32_t cp, lo;
        if (!read_hex4(in, len, o + 2, &cp)) {
            snprintf(msg, msglen, "invalid \\u escape (four hex digits expected)");
            return -1;
        }
        size_t n = o + 6;
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            snprintf(msg, msglen, "lone low surrogate \\u%04X", (unsigned)cp);
            return -1;
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (len - n < 2 || in[n] != '\\' || in[n + 1] != 'u' ||
                !read_hex4(in, len, n + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                snprintf(msg, msglen, "lone high surrogate \\u%04X (no low surrogate follows)",
                         (unsigned)cp);
                return -1;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            n += 6;
        }
        *next = n;
        return (int)utf8_encode(cp, out);
    }
    for (size_t i = 0; e && simple_in[i]; i++)
        if (simple_in[i] == (char)e) {
            out[0] = (unsigned char)simple_out[i];
            *next = o + 2;
            return 1;
        }
    if (e >= 0x20 && e < 0x7F)
        snprintf(msg, msglen, "invalid escape '\\%c'", e);
    else
        snprintf(msg, msglen, "invalid escape (backslash followed by byte 0x%02X)", e);
    return -1;
}

/* End of the run of plain string bytes (printable ASCII other than '"' and
 * '\\') that starts at o: the string bodies of prompts are mostly that, so
 * it is found 16 bytes at a time. */
size_t utf8_json_plain_run(const unsigned char *in, size_t o, size_t len)
{
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
                  space = _mm_set1_epi8(0x20);
    while (o + 16 <= len) {
        __m128i v = _mm_loadu_si128((const __m128i *)(in + o));
        /* signed compare: bytes >= 0x80 are negative, so "< 0x20" catches
         * both control bytes and non-ASCII */
        __m128i stop =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                         _mm_cmplt_epi8(v, space));
        unsigned m = (unsigned)_mm_movemask_epi8(stop);
        if (m) return o + (size_t)__builtin_ctz(m);
        o += 16;
    }
#endif
    while (o < len && in[o] >= 0x20 && in[o] < 0x80 && in[o] != '"' && in[o] != '\\')
        o++;
    return o;
}
