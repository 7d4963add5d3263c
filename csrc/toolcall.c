/* Tool-call parsing (see toolcall.h).
 *
 * Each family marks its calls differently; every finder below locates call
 * blocks in the answer, turns each into (name, arguments) pairs and records
 * the block's byte span. A block is all-or-nothing: if any call inside it
 * does not parse, the whole block stays in the response as plain text.
 * Pythonic calls (LFM2, Llama's built-in tools) are first rewritten as JSON
 * text, so every call reaches the same typed writer. */
#include "toolcall.h"

#include <stdlib.h>
#include <string.h>

#define TC_MAX_SPANS 64
#define PY_MAX_DEPTH 32

typedef struct {
    size_t start, end;
} span;

typedef struct {
    const char *text;
    size_t len;
    const json_value *tools;
    strbuf calls;        /* the array's elements written so far, comma-separated */
    int n_calls;
    int block_calls;     /* calls written for the block being parsed */
    span spans[TC_MAX_SPANS];
    int n_spans;
} tc_ctx;

/* ---- small text helpers -------------------------------------------------- */

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static size_t skip_ws(const char *s, size_t n, size_t i) {
    while (i < n && is_ws(s[i])) i++;
    return i;
}

static size_t trim_end(const char *s, size_t start, size_t end) {
    while (end > start && is_ws(s[end - 1])) end--;
    return end;
}

/* First occurrence of `pat` in s[from..n); n when absent. */
static size_t find(const char *s, size_t n, size_t from, const char *pat) {
    size_t m = strlen(pat);
    for (size_t i = from; i + m <= n; i++)
        if (s[i] == pat[0] && memcmp(s + i, pat, m) == 0) return i;
    return n;
}

static bool starts_with(const char *s, size_t n, size_t at, const char *pat) {
    size_t m = strlen(pat);
    return at + m <= n && memcmp(s + at, pat, m) == 0;
}

/* Length of the balanced JSON object/array starting at s[0] ('{' or '['),
 * strings and escapes respected; 0 when it never closes. The span is then
 * validated by json_parse, so this only has to find the end. */
static size_t json_extent(const char *s, size_t n) {
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth == 0) return i + 1;
        }
    }
    return 0;
}

/* ---- schema lookup and typed arguments ----------------------------------- */

static const json_value *tool_function(const json_value *tool) {
    const json_value *fn = json_get(tool, "function");
    return fn && fn->type == JSON_OBJECT ? fn : tool;
}

/* The parameters schema of the tool called `name`; NULL when unknown. */
static const json_value *tool_params(const json_value *tools, const char *name, size_t len) {
    for (size_t i = 0; tools && i < json_len(tools); i++) {
        const json_value *fn = tool_function(json_at(tools, i));
        const json_value *nm = json_get(fn, "name");
        if (nm && nm->type == JSON_STRING && nm->u.str.len == len && memcmp(nm->u.str.s, name, len) == 0) {
            const json_value *p = json_get(fn, "parameters");
            return p ? p : fn; /* a known tool without parameters: still "known" */
        }
    }
    return NULL;
}

static bool tool_known(const json_value *tools, const char *name, size_t len) {
    return tool_params(tools, name, len) != NULL;
}

/* Does the schema's "type" (a string or an array of strings) name `t`? */
static bool schema_has_type(const json_value *schema, const char *t) {
    const json_value *ty = json_get(schema, "type");
    if (ty && ty->type == JSON_STRING) return strcmp(ty->u.str.s, t) == 0;
    for (size_t i = 0; ty && i < json_len(ty); i++) {
        const json_value *e = json_at(ty, i);
        if (e->type == JSON_STRING && strcmp(e->u.str.s, t) == 0) return true;
    }
    return false;
}

static void write_typed(strbuf *out, const json_value *v, const json_value *schema, int depth);

/* A string the schema says is something else: converted when the whole
 * string is exactly a value of that type ("3" -> 3, "True" -> true). */
