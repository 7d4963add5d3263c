/* Tokenizer tests. argv[1] is the repository root; the reference vocabularies
 * (real families' GGUF tokenizers with the ids Hugging Face produces for 46
 * texts each) are in argv[1]/../shared/vocab. Also: pre-tokenizer splits as
 * Hugging Face makes them, NFC, special tokens, decoding, invalid UTF-8,
 * megabyte-long inputs, and metadata handling on small GGUFs built in memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

static char g_vocab_dir[4096];

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    *n = buf ? fread(buf, 1, (size_t)len, f) : 0;
    if (buf) buf[*n] = 0;
    fclose(f);
    return buf;
}

static tokenizer *load_family(const char *family) {
    char path[4200];
    snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf", g_vocab_dir, family);
    gguf_file *g = gguf_open(path);
    if (!CHECK_MSG(g != NULL, "open %s: %s", path, cx_last_error())) return NULL;
    tokenizer *t = tok_load(g);
    gguf_close(g); /* the tokenizer keeps its own copies */
    CHECK_MSG(t != NULL, "load %s: %s", family, cx_last_error());
    return t;
}

static bool ids_equal_line(const ivec *v, const char *line, size_t len) {
    char buf[32];
    size_t pos = 0;
    for (size_t i = 0; i < v->n; i++) {
        int k = snprintf(buf, sizeof buf, " %d", (int)v->v[i]);
        if (pos + (size_t)k > len || memcmp(line + pos, buf, (size_t)k) != 0) return false;
        pos += (size_t)k;
    }
    return pos == len;
}

static bool roundtrips(const tokenizer *t, const char *s, size_t n, const ivec *v) {
    strbuf sb;
    sb_init(&sb);
    bool ok = tok_decode(t, v->v, v->n, false, &sb) == 0 && sb.len == n && (n == 0 || memcmp(sb.data, s, n) == 0);
    sb_free(&sb);
    return ok;
}

/* Every text of the family's .inp must give exactly the ids on its .out line,
 * whether special-token parsing is on or off, and decode back to itself. */
static void test_family(const char *family) {
    tokenizer *t = load_family(family);
    if (!t) return;
    char path[4200];
    size_t ni = 0, no = 0;
    snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf.inp", g_vocab_dir, family);
    char *inp = slurp(path, &ni);
    snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf.out", g_vocab_dir, family);
    char *outp = slurp(path, &no);
    if (CHECK(inp && outp)) {
        const char *sep = "\n__ggml_vocab_test__\n";
        char *s = inp, *o = outp, *e, *oe;
        int n = 0, ok = 0;
        while ((e = strstr(s, sep)) && (oe = strchr(o, '\n'))) {
            for (int ps = 0; ps < 2; ps++) {
                ivec v;
                iv_init(&v);
                bool good = tok_encode(t, s, (size_t)(e - s), false, ps, &v) == 0 &&
                            ids_equal_line(&v, o, (size_t)(oe - o)) && roundtrips(t, s, (size_t)(e - s), &v);
                CHECK_MSG(good, "%s text %d (parse_special %d): %.40s", family, n, ps, s);
                ok += good;
                iv_free(&v);
            }
            n++;
            s = e + strlen(sep);
            o = oe + 1;
        }
        CHECK_MSG(n == 46, "%s: %d texts", family, n);
        printf("%-15s %d/%d\n", family, ok / 2, n);
    }
    free(inp);
    free(outp);
    tok_free(t);
}

/* ---- pre-tokenizer splits (expected pieces from Hugging Face tokenizers) ---- */

typedef struct {
    const char *pieces[16];
    size_t n;
} piece_list;

static int collect(void *ctx, const char *s, size_t n) {
    piece_list *pl = ctx;
    static char store[16][64];
    if (pl->n < 16 && n < 64) {
        memcpy(store[pl->n], s, n);
        store[pl->n][n] = 0;
        pl->pieces[pl->n] = store[pl->n];
    }
    pl->n++;
    return 0;
}

