/*
 * fuzz_clienthello — libFuzzer harness for tlshello_parse (src/tls/clienthello.c).
 *
 * Beyond "no crash, no over-read" (libFuzzer hands us an exact-size heap copy,
 * so ASan sees any read past len) it checks the result contract: a status in
 * the enum, an error string exactly on NOT_TLS / MALFORMED, and on DONE:
 * consumed <= len, sni_len < 256 with sni NUL-terminated and NUL-free, alpn
 * NUL-terminated; the same result from data[0..consumed); and NEED_MORE from
 * the proper prefix data[0..consumed-1), parsed from its own exact-size copy.
 * Seeds: fuzz/corpus/fuzz_clienthello/; dictionary: fuzz/fuzz_clienthello.dict.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls/clienthello.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) __builtin_trap();                                                             \
    } while (0)

static void check_result(tlshello_status_t st, const tlshello_t *h, size_t len)
{
    CHECK(st == TLSHELLO_DONE || st == TLSHELLO_NEED_MORE || st == TLSHELLO_NOT_TLS ||
          st == TLSHELLO_MALFORMED);
    CHECK((st == TLSHELLO_NOT_TLS || st == TLSHELLO_MALFORMED) == (h->error != NULL));
    if (st != TLSHELLO_DONE) return;
    CHECK(h->consumed > 0 && h->consumed <= len);
    CHECK(h->sni_len < sizeof h->sni);
    CHECK(h->sni[h->sni_len] == '\0');
    CHECK(memchr(h->sni, '\0', h->sni_len) == NULL);
    CHECK(h->has_sni || h->sni_len == 0);
    CHECK(memchr(h->alpn, '\0', sizeof h->alpn) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tlshello_t h;
    tlshello_status_t st = tlshello_parse(data, size, &h);
    check_result(st, &h, size);
    if (st != TLSHELLO_DONE) return 0;

    /* the records that held the hello are enough on their own */
    tlshello_t again;
    CHECK(tlshello_parse(data, h.consumed, &again) == TLSHELLO_DONE);
    CHECK(again.consumed == h.consumed && again.sni_len == h.sni_len && again.tls13 == h.tls13);
    CHECK(strcmp(again.sni, h.sni) == 0 && strcmp(again.alpn, h.alpn) == 0);

    /* and one byte fewer is a valid prefix */
    size_t n = h.consumed - 1;
    uint8_t *prefix = malloc(n ? n : 1);
    if (!prefix) return 0;
    memcpy(prefix, data, n);
    tlshello_t part;
    st = tlshello_parse(prefix, n, &part);
    free(prefix);
    CHECK(st == TLSHELLO_NEED_MORE);
    check_result(st, &part, n);
    return 0;
}
