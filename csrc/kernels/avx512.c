/* AVX-512 (F, BW, VL) + VNNI kernels (Ice Lake, Sapphire Rapids, Zen 4 and
 * later). Float dots use 16-lane FMAs with masked tails; quantized dots use
 * vpdpbusd, which multiplies unsigned by signed bytes and adds groups of
 * four into int32 lanes in one instruction (AVX2 needs maddubs + madd)
 * and cannot saturate.
 * Only this file is compiled with these flags; dispatch.c probes first.
 *
 * Quantized dots take the weights' bytes as vpdpbusd's unsigned operand
 * (Q4_0 nibbles as they are, Q8_0 plus 128) and start each lane at the
 * matching correction from xq (kernels.h), so no per-byte sign fix-ups.
 *
 * Not used on purpose: vdpbf16ps (AVX512_BF16) would round the f32
 * activations to bf16, a different and less exact product than the
 * reference; converting bf16 weights to f32 is a shift and exact. */
#include "kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "half.h"

static inline __mmask16 first_lanes(size_t k) { return (__mmask16)((1u << k) - 1u); } /* k < 16 */

static inline float hsum256_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* ---- float weights ---------------------------------------------------- */

/* Sixteen weights from element i widened to f32 (exactly); the masked forms
 * read only the first lanes of m and zero the rest. */
static inline __m512 load16_f32(const void *p, size_t i) { return _mm512_loadu_ps((const float *)p + i); }
static inline __m512 load16_f16(const void *p, size_t i) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i)));
}
static inline __m512 widen_bf16(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
static inline __m512 load16_bf16(const void *p, size_t i) {
    return widen_bf16(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i)));
}
static inline __m512 mask16_f32(const void *p, size_t i, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, (const float *)p + i);
}
static inline __m512 mask16_f16(const void *p, size_t i, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i));
}
static inline __m512 mask16_bf16(const void *p, size_t i, __mmask16 m) {
    return widen_bf16(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i));
}

/* Four accumulators hide the FMA latency; any n (the tail is masked). */
#define DEF_DOT(T)                                                                                          \
    static float dot_##T(const void *row, const float *x, size_t n) {                                       \
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                         \
        size_t i = 0;                                                                                       \
        for (; i + 64 <= n; i += 64) {                                                                      \
            a0 = _mm512_fmadd_ps(load16_##T(row, i), _mm512_loadu_ps(x + i), a0);                           \
            a1 = _mm512_fmadd_ps(load16_##T(row, i + 16), _mm512_loadu_ps(x + i + 16), a1);                 \
            a2 = _mm512_fmadd_ps(load16_##T(row, i + 32), _mm512_loadu_ps(x + i + 32), a2);                 \
            a3 = _mm512_fmadd_ps(load16_##T(row, i + 48), _mm512_loadu_ps(x + i + 48), a3);                 \
        }                                                                                                   \
        for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(load16_##T(row, i), _mm512_loadu_ps(x + i), a0); \
        if (i < n) {                                                                                        \
            __mmask16 m = first_lanes(n - i);                                                               \
            a1 = _mm512_fmadd_ps(mask16_##T(row, i, m), _mm512_maskz_loadu_ps(m, x + i), a1);               \
        }                                                                                                   \
        return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));          \
    }
DEF_DOT(f32)
DEF_DOT(f16)
DEF_DOT(bf16)

/* One row against KERN_NT token vectors (prefill): each weight load and
 * conversion feeds four FMAs, and two accumulators per token keep eight FMA
 * chains in flight. */
#define DEF_DOT_NT(T)                                                                                    \
    static void dot_nt_##T(const void *row, const float *x, size_t xs, size_t n, float *out) {           \
        __m512 a[KERN_NT][2];                                                                            \
        for (int t = 0; t < KERN_NT; t++) a[t][0] = a[t][1] = _mm512_setzero_ps();                       \
        size_t i = 0;                                                                                    \
        for (; i + 32 <= n; i += 32) {                                                                   \
            __m512 w0 = load16_##T(row, i), w1 = load16_##T(row, i + 16);                                \
            for (int t = 0; t < KERN_NT; t++) {                                                          \
                a[t][0] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + t * xs + i), a[t][0]);                 \
                a[t][1] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + t * xs + i + 16), a[t][1]);            \
            }                                                                                            \
        }                                                                                                \
        if (i + 16 <= n) {                                                                               \
            __m512 w = load16_##T(row, i);                                                               \
            for (int t = 0; t < KERN_NT; t++) a[t][0] = _mm512_fmadd_ps(w, _mm512_loadu_ps(x + t * xs + i), a[t][0]); \
            i += 16;                                                                                     \
        }                                                                                                \
        if (i < n) {                                                                                     \
            __mmask16 m = first_lanes(n - i);                                                            \
            __m512 w = mask16_##T(row, i, m);                                                            \
            for (int t = 0; t < KERN_NT; t++)                                                            \
                a[t][1] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m, x + t * xs + i), a[t][1]);         \
        }                                                                                                \
        for (int t = 0; t < KERN_NT; t++) out[t] = _mm512_reduce_add_ps(_mm512_add_ps(a[t][0], a[t][1])); \
    }
