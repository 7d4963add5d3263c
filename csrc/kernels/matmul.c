/* The threaded matrix multiply over weight rows (declared in ops.h).
 *
 * Quantized weights (Q8_0, Q4_0): the activations are quantized once per
 * call into xq rows, or 12-bit xq2 rows where the weight asks for them
 * (cx_weight.act_bits; kernels.h), then every weight row is an integer dot
 * per block; the weights are never widened. Float weights (F32, F16, BF16): f32
 * dots, converting the weights in registers.
 *
 * Prefill (n_tok > 1) walks the rows of a thread's range in tiles that stay
 * in L2 while every group of KERN_NT tokens passes over them, and the
 * KERN_NT-token kernels load each weight once per group: each weight byte
 * comes from memory once per call, not once per token.
 *
 * With matrix tiles (the amx table) prefill of quantized weights instead
 * quantizes the tokens into xq (xq2) and repacks them into xt (xt2), then
 * each thread multiplies its panels of KERN_TILE rows by every token tile.
 *
 * A decode step of weights that read the same input (q, k, v; gate, up:
 * op_matmul_group) quantizes it once and runs one parallel-for over the rows
 * of them all. */
#include <pthread.h>
#include <stdlib.h>

#include "../ops.h"
#include "kernels.h"

/* Weight bytes per row tile: stays in L2 while every token group passes
 * (measured flat from 16 to 256 KiB for quantized rows; f32 rows gain a
 * little up to about 64 KiB). */
#define TILE_BYTES (64 * 1024)

typedef struct {
    const kern_table *kt;
    const cx_weight *w;
    const float *x;
    float *y;
    int n_tok;
    float *rowbuf;     /* [n_threads][n_in]: a widened row per thread (fallback only) */
    uint8_t *xq;       /* quantized weights: n_tok xq (x2: xq2) rows, xq_stride apart */
    size_t xq_stride;
    int x2;            /* 12-bit activations */
    uint8_t *xt;       /* matrix tiles: the tokens as xt (x2: xt2; kernels.h) */
    uint8_t *tile_scratch; /* [n_threads][kern_tile_scratch_bytes(n_in)] */
} matmul_job;

static int64_t tile_rows(const cx_weight *w) {
    int64_t r = (int64_t)(TILE_BYTES / w->row_bytes);
    return r > 0 ? r : 1;
}

/* Decode reads each weight byte once, and the dots do not keep up a demand
 * stream fast enough for the hardware prefetchers to fill memory's
 * pipeline: each row's dot first asks for the cache lines PREFETCH_BYTES
 * past its own row (TinyLlama shape, 2 threads: Q4_0 21.5 -> 34.4 tok/s
 * when this was added, 1 to 2 KiB ahead alike, 3 KiB less; Q8_0, measured
 * again with the streams below, 19.0 -> 20.2). */
#define PREFETCH_BYTES 1024

static inline void prefetch_row_ahead(const uint8_t *base, size_t off, size_t row_bytes, size_t end) {
    size_t p = (off + PREFETCH_BYTES) & ~(size_t)63, stop = off + PREFETCH_BYTES + row_bytes;
    if (stop > end) stop = end;
    for (; p < stop; p += 64) __builtin_prefetch(base + p, 0, 3);
}

/* A thread's decode rows are cut into this many parts, and it takes row i of
 * each part in turn: several sequential streams, which the core's prefetchers
 * follow each on its own, keep more lines in flight than one. Alternating
 * runs, same shape: Q4_0 31.6 tok/s with one stream, 35.4 with 2, 36.2 with
 * 3, 35.9 with 4 (3 against 2 again: 35.2 and 34.6); Q8_0 20.2, 20.6 with 2,
 * 20.3 with 3. */
static int64_t decode_streams(ggml_type type) { return type == GGML_TYPE_Q4_0 ? 3 : 2; }

