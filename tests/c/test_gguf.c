/* GGUF reader tests: files are serialised in memory by a small writer below,
 * so every field (and every way of getting one wrong) is under the test's
 * control. The real vocab-only files from ../shared/vocab are read too.
 * argv[1] is the repository root. */
/* mkstemp, opendir and unlink are POSIX; the tests build without _GNU_SOURCE. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "gguf.h"
#include "util.h"

/* ---- a GGUF writer ------------------------------------------------------- */

typedef struct {
    uint8_t *d;
    size_t n, cap;
} gbuf;

static void put(gbuf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        b->d = realloc(b->d, cap);
        if (!b->d) abort();
        b->cap = cap;
    }
    memcpy(b->d + b->n, p, n);
    b->n += n;
}

/* Little-endian regardless of the host. */
static void put_le(gbuf *b, uint64_t v, int bytes) {
    uint8_t tmp[8];
    for (int i = 0; i < bytes; i++) tmp[i] = (uint8_t)(v >> (8 * i));
    put(b, tmp, (size_t)bytes);
}

static void put_u8(gbuf *b, uint8_t v) { put_le(b, v, 1); }
static void put_u16(gbuf *b, uint16_t v) { put_le(b, v, 2); }
static void put_u32(gbuf *b, uint32_t v) { put_le(b, v, 4); }
static void put_u64(gbuf *b, uint64_t v) { put_le(b, v, 8); }

static void put_f32(gbuf *b, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    put_u32(b, u);
}

static void put_f64(gbuf *b, double f) {
    uint64_t u;
    memcpy(&u, &f, 8);
    put_u64(b, u);
}

static void put_str(gbuf *b, const char *s) {
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}

static void put_header(gbuf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    put(b, "GGUF", 4);
    put_u32(b, version);
    put_u64(b, n_tensors);
    put_u64(b, n_kv);
}

static void put_key(gbuf *b, const char *key, uint32_t type) {
    put_str(b, key);
    put_u32(b, type);
}

static void put_array_header(gbuf *b, uint32_t elem_type, uint64_t n) {
    put_u32(b, elem_type);
    put_u64(b, n);
}

static void put_pad(gbuf *b, uint64_t align) {
    while (b->n % align) put_u8(b, 0);
}

typedef struct {
    const char *name;
    uint32_t n_dims;
    uint64_t ne[4];
    uint32_t type;
    uint64_t offset;
} tspec;

static void put_tensor_info(gbuf *b, const tspec *t) {
    put_str(b, t->name);
    put_u32(b, t->n_dims);
    for (uint32_t d = 0; d < t->n_dims; d++) put_u64(b, d < 4 ? t->ne[d] : 1); /* n_dims may lie */
    put_u32(b, t->type);
    put_u64(b, t->offset);
}

/* Tensor infos, padding to `align`, then `data_len` bytes of a pattern. */
static void put_tensors_and_data(gbuf *b, const tspec *ts, size_t n, uint64_t align, size_t data_len) {
    for (size_t i = 0; i < n; i++) put_tensor_info(b, &ts[i]);
    put_pad(b, align);
    for (size_t i = 0; i < data_len; i++) put_u8(b, (uint8_t)(i * 7 + 1));
}

static void gbuf_free(gbuf *b) {
    free(b->d);
    memset(b, 0, sizeof *b);
}

/* Opens a buffer expected to be rejected; checks the error names `want`. */
static void expect_reject(const gbuf *b, const char *want, int line) {
    cx_clear_error();
    gguf_file *f = gguf_open_memory(b->d, b->n);
    CHECK_MSG(f == NULL, "line %d: expected rejection (%s)", line, want);
    gguf_close(f);
    const char *e = cx_last_error();
    CHECK_MSG(strstr(e, want) != NULL, "line %d: error \"%s\" should mention \"%s\"", line, e, want);
}
#define EXPECT_REJECT(b, want) expect_reject((b), (want), __LINE__)

/* ---- valid files --------------------------------------------------------- */

