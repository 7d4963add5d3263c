/* The C API from several threads at once (cactus.h: different handles may
 * be used from different threads; cactus_stop is safe from any thread):
 *
 *   - several handles, one per thread, generating at once: greedy answers
 *     equal the single-threaded ones, also with tool_choice "required"
 *     (the grammar's process-wide vocabulary cache, emptied meanwhile);
 *   - cactus_stop racing cactus_complete on the same handle: from inside
 *     the callback (ends after that token), from another thread at random
 *     moments, and before any call runs (a no-op);
 *   - cactus_destroy and cactus_init of other handles while one generates;
 *   - the last error is per thread.
 *
 * Worker threads record what they saw; only the main thread CHECKs. The
 * model path comes from CACTUS_TEST_MODEL (tests/test_c.py sets it).
 * tools/sanitize.sh --tsan builds this file with -fsanitize=thread. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cactus.h"
#include "check.h"
#include "grammar.h"
#include "json.h"

#define N_THREADS 4
#define N_PROMPTS 4
#define ROUNDS 2
#define TEXT_CAP 8192
#define BUF_SIZE (1 << 16)

static const char *g_path;

static const char *PROMPTS[N_PROMPTS] = {
    "[{\"role\":\"user\",\"content\":\"Hello there\"}]",
    "[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Tell me a story\"}]",
    ("[{\"role\":\"user\",\"content\":\"What is 2+2?\"},{\"role\":\"assistant\",\"content\":\"4\"},"
     "{\"role\":\"user\",\"content\":\"And 3+3?\"}]"),
    "[{\"role\":\"user\",\"content\":\"\xc3\xa9t\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80\"}]",
};
static const char *GREEDY = "{\"max_tokens\":24,\"temperature\":0}";
static const char *TOOLS =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"location\":{\"type\":\"string\",\"maxLength\":12},\"days\":{\"type\":\"integer\"}},"
    "\"required\":[\"location\",\"days\"]}}}]";
static const char *TOOL_OPTS = "{\"max_tokens\":64,\"temperature\":0,\"tool_choice\":\"required\"}";

/* One completion's outcome, as plain data (safe to compare across threads). */
typedef struct {
    int rc;
    bool success;
    char text[TEXT_CAP];
    char calls[TEXT_CAP];
    char finish[32];
    int decode_tokens;
} outcome;

static void copy_str(char *dst, size_t cap, const json_value *v) {
    dst[0] = 0;
    if (v && v->type == JSON_STRING) snprintf(dst, cap, "%.*s", (int)v->u.str.len, v->u.str.s);
}

static void parse_outcome(const char *buf, int rc, outcome *o) {
    memset(o, 0, sizeof *o);
    o->rc = rc;
    o->decode_tokens = -1;
    json_doc *d = json_parse(buf, strlen(buf), NULL, 0);
    if (!d) return;
    const json_value *r = json_root(d), *ok = json_get(r, "success"), *n = json_get(r, "decode_tokens");
    o->success = ok && ok->type == JSON_BOOL && ok->u.b;
    copy_str(o->text, sizeof o->text, json_get(r, "response"));
    copy_str(o->finish, sizeof o->finish, json_get(r, "finish_reason"));
    if (n && n->type == JSON_NUMBER) o->decode_tokens = (int)n->u.num.v;
    strbuf sb;
    sb_init(&sb);
    const json_value *calls = json_get(r, "function_calls");
    if (calls) json_write_value(&sb, calls);
    snprintf(o->calls, sizeof o->calls, "%s", sb.data ? sb.data : "");
    sb_free(&sb);
    json_free(d);
}

/* A fresh conversation each time, so an answer depends on its prompt only. */
static void complete(cactus_model_t m, const char *msgs, const char *opts, const char *tools, outcome *o,
                     cactus_token_callback cb, void *ud) {
    char *buf = malloc(BUF_SIZE);
    if (!buf) {
        memset(o, 0, sizeof *o);
        o->rc = CACTUS_ERR_NO_MEMORY;
        return;
    }
    cactus_reset(m);
    int rc = cactus_complete(m, msgs, buf, BUF_SIZE, opts, tools, cb, ud);
    parse_outcome(buf, rc, o);
    free(buf);
}

