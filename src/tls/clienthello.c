/*
 * clienthello — parse a TLS ClientHello from the first bytes of a CONNECT tunnel.
 *
 * What: walks the TLS record layer (RFC 8446 5.1, RFC 5246 6.2) and the
 * ClientHello (RFC 8446 4.1.2, RFC 5246 7.4.1.2) just far enough to report the
 * server_name (RFC 6066 3), ALPN (RFC 7301) and whether supported_versions
 * offers TLS 1.3.  Every call starts again from data[0]; nothing is kept.
 *
 * How: the ClientHello may be fragmented over several handshake records.
 * Instead of reassembling it into a copy, hs_reader_t presents the record
 * payloads as one byte stream and steps over each 5-byte record header when it
 * reaches it.  Every read names the bound of its enclosing vector (the
 * ClientHello, the extensions block, one extension, a list inside it):
 * crossing that bound is MALFORMED; running out of input before it is
 * NEED_MORE.  So a proper prefix of a valid ClientHello is always NEED_MORE,
 * and damage is reported as soon as the bytes showing it have arrived.
 *
 * Invariants: r.pos <= r.len (data[] is never touched at or beyond len);
 * r.pos <= r.frag_end; r.off <= every bound in force <= r.msg_end <=
 * 4 + TLSHELLO_MAX_BYTES; once msg_end is known, no record payload extends
 * past it (the ClientHello must end on a record boundary, RFC 8446 5.1), so on
 * DONE consumed == r.pos is the end of the last record that held it.
 *
 * Memory: no allocation.  The stack holds an 8 KiB bitmap of extension types
 * seen (duplicates are MALFORMED, RFC 8446 4.2), one 255-byte ALPN name and a
 * tlshello_t being filled.  *out is zeroed, then filled only on DONE (else it
 * holds just record_version and error); it never points into data[].  Cost
 * per call is O(records + extensions) in what has arrived.
 */
#include "tls/clienthello.h"

#include <string.h>

#define REC_HEADER_LEN 5
#define REC_MAX_PAYLOAD (16384 + 2048) /* RFC 5246 6.2.3: TLSCiphertext bound */
#define CT_HANDSHAKE 22
#define HS_HEADER_LEN 4
#define HS_CLIENT_HELLO 1
#define RANDOM_LEN 32
#define SESSION_ID_MAX 32

#define EXT_SERVER_NAME 0
#define EXT_ALPN 16
#define EXT_PRE_SHARED_KEY 41
#define EXT_SUPPORTED_VERSIONS 43
#define SNI_HOST_NAME 0
#define VERSION_TLS13 0x0304

/* Result of one parsing step; mapped to tlshello_status_t by tlshello_parse. */
typedef enum { STEP_OK, STEP_MORE, STEP_BAD } step_t;

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        step_t step_ = (expr);                                                                     \
        if (step_ != STEP_OK) return step_;                                                        \
    } while (0)

/* The handshake message as one byte stream over the record payloads. */
typedef struct {
    const uint8_t *data;
    size_t len;      /* bytes of data[] that may be read */
    size_t pos;      /* offset in data[] of the next handshake byte */
    size_t frag_end; /* offset in data[] where the current record payload ends (may be > len) */
    size_t off;      /* handshake bytes read so far, header included */
    size_t msg_end;  /* 4 + ClientHello body length; SIZE_MAX until the header is read */
    const char *err; /* static reason, set with STEP_BAD */
} hs_reader_t;

static step_t bad(hs_reader_t *r, const char *why)
{
    r->err = why;
    return STEP_BAD;
}

/* Handshake offset at which the current record's payload ends. */
static size_t frag_end_off(const hs_reader_t *r)
{
    return r->off + (r->frag_end - r->pos);
}

static step_t check_frag_within_msg(hs_reader_t *r)
{
    if (r->msg_end != SIZE_MAX && frag_end_off(r) > r->msg_end)
        return bad(r, "handshake record carries bytes after the ClientHello");
    return STEP_OK;
}

/* At a record boundary: check the next record header and step over it. */
static step_t next_record(hs_reader_t *r)
{
    if (r->len - r->pos < REC_HEADER_LEN) return STEP_MORE;
    const uint8_t *h = r->data + r->pos;
    size_t n = (size_t)h[3] << 8 | h[4];
    if (h[0] != CT_HANDSHAKE) return bad(r, "non-handshake record before the ClientHello ended");
    if (h[1] != 3) return bad(r, "record version is not 3.x");
    if (n == 0) return bad(r, "empty handshake record");
    if (n > REC_MAX_PAYLOAD) return bad(r, "record longer than 2^14 + 2048 bytes");
    r->pos += REC_HEADER_LEN;
    r->frag_end = r->pos + n;
    return check_frag_within_msg(r);
}

