/*
 * jval — a small, strict, bounded JSON DOM.
 *
 * jval_parse() reads one RFC 8259 document (exactly the grammar that
 * inspect/json's json_walk accepts: no BOM, comments, trailing commas,
 * NaN/Infinity or leading zeros; strings must be well-formed UTF-8 with
 * paired \u surrogates; nesting <= JVAL_MAX_DEPTH containers) into a tree
 * that lives in an arena owned by a jval_doc_t.  The number of values
 * (every null, boolean, number, string, array and object counts as one node;
 * object keys do not) is bounded by the caller.
 *
 * Invariants of a parsed tree:
 *   - strings and keys are decoded UTF-8, NUL-terminated for convenience but
 *     measured by their length (a \u0000 escape yields an embedded NUL);
 *   - arrays and objects keep document order; an object may hold duplicate
 *     keys (RFC 8259 allows it) and lookup returns the LAST one, as
 *     JavaScript's JSON.parse and Python's json do;
 *   - numbers keep their source text, so jval_int64() is exact for any
 *     integer that fits in int64_t, whatever its size as a double.
 *
 * Memory: everything (nodes, decoded strings, number texts) is in the
 * document's arena: one jval_free() releases it.  A jval_t pointer is valid
 * until then.  Nothing refers back to the input buffer, which the caller may
 * free right after jval_parse().
 *
 * Accessors are NULL-safe: a NULL or wrong-typed argument yields NULL, 0,
 * JVAL_NONE or an error code, so lookups chain without checks:
 *   jval_int64(jval_get(jval_get(root, "usage"), "prompt_tokens"), &n)
 * Numbers are converted with strtod(), which follows LC_NUMERIC: cdeguard
 * never calls setlocale(), so that is the "C" locale.
 */
#ifndef CDEGUARD_CORE_JVAL_H
#define CDEGUARD_CORE_JVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JVAL_MAX_DEPTH 128
#define JVAL_DEFAULT_MAX_NODES ((size_t)1 << 20)

/* Return codes of jval_parse() and the number accessors. */
#define JVAL_OK 0
#define JVAL_EMALFORMED (-1) /* not RFC 8259 JSON / not the requested type */
#define JVAL_ELIMIT (-2)     /* depth, node limit, or out of memory / out of range */

typedef enum jval_type {
    JVAL_NONE = 0, /* no value (a NULL pointer: missing member, bad index) */
    JVAL_NULL,
    JVAL_BOOL,
    JVAL_NUMBER,
    JVAL_STRING,
    JVAL_ARRAY,
    JVAL_OBJECT,
} jval_type_t;

typedef struct jval jval_t;
typedef struct jval_doc jval_doc_t;

/* Parse in[0..len) (need not be NUL-terminated).  max_nodes 0 means
 * JVAL_DEFAULT_MAX_NODES.  Returns JVAL_OK with *out set (free it with
 * jval_free), JVAL_EMALFORMED or JVAL_ELIMIT with *out = NULL and
 * err = "offset N: what" (N a byte offset in the input). */
int jval_parse(const char *in, size_t len, size_t max_nodes, jval_doc_t **out, char *err,
               size_t errlen);
void jval_free(jval_doc_t *doc);

const jval_t *jval_root(const jval_doc_t *doc);
size_t jval_doc_nodes(const jval_doc_t *doc); /* values in the tree */

jval_type_t jval_type(const jval_t *v);
const char *jval_type_name(jval_type_t t); /* "null", "object", ... ("none" for JVAL_NONE) */
size_t jval_offset(const jval_t *v);       /* input offset of the value's first byte */

/* Elements of an array, members of an object, bytes of a string; else 0. */
size_t jval_len(const jval_t *v);

/* Array element i, or NULL. */
const jval_t *jval_at(const jval_t *arr, size_t i);

/* Object member by decoded key (the last one if the key repeats), or NULL. */
const jval_t *jval_get(const jval_t *obj, const char *key);
const jval_t *jval_getn(const jval_t *obj, const char *key, size_t keylen);

/* Object member i in document order: its value, and its key in *key and *keylen
 * (either may be NULL).  NULL if out of range or not an object. */
const jval_t *jval_member(const jval_t *obj, size_t i, const char **key, size_t *keylen);

/* Decoded string (NUL-terminated; *len, if given, excludes the NUL), or NULL. */
const char *jval_str(const jval_t *v, size_t *len);

/* True if v is a string equal to the NUL-terminated s. */
bool jval_str_eq(const jval_t *v, const char *s);

/* Number as a double: JVAL_OK, JVAL_EMALFORMED (not a number) or JVAL_ELIMIT
 * (magnitude beyond double: *out is +-HUGE_VAL; underflow gives 0 and OK). */
int jval_number(const jval_t *v, double *out);

/* Number as an int64_t: JVAL_OK; JVAL_EMALFORMED if v is not a number or
 * not integral ("1.5"; "1.0" and "1e3" are integral); JVAL_ELIMIT if it is
 * outside [INT64_MIN, INT64_MAX].  *out is written only on JVAL_OK. */
int jval_int64(const jval_t *v, int64_t *out);

/* *out = the boolean; false (and *out untouched) if v is not a boolean. */
bool jval_bool(const jval_t *v, bool *out);
bool jval_is_null(const jval_t *v);

/* Walk a dot-separated path from v: each segment is an object key, or, when
 * the current value is an array, a decimal index ("choices.0.delta").  ""
 * is v itself.  Keys that contain '.' cannot be named here: use jval_getn.
 * NULL if any step is missing or of the wrong type. */
const jval_t *jval_path(const jval_t *v, const char *path);

#endif
