/* Kernel tests: fp16/bf16 conversion, Q8_0 / Q4_0 block decoding against
 * hand-built blocks, and, for every kernel table this CPU runs, every kernel
 * against the scalar reference on random data of odd sizes and every tail:
 * dots against dequantize + a double-precision dot; dequantization and
 * activation quantization bit for bit; integer dots against the scalar
 * integer dot (same math) and against the f32 dot (within the bound the
 * activation rounding allows); the KERN_NT-token forms; the matrix-tile
 * kernels (AMX) where the CPU has them; and op_matmul. */
#include <stdint.h>

#include "check.h"
#include "kernels/half.h"
#include "kernels/kernels.h"
#include "ops.h"

static uint64_t g_rng = 0x12345678ull;
static float frand(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static void test_fp16(void) {
    CHECK_NEAR(fp16_to_f32(0x3C00), 1.0, 0);
    CHECK_NEAR(fp16_to_f32(0xC000), -2.0, 0);
    CHECK_NEAR(fp16_to_f32(0x7BFF), 65504.0, 0);
    CHECK_NEAR(fp16_to_f32(0x0001), 5.9604644775390625e-08, 0); /* smallest subnormal */
    CHECK_NEAR(fp16_to_f32(0x03FF), 6.097555160522461e-05, 0);  /* largest subnormal */
    CHECK(isinf(fp16_to_f32(0x7C00)) && isnan(fp16_to_f32(0x7E00)));
    /* Every finite half round-trips exactly through f32. */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7C00) == 0x7C00) continue;
        if (f32_to_fp16(fp16_to_f32((uint16_t)h)) != h) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(f32_to_fp16(1.0f + 1.0f / 2048.0f), 0x3C00);              /* tie rounds to even */
    CHECK_EQ_INT(f32_to_fp16(1.0f + 3.0f / 2048.0f), 0x3C02);              /* tie rounds to even (up) */
    CHECK_EQ_INT(f32_to_fp16(70000.0f), 0x7C00);                           /* overflow to inf */
    CHECK_NEAR(bf16_to_f32(0x3F80), 1.0, 0);
    CHECK_NEAR(bf16_to_f32(0xC0490FDB >> 16), -3.140625, 0);
}

static void test_q8_0_block(void) {
    block_q8_0 b;
    b.d = f32_to_fp16(0.5f);
    for (int j = 0; j < QK; j++) b.qs[j] = (int8_t)(j - 16);
    float out[QK];
    kern_scalar()->dequant[GGML_TYPE_Q8_0](&b, out, QK);
    int bad = 0;
    for (int j = 0; j < QK; j++) bad += out[j] != (float)(j - 16) * 0.5f;
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(sizeof(block_q8_0), 34);
}

