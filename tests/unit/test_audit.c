/*
 * test_audit.c — unit tests of src/audit: formatting (exact lines, escaping,
 * truncation, time), LLM records (the doc/gateway.md example, nulls, escaping
 * of strings and of a length-bounded prompt, the 64-finding limit, prompt
 * and line bounds, random truncation; lines above AUDIT_LINE_MAX through the
 * queue), the file sink (reopen after rename, reconfigure, errors,
 * the 100 ms flush), and the queue (4 threads x 10000 records all arrive; a
 * full queue drops instead of blocking).
 *
 * Every line the module produces is also run through json_valid(), a strict
 * RFC 8259 checker written here (strings must be valid UTF-8, no raw control
 * bytes), so "valid JSON" is checked rather than assumed.
 *
 * Files live in a mkdtemp() directory made by the group setup and removed by
 * its teardown.  Usage: test_audit [cmocka test-name filter].
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"

static char tmpdir[64];

/* ---- helpers -------------------------------------------------------------- */

static void tpath(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmpdir, name);
}

/* Whole file as a NUL-terminated heap string ("" when missing). */
static char *slurp(const char *path, size_t *lenp)
{
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        for (;;) {
            if (cap - len < 4096) {
                char *t = realloc(s, cap * 2);
                assert_non_null(t);
                s = t;
                cap *= 2;
            }
            ssize_t n = read(fd, s + len, cap - len - 1);
            assert_true(n >= 0);
            if (n == 0) break;
            len += (size_t)n;
        }
        close(fd);
    }
    s[len] = '\0';
    if (lenp) *lenp = len;
    return s;
}

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static size_t count_char(const char *s, char c)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

/* -- strict JSON checker (RFC 8259) -- */

static const char *jv_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static size_t jv_utf8(const unsigned char *s)
{
    unsigned char c = s[0];
    int n;
    unsigned cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return (size_t)n;
}

static bool jv_string(const char **pp)
{
    const char *p = *pp;
    if (*p++ != '"') return false;
    for (;;) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            *pp = p + 1;
            return true;
        }
        if (c < 0x20) /* includes the terminating NUL */
            return false;
        if (c == '\\') {
            p++;
            if (strchr("\"\\/bfnrt", *p) && *p) {
                p++;
            } else if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i]) return false;
                p += 5;
            } else {
                return false;
            }
        } else if (c >= 0x80) {
            size_t n = jv_utf8((const unsigned char *)p);
            if (!n) return false;
            p += n;
        } else {
            p++;
        }
    }
}

static bool jv_digits(const char **pp)
{
    const char *p = *pp;
    if (*p < '0' || *p > '9') return false;
    while (*p >= '0' && *p <= '9')
        p++;
    *pp = p;
    return true;
}

static bool jv_number(const char **pp)
{
    const char *p = *pp;
    if (*p == '-') p++;
    if (*p == '0')
        p++;
    else if (!jv_digits(&p))
        return false;
    if (*p == '.') {
        p++;
        if (!jv_digits(&p)) return false;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!jv_digits(&p)) return false;
    }
    *pp = p;
    return true;
}

static bool jv_value(const char **pp, int depth)
{
    const char *p = jv_ws(*pp);
    bool ok;

    if (depth > 32) return false;
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        bool obj = *p == '{';
        p = jv_ws(p + 1);
        if (*p == close) {
            *pp = p + 1;
            return true;
        }
        for (;;) {
            if (obj) {
                p = jv_ws(p);
                if (!jv_string(&p)) return false;
                p = jv_ws(p);
                if (*p++ != ':') return false;
            }
            if (!jv_value(&p, depth + 1)) return false;
            p = jv_ws(p);
            if (*p == ',') {
                p++;
                continue;
            }
            if (*p != close) return false;
            *pp = p + 1;
            return true;
        }
    }
    if (*p == '"')
        ok = jv_string(&p);
    else if (!strncmp(p, "true", 4) || !strncmp(p, "null", 4))
        ok = (p += 4, true);
    else if (!strncmp(p, "false", 5))
        ok = (p += 5, true);
    else
        ok = jv_number(&p);
    *pp = p;
    return ok;
}

/* s is exactly one JSON object. */
static bool json_valid(const char *s)
{
    const char *p = jv_ws(s);
    if (*p != '{' || !jv_value(&p, 0)) return false;
    return *jv_ws(p) == '\0';
}

static audit_egress_t example(void)
{
    audit_egress_t r = {
        .time_ms = UINT64_C(1795434544123),
        .workspace = "local",
        .group = "developers",
        .policy = "developers-egress",
        .client = "127.0.0.1:53422",
        .method = "CONNECT",
        .host = "github.com",
        .port = 443,
        .resolved = "140.82.112.3",
        .sni = "github.com",
        .decision = "allow",
        .rule = "allow_domains:.github.com",
        .reason = NULL,
        .mode = "enforce",
        .alert = NULL,
        .status = 200,
        .bytes_up = 1234,
        .bytes_down = 56789,
        .duration_ms = 12.345,
    };
    return r;
}

static const char example_line[] =
    "{\"time\":\"2026-11-23T11:49:04.123Z\",\"kind\":\"egress\",\"workspace\":\"local\","
    "\"group\":\"developers\",\"policy\":\"developers-egress\",\"client\":\"127.0.0.1:53422\","
    "\"method\":\"CONNECT\",\"host\":\"github.com\",\"port\":443,\"resolved\":\"140.82.112.3\","
    "\"sni\":\"github.com\",\"decision\":\"allow\",\"rule\":\"allow_domains:.github.com\","
    "\"mode\":\"enforce\",\"status\":200,\"bytes_up\":1234,\"bytes_down\":56789,"
    "\"duration_ms\":12.345}";

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cdeguard-test-audit-XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    umask(022);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    if (d) {
        const struct dirent *e;
        char p[512];
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue;
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(tmpdir);
    return 0;
}

/* ---- formatting ----------------------------------------------------------- */

