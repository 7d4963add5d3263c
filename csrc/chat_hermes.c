/* Hermes 2 Pro / Hermes 3 "tool_use" template: ChatML whose system turn
 * lists every tool as a JSON object with a Python-style signature in its
 * description, built by the template's json_to_python_type macro. The macro
 * has quirks (an array is always "list[Union[]]": it recurses on the items()
 * view of the schema, which has no "type"), reproduced here as they are. */
#include "chat_internal.h"

static const char *HERMES_HEAD =
    "<|im_start|>system\nYou are a function calling AI model. You are provided with function signatures within "
    "<tools></tools> XML tags. You may call one or more functions to assist with the user query. Don't make "
    "assumptions about what values to plug into functions. Here are the available tools: <tools> ";
static const char *HERMES_TAIL =
    " </tools>Use the following pydantic model json schema for each tool call you will make: {\"properties\": "
    "{\"name\": {\"title\": \"Name\", \"type\": \"string\"}, \"arguments\": {\"title\": \"Arguments\", \"type\": "
    "\"object\"}}, \"required\": [\"name\", \"arguments\"], \"title\": \"FunctionCall\", \"type\": \"object\"}}\n"
    "For each function call return a json object with function name and arguments within <tool_call></tool_call> "
    "XML tags as follows:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-dict>}\n"
    "</tool_call><|im_end|>\n";

static bool str_eq(const json_value *v, const char *s) {
    return v && v->type == JSON_STRING && v->u.str.len == strlen(s) && !memcmp(v->u.str.s, s, v->u.str.len);
}

static void py_type(strbuf *o, const json_value *spec);
static void py_type_of(strbuf *o, const json_value *t, const json_value *spec);

/* The element list of an iterable "type": a Union of each element's type. */
static void py_union(strbuf *o, const json_value *t) {
    sb_puts(o, "Union[");
    size_t n = t && (t->type == JSON_ARRAY || t->type == JSON_OBJECT) ? json_len(t) : 0;
    for (size_t i = 0, k = 0; i < n; i++) {
        json_value key = {.type = JSON_STRING};
        const json_value *e = json_at(t, i);
        if (t->type == JSON_OBJECT) { /* iterating a dict yields its keys */
            if (!pyjson_member_first(t, i)) continue;
            key.u.str.s = t->u.obj.members[i].key, key.u.str.len = t->u.obj.members[i].key_len;
            e = &key;
        }
        if (k++) sb_putc(o, ',');
        py_type_of(o, e, NULL);
    }
    sb_puts(o, "]");
}