/*
 * Read n handshake bytes into dst (or skip them if dst is NULL).  lim is the
 * handshake offset of the enclosing vector's end, r->off <= lim; crossing it
 * is STEP_BAD with `why`.
 */
static step_t rd_copy(hs_reader_t *r, size_t lim, size_t n, uint8_t *dst, const char *why)
{
    if (n > lim - r->off) return bad(r, why);
    while (n > 0) {
        if (r->pos == r->frag_end) TRY(next_record(r));
        size_t stop = r->frag_end < r->len ? r->frag_end : r->len;
        size_t take = stop - r->pos;
        if (take == 0) return STEP_MORE;
        if (take > n) take = n;
        if (dst) {
            memcpy(dst, r->data + r->pos, take);
            dst += take;
        }
        r->pos += take;
        r->off += take;
        n -= take;
    }
    return STEP_OK;
}

/* Read a big-endian integer of 1..3 bytes. */
static step_t rd_uint(hs_reader_t *r, size_t lim, size_t width, size_t *v, const char *why)
{
    uint8_t b[3] = {0, 0, 0};
    TRY(rd_copy(r, lim, width, b, why));
    size_t x = 0;
    for (size_t i = 0; i < width; i++)
        x = x << 8 | b[i];
    *v = x;
    return STEP_OK;
}

/* RFC 6066 3: ServerNameList; at most one host_name, 1..255 bytes, no NUL. */
static step_t parse_server_name(hs_reader_t *r, size_t end, tlshello_t *h)
{
    size_t list, type, n;
    TRY(rd_uint(r, end, 2, &list, "server_name extension too short"));
    if (list == 0 || list != end - r->off)
        return bad(r, "server_name_list length does not match its extension");
    while (r->off < end) {
        TRY(rd_uint(r, end, 1, &type, "truncated server_name entry"));
        TRY(rd_uint(r, end, 2, &n, "truncated server_name entry"));
        if (type != SNI_HOST_NAME) {
            TRY(rd_copy(r, end, n, NULL, "server_name entry overruns its list"));
            continue;
        }
        if (h->has_sni) return bad(r, "more than one host_name in server_name");
        if (n == 0 || n >= sizeof h->sni) return bad(r, "host_name length not in 1..255");
        TRY(rd_copy(r, end, n, (uint8_t *)h->sni, "host_name overruns its list"));
        if (memchr(h->sni, '\0', n)) return bad(r, "NUL byte in host_name");
        h->sni[n] = '\0';
        h->sni_len = n;
        h->has_sni = true;
    }
    return STEP_OK;
}

/*
 * Append one protocol name to the ','-joined list dst[cap], dst[used] == '\0'.
 * Bytes outside printable ASCII, spaces and ',' become '?', so the result is
 * unambiguous and safe to log; truncated when full.  Returns the new length.
 */
static size_t alpn_append(char *dst, size_t cap, size_t used, const uint8_t *name, size_t n)
{
    if (used > 0 && used + 1 < cap) dst[used++] = ',';
    for (size_t i = 0; i < n && used + 1 < cap; i++) {
        uint8_t c = name[i];
        dst[used++] = (c > 0x20 && c < 0x7f && c != ',') ? (char)c : '?';
    }
    dst[used] = '\0';
    return used;
}

/* RFC 7301 3.1: ProtocolNameList protocol_name_list<2..2^16-1>, names 1..255. */
static step_t parse_alpn(hs_reader_t *r, size_t end, tlshello_t *h)
{
    uint8_t name[255];
    size_t list, n, used = 0;
    TRY(rd_uint(r, end, 2, &list, "ALPN extension too short"));
    if (list < 2 || list != end - r->off)
        return bad(r, "ALPN protocol_name_list length does not match its extension");
    while (r->off < end) {
        TRY(rd_uint(r, end, 1, &n, "truncated ALPN protocol name"));
        if (n == 0) return bad(r, "empty ALPN protocol name");
        TRY(rd_copy(r, end, n, name, "ALPN protocol name overruns its list"));
        used = alpn_append(h->alpn, sizeof h->alpn, used, name, n);
    }
    h->has_alpn = true;
    return STEP_OK;
}

/* RFC 8446 4.2.1: ProtocolVersion versions<2..254> in a ClientHello. */
static step_t parse_supported_versions(hs_reader_t *r, size_t end, tlshello_t *h)
{
    size_t n, v;
    TRY(rd_uint(r, end, 1, &n, "supported_versions extension too short"));
    if (n < 2 || n % 2 != 0 || n != end - r->off)
        return bad(r, "supported_versions length is odd, zero or does not match its extension");
    while (r->off < end) {
        TRY(rd_uint(r, end, 2, &v, "truncated supported_versions"));
        if (v == VERSION_TLS13) h->tls13 = true;
    }
    return STEP_OK;
}

