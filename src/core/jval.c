/*
 * jval.c — strict bounded JSON DOM (see jval.h).
 *
 * The parser is iterative: an explicit stack of JVAL_MAX_DEPTH frames holds
 * the open containers, and a "pending" vector holds the members parsed so
 * far for every open container (each frame remembers where its own members
 * start).  When a container closes, its members are copied into the arena as
 * one contiguous array and the container becomes a finished value, pushed as
 * a member of its parent.  Every value is therefore copied once from the
 * pending vector into the arena.
 *
 * Grammar: exactly json_walk's (inspect/json.c): one value with optional
 * space/tab/LF/CR around it; strings of well-formed UTF-8 (RFC 3629: no
 * overlongs, encoded surrogates or > U+10FFFF), no raw bytes < 0x20, the
 * eight one-character escapes and \uHHHH with surrogates paired; numbers
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; true, false, null.
 *
 * Invariants:
 *   - the C stack use is bounded (no recursion; frames ~3 KiB);
 *   - doc->nodes <= max_nodes, and the pending vector never holds more than
 *     max_nodes members;
 *   - the arena holds at most: nodes * sizeof(jval_member_t) for container
 *     member arrays, plus the raw length + 1 of every string and number
 *     (decoded text is never longer than its raw text), plus block slack.
 *
 * Memory: the arena is a singly linked list of malloc'ed blocks owned by the
 * jval_doc_t (itself the first allocation inside its first block) and freed
 * by jval_free().  The pending vector is a private heap buffer freed before
 * jval_parse() returns.  On any error everything is freed and *out is NULL.
 */
#include "core/jval.h"

#include "core/utf8.h"

#include <errno.h>
#include <math.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JVAL_BLOCK_MIN ((size_t)16 << 10)
#define JVAL_BLOCK_MAX ((size_t)1 << 20)
#define JVAL_ALIGN (alignof(max_align_t))

typedef struct jval_member {
    const char *key; /* NULL for array elements */
    size_t key_len;
    struct jval {
        unsigned char type;  /* jval_type_t */
        bool b;              /* JVAL_BOOL */
        bool integer_syntax; /* JVAL_NUMBER without '.', 'e' or 'E' */
        size_t off;          /* input offset of the first byte */
        size_t len;          /* string bytes, number text bytes, members */
        union {
            const char *s;               /* JVAL_STRING text, JVAL_NUMBER source text */
            const struct jval_member *m; /* JVAL_ARRAY, JVAL_OBJECT (NULL when empty) */
        } u;
    } val;
} jval_member_t;

typedef struct jval_block {
    struct jval_block *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
} jval_block_t;

struct jval_doc {
    jval_block_t *blocks; /* newest first; the doc itself lives in the oldest */
    size_t next_block;    /* payload size of the next block */
    size_t nodes;
    jval_t root;
};

typedef struct jval_frame {
    size_t first;    /* index in pending of this container's first member */
    size_t off;      /* offset of '[' or '{' */
    const char *key; /* key under which this container is a member of its parent */
    size_t key_len;
    bool obj;
} jval_frame_t;

typedef struct jval_parser {
    const unsigned char *in;
    size_t len, pos;
    size_t max_nodes;
    jval_doc_t *doc;
    jval_member_t *pending;
    size_t npending, cap_pending;
    const char *key; /* key of the member whose value is being parsed */
    size_t key_len;
    char *err;
    size_t errlen;
    int depth;
    jval_frame_t stack[JVAL_MAX_DEPTH];
} jval_parser_t;

/* ---- errors ----------------------------------------------------------------- */

