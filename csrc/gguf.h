/* GGUF v2/v3 reader over mmap. Everything returned points into the mapping
 * and lives as long as the gguf_file. The reader validates the whole header,
 * metadata and tensor table before returning: counts, string lengths, tensor
 * dimensions and data ranges are all checked against the file size. */
#ifndef CACTUS_GGUF_H
#define CACTUS_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Metadata value types (GGUF spec). */
typedef enum {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
} gguf_type;

/* Tensor element types (ggml numbering). Only these are supported. */
typedef enum {
    GGML_TYPE_F32 = 0,
    GGML_TYPE_F16 = 1,
    GGML_TYPE_Q4_0 = 2,
    GGML_TYPE_Q8_0 = 8,
    GGML_TYPE_BF16 = 30,
} ggml_type;

/* A string inside the file: NOT NUL-terminated. */
typedef struct {
    const char *ptr;
    uint64_t len;
} gguf_str;

typedef struct gguf_kv {
    gguf_str key;
    gguf_type type;
    union {
        uint64_t u64; /* any unsigned integer type, widened */
        int64_t i64;  /* any signed integer type, widened */
        double f64;   /* float32 / float64, widened */
        bool b;
        gguf_str str;
        struct {
            gguf_type type;       /* element type */
            uint64_t n;           /* element count */
            const void *data;     /* raw little-endian elements (numeric types) */
            gguf_str *strs;       /* n strings when type == STRING (owned by gguf_file) */
        } arr;
    } v;
} gguf_kv;

typedef struct {
    gguf_str name;
    uint32_t n_dims;
    uint64_t ne[4];     /* ne[0] is the contiguous (row) dimension; unused dims are 1 */
    ggml_type type;
    uint64_t offset;    /* relative to the data section */
    const void *data;   /* resolved pointer into the mapping */
    uint64_t nbytes;
} gguf_tensor;

typedef struct gguf_file {
    void *map;
    size_t map_size;
    uint32_t version;
    uint64_t n_kv;
    gguf_kv *kv;
    uint64_t n_tensors;
    gguf_tensor *tensors;
    uint64_t alignment;
    const uint8_t *data; /* start of the tensor data section */
} gguf_file;

/* Opens and validates `path`. Returns NULL with cx_error() set on failure,
 * naming the file and what is wrong with it. */
gguf_file *gguf_open(const char *path);
/* Same over a caller-owned buffer (not copied; must outlive the result). Used by fuzzing and tests. */
gguf_file *gguf_open_memory(const void *buf, size_t size);
void gguf_close(gguf_file *f);

const gguf_kv *gguf_find(const gguf_file *f, const char *key);
/* Typed getters: 0 on success, -1 when absent or of an incompatible type
 * (no error is set for absence; callers decide whether it is required).
 * Integer getters accept any integer type whose value fits. */
int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);
int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out);
int gguf_get_f32(const gguf_file *f, const char *key, float *out);
int gguf_get_bool(const gguf_file *f, const char *key, bool *out);
int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);
/* True when the string equals the NUL-terminated `s`. */
bool gguf_str_eq(gguf_str a, const char *s);

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* Element i of a numeric array kv (arr.data is little-endian and may be
 * unaligned, so read it through these). 0 on success, -1 when kv is not an
 * array of numbers, i is out of range, or (i64) an unsigned value exceeds
 * INT64_MAX. gguf_arr_get_i64 takes integer element types only;
 * gguf_arr_get_f64 takes any integer or float element type. */
int gguf_arr_get_i64(const gguf_kv *kv, uint64_t i, int64_t *out);
int gguf_arr_get_f64(const gguf_kv *kv, uint64_t i, double *out);
/* "uint8" ... "float64"; "unknown" otherwise. */
const char *gguf_type_name(gguf_type t);

/* Bytes for `n` elements of `type` (n must be a multiple of the block size;
 * 0 is returned otherwise, for an unsupported type, or when the size overflows). */
uint64_t ggml_type_row_bytes(ggml_type type, uint64_t n);
uint32_t ggml_type_block_size(ggml_type type);
const char *ggml_type_name(ggml_type type);

#endif
