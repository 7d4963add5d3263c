/*
 * cactus.h — the public C API of libcactus, on-device LLM inference.
 *
 * This is the only header an embedding application needs. Everything is
 * JSON in, JSON out. No function in this API aborts, exits or prints to
 * stdout: failures return a negative code (or NULL) and set a thread-local
 * message readable with cactus_get_last_error().
 *
 * Threading: a cactus_model_t is one model plus one conversation (session).
 * Different handles may be used from different threads at once. One handle
 * must not run two calls at once, except cactus_stop(), which is safe from
 * any thread and from inside the token callback.
 */
#ifndef CACTUS_H
#define CACTUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define CACTUS_API __declspec(dllexport)
#else
#define CACTUS_API __attribute__((visibility("default")))
#endif

/* Return codes. 0 is success; every failure is negative. */
enum {
    CACTUS_OK = 0,
    CACTUS_ERR_INVALID_ARGUMENT = -1, /* NULL handle, malformed JSON, bad option */
    CACTUS_ERR_BUFFER_TOO_SMALL = -2, /* the answer did not fit the caller's buffer */
    CACTUS_ERR_MODEL = -3,            /* the model file is unusable */
    CACTUS_ERR_CONTEXT = -4,          /* the conversation does not fit the context */
    CACTUS_ERR_NO_MEMORY = -5,
    CACTUS_ERR_INTERNAL = -6,
};

/* Limits on what the completion and rendering calls accept. Each protects the
 * embedding app from a request that would take unbounded memory or time;
 * going past one fails the call with CACTUS_ERR_INVALID_ARGUMENT and a last
 * error (and response "error") that names the limit. JSON nesting is also
 * bounded: 64 levels, arrays and objects alike. */
#define CACTUS_MAX_JSON_BYTES (16u << 20)  /* messages_json, tools_json, options_json: bytes each */
#define CACTUS_MAX_MESSAGES 4096           /* entries of messages_json */
#define CACTUS_MAX_TOOLS 128               /* entries of tools_json */
#define CACTUS_MAX_STOP_SEQUENCES 16       /* entries of option stop_sequences */
#define CACTUS_MAX_STOP_BYTES 256          /* bytes of one stop sequence */

typedef void *cactus_model_t;

/* Called once per generated token (end-of-turn tokens excepted) with the
 * text that became final with it: whole UTF-8, NUL-terminated, possibly
 * empty (a partial character, or text held back because it may start a stop
 * sequence; it arrives with a later token). The pieces concatenate to the
 * response. `token_id` is the generated token. */
typedef void (*cactus_token_callback)(const char *token, uint32_t token_id, void *user_data);

/* Loads a model. `model_path` is a .gguf file or a folder holding exactly one
 * (the first in name order is taken if there are several). `corpus_dir` and
 * `cache_index` are reserved for retrieval and must be NULL / false today.
 * Returns NULL on failure; cactus_get_last_error() says why. */
CACTUS_API cactus_model_t cactus_init(const char *model_path, const char *corpus_dir, bool cache_index);

/* Runs one chat completion.
 *   messages_json  [{"role": "system"|"user"|"assistant"|"tool", "content": "..."}, ...]
 *   options_json   optional (NULL or "{}"): max_tokens (512), temperature (0.6, 0 = greedy),
 *                  top_p (0.95), top_k (20, 0 = off), min_p (0), repetition_penalty (1),
 *                  seed, stop_sequences [..], cloud_handoff_threshold (0.0)
 *   tools_json     optional OpenAI tools list
 *   callback       optional streaming callback, user_data passed through
 * Writes the response JSON into response_buffer:
 *   {"success", "error", "cloud_handoff", "response", "function_calls", "confidence",
 *    "time_to_first_token_ms", "total_time_ms", "prefill_tps", "decode_tps", "ram_usage_mb",
 *    "prefill_tokens", "decode_tokens", "total_tokens"}
 * Returns 0 on success, a negative code on failure. On failure the buffer
 * still holds {"success":false,"error":"..."} when it fits. When the answer
 * does not fit, CACTUS_ERR_BUFFER_TOO_SMALL is returned. The conversation is
 * kept in the handle: the next call reuses the cached prefix it shares. */
CACTUS_API int cactus_complete(cactus_model_t model, const char *messages_json, char *response_buffer,
                               size_t buffer_size, const char *options_json, const char *tools_json,
                               cactus_token_callback callback, void *user_data);

/* Like cactus_complete, for a raw text prompt: no chat template, the text
 * is tokenized as is (BOS as the vocabulary says; special-token texts in it
 * are parsed). Same options, callback and response JSON. */
CACTUS_API int cactus_complete_text(cactus_model_t model, const char *prompt, char *response_buffer,
                                    size_t buffer_size, const char *options_json, cactus_token_callback callback,
                                    void *user_data);

