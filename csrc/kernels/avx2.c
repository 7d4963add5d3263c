/* AVX2 + FMA + F16C kernels (Haswell, Zen and later). Only this file is
 * compiled with those flags (CMakeLists.txt), and dispatch.c hands out its
 * table only after probing the CPU, so the library still loads anywhere. */
#include "kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <string.h>

#include "attend.h"
#include "half.h"

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

static inline float hmax_ps(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}

/* A mask of the first k (0..8) lanes, read from a sliding window. */
static const int32_t g_ones_then_zeros[16] = {-1, -1, -1, -1, -1, -1, -1, -1};
static inline __m256i first_lanes(size_t k) {
    return _mm256_loadu_si256((const __m256i *)(g_ones_then_zeros + 8 - k));
}

/* ---- float weights ---------------------------------------------------- */

/* Eight weights from element i, widened to f32 (both conversions are exact). */
static inline __m256 load8_f32(const void *p, size_t i) { return _mm256_loadu_ps((const float *)p + i); }
static inline __m256 load8_f16(const void *p, size_t i) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
}
static inline __m256 load8_bf16(const void *p, size_t i) {
    __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
}

/* The last k < 8 weights, zero-padded. 16-bit loads have no AVX2 mask form,
 * so those go through a small copy. */
static inline __m256 tail8_f32(const void *p, size_t i, size_t k) {
    return _mm256_maskload_ps((const float *)p + i, first_lanes(k));
}
static inline __m256 tail8_f16(const void *p, size_t i, size_t k) {
    uint16_t t[8] = {0};
    memcpy(t, (const uint16_t *)p + i, k * sizeof t[0]);
    return load8_f16(t, 0);
}
static inline __m256 tail8_bf16(const void *p, size_t i, size_t k) {
    uint16_t t[8] = {0};
    memcpy(t, (const uint16_t *)p + i, k * sizeof t[0]);
    return load8_bf16(t, 0);
}

/* Four accumulators hide the FMA latency; any n (the tail is masked). */
#define DEF_DOT(T)                                                                                         \
    static float dot_##T(const void *row, const float *x, size_t n) {                                      \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                        \
        size_t i = 0;                                                                                      \
        for (; i + 32 <= n; i += 32) {                                                                     \
            a0 = _mm256_fmadd_ps(load8_##T(row, i), _mm256_loadu_ps(x + i), a0);                           \
            a1 = _mm256_fmadd_ps(load8_##T(row, i + 8), _mm256_loadu_ps(x + i + 8), a1);                   \
            a2 = _mm256_fmadd_ps(load8_##T(row, i + 16), _mm256_loadu_ps(x + i + 16), a2);                 \
            a3 = _mm256_fmadd_ps(load8_##T(row, i + 24), _mm256_loadu_ps(x + i + 24), a3);                 \
        }                                                                                                  \
        for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load8_##T(row, i), _mm256_loadu_ps(x + i), a0);    \
        if (i < n)                                                                                         \
            a1 = _mm256_fmadd_ps(tail8_##T(row, i, n - i), _mm256_maskload_ps(x + i, first_lanes(n - i)), a1); \
        return hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));                       \
    }
DEF_DOT(f32)
DEF_DOT(f16)
DEF_DOT(bf16)

/* One row against KERN_NT token vectors (prefill): each weight load and
 * conversion feeds four FMAs, and two accumulators per token keep eight FMA
 * chains in flight. */
#define DEF_DOT_NT(T)                                                                                    \
    static void dot_nt_##T(const void *row, const float *x, size_t xs, size_t n, float *out) {           \
        __m256 a[KERN_NT][2];                                                                            \
        for (int t = 0; t < KERN_NT; t++) a[t][0] = a[t][1] = _mm256_setzero_ps();                       \
        size_t i = 0;                                                                                    \
        for (; i + 16 <= n; i += 16) {                                                                   \
            __m256 w0 = load8_##T(row, i), w1 = load8_##T(row, i + 8);                                   \
            for (int t = 0; t < KERN_NT; t++) {                                                          \
                a[t][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + t * xs + i), a[t][0]);                 \
                a[t][1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + t * xs + i + 8), a[t][1]);             \
            }                                                                                            \
        }                                                                                                \
        if (i + 8 <= n) {                                                                                \
            __m256 w = load8_##T(row, i);                                                                \
            for (int t = 0; t < KERN_NT; t++) a[t][0] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + t * xs + i), a[t][0]); \
            i += 8;                                                                                      \
        }                                                                                                \
        if (i < n) {                                                                                     \
            __m256i m = first_lanes(n - i);                                                              \
            __m256 w = tail8_##T(row, i, n - i);                                                         \
            for (int t = 0; t < KERN_NT; t++)                                                            \
                a[t][1] = _mm256_fmadd_ps(w, _mm256_maskload_ps(x + t * xs + i, m), a[t][1]);            \
        }                                                                                                \
        for (int t = 0; t < KERN_NT; t++) out[t] = hsum_ps(_mm256_add_ps(a[t][0], a[t][1]));             \
    }
