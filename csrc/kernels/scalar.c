/* Scalar reference kernels: the oracle for every SIMD path. */
#include <math.h>

#include "attend.h"
#include "half.h"
#include "kernels.h"

static float dot_f32(const void *row, const float *x, size_t n) {
    const float *w = row;
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) s += w[i] * x[i];
    return s;
}

static float dot_f16(const void *row, const float *x, size_t n) {
    const uint16_t *w = row;
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) s += fp16_to_f32(w[i]) * x[i];
    return s;
}

static float dot_bf16(const void *row, const float *x, size_t n) {
    const uint16_t *w = row;
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) s += bf16_to_f32(w[i]) * x[i];
    return s;
}

static float dot_q8_0(const void *row, const float *x, size_t n) {
    const block_q8_0 *b = row;
    float s = 0.0f;
    for (size_t ib = 0; ib < n / QK; ib++, x += QK) {
        float bs = 0.0f;
        for (int j = 0; j < QK; j++) bs += (float)b[ib].qs[j] * x[j];
        s += fp16_to_f32(b[ib].d) * bs;
    }
    return s;
}

static float dot_q4_0(const void *row, const float *x, size_t n) {
    const block_q4_0 *b = row;
    float s = 0.0f;
    for (size_t ib = 0; ib < n / QK; ib++, x += QK) {
        float bs = 0.0f;
        for (int j = 0; j < QK / 2; j++) {
            bs += (float)((b[ib].qs[j] & 0x0F) - 8) * x[j];
            bs += (float)((b[ib].qs[j] >> 4) - 8) * x[j + QK / 2];
        }
        s += fp16_to_f32(b[ib].d) * bs;
    }
    return s;
}

static void dequant_f32(const void *row, float *out, size_t n) {
    const float *w = row;
    for (size_t i = 0; i < n; i++) out[i] = w[i];
}

static void dequant_f16(const void *row, float *out, size_t n) {
    const uint16_t *w = row;
    for (size_t i = 0; i < n; i++) out[i] = fp16_to_f32(w[i]);
}

static void dequant_bf16(const void *row, float *out, size_t n) {
    const uint16_t *w = row;
    for (size_t i = 0; i < n; i++) out[i] = bf16_to_f32(w[i]);
}

static void dequant_q8_0(const void *row, float *out, size_t n) {
    const block_q8_0 *b = row;
    for (size_t ib = 0; ib < n / QK; ib++, out += QK) {
        float d = fp16_to_f32(b[ib].d);
        for (int j = 0; j < QK; j++) out[j] = (float)b[ib].qs[j] * d;
    }
}

static void dequant_q4_0(const void *row, float *out, size_t n) {
    const block_q4_0 *b = row;
    for (size_t ib = 0; ib < n / QK; ib++, out += QK) {
        float d = fp16_to_f32(b[ib].d);
        for (int j = 0; j < QK / 2; j++) {
            out[j] = (float)((b[ib].qs[j] & 0x0F) - 8) * d;
            out[j + QK / 2] = (float)((b[ib].qs[j] >> 4) - 8) * d;
        }
    }
}

#define DEF_DOT_NT(T)                                                                         \
    static void dot_nt_##T(const void *row, const float *x, size_t x_stride, size_t n, float *out) { \
        for (int t = 0; t < KERN_NT; t++) out[t] = dot_##T(row, x + (size_t)t * x_stride, n);     \
    }
DEF_DOT_NT(f32)
DEF_DOT_NT(f16)
DEF_DOT_NT(bf16)

/* The xq definition in kernels.h, written plainly. The SIMD quantizers must
 * match it bit for bit: the same f32 operations in the same order, and the
 * default round-to-nearest-even of lrintf / cvtps2dq. */
static void quantize_x(const float *x, void *xq, size_t n) {
    int8_t *q = xq;
    int32_t *c = (int32_t *)((uint8_t *)xq + kern_xq_c_offset(n));
    float *d = (float *)((uint8_t *)xq + kern_xq_d_offset(n));
    for (size_t ib = 0; ib < n / QK; ib++) {
        const float *xb = x + ib * QK;
        float amax = 0.0f;
        for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(xb[j]));
        /* A block of (near) zeros quantizes to zeros; the floor keeps 127 / amax finite. */
        float id = amax > KERN_XQ_TINY ? 127.0f / amax : 0.0f;
        for (int j = 0; j < QK; j++) q[ib * QK + j] = (int8_t)lrintf(xb[j] * id);
        d[ib] = amax / 127.0f;
    }
    for (size_t k = 0; k < n / 4; k++) c[k] = -8 * (q[4 * k] + q[4 * k + 1] + q[4 * k + 2] + q[4 * k + 3]);
}

/* The lo row of xq2 (kernels.h): the remainder at a sixteenth of hi's step.
 * |x - q d| is within half a step (plus an ulp or two of the rounded
 * 127 / amax), so lo lands in [-8, 8]; the clamp only makes that a
 * guarantee. q d and the difference are separate statements so that no
 * compiler fuses them into an fma: the SIMD versions must get the same
 * bits. */
