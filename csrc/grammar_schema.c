/* Rules from the tools' JSON Schemas, in each family's call syntax (see
 * grammar_internal.h). JSON syntax for ChatML (<tool_call> tags), Llama 3
 * ("parameters"), Mistral ([TOOL_CALLS] list) and the rest; Python call
 * syntax for LFM2: [name(key="v", n=3, flag=True)].
 *
 * Object members come in schema order: required ones always, optional ones
 * may be left out. Whitespace between JSON tokens is optional and short,
 * so a model cannot spin in it. Numbers have bounded digit counts for the
 * same reason. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "grammar_internal.h"

#define WS_MAX 2          /* whitespace bytes between JSON tokens */
/* Constrained decoding produces exactly one call: a weak model offered more
 * starts another and runs out of tokens inside it. Parsing still reads several. */
#define MAX_CALLS 1
#define SCHEMA_MAX_DEPTH 32

typedef enum { SYN_JSON, SYN_PY } syntax;

typedef struct {
    grules *r;
    syntax syn;
    uint32_t ws, sep, empty;
    uint32_t any[2]; /* the any-value rule per syntax, 0 until needed */
    bool unsupported;
    bool bad;        /* malformed schema: cx_error already set */
} gbuild;

/* ---- node pool ------------------------------------------------------------ */

static bool grow(void **p, uint32_t *cap, uint32_t need, size_t elem) {
    if (need <= *cap) return true;
    uint32_t nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    void *np = realloc(*p, nc * elem);
    if (!np) return false;
    *p = np, *cap = nc;
    return true;
}

/* On allocation failure the rules are marked failed and node 0 (the empty
 * sequence) stands in, so building can go on to its end harmlessly. */
static uint32_t node_add(grules *r, gnode nd) {
    if (r->failed || !grow((void **)&r->nodes, &r->cap_nodes, r->n_nodes + 1, sizeof *r->nodes)) {
        r->failed = true;
        return 0;
    }
    r->nodes[r->n_nodes] = nd;
    return r->n_nodes++;
}

static uint32_t kids_add(grules *r, const uint32_t *kids, uint32_t n) {
    if (n == 0) return r->n_kids;
    if (r->failed || !grow((void **)&r->kids, &r->cap_kids, r->n_kids + n, sizeof *r->kids)) {
        r->failed = true;
        return 0;
    }
    memcpy(r->kids + r->n_kids, kids, n * sizeof *kids);
    r->n_kids += n;
    return r->n_kids - n;
}

static uint32_t lit_n(gbuild *b, const char *s, size_t n) {
    grules *r = b->r;
    if (n == 0) return b->empty;
    if (r->failed || !grow((void **)&r->bytes, &r->cap_bytes, r->n_bytes + (uint32_t)n, 1)) {
        r->failed = true;
        return 0;
    }
    memcpy(r->bytes + r->n_bytes, s, n);
    r->n_bytes += (uint32_t)n;
    return node_add(r, (gnode){GN_LIT, r->n_bytes - (uint32_t)n, (uint32_t)n, 0});
}

static uint32_t lit(gbuild *b, const char *s) { return lit_n(b, s, strlen(s)); }

/* One byte from `chars`, or from lo..hi when chars is NULL. */
static uint32_t cls(gbuild *b, const char *chars, int lo, int hi) {
    grules *r = b->r;
    if (r->failed || !grow((void **)&r->classes, &r->cap_classes, r->n_classes + 1, sizeof *r->classes)) {
        r->failed = true;
        return 0;
    }
    uint32_t *set = r->classes[r->n_classes];
    memset(set, 0, sizeof r->classes[0]);
    for (const char *c = chars; c && *c; c++) set[(uint8_t)*c >> 5] |= 1u << ((uint8_t)*c & 31);
    for (int c = lo; !chars && c <= hi; c++) set[c >> 5] |= 1u << (c & 31);
    return node_add(r, (gnode){GN_CLASS, r->n_classes++, 0, 0});
}

static uint32_t group(gbuild *b, uint8_t kind, const uint32_t *kids, uint32_t n) {
    uint32_t at = kids_add(b->r, kids, n);
    return node_add(b->r, (gnode){kind, at, n, 0});
}

