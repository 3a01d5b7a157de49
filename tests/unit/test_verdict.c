/*
 * Unit tests for src/inspect/verdict.c on the built-in rules: the verdict is
 * the highest action, alert findings are counted but never redacted,
 * overlapping and adjacent ranges merge (label of the earliest, then
 * longest), redacted text and JSON carry "[REDACTED:<rule-id>]" and no
 * 4-byte piece of any secret (also a secret written with \uXXXX escapes and
 * a PEM key with \n escapes), the JSON output parses again, a resolver
 * overrides actions, clean input stays clean, and ranges outside the input,
 * too many ranges or a failed verdict are errors.
 *
 * Test secrets are assembled at run time (pieces, a computed GitHub
 * checksum, a pseudo-random PEM body), so this file is not itself a source
 * of secrets for scanners.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inspect/inspect.h"
#include "inspect/json.h"
#include "inspect/validate.h"
#include "inspect/verdict.h"

static inspect_engine_t *E;
static inspect_scratch_t *S;

/* ---- test secrets ---------------------------------------------------------- */

static char AWS[21];    /* AKIA + 16 of [A-Z2-7] */
static char GHP[41];    /* ghp_ + 30 base62 + CRC32 checksum */
static char EMAIL[64];  /* at a non-reserved domain */
static char PEM[512];   /* PKCS#8 PEM with real newlines */
static char PEM_J[600]; /* the same as a JSON string body: \n escapes */

static void make_secrets(void)
{
    snprintf(AWS, sizeof AWS, "%s%s%s%s%s", "AK", "IA", "R5TXQM2W", "HJ7B", "KZ3N");
    snprintf(GHP, sizeof GHP, "%s%s%s", "gh", "p_", "Zq8Lm3Rt9Vx2Kp7Wn4Hs6Jd1Fg5Cb0");
    validate_base62_6(validate_crc32(GHP, 34), GHP + 34);
    GHP[40] = '\0';
    snprintf(EMAIL, sizeof EMAIL, "%s%c%s", "jan.kowalski", '@', "acme-corp.io");

    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char body[3][65];
    uint64_t x = 0x2545F4914F6CDD1Dull;
    for (int l = 0; l < 3; l++) {
        for (int i = 0; i < 64; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            body[l][i] = b64[(x >> 33) % 64];
        }
        body[l][64] = '\0';
    }
    const char *begin = "-----BEGIN PRIV"
                        "ATE KEY-----",
               *end = "-----END PRIV"
                      "ATE KEY-----";
    snprintf(PEM, sizeof PEM, "%s\n%s\n%s\n%s\n%s", begin, body[0], body[1], body[2], end);
    snprintf(PEM_J, sizeof PEM_J, "%s\\n%s\\n%s\\n%s\\n%s", begin, body[0], body[1], body[2], end);
}

