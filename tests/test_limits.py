"""The resource limits, at their edges: JSON nesting (JSON_MAX_DEPTH, csrc/json.h) for messages, tools
and options; the limits of csrc/include/cactus.h (CACTUS_MAX_JSON_BYTES, CACTUS_MAX_MESSAGES,
CACTUS_MAX_TOOLS, CACTUS_MAX_STOP_SEQUENCES, CACTUS_MAX_STOP_BYTES), each refused with a message naming it
in the last error and in the response JSON; the options' ranges (max_tokens, n_ctx, top_k, seed); prompts
longer than the context; cactus_reset refused while a completion runs on the handle; tool schemas nested
deeper than the grammar compiles (decoding goes on unconstrained); GGUF metadata arrays nested deeper than
8 (see also tests/test_malformed_models.py).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import cactus
import pytest
from cactus import Cactus, cactus_complete, render_chat
from cactus._native import CactusError, ffi, last_error, lib

JSON_MAX_DEPTH = 64  # csrc/json.h
# csrc/include/cactus.h
MAX_JSON_BYTES = 16 << 20
MAX_MESSAGES = 4096
MAX_TOOLS = 128
MAX_STOP_SEQUENCES = 16
MAX_STOP_BYTES = 256
ERR_INVALID_ARGUMENT = -1
USER = {"role": "user", "content": "hi"}
USER_JSON = json.dumps([USER]).encode()


def tool(i: int) -> dict:
    return {
        "type": "function",
        "function": {"name": f"f{i}", "parameters": {"type": "object", "properties": {}}},
    }


def padded(text: bytes, size: int) -> bytes:
    """`text` with trailing whitespace up to `size` bytes: still the same JSON value."""
    return text + b" " * (size - len(text))


def raw_complete(
    handle: Any, messages: bytes, options: bytes | None = None, tools: bytes | None = None
) -> tuple[int, dict]:
    """cactus_complete through the C API as is: its return code and its response JSON."""
    buf = ffi.new("char[]", 1 << 16)
    rc = lib.cactus_complete(
        handle, messages, buf, 1 << 16, options or ffi.NULL, tools or ffi.NULL, ffi.NULL, ffi.NULL
    )
    return rc, json.loads(ffi.string(buf))


def assert_refused(
    handle: Any, needle: str, messages: bytes, options: bytes | None = None, tools: bytes | None = None
) -> None:
    """The call fails with CACTUS_ERR_INVALID_ARGUMENT; the last error and the response's error say why."""
    rc, response = raw_complete(handle, messages, options, tools)
    assert rc == ERR_INVALID_ARGUMENT
    assert response["success"] is False and needle in response["error"]
    assert response["error"] == last_error()


def nested(depth: int) -> str:
    """A JSON array nested `depth` deep."""
    return "[" * depth + "]" * depth


def messages_with_depth(depth: int) -> str:
    """A valid messages array whose deepest value is at `depth` (the array is depth 1, a message 2)."""
    return '[{"role": "user", "content": "hi", "extra": ' + nested(depth - 2) + "}]"


@pytest.fixture(scope="module")
def model(convert_fixture):
    with Cactus(str(convert_fixture("llama", "f32"))) as m:
        yield m


def test_messages_depth_limit() -> None:
    assert "hi" in render_chat(messages_with_depth(JSON_MAX_DEPTH))
    with pytest.raises(RuntimeError, match=f"messages_json is not valid JSON.*deeper than {JSON_MAX_DEPTH}"):
        render_chat(messages_with_depth(JSON_MAX_DEPTH + 1))


def test_tools_depth_limit() -> None:
    with pytest.raises(RuntimeError, match=f"tools_json is not valid JSON.*deeper than {JSON_MAX_DEPTH}"):
        render_chat([USER], nested(JSON_MAX_DEPTH + 1))
    # the array is depth 1, the tool 2, "function" 3, "parameters" 4, "x" 5 and deeper
    deep_tools = (
        '[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", '
        '"properties": {}, "x": ' + nested(JSON_MAX_DEPTH - 4) + "}}}]"
    )
    assert "hi" in render_chat([USER], deep_tools)


def test_options_depth_limit(model: Cactus) -> None:
    ok = model.complete([USER], max_tokens=2, x=json.loads(nested(JSON_MAX_DEPTH - 1)))
    assert ok["success"]
    with pytest.raises(RuntimeError, match=f"options_json is not valid JSON.*deeper than {JSON_MAX_DEPTH}"):
        model.complete([USER], max_tokens=2, x=json.loads(nested(JSON_MAX_DEPTH)))


