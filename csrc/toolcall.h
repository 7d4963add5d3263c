/* Tool calls in generated text: each family's call syntax parsed into
 * OpenAI-style function_calls, and the markup removed from the response. */
#ifndef CACTUS_TOOLCALL_H
#define CACTUS_TOOLCALL_H

#include <stdbool.h>
#include <stddef.h>

#include "chat.h"
#include "json.h"
#include "util.h"

/* Parses `text` (a whole generated answer). Appends to `response` the text
 * with every recognised call removed (trimmed as the family's templates
 * expect), and to `calls` a JSON array `[{"name": "...", "arguments": {...}}]`
 * (`[]` when none). Arguments are typed by the matching tool's JSON Schema
 * in `tools` (may be NULL): a number stays a number, also from pythonic
 * calls. Malformed or partial calls never fail: they stay in the response.
 * Returns the number of calls, or -1 with cx_error on allocation failure. */
int toolcall_parse(chat_family fam, const char *text, size_t len, const json_value *tools, strbuf *response,
                   strbuf *calls);

/* For streaming: the length of the prefix of `text` that can be shown now,
 * i.e. up to the first place where call markup starts or may start (a
 * partial marker at the end is held back). */
size_t toolcall_stream_safe(chat_family fam, const char *text, size_t len);

#endif
