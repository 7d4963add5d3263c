/* AArch64 Advanced SIMD kernels with the ARMv8.2 dot product (SDOT), as on
 * Apple M1+, Cortex-A76+ and Neoverse: only this file is compiled with
 * -march=armv8.2-a+dotprod (CMakeLists.txt), and dispatch.c hands out its
 * table only when the kernel reports SDOT (HWCAP_ASIMDDP).
 *
 * SDOT multiplies signed by signed bytes, so quantized weights are used as
 * signed values directly and xq's c corrections (for x86's unsigned-by-
 * signed instructions) are not needed; every 4-byte lane is its own exact
 * partial sum either way. */
#include "kernels.h"

#if defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)
#include <arm_neon.h>
#include <string.h>

#include "attend.h"
#include "half.h"

static inline float fp16_scale(uint16_t h) {
    __fp16 f;
    memcpy(&f, &h, sizeof f);
    return (float)f;
}

/* ---- float weights ---------------------------------------------------- */

/* Four weights from element i, widened to f32 (exactly). */
static inline float32x4_t load4_f32(const void *p, size_t i) { return vld1q_f32((const float *)p + i); }
static inline float32x4_t load4_f16(const void *p, size_t i) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)p + i)));
}
static inline float32x4_t load4_bf16(const void *p, size_t i) {
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)p + i), 16));
}
/* One weight, for the scalar tail (NEON has no masked loads). */
static inline float one_f32(const void *p, size_t i) { return ((const float *)p)[i]; }
static inline float one_f16(const void *p, size_t i) { return fp16_to_f32(((const uint16_t *)p)[i]); }
static inline float one_bf16(const void *p, size_t i) { return bf16_to_f32(((const uint16_t *)p)[i]); }

