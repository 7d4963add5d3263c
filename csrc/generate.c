/* The completion loop (see generate.h). */
#include "generate.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "toolcall.h"

/* Text assembly for streaming: raw token bytes gather in `pending` until
 * they form whole UTF-8 characters, which move to `text` (invalid bytes
 * become U+FFFD), so every piece handed out is whole, valid UTF-8. */
typedef struct {
    strbuf pending;
    size_t emitted;     /* bytes of r->text already given to the callback */
    strbuf piece;       /* NUL-terminated copy handed to the callback */
    size_t stop_scan;   /* where the next stop-sequence search starts */
    int32_t last_id;    /* the last token handed out, for the final flush */
} streamer;

/* > 0: a whole valid character of that length; 0: an incomplete but
 * possibly valid prefix; -1: invalid at the first byte. */
static int utf8_classify(const unsigned char *s, size_t n) {
    size_t whole = utf8_valid_prefix((const char *)s, n);
    if (whole > 0) {
        size_t one = utf8_valid_prefix((const char *)s, s[0] < 0x80 ? 1 : s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : 4);
        return one ? (int)one : 1;
    }
    int need = s[0] >= 0xC2 && s[0] <= 0xDF ? 2 : s[0] >= 0xE0 && s[0] <= 0xEF ? 3 : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : 0;
    if (!need || n >= (size_t)need) return -1;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return -1;
    return 0; /* a truncated character: wait for more bytes */
}

static void drain_pending(streamer *st, strbuf *text, bool final) {
    const unsigned char *p = (const unsigned char *)st->pending.data;
    size_t n = st->pending.len, i = 0;
    while (i < n) {
        int c = utf8_classify(p + i, n - i);
        if (c > 0) {
            sb_append(text, (const char *)p + i, (size_t)c);
            i += (size_t)c;
        } else if (c == 0 && !final) {
            break;
        } else {
            sb_puts(text, "\xEF\xBF\xBD");
            i += 1;
        }
    }
    if (n > i) memmove(st->pending.data, st->pending.data + i, n - i); /* data is NULL while empty */
    st->pending.len = n - i;
}

/* Earliest match of any stop sequence in text[from..]; -1 when none. */
static long find_stop(const cx_gen_options *o, const strbuf *text, size_t from) {
    long best = -1;
    for (int k = 0; k < o->n_stop; k++) {
        size_t L = o->stop_len[k];
        for (size_t pos = from; pos + L <= text->len; pos++) {
            if (memcmp(text->data + pos, o->stop[k], L) == 0) {
                if (best < 0 || (long)pos < best) best = (long)pos;
                break;
            }
        }
    }
    return best;
}

/* Length of the longest suffix of text that is a proper prefix of a stop
 * sequence: those bytes may still become a stop and are held back. */
static size_t holdback(const cx_gen_options *o, const strbuf *text) {
    size_t best = 0;
    for (int k = 0; k < o->n_stop; k++) {
        size_t L = o->stop_len[k];
        for (size_t h = L - 1; h > best; h--)
            if (h <= text->len && memcmp(text->data + text->len - h, o->stop[k], h) == 0) {
                best = h;
                break;
            }
    }
    return best;
}

static size_t max_stop_len(const cx_gen_options *o) {
    size_t m = 0;
    for (int k = 0; k < o->n_stop; k++)
        if (o->stop_len[k] > m) m = o->stop_len[k];
    return m;
}

/* Hands text[emitted..upto) to the callback, once per token even when empty
 * (id < 0: the final flush, only called when it carries text). */
static void emit(streamer *st, strbuf *text, size_t upto, int32_t id, cactus_token_callback cb, void *ud) {
    if (upto < st->emitted) upto = st->emitted;
    if (id < 0 && upto == st->emitted) return;
    if (cb) {
        sb_clear(&st->piece);
        sb_append(&st->piece, text->data + st->emitted, upto - st->emitted);
        sb_puts(&st->piece, "");
        if (!st->piece.failed) cb(st->piece.data, (uint32_t)(id < 0 ? st->last_id : id), ud);
    }
    if (id >= 0) st->last_id = id;
    st->emitted = upto;
}

/* How much of the text may be shown now: not what may still become a stop
 * sequence, nor tool-call markup (with the whitespace before it, which the
 * parser trims). */
static size_t streamable(const streamer *st, const cx_gen_options *o, const strbuf *text) {
    size_t upto = text->len - holdback(o, text);
    if (o->parse_tools) {
        size_t safe = toolcall_stream_safe(o->fam, text->data, text->len);
        while (safe > st->emitted && isspace((unsigned char)text->data[safe - 1])) safe--;
        if (safe < upto) upto = safe;
    }
    return upto;
}

