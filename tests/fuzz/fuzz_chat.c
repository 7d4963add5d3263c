/* Fuzzes chat template rendering for every family: chat_validate on the
 * messages, then chat_render with the tools as given (chat_render validates
 * them itself, as cactus_render_chat relies on).
 *
 * Input: byte 0 picks the family, byte 1 the flags (add_generation_prompt,
 * BOS text, EOS text); then the messages JSON and, after a NUL, an optional
 * tools JSON.
 * Properties: rendering validated messages never fails for want of memory
 * silently; the prompt is valid UTF-8 (every input string is). */
#include "chat.h"
#include "fuzz_common.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    chat_family fam = (chat_family)(data[0] % CHAT_N_FAMILIES);
    bool gen_prompt = data[1] & 1;
    const char *bos = (data[1] & 2) ? "<s>" : NULL, *eos = (data[1] & 4) ? "</s>" : NULL;
    fuzz_split sp = fuzz_split_nul(data + 2, size - 2);
    json_doc *mdoc = fuzz_json(sp.part[0], sp.len[0]);
    json_doc *tdoc = fuzz_json(sp.part[1], sp.len[1]);
    if (mdoc && chat_validate(json_root(mdoc)) == 0) {
        strbuf out;
        sb_init(&out);
        bool bos_rendered = false;
        int rc = chat_render(fam, json_root(mdoc), tdoc ? json_root(tdoc) : NULL, gen_prompt, bos, eos, &out,
                             &bos_rendered);
        FUZZ_CHECK(rc == 0 || rc == -1);
        FUZZ_CHECK(!out.failed);
        if (rc == 0) {
            if (!utf8_is_valid(out.data ? out.data : "", out.len))
                fprintf(stderr, "invalid UTF-8 in the prompt of family %s\n", chat_family_name(fam));
            FUZZ_CHECK(utf8_is_valid(out.data ? out.data : "", out.len));
            FUZZ_CHECK(!bos_rendered || (bos && out.len >= 3 && memcmp(out.data, bos, 3) == 0));
        }
        sb_free(&out);
    }
    json_free(mdoc);
    json_free(tdoc);
    fuzz_split_free(&sp);
    cx_clear_error();
    return 0;
}
