/* One completion call end to end (see completion.h). */
#include "completion.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "cloud.h"
#include "generate.h"
#include "options.h"
#include "response.h"

#define CLOUD_REPLY_MAX (4u << 20)

typedef struct {
    cx_handle *h;
    json_doc *mdoc, *odoc, *tdoc;
    cx_call_options co;
    ivec ids;
    cx_gen *gen;
    bool handoff;
    strbuf cloud_text, cloud_calls;
    char cloud_error[512];
} call_state;

json_doc *completion_parse_json(const char *what, const char *text) {
    /* strnlen: a caller's runaway string is not scanned past the limit */
    size_t len = strnlen(text, (size_t)CACTUS_MAX_JSON_BYTES + 1);
    if (len > CACTUS_MAX_JSON_BYTES) {
        cx_error("%s is larger than %u bytes (CACTUS_MAX_JSON_BYTES)", what, CACTUS_MAX_JSON_BYTES);
        return NULL;
    }
    char err[256];
    json_doc *d = json_parse(text, len, err, sizeof err);
    if (!d) cx_error("%s is not valid JSON: %s", what, err);
    return d;
}

static int render_prompt(cx_handle *h, const json_value *messages, const json_value *tools, ivec *ids) {
    strbuf prompt;
    sb_init(&prompt);
    bool bos_rendered = false;
    const cx_model *m = h->m;
    int rc = chat_render(m->chat, messages, tools, true, m->bos_text, m->eos_text, &prompt, &bos_rendered);
    if (!rc) rc = tok_encode(m->tok, prompt.data, prompt.len, !bos_rendered, true, ids);
    sb_free(&prompt);
    return rc;
}

/* A different context size needs a new KV cache: the conversation restarts. */
static int resize_context(cx_handle *h, int n_ctx) {
    if (n_ctx == h->s->n_ctx) return 0;
    cx_session *s = session_new(h->m, n_ctx, tp_n_threads(h->s->tp));
    if (!s) return -1;
    session_free(h->s);
    h->s = s;
    return 0;
}

/* Tool-call parsing and, for tool_choice "required" or a name, the grammar. */
static int setup_tools(call_state *c) {
    const json_value *tools = c->tdoc ? json_root(c->tdoc) : NULL;
    const char *choice = c->co.tool_choice;
    cx_gen_options *o = &c->co.gen;
    o->fam = chat_tool_family(c->h->m->chat);
    if (!tools || json_len(tools) == 0) {
        if (choice && strcmp(choice, "auto") && strcmp(choice, "none"))
            return cx_error("option 'tool_choice' = '%s' needs tools", choice);
        return 0;
    }
    o->tools = tools;
    o->parse_tools = !choice || strcmp(choice, "none") != 0;
    if (!choice || !strcmp(choice, "auto") || !strcmp(choice, "none")) return 0;
    bool unsupported = false;
    o->grammar = grammar_new(c->h->m->tok, o->fam, tools, choice, &unsupported);
    if (!o->grammar && !unsupported) return -1;
    if (!o->grammar) cx_log(CX_LOG_WARN, "tool schema cannot be constrained (%s); decoding unconstrained", cx_last_error());
    return 0;
}

/* Options and the prompt's token ids; a CACTUS_* code. */
static int prepare(call_state *c, const char *raw_prompt, const char *messages_json, const char *tools_json,
                   const char *options_json) {
    cx_handle *h = c->h;
    if ((options_json && !(c->odoc = completion_parse_json("options_json", options_json))) ||
        options_parse(c->odoc ? json_root(c->odoc) : NULL, &c->co))
        return CACTUS_ERR_INVALID_ARGUMENT;
    if (raw_prompt) {
        if (tok_encode(h->m->tok, raw_prompt, strlen(raw_prompt), true, true, &c->ids)) return CACTUS_ERR_NO_MEMORY;
    } else {
        if (!(c->mdoc = completion_parse_json("messages_json", messages_json)) ||
            (tools_json && !(c->tdoc = completion_parse_json("tools_json", tools_json))) ||
            (c->tdoc && chat_validate_tools(json_root(c->tdoc))) || chat_validate(json_root(c->mdoc)) ||
            render_prompt(h, json_root(c->mdoc), c->tdoc ? json_root(c->tdoc) : NULL, &c->ids))
            return CACTUS_ERR_INVALID_ARGUMENT;
    }
    if (!raw_prompt && setup_tools(c)) return CACTUS_ERR_INVALID_ARGUMENT;
    if (c->co.n_ctx && resize_context(h, c->co.n_ctx)) return CACTUS_ERR_NO_MEMORY;
    if (c->ids.n == 0) { /* an empty raw prompt, for a vocabulary that adds no BOS: nothing to continue */
        cx_error("the prompt is empty: it has no tokens");
        return CACTUS_ERR_INVALID_ARGUMENT;
    }
    if (c->ids.n > (size_t)h->s->n_ctx) {
        cx_error("the prompt has %zu tokens but the context holds %d (option n_ctx)", c->ids.n, h->s->n_ctx);
        return CACTUS_ERR_CONTEXT;
    }
    return CACTUS_OK;
}

