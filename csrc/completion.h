/* One completion call end to end: options, prompt (template or raw text),
 * generation with prefix reuse, cloud handoff, and the response JSON. */
#ifndef CACTUS_COMPLETION_H
#define CACTUS_COMPLETION_H

#include "handle.h"
#include "json.h"

/* raw_prompt != NULL: a text completion (messages_json and tools_json are
 * ignored). Returns a CACTUS_* code; buf always gets the response JSON. */
int completion_run(cx_handle *h, const char *raw_prompt, const char *messages_json, const char *tools_json,
                   const char *options_json, char *buf, size_t size, cactus_token_callback cb, void *user_data,
                   double t_start);

/* Parses an argument's JSON; NULL + cx_error naming the argument. */
json_doc *completion_parse_json(const char *what, const char *text);

#endif