static bool write_converted_string(strbuf *out, const json_value *v, const json_value *schema, int depth) {
    const char *s = v->u.str.s;
    size_t n = v->u.str.len;
    if (schema_has_type(schema, "string") || n == 0 || is_ws(s[0]) || is_ws(s[n - 1])) return false;
    bool want_bool = schema_has_type(schema, "boolean");
    if (want_bool && (!strcmp(s, "true") || !strcmp(s, "True"))) return sb_puts(out, "true"), true;
    if (want_bool && (!strcmp(s, "false") || !strcmp(s, "False"))) return sb_puts(out, "false"), true;
    bool want_null = schema_has_type(schema, "null");
    if (want_null && (!strcmp(s, "null") || !strcmp(s, "None"))) return sb_puts(out, "null"), true;
    json_doc *d = json_parse(s, n, NULL, 0);
    const json_value *r = json_root(d);
    bool ok = false;
    if (r && r->type == JSON_NUMBER)
        ok = schema_has_type(schema, "number") || (schema_has_type(schema, "integer") && r->u.num.is_int);
    else if (r && (r->type == JSON_OBJECT || r->type == JSON_ARRAY))
        ok = schema_has_type(schema, r->type == JSON_OBJECT ? "object" : "array");
    if (ok) write_typed(out, r, schema, depth + 1);
    json_free(d);
    return ok;
}

static void write_typed_object(strbuf *out, const json_value *v, const json_value *schema, int depth) {
    const json_value *props = json_get(schema, "properties");
    sb_putc(out, '{');
    for (size_t i = 0; i < v->u.obj.n; i++) {
        const json_member *m = &v->u.obj.members[i];
        if (i) sb_putc(out, ',');
        json_write_string(out, m->key, m->key_len);
        sb_putc(out, ':');
        write_typed(out, &m->value, json_get(props, m->key), depth + 1);
    }
    sb_putc(out, '}');
}

static void write_typed_array(strbuf *out, const json_value *v, const json_value *schema, int depth) {
    const json_value *items = json_get(schema, "items");
    sb_putc(out, '[');
    for (size_t i = 0; i < v->u.arr.n; i++) {
        if (i) sb_putc(out, ',');
        write_typed(out, &v->u.arr.items[i], items, depth + 1);
    }
    sb_putc(out, ']');
}

/* Re-serialises `v`, converting values to the types `schema` asks for. */
static void write_typed(strbuf *out, const json_value *v, const json_value *schema, int depth) {
    if (!schema || schema->type != JSON_OBJECT || depth > JSON_MAX_DEPTH) {
        json_write_value(out, v);
    } else if (v->type == JSON_STRING) {
        if (!write_converted_string(out, v, schema, depth)) json_write_value(out, v);
    } else if (v->type == JSON_OBJECT) {
        write_typed_object(out, v, schema, depth);
    } else if (v->type == JSON_ARRAY) {
        write_typed_array(out, v, schema, depth);
    } else {
        json_write_value(out, v);
    }
}

/* ---- calls --------------------------------------------------------------- */

/* Appends one call to `out` (a block's pending calls). `args` must be an
 * object, or a string holding one; NULL means no arguments. */
static bool write_call(tc_ctx *c, strbuf *out, const char *name, size_t name_len, const json_value *args) {
    json_doc *inner = NULL;
    bool ok = name_len > 0;
    if (args && args->type == JSON_STRING && args->u.str.len == 0) {
        args = NULL; /* "arguments": "" means none */
    } else if (args && args->type == JSON_STRING) {
        inner = json_parse(args->u.str.s, args->u.str.len, NULL, 0);
        args = json_root(inner);
        ok = ok && args;
    }
    ok = ok && (!args || args->type == JSON_OBJECT);
    if (ok) {
        if (out->len) sb_putc(out, ',');
        sb_puts(out, "{\"name\":");
        json_write_string(out, name, name_len);
        sb_puts(out, ",\"arguments\":");
        if (args) write_typed(out, args, tool_params(c->tools, name, name_len), 0);
        else sb_puts(out, "{}");
        sb_putc(out, '}');
        c->block_calls++;
    }
    json_free(inner);
    return ok;
}

/* A JSON call object: {"name": ..., "arguments"|"parameters": ...}, also
 * nested as {"function": {...}}. `bare` (no markup around it) demands the
 * arguments key and, when tools are given, a listed name, so ordinary JSON
 * answers are not mistaken for calls. */
