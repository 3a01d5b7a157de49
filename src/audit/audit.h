/*
 * audit — one JSON line per decision, to a file or stdout.
 *
 * Two record types: egress decisions ({"kind":"egress",...}, audit_egress)
 * and LLM gateway calls ({"type":"llm",...}, audit_llm; the shape is the one
 * in doc/gateway.md, "Audit record").  Records are formatted by the calling
 * worker thread into a bounded line and handed to a single writer thread
 * through a queue bounded in bytes, so a slow disk never blocks an event
 * loop.  When the queue is full the record is counted as dropped (metric)
 * rather than blocking; nothing secret is ever written (tokens and
 * credentials never reach this module).  audit_reopen() (SIGHUP) reopens the
 * file, for logrotate.
 *
 * Line bounds: an egress line, and an LLM line without findings or prompt,
 * fit in AUDIT_LINE_MAX bytes with the '\n'; an LLM line with findings and a
 * prompt may take up to AUDIT_LLM_LINE_MAX.  Every line is valid JSON: long
 * strings are cut at a character boundary, never inside an escape.
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

/* LLM gateway calls (doc/gateway.md, "Audit record"). */
#define AUDIT_LLM_LINE_MAX ((size_t)256 << 10) /* a whole LLM line, '\n' included */
#define AUDIT_LLM_FINDINGS_MAX 64              /* findings listed; then "findings_truncated" */
#define AUDIT_LLM_FINDING_STR 128              /* escaped bytes kept of a rule or action name */

typedef struct audit_llm_finding {
    const char *rule;   /* rule name; NULL → "" */
    const char *action; /* "redact" | "block" | "alert" ...; NULL → "" */
    size_t count;       /* matches of that rule in the call */
} audit_llm_finding_t;

typedef struct audit_llm {
    uint64_t time_ms;     /* wall clock, ms since epoch, when the request arrived */
    const char *listener; /* "gateway" | "ext_authz" */
    /* Strings below: NULL → "", except agent, task, region, reason and prompt,
     * which are null when NULL or "". */
    const char *workspace, *group, *team, *agent, *task, *client;
    const char *provider, *endpoint, *region, *upstream, *model;
    bool stream;
    const char *decision; /* "allow" | "redact" | "deny" */
    const char *reason;   /* refusal code (cdeguard_secret_blocked, ...) or NULL */
    int status;           /* HTTP status sent to the client */
    bool has_usage;       /* false: "usage":null */
    uint64_t input, output, cache_read, cache_write, reasoning, total;
    bool estimated; /* usage estimated (no usage from the provider) */
    uint64_t prompt_tokens_est;
    const audit_llm_finding_t *findings; /* nfindings entries (NULL: none) */
    size_t nfindings;
    bool client_aborted;
    uint64_t bytes_up, bytes_down;
    double duration_ms, gateway_ms; /* NaN or negative → 0 */
    const char *prompt;             /* redacted body (log_prompts: full), or NULL */
    size_t prompt_len;              /* bytes of prompt; need not be NUL-terminated */
} audit_llm_t;

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
/* Format r as one JSON object (no newline) into buf, NUL-terminated; pure and
 * thread-safe.  Fields in the order of doc/gateway.md; "usage" is null when
 * !has_usage.  The object is at most min(cap, AUDIT_LLM_LINE_MAX) - 1 bytes.
 * Budget, by priority: the fixed fields; the other strings, water-filled so
 * that the line without findings and prompt stays within AUDIT_LINE_MAX; the
 * first AUDIT_LLM_FINDINGS_MAX findings that fit (rule and action each cut to
 * AUDIT_LLM_FINDING_STR escaped bytes), then ,"findings_truncated":true after
 * the array when any was left out; the prompt in what remains, then
 * ,"prompt_truncated":true when it was cut.  duration_ms and gateway_ms are
 * "%.3f" without trailing zeros (812.4, 0.05, 0).  Returns the length, or 0
 * when cap is too small for the fixed fields (400 to 750 bytes). */
size_t audit_format_llm(char *buf, size_t cap, const audit_llm_t *r);
/* Format r (into a buffer sized for it, at most AUDIT_LLM_LINE_MAX: on the
 * stack, or allocated for this call and freed) and queue it as one line. */
void audit_llm(const audit_llm_t *r);
/* Write an already formatted JSON object (no newline); used by other modules.
 * At most AUDIT_LINE_MAX - 1 bytes and no '\n': anything else is counted as
 * dropped, not cut. */
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
