/* IEEE half and bfloat16 conversions (exact, with subnormals, inf and NaN). */
#ifndef CACTUS_HALF_H
#define CACTUS_HALF_H

#include <stdint.h>
#include <string.h>

static inline float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t f32_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float fp16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F;
    uint32_t man = h & 0x3FF;
    if (exp == 0x1F) return f32_from_bits(sign | 0x7F800000u | (man << 13)); /* inf / NaN */
    if (exp == 0) {
        if (man == 0) return f32_from_bits(sign);
        /* Subnormal: value is man * 2^-24, exactly representable in f32. */
        float v = (float)man * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return f32_from_bits(sign | ((exp + 112) << 23) | (man << 13));
}

/* Round to nearest even, as numpy's astype(float16) does. */
static inline uint16_t f32_to_fp16(float f) {
    uint32_t x = f32_to_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7FFFFFFF;
    if (absx > 0x7F800000) return (uint16_t)(sign | 0x7E00); /* NaN */
    if (absx >= 0x477FF000) return (uint16_t)(sign | 0x7C00); /* overflow rounds to inf */
    if (absx < 0x38800000) {
        /* Result is subnormal (or zero): scale to units of 2^-24 and round. */
        float a = f32_from_bits(absx) * 16777216.0f;
        uint32_t r = (uint32_t)a;
        float frac = a - (float)r;
        if (frac > 0.5f || (frac == 0.5f && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t mant_round = absx + 0xFFF + ((absx >> 13) & 1);
    return (uint16_t)(sign | ((mant_round - 0x38000000) >> 13));
}

static inline float bf16_to_f32(uint16_t b) { return f32_from_bits((uint32_t)b << 16); }

#endif