static void test_json_checker(void **state)
{
    (void)state;
    /* the checker used below must be able to fail */
    assert_true(json_valid(example_line));
    assert_true(json_valid("{\"a\":[1,-0.5e+3,true,null,{}],\"b\":\"\\u00e9\xc3\xa9\"}"));
    assert_false(json_valid("{\"a\":\"\x01\"}"));
    assert_false(json_valid("{\"a\":\"\xff\"}"));
    assert_false(json_valid("{\"a\":\"\xed\xa0\x80\"}"));
    assert_false(json_valid("{\"a\":\"\\x\"}"));
    assert_false(json_valid("{\"a\":\"abc}"));
    assert_false(json_valid("{\"a\":1,}"));
    assert_false(json_valid("{\"a\":01}"));
    assert_false(json_valid("{\"a\":1} x"));
    assert_false(json_valid("{\"a\":1.}"));
}

static void check_time(uint64_t ms, const char *want)
{
    char buf[32];
    audit_format_time(ms, buf, sizeof buf);
    assert_string_equal(buf, want);
}

static void test_time_known_epochs(void **state)
{
    (void)state;
    check_time(0, "1970-01-01T00:00:00.000Z");
    check_time(1, "1970-01-01T00:00:00.001Z");
    check_time(UINT64_C(1795434544123), "2026-11-23T11:49:04.123Z");
    /* leap days */
    check_time(UINT64_C(1709164800000), "2024-02-29T00:00:00.000Z");
    check_time(UINT64_C(1709251199999), "2024-02-29T23:59:59.999Z");
    check_time(UINT64_C(1709251200000), "2024-03-01T00:00:00.000Z");
    check_time(UINT64_C(951827696007), "2000-02-29T12:34:56.007Z");
    check_time(UINT64_C(4107542399999), "2100-02-28T23:59:59.999Z"); /* 2100 is no leap year */
    check_time(UINT64_C(4107542400000), "2100-03-01T00:00:00.000Z");
    /* milliseconds are truncated, never rounded into the next second */
    check_time(UINT64_C(946684799999), "1999-12-31T23:59:59.999Z");
    check_time(UINT64_C(946684800000), "2000-01-01T00:00:00.000Z");
    check_time(UINT64_C(2147483648000), "2038-01-19T03:14:08.000Z");
    /* beyond year 9999 RFC 3339 has no form: clamped */
    check_time(UINT64_C(253402300799999), "9999-12-31T23:59:59.999Z");
    check_time(UINT64_MAX, "9999-12-31T23:59:59.999Z");
}

static void test_time_matches_gmtime(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252u;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t ms = x % UINT64_C(253402300800000);
        time_t t = (time_t)(ms / 1000);
        struct tm tm;
        char want[64], got[32];
        assert_non_null(gmtime_r(&t, &tm));
        snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
        audit_format_time(ms, got, sizeof got);
        assert_string_equal(got, want);
    }
}

static void test_time_small_buffer(void **state)
{
    char buf[8];
    (void)state;
    memset(buf, 'x', sizeof buf);
    audit_format_time(0, buf, 5);
    assert_string_equal(buf, "1970");
    assert_int_equal(buf[5], 'x');
    audit_format_time(0, NULL, 0);
}

static void test_format_example(void **state)
{
    char buf[AUDIT_LINE_MAX];
    audit_egress_t r = example();
    (void)state;
    size_t n = audit_format_egress(buf, sizeof buf, &r);
    assert_string_equal(buf, example_line);
    assert_int_equal(n, strlen(example_line));
    assert_true(json_valid(buf));
}

static void test_format_optional_and_null(void **state)
{
    char buf[AUDIT_LINE_MAX];
    audit_egress_t r = {.time_ms = 0, .port = 80, .status = 0, .duration_ms = 0.0004};
    (void)state;
    audit_format_egress(buf, sizeof buf, &r);
    assert_string_equal(buf, "{\"time\":\"1970-01-01T00:00:00.000Z\",\"kind\":\"egress\","
                             "\"workspace\":\"\",\"group\":\"\",\"policy\":\"\",\"client\":\"\","
                             "\"method\":\"\",\"host\":\"\",\"port\":80,\"resolved\":\"\","
                             "\"decision\":\"\",\"rule\":\"\",\"mode\":\"\",\"status\":0,"
                             "\"bytes_up\":0,\"bytes_down\":0,\"duration_ms\":0.000}");

    r = example();
    r.sni = NULL;
    r.reason = "upload over threshold";
    r.alert = "upload_threshold";
    r.decision = "monitor";
    r.status = -1;
    r.bytes_up = UINT64_MAX;
    r.duration_ms = 1.0 / 0.0;
    audit_format_egress(buf, sizeof buf, &r);
    assert_non_null(strstr(buf, "\"port\":443,\"resolved\":\"140.82.112.3\",\"decision\""));
    assert_non_null(strstr(buf, "\"rule\":\"allow_domains:.github.com\","
                                "\"reason\":\"upload over threshold\",\"mode\":\"enforce\","
                                "\"alert\":\"upload_threshold\",\"status\":-1,"
                                "\"bytes_up\":18446744073709551615,\"bytes_down\":56789,"
                                "\"duration_ms\":1000000000000.000}"));
    assert_true(json_valid(buf));

    r.duration_ms = 0.0 / 0.0; /* NaN is not JSON */
    audit_format_egress(buf, sizeof buf, &r);
    assert_non_null(strstr(buf, "\"duration_ms\":0.000}"));
    r.duration_ms = -5;
    audit_format_egress(buf, sizeof buf, &r);
    assert_non_null(strstr(buf, "\"duration_ms\":0.000}"));
    r.duration_ms = 0.0005; /* three decimals, printf rounding */
    audit_format_egress(buf, sizeof buf, &r);
    assert_non_null(strstr(buf, "\"duration_ms\":0.001}"));
}

static void test_format_escaping(void **state)
{
    char buf[AUDIT_LINE_MAX];
    audit_egress_t r = example();
    (void)state;

    r.host = "a\"b\\c/d";
    r.reason = "\n\r\t\x01\x1f\x7f end";
    /* é € U+1F600 are valid; then: lone continuation, 0xff, a cut 3-byte
     * sequence, an overlong '/', a UTF-16 surrogate, above U+10FFFF. */
    r.rule = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|\x80|\xff|\xe2\x82|\xc0\xaf|\xed\xa0\x80|"
             "\xf4\x90\x80\x80";
    audit_format_egress(buf, sizeof buf, &r);
    assert_true(json_valid(buf));
    assert_non_null(strstr(buf, "\"host\":\"a\\\"b\\\\c/d\""));
    assert_non_null(strstr(buf, "\"reason\":\"\\u000a\\u000d\\u0009\\u0001\\u001f\\u007f end\""));
    assert_non_null(strstr(buf, "\"rule\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|\\ufffd|\\ufffd|"
                                "\\ufffd\\ufffd|\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd|"
                                "\\ufffd\\ufffd\\ufffd\\ufffd\""));
}

