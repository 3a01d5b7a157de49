/*
 * clienthello — peek at a TLS ClientHello without decrypting anything.
 *
 * The egress proxy reads the first bytes a client sends through a CONNECT
 * tunnel and parses them here, to compare the SNI with the CONNECT authority
 * (domain fronting) and to refuse non-TLS streams on TLS-only ports.  The
 * parser is pure and re-entrant: given the bytes read so far, it answers "need
 * more", "not TLS", "malformed" or "done" with the facts below.  It never
 * reads past `len`, never allocates, and accepts a ClientHello split over
 * several TLS records (handshake fragmentation) up to TLSHELLO_MAX_BYTES.
 */
#ifndef CDEGUARD_TLS_CLIENTHELLO_H
#define CDEGUARD_TLS_CLIENTHELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLSHELLO_MAX_BYTES (64 * 1024) /* give up (malformed) beyond this */

typedef enum {
    TLSHELLO_DONE = 1,       /* a complete ClientHello was parsed */
    TLSHELLO_NEED_MORE = 0,  /* valid so far, feed more bytes */
    TLSHELLO_NOT_TLS = -1,   /* first bytes are not a TLS handshake record */
    TLSHELLO_MALFORMED = -2, /* TLS record framing, but the ClientHello is broken */
} tlshello_status_t;

typedef struct tlshello {
    uint16_t record_version; /* from the first record header */
    uint16_t client_version; /* legacy_version in the ClientHello */
    bool has_sni;
    char sni[256]; /* host_name from server_name ext, NUL-terminated, as sent */
    size_t sni_len;
    bool has_alpn;
    char alpn[128];    /* protocols joined with ',' (truncated if longer) */
    bool tls13;        /* supported_versions lists 0x0304 */
    size_t consumed;   /* bytes of the records that held the ClientHello */
    const char *error; /* static reason when MALFORMED / NOT_TLS */
} tlshello_t;

/* Parse what has been read so far. On TLSHELLO_DONE, *out is filled. */
tlshello_status_t tlshello_parse(const uint8_t *data, size_t len, tlshello_t *out);

#endif