static void check_split(const char *pre, const char *text, const char *const *want) {
    pretok_info info;
    CHECK_MSG(pretok_lookup(pre, strlen(pre), &info), "pre %s known", pre);
    piece_list pl = {{0}, 0};
    pretok_split(info.kind, text, strlen(text), collect, &pl);
    size_t nw = 0;
    while (want[nw]) nw++;
    bool ok = pl.n == nw;
    for (size_t i = 0; ok && i < nw; i++) ok = strcmp(pl.pieces[i], want[i]) == 0;
    CHECK_MSG(ok, "%s split of \"%s\" (%zu pieces, want %zu)", pre, text, pl.n, nw);
}

static void test_pretokenizers(void) {
    check_split("llama-bpe", "Hello world's I'LL 12345 ab\xc5\xbf",
                (const char *[]){"Hello", " world", "'s", " I", "'LL", " ", "123", "45", " ab\xc5\xbf", NULL});
    check_split("llama-bpe", "  x\n\n  y \t\n z!!\n\n",
                (const char *[]){" ", " x", "\n\n", " ", " y", " \t\n", " z", "!!\n\n", NULL});
    check_split("lfm2", "\xc3\xa9t\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87" "123 'abc",
                (const char *[]){"\xc3\xa9t\xc3\xa9", " \xe4\xb8\xad\xe6\x96\x87", "123", " '", "abc", NULL});
    check_split("qwen2", "Hello world's I'LL 12345",
                (const char *[]){"Hello", " world", "'s", " I", "'LL", " ", "1", "2", "3", "4", "5", NULL});
    check_split("gpt2", "Hello world's I'LL 12345  x\n\n  y !!",
                (const char *[]){"Hello", " world", "'s", " I", "'", "LL", " 12345", " ", " x", "\n\n ", " y", " !!",
                                 NULL});
    check_split("falcon", "a 1234567 \xc2\xbd x+=y",
                (const char *[]){"a", " ", "123", "456", "7", " \xc2", "\xbd", " x", "+=", "y", NULL});
    check_split("deepseek-llm", "Hello, \xe4\xb8\x96\xe7\x95\x8c 123\n  x  ",
                (const char *[]){"Hello", ",", " ", "\xe4\xb8\x96\xe7\x95\x8c", " ", "123", "\n", " ", " x", "  ", NULL});
    check_split("deepseek-coder", "Hello, \xe4\xb8\x96\xe7\x95\x8c 123\n  x  ",
                (const char *[]){"Hello", ",", " ", "\xe4\xb8\x96\xe7\x95\x8c", " ", "1", "2", "3", "\n", " ", " x", "  ",
                                 NULL});
    check_split("smollm", "x 123 y", (const char *[]){"x", " ", "1", "2", "3", " y", NULL});
    pretok_info info;
    CHECK(!pretok_lookup("no-such-pre", 11, &info) && info.kind == PRE_GPT2);
}

/* ---- NFC (expected forms from Python's unicodedata) ---- */

static void check_nfc(const char *in, const char *want) {
    strbuf sb;
    sb_init(&sb);
    CHECK(nfc_append(in, strlen(in), &sb) == 0);
    CHECK_EQ_MEM(sb.data, sb.len, want, strlen(want));
    strbuf again; /* NFC of NFC text is itself */
    sb_init(&again);
    CHECK(nfc_append(want, strlen(want), &again) == 0);
    CHECK_EQ_MEM(again.data, again.len, want, strlen(want));
    sb_free(&again);
    sb_free(&sb);
}

