/* ChatML dialects: plain ChatML (with or without BOS) and SmolLM2, Qwen 2.5, Qwen 3, LFM2.
 * Each function follows its Jinja template's control flow top to bottom;
 * the comments name the template branch where the output is surprising. */
#include "chat_internal.h"

static const char *QWEN25_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
static const char *SMOLLM2_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

static const char *QWEN_TOOLS_HEAD =
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
static const char *QWEN_TOOLS_TAIL =
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
    "<args-json-object>}\n</tool_call><|im_end|>\n";

static void put_turn(const chat_ctx *c, const char *role, const char *text, size_t len) {
    chat_puts(c, "<|im_start|>");
    chat_puts(c, role);
    chat_puts(c, "\n");
    chat_put(c, text, len);
    chat_puts(c, "<|im_end|>\n");
}

static void put_generation_prompt(const chat_ctx *c) {
    if (c->add_generation_prompt) chat_puts(c, "<|im_start|>assistant\n");
}

static bool has_tools(const chat_ctx *c) { return c->tools && c->tools->u.arr.n; }

/* Plain ChatML renders every message as a turn, whatever its role; its
 * template knows nothing of tools, so they (and tool calls) are left out. */
static int render_plain(const chat_ctx *c, const char *bos, const char *default_system) {
    if (has_tools(c))
        cx_log(CX_LOG_WARN, "this chat template has no tool support; tools are left out of the prompt");
    chat_puts(c, bos);
    if (default_system && !chat_role_is(&c->msgs[0], "system"))
        put_turn(c, "system", default_system, strlen(default_system));
    for (size_t i = 0; i < c->n; i++) put_turn(c, c->msgs[i].role, c->msgs[i].text, c->msgs[i].len);
    put_generation_prompt(c);
    return 0;
}

/* ---- Qwen 2.5 / Qwen 3 ---- */

/* The system turn: with tools it carries the tool signatures (one JSON per line). */
static void qwen_system(const chat_ctx *c, const char *default_system) {
    const chat_msg *first = &c->msgs[0];
    bool sys = chat_role_is(first, "system");
    if (!has_tools(c)) {
        if (sys) put_turn(c, "system", first->text, first->len);
        else if (default_system) put_turn(c, "system", default_system, strlen(default_system));
        return;
    }
    chat_puts(c, "<|im_start|>system\n");
    if (sys || default_system) {
        if (sys) chat_put(c, first->text, first->len);
        else chat_puts(c, default_system);
        chat_puts(c, "\n\n");
    }
    chat_puts(c, QWEN_TOOLS_HEAD);
    for (size_t i = 0; i < c->tools->u.arr.n; i++) {
        chat_puts(c, "\n");
        pyjson_write(c->out, json_at(c->tools, i), -1);
    }
    chat_puts(c, QWEN_TOOLS_TAIL);
}

/* One <tool_call> block body: {"name": "...", "arguments": ...}. Qwen 2.5
 * always applies tojson (a non-JSON string comes out quoted); Qwen 3 emits
 * strings as they are. */
static void qwen_call(const chat_ctx *c, const chat_call *k, bool raw_strings) {
    chat_puts(c, "<tool_call>\n{\"name\": \"");
    chat_put(c, k->name, k->name_len);
    chat_puts(c, "\", \"arguments\": ");
    if (raw_strings && k->args->type == JSON_STRING) chat_put(c, k->args->u.str.s, k->args->u.str.len);
    else pyjson_write(c->out, k->args, -1);
    chat_puts(c, "}\n</tool_call>");
}

/* Consecutive tool results share one user turn. */
static void qwen_tool_result(const chat_ctx *c, size_t i) {
    if (i == 0 || !chat_role_is(&c->msgs[i - 1], "tool")) chat_puts(c, "<|im_start|>user");
    chat_puts(c, "\n<tool_response>\n");
    chat_put(c, c->msgs[i].text, c->msgs[i].len);
    chat_puts(c, "\n</tool_response>");
    if (i + 1 == c->n || !chat_role_is(&c->msgs[i + 1], "tool")) chat_puts(c, "<|im_end|>\n");
}

