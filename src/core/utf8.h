/*
 * utf8 — UTF-8 validation and encoding, and JSON string escapes, shared by
 * the two JSON readers (src/inspect/json.c, the inspection walker, and
 * src/core/jval.c, the DOM), so both accept, decode and reject exactly the
 * same bytes with the same messages.
 *
 * Pure functions on caller buffers; nothing is allocated.
 */
#ifndef CDEGUARD_CORE_UTF8_H
#define CDEGUARD_CORE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the well-formed UTF-8 sequence at s (n > 0 bytes available), 0
 * if it is not one (RFC 3629 table 3-7: no overlongs, surrogates or code
 * points above U+10FFFF). */
size_t utf8_seq_len(const unsigned char *s, size_t n);

/* Encode a code point (<= U+10FFFF, not a surrogate) into out; its length. */
size_t utf8_encode(uint32_t cp, unsigned char out[4]);

/* The JSON escape at in[o] (a backslash; len bytes in all): its UTF-8 bytes
 * into out, returning how many (1..4), with *next set past the escape
 * (a \uD83D\uDE00 surrogate pair is one escape).  -1 when it is not a valid
 * RFC 8259 escape, with the reason in msg. */
int utf8_json_escape(const unsigned char *in, size_t len, size_t o, unsigned char out[4],
                     size_t *next, char *msg, size_t msglen);

/* End of the run of plain JSON string bytes (printable ASCII other than
 * '"' and '\\') that starts at offset o of in[0..len): at most len.  16
 * bytes at a time with SSE2. */
size_t utf8_json_plain_run(const unsigned char *in, size_t o, size_t len);

#endif
