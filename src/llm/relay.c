/*
 * relay — streamed responses forwarded and accounted (see relay.h).
 *
 * Strip mode invariant: every stream byte before r->fwd has been either
 * emitted or dropped (it belonged to a stripped event), and r->hold holds
 * exactly the bytes [r->fwd, r->sse.pos).  After each feed the bytes before
 * the parser's current block start are emitted, so only the event still
 * being received stays held.
 */
#include "llm/relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jval.h"

static int relay_on_event(const sse_event_t *ev, void *ctx);

void llm_relay_init(llm_relay_t *r, llm_provider_t provider, bool strip_usage_chunk,
                    size_t max_event, llm_relay_emit_fn emit, void *ctx)
{
    memset(r, 0, sizeof *r);
    sse_init(&r->sse, max_event, relay_on_event, r);
    llm_usage_init(&r->usage, provider);
    r->strip_usage_chunk = strip_usage_chunk && provider == LLM_OPENAI_CHAT;
    r->emit = emit;
    r->ctx = ctx;
}

void llm_relay_free(llm_relay_t *r)
{
    sse_free(&r->sse);
    free(r->hold);
    r->hold = NULL;
    r->hold_len = r->hold_cap = 0;
}

/* Emit held bytes [r->fwd, upto) (upto <= r->fwd + hold_len). */
static int relay_flush(llm_relay_t *r, uint64_t upto)
{
    if (upto <= r->fwd) return r->emit_rc;
    size_t n = (size_t)(upto - r->fwd);
    /* once the client is gone, bytes are discarded (still counted) */
    int rc = r->emit_rc ? r->emit_rc : r->emit(r->hold, n, r->ctx);
    memmove(r->hold, r->hold + n, r->hold_len - n);
    r->hold_len -= n;
    r->fwd = upto;
    if (rc) r->emit_rc = rc;
    return rc;
}

/* Drop held bytes [r->fwd, upto). */
static void relay_drop(llm_relay_t *r, uint64_t upto)
{
    size_t n = (size_t)(upto - r->fwd);
    memmove(r->hold, r->hold + n, r->hold_len - n);
    r->hold_len -= n;
    r->fwd = upto;
    r->stripped++;
}

static int relay_on_event(const sse_event_t *ev, void *ctx)
{
    llm_relay_t *r = ctx;
    if (ev->oversize) return 0; /* forwarded untouched; nothing to count */
    jval_doc_t *doc = NULL;
    bool usage_only = false;
    if (jval_parse(ev->data, ev->data_len, r->usage.max_nodes, &doc, NULL, 0) == JVAL_OK) {
        llm_usage_feed_value(&r->usage, ev->type, jval_root(doc), true);
        usage_only = r->strip_usage_chunk && llm_usage_openai_usage_only(jval_root(doc));
        jval_free(doc);
    } else {
        llm_usage_feed_event(&r->usage, ev->type, ev->data, ev->data_len); /* [DONE], bad JSON */
    }
    if (!usage_only) return 0;
    /* forward what precedes the event, drop the event itself; parsing goes
     * on even if the client is gone, so usage is still counted */
    relay_flush(r, ev->start);
    relay_drop(r, ev->end);
    return 0;
}

int llm_relay_feed(llm_relay_t *r, const char *data, size_t len)
{
    if (r->emit_rc) return r->emit_rc;
    if (!r->strip_usage_chunk) {
        int rc = len ? r->emit(data, len, r->ctx) : 0;
        /* counted even when the client is gone: the provider produced it */
        int prc = sse_feed(&r->sse, data, len);
        if (rc) return r->emit_rc = rc;
        if (prc < 0) {
            snprintf(r->err, sizeof r->err, "%s", r->sse.err);
            return -1;
        }
        return 0;
    }
    if (len == 0) return 0;
    if (r->hold_len + len > r->hold_cap) {
        size_t nc = r->hold_cap ? r->hold_cap : 4096;
        while (nc < r->hold_len + len)
            nc *= 2;
        char *nh = realloc(r->hold, nc);
        if (!nh) {
            snprintf(r->err, sizeof r->err, "out of memory holding a streamed event");
            return -1;
        }
        r->hold = nh;
        r->hold_cap = nc;
    }
    memcpy(r->hold + r->hold_len, data, len);
    r->hold_len += len;
    int rc = sse_feed(&r->sse, data, len);
    if (rc < 0) {
        snprintf(r->err, sizeof r->err, "%s", r->sse.err);
        return r->emit_rc ? r->emit_rc : -1;
    }
    /* everything before the block being received can go; an oversize block
     * (never dispatched) is forwarded as it comes */
    uint64_t safe = r->sse.skipping ? r->sse.pos : r->sse.block;
    if (safe > r->sse.pos) safe = r->sse.pos;
    return relay_flush(r, safe);
}

int llm_relay_finish(llm_relay_t *r)
{
    if (r->emit_rc) return r->emit_rc;
    int end = sse_finish(&r->sse);
    if (end < 0) {
        snprintf(r->err, sizeof r->err, "%s", r->sse.err);
        return -1;
    }
    return r->strip_usage_chunk ? relay_flush(r, r->fwd + r->hold_len) : 0;
}

void llm_relay_usage(const llm_relay_t *r, llm_usage_t *out)
{
    llm_usage_get(&r->usage, out);
}
