/* Chat templates: family detection, message validation, and the common
 * normalisation every renderer reads (see chat.h, chat_internal.h).
 *
 * Normalisation, so that every family sees the same conversation:
 *  - content given as text parts is their concatenation (templates that take
 *    parts, like Gemma 3, emit them back to back);
 *  - tool-call arguments given as a JSON-object string are parsed, as the
 *    transformers docs ask and vLLM does: templates then emit the object the
 *    way they were trained to (`| tojson`) instead of a quoted string;
 *  - "tool_calls": null is the same as no tool_calls. */
#include <stdlib.h>
#include <string.h>

#include "chat_internal.h"
#include "include/cactus.h"

static const char *g_names[CHAT_N_FAMILIES] = {
    "chatml", "llama3.1", "lfm2",     "gemma",    "phi3",    "mistral",    "qwen2.5",
    "qwen3",  "hermes",   "llama3.2", "llama3.0", "smollm2", "deepseek-r1", "chatml+bos",
};

const char *chat_family_name(chat_family f) { return (unsigned)f < CHAT_N_FAMILIES ? g_names[f] : "unknown"; }

chat_family chat_tool_family(chat_family f) {
    switch (f) {
    case CHAT_QWEN25:
    case CHAT_QWEN3:
    case CHAT_HERMES:
    case CHAT_SMOLLM2:
    case CHAT_CHATML_BOS: return CHAT_CHATML;
    case CHAT_LLAMA30:
    case CHAT_LLAMA32: return CHAT_LLAMA3;
    default: return f;
    }
}

/* ---- detection ---- */

static bool has(const char *t, const char *marker) { return strstr(t, marker) != NULL; }

/* ChatML dialects, told apart by text only their template contains. */
static chat_family detect_chatml(const char *t) {
    if (has(t, "<|tool_list_start|>") || has(t, "<|tool_call_start|>") || has(t, "<|tool_response_start|>"))
        return CHAT_LFM2;
    if (has(t, "You are a function calling AI model")) return CHAT_HERMES;
    if (has(t, "You are Qwen, created by Alibaba Cloud")) return CHAT_QWEN25;
    if (has(t, "reasoning_content") || has(t, "</think>")) return CHAT_QWEN3;
    if (has(t, "named SmolLM")) return CHAT_SMOLLM2;
    return has(t, "bos_token") ? CHAT_CHATML_BOS : CHAT_CHATML;
}

static chat_family detect_text(const char *t) {
    if (has(t, "<\xef\xbd\x9c" "User\xef\xbd\x9c>")) return CHAT_DEEPSEEK_R1; /* <｜User｜>, full-width bars */
    if (has(t, "<|startoftext|>")) return CHAT_LFM2;
    if (has(t, "<|im_start|>")) return detect_chatml(t);
    if (has(t, "<|start_header_id|>")) {
        if (has(t, "functools[") || has(t, "version=v3-llama3.1") || has(t, ">>>all"))
            cx_log(CX_LOG_WARN, "Firefunction / Functionary chat templates are not supported; rendering as Llama 3");
        if (has(t, "strftime_now")) return CHAT_LLAMA32;
        return has(t, "Cutting Knowledge Date") ? CHAT_LLAMA3 : CHAT_LLAMA30;
    }
    if (has(t, "<start_of_turn>")) return CHAT_GEMMA;
    if (has(t, "<|assistant|>") && has(t, "<|end|>")) return CHAT_PHI3;
    if (has(t, "[INST]")) return CHAT_MISTRAL;
    return CHAT_N_FAMILIES;
}

/* Without a recognisable template, the architecture is the next best hint. */
static chat_family detect_arch(const char *arch) {
    static const struct {
        const char *arch;
        chat_family fam;
    } map[] = {{"qwen2", CHAT_QWEN25}, {"qwen3", CHAT_QWEN3}, {"lfm2", CHAT_LFM2}, {"gemma", CHAT_GEMMA},
               {"gemma2", CHAT_GEMMA}, {"gemma3", CHAT_GEMMA}, {"phi3", CHAT_PHI3}};
    for (size_t i = 0; arch && i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(arch, map[i].arch)) return map[i].fam;
    return CHAT_N_FAMILIES;
}

chat_family chat_detect(const char *template_text, const char *arch) {
    chat_family f = template_text ? detect_text(template_text) : CHAT_N_FAMILIES;
    if (f != CHAT_N_FAMILIES) return f;
    f = detect_arch(arch);
    if (template_text)
        cx_log(CX_LOG_WARN, "unrecognised chat template; using %s", f != CHAT_N_FAMILIES ? g_names[f] : "ChatML");
    return f != CHAT_N_FAMILIES ? f : CHAT_CHATML;
}