static void test_json_escape_api(void **state)
{
    char buf[16];
    size_t pos = 0;
    (void)state;

    assert_int_equal(audit_json_escape(buf, sizeof buf, &pos, NULL), 0);
    assert_int_equal(pos, 0);
    assert_int_equal(audit_json_escape(buf, sizeof buf, &pos, "ab\"c"), 0);
    assert_int_equal(pos, 5);
    assert_memory_equal(buf, "ab\\\"c", 5);
    /* 5 + 6 fits, the next \u0002 does not: cut between units, pos at 11 */
    assert_int_equal(audit_json_escape(buf, sizeof buf, &pos, "\x01\x02"), -1);
    assert_int_equal(pos, 11);
    assert_memory_equal(buf, "ab\\\"c\\u0001", 11);
    /* a 4-byte UTF-8 character is never split */
    pos = 0;
    assert_int_equal(audit_json_escape(buf, 3, &pos, "\xf0\x9f\x98\x80"), -1);
    assert_int_equal(pos, 0);
}

static void test_truncation_single_field(void **state)
{
    char buf[AUDIT_LINE_MAX];
    char *host = malloc(10001);
    audit_egress_t r = example();
    (void)state;

    assert_non_null(host);
    memset(host, 'a', 10000);
    host[10000] = '\0';
    r.host = host;
    size_t n = audit_format_egress(buf, sizeof buf, &r);
    assert_int_equal(n, AUDIT_LINE_MAX - 1); /* '\n' still fits */
    assert_int_equal(strlen(buf), n);
    assert_true(json_valid(buf));
    /* everything else is intact */
    assert_non_null(strstr(buf, "\"decision\":\"allow\",\"rule\":\"allow_domains:.github.com\""));
    assert_non_null(strstr(buf, "\"host\":\"aaaa"));
    assert_non_null(strstr(buf, "\"duration_ms\":12.345}"));
    free(host);
}

static void test_truncation_property(void **state)
{
    /* Random strings made of the nastiest bytes, random caps: always valid
     * JSON within the cap. */
    static const char alphabet[] = "a\"\\\x01\x7f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xff\x80";
    enum { NSTR = 8 };
    char *s[NSTR];
    char buf[AUDIT_LINE_MAX + 64];
    uint64_t x = 0x9e3779b97f4a7c15u;
    (void)state;

    for (int i = 0; i < NSTR; i++) {
        s[i] = malloc(6001);
        assert_non_null(s[i]);
    }
    for (int iter = 0; iter < 400; iter++) {
        for (int i = 0; i < NSTR; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            size_t len = (size_t)(x % 6000);
            if (iter % 4 == 0) len %= 200;
            for (size_t k = 0; k < len; k++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                s[i][k] = alphabet[x % (sizeof alphabet - 1)];
            }
            s[i][len] = '\0';
        }
        audit_egress_t r = example();
        r.workspace = s[0];
        r.host = s[1];
        r.rule = s[2];
        r.reason = s[3];
        r.sni = s[4];
        r.client = s[5];
        r.alert = iter % 2 ? s[6] : NULL;
        r.policy = s[7];
        size_t cap = iter % 3 ? AUDIT_LINE_MAX : 500 + (size_t)(x % 3600);
        if (iter % 5 == 0) cap = sizeof buf; /* more than AUDIT_LINE_MAX does not lift the limit */
        memset(buf, 'Z', sizeof buf);
        size_t n = audit_format_egress(buf, cap, &r);
        assert_true(n > 0);
        assert_true(n < cap && n <= AUDIT_LINE_MAX - 1);
        assert_int_equal(strlen(buf), n);
        if (cap < sizeof buf) assert_int_equal(buf[cap], 'Z');
        if (!json_valid(buf)) fail_msg("invalid JSON at iteration %d: %s", iter, buf);
        assert_non_null(strstr(buf, "\"duration_ms\":12.345}"));
    }
    for (int i = 0; i < NSTR; i++)
        free(s[i]);
}

static void test_format_tiny_cap(void **state)
{
    char buf[64];
    audit_egress_t r = example();
    (void)state;
    assert_int_equal(audit_format_egress(buf, sizeof buf, &r), 0);
    assert_string_equal(buf, "");
    assert_int_equal(audit_format_egress(buf, sizeof buf, NULL), 0);
}

/* ---- LLM records ---------------------------------------------------------- */

static const audit_llm_finding_t doc_findings[] = {{"email", "redact", 1}};

/* The record of doc/gateway.md, "Audit record". */
static audit_llm_t llm_example(void)
{
    audit_llm_t r = {
        .time_ms = UINT64_C(1796403600000),
        .listener = "gateway",
        .workspace = "ws-demo",
        .group = "developers",
        .team = "platform",
        .agent = "a1",
        .task = "t9",
        .client = "127.0.0.1:51234",
        .provider = "openai",
        .endpoint = "openai-chat",
        .region = "eu",
        .upstream = "eu.api.openai.com:443",
        .model = "gpt-4o-mini",
        .stream = true,
        .decision = "allow",
        .reason = NULL,
        .status = 200,
        .has_usage = true,
        .input = 12,
        .output = 30,
        .total = 42,
        .estimated = false,
        .prompt_tokens_est = 15,
        .findings = doc_findings,
        .nfindings = 1,
        .client_aborted = false,
        .bytes_up = 345,
        .bytes_down = 2048,
        .duration_ms = 812.4,
        .gateway_ms = 0.05,
        .prompt = NULL,
    };
    return r;
}

