/* A loaded model: hyper-parameters from GGUF metadata and weights bound to
 * struct fields at load time (no name lookups in the hot path). Immutable
 * after loading, so one model can serve several sessions on several threads. */
#ifndef CACTUS_MODEL_H
#define CACTUS_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "chat.h"
#include "gguf.h"
#include "tokenizer/tokenizer.h"

/* A 2-D weight: n_out rows of n_in elements of `type`, rows contiguous.
 * act_bits: for Q8_0 / Q4_0, how finely the kernels round the activations
 * they multiply (kernels/kernels.h): 8 (also 0), or 12 for the families
 * whose parity needs it (g_archs in model.c). */
typedef struct {
    ggml_type type;
    const uint8_t *data;
    int64_t n_in, n_out;
    size_t row_bytes;
    int act_bits;
} cx_weight;

typedef enum { ROPE_NORM = 0, ROPE_NEOX = 2 } rope_kind;

typedef enum { ARCH_LLAMA, ARCH_QWEN2, ARCH_QWEN3, ARCH_LFM2, ARCH_GEMMA3 } arch_id;

/* One block. The shape fields come from the metadata (filled before the
 * architecture binds the tensors); a NULL / zero-size field is unused. */
typedef struct {
    int32_t n_head_kv;                  /* 0: no attention here (an LFM2 short-convolution block) */
    bool sliding;                       /* gemma3: attends to the last hp.sliding_window positions only */
    const float *attn_norm;
    cx_weight wq, wk, wv, wo;
    const float *bq, *bk, *bv;          /* qwen2 q/k/v bias (NULL otherwise) */
    const float *q_norm, *k_norm;       /* qwen3 / lfm2 / gemma3 per-head RMSNorm (NULL otherwise) */
    const float *attn_post_norm;        /* gemma3: RMSNorm of the attention output */
    const float *ffn_norm;
    cx_weight w_gate, w_up, w_down;
    const float *ffn_post_norm;         /* gemma3: RMSNorm of the feed-forward output */
    cx_weight conv_in, conv_out;        /* lfm2 short conv: in_proj (D -> 3D: B, C, x), out_proj (D -> D) */
    const float *conv_kernel;           /* lfm2: [D][conv_len] depthwise causal kernel, f32 */
} cx_layer;

typedef struct {
    int32_t n_vocab;
    int32_t n_embd;
    int32_t n_layer;
    int32_t n_head;
    int32_t n_head_kv;
    int32_t head_dim;
    int32_t n_ff;
    int32_t n_ctx_train;
    float rms_eps;
    float rope_base;
    float rope_factor;      /* linear RoPE scaling: frequencies divided by this (1: none) */
    rope_kind rope;
    /* family extras (zero when unused) */
    int32_t conv_len;       /* lfm2: short-convolution kernel length (shortconv.l_cache) */
    int32_t sliding_window; /* gemma3: keys a sliding block sees, its own position included */
    float rope_base_swa;    /* gemma3: RoPE base of the sliding blocks */
    float attn_scale;       /* multiplier of q.k (0: 1 / sqrt(head_dim)) */
    float attn_softcap;     /* attention scores -> c * tanh(s / c) (0: off) */
    float final_softcap;    /* logits -> c * tanh(l / c) (0: off) */
} cx_hparams;

typedef struct cx_model cx_model;

/* One family's forward pass over `n` tokens at positions pos0..pos0+n-1.
 * Writes logits for the last token (or for all n when `all_logits`). */
struct cx_session;
typedef int (*cx_forward_fn)(struct cx_session *s, const int32_t *tokens, int n, int pos0, float *logits,
                             bool all_logits);

struct cx_model {
    gguf_file *file;
    tokenizer *tok;
    arch_id arch;
    const char *arch_name;
    cx_hparams hp;
    int act_bits;              /* 8 or 12: every quantized weight's cx_weight.act_bits */
    cx_weight tok_embd;
    cx_weight output;          /* tok_embd when tied */
    const float *output_norm;  /* the final norm (lfm2: token_embd_norm) */
    cx_layer *layers;
    char *chat_template;       /* tokenizer.chat_template, NUL-terminated (may be NULL) */
    chat_family chat;          /* detected from chat_template and the architecture */
    char *bos_text, *eos_text; /* the special tokens' texts, for templates (NULL when absent) */
    cx_forward_fn forward;
    void **owned;              /* f32 copies of small tensors stored in other types */
    int n_owned;
};

/* Loads and validates `path` (a .gguf or a folder holding one).
 * NULL + cx_error on failure. */
cx_model *model_load(const char *path);
void model_free(cx_model *m);
/* A .gguf path, or the first .gguf in a folder (malloc'd). NULL + cx_error. */
char *model_resolve_path(const char *path);

/* Binding helpers used by the architecture files. Each returns -1 with
 * cx_error set when the tensor is missing or of the wrong shape. */
int model_bind_weight(cx_model *m, cx_weight *w, const char *name, int64_t n_in, int64_t n_out);
int model_bind_vec(cx_model *m, const float **v, const char *name, int64_t n, bool optional);
/* A small 2-D tensor (ne0 x ne1, e.g. a convolution kernel) as f32, widened at load when stored as F16/BF16. */
int model_bind_f32_matrix(cx_model *m, const float **v, const char *name, int64_t ne0, int64_t ne1);
/* The embedding table (sets hp.n_vocab), the final norm `norm_name`, and the
 * output head (tok_embd when the file has no output.weight). */
int model_bind_io(cx_model *m, const char *norm_name);

/* `<arch>.<key>` metadata for the architecture files: an unsigned integer in
 * [lo, hi] (`dflt` when absent and not required) or a float (`dflt` when absent). */
int model_get_u32(const cx_model *m, const char *key, int32_t *out, int32_t dflt, bool required, int32_t lo,
                  int32_t hi);
void model_get_f32(const cx_model *m, const char *key, float *out, float dflt);
const gguf_kv *model_find_kv(const cx_model *m, const char *key);

/* Architecture entry points, one file per family under arch/. */
int arch_llama_bind(cx_model *m);
int arch_llama_forward(struct cx_session *s, const int32_t *tokens, int n, int pos0, float *logits,
                       bool all_logits);
int arch_lfm2_bind(cx_model *m);
int arch_lfm2_forward(struct cx_session *s, const int32_t *tokens, int n, int pos0, float *logits,
                      bool all_logits);
int arch_gemma3_bind(cx_model *m);
int arch_gemma3_forward(struct cx_session *s, const int32_t *tokens, int n, int pos0, float *logits,
                        bool all_logits);

#endif