/* One key of every scalar type, string and numeric arrays, a nested array. */
static void build_all_types(gbuf *b, uint32_t version) {
    put_header(b, version, 0, 17);
    put_key(b, "t.u8", GGUF_TYPE_UINT8), put_u8(b, 200);
    put_key(b, "t.i8", GGUF_TYPE_INT8), put_u8(b, (uint8_t)-5);
    put_key(b, "t.u16", GGUF_TYPE_UINT16), put_u16(b, 60000);
    put_key(b, "t.i16", GGUF_TYPE_INT16), put_u16(b, (uint16_t)-30000);
    put_key(b, "t.u32", GGUF_TYPE_UINT32), put_u32(b, 4000000000u);
    put_key(b, "t.i32", GGUF_TYPE_INT32), put_u32(b, (uint32_t)-2000000000);
    put_key(b, "t.f32", GGUF_TYPE_FLOAT32), put_f32(b, 1.5f);
    put_key(b, "t.bool", GGUF_TYPE_BOOL), put_u8(b, 1);
    put_key(b, "t.str", GGUF_TYPE_STRING), put_str(b, "hello");
    put_key(b, "t.u64", GGUF_TYPE_UINT64), put_u64(b, (1ull << 40) + 3);
    put_key(b, "t.i64", GGUF_TYPE_INT64), put_u64(b, (uint64_t)-(int64_t)(1ll << 40));
    put_key(b, "t.f64", GGUF_TYPE_FLOAT64), put_f64(b, 3.25);
    put_key(b, "t.strs", GGUF_TYPE_ARRAY), put_array_header(b, GGUF_TYPE_STRING, 3);
    put_str(b, "a"), put_str(b, ""), put_str(b, "ccc");
    put_key(b, "t.i32s", GGUF_TYPE_ARRAY), put_array_header(b, GGUF_TYPE_INT32, 3);
    put_u32(b, 1), put_u32(b, (uint32_t)-2), put_u32(b, 3);
    put_key(b, "t.f32s", GGUF_TYPE_ARRAY), put_array_header(b, GGUF_TYPE_FLOAT32, 2);
    put_f32(b, 0.5f), put_f32(b, -1.25f);
    /* [[1, 2], [3]] as arrays of uint16 */
    put_key(b, "t.nested", GGUF_TYPE_ARRAY), put_array_header(b, GGUF_TYPE_ARRAY, 2);
    put_array_header(b, GGUF_TYPE_UINT16, 2), put_u16(b, 1), put_u16(b, 2);
    put_array_header(b, GGUF_TYPE_UINT16, 1), put_u16(b, 3);
    put_key(b, "t.empty", GGUF_TYPE_ARRAY), put_array_header(b, GGUF_TYPE_UINT8, 0);
}

static void check_scalars(const gguf_file *f) {
    uint32_t u32;
    uint64_t u64;
    float f32;
    bool bo;
    gguf_str s;
    CHECK(gguf_get_u32(f, "t.u8", &u32) == 0 && u32 == 200);
    CHECK(gguf_find(f, "t.i8")->v.i64 == -5);
    CHECK_EQ_INT(gguf_get_u32(f, "t.i8", &u32), -1); /* negative never fits */
    CHECK(gguf_get_u32(f, "t.u16", &u32) == 0 && u32 == 60000);
    CHECK(gguf_find(f, "t.i16")->v.i64 == -30000);
    CHECK(gguf_get_u32(f, "t.u32", &u32) == 0 && u32 == 4000000000u);
    CHECK(gguf_find(f, "t.i32")->v.i64 == -2000000000);
    CHECK(gguf_get_f32(f, "t.f32", &f32) == 0 && f32 == 1.5f);
    CHECK(gguf_get_bool(f, "t.bool", &bo) == 0 && bo);
    CHECK(gguf_get_str(f, "t.str", &s) == 0 && gguf_str_eq(s, "hello"));
    CHECK(!gguf_str_eq(s, "hell") && !gguf_str_eq(s, "hello!"));
    CHECK_EQ_INT(gguf_get_u32(f, "t.u64", &u32), -1); /* does not fit 32 bits */
    CHECK(gguf_get_u64(f, "t.u64", &u64) == 0 && u64 == (1ull << 40) + 3);
    CHECK(gguf_find(f, "t.i64")->v.i64 == -(1ll << 40));
    CHECK(gguf_get_f32(f, "t.f64", &f32) == 0 && f32 == 3.25f);
    CHECK(gguf_get_f32(f, "t.u32", &f32) == 0 && f32 == 4e9f); /* ints widen to float */
    /* Absent keys and incompatible types are plain -1. */
    CHECK_EQ_INT(gguf_get_u32(f, "missing", &u32), -1);
    CHECK_EQ_INT(gguf_get_str(f, "t.u8", &s), -1);
    CHECK_EQ_INT(gguf_get_bool(f, "t.u8", &bo), -1);
    CHECK_EQ_INT(gguf_get_u64(f, "t.str", &u64), -1);
    CHECK_EQ_INT(gguf_get_f32(f, "t.strs", &f32), -1);
    CHECK(gguf_find(f, "t.u") == NULL && gguf_find(f, "t.u88") == NULL && gguf_find(f, NULL) == NULL);
}