static bool json_call(tc_ctx *c, strbuf *out, const json_value *obj, bool bare) {
    if (obj->type != JSON_OBJECT) return false;
    const json_value *fn = json_get(obj, "function");
    if (fn && fn->type == JSON_OBJECT && json_get(fn, "name")) obj = fn;
    const json_value *name = json_get(obj, "name");
    const json_value *args = json_get(obj, "arguments");
    if (!args) args = json_get(obj, "parameters");
    if (!name || name->type != JSON_STRING) return false;
    if (bare && (!args || (c->tools && json_len(c->tools) && !tool_known(c->tools, name->u.str.s, name->u.str.len))))
        return false;
    return write_call(c, out, name->u.str.s, name->u.str.len, args);
}

/* One JSON object or an array of them at s[0..n). Returns the bytes used,
 * 0 when it is not (only) calls. */
static size_t json_calls_at(tc_ctx *c, strbuf *out, const char *s, size_t n, bool bare) {
    size_t ext = (n && (s[0] == '{' || s[0] == '[')) ? json_extent(s, n) : 0;
    json_doc *d = ext ? json_parse(s, ext, NULL, 0) : NULL;
    const json_value *r = json_root(d);
    bool ok = r != NULL;
    if (r && r->type == JSON_ARRAY) {
        ok = r->u.arr.n > 0;
        for (size_t i = 0; ok && i < r->u.arr.n; i++) ok = json_call(c, out, &r->u.arr.items[i], bare);
    } else if (r) {
        ok = json_call(c, out, r, bare);
    }
    json_free(d);
    return ok ? ext : 0;
}

/* Every call in s[0..n): JSON objects or arrays separated by whitespace,
 * ';' or ','. True when the whole text is calls (and at least one). */
static bool json_calls_all(tc_ctx *c, strbuf *out, const char *s, size_t n, bool bare) {
    size_t i = skip_ws(s, n, 0);
    if (i == n) return false;
    while (i < n) {
        size_t used = json_calls_at(c, out, s + i, n - i, bare);
        if (!used) return false;
        i += used;
        while (i < n && (is_ws(s[i]) || s[i] == ';' || s[i] == ',')) i++;
    }
    return true;
}

/* ---- pythonic calls: name(key=value, ...) -> JSON ------------------------ */

typedef struct {
    const char *s;
    size_t n, i;
    int depth;
} py_parser;

static void py_ws(py_parser *p) { p->i = skip_ws(p->s, p->n, p->i); }

static bool py_eat(py_parser *p, char ch) {
    py_ws(p);
    if (p->i < p->n && p->s[p->i] == ch) return p->i++, true;
    return false;
}

static bool is_ident_char(char c, bool first) {
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    return alpha || (!first && ((c >= '0' && c <= '9') || c == '-' || c == '.'));
}

static size_t py_ident(py_parser *p) {
    py_ws(p);
    size_t start = p->i;
    while (p->i < p->n && is_ident_char(p->s[p->i], p->i == start)) p->i++;
    return p->i - start;
}