/* Four accumulators hide the FMA latency; under 4 left, a scalar tail. */
#define DEF_DOT(T)                                                                                     \
    static float dot_##T(const void *row, const float *x, size_t n) {                                  \
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;                                  \
        size_t i = 0;                                                                                  \
        for (; i + 16 <= n; i += 16) {                                                                 \
            a0 = vfmaq_f32(a0, load4_##T(row, i), vld1q_f32(x + i));                                    \
            a1 = vfmaq_f32(a1, load4_##T(row, i + 4), vld1q_f32(x + i + 4));                            \
            a2 = vfmaq_f32(a2, load4_##T(row, i + 8), vld1q_f32(x + i + 8));                            \
            a3 = vfmaq_f32(a3, load4_##T(row, i + 12), vld1q_f32(x + i + 12));                          \
        }                                                                                              \
        for (; i + 4 <= n; i += 4) a0 = vfmaq_f32(a0, load4_##T(row, i), vld1q_f32(x + i));            \
        float s = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));                         \
        for (; i < n; i++) s += one_##T(row, i) * x[i];                                                \
        return s;                                                                                      \
    }
DEF_DOT(f32)
DEF_DOT(f16)
DEF_DOT(bf16)

/* One row against KERN_NT token vectors: each weight load feeds four FMAs. */
#define DEF_DOT_NT(T)                                                                                  \
    static void dot_nt_##T(const void *row, const float *x, size_t xs, size_t n, float *out) {         \
        float32x4_t a[KERN_NT][2];                                                                     \
        for (int t = 0; t < KERN_NT; t++) a[t][0] = a[t][1] = vdupq_n_f32(0.0f);                       \
        size_t i = 0;                                                                                  \
        for (; i + 8 <= n; i += 8) {                                                                   \
            float32x4_t w0 = load4_##T(row, i), w1 = load4_##T(row, i + 4);                            \
            for (int t = 0; t < KERN_NT; t++) {                                                        \
                a[t][0] = vfmaq_f32(a[t][0], w0, vld1q_f32(x + t * xs + i));                           \
                a[t][1] = vfmaq_f32(a[t][1], w1, vld1q_f32(x + t * xs + i + 4));                       \
            }                                                                                          \
        }                                                                                              \
        if (i + 4 <= n) {                                                                              \
            float32x4_t w = load4_##T(row, i);                                                         \
            for (int t = 0; t < KERN_NT; t++) a[t][0] = vfmaq_f32(a[t][0], w, vld1q_f32(x + t * xs + i)); \
            i += 4;                                                                                    \
        }                                                                                              \
        for (int t = 0; t < KERN_NT; t++) {                                                            \
            float s = vaddvq_f32(vaddq_f32(a[t][0], a[t][1]));                                         \
            for (size_t k = i; k < n; k++) s += one_##T(row, k) * x[t * xs + k];                       \
            out[t] = s;                                                                                \
        }                                                                                              \
    }
DEF_DOT_NT(f32)
DEF_DOT_NT(f16)
DEF_DOT_NT(bf16)

/* ---- quantized weights: integer dots against xq ----------------------- */

/* The scalar quantize_x, four lanes at a time: the same f32 operations, and
 * FCVTNS rounds to nearest even like lrintf, so the bytes match. */
static void quantize_x(const float *x, void *xq, size_t n) {
    int8_t *q = xq;
    int32_t *c = (int32_t *)((uint8_t *)xq + kern_xq_c_offset(n));
    float *d = (float *)((uint8_t *)xq + kern_xq_d_offset(n));
    for (size_t ib = 0; ib < n / QK; ib++, x += QK) {
        float32x4_t v[8], m = vdupq_n_f32(0.0f);
        for (int k = 0; k < 8; k++) v[k] = vld1q_f32(x + 4 * k), m = vmaxq_f32(m, vabsq_f32(v[k]));
        float amax = vmaxvq_f32(m);
        float id = amax > KERN_XQ_TINY ? 127.0f / amax : 0.0f;
        int16x8_t h[4];
        for (int k = 0; k < 4; k++)
            h[k] = vcombine_s16(vqmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(v[2 * k], id))),
                                vqmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(v[2 * k + 1], id))));
        int8x16_t q0 = vcombine_s8(vqmovn_s16(h[0]), vqmovn_s16(h[1]));
        int8x16_t q1 = vcombine_s8(vqmovn_s16(h[2]), vqmovn_s16(h[3]));
        vst1q_s8(q + ib * QK, q0);
        vst1q_s8(q + ib * QK + 16, q1);
        /* c = -8 * (sum of each 4 quants): one SDOT against -8s. */
        vst1q_s32(c + ib * 8, vdotq_s32(vdupq_n_s32(0), q0, vdupq_n_s8(-8)));
        vst1q_s32(c + ib * 8 + 4, vdotq_s32(vdupq_n_s32(0), q1, vdupq_n_s8(-8)));
        d[ib] = amax / 127.0f;
    }
}

/* The 32 weights of a Q4_0 block as signed bytes -8..7: [0..16) and [16..32). */
static inline void unpack_q4(const uint8_t *qs, int8x16_t *lo, int8x16_t *hi) {
    uint8x16_t v = vld1q_u8(qs);
    *lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0F))), vdupq_n_s8(8));
    *hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), vdupq_n_s8(8));
}

/* 32 signed weights times 32 quants, in 4 int32 lanes. */
static inline int32x4_t dot32(int8x16_t w0, int8x16_t w1, const int8_t *q) {
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, vld1q_s8(q)), w1, vld1q_s8(q + 16));
}

static inline float32x4_t scale_acc(float32x4_t acc, float dw, float dx, int32x4_t isum) {
    return vfmaq_n_f32(acc, vcvtq_f32_s32(isum), dw * dx);
}

