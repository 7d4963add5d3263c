/* AMX-INT8 tile kernels for prefill with Q8_0 / Q4_0 weights (Sapphire
 * Rapids and later): the "amx" table is the avx512 one plus these.
 * Only this file is compiled with the AMX flags; dispatch.c probes the CPU
 * and asks the OS for the tile state first.
 *
 * One tdpbssd multiplies a 16 x K int8 tile of weights (16 rows) by a K x 16
 * tile of activations (16 tokens, xt layouts in kernels.h) into 16 x 16
 * exact int32 sums: the same integers as the scalar reference's per-block
 * sums.
 *   - 8-bit activations (xt): K = 32, one block of weights by its quants.
 *   - 12-bit activations (xt2: hi and lo quants, x = (16 hi + lo) d / 16),
 *     each block's sum being 16 * dot(w, hi) + dot(w, lo): Q4_0 weights are
 *     4-bit, so 16 w still fits a byte, the panel holds each block as
 *     [16 w | w], and one K = 64 product against [hi | lo] gives the sum;
 *     Q8_0 weights use the whole byte, so two K = 32 products (w by hi, w by
 *     lo) are joined as 16 hi + lo in the integer lanes before scaling.
 * Each block has its own weight and activation scale, so the sums cannot
 * stay in the tile across blocks: every block's tile goes to memory and is
 * scaled into f32 accumulators with AVX-512 (acc[row] += sum[row] * dw[row]
 * * dx, sixteen tokens a vector). The tile loads, products and stores set
 * the speed (where the profile's samples land); K = 32 per product is what
 * the format's block size allows, and the 12-bit forms' second K = 32 has a
 * price (Q4_0, 2048 x 2048 by 512 tokens, one thread: 208 against 303
 * GMAC/s).
 *
 * A matmul runs panel by panel (16 weight rows), each panel against every
 * token tile. Q8_0 weights are multiplied in place (a tile load with the row
 * stride picks one block's 32 quants out of 16 rows); Q4_0 nibbles, and the
 * last rows of a matrix whose height is not a multiple of 16, are first
 * unpacked into int8 rows in per-thread scratch, and a panel's fp16 scales
 * are widened once; both serve every token tile. The mapped weights are
 * never written. */
#include "kernels.h"

#if defined(__x86_64__) && defined(__AMX_INT8__) /* built with -mamx-tile -mamx-int8 (CMake checks) */
#include <immintrin.h>
#include <string.h>

/* The 64-byte tile configuration (palette 1). Tile registers (the
 * intrinsics take them as literals): 0-3 sums (16 rows x 16 int32),
 * 4-5 weights (16 rows x K int8), 6-7 activations (K / 4 rows x 64 bytes). */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;


/* Forced inline: one copy per weight type and activation form, the flags folded away. */
#define SPECIALIZE static inline __attribute__((always_inline))

/* The GCC intrinsics' asm does not tell the compiler that tile loads read
 * memory (nor that ldtilecfg reads all 64 bytes): this keeps the stores that
 * fill a panel or the config ahead of them. */
static inline void memory_barrier(void) { __asm__ __volatile__("" ::: "memory"); }

static void tiles_configure(int k) {
    _Alignas(64) tile_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 4; t++) c.rows[t] = KERN_TILE, c.colsb[t] = KERN_TILE * sizeof(int32_t);
    for (int t = 4; t < 6; t++) c.rows[t] = KERN_TILE, c.colsb[t] = (uint16_t)k;
    for (int t = 6; t < 8; t++) c.rows[t] = (uint8_t)(k / 4), c.colsb[t] = KERN_TILE * 4;
    memory_barrier();
    _tile_loadconfig(&c);
}

/* ---- activations: xq rows to xt ---------------------------------------- */

/* Transposes 16 tokens x 8 int32 (one block of each token's quants, four
 * per lane) into 8 rows x 16 tokens: out[r] lane t = in[t] lane r. */
