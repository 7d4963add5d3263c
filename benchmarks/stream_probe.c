/* A STREAM-like read-bandwidth probe: T threads each sum their own slice of
 * one large buffer (first touched by that thread), pass after pass; every
 * pass is timed between two barriers and reported in GB/s (1e9 bytes/s).
 *
 *   cc -O3 -march=native -pthread stream_probe.c -o stream_probe
 *   ./stream_probe THREADS MIB PASSES
 *
 * Prints one JSON line: {"threads":T,"bytes":N,"gbs":[per pass...]}.
 * Compiled at benchmark time by benchmarks/run.py; part of no library. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const uint64_t *p;
    size_t n; /* uint64 words */
    uint64_t sink;
    int index;
} slice;

static pthread_barrier_t g_bar;
static int g_passes;
static double *g_times;
static uint64_t *g_buf;
static size_t g_words;
static int g_threads;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Eight independent accumulators: the compiler vectorizes this into wide loads. */
static uint64_t sum_words(const uint64_t *p, size_t n) {
    uint64_t a[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) a[k] += p[i + k];
    for (; i < n; i++) a[0] += p[i];
    uint64_t s = 0;
    for (int k = 0; k < 8; k++) s += a[k];
    return s;
}

static void *worker(void *arg) {
    slice *s = arg;
    size_t per = g_words / (size_t)g_threads;
    uint64_t *mine = g_buf + (size_t)s->index * per;
    s->p = mine;
    s->n = s->index == g_threads - 1 ? g_words - (size_t)s->index * per : per;
    for (size_t i = 0; i < s->n; i++) mine[i] = i * 0x9E3779B97F4A7C15ull; /* first touch by the reader */
    for (int pass = 0; pass < g_passes; pass++) {
        pthread_barrier_wait(&g_bar);
        double t0 = s->index == 0 ? now_s() : 0.0;
        s->sink += sum_words(s->p, s->n);
        pthread_barrier_wait(&g_bar);
        if (s->index == 0) g_times[pass] = now_s() - t0;
    }
    return NULL;
}

int main(int argc, char **argv) {
    g_threads = argc > 1 ? atoi(argv[1]) : 1;
    size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 1024;
    g_passes = argc > 3 ? atoi(argv[3]) : 10;
    if (g_threads < 1 || mib < 1 || g_passes < 1) return 2;
    g_words = mib * 1024 * 1024 / sizeof(uint64_t);
    g_buf = aligned_alloc(4096, g_words * sizeof(uint64_t));
    g_times = calloc((size_t)g_passes, sizeof(double));
    slice *sl = calloc((size_t)g_threads, sizeof(slice));
    pthread_t *th = calloc((size_t)g_threads, sizeof(pthread_t));
    if (!g_buf || !g_times || !sl || !th) return 3;
    pthread_barrier_init(&g_bar, NULL, (unsigned)g_threads);
    for (int i = 0; i < g_threads; i++) {
        sl[i].index = i;
        if (i > 0 && pthread_create(&th[i], NULL, worker, &sl[i]) != 0) return 4;
    }
    worker(&sl[0]);
    uint64_t sink = 0;
    for (int i = 1; i < g_threads; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < g_threads; i++) sink += sl[i].sink;
    printf("{\"threads\":%d,\"bytes\":%zu,\"checksum\":%llu,\"gbs\":[", g_threads, g_words * sizeof(uint64_t),
           (unsigned long long)(sink & 0xFFFF));
    for (int p = 0; p < g_passes; p++)
        printf("%s%.3f", p ? "," : "", (double)(g_words * sizeof(uint64_t)) / g_times[p] / 1e9);
    printf("]}\n");
    return 0;
}
