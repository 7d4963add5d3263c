/* Shared helpers: last error, logging, growable buffers, clocks, UTF-8. */
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char g_last_error[1024];

int cx_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_last_error, sizeof g_last_error, fmt, ap);
    va_end(ap);
    return -1;
}

const char *cx_last_error(void) { return g_last_error; }

void cx_clear_error(void) { g_last_error[0] = 0; }

static int log_level(void) {
    /* Read once: the environment does not change under a running engine. */
    static _Atomic int level = -1; /* atomic: threads may race to read it first */
    if (level < 0) {
        const char *e = getenv("CACTUS_LOG");
        int l = 0;
        if (e) {
            if (!strcmp(e, "error")) l = CX_LOG_ERROR;
            else if (!strcmp(e, "warn")) l = CX_LOG_WARN;
            else if (!strcmp(e, "info")) l = CX_LOG_INFO;
            else if (!strcmp(e, "debug")) l = CX_LOG_DEBUG;
            else l = atoi(e);
        }
        level = l;
    }
    return level;
}

void cx_log(int level, const char *fmt, ...) {
    if (level > log_level()) return;
    static const char *names[] = {"", "error", "warn", "info", "debug"};
    fprintf(stderr, "cactus %s: ", names[level < 1 || level > 4 ? 0 : level]);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void sb_init(strbuf *sb) { memset(sb, 0, sizeof *sb); }

void sb_free(strbuf *sb) {
    free(sb->data);
    sb_init(sb);
}

void sb_clear(strbuf *sb) {
    sb->len = 0;
    if (sb->data) sb->data[0] = 0;
}

static bool sb_grow(strbuf *sb, size_t extra) {
    if (sb->failed) return false;
    if (sb->len + extra + 1 <= sb->cap) return true;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < sb->len + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            sb->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(sb->data, cap);
    if (!p) {
        sb->failed = true;
        return false;
    }
    sb->data = p;
    sb->cap = cap;
    return true;
}

void sb_append(strbuf *sb, const char *s, size_t n) {
    if (!sb_grow(sb, n)) return;
    if (n) memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = 0;
}

void sb_puts(strbuf *sb, const char *s) { sb_append(sb, s, strlen(s)); }

void sb_putc(strbuf *sb, char c) { sb_append(sb, &c, 1); }

void sb_printf(strbuf *sb, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !sb_grow(sb, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

void iv_init(ivec *iv) { memset(iv, 0, sizeof *iv); }

void iv_free(ivec *iv) {
    free(iv->v);
    iv_init(iv);
}

int iv_reserve(ivec *iv, size_t cap) {
    if (cap <= iv->cap) return 0;
    if (cap > SIZE_MAX / sizeof(int32_t)) return cx_error("out of memory");
    int32_t *p = realloc(iv->v, cap * sizeof(int32_t));
    if (!p) return cx_error("out of memory");
    iv->v = p;
    iv->cap = cap;
    return 0;
}

int iv_push(ivec *iv, int32_t x) {
    if (iv->n == iv->cap && iv_reserve(iv, iv->cap ? iv->cap * 2 : 16)) return -1;
    iv->v[iv->n++] = x;
    return 0;
}

double cx_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

double cx_rss_mb(void) {
    /* /proc/self/statm: size resident shared ... in pages. */
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0.0;
    unsigned long size = 0, resident = 0;
    int ok = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    if (ok != 2) return 0.0;
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

/* Length of the valid UTF-8 character at s (0 when invalid or truncated). */
static size_t utf8_char_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t len;
    unsigned int cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return len;
}

size_t utf8_valid_prefix(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t l = utf8_char_len(u + i, n - i);
        if (!l) break;
        i += l;
    }
    return i;
}

bool utf8_is_valid(const char *s, size_t n) { return utf8_valid_prefix(s, n) == n; }
