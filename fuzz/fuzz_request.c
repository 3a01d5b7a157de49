/*
 * fuzz_request — libFuzzer harness for src/llm/request (llm_request_parse).
 *
 * Input: byte 0 chooses the kind (low 3 bits, mod the number of kinds; an
 * out-of-range kind is tried too) and the Gemini url_stream flag (bit 3);
 * the rest is the request body, parsed with jval (an exact-size heap copy).
 * Checks, on every body that jval accepts:
 *   - the return code is LLM_REQUEST_OK (err "") or LLM_REQUEST_EINVAL (err
 *     not empty);
 *   - on OK the model is a non-empty slice; always nfiles <= files_seen,
 *     nfiles <= LLM_REQUEST_MAX_FILES, files_clipped <= nfiles, every kept
 *     name is 1..LLM_REQUEST_MAX_FILE_NAME bytes and does not end inside a
 *     UTF-8 sequence;
 *   - prompt_tokens_est is ceil(bytes / 4) + 4 * messages + token_ids.
 * A violated invariant calls abort() so libFuzzer records the input.
 * Seeds: fuzz/corpus/fuzz_request/; dictionary: fuzz/fuzz_request.dict.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jval.h"
#include "llm/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned k = data[0] & 7u;
    bool url_stream = (data[0] & 8u) != 0;
    size_t len = size - 1;
    char *in = malloc(len ? len : 1);
    if (in == NULL) return 0;
    if (len) memcpy(in, data + 1, len);

    jval_doc_t *doc = NULL;
    if (jval_parse(in, len, 4096, &doc, NULL, 0) == JVAL_OK) {
        llm_request_t r;
        char err[160];
        int rc = llm_request_parse((llm_request_kind_t)k, jval_root(doc), "gemini-x", url_stream,
                                   &r, err, sizeof err);
        CHECK(rc == LLM_REQUEST_OK || rc == LLM_REQUEST_EINVAL);
        if (rc == LLM_REQUEST_OK) {
            CHECK(err[0] == '\0');
            CHECK(r.model.ptr != NULL && r.model.len > 0);
            uint64_t est = (r.prompt_bytes + 3) / 4 + 4 * r.prompt_messages + r.prompt_token_ids;
            CHECK(r.prompt_tokens_est == est);
        } else {
            CHECK(err[0] != '\0');
        }
        CHECK(r.nfiles <= r.files_seen && r.nfiles <= LLM_REQUEST_MAX_FILES);
        CHECK(r.files_clipped <= r.nfiles);
        for (size_t i = 0; i < r.nfiles; i++) {
            const llm_request_str_t *f = &r.files[i];
            CHECK(f->ptr != NULL && f->len > 0 && f->len <= LLM_REQUEST_MAX_FILE_NAME);
            /* the last kept byte is not a lead byte left without its continuation */
            size_t j = f->len;
            while (j > 0 && ((unsigned char)f->ptr[j - 1] & 0xC0) == 0x80)
                j--;
            CHECK(j > 0);
            unsigned char lead = (unsigned char)f->ptr[j - 1];
            size_t want = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
            CHECK(f->len - (j - 1) == want);
        }
        jval_free(doc);
    }
    free(in);
    return 0;
}
