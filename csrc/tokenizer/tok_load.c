/* Building a tokenizer from GGUF tokenizer.* metadata: token texts (with the
 * GPT-2 byte mapping undone for byte-level BPE), types, scores, merges,
 * special ids, the special-token trie and the end-of-generation set. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "tokenizer.h"
#include "unicode.h"

/* ---- GPT-2 byte <-> unicode mapping ---- */

/* Printable bytes stand for themselves; the other 68 take U+0100.. in order. */
static bool byte_is_printable(unsigned b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

/* The byte a mapped code point stands for, or -1. */
static int unmap_cp(uint32_t cp) {
    if (cp < 0x100) return byte_is_printable(cp) ? (int)cp : -1;
    unsigned k = cp - 0x100; /* the k-th non-printable byte: 0x00-0x20, 0x7F-0xA0, 0xAD */
    if (k < 33) return (int)k;
    if (k < 67) return (int)(0x7F + k - 33);
    return k == 67 ? 0xAD : -1;
}

/* Writes the raw bytes of a byte-level token text (never longer than it).
 * Characters outside the byte alphabet are kept as their UTF-8. */
static size_t unmap_text(const char *s, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = utf8_next(s + i, n - i, &cp);
        int b = unmap_cp(cp);
        if (b >= 0) out[o++] = (char)b;
        else memcpy(out + o, s + i, l), o += l;
        i += l;
    }
    return o;
}

/* ---- metadata helpers ---- */

static const gguf_kv *find_array(const gguf_file *f, const char *key, gguf_type elem) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv || kv->type != GGUF_TYPE_ARRAY || kv->v.arr.type != elem) return NULL;
    return kv;
}

static int32_t meta_id(const gguf_file *f, const char *key, int32_t def, int32_t n_vocab) {
    uint32_t v;
    if (gguf_get_u32(f, key, &v) < 0) return def;
    if (v >= (uint32_t)n_vocab) {
        cx_log(CX_LOG_WARN, "tokenizer: %s = %u is out of range, ignored", key, v);
        return def;
    }
    return (int32_t)v;
}

static bool meta_bool(const gguf_file *f, const char *key, bool def) {
    bool v;
    return gguf_get_bool(f, key, &v) == 0 ? v : def;
}

static bool is_special_type(uint8_t ty) { return ty == TT_CONTROL || ty == TT_USER_DEFINED || ty == TT_UNKNOWN; }

/* ---- token tables ---- */

static int alloc_tables(struct tokenizer *t) {
    size_t n = (size_t)t->n_vocab;
    t->text_off = malloc(n * sizeof *t->text_off);
    t->text_len = malloc(n * sizeof *t->text_len);
    t->piece_off = malloc(n * sizeof *t->piece_off);
    t->piece_len = malloc(n * sizeof *t->piece_len);
    t->type = malloc(n);
    t->score = calloc(n, sizeof *t->score);
    t->is_eog = calloc(n, 1);
    if (!t->text_off || !t->text_len || !t->piece_off || !t->piece_len || !t->type ||
        !t->score || !t->is_eog)
        return cx_error("tokenizer: out of memory");
    return 0;
}

static int read_types(struct tokenizer *t, const gguf_file *f) {
    memset(t->type, TT_NORMAL, (size_t)t->n_vocab);
    const gguf_kv *kv = gguf_find(f, "tokenizer.ggml.token_type");
    if (!kv) return 0;
    if (kv->type != GGUF_TYPE_ARRAY || kv->v.arr.n != (uint64_t)t->n_vocab ||
        (kv->v.arr.type != GGUF_TYPE_INT32 && kv->v.arr.type != GGUF_TYPE_UINT32))
        return cx_error("tokenizer: tokenizer.ggml.token_type must be %d int32 values", t->n_vocab);
    for (int32_t i = 0; i < t->n_vocab; i++) {
        int32_t v;
        memcpy(&v, (const char *)kv->v.arr.data + 4 * (size_t)i, 4);
        t->type[i] = (uint8_t)(v >= 1 && v <= 6 ? v : TT_NORMAL);
    }
    return 0;
}

static int read_scores(struct tokenizer *t, const gguf_file *f) {
    const gguf_kv *kv = find_array(f, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32);
    if (!kv) {
        if (t->kind == TOK_SPM) cx_log(CX_LOG_WARN, "tokenizer: SentencePiece vocabulary without scores");
        return 0;
    }
    if (kv->v.arr.n != (uint64_t)t->n_vocab) return cx_error("tokenizer: scores and tokens differ in count");
    memcpy(t->score, kv->v.arr.data, (size_t)t->n_vocab * sizeof(float));
    return 0;
}

