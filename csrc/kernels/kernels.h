/* Per-type weight kernels behind one dispatch table, chosen once at init by
 * probing the CPU. Weight rows are in GGUF layout: a row of n_in elements of
 * the tensor's type (quantized types in blocks of 32).
 *
 * Float weights (F32, F16, BF16) are dotted against f32 activations. For
 * quantized weights (Q8_0, Q4_0) the activations are quantized once per
 * matmul to 8-bit blocks (see "xq" below) and every row is an integer dot
 * product per block, scaled in float: the weights never leave their 4/8 bits. */
#ifndef CACTUS_KERNELS_H
#define CACTUS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "../gguf.h"

/* Quant block layouts, bit-exact with ggml's block_q8_0 / block_q4_0. */
#define QK 32
typedef struct {
    uint16_t d;      /* fp16 scale */
    int8_t qs[QK];   /* x = qs * d */
} block_q8_0;
typedef struct {
    uint16_t d;          /* fp16 scale */
    uint8_t qs[QK / 2];  /* x[j] = (lo(qs[j]) - 8) * d, x[j+16] = (hi(qs[j]) - 8) * d */
} block_q4_0;

/* Quantized activations ("xq"), n a multiple of QK: three arrays in one
 * buffer, the first two 64-byte aligned when the buffer is:
 *     int8 q[n] | int32 c[n / 4] | float d[n / 32]
 * Per block of 32: q = round(x / d) with d = max|x| / 127, so q is in
 * [-127, 127]; d stays f32 (the buffer never leaves memory, so unlike
 * ggml's block_q8_0 there is no reason to round it to fp16). Per 4 quants:
 * c[k] = -8 * (q[4k] + q[4k+1] + q[4k+2] + q[4k+3]). The x86 byte dot
 * instructions multiply unsigned by signed bytes and sum groups of 4 into
 * int32 lanes; Q4_0 kernels feed them the raw nibbles (0..15) and start
 * each lane at its c, which takes the nibbles' +8 offset off exactly and
 * lane by lane (one offset per block would leave lanes with large values
 * that cancel only in the float sum, costing accuracy). The VNNI Q8_0
 * kernels add 128 to the weights and start at 16 * c the same way. The
 * buffer is about 2.1 n bytes, built once per matmul and read by every row.
 *
 * 12-bit activations ("xq2", for the models that need them: see
 * cx_weight.act_bits in model.h): each token's xq row ("hi") is followed by
 * a second xq row ("lo") of what hi left over, at a sixteenth of its step:
 *     lo = round((x - q * d) / (d / 16)), in [-8, 8], lo's d = d / 16
 * so x = (16 * q + lo) * d / 16 up to d / 32, sixteen times closer than hi
 * alone. An xq2 row is hi then lo, kern_xq_bytes(n) apart; lo is an xq row
 * in its own right, so dotq(hi) + dotq(lo) is its dot, and the *2 kernels
 * compute the same per block as one integer, 16 * dot(w, q) + dot(w, lo),
 * times dw * d / 16. */
#define KERN_XQ_TINY 0x1p-100f /* max|x| at or below this quantizes to all zeros */
static inline size_t kern_xq_c_offset(size_t n) { return (n + 63) & ~(size_t)63; }
static inline size_t kern_xq_d_offset(size_t n) { return kern_xq_c_offset(n) + n; }
/* A multiple of 64, so rows of several tokens at that stride stay aligned. */
static inline size_t kern_xq_bytes(size_t n) { return (kern_xq_d_offset(n) + n / QK * sizeof(float) + 63) & ~(size_t)63; }
static inline const int32_t *kern_xq_c(const void *xq, size_t n) {
    return (const int32_t *)((const uint8_t *)xq + kern_xq_c_offset(n));
}
static inline const float *kern_xq_d(const void *xq, size_t n) {
    return (const float *)((const uint8_t *)xq + kern_xq_d_offset(n));
}
/* An xq2 row: hi at 0, lo at kern_xq_bytes(n). */
static inline size_t kern_xq2_bytes(size_t n) { return 2 * kern_xq_bytes(n); }
/* What a lo quantizer reads (hi's q and d) and writes (lo's q, c, d). */
typedef struct {
    const int8_t *q;
    const float *d;
    int8_t *lo;
    int32_t *c;
    float *d_lo;
} kern_xq2_rows;
static inline kern_xq2_rows kern_xq2_rows_of(void *xq2, size_t n) {
    uint8_t *lo = (uint8_t *)xq2 + kern_xq_bytes(n);
    return (kern_xq2_rows){(const int8_t *)xq2, kern_xq_d(xq2, n), (int8_t *)lo,
                           (int32_t *)(lo + kern_xq_c_offset(n)), (float *)(lo + kern_xq_d_offset(n))};
}
/* lo's step for a block of hi scale d: d / 16, or 0 where hi rounded the
 * block to zeros (max|x| at or below KERN_XQ_TINY), so lo is zeros too. */