/* seq(b, n, kid...) / alt(b, n, kid...) */
static uint32_t groupv(gbuild *b, uint8_t kind, int n, va_list ap) {
    uint32_t kids[16];
    for (int i = 0; i < n && i < 16; i++) kids[i] = va_arg(ap, unsigned);
    return group(b, kind, kids, (uint32_t)n);
}

static uint32_t seq(gbuild *b, int n, ...) {
    va_list ap;
    va_start(ap, n);
    uint32_t id = groupv(b, GN_SEQ, n, ap);
    va_end(ap);
    return id;
}

static uint32_t alt(gbuild *b, int n, ...) {
    va_list ap;
    va_start(ap, n);
    uint32_t id = groupv(b, GN_ALT, n, ap);
    va_end(ap);
    return id;
}

static uint32_t rep(gbuild *b, uint32_t child, uint32_t min, int32_t max) {
    return node_add(b->r, (gnode){GN_REP, child, min, max});
}

static uint32_t opt(gbuild *b, uint32_t child) { return rep(b, child, 0, 1); }

/* ---- growable kid lists ---------------------------------------------------- */

typedef struct {
    uint32_t *v;
    uint32_t n, cap;
} kidlist;

static void kl_push(gbuild *b, kidlist *k, uint32_t id) {
    if (!grow((void **)&k->v, &k->cap, k->n + 1, sizeof *k->v)) b->r->failed = true;
    else k->v[k->n++] = id;
}

/* ---- choices between literals ------------------------------------------------
 * A choice among many literals (tool names, enum values), each followed by
 * its own rule, is built as a byte trie: shared prefixes become one
 * literal, so the matcher holds one stack per distinct next byte instead
 * of one per alternative. */

typedef struct {
    size_t off, len;
    uint32_t rest;
    const char *s; /* set once all texts are in */
} choice_item;

typedef struct {
    strbuf text; /* the literals back to back */
    choice_item *v;
    size_t n, cap;
} choice;

/* Adds the literal text[start..] (just appended by the caller) followed by `rest`. */
static void choice_add(gbuild *b, choice *c, size_t start, uint32_t rest) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        choice_item *nv = realloc(c->v, cap * sizeof *nv);
        if (!nv) {
            b->r->failed = true;
            return;
        }
        c->v = nv, c->cap = cap;
    }
    c->v[c->n++] = (choice_item){start, c->text.len - start, rest, NULL};
}

static int item_cmp(const void *a, const void *b) {
    const choice_item *x = a, *y = b;
    int r = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    return r ? r : (x->len > y->len) - (x->len < y->len);
}

/* Items e[0..n), sorted, share their first `depth` bytes. */
static uint32_t trie_rule(gbuild *b, const choice_item *e, size_t n, size_t depth) {
    kidlist alts = {0};
    size_t i = 0;
    for (; i < n && e[i].len == depth; i++) kl_push(b, &alts, e[i].rest); /* ends here */
    while (i < n) {
        size_t j = i + 1, lcp = e[i].len;
        for (; j < n && e[j].s[depth] == e[i].s[depth]; j++) {
            size_t k = depth + 1;
            while (k < lcp && k < e[j].len && e[j].s[k] == e[i].s[k]) k++;
            lcp = k;
        }
        uint32_t below = trie_rule(b, e + i, j - i, lcp);
        kl_push(b, &alts, seq(b, 2, lit_n(b, e[i].s + depth, lcp - depth), below));
        i = j;
    }
    uint32_t id = alts.n == 1 ? alts.v[0] : group(b, GN_ALT, alts.v, alts.n);
    free(alts.v);
    return id;
}

static uint32_t choice_rule(gbuild *b, choice *c) {
    uint32_t id = 0;
    if (!c->text.failed && c->n) {
        for (size_t i = 0; i < c->n; i++) c->v[i].s = c->text.data + c->v[i].off;
        qsort(c->v, c->n, sizeof *c->v, item_cmp);
        id = trie_rule(b, c->v, c->n, 0);
    } else if (c->text.failed) {
        b->r->failed = true;
    }
    sb_free(&c->text);
    free(c->v);
    return id;
}

/* ---- values ---------------------------------------------------------------- */

static bool is_word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static int fail_bad(gbuild *b, const char *what, const char *where) {
    b->bad = true;
    return cx_error("tools: %s in %s", what, where);
}

/* Returns node 0 so rule builders can `return unsup(b, ...)`; the flag
 * makes grules_build fail. The reason goes to the last error, for the
 * caller's warning (it is not a failure of the call). */