static float dotq_q8_0(const void *row, const void *xq, size_t n) {
    const block_q8_0 *b = row;
    const int8_t *q = xq;
    const float *d = kern_xq_d(xq, n);
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0;
    size_t nb = n / QK, ib = 0;
    for (; ib + 2 <= nb; ib += 2) {
        a0 = scale_acc(a0, fp16_scale(b[ib].d), d[ib], dot32(vld1q_s8(b[ib].qs), vld1q_s8(b[ib].qs + 16), q + ib * QK));
        a1 = scale_acc(a1, fp16_scale(b[ib + 1].d), d[ib + 1],
                       dot32(vld1q_s8(b[ib + 1].qs), vld1q_s8(b[ib + 1].qs + 16), q + ib * QK + QK));
    }
    if (ib < nb)
        a0 = scale_acc(a0, fp16_scale(b[ib].d), d[ib], dot32(vld1q_s8(b[ib].qs), vld1q_s8(b[ib].qs + 16), q + ib * QK));
    return vaddvq_f32(vaddq_f32(a0, a1));
}

static float dotq_q4_0(const void *row, const void *xq, size_t n) {
    const block_q4_0 *b = row;
    const int8_t *q = xq;
    const float *d = kern_xq_d(xq, n);
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0;
    size_t nb = n / QK, ib = 0;
    int8x16_t lo, hi;
    for (; ib + 2 <= nb; ib += 2) {
        unpack_q4(b[ib].qs, &lo, &hi);
        a0 = scale_acc(a0, fp16_scale(b[ib].d), d[ib], dot32(lo, hi, q + ib * QK));
        unpack_q4(b[ib + 1].qs, &lo, &hi);
        a1 = scale_acc(a1, fp16_scale(b[ib + 1].d), d[ib + 1], dot32(lo, hi, q + ib * QK + QK));
    }
    if (ib < nb) {
        unpack_q4(b[ib].qs, &lo, &hi);
        a0 = scale_acc(a0, fp16_scale(b[ib].d), d[ib], dot32(lo, hi, q + ib * QK));
    }
    return vaddvq_f32(vaddq_f32(a0, a1));
}

/* The KERN_NT-token forms load (and unpack) each weight block once. */
static void dotq_nt_q8_0(const void *row, const void *xq, size_t xs, size_t n, float *out) {
    const block_q8_0 *b = row;
    float32x4_t a[KERN_NT];
    for (int t = 0; t < KERN_NT; t++) a[t] = vdupq_n_f32(0.0f);
    for (size_t ib = 0; ib < n / QK; ib++) {
        int8x16_t w0 = vld1q_s8(b[ib].qs), w1 = vld1q_s8(b[ib].qs + 16);
        float dw = fp16_scale(b[ib].d);
        for (int t = 0; t < KERN_NT; t++) {
            const int8_t *q = (const int8_t *)xq + t * xs;
            a[t] = scale_acc(a[t], dw, kern_xq_d(q, n)[ib], dot32(w0, w1, q + ib * QK));
        }
    }
    for (int t = 0; t < KERN_NT; t++) out[t] = vaddvq_f32(a[t]);
}

static void dotq_nt_q4_0(const void *row, const void *xq, size_t xs, size_t n, float *out) {
    const block_q4_0 *b = row;
    float32x4_t a[KERN_NT];
    for (int t = 0; t < KERN_NT; t++) a[t] = vdupq_n_f32(0.0f);
    for (size_t ib = 0; ib < n / QK; ib++) {
        int8x16_t lo, hi;
        unpack_q4(b[ib].qs, &lo, &hi);
        float dw = fp16_scale(b[ib].d);
        for (int t = 0; t < KERN_NT; t++) {
            const int8_t *q = (const int8_t *)xq + t * xs;
            a[t] = scale_acc(a[t], dw, kern_xq_d(q, n)[ib], dot32(lo, hi, q + ib * QK));
        }
    }
    for (int t = 0; t < KERN_NT; t++) out[t] = vaddvq_f32(a[t]);
}

/* The xq2 forms (kernels.h): per block one integer, 16 * (w . hi) + w . lo.
 * SDOT multiplies signed bytes, so Q4_0's 16 w (-128..112) chains with w into
 * one sum; Q8_0's full bytes take two sums, joined as 16 hi + lo. */
