/*
 * test_domain — unit tests for src/policy/domain.c.
 *
 * Covers host normalisation (case, trailing dot, IDNA to A-labels, validation
 * of xn-- labels, every class of invalid input), raw RFC 3492 punycode against
 * all samples of section 7.1, and the dstdomain set: the seed allow and deny
 * lists, wildcard and longest-match semantics, duplicates, invalid patterns,
 * growth, and concurrent readers.  Expected A-labels were checked against an
 * independent implementation (Python's "punycode" and "idna" codecs).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/domain.h"

/* ---- helpers ---------------------------------------------------------------------------- */

/* Normalise s; assert success and the expected output. */
static void norm_ok(const char *in, const char *want)
{
    char out[DOMAIN_MAX + 1];
    char err[160];
    int n = domain_normalize(in, strlen(in), out, sizeof out, err, sizeof err);
    if (n < 0) fail_msg("normalise \"%s\" failed: %s", in, err);
    assert_string_equal(out, want);
    assert_int_equal(n, (int)strlen(want));
}

/* Normalise in[0..len); assert failure with a message. */
static void norm_bad_len(const char *in, size_t len)
{
    char out[DOMAIN_MAX + 1];
    char err[160] = "";
    int n = domain_normalize(in, len, out, sizeof out, err, sizeof err);
    if (n >= 0) fail_msg("normalise \"%.*s\" accepted as \"%s\"", (int)len, in, out);
    assert_true(err[0] != '\0');
    assert_string_equal(out, "");
}

static void norm_bad(const char *in)
{
    norm_bad_len(in, strlen(in));
}

/* Normalise then match, as the policy code does. */
static int nmatch(const domain_set_t *s, const char *host)
{
    char out[DOMAIN_MAX + 1];
    char err[160];
    int n = domain_normalize(host, strlen(host), out, sizeof out, err, sizeof err);
    if (n < 0) fail_msg("normalise \"%s\" failed: %s", host, err);
    return domain_set_match(s, out, (size_t)n);
}

static void add_ok(domain_set_t *s, const char *pattern, int id)
{
    char err[256];
    if (domain_set_add(s, pattern, id, err, sizeof err) != 0)
        fail_msg("add \"%s\" failed: %s", pattern, err);
}

/* Assert that a pattern is refused and that the message mentions `needle`. */
static void add_bad(domain_set_t *s, const char *pattern, const char *needle)
{
    char err[256] = "";
    size_t before = domain_set_count(s);
    if (domain_set_add(s, pattern, 1, err, sizeof err) != -1)
        fail_msg("pattern \"%s\" was accepted", pattern);
    if (needle && !strstr(err, needle))
        fail_msg("pattern \"%s\": message \"%s\" lacks \"%s\"", pattern, err, needle);
    assert_true(err[0] != '\0');
    assert_int_equal(domain_set_count(s), before);
}

static const char *const seed_allow[] = {".github.com", ".npmjs.org", ".pypi.org",
                                         ".docker.io",  ".gcr.io",    ".amazonaws.com"};
static const char *const seed_deny[] = {
    "api.openai.com", "api.anthropic.com", "generativelanguage.googleapis.com",
    ".dropbox.com",   ".wetransfer.com",   ".pastebin.com"};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static domain_set_t *set_of(const char *const *patterns, size_t n)
{
    domain_set_t *s = domain_set_new();
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        add_ok(s, patterns[i], (int)i);
    assert_int_equal(domain_set_count(s), n);
    return s;
}

/* ---- normalisation: ASCII --------------------------------------------------------------- */

static void test_norm_lowercase_trailing_dot(void **state)
{
    (void)state;
    norm_ok("GitHub.COM.", "github.com");
    norm_ok("API.GitHub.Com", "api.github.com");
    norm_ok("localhost", "localhost");
    norm_ok("a.", "a");
}

static void test_norm_underscore_and_digits(void **state)
{
    (void)state;
    norm_ok("_dmarc.Example.com", "_dmarc.example.com");
    norm_ok("s3.us-east-1.amazonaws.com", "s3.us-east-1.amazonaws.com");
    norm_ok("r3---sn-abc.googlevideo.com", "r3---sn-abc.googlevideo.com");
    norm_ok("1.2.3.4", "1.2.3.4"); /* IP literals are the caller's business */
}

static void test_norm_hyphen_rules(void **state)
{
    (void)state;
    norm_bad("-a.com");
    norm_bad("a-.com");
    norm_bad("a.-");
    norm_ok("a-b.com", "a-b.com");
}

static void test_norm_bad_ascii(void **state)
{
    (void)state;
    const char *bad[] = {"exa mple.com", "a%2e.com", "user@host.com", "host.com:443",
                         "a/b.com",      "a\\b.com", "*.example.com", "ex\tample.com",
                         "ex\x7f.com",   "[::1]",    "a!b.com",       "a,b.com",
                         "a\rb.com",     "a\nb.com", "\"a\".com",     "a+b.com"};
    for (size_t i = 0; i < NELEM(bad); i++)
        norm_bad(bad[i]);
    /* An embedded NUL is a control byte, not a terminator. */
    norm_bad_len("github.com\0.evil.net", 20);
}

static void test_norm_error_messages(void **state)
{
    (void)state;
    char out[DOMAIN_MAX + 1];
    char err[160];
    assert_int_equal(domain_normalize("a b", 3, out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "space"));
    assert_int_equal(domain_normalize("a%b", 3, out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "%"));
    assert_int_equal(domain_normalize("a:1", 3, out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "':'"));
    assert_int_equal(domain_normalize("a\x01", 2, out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "0x01"));
    /* err may be NULL */
    assert_int_equal(domain_normalize("a b", 3, out, sizeof out, NULL, 0), -1);
}

static void test_norm_empty_labels(void **state)
{
    (void)state;
    norm_bad("");
    norm_bad(".");
    norm_bad("..");
    norm_bad("a..b");
    norm_bad(".a");
    norm_bad("a..");
    norm_bad_len(NULL, 0);
}