static uint32_t unsup(gbuild *b, const char *what) {
    if (!b->unsupported) cx_error("tool schema uses %s, which constrained decoding does not support", what);
    b->unsupported = true;
    return 0;
}

/* A literal value written the way the syntax spells it. */
static void write_literal(strbuf *sb, const json_value *v, syntax syn) {
    if (syn == SYN_PY && v->type == JSON_BOOL) sb_puts(sb, v->u.b ? "True" : "False");
    else if (syn == SYN_PY && v->type == JSON_NULL) sb_puts(sb, "None");
    else if (v->type == JSON_ARRAY) {
        sb_putc(sb, '[');
        for (size_t i = 0; i < v->u.arr.n; i++) {
            if (i) sb_puts(sb, ", ");
            write_literal(sb, &v->u.arr.items[i], syn);
        }
        sb_putc(sb, ']');
    } else if (v->type == JSON_OBJECT) {
        sb_putc(sb, '{');
        for (size_t i = 0; i < v->u.obj.n; i++) {
            if (i) sb_puts(sb, ", ");
            json_write_string(sb, v->u.obj.members[i].key, v->u.obj.members[i].key_len);
            sb_puts(sb, ": ");
            write_literal(sb, &v->u.obj.members[i].value, syn);
        }
        sb_putc(sb, '}');
    } else {
        json_write_value(sb, v);
    }
}

static uint32_t literal(gbuild *b, const json_value *v) {
    strbuf sb;
    sb_init(&sb);
    write_literal(&sb, v, b->syn);
    uint32_t id = sb.failed ? (b->r->failed = true, 0) : lit_n(b, sb.data ? sb.data : "", sb.len);
    sb_free(&sb);
    return id;
}

static uint32_t enum_rule(gbuild *b, const json_value *e) {
    if (e->type != JSON_ARRAY || e->u.arr.n == 0)
        return fail_bad(b, "\"enum\" must be a non-empty array", "a schema"), 0;
    choice c = {0};
    for (size_t i = 0; i < e->u.arr.n; i++) {
        size_t start = c.text.len;
        write_literal(&c.text, &e->u.arr.items[i], b->syn);
        choice_add(b, &c, start, b->empty);
    }
    return choice_rule(b, &c);
}

static uint32_t digits(gbuild *b, uint32_t min, int32_t max) { return rep(b, cls(b, NULL, '0', '9'), min, max); }

/* -?(0|[1-9][0-9]{0,15}) */
static uint32_t integer_rule(gbuild *b) {
    uint32_t nonzero = seq(b, 2, cls(b, NULL, '1', '9'), digits(b, 0, 15));
    return seq(b, 2, opt(b, lit(b, "-")), alt(b, 2, lit(b, "0"), nonzero));
}

static uint32_t number_rule(gbuild *b) {
    uint32_t frac = opt(b, seq(b, 2, lit(b, "."), digits(b, 1, 15)));
    /* Two exponent digits keep every accepted number finite as a double. */
    uint32_t exp = opt(b, seq(b, 3, cls(b, "eE", 0, 0), opt(b, cls(b, "+-", 0, 0)), digits(b, 1, 2)));
    return seq(b, 3, integer_rule(b), frac, exp);
}

static uint32_t string_rule(gbuild *b, uint32_t min, int32_t max) {
    return seq(b, 2, lit(b, "\""), node_add(b->r, (gnode){GN_STR, 0, min, max}));
}

static uint32_t value_rule(gbuild *b, const json_value *schema, int depth);

/* open ws (item (sep item){min-1,max-1})? ws close, for arrays and objects. */
static uint32_t list_rule(gbuild *b, const char *open, uint32_t item, uint32_t min, int32_t max, const char *close) {
    uint32_t more_max = max < 0 ? (uint32_t)-1 : (uint32_t)(max > 0 ? max - 1 : 0);
    uint32_t more = rep(b, seq(b, 2, b->sep, item), min > 1 ? min - 1 : 0, (int32_t)more_max);
    uint32_t body = seq(b, 2, item, more);
    if (max == 0) body = b->empty;
    else if (min == 0) body = opt(b, body);
    return seq(b, 5, lit(b, open), b->ws, body, b->ws, lit(b, close));
}

