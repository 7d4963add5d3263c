/* Chat templates: a conversation (OpenAI-style messages JSON, optional
 * tools) rendered to the exact prompt text a family was trained on. The
 * family is detected once from the GGUF's tokenizer.chat_template. Each
 * family reproduces, byte for byte, what transformers' apply_chat_template
 * renders from the real Jinja template (see tests/test_chat_templates.py). */
#ifndef CACTUS_CHAT_H
#define CACTUS_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "json.h"
#include "util.h"

typedef enum {
    CHAT_CHATML = 0,  /* plain ChatML <|im_start|>role\n...<|im_end|>\n (SmolLM, unknown templates); no tools */
    CHAT_LLAMA3,      /* Llama 3.1 / 3.3: system preamble dated "26 Jul 2024", tools in the first user turn */
    CHAT_LFM2,        /* LiquidAI LFM2: ChatML + <|tool_list_start|> / <|tool_call_start|> */
    CHAT_GEMMA,       /* Gemma 2 / 3: <start_of_turn>, `model` role, system merged into the first user turn */
    CHAT_PHI3,        /* Phi-3 / 3.5: <|user|> ... <|end|> */
    CHAT_MISTRAL,     /* Mistral Nemo: [INST], [AVAILABLE_TOOLS], [TOOL_CALLS], [TOOL_RESULTS] */
    CHAT_QWEN25,      /* Qwen 2.5: ChatML, default system prompt, <tool_call> JSON */
    CHAT_QWEN3,       /* Qwen 3: ChatML, <think> kept only after the last user query */
    CHAT_HERMES,      /* Hermes 2 Pro / Hermes 3 tool_use: ChatML + Python-typed <tools> signatures */
    CHAT_LLAMA32,     /* Llama 3.2: like 3.1, dated today (strftime_now) */
    CHAT_LLAMA30,     /* Llama 3 (3.0): headers only, no system preamble */
    CHAT_SMOLLM2,     /* SmolLM2: plain ChatML with a default system prompt */
    CHAT_DEEPSEEK_R1, /* DeepSeek R1 distills: <｜User｜> / <｜Assistant｜> */
    CHAT_CHATML_BOS,  /* plain ChatML after the BOS text (Hermes 2 Pro / 3 default, LFM2 1.2B, Bielik) */
    CHAT_N_FAMILIES
} chat_family;

/* Detects the family from the template text and the architecture (either may
 * be NULL). An unknown template falls back to ChatML with a log warning. */
chat_family chat_detect(const char *template_text, const char *arch);
const char *chat_family_name(chat_family f);

/* The family whose tool-call output format f's models write, among the six
 * the tool-call parser and grammar know: CHAT_CHATML for every <tool_call>
 * JSON dialect (Qwen, Hermes, SmolLM2, plain ChatML), CHAT_LLAMA3 for every Llama 3
 * version; other families map to themselves. */
chat_family chat_tool_family(chat_family f);

/* Checks a messages array: non-empty, objects with a known role
 * (system|user|assistant|tool), content a string, null or an array of
 * {"type":"text","text":...} parts, well-formed tool_calls; at most
 * CACTUS_MAX_MESSAGES entries. -1 + cx_error. */
int chat_validate(const json_value *messages);

/* Checks an OpenAI tools array: at most CACTUS_MAX_TOOLS entries, each
 * {"type": "function"?, "function": {"name": non-empty, "parameters": object
 * or null?}}. What completion and cactus_render_chat both accept, so a
 * rendered prompt is one a completion could have used. -1 + cx_error. */
int chat_validate_tools(const json_value *tools);

/* Appends the prompt for `messages` (validated) and `tools` (an OpenAI tools
 * array, or NULL) to out. bos/eos are the model's special token texts (NULL
 * when it has none). *bos_rendered tells whether the text starts with the BOS
 * text, so the tokenizer must not add another. -1 + cx_error on failure. */
int chat_render(chat_family fam, const json_value *messages, const json_value *tools, bool add_generation_prompt,
                const char *bos, const char *eos, strbuf *out, bool *bos_rendered);

#endif
