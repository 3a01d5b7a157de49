/*
 * call — one LLM API call: identity, route, policy, body, inspection
 * (see call.h for the contract, doc/gateway.md for the user's view).
 */
#include "gateway/call.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/jval.h"
#include "identity/identity.h"
#include "llm/cred.h"
#include "llm/errors.h"

#define GW_BODY_MAX_NODES ((size_t)1 << 20)

static int refuse(gw_call_t *c, int status, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int refuse(gw_call_t *c, int status, const char *reason, const char *fmt, ...)
{
    va_list ap;
    c->status = status;
    c->reason = reason;
    c->decision = GW_DEC_DENY;
    va_start(ap, fmt);
    vsnprintf(c->message, sizeof c->message, fmt, ap);
    va_end(ap);
    return -1;
}

const char *gw_decision_name(gw_decision_t d)
{
    switch (d) {
    case GW_DEC_ALLOW:
        return "allow";
    case GW_DEC_REDACT:
        return "redact";
    default:
        return "deny";
    }
}

static bool name_is(const char *name, size_t len, const char *lit)
{
    return strlen(lit) == len && strncasecmp(name, lit, len) == 0;
}

bool gw_call_header_dropped(const char *name, size_t len)
{
    static const char *const dropped[] = {
        "host",       "content-length",  "transfer-encoding",
        "connection", "keep-alive",      "proxy-connection",
        "te",         "trailer",         "upgrade",
        "expect",     "accept-encoding", "x-llm-provider",
        "x-agent-id", "x-task-id",       "proxy-authenticate",
    };
    if (llm_cred_is_header(name, len)) return true;
    for (size_t i = 0; i < sizeof dropped / sizeof dropped[0]; i++)
        if (name_is(name, len, dropped[i])) return true;
    return false;
}

/* The one value of a header (NULL when absent); -1 when given twice. */
static int header_value(const http_msg_t *m, const char *name, const char **v, size_t *len)
{
    size_t n = 0;
    const http_header_t *h = http_msg_header(m, name, &n);
    *v = NULL;
    *len = 0;
    if (!h) return 0;
    if (n > 1) return -1;
    *v = http_ptr(m, h->value);
    *len = h->value.len;
    return 0;
}

/* x-agent-id / x-task-id: optional, <= 128 visible ASCII bytes. */
static int read_id(gw_call_t *c, const http_msg_t *m, const char *name, char *out)
{
    const char *v;
    size_t len;
    if (header_value(m, name, &v, &len) < 0)
        return refuse(c, 400, "cdeguard_invalid_request", "%s: give the header once", name);
    if (!v) return 0;
    if (len == 0 || len >= GW_ID_MAX)
        return refuse(c, 400, "cdeguard_invalid_request", "%s: 1 to %d characters", name,
                      GW_ID_MAX - 1);
    for (size_t i = 0; i < len; i++)
        if (v[i] < 0x21 || v[i] > 0x7e)
            return refuse(c, 400, "cdeguard_invalid_request",
                          "%s: only visible ASCII characters (no spaces)", name);
    memcpy(out, v, len);
    out[len] = '\0';
    return 0;
}

/* The provider a path prefix names ("/<name>/..."); *prefix_len gets the
 * length of "/<name>" (the first segment, also when it names none). */
static const config_gw_provider_t *prefix_provider(const config_t *cfg, const char *t, size_t n,
                                                   size_t *prefix_len)
{
    size_t k = 1;
    while (k < n && t[k] != '/' && t[k] != '?')
        k++;
    *prefix_len = k;
    if (n < 2 || t[0] != '/' || k >= n || t[k] != '/') return NULL;
    return config_gw_provider(cfg, t + 1, k - 1);
}

llm_errfmt_t gw_call_errfmt_guess(const config_t *cfg, const http_msg_t *req)
{
    const char *hv;
    size_t hlen, k;
    const config_gw_provider_t *p = NULL;
    if (header_value(req, "x-llm-provider", &hv, &hlen) == 0 && hv)
        p = config_gw_provider(cfg, hv, hlen);
    else
        p = prefix_provider(cfg, http_ptr(req, req->target), req->target.len, &k);
    return p ? llm_vendor_errfmt((llm_vendor_t)p->vendor) : LLM_ERRFMT_OPENAI;
}

/* Provider (by x-llm-provider or the first path segment) and endpoint. */
static int decide_route(const gw_call_in_t *in, gw_call_t *c)
{
    const config_t *cfg = in->cfg;
    const char *target = in->target;
    const char *hv;
    size_t hlen;
    char msg[LLM_ERROR_MAX_MESSAGE];
    int st = 0;
    if (header_value(in->req, "x-llm-provider", &hv, &hlen) < 0)
        return refuse(c, 400, "cdeguard_invalid_request", "x-llm-provider: give the header once");
    if (!target || target[0] != '/')
        return refuse(c, 400, "cdeguard_invalid_request", "the request target must be a path");
    size_t plen;
    const config_gw_provider_t *byprefix = prefix_provider(cfg, target, strlen(target), &plen);
    const char *seg = target + 1;
    size_t seglen = plen - 1;
    const config_gw_provider_t *p;
    const char *rest = target;
    if (hv) {
        p = config_gw_provider(cfg, hv, hlen);
        if (!p)
            return refuse(c, 404, "cdeguard_unknown_provider",
                          "x-llm-provider: no provider named '%.*s' in gateway.providers",
                          (int)(hlen > 64 ? 64 : hlen), hv);
        if (byprefix == p) rest = seg + seglen;
    } else {
        if (!byprefix)
            return refuse(c, 404, "cdeguard_unknown_provider",
                          "no provider named by '/%.*s': use a path prefix naming one of "
                          "gateway.providers (/openai/v1/..., /anthropic/v1/...) or the "
                          "x-llm-provider header",
                          (int)(seglen > 64 ? 64 : seglen), seg);
        p = byprefix;
        rest = seg + seglen;
    }
    c->provider = p;
    llm_vendor_t v = (llm_vendor_t)p->vendor;
    c->errfmt = llm_vendor_errfmt(v);
    if (llm_route_vendor(in->method, v, rest, &c->route, &st, msg, sizeof msg) < 0)
        return refuse(c, st, st == 404 ? "cdeguard_unknown_endpoint" : "cdeguard_invalid_request",
                      "%s", msg);
    c->errfmt = c->route.errfmt;
    return 0;
}

static int decide_identity(const gw_call_in_t *in, gw_call_t *c)
{
    const config_t *cfg = in->cfg;
    llm_cred_t cred;
    int st = 0;
    char msg[LLM_ERROR_MAX_MESSAGE];
    const config_workspace_t *by_cert = NULL;
    if (in->mtls_cn) {
        by_cert = config_workspace_by_id(cfg, in->mtls_cn, strlen(in->mtls_cn));
        if (!by_cert)
            return refuse(c, 403, "cdeguard_unknown_workspace",
                          "the client certificate names no configured workspace");
    }
    if (llm_cred_find(in->req, &cred, &st, msg, sizeof msg) < 0) {
        /* with mTLS the certificate is the identity; a token is optional,
         * but a malformed credential header is still refused */
        if (by_cert && st == 401 && !http_msg_header(in->req, "authorization", NULL) &&
            !http_msg_header(in->req, "x-api-key", NULL) &&
            !http_msg_header(in->req, "x-goog-api-key", NULL) &&
            !http_msg_header(in->req, "api-key", NULL)) {
            c->ws = by_cert;
            return 0;
        }
        return refuse(c, st, "cdeguard_unauthenticated", "%s", msg);
    }
    c->cred_header = cred.header;
    const config_workspace_t *by_token = ident_workspace_by_token(cfg, cred.token, cred.len);
    if (!by_token)
        return refuse(c, 401, "cdeguard_unauthenticated",
                      "unknown or revoked workspace token: send your cdeguard workspace token "
                      "where the SDK sends its API key");
    if (by_cert && by_cert != by_token)
        return refuse(c, 401, "cdeguard_unauthenticated",
                      "the workspace token belongs to another workspace than the client "
                      "certificate");
    c->ws = by_token;
    return 0;
}

static bool list_has(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0) return true;
    return false;
}

