/* Persistent worker threads; a parallel-for splits [0, n) into contiguous
 * chunks (about four per thread) that the threads, the caller among them,
 * take in turn until none is left: fn may run several times per thread. */
#ifndef CACTUS_THREADPOOL_H
#define CACTUS_THREADPOOL_H

#include <stdint.h>

typedef struct threadpool threadpool;
/* `thread` is the worker's index in [0, n_threads): for per-thread scratch. */
typedef void (*tp_fn)(void *ctx, int64_t start, int64_t end, int thread);

/* n_threads <= 0 picks the number of online CPUs. NULL on failure. */
threadpool *tp_create(int n_threads);
void tp_destroy(threadpool *tp);
int tp_n_threads(const threadpool *tp);
/* Runs fn over [0, n) split across the workers and waits for all of them.
 * Not reentrant: one tp_for at a time per pool. */
void tp_for(threadpool *tp, int64_t n, tp_fn fn, void *ctx);
/* The same, run on the calling thread alone when the whole job is smaller
 * than TP_MIN_PARALLEL_WORK multiply-adds: waking workers costs more. */
#define TP_MIN_PARALLEL_WORK (1 << 15)
void tp_for_work(threadpool *tp, int64_t n, double work, tp_fn fn, void *ctx);

#endif