DEF_DOT_NT(f32)
DEF_DOT_NT(f16)
DEF_DOT_NT(bf16)

/* ---- quantized weights: integer dots against xq ----------------------- */

/* The scalar quantize_x, eight lanes at a time: the same f32 operations,
 * and cvtps2dq rounds to nearest even like lrintf, so the bytes match. */
static void quantize_x(const float *x, void *xq, size_t n) {
    int8_t *q = xq;
    int32_t *c = (int32_t *)((uint8_t *)xq + kern_xq_c_offset(n));
    float *d = (float *)((uint8_t *)xq + kern_xq_d_offset(n));
    const __m256 sign = _mm256_set1_ps(-0.0f);
    /* packs below interleave 4-byte groups across the two 128-bit lanes; this undoes it. */
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (size_t ib = 0; ib < n / QK; ib++, x += QK) {
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        float amax = hmax_ps(m);
        __m256 id = _mm256_set1_ps(amax > KERN_XQ_TINY ? 127.0f / amax : 0.0f);
        __m256i q0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, id)), q1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, id));
        __m256i q2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, id)), q3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, id));
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3));
        p = _mm256_permutevar8x32_epi32(p, order);
        _mm256_storeu_si256((__m256i *)(q + ib * QK), p);
        /* c: 8 * (pair sums), then -(sum of two pairs); all small integers. */
        __m256i pairs = _mm256_maddubs_epi16(_mm256_set1_epi8(8), p);
        _mm256_storeu_si256((__m256i *)(c + ib * 8), _mm256_madd_epi16(pairs, _mm256_set1_epi16(-1)));
        d[ib] = amax / 127.0f;
    }
}

/* The scalar quantize_lo (scalar.c), eight lanes at a time: the same f32
 * product, then difference (no fma), cvtps2dq's rounding and the clamp. */
static void quantize_lo(const float *x, void *xq2, size_t n) {
    kern_xq2_rows r = kern_xq2_rows_of(xq2, n);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (size_t ib = 0; ib < n / QK; ib++) {
        float step = kern_xq_lo_step(r.d[ib]), inv = step > 0.0f ? 1.0f / step : 0.0f;
        __m256 vd = _mm256_set1_ps(r.d[ib]), vi = _mm256_set1_ps(inv);
        __m256i v[4];
        for (int k = 0; k < 4; k++) {
            size_t i = ib * QK + 8 * (size_t)k;
            __m256i qi = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(r.q + i)));
            __m256 qd = _mm256_mul_ps(_mm256_cvtepi32_ps(qi), vd);
            v[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), qd), vi));
        }
        /* The saturating packs keep values in [-8, 8] as they are; the clamp acts on bytes. */
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
        p = _mm256_permutevar8x32_epi32(p, order);
        p = _mm256_max_epi8(_mm256_min_epi8(p, _mm256_set1_epi8(8)), _mm256_set1_epi8(-8));
        _mm256_storeu_si256((__m256i *)(r.lo + ib * QK), p);
        __m256i pairs = _mm256_maddubs_epi16(_mm256_set1_epi8(8), p);
        _mm256_storeu_si256((__m256i *)(r.c + ib * 8), _mm256_madd_epi16(pairs, _mm256_set1_epi16(-1)));
        r.d_lo[ib] = step;
    }
}

