/* Fuzzes the parsing of tool calls out of generated text, per family:
 * toolcall_parse and toolcall_stream_safe.
 *
 * Input: byte 0 picks the chat family; the rest is the generated text and,
 * after a NUL, an optional tools JSON (used when it parses, validated or
 * not: the parser must not trust it).
 * Properties: the calls are a JSON array of as many {"name", "arguments"}
 * objects as the return value says; the response is no longer than the
 * text; the stream-safe prefix is no longer than the text. */
#include "fuzz_common.h"
#include "toolcall.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    chat_family fam = (chat_family)(data[0] % CHAT_N_FAMILIES);
    fuzz_split sp = fuzz_split_nul(data + 1, size - 1);
    json_doc *tdoc = fuzz_json(sp.part[1], sp.len[1]);

    strbuf resp, calls;
    sb_init(&resp);
    sb_init(&calls);
    int n = toolcall_parse(fam, sp.part[0], sp.len[0], tdoc ? json_root(tdoc) : NULL, &resp, &calls);
    FUZZ_CHECK(n >= 0);
    FUZZ_CHECK(resp.len <= sp.len[0]);
    json_doc *cd = json_parse(calls.data ? calls.data : "", calls.len, NULL, 0);
    if (!cd) fprintf(stderr, "calls are not JSON: %.*s\n", (int)(calls.len > 400 ? 400 : calls.len), calls.data);
    FUZZ_CHECK(cd != NULL);
    const json_value *arr = json_root(cd);
    FUZZ_CHECK(arr->type == JSON_ARRAY && json_len(arr) == (size_t)n);
    for (size_t i = 0; i < json_len(arr); i++) {
        const json_value *c = json_at(arr, i), *name = json_get(c, "name");
        FUZZ_CHECK(name != NULL && name->type == JSON_STRING);
        FUZZ_CHECK(json_get(c, "arguments") != NULL);
    }
    json_free(cd);
    sb_free(&resp);
    sb_free(&calls);

    for (size_t cut = 0; cut <= sp.len[0]; cut += 1 + sp.len[0] / 8)
        FUZZ_CHECK(toolcall_stream_safe(fam, sp.part[0], cut) <= cut);

    json_free(tdoc);
    fuzz_split_free(&sp);
    cx_clear_error();
    return 0;
}
