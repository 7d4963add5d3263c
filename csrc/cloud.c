/* Cloud handoff request and reply (see cloud.h). */
#include "cloud.h"

#include <string.h>

void cloud_build_request(const json_value *messages, const json_value *tools, const cx_call_options *co, strbuf *out) {
    const cx_sampler_params *sp = &co->gen.sampling;
    sb_puts(out, "{\"messages\":");
    json_write_value(out, messages);
    sb_printf(out, ",\"max_tokens\":%d,\"temperature\":", co->gen.max_tokens);
    json_write_number(out, sp->temperature);
    sb_puts(out, ",\"top_p\":");
    json_write_number(out, sp->top_p);
    if (sp->has_seed) sb_printf(out, ",\"seed\":%llu", (unsigned long long)sp->seed);
    if (co->gen.n_stop > 0) {
        sb_puts(out, ",\"stop\":[");
        for (int i = 0; i < co->gen.n_stop && i < 4; i++) { /* OpenAI accepts at most four */
            if (i) sb_putc(out, ',');
            json_write_string(out, co->gen.stop[i], co->gen.stop_len[i]);
        }
        sb_putc(out, ']');
    }
    if (tools && json_len(tools) > 0) {
        sb_puts(out, ",\"tools\":");
        json_write_value(out, tools);
        if (co->tool_choice) {
            sb_puts(out, ",\"tool_choice\":");
            bool keyword = !strcmp(co->tool_choice, "auto") || !strcmp(co->tool_choice, "none") ||
                           !strcmp(co->tool_choice, "required");
            if (keyword) {
                json_write_string(out, co->tool_choice, strlen(co->tool_choice));
            } else {
                sb_puts(out, "{\"type\":\"function\",\"function\":{\"name\":");
                json_write_string(out, co->tool_choice, strlen(co->tool_choice));
                sb_puts(out, "}}");
            }
        }
    }
    sb_putc(out, '}');
}

/* arguments arrive as a JSON string (OpenAI) or, from lenient servers, an object. */
static void write_arguments(strbuf *calls, const json_value *args) {
    if (args && args->type == JSON_STRING) {
        json_doc *d = json_parse(args->u.str.s, args->u.str.len, NULL, 0);
        if (d && json_root(d)->type == JSON_OBJECT) json_write_value(calls, json_root(d));
        else json_write_string(calls, args->u.str.s, args->u.str.len);
        json_free(d);
    } else if (args && args->type == JSON_OBJECT) {
        json_write_value(calls, args);
    } else {
        sb_puts(calls, "{}");
    }
}

static int parse_tool_calls(const json_value *tool_calls, strbuf *calls) {
    sb_putc(calls, '[');
    size_t n = tool_calls && tool_calls->type == JSON_ARRAY ? json_len(tool_calls) : 0;
    for (size_t i = 0; i < n; i++) {
        const json_value *fn = json_get(json_at(tool_calls, i), "function");
        const json_value *name = fn ? json_get(fn, "name") : NULL;
        if (!name || name->type != JSON_STRING) return cx_error("cloud reply: tool_calls[%zu] has no function name", i);
        if (i) sb_putc(calls, ',');
        sb_puts(calls, "{\"name\":");
        json_write_string(calls, name->u.str.s, name->u.str.len);
        sb_puts(calls, ",\"arguments\":");
        write_arguments(calls, json_get(fn, "arguments"));
        sb_putc(calls, '}');
    }
    sb_putc(calls, ']');
    return 0;
}

int cloud_parse_reply(const char *reply, size_t len, strbuf *text, strbuf *calls) {
    char err[160];
    json_doc *d = json_parse(reply, len, err, sizeof err);
    if (!d) return cx_error("cloud reply is not JSON: %s", err);
    const json_value *choices = json_get(json_root(d), "choices");
    const json_value *msg = json_get(json_at(choices, 0), "message");
    const json_value *content = msg ? json_get(msg, "content") : NULL;
    int rc = 0;
    if (!msg || msg->type != JSON_OBJECT) {
        rc = cx_error("cloud reply has no choices[0].message");
    } else if (content && content->type != JSON_STRING && content->type != JSON_NULL) {
        rc = cx_error("cloud reply: message.content is not a string");
    } else {
        if (content && content->type == JSON_STRING) sb_append(text, content->u.str.s, content->u.str.len);
        rc = parse_tool_calls(json_get(msg, "tool_calls"), calls);
    }
    json_free(d);
    return rc;
}