static void test_q4_0_block(void) {
    block_q4_0 b;
    b.d = f32_to_fp16(0.25f);
    /* Byte j: low nibble is element j, high nibble element j + 16. */
    for (int j = 0; j < QK / 2; j++) b.qs[j] = (uint8_t)((j & 0x0F) | ((15 - j) << 4));
    float out[QK];
    kern_scalar()->dequant[GGML_TYPE_Q4_0](&b, out, QK);
    int bad = 0;
    for (int j = 0; j < QK / 2; j++) {
        bad += out[j] != (float)(j - 8) * 0.25f;
        bad += out[j + 16] != (float)(15 - j - 8) * 0.25f;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(sizeof(block_q4_0), 18);
}

static void fill_row(ggml_type type, void *row, size_t n) {
    if (type == GGML_TYPE_F32) {
        for (size_t i = 0; i < n; i++) ((float *)row)[i] = frand();
    } else if (type == GGML_TYPE_F16) {
        for (size_t i = 0; i < n; i++) ((uint16_t *)row)[i] = f32_to_fp16(frand());
    } else if (type == GGML_TYPE_BF16) {
        for (size_t i = 0; i < n; i++) ((uint16_t *)row)[i] = (uint16_t)(f32_to_bits(frand()) >> 16);
    } else if (type == GGML_TYPE_Q8_0) {
        block_q8_0 *b = row;
        for (size_t i = 0; i < n / QK; i++) {
            b[i].d = f32_to_fp16(0.01f + 0.1f * (frand() + 1.0f));
            for (int j = 0; j < QK; j++) b[i].qs[j] = (int8_t)(frand() * 127.0f);
            /* The extremes a file may hold, -128 included (|w| must still fit the SIMD paths). */
            if (i % 3 == 0) b[i].qs[i % QK] = -128, b[i].qs[(i + 7) % QK] = 127;
        }
    } else {
        block_q4_0 *b = row;
        for (size_t i = 0; i < n / QK; i++) {
            b[i].d = f32_to_fp16(0.01f + 0.1f * (frand() + 1.0f));
            for (int j = 0; j < QK / 2; j++) b[i].qs[j] = (uint8_t)((frand() + 1.0f) * 127.9f);
            if (i % 3 == 0) b[i].qs[i % (QK / 2)] = 0x0F, b[i].qs[(i + 5) % (QK / 2)] = 0xF0;
        }
    }
}

static void fill_x(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = frand();
}

static size_t row_bytes(ggml_type type, size_t n) {
    switch (type) {
    case GGML_TYPE_F32: return n * 4;
    case GGML_TYPE_F16:
    case GGML_TYPE_BF16: return n * 2;
    case GGML_TYPE_Q8_0: return n / QK * sizeof(block_q8_0);
    default: return n / QK * sizeof(block_q4_0);
    }
}

static int is_quant(ggml_type t) { return t == GGML_TYPE_Q8_0 || t == GGML_TYPE_Q4_0; }

static const ggml_type g_types[] = {GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_BF16, GGML_TYPE_Q8_0, GGML_TYPE_Q4_0};
#define N_TYPES (sizeof g_types / sizeof g_types[0])
/* Float rows: every tail of the 8-, 16- and 64-wide loops, and long rows. */
static const size_t g_float_lens[] = {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 47, 48, 63, 64, 65,
                                      79, 96, 100, 127, 128, 129, 255, 257, 1000, 1023, 4096, 4099};
/* Quantized rows (whole blocks): odd and even block counts, 1..131 blocks. */
static const size_t g_quant_lens[] = {32, 64, 96, 128, 160, 192, 224, 288, 480, 1024, 2080, 4096, 4192};
#define MAX_N 4192

static void lens_for(ggml_type t, const size_t **lens, size_t *count) {
    if (is_quant(t)) *lens = g_quant_lens, *count = sizeof g_quant_lens / sizeof g_quant_lens[0];
    else *lens = g_float_lens, *count = sizeof g_float_lens / sizeof g_float_lens[0];
}

static uint8_t g_row[MAX_N * 4];
static float g_x[MAX_N], g_w[MAX_N], g_out[MAX_N + 1], g_ref_out[MAX_N + 1];
static _Alignas(64) uint8_t g_xq[KERN_NT][2 * 16384], g_ref_xq[2 * 16384];

/* Each type's dot equals dequantize + a double-precision dot. */
static void test_dots(const kern_table *kt) {
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const size_t *lens;
        size_t nl;
        lens_for(g_types[ti], &lens, &nl);
        for (size_t li = 0; li < nl; li++) {
            size_t n = lens[li];
            fill_row(g_types[ti], g_row, n);
            fill_x(g_x, n);
            kern_scalar()->dequant[g_types[ti]](g_row, g_w, n);
            double ref = 0.0, mag = 0.0;
            for (size_t i = 0; i < n; i++) ref += (double)g_w[i] * g_x[i], mag += fabs((double)g_w[i] * g_x[i]);
            float got = kt->dot[g_types[ti]](g_row, g_x, n);
            CHECK_MSG(fabs(got - ref) <= 1e-5 * mag + 1e-6, "%s dot %s n=%zu: %g vs %g", kt->name,
                      ggml_type_name(g_types[ti]), n, got, ref);
        }
    }
}

/* Dequantization is a conversion and one multiply per element: bit-exact. */
static void test_dequant(const kern_table *kt) {
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const size_t *lens;
        size_t nl;
        lens_for(g_types[ti], &lens, &nl);
        for (size_t li = 0; li < nl; li++) {
            size_t n = lens[li];
            fill_row(g_types[ti], g_row, n);
            g_out[n] = g_ref_out[n] = 12345.0f; /* a write past n shows up here */
            kern_scalar()->dequant[g_types[ti]](g_row, g_ref_out, n);
            kt->dequant[g_types[ti]](g_row, g_out, n);
            CHECK_MSG(memcmp(g_out, g_ref_out, (n + 1) * sizeof(float)) == 0, "%s dequant %s n=%zu differs", kt->name,
                      ggml_type_name(g_types[ti]), n);
        }
    }
}

/* Random activations with the awkward blocks mixed in: all zeros, below
 * the KERN_XQ_TINY floor, exact ties for the rounding (amax 127 makes the
 * scale 1, so x.5 must round to even), and one huge value. */
static void fill_activations(float *x, size_t n, int variant) {
    fill_x(x, n);
    for (size_t ib = 0; ib < n / QK; ib++) {
        float *b = x + ib * QK;
        switch ((ib + (size_t)variant) % 7) {
        case 0: memset(b, 0, QK * sizeof(float)); break;
        case 1:
            for (int j = 0; j < QK; j++) b[j] *= 1e-32f; /* below the floor: zeros */
            break;
        case 4:
            for (int j = 0; j < QK; j++) b[j] *= 1e-20f; /* tiny, still quantized */
            break;
        case 2:
            for (int j = 0; j < QK; j++) b[j] = (float)(j - 16) + 0.5f;
            b[5] = 127.0f;
            break;
        case 3: b[3] = -3e4f; break;
        default: break;
        }
    }
}

/* The xq of kt matches the scalar reference byte for byte, and the scalar
 * reference matches the definition in kernels.h. */
