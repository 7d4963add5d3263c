/* Text helpers for the chat templates: what Python and Jinja do to strings,
 * reproduced byte for byte, because the real templates run under Python
 * (transformers) and the model was trained on exactly that output. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_internal.h"

/* ---- Python json.dumps (ensure_ascii=False) ---- */

/* The escape json.dumps writes for byte ch, or NULL when it is copied as is
 * (everything from 0x20 up, non-ASCII included, since ensure_ascii=False). */
static const char *py_escape(unsigned char ch, char u[7]) {
    static const char hex[] = "0123456789abcdef";
    switch (ch) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    case '\b': return "\\b";
    case '\f': return "\\f";
    default:
        if (ch >= 0x20) return NULL;
        memcpy(u, "\\u00", 4);
        u[4] = hex[ch >> 4], u[5] = hex[ch & 15], u[6] = 0;
        return u;
    }
}

void pyjson_write_string(strbuf *sb, const char *s, size_t n) {
    sb_putc(sb, '"');
    size_t plain = 0; /* start of the run of bytes not yet copied */
    for (size_t i = 0; i < n; i++) {
        char u[7];
        const char *esc = py_escape((unsigned char)s[i], u);
        if (!esc) continue;
        sb_append(sb, s + plain, i - plain);
        sb_puts(sb, esc);
        plain = i + 1;
    }
    sb_append(sb, s + plain, n - plain);
    sb_putc(sb, '"');
}

/* Shortest decimal digits that read back as v (what repr() picks), as a
 * digit string and the decimal exponent of its first digit. */
static void shortest_digits(double v, char digits[20], int *exp10) {
    char buf[48];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, v);
        if (strtod(buf, NULL) == v) break; /* same locale both ways, so the decimal point agrees */
    }
    size_t nd = 0;
    const char *p = buf;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && nd < 19) digits[nd++] = *p;
    digits[nd] = 0;
    *exp10 = *p == 'e' ? atoi(p + 1) : 0;
}

/* repr(float): fixed notation with at least one decimal for 1e-4 <= |v| < 1e16,
 * else d.ddde+XX with two or more exponent digits. */
static void py_float(strbuf *sb, double v) {
    if (isnan(v) || isinf(v)) {
        sb_puts(sb, isnan(v) ? "NaN" : v < 0 ? "-Infinity" : "Infinity");
        return;
    }
    char d[20];
    int e;
    shortest_digits(fabs(v), d, &e);
    int nd = (int)strlen(d);
    if (signbit(v)) sb_putc(sb, '-');
    if (e < -4 || e >= 16) {
        sb_putc(sb, d[0]);
        if (nd > 1) sb_putc(sb, '.'), sb_append(sb, d + 1, (size_t)nd - 1);
        sb_printf(sb, "e%c%02d", e < 0 ? '-' : '+', abs(e));
    } else if (e < 0) {
        sb_puts(sb, "0.");
        for (int i = 0; i < -e - 1; i++) sb_putc(sb, '0');
        sb_append(sb, d, (size_t)nd);
    } else if (e + 1 < nd) {
        sb_append(sb, d, (size_t)e + 1);
        sb_putc(sb, '.');
        sb_append(sb, d + e + 1, (size_t)(nd - e - 1));
    } else {
        sb_append(sb, d, (size_t)nd);
        for (int i = nd; i < e + 1; i++) sb_putc(sb, '0');
        sb_puts(sb, ".0");
    }
}

static void py_number(strbuf *sb, const json_value *v) {
    if (v->u.num.is_int) sb_printf(sb, "%lld", v->u.num.i);
    else py_float(sb, v->u.num.v);
}

bool pyjson_member_first(const json_value *obj, size_t i) {
    /* Quadratic, so only for objects of a sane size; a huge object keeps all its members. */
    if (obj->u.obj.n > 512) return true;
    const json_member *m = obj->u.obj.members;
    for (size_t j = 0; j < i; j++)
        if (m[j].key_len == m[i].key_len && !memcmp(m[j].key, m[i].key, m[i].key_len)) return false;
    return true;
}

const json_value *pyjson_member_value(const json_value *obj, size_t i) {
    const json_member *m = obj->u.obj.members;
    if (obj->u.obj.n > 512) return &m[i].value;
    for (size_t j = obj->u.obj.n; j-- > i;)
        if (m[j].key_len == m[i].key_len && !memcmp(m[j].key, m[i].key, m[i].key_len)) return &m[j].value;
    return &m[i].value;
}

static void newline_indent(strbuf *sb, int indent, int level) {
    sb_putc(sb, '\n');
    for (int i = 0; i < indent * level; i++) sb_putc(sb, ' ');
}

static void pyjson_rec(strbuf *sb, const json_value *v, int indent, int level);

static void pyjson_array(strbuf *sb, const json_value *v, int indent, int level) {
    if (!v->u.arr.n) {
        sb_puts(sb, "[]");
        return;
    }
    sb_putc(sb, '[');
    for (size_t i = 0; i < v->u.arr.n; i++) {
        if (i) sb_puts(sb, indent >= 0 ? "," : ", ");
        if (indent >= 0) newline_indent(sb, indent, level + 1);
        pyjson_rec(sb, &v->u.arr.items[i], indent, level + 1);
    }
    if (indent >= 0) newline_indent(sb, indent, level);
    sb_putc(sb, ']');
}

