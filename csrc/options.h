/* Completion options parsed from options_json. */
#ifndef CACTUS_OPTIONS_H
#define CACTUS_OPTIONS_H

#include "generate.h"
#include "json.h"

typedef struct {
    cx_gen_options gen;
    int n_ctx;               /* 0: keep the session's context size */
    const char *tool_choice; /* "auto" (NULL), "none", "required" or a function name; points into the doc */
} cx_call_options;

/* `opts` may be NULL (all defaults). Strings point into the JSON document,
 * which must outlive the options. -1 + cx_error naming the key. */
int options_parse(const json_value *opts, cx_call_options *co);
void options_free(cx_call_options *co);

#endif
