/* GGUF v2/v3 reader. The file is mapped read-only and parsed once; every
 * string, array and tensor pointer handed out points into the mapping. The
 * file is untrusted input: every read is bounds-checked with overflow-safe
 * arithmetic, and every count is checked against the bytes left before
 * anything is allocated for it, so a hostile header fails fast. */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_HEADER_BYTES 24 /* magic, version, tensor count, kv count */
/* Nested arrays are legal in the spec but unused in practice; the limit
 * keeps a hostile file from recursing deep into the stack. */
#define GGUF_MAX_ARRAY_DEPTH 8
#define GGUF_MIN_ALIGNMENT 8
/* Smallest possible encodings, used to cap counts before allocating. */
#define MIN_KV_BYTES 13     /* key length + value type + a 1-byte value */
#define MIN_ARRAY_BYTES 12  /* element type + element count */
#define MIN_TENSOR_BYTES 32 /* name length + n_dims + one dim + type + offset */
#define MAX_PRINTED_NAME 200

/* The public struct plus what only this file needs. `pub` must stay first:
 * gguf_close and the lookups cast the public pointer back. */
typedef struct {
    gguf_file pub;
    bool mapped;                     /* pub.map came from mmap (else caller-owned) */
    const gguf_kv **kv_by_key;       /* sorted, for binary-search lookup */
    const gguf_tensor **tensor_by_name;
} gguf_impl;

typedef struct {
    const uint8_t *base;
    size_t size;
    size_t pos;
    const char *name; /* path or "<memory>", for messages */
} reader;

/* ---- errors -------------------------------------------------------------- */

static int gerr(const reader *r, const char *fmt, ...) CX_PRINTF(2, 3);
static int gerr(const reader *r, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cx_error("gguf: %s: %s", r->name, msg);
}

/* Names can be arbitrarily long in a hostile file; messages print a prefix. */
static int plen(gguf_str s) { return s.len > MAX_PRINTED_NAME ? MAX_PRINTED_NAME : (int)s.len; }

/* ---- checked arithmetic -------------------------------------------------- */

static bool mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    if (a != 0 && b > UINT64_MAX / a) return false;
    *out = a * b;
    return true;
}

static bool add_u64(uint64_t a, uint64_t b, uint64_t *out) {
    if (b > UINT64_MAX - a) return false;
    *out = a + b;
    return true;
}

/* ---- little-endian loads (the mapping may be unaligned) ------------------ */

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | ((uint64_t)le32(p + 4) << 32); }

static double f32_bits_to_double(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return (double)f;
}

