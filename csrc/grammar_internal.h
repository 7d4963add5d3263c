/* Private to the grammar modules: the rule graph built from the tools'
 * schemas (grammar_schema.c), the vocabulary prefix tree shared per
 * tokenizer (grammar_vocab.c), and the JSON-string byte machine both of
 * them and the matcher (grammar.c) use. */
#ifndef CACTUS_GRAMMAR_INTERNAL_H
#define CACTUS_GRAMMAR_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "chat.h"
#include "grammar.h"
#include "json.h"
#include "tokenizer/tokenizer.h"

/* ---- rules ----------------------------------------------------------------
 * A grammar is a graph of nodes over bytes. Children are node indices, so a
 * rule may refer back to an ancestor (the recursive "any JSON value"). */
typedef enum {
    GN_LIT,   /* bytes[a .. a+n) exactly */
    GN_CLASS, /* one byte from classes[a] */
    GN_SEQ,   /* kids[a .. a+n) in order */
    GN_ALT,   /* one of kids[a .. a+n) */
    GN_REP,   /* node a, between n and max times (max < 0: unbounded) */
    GN_STR,   /* a JSON string's body and closing quote: n .. max characters */
} gn_kind;

typedef struct {
    uint8_t kind;
    uint32_t a, n;
    int32_t max;
} gnode;

typedef struct {
    gnode *nodes;
    uint32_t n_nodes, cap_nodes;
    uint32_t *kids;
    uint32_t n_kids, cap_kids;
    char *bytes;
    uint32_t n_bytes, cap_bytes;
    uint32_t (*classes)[8]; /* 256-bit byte sets */
    uint32_t n_classes, cap_classes;
    uint32_t root;
    bool failed; /* an allocation failed while building */
} grules;

/* Builds the rules for `fam`'s call syntax. Returns 0; -1 with cx_error set
 * for malformed tools or an unknown tool_choice; -1 with *unsupported set
 * (and no error) when a schema uses what the rules cannot express. */
int grules_build(grules *r, chat_family fam, const json_value *tools, const char *tool_choice, bool *unsupported);
void grules_free(grules *r);

/* ---- JSON string bytes ------------------------------------------------------
 * The state inside a string between characters and within escapes and
 * multi-byte UTF-8 sequences (only well-formed UTF-8 is accepted: no
 * overlongs, surrogates or code points past U+10FFFF; \u escapes of lone
 * surrogates are refused too, since strict readers reject them). */
enum {
    STR_CHAR, /* between characters */
    STR_ESC,  /* after a backslash */
    STR_U4,   /* \u: 4 hex digits to go */
    STR_UD,   /* \uD: the next digit must be 0-7 (no surrogates) */
    STR_U3, STR_U2, STR_U1,
    STR_C1, STR_C2, STR_C3, /* that many UTF-8 continuation bytes to go */
    STR_E0, STR_ED, STR_F0, STR_F4, /* restricted second bytes, then C1 / C1 / C2 / C2 */
};

enum { STR_REJECT = -1, STR_CLOSE = -2 };

static inline bool gstr_hex(uint8_t b) {
    return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F');
}

static inline int gstr_lead(uint8_t b, bool *done) {
    if (b < 0x20) return STR_REJECT;
    if (b < 0x80) return *done = true, STR_CHAR;
    if (b >= 0xC2 && b <= 0xDF) return STR_C1;
    if (b == 0xE0) return STR_E0;
    if (b == 0xED) return STR_ED;
    if (b >= 0xE1 && b <= 0xEF) return STR_C2;
    if (b == 0xF0) return STR_F0;
    if (b >= 0xF1 && b <= 0xF3) return STR_C3;
    if (b == 0xF4) return STR_F4;
    return STR_REJECT;
}

/* The next sub-state after byte b, STR_CLOSE for the closing quote, or
 * STR_REJECT. *done is set when b completes a character. */
