/* Tokenizers built from GGUF metadata: `tokenizer.ggml.model` = "gpt2"
 * (byte-level BPE with merges, pre-tokenizer named by tokenizer.ggml.pre)
 * or "llama" (SentencePiece BPE with scores and byte fallback). */
#ifndef CACTUS_TOKENIZER_H
#define CACTUS_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../gguf.h"
#include "../util.h"

typedef struct tokenizer tokenizer;

/* Builds the tokenizer from the file's tokenizer.* metadata (copies what it
 * needs; the gguf_file may be closed afterwards). NULL + cx_error on failure. */
tokenizer *tok_load(const gguf_file *f);
void tok_free(tokenizer *t);

int32_t tok_n_vocab(const tokenizer *t);

/* Appends the ids of `text` to `out`. add_special: BOS/EOS as the metadata's
 * add_bos_token / add_eos_token say. parse_special: control (and unknown)
 * token texts inside `text` map to their ids (otherwise they are plain
 * text). User-defined tokens always map to their ids, as Hugging Face's
 * added-token matching does (some vocabularies, e.g. MPT's runs of spaces,
 * depend on it). Invalid UTF-8 is encoded byte by byte, never rejected (a
 * byte that never occurs in UTF-8 and has no token becomes U+FFFD).
 * Returns 0, or -1 with cx_error set (allocation failure). */
int tok_encode(const tokenizer *t, const char *text, size_t len, bool add_special, bool parse_special,
               ivec *out);

/* The bytes a token stands for in text: byte-level mapping and <0xNN> byte
 * fallback undone, SentencePiece's U+2581 turned back into a space; control
 * tokens give their text only when `special` is true (else nothing).
 * Returns the length (may exceed cap: then nothing past cap is written),
 * or -1 for an id out of range. */
int tok_piece(const tokenizer *t, int32_t id, bool special, char *buf, size_t cap);

/* Decodes a whole id sequence to text (appended to out). SentencePiece's
 * leading space of the first piece is removed when the model adds a dummy
 * prefix, as Hugging Face's decode does. Returns 0 or -1. */
int tok_decode(const tokenizer *t, const int32_t *ids, size_t n, bool special, strbuf *out);

/* Special ids (-1 when the model has none). */
int32_t tok_bos(const tokenizer *t);
int32_t tok_eos(const tokenizer *t);
/* True for ids that end a generation: EOS, EOT, <|im_end|>, <|eot_id|>, ... */
bool tok_is_eog(const tokenizer *t, int32_t id);
/* True for control tokens (never shown to a user unless asked). */
bool tok_is_control(const tokenizer *t, int32_t id);
bool tok_add_bos(const tokenizer *t);

/* Exact lookup of a token's text; -1 when absent. */
int32_t tok_find(const tokenizer *t, const char *text, size_t len);

#endif
