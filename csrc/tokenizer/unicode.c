/* UTF-8 decoding, character classes and NFC for the tokenizers. */
#include "unicode.h"

#include <stdlib.h>
#include <string.h>

/* Index of the run containing cp in a (start << 8 | value) run table. */
static uint32_t run_value(const uint32_t *runs, size_t n, uint32_t cp) {
    size_t lo = 0, hi = n; /* runs[lo] starts at or before cp; runs[0] starts at 0 */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if ((runs[mid] >> 8) <= cp) lo = mid;
        else hi = mid;
    }
    return runs[lo] & 0xff;
}

uint8_t ucd_flags_slow(uint32_t cp) {
    if (cp >= 0x110000u) return 0;
    return (uint8_t)run_value(ucd_flag_runs, ucd_flag_runs_len, cp);
}

static unsigned ucd_ccc(uint32_t cp) {
    if (cp < 0x300 || cp >= 0x110000u) return 0;
    return run_value(ucd_ccc_runs, ucd_ccc_runs_len, cp);
}

size_t utf8_next_slow(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) len = 2, v = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, v = c & 0x07, min = 0x10000;
    else goto raw;
    if (len > n) goto raw;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) goto raw;
        v = (v << 6) | (s[i] & 0x3F);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are not characters. */
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) goto raw;
    *cp = v;
    return len;
raw:
    *cp = UCD_RAW_BYTE(c);
    return 1;
}

size_t utf8_put(uint32_t cp, char *out) {
    if (UCD_IS_RAW(cp)) {
        out[0] = (char)(cp - 0x110000u);
        return 1;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

bool nfc_quick_yes(const char *s, size_t n) {
    unsigned last_ccc = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += utf8_next(s + i, n - i, &cp);
        if (cp < 0x300) { /* nothing below U+0300 combines or decomposes */
            last_ccc = 0;
            continue;
        }
        uint8_t f = ucd_flags(cp);
        if (f & (UCD_QC_NO | UCD_QC_MAYBE)) return false;
        unsigned ccc = (f & UCD_CCC) ? ucd_ccc(cp) : 0;
        if (ccc && last_ccc > ccc) return false;
        last_ccc = ccc;
    }
    return true;
}

/* ---- NFC: full canonical decomposition, canonical ordering, composition ---- */

enum {
    HANGUL_S = 0xAC00, HANGUL_L = 0x1100, HANGUL_V = 0x1161, HANGUL_T = 0x11A7,
    HANGUL_LN = 19, HANGUL_VN = 21, HANGUL_TN = 28, HANGUL_NN = HANGUL_VN * HANGUL_TN,
    HANGUL_SN = HANGUL_LN * HANGUL_NN,
};

typedef struct {
    uint32_t *v;
    size_t n, cap;
    bool failed;
} cpvec;

static void cv_push(cpvec *c, uint32_t x) {
    if (c->failed) return;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        uint32_t *p = realloc(c->v, cap * sizeof *p);
        if (!p) {
            c->failed = true;
            return;
        }
        c->v = p;
        c->cap = cap;
    }
    c->v[c->n++] = x;
}