static inline int gstr_step(int sub, uint8_t b, bool *done) {
    bool cont = b >= 0x80 && b <= 0xBF;
    *done = false;
    switch (sub) {
    case STR_CHAR:
        if (b == '"') return STR_CLOSE;
        if (b == '\\') return STR_ESC;
        return gstr_lead(b, done);
    case STR_ESC:
        if (b == 'u') return STR_U4;
        if (b == '"' || b == '\\' || b == '/' || b == 'b' || b == 'f' || b == 'n' || b == 'r' || b == 't')
            return *done = true, STR_CHAR;
        return STR_REJECT;
    case STR_U4: return (b == 'd' || b == 'D') ? STR_UD : gstr_hex(b) ? STR_U3 : STR_REJECT;
    case STR_UD: return (b >= '0' && b <= '7') ? STR_U2 : STR_REJECT;
    case STR_U3: return gstr_hex(b) ? STR_U2 : STR_REJECT;
    case STR_U2: return gstr_hex(b) ? STR_U1 : STR_REJECT;
    case STR_U1: return gstr_hex(b) ? (*done = true, STR_CHAR) : STR_REJECT;
    case STR_C1: return cont ? (*done = true, STR_CHAR) : STR_REJECT;
    case STR_C2: return cont ? STR_C1 : STR_REJECT;
    case STR_C3: return cont ? STR_C2 : STR_REJECT;
    case STR_E0: return (b >= 0xA0 && b <= 0xBF) ? STR_C1 : STR_REJECT;
    case STR_ED: return (b >= 0x80 && b <= 0x9F) ? STR_C1 : STR_REJECT;
    case STR_F0: return (b >= 0x90 && b <= 0xBF) ? STR_C2 : STR_REJECT;
    case STR_F4: return (b >= 0x80 && b <= 0x8F) ? STR_C2 : STR_REJECT;
    default: return STR_REJECT;
    }
}

/* ---- vocabulary prefix tree ---------------------------------------------------
 * Every ordinary token's bytes in one trie, nodes in depth-first order so a
 * subtree is the index range [i, end) and its tokens are the range
 * [lo, nodes[end].lo) of `sorted` (token ids in byte order). */
/* Plain string text: bytes that may follow anywhere between characters
 * inside a JSON string: no quote, backslash or control byte, and UTF-8
 * that is well formed up to its end (where a character may still be
 * unfinished). */
typedef struct {
    uint8_t byte;
    uint8_t plain;  /* every token in the subtree is plain */
    uint16_t depth; /* bytes from the root */
    uint32_t end;   /* the node after this subtree */
    uint32_t lo;    /* first token of the subtree in `sorted` */
} gv_node;

typedef struct gvocab {
    uint64_t fingerprint;
    int refs;
    int32_t n_vocab;
    gv_node *nodes; /* n_nodes + 1: a sentinel with lo = n_sorted closes the last range */
    uint32_t n_nodes;
    int32_t *sorted;
    uint32_t n_sorted;
    uint32_t max_depth;
    /* The plain tokens by character count (an unfinished last one counts),
     * so a string with room for r more characters allows a prefix. */
    int32_t *plain_ids;
    uint32_t *plain_chars;
    uint32_t n_plain;
    int32_t *other_ids; /* the ordinary tokens that are not plain */
    uint32_t n_other;
    int32_t *never;     /* tokens that show no text and do not end generation */
    uint32_t n_never;
    /* Control tokens (not end-of-generation) by their text: allowed only
     * where the grammar spells out that text literally, e.g. a marker. */
    int32_t *special;
    uint32_t n_special;
    char *special_text;
    uint32_t *special_off; /* n_special + 1 */
    int32_t *eog;
    uint32_t n_eog;
} gvocab;

/* The tree for `tok`, built once and shared (reference counted, cached by
 * content). NULL + cx_error on allocation failure. */
gvocab *gvocab_get(const tokenizer *tok);
void gvocab_release(gvocab *v);

#endif
