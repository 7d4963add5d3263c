/* Fuzzes the tool-call grammar: grammar_new from a fuzzed tools JSON (the
 * JSON Schema compiler and each family's call syntax), then a few decoding
 * steps through grammar_apply / grammar_accept with tokens the fuzzer picks
 * among those the mask allows, over a real vocabulary loaded once.
 *
 * Input: byte 0 picks the family, byte 1 the vocabulary (mostly a small
 * byte-level one built in memory, with every family's markup as control
 * tokens, so that the fuzzer runs fast; 1 input in 8 llama-spm or gpt-2,
 * for at most 8 steps) and the tool_choice ("required" or the name of tool
 * k); then the tools JSON and, after a NUL, the token choices (two bytes per
 * step, at most 32 steps).
 * Properties: the padding past the vocabulary is always masked; once the
 * grammar is done an end-of-generation token is allowed; the produced
 * text goes through the tool-call parser. */
#include "fuzz_common.h"
#include "gguf.h"
#include "grammar.h"
#include "toolcall.h"
#include "tokenizer/tokenizer.h"
#include "util.h"

static const char *const VOCABS[] = {"llama-spm", "gpt-2"};
static tokenizer *g_tok[3]; /* the in-memory one, then VOCABS */
static float *g_logits;
static int32_t *g_allowed;

#define PAD 8
#define MAX_STEPS 32
#define MAX_STEPS_REAL 8

/* ---- a small byte-level vocabulary, written as a GGUF in memory ---------------------------- */

static void put(strbuf *b, const void *p, size_t n) { sb_append(b, p, n); }
static void put_u32(strbuf *b, uint32_t v) {
    uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, le, 4);
}
static void put_u64(strbuf *b, uint64_t v) {
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}
static void put_str(strbuf *b, const char *s) {
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void put_key(strbuf *b, const char *key, uint32_t type) {
    put_str(b, key);
    put_u32(b, type);
}

static const char *const MARKUP[] = {"<|tool_call_start|>", "<|tool_call_end|>", "<|im_start|>", "<|im_end|>",
                                     "<tool_call>", "</tool_call>", "<|python_tag|>", "[TOOL_CALLS]",
                                     "<|eot_id|>", "<end_of_turn>", "</s>"};
static const char *const WORDS[] = {"name", "arguments", "get", "_weather", "\":", "{\"", "\"}", "true", "null",
                                    "12", "\u00e9", "\u0120\"", "},", "],", "location"};
#define N_MARKUP (sizeof MARKUP / sizeof MARKUP[0])
#define N_WORDS (sizeof WORDS / sizeof WORDS[0])

/* GPT-2's byte alphabet: printable bytes are themselves, the others U+0100 upwards. */
static void byte_symbol(int byte, int *next, char out[4]) {
    bool printable = (byte >= 0x21 && byte <= 0x7E) || (byte >= 0xA1 && byte <= 0xAC) || byte >= 0xAE;
    unsigned cp = printable ? (unsigned)byte : 0x100u + (unsigned)(*next)++;
    if (cp < 0x80) out[0] = (char)cp, out[1] = 0;
    else out[0] = (char)(0xC0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3F)), out[2] = 0;
}

static tokenizer *small_vocab(void) {
    static char sym[256][4];
    int next = 0;
    uint32_t n = 256 + (uint32_t)N_MARKUP + (uint32_t)N_WORDS;
    strbuf b;
    sb_init(&b);
    put(&b, "GGUF", 4);
    put_u32(&b, 3), put_u64(&b, 0), put_u64(&b, 6);
    put_key(&b, "tokenizer.ggml.model", GGUF_TYPE_STRING), put_str(&b, "gpt2");
    put_key(&b, "tokenizer.ggml.pre", GGUF_TYPE_STRING), put_str(&b, "default");
    put_key(&b, "tokenizer.ggml.eos_token_id", GGUF_TYPE_UINT32), put_u32(&b, 256 + 3); /* <|im_end|> */
    put_key(&b, "tokenizer.ggml.tokens", GGUF_TYPE_ARRAY), put_u32(&b, GGUF_TYPE_STRING), put_u64(&b, n);
    for (int i = 0; i < 256; i++) byte_symbol(i, &next, sym[i]), put_str(&b, sym[i]);
    for (size_t i = 0; i < N_MARKUP; i++) put_str(&b, MARKUP[i]);
    for (size_t i = 0; i < N_WORDS; i++) put_str(&b, WORDS[i]);
    put_key(&b, "tokenizer.ggml.token_type", GGUF_TYPE_ARRAY), put_u32(&b, GGUF_TYPE_INT32), put_u64(&b, n);
    for (uint32_t i = 0; i < n; i++) put_u32(&b, i >= 256 && i < 256 + N_MARKUP ? 3 : 1);
    put_key(&b, "tokenizer.ggml.merges", GGUF_TYPE_ARRAY), put_u32(&b, GGUF_TYPE_STRING), put_u64(&b, 1);
    put_str(&b, "n a");
    gguf_file *f = b.failed ? NULL : gguf_open_memory(b.data, b.len);
    tokenizer *t = f ? tok_load(f) : NULL;
    gguf_close(f);
    sb_free(&b);
    if (!t) {
        fprintf(stderr, "fuzz_grammar: the in-memory vocabulary does not load: %s\n", cx_last_error());
        abort();
    }
    return t;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    g_tok[0] = small_vocab();
    int32_t most = tok_n_vocab(g_tok[0]);
    for (int i = 1; i < 3; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf", fuzz_vocab_dir(), VOCABS[i - 1]);
        gguf_file *f = gguf_open(path);
        g_tok[i] = f ? tok_load(f) : NULL;
        gguf_close(f);
        if (!g_tok[i]) {
            fprintf(stderr, "fuzz_grammar: cannot load %s: %s\n", path, cx_last_error());
            abort();
        }
        if (tok_n_vocab(g_tok[i]) > most) most = tok_n_vocab(g_tok[i]);
    }
    g_logits = malloc(sizeof *g_logits * (size_t)(most + PAD));
    g_allowed = malloc(sizeof *g_allowed * (size_t)most);
    if (!g_logits || !g_allowed) abort();
    return 0;
}

