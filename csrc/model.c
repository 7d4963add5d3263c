/* Model loading: resolve the path, open the GGUF, read hyper-parameters,
 * hand tensor binding to the architecture, load the tokenizer. */
#include "model.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kernels/half.h"
#include "kernels/kernels.h"
#include "util.h"

/* act_bits: how finely Q8_0 / Q4_0 matmuls round their activations
 * (cx_weight.act_bits). 8 bits keep the llama-style families within 5e-2 of
 * the logit scale of the float model (measured 1.0e-2 to 3.0e-2 on the
 * fixtures, tests/test_parity.py); LFM2's multiplicative conv gates and
 * Gemma 3's GeGLU, sandwich norms and soft-capping amplify the rounding to
 * 5.4e-2 and 6.2e-2, and 12 bits bring them to 3e-3, for about a ninth
 * of Q4_0 decode speed and a sixth of prefill (README). */
typedef struct {
    const char *name;
    arch_id id;
    int (*bind)(cx_model *m);
    cx_forward_fn forward;
    rope_kind rope;
    int act_bits;
} arch_entry;

static const arch_entry g_archs[] = {
    {"llama", ARCH_LLAMA, arch_llama_bind, arch_llama_forward, ROPE_NORM, 8},
    {"qwen2", ARCH_QWEN2, arch_llama_bind, arch_llama_forward, ROPE_NEOX, 8},
    {"qwen3", ARCH_QWEN3, arch_llama_bind, arch_llama_forward, ROPE_NEOX, 8},
    {"lfm2", ARCH_LFM2, arch_lfm2_bind, arch_lfm2_forward, ROPE_NEOX, 12},
    {"gemma3", ARCH_GEMMA3, arch_gemma3_bind, arch_gemma3_forward, ROPE_NEOX, 12},
};

/* CACTUS_ACTIVATION_BITS=8|12 overrides the family's choice (read at each
 * load); any other value keeps it, with a warning. */
static int activation_bits(int family) {
    const char *e = getenv("CACTUS_ACTIVATION_BITS");
    if (!e) return family;
    if (strcmp(e, "8") == 0 || strcmp(e, "12") == 0) return atoi(e);
    cx_log(CX_LOG_WARN, "CACTUS_ACTIVATION_BITS='%.16s' is not 8 or 12; keeping %d", e, family);
    return family;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* A folder resolves to the first .gguf inside it, in name order. */
char *model_resolve_path(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        cx_error("model path '%s' does not exist", path);
        return NULL;
    }
    if (!S_ISDIR(st.st_mode)) return strdup(path);
    struct dirent **list = NULL;
    int n = scandir(path, &list, NULL, alphasort);
    if (n < 0) {
        cx_error("cannot list model folder '%s'", path);
        return NULL;
    }
    char *found = NULL;
    for (int i = 0; i < n; i++) {
        if (!found && ends_with(list[i]->d_name, ".gguf")) {
            size_t len = strlen(path) + strlen(list[i]->d_name) + 2;
            found = malloc(len);
            if (found) snprintf(found, len, "%s/%s", path, list[i]->d_name);
        }
        free(list[i]);
    }
    free(list);
    if (!found) cx_error("model folder '%s' holds no .gguf file", path);
    return found;
}

static int get_i32(const gguf_file *f, const char *arch, const char *key, int32_t *out, int32_t dflt, bool required) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    uint32_t v;
    if (gguf_get_u32(f, full, &v) == 0) {
        if (v > (uint32_t)INT32_MAX) return cx_error("metadata %s = %u is out of range", full, v);
        *out = (int32_t)v;
        return 0;
    }
    if (required) return cx_error("metadata key %s is missing or not an integer", full);
    *out = dflt;
    return 0;
}

static int get_f32(const gguf_file *f, const char *arch, const char *key, float *out, float dflt) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    if (gguf_get_f32(f, full, out) != 0) *out = dflt;
    return 0;
}

static int read_rope_scaling(cx_model *m);

static int check_range(const char *what, int32_t v, int32_t lo, int32_t hi) {
    if (v < lo || v > hi) return cx_error("model hyper-parameter %s = %d is outside [%d, %d]", what, v, lo, hi);
    return 0;
}