static void put_utf8(strbuf *sb, unsigned cp) {
    char b[4];
    size_t n;
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = 0xFFFD; /* not encodable as UTF-8 */
    if (cp < 0x80) {
        b[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | cp >> 12), b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    } else {
        b[0] = (char)(0xF0 | cp >> 18), b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), b[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    }
    sb_append(sb, b, n);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* \xhh, \uhhhh, \Uhhhhhhhh: a code point (as in Python 3 str literals). */
static bool py_hex_escape(py_parser *p, int digits, strbuf *val) {
    unsigned cp = 0;
    for (int k = 0; k < digits; k++) {
        int h = p->i < p->n ? hexval(p->s[p->i]) : -1;
        if (h < 0) return false;
        cp = cp << 4 | (unsigned)h;
        p->i++;
    }
    put_utf8(val, cp);
    return true;
}

static bool py_escape(py_parser *p, strbuf *val) {
    if (p->i >= p->n) return false;
    char e = p->s[p->i++];
    static const char from[] = "nrtbf0\\'\"/", to[] = "\n\r\t\b\f\0\\'\"/";
    const char *k = memchr(from, e, sizeof from - 1);
    if (k) return sb_putc(val, to[k - from]), true;
    if (e == 'x') return py_hex_escape(p, 2, val);
    if (e == 'u') return py_hex_escape(p, 4, val);
    if (e == 'U') return py_hex_escape(p, 8, val);
    sb_putc(val, '\\'); /* unknown escapes keep the backslash, as Python does */
    sb_putc(val, e);
    return true;
}

/* A '...' or "..." literal, decoded, written as a JSON string. */
static bool py_string(py_parser *p, strbuf *out) {
    char q = p->s[p->i++];
    strbuf val;
    sb_init(&val);
    bool ok = false;
    while (p->i < p->n) {
        char ch = p->s[p->i++];
        if (ch == q) {
            ok = true;
            break;
        }
        if (ch == '\n' || (ch == '\\' && !py_escape(p, &val))) break;
        if (ch != '\\') sb_putc(&val, ch);
    }
    if (ok) json_write_string(out, val.data ? val.data : "", val.len);
    ok = ok && !val.failed;
    sb_free(&val);
    return ok;
}

static size_t digits(py_parser *p) {
    size_t start = p->i;
    while (p->i < p->n && ((p->s[p->i] >= '0' && p->s[p->i] <= '9') || p->s[p->i] == '_')) p->i++;
    return p->i - start;
}

/* Appends the digits of s[a..b) without Python's '_' separators. */
static void put_digits(strbuf *out, const char *s, size_t a, size_t b) {
    for (size_t k = a; k < b; k++)
        if (s[k] != '_') sb_putc(out, s[k]);
}

/* Python int/float literal -> JSON number text (".5" -> "0.5", "5." -> "5"). */
static bool py_number(py_parser *p, strbuf *out) {
    if (p->s[p->i] == '-' || p->s[p->i] == '+') {
        if (p->s[p->i] == '-') sb_putc(out, '-');
        p->i++;
    }
    size_t a = p->i, ni = digits(p), b = p->i, nf = 0, fa = 0;
    if (p->i < p->n && p->s[p->i] == '.') {
        p->i++;
        fa = p->i;
        nf = digits(p);
    }
    if (ni == 0 && nf == 0) return false;
    size_t lead = a;
    while (lead + 1 < b && (p->s[lead] == '0' || p->s[lead] == '_')) lead++; /* JSON has no leading zeros */
    if (ni) put_digits(out, p->s, lead, b);
    else sb_putc(out, '0');
    if (nf) sb_putc(out, '.'), put_digits(out, p->s, fa, fa + nf);
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        sb_putc(out, 'e');
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '-' || p->s[p->i] == '+')) sb_putc(out, p->s[p->i++]);
        size_t ea = p->i;
        if (!digits(p)) return false;
        put_digits(out, p->s, ea, p->i);
    }
    return true;
}

static bool py_value(py_parser *p, strbuf *out);

/* [a, b] or (a, b) -> JSON array; a trailing comma is allowed. */
static bool py_list(py_parser *p, strbuf *out, char close) {
    p->i++;
    sb_putc(out, '[');
    for (int k = 0; !py_eat(p, close); k++) {
        if (k && !py_eat(p, ',')) return false;
        if (k && py_eat(p, close)) break;
        if (k) sb_putc(out, ',');
        if (!py_value(p, out)) return false;
    }
    sb_putc(out, ']');
    return true;
}

/* {k: v} -> JSON object; non-string keys become their JSON text. */
static bool py_dict(py_parser *p, strbuf *out) {
    p->i++;
    sb_putc(out, '{');
    strbuf key;
    sb_init(&key);
    bool ok = true;
    for (int k = 0; ok && !py_eat(p, '}'); k++) {
        if (k && !py_eat(p, ',')) ok = false;
        else if (k && py_eat(p, '}')) break;
        sb_clear(&key);
        ok = ok && py_value(p, &key) && !key.failed && py_eat(p, ':');
        if (!ok) break;
        if (k) sb_putc(out, ',');
        if (key.data[0] == '"') sb_append(out, key.data, key.len);
        else json_write_string(out, key.data, key.len);
        sb_putc(out, ':');
        ok = py_value(p, out);
    }
    sb_free(&key);
    if (ok) sb_putc(out, '}');
    return ok;
}

static bool py_word(py_parser *p, strbuf *out) {
    static const char *words[][2] = {{"True", "true"},   {"False", "false"}, {"None", "null"},
                                     {"true", "true"},   {"false", "false"}, {"null", "null"}};
    for (size_t k = 0; k < sizeof words / sizeof words[0]; k++) {
        size_t m = strlen(words[k][0]);
        if (starts_with(p->s, p->n, p->i, words[k][0]) && (p->i + m == p->n || !is_ident_char(p->s[p->i + m], false))) {
            p->i += m;
            sb_puts(out, words[k][1]);
            return true;
        }
    }
    return false;
}