static inline int32x4_t isum2_q8_0(const block_q8_0 *b, const int8_t *q, size_t lo) {
    int8x16_t w0 = vld1q_s8(b->qs), w1 = vld1q_s8(b->qs + 16);
    return vaddq_s32(vshlq_n_s32(dot32(w0, w1, q), 4), dot32(w0, w1, q + lo));
}
static inline int32x4_t isum2_q4_0(const block_q4_0 *b, const int8_t *q, size_t lo) {
    int8x16_t w0, w1;
    unpack_q4(b->qs, &w0, &w1);
    int32x4_t s = vdotq_s32(vdupq_n_s32(0), vshlq_n_s8(w0, 4), vld1q_s8(q));
    s = vdotq_s32(s, vshlq_n_s8(w1, 4), vld1q_s8(q + 16));
    return vdotq_s32(vdotq_s32(s, w0, vld1q_s8(q + lo)), w1, vld1q_s8(q + lo + 16));
}

#define DEF_DOTQ2(T)                                                                                   \
    static float dotq2_##T(const void *row, const void *xq2, size_t n) {                               \
        const block_##T *b = row;                                                                      \
        const int8_t *q = xq2;                                                                         \
        size_t lo = kern_xq_bytes(n), nb = n / QK, ib = 0;                                             \
        const float *d = kern_xq_d(q + lo, n);                                                         \
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0;                                                   \
        for (; ib + 2 <= nb; ib += 2) {                                                                \
            a0 = scale_acc(a0, fp16_scale(b[ib].d), d[ib], isum2_##T(b + ib, q + ib * QK, lo));        \
            a1 = scale_acc(a1, fp16_scale(b[ib + 1].d), d[ib + 1], isum2_##T(b + ib + 1, q + ib * QK + QK, lo)); \
        }                                                                                              \
        if (ib < nb) a0 = scale_acc(a0, fp16_scale(b[ib].d), d[ib], isum2_##T(b + ib, q + ib * QK, lo)); \
        return vaddvq_f32(vaddq_f32(a0, a1));                                                          \
    }                                                                                                  \
    KERN_DEF_DOTQ_NT_BY_TOKEN(dotq2_nt_##T, dotq2_##T)
DEF_DOTQ2(q8_0)
DEF_DOTQ2(q4_0)

/* 16 signed bytes widened to f32, four vectors. */
static inline void s8_to_f32(int8x16_t v, float32x4_t f[4]) {
    int16x8_t lo = vmovl_s8(vget_low_s8(v)), hi = vmovl_s8(vget_high_s8(v));
    f[0] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo)));
    f[1] = vcvtq_f32_s32(vmovl_s16(vget_high_s16(lo)));
    f[2] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi)));
    f[3] = vcvtq_f32_s32(vmovl_s16(vget_high_s16(hi)));
}

/* Quantized weights against f32 activations (kern_dot; the matmul uses the
 * integer path): weights widened to f32 per block, scaled once per block. */
static inline float32x4_t block_dot_f32(int8x16_t w0, int8x16_t w1, const float *x) {
    float32x4_t f[4], g[4], s = vdupq_n_f32(0.0f);
    s8_to_f32(w0, f);
    s8_to_f32(w1, g);
    for (int k = 0; k < 4; k++) s = vfmaq_f32(s, f[k], vld1q_f32(x + 4 * k));
    for (int k = 0; k < 4; k++) s = vfmaq_f32(s, g[k], vld1q_f32(x + 16 + 4 * k));
    return s;
}

static float dot_q8_0(const void *row, const float *x, size_t n) {
    const block_q8_0 *b = row;
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (size_t ib = 0; ib < n / QK; ib++)
        acc = vfmaq_n_f32(acc, block_dot_f32(vld1q_s8(b[ib].qs), vld1q_s8(b[ib].qs + 16), x + ib * QK),
                          fp16_scale(b[ib].d));
    return vaddvq_f32(acc);
}

