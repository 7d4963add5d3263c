/* Mistral Nemo: [INST]...[/INST] answer</s>, with [AVAILABLE_TOOLS] before
 * the last user message, [TOOL_CALLS] / [TOOL_RESULTS] carrying 9-character
 * call ids, and the system message folded into the last user turn. The
 * template ignores add_generation_prompt. */
#include "chat_internal.h"

static bool json_equal(const json_value *a, const json_value *b);

static bool key_is(const json_member *m, const char *key) {
    return key && m->key_len == strlen(key) && !memcmp(m->key, key, m->key_len);
}

/* Python's == on the decoded values: numbers by value (True == 1 too). */
static bool scalar_equal(const json_value *a, const json_value *b) {
    double x = a->type == JSON_BOOL ? a->u.b : a->u.num.v, y = b->type == JSON_BOOL ? b->u.b : b->u.num.v;
    return x == y;
}

/* Dict equality: the same keys (each once, as Python keeps them) with equal values. */
static bool object_equal(const json_value *a, const json_value *b, const char *skip) {
    size_t na = 0, nb = 0;
    for (size_t i = 0; i < a->u.obj.n; i++) {
        const json_member *m = &a->u.obj.members[i];
        if (!pyjson_member_first(a, i) || key_is(m, skip)) continue;
        na++;
        bool found = false;
        for (size_t j = 0; j < b->u.obj.n && !found; j++) {
            const json_member *o = &b->u.obj.members[j];
            found = pyjson_member_first(b, j) && o->key_len == m->key_len && !memcmp(o->key, m->key, m->key_len) &&
                    json_equal(pyjson_member_value(a, i), pyjson_member_value(b, j));
        }
        if (!found) return false;
    }
    for (size_t j = 0; j < b->u.obj.n; j++)
        nb += pyjson_member_first(b, j) && !key_is(&b->u.obj.members[j], skip);
    return na == nb;
}

static bool json_equal(const json_value *a, const json_value *b) {
    bool na = a->type == JSON_NUMBER || a->type == JSON_BOOL, nb = b->type == JSON_NUMBER || b->type == JSON_BOOL;
    if (na || nb) return na && nb && scalar_equal(a, b);
    if (a->type != b->type) return false;
    switch (a->type) {
    case JSON_STRING: return a->u.str.len == b->u.str.len && !memcmp(a->u.str.s, b->u.str.s, a->u.str.len);
    case JSON_ARRAY:
        if (a->u.arr.n != b->u.arr.n) return false;
        for (size_t i = 0; i < a->u.arr.n; i++)
            if (!json_equal(&a->u.arr.items[i], &b->u.arr.items[i])) return false;
        return true;
    case JSON_OBJECT: return object_equal(a, b, NULL);
    default: return true;
    }
}

/* `message == user_messages[-1]`: compared as dicts, content as its joined text. */
static bool message_equal(const chat_msg *a, const chat_msg *b) {
    if (a == b) return true;
    return b && a->null_content == b->null_content && a->len == b->len && !memcmp(a->text, b->text, a->len) &&
           object_equal(a->obj, b->obj, "content");
}

static int check_alternation(const chat_ctx *c, size_t first) {
    size_t k = 0;
    for (size_t i = first; i < c->n; i++) {
        const chat_msg *m = &c->msgs[i];
        if (chat_role_is(m, "tool") || m->has_calls) continue;
        if (chat_role_is(m, "user") != (k++ % 2 == 0))
            return cx_error("After the optional system message, conversation roles must alternate "
                            "user/assistant/user/assistant/... (messages[%zu] is %s)", i, m->role);
    }
    return 0;
}

/* [AVAILABLE_TOOLS]: each function's members, strings spliced in unescaped
 * (as the template does), other values as JSON; "return" left out. */
static int put_tools(const chat_ctx *c) {
    chat_puts(c, "[AVAILABLE_TOOLS][");
    size_t nt = c->tools->u.arr.n;
    for (size_t t = 0; t < nt; t++) {
        const json_value *fn = json_get(json_at(c->tools, t), "function");
        if (!fn) return cx_error("tools[%zu] has no function object; the Mistral template needs {type, function}", t);
        chat_puts(c, "{\"type\": \"function\", \"function\": {");
        for (size_t i = 0, k = 0; i < fn->u.obj.n; i++) {
            const json_member *m = &fn->u.obj.members[i];
            const json_value *v = pyjson_member_value(fn, i);
            if (!pyjson_member_first(fn, i) || key_is(m, "return")) continue;
            if (k++) chat_puts(c, ", ");
            chat_puts(c, "\""), chat_put(c, m->key, m->key_len), chat_puts(c, "\": ");
            if (v->type == JSON_STRING) chat_puts(c, "\""), chat_put(c, v->u.str.s, v->u.str.len), chat_puts(c, "\"");
            else pyjson_write(c->out, v, -1);
        }
        chat_puts(c, t + 1 < nt ? "}}, " : "}}]");
    }
    chat_puts(c, "[/AVAILABLE_TOOLS]");
    return 0;
}