/* Cloud handoff. With option cloud_handoff_threshold > 0, a completion
 * hands the conversation to the cloud when the confidence of the first
 * generated token, of the latest window of 8 tokens, or of the whole answer
 * falls below the threshold; local decoding stops as soon as that is known.
 * The handler receives an OpenAI chat-completions request JSON (messages,
 * max_tokens, temperature, top_p, stop, seed, tools, tool_choice; no model:
 * that is the handler's choice) and writes an OpenAI chat.completion
 * response JSON into response_buffer; it returns 0, or a negative value
 * with a short reason in response_buffer. The C core has no network code:
 * the embedder's handler does the transport.
 * On success the response holds the cloud's answer and tool calls,
 * cloud_handoff is true and confidence is still the local figure; the
 * callback, which already saw the local pieces, receives the cloud's whole
 * answer as one more piece with token_id CACTUS_TOKEN_CLOUD. If there is no
 * handler or it fails, local generation is completed and returned with
 * cloud_handoff false and the reason in a "cloud_error" key. */
#define CACTUS_TOKEN_CLOUD 0xFFFFFFFFu
typedef int (*cactus_cloud_handler)(const char *request_json, char *response_buffer, size_t buffer_size,
                                    void *user_data);
/* Installs (or, with NULL, removes) the handle's cloud handler. */
CACTUS_API void cactus_set_cloud_handler(cactus_model_t model, cactus_cloud_handler handler, void *user_data);

/* Forgets the conversation (KV cache and token history). Refused, with
 * CACTUS_ERR_INVALID_ARGUMENT, while another call runs on the handle (a
 * completion, from another thread or from its own callback): that call owns
 * the cache. cactus_stop() it and reset once it has returned. */
CACTUS_API int cactus_reset(cactus_model_t model);

/* Asks a running cactus_complete on this handle to finish after the current
 * token; it then returns what it generated with success true. Safe from any
 * thread and from inside the callback. A no-op when nothing runs. */
CACTUS_API void cactus_stop(cactus_model_t model);

/* Frees the handle. NULL is a no-op. */
CACTUS_API void cactus_destroy(cactus_model_t model);

/* The last error of this thread; never NULL ("" when none). */
CACTUS_API const char *cactus_get_last_error(void);

/* Encodes text (no BOS added, special tokens not parsed) into `out`.
 * `*n_out` always receives the number of tokens; when it exceeds `cap`,
 * CACTUS_ERR_BUFFER_TOO_SMALL is returned and `out` holds the first `cap`. */
CACTUS_API int cactus_tokenize(cactus_model_t model, const char *text, uint32_t *out, size_t cap,
                               size_t *n_out);

/* Evaluates `tokens` from an empty context and writes the logits of every
 * position, row-major (n_tokens x n_vocab) into `out`, which must hold
 * n_tokens * cactus_vocab_size(model) floats. This resets the conversation. */
CACTUS_API int cactus_logits(cactus_model_t model, const uint32_t *tokens, size_t n_tokens, float *out,
                             size_t out_len);

/* A text embedding: the final hidden states (after the final norm) of
 * `text` evaluated from an empty context, mean-pooled over its tokens and
 * L2-normalised. `*dim` receives the embedding size (the model's hidden
 * size); CACTUS_ERR_BUFFER_TOO_SMALL when out_len is smaller. Resets the
 * conversation. */
CACTUS_API int cactus_embed(cactus_model_t model, const char *text, float *out, size_t out_len, size_t *dim);

/* Number of entries in the vocabulary (the width of a logits row); 0 for NULL. */
CACTUS_API size_t cactus_vocab_size(cactus_model_t model);

/* A tokenizer alone, loaded from a GGUF's vocabulary (a vocab-only GGUF
 * works; weights are not read). NULL + last error on failure. */
typedef void *cactus_tokenizer_t;
CACTUS_API cactus_tokenizer_t cactus_tokenizer_init(const char *path);
CACTUS_API void cactus_tokenizer_destroy(cactus_tokenizer_t tokenizer);
/* Encodes `len` bytes of text. add_special: BOS/EOS as the vocabulary says;
 * parse_special: special-token texts in the input map to their ids.
 * `*n_out` always gets the count; CACTUS_ERR_BUFFER_TOO_SMALL when > cap. */
CACTUS_API int cactus_tokenizer_encode(cactus_tokenizer_t tokenizer, const char *text, size_t len, bool add_special,
                                       bool parse_special, uint32_t *out, size_t cap, size_t *n_out);
/* Decodes ids to text (special tokens rendered when `special`). `*needed`
 * gets the size including the NUL; CACTUS_ERR_BUFFER_TOO_SMALL when it
 * exceeds out_size. */
CACTUS_API int cactus_tokenizer_decode(cactus_tokenizer_t tokenizer, const uint32_t *ids, size_t n, bool special,
                                       char *out, size_t out_size, size_t *needed);
CACTUS_API size_t cactus_tokenizer_vocab_size(cactus_tokenizer_t tokenizer);

/* Renders a conversation to prompt text exactly as cactus_complete does
 * before tokenizing, after the same checks (messages, tools, limits).
 * `chat_template` is a model's Jinja template text, used to recognise its
 * family (NULL: ChatML); bos_token / eos_token are the model's special
 * token texts (NULL when it has none). The NUL-terminated text goes into
 * `out`; `*needed` (optional) receives its size including the NUL, also
 * when CACTUS_ERR_BUFFER_TOO_SMALL is returned. */
CACTUS_API int cactus_render_chat(const char *chat_template, const char *messages_json, const char *tools_json,
                                  bool add_generation_prompt, const char *bos_token, const char *eos_token,
                                  char *out, size_t out_size, size_t *needed);

#ifdef __cplusplus
}
#endif

#endif /* CACTUS_H */
