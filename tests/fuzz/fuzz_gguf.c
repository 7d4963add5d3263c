/* Fuzzes model files: the GGUF reader (gguf_open_memory: header, metadata,
 * tensor table, data ranges), the typed getters, the tokenizer built from
 * the metadata (tok_load), and, when the bytes make a GGUF, the whole model
 * load (model_load: hyper-parameters, tensor binding per architecture,
 * tokenizer, chat template) through an in-memory file; a model that loads
 * runs a two-token forward pass in a 16-position session.
 *
 * Input: the bytes of a file.
 * Properties: every tensor the reader returns lies inside the buffer;
 * a loaded model's vocabulary fits its embedding. */
#define _GNU_SOURCE /* memfd_create */
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "gguf.h"
#include "model.h"
#include "session.h"
#include "tokenizer/tokenizer.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    return 0;
}

static void poke_metadata(const gguf_file *f) {
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        char key[256];
        size_t n = kv->key.len < sizeof key - 1 ? (size_t)kv->key.len : sizeof key - 1;
        memcpy(key, kv->key.ptr, n);
        key[n] = 0;
        uint32_t u32;
        uint64_t u64;
        float f32;
        bool b;
        gguf_str s;
        (void)gguf_get_u32(f, key, &u32);
        (void)gguf_get_u64(f, key, &u64);
        (void)gguf_get_f32(f, key, &f32);
        (void)gguf_get_bool(f, key, &b);
        if (gguf_get_str(f, key, &s) == 0) FUZZ_CHECK(s.len <= f->map_size);
        if (kv->type == GGUF_TYPE_ARRAY) {
            uint64_t m = kv->v.arr.n < 4 ? kv->v.arr.n : 4;
            for (uint64_t j = 0; j <= m; j++) { /* j == n is out of range on purpose */
                int64_t iv;
                double dv;
                (void)gguf_arr_get_i64(kv, j, &iv);
                (void)gguf_arr_get_f64(kv, j, &dv);
            }
        }
    }
    const uint8_t *lo = f->map, *hi = lo + f->map_size;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        const uint8_t *p = t->data;
        FUZZ_CHECK(p >= lo && p <= hi && t->nbytes <= (uint64_t)(hi - p));
        char name[256];
        size_t n = t->name.len < sizeof name - 1 ? (size_t)t->name.len : sizeof name - 1;
        memcpy(name, t->name.ptr, n);
        name[n] = 0;
        if (n == t->name.len && strlen(name) == n) FUZZ_CHECK(gguf_find_tensor(f, name) == t);
    }
}

static void run_model(const cx_model *m) {
    FUZZ_CHECK(tok_n_vocab(m->tok) <= m->hp.n_vocab);
    cx_session *s = session_new(m, 16, 1);
    if (!s) return;
    int32_t ids[2] = {0, m->hp.n_vocab - 1};
    (void)session_eval(s, ids, 2, NULL);
    session_free(s);
}

/* model_load reads a path: the bytes go into an anonymous in-memory file. */
static void load_model(const uint8_t *data, size_t size) {
    int fd = memfd_create("fuzz.gguf", MFD_CLOEXEC);
    if (fd < 0) return;
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) break;
        done += (size_t)w;
    }
    if (done == size) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        cx_model *m = model_load(path);
        if (m) run_model(m);
        model_free(m);
    }
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file *f = gguf_open_memory(data, size);
    if (f) {
        poke_metadata(f);
        tokenizer *t = tok_load(f);
        if (t) {
            char buf[64];
            int32_t n = tok_n_vocab(t);
            for (int32_t id = -1; id <= n && id < 64; id++) (void)tok_piece(t, id, true, buf, sizeof buf);
            ivec ids;
            iv_init(&ids);
            static const char text[] = "Hello world! <s> 123 \xc3\xa9\xe2\x96\x81 \xff";
            (void)tok_encode(t, text, sizeof text - 1, true, true, &ids);
            iv_free(&ids);
            tok_free(t);
        }
        gguf_close(f);
        load_model(data, size);
    }
    cx_clear_error();
    return 0;
}