/* Adds one token's text; returns true when a stop sequence ended the answer. */
static bool push_token(streamer *st, const cx_session *s, const cx_gen_options *o, cx_gen_result *r, int32_t id,
                       cactus_token_callback cb, void *ud) {
    char buf[256];
    /* Control tokens are invisible, except call markers (<|tool_call_start|>,
     * <|python_tag|>, ...) that the tool-call parser must see. */
    bool special = o->parse_tools && tok_is_control(s->m->tok, id);
    int n = tok_piece(s->m->tok, id, special, buf, sizeof buf);
    if (n > (int)sizeof buf) n = (int)sizeof buf; /* no real token is this long; keep what fits */
    if (n > 0) sb_append(&st->pending, buf, (size_t)n);
    drain_pending(st, &r->text, false);
    long at = find_stop(o, &r->text, st->stop_scan);
    if (at >= 0) {
        r->text.len = (size_t)at;
        r->text.data[at] = 0;
        emit(st, &r->text, r->text.len, id, cb, ud);
        return true;
    }
    size_t ml = max_stop_len(o);
    st->stop_scan = r->text.len > ml ? r->text.len - ml + 1 : 0;
    emit(st, &r->text, streamable(st, o, &r->text), id, cb, ud);
    return false;
}

static int prefill(cx_session *s, const int32_t *prompt, size_t n_prompt, cx_gen_result *r) {
    size_t common = 0;
    while (common < s->history.n && common < n_prompt && s->history.v[common] == prompt[common]) common++;
    if (common == n_prompt) common--; /* the last prompt token is re-evaluated for its logits */
    session_truncate(s, common);
    r->prefill_tokens = (int)(n_prompt - common);
    return session_eval(s, prompt + common, n_prompt - common, NULL);
}

typedef struct {
    double sum, window_sum;
    float window[CX_CONF_WINDOW];
    float last_window;
} conf_track;

struct cx_gen {
    cx_session *s;
    const cx_gen_options *o;
    cactus_token_callback cb;
    void *ud;
    atomic_bool *cancel;
    double t_start, t_first;
    cx_sampler smp;
    streamer st;
    conf_track ct;
    bool done;
    cx_gen_result r;
};

static void track_confidence(conf_track *ct, cx_gen_result *r, float c) {
    int i = r->decode_tokens; /* index of this token, already counted */
    if (i == 1) r->first_confidence = c;
    ct->sum += c;
    ct->window_sum += c - (i > CX_CONF_WINDOW ? ct->window[(i - 1) % CX_CONF_WINDOW] : 0.0f);
    ct->window[(i - 1) % CX_CONF_WINDOW] = c;
    if (i >= CX_CONF_WINDOW) {
        ct->last_window = (float)(ct->window_sum / CX_CONF_WINDOW);
        if (ct->last_window < r->min_window_confidence) r->min_window_confidence = ct->last_window;
    }
}

/* The early handoff signals: the first token, or the latest window. */
static bool low_confidence_now(const cx_gen *g) {
    float th = g->o->handoff_threshold;
    if (g->r.decode_tokens == 1 && g->r.first_confidence < th) return true;
    return g->r.decode_tokens >= CX_CONF_WINDOW && g->ct.last_window < th;
}

cx_gen *gen_new(cx_session *s, const cx_gen_options *o, cactus_token_callback cb, void *user_data,
                atomic_bool *cancel, double t_start) {
    cx_gen *g = calloc(1, sizeof *g);
    if (!g) {
        cx_error("out of memory");
        return NULL;
    }
    if (sampler_init(&g->smp, s->m->hp.n_vocab, &o->sampling)) {
        free(g);
        return NULL;
    }
    g->s = s;
    g->o = o;
    g->cb = cb;
    g->ud = user_data;
    g->cancel = cancel;
    g->t_start = t_start;
    g->r.min_window_confidence = 1.0f;
    g->r.finish_reason = "length";
    sb_puts(&g->r.text, "");
    return g;
}

void gen_free(cx_gen *g) {
    if (!g) return;
    sb_free(&g->st.pending);
    sb_free(&g->st.piece);
    sb_free(&g->r.text);
    sb_free(&g->r.calls);
    sampler_free(&g->smp);
    free(g);
}

cx_gen_result *gen_result(cx_gen *g) { return &g->r; }

