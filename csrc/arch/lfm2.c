/* LFM2 (Liquid AI): a hybrid stack of gated short-convolution blocks and
 * grouped-query attention blocks. Every block is pre-norm:
 *   x += operator(RMSNorm(x));  x += SwiGLU(RMSNorm(x))
 * where the operator is either
 *   conv:      (B, C, h) = in_proj(x);  y = C * causal_depthwise_conv(B * h);  out_proj(y)
 *   attention: GQA with per-head q/k RMSNorm and NeoX RoPE.
 * A block without KV heads (attention.head_count_kv[il] == 0) is a conv block.
 * The final RMSNorm is llama.cpp's token_embd_norm; embeddings are tied. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../ops.h"
#include "../session.h"
#include "../util.h"
#include "common.h"

#define NAME_LEN 96

/* "blk.<il>.<part>.weight" in buf (which is returned). */
static const char *blk(char *buf, int il, const char *part) {
    snprintf(buf, NAME_LEN, "blk.%d.%s.weight", il, part);
    return buf;
}

static int bind_conv(cx_model *m, cx_layer *L, int il) {
    int64_t D = m->hp.n_embd;
    char n[NAME_LEN];
    if (model_bind_weight(m, &L->conv_in, blk(n, il, "shortconv.in_proj"), D, 3 * D) ||
        model_bind_f32_matrix(m, &L->conv_kernel, blk(n, il, "shortconv.conv"), m->hp.conv_len, D) ||
        model_bind_weight(m, &L->conv_out, blk(n, il, "shortconv.out_proj"), D, D))
        return -1;
    return 0;
}

static int bind_attention(cx_model *m, cx_layer *L, int il) {
    const cx_hparams *hp = &m->hp;
    int64_t D = hp->n_embd, hd = hp->head_dim, qd = (int64_t)hp->n_head * hd, kvd = (int64_t)L->n_head_kv * hd;
    char n[NAME_LEN];
    if (model_bind_weight(m, &L->wq, blk(n, il, "attn_q"), D, qd) ||
        model_bind_weight(m, &L->wk, blk(n, il, "attn_k"), D, kvd) ||
        model_bind_weight(m, &L->wv, blk(n, il, "attn_v"), D, kvd) ||
        model_bind_vec(m, &L->q_norm, blk(n, il, "attn_q_norm"), hd, false) ||
        model_bind_vec(m, &L->k_norm, blk(n, il, "attn_k_norm"), hd, false) ||
        model_bind_weight(m, &L->wo, blk(n, il, "attn_output"), qd, D))
        return -1;
    return 0;
}

static int bind_layer(cx_model *m, int il) {
    const cx_hparams *hp = &m->hp;
    cx_layer *L = &m->layers[il];
    int64_t D = hp->n_embd;
    char n[NAME_LEN];
    if (model_bind_vec(m, &L->attn_norm, blk(n, il, "attn_norm"), D, false) ||
        model_bind_vec(m, &L->ffn_norm, blk(n, il, "ffn_norm"), D, false) ||
        model_bind_weight(m, &L->w_gate, blk(n, il, "ffn_gate"), D, hp->n_ff) ||
        model_bind_weight(m, &L->w_up, blk(n, il, "ffn_up"), D, hp->n_ff) ||
        model_bind_weight(m, &L->w_down, blk(n, il, "ffn_down"), hp->n_ff, D))
        return -1;
    return L->n_head_kv == 0 ? bind_conv(m, L, il) : bind_attention(m, L, il);
}

int arch_lfm2_bind(cx_model *m) {
    if (model_get_u32(m, "shortconv.l_cache", &m->hp.conv_len, 0, true, 1, 64) ||
        model_bind_io(m, "token_embd_norm.weight"))
        return -1;
    for (int il = 0; il < m->hp.n_layer; il++)
        if (bind_layer(m, il)) return -1;
    return 0;
}