/* The extensions block runs exactly to lim, the end of the ClientHello. */
static step_t parse_extensions(hs_reader_t *r, size_t lim, tlshello_t *h)
{
    uint64_t seen[65536 / 64];
    size_t prev = SIZE_MAX;
    memset(seen, 0, sizeof seen);
    while (r->off < lim) {
        size_t type, n;
        if (prev == EXT_PRE_SHARED_KEY) return bad(r, "pre_shared_key is not the last extension");
        TRY(rd_uint(r, lim, 2, &type, "truncated extension header"));
        TRY(rd_uint(r, lim, 2, &n, "truncated extension header"));
        if (n > lim - r->off) return bad(r, "extension overruns the extensions block");
        if (seen[type / 64] >> (type % 64) & 1) return bad(r, "duplicate extension type");
        seen[type / 64] |= (uint64_t)1 << (type % 64);
        size_t end = r->off + n;
        switch (type) {
        case EXT_SERVER_NAME:
            TRY(parse_server_name(r, end, h));
            break;
        case EXT_ALPN:
            TRY(parse_alpn(r, end, h));
            break;
        case EXT_SUPPORTED_VERSIONS:
            TRY(parse_supported_versions(r, end, h));
            break;
        default:
            TRY(rd_copy(r, end, n, NULL, "extension overruns the extensions block"));
            break;
        }
        prev = type;
    }
    return STEP_OK;
}

static step_t parse_hello(hs_reader_t *r, tlshello_t *h)
{
    size_t type, body, v, n;
    TRY(rd_uint(r, HS_HEADER_LEN, 1, &type, "truncated handshake header"));
    if (type != HS_CLIENT_HELLO) return bad(r, "first handshake message is not a ClientHello");
    TRY(rd_uint(r, HS_HEADER_LEN, 3, &body, "truncated handshake header"));
    if (body > TLSHELLO_MAX_BYTES) return bad(r, "ClientHello longer than TLSHELLO_MAX_BYTES");
    r->msg_end = HS_HEADER_LEN + body;
    TRY(check_frag_within_msg(r));
    size_t lim = r->msg_end;

    TRY(rd_uint(r, lim, 2, &v, "ClientHello too short for legacy_version"));
    if (v >> 8 != 3) return bad(r, "legacy_version is not 3.x");
    h->client_version = (uint16_t)v;
    TRY(rd_copy(r, lim, RANDOM_LEN, NULL, "ClientHello too short for random"));
    TRY(rd_uint(r, lim, 1, &n, "ClientHello too short for session_id"));
    if (n > SESSION_ID_MAX) return bad(r, "session_id longer than 32 bytes");
    TRY(rd_copy(r, lim, n, NULL, "session_id overruns the ClientHello"));
    TRY(rd_uint(r, lim, 2, &n, "ClientHello too short for cipher_suites"));
    if (n < 2 || n % 2 != 0) return bad(r, "cipher_suites length is odd or zero");
    TRY(rd_copy(r, lim, n, NULL, "cipher_suites overrun the ClientHello"));
    TRY(rd_uint(r, lim, 1, &n, "ClientHello too short for compression_methods"));
    if (n == 0) return bad(r, "no compression_methods");
    TRY(rd_copy(r, lim, n, NULL, "compression_methods overrun the ClientHello"));
    if (r->off == lim) return STEP_OK; /* no extensions: allowed before TLS 1.3 */
    TRY(rd_uint(r, lim, 2, &n, "truncated extensions length"));
    if (n != lim - r->off) return bad(r, "extensions block does not end with the ClientHello");
    return parse_extensions(r, lim, h);
}

tlshello_status_t tlshello_parse(const uint8_t *data, size_t len, tlshello_t *out)
{
    tlshello_t h;
    memset(&h, 0, sizeof h);
    memset(out, 0, sizeof *out);
    if (len == 0) return TLSHELLO_NEED_MORE;
    if (data[0] != CT_HANDSHAKE) {
        out->error = "first byte is not a TLS handshake record";
        return TLSHELLO_NOT_TLS;
    }
    if (len >= 2 && data[1] != 3) {
        out->error = "record version is not 3.x";
        return TLSHELLO_NOT_TLS;
    }
    if (len >= 3) out->record_version = h.record_version = (uint16_t)(data[1] << 8 | data[2]);

    hs_reader_t r = {.data = data, .len = len, .msg_end = SIZE_MAX};
    step_t st = parse_hello(&r, &h);
    if (st == STEP_OK && r.pos != r.frag_end) /* unreachable: check_frag_within_msg */
        st = bad(&r, "handshake record carries bytes after the ClientHello");
    if (st == STEP_MORE) return TLSHELLO_NEED_MORE;
    if (st == STEP_BAD) {
        out->error = r.err;
        return TLSHELLO_MALFORMED;
    }
    h.consumed = r.pos;
    *out = h;
    return TLSHELLO_DONE;
}