static int read_hparams(cx_model *m) {
    const gguf_file *f = m->file;
    const char *a = m->arch_name;
    cx_hparams *hp = &m->hp;
    if (get_i32(f, a, "embedding_length", &hp->n_embd, 0, true) ||
        get_i32(f, a, "block_count", &hp->n_layer, 0, true) ||
        get_i32(f, a, "feed_forward_length", &hp->n_ff, 0, true) ||
        get_i32(f, a, "attention.head_count", &hp->n_head, 0, true) ||
        get_i32(f, a, "attention.head_count_kv", &hp->n_head_kv, hp->n_head, false) ||
        get_i32(f, a, "context_length", &hp->n_ctx_train, 2048, false))
        return -1;
    if (check_range("embedding_length", hp->n_embd, 1, 1 << 16) || check_range("block_count", hp->n_layer, 1, 4096) ||
        check_range("feed_forward_length", hp->n_ff, 1, 1 << 20) ||
        check_range("attention.head_count", hp->n_head, 1, 4096) ||
        check_range("attention.head_count_kv", hp->n_head_kv, 1, hp->n_head) ||
        check_range("context_length", hp->n_ctx_train, 1, 1 << 24))
        return -1;
    if (hp->n_head % hp->n_head_kv) return cx_error("head_count %d is not a multiple of head_count_kv %d", hp->n_head, hp->n_head_kv);
    if (get_i32(f, a, "attention.key_length", &hp->head_dim, hp->n_embd / hp->n_head, false)) return -1;
    if (check_range("attention.key_length", hp->head_dim, 2, 4096)) return -1;
    if (hp->head_dim % 2) return cx_error("head dimension %d is odd; RoPE needs pairs", hp->head_dim);
    get_f32(f, a, "attention.layer_norm_rms_epsilon", &hp->rms_eps, 1e-5f);
    get_f32(f, a, "rope.freq_base", &hp->rope_base, 10000.0f);
    if (!(hp->rms_eps >= 0.0f && hp->rms_eps < 1.0f)) return cx_error("rms epsilon %g is out of range", hp->rms_eps);
    if (!(hp->rope_base > 0.0f)) return cx_error("rope.freq_base %g must be positive", hp->rope_base);
    return read_rope_scaling(m);
}

/* Linear RoPE scaling (positions divided by the factor); the families that
 * honour it read hp.rope_factor, the others ignore it as before. */
static int read_rope_scaling(cx_model *m) {
    char key[128];
    gguf_str type;
    m->hp.rope_factor = 1.0f;
    snprintf(key, sizeof key, "%s.rope.scaling.type", m->arch_name);
    if (gguf_get_str(m->file, key, &type) || !gguf_str_eq(type, "linear")) return 0;
    get_f32(m->file, m->arch_name, "rope.scaling.factor", &m->hp.rope_factor, 1.0f);
    if (!(m->hp.rope_factor > 0.0f)) return cx_error("rope.scaling.factor %g must be positive", m->hp.rope_factor);
    return 0;
}

/* KV heads per block: llama.cpp writes attention.head_count_kv as one number,
 * or as a per-layer array where 0 marks a block without attention (LFM2's
 * short convolutions). hp.n_head_kv becomes the largest, for sizing. */
static int read_layers(cx_model *m) {
    cx_hparams *hp = &m->hp;
    m->layers = calloc((size_t)hp->n_layer, sizeof(cx_layer));
    if (!m->layers) return cx_error("out of memory");
    const gguf_kv *kv = model_find_kv(m, "attention.head_count_kv");
    bool per_layer = kv && kv->type == GGUF_TYPE_ARRAY;
    if (per_layer && kv->v.arr.n != (uint64_t)hp->n_layer)
        return cx_error("attention.head_count_kv has %llu entries for %d layers", (unsigned long long)kv->v.arr.n,
                        hp->n_layer);
    int32_t most = 0;
    for (int il = 0; il < hp->n_layer; il++) {
        int64_t v = hp->n_head_kv;
        if (per_layer && gguf_arr_get_i64(kv, (uint64_t)il, &v))
            return cx_error("attention.head_count_kv[%d] is not an integer", il);
        if (v < 0 || v > hp->n_head || (v && hp->n_head % v))
            return cx_error("attention.head_count_kv[%d] = %lld does not divide head_count %d", il, (long long)v,
                            hp->n_head);
        m->layers[il].n_head_kv = (int32_t)v;
        if (v > most) most = (int32_t)v;
    }
    if (most == 0) return cx_error("no layer has attention heads (attention.head_count_kv is all 0)");
    hp->n_head_kv = most;
    return 0;
}

