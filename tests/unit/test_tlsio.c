/*
 * tlsio: handshakes and records between two in-memory sessions, with a CA,
 * a server certificate and a client certificate made here with OpenSSL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls/tlsio.h"

static char dir[64];
static char ca_path[128], srv_cert[128], srv_key[128], cli_cert[128], cli_key[128], other_ca[128];

static EVP_PKEY *make_key(void)
{
    return EVP_EC_gen("P-256");
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ex);
    X509_add_ext(cert, ex, -1);
    X509_EXTENSION_free(ex);
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                       const char *san, bool ca, long serial)
{
    X509 *c = X509_new();
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), serial);
    X509_gmtime_adj(X509_getm_notBefore(c), -3600);
    X509_gmtime_adj(X509_getm_notAfter(c), 3600L * 24);
    X509_set_pubkey(c, key);
    X509_NAME *name = X509_get_subject_name(c);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name);
    add_ext(c, issuer ? issuer : c, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
    if (san) add_ext(c, issuer ? issuer : c, NID_subject_alt_name, san);
    X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256());
    return c;
}

static void write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    if (cert) PEM_write_X509(f, cert);
    if (key) PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/cdeguard-tlsio-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(ca_path, sizeof ca_path, "%s/ca.pem", dir);
    snprintf(other_ca, sizeof other_ca, "%s/other.pem", dir);
    snprintf(srv_cert, sizeof srv_cert, "%s/srv.pem", dir);
    snprintf(srv_key, sizeof srv_key, "%s/srv.key", dir);
    snprintf(cli_cert, sizeof cli_cert, "%s/cli.pem", dir);
    snprintf(cli_key, sizeof cli_key, "%s/cli.key", dir);
    EVP_PKEY *cak = make_key(), *sk = make_key(), *ck = make_key(), *ok = make_key();
    X509 *ca = make_cert(cak, "test CA", NULL, NULL, NULL, true, 1);
    X509 *other = make_cert(ok, "other CA", NULL, NULL, NULL, true, 2);
    X509 *srv = make_cert(sk, "provider.test", ca, cak,
                          "DNS:provider.test,DNS:localhost,IP:127.0.0.1", false, 3);
    X509 *cli = make_cert(ck, "ws-demo", ca, cak, NULL, false, 4);
    write_pem(ca_path, ca, NULL);
    write_pem(other_ca, other, NULL);
    write_pem(srv_cert, srv, NULL);
    write_pem(srv_key, NULL, sk);
    write_pem(cli_cert, cli, NULL);
    write_pem(cli_key, NULL, ck);
    X509_free(ca);
    X509_free(other);
    X509_free(srv);
    X509_free(cli);
    EVP_PKEY_free(cak);
    EVP_PKEY_free(sk);
    EVP_PKEY_free(ck);
    EVP_PKEY_free(ok);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    const char *files[] = {ca_path, other_ca, srv_cert, srv_key, cli_cert, cli_key};
    for (size_t i = 0; i < 6; i++)
        unlink(files[i]);
    rmdir(dir);
    return 0;
}

/* Move ciphertext both ways until neither side has anything to send.
 * Application bytes read on either side are appended to the given buffers. */
static void pump(tlsio_t *a, tlsio_t *b, char *a_in, size_t *a_n, char *b_in, size_t *b_n,
                 ssize_t *a_rc, ssize_t *b_rc)
{
    char buf[16384];
    for (int round = 0; round < 64; round++) {
        bool moved = false;
        size_t n;
        while ((n = tlsio_take(a, buf, sizeof buf)) > 0) {
            assert_int_equal(tlsio_feed(b, buf, n), 0);
            moved = true;
        }
        while ((n = tlsio_take(b, buf, sizeof buf)) > 0) {
            assert_int_equal(tlsio_feed(a, buf, n), 0);
            moved = true;
        }
        ssize_t r;
        while ((r = tlsio_read(a, a_in + *a_n, 4096)) > 0)
            *a_n += (size_t)r;
        *a_rc = r;
        while ((r = tlsio_read(b, b_in + *b_n, 4096)) > 0)
            *b_n += (size_t)r;
        *b_rc = r;
        if (!moved && tlsio_pending(a) == 0 && tlsio_pending(b) == 0) return;
    }
    fail_msg("handshake did not settle");
}

