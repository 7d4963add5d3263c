/* Transformer operations shared by every family (see ops.h). */
#include "ops.h"

#include <math.h>
#include <string.h>

#include "kernels/kernels.h"

void op_rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    /* Accumulate in double: the normaliser is shared by every element, so
     * its rounding error would show up in all of them. */
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / n + (double)eps));
    if (w) {
        for (int i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
    } else {
        for (int i = 0; i < n; i++) out[i] = x[i] * scale;
    }
}

void op_rmsnorm_rows(float *out, const float *x, const float *w, int n_rows, int n, float eps) {
    for (int r = 0; r < n_rows; r++) op_rmsnorm(out + (size_t)r * n, x + (size_t)r * n, w, n, eps);
}

void op_rope_table(float *cos_out, float *sin_out, int pos, int dim, float base) {
    op_rope_table_scaled(cos_out, sin_out, pos, dim, base, 1.0f);
}

void op_rope_table_scaled(float *cos_out, float *sin_out, int pos, int dim, float base, float factor) {
    for (int i = 0; i < dim / 2; i++) {
        /* The inverse frequency in f32 as the reference implementations compute it. */
        float inv_freq = (float)(1.0 / pow((double)base, (double)(2 * i) / dim));
        if (factor != 1.0f) inv_freq /= factor;
        double theta = (double)pos * inv_freq;
        cos_out[i] = (float)cos(theta);
        sin_out[i] = (float)sin(theta);
    }
}

void op_rope(float *vec, int n_heads, int head_dim, const float *cos_t, const float *sin_t, rope_kind kind) {
    int half = head_dim / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = vec + (size_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            int a = kind == ROPE_NEOX ? i : 2 * i;
            int b = kind == ROPE_NEOX ? i + half : 2 * i + 1;
            float x0 = v[a], x1 = v[b];
            v[a] = x0 * cos_t[i] - x1 * sin_t[i];
            v[b] = x0 * sin_t[i] + x1 * cos_t[i];
        }
    }
}

void op_swiglu(float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void op_geglu(float *gate, const float *up, int n) {
    const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
    for (int i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = 0.5f * g * (1.0f + tanhf(k * (g + 0.044715f * g * g * g))) * up[i];
    }
}

void op_add(float *x, const float *y, int n) {
    for (int i = 0; i < n; i++) x[i] += y[i];
}

void op_mul(float *x, const float *y, int n) {
    for (int i = 0; i < n; i++) x[i] *= y[i];
}

void op_scale(float *x, float s, int n) {
    for (int i = 0; i < n; i++) x[i] *= s;
}

void op_softcap(float *x, float cap, int n) {
    for (int i = 0; i < n; i++) x[i] = cap * tanhf(x[i] / cap);
}

void op_short_conv(float *out, const float *hist, const float *kernel, int n_tok, int pos0, int dim, int len) {
    for (int t = 0; t < n_tok; t++) {
        int p = pos0 + t;
        float *o = out + (size_t)t * dim;
        memset(o, 0, sizeof(float) * (size_t)dim);
        /* tap k reads position p - (len-1) + k; taps before the start read zeros */
        for (int k = p >= len - 1 ? 0 : len - 1 - p; k < len; k++) {
            const float *h = hist + (size_t)(p - (len - 1) + k) * dim;
            for (int c = 0; c < dim; c++) o[c] += kernel[(size_t)c * len + k] * h[c];
        }
    }
}

typedef struct {
    const attn_shape *sh;
    const float *q, *k, *v;
    float *out;
    int pos0;
    float *scores;
    int scores_stride;
} attn_job;

static void attend_one(const attn_job *j, int t, int h, float *sc) {
    const attn_shape *sh = j->sh;
    int hd = sh->head_dim, kv_dim = sh->n_head_kv * hd;
    int g = h / (sh->n_head / sh->n_head_kv);
    int last = j->pos0 + t; /* the query's own position */
    int first = sh->window > 0 && last - sh->window + 1 > 0 ? last - sh->window + 1 : 0;
    int n_keys = last - first + 1;
    const float *q = j->q + ((size_t)t * sh->n_head + h) * hd;
    const float *k0 = j->k + (size_t)first * kv_dim + (size_t)g * hd;
    const float *v0 = j->v + (size_t)first * kv_dim + (size_t)g * hd;
    float *o = j->out + ((size_t)t * sh->n_head + h) * hd;
    kern_active()->attend(q, k0, v0, (size_t)kv_dim, hd, n_keys, sh->scale, sh->softcap, sc, o);
}

static void attention_items(void *p, int64_t i0, int64_t i1, int thread) {
    const attn_job *j = p;
    float *sc = j->scores + (size_t)thread * (size_t)j->scores_stride;
    for (int64_t i = i0; i < i1; i++) attend_one(j, (int)(i / j->sh->n_head), (int)(i % j->sh->n_head), sc);
}

void op_attention(threadpool *tp, const attn_shape *sh, const float *q, const float *k_cache, const float *v_cache,
                  float *out, int n_tok, int pos0, float *scores) {
    attn_job j = {sh, q, k_cache, v_cache, out, pos0, scores, pos0 + n_tok};
    tp_for(tp, (int64_t)n_tok * sh->n_head, attention_items, &j);
}
