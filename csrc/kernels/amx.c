/* AMX-INT8 tile kernels for prefill with Q8_0 / Q4_0 weights (Sapphire
 * Rapids and later): the "amx" table is the avx512 one plus these.
 * Only this file is compiled with the AMX flags; dispatch.c probes the CPU
 * and asks the OS for the tile state first.
 *
 * One tdpbssd multiplies a 16 x 32 int8 tile of weights (16 rows, one block
 * of 32) by a 32 x 16 tile of quantized activations (16 tokens, xt layout in
 * kernels.h) into 16 x 16 exact int32 block sums: the same integers as the
 * scalar reference's per-block sums. Each block has its own weight and
 * activation scale, so the sums cannot stay in the tile across blocks: every
 * block's tile goes to memory and is scaled into f32 accumulators with
 * AVX-512 (acc[row] += sum[row] * dw[row] * dx, sixteen tokens a vector).
 * That scaling, the tile store and the tile loads share the core's vector
 * ports (measured: they do not overlap), and they, not the products, set the
 * speed; K = 32 per product is what the format's block size allows.
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
 * 4-5 weights (16 rows x 32 int8), 6-7 activations (8 rows x 64 bytes). */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

#define XB KERN_XT_BLOCK_BYTES /* xt bytes per token tile and block */

/* The GCC intrinsics' asm does not tell the compiler that tile loads read
 * memory (nor that ldtilecfg reads all 64 bytes): this keeps the stores that
 * fill a panel or the config ahead of them. */
static inline void memory_barrier(void) { __asm__ __volatile__("" ::: "memory"); }

static void tiles_configure(void) {
    _Alignas(64) tile_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 4; t++) c.rows[t] = KERN_TILE, c.colsb[t] = KERN_TILE * sizeof(int32_t);
    for (int t = 4; t < 6; t++) c.rows[t] = KERN_TILE, c.colsb[t] = QK;
    for (int t = 6; t < 8; t++) c.rows[t] = QK / 4, c.colsb[t] = KERN_TILE * 4;
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

