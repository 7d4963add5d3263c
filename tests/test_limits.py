"""The resource limits that exist today, at their edges: JSON nesting (JSON_MAX_DEPTH, csrc/json.h) for
messages, tools and options; the options' ranges (max_tokens, n_ctx, top_k, seed, 16 stop sequences);
prompts longer than the context; tool schemas nested deeper than the grammar compiles (decoding goes on
unconstrained); GGUF metadata arrays nested deeper than 8 (see also tests/test_malformed_models.py).
"""

from __future__ import annotations

import json

import pytest
from cactus import Cactus, cactus_complete, render_chat

JSON_MAX_DEPTH = 64  # csrc/json.h
USER = {"role": "user", "content": "hi"}


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
    assert model.complete([USER], max_tokens=2, stop_sequences=[f"s{i}" for i in range(16)])["success"]
    with pytest.raises(RuntimeError, match="at most 16"):
        model.complete([USER], max_tokens=2, stop_sequences=[f"s{i}" for i in range(17)])


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
