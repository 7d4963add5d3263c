/* Gemma 3 (text): embeddings scaled by sqrt(hidden); each block
 *   x += RMSNorm_post(Attention(RMSNorm_pre(x)))
 *   x += RMSNorm_post(GeGLU(RMSNorm_pre(x)))
 * with per-head q/k RMSNorm, NeoX RoPE and a query scale of
 * query_pre_attn_scalar^-1/2. Most blocks attend within a sliding window and
 * use their own RoPE base; the others are global. Final RMSNorm, tied output
 * head, optional logit soft-capping. Norm weights are stored as llama.cpp
 * stores them, already 1 + w, so the plain RMSNorm op applies them. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../ops.h"
#include "../session.h"
#include "common.h"
#include "../util.h"

#define NAME_LEN 96
#define DEFAULT_SWA_PERIOD 6 /* llama.cpp's Gemma 3 layout: five sliding blocks, then a global one */

/* "blk.<il>.<part>.weight" in buf (which is returned). */
static const char *blk(char *buf, int il, const char *part) {
    snprintf(buf, NAME_LEN, "blk.%d.%s.weight", il, part);
    return buf;
}

static int bind_layer(cx_model *m, int il) {
    const cx_hparams *hp = &m->hp;
    cx_layer *L = &m->layers[il];
    int64_t D = hp->n_embd, hd = hp->head_dim, qd = (int64_t)hp->n_head * hd, kvd = (int64_t)hp->n_head_kv * hd;
    char n[NAME_LEN];
    if (L->n_head_kv != hp->n_head_kv)
        return cx_error("layer %d has %d KV heads; gemma3 needs the same count in every layer", il, L->n_head_kv);
    if (model_bind_vec(m, &L->attn_norm, blk(n, il, "attn_norm"), D, false) ||
        model_bind_weight(m, &L->wq, blk(n, il, "attn_q"), D, qd) ||
        model_bind_weight(m, &L->wk, blk(n, il, "attn_k"), D, kvd) ||
        model_bind_weight(m, &L->wv, blk(n, il, "attn_v"), D, kvd) ||
        model_bind_vec(m, &L->q_norm, blk(n, il, "attn_q_norm"), hd, false) ||
        model_bind_vec(m, &L->k_norm, blk(n, il, "attn_k_norm"), hd, false) ||
        model_bind_weight(m, &L->wo, blk(n, il, "attn_output"), qd, D) ||
        model_bind_vec(m, &L->attn_post_norm, blk(n, il, "post_attention_norm"), D, false) ||
        model_bind_vec(m, &L->ffn_norm, blk(n, il, "ffn_norm"), D, false) ||
        model_bind_weight(m, &L->w_gate, blk(n, il, "ffn_gate"), D, hp->n_ff) ||
        model_bind_weight(m, &L->w_up, blk(n, il, "ffn_up"), D, hp->n_ff) ||
        model_bind_weight(m, &L->w_down, blk(n, il, "ffn_down"), hp->n_ff, D) ||
        model_bind_vec(m, &L->ffn_post_norm, blk(n, il, "post_ffw_norm"), D, false))
        return -1;
    return 0;
}

/* Which blocks slide: attention.sliding_window_pattern as a per-layer array
 * (bool or integer, non-zero = sliding), or a period n (blocks il with
 * il % n < n - 1 slide), or, absent, llama.cpp's fixed period of 6. */
static int read_sliding_layers(cx_model *m) {
    const gguf_kv *kv = model_find_kv(m, "attention.sliding_window_pattern");
    int n_layer = m->hp.n_layer;
    if (kv && kv->type == GGUF_TYPE_ARRAY) {
        if (kv->v.arr.n != (uint64_t)n_layer)
            return cx_error("attention.sliding_window_pattern has %llu entries for %d layers",
                            (unsigned long long)kv->v.arr.n, n_layer);
        for (int il = 0; il < n_layer; il++) {
            int64_t v = 0;
            if (kv->v.arr.type == GGUF_TYPE_BOOL)
                v = ((const uint8_t *)kv->v.arr.data)[il];
            else if (gguf_arr_get_i64(kv, (uint64_t)il, &v))
                return cx_error("attention.sliding_window_pattern[%d] is not a bool or an integer", il);
            m->layers[il].sliding = v != 0;
        }
        return 0;
    }
    int32_t period;
    if (model_get_u32(m, "attention.sliding_window_pattern", &period, DEFAULT_SWA_PERIOD, false, 0, 1 << 16))
        return -1;
    for (int il = 0; il < n_layer; il++) m->layers[il].sliding = period == 0 || il % period < period - 1;
    return 0;
}

static int read_hparams(cx_model *m) {
    cx_hparams *hp = &m->hp;
    gguf_str type;
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", m->arch_name);
    if (gguf_get_str(m->file, key, &type) == 0 && !gguf_str_eq(type, "linear") && !gguf_str_eq(type, "none"))
        return cx_error("gemma3: RoPE scaling type '%.*s' is not supported (only linear)",
                        (int)(type.len > 32 ? 32 : type.len), type.ptr);
    if (model_get_u32(m, "attention.sliding_window", &hp->sliding_window, 0, false, 0, 1 << 24) ||
        read_sliding_layers(m))
        return -1;
    if (hp->sliding_window == 0)
        for (int il = 0; il < hp->n_layer; il++) m->layers[il].sliding = false;
    model_get_f32(m, "rope.freq_base_swa", &hp->rope_base_swa, 10000.0f);
    /* llama.cpp's default when the file does not say: 27B (62 layers) scales by hidden / heads */
    float d_scale = hp->n_layer == 62 ? (float)hp->n_embd / (float)hp->n_head : (float)hp->head_dim;
    model_get_f32(m, "attention.scale", &hp->attn_scale, 1.0f / sqrtf(d_scale));
    model_get_f32(m, "attn_logit_softcapping", &hp->attn_softcap, 0.0f);
    model_get_f32(m, "final_logit_softcapping", &hp->final_softcap, 0.0f);
    if (!(hp->rope_base_swa > 0.0f) || !(hp->attn_scale > 0.0f) || !(hp->attn_softcap >= 0.0f) ||
        !(hp->final_softcap >= 0.0f))
        return cx_error("gemma3: rope.freq_base_swa, attention.scale or a soft-capping value is out of range");
    return 0;
}

