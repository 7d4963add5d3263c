/* The vocabulary as a prefix tree for constrained decoding (see
 * grammar_internal.h). Building it sorts every token's bytes, so it is done
 * once per tokenizer content and shared: a small cache keyed by a hash of
 * all token texts and kinds, so a tokenizer freed and another loaded at the
 * same address can never be served a stale tree. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "grammar.h"
#include "grammar_internal.h"

#define GV_CACHE_SLOTS 4

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static gvocab *g_cache[GV_CACHE_SLOTS];
static uint64_t g_cache_used[GV_CACHE_SLOTS];
static uint64_t g_clock;

typedef struct {
    uint32_t off, len;
    int32_t id;
} gv_entry;

typedef struct {
    strbuf bytes;      /* ordinary tokens' bytes, back to back */
    gv_entry *entries;
    uint32_t n_entries;
    strbuf special;    /* control tokens' texts */
    ivec special_ids, special_off, eog, never;
    uint64_t hash;
    const char *base;  /* bytes.data once collection is over (for sorting) */
} gv_collect;

static void hash_bytes(uint64_t *h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) *h = (*h ^ s[i]) * 0x100000001B3ull; /* FNV-1a */
}

static void collect_free(gv_collect *c) {
    sb_free(&c->bytes);
    sb_free(&c->special);
    free(c->entries);
    iv_free(&c->special_ids);
    iv_free(&c->special_off);
    iv_free(&c->eog);
    iv_free(&c->never);
}

/* A token's text into `buf` (grown when needed). Returns its length or -1. */
static int piece(const tokenizer *t, int32_t id, bool special, char **buf, size_t *cap) {
    int n = tok_piece(t, id, special, *buf, *cap);
    if (n > 0 && (size_t)n > *cap) {
        char *nb = realloc(*buf, (size_t)n);
        if (!nb) return -1;
        *buf = nb, *cap = (size_t)n;
        n = tok_piece(t, id, special, *buf, *cap);
    }
    return n;
}

/* Sorts one token into its kind: end of generation, control (by its text),
 * ordinary (by its bytes), or nothing (shows no text: never allowed). */
static int collect_one(gv_collect *c, const tokenizer *t, int32_t id, char **buf, size_t *cap) {
    uint8_t kind = tok_is_eog(t, id) ? 1 : tok_is_control(t, id) ? 2 : 3;
    int n = kind == 1 ? 0 : piece(t, id, kind == 2, buf, cap);
    if (n < 0) return -1;
    hash_bytes(&c->hash, &kind, 1);
    hash_bytes(&c->hash, &n, sizeof n);
    hash_bytes(&c->hash, *buf, (size_t)n);
    if (kind == 1) return iv_push(&c->eog, id);
    if (n == 0) return iv_push(&c->never, id);
    if (kind == 2) {
        sb_append(&c->special, *buf, (size_t)n);
        if (iv_push(&c->special_ids, id) || iv_push(&c->special_off, (int32_t)c->special.len)) return -1;
        return 0;
    }
    c->entries[c->n_entries++] = (gv_entry){(uint32_t)c->bytes.len, (uint32_t)n, id};
    sb_append(&c->bytes, *buf, (size_t)n);
    return 0;
}

static int collect(gv_collect *c, const tokenizer *t) {
    int32_t nv = tok_n_vocab(t);
    size_t cap = 256;
    char *buf = malloc(cap);
    c->entries = malloc(sizeof *c->entries * (size_t)(nv > 0 ? nv : 1));
    c->hash = 0xCBF29CE484222325ull;
    hash_bytes(&c->hash, &nv, sizeof nv);
    int rc = (buf && c->entries && iv_push(&c->special_off, 0) == 0) ? 0 : -1;
    for (int32_t id = 0; rc == 0 && id < nv; id++) rc = collect_one(c, t, id, &buf, &cap);
    free(buf);
    if (rc || c->bytes.failed || c->special.failed) return cx_error("grammar: out of memory indexing the vocabulary");
    c->base = c->bytes.data ? c->bytes.data : "";
    return 0;
}

/* ---- building the tree --------------------------------------------------- */

static _Thread_local const char *t_sort_base; /* qsort has no context argument */