static inline __m256i load32(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* Signed x signed bytes, summed into 8 int32 lanes. maddubs multiplies
 * unsigned by signed, so w's sign moves onto x: |w| <= 128 (0x80 reads as
 * 128 unsigned) and |x| <= 127, so no pair sum (<= 32512) saturates. */
static inline __m256i dot_s8(__m256i w, __m256i x) {
    __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

/* The 32 nibbles (0..15) of a Q4_0 block in element order. */
static inline __m256i nibbles_q4(const uint8_t *qs) {
    __m128i v = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
}

/* The same as signed weights -8..7. */
static inline __m256i unpack_q4(const uint8_t *qs) { return _mm256_sub_epi8(nibbles_q4(qs), _mm256_set1_epi8(8)); }

/* sum((nib - 8) * x) per 4-byte lane: the unsigned nibbles go straight into
 * maddubs (pair sums <= 3810, no saturation), and c takes the +8 off. */
static inline __m256i dot_q4(__m256i nib, __m256i x, const int32_t *c) {
    __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(nib, x), _mm256_set1_epi16(1));
    return _mm256_add_epi32(p, load32(c));
}

/* acc += (weight scale * x scale) * block's integer lane sums. */
static inline __m256 scale_acc(__m256 acc, float dw, float dx, __m256i isum) {
    return _mm256_fmadd_ps(_mm256_set1_ps(dw * dx), _mm256_cvtepi32_ps(isum), acc);
}

/* Integer lane sums of block i: Q8_0 signed x signed, Q4_0 nibbles plus c.
 * (lo: the xq2 lo row's offset from hi, unused by the 8-bit forms.) */
static inline __m256i isum_q8(const block_q8_0 *b, const int8_t *q, const int32_t *c, size_t lo) {
    (void)c, (void)lo;
    return dot_s8(load32(b->qs), load32(q));
}
static inline __m256i isum_q4(const block_q4_0 *b, const int8_t *q, const int32_t *c, size_t lo) {
    (void)lo;
    return dot_q4(nibbles_q4(b->qs), load32(q), c);
}
/* The xq2 forms (kernels.h), 16 * (w . hi) + w . lo per lane. maddubs sums
 * pairs in int16, where 16 * nibble * q could saturate, so the 16 is
 * applied by madd on the way to int32. */
static inline __m256i isum2_q8(const block_q8_0 *b, const int8_t *q, const int32_t *c, size_t lo) {
    (void)c;
    __m256i w = load32(b->qs);
    return _mm256_add_epi32(_mm256_slli_epi32(dot_s8(w, load32(q)), 4), dot_s8(w, load32(q + lo)));
}
static inline __m256i isum2_q4(const block_q4_0 *b, const int8_t *q, const int32_t *c, size_t lo) {
    const int32_t *c_lo = (const int32_t *)((const uint8_t *)c + lo);
    __m256i nib = nibbles_q4(b->qs);
    __m256i hi = _mm256_madd_epi16(_mm256_maddubs_epi16(nib, load32(q)), _mm256_set1_epi16(16));
    __m256i l = _mm256_madd_epi16(_mm256_maddubs_epi16(nib, load32(q + lo)), _mm256_set1_epi16(1));
    __m256i start = _mm256_add_epi32(_mm256_slli_epi32(load32(c), 4), load32(c_lo));
    return _mm256_add_epi32(_mm256_add_epi32(hi, l), start);
}

/* Four weight scales times four x scales, converted and multiplied once;
 * each block then takes its lane of the product. */
static inline __m128 quad_scales(uint16_t h0, uint16_t h1, uint16_t h2, uint16_t h3, const float *dx) {
    __m128i h = _mm_insert_epi16(_mm_insert_epi16(_mm_insert_epi16(_mm_cvtsi32_si128(h0), h1, 1), h2, 2), h3, 3);
    return _mm_mul_ps(_mm_cvtph_ps(h), _mm_loadu_ps(dx));
}
static inline __m256 lane_of(__m128 s, int k) {
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(s), _mm256_set1_epi32(k));
}

/* Four blocks per iteration into two accumulators, then single blocks. X2:
 * the xq2 form (lo's scales, lo at kern_xq_bytes(n) from hi). */