static bool py_value(py_parser *p, strbuf *out) {
    py_ws(p);
    if (p->i >= p->n || ++p->depth > PY_MAX_DEPTH) return false;
    char ch = p->s[p->i];
    bool ok;
    if (ch == '"' || ch == '\'') ok = py_string(p, out);
    else if (ch == '[') ok = py_list(p, out, ']');
    else if (ch == '(') ok = py_list(p, out, ')');
    else if (ch == '{') ok = py_dict(p, out);
    else if (ch == '-' || ch == '+' || ch == '.' || (ch >= '0' && ch <= '9')) ok = py_number(p, out);
    else ok = py_word(p, out);
    p->depth--;
    return ok;
}

/* key=value, ... ) -> {"key": value, ...} */
static bool py_kwargs(py_parser *p, strbuf *args) {
    sb_putc(args, '{');
    for (int k = 0; !py_eat(p, ')'); k++) {
        if (k && !py_eat(p, ',')) return false;
        if (k && py_eat(p, ')')) break;
        size_t start = (py_ws(p), p->i), klen = py_ident(p);
        if (!klen || !py_eat(p, '=')) return false;
        if (k) sb_putc(args, ',');
        json_write_string(args, p->s + start, klen);
        sb_putc(args, ':');
        if (!py_value(p, args)) return false;
    }
    sb_putc(args, '}');
    return true;
}

/* name(key=value, ...); Llama's built-in `tool.call(...)` names the tool. */
static bool py_call(tc_ctx *c, py_parser *p, strbuf *out) {
    size_t start = (py_ws(p), p->i), nlen = py_ident(p);
    if (!nlen || !py_eat(p, '(')) return false;
    if (nlen > 5 && memcmp(p->s + start + nlen - 5, ".call", 5) == 0) nlen -= 5;
    strbuf args;
    sb_init(&args);
    bool ok = py_kwargs(p, &args) && !args.failed;
    json_doc *d = ok ? json_parse(args.data, args.len, NULL, 0) : NULL;
    ok = d && write_call(c, out, p->s + start, nlen, json_root(d));
    json_free(d);
    sb_free(&args);
    return ok;
}

/* [call, call] or call, call (the brackets are optional); the whole text. */
static bool py_calls_all(tc_ctx *c, strbuf *out, const char *s, size_t n) {
    py_parser p = {s, n, 0, 0};
    bool bracket = py_eat(&p, '[');
    for (int k = 0;; k++) {
        if (k && !py_eat(&p, ',')) break;
        if (!py_call(c, &p, out)) return false;
    }
    if (bracket && !py_eat(&p, ']')) return false;
    py_ws(&p);
    return p.i == p.n;
}

/* ---- recording blocks ---------------------------------------------------- */

/* Moves a block's calls into the result and remembers its span. */
static bool commit(tc_ctx *c, const strbuf *block, size_t start, size_t end) {
    if (c->n_spans == TC_MAX_SPANS) return false; /* beyond this, calls stay as text */
    if (c->calls.len) sb_putc(&c->calls, ',');
    sb_append(&c->calls, block->data, block->len);
    c->n_calls += c->block_calls;
    c->spans[c->n_spans++] = (span){start, end};
    return true;
}

typedef bool (*body_parser)(tc_ctx *c, strbuf *out, const char *s, size_t n);

/* Parses body s[a..b) with `fn`; on success records the span [start, end). */
static bool try_block(tc_ctx *c, body_parser fn, size_t a, size_t b, size_t start, size_t end) {
    strbuf block;
    sb_init(&block);
    c->block_calls = 0;
    bool ok = fn(c, &block, c->text + a, b - a) && !block.failed && commit(c, &block, start, end);
    sb_free(&block);
    return ok;
}

static bool body_json(tc_ctx *c, strbuf *out, const char *s, size_t n) { return json_calls_all(c, out, s, n, false); }

