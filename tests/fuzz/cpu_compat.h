/* Force-included (-include) into csrc/kernels/dispatch.c by tools/fuzz.sh
 * when the compiler is clang older than 16, whose __builtin_cpu_supports
 * does not know "f16c": that one feature is read with CPUID, the others go
 * to the builtin. Nothing else is built with this header. */
#ifndef CACTUS_FUZZ_CPU_COMPAT_H
#define CACTUS_FUZZ_CPU_COMPAT_H
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <string.h>

static inline int fuzz_cpu_supports(const char *feature) {
    unsigned a, b, c, d;
    if (!strcmp(feature, "f16c")) return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
    if (!strcmp(feature, "avx2")) return __builtin_cpu_supports("avx2");
    if (!strcmp(feature, "fma")) return __builtin_cpu_supports("fma");
    if (!strcmp(feature, "avx512f")) return __builtin_cpu_supports("avx512f");
    if (!strcmp(feature, "avx512bw")) return __builtin_cpu_supports("avx512bw");
    if (!strcmp(feature, "avx512vl")) return __builtin_cpu_supports("avx512vl");
    if (!strcmp(feature, "avx512vnni")) return __builtin_cpu_supports("avx512vnni");
    return 0;
}
#define __builtin_cpu_supports(feature) fuzz_cpu_supports(feature)
#endif
#endif
