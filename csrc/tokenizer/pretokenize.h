/* Pre-tokenizers of the byte-level BPE families: each splits text into the
 * pieces that BPE then encodes one by one, reproducing the Hugging Face
 * pre_tokenizer pipelines (Split regexes, Digits, Punctuation, ByteLevel)
 * with hand-written matchers instead of a regex engine. */
#ifndef CACTUS_TOK_PRETOKENIZE_H
#define CACTUS_TOK_PRETOKENIZE_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    PRE_GPT2,           /* GPT-2 ByteLevel regex */
    PRE_LLAMA3,         /* Llama 3 regex (digits in groups of up to three) */
    PRE_QWEN2,          /* Llama 3 regex with single digits */
    PRE_STARCODER,      /* single digits, then the GPT-2 regex */
    PRE_FALCON,         /* punctuation runs, GPT-2 regex, digit runs, groups of three ASCII digits */
    PRE_DEEPSEEK_LLM,
    PRE_DEEPSEEK_CODER,
} pretok_kind;

typedef struct {
    pretok_kind kind;
    bool nfc;           /* the family's normalizer is NFC */
    bool ignore_merges; /* a piece that is a whole token is taken as is (Llama 3 style) */
} pretok_info;

/* Looks up a tokenizer.ggml.pre name. False when unknown (info is then the GPT-2 default). */
bool pretok_lookup(const char *name, size_t len, pretok_info *info);

/* Receives one piece; a negative return stops the split and is passed on. */
typedef int (*pretok_emit)(void *ctx, const char *s, size_t n);

/* Splits s[0..n) into pieces, in order, covering every byte. Returns 0 or
 * the first negative value emit returned. */
int pretok_split(pretok_kind kind, const char *s, size_t n, pretok_emit emit, void *ctx);

#endif