static void rows_decode(const matmul_job *j, int64_t r0, int64_t r1) {
    const cx_weight *w = j->w;
    size_t n = (size_t)w->n_in, rb = w->row_bytes;
    kern_dotq_fn dotq = j->x2 ? j->kt->dotq2[w->type] : j->kt->dotq[w->type];
    int64_t k = decode_streams(w->type);
    if (r1 - r0 < 2 * k) k = 1;
    int64_t len = (r1 - r0) / k;
    for (int64_t i = 0; i < len; i++)
        for (int64_t part = 0; part < k; part++) {
            int64_t r = r0 + part * len + i;
            prefetch_row_ahead(w->data, (size_t)r * rb, rb, (size_t)(r0 + (part + 1) * len) * rb);
            j->y[r] = dotq(w->data + (size_t)r * rb, j->xq, n);
        }
    for (int64_t r = r0 + k * len; r < r1; r++) j->y[r] = dotq(w->data + (size_t)r * rb, j->xq, n);
}

static void rows_quant(const matmul_job *j, int64_t r0, int64_t r1) {
    const cx_weight *w = j->w;
    size_t n = (size_t)w->n_in, n_out = (size_t)w->n_out, xs = j->xq_stride;
    if (j->n_tok == 1) {
        rows_decode(j, r0, r1);
        return;
    }
    kern_dotq_fn dotq = j->x2 ? j->kt->dotq2[w->type] : j->kt->dotq[w->type];
    kern_dotq_nt_fn dotq_nt = j->x2 ? j->kt->dotq2_nt[w->type] : j->kt->dotq_nt[w->type];
    int64_t tile = tile_rows(w);
    for (int64_t rt = r0; rt < r1; rt += tile) {
        int64_t re = rt + tile < r1 ? rt + tile : r1;
        int t = 0;
        for (; t + KERN_NT <= j->n_tok; t += KERN_NT) {
            const uint8_t *xq = j->xq + (size_t)t * xs;
            for (int64_t r = rt; r < re; r++) {
                float out[KERN_NT];
                dotq_nt(w->data + (size_t)r * w->row_bytes, xq, xs, n, out);
                for (int k = 0; k < KERN_NT; k++) j->y[(size_t)(t + k) * n_out + (size_t)r] = out[k];
            }
        }
        for (; t < j->n_tok; t++)
            for (int64_t r = rt; r < re; r++)
                j->y[(size_t)t * n_out + (size_t)r] = dotq(w->data + (size_t)r * w->row_bytes, j->xq + (size_t)t * xs, n);
    }
}

static void rows_float(const matmul_job *j, int64_t r0, int64_t r1, int thread) {
    const cx_weight *w = j->w;
    size_t n = (size_t)w->n_in, n_out = (size_t)w->n_out;
    kern_dot_fn dot = j->kt->dot[w->type];
    if (j->n_tok == 1) {
        for (int64_t r = r0; r < r1; r++) j->y[r] = dot(w->data + (size_t)r * w->row_bytes, j->x, n);
        return;
    }
    kern_dot_nt_fn dot_nt = j->kt->dot_nt[w->type];
    float *buf = NULL; /* quantized weights without room for xq: widen one row at a time */
    int64_t tile = tile_rows(w);
    if (!dot_nt) {
        buf = j->rowbuf + (size_t)thread * n;
        dot = j->kt->dot[GGML_TYPE_F32], dot_nt = j->kt->dot_nt[GGML_TYPE_F32], tile = 1;
    }
    for (int64_t rt = r0; rt < r1; rt += tile) {
        int64_t re = rt + tile < r1 ? rt + tile : r1;
        if (buf) j->kt->dequant[w->type](w->data + (size_t)rt * w->row_bytes, buf, n);
        int t = 0;
        for (; t + KERN_NT <= j->n_tok; t += KERN_NT) {
            for (int64_t r = rt; r < re; r++) {
                float out[KERN_NT];
                dot_nt(buf ? (const void *)buf : w->data + (size_t)r * w->row_bytes, j->x + (size_t)t * n, n, n, out);
                for (int k = 0; k < KERN_NT; k++) j->y[(size_t)(t + k) * n_out + (size_t)r] = out[k];
            }
        }
        for (; t < j->n_tok; t++)
            for (int64_t r = rt; r < re; r++)
                j->y[(size_t)t * n_out + (size_t)r] =
                    dot(buf ? (const void *)buf : w->data + (size_t)r * w->row_bytes, j->x + (size_t)t * n, n);
    }
}

