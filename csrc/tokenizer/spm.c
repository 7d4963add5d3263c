/* SentencePiece BPE (the "llama" tokenizer model): start from one symbol per
 * character and repeatedly merge the adjacent pair whose concatenation is the
 * vocabulary piece with the highest score (leftmost on a tie). Symbols left
 * without a vocabulary entry fall back to <0xNN> byte tokens. Long chunks use
 * a heap, so even a huge input without spaces stays O(n log n). */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "unicode.h"

typedef struct {
    const struct tokenizer *t;
    const char *s;
    int32_t *start, *len, *prev, *next;
    minheap heap;
} spm_work;

/* Maps a score to a key that sorts higher scores first. */
static uint32_t score_key(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u); /* now ascending with f */
    return ~u;
}

static int try_pair(spm_work *w, int32_t left) {
    if (left < 0) return 0;
    int32_t right = w->next[left];
    if (right < 0) return 0;
    int32_t size = w->len[left] + w->len[right];
    int32_t id = strmap_find(&w->t->normal, w->t, w->s + w->start[left], (size_t)size);
    if (id < 0) return 0;
    heap_item it = {((uint64_t)score_key(w->t->score[id]) << 32) | (uint32_t)left, left, size};
    return heap_push(&w->heap, it);
}

static int merge_all(spm_work *w, int32_t n) {
    for (int32_t i = 0; i + 1 < n; i++)
        if (try_pair(w, i) < 0) return -1;
    while (w->heap.n) {
        heap_item it = heap_pop(&w->heap);
        int32_t left = it.x, right = w->next[left];
        /* Stale when either side changed since the pair was queued. */
        if (w->len[left] == 0 || right < 0 || w->len[left] + w->len[right] != it.y) continue;
        w->len[left] += w->len[right];
        w->len[right] = 0;
        w->next[left] = w->next[right];
        if (w->next[left] >= 0) w->prev[w->next[left]] = left;
        if (try_pair(w, w->prev[left]) < 0 || try_pair(w, left) < 0) return -1;
    }
    return 0;
}

/* A final symbol: its token, else its bytes' <0xNN> tokens, else (a
 * vocabulary without byte fallback) one <unk> for the character. */
static int emit_symbol(const struct tokenizer *t, const char *s, size_t n, ivec *out) {
    int32_t id = strmap_find(&t->normal, t, s, n);
    if (id >= 0) return iv_push(out, id);
    bool all_bytes = true;
    for (size_t i = 0; i < n; i++) all_bytes = all_bytes && t->byte_tok[(unsigned char)s[i]] >= 0;
    if (!all_bytes) return t->unk >= 0 ? iv_push(out, t->unk) : 0;
    for (size_t i = 0; i < n; i++)
        if (iv_push(out, t->byte_tok[(unsigned char)s[i]]) < 0) return -1;
    return 0;
}

/* Heap version over one chunk s[0..n). */
static int spm_large(const struct tokenizer *t, const char *s, size_t n, ivec *out) {
    if (n > INT32_MAX / 4) return cx_error("tokenizer: text too long");
    spm_work w = {.t = t, .s = s};
    int32_t *mem = malloc(4 * n * sizeof *mem);
    if (!mem) return cx_error("tokenizer: out of memory");
    w.start = mem, w.len = mem + n, w.prev = mem + 2 * n, w.next = mem + 3 * n;
    int32_t m = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = utf8_next(s + i, n - i, &cp);
        w.start[m] = (int32_t)i;
        w.len[m] = (int32_t)l;
        w.prev[m] = m - 1;
        w.next[m] = m + 1;
        m++;
        i += l;
    }
    w.next[m - 1] = -1;
    int rc = merge_all(&w, m);
    for (int32_t i = 0; rc == 0 && i >= 0; i = w.next[i]) rc = emit_symbol(t, s + w.start[i], (size_t)w.len[i], out);
    heap_free(&w.heap);
    free(mem);
    return rc;
}

#define SMALL_CHUNK 48

/* The token for s[a, a+len) (two adjacent symbols), or -1. */
static int32_t pair_token(const struct tokenizer *t, const char *s, int32_t a, int32_t len) {
    return strmap_find(&t->normal, t, s + a, (size_t)len);
}

/* Flat-array version for short chunks: the same choice (highest score,
 * leftmost on a tie) without a heap. pid[i] is the token symbols i and i+1
 * would merge into, or -1. */
static int spm_small(const struct tokenizer *t, const char *s, size_t n, ivec *out) {
    int32_t start[SMALL_CHUNK + 1], pid[SMALL_CHUNK], m = 0;
    for (size_t i = 0; i < n; m++) {
        uint32_t cp;
        start[m] = (int32_t)i;
        i += utf8_next(s + i, n - i, &cp);
    }
    start[m] = (int32_t)n;
    for (int32_t i = 0; i + 1 < m; i++) pid[i] = pair_token(t, s, start[i], start[i + 2] - start[i]);
    while (m > 1) {
        int32_t best = -1;
        for (int32_t i = 0; i + 1 < m; i++)
            if (pid[i] >= 0 && (best < 0 || t->score[pid[i]] > t->score[pid[best]])) best = i;
        if (best < 0) break;
        for (int32_t i = best + 1; i < m; i++) start[i] = start[i + 1];
        for (int32_t i = best + 1; i + 2 < m; i++) pid[i] = pid[i + 1];
        m--;
        if (best > 0) pid[best - 1] = pair_token(t, s, start[best - 1], start[best + 1] - start[best - 1]);
        if (best + 1 < m) pid[best] = pair_token(t, s, start[best], start[best + 2] - start[best]);
    }
    for (int32_t i = 0; i < m; i++)
        if (emit_symbol(t, s + start[i], (size_t)(start[i + 1] - start[i]), out) < 0) return -1;
    return 0;
}

static int spm_chunk(const struct tokenizer *t, const char *s, size_t n, ivec *out) {
    if (n == 0) return 0;
    return n <= SMALL_CHUNK ? spm_small(t, s, n, out) : spm_large(t, s, n, out);
}

static bool is_meta_space(const char *s, size_t i, size_t n) {
    return i + 3 <= n && (unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x96 &&
           (unsigned char)s[i + 2] == 0x81;
}

/* When no mergeable token has U+2581 after another character (t->spm_split),
 * no merge can cross the start of a "U+2581... word", so words are encoded one
 * by one: same result, and short words stay in cache. */
int spm_encode_segment(const struct tokenizer *t, const char *s, size_t n, ivec *out) {
    if (!t->spm_split) return spm_chunk(t, s, n, out);
    size_t chunk = 0;
    bool prev_meta = true;
    for (size_t i = 0; i < n;) {
        bool meta = is_meta_space(s, i, n);
        if (meta && !prev_meta) {
            if (spm_chunk(t, s + chunk, i - chunk, out) < 0) return -1;
            chunk = i;
        }
        prev_meta = meta;
        i += meta ? 3 : 1;
    }
    return spm_chunk(t, s + chunk, n - chunk, out);
}