static double f64_bits_to_double(uint64_t bits) {
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* ---- primitive reads ----------------------------------------------------- */

static size_t remaining(const reader *r) { return r->size - r->pos; }

static int need(const reader *r, uint64_t n, const char *what) {
    if (n > remaining(r))
        return gerr(r, "truncated: %s at offset %zu needs %llu bytes but the file ends at %zu", what, r->pos,
                    (unsigned long long)n, r->size);
    return 0;
}

static int rd_u32(reader *r, uint32_t *out, const char *what) {
    if (need(r, 4, what)) return -1;
    *out = le32(r->base + r->pos);
    r->pos += 4;
    return 0;
}

static int rd_u64(reader *r, uint64_t *out, const char *what) {
    if (need(r, 8, what)) return -1;
    *out = le64(r->base + r->pos);
    r->pos += 8;
    return 0;
}

static int rd_str(reader *r, gguf_str *out, const char *what) {
    uint64_t len;
    if (rd_u64(r, &len, what)) return -1;
    if (len > remaining(r))
        return gerr(r, "%s length %llu at offset %zu runs past the end of the file (size %zu)", what,
                    (unsigned long long)len, r->pos - 8, r->size);
    out->ptr = (const char *)r->base + r->pos;
    out->len = len;
    r->pos += (size_t)len;
    return 0;
}

/* ---- metadata values ----------------------------------------------------- */

/* Byte size of a fixed-size value type; 0 for string and array. */
static size_t value_size(uint32_t t) {
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

static bool is_valid_value_type(uint32_t t) { return t <= GGUF_TYPE_FLOAT64; }

static bool is_unsigned_type(gguf_type t) {
    return t == GGUF_TYPE_UINT8 || t == GGUF_TYPE_UINT16 || t == GGUF_TYPE_UINT32 || t == GGUF_TYPE_UINT64;
}

static bool is_signed_type(gguf_type t) {
    return t == GGUF_TYPE_INT8 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_INT32 || t == GGUF_TYPE_INT64;
}

static bool is_float_type(gguf_type t) { return t == GGUF_TYPE_FLOAT32 || t == GGUF_TYPE_FLOAT64; }

/* Decodes one fixed-size value at p into the kv union, widened. */
static void decode_scalar(gguf_type t, const uint8_t *p, gguf_kv *kv) {
    switch (t) {
    case GGUF_TYPE_UINT8: kv->v.u64 = p[0]; break;
    case GGUF_TYPE_INT8: kv->v.i64 = (int8_t)p[0]; break;
    case GGUF_TYPE_UINT16: kv->v.u64 = le16(p); break;
    case GGUF_TYPE_INT16: kv->v.i64 = (int16_t)le16(p); break;
    case GGUF_TYPE_UINT32: kv->v.u64 = le32(p); break;
    case GGUF_TYPE_INT32: kv->v.i64 = (int32_t)le32(p); break;
    case GGUF_TYPE_UINT64: kv->v.u64 = le64(p); break;
    case GGUF_TYPE_INT64: kv->v.i64 = (int64_t)le64(p); break;
    case GGUF_TYPE_FLOAT32: kv->v.f64 = f32_bits_to_double(le32(p)); break;
    case GGUF_TYPE_FLOAT64: kv->v.f64 = f64_bits_to_double(le64(p)); break;
    case GGUF_TYPE_BOOL: kv->v.b = p[0] != 0; break;
    default: break;
    }
}

static int skip_array_body(reader *r, uint32_t type, uint64_t n, int depth, const gguf_kv *kv);

/* Reads an array header (element type + count) and validates the count
 * against the bytes left, so no loop or allocation can be driven by a lie. */
static int rd_array_header(reader *r, uint32_t *type, uint64_t *n, int depth, const gguf_kv *kv) {
    if (depth > GGUF_MAX_ARRAY_DEPTH)
        return gerr(r, "metadata '%.*s': arrays nested deeper than %d", plen(kv->key), kv->key.ptr,
                    GGUF_MAX_ARRAY_DEPTH);
    if (rd_u32(r, type, "array element type") || rd_u64(r, n, "array length")) return -1;
    if (!is_valid_value_type(*type))
        return gerr(r, "metadata '%.*s': unknown array element type %u", plen(kv->key), kv->key.ptr, *type);
    size_t min = value_size(*type);
    if (*type == GGUF_TYPE_STRING) min = 8;
    if (*type == GGUF_TYPE_ARRAY) min = MIN_ARRAY_BYTES;
    if (*n > remaining(r) / min)
        return gerr(r, "metadata '%.*s': array of %llu elements cannot fit in the %zu bytes left", plen(kv->key),
                    kv->key.ptr, (unsigned long long)*n, remaining(r));
    return 0;
}

/* Walks over n elements of `type`, checking every length on the way. */
static int skip_array_body(reader *r, uint32_t type, uint64_t n, int depth, const gguf_kv *kv) {
    size_t sz = value_size(type);
    if (sz) {
        r->pos += (size_t)n * sz; /* rd_array_header proved n * sz <= remaining */
        return 0;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (type == GGUF_TYPE_STRING) {
            gguf_str s;
            if (rd_str(r, &s, "array string")) return -1;
        } else {
            uint32_t et = 0;
            uint64_t en = 0;
            if (rd_array_header(r, &et, &en, depth + 1, kv) || skip_array_body(r, et, en, depth + 1, kv))
                return -1;
        }
    }
    return 0;
}

static int parse_array(reader *r, gguf_kv *kv) {
    uint32_t et;
    uint64_t n;
    if (rd_array_header(r, &et, &n, 1, kv)) return -1;
    kv->v.arr.type = (gguf_type)et;
    kv->v.arr.n = n;
    kv->v.arr.data = r->base + r->pos;
    kv->v.arr.strs = NULL;
    if (et != GGUF_TYPE_STRING) return skip_array_body(r, et, n, 1, kv);
    /* n <= remaining / 8 (checked), so this allocation is bounded by the file size. */
    kv->v.arr.strs = calloc(n ? (size_t)n : 1, sizeof(gguf_str));
    if (!kv->v.arr.strs) return gerr(r, "out of memory for %llu strings", (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++)
        if (rd_str(r, &kv->v.arr.strs[i], "array string")) return -1;
    return 0;
}

static int parse_kv(reader *r, gguf_kv *kv) {
    uint32_t t;
    if (rd_str(r, &kv->key, "metadata key") || rd_u32(r, &t, "metadata value type")) return -1;
    if (!is_valid_value_type(t))
        return gerr(r, "metadata '%.*s' has unknown value type %u", plen(kv->key), kv->key.ptr, t);
    kv->type = (gguf_type)t;
    if (t == GGUF_TYPE_ARRAY) return parse_array(r, kv);
    if (t == GGUF_TYPE_STRING) return rd_str(r, &kv->v.str, "metadata string");
    size_t sz = value_size(t);
    if (need(r, sz, "metadata value")) return -1;
    decode_scalar((gguf_type)t, r->base + r->pos, kv);
    r->pos += sz;
    return 0;
}

/* ---- ggml types ---------------------------------------------------------- */

uint32_t ggml_type_block_size(ggml_type type) {
    switch (type) {
    case GGML_TYPE_F32: case GGML_TYPE_F16: case GGML_TYPE_BF16: return 1;
    case GGML_TYPE_Q4_0: case GGML_TYPE_Q8_0: return 32;
    default: return 0;
    }
}

/* Bytes per block (per element for the float types). */
static uint32_t type_block_bytes(ggml_type type) {
    switch (type) {
    case GGML_TYPE_F32: return 4;
    case GGML_TYPE_F16: case GGML_TYPE_BF16: return 2;
    case GGML_TYPE_Q4_0: return 18; /* fp16 scale + 32 nibbles */
    case GGML_TYPE_Q8_0: return 34; /* fp16 scale + 32 int8 */
    default: return 0;
    }
}

/* Returns 0 for an unsupported type, a partial block or an overflowing size. */
uint64_t ggml_type_row_bytes(ggml_type type, uint64_t n) {
    uint32_t bs = ggml_type_block_size(type);
    uint64_t out;
    if (!bs || n % bs || !mul_u64(n / bs, type_block_bytes(type), &out)) return 0;
    return out;
}

const char *ggml_type_name(ggml_type type) {
    switch (type) {
    case GGML_TYPE_F32: return "f32";
    case GGML_TYPE_F16: return "f16";
    case GGML_TYPE_Q4_0: return "q4_0";
    case GGML_TYPE_Q8_0: return "q8_0";
    case GGML_TYPE_BF16: return "bf16";
    default: return "unknown";
    }
}

/* Names of the ggml types we do not run, so an error can say what the file
 * holds ("q4_K") rather than only a number. */
static const char *unsupported_type_name(uint32_t t) {
    static const char *names[] = {
        [3] = "q4_1",     [6] = "q5_0",     [7] = "q5_1",     [9] = "q8_1",    [10] = "q2_K",
        [11] = "q3_K",    [12] = "q4_K",    [13] = "q5_K",    [14] = "q6_K",   [15] = "q8_K",
        [16] = "iq2_xxs", [17] = "iq2_xs",  [18] = "iq3_xxs", [19] = "iq1_s",  [20] = "iq4_nl",
        [21] = "iq3_s",   [22] = "iq2_s",   [23] = "iq4_xs",  [24] = "i8",     [25] = "i16",
        [26] = "i32",     [27] = "i64",     [28] = "f64",     [29] = "iq1_m",  [34] = "tq1_0",
        [35] = "tq2_0",   [39] = "mxfp4",
    };
    if (t < sizeof names / sizeof names[0] && names[t]) return names[t];
    return "unknown to this reader";
}

static bool is_supported_type(uint32_t t) { return ggml_type_block_size((ggml_type)t) != 0; }

/* ---- tensor table -------------------------------------------------------- */

static int rd_tensor_info(reader *r, gguf_tensor *t, uint64_t idx) {
    char what[64];
    snprintf(what, sizeof what, "name of tensor %llu", (unsigned long long)idx);
    if (rd_str(r, &t->name, what) || rd_u32(r, &t->n_dims, "tensor dimension count")) return -1;
    if (t->n_dims < 1 || t->n_dims > 4)
        return gerr(r, "tensor '%.*s' has %u dimensions (supported: 1 to 4)", plen(t->name), t->name.ptr,
                    t->n_dims);
    for (uint32_t d = 0; d < 4; d++) {
        t->ne[d] = 1;
        if (d < t->n_dims && rd_u64(r, &t->ne[d], "tensor dimension")) return -1;
    }
    uint32_t type;
    if (rd_u32(r, &type, "tensor type") || rd_u64(r, &t->offset, "tensor offset")) return -1;
    if (!is_supported_type(type))
        return gerr(r, "tensor '%.*s' has unsupported type %u (%s)", plen(t->name), t->name.ptr, type,
                    unsupported_type_name(type));
    t->type = (ggml_type)type;
    return 0;
}

/* Shape checks and the byte size, with every product overflow-checked. */
static int check_tensor_shape(const reader *r, gguf_tensor *t, uint64_t alignment) {
    uint64_t nel = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (t->ne[d] == 0)
            return gerr(r, "tensor '%.*s' has a zero-sized dimension %u", plen(t->name), t->name.ptr, d);
        if (!mul_u64(nel, t->ne[d], &nel) || nel > (uint64_t)INT64_MAX)
            return gerr(r, "tensor '%.*s' element count overflows 2^63", plen(t->name), t->name.ptr);
    }
    uint32_t bs = ggml_type_block_size(t->type);
    if (t->ne[0] % bs)
        return gerr(r, "tensor '%.*s': row length %llu is not a multiple of the %s block size %u", plen(t->name),
                    t->name.ptr, (unsigned long long)t->ne[0], ggml_type_name(t->type), bs);
    uint64_t row = ggml_type_row_bytes(t->type, t->ne[0]);
    if (!row || !mul_u64(row, nel / t->ne[0], &t->nbytes))
        return gerr(r, "tensor '%.*s' byte size overflows", plen(t->name), t->name.ptr);
    if (t->offset % alignment)
        return gerr(r, "tensor '%.*s' offset %llu is not a multiple of the alignment %llu", plen(t->name),
                    t->name.ptr, (unsigned long long)t->offset, (unsigned long long)alignment);
    return 0;
}

/* Places the tensor in the data section, which starts at data_off. */
static int bind_tensor_data(const reader *r, gguf_tensor *t, uint64_t data_off) {
    uint64_t start, end;
    if (!add_u64(data_off, t->offset, &start) || !add_u64(start, t->nbytes, &end))
        return gerr(r, "tensor '%.*s' offset %llu + size %llu overflows", plen(t->name), t->name.ptr,
                    (unsigned long long)t->offset, (unsigned long long)t->nbytes);
    if (end > r->size)
        return gerr(r, "tensor '%.*s' data [%llu, %llu) extends past end of file (size %zu)", plen(t->name),
                    t->name.ptr, (unsigned long long)start, (unsigned long long)end, r->size);
    t->data = r->base + start;
    return 0;
}

/* ---- sorting and lookup -------------------------------------------------- */

static int cmp_str(gguf_str a, gguf_str b) {
    size_t n = a.len < b.len ? (size_t)a.len : (size_t)b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c) return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

static int cmp_kv_ptr(const void *a, const void *b) {
    return cmp_str((*(const gguf_kv *const *)a)->key, (*(const gguf_kv *const *)b)->key);
}

static int cmp_tensor_name(const void *a, const void *b) {
    return cmp_str((*(const gguf_tensor *const *)a)->name, (*(const gguf_tensor *const *)b)->name);
}

static int cmp_tensor_offset(const void *a, const void *b) {
    uint64_t x = (*(const gguf_tensor *const *)a)->offset, y = (*(const gguf_tensor *const *)b)->offset;
    return x < y ? -1 : x > y;
}

static gguf_str str_of(const char *s) { return (gguf_str){s, strlen(s)}; }

/* Sorted pointer index over n items of `stride` bytes starting at base. */
static const void **make_index(const reader *r, const void *base, size_t n, size_t stride,
                               int (*cmp)(const void *, const void *)) {
    const void **idx = malloc((n ? n : 1) * sizeof *idx);
    if (!idx) {
        gerr(r, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) idx[i] = (const char *)base + i * stride;
    if (n > 1) qsort(idx, n, sizeof *idx, cmp);
    return idx;
}

static int index_kvs(const reader *r, gguf_impl *g) {
    gguf_file *f = &g->pub;
    g->kv_by_key = (const gguf_kv **)make_index(r, f->kv, (size_t)f->n_kv, sizeof(gguf_kv), cmp_kv_ptr);
    if (!g->kv_by_key) return -1;
    for (size_t i = 1; i < f->n_kv; i++) {
        gguf_str k = g->kv_by_key[i]->key;
        if (!cmp_str(g->kv_by_key[i - 1]->key, k))
            return gerr(r, "duplicate metadata key '%.*s'", plen(k), k.ptr);
    }
    return 0;
}

static int index_tensors(const reader *r, gguf_impl *g) {
    gguf_file *f = &g->pub;
    size_t n = (size_t)f->n_tensors;
    g->tensor_by_name = (const gguf_tensor **)make_index(r, f->tensors, n, sizeof(gguf_tensor), cmp_tensor_name);
    if (!g->tensor_by_name) return -1;
    for (size_t i = 1; i < n; i++) {
        gguf_str name = g->tensor_by_name[i]->name;
        if (!cmp_str(g->tensor_by_name[i - 1]->name, name))
            return gerr(r, "duplicate tensor name '%.*s'", plen(name), name.ptr);
    }
    return 0;
}

/* Tensors must not share bytes: sort by offset and compare neighbours. */
static int check_overlaps(const reader *r, const gguf_file *f) {
    size_t n = (size_t)f->n_tensors;
    const gguf_tensor **by_off =
        (const gguf_tensor **)make_index(r, f->tensors, n, sizeof(gguf_tensor), cmp_tensor_offset);
    if (!by_off) return -1;
    int rc = 0;
    for (size_t i = 1; i < n && !rc; i++) {
        const gguf_tensor *a = by_off[i - 1], *b = by_off[i];
        if (b->offset < a->offset + a->nbytes) /* both in bounds already: no overflow */
            rc = gerr(r, "tensors '%.*s' [%llu, %llu) and '%.*s' [%llu, %llu) overlap", plen(a->name), a->name.ptr,
                      (unsigned long long)a->offset, (unsigned long long)(a->offset + a->nbytes), plen(b->name),
                      b->name.ptr, (unsigned long long)b->offset, (unsigned long long)(b->offset + b->nbytes));
    }
    free(by_off);
    return rc;
}

/* ---- whole file ---------------------------------------------------------- */

static int parse_header(reader *r, gguf_file *f) {
    if (r->size < 4 || memcmp(r->base, GGUF_MAGIC, 4))
        return gerr(r, "not a GGUF file (bad magic)");
    r->pos = 4;
    if (rd_u32(r, &f->version, "version")) return -1;
    if (f->version == 1)
        return gerr(r, "GGUF version 1 is not supported (it used 32-bit counts; re-convert the model)");
    if (f->version == 0x02000000 || f->version == 0x03000000)
        return gerr(r, "big-endian GGUF files are not supported");
    if (f->version != 2 && f->version != 3)
        return gerr(r, "unsupported GGUF version %u (supported: 2 and 3)", f->version);
    if (rd_u64(r, &f->n_tensors, "tensor count") || rd_u64(r, &f->n_kv, "metadata count")) return -1;
    if (f->n_kv > remaining(r) / MIN_KV_BYTES)
        return gerr(r, "metadata count %llu cannot fit in the %zu bytes left (truncated or corrupt file)",
                    (unsigned long long)f->n_kv, remaining(r));
    if (f->n_tensors > remaining(r) / MIN_TENSOR_BYTES)
        return gerr(r, "tensor count %llu cannot fit in the %zu bytes left (truncated or corrupt file)",
                    (unsigned long long)f->n_tensors, remaining(r));
    return 0;
}

static int parse_kvs(reader *r, gguf_impl *g) {
    gguf_file *f = &g->pub;
    f->kv = calloc(f->n_kv ? (size_t)f->n_kv : 1, sizeof(gguf_kv));
    if (!f->kv) return gerr(r, "out of memory for %llu metadata entries", (unsigned long long)f->n_kv);
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (parse_kv(r, &f->kv[i])) return -1;
    return index_kvs(r, g);
}

static int read_alignment(const reader *r, gguf_file *f) {
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *kv = gguf_find(f, "general.alignment");
    if (!kv) return 0;
    uint64_t a;
    if (gguf_get_u64(f, "general.alignment", &a))
        return gerr(r, "general.alignment must be a non-negative integer (it is a %s)", gguf_type_name(kv->type));
    if (a == 0 || (a & (a - 1)))
        return gerr(r, "general.alignment %llu is not a power of two", (unsigned long long)a);
    /* Below 8, an f32 or fp16 tensor could start at an address its type may
     * not be read from (the kernels load them as floats, in place). */
    if (a < GGUF_MIN_ALIGNMENT)
        return gerr(r, "general.alignment %llu is below %d: tensor data would be misaligned",
                    (unsigned long long)a, GGUF_MIN_ALIGNMENT);
    f->alignment = a;
    return 0;
}

static int parse_tensors(reader *r, gguf_impl *g) {
    gguf_file *f = &g->pub;
    /* Re-check against what is left now that the metadata has been read. */
    if (f->n_tensors > remaining(r) / MIN_TENSOR_BYTES)
        return gerr(r, "tensor count %llu cannot fit in the %zu bytes after the metadata (truncated or corrupt "
                    "file)", (unsigned long long)f->n_tensors, remaining(r));
    f->tensors = calloc(f->n_tensors ? (size_t)f->n_tensors : 1, sizeof(gguf_tensor));
    if (!f->tensors) return gerr(r, "out of memory for %llu tensors", (unsigned long long)f->n_tensors);
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (rd_tensor_info(r, &f->tensors[i], i) || check_tensor_shape(r, &f->tensors[i], f->alignment)) return -1;
    return index_tensors(r, g);
}

static int place_data(reader *r, gguf_file *f) {
    uint64_t pad = (f->alignment - r->pos % f->alignment) % f->alignment, data_off;
    if (!add_u64(r->pos, pad, &data_off)) return gerr(r, "data section offset overflows");
    /* A file without tensors may end before the padding (vocab-only files do). */
    f->data = r->base + (data_off < r->size ? data_off : r->size);
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (bind_tensor_data(r, &f->tensors[i], data_off)) return -1;
    return check_overlaps(r, f);
}

static gguf_impl *parse_file(const void *buf, size_t size, const char *name) {
    reader r = {buf, size, 0, name};
    gguf_impl *g = calloc(1, sizeof *g);
    if (!g) {
        gerr(&r, "out of memory");
        return NULL;
    }
    g->pub.map = (void *)buf;
    g->pub.map_size = size;
    if (parse_header(&r, &g->pub) || parse_kvs(&r, g) || read_alignment(&r, &g->pub) || parse_tensors(&r, g) ||
        place_data(&r, &g->pub)) {
        g->pub.map = NULL; /* the caller owns (or unmaps) the bytes */
        gguf_close(&g->pub);
        return NULL;
    }
    return g;
}

gguf_file *gguf_open_memory(const void *buf, size_t size) {
    if (!buf || !size) {
        cx_error("gguf: <memory>: %s", buf ? "empty buffer" : "no buffer given");
        return NULL;
    }
    gguf_impl *g = parse_file(buf, size, "<memory>");
    return g ? &g->pub : NULL;
}

/* Maps the whole file read-only; on failure sets the error and returns NULL. */
static void *map_file(const char *path, size_t *size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cx_error("gguf: %s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    void *map = NULL;
    if (fstat(fd, &st)) cx_error("gguf: %s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode)) cx_error("gguf: %s: not a regular file", path);
    else if (st.st_size == 0) cx_error("gguf: %s: empty file", path);
    else if ((uint64_t)st.st_size > SIZE_MAX) cx_error("gguf: %s: too large to map", path);
    else {
        *size = (size_t)st.st_size;
        map = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            cx_error("gguf: %s: cannot map %zu bytes: %s", path, *size, strerror(errno));
            map = NULL;
        }
    }
    close(fd); /* the mapping keeps the file alive */
    return map;
}

gguf_file *gguf_open(const char *path) {
    if (!path) {
        cx_error("gguf: no path given");
        return NULL;
    }
    size_t size = 0;
    void *map = map_file(path, &size);
    if (!map) return NULL;
    gguf_impl *g = parse_file(map, size, path);
    if (!g) {
        munmap(map, size);
        return NULL;
    }
    g->mapped = true;
    return &g->pub;
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    gguf_impl *g = (gguf_impl *)f;
    if (f->kv)
        for (uint64_t i = 0; i < f->n_kv; i++)
            if (f->kv[i].type == GGUF_TYPE_ARRAY) free(f->kv[i].v.arr.strs);
    free(f->kv);
    free(f->tensors);
    free(g->kv_by_key);
    free(g->tensor_by_name);
    if (g->mapped && f->map) munmap(f->map, f->map_size);
    free(g);
}

/* ---- lookups ------------------------------------------------------------- */

/* Binary search over a sorted pointer index; `key_of` extracts the name. */
static const void *bsearch_index(const void *const *idx, size_t n, gguf_str key, gguf_str (*key_of)(const void *)) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_str(key_of(idx[mid]), key);
        if (!c) return idx[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static gguf_str kv_key(const void *p) { return ((const gguf_kv *)p)->key; }
static gguf_str tensor_name(const void *p) { return ((const gguf_tensor *)p)->name; }

const gguf_kv *gguf_find(const gguf_file *f, const char *key) {
    if (!f || !key) return NULL;
    const gguf_impl *g = (const gguf_impl *)f;
    return bsearch_index((const void *const *)g->kv_by_key, (size_t)f->n_kv, str_of(key), kv_key);
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    if (!f || !name) return NULL;
    const gguf_impl *g = (const gguf_impl *)f;
    return bsearch_index((const void *const *)g->tensor_by_name, (size_t)f->n_tensors, str_of(name), tensor_name);
}

/* Any integer kv as a u64, when its value is non-negative. */
static int kv_as_u64(const gguf_kv *kv, uint64_t *out) {
    if (!kv) return -1;
    if (is_unsigned_type(kv->type)) *out = kv->v.u64;
    else if (is_signed_type(kv->type) && kv->v.i64 >= 0) *out = (uint64_t)kv->v.i64;
    else return -1;
    return 0;
}

int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out) {
    return kv_as_u64(gguf_find(f, key), out);
}

int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out) {
    uint64_t v;
    if (kv_as_u64(gguf_find(f, key), &v) || v > UINT32_MAX) return -1;
    *out = (uint32_t)v;
    return 0;
}

/* Integers are accepted too: a converter may well write 10000 as an int. */
int gguf_get_f32(const gguf_file *f, const char *key, float *out) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return -1;
    if (is_float_type(kv->type)) *out = (float)kv->v.f64;
    else if (is_unsigned_type(kv->type)) *out = (float)kv->v.u64;
    else if (is_signed_type(kv->type)) *out = (float)kv->v.i64;
    else return -1;
    return 0;
}

int gguf_get_bool(const gguf_file *f, const char *key, bool *out) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv || kv->type != GGUF_TYPE_BOOL) return -1;
    *out = kv->v.b;
    return 0;
}

