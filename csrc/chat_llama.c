/* Llama 3 family: <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>.
 * 3.0 is headers only. 3.1 / 3.2 / 3.3 open with a dated system preamble
 * and put the tools (tojson, indent=4) in the first user turn; a tool call is
 * {"name": ..., "parameters": ...} and a tool result an "ipython" turn whose
 * content the template passes through tojson (so a string comes out quoted). */
#include <time.h>

#include "chat_internal.h"

static void header(const chat_ctx *c, const char *role) {
    chat_puts(c, "<|start_header_id|>");
    chat_puts(c, role);
    chat_puts(c, "<|end_header_id|>\n\n");
}

static void put_generation_prompt(const chat_ctx *c) {
    if (c->add_generation_prompt) header(c, "assistant");
}

static int render_llama30(const chat_ctx *c) {
    for (size_t i = 0; i < c->n; i++) {
        if (!i) chat_puts(c, c->bos);
        header(c, c->msgs[i].role);
        put_trimmed(c, c->msgs[i].text, c->msgs[i].len);
        chat_puts(c, "<|eot_id|>");
    }
    put_generation_prompt(c);
    return 0;
}

/* "Today Date": 3.1 / 3.3 default to a fixed date; 3.2 asks strftime_now("%d %b %Y"), the local date. */
static void put_date(const chat_ctx *c, chat_family fam) {
    static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;
    if (fam != CHAT_LLAMA32 || !localtime_r(&now, &tm)) {
        chat_puts(c, "26 Jul 2024");
        return;
    }
    sb_printf(c->out, "%02d %s %d", tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900);
}

static void system_preamble(const chat_ctx *c, chat_family fam, const chat_msg *sys) {
    header(c, "system");
    if (c->tools) chat_puts(c, "Environment: ipython\n"); /* any tools list, even an empty one */
    chat_puts(c, "Cutting Knowledge Date: December 2023\nToday Date: ");
    put_date(c, fam);
    chat_puts(c, "\n\n");
    if (sys) put_trimmed(c, sys->text, sys->len);
    chat_puts(c, "<|eot_id|>");
}

/* The tools go into the first message after the system one, whatever its role. */
static void tools_turn(const chat_ctx *c, const chat_msg *first) {
    header(c, "user");
    chat_puts(c, "Given the following functions, please respond with a JSON for a function call with its proper "
                 "arguments that best answers the given prompt.\n\nRespond in the format {\"name\": function name, "
                 "\"parameters\": dictionary of argument name and its value}.Do not use variables.\n\n");
    for (size_t i = 0; i < c->tools->u.arr.n; i++) {
        pyjson_write(c->out, json_at(c->tools, i), 4);
        chat_puts(c, "\n\n");
    }
    put_trimmed(c, first->text, first->len);
    chat_puts(c, "<|eot_id|>");
}

static int tool_call_turn(const chat_ctx *c, const chat_msg *m) {
    if (m->n_calls != 1) return cx_error("This model only supports single tool-calls at once!");
    const chat_call *k = &m->calls[0];
    header(c, "assistant");
    chat_puts(c, "{\"name\": \"");
    chat_put(c, k->name, k->name_len);
    chat_puts(c, "\", \"parameters\": ");
    pyjson_write(c->out, k->args, -1);
    chat_puts(c, "}<|eot_id|>");
    return 0;
}

static int render_llama31(const chat_ctx *c, chat_family fam) {
    chat_puts(c, c->bos);
    size_t i = 0;
    const chat_msg *sys = chat_role_is(&c->msgs[0], "system") ? &c->msgs[i++] : NULL;
    system_preamble(c, fam, sys);
    if (c->tools) {
        if (i == c->n)
            return cx_error("Cannot put tools in the first user message when there's no first user message!");
        tools_turn(c, &c->msgs[i++]);
    }
    for (; i < c->n; i++) {
        const chat_msg *m = &c->msgs[i];
        if (m->has_calls) {
            if (tool_call_turn(c, m)) return -1;
        } else if (chat_role_is(m, "tool")) {
            header(c, "ipython");
            pyjson_write_string(c->out, m->text, m->len);
            chat_puts(c, "<|eot_id|>");
        } else {
            header(c, m->role);
            put_trimmed(c, m->text, m->len);
            chat_puts(c, "<|eot_id|>");
        }
    }
    put_generation_prompt(c);
    return 0;
}

int chat_render_llama3(const chat_ctx *c, chat_family fam) {
    return fam == CHAT_LLAMA30 ? render_llama30(c) : render_llama31(c, fam);
}
