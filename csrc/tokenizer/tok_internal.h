/* Private to csrc/tokenizer: the tokenizer struct, the small hash maps and
 * heap the algorithms share, and the entry points between the files. */
#ifndef CACTUS_TOK_INTERNAL_H
#define CACTUS_TOK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../util.h"
#include "pretokenize.h"

/* GGUF token types. */
enum {
    TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5, TT_BYTE = 6,
};

/* ---- string -> id map (open addressing; keys are token texts by id) ---- */
typedef struct {
    uint32_t *slots; /* id + 1, 0 = empty */
    uint32_t *hashes;
    uint32_t mask;
    uint32_t count;
} strmap;

uint64_t tok_hash_bytes(const char *s, size_t n);
int strmap_init(strmap *m, size_t expected);
void strmap_free(strmap *m);

/* ---- u64 -> (i32, i32) map, for merges and the special-token trie ---- */
typedef struct {
    uint64_t *keys; /* key + 1, 0 = empty */
    int32_t *a, *b;
    uint64_t mask;
    uint64_t count;
} u64map;

int u64map_init(u64map *m, size_t expected);
void u64map_free(u64map *m);
/* Inserts unless present; returns 1 when inserted, 0 when present, -1 on OOM. */
int u64map_put(u64map *m, uint64_t key, int32_t a, int32_t b);

static inline uint64_t u64map_slot(uint64_t k) {
    uint64_t h = k * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 31);
}

static inline bool u64map_get(const u64map *m, uint64_t key, int32_t *a, int32_t *b) {
    if (!m->keys) return false;
    uint64_t k = key + 1;
    for (uint64_t i = u64map_slot(k) & m->mask;; i = (i + 1) & m->mask) {
        if (m->keys[i] == k) {
            *a = m->a[i];
            if (b) *b = m->b[i];
            return true;
        }
        if (m->keys[i] == 0) return false;
    }
}

/* ---- min-heap of (key, x) ---- */
typedef struct {
    uint64_t key;
    int32_t x, y;
} heap_item;

typedef struct {
    heap_item *v;
    size_t n, cap;
} minheap;

int heap_push(minheap *h, heap_item it);
heap_item heap_pop(minheap *h);
void heap_free(minheap *h);

/* ---- the tokenizer ---- */
typedef enum { TOK_BPE, TOK_SPM } tok_kind;

struct tokenizer {
    tok_kind kind;
    int32_t n_vocab;
    /* Token texts as matched in input: raw bytes for byte-level BPE tokens
     * (the GPT-2 byte mapping undone), the literal text otherwise. */
    char *text;
    uint32_t *text_off, *text_len;
    /* What a token shows as output (SPM: U+2581 -> space, <0xNN> -> byte). */
    char *piece;
    uint32_t *piece_off, *piece_len;
    uint8_t *type;
    float *score;
    uint8_t *is_eog;

    strmap normal;  /* mergeable tokens, by text */
    strmap all;     /* every token, by text (first id wins) */
    u64map merges;  /* (left id << 32 | right id) -> (rank, merged id) */
    int32_t byte_tok[256];
    int32_t repl[4]; /* BPE ids of U+FFFD, for bytes the vocabulary lacks */
    int n_repl;

    /* Trie of control / unknown / user-defined token texts:
     * (node << 8 | byte) -> (child node, -); node_tok[node] = token id or -1. */
    u64map trie;
    int32_t *node_tok;
    uint32_t n_nodes;
    uint8_t trie_first[256]; /* bit 0: some always-matched token starts with this byte; bit 1: some control */

    int32_t bos, eos, eot, eom, unk;
    bool add_bos, add_eos, add_space_prefix, ignore_merges, nfc;
    bool spm_split; /* no mergeable token has U+2581 right after another character */
    pretok_kind pre;
};

static inline const char *tok_text(const struct tokenizer *t, int32_t id) { return t->text + t->text_off[id]; }

/* Looks up text in a map built over token texts. -1 when absent. */
int32_t strmap_find(const strmap *m, const struct tokenizer *t, const char *s, size_t n);
/* Adds token `id` under its text (no-op when the text is present). 0 or -1. */
int strmap_add(strmap *m, const struct tokenizer *t, int32_t id);

/* Byte-level BPE of one pre-tokenized piece; appends ids. 0 or -1 (OOM). */
int bpe_encode_piece(const struct tokenizer *t, const char *s, size_t n, ivec *out);
/* SentencePiece BPE of one text segment (already escaped: spaces as U+2581). */
int spm_encode_segment(const struct tokenizer *t, const char *s, size_t n, ivec *out);

#endif
