/* The cactus_* entry points: argument checks, JSON in, engine calls, JSON
 * out, and the thread-local last error. Nothing here aborts or prints. */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "completion.h"
#include "generate.h"
#include "gguf.h"
#include "include/cactus.h"
#include "json.h"
#include "model.h"
#include "ops.h"
#include "response.h"
#include "session.h"
#include "util.h"


static int env_threads(void) {
    const char *e = getenv("CACTUS_THREADS");
    int n = e ? atoi(e) : 0;
    return n > 0 && n <= 256 ? n : 0;
}

CACTUS_API cactus_model_t cactus_init(const char *model_path, const char *corpus_dir, bool cache_index) {
    cx_clear_error();
    if (corpus_dir || cache_index) cx_log(CX_LOG_WARN, "corpus_dir / cache_index are reserved and ignored");
    if (!model_path) {
        cx_error("cactus_init: model_path is NULL");
        return NULL;
    }
    cx_handle *h = calloc(1, sizeof *h);
    if (!h) {
        cx_error("out of memory");
        return NULL;
    }
    h->m = model_load(model_path);
    if (h->m) h->s = session_new(h->m, 0, env_threads());
    if (!h->m || !h->s) {
        session_free(h->s);
        model_free(h->m);
        free(h);
        return NULL;
    }
    return h;
}

CACTUS_API void cactus_destroy(cactus_model_t model) {
    cx_handle *h = model;
    if (!h) return;
    session_free(h->s);
    model_free(h->m);
    free(h);
}

/* Takes the busy flag like every call that touches the session, so a reset
 * can never clear the KV cache under a running forward pass. */
CACTUS_API int cactus_reset(cactus_model_t model) {
    cx_clear_error();
    cx_handle *h = model;
    if (!h) return cx_error("cactus_reset: model handle is NULL"), CACTUS_ERR_INVALID_ARGUMENT;
    if (atomic_exchange(&h->busy, true))
        return cx_error("cactus_reset: a call is running on this handle; cactus_stop it and reset after it returns"),
               CACTUS_ERR_INVALID_ARGUMENT;
    session_reset(h->s);
    atomic_store(&h->busy, false);
    return CACTUS_OK;
}

CACTUS_API void cactus_stop(cactus_model_t model) {
    cx_handle *h = model;
    if (h) atomic_store(&h->cancel, true);
}

CACTUS_API const char *cactus_get_last_error(void) { return cx_last_error(); }

/* Mean of the final-normed hidden states over `ids`, evaluated chunk by
 * chunk: after each forward the session's x rows hold the chunk's final
 * residual stream. */
static int embed_ids(cx_handle *h, const ivec *ids, float *out) {
    const cx_model *m = h->m;
    int D = m->hp.n_embd;
    double *acc = calloc((size_t)D, sizeof(double));
    float *row = malloc(sizeof(float) * (size_t)D);
    int rc = acc && row ? 0 : cx_error("out of memory");
    session_reset(h->s);
    for (size_t done = 0; !rc && done < ids->n;) {
        size_t chunk = ids->n - done > CX_BATCH ? CX_BATCH : ids->n - done;
        rc = session_eval(h->s, ids->v + done, chunk, NULL);
        for (size_t t = 0; !rc && t < chunk; t++) {
            op_rmsnorm(row, h->s->x + t * (size_t)D, m->output_norm, D, m->hp.rms_eps);
            for (int i = 0; i < D; i++) acc[i] += row[i];
        }
        done += chunk;
    }
    double norm = 0.0;
    for (int i = 0; !rc && i < D; i++) norm += acc[i] * acc[i];
    norm = norm > 0 ? sqrt(norm) : 1.0;
    for (int i = 0; !rc && i < D; i++) out[i] = (float)(acc[i] / norm);
    session_reset(h->s); /* the cache now holds the embedded text, not the conversation */
    free(acc);
    free(row);
    return rc;
}

