/* Cloud handoff in C without network code: the OpenAI chat-completions
 * request handed to the embedder's handler, and its reply parsed back. */
#ifndef CACTUS_CLOUD_H
#define CACTUS_CLOUD_H

#include "json.h"
#include "options.h"
#include "util.h"

/* {"messages": [...], "max_tokens", "temperature", "top_p", "stop"?, "seed"?, "tools"?, "tool_choice"?} */
void cloud_build_request(const json_value *messages, const json_value *tools, const cx_call_options *co, strbuf *out);

/* Reads an OpenAI chat.completion object: the first choice's content into
 * `text` and its tool_calls into `calls` as [{"name", "arguments": {...}}].
 * -1 + cx_error when the reply is not such an object. */
int cloud_parse_reply(const char *reply, size_t len, strbuf *text, strbuf *calls);

#endif
