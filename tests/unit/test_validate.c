/*
 * test_validate.c — unit tests of src/inspect/validate.c: CRC32/base62 and
 * GitHub token checksums, card issuer/length/Luhn, IBAN lengths and mod-97,
 * SSN rules, JWT structure, phone shapes, AWS key ids, entropy, and the
 * placeholder and hash/UUID noise filters.
 *
 * Every candidate is handed to the validator as an exact-size heap copy with
 * no NUL terminator (see call()), so ASan reports any read past n.
 *
 * No real credentials here: GitHub tokens are random fakes with a correct
 * checksum, card numbers come from the networks' public test lists, IBANs
 * from the registry's published examples.  Fake GitHub tokens are kept
 * without their "ghX_" prefix in the source so secret scanners leave this
 * file alone; the prefix is added at run time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inspect/validate.h"

/* ---- helpers -------------------------------------------------------------- */

/* f(s) on an exact-size, unterminated heap copy of s. */
static bool call_n(validate_fn f, const char *s, size_t n)
{
    char *copy = malloc(n ? n : 1);
    bool r;
    assert_non_null(copy);
    memcpy(copy, s, n);
    r = f(copy, n);
    free(copy);
    return r;
}

static bool call(validate_fn f, const char *s)
{
    return call_n(f, s, strlen(s));
}

#define YES(f, s) assert_true(call((f), (s)))
#define NO(f, s) assert_false(call((f), (s)))

/* xorshift64: deterministic "random" test data. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static void random_base62(char *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = base62[rng() % 62];
}

/* "ghX_" + 30 random + checksum, NUL-terminated in out[41]. */
static void make_github(char kind, char out[41])
{
    memcpy(out, "gh", 2);
    out[2] = kind;
    out[3] = '_';
    random_base62(out + 4, 30);
    validate_base62_6(validate_crc32(out, 34), out + 34);
    out[40] = '\0';
}

/* ---- CRC32, base62, GitHub --------------------------------------------------- */

static void test_crc32_base62(void **state)
{
    (void)state;
    char b[7] = {0};

    assert_int_equal(validate_crc32("123456789", 9), 0xcbf43926u); /* the CRC-32 check value */
    assert_int_equal(validate_crc32("", 0), 0u);
    assert_int_equal(validate_crc32("a", 1), 0xe8b7be43u);
    validate_base62_6(0, b);
    assert_string_equal(b, "000000");
    validate_base62_6(61, b);
    assert_string_equal(b, "00000z");
    validate_base62_6(62, b);
    assert_string_equal(b, "000010");
    validate_base62_6(0xffffffffu, b);
    assert_string_equal(b, "4gfFC3");
    validate_base62_6(0xcbf43926u, b); /* python3: base62(zlib.crc32(b"123456789")) */
    assert_string_equal(b, "3jZRME");
}

static void test_github(void **state)
{
    (void)state;
    /* Built independently with python3: body = "ghp_" + 30 random base62;
     * token = body + base62_6(zlib.crc32(body)).  Prefix added below. */
    static const char py_ghp[] = "ezOtgoQ3bUl9IXOdQ4BK05gQ8KGlLG1REXIF";
    static const char py_gho[] = "C95i9AP1B8vIdiACaNdB2F2k3gIHj54GliJp";
    char tok[41], bad[41];

    snprintf(tok, sizeof tok, "ghp_%s", py_ghp);
    YES(validate_github_token, tok);
    assert_false(validate_is_placeholder(tok, 40));
    tok[10] = tok[10] == 'A' ? 'B' : 'A'; /* body changed: checksum no longer matches */
    NO(validate_github_token, tok);
    snprintf(tok, sizeof tok, "gho_%s", py_gho);
    YES(validate_github_token, tok);
    tok[2] = 'p'; /* the prefix is under the checksum too */
    NO(validate_github_token, tok);
    tok[2] = 'x'; /* unknown token kind */
    NO(validate_github_token, tok);

    /* our own generator, every kind, and a wrong last checksum character */
    const char kinds[] = "pousr";
    for (int i = 0; i < 200; i++) {
        make_github(kinds[i % 5], tok);
        assert_true(call(validate_github_token, tok));
        assert_false(call(validate_is_placeholder, tok));
        memcpy(bad, tok, sizeof bad);
        bad[39] = bad[39] == '0' ? '1' : '0';
        assert_false(call(validate_github_token, bad));
        assert_false(call_n(validate_github_token, tok, 39));
    }
    make_github('p', tok);
    tok[20] = '-'; /* not base62 */
    NO(validate_github_token, tok);
    NO(validate_github_token, "ghp_");
    NO(validate_github_token, "");

    /* fine-grained: github_pat_ + 22 + '_' + 59 */
    char pat[94];
    memcpy(pat, "github_pat_", 11);
    random_base62(pat + 11, 22);
    pat[33] = '_';
    random_base62(pat + 34, 59);
    pat[93] = '\0';
    YES(validate_github_token, pat);
    pat[33] = 'x';
    NO(validate_github_token, pat);
    pat[33] = '_';
    pat[50] = '+';
    NO(validate_github_token, pat);
    assert_false(call_n(validate_github_token, pat, 92));
}

