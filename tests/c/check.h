/* A tiny assertion kit for the C unit tests (header-only, one test program
 * per translation unit). Every CHECK* macro is an expression that yields
 * true when the check passed, so a test can stop early:
 *
 *     if (!CHECK(f != NULL)) return;
 *
 * Failures are reported on stderr with file and line; the program goes on.
 * End main with `return CHECK_DONE();` (or just `CHECK_DONE();`): it prints
 * "N passed, N failed" and ends the program, with status 1 when anything
 * failed, so either spelling reports failure to ctest. */
#ifndef CACTUS_TEST_CHECK_H
#define CACTUS_TEST_CHECK_H

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_passed_;
static int check_failed_;

#if defined(__GNUC__)
static inline bool check_report_(bool ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#endif

static inline bool check_report_(bool ok, const char *file, int line, const char *fmt, ...) {
    if (ok) {
        check_passed_++;
        return true;
    }
    check_failed_++;
    fprintf(stderr, "%s:%d: FAILED: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return false;
}

/* Each argument is evaluated exactly once. */
#define CHECK(cond) check_report_((cond) ? true : false, __FILE__, __LINE__, "%s", #cond)

#define CHECK_MSG(cond, ...) check_report_((cond) ? true : false, __FILE__, __LINE__, __VA_ARGS__)

#define CHECK_EQ_INT(a, b)                                                                                      \
    check_eq_int_((long long)(a), (long long)(b), #a, #b, __FILE__, __LINE__)

#define CHECK_EQ_U64(a, b)                                                                                      \
    check_eq_u64_((unsigned long long)(a), (unsigned long long)(b), #a, #b, __FILE__, __LINE__)

#define CHECK_NEAR(a, b, tol) check_near_((double)(a), (double)(b), (double)(tol), #a, #b, __FILE__, __LINE__)

/* NUL-terminated strings; NULL equals only NULL. */
#define CHECK_EQ_STR(a, b) check_eq_str_((a), (b), #a, #b, __FILE__, __LINE__)

/* Byte strings of explicit length. */
#define CHECK_EQ_MEM(a, alen, b, blen)                                                                          \
    check_eq_mem_((const void *)(a), (size_t)(alen), (const void *)(b), (size_t)(blen), #a, #b, __FILE__, __LINE__)

/* `hay` contains `needle` (both NUL-terminated); handy for error messages. */
#define CHECK_CONTAINS(hay, needle) check_contains_((hay), (needle), #hay, __FILE__, __LINE__)

#define CHECK_DONE() check_done_()

static inline bool check_eq_int_(long long a, long long b, const char *as, const char *bs, const char *file,
                                 int line) {
    return check_report_(a == b, file, line, "%s == %s (%lld vs %lld)", as, bs, a, b);
}

static inline bool check_eq_u64_(unsigned long long a, unsigned long long b, const char *as, const char *bs,
                                 const char *file, int line) {
    return check_report_(a == b, file, line, "%s == %s (%llu vs %llu)", as, bs, a, b);
}

static inline bool check_near_(double a, double b, double tol, const char *as, const char *bs, const char *file,
                               int line) {
    return check_report_(fabs(a - b) <= tol, file, line, "%s ~= %s (%.9g vs %.9g, tol %g)", as, bs, a, b, tol);
}

static inline bool check_eq_str_(const char *a, const char *b, const char *as, const char *bs, const char *file,
                                 int line) {
    bool ok = (a && b) ? strcmp(a, b) == 0 : a == b;
    return check_report_(ok, file, line, "%s == %s (\"%s\" vs \"%s\")", as, bs, a ? a : "(null)",
                         b ? b : "(null)");
}

static inline bool check_eq_mem_(const void *a, size_t alen, const void *b, size_t blen, const char *as,
                                 const char *bs, const char *file, int line) {
    bool ok = alen == blen && (alen == 0 || (a && b && memcmp(a, b, alen) == 0));
    return check_report_(ok, file, line, "%s == %s (%zu vs %zu bytes: \"%.*s\" vs \"%.*s\")", as, bs, alen, blen,
                         a ? (int)(alen > 200 ? 200 : alen) : 0, a ? (const char *)a : "",
                         b ? (int)(blen > 200 ? 200 : blen) : 0, b ? (const char *)b : "");
}

static inline bool check_contains_(const char *hay, const char *needle, const char *hs, const char *file,
                                   int line) {
    bool ok = hay && needle && strstr(hay, needle) != NULL;
    return check_report_(ok, file, line, "%s contains \"%s\" (it is \"%s\")", hs, needle ? needle : "(null)",
                         hay ? hay : "(null)");
}

/* Ends the program; the int return type lets `return CHECK_DONE();` compile. */
static inline int check_done_(void) {
    printf("%d passed, %d failed\n", check_passed_, check_failed_);
    fflush(stdout);
    exit(check_failed_ ? 1 : 0);
}

#endif