/* ---- validation ---- */

static bool str_is(const json_value *v, const char *s) {
    return v && v->type == JSON_STRING && v->u.str.len == strlen(s) && !memcmp(v->u.str.s, s, v->u.str.len);
}

static bool is_null(const json_value *v) { return !v || v->type == JSON_NULL; }

/* An optional member: absent, null or of the given type. */
static bool opt_type(const json_value *obj, const char *key, json_type t) {
    const json_value *v = json_get(obj, key);
    return is_null(v) || v->type == t;
}

static const char *g_roles[] = {"system", "user", "assistant", "tool"};

static int check_role(const json_value *m, size_t i) {
    const json_value *role = json_get(m, "role");
    if (!role || role->type != JSON_STRING) return cx_error("messages[%zu].role must be a string", i);
    for (size_t r = 0; r < sizeof g_roles / sizeof g_roles[0]; r++)
        if (str_is(role, g_roles[r])) return 0;
    return cx_error("messages[%zu].role '%.40s' is not one of system, user, assistant, tool", i, role->u.str.s);
}

static int check_parts(const json_value *c, size_t i) {
    for (size_t j = 0; j < c->u.arr.n; j++) {
        const json_value *p = json_at(c, j), *type = json_get(p, "type");
        if (p->type != JSON_OBJECT)
            return cx_error("messages[%zu].content[%zu] must be a {\"type\": \"text\", \"text\": ...} object", i, j);
        if (!str_is(type, "text"))
            return cx_error("messages[%zu].content[%zu].type must be \"text\" (only text parts are supported)", i, j);
        const json_value *text = json_get(p, "text");
        if (!text || text->type != JSON_STRING)
            return cx_error("messages[%zu].content[%zu].text must be a string", i, j);
    }
    return 0;
}

static int check_content(const json_value *m, size_t i, bool assistant, bool has_calls) {
    const json_value *c = json_get(m, "content");
    if (is_null(c)) {
        if (assistant && has_calls) return 0;
        return assistant ? cx_error("messages[%zu] (assistant) needs content or tool_calls", i)
                         : cx_error("messages[%zu].content is missing or null", i);
    }
    if (c->type == JSON_ARRAY) return check_parts(c, i);
    if (c->type != JSON_STRING)
        return cx_error("messages[%zu].content must be a string, an array of text parts or null, not %s", i,
                        json_type_name(c->type));
    return 0;
}

static int check_call(const json_value *tc, size_t i, size_t j) {
    if (tc->type != JSON_OBJECT) return cx_error("messages[%zu].tool_calls[%zu] must be an object", i, j);
    if (!opt_type(tc, "id", JSON_STRING)) return cx_error("messages[%zu].tool_calls[%zu].id must be a string", i, j);
    if (!opt_type(tc, "type", JSON_STRING))
        return cx_error("messages[%zu].tool_calls[%zu].type must be a string", i, j);
    const json_value *fn = json_get(tc, "function");
    const char *where = fn ? ".function" : "";
    if (fn && fn->type != JSON_OBJECT)
        return cx_error("messages[%zu].tool_calls[%zu].function must be an object", i, j);
    if (!fn) fn = tc; /* the flat {name, arguments} shape some templates also accept */
    const json_value *name = json_get(fn, "name"), *args = json_get(fn, "arguments");
    if (!name || name->type != JSON_STRING)
        return cx_error("messages[%zu].tool_calls[%zu]%s.name must be a string", i, j, where);
    if (!args || (args->type != JSON_OBJECT && args->type != JSON_STRING))
        return cx_error("messages[%zu].tool_calls[%zu]%s.arguments must be an object or a JSON string", i, j, where);
    return 0;
}

static int check_calls(const json_value *m, size_t i, bool assistant) {
    const json_value *calls = json_get(m, "tool_calls");
    if (is_null(calls)) return 0;
    if (calls->type != JSON_ARRAY) return cx_error("messages[%zu].tool_calls must be an array", i);
    if (!assistant && calls->u.arr.n)
        return cx_error("messages[%zu].tool_calls is only allowed on assistant messages", i);
    for (size_t j = 0; j < calls->u.arr.n; j++)
        if (check_call(json_at(calls, j), i, j)) return -1;
    return 0;
}