/* The (first, second) decomposition of cp, or NULL. */
static const uint32_t *find_decomp(uint32_t cp) {
    size_t lo = 0, hi = ucd_decomp_len / 3;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        uint32_t k = ucd_decomp[mid * 3];
        if (k == cp) return &ucd_decomp[mid * 3 + 1];
        if (k < cp) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static void decompose(uint32_t cp, cpvec *out) {
    if (cp >= HANGUL_S && cp < HANGUL_S + HANGUL_SN) {
        uint32_t s = cp - HANGUL_S;
        cv_push(out, HANGUL_L + s / HANGUL_NN);
        cv_push(out, HANGUL_V + (s % HANGUL_NN) / HANGUL_TN);
        if (s % HANGUL_TN) cv_push(out, HANGUL_T + s % HANGUL_TN);
        return;
    }
    const uint32_t *d = cp >= 0xC0 && !UCD_IS_RAW(cp) ? find_decomp(cp) : NULL;
    if (!d) {
        cv_push(out, cp);
        return;
    }
    decompose(d[0], out); /* depth is bounded by the data (at most 3 levels) */
    if (d[1]) decompose(d[1], out);
}

/* Stable sort of v[0..n) by combining class; n is usually tiny, but a long
 * run of marks must not go quadratic, so long runs use a counting pass. */
static void sort_by_ccc(uint32_t *v, size_t n, uint32_t *tmp) {
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            uint32_t x = v[i];
            unsigned cx = ucd_ccc(x);
            size_t j = i;
            while (j > 0 && ucd_ccc(v[j - 1]) > cx) {
                v[j] = v[j - 1];
                j--;
            }
            v[j] = x;
        }
        return;
    }
    size_t count[257] = {0};
    for (size_t i = 0; i < n; i++) count[ucd_ccc(v[i]) + 1]++;
    for (size_t c = 1; c < 257; c++) count[c] += count[c - 1];
    for (size_t i = 0; i < n; i++) tmp[count[ucd_ccc(v[i])]++] = v[i];
    memcpy(v, tmp, n * sizeof *v);
}

static int reorder(cpvec *c) {
    uint32_t *tmp = malloc((c->n ? c->n : 1) * sizeof *tmp);
    if (!tmp) return -1;
    for (size_t i = 0; i < c->n;) {
        if (ucd_ccc(c->v[i]) == 0) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < c->n && ucd_ccc(c->v[j]) != 0) j++;
        sort_by_ccc(c->v + i, j - i, tmp);
        i = j;
    }
    free(tmp);
    return 0;
}

/* The primary composite of (a, b), or 0. */
static uint32_t compose_pair(uint32_t a, uint32_t b) {
    if (a >= HANGUL_L && a < HANGUL_L + HANGUL_LN && b >= HANGUL_V && b < HANGUL_V + HANGUL_VN)
        return HANGUL_S + ((a - HANGUL_L) * HANGUL_VN + (b - HANGUL_V)) * HANGUL_TN;
    if (a >= HANGUL_S && a < HANGUL_S + HANGUL_SN && (a - HANGUL_S) % HANGUL_TN == 0 && b > HANGUL_T &&
        b < HANGUL_T + HANGUL_TN)
        return a + (b - HANGUL_T);
    size_t lo = 0, hi = ucd_comp_len / 3;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const uint32_t *e = &ucd_comp[mid * 3];
        if (e[0] == a && e[1] == b) return e[2];
        if (e[0] < a || (e[0] == a && e[1] < b)) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

/* Canonical composition in place (UAX #15): a character joins the last
 * starter unless something between them blocks it. */
static void compose(cpvec *c) {
    size_t out = 0, starter = SIZE_MAX;
    for (size_t i = 0; i < c->n; i++) {
        uint32_t cp = c->v[i];
        unsigned cc = ucd_ccc(cp);
        if (starter != SIZE_MAX) {
            unsigned last_cc = ucd_ccc(c->v[out - 1]);
            bool adjacent = out - 1 == starter;
            if (adjacent || (last_cc != 0 && last_cc < cc)) {
                uint32_t comp = compose_pair(c->v[starter], cp);
                if (comp) {
                    c->v[starter] = comp;
                    continue;
                }
            }
        }
        c->v[out++] = cp;
        if (cc == 0) starter = out - 1;
    }
    c->n = out;
}

int nfc_append(const char *s, size_t n, strbuf *out) {
    cpvec c = {0};
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += utf8_next(s + i, n - i, &cp);
        decompose(cp, &c);
    }
    if (c.failed || reorder(&c) < 0) {
        free(c.v);
        return cx_error("tokenizer: out of memory normalizing text");
    }
    compose(&c);
    char buf[4];
    for (size_t i = 0; i < c.n; i++) sb_append(out, buf, utf8_put(c.v[i], buf));
    free(c.v);
    if (out->failed) return cx_error("tokenizer: out of memory normalizing text");
    return 0;
}
