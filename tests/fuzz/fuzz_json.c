/* Fuzzes the JSON reader and what reads the JSON arguments of a completion:
 * json_parse (strictness, depth limit, UTF-8), chat_validate on messages,
 * options_parse on options, cloud_parse_reply on a cloud reply, and
 * cloud_build_request over whatever validated.
 *
 * Input: one JSON text. It is used as a whole (as messages, options and a
 * cloud reply) and, when it is an object, through its "messages",
 * "options" and "tools" members.
 * Properties: a document that parses is valid UTF-8; writing it back gives
 * JSON that parses and writes back to the same bytes; the cloud request
 * and the parsed tool calls are valid JSON. */
#include "chat.h"
#include "cloud.h"
#include "fuzz_common.h"
#include "options.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    return 0;
}

static void check_valid_json(const strbuf *sb) {
    if (sb->failed || sb->len == 0) return;
    json_doc *d = json_parse(sb->data, sb->len, NULL, 0);
    FUZZ_CHECK(d != NULL);
    json_free(d);
}

/* Write, parse, write again: the two writes are identical. */
static void check_roundtrip(const json_value *v) {
    strbuf a, b;
    sb_init(&a);
    sb_init(&b);
    json_write_value(&a, v);
    FUZZ_CHECK(!a.failed && a.len > 0);
    char err[128];
    json_doc *d = json_parse(a.data, a.len, err, sizeof err);
    if (!d) fprintf(stderr, "re-parse failed: %s\n%.*s\n", err, (int)(a.len > 400 ? 400 : a.len), a.data);
    FUZZ_CHECK(d != NULL);
    json_write_value(&b, json_root(d));
    FUZZ_CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    json_free(d);
    sb_free(&a);
    sb_free(&b);
}

/* Every lookup path on every node (values are read, never trusted). */
static size_t walk(const json_value *v, int depth) {
    size_t n = 1;
    FUZZ_CHECK(depth <= JSON_MAX_DEPTH + 1);
    if (v->type == JSON_ARRAY) {
        for (size_t i = 0; i < json_len(v); i++) n += walk(json_at(v, i), depth + 1);
        FUZZ_CHECK(json_at(v, json_len(v)) == NULL);
    } else if (v->type == JSON_OBJECT) {
        for (size_t i = 0; i < v->u.obj.n; i++) {
            const json_member *m = &v->u.obj.members[i];
            FUZZ_CHECK(m->key != NULL && m->key[m->key_len] == 0);
            if (strlen(m->key) == m->key_len) FUZZ_CHECK(json_get(v, m->key) != NULL);
            n += walk(&m->value, depth + 1);
        }
    } else if (v->type == JSON_STRING) {
        FUZZ_CHECK(v->u.str.s[v->u.str.len] == 0);
        FUZZ_CHECK(utf8_is_valid(v->u.str.s, v->u.str.len));
    }
    return n;
}

static void use_arguments(const json_value *messages, const json_value *options, const json_value *tools) {
    cx_call_options co;
    bool msgs_ok = messages && chat_validate(messages) == 0;
    bool opts_ok = options_parse(options, &co) == 0;
    if (msgs_ok && opts_ok) {
        strbuf req;
        sb_init(&req);
        cloud_build_request(messages, tools && tools->type == JSON_ARRAY ? tools : NULL, &co, &req);
        check_valid_json(&req);
        sb_free(&req);
    }
    options_free(&co);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[256];
    json_doc *d = json_parse((const char *)data, size, err, sizeof err);
    if (!d) {
        FUZZ_CHECK(memchr(err, 0, sizeof err) != NULL);
        return 0;
    }
    FUZZ_CHECK(utf8_is_valid((const char *)data, size));
    const json_value *root = json_root(d);
    walk(root, 0);
    check_roundtrip(root);

    use_arguments(root, root, NULL);
    if (root->type == JSON_OBJECT)
        use_arguments(json_get(root, "messages"), json_get(root, "options"), json_get(root, "tools"));

    strbuf text, calls;
    sb_init(&text);
    sb_init(&calls);
    if (cloud_parse_reply((const char *)data, size, &text, &calls) == 0) {
        FUZZ_CHECK(utf8_is_valid(text.data ? text.data : "", text.len));
        check_valid_json(&calls);
    }
    sb_free(&text);
    sb_free(&calls);
    json_free(d);
    cx_clear_error();
    return 0;
}