static void test_nfc(void) {
    check_nfc("e\xcc\x81", "\xc3\xa9");
    check_nfc("\xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8", "\xea\xb0\x81");           /* Hangul L V T */
    check_nfc("\xea\xb0\x80\xe1\x86\xa8", "\xea\xb0\x81");                       /* Hangul LV T */
    check_nfc("a\xcc\x82\xcc\xa3", "\xe1\xba\xad");                              /* reordering */
    check_nfc("\xe2\x84\xab", "\xc3\x85");                                       /* singleton */
    check_nfc("a\xcc\x81\xcc\x81", "\xc3\xa1\xcc\x81");                          /* blocked second mark */
    check_nfc("\xcd\x84", "\xcc\x88\xcc\x81");                                   /* non-starter decomposition */
    check_nfc("q\xcc\x87\xcc\xa3x", "q\xcc\xa3\xcc\x87x");
    check_nfc("a\xcc\x95\xcc\x80\xd6\xae\xcc\x80" "b", "\xc3\xa0\xd6\xae\xcc\x80\xcc\x95" "b");
    check_nfc("\xe0\xbd\xb3", "\xe0\xbd\xb1\xe0\xbd\xb2");                       /* composition exclusion */
    check_nfc("e\xcc\xa7\xcc\x81", "\xc8\xa9\xcc\x81");
    check_nfc("plain ascii", "plain ascii");
    check_nfc("\xff\xc3(x", "\xff\xc3(x"); /* invalid bytes pass through */
    CHECK(!nfc_quick_yes("e\xcc\x81", 3));
}

/* ---- behaviour on the real vocabularies ---- */

static void encode(const tokenizer *t, const char *s, size_t n, bool add, bool parse, ivec *v) {
    v->n = 0;
    CHECK(tok_encode(t, s, n, add, parse, v) == 0);
}

static bool contains(const ivec *v, int32_t id) {
    for (size_t i = 0; i < v->n; i++)
        if (v->v[i] == id) return true;
    return false;
}

static void test_gpt2_specials(void) {
    tokenizer *t = load_family("gpt-2");
    if (!t) return;
    ivec v;
    iv_init(&v);
    const char *s = "a<|endoftext|>b";
    encode(t, s, strlen(s), true, true, &v);
    CHECK(v.n == 3 && v.v[1] == 50256);
    encode(t, s, strlen(s), true, false, &v);
    CHECK(v.n > 3 && !contains(&v, 50256));
    CHECK(roundtrips(t, s, strlen(s), &v));
    encode(t, "", 0, true, true, &v);
    CHECK_EQ_INT(v.n, 0); /* GPT-2 adds no BOS */
    CHECK(!tok_add_bos(t));
    CHECK(tok_is_eog(t, 50256) && !tok_is_eog(t, 40) && !tok_is_eog(t, -1) && !tok_is_eog(t, 1 << 30));
    CHECK(tok_is_control(t, 50256) && !tok_is_control(t, 40));
    CHECK_EQ_INT(tok_find(t, "<|endoftext|>", 13), 50256);
    CHECK_EQ_INT(tok_find(t, " Hello", 6), 18435); /* raw text, byte mapping undone */
    char buf[64];
    CHECK_EQ_INT(tok_piece(t, 50256, false, buf, sizeof buf), 0);
    CHECK_EQ_INT(tok_piece(t, 50256, true, buf, sizeof buf), 13);
    CHECK_EQ_INT(tok_piece(t, 18435, false, buf, 3), 6); /* truncated: returns the full length */
    CHECK_EQ_MEM(buf, 3, " He", 3);
    CHECK_EQ_INT(tok_piece(t, 50257, false, buf, sizeof buf), -1);
    encode(t, "\xe2\x82\xac", 3, false, false, &v); /* the euro sign is three byte tokens */
    int total = 0;
    for (size_t i = 0; i < v.n; i++) total += tok_piece(t, v.v[i], false, buf, sizeof buf);
    CHECK_EQ_INT(total, 3);
    strbuf sb;
    sb_init(&sb);
    int32_t bad[] = {40, 999999};
    CHECK(tok_decode(t, bad, 2, false, &sb) == -1);
    sb_free(&sb);
    iv_free(&v);
    tok_free(t);
}