static void test_norm_label_length(void **state)
{
    (void)state;
    char in[80];
    char want[80];
    memset(in, 'A', 63);
    memcpy(in + 63, ".com", 5);
    memset(want, 'a', 63);
    memcpy(want + 63, ".com", 5);
    norm_ok(in, want);
    memset(in, 'a', 64);
    memcpy(in + 64, ".com", 5);
    norm_bad(in);
}

static void test_norm_total_length(void **state)
{
    (void)state;
    /* 3 x 63 + 1 x 61 + 3 dots = 253 */
    char in[300];
    size_t o = 0;
    for (int l = 0; l < 4; l++) {
        size_t n = l < 3 ? 63 : 61;
        memset(in + o, 'a' + l, n);
        o += n;
        in[o++] = '.';
    }
    in[o - 1] = '\0';
    assert_int_equal(strlen(in), 253);
    norm_ok(in, in);
    in[o - 1] = '.'; /* trailing dot: still 253 */
    in[o] = '\0';
    char want[300];
    memcpy(want, in, 253);
    want[253] = '\0';
    norm_ok(in, want);
    in[o - 1] = 'x'; /* 254 */
    norm_bad(in);
}

static void test_norm_outbuf_too_small(void **state)
{
    (void)state;
    char out[DOMAIN_MAX];
    char err[160];
    assert_int_equal(domain_normalize("a.com", 5, out, sizeof out, err, sizeof err), -1);
    assert_int_equal(domain_normalize("a.com", 5, NULL, 300, err, sizeof err), -1);
}

/* ---- normalisation: IDNA ---------------------------------------------------------------- */

static void test_norm_idn_buecher(void **state)
{
    (void)state;
    norm_ok("bücher.de", "xn--bcher-kva.de");
    norm_ok("xn--bcher-kva.de", "xn--bcher-kva.de");
    norm_ok("XN--BCHER-KVA.DE.", "xn--bcher-kva.de");
}

static void test_norm_idn_muenchen(void **state)
{
    (void)state;
    norm_ok("münchen.de", "xn--mnchen-3ya.de");
    norm_ok("www.MÜNCHEN.de.", "www.xn--mnchen-3ya.de");
}

static void test_norm_idn_uppercase_latin(void **state)
{
    (void)state;
    norm_ok("BÜCHER.de", "xn--bcher-kva.de");
    norm_ok("ŁÓDŹ.pl", "xn--d-uga0v4h.pl"); /* Latin Extended-A and Latin-1 */
    norm_ok("łódź.pl", "xn--d-uga0v4h.pl");
    norm_ok("ÑANDÚ.ar", "xn--and-6ma2c.ar");
    norm_ok("Ÿ.fr", "xn--wda.fr");                 /* U+0178 -> U+00FF */
    norm_ok("straße.de", "xn--strae-oqa.de");      /* sharp s kept (IDNA2008) */
    norm_ok("İstanbul.tr", "xn--istanbul-o0e.tr"); /* U+0130 -> i U+0307 */
}

static void test_norm_idn_rfc3492_samples(void **state)
{
    (void)state;
    norm_ok("ليهمابتكلموشعربي؟.com", "xn--egbpdaj6bu4bxfgehfvwxn.com");            /* (A) */
    norm_ok("他们为什么不说中文.cn", "xn--ihqwcrb4cv8a8dqg056pqjye.cn");           /* (B) */
    norm_ok("他們爲什麽不說中文.tw", "xn--ihqwctvzc91f659drss3x8bo0yb.tw");        /* (C) */
    norm_ok("Pročprostěnemluvíčesky.cz", "xn--proprostnemluvesky-uyb24dma41a.cz"); /* (D) */
    norm_ok("למההםפשוטלאמדבריםעברית.il", "xn--4dbcagdahymbxekheh6e0a7fei0b.il");   /* (E) */
    norm_ok("なぜみんな日本語を話してくれないのか.jp",
            "xn--n8jok5ay5dzabd5bym9f0cm5685rrjetr6pdxa.jp");                              /* (G) */
    norm_ok("почемужеонинеговорятпорусски.ru", "xn--b1abfaaepdrnnbgefbadotcwatmq2g4l.ru"); /* (I) */
    norm_ok("3年B組金八先生.jp", "xn--3b-ww4c5e180e575a65lsy2b.jp");                       /* (L) */
}

static void test_norm_alabels_kept(void **state)
{
    (void)state;
    const char *ok[] = {"xn--egbpdaj6bu4bxfgehfvwxn.com", "xn--ihqwcrb4cv8a8dqg056pqjye.cn",
                        "xn--4dbcagdahymbxekheh6e0a7fei0b.il", "xn--n3h.net",
                        "xn--b1abfaaepdrnnbgefbadotcwatmq2g4l.ru"};
    for (size_t i = 0; i < NELEM(ok); i++)
        norm_ok(ok[i], ok[i]);
    /* RFC 3492 mixed-case annotation ("...baDot...") is lower-cased. */
    norm_ok("xn--b1abfaaepdrnnbgefbaDotcwatmq2g4l.ru", "xn--b1abfaaepdrnnbgefbadotcwatmq2g4l.ru");
}

static void test_norm_bad_alabels(void **state)
{
    (void)state;
    norm_bad("xn--.com");             /* empty punycode */
    norm_bad("xn--abc-.com");         /* decodes to plain ASCII */
    norm_bad("xn--a.com");            /* truncated integer */
    norm_bad("xn--99999999999a.com"); /* overflow */
    norm_bad("xn---abc.com");         /* delimiter first: '-' is no digit */
    norm_bad("xn--wca.de");           /* decodes to upper-case U+00DC */
    norm_bad("xn--ab-g1t.com");       /* decodes to a ZWSP */
    norm_bad("xn----eha.com");        /* decodes to "-ü": leading hyphen */
    norm_bad("xn--bcher-kva-.de");    /* trailing hyphen */
    /* Hand-made A-labels for code points that must never appear. */
    const uint32_t bad_cps[] = {0xD800, 0x202E, 0xFEFF, 0xFF41, 0x3002, 0x85};
    for (size_t i = 0; i < NELEM(bad_cps); i++) {
        uint32_t cps[3] = {'a', bad_cps[i], 'b'};
        char puny[64];
        char label[80];
        assert_true(domain_punycode_encode(cps, 3, puny, sizeof puny) > 0);
        snprintf(label, sizeof label, "xn--%s.com", puny);
        norm_bad(label);
    }
}

