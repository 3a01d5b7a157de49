/*
 * tlsio — a TLS session over memory BIOs, for sockets driven by an event loop.
 *
 * The event loop owns the socket; a tlsio_t only transforms bytes.  Bytes
 * read from the socket go in with tlsio_feed(); tlsio_read() runs the
 * handshake and returns decrypted application bytes; tlsio_write() encrypts;
 * whatever TLS wants sent (handshake records, alerts, application records)
 * is taken out with tlsio_take() and written to the socket by the caller,
 * which must call it after every feed, read and write.  Nothing here blocks
 * or touches a file descriptor.
 *
 * Contexts: tlsio_server_ctx() and tlsio_client_ctx() build the SSL_CTXs
 * (minimum version, certificate and key, optional client CA for mTLS;
 * verification on for clients, with a CA file or OpenSSL's default paths).
 * A client session verifies the peer's name (a DNS name, or an IP literal
 * against the certificate's IP SANs) and sends SNI for names.
 *
 * Memory: a tlsio_t owns its SSL and both BIOs (tlsio_free).  SSL_CTXs are
 * reference-counted by OpenSSL; sessions keep their context alive.
 */
#ifndef CDEGUARD_TLS_TLSIO_H
#define CDEGUARD_TLS_TLSIO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#define TLSIO_WANT 0     /* no application bytes yet: feed more */
#define TLSIO_EOF (-1)   /* the peer sent close_notify */
#define TLSIO_ERROR (-2) /* handshake or record failure: see tlsio_error() */

typedef struct tlsio tlsio_t;

/* min_version: TLS1_2_VERSION or TLS1_3_VERSION.  client_ca may be NULL.
 * NULL with err on failure (unreadable file, key mismatch...). */
SSL_CTX *tlsio_server_ctx(const char *cert, const char *key, int min_version, const char *client_ca,
                          char *err, size_t errlen);
/* ca_file NULL: OpenSSL's default verify paths. */
SSL_CTX *tlsio_client_ctx(const char *ca_file, char *err, size_t errlen);

tlsio_t *tlsio_new_server(SSL_CTX *ctx);
/* host: the name (SNI + verification) or IP literal (verification only). */
tlsio_t *tlsio_new_client(SSL_CTX *ctx, const char *host);
void tlsio_free(tlsio_t *t);

/* Ciphertext from the socket.  0 ok, -1 out of memory. */
int tlsio_feed(tlsio_t *t, const char *data, size_t len);
/* Drive the handshake and read application bytes into buf.  >0 bytes,
 * TLSIO_WANT, TLSIO_EOF or TLSIO_ERROR. */
ssize_t tlsio_read(tlsio_t *t, char *buf, size_t cap);
/* Encrypt all of data (only after the handshake).  0 ok, -1 error. */
int tlsio_write(tlsio_t *t, const char *data, size_t len);
/* Queue a close_notify. */
void tlsio_shutdown(tlsio_t *t);
/* Ciphertext to send: bytes pending, and take up to cap of them. */
size_t tlsio_pending(const tlsio_t *t);
size_t tlsio_take(tlsio_t *t, char *buf, size_t cap);

bool tlsio_handshake_done(const tlsio_t *t);
/* The last failure, human-readable (verification result included). */
const char *tlsio_error(const tlsio_t *t);
/* Server with mTLS: the verified client certificate's subject CN into buf
 * (NUL-terminated).  0 ok, -1 none / not verified / too long. */
int tlsio_peer_cn(const tlsio_t *t, char *buf, size_t len);

#endif