static void qwen25_assistant_calls(const chat_ctx *c, const chat_msg *m) {
    chat_puts(c, "<|im_start|>assistant");
    if (m->len) chat_puts(c, "\n"), chat_put(c, m->text, m->len);
    for (size_t j = 0; j < m->n_calls; j++) {
        chat_puts(c, "\n");
        qwen_call(c, &m->calls[j], false);
    }
    chat_puts(c, "<|im_end|>\n");
}

static int render_qwen25(const chat_ctx *c) {
    qwen_system(c, QWEN25_SYSTEM);
    for (size_t i = 0; i < c->n; i++) {
        const chat_msg *m = &c->msgs[i];
        bool assistant = chat_role_is(m, "assistant");
        if (chat_role_is(m, "user") || (chat_role_is(m, "system") && i) || (assistant && !m->n_calls))
            put_turn(c, m->role, m->text, m->len);
        else if (assistant) qwen25_assistant_calls(c, m);
        else if (chat_role_is(m, "tool")) qwen_tool_result(c, i);
    }
    put_generation_prompt(c);
    return 0;
}

/* The last user message that is not a wrapped tool response: thinking is kept
 * only for the assistant turns after it. */
static size_t qwen3_last_query(const chat_ctx *c) {
    for (size_t i = c->n; i-- > 0;) {
        const chat_msg *m = &c->msgs[i];
        if (chat_role_is(m, "user") &&
            !(text_starts(m->text, m->len, "<tool_response>") && text_ends(m->text, m->len, "</tool_response>")))
            return i;
    }
    return c->n - 1;
}

typedef struct {
    const char *s;
    size_t n;
} span;

/* Splits an assistant message into reasoning and answer the way the template
 * does: reasoning_content when given, else the text around </think>. */
static void qwen3_split(const chat_msg *m, span *content, span *reasoning) {
    *content = (span){m->text, m->len};
    *reasoning = (span){"", 0};
    if (m->reasoning) {
        *reasoning = (span){m->reasoning, m->reasoning_len};
        return;
    }
    const char *last = text_rfind(m->text, m->len, "</think>"), *first = text_find(m->text, m->len, "</think>");
    if (!last) return;
    size_t b, e, after = (size_t)(last - m->text) + 8;
    strip_char(m->text + after, m->len - after, '\n', true, false, &b, &e);
    *content = (span){m->text + after + b, e - b};
    size_t before = (size_t)(first - m->text);
    strip_char(m->text, before, '\n', false, true, &b, &e);
    const char *think = text_rfind(m->text, e, "<think>");
    size_t from = think ? (size_t)(think - m->text) + 7 : 0;
    strip_char(m->text + from, e - from, '\n', true, false, &b, &e);
    *reasoning = (span){m->text + from + b, e - b};
}

static void qwen3_assistant(const chat_ctx *c, size_t i, size_t last_query) {
    const chat_msg *m = &c->msgs[i];
    span content, reasoning;
    qwen3_split(m, &content, &reasoning);
    chat_puts(c, "<|im_start|>assistant\n");
    if (i > last_query && (i + 1 == c->n || reasoning.n)) {
        size_t b, e;
        strip_char(reasoning.s, reasoning.n, '\n', true, true, &b, &e);
        chat_puts(c, "<think>\n");
        chat_put(c, reasoning.s + b, e - b);
        chat_puts(c, "\n</think>\n\n");
        strip_char(content.s, content.n, '\n', true, false, &b, &e);
        chat_put(c, content.s + b, e - b);
    } else {
        chat_put(c, content.s, content.n);
    }
    for (size_t j = 0; j < m->n_calls; j++) {
        if (j || content.n) chat_puts(c, "\n");
        qwen_call(c, &m->calls[j], true);
    }
    chat_puts(c, "<|im_end|>\n");
}

