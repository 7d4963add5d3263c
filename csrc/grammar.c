/* Constrained decoding (see grammar.h).
 *
 * The matcher state is a set of stacks over the rule graph. A stack is an
 * immutable linked list of frames (node, position) whose top is a terminal
 * (a literal, a byte class or a JSON string body); the frames below say how
 * to continue once the top is matched. Alternatives and optional parts give
 * several stacks; an empty stack means a whole call has been produced.
 * Because stacks are immutable, one byte step builds new tops that share
 * the old tails, and stepping back is free: that is what lets the mask walk
 * the vocabulary's prefix tree depth first, one byte per tree edge, with
 * each edge's states in a scratch arena that is rewound on the way up.
 *
 * Inside a free-text string almost every token is allowed; there the
 * plain ones (no quote, backslash or control byte, well-formed UTF-8) come
 * from a precomputed list ordered by length, and the walk skips every
 * subtree holding only those (a flag per tree node), so only the few
 * subtrees with quotes, backslashes, control bytes or stray UTF-8
 * continuation bytes are walked.
 * Masks are also remembered per state (a string's body repeats the same
 * state token after token), so most steps only copy a cached list. */
#include "grammar.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grammar_internal.h"

#define G_MAX_STACKS 512  /* stacks in one state; more are dropped (see add_stack) */
#define G_MAX_DEPTH 512   /* frames in one stack (nesting of open values) */
#define G_GUARD 1024      /* expansion steps in one closure */
#define G_MASK_SLOTS 16   /* remembered masks */

typedef struct gframe {
    const struct gframe *up;
    uint32_t node, idx, depth;
} gframe;

typedef struct {
    const gframe **v;
    uint32_t n;
    bool complete; /* the empty stack is in the set */
} gstate;

/* ---- arena with marks ---------------------------------------------------- */

typedef struct achunk {
    struct achunk *next;
    size_t cap, used;
    max_align_t data[];
} achunk;

typedef struct {
    achunk *head, *cur;
    bool failed;
} arena;

typedef struct {
    achunk *c;
    size_t used;
} amark;

static void *arena_alloc(arena *a, size_t n) {
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    while (a->cur && a->cur->cap - a->cur->used < n && a->cur->next) {
        a->cur = a->cur->next; /* chunks past a rewound mark are reused */
        a->cur->used = 0;
    }
    if (!a->cur || a->cur->cap - a->cur->used < n) {
        size_t cap = a->cur ? a->cur->cap * 2 : 64 * 1024;
        if (cap < n) cap = n;
        achunk *c = malloc(sizeof *c + cap);
        if (!c) return a->failed = true, NULL;
        c->next = NULL, c->cap = cap, c->used = 0;
        if (a->cur) a->cur->next = c;
        else a->head = c;
        a->cur = c;
    }
    void *p = (char *)a->cur->data + a->cur->used;
    a->cur->used += n;
    return p;
}

static amark arena_mark(const arena *a) { return (amark){a->cur, a->cur ? a->cur->used : 0}; }

static void arena_reset(arena *a, amark m) {
    a->cur = m.c ? m.c : a->head;
    if (a->cur) a->cur->used = m.c ? m.used : 0;
}

