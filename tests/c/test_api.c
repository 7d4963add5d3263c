/* The C API end to end on a real (tiny) model: the 14 response keys and
 * their consistency, streaming, and the error paths. The model path comes
 * from CACTUS_TEST_MODEL (tests/test_c.py converts a fixture and sets it). */
#include <stdlib.h>
#include <string.h>

#include "cactus.h"
#include "check.h"
#include "json.h"

static const char *KEYS[] = {"success", "error", "cloud_handoff", "response", "function_calls", "confidence",
                             "time_to_first_token_ms", "total_time_ms", "prefill_tps", "decode_tps",
                             "ram_usage_mb", "prefill_tokens", "decode_tokens", "total_tokens"};

typedef struct {
    char text[1 << 16];
    size_t len;
    int calls;
} stream_acc;

static void on_token(const char *token, uint32_t id, void *ud) {
    stream_acc *acc = ud;
    (void)id;
    size_t n = strlen(token);
    if (acc->len + n < sizeof acc->text) {
        memcpy(acc->text + acc->len, token, n);
        acc->len += n;
    }
    acc->calls++;
}

static double num(const json_value *root, const char *key) {
    const json_value *v = json_get(root, key);
    return v && v->type == JSON_NUMBER ? v->u.num.v : -1.0;
}

static void test_complete(cactus_model_t m) {
    static char buf[1 << 17];
    static stream_acc acc;
    const char *msgs = "[{\"role\":\"user\",\"content\":\"Hello there\"}]";
    int rc = cactus_complete(m, msgs, buf, sizeof buf, "{\"max_tokens\":20,\"seed\":7}", NULL, on_token, &acc);
    CHECK_EQ_INT(rc, CACTUS_OK);
    json_doc *d = json_parse(buf, strlen(buf), NULL, 0);
    if (!CHECK(d != NULL)) return;
    const json_value *r = json_root(d);
    CHECK_EQ_INT(json_len(r), 16); /* the 14 documented keys + prompt_tokens, finish_reason */
    for (size_t i = 0; i < sizeof KEYS / sizeof KEYS[0]; i++) CHECK_MSG(json_get(r, KEYS[i]) != NULL, "key %s", KEYS[i]);
    CHECK(json_get(r, "success")->type == JSON_BOOL && json_get(r, "success")->u.b);
    double pre = num(r, "prefill_tokens"), dec = num(r, "decode_tokens"), tot = num(r, "total_tokens");
    CHECK(dec >= 1 && dec <= 20);
    CHECK(pre > 0);
    CHECK_NEAR(tot, pre + dec, 0);
    CHECK(num(r, "time_to_first_token_ms") <= num(r, "total_time_ms"));
    const json_value *resp = json_get(r, "response");
    if (CHECK(resp && resp->type == JSON_STRING)) {
        CHECK_EQ_INT(acc.len, resp->u.str.len);
        CHECK(memcmp(acc.text, resp->u.str.s, acc.len) == 0);
    }
    json_free(d);
}

/* A reset from inside the callback: the completion is running on the handle. */
typedef struct {
    cactus_model_t m;
    int rc;
    char error[256];
} reset_probe;

static void reset_in_callback(const char *token, uint32_t id, void *ud) {
    reset_probe *p = ud;
    (void)token;
    (void)id;
    if (p->rc != 1) return; /* once */
    p->rc = cactus_reset(p->m);
    strncpy(p->error, cactus_get_last_error(), sizeof p->error - 1);
}

static void test_reset_while_busy(cactus_model_t m) {
    static char buf[1 << 16];
    reset_probe p = {.m = m, .rc = 1};
    const char *msgs = "[{\"role\":\"user\",\"content\":\"Hello\"}]";
    CHECK_EQ_INT(cactus_complete(m, msgs, buf, sizeof buf, "{\"max_tokens\":4}", NULL, reset_in_callback, &p),
                 CACTUS_OK);
    CHECK_EQ_INT(p.rc, CACTUS_ERR_INVALID_ARGUMENT);
    CHECK_MSG(strstr(p.error, "a call is running on this handle") != NULL, "error: %s", p.error);
    CHECK_EQ_INT(cactus_reset(m), CACTUS_OK); /* once the call has returned */
    CHECK_EQ_INT(cactus_reset(NULL), CACTUS_ERR_INVALID_ARGUMENT);
}

static void test_errors(cactus_model_t m) {
    char buf[4096];
    CHECK(cactus_init(NULL, NULL, false) == NULL);
    CHECK(strlen(cactus_get_last_error()) > 0);
    CHECK(cactus_init("/nonexistent/model.gguf", NULL, false) == NULL);
    CHECK(strstr(cactus_get_last_error(), "does not exist") != NULL);
    CHECK_EQ_INT(cactus_complete(NULL, "[]", buf, sizeof buf, NULL, NULL, NULL, NULL), CACTUS_ERR_INVALID_ARGUMENT);
    CHECK(strstr(buf, "\"success\":false") != NULL);
    CHECK_EQ_INT(cactus_complete(m, "not json", buf, sizeof buf, NULL, NULL, NULL, NULL), CACTUS_ERR_INVALID_ARGUMENT);
    CHECK(strstr(buf, "not valid JSON") != NULL);
    CHECK_EQ_INT(cactus_complete(m, "[{\"role\":\"user\",\"content\":\"x\"}]", buf, 10, NULL, NULL, NULL, NULL),
                 CACTUS_ERR_BUFFER_TOO_SMALL);
    size_t n = 0;
    CHECK_EQ_INT(cactus_tokenize(m, NULL, NULL, 0, &n), CACTUS_ERR_INVALID_ARGUMENT);
    cactus_stop(NULL);
    cactus_reset(NULL);
    cactus_destroy(NULL);
}

int main(void) {
    const char *path = getenv("CACTUS_TEST_MODEL");
    if (!CHECK_MSG(path != NULL, "set CACTUS_TEST_MODEL to a GGUF model (tests/test_c.py does)")) return CHECK_DONE();
    cactus_model_t m = cactus_init(path, NULL, false);
    if (!CHECK_MSG(m != NULL, "cactus_init: %s", cactus_get_last_error())) return CHECK_DONE();
    test_complete(m);
    test_errors(m);
    test_reset_while_busy(m);
    cactus_destroy(m);
    return CHECK_DONE();
}