DEF_DOT_NT(f32)
DEF_DOT_NT(f16)
DEF_DOT_NT(bf16)

/* ---- attention -------------------------------------------------------- */

/* e^x for x <= 0 (softmax scores less their max): x = n ln2 + r with
 * |r| <= ln2 / 2 (ln2 split in two so that n ln2 is exact), e^r by its
 * degree-6 Taylor polynomial (the remainder is below 1.2e-7 there), times
 * 2^n by vscalefps. Below -87.3, e^x is a denormal or 0 in f32 anyway. */
static inline __m512 exp_neg(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860682030941723e-6f), r);
    static const float c[] = {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f};
    __m512 p = _mm512_set1_ps(c[0]);
    for (int i = 1; i < 7; i++) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c[i]));
    return _mm512_scalef_ps(p, n);
}

/* The lanes of 16-float chunk c of nc, the last one `tail`. */
static inline __mmask16 chunk_mask(int c, int nc, __mmask16 tail) {
    return c < nc - 1 ? 0xFFFF : c == nc - 1 ? tail : 0;
}

/* kern_attend_fn: the scores one FMA chain per key, the softmax sixteen keys
 * a vector (unnormalized; the output is scaled by 1 / sum at the end), the
 * values 64 dimensions at a time in registers across all keys. */
static void attend(const float *q, const float *k, const float *v, size_t kv_stride, int hd, int n_keys, float scale,
                   float softcap, float *scores, float *out) {
    int nc = (hd + 15) / 16;
    __mmask16 tail = hd % 16 ? first_lanes((size_t)(hd % 16)) : 0xFFFF;
    float mx = -INFINITY;
    for (int p = 0; p < n_keys; p++) {
        const float *kr = k + (size_t)p * kv_stride;
        __m512 acc = _mm512_setzero_ps();
        for (int c = 0; c < nc; c++) {
            __mmask16 m = chunk_mask(c, nc, tail);
            acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + 16 * c), _mm512_maskz_loadu_ps(m, kr + 16 * c), acc);
        }
        float s = _mm512_reduce_add_ps(acc) * scale;
        if (softcap > 0.0f) s = softcap * tanhf(s / softcap);
        scores[p] = s;
        mx = s > mx ? s : mx;
    }
    __m512 vmx = _mm512_set1_ps(mx), vsum = _mm512_setzero_ps();
    for (int p = 0; p < n_keys; p += 16) {
        __mmask16 m = n_keys - p >= 16 ? 0xFFFF : first_lanes((size_t)(n_keys - p));
        __m512 e = _mm512_maskz_mov_ps(m, exp_neg(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, scores + p), vmx)));
        _mm512_mask_storeu_ps(scores + p, m, e);
        vsum = _mm512_add_ps(vsum, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
    for (int c0 = 0; c0 < nc; c0 += 4) {
        int cn = nc - c0 < 4 ? nc - c0 : 4; /* only the head's own chunks are loaded */
        __mmask16 m[4];
        for (int j = 0; j < 4; j++) m[j] = chunk_mask(c0 + j, nc, tail);
        __m512 o0 = _mm512_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
        for (int p = 0; p < n_keys; p++) {
            const float *vr = v + (size_t)p * kv_stride + 16 * c0;
            __m512 a = _mm512_set1_ps(scores[p]);
            o0 = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(m[0], vr), o0);
            if (cn > 1) o1 = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(m[1], vr + 16), o1);
            if (cn > 2) o2 = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(m[2], vr + 32), o2);
            if (cn > 3) o3 = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(m[3], vr + 48), o3);
        }
        __m512 o[4] = {o0, o1, o2, o3};
        for (int j = 0; j < cn; j++) _mm512_mask_storeu_ps(out + 16 * (c0 + j), m[j], _mm512_mul_ps(o[j], inv));
    }
}