/* Asks the handler; on any failure fills cloud_error and returns -1. */
static int try_cloud(call_state *c) {
    cx_handle *h = c->h;
    if (!h->cloud) {
        snprintf(c->cloud_error, sizeof c->cloud_error, "no cloud handler is installed");
        return -1;
    }
    strbuf req;
    sb_init(&req);
    cloud_build_request(json_root(c->mdoc), c->tdoc ? json_root(c->tdoc) : NULL, &c->co, &req);
    char *reply = calloc(CLOUD_REPLY_MAX, 1);
    int rc = -1;
    if (!reply || req.failed) {
        snprintf(c->cloud_error, sizeof c->cloud_error, "out of memory preparing the cloud request");
    } else if (h->cloud(req.data, reply, CLOUD_REPLY_MAX, h->cloud_data) != 0) {
        reply[CLOUD_REPLY_MAX - 1] = 0;
        snprintf(c->cloud_error, sizeof c->cloud_error, "%s", reply[0] ? reply : "the cloud handler failed");
    } else {
        reply[CLOUD_REPLY_MAX - 1] = 0;
        rc = cloud_parse_reply(reply, strlen(reply), &c->cloud_text, &c->cloud_calls);
        if (rc) snprintf(c->cloud_error, sizeof c->cloud_error, "%s", cx_last_error());
    }
    free(reply);
    sb_free(&req);
    return rc;
}

/* Generation with the handoff decision; a CACTUS_* code. */
static int generate(call_state *c, cactus_token_callback cb, void *ud, double t_start) {
    cx_handle *h = c->h;
    atomic_store(&h->cancel, false);
    if (!(c->gen = gen_new(h->s, &c->co.gen, cb, ud, &h->cancel, t_start))) return CACTUS_ERR_NO_MEMORY;
    if (gen_prefill(c->gen, c->ids.v, c->ids.n)) return CACTUS_ERR_INTERNAL;
    bool can_handoff = c->mdoc != NULL; /* a raw text prompt has no conversation to hand over */
    int rc = gen_decode(c->gen, can_handoff);
    if (rc == GEN_HANDOFF) {
        if (try_cloud(c) == 0) {
            c->handoff = true;
            if (cb && c->cloud_text.len) cb(c->cloud_text.data, CACTUS_TOKEN_CLOUD, ud);
            return CACTUS_OK;
        }
        cx_log(CX_LOG_INFO, "cloud handoff failed, answering locally: %s", c->cloud_error);
        rc = gen_decode(c->gen, false); /* finish the local answer */
    }
    return rc < 0 ? CACTUS_ERR_INTERNAL : CACTUS_OK;
}

static int respond(call_state *c, char *buf, size_t size, double t_start) {
    const cx_gen_result *g = gen_result(c->gen);
    sb_puts(&c->cloud_text, "");
    cx_response r = {
        .gen = g,
        .text = c->handoff ? c->cloud_text.data : g->text.data,
        .text_len = c->handoff ? c->cloud_text.len : g->text.len,
        .calls_json = c->handoff ? (c->cloud_calls.len ? c->cloud_calls.data : NULL)
                                 : (g->calls.len ? g->calls.data : NULL),
        .cloud_handoff = c->handoff,
        .cloud_error = c->cloud_error[0] ? c->cloud_error : NULL,
    };
    return response_deliver(&r, cx_now_ms() - t_start, buf, size);
}

int completion_run(cx_handle *h, const char *raw_prompt, const char *messages_json, const char *tools_json,
                   const char *options_json, char *buf, size_t size, cactus_token_callback cb, void *user_data,
                   double t_start) {
    call_state c = {.h = h};
    iv_init(&c.ids);
    int code = prepare(&c, raw_prompt, messages_json, tools_json, options_json);
    if (code == CACTUS_OK) code = generate(&c, cb, user_data, t_start);
    int rc = code == CACTUS_OK ? respond(&c, buf, size, t_start) : response_fail(code, t_start, buf, size);
    gen_free(c.gen);
    grammar_free(c.co.gen.grammar);
    sb_free(&c.cloud_text);
    sb_free(&c.cloud_calls);
    iv_free(&c.ids);
    options_free(&c.co);
    json_free(c.mdoc);
    json_free(c.odoc);
    json_free(c.tdoc);
    return rc;
}