static void test_quantize(const kern_table *kt) {
    for (size_t li = 0; li < sizeof g_quant_lens / sizeof g_quant_lens[0]; li++) {
        size_t n = g_quant_lens[li], bytes = kern_xq_bytes(n);
        CHECK(bytes % 64 == 0 && kern_xq_c_offset(n) % 64 == 0 && kern_xq_c_offset(n) >= n &&
              kern_xq_d_offset(n) >= kern_xq_c_offset(n) + n && bytes >= kern_xq_d_offset(n) + n / QK * 4 &&
              bytes <= sizeof g_ref_xq);
        fill_activations(g_x, n, (int)li);
        memset(g_ref_xq, 0, sizeof g_ref_xq);
        memset(g_xq[0], 0, sizeof g_xq[0]);
        kern_scalar()->quantize_x(g_x, g_ref_xq, n);
        kt->quantize_x(g_x, g_xq[0], n);
        CHECK_MSG(memcmp(g_xq[0], g_ref_xq, bytes) == 0, "%s quantize_x n=%zu differs from scalar", kt->name, n);
        const int8_t *q = (const int8_t *)g_ref_xq;
        const int32_t *c = kern_xq_c(g_ref_xq, n);
        const float *d = kern_xq_d(g_ref_xq, n);
        int bad = 0;
        for (size_t k = 0; k < n / 4; k++) bad += c[k] != -8 * (q[4 * k] + q[4 * k + 1] + q[4 * k + 2] + q[4 * k + 3]);
        for (size_t ib = 0; ib < n / QK; ib++) {
            float amax = 0.0f;
            for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(g_x[ib * QK + j]));
            for (int j = 0; j < QK; j++) {
                int8_t v = q[ib * QK + j];
                bad += v == -128; /* the only int8 outside [-127, 127] */
                /* Each quant is x rounded to the nearest step (ties may go either way by a hair). */
                if (amax > KERN_XQ_TINY) bad += fabs(g_x[ib * QK + j] - v * (double)d[ib]) > d[ib] * 0.5001;
                else bad += v != 0;
            }
            bad += d[ib] != amax / 127.0f;
        }
        CHECK_MSG(bad == 0, "scalar quantize_x n=%zu breaks the xq definition in %d places", n, bad);
    }
    /* Ties round to even: amax 127 gives scale 1, so 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> 0. */
    float tie[QK] = {127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f};
    kt->quantize_x(tie, g_xq[0], QK);
    const int8_t *q = (const int8_t *)g_xq[0];
    CHECK_MSG(q[0] == 127 && q[1] == 0 && q[2] == 2 && q[3] == 2 && q[4] == 0 && q[5] == -2, "%s ties", kt->name);
}

/* Sum over blocks of |dw * dx * isum|: the scale for "1e-6 relative" on the
 * integer dots, whose only float error is the accumulation of these terms. */
static double dotq_magnitude(ggml_type type, const void *row, const void *xq, size_t n) {
    const int8_t *q = xq;
    const float *d = kern_xq_d(xq, n);
    double mag = 0.0;
    for (size_t ib = 0; ib < n / QK; ib++) {
        float w[QK];
        kern_scalar()->dequant[type]((const uint8_t *)row + ib * row_bytes(type, QK), w, QK);
        double s = 0.0;
        for (int j = 0; j < QK; j++) s += (double)w[j] * q[ib * QK + j];
        mag += fabs(s * d[ib]);
    }
    return mag;
}

/* The same for xq2, element by element (sum of |dw * d_lo * w * (16 q + lo)|):
 * the one-pass kernels sum lanes of 16 q + lo, which may cancel within a
 * block, so the block sums' magnitude is no bound for them. */
static double dotq2_magnitude(ggml_type type, const void *row, const void *xq2, size_t n) {
    const int8_t *q = xq2, *lo = q + kern_xq_bytes(n);
    const float *d = kern_xq_d(lo, n);
    double mag = 0.0;
    for (size_t ib = 0; ib < n / QK; ib++) {
        float w[QK];
        kern_scalar()->dequant[type]((const uint8_t *)row + ib * row_bytes(type, QK), w, QK);
        for (int j = 0; j < QK; j++) mag += fabs((double)w[j] * (16 * q[ib * QK + j] + lo[ib * QK + j]) * d[ib]);
    }
    return mag;
}

/* How far the integer dot may be from the f32 dot: each x moves by at most
 * half a step, d / 2, on rounding to its quant; plus float slack. */
static double xq_error_bound(const float *w, const float *x, size_t n) {
    double bound = 0.0;
    for (size_t ib = 0; ib < n / QK; ib++) {
        float amax = 0.0f;
        double wsum = 0.0;
        for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[ib * QK + j])), wsum += fabs(w[ib * QK + j]);
        bound += wsum * (amax / 127.0) * 0.5;
    }
    return bound * 1.001;
}

/* The xq2 dots of the row in g_row (g_w dequantized) and x: kt's dotq2 and
 * dotq2_nt against the scalar reference on the same xq2 (which equals dotq
 * over hi plus dotq over lo), and the reference against the f32 dot of x[0]
 * within what 12-bit activations allow (a sixteenth of the 8-bit bound). */