/* Panels [p0, p1) of KERN_TILE rows (the last one may be short). */
static void panels_tiles(void *p, int64_t p0, int64_t p1, int thread) {
    const matmul_job *j = p;
    const cx_weight *w = j->w;
    int64_t r0 = p0 * KERN_TILE, r1 = p1 * KERN_TILE < w->n_out ? p1 * KERN_TILE : w->n_out;
    size_t n = (size_t)w->n_in;
    kern_gemm_fn gemm = (j->x2 ? j->kt->gemm2 : j->kt->gemm)[w->type];
    gemm(w->data + (size_t)r0 * w->row_bytes, w->row_bytes, (size_t)(r1 - r0), j->xt, n, j->n_tok, j->y + r0,
         (size_t)w->n_out, j->tile_scratch + (size_t)thread * kern_tile_scratch_bytes(n));
}

static void matmul_rows(void *p, int64_t r0, int64_t r1, int thread) {
    const matmul_job *j = p;
    if (j->xq)
        rows_quant(j, r0, r1);
    else
        rows_float(j, r0, r1, thread);
}

/* Token t's xq (x2: xq2) row. */
static void quantize_row(const matmul_job *j, int64_t t) {
    size_t n = (size_t)j->w->n_in;
    const float *x = j->x + (size_t)t * n;
    uint8_t *xq = j->xq + (size_t)t * j->xq_stride;
    if (j->x2)
        kern_quantize_x2(j->kt, x, xq, n);
    else
        j->kt->quantize_x(x, xq, n);
}

static void quantize_tokens(void *p, int64_t t0, int64_t t1, int thread) {
    (void)thread;
    const matmul_job *j = p;
    for (int64_t t = t0; t < t1; t++) quantize_row(j, t);
}

/* Quantizes the tokens of xt tiles [t0, t1) and repacks them (x2: xt2). */
static void pack_tiles(void *p, int64_t t0, int64_t t1, int thread) {
    (void)thread;
    const matmul_job *j = p;
    size_t n = (size_t)j->w->n_in;
    for (int64_t tile = t0; tile < t1; tile++) {
        int64_t e = (tile + 1) * KERN_TILE < j->n_tok ? (tile + 1) * KERN_TILE : j->n_tok;
        for (int64_t t = tile * KERN_TILE; t < e; t++) quantize_row(j, t);
        (j->x2 ? j->kt->pack_xt2 : j->kt->pack_xt)(j->xq, j->xq_stride, n, j->n_tok, (int)tile, j->xt);
    }
}

/* xq space for a prefill chunk that does not fit in the caller's scratch:
 * one buffer per calling thread, grown (rarely: to the largest chunk seen)
 * and freed when the thread exits. Decode never needs it. */
static pthread_key_t g_xq_key;
static int g_xq_key_ok;
static pthread_once_t g_xq_once = PTHREAD_ONCE_INIT;
static _Thread_local void *t_xq;
static _Thread_local size_t t_xq_cap;

static void xq_key_init(void) { g_xq_key_ok = pthread_key_create(&g_xq_key, free) == 0; }

static void *xq_grow(size_t bytes) {
    if (bytes <= t_xq_cap) return t_xq;
    pthread_once(&g_xq_once, xq_key_init);
    /* Without the key the buffer would outlive its thread: use the chunked fallback. */
    if (!g_xq_key_ok) return NULL;
    void *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!p || pthread_setspecific(g_xq_key, p) != 0) {
        free(p); /* the key still holds the old buffer */
        return NULL;
    }
    free(t_xq);
    t_xq = p, t_xq_cap = bytes;
    return p;
}

