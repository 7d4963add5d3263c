/* Shared helpers of the libFuzzer targets (tests/fuzz/fuzz_*.c).
 *
 * Each target defines LLVMFuzzerTestOneInput (and LLVMFuzzerInitialize,
 * possibly empty). tools/fuzz.sh links them with clang's libFuzzer;
 * tests/fuzz/replay.c links them with any C compiler into a program that
 * runs every file of a corpus once, so the committed corpora (seeds and
 * regression inputs of fixed crashes) are replayed by the normal test suite.
 *
 * A broken property is reported with FUZZ_CHECK, which aborts: libFuzzer
 * and the sanitizers treat that as a crash and keep the input. */
#ifndef CACTUS_FUZZ_COMMON_H
#define CACTUS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                                       \
    do {                                                                                                       \
        if (!(cond)) {                                                                                         \
            fprintf(stderr, "%s:%d: fuzz property failed: %s\n", __FILE__, __LINE__, #cond);                   \
            abort();                                                                                           \
        }                                                                                                      \
    } while (0)

/* The input cut at its first NUL byte: part 0 before it, part 1 after it
 * (NULL when there is no NUL). Both are malloc'd and NUL-terminated, so the
 * parts are C strings as the public API receives them. */
typedef struct {
    char *part[2];
    size_t len[2];
} fuzz_split;

static inline char *fuzz_dup(const uint8_t *p, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    if (n) memcpy(s, p, n);
    s[n] = 0;
    return s;
}

static inline fuzz_split fuzz_split_nul(const uint8_t *data, size_t size) {
    fuzz_split sp = {{NULL, NULL}, {0, 0}};
    const uint8_t *nul = size ? memchr(data, 0, size) : NULL;
    size_t n0 = nul ? (size_t)(nul - data) : size;
    sp.part[0] = fuzz_dup(data, n0);
    sp.len[0] = n0;
    if (nul) {
        sp.len[1] = size - n0 - 1;
        sp.part[1] = fuzz_dup(nul + 1, sp.len[1]);
    }
    return sp;
}

static inline void fuzz_split_free(fuzz_split *sp) {
    free(sp->part[0]);
    free(sp->part[1]);
}

/* json_parse of a C string (NULL for a NULL string or invalid JSON). */
static inline json_doc *fuzz_json(const char *s, size_t n) { return s ? json_parse(s, n, NULL, 0) : NULL; }

/* The directory of the reference vocabularies: $CACTUS_VOCAB_DIR, else
 * ../shared/vocab next to the repository (the fuzzers run from its root). */
static inline const char *fuzz_vocab_dir(void) {
    const char *e = getenv("CACTUS_VOCAB_DIR");
    return e && *e ? e : "../shared/vocab";
}

#endif
