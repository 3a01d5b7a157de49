/*
 * price — per-model USD prices and the cost of one call, in exact integers.
 *
 * Units: a price is written in USD per million tokens ("2.50") and held in
 * pico-USD per token (1e-12 USD; numerically the same as micro-USD per
 * million tokens): "2.50" -> 2 500 000.  This is the coarsest integer unit
 * that keeps 6 decimal places of USD per million tokens exact (nano-USD per
 * token would keep only 3: "0.0375" is 37.5 nano-USD per token).  Costs
 * are in nano-USD (1e-9 USD), rounded half up from the exact pico-USD sum.
 *
 * Parsing (lim_price_parse_usd_per_mtok): digits, optionally '.' and 1..6
 * digits (more only if they are zeros); no sign, no exponent, no spaces,
 * at most LIM_PRICE_MAX_USD ("1000000") per million tokens.  No floating
 * point anywhere.
 *
 * Table: an array in order; lim_price_find() returns the first entry whose
 * glob pattern ('*' any run, '?' one byte, case-sensitive:
 * config_glob_match) matches the model name.
 *
 * Cost (lim_cost_nano), with the normalised usage of llm/usage.h, where
 * input INCLUDES cache_read and cache_write:
 *   uncached = input - cache_read - cache_write   (0 if negative)
 *   cost = uncached * in + cache_read * cache_read_price
 *        + cache_write * cache_write_price + output * out
 * exact, then rounded half up to nano-USD, saturating at UINT64_MAX.
 *
 * Return values: LIM_PRICE_OK, or a negative LIM_PRICE_E* with a message in
 * err (NUL-terminated, at most errlen - 1 bytes; err may be NULL).
 *
 * Memory: a lim_price_t filled by lim_price_set() owns its pattern (heap),
 * released by lim_price_clear(); a table built by other means owns
 * whatever it says.  The other functions allocate nothing.
 */
#ifndef CDEGUARD_LIMITS_PRICE_H
#define CDEGUARD_LIMITS_PRICE_H

#include <stddef.h>
#include <stdint.h>

#define LIM_PRICE_OK 0
#define LIM_PRICE_EINVAL (-1)
#define LIM_PRICE_ENOMEM (-2)

#define LIM_PRICE_MAX_USD 1000000                    /* per million tokens */
#define LIM_PRICE_MAX_PICO ((uint64_t)1000000000000) /* the same, pico-USD per token */
#define LIM_USD_BUFSZ 24                             /* lim_format_usd of any value, with its NUL */

typedef struct lim_price {
    char *pattern;                             /* model glob */
    uint64_t in, out, cache_read, cache_write; /* pico-USD per token */
} lim_price_t;

/* "2.50" (USD per million tokens) -> 2500000 pico-USD per token. */
int lim_price_parse_usd_per_mtok(const char *s, uint64_t *pico_per_token, char *err, size_t errlen);

/* Fill p: a copy of pattern (non-empty) and the four prices parsed; a NULL
 * cache_read or cache_write takes the input price.  On error p is zeroed. */
int lim_price_set(lim_price_t *p, const char *pattern, const char *in, const char *out,
                  const char *cache_read, const char *cache_write, char *err, size_t errlen);
void lim_price_clear(lim_price_t *p); /* frees the pattern, zeroes p */

/* First entry whose pattern matches model[0..len); NULL when none. */
const lim_price_t *lim_price_find(const lim_price_t *table, size_t n, const char *model,
                                  size_t len);

/* Cost in nano-USD (p NULL: 0). */
uint64_t lim_cost_nano(const lim_price_t *p, uint64_t input, uint64_t output, uint64_t cache_read,
                       uint64_t cache_write);

/* nano-USD as USD with 6 decimals, rounded half up: 1234567 -> "0.001235".
 * Returns the length written, or -1 when len is too small (buf "" if len). */
int lim_format_usd(uint64_t nano, char *buf, size_t len);

#endif