CACTUS_API int cactus_embed(cactus_model_t model, const char *text, float *out, size_t out_len, size_t *dim) {
    cx_clear_error();
    cx_handle *h = model;
    if (!h || !text || !dim || (!out && out_len)) return cx_error("cactus_embed: NULL argument"), CACTUS_ERR_INVALID_ARGUMENT;
    *dim = (size_t)h->m->hp.n_embd;
    if (out_len < *dim) {
        cx_error("cactus_embed: out holds %zu floats, the embedding has %zu", out_len, *dim);
        return CACTUS_ERR_BUFFER_TOO_SMALL;
    }
    ivec ids;
    iv_init(&ids);
    int rc = tok_encode(h->m->tok, text, strlen(text), true, false, &ids) ? CACTUS_ERR_NO_MEMORY : CACTUS_OK;
    if (rc == CACTUS_OK && ids.n == 0) {
        cx_error("cactus_embed: the text has no tokens");
        rc = CACTUS_ERR_INVALID_ARGUMENT;
    }
    if (rc == CACTUS_OK && ids.n > (size_t)h->s->n_ctx) {
        cx_error("cactus_embed: %zu tokens exceed the context size %d", ids.n, h->s->n_ctx);
        rc = CACTUS_ERR_CONTEXT;
    }
    if (rc == CACTUS_OK && atomic_exchange(&h->busy, true)) {
        cx_error("cactus_embed: the handle is busy");
        rc = CACTUS_ERR_INVALID_ARGUMENT;
    }
    if (rc == CACTUS_OK) {
        rc = embed_ids(h, &ids, out) ? CACTUS_ERR_INTERNAL : CACTUS_OK;
        atomic_store(&h->busy, false);
    }
    iv_free(&ids);
    return rc;
}

CACTUS_API size_t cactus_vocab_size(cactus_model_t model) {
    cx_handle *h = model;
    return h ? (size_t)h->m->hp.n_vocab : 0;
}

/* Shared entry checks of the two completion calls; the handle is marked busy. */
static int enter(cx_handle *h, const char *fn, const char *what, const void *arg, char *buf, size_t size, double t0) {
    if (!buf || size == 0) return cx_error("%s: response_buffer is NULL or empty", fn), CACTUS_ERR_INVALID_ARGUMENT;
    if (!h) cx_error("%s: model handle is NULL", fn);
    else if (!arg) cx_error("%s: %s is NULL", fn, what);
    else if (atomic_exchange(&h->busy, true)) cx_error("%s: this handle is already running a completion", fn);
    else return CACTUS_OK;
    return response_fail(CACTUS_ERR_INVALID_ARGUMENT, t0, buf, size);
}

CACTUS_API int cactus_complete(cactus_model_t model, const char *messages_json, char *response_buffer,
                               size_t buffer_size, const char *options_json, const char *tools_json,
                               cactus_token_callback callback, void *user_data) {
    double t0 = cx_now_ms();
    cx_clear_error();
    cx_handle *h = model;
    int rc = enter(h, "cactus_complete", "messages_json", messages_json, response_buffer, buffer_size, t0);
    if (rc != CACTUS_OK) return rc;
    rc = completion_run(h, NULL, messages_json, tools_json, options_json, response_buffer, buffer_size, callback,
                        user_data, t0);
    atomic_store(&h->busy, false);
    return rc;
}

CACTUS_API int cactus_complete_text(cactus_model_t model, const char *prompt, char *response_buffer,
                                    size_t buffer_size, const char *options_json, cactus_token_callback callback,
                                    void *user_data) {
    double t0 = cx_now_ms();
    cx_clear_error();
    cx_handle *h = model;
    int rc = enter(h, "cactus_complete_text", "prompt", prompt, response_buffer, buffer_size, t0);
    if (rc != CACTUS_OK) return rc;
    rc = completion_run(h, prompt, NULL, NULL, options_json, response_buffer, buffer_size, callback, user_data, t0);
    atomic_store(&h->busy, false);
    return rc;
}