int model_bind_weight(cx_model *m, cx_weight *w, const char *name, int64_t n_in, int64_t n_out) {
    const gguf_tensor *t = gguf_find_tensor(m->file, name);
    if (!t) return cx_error("tensor '%s' is missing", name);
    if (t->n_dims != 2 || (int64_t)t->ne[0] != n_in || (n_out >= 0 && (int64_t)t->ne[1] != n_out))
        return cx_error("tensor '%s' has shape [%llu, %llu], expected [%lld, %lld]", name, (unsigned long long)t->ne[0],
                        (unsigned long long)t->ne[1], (long long)n_in, (long long)n_out);
    if (!kern_supported(t->type)) return cx_error("tensor '%s' has unsupported type %s", name, ggml_type_name(t->type));
    w->type = t->type;
    w->data = t->data;
    w->n_in = (int64_t)t->ne[0];
    w->n_out = (int64_t)t->ne[1];
    w->row_bytes = (size_t)ggml_type_row_bytes(t->type, t->ne[0]);
    w->act_bits = m->act_bits;
    return 0;
}

static int keep_owned(cx_model *m, void *p) {
    void **grown = realloc(m->owned, sizeof(void *) * (size_t)(m->n_owned + 1));
    if (!grown) {
        free(p);
        return cx_error("out of memory");
    }
    m->owned = grown;
    m->owned[m->n_owned++] = p;
    return 0;
}

/* A small tensor of ne0 x ne1 elements as f32 (widened once at load when
 * stored in half precision). */
static int bind_f32(cx_model *m, const float **v, const char *name, int64_t ne0, int64_t ne1, bool optional) {
    const gguf_tensor *t = gguf_find_tensor(m->file, name);
    *v = NULL;
    if (!t) return optional ? 0 : cx_error("tensor '%s' is missing", name);
    if (t->ne[0] != (uint64_t)ne0 || t->ne[1] != (uint64_t)ne1 || t->ne[2] != 1 || t->ne[3] != 1)
        return cx_error("tensor '%s' has %llu x %llu elements, expected %lld x %lld", name,
                        (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], (long long)ne0, (long long)ne1);
    if (t->type == GGML_TYPE_F32) {
        *v = t->data;
        return 0;
    }
    if (t->type != GGML_TYPE_F16 && t->type != GGML_TYPE_BF16)
        return cx_error("tensor '%s' has type %s; it must be F32, F16 or BF16", name, ggml_type_name(t->type));
    size_t n = (size_t)ne0 * (size_t)ne1;
    float *copy = malloc(sizeof(float) * n);
    if (!copy) return cx_error("out of memory");
    kern_dequant(t->type, t->data, copy, n);
    if (keep_owned(m, copy)) return -1;
    *v = copy;
    return 0;
}

int model_bind_vec(cx_model *m, const float **v, const char *name, int64_t n, bool optional) {
    return bind_f32(m, v, name, n, 1, optional);
}

int model_bind_f32_matrix(cx_model *m, const float **v, const char *name, int64_t ne0, int64_t ne1) {
    return bind_f32(m, v, name, ne0, ne1, false);
}

int model_bind_io(cx_model *m, const char *norm_name) {
    const gguf_tensor *emb = gguf_find_tensor(m->file, "token_embd.weight");
    if (!emb) return cx_error("tensor 'token_embd.weight' is missing");
    if (emb->n_dims != 2 || emb->ne[1] == 0 || emb->ne[1] > (1u << 24))
        return cx_error("tensor 'token_embd.weight' has an impossible shape");
    m->hp.n_vocab = (int32_t)emb->ne[1];
    if (model_bind_weight(m, &m->tok_embd, "token_embd.weight", m->hp.n_embd, m->hp.n_vocab) ||
        model_bind_vec(m, &m->output_norm, norm_name, m->hp.n_embd, false))
        return -1;
    if (!gguf_find_tensor(m->file, "output.weight")) {
        m->output = m->tok_embd; /* tied embeddings */
        return 0;
    }
    return model_bind_weight(m, &m->output, "output.weight", m->hp.n_embd, m->hp.n_vocab);
}