static void transpose_16x8(const __m256i in[KERN_TILE], __m512i out[8]) {
    __m512i z[8], a[8], b[8];
    for (int i = 0; i < 8; i++) z[i] = _mm512_inserti64x4(_mm512_castsi256_si512(in[i]), in[i + 8], 1);
    /* Two 8 x 8 transposes side by side, one per 256-bit half. */
    for (int i = 0; i < 8; i += 2) {
        a[i] = _mm512_unpacklo_epi32(z[i], z[i + 1]);
        a[i + 1] = _mm512_unpackhi_epi32(z[i], z[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        b[i] = _mm512_unpacklo_epi64(a[i], a[i + 2]);
        b[i + 1] = _mm512_unpackhi_epi64(a[i], a[i + 2]);
        b[i + 2] = _mm512_unpacklo_epi64(a[i + 1], a[i + 3]);
        b[i + 3] = _mm512_unpackhi_epi64(a[i + 1], a[i + 3]);
    }
    /* b[c] (c < 4) holds column c of tokens 0-3 / 8-11 in 128-bit lanes 0 / 2
     * and column c + 4 in lanes 1 / 3; b[c + 4] the same for tokens 4-7 / 12-15. */
    const __m512i lo = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0), hi = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
    for (int c = 0; c < 4; c++) {
        out[c] = _mm512_permutex2var_epi64(b[c], lo, b[c + 4]);
        out[c + 4] = _mm512_permutex2var_epi64(b[c], hi, b[c + 4]);
    }
}

/* One block of 16 tokens' quants (rows q[t] + off, zeros past nt) as 8 rows
 * of the xt layout at out. */
static void pack_block(const int8_t *const q[KERN_TILE], int nt, size_t off, uint8_t *out) {
    __m256i in[KERN_TILE];
    __m512i rows[8];
    for (int t = 0; t < KERN_TILE; t++)
        in[t] = t < nt ? _mm256_loadu_si256((const __m256i *)(q[t] + off)) : _mm256_setzero_si256();
    transpose_16x8(in, rows);
    for (int r = 0; r < 8; r++) _mm512_store_si512(out + r * 64, rows[r]);
}

/* Tile `tile` of xt (x2 = 0) or xt2 (x2 = 1) from the xq or xq2 rows. */
SPECIALIZE void pack(const void *xq, size_t xq_stride, size_t n, int n_tok, int tile, void *xt, int x2) {
    size_t nb = n / QK, xb = x2 ? KERN_XT2_BLOCK_BYTES : KERN_XT_BLOCK_BYTES, lo_off = x2 ? kern_xq_bytes(n) : 0;
    int t0 = tile * KERN_TILE, nt = n_tok - t0 < KERN_TILE ? n_tok - t0 : KERN_TILE;
    uint8_t *out = (uint8_t *)xt + (size_t)tile * nb * xb;
    const int8_t *hi[KERN_TILE], *lo[KERN_TILE];
    const float *d[KERN_TILE];
    for (int t = 0; t < nt; t++) {
        hi[t] = (const int8_t *)xq + (size_t)(t0 + t) * xq_stride;
        lo[t] = hi[t] + lo_off;
        d[t] = kern_xq_d(lo[t], n); /* xq2: lo's scale */
    }
    for (size_t ib = 0; ib < nb; ib++, out += xb) {
        pack_block(hi, nt, ib * QK, out);
        if (x2) pack_block(lo, nt, ib * QK, out + 8 * 64);
        /* Written in place, not through a local array: GCC vectorizes such an
         * array's fill with aligned 64-byte accesses it assumes the stack
         * gives, which ASan's relocated frames do not. */
        float *dx = (float *)(out + xb - KERN_TILE * sizeof(float));
        for (int t = 0; t < KERN_TILE; t++) dx[t] = t < nt ? d[t][ib] : 0.0f;
    }
}

void kern_amx_pack_xt(const void *xq, size_t xq_stride, size_t n, int n_tok, int tile, void *xt) {
    pack(xq, xq_stride, n, n_tok, tile, xt, 0);
}

void kern_amx_pack_xt2(const void *xq2, size_t xq2_stride, size_t n, int n_tok, int tile, void *xt2) {
    pack(xq2, xq2_stride, n, n_tok, tile, xt2, 1);
}

/* ---- weights: one panel of 16 rows ------------------------------------- */

/* The f32 scales of a panel, grouped by 16 blocks so that one block's 16
 * rows sit at fixed offsets: block ib of row r at dw[ib / 16][r][ib % 16]
 * (0 past the last row or block). Both block types start with their fp16
 * scale; each gather reads 16 blocks of one row (a lane takes the scale and
 * the block's next two bytes), so the panel is read row after row, in
 * address order, which the hardware prefetchers follow. */
#define DW_ROW_STRIDE 16 /* floats between two rows' scales of one block */
static inline const float *block_scales(const float *dw, size_t ib) {
    return dw + ib / 16 * KERN_TILE * DW_ROW_STRIDE + ib % 16;
}

static void panel_scales(const uint8_t *rows, size_t row_bytes, int nr, size_t nb, size_t block_bytes, float *dw) {
    __m512i offs = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                      _mm512_set1_epi32((int)block_bytes));
    for (int r = 0; r < KERN_TILE; r++) {
        const uint8_t *row = rows + (size_t)r * row_bytes;
        for (size_t g = 0; g * 16 < nb; g++) {
            __mmask16 live = r >= nr ? 0 : nb - g * 16 >= 16 ? 0xFFFF : (__mmask16)((1u << (nb - g * 16)) - 1u);
            __m512i h = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, offs, row + g * 16 * block_bytes, 1);
            _mm512_store_ps(dw + (g * KERN_TILE + (size_t)r) * DW_ROW_STRIDE, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h)));
        }
    }
}