/* ---- quantized weights: integer dots against xq ----------------------- */

/* The scalar quantize_x, sixteen lanes at a time: the same f32 operations,
 * and cvtps2dq rounds to nearest even like lrintf, so the bytes match. */
static void quantize_x(const float *x, void *xq, size_t n) {
    int8_t *q = xq;
    int32_t *c = (int32_t *)((uint8_t *)xq + kern_xq_c_offset(n));
    float *d = (float *)((uint8_t *)xq + kern_xq_d_offset(n));
    for (size_t ib = 0; ib < n / QK; ib++, x += QK) {
        __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        __m512 id = _mm512_set1_ps(amax > KERN_XQ_TINY ? 127.0f / amax : 0.0f);
        __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, id)), q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, id));
        __m256i p = _mm256_set_m128i(_mm512_cvtepi32_epi8(q1), _mm512_cvtepi32_epi8(q0));
        _mm256_storeu_si256((__m256i *)(q + ib * QK), p);
        __m256i sum4 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), p); /* 8 * sum of 4 */
        _mm256_storeu_si256((__m256i *)(c + ib * 8), _mm256_sub_epi32(_mm256_setzero_si256(), sum4));
        d[ib] = amax / 127.0f;
    }
}

/* The scalar quantize_lo (scalar.c), sixteen lanes at a time: the same f32
 * product, then difference (no fma), cvtps2dq's rounding and the clamp. */
static void quantize_lo(const float *x, void *xq2, size_t n) {
    kern_xq2_rows r = kern_xq2_rows_of(xq2, n);
    const __m512i hi = _mm512_set1_epi32(8), low = _mm512_set1_epi32(-8);
    for (size_t ib = 0; ib < n / QK; ib++) {
        float step = kern_xq_lo_step(r.d[ib]), inv = step > 0.0f ? 1.0f / step : 0.0f;
        __m512 vd = _mm512_set1_ps(r.d[ib]), vi = _mm512_set1_ps(inv);
        __m128i b[2];
        for (int h = 0; h < 2; h++) {
            size_t i = ib * QK + 16 * (size_t)h;
            __m512i qi = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(r.q + i)));
            __m512 qd = _mm512_mul_ps(_mm512_cvtepi32_ps(qi), vd);
            __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), qd), vi));
            b[h] = _mm512_cvtepi32_epi8(_mm512_max_epi32(_mm512_min_epi32(v, hi), low));
        }
        __m256i p = _mm256_set_m128i(b[1], b[0]);
        _mm256_storeu_si256((__m256i *)(r.lo + ib * QK), p);
        __m256i sum4 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), p);
        _mm256_storeu_si256((__m256i *)(r.c + ib * 8), _mm256_sub_epi32(_mm256_setzero_si256(), sum4));
        r.d_lo[ib] = step;
    }
}

/* Decode is a stream of weight blocks through few instructions each, so
 * the main loops take two blocks per 512-bit vector: 64 quants of x are
 * contiguous in xq, and so are the 16 lanes of c for them. */

static inline __m256i load32(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline __m512i load64(const void *p) { return _mm512_loadu_si512(p); }

/* Two Q4_0 blocks' nibbles (0..15) in element order: [b0 lo | b0 hi | b1 lo | b1 hi]. */
static inline __m512i nibbles_q4_pair(const block_q4_0 *b) {
    __m256i v0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)b[0].qs));
    __m256i v1 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)b[1].qs));
    __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(v0), v1, 1);
    /* Shift each block's second copy right by 4 (16-bit lanes: the mask drops what crosses bytes). */
    const long long h = 0x0004000400040004ll;
    return _mm512_and_si512(_mm512_srlv_epi16(v, _mm512_set_epi64(h, h, 0, 0, h, h, 0, 0)), _mm512_set1_epi8(0x0F));
}

/* Two Q8_0 blocks' weights plus 128, as unsigned bytes (vpdpbusd's unsigned side). */
static inline __m512i biased_q8_pair(const block_q8_0 *b) {
    __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(load32(b[0].qs)), load32(b[1].qs), 1);
    return _mm512_xor_si512(w, _mm512_set1_epi8((char)0x80));
}