const gguf_kv *model_find_kv(const cx_model *m, const char *key) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", m->arch_name, key);
    return gguf_find(m->file, full);
}

int model_get_u32(const cx_model *m, const char *key, int32_t *out, int32_t dflt, bool required, int32_t lo,
                  int32_t hi) {
    return get_i32(m->file, m->arch_name, key, out, dflt, required) || check_range(key, *out, lo, hi) ? -1 : 0;
}

void model_get_f32(const cx_model *m, const char *key, float *out, float dflt) {
    get_f32(m->file, m->arch_name, key, out, dflt);
}

static char *dup_str(gguf_str s) {
    char *p = malloc(s.len + 1);
    if (!p) return NULL;
    memcpy(p, s.ptr, s.len);
    p[s.len] = 0;
    return p;
}

static int pick_arch(cx_model *m) {
    gguf_str arch;
    if (gguf_get_str(m->file, "general.architecture", &arch)) return cx_error("metadata general.architecture is missing");
    for (size_t i = 0; i < sizeof g_archs / sizeof g_archs[0]; i++) {
        if (gguf_str_eq(arch, g_archs[i].name)) {
            m->arch = g_archs[i].id;
            m->arch_name = g_archs[i].name;
            m->forward = g_archs[i].forward;
            m->hp.rope = g_archs[i].rope;
            m->act_bits = activation_bits(g_archs[i].act_bits);
            return 0;
        }
    }
    return cx_error("unsupported architecture '%.*s' (supported: llama, qwen2, qwen3, lfm2, gemma3)",
                    (int)(arch.len > 64 ? 64 : arch.len), arch.ptr);
}

static const arch_entry *arch_of(const cx_model *m) {
    for (size_t i = 0; i < sizeof g_archs / sizeof g_archs[0]; i++)
        if (g_archs[i].id == m->arch) return &g_archs[i];
    return NULL;
}

/* The text of a special token (NULL for id -1). */
static int token_text(const tokenizer *t, int32_t id, char **out) {
    *out = NULL;
    if (id < 0) return 0;
    int n = tok_piece(t, id, true, NULL, 0);
    if (n < 0) return 0;
    char *p = malloc((size_t)n + 1);
    if (!p) return cx_error("out of memory");
    tok_piece(t, id, true, p, (size_t)n + 1);
    p[n] = 0;
    *out = p;
    return 0;
}

static int load_tokenizer(cx_model *m) {
    m->tok = tok_load(m->file);
    if (!m->tok) return -1;
    if (tok_n_vocab(m->tok) > m->hp.n_vocab)
        return cx_error("the tokenizer has %d tokens but the embedding only %d rows", (int)tok_n_vocab(m->tok),
                        (int)m->hp.n_vocab);
    gguf_str tmpl;
    if (gguf_get_str(m->file, "tokenizer.chat_template", &tmpl) == 0 && !(m->chat_template = dup_str(tmpl)))
        return cx_error("out of memory");
    m->chat = chat_detect(m->chat_template, m->arch_name);
    if (token_text(m->tok, tok_bos(m->tok), &m->bos_text) || token_text(m->tok, tok_eos(m->tok), &m->eos_text))
        return -1;
    return 0;
}

cx_model *model_load(const char *path) {
    if (!path) {
        cx_error("model path is NULL");
        return NULL;
    }
    char *file = model_resolve_path(path);
    if (!file) return NULL;
    cx_model *m = calloc(1, sizeof *m);
    if (!m) {
        free(file);
        cx_error("out of memory");
        return NULL;
    }
    m->file = gguf_open(file);
    free(file);
    if (!m->file || pick_arch(m) || read_hparams(m) || read_layers(m) || arch_of(m)->bind(m) || load_tokenizer(m)) {
        model_free(m);
        return NULL;
    }
    return m;
}

void model_free(cx_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    free(m->chat_template);
    free(m->bos_text);
    free(m->eos_text);
    tok_free(m->tok);
    gguf_close(m->file);
    free(m);
}