static int entry_cmp(const void *a, const void *b) {
    const gv_entry *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(t_sort_base + x->off, t_sort_base + y->off, n);
    if (c) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* See grammar_internal.h: an escape needs a backslash, so a plain token
 * ends between characters or inside a multi-byte one. */
static bool gstr_plain(const unsigned char *s, size_t n) {
    int sub = STR_CHAR;
    for (size_t i = 0; i < n; i++) {
        bool done;
        if (sub == STR_CHAR && (s[i] == '"' || s[i] == '\\')) return false;
        sub = gstr_step(sub, s[i], &done);
        if (sub < 0) return false;
    }
    return true;
}

static size_t common_prefix(const char *a, size_t an, const char *b, size_t bn) {
    size_t i = 0;
    while (i < an && i < bn && a[i] == b[i]) i++;
    return i;
}

static bool utf8_lead(uint8_t b) { return (b & 0xC0) != 0x80; }

/* Depth-first nodes from the sorted tokens: each token opens the nodes
 * below its common prefix with the previous one; nodes deeper than that
 * prefix are closed (their subtree ends here). */
static int build_nodes(gvocab *v, const gv_collect *c) {
    uint32_t max_len = 0;
    for (uint32_t k = 0; k < c->n_entries; k++) max_len = c->entries[k].len > max_len ? c->entries[k].len : max_len;
    uint32_t *path = malloc(sizeof *path * (max_len + 1));
    v->nodes = malloc(sizeof *v->nodes * (c->bytes.len + 2));
    if (!path || !v->nodes || max_len > UINT16_MAX) return free(path), -1;
    v->nodes[0] = (gv_node){0, 0, 0, 0, 0};
    uint32_t n = 1, open = 0;
    path[0] = 0;
    for (uint32_t k = 0; k < c->n_entries; k++) {
        const gv_entry *e = &c->entries[k], *p = k ? &c->entries[k - 1] : NULL;
        size_t l = p ? common_prefix(c->base + p->off, p->len, c->base + e->off, e->len) : 0;
        for (; open > l; open--) v->nodes[path[open]].end = n;
        for (; open < e->len; open++) {
            uint8_t byte = (uint8_t)c->base[e->off + open];
            path[open + 1] = n;
            v->nodes[n++] = (gv_node){byte, 0, (uint16_t)(open + 1), 0, k};
        }
    }
    for (; open > 0; open--) v->nodes[path[open]].end = n;
    v->nodes[0].end = n;
    v->nodes[n] = (gv_node){0, 0, 0, n, c->n_entries};
    v->n_nodes = n;
    v->max_depth = max_len;
    free(path);
    return 0;
}

/* Characters of each plain token (UINT32_MAX for the others), by sorted index. */
static uint32_t *token_chars(const gv_collect *c) {
    uint32_t *chars = malloc(sizeof *chars * (c->n_entries + 1));
    for (uint32_t k = 0; chars && k < c->n_entries; k++) {
        const gv_entry *e = &c->entries[k];
        const unsigned char *s = (const unsigned char *)c->base + e->off;
        uint32_t n = 0;
        for (uint32_t i = 0; i < e->len; i++) n += utf8_lead(s[i]);
        chars[k] = gstr_plain(s, e->len) ? n : UINT32_MAX;
    }
    return chars;
}

/* A subtree is plain when it holds no non-plain token: prefix counts of
 * those over the sorted order. */
static int mark_plain(gvocab *v, const uint32_t *chars, uint32_t n) {
    uint32_t *bad = malloc(sizeof *bad * (n + 1));
    if (!bad) return -1;
    bad[0] = 0;
    for (uint32_t k = 0; k < n; k++) bad[k + 1] = bad[k] + (chars[k] == UINT32_MAX);
    for (uint32_t i = 0; i < v->n_nodes; i++) {
        gv_node *nd = &v->nodes[i];
        nd->plain = bad[v->nodes[nd->end].lo] == bad[nd->lo];
    }
    free(bad);
    return 0;
}

typedef struct {
    uint32_t chars;
    int32_t id;
} gv_plain;

static int plain_cmp(const void *a, const void *b) {
    const gv_plain *x = a, *y = b;
    if (x->chars != y->chars) return x->chars < y->chars ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int plain_lists(gvocab *v, const uint32_t *chars, uint32_t n) {
    gv_plain *p = malloc(sizeof *p * (n + 1));
    v->plain_ids = malloc(sizeof *v->plain_ids * (n + 1));
    v->plain_chars = malloc(sizeof *v->plain_chars * (n + 1));
    v->other_ids = malloc(sizeof *v->other_ids * (n + 1));
    if (!p || !v->plain_ids || !v->plain_chars || !v->other_ids) return free(p), -1;
    uint32_t m = 0;
    for (uint32_t k = 0; k < n; k++) {
        if (chars[k] != UINT32_MAX) p[m++] = (gv_plain){chars[k], v->sorted[k]};
        else v->other_ids[v->n_other++] = v->sorted[k];
    }
    qsort(p, m, sizeof *p, plain_cmp);
    for (uint32_t k = 0; k < m; k++) v->plain_ids[k] = p[k].id, v->plain_chars[k] = p[k].chars;
    v->n_plain = m;
    free(p);
    return 0;
}

static void gvocab_free(gvocab *v) {
    if (!v) return;
    free(v->nodes);
    free(v->sorted);
    free(v->special);
    free(v->special_text);
    free(v->special_off);
    free(v->eog);
    free(v->plain_ids);
    free(v->plain_chars);
    free(v->other_ids);
    free(v->never);
    free(v);
}

/* Takes the collected lists over (they are moved, not copied). */
static void adopt_lists(gvocab *v, gv_collect *c) {
    v->n_special = (uint32_t)c->special_ids.n;
    v->special = c->special_ids.v, c->special_ids.v = NULL;
    v->special_off = (uint32_t *)c->special_off.v, c->special_off.v = NULL;
    v->special_text = c->special.data, c->special.data = NULL;
    v->n_eog = (uint32_t)c->eog.n;
    v->eog = c->eog.v, c->eog.v = NULL;
    v->n_never = (uint32_t)c->never.n;
    v->never = c->never.v, c->never.v = NULL;
}

static gvocab *build(gv_collect *c, int32_t n_vocab) {
    gvocab *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->fingerprint = c->hash;
    v->n_vocab = n_vocab;
    v->refs = 1;
    t_sort_base = c->base;
    qsort(c->entries, c->n_entries, sizeof *c->entries, entry_cmp);
    v->sorted = malloc(sizeof *v->sorted * (c->n_entries + 1));
    v->n_sorted = c->n_entries;
    bool ok = v->sorted && build_nodes(v, c) == 0;
    for (uint32_t k = 0; ok && k < c->n_entries; k++) v->sorted[k] = c->entries[k].id;
    uint32_t *chars = ok ? token_chars(c) : NULL;
    ok = chars && mark_plain(v, chars, c->n_entries) == 0 && plain_lists(v, chars, c->n_entries) == 0;
    free(chars);
    if (!ok) {
        gvocab_free(v);
        return NULL;
    }
    adopt_lists(v, c);
    return v;
}

/* ---- the cache ----------------------------------------------------------- */

static gvocab *cache_find(uint64_t fp, int32_t n_vocab) {
    for (int i = 0; i < GV_CACHE_SLOTS; i++)
        if (g_cache[i] && g_cache[i]->fingerprint == fp && g_cache[i]->n_vocab == n_vocab) {
            g_cache_used[i] = ++g_clock;
            return g_cache[i];
        }
    return NULL;
}

/* Puts v in a free slot or in place of the least recently used tree that
 * nobody holds. Without such a slot v simply stays uncached. */
static void cache_insert(gvocab *v) {
    int slot = -1;
    for (int i = 0; i < GV_CACHE_SLOTS; i++) {
        if (!g_cache[i]) {
            slot = i;
            break;
        }
        if (g_cache[i]->refs == 1 && (slot < 0 || g_cache_used[i] < g_cache_used[slot])) slot = i;
    }
    if (slot < 0) return;
    if (g_cache[slot]) gvocab_free(g_cache[slot]);
    g_cache[slot] = v;
    g_cache_used[slot] = ++g_clock;
    v->refs++; /* the cache's own reference */
}

gvocab *gvocab_get(const tokenizer *tok) {
    gv_collect c;
    memset(&c, 0, sizeof c);
    if (collect(&c, tok)) {
        collect_free(&c);
        return NULL;
    }
    pthread_mutex_lock(&g_lock);
    gvocab *v = cache_find(c.hash, tok_n_vocab(tok));
    if (v) {
        v->refs++;
    } else if ((v = build(&c, tok_n_vocab(tok))) != NULL) {
        cache_insert(v);
    }
    pthread_mutex_unlock(&g_lock);
    collect_free(&c);
    if (!v) cx_error("grammar: out of memory indexing the vocabulary");
    return v;
}

void gvocab_release(gvocab *v) {
    if (!v) return;
    pthread_mutex_lock(&g_lock);
    bool last = --v->refs == 0;
    pthread_mutex_unlock(&g_lock);
    if (last) gvocab_free(v);
}

void grammar_cache_clear(void) {
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < GV_CACHE_SLOTS; i++) {
        gvocab *v = g_cache[i];
        g_cache[i] = NULL;
        if (v && --v->refs == 0) gvocab_free(v);
    }
    pthread_mutex_unlock(&g_lock);
}