static void arena_free(arena *a) {
    for (achunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    a->head = a->cur = NULL;
}

/* ---- the grammar ----------------------------------------------------------- */

typedef struct {
    uint32_t *key; /* the state it was computed for (see state_key) */
    uint32_t key_len;
    int32_t *ids;
    uint32_t n_ids;
    bool deny; /* ids are the disallowed tokens (else the allowed ones) */
    uint64_t used;
} mask_entry;

struct cx_grammar {
    const tokenizer *tok;
    grules r;
    gvocab *v;
    int32_t n_vocab;
    arena scratch, keep[2];
    int keep_i;
    gstate cur;
    bool ended, dead;
    /* one step's output */
    const gframe *tmp[G_MAX_STACKS];
    uint32_t tmp_n;
    bool tmp_complete, literal_only;
    /* the walk */
    gstate *wstate;
    amark *wmark;
    uint8_t *allow;    /* [n_vocab] flags, all 0 between calls */
    int32_t *allowed;  /* the ids flagged, in the order found */
    uint32_t n_allowed;
    /* masks */
    mask_entry masks[G_MASK_SLOTS];
    uint64_t clock;
    uint32_t *key;
    size_t key_cap;
    float *saved;
    size_t saved_cap;
    char *tokbuf;
    size_t tokbuf_cap;
};

/* ---- stepping ---------------------------------------------------------------- */

static const gframe *mk(cx_grammar *g, uint32_t node, uint32_t idx, const gframe *up) {
    uint32_t depth = up ? up->depth + 1 : 1;
    if (depth > G_MAX_DEPTH) return NULL;
    gframe *f = arena_alloc(&g->scratch, sizeof *f);
    if (f) *f = (gframe){up, node, idx, depth};
    return f;
}

static bool stack_eq(const gframe *a, const gframe *b) {
    while (a != b) {
        if (!a || !b || a->node != b->node || a->idx != b->idx) return false;
        a = a->up, b = b->up;
    }
    return true;
}

/* Choices between many literals are tries (grammar_schema.c), so states
 * stay small; only a schema with hundreds of optional members could reach
 * the cap, and then the last of them cannot be chosen first. */
static void add_stack(cx_grammar *g, const gframe *f) {
    for (uint32_t i = 0; i < g->tmp_n; i++)
        if (stack_eq(g->tmp[i], f)) return;
    if (g->tmp_n < G_MAX_STACKS) g->tmp[g->tmp_n++] = f;
}

static bool is_terminal(uint8_t kind) { return kind == GN_LIT || kind == GN_CLASS || kind == GN_STR; }

static void enter(cx_grammar *g, uint32_t node, uint32_t idx, const gframe *up, int guard);

/* Continues with the frames below a finished part. */
static void resume(cx_grammar *g, const gframe *f, int guard) {
    if (!f) g->tmp_complete = true;
    else if (is_terminal(g->r.nodes[f->node].kind)) add_stack(g, f);
    else enter(g, f->node, f->idx, f->up, guard);
}

static void enter_seq(cx_grammar *g, const gnode *nd, uint32_t node, uint32_t idx, const gframe *up, int guard) {
    if (idx >= nd->n) {
        resume(g, up, guard + 1);
        return;
    }
    const gframe *next = up;
    if (idx + 1 < nd->n && !(next = mk(g, node, idx + 1, up))) return; /* the last child continues with `up` itself */
    enter(g, g->r.kids[nd->a + idx], 0, next, guard + 1);
}

static void enter_rep(cx_grammar *g, const gnode *nd, uint32_t node, uint32_t count, const gframe *up, int guard) {
    if (nd->max < 0 || count < (uint32_t)nd->max) {
        /* Past the minimum an unbounded count no longer matters: keeping it
         * at the minimum lets equal states compare (and cache) equal. */
        uint32_t c = nd->max < 0 && count + 1 > nd->n ? nd->n : count + 1;
        const gframe *next = mk(g, node, c, up);
        if (next) enter(g, nd->a, 0, next, guard + 1);
    }
    if (count >= nd->n) resume(g, up, guard + 1);
}

/* Expands "match `node` from `idx`, then continue with `up`" to terminal tops. */
static void enter(cx_grammar *g, uint32_t node, uint32_t idx, const gframe *up, int guard) {
    if (guard > G_GUARD) return;
    const gnode *nd = &g->r.nodes[node];
    switch (nd->kind) {
    case GN_SEQ: enter_seq(g, nd, node, idx, up, guard); break;
    case GN_REP: enter_rep(g, nd, node, idx, up, guard); break;
    case GN_ALT:
        for (uint32_t i = 0; i < nd->n; i++) enter(g, g->r.kids[nd->a + i], 0, up, guard + 1);
        break;
    default: {
        const gframe *f = mk(g, node, idx, up);
        if (f) add_stack(g, f);
    }
    }
}

static void advance_str(cx_grammar *g, const gframe *f, const gnode *nd, uint8_t b) {
    uint32_t sub = f->idx & 15, count = f->idx >> 4;
    bool done;
    int ns = gstr_step((int)sub, b, &done);
    if (ns == STR_REJECT) return;
    if (ns == STR_CLOSE) {
        if (count >= nd->n) resume(g, f->up, 0);
        return;
    }
    if (sub == STR_CHAR && nd->max >= 0 && count >= (uint32_t)nd->max) return; /* no room for another character */
    if (done && !(nd->max < 0 && count >= nd->n)) count++;
    const gframe *nf = mk(g, f->node, count << 4 | (uint32_t)ns, f->up);
    if (nf) add_stack(g, nf);
}

/* Moves one terminal top over byte b. */
static void advance(cx_grammar *g, const gframe *f, uint8_t b) {
    const gnode *nd = &g->r.nodes[f->node];
    if (nd->kind == GN_LIT) {
        if ((uint8_t)g->r.bytes[nd->a + f->idx] != b) return;
        if (f->idx + 1 == nd->n) {
            resume(g, f->up, 0);
            return;
        }
        const gframe *nf = mk(g, f->node, f->idx + 1, f->up);
        if (nf) add_stack(g, nf);
    } else if (g->literal_only) {
        return; /* control tokens only spell out literal markup */
    } else if (nd->kind == GN_CLASS) {
        if (g->r.classes[nd->a][b >> 5] >> (b & 31) & 1) resume(g, f->up, 0);
    } else {
        advance_str(g, f, nd, b);
    }
}

static bool collect_state(cx_grammar *g, gstate *out) {
    out->complete = g->tmp_complete;
    out->n = g->tmp_n;
    out->v = NULL;
    if (g->tmp_n) {
        out->v = arena_alloc(&g->scratch, sizeof *out->v * g->tmp_n);
        if (!out->v) return out->n = 0, out->complete = false, false;
        memcpy(out->v, g->tmp, sizeof *out->v * g->tmp_n);
    }
    return out->n > 0 || out->complete;
}

/* The state after byte b; false when nothing survives. */
static bool step(cx_grammar *g, const gstate *in, uint8_t b, gstate *out) {
    g->tmp_n = 0;
    g->tmp_complete = false;
    for (uint32_t i = 0; i < in->n; i++) advance(g, in->v[i], b);
    return collect_state(g, out);
}

/* ---- keeping the current state ------------------------------------------------ */

static const gframe *copy_stack(arena *a, const gframe *f) {
    if (!f) return NULL;
    gframe *c = arena_alloc(a, sizeof *c);
    if (!c) return NULL;
    *c = *f;
    c->up = copy_stack(a, f->up);
    return (f->up && !c->up) ? NULL : c;
}

/* Copies `st` out of the scratch arena (where its new frames live) into
 * the other keep arena; then both the scratch and the old keep can go. */
static bool keep_state(cx_grammar *g, const gstate *st) {
    arena *a = &g->keep[1 - g->keep_i];
    arena_reset(a, (amark){NULL, 0});
    gstate n = {NULL, st->n, st->complete};
    if (st->n && !(n.v = arena_alloc(a, sizeof *n.v * st->n))) return false;
    for (uint32_t i = 0; i < st->n; i++)
        if (!(n.v[i] = copy_stack(a, st->v[i]))) return false;
    g->keep_i = 1 - g->keep_i;
    g->cur = n;
    arena_reset(&g->scratch, (amark){NULL, 0});
    return true;
}

/* ---- masks ----------------------------------------------------------------------- */

static void allow_id(cx_grammar *g, int32_t id) {
    if (g->allow[id]) return;
    g->allow[id] = 1;
    g->allowed[g->n_allowed++] = id;
}

static void allow_range(cx_grammar *g, uint32_t lo, uint32_t hi) {
    for (uint32_t k = lo; k < hi; k++) allow_id(g, g->v->sorted[k]);
}

/* When the state is a string body between characters and nothing else,
 * the room left in it (UINT32_MAX: unlimited); else 0. Then every plain
 * token that fits is allowed straight from the list by length, and the
 * walk only goes into subtrees holding other tokens. */
static uint32_t string_room(const cx_grammar *g, const gstate *st) {
    if (st->n != 1 || st->complete) return 0;
    const gframe *f = st->v[0];
    const gnode *nd = &g->r.nodes[f->node];
    if (nd->kind != GN_STR || (f->idx & 15) != STR_CHAR) return 0;
    if (nd->max < 0) return UINT32_MAX;
    return (uint32_t)nd->max - (f->idx >> 4);
}

static void allow_plain(cx_grammar *g, uint32_t room) {
    const gvocab *v = g->v;
    for (uint32_t k = 0; k < v->n_plain && v->plain_chars[k] <= room; k++) allow_id(g, v->plain_ids[k]);
}

/* Depth first over the prefix tree: a node's state is its parent's state
 * stepped over the node's byte; a dead state cuts the subtree. */
static void walk(cx_grammar *g) {
    const gv_node *nd = g->v->nodes;
    uint32_t room = string_room(g, &g->cur);
    amark base = arena_mark(&g->scratch);
    g->wstate[0] = g->cur;
    g->wmark[1] = base;
    for (uint32_t i = 1; i < g->v->n_nodes;) {
        uint32_t d = nd[i].depth, end = nd[i].end, first = end > i + 1 ? i + 1 : end;
        if (room && nd[i].plain) { /* done by allow_plain */
            i = end;
            continue;
        }
        arena_reset(&g->scratch, g->wmark[d]);
        if (!step(g, &g->wstate[d - 1], nd[i].byte, &g->wstate[d])) {
            i = end;
            continue;
        }
        allow_range(g, nd[i].lo, nd[first].lo); /* the tokens that end here */
        g->wmark[d + 1] = arena_mark(&g->scratch);
        i++;
    }
    arena_reset(&g->scratch, base);
}

/* Control tokens: their text must be literal markup the grammar expects. */
static void allow_special(cx_grammar *g) {
    const gvocab *v = g->v;
    amark base = arena_mark(&g->scratch);
    g->literal_only = true;
    for (uint32_t k = 0; k < v->n_special; k++) {
        gstate st = g->cur;
        bool ok = true;
        for (uint32_t i = v->special_off[k]; ok && i < v->special_off[k + 1]; i++)
            ok = step(g, &st, (uint8_t)v->special_text[i], &st);
        if (ok) allow_id(g, v->special[k]);
        arena_reset(&g->scratch, base);
    }
    g->literal_only = false;
}

static void allow_eog(cx_grammar *g) {
    for (uint32_t k = 0; k < g->v->n_eog; k++) allow_id(g, g->v->eog[k]);
}

/* The state as words, to find its remembered mask: per stack its frames
 * (node, position) from the top, then a separator. */
static uint32_t state_key(cx_grammar *g) {
    size_t need = 2;
    for (uint32_t i = 0; i < g->cur.n; i++) need += 2 * (size_t)g->cur.v[i]->depth + 1;
    if (need > g->key_cap) {
        uint32_t *k = realloc(g->key, need * sizeof *k);
        if (!k) return 0;
        g->key = k, g->key_cap = need;
    }
    uint32_t n = 0;
    g->key[n++] = g->cur.complete | (uint32_t)(g->ended || g->dead) << 1;
    g->key[n++] = g->cur.n;
    for (uint32_t i = 0; i < g->cur.n; i++) {
        for (const gframe *f = g->cur.v[i]; f; f = f->up) g->key[n++] = f->node, g->key[n++] = f->idx;
        g->key[n++] = UINT32_MAX;
    }
    return n;
}

static mask_entry *mask_find(cx_grammar *g, uint32_t key_len) {
    for (int i = 0; i < G_MASK_SLOTS; i++) {
        mask_entry *e = &g->masks[i];
        if (e->key && e->key_len == key_len && !memcmp(e->key, g->key, key_len * sizeof *g->key)) {
            e->used = ++g->clock;
            return e;
        }
    }
    return NULL;
}

static mask_entry *mask_slot(cx_grammar *g) {
    mask_entry *best = &g->masks[0];
    for (int i = 0; i < G_MASK_SLOTS; i++)
        if (g->masks[i].used < best->used) best = &g->masks[i];
    free(best->key);
    free(best->ids);
    memset(best, 0, sizeof *best);
    return best;
}

/* Stores the flagged ids, or when they are most of the vocabulary the
 * ones not flagged: whichever list is shorter. */
/* A cache slot keyed by the current state, with room for `cap` ids. */
static mask_entry *mask_entry_new(cx_grammar *g, uint32_t key_len, uint32_t cap, bool deny) {
    mask_entry *e = mask_slot(g);
    e->key = malloc(key_len * sizeof *e->key + 1);
    e->ids = malloc(cap * sizeof *e->ids + 1);
    if (!e->key || !e->ids) {
        free(e->key), free(e->ids);
        memset(e, 0, sizeof *e);
        return NULL;
    }
    memcpy(e->key, g->key, key_len * sizeof *e->key);
    e->key_len = key_len;
    e->deny = deny;
    return e;
}

static mask_entry *mask_store(cx_grammar *g, uint32_t key_len) {
    bool deny = g->n_allowed > (uint32_t)g->n_vocab / 2;
    uint32_t n = deny ? (uint32_t)g->n_vocab - g->n_allowed : g->n_allowed;
    mask_entry *e = mask_entry_new(g, key_len, n, deny);
    if (!e) return NULL;
    if (!deny && n) memcpy(e->ids, g->allowed, n * sizeof *e->ids);
    for (int32_t t = 0; deny && t < g->n_vocab; t++)
        if (!g->allow[t]) e->ids[e->n_ids++] = t;
    e->n_ids = n;
    e->used = ++g->clock;
    return e;
}

/* Inside a string with room for `room` characters, where the walk has
 * flagged only what lies outside the plain subtrees: the disallowed tokens
 * are those never shown, the unflagged non-plain, special and end ones,
 * and the plain ones too long to fit. No pass over the whole vocabulary. */
static mask_entry *mask_store_string(cx_grammar *g, uint32_t key_len, uint32_t room) {
    const gvocab *v = g->v;
    uint32_t fit = 0;
    while (fit < v->n_plain && v->plain_chars[fit] <= room) fit++;
    uint32_t cap = v->n_never + v->n_other + v->n_special + v->n_eog + (v->n_plain - fit);
    mask_entry *e = mask_entry_new(g, key_len, cap, true);
    if (!e) return NULL;
    for (uint32_t k = 0; k < v->n_never; k++) e->ids[e->n_ids++] = v->never[k];
    for (uint32_t k = fit; k < v->n_plain; k++) e->ids[e->n_ids++] = v->plain_ids[k];
    for (uint32_t k = 0; k < v->n_other; k++)
        if (!g->allow[v->other_ids[k]]) e->ids[e->n_ids++] = v->other_ids[k];
    for (uint32_t k = 0; k < v->n_special; k++)
        if (!g->allow[v->special[k]]) e->ids[e->n_ids++] = v->special[k];
    for (uint32_t k = 0; k < v->n_eog; k++)
        if (!g->allow[v->eog[k]]) e->ids[e->n_ids++] = v->eog[k];
    e->used = ++g->clock;
    return e;
}

static void compute_allow(cx_grammar *g) {
    if (!g->ended && !g->dead) {
        walk(g);
        allow_special(g);
    }
    if (g->cur.complete || g->ended || g->dead) allow_eog(g);
}

static void clear_allow(cx_grammar *g) {
    for (uint32_t k = 0; k < g->n_allowed; k++) g->allow[g->allowed[k]] = 0;
    g->n_allowed = 0;
}

static void apply_entry(cx_grammar *g, const mask_entry *e, float *logits, int32_t n_logits) {
    if (e->deny) {
        for (uint32_t k = 0; k < e->n_ids; k++)
            if (e->ids[k] < n_logits) logits[e->ids[k]] = -INFINITY;
    } else {
        if (e->n_ids > g->saved_cap) {
            float *s = realloc(g->saved, e->n_ids * sizeof *s);
            if (!s) return; /* out of memory: leave the logits as they are */
            g->saved = s, g->saved_cap = e->n_ids;
        }
        for (uint32_t k = 0; k < e->n_ids; k++) g->saved[k] = e->ids[k] < n_logits ? logits[e->ids[k]] : 0;
        for (int32_t t = 0; t < n_logits; t++) logits[t] = -INFINITY;
        for (uint32_t k = 0; k < e->n_ids; k++)
            if (e->ids[k] < n_logits) logits[e->ids[k]] = g->saved[k];
    }
    for (int32_t t = g->n_vocab; t < n_logits; t++) logits[t] = -INFINITY; /* padding past the vocabulary */
}

void grammar_apply(cx_grammar *g, float *logits, int32_t n_vocab) {
    if (!g || !logits || n_vocab <= 0) return;
    uint32_t key_len = state_key(g);
    mask_entry *e = key_len ? mask_find(g, key_len) : NULL;
    if (!e) {
        compute_allow(g);
        uint32_t room = g->ended || g->dead ? 0 : string_room(g, &g->cur);
        if (key_len) e = room ? mask_store_string(g, key_len, room) : mask_store(g, key_len);
        if (!e && room) allow_plain(g, room);
        if (!e) /* no memory for a list: straight from the flags */
            for (int32_t t = 0; t < n_vocab; t++)
                if (t >= g->n_vocab || !g->allow[t]) logits[t] = -INFINITY;
        clear_allow(g);
    }
    if (e) apply_entry(g, e, logits, n_vocab);
}

/* ---- accepting tokens ------------------------------------------------------------ */

static int token_bytes(cx_grammar *g, int32_t token, bool special) {
    int n = tok_piece(g->tok, token, special, g->tokbuf, g->tokbuf_cap);
    if (n > 0 && (size_t)n > g->tokbuf_cap) {
        char *b = realloc(g->tokbuf, (size_t)n);
        if (!b) return -1;
        g->tokbuf = b, g->tokbuf_cap = (size_t)n;
        n = tok_piece(g->tok, token, special, g->tokbuf, g->tokbuf_cap);
    }
    return n;
}

void grammar_accept(cx_grammar *g, int32_t token) {
    if (!g || g->ended || g->dead) return;
    if (tok_is_eog(g->tok, token)) {
        g->ended = true;
        return;
    }
    bool special = tok_is_control(g->tok, token);
    int n = token_bytes(g, token, special);
    if (n <= 0) return; /* shows nothing: the text, and so the state, stay */
    gstate st = g->cur;
    bool ok = true;
    g->literal_only = special;
    for (int i = 0; ok && i < n; i++) ok = step(g, &st, (uint8_t)g->tokbuf[i], &st);
    g->literal_only = false;
    if (!ok || !keep_state(g, &st)) {
        cx_log(CX_LOG_WARN, "grammar: token %d does not continue the tool call; ending it", (int)token);
        g->dead = true;
        g->cur = (gstate){NULL, 0, false};
        arena_reset(&g->scratch, (amark){NULL, 0});
    }
}

bool grammar_done(const cx_grammar *g) { return g && (g->ended || g->cur.complete); }

/* ---- life cycle ------------------------------------------------------------------ */

static bool start(cx_grammar *g) {
    g->tmp_n = 0;
    g->tmp_complete = false;
    enter(g, g->r.root, 0, NULL, 0);
    gstate st;
    return collect_state(g, &st) && keep_state(g, &st);
}

static bool alloc_buffers(cx_grammar *g) {
    g->n_vocab = tok_n_vocab(g->tok);
    g->allow = calloc((size_t)g->n_vocab + 1, 1);
    g->allowed = malloc(sizeof *g->allowed * ((size_t)g->n_vocab + 1));
    g->wstate = malloc(sizeof *g->wstate * (g->v->max_depth + 2));
    g->wmark = malloc(sizeof *g->wmark * (g->v->max_depth + 2));
    g->tokbuf_cap = 256;
    g->tokbuf = malloc(g->tokbuf_cap);
    return g->allow && g->allowed && g->wstate && g->wmark && g->tokbuf;
}

cx_grammar *grammar_new(const tokenizer *tok, chat_family fam, const json_value *tools, const char *tool_choice,
                        bool *unsupported) {
    bool unused;
    if (!unsupported) unsupported = &unused;
    *unsupported = false;
    if (!tok) return cx_error("grammar: no tokenizer"), NULL;
    cx_grammar *g = calloc(1, sizeof *g);
    if (!g) return cx_error("grammar: out of memory"), NULL;
    g->tok = tok;
    if (grules_build(&g->r, fam, tools, tool_choice, unsupported)) {
        grammar_free(g);
        return NULL;
    }
    if (!(g->v = gvocab_get(tok))) {
        grammar_free(g);
        return NULL;
    }
    if (!alloc_buffers(g) || !start(g)) {
        grammar_free(g);
        return cx_error("grammar: out of memory"), NULL;
    }
    return g;
}

void grammar_free(cx_grammar *g) {
    if (!g) return;
    grules_free(&g->r);
    gvocab_release(g->v);
    arena_free(&g->scratch);
    arena_free(&g->keep[0]);
    arena_free(&g->keep[1]);
    for (int i = 0; i < G_MASK_SLOTS; i++) free(g->masks[i].key), free(g->masks[i].ids);
    free(g->wstate);
    free(g->wmark);
    free(g->allow);
    free(g->allowed);
    free(g->key);
    free(g->saved);
    free(g->tokbuf);
    free(g);
}