/* Returns -1 when there is no room for even one xq row (then the caller
 * falls back to f32 activations). */
/* Multiply-adds of a job: small ones run on the calling thread. */
static double matmul_work(const matmul_job *j) {
    return (double)j->w->n_out * (double)j->w->n_in * (double)j->n_tok;
}

/* The scratch ((n_threads + 1) * n_in floats, aligned here to 64) holds one
 * xq2 row (about 4.2 n bytes) for any real width: decode does not allocate,
 * and a few prefill tokens fit too. Returns the aligned start; *rows: how
 * many rows of row_bytes fit. */
static uint8_t *scratch_xq(threadpool *tp, float *scratch, size_t n, size_t row_bytes, size_t *rows) {
    uintptr_t base = ((uintptr_t)scratch + 63) & ~(uintptr_t)63;
    size_t bytes = (size_t)(tp_n_threads(tp) + 1) * n * sizeof(float), skip = (size_t)(base - (uintptr_t)scratch);
    *rows = bytes > skip ? (bytes - skip) / row_bytes : 0;
    return (uint8_t *)base;
}

static int matmul_quant(threadpool *tp, matmul_job *j, float *scratch) {
    size_t n = (size_t)j->w->n_in, xs = j->x2 ? kern_xq2_bytes(n) : kern_xq_bytes(n), per;
    uint8_t *buf = scratch_xq(tp, scratch, n, xs, &per);
    if (per < (size_t)j->n_tok) {
        uint8_t *big = xq_grow((size_t)j->n_tok * xs);
        if (big) buf = big, per = (size_t)j->n_tok;
    }
    if (per == 0) return -1;
    if (per > (size_t)j->n_tok) per = (size_t)j->n_tok;
    /* Out of memory: chunks of what the scratch holds, streaming W once per chunk. */
    const float *x = j->x;
    float *y = j->y;
    int n_tok = j->n_tok;
    for (int t0 = 0; t0 < n_tok; t0 += (int)per) {
        j->n_tok = n_tok - t0 < (int)per ? n_tok - t0 : (int)per;
        j->x = x + (size_t)t0 * n;
        j->y = y + (size_t)t0 * (size_t)j->w->n_out;
        j->xq = buf;
        j->xq_stride = xs;
        if (j->n_tok == 1)
            quantize_row(j, 0);
        else
            tp_for_work(tp, j->n_tok, (double)j->n_tok * (double)n, quantize_tokens, j);
        tp_for_work(tp, j->w->n_out, matmul_work(j), matmul_rows, j);
    }
    return 0;
}

/* The tile path (kern_table.gemm) from TILE_MIN_TOKENS tokens on: below
 * that a token tile is mostly padding and the panel unpacking is spread
 * over too few tokens (measured on Sapphire Rapids, 2048 x 2048: the tiles
 * win from 3 tokens for Q8_0 and 5 for Q4_0, and take half the time of the
 * KERN_NT kernels at 8). Returns -1 without the tiles or the memory. */
#define TILE_MIN_TOKENS 5