CACTUS_API void cactus_set_cloud_handler(cactus_model_t model, cactus_cloud_handler handler, void *user_data) {
    cx_handle *h = model;
    if (!h) return;
    h->cloud = handler;
    h->cloud_data = user_data;
}

CACTUS_API int cactus_tokenize(cactus_model_t model, const char *text, uint32_t *out, size_t cap, size_t *n_out) {
    cx_clear_error();
    cx_handle *h = model;
    if (!h || !text || !n_out || (!out && cap)) return cx_error("cactus_tokenize: NULL argument"), CACTUS_ERR_INVALID_ARGUMENT;
    ivec ids;
    iv_init(&ids);
    if (tok_encode(h->m->tok, text, strlen(text), false, false, &ids)) {
        iv_free(&ids);
        return CACTUS_ERR_INTERNAL;
    }
    *n_out = ids.n;
    for (size_t i = 0; i < ids.n && i < cap; i++) out[i] = (uint32_t)ids.v[i];
    int rc = ids.n > cap ? (cx_error("cactus_tokenize: %zu tokens do not fit a buffer of %zu", ids.n, cap),
                            CACTUS_ERR_BUFFER_TOO_SMALL)
                         : CACTUS_OK;
    iv_free(&ids);
    return rc;
}

CACTUS_API int cactus_logits(cactus_model_t model, const uint32_t *tokens, size_t n_tokens, float *out, size_t out_len) {
    cx_clear_error();
    cx_handle *h = model;
    if (!h || !tokens || !out) return cx_error("cactus_logits: NULL argument"), CACTUS_ERR_INVALID_ARGUMENT;
    if (n_tokens == 0) return cx_error("cactus_logits: no tokens"), CACTUS_ERR_INVALID_ARGUMENT;
    size_t V = (size_t)h->m->hp.n_vocab;
    if (out_len / V < n_tokens)
        return cx_error("cactus_logits: out holds %zu floats, %zu x %zu are needed", out_len, n_tokens, V),
               CACTUS_ERR_BUFFER_TOO_SMALL;
    if (n_tokens > (size_t)h->s->n_ctx)
        return cx_error("cactus_logits: %zu tokens exceed the context size %d", n_tokens, h->s->n_ctx), CACTUS_ERR_CONTEXT;
    if (atomic_exchange(&h->busy, true)) return cx_error("cactus_logits: the handle is busy"), CACTUS_ERR_INVALID_ARGUMENT;
    session_reset(h->s);
    int rc = session_eval(h->s, (const int32_t *)tokens, n_tokens, out) ? CACTUS_ERR_INVALID_ARGUMENT : CACTUS_OK;
    atomic_store(&h->busy, false);
    return rc;
}

CACTUS_API int cactus_render_chat(const char *chat_template, const char *messages_json, const char *tools_json,
                                  bool add_generation_prompt, const char *bos_token, const char *eos_token,
                                  char *out, size_t out_size, size_t *needed) {
    cx_clear_error();
    if (!messages_json || (!out && out_size)) return cx_error("cactus_render_chat: NULL argument"), CACTUS_ERR_INVALID_ARGUMENT;
    json_doc *mdoc = completion_parse_json("messages_json", messages_json), *tdoc = NULL;
    strbuf sb;
    sb_init(&sb);
    int rc = CACTUS_ERR_INVALID_ARGUMENT;
    bool bos_rendered = false;
    if (mdoc && (!tools_json || (tdoc = completion_parse_json("tools_json", tools_json))) && !chat_validate(json_root(mdoc)) &&
        !chat_render(chat_detect(chat_template, NULL), json_root(mdoc), tdoc ? json_root(tdoc) : NULL,
                     add_generation_prompt, bos_token, eos_token, &sb, &bos_rendered)) {
        sb_puts(&sb, "");
        if (needed) *needed = sb.len + 1;
        rc = sb.len < out_size ? CACTUS_OK : CACTUS_ERR_BUFFER_TOO_SMALL;
        if (rc == CACTUS_OK) memcpy(out, sb.data, sb.len + 1);
        else cx_error("cactus_render_chat: the prompt needs %zu bytes, the buffer has %zu", sb.len + 1, out_size);
    }
    sb_free(&sb);
    json_free(mdoc);
    json_free(tdoc);
    return rc;
}

