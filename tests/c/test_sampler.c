/* Sampler tests: thousands of draws from known logits must follow the
 * distribution that top-k / top-p / min-p / temperature leave, and never
 * pick a token those filters cut. Also greedy, seeding and confidence. */
#include <math.h>

#include "check.h"
#include "sampler.h"

#define V 8
#define DRAWS 20000

/* Probabilities 0.4 0.25 0.15 0.1 0.05 0.03 0.015 0.005 as logits. */
static const float P[V] = {0.4f, 0.25f, 0.15f, 0.1f, 0.05f, 0.03f, 0.015f, 0.005f};

static void logits_of(float *l) {
    for (int i = 0; i < V; i++) l[i] = logf(P[i]) + 3.0f;
}

static void draw_counts(cx_sampler_params *p, int *counts) {
    float l[V];
    logits_of(l);
    cx_sampler s;
    p->has_seed = true;
    p->seed = 1234;
    if (!CHECK(sampler_init(&s, V, p) == 0)) return;
    for (int i = 0; i < V; i++) counts[i] = 0;
    for (int i = 0; i < DRAWS; i++) counts[sampler_sample(&s, l, NULL, 0)]++;
    sampler_free(&s);
}

/* Counts must match `expect` (renormalised over its support) within 4 sigma. */
static void check_dist(const int *counts, const double *expect, const char *what) {
    double z = 0;
    for (int i = 0; i < V; i++) z += expect[i];
    for (int i = 0; i < V; i++) {
        double p = expect[i] / z, mean = p * DRAWS, sd = sqrt(DRAWS * p * (1 - p)) + 1e-9;
        if (p == 0) CHECK_MSG(counts[i] == 0, "%s: token %d was cut but drawn %d times", what, i, counts[i]);
        else CHECK_MSG(fabs(counts[i] - mean) <= 4 * sd, "%s: token %d drawn %d times, expected %.0f", what, i, counts[i], mean);
    }
}

static cx_sampler_params base(void) {
    cx_sampler_params p;
    sampler_default_params(&p);
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    return p;
}

static void test_full_distribution(void) {
    cx_sampler_params p = base();
    int c[V];
    double e[V];
    for (int i = 0; i < V; i++) e[i] = P[i];
    draw_counts(&p, c);
    check_dist(c, e, "no filter");
}

static void test_top_k(void) {
    cx_sampler_params p = base();
    p.top_k = 3;
    int c[V];
    double e[V] = {0.4, 0.25, 0.15, 0, 0, 0, 0, 0};
    draw_counts(&p, c);
    check_dist(c, e, "top_k=3");
}

static void test_top_p(void) {
    /* Cumulative 0.4, 0.65, 0.8, 0.9: top_p = 0.85 keeps the first four. */
    cx_sampler_params p = base();
    p.top_p = 0.85f;
    int c[V];
    double e[V] = {0.4, 0.25, 0.15, 0.1, 0, 0, 0, 0};
    draw_counts(&p, c);
    check_dist(c, e, "top_p=0.85");
}

static void test_min_p(void) {
    /* min_p = 0.2: keep p >= 0.08, i.e. the first four. */
    cx_sampler_params p = base();
    p.min_p = 0.2f;
    int c[V];
    double e[V] = {0.4, 0.25, 0.15, 0.1, 0, 0, 0, 0};
    draw_counts(&p, c);
    check_dist(c, e, "min_p=0.2");
}

static void test_temperature(void) {
    /* T = 0.5 squares the probabilities (before renormalising). */
    cx_sampler_params p = base();
    p.temperature = 0.5f;
    int c[V];
    double e[V];
    for (int i = 0; i < V; i++) e[i] = (double)P[i] * P[i];
    draw_counts(&p, c);
    check_dist(c, e, "temperature=0.5");
}

static void test_greedy_and_seed(void) {
    float l[V];
    logits_of(l);
    cx_sampler_params p = base();
    p.temperature = 0.0f;
    cx_sampler s;
    sampler_init(&s, V, &p);
    CHECK_EQ_INT(sampler_sample(&s, l, NULL, 0), 0);
    sampler_free(&s);
    p = base();
    p.top_k = 1;
    sampler_init(&s, V, &p);
    CHECK_EQ_INT(sampler_sample(&s, l, NULL, 0), 0);
    sampler_free(&s);
    /* The same seed gives the same draws; another seed differs somewhere. */
    int a[64], b[64], d[64];
    cx_sampler_params q = base();
    q.has_seed = true;
    for (int run = 0; run < 3; run++) {
        q.seed = run == 2 ? 99 : 42;
        sampler_init(&s, V, &q);
        for (int i = 0; i < 64; i++) (run == 0 ? a : run == 1 ? b : d)[i] = sampler_sample(&s, l, NULL, 0);
        sampler_free(&s);
    }
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, d, sizeof a) != 0);
}

static void test_repetition_penalty(void) {
    float l[V];
    logits_of(l);
    cx_sampler_params p = base();
    p.temperature = 0.0f;
    p.repetition_penalty = 100.0f;
    int32_t recent[] = {0, 0, 1};
    cx_sampler s;
    sampler_init(&s, V, &p);
    CHECK_EQ_INT(sampler_sample(&s, l, recent, 3), 2); /* 0 and 1 are penalised */
    sampler_free(&s);
}

static void test_confidence(void) {
    float uniform[V] = {0};
    CHECK_NEAR(sampler_confidence(uniform, V), 0.0, 1e-6);
    float peaked[V] = {100, 0, 0, 0, 0, 0, 0, 0};
    CHECK_NEAR(sampler_confidence(peaked, V), 1.0, 1e-6);
    float l[V];
    logits_of(l);
    double h = 0;
    for (int i = 0; i < V; i++) h -= P[i] * log(P[i]);
    CHECK_NEAR(sampler_confidence(l, V), 1.0 - h / log(V), 1e-4);
}

int main(void) {
    test_full_distribution();
    test_top_k();
    test_top_p();
    test_min_p();
    test_temperature();
    test_greedy_and_seed();
    test_repetition_penalty();
    test_confidence();
    return CHECK_DONE();
}