static void check_arrays(const gguf_file *f) {
    const gguf_kv *kv = gguf_find(f, "t.strs");
    if (CHECK(kv && kv->type == GGUF_TYPE_ARRAY && kv->v.arr.type == GGUF_TYPE_STRING && kv->v.arr.n == 3)) {
        CHECK(gguf_str_eq(kv->v.arr.strs[0], "a"));
        CHECK(gguf_str_eq(kv->v.arr.strs[1], ""));
        CHECK(gguf_str_eq(kv->v.arr.strs[2], "ccc"));
    }
    int64_t i64;
    double f64;
    kv = gguf_find(f, "t.i32s");
    if (CHECK(kv && kv->v.arr.type == GGUF_TYPE_INT32 && kv->v.arr.n == 3)) {
        CHECK(gguf_arr_get_i64(kv, 1, &i64) == 0 && i64 == -2);
        CHECK(gguf_arr_get_f64(kv, 2, &f64) == 0 && f64 == 3.0);
        CHECK_EQ_INT(gguf_arr_get_i64(kv, 3, &i64), -1); /* out of range */
    }
    kv = gguf_find(f, "t.f32s");
    if (CHECK(kv && kv->v.arr.type == GGUF_TYPE_FLOAT32 && kv->v.arr.n == 2)) {
        CHECK(gguf_arr_get_f64(kv, 1, &f64) == 0 && f64 == -1.25);
        CHECK_EQ_INT(gguf_arr_get_i64(kv, 0, &i64), -1); /* floats are not integers */
    }
    kv = gguf_find(f, "t.nested");
    if (CHECK(kv && kv->v.arr.type == GGUF_TYPE_ARRAY && kv->v.arr.n == 2)) {
        CHECK(kv->v.arr.strs == NULL);
        CHECK_EQ_INT(gguf_arr_get_i64(kv, 0, &i64), -1);
        /* raw data starts at the first inner array's header: uint16 type, count 2 */
        const uint8_t *raw = kv->v.arr.data;
        CHECK(raw[0] == GGUF_TYPE_UINT16 && raw[4] == 2);
    }
    kv = gguf_find(f, "t.empty");
    CHECK(kv && kv->v.arr.n == 0 && kv->v.arr.type == GGUF_TYPE_UINT8);
    CHECK_EQ_INT(gguf_arr_get_i64(gguf_find(f, "t.u8"), 0, &i64), -1); /* not an array */
    CHECK_EQ_STR(gguf_type_name(GGUF_TYPE_FLOAT64), "float64");
    CHECK_EQ_STR(gguf_type_name((gguf_type)77), "unknown");
}

static void test_all_metadata_types(void) {
    for (uint32_t version = 2; version <= 3; version++) {
        gbuf b = {0};
        build_all_types(&b, version);
        gguf_file *f = gguf_open_memory(b.d, b.n);
        if (CHECK_MSG(f != NULL, "v%u: %s", version, cx_last_error())) {
            CHECK_EQ_INT(f->version, version);
            CHECK_EQ_U64(f->n_kv, 17);
            CHECK_EQ_U64(f->n_tensors, 0);
            CHECK_EQ_U64(f->alignment, 32);
            CHECK(f->map == b.d && f->map_size == b.n);
            check_scalars(f);
            check_arrays(f);
        }
        gguf_close(f);
        gbuf_free(&b);
    }
}

/* Tensors of every supported type with a custom alignment of 64. */
static const tspec g_tensors[] = {
    {"w.f32", 2, {8, 2}, GGML_TYPE_F32, 0},          /* 64 bytes */
    {"w.f16", 1, {16}, GGML_TYPE_F16, 64},           /* 32 */
    {"w.bf16", 3, {4, 3, 2}, GGML_TYPE_BF16, 128},   /* 48 */
    {"w.q8_0", 2, {64, 2}, GGML_TYPE_Q8_0, 192},     /* 4 blocks * 34 = 136 */
    {"w.q4_0", 4, {32, 3, 1, 1}, GGML_TYPE_Q4_0, 384} /* 3 blocks * 18 = 54 */
};
static const uint64_t g_tensor_bytes[] = {64, 32, 48, 136, 54};
#define N_TENSORS (sizeof g_tensors / sizeof g_tensors[0])
#define TENSOR_DATA_LEN (384 + 54)

