/* Tool-call parsing tests: every family's call syntax, several calls in one
 * answer, arguments typed by the tools' schemas, malformed and partial
 * calls (which must never fail and must stay in the response), and the
 * streaming hold-back. */
#include <string.h>

#include "check.h"
#include "json.h"
#include "toolcall.h"
#include "util.h"

static const char *TOOLS =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{\"location\":{\"type\":\"string\"},\"days\":{\"type\":\"integer\"},"
    "\"metric\":{\"type\":\"boolean\"},\"ratio\":{\"type\":\"number\"},\"zip\":{\"type\":\"string\"},"
    "\"opts\":{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\"}}},"
    "\"ids\":{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}},\"required\":[\"location\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"parameters\":{\"type\":\"object\","
    "\"properties\":{}}}}]";

static json_doc *g_tools;

/* Parses `text` and checks the response, the calls array and the count. */
static void expect(chat_family fam, const char *text, const char *want_resp, const char *want_calls, int want_n,
                   int line) {
    strbuf resp, calls;
    sb_init(&resp);
    sb_init(&calls);
    int n = toolcall_parse(fam, text, strlen(text), json_root(g_tools), &resp, &calls);
    CHECK_MSG(n == want_n, "line %d: %d calls, want %d (calls %s)", line, n, want_n, calls.data);
    CHECK_MSG(resp.data && !strcmp(resp.data, want_resp), "line %d: response \"%s\", want \"%s\"", line,
              resp.data ? resp.data : "(null)", want_resp);
    CHECK_MSG(calls.data && !strcmp(calls.data, want_calls), "line %d: calls %s, want %s", line,
              calls.data ? calls.data : "(null)", want_calls);
    /* The calls array is always valid JSON. */
    json_doc *d = calls.data ? json_parse(calls.data, calls.len, NULL, 0) : NULL;
    CHECK_MSG(d && json_root(d)->type == JSON_ARRAY, "line %d: calls not a JSON array", line);
    json_free(d);
    sb_free(&resp);
    sb_free(&calls);
}
#define EXPECT(fam, text, resp, calls, n) expect((fam), (text), (resp), (calls), (n), __LINE__)
/* Nothing recognised: the text comes back unchanged. */
#define UNTOUCHED(fam, text) expect((fam), (text), (text), "[]", 0, __LINE__)

static void test_chatml(void) {
    EXPECT(CHAT_CHATML, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\"}}\n</tool_call>",
           "", "[{\"name\":\"get_weather\",\"arguments\":{\"location\":\"Paris\"}}]", 1);
    /* Text around, two calls, arguments as a JSON string. */
    EXPECT(CHAT_CHATML,
           "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\", "
           "\"days\": 3}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": \"{}\"}\n</tool_call>",
           "Let me check.",
           "[{\"name\":\"get_weather\",\"arguments\":{\"location\":\"Paris\",\"days\":3}},"
           "{\"name\":\"get_time\",\"arguments\":{}}]",
           2);
    EXPECT(CHAT_CHATML,
           "<tool_call>{\"name\": \"get_weather\", \"arguments\": \"{\\\"location\\\": \\\"Oslo\\\"}\"}</tool_call> done",
           "done", "[{\"name\":\"get_weather\",\"arguments\":{\"location\":\"Oslo\"}}]", 1);
    /* Stopped before the closing tag, but the JSON is whole. */
    EXPECT(CHAT_CHATML, "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n", "",
           "[{\"name\":\"get_time\",\"arguments\":{}}]", 1);
    /* Unknown tool names still parse inside explicit markup; "parameters" too. */
    EXPECT(CHAT_CHATML, "<tool_call>{\"name\": \"other\", \"parameters\": {\"a\": [1, 2]}}</tool_call>", "",
           "[{\"name\":\"other\",\"arguments\":{\"a\":[1,2]}}]", 1);
    /* The closing tag inside a string argument does not end the call. */
    EXPECT(CHAT_CHATML, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"a</tool_call>b\"}}\n"
           "</tool_call>",
           "", "[{\"name\":\"get_weather\",\"arguments\":{\"location\":\"a</tool_call>b\"}}]", 1);
    /* Text on both sides on one line joins with a space. */
    EXPECT(CHAT_CHATML, "A <tool_call>{\"name\": \"get_time\"}</tool_call> B", "A B",
           "[{\"name\":\"get_time\",\"arguments\":{}}]", 1);
}

static void test_chatml_malformed(void) {
    UNTOUCHED(CHAT_CHATML, "Hello there.");
    UNTOUCHED(CHAT_CHATML, "");
    UNTOUCHED(CHAT_CHATML, "<tool_call>\n{\"name\": \"get_weather\", \"argu");
    UNTOUCHED(CHAT_CHATML, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": }}\n</tool_call>");
    UNTOUCHED(CHAT_CHATML, "<tool_call>\n{\"arguments\": {}}\n</tool_call>");
    UNTOUCHED(CHAT_CHATML, "<tool_call>\n{\"name\": \"x\", \"arguments\": [1]}\n</tool_call>");
    UNTOUCHED(CHAT_CHATML, "<tool_call>\n{\"name\": \"x\", \"arguments\": \"not json\"}\n</tool_call>");
    UNTOUCHED(CHAT_CHATML, "<tool_call></tool_call>");
    UNTOUCHED(CHAT_CHATML, "<tool_call>");
    UNTOUCHED(CHAT_CHATML, "<tool_ca");
    UNTOUCHED(CHAT_CHATML, "{\"name\": \"get_time\", \"arguments\": {}}"); /* ChatML needs the tags */
    /* One good call and one broken one: the good one is taken. */
    EXPECT(CHAT_CHATML,
           "<tool_call>{\"name\": \"get_time\", \"arguments\": {}}</tool_call>\n<tool_call>{\"name\": \"get_wea",
           "<tool_call>{\"name\": \"get_wea", "[{\"name\":\"get_time\",\"arguments\":{}}]", 1);
}

static void test_typed_args(void) {
    /* Quoted numbers and booleans become numbers and booleans where the
     * schema says so; strings that are not clean stay strings; a string
     * property keeps its string even when it looks like a number. */
    EXPECT(CHAT_CHATML,
           "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Rome\", \"days\": \"3\", "
           "\"metric\": \"true\", \"ratio\": \"0.5\", \"zip\": \"00100\", \"opts\": {\"n\": \"7\"}, "
           "\"ids\": [\"1\", 2, \"x\"]}}</tool_call>",
           "",
           "[{\"name\":\"get_weather\",\"arguments\":{\"location\":\"Rome\",\"days\":3,\"metric\":true,"
           "\"ratio\":0.5,\"zip\":\"00100\",\"opts\":{\"n\":7},\"ids\":[1,2,\"x\"]}}]",
           1);
    EXPECT(CHAT_CHATML,
           "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Rome\", \"days\": \"3.5\", "
           "\"metric\": \"yes\", \"ratio\": \" 2\", \"unknown\": \"4\"}}</tool_call>",
           "",
           "[{\"name\":\"get_weather\",\"arguments\":{\"location\":\"Rome\",\"days\":\"3.5\",\"metric\":\"yes\","
           "\"ratio\":\" 2\",\"unknown\":\"4\"}}]",
           1);
    /* A nested object passed as a string is decoded when the schema wants an object. */
    EXPECT(CHAT_CHATML,
           "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"location\": \"X\", \"opts\": \"{\\\"n\\\": 2}\"}}"
           "</tool_call>",
           "", "[{\"name\":\"get_weather\",\"arguments\":{\"location\":\"X\",\"opts\":{\"n\":2}}}]", 1);
}

static void test_lfm2(void) {
    EXPECT(CHAT_LFM2,
           "<|tool_call_start|>[get_weather(location=\"Paris\", days=3), get_time()]<|tool_call_end|>",
           "",
           "[{\"name\":\"get_weather\",\"arguments\":{\"location\":\"Paris\",\"days\":3}},"
           "{\"name\":\"get_time\",\"arguments\":{}}]",
           2);
    /* Escapes, floats, True/False/None, nested lists and dicts, single quotes. */
    EXPECT(CHAT_LFM2,
           "Sure.<|tool_call_start|>[other(s='it\\'s \"q\"\\n\\u00e9', f=1.5e3, g=-.5, b=True, c=False, "
           "n=None, l=[1, [2, 'x'], (3,)], d={'k': {'z': 1}, 2: 'two'},)]<|tool_call_end|>",
           "Sure.",
           "[{\"name\":\"other\",\"arguments\":{\"s\":\"it's \\\"q\\\"\\n\xC3\xA9\",\"f\":1500,\"g\":-0.5,"
           "\"b\":true,\"c\":false,\"n\":null,\"l\":[1,[2,\"x\"],[3]],\"d\":{\"k\":{\"z\":1},\"2\":\"two\"}}}]",
           1);
    /* Typed by the schema: a float where an integer is wanted stays as written. */
    EXPECT(CHAT_LFM2, "<|tool_call_start|>[get_weather(location=\"Oslo\", days=\"2\", metric=True)]<|tool_call_end|>",
           "", "[{\"name\":\"get_weather\",\"arguments\":{\"location\":\"Oslo\",\"days\":2,\"metric\":true}}]", 1);
    /* The JSON variant, as a list and as LFM2's own template writes it. */
    EXPECT(CHAT_LFM2,
           "<|tool_call_start|>[{\"name\": \"get_time\", \"arguments\": {}}, {\"name\": \"get_weather\", "
           "\"arguments\": {\"location\": \"Lima\"}}]<|tool_call_end|>",
           "",
           "[{\"name\":\"get_time\",\"arguments\":{}},{\"name\":\"get_weather\",\"arguments\":{\"location\":\"Lima\"}}]",
           2);
    EXPECT(CHAT_LFM2, "\n<|tool_call_start|>\n{\"name\": \"get_time\", \"arguments\": {}}\n<|tool_call_end|>\nOK",
           "OK", "[{\"name\":\"get_time\",\"arguments\":{}}]", 1);
    /* Without the list brackets; stopped before the end marker. */
    EXPECT(CHAT_LFM2, "<|tool_call_start|>get_time()", "", "[{\"name\":\"get_time\",\"arguments\":{}}]", 1);
}

static void test_lfm2_malformed(void) {
    UNTOUCHED(CHAT_LFM2, "<|tool_call_start|>[get_weather(location=\"Paris\"<|tool_call_end|>");
    UNTOUCHED(CHAT_LFM2, "<|tool_call_start|>[get_weather(location=\"Par");
    UNTOUCHED(CHAT_LFM2, "<|tool_call_start|>[get_weather(\"Paris\")]<|tool_call_end|>"); /* positional */
    UNTOUCHED(CHAT_LFM2, "<|tool_call_start|>[get_weather(location=Paris)]<|tool_call_end|>");
    UNTOUCHED(CHAT_LFM2, "<|tool_call_start|>[get_weather(a=1) get_time()]<|tool_call_end|>");
    UNTOUCHED(CHAT_LFM2, "<|tool_call_start|>[f(a='unterminated)]<|tool_call_end|>");
    UNTOUCHED(CHAT_LFM2, "<|tool_call_start|>[f(a=[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]])]"
                         "<|tool_call_end|>");
    UNTOUCHED(CHAT_LFM2, "<|tool_call_start|>[]<|tool_call_end|>");
    UNTOUCHED(CHAT_LFM2, "<|tool_call_start|>[f(a=1, b=2.)"); /* no closing bracket */
    UNTOUCHED(CHAT_LFM2, "<|tool_call_start|>[f(a=-)]<|tool_call_end|>");
    UNTOUCHED(CHAT_LFM2, "<|tool_call_start|>[f(a=1e)]<|tool_call_end|>");
}

static void test_llama3(void) {
    EXPECT(CHAT_LLAMA3, "{\"name\": \"get_weather\", \"parameters\": {\"location\": \"Paris\", \"days\": \"2\"}}", "",
           "[{\"name\":\"get_weather\",\"arguments\":{\"location\":\"Paris\",\"days\":2}}]", 1);
    EXPECT(CHAT_LLAMA3,
           "<|python_tag|>{\"name\": \"get_time\", \"parameters\": {}}; {\"name\": \"get_weather\", \"parameters\": "
           "{\"location\": \"Rome\"}}",
           "", "[{\"name\":\"get_time\",\"arguments\":{}},{\"name\":\"get_weather\",\"arguments\":{\"location\":\"Rome\"}}]",
           2);
    EXPECT(CHAT_LLAMA3,
           "{\"name\": \"get_time\", \"parameters\": {}}\n{\"name\": \"get_weather\", \"parameters\": {\"location\": \"Rome\"}}",
           "", "[{\"name\":\"get_time\",\"arguments\":{}},{\"name\":\"get_weather\",\"arguments\":{\"location\":\"Rome\"}}]",
           2);
    /* Built-in tools use a pythonic call after <|python_tag|>. */
    EXPECT(CHAT_LLAMA3, "<|python_tag|>brave_search.call(query=\"weather in Paris\")", "",
           "[{\"name\":\"brave_search\",\"arguments\":{\"query\":\"weather in Paris\"}}]", 1);
    /* Llama 3.2 sometimes adds "type": "function". */
    EXPECT(CHAT_LLAMA3, "{\"type\": \"function\", \"name\": \"get_time\", \"parameters\": {}}", "",
           "[{\"name\":\"get_time\",\"arguments\":{}}]", 1);
    UNTOUCHED(CHAT_LLAMA3, "The weather is nice.");
    UNTOUCHED(CHAT_LLAMA3, "{\"name\": \"get_weather\", \"parameters\": {\"location\": \"Pa");
    UNTOUCHED(CHAT_LLAMA3, "<|python_tag|>{\"name\": \"get_weather\", \"parameters\"");
    /* Ordinary JSON answers are not calls: no arguments key, or an unknown name. */
    UNTOUCHED(CHAT_LLAMA3, "{\"name\": \"Alice\", \"age\": 3}");
    UNTOUCHED(CHAT_LLAMA3, "{\"name\": \"Alice\", \"parameters\": {}}");
}

static void test_generic(void) {
    EXPECT(CHAT_GEMMA, "```json\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\"}}\n```", "",
           "[{\"name\":\"get_weather\",\"arguments\":{\"location\":\"Paris\"}}]", 1);
    EXPECT(CHAT_GEMMA, "I will look it up.\n\n{\"name\": \"get_time\", \"arguments\": {}}\n", "I will look it up.",
           "[{\"name\":\"get_time\",\"arguments\":{}}]", 1);
    EXPECT(CHAT_PHI3, "{\"name\": \"get_time\", \"parameters\": {}}", "", "[{\"name\":\"get_time\",\"arguments\":{}}]", 1);
    EXPECT(CHAT_MISTRAL,
           "[TOOL_CALLS][{\"name\": \"get_time\", \"arguments\": {}, \"id\": \"abcdefghi\"}, {\"name\": "
           "\"get_weather\", \"arguments\": {\"location\": \"Bern\"}}]",
           "", "[{\"name\":\"get_time\",\"arguments\":{}},{\"name\":\"get_weather\",\"arguments\":{\"location\":\"Bern\"}}]",
           2);
    UNTOUCHED(CHAT_GEMMA, "```python\nprint(1)\n```");
    EXPECT(CHAT_GEMMA, "```json\n{\"name\": \"get_time\", \"arguments\": {}}", "",
           "[{\"name\":\"get_time\",\"arguments\":{}}]", 1); /* an unclosed fence ends with the text */
    UNTOUCHED(CHAT_GEMMA, "```json\n{\"name\": \"get_time\", \"arguments\": {}");
    UNTOUCHED(CHAT_GEMMA, "Use {\"name\": \"get_time\", \"arguments\": {}} inline."); /* not at a line start */
    UNTOUCHED(CHAT_GEMMA, "{{{{");
    UNTOUCHED(CHAT_GEMMA, "}]\"\\");
}

/* Without tools: names are not checked and nothing is converted. */
static void test_no_tools(void) {
    const char *t = "{\"name\": \"anything\", \"arguments\": {\"n\": \"3\"}}";
    strbuf resp, calls;
    sb_init(&resp);
    sb_init(&calls);
    CHECK_EQ_INT(toolcall_parse(CHAT_GEMMA, t, strlen(t), NULL, &resp, &calls), 1);
    CHECK_EQ_STR(calls.data, "[{\"name\":\"anything\",\"arguments\":{\"n\":\"3\"}}]");
    CHECK_EQ_STR(resp.data, "");
    sb_free(&resp);
    sb_free(&calls);
    /* NULL text is an empty answer. */
    sb_init(&resp);
    sb_init(&calls);
    CHECK_EQ_INT(toolcall_parse(CHAT_CHATML, NULL, 0, NULL, &resp, &calls), 0);
    CHECK_EQ_STR(calls.data, "[]");
    sb_free(&resp);
    sb_free(&calls);
}

/* Every prefix of a real answer: parsing never fails, and the calls found
 * in a prefix are always valid JSON. */
static void test_prefixes(void) {
    const char *answers[] = {
        "Ok.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"P\\u00e9\", \"ids\": [1]}}\n"
        "</tool_call>",
        "<|tool_call_start|>[get_weather(location='a\\'b', days=3, opts={'n': 1})]<|tool_call_end|>",
        "<|python_tag|>{\"name\": \"get_time\", \"parameters\": {}}",
        "```json\n{\"name\": \"get_time\", \"arguments\": {}}\n```",
    };
    chat_family fams[] = {CHAT_CHATML, CHAT_LFM2, CHAT_LLAMA3, CHAT_GEMMA};
    int bad = 0;
    for (size_t a = 0; a < 4; a++) {
        size_t n = strlen(answers[a]);
        for (size_t k = 0; k <= n; k++) {
            strbuf resp, calls;
            sb_init(&resp);
            sb_init(&calls);
            int got = toolcall_parse(fams[a], answers[a], k, json_root(g_tools), &resp, &calls);
            json_doc *d = json_parse(calls.data, calls.len, NULL, 0);
            if (got < 0 || !d || (got == 0 && resp.len != k)) bad++;
            if (k == n && got != 1) bad++;
            json_free(d);
            sb_free(&resp);
            sb_free(&calls);
        }
    }
    CHECK_EQ_INT(bad, 0);
}

static size_t safe(chat_family fam, const char *s) { return toolcall_stream_safe(fam, s, strlen(s)); }

static void test_stream_safe(void) {
    CHECK_EQ_U64(safe(CHAT_CHATML, "Hello"), 5);
    CHECK_EQ_U64(safe(CHAT_CHATML, "Hello <tool_call>\n{"), 6);
    CHECK_EQ_U64(safe(CHAT_CHATML, "Hello <tool_"), 6);
    CHECK_EQ_U64(safe(CHAT_CHATML, "Hello <"), 6);
    CHECK_EQ_U64(safe(CHAT_CHATML, "a < b"), 5);
    CHECK_EQ_U64(safe(CHAT_CHATML, "{\"name\""), 7);
    CHECK_EQ_U64(safe(CHAT_LFM2, "x<|tool_call_start|>[f()]"), 1);
    CHECK_EQ_U64(safe(CHAT_LFM2, "x<|tool_call"), 1);
    CHECK_EQ_U64(safe(CHAT_LLAMA3, "{\"name\""), 0);
    CHECK_EQ_U64(safe(CHAT_LLAMA3, "  "), 0);
    CHECK_EQ_U64(safe(CHAT_LLAMA3, "Sure<|python_tag|>"), 4);
    CHECK_EQ_U64(safe(CHAT_LLAMA3, "Sure {"), 6);
    CHECK_EQ_U64(safe(CHAT_GEMMA, "``"), 0);
    CHECK_EQ_U64(safe(CHAT_GEMMA, "\n```json\n{"), 0);
    CHECK_EQ_U64(safe(CHAT_GEMMA, "`x`"), 3);
    CHECK_EQ_U64(safe(CHAT_GEMMA, "Hi"), 2);
    CHECK_EQ_U64(safe(CHAT_MISTRAL, "[TOOL_"), 0);
    CHECK_EQ_U64(safe(CHAT_MISTRAL, "ab[TOOL_CALLS]"), 2);
}

int main(int argc, char **argv) {
    (void)argc, (void)argv;
    g_tools = json_parse(TOOLS, strlen(TOOLS), NULL, 0);
    if (!CHECK(g_tools != NULL)) return CHECK_DONE();
    test_chatml();
    test_chatml_malformed();
    test_typed_args();
    test_lfm2();
    test_lfm2_malformed();
    test_llama3();
    test_generic();
    test_no_tools();
    test_prefixes();
    test_stream_safe();
    json_free(g_tools);
    return CHECK_DONE();
}