/* ---- tokenizer alone ---------------------------------------------------- */

CACTUS_API cactus_tokenizer_t cactus_tokenizer_init(const char *path) {
    cx_clear_error();
    if (!path) {
        cx_error("cactus_tokenizer_init: path is NULL");
        return NULL;
    }
    char *file = model_resolve_path(path);
    if (!file) return NULL;
    gguf_file *f = gguf_open(file);
    free(file);
    if (!f) return NULL;
    tokenizer *t = tok_load(f);
    gguf_close(f);
    return t;
}

CACTUS_API void cactus_tokenizer_destroy(cactus_tokenizer_t tokenizer) { tok_free(tokenizer); }

CACTUS_API size_t cactus_tokenizer_vocab_size(cactus_tokenizer_t tokenizer) {
    return tokenizer ? (size_t)tok_n_vocab(tokenizer) : 0;
}

CACTUS_API int cactus_tokenizer_encode(cactus_tokenizer_t tokenizer, const char *text, size_t len, bool add_special,
                                       bool parse_special, uint32_t *out, size_t cap, size_t *n_out) {
    cx_clear_error();
    if (!tokenizer || (!text && len) || !n_out || (!out && cap))
        return cx_error("cactus_tokenizer_encode: NULL argument"), CACTUS_ERR_INVALID_ARGUMENT;
    ivec ids;
    iv_init(&ids);
    if (tok_encode(tokenizer, text ? text : "", len, add_special, parse_special, &ids)) {
        iv_free(&ids);
        return CACTUS_ERR_NO_MEMORY;
    }
    *n_out = ids.n;
    for (size_t i = 0; i < ids.n && i < cap; i++) out[i] = (uint32_t)ids.v[i];
    int rc = CACTUS_OK;
    if (ids.n > cap) {
        cx_error("%zu tokens do not fit a buffer of %zu", ids.n, cap);
        rc = CACTUS_ERR_BUFFER_TOO_SMALL;
    }
    iv_free(&ids);
    return rc;
}

CACTUS_API int cactus_tokenizer_decode(cactus_tokenizer_t tokenizer, const uint32_t *ids, size_t n, bool special,
                                       char *out, size_t out_size, size_t *needed) {
    cx_clear_error();
    if (!tokenizer || (!ids && n) || (!out && out_size))
        return cx_error("cactus_tokenizer_decode: NULL argument"), CACTUS_ERR_INVALID_ARGUMENT;
    int32_t nv = tok_n_vocab(tokenizer);
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= (uint32_t)nv)
            return cx_error("token id %u out of range [0, %d)", ids[i], (int)nv), CACTUS_ERR_INVALID_ARGUMENT;
    strbuf sb;
    sb_init(&sb);
    int rc = tok_decode(tokenizer, (const int32_t *)ids, n, special, &sb) ? CACTUS_ERR_NO_MEMORY : CACTUS_OK;
    sb_puts(&sb, "");
    if (needed) *needed = sb.len + 1;
    if (rc == CACTUS_OK && sb.len >= out_size) {
        cx_error("decoded text needs %zu bytes, the buffer has %zu", sb.len + 1, out_size);
        rc = CACTUS_ERR_BUFFER_TOO_SMALL;
    }
    if (rc == CACTUS_OK) memcpy(out, sb.data, sb.len + 1);
    sb_free(&sb);
    return rc;
}