static bool same(const outcome *a, const outcome *b) {
    return a->rc == b->rc && a->success == b->success && !strcmp(a->text, b->text) && !strcmp(a->calls, b->calls) &&
           a->decode_tokens == b->decode_tokens;
}

static void sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* ---- a cold start: the first calls of the process, from several threads at once ------------ */

/* Process-wide lazy state (the kernel table, logging and environment
 * settings, the grammar's vocabulary cache) is first touched here by
 * several threads together, which is what ThreadSanitizer needs to see. */
typedef struct {
    bool ok;
    outcome o;
} cold;

static void *cold_main(void *p) {
    cold *c = p;
    cactus_model_t m = cactus_init(g_path, NULL, false);
    if (!m) return NULL;
    complete(m, PROMPTS[0], TOOL_OPTS, TOOLS, &c->o, NULL, NULL);
    c->ok = c->o.rc == CACTUS_OK;
    cactus_destroy(m);
    return NULL;
}

static void test_cold_start(void) {
    static cold c[N_THREADS];
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) CHECK(pthread_create(&th[i], NULL, cold_main, &c[i]) == 0);
    for (int i = 0; i < N_THREADS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < N_THREADS; i++) {
        CHECK_MSG(c[i].ok, "cold start thread %d failed (rc %d)", i, c[i].o.rc);
        CHECK_MSG(same(&c[i].o, &c[0].o), "cold start thread %d answered differently", i);
    }
}

/* ---- several handles at once ----------------------------------------------------------- */

static outcome g_ref[N_PROMPTS], g_tool_ref;

typedef struct {
    int index;
    bool init_ok;
    int runs, mismatches, tool_mismatches;
    outcome last_bad;
} worker;

static void *worker_main(void *p) {
    worker *w = p;
    cactus_model_t m = cactus_init(g_path, NULL, false);
    w->init_ok = m != NULL;
    if (!m) return NULL;
    static _Thread_local outcome o; /* large: kept off the thread's stack */
    for (int r = 0; r < ROUNDS; r++) {
        for (int k = 0; k < N_PROMPTS; k++) {
            int i = (k + w->index) % N_PROMPTS; /* each thread in its own order */
            complete(m, PROMPTS[i], GREEDY, NULL, &o, NULL, NULL);
            w->runs++;
            if (!same(&o, &g_ref[i])) w->mismatches++, w->last_bad = o;
        }
        complete(m, PROMPTS[0], TOOL_OPTS, TOOLS, &o, NULL, NULL);
        if (!same(&o, &g_tool_ref)) w->tool_mismatches++, w->last_bad = o;
    }
    cactus_destroy(m);
    return NULL;
}

static void test_parallel_handles(cactus_model_t m) {
    for (int i = 0; i < N_PROMPTS; i++) {
        complete(m, PROMPTS[i], GREEDY, NULL, &g_ref[i], NULL, NULL);
        CHECK_MSG(g_ref[i].rc == CACTUS_OK && g_ref[i].success && g_ref[i].decode_tokens > 0, "reference %d: rc %d",
                  i, g_ref[i].rc);
    }
    complete(m, PROMPTS[0], TOOL_OPTS, TOOLS, &g_tool_ref, NULL, NULL);
    /* The tiny random model may not finish the call in max_tokens; the grammar still steers it. */
    CHECK_MSG(g_tool_ref.rc == CACTUS_OK &&
                  (strstr(g_tool_ref.calls, "get_weather") != NULL || strstr(g_tool_ref.text, "get_weather") != NULL),
              "tool reference: rc %d calls %s text %s", g_tool_ref.rc, g_tool_ref.calls, g_tool_ref.text);

    static worker w[N_THREADS];
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        w[i].index = i;
        CHECK(pthread_create(&th[i], NULL, worker_main, &w[i]) == 0);
    }
    /* Meanwhile: empty the grammar's vocabulary cache now and then (an index
     * in use must stay alive until its last grammar is freed). */
    for (int i = 0; i < 50; i++) {
        grammar_cache_clear();
        sleep_us(2000);
    }
    for (int i = 0; i < N_THREADS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < N_THREADS; i++) {
        CHECK_MSG(w[i].init_ok, "thread %d: cactus_init failed", i);
        CHECK_EQ_INT(w[i].runs, ROUNDS * N_PROMPTS);
        CHECK_MSG(w[i].mismatches == 0 && w[i].tool_mismatches == 0,
                  "thread %d: %d answers and %d tool answers differ from single-threaded ones; last: rc %d \"%s\" %s",
                  i, w[i].mismatches, w[i].tool_mismatches, w[i].last_bad.rc, w[i].last_bad.text,
                  w[i].last_bad.calls);
    }
    grammar_cache_clear();
}