__attribute__((format(printf, 4, 5))) static int fail(jval_parser_t *p, int rc, size_t off,
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

/* ---- arena ------------------------------------------------------------------ */

static jval_block_t *block_new(size_t cap)
{
    if (cap > SIZE_MAX - sizeof(jval_block_t)) return NULL;
    jval_block_t *b = malloc(sizeof *b + cap);
    if (!b) return NULL;
    b->next = NULL;
    b->used = 0;
    b->cap = cap;
    return b;
}

/* n bytes aligned to JVAL_ALIGN from the doc's arena, or NULL (out of memory). */
static void *arena_alloc(jval_doc_t *doc, size_t n)
{
    if (n > SIZE_MAX - JVAL_ALIGN) return NULL;
    n = (n + JVAL_ALIGN - 1) & ~(JVAL_ALIGN - 1);
    jval_block_t *b = doc->blocks;
    if (b->cap - b->used < n) {
        size_t cap = doc->next_block;
        if (doc->next_block < JVAL_BLOCK_MAX) doc->next_block *= 2;
        if (cap < n) cap = n;
        jval_block_t *nb = block_new(cap);
        if (!nb) return NULL;
        nb->next = doc->blocks;
        doc->blocks = nb;
        b = nb;
    }
    void *r = b->data + b->used;
    b->used += n;
    return r;
}

static jval_doc_t *doc_new(void)
{
    jval_block_t *b = block_new(JVAL_BLOCK_MIN);
    if (!b) return NULL;
    jval_doc_t *doc = (jval_doc_t *)(void *)b->data;
    b->used = (sizeof *doc + JVAL_ALIGN - 1) & ~(JVAL_ALIGN - 1);
    doc->blocks = b;
    doc->next_block = JVAL_BLOCK_MIN * 2;
    doc->nodes = 0;
    memset(&doc->root, 0, sizeof doc->root);
    return doc;
}

void jval_free(jval_doc_t *doc)
{
    if (!doc) return;
    jval_block_t *b = doc->blocks; /* doc lives in the last block of the list */
    while (b) {
        jval_block_t *next = b->next;
        free(b);
        b = next;
    }
}

/* ---- tokens ----------------------------------------------------------------- */

static void skip_ws(jval_parser_t *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->in[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

/* The escape at p->in[*op] (a backslash) → out; *op advanced past it.
 * Bytes produced (1..4), or a negative status after fail(). */
static int decode_escape(jval_parser_t *p, size_t *op, unsigned char *out)
{
    char msg[96];
    int k = utf8_json_escape(p->in, p->len, *op, out, op, msg, sizeof msg);
    return k < 0 ? fail(p, JVAL_EMALFORMED, *op, "%s", msg) : k;
}

/* p->pos at the opening quote: decode the string into the arena; *s and *n
 * receive it; p->pos is left after the closing quote. */
static int parse_string(jval_parser_t *p, const char **s, size_t *n)
{
    const unsigned char *in = p->in;
    size_t open = p->pos;

    /* Upper bound of the decoded size: the raw body up to the first quote
     * that is not the second byte of an escape. */
    size_t e = open + 1;
    for (;;) {
        e = utf8_json_plain_run(in, e, p->len);
        if (e >= p->len || in[e] == '"') break;
        e += in[e] == '\\' ? 2 : 1;
    }
    if (e > p->len) e = p->len;
    unsigned char *out = arena_alloc(p->doc, e - open);
    if (!out) return fail(p, JVAL_ELIMIT, open, "out of memory decoding string");

    size_t o = open + 1, w = 0;
    for (;;) {
        if (o >= p->len)
            return fail(p, JVAL_EMALFORMED, o, "unterminated string (opened at offset %zu)", open);
        size_t r = utf8_json_plain_run(in, o, p->len);
        if (r > o) {
            memcpy(out + w, in + o, r - o);
            w += r - o;
            o = r;
            continue;
        }
        unsigned char c = in[o];
        if (c == '"') break;
        if (c < 0x20)
            return fail(p, JVAL_EMALFORMED, o, "raw control character 0x%02X in string", c);
        if (c == '\\') {
            int k = decode_escape(p, &o, out + w);
            if (k < 0) return k;
            w += (size_t)k;
        } else if (c < 0x80) {
            out[w++] = c;
            o++;
        } else {
            size_t l = utf8_seq_len(in + o, p->len - o);
            if (!l) return fail(p, JVAL_EMALFORMED, o, "invalid UTF-8 in string (byte 0x%02X)", c);
            memcpy(out + w, in + o, l);
            w += l;
            o += l;
        }
    }
    out[w] = '\0';
    *s = (const char *)out;
    *n = w;
    p->pos = o + 1;
    return JVAL_OK;
}

static bool is_digit(const jval_parser_t *p, size_t o)
{
    return o < p->len && p->in[o] >= '0' && p->in[o] <= '9';
}

static int parse_number(jval_parser_t *p, jval_t *v)
{
    size_t start = p->pos, o = p->pos;
    bool integer = true;
    if (p->in[o] == '-') o++;
    if (!is_digit(p, o)) return fail(p, JVAL_EMALFORMED, o, "expected a digit in number");
    if (p->in[o] == '0') {
        o++;
        if (is_digit(p, o)) return fail(p, JVAL_EMALFORMED, o - 1, "leading zero in number");
    } else {
        while (is_digit(p, o))
            o++;
    }
    if (o < p->len && p->in[o] == '.') {
        integer = false;
        o++;
        if (!is_digit(p, o))
            return fail(p, JVAL_EMALFORMED, o, "expected a digit after the decimal point");
        while (is_digit(p, o))
            o++;
    }
    if (o < p->len && (p->in[o] == 'e' || p->in[o] == 'E')) {
        integer = false;
        o++;
        if (o < p->len && (p->in[o] == '+' || p->in[o] == '-')) o++;
        if (!is_digit(p, o)) return fail(p, JVAL_EMALFORMED, o, "expected a digit in the exponent");
        while (is_digit(p, o))
            o++;
    }
    char *text = arena_alloc(p->doc, o - start + 1);
    if (!text) return fail(p, JVAL_ELIMIT, start, "out of memory");
    memcpy(text, p->in + start, o - start);
    text[o - start] = '\0';
    v->type = JVAL_NUMBER;
    v->integer_syntax = integer;
    v->u.s = text;
    v->len = o - start;
    p->pos = o;
    return JVAL_OK;
}

static int parse_literal(jval_parser_t *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->in + p->pos, word, n) != 0)
        return fail(p, JVAL_EMALFORMED, p->pos, "invalid literal (expected '%s')", word);
    p->pos += n;
    return JVAL_OK;
}

/* ---- tree building ---------------------------------------------------------- */

/* Count one more value against the limit. */
static int count_node(jval_parser_t *p, size_t off)
{
    if (p->doc->nodes >= p->max_nodes)
        return fail(p, JVAL_ELIMIT, off, "more than %zu values", p->max_nodes);
    p->doc->nodes++;
    return JVAL_OK;
}

/* A finished value: the root, or the next member of the innermost container. */
static int emit(jval_parser_t *p, const jval_t *v)
{
    if (p->depth == 0) {
        p->doc->root = *v;
        return JVAL_OK;
    }
    if (p->npending == p->cap_pending) {
        size_t ncap = p->cap_pending ? p->cap_pending * 2 : 16;
        if (ncap > p->max_nodes) ncap = p->max_nodes; /* npending < nodes <= max_nodes */
        jval_member_t *np = realloc(p->pending, ncap * sizeof *np);
        if (!np) return fail(p, JVAL_ELIMIT, v->off, "out of memory");
        p->pending = np;
        p->cap_pending = ncap;
    }
    jval_member_t *m = &p->pending[p->npending++];
    m->key = p->stack[p->depth - 1].obj ? p->key : NULL;
    m->key_len = p->stack[p->depth - 1].obj ? p->key_len : 0;
    m->val = *v;
    return JVAL_OK;
}

static int open_container(jval_parser_t *p, bool obj)
{
    if (p->depth >= JVAL_MAX_DEPTH)
        return fail(p, JVAL_ELIMIT, p->pos, "nesting deeper than %d", JVAL_MAX_DEPTH);
    int rc = count_node(p, p->pos);
    if (rc) return rc;
    jval_frame_t *fr = &p->stack[p->depth++];
    fr->first = p->npending;
    fr->off = p->pos;
    fr->key = p->key;
    fr->key_len = p->key_len;
    fr->obj = obj;
    p->pos++;
    return JVAL_OK;
}

/* At the closing bracket: move the members into the arena and emit the
 * container as a value of its parent. */
static int close_container(jval_parser_t *p)
{
    jval_frame_t *fr = &p->stack[p->depth - 1];
    size_t n = p->npending - fr->first;
    jval_t v;
    memset(&v, 0, sizeof v);
    v.type = fr->obj ? JVAL_OBJECT : JVAL_ARRAY;
    v.off = fr->off;
    v.len = n;
    if (n) {
        jval_member_t *m = arena_alloc(p->doc, n * sizeof *m);
        if (!m) return fail(p, JVAL_ELIMIT, p->pos, "out of memory");
        memcpy(m, p->pending + fr->first, n * sizeof *m);
        v.u.m = m;
    }
    p->npending = fr->first;
    p->key = fr->key;
    p->key_len = fr->key_len;
    p->depth--;
    p->pos++;
    return emit(p, &v);
}

/* At an object member: key string and ':'; leaves p->pos at the value. */
static int parse_member_key(jval_parser_t *p)
{
    skip_ws(p);
    if (p->pos >= p->len)
        return fail(p, JVAL_EMALFORMED, p->pos, "unexpected end of input, expected a key");
    if (p->in[p->pos] != '"')
        return fail(p, JVAL_EMALFORMED, p->pos, "expected '\"' to start an object key");
    int rc = parse_string(p, &p->key, &p->key_len);
    if (rc) return rc;
    skip_ws(p);
    if (p->pos >= p->len || p->in[p->pos] != ':')
        return fail(p, JVAL_EMALFORMED, p->pos, "expected ':' after object key");
    p->pos++;
    return JVAL_OK;
}

/* A scalar at p->pos (c is its first byte) → emitted. */
static int parse_scalar(jval_parser_t *p, unsigned char c)
{
    jval_t v;
    memset(&v, 0, sizeof v);
    v.off = p->pos;
    int rc = count_node(p, p->pos);
    if (rc) return rc;
    switch (c) {
    case '"':
        v.type = JVAL_STRING;
        rc = parse_string(p, &v.u.s, &v.len);
        break;
    case 't':
        v.type = JVAL_BOOL;
        v.b = true;
        rc = parse_literal(p, "true");
        break;
    case 'f':
        v.type = JVAL_BOOL;
        rc = parse_literal(p, "false");
        break;
    case 'n':
        v.type = JVAL_NULL;
        rc = parse_literal(p, "null");
        break;
    default:
        if (c == '-' || (c >= '0' && c <= '9')) {
            rc = parse_number(p, &v);
            break;
        }
        if (c == ']' || c == '}')
            return fail(p, JVAL_EMALFORMED, p->pos, "expected a value before '%c'", c);
        if (c >= 0x20 && c < 0x7F)
            return fail(p, JVAL_EMALFORMED, p->pos, "expected a value, got '%c'", c);
        return fail(p, JVAL_EMALFORMED, p->pos, "expected a value, got byte 0x%02X", c);
    }
    if (rc) return rc;
    return emit(p, &v);
}

static int parse_doc(jval_parser_t *p)
{
    bool want_value = true;
    int rc;
    for (;;) {
        skip_ws(p);
        if (want_value) {
            if (p->pos >= p->len) {
                if (p->depth == 0) return fail(p, JVAL_EMALFORMED, p->pos, "empty document");
                return fail(p, JVAL_EMALFORMED, p->pos,
                            "unexpected end of input, expected a value");
            }
            unsigned char c = p->in[p->pos];
            if (c == '{' || c == '[') {
                if ((rc = open_container(p, c == '{'))) return rc;
                skip_ws(p);
                if (p->pos < p->len && p->in[p->pos] == (c == '{' ? '}' : ']')) {
                    if ((rc = close_container(p))) return rc;
                    want_value = false;
                } else if (c == '{' && (rc = parse_member_key(p))) {
                    return rc;
                }
                continue;
            }
            if ((rc = parse_scalar(p, c))) return rc;
            want_value = false;
            continue;
        }

        /* after a value */
        if (p->depth == 0) {
            if (p->pos != p->len)
                return fail(p, JVAL_EMALFORMED, p->pos,
                            "unexpected data after the top-level value");
            return JVAL_OK;
        }
        bool obj = p->stack[p->depth - 1].obj;
        if (p->pos >= p->len)
            return fail(p, JVAL_EMALFORMED, p->pos, "unexpected end of input in %s",
                        obj ? "object" : "array");
        unsigned char c = p->in[p->pos];
        if (c == ',') {
            p->pos++;
            if (obj && (rc = parse_member_key(p))) return rc;
            want_value = true;
        } else if (c == (obj ? '}' : ']')) {
            if ((rc = close_container(p))) return rc;
        } else {
            return fail(p, JVAL_EMALFORMED, p->pos,
                        obj ? "expected ',' or '}' after object member"
                            : "expected ',' or ']' after array element");
        }
    }
}

int jval_parse(const char *in, size_t len, size_t max_nodes, jval_doc_t **out, char *err,
               size_t errlen)
{
    jval_parser_t p;
    memset(&p, 0, sizeof p);
    p.in = (const unsigned char *)in;
    p.len = len;
    p.max_nodes = max_nodes ? max_nodes : JVAL_DEFAULT_MAX_NODES;
    p.err = err;
    p.errlen = errlen;
    if (err && errlen) err[0] = '\0';
    if (!out) return fail(&p, JVAL_EMALFORMED, 0, "no output pointer");
    *out = NULL;
    if (!in && len) return fail(&p, JVAL_EMALFORMED, 0, "no input");
    if (p.max_nodes > SIZE_MAX / sizeof(jval_member_t))
        p.max_nodes = SIZE_MAX / sizeof(jval_member_t);

    int rc;
    p.doc = doc_new();
    if (!p.doc) return fail(&p, JVAL_ELIMIT, 0, "out of memory");
    rc = parse_doc(&p);
    if (rc) goto out_fail;
    free(p.pending);
    *out = p.doc;
    return JVAL_OK;

out_fail:
    free(p.pending);
    jval_free(p.doc);
    return rc;
}

/* ---- accessors -------------------------------------------------------------- */

const jval_t *jval_root(const jval_doc_t *doc)
{
    return doc ? &doc->root : NULL;
}

size_t jval_doc_nodes(const jval_doc_t *doc)
{
    return doc ? doc->nodes : 0;
}

jval_type_t jval_type(const jval_t *v)
{
    return v ? (jval_type_t)v->type : JVAL_NONE;
}

const char *jval_type_name(jval_type_t t)
{
    switch (t) {
    case JVAL_NULL:
        return "null";
    case JVAL_BOOL:
        return "boolean";
    case JVAL_NUMBER:
        return "number";
    case JVAL_STRING:
        return "string";
    case JVAL_ARRAY:
        return "array";
    case JVAL_OBJECT:
        return "object";
    case JVAL_NONE:
        break;
    }
    return "none";
}

size_t jval_offset(const jval_t *v)
{
    return v ? v->off : 0;
}

size_t jval_len(const jval_t *v)
{
    if (!v) return 0;
    if (v->type == JVAL_STRING || v->type == JVAL_ARRAY || v->type == JVAL_OBJECT) return v->len;
    return 0;
}

const jval_t *jval_at(const jval_t *arr, size_t i)
{
    if (!arr || arr->type != JVAL_ARRAY || i >= arr->len) return NULL;
    return &arr->u.m[i].val;
}

const jval_t *jval_getn(const jval_t *obj, const char *key, size_t keylen)
{
    if (!obj || obj->type != JVAL_OBJECT || (!key && keylen)) return NULL;
    for (size_t i = obj->len; i > 0; i--) {
        const jval_member_t *m = &obj->u.m[i - 1];
        if (m->key_len == keylen && (keylen == 0 || memcmp(m->key, key, keylen) == 0))
            return &m->val;
    }
    return NULL;
}

const jval_t *jval_get(const jval_t *obj, const char *key)
{
    return key ? jval_getn(obj, key, strlen(key)) : NULL;
}

const jval_t *jval_member(const jval_t *obj, size_t i, const char **key, size_t *keylen)
{
    if (!obj || obj->type != JVAL_OBJECT || i >= obj->len) return NULL;
    if (key) *key = obj->u.m[i].key;
    if (keylen) *keylen = obj->u.m[i].key_len;
    return &obj->u.m[i].val;
}

const char *jval_str(const jval_t *v, size_t *len)
{
    if (!v || v->type != JVAL_STRING) return NULL;
    if (len) *len = v->len;
    return v->u.s;
}

bool jval_str_eq(const jval_t *v, const char *s)
{
    if (!v || v->type != JVAL_STRING || !s) return false;
    size_t n = strlen(s);
    return v->len == n && memcmp(v->u.s, s, n) == 0;
}

int jval_number(const jval_t *v, double *out)
{
    if (!v || v->type != JVAL_NUMBER) return JVAL_EMALFORMED;
    errno = 0;
    double d = strtod(v->u.s, NULL);
    int rc = (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL)) ? JVAL_ELIMIT : JVAL_OK;
    if (out) *out = d;
    return rc;
}

