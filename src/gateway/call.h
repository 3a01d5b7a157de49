/*
 * call — the gateway's decision on one LLM API call, from the request head
 * and body to either a refusal or the upstream request to send.
 *
 * gw_call_decide() runs the pipeline of doc/gateway.md ("One call"):
 * identity (workspace token or mTLS name), route (provider, endpoint),
 * group policy (provider, model, region), body (JSON, schema, size), prompt
 * token estimate, inspection (verdict with the gateway's actions; attached
 * file names against the path rules) and the upstream body (redacted, and
 * with OpenAI's stream_options.include_usage added when the gateway needs
 * it).  The Envoy ext_authz listener runs the same pipeline and only
 * answers; the gateway listener then forwards.
 *
 * Pure apart from the inspection scratch it is given: no I/O.  Every
 * refusal has an HTTP status, a cdeguard reason code and a message that
 * says what to change, and is rendered in the provider's error shape
 * (gw_call_error_body()).
 *
 * Memory: a gw_call_t borrows from the config (which the caller keeps
 * referenced) and from the request body; it owns `upstream_body` when it is
 * not the client's body (redacted / modified), the verdict, and copies of
 * short header values (agent, task); gw_call_free() releases them.
 */
#ifndef CDEGUARD_GATEWAY_CALL_H
#define CDEGUARD_GATEWAY_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "http/http1.h"
#include "inspect/verdict.h"
#include "llm/request.h"
#include "llm/route.h"

#define GW_ID_MAX 129 /* x-agent-id / x-task-id: up to 128 visible ASCII bytes */

typedef enum { GW_DEC_ALLOW = 0, GW_DEC_REDACT, GW_DEC_DENY } gw_decision_t;

typedef struct gw_call_in {
    const config_t *cfg;
    const http_msg_t *req; /* the request head (headers, target) */
    const char *method;    /* "POST", ... */
    const char *target;    /* the request target, NUL-terminated */
    const char *mtls_cn;   /* verified client certificate CN, or NULL */
    const char *body;
    size_t body_len;
    bool body_partial;          /* ext_authz: Envoy sent only part of the body */
    bool ext_authz;             /* no redaction possible: redact findings deny */
    inspect_scratch_t *scratch; /* made for cfg->inspect.engine */
} gw_call_in_t;

typedef struct gw_call {
    /* outcome */
    gw_decision_t decision;
    int status;         /* 0 when the call may go upstream, else the refusal's */
    const char *reason; /* cdeguard_* code, or NULL */
    char message[LLM_ERROR_MAX_MESSAGE];
    llm_errfmt_t errfmt; /* shape of refusals (OpenAI until the provider is known) */

    /* who */
    const config_workspace_t *ws;
    const config_gw_group_t *group;
    const char *cred_header; /* header that carried the token (static string), or NULL */
    char agent[GW_ID_MAX], task[GW_ID_MAX];

    /* what */
    const config_gw_provider_t *provider;
    const config_gw_endpoint_t *endpoint;
    llm_route_t route;
    char model[LLM_ROUTE_MAX_MODEL];
    bool stream;
    bool add_include_usage; /* the gateway asked for the usage chunk: strip it */
    uint64_t prompt_tokens_est;
    bool has_max_output; /* the body asks for at most max_output tokens */
    uint64_t max_output;

    /* inspection */
    inspect_verdict_t verdict;
    bool verdict_init;

    /* to send (status 0) */
    const char *upstream_body; /* the client's body, or owned_body */
    size_t upstream_body_len;
    char *owned_body;
} gw_call_t;

/* Always fills *out (gw_call_free it).  Returns 0 when the call goes
 * upstream, -1 when it is refused (out->status, reason, message). */
int gw_call_decide(const gw_call_in_t *in, gw_call_t *out);
void gw_call_free(gw_call_t *c);

/* The refusal body in the call's provider shape; its length (<
 * LLM_ERROR_MAX_BODY) into out. */
int gw_call_error_body(const gw_call_t *c, char *out, size_t outlen);

/* Is this request header one the gateway never forwards upstream?  (hop-by-
 * hop, credentials, Host, Content-Length, Accept-Encoding, Expect, and the
 * gateway's own x-llm-provider / x-agent-id / x-task-id). */
bool gw_call_header_dropped(const char *name, size_t len);

const char *gw_decision_name(gw_decision_t d); /* allow | redact | deny */

/* The error shape for a request refused before it could be decided (body
 * too large, timeout): the provider named by x-llm-provider or the first
 * path segment, else OpenAI's. */
llm_errfmt_t gw_call_errfmt_guess(const config_t *cfg, const http_msg_t *req);

#endif