/* LFM2 writes pythonic lists, but also JSON (its own template shows JSON). */
static bool body_lfm2(tc_ctx *c, strbuf *out, const char *s, size_t n) {
    size_t i = skip_ws(s, n, 0);
    if (i < n && (s[i] == '{' || s[i] == '[') && json_calls_all(c, out, s, n, false)) return true;
    sb_clear(out);
    return py_calls_all(c, out, s, n);
}

static bool body_python_tag(tc_ctx *c, strbuf *out, const char *s, size_t n) {
    size_t i = skip_ws(s, n, 0);
    if (i < n && s[i] == '{') return json_calls_all(c, out, s, n, false);
    return py_calls_all(c, out, s, n);
}

/* Where `close` follows the bracketed body at `body` (after whitespace):
 * found structurally, so a closing marker inside a string argument does
 * not cut the call short. n when the body is not bracketed or the marker
 * does not follow it. */
static size_t close_after_body(const tc_ctx *c, size_t body, const char *close) {
    size_t i = skip_ws(c->text, c->len, body);
    if (i == c->len || (c->text[i] != '{' && c->text[i] != '[')) return c->len;
    size_t ext = json_extent(c->text + i, c->len - i);
    size_t j = ext ? skip_ws(c->text, c->len, i + ext) : c->len;
    return starts_with(c->text, c->len, j, close) ? j : c->len;
}

/* Blocks opened by `open` and closed by `close` (or by the end of the text,
 * when the model stopped right after the call). */
static void find_marked(tc_ctx *c, const char *open, const char *close, body_parser fn) {
    size_t n = c->len, pos = 0, ol = strlen(open), cl = close ? strlen(close) : 0;
    while ((pos = find(c->text, n, pos, open)) < n) {
        size_t body = pos + ol;
        size_t q = close ? close_after_body(c, body, close) : n;
        if (q < n && try_block(c, fn, body, q, pos, q + cl)) {
            pos = q + cl;
            continue;
        }
        q = close ? find(c->text, n, body, close) : n;
        size_t end = q < n ? q + cl : n;
        if (try_block(c, fn, body, q, pos, end)) pos = end;
        else pos = body;
    }
}

/* ---- bare JSON (Llama 3, Gemma, ...) ------------------------------------- */

static bool body_bare(tc_ctx *c, strbuf *out, const char *s, size_t n) { return json_calls_all(c, out, s, n, true); }

/* A ```json fence at `at`: the calls inside it (a fence the model did not
 * close ends with the text). Returns the end of the block, or 0. */
static size_t try_fence(tc_ctx *c, size_t at) {
    size_t body = at + 3;
    while (body < c->len && c->text[body] != '\n' && body - at < 16) body++; /* the info string, e.g. json */
    size_t close = find(c->text, c->len, body, "```");
    size_t end = close < c->len ? close + 3 : c->len;
    return try_block(c, body_bare, body, close, at, end) ? end : 0;
}

/* Calls at `at`: JSON objects separated by ';' or newlines, recorded as
 * one span. Returns the end of the last one, or 0. */
static size_t try_bare(tc_ctx *c, size_t at) {
    size_t i = at, last = 0;
    while (i < c->len && c->text[i] == '{') {
        size_t ext = json_extent(c->text + i, c->len - i);
        if (!ext || !try_block(c, body_bare, i, i + ext, at, i + ext)) break;
        if (last) c->spans[c->n_spans - 2] = c->spans[c->n_spans - 1], c->n_spans--; /* the longer span wins */
        last = i + ext;
        i = last;
        while (i < c->len && (is_ws(c->text[i]) || c->text[i] == ';')) i++;
    }
    return last;
}

/* Calls at the start of a line: bare JSON objects or a fenced block. */
static void find_bare(tc_ctx *c) {
    for (size_t line = 0; line < c->len;) {
        size_t i = skip_ws(c->text, c->len, line), end = 0;
        if (i < c->len && c->text[i] == '{') end = try_bare(c, i);
        else if (starts_with(c->text, c->len, i, "```")) end = try_fence(c, i);
        if (end) {
            line = end;
            continue;
        }
        size_t nl = find(c->text, c->len, i, "\n");
        line = nl < c->len ? nl + 1 : c->len;
    }
}

/* ---- the response -------------------------------------------------------- */

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* The text without the spans: whitespace around each removed call goes,
 * and the pieces on either side join with one newline (or one space when
 * they were on the same line). */
