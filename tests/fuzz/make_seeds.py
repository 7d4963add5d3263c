"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/ (committed).

Seeds are small, valid or nearly valid inputs in each target's input format (see each fuzz_*.c):
libFuzzer mutates from them. The gguf seeds come from tools/make_malformed_models.py's writer.
Files named regress-* are inputs that once crashed a target; this script never touches them.

    python tests/fuzz/make_seeds.py
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fuzz" / "corpus"

# chat_family order in csrc/chat.h
FAMILIES = [
    "chatml",
    "llama3",
    "lfm2",
    "gemma",
    "phi3",
    "mistral",
    "qwen25",
    "qwen3",
    "hermes",
    "llama32",
    "llama30",
    "smollm2",
    "deepseek_r1",
]

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {"type": "string", "description": "City"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                    "days": {"type": "integer", "minimum": 1},
                    "ratio": {"type": "number"},
                    "metric": {"type": "boolean"},
                    "note": {"type": ["string", "null"]},
                    "opts": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
                    "ids": {"type": "array", "items": {"type": "integer"}, "maxItems": 3},
                    "code": {"type": "string", "minLength": 2, "maxLength": 4},
                },
                "required": ["location"],
            },
        },
    },
    {
        "type": "function",
        "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
    },
    {
        "type": "function",
        "function": {
            "name": "set_mode",
            "parameters": {
                "type": "object",
                "properties": {"mode": {"enum": [1, "two", True, None]}, "extra": {}},
                "required": ["mode"],
            },
        },
    },
]
SMALL_TOOLS = [TOOLS[1]]

MESSAGES = [
    [{"role": "user", "content": "Hello there"}],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
    ],
    [
        {
            "role": "user",
            "content": [{"type": "text", "text": "parts "}, {"type": "text", "text": "\u00e9\u4e2d"}],
        }
    ],
    [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "abcdefghi",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "abcdefghi", "name": "get_weather", "content": '{"temp": 21}'},
        {"role": "assistant", "content": "<think>\nwarm\n</think>\n\nIt is 21 C."},
        {"role": "user", "content": "Thanks"},
    ],
    [{"role": "assistant", "content": "starts with the assistant"}],
    [
        {
            "role": "user",
            "content": "tool calls with an object",
            "tool_calls": [{"function": {"name": "get_time", "arguments": {}}}],
        }
    ],
]

OPTIONS = [
    {},
    {"max_tokens": 20, "temperature": 0, "seed": 7},
    {
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 40,
        "min_p": 0.05,
        "repetition_penalty": 1.1,
        "stop_sequences": ["\n\n", "User:", ""],
        "cloud_handoff_threshold": 0.3,
        "n_ctx": 256,
    },
    {"tool_choice": "required"},
    {"tool_choice": {"type": "function", "function": {"name": "get_time"}}},
    {"max_tokens": 1.5, "top_p": 2, "stop_sequences": "x"},
]

TOOLCALL_TEXTS = {
    "chatml": [
        (
            '<tool_call>\n{"name": "get_weather", "arguments": {"location": "Paris", "days": "3"}}'
            "\n</tool_call>"
        ),
        (
            'Let me check.\n<tool_call>\n{"name": "get_time", "arguments": "{}"}\n</tool_call>\n'
            '<tool_call>{"name": "get_wea'
        ),
        '<think>hmm</think>\n\n<tool_call>{"name": "set_mode", "arguments": {"mode": "two"}}',
    ],
    "lfm2": [
        '<|tool_call_start|>[get_weather(location="Paris", days=3), get_time()]<|tool_call_end|>',
        (
            "Sure.<|tool_call_start|>[other(s='it\\'s \"q\"\\n\\u00e9', f=1.5e3, g=-.5, b=True, c=False, "
            "n=None, l=[1, [2, 'x'], (3,)], d={'k': {'z': 1}, 2: 'two'},)]<|tool_call_end|>"
        ),
        '<|tool_call_start|>[{"name": "get_time", "arguments": {}}]<|tool_call_end|>',
    ],
    "llama3": [
        '{"name": "get_weather", "parameters": {"location": "Paris", "days": "2"}}',
        (
            '<|python_tag|>{"name": "get_time", "parameters": {}}; {"name": "get_weather", '
            '"parameters": {"location": "Rome"}}'
        ),
        '<|python_tag|>brave_search.call(query="weather in Paris")',
    ],
    "gemma": [
        '```json\n{"name": "get_weather", "arguments": {"location": "Paris"}}\n```',
        'I will look it up.\n\n{"name": "get_time", "arguments": {}}\n',
    ],
    "mistral": [
        (
            '[TOOL_CALLS][{"name": "get_time", "arguments": {}, "id": "abcdefghi"}, '
            '{"name": "get_weather", "arguments": {"location": "Bern"}}]'
        )
    ],
    "phi3": ['{"name": "get_time", "parameters": {}}'],
    "hermes": ['<tool_call>\n{"arguments": {"location": "Oslo"}, "name": "get_weather"}\n</tool_call>'],
    "qwen3": ['<think>\nok\n</think>\n\n<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>'],
}