static void check_dotq2(const kern_table *kt, ggml_type type, size_t n, float x[KERN_NT][MAX_N]) {
    CHECK(kt->dotq2[type] && kt->dotq2_nt[type]);
    for (int t = 0; t < KERN_NT; t++) kern_quantize_x2(kern_scalar(), x[t], g_xq[t], n);
    float nt_out[KERN_NT];
    kt->dotq2_nt[type](g_row, g_xq[0], sizeof g_xq[0], n, nt_out);
    for (int t = 0; t < KERN_NT; t++) {
        const uint8_t *hi = g_xq[t], *lo = hi + kern_xq_bytes(n);
        double mag = dotq2_magnitude(type, g_row, hi, n) + dotq_magnitude(type, g_row, lo, n);
        float ref = kern_scalar()->dotq2[type](g_row, hi, n), got = kt->dotq2[type](g_row, hi, n);
        float two = kern_scalar()->dotq[type](g_row, hi, n) + kern_scalar()->dotq[type](g_row, lo, n);
        CHECK_MSG(fabs(ref - two) <= 1e-6 * mag + 1e-30, "scalar dotq2 %s n=%zu t=%d: %.9g vs two dots %.9g",
                  ggml_type_name(type), n, t, ref, two);
        CHECK_MSG(fabs(got - ref) <= 1e-6 * mag + 1e-30, "%s dotq2 %s n=%zu t=%d: %.9g vs %.9g", kt->name,
                  ggml_type_name(type), n, t, got, ref);
        CHECK_MSG(fabs(nt_out[t] - ref) <= 1e-6 * mag + 1e-30, "%s dotq2_nt %s n=%zu t=%d: %.9g vs %.9g", kt->name,
                  ggml_type_name(type), n, t, nt_out[t], ref);
        if (t > 0) continue; /* x[0] is ordinary data; the others include blocks of near-zeros */
        double exact = 0.0, fmag = 0.0;
        for (size_t i = 0; i < n; i++) exact += (double)g_w[i] * x[t][i], fmag += fabs((double)g_w[i] * x[t][i]);
        double bound = xq_error_bound(g_w, x[t], n) / 16 + 1e-5 * fmag;
        CHECK_MSG(fabs(ref - exact) <= bound, "dotq2 %s n=%zu vs f32: %g vs %g (bound %g)", ggml_type_name(type), n, ref,
                  exact, bound);
    }
}

static void test_dotq(const kern_table *kt) {
    static const ggml_type qtypes[] = {GGML_TYPE_Q8_0, GGML_TYPE_Q4_0};
    for (size_t ti = 0; ti < 2; ti++) {
        ggml_type type = qtypes[ti];
        for (size_t li = 0; li < sizeof g_quant_lens / sizeof g_quant_lens[0]; li++) {
            size_t n = g_quant_lens[li];
            fill_row(type, g_row, n);
            kern_scalar()->dequant[type](g_row, g_w, n);
            float x[KERN_NT][MAX_N];
            for (int t = 0; t < KERN_NT; t++) {
                if (t == 0) fill_x(x[t], n);
                else fill_activations(x[t], n, t);
                kern_scalar()->quantize_x(x[t], g_xq[t], n);
            }
            /* Same math: the scalar integer dot on the same xq. */
            float nt_out[KERN_NT];
            kt->dotq_nt[type](g_row, g_xq[0], sizeof g_xq[0], n, nt_out);
            for (int t = 0; t < KERN_NT; t++) {
                float ref = kern_scalar()->dotq[type](g_row, g_xq[t], n);
                float got = kt->dotq[type](g_row, g_xq[t], n);
                double mag = dotq_magnitude(type, g_row, g_xq[t], n);
                CHECK_MSG(fabs(got - ref) <= 1e-6 * mag + 1e-30, "%s dotq %s n=%zu t=%d: %.9g vs %.9g (mag %g)",
                          kt->name, ggml_type_name(type), n, t, got, ref, mag);
                CHECK_MSG(fabs(nt_out[t] - ref) <= 1e-6 * mag + 1e-30, "%s dotq_nt %s n=%zu t=%d: %.9g vs %.9g",
                          kt->name, ggml_type_name(type), n, t, nt_out[t], ref);
            }
            /* Against the f32 dot: within what rounding x to 8 bits allows. */
            double exact = 0.0, mag = 0.0;
            for (size_t i = 0; i < n; i++) exact += (double)g_w[i] * x[0][i], mag += fabs((double)g_w[i] * x[0][i]);
            float got = kt->dotq[type](g_row, g_xq[0], n);
            double bound = xq_error_bound(g_w, x[0], n) + 1e-5 * mag;
            CHECK_MSG(fabs(got - exact) <= bound, "%s dotq %s n=%zu vs f32: %g vs %g (bound %g)", kt->name,
                      ggml_type_name(type), n, got, exact, bound);
            check_dotq2(kt, type, n, x);
        }
    }
}

/* xq2 (kernels.h): kern_quantize_x2 with kt's hi equals the scalar one byte
 * for byte, and its lo is the remainder at a sixteenth of the step: lo in
 * [-8, 8], x within d / 32 of (16 q + lo) d / 16, lo's c and d as defined. */
