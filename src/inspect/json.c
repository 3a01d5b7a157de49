/*
 * json.c — strict RFC 8259 JSON walker and string redactor (see json.h).
 *
 * json_walk() validates a whole document and hands every string (object keys
 * with is_key = true, and string values) to a callback, decoded to UTF-8 with
 * a byte-by-byte map back to raw input offsets.  json_redact() walks the
 * document, widens each requested raw span to whole characters / escapes and
 * writes a copy with the spans replaced by their (JSON-escaped) labels.
 *
 * Grammar: exactly RFC 8259 — one value with optional whitespace (space, tab,
 * LF, CR) around it; no BOM, comments, trailing commas, NaN/Infinity, single
 * quotes or leading zeros.  Raw bytes inside strings must be well-formed
 * UTF-8 (RFC 3629: no overlongs, no encoded surrogates, <= U+10FFFF) and not
 * control characters (< 0x20); \uHHHH escapes must pair surrogates.
 *
 * Invariants:
 *   - no recursion: containers live on an explicit stack of JSON_MAX_DEPTH
 *     frames inside the parser struct (on the C stack, ~3 KiB);
 *   - the decoded string of a callback is valid UTF-8 (it may hold NUL);
 *   - map is non-decreasing, map[0] == raw_start when len > 0, every byte of
 *     one decoded character shares the offset where its raw character or
 *     escape begins (for a surrogate pair: the first backslash), and
 *     map[len] == raw_end (the closing quote);
 *   - the path is the member's JSON Pointer ("~" -> "~0", "/" -> "~1"; array
 *     indexes in decimal; "" for the top-level value).  A key callback gets
 *     the path of its member (the same path its value will get).  The path is
 *     truncated to 255 bytes on a UTF-8 character boundary; NUL bytes of a
 *     key are left out of it;
 *   - documents are limited to UINT32_MAX bytes (offsets are uint32_t).
 *
 * Return values: 0 ok, -1 malformed input (err = "offset N: what"), -2 limit
 * exceeded (depth, string size, document size, or out of memory), or the
 * callback's non-zero value (err left empty).
 *
 * Memory: the walker allocates only the caller's json_scratch_t (buf and map,
 * grown geometrically from 256 bytes up to scratch->max, kept between calls
 * and released by json_scratch_free).  json_redact() uses a private scratch
 * and a sorted copy of the spans, both freed before it returns; its output is
 * one malloc'ed, NUL-terminated buffer owned by the caller.
 */
#include "inspect/json.h"

#include "core/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define JSON_DEFAULT_MAX ((size_t)64 << 20)
#define JSON_PATH_MAX 255
#define JSON_SCRATCH_MIN 256

/* Internal status for "the callback asked to stop; its value is in cbrc". */
#define JSON_STOP 1

typedef struct json_frame {
    char kind;    /* '{' or '[' */
    size_t plen;  /* length of the container's own path */
    size_t index; /* current element index (arrays) */
} json_frame_t;

typedef struct json_parser {
    const unsigned char *in;
    size_t len;
    size_t pos;
    json_scratch_t *sc;
    json_string_cb cb;
    void *ctx;
    int cbrc;
    char *err;
    size_t errlen;
    int depth;
    size_t plen;
    char path[JSON_PATH_MAX + 1];
    json_frame_t stack[JSON_MAX_DEPTH];
} json_parser_t;

/* ---- scratch ---------------------------------------------------------------- */

void json_scratch_init(json_scratch_t *s)
{
    s->buf = NULL;
    s->map = NULL;
    s->cap = 0;
    s->max = JSON_DEFAULT_MAX;
}

void json_scratch_free(json_scratch_t *s)
{
    free(s->buf);
    free(s->map);
    s->buf = NULL;
    s->map = NULL;
    s->cap = 0;
}

/* Make room for `need` decoded bytes (and need + 1 map entries).
 * 0 ok, -2 over scratch->max, -3 out of memory. */