def test_very_deep_json_is_refused_without_recursing(model: Cactus) -> None:
    # a hundred thousand levels: rejected at level 65, no stack exhaustion
    with pytest.raises(RuntimeError, match="deeper than"):
        render_chat(nested(100_000))
    with pytest.raises(RuntimeError, match="deeper than"):
        cactus_complete(model.handle, "[" * 100_000)


@pytest.mark.parametrize(
    ("option", "good", "bad"),
    [
        ("max_tokens", 1, 0),
        ("max_tokens", 1 << 24, (1 << 24) + 1),
        ("top_k", 1 << 24, (1 << 24) + 1),
        ("top_k", 0, -1),
        ("n_ctx", 16, 15),
        ("n_ctx", 1 << 10, (1 << 20) + 1),
        ("seed", 2**53 - 1, 2**53),
        ("seed", 0, -1),
        ("temperature", 100, 100.5),
        ("top_p", 1, 1.5),
        ("min_p", 0, -0.1),
        ("repetition_penalty", 100, 0),
        ("cloud_handoff_threshold", 1, 1.01),
    ],
)
def test_option_ranges(model: Cactus, option: str, good: float, bad: float) -> None:
    # a raw prompt of a token or two, so that even n_ctx 16 holds it
    r = model.complete_text("hi", **{"max_tokens": 2, "n_ctx": 64, option: good})
    assert r["success"]
    with pytest.raises(RuntimeError, match=f"option '{option}'"):
        model.complete_text("hi", **{"max_tokens": 2, option: bad})


def test_stop_sequences_limit(model: Cactus) -> None:
    stops = [f"s{i}" for i in range(MAX_STOP_SEQUENCES)]
    assert model.complete([USER], max_tokens=2, stop_sequences=stops)["success"]
    with pytest.raises(RuntimeError, match=f"at most {MAX_STOP_SEQUENCES}"):
        model.complete([USER], max_tokens=2, stop_sequences=[*stops, "one more"])
    options = json.dumps({"max_tokens": 2, "stop_sequences": [*stops, "one more"]}).encode()
    assert_refused(model.handle, "CACTUS_MAX_STOP_SEQUENCES", USER_JSON, options)


