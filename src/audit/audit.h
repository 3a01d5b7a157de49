/*
 * audit — one JSON line per decision, to a file or stdout.
 *
 * Records are formatted by the calling worker thread into a bounded line and
 * handed to a single writer thread through a bounded queue, so a slow disk
 * never blocks an event loop.  When the queue is full the record is counted as
 * dropped (metric) rather than blocking; nothing secret is ever written (tokens
 * and credentials never reach this module).  audit_reopen() (SIGHUP) reopens
 * the file, for logrotate.
 */
#ifndef CDEGUARD_AUDIT_AUDIT_H
#define CDEGUARD_AUDIT_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUDIT_LINE_MAX 4096

typedef struct audit_egress {
    uint64_t time_ms;      /* wall clock, ms since epoch, when the request started */
    const char *workspace; /* "" or NULL when unattributed */
    const char *group;
    const char *policy;
    const char *client; /* "ip:port" */
    const char *method;
    const char *host;
    uint16_t port;
    const char *resolved; /* address connected to, "" if none */
    const char *sni;      /* CONNECT: SNI seen, or NULL */
    const char *decision; /* "allow" | "deny" | "monitor" */
    const char *rule;     /* rule that decided */
    const char *reason;   /* short human text, may be NULL */
    const char *mode;     /* "enforce" | "monitor" */
    const char *alert;    /* e.g. "upload_threshold", or NULL */
    int status;           /* HTTP status sent to the client (0 if none) */
    uint64_t bytes_up;    /* client → upstream (request body / tunnel) */
    uint64_t bytes_down;  /* upstream → client */
    double duration_ms;
} audit_egress_t;

/* Open the sink.  path is used when to_stdout is false.  0 ok, -1 with err. */
int audit_open(bool to_stdout, const char *path, char *err, size_t errlen);
/* Switch sink (config reload) — opens the new one before closing the old. */
int audit_reconfigure(bool to_stdout, const char *path, char *err, size_t errlen);
int audit_reopen(void);
void audit_egress(const audit_egress_t *r);
/* Format r as one JSON object (no newline) into buf, NUL-terminated; pure and
 * thread-safe (audit_egress uses it).  The object is at most
 * min(cap, AUDIT_LINE_MAX) - 1 bytes: overlong strings are cut at a character
 * boundary so the result is always valid JSON.  Returns its length, or 0 when
 * cap is too small for even the fixed fields (~400 bytes). */
size_t audit_format_egress(char *buf, size_t cap, const audit_egress_t *r);
/* Write an already formatted JSON object (no newline); used by other modules. */
void audit_write_line(const char *json, size_t len);
/* Flush and stop the writer thread. */
void audit_close(void);

/* JSON string escaping helper (used by other emitters): appends the escaped
 * form of s (without quotes) to buf at *pos, never past cap.  Returns -1 when
 * truncated. */
int audit_json_escape(char *buf, size_t cap, size_t *pos, const char *s);

/* RFC 3339 UTC with milliseconds: "2026-11-23T11:49:04.123Z". buf >= 32. */
void audit_format_time(uint64_t time_ms, char *buf, size_t len);

uint64_t audit_dropped(void);

#endif
