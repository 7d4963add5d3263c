/* Pre-tokenizer pipelines as Hugging Face runs them: a sequence of steps,
 * each splitting every piece the previous step produced ("Isolated": a
 * match becomes a piece, and so does the text between matches). Anchors and
 * lookaheads therefore stop at the edge of the piece being split, which is
 * why each matcher takes the piece end `b`.
 *
 * The regexes (facts from the models' tokenizer.json files):
 *   GPT2   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *   LLAMA3 (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *          ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+      (QWEN2: \p{N} instead of \p{N}{1,3})
 * Each matcher below follows the regex engine's leftmost, first-alternative,
 * greedy-with-backtracking semantics. */
#include "pretokenize.h"

#include <stdint.h>
#include <string.h>

#include "../util.h"
#include "unicode.h"

/* ---- character kinds used by the regexes ---- */

enum { K_L, K_N, K_WS, K_O }; /* \p{L}, \p{N}, \s, anything else */

static int kind_of(uint32_t cp) {
    uint8_t f = ucd_flags(cp);
    if (f & UCD_WS) return K_WS;
    unsigned c = f & UCD_CLASS_MASK;
    return c == UCD_L ? K_L : c == UCD_N ? K_N : K_O;
}

/* Decodes the character at p (p < b). */
static size_t at(const char *s, size_t p, size_t b, uint32_t *cp) { return utf8_next(s + p, b - p, cp); }

/* End of the run of characters of kind k starting at p. */
static size_t run_end(const char *s, size_t p, size_t b, int k) {
    while (p < b) {
        uint32_t cp;
        size_t l = at(s, p, b, &cp);
        if (kind_of(cp) != k) break;
        p += l;
    }
    return p;
}

/* Like run_end for \p{N}, but at most max characters. */
static size_t digits_end(const char *s, size_t p, size_t b, int max) {
    for (int i = 0; i < max && p < b; i++) {
        uint32_t cp;
        size_t l = at(s, p, b, &cp);
        if (kind_of(cp) != K_N) break;
        p += l;
    }
    return p;
}

static bool ascii_eq_fold(char c, char lower) { return c == lower || c == lower - 32; }

/* Length of the contraction after an apostrophe at s[p..b) (s|t|re|ve|m|ll|d), or 0.
 * With fold, case is ignored as Unicode simple case folding does, which also
 * makes U+017F LATIN SMALL LETTER LONG S match 's'. */
static size_t contraction(const char *s, size_t p, size_t b, bool fold) {
    size_t n = b - p;
    if (n == 0) return 0;
    const char *c = s + p;
    if (!fold) {
        if (c[0] == 's' || c[0] == 't' || c[0] == 'm' || c[0] == 'd') return 1;
        if (n >= 2 && ((c[0] == 'r' && c[1] == 'e') || (c[0] == 'v' && c[1] == 'e') || (c[0] == 'l' && c[1] == 'l')))
            return 2;
        return 0;
    }
    if (ascii_eq_fold(c[0], 's') || ascii_eq_fold(c[0], 't') || ascii_eq_fold(c[0], 'm') ||
        ascii_eq_fold(c[0], 'd'))
        return 1;
    if (n >= 2 && (unsigned char)c[0] == 0xC5 && (unsigned char)c[1] == 0xBF) return 2; /* U+017F */
    if (n >= 2 && ((ascii_eq_fold(c[0], 'r') && ascii_eq_fold(c[1], 'e')) ||
                   (ascii_eq_fold(c[0], 'v') && ascii_eq_fold(c[1], 'e')) ||
                   (ascii_eq_fold(c[0], 'l') && ascii_eq_fold(c[1], 'l'))))
        return 2;
    return 0;
}

/* Whitespace at p: \s+(?!\S) then \s+. The greedy run backs off one
 * character when a non-space follows, so that character's word can take it. */
static size_t ws_tail(const char *s, size_t p, size_t b) {
    size_t q = p, last = p;
    while (q < b) {
        uint32_t cp;
        size_t l = at(s, q, b, &cp);
        if (kind_of(cp) != K_WS) break;
        last = q;
        q += l;
    }
    if (q == b) return q;
    return last > p ? last : q;
}

