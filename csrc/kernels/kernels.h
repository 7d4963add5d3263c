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
 * buffer is about 2.1 n bytes, built once per matmul and read by every row. */
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
 * Tokens past n_tok (the last tile) are zeros, quants and scales alike. */
#define KERN_TILE 16
#define KERN_XT_BLOCK_BYTES (QK * KERN_TILE + KERN_TILE * sizeof(float))
static inline size_t kern_xt_tile_bytes(size_t n) { return n / QK * KERN_XT_BLOCK_BYTES; }
/* Per-thread scratch of the tile kernels: one panel of weights as int8 plus
 * its f32 scales (blocks padded to a multiple of 16); a multiple of 64. */
static inline size_t kern_tile_scratch_bytes(size_t n) {
    return n * KERN_TILE + (n / QK + 15) / 16 * 16 * KERN_TILE * sizeof(float);
}

/* dot(row, x) over n elements for each weight type; dequantize a row. */
typedef float (*kern_dot_fn)(const void *row, const float *x, size_t n);
typedef void (*kern_dequant_fn)(const void *row, float *out, size_t n);
/* out[t] = dot(row, x + t * x_stride) for t < KERN_NT. */
typedef void (*kern_dot_nt_fn)(const void *row, const float *x, size_t x_stride, size_t n, float *out);
/* Writes kern_xq_bytes(n) bytes of xq for x[0..n). */
typedef void (*kern_quantize_fn)(const float *x, void *xq, size_t n);
/* dot(row, x) with x given as xq. */
typedef float (*kern_dotq_fn)(const void *row, const void *xq, size_t n);
/* out[t] = dot(row, xq + t * xq_stride) for t < KERN_NT. */
typedef void (*kern_dotq_nt_fn)(const void *row, const void *xq, size_t xq_stride, size_t n, float *out);
/* Writes tile `tile` of xt (64-aligned) from the xq rows of tokens
 * [KERN_TILE * tile, min(KERN_TILE * (tile + 1), n_tok)), xq_stride apart. */
typedef void (*kern_pack_xt_fn)(const void *xq, size_t xq_stride, size_t n, int n_tok, int tile, void *xt);
/* y[t * y_stride + r] = dot(row r, token t) for r < n_rows, t < n_tok: the
 * rows from `rows`, row_bytes apart; the tokens as xt; `scratch` holds
 * kern_tile_scratch_bytes(n) bytes, 64-aligned. Configures the tiles on entry
 * and releases them on return, so any thread may call it. */
typedef void (*kern_gemm_fn)(const void *rows, size_t row_bytes, size_t n_rows, const void *xt, size_t n, int n_tok,
                             float *y, size_t y_stride, void *scratch);

typedef struct {
    const char *name;
    kern_dot_fn dot[GGML_TYPE_BF16 + 1];
    kern_dequant_fn dequant[GGML_TYPE_BF16 + 1];
    kern_dot_nt_fn dot_nt[GGML_TYPE_BF16 + 1]; /* float types only (F32, F16, BF16) */
    /* The integer path: set for Q8_0 and Q4_0, NULL for the float types. */
    kern_quantize_fn quantize_x;
    kern_dotq_fn dotq[GGML_TYPE_BF16 + 1];
    kern_dotq_nt_fn dotq_nt[GGML_TYPE_BF16 + 1];
    /* Matrix tiles for prefill: set for Q8_0 and Q4_0 in the amx table only. */
    kern_pack_xt_fn pack_xt;
    kern_gemm_fn gemm[GGML_TYPE_BF16 + 1];
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
void kern_amx_gemm_q8_0(const void *rows, size_t row_bytes, size_t n_rows, const void *xt, size_t n, int n_tok,
                        float *y, size_t y_stride, void *scratch);
void kern_amx_gemm_q4_0(const void *rows, size_t row_bytes, size_t n_rows, const void *xt, size_t n, int n_tok,
                        float *y, size_t y_stride, void *scratch);

/* CACTUS_EXACT_ACTIVATIONS=1: Q8_0/Q4_0 weights multiply f32 activations
 * instead of activations rounded to 8 bits. Slower; for validation and for
 * callers who want the reference numerics. Read once. */
int kern_exact_activations(void);

float kern_dot(ggml_type type, const void *row, const float *x, size_t n);
void kern_dequant(ggml_type type, const void *row, float *out, size_t n);
/* True for the weight types the kernels handle. */
int kern_supported(ggml_type type);

#endif