/* ---- cactus_stop racing cactus_complete ------------------------------------------------- */

typedef struct {
    cactus_model_t m;
    atomic_int tokens;
    atomic_bool started, stopped;
} stop_ctx;

/* Stops from inside the callback at the third token. */
static void stop_in_callback(const char *piece, uint32_t id, void *ud) {
    stop_ctx *c = ud;
    (void)piece;
    (void)id;
    if (atomic_fetch_add(&c->tokens, 1) + 1 == 3) cactus_stop(c->m);
}

/* Waits (in the callback, so generation cannot finish) until the other
 * thread has called cactus_stop. */
static void wait_for_stop(const char *piece, uint32_t id, void *ud) {
    stop_ctx *c = ud;
    (void)piece;
    (void)id;
    atomic_fetch_add(&c->tokens, 1);
    atomic_store(&c->started, true);
    for (int i = 0; i < 20000 && !atomic_load(&c->stopped); i++) sleep_us(100);
}

static void *stopper_main(void *p) {
    stop_ctx *c = p;
    while (!atomic_load(&c->started)) sleep_us(50);
    cactus_stop(c->m);
    atomic_store(&c->stopped, true);
    return NULL;
}

typedef struct {
    cactus_model_t m;
    atomic_bool done;
    long stops;
} random_stopper;

static void *random_stopper_main(void *p) {
    random_stopper *s = p;
    unsigned x = 12345;
    while (!atomic_load(&s->done)) {
        x = x * 1103515245u + 12345u;
        sleep_us((long)(x >> 16) % 3000);
        cactus_stop(s->m);
        s->stops++;
    }
    return NULL;
}

static void test_stop(cactus_model_t m) {
    static outcome o;
    const char *long_opts = "{\"max_tokens\":200,\"temperature\":0}";

    /* From the callback: the answer ends right after that token. */
    stop_ctx c = {.m = m};
    complete(m, PROMPTS[1], long_opts, NULL, &o, stop_in_callback, &c);
    CHECK(o.rc == CACTUS_OK && o.success);
    CHECK_EQ_INT(o.decode_tokens, 3);
    CHECK_EQ_STR(o.finish, "cancelled");

    /* From another thread while the generation is known to be running. */
    stop_ctx c2 = {.m = m};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, stopper_main, &c2) == 0);
    complete(m, PROMPTS[2], long_opts, NULL, &o, wait_for_stop, &c2);
    atomic_store(&c2.started, true); /* releases the stopper if no token ever came */
    pthread_join(th, NULL);
    CHECK(o.rc == CACTUS_OK && o.success);
    CHECK_EQ_INT(o.decode_tokens, 1);
    CHECK_EQ_STR(o.finish, "cancelled");

    /* Before any call: a no-op, the next answer is whole. */
    cactus_stop(m);
    cactus_stop(m);
    complete(m, PROMPTS[0], GREEDY, NULL, &o, NULL, NULL);
    CHECK_MSG(same(&o, &g_ref[0]), "after a stop with nothing running: \"%s\" (%d tokens), want \"%s\" (%d)", o.text,
              o.decode_tokens, g_ref[0].text, g_ref[0].decode_tokens);

    /* At random moments, over many calls: every call returns a whole JSON
     * answer, stopped or not; an unstopped greedy answer is the reference. */
    random_stopper s = {.m = m};
    CHECK(pthread_create(&th, NULL, random_stopper_main, &s) == 0);
    int cancelled = 0, whole = 0, bad = 0;
    for (int i = 0; i < 60; i++) {
        complete(m, PROMPTS[i % N_PROMPTS], GREEDY, NULL, &o, NULL, NULL);
        const outcome *ref = &g_ref[i % N_PROMPTS];
        if (o.rc != CACTUS_OK || !o.success || o.decode_tokens < 0 || o.decode_tokens > ref->decode_tokens) bad++;
        else if (!strcmp(o.finish, "cancelled")) cancelled++, bad += strncmp(ref->text, o.text, strlen(o.text)) != 0;
        else whole++, bad += !same(&o, ref);
    }
    atomic_store(&s.done, true);
    pthread_join(th, NULL);
    CHECK_MSG(bad == 0, "%d of 60 answers were wrong under random stops", bad);
    printf("random stops: %ld stops, %d answers cancelled, %d whole\n", s.stops, cancelled, whole);
}