static const char llm_example_line[] =
    "{\"time\":\"2026-12-04T17:00:00.000Z\",\"type\":\"llm\",\"listener\":\"gateway\","
    "\"workspace\":\"ws-demo\",\"group\":\"developers\",\"team\":\"platform\",\"agent\":\"a1\","
    "\"task\":\"t9\",\"client\":\"127.0.0.1:51234\",\"provider\":\"openai\","
    "\"endpoint\":\"openai-chat\",\"region\":\"eu\",\"upstream\":\"eu.api.openai.com:443\","
    "\"model\":\"gpt-4o-mini\",\"stream\":true,\"decision\":\"allow\",\"reason\":null,"
    "\"status\":200,\"usage\":{\"input\":12,\"output\":30,\"cache_read\":0,\"cache_write\":0,"
    "\"reasoning\":0,\"total\":42,\"estimated\":false},\"prompt_tokens_est\":15,"
    "\"findings\":[{\"rule\":\"email\",\"action\":\"redact\",\"count\":1}],"
    "\"client_aborted\":false,\"bytes_up\":345,\"bytes_down\":2048,\"duration_ms\":812.4,"
    "\"gateway_ms\":0.05,\"prompt\":null}";

/* The tail every complete LLM line ends with, before the prompt. */
static const char llm_tail[] = "\"bytes_up\":345,\"bytes_down\":2048,\"duration_ms\":812.4,"
                               "\"gateway_ms\":0.05,\"prompt\":";

