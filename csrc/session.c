/* Session: KV cache, token history, scratch (see session.h). */
#include "session.h"

#include <stdlib.h>
#include <string.h>

#define MAX_DEFAULT_CTX 4096

typedef struct {
    float **slot;
    size_t n;
} alloc_req;

static int alloc_all(alloc_req *reqs, int n_reqs) {
    for (int i = 0; i < n_reqs; i++) {
        *reqs[i].slot = calloc(reqs[i].n ? reqs[i].n : 1, sizeof(float));
        if (!*reqs[i].slot) return cx_error("out of memory allocating the session (%zu floats)", reqs[i].n);
    }
    return 0;
}

static int max_row_len(const cx_hparams *hp) {
    int m = hp->n_embd;
    if (hp->n_ff > m) m = hp->n_ff;
    if (hp->n_head * hp->head_dim > m) m = hp->n_head * hp->head_dim;
    return m;
}

/* Floats per position cached for block il: K (and V) row, or conv input row. */
static size_t kv_row(const cx_model *m, int il) { return (size_t)m->layers[il].n_head_kv * m->hp.head_dim; }
static size_t conv_row(const cx_model *m, int il) {
    return m->layers[il].conv_kernel ? (size_t)m->hp.n_embd : 0;
}

static size_t cache_floats(const cx_model *m, int n_ctx, size_t (*row)(const cx_model *, int)) {
    size_t n = 0;
    for (int il = 0; il < m->hp.n_layer; il++) n += row(m, il) * (size_t)n_ctx;
    return n;
}

/* Points each block at its rows of a cache laid out in layer order. */
static int split_cache(const cx_model *m, int n_ctx, float *base, float ***out,
                       size_t (*row)(const cx_model *, int)) {
    int n_layer = m->hp.n_layer; /* >= 1: checked at load */
    *out = calloc(n_layer > 0 ? (size_t)n_layer : 1, sizeof(float *));
    if (!*out) return cx_error("out of memory");
    for (int il = 0; il < n_layer; il++) {
        size_t n = row(m, il) * (size_t)n_ctx;
        (*out)[il] = n ? base : NULL;
        base += n;
    }
    return 0;
}

static int alloc_buffers(cx_session *s) {
    const cx_model *m = s->m;
    const cx_hparams *hp = &m->hp;
    int nt = tp_n_threads(s->tp), n_ctx = s->n_ctx;
    size_t kv = cache_floats(m, n_ctx, kv_row), conv = cache_floats(m, n_ctx, conv_row);
    size_t qd = (size_t)hp->n_head * hp->head_dim, kvd = (size_t)hp->n_head_kv * hp->head_dim;
    size_t wide = (size_t)max_row_len(hp), half = (size_t)hp->head_dim / 2;
    bool swa = hp->sliding_window > 0;
    alloc_req reqs[] = {
        {&s->k_cache, kv},
        {&s->v_cache, kv},
        {&s->conv_cache, conv},
        {&s->x, CX_BATCH * (size_t)hp->n_embd},
        {&s->xn, CX_BATCH * (size_t)hp->n_embd},
        {&s->q, CX_BATCH * qd},
        {&s->k, CX_BATCH * kvd},
        {&s->v, CX_BATCH * kvd},
        {&s->att, CX_BATCH * qd},
        {&s->tmp, CX_BATCH * wide},
        {&s->gate, CX_BATCH * (size_t)hp->n_ff},
        {&s->up, CX_BATCH * (size_t)hp->n_ff},
        {&s->bcx, conv ? CX_BATCH * 3 * (size_t)hp->n_embd : 0},
        {&s->rope_cos, CX_BATCH * half},
        {&s->rope_sin, CX_BATCH * half},
        {&s->rope_cos_swa, swa ? CX_BATCH * half : 0},
        {&s->rope_sin_swa, swa ? CX_BATCH * half : 0},
        {&s->scores, (size_t)nt * n_ctx},
        {&s->rowbuf, (size_t)(nt + 1) * wide},
        {&s->logits, (size_t)hp->n_vocab},
    };
    if (alloc_all(reqs, (int)(sizeof reqs / sizeof reqs[0])) || iv_reserve(&s->history, (size_t)n_ctx) ||
        split_cache(m, n_ctx, s->k_cache, &s->k_layer, kv_row) ||
        split_cache(m, n_ctx, s->v_cache, &s->v_layer, kv_row) ||
        split_cache(m, n_ctx, s->conv_cache, &s->conv_layer, conv_row))
        return -1;
    return 0;
}