/* json_to_python_type for a "type" value t (NULL: undefined) of schema spec. */
static void py_type_of(strbuf *o, const json_value *t, const json_value *spec) {
    static const char *map[][2] = {{"string", "str"}, {"number", "float"}, {"integer", "int"}, {"boolean", "bool"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (str_eq(t, map[i][0])) {
            sb_puts(o, map[i][1]);
            return;
        }
    }
    const json_value *ap = spec ? json_get(spec, "additionalProperties") : NULL;
    if (str_eq(t, "array")) {
        sb_puts(o, "list[Union[]]");
    } else if (str_eq(t, "object") && ap) {
        sb_puts(o, "dict[str, ");
        py_type(o, ap);
        sb_puts(o, "]");
    } else if (str_eq(t, "object")) {
        sb_puts(o, "dict");
    } else if (t && (t->type == JSON_NUMBER || t->type == JSON_BOOL || t->type == JSON_NULL ||
                     (t->type == JSON_STRING && t->u.str.len))) {
        /* Not iterable: "Any". A non-empty unknown type name would recurse
         * forever in Jinja (a string iterates its characters); "Any" too. */
        sb_puts(o, "Any");
    } else {
        py_union(o, t); /* undefined, "", a list or a dict */
    }
}

static void py_type(strbuf *o, const json_value *spec) {
    py_type_of(o, spec && spec->type == JSON_OBJECT ? json_get(spec, "type") : NULL, spec);
}

/* tool.parameters.properties when it is a mapping (else the loops see nothing). */
static const json_value *tool_properties(const json_value *fn) {
    const json_value *params = json_get(fn, "parameters"), *props = json_get(params, "properties");
    return props && props->type == JSON_OBJECT ? props : NULL;
}

static void put_value_text(const chat_ctx *c, const json_value *v) {
    if (v) py_str(c->out, v);
}

/* "f(a: str, b: int) -> str - description\n\n    Args:\n        a(str): ..." */
static void hermes_description(const chat_ctx *c, const json_value *fn, const json_value *props) {
    const json_value *ret = json_get(fn, "return");
    size_t np = props ? props->u.obj.n : 0;
    put_value_text(c, json_get(fn, "name"));
    chat_puts(c, "(");
    for (size_t i = 0, k = 0; i < np; i++) {
        if (!pyjson_member_first(props, i)) continue;
        if (k++) chat_puts(c, ", ");
        chat_put(c, props->u.obj.members[i].key, props->u.obj.members[i].key_len);
        chat_puts(c, ": ");
        py_type(c->out, pyjson_member_value(props, i));
    }
    chat_puts(c, ")");
    if (ret) chat_puts(c, " -> "), py_type(c->out, ret);
    chat_puts(c, " - ");
    put_value_text(c, json_get(fn, "description"));
    chat_puts(c, "\n\n");
    for (size_t i = 0, k = 0; i < np; i++) {
        if (!pyjson_member_first(props, i)) continue;
        const json_value *field = pyjson_member_value(props, i), *desc = json_get(field, "description");
        if (!k++) chat_puts(c, "    Args:\n");
        chat_puts(c, "        ");
        chat_put(c, props->u.obj.members[i].key, props->u.obj.members[i].key_len);
        chat_puts(c, "(");
        py_type(c->out, field);
        chat_puts(c, "): ");
        if (desc && desc->type == JSON_STRING) put_trimmed(c, desc->u.str.s, desc->u.str.len);
        else put_value_text(c, desc);
    }
    const json_value *rdesc = json_get(ret, "description");
    if (rdesc) chat_puts(c, "\n    Returns:\n        "), put_value_text(c, rdesc);
}

static void hermes_tool(const chat_ctx *c, const json_value *tool) {
    const json_value *fn = json_get(tool, "function");
    if (!fn) fn = tool;
    const json_value *props = tool_properties(fn);
    chat_puts(c, "{\"type\": \"function\", \"function\": {\"name\": \"");
    put_value_text(c, json_get(fn, "name"));
    chat_puts(c, "\", \"description\": \"");
    hermes_description(c, fn, props);
    chat_puts(c, "\", \"parameters\": ");
    if (props && props->u.obj.n) pyjson_write(c->out, json_get(fn, "parameters"), -1);
    else chat_puts(c, "{}");
    chat_puts(c, "}");
}

static void hermes_calls(const chat_ctx *c, const chat_msg *m) {
    chat_puts(c, "<|im_start|>assistant");
    for (size_t j = 0; j < m->n_calls; j++) {
        const chat_call *k = &m->calls[j];
        chat_puts(c, "\n<tool_call>\n{\"name\": \"");
        chat_put(c, k->name, k->name_len);
        chat_puts(c, "\", \"arguments\": ");
        if (k->args->type == JSON_STRING) chat_put(c, k->args->u.str.s, k->args->u.str.len);
        else pyjson_write(c->out, k->args, -1);
        chat_puts(c, "}\n</tool_call>");
    }
    chat_puts(c, "<|im_end|>\n");
}

/* Tool results: a "tool" turn opened after a non-tool message (never for a
 * first message), closed without a newline. */
static void hermes_tool_result(const chat_ctx *c, size_t i) {
    bool last = i + 1 == c->n;
    if (i && !chat_role_is(&c->msgs[i - 1], "tool")) chat_puts(c, "<|im_start|>tool\n");
    chat_puts(c, "<tool_response>\n");
    chat_put(c, c->msgs[i].text, c->msgs[i].len);
    chat_puts(c, last ? "\n</tool_response>" : "\n</tool_response>\n");
    if (last || !chat_role_is(&c->msgs[i + 1], "tool")) chat_puts(c, "<|im_end|>");
}

int chat_render_hermes(const chat_ctx *c) {
    chat_puts(c, c->bos);
    chat_puts(c, HERMES_HEAD);
    size_t nt = c->tools ? c->tools->u.arr.n : 0; /* no tools renders as an empty list */
    for (size_t i = 0; i < nt; i++) {
        if (i) chat_puts(c, "\n");
        hermes_tool(c, json_at(c->tools, i));
    }
    chat_puts(c, HERMES_TAIL);
    for (size_t i = 0; i < c->n; i++) {
        const chat_msg *m = &c->msgs[i];
        if (chat_role_is(m, "assistant") && m->has_calls) {
            hermes_calls(c, m);
        } else if (chat_role_is(m, "tool")) {
            hermes_tool_result(c, i);
        } else {
            chat_puts(c, "<|im_start|>");
            chat_puts(c, m->role);
            chat_puts(c, "\n");
            chat_put(c, m->text, m->len);
            chat_puts(c, "<|im_end|>\n");
        }
    }
    if (c->add_generation_prompt) chat_puts(c, "<|im_start|>assistant\n");
    return 0;
}