/* Any JSON value (or Python literal), for schemas that leave it open. */
static uint32_t any_rule(gbuild *b) {
    if (b->any[b->syn]) return b->any[b->syn];
    uint32_t self = node_add(b->r, (gnode){GN_ALT, 0, 0, 0}); /* children set below: it refers to itself */
    b->any[b->syn] = self;
    uint32_t str = string_rule(b, 0, -1);
    uint32_t pair = seq(b, 5, string_rule(b, 0, -1), b->ws, lit(b, ":"), b->ws, self);
    uint32_t kids[7] = {str, number_rule(b), lit(b, b->syn == SYN_PY ? "True" : "true"),
                        lit(b, b->syn == SYN_PY ? "False" : "false"), lit(b, b->syn == SYN_PY ? "None" : "null"),
                        list_rule(b, "[", self, 0, -1, "]"), list_rule(b, "{", pair, 0, -1, "}")};
    uint32_t at = kids_add(b->r, kids, 7);
    if (!b->r->failed) b->r->nodes[self].a = at, b->r->nodes[self].n = 7;
    return self;
}

static int32_t int_keyword(gbuild *b, const json_value *schema, const char *key, int32_t dflt) {
    const json_value *v = json_get(schema, key);
    if (!v) return dflt;
    if (v->type != JSON_NUMBER || !v->u.num.is_int || v->u.num.i < 0 || v->u.num.i > 1000000)
        return fail_bad(b, "a count keyword is not a small non-negative integer", key), dflt;
    return (int32_t)v->u.num.i;
}

static uint32_t array_rule(gbuild *b, const json_value *schema, int depth) {
    const json_value *items = json_get(schema, "items");
    uint32_t item = items ? value_rule(b, items, depth + 1) : any_rule(b);
    int32_t min = int_keyword(b, schema, "minItems", 0), max = int_keyword(b, schema, "maxItems", -1);
    if (max >= 0 && max < min) return fail_bad(b, "maxItems < minItems", "an array schema"), 0;
    return list_rule(b, "[", item, (uint32_t)min, max, "]");
}

/* ---- objects and keyword arguments -------------------------------------------
 * Members in schema order; optional ones may be skipped. With `first(i)` =
 * "members from i, none written yet" and `rest(i)` = "members from i after
 * at least one": rest(i) = [sep m_i] rest(i+1) (the brackets only when
 * optional), first(i) = m_i rest(i+1) | first(i+1) (the second choice only
 * when optional). Both are built back to front, sharing every m_i. */

static bool is_required(const json_value *required, const char *key) {
    for (size_t i = 0; required && i < json_len(required); i++) {
        const json_value *r = json_at(required, i);
        if (r->type == JSON_STRING && strcmp(r->u.str.s, key) == 0) return true;
    }
    return false;
}

static uint32_t member_rule(gbuild *b, const json_member *m, bool kwarg, int depth) {
    uint32_t value = value_rule(b, &m->value, depth + 1);
    strbuf key;
    sb_init(&key);
    if (kwarg) {
        for (size_t i = 0; i < m->key_len; i++)
            if (!is_word_char(m->key[i]) || (i == 0 && m->key[0] >= '0' && m->key[0] <= '9'))
                return sb_free(&key), unsup(b, "a parameter name that is not a Python identifier");
        sb_append(&key, m->key, m->key_len);
        sb_putc(&key, '=');
    } else {
        json_write_string(&key, m->key, m->key_len);
    }
    uint32_t k = key.failed ? (b->r->failed = true, 0) : lit_n(b, key.data ? key.data : "", key.len);
    sb_free(&key);
    if (kwarg) return seq(b, 2, k, value);
    return seq(b, 5, k, b->ws, lit(b, ":"), b->ws, value);
}

static int check_members(gbuild *b, const json_value *props, const json_value *required) {
    if (props && props->type != JSON_OBJECT) return fail_bad(b, "\"properties\" must be an object", "a schema");
    if (required && required->type != JSON_ARRAY) return fail_bad(b, "\"required\" must be an array", "a schema");
    for (size_t i = 0; required && i < json_len(required); i++)
        if (json_at(required, i)->type != JSON_STRING) return fail_bad(b, "\"required\" must hold strings", "a schema");
    return 0;
}