static void test_norm_bad_utf8(void **state)
{
    (void)state;
    norm_bad("\xff.com");
    norm_bad("b\xc3.de");             /* truncated */
    norm_bad("b\xc3\x28.de");         /* bad continuation */
    norm_bad("\xc0\xaf.com");         /* overlong '/' */
    norm_bad("\xe0\x80\xae.com");     /* overlong '.' */
    norm_bad("\xed\xa0\x80.com");     /* surrogate */
    norm_bad("\xf4\x90\x80\x80.com"); /* above U+10FFFF */
    norm_bad("\x80.com");             /* stray continuation */
}

static void test_norm_forbidden_unicode(void **state)
{
    (void)state;
    norm_bad("git\xc2\xa0hub.com");     /* NBSP */
    norm_bad("git\xe2\x80\x8bhub.com"); /* ZWSP */
    norm_bad("git\xe2\x80\x8dhub.com"); /* ZWJ */
    norm_bad("moc.\xe2\x80\xae"
             "evil");                  /* RLO */
    norm_bad("\xef\xbd\x87ithub.com"); /* full-width g */
    norm_bad("a\xef\xbb\xbf.com");     /* BOM */
    norm_bad("a\xc2\x85.com");         /* C1 NEL */
    norm_bad("a\xe3\x80\x80.com");     /* ideographic space */
    norm_bad("a\xc2\xad.com");         /* soft hyphen */
}

static void test_norm_idna_full_stops(void **state)
{
    (void)state;
    norm_ok("bücher\xe3\x80\x82"
            "de",
            "xn--bcher-kva.de"); /* U+3002 */
    norm_ok("example\xef\xbc\x8e"
            "com",
            "example.com"); /* U+FF0E */
    norm_ok("example\xef\xbd\xa1"
            "com",
            "example.com");                            /* U+FF61 */
    norm_ok("example.com\xe3\x80\x82", "example.com"); /* as trailing dot */
}

static void test_norm_idn_label_length(void **state)
{
    (void)state;
    /* "ü" + 55 x "a" encodes to exactly 63 bytes; one more "a" is too long. */
    char in[128];
    char want[80];
    memcpy(in, "\xc3\xbc", 2);
    memset(in + 2, 'a', 55);
    in[57] = '\0';
    memcpy(want, "xn--", 4);
    memset(want + 4, 'a', 55);
    want[59] = '\0';
    char out[DOMAIN_MAX + 1];
    int n = domain_normalize(in, strlen(in), out, sizeof out, NULL, 0);
    assert_int_equal(n, 63);
    assert_memory_equal(out, want, 59);
    in[57] = 'a';
    in[58] = '\0';
    norm_bad(in);
}

static void test_norm_idempotent(void **state)
{
    (void)state;
    const char *in[] = {
        "GitHub.COM.",      "bücher.de",          "ŁÓDŹ.pl", "İstanbul.tr",
        "XN--BCHER-KVA.de", "_dmarc.example.com", "☃.net",   "ليهمابتكلموشعربي؟.com"};
    for (size_t i = 0; i < NELEM(in); i++) {
        char a[DOMAIN_MAX + 1];
        char b[DOMAIN_MAX + 1];
        int n = domain_normalize(in[i], strlen(in[i]), a, sizeof a, NULL, 0);
        assert_true(n > 0);
        int m = domain_normalize(a, (size_t)n, b, sizeof b, NULL, 0);
        assert_int_equal(m, n);
        assert_string_equal(a, b);
        for (int j = 0; j < n; j++)
            assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz0123456789-_.", a[j]));
    }
}

/* ---- raw punycode: RFC 3492 section 7.1 ------------------------------------------------- */

typedef struct {
    const char *name;
    uint32_t cp[64];
    size_t n;
    const char *puny;
} puny_vec_t;

/* All samples of RFC 3492 section 7.1.  (I) is given in its lower-case form; the
 * RFC's mixed-case annotation variant is checked in test_puny_decode_case. */