int arch_gemma3_bind(cx_model *m) {
    if (read_hparams(m) || model_bind_io(m, "output_norm.weight")) return -1;
    for (int il = 0; il < m->hp.n_layer; il++)
        if (bind_layer(m, il)) return -1;
    return 0;
}

static void attention_block(cx_session *s, const cx_layer *L, int il, int n, int pos0) {
    const cx_hparams *hp = &s->m->hp;
    int D = hp->n_embd, hd = hp->head_dim, qd = hp->n_head * hd, kvd = hp->n_head_kv * hd;
    const float *cos_t = L->sliding ? s->rope_cos_swa : s->rope_cos;
    const float *sin_t = L->sliding ? s->rope_sin_swa : s->rope_sin;
    op_rmsnorm_rows(s->xn, s->x, L->attn_norm, n, D, hp->rms_eps);
    arch_qkv(s, L, n);
    op_rmsnorm_rows(s->q, s->q, L->q_norm, n * hp->n_head, hd, hp->rms_eps);
    op_rmsnorm_rows(s->k, s->k, L->k_norm, n * hp->n_head_kv, hd, hp->rms_eps);
    float *kc = s->k_layer[il], *vc = s->v_layer[il];
    for (int t = 0; t < n; t++) {
        const float *c = cos_t + (size_t)t * (hd / 2), *sn = sin_t + (size_t)t * (hd / 2);
        op_rope(s->q + (size_t)t * qd, hp->n_head, hd, c, sn, ROPE_NEOX);
        op_rope(s->k + (size_t)t * kvd, hp->n_head_kv, hd, c, sn, ROPE_NEOX);
        memcpy(kc + (size_t)(pos0 + t) * kvd, s->k + (size_t)t * kvd, sizeof(float) * (size_t)kvd);
        memcpy(vc + (size_t)(pos0 + t) * kvd, s->v + (size_t)t * kvd, sizeof(float) * (size_t)kvd);
    }
    attn_shape sh = {.n_head = hp->n_head, .n_head_kv = hp->n_head_kv, .head_dim = hd, .scale = hp->attn_scale,
                     .window = L->sliding ? hp->sliding_window : 0, .softcap = hp->attn_softcap};
    op_attention(s->tp, &sh, s->q, kc, vc, s->att, n, pos0, s->scores);
    op_matmul(s->tp, &L->wo, s->att, s->tmp, n, s->rowbuf);
    op_rmsnorm_rows(s->tmp, s->tmp, L->attn_post_norm, n, D, hp->rms_eps);
    op_add(s->x, s->tmp, n * D);
}

static void ffn_block(cx_session *s, const cx_layer *L, int n) {
    const cx_hparams *hp = &s->m->hp;
    int D = hp->n_embd;
    op_rmsnorm_rows(s->xn, s->x, L->ffn_norm, n, D, hp->rms_eps);
    arch_gate_up(s, L, n);
    op_geglu(s->gate, s->up, n * hp->n_ff);
    op_matmul(s->tp, &L->w_down, s->gate, s->tmp, n, s->rowbuf);
    op_rmsnorm_rows(s->tmp, s->tmp, L->ffn_post_norm, n, D, hp->rms_eps);
    op_add(s->x, s->tmp, n * D);
}

/* Token embeddings times sqrt(hidden), and the RoPE tables of this chunk:
 * global blocks use rope.freq_base (linearly scaled), sliding ones their own base. */
static void embed(cx_session *s, const int32_t *tokens, int n, int pos0) {
    const cx_model *m = s->m;
    const cx_hparams *hp = &m->hp;
    int D = hp->n_embd, half = hp->head_dim / 2;
    float scale = (float)sqrt((double)D);
    arch_embed(s, tokens, n);
    for (int t = 0; t < n; t++) {
        float *x = s->x + (size_t)t * D;
        op_scale(x, scale, D);
        op_rope_table_scaled(s->rope_cos + (size_t)t * half, s->rope_sin + (size_t)t * half, pos0 + t, hp->head_dim,
                             hp->rope_base, hp->rope_factor);
        if (hp->sliding_window > 0)
            op_rope_table(s->rope_cos_swa + (size_t)t * half, s->rope_sin_swa + (size_t)t * half, pos0 + t,
                          hp->head_dim, hp->rope_base_swa);
    }
}

int arch_gemma3_forward(cx_session *s, const int32_t *tokens, int n, int pos0, float *logits, bool all_logits) {
    const cx_model *m = s->m;
    const cx_hparams *hp = &m->hp;
    embed(s, tokens, n, pos0);
    for (int il = 0; il < hp->n_layer; il++) {
        attention_block(s, &m->layers[il], il, n, pos0);
        ffn_block(s, &m->layers[il], n);
    }
    if (!logits) return 0;
    arch_output(s, n, logits, all_logits);
    if (hp->final_softcap > 0.0f) op_softcap(logits, hp->final_softcap, (all_logits ? n : 1) * hp->n_vocab);
    return 0;
}