static void test_quantize2(const kern_table *kt) {
    for (size_t li = 0; li < sizeof g_quant_lens / sizeof g_quant_lens[0]; li++) {
        size_t n = g_quant_lens[li], bytes = kern_xq2_bytes(n);
        CHECK(bytes <= sizeof g_ref_xq);
        fill_activations(g_x, n, (int)li + 7);
        memset(g_ref_xq, 0, sizeof g_ref_xq);
        memset(g_xq[0], 0, sizeof g_xq[0]);
        kern_quantize_x2(kern_scalar(), g_x, g_ref_xq, n);
        kern_quantize_x2(kt, g_x, g_xq[0], n);
        CHECK_MSG(memcmp(g_xq[0], g_ref_xq, bytes) == 0, "%s quantize_x2 n=%zu differs from scalar", kt->name, n);
        const int8_t *q = (const int8_t *)g_ref_xq, *lo = q + kern_xq_bytes(n);
        const float *d = kern_xq_d(q, n), *d_lo = kern_xq_d(lo, n);
        const int32_t *c = kern_xq_c(lo, n);
        int bad = 0;
        for (size_t k = 0; k < n / 4; k++) bad += c[k] != -8 * (lo[4 * k] + lo[4 * k + 1] + lo[4 * k + 2] + lo[4 * k + 3]);
        for (size_t ib = 0; ib < n / QK; ib++) {
            float amax = 0.0f;
            for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(g_x[ib * QK + j]));
            bad += d_lo[ib] != (amax > KERN_XQ_TINY ? d[ib] / 16.0f : 0.0f);
            for (int j = 0; j < QK; j++) {
                size_t i = ib * QK + (size_t)j;
                double got = (16.0 * q[i] + lo[i]) * (double)d_lo[ib];
                bad += lo[i] < -8 || lo[i] > 8;
                /* A block hi rounds to zeros (max|x| at or below KERN_XQ_TINY) is zeros in lo too. */
                if (amax > KERN_XQ_TINY) bad += fabs(g_x[i] - got) > d[ib] / 32.0 * 1.001;
                else bad += lo[i] != 0;
            }
        }
        CHECK_MSG(bad == 0, "quantize_x2 n=%zu breaks the xq2 definition in %d places", n, bad);
    }
}

/* kt's attend against softmax attention in double: head sizes with and
 * without a 16-lane tail, key counts around the vector width, soft-capping,
 * rows packed and further apart than one head, scores far apart (a near
 * one-hot softmax) and close together. The keys and values are heap blocks
 * that end with the last row, so ASan sees any read past it. */
static void test_attend(const kern_table *kt) {
    static const int hds[] = {16, 32, 48, 64, 80, 128, 256}, keys[] = {1, 2, 15, 17, 100, 1000};
    enum { MAX_HD = 256, MAX_KEYS = 1000 };
    static float scores[MAX_KEYS];
    float q[MAX_HD], out[MAX_HD];
    double w[MAX_KEYS];
    int bad = 0;
    for (size_t hi = 0; hi < sizeof hds / sizeof hds[0]; hi++) {
        int hd = hds[hi];
        for (size_t ki = 0; ki < sizeof keys / sizeof keys[0]; ki++) {
            for (int variant = 0; variant < 3; variant++) {
                int n = keys[ki];
                size_t stride = variant == 0 ? (size_t)hd : 3 * (size_t)hd, len = (size_t)(n - 1) * stride + (size_t)hd;
                float *k = malloc(sizeof(float) * len), *v = malloc(sizeof(float) * len);
                if (!CHECK(k && v)) return;
                fill_x(k, len);
                fill_x(v, len);
                float scale = variant == 1 ? 4.0f : 1.0f / sqrtf((float)hd), softcap = variant == 2 ? 2.0f : 0.0f;
                fill_x(q, (size_t)hd);
                double mx = -INFINITY, sum = 0.0;
                for (int p = 0; p < n; p++) {
                    double s = 0.0;
                    for (int d = 0; d < hd; d++) s += (double)q[d] * k[(size_t)p * stride + (size_t)d];
                    s *= scale;
                    if (softcap > 0.0f) s = softcap * tanh(s / softcap);
                    w[p] = s, mx = s > mx ? s : mx;
                }
                for (int p = 0; p < n; p++) w[p] = exp(w[p] - mx), sum += w[p];
                kt->attend(q, k, v, stride, hd, n, scale, softcap, scores, out);
                for (int d = 0; d < hd; d++) {
                    double want = 0.0;
                    for (int p = 0; p < n; p++) want += w[p] / sum * v[(size_t)p * stride + (size_t)d];
                    bad += !(fabs(out[d] - want) <= 2e-6 * (1.0 + fabs(want)));
                }
                free(k), free(v);
            }
        }
    }
    CHECK_MSG(bad == 0, "%s attend: %d outputs off", kt->name, bad);
}