static void build_tensor_file(gbuf *b, uint32_t version) {
    put_header(b, version, N_TENSORS, 2);
    put_key(b, "general.architecture", GGUF_TYPE_STRING), put_str(b, "llama");
    put_key(b, "general.alignment", GGUF_TYPE_UINT32), put_u32(b, 64);
    put_tensors_and_data(b, g_tensors, N_TENSORS, 64, TENSOR_DATA_LEN);
}

static void check_tensor_file(const gguf_file *f, const gbuf *b) {
    CHECK_EQ_U64(f->alignment, 64);
    CHECK_EQ_U64(f->n_tensors, N_TENSORS);
    size_t data_off = (size_t)(f->data - b->d);
    CHECK_EQ_U64(data_off % 64, 0);
    CHECK_EQ_U64(data_off + TENSOR_DATA_LEN, b->n);
    for (size_t i = 0; i < N_TENSORS; i++) {
        const gguf_tensor *t = gguf_find_tensor(f, g_tensors[i].name);
        if (!CHECK_MSG(t != NULL, "tensor %s", g_tensors[i].name)) continue;
        CHECK(t == &f->tensors[i]); /* file order is kept */
        CHECK_EQ_INT(t->type, g_tensors[i].type);
        CHECK_EQ_INT(t->n_dims, g_tensors[i].n_dims);
        for (uint32_t d = 0; d < 4; d++)
            CHECK_EQ_U64(t->ne[d], d < t->n_dims ? g_tensors[i].ne[d] : 1);
        CHECK_EQ_U64(t->offset, g_tensors[i].offset);
        CHECK_EQ_U64(t->nbytes, g_tensor_bytes[i]);
        CHECK((const uint8_t *)t->data == f->data + t->offset);
        /* first data byte follows the writer's pattern */
        CHECK_EQ_INT(((const uint8_t *)t->data)[0], (uint8_t)(t->offset * 7 + 1));
    }
    CHECK(gguf_find_tensor(f, "w.f3") == NULL && gguf_find_tensor(f, "nope") == NULL);
}

static void test_tensor_table(void) {
    for (uint32_t version = 2; version <= 3; version++) {
        gbuf b = {0};
        build_tensor_file(&b, version);
        gguf_file *f = gguf_open_memory(b.d, b.n);
        if (CHECK_MSG(f != NULL, "v%u: %s", version, cx_last_error())) check_tensor_file(f, &b);
        gguf_close(f);
        gbuf_free(&b);
    }
}

static void test_type_helpers(void) {
    CHECK_EQ_U64(ggml_type_row_bytes(GGML_TYPE_F32, 10), 40);
    CHECK_EQ_U64(ggml_type_row_bytes(GGML_TYPE_F16, 10), 20);
    CHECK_EQ_U64(ggml_type_row_bytes(GGML_TYPE_BF16, 10), 20);
    CHECK_EQ_U64(ggml_type_row_bytes(GGML_TYPE_Q8_0, 64), 68);
    CHECK_EQ_U64(ggml_type_row_bytes(GGML_TYPE_Q4_0, 64), 36);
    CHECK_EQ_U64(ggml_type_row_bytes(GGML_TYPE_Q4_0, 33), 0);       /* partial block */
    CHECK_EQ_U64(ggml_type_row_bytes(GGML_TYPE_F32, 1ull << 62), 0); /* overflow */
    CHECK_EQ_U64(ggml_type_row_bytes((ggml_type)12, 256), 0);
    CHECK_EQ_INT(ggml_type_block_size(GGML_TYPE_Q8_0), 32);
    CHECK_EQ_INT(ggml_type_block_size(GGML_TYPE_BF16), 1);
    CHECK_EQ_STR(ggml_type_name(GGML_TYPE_Q4_0), "q4_0");
    CHECK_EQ_STR(ggml_type_name(GGML_TYPE_BF16), "bf16");
}

/* ---- hostile input ------------------------------------------------------- */

/* Every proper prefix of a valid file must be rejected cleanly (the file's
 * last tensor ends exactly at EOF, so even a one-byte cut matters). Each
 * prefix is copied into its own allocation so ASan sees any overread. */