static int decide_policy(const gw_call_in_t *in, gw_call_t *c)
{
    const config_t *cfg = in->cfg;
    c->group = config_gw_group(cfg, c->ws->group);
    if (!c->group)
        return refuse(c, 403, "cdeguard_group_not_allowed",
                      "workspace group '%s' may not use the gateway (no entry in gateway.groups)",
                      c->ws->group);
    if (c->group->nproviders > 0 &&
        !list_has(c->group->providers, c->group->nproviders, c->provider->name))
        return refuse(c, 403, "cdeguard_provider_not_allowed",
                      "provider '%s' is not allowed for workspace group '%s'", c->provider->name,
                      c->group->name);
    const char *pin = c->ws->region[0] ? c->ws->region : c->group->region;
    for (size_t i = 0; i < c->provider->nendpoints; i++) {
        const config_gw_endpoint_t *e = &c->provider->endpoints[i];
        if (!pin[0] || strcmp(e->region, pin) == 0) {
            c->endpoint = e;
            break;
        }
    }
    if (!c->endpoint)
        return refuse(c, 403, "cdeguard_region_unavailable",
                      "workspace '%s' is pinned to region '%s' and provider '%s' has no endpoint "
                      "there",
                      c->ws->id, pin, c->provider->name);
    return 0;
}

