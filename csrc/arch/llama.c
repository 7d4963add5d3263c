/* The Llama family: llama, qwen2 (q/k/v bias) and qwen3 (per-head q/k
 * RMSNorm). Pre-norm decoder blocks: RMSNorm -> GQA attention with RoPE ->
 * residual -> RMSNorm -> SwiGLU -> residual; final RMSNorm and output head. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ops.h"
#include "../session.h"
#include "../util.h"
#include "common.h"

static int bind_layer(cx_model *m, int il) {
    const cx_hparams *hp = &m->hp;
    cx_layer *L = &m->layers[il];
    int64_t D = hp->n_embd, qd = (int64_t)hp->n_head * hp->head_dim, kvd = (int64_t)hp->n_head_kv * hp->head_dim;
    char name[96];
#define W(field, suffix, nin, nout) \
    (snprintf(name, sizeof name, "blk.%d." suffix ".weight", il), model_bind_weight(m, &L->field, name, nin, nout))
#define V(field, suffix, kind, n, opt) \
    (snprintf(name, sizeof name, "blk.%d." suffix "." kind, il), model_bind_vec(m, &L->field, name, n, opt))
    if (V(attn_norm, "attn_norm", "weight", D, false) || W(wq, "attn_q", D, qd) || W(wk, "attn_k", D, kvd) ||
        W(wv, "attn_v", D, kvd) || W(wo, "attn_output", qd, D) || V(ffn_norm, "ffn_norm", "weight", D, false) ||
        W(w_gate, "ffn_gate", D, hp->n_ff) || W(w_up, "ffn_up", D, hp->n_ff) || W(w_down, "ffn_down", hp->n_ff, D))
        return -1;
    bool bias = m->arch == ARCH_QWEN2;
    if (V(bq, "attn_q", "bias", qd, !bias) || V(bk, "attn_k", "bias", kvd, !bias) || V(bv, "attn_v", "bias", kvd, !bias))
        return -1;
    bool qk_norm = m->arch == ARCH_QWEN3;
    if (V(q_norm, "attn_q_norm", "weight", hp->head_dim, !qk_norm) ||
        V(k_norm, "attn_k_norm", "weight", hp->head_dim, !qk_norm))
        return -1;
#undef W
#undef V
    return 0;
}

int arch_llama_bind(cx_model *m) {
    if (model_bind_io(m, "output_norm.weight")) return -1;
    for (int il = 0; il < m->hp.n_layer; il++) {
        if (m->layers[il].n_head_kv != m->hp.n_head_kv)
            return cx_error("layer %d has %d KV heads; %s needs the same count in every layer", il,
                            m->layers[il].n_head_kv, m->arch_name);
        if (bind_layer(m, il)) return -1;
    }
    return 0;
}

static void add_bias(float *y, const float *b, int n_tok, int n) {
    if (!b) return;
    for (int t = 0; t < n_tok; t++) op_add(y + (size_t)t * n, b, n);
}

static void head_norm(float *y, const float *w, int n_tok, int n_heads, int hd, float eps) {
    if (!w) return;
    for (int i = 0; i < n_tok * n_heads; i++) op_rmsnorm(y + (size_t)i * hd, y + (size_t)i * hd, w, hd, eps);
}

static void attention_block(cx_session *s, const cx_layer *L, int il, int n, int pos0) {
    const cx_hparams *hp = &s->m->hp;
    int D = hp->n_embd, hd = hp->head_dim, qd = hp->n_head * hd, kvd = hp->n_head_kv * hd;
    for (int t = 0; t < n; t++) op_rmsnorm(s->xn + (size_t)t * D, s->x + (size_t)t * D, L->attn_norm, D, hp->rms_eps);
    arch_qkv(s, L, n);
    add_bias(s->q, L->bq, n, qd);
    add_bias(s->k, L->bk, n, kvd);
    add_bias(s->v, L->bv, n, kvd);
    head_norm(s->q, L->q_norm, n, hp->n_head, hd, hp->rms_eps);
    head_norm(s->k, L->k_norm, n, hp->n_head_kv, hd, hp->rms_eps);
    float *kc = s->k_layer[il], *vc = s->v_layer[il];
    for (int t = 0; t < n; t++) {
        const float *c = s->rope_cos + (size_t)t * (hd / 2), *sn = s->rope_sin + (size_t)t * (hd / 2);
        op_rope(s->q + (size_t)t * qd, hp->n_head, hd, c, sn, hp->rope);
        op_rope(s->k + (size_t)t * kvd, hp->n_head_kv, hd, c, sn, hp->rope);
        memcpy(kc + (size_t)(pos0 + t) * kvd, s->k + (size_t)t * kvd, sizeof(float) * (size_t)kvd);
        memcpy(vc + (size_t)(pos0 + t) * kvd, s->v + (size_t)t * kvd, sizeof(float) * (size_t)kvd);
    }
    attn_shape sh = {.n_head = hp->n_head, .n_head_kv = hp->n_head_kv, .head_dim = hd,
                     .scale = 1.0f / sqrtf((float)hd)};
    op_attention(s->tp, &sh, s->q, kc, vc, s->att, n, pos0, s->scores);
    op_matmul(s->tp, &L->wo, s->att, s->tmp, n, s->rowbuf);
    op_add(s->x, s->tmp, n * D);
}

int arch_llama_forward(cx_session *s, const int32_t *tokens, int n, int pos0, float *logits, bool all_logits) {
    const cx_model *m = s->m;
    arch_embed(s, tokens, n);
    arch_rope_tables(s, n, pos0);
    for (int il = 0; il < m->hp.n_layer; il++) {
        attention_block(s, &m->layers[il], il, n, pos0);
        arch_swiglu_ffn(s, &m->layers[il], n);
    }
    if (logits) arch_output(s, n, logits, all_logits);
    return 0;
}