/* The members, without the surrounding brackets. */
static uint32_t members_rule(gbuild *b, const json_value *schema, bool kwarg, int depth) {
    const json_value *props = json_get(schema, "properties"), *required = json_get(schema, "required");
    if (check_members(b, props, required)) return 0;
    size_t n = props ? props->u.obj.n : 0;
    uint32_t first = b->empty, rest = b->empty;
    for (size_t i = n; i-- > 0 && !b->bad && !b->unsupported;) {
        const json_member *m = &props->u.obj.members[i];
        uint32_t mem = member_rule(b, m, kwarg, depth);
        bool req = is_required(required, m->key);
        uint32_t with_sep = seq(b, 2, b->sep, mem);
        uint32_t here = seq(b, 2, mem, rest);
        first = req ? here : alt(b, 2, here, first);
        rest = seq(b, 2, req ? with_sep : opt(b, with_sep), rest);
    }
    return first;
}

static uint32_t object_rule(gbuild *b, const json_value *schema, int depth) {
    if (!json_get(schema, "properties")) {
        uint32_t pair = seq(b, 5, string_rule(b, 0, -1), b->ws, lit(b, ":"), b->ws, any_rule(b));
        return list_rule(b, "{", pair, 0, -1, "}");
    }
    return seq(b, 5, lit(b, "{"), b->ws, members_rule(b, schema, false, depth), b->ws, lit(b, "}"));
}

static const char *const UNSUPPORTED[] = {
    "anyOf", "oneOf", "allOf", "$ref", "not", "pattern", "patternProperties", "if", "then", "else",
    "prefixItems", "contains", "dependentRequired", "dependentSchemas", "unevaluatedProperties",
    "unevaluatedItems", "propertyNames", "additionalItems",
};

static uint32_t type_rule(gbuild *b, const char *type, const json_value *schema, int depth) {
    if (!strcmp(type, "string")) {
        int32_t min = int_keyword(b, schema, "minLength", 0), max = int_keyword(b, schema, "maxLength", -1);
        if (max >= 0 && max < min) return fail_bad(b, "maxLength < minLength", "a string schema"), 0;
        /* An unbounded string lets a weak model ramble until max_tokens and
         * never close the call: without maxLength, strings are capped. */
        if (max < 0) max = min > GRAMMAR_DEFAULT_MAX_STRING ? min : GRAMMAR_DEFAULT_MAX_STRING;
        return string_rule(b, (uint32_t)min, max);
    }
    if (!strcmp(type, "integer")) return integer_rule(b);
    if (!strcmp(type, "number")) return number_rule(b);
    if (!strcmp(type, "boolean"))
        return b->syn == SYN_PY ? alt(b, 2, lit(b, "True"), lit(b, "False"))
                                : alt(b, 2, lit(b, "true"), lit(b, "false"));
    if (!strcmp(type, "null")) return lit(b, b->syn == SYN_PY ? "None" : "null");
    if (!strcmp(type, "array")) return array_rule(b, schema, depth);
    if (!strcmp(type, "object")) return object_rule(b, schema, depth);
    return unsup(b, "an unknown type");
}

static uint32_t types_rule(gbuild *b, const json_value *types, const json_value *schema, int depth) {
    if (types->type == JSON_STRING) return type_rule(b, types->u.str.s, schema, depth);
    if (types->type != JSON_ARRAY || types->u.arr.n == 0)
        return fail_bad(b, "\"type\" must be a string or an array of strings", "a schema"), 0;
    kidlist k = {0};
    for (size_t i = 0; i < types->u.arr.n; i++) {
        const json_value *t = &types->u.arr.items[i];
        if (t->type != JSON_STRING) return free(k.v), fail_bad(b, "\"type\" must hold strings", "a schema"), 0;
        kl_push(b, &k, type_rule(b, t->u.str.s, schema, depth));
    }
    uint32_t id = group(b, GN_ALT, k.v, k.n);
    free(k.v);
    return id;
}