static void quantize_lo(const float *x, void *xq2, size_t n) {
    kern_xq2_rows r = kern_xq2_rows_of(xq2, n);
    for (size_t ib = 0; ib < n / QK; ib++) {
        float step = kern_xq_lo_step(r.d[ib]), inv = step > 0.0f ? 1.0f / step : 0.0f;
        for (size_t j = ib * QK; j < (ib + 1) * QK; j++) {
            float qd = (float)r.q[j] * r.d[ib];
            float rest = x[j] - qd;
            long v = lrintf(rest * inv);
            r.lo[j] = (int8_t)(v < -8 ? -8 : v > 8 ? 8 : v);
        }
        r.d_lo[ib] = step;
    }
    for (size_t k = 0; k < n / 4; k++) r.c[k] = -8 * (r.lo[4 * k] + r.lo[4 * k + 1] + r.lo[4 * k + 2] + r.lo[4 * k + 3]);
}

void kern_quantize_x2(const kern_table *kt, const float *x, void *xq2, size_t n) {
    kt->quantize_x(x, xq2, n);
    (kt->quantize_lo ? kt->quantize_lo : quantize_lo)(x, xq2, n);
}

/* One block's integer sum: weights times quants. */
static int32_t isum_q8_0(const block_q8_0 *b, const int8_t *q) {
    int32_t isum = 0;
    for (int j = 0; j < QK; j++) isum += b->qs[j] * q[j];
    return isum;
}

static int32_t isum_q4_0(const block_q4_0 *b, const int8_t *q) {
    int32_t isum = 0;
    for (int j = 0; j < QK / 2; j++) {
        isum += ((b->qs[j] & 0x0F) - 8) * q[j];
        isum += ((b->qs[j] >> 4) - 8) * q[j + QK / 2];
    }
    return isum;
}

#define DEF_DOTQ(T)                                                                            \
    static float dotq_##T(const void *row, const void *xq, size_t n) {                         \
        const block_##T *b = row;                                                              \
        const int8_t *q = xq;                                                                  \
        const float *d = kern_xq_d(xq, n);                                                     \
        float s = 0.0f;                                                                        \
        for (size_t ib = 0; ib < n / QK; ib++, q += QK)                                        \
            s += fp16_to_f32(b[ib].d) * d[ib] * (float)isum_##T(b + ib, q);                    \
        return s;                                                                              \
    }                                                                                          \
    /* The xq2 dot as kernels.h defines it: one integer per block, 16 hi + lo. */              \
    static float dotq2_##T(const void *row, const void *xq2, size_t n) {                       \
        const block_##T *b = row;                                                              \
        const int8_t *q = xq2, *lo = (const int8_t *)xq2 + kern_xq_bytes(n);                   \
        const float *d = kern_xq_d(lo, n);                                                     \
        float s = 0.0f;                                                                        \
        for (size_t ib = 0; ib < n / QK; ib++, q += QK, lo += QK)                              \
            s += fp16_to_f32(b[ib].d) * d[ib] * (float)(16 * isum_##T(b + ib, q) + isum_##T(b + ib, lo)); \
        return s;                                                                              \
    }                                                                                          \
    KERN_DEF_DOTQ_NT_BY_TOKEN(dotq_nt_##T, dotq_##T)                                           \
    KERN_DEF_DOTQ_NT_BY_TOKEN(dotq2_nt_##T, dotq2_##T)
DEF_DOTQ(q8_0)
DEF_DOTQ(q4_0)

static const kern_table g_scalar = {
    .name = "scalar",
    .dot = {[GGML_TYPE_F32] = dot_f32, [GGML_TYPE_F16] = dot_f16, [GGML_TYPE_BF16] = dot_bf16,
            [GGML_TYPE_Q8_0] = dot_q8_0, [GGML_TYPE_Q4_0] = dot_q4_0},
    .dequant = {[GGML_TYPE_F32] = dequant_f32, [GGML_TYPE_F16] = dequant_f16, [GGML_TYPE_BF16] = dequant_bf16,
                [GGML_TYPE_Q8_0] = dequant_q8_0, [GGML_TYPE_Q4_0] = dequant_q4_0},
    .dot_nt = {[GGML_TYPE_F32] = dot_nt_f32, [GGML_TYPE_F16] = dot_nt_f16, [GGML_TYPE_BF16] = dot_nt_bf16},
    .attend = attend,
    .quantize_x = quantize_x,
    .quantize_lo = quantize_lo,
    .dotq = {[GGML_TYPE_Q8_0] = dotq_q8_0, [GGML_TYPE_Q4_0] = dotq_q4_0},
    .dotq_nt = {[GGML_TYPE_Q8_0] = dotq_nt_q8_0, [GGML_TYPE_Q4_0] = dotq_nt_q4_0},
    .dotq2 = {[GGML_TYPE_Q8_0] = dotq2_q8_0, [GGML_TYPE_Q4_0] = dotq2_q4_0},
    .dotq2_nt = {[GGML_TYPE_Q8_0] = dotq2_nt_q8_0, [GGML_TYPE_Q4_0] = dotq2_nt_q4_0},
};

const kern_table *kern_scalar(void) { return &g_scalar; }