/* ---- destroying other handles while one generates --------------------------------------- */

typedef struct {
    cactus_model_t m;
    atomic_bool done;
    int runs, mismatches;
} generator;

static void *generator_main(void *p) {
    generator *g = p;
    static outcome o;
    for (int r = 0; r < 3; r++) {
        for (int i = 0; i < N_PROMPTS; i++) {
            complete(g->m, PROMPTS[i], GREEDY, NULL, &o, NULL, NULL);
            g->runs++;
            g->mismatches += !same(&o, &g_ref[i]);
        }
    }
    atomic_store(&g->done, true);
    return NULL;
}

static void test_destroy_while_generating(cactus_model_t m) {
    generator g = {.m = m};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, generator_main, &g) == 0);
    static outcome o;
    int cycles = 0, failures = 0;
    while (!atomic_load(&g.done) || cycles < 2) {
        cactus_model_t other = cactus_init(g_path, NULL, false);
        if (!other) {
            failures++;
            break;
        }
        if (cycles % 2 == 0) complete(other, PROMPTS[3], GREEDY, NULL, &o, NULL, NULL);
        failures += cycles % 2 == 0 && !same(&o, &g_ref[3]);
        cactus_destroy(other);
        cactus_tokenizer_t tok = cactus_tokenizer_init(g_path);
        failures += tok == NULL;
        cactus_tokenizer_destroy(tok);
        cycles++;
    }
    pthread_join(th, NULL);
    CHECK_EQ_INT(failures, 0);
    CHECK_EQ_INT(g.runs, 3 * N_PROMPTS);
    CHECK_MSG(g.mismatches == 0, "%d answers changed while other handles came and went", g.mismatches);
    printf("destroy while generating: %d other handles created and destroyed\n", cycles);
}

/* ---- per-thread last error ------------------------------------------------------------ */

typedef struct {
    int index;
    int wrong;
} err_worker;

static void *error_main(void *p) {
    err_worker *w = p;
    char path[64], *buf = malloc(BUF_SIZE);
    snprintf(path, sizeof path, "/nonexistent/thread-%d.gguf", w->index);
    for (int i = 0; i < 200; i++) {
        if (cactus_init(path, NULL, false) != NULL || !strstr(cactus_get_last_error(), path)) w->wrong++;
        sched_yield();
        if (!strstr(cactus_get_last_error(), path)) w->wrong++;
        if (buf && cactus_complete(NULL, "[]", buf, BUF_SIZE, NULL, NULL, NULL, NULL) != CACTUS_ERR_INVALID_ARGUMENT)
            w->wrong++;
        if (!strstr(cactus_get_last_error(), "handle is NULL")) w->wrong++;
    }
    free(buf);
    return NULL;
}

static void test_last_error_per_thread(void) {
    static err_worker w[N_THREADS];
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        w[i].index = i;
        CHECK(pthread_create(&th[i], NULL, error_main, &w[i]) == 0);
    }
    for (int i = 0; i < N_THREADS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < N_THREADS; i++) CHECK_MSG(w[i].wrong == 0, "thread %d saw another thread's error %d times", i, w[i].wrong);
}

int main(void) {
    g_path = getenv("CACTUS_TEST_MODEL");
    if (!CHECK_MSG(g_path != NULL, "set CACTUS_TEST_MODEL to a GGUF model (tests/test_c.py does)")) return CHECK_DONE();
    test_cold_start();
    cactus_model_t m = cactus_init(g_path, NULL, false);
    if (!CHECK_MSG(m != NULL, "cactus_init: %s", cactus_get_last_error())) return CHECK_DONE();
    test_parallel_handles(m);
    test_stop(m);
    test_destroy_while_generating(m);
    test_last_error_per_thread();
    cactus_destroy(m);
    return CHECK_DONE();
}
