/* Byte-level BPE of one pre-tokenized piece: start from one symbol per byte
 * and keep merging the adjacent pair with the lowest merge rank (the leftmost
 * one on a tie) until no pair has a merge. This is the order Hugging Face's
 * BPE model merges in. Short pieces use flat arrays (cache-friendly; the
 * quadratic term is a memmove of a few dozen ints); long ones a heap over a
 * linked list, so a megabyte-long "word" stays O(n log n). */
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>

#include "tok_internal.h"

#define SMALL_PIECE 48
#define NO_RANK INT32_MAX
#define DEAD INT32_MIN

/* Rank and result of merging (l, r); NO_RANK when they do not merge. */
static int32_t pair_rank(const struct tokenizer *t, int32_t l, int32_t r, int32_t *merged) {
    if (l < 0 || r < 0) return NO_RANK;
    int32_t rank;
    if (!u64map_get(&t->merges, ((uint64_t)(uint32_t)l << 32) | (uint32_t)r, &rank, merged)) return NO_RANK;
    return rank;
}

/* Initial symbol of a byte; a byte without a token is -1 - byte (never merges). */
static int32_t byte_symbol(const struct tokenizer *t, unsigned char b) {
    int32_t id = t->byte_tok[b];
    return id >= 0 ? id : -1 - (int32_t)b;
}

/* Bytes that never occur in UTF-8; many vocabularies have no token for them. */
static bool never_in_utf8(int b) { return b == 0xC0 || b == 0xC1 || b >= 0xF5; }

/* Appends a final symbol. A byte without a token comes only from invalid
 * UTF-8 when it never occurs in UTF-8: it becomes U+FFFD, as the text would
 * be after Python's decode(errors="replace"); otherwise <unk> or nothing, as
 * Hugging Face's BPE does for a character outside the vocabulary. */
static int emit(const struct tokenizer *t, int32_t id, ivec *out) {
    if (id >= 0) return iv_push(out, id);
    if (never_in_utf8(-1 - id) && t->n_repl) {
        for (int i = 0; i < t->n_repl; i++)
            if (iv_push(out, t->repl[i]) < 0) return -1;
        return 0;
    }
    return t->unk >= 0 ? iv_push(out, t->unk) : 0;
}

static int bpe_small(const struct tokenizer *t, const unsigned char *s, size_t n, ivec *out) {
    int32_t ids[SMALL_PIECE], rank[SMALL_PIECE], res[SMALL_PIECE];
    size_t m = n;
    for (size_t i = 0; i < m; i++) ids[i] = byte_symbol(t, s[i]);
    for (size_t i = 0; i + 1 < m; i++) rank[i] = pair_rank(t, ids[i], ids[i + 1], &res[i]);
    while (m > 1) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < m; i++)
            if (rank[i] < rank[best]) best = i;
        if (rank[best] == NO_RANK) break;
        ids[best] = res[best];
        for (size_t i = best + 1; i + 1 < m; i++) ids[i] = ids[i + 1];
        for (size_t i = best + 1; i + 2 < m; i++) {
            rank[i] = rank[i + 1];
            res[i] = res[i + 1];
        }
        m--;
        if (best > 0) rank[best - 1] = pair_rank(t, ids[best - 1], ids[best], &res[best - 1]);
        if (best + 1 < m) rank[best] = pair_rank(t, ids[best], ids[best + 1], &res[best]);
    }
    for (size_t i = 0; i < m; i++)
        if (emit(t, ids[i], out) < 0) return -1;
    return 0;
}

typedef struct {
    int32_t *id, *next;
    minheap heap;
} bpe_work;

static int push_pair(const struct tokenizer *t, bpe_work *w, int32_t pos) {
    int32_t nx = w->next[pos], merged;
    if (nx < 0) return 0;
    int32_t rank = pair_rank(t, w->id[pos], w->id[nx], &merged);
    if (rank == NO_RANK) return 0;
    heap_item it = {((uint64_t)(uint32_t)rank << 32) | (uint32_t)pos, w->id[pos], w->id[nx]};
    return heap_push(&w->heap, it);
}

static int bpe_merge_all(const struct tokenizer *t, bpe_work *w, int32_t *prev, size_t n) {
    for (size_t i = 0; i + 1 < n; i++)
        if (push_pair(t, w, (int32_t)i) < 0) return -1;
    while (w->heap.n) {
        heap_item it = heap_pop(&w->heap);
        int32_t pos = (int32_t)(uint32_t)it.key, nx = w->next[pos];
        /* Entries go stale when a neighbour merged first; skip those. */
        if (w->id[pos] != it.x || nx < 0 || w->id[nx] != it.y) continue;
        int32_t merged = -1;
        pair_rank(t, it.x, it.y, &merged);
        w->id[pos] = merged;
        w->id[nx] = DEAD;
        w->next[pos] = w->next[nx];
        if (w->next[pos] >= 0) prev[w->next[pos]] = pos;
        if (prev[pos] >= 0 && push_pair(t, w, prev[pos]) < 0) return -1;
        if (push_pair(t, w, pos) < 0) return -1;
    }
    return 0;
}

static int bpe_large(const struct tokenizer *t, const unsigned char *s, size_t n, ivec *out) {
    if (n > INT32_MAX) return cx_error("tokenizer: piece too long");
    bpe_work w = {0};
    int32_t *prev = malloc(n * sizeof *prev);
    w.id = malloc(n * sizeof *w.id);
    w.next = malloc(n * sizeof *w.next);
    int rc = -1;
    if (!prev || !w.id || !w.next) {
        cx_error("tokenizer: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        w.id[i] = byte_symbol(t, s[i]);
        prev[i] = (int32_t)i - 1;
        w.next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    if (bpe_merge_all(t, &w, prev, n) < 0) goto done;
    rc = 0;
    for (int32_t i = 0; i >= 0 && rc == 0; i = w.next[i]) rc = emit(t, w.id[i], out);
done:
    heap_free(&w.heap);
    free(prev);
    free(w.id);
    free(w.next);
    return rc;
}

int bpe_encode_piece(const struct tokenizer *t, const char *s, size_t n, ivec *out) {
    if (n == 0) return 0;
    if (t->ignore_merges) {
        int32_t id = strmap_find(&t->normal, t, s, n);
        if (id >= 0) return iv_push(out, id);
    }
    const unsigned char *u = (const unsigned char *)s;
    if (n == 1) return emit(t, byte_symbol(t, u[0]), out);
    return n <= SMALL_PIECE ? bpe_small(t, u, n, out) : bpe_large(t, u, n, out);
}