static int check_message(const json_value *m, size_t i) {
    if (m->type != JSON_OBJECT) return cx_error("messages[%zu] must be an object, not %s", i, json_type_name(m->type));
    if (check_role(m, i)) return -1;
    bool assistant = str_is(json_get(m, "role"), "assistant");
    const json_value *calls = json_get(m, "tool_calls");
    if (check_calls(m, i, assistant) ||
        check_content(m, i, assistant, calls && calls->type == JSON_ARRAY && calls->u.arr.n))
        return -1;
    if (!opt_type(m, "tool_call_id", JSON_STRING)) return cx_error("messages[%zu].tool_call_id must be a string", i);
    if (!opt_type(m, "name", JSON_STRING)) return cx_error("messages[%zu].name must be a string", i);
    if (!opt_type(m, "reasoning_content", JSON_STRING))
        return cx_error("messages[%zu].reasoning_content must be a string or null", i);
    return 0;
}

int chat_validate(const json_value *messages) {
    if (!messages || messages->type != JSON_ARRAY)
        return cx_error("messages must be a JSON array of {role, content} objects");
    size_t n = json_len(messages);
    if (n == 0) return cx_error("messages is empty");
    if (n > CACTUS_MAX_MESSAGES)
        return cx_error("messages has %zu entries; at most %d are allowed (CACTUS_MAX_MESSAGES)", n,
                        CACTUS_MAX_MESSAGES);
    for (size_t i = 0; i < n; i++)
        if (check_message(json_at(messages, i), i)) return -1;
    return 0;
}

int chat_validate_tools(const json_value *tools) {
    if (tools->type != JSON_ARRAY) return cx_error("tools must be a JSON array of {type, function} objects");
    size_t n = json_len(tools);
    if (n > CACTUS_MAX_TOOLS)
        return cx_error("tools has %zu entries; at most %d are allowed (CACTUS_MAX_TOOLS)", n, CACTUS_MAX_TOOLS);
    for (size_t i = 0; i < n; i++) {
        const json_value *t = json_at(tools, i), *type = json_get(t, "type"), *fn = json_get(t, "function");
        if (t->type != JSON_OBJECT) return cx_error("tools[%zu] must be an object", i);
        if (type && (type->type != JSON_STRING || strcmp(type->u.str.s, "function") != 0))
            return cx_error("tools[%zu].type must be \"function\"", i);
        const json_value *name = fn ? json_get(fn, "name") : NULL, *params = fn ? json_get(fn, "parameters") : NULL;
        if (!fn || fn->type != JSON_OBJECT) return cx_error("tools[%zu].function must be an object", i);
        if (!name || name->type != JSON_STRING || name->u.str.len == 0)
            return cx_error("tools[%zu].function.name must be a non-empty string", i);
        if (params && params->type != JSON_OBJECT && params->type != JSON_NULL)
            return cx_error("tools[%zu].function.parameters must be a JSON Schema object", i);
    }
    return 0;
}

/* ---- normalisation ---- */

typedef struct {
    chat_msg *msgs;
    chat_call *calls;
    char **texts; /* joined text parts, owned */
    size_t n_texts;
    json_doc **docs; /* parsed argument strings, owned */
    size_t n_docs;
} conv;

static void conv_free(conv *cv) {
    for (size_t i = 0; i < cv->n_texts; i++) free(cv->texts[i]);
    for (size_t i = 0; i < cv->n_docs; i++) json_free(cv->docs[i]);
    free(cv->msgs), free(cv->calls), free(cv->texts), free(cv->docs);
}

static void str_member(const json_value *obj, const char *key, const char **s, size_t *len) {
    const json_value *v = json_get(obj, key);
    *s = v && v->type == JSON_STRING ? v->u.str.s : NULL;
    *len = *s ? v->u.str.len : 0;
}

static int set_content(conv *cv, chat_msg *cm, const json_value *c) {
    cm->text = "", cm->len = 0, cm->null_content = is_null(c);
    if (c && c->type == JSON_STRING) cm->text = c->u.str.s, cm->len = c->u.str.len;
    if (!c || c->type != JSON_ARRAY) return 0;
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "");
    for (size_t j = 0; j < c->u.arr.n; j++) {
        const json_value *t = json_get(json_at(c, j), "text");
        sb_append(&sb, t->u.str.s, t->u.str.len);
    }
    if (sb.failed) return sb_free(&sb), cx_error("out of memory joining message content");
    cv->texts[cv->n_texts++] = sb.data;
    cm->text = sb.data, cm->len = sb.len;
    return 0;
}