static void test_dot_nt(const kern_table *kt) {
    static float x[KERN_NT][4100];
    for (size_t ti = 0; ti < 3; ti++) {
        ggml_type type = g_types[ti];
        for (size_t li = 0; li < sizeof g_float_lens / sizeof g_float_lens[0]; li++) {
            size_t n = g_float_lens[li];
            fill_row(type, g_row, n);
            kern_scalar()->dequant[type](g_row, g_w, n);
            for (int t = 0; t < KERN_NT; t++) fill_x(x[t], n);
            float out[KERN_NT];
            kt->dot_nt[type](g_row, x[0], sizeof x[0] / sizeof x[0][0], n, out);
            for (int t = 0; t < KERN_NT; t++) {
                double ref = 0.0, mag = 0.0;
                for (size_t i = 0; i < n; i++) ref += (double)g_w[i] * x[t][i], mag += fabs((double)g_w[i] * x[t][i]);
                CHECK_MSG(fabs(out[t] - ref) <= 1e-5 * mag + 1e-6, "%s dot_nt %s n=%zu t=%d: %g vs %g", kt->name,
                          ggml_type_name(type), n, t, out[t], ref);
            }
        }
    }
}

/* The xt / xt2 repacking (kernels.h): each token's quants (xt2: hi and lo)
 * as columns, four bytes per int32 lane, the scale per block (xt2: lo's),
 * zeros past the last token. */
static void check_xt(const kern_table *kt, const uint8_t *xq, size_t xs, size_t n, int n_tok, const uint8_t *xt, int x2) {
    size_t nb = n / QK, xb = x2 ? KERN_XT2_BLOCK_BYTES : KERN_XT_BLOCK_BYTES;
    int n_tiles = (n_tok + KERN_TILE - 1) / KERN_TILE, bad = 0;
    for (int tile = 0; tile < n_tiles; tile++) {
        for (size_t ib = 0; ib < nb; ib++) {
            const uint8_t *blk = xt + ((size_t)tile * nb + ib) * xb;
            const float *d = (const float *)(blk + xb - KERN_TILE * sizeof(float));
            for (int t = 0; t < KERN_TILE; t++) {
                int tok = tile * KERN_TILE + t;
                const int8_t *q = (const int8_t *)(xq + (size_t)tok * xs), *lo = q + (x2 ? kern_xq_bytes(n) : 0);
                for (int k = 0; k < QK; k++) {
                    bad += (int8_t)blk[(k / 4) * 64 + 4 * t + k % 4] != (tok < n_tok ? q[ib * QK + (size_t)k] : 0);
                    if (x2)
                        bad += (int8_t)blk[(8 + k / 4) * 64 + 4 * t + k % 4] != (tok < n_tok ? lo[ib * QK + (size_t)k] : 0);
                }
                bad += d[t] != (tok < n_tok ? kern_xq_d(lo, n)[ib] : 0.0f);
            }
        }
    }
    CHECK_MSG(bad == 0, "%s pack_xt%s n=%zu n_tok=%d: %d bytes or scales wrong", kt->name, x2 ? "2" : "", n, n_tok, bad);
}

/* The tile kernels against the scalar integer dot on the same xq2, for every
 * token and row count around the 16 x 16 tiles (1, 15, 16, 17, 33, 100) and
 * odd and even block counts: the int32 block sums are exact, so only the
 * order of the f32 accumulation may differ (1e-6 relative to the sum of
 * |terms|). y has a wider stride than the rows and a sentinel border: the
 * kernels must write exactly rows [0, n_rows) of tokens [0, n_tok). */