static const char *pick_choice(const json_value *tools, unsigned k) {
    if (k == 0 || !tools || tools->type != JSON_ARRAY || json_len(tools) == 0) return "required";
    const json_value *t = json_at(tools, (k - 1) % json_len(tools));
    const json_value *fn = json_get(t, "function"), *name = fn ? json_get(fn, "name") : NULL;
    return name && name->type == JSON_STRING ? name->u.str.s : "no_such_tool";
}

static void decode(cx_grammar *g, const tokenizer *t, chat_family fam, const json_value *tools, const uint8_t *steps,
                   size_t n_steps, size_t max_steps) {
    int32_t n = tok_n_vocab(t);
    strbuf text;
    sb_init(&text);
    char buf[256];
    for (size_t s = 0; s < n_steps && s < max_steps; s++) {
        for (int32_t i = 0; i < n + PAD; i++) g_logits[i] = 0.0f;
        grammar_apply(g, g_logits, n + PAD);
        for (int32_t i = n; i < n + PAD; i++) FUZZ_CHECK(g_logits[i] != 0.0f);
        int32_t k = 0;
        bool eog_allowed = false;
        for (int32_t i = 0; i < n; i++)
            if (g_logits[i] == 0.0f) {
                g_allowed[k++] = i;
                eog_allowed = eog_allowed || tok_is_eog(t, i);
            }
        if (grammar_done(g)) FUZZ_CHECK(eog_allowed);
        if (k == 0) break;
        int32_t id = g_allowed[((uint32_t)steps[2 * s] | (uint32_t)steps[2 * s + 1] << 8) % (uint32_t)k];
        if (tok_is_eog(t, id)) break;
        grammar_accept(g, id);
        int len = tok_piece(t, id, tok_is_control(t, id), buf, sizeof buf);
        if (len > 0) sb_append(&text, buf, (size_t)len < sizeof buf ? (size_t)len : sizeof buf);
    }
    strbuf resp, calls;
    sb_init(&resp);
    sb_init(&calls);
    FUZZ_CHECK(toolcall_parse(fam, text.data ? text.data : "", text.len, tools, &resp, &calls) >= 0);
    sb_free(&resp);
    sb_free(&calls);
    sb_free(&text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    chat_family fam = (chat_family)(data[0] % CHAT_N_FAMILIES);
    unsigned v = data[1] & 15; /* the real vocabularies are slow: 1 input in 8 */
    const tokenizer *t = g_tok[v < 14 ? 0 : v - 13];
    size_t max_steps = v < 14 ? MAX_STEPS : MAX_STEPS_REAL;
    fuzz_split sp = fuzz_split_nul(data + 2, size - 2);
    json_doc *tdoc = fuzz_json(sp.part[0], sp.len[0]);
    if (tdoc) {
        const json_value *tools = json_root(tdoc);
        bool unsupported = false;
        cx_grammar *g = grammar_new(t, fam, tools, pick_choice(tools, data[1] >> 4), &unsupported);
        if (g) {
            FUZZ_CHECK(!unsupported);
            if (sp.part[1]) decode(g, t, fam, tools, (const uint8_t *)sp.part[1], sp.len[1] / 2, max_steps);
            grammar_free(g);
        }
    }
    json_free(tdoc);
    fuzz_split_free(&sp);
    cx_clear_error();
    return 0;
}