/* Lane sums of two blocks. Q4_0: nibbles times x, each lane starting at c
 * (its -8 * sum of x). Q8_0: (w + 128) times x, starting at 16 * c.
 * (lo: the xq2 lo row's offset from hi, unused by the 8-bit forms.) */
static inline __m512i isum_q4_pair(__m512i nib, const int8_t *q, const int32_t *c, size_t lo) {
    (void)lo;
    return _mm512_dpbusd_epi32(load64(c), nib, load64(q));
}
static inline __m512i isum_q8_pair(__m512i wb, const int8_t *q, const int32_t *c, size_t lo) {
    (void)lo;
    return _mm512_dpbusd_epi32(_mm512_slli_epi32(load64(c), 4), wb, load64(q));
}
/* The xq2 forms (kernels.h), one integer per lane: 16 * (w . hi) + w . lo.
 * Q4_0: 16 * nibble still fits vpdpbusd's unsigned byte, so both products
 * add into one chain, started at 16 c_hi + c_lo. Q8_0's biased bytes use all
 * 8 bits: two chains, joined as 16 hi + lo. */
static inline __m512i isum2_q4_pair(__m512i nib, const int8_t *q, const int32_t *c, size_t lo) {
    const int32_t *c_lo = (const int32_t *)((const uint8_t *)c + lo);
    __m512i start = _mm512_add_epi32(_mm512_slli_epi32(load64(c), 4), load64(c_lo));
    __m512i s = _mm512_dpbusd_epi32(start, _mm512_slli_epi16(nib, 4), load64(q)); /* nibbles < 16: no carry */
    return _mm512_dpbusd_epi32(s, nib, load64(q + lo));
}
static inline __m512i isum2_q8_pair(__m512i wb, const int8_t *q, const int32_t *c, size_t lo) {
    const int32_t *c_lo = (const int32_t *)((const uint8_t *)c + lo);
    __m512i hi = _mm512_dpbusd_epi32(_mm512_slli_epi32(load64(c), 4), wb, load64(q));
    __m512i l = _mm512_dpbusd_epi32(_mm512_slli_epi32(load64(c_lo), 4), wb, load64(q + lo));
    return _mm512_add_epi32(_mm512_slli_epi32(hi, 4), l);
}

/* The two weight scales of a block pair, as f32 [dw0, dw1, 0, 0]. */
static inline __m128 pair_dw(uint16_t h0, uint16_t h1) {
    return _mm_cvtph_ps(_mm_insert_epi16(_mm_cvtsi32_si128(h0), h1, 1));
}

/* The four weight scales of four blocks. */
static inline __m128 quad_dw(uint16_t h0, uint16_t h1, uint16_t h2, uint16_t h3) {
    __m128i h = _mm_insert_epi16(_mm_insert_epi16(_mm_insert_epi16(_mm_cvtsi32_si128(h0), h1, 1), h2, 2), h3, 3);
    return _mm_cvtph_ps(h);
}

/* Block scales s = [s0, s1, s2, s3] spread over lanes: [s_k (8 lanes) | s_k+1 (8 lanes)]. */
static inline __m512 spread_scales(__m128 s, int k) {
    __m512i idx = _mm512_set_epi32(k + 1, k + 1, k + 1, k + 1, k + 1, k + 1, k + 1, k + 1, k, k, k, k, k, k, k, k);
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(s));
}

/* [dw0 * dx0 (8 lanes) | dw1 * dx1 (8 lanes)]: each block's scale over its lanes. */
static inline __m512 pair_scales(__m128 dw, const float *dx) {
    return spread_scales(_mm_mul_ps(dw, _mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)dx))), 0);
}