static void test_truncation(void) {
    gbuf b = {0};
    build_tensor_file(&b, 3);
    int clean = 0;
    for (size_t n = 0; n < b.n; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, b.d, n);
        cx_clear_error();
        gguf_file *f = gguf_open_memory(n ? copy : NULL, n);
        if (f == NULL && cx_last_error()[0] && !strncmp(cx_last_error(), "gguf: ", 6)) clean++;
        else fprintf(stderr, "prefix %zu: f=%p err=\"%s\"\n", n, (void *)f, cx_last_error());
        gguf_close(f);
        free(copy);
    }
    CHECK_EQ_INT(clean, (int)b.n);
    gbuf_free(&b);

    b = (gbuf){0};
    build_all_types(&b, 3);
    clean = 0;
    for (size_t n = 1; n < b.n; n++) {
        uint8_t *copy = malloc(n);
        memcpy(copy, b.d, n);
        gguf_file *f = gguf_open_memory(copy, n);
        clean += f == NULL;
        gguf_close(f);
        free(copy);
    }
    CHECK_EQ_INT(clean, (int)b.n - 1);
    gbuf_free(&b);
}

static void test_bad_header(void) {
    gbuf b = {0};
    put(&b, "GGUX", 4), put_u32(&b, 3), put_u64(&b, 0), put_u64(&b, 0);
    EXPECT_REJECT(&b, "not a GGUF file (bad magic)");
    gbuf_free(&b);

    const struct { uint32_t v; const char *msg; } versions[] = {
        {0, "unsupported GGUF version 0"}, {1, "version 1 is not supported"},
        {4, "unsupported GGUF version 4"}, {0x03000000, "big-endian"},
    };
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        b = (gbuf){0};
        put_header(&b, versions[i].v, 0, 0);
        EXPECT_REJECT(&b, versions[i].msg);
        gbuf_free(&b);
    }

    b = (gbuf){0};
    put_header(&b, 3, 0, 1ull << 62);
    put_key(&b, "a", GGUF_TYPE_UINT8), put_u8(&b, 1);
    EXPECT_REJECT(&b, "metadata count 4611686018427387904 cannot fit in the 14 bytes left");
    gbuf_free(&b);

    b = (gbuf){0};
    put_header(&b, 3, 1ull << 62, 0);
    put_tensor_info(&b, &g_tensors[0]);
    EXPECT_REJECT(&b, "tensor count 4611686018427387904 cannot fit");
    gbuf_free(&b);

    /* A header that is fine alone but whose tensor count exceeds what is
     * left after the metadata. */
    b = (gbuf){0};
    put_header(&b, 3, 2, 1);
    put_key(&b, "k", GGUF_TYPE_STRING), put_str(&b, "0123456789012345678901234567890123456789");
    put_tensor_info(&b, &g_tensors[1]);
    EXPECT_REJECT(&b, "cannot fit in the");
    gbuf_free(&b);

    /* Header only and empty buffer. */
    b = (gbuf){0};
    put_header(&b, 3, 0, 0);
    gguf_file *f = gguf_open_memory(b.d, b.n);
    CHECK_MSG(f != NULL && f->n_kv == 0 && f->n_tensors == 0, "%s", cx_last_error());
    gguf_close(f);
    CHECK(gguf_open_memory(b.d, 0) == NULL && strstr(cx_last_error(), "empty"));
    CHECK(gguf_open_memory(NULL, 10) == NULL);
    gbuf_free(&b);
}

