/* Constrained decoding tests. argv[1] is the repository root; real
 * vocabularies are in argv[1]/../shared/vocab.
 *
 * The main check: random sampling under the grammar's mask, over real
 * vocabularies and every family's call syntax, always ends in text that
 * the tool-call parser reads as calls to listed functions whose arguments
 * satisfy the schemas (required keys, types, enums, lengths). Also control
 * tokens for markup (an in-memory vocabulary), the fast path inside
 * strings, unsupported schemas and malformed tools. Prints the time per
 * grammar_apply (measured, never asserted). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "grammar.h"
#include "json.h"
#include "toolcall.h"
#include "tokenizer/tokenizer.h"
#include "util.h"

static char g_vocab_dir[4096];

static const char *TOOLS =
    "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Weather\", "
    "\"parameters\": {\"type\": \"object\", \"properties\": {"
    "\"location\": {\"type\": \"string\", \"description\": \"City\"}, "
    "\"unit\": {\"type\": \"string\", \"enum\": [\"celsius\", \"fahrenheit\"]}, "
    "\"days\": {\"type\": \"integer\"}, "
    "\"ratio\": {\"type\": \"number\"}, "
    "\"metric\": {\"type\": \"boolean\"}, "
    "\"note\": {\"type\": [\"string\", \"null\"]}, "
    "\"opts\": {\"type\": \"object\", \"properties\": {\"n\": {\"type\": \"integer\"}, "
    "\"tag\": {\"type\": \"string\", \"maxLength\": 5}}, \"required\": [\"n\"]}, "
    "\"ids\": {\"type\": \"array\", \"items\": {\"type\": \"integer\"}, \"maxItems\": 4}, "
    "\"code\": {\"type\": \"string\", \"minLength\": 2, \"maxLength\": 8}}, "
    "\"required\": [\"location\", \"unit\", \"days\", \"opts\"]}}}, "
    "{\"type\": \"function\", \"function\": {\"name\": \"get_time\", \"parameters\": {\"type\": \"object\", "
    "\"properties\": {}}}}, "
    "{\"type\": \"function\", \"function\": {\"name\": \"set_mode\", \"parameters\": {\"type\": \"object\", "
    "\"properties\": {\"mode\": {\"enum\": [1, \"two\", true, null]}, \"extra\": {}}, \"required\": [\"mode\"]}}}]";

static json_doc *g_tools;

static json_doc *parse(const char *s) { return json_parse(s, strlen(s), NULL, 0); }

static tokenizer *load_vocab(const char *family) {
    char path[4200];
    snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf", g_vocab_dir, family);
    gguf_file *f = gguf_open(path);
    if (!CHECK_MSG(f != NULL, "open %s: %s", path, cx_last_error())) return NULL;
    tokenizer *t = tok_load(f);
    gguf_close(f);
    CHECK_MSG(t != NULL, "load %s: %s", family, cx_last_error());
    return t;
}

/* ---- validating a call against its schema -------------------------------------- */