static const puny_vec_t rfc3492[] = {
    {"(A) Arabic",
     {0x0644, 0x064A, 0x0647, 0x0645, 0x0627, 0x0628, 0x062A, 0x0643, 0x0644, 0x0645, 0x0648,
      0x0634, 0x0639, 0x0631, 0x0628, 0x064A, 0x061F},
     17,
     "egbpdaj6bu4bxfgehfvwxn"},
    {"(B) Chinese (simplified)",
     {0x4ED6, 0x4EEC, 0x4E3A, 0x4EC0, 0x4E48, 0x4E0D, 0x8BF4, 0x4E2D, 0x6587},
     9,
     "ihqwcrb4cv8a8dqg056pqjye"},
    {"(C) Chinese (traditional)",
     {0x4ED6, 0x5011, 0x7232, 0x4EC0, 0x9EBD, 0x4E0D, 0x8AAA, 0x4E2D, 0x6587},
     9,
     "ihqwctvzc91f659drss3x8bo0yb"},
    {"(D) Czech",
     {0x0050, 0x0072, 0x006F, 0x010D, 0x0070, 0x0072, 0x006F, 0x0073, 0x0074, 0x011B, 0x006E,
      0x0065, 0x006D, 0x006C, 0x0075, 0x0076, 0x00ED, 0x010D, 0x0065, 0x0073, 0x006B, 0x0079},
     22,
     "Proprostnemluvesky-uyb24dma41a"},
    {"(E) Hebrew",
     {0x05DC, 0x05DE, 0x05D4, 0x05D4, 0x05DD, 0x05E4, 0x05E9, 0x05D5, 0x05D8, 0x05DC, 0x05D0,
      0x05DE, 0x05D3, 0x05D1, 0x05E8, 0x05D9, 0x05DD, 0x05E2, 0x05D1, 0x05E8, 0x05D9, 0x05EA},
     22,
     "4dbcagdahymbxekheh6e0a7fei0b"},
    {"(F) Hindi",
     {0x092F, 0x0939, 0x0932, 0x094B, 0x0917, 0x0939, 0x093F, 0x0928, 0x094D, 0x0926,
      0x0940, 0x0915, 0x094D, 0x092F, 0x094B, 0x0902, 0x0928, 0x0939, 0x0940, 0x0902,
      0x092C, 0x094B, 0x0932, 0x0938, 0x0915, 0x0924, 0x0947, 0x0939, 0x0948, 0x0902},
     30,
     "i1baa7eci9glrd9b2ae1bj0hfcgg6iyaf8o0a1dig0cd"},
    {"(G) Japanese",
     {0x306A, 0x305C, 0x307F, 0x3093, 0x306A, 0x65E5, 0x672C, 0x8A9E, 0x3092, 0x8A71, 0x3057,
      0x3066, 0x304F, 0x308C, 0x306A, 0x3044, 0x306E, 0x304B},
     18,
     "n8jok5ay5dzabd5bym9f0cm5685rrjetr6pdxa"},
    {"(H) Korean",
     {0xC138, 0xACC4, 0xC758, 0xBAA8, 0xB4E0, 0xC0AC, 0xB78C, 0xB4E4,
      0xC774, 0xD55C, 0xAD6D, 0xC5B4, 0xB97C, 0xC774, 0xD574, 0xD55C,
      0xB2E4, 0xBA74, 0xC5BC, 0xB9C8, 0xB098, 0xC88B, 0xC744, 0xAE4C},
     24,
     "989aomsvi5e83db1d2a355cv1e0vak1dwrv93d5xbh15a0dt30a5jpsd879ccm6fea98c"},
    {"(I) Russian",
     {0x043F, 0x043E, 0x0447, 0x0435, 0x043C, 0x0443, 0x0436, 0x0435, 0x043E, 0x043D,
      0x0438, 0x043D, 0x0435, 0x0433, 0x043E, 0x0432, 0x043E, 0x0440, 0x044F, 0x0442,
      0x043F, 0x043E, 0x0440, 0x0443, 0x0441, 0x0441, 0x043A, 0x0438},
     28,
     "b1abfaaepdrnnbgefbadotcwatmq2g4l"},
    {"(J) Spanish",
     {0x0050, 0x006F, 0x0072, 0x0071, 0x0075, 0x00E9, 0x006E, 0x006F, 0x0070, 0x0075,
      0x0065, 0x0064, 0x0065, 0x006E, 0x0073, 0x0069, 0x006D, 0x0070, 0x006C, 0x0065,
      0x006D, 0x0065, 0x006E, 0x0074, 0x0065, 0x0068, 0x0061, 0x0062, 0x006C, 0x0061,
      0x0072, 0x0065, 0x006E, 0x0045, 0x0073, 0x0070, 0x0061, 0x00F1, 0x006F, 0x006C},
     40,
     "PorqunopuedensimplementehablarenEspaol-fmd56a"},
    {"(K) Vietnamese",
     {0x0054, 0x1EA1, 0x0069, 0x0073, 0x0061, 0x006F, 0x0068, 0x1ECD, 0x006B, 0x0068, 0x00F4,
      0x006E, 0x0067, 0x0074, 0x0068, 0x1EC3, 0x0063, 0x0068, 0x1EC9, 0x006E, 0x00F3, 0x0069,
      0x0074, 0x0069, 0x1EBF, 0x006E, 0x0067, 0x0056, 0x0069, 0x1EC7, 0x0074},
     31,
     "TisaohkhngthchnitingVit-kjcr8268qyxafd2f1b9g"},
    {"(L) 3nen B gumi",
     {0x0033, 0x5E74, 0x0042, 0x7D44, 0x91D1, 0x516B, 0x5148, 0x751F},
     8,
     "3B-ww4c5e180e575a65lsy2b"},
    {"(M) -with-SUPER-MONKEYS",
     {0x5B89, 0x5BA4, 0x5948, 0x7F8E, 0x6075, 0x002D, 0x0077, 0x0069,
      0x0074, 0x0068, 0x002D, 0x0053, 0x0055, 0x0050, 0x0045, 0x0052,
      0x002D, 0x004D, 0x004F, 0x004E, 0x004B, 0x0045, 0x0059, 0x0053},
     24,
     "-with-SUPER-MONKEYS-pc58ag80a8qai00g7n9n"},
    {"(N) Hello-Another-Way",
     {0x0048, 0x0065, 0x006C, 0x006C, 0x006F, 0x002D, 0x0041, 0x006E, 0x006F,
      0x0074, 0x0068, 0x0065, 0x0072, 0x002D, 0x0057, 0x0061, 0x0079, 0x002D,
      0x305D, 0x308C, 0x305E, 0x308C, 0x306E, 0x5834, 0x6240},
     25,
     "Hello-Another-Way--fc4qua05auwb3674vfr0b"},
    {"(O) hitotsu yane no shita 2",
     {0x3072, 0x3068, 0x3064, 0x5C4B, 0x6839, 0x306E, 0x4E0B, 0x0032},
     8,
     "2-u9tlzr9756bt3uc0v"},
    {"(P) Maji de Koi suru 5 byou mae",
     {0x004D, 0x0061, 0x006A, 0x0069, 0x3067, 0x004B, 0x006F, 0x0069, 0x3059, 0x308B, 0x0035,
      0x79D2, 0x524D},
     13,
     "MajiKoi5-783gue6qz075azm5e"},
    {"(Q) pafii de runba",
     {0x30D1, 0x30D5, 0x30A3, 0x30FC, 0x0064, 0x0065, 0x30EB, 0x30F3, 0x30D0},
     9,
     "de-jg4avhby1noc0d"},
    {"(R) sono supiido de",
     {0x305D, 0x306E, 0x30B9, 0x30D4, 0x30FC, 0x30C9, 0x3067},
     7,
     "d9juau41awczczp"},
    {"(S) -> $1.00 <-",
     {0x002D, 0x003E, 0x0020, 0x0024, 0x0031, 0x002E, 0x0030, 0x0030, 0x0020, 0x003C, 0x002D},
     11,
     "-> $1.00 <--"},
};

