/*
 * verdict — what happens to a payload, given the findings of a scan.
 *
 * Each finding gets an action (block, redact or alert): the one a resolver
 * returns (the cdeguard config's inspect.actions / inspect.rule_actions, see
 * config_inspect_action()), or the finding's own.  The verdict is the
 * highest action seen (block > redact > alert; a clean payload is
 * INSPECT_VERDICT_CLEAN), a count per rule, and the list of byte ranges to
 * redact.  inspect_redact_text() and inspect_redact_json() then build the
 * payload that may leave: every range replaced by "[REDACTED:<rule-id>]".
 *
 * Invariants:
 *   - alert findings are only counted: their bytes are never redacted;
 *   - redact AND block findings are redacted (a blocked payload is not sent,
 *     but a redacted copy, e.g. for an audit sample, must not carry the
 *     secret that blocked it);
 *   - overlapping and adjacent ranges are merged before replacing, the label
 *     is the rule of the earliest (then longest) range, so no byte of any
 *     secret survives and no label is cut;
 *   - JSON output is produced by json_redact() (src/inspect/json.h): ranges
 *     are widened to whole escape sequences and the result is valid JSON.
 *
 * Ownership: an inspect_verdict_t owns its arrays (inspect_verdict_free);
 * rule ids are borrowed from the engine that produced the findings, which
 * must outlive the verdict.  Redacted payloads are malloc'ed and owned by
 * the caller.  Sizes are bounded: at most INSPECT_VERDICT_MAX_SPANS ranges
 * (more is an error, -1, and the caller must block rather than send).
 *
 * Return convention: 0 ok, -1 error (out of memory, a range outside the
 * input, too many ranges; for JSON, input that is not valid JSON).
 */
#ifndef CDEGUARD_INSPECT_VERDICT_H
#define CDEGUARD_INSPECT_VERDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inspect/inspect.h"

#define INSPECT_VERDICT_MAX_SPANS 65536
/* No finding at all (distinct from "alert": something was seen). */
#define INSPECT_VERDICT_CLEAN (-1)

/* The action for a finding; ctx is the resolver's (e.g. a config_t). */
typedef inspect_action_t (*inspect_action_fn)(const void *ctx, const inspect_finding_t *f);

typedef struct inspect_verdict_rule {
    int rule;            /* engine index */
    const char *rule_id; /* borrowed from the engine */
    inspect_category_t category;
    inspect_action_t action; /* highest action given to this rule's findings */
    size_t count;
} inspect_verdict_rule_t;

typedef struct inspect_verdict_span {
    uint64_t start, end; /* raw byte range in the payload */
    const char *rule_id; /* label: [REDACTED:<rule_id>] */
    size_t seq;          /* order added: among equal ranges the first gives the label */
} inspect_verdict_span_t;

typedef struct inspect_verdict {
    int action; /* INSPECT_VERDICT_CLEAN or the highest inspect_action_t */
    size_t nfindings;
    inspect_verdict_rule_t *rules; /* one entry per rule seen, in order of first finding */
    size_t nrules, caprules;
    inspect_verdict_span_t *spans; /* to redact, in the order added (merged when redacting) */
    size_t nspans, capspans;
    inspect_action_fn resolve; /* NULL: each finding's own action */
    const void *resolve_ctx;
    bool failed; /* an add failed (out of memory / too many spans): block */
} inspect_verdict_t;

void inspect_verdict_init(inspect_verdict_t *v, inspect_action_fn resolve, const void *ctx);
void inspect_verdict_free(inspect_verdict_t *v);

/* Record one finding; returns the action it was given, or -1 (and sets
 * v->failed, and v->action to block) when it cannot be recorded. */
int inspect_verdict_add(inspect_verdict_t *v, const inspect_finding_t *f);
/* inspect_cb adapter: ctx is an inspect_verdict_t; stops the scan (returns
 * -1) only when a finding cannot be recorded. */
int inspect_verdict_on_finding(const inspect_finding_t *f, void *ctx);

/* "clean", "alert", "redact" or "block". */
const char *inspect_verdict_name(int action);

/* The redaction ranges, sorted and merged (overlapping or adjacent ranges
 * become one; label of the earliest, then longest).  *out is malloc'ed
 * (NULL when there is none).  0 ok, -1 out of memory. */
int inspect_verdict_spans(const inspect_verdict_t *v, inspect_verdict_span_t **out, size_t *n);

/* Plain text: each merged range replaced by "[REDACTED:<rule-id>]". */
int inspect_redact_text(const inspect_verdict_t *v, const char *in, size_t len, char **out,
                        size_t *outlen);
/* A JSON document (the one the findings came from, inspect_scan_json):
 * the same through json_redact(), so the output stays valid JSON. */
int inspect_redact_json(const inspect_verdict_t *v, const char *in, size_t len, char **out,
                        size_t *outlen, char *err, size_t errlen);

#endif