/* GPT-2 regex: end of the match starting at p (it always matches). */
static size_t match_gpt2(const char *s, size_t p, size_t b) {
    uint32_t c;
    size_t l = at(s, p, b, &c);
    if (c == '\'') {
        size_t k = contraction(s, p + 1, b, false);
        if (k) return p + 1 + k;
    }
    if (c == ' ' && p + 1 < b) {
        uint32_t c1;
        at(s, p + 1, b, &c1);
        int k1 = kind_of(c1);
        if (k1 != K_WS) return run_end(s, p + 1, b, k1);
    }
    int k = kind_of(c);
    if (k != K_WS) return run_end(s, p + l, b, k);
    return ws_tail(s, p, b);
}

/* Llama 3 / Qwen2 regex: end of the match starting at p. */
static size_t match_llama3(const char *s, size_t p, size_t b, int max_digits) {
    uint32_t c;
    size_t l = at(s, p, b, &c);
    if (c == '\'') {
        size_t k = contraction(s, p + 1, b, true);
        if (k) return p + 1 + k;
    }
    int k = kind_of(c);
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (k == K_L) return run_end(s, p + l, b, K_L);
    if (k != K_N && c != '\r' && c != '\n' && p + l < b) {
        uint32_t c1;
        size_t l1 = at(s, p + l, b, &c1);
        if (kind_of(c1) == K_L) return run_end(s, p + l + l1, b, K_L);
    }
    if (k == K_N) return digits_end(s, p, b, max_digits);
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    size_t q = SIZE_MAX;
    if (c == ' ' && p + 1 < b) {
        uint32_t c1;
        at(s, p + 1, b, &c1);
        if (kind_of(c1) == K_O) q = run_end(s, p + 1, b, K_O);
    }
    if (q == SIZE_MAX && k == K_O) q = run_end(s, p, b, K_O);
    if (q != SIZE_MAX) {
        while (q < b && (s[q] == '\r' || s[q] == '\n')) q++;
        return q;
    }
    /* \s*[\r\n]+ : the whole space run, backed off to just after its last newline */
    size_t e = run_end(s, p, b, K_WS), nl = SIZE_MAX;
    for (size_t i = p; i < e; i++)
        if (s[i] == '\r' || s[i] == '\n') nl = i;
    if (nl != SIZE_MAX) return nl + 1;
    return ws_tail(s, p, b);
}

/* ---- class-based split steps ---- */

typedef struct {
    uint32_t lo, hi;
} cp_range;

static bool in_ranges(const cp_range *r, size_t n, uint32_t cp) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid].lo) hi = mid;
        else if (cp > r[mid].hi) lo = mid + 1;
        else return true;
    }
    return false;
}

