/* The completion loop: prefix reuse, batched prefill, then
 * sample -> detokenize -> stop-sequence match -> stream, until EOS, a stop
 * sequence, max_tokens, the context end or cactus_stop(). */
#ifndef CACTUS_GENERATE_H
#define CACTUS_GENERATE_H

#include <stdatomic.h>
#include <stdbool.h>

#include "grammar.h"
#include "include/cactus.h"
#include "sampler.h"
#include "session.h"
#include "util.h"

#define CX_CONF_WINDOW 8 /* tokens in the rolling confidence window */

typedef struct {
    int max_tokens;
    cx_sampler_params sampling;
    const char **stop;  /* stop sequences (UTF-8, non-empty) */
    size_t *stop_len;
    int n_stop;
    float handoff_threshold; /* 0: never hand off */
    /* Tool calls: parsed out of the answer in the family's syntax when
     * parse_tools; `grammar` (optional) constrains decoding to a call. */
    bool parse_tools;
    chat_family fam;
    const json_value *tools;
    cx_grammar *grammar;
} cx_gen_options;

typedef struct {
    strbuf text;                /* the response, valid UTF-8 */
    int prompt_tokens;          /* the whole prompt, cached prefix included */
    int prefill_tokens;         /* tokens actually evaluated for the prompt */
    int decode_tokens;          /* tokens sampled */
    double ttft_ms;             /* call start -> first token sampled */
    double prefill_ms, decode_ms;
    float confidence;           /* mean over sampled tokens */
    float first_confidence;     /* of the first sampled token */
    float min_window_confidence;/* lowest mean over CX_CONF_WINDOW consecutive tokens */
    const char *finish_reason;  /* "stop" | "length" | "cancelled" | "tool_calls" */
    strbuf calls;               /* function_calls JSON array when tools were parsed */
    int n_calls;
} cx_gen_result;

/* One completion on a session, as a resumable state machine so that a
 * cloud handoff can stop local decoding and resume it if the cloud fails. */
typedef struct cx_gen cx_gen;

#define GEN_HANDOFF 1 /* gen_decode: the confidence fell below the threshold */

/* `t_start` is the call's start (cx_now_ms) so time to first token includes
 * templating; `cancel` is polled before every token. NULL + cx_error. */
cx_gen *gen_new(cx_session *s, const cx_gen_options *o, cactus_token_callback cb, void *user_data,
                atomic_bool *cancel, double t_start);
void gen_free(cx_gen *g);
/* Reuses the longest cached prefix and evaluates the rest of the prompt. */
int gen_prefill(cx_gen *g, const int32_t *prompt, size_t n_prompt);
/* Decodes until the answer ends (0), or, with allow_handoff and a threshold
 * set, until the first token's or the rolling window's confidence falls
 * below it, or the finished answer's mean does (GEN_HANDOFF). Calling it
 * again resumes. -1 + cx_error on failure. */
int gen_decode(cx_gen *g, bool allow_handoff);
cx_gen_result *gen_result(cx_gen *g);

#endif