int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv || kv->type != GGUF_TYPE_STRING) return -1;
    *out = kv->v.str;
    return 0;
}

bool gguf_str_eq(gguf_str a, const char *s) {
    if (!s) return false;
    size_t n = strlen(s);
    return a.len == n && (n == 0 || memcmp(a.ptr, s, n) == 0);
}

/* ---- array elements ------------------------------------------------------ */

/* The raw bytes of element i of a fixed-size numeric array, or NULL. */
static const uint8_t *arr_elem(const gguf_kv *kv, uint64_t i, gguf_type *et) {
    if (!kv || kv->type != GGUF_TYPE_ARRAY || i >= kv->v.arr.n) return NULL;
    *et = kv->v.arr.type;
    size_t sz = value_size(*et);
    if (!sz || *et == GGUF_TYPE_BOOL) return NULL;
    return (const uint8_t *)kv->v.arr.data + (size_t)i * sz;
}

int gguf_arr_get_i64(const gguf_kv *kv, uint64_t i, int64_t *out) {
    gguf_type et;
    const uint8_t *p = arr_elem(kv, i, &et);
    if (!p) return -1;
    gguf_kv tmp;
    decode_scalar(et, p, &tmp);
    if (is_signed_type(et)) *out = tmp.v.i64;
    else if (is_unsigned_type(et) && tmp.v.u64 <= (uint64_t)INT64_MAX) *out = (int64_t)tmp.v.u64;
    else return -1;
    return 0;
}

int gguf_arr_get_f64(const gguf_kv *kv, uint64_t i, double *out) {
    gguf_type et;
    const uint8_t *p = arr_elem(kv, i, &et);
    if (!p) return -1;
    gguf_kv tmp;
    decode_scalar(et, p, &tmp);
    if (is_float_type(et)) *out = tmp.v.f64;
    else if (is_signed_type(et)) *out = (double)tmp.v.i64;
    else *out = (double)tmp.v.u64;
    return 0;
}

const char *gguf_type_name(gguf_type t) {
    static const char *names[] = {"uint8", "int8",  "uint16", "int16",  "uint32", "int32",  "float32",
                                  "bool",  "string", "array", "uint64", "int64",  "float64"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}
