/* A small persistent thread pool. Workers spin briefly on a generation
 * counter before sleeping on a condition variable: a decode step issues a
 * few hundred short parallel-fors, and waking sleeping threads for each one
 * would cost more than the work. */
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "util.h"

#define SPIN_ROUNDS 20000     /* a worker's spin before it sleeps */
#define WAIT_SPIN_ROUNDS 2000 /* the caller's spin before it yields */
#define CHUNKS_PER_THREAD 4   /* work split finer than one share per thread */

struct threadpool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;     /* bumped once per job */
    atomic_int pending;  /* workers still running the current job */
    atomic_bool quit;
    tp_fn fn;
    void *ctx;
    int64_t n_items;
    int64_t chunk;       /* items taken at a time */
    atomic_llong next;   /* the first item no thread has taken yet */
};

typedef struct {
    threadpool *tp;
    int index;
} worker_arg;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Threads take chunks until none is left, rather than one fixed share each:
 * on a shared machine one core is often slower for a while, and with fixed
 * shares the other then waits at the end of every parallel-for. */
static void run_range(threadpool *tp, int index) {
    for (;;) {
        int64_t start = atomic_fetch_add_explicit(&tp->next, tp->chunk, memory_order_relaxed);
        if (start >= tp->n_items) return;
        int64_t end = start + tp->chunk < tp->n_items ? start + tp->chunk : tp->n_items;
        tp->fn(tp->ctx, start, end, index);
    }
}

static unsigned wait_for_job(threadpool *tp, unsigned seen) {
    for (int i = 0; i < SPIN_ROUNDS; i++) {
        unsigned g = atomic_load_explicit(&tp->gen, memory_order_acquire);
        if (g != seen || atomic_load(&tp->quit)) return g;
        cpu_relax();
    }
    pthread_mutex_lock(&tp->mu);
    unsigned g;
    while ((g = atomic_load(&tp->gen)) == seen && !atomic_load(&tp->quit)) pthread_cond_wait(&tp->cv, &tp->mu);
    pthread_mutex_unlock(&tp->mu);
    return g;
}

static void *worker_main(void *p) {
    worker_arg *a = p;
    threadpool *tp = a->tp;
    int index = a->index;
    free(a);
    unsigned seen = 0;
    for (;;) {
        seen = wait_for_job(tp, seen);
        if (atomic_load(&tp->quit)) break;
        run_range(tp, index);
        atomic_fetch_sub_explicit(&tp->pending, 1, memory_order_acq_rel);
    }
    return NULL;
}

threadpool *tp_create(int n_threads) {
    if (n_threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = c > 0 ? (int)c : 1;
    }
    threadpool *tp = calloc(1, sizeof *tp);
    if (!tp) return NULL;
    tp->n = n_threads;
    pthread_mutex_init(&tp->mu, NULL);
    pthread_cond_init(&tp->cv, NULL);
    tp->threads = calloc((size_t)n_threads, sizeof(pthread_t));
    if (!tp->threads) {
        tp_destroy(tp);
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *a = malloc(sizeof *a);
        if (!a || (a->tp = tp, a->index = i, pthread_create(&tp->threads[i], NULL, worker_main, a) != 0)) {
            free(a);
            tp->n = i; /* only threads 1..i-1 exist */
            cx_log(CX_LOG_WARN, "threadpool: could only start %d threads", i);
            break;
        }
    }
    return tp;
}

void tp_destroy(threadpool *tp) {
    if (!tp) return;
    pthread_mutex_lock(&tp->mu);
    atomic_store(&tp->quit, true);
    pthread_cond_broadcast(&tp->cv);
    pthread_mutex_unlock(&tp->mu);
    for (int i = 1; tp->threads && i < tp->n; i++) pthread_join(tp->threads[i], NULL);
    free(tp->threads);
    pthread_mutex_destroy(&tp->mu);
    pthread_cond_destroy(&tp->cv);
    free(tp);
}

int tp_n_threads(const threadpool *tp) { return tp ? tp->n : 1; }

void tp_for(threadpool *tp, int64_t n, tp_fn fn, void *ctx) {
    if (n <= 0) return;
    if (!tp || tp->n == 1 || n == 1) {
        fn(ctx, 0, n, 0);
        return;
    }
    tp->fn = fn;
    tp->ctx = ctx;
    tp->n_items = n;
    int64_t chunk = n / ((int64_t)tp->n * CHUNKS_PER_THREAD);
    tp->chunk = chunk > 0 ? chunk : 1;
    atomic_store(&tp->next, 0);
    atomic_store(&tp->pending, tp->n - 1);
    pthread_mutex_lock(&tp->mu);
    atomic_fetch_add_explicit(&tp->gen, 1, memory_order_release);
    pthread_cond_broadcast(&tp->cv);
    pthread_mutex_unlock(&tp->mu);
    run_range(tp, 0);
    /* Spin briefly, then yield: when the machine is oversubscribed the
     * worker we wait for may need this very core to finish. */
    for (int i = 0; atomic_load_explicit(&tp->pending, memory_order_acquire) > 0; i++) {
        if (i < WAIT_SPIN_ROUNDS) cpu_relax();
        else sched_yield();
    }
}

void tp_for_work(threadpool *tp, int64_t n, double work, tp_fn fn, void *ctx) {
    if (work < TP_MIN_PARALLEL_WORK) {
        if (n > 0) fn(ctx, 0, n, 0);
        return;
    }
    tp_for(tp, n, fn, ctx);
}