static size_t utf8_chars(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static bool same_json(const json_value *a, const json_value *b) {
    strbuf x, y;
    sb_init(&x);
    sb_init(&y);
    json_write_value(&x, a);
    json_write_value(&y, b);
    bool eq = x.len == y.len && !memcmp(x.data, y.data, x.len);
    sb_free(&x);
    sb_free(&y);
    return eq;
}

static bool valid(const json_value *v, const json_value *schema);

static bool valid_type(const json_value *v, const char *t, const json_value *schema) {
    if (!strcmp(t, "string")) {
        if (v->type != JSON_STRING) return false;
        const json_value *mx = json_get(schema, "maxLength"), *mn = json_get(schema, "minLength");
        size_t n = utf8_chars(v->u.str.s, v->u.str.len);
        return (!mx || n <= (size_t)mx->u.num.i) && (!mn || n >= (size_t)mn->u.num.i);
    }
    if (!strcmp(t, "integer")) return v->type == JSON_NUMBER && v->u.num.is_int;
    if (!strcmp(t, "number")) return v->type == JSON_NUMBER;
    if (!strcmp(t, "boolean")) return v->type == JSON_BOOL;
    if (!strcmp(t, "null")) return v->type == JSON_NULL;
    if (!strcmp(t, "array")) {
        if (v->type != JSON_ARRAY) return false;
        const json_value *mx = json_get(schema, "maxItems");
        if (mx && v->u.arr.n > (size_t)mx->u.num.i) return false;
        for (size_t i = 0; i < v->u.arr.n; i++)
            if (!valid(&v->u.arr.items[i], json_get(schema, "items"))) return false;
        return true;
    }
    if (v->type != JSON_OBJECT) return false;
    const json_value *props = json_get(schema, "properties"), *req = json_get(schema, "required");
    for (size_t i = 0; i < json_len(req); i++)
        if (!json_get(v, json_at(req, i)->u.str.s)) return false;
    for (size_t i = 0; i < v->u.obj.n; i++) {
        const json_value *ps = json_get(props, v->u.obj.members[i].key);
        if (props && !ps) return false; /* the grammar writes only listed members */
        if (ps && !valid(&v->u.obj.members[i].value, ps)) return false;
    }
    return true;
}

static bool valid(const json_value *v, const json_value *schema) {
    if (!schema || json_len(schema) == 0) return true;
    const json_value *e = json_get(schema, "enum"), *t = json_get(schema, "type");
    if (e) {
        for (size_t i = 0; i < json_len(e); i++)
            if (same_json(v, json_at(e, i))) return true;
        return false;
    }
    if (!t) return true;
    if (t->type == JSON_STRING) return valid_type(v, t->u.str.s, schema);
    for (size_t i = 0; i < json_len(t); i++)
        if (valid_type(v, json_at(t, i)->u.str.s, schema)) return true;
    return false;
}

static const json_value *tool_params(const char *name) {
    const json_value *tools = json_root(g_tools);
    for (size_t i = 0; i < json_len(tools); i++) {
        const json_value *fn = json_get(json_at(tools, i), "function");
        if (!strcmp(json_get(fn, "name")->u.str.s, name)) return json_get(fn, "parameters");
    }
    return NULL;
}

/* The answer must be nothing but calls to listed (or the chosen) tools
 * with valid arguments. */
static bool check_answer(chat_family fam, const char *text, size_t len, const char *only) {
    strbuf resp, calls;
    sb_init(&resp);
    sb_init(&calls);
    int n = toolcall_parse(fam, text, len, json_root(g_tools), &resp, &calls);
    json_doc *d = parse(calls.data);
    bool ok = n >= 1 && resp.len == 0 && d;
    for (size_t i = 0; ok && i < json_len(json_root(d)); i++) {
        const json_value *c = json_at(json_root(d), i);
        const char *name = json_get(c, "name")->u.str.s;
        const json_value *params = tool_params(name);
        ok = params && (!only || !strcmp(name, only)) && valid(json_get(c, "arguments"), params);
    }
    if (!ok) fprintf(stderr, "bad answer (%d calls, response \"%s\"): %.*s\n", n, resp.data, (int)len, text);
    json_free(d);
    sb_free(&resp);
    sb_free(&calls);
    return ok;
}

/* ---- sampling under the mask ------------------------------------------------------ */

typedef struct {
    const tokenizer *t;
    int32_t n;
    float *logits;
    int32_t *allowed;
    uint8_t *closer; /* tokens that end things: quotes, brackets, end of generation */
    uint64_t rng;
    double *apply_us; /* CPU time of each grammar_apply (the machine may be busy) */
    long applies, cap;
} sampler_env;

static double cpu_us(void) { return (double)clock() * 1e6 / CLOCKS_PER_SEC; }

static uint32_t rnd(sampler_env *e) {
    e->rng ^= e->rng << 13, e->rng ^= e->rng >> 7, e->rng ^= e->rng << 17;
    return (uint32_t)(e->rng >> 16);
}

static int token_text(const tokenizer *t, int32_t id, char *buf, size_t cap) {
    int n = tok_piece(t, id, tok_is_control(t, id), buf, cap);
    return n > (int)cap ? (int)cap : n;
}

static bool env_init(sampler_env *e, const tokenizer *t) {
    memset(e, 0, sizeof *e);
    e->t = t;
    e->n = tok_n_vocab(t);
    e->rng = 0x9E3779B97F4A7C15ull;
    e->logits = malloc(sizeof *e->logits * (size_t)(e->n + 8)); /* + padding past the vocabulary */
    e->allowed = malloc(sizeof *e->allowed * (size_t)e->n);
    e->closer = calloc((size_t)e->n, 1);
    e->cap = 200000;
    e->apply_us = malloc(sizeof *e->apply_us * (size_t)e->cap);
    if (!e->logits || !e->allowed || !e->closer || !e->apply_us) return false;
    char buf[512];
    for (int32_t id = 0; id < e->n; id++) {
        int n = token_text(t, id, buf, sizeof buf);
        for (int i = 0; i < n; i++) e->closer[id] |= strchr("\"]})>", buf[i]) != NULL && buf[i];
        e->closer[id] |= tok_is_eog(t, id);
    }
    return true;
}

static void env_free(sampler_env *e) {
    free(e->logits);
    free(e->allowed);
    free(e->closer);
    free(e->apply_us);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The ids grammar_apply left finite. */
static int32_t masked(sampler_env *e, cx_grammar *g) {
    for (int32_t i = 0; i < e->n + 8; i++) e->logits[i] = 0.0f;
    double t0 = cpu_us();
    grammar_apply(g, e->logits, e->n + 8);
    if (e->applies < e->cap) e->apply_us[e->applies++] = cpu_us() - t0;
    int32_t k = 0;
    for (int32_t i = 0; i < e->n; i++)
        if (e->logits[i] == 0.0f) e->allowed[k++] = i;
    for (int32_t i = e->n; i < e->n + 8; i++)
        if (e->logits[i] == 0.0f) k = -1; /* padding must always be masked */
    return k;
}

/* Half the time a "closing" token when one is allowed, so answers end. */
static int32_t pick(sampler_env *e, int32_t k) {
    if (rnd(e) & 1) {
        int32_t n_close = 0;
        for (int32_t i = 0; i < k; i++) n_close += e->closer[e->allowed[i]];
        if (n_close) {
            int32_t want = (int32_t)(rnd(e) % (uint32_t)n_close);
            for (int32_t i = 0; i < k; i++)
                if (e->closer[e->allowed[i]] && want-- == 0) return e->allowed[i];
        }
    }
    return e->allowed[rnd(e) % (uint32_t)k];
}

/* Samples one answer into text. False when the mask left nothing, or the
 * grammar allowed an end before the call was complete. */
static bool sample(sampler_env *e, cx_grammar *g, strbuf *text, int max_tokens) {
    char buf[512];
    for (int step = 0; step < max_tokens; step++) {
        int32_t k = masked(e, g);
        if (k <= 0) return false;
        int32_t id = pick(e, k);
        if (tok_is_eog(e->t, id)) return grammar_done(g);
        grammar_accept(g, id);
        int n = token_text(e->t, id, buf, sizeof buf);
        if (n > 0) sb_append(text, buf, (size_t)n);
    }
    return false;
}

static const chat_family FAMS[] = {CHAT_CHATML, CHAT_LFM2, CHAT_LLAMA3, CHAT_MISTRAL, CHAT_GEMMA};

/* n samples per family; returns the number of valid answers. */
static int sample_many(sampler_env *e, const char *choice, int n, int *total) {
    int good = 0;
    for (size_t f = 0; f < sizeof FAMS / sizeof FAMS[0]; f++) {
        for (int s = 0; s < n; s++) {
            bool unsup = true;
            cx_grammar *g = grammar_new(e->t, FAMS[f], json_root(g_tools), choice, &unsup);
            if (!CHECK_MSG(g && !unsup, "grammar_new: %s", cx_last_error())) return good;
            strbuf text;
            sb_init(&text);
            bool ended = sample(e, g, &text, 3000);
            CHECK_MSG(ended, "%s sample %d did not end properly: %s", chat_family_name(FAMS[f]), s, text.data);
            good += ended && check_answer(FAMS[f], text.data, text.len, strcmp(choice, "required") ? choice : NULL);
            (*total)++;
            sb_free(&text);
            grammar_free(g);
        }
    }
    return good;
}

/* ---- a string state: the fast path, and its time ----------------------------------------- */

/* Feeds text byte by byte through single-byte tokens (every vocabulary
 * here has them), so the grammar sees exactly these bytes: encoding would
 * add SentencePiece's leading space. */
static void feed_text(cx_grammar *g, const tokenizer *t, const char *s) {
    int32_t byte_tok[256];
    char buf[8];
    for (int b = 0; b < 256; b++) byte_tok[b] = -1;
    for (int32_t id = 0; id < tok_n_vocab(t); id++)
        if (!tok_is_control(t, id) && tok_piece(t, id, false, buf, sizeof buf) == 1 && byte_tok[(uint8_t)buf[0]] < 0)
            byte_tok[(uint8_t)buf[0]] = id;
    for (; *s; s++) {
        CHECK_MSG(byte_tok[(uint8_t)*s] >= 0, "no token for byte 0x%02x", (uint8_t)*s);
        grammar_accept(g, byte_tok[(uint8_t)*s]);
    }
}

static void string_state(sampler_env *e, const char *name) {
    cx_grammar *g = grammar_new(e->t, CHAT_CHATML, json_root(g_tools), "get_weather", NULL);
    if (!CHECK(g != NULL)) return;
    feed_text(g, e->t, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Par");
    e->applies = 0;
    int32_t k = masked(e, g);
    /* Inside a free string nearly everything is allowed. */
    CHECK_MSG(k > e->n * 8 / 10, "%s: only %d of %d tokens allowed in a string", name, k, e->n);
    masked(e, g);
    printf("  %-14s vocab %6d: in a string (%d allowed) %.0f us first, %.0f us remembered\n", name, e->n, k,
           e->apply_us[0], e->apply_us[1]);
    /* Right after the string: a quote-carrying token must be there, a letter not. */
    feed_text(g, e->t, "is\", ");
    k = masked(e, g);
    CHECK_MSG(k > 0 && k < 2000, "%s: %d tokens allowed after a member", name, k);
    feed_text(g, e->t, "\"unit\": \"");
    k = masked(e, g);
    CHECK_MSG(k > 0 && k < 100, "%s: %d tokens allowed in an enum", name, k);
    grammar_free(g);
}

static void test_vocab(const char *family, int per_family, int *good, int *total) {
    tokenizer *t = load_vocab(family);
    if (!t) return;
    sampler_env e;
    if (!CHECK(env_init(&e, t))) return;
    grammar_cache_clear(); /* so the first grammar_new builds the index */
    double t0 = cx_now_ms();
    cx_grammar *g = grammar_new(t, CHAT_CHATML, json_root(g_tools), "required", NULL);
    double build = cx_now_ms() - t0;
    t0 = cx_now_ms();
    cx_grammar *g2 = grammar_new(t, CHAT_CHATML, json_root(g_tools), "required", NULL);
    double rebuild = cx_now_ms() - t0;
    CHECK(g && g2);
    grammar_free(g);
    grammar_free(g2);
    string_state(&e, family);
    e.applies = 0;
    *good += sample_many(&e, "required", per_family, total);
    *good += sample_many(&e, "set_mode", 1, total);
    *good += sample_many(&e, "get_weather", 1, total);
    double sum = 0;
    for (long i = 0; i < e.applies; i++) sum += e.apply_us[i];
    qsort(e.apply_us, (size_t)e.applies, sizeof *e.apply_us, cmp_double);
    long n = e.applies ? e.applies : 1;
    printf("  %-14s grammar_new %.1f ms (index built), %.1f ms (index cached); grammar_apply over %ld steps: "
           "mean %.0f us, median %.0f, p99 %.0f, max %.0f (CPU time)\n",
           family, build, rebuild, e.applies, sum / (double)n, e.apply_us[n / 2], e.apply_us[n * 99 / 100],
           e.apply_us[n - 1]);
    env_free(&e);
    tok_free(t);
}

static void test_sampling(void) {
    int good = 0, total = 0;
    test_vocab("llama-spm", 6, &good, &total);
    test_vocab("gpt-2", 6, &good, &total);
    test_vocab("deepseek-llm", 8, &good, &total);
    CHECK_MSG(total >= 100, "only %d samples", total);
    CHECK_EQ_INT(good, total);
    printf("  %d/%d sampled answers valid\n", good, total);
}

/* ---- markup as control tokens: an in-memory byte-level vocabulary ------------------------- */

static void put_u32(strbuf *b, uint32_t v) { sb_append(b, (const char *)&v, 4); }
static void put_u64(strbuf *b, uint64_t v) { sb_append(b, (const char *)&v, 8); }
static void put_str(strbuf *b, const char *s) {
    put_u64(b, strlen(s));
    sb_append(b, s, strlen(s));
}
static void kv_head(strbuf *b, const char *key, uint32_t type) {
    put_str(b, key);
    put_u32(b, type);
}

/* GPT-2's byte alphabet: printable bytes stand for themselves, the others
 * for U+0100 upwards. */
static void byte_char(int b, int *k, char out[4]) {
    bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    unsigned cp = printable ? (unsigned)b : 0x100u + (unsigned)(*k)++;
    if (cp < 0x80) out[0] = (char)cp, out[1] = 0;
    else out[0] = (char)(0xC0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3F)), out[2] = 0;
}

#define MINI_N 262
static tokenizer *mini_vocab(void) {
    static char alpha[256][4];
    const char *toks[MINI_N];
    int32_t types[MINI_N];
    int k = 0;
    for (int b = 0; b < 256; b++) byte_char(b, &k, alpha[b]), toks[b] = alpha[b], types[b] = 1;
    toks[256] = "<|tool_call_start|>", types[256] = 3;
    toks[257] = "<|tool_call_end|>", types[257] = 3;
    toks[258] = "<|im_end|>", types[258] = 3;
    toks[259] = "<|im_start|>", types[259] = 3;
    toks[260] = "<tool_call>", types[260] = 4;
    toks[261] = "ab", types[261] = 1;
    strbuf b;
    sb_init(&b);
    sb_append(&b, "GGUF", 4);
    put_u32(&b, 3), put_u64(&b, 0), put_u64(&b, 7);
    kv_head(&b, "general.architecture", 8), put_str(&b, "llama");
    kv_head(&b, "tokenizer.ggml.model", 8), put_str(&b, "gpt2");
    kv_head(&b, "tokenizer.ggml.pre", 8), put_str(&b, "default");
    kv_head(&b, "tokenizer.ggml.eos_token_id", 4), put_u32(&b, 258);
    kv_head(&b, "tokenizer.ggml.tokens", 9), put_u32(&b, 8), put_u64(&b, MINI_N);
    for (int i = 0; i < MINI_N; i++) put_str(&b, toks[i]);
    kv_head(&b, "tokenizer.ggml.token_type", 9), put_u32(&b, 5), put_u64(&b, MINI_N);
    sb_append(&b, (const char *)types, sizeof types);
    kv_head(&b, "tokenizer.ggml.merges", 9), put_u32(&b, 8), put_u64(&b, 1);
    put_str(&b, "a b");
    while (b.len % 32) sb_putc(&b, 0);
    gguf_file *f = gguf_open_memory(b.data, b.len);
    tokenizer *t = f ? tok_load(f) : NULL;
    CHECK_MSG(t != NULL, "mini vocab: %s", cx_last_error());
    gguf_close(f);
    sb_free(&b);
    return t;
}

static bool allowed(cx_grammar *g, int32_t id, int32_t n) {
    float *l = calloc((size_t)n, sizeof *l);
    grammar_apply(g, l, n);
    bool ok = l[id] == 0.0f;
    free(l);
    return ok;
}

static void test_control_tokens(void) {
    tokenizer *t = mini_vocab();
    if (!t) return;
    int32_t n = tok_n_vocab(t);
    cx_grammar *g = grammar_new(t, CHAT_LFM2, json_root(g_tools), "get_time", NULL);
    if (!CHECK(g != NULL)) return;
    /* The start marker as one control token, or spelled out byte by byte. */
    CHECK(allowed(g, 256, n));
    CHECK(allowed(g, '<', n)); /* the byte token for '<' */
    CHECK(!allowed(g, 258, n));              /* no end before the call */
    CHECK(!allowed(g, 259, n));
    CHECK(!allowed(g, 257, n));
    grammar_accept(g, 256);
    CHECK(!grammar_done(g));
    feed_text(g, t, "[get_time()]");
    CHECK(!allowed(g, 258, n));
    CHECK(allowed(g, 257, n));
    grammar_accept(g, 257);
    CHECK(grammar_done(g));
    CHECK(allowed(g, 258, n)); /* now only the end */
    CHECK(!allowed(g, 'a', n));
    grammar_free(g);

    /* ChatML: <tool_call> is a user-defined token; a control token's text
     * is never allowed inside a string even though it is plain text. */
    g = grammar_new(t, CHAT_CHATML, json_root(g_tools), "get_weather", NULL);
    if (!CHECK(g != NULL)) return;
    CHECK(allowed(g, 260, n));
    grammar_accept(g, 260);
    feed_text(g, t, "\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"x");
    CHECK(allowed(g, 261, n));
    CHECK(!allowed(g, 259, n));
    CHECK(!allowed(g, 258, n));
    CHECK(!grammar_done(g));
    /* A token the mask forbids ends the grammar: only the end remains. */
    grammar_accept(g, 259);
    CHECK(allowed(g, 258, n));
    CHECK(!allowed(g, 261, n));
    grammar_free(g);
    tok_free(t);
}

/* ---- known calls, byte by byte --------------------------------------------------------------- */

/* Feeds `text` one byte token at a time; every one must be allowed by the
 * mask. Returns how many bytes were allowed before the first refusal. */
static size_t follow(const tokenizer *t, cx_grammar *g, const char *text) {
    int32_t byte_tok[256], n = tok_n_vocab(t);
    char buf[8];
    for (int b = 0; b < 256; b++) byte_tok[b] = -1;
    for (int32_t id = 0; id < n; id++)
        if (!tok_is_control(t, id) && tok_piece(t, id, false, buf, sizeof buf) == 1 && byte_tok[(uint8_t)buf[0]] < 0)
            byte_tok[(uint8_t)buf[0]] = id;
    float *l = malloc(sizeof *l * (size_t)n);
    size_t i = 0;
    for (; l && text[i]; i++) {
        for (int32_t k = 0; k < n; k++) l[k] = 0.0f;
        grammar_apply(g, l, n);
        int32_t id = byte_tok[(uint8_t)text[i]];
        if (id < 0 || l[id] != 0.0f) break;
        grammar_accept(g, id);
    }
    free(l);
    return i;
}

static void expect_calls(const tokenizer *t, chat_family fam, const char *choice, const char *text, bool ok, int line) {
    cx_grammar *g = grammar_new(t, fam, json_root(g_tools), choice, NULL);
    if (!CHECK_MSG(g != NULL, "line %d: %s", line, cx_last_error())) return;
    size_t got = follow(t, g, text), len = strlen(text);
    if (ok) {
        CHECK_MSG(got == len, "line %d: refused at byte %zu: %.*s|%s", line, got, (int)got, text, text + got);
        CHECK_MSG(grammar_done(g), "line %d: not done after the whole call", line);
    } else {
        CHECK_MSG(got < len, "line %d: accepted %s", line, text);
    }
    grammar_free(g);
}
#define CALLS_OK(t, fam, choice, text) expect_calls((t), (fam), (choice), (text), true, __LINE__)
#define CALLS_BAD(t, fam, choice, text) expect_calls((t), (fam), (choice), (text), false, __LINE__)

static void test_known_calls(void) {
    tokenizer *t = load_vocab("gpt-2");
    if (!t) return;
    const char *args = "{\"location\": \"Paris \\\"16e\\\" \\u00e9\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\", "
                       "\"unit\": \"celsius\", \"days\": -3, \"ratio\": 1.5e-3, \"metric\": true, \"note\": null, "
                       "\"opts\": {\"n\": 0, \"tag\": \"abcde\"}, \"ids\": [1, 22, 333], \"code\": \"xy\"}";
    char buf[1024];
    snprintf(buf, sizeof buf, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": %s}\n</tool_call>", args);
    CALLS_OK(t, CHAT_CHATML, "required", buf);
    CALLS_OK(t, CHAT_CHATML, "get_weather", buf);
    CALLS_BAD(t, CHAT_CHATML, "set_mode", buf);
    snprintf(buf, sizeof buf, "{\"name\": \"get_weather\", \"parameters\": %s}", args);
    CALLS_OK(t, CHAT_LLAMA3, "required", buf);
    snprintf(buf, sizeof buf, "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": %s}]", args);
    CALLS_OK(t, CHAT_MISTRAL, "required", buf);
    /* Constrained decoding yields exactly one call: a second one is refused. */
    CALLS_BAD(t, CHAT_MISTRAL, "required",
              "[TOOL_CALLS][{\"name\": \"get_time\", \"arguments\": {}}, {\"name\": \"get_time\", \"arguments\": {}}]");
    snprintf(buf, sizeof buf, "{\"name\":\"get_weather\",\"arguments\":%s}", args);
    CALLS_OK(t, CHAT_GEMMA, "required", buf);
    CALLS_OK(t, CHAT_LFM2, "required",
             "<|tool_call_start|>[get_weather(location=\"Paris\", unit=\"fahrenheit\", days=3, metric=False, note=None, "
             "opts={\"n\": 1}, ids=[], code=\"abcdefgh\")]<|tool_call_end|>");
    CALLS_OK(t, CHAT_LFM2, "required", "<|tool_call_start|>[set_mode(mode=True, extra=[1, {\"a\": None}])]<|tool_call_end|>");
    CALLS_BAD(t, CHAT_LFM2, "required", "<|tool_call_start|>[get_time(), get_time()]<|tool_call_end|>");
    CALLS_OK(t, CHAT_CHATML, "required",
             "<tool_call>\n{\"name\": \"set_mode\", \"arguments\": {\"mode\": \"two\", \"extra\": {\"k\": [true, -0.5, \"s\"]}}}"
             "\n</tool_call>");
    CALLS_BAD(t, CHAT_CHATML, "required",
              "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", "
              "\"arguments\": {}}\n</tool_call>");
    /* Wrong types, missing required members, unknown members, bad strings. */
    CALLS_BAD(t, CHAT_CHATML, "required", "<tool_call>\n{\"name\": \"set_mode\", \"arguments\": {\"mode\": 2}}\n</tool_call>");
    CALLS_BAD(t, CHAT_CHATML, "required", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"P\", "
                                          "\"unit\": \"celsius\", \"days\": \"3\"}}\n</tool_call>");
    CALLS_BAD(t, CHAT_CHATML, "required", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"unit\": \"celsius\"}}");
    CALLS_BAD(t, CHAT_CHATML, "required", "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"x\": 1}}");
    CALLS_BAD(t, CHAT_CHATML, "required", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"a\nb\"");
    CALLS_BAD(t, CHAT_CHATML, "required", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"\\x\"");
    CALLS_BAD(t, CHAT_CHATML, "required", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"\\udc00\"");
    CALLS_BAD(t, CHAT_CHATML, "required", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"\xC0\xAF\"");
    CALLS_BAD(t, CHAT_CHATML, "required", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"\xED\xA0\x80\"");
    CALLS_BAD(t, CHAT_LFM2, "required", "<|tool_call_start|>[get_weather(location=\"P\", unit=\"celsius\", days=3, opts={\"n\": 1}, "
                                        "code=\"abcdefghi\")]"); /* longer than maxLength */
    CALLS_BAD(t, CHAT_LFM2, "required", "<|tool_call_start|>[get_weather(location=\"P\", unit=\"celsius\", days=3, opts={\"n\": 1}, "
                                        "code=\"a\")]"); /* shorter than minLength */
    CALLS_BAD(t, CHAT_LFM2, "required", "<|tool_call_start|>[set_mode(mode=true)]"); /* JSON spelling in Python */
    CALLS_BAD(t, CHAT_CHATML, "required", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"P\", "
                                          "\"unit\": \"celsius\", \"days\": 007");
    CALLS_BAD(t, CHAT_CHATML, "required", "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>     ");
    CALLS_BAD(t, CHAT_GEMMA, "required", "Sure! {\"name\": \"get_time\", \"arguments\": {}}");
    tok_free(t);
}

/* 300 tools with a 300-value enum each: choices are tries, so every name
 * and value stays reachable and the states stay small. */
static void test_many_tools(void) {
    tokenizer *t = load_vocab("gpt-2");
    if (!t) return;
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "[");
    for (int i = 0; i < 300; i++) {
        sb_printf(&sb, "%s{\"type\": \"function\", \"function\": {\"name\": \"tool_%d\", \"parameters\": {\"type\": "
                  "\"object\", \"properties\": {\"v\": {\"enum\": [", i ? ", " : "", i);
        for (int k = 0; k < 300; k++) sb_printf(&sb, "%s\"v%d\"", k ? ", " : "", k);
        sb_puts(&sb, "]}}, \"required\": [\"v\"]}}}");
    }
    sb_puts(&sb, "]");
    json_doc *d = parse(sb.data);
    sb_free(&sb);
    if (!CHECK(d != NULL)) return;
    const char *ok[] = {"<tool_call>\n{\"name\": \"tool_299\", \"arguments\": {\"v\": \"v299\"}}\n</tool_call>",
                        "<tool_call>\n{\"name\": \"tool_3\", \"arguments\": {\"v\": \"v30\"}}\n</tool_call>",
                        "<tool_call>\n{\"name\": \"tool_0\", \"arguments\": {\"v\": \"v0\"}}\n</tool_call>"};
    const char *bad[] = {"<tool_call>\n{\"name\": \"tool_300\"", "<tool_call>\n{\"name\": \"tool_1\", \"arguments\": {\"v\": \"v300\""};
    for (int i = 0; i < 5; i++) {
        cx_grammar *g = grammar_new(t, CHAT_CHATML, json_root(d), "required", NULL);
        if (!CHECK(g != NULL)) break;
        const char *text = i < 3 ? ok[i] : bad[i - 3];
        size_t got = follow(t, g, text);
        if (i < 3) CHECK_MSG(got == strlen(text) && grammar_done(g), "refused at %zu: %s", got, text);
        else CHECK_MSG(got < strlen(text), "accepted %s", text);
        grammar_free(g);
    }
    json_free(d);
    tok_free(t);
}

/* ---- rejections -------------------------------------------------------------------------------- */

static void expect_unsupported(const tokenizer *t, const char *tools) {
    json_doc *d = parse(tools);
    if (!CHECK_MSG(d != NULL, "test JSON: %s", tools)) return;
    bool unsup = false;
    cx_grammar *g = grammar_new(t, CHAT_CHATML, json_root(d), "required", &unsup);
    CHECK_MSG(g == NULL && unsup, "should be unsupported: %s", tools);
    CHECK_CONTAINS(cx_last_error(), "does not support");
    grammar_free(g);
    json_free(d);
}

static void expect_error(const tokenizer *t, const char *tools, const char *choice, const char *want) {
    json_doc *d = tools ? parse(tools) : NULL;
    if (tools && !CHECK_MSG(d != NULL, "test JSON: %s", tools)) return;
    bool unsup = true;
    cx_clear_error();
    cx_grammar *g = grammar_new(t, CHAT_CHATML, json_root(d), choice, &unsup);
    CHECK_MSG(g == NULL && !unsup, "should fail: %s", tools ? tools : "(null)");
    CHECK_CONTAINS(cx_last_error(), want);
    grammar_free(g);
    json_free(d);
}

#define FN(params) "[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": " params "}}]"

static void test_rejections(void) {
    tokenizer *t = mini_vocab();
    if (!t) return;
    expect_unsupported(t, FN("{\"type\": \"object\", \"properties\": {\"a\": {\"anyOf\": [{\"type\": \"string\"}]}}}"));
    expect_unsupported(t, FN("{\"type\": \"object\", \"properties\": {\"a\": {\"$ref\": \"#/defs/x\"}}}"));
    expect_unsupported(t, FN("{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"string\", \"pattern\": \"^a\"}}}"));
    expect_unsupported(t, FN("{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"array\", \"items\": "
                             "{\"oneOf\": []}}}}"));
    expect_unsupported(t, FN("{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"date\"}}}"));
    expect_unsupported(t, FN("{\"allOf\": []}"));
    expect_error(t, "{\"a\": 1}", "required", "tools");
    expect_error(t, "[]", "required", "tools");
    expect_error(t, "[1]", "required", "tools[0]");
    expect_error(t, "[{\"type\": \"function\", \"function\": {\"parameters\": {}}}]", "required", "name");
    expect_error(t, "[{\"type\": \"function\", \"function\": \"f\"}]", "required", "function");
    expect_error(t, FN("{\"type\": \"object\", \"properties\": []}"), "required", "properties");
    expect_error(t, FN("{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"string\"}}, \"required\": \"a\"}"),
                 "required", "required");
    expect_error(t, FN("{\"type\": \"object\", \"properties\": {\"a\": {\"type\": 3}}}"), "required", "type");
    expect_error(t, FN("{\"type\": \"object\", \"properties\": {\"a\": {\"enum\": []}}}"), "required", "enum");
    expect_error(t, FN("{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"string\", \"maxLength\": -1}}}"),
                 "required", "maxLength");
    expect_error(t, FN("\"x\""), "required", "parameters");
    expect_error(t, FN("{}"), "nope", "nope");
    expect_error(t, FN("{}"), "auto", "tool_choice");
    expect_error(t, FN("{}"), NULL, "tool_choice");
    expect_error(t, NULL, "required", "tools");
    /* A tool without parameters, and parameters without properties, are fine. */
    json_doc *d = parse("[{\"name\": \"bare\"}, {\"type\": \"function\", \"function\": {\"name\": \"o\", "
                        "\"parameters\": {\"type\": \"object\"}}}]");
    cx_grammar *g = grammar_new(t, CHAT_GEMMA, json_root(d), "required", NULL);
    CHECK_MSG(g != NULL, "%s", cx_last_error());
    grammar_free(g);
    json_free(d);
    tok_free(t);
}

int main(int argc, char **argv) {
    snprintf(g_vocab_dir, sizeof g_vocab_dir, "%s/../shared/vocab", argc > 1 ? argv[1] : ".");
    g_tools = parse(TOOLS);
    if (!CHECK(g_tools != NULL)) return CHECK_DONE();
    test_control_tokens();
    test_rejections();
    test_known_calls();
    test_many_tools();
    test_sampling();
    json_free(g_tools);
    grammar_cache_clear();
    return CHECK_DONE();
}