static uint32_t value_rule(gbuild *b, const json_value *schema, int depth) {
    if (b->bad || b->unsupported) return 0;
    if (depth > SCHEMA_MAX_DEPTH) return unsup(b, "nesting this deep");
    if (schema->type == JSON_BOOL && schema->u.b) return any_rule(b);
    if (schema->type != JSON_OBJECT) return fail_bad(b, "a schema must be an object", "parameters"), 0;
    for (size_t i = 0; i < sizeof UNSUPPORTED / sizeof UNSUPPORTED[0]; i++)
        if (json_get(schema, UNSUPPORTED[i])) return unsup(b, UNSUPPORTED[i]);
    const json_value *c = json_get(schema, "const"), *e = json_get(schema, "enum"), *t = json_get(schema, "type");
    if (c) return literal(b, c);
    if (e) return enum_rule(b, e);
    if (t) return types_rule(b, t, schema, depth);
    if (json_get(schema, "properties")) return object_rule(b, schema, depth);
    if (json_get(schema, "items")) return array_rule(b, schema, depth);
    return any_rule(b);
}

/* ---- calls ------------------------------------------------------------------- */

typedef struct {
    const char *name;
    size_t name_len;
    const json_value *params; /* NULL: no parameters */
} tool_ref;

/* The arguments of one tool: a JSON object, or Python keyword arguments. */
static uint32_t args_rule(gbuild *b, const tool_ref *t) {
    if (t->params && t->params->type != JSON_OBJECT) return fail_bad(b, "\"parameters\" must be an object", t->name), 0;
    if (t->params && json_get(t->params, "type") && !json_get(t->params, "properties")) {
        const json_value *ty = json_get(t->params, "type"); /* {"type": "object"} alone: no arguments */
        if (ty->type != JSON_STRING || strcmp(ty->u.str.s, "object"))
            return unsup(b, "parameters that are not an object");
    }
    if (t->params) {
        for (size_t i = 0; i < sizeof UNSUPPORTED / sizeof UNSUPPORTED[0]; i++)
            if (json_get(t->params, UNSUPPORTED[i])) return unsup(b, UNSUPPORTED[i]);
    }
    uint32_t members = t->params ? members_rule(b, t->params, b->syn == SYN_PY, 0) : b->empty;
    if (b->syn == SYN_PY) return members;
    return seq(b, 5, lit(b, "{"), b->ws, members, b->ws, lit(b, "}"));
}

/* {"name": "<name>", "<args_key>": {...}} with the name choosing the arguments. */
static uint32_t json_call_rule(gbuild *b, const tool_ref *tools, size_t n, const char *args_key) {
    strbuf sb;
    sb_init(&sb);
    sb_putc(&sb, '"');
    sb_puts(&sb, args_key);
    sb_putc(&sb, '"');
    uint32_t key = sb.failed ? 0 : lit(b, sb.data);
    sb_free(&sb);
    choice c = {0};
    for (size_t i = 0; i < n && !b->bad && !b->unsupported; i++) {
        uint32_t args = args_rule(b, &tools[i]);
        uint32_t kids[8] = {b->ws, lit(b, ","), b->ws, key, b->ws, lit(b, ":"), b->ws, args};
        uint32_t rest = group(b, GN_SEQ, kids, 8);
        size_t start = c.text.len;
        json_write_string(&c.text, tools[i].name, tools[i].name_len);
        choice_add(b, &c, start, rest);
    }
    uint32_t which = choice_rule(b, &c);
    uint32_t head = seq(b, 5, lit(b, "{"), b->ws, lit(b, "\"name\""), b->ws, lit(b, ":"));
    return seq(b, 5, head, b->ws, which, b->ws, lit(b, "}"));
}

/* name(key=value, ...) */
static bool py_name_ok(const tool_ref *t) {
    for (size_t j = 0; j < t->name_len; j++)
        if (!is_word_char(t->name[j]) && t->name[j] != '-' && t->name[j] != '.') return false;
    return true;
}

static uint32_t py_call_rule(gbuild *b, const tool_ref *tools, size_t n) {
    choice c = {0};
    for (size_t i = 0; i < n && !b->bad && !b->unsupported; i++) {
        if (!py_name_ok(&tools[i])) unsup(b, "a function name that is not a Python identifier");
        uint32_t rest = seq(b, 2, args_rule(b, &tools[i]), lit(b, ")"));
        size_t start = c.text.len;
        sb_append(&c.text, tools[i].name, tools[i].name_len);
        sb_putc(&c.text, '(');
        choice_add(b, &c, start, rest);
    }
    return choice_rule(b, &c);
}

/* first (sep first){0,MAX_CALLS-1} */
static uint32_t several(gbuild *b, uint32_t call, uint32_t sep) {
    return seq(b, 2, call, rep(b, seq(b, 2, sep, call), 0, MAX_CALLS - 1));
}