static void test_handshake_and_records(void **state)
{
    (void)state;
    char err[256];
    SSL_CTX *sctx = tlsio_server_ctx(srv_cert, srv_key, TLS1_3_VERSION, NULL, err, sizeof err);
    assert_non_null(sctx);
    SSL_CTX *cctx = tlsio_client_ctx(ca_path, err, sizeof err);
    assert_non_null(cctx);
    tlsio_t *s = tlsio_new_server(sctx), *c = tlsio_new_client(cctx, "provider.test");
    assert_non_null(s);
    assert_non_null(c);
    static char sin[65536], cin[65536];
    size_t sn = 0, cn = 0;
    ssize_t src, crc;
    pump(s, c, sin, &sn, cin, &cn, &src, &crc);
    assert_true(tlsio_handshake_done(s));
    assert_true(tlsio_handshake_done(c));
    assert_int_equal(tlsio_write(c, "POST / HTTP/1.1\r\n", 17), 0);
    pump(s, c, sin, &sn, cin, &cn, &src, &crc);
    assert_int_equal(sn, 17);
    assert_memory_equal(sin, "POST / HTTP/1.1\r\n", 17);
    /* a large write comes through whole, in order */
    static char big[40000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    assert_int_equal(tlsio_write(s, big, sizeof big), 0);
    pump(s, c, sin, &sn, cin, &cn, &src, &crc);
    assert_int_equal(cn, sizeof big);
    assert_memory_equal(cin, big, sizeof big);
    /* close_notify reads as EOF */
    tlsio_shutdown(s);
    pump(s, c, sin, &sn, cin, &cn, &src, &crc);
    assert_int_equal(crc, TLSIO_EOF);
    char cnbuf[64];
    assert_int_equal(tlsio_peer_cn(s, cnbuf, sizeof cnbuf), -1); /* no client cert */
    tlsio_free(s);
    tlsio_free(c);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

static void expect_client_failure(SSL_CTX *sctx, SSL_CTX *cctx, const char *host, const char *want)
{
    tlsio_t *s = tlsio_new_server(sctx), *c = tlsio_new_client(cctx, host);
    assert_non_null(c);
    static char sin[4096], cin[4096];
    size_t sn = 0, cn = 0;
    ssize_t src, crc;
    pump(s, c, sin, &sn, cin, &cn, &src, &crc);
    assert_int_equal(crc, TLSIO_ERROR);
    assert_false(tlsio_handshake_done(c));
    if (!strstr(tlsio_error(c), want)) fail_msg("error '%s' lacks '%s'", tlsio_error(c), want);
    assert_int_equal(tlsio_write(c, "x", 1), -1);
    tlsio_free(s);
    tlsio_free(c);
}

static void test_verification_failures(void **state)
{
    (void)state;
    char err[256];
    SSL_CTX *sctx = tlsio_server_ctx(srv_cert, srv_key, TLS1_2_VERSION, NULL, err, sizeof err);
    SSL_CTX *good = tlsio_client_ctx(ca_path, err, sizeof err);
    SSL_CTX *wrong = tlsio_client_ctx(other_ca, err, sizeof err);
    assert_non_null(sctx);
    assert_non_null(good);
    assert_non_null(wrong);
    /* a name the certificate does not carry */
    expect_client_failure(sctx, good, "api.openai.com", "verification failed");
    /* an IP literal not in the IP SANs */
    expect_client_failure(sctx, good, "127.0.0.2", "verification failed");
    /* a CA that did not sign it */
    expect_client_failure(sctx, wrong, "provider.test", "verification failed");
    /* the IP SAN matches */
    tlsio_t *s = tlsio_new_server(sctx), *c = tlsio_new_client(good, "127.0.0.1");
    static char sin[4096], cin[4096];
    size_t sn = 0, cn = 0;
    ssize_t src, crc;
    pump(s, c, sin, &sn, cin, &cn, &src, &crc);
    assert_true(tlsio_handshake_done(c));
    tlsio_free(s);
    tlsio_free(c);
    SSL_CTX_free(sctx);
    SSL_CTX_free(good);
    SSL_CTX_free(wrong);
}

static void test_mtls_peer_cn(void **state)
{
    (void)state;
    char err[256];
    SSL_CTX *sctx = tlsio_server_ctx(srv_cert, srv_key, TLS1_3_VERSION, ca_path, err, sizeof err);
    assert_non_null(sctx);
    SSL_CTX *cctx = tlsio_client_ctx(ca_path, err, sizeof err);
    assert_int_equal(SSL_CTX_use_certificate_file(cctx, cli_cert, SSL_FILETYPE_PEM), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(cctx, cli_key, SSL_FILETYPE_PEM), 1);
    tlsio_t *s = tlsio_new_server(sctx), *c = tlsio_new_client(cctx, "localhost");
    static char sin[4096], cin[4096];
    size_t sn = 0, cn = 0;
    ssize_t src, crc;
    assert_int_equal(tlsio_write(c, "x", 1), -1); /* not before the handshake */
    pump(s, c, sin, &sn, cin, &cn, &src, &crc);
    assert_int_equal(tlsio_write(c, "hello", 5), 0);
    pump(s, c, sin, &sn, cin, &cn, &src, &crc);
    assert_int_equal(sn, 5);
    char name[64];
    assert_int_equal(tlsio_peer_cn(s, name, sizeof name), 0);
    assert_string_equal(name, "ws-demo");
    tlsio_free(s);
    tlsio_free(c);
    SSL_CTX_free(cctx);

    /* without a client certificate the server refuses the handshake */
    SSL_CTX *bare = tlsio_client_ctx(ca_path, err, sizeof err);
    s = tlsio_new_server(sctx);
    c = tlsio_new_client(bare, "localhost");
    sn = cn = 0;
    pump(s, c, sin, &sn, cin, &cn, &src, &crc);
    assert_int_equal(src, TLSIO_ERROR);
    tlsio_free(s);
    tlsio_free(c);
    SSL_CTX_free(bare);
    SSL_CTX_free(sctx);
}

static void test_bad_files(void **state)
{
    (void)state;
    char err[256];
    assert_null(tlsio_server_ctx("/nonexistent.pem", srv_key, 0, NULL, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent.pem"));
    assert_null(tlsio_server_ctx(srv_cert, cli_key, 0, NULL, err, sizeof err)); /* mismatch */
    assert_non_null(strstr(err, "does not match"));
    assert_null(tlsio_client_ctx("/nonexistent-ca.pem", err, sizeof err));
    assert_non_null(strstr(err, "nonexistent-ca.pem"));
}

static void test_garbage_is_an_error(void **state)
{
    (void)state;
    char err[256];
    SSL_CTX *sctx = tlsio_server_ctx(srv_cert, srv_key, TLS1_3_VERSION, NULL, err, sizeof err);
    tlsio_t *s = tlsio_new_server(sctx);
    const char *g = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(tlsio_feed(s, g, strlen(g)), 0);
    char buf[64];
    assert_int_equal(tlsio_read(s, buf, sizeof buf), TLSIO_ERROR);
    assert_int_equal(tlsio_read(s, buf, sizeof buf), TLSIO_ERROR); /* stays failed */
    tlsio_free(s);
    SSL_CTX_free(sctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_and_records), cmocka_unit_test(test_verification_failures),
        cmocka_unit_test(test_mtls_peer_cn),          cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_garbage_is_an_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