static void test_spm_behaviour(void) {
    tokenizer *t = load_family("llama-spm");
    if (!t) return;
    ivec v;
    iv_init(&v);
    encode(t, "", 0, true, false, &v);
    CHECK(v.n == 1 && v.v[0] == 1); /* BOS only */
    encode(t, "", 0, false, false, &v);
    CHECK_EQ_INT(v.n, 0);
    CHECK(tok_add_bos(t) && tok_bos(t) == 1 && tok_eos(t) == 2);
    encode(t, " Hello", 6, true, false, &v);
    CHECK(v.n >= 2 && v.v[0] == 1);
    strbuf sb;
    sb_init(&sb);
    CHECK(tok_decode(t, v.v, v.n, false, &sb) == 0);
    CHECK_EQ_MEM(sb.data, sb.len, " Hello", 6); /* only the added prefix space is dropped */
    sb_clear(&sb);
    CHECK(tok_decode(t, v.v, v.n, true, &sb) == 0);
    CHECK_EQ_MEM(sb.data, sb.len, "<s>  Hello", 10);
    sb_free(&sb);
    char buf[16];
    CHECK(tok_piece(t, 13, false, buf, sizeof buf) == 1 && buf[0] == '\n'); /* <0x0A> */
    CHECK_EQ_INT(tok_piece(t, 1, false, buf, sizeof buf), 0);
    const char *s = "<s>x";
    encode(t, s, 4, false, true, &v);
    CHECK(v.n >= 2 && v.v[0] == 1);
    encode(t, s, 4, false, false, &v);
    CHECK(!contains(&v, 1) && roundtrips(t, s, 4, &v));
    CHECK(tok_is_eog(t, 2) && !tok_is_eog(t, 1));
    iv_free(&v);
    tok_free(t);

    t = load_family("phi-3");
    if (!t) return;
    CHECK(tok_is_eog(t, 32007) && tok_is_eog(t, 32000)); /* <|end|>, <|endoftext|> */
    CHECK_EQ_INT(tok_find(t, "<|end|>", 7), 32007);
    tok_free(t);
}

/* Invalid UTF-8 is never rejected. It survives a decode byte for byte, except
 * that bytes which never occur in UTF-8 (0xC0, 0xC1, 0xF5..0xFF) become U+FFFD
 * where the vocabulary has no token for them (most byte-level ones but GPT-2's). */
static void test_invalid_utf8(void) {
    const char *families[] = {"gpt-2", "llama-spm", "deepseek-llm", "falcon", "mpt"};
    const char s[] = "\xff\xc3(\xe2\x82 ok\xed\xa0\x80 \xf4\x90\x80\x80 \xc0\xaf\xe2";
    const char r[] = "\xef\xbf\xbd\xc3(\xe2\x82 ok\xed\xa0\x80 \xf4\x90\x80\x80 \xef\xbf\xbd\xaf\xe2";
    for (size_t k = 0; k < sizeof families / sizeof families[0]; k++) {
        tokenizer *t = load_family(families[k]);
        if (!t) continue;
        ivec v;
        iv_init(&v);
        encode(t, s, sizeof s - 1, false, true, &v);
        bool full = k < 2; /* GPT-2 and SentencePiece byte fallback cover all 256 bytes */
        CHECK_MSG(full ? roundtrips(t, s, sizeof s - 1, &v) : roundtrips(t, r, sizeof r - 1, &v),
                  "%s: invalid UTF-8 round trip", families[k]);
        iv_free(&v);
        tok_free(t);
    }
}

/* Megabyte inputs (one word, one space run, digits) must not go quadratic. */
static void test_long_inputs(void) {
    const char *families[] = {"gpt-2", "llama-spm", "deepseek-llm", "falcon"};
    size_t n = 1 << 20;
    char *s = malloc(n);
    if (!CHECK(s != NULL)) return;
    for (size_t k = 0; k < sizeof families / sizeof families[0]; k++) {
        tokenizer *t = load_family(families[k]);
        if (!t) continue;
        const char fills[] = {'a', ' ', '7'};
        for (size_t f = 0; f < sizeof fills; f++) {
            memset(s, fills[f], n);
            ivec v;
            iv_init(&v);
            double t0 = cx_now_ms();
            encode(t, s, n, false, false, &v);
            CHECK_MSG(roundtrips(t, s, n, &v), "%s: 1 MiB of '%c'", families[k], fills[f]);
            printf("%-13s 1 MiB of '%c': %zu tokens, %.0f ms\n", families[k], fills[f], v.n, cx_now_ms() - t0);
            iv_free(&v);
        }
        tok_free(t);
    }
    free(s);
}