/* The text a token is matched by: raw bytes for byte-level BPE's ordinary tokens. */
static size_t token_text(const struct tokenizer *t, int32_t id, gguf_str s, char *out) {
    if (t->kind == TOK_BPE && !is_special_type(t->type[id])) return unmap_text(s.ptr, (size_t)s.len, out);
    memcpy(out, s.ptr, (size_t)s.len);
    return (size_t)s.len;
}

/* "<0xNN>" -> NN, else -1. */
static int byte_token_value(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* The bytes a token shows as: SentencePiece's U+2581 becomes a space and a
 * byte token its byte; everything else shows its text. */
static size_t token_piece(const struct tokenizer *t, int32_t id, const char *s, size_t n, char *out) {
    if (t->kind == TOK_BPE || t->type[id] == TT_CONTROL || t->type[id] == TT_UNKNOWN) {
        memcpy(out, s, n);
        return n;
    }
    int b = t->type[id] == TT_BYTE ? byte_token_value(s, n) : -1;
    if (b >= 0) {
        out[0] = (char)b;
        return 1;
    }
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (i + 3 <= n && memcmp(s + i, "\xE2\x96\x81", 3) == 0) out[o++] = ' ', i += 3;
        else out[o++] = s[i++];
    }
    return o;
}

static int read_tokens(struct tokenizer *t, const gguf_kv *kv) {
    size_t total = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) total += (size_t)kv->v.arr.strs[i].len;
    if (total > UINT32_MAX) return cx_error("tokenizer: token texts too large");
    t->text = malloc(total ? total : 1);
    t->piece = malloc(total ? total : 1);
    if (!t->text || !t->piece) return cx_error("tokenizer: out of memory");
    size_t off = 0, poff = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        gguf_str s = kv->v.arr.strs[i];
        t->text_off[i] = (uint32_t)off;
        t->text_len[i] = (uint32_t)token_text(t, i, s, t->text + off);
        t->piece_off[i] = (uint32_t)poff;
        t->piece_len[i] = (uint32_t)token_piece(t, i, t->text + off, t->text_len[i], t->piece + poff);
        off += t->text_len[i];
        poff += t->piece_len[i];
    }
    return 0;
}

/* Whether BPE may produce the token by merging (special tokens are matched whole instead). */
static bool is_mergeable(const struct tokenizer *t, int32_t id) {
    uint8_t ty = t->type[id];
    if (t->kind == TOK_SPM) return ty == TT_NORMAL || ty == TT_USER_DEFINED;
    return !is_special_type(ty);
}

static int build_maps(struct tokenizer *t) {
    if (strmap_init(&t->normal, (size_t)t->n_vocab) < 0 || strmap_init(&t->all, (size_t)t->n_vocab) < 0) return -1;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (t->text_len[i] == 0) continue;
        if (strmap_add(&t->all, t, i) < 0) return -1;
        if (is_mergeable(t, i) && strmap_add(&t->normal, t, i) < 0) return -1;
    }
    for (int b = 0; b < 256; b++) t->byte_tok[b] = -1;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (t->kind == TOK_SPM) {
            int b = t->type[i] == TT_BYTE ? byte_token_value(tok_text(t, i), t->text_len[i]) : -1;
            if (b >= 0 && t->byte_tok[b] < 0) t->byte_tok[b] = i;
        }
    }
    if (t->kind == TOK_BPE) {
        for (int b = 0; b < 256; b++) {
            char c = (char)b;
            t->byte_tok[b] = strmap_find(&t->normal, t, &c, 1);
        }
    }
    return 0;
}

/* True when the token has U+2581 right after a character other than U+2581. */
static bool has_inner_meta_space(const char *s, size_t n) {
    for (size_t i = 1; i + 3 <= n; i++) {
        if (memcmp(s + i, "\xE2\x96\x81", 3) != 0) continue;
        if (i < 3 || memcmp(s + i - 3, "\xE2\x96\x81", 3) != 0) return true;
    }
    return false;
}

static void check_spm_split(struct tokenizer *t) {
    t->spm_split = t->kind == TOK_SPM;
    for (int32_t i = 0; i < t->n_vocab && t->spm_split; i++)
        if (is_mergeable(t, i) && has_inner_meta_space(tok_text(t, i), t->text_len[i])) t->spm_split = false;
}

/* ---- merges ---- */

static int32_t raw_lookup(const struct tokenizer *t, const char *s, size_t n, char *tmp) {
    size_t m = unmap_text(s, n, tmp);
    return strmap_find(&t->normal, t, tmp, m);
}

/* Adds merge "left right" with rank r. Returns 1 when added, 0 when one of
 * its tokens is not in the vocabulary, -1 on OOM. tmp holds m.len bytes. */