static void test_puny_rfc3492_encode(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(rfc3492); i++) {
        char out[128];
        int n = domain_punycode_encode(rfc3492[i].cp, rfc3492[i].n, out, sizeof out);
        if (n < 0 || strcmp(out, rfc3492[i].puny) != 0)
            fail_msg("%s: encoded \"%s\", want \"%s\"", rfc3492[i].name, n < 0 ? "(error)" : out,
                     rfc3492[i].puny);
        assert_int_equal(n, (int)strlen(rfc3492[i].puny));
    }
}

static void test_puny_rfc3492_decode(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(rfc3492); i++) {
        uint32_t cp[128];
        const char *p = rfc3492[i].puny;
        int n = domain_punycode_decode(p, strlen(p), cp, NELEM(cp));
        if (n != (int)rfc3492[i].n) fail_msg("%s: decoded %d code points", rfc3492[i].name, n);
        assert_memory_equal(cp, rfc3492[i].cp, rfc3492[i].n * sizeof cp[0]);
    }
}

static void test_puny_decode_case(void **state)
{
    (void)state;
    uint32_t a[64];
    uint32_t b[64];
    const char *mixed = "b1abfaaepdrnnbgefbaDotcwatmq2g4l"; /* as printed in RFC 3492 (I) */
    int n = domain_punycode_decode(mixed, strlen(mixed), a, NELEM(a));
    int m = domain_punycode_decode("B1ABFAAEPDRNNBGEFBADOTCWATMQ2G4L", 32, b, NELEM(b));
    assert_int_equal(n, 28);
    assert_int_equal(m, 28);
    assert_memory_equal(a, rfc3492[8].cp, 28 * sizeof a[0]);
    assert_memory_equal(b, rfc3492[8].cp, 28 * sizeof b[0]);
}

static void test_puny_buecher(void **state)
{
    (void)state;
    const uint32_t cp[] = {'b', 0xFC, 'c', 'h', 'e', 'r'};
    char out[32];
    assert_int_equal(domain_punycode_encode(cp, NELEM(cp), out, sizeof out), 9);
    assert_string_equal(out, "bcher-kva");
    uint32_t back[16];
    assert_int_equal(domain_punycode_decode("bcher-kva", 9, back, NELEM(back)), 6);
    assert_memory_equal(back, cp, sizeof cp);
}

static void test_puny_decode_invalid(void **state)
{
    (void)state;
    uint32_t cp[64];
    const char *bad[] = {
        "9",                 /* truncated integer */
        "99999999999a",      /* overflow */
        "999999999999999",   /* overflow of w */
        "abc-!",             /* not a digit */
        "\xc3\xbc-tda",      /* non-basic before the delimiter */
        "-a",                /* RFC 3492 6.2: a leading delimiter is not consumed */
        "bcher-kva\xc3\xbc", /* non-basic after the delimiter */
    };
    for (size_t i = 0; i < NELEM(bad); i++)
        if (domain_punycode_decode(bad[i], strlen(bad[i]), cp, NELEM(cp)) >= 0)
            fail_msg("decode accepted \"%s\"", bad[i]);
    /* Output bound: "bcher-kva" is 6 code points. */
    assert_int_equal(domain_punycode_decode("bcher-kva", 9, cp, 5), -1);
    assert_int_equal(domain_punycode_decode("bcher-kva", 9, cp, 6), 6);
    /* "a" is U+0080; the empty string is the empty sequence. */
    assert_int_equal(domain_punycode_decode("a", 1, cp, NELEM(cp)), 1);
    assert_int_equal(cp[0], 0x80);
    assert_int_equal(domain_punycode_decode("", 0, cp, NELEM(cp)), 0);
}

static void test_puny_encode_limits(void **state)
{
    (void)state;
    const uint32_t cp[] = {'b', 0xFC, 'c', 'h', 'e', 'r'};
    char out[16];
    assert_int_equal(domain_punycode_encode(cp, NELEM(cp), out, 9), -1); /* needs 10 */
    assert_int_equal(domain_punycode_encode(cp, NELEM(cp), out, 10), 9);
    const uint32_t big[] = {'a', 0x110000};
    assert_int_equal(domain_punycode_encode(big, NELEM(big), out, sizeof out), -1);
    const uint32_t top[] = {0x10FFFF};
    uint32_t back[4];
    int n = domain_punycode_encode(top, 1, out, sizeof out);
    assert_true(n > 0);
    assert_int_equal(domain_punycode_decode(out, (size_t)n, back, NELEM(back)), 1);
    assert_int_equal(back[0], 0x10FFFF);
}

/* ---- the domain set: seed lists -------------------------------------------------------- */

static void test_set_allow_github(void **state)
{
    (void)state;
    domain_set_t *s = set_of(seed_allow, NELEM(seed_allow));
    assert_int_equal(nmatch(s, "github.com"), 0);
    assert_int_equal(nmatch(s, "api.github.com"), 0);
    assert_int_equal(nmatch(s, "a.b.c.github.com"), 0);
    assert_int_equal(nmatch(s, "GitHub.COM."), 0);
    assert_int_equal(nmatch(s, "Codeload.GitHub.Com"), 0);
    domain_set_free(s);
}

static void test_set_allow_not_substring(void **state)
{
    (void)state;
    domain_set_t *s = set_of(seed_allow, NELEM(seed_allow));
    assert_int_equal(nmatch(s, "evilgithub.com"), -1);
    assert_int_equal(nmatch(s, "github.com.evil.net"), -1);
    assert_int_equal(nmatch(s, "github.co"), -1);
    assert_int_equal(nmatch(s, "hub.com"), -1);
    assert_int_equal(nmatch(s, "com"), -1);
    assert_int_equal(nmatch(s, "githubusercontent.com"), -1);
    assert_int_equal(nmatch(s, "xgithub.com"), -1);
    assert_int_equal(nmatch(s, "github-com.evil.net"), -1);
    domain_set_free(s);
}

