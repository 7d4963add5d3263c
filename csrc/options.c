/* Completion options: JSON in, checked values out. Unknown keys are
 * ignored; a wrong type or range is an error naming the key. */
#include "options.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "include/cactus.h"

static int opt_number(const json_value *opts, const char *key, double lo, double hi, double *out) {
    const json_value *v = json_get(opts, key);
    if (!v || v->type == JSON_NULL) return 0;
    if (v->type != JSON_NUMBER) return cx_error("option '%s' must be a number, got %s", key, json_type_name(v->type));
    if (!(v->u.num.v >= lo && v->u.num.v <= hi)) return cx_error("option '%s' = %g is outside [%g, %g]", key, v->u.num.v, lo, hi);
    *out = v->u.num.v;
    return 0;
}

static int opt_int(const json_value *opts, const char *key, double lo, double hi, double *out) {
    const json_value *v = json_get(opts, key);
    if (v && v->type == JSON_NUMBER && v->u.num.v != floor(v->u.num.v))
        return cx_error("option '%s' must be an integer, got %g", key, v->u.num.v);
    return opt_number(opts, key, lo, hi, out);
}

static int parse_stops(const json_value *opts, cx_call_options *co) {
    const json_value *v = json_get(opts, "stop_sequences");
    if (!v || v->type == JSON_NULL) return 0;
    if (v->type != JSON_ARRAY) return cx_error("option 'stop_sequences' must be an array of strings");
    size_t n = json_len(v);
    if (n > CACTUS_MAX_STOP_SEQUENCES)
        return cx_error("option 'stop_sequences' has %zu entries; at most %d are allowed (CACTUS_MAX_STOP_SEQUENCES)",
                        n, CACTUS_MAX_STOP_SEQUENCES);
    co->gen.stop = calloc(n ? n : 1, sizeof(char *));
    co->gen.stop_len = calloc(n ? n : 1, sizeof(size_t));
    if (!co->gen.stop || !co->gen.stop_len) return cx_error("out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_value *s = json_at(v, i);
        if (s->type != JSON_STRING) return cx_error("option 'stop_sequences[%zu]' must be a string", i);
        /* the matcher tries every stop at each new piece and holds back up to a stop's length of text;
         * bounding the length bounds both that work per token and the streaming delay */
        if (s->u.str.len > CACTUS_MAX_STOP_BYTES)
            return cx_error("option 'stop_sequences[%zu]' is %zu bytes; at most %d are allowed (CACTUS_MAX_STOP_BYTES)",
                            i, s->u.str.len, CACTUS_MAX_STOP_BYTES);
        if (s->u.str.len == 0) continue; /* an empty stop would end every answer before it starts */
        co->gen.stop[co->gen.n_stop] = s->u.str.s;
        co->gen.stop_len[co->gen.n_stop++] = s->u.str.len;
    }
    return 0;
}

static int parse_tool_choice(const json_value *opts, cx_call_options *co) {
    const json_value *v = json_get(opts, "tool_choice");
    if (!v || v->type == JSON_NULL) return 0;
    if (v->type == JSON_OBJECT) { /* OpenAI's {"type": "function", "function": {"name": ...}} */
        const json_value *f = json_get(v, "function"), *name = f ? json_get(f, "name") : NULL;
        if (!name || name->type != JSON_STRING)
            return cx_error("option 'tool_choice' object must be {\"type\": \"function\", \"function\": {\"name\": ...}}");
        co->tool_choice = name->u.str.s;
        return 0;
    }
    if (v->type != JSON_STRING) return cx_error("option 'tool_choice' must be \"auto\", \"none\", \"required\" or a function name");
    co->tool_choice = v->u.str.s;
    return 0;
}

int options_parse(const json_value *opts, cx_call_options *co) {
    memset(co, 0, sizeof *co);
    sampler_default_params(&co->gen.sampling);
    co->gen.max_tokens = 512;
    if (!opts) return 0;
    if (opts->type != JSON_OBJECT) return cx_error("options must be a JSON object");
    cx_sampler_params *sp = &co->gen.sampling;
    double max_tokens = co->gen.max_tokens, temp = sp->temperature, top_p = sp->top_p, top_k = sp->top_k,
           min_p = sp->min_p, rep = sp->repetition_penalty, seed = -1, th = 0.0, n_ctx = 0;
    if (opt_int(opts, "max_tokens", 1, 1 << 24, &max_tokens) || opt_number(opts, "temperature", 0, 100, &temp) ||
        opt_number(opts, "top_p", 0, 1, &top_p) || opt_int(opts, "top_k", 0, 1 << 24, &top_k) ||
        opt_number(opts, "min_p", 0, 1, &min_p) || opt_number(opts, "repetition_penalty", 1e-3, 100, &rep) ||
        opt_int(opts, "seed", 0, 9007199254740991.0, &seed) ||
        opt_number(opts, "cloud_handoff_threshold", 0, 1, &th) || opt_int(opts, "n_ctx", 16, 1 << 20, &n_ctx) ||
        parse_stops(opts, co) || parse_tool_choice(opts, co))
        return -1;
    co->gen.max_tokens = (int)max_tokens;
    sp->temperature = (float)temp;
    sp->top_p = (float)top_p;
    sp->top_k = (int32_t)top_k;
    sp->min_p = (float)min_p;
    sp->repetition_penalty = (float)rep;
    if (seed >= 0) {
        sp->seed = (uint64_t)seed;
        sp->has_seed = true;
    }
    co->gen.handoff_threshold = (float)th;
    co->n_ctx = (int)n_ctx;
    return 0;
}

void options_free(cx_call_options *co) {
    free(co->gen.stop);
    free(co->gen.stop_len);
}