#define DEF_DOTQ(NAME, T, ISUM, X2)                                                                          \
    static float NAME(const void *row, const void *xq, size_t n) {                                           \
        const block_##T *b = row;                                                                            \
        const int8_t *q = xq;                                                                                \
        const int32_t *c = kern_xq_c(xq, n);                                                                 \
        size_t lo = kern_xq_bytes(n);                                                                        \
        const float *d = kern_xq_d((const uint8_t *)xq + (X2 ? lo : 0), n);                                  \
        size_t nb = n / QK, ib = 0;                                                                          \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;                                                            \
        for (; ib + 4 <= nb; ib += 4) {                                                                      \
            __m128 sc = quad_scales(b[ib].d, b[ib + 1].d, b[ib + 2].d, b[ib + 3].d, d + ib);                 \
            for (int k = 0; k < 4; k += 2) {                                                                 \
                __m256i s0 = ISUM(b + ib + k, q + (ib + k) * QK, c + (ib + k) * 8, lo);                      \
                __m256i s1 = ISUM(b + ib + k + 1, q + (ib + k + 1) * QK, c + (ib + k + 1) * 8, lo);          \
                a0 = _mm256_fmadd_ps(lane_of(sc, k), _mm256_cvtepi32_ps(s0), a0);                            \
                a1 = _mm256_fmadd_ps(lane_of(sc, k + 1), _mm256_cvtepi32_ps(s1), a1);                        \
            }                                                                                                \
        }                                                                                                    \
        for (; ib < nb; ib++)                                                                                \
            a0 = scale_acc(a0, _cvtsh_ss(b[ib].d), d[ib], ISUM(b + ib, q + ib * QK, c + ib * 8, lo));        \
        return hsum_ps(_mm256_add_ps(a0, a1));                                                               \
    }
DEF_DOTQ(dotq_q8_0, q8_0, isum_q8, 0)
DEF_DOTQ(dotq_q4_0, q4_0, isum_q4, 0)
DEF_DOTQ(dotq2_q8_0, q8_0, isum2_q8, 1)
DEF_DOTQ(dotq2_q4_0, q4_0, isum2_q4, 1)

/* The KERN_NT-token forms load (and unpack) each weight block once. */
typedef struct {
    const int8_t *q[KERN_NT];
    const int32_t *c[KERN_NT];
    const float *d[KERN_NT];
} xq_rows;

static inline xq_rows xq_split(const void *xq, size_t xs, size_t n) {
    xq_rows r;
    for (int t = 0; t < KERN_NT; t++) {
        const uint8_t *p = (const uint8_t *)xq + t * xs;
        r.q[t] = (const int8_t *)p, r.c[t] = kern_xq_c(p, n), r.d[t] = kern_xq_d(p, n);
    }
    return r;
}

static void dotq_nt_q8_0(const void *row, const void *xq, size_t xs, size_t n, float *out) {
    const block_q8_0 *b = row;
    xq_rows x = xq_split(xq, xs, n);
    __m256 a[KERN_NT];
    for (int t = 0; t < KERN_NT; t++) a[t] = _mm256_setzero_ps();
    for (size_t ib = 0; ib < n / QK; ib++) {
        __m256i w = load32(b[ib].qs), aw = _mm256_sign_epi8(w, w);
        float dw = _cvtsh_ss(b[ib].d);
        for (int t = 0; t < KERN_NT; t++) {
            __m256i p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(load32(x.q[t] + ib * QK), w));
            a[t] = scale_acc(a[t], dw, x.d[t][ib], _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
        }
    }
    for (int t = 0; t < KERN_NT; t++) out[t] = hsum_ps(a[t]);
}

static void dotq_nt_q4_0(const void *row, const void *xq, size_t xs, size_t n, float *out) {
    const block_q4_0 *b = row;
    xq_rows x = xq_split(xq, xs, n);
    __m256 a[KERN_NT];
    for (int t = 0; t < KERN_NT; t++) a[t] = _mm256_setzero_ps();
    for (size_t ib = 0; ib < n / QK; ib++) {
        __m256i w = nibbles_q4(b[ib].qs);
        float dw = _cvtsh_ss(b[ib].d);
        for (int t = 0; t < KERN_NT; t++)
            a[t] = scale_acc(a[t], dw, x.d[t][ib], dot_q4(w, load32(x.q[t] + ib * QK), x.c[t] + ib * 8));
    }
    for (int t = 0; t < KERN_NT; t++) out[t] = hsum_ps(a[t]);
}