static int scratch_reserve(json_scratch_t *s, size_t need)
{
    size_t max = s->max ? s->max : JSON_DEFAULT_MAX;
    if (need > max) return -2;
    if (need <= s->cap && s->buf && s->map) return 0;
    size_t ncap = s->cap ? s->cap : JSON_SCRATCH_MIN;
    while (ncap < need)
        ncap = ncap > max / 2 ? max : ncap * 2;
    if (ncap > max) ncap = max;
    if (ncap < need) ncap = need;

    char *b = realloc(s->buf, ncap);
    if (!b) return -3;
    s->buf = b;
    uint32_t *m = realloc(s->map, (ncap + 1) * sizeof *m);
    if (!m) return -3; /* buf is larger than cap: harmless */
    s->map = m;
    s->cap = ncap;
    return 0;
}

/* ---- plain runs ------------------------------------------------------------- */

/* map[i] = first + i for i < n. */
static void map_fill(uint32_t *map, uint32_t first, size_t n)
{
    size_t i = 0;
#ifdef __SSE2__
    __m128i v = _mm_add_epi32(_mm_set1_epi32((int)first), _mm_setr_epi32(0, 1, 2, 3));
    const __m128i four = _mm_set1_epi32(4);
    for (; i + 4 <= n; i += 4) {
        _mm_storeu_si128((__m128i *)(map + i), v);
        v = _mm_add_epi32(v, four);
    }
#endif
    for (; i < n; i++)
        map[i] = first + (uint32_t)i;
}

/* ---- errors ----------------------------------------------------------------- */

