/*
 * inspect — the secret / PII / restricted-path detection engine.
 *
 * Rules (YAML files in rules/, see doc/rules.md) are compiled once into an immutable
 * inspect_engine_t: keywords, prefilters and prefilter-mode regexes go into
 * one Vectorscan database, numeric and anchored rules into one vector pass
 * (gate.h) — together a superset of the true matches, found in two passes —
 * and only the windows around candidates are matched exactly with PCRE2 (JIT),
 * then filtered by validator, entropy, allowlist and the shared noise
 * filters (placeholders, documentation examples, hashes, UUIDs).
 *
 * Threads: an engine is shared read-only; each thread scans with its own
 * inspect_scratch_t.  Findings are delivered to a callback, sorted by
 * position; the matched text is never stored in a finding (only a
 * fingerprint and a masked preview), so a finding can be logged as is.
 */
#ifndef CDEGUARD_INSPECT_INSPECT_H
#define CDEGUARD_INSPECT_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { INSPECT_SECRET = 0, INSPECT_PII = 1, INSPECT_PATH = 2 } inspect_category_t;
typedef enum { INSPECT_ALERT = 0, INSPECT_REDACT = 1, INSPECT_BLOCK = 2 } inspect_action_t;

#define INSPECT_PREVIEW_MAX 48

typedef struct inspect_finding {
    int rule;            /* index, see inspect_rule_id() */
    const char *rule_id; /* owned by the engine */
    inspect_category_t category;
    inspect_action_t action;
    uint64_t start, end;   /* byte range of the secret in the input (raw offsets) */
    uint32_t line, column; /* 1-based; column counts bytes */
    char fingerprint[33];  /* hex of the first 16 bytes of SHA-256(rule id, 0, secret) */
    char preview[INSPECT_PREVIEW_MAX]; /* masked, e.g. "ghp_********…(40)" */
} inspect_finding_t;

/* Return non-zero to stop the scan (the scan function returns that value). */
typedef int (*inspect_cb)(const inspect_finding_t *f, void *ctx);

typedef struct inspect_engine inspect_engine_t;
typedef struct inspect_scratch inspect_scratch_t;

/* Load every rules file (NULL-terminated list of paths) and compile.
 * 0 ok, -1 with "FILE:LINE: message" in err. */
int inspect_engine_load(const char *const *paths, inspect_engine_t **out, char *err, size_t errlen);
/* Rules held in memory, e.g. the ones built into the binary. */
typedef struct inspect_rules_blob {
    const char *name; /* for messages, e.g. "rules/secrets-a.yaml"; NULL ends a list */
    const char *data;
    size_t len;
} inspect_rules_blob_t;

/* The built-in rules (rules/ of the source tree, embedded at build time). */
extern const inspect_rules_blob_t inspect_builtin_rules[];

/* Blobs first, then files; a later rule with the same id replaces an
 * earlier one (how users override built-in rules). */
int inspect_engine_load_with(const inspect_rules_blob_t *blobs, const char *const *paths,
                             inspect_engine_t **out, char *err, size_t errlen);
void inspect_engine_free(inspect_engine_t *e);
/* Compile rule databases in a forked child process from now on (the
 * daemon: the compiler's transient memory then never counts against the
 * long-running process).  Off by default. */
void inspect_compile_in_child(bool on);
size_t inspect_rule_count(const inspect_engine_t *e);
const char *inspect_rule_id(const inspect_engine_t *e, int rule);
const char *inspect_rule_description(const inspect_engine_t *e, int rule); /* "" if none */
inspect_category_t inspect_rule_category(const inspect_engine_t *e, int rule);
/* Enable or disable a rule by id, before the engine is shared: this
 * recompiles the database, so scratches made earlier must be re-made.
 * -1 unknown id or compile failure. */
int inspect_rule_enable(inspect_engine_t *e, const char *id, bool on);

inspect_scratch_t *inspect_scratch_new(const inspect_engine_t *e);
void inspect_scratch_free(inspect_scratch_t *s);

/* Plain text (at most 4 GiB - 1 per call, -1 beyond: use a stream). */
int inspect_scan_text(const inspect_engine_t *e, inspect_scratch_t *s, const char *data, size_t len,
                      inspect_cb cb, void *ctx);

/* A JSON document: every string (keys and values) is scanned decoded
 * (escapes resolved), and findings are reported in raw byte offsets of the
 * document, widened to whole escape sequences.  A value of at most 4 KiB is
 * scanned behind its key, as `"key": "value"`, so rules that need the key
 * ("password": "...") match; only the value's bytes can be a finding.  String values under keys
 * that name files ("path", "file", "filename", "file_path", "filepath",
 * "name" of an attachment) are also checked against the path rules.
 * -2 when `data` is not valid JSON (message in err). */
int inspect_scan_json(const inspect_engine_t *e, inspect_scratch_t *s, const char *data, size_t len,
                      inspect_cb cb, void *ctx, char *err, size_t errlen);

/* Payloads (what an agent sends out) rather than files: with
 * INSPECT_SCAN_TEXT_PATHS, file paths that the text mentions — `cat .env`,
 * "==> id_rsa <==" headers, code-fence titles, {"file_path": "…"} tool-call
 * arguments inside a string, see textpath.h — are also checked against the
 * path rules; a finding's range is the path's.  In JSON this applies to
 * every string value.  Findings are delivered sorted by position. */
#define INSPECT_SCAN_TEXT_PATHS 1u
int inspect_scan_text_flags(const inspect_engine_t *e, inspect_scratch_t *s, const char *data,
                            size_t len, unsigned flags, inspect_cb cb, void *ctx);
int inspect_scan_json_flags(const inspect_engine_t *e, inspect_scratch_t *s, const char *data,
                            size_t len, unsigned flags, inspect_cb cb, void *ctx, char *err,
                            size_t errlen);

/* Streams given in chunks: a secret split across chunks is still found.
 * Memory is bounded (INSPECT_STREAM_CARRY + INSPECT_STREAM_SLICE bytes)
 * whatever the chunk sizes; offsets, lines and columns are those of the
 * whole stream.  Findings are delivered at most INSPECT_STREAM_HOLD bytes
 * after they end, and all remaining ones at inspect_stream_finish(). */
#define INSPECT_STREAM_CARRY (16 * 1024)
#define INSPECT_STREAM_SLICE (64 * 1024)
#define INSPECT_STREAM_HOLD 256

typedef struct inspect_stream inspect_stream_t;
inspect_stream_t *inspect_stream_new(const inspect_engine_t *e, inspect_scratch_t *s, inspect_cb cb,
                                     void *ctx);
int inspect_stream_feed(inspect_stream_t *st, const char *data, size_t len);
int inspect_stream_finish(inspect_stream_t *st);
void inspect_stream_free(inspect_stream_t *st);

/* A file path (CLI, attachment names): path rules only. */
int inspect_check_path(const inspect_engine_t *e, const char *path, size_t len, inspect_cb cb,
                       void *ctx);

const char *inspect_category_name(inspect_category_t c);
const char *inspect_action_name(inspect_action_t a);

#endif
