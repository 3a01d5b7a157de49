/*
 * gate — one vector pass that finds numeric phrases and anchor bytes.
 *
 * Rules for numbers (cards, phones, SSNs, IBANs) are all digits and
 * separators: a regex database has no literal to hang them on and crawls
 * over source text, which is full of digits.  Instead the engine asks this
 * pass for "numeric phrases" — runs of digits in which two consecutive
 * digits are at most two separator bytes apart (" .-/()": "(11) 98158-3054",
 * "4111 1111 1111 1111", "DE89 3704 0044") — and runs those rules only
 * around phrases with enough digits.  The same pass reports the positions
 * of a few anchor bytes (e.g. '@' for e-mail addresses).
 *
 * Invariants: phrases and anchors are reported in increasing position
 * order; a phrase is reported once, whole, even when it spans the vector
 * blocks.  The pass reads `data` only; nothing is allocated.
 */
#ifndef CDEGUARD_INSPECT_GATE_H
#define CDEGUARD_INSPECT_GATE_H

#include <stdbool.h>
#include <stddef.h>

#define GATE_MAX_ANCHORS 4

typedef struct gate_spec {
    unsigned min_digits; /* report phrases with at least this many digits; 0 = none */
    unsigned char anchors[GATE_MAX_ANCHORS];
    unsigned nanchors;
    bool avx2; /* set by gate_init() from the CPU */
} gate_spec_t;

/* An empty spec (no phrases, no anchors) for this CPU. */
void gate_init(gate_spec_t *g);

/* [start, end) of the phrase: first digit to one past the last digit.
 * Return non-zero to stop the pass (gate_scan returns it). */
typedef int (*gate_phrase_cb)(size_t start, size_t end, unsigned digits, void *ctx);
typedef int (*gate_anchor_cb)(size_t pos, void *ctx);

/* Add an anchor byte; -1 when GATE_MAX_ANCHORS are already set. */
int gate_add_anchor(gate_spec_t *g, unsigned char byte);

int gate_scan(const gate_spec_t *g, const char *data, size_t len, gate_phrase_cb on_phrase,
              gate_anchor_cb on_anchor, void *ctx);

/* True when the byte may sit between two digits of one phrase. */
bool gate_is_separator(unsigned char c);

#endif
