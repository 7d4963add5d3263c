/* One conversation over a model: the KV cache, the token history it holds,
 * the thread pool and every scratch buffer, all sized once at creation so
 * the decode loop never allocates.
 *
 * Recurrent state (LFM2's short convolutions) is kept like keys and values:
 * one row per position, the block's convolution input B*x. Position p's
 * output then needs rows p - L + 1 .. p only, so truncating the history to
 * any prefix (multi-turn reuse) or resetting it leaves a valid state with
 * nothing to recompute or roll back. */
#ifndef CACTUS_SESSION_H
#define CACTUS_SESSION_H

#include "model.h"
#include "threadpool.h"
#include "util.h"

#define CX_BATCH 64 /* tokens per prefill chunk */

typedef struct cx_session {
    const cx_model *m;
    threadpool *tp;
    int n_ctx;
    float *k_cache, *v_cache; /* every attention block's [n_ctx][n_head_kv(il) * head_dim], in layer order */
    float **k_layer, **v_layer; /* [n_layer]: block il's rows in k_cache / v_cache (NULL: no attention) */
    float *conv_cache;          /* lfm2: every short-conv block's [n_ctx][n_embd] inputs B*x, in layer order */
    float **conv_layer;         /* [n_layer]: block il's rows in conv_cache (NULL: not a conv block) */
    ivec history;               /* tokens whose keys, values and conv inputs are cached */
    /* scratch, [CX_BATCH][...] each */
    float *x, *xn, *q, *k, *v, *att, *tmp, *gate, *up;
    float *bcx;                 /* lfm2: in_proj output, [CX_BATCH][3 * n_embd] */
    float *rope_cos, *rope_sin; /* [CX_BATCH][head_dim / 2] */
    float *rope_cos_swa, *rope_sin_swa; /* gemma3: the sliding blocks' own tables, same shape */
    float *scores;              /* [n_threads][n_ctx] */
    float *rowbuf;              /* [n_threads + 1][max row length]: op_matmul's scratch */
    float *logits;              /* [n_vocab]: the last position's logits */
} cx_session;

/* n_ctx <= 0: the model's training context, capped at 4096. */
cx_session *session_new(const cx_model *m, int n_ctx, int n_threads);
void session_free(cx_session *s);
void session_reset(cx_session *s);

/* Drops cached positions past n_keep (prefix reuse). */
void session_truncate(cx_session *s, size_t n_keep);

/* Appends `n` tokens to the context (in chunks of CX_BATCH) and leaves the
 * last position's logits in s->logits. When `all_logits` is non-NULL it
 * receives every position's logits (n x n_vocab). -1 + cx_error on failure
 * (context full, token id out of range). */
int session_eval(cx_session *s, const int32_t *tokens, size_t n, float *all_logits);

/* Bytes of KV cache (and conv-input cache) this session holds. */
size_t session_bytes(const cx_session *s);

#endif