cx_session *session_new(const cx_model *m, int n_ctx, int n_threads) {
    const cx_hparams *hp = &m->hp;
    if (n_ctx <= 0) n_ctx = hp->n_ctx_train > 0 && hp->n_ctx_train < MAX_DEFAULT_CTX ? hp->n_ctx_train : MAX_DEFAULT_CTX;
    cx_session *s = calloc(1, sizeof *s);
    if (!s) {
        cx_error("out of memory");
        return NULL;
    }
    s->m = m;
    s->n_ctx = n_ctx;
    s->tp = tp_create(n_threads);
    if (!s->tp) {
        cx_error("could not start the thread pool");
        free(s);
        return NULL;
    }
    if (alloc_buffers(s)) {
        session_free(s);
        return NULL;
    }
    return s;
}

void session_free(cx_session *s) {
    if (!s) return;
    tp_destroy(s->tp);
    float *bufs[] = {s->k_cache, s->v_cache, s->conv_cache, s->x, s->xn, s->q, s->k, s->v, s->att, s->tmp,
                     s->gate, s->up, s->bcx, s->rope_cos, s->rope_sin, s->rope_cos_swa, s->rope_sin_swa,
                     s->scores, s->rowbuf, s->logits};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(s->k_layer);
    free(s->v_layer);
    free(s->conv_layer);
    iv_free(&s->history);
    free(s);
}

/* Keys, values and conv inputs are all cached per position, so shortening
 * the history is the whole job: rows past it are overwritten when reused. */
void session_reset(cx_session *s) { s->history.n = 0; }

void session_truncate(cx_session *s, size_t n_keep) {
    if (n_keep < s->history.n) s->history.n = n_keep;
}

int session_eval(cx_session *s, const int32_t *tokens, size_t n, float *all_logits) {
    const cx_model *m = s->m;
    if (n == 0) return 0;
    if (s->history.n + n > (size_t)s->n_ctx)
        return cx_error("context full: %zu cached + %zu new tokens exceed the context size %d", s->history.n, n,
                        s->n_ctx);
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->hp.n_vocab)
            return cx_error("token id %d out of range [0, %d)", (int)tokens[i], (int)m->hp.n_vocab);
    for (size_t done = 0; done < n;) {
        int chunk = n - done > CX_BATCH ? CX_BATCH : (int)(n - done);
        bool last = done + (size_t)chunk == n;
        float *out = all_logits ? all_logits + done * (size_t)m->hp.n_vocab : s->logits;
        if (!all_logits && !last) out = NULL; /* no logits needed mid-prompt */
        if (m->forward(s, tokens + done, chunk, (int)s->history.n, out, all_logits != NULL)) return -1;
        for (int i = 0; i < chunk; i++) s->history.v[s->history.n++] = tokens[done + (size_t)i];
        done += (size_t)chunk;
    }
    if (all_logits)
        memcpy(s->logits, all_logits + (n - 1) * (size_t)m->hp.n_vocab, sizeof(float) * (size_t)m->hp.n_vocab);
    return 0;
}

size_t session_bytes(const cx_session *s) {
    return sizeof(float) * (2 * cache_floats(s->m, s->n_ctx, kv_row) + cache_floats(s->m, s->n_ctx, conv_row));
}
