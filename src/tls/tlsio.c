/*
 * tlsio — TLS over memory BIOs (see tlsio.h).
 *
 * rbio holds ciphertext fed from the socket and not yet consumed by
 * OpenSSL; wbio collects ciphertext OpenSSL produced and the caller has not
 * taken.  Both are unbounded memory BIOs, but each only ever holds what one
 * socket read or one tlsio_write produced, so callers bound them by bounding
 * their reads and writes.
 */
#include "tls/tlsio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "net/ipaddr.h"

struct tlsio {
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    bool server;
    bool failed;
    char err[256];
};

static void collect_err(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[200] = "";
    if (e) ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    snprintf(err, errlen, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

SSL_CTX *tlsio_server_ctx(const char *cert, const char *key, int min_version, const char *client_ca,
                          char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        collect_err(err, errlen, "cannot create TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, min_version ? min_version : TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        char what[320];
        snprintf(what, sizeof what, "cannot load certificate %s", cert);
        collect_err(err, errlen, what);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char what[320];
        snprintf(what, sizeof what,
                 "cannot load private key %s (or it does not match the certificate)", key);
        collect_err(err, errlen, what);
        goto fail;
    }
    if (client_ca) {
        if (SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1) {
            char what[320];
            snprintf(what, sizeof what, "cannot load client CA %s", client_ca);
            collect_err(err, errlen, what);
            goto fail;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(client_ca);
        if (names) SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        SSL_CTX_set_verify_depth(ctx, 8);
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *tlsio_client_ctx(const char *ca_file, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        collect_err(err, errlen, "cannot create TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        char what[320];
        snprintf(what, sizeof what, "cannot load CA bundle %s", ca_file ? ca_file : "(default)");
        collect_err(err, errlen, what);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

static tlsio_t *tlsio_new(SSL_CTX *ctx, bool server)
{
    tlsio_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->ssl = SSL_new(ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        if (t->ssl) SSL_free(t->ssl);
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        free(t);
        return NULL;
    }
    /* an empty memory BIO reports "retry", not EOF */
    BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    t->server = server;
    if (server)
        SSL_set_accept_state(t->ssl);
    else
        SSL_set_connect_state(t->ssl);
    return t;
}

tlsio_t *tlsio_new_server(SSL_CTX *ctx)
{
    return tlsio_new(ctx, true);
}

tlsio_t *tlsio_new_client(SSL_CTX *ctx, const char *host)
{
    tlsio_t *t = tlsio_new(ctx, false);
    if (!t) return NULL;
    netaddr_t a;
    X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
    bool is_ip = ipaddr_parse_strict(host, strlen(host), &a) == 0;
    int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host)
                   : (SSL_set_tlsext_host_name(t->ssl, host) == 1 &&
                      X509_VERIFY_PARAM_set1_host(vp, host, 0) == 1);
    if (ok != 1) {
        tlsio_free(t);
        return NULL;
    }
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return t;
}

void tlsio_free(tlsio_t *t)
{
    if (!t) return;
    SSL_free(t->ssl);
    free(t);
}

int tlsio_feed(tlsio_t *t, const char *data, size_t len)
{
    while (len > 0) {
        int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
        int n = BIO_write(t->rbio, data, chunk);
        if (n <= 0) return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static ssize_t fail(tlsio_t *t, int rc)
{
    int e = SSL_get_error(t->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return TLSIO_WANT;
    if (e == SSL_ERROR_ZERO_RETURN) return TLSIO_EOF;
    t->failed = true;
    long vr = SSL_get_verify_result(t->ssl);
    if (!t->server && vr != X509_V_OK) {
        snprintf(t->err, sizeof t->err, "certificate verification failed: %s",
                 X509_verify_cert_error_string(vr));
        ERR_clear_error();
    } else {
        collect_err(t->err, sizeof t->err,
                    SSL_is_init_finished(t->ssl) ? "TLS record error" : "TLS handshake failed");
    }
    return TLSIO_ERROR;
}

ssize_t tlsio_read(tlsio_t *t, char *buf, size_t cap)
{
    if (t->failed) return TLSIO_ERROR;
    if (!SSL_is_init_finished(t->ssl)) {
        int rc = SSL_do_handshake(t->ssl);
        if (rc != 1) return fail(t, rc);
    }
    if (cap > (1u << 30)) cap = 1u << 30;
    int n = SSL_read(t->ssl, buf, (int)cap);
    if (n > 0) return n;
    return fail(t, n);
}

int tlsio_write(tlsio_t *t, const char *data, size_t len)
{
    if (t->failed || !SSL_is_init_finished(t->ssl)) return -1;
    while (len > 0) {
        int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
        int n = SSL_write(t->ssl, data, chunk);
        if (n <= 0) {
            fail(t, n);
            t->failed = true;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

void tlsio_shutdown(tlsio_t *t)
{
    if (!t->failed && SSL_is_init_finished(t->ssl)) SSL_shutdown(t->ssl);
    ERR_clear_error();
}

size_t tlsio_pending(const tlsio_t *t)
{
    return BIO_ctrl_pending(t->wbio);
}

size_t tlsio_take(tlsio_t *t, char *buf, size_t cap)
{
    if (cap > (1u << 30)) cap = 1u << 30;
    int n = BIO_read(t->wbio, buf, (int)cap);
    return n > 0 ? (size_t)n : 0;
}

bool tlsio_handshake_done(const tlsio_t *t)
{
    return SSL_is_init_finished(t->ssl);
}

const char *tlsio_error(const tlsio_t *t)
{
    return t->err[0] ? t->err : "TLS failure";
}

int tlsio_peer_cn(const tlsio_t *t, char *buf, size_t len)
{
    X509 *cert = SSL_get1_peer_certificate(t->ssl);
    if (!cert) return -1;
    int rc = -1;
    if (SSL_get_verify_result(t->ssl) == X509_V_OK) {
        X509_NAME *name = X509_get_subject_name(cert);
        int n = X509_NAME_get_text_by_NID(name, NID_commonName, buf, (int)len);
        if (n > 0 && (size_t)n < len && strlen(buf) == (size_t)n) rc = 0;
    }
    X509_free(cert);
    return rc;
}