/* Two Q4_0 blocks' weights as int8 in [-8, 7], in element order
 * [b0 lo | b0 hi | b1 lo | b1 hi] (each copy of a block's 16 bytes shifted
 * right by 0 or 4 in 16-bit lanes; the mask drops what crosses bytes). */
static inline __m512i unpack_q4_pair(const block_q4_0 *b) {
    __m256i v0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)b[0].qs));
    __m256i v1 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)b[1].qs));
    __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(v0), v1, 1);
    const long long h = 0x0004000400040004ll;
    __m512i nib = _mm512_and_si512(_mm512_srlv_epi16(v, _mm512_set_epi64(h, h, 0, 0, h, h, 0, 0)), _mm512_set1_epi8(0x0F));
    return _mm512_sub_epi8(nib, _mm512_set1_epi8(8));
}

static inline __m256i unpack_q4(const block_q4_0 *b) {
    __m128i v = _mm_loadu_si128((const __m128i *)b->qs);
    __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
    return _mm256_sub_epi8(nib, _mm256_set1_epi8(8));
}

/* 16 w of int8 w in [-8, 7], byte by byte (the 16-bit shift carries bits
 * across bytes; the mask drops them). */
static inline __m512i times16_512(__m512i w) {
    return _mm512_and_si512(_mm512_slli_epi16(w, 4), _mm512_set1_epi8((char)0xF0));
}
static inline __m256i times16_256(__m256i w) {
    return _mm256_and_si256(_mm256_slli_epi16(w, 4), _mm256_set1_epi8((char)0xF0));
}

/* Q4_0 rows as int8 rows, zeros past the last row: for xt, rows of n
 * (panel[r * n + k]); for xt2 (x2), rows of 2 n, each block as [16 w | w]
 * (block ib of row r at panel[r * 2 n + 64 ib]). */
