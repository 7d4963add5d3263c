/* JSON reader/writer tests: valid documents of every shape, the strictness
 * rules (RFC 8259 + UTF-8), every prefix of a document, and writer output. */
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json.h"
#include "util.h"

static json_doc *parse_str(const char *s) { return json_parse(s, strlen(s), NULL, 0); }

/* Parses, writes compactly, and returns the text (caller frees). */
static char *roundtrip(const char *s, size_t len) {
    char err[128];
    json_doc *d = json_parse(s, len, err, sizeof err);
    if (!d) return NULL;
    strbuf sb;
    sb_init(&sb);
    json_write_value(&sb, json_root(d));
    json_free(d);
    return sb.data;
}

static void check_roundtrip(const char *in, const char *want, int line) {
    char *out = roundtrip(in, strlen(in));
    CHECK_MSG(out && !strcmp(out, want), "line %d: %s -> %s (want %s)", line, in, out ? out : "(error)", want);
    /* The output must itself parse back to the same text. */
    char *again = out ? roundtrip(out, strlen(out)) : NULL;
    CHECK_MSG(again && out && !strcmp(again, out), "line %d: not idempotent: %s", line, again ? again : "(error)");
    free(out);
    free(again);
}
#define ROUNDTRIP(in, want) check_roundtrip((in), (want), __LINE__)

/* Expects rejection; the message must hold `want` (e.g. "at byte 3"). */
static void check_invalid(const char *s, size_t len, const char *want, int line) {
    char err[256] = "untouched";
    json_doc *d = json_parse(s, len, err, sizeof err);
    CHECK_MSG(d == NULL, "line %d: accepted invalid %.*s", line, (int)len, s);
    json_free(d);
    CHECK_MSG(!strncmp(err, "json: ", 6) && strstr(err, " at byte "), "line %d: error \"%s\"", line, err);
    if (want) CHECK_MSG(strstr(err, want) != NULL, "line %d: error \"%s\" should hold \"%s\"", line, err, want);
}
#define INVALID(s, want) check_invalid((s), sizeof(s) - 1, (want), __LINE__)

/* ---- valid documents ----------------------------------------------------- */

static void test_basic_doc(void) {
    const char *text = " {\"a\": 1, \"b\": [true, false, null], \"c\": {\"d\": \"e\"},\r\n\t\"f\": -1.5e3, \"g\": \"\"} ";
    char err[128];
    json_doc *d = json_parse(text, strlen(text), err, sizeof err);
    if (!CHECK_MSG(d != NULL, "%s", err)) return;
    const json_value *r = json_root(d);
    CHECK_EQ_INT(r->type, JSON_OBJECT);
    CHECK_EQ_INT(json_len(r), 5);
    const json_value *a = json_get(r, "a");
    CHECK(a && a->type == JSON_NUMBER && a->u.num.is_int && a->u.num.i == 1 && a->u.num.v == 1.0);
    const json_value *b = json_get(r, "b");
    CHECK(b && b->type == JSON_ARRAY && json_len(b) == 3);
    CHECK(json_at(b, 0)->type == JSON_BOOL && json_at(b, 0)->u.b);
    CHECK(json_at(b, 1)->type == JSON_BOOL && !json_at(b, 1)->u.b);
    CHECK(json_at(b, 2)->type == JSON_NULL);
    CHECK(json_at(b, 3) == NULL);
    const json_value *e = json_get(json_get(r, "c"), "d");
    CHECK(e && e->type == JSON_STRING && e->u.str.len == 1 && !strcmp(e->u.str.s, "e"));
    const json_value *f = json_get(r, "f");
    CHECK(f && !f->u.num.is_int && f->u.num.v == -1500.0);
    const json_value *g = json_get(r, "g");
    CHECK(g && g->type == JSON_STRING && g->u.str.len == 0 && g->u.str.s[0] == 0);
    CHECK(json_get(r, "zz") == NULL && json_get(b, "a") == NULL && json_get(r, NULL) == NULL);
    CHECK(json_at(r, 0) == NULL);
    CHECK_EQ_INT(json_len(a), 0);
    CHECK_EQ_STR(json_type_name(JSON_OBJECT), "object");
    CHECK_EQ_STR(json_type_name(JSON_NUMBER), "number");
    CHECK_EQ_STR(json_type_name(JSON_NULL), "null");
    json_free(d);
    json_free(NULL);
    CHECK(json_root(NULL) == NULL);
    CHECK(json_get(NULL, "a") == NULL && json_at(NULL, 0) == NULL && json_len(NULL) == 0);
}