/* Quantized weights against f32 activations (kern_dot; the matmul uses the
 * integer path): 32 weights widened to f32 per block, scaled once per block. */
static inline __m256 s8_to_ps(__m128i q8) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8)); }

static inline __m256 block_dot_f32(__m256i q, const float *x) {
    __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    __m256 s0 = _mm256_mul_ps(s8_to_ps(lo), _mm256_loadu_ps(x));
    __m256 s1 = _mm256_mul_ps(s8_to_ps(_mm_srli_si128(lo, 8)), _mm256_loadu_ps(x + 8));
    s0 = _mm256_fmadd_ps(s8_to_ps(hi), _mm256_loadu_ps(x + 16), s0);
    s1 = _mm256_fmadd_ps(s8_to_ps(_mm_srli_si128(hi, 8)), _mm256_loadu_ps(x + 24), s1);
    return _mm256_add_ps(s0, s1);
}

static float dot_q8_0(const void *row, const float *x, size_t n) {
    const block_q8_0 *b = row;
    __m256 acc = _mm256_setzero_ps();
    for (size_t ib = 0; ib < n / QK; ib++)
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[ib].d)), block_dot_f32(load32(b[ib].qs), x + ib * QK), acc);
    return hsum_ps(acc);
}

static float dot_q4_0(const void *row, const float *x, size_t n) {
    const block_q4_0 *b = row;
    __m256 acc = _mm256_setzero_ps();
    for (size_t ib = 0; ib < n / QK; ib++) {
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[ib].d)), block_dot_f32(unpack_q4(b[ib].qs), x + ib * QK), acc);
    }
    return hsum_ps(acc);
}

/* ---- dequantization (bit-exact with the scalar reference) ------------- */

static void dequant_f32(const void *row, float *out, size_t n) { memcpy(out, row, n * sizeof(float)); }

static void dequant_f16(const void *row, float *out, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, load8_f16(row, i));
    for (; i < n; i++) out[i] = fp16_to_f32(((const uint16_t *)row)[i]);
}

static void dequant_bf16(const void *row, float *out, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, load8_bf16(row, i));
    for (; i < n; i++) out[i] = bf16_to_f32(((const uint16_t *)row)[i]);
}

/* 32 signed bytes times d into out[0..32). */
static inline void store_scaled_s8(float *out, __m256i q, float d) {
    __m256 vd = _mm256_set1_ps(d);
    __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    _mm256_storeu_ps(out, _mm256_mul_ps(s8_to_ps(lo), vd));
    _mm256_storeu_ps(out + 8, _mm256_mul_ps(s8_to_ps(_mm_srli_si128(lo, 8)), vd));
    _mm256_storeu_ps(out + 16, _mm256_mul_ps(s8_to_ps(hi), vd));
    _mm256_storeu_ps(out + 24, _mm256_mul_ps(s8_to_ps(_mm_srli_si128(hi, 8)), vd));
}

static void dequant_q8_0(const void *row, float *out, size_t n) {
    const block_q8_0 *b = row;
    for (size_t ib = 0; ib < n / QK; ib++) store_scaled_s8(out + ib * QK, load32(b[ib].qs), _cvtsh_ss(b[ib].d));
}

static void dequant_q4_0(const void *row, float *out, size_t n) {
    const block_q4_0 *b = row;
    for (size_t ib = 0; ib < n / QK; ib++)
        store_scaled_s8(out + ib * QK, unpack_q4(b[ib].qs), _cvtsh_ss(b[ib].d));
}

/* The xq2 KERN_NT forms: a token at a time (the weights stay in L1 between them). */
KERN_DEF_DOTQ_NT_BY_TOKEN(dotq2_nt_q8_0, dotq2_q8_0)
KERN_DEF_DOTQ_NT_BY_TOKEN(dotq2_nt_q4_0, dotq2_q4_0)

static const kern_table g_avx2 = {
    .name = "avx2",
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

const kern_table *kern_avx2(void) { return &g_avx2; }

#else
const kern_table *kern_avx2(void) { return NULL; }
#endif