static size_t count_str(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void test_llm_format_doc_example(void **state)
{
    char buf[AUDIT_LINE_MAX];
    audit_llm_t r = llm_example();
    (void)state;

    size_t n = audit_format_llm(buf, sizeof buf, &r);
    assert_string_equal(buf, llm_example_line);
    assert_int_equal(n, strlen(llm_example_line));
    assert_true(json_valid(buf));
    /* a record without findings has an empty array */
    r.findings = NULL;
    audit_format_llm(buf, sizeof buf, &r);
    assert_non_null(strstr(buf, ",\"findings\":[],\"client_aborted\":false,"));
    assert_null(strstr(buf, "truncated"));
    assert_true(json_valid(buf));
}

static void test_llm_nulls(void **state)
{
    char buf[AUDIT_LINE_MAX];
    audit_llm_t r = {0};
    (void)state;

    audit_format_llm(buf, sizeof buf, &r);
    assert_string_equal(
        buf, "{\"time\":\"1970-01-01T00:00:00.000Z\",\"type\":\"llm\",\"listener\":\"\","
             "\"workspace\":\"\",\"group\":\"\",\"team\":\"\",\"agent\":null,\"task\":null,"
             "\"client\":\"\",\"provider\":\"\",\"endpoint\":\"\",\"region\":null,"
             "\"upstream\":\"\",\"model\":\"\",\"stream\":false,\"decision\":\"\","
             "\"reason\":null,\"status\":0,\"usage\":null,\"prompt_tokens_est\":0,"
             "\"findings\":[],\"client_aborted\":false,\"bytes_up\":0,\"bytes_down\":0,"
             "\"duration_ms\":0,\"gateway_ms\":0,\"prompt\":null}");
    assert_true(json_valid(buf));

    /* "" is null for agent, task, region, reason and prompt; not for the rest */
    r = llm_example();
    r.agent = r.task = r.region = "";
    r.reason = "";
    r.prompt = "";
    r.prompt_len = 0;
    r.team = "";
    r.model = "";
    audit_format_llm(buf, sizeof buf, &r);
    assert_non_null(strstr(buf, "\"team\":\"\",\"agent\":null,\"task\":null,"));
    assert_non_null(strstr(buf, "\"region\":null,\"upstream\""));
    assert_non_null(strstr(buf, "\"model\":\"\","));
    assert_non_null(strstr(buf, "\"reason\":null,"));
    assert_non_null(strstr(buf, "\"prompt\":null}"));
    r.prompt = "x"; /* prompt_len 0: null too */
    audit_format_llm(buf, sizeof buf, &r);
    assert_non_null(strstr(buf, "\"prompt\":null}"));

    /* a denial with estimated usage, extreme numbers */
    r = llm_example();
    r.decision = "deny";
    r.reason = "cdeguard_secret_blocked";
    r.status = 403;
    r.estimated = true;
    r.input = UINT64_MAX;
    r.reasoning = 7;
    r.client_aborted = true;
    r.stream = false;
    r.duration_ms = 0.0 / 0.0;
    r.gateway_ms = 1.0 / 0.0;
    r.bytes_down = UINT64_MAX;
    audit_format_llm(buf, sizeof buf, &r);
    assert_true(json_valid(buf));
    assert_non_null(strstr(buf, "\"stream\":false,\"decision\":\"deny\","
                                "\"reason\":\"cdeguard_secret_blocked\",\"status\":403,"
                                "\"usage\":{\"input\":18446744073709551615,\"output\":30,"
                                "\"cache_read\":0,\"cache_write\":0,\"reasoning\":7,"
                                "\"total\":42,\"estimated\":true},"));
    assert_non_null(strstr(buf, "\"client_aborted\":true,\"bytes_up\":345,"
                                "\"bytes_down\":18446744073709551615,\"duration_ms\":0,"
                                "\"gateway_ms\":1000000000000,\"prompt\":null}"));
    r.has_usage = false;
    r.duration_ms = 100;
    r.gateway_ms = 0.0126; /* three decimals, printf rounding, zeros dropped */
    audit_format_llm(buf, sizeof buf, &r);
    assert_non_null(strstr(buf, "\"status\":403,\"usage\":null,\"prompt_tokens_est\":15,"));
    assert_non_null(strstr(buf, "\"duration_ms\":100,\"gateway_ms\":0.013,"));
    assert_true(json_valid(buf));
}

static void test_llm_escaping(void **state)
{
    char buf[AUDIT_LINE_MAX];
    audit_llm_t r = llm_example();
    static const audit_llm_finding_t fx[] = {{"a\"b\\c", "re\ndact", 2}, {NULL, NULL, 0}};
    (void)state;

    r.agent = "ag\"ent\\";
    r.task = "\x01\x7f\t";
    r.model = "m\xc3\xa9\xff\xe2\x82"; /* é, then a bad byte and a cut sequence */
    r.workspace = "w\"s";
    r.findings = fx;
    r.nfindings = 2;
    /* the prompt is length-bounded: a NUL inside is escaped, bytes past
     * prompt_len are never read, a sequence cut by prompt_len is invalid */
    r.prompt = "{\"a\":\"x\"}\0\n\xe2\x82\xac\xe2\x82\xac";
    r.prompt_len = 16;
    size_t n = audit_format_llm(buf, sizeof buf, &r);
    assert_int_equal(strlen(buf), n);
    if (!json_valid(buf)) fail_msg("invalid JSON: %s", buf);
    assert_non_null(strstr(buf, "\"workspace\":\"w\\\"s\","));
    assert_non_null(strstr(buf, "\"agent\":\"ag\\\"ent\\\\\",\"task\":\"\\u0001\\u007f\\u0009\","));
    assert_non_null(strstr(buf, "\"model\":\"m\xc3\xa9\\ufffd\\ufffd\\ufffd\","));
    assert_non_null(strstr(buf,
                           "\"findings\":[{\"rule\":\"a\\\"b\\\\c\",\"action\":\"re\\u000adact\","
                           "\"count\":2},{\"rule\":\"\",\"action\":\"\",\"count\":0}],"));
    assert_non_null(strstr(buf, "\"prompt\":\"{\\\"a\\\":\\\"x\\\"}\\u0000\\u000a\xe2\x82\xac"
                                "\\ufffd\\ufffd\"}"));
}

static void test_llm_findings_limit(void **state)
{
    enum { NF = 100 };
    static audit_llm_finding_t fx[NF];
    static char names[NF][16];
    char buf[AUDIT_LLM_LINE_MAX];
    audit_llm_t r = llm_example();
    (void)state;

    for (int i = 0; i < NF; i++) {
        snprintf(names[i], sizeof names[i], "rule%d", i);
        fx[i] = (audit_llm_finding_t){names[i], "alert", (size_t)i + 1};
    }
    r.findings = fx;
    r.nfindings = AUDIT_LLM_FINDINGS_MAX; /* exactly the limit: no marker */
    audit_format_llm(buf, sizeof buf, &r);
    assert_true(json_valid(buf));
    assert_int_equal(count_str(buf, "{\"rule\":"), AUDIT_LLM_FINDINGS_MAX);
    assert_null(strstr(buf, "findings_truncated"));

    r.nfindings = NF;
    size_t n = audit_format_llm(buf, sizeof buf, &r);
    assert_true(json_valid(buf));
    assert_int_equal(strlen(buf), n);
    assert_int_equal(count_str(buf, "{\"rule\":"), AUDIT_LLM_FINDINGS_MAX);
    assert_non_null(strstr(buf, "{\"rule\":\"rule63\",\"action\":\"alert\",\"count\":64}],"
                                "\"findings_truncated\":true,\"client_aborted\":false,"));
    assert_null(strstr(buf, "rule64"));

    /* a long rule name is cut at AUDIT_LLM_FINDING_STR escaped bytes, between
     * characters: 2-byte é x 100 = 200 bytes → 64 é */
    char longname[256] = "";
    for (int i = 0; i < 100; i++)
        memcpy(longname + 2 * i, "\xc3\xa9", 2);
    audit_llm_finding_t one = {longname, "block", 1};
    r.findings = &one;
    r.nfindings = 1;
    audit_format_llm(buf, sizeof buf, &r);
    assert_true(json_valid(buf));
    char want[512];
    snprintf(want, sizeof want, "\"findings\":[{\"rule\":\"%.*s\",\"action\":\"block\"",
             AUDIT_LLM_FINDING_STR, longname);
    assert_non_null(strstr(buf, want));

    /* in a short buffer the findings that do not fit are left out, marked */
    r.findings = fx;
    r.nfindings = NF;
    n = audit_format_llm(buf, 1400, &r);
    assert_true(n > 0 && n < 1400);
    assert_true(json_valid(buf));
    size_t listed = count_str(buf, "{\"rule\":");
    assert_true(listed > 0 && listed < 20);
    assert_non_null(strstr(buf, "],\"findings_truncated\":true,\"client_aborted\":false,"));
    assert_non_null(strstr(buf, llm_tail));
}

static void test_llm_prompt_bounds(void **state)
{
    const size_t big = (size_t)1 << 20;
    char *prompt = malloc(big);
    char *buf = malloc(AUDIT_LLM_LINE_MAX + 64);
    audit_llm_t r = llm_example();
    (void)state;

    assert_non_null(prompt);
    assert_non_null(buf);
    memset(prompt, 'p', big);
    r.prompt = prompt;

    /* a prompt that fits is whole, without a marker */
    r.prompt_len = 100000;
    size_t n = audit_format_llm(buf, AUDIT_LLM_LINE_MAX + 64, &r);
    assert_true(n > 100000 && n < AUDIT_LLM_LINE_MAX);
    assert_true(json_valid(buf));
    assert_null(strstr(buf, "prompt_truncated"));
    assert_int_equal(count_char(strstr(buf, "\"prompt\":\"") + 10, 'p'), 100000);

    /* cap n + 1 is just enough; one byte less cuts the prompt and marks it */
    char *copy = strdup(buf);
    assert_non_null(copy);
    assert_int_equal(audit_format_llm(buf, n + 1, &r), n);
    assert_string_equal(buf, copy);
    size_t m = audit_format_llm(buf, n, &r);
    assert_true(m > 0 && m < n);
    assert_true(json_valid(buf));
    assert_non_null(strstr(buf, "\",\"prompt_truncated\":true}"));
    free(copy);

    /* 1 MiB: cut to the line bound, whatever cap the caller has */
    r.prompt_len = big;
    n = audit_format_llm(buf, AUDIT_LLM_LINE_MAX + 64, &r);
    assert_int_equal(n, AUDIT_LLM_LINE_MAX - 1); /* '\n' still fits */
    assert_int_equal(strlen(buf), n);
    assert_true(json_valid(buf));
    assert_non_null(strstr(buf, llm_tail));
    assert_non_null(strstr(buf, "pp\",\"prompt_truncated\":true}"));
    /* the fields before the prompt are intact */
    assert_non_null(strstr(buf, "\"findings\":[{\"rule\":\"email\",\"action\":\"redact\","
                                "\"count\":1}],\"client_aborted\":false,"));

    /* a huge metadata string is held to AUDIT_LINE_MAX without findings and prompt */
    char *model = malloc(20001);
    assert_non_null(model);
    memset(model, 'm', 20000);
    model[20000] = '\0';
    r = llm_example();
    r.findings = NULL;
    r.model = model;
    n = audit_format_llm(buf, AUDIT_LLM_LINE_MAX, &r);
    assert_int_equal(n, AUDIT_LINE_MAX - 1);
    assert_true(json_valid(buf));
    assert_non_null(strstr(buf, "\"provider\":\"openai\""));
    assert_non_null(strstr(buf, llm_tail));
    /* ... and the prompt still gets the rest */
    r.prompt = prompt;
    r.prompt_len = 50000;
    n = audit_format_llm(buf, AUDIT_LLM_LINE_MAX, &r);
    assert_true(n > 50000 + AUDIT_LINE_MAX - 100);
    assert_true(json_valid(buf));
    assert_null(strstr(buf, "prompt_truncated"));

    /* too small for the fixed fields */
    assert_int_equal(audit_format_llm(buf, 64, &r), 0);
    assert_string_equal(buf, "");
    assert_int_equal(audit_format_llm(buf, 64, NULL), 0);
    free(model);
    free(prompt);
    free(buf);
}

static void test_llm_truncation_property(void **state)
{
    /* Random nasty strings, findings and prompts, random caps: always one
     * valid JSON object within the cap, and the numbers after the prompt
     * intact. */
    static const char alphabet[] = "a\"\\\x01\x7f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xff\x80";
    enum { NSTR = 10, NF = 80, PMAX = 300000 };
    char *s[NSTR];
    char *prompt = malloc(PMAX);
    char *buf = malloc(AUDIT_LLM_LINE_MAX + 64);
    audit_llm_finding_t fx[NF];
    uint64_t x = 0x2545f4914f6cdd1du;
    (void)state;

    assert_non_null(prompt);
    assert_non_null(buf);
    for (int i = 0; i < NSTR; i++) {
        s[i] = malloc(6001);
        assert_non_null(s[i]);
    }
#define NEXT() (x ^= x << 13, x ^= x >> 7, x ^= x << 17)
    for (int iter = 0; iter < 150; iter++) {
        for (int i = 0; i < NSTR; i++) {
            size_t len = (size_t)(NEXT() % 6000);
            if (iter % 3 == 0) len %= 300;
            for (size_t k = 0; k < len; k++)
                s[i][k] = alphabet[NEXT() % (sizeof alphabet - 1)];
            s[i][len] = '\0';
        }
        size_t plen = (size_t)(NEXT() % PMAX);
        if (iter % 4 == 0) plen %= 2000;
        for (size_t k = 0; k < plen; k++) /* NUL included */
            prompt[k] = iter % 2 ? alphabet[NEXT() % sizeof alphabet] : (char)(NEXT() & 0xff);
        size_t nf = (size_t)(NEXT() % NF);
        for (size_t k = 0; k < nf; k++)
            fx[k] = (audit_llm_finding_t){s[k % NSTR] + NEXT() % 50, s[(k + 3) % NSTR], k};
        audit_llm_t r = llm_example();
        r.workspace = s[0];
        r.model = s[1];
        r.agent = s[2];
        r.reason = iter % 2 ? s[3] : NULL;
        r.upstream = s[4];
        r.client = s[5];
        r.findings = fx;
        r.nfindings = nf;
        r.prompt = iter % 5 == 0 ? NULL : prompt;
        r.prompt_len = plen;
        size_t cap = AUDIT_LLM_LINE_MAX + 64;
        if (iter % 3 == 1) cap = 700 + (size_t)(NEXT() % 20000);
        if (iter % 3 == 2) cap = 700 + (size_t)(NEXT() % AUDIT_LLM_LINE_MAX);
        memset(buf, 'Z', AUDIT_LLM_LINE_MAX + 64);
        size_t n = audit_format_llm(buf, cap, &r);
        assert_true(n > 0);
        assert_true(n < cap && n <= AUDIT_LLM_LINE_MAX - 1);
        assert_int_equal(strlen(buf), n);
        if (cap < AUDIT_LLM_LINE_MAX + 64) assert_int_equal(buf[cap], 'Z');
        if (!json_valid(buf)) fail_msg("invalid JSON at iteration %d", iter);
        assert_non_null(strstr(buf, "\"duration_ms\":812.4,\"gateway_ms\":0.05,\"prompt\":"));
        assert_true(count_str(buf, "{\"rule\":") <= AUDIT_LLM_FINDINGS_MAX);
    }
#undef NEXT
    for (int i = 0; i < NSTR; i++)
        free(s[i]);
    free(prompt);
    free(buf);
}

static void test_llm_file_long_line(void **state)
{
    char path[256], err[256];
    const size_t plen = 200000;
    char *prompt = malloc(plen);
    audit_llm_t r = llm_example();
    audit_egress_t e = example();
    (void)state;

    assert_non_null(prompt);
    memset(prompt, 'q', plen);
    tpath(path, sizeof path, "llm.log");
    assert_int_equal(audit_open(false, path, err, sizeof err), 0);
    uint64_t d0 = audit_dropped();
    audit_llm(&r); /* short: from the stack */
    r.prompt = prompt;
    r.prompt_len = plen;
    audit_llm(&r); /* longer than AUDIT_LINE_MAX: queued whole */
    r.prompt_len = (size_t)1 << 19;
    char *huge = malloc(r.prompt_len);
    assert_non_null(huge);
    memset(huge, '"', r.prompt_len); /* 2 bytes escaped each: cut */
    r.prompt = huge;
    audit_llm(&r);
    audit_egress(&e);
    audit_close();
    assert_int_equal(audit_dropped(), d0);

    size_t len;
    char *got = slurp(path, &len);
    assert_int_equal(count_char(got, '\n'), 4);
    char *save = NULL;
    char *l1 = strtok_r(got, "\n", &save), *l2 = strtok_r(NULL, "\n", &save);
    char *l3 = strtok_r(NULL, "\n", &save), *l4 = strtok_r(NULL, "\n", &save);
    assert_string_equal(l1, llm_example_line);
    assert_true(strlen(l2) > plen);
    assert_true(json_valid(l2));
    assert_null(strstr(l2, "prompt_truncated"));
    /* cut between two-byte escapes: one byte may stay unused */
    assert_true(strlen(l3) >= AUDIT_LLM_LINE_MAX - 2 && strlen(l3) <= AUDIT_LLM_LINE_MAX - 1);
    assert_true(json_valid(l3));
    assert_non_null(strstr(l3, "\\\"\",\"prompt_truncated\":true}"));
    assert_string_equal(l4, example_line);
    free(got);
    free(huge);
    free(prompt);
}

/* ---- file sink ------------------------------------------------------------ */

static void test_file_roundtrip(void **state)
{
    char path[256], err[256];
    audit_egress_t r = example();
    (void)state;

    tpath(path, sizeof path, "roundtrip.log");
    assert_int_equal(audit_open(false, path, err, sizeof err), 0);
    assert_int_equal(audit_open(false, path, err, sizeof err), -1);
    assert_non_null(strstr(err, "already open"));
    audit_egress(&r);
    audit_write_line("{\"kind\":\"custom\"}", 17);
    audit_close();

    size_t len;
    char *got = slurp(path, &len);
    char want[AUDIT_LINE_MAX * 2];
    snprintf(want, sizeof want, "%s\n{\"kind\":\"custom\"}\n", example_line);
    assert_string_equal(got, want);
    free(got);

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);

    /* appends, never truncates */
    assert_int_equal(audit_open(false, path, err, sizeof err), 0);
    audit_write_line("{}", 2);
    audit_close();
    got = slurp(path, NULL);
    assert_int_equal(count_char(got, '\n'), 3);
    free(got);
}

