/*
 * fuzz_validate — libFuzzer harness for src/inspect/validate.c.
 *
 * Every validator and filter runs on the exact-size input (libFuzzer's heap
 * copy, so ASan sees any read past size) and must not crash.  Beyond that it
 * checks the contracts that hold for any bytes: entropy is finite and in
 * [0, 8] (and <= log2 of the length); results do not depend on bytes past n
 * (each function gives the same answer on a prefix copy as on the prefix of
 * the original); validate_lookup() on the input as a name returns NULL or
 * one of the seven validators; a valid classic GitHub token's checksum is
 * what validate_crc32 + validate_base62_6 say; base62 output is base62.
 * Seeds: fuzz/corpus/fuzz_validate/.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inspect/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) __builtin_trap();                                                             \
    } while (0)

static const validate_fn all_fns[] = {
    validate_github_token,
    validate_card,
    validate_iban,
    validate_us_ssn,
    validate_jwt,
    validate_phone,
    validate_aws_key_id,
    validate_is_placeholder,
    validate_is_hash_or_uuid,
};

static void check_entropy(const char *s, size_t n)
{
    double h = validate_entropy(s, n);
    CHECK(!isnan(h) && h >= 0.0 && h <= 8.0);
    if (n > 0) CHECK(h <= log2((double)n) + 1e-9);
    if (n <= 1) CHECK(h == 0.0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    bool github_ok = validate_github_token(s, size);

    for (size_t i = 1; i < sizeof all_fns / sizeof all_fns[0]; i++)
        (void)all_fns[i](s, size);
    check_entropy(s, size);

    /* the same answers from an exact-size copy of a prefix as from the
     * prefix of the original: nothing reads past n */
    if (size > 0) {
        size_t cut = data[0] % size + 1;
        char *copy = malloc(cut);
        if (copy != NULL) {
            memcpy(copy, s, cut);
            for (size_t i = 0; i < sizeof all_fns / sizeof all_fns[0]; i++)
                CHECK(all_fns[i](copy, cut) == all_fns[i](s, cut));
            CHECK(validate_entropy(copy, cut) == validate_entropy(s, cut));
            check_entropy(copy, cut);
            free(copy);
        }
    }

    /* the input as a validator name */
    if (size < 64) {
        char name[64];
        memcpy(name, s, size);
        name[size] = '\0';
        validate_fn f = validate_lookup(name);
        if (f != NULL) {
            bool known = false;
            for (size_t i = 0; i < 7; i++)
                known = known || f == all_fns[i];
            CHECK(known);
        }
    }

    /* a classic GitHub token that passes has the checksum we compute */
    if (github_ok && size == 40) {
        char want[6];
        validate_base62_6(validate_crc32(s, 34), want);
        CHECK(memcmp(want, s + 34, 6) == 0);
    }

    /* base62 of any 32-bit value is six base62 characters */
    if (size >= 4) {
        uint32_t v = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                     (uint32_t)data[3] << 24;
        char out[6];
        validate_base62_6(v, out);
        for (size_t i = 0; i < 6; i++)
            CHECK((out[i] >= '0' && out[i] <= '9') || (out[i] >= 'A' && out[i] <= 'Z') ||
                  (out[i] >= 'a' && out[i] <= 'z'));
    }

    /* making a token from the input yields a valid one */
    if (size >= 30) {
        char tok[40] = "ghp_";
        for (size_t i = 0; i < 30; i++)
            tok[4 + i] =
                "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"[data[i] % 62];
        validate_base62_6(validate_crc32(tok, 34), tok + 34);
        CHECK(validate_github_token(tok, sizeof tok));
    }
    return 0;
}