static uint32_t family_rule(gbuild *b, chat_family fam, const tool_ref *tools, size_t n) {
    switch (fam) {
    case CHAT_CHATML: {
        uint32_t call = json_call_rule(b, tools, n, "arguments");
        uint32_t block = seq(b, 3, lit(b, "<tool_call>\n"), call, lit(b, "\n</tool_call>"));
        return several(b, block, lit(b, "\n"));
    }
    case CHAT_LFM2:
        b->syn = SYN_PY;
        return seq(b, 3, lit(b, "<|tool_call_start|>["), several(b, py_call_rule(b, tools, n), b->sep),
                   lit(b, "]<|tool_call_end|>"));
    case CHAT_LLAMA3: return seq(b, 2, b->ws, json_call_rule(b, tools, n, "parameters"));
    case CHAT_MISTRAL:
        return seq(b, 3, lit(b, "[TOOL_CALLS]["), several(b, json_call_rule(b, tools, n, "arguments"), b->sep),
                   lit(b, "]"));
    default: return seq(b, 2, b->ws, json_call_rule(b, tools, n, "arguments"));
    }
}

/* ---- tools ------------------------------------------------------------------- */

static int read_tool(const json_value *tool, size_t i, tool_ref *out) {
    if (tool->type != JSON_OBJECT) return cx_error("tools[%zu] must be an object", i);
    const json_value *fn = json_get(tool, "function");
    if (fn && fn->type != JSON_OBJECT) return cx_error("tools[%zu].function must be an object", i);
    if (!fn) fn = tool;
    const json_value *name = json_get(fn, "name");
    if (!name || name->type != JSON_STRING || name->u.str.len == 0)
        return cx_error("tools[%zu] needs a non-empty function name", i);
    out->name = name->u.str.s;
    out->name_len = name->u.str.len;
    out->params = json_get(fn, "parameters");
    if (out->params && out->params->type == JSON_NULL) out->params = NULL;
    return 0;
}

/* The tools tool_choice allows, into `out` (room for all). Returns the count or -1. */
static int choose_tools(const json_value *tools, const char *choice, tool_ref *out) {
    size_t n = json_len(tools), k = 0;
    bool any = choice && !strcmp(choice, "required");
    for (size_t i = 0; i < n; i++) {
        tool_ref t;
        if (read_tool(json_at(tools, i), i, &t)) return -1;
        if (any || (choice && strlen(choice) == t.name_len && !memcmp(choice, t.name, t.name_len))) out[k++] = t;
    }
    if (k == 0) return cx_error("tool_choice \"%s\" names no listed function", choice ? choice : "(null)");
    return (int)k;
}

static void basics(gbuild *b) {
    b->empty = node_add(b->r, (gnode){GN_SEQ, 0, 0, 0}); /* node 0: matches nothing, always */
    b->ws = rep(b, cls(b, " \t\n", 0, 0), 0, WS_MAX);
    b->sep = seq(b, 3, b->ws, lit(b, ","), b->ws);
}

int grules_build(grules *r, chat_family fam, const json_value *tools, const char *tool_choice, bool *unsupported) {
    memset(r, 0, sizeof *r);
    *unsupported = false;
    if (!tools || tools->type != JSON_ARRAY || json_len(tools) == 0) return cx_error("tools must be a non-empty array");
    if (!tool_choice || !strcmp(tool_choice, "auto") || !strcmp(tool_choice, "none"))
        return cx_error("tool_choice must be \"required\" or a function name to constrain decoding");
    tool_ref *refs = malloc(sizeof *refs * json_len(tools));
    if (!refs) return cx_error("grammar: out of memory");
    int n = choose_tools(tools, tool_choice, refs);
    gbuild b = {.r = r, .syn = SYN_JSON};
    if (n > 0) {
        basics(&b);
        r->root = family_rule(&b, fam, refs, (size_t)n);
    }
    free(refs);
    if (n < 0 || b.bad) return -1;
    if (b.unsupported) return *unsupported = true, -1;
    if (r->failed) return cx_error("grammar: out of memory");
    return 0;
}

void grules_free(grules *r) {
    free(r->nodes);
    free(r->kids);
    free(r->bytes);
    free(r->classes);
    memset(r, 0, sizeof *r);
}