def test_stop_sequence_length_limit(model: Cactus) -> None:
    longest = "é" * (MAX_STOP_BYTES // 2)  # bytes are counted, not characters
    assert model.complete([USER], max_tokens=2, stop_sequences=[longest])["success"]
    with pytest.raises(RuntimeError, match=rf"stop_sequences\[1\]' is {MAX_STOP_BYTES + 1} bytes"):
        model.complete([USER], max_tokens=2, stop_sequences=["ok", longest + "x"])
    options = json.dumps({"stop_sequences": [longest + "x"]}).encode()
    assert_refused(
        model.handle, f"at most {MAX_STOP_BYTES} are allowed (CACTUS_MAX_STOP_BYTES)", USER_JSON, options
    )


def test_messages_count_limit(model: Cactus) -> None:
    most = [USER, {"role": "assistant", "content": "yo"}] * (MAX_MESSAGES // 2)
    assert render_chat(most).count("hi") == MAX_MESSAGES // 2
    with pytest.raises(
        RuntimeError, match=f"messages has {MAX_MESSAGES + 1} entries; at most {MAX_MESSAGES}"
    ):
        render_chat([*most, USER])
    assert_refused(model.handle, "CACTUS_MAX_MESSAGES", json.dumps([*most, USER]).encode())


def test_tools_count_limit(model: Cactus) -> None:
    most = [tool(i) for i in range(MAX_TOOLS)]
    qwen3 = "<|im_start|></think>"  # enough of Qwen 3's template to be recognised; plain ChatML has no tools
    assert f'"f{MAX_TOOLS - 1}"' in render_chat([USER], most, template=qwen3)
    with pytest.raises(RuntimeError, match=f"tools has {MAX_TOOLS + 1} entries; at most {MAX_TOOLS}"):
        render_chat([USER], [*most, tool(MAX_TOOLS)])
    assert_refused(
        model.handle, "CACTUS_MAX_TOOLS", USER_JSON, None, json.dumps([*most, tool(MAX_TOOLS)]).encode()
    )


def test_render_chat_validates_tools_as_completion_does(model: Cactus) -> None:
    # what a completion refuses, the renderer refuses too, with the same message
    for bad, needle in [
        ([{"type": "retrieval", "function": {"name": "f"}}], 'tools[0].type must be "function"'),
        ([{"name": "f"}], "tools[0].function must be an object"),
        (
            [{"type": "function", "function": {"name": ""}}],
            "tools[0].function.name must be a non-empty string",
        ),
        (
            [{"function": {"name": "f", "parameters": "x"}}],
            "tools[0].function.parameters must be a JSON Schema",
        ),
    ]:
        with pytest.raises(RuntimeError) as info:
            render_chat([USER], bad)
        assert needle in str(info.value)
        assert_refused(model.handle, needle, USER_JSON, None, json.dumps(bad).encode())


@pytest.mark.parametrize("argument", ["messages_json", "options_json", "tools_json"])
def test_json_size_limit(model: Cactus, argument: str) -> None:
    args: dict[str, bytes] = {"messages": USER_JSON, "options": b'{"max_tokens": 1}', "tools": b"[]"}
    key = argument.removesuffix("_json")
    args[key] = padded(args[key], MAX_JSON_BYTES + 1)
    assert_refused(
        model.handle,
        f"{argument} is larger than {MAX_JSON_BYTES} bytes",
        args["messages"],
        args["options"],
        args["tools"],
    )


def test_json_size_limit_edge() -> None:
    # exactly the limit is accepted, by the renderer as by completion (the same parser entry)
    assert "hi" in render_chat(padded(USER_JSON, MAX_JSON_BYTES).decode())
    assert "hi" in render_chat([USER], padded(b"[]", MAX_JSON_BYTES).decode())
    with pytest.raises(RuntimeError, match="messages_json is larger than"):
        render_chat(padded(USER_JSON, MAX_JSON_BYTES + 1).decode())
    with pytest.raises(RuntimeError, match="tools_json is larger than"):
        render_chat([USER], padded(b"[]", MAX_JSON_BYTES + 1).decode())


def test_reset_while_generating_is_refused(model: Cactus) -> None:
    # the seed-style functions bypass Cactus's lock: a reset from another thread meets the running call
    handle = model.handle
    generating, attempted = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def on_token(_piece: str, _token_id: int) -> None:
        generating.set()
        attempted.wait(30)  # hold the completion in flight until the reset was tried

    def run() -> None:
        outcome["response"] = json.loads(cactus_complete(handle, [USER], {"max_tokens": 3}, None, on_token))

    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert generating.wait(30)
        with pytest.raises(RuntimeError, match="a call is running on this handle"):
            cactus.cactus_reset(handle)
        assert lib.cactus_reset(handle) == ERR_INVALID_ARGUMENT
    finally:
        attempted.set()
        worker.join(60)
    assert outcome["response"]["success"]
    cactus.cactus_reset(handle)  # accepted once the completion has returned
    assert last_error() == ""


def test_prompt_longer_than_the_context(model: Cactus) -> None:
    long_prompt = [{"role": "user", "content": "word " * 200}]
    with pytest.raises(RuntimeError, match=r"prompt has \d+ tokens but the context holds 16"):
        model.complete(long_prompt, max_tokens=2, n_ctx=16)
    # generation stops at the end of the context: max_tokens may be far larger (the last sampled token
    # needs no cache slot, so prompt + answer may be n_ctx + 1)
    r = model.complete([USER], max_tokens=1 << 24, n_ctx=32, temperature=0)
    assert r["success"] and r["total_tokens"] <= 33
    assert r["finish_reason"] == "length"


def test_schema_nested_past_the_grammar_limit_decodes_unconstrained(model: Cactus) -> None:
    # arrays of arrays: one JSON level per schema level, so JSON_MAX_DEPTH lets it past the grammar's
    # SCHEMA_MAX_DEPTH (32); nested objects take two JSON levels each and hit JSON_MAX_DEPTH first
    schema: dict = {"type": "integer"}
    for _ in range(40):
        schema = {"type": "array", "items": schema}
    params = {"type": "object", "properties": {"a": schema}, "required": ["a"]}
    tools = [{"type": "function", "function": {"name": "deep", "parameters": params}}]
    r = model.complete([USER], tools=tools, tool_choice="required", max_tokens=4, temperature=0)
    assert r["success"]


def test_empty_prompt_is_the_callers_error(convert_fixture) -> None:
    # the qwen3 fixture adds no BOS: an empty raw prompt has no token to continue from
    with Cactus(str(convert_fixture("qwen3", "q8_0"))) as m:
        with pytest.raises(CactusError, match="the prompt is empty") as info:
            m.complete_text("", max_tokens=2)
        assert info.value.code == ERR_INVALID_ARGUMENT and info.value.is_caller_fault


def test_text_with_a_nul_is_refused_not_cut_short(model: Cactus) -> None:
    # a raw prompt or a text to embed travels as a NUL-terminated string: "hi\0..." would be "hi"
    for call in (lambda: model.complete_text("hi\0there", max_tokens=2), lambda: model.embed("\0")):
        with pytest.raises(CactusError, match="NUL character") as info:
            call()
        assert isinstance(info.value, RuntimeError) and info.value.code == ERR_INVALID_ARGUMENT
    # in a chat message, JSON escapes it: no problem there
    assert model.complete([{"role": "user", "content": "a\0b"}], max_tokens=2)["success"]