static void test_tiles(const kern_table *kt, int x2) {
    static const ggml_type qtypes[] = {GGML_TYPE_Q8_0, GGML_TYPE_Q4_0};
    static const size_t lens[] = {32, 96, 160, 2080};
    static const int counts[] = {1, 15, 16, 17, 33, 100};
    enum { MAX_TOK = 100, MAX_ROWS = 100, SENTINEL_ROWS = 3 };
    const float sentinel = -12345.0f;
    size_t max_n = 2080, xs = x2 ? kern_xq2_bytes(max_n) : kern_xq_bytes(max_n);
    size_t ys = MAX_ROWS + SENTINEL_ROWS;
    uint8_t *w = malloc(row_bytes(GGML_TYPE_Q8_0, max_n) * MAX_ROWS);
    float *x = malloc(sizeof(float) * max_n);
    float *y = malloc(sizeof(float) * ys * (MAX_TOK + 1));
    uint8_t *xq = aligned_alloc(64, xs * MAX_TOK);
    uint8_t *xt = aligned_alloc(64, kern_xt2_tile_bytes(max_n) * ((MAX_TOK + KERN_TILE - 1) / KERN_TILE));
    kern_pack_xt_fn pack_xt = x2 ? kt->pack_xt2 : kt->pack_xt;
    kern_gemm_fn const *gemm = x2 ? kt->gemm2 : kt->gemm;
    kern_dotq_fn const *ref_dot = x2 ? kern_scalar()->dotq2 : kern_scalar()->dotq;
    uint8_t *scratch = aligned_alloc(64, kern_tile_scratch_bytes(max_n));
    if (!CHECK(w && x && y && xq && xt && scratch)) return;
    for (size_t ti = 0; ti < 2; ti++) {
        ggml_type type = qtypes[ti];
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            size_t n = lens[li], rb = row_bytes(type, n);
            for (int r = 0; r < MAX_ROWS; r++) fill_row(type, w + (size_t)r * rb, n);
            for (int t = 0; t < MAX_TOK; t++) {
                fill_activations(x, n, t);
                if (x2)
                    kern_quantize_x2(kt, x, xq + (size_t)t * xs, n);
                else
                    kt->quantize_x(x, xq + (size_t)t * xs, n);
            }
            for (size_t ri = 0; ri < sizeof counts / sizeof counts[0]; ri++) {
                for (size_t ki = 0; ki < sizeof counts / sizeof counts[0]; ki++) {
                    int n_rows = counts[ri], n_tok = counts[ki], n_tiles = (n_tok + KERN_TILE - 1) / KERN_TILE;
                    for (int tile = 0; tile < n_tiles; tile++) pack_xt(xq, xs, n, n_tok, tile, xt);
                    if (ri == 0) check_xt(kt, xq, xs, n, n_tok, xt, x2);
                    for (size_t i = 0; i < ys * (MAX_TOK + 1); i++) y[i] = sentinel;
                    gemm[type](w, rb, (size_t)n_rows, xt, n, n_tok, y, ys, scratch);
                    int bad = 0, stray = 0;
                    double worst = 0.0;
                    for (int t = 0; t <= MAX_TOK; t++) {
                        for (size_t r = 0; r < ys; r++) {
                            float got = y[(size_t)t * ys + r];
                            if (t >= n_tok || r >= (size_t)n_rows) {
                                stray += got != sentinel;
                                continue;
                            }
                            const uint8_t *row = w + r * rb, *xqt = xq + (size_t)t * xs;
                            float ref = ref_dot[type](row, xqt, n);
                            double err = fabs((double)got - ref);
                            double mag = x2 ? dotq2_magnitude(type, row, xqt, n) : dotq_magnitude(type, row, xqt, n);
                            if (!(err <= 1e-6 * mag + 1e-30)) bad++;
                            if (mag > 0 && err / mag > worst) worst = err / mag;
                        }
                    }
                    CHECK_MSG(bad == 0 && stray == 0, "%s gemm%s %s n=%zu rows=%d tokens=%d: %d wrong (worst %.2g), %d stray",
                              kt->name, x2 ? "2" : "", ggml_type_name(type), n, n_rows, n_tok, bad, worst, stray);
                }
            }
        }
    }
    free(w), free(x), free(y), free(xq), free(xt), free(scratch);
}

/* op_matmul (the active table, two threads) against row-by-row reference
 * dots: decode and prefill shapes, token counts around KERN_NT, row tiles
 * and the prefill xq buffer beyond the scratch; quantized weights with 8-
 * and 12-bit activations (act_bits). */
static void test_matmul(void) {
    const kern_table *kt = kern_active();
    threadpool *tp = tp_create(2);
    if (!CHECK(tp != NULL)) return;
    static const int toks[] = {1, 2, 3, 4, 5, 9, 17, 33, 64};
    static const int64_t shapes[][2] = {{32, 7}, {96, 37}, {2048, 19}, {160, 300}, {64, 32}, {128, 64}, {64, 504}};
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        ggml_type type = g_types[ti];
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            int64_t n_in = shapes[si][0], n_out = shapes[si][1];
            size_t rb = row_bytes(type, (size_t)n_in);
            uint8_t *wdata = malloc(rb * (size_t)n_out);
            float *x = malloc(sizeof(float) * (size_t)(64 * n_in));
            float *y = malloc(sizeof(float) * (size_t)(64 * n_out));
            float *scratch = malloc(sizeof(float) * (size_t)(3 * n_in)); /* (threads + 1) rows */
            uint8_t *xq = malloc(kern_xq2_bytes((size_t)n_in));
            if (!CHECK(wdata && x && y && scratch && xq)) return;
            for (int64_t r = 0; r < n_out; r++) fill_row(type, wdata + (size_t)r * rb, (size_t)n_in);
            fill_x(x, (size_t)(64 * n_in));
            for (size_t k = 0; k < 2 * sizeof toks / sizeof toks[0]; k++) {
                int nt = toks[k % (sizeof toks / sizeof toks[0])], x2 = k >= sizeof toks / sizeof toks[0];
                if (x2 && !is_quant(type)) break;
                cx_weight w = {type, wdata, n_in, n_out, rb, x2 ? 12 : 8};
                op_matmul(tp, &w, x, y, nt, scratch);
                int bad = 0;
                for (int t = 0; t < nt; t++) {
                    const float *xt = x + (size_t)t * (size_t)n_in;
                    if (x2) kern_quantize_x2(kt, xt, xq, (size_t)n_in);
                    else if (is_quant(type)) kt->quantize_x(xt, xq, (size_t)n_in);
                    for (int64_t r = 0; r < n_out; r++) {
                        const void *row = wdata + (size_t)r * rb;
                        float ref = !is_quant(type) ? kern_scalar()->dot[type](row, xt, (size_t)n_in)
                                    : x2            ? kt->dotq2[type](row, xq, (size_t)n_in)
                                                    : kt->dotq[type](row, xq, (size_t)n_in);
                        float got = y[(size_t)t * (size_t)n_out + (size_t)r];
                        bad += !(fabsf(got - ref) <= 1e-4f * (fabsf(ref) + 1.0f));
                    }
                }
                CHECK_MSG(bad == 0, "%s op_matmul %s %lldx%lld n_tok=%d act_bits=%d: %d wrong", kt->name,
                          ggml_type_name(type), (long long)n_in, (long long)n_out, nt, w.act_bits, bad);
            }
            free(wdata), free(x), free(y), free(scratch), free(xq);
        }
    }
    tp_destroy(tp);
}