static void test_calls_after_close_are_noops(void **state)
{
    char path[256], err[256];
    audit_egress_t r = example();
    (void)state;

    tpath(path, sizeof path, "closed.log");
    assert_int_equal(audit_open(false, path, err, sizeof err), 0);
    audit_close();
    uint64_t dropped = audit_dropped();
    audit_egress(&r);
    audit_write_line("{}", 2);
    assert_int_equal(audit_reopen(), 0);
    audit_close();
    audit_close();
    assert_int_equal(audit_dropped(), dropped);
    char *got = slurp(path, NULL);
    assert_string_equal(got, "");
    free(got);
}

static void test_open_errors(void **state)
{
    char err[256];
    (void)state;

    err[0] = '\0';
    assert_int_equal(audit_open(false, "/nonexistent-dir/x/audit.log", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent-dir/x/audit.log"));
    assert_int_equal(audit_open(false, NULL, err, sizeof err), -1);
    assert_int_equal(audit_open(false, "", NULL, 0), -1);
    /* and the module is still usable afterwards */
    char path[256];
    tpath(path, sizeof path, "after-error.log");
    assert_int_equal(audit_open(false, path, err, sizeof err), 0);
    audit_close();
}

static void test_write_line_rejects(void **state)
{
    char path[256], err[256], big[AUDIT_LINE_MAX + 1];
    (void)state;

    tpath(path, sizeof path, "rejects.log");
    assert_int_equal(audit_open(false, path, err, sizeof err), 0);
    uint64_t d0 = audit_dropped();
    audit_write_line("{\"a\":1}\n{\"b\":2}", 15); /* would be two lines */
    memset(big, ' ', sizeof big);
    big[0] = '{';
    big[AUDIT_LINE_MAX - 2] = '}';
    audit_write_line(big, AUDIT_LINE_MAX); /* one byte too long with its '\n' */
    assert_int_equal(audit_dropped(), d0 + 2);
    audit_write_line(big, AUDIT_LINE_MAX - 1); /* the longest that fits */
    audit_close();
    assert_int_equal(audit_dropped(), d0 + 2);
    size_t len;
    char *got = slurp(path, &len);
    assert_int_equal(len, AUDIT_LINE_MAX);
    assert_int_equal(got[AUDIT_LINE_MAX - 2], '}');
    assert_int_equal(got[AUDIT_LINE_MAX - 1], '\n');
    free(got);
}

static void test_reopen_after_rename(void **state)
{
    char path[256], rotated[256], err[256];
    (void)state;

    tpath(path, sizeof path, "rotate.log");
    tpath(rotated, sizeof rotated, "rotate.log.1");
    assert_int_equal(audit_open(false, path, err, sizeof err), 0);
    audit_write_line("{\"n\":1}", 7);
    audit_write_line("{\"n\":2}", 7);
    assert_int_equal(rename(path, rotated), 0); /* logrotate: rename, then SIGHUP */
    assert_int_equal(audit_reopen(), 0);
    audit_write_line("{\"n\":3}", 7);
    audit_close();

    char *old = slurp(rotated, NULL), *cur = slurp(path, NULL);
    assert_string_equal(old, "{\"n\":1}\n{\"n\":2}\n");
    assert_string_equal(cur, "{\"n\":3}\n");
    free(old);
    free(cur);

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
}

static void test_reconfigure(void **state)
{
    char a[256], b[256], err[256];
    (void)state;

    tpath(a, sizeof a, "reconf-a.log");
    tpath(b, sizeof b, "reconf-b.log");
    int fds = count_fds();
    /* reconfigure on a closed module opens it */
    assert_int_equal(audit_reconfigure(false, a, err, sizeof err), 0);
    audit_write_line("{\"n\":1}", 7);
    err[0] = '\0';
    assert_int_equal(audit_reconfigure(false, "/nonexistent-dir/b.log", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent-dir/b.log"));
    audit_write_line("{\"n\":2}", 7); /* old sink kept */
    assert_int_equal(audit_reconfigure(false, b, err, sizeof err), 0);
    audit_write_line("{\"n\":3}", 7);
    assert_int_equal(audit_reopen(), 0); /* reopens b, not a */
    audit_write_line("{\"n\":4}", 7);
    assert_int_equal(audit_reconfigure(true, NULL, err, sizeof err), 0); /* to stdout */
    assert_int_equal(audit_reopen(), 0);                                 /* no-op on stdout */
    assert_int_equal(audit_reconfigure(false, b, err, sizeof err), 0);
    for (int i = 0; i < 10; i++) /* more switches than can be pending at once */
        assert_int_equal(audit_reopen(), 0);
    audit_write_line("{\"n\":5}", 7);
    audit_close();
    assert_int_equal(count_fds(), fds); /* every sink fd closed, stdout left open */
    assert_int_equal(fcntl(STDOUT_FILENO, F_GETFD), 0);

    char *ga = slurp(a, NULL), *gb = slurp(b, NULL);
    assert_string_equal(ga, "{\"n\":1}\n{\"n\":2}\n");
    assert_string_equal(gb, "{\"n\":3}\n{\"n\":4}\n{\"n\":5}\n");
    free(ga);
    free(gb);
}

static void test_flush_within_100ms(void **state)
{
    char path[256], err[256];
    audit_egress_t r = example();
    (void)state;

    tpath(path, sizeof path, "flush.log");
    assert_int_equal(audit_open(false, path, err, sizeof err), 0);
    audit_egress(&r);
    /* no close: the writer must flush on its own (100 ms + slack) */
    char *got = NULL;
    for (int i = 0; i < 50; i++) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
        free(got);
        got = slurp(path, NULL);
        if (*got) break;
    }
    assert_int_equal(count_char(got, '\n'), 1);
    assert_true(json_valid(strtok(got, "\n")));
    free(got);
    audit_close();
}

/* ---- queue ---------------------------------------------------------------- */

enum { NTHREADS = 4, PER_THREAD = 10000 };

static void *producer(void *arg)
{
    int t = (int)(intptr_t)arg;
    char host[64];
    audit_egress_t r = example();

    r.host = host;
    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(host, sizeof host, "t%d-%d.example", t, i);
        r.bytes_up = (uint64_t)i;
        audit_egress(&r);
    }
    return NULL;
}

static void test_concurrent_writers(void **state)
{
    char path[256], err[256];
    pthread_t th[NTHREADS];
    (void)state;

    tpath(path, sizeof path, "concurrent.log");
    uint64_t d0 = audit_dropped();
    assert_int_equal(audit_open(false, path, err, sizeof err), 0);
    for (int t = 0; t < NTHREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, producer, (void *)(intptr_t)t), 0);
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    audit_close();
    assert_int_equal(audit_dropped(), d0);

    char *got = slurp(path, NULL);
    static bool seen[NTHREADS][PER_THREAD];
    int last[NTHREADS];
    memset(seen, 0, sizeof seen);
    for (int t = 0; t < NTHREADS; t++)
        last[t] = -1;
    size_t lines = 0;
    char *save = NULL;
    for (char *l = strtok_r(got, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        int t, i;
        const char *h = strstr(l, "\"host\":\"t");
        assert_non_null(h);
        assert_int_equal(sscanf(h, "\"host\":\"t%d-%d.example\"", &t, &i), 2);
        assert_true(t >= 0 && t < NTHREADS && i >= 0 && i < PER_THREAD);
        assert_false(seen[t][i]);
        assert_true(i > last[t]); /* each producer's lines in the order it queued them */
        last[t] = i;
        seen[t][i] = true;
        if (lines % 997 == 0) /* a sample: the whole check is slow under sanitizers */
            assert_true(json_valid(l));
        lines++;
    }
    assert_int_equal(lines, NTHREADS * PER_THREAD);
    free(got);
}

typedef struct drain {
    int fd;
    size_t lines;
} drain_t;

static void *drainer(void *arg)
{
    drain_t *d = arg;
    char buf[65536];
    ssize_t n;
    while ((n = read(d->fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++)
            d->lines += buf[i] == '\n';
    return NULL;
}

static void test_full_queue_drops(void **state)
{
    /* stdout → a pipe nobody reads: the writer blocks in write(), the queue
     * fills, producers must count drops and return at once. */
    enum { N = 12000, LEN = 4000 }; /* 48 MB > queue + pipe */
    int p[2];
    char err[256];
    char *line = malloc(LEN);
    (void)state;

    assert_non_null(line);
    memset(line, ' ', LEN);
    line[0] = '{';
    line[LEN - 1] = '}';
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(pipe(p), 0);
    assert_true(dup2(p[1], STDOUT_FILENO) >= 0);
    close(p[1]);

    uint64_t d0 = audit_dropped();
    assert_int_equal(audit_open(true, NULL, err, sizeof err), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < N; i++)
        audit_write_line(line, LEN);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    uint64_t dropped = audit_dropped() - d0;

    drain_t d = {.fd = p[0], .lines = 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, drainer, &d), 0);
    audit_close();
    dup2(saved, STDOUT_FILENO); /* closes the pipe's last write end: EOF */
    close(saved);
    pthread_join(th, NULL);
    close(p[0]);
    free(line);

    assert_true(dropped > 0);
    assert_int_equal(d.lines + dropped, N);
    /* never blocked: 12000 copies take far less than a second even with ASan */
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(secs < 5.0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_checker),
        cmocka_unit_test(test_time_known_epochs),
        cmocka_unit_test(test_time_matches_gmtime),
        cmocka_unit_test(test_time_small_buffer),
        cmocka_unit_test(test_format_example),
        cmocka_unit_test(test_format_optional_and_null),
        cmocka_unit_test(test_format_escaping),
        cmocka_unit_test(test_json_escape_api),
        cmocka_unit_test(test_truncation_single_field),
        cmocka_unit_test(test_truncation_property),
        cmocka_unit_test(test_format_tiny_cap),
        cmocka_unit_test(test_llm_format_doc_example),
        cmocka_unit_test(test_llm_nulls),
        cmocka_unit_test(test_llm_escaping),
        cmocka_unit_test(test_llm_findings_limit),
        cmocka_unit_test(test_llm_prompt_bounds),
        cmocka_unit_test(test_llm_truncation_property),
        cmocka_unit_test(test_llm_file_long_line),
        cmocka_unit_test(test_file_roundtrip),
        cmocka_unit_test(test_calls_after_close_are_noops),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_write_line_rejects),
        cmocka_unit_test(test_reopen_after_rename),
        cmocka_unit_test(test_reconfigure),
        cmocka_unit_test(test_flush_within_100ms),
        cmocka_unit_test(test_concurrent_writers),
        cmocka_unit_test(test_full_queue_drops),
    };
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