SPECIALIZE void panel_q4_rows(const uint8_t *rows, size_t row_bytes, int nr, size_t nb, int8_t *panel, const int x2) {
    size_t len = (x2 ? 2 : 1) * nb * QK, bb = (x2 ? 2 : 1) * QK;
    for (int r = 0; r < KERN_TILE; r++) {
        int8_t *dst = panel + (size_t)r * len;
        if (r >= nr) {
            memset(dst, 0, len);
            continue;
        }
        const block_q4_0 *b = (const block_q4_0 *)(rows + (size_t)r * row_bytes);
        size_t ib = 0;
        for (; ib + 2 <= nb; ib += 2) {
            __m512i w = unpack_q4_pair(b + ib);
            if (x2) {
                __m512i w16 = times16_512(w);
                _mm512_storeu_si512(dst + ib * bb, _mm512_shuffle_i64x2(w16, w, 0x44));
                _mm512_storeu_si512(dst + (ib + 1) * bb, _mm512_shuffle_i64x2(w16, w, 0xEE));
            } else {
                _mm512_storeu_si512(dst + ib * bb, w);
            }
        }
        if (ib < nb) {
            __m256i w = unpack_q4(b + ib);
            if (x2) {
                _mm256_storeu_si256((__m256i *)(dst + ib * bb), times16_256(w));
                _mm256_storeu_si256((__m256i *)(dst + ib * bb + QK), w);
            } else {
                _mm256_storeu_si256((__m256i *)(dst + ib * bb), w);
            }
        }
    }
}
static void panel_q4_0(const uint8_t *rows, size_t row_bytes, int nr, size_t nb, int8_t *panel) {
    panel_q4_rows(rows, row_bytes, nr, nb, panel, 0);
}
static void panel2_q4_0(const uint8_t *rows, size_t row_bytes, int nr, size_t nb, int8_t *panel) {
    panel_q4_rows(rows, row_bytes, nr, nb, panel, 1);
}

/* Q8_0 rows copied the same way (only for a last panel of fewer than 16 rows). */
static void panel_q8_0(const uint8_t *rows, size_t row_bytes, int nr, size_t nb, int8_t *panel) {
    size_t n = nb * QK;
    for (int r = 0; r < KERN_TILE; r++) {
        int8_t *dst = panel + (size_t)r * n;
        const block_q8_0 *b = (const block_q8_0 *)(rows + (size_t)r * row_bytes);
        for (size_t ib = 0; ib < nb; ib++)
            _mm256_storeu_si256((__m256i *)(dst + ib * QK), r < nr ? _mm256_loadu_si256((const __m256i *)b[ib].qs)
                                                                  : _mm256_setzero_si256());
    }
}

/* ---- the product -------------------------------------------------------- */

/* A panel's weights for the tiles: block ib of row r at a + ib * step + r * stride.
 * [next, end): the next panel's bytes, prefetched a few lines per pair of
 * blocks while this one is multiplied (read cold, its first touch would
 * otherwise wait on memory with nothing else to do). */
typedef struct {
    const int8_t *a;
    size_t stride, step;
    const float *dw;
    const uint8_t *next, *end;
    size_t lines_per_step;
} panel;

static inline void prefetch_next(panel *p) {
    for (size_t i = 0; i < p->lines_per_step && p->next < p->end; i++, p->next += 64)
        _mm_prefetch((const char *)p->next, _MM_HINT_T1);
}

/* The sixteen f32 accumulators of a panel x tile, one per weight row (lanes:
 * tokens), are named variables rather than an array: the tile stores clobber
 * memory, and an array would be written back and reloaded around each. */
#define FOR_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define ACC_DECL(r) __m512 acc##r = _mm512_setzero_ps();
/* acc[r] += sums[r] * dw[r] * dx: one row of a block's 16 x 16 sums scaled in. */
#define ACC_ADD(r)                                                                         \
    acc##r = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(sb_ + (r) * KERN_TILE)), \
                             _mm512_mul_ps(dx_, _mm512_set1_ps(dwb_[(r) * DW_ROW_STRIDE])), acc##r);
/* The same for Q8_0's two sums of a block: 16 * hi + lo, joined in int32. */
#define ACC_ADD2(r)                                                                                         \
    acc##r = _mm512_fmadd_ps(                                                                               \
        _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_slli_epi32(_mm512_load_si512(sb_ + (r) * KERN_TILE), 4), \
                                            _mm512_load_si512(sl_ + (r) * KERN_TILE))),                     \
        _mm512_mul_ps(dx_, _mm512_set1_ps(dwb_[(r) * DW_ROW_STRIDE])), acc##r);