static void test_bad_metadata(void) {
    gbuf b = {0};
    put_header(&b, 3, 0, 1);
    put_u64(&b, 1000), put(&b, "short", 5);
    EXPECT_REJECT(&b, "metadata key length 1000 at offset 24 runs past the end of the file (size 37)");
    gbuf_free(&b);

    b = (gbuf){0};
    put_header(&b, 3, 0, 1);
    put_u64(&b, UINT64_MAX), put(&b, "abcdefgh", 8);
    EXPECT_REJECT(&b, "runs past the end");
    gbuf_free(&b);

    b = (gbuf){0};
    put_header(&b, 3, 0, 1);
    put_key(&b, "s", GGUF_TYPE_STRING), put_u64(&b, 50), put(&b, "xy", 2);
    EXPECT_REJECT(&b, "metadata string length 50");
    gbuf_free(&b);

    b = (gbuf){0};
    put_header(&b, 3, 0, 1);
    put_key(&b, "weird", 13), put_u32(&b, 0);
    EXPECT_REJECT(&b, "metadata 'weird' has unknown value type 13");
    gbuf_free(&b);

    b = (gbuf){0};
    put_header(&b, 3, 0, 1);
    put_key(&b, "arr", GGUF_TYPE_ARRAY), put_array_header(&b, 42, 1), put_u32(&b, 0);
    EXPECT_REJECT(&b, "unknown array element type 42");
    gbuf_free(&b);

    /* Absurd array counts fail before any allocation. */
    const uint32_t elem_types[] = {GGUF_TYPE_UINT64, GGUF_TYPE_STRING, GGUF_TYPE_ARRAY, GGUF_TYPE_UINT8};
    for (size_t i = 0; i < 4; i++) {
        b = (gbuf){0};
        put_header(&b, 3, 0, 1);
        put_key(&b, "arr", GGUF_TYPE_ARRAY), put_array_header(&b, elem_types[i], 1ull << 62);
        put_u64(&b, 0), put_u64(&b, 0);
        EXPECT_REJECT(&b, "array of 4611686018427387904 elements cannot fit");
        gbuf_free(&b);
    }

    /* A string inside a string array running past EOF. */
    b = (gbuf){0};
    put_header(&b, 3, 0, 1);
    put_key(&b, "arr", GGUF_TYPE_ARRAY), put_array_header(&b, GGUF_TYPE_STRING, 2);
    put_str(&b, "ok"), put_u64(&b, 99), put_u64(&b, 0);
    EXPECT_REJECT(&b, "array string length 99");
    gbuf_free(&b);

    /* Arrays nested 9 deep (the limit is 8). */
    b = (gbuf){0};
    put_header(&b, 3, 0, 1);
    put_key(&b, "deep", GGUF_TYPE_ARRAY);
    for (int d = 0; d < 9; d++) put_array_header(&b, GGUF_TYPE_ARRAY, 1);
    put_array_header(&b, GGUF_TYPE_UINT8, 0);
    EXPECT_REJECT(&b, "arrays nested deeper than 8");
    gbuf_free(&b);

    b = (gbuf){0};
    put_header(&b, 3, 0, 2);
    put_key(&b, "dup", GGUF_TYPE_UINT8), put_u8(&b, 1);
    put_key(&b, "dup", GGUF_TYPE_UINT8), put_u8(&b, 2);
    EXPECT_REJECT(&b, "duplicate metadata key 'dup'");
    gbuf_free(&b);
}