static void test_set_allow_others(void **state)
{
    (void)state;
    domain_set_t *s = set_of(seed_allow, NELEM(seed_allow));
    assert_int_equal(nmatch(s, "s3.us-east-1.amazonaws.com"), 5);
    assert_int_equal(nmatch(s, "amazonaws.com"), 5);
    assert_int_equal(nmatch(s, "registry.npmjs.org"), 1);
    assert_int_equal(nmatch(s, "pypi.org"), 2);
    assert_int_equal(nmatch(s, "files.pythonhosted.org"), -1);
    assert_int_equal(nmatch(s, "registry-1.docker.io"), 3);
    assert_int_equal(nmatch(s, "eu.gcr.io"), 4);
    assert_int_equal(nmatch(s, "gcr.io"), 4);
    assert_int_equal(nmatch(s, "docker.com"), -1);
    assert_int_equal(nmatch(s, "io"), -1);
    domain_set_free(s);
}

static void test_set_deny_exact(void **state)
{
    (void)state;
    domain_set_t *s = set_of(seed_deny, NELEM(seed_deny));
    assert_int_equal(nmatch(s, "api.openai.com"), 0);
    assert_int_equal(nmatch(s, "api.openai.com."), 0);
    assert_int_equal(nmatch(s, "API.OpenAI.com"), 0);
    assert_int_equal(nmatch(s, "x.api.openai.com"), -1);
    assert_int_equal(nmatch(s, "openai.com"), -1);
    assert_int_equal(nmatch(s, "chat.openai.com"), -1);
    assert_int_equal(nmatch(s, "api.anthropic.com"), 1);
    assert_int_equal(nmatch(s, "console.anthropic.com"), -1);
    assert_int_equal(nmatch(s, "generativelanguage.googleapis.com"), 2);
    assert_int_equal(nmatch(s, "storage.googleapis.com"), -1);
    domain_set_free(s);
}

static void test_set_deny_suffix(void **state)
{
    (void)state;
    domain_set_t *s = set_of(seed_deny, NELEM(seed_deny));
    assert_int_equal(nmatch(s, "dropbox.com"), 3);
    assert_int_equal(nmatch(s, "www.dropbox.com"), 3);
    assert_int_equal(nmatch(s, "content.dl.dropbox.com"), 3);
    assert_int_equal(nmatch(s, "dropboxusercontent.com"), -1);
    assert_int_equal(nmatch(s, "wetransfer.com"), 4);
    assert_int_equal(nmatch(s, "we.tl"), -1);
    assert_int_equal(nmatch(s, "PasteBin.com."), 5);
    assert_int_equal(nmatch(s, "notpastebin.com"), -1);
    domain_set_free(s);
}

static void test_set_seed_policy_order(void **state)
{
    (void)state;
    /* deny first, then allow, else default deny (as policy.c does). */
    domain_set_t *allow = set_of(seed_allow, NELEM(seed_allow));
    domain_set_t *deny = set_of(seed_deny, NELEM(seed_deny));
    add_ok(allow, "api.openai.com", 99); /* an allow entry the deny list must override */
    assert_true(nmatch(deny, "api.openai.com") >= 0);
    assert_int_equal(nmatch(allow, "api.openai.com"), 99);
    assert_int_equal(nmatch(deny, "api.github.com"), -1);
    assert_int_equal(nmatch(allow, "api.github.com"), 0);
    assert_int_equal(nmatch(deny, "example.org"), -1);
    assert_int_equal(nmatch(allow, "example.org"), -1);
    domain_set_free(allow);
    domain_set_free(deny);
}

/* ---- the domain set: semantics ---------------------------------------------------------- */

static void test_set_wildcard_subdomains_only(void **state)
{
    (void)state;
    domain_set_t *s = domain_set_new();
    add_ok(s, "*.example.com", 7);
    assert_int_equal(nmatch(s, "a.example.com"), 7);
    assert_int_equal(nmatch(s, "a.b.example.com"), 7);
    assert_int_equal(nmatch(s, "example.com"), -1);
    assert_int_equal(nmatch(s, "EXAMPLE.com."), -1);
    assert_int_equal(nmatch(s, "badexample.com"), -1);
    assert_int_equal(nmatch(s, "example.com.evil.net"), -1);
    domain_set_free(s);
}

static void test_set_exact_only(void **state)
{
    (void)state;
    domain_set_t *s = domain_set_new();
    add_ok(s, "Example.COM.", 3);
    assert_int_equal(nmatch(s, "example.com"), 3);
    assert_int_equal(nmatch(s, "www.example.com"), -1);
    assert_int_equal(nmatch(s, "ample.com"), -1);
    domain_set_free(s);
}

static void test_set_longest_match_exact_vs_suffix(void **state)
{
    (void)state;
    for (int order = 0; order < 2; order++) {
        domain_set_t *s = domain_set_new();
        if (order == 0) {
            add_ok(s, ".example.com", 1);
            add_ok(s, "exact.example.com", 2);
        } else {
            add_ok(s, "exact.example.com", 2);
            add_ok(s, ".example.com", 1);
        }
        assert_int_equal(nmatch(s, "exact.example.com"), 2);
        assert_int_equal(nmatch(s, "a.exact.example.com"), 1);
        assert_int_equal(nmatch(s, "other.example.com"), 1);
        assert_int_equal(nmatch(s, "example.com"), 1);
        domain_set_free(s);
    }
}

static void test_set_longest_suffix_wins(void **state)
{
    (void)state;
    domain_set_t *s = domain_set_new();
    add_ok(s, ".com", 0);
    add_ok(s, ".example.com", 1);
    add_ok(s, ".b.example.com", 2);
    add_ok(s, "*.c.b.example.com", 3);
    assert_int_equal(nmatch(s, "x.b.example.com"), 2);
    assert_int_equal(nmatch(s, "b.example.com"), 2);
    assert_int_equal(nmatch(s, "c.example.com"), 1);
    assert_int_equal(nmatch(s, "c.b.example.com"), 2); /* wildcard excludes its apex */
    assert_int_equal(nmatch(s, "d.c.b.example.com"), 3);
    assert_int_equal(nmatch(s, "other.com"), 0);
    assert_int_equal(nmatch(s, "com"), 0);
    assert_int_equal(nmatch(s, "example.org"), -1);
    domain_set_free(s);
}

