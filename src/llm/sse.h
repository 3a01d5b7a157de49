/*
 * sse — an incremental Server-Sent Events (text/event-stream) parser.
 *
 * Follows the WHATWG HTML "event stream interpretation" rules: bytes are
 * fed in arbitrary chunks; lines end with CRLF, LF or CR (a CR that ends one
 * chunk and an LF that starts the next are one line end); one leading UTF-8
 * BOM is ignored; lines starting with ':' are comments; the fields are
 * event, data (several data lines are joined with LF), id (ignored if it
 * contains NUL) and retry (ASCII digits only); other fields are ignored; a
 * blank line dispatches the event, unless its data buffer is empty.  At end
 * of stream an event without its blank line is not dispatched.
 *
 * Deliberate differences from a browser: bytes are not UTF-8 decoded (no
 * U+FFFD replacement: data is reported as the raw bytes), and events are
 * bounded (see max_event).
 *
 * Byte ranges: every reported event carries [start, end), offsets in the
 * stream as fed (the BOM included in the count).  start is the first byte
 * of the block (the lines after the previous blank line, comments included);
 * end is just after the first byte of the terminator of the blank line that
 * dispatched it, so when that terminator is CRLF its LF lies outside every
 * range (the parser dispatches at the CR, without waiting for the next
 * chunk).  Bytes outside every reported range (a BOM, blank lines, blocks
 * that dispatch nothing such as comment-only keep-alives, that lone LF) are
 * inert for an SSE client: a relay that drops or forwards whole events
 * forwards those as they are.  The ranges do not depend on how the stream is
 * chunked.
 *
 * Bounds: a block (event) larger than max_event bytes (counted from start
 * through the first byte of its blank line's terminator) is reported once,
 * with oversize = true, start = its first byte and end = start + max_event
 * + 1 (the byte that crossed the limit); it is then skipped to the next
 * blank line and never dispatched.  Lines of that block completed before the
 * limit was crossed have had their effect (an id or retry field sticks);
 * the rest of the block is ignored.
 * Buffered state is therefore at most about 3 * max_event bytes (partial
 * line, data, last event id).
 *
 * Return values: SSE_OK (0); the callback's non-zero value (the parser
 * stops, later calls return SSE_ESTATE); SSE_ESTATE (fed after finish or
 * after a stop); SSE_ENOMEM.  A message is left in p->err.
 *
 * Memory: the parser owns its buffers (heap, grown geometrically up to the
 * bounds above); sse_free() releases them.  The pointers in an sse_event_t
 * are valid only during the callback.
 */
#ifndef CDEGUARD_LLM_SSE_H
#define CDEGUARD_LLM_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SSE_DEFAULT_MAX_EVENT ((size_t)4 << 20)

#define SSE_OK 0
#define SSE_ESTATE (-1)
#define SSE_ENOMEM (-2)

/* sse_finish() results */
#define SSE_END_CLEAN 0
#define SSE_END_TRUNCATED 1

typedef struct sse_event {
    const char *type; /* event type: the last "event" field, or "message" (NUL-terminated) */
    size_t type_len;
    const char *data; /* data lines joined with LF, no trailing LF (NUL-terminated) */
    size_t data_len;
    const char *id; /* last event ID, which persists across events per the spec ("" if none) */
    size_t id_len;
    uint64_t start, end; /* raw byte range of the event in the stream */
    bool oversize;       /* limit report: no type, data or id (all ""), range as described */
} sse_event_t;

/* Return non-zero to stop parsing (sse_feed returns that value). */
typedef int (*sse_event_cb)(const sse_event_t *ev, void *ctx);

typedef struct sse_buf {
    char *p;
    size_t len, cap;
} sse_buf_t;

typedef struct sse_parser {
    /* set by sse_init */
    size_t max_event;
    sse_event_cb cb;
    void *ctx;

    /* readable state */
    uint64_t pos;        /* bytes fed so far */
    uint64_t dispatched; /* events dispatched */
    uint64_t oversized;  /* oversize reports */
    bool has_retry;
    uint64_t retry_ms; /* last valid retry field (saturated at UINT64_MAX) */
    char err[128];

    /* private */
    int state;         /* running, finished, stopped */
    unsigned bom_seen; /* bytes of a leading BOM matched so far; 3 = decided */
    bool cr;           /* the previous byte was a CR line end */
    bool cr_blank;     /* ... and that line was blank (so its LF is outside the block) */
    bool skipping;     /* inside an oversize block */
    uint64_t block;    /* offset of the current block's first byte */
    uint64_t line_len; /* bytes of the current line so far (buffered or skipped) */
    sse_buf_t line;    /* the current line when it spans chunks */
    sse_buf_t data;    /* data buffer (each line followed by LF) */
    sse_buf_t type;    /* event type buffer */
    sse_buf_t id;      /* last event ID buffer */
} sse_parser_t;

/* max_event 0 means SSE_DEFAULT_MAX_EVENT.  cb may be NULL (count only). */
void sse_init(sse_parser_t *p, size_t max_event, sse_event_cb cb, void *ctx);
void sse_free(sse_parser_t *p);

int sse_feed(sse_parser_t *p, const char *buf, size_t len);

/* End of stream.  SSE_END_CLEAN, or SSE_END_TRUNCATED when the stream ended
 * inside an event (data buffered, a partial non-comment line, or an
 * oversize block): that event is not dispatched and p->err says where it
 * began.  Negative as sse_feed on a stopped parser.  Later feeds fail. */
int sse_finish(sse_parser_t *p);

#endif