static int add_merge(struct tokenizer *t, gguf_str m, int32_t r, char *tmp) {
    /* Split at the first space after the first character: no byte-level token has a space. */
    const char *sp = m.len > 1 ? memchr(m.ptr + 1, ' ', (size_t)m.len - 1) : NULL;
    if (!sp) return 0;
    size_t ll = (size_t)(sp - m.ptr), rl = (size_t)m.len - ll - 1;
    int32_t l = raw_lookup(t, m.ptr, ll, tmp), rt = raw_lookup(t, sp + 1, rl, tmp);
    size_t a = unmap_text(m.ptr, ll, tmp), b = unmap_text(sp + 1, rl, tmp + a);
    int32_t merged = strmap_find(&t->normal, t, tmp, a + b);
    if (l < 0 || rt < 0 || merged < 0) return 0;
    return u64map_put(&t->merges, ((uint64_t)(uint32_t)l << 32) | (uint32_t)rt, r, merged) < 0 ? -1 : 1;
}

static int read_merges(struct tokenizer *t, const gguf_file *f) {
    const gguf_kv *kv = find_array(f, "tokenizer.ggml.merges", GGUF_TYPE_STRING);
    if (!kv) return cx_error("tokenizer: BPE vocabulary without tokenizer.ggml.merges");
    size_t n = (size_t)kv->v.arr.n, skipped = 0, longest = 0;
    if (n > INT32_MAX) return cx_error("tokenizer: too many merges");
    if (u64map_init(&t->merges, n) < 0) return -1;
    for (size_t r = 0; r < n; r++)
        if (kv->v.arr.strs[r].len > longest) longest = (size_t)kv->v.arr.strs[r].len;
    char *tmp = malloc(longest + 1);
    if (!tmp) return cx_error("tokenizer: out of memory");
    int rc = 0;
    for (size_t r = 0; r < n && rc >= 0; r++) {
        rc = add_merge(t, kv->v.arr.strs[r], (int32_t)r, tmp);
        skipped += rc == 0;
    }
    free(tmp);
    if (rc < 0) return -1;
    if (skipped) cx_log(CX_LOG_WARN, "tokenizer: %zu merges name tokens not in the vocabulary; skipped", skipped);
    return 0;
}

/* ---- special tokens ---- */

static int trie_insert(struct tokenizer *t, int32_t id, uint32_t *cap) {
    const unsigned char *s = (const unsigned char *)tok_text(t, id);
    uint32_t node = 0;
    for (uint32_t i = 0; i < t->text_len[id]; i++) {
        int32_t child, unused;
        uint64_t key = ((uint64_t)node << 8) | s[i];
        if (!u64map_get(&t->trie, key, &child, &unused)) {
            if (t->n_nodes == *cap) {
                int32_t *p = realloc(t->node_tok, (size_t)*cap * 2 * sizeof *p);
                if (!p) return cx_error("tokenizer: out of memory");
                t->node_tok = p;
                *cap *= 2;
            }
            child = (int32_t)t->n_nodes++;
            t->node_tok[child] = -1;
            if (u64map_put(&t->trie, key, child, 0) < 0) return -1;
        }
        node = (uint32_t)child;
    }
    if (t->node_tok[node] < 0) t->node_tok[node] = id;
    return 0;
}

static int build_trie(struct tokenizer *t) {
    uint32_t cap = 64;
    t->node_tok = malloc(cap * sizeof *t->node_tok);
    if (!t->node_tok || u64map_init(&t->trie, 64) < 0) return cx_error("tokenizer: out of memory");
    t->node_tok[0] = -1;
    t->n_nodes = 1;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (!is_special_type(t->type[i]) || t->text_len[i] == 0) continue;
        if (trie_insert(t, i, &cap) < 0) return -1;
        t->trie_first[(unsigned char)tok_text(t, i)[0]] |= t->type[i] == TT_USER_DEFINED ? 1 : 2;
    }
    return 0;
}

static const char *const eog_texts[] = {
    "<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|end_of_text|>", "<|eom_id|>",
};

static void mark_eog(struct tokenizer *t) {
    int32_t ids[] = {t->eos, t->eot, t->eom};
    for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++)
        if (ids[k] >= 0) t->is_eog[ids[k]] = 1;
    for (size_t k = 0; k < sizeof eog_texts / sizeof eog_texts[0]; k++) {
        int32_t id = strmap_find(&t->all, t, eog_texts[k], strlen(eog_texts[k]));
        if (id >= 0 && (t->type[id] == TT_CONTROL || t->type[id] == TT_USER_DEFINED)) t->is_eog[id] = 1;
    }
}

