/* The shared transformer operations. Each works on f32 rows in place or
 * into a caller buffer; none allocates. */
#ifndef CACTUS_OPS_H
#define CACTUS_OPS_H

#include "model.h"
#include "threadpool.h"

/* out = x / sqrt(mean(x^2) + eps) * w  (w may be NULL for no weight). */
void op_rmsnorm(float *out, const float *x, const float *w, int n, float eps);
/* op_rmsnorm on each of n_rows rows of n (out may be x). */
void op_rmsnorm_rows(float *out, const float *x, const float *w, int n_rows, int n, float eps);
/* cos/sin tables for one position: theta_i = pos * base^(-2i/dim), i < dim/2. */
void op_rope_table(float *cos_out, float *sin_out, int pos, int dim, float base);
/* The same with linear scaling: every frequency divided by `factor` (1: none). */
void op_rope_table_scaled(float *cos_out, float *sin_out, int pos, int dim, float base, float factor);
/* Rotates each of n_heads vectors of head_dim in place. ROPE_NORM rotates
 * adjacent pairs (2i, 2i+1); ROPE_NEOX rotates (i, i + dim/2). */
void op_rope(float *vec, int n_heads, int head_dim, const float *cos_t, const float *sin_t, rope_kind kind);
/* gate[i] = silu(gate[i]) * up[i] */
void op_swiglu(float *gate, const float *up, int n);
/* gate[i] = gelu(gate[i]) * up[i], GELU in its tanh approximation (GeGLU). */
void op_geglu(float *gate, const float *up, int n);
void op_add(float *x, const float *y, int n);
/* x[i] *= y[i] */
void op_mul(float *x, const float *y, int n);
void op_scale(float *x, float s, int n);
/* x[i] = cap * tanh(x[i] / cap): squashes into (-cap, cap), ~identity near 0. */
void op_softcap(float *x, float cap, int n);

/* Depthwise causal convolution over time. `hist` holds one input row of `dim`
 * channels per position ([n_ctx][dim], rows < pos0 + n_tok filled); for each
 * new position p = pos0 + t: out[t][c] = sum_k kernel[c][k] * hist[p - (len-1) + k][c],
 * rows before position 0 counting as zero. kernel: [dim][len]. */
void op_short_conv(float *out, const float *hist, const float *kernel, int n_tok, int pos0, int dim, int len);

/* y[t][o] = W[o] . x[t] for t < n_tok, threaded over rows of W. `scratch`
 * holds (tp_n_threads(tp) + 1) * W->n_in floats: a dequantized row per
 * thread, or a decode step's quantized input (which needs a little more
 * than one row, hence the + 1). */
void op_matmul(threadpool *tp, const cx_weight *w, const float *x, float *y, int n_tok, float *scratch);
/* y[k] = w[k] x for k < n_w (at most OP_MATMUL_GROUP_MAX): weights that read the
 * same input, such as q, k and v. The same results as n_w op_matmul calls; a
 * decode step quantizes x once and runs one parallel-for over all the rows. */
#define OP_MATMUL_GROUP_MAX 4
void op_matmul_group(threadpool *tp, const cx_weight *const *w, float *const *y, int n_w, const float *x, int n_tok,
                     float *scratch);

/* Causal grouped-query attention of n_tok queries at positions pos0.. over
 * the cache rows [0, pos0 + n_tok) (the last `window` of them when set;
 * fields after `scale` may be left zero). q: [n_tok][n_head*hd]; k_cache/v_cache:
 * [n_ctx][n_head_kv*hd]; out: [n_tok][n_head*hd]. `scores` holds
 * tp_n_threads(tp) * (pos0 + n_tok) floats. */
typedef struct {
    int n_head, n_head_kv, head_dim;
    float scale;
    int window;    /* > 0: a query at position p sees keys (p - window, p] only (sliding window) */
    float softcap; /* > 0: scores -> softcap * tanh(scores / softcap) before the softmax */
} attn_shape;
void op_attention(threadpool *tp, const attn_shape *sh, const float *q, const float *k_cache, const float *v_cache,
                  float *out, int n_tok, int pos0, float *scores);

#endif