static float dot_q4_0(const void *row, const float *x, size_t n) {
    const block_q4_0 *b = row;
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (size_t ib = 0; ib < n / QK; ib++) {
        int8x16_t lo, hi;
        unpack_q4(b[ib].qs, &lo, &hi);
        acc = vfmaq_n_f32(acc, block_dot_f32(lo, hi, x + ib * QK), fp16_scale(b[ib].d));
    }
    return vaddvq_f32(acc);
}

/* ---- dequantization (bit-exact with the scalar reference) ------------- */

static void dequant_f32(const void *row, float *out, size_t n) { memcpy(out, row, n * sizeof(float)); }

static void dequant_f16(const void *row, float *out, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(out + i, load4_f16(row, i));
    for (; i < n; i++) out[i] = one_f16(row, i);
}

static void dequant_bf16(const void *row, float *out, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(out + i, load4_bf16(row, i));
    for (; i < n; i++) out[i] = one_bf16(row, i);
}

static inline void store_scaled(float *out, int8x16_t w0, int8x16_t w1, float d) {
    float32x4_t f[4];
    s8_to_f32(w0, f);
    for (int k = 0; k < 4; k++) vst1q_f32(out + 4 * k, vmulq_n_f32(f[k], d));
    s8_to_f32(w1, f);
    for (int k = 0; k < 4; k++) vst1q_f32(out + 16 + 4 * k, vmulq_n_f32(f[k], d));
}

static void dequant_q8_0(const void *row, float *out, size_t n) {
    const block_q8_0 *b = row;
    for (size_t ib = 0; ib < n / QK; ib++)
        store_scaled(out + ib * QK, vld1q_s8(b[ib].qs), vld1q_s8(b[ib].qs + 16), fp16_scale(b[ib].d));
}

static void dequant_q4_0(const void *row, float *out, size_t n) {
    const block_q4_0 *b = row;
    for (size_t ib = 0; ib < n / QK; ib++) {
        int8x16_t lo, hi;
        unpack_q4(b[ib].qs, &lo, &hi);
        store_scaled(out + ib * QK, lo, hi, fp16_scale(b[ib].d));
    }
}


static const kern_table g_neon = {
    .name = "neon",
    .dot = {[GGML_TYPE_F32] = dot_f32, [GGML_TYPE_F16] = dot_f16, [GGML_TYPE_BF16] = dot_bf16,
            [GGML_TYPE_Q8_0] = dot_q8_0, [GGML_TYPE_Q4_0] = dot_q4_0},
    .dequant = {[GGML_TYPE_F32] = dequant_f32, [GGML_TYPE_F16] = dequant_f16, [GGML_TYPE_BF16] = dequant_bf16,
                [GGML_TYPE_Q8_0] = dequant_q8_0, [GGML_TYPE_Q4_0] = dequant_q4_0},
    .dot_nt = {[GGML_TYPE_F32] = dot_nt_f32, [GGML_TYPE_F16] = dot_nt_f16, [GGML_TYPE_BF16] = dot_nt_bf16},
    .attend = attend,
    .quantize_x = quantize_x,
    .dotq = {[GGML_TYPE_Q8_0] = dotq_q8_0, [GGML_TYPE_Q4_0] = dotq_q4_0},
    .dotq_nt = {[GGML_TYPE_Q8_0] = dotq_nt_q8_0, [GGML_TYPE_Q4_0] = dotq_nt_q4_0},
    .dotq2 = {[GGML_TYPE_Q8_0] = dotq2_q8_0, [GGML_TYPE_Q4_0] = dotq2_q4_0},
    .dotq2_nt = {[GGML_TYPE_Q8_0] = dotq2_nt_q8_0, [GGML_TYPE_Q4_0] = dotq2_nt_q4_0},
};

const kern_table *kern_neon(void) { return &g_neon; }

#else
const kern_table *kern_neon(void) { return NULL; }
#endif