static void test_set_exact_beats_suffix_same_name(void **state)
{
    (void)state;
    domain_set_t *s = domain_set_new();
    add_ok(s, ".example.com", 6);
    add_ok(s, "example.com", 5);
    assert_int_equal(domain_set_count(s), 2);
    assert_int_equal(nmatch(s, "example.com"), 5);
    assert_int_equal(nmatch(s, "a.example.com"), 6);
    domain_set_free(s);
}

static void test_set_wildcard_and_suffix_same_name(void **state)
{
    (void)state;
    domain_set_t *s = domain_set_new();
    add_ok(s, ".x.com", 2);
    add_ok(s, "*.x.com", 1);
    assert_int_equal(nmatch(s, "a.x.com"), 1); /* "*.x.com" is the longer pattern */
    assert_int_equal(nmatch(s, "x.com"), 2);
    domain_set_free(s);
}

static void test_set_duplicate_add(void **state)
{
    (void)state;
    domain_set_t *s = domain_set_new();
    add_ok(s, ".github.com", 1);
    add_ok(s, ".GitHub.com.", 2);
    add_ok(s, ".github.com", 3);
    assert_int_equal(domain_set_count(s), 1);
    assert_int_equal(nmatch(s, "api.github.com"), 1);
    add_ok(s, "github.com", 4); /* a different kind is a different pattern */
    assert_int_equal(domain_set_count(s), 2);
    assert_int_equal(nmatch(s, "github.com"), 4);
    add_ok(s, "xn--bcher-kva.de", 5);
    add_ok(s, "BÜCHER.de", 6); /* same after normalisation */
    assert_int_equal(domain_set_count(s), 3);
    assert_int_equal(nmatch(s, "bücher.de"), 5);
    domain_set_free(s);
}

static void test_set_idn_patterns(void **state)
{
    (void)state;
    domain_set_t *s = domain_set_new();
    add_ok(s, "bücher.de", 1);
    add_ok(s, ".xn--mnchen-3ya.de", 2);
    add_ok(s, "*.ŁÓDŹ.pl", 3);
    assert_int_equal(nmatch(s, "xn--bcher-kva.de"), 1);
    assert_int_equal(nmatch(s, "BÜCHER.DE."), 1);
    assert_int_equal(nmatch(s, "www.münchen.de"), 2);
    assert_int_equal(nmatch(s, "münchen.de"), 2);
    assert_int_equal(nmatch(s, "a.łódź.pl"), 3);
    assert_int_equal(nmatch(s, "łódź.pl"), -1);
    assert_int_equal(nmatch(s, "bucher.de"), -1);
    domain_set_free(s);
}

static void test_set_invalid_patterns(void **state)
{
    (void)state;
    domain_set_t *s = domain_set_new();
    add_bad(s, "", "empty");
    add_bad(s, "*", "every host");
    add_bad(s, ".", "every host");
    add_bad(s, "*.", "every host");
    add_bad(s, "..", "every host");
    add_bad(s, "*.*", "every host");
    add_bad(s, "a.*.com", "wildcard");
    add_bad(s, "*a.com", "wildcard");
    add_bad(s, "**.a.com", "wildcard");
    add_bad(s, "*.*.a.com", "wildcard");
    add_bad(s, ".*.a.com", "wildcard");
    add_bad(s, "a.com*", "wildcard");
    add_bad(s, "1.2.3.4", "IP");
    add_bad(s, ".10.0.0.1", "IP");
    add_bad(s, "*.168.192", "IP");
    add_bad(s, "0x7f.0x1", "IP");
    add_bad(s, "[::1]", "IPv6");
    add_bad(s, "::1", "IPv6");
    add_bad(s, "example.com:443", "port");
    add_bad(s, "exa mple.com", "space");
    add_bad(s, "a..b.com", "empty label");
    add_bad(s, "a/b.com", NULL);
    add_bad(s, "bad\xff.com", "UTF-8");
    add_bad(s, "-a.com", NULL);
    add_bad(s, "xn--abc-.com", NULL);
    domain_set_free(s);
}

static void test_set_add_null_and_ids(void **state)
{
    (void)state;
    char err[128];
    assert_int_equal(domain_set_add(NULL, ".a.com", 1, err, sizeof err), -1);
    domain_set_t *s = domain_set_new();
    assert_int_equal(domain_set_add(s, NULL, 1, err, sizeof err), -1);
    assert_int_equal(domain_set_add(s, ".a.com", -1, err, sizeof err), -1);
    assert_int_equal(domain_set_add(s, "*", 1, NULL, 0), -1); /* err may be NULL */
    assert_int_equal(domain_set_add(s, ".a.com", 0, NULL, 0), 0);
    assert_int_equal(nmatch(s, "a.com"), 0);
    assert_int_equal(domain_set_count(s), 1);
    domain_set_free(s);
    domain_set_free(NULL);
    assert_int_equal(domain_set_count(NULL), 0);
}

static void test_set_empty_and_null_match(void **state)
{
    (void)state;
    domain_set_t *s = domain_set_new();
    assert_int_equal(domain_set_count(s), 0);
    assert_int_equal(domain_set_match(s, "github.com", 10), -1);
    assert_int_equal(domain_set_match(NULL, "github.com", 10), -1);
    add_ok(s, ".github.com", 1);
    assert_int_equal(domain_set_match(s, NULL, 0), -1);
    assert_int_equal(domain_set_match(s, "", 0), -1);
    domain_set_free(s);
}

static void test_set_match_malformed_hosts(void **state)
{
    (void)state;
    domain_set_t *s = set_of(seed_allow, NELEM(seed_allow));
    const char *bad[] = {".github.com", "a..github.com", "github.com..", ".",
                         "..",          "github.com\xff"};
    for (size_t i = 0; i < NELEM(bad); i++)
        assert_int_equal(domain_set_match(s, bad[i], strlen(bad[i])), -1);
    char longhost[400];
    memset(longhost, 'a', sizeof longhost);
    memcpy(longhost + sizeof longhost - 11, ".github.com", 11);
    assert_int_equal(domain_set_match(s, longhost, sizeof longhost), -1);
    domain_set_free(s);
}