/* DeepSeek LLM's letter class: the cased letters its tokenizer.json lists. */
static const cp_range ds_letters[] = {
    {0x41, 0x5a}, {0x61, 0x7a}, {0xb5, 0xb5}, {0xc0, 0xd6}, {0xd8, 0xf6},
    {0xf8, 0x1ba}, {0x1bc, 0x1bf}, {0x1c4, 0x293}, {0x295, 0x2af}, {0x370, 0x373},
    {0x376, 0x377}, {0x37b, 0x37d}, {0x37f, 0x37f}, {0x386, 0x386}, {0x388, 0x38a},
    {0x38c, 0x38c}, {0x38e, 0x3a1}, {0x3a3, 0x3f5}, {0x3f7, 0x481}, {0x48a, 0x52f},
    {0x531, 0x556}, {0x10a0, 0x10c5}, {0x13a0, 0x13f5}, {0x13f8, 0x13fd}, {0x1c90, 0x1cba},
    {0x1cbd, 0x1cbf}, {0x1d00, 0x1d2b}, {0x1d6b, 0x1d77}, {0x1d79, 0x1d9a}, {0x1e00, 0x1f15},
    {0x1f18, 0x1f1d}, {0x1f20, 0x1f45}, {0x1f48, 0x1f4d}, {0x1f50, 0x1f57}, {0x1f59, 0x1f59},
    {0x1f5b, 0x1f5b}, {0x1f5d, 0x1f5d}, {0x1f5f, 0x1f7d}, {0x1f80, 0x1fb4}, {0x1fb6, 0x1fbc},
    {0x1fbe, 0x1fbe}, {0x1fc2, 0x1fc4}, {0x1fc6, 0x1fcc}, {0x1fd0, 0x1fd3}, {0x1fd6, 0x1fdb},
    {0x1fe0, 0x1fec}, {0x1ff2, 0x1ff4}, {0x1ff6, 0x1ffc}, {0x2102, 0x2102}, {0x2107, 0x2107},
    {0x210a, 0x2113}, {0x2115, 0x2115}, {0x2119, 0x211d}, {0x2124, 0x2124}, {0x2126, 0x2126},
    {0x2128, 0x2128}, {0x212a, 0x212d}, {0x212f, 0x2134}, {0x2139, 0x2139}, {0x213c, 0x213f},
    {0x2145, 0x2149}, {0x214e, 0x214e}, {0x2183, 0x2184}, {0x2c00, 0x2c7b}, {0x2c7e, 0x2ce4},
    {0x2ceb, 0x2cee}, {0x2cf2, 0x2cf3}, {0xa640, 0xa66d}, {0xa680, 0xa69b}, {0xa722, 0xa76f},
    {0xa771, 0xa787}, {0xa78b, 0xa78e}, {0xab70, 0xabbf}, {0xfb00, 0xfb06}, {0xfb13, 0xfb17},
    {0xff21, 0xff3a}, {0xff41, 0xff5a}, {0x10400, 0x1044f}, {0x104b0, 0x104d3}, {0x104d8, 0x104fb},
    {0x10c80, 0x10cb2}, {0x10cc0, 0x10cf2}, {0x118a0, 0x118df}, {0x1e900, 0x1e943},
};

/* DeepSeek LLM's punctuation class [!-/:-~！-／：-～‘-‟　-。]. */
static const cp_range ds_punct[] = {
    {0x21, 0x2f}, {0x3a, 0x7e}, {0x2018, 0x201f}, {0x3000, 0x3002}, {0xff01, 0xff0f}, {0xff1a, 0xff5e},
};

/* DeepSeek's CJK class [一-龥ࠀ-一가-퟿] (ranges as written there; they overlap). */
static const cp_range ds_cjk[] = {{0x800, 0x9fa5}, {0xac00, 0xd7ff}};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

typedef enum {
    ST_GPT2, ST_LLAMA3, ST_QWEN2,
    ST_DIGIT_EACH, ST_DIGIT_RUN, ST_PUNCT_RUN, ST_NEWLINE, ST_CJK_RUN,
    ST_WS_DS_LETTERS, ST_WS_DS_PUNCT, ST_WS_L, ST_WS_P, ST_TRAILING_WS,
    ST_BYTE_DIGIT_RUN, ST_BYTE_DIGIT3,
} step;

/* Hugging Face Punctuation: ASCII punctuation (which includes $+<=>^`|~) or Unicode P*. */
static bool is_punct_hf(uint32_t cp) {
    if (cp < 128) return (cp >= 0x21 && cp <= 0x2f) || (cp >= 0x3a && cp <= 0x40) || (cp >= 0x5b && cp <= 0x60) ||
                         (cp >= 0x7b && cp <= 0x7e);
    return ucd_class(cp) == UCD_P;
}

/* The class a step isolates, for the class-based steps. */
static bool step_class(step st, uint32_t cp) {
    switch (st) {
    case ST_DIGIT_EACH:
    case ST_DIGIT_RUN: return ucd_class(cp) == UCD_N;
    case ST_PUNCT_RUN: return is_punct_hf(cp);
    case ST_NEWLINE: return cp == '\r' || cp == '\n';
    case ST_CJK_RUN: return in_ranges(ds_cjk, N_OF(ds_cjk), cp);
    case ST_WS_DS_LETTERS: return in_ranges(ds_letters, N_OF(ds_letters), cp);
    case ST_WS_DS_PUNCT: return in_ranges(ds_punct, N_OF(ds_punct), cp);
    case ST_WS_L: return ucd_class(cp) == UCD_L;
    case ST_WS_P: return ucd_class(cp) == UCD_P;
    default: return false;
    }
}