static void test_scalars_and_empties(void) {
    const char *docs[] = {"42", "\"x\"", "null", "true", "false", "[]", "{}", " [ ] ", "[[[]]]", "{\"\":{}}"};
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        json_doc *d = parse_str(docs[i]);
        CHECK_MSG(d != NULL, "%s: %s", docs[i], cx_last_error());
        json_free(d);
    }
    json_doc *d = parse_str("[]");
    CHECK(d && json_root(d)->type == JSON_ARRAY && json_len(json_root(d)) == 0);
    json_free(d);
}

static void test_duplicate_keys(void) {
    json_doc *d = parse_str("{\"a\":1,\"b\":2,\"a\":3}");
    if (!CHECK(d != NULL)) return;
    CHECK_EQ_INT(json_len(json_root(d)), 3);
    CHECK_EQ_INT(json_get(json_root(d), "a")->u.num.i, 3); /* last wins */
    json_free(d);
    /* Keys with an embedded NUL do not match their prefix. */
    d = parse_str("{\"k\\u0000x\":1}");
    CHECK(d && json_get(json_root(d), "k") == NULL);
    json_free(d);
}

static const json_value *string_of(json_doc *d) {
    const json_value *v = d ? json_root(d) : NULL;
    return v && v->type == JSON_STRING ? v : NULL;
}

static void check_string(const char *json, const char *want, size_t want_len, int line) {
    json_doc *d = parse_str(json);
    const json_value *v = string_of(d);
    CHECK_MSG(v && v->u.str.len == want_len && !memcmp(v->u.str.s, want, want_len) && v->u.str.s[want_len] == 0,
              "line %d: %s (%s)", line, json, d ? "wrong value" : cx_last_error());
    json_free(d);
}
#define STRING_IS(json, want) check_string((json), (want), sizeof(want) - 1, __LINE__)