/* The gated short convolution. Its input B*h is cached per position (like
 * K/V), so the kernel's L-1 previous rows are always at hand. */
static void conv_block(cx_session *s, const cx_layer *L, int il, int n, int pos0) {
    const cx_hparams *hp = &s->m->hp;
    int D = hp->n_embd;
    float *hist = s->conv_layer[il];
    op_rmsnorm_rows(s->xn, s->x, L->attn_norm, n, D, hp->rms_eps);
    op_matmul(s->tp, &L->conv_in, s->xn, s->bcx, n, s->rowbuf);
    for (int t = 0; t < n; t++) {
        const float *b = s->bcx + (size_t)t * 3 * D, *h = b + 2 * (size_t)D;
        float *row = hist + (size_t)(pos0 + t) * D;
        for (int c = 0; c < D; c++) row[c] = b[c] * h[c];
    }
    op_short_conv(s->xn, hist, L->conv_kernel, n, pos0, D, hp->conv_len);
    for (int t = 0; t < n; t++) op_mul(s->xn + (size_t)t * D, s->bcx + (size_t)t * 3 * D + D, D); /* C gate */
    op_matmul(s->tp, &L->conv_out, s->xn, s->tmp, n, s->rowbuf);
    op_add(s->x, s->tmp, n * D);
}

static void attention_block(cx_session *s, const cx_layer *L, int il, int n, int pos0) {
    const cx_hparams *hp = &s->m->hp;
    int D = hp->n_embd, hd = hp->head_dim, qd = hp->n_head * hd, kvd = L->n_head_kv * hd;
    op_rmsnorm_rows(s->xn, s->x, L->attn_norm, n, D, hp->rms_eps);
    arch_qkv(s, L, n);
    op_rmsnorm_rows(s->q, s->q, L->q_norm, n * hp->n_head, hd, hp->rms_eps);
    op_rmsnorm_rows(s->k, s->k, L->k_norm, n * L->n_head_kv, hd, hp->rms_eps);
    float *kc = s->k_layer[il], *vc = s->v_layer[il];
    for (int t = 0; t < n; t++) {
        const float *c = s->rope_cos + (size_t)t * (hd / 2), *sn = s->rope_sin + (size_t)t * (hd / 2);
        op_rope(s->q + (size_t)t * qd, hp->n_head, hd, c, sn, ROPE_NEOX);
        op_rope(s->k + (size_t)t * kvd, L->n_head_kv, hd, c, sn, ROPE_NEOX);
        memcpy(kc + (size_t)(pos0 + t) * kvd, s->k + (size_t)t * kvd, sizeof(float) * (size_t)kvd);
        memcpy(vc + (size_t)(pos0 + t) * kvd, s->v + (size_t)t * kvd, sizeof(float) * (size_t)kvd);
    }
    attn_shape sh = {.n_head = hp->n_head, .n_head_kv = L->n_head_kv, .head_dim = hd,
                     .scale = 1.0f / sqrtf((float)hd)};
    op_attention(s->tp, &sh, s->q, kc, vc, s->att, n, pos0, s->scores);
    op_matmul(s->tp, &L->wo, s->att, s->tmp, n, s->rowbuf);
    op_add(s->x, s->tmp, n * D);
}

int arch_lfm2_forward(cx_session *s, const int32_t *tokens, int n, int pos0, float *logits, bool all_logits) {
    const cx_model *m = s->m;
    arch_embed(s, tokens, n);
    arch_rope_tables(s, n, pos0);
    for (int il = 0; il < m->hp.n_layer; il++) {
        const cx_layer *L = &m->layers[il];
        if (L->n_head_kv == 0)
            conv_block(s, L, il, n, pos0);
        else
            attention_block(s, L, il, n, pos0);
        arch_swiglu_ffn(s, L, n);
    }
    if (logits) arch_output(s, n, logits, all_logits);
    return 0;
}
