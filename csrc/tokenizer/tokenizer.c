/* Encoding and decoding. Encoding first cuts the text at special tokens
 * (longest match first, as Hugging Face's added-token matcher does), then
 * runs each text segment through the model: normalizer + pre-tokenizer +
 * byte-level BPE, or SentencePiece BPE. */
#include "tokenizer.h"

#include <string.h>

#include "tok_internal.h"
#include "unicode.h"

int32_t tok_n_vocab(const tokenizer *t) { return t->n_vocab; }
int32_t tok_bos(const tokenizer *t) { return t->bos; }
int32_t tok_eos(const tokenizer *t) { return t->eos; }
bool tok_add_bos(const tokenizer *t) { return t->add_bos && t->bos >= 0; }

static bool valid_id(const tokenizer *t, int32_t id) { return id >= 0 && id < t->n_vocab; }

bool tok_is_eog(const tokenizer *t, int32_t id) { return valid_id(t, id) && t->is_eog[id]; }

bool tok_is_control(const tokenizer *t, int32_t id) {
    return valid_id(t, id) && (t->type[id] == TT_CONTROL || t->type[id] == TT_UNKNOWN);
}

int32_t tok_find(const tokenizer *t, const char *text, size_t len) {
    return len ? strmap_find(&t->all, t, text, len) : -1;
}

/* ---- special-token matching ---- */

/* The longest special token starting at s[0..n) that may be matched: user-
 * defined ones always (Hugging Face always splits on added tokens), control
 * and unknown ones only with parse_special. Returns its length, or 0. */
static size_t match_special(const tokenizer *t, const char *s, size_t n, bool parse_special, int32_t *id) {
    uint32_t node = 0;
    size_t best = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t child, unused;
        if (!u64map_get(&t->trie, ((uint64_t)node << 8) | (unsigned char)s[i], &child, &unused)) break;
        node = (uint32_t)child;
        int32_t tid = t->node_tok[node];
        if (tid >= 0 && (parse_special || t->type[tid] == TT_USER_DEFINED)) {
            best = i + 1;
            *id = tid;
        }
    }
    return best;
}

/* ---- segments ---- */

typedef struct {
    const tokenizer *t;
    ivec *out;
    bool after_special; /* SentencePiece prefixes a space at the start and after each special token */
} enc_state;

static int emit_piece(void *ctx, const char *s, size_t n) {
    const enc_state *st = ctx;
    return bpe_encode_piece(st->t, s, n, st->out);
}

static int encode_bpe(const enc_state *st, const char *s, size_t n) {
    const tokenizer *t = st->t;
    if (!t->nfc || nfc_quick_yes(s, n)) return pretok_split(t->pre, s, n, emit_piece, (void *)st);
    strbuf norm;
    sb_init(&norm);
    int rc = nfc_append(s, n, &norm);
    if (rc == 0) rc = pretok_split(t->pre, norm.data, norm.len, emit_piece, (void *)st);
    sb_free(&norm);
    return rc;
}

/* SentencePiece sees spaces as U+2581 and, with add_space_prefix, one more in front. */
static int encode_spm(const enc_state *st, const char *s, size_t n) {
    strbuf esc;
    sb_init(&esc);
    if (st->t->add_space_prefix && st->after_special) sb_append(&esc, "\xE2\x96\x81", 3);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != ' ') continue;
        sb_append(&esc, s + run, i - run);
        sb_append(&esc, "\xE2\x96\x81", 3);
        run = i + 1;
    }
    sb_append(&esc, s + run, n - run);
    int rc = esc.failed ? cx_error("tokenizer: out of memory") : spm_encode_segment(st->t, esc.data, esc.len, st->out);
    sb_free(&esc);
    return rc;
}

static int encode_segment(enc_state *st, const char *s, size_t n) {
    if (n == 0) return 0;
    int rc = st->t->kind == TOK_SPM ? encode_spm(st, s, n) : encode_bpe(st, s, n);
    st->after_special = false;
    return rc;
}

static int encode_text(enc_state *st, const char *text, size_t len, bool parse_special) {
    const tokenizer *t = st->t;
    uint8_t first_mask = parse_special ? 3 : 1;
    size_t seg = 0;
    for (size_t p = 0; p < len;) {
        int32_t id = -1;
        size_t m = (t->trie_first[(unsigned char)text[p]] & first_mask)
                       ? match_special(t, text + p, len - p, parse_special, &id)
                       : 0;
        if (m == 0) {
            uint32_t cp;
            p += utf8_next(text + p, len - p, &cp); /* specials start on character boundaries */
            continue;
        }
        if (encode_segment(st, text + seg, p - seg) < 0 || iv_push(st->out, id) < 0) return -1;
        st->after_special = true;
        p += m;
        seg = p;
    }
    return encode_segment(st, text + seg, len - seg);
}

int tok_encode(const tokenizer *t, const char *text, size_t len, bool add_special, bool parse_special, ivec *out) {
    if (!text && len) return cx_error("tokenizer: NULL text");
    enc_state st = {t, out, true};
    if (add_special && t->add_bos && t->bos >= 0 && iv_push(out, t->bos) < 0) return -1;
    if (len && encode_text(&st, text, len, parse_special) < 0) return -1;
    if (add_special && t->add_eos && t->eos >= 0 && iv_push(out, t->eos) < 0) return -1;
    return 0;
}

/* ---- decoding ---- */

/* The token's output bytes, or NULL (length 0) when it shows nothing. */
static const char *piece_of(const tokenizer *t, int32_t id, bool special, size_t *n) {
    if (!special && (t->type[id] == TT_CONTROL || t->type[id] == TT_UNKNOWN)) {
        *n = 0;
        return NULL;
    }
    *n = t->piece_len[id];
    return t->piece + t->piece_off[id];
}

int tok_piece(const tokenizer *t, int32_t id, bool special, char *buf, size_t cap) {
    if (!valid_id(t, id)) return -1;
    size_t n;
    const char *p = piece_of(t, id, special, &n);
    if (n && cap) memcpy(buf, p, n < cap ? n : cap); /* buf may be NULL when cap is 0 */
    return (int)n;
}

int tok_decode(const tokenizer *t, const int32_t *ids, size_t n, bool special, strbuf *out) {
    bool first = true; /* Hugging Face strips the space SentencePiece's prefix added, once */
    for (size_t i = 0; i < n; i++) {
        if (!valid_id(t, ids[i])) return cx_error("tokenizer: token id %d out of range", (int)ids[i]);
        size_t len;
        const char *p = piece_of(t, ids[i], special, &len);
        if (len == 0) continue;
        if (first && t->add_space_prefix && p[0] == ' ') p++, len--;
        first = false;
        sb_append(out, p, len);
    }
    return out->failed ? cx_error("tokenizer: out of memory") : 0;
}
