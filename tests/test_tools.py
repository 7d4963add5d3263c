"""Tool calling end to end: tools in, function_calls out, constrained decoding that always yields a
valid call, streaming without call markup, and clear errors for bad tool definitions."""

from __future__ import annotations

import json

import cactus
import jsonschema
import pytest

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
            },
            "required": ["city", "unit", "days"],
        },
    },
}
ALARM = {
    "type": "function",
    "function": {
        "name": "set_alarm",
        "description": "Set an alarm",
        "parameters": {
            "type": "object",
            "properties": {"time": {"type": "string"}, "loud": {"type": "boolean"}, "volume": {"type": "number"}},
            "required": ["time", "loud", "volume"],
        },
    },
}
TOOLS = [WEATHER, ALARM]
ASK = [{"role": "user", "content": "What's the weather in Paris for the next 3 days?"}]


@pytest.fixture(scope="module")
def model(convert_fixture):
    with cactus.Cactus(str(convert_fixture("qwen3", "q8_0"))) as m:
        yield m


def _schema(name: str) -> dict:
    return next(t["function"]["parameters"] for t in TOOLS if t["function"]["name"] == name)


def test_required_always_yields_a_valid_call(model) -> None:
    names = set()
    for seed in range(100):
        model.reset()
        pieces: list = []
        r = model.complete(ASK, tools=TOOLS, tool_choice="required", max_tokens=400, temperature=1.0, seed=seed,
                           callback=lambda t, i, out=pieces: out.append(t))
        assert r["success"], r["error"]
        calls = r["function_calls"]
        assert len(calls) >= 1, f"seed {seed}: no call in {r['response']!r}"
        for call in calls:
            assert call["name"] in ("get_weather", "set_alarm")
            jsonschema.validate(call["arguments"], _schema(call["name"]))
            names.add(call["name"])
        assert r["finish_reason"] == "tool_calls"
        streamed = "".join(pieces)
        assert streamed == r["response"] and "<tool_call>" not in streamed
    assert names  # at least one function was chosen


def test_named_function_is_called(model) -> None:
    for seed in range(10):
        model.reset()
        r = model.complete(ASK, tools=TOOLS, tool_choice="set_alarm", max_tokens=400, temperature=0.8, seed=seed)
        assert [c["name"] for c in r["function_calls"]] == ["set_alarm"]
        jsonschema.validate(r["function_calls"][0]["arguments"], _schema("set_alarm"))


def test_openai_style_tool_choice_object(model) -> None:
    model.reset()
    choice = {"type": "function", "function": {"name": "get_weather"}}
    r = model.complete(ASK, tools=TOOLS, tool_choice=choice, max_tokens=400, temperature=0.5, seed=1)
    assert r["function_calls"][0]["name"] == "get_weather"


def test_auto_and_none_decode_freely(model) -> None:
    for choice in ("auto", "none"):
        model.reset()
        r = model.complete(ASK, tools=TOOLS, tool_choice=choice, max_tokens=12, temperature=0)
        assert r["success"] and isinstance(r["function_calls"], list)


def test_tool_results_in_history_render(model) -> None:
    history = ASK + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris", "unit": "celsius",
                                                                          "days": 3})}}]},
        {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "Sunny, 24C"},
    ]
    model.reset()
    r = model.complete(history, tools=TOOLS, max_tokens=8, temperature=0)
    assert r["success"]


@pytest.mark.parametrize(
    "tools, needle",
    [
        ([{"type": "function"}], "function"),
        ([{"type": "function", "function": {"name": ""}}], "name"),
        ({"type": "function"}, "array"),
        ([{"type": "function", "function": {"name": "x", "parameters": 3}}], "parameters"),
        ([{"type": "retrieval", "function": {"name": "x"}}], "type"),
    ],
)
def test_malformed_tools_are_clear_errors(model, tools, needle: str) -> None:
    with pytest.raises(RuntimeError, match=needle):
        model.complete(ASK, tools=tools, max_tokens=2)


def test_malformed_tools_json_text(model) -> None:
    with pytest.raises(RuntimeError, match="tools_json is not valid JSON"):
        cactus.cactus_complete(model.handle, json.dumps(ASK), None, "[{", None)


def test_unknown_named_function(model) -> None:
    with pytest.raises(RuntimeError, match="no_such_tool"):
        model.complete(ASK, tools=TOOLS, tool_choice="no_such_tool", max_tokens=4)


def test_unconstrainable_schema_decodes_with_a_warning(model) -> None:
    weird = {"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"x": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        "required": ["x"]}}}
    model.reset()
    r = model.complete(ASK, tools=[weird], tool_choice="required", max_tokens=8, temperature=0)
    assert r["success"]


TEMPLATES = [
    "Qwen-Qwen2.5-7B-Instruct.jinja", "Qwen-Qwen3-0.6B.jinja", "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja",
    "LiquidAI-LFM2-8B-A1B.jinja", "meta-llama-Llama-3.2-3B-Instruct.jinja",
    "mistralai-Mistral-Nemo-Instruct-2407.jinja", "google-gemma-2-2b-it.jinja",
]


@pytest.mark.parametrize("template", TEMPLATES)
def test_each_family_template_yields_parsed_calls(template: str, tmp_path, gguf_dir) -> None:
    """The same random model dressed in each family's real chat template: the family is detected from
    the template, the grammar writes that family's call syntax, and the parser reads it back."""
    import shutil

    from cactus.convert import convert

    from .conftest import FIXTURES, SHARED

    hf = tmp_path / "hf"
    shutil.copytree(FIXTURES / "qwen3", hf)
    cfg_path = hf / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["chat_template"] = (SHARED / "templates" / template).read_text()
    cfg_path.write_text(json.dumps(cfg))
    out = tmp_path / "model.gguf"
    convert(hf, out, dtype="q8_0", progress=False)
    messages = [{"role": "user", "content": "Set an alarm for 7am, loud."}]
    with cactus.Cactus(str(out)) as model:
        for seed in range(3):
            model.reset()
            r = model.complete(messages, tools=TOOLS, tool_choice="set_alarm", max_tokens=400, temperature=0.9,
                               seed=seed, n_ctx=2048)
            assert [c["name"] for c in r["function_calls"]] == ["set_alarm"], (template, r["response"])
            jsonschema.validate(r["function_calls"][0]["arguments"], _schema("set_alarm"))