/* The gateway's action for a finding: inspect.rule_actions, then the
 * gateway.content knob of the finding's category. */
static inspect_action_t gw_action(const void *ctx, const inspect_finding_t *f)
{
    const config_t *cfg = ctx;
    const config_inspect_t *in = &cfg->inspect;
    if (in->rule_action && f->rule >= 0 && (size_t)f->rule < in->nrules &&
        in->rule_action[f->rule] >= 0)
        return (inspect_action_t)in->rule_action[f->rule];
    const config_gateway_t *g = &cfg->gateway;
    switch (f->category) {
    case INSPECT_SECRET:
        return g->block_secrets ? INSPECT_BLOCK : INSPECT_ALERT;
    case INSPECT_PII:
        return g->pii == GW_PII_BLOCK    ? INSPECT_BLOCK
               : g->pii == GW_PII_REDACT ? INSPECT_REDACT
                                         : INSPECT_ALERT;
    default:
        return g->block_restricted_files ? INSPECT_BLOCK : INSPECT_ALERT;
    }
}

/* Attached file names have no place in the body to redact: a name that a
 * redact or block rule matches blocks the call. */
static inspect_action_t gw_action_attachment(const void *ctx, const inspect_finding_t *f)
{
    inspect_action_t a = gw_action(ctx, f);
    return a == INSPECT_ALERT ? INSPECT_ALERT : INSPECT_BLOCK;
}

static int on_attachment(const inspect_finding_t *f, void *ctx)
{
    inspect_verdict_t *v = ctx;
    inspect_finding_t g = *f;
    g.start = g.end = 0;
    inspect_action_fn saved = v->resolve;
    v->resolve = gw_action_attachment;
    int rc = inspect_verdict_add(v, &g);
    v->resolve = saved;
    return rc < 0 ? -1 : 0;
}

static const char *block_reason(const inspect_verdict_t *v, const char **rule)
{
    *rule = "";
    for (size_t i = 0; i < v->nrules; i++) {
        if (v->rules[i].action != INSPECT_BLOCK) continue;
        *rule = v->rules[i].rule_id;
        switch (v->rules[i].category) {
        case INSPECT_SECRET:
            return "cdeguard_secret_blocked";
        case INSPECT_PII:
            return "cdeguard_pii_blocked";
        default:
            return "cdeguard_restricted_file";
        }
    }
    return "cdeguard_inspection_failed";
}

