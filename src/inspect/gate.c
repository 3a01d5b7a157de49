/*
 * gate — numeric phrases and anchor bytes in one pass (see gate.h).
 *
 * The input is cut in 64-byte blocks; for each block a 64-bit mask of its
 * digits and one of its anchor bytes are computed with AVX2 or SSE2 (chosen
 * once at run time; plain C elsewhere and for the tail), and only the set
 * bits are visited.  Source text is a few per cent digits, so the pass
 * costs little more than reading the input.
 */
#include "inspect/gate.h"

#include <stdint.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define GATE_X86 1
#endif

bool gate_is_separator(unsigned char c)
{
    return c == ' ' || c == '.' || c == '-' || c == '/' || c == '(' || c == ')';
}

void gate_init(gate_spec_t *g)
{
    *g = (gate_spec_t){0};
#ifdef GATE_X86
    g->avx2 = __builtin_cpu_supports("avx2");
#endif
}

int gate_add_anchor(gate_spec_t *g, unsigned char byte)
{
    for (unsigned i = 0; i < g->nanchors; i++)
        if (g->anchors[i] == byte) return 0;
    if (g->nanchors == GATE_MAX_ANCHORS) return -1;
    g->anchors[g->nanchors++] = byte;
    return 0;
}

typedef struct masks {
    uint64_t digits, anchors;
    unsigned ndigits; /* bits set in digits */
} masks_t;

static masks_t masks_scalar(const gate_spec_t *g, const unsigned char *p, size_t n)
{
    masks_t m = {0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= '0' && p[i] <= '9') m.digits |= (uint64_t)1 << i;
        for (unsigned k = 0; k < g->nanchors; k++)
            if (p[i] == g->anchors[k]) m.anchors |= (uint64_t)1 << i;
    }
    m.ndigits = (unsigned)__builtin_popcountll(m.digits);
    return m;
}

#ifdef GATE_X86
static masks_t masks_sse2(const gate_spec_t *g, const unsigned char *p)
{
    masks_t m = {0, 0, 0};
    const __m128i lo = _mm_set1_epi8('0' - 1), hi = _mm_set1_epi8('9' + 1);
    for (int q = 0; q < 4; q++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * q));
        __m128i d = _mm_and_si128(_mm_cmpgt_epi8(v, lo), _mm_cmplt_epi8(v, hi));
        m.digits |= (uint64_t)(uint16_t)_mm_movemask_epi8(d) << (16 * q);
        for (unsigned k = 0; k < g->nanchors; k++) {
            __m128i a = _mm_cmpeq_epi8(v, _mm_set1_epi8((char)g->anchors[k]));
            m.anchors |= (uint64_t)(uint16_t)_mm_movemask_epi8(a) << (16 * q);
        }
    }
    m.ndigits = (unsigned)__builtin_popcountll(m.digits);
    return m;
}

/* every CPU with AVX2 has POPCNT */
__attribute__((target("avx2,popcnt"))) static masks_t masks_avx2(const gate_spec_t *g,
                                                                 const unsigned char *p)
{
    masks_t m = {0, 0, 0};
    const __m256i lo = _mm256_set1_epi8('0' - 1), hi = _mm256_set1_epi8('9' + 1);
    for (int q = 0; q < 2; q++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32 * q));
        __m256i d = _mm256_and_si256(_mm256_cmpgt_epi8(v, lo), _mm256_cmpgt_epi8(hi, v));
        m.digits |= (uint64_t)(uint32_t)_mm256_movemask_epi8(d) << (32 * q);
        for (unsigned k = 0; k < g->nanchors; k++) {
            __m256i a = _mm256_cmpeq_epi8(v, _mm256_set1_epi8((char)g->anchors[k]));
            m.anchors |= (uint64_t)(uint32_t)_mm256_movemask_epi8(a) << (32 * q);
        }
    }
    m.ndigits = (unsigned)_mm_popcnt_u64(m.digits);
    return m;
}
#endif

/* The phrase being built. */
typedef struct phrase {
    bool open;
    size_t start, last; /* first digit, last digit */
    unsigned digits;
} phrase_t;

static int phrase_close(const gate_spec_t *g, phrase_t *ph, gate_phrase_cb cb, void *ctx)
{
    int rc = 0;
    if (ph->open && g->min_digits && ph->digits >= g->min_digits && cb)
        rc = cb(ph->start, ph->last + 1, ph->digits, ctx);
    ph->open = false;
    return rc;
}

/* A run of digits [p, end) (end > p): extends the open phrase or starts one. */
static int phrase_run(const gate_spec_t *g, phrase_t *ph, const unsigned char *data, size_t p,
                      size_t end, gate_phrase_cb cb, void *ctx)
{
    unsigned n = (unsigned)(end - p);
    if (ph->open) {
        size_t gap = p - ph->last - 1;
        if (gap == 0 || (gap <= 2 && gate_is_separator(data[ph->last + 1]) &&
                         (gap == 1 || gate_is_separator(data[ph->last + 2])))) {
            ph->last = end - 1;
            ph->digits += n;
            return 0;
        }
        int rc = phrase_close(g, ph, cb, ctx);
        if (rc) return rc;
    }
    *ph = (phrase_t){true, p, end - 1, n};
    return 0;
}

static masks_t masks_at(const gate_spec_t *g, const unsigned char *u, size_t base, size_t len)
{
    size_t n = len - base < 64 ? len - base : 64;
#ifdef GATE_X86
    if (n == 64) return g->avx2 ? masks_avx2(g, u + base) : masks_sse2(g, u + base);
#endif
    return masks_scalar(g, u + base, n);
}

int gate_scan(const gate_spec_t *g, const char *data, size_t len, gate_phrase_cb on_phrase,
              gate_anchor_cb on_anchor, void *ctx)
{
    const unsigned char *u = (const unsigned char *)data;
    phrase_t ph = {false, 0, 0, 0};
    masks_t cur = len ? masks_at(g, u, 0, len) : (masks_t){0, 0, 0};
    /* A phrase that starts in a block and reaches two blocks further has
     * more than 64 / 3 digits in the middle block; so when no phrase is open
     * and a block and the next one hold fewer than min_digits digits
     * together (min_digits <= 21), no phrase starting in the block can
     * qualify, and its digits need not be visited. */
    bool can_skip = g->min_digits <= 21;
    for (size_t base = 0; base < len; base += 64) {
        masks_t nxt = base + 64 < len ? masks_at(g, u, base + 64, len) : (masks_t){0, 0, 0};
        uint64_t digits = g->min_digits ? cur.digits : 0;
        if (digits && can_skip && !ph.open && cur.ndigits + nxt.ndigits < g->min_digits) digits = 0;
        /* runs of digits, then anchors: they feed different rules, and
         * each kind is reported in position order */
        while (digits) {
            unsigned st = (unsigned)__builtin_ctzll(digits);
            uint64_t rest = ~(digits >> st); /* zero bits: the run goes on */
            unsigned n = rest ? (unsigned)__builtin_ctzll(rest) : 64 - st;
            int rc = phrase_run(g, &ph, u, base + st, base + st + n, on_phrase, ctx);
            if (rc) return rc;
            digits = st + n >= 64 ? 0 : digits & (~(uint64_t)0 << (st + n));
        }
        for (uint64_t a = cur.anchors; a && on_anchor; a &= a - 1) {
            int rc = on_anchor(base + (unsigned)__builtin_ctzll(a), ctx);
            if (rc) return rc;
        }
        cur = nxt;
    }
    return phrase_close(g, &ph, on_phrase, ctx);
}