static void test_bad_alignment(void) {
    const struct { uint32_t type; uint64_t value; const char *msg; } cases[] = {
        {GGUF_TYPE_UINT32, 0, "general.alignment 0 is not a power of two"},
        {GGUF_TYPE_UINT32, 48, "general.alignment 48 is not a power of two"},
        {GGUF_TYPE_UINT32, 2, "general.alignment 2 is below 8: tensor data would be misaligned"},
        {GGUF_TYPE_UINT32, 1, "general.alignment 1 is below 8"},
        {GGUF_TYPE_INT32, (uint32_t)-32, "must be a non-negative integer (it is a int32)"},
        {GGUF_TYPE_FLOAT32, 0, "must be a non-negative integer (it is a float32)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gbuf b = {0};
        put_header(&b, 3, 0, 1);
        put_key(&b, "general.alignment", cases[i].type), put_u32(&b, (uint32_t)cases[i].value);
        EXPECT_REJECT(&b, cases[i].msg);
        gbuf_free(&b);
    }
    /* A large power of two is fine when no tensor needs the padding. */
    gbuf b = {0};
    put_header(&b, 3, 0, 1);
    put_key(&b, "general.alignment", GGUF_TYPE_UINT64), put_u64(&b, 1ull << 40);
    gguf_file *f = gguf_open_memory(b.d, b.n);
    CHECK_MSG(f && f->alignment == (1ull << 40), "%s", cx_last_error());
    gguf_close(f);
    gbuf_free(&b);
}

/* One-tensor file: the spec, then `data_len` bytes after 32-byte padding. */
static void build_one_tensor(gbuf *b, const tspec *t, size_t data_len) {
    put_header(b, 3, 1, 0);
    put_tensors_and_data(b, t, 1, 32, data_len);
}

static void test_bad_tensors(void) {
    const struct { tspec t; const char *msg; } cases[] = {
        {{"x", 5, {1, 1, 1, 1}, 0, 0}, "tensor 'x' has 5 dimensions (supported: 1 to 4)"},
        {{"x", 0, {0}, 0, 0}, "tensor 'x' has 0 dimensions"},
        {{"x", 2, {4, 0}, 0, 0}, "tensor 'x' has a zero-sized dimension 1"},
        {{"x", 2, {1ull << 32, 1ull << 32}, 0, 0}, "tensor 'x' element count overflows 2^63"},
        {{"x", 2, {1ull << 62, 2}, 0, 0}, "element count overflows 2^63"},
        {{"x", 1, {1ull << 62}, GGML_TYPE_F32, 0}, "tensor 'x' byte size overflows"},
        {{"x", 1, {256}, 12, 0}, "tensor 'x' has unsupported type 12 (q4_K)"},
        {{"x", 1, {256}, 99, 0}, "unsupported type 99"},
        {{"x", 1, {33}, GGML_TYPE_Q8_0, 0}, "row length 33 is not a multiple of the q8_0 block size 32"},
        {{"x", 1, {16}, GGML_TYPE_Q4_0, 0}, "not a multiple of the q4_0 block size"},
        {{"x", 1, {8}, GGML_TYPE_F32, 16}, "tensor 'x' offset 16 is not a multiple of the alignment 32"},
        {{"x", 1, {8}, GGML_TYPE_F32, UINT64_MAX - 31}, "overflows"},
        {{"blk.0.attn_q.weight", 1, {16}, GGML_TYPE_F32, 0},
         "tensor 'blk.0.attn_q.weight' data [96, 160) extends past end of file (size 159)"},
        {{"x", 1, {8}, GGML_TYPE_F32, 32}, "data [96, 128) extends past end of file"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gbuf b = {0};
        /* The data section holds 63 bytes: one short of a 16-float tensor. */
        build_one_tensor(&b, &cases[i].t, 63);
        expect_reject(&b, cases[i].msg, (int)i);
        gbuf_free(&b);
    }
}

static void test_overlap_and_duplicates(void) {
    gbuf b = {0};
    tspec overlap[] = {{"a", 1, {16}, GGML_TYPE_F32, 0}, {"b", 1, {8}, GGML_TYPE_F32, 32}};
    put_header(&b, 3, 2, 0);
    put_tensors_and_data(&b, overlap, 2, 32, 64);
    EXPECT_REJECT(&b, "tensors 'a' [0, 64) and 'b' [32, 64) overlap");
    gbuf_free(&b);

    b = (gbuf){0};
    tspec same[] = {{"a", 1, {8}, GGML_TYPE_F32, 0}, {"b", 1, {8}, GGML_TYPE_F32, 0}};
    put_header(&b, 3, 2, 0);
    put_tensors_and_data(&b, same, 2, 32, 32);
    EXPECT_REJECT(&b, "overlap");
    gbuf_free(&b);

    b = (gbuf){0};
    tspec dup[] = {{"w", 1, {8}, GGML_TYPE_F32, 0}, {"w", 1, {8}, GGML_TYPE_F32, 32}};
    put_header(&b, 3, 2, 0);
    put_tensors_and_data(&b, dup, 2, 32, 64);
    EXPECT_REJECT(&b, "duplicate tensor name 'w'");
    gbuf_free(&b);

    /* Adjacent (touching) tensors are fine. */
    b = (gbuf){0};
    tspec touch[] = {{"b", 1, {8}, GGML_TYPE_F32, 32}, {"a", 1, {8}, GGML_TYPE_F32, 0}};
    put_header(&b, 3, 2, 0);
    put_tensors_and_data(&b, touch, 2, 32, 64);
    gguf_file *f = gguf_open_memory(b.d, b.n);
    CHECK_MSG(f != NULL, "%s", cx_last_error());
    gguf_close(f);
    gbuf_free(&b);
}

/* Random byte flips over a valid file (fixed seed): whatever a mutation
 * does, the reader either accepts the file or sets an error; it never reads
 * outside the buffer (run under ASan to make that bite). */
static void test_mutations(void) {
    gbuf b = {0};
    build_tensor_file(&b, 3);
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    int ok = 0, rejected = 0;
    uint8_t *copy = malloc(b.n);
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(copy, b.d, b.n);
        int flips = 1 + iter % 4;
        for (int k = 0; k < flips; k++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t at = (size_t)(rng >> 33) % b.n;
            /* mostly the header/metadata/tensor table, where the structure is */
            if (iter % 2) at %= b.n - TENSOR_DATA_LEN;
            copy[at] = (uint8_t)(rng >> 17);
        }
        cx_clear_error();
        gguf_file *f = gguf_open_memory(copy, b.n);
        if (f) ok++;
        else if (cx_last_error()[0]) rejected++;
        gguf_close(f);
    }
    CHECK_EQ_INT(ok + rejected, 3000);
    CHECK(rejected > 0);
    free(copy);
    gbuf_free(&b);
}

/* ---- files on disk ------------------------------------------------------- */

static void write_file(const char *path, const gbuf *b) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return;
    if (b->n) fwrite(b->d, 1, b->n, fp);
    fclose(fp);
}