static int setup(void **state)
{
    (void)state;
    char err[512];
    make_secrets();
    if (inspect_engine_load_with(inspect_builtin_rules, NULL, &E, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    S = inspect_scratch_new(E);
    return S ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    inspect_scratch_free(S);
    inspect_engine_free(E);
    return 0;
}

/* ---- helpers ------------------------------------------------------------- */

static void scan_text(inspect_verdict_t *v, const char *text)
{
    assert_int_equal(inspect_scan_text(E, S, text, strlen(text), inspect_verdict_on_finding, v), 0);
}

static void scan_json(inspect_verdict_t *v, const char *doc)
{
    char err[256] = "";
    int rc =
        inspect_scan_json(E, S, doc, strlen(doc), inspect_verdict_on_finding, v, err, sizeof err);
    if (rc != 0) fail_msg("inspect_scan_json: %d %s", rc, err);
}

static const inspect_verdict_rule_t *rule_of(const inspect_verdict_t *v, const char *id)
{
    for (size_t i = 0; i < v->nrules; i++)
        if (!strcmp(v->rules[i].rule_id, id)) return &v->rules[i];
    return NULL;
}

/* No piece of 4 bytes or more of `secret` occurs in hay. */
static void assert_no_piece(const char *hay, size_t hlen, const char *secret, const char *what)
{
    size_t sl = strlen(secret);
    for (size_t i = 0; i + 4 <= sl; i++)
        if (memmem(hay, hlen, secret + i, 4))
            fail_msg("%s: '%.4s' (offset %zu of the secret) survived in: %.*s", what, secret + i, i,
                     (int)hlen, hay);
}

/* A finding made by hand (rule ids need not exist in an engine). */
static inspect_finding_t mk(int rule, const char *id, inspect_action_t a, uint64_t start,
                            uint64_t end)
{
    inspect_finding_t f;
    memset(&f, 0, sizeof f);
    f.rule = rule;
    f.rule_id = id;
    f.category = INSPECT_SECRET;
    f.action = a;
    f.start = start;
    f.end = end;
    return f;
}

/* Every decoded string of a JSON document, each followed by '\1'. */
typedef struct strs {
    char buf[8192];
    size_t len;
} strs_t;

static int gather(const json_string_t *s, void *ctx)
{
    strs_t *g = ctx;
    if (g->len + s->len + 1 > sizeof g->buf) return 1;
    memcpy(g->buf + g->len, s->text, s->len);
    g->len += s->len;
    g->buf[g->len++] = '\1';
    return 0;
}

static void json_decoded(const char *doc, size_t len, strs_t *g)
{
    json_scratch_t sc;
    char err[256] = "";
    json_scratch_init(&sc);
    g->len = 0;
    int rc = json_walk(doc, len, &sc, gather, g, err, sizeof err);
    json_scratch_free(&sc);
    if (rc != 0)
        fail_msg("the redacted JSON does not parse (%d: %s): %.*s", rc, err, (int)len, doc);
}

/* ---- tests --------------------------------------------------------------- */

static void test_clean_input(void **state)
{
    (void)state;
    inspect_verdict_t v;
    const char *text = "build finished in 3.2s; 14 tests passed, see build/log.txt\n";
    inspect_verdict_init(&v, NULL, NULL);
    scan_text(&v, text);
    assert_int_equal(v.action, INSPECT_VERDICT_CLEAN);
    assert_string_equal(inspect_verdict_name(v.action), "clean");
    assert_int_equal(v.nfindings, 0);
    assert_int_equal(v.nrules, 0);
    assert_int_equal(v.nspans, 0);
    assert_false(v.failed);

    inspect_verdict_span_t *sp = (void *)1;
    size_t n = 99;
    assert_int_equal(inspect_verdict_spans(&v, &sp, &n), 0);
    assert_null(sp);
    assert_int_equal(n, 0);

    char *out = NULL;
    size_t outlen = 0;
    assert_int_equal(inspect_redact_text(&v, text, strlen(text), &out, &outlen), 0);
    assert_int_equal(outlen, strlen(text));
    assert_string_equal(out, text);
    free(out);

    const char *doc = "{\"a\": [\"b\", 1, true, null], \"c\": \"d\\u0041\"}";
    char err[128];
    scan_json(&v, doc);
    assert_int_equal(v.action, INSPECT_VERDICT_CLEAN);
    assert_int_equal(inspect_redact_json(&v, doc, strlen(doc), &out, &outlen, err, sizeof err), 0);
    assert_string_equal(out, doc);
    assert_int_equal(outlen, strlen(doc));
    free(out);
    inspect_verdict_free(&v);
    inspect_verdict_free(&v); /* idempotent */
    assert_null(v.rules);
    assert_null(v.spans);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(inspect_verdict_name(INSPECT_VERDICT_CLEAN), "clean");
    assert_string_equal(inspect_verdict_name(INSPECT_ALERT), "alert");
    assert_string_equal(inspect_verdict_name(INSPECT_REDACT), "redact");
    assert_string_equal(inspect_verdict_name(INSPECT_BLOCK), "block");
    assert_string_equal(inspect_verdict_name(42), "clean");
}

static void test_highest_action(void **state)
{
    (void)state;
    char text[256];
    inspect_verdict_t v;

    /* PII alone: redact (its category's default) */
    snprintf(text, sizeof text, "contact %s for access\n", EMAIL);
    inspect_verdict_init(&v, NULL, NULL);
    scan_text(&v, text);
    assert_int_equal(v.action, INSPECT_REDACT);
    assert_int_equal(v.nfindings, 1);
    assert_int_equal(v.nrules, 1);
    assert_string_equal(v.rules[0].rule_id, "email-address");
    assert_int_equal(v.rules[0].category, INSPECT_PII);
    assert_int_equal(v.rules[0].action, INSPECT_REDACT);
    assert_int_equal(v.rules[0].count, 1);
    inspect_verdict_free(&v);

    /* a secret and PII: block wins, whatever the order; counts per rule */
    snprintf(text, sizeof text, "mail %s\nkey=%s\nagain %s\n", EMAIL, AWS, AWS);
    inspect_verdict_init(&v, NULL, NULL);
    scan_text(&v, text);
    assert_int_equal(v.action, INSPECT_BLOCK);
    assert_string_equal(inspect_verdict_name(v.action), "block");
    assert_int_equal(v.nfindings, 3);
    assert_int_equal(v.nrules, 2);
    assert_string_equal(v.rules[0].rule_id, "email-address"); /* order of first finding */
    assert_string_equal(v.rules[1].rule_id, "aws-access-key-id");
    assert_int_equal(v.rules[1].count, 2);
    assert_int_equal(v.rules[1].action, INSPECT_BLOCK);
    assert_int_equal(v.rules[1].category, INSPECT_SECRET);
    assert_int_equal(v.nspans, 3);
    inspect_verdict_free(&v);

    /* by hand: alert < redact < block, never lowered */
    inspect_verdict_init(&v, NULL, NULL);
    inspect_finding_t f = mk(3, "r3", INSPECT_ALERT, 0, 4);
    assert_int_equal(inspect_verdict_add(&v, &f), INSPECT_ALERT);
    assert_int_equal(v.action, INSPECT_ALERT);
    assert_string_equal(inspect_verdict_name(v.action), "alert");
    f = mk(3, "r3", INSPECT_BLOCK, 10, 14);
    assert_int_equal(inspect_verdict_add(&v, &f), INSPECT_BLOCK);
    f = mk(5, "r5", INSPECT_REDACT, 20, 24);
    assert_int_equal(inspect_verdict_add(&v, &f), INSPECT_REDACT);
    f = mk(3, "r3", INSPECT_ALERT, 30, 34);
    assert_int_equal(inspect_verdict_add(&v, &f), INSPECT_ALERT);
    assert_int_equal(v.action, INSPECT_BLOCK);
    assert_int_equal(v.nrules, 2);
    assert_int_equal(v.rules[0].rule, 3);
    assert_int_equal(v.rules[0].count, 3);
    assert_int_equal(v.rules[0].action, INSPECT_BLOCK); /* highest of alert, block, alert */
    assert_int_equal(v.rules[1].rule, 5);
    assert_int_equal(v.rules[1].action, INSPECT_REDACT);
    assert_int_equal(v.nfindings, 4);
    assert_int_equal(v.nspans, 2); /* the two alerts are not ranges */
    /* an empty range is counted, not redacted */
    f = mk(5, "r5", INSPECT_REDACT, 40, 40);
    assert_int_equal(inspect_verdict_add(&v, &f), INSPECT_REDACT);
    assert_int_equal(v.nfindings, 5);
    assert_int_equal(v.nspans, 2);
    inspect_verdict_free(&v);
}

static inspect_action_t pii_alert(const void *ctx, const inspect_finding_t *f)
{
    (void)ctx;
    return f->category == INSPECT_PII ? INSPECT_ALERT : f->action;
}

static inspect_action_t all_alert(const void *ctx, const inspect_finding_t *f)
{
    (void)ctx;
    (void)f;
    return INSPECT_ALERT;
}

static void test_alert_not_redacted(void **state)
{
    (void)state;
    char text[256], *out = NULL;
    size_t outlen = 0;
    inspect_verdict_t v;
    snprintf(text, sizeof text, "owner: %s\naws_access_key_id = %s\n", EMAIL, AWS);

    inspect_verdict_init(&v, pii_alert, NULL);
    scan_text(&v, text);
    assert_int_equal(v.action, INSPECT_BLOCK);
    assert_int_equal(v.nfindings, 2);
    assert_int_equal(v.nspans, 1);
    assert_int_equal(rule_of(&v, "email-address")->action, INSPECT_ALERT);
    assert_int_equal(inspect_redact_text(&v, text, strlen(text), &out, &outlen), 0);
    char want[256];
    snprintf(want, sizeof want, "owner: %s\naws_access_key_id = [REDACTED:aws-access-key-id]\n",
             EMAIL);
    assert_string_equal(out, want);
    assert_int_equal(outlen, strlen(want));
    free(out);
    inspect_verdict_free(&v);

    /* everything alert: the verdict is alert and the text leaves unchanged */
    inspect_verdict_init(&v, all_alert, NULL);
    scan_text(&v, text);
    assert_int_equal(v.action, INSPECT_ALERT);
    assert_int_equal(v.nfindings, 2);
    assert_int_equal(v.nspans, 0);
    assert_int_equal(inspect_redact_text(&v, text, strlen(text), &out, &outlen), 0);
    assert_string_equal(out, text);
    free(out);
    inspect_verdict_free(&v);
}

static void test_merge_spans(void **state)
{
    (void)state;
    /*                   0         1         2         3        */
    /*                   0123456789012345678901234567890123456789 */
    const char *text = "0123456789abcdefghijABCDEFGHIJ0123456789";
    inspect_verdict_t v;
    inspect_verdict_init(&v, NULL, NULL);
    const inspect_finding_t fs[] = {
        mk(6, "F", INSPECT_REDACT, 26, 27), /* inside E */
        mk(2, "B", INSPECT_BLOCK, 4, 9),    /* overlaps A */
        mk(7, "G", INSPECT_REDACT, 30, 31), /* not adjacent to E (28..30 stays) */
        mk(4, "D", INSPECT_REDACT, 20, 25), mk(1, "A", INSPECT_REDACT, 2, 6),
        mk(8, "H", INSPECT_ALERT, 13, 16),  /* alert: stays */
        mk(5, "E", INSPECT_REDACT, 20, 28), /* same start as D, longer: its label */
        mk(3, "C", INSPECT_REDACT, 9, 12),  /* touches B */
    };
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++)
        assert_true(inspect_verdict_add(&v, &fs[i]) >= 0);
    assert_int_equal(v.nspans, 7);

    inspect_verdict_span_t *sp = NULL;
    size_t n = 0;
    assert_int_equal(inspect_verdict_spans(&v, &sp, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(sp[0].start, 2);
    assert_int_equal(sp[0].end, 12);
    assert_string_equal(sp[0].rule_id, "A");
    assert_int_equal(sp[1].start, 20);
    assert_int_equal(sp[1].end, 28);
    assert_string_equal(sp[1].rule_id, "E");
    assert_int_equal(sp[2].start, 30);
    assert_int_equal(sp[2].end, 31);
    assert_string_equal(sp[2].rule_id, "G");
    free(sp);
    assert_int_equal(v.nspans, 7); /* the verdict itself is not changed */

    char *out = NULL;
    size_t outlen = 0;
    assert_int_equal(inspect_redact_text(&v, text, strlen(text), &out, &outlen), 0);
    const char *want = "01[REDACTED:A]cdefghij[REDACTED:E]IJ[REDACTED:G]123456789";
    assert_string_equal(out, want);
    assert_int_equal(outlen, strlen(want));
    free(out);
    inspect_verdict_free(&v);

    /* a whole-input range, and ranges at both ends */
    inspect_verdict_init(&v, NULL, NULL);
    inspect_finding_t f = mk(1, "x", INSPECT_REDACT, 0, 3);
    inspect_verdict_add(&v, &f);
    f = mk(1, "x", INSPECT_REDACT, 37, 40);
    inspect_verdict_add(&v, &f);
    assert_int_equal(inspect_redact_text(&v, text, strlen(text), &out, &outlen), 0);
    assert_string_equal(out, "[REDACTED:x]3456789abcdefghijABCDEFGHIJ0123456[REDACTED:x]");
    free(out);
    f = mk(2, "all", INSPECT_BLOCK, 0, 40);
    inspect_verdict_add(&v, &f);
    assert_int_equal(inspect_redact_text(&v, text, strlen(text), &out, &outlen), 0);
    assert_string_equal(out, "[REDACTED:all]"); /* same start, longest */
    free(out);
    inspect_verdict_free(&v);
}

static void test_merge_real_findings(void **state)
{
    (void)state;
    /* the key id is also the local part of an address: two findings on
     * the same bytes, one label (the longer, the address) */
    char text[256], *out = NULL;
    size_t outlen = 0;
    snprintf(text, sizeof text, "from %s@acme-corp.io today", AWS);
    inspect_verdict_t v;
    inspect_verdict_init(&v, NULL, NULL);
    scan_text(&v, text);
    assert_int_equal(v.nfindings, 2);
    assert_non_null(rule_of(&v, "aws-access-key-id"));
    assert_non_null(rule_of(&v, "email-address"));
    assert_int_equal(v.action, INSPECT_BLOCK);
    assert_int_equal(inspect_redact_text(&v, text, strlen(text), &out, &outlen), 0);
    assert_string_equal(out, "from [REDACTED:email-address] today");
    assert_no_piece(out, outlen, AWS, "aws in address");
    free(out);
    inspect_verdict_free(&v);
}

static void test_label_is_sanitized(void **state)
{
    (void)state;
    const char *text = "abcdefgh";
    const char *doc = "{\"k\": \"abcdefgh\"}";
    char *out = NULL, err[128];
    size_t outlen = 0;
    inspect_verdict_t v;
    inspect_verdict_init(&v, NULL, NULL);
    inspect_finding_t f = mk(1, "we ird\"id\\x/y", INSPECT_REDACT, 2, 6);
    inspect_verdict_add(&v, &f);
    assert_int_equal(inspect_redact_text(&v, text, strlen(text), &out, &outlen), 0);
    assert_string_equal(out, "ab[REDACTED:we_ird_id_x_y]gh");
    free(out);
    inspect_verdict_free(&v);

    inspect_verdict_init(&v, NULL, NULL);
    f = mk(1, "we ird\"id\\x/y", INSPECT_REDACT, 9, 13);
    inspect_verdict_add(&v, &f);
    assert_int_equal(inspect_redact_json(&v, doc, strlen(doc), &out, &outlen, err, sizeof err), 0);
    assert_string_equal(out, "{\"k\": \"ab[REDACTED:we_ird_id_x_y]gh\"}");
    free(out);
    inspect_verdict_free(&v);

    /* a missing id still gives a label */
    inspect_verdict_init(&v, NULL, NULL);
    f = mk(1, NULL, INSPECT_REDACT, 0, 8);
    inspect_verdict_add(&v, &f);
    assert_string_equal(v.rules[0].rule_id, "");
    assert_int_equal(inspect_redact_text(&v, text, strlen(text), &out, &outlen), 0);
    assert_string_equal(out, "[REDACTED:]");
    free(out);
    inspect_verdict_free(&v);
}

static void test_redact_text_secrets(void **state)
{
    (void)state;
    char text[2048], *out = NULL;
    size_t outlen = 0;
    snprintf(text, sizeof text,
             "export AWS_ACCESS_KEY_ID=%s\n"
             "GITHUB_TOKEN=%s\n"
             "Signed-off-by: J. K. <%s>\n"
             "%s\n"
             "done\n",
             AWS, GHP, EMAIL, PEM);
    inspect_verdict_t v;
    inspect_verdict_init(&v, NULL, NULL);
    scan_text(&v, text);
    assert_false(v.failed);
    assert_int_equal(v.action, INSPECT_BLOCK);
    static const char *const ids[] = {"aws-access-key-id", "github-pat-classic", "email-address",
                                      "private-key-pkcs8"};
    for (size_t i = 0; i < 4; i++)
        if (!rule_of(&v, ids[i])) fail_msg("no finding of %s", ids[i]);
    assert_int_equal(rule_of(&v, "email-address")->action, INSPECT_REDACT);
    assert_int_equal(rule_of(&v, "github-pat-classic")->action, INSPECT_BLOCK);

    assert_int_equal(inspect_redact_text(&v, text, strlen(text), &out, &outlen), 0);
    assert_int_equal(strlen(out), outlen);
    for (size_t i = 0; i < 4; i++) {
        char label[64];
        snprintf(label, sizeof label, "[REDACTED:%s]", ids[i]);
        if (!strstr(out, label)) fail_msg("no %s in: %s", label, out);
    }
    assert_no_piece(out, outlen, AWS, "aws");
    assert_no_piece(out, outlen, GHP, "github");
    assert_no_piece(out, outlen, EMAIL, "email");
    assert_no_piece(out, outlen, PEM, "pem");
    /* what is not secret stays */
    assert_non_null(strstr(out, "export AWS_ACCESS_KEY_ID="));
    assert_non_null(strstr(out, "Signed-off-by: J. K. <"));
    assert_non_null(strstr(out, "\ndone\n"));
    free(out);
    inspect_verdict_free(&v);
}

static void test_redact_json_secrets(void **state)
{
    (void)state;
    /* the key id with three of its characters as \u escapes (first, middle, last) */
    char aws_esc[64];
    snprintf(aws_esc, sizeof aws_esc, "\\u%04x%.7s\\u%04x%.10s\\u%04x", AWS[0], AWS + 1, AWS[8],
             AWS + 9, AWS[19]);
    char doc[4096];
    snprintf(doc, sizeof doc,
             "{\"messages\": [{\"role\": \"user\",\n"
             "  \"content\": \"my key is %s, mail %s\"}],\n"
             " \"token\": \"%s\",\n"
             " \"service_account\": {\"type\": \"service_account\", \"private_key\": \"%s\\n\"},\n"
             " \"note\": \"nothing here\", \"n\": 3}",
             aws_esc, EMAIL, GHP, PEM_J);
    assert_null(strstr(doc, AWS)); /* only escaped in the document */

    inspect_verdict_t v;
    inspect_verdict_init(&v, NULL, NULL);
    scan_json(&v, doc);
    assert_int_equal(v.action, INSPECT_BLOCK);
    static const char *const ids[] = {"aws-access-key-id", "github-pat-classic", "email-address",
                                      "private-key-pkcs8"};
    for (size_t i = 0; i < 4; i++)
        if (!rule_of(&v, ids[i])) fail_msg("no finding of %s", ids[i]);

    char *out = NULL, err[256] = "";
    size_t outlen = 0;
    int rc = inspect_redact_json(&v, doc, strlen(doc), &out, &outlen, err, sizeof err);
    if (rc != 0) fail_msg("inspect_redact_json: %s", err);
    assert_int_equal(strlen(out), outlen);

    /* valid JSON again; neither the decoded strings nor the raw bytes hold
     * a piece of any secret, escaped or not */
    strs_t g;
    json_decoded(out, outlen, &g);
    const char *secrets[] = {AWS, GHP, EMAIL, PEM, aws_esc, PEM_J};
    for (size_t i = 0; i < 6; i++) {
        assert_no_piece(g.buf, g.len, secrets[i], "decoded");
        assert_no_piece(out, outlen, secrets[i], "raw");
    }
    assert_null(strstr(out, "\\u00")); /* no escape of the key id left over */
    for (size_t i = 0; i < 4; i++) {
        char label[64];
        snprintf(label, sizeof label, "[REDACTED:%s]", ids[i]);
        if (!strstr(out, label)) fail_msg("no %s in: %s", label, out);
    }
    /* the document around the secrets is kept byte for byte */
    assert_non_null(strstr(out, "\"content\": \"my key is [REDACTED:aws-access-key-id], mail "
                                "[REDACTED:email-address]\"}],\n"));
    assert_non_null(strstr(out, "\"token\": \"[REDACTED:github-pat-classic]\",\n"));
    assert_non_null(strstr(out, "\"private_key\": \"[REDACTED:private-key-pkcs8]\\n\"}"));
    assert_non_null(strstr(out, "\"note\": \"nothing here\", \"n\": 3}"));
    free(out);

    /* text redaction of the same findings would cut escapes; JSON keeps
     * the document valid even when asked to redact only part of an escape */
    inspect_verdict_t w;
    inspect_verdict_init(&w, NULL, NULL);
    const char *raw = strstr(doc, aws_esc);
    assert_non_null(raw);
    inspect_finding_t f = mk(1, "cut", INSPECT_REDACT, (uint64_t)(raw - doc) + 2,
                             (uint64_t)(raw - doc) + 4); /* inside \u0041 */
    inspect_verdict_add(&w, &f);
    assert_int_equal(inspect_redact_json(&w, doc, strlen(doc), &out, &outlen, err, sizeof err), 0);
    json_decoded(out, outlen, &g);
    assert_non_null(strstr(out, "my key is [REDACTED:cut]KIA"));
    free(out);
    inspect_verdict_free(&w);
    inspect_verdict_free(&v);
}

typedef struct resolver_ctx {
    int calls;
    const void *seen;
} resolver_ctx_t;

static inspect_action_t resolver(const void *ctx, const inspect_finding_t *f)
{
    resolver_ctx_t *r = (resolver_ctx_t *)(uintptr_t)ctx;
    r->calls++;
    r->seen = ctx;
    if (!strcmp(f->rule_id, "aws-access-key-id")) return INSPECT_REDACT;
    if (!strcmp(f->rule_id, "email-address")) return INSPECT_ALERT;
    if (!strcmp(f->rule_id, "bogus")) return (inspect_action_t)7;
    return f->action;
}

static void test_resolver(void **state)
{
    (void)state;
    char text[256], *out = NULL;
    size_t outlen = 0;
    resolver_ctx_t rc = {0};
    snprintf(text, sizeof text, "%s %s\n", AWS, EMAIL);
    inspect_verdict_t v;
    inspect_verdict_init(&v, resolver, &rc);
    assert_ptr_equal(v.resolve_ctx, &rc);
    scan_text(&v, text);
    assert_int_equal(rc.calls, 2);
    assert_ptr_equal(rc.seen, &rc);
    /* without the resolver this would be block (the key id's own action) */
    assert_int_equal(v.action, INSPECT_REDACT);
    assert_int_equal(rule_of(&v, "aws-access-key-id")->action, INSPECT_REDACT);
    assert_int_equal(rule_of(&v, "email-address")->action, INSPECT_ALERT);
    assert_int_equal(v.nspans, 1);
    assert_int_equal(inspect_redact_text(&v, text, strlen(text), &out, &outlen), 0);
    char want[256];
    snprintf(want, sizeof want, "[REDACTED:aws-access-key-id] %s\n", EMAIL);
    assert_string_equal(out, want);
    free(out);

    /* an action out of range from a resolver is taken as block */
    inspect_finding_t f = mk(99, "bogus", INSPECT_ALERT, 0, 4);
    assert_int_equal(inspect_verdict_add(&v, &f), INSPECT_BLOCK);
    assert_int_equal(v.action, INSPECT_BLOCK);
    assert_int_equal(rule_of(&v, "bogus")->action, INSPECT_BLOCK);
    assert_int_equal(v.nspans, 2);
    assert_int_equal(rc.calls, 3);
    inspect_verdict_free(&v);
}

static void test_out_of_range(void **state)
{
    (void)state;
    const char *text = "0123456789";
    const char *doc = "{\"k\": \"abcdefgh\"}";
    char *out = (char *)1, err[256];
    size_t outlen = 7;
    inspect_verdict_t v;

    /* a range past the end of the text */
    inspect_verdict_init(&v, NULL, NULL);
    inspect_finding_t f = mk(1, "r", INSPECT_REDACT, 5, 11);
    inspect_verdict_add(&v, &f);
    assert_int_equal(inspect_redact_text(&v, text, strlen(text), &out, &outlen), -1);
    assert_null(out);
    assert_int_equal(outlen, 0);
    inspect_verdict_free(&v);

    /* entirely outside */
    inspect_verdict_init(&v, NULL, NULL);
    f = mk(1, "r", INSPECT_REDACT, 100, 200);
    inspect_verdict_add(&v, &f);
    assert_int_equal(inspect_redact_text(&v, text, strlen(text), &out, &outlen), -1);
    assert_null(out);
    err[0] = '\0';
    assert_int_equal(inspect_redact_json(&v, doc, strlen(doc), &out, &outlen, err, sizeof err), -1);
    assert_null(out);
    assert_int_equal(outlen, 0);
    assert_string_equal(err, "a finding lies outside the document");
    inspect_verdict_free(&v);

    /* inside the document but not inside a string body */
    inspect_verdict_init(&v, NULL, NULL);
    f = mk(1, "r", INSPECT_REDACT, 0, 3);
    inspect_verdict_add(&v, &f);
    err[0] = '\0';
    assert_int_equal(inspect_redact_json(&v, doc, strlen(doc), &out, &outlen, err, sizeof err), -1);
    assert_null(out);
    assert_non_null(strstr(err, "not inside a string body"));
    /* and across two strings */
    inspect_verdict_free(&v);
    inspect_verdict_init(&v, NULL, NULL);
    f = mk(1, "r", INSPECT_REDACT, 2, 10);
    inspect_verdict_add(&v, &f);
    assert_int_equal(inspect_redact_json(&v, doc, strlen(doc), &out, &outlen, err, sizeof err), -1);
    assert_null(out);
    inspect_verdict_free(&v);

    /* not JSON */
    inspect_verdict_init(&v, NULL, NULL);
    err[0] = '\0';
    assert_int_equal(inspect_redact_json(&v, "{\"k\": ", 6, &out, &outlen, err, sizeof err), -1);
    assert_null(out);
    assert_true(strlen(err) > 0);
    inspect_verdict_free(&v);
}

static void test_too_many_spans(void **state)
{
    (void)state;
    inspect_verdict_t v;
    inspect_verdict_init(&v, NULL, NULL);
    for (uint64_t i = 0; i < INSPECT_VERDICT_MAX_SPANS; i++) {
        inspect_finding_t f = mk(1, "r", INSPECT_REDACT, 2 * i, 2 * i + 1);
        if (inspect_verdict_add(&v, &f) != INSPECT_REDACT)
            fail_msg("add %llu", (unsigned long long)i);
    }
    assert_false(v.failed);
    assert_int_equal(v.action, INSPECT_REDACT);
    assert_int_equal(v.nspans, INSPECT_VERDICT_MAX_SPANS);
    inspect_finding_t f = mk(1, "r", INSPECT_REDACT, 0, 1);
    assert_int_equal(inspect_verdict_add(&v, &f), -1);
    assert_true(v.failed);
    assert_int_equal(v.action, INSPECT_BLOCK); /* cannot redact everything: block */
    assert_int_equal(inspect_verdict_on_finding(&f, &v), -1);

    /* a failed verdict never yields a payload */
    size_t len = 2 * INSPECT_VERDICT_MAX_SPANS + 2;
    char *text = malloc(len), *out = (char *)1, err[256] = "";
    size_t outlen = 3;
    assert_non_null(text);
    memset(text, 'a', len);
    assert_int_equal(inspect_redact_text(&v, text, len, &out, &outlen), -1);
    assert_null(out);
    assert_int_equal(outlen, 0);
    assert_int_equal(inspect_redact_json(&v, "\"aa\"", 4, &out, &outlen, err, sizeof err), -1);
    assert_null(out);
    assert_true(strlen(err) > 0);
    free(text);
    inspect_verdict_free(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_input),         cmocka_unit_test(test_names),
        cmocka_unit_test(test_highest_action),      cmocka_unit_test(test_alert_not_redacted),
        cmocka_unit_test(test_merge_spans),         cmocka_unit_test(test_merge_real_findings),
        cmocka_unit_test(test_label_is_sanitized),  cmocka_unit_test(test_redact_text_secrets),
        cmocka_unit_test(test_redact_json_secrets), cmocka_unit_test(test_resolver),
        cmocka_unit_test(test_out_of_range),        cmocka_unit_test(test_too_many_spans),
    };
    return cmocka_run_group_tests_name("verdict", tests, setup, teardown);
}