/* A lone last block (odd block count), 256 bits wide; the same forms. */
static inline __m256i nibbles_q4(const block_q4_0 *b) {
    __m128i v = _mm_loadu_si128((const __m128i *)b->qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
}
static inline __m256i biased_q8(const block_q8_0 *b) {
    return _mm256_xor_si256(load32(b->qs), _mm256_set1_epi8((char)0x80));
}
static inline float last_sum(uint16_t dw, float dx, __m256i s) {
    return hsum256_ps(_mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(dw) * dx), _mm256_cvtepi32_ps(s)));
}
static inline float last_q4(const block_q4_0 *b, const int8_t *q, const int32_t *c, float dx, size_t lo) {
    (void)lo;
    return last_sum(b->d, dx, _mm256_dpbusd_epi32(load32(c), nibbles_q4(b), load32(q)));
}
static inline float last_q8(const block_q8_0 *b, const int8_t *q, const int32_t *c, float dx, size_t lo) {
    (void)lo;
    return last_sum(b->d, dx, _mm256_dpbusd_epi32(_mm256_slli_epi32(load32(c), 4), biased_q8(b), load32(q)));
}
static inline float last2_q4(const block_q4_0 *b, const int8_t *q, const int32_t *c, float dx, size_t lo) {
    const int32_t *c_lo = (const int32_t *)((const uint8_t *)c + lo);
    __m256i nib = nibbles_q4(b);
    __m256i s = _mm256_add_epi32(_mm256_slli_epi32(load32(c), 4), load32(c_lo));
    s = _mm256_dpbusd_epi32(s, _mm256_slli_epi16(nib, 4), load32(q));
    return last_sum(b->d, dx, _mm256_dpbusd_epi32(s, nib, load32(q + lo)));
}
static inline float last2_q8(const block_q8_0 *b, const int8_t *q, const int32_t *c, float dx, size_t lo) {
    const int32_t *c_lo = (const int32_t *)((const uint8_t *)c + lo);
    __m256i wb = biased_q8(b);
    __m256i hi = _mm256_dpbusd_epi32(_mm256_slli_epi32(load32(c), 4), wb, load32(q));
    __m256i l = _mm256_dpbusd_epi32(_mm256_slli_epi32(load32(c_lo), 4), wb, load32(q + lo));
    return last_sum(b->d, dx, _mm256_add_epi32(_mm256_slli_epi32(hi, 4), l));
}

/* Four blocks per iteration into two accumulators, then a pair, then a lone
 * block. X2: the xq2 form (lo's scales, lo at kern_xq_bytes(n) from hi). */
#define DEF_DOTQ(NAME, T, PREP, ISUM, LAST, X2)                                                               \
    static float NAME(const void *row, const void *xq, size_t n) {                                            \
        const block_##T *b = row;                                                                             \
        const int8_t *q = xq;                                                                                 \
        const int32_t *c = kern_xq_c(xq, n);                                                                  \
        size_t lo = kern_xq_bytes(n);                                                                         \
        const float *d = kern_xq_d((const uint8_t *)xq + (X2 ? lo : 0), n);                                   \
        size_t nb = n / QK, ib = 0;                                                                           \
        __m512 a0 = _mm512_setzero_ps(), a1 = a0;                                                             \
        for (; ib + 4 <= nb; ib += 4) {                                                                       \
            __m512i s0 = ISUM(PREP(b + ib), q + ib * QK, c + ib * 8, lo);                                     \
            __m512i s1 = ISUM(PREP(b + ib + 2), q + ib * QK + 2 * QK, c + ib * 8 + 16, lo);                   \
            __m128 sc = _mm_mul_ps(quad_dw(b[ib].d, b[ib + 1].d, b[ib + 2].d, b[ib + 3].d), _mm_loadu_ps(d + ib)); \
            a0 = _mm512_fmadd_ps(spread_scales(sc, 0), _mm512_cvtepi32_ps(s0), a0);                           \
            a1 = _mm512_fmadd_ps(spread_scales(sc, 2), _mm512_cvtepi32_ps(s1), a1);                           \
        }                                                                                                     \
        if (ib + 2 <= nb) {                                                                                   \
            __m512i s0 = ISUM(PREP(b + ib), q + ib * QK, c + ib * 8, lo);                                     \
            a0 = _mm512_fmadd_ps(pair_scales(pair_dw(b[ib].d, b[ib + 1].d), d + ib), _mm512_cvtepi32_ps(s0), a0); \
            ib += 2;                                                                                          \
        }                                                                                                     \
        float s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));                                                \
        return ib < nb ? s + LAST(b + ib, q + ib * QK, c + ib * 8, d[ib], lo) : s;                            \
    }
DEF_DOTQ(dotq_q4_0, q4_0, nibbles_q4_pair, isum_q4_pair, last_q4, 0)
DEF_DOTQ(dotq_q8_0, q8_0, biased_q8_pair, isum_q8_pair, last_q8, 0)
DEF_DOTQ(dotq2_q4_0, q4_0, nibbles_q4_pair, isum2_q4_pair, last2_q4, 1)
DEF_DOTQ(dotq2_q8_0, q8_0, biased_q8_pair, isum2_q8_pair, last2_q8, 1)