__attribute__((format(printf, 4, 5))) static int fail(json_parser_t *p, int rc, size_t off,
                                                      const char *fmt, ...)
{
    if (p->err && p->errlen) {
        int n = snprintf(p->err, p->errlen, "offset %zu: ", off);
        if (n >= 0 && (size_t)n < p->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return rc;
}

/* ---- path ------------------------------------------------------------------- */

static void path_set(json_parser_t *p, size_t n)
{
    p->plen = n;
    p->path[n] = '\0';
}

static void path_putc(json_parser_t *p, char c)
{
    if (p->plen < JSON_PATH_MAX) p->path[p->plen++] = c;
}

/* After a component was appended: drop a UTF-8 character cut by truncation. */
static void path_finish(json_parser_t *p)
{
    size_t n = p->plen;
    size_t i = n;
    while (i > 0 && n - i < 4 && ((unsigned char)p->path[i - 1] & 0xC0) == 0x80)
        i--;
    if (i > 0) {
        unsigned c = (unsigned char)p->path[i - 1];
        size_t want = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (want > 1 && n - (i - 1) < want) n = i - 1;
    }
    path_set(p, n);
}

static void path_index(json_parser_t *p, const json_frame_t *fr)
{
    char num[24];
    int k = snprintf(num, sizeof num, "%zu", fr->index);
    path_set(p, fr->plen);
    path_putc(p, '/');
    for (int i = 0; i < k; i++)
        path_putc(p, num[i]);
    path_finish(p);
}

static void path_key(json_parser_t *p, const json_frame_t *fr, const char *key, size_t n)
{
    path_set(p, fr->plen);
    path_putc(p, '/');
    for (size_t i = 0; i < n && p->plen < JSON_PATH_MAX; i++) {
        if (key[i] == '~') {
            path_putc(p, '~');
            path_putc(p, '0');
        } else if (key[i] == '/') {
            path_putc(p, '~');
            path_putc(p, '1');
        } else if (key[i] != '\0') {
            path_putc(p, key[i]);
        }
    }
    path_finish(p);
}

/* ---- tokens ----------------------------------------------------------------- */

static void skip_ws(json_parser_t *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->in[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

/* Decode the escape at p->in[*op] (a backslash) into out; *op advanced
 * past it.  Returns bytes produced (1..4), or a negative status after fail(). */
static int decode_escape(json_parser_t *p, size_t *op, unsigned char *out)
{
    char msg[96];
    int k = utf8_json_escape(p->in, p->len, *op, out, op, msg, sizeof msg);
    return k < 0 ? fail(p, -1, *op, "%s", msg) : k;
}

/* p->pos at the opening quote.  Decodes into the scratch, updates the path
 * for keys, calls the callback, and leaves p->pos after the closing quote. */
static int parse_string(json_parser_t *p, bool is_key)
{
    json_scratch_t *sc = p->sc;
    const unsigned char *in = p->in;
    size_t open = p->pos;
    size_t o = open + 1;
    size_t n = 0;
    int rc = scratch_reserve(sc, 1);
    if (rc == -3) return fail(p, -2, open, "out of memory decoding string");
    if (rc) return fail(p, -2, open, "string longer than %zu bytes", sc->max);

    for (;;) {
        if (o >= p->len) return fail(p, -1, o, "unterminated string (opened at offset %zu)", open);
        unsigned char c = in[o];
        if (c == '"') break;
        if (c < 0x20) return fail(p, -1, o, "raw control character 0x%02X in string", c);

        unsigned char tmp[4] = {0};
        size_t tn;
        size_t start = o;
        if (c == '\\') {
            int k = decode_escape(p, &o, tmp);
            if (k < 0) return k;
            tn = (size_t)k;
        } else if (c < 0x80) {
            /* fast path: a run of plain ASCII */
            size_t e = utf8_json_plain_run(in, o, p->len);
            size_t run = e - o;
            rc = scratch_reserve(sc, n + run);
            if (rc == -3) return fail(p, -2, o, "out of memory decoding string");
            if (rc) return fail(p, -2, o, "string longer than %zu bytes", sc->max);
            memcpy(sc->buf + n, in + o, run);
            map_fill(sc->map + n, (uint32_t)o, run);
            n += run;
            o = e;
            continue;
        } else {
            tn = utf8_seq_len(in + o, p->len - o);
            if (!tn) return fail(p, -1, o, "invalid UTF-8 in string (byte 0x%02X)", c);
            memcpy(tmp, in + o, tn);
            o += tn;
        }
        rc = scratch_reserve(sc, n + tn);
        if (rc == -3) return fail(p, -2, start, "out of memory decoding string");
        if (rc) return fail(p, -2, start, "string longer than %zu bytes", sc->max);
        for (size_t i = 0; i < tn; i++) {
            sc->buf[n + i] = (char)tmp[i];
            sc->map[n + i] = (uint32_t)start;
        }
        n += tn;
    }
    sc->map[n] = (uint32_t)o;
    p->pos = o + 1;

    if (is_key) path_key(p, &p->stack[p->depth - 1], sc->buf, n);
    if (!p->cb) return 0;
    json_string_t s = {
        .text = sc->buf,
        .len = n,
        .map = sc->map,
        .raw_start = open + 1,
        .raw_end = o,
        .is_key = is_key,
        .depth = p->depth,
        .path = p->path,
    };
    p->cbrc = p->cb(&s, p->ctx);
    return p->cbrc ? JSON_STOP : 0;
}

static bool is_digit(const json_parser_t *p, size_t o)
{
    return o < p->len && p->in[o] >= '0' && p->in[o] <= '9';
}

static int parse_number(json_parser_t *p)
{
    size_t o = p->pos;
    if (p->in[o] == '-') o++;
    if (!is_digit(p, o)) return fail(p, -1, o, "expected a digit in number");
    if (p->in[o] == '0') {
        o++;
        if (is_digit(p, o)) return fail(p, -1, o - 1, "leading zero in number");
    } else {
        while (is_digit(p, o))
            o++;
    }
    if (o < p->len && p->in[o] == '.') {
        o++;
        if (!is_digit(p, o)) return fail(p, -1, o, "expected a digit after the decimal point");
        while (is_digit(p, o))
            o++;
    }
    if (o < p->len && (p->in[o] == 'e' || p->in[o] == 'E')) {
        o++;
        if (o < p->len && (p->in[o] == '+' || p->in[o] == '-')) o++;
        if (!is_digit(p, o)) return fail(p, -1, o, "expected a digit in the exponent");
        while (is_digit(p, o))
            o++;
    }
    p->pos = o;
    return 0;
}

static int parse_literal(json_parser_t *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->in + p->pos, word, n) != 0)
        return fail(p, -1, p->pos, "invalid literal (expected '%s')", word);
    p->pos += n;
    return 0;
}

static int push(json_parser_t *p, char kind)
{
    if (p->depth >= JSON_MAX_DEPTH)
        return fail(p, -2, p->pos, "nesting deeper than %d", JSON_MAX_DEPTH);
    json_frame_t *fr = &p->stack[p->depth++];
    fr->kind = kind;
    fr->plen = p->plen;
    fr->index = 0;
    p->pos++;
    return 0;
}

static void pop(json_parser_t *p)
{
    p->depth--;
    path_set(p, p->stack[p->depth].plen);
    p->pos++;
}

/* At an object member: key string, ':' — leaves p->pos at the value. */
static int parse_member_key(json_parser_t *p)
{
    skip_ws(p);
    if (p->pos >= p->len) return fail(p, -1, p->pos, "unexpected end of input, expected a key");
    if (p->in[p->pos] != '"') return fail(p, -1, p->pos, "expected '\"' to start an object key");
    int rc = parse_string(p, true);
    if (rc) return rc;
    skip_ws(p);
    if (p->pos >= p->len || p->in[p->pos] != ':')
        return fail(p, -1, p->pos, "expected ':' after object key");
    p->pos++;
    return 0;
}

static int walk(json_parser_t *p)
{
    bool want_value = true;
    int rc;
    for (;;) {
        skip_ws(p);
        if (want_value) {
            if (p->pos >= p->len) {
                if (p->depth == 0) return fail(p, -1, p->pos, "empty document");
                return fail(p, -1, p->pos, "unexpected end of input, expected a value");
            }
            unsigned char c = p->in[p->pos];
            switch (c) {
            case '{':
                if ((rc = push(p, '{'))) return rc;
                skip_ws(p);
                if (p->pos < p->len && p->in[p->pos] == '}') {
                    pop(p);
                    want_value = false;
                } else if ((rc = parse_member_key(p))) {
                    return rc;
                }
                continue;
            case '[':
                if ((rc = push(p, '['))) return rc;
                skip_ws(p);
                if (p->pos < p->len && p->in[p->pos] == ']') {
                    pop(p);
                    want_value = false;
                } else {
                    path_index(p, &p->stack[p->depth - 1]);
                }
                continue;
            case '"':
                rc = parse_string(p, false);
                break;
            case 't':
                rc = parse_literal(p, "true");
                break;
            case 'f':
                rc = parse_literal(p, "false");
                break;
            case 'n':
                rc = parse_literal(p, "null");
                break;
            case '-':
            case '0':
            case '1':
            case '2':
            case '3':
            case '4':
            case '5':
            case '6':
            case '7':
            case '8':
            case '9':
                rc = parse_number(p);
                break;
            default:
                if (c == ']' || c == '}')
                    return fail(p, -1, p->pos, "expected a value before '%c'", c);
                if (c >= 0x20 && c < 0x7F)
                    return fail(p, -1, p->pos, "expected a value, got '%c'", c);
                return fail(p, -1, p->pos, "expected a value, got byte 0x%02X", c);
            }
            if (rc) return rc;
            want_value = false;
            continue;
        }

        /* after a value */
        if (p->depth == 0) {
            if (p->pos != p->len)
                return fail(p, -1, p->pos, "unexpected data after the top-level value");
            return 0;
        }
        json_frame_t *fr = &p->stack[p->depth - 1];
        bool obj = fr->kind == '{';
        if (p->pos >= p->len)
            return fail(p, -1, p->pos, "unexpected end of input in %s", obj ? "object" : "array");
        unsigned char c = p->in[p->pos];
        if (c == ',') {
            p->pos++;
            if (obj) {
                if ((rc = parse_member_key(p))) return rc;
            } else {
                fr->index++;
                path_index(p, fr);
            }
            want_value = true;
        } else if (c == (obj ? '}' : ']')) {
            pop(p);
        } else {
            return fail(p, -1, p->pos,
                        obj ? "expected ',' or '}' after object member"
                            : "expected ',' or ']' after array element");
        }
    }
}

int json_walk(const char *in, size_t len, json_scratch_t *scratch, json_string_cb cb, void *ctx,
              char *err, size_t errlen)
{
    json_parser_t p;
    p.in = (const unsigned char *)in;
    p.len = len;
    p.pos = 0;
    p.sc = scratch;
    p.cb = cb;
    p.ctx = ctx;
    p.cbrc = 0;
    p.err = err;
    p.errlen = errlen;
    p.depth = 0;
    path_set(&p, 0);
    if (err && errlen) err[0] = '\0';

    if (!scratch) return fail(&p, -2, 0, "no scratch buffer");
    if (len > UINT32_MAX) return fail(&p, -2, 0, "document larger than 4 GiB");
    if (!in && len) return fail(&p, -1, 0, "no input");
    if (scratch->max == 0) scratch->max = JSON_DEFAULT_MAX;

    int rc = walk(&p);
    return rc == JSON_STOP ? p.cbrc : rc;
}

/* ---- redaction -------------------------------------------------------------- */

typedef struct redact_span {
    size_t start, end;
    const char *label;
    size_t idx; /* position in the caller's array: ties keep the caller's order */
} redact_span_t;

typedef struct redact_ctx {
    redact_span_t *v;
    size_t n, k;
    char *err;
    size_t errlen;
} redact_ctx_t;

static int span_cmp(const void *a, const void *b)
{
    const redact_span_t *x = a, *y = b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    if (x->idx != y->idx) return x->idx < y->idx ? -1 : 1;
    return 0;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Largest map entry <= x (a character boundary at or before x). */
static size_t floor_boundary(const json_string_t *s, size_t x)
{
    size_t lo = 0, hi = s->len; /* map[lo] <= x holds for lo = 0 */
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        if (s->map[mid] <= x)
            lo = mid;
        else
            hi = mid - 1;
    }
    return s->map[lo];
}

/* Smallest map entry >= x (a character boundary at or after x). */
static size_t ceil_boundary(const json_string_t *s, size_t x)
{
    size_t lo = 0, hi = s->len; /* map[hi] >= x holds for hi = len */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->map[mid] >= x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return s->map[lo];
}

static int redact_cb(const json_string_t *s, void *vctx)
{
    redact_ctx_t *c = vctx;
    while (c->k < c->n && c->v[c->k].start <= s->raw_end) {
        redact_span_t *sp = &c->v[c->k];
        if (sp->start < s->raw_start) {
            set_err(c->err, c->errlen, "offset %zu: span [%zu, %zu) is not inside a string body",
                    sp->start, sp->start, sp->end);
            return 1;
        }
        if (sp->end > s->raw_end) {
            set_err(c->err, c->errlen,
                    "offset %zu: span [%zu, %zu) runs past the end of the string (closing quote "
                    "at offset %zu)",
                    sp->start, sp->start, sp->end, s->raw_end);
            return 1;
        }
        sp->start = floor_boundary(s, sp->start);
        sp->end = ceil_boundary(s, sp->end);
        c->k++;
    }
    return 0;
}

/* JSON-escaped length of label (out == NULL) or write it; -1 if not UTF-8. */
static long label_escape(const char *label, char *out)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)label;
    size_t n = strlen(label), w = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        char e = 0;
        if (c == '"')
            e = '"';
        else if (c == '\\')
            e = '\\';
        else if (c == '\n')
            e = 'n';
        else if (c == '\r')
            e = 'r';
        else if (c == '\t')
            e = 't';
        if (e) {
            if (out) {
                out[w] = '\\';
                out[w + 1] = e;
            }
            w += 2;
            i++;
        } else if (c < 0x20) {
            if (out) {
                memcpy(out + w, "\\u00", 4);
                out[w + 4] = hex[c >> 4];
                out[w + 5] = hex[c & 15];
            }
            w += 6;
            i++;
        } else {
            size_t l = utf8_seq_len(s + i, n - i);
            if (!l) return -1;
            if (out) memcpy(out + w, s + i, l);
            w += l;
            i += l;
        }
    }
    return (long)w;
}