#define ACC_STORE(r) _mm512_store_ps(out[r], acc##r);
#define SCALE_BLOCK(sums, dw_block, xt_block)         \
    do {                                              \
        const int32_t *sb_ = (sums);                  \
        const float *dwb_ = (dw_block);               \
        __m512 dx_ = _mm512_load_ps((xt_block) + xd); \
        FOR_ROWS(ACC_ADD)                             \
    } while (0)
#define SCALE_BLOCK2(sums_hi, sums_lo, dw_block, xt_block) \
    do {                                                   \
        const int32_t *sb_ = (sums_hi), *sl_ = (sums_lo);  \
        const float *dwb_ = (dw_block);                    \
        __m512 dx_ = _mm512_load_ps((xt_block) + xd);      \
        FOR_ROWS(ACC_ADD2)                                 \
    } while (0)

/* y[t * y_stride + r] = out[r][t] for r < nr, t < nt: a 16 x 16 transpose in
 * registers (pairs of lanes, then of 64-bit halves, then of 128-bit
 * quarters), one masked store per token. */
static void store_transposed(const float out[KERN_TILE][KERN_TILE], float *y, size_t y_stride, int nr, int nt) {
    __m512 a[16], b[16], c[16];
    for (int i = 0; i < 16; i++) a[i] = _mm512_load_ps(out[i]);
    for (int i = 0; i < 16; i += 2) b[i] = _mm512_unpacklo_ps(a[i], a[i + 1]), b[i + 1] = _mm512_unpackhi_ps(a[i], a[i + 1]);
    for (int i = 0; i < 16; i += 4) {
        __m512d b0 = _mm512_castps_pd(b[i]), b1 = _mm512_castps_pd(b[i + 1]);
        __m512d b2 = _mm512_castps_pd(b[i + 2]), b3 = _mm512_castps_pd(b[i + 3]);
        c[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(b0, b2)), c[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(b0, b2));
        c[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b1, b3)), c[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b1, b3));
    }
    /* c[4 k + m], 128-bit lane l: column 4 l + m of rows 4 k .. 4 k + 3. */
    __mmask16 rows = (__mmask16)((1u << nr) - 1u);
    for (int m = 0; m < 4; m++) {
        __m512 d0 = _mm512_shuffle_f32x4(c[m], c[4 + m], 0x44), d1 = _mm512_shuffle_f32x4(c[m], c[4 + m], 0xEE);
        __m512 d2 = _mm512_shuffle_f32x4(c[8 + m], c[12 + m], 0x44), d3 = _mm512_shuffle_f32x4(c[8 + m], c[12 + m], 0xEE);
        __m512 col[4] = {_mm512_shuffle_f32x4(d0, d2, 0x88), _mm512_shuffle_f32x4(d0, d2, 0xDD),
                         _mm512_shuffle_f32x4(d1, d3, 0x88), _mm512_shuffle_f32x4(d1, d3, 0xDD)};
        for (int l = 0; l < 4; l++)
            if (4 * l + m < nt) _mm512_mask_storeu_ps(y + (size_t)(4 * l + m) * y_stride, rows, col[l]);
    }
}

/* One step of a panel x tile into sum tiles c0 and c1 (0-1 or 2-3): blocks
 * 2k and 2k + 1, a product each; or, Q8_0 against xt2 (two), block k's hi
 * and lo products. */
