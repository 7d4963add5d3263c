/* Fuzzes tokenizer encode and decode over the real vocabularies of
 * ../shared/vocab (or $CACTUS_VOCAB_DIR), each loaded once.
 *
 * Input: byte 0 picks the vocabulary, byte 1 the flags (add_special,
 * parse_special, decode with special), the rest is the text; after a NUL
 * the bytes are also read as little-endian 16-bit token ids to decode.
 * Properties: every id is in range; byte-level BPE vocabularies (gpt-2)
 * decode a valid UTF-8 text back to itself when specials are not parsed;
 * decoding fails exactly when an id is out of range. */
#include "fuzz_common.h"
#include "gguf.h"
#include "tokenizer/tokenizer.h"
#include "util.h"

static const char *const VOCABS[] = {"gpt-2",   "llama-spm",      "phi-3",  "falcon",    "mpt",
                                     "refact",  "deepseek-llm",   "deepseek-coder", "starcoder", "bert-bge"};
#define N_VOCABS (sizeof VOCABS / sizeof VOCABS[0])

static tokenizer *g_tok[N_VOCABS];
static size_t g_n;
static bool g_lossless[N_VOCABS];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    for (size_t i = 0; i < N_VOCABS; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf", fuzz_vocab_dir(), VOCABS[i]);
        gguf_file *f = gguf_open(path);
        tokenizer *t = f ? tok_load(f) : NULL;
        gguf_close(f);
        if (!t) continue; /* a family this tokenizer does not support (bert-bge's WordPiece) */
        g_lossless[g_n] = strcmp(VOCABS[i], "gpt-2") == 0;
        g_tok[g_n++] = t;
    }
    if (g_n == 0) {
        fprintf(stderr, "fuzz_tokenizer: no vocabulary could be loaded from %s\n", fuzz_vocab_dir());
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    size_t which = data[0] % g_n;
    const tokenizer *t = g_tok[which];
    bool add_special = data[1] & 1, parse_special = data[1] & 2, dec_special = data[1] & 4;
    fuzz_split sp = fuzz_split_nul(data + 2, size - 2);
    int32_t nv = tok_n_vocab(t);

    ivec ids;
    iv_init(&ids);
    FUZZ_CHECK(tok_encode(t, sp.part[0], sp.len[0], add_special, parse_special, &ids) == 0);
    for (size_t i = 0; i < ids.n; i++) FUZZ_CHECK(ids.v[i] >= 0 && ids.v[i] < nv);
    strbuf out;
    sb_init(&out);
    FUZZ_CHECK(tok_decode(t, ids.v, ids.n, dec_special, &out) == 0);
    if (g_lossless[which] && !add_special && !parse_special && utf8_is_valid(sp.part[0], sp.len[0])) {
        if (out.len != sp.len[0] || (out.len && memcmp(out.data, sp.part[0], out.len)))
            fprintf(stderr, "round trip: %zu bytes in, %zu out\n", sp.len[0], out.len);
        FUZZ_CHECK(out.len == sp.len[0] && (out.len == 0 || memcmp(out.data, sp.part[0], out.len) == 0));
    }
    sb_free(&out);
    iv_free(&ids);

    if (sp.part[1]) { /* raw ids, some out of range on purpose */
        size_t n = sp.len[1] / 2;
        int32_t *raw = malloc((n ? n : 1) * sizeof *raw);
        if (!raw) abort();
        bool in_range = true;
        for (size_t i = 0; i < n; i++) {
            uint32_t v = (uint32_t)(unsigned char)sp.part[1][2 * i] | (uint32_t)(unsigned char)sp.part[1][2 * i + 1] << 8;
            raw[i] = v == 0xFFFF ? -1 : (int32_t)(v * 7919u % (uint32_t)(nv + 1)); /* nv itself is out of range */
            in_range = in_range && raw[i] >= 0 && raw[i] < nv;
        }
        sb_init(&out);
        int rc = tok_decode(t, raw, n, dec_special, &out);
        FUZZ_CHECK(in_range ? rc == 0 : rc == -1);
        sb_free(&out);
        for (size_t i = 0; i < n && i < 8; i++) {
            char piece[8];
            int len = tok_piece(t, raw[i], dec_special, piece, sizeof piece);
            FUZZ_CHECK((raw[i] >= 0 && raw[i] < nv) ? len >= 0 : len == -1);
        }
        free(raw);
    }
    fuzz_split_free(&sp);
    cx_clear_error();
    return 0;
}
