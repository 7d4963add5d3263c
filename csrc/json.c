/* Strict JSON (RFC 8259) reader and writer helpers.
 *
 * The reader is recursive descent, depth-limited by JSON_MAX_DEPTH. Every
 * node, string and child array of a document lives in one arena, so
 * json_free is a walk over a few chunks. Children of an array or object are
 * first collected on a scratch stack shared by the whole parse (their count
 * is unknown until the closing bracket) and then copied into the arena in
 * one piece. Strings are validated as UTF-8 and escapes decoded on the way. */
#include "json.h"

#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_FIRST_CHUNK 4096
#define ARENA_ALIGN (sizeof(max_align_t))

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    max_align_t data[]; /* max_align_t elements keep every allocation aligned */
} arena_chunk;

struct json_doc {
    arena_chunk *chunks; /* newest first */
    json_value root;
};

/* ---- arena --------------------------------------------------------------- */

static size_t round_up(size_t n) { return (n + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN; }

/* NULL on overflow or allocation failure. Zero-size requests get a valid pointer. */
static void *arena_alloc(json_doc *doc, size_t n) {
    if (n > SIZE_MAX / 2) return NULL;
    n = round_up(n ? n : 1);
    arena_chunk *c = doc->chunks;
    if (!c || c->cap - c->used < n) {
        /* Doubling keeps the chunk count logarithmic in the document size. */
        size_t cap = c ? c->cap * 2 : ARENA_FIRST_CHUNK;
        if (cap < n) cap = n;
        arena_chunk *nc = malloc(sizeof *nc + cap);
        if (!nc) return NULL;
        nc->next = c;
        nc->used = 0;
        nc->cap = cap;
        doc->chunks = nc;
        c = nc;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

void json_free(json_doc *doc) {
    if (!doc) return;
    for (arena_chunk *c = doc->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(doc);
}

const json_value *json_root(const json_doc *doc) { return doc ? &doc->root : NULL; }

/* ---- parser state -------------------------------------------------------- */

typedef struct {
    const unsigned char *s;
    size_t n, pos;
    json_doc *doc;
    int depth;
    char *err;
    size_t err_len;
    bool failed;
    /* Scratch stacks for children of the containers being parsed. */
    json_value *vals;
    size_t n_vals, cap_vals;
    json_member *mems;
    size_t n_mems, cap_mems;
} parser;

static int perr_at(parser *p, size_t at, const char *fmt, ...) CX_PRINTF(3, 4);
/* Records the first error only: later ones are consequences of it. */
static int perr_at(parser *p, size_t at, const char *fmt, ...) {
    if (p->failed) return -1;
    p->failed = true;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cx_error("json: %s at byte %zu", msg, at);
    if (p->err && p->err_len) snprintf(p->err, p->err_len, "%s", cx_last_error());
    return -1;
}

static int oom(parser *p) { return perr_at(p, p->pos, "out of memory"); }

/* Grows a scratch stack by one slot; `elem` is the element size. */
static int grow(void **v, size_t *cap, size_t n, size_t elem) {
    if (n < *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    if (nc > SIZE_MAX / elem) return -1;
    void *nv = realloc(*v, nc * elem);
    if (!nv) return -1;
    *v = nv;
    *cap = nc;
    return 0;
}

static void skip_ws(parser *p) {
    while (p->pos < p->n) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static bool at_end(const parser *p) { return p->pos >= p->n; }

static int peek(const parser *p) { return at_end(p) ? -1 : p->s[p->pos]; }

static int parse_value(parser *p, json_value *out);

/* ---- literals and numbers ------------------------------------------------ */

static int parse_literal(parser *p, const char *word, json_value *out, json_type t, bool b) {
    size_t len = strlen(word);
    if (p->n - p->pos < len || memcmp(p->s + p->pos, word, len))
        return perr_at(p, p->pos, "invalid literal (expected '%s')", word);
    p->pos += len;
    out->type = t;
    out->u.b = b;
    return 0;
}

static bool is_digit(int c) { return c >= '0' && c <= '9'; }

static size_t skip_digits(parser *p) {
    size_t start = p->pos;
    while (is_digit(peek(p))) p->pos++;
    return p->pos - start;
}

/* Exact int64 value of an optional '-' and decimal digits; false on overflow. */
static bool digits_to_i64(const unsigned char *s, size_t n, long long *out) {
    bool neg = n && s[0] == '-';
    unsigned long long v = 0, limit = neg ? (unsigned long long)INT64_MAX + 1 : (unsigned long long)INT64_MAX;
    for (size_t i = neg; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (limit - d) / 10) return false;
        v = v * 10 + d;
    }
    /* Negating via unsigned keeps INT64_MIN well defined. */
    *out = neg ? (long long)(0 - v) : (long long)v;
    return true;
}

/* strtod honours LC_NUMERIC, which an embedding application may have set:
 * the '.' of JSON is swapped for the locale's decimal point first. */
static double locale_strtod(const unsigned char *s, size_t n, bool *ok) {
    const char *dp = localeconv()->decimal_point;
    if (!dp || !*dp) dp = ".";
    size_t dpl = strlen(dp);
    char small[128];
    size_t cap = n * dpl + 1;
    char *buf = cap <= sizeof small ? small : malloc(cap);
    *ok = buf != NULL;
    if (!buf) return 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            memcpy(buf + k, dp, dpl);
            k += dpl;
        } else {
            buf[k++] = (char)s[i];
        }
    }
    buf[k] = 0;
    double v = strtod(buf, NULL);
    if (buf != small) free(buf);
    return v;
}

/* number = [ minus ] int [ frac ] [ exp ] ; int = zero / ( digit1-9 *DIGIT ) */
static int parse_number(parser *p, json_value *out) {
    size_t start = p->pos;
    bool integral = true;
    if (peek(p) == '-') p->pos++;
    if (peek(p) == '0') {
        p->pos++;
        if (is_digit(peek(p))) return perr_at(p, start, "leading zero in number");
    } else if (!skip_digits(p)) {
        return perr_at(p, p->pos, "expected a digit");
    }
    if (peek(p) == '.') {
        p->pos++;
        integral = false;
        if (!skip_digits(p)) return perr_at(p, p->pos, "expected a digit after the decimal point");
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        p->pos++;
        integral = false;
        if (peek(p) == '+' || peek(p) == '-') p->pos++;
        if (!skip_digits(p)) return perr_at(p, p->pos, "expected a digit in the exponent");
    }
    bool ok;
    out->type = JSON_NUMBER;
    out->u.num.v = locale_strtod(p->s + start, p->pos - start, &ok);
    if (!ok) return oom(p);
    if (isinf(out->u.num.v)) return perr_at(p, start, "number out of range");
    out->u.num.i = 0;
    out->u.num.is_int = integral && digits_to_i64(p->s + start, p->pos - start, &out->u.num.i);
    return 0;
}

/* ---- strings ------------------------------------------------------------- */

static int hex_val(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads the 4 hex digits of a \u escape whose backslash is at `at`. */
static int read_hex4(parser *p, size_t at, unsigned *out) {
    if (p->n - at < 6) return perr_at(p, at, "truncated \\u escape");
    unsigned v = 0;
    for (size_t i = at + 2; i < at + 6; i++) {
        int h = hex_val(p->s[i]);
        if (h < 0) return perr_at(p, at, "invalid \\u escape");
        v = v * 16 + (unsigned)h;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *dst, unsigned cp) {
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (char)(0xC0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (char)(0xE0 | (cp >> 12));
        dst[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        dst[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    dst[0] = (char)(0xF0 | (cp >> 18));
    dst[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    dst[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    dst[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A \uXXXX escape at p->pos (the backslash), combining surrogate pairs.
 * The 6- or 12-byte escape never decodes to more bytes than it occupies. */
static int decode_u_escape(parser *p, char *dst, size_t *w) {
    size_t at = p->pos;
    unsigned cp, lo;
    if (read_hex4(p, at, &cp)) return -1;
    p->pos += 6;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return perr_at(p, at, "lone low surrogate \\u%04X", cp);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (p->n - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
            return perr_at(p, at, "lone high surrogate \\u%04X", cp);
        if (read_hex4(p, p->pos, &lo)) return -1;
        if (lo < 0xDC00 || lo > 0xDFFF) return perr_at(p, at, "high surrogate \\u%04X not followed by a low one", cp);
        p->pos += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    *w += put_utf8(dst + *w, cp);
    return 0;
}

static int decode_escape(parser *p, char *dst, size_t *w) {
    if (p->n - p->pos < 2) return perr_at(p, p->pos, "truncated escape");
    char c;
    switch (p->s[p->pos + 1]) {
    case '"': c = '"'; break;
    case '\\': c = '\\'; break;
    case '/': c = '/'; break;
    case 'b': c = '\b'; break;
    case 'f': c = '\f'; break;
    case 'n': c = '\n'; break;
    case 'r': c = '\r'; break;
    case 't': c = '\t'; break;
    case 'u': return decode_u_escape(p, dst, w);
    default: return perr_at(p, p->pos, "invalid escape '\\%c'", p->s[p->pos + 1]);
    }
    dst[(*w)++] = c;
    p->pos += 2;
    return 0;
}

/* Bytes that may appear unescaped and are not ASCII-special. */
static bool is_plain(unsigned char c) { return c >= 0x20 && c != '"' && c != '\\'; }

/* Copies a run of plain bytes, checking it is whole, valid UTF-8. */
static int copy_plain_run(parser *p, char *dst, size_t *w) {
    size_t start = p->pos;
    while (p->pos < p->n && is_plain(p->s[p->pos])) p->pos++;
    size_t len = p->pos - start;
    size_t ok = utf8_valid_prefix((const char *)p->s + start, len);
    if (ok != len) return perr_at(p, start + ok, "invalid UTF-8 in string");
    memcpy(dst + *w, p->s + start, len);
    *w += len;
    return 0;
}

/* Offset of the closing quote of the string opening at p->pos, or n. */
static size_t find_string_end(const parser *p) {
    size_t i = p->pos + 1;
    while (i < p->n && p->s[i] != '"') i += p->s[i] == '\\' ? 2 : 1;
    return i < p->n ? i : p->n;
}

static int parse_string(parser *p, char **out, size_t *out_len) {
    size_t open = p->pos, end = find_string_end(p);
    if (end >= p->n) return perr_at(p, open, "unterminated string");
    /* Decoding never lengthens the text, so the raw length bounds the buffer. */
    char *dst = arena_alloc(p->doc, end - open);
    if (!dst) return oom(p);
    size_t w = 0;
    p->pos++;
    while (p->pos < end) {
        unsigned char c = p->s[p->pos];
        if (c == '\\') {
            if (decode_escape(p, dst, &w)) return -1;
        } else if (c < 0x20) {
            return perr_at(p, p->pos, "unescaped control character 0x%02X in string", c);
        } else if (copy_plain_run(p, dst, &w)) {
            return -1;
        }
    }
    dst[w] = 0;
    p->pos = end + 1;
    *out = dst;
    *out_len = w;
    return 0;
}

/* ---- containers ---------------------------------------------------------- */

static int enter(parser *p) {
    if (++p->depth > JSON_MAX_DEPTH) return perr_at(p, p->pos, "nesting deeper than %d", JSON_MAX_DEPTH);
    p->pos++; /* the opening bracket */
    skip_ws(p);
    return 0;
}

/* After an element: ',' continues (and may not precede the closer), the
 * closer ends. Returns 1 to continue, 0 at the end, -1 on error. */
static int next_or_close(parser *p, char closer) {
    skip_ws(p);
    int c = peek(p);
    if (c == closer) {
        p->pos++;
        p->depth--;
        return 0;
    }
    if (c != ',') {
        if (c < 0) return perr_at(p, p->pos, "unexpected end of input (expected ',' or '%c')", closer);
        return perr_at(p, p->pos, "expected ',' or '%c'", closer);
    }
    p->pos++;
    skip_ws(p);
    if (peek(p) == closer) return perr_at(p, p->pos, "trailing comma");
    return 1;
}

static int parse_array(parser *p, json_value *out) {
    if (enter(p)) return -1;
    size_t base = p->n_vals;
    int more = 1;
    if (peek(p) == ']') {
        p->pos++;
        p->depth--;
        more = 0;
    }
    while (more > 0) {
        json_value v;
        if (parse_value(p, &v)) return -1;
        if (grow((void **)&p->vals, &p->cap_vals, p->n_vals, sizeof v)) return oom(p);
        p->vals[p->n_vals++] = v;
        more = next_or_close(p, ']');
    }
    if (more < 0) return -1;
    size_t n = p->n_vals - base;
    out->type = JSON_ARRAY;
    out->u.arr.n = n;
    out->u.arr.items = n ? arena_alloc(p->doc, n * sizeof(json_value)) : NULL;
    if (n && !out->u.arr.items) return oom(p);
    if (n) memcpy(out->u.arr.items, p->vals + base, n * sizeof(json_value));
    p->n_vals = base;
    return 0;
}

static int parse_member(parser *p, json_member *m) {
    if (peek(p) != '"') {
        if (at_end(p)) return perr_at(p, p->pos, "unexpected end of input (expected a key)");
        return perr_at(p, p->pos, "expected a string key");
    }
    if (parse_string(p, &m->key, &m->key_len)) return -1;
    skip_ws(p);
    if (peek(p) != ':') return perr_at(p, p->pos, "expected ':' after key");
    p->pos++;
    return parse_value(p, &m->value);
}

static int parse_object(parser *p, json_value *out) {
    if (enter(p)) return -1;
    size_t base = p->n_mems;
    int more = 1;
    if (peek(p) == '}') {
        p->pos++;
        p->depth--;
        more = 0;
    }
    while (more > 0) {
        json_member m;
        if (parse_member(p, &m)) return -1;
        if (grow((void **)&p->mems, &p->cap_mems, p->n_mems, sizeof m)) return oom(p);
        p->mems[p->n_mems++] = m;
        more = next_or_close(p, '}');
    }
    if (more < 0) return -1;
    size_t n = p->n_mems - base;
    out->type = JSON_OBJECT;
    out->u.obj.n = n;
    out->u.obj.members = n ? arena_alloc(p->doc, n * sizeof(json_member)) : NULL;
    if (n && !out->u.obj.members) return oom(p);
    if (n) memcpy(out->u.obj.members, p->mems + base, n * sizeof(json_member));
    p->n_mems = base;
    return 0;
}

static int parse_value(parser *p, json_value *out) {
    skip_ws(p);
    memset(out, 0, sizeof *out);
    int c = peek(p);
    switch (c) {
    case -1: return perr_at(p, p->pos, "unexpected end of input");
    case '{': return parse_object(p, out);
    case '[': return parse_array(p, out);
    case '"':
        out->type = JSON_STRING;
        return parse_string(p, &out->u.str.s, &out->u.str.len);
    case 't': return parse_literal(p, "true", out, JSON_BOOL, true);
    case 'f': return parse_literal(p, "false", out, JSON_BOOL, false);
    case 'n': return parse_literal(p, "null", out, JSON_NULL, false);
    default:
        if (c == '-' || is_digit(c)) return parse_number(p, out);
        if (c >= 0x20 && c < 0x7F) return perr_at(p, p->pos, "unexpected character '%c'", c);
        return perr_at(p, p->pos, "unexpected byte 0x%02X", c);
    }
}

json_doc *json_parse(const char *text, size_t len, char *err, size_t err_len) {
    if (err && err_len) err[0] = 0;
    parser p = {.s = (const unsigned char *)(text ? text : ""), .n = text ? len : 0, .err = err, .err_len = err_len};
    p.doc = calloc(1, sizeof *p.doc);
    if (!p.doc) {
        oom(&p);
        return NULL;
    }
    int rc = parse_value(&p, &p.doc->root);
    if (!rc) {
        skip_ws(&p);
        if (!at_end(&p)) rc = perr_at(&p, p.pos, "trailing characters after the document");
    }
    free(p.vals);
    free(p.mems);
    if (rc) {
        json_free(p.doc);
        return NULL;
    }
    return p.doc;
}

/* ---- access -------------------------------------------------------------- */

const json_value *json_get(const json_value *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT || !key) return NULL;
    size_t kl = strlen(key);
    /* From the end: with duplicate keys the last one wins. */
    for (size_t i = obj->u.obj.n; i-- > 0;) {
        const json_member *m = &obj->u.obj.members[i];
        if (m->key_len == kl && !memcmp(m->key, key, kl)) return &m->value;
    }
    return NULL;
}

const json_value *json_at(const json_value *arr, size_t i) {
    if (!arr || arr->type != JSON_ARRAY || i >= arr->u.arr.n) return NULL;
    return &arr->u.arr.items[i];
}

size_t json_len(const json_value *v) {
    if (!v) return 0;
    if (v->type == JSON_ARRAY) return v->u.arr.n;
    if (v->type == JSON_OBJECT) return v->u.obj.n;
    return 0;
}

const char *json_type_name(json_type t) {
    switch (t) {
    case JSON_NULL: return "null";
    case JSON_BOOL: return "bool";
    case JSON_NUMBER: return "number";
    case JSON_STRING: return "string";
    case JSON_ARRAY: return "array";
    case JSON_OBJECT: return "object";
    }
    return "unknown";
}

/* ---- writers ------------------------------------------------------------- */

static void write_escape(strbuf *sb, unsigned char c) {
    switch (c) {
    case '"': sb_append(sb, "\\\"", 2); break;
    case '\\': sb_append(sb, "\\\\", 2); break;
    case '\b': sb_append(sb, "\\b", 2); break;
    case '\f': sb_append(sb, "\\f", 2); break;
    case '\n': sb_append(sb, "\\n", 2); break;
    case '\r': sb_append(sb, "\\r", 2); break;
    case '\t': sb_append(sb, "\\t", 2); break;
    default: sb_printf(sb, "\\u%04x", c); break;
    }
}

/* Invalid UTF-8 (e.g. a model's partial byte tokens) becomes U+FFFD, one per
 * bad byte, so what we write is always valid JSON text. */
static void write_plain_run(strbuf *sb, const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        size_t ok = utf8_valid_prefix(s + i, n - i);
        sb_append(sb, s + i, ok);
        i += ok;
        if (i < n) {
            sb_append(sb, "\xEF\xBF\xBD", 3);
            i++;
        }
    }
}

void json_write_string(strbuf *sb, const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    sb_putc(sb, '"');
    size_t i = 0;
    while (s && i < len) {
        size_t j = i;
        while (j < len && is_plain(u[j])) j++;
        write_plain_run(sb, s + i, j - i);
        if (j < len) write_escape(sb, u[j++]);
        i = j;
    }
    sb_putc(sb, '"');
}

/* snprintf uses the locale's decimal point; JSON needs '.'. */
static void fix_decimal_point(char *buf) {
    const char *dp = localeconv()->decimal_point;
    if (!dp || !*dp || !strcmp(dp, ".")) return;
    char *at = strstr(buf, dp);
    if (!at) return;
    size_t dpl = strlen(dp);
    *at = '.';
    memmove(at + 1, at + dpl, strlen(at + dpl) + 1);
}

void json_write_number(strbuf *sb, double v) {
    if (!isfinite(v)) {
        sb_puts(sb, "null");
        return;
    }
    char buf[64];
    if (v == trunc(v) && fabs(v) <= 9007199254740992.0) { /* 2^53: every such integer is exact */
        snprintf(buf, sizeof buf, "%.0f", v);
    } else {
        /* Shortest of 15..17 significant digits that reads back as the same double. */
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, v);
            if (strtod(buf, NULL) == v) break;
        }
        fix_decimal_point(buf);
    }
    sb_puts(sb, buf);
}

void json_write_value(strbuf *sb, const json_value *v) {
    if (!v) {
        sb_puts(sb, "null");
        return;
    }
    switch (v->type) {
    case JSON_NULL: sb_puts(sb, "null"); break;
    case JSON_BOOL: sb_puts(sb, v->u.b ? "true" : "false"); break;
    case JSON_NUMBER:
        /* -0 parses as the integer 0; the double keeps the sign, so print that. */
        if (v->u.num.is_int && !(v->u.num.i == 0 && signbit(v->u.num.v))) sb_printf(sb, "%lld", v->u.num.i);
        else json_write_number(sb, v->u.num.v);
        break;
    case JSON_STRING: json_write_string(sb, v->u.str.s, v->u.str.len); break;
    case JSON_ARRAY:
        sb_putc(sb, '[');
        for (size_t i = 0; i < v->u.arr.n; i++) {
            if (i) sb_putc(sb, ',');
            json_write_value(sb, &v->u.arr.items[i]);
        }
        sb_putc(sb, ']');
        break;
    case JSON_OBJECT:
        sb_putc(sb, '{');
        for (size_t i = 0; i < v->u.obj.n; i++) {
            if (i) sb_putc(sb, ',');
            json_write_string(sb, v->u.obj.members[i].key, v->u.obj.members[i].key_len);
            sb_putc(sb, ':');
            json_write_value(sb, &v->u.obj.members[i].value);
        }
        sb_putc(sb, '}');
        break;
    }
}