#define STEP_DP(c0, c1, k)                                       \
    do {                                                         \
        if (two) {                                               \
            _tile_loadd(4, a + (k) * step, stride);              \
            _tile_loadd(6, xt + (k) * xb, 64);                   \
            _tile_zero(c0);                                      \
            _tile_dpbssd(c0, 4, 6);                              \
            _tile_loadd(7, xt + (k) * xb + 8 * 64, 64);          \
            _tile_zero(c1);                                      \
            _tile_dpbssd(c1, 4, 7);                              \
        } else {                                                 \
            _tile_loadd(4, a + 2 * (k) * step, stride);          \
            _tile_loadd(6, xt + 2 * (k) * xb, 64);               \
            _tile_zero(c0);                                      \
            _tile_dpbssd(c0, 4, 6);                              \
            _tile_loadd(5, a + (2 * (k) + 1) * step, stride);    \
            _tile_loadd(7, xt + (2 * (k) + 1) * xb, 64);         \
            _tile_zero(c1);                                      \
            _tile_dpbssd(c1, 5, 7);                              \
        }                                                        \
    } while (0)
/* Scales step k's two stored sum tiles into the accumulators. */
#define STEP_SCALE(k)                                                                      \
    do {                                                                                   \
        if (two) {                                                                         \
            SCALE_BLOCK2(sums[0], sums[1], block_scales(dw, (k)), xt + (k) * xb);          \
        } else {                                                                           \
            SCALE_BLOCK(sums[0], block_scales(dw, 2 * (k)), xt + 2 * (k) * xb);            \
            SCALE_BLOCK(sums[1], block_scales(dw, 2 * (k) + 1), xt + (2 * (k) + 1) * xb);  \
        }                                                                                  \
    } while (0)

/* One panel of rows times one tile of tokens, over all nb blocks (q8, x2: the
 * weight type and activation form, constants at each call). The tile unit
 * runs a step ahead: step k + 1 is multiplied before step k's sums are
 * stored and scaled, so the stores never wait for a product just issued. */
SPECIALIZE void panel_times_tile(panel *p, const uint8_t *xt, size_t nb, float *y, size_t y_stride, int nr, int nt,
                                    const int q8, const int x2) {
    _Alignas(64) int32_t sums[2][KERN_TILE * KERN_TILE];
    _Alignas(64) float out[KERN_TILE][KERN_TILE];
    FOR_ROWS(ACC_DECL)
    const int two = q8 && x2;
    const size_t xb = x2 ? KERN_XT2_BLOCK_BYTES : KERN_XT_BLOCK_BYTES, xd = (x2 ? 2 : 1) * QK * KERN_TILE;
    const int8_t *a = p->a;
    const float *dw = p->dw;
    size_t stride = p->stride, step = p->step, ns = two ? nb : nb / 2;
    if (ns > 0) STEP_DP(0, 1, 0);
    for (size_t k = 0; k < ns; k += 2) {
        prefetch_next(p);
        if (k + 1 < ns) STEP_DP(2, 3, k + 1);
        _tile_stored(0, sums[0], 64);
        _tile_stored(1, sums[1], 64);
        STEP_SCALE(k);
        if (k + 1 < ns) {
            prefetch_next(p);
            if (k + 2 < ns) STEP_DP(0, 1, k + 2);
            _tile_stored(2, sums[0], 64);
            _tile_stored(3, sums[1], 64);
            STEP_SCALE(k + 1);
        }
    }
    if (!two && (nb & 1)) {
        size_t ib = nb - 1;
        _tile_loadd(4, a + ib * step, stride);
        _tile_loadd(6, xt + ib * xb, 64);
        _tile_zero(0);
        _tile_dpbssd(0, 4, 6);
        _tile_stored(0, sums[0], 64);
        SCALE_BLOCK(sums[0], block_scales(dw, ib), xt + ib * xb);
    }
    FOR_ROWS(ACC_STORE)
    store_transposed((const float(*)[KERN_TILE])out, y, y_stride, nr, nt);
}

/* How a weight type becomes a panel: its block size, how its rows unpack to
 * int8 (and how many bytes a block takes there), and whether full panels are
 * multiplied in place (Q8_0). */
typedef struct {
    size_t block_bytes;
    void (*unpack)(const uint8_t *rows, size_t row_bytes, int nr, size_t nb, int8_t *panel);
    size_t unpacked_block;
    int in_place;
} weight_kind;

