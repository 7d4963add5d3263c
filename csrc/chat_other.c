/* Gemma, Phi-3 and DeepSeek R1: templates without tool definitions. */
#include "chat_internal.h"

/* ---- Gemma 2 / 3 ---- */

/* Gemma 3's template: the system message becomes a prefix of the first turn
 * (Gemma 2's refuses a system message; without one both render the same).
 * After it, roles must alternate user / non-user, starting with user. */
int chat_render_gemma(const chat_ctx *c) {
    const chat_msg *sys = chat_role_is(&c->msgs[0], "system") ? &c->msgs[0] : NULL;
    size_t first = sys ? 1 : 0;
    for (size_t i = first; i < c->n; i++)
        if (chat_role_is(&c->msgs[i], "user") != ((i - first) % 2 == 0))
            return cx_error("Conversation roles must alternate user/assistant/user/assistant/... (messages[%zu] is %s)",
                            i, c->msgs[i].role);
    chat_puts(c, c->bos);
    for (size_t i = first; i < c->n; i++) {
        const chat_msg *m = &c->msgs[i];
        chat_puts(c, "<start_of_turn>");
        chat_puts(c, chat_role_is(m, "assistant") ? "model" : m->role);
        chat_puts(c, "\n");
        if (sys && i == first) chat_put(c, sys->text, sys->len), chat_puts(c, "\n\n");
        put_trimmed(c, m->text, m->len);
        chat_puts(c, "<end_of_turn>\n");
    }
    if (c->add_generation_prompt) chat_puts(c, "<start_of_turn>model\n");
    return 0;
}

/* ---- Phi-3 / 3.5 ---- */

/* An empty system message is dropped; tool messages have no branch and vanish.
 * Without a generation prompt the text ends with the EOS token. */
int chat_render_phi3(const chat_ctx *c) {
    for (size_t i = 0; i < c->n; i++) {
        const chat_msg *m = &c->msgs[i];
        const char *tag = chat_role_is(m, "system") ? (m->len ? "<|system|>\n" : NULL)
                          : chat_role_is(m, "user")    ? "<|user|>\n"
                          : chat_role_is(m, "assistant") ? "<|assistant|>\n"
                                                         : NULL;
        if (!tag) continue;
        chat_puts(c, tag);
        chat_put(c, m->text, m->len);
        chat_puts(c, "<|end|>\n");
    }
    chat_puts(c, c->add_generation_prompt ? "<|assistant|>\n" : c->eos);
    return 0;
}

/* ---- DeepSeek R1 distills ---- */

#define DS_USER "<\xef\xbd\x9cUser\xef\xbd\x9c>"
#define DS_ASSISTANT "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>"
#define DS_EOS "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
#define DS_CALLS_BEGIN "<\xef\xbd\x9ctool\xe2\x96\x81" "calls\xe2\x96\x81" "begin\xef\xbd\x9c>"
#define DS_CALLS_END "<\xef\xbd\x9ctool\xe2\x96\x81" "calls\xe2\x96\x81" "end\xef\xbd\x9c>"
#define DS_CALL_BEGIN "<\xef\xbd\x9ctool\xe2\x96\x81" "call\xe2\x96\x81" "begin\xef\xbd\x9c>"
#define DS_CALL_END "<\xef\xbd\x9ctool\xe2\x96\x81" "call\xe2\x96\x81" "end\xef\xbd\x9c>"
#define DS_SEP "<\xef\xbd\x9ctool\xe2\x96\x81sep\xef\xbd\x9c>"
#define DS_OUTPUTS_BEGIN "<\xef\xbd\x9ctool\xe2\x96\x81outputs\xe2\x96\x81" "begin\xef\xbd\x9c>"
#define DS_OUTPUTS_END "<\xef\xbd\x9ctool\xe2\x96\x81outputs\xe2\x96\x81" "end\xef\xbd\x9c>"
#define DS_OUTPUT_BEGIN "<\xef\xbd\x9ctool\xe2\x96\x81output\xe2\x96\x81" "begin\xef\xbd\x9c>"
#define DS_OUTPUT_END "<\xef\xbd\x9ctool\xe2\x96\x81output\xe2\x96\x81" "end\xef\xbd\x9c>"

typedef struct {
    bool is_first, is_tool, is_output_first; /* the template's namespace, kept across messages */
} ds_state;

static void ds_call(const chat_ctx *c, const chat_call *k) {
    chat_puts(c, k->type ? k->type : "function");
    chat_puts(c, DS_SEP);
    chat_put(c, k->name, k->name_len);
    chat_puts(c, "\n```json\n");
    if (k->args_given->type == JSON_STRING) chat_put(c, k->args_given->u.str.s, k->args_given->u.str.len);
    else pyjson_write(c->out, k->args_given, -1);
    chat_puts(c, "\n```" DS_CALL_END);
}

/* The template's flags are never reset between messages, so a second
 * tool-calling turn continues the first one's list; reproduced as is. */
static void ds_calls(const chat_ctx *c, const chat_msg *m, ds_state *st) {
    st->is_tool = false;
    for (size_t j = 0; j < m->n_calls; j++) {
        if (!st->is_first) {
            chat_puts(c, DS_ASSISTANT DS_CALLS_BEGIN DS_CALL_BEGIN);
            ds_call(c, &m->calls[j]);
            st->is_first = true;
        } else {
            chat_puts(c, "\n" DS_CALL_BEGIN);
            ds_call(c, &m->calls[j]);
            chat_puts(c, DS_CALLS_END DS_EOS);
        }
    }
}

static void ds_answer(const chat_ctx *c, const chat_msg *m, ds_state *st) {
    if (st->is_tool) {
        chat_puts(c, DS_OUTPUTS_END);
        chat_put(c, m->text, m->len);
        st->is_tool = false;
    } else {
        const char *end = text_rfind(m->text, m->len, "</think>"); /* only the answer after the thinking */
        size_t from = end ? (size_t)(end - m->text) + 8 : 0;
        chat_puts(c, DS_ASSISTANT);
        chat_put(c, m->text + from, m->len - from);
    }
    chat_puts(c, DS_EOS);
}

static void ds_output(const chat_ctx *c, const chat_msg *m, ds_state *st) {
    st->is_tool = true;
    chat_puts(c, st->is_output_first ? DS_OUTPUTS_BEGIN DS_OUTPUT_BEGIN : "\n" DS_OUTPUT_BEGIN);
    st->is_output_first = false;
    chat_put(c, m->text, m->len);
    chat_puts(c, DS_OUTPUT_END);
}

int chat_render_deepseek_r1(const chat_ctx *c) {
    ds_state st = {false, false, true};
    chat_puts(c, c->bos);
    for (size_t i = c->n; i-- > 0;) { /* the last system message is the system prompt */
        if (chat_role_is(&c->msgs[i], "system")) {
            chat_put(c, c->msgs[i].text, c->msgs[i].len);
            break;
        }
    }
    for (size_t i = 0; i < c->n; i++) {
        const chat_msg *m = &c->msgs[i];
        if (chat_role_is(m, "user")) {
            st.is_tool = false;
            chat_puts(c, DS_USER);
            chat_put(c, m->text, m->len);
        } else if (chat_role_is(m, "assistant")) {
            if (m->null_content) ds_calls(c, m, &st);
            else ds_answer(c, m, &st);
        } else if (chat_role_is(m, "tool")) {
            ds_output(c, m, &st);
        }
    }
    if (st.is_tool) chat_puts(c, DS_OUTPUTS_END);
    if (c->add_generation_prompt && !st.is_tool) chat_puts(c, DS_ASSISTANT "<think>\n");
    return 0;
}
