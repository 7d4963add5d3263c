/* Scalar reference kernels: the oracle for every SIMD path. */
#include <math.h>

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

static float dotq_q8_0(const void *row, const void *xq, size_t n) {
    const block_q8_0 *b = row;
    const int8_t *q = xq;
    const float *d = kern_xq_d(xq, n);
    float s = 0.0f;
    for (size_t ib = 0; ib < n / QK; ib++, q += QK) {
        int32_t isum = 0;
        for (int j = 0; j < QK; j++) isum += b[ib].qs[j] * q[j];
        s += fp16_to_f32(b[ib].d) * d[ib] * (float)isum;
    }
    return s;
}

static float dotq_q4_0(const void *row, const void *xq, size_t n) {
    const block_q4_0 *b = row;
    const int8_t *q = xq;
    const float *d = kern_xq_d(xq, n);
    float s = 0.0f;
    for (size_t ib = 0; ib < n / QK; ib++, q += QK) {
        int32_t isum = 0;
        for (int j = 0; j < QK / 2; j++) {
            isum += ((b[ib].qs[j] & 0x0F) - 8) * q[j];
            isum += ((b[ib].qs[j] >> 4) - 8) * q[j + QK / 2];
        }
        s += fp16_to_f32(b[ib].d) * d[ib] * (float)isum;
    }
    return s;
}

static void dotq_nt_q8_0(const void *row, const void *xq, size_t xq_stride, size_t n, float *out) {
    for (int t = 0; t < KERN_NT; t++) out[t] = dotq_q8_0(row, (const uint8_t *)xq + (size_t)t * xq_stride, n);
}

static void dotq_nt_q4_0(const void *row, const void *xq, size_t xq_stride, size_t n, float *out) {
    for (int t = 0; t < KERN_NT; t++) out[t] = dotq_q4_0(row, (const uint8_t *)xq + (size_t)t * xq_stride, n);
}

static const kern_table g_scalar = {
    .name = "scalar",
    .dot = {[GGML_TYPE_F32] = dot_f32, [GGML_TYPE_F16] = dot_f16, [GGML_TYPE_BF16] = dot_bf16,
            [GGML_TYPE_Q8_0] = dot_q8_0, [GGML_TYPE_Q4_0] = dot_q4_0},
    .dequant = {[GGML_TYPE_F32] = dequant_f32, [GGML_TYPE_F16] = dequant_f16, [GGML_TYPE_BF16] = dequant_bf16,
                [GGML_TYPE_Q8_0] = dequant_q8_0, [GGML_TYPE_Q4_0] = dequant_q4_0},
    .dot_nt = {[GGML_TYPE_F32] = dot_nt_f32, [GGML_TYPE_F16] = dot_nt_f16, [GGML_TYPE_BF16] = dot_nt_bf16},
    .quantize_x = quantize_x,
    .dotq = {[GGML_TYPE_Q8_0] = dotq_q8_0, [GGML_TYPE_Q4_0] = dotq_q4_0},
    .dotq_nt = {[GGML_TYPE_Q8_0] = dotq_nt_q8_0, [GGML_TYPE_Q4_0] = dotq_nt_q4_0},
};

const kern_table *kern_scalar(void) { return &g_scalar; }