/* Readies the panel of nr rows at w (scratch: int8 rows, then scales) and
 * points its prefetch at the next_rows rows after it. */
static panel panel_prepare(const weight_kind *k, const uint8_t *w, size_t row_bytes, int nr, size_t next_rows,
                           size_t nb, size_t steps, uint8_t *scratch) {
    size_t next_lines = (next_rows * row_bytes + 63) / 64;
    const uint8_t *next = w + (size_t)nr * row_bytes;
    float *dw = (float *)(scratch + 2 * nb * QK * KERN_TILE);
    panel p = {(const int8_t *)scratch, nb * k->unpacked_block, k->unpacked_block, dw, next,
               next + next_rows * row_bytes, (next_lines + steps - 1) / steps};
    if (k->in_place && nr == KERN_TILE)
        p.a = (const int8_t *)(w + offsetof(block_q8_0, qs)), p.stride = row_bytes, p.step = k->block_bytes;
    else
        k->unpack(w, row_bytes, nr, nb, (int8_t *)scratch);
    panel_scales(w, row_bytes, nr, nb, k->block_bytes, dw);
    memory_barrier();
    return p;
}

SPECIALIZE void gemm(const weight_kind *k, const void *rows, size_t row_bytes, size_t n_rows, const void *xt,
                        size_t n, int n_tok, float *y, size_t y_stride, void *scratch, const int q8, const int x2) {
    size_t nb = n / QK, tile_bytes = nb * (x2 ? KERN_XT2_BLOCK_BYTES : KERN_XT_BLOCK_BYTES);
    size_t steps = (size_t)(n_tok + KERN_TILE - 1) / KERN_TILE * ((q8 && x2 ? nb : nb / 2) + 1); /* prefetch slots */
    tiles_configure(x2 && !q8 ? 2 * QK : QK); /* Q4_0 against xt2: [16 w | w] by [hi | lo] */
    for (size_t r0 = 0; r0 < n_rows; r0 += KERN_TILE) {
        int nr = n_rows - r0 < KERN_TILE ? (int)(n_rows - r0) : KERN_TILE;
        size_t after = n_rows - r0 - (size_t)nr;
        panel p = panel_prepare(k, (const uint8_t *)rows + r0 * row_bytes, row_bytes, nr,
                                after < KERN_TILE ? after : KERN_TILE, nb, steps, scratch);
        for (int t0 = 0; t0 < n_tok; t0 += KERN_TILE) {
            int nt = n_tok - t0 < KERN_TILE ? n_tok - t0 : KERN_TILE;
            panel_times_tile(&p, (const uint8_t *)xt + (size_t)(t0 / KERN_TILE) * tile_bytes, nb,
                             y + (size_t)t0 * y_stride + r0, y_stride, nr, nt, q8, x2);
        }
    }
    /* Back to the initial state: the thread's context switches stop saving 8 KiB of tiles. */
    _tile_release();
}

static const weight_kind g_q8_0 = {sizeof(block_q8_0), panel_q8_0, QK, 1};
static const weight_kind g_q4_0 = {sizeof(block_q4_0), panel_q4_0, QK, 0};
static const weight_kind g2_q4_0 = {sizeof(block_q4_0), panel2_q4_0, 2 * QK, 0};

#define DEF_GEMM(NAME, KIND, Q8, X2)                                                                        \
    void NAME(const void *rows, size_t row_bytes, size_t n_rows, const void *xt, size_t n, int n_tok, float *y, \
              size_t y_stride, void *scratch) {                                                                  \
        gemm(KIND, rows, row_bytes, n_rows, xt, n, n_tok, y, y_stride, scratch, Q8, X2);                          \
    }
DEF_GEMM(kern_amx_gemm_q8_0, &g_q8_0, 1, 0)
DEF_GEMM(kern_amx_gemm_q4_0, &g_q4_0, 0, 0)
DEF_GEMM(kern_amx_gemm2_q8_0, &g_q8_0, 1, 1)
DEF_GEMM(kern_amx_gemm2_q4_0, &g2_q4_0, 0, 1)

#endif
