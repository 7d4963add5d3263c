/* Small shared helpers: the thread-local last error, a growable byte buffer
 * and a growable int32 vector. Everything here is private to libcactus. */
#ifndef CACTUS_UTIL_H
#define CACTUS_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define CX_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CX_PRINTF(a, b)
#endif

/* Sets this thread's last error (printf-style). Always returns -1 so callers
 * can write `return cx_error("...")`. */
int cx_error(const char *fmt, ...) CX_PRINTF(1, 2);
const char *cx_last_error(void);
void cx_clear_error(void);

/* Logging to stderr, off unless CACTUS_LOG=error|warn|info|debug. */
enum { CX_LOG_ERROR = 1, CX_LOG_WARN = 2, CX_LOG_INFO = 3, CX_LOG_DEBUG = 4 };
void cx_log(int level, const char *fmt, ...) CX_PRINTF(2, 3);

/* Growable byte buffer, always NUL-terminated once anything was appended.
 * On allocation failure `failed` is set and later appends are ignored. */
typedef struct {
    char *data;
    size_t len, cap;
    bool failed;
} strbuf;

void sb_init(strbuf *sb);
void sb_free(strbuf *sb);
void sb_clear(strbuf *sb);
void sb_append(strbuf *sb, const char *s, size_t n);
void sb_puts(strbuf *sb, const char *s);
void sb_putc(strbuf *sb, char c);
void sb_printf(strbuf *sb, const char *fmt, ...) CX_PRINTF(2, 3);

/* Growable int32 vector. Returns -1 (with cx_error set) on allocation failure. */
typedef struct {
    int32_t *v;
    size_t n, cap;
} ivec;

void iv_init(ivec *iv);
void iv_free(ivec *iv);
int iv_push(ivec *iv, int32_t x);
int iv_reserve(ivec *iv, size_t cap);

/* Monotonic clock in milliseconds. */
double cx_now_ms(void);
/* Resident set size of this process in megabytes (0 when unknown). */
double cx_rss_mb(void);

/* UTF-8: length of the longest prefix of `s` made of whole, valid
 * characters (a truncated character at the end is left out). */
size_t utf8_valid_prefix(const char *s, size_t n);
/* True when all of s[0..n) is valid UTF-8. */
bool utf8_is_valid(const char *s, size_t n);

#endif