static void test_set_match_raw_case_and_dot(void **state)
{
    (void)state;
    /* Callers should normalise, but match itself folds ASCII case and ignores
     * one trailing dot, so a stray un-normalised host cannot slip past. */
    domain_set_t *s = set_of(seed_deny, NELEM(seed_deny));
    assert_int_equal(domain_set_match(s, "API.OPENAI.COM.", 15), 0);
    assert_int_equal(domain_set_match(s, "WWW.DropBox.Com", 15), 3);
    domain_set_free(s);
}

static void test_set_match_uses_len(void **state)
{
    (void)state;
    domain_set_t *s = domain_set_new();
    add_ok(s, "github.com", 1);
    const char *buf = "github.com.evil.net";
    assert_int_equal(domain_set_match(s, buf, 10), 1);  /* slice "github.com" */
    assert_int_equal(domain_set_match(s, buf, 19), -1); /* the whole name */
    assert_int_equal(domain_set_match(s, buf, 11), 1);  /* "github.com." */
    domain_set_free(s);
}

static void test_set_many_patterns(void **state)
{
    (void)state;
    domain_set_t *s = domain_set_new();
    char name[64];
    const int n = 5000;
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%sh%d.example.org", i % 2 ? "." : "", i);
        add_ok(s, name, i);
    }
    assert_int_equal(domain_set_count(s), (size_t)n);
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "h%d.example.org", i);
        assert_int_equal(nmatch(s, name), i);
        snprintf(name, sizeof name, "www.h%d.example.org", i);
        assert_int_equal(nmatch(s, name), i % 2 ? i : -1);
    }
    assert_int_equal(nmatch(s, "h5000.example.org"), -1);
    assert_int_equal(nmatch(s, "example.org"), -1);
    domain_set_free(s);
}

static void test_set_max_length_names(void **state)
{
    (void)state;
    /* 253-byte pattern and host; the deepest host has 127 labels. */
    char host[300];
    size_t o = 0;
    while (o < 251) {
        host[o++] = 'a';
        host[o++] = '.';
    }
    host[o++] = 'z';
    host[o] = '\0';
    assert_int_equal(strlen(host), 253);
    domain_set_t *s = domain_set_new();
    add_ok(s, ".z", 1);
    add_ok(s, host, 2);
    assert_int_equal(nmatch(s, host), 2);
    assert_int_equal(nmatch(s, host + 2), 1);
    domain_set_free(s);
}

typedef struct {
    const domain_set_t *s;
    int bad;
} reader_arg_t;

static void *reader(void *p)
{
    reader_arg_t *a = p;
    for (int i = 0; i < 20000; i++) {
        if (domain_set_match(a->s, "api.github.com", 14) != 0) a->bad++;
        if (domain_set_match(a->s, "evilgithub.com", 14) != -1) a->bad++;
        if (domain_set_match(a->s, "s3.amazonaws.com", 16) != 5) a->bad++;
    }
    return NULL;
}

static void test_set_concurrent_readers(void **state)
{
    (void)state;
    domain_set_t *s = set_of(seed_allow, NELEM(seed_allow));
    pthread_t t[4];
    reader_arg_t a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (reader_arg_t){s, 0};
        assert_int_equal(pthread_create(&t[i], NULL, reader, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(a[i].bad, 0);
    }
    domain_set_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_norm_lowercase_trailing_dot),
        cmocka_unit_test(test_norm_underscore_and_digits),
        cmocka_unit_test(test_norm_hyphen_rules),
        cmocka_unit_test(test_norm_bad_ascii),
        cmocka_unit_test(test_norm_error_messages),
        cmocka_unit_test(test_norm_empty_labels),
        cmocka_unit_test(test_norm_label_length),
        cmocka_unit_test(test_norm_total_length),
        cmocka_unit_test(test_norm_outbuf_too_small),
        cmocka_unit_test(test_norm_idn_buecher),
        cmocka_unit_test(test_norm_idn_muenchen),
        cmocka_unit_test(test_norm_idn_uppercase_latin),
        cmocka_unit_test(test_norm_idn_rfc3492_samples),
        cmocka_unit_test(test_norm_alabels_kept),
        cmocka_unit_test(test_norm_bad_alabels),
        cmocka_unit_test(test_norm_bad_utf8),
        cmocka_unit_test(test_norm_forbidden_unicode),
        cmocka_unit_test(test_norm_idna_full_stops),
        cmocka_unit_test(test_norm_idn_label_length),
        cmocka_unit_test(test_norm_idempotent),
        cmocka_unit_test(test_puny_rfc3492_encode),
        cmocka_unit_test(test_puny_rfc3492_decode),
        cmocka_unit_test(test_puny_decode_case),
        cmocka_unit_test(test_puny_buecher),
        cmocka_unit_test(test_puny_decode_invalid),
        cmocka_unit_test(test_puny_encode_limits),
        cmocka_unit_test(test_set_allow_github),
        cmocka_unit_test(test_set_allow_not_substring),
        cmocka_unit_test(test_set_allow_others),
        cmocka_unit_test(test_set_deny_exact),
        cmocka_unit_test(test_set_deny_suffix),
        cmocka_unit_test(test_set_seed_policy_order),
        cmocka_unit_test(test_set_wildcard_subdomains_only),
        cmocka_unit_test(test_set_exact_only),
        cmocka_unit_test(test_set_longest_match_exact_vs_suffix),
        cmocka_unit_test(test_set_longest_suffix_wins),
        cmocka_unit_test(test_set_exact_beats_suffix_same_name),
        cmocka_unit_test(test_set_wildcard_and_suffix_same_name),
        cmocka_unit_test(test_set_duplicate_add),
        cmocka_unit_test(test_set_idn_patterns),
        cmocka_unit_test(test_set_invalid_patterns),
        cmocka_unit_test(test_set_add_null_and_ids),
        cmocka_unit_test(test_set_empty_and_null_match),
        cmocka_unit_test(test_set_match_malformed_hosts),
        cmocka_unit_test(test_set_match_raw_case_and_dot),
        cmocka_unit_test(test_set_match_uses_len),
        cmocka_unit_test(test_set_many_patterns),
        cmocka_unit_test(test_set_max_length_names),
        cmocka_unit_test(test_set_concurrent_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