/* ---- cards ------------------------------------------------------------------ */

static void test_card(void **state)
{
    (void)state;
    static const char *const good[] = {
        "4111111111111111", "5555555555554444",    "378282246310005",  "6011111111111117",
        "3530111333300000", "2223003122003222",    "4000000000000002", "36123450000003",
        "4111123400005",    "4111123400000000005", "612345000006",     "6212345000000000",
        "2221123400000005", "2720123400000001",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char buf[32];
        assert_true(call(validate_card, good[i]));
        /* change one digit: Luhn fails */
        snprintf(buf, sizeof buf, "%s", good[i]);
        buf[5] = buf[5] == '9' ? '0' : (char)(buf[5] + 1);
        assert_false(call(validate_card, buf));
    }
    /* spaced and dashed */
    YES(validate_card, "4111 1111 1111 1111");
    YES(validate_card, "4111-1111-1111-1111");
    YES(validate_card, "3782 822463 10005");
    YES(validate_card, "5555-5555-5555-4444");
    NO(validate_card, "4111 1111-1111 1111");  /* mixed separators */
    NO(validate_card, "4111  1111 1111 1111"); /* double space */
    NO(validate_card, "4111 1111 1111 1111 "); /* trailing separator */
    NO(validate_card, " 4111 1111 1111 1111");
    NO(validate_card, "41 11 11 11 11 11 11 11"); /* 2-digit groups are not card formatting */
    NO(validate_card, "4111.1111.1111.1111");
    /* Luhn-valid but wrong length for the issuer */
    NO(validate_card, "3412345000000005");     /* Amex with 16 digits */
    NO(validate_card, "412345000000001");      /* Visa with 15 */
    NO(validate_card, "37123450000002");       /* Amex with 14 */
    NO(validate_card, "512345000000000");      /* Mastercard with 15 */
    NO(validate_card, "51123450000000002");    /* Mastercard with 17 */
    NO(validate_card, "2721123400000000");     /* just past the 2-series range */
    NO(validate_card, "353012340000007");      /* JCB with 15 */
    NO(validate_card, "0000000000000000");     /* all same digit (Luhn-valid) */
    NO(validate_card, "4111111111");           /* too short */
    NO(validate_card, "41111111111111111111"); /* 20 digits */
    NO(validate_card, "1234567812345670");     /* Luhn-valid, no issuer starts with 1 */
    NO(validate_card, "");
}

/* ---- IBAN -------------------------------------------------------------------- */