/* The KERN_NT-token forms prepare each weight block pair once. */
#define DEF_DOTQ_NT(NAME, T, PREP, ISUM, LAST, X2)                                                            \
    static void NAME(const void *row, const void *xq, size_t xs, size_t n, float *out) {                      \
        const block_##T *b = row;                                                                             \
        const int8_t *q[KERN_NT];                                                                             \
        const int32_t *c[KERN_NT];                                                                            \
        const float *d[KERN_NT];                                                                              \
        __m512 a[KERN_NT];                                                                                    \
        size_t lo = kern_xq_bytes(n);                                                                         \
        for (int t = 0; t < KERN_NT; t++) {                                                                   \
            q[t] = (const int8_t *)xq + t * xs, c[t] = kern_xq_c(q[t], n);                                    \
            d[t] = kern_xq_d((const uint8_t *)q[t] + (X2 ? lo : 0), n);                                       \
            a[t] = _mm512_setzero_ps();                                                                       \
        }                                                                                                     \
        size_t nb = n / QK, ib = 0;                                                                           \
        for (; ib + 2 <= nb; ib += 2) {                                                                       \
            __m512i w = PREP(b + ib);                                                                         \
            __m128 dw = pair_dw(b[ib].d, b[ib + 1].d);                                                        \
            for (int t = 0; t < KERN_NT; t++)                                                                 \
                a[t] = _mm512_fmadd_ps(pair_scales(dw, d[t] + ib),                                            \
                                       _mm512_cvtepi32_ps(ISUM(w, q[t] + ib * QK, c[t] + ib * 8, lo)), a[t]); \
        }                                                                                                     \
        for (int t = 0; t < KERN_NT; t++) {                                                                   \
            out[t] = _mm512_reduce_add_ps(a[t]);                                                              \
            if (ib < nb) out[t] += LAST(b + ib, q[t] + ib * QK, c[t] + ib * 8, d[t][ib], lo);                 \
        }                                                                                                     \
    }
DEF_DOTQ_NT(dotq_nt_q4_0, q4_0, nibbles_q4_pair, isum_q4_pair, last_q4, 0)
DEF_DOTQ_NT(dotq_nt_q8_0, q8_0, biased_q8_pair, isum_q8_pair, last_q8, 0)
DEF_DOTQ_NT(dotq2_nt_q4_0, q4_0, nibbles_q4_pair, isum2_q4_pair, last2_q4, 1)
DEF_DOTQ_NT(dotq2_nt_q8_0, q8_0, biased_q8_pair, isum2_q8_pair, last2_q8, 1)

/* Signed weights -8..7 of one Q4_0 block, for dequantization and the f32 dot. */
static inline __m256i unpack_q4(const uint8_t *qs) {
    __m128i v = _mm_loadu_si128((const __m128i *)qs);
    __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
    return _mm256_sub_epi8(nib, _mm256_set1_epi8(8));
}

/* Quantized weights against f32 activations (kern_dot; the matmul uses the
 * integer path): 32 weights widened to f32 per block, scaled once per block. */
static inline __m512 s8_to_ps(__m128i q) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)); }

static inline __m512 block_dot_f32(__m256i q, const float *x) {
    __m512 s = _mm512_mul_ps(s8_to_ps(_mm256_castsi256_si128(q)), _mm512_loadu_ps(x));
    return _mm512_fmadd_ps(s8_to_ps(_mm256_extracti128_si256(q, 1)), _mm512_loadu_ps(x + 16), s);
}

static float dot_q8_0(const void *row, const float *x, size_t n) {
    const block_q8_0 *b = row;
    __m512 acc = _mm512_setzero_ps();
    for (size_t ib = 0; ib < n / QK; ib++)
        acc = _mm512_fmadd_ps(_mm512_set1_ps(_cvtsh_ss(b[ib].d)), block_dot_f32(load32(b[ib].qs), x + ib * QK), acc);
    return _mm512_reduce_add_ps(acc);
}