/* Arguments given as a string holding a JSON object become that object. */
static void resolve_args(conv *cv, chat_call *k) {
    k->args = k->args_given;
    if (k->args_given->type != JSON_STRING) return;
    json_doc *d = json_parse(k->args_given->u.str.s, k->args_given->u.str.len, NULL, 0);
    if (d && json_root(d)->type == JSON_OBJECT) {
        cv->docs[cv->n_docs++] = d;
        k->args = json_root(d);
    } else {
        json_free(d);
    }
}

static void set_call(conv *cv, chat_call *k, const json_value *tc) {
    const json_value *fn = json_get(tc, "function");
    k->fn = fn ? fn : tc;
    const json_value *name = json_get(k->fn, "name");
    k->name = name->u.str.s, k->name_len = name->u.str.len;
    k->args_given = json_get(k->fn, "arguments");
    resolve_args(cv, k);
    str_member(tc, "id", &k->id, &k->id_len);
    size_t tl;
    str_member(tc, "type", &k->type, &tl);
}

static int set_message(conv *cv, chat_msg *cm, const json_value *m, chat_call **next_call) {
    cm->obj = m;
    cm->role = json_get(m, "role")->u.str.s;
    const json_value *calls = json_get(m, "tool_calls");
    cm->has_calls = calls && calls->type == JSON_ARRAY;
    cm->calls = *next_call;
    cm->n_calls = cm->has_calls ? calls->u.arr.n : 0;
    for (size_t j = 0; j < cm->n_calls; j++) set_call(cv, &cm->calls[j], json_at(calls, j));
    *next_call += cm->n_calls;
    str_member(m, "reasoning_content", &cm->reasoning, &cm->reasoning_len);
    str_member(m, "tool_call_id", &cm->tool_call_id, &cm->tool_call_id_len);
    return set_content(cv, cm, json_get(m, "content"));
}

static int conv_build(conv *cv, const json_value *messages) {
    size_t n = json_len(messages), n_calls = 0;
    for (size_t i = 0; i < n; i++) {
        const json_value *calls = json_get(json_at(messages, i), "tool_calls");
        if (calls && calls->type == JSON_ARRAY) n_calls += calls->u.arr.n;
    }
    cv->msgs = calloc(n, sizeof *cv->msgs);
    cv->calls = calloc(n_calls + 1, sizeof *cv->calls);
    cv->texts = calloc(n, sizeof *cv->texts);
    cv->docs = calloc(n_calls + 1, sizeof *cv->docs);
    if (!cv->msgs || !cv->calls || !cv->texts || !cv->docs) return cx_error("out of memory reading the messages");
    chat_call *next = cv->calls;
    for (size_t i = 0; i < n; i++)
        if (set_message(cv, &cv->msgs[i], json_at(messages, i), &next)) return -1;
    return 0;
}

/* ---- rendering ---- */

static int dispatch(const chat_ctx *c, chat_family fam) {
    switch (fam) {
    case CHAT_HERMES: return chat_render_hermes(c);
    case CHAT_LFM2: return chat_render_lfm2(c);
    case CHAT_LLAMA30:
    case CHAT_LLAMA3:
    case CHAT_LLAMA32: return chat_render_llama3(c, fam);
    case CHAT_GEMMA: return chat_render_gemma(c);
    case CHAT_PHI3: return chat_render_phi3(c);
    case CHAT_MISTRAL: return chat_render_mistral(c);
    case CHAT_DEEPSEEK_R1: return chat_render_deepseek_r1(c);
    default: return chat_render_chatml(c, fam);
    }
}

int chat_render(chat_family fam, const json_value *messages, const json_value *tools, bool add_generation_prompt,
                const char *bos, const char *eos, strbuf *out, bool *bos_rendered) {
    *bos_rendered = false;
    if (chat_validate(messages)) return -1;
    if (is_null(tools)) tools = NULL;
    if (tools && chat_validate_tools(tools)) return -1;
    conv cv = {0};
    size_t start = out->len;
    int rc = conv_build(&cv, messages);
    if (!rc) {
        chat_ctx c = {cv.msgs, json_len(messages), tools, add_generation_prompt, bos ? bos : "", eos ? eos : "", out};
        rc = dispatch(&c, fam);
    }
    conv_free(&cv);
    if (!rc && out->failed) rc = cx_error("out of memory rendering the chat template");
    if (rc && out->len > start) { /* no half-rendered prompt on failure */
        out->len = start;
        out->data[start] = 0;
    }
    if (!rc) sb_puts(out, ""); /* NUL-terminated even when nothing was rendered */
    size_t bl = bos ? strlen(bos) : 0;
    *bos_rendered = !rc && bl && out->len - start >= bl && !memcmp(out->data + start, bos, bl);
    return rc;
}