static inline float kern_xq_lo_step(float d) { return d > KERN_XQ_TINY / 127.0f ? d / 16.0f : 0.0f; }

/* Prefill kernels handle this many tokens per call, so that one load (and,
 * for Q4_0, one nibble unpacking) of a weight row feeds several tokens. */
#define KERN_NT 4

/* Matrix tiles (Intel AMX) for prefill with Q8_0/Q4_0 weights: one tile
 * instruction multiplies 16 weight rows by 16 tokens over a block of 32
 * (int8 x int8, summed exactly in int32), so a matmul runs in panels of
 * KERN_TILE rows by tiles of KERN_TILE tokens. The tile's second operand
 * wants each token's quants as a column, four bytes per int32 lane, so the
 * tokens' xq rows are first repacked, once per matmul, into "xt": per tile
 * of KERN_TILE tokens and per block of 32, 576 bytes (64-aligned when the
 * buffer is):
 *     int8 q[8][64] | float d[16]      q[k / 4][4 t + k % 4] = quant k of token t
 * and xq2 rows into "xt2", 1088 bytes per block:
 *     int8 q[8][64] | int8 lo[8][64] | float d[16]    (d: lo's scale, hi's / 16)
 * Tokens past n_tok (the last tile) are zeros, quants and scales alike. */
#define KERN_TILE 16
#define KERN_XT_BLOCK_BYTES (QK * KERN_TILE + KERN_TILE * sizeof(float))
#define KERN_XT2_BLOCK_BYTES (2 * QK * KERN_TILE + KERN_TILE * sizeof(float))
static inline size_t kern_xt_tile_bytes(size_t n) { return n / QK * KERN_XT_BLOCK_BYTES; }
static inline size_t kern_xt2_tile_bytes(size_t n) { return n / QK * KERN_XT2_BLOCK_BYTES; }
/* Per-thread scratch of the tile kernels: one panel of weights as int8, up
 * to two copies per block (Q4_0 against xt2: 16 w | w), plus its f32 scales
 * (blocks padded to a multiple of 16); a multiple of 64. */
static inline size_t kern_tile_scratch_bytes(size_t n) {
    return 2 * n * KERN_TILE + (n / QK + 15) / 16 * 16 * KERN_TILE * sizeof(float);
}

/* dot(row, x) over n elements for each weight type; dequantize a row. */
typedef float (*kern_dot_fn)(const void *row, const float *x, size_t n);
typedef void (*kern_dequant_fn)(const void *row, float *out, size_t n);
/* out[t] = dot(row, x + t * x_stride) for t < KERN_NT. */
typedef void (*kern_dot_nt_fn)(const void *row, const float *x, size_t x_stride, size_t n, float *out);
/* Writes kern_xq_bytes(n) bytes of xq for x[0..n). */
typedef void (*kern_quantize_fn)(const float *x, void *xq, size_t n);
/* Given the hi row of x at the start of xq2, writes the lo row after it. */
typedef void (*kern_quantize_lo_fn)(const float *x, void *xq2, size_t n);
/* dot(row, x) with x given as xq. */
typedef float (*kern_dotq_fn)(const void *row, const void *xq, size_t n);
/* out[t] = dot(row, xq + t * xq_stride) for t < KERN_NT. */
typedef void (*kern_dotq_nt_fn)(const void *row, const void *xq, size_t xq_stride, size_t n, float *out);
/* Writes tile `tile` of xt (64-aligned) from the xq rows of tokens
 * [KERN_TILE * tile, min(KERN_TILE * (tile + 1), n_tok)), xq_stride apart
 * (the xt2 forms: of xq2 rows). */
typedef void (*kern_pack_xt_fn)(const void *xq, size_t xq_stride, size_t n, int n_tok, int tile, void *xt);
/* y[t * y_stride + r] = dot(row r, token t) for r < n_rows, t < n_tok: the
 * rows from `rows`, row_bytes apart; the tokens as xt; `scratch` holds
 * kern_tile_scratch_bytes(n) bytes, 64-aligned. Configures the tiles on entry
 * and releases them on return, so any thread may call it. */
typedef void (*kern_gemm_fn)(const void *rows, size_t row_bytes, size_t n_rows, const void *xt, size_t n, int n_tok,
                             float *y, size_t y_stride, void *scratch);

/* One attention head for one query: out[0..hd) = sum over keys p < n_keys of
 * softmax_p(s_p) * v_p, s_p = scale * (q . k_p), soft-capped to
 * softcap * tanh(s_p / softcap) when softcap > 0; key and value rows
 * kv_stride floats apart; scores: n_keys floats of scratch. */
typedef void (*kern_attend_fn)(const float *q, const float *k, const float *v, size_t kv_stride, int hd, int n_keys,
                               float scale, float softcap, float *scores, float *out);