static float dot_q4_0(const void *row, const float *x, size_t n) {
    const block_q4_0 *b = row;
    __m512 acc = _mm512_setzero_ps();
    for (size_t ib = 0; ib < n / QK; ib++) {
        acc = _mm512_fmadd_ps(_mm512_set1_ps(_cvtsh_ss(b[ib].d)), block_dot_f32(unpack_q4(b[ib].qs), x + ib * QK), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

/* ---- dequantization (bit-exact with the scalar reference) ------------- */

static void dequant_f32(const void *row, float *out, size_t n) { memcpy(out, row, n * sizeof(float)); }

static void dequant_f16(const void *row, float *out, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, load16_f16(row, i));
    if (i < n) _mm512_mask_storeu_ps(out + i, first_lanes(n - i), mask16_f16(row, i, first_lanes(n - i)));
}

static void dequant_bf16(const void *row, float *out, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, load16_bf16(row, i));
    if (i < n) _mm512_mask_storeu_ps(out + i, first_lanes(n - i), mask16_bf16(row, i, first_lanes(n - i)));
}

/* 32 signed bytes times d into out[0..32). */
static inline void store_scaled_s8(float *out, __m256i q, float d) {
    __m512 vd = _mm512_set1_ps(d);
    _mm512_storeu_ps(out, _mm512_mul_ps(s8_to_ps(_mm256_castsi256_si128(q)), vd));
    _mm512_storeu_ps(out + 16, _mm512_mul_ps(s8_to_ps(_mm256_extracti128_si256(q, 1)), vd));
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

/* The avx512 kernels, shared by the avx512 and amx tables. */
#define AVX512_KERNELS                                                                                         \
    .dot = {[GGML_TYPE_F32] = dot_f32, [GGML_TYPE_F16] = dot_f16, [GGML_TYPE_BF16] = dot_bf16,                 \
            [GGML_TYPE_Q8_0] = dot_q8_0, [GGML_TYPE_Q4_0] = dot_q4_0},                                         \
    .dequant = {[GGML_TYPE_F32] = dequant_f32, [GGML_TYPE_F16] = dequant_f16, [GGML_TYPE_BF16] = dequant_bf16, \
                [GGML_TYPE_Q8_0] = dequant_q8_0, [GGML_TYPE_Q4_0] = dequant_q4_0},                             \
    .dot_nt = {[GGML_TYPE_F32] = dot_nt_f32, [GGML_TYPE_F16] = dot_nt_f16, [GGML_TYPE_BF16] = dot_nt_bf16},    \
    .attend = attend,                                                                                          \
    .quantize_x = quantize_x,                                                                                  \
    .quantize_lo = quantize_lo,                                                                                \
    .dotq = {[GGML_TYPE_Q8_0] = dotq_q8_0, [GGML_TYPE_Q4_0] = dotq_q4_0},                                      \
    .dotq_nt = {[GGML_TYPE_Q8_0] = dotq_nt_q8_0, [GGML_TYPE_Q4_0] = dotq_nt_q4_0},                             \
    .dotq2 = {[GGML_TYPE_Q8_0] = dotq2_q8_0, [GGML_TYPE_Q4_0] = dotq2_q4_0},                                   \
    .dotq2_nt = {[GGML_TYPE_Q8_0] = dotq2_nt_q8_0, [GGML_TYPE_Q4_0] = dotq2_nt_q4_0}

static const kern_table g_avx512 = {.name = "avx512", AVX512_KERNELS};

const kern_table *kern_avx512(void) { return &g_avx512; }

#if defined(__x86_64__) && defined(CACTUS_HAVE_AMX) /* tiles: 64-bit mode, a compiler that knows them */
/* Decode and every float type stay on the kernels above; prefill of
 * quantized weights goes to the tiles (amx.c). */
static const kern_table g_amx = {
    .name = "amx",
    AVX512_KERNELS,
    .pack_xt = kern_amx_pack_xt,
    .pack_xt2 = kern_amx_pack_xt2,
    .gemm = {[GGML_TYPE_Q8_0] = kern_amx_gemm_q8_0, [GGML_TYPE_Q4_0] = kern_amx_gemm_q4_0},
    .gemm2 = {[GGML_TYPE_Q8_0] = kern_amx_gemm2_q8_0, [GGML_TYPE_Q4_0] = kern_amx_gemm2_q4_0},
};

const kern_table *kern_amx(void) { return &g_amx; }
#else
const kern_table *kern_amx(void) { return NULL; }
#endif

#else
const kern_table *kern_avx512(void) { return NULL; }
const kern_table *kern_amx(void) { return NULL; }
#endif