static void test_files(const char *root) {
    char path[] = "/tmp/cactus_test_gguf_XXXXXX";
    int fd = mkstemp(path);
    if (!CHECK(fd >= 0)) return;
    close(fd);

    gbuf b = {0};
    build_tensor_file(&b, 3);
    write_file(path, &b);
    gguf_file *f = gguf_open(path);
    if (CHECK_MSG(f != NULL, "%s", cx_last_error())) {
        CHECK_EQ_U64(f->map_size, b.n);
        CHECK(memcmp(f->map, b.d, b.n) == 0);
        const gguf_tensor *t = gguf_find_tensor(f, "w.q8_0");
        CHECK(t && memcmp(t->data, b.d + (b.n - TENSOR_DATA_LEN) + 192, 136) == 0);
    }
    gguf_close(f);

    b.d[0] = 'X'; /* errors name the path */
    write_file(path, &b);
    CHECK(gguf_open(path) == NULL);
    CHECK_CONTAINS(cx_last_error(), path);
    CHECK_CONTAINS(cx_last_error(), "bad magic");

    b.n = 0;
    write_file(path, &b);
    CHECK(gguf_open(path) == NULL);
    CHECK_CONTAINS(cx_last_error(), "empty file");
    gbuf_free(&b);
    unlink(path);

    CHECK(gguf_open(path) == NULL);
    CHECK_CONTAINS(cx_last_error(), "cannot open");
    CHECK(gguf_open(root) == NULL);
    CHECK_CONTAINS(cx_last_error(), "not a regular file");
    CHECK(gguf_open(NULL) == NULL);
    gguf_close(NULL);
}

/* ---- real vocab files ---------------------------------------------------- */

typedef struct {
    const char *file;
    const char *model;
    uint64_t n_tokens;
} vocab_expect;

static void check_vocab(const char *dir, const vocab_expect *v) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, v->file);
    gguf_file *f = gguf_open(path);
    if (!CHECK_MSG(f != NULL, "%s: %s", v->file, cx_last_error())) return;
    gguf_str model;
    CHECK(gguf_get_str(f, "tokenizer.ggml.model", &model) == 0 && gguf_str_eq(model, v->model));
    const gguf_kv *tokens = gguf_find(f, "tokenizer.ggml.tokens");
    if (CHECK_MSG(tokens && tokens->type == GGUF_TYPE_ARRAY && tokens->v.arr.type == GGUF_TYPE_STRING,
                  "%s tokens", v->file)) {
        CHECK_MSG(tokens->v.arr.n == v->n_tokens, "%s: %llu tokens, want %llu", v->file,
                  (unsigned long long)tokens->v.arr.n, (unsigned long long)v->n_tokens);
        /* The token-type array, when present, runs parallel to the tokens. */
        const gguf_kv *types = gguf_find(f, "tokenizer.ggml.token_type");
        int64_t t0;
        if (types) CHECK(types->v.arr.n == tokens->v.arr.n && gguf_arr_get_i64(types, 0, &t0) == 0);
    }
    CHECK_EQ_U64(f->n_tensors, 0);
    gguf_close(f);
}

static void test_vocab_files(const char *root) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/../shared/vocab", root);
    static const vocab_expect vocabs[] = {
        {"ggml-vocab-llama-spm.gguf", "llama", 32000},   {"ggml-vocab-gpt-2.gguf", "gpt2", 50257},
        {"ggml-vocab-bert-bge.gguf", "bert", 30522},      {"ggml-vocab-phi-3.gguf", "llama", 32064},
        {"ggml-vocab-deepseek-coder.gguf", "gpt2", 32256}, {"ggml-vocab-falcon.gguf", "gpt2", 65024},
    };
    for (size_t i = 0; i < sizeof vocabs / sizeof vocabs[0]; i++) check_vocab(dir, &vocabs[i]);

    /* And every .gguf there opens cleanly. */
    DIR *d = opendir(dir);
    if (!CHECK_MSG(d != NULL, "cannot list %s", dir)) return;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 5, ".gguf")) continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        gguf_file *f = gguf_open(path);
        CHECK_MSG(f != NULL, "%s: %s", e->d_name, cx_last_error());
        gguf_close(f);
        n++;
    }
    closedir(d);
    CHECK(n >= 10);
}

int main(int argc, char **argv) {
    const char *root = argc > 1 ? argv[1] : ".";
    test_all_metadata_types();
    test_tensor_table();
    test_type_helpers();
    test_truncation();
    test_bad_header();
    test_bad_metadata();
    test_bad_alignment();
    test_bad_tensors();
    test_overlap_and_duplicates();
    test_mutations();
    test_files(root);
    test_vocab_files(root);
    return CHECK_DONE();
}
