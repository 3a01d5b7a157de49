/*
 * json — a strict, bounded JSON walker for content inspection.
 *
 * The inspection engine must look at what a JSON body *says*, not at its
 * escapes: a PEM key inside a string is "-----BEGIN...\n...", and
 * "\u0041KIA..." is an AWS key id.  json_walk() parses RFC 8259 JSON
 * (no extensions; depth <= JSON_MAX_DEPTH) and hands every string (keys and
 * values) to a callback decoded to UTF-8, with a map from each decoded byte
 * back to the raw input offset where its escape or character began, so that
 * findings can be reported and redacted in raw byte offsets.
 *
 * Memory: the walker decodes into a caller-provided scratch (json_scratch_t),
 * grown up to a bound; nothing else is allocated.  json_redact() builds a
 * new document (heap, owned by the caller) in which the given raw ranges of
 * string bodies are replaced by a label, and the result is always valid JSON.
 */
#ifndef CDEGUARD_INSPECT_JSON_H
#define CDEGUARD_INSPECT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 128

typedef struct json_scratch {
    char *buf; /* decoded bytes of the current string */
    uint32_t
        *map; /* map[i] = raw offset (from document start) of decoded byte i; map[len] = raw end */
    size_t cap; /* capacity of buf (map holds cap + 1 entries) */
    size_t max; /* largest string accepted (default 64 MiB) */
} json_scratch_t;

void json_scratch_init(json_scratch_t *s);
void json_scratch_free(json_scratch_t *s);

typedef struct json_string {
    const char *text; /* decoded UTF-8 (not NUL-terminated; may contain NUL from \u0000) */
    size_t len;
    const uint32_t *map; /* len + 1 entries: raw offset of each decoded byte; map[len] = offset of
                            the closing quote */
    size_t raw_start;    /* offset of the first byte after the opening quote */
    size_t raw_end;      /* offset of the closing quote */
    bool is_key;
    int depth;
    /* JSON pointer-like path of the value, e.g. "/messages/3/content" (truncated to 255 bytes). */
    const char *path;
} json_string_t;

/* Return non-zero from the callback to stop the walk (json_walk returns that value). */
typedef int (*json_string_cb)(const json_string_t *s, void *ctx);

/* 0 ok, callback's non-zero value if it stopped, -1 malformed (message in err,
 * with the byte offset), -2 limits exceeded (depth or string size). */
int json_walk(const char *in, size_t len, json_scratch_t *scratch, json_string_cb cb, void *ctx,
              char *err, size_t errlen);

typedef struct json_span {
    size_t start, end; /* raw offsets, inside one string body */
    const char *label; /* replacement text, e.g. "[REDACTED:aws-access-key-id]" (plain ASCII) */
} json_span_t;

/* Replace each span (sorted or not; overlapping spans are merged, the first
 * label wins) by its label.  A span boundary falling inside an escape
 * sequence (e.g. in the middle of \u0041) is widened to the whole escape, so
 * no part of the original survives.  0 ok (*out malloc'ed), -1 if a span is
 * not inside a string body of `in` or `in` is not valid JSON. */
int json_redact(const char *in, size_t len, const json_span_t *spans, size_t nspans, char **out,
                size_t *outlen, char *err, size_t errlen);

#endif
