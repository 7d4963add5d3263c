/* The small containers the tokenizer needs: an open-addressing map from
 * token text to id, a map from 64-bit keys to id pairs, and a binary heap. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

/* A fast non-cryptographic hash (multiply-mix over 8-byte words); token
 * texts are short, so the per-call cost matters more than the quality. */
uint64_t tok_hash_bytes(const char *s, size_t n) {
    const uint64_t m = 0x9E3779B97F4A7C15ull;
    uint64_t h = 0x243F6A8885A308D3ull ^ (n * m);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * m;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, s, n);
        h = (h ^ w) * m;
        h ^= h >> 29;
    }
    h *= m;
    return h ^ (h >> 32);
}

static size_t table_size(size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2 + 1) cap *= 2; /* load factor at most 1/2 */
    return cap;
}

int strmap_init(strmap *m, size_t expected) {
    size_t cap = table_size(expected);
    m->slots = calloc(cap, sizeof *m->slots);
    m->hashes = calloc(cap, sizeof *m->hashes);
    m->mask = (uint32_t)(cap - 1);
    m->count = 0;
    if (!m->slots || !m->hashes) {
        strmap_free(m);
        return cx_error("tokenizer: out of memory");
    }
    return 0;
}

void strmap_free(strmap *m) {
    free(m->slots);
    free(m->hashes);
    memset(m, 0, sizeof *m);
}

/* Probes for s; returns the slot holding it or the empty slot where it would go. */
static uint32_t strmap_probe(const strmap *m, const struct tokenizer *t, const char *s, size_t n, uint32_t h) {
    for (uint32_t i = h & m->mask;; i = (i + 1) & m->mask) {
        uint32_t v = m->slots[i];
        if (v == 0) return i;
        if (m->hashes[i] == h) {
            int32_t id = (int32_t)(v - 1);
            if (t->text_len[id] == n && memcmp(tok_text(t, id), s, n) == 0) return i;
        }
    }
}

int32_t strmap_find(const strmap *m, const struct tokenizer *t, const char *s, size_t n) {
    if (!m->slots) return -1;
    uint32_t h = (uint32_t)tok_hash_bytes(s, n);
    uint32_t v = m->slots[strmap_probe(m, t, s, n, h)];
    return v ? (int32_t)(v - 1) : -1;
}

int strmap_add(strmap *m, const struct tokenizer *t, int32_t id) {
    if ((size_t)(m->count + 1) * 2 > (size_t)m->mask + 1) return cx_error("tokenizer: map over capacity");
    const char *s = tok_text(t, id);
    size_t n = t->text_len[id];
    uint32_t h = (uint32_t)tok_hash_bytes(s, n);
    uint32_t i = strmap_probe(m, t, s, n, h);
    if (m->slots[i]) return 0;
    m->slots[i] = (uint32_t)id + 1;
    m->hashes[i] = h;
    m->count++;
    return 0;
}

int u64map_init(u64map *m, size_t expected) {
    size_t cap = table_size(expected);
    m->keys = calloc(cap, sizeof *m->keys);
    m->a = malloc(cap * sizeof *m->a);
    m->b = malloc(cap * sizeof *m->b);
    m->mask = cap - 1;
    m->count = 0;
    if (!m->keys || !m->a || !m->b) {
        u64map_free(m);
        return cx_error("tokenizer: out of memory");
    }
    return 0;
}

void u64map_free(u64map *m) {
    free(m->keys);
    free(m->a);
    free(m->b);
    memset(m, 0, sizeof *m);
}

static int u64map_grow(u64map *m) {
    u64map bigger;
    if (u64map_init(&bigger, (size_t)(m->mask + 1)) < 0) return -1;
    for (uint64_t i = 0; i <= m->mask; i++)
        if (m->keys[i]) u64map_put(&bigger, m->keys[i] - 1, m->a[i], m->b[i]);
    u64map_free(m);
    *m = bigger;
    return 0;
}

int u64map_put(u64map *m, uint64_t key, int32_t a, int32_t b) {
    if ((m->count + 1) * 2 > m->mask + 1 && u64map_grow(m) < 0) return -1;
    uint64_t k = key + 1;
    for (uint64_t i = u64map_slot(k) & m->mask;; i = (i + 1) & m->mask) {
        if (m->keys[i] == k) return 0;
        if (m->keys[i] == 0) {
            m->keys[i] = k;
            m->a[i] = a;
            m->b[i] = b;
            m->count++;
            return 1;
        }
    }
}

int heap_push(minheap *h, heap_item it) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        heap_item *v = realloc(h->v, cap * sizeof *v);
        if (!v) return cx_error("tokenizer: out of memory");
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->v[parent].key <= it.key) break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = it;
    return 0;
}

heap_item heap_pop(minheap *h) {
    heap_item top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && h->v[c + 1].key < h->v[c].key) c++;
        if (h->v[c].key >= last.key) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

void heap_free(minheap *h) {
    free(h->v);
    memset(h, 0, sizeof *h);
}