/* op_matmul_group equals one op_matmul per weight, bit for bit: quantized
 * groups (one parallel-for in decode, rows of every weight in each thread's
 * chunks), with 8- and 12-bit activations, a group with a float weight (each
 * weight alone), prefill. */
static void test_matmul_group(void) {
    threadpool *tp = tp_create(2);
    if (!CHECK(tp != NULL)) return;
    enum { N_IN = 160, N_TOK = 9 };
    static const ggml_type groups[][3] = {{GGML_TYPE_Q4_0, GGML_TYPE_Q8_0, GGML_TYPE_Q4_0},
                                          {GGML_TYPE_Q8_0, GGML_TYPE_F16, GGML_TYPE_Q4_0},
                                          {GGML_TYPE_Q4_0, GGML_TYPE_Q8_0, GGML_TYPE_Q4_0}};
    static const int act_bits[] = {8, 8, 12}; /* the last group: 12-bit activations (one xq2 row) */
    static const int64_t n_out[3] = {37, 5, 300};
    static const int toks[] = {1, 3, N_TOK};
    float *x = malloc(sizeof(float) * N_TOK * N_IN), *scratch = malloc(sizeof(float) * 3 * N_IN);
    if (!CHECK(x && scratch)) return;
    fill_x(x, (size_t)N_TOK * N_IN);
    for (size_t gi = 0; gi < sizeof groups / sizeof groups[0]; gi++) {
        cx_weight w[3];
        const cx_weight *wp[3];
        float *y[3], *ref[3];
        for (int k = 0; k < 3; k++) {
            size_t rb = row_bytes(groups[gi][k], N_IN);
            uint8_t *data = malloc(rb * (size_t)n_out[k]);
            y[k] = malloc(sizeof(float) * N_TOK * (size_t)n_out[k]);
            ref[k] = malloc(sizeof(float) * N_TOK * (size_t)n_out[k]);
            if (!CHECK(data && y[k] && ref[k])) return;
            for (int64_t r = 0; r < n_out[k]; r++) fill_row(groups[gi][k], data + (size_t)r * rb, N_IN);
            w[k] = (cx_weight){groups[gi][k], data, N_IN, n_out[k], rb, act_bits[gi]};
            wp[k] = &w[k];
        }
        for (size_t t = 0; t < sizeof toks / sizeof toks[0]; t++) {
            int same = 1;
            op_matmul_group(tp, wp, y, 3, x, toks[t], scratch);
            for (int k = 0; k < 3; k++) {
                op_matmul(tp, &w[k], x, ref[k], toks[t], scratch);
                same &= memcmp(y[k], ref[k], sizeof(float) * (size_t)toks[t] * (size_t)n_out[k]) == 0;
            }
            CHECK_MSG(same, "op_matmul_group %s/%s/%s n_tok=%d act_bits=%d differs from op_matmul",
                      ggml_type_name(groups[gi][0]), ggml_type_name(groups[gi][1]), ggml_type_name(groups[gi][2]), toks[t],
                      act_bits[gi]);
        }
        for (int k = 0; k < 3; k++) free((void *)w[k].data), free(y[k]), free(ref[k]);
    }
    free(x), free(scratch);
    tp_destroy(tp);
}

int main(void) {
    test_fp16();
    test_q8_0_block();
    test_q4_0_block();
    const kern_table *tables[8];
    int n = kern_available(tables, 8);
    CHECK(n >= 1 && tables[0] == kern_scalar());
    int active_listed = 0, tiled = 0;
    for (int i = 0; i < n && i < 8; i++) {
        printf("kernel table: %s\n", tables[i]->name);
        active_listed |= tables[i] == kern_active();
        test_dots(tables[i]);
        test_dequant(tables[i]);
        test_quantize(tables[i]);
        test_dotq(tables[i]);
        test_quantize2(tables[i]);
        test_dot_nt(tables[i]);
        test_attend(tables[i]);
        if (tables[i]->gemm[GGML_TYPE_Q8_0]) {
            CHECK(tables[i]->pack_xt && tables[i]->gemm[GGML_TYPE_Q4_0]);
            CHECK(tables[i]->pack_xt2 && tables[i]->gemm2[GGML_TYPE_Q8_0] && tables[i]->gemm2[GGML_TYPE_Q4_0]);
            test_tiles(tables[i], 0);
            test_tiles(tables[i], 1);
            tiled = 1;
        }
    }
    if (!tiled) printf("matrix-tile kernels (AMX): not available on this CPU or OS, not tested\n");
    CHECK(active_listed);
    test_matmul();
    test_matmul_group();
    return CHECK_DONE();
}