int gen_prefill(cx_gen *g, const int32_t *prompt, size_t n_prompt) {
    cx_session *s = g->s;
    if (n_prompt == 0) return cx_error("the prompt is empty");
    if (n_prompt > (size_t)s->n_ctx) return cx_error("the prompt has %zu tokens but the context holds %d", n_prompt, s->n_ctx);
    g->r.prompt_tokens = (int)n_prompt;
    double t0 = cx_now_ms();
    if (prefill(s, prompt, n_prompt, &g->r)) return -1;
    g->r.prefill_ms = cx_now_ms() - t0;
    return 0;
}

/* One step: sample, account, stream, evaluate. Returns 1 when the answer
 * ended, 0 to go on, -1 on error. */
static int decode_step(cx_gen *g) {
    cx_session *s = g->s;
    cx_gen_result *r = &g->r;
    if (g->cancel && atomic_load(g->cancel)) {
        r->finish_reason = "cancelled";
        return 1;
    }
    int32_t n_vocab = s->m->hp.n_vocab;
    float conf = sampler_confidence(s->logits, n_vocab); /* of the model's own distribution, before any mask */
    if (g->o->grammar) grammar_apply(g->o->grammar, s->logits, n_vocab);
    size_t n_recent = s->history.n < 64 ? s->history.n : 64;
    int32_t id = sampler_sample(&g->smp, s->logits, s->history.v + s->history.n - n_recent, (int)n_recent);
    if (g->o->grammar) grammar_accept(g->o->grammar, id);
    r->decode_tokens++;
    track_confidence(&g->ct, r, conf);
    if (r->decode_tokens == 1) r->ttft_ms = (g->t_first = cx_now_ms()) - g->t_start;
    if (tok_is_eog(s->m->tok, id)) {
        r->finish_reason = "stop";
        return 1;
    }
    if (push_token(&g->st, s, g->o, r, id, g->cb, g->ud)) {
        r->finish_reason = "stop";
        g->st.pending.len = 0; /* bytes after the stop sequence are not part of the answer */
        return 1;
    }
    if (r->decode_tokens >= g->o->max_tokens) return 1;
    if (s->history.n >= (size_t)s->n_ctx) return 1; /* the context is full: finish as "length" */
    return session_eval(s, &id, 1, NULL) ? -1 : 0;
}

/* Replaces the text by the parser's response (calls removed). The streamed
 * prefix stays as it was streamed: only leading whitespace may differ. */
static int extract_tool_calls(cx_gen *g) {
    cx_gen_result *r = &g->r;
    strbuf clean;
    sb_init(&clean);
    int n = toolcall_parse(g->o->fam, r->text.data, r->text.len, g->o->tools, &clean, &r->calls);
    if (n < 0) {
        sb_free(&clean);
        return -1;
    }
    size_t lead = 0, shown = g->st.emitted;
    while (lead < shown && isspace((unsigned char)r->text.data[lead])) lead++;
    bool keeps_prefix = clean.len >= shown - lead && memcmp(clean.data, r->text.data + lead, shown - lead) == 0;
    if (!keeps_prefix) {
        cx_log(CX_LOG_WARN, "tool-call parse changed streamed text; keeping the raw answer");
        sb_clear(&r->calls);
    }
    if (keeps_prefix) {
        r->text.len = lead; /* the streamed leading whitespace, then the parsed response */
        sb_append(&r->text, clean.data, clean.len);
        r->n_calls = n;
        if (n > 0) r->finish_reason = "tool_calls";
    }
    sb_free(&clean);
    return 0;
}

static void finish(cx_gen *g) {
    cx_gen_result *r = &g->r;
    drain_pending(&g->st, &r->text, true);
    if (g->o->parse_tools && extract_tool_calls(g)) r->text.failed = true;
    emit(&g->st, &r->text, r->text.len, -1, g->cb, g->ud);
    r->confidence = r->decode_tokens ? (float)(g->ct.sum / r->decode_tokens) : 0.0f;
    if (r->decode_tokens && r->decode_tokens < CX_CONF_WINDOW) r->min_window_confidence = r->confidence;
    r->decode_ms = r->decode_tokens ? cx_now_ms() - g->t_first : 0.0;
    g->done = true;
}

int gen_decode(cx_gen *g, bool allow_handoff) {
    bool watch = allow_handoff && g->o->handoff_threshold > 0.0f;
    while (!g->done && g->r.decode_tokens < g->o->max_tokens) {
        int rc = decode_step(g);
        if (rc < 0) return -1;
        if (rc > 0) break;
        if (watch && low_confidence_now(g)) return GEN_HANDOFF;
    }
    if (!g->done) finish(g);
    if (g->r.text.failed) return cx_error("out of memory building the response");
    if (watch && g->r.confidence < g->o->handoff_threshold) return GEN_HANDOFF;
    return 0;
}