typedef struct {
    const char *name;
    kern_dot_fn dot[GGML_TYPE_BF16 + 1];
    kern_dequant_fn dequant[GGML_TYPE_BF16 + 1];
    kern_dot_nt_fn dot_nt[GGML_TYPE_BF16 + 1]; /* float types only (F32, F16, BF16) */
    kern_attend_fn attend;
    /* The integer path: set for Q8_0 and Q4_0, NULL for the float types. */
    kern_quantize_fn quantize_x;
    kern_quantize_lo_fn quantize_lo; /* NULL: kern_quantize_x2's plain C */
    kern_dotq_fn dotq[GGML_TYPE_BF16 + 1];
    kern_dotq_nt_fn dotq_nt[GGML_TYPE_BF16 + 1];
    /* The xq2 dots (set wherever dotq is): the same signatures, xq2 rows for xq. */
    kern_dotq_fn dotq2[GGML_TYPE_BF16 + 1];
    kern_dotq_nt_fn dotq2_nt[GGML_TYPE_BF16 + 1];
    /* Matrix tiles for prefill: set for Q8_0 and Q4_0 in the amx table only;
     * the *2 forms take xq2 rows and xt2 tiles. */
    kern_pack_xt_fn pack_xt, pack_xt2;
    kern_gemm_fn gemm[GGML_TYPE_BF16 + 1], gemm2[GGML_TYPE_BF16 + 1];
} kern_table;

/* The reference implementations (always available, used by the tests as the oracle). */
const kern_table *kern_scalar(void);
/* The table chosen for this CPU: probed once; CACTUS_KERNELS=scalar|avx2|avx512|amx|neon
 * forces one (a table the CPU or build lacks warns and falls back to the probe).
 * "amx" is the avx512 table plus the tile kernels, chosen where the CPU has
 * AMX-INT8 and the OS grants this process the tile state (Linux 5.16+
 * arch_prctl); CACTUS_KERNELS=avx512 (or below) keeps prefill off the tiles. */
const kern_table *kern_active(void);
/* Every table this build has and this CPU runs, the scalar reference first.
 * Returns how many (at most `max` are stored). */
int kern_available(const kern_table **out, int max);

/* The SIMD tables; each returns NULL where the build has no such code (other
 * architectures). Only call one after kern_available() said the CPU has it. */
const kern_table *kern_avx2(void);
const kern_table *kern_avx512(void);
const kern_table *kern_amx(void);
const kern_table *kern_neon(void);

/* The tile kernels (amx.c) the amx table adds to the avx512 one. */
void kern_amx_pack_xt(const void *xq, size_t xq_stride, size_t n, int n_tok, int tile, void *xt);
void kern_amx_pack_xt2(const void *xq2, size_t xq2_stride, size_t n, int n_tok, int tile, void *xt2);
void kern_amx_gemm_q8_0(const void *rows, size_t row_bytes, size_t n_rows, const void *xt, size_t n, int n_tok,
                        float *y, size_t y_stride, void *scratch);
void kern_amx_gemm_q4_0(const void *rows, size_t row_bytes, size_t n_rows, const void *xt, size_t n, int n_tok,
                        float *y, size_t y_stride, void *scratch);
void kern_amx_gemm2_q8_0(const void *rows, size_t row_bytes, size_t n_rows, const void *xt2, size_t n, int n_tok,
                         float *y, size_t y_stride, void *scratch);
void kern_amx_gemm2_q4_0(const void *rows, size_t row_bytes, size_t n_rows, const void *xt2, size_t n, int n_tok,
                         float *y, size_t y_stride, void *scratch);

/* A kern_dotq_nt_fn NAME as ONE (a kern_dotq_fn) token by token, for the
 * kernels whose weights cost little to reload (they stay in L1). */
#define KERN_DEF_DOTQ_NT_BY_TOKEN(NAME, ONE)                                                  \
    static void NAME(const void *row, const void *xq, size_t xq_stride, size_t n, float *out) { \
        for (int t = 0; t < KERN_NT; t++) out[t] = ONE(row, (const uint8_t *)xq + (size_t)t * xq_stride, n); \
    }

/* Writes the xq2 row of x[0..n) with kt's quantizers (the scalar ones
 * define the bytes; the SIMD ones match them). */
void kern_quantize_x2(const kern_table *kt, const float *x, void *xq2, size_t n);

/* CACTUS_EXACT_ACTIVATIONS=1: Q8_0/Q4_0 weights multiply f32 activations
 * instead of activations rounded to 8 or 12 bits. Slower; for validation and for
 * callers who want the reference numerics. Read once. */
int kern_exact_activations(void);

float kern_dot(ggml_type type, const void *row, const float *x, size_t n);
void kern_dequant(ggml_type type, const void *row, float *out, size_t n);
/* True for the weight types the kernels handle. */
int kern_supported(ggml_type type);

#endif