static int decide_inspect(const gw_call_in_t *in, gw_call_t *c, const llm_request_t *r)
{
    const config_t *cfg = in->cfg;
    const inspect_engine_t *e = cfg->inspect.engine;
    inspect_verdict_t *v = &c->verdict;
    inspect_verdict_init(v, gw_action, cfg);
    c->verdict_init = true;
    if (!e || !in->scratch)
        return refuse(c, 500, "cdeguard_inspection_failed",
                      "the inspection engine is not available: refusing rather than sending "
                      "uninspected content");
    char err[160] = "";
    int rc =
        inspect_scan_json_flags(e, in->scratch, in->body, in->body_len, INSPECT_SCAN_TEXT_PATHS,
                                inspect_verdict_on_finding, v, err, sizeof err);
    if (rc == -2)
        return refuse(c, 400, "cdeguard_invalid_json", "request body is not valid JSON: %s", err);
    for (size_t i = 0; i < r->nfiles && rc == 0; i++)
        rc = inspect_check_path(e, r->files[i].ptr, r->files[i].len, on_attachment, v);
    if (rc < 0 || v->failed)
        return refuse(c, 500, "cdeguard_inspection_failed",
                      "the request could not be inspected completely: refusing it");
    if (v->action == INSPECT_BLOCK) {
        const char *rule;
        const char *reason = block_reason(v, &rule);
        const char *what = strcmp(reason, "cdeguard_secret_blocked") == 0 ? "a secret"
                           : strcmp(reason, "cdeguard_pii_blocked") == 0
                               ? "personal data"
                               : "a restricted file or its contents";
        return refuse(c, 403, reason,
                      "cdeguard blocked this request: it contains %s (rule %s); remove it and "
                      "retry",
                      what, rule);
    }
    if (v->action == INSPECT_REDACT) {
        if (in->ext_authz)
            return refuse(c, 403, "cdeguard_redaction_unavailable",
                          "the request contains personal data that must be redacted, which the "
                          "ext_authz mode cannot do: send it through the gateway listener");
        char *out = NULL;
        size_t outlen = 0;
        if (inspect_redact_json(v, in->body, in->body_len, &out, &outlen, err, sizeof err) < 0)
            return refuse(c, 500, "cdeguard_inspection_failed",
                          "the request could not be redacted: refusing it");
        c->owned_body = out;
        c->upstream_body = out;
        c->upstream_body_len = outlen;
        c->decision = GW_DEC_REDACT;
    }
    return 0;
}

/* Splice text into the body: [off, off + del) replaced by ins. */
static int splice_body(gw_call_t *c, size_t off, size_t del, const char *ins)
{
    size_t inslen = strlen(ins), len = c->upstream_body_len;
    char *nb = malloc(len - del + inslen + 1);
    if (!nb) return -1;
    memcpy(nb, c->upstream_body, off);
    memcpy(nb + off, ins, inslen);
    memcpy(nb + off + inslen, c->upstream_body + off + del, len - off - del);
    nb[len - del + inslen] = '\0';
    free(c->owned_body);
    c->owned_body = nb;
    c->upstream_body = nb;
    c->upstream_body_len = len - del + inslen;
    return 0;
}

/* Raw length of a null, boolean or number value; 0 for other types. */
static size_t scalar_raw_len(const jval_t *v)
{
    bool b;
    switch (jval_type(v)) {
    case JVAL_NULL:
        return 4;
    case JVAL_BOOL:
        jval_bool(v, &b);
        return b ? 4 : 5;
    case JVAL_NUMBER:
        return jval_len(v);
    default:
        return 0;
    }
}

/* stream_options.include_usage: true, for OpenAI-style streams the
 * gateway must count.  Edits the JSON text at the offsets jval reports. */
static int add_include_usage(gw_call_t *c)
{
    jval_doc_t *doc = NULL;
    char err[128];
    if (jval_parse(c->upstream_body, c->upstream_body_len, GW_BODY_MAX_NODES, &doc, err,
                   sizeof err) != JVAL_OK)
        return -1;
    const jval_t *root = jval_root(doc);
    const jval_t *so = jval_get(root, "stream_options");
    int rc;
    if (!so) {
        size_t off = jval_offset(root) + 1;
        rc = splice_body(c, off, 0,
                         jval_len(root) > 0 ? "\"stream_options\":{\"include_usage\":true},"
                                            : "\"stream_options\":{\"include_usage\":true}");
    } else if (jval_type(so) != JVAL_OBJECT) { /* null (the schema allows nothing else) */
        size_t raw = scalar_raw_len(so);
        rc = raw ? splice_body(c, jval_offset(so), raw, "{\"include_usage\":true}") : -1;
    } else {
        const jval_t *iu = jval_get(so, "include_usage");
        size_t raw = iu ? scalar_raw_len(iu) : 0;
        if (iu && !raw)
            rc = -1;
        else if (iu)
            rc = splice_body(c, jval_offset(iu), raw, "true");
        else
            rc = splice_body(c, jval_offset(so) + 1, 0,
                             jval_len(so) > 0 ? "\"include_usage\":true,"
                                              : "\"include_usage\":true");
    }
    jval_free(doc);
    return rc;
}