static void test_iban(void **state)
{
    (void)state;
    static const char *const good[] = {
        "DE89370400440532013000",
        "GB82WEST12345698765432",
        "FR1420041010050500013M02606",
        "NL91ABNA0417164300",
        "BE68539007547034",
        "CH9300762011623852957",
        "NO9386011117947",
        "MT84MALT011000012345MTLCAST001S",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char buf[40];
        assert_true(call(validate_iban, good[i]));
        snprintf(buf, sizeof buf, "%s", good[i]);
        buf[6] = buf[6] == '9' ? '0' : (char)(buf[6] + 1); /* one BBAN character changed */
        assert_false(call(validate_iban, buf));
    }
    YES(validate_iban, "DE89 3704 0044 0532 0130 00");
    YES(validate_iban, "GB82 WEST 1234 5698 7654 32");
    YES(validate_iban, "FR14 2004 1010 0505 0001 3M02 606");
    YES(validate_iban, "nl91abna0417164300"); /* lower case folded */
    YES(validate_iban, "gb82 west 1234 5698 7654 32");
    NO(validate_iban, "DE88370400440532013000");       /* check digits changed */
    NO(validate_iban, "DE89 3704 0044 0532 0130 00 "); /* trailing space */
    NO(validate_iban, "DE89  3704 0044 0532 0130 00"); /* double space */
    NO(validate_iban, "DE8 93704 0044 0532 0130 00");  /* space off the 4-grid */
    NO(validate_iban, "DE89 370400440532013000");      /* half grouped */
    NO(validate_iban, "DE8937040044053201300");        /* DE is 22, not 21 */
    NO(validate_iban, "NL91ABNA04171643001");          /* NL is 18 */
    NO(validate_iban, "XX89370400440532013000");       /* no such country */
    NO(validate_iban, "DE89-3704-0044-0532-0130-00");
    NO(validate_iban, "");
}

/* ---- SSN ----------------------------------------------------------------------- */

static void test_ssn(void **state)
{
    (void)state;
    YES(validate_us_ssn, "536-22-1234");
    YES(validate_us_ssn, "536221234");
    YES(validate_us_ssn, "001-01-0001");
    YES(validate_us_ssn, "899-99-9999");
    NO(validate_us_ssn, "000-22-1234"); /* area 000 */
    NO(validate_us_ssn, "666-22-1234"); /* area 666 */
    NO(validate_us_ssn, "900-22-1234"); /* area 900-999 */
    NO(validate_us_ssn, "999221234");
    NO(validate_us_ssn, "536-00-1234"); /* group 00 */
    NO(validate_us_ssn, "536-22-0000"); /* serial 0000 */
    NO(validate_us_ssn, "078-05-1120"); /* Woolworth wallet card */
    NO(validate_us_ssn, "219-09-9999"); /* advertising number */
    NO(validate_us_ssn, "078051120");
    NO(validate_us_ssn, "536-221234"); /* half formatted */
    NO(validate_us_ssn, "536 22 1234");
    NO(validate_us_ssn, "53-622-1234");
    NO(validate_us_ssn, "5362212345");
    NO(validate_us_ssn, "53a-22-1234");
}

/* ---- JWT ------------------------------------------------------------------------- */

/* base64url of {"alg":"HS256","typ":"JWT"} and {"sub":"u1"} */
#define JWT_H "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
#define JWT_P "eyJzdWIiOiJ1MSJ9"
#define JWT_S "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