static int matmul_tiles(threadpool *tp, matmul_job *j) {
    size_t n = (size_t)j->w->n_in, xs = j->x2 ? kern_xq2_bytes(n) : kern_xq_bytes(n);
    int64_t n_tiles = (j->n_tok + KERN_TILE - 1) / KERN_TILE, n_panels = (j->w->n_out + KERN_TILE - 1) / KERN_TILE;
    if (!(j->x2 ? j->kt->gemm2 : j->kt->gemm)[j->w->type] || j->n_tok < TILE_MIN_TOKENS) return -1;
    size_t xq_bytes = (size_t)j->n_tok * xs;
    size_t xt_bytes = (size_t)n_tiles * (j->x2 ? kern_xt2_tile_bytes(n) : kern_xt_tile_bytes(n));
    size_t bytes = xq_bytes + xt_bytes + (size_t)tp_n_threads(tp) * kern_tile_scratch_bytes(n);
    uint8_t *buf = xq_grow(bytes);
    if (!buf) return -1;
    j->xq = buf, j->xq_stride = xs; /* every size here is a multiple of 64 */
    j->xt = buf + xq_bytes;
    j->tile_scratch = j->xt + xt_bytes;
    tp_for_work(tp, n_tiles, (double)j->n_tok * (double)n, pack_tiles, j);
    tp_for_work(tp, n_panels, matmul_work(j), panels_tiles, j);
    return 0;
}

/* A decode step of a weight group: weight k owns rows [first[k], first[k+1])
 * of one parallel-for, so a thread streams from one matrix into the next
 * without a barrier between them. */
typedef struct {
    matmul_job j[OP_MATMUL_GROUP_MAX];
    int64_t first[OP_MATMUL_GROUP_MAX + 1];
    int n;
} group_job;

static void group_rows(void *p, int64_t r0, int64_t r1, int thread) {
    (void)thread;
    const group_job *g = p;
    for (int k = 0; k < g->n; k++) {
        int64_t a = r0 > g->first[k] ? r0 : g->first[k], b = r1 < g->first[k + 1] ? r1 : g->first[k + 1];
        if (a < b) rows_quant(&g->j[k], a - g->first[k], b - g->first[k]);
    }
}

/* Returns -1 when the group cannot share one xq (xq2) row (then each weight runs alone). */
static int group_decode(threadpool *tp, const kern_table *kt, const cx_weight *const *w, float *const *y, int n_w,
                        const float *x, float *scratch) {
    int x2 = w[0]->act_bits > 8;
    size_t n = (size_t)w[0]->n_in, xs = x2 ? kern_xq2_bytes(n) : kern_xq_bytes(n), rows;
    uint8_t *xq = scratch_xq(tp, scratch, n, xs, &rows);
    if (rows == 0) return -1;
    group_job g = {.n = n_w};
    double work = 0;
    for (int k = 0; k < n_w; k++) {
        if (w[k]->n_in != w[0]->n_in || (w[k]->act_bits > 8) != x2 || !kt->dotq[w[k]->type]) return -1;
        g.j[k] = (matmul_job){kt, w[k], x, y[k], 1, scratch, xq, xs, x2, NULL, NULL};
        g.first[k + 1] = g.first[k] + w[k]->n_out;
        work += matmul_work(&g.j[k]);
    }
    quantize_row(&g.j[0], 0);
    tp_for_work(tp, g.first[n_w], work, group_rows, &g);
    return 0;
}

void op_matmul_group(threadpool *tp, const cx_weight *const *w, float *const *y, int n_w, const float *x, int n_tok,
                     float *scratch) {
    const kern_table *kt = kern_active();
    if (n_tok == 1 && n_w <= OP_MATMUL_GROUP_MAX && !kern_exact_activations() &&
        group_decode(tp, kt, w, y, n_w, x, scratch) == 0)
        return;
    for (int k = 0; k < n_w; k++) op_matmul(tp, w[k], x, y[k], n_tok, scratch);
}

void op_matmul(threadpool *tp, const cx_weight *w, const float *x, float *y, int n_tok, float *scratch) {
    const kern_table *kt = kern_active();
    matmul_job j = {kt, w, x, y, n_tok, scratch, NULL, 0, w->act_bits > 8, NULL, NULL};
    if (n_tok <= 0) return;
    if (kt->dotq[w->type] && !kern_exact_activations() &&
        (matmul_tiles(tp, &j) == 0 || matmul_quant(tp, &j, scratch) == 0))
        return;
    tp_for_work(tp, w->n_out, matmul_work(&j), matmul_rows, &j);
}