/* ---- small GGUFs built in memory, for metadata handling ---- */

static void put(strbuf *b, const void *p, size_t n) { sb_append(b, p, n); }
static void put_u32(strbuf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(strbuf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(strbuf *b, const char *s) {
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void kv_head(strbuf *b, const char *key, uint32_t type) {
    put_str(b, key);
    put_u32(b, type);
}
static void kv_str(strbuf *b, const char *key, const char *v) {
    kv_head(b, key, GGUF_TYPE_STRING);
    put_str(b, v);
}
static void kv_u32(strbuf *b, const char *key, uint32_t v) {
    kv_head(b, key, GGUF_TYPE_UINT32);
    put_u32(b, v);
}
static void kv_bool(strbuf *b, const char *key, bool v) {
    kv_head(b, key, GGUF_TYPE_BOOL);
    sb_putc(b, v ? 1 : 0);
}
static void kv_strs(strbuf *b, const char *key, const char *const *v, size_t n) {
    kv_head(b, key, GGUF_TYPE_ARRAY);
    put_u32(b, GGUF_TYPE_STRING);
    put_u64(b, n);
    for (size_t i = 0; i < n; i++) put_str(b, v[i]);
}
static void kv_i32s(strbuf *b, const char *key, const int32_t *v, size_t n) {
    kv_head(b, key, GGUF_TYPE_ARRAY);
    put_u32(b, GGUF_TYPE_INT32);
    put_u64(b, n);
    put(b, v, 4 * n);
}

/* A byte-level vocabulary: the 256 byte tokens (GPT-2 alphabet), "ab", "é"
 * (mapped: "Ã©"), a control and a user-defined token; one merge each. */
typedef struct {
    const char *model, *pre;
    int add_bos, add_eos; /* -1: absent */
    bool with_tokens;
} mini_opts;

static char g_alpha[256][4];

static void build_alphabet(void) {
    int k = 0;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        uint32_t cp = printable ? (uint32_t)b : 0x100u + (uint32_t)k++;
        size_t l = utf8_put(cp, g_alpha[b]);
        g_alpha[b][l] = 0;
    }
}

static tokenizer *mini_load(const mini_opts *o, strbuf *b) {
    const char *toks[262];
    int32_t types[262];
    for (int i = 0; i < 256; i++) toks[i] = g_alpha[i], types[i] = 1;
    toks[256] = "ab", types[256] = 1;
    toks[257] = "\xc3\x83\xc2\xa9", types[257] = 1; /* "é" in the byte alphabet */
    toks[258] = "<|im_end|>", types[258] = 3;
    toks[259] = "<tool>", types[259] = 4;
    toks[260] = "<|eot_id|>", types[260] = 3;
    toks[261] = "<s>", types[261] = 3;
    const char *merges[] = {"a b", "\xc3\x83 \xc2\xa9"};
    uint64_t n_kv = 5 + (o->pre != NULL) + (o->add_bos >= 0) + (o->add_eos >= 0) + (o->with_tokens ? 3 : 0);
    sb_clear(b);
    put(b, "GGUF", 4);
    put_u32(b, 3);
    put_u64(b, 0);
    put_u64(b, n_kv);
    kv_str(b, "general.architecture", "llama");
    kv_str(b, "tokenizer.ggml.model", o->model);
    kv_u32(b, "tokenizer.ggml.bos_token_id", 261);
    kv_u32(b, "tokenizer.ggml.eos_token_id", 258);
    kv_u32(b, "tokenizer.ggml.eot_token_id", 260);
    if (o->pre) kv_str(b, "tokenizer.ggml.pre", o->pre);
    if (o->add_bos >= 0) kv_bool(b, "tokenizer.ggml.add_bos_token", o->add_bos);
    if (o->add_eos >= 0) kv_bool(b, "tokenizer.ggml.add_eos_token", o->add_eos);
    if (o->with_tokens) {
        kv_strs(b, "tokenizer.ggml.tokens", toks, 262);
        kv_i32s(b, "tokenizer.ggml.token_type", types, 262);
        kv_strs(b, "tokenizer.ggml.merges", merges, 2);
    }
    while (b->len % 32) sb_putc(b, 0);
    gguf_file *g = gguf_open_memory(b->data, b->len);
    if (!CHECK_MSG(g != NULL, "in-memory gguf: %s", cx_last_error())) return NULL;
    tokenizer *t = tok_load(g);
    gguf_close(g);
    return t;
}

static void test_metadata(void) {
    build_alphabet();
    strbuf b;
    sb_init(&b);
    ivec v;
    iv_init(&v);
    tokenizer *t = mini_load(&(mini_opts){"gpt2", "no-such-pre", -1, -1, true}, &b);
    if (CHECK(t != NULL)) { /* unknown pre-tokenizer: GPT-2 default */
        encode(t, "ab ab", 5, true, false, &v);
        CHECK(v.n == 3 && v.v[0] == 256 && v.v[1] == ' ' && v.v[2] == 256); /* ids = byte values */
        CHECK(tok_is_eog(t, 258) && tok_is_eog(t, 260) && !tok_is_eog(t, 261));
        encode(t, "x<tool>y", 8, false, false, &v); /* user-defined tokens always match */
        CHECK(v.n == 3 && v.v[1] == 259);
        encode(t, "<|im_end|>", 10, false, false, &v);
        CHECK(v.n == 10);
        encode(t, "<|im_end|><|im_end|>", 20, false, true, &v);
        CHECK(v.n == 2 && v.v[0] == 258 && v.v[1] == 258);
        tok_free(t);
    }
    t = mini_load(&(mini_opts){"gpt2", "qwen2", 1, 1, true}, &b);
    if (CHECK(t != NULL)) { /* add_bos / add_eos from metadata; Qwen2 normalizes to NFC */
        encode(t, "e\xcc\x81", 3, true, false, &v);
        CHECK(v.n == 3 && v.v[0] == 261 && v.v[1] == 257 && v.v[2] == 258);
        tok_free(t);
    }
    t = mini_load(&(mini_opts){"gpt2", "gpt2", -1, -1, true}, &b);
    if (CHECK(t != NULL)) { /* no NFC for plain GPT-2 */
        encode(t, "e\xcc\x81", 3, true, false, &v);
        CHECK(v.n == 3 && v.v[0] == 'e');
        tok_free(t);
    }
    CHECK(mini_load(&(mini_opts){"bert", "gpt2", -1, -1, true}, &b) == NULL);
    CHECK_CONTAINS(cx_last_error(), "bert");
    CHECK(mini_load(&(mini_opts){"gpt2", "gpt2", -1, -1, false}, &b) == NULL);
    CHECK_CONTAINS(cx_last_error(), "tokens");
    iv_free(&v);
    sb_free(&b);
}

int main(int argc, char **argv) {
    snprintf(g_vocab_dir, sizeof g_vocab_dir, "%s/../shared/vocab", argc > 1 ? argv[1] : ".");
    const char *families[] = {"llama-spm", "phi-3", "gpt-2", "deepseek-llm", "deepseek-coder",
                              "falcon", "starcoder", "refact", "mpt"};
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) test_family(families[i]);
    test_pretokenizers();
    test_nfc();
    test_gpt2_specials();
    test_spm_behaviour();
    test_invalid_utf8();
    test_long_inputs();
    test_metadata();
    return CHECK_DONE();
}