void kern_amx_pack_xt(const void *xq, size_t xq_stride, size_t n, int n_tok, int tile, void *xt) {
    size_t nb = n / QK;
    int t0 = tile * KERN_TILE, nt = n_tok - t0 < KERN_TILE ? n_tok - t0 : KERN_TILE;
    uint8_t *out = (uint8_t *)xt + (size_t)tile * kern_xt_tile_bytes(n);
    const int8_t *q[KERN_TILE];
    const float *d[KERN_TILE];
    for (int t = 0; t < nt; t++) {
        q[t] = (const int8_t *)xq + (size_t)(t0 + t) * xq_stride;
        d[t] = kern_xq_d(q[t], n);
    }
    for (size_t ib = 0; ib < nb; ib++, out += XB) {
        __m256i in[KERN_TILE];
        __m512i rows[8];
        float dx[KERN_TILE];
        for (int t = 0; t < KERN_TILE; t++) {
            in[t] = t < nt ? _mm256_loadu_si256((const __m256i *)(q[t] + ib * QK)) : _mm256_setzero_si256();
            dx[t] = t < nt ? d[t][ib] : 0.0f;
        }
        transpose_16x8(in, rows);
        for (int r = 0; r < 8; r++) _mm512_store_si512(out + r * 64, rows[r]);
        _mm512_store_ps(out + 8 * 64, _mm512_loadu_ps(dx));
    }
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

/* Q4_0 rows as int8 rows of n (panel[r * n + k]), zeros past the last row. */
static void panel_q4_0(const uint8_t *rows, size_t row_bytes, int nr, size_t nb, int8_t *panel) {
    size_t n = nb * QK;
    for (int r = 0; r < KERN_TILE; r++) {
        int8_t *dst = panel + (size_t)r * n;
        if (r >= nr) {
            memset(dst, 0, n);
            continue;
        }
        const block_q4_0 *b = (const block_q4_0 *)(rows + (size_t)r * row_bytes);
        size_t ib = 0;
        for (; ib + 2 <= nb; ib += 2) _mm512_storeu_si512(dst + ib * QK, unpack_q4_pair(b + ib));
        if (ib < nb) _mm256_storeu_si256((__m256i *)(dst + ib * QK), unpack_q4(b + ib));
    }
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
    size_t lines_per_pair;
} panel;

static inline void prefetch_next(panel *p) {
    for (size_t i = 0; i < p->lines_per_pair && p->next < p->end; i++, p->next += 64)
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
#define ACC_STORE(r) _mm512_store_ps(out[r], acc##r);
#define SCALE_BLOCK(sums, dw_block, xt_block)             \
    do {                                                  \
        const int32_t *sb_ = (sums);                      \
        const float *dwb_ = (dw_block);                   \
        __m512 dx_ = _mm512_load_ps((xt_block) + 8 * 64); \
        FOR_ROWS(ACC_ADD)                                 \
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

/* The sums of a pair of blocks into tiles c0 and c1 (0-1 or 2-3). */
#define PAIR_DP(c0, c1, a, stride, step, xt)    \
    do {                                        \
        _tile_loadd(4, (a), (stride));          \
        _tile_loadd(6, (xt), 64);               \
        _tile_zero(c0);                         \
        _tile_dpbssd(c0, 4, 6);                 \
        _tile_loadd(5, (a) + (step), (stride)); \
        _tile_loadd(7, (xt) + XB, 64);          \
        _tile_zero(c1);                         \
        _tile_dpbssd(c1, 5, 7);                 \
    } while (0)

/* One panel of rows times one tile of tokens, over all nb blocks. The tile
 * unit runs a pair ahead: pair k + 1 is multiplied before pair k's sums are
 * stored and scaled, so the stores never wait for a product just issued. */
static void panel_times_tile(panel *p, const uint8_t *xt, size_t nb, float *y, size_t y_stride, int nr, int nt) {
    _Alignas(64) int32_t sums[2][KERN_TILE * KERN_TILE];
    _Alignas(64) float out[KERN_TILE][KERN_TILE];
    FOR_ROWS(ACC_DECL)
    const int8_t *a = p->a;
    const float *dw = p->dw;
    size_t stride = p->stride, step = p->step, np = nb / 2;
#define PAIR_A(k) (a + 2 * (k) * step)
#define PAIR_X(k) (xt + 2 * (k) * XB)
#define PAIR_SCALE(k)                                                        \
    do {                                                                     \
        SCALE_BLOCK(sums[0], block_scales(dw, 2 * (k)), PAIR_X(k));          \
        SCALE_BLOCK(sums[1], block_scales(dw, 2 * (k) + 1), PAIR_X(k) + XB); \
    } while (0)
    if (np > 0) PAIR_DP(0, 1, PAIR_A(0), stride, step, PAIR_X(0));
    for (size_t k = 0; k < np; k += 2) {
        prefetch_next(p);
        if (k + 1 < np) PAIR_DP(2, 3, PAIR_A(k + 1), stride, step, PAIR_X(k + 1));
        _tile_stored(0, sums[0], 64);
        _tile_stored(1, sums[1], 64);
        PAIR_SCALE(k);
        if (k + 1 < np) {
            prefetch_next(p);
            if (k + 2 < np) PAIR_DP(0, 1, PAIR_A(k + 2), stride, step, PAIR_X(k + 2));
            _tile_stored(2, sums[0], 64);
            _tile_stored(3, sums[1], 64);
            PAIR_SCALE(k + 1);
        }
    }
    if (nb & 1) {
        size_t ib = nb - 1;
        _tile_loadd(4, a + ib * step, stride);
        _tile_loadd(6, xt + ib * XB, 64);
        _tile_zero(0);
        _tile_dpbssd(0, 4, 6);
        _tile_stored(0, sums[0], 64);
        SCALE_BLOCK(sums[0], block_scales(dw, ib), xt + ib * XB);
    }
#undef PAIR_A
#undef PAIR_X
#undef PAIR_SCALE
    FOR_ROWS(ACC_STORE)
    store_transposed((const float(*)[KERN_TILE])out, y, y_stride, nr, nt);
}

/* How a weight type becomes a panel: its block size, how its rows unpack to
 * int8, and whether full panels are multiplied in place (Q8_0). */
typedef struct {
    size_t block_bytes;
    void (*unpack)(const uint8_t *rows, size_t row_bytes, int nr, size_t nb, int8_t *panel);
    int in_place;
} weight_kind;

/* Readies the panel of nr rows at w (scratch: int8 rows, then scales) and
 * points its prefetch at the next_rows rows after it. */
static panel panel_prepare(const weight_kind *k, const uint8_t *w, size_t row_bytes, int nr, size_t next_rows,
                           size_t nb, size_t pairs, uint8_t *scratch) {
    size_t n = nb * QK, next_lines = (next_rows * row_bytes + 63) / 64;
    const uint8_t *next = w + (size_t)nr * row_bytes;
    float *dw = (float *)(scratch + n * KERN_TILE);
    panel p = {(const int8_t *)scratch, n, QK, dw, next, next + next_rows * row_bytes, (next_lines + pairs - 1) / pairs};
    if (k->in_place && nr == KERN_TILE)
        p.a = (const int8_t *)(w + offsetof(block_q8_0, qs)), p.stride = row_bytes, p.step = k->block_bytes;
    else
        k->unpack(w, row_bytes, nr, nb, (int8_t *)scratch);
    panel_scales(w, row_bytes, nr, nb, k->block_bytes, dw);
    memory_barrier();
    return p;
}

static void gemm(const weight_kind *k, const void *rows, size_t row_bytes, size_t n_rows, const void *xt, size_t n,
                 int n_tok, float *y, size_t y_stride, void *scratch) {
    size_t nb = n / QK, tile_bytes = kern_xt_tile_bytes(n);
    size_t pairs = (size_t)(n_tok + KERN_TILE - 1) / KERN_TILE * (nb / 2 + 1); /* prefetch slots per panel */
    tiles_configure();
    for (size_t r0 = 0; r0 < n_rows; r0 += KERN_TILE) {
        int nr = n_rows - r0 < KERN_TILE ? (int)(n_rows - r0) : KERN_TILE;
        size_t after = n_rows - r0 - (size_t)nr;
        panel p = panel_prepare(k, (const uint8_t *)rows + r0 * row_bytes, row_bytes, nr,
                                after < KERN_TILE ? after : KERN_TILE, nb, pairs, scratch);
        for (int t0 = 0; t0 < n_tok; t0 += KERN_TILE) {
            int nt = n_tok - t0 < KERN_TILE ? n_tok - t0 : KERN_TILE;
            panel_times_tile(&p, (const uint8_t *)xt + (size_t)(t0 / KERN_TILE) * tile_bytes, nb,
                             y + (size_t)t0 * y_stride + r0, y_stride, nr, nt);
        }
    }
    /* Back to the initial state: the thread's context switches stop saving 8 KiB of tiles. */
    _tile_release();
}

static const weight_kind g_q8_0 = {sizeof(block_q8_0), panel_q8_0, 1};
static const weight_kind g_q4_0 = {sizeof(block_q4_0), panel_q4_0, 0};

void kern_amx_gemm_q8_0(const void *rows, size_t row_bytes, size_t n_rows, const void *xt, size_t n, int n_tok,
                        float *y, size_t y_stride, void *scratch) {
    gemm(&g_q8_0, rows, row_bytes, n_rows, xt, n, n_tok, y, y_stride, scratch);
}

void kern_amx_gemm_q4_0(const void *rows, size_t row_bytes, size_t n_rows, const void *xt, size_t n, int n_tok,
                        float *y, size_t y_stride, void *scratch) {
    gemm(&g_q4_0, rows, row_bytes, n_rows, xt, n, n_tok, y, y_stride, scratch);
}

#endif
