/* A small strict JSON reader (RFC 8259: UTF-8 checked, depth-limited,
 * duplicate keys keep the last) and writer helpers on top of strbuf. */
#ifndef CACTUS_JSON_H
#define CACTUS_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define JSON_MAX_DEPTH 64

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value json_value;
typedef struct json_member json_member;

struct json_value {
    json_type type;
    union {
        bool b;
        struct {
            double v;
            bool is_int;  /* written without fraction/exponent and fits int64 */
            long long i;  /* valid when is_int */
        } num;
        struct {
            char *s;      /* decoded UTF-8, NUL-terminated (may contain \0 from \u0000) */
            size_t len;
        } str;
        struct {
            json_value *items;
            size_t n;
        } arr;
        struct {
            json_member *members;
            size_t n;
        } obj;
    } u;
};

struct json_member {
    char *key;
    size_t key_len;
    json_value value;
};

typedef struct json_doc json_doc;

/* Parses `len` bytes. Returns NULL on error and writes a message with the
 * byte offset into err (if err != NULL). */
json_doc *json_parse(const char *text, size_t len, char *err, size_t err_len);
const json_value *json_root(const json_doc *doc);
void json_free(json_doc *doc);

/* Object member lookup by key (NULL when absent or `obj` is not an object). */
const json_value *json_get(const json_value *obj, const char *key);
/* Array element (NULL when out of range or not an array). */
const json_value *json_at(const json_value *arr, size_t i);
size_t json_len(const json_value *arr_or_obj);
const char *json_type_name(json_type t);

/* Writers. */
void json_write_string(strbuf *sb, const char *s, size_t len); /* quoted + escaped */
void json_write_number(strbuf *sb, double v);                    /* NaN/Inf -> null; integers without fraction */
void json_write_value(strbuf *sb, const json_value *v);          /* compact re-serialization */

#endif
