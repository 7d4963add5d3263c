/* One attention head for one query, in plain C: the scalar table's
 * reference, and compiled again in avx2.c and neon.c, whose ISA flags let
 * the compiler vectorize it (the dots keep eight partial sums so that it
 * can; the f32 sum is never reassociated behind the reference's back, since
 * each file's copy is its own definition). See kern_attend_fn in kernels.h.
 * Include once per kernel file, after kernels.h and <math.h>. */
#ifndef CACTUS_KERNELS_ATTEND_H
#define CACTUS_KERNELS_ATTEND_H

#include <math.h>
#include <string.h>

#include "kernels.h"

static inline float attend_dot(const float *a, const float *b, int n) {
    float part[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) part[j] += a[i + j] * b[i + j];
    float s = 0.0f;
    for (; i < n; i++) s += a[i] * b[i];
    for (int j = 0; j < 8; j++) s += part[j];
    return s;
}

/* The softmax weights are left unnormalized and the output scaled once by
 * 1 / their sum. */
static void attend(const float *q, const float *k, const float *v, size_t kv_stride, int hd, int n_keys, float scale,
                   float softcap, float *scores, float *out) {
    float mx = -INFINITY;
    for (int p = 0; p < n_keys; p++) {
        float s = attend_dot(q, k + (size_t)p * kv_stride, hd) * scale;
        if (softcap > 0.0f) s = softcap * tanhf(s / softcap);
        scores[p] = s;
        mx = s > mx ? s : mx;
    }
    double sum = 0.0;
    for (int p = 0; p < n_keys; p++) {
        scores[p] = expf(scores[p] - mx);
        sum += scores[p];
    }
    memset(out, 0, sizeof(float) * (size_t)hd);
    for (int p = 0; p < n_keys; p++) {
        const float *vr = v + (size_t)p * kv_stride;
        float a = scores[p];
        for (int d = 0; d < hd; d++) out[d] += a * vr[d];
    }
    float inv = (float)(1.0 / sum);
    for (int d = 0; d < hd; d++) out[d] *= inv;
}

#endif