static int render_qwen3(const chat_ctx *c) {
    qwen_system(c, NULL);
    size_t last_query = qwen3_last_query(c);
    for (size_t i = 0; i < c->n; i++) {
        const chat_msg *m = &c->msgs[i];
        if (chat_role_is(m, "user") || (chat_role_is(m, "system") && i)) put_turn(c, m->role, m->text, m->len);
        else if (chat_role_is(m, "assistant")) qwen3_assistant(c, i, last_query);
        else if (chat_role_is(m, "tool")) qwen_tool_result(c, i);
    }
    put_generation_prompt(c);
    return 0;
}

int chat_render_chatml(const chat_ctx *c, chat_family fam) {
    switch (fam) {
    case CHAT_QWEN25: return render_qwen25(c);
    case CHAT_QWEN3: return render_qwen3(c);
    case CHAT_SMOLLM2: return render_plain(c, "", SMOLLM2_SYSTEM);
    case CHAT_CHATML_BOS: return render_plain(c, c->bos, NULL);
    default: return render_plain(c, "", NULL);
    }
}

/* ---- LFM2 ---- */

/* Content that is not a string goes through tojson: a null content (an
 * assistant turn holding only tool calls) renders as "null". */
static void lfm2_content(const chat_ctx *c, const chat_msg *m) {
    if (m->null_content) chat_puts(c, "null");
    else chat_put(c, m->text, m->len);
}

static void lfm2_calls(const chat_ctx *c, const chat_msg *m) {
    for (size_t j = 0; j < m->n_calls; j++) {
        const chat_call *k = &m->calls[j];
        chat_puts(c, "\n<|tool_call_start|>\n{\"name\": \"");
        chat_put(c, k->name, k->name_len);
        chat_puts(c, "\", \"arguments\": ");
        if (k->args->type == JSON_STRING) chat_put(c, k->args->u.str.s, k->args->u.str.len);
        else pyjson_write(c->out, k->args, -1);
        chat_puts(c, "}\n<|tool_call_end|>\n");
    }
}

/* The system prompt: the system message, then the tool list. The template
 * writes its tool-call instructions before the system turn, outside it. */
static void lfm2_system(const chat_ctx *c, bool sys) {
    strbuf *o = c->out;
    size_t mark = o->len;
    chat_puts(c, "<|im_start|>system\n");
    size_t body = o->len;
    if (sys) chat_put(c, c->msgs[0].text, c->msgs[0].len);
    if (has_tools(c)) {
        if (o->len > body) chat_puts(c, "\n");
        chat_puts(c, "You can use the following tools: <|tool_list_start|>[");
        for (size_t i = 0; i < c->tools->u.arr.n; i++) {
            if (i) chat_puts(c, ", ");
            pyjson_write(o, json_at(c->tools, i), -1);
        }
        chat_puts(c, "]<|tool_list_end|>");
    }
    if (o->len == body) { /* an empty system prompt gets no turn */
        o->len = mark;
        if (o->data) o->data[mark] = 0;
        return;
    }
    chat_puts(c, "<|im_end|>\n");
}

int chat_render_lfm2(const chat_ctx *c) {
    chat_puts(c, c->bos);
    bool sys = chat_role_is(&c->msgs[0], "system");
    if (has_tools(c))
        chat_puts(c, "**IMPORTANT**: The syntax for calling the tools is: <|tool_call_start|>JSON tool call goes "
                     "here<|tool_call_end|>. Please only call tools in the specified manner.");
    lfm2_system(c, sys);
    for (size_t i = sys ? 1 : 0; i < c->n; i++) {
        const chat_msg *m = &c->msgs[i];
        chat_puts(c, "<|im_start|>");
        chat_puts(c, m->role);
        chat_puts(c, "\n");
        bool tool = chat_role_is(m, "tool");
        if (tool) chat_puts(c, "<|tool_response_start|>");
        else if (chat_role_is(m, "assistant")) lfm2_calls(c, m);
        lfm2_content(c, m);
        if (tool) chat_puts(c, "<|tool_response_end|>");
        chat_puts(c, "<|im_end|>\n");
    }
    put_generation_prompt(c);
    return 0;
}
