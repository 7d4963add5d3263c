/* Private to the chat_*.c files: a validated conversation in a shape the
 * per-family renderers can read without re-checking JSON types, plus the
 * text helpers that reproduce what Jinja / Python do to strings (json.dumps
 * spacing, str.strip, str.split) so the prompts match the real templates. */
#ifndef CACTUS_CHAT_INTERNAL_H
#define CACTUS_CHAT_INTERNAL_H

#include <string.h>

#include "chat.h"

/* One tool call of an assistant message. */
typedef struct {
    const json_value *fn;        /* the "function" object, or the call itself in the flat {name, arguments} shape */
    const char *name;
    size_t name_len;
    const json_value *args;      /* an object when the given arguments were an object or a JSON-object string */
    const json_value *args_given; /* as given: an object or a string */
    const char *id;              /* NULL when absent */
    size_t id_len;
    const char *type;            /* NULL when absent */
} chat_call;

typedef struct {
    const json_value *obj;       /* the message as given */
    const char *role;            /* system | user | assistant | tool */
    const char *text;            /* content as one string: text parts concatenated, "" for null */
    size_t len;
    bool null_content;           /* content was null or absent */
    bool has_calls;              /* "tool_calls" is an array (possibly empty); null counts as absent */
    chat_call *calls;
    size_t n_calls;
    const char *reasoning;       /* reasoning_content when a string, else NULL */
    size_t reasoning_len;
    const char *tool_call_id;    /* NULL when absent */
    size_t tool_call_id_len;
} chat_msg;

typedef struct {
    const chat_msg *msgs;
    size_t n;
    const json_value *tools;     /* a validated array, or NULL when absent / null */
    bool add_generation_prompt;
    const char *bos, *eos;       /* "" when the model has none (Jinja renders undefined as "") */
    strbuf *out;
} chat_ctx;

/* Renderers, one per family (or group of close variants). 0, or -1 + cx_error. */
int chat_render_chatml(const chat_ctx *c, chat_family fam); /* CHATML, SMOLLM2, QWEN25, QWEN3 */
int chat_render_hermes(const chat_ctx *c);
int chat_render_lfm2(const chat_ctx *c);
int chat_render_llama3(const chat_ctx *c, chat_family fam);  /* LLAMA30, LLAMA3, LLAMA32 */
int chat_render_gemma(const chat_ctx *c);
int chat_render_phi3(const chat_ctx *c);
int chat_render_mistral(const chat_ctx *c);
int chat_render_deepseek_r1(const chat_ctx *c);

/* ---- text helpers (chat_text.c) ---- */

static inline bool chat_role_is(const chat_msg *m, const char *role) { return m && !strcmp(m->role, role); }
static inline void chat_put(const chat_ctx *c, const char *s, size_t n) { sb_append(c->out, s, n); }
static inline void chat_puts(const chat_ctx *c, const char *s) { sb_puts(c->out, s); }

/* Python's json.dumps(v, ensure_ascii=False[, indent=indent]) as transformers' tojson filter emits it:
 * ", " and ": " separators (",", ": " and newlines when indent >= 0), keys in the given order, a key
 * given twice kept at its first place with its last value (a Python dict), floats as repr(). */
void pyjson_write(strbuf *sb, const json_value *v, int indent);
void pyjson_write_string(strbuf *sb, const char *s, size_t n);
/* An object's members as a Python dict iterates them: false for a member whose key appeared earlier. */
bool pyjson_member_first(const json_value *obj, size_t i);
/* The value a Python dict holds for member i's key: the last one given. */
const json_value *pyjson_member_value(const json_value *obj, size_t i);
/* str(x) in Python for a scalar (True, None, 1.5, text); containers as JSON. */
void py_str(strbuf *sb, const json_value *v);

/* Python str.strip() with no argument (Unicode whitespace), on UTF-8: [*b, *e) is what remains. */
void py_strip(const char *s, size_t n, size_t *b, size_t *e);
/* str.strip / lstrip / rstrip of one ASCII character. */
void strip_char(const char *s, size_t n, char ch, bool left, bool right, size_t *b, size_t *e);
/* First / last occurrence of needle in s[0..n); NULL when absent. */
const char *text_find(const char *s, size_t n, const char *needle);
const char *text_rfind(const char *s, size_t n, const char *needle);
bool text_starts(const char *s, size_t n, const char *prefix);
bool text_ends(const char *s, size_t n, const char *suffix);

/* Appends s[0..n) trimmed like Jinja's |trim filter. */
void put_trimmed(const chat_ctx *c, const char *s, size_t n);

#endif