static void test_strings(void) {
    STRING_IS("\"plain\"", "plain");
    STRING_IS("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"", "\" \\ / \b \f \n \r \t");
    STRING_IS("\"\\u0041\\u00e9\\u00E9\"", "A\xC3\xA9\xC3\xA9");
    STRING_IS("\"\\u20AC\"", "\xE2\x82\xAC");
    STRING_IS("\"\\uD83D\\uDE00\"", "\xF0\x9F\x98\x80"); /* U+1F600 from a surrogate pair */
    STRING_IS("\"\\uDBFF\\uDFFF\"", "\xF4\x8F\xBF\xBF"); /* U+10FFFF */
    STRING_IS("\"\\u0000\"", "\0");
    STRING_IS("\"a\\u0000b\"", "a\0b");
    STRING_IS("\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"", "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
    STRING_IS("\"\xEF\xBF\xBF\x7F\"", "\xEF\xBF\xBF\x7F"); /* U+FFFF and DEL are allowed raw */
    STRING_IS("\"\\u0080\\u07FF\\u0800\\uFFFF\"", "\xC2\x80\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF");
}

static void test_nesting(void) {
    char buf[2 * JSON_MAX_DEPTH + 8];
    /* Exactly JSON_MAX_DEPTH levels parse. */
    memset(buf, '[', JSON_MAX_DEPTH);
    memset(buf + JSON_MAX_DEPTH, ']', JSON_MAX_DEPTH);
    json_doc *d = json_parse(buf, 2 * JSON_MAX_DEPTH, NULL, 0);
    CHECK_MSG(d != NULL, "%s", cx_last_error());
    json_free(d);
    /* One more does not. */
    memset(buf, '[', JSON_MAX_DEPTH + 1);
    memset(buf + JSON_MAX_DEPTH + 1, ']', JSON_MAX_DEPTH + 1);
    char err[128];
    d = json_parse(buf, 2 * JSON_MAX_DEPTH + 2, err, sizeof err);
    CHECK(d == NULL && strstr(err, "nesting deeper than 64 at byte 64"));
    /* Mixed objects and arrays count alike. */
    strbuf sb;
    sb_init(&sb);
    for (int i = 0; i <= JSON_MAX_DEPTH; i++) sb_puts(&sb, i % 2 ? "[" : "{\"k\":");
    sb_puts(&sb, "1");
    for (int i = JSON_MAX_DEPTH; i >= 0; i--) sb_puts(&sb, i % 2 ? "]" : "}");
    d = json_parse(sb.data, sb.len, err, sizeof err);
    CHECK(d == NULL && strstr(err, "nesting deeper"));
    sb_free(&sb);
    /* Very deep input fails fast rather than recursing. */
    size_t n = 1000000;
    char *deep = malloc(n);
    memset(deep, '[', n);
    d = json_parse(deep, n, err, sizeof err);
    CHECK(d == NULL && strstr(err, "nesting deeper"));
    free(deep);
}

/* A large flat document exercises arena chunk growth and the scratch stack. */
static void test_large(void) {
    strbuf sb;
    sb_init(&sb);
    sb_putc(&sb, '[');
    for (int i = 0; i < 100000; i++) sb_printf(&sb, "%s{\"id\":%d,\"s\":\"v%d\"}", i ? "," : "", i, i);
    sb_putc(&sb, ']');
    json_doc *d = json_parse(sb.data, sb.len, NULL, 0);
    if (CHECK(d != NULL)) {
        const json_value *r = json_root(d);
        CHECK_EQ_INT(json_len(r), 100000);
        CHECK_EQ_INT(json_get(json_at(r, 99999), "id")->u.num.i, 99999);
        CHECK_EQ_STR(json_get(json_at(r, 12345), "s")->u.str.s, "v12345");
        strbuf out;
        sb_init(&out);
        json_write_value(&out, r);
        CHECK(out.len == sb.len && !memcmp(out.data, sb.data, sb.len));
        sb_free(&out);
    }
    json_free(d);
    sb_free(&sb);
}

/* ---- numbers ------------------------------------------------------------- */

static const json_value *number_of(json_doc *d) {
    const json_value *v = d ? json_root(d) : NULL;
    return v && v->type == JSON_NUMBER ? v : NULL;
}

static void check_number(const char *s, bool is_int, long long i, double v, int line) {
    json_doc *d = parse_str(s);
    const json_value *n = number_of(d);
    CHECK_MSG(n != NULL, "line %d: %s rejected: %s", line, s, cx_last_error());
    if (n) {
        CHECK_MSG(n->u.num.is_int == is_int, "line %d: %s is_int %d", line, s, n->u.num.is_int);
        if (is_int) CHECK_MSG(n->u.num.i == i, "line %d: %s -> %lld", line, s, n->u.num.i);
        CHECK_MSG(n->u.num.v == v, "line %d: %s -> %.17g (want %.17g)", line, s, n->u.num.v, v);
    }
    json_free(d);
}
#define NUMBER(s, is_int, i, v) check_number((s), (is_int), (i), (v), __LINE__)

static void test_numbers(void) {
    NUMBER("0", true, 0, 0.0);
    NUMBER("-0", true, 0, -0.0);
    NUMBER("7", true, 7, 7.0);
    NUMBER("-123", true, -123, -123.0);
    NUMBER("1.0", false, 0, 1.0);
    NUMBER("1e2", false, 0, 100.0);
    NUMBER("1E+2", false, 0, 100.0);
    NUMBER("25e-2", false, 0, 0.25);
    NUMBER("-0.5", false, 0, -0.5);
    NUMBER("0.1", false, 0, 0.1);
    NUMBER("1e-400", false, 0, 0.0); /* underflow rounds to zero */
    NUMBER("9007199254740993", true, 9007199254740993LL, 9007199254740992.0);
    NUMBER("9223372036854775807", true, INT64_MAX, 9223372036854775807.0);
    NUMBER("-9223372036854775808", true, INT64_MIN, -9223372036854775808.0);
    NUMBER("9223372036854775808", false, 0, 9223372036854775808.0); /* past int64 */
    NUMBER("-9223372036854775809", false, 0, -9223372036854775809.0);
    NUMBER("123456789012345678901234567890", false, 0, 123456789012345678901234567890.0);
    NUMBER("1.7976931348623157e308", false, 0, 1.7976931348623157e308);
    /* A long mantissa goes through the heap path of the converter. */
    char longnum[400];
    memset(longnum, '1', sizeof longnum - 1);
    longnum[sizeof longnum - 1] = 0;
    longnum[1] = '.';
    NUMBER(longnum, false, 0, strtod(longnum, NULL));
}

/* ---- invalid documents --------------------------------------------------- */

static void test_invalid_syntax(void) {
    INVALID("", "unexpected end of input at byte 0");
    INVALID("   ", "at byte 3");
    INVALID("[1,]", "trailing comma at byte 3");
    INVALID("{\"a\":1,}", "trailing comma at byte 7");
    INVALID("[,1]", "unexpected character ',' at byte 1");
    INVALID("{,}", "expected a string key at byte 1");
    INVALID("[1 2]", "expected ',' or ']' at byte 3");
    INVALID("{\"a\" 1}", "expected ':' after key at byte 5");
    INVALID("{a:1}", "expected a string key");
    INVALID("{1:1}", "expected a string key");
    INVALID("['a']", "unexpected character");
    INVALID("[1", "unexpected end of input (expected ',' or ']') at byte 2");
    INVALID("{\"a\":", "unexpected end of input at byte 5");
    INVALID("tru", "invalid literal (expected 'true')");
    INVALID("nul", "expected 'null'");
    INVALID("True", "unexpected character 'T'");
    INVALID("NaN", NULL);
    INVALID("Infinity", NULL);
    INVALID("-Infinity", "expected a digit at byte 1");
    INVALID("{} x", "trailing characters after the document at byte 3");
    INVALID("1 2", "trailing characters");
    INVALID("\"\"x", "trailing characters");
    INVALID("[]]", "trailing characters");
    INVALID("\xEF\xBB\xBF{}", "unexpected byte 0xEF at byte 0"); /* no BOM */
    INVALID("\x0b[]", "unexpected byte 0x0B"); /* vertical tab is not whitespace */
    INVALID("[1]\x00", "trailing characters after the document at byte 3");
}

static void test_invalid_numbers(void) {
    INVALID("01", "leading zero in number at byte 0");
    INVALID("-01", "leading zero");
    INVALID("00", "leading zero");
    INVALID("[1,02]", "leading zero in number at byte 3");
    INVALID("-", "expected a digit at byte 1");
    INVALID("1.", "expected a digit after the decimal point at byte 2");
    INVALID(".5", "unexpected character '.'");
    INVALID("1e", "expected a digit in the exponent at byte 2");
    INVALID("1e+", "expected a digit in the exponent");
    INVALID("+1", "unexpected character '+'");
    INVALID("1.e5", "after the decimal point");
    INVALID("0x10", "trailing characters after the document at byte 1");
    INVALID("1e400", "number out of range at byte 0");
    INVALID("-1e400", "number out of range");
}

static void test_invalid_strings(void) {
    INVALID("\"abc", "unterminated string at byte 0");
    INVALID("\"abc\\\"", "unterminated string");
    INVALID("\"\\x\"", "invalid escape '\\x' at byte 1");
    INVALID("\"\\u12G4\"", "invalid \\u escape at byte 1");
    INVALID("\"\\u12\"", "escape at byte 1");
    INVALID("\"\\uD800\"", "lone high surrogate \\uD800 at byte 1");
    INVALID("\"\\uDC00\"", "lone low surrogate \\uDC00 at byte 1");
    INVALID("\"\\uD800\\u0041\"", "not followed by a low one");
    INVALID("\"\\uD800\\uD800\"", "not followed by a low one");
    INVALID("\"\\uD800x\"", "lone high surrogate");
    INVALID("\"ab\\uDE00\\uD83D\"", "lone low surrogate \\uDE00 at byte 3"); /* reversed pair */
    INVALID("\"a\x01" "b\"", "unescaped control character 0x01 in string at byte 2");
    INVALID("\"a\nb\"", "control character 0x0A");
    INVALID("\"a\tb\"", "control character 0x09");
    INVALID("\"\x00\"", "control character 0x00 in string at byte 1");
    INVALID("\"ab\xFF\"", "invalid UTF-8 in string at byte 3");
    INVALID("\"\x80\"", "invalid UTF-8");                     /* lone continuation */
    INVALID("\"\xC0\xAF\"", "invalid UTF-8");                 /* overlong '/' */
    INVALID("\"\xE0\x80\xAF\"", "invalid UTF-8");             /* overlong, 3 bytes */
    INVALID("\"\xF0\x80\x80\xAF\"", "invalid UTF-8");         /* overlong, 4 bytes */
    INVALID("\"\xED\xA0\x80\"", "invalid UTF-8");             /* UTF-8 encoded surrogate */
    INVALID("\"\xF4\x90\x80\x80\"", "invalid UTF-8");         /* above U+10FFFF */
    INVALID("\"x\xE2\x82\"", "invalid UTF-8 in string at byte 2"); /* truncated character */
    INVALID("\"\xC3\"", "invalid UTF-8");
    INVALID("{\"\xFF\":1}", "invalid UTF-8 in string at byte 2"); /* keys are checked too */
}

/* Every proper prefix of a document is invalid (the root object closes only
 * at the last byte). Each prefix gets its own exact-size allocation so ASan
 * catches any read past its end. */
static void test_truncation(void) {
    const char *doc = "{\"a\":[1,-2.5e+3,true,false,null,\"s\\u00e9\\uD83D\\uDE00\\n\xC3\xA9\"],"
                      "\"b\":{\"c\":{}},\"d\":[],\"e\":-0}";
    size_t n = strlen(doc);
    json_doc *full = json_parse(doc, n, NULL, 0);
    CHECK_MSG(full != NULL, "%s", cx_last_error());
    json_free(full);
    int rejected = 0;
    for (size_t k = 0; k < n; k++) {
        char *copy = malloc(k ? k : 1);
        memcpy(copy, doc, k);
        char err[128] = "";
        json_doc *d = json_parse(copy, k, err, sizeof err);
        if (!d && strstr(err, " at byte ")) rejected++;
        else fprintf(stderr, "prefix %zu accepted or no error: \"%s\"\n", k, err);
        json_free(d);
        free(copy);
    }
    CHECK_EQ_INT(rejected, (int)n);
}

/* Random byte changes (fixed seed) to a valid document: the parser either
 * accepts or reports an error, and whatever it accepts writes out as text
 * that parses again. Under ASan this also catches any overread. */
static void test_mutations(void) {
    const char *doc = "{\"k\":[1,2.5e3,\"a\\u00e9\\n\xC3\xA9\",{\"x\":null},true],\"\":-0.1}";
    size_t n = strlen(doc);
    char *copy = malloc(n);
    uint64_t rng = 12345;
    int consistent = 0;
    const int iters = 20000;
    for (int iter = 0; iter < iters; iter++) {
        memcpy(copy, doc, n);
        for (int k = 0; k <= iter % 3; k++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            static const char syntax[] = "{}[],:\"\\u0eE.-+ 1"; /* mostly meaningful bytes */
            unsigned char byte = (unsigned char)(rng >> 20);
            if (iter % 2) byte = (unsigned char)syntax[(rng >> 20) % (sizeof syntax - 1)];
            copy[(rng >> 33) % n] = (char)byte;
        }
        char err[128] = "";
        json_doc *d = json_parse(copy, n, err, sizeof err);
        if (!d) {
            consistent += strstr(err, " at byte ") != NULL;
            continue;
        }
        char *out = roundtrip(copy, n);
        char *again = out ? roundtrip(out, strlen(out)) : NULL;
        if (again && !strcmp(out, again)) consistent++;
        else fprintf(stderr, "mutation %d: %.*s -> %s -> %s\n", iter, (int)n, copy, out ? out : "(null)", again ? again : "(null)");
        free(out);
        free(again);
        json_free(d);
    }
    CHECK_EQ_INT(consistent, iters);
    free(copy);
}

static void test_error_buffer(void) {
    CHECK(json_parse("[", 1, NULL, 0) == NULL);
    CHECK_CONTAINS(cx_last_error(), "at byte 1"); /* the error is also the thread's last error */
    char small[8];
    CHECK(json_parse("[", 1, small, sizeof small) == NULL);
    CHECK_EQ_INT(strlen(small), sizeof small - 1); /* truncated, NUL-terminated */
    char err[64] = "stale";
    json_doc *d = json_parse("[]", 2, err, sizeof err);
    CHECK(d && err[0] == 0); /* success clears it */
    json_free(d);
    CHECK(json_parse(NULL, 0, NULL, 0) == NULL);
}

/* ---- writers ------------------------------------------------------------- */

static void check_written_string(const char *s, size_t len, const char *want, int line) {
    strbuf sb;
    sb_init(&sb);
    json_write_string(&sb, s, len);
    CHECK_MSG(sb.data && !strcmp(sb.data, want), "line %d: wrote %s, want %s", line, sb.data, want);
    sb_free(&sb);
}
#define WRITES_STRING(s, want) check_written_string((s), sizeof(s) - 1, (want), __LINE__)

static void test_write_string(void) {
    WRITES_STRING("plain", "\"plain\"");
    WRITES_STRING("", "\"\"");
    WRITES_STRING("q\"b\\s/", "\"q\\\"b\\\\s/\"");
    WRITES_STRING("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"");
    WRITES_STRING("\x01\x1f\x7f", "\"\\u0001\\u001f\x7f\"");
    WRITES_STRING("a\0b", "\"a\\u0000b\"");
    WRITES_STRING("\xC3\xA9\xF0\x9F\x98\x80", "\"\xC3\xA9\xF0\x9F\x98\x80\""); /* UTF-8 passes through */
    /* Invalid bytes become U+FFFD so the output stays valid JSON. */
    WRITES_STRING("a\xFF" "b", "\"a\xEF\xBF\xBD" "b\"");
    WRITES_STRING("\xE2\x82", "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");
    WRITES_STRING("\xED\xA0\x80\n", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\\n\"");
    strbuf sb;
    sb_init(&sb);
    json_write_string(&sb, NULL, 0);
    CHECK_EQ_STR(sb.data, "\"\"");
    sb_free(&sb);
}

static void check_written_number(double v, const char *want, int line) {
    strbuf sb;
    sb_init(&sb);
    json_write_number(&sb, v);
    CHECK_MSG(sb.data && !strcmp(sb.data, want), "line %d: wrote %s, want %s", line, sb.data, want);
    /* Finite values read back as exactly the same double. */
    if (isfinite(v) && sb.data) CHECK_MSG(strtod(sb.data, NULL) == v, "line %d: %s does not round-trip", line, sb.data);
    sb_free(&sb);
}
#define WRITES_NUMBER(v, want) check_written_number((v), (want), __LINE__)

static void test_write_number(void) {
    WRITES_NUMBER(0.0, "0");
    WRITES_NUMBER(1.0, "1");
    WRITES_NUMBER(-3.0, "-3");
    WRITES_NUMBER(1e15, "1000000000000000");
    WRITES_NUMBER(9007199254740992.0, "9007199254740992");   /* 2^53 */
    WRITES_NUMBER(-9007199254740992.0, "-9007199254740992");
    WRITES_NUMBER(18014398509481984.0, "18014398509481984"); /* 2^54: past 2^53, %.17g */
    WRITES_NUMBER(1e20, "1e+20");
    WRITES_NUMBER(0.5, "0.5");
    WRITES_NUMBER(0.1, "0.1");
    WRITES_NUMBER(0.7, "0.7");
    WRITES_NUMBER(0.1 + 0.2, "0.30000000000000004");
    WRITES_NUMBER(1.0 / 3.0, "0.3333333333333333");
    WRITES_NUMBER(-2.5e-7, "-2.5e-07");
    WRITES_NUMBER(1.7976931348623157e308, "1.7976931348623157e+308");
    WRITES_NUMBER(5e-324, "4.94065645841247e-324");
    WRITES_NUMBER(NAN, "null");
    WRITES_NUMBER(INFINITY, "null");
    WRITES_NUMBER(-INFINITY, "null");
}

static void test_write_value(void) {
    ROUNDTRIP(" { \"a\" : [ 1 , 2.5 , -0.125e1 , true , false , null ] , \"b\" : { } , \"c\" : [ ] } ",
              "{\"a\":[1,2.5,-1.25,true,false,null],\"b\":{},\"c\":[]}");
    ROUNDTRIP("[9223372036854775807,-9223372036854775808,9007199254740993]",
              "[9223372036854775807,-9223372036854775808,9007199254740993]"); /* is_int prints exactly */
    ROUNDTRIP("[1.0,1e2,1E-2,100000000000000000000]", "[1,100,0.01,1e+20]");
    ROUNDTRIP("[0.1,0.30000000000000004,1e-300]", "[0.1,0.30000000000000004,1e-300]");
    ROUNDTRIP("[-0,-0.0,0,-0e5]", "[-0,-0,0,-0]");
    ROUNDTRIP("\"\\u00e9\\/\\uD83D\\uDE00\\u0001\\\"\"", "\"\xC3\xA9/\xF0\x9F\x98\x80\\u0001\\\"\"");
    ROUNDTRIP("{\"k\\n\":\"\\u0000\"}", "{\"k\\n\":\"\\u0000\"}");
    ROUNDTRIP("{\"a\":1,\"a\":2}", "{\"a\":1,\"a\":2}"); /* the writer keeps what it was given */
    strbuf sb;
    sb_init(&sb);
    json_write_value(&sb, NULL);
    CHECK_EQ_STR(sb.data, "null");
    sb_free(&sb);
}

/* Under a locale whose decimal point is ',' numbers still read and write with '.'. */
static void test_locale(void) {
    const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", "C.UTF-8"};
    const char *set = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !set; i++) {
        set = setlocale(LC_NUMERIC, names[i]);
        if (set && strcmp(localeconv()->decimal_point, ",")) set = NULL;
    }
    if (!set) {
        fprintf(stderr, "note: no locale with a ',' decimal point installed; locale test skipped\n");
        setlocale(LC_NUMERIC, "C");
        return;
    }
    ROUNDTRIP("[1.5,-0.25e1]", "[1.5,-2.5]");
    setlocale(LC_NUMERIC, "C");
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    test_basic_doc();
    test_scalars_and_empties();
    test_duplicate_keys();
    test_strings();
    test_nesting();
    test_large();
    test_numbers();
    test_invalid_syntax();
    test_invalid_numbers();
    test_invalid_strings();
    test_truncation();
    test_mutations();
    test_error_buffer();
    test_write_string();
    test_write_number();
    test_write_value();
    test_locale();
    return CHECK_DONE();
}