int jval_int64(const jval_t *v, int64_t *out)
{
    if (!v || v->type != JVAL_NUMBER) return JVAL_EMALFORMED;
    const char *s = v->u.s;
    if (v->integer_syntax) {
        bool neg = s[0] == '-';
        /* accumulate as a negative number: |INT64_MIN| > INT64_MAX */
        int64_t acc = 0;
        for (const char *c = s + neg; *c; c++) {
            int d = *c - '0';
            if (acc < (INT64_MIN + d) / 10) return JVAL_ELIMIT;
            acc = acc * 10 - d;
        }
        if (!neg) {
            if (acc == INT64_MIN) return JVAL_ELIMIT;
            acc = -acc;
        }
        if (out) *out = acc;
        return JVAL_OK;
    }
    double d;
    int rc = jval_number(v, &d);
    if (rc) return rc;
    if (d != floor(d)) return JVAL_EMALFORMED;
    /* [-2^63, 2^63) are exactly representable bounds */
    if (d < -9223372036854775808.0 || d >= 9223372036854775808.0) return JVAL_ELIMIT;
    if (out) *out = (int64_t)d;
    return JVAL_OK;
}

bool jval_bool(const jval_t *v, bool *out)
{
    if (!v || v->type != JVAL_BOOL) return false;
    if (out) *out = v->b;
    return true;
}

bool jval_is_null(const jval_t *v)
{
    return v && v->type == JVAL_NULL;
}

/* Decimal index of seg[0..n) (digits only, no sign, <= 19 digits). */
static bool parse_index(const char *seg, size_t n, size_t *out)
{
    if (n == 0 || n > 19) return false;
    size_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (seg[i] < '0' || seg[i] > '9') return false;
        size_t d = (size_t)(seg[i] - '0');
        if (v > (SIZE_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

const jval_t *jval_path(const jval_t *v, const char *path)
{
    if (!v || !path) return NULL;
    if (!*path) return v;
    const char *seg = path;
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t n = dot ? (size_t)(dot - seg) : strlen(seg);
        if (v->type == JVAL_ARRAY) {
            size_t idx;
            if (!parse_index(seg, n, &idx)) return NULL;
            v = jval_at(v, idx);
        } else {
            v = jval_getn(v, seg, n);
        }
        if (!v) return NULL;
        if (!dot) return v;
        seg = dot + 1;
    }
}