static bool model_allowed(const config_gw_group_t *g, const char *model)
{
    if (g->nmodels == 0) return true;
    for (size_t i = 0; i < g->nmodels; i++)
        if (config_glob_match(g->models[i], model, strlen(model))) return true;
    return false;
}

int gw_call_decide(const gw_call_in_t *in, gw_call_t *c)
{
    memset(c, 0, sizeof *c);
    c->decision = GW_DEC_ALLOW;
    c->errfmt = LLM_ERRFMT_OPENAI;
    c->upstream_body = in->body;
    c->upstream_body_len = in->body_len;

    if (decide_route(in, c) < 0) return -1;
    if (decide_identity(in, c) < 0) return -1;
    if (read_id(c, in->req, "x-agent-id", c->agent) < 0) return -1;
    if (read_id(c, in->req, "x-task-id", c->task) < 0) return -1;
    if (decide_policy(in, c) < 0) return -1;

    if (in->body_partial)
        return refuse(c, 413, "cdeguard_body_too_large",
                      "only part of the request body arrived (x-envoy-auth-partial-body): a "
                      "body that cannot be inspected whole is refused; raise Envoy's "
                      "with_request_body.max_request_bytes");
    jval_doc_t *doc = NULL;
    char err[160] = "";
    int jrc = jval_parse(in->body, in->body_len, GW_BODY_MAX_NODES, &doc, err, sizeof err);
    if (jrc != JVAL_OK)
        return refuse(c, 400, "cdeguard_invalid_json", "request body is not valid JSON: %s",
                      err[0] ? err : "empty body");
    llm_request_t r;
    int prc = llm_request_parse(c->route.kind, jval_root(doc), c->route.model,
                                c->route.endpoint_streams, &r, err, sizeof err);
    if (prc != LLM_REQUEST_OK) {
        jval_free(doc);
        return refuse(c, 400, "cdeguard_invalid_request", "invalid request body: %s", err);
    }
    size_t ml = r.model.len < sizeof c->model - 1 ? r.model.len : sizeof c->model - 1;
    memcpy(c->model, r.model.ptr ? r.model.ptr : "", ml);
    c->model[ml] = '\0';
    c->stream = r.stream;
    c->prompt_tokens_est = r.prompt_tokens_est;
    c->has_max_output = r.has_max_output;
    c->max_output = r.max_output;
    bool include_usage = r.include_usage;
    int rc = 0;
    if (!model_allowed(c->group, c->model))
        rc = refuse(c, 403, "cdeguard_model_not_allowed",
                    "model '%s' is not allowed for workspace group '%s'", c->model, c->group->name);
    else if (in->cfg->gateway.max_prompt_tokens > 0 &&
             r.prompt_tokens_est > in->cfg->gateway.max_prompt_tokens)
        rc = refuse(c, 400, "cdeguard_prompt_too_large",
                    "the prompt is about %llu tokens (estimate: 4 bytes per token), above this "
                    "gateway's limit of %llu (gateway.content.max_prompt_tokens)",
                    (unsigned long long)r.prompt_tokens_est,
                    (unsigned long long)in->cfg->gateway.max_prompt_tokens);
    else
        rc = decide_inspect(in, c, &r);
    jval_free(doc); /* r's borrowed strings die here: only copies are kept */
    if (rc < 0) return -1;

    llm_vendor_t v = (llm_vendor_t)c->provider->vendor;
    if (c->route.kind == LLM_REQ_OPENAI_CHAT && c->stream && !include_usage &&
        (v == LLM_VENDOR_OPENAI || v == LLM_VENDOR_AZURE)) {
        if (add_include_usage(c) < 0)
            return refuse(c, 500, "cdeguard_internal", "cannot prepare the upstream request");
        c->add_include_usage = true;
    }
    if (!c->provider->key)
        return refuse(c, 503, "cdeguard_provider_unconfigured",
                      "provider '%s' has no API key configured on the gateway "
                      "(gateway.providers[].key)",
                      c->provider->name);
    c->status = 0;
    return 0;
}

void gw_call_free(gw_call_t *c)
{
    if (c->verdict_init) inspect_verdict_free(&c->verdict);
    c->verdict_init = false;
    free(c->owned_body);
    c->owned_body = NULL;
}

int gw_call_error_body(const gw_call_t *c, char *out, size_t outlen)
{
    return llm_error_body(c->errfmt, c->status ? c->status : 500, c->message, c->reason, out,
                          outlen);
}
