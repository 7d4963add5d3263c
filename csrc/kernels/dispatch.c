/* Chooses the kernel table once, from the CPU and CACTUS_KERNELS. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/types.h>
#include <sys/sysctl.h>
#endif

#include "../util.h"
#include "kernels.h"

/* Whether this CPU (and OS: the probes check that the vector registers are
 * saved on context switch) runs each SIMD table. */
#if defined(__x86_64__) || defined(__i386__)
static int cpu_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}
/* The avx512 table also uses VNNI (vpdpbusd), so it asks for Ice Lake / Zen 4
 * or later; an AVX-512 CPU without VNNI gets the avx2 table. */
static int cpu_avx512(void) {
    return cpu_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}
#else
static int cpu_avx2(void) { return 0; }
static int cpu_avx512(void) { return 0; }
#endif

/* AMX-TILE and AMX-INT8 (CPUID leaf 7, EDX bits 24 and 25), on top of the
 * avx512 table (the tile kernels scale their sums with AVX-512). The tile
 * registers are 8 KiB of state that Linux hands out only on request, once per
 * process (ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, Linux 5.16+); using
 * them without it kills the process, so a refusal (an older kernel, or a
 * thread's signal stack too small for the larger state) means no amx table.
 * Asked once; the answer is cached. */
#if defined(__x86_64__) && defined(__linux__)
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18
static int amx_probe(void) {
    unsigned a, b, c, d;
    if (!cpu_avx512() || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    if (!(d & (1u << 24)) || !(d & (1u << 25))) return 0;
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) {
        cx_log(CX_LOG_INFO, "kernels: the OS refused the AMX tile state; not using AMX");
        return 0;
    }
    return 1;
}
static int cpu_amx(void) {
    static _Atomic int has = -1; /* a race only repeats the (idempotent) request */
    if (has < 0) has = amx_probe();
    return has;
}
#else
static int cpu_amx(void) { return 0; }
#endif

/* Advanced SIMD is part of AArch64; the table also needs SDOT (ARMv8.2 dotprod). */
#if defined(__aarch64__) && defined(__linux__)
static int cpu_neon(void) { return (getauxval(AT_HWCAP) & (1ul << 20)) != 0; /* HWCAP_ASIMDDP */ }
#elif defined(__aarch64__) && defined(__APPLE__)
static int cpu_neon(void) {
    int v = 0;
    size_t len = sizeof v;
    return sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &len, NULL, 0) == 0 && v;
}
#else
static int cpu_neon(void) { return 0; }
#endif

typedef struct {
    const char *name;
    int (*cpu_has)(void);
    const kern_table *(*table)(void);
} candidate;

/* Best first. */
static const candidate g_candidates[] = {
    {"amx", cpu_amx, kern_amx},
    {"avx512", cpu_avx512, kern_avx512},
    {"avx2", cpu_avx2, kern_avx2},
    {"neon", cpu_neon, kern_neon},
};
#define N_CANDIDATES (int)(sizeof g_candidates / sizeof g_candidates[0])

static const kern_table *usable(const candidate *c) { return c->cpu_has() ? c->table() : NULL; }

int kern_available(const kern_table **out, int max) {
    int n = 0;
    if (n < max) out[n] = kern_scalar();
    n++;
    for (int i = N_CANDIDATES - 1; i >= 0; i--) {
        const kern_table *t = usable(&g_candidates[i]);
        if (!t) continue;
        if (n < max) out[n] = t;
        n++;
    }
    return n;
}

static const kern_table *best(void) {
    for (int i = 0; i < N_CANDIDATES; i++) {
        const kern_table *t = usable(&g_candidates[i]);
        if (t) return t;
    }
    return kern_scalar();
}

static const kern_table *choose(void) {
    const char *forced = getenv("CACTUS_KERNELS");
    if (!forced || !*forced) return best();
    if (strcmp(forced, "scalar") == 0) return kern_scalar();
    for (int i = 0; i < N_CANDIDATES; i++) {
        if (strcmp(forced, g_candidates[i].name) != 0) continue;
        const kern_table *t = usable(&g_candidates[i]);
        if (t) return t;
        t = best();
        cx_log(CX_LOG_WARN, "CACTUS_KERNELS=%s: this CPU or build lacks it; using %s", forced, t->name);
        return t;
    }
    const kern_table *t = best();
    cx_log(CX_LOG_WARN, "CACTUS_KERNELS=%s is unknown (scalar, avx2, avx512, amx, neon); using %s", forced, t->name);
    return t;
}

int kern_exact_activations(void) {
    /* Like the table, read once; a benign race only repeats the read. */
    static _Atomic int exact = -1;
    if (exact < 0) {
        const char *e = getenv("CACTUS_EXACT_ACTIVATIONS");
        exact = e && *e && strcmp(e, "0") != 0;
    }
    return exact;
}

const kern_table *kern_active(void) {
    /* Tables are immutable; two threads racing here both probe and store the same choice. */
    static _Atomic(const kern_table *) active;
    const kern_table *t = atomic_load_explicit(&active, memory_order_acquire);
    if (!t) {
        t = choose();
        cx_log(CX_LOG_INFO, "kernels: %s", t->name);
        atomic_store_explicit(&active, t, memory_order_release);
    }
    return t;
}

int kern_supported(ggml_type type) {
    return type <= GGML_TYPE_BF16 && kern_scalar()->dot[type] != NULL;
}

float kern_dot(ggml_type type, const void *row, const float *x, size_t n) {
    return kern_active()->dot[type](row, x, n);
}

void kern_dequant(ggml_type type, const void *row, float *out, size_t n) {
    kern_active()->dequant[type](row, out, n);
}