static void test_jwt(void **state)
{
    (void)state;
    YES(validate_jwt, JWT_H "." JWT_P "." JWT_S);
    /* the jwt.io sample: a valid JWT, and a documentation value */
    static const char jwtio[] =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwi"
        "aWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    YES(validate_jwt, jwtio);
    YES(validate_is_placeholder, jwtio);
    /* header with whitespace: ' {"alg" : "RS256"} \n' */
    YES(validate_jwt, "IHsiYWxnIiA6ICJSUzI1NiJ9IAo." JWT_P "." JWT_S);
    /* typ "at+jwt" is JWT-ish */
    YES(validate_jwt, "eyJ0eXAiOiJhdCtqd3QiLCJhbGciOiJFUzI1NiJ9." JWT_P "." JWT_S);

    NO(validate_jwt, JWT_H "." JWT_P);                /* two segments */
    NO(validate_jwt, JWT_H "." JWT_P ".");            /* empty signature */
    NO(validate_jwt, JWT_H "." JWT_P "." JWT_S ".x"); /* four segments */
    NO(validate_jwt, JWT_H "." JWT_P "."
                           "dBjf+tJe/Z"); /* '+' and '/' are not base64url */
    NO(validate_jwt, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9=." JWT_P "." JWT_S); /* padding */
    NO(validate_jwt, "eyJhb$ciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." JWT_P "." JWT_S);  /* bad char */
    NO(validate_jwt, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9x." JWT_P "." JWT_S); /* len%4 == 1 */
    NO(validate_jwt, "eyJ0eXAiOiJKV1QifQ." JWT_P "." JWT_S); /* {"typ":"JWT"}: no alg */
    NO(validate_jwt, "eyJ4IjoiYWxnIn0." JWT_P "." JWT_S);    /* {"x":"alg"}: alg not a key */
    NO(validate_jwt, "WyJhbGciXQ." JWT_P "." JWT_S);         /* ["alg"]: not an object */
    NO(validate_jwt, "eyJhbGciOiJIUzI1NiIsInR5cCI6IlBORyJ9." JWT_P "." JWT_S); /* typ PNG */
    NO(validate_jwt, JWT_H ".ImhlbGxvIg." JWT_S);      /* payload "hello" is not an object */
    NO(validate_jwt, JWT_H ".eyJzdWIiOiJ1MSI." JWT_S); /* payload {"sub":"u1" unterminated */
    NO(validate_jwt, "a.b.c");
    NO(validate_jwt, "..");
    NO(validate_jwt, "");

    /* a header too long for the decode buffer is refused, not overflowed */
    {
        size_t hlen = 8200, n;
        char *big = malloc(hlen + 64);
        assert_non_null(big);
        memcpy(big, "eyAg", 4);
        for (size_t i = 4; i < hlen; i++)
            big[i] = 'I';
        n = hlen;
        big[n++] = '.';
        memcpy(big + n, JWT_P, strlen(JWT_P));
        n += strlen(JWT_P);
        big[n++] = '.';
        memcpy(big + n, "abcd", 4);
        n += 4;
        assert_false(call_n(validate_jwt, big, n));
        free(big);
    }
}

/* ---- phone --------------------------------------------------------------------- */

static void test_phone(void **state)
{
    (void)state;
    YES(validate_phone, "+14155552671");
    YES(validate_phone, "+1 415 555 2671");
    YES(validate_phone, "+1-415-555-2671");
    YES(validate_phone, "+1 (415) 555-2671");
    YES(validate_phone, "(415) 555-2671");
    YES(validate_phone, "(415)555-2671");
    YES(validate_phone, "415-555-2671");
    YES(validate_phone, "415.555.2671");
    YES(validate_phone, "415 555 2671");
    YES(validate_phone, "+44 20 7946 0958");
    YES(validate_phone, "+44 (0)20 7946 0958");
    YES(validate_phone, "030 12345678");
    YES(validate_phone, "06 12 34 56 78");
    YES(validate_phone, "06.12.34.56.78");
    YES(validate_phone, "555-1234 567");

    NO(validate_phone, "4155552671");      /* bare run of digits: documented */
    NO(validate_phone, "004915123456789"); /* also bare */
    NO(validate_phone, "2024-01-15");      /* date */
    NO(validate_phone, "15.01.2024");
    NO(validate_phone, "2024 01 15");
    NO(validate_phone, "1.2.3");             /* version, and too few digits */
    NO(validate_phone, "10.2.3456.7");       /* version-like */
    NO(validate_phone, "192.168.100.200");   /* dotted quad */
    NO(validate_phone, "3.14159265");        /* decimal */
    NO(validate_phone, "1 234 567");         /* thousands */
    NO(validate_phone, "+1 555");            /* < 7 digits */
    NO(validate_phone, "+1234567890123456"); /* > 15 digits */
    NO(validate_phone, "555-555-5555");      /* one digit repeated */
    NO(validate_phone, "+0 415 555 2671");   /* no country code starts with 0 */
    NO(validate_phone, "(415 555-2671");     /* unbalanced */
    NO(validate_phone, "415) 555-2671");
    NO(validate_phone, "415--555-2671");
    NO(validate_phone, "415-555-2671-");
    NO(validate_phone, "415-555-2671x12");
    NO(validate_phone, "++1 415 555 2671");
    NO(validate_phone, "");
}

/* ---- AWS ------------------------------------------------------------------------- */

static void test_aws(void **state)
{
    (void)state;
    YES(validate_aws_key_id, "AKIAIOSFODNN7EXAMPLE");
    YES(validate_aws_key_id, "ASIAQ3EGVNWXYZ234567");
    YES(validate_aws_key_id, "ABIAQ3EGVNWXYZ234567");
    YES(validate_aws_key_id, "ACCAQ3EGVNWXYZ234567");
    NO(validate_aws_key_id, "AKIBQ3EGVNWXYZ234567"); /* prefix */
    NO(validate_aws_key_id, "AKIAQ3EGVNWXYZ234568"); /* 8 is not base32 */
    NO(validate_aws_key_id, "AKIAQ3EGVNWXYZ234561"); /* nor 1 */
    NO(validate_aws_key_id, "AKIAQ3EGVNWXYZ23456a"); /* lower case */
    NO(validate_aws_key_id, "AKIAQ3EGVNWXYZ23456");  /* 19 */
    NO(validate_aws_key_id, "AKIAQ3EGVNWXYZ2345677");
    NO(validate_aws_key_id, "");
}

/* ---- base64-encoded credentials ------------------------------------------------ */

static void test_base64_credentials(void **state)
{
    (void)state;
    /* svc-deploy:Fhl7dkCFeD3XZ5QIf3TO, :p4Tq9sWv2LmX8rYz (empty user, token only) */
    YES(validate_basic_auth, "c3ZjLWRlcGxveTpGaGw3ZGtDRmVEM1haNVFJZjNUTw==");
    YES(validate_basic_auth, "OnA0VHE5c1d2MkxtWDhyWXo=");
    YES(validate_basic_auth, "OnA0VHE5c1d2MkxtWDhyWXo");              /* unpadded */
    YES(validate_basic_auth, "cmtfbGl2ZV84SmQyTHE5Vng0VG03V3AzOg=="); /* key as user, no password */
    NO(validate_basic_auth, "YWRtaW46");                              /* admin: */
    NO(validate_basic_auth, "YWRtaW46YWRtaW4=");                      /* admin:admin */
    NO(validate_basic_auth, "dXNlcjpwYXNzd29yZA==");                  /* user:password */
    NO(validate_basic_auth, "Y2k6YWJj");                              /* ci:abc, too short */
    NO(validate_basic_auth, "bm8gY29sb24gaGVyZQ==");                  /* no colon here */
    NO(validate_basic_auth, "ZGVwbG95OjxwYXNzd29yZD4=");              /* deploy:<password> */
    NO(validate_basic_auth, "authentication");                        /* decodes to binary */
    NO(validate_basic_auth, "c3ZjLWRlcGxveTpGaGw3ZGtDRmVEM1haNVFJZjNUTw="); /* bad padding */
    NO(validate_basic_auth, "c3ZjLWRlcGxveTpGaGw3ZGtDRmVEM1haNVFJZjNUTw=a");
    NO(validate_basic_auth, "c3ZjLWRlcGxveTpGaGw3ZGtDRmVEM1haNVFJZjNUT");    /* 4n+1 */
    NO(validate_basic_auth, "c3ZjLWRlcGxveTpGaGw3ZGtD-mVEM1haNVFJZjNUTw=="); /* url alphabet */
    NO(validate_basic_auth, "");

    /* s3cr3t-V4lu3-Zq9!, K7pQ2vX9mLw4, "K7pQ2vX9mLw4\n" */
    YES(validate_b64_secret, "czNjcjN0LVY0bHUzLVpxOSE=");
    YES(validate_b64_secret, "SzdwUTJ2WDltTHc0");
    YES(validate_b64_secret, "SzdwUTJ2WDltTHc0Cg==");
    NO(validate_b64_secret, "bXktYXBwLW5hbWU=");     /* my-app-name */
    NO(validate_b64_secret, "aGVsbG8gd29ybGQgZm9v"); /* hello world foo */
    NO(validate_b64_secret, "cGFzc3dvcmQ=");         /* password */
    NO(validate_b64_secret, "YWRtaW4=");             /* admin, short */
    NO(validate_b64_secret, "Zm9vYmFyMTI=");         /* foobar12: low entropy */
    NO(validate_b64_secret, "PDcZ8q1fLx0Wm3N2");     /* random base64 decodes to binary */
    /* -----BEGIN PUBLIC KEY----- ... is not a secret */
    NO(validate_b64_secret,
       "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0KTUZrd0V3WUhLb1pJemowQ0FRWUlLb1pJemowREFRY0RRZ0FF");
    /* -----BEGIN EC PRIVATE KEY----- ... is */
    YES(validate_b64_secret, "LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCk1IY0NBUUVFSUJG");

    /* postgresql://svc:Gz82kLq0vPw7@db.prod:5432/app */
    YES(validate_b64_uri_credential,
        "cG9zdGdyZXNxbDovL3N2YzpHejgya0xxMHZQdzdAZGIucHJvZDo1NDMyL2FwcA==");
    NO(validate_b64_uri_credential,
       "aHR0cHM6Ly9hcGkuYWNtZS5pby92MQ=="); /* https://api.acme.io/v1 */
    /* postgres://postgres:postgres@localhost/db */
    NO(validate_b64_uri_credential, "cG9zdGdyZXM6Ly9wb3N0Z3Jlczpwb3N0Z3Jlc0Bsb2NhbGhvc3QvZGI=");
    NO(validate_b64_uri_credential, "czNjcjN0LVY0bHUzLVpxOSE=");
    NO(validate_b64_uri_credential, "");
}

/* ---- entropy -------------------------------------------------------------------- */

static void test_entropy(void **state)
{
    (void)state;
    char all[256];

    assert_true(validate_entropy("aaaa", 4) == 0.0);
    assert_true(validate_entropy("", 0) == 0.0);
    assert_true(validate_entropy(NULL, 0) == 0.0);
    assert_float_equal(validate_entropy("ab", 2), 1.0, 1e-12);
    assert_float_equal(validate_entropy("abcd", 4), 2.0, 1e-12);
    assert_float_equal(validate_entropy("aabb", 4), 1.0, 1e-12);
    assert_float_equal(validate_entropy("0123456789abcdef", 16), 4.0, 1e-12);
    assert_float_equal(validate_entropy("aaab", 4), 0.8112781244591328, 1e-12);
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    assert_float_equal(validate_entropy(all, 256), 8.0, 1e-12);
    assert_true(validate_entropy("3UdeE0UQ7OI1EYJbZLVnem70AnssR1RsI3Rd4AR0", 40) > 4.0);
}

/* ---- placeholders ---------------------------------------------------------------- */

static void test_placeholder(void **state)
{
    (void)state;
    /* documentation examples and words */
    YES(validate_is_placeholder, "AKIAIOSFODNN7EXAMPLE");
    YES(validate_is_placeholder, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    YES(validate_is_placeholder, "my-example-key");
    YES(validate_is_placeholder, "sample_token_123");
    YES(validate_is_placeholder, "dummy");
    YES(validate_is_placeholder, "dummy_api_key_1");
    YES(validate_is_placeholder, "sk-fake-0001");
    YES(validate_is_placeholder, "changeme");
    YES(validate_is_placeholder, "[REDACTED]");
    YES(validate_is_placeholder, "\"changeme\"");
    /* placeholders */
    YES(validate_is_placeholder, "xxxxxxxxxxxxxxxxxxxx");
    YES(validate_is_placeholder, "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    YES(validate_is_placeholder, "AKIAXXXXXXXXXXXXXXXX");
    YES(validate_is_placeholder, "XXXX-XXXX-XXXX-XXXX");
    YES(validate_is_placeholder, "****");
    YES(validate_is_placeholder, "sk-****************abcd");
    YES(validate_is_placeholder, "<token>");
    YES(validate_is_placeholder, "<YOUR_API_KEY>");
    YES(validate_is_placeholder, "{{ api_key }}");
    YES(validate_is_placeholder, "{{.Values.token}}");
    YES(validate_is_placeholder, "${VAR}");
    YES(validate_is_placeholder, "${{ secrets.GITHUB_TOKEN }}");
    YES(validate_is_placeholder, "$GITHUB_TOKEN");
    YES(validate_is_placeholder, "$token");
    YES(validate_is_placeholder, "%API_KEY%");
    YES(validate_is_placeholder, "YOUR_API_KEY");
    YES(validate_is_placeholder, "your-token-here");
    YES(validate_is_placeholder, "yourApiKey");
    YES(validate_is_placeholder, "sk-...");
    YES(validate_is_placeholder, "abc\xe2\x80\xa6");
    YES(validate_is_placeholder, "TODO");
    YES(validate_is_placeholder, "todo");
    YES(validate_is_placeholder, "insert-key-here");
    /* test-mode keys */
    YES(validate_is_placeholder, "sk_test_4eC39HqLyjWDarjtT1zdp7dc");
    YES(validate_is_placeholder, "pk_test_TYooMQauvdEDq54NiTphI7jx");
    YES(validate_is_placeholder, "rk_test_abcdefghijklmnop");
    /* repeated characters and sequences */
    YES(validate_is_placeholder, "a");
    YES(validate_is_placeholder, "0000000000");
    YES(validate_is_placeholder, "0123456789");
    YES(validate_is_placeholder, "abcdef");
    YES(validate_is_placeholder, "1234567890abcdef");
    YES(validate_is_placeholder, "9876543210");
    YES(validate_is_placeholder, "sk_live_0123456789abcdefghij");
    YES(validate_is_placeholder, "abababababab");
    YES(validate_is_placeholder, "1234-5678-9012-3456");
    YES(validate_is_placeholder, "");

    /* random-looking real shapes are never placeholders */
    NO(validate_is_placeholder, "3UdeE0UQ7OI1EYJbZLVnem70AnssR1RsI3Rd4AR0");
    NO(validate_is_placeholder, "JxvYqqjzFSMw74SmkRhQRdxTZBum0iPd0hHwVsh6");
    NO(validate_is_placeholder, "IriBV6VaLE525CSNYlXKZwrYdR0a4z1cx2o8qOfe");
    NO(validate_is_placeholder, "u8P+MJZyf+g/Sk/98JkYrlEAJ2vd6CkmuSjjhhOi");
    NO(validate_is_placeholder, "sk_live_51HxT2bKz9QpW3vR8yLmN4cD7fA0eJ6gU");
    /* an "x" run inside a real token is not "xxxx" */
    NO(validate_is_placeholder, "ghp_a8Kz2xxxxQm4R7pL9sT1vW3yB5nC6dE0fGhJ");
    NO(validate_is_placeholder, "xoxb-263548197024-4810375926143-q8RtV2mLx9NcW4bZ7kHs3JpD");
    NO(validate_is_placeholder, "AKIAQ3EGVNWKRZ7J4M6P");
    NO(validate_is_placeholder, "hunter2-correct-horse");
    NO(validate_is_placeholder, "Dummyfied9xQ"); /* "dummy" only as a whole word */
    NO(validate_is_placeholder, "k9Yourq2ZtN8");

    /* and a sweep of random base62 / base64url tokens */
    for (int i = 0; i < 5000; i++) {
        char tok[48];
        size_t n = 20 + (size_t)(rng() % 28);
        random_base62(tok, n);
        if (i % 2) { /* base64url-ish: sprinkle - and _ */
            tok[rng() % n] = '-';
            tok[rng() % n] = '_';
        }
        if (call_n(validate_is_placeholder, tok, n)) fail_msg("placeholder: %.*s", (int)n, tok);
    }
}

/* ---- hashes and UUIDs --------------------------------------------------------------- */

static void test_hash_uuid(void **state)
{
    (void)state;
    YES(validate_is_hash_or_uuid, "9dd4e461268c8034f5c8564e155c67a6"); /* md5("x") */
    YES(validate_is_hash_or_uuid, "11f6ad8ec52a2984abaafd7c3b516503785c2072");
    YES(validate_is_hash_or_uuid, "11F6AD8EC52A2984ABAAFD7C3B516503785C2072");
    YES(validate_is_hash_or_uuid,
        "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881");
    YES(validate_is_hash_or_uuid,
        "a4abd4448c49562d828115d13a1fccea927f52b4d5459297f8b43e42da89238b"
        "c13626e43dcb38ddb082488927ec904fb42057443983e88585179d50551afe62");
    YES(validate_is_hash_or_uuid, "123e4567-e89b-12d3-a456-426614174000");
    YES(validate_is_hash_or_uuid, "123E4567-E89B-12D3-A456-426614174000");
    YES(validate_is_hash_or_uuid, "{123e4567-e89b-12d3-a456-426614174000}");
    YES(validate_is_hash_or_uuid, "urn:uuid:123e4567-e89b-12d3-a456-426614174000");
    YES(validate_is_hash_or_uuid,
        "sha512-pKvURIxJVi2CgRXROh/M6pJ/UrTVRZKX+LQ+QtqJI4vBNibkPcs43bCCSI"
        "kn7JBPtCBXRDmD6IWFF51QVRr+Yg==");
    YES(validate_is_hash_or_uuid, "sha1-EfatjsUqKYSrqv18O1FlA3hcIHI=");
    YES(validate_is_hash_or_uuid, "sha256-LXEWQrcmsEQBYnyp+6wy9chTD7GQPMTbAiWHF5IaSIE=");
    YES(validate_is_hash_or_uuid, "h1:LXEWQrcmsEQBYnyp+6wy9chTD7GQPMTbAiWHF5IaSIE=");
    YES(validate_is_hash_or_uuid,
        "sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881");

    NO(validate_is_hash_or_uuid, "9dd4e461268c8034f5c8564e155c67a");   /* 31 */
    NO(validate_is_hash_or_uuid, "9dd4e461268c8034f5c8564e155c67a6a"); /* 33 */
    NO(validate_is_hash_or_uuid, "9dd4e461268c8034f5c8564e155c67g6");  /* g */
    NO(validate_is_hash_or_uuid, "9dd4e461268C8034f5c8564e155c67a6");  /* mixed case */
    NO(validate_is_hash_or_uuid, "123e4567-e89b-12d3-a456-42661417400");
    NO(validate_is_hash_or_uuid, "123e4567-e89b-12d3-a456_426614174000");
    NO(validate_is_hash_or_uuid, "sha512-pKvURIxJVi2CgRXROh");
    NO(validate_is_hash_or_uuid, "sha1-EfatjsUqKYSrqv18O1FlA3hcIHI"); /* padding missing */
    NO(validate_is_hash_or_uuid, "3UdeE0UQ7OI1EYJbZLVnem70AnssR1RsI3Rd4AR0");
    NO(validate_is_hash_or_uuid, "");
}

/* ---- lookup -------------------------------------------------------------------------- */

static void test_lookup(void **state)
{
    (void)state;
    assert_ptr_equal(validate_lookup("github"), validate_github_token);
    assert_ptr_equal(validate_lookup("card"), validate_card);
    assert_ptr_equal(validate_lookup("iban"), validate_iban);
    assert_ptr_equal(validate_lookup("us_ssn"), validate_us_ssn);
    assert_ptr_equal(validate_lookup("jwt"), validate_jwt);
    assert_ptr_equal(validate_lookup("phone"), validate_phone);
    assert_ptr_equal(validate_lookup("aws_key_id"), validate_aws_key_id);
    assert_ptr_equal(validate_lookup("basic_auth"), validate_basic_auth);
    assert_ptr_equal(validate_lookup("b64_secret"), validate_b64_secret);
    assert_ptr_equal(validate_lookup("b64_uri_credential"), validate_b64_uri_credential);
    assert_null(validate_lookup("GitHub"));
    assert_null(validate_lookup("ssn"));
    assert_null(validate_lookup(""));
    assert_null(validate_lookup(NULL));
}

/* NULL with n == 0 is accepted by every function. */
static void test_null(void **state)
{
    (void)state;
    static const char *const names[] = {
        "github", "card",       "iban",       "us_ssn",     "jwt",
        "phone",  "aws_key_id", "basic_auth", "b64_secret", "b64_uri_credential"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_false(validate_lookup(names[i])(NULL, 0));
    assert_true(validate_is_placeholder(NULL, 0));
    assert_false(validate_is_hash_or_uuid(NULL, 0));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_base62), cmocka_unit_test(test_github),
        cmocka_unit_test(test_card),         cmocka_unit_test(test_iban),
        cmocka_unit_test(test_ssn),          cmocka_unit_test(test_jwt),
        cmocka_unit_test(test_phone),        cmocka_unit_test(test_aws),
        cmocka_unit_test(test_entropy),      cmocka_unit_test(test_placeholder),
        cmocka_unit_test(test_hash_uuid),    cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_null),         cmocka_unit_test(test_base64_credentials),
    };
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