/* After ByteLevel every byte is one character of the GPT-2 byte alphabet; these
 * bytes map to characters Unicode calls numeric (0-9, ², ³, ¹, ¼, ½, ¾). */
static bool byte_is_numeric(unsigned char c) {
    return (c >= '0' && c <= '9') || c == 0xB2 || c == 0xB3 || c == 0xB9 || c == 0xBC || c == 0xBD || c == 0xBE;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Leftmost match of a class step in s[p..b): (*ms, *me). False when none. */
static bool find_class_match(step st, const char *s, size_t p, size_t b, size_t *ms, size_t *me) {
    bool opt_ws = st == ST_WS_DS_LETTERS || st == ST_WS_DS_PUNCT || st == ST_WS_L || st == ST_WS_P;
    bool single = st == ST_DIGIT_EACH || st == ST_NEWLINE;
    bool prev_ws = false;
    size_t prev = p;
    while (p < b) {
        uint32_t cp;
        size_t l = at(s, p, b, &cp);
        if (step_class(st, cp)) {
            /* \s?C+ : a space just before the run belongs to it */
            *ms = opt_ws && prev_ws ? prev : p;
            size_t q = p + l;
            while (!single && q < b) {
                size_t l2 = at(s, q, b, &cp);
                if (!step_class(st, cp)) break;
                q += l2;
            }
            *me = q;
            return true;
        }
        prev_ws = opt_ws && ucd_is_ws(cp);
        prev = p;
        p += l;
    }
    return false;
}

/* \s+$ : the whitespace that ends the piece, if any. */
static bool find_trailing_ws(const char *s, size_t p, size_t b, size_t *ms, size_t *me) {
    size_t start = SIZE_MAX;
    while (p < b) {
        uint32_t cp;
        size_t l = at(s, p, b, &cp);
        if (!ucd_is_ws(cp)) start = SIZE_MAX;
        else if (start == SIZE_MAX) start = p;
        p += l;
    }
    if (start == SIZE_MAX) return false;
    *ms = start;
    *me = b;
    return true;
}

static bool find_match(step st, const char *s, size_t p, size_t b, size_t *ms, size_t *me) {
    switch (st) {
    case ST_GPT2: *ms = p, *me = match_gpt2(s, p, b); return true;
    case ST_LLAMA3: *ms = p, *me = match_llama3(s, p, b, 3); return true;
    case ST_QWEN2: *ms = p, *me = match_llama3(s, p, b, 1); return true;
    case ST_TRAILING_WS: return find_trailing_ws(s, p, b, ms, me);
    case ST_BYTE_DIGIT_RUN:
        while (p < b && !byte_is_numeric((unsigned char)s[p])) p++;
        if (p == b) return false;
        *ms = p;
        while (p < b && byte_is_numeric((unsigned char)s[p])) p++;
        *me = p;
        return true;
    case ST_BYTE_DIGIT3:
        for (; p + 3 <= b; p++) {
            if (is_digit(s[p]) && is_digit(s[p + 1]) && is_digit(s[p + 2])) {
                *ms = p, *me = p + 3;
                return true;
            }
        }
        return false;
    default: return find_class_match(st, s, p, b, ms, me);
    }
}

/* ---- pipelines ---- */

typedef struct {
    const step *steps;
    int n;
} pipeline;

static const step p_gpt2[] = {ST_GPT2};
static const step p_llama3[] = {ST_LLAMA3};
static const step p_qwen2[] = {ST_QWEN2};
static const step p_starcoder[] = {ST_DIGIT_EACH, ST_GPT2};
static const step p_falcon[] = {ST_PUNCT_RUN, ST_GPT2, ST_BYTE_DIGIT_RUN, ST_BYTE_DIGIT3};
static const step p_ds_llm[] = {ST_NEWLINE, ST_WS_DS_LETTERS, ST_WS_DS_PUNCT, ST_TRAILING_WS, ST_CJK_RUN,
                                ST_DIGIT_RUN};
static const step p_ds_coder[] = {ST_NEWLINE, ST_WS_L, ST_WS_P, ST_CJK_RUN, ST_DIGIT_EACH};

#define PIPE(a) {a, (int)N_OF(a)}
static const pipeline pipelines[] = {
    [PRE_GPT2] = PIPE(p_gpt2),
    [PRE_LLAMA3] = PIPE(p_llama3),
    [PRE_QWEN2] = PIPE(p_qwen2),
    [PRE_STARCODER] = PIPE(p_starcoder),
    [PRE_FALCON] = PIPE(p_falcon),
    [PRE_DEEPSEEK_LLM] = PIPE(p_ds_llm),
    [PRE_DEEPSEEK_CODER] = PIPE(p_ds_coder),
};

typedef struct {
    const pipeline *p;
    const char *s;
    pretok_emit emit;
    void *ctx;
} split_state;

static int run_step(const split_state *st, int k, size_t a, size_t b) {
    if (k == st->p->n) return st->emit(st->ctx, st->s + a, b - a);
    step sp = st->p->steps[k];
    size_t pos = a, ms, me;
    int rc;
    while (pos < b && find_match(sp, st->s, pos, b, &ms, &me)) {
        if (ms > pos && (rc = run_step(st, k + 1, pos, ms)) < 0) return rc;
        if ((rc = run_step(st, k + 1, ms, me)) < 0) return rc;
        pos = me;
    }
    if (pos < b) return run_step(st, k + 1, pos, b);
    return 0;
}

int pretok_split(pretok_kind kind, const char *s, size_t n, pretok_emit emit, void *ctx) {
    if ((unsigned)kind >= N_OF(pipelines)) kind = PRE_GPT2;
    split_state st = {&pipelines[kind], s, emit, ctx};
    return n ? run_step(&st, 0, 0, n) : 0;
}

/* ---- names ---- */

typedef struct {
    const char *name;
    pretok_info info;
} pretok_name;

static const pretok_name names[] = {
    {"default", {PRE_GPT2, false, false}},
    {"gpt2", {PRE_GPT2, false, false}},
    {"gpt-2", {PRE_GPT2, false, false}},
    {"phi-2", {PRE_GPT2, false, false}},
    {"olmo", {PRE_GPT2, false, false}},
    {"jais", {PRE_GPT2, false, false}},
    {"mpt", {PRE_GPT2, true, false}}, /* GPT-NeoX tokenizer: NFC normalizer */
    {"llama3", {PRE_LLAMA3, false, true}},
    {"llama-v3", {PRE_LLAMA3, false, true}},
    {"llama-bpe", {PRE_LLAMA3, false, true}},
    {"falcon3", {PRE_LLAMA3, false, true}},
    {"lfm2", {PRE_LLAMA3, false, true}},
    {"dbrx", {PRE_LLAMA3, false, false}},
    {"smaug-bpe", {PRE_LLAMA3, false, false}},
    {"qwen2", {PRE_QWEN2, true, false}},
    {"deepseek-r1-qwen", {PRE_QWEN2, true, false}},
    {"stablelm2", {PRE_QWEN2, false, false}},
    {"starcoder", {PRE_STARCODER, false, false}},
    {"refact", {PRE_STARCODER, false, false}},
    {"smollm", {PRE_STARCODER, false, false}},
    {"codeshell", {PRE_STARCODER, false, false}},
    {"falcon", {PRE_FALCON, false, false}},
    {"deepseek-llm", {PRE_DEEPSEEK_LLM, false, false}},
    {"deepseek-coder", {PRE_DEEPSEEK_CODER, false, false}},
};

bool pretok_lookup(const char *name, size_t len, pretok_info *info) {
    for (size_t i = 0; i < N_OF(names); i++) {
        if (strlen(names[i].name) == len && memcmp(names[i].name, name, len) == 0) {
            *info = names[i].info;
            return true;
        }
    }
    *info = names[0].info;
    return false;
}