static void write_response(tc_ctx *c, strbuf *response) {
    if (c->n_spans == 0) {
        sb_append(response, c->text, c->len);
        sb_puts(response, "");
        return;
    }
    size_t base = response->len, pos = skip_ws(c->text, c->len, 0);
    bool pending_sep = false, sep_newline = false;
    for (int k = 0; k <= c->n_spans; k++) {
        size_t a = pos, b = k < c->n_spans ? c->spans[k].start : c->len;
        if (b < a) b = a;
        size_t e = trim_end(c->text, a, b);
        if (e > a) {
            if (pending_sep && response->len > base) sb_putc(response, sep_newline ? '\n' : ' ');
            sb_append(response, c->text + a, e - a);
            pending_sep = false;
        }
        if (k == c->n_spans) break;
        size_t after = skip_ws(c->text, c->len, c->spans[k].end);
        size_t end = c->spans[k].end;
        sep_newline = memchr(c->text + e, '\n', b - e) || memchr(c->text + end, '\n', after - end);
        pending_sep = true;
        pos = after > c->spans[k].end ? after : c->spans[k].end;
    }
    sb_puts(response, "");
}

int toolcall_parse(chat_family fam, const char *text, size_t len, const json_value *tools, strbuf *response,
                   strbuf *calls) {
    tc_ctx c = {.text = text ? text : "", .len = text ? len : 0, .tools = tools};
    if (tools && tools->type != JSON_ARRAY) c.tools = NULL;
    sb_init(&c.calls);
    if (fam == CHAT_CHATML) {
        find_marked(&c, "<tool_call>", "</tool_call>", body_json);
    } else if (fam == CHAT_LFM2) {
        find_marked(&c, "<|tool_call_start|>", "<|tool_call_end|>", body_lfm2);
    } else if (fam == CHAT_LLAMA3 && find(c.text, c.len, 0, "<|python_tag|>") < c.len) {
        find_marked(&c, "<|python_tag|>", NULL, body_python_tag);
    } else if (fam == CHAT_MISTRAL && find(c.text, c.len, 0, "[TOOL_CALLS]") < c.len) {
        find_marked(&c, "[TOOL_CALLS]", NULL, body_json);
    } else {
        find_bare(&c);
    }
    qsort(c.spans, (size_t)c.n_spans, sizeof c.spans[0], span_cmp);
    write_response(&c, response);
    sb_putc(calls, '[');
    if (c.calls.len) sb_append(calls, c.calls.data, c.calls.len);
    sb_putc(calls, ']');
    bool failed = c.calls.failed || response->failed || calls->failed;
    sb_free(&c.calls);
    return failed ? cx_error("toolcall: out of memory") : c.n_calls;
}

/* ---- streaming ----------------------------------------------------------- */

static const char *start_marker(chat_family fam) {
    switch (fam) {
    case CHAT_CHATML: return "<tool_call>";
    case CHAT_LFM2: return "<|tool_call_start|>";
    case CHAT_LLAMA3: return "<|python_tag|>";
    case CHAT_MISTRAL: return "[TOOL_CALLS]";
    default: return NULL;
    }
}

/* Where the marker starts, or where a partial marker at the end starts. */
static size_t marker_safe(const char *text, size_t len, const char *marker) {
    size_t at = find(text, len, 0, marker), m = strlen(marker);
    if (at < len) return at;
    for (size_t k = m - 1; k > 0; k--)
        if (k <= len && memcmp(text + len - k, marker, k) == 0) return len - k;
    return len;
}

/* Families whose calls may be bare JSON: an answer that starts (after
 * whitespace) with '{' or a code fence is held back whole. */
static bool bare_json_family(chat_family fam) { return fam != CHAT_CHATML && fam != CHAT_LFM2; }

size_t toolcall_stream_safe(chat_family fam, const char *text, size_t len) {
    if (!text) return 0;
    const char *marker = start_marker(fam);
    size_t safe = marker ? marker_safe(text, len, marker) : len;
    if (bare_json_family(fam)) {
        size_t i = skip_ws(text, len, 0), rest = len - i;
        if (i == len || text[i] == '{') return 0;
        if (memcmp(text + i, "```", rest < 3 ? rest : 3) == 0) return 0;
    }
    return safe;
}
