/* Token sampling: repetition penalty, temperature, top-k, top-p, min-p and
 * a seeded RNG; plus the confidence of a step's distribution. */
#ifndef CACTUS_SAMPLER_H
#define CACTUS_SAMPLER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    float temperature;        /* 0 = greedy */
    float top_p;              /* 1 = off */
    int32_t top_k;            /* 0 = off */
    float min_p;              /* 0 = off */
    float repetition_penalty; /* 1 = off */
    uint64_t seed;
    bool has_seed;            /* false: seeded from the clock */
} cx_sampler_params;

typedef struct {
    cx_sampler_params p;
    int32_t n_vocab;
    uint64_t rng;
    float *work;   /* [n_vocab] adjusted logits, then probabilities */
    int32_t *idx;  /* [n_vocab] candidate ids */
    uint8_t *seen; /* [n_vocab] scratch for the repetition penalty */
} cx_sampler;

void sampler_default_params(cx_sampler_params *p);
int sampler_init(cx_sampler *s, int32_t n_vocab, const cx_sampler_params *p);
void sampler_free(cx_sampler *s);

/* Picks the next token from `logits`; `recent` are the ids the repetition
 * penalty applies to. */
int32_t sampler_sample(cx_sampler *s, const float *logits, const int32_t *recent, int n_recent);

/* 1 - H(softmax(logits)) / log(n): 1 when one token takes all the mass, 0 for
 * a uniform distribution. Computed on the model's raw distribution, so it does
 * not depend on the sampling settings. */
float sampler_confidence(const float *logits, int32_t n);

/* A uniform float in [0, 1) from the sampler's RNG (exposed for tests). */
float sampler_uniform(cx_sampler *s);

#endif