def put(target: str, data: bytes) -> None:
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / ("seed-" + hashlib.sha1(data).hexdigest()[:12])).write_bytes(data)


def js(v: object) -> bytes:
    return json.dumps(v, ensure_ascii=False).encode()


def main() -> None:
    for d in CORPUS.glob("*/seed-*"):  # regress-* files are kept
        d.unlink()
    # json
    for m in MESSAGES:
        put("json", js(m))
    for o in OPTIONS:
        put("json", js(o))
    put("json", js(TOOLS))
    put("json", js({"messages": MESSAGES[3], "options": OPTIONS[2], "tools": TOOLS}))
    put(
        "json",
        js(
            {
                "choices": [
                    {
                        "message": {
                            "role": "assistant",
                            "content": "Hi",
                            "tool_calls": [
                                {
                                    "id": "c1",
                                    "type": "function",
                                    "function": {"name": "get_time", "arguments": '{"tz": "UTC"}'},
                                }
                            ],
                        }
                    }
                ]
            }
        ),
    )
    put(
        "json",
        b'{"a": [1, -2.5e-3, 1E400, 0, -0, 9007199254740993, true, false, null, "\\u00e9\\ud83d\\ude00\\n"]}',
    )
    put("json", b"[" * 63 + b"]" * 63)
    put("json", b'{"k": "\\u0000", "k": 2, "s": "\\"\\\\\\/\\b\\f\\n\\r\\t"}')
    # chat: family, flags, messages \0 tools
    for fi, _ in enumerate(FAMILIES):
        for mi, m in enumerate(MESSAGES):
            tools = js(TOOLS if mi % 2 else SMALL_TOOLS) if mi >= 3 or fi % 3 == 0 else None
            data = bytes([fi, (mi + fi) % 8]) + js(m) + (b"\0" + tools if tools else b"")
            put("chat", data)
    # toolcall: family, text \0 tools
    for fam, texts in TOOLCALL_TEXTS.items():
        for i, t in enumerate(texts):
            data = bytes([FAMILIES.index(fam)]) + t.encode() + (b"\0" + js(TOOLS) if i % 2 == 0 else b"")
            put("toolcall", data)
    # grammar: family, vocab (bits 0-3: 0-13 the in-memory one, 14 llama-spm, 15 gpt-2) + tool_choice
    # (bits 4-7: 0 "required", k the name of tool k), tools \0 steps
    for fi in (0, 1, 2, 3, 5):
        for ci, tools in ((0, TOOLS), (1 | 2 << 4, TOOLS), (14 | 1 << 4, TOOLS), (15, SMALL_TOOLS)):
            steps = bytes((i * 37 + fi) % 256 for i in range(64))
            put("grammar", bytes([fi, ci]) + js(tools) + b"\0" + steps)
    # tokenizer: vocab, flags, text [\0 ids]
    texts = [
        "Hello world",
        " leading spaces  and\ttabs\n\nnewlines",
        "\u00e9t\u00e9 \u4e2d\u6587 \U0001f600 \u0301",
        "<s>special</s><|endoftext|> <|im_start|>",
        "1234567 3.14 $x = y^2",
        "\xff\xfe invalid".encode("latin-1").decode("latin-1"),
    ]
    for vi in range(10):
        for ti, t in enumerate(texts):
            data = bytes([vi, ti % 8]) + t.encode("utf-8", "surrogatepass")
            if ti == 5:
                data = bytes([vi, 0]) + b"\xff\xfe invalid \xc3"
            if ti == 0:
                data += b"\0" + bytes(range(40))
            put("tokenizer", data)
    # gguf: a tiny valid model per family and a vocab-only file, from the malformed-model writer
    sys.path.insert(0, str(ROOT / "tools"))
    import make_malformed_models as mm

    for arch in ("llama", "qwen3"):
        put("gguf", mm.tiny_model(arch).build())
    put("gguf", mm.tiny_model("llama", tensors=False).build())


if __name__ == "__main__":
    main()