/* A call id, which the template requires to be 9 characters long. Longer ids
 * (OpenAI's "call_...") keep their last 9 characters, the same for a call and
 * its result; shorter or missing ones are refused as the template does. */
static int put_id(const chat_ctx *c, const char *id, size_t len, const char *what, size_t i) {
    size_t chars = 0, from = len;
    while (from > 0 && chars < 9) {
        from--;
        if (((unsigned char)id[from] & 0xc0) != 0x80) chars++;
    }
    if (!id || chars < 9)
        return cx_error("Tool call IDs should be alphanumeric strings with length 9! (messages[%zu].%s)", i, what);
    chat_put(c, id + from, len - from);
    return 0;
}

/* tool_call.function|tojson without its closing brace, then the id. */
static int put_calls(const chat_ctx *c, const chat_msg *m, size_t i) {
    chat_puts(c, "[TOOL_CALLS][");
    for (size_t j = 0; j < m->n_calls; j++) {
        const chat_call *k = &m->calls[j];
        chat_puts(c, "{");
        for (size_t f = 0, n = 0; f < k->fn->u.obj.n; f++) {
            const json_member *mem = &k->fn->u.obj.members[f];
            if (!pyjson_member_first(k->fn, f)) continue;
            bool args = key_is(mem, "arguments");
            if (n++) chat_puts(c, ", ");
            pyjson_write_string(c->out, mem->key, mem->key_len);
            chat_puts(c, ": ");
            pyjson_write(c->out, args ? k->args : pyjson_member_value(k->fn, f), -1);
        }
        chat_puts(c, ", \"id\": \"");
        if (put_id(c, k->id, k->id_len, "tool_calls[].id", i)) return -1;
        chat_puts(c, "\"}");
        chat_puts(c, j + 1 < m->n_calls ? ", " : "]");
        if (j + 1 == m->n_calls) chat_puts(c, c->eos);
    }
    return 0;
}

static int put_result(const chat_ctx *c, const chat_msg *m, size_t i) {
    chat_puts(c, "[TOOL_RESULTS]{\"content\": ");
    chat_put(c, m->text, m->len);
    chat_puts(c, ", \"call_id\": \"");
    if (put_id(c, m->tool_call_id, m->tool_call_id_len, "tool_call_id", i)) return -1;
    chat_puts(c, "\"}[/TOOL_RESULTS]");
    return 0;
}

static int put_user(const chat_ctx *c, size_t i, const chat_msg *sys, const chat_msg *last_user) {
    const chat_msg *m = &c->msgs[i];
    if (c->tools && message_equal(m, last_user) && put_tools(c)) return -1;
    chat_puts(c, "[INST]");
    if (i + 1 == c->n && sys) chat_put(c, sys->text, sys->len), chat_puts(c, "\n\n");
    chat_put(c, m->text, m->len);
    chat_puts(c, "[/INST]");
    return 0;
}

static int put_message(const chat_ctx *c, size_t i, const chat_msg *sys, const chat_msg *last_user) {
    const chat_msg *m = &c->msgs[i];
    if (chat_role_is(m, "user")) return put_user(c, i, sys, last_user);
    if (m->has_calls) return put_calls(c, m, i);
    if (chat_role_is(m, "assistant")) {
        chat_put(c, m->text, m->len);
        chat_puts(c, c->eos);
        return 0;
    }
    if (chat_role_is(m, "tool")) return put_result(c, m, i);
    return cx_error("Only user and assistant roles are supported, with the exception of an initial optional "
                    "system message! (messages[%zu] is %s)", i, m->role);
}

int chat_render_mistral(const chat_ctx *c) {
    const chat_msg *sys = chat_role_is(&c->msgs[0], "system") ? &c->msgs[0] : NULL, *last_user = NULL;
    size_t first = sys ? 1 : 0;
    for (size_t i = first; i < c->n; i++)
        if (chat_role_is(&c->msgs[i], "user")) last_user = &c->msgs[i];
    if (check_alternation(c, first)) return -1;
    chat_puts(c, c->bos);
    for (size_t i = first; i < c->n; i++)
        if (put_message(c, i, sys, last_user)) return -1;
    return 0;
}
