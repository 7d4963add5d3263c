/* Constrained decoding for tool calls: a grammar built from the tools' JSON
 * Schemas in the family's call syntax, applied to logits on token ids
 * through a precomputed prefix structure over the vocabulary. */
#ifndef CACTUS_GRAMMAR_H
#define CACTUS_GRAMMAR_H

#include <stdbool.h>
#include <stdint.h>

#include "chat.h"
#include "json.h"
#include "tokenizer/tokenizer.h"

typedef struct cx_grammar cx_grammar;

/* Characters a string argument may hold when its schema gives no maxLength. */
#define GRAMMAR_DEFAULT_MAX_STRING 96

/* tool_choice: "required" (any listed function) or a function name.
 * Returns NULL with cx_error set when the tools are malformed or the named
 * function is not listed. When a schema uses features that cannot be
 * constrained, returns NULL with *unsupported = true (the caller decodes
 * unconstrained and logs a warning). */
cx_grammar *grammar_new(const tokenizer *tok, chat_family fam, const json_value *tools, const char *tool_choice,
                        bool *unsupported);
void grammar_free(cx_grammar *g);

/* Sets to -INFINITY the logits of every token that cannot continue the
 * grammar; once the call is complete only end-of-generation tokens remain. */
void grammar_apply(cx_grammar *g, float *logits, int32_t n_vocab);
/* Advances by the sampled token (which grammar_apply allowed). */
void grammar_accept(cx_grammar *g, int32_t token);
/* True once a whole call has been produced. */
bool grammar_done(const cx_grammar *g);

/* The vocabulary index behind grammar_new is built once per tokenizer
 * content (a reloaded model reuses it) and kept in a small process-wide
 * cache (4 entries, thread-safe). This empties the cache; an index still
 * used by a live grammar is freed with the last such grammar. */
void grammar_cache_clear(void);

#endif