static void pyjson_object(strbuf *sb, const json_value *v, int indent, int level) {
    if (!v->u.obj.n) {
        sb_puts(sb, "{}");
        return;
    }
    sb_putc(sb, '{');
    bool first = true;
    for (size_t i = 0; i < v->u.obj.n; i++) {
        if (!pyjson_member_first(v, i)) continue;
        if (!first) sb_puts(sb, indent >= 0 ? "," : ", ");
        first = false;
        if (indent >= 0) newline_indent(sb, indent, level + 1);
        pyjson_write_string(sb, v->u.obj.members[i].key, v->u.obj.members[i].key_len);
        sb_puts(sb, ": ");
        pyjson_rec(sb, pyjson_member_value(v, i), indent, level + 1);
    }
    if (indent >= 0) newline_indent(sb, indent, level);
    sb_putc(sb, '}');
}

static void pyjson_rec(strbuf *sb, const json_value *v, int indent, int level) {
    switch (v->type) {
    case JSON_NULL: sb_puts(sb, "null"); break;
    case JSON_BOOL: sb_puts(sb, v->u.b ? "true" : "false"); break;
    case JSON_NUMBER: py_number(sb, v); break;
    case JSON_STRING: pyjson_write_string(sb, v->u.str.s, v->u.str.len); break;
    case JSON_ARRAY: pyjson_array(sb, v, indent, level); break;
    case JSON_OBJECT: pyjson_object(sb, v, indent, level); break;
    }
}

void pyjson_write(strbuf *sb, const json_value *v, int indent) { pyjson_rec(sb, v, indent, 0); }

void py_str(strbuf *sb, const json_value *v) {
    switch (v->type) {
    case JSON_NULL: sb_puts(sb, "None"); break;
    case JSON_BOOL: sb_puts(sb, v->u.b ? "True" : "False"); break;
    case JSON_NUMBER: py_number(sb, v); break;
    case JSON_STRING: sb_append(sb, v->u.str.s, v->u.str.len); break;
    default: pyjson_write(sb, v, -1); break; /* Python would print its repr(); close enough for nonsense input */
    }
}

/* ---- Python str methods ---- */

static bool py_space(unsigned cp) {
    if ((cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0) return true;
    if (cp < 0x1680) return false;
    return cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
           cp == 0x205f || cp == 0x3000;
}

/* Decodes the (valid: the JSON reader checked it) UTF-8 character at s[i], sets its length. */
static unsigned utf8_at(const char *s, size_t n, size_t i, size_t *len) {
    const unsigned char *u = (const unsigned char *)s;
    unsigned c = u[i];
    size_t l = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    if (i + l > n) l = 1;
    unsigned cp = l == 1 ? c : c & (0x7f >> l);
    for (size_t k = 1; k < l; k++) cp = cp << 6 | (u[i + k] & 0x3f);
    *len = l;
    return cp;
}

void py_strip(const char *s, size_t n, size_t *b, size_t *e) {
    size_t i = 0, len;
    while (i < n && py_space(utf8_at(s, n, i, &len))) i += len;
    size_t j = n;
    while (j > i) {
        size_t k = j - 1;
        while (k > i && ((unsigned char)s[k] & 0xc0) == 0x80 && j - k < 4) k--; /* back to the lead byte */
        if (!py_space(utf8_at(s, n, k, &len)) || k + len != j) break;
        j = k;
    }
    *b = i, *e = j;
}

void strip_char(const char *s, size_t n, char ch, bool left, bool right, size_t *b, size_t *e) {
    size_t i = 0, j = n;
    while (left && i < j && s[i] == ch) i++;
    while (right && j > i && s[j - 1] == ch) j--;
    *b = i, *e = j;
}

const char *text_find(const char *s, size_t n, const char *needle) {
    size_t m = strlen(needle);
    for (size_t i = 0; m <= n && i <= n - m; i++)
        if (s[i] == needle[0] && !memcmp(s + i, needle, m)) return s + i;
    return NULL;
}

const char *text_rfind(const char *s, size_t n, const char *needle) {
    size_t m = strlen(needle);
    for (size_t i = n >= m ? n - m + 1 : 0; i-- > 0;)
        if (s[i] == needle[0] && !memcmp(s + i, needle, m)) return s + i;
    return NULL;
}

bool text_starts(const char *s, size_t n, const char *prefix) {
    size_t m = strlen(prefix);
    return m <= n && !memcmp(s, prefix, m);
}

bool text_ends(const char *s, size_t n, const char *suffix) {
    size_t m = strlen(suffix);
    return m <= n && !memcmp(s + n - m, suffix, m);
}

void put_trimmed(const chat_ctx *c, const char *s, size_t n) {
    size_t b, e;
    py_strip(s, n, &b, &e);
    chat_put(c, s + b, e - b);
}