int json_redact(const char *in, size_t len, const json_span_t *spans, size_t nspans, char **out,
                size_t *outlen, char *err, size_t errlen)
{
    static const char default_label[] = "[REDACTED]";
    int ret = -1;
    redact_span_t *v = NULL;
    json_scratch_t sc;
    json_scratch_init(&sc);

    if (err && errlen) err[0] = '\0';
    if (!out || !outlen) {
        set_err(err, errlen, "offset 0: no output pointer");
        return -1;
    }
    *out = NULL;
    *outlen = 0;
    if (nspans && !spans) {
        set_err(err, errlen, "offset 0: no span array");
        return -1;
    }

    if (nspans) {
        if (nspans > SIZE_MAX / sizeof *v) {
            set_err(err, errlen, "offset 0: too many spans");
            return -1;
        }
        v = malloc(nspans * sizeof *v);
        if (!v) {
            set_err(err, errlen, "offset 0: out of memory");
            return -1;
        }
    }
    for (size_t i = 0; i < nspans; i++) {
        v[i].start = spans[i].start;
        v[i].end = spans[i].end;
        v[i].label = spans[i].label ? spans[i].label : default_label;
        v[i].idx = i;
        if (v[i].start > v[i].end || v[i].end > len) {
            set_err(err, errlen, "offset %zu: span %zu [%zu, %zu) is not a range of the input",
                    v[i].start, i, v[i].start, v[i].end);
            goto out_free;
        }
        if (label_escape(v[i].label, NULL) < 0) {
            set_err(err, errlen, "offset %zu: label of span %zu is not valid UTF-8", v[i].start, i);
            goto out_free;
        }
    }
    if (nspans > 1) qsort(v, nspans, sizeof *v, span_cmp);

    redact_ctx_t rc = {.v = v, .n = nspans, .k = 0, .err = err, .errlen = errlen};
    int w = json_walk(in, len, &sc, nspans ? redact_cb : NULL, &rc, err, errlen);
    if (w == 1) goto out_free; /* redact_cb set err */
    if (w != 0) goto out_free; /* json_walk set err */
    if (rc.k < nspans) {
        set_err(err, errlen, "offset %zu: span [%zu, %zu) is not inside a string body",
                v[rc.k].start, v[rc.k].start, v[rc.k].end);
        goto out_free;
    }

    /* Widening is monotone, so v is still sorted by start: merge overlaps
     * (the earlier span's label wins) and drop empty spans. */
    size_t m = 0;
    for (size_t i = 0; i < nspans; i++) {
        if (v[i].start == v[i].end) continue;
        if (m > 0 && v[i].start < v[m - 1].end) {
            if (v[i].end > v[m - 1].end) v[m - 1].end = v[i].end;
            continue;
        }
        v[m++] = v[i];
    }

    size_t total = len;
    for (size_t i = 0; i < m; i++) {
        size_t l = (size_t)label_escape(v[i].label, NULL);
        total -= v[i].end - v[i].start;
        if (total > SIZE_MAX - 1 - l) {
            set_err(err, errlen, "offset %zu: redacted document too large", v[i].start);
            goto out_free;
        }
        total += l;
    }
    char *o = malloc(total + 1);
    if (!o) {
        set_err(err, errlen, "offset 0: out of memory");
        goto out_free;
    }
    size_t w_at = 0, r_at = 0;
    for (size_t i = 0; i < m; i++) {
        memcpy(o + w_at, in + r_at, v[i].start - r_at);
        w_at += v[i].start - r_at;
        w_at += (size_t)label_escape(v[i].label, o + w_at);
        r_at = v[i].end;
    }
    if (len > r_at) memcpy(o + w_at, in + r_at, len - r_at);
    w_at += len - r_at;
    o[w_at] = '\0';
    *out = o;
    *outlen = w_at;
    ret = 0;

out_free:
    free(v);
    json_scratch_free(&sc);
    return ret;
}
