/* Sampling pipeline (see sampler.h). The order follows Hugging Face's
 * generate(): penalty, temperature, top-k, top-p, min-p, then a draw. */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

void sampler_default_params(cx_sampler_params *p) {
    p->temperature = 0.6f;
    p->top_p = 0.95f;
    p->top_k = 20;
    p->min_p = 0.0f;
    p->repetition_penalty = 1.0f;
    p->seed = 0;
    p->has_seed = false;
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float sampler_uniform(cx_sampler *s) { return (float)(splitmix64(&s->rng) >> 40) * (1.0f / 16777216.0f); }

int sampler_init(cx_sampler *s, int32_t n_vocab, const cx_sampler_params *p) {
    memset(s, 0, sizeof *s);
    s->p = *p;
    s->n_vocab = n_vocab;
    if (p->has_seed) {
        s->rng = p->seed;
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s->rng = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)(uintptr_t)s;
    }
    s->work = malloc(sizeof(float) * (size_t)n_vocab);
    s->idx = malloc(sizeof(int32_t) * (size_t)n_vocab);
    s->seen = calloc((size_t)n_vocab, 1);
    if (!s->work || !s->idx || !s->seen) {
        sampler_free(s);
        return cx_error("out of memory allocating the sampler");
    }
    return 0;
}

void sampler_free(cx_sampler *s) {
    free(s->work);
    free(s->idx);
    free(s->seen);
    s->work = NULL;
    s->idx = NULL;
    s->seen = NULL;
}

static int32_t argmax(const float *x, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Each distinct recent id is penalised once, as Hugging Face does. */
static void apply_penalty(cx_sampler *s, const int32_t *recent, int n_recent) {
    float penalty = s->p.repetition_penalty;
    if (penalty == 1.0f) return;
    for (int i = 0; i < n_recent; i++) {
        int32_t t = recent[i];
        if (t < 0 || t >= s->n_vocab || s->seen[t]) continue;
        s->seen[t] = 1;
        s->work[t] = s->work[t] > 0 ? s->work[t] / penalty : s->work[t] * penalty;
    }
    for (int i = 0; i < n_recent; i++)
        if (recent[i] >= 0 && recent[i] < s->n_vocab) s->seen[recent[i]] = 0;
}

/* Min-heap of candidate ids keyed by work[id]; the root is the weakest. */
static void heap_sift_down(int32_t *h, int32_t n, int32_t i, const float *key) {
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && key[h[l]] < key[h[m]]) m = l;
        if (r < n && key[h[r]] < key[h[m]]) m = r;
        if (m == i) return;
        int32_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* Leaves the k highest-scoring ids in idx[0..k) in descending order:
 * O(n log k) with a k-sized min-heap, then heap-sort of the k. */
static int32_t select_top_k(cx_sampler *s, int32_t k) {
    int32_t n = s->n_vocab;
    const float *key = s->work;
    int32_t *h = s->idx;
    if (k <= 0 || k > n) k = n;
    for (int32_t i = 0; i < k; i++) h[i] = i;
    for (int32_t i = k / 2 - 1; i >= 0; i--) heap_sift_down(h, k, i, key);
    for (int32_t i = k; i < n; i++) {
        if (key[i] > key[h[0]]) {
            h[0] = i;
            heap_sift_down(h, k, 0, key);
        }
    }
    /* Popping the minimum to the back yields descending order. */
    for (int32_t end = k - 1; end > 0; end--) {
        int32_t t = h[0];
        h[0] = h[end];
        h[end] = t;
        heap_sift_down(h, end, 0, key);
    }
    return k;
}

int32_t sampler_sample(cx_sampler *s, const float *logits, const int32_t *recent, int n_recent) {
    const cx_sampler_params *p = &s->p;
    int32_t n = s->n_vocab;
    memcpy(s->work, logits, sizeof(float) * (size_t)n);
    apply_penalty(s, recent, n_recent);
    if (p->temperature <= 0.0f || p->top_k == 1) return argmax(s->work, n);
    for (int32_t i = 0; i < n; i++) s->work[i] /= p->temperature;
    int32_t k = select_top_k(s, p->top_k);
    /* Softmax over the k candidates, in descending order. */
    float mx = s->work[s->idx[0]];
    double sum = 0.0;
    float *prob = s->work; /* reuse: prob of candidate i stored at work[idx[i]] */
    for (int32_t i = 0; i < k; i++) sum += (prob[s->idx[i]] = expf(s->work[s->idx[i]] - mx));
    int32_t keep = k;
    if (p->top_p < 1.0f) {
        double cum = 0.0;
        for (int32_t i = 0; i < k; i++) {
            cum += prob[s->idx[i]] / sum;
            if (cum >= p->top_p) {
                keep = i + 1;
                break;
            }
        }
    }
    if (p->min_p > 0.0f) {
        float floor_p = p->min_p * prob[s->idx[0]];
        int32_t i = 1;
        while (i < keep && prob[s->idx[i]] >= floor_p) i++;
        keep = i;
    }
    double total = 0.0;
    for (int32_t i = 0; i < keep; i++) total += prob[s->idx[i]];
    double r = (double)sampler_uniform(s) * total, acc = 0.0;
    for (int32_t i = 0; i < keep; i++) {
        acc += prob[s->idx[i]];
        if (r < acc) return s->idx[i];
    }
    return s->idx[keep - 1];
}

float sampler_confidence(const float *logits, int32_t n) {
    if (n <= 1) return 1.0f;
    float mx = logits[0];
    for (int32_t i = 1; i < n; i++)
        if (logits[i] > mx) mx = logits[i];
    /* H = log Z - sum(p * (l - mx)) with Z = sum(exp(l - mx)). */
    double z = 0.0, el = 0.0;
    for (int32_t i = 0; i < n; i++) {
        double e = exp((double)(logits[i] - mx));
        z += e;
        el += e * (logits[i] - mx);
    }
    double h = log(z) - el / z;
    double c = 1.0 - h / log((double)n);
    return (float)(c < 0.0 ? 0.0 : c > 1.0 ? 1.0 : c);
}