/* The ids of U+FFFD, which stands in for a byte the vocabulary has no token for. */
static int encode_replacement(struct tokenizer *t) {
    ivec v;
    iv_init(&v);
    if (bpe_encode_piece(t, "\xEF\xBF\xBD", 3, &v) < 0) return -1;
    if (v.n <= 4) {
        for (size_t i = 0; i < v.n; i++) t->repl[i] = v.v[i];
        t->n_repl = (int)v.n;
    }
    iv_free(&v);
    return 0;
}

/* ---- the whole load ---- */

static int read_kind(struct tokenizer *t, const gguf_file *f) {
    gguf_str model;
    if (gguf_get_str(f, "tokenizer.ggml.model", &model) < 0) return cx_error("tokenizer: no tokenizer.ggml.model");
    if (gguf_str_eq(model, "gpt2")) t->kind = TOK_BPE;
    else if (gguf_str_eq(model, "llama")) t->kind = TOK_SPM;
    else return cx_error("tokenizer: unsupported tokenizer model '%.*s'", (int)(model.len > 64 ? 64 : model.len), model.ptr);
    if (t->kind == TOK_SPM) return 0;
    gguf_str pre = {"default", 7};
    gguf_get_str(f, "tokenizer.ggml.pre", &pre);
    pretok_info info;
    if (!pretok_lookup(pre.ptr, (size_t)pre.len, &info))
        cx_log(CX_LOG_WARN, "tokenizer: unknown pre-tokenizer '%.*s', using the GPT-2 default",
               (int)(pre.len > 64 ? 64 : pre.len), pre.ptr);
    t->pre = info.kind;
    t->nfc = info.nfc;
    t->ignore_merges = info.ignore_merges;
    return 0;
}

static void read_specials(struct tokenizer *t, const gguf_file *f) {
    bool spm = t->kind == TOK_SPM;
    t->bos = meta_id(f, "tokenizer.ggml.bos_token_id", spm && t->n_vocab > 1 ? 1 : -1, t->n_vocab);
    t->eos = meta_id(f, "tokenizer.ggml.eos_token_id", spm && t->n_vocab > 2 ? 2 : -1, t->n_vocab);
    t->unk = meta_id(f, "tokenizer.ggml.unknown_token_id", spm ? 0 : -1, t->n_vocab);
    t->eot = meta_id(f, "tokenizer.ggml.eot_token_id", -1, t->n_vocab);
    t->eom = meta_id(f, "tokenizer.ggml.eom_token_id", -1, t->n_vocab);
    t->add_bos = meta_bool(f, "tokenizer.ggml.add_bos_token", spm);
    t->add_eos = meta_bool(f, "tokenizer.ggml.add_eos_token", false);
    t->add_space_prefix = spm && meta_bool(f, "tokenizer.ggml.add_space_prefix", true);
}

static int load_into(struct tokenizer *t, const gguf_file *f) {
    if (read_kind(t, f) < 0) return -1;
    const gguf_kv *tokens = find_array(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING);
    if (!tokens || tokens->v.arr.n == 0) return cx_error("tokenizer: no tokenizer.ggml.tokens");
    if (tokens->v.arr.n > INT32_MAX / 2) return cx_error("tokenizer: vocabulary too large");
    t->n_vocab = (int32_t)tokens->v.arr.n;
    if (alloc_tables(t) < 0 || read_types(t, f) < 0) return -1;
    if (read_tokens(t, tokens) < 0 || read_scores(t, f) < 0 || build_maps(t) < 0) return -1;
    if (t->kind == TOK_BPE && read_merges(t, f) < 0) return -1;
    if (build_trie(t) < 0) return -1;
    check_spm_split(t);
    read_specials(t, f);
    if (t->kind == TOK_BPE && encode_replacement(t) < 0) return -1;
    mark_eog(t);
    return 0;
}

tokenizer *tok_load(const gguf_file *f) {
    if (!f) {
        cx_error("tokenizer: no file");
        return NULL;
    }
    struct tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        cx_error("tokenizer: out of memory");
        return NULL;
    }
    if (load_into(t, f) < 0) {
        tok_free(t);
        return NULL;
    }
    return t;
}

void tok_free(tokenizer *t) {
    if (!t) return;
    free(t->text), free(t->text_off), free(t->text_len);
    free(t->piece), free(t->piece_off), free(t->piece_len);
    free(t->type), free(t->score), free(t->is_eog), free(t->node_tok);
    strmap_free(&t->normal);
    strmap_free(&t->all);
    u64map_free(&t->merges);
    u64map_free(&t->trie);
    free(t);
}
