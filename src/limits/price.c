/*
 * price.c — decimal price parsing, first-match table lookup and exact cost
 * arithmetic (see price.h for the units and rules).
 *
 * Cost without 128-bit integers: for each part, tokens * pico =
 * 1000 * (tokens * q) + tokens * r with pico = 1000 q + r (r < 1000), and
 * tokens * r = 1000 * (tokens / 1000) * r + (tokens % 1000) * r.  The
 * nano-USD parts (tokens * q and (tokens / 1000) * r; the latter cannot
 * overflow as r < 1000) are added with saturation; the sub-nano remainders
 * ((tokens % 1000) * r < 10^6 each) are summed apart and carried at the
 * end, rounding half up.
 *
 * Invariants: parsed prices are <= LIM_PRICE_MAX_PICO.
 *
 * Memory: lim_price_set() allocates the pattern copy, lim_price_clear()
 * frees it; nothing else allocates.
 */
#include "limits/price.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt,
                                                          ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int lim_price_parse_usd_per_mtok(const char *s, uint64_t *pico_per_token, char *err, size_t errlen)
{
    if (!s || !pico_per_token) {
        set_err(err, errlen, "price: no value");
        return LIM_PRICE_EINVAL;
    }
    const char *p = s;
    if (*p == '-') {
        set_err(err, errlen, "price \"%.32s\": negative", s);
        return LIM_PRICE_EINVAL;
    }
    if (!is_digit(*p)) {
        set_err(err, errlen, "price \"%.32s\": expected USD per million tokens, such as 2.50", s);
        return LIM_PRICE_EINVAL;
    }
    uint64_t whole = 0, frac = 0;
    int places = 0;
    for (; is_digit(*p); p++) {
        whole = whole * 10 + (uint64_t)(*p - '0');
        if (whole > LIM_PRICE_MAX_USD) {
            set_err(err, errlen, "price \"%.32s\": over %d USD per million tokens", s,
                    LIM_PRICE_MAX_USD);
            return LIM_PRICE_EINVAL;
        }
    }
    if (*p == '.') {
        p++;
        if (!is_digit(*p)) {
            set_err(err, errlen, "price \"%.32s\": a digit must follow '.'", s);
            return LIM_PRICE_EINVAL;
        }
        for (; is_digit(*p); p++) {
            if (places < 6) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                places++;
            } else if (*p != '0') {
                set_err(err, errlen, "price \"%.32s\": more than 6 decimal places", s);
                return LIM_PRICE_EINVAL;
            }
        }
    }
    if (*p) {
        if (*p == 'e' || *p == 'E')
            set_err(err, errlen, "price \"%.32s\": exponents are not accepted", s);
        else
            set_err(err, errlen, "price \"%.32s\": unexpected '%c'", s, *p);
        return LIM_PRICE_EINVAL;
    }
    for (; places < 6; places++)
        frac *= 10;
    uint64_t v = whole * 1000000 + frac;
    if (v > LIM_PRICE_MAX_PICO) {
        set_err(err, errlen, "price \"%.32s\": over %d USD per million tokens", s,
                LIM_PRICE_MAX_USD);
        return LIM_PRICE_EINVAL;
    }
    *pico_per_token = v;
    return LIM_PRICE_OK;
}

int lim_price_set(lim_price_t *p, const char *pattern, const char *in, const char *out,
                  const char *cache_read, const char *cache_write, char *err, size_t errlen)
{
    if (!p) {
        set_err(err, errlen, "price: no entry");
        return LIM_PRICE_EINVAL;
    }
    memset(p, 0, sizeof *p);
    if (!pattern || !*pattern) {
        set_err(err, errlen, "price: empty model pattern");
        return LIM_PRICE_EINVAL;
    }
    lim_price_t v = {NULL, 0, 0, 0, 0};
    const char *what[4] = {"input", "output", "cache_read", "cache_write"};
    const char *src[4] = {in, out, cache_read ? cache_read : in, cache_write ? cache_write : in};
    uint64_t *dst[4] = {&v.in, &v.out, &v.cache_read, &v.cache_write};
    for (int i = 0; i < 4; i++) {
        char msg[128];
        if (lim_price_parse_usd_per_mtok(src[i], dst[i], msg, sizeof msg) != LIM_PRICE_OK) {
            set_err(err, errlen, "model \"%.64s\": %s: %s", pattern, what[i], msg);
            return LIM_PRICE_EINVAL;
        }
    }
    v.pattern = strdup(pattern);
    if (!v.pattern) {
        set_err(err, errlen, "out of memory");
        return LIM_PRICE_ENOMEM;
    }
    *p = v;
    return LIM_PRICE_OK;
}

void lim_price_clear(lim_price_t *p)
{
    if (!p) return;
    free(p->pattern);
    memset(p, 0, sizeof *p);
}

const lim_price_t *lim_price_find(const lim_price_t *table, size_t n, const char *model, size_t len)
{
    if (!table || (!model && len)) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (table[i].pattern && config_glob_match(table[i].pattern, model, len)) return &table[i];
    }
    return NULL;
}

static uint64_t sat_add(uint64_t x, uint64_t y)
{
    return x > UINT64_MAX - y ? UINT64_MAX : x + y;
}

/* *nano += tokens * pico / 1000 (the whole part, saturating); *rem += the
 * remainder in pico-USD. */
static void add_part(uint64_t tokens, uint64_t pico, uint64_t *nano, uint64_t *rem)
{
    uint64_t q = pico / 1000, r = pico % 1000;
    if (q && tokens > UINT64_MAX / q)
        *nano = UINT64_MAX;
    else
        *nano = sat_add(*nano, tokens * q);
    *nano = sat_add(*nano, tokens / 1000 * r);
    *rem += tokens % 1000 * r;
}

uint64_t lim_cost_nano(const lim_price_t *p, uint64_t input, uint64_t output, uint64_t cache_read,
                       uint64_t cache_write)
{
    if (!p) return 0;
    uint64_t uncached = input;
    uncached = uncached > cache_read ? uncached - cache_read : 0;
    uncached = uncached > cache_write ? uncached - cache_write : 0;
    uint64_t nano = 0, rem = 0;
    add_part(uncached, p->in, &nano, &rem);
    add_part(cache_read, p->cache_read, &nano, &rem);
    add_part(cache_write, p->cache_write, &nano, &rem);
    add_part(output, p->out, &nano, &rem);
    nano = sat_add(nano, rem / 1000);
    if (rem % 1000 >= 500) nano = sat_add(nano, 1);
    return nano;
}

int lim_format_usd(uint64_t nano, char *buf, size_t len)
{
    if (!buf || !len) return -1;
    uint64_t micro = nano / 1000 + (nano % 1000 >= 500);
    char tmp[LIM_USD_BUFSZ];
    int n = snprintf(tmp, sizeof tmp, "%llu.%06llu", (unsigned long long)(micro / 1000000),
                     (unsigned long long)(micro % 1000000));
    if (n < 0 || (size_t)n >= len) {
        buf[0] = '\0';
        return -1;
    }
    memcpy(buf, tmp, (size_t)n + 1);
    return n;
}
