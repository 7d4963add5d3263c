"""Chat templates in C against the real Jinja templates.

Each supported family must render, byte for byte, what transformers' ``apply_chat_template`` renders
from the model's own template (``../shared/templates``, plus a few well-known templates inlined below)
for the same messages. The Jinja side runs in the environment transformers builds (sandboxed,
trim_blocks, lstrip_blocks, its ``tojson``, ``raise_exception`` and ``strftime_now``), on the messages
as cactus normalises them: text parts joined, JSON-object argument strings parsed, ``tool_calls: null``
dropped, and a null content read as "" where the template cannot take None.
"""

from __future__ import annotations

import copy
import functools
import json
import random
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import cactus
import jinja2
import jinja2.ext
import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT.parent / "shared" / "templates"

# Templates not in ../shared/templates, as their models' tokenizer_config.json ships them.
PLAIN_CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|"
    ">assistant\\n' }}{% endif %}"
)
SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system"
    "' %}{{ '<|im_start|>system\\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
CHATML_BOS = "{{bos_token}}" + PLAIN_CHATML  # Hermes 2 Pro / Hermes 3 default, LFM2 1.2B
LLAMA30 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set conte"
    "nt = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_"
    "id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if"
    " add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
GEMMA3 = (
    "{{ bos_token }}\n{%- if messages[0]['role'] == 'system' -%}\n    {%- if messages"
    "[0]['content'] is string -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}\n    {%- else -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n'"
    " -%}\n    {%- endif -%}\n"
    '    {%- set loop_messages = messages[1:] -%}\n{%- else -%}\n    {%- set first_user_prefix = "" -%}\n'
    "    {%- set loop_messages = messages -%}\n{%- endif -%}\n{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    '        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}\n'
    "    {%- endif -%}\n    {%- if (message['role'] == 'assistant') -%}\n        {%- "
    'set role = "model" -%}\n'
    "    {%- else -%}\n        {%- set role = message['role'] -%}\n    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n        {{ message['content'] | trim }}\n"
    "    {%- elif message['content'] is iterable -%}\n        {%- for item in message['content'] -%}\n"
    "            {%- if item['type'] == 'image' -%}\n                {{ '<start_of_image>' }}\n"
    "            {%- elif item['type'] == 'text' -%}\n                {{ item['text'] | trim }}\n"
    "            {%- endif -%}\n        {%- endfor -%}\n    {%- else -%}\n"
    '        {{ raise_exception("Invalid content type") }}\n    {%- endif -%}\n    '
    "{{ '<end_of_turn>\\n' }}\n"
    "{%- endfor -%}\n{%- if add_generation_prompt -%}\n    {{'<start_of_turn>model\\n'}}\n{%- endif -%}\n"
)


def _default_model_template() -> str | None:
    """The template tools/train_default_model.py ships with the default model (read without importing it,
    which needs torch); None when that file no longer has it in this shape."""
    import ast

    path = ROOT / "tools" / "train_default_model.py"
    if not path.exists():
        return None
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "CHAT_TEMPLATE":
            inner = getattr(getattr(node.value, "func", None), "value", None)
            if isinstance(inner, ast.Constant) and isinstance(inner.value, str):
                qwen = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
                return inner.value.replace("DEFAULT_SYSTEM", qwen)
    return None


DEFAULT_MODEL_TEMPLATE = _default_model_template()

DS_BOS, DS_EOS = "<\uff5cbegin\u2581of\u2581sentence\uff5c>", "<\uff5cend\u2581of\u2581sentence\uff5c>"


# ---------------------------------------------------------------------------------------------------------
# The Jinja oracle, set up as transformers sets it up (utils/chat_template_utils.py).


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(
    x: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None, sort_keys: bool = False
) -> str:
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def jinja_env() -> Any:
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


@dataclass
class Family:
    name: str
    template: str
    bos: str | None
    eos: str | None
    # Cases where cactus deliberately differs from the template (see FAMILIES).
    skip: frozenset = field(default_factory=frozenset)
    parse_args: bool = True  # JSON-object argument strings reach the template as objects
    null_as_empty: bool = True  # the template fails on a None content; cactus reads null as ""
    tools_default: Any = None  # what tools=None means for this template


def _file(name: str) -> str:
    path = TEMPLATES / name
    if not path.exists():
        pytest.fail(f"{path} is missing: ../shared must sit beside the checkout")
    return path.read_text(encoding="utf-8")


def template_text(fam: Family) -> str:
    return _file(fam.template) if fam.template.endswith(".jinja") else fam.template


def normalise(messages: list, parse_args: bool) -> list:
    """The messages as cactus reads them (see the module docstring)."""
    out = copy.deepcopy(messages)
    for m in out:
        if isinstance(m.get("content"), list):
            m["content"] = "".join(part["text"] for part in m["content"])
        if "tool_calls" in m and m["tool_calls"] is None:
            del m["tool_calls"]
        for call in m.get("tool_calls") or []:
            fn = call.get("function", call)
            if parse_args and isinstance(fn.get("arguments"), str):
                try:
                    parsed = json.loads(fn["arguments"])
                except ValueError:
                    parsed = None
                if isinstance(parsed, dict):
                    fn["arguments"] = parsed
    return out


@functools.cache
def compiled(fam_name: str) -> Any:
    return jinja_env().from_string(template_text(FAMILY_BY_NAME[fam_name]))


def jinja_render(fam: Family, messages: list, tools: list | None, add_generation_prompt: bool) -> str:
    template = compiled(fam.name)
    context: dict = {
        "messages": normalise(messages, fam.parse_args),
        "tools": fam.tools_default if tools is None else tools,
        "documents": None,
        "add_generation_prompt": add_generation_prompt,
    }
    if fam.bos is not None:
        context["bos_token"] = fam.bos
    if fam.eos is not None:
        context["eos_token"] = fam.eos
    try:
        return template.render(**context)
    except (TypeError, jinja2.exceptions.UndefinedError):
        if not fam.null_as_empty:
            raise
        context["messages"] = [
            {**m, "content": "" if m.get("content") is None else m["content"]} for m in context["messages"]
        ]
        return template.render(**context)


def cactus_render(fam: Family, messages: Any, tools: Any = None, add_generation_prompt: bool = True) -> str:
    return cactus.render_chat(
        messages,
        tools,
        template=template_text(fam),
        add_generation_prompt=add_generation_prompt,
        bos_token=fam.bos,
        eos_token=fam.eos,
    )


# ---------------------------------------------------------------------------------------------------------
# Conversations.


def S(text: Any) -> dict:
    return {"role": "system", "content": text}


def U(text: Any) -> dict:
    return {"role": "user", "content": text}


def A(text: Any, calls: list | None = None, **extra: Any) -> dict:
    m = {"role": "assistant", "content": text, **extra}
    if calls is not None:
        m["tool_calls"] = calls
    return m


def call(call_id: str, name: str, arguments: Any) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def result(call_id: str, name: str, content: str) -> dict:
    return {"role": "tool", "tool_call_id": call_id, "name": name, "content": content}


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city, in °C.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": '  The city name, e.g. "Zürich". '},
                    "days": {"type": "integer", "description": "Forecast days", "minimum": 1, "maximum": 7},
                    "units": {"type": "string", "enum": ["metric", "imperial"]},
                },
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search",
            "description": "Web search.",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "What to look for"},
                    "limit": {"type": "number", "description": "Max results", "default": 2.5},
                    "safe": {"type": "boolean"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "filters": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "when": {"type": ["string", "integer"], "description": "date or epoch"},
                    "extra": {"description": "no type at all"},
                    'naïve "key"': {"type": "string", "description": 5},
                    "scale": {
                        "type": "number",
                        "examples": [1e-07, 1e20, -0.0, 0.1, 123456789012, 3.14159, {}, []],
                    },
                },
            },
            "return": {"type": "object", "description": "The hits."},
        },
    },
]
NO_PARAM_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "now",
            "description": "The time.",
            "parameters": {"type": "object", "properties": {}},
        },
    }
]

CALL_W = call("call00001", "get_weather", {"city": "Paris", "days": 2})
CALL_S = call(
    "call00002", "search", '{"query": "best café", "limit": 3, "nested": {"a": [1, 2.5, null, true]}}'
)

CASES: dict = {
    "user": ([U("Hello!")], None),
    "system_user": ([S("You are terse."), U("Hello!")], None),
    "multi_turn": ([S("You are terse."), U("Hi"), A("Hello. How can I help?"), U("Tell me a joke.")], None),
    "no_system_history": ([U("Hi"), A("Hello."), U("2+2?"), A("4")], None),
    "whitespace_unicode": (
        [
            S("  Be nice 😀 \n"),
            U('\u3000 héllo "quoted" \\ back\n\t'),
            A(" 中文 answer \u2028"),
            U("naïve\x01 ctrl \u00a0"),
        ],
        None,
    ),
    "text_parts": (
        [
            S([{"type": "text", "text": "Sys "}, {"type": "text", "text": "prompt"}]),
            U([{"type": "text", "text": "Hello "}, {"type": "text", "text": "world"}]),
        ],
        None,
    ),
    "empty_system": ([S(""), U("Hi")], None),
    "tools_user": ([S("You can call tools."), U("Weather in Paris?")], TOOLS),
    "tools_no_system": ([U("Weather in Paris?")], TOOLS),
    "tools_empty_list": ([U("Hi")], []),
    "tools_no_params": ([U("What time is it?")], NO_PARAM_TOOLS),
    "tool_flow": (
        [
            S("Use tools."),
            U("Weather in Paris?"),
            A(None, [CALL_W]),
            result("call00001", "get_weather", '{"temp": 21, "sky": "sunny"}'),
            A("It is 21 °C and sunny."),
            U("Thanks!"),
        ],
        TOOLS,
    ),
    "tool_flow_string_args": (
        [U("Find cafés"), A(None, [CALL_S]), result("call00002", "search", "3 hits")],
        TOOLS,
    ),
    "tool_flow_with_content": (
        [
            U("Find cafés"),
            A("Let me search.", [CALL_S]),
            result("call00002", "search", "3 hits"),
            A("Found 3."),
        ],
        TOOLS,
    ),
    "parallel_calls": (
        [
            U("Weather and cafés?"),
            A(None, [CALL_W, CALL_S]),
            result("call00001", "get_weather", "sunny"),
            result("call00002", "search", "3 hits"),
            A("Sunny, 3 cafés."),
        ],
        TOOLS,
    ),
    "tool_calls_null": ([U("Hi"), A("Hello", None, tool_calls=None), U("Bye")], None),
    "think_history": (
        [
            U("Q1"),
            A("<think>\nreason 1\n</think>\n\nanswer 1"),
            U("Q2"),
            A("<think>reason 2</think>answer 2"),
        ],
        None,
    ),
    "think_history_system": ([S("Think."), U("Q1"), A("<think>r</think>\n\na1"), U("Q2")], None),
    "reasoning_field": (
        [U("Q1"), A("a1", reasoning_content="\nr1\n"), U("Q2"), A("a2", reasoning_content="r2")],
        None,
    ),
    "tool_response_as_user": (
        [
            U("Q"),
            A("<think>t</think>calling", [CALL_W]),
            U("<tool_response>\nsunny\n</tool_response>"),
            A("<think>t2</think>It is sunny."),
        ],
        TOOLS,
    ),
    "tool_flow_bad_args": (
        [
            U("Q"),
            A(None, [call("call00003", "search", "not json {"), call("call00004", "search", "[1, 2]")]),
            result("call00003", "search", "r1"),
            result("call00004", "search", "r2"),
        ],
        TOOLS,
    ),
    "repeated_user": ([S("Sys"), U("hi"), A("a"), U("hi")], TOOLS),
    "tool_first": ([result("call00001", "get_weather", "sunny"), U("And now?")], None),
    "two_systems": ([S("One"), S("Two"), U("Hi")], None),
    "assistant_first": ([A("Welcome!"), U("Hi")], None),
    "empty_strings": ([S(""), U(""), A(""), U("")], None),
    "whitespace_only": ([S(" \n "), U("\t"), A("\u3000"), U(" x ")], None),
    "reasoning_none": ([U("Q1"), A("<think>t</think>a1", reasoning_content=None), U("Q2"), A("a2")], None),
}

# Cases a template cannot render at all, or renders into nonsense cactus does not copy.
SYSTEM_CASES = frozenset(name for name, (msgs, _) in CASES.items() if msgs[0]["role"] == "system")
NULL_CONTENT_CASES = frozenset(
    name for name, (msgs, _) in CASES.items() if any(m.get("content", 0) is None for m in msgs)
)
OBJECT_ARGS_CASES = frozenset(
    name
    for name, (msgs, _) in CASES.items()
    if any(isinstance(c["function"]["arguments"], dict) for m in msgs for c in m.get("tool_calls") or [])
)

FAMILIES = [
    Family("qwen2.5", "Qwen-Qwen2.5-7B-Instruct.jinja", None, "<|im_end|>"),
    Family("qwen3", "Qwen-Qwen3-0.6B.jinja", None, "<|im_end|>"),
    # The tool_use template iterates tools unconditionally: without tools it gets an empty list.
    Family(
        "hermes-2-pro",
        "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja",
        "<|begin_of_text|>",
        "<|im_end|>",
        tools_default=[],
    ),
    Family(
        "hermes-3",
        "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja",
        "<|begin_of_text|>",
        "<|im_end|>",
        tools_default=[],
    ),
    # LFM2 renders a null content through tojson ("null") rather than failing.
    Family("lfm2", "LiquidAI-LFM2-8B-A1B.jinja", "<|startoftext|>", "<|im_end|>", null_as_empty=False),
    Family("llama3.1", "meta-llama-Llama-3.1-8B-Instruct.jinja", "<|begin_of_text|>", "<|eot_id|>"),
    Family("llama3.2", "meta-llama-Llama-3.2-3B-Instruct.jinja", "<|begin_of_text|>", "<|eot_id|>"),
    Family("llama3.3", "meta-llama-Llama-3.3-70B-Instruct.jinja", "<|begin_of_text|>", "<|eot_id|>"),
    # Llama 3.0 renders a null content as the text "None" (None | trim); cactus renders "".
    Family("llama3.0", LLAMA30, "<|begin_of_text|>", "<|eot_id|>", skip=NULL_CONTENT_CASES),
    # Gemma 2 refuses a system message (Gemma 3, below, merges it into the first turn, as cactus does)
    # and renders a null content as "None".
    Family("gemma2", "google-gemma-2-2b-it.jinja", "<bos>", "<eos>", skip=SYSTEM_CASES | NULL_CONTENT_CASES),
    # Gemma 3 stops at a null content ("Invalid content type"); cactus renders "".
    Family("gemma3", GEMMA3, "<bos>", "<eos>", skip=NULL_CONTENT_CASES),
    Family("phi3.5", "microsoft-Phi-3.5-mini-instruct.jinja", "<s>", "<|endoftext|>"),
    Family("mistral-nemo", "mistralai-Mistral-Nemo-Instruct-2407.jinja", "<s>", "</s>"),
    Family("chatml", PLAIN_CHATML, None, "<|im_end|>"),
    Family("smollm2", SMOLLM2, None, "<|im_end|>"),
    Family("chatml+bos", CHATML_BOS, "<|startoftext|>", "<|im_end|>"),
    # DeepSeek concatenates the arguments string as given; a null content selects its tool-call branch.
    Family(
        "deepseek-r1-llama",
        "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja",
        DS_BOS,
        DS_EOS,
        skip=OBJECT_ARGS_CASES,
        parse_args=False,
        null_as_empty=False,
    ),
    Family(
        "deepseek-r1-qwen",
        "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja",
        DS_BOS,
        DS_EOS,
        skip=OBJECT_ARGS_CASES,
        parse_args=False,
        null_as_empty=False,
    ),
]
if DEFAULT_MODEL_TEMPLATE:  # renders what Qwen 2.5's template renders, so it is detected as Qwen 2.5
    FAMILIES.append(Family("default-model", DEFAULT_MODEL_TEMPLATE, None, "<|im_end|>"))
FAMILY_BY_NAME = {f.name: f for f in FAMILIES}


PARAMS = [
    (fam.name, case, gen)
    for fam in FAMILIES
    for case in CASES
    for gen in (True, False)
    if case not in fam.skip
]


@pytest.mark.parametrize("family,case,add_generation_prompt", PARAMS)
def test_matches_jinja(family: str, case: str, add_generation_prompt: bool) -> None:
    fam = FAMILY_BY_NAME[family]
    messages, tools = CASES[case]
    try:
        expected = jinja_render(fam, messages, tools, add_generation_prompt)
    except jinja2.exceptions.TemplateError as e:  # raise_exception: cactus refuses the conversation too
        with pytest.raises(RuntimeError) as info:
            cactus_render(fam, messages, tools, add_generation_prompt)
        assert str(e)[:30] in str(info.value)
        return
    assert cactus_render(fam, messages, tools, add_generation_prompt) == expected


def test_transformers_environment_agrees() -> None:
    """The oracle above is transformers' own environment, where transformers is installed."""
    utils = pytest.importorskip("transformers.utils.chat_template_utils")
    for fam in (FAMILY_BY_NAME["llama3.1"], FAMILY_BY_NAME["hermes-3"], FAMILY_BY_NAME["qwen3"]):
        messages, tools = CASES["tool_flow_with_content"]
        context = {
            "messages": normalise(messages, True),
            "tools": tools,
            "add_generation_prompt": True,
            "bos_token": fam.bos,
            "eos_token": fam.eos,
        }
        theirs = utils._compile_jinja_template(template_text(fam)).render(**context)
        assert theirs == jinja_render(fam, messages, tools, True)


# ---------------------------------------------------------------------------------------------------------
# Detection, defaults and the template-specific rules.


@pytest.mark.parametrize(
    "template", [None, "{{ messages }}", "unknown", "CohereForAI-c4ai-command-r-plus-tool_use.jinja"]
)
def test_unknown_template_is_chatml(template: str | None) -> None:
    text = _file(template) if template and template.endswith(".jinja") else template
    messages = CASES["multi_turn"][0]
    for gen in (True, False):
        expected = jinja_render(FAMILY_BY_NAME["chatml"], messages, None, gen)
        assert cactus.render_chat(messages, template=text, add_generation_prompt=gen) == expected


def test_llama32_uses_todays_date() -> None:
    out = cactus_render(FAMILY_BY_NAME["llama3.2"], [U("Hi")])
    assert f"Today Date: {datetime.now().strftime('%d %b %Y')}\n" in out
    assert "Today Date: 26 Jul 2024\n" in cactus_render(FAMILY_BY_NAME["llama3.1"], [U("Hi")])


def test_mistral_long_ids_keep_last_nine_characters() -> None:
    fam = FAMILY_BY_NAME["mistral-nemo"]
    long_call = call("call_abcdefghi123456789", "get_weather", {"city": "Paris"})
    messages = [
        U("Weather?"),
        A(None, [long_call]),
        result("call_abcdefghi123456789", "get_weather", "sunny"),
    ]
    short = copy.deepcopy(messages)
    short[1]["tool_calls"][0]["id"] = short[2]["tool_call_id"] = "123456789"
    assert cactus_render(fam, messages, TOOLS) == jinja_render(fam, short, TOOLS, True)


@pytest.mark.parametrize(
    "family,messages,tools,message",
    [
        ("mistral-nemo", [U("Weather?"), A(None, [call("abc", "get_weather", {})])], None, "length 9"),
        ("mistral-nemo", [U("a"), U("b")], None, "must alternate"),
        ("mistral-nemo", [U("a"), S("late system")], None, "Only user and assistant roles"),
        ("gemma3", [U("a"), U("b")], None, "must alternate"),
        ("gemma3", [A("a")], None, "must alternate"),
        ("llama3.1", [U("a"), A(None, [CALL_W, CALL_S])], None, "single tool-calls"),
        ("llama3.1", [S("only a system message")], TOOLS, "no first user message"),
    ],
)
def test_template_errors_are_mirrored(family: str, messages: list, tools: list | None, message: str) -> None:
    fam = FAMILY_BY_NAME[family]
    with pytest.raises(jinja2.exceptions.TemplateError):
        jinja_render(fam, messages, tools, True)
    with pytest.raises(RuntimeError, match=message):
        cactus_render(fam, messages, tools)


def test_hermes_types_jinja_cannot_render() -> None:
    """Jinja recurses forever on an unknown type name in json_to_python_type; cactus writes Any."""
    tools = [
        {
            "type": "function",
            "function": {
                "name": "f",
                "description": "d",
                "parameters": {
                    "type": "object",
                    "properties": {"a": {"type": "null"}, "b": {"type": ["string", "null"]}},
                },
            },
        }
    ]
    out = cactus_render(FAMILY_BY_NAME["hermes-3"], [U("hi")], tools)
    assert "f(a: Any, b: Union[str,Any]) - d" in out


# ---------------------------------------------------------------------------------------------------------
# Hostile input.

BAD_MESSAGES = [
    ({"role": "user", "content": "x"}, "messages must be a JSON array"),
    ([], "messages is empty"),
    ([1], "messages[0] must be an object"),
    ([{"content": "x"}], "messages[0].role must be a string"),
    ([{"role": "bot", "content": "x"}], "messages[0].role 'bot' is not one of"),
    ([{"role": "user"}], "messages[0].content is missing or null"),
    ([{"role": "user", "content": None}], "messages[0].content is missing or null"),
    (
        [{"role": "user", "content": 5}],
        "messages[0].content must be a string, an array of text parts or null",
    ),
    ([{"role": "user", "content": {"text": "x"}}], "messages[0].content must be a string"),
    ([{"role": "user", "content": ["x"]}], "messages[0].content[0] must be a"),
    (
        [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
        'messages[0].content[0].type must be "text"',
    ),
    ([{"role": "user", "content": [{"type": "text"}]}], "messages[0].content[0].text must be a string"),
    (
        [{"role": "user", "content": [{"type": "text", "text": None}]}],
        "messages[0].content[0].text must be a string",
    ),
    ([U("q"), {"role": "assistant", "content": None}], "messages[1] (assistant) needs content or tool_calls"),
    ([U("q"), A(None, [])], "messages[1] (assistant) needs content or tool_calls"),
    ([U("q"), A(None, {"id": "x"})], "messages[1].tool_calls must be an array"),
    ([U("q"), A(None, [5])], "messages[1].tool_calls[0] must be an object"),
    ([U("q"), A(None, [{"function": "f"}])], "messages[1].tool_calls[0].function must be an object"),
    (
        [U("q"), A(None, [{"function": {"arguments": {}}}])],
        "messages[1].tool_calls[0].function.name must be a string",
    ),
    (
        [U("q"), A(None, [{"function": {"name": "f"}}])],
        "messages[1].tool_calls[0].function.arguments must be",
    ),
    (
        [U("q"), A(None, [{"function": {"name": "f", "arguments": 5}}])],
        "tool_calls[0].function.arguments must be",
    ),
    ([U("q"), A(None, [{"name": "f", "arguments": []}])], "messages[1].tool_calls[0].arguments must be"),
    (
        [U("q"), A(None, [{"id": 5, "function": {"name": "f", "arguments": {}}}])],
        "tool_calls[0].id must be a string",
    ),
    ([{"role": "user", "content": "q", "tool_calls": [CALL_W]}], "tool_calls is only allowed on assistant"),
    (
        [U("q"), {"role": "tool", "content": "r", "tool_call_id": 7}],
        "messages[1].tool_call_id must be a string",
    ),
    ([U("q"), A("a", reasoning_content=3)], "messages[1].reasoning_content must be a string or null"),
]


@pytest.mark.parametrize("messages,message", BAD_MESSAGES)
@pytest.mark.parametrize("family", ["chatml", "llama3.1", "mistral-nemo"])
def test_malformed_messages(family: str, messages: Any, message: str) -> None:
    with pytest.raises(RuntimeError) as info:
        cactus_render(FAMILY_BY_NAME[family], messages)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "tools,message",
    [
        ({"type": "function"}, "tools must be a JSON array"),
        ([5], "tools[0] must be an object"),
        ([{"type": "function", "function": []}], "tools[0].function must be an object"),
        (
            [{"type": "function", "function": {"description": "x"}}],
            "tools[0].function.name must be a non-empty string",
        ),
        # the flat {name, ...} shape is refused here as by cactus_complete: one validator for both
        ([{"type": "function", "name": "f"}], "tools[0].function must be an object"),
        ([{"type": "retrieval", "function": {"name": "f"}}], 'tools[0].type must be "function"'),
    ],
)
def test_malformed_tools(tools: Any, message: str) -> None:
    with pytest.raises(RuntimeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        cactus_render(FAMILY_BY_NAME["qwen2.5"], [U("hi")], tools)


def test_invalid_json_text() -> None:
    with pytest.raises(RuntimeError, match="messages_json is not valid JSON"):
        cactus.render_chat('[{"role": "user", "content": "x"')
    with pytest.raises(RuntimeError, match="tools_json is not valid JSON"):
        cactus.render_chat([U("x")], "[{")


@pytest.mark.parametrize("family", [f.name for f in FAMILIES])
def test_huge_content(family: str) -> None:
    fam = FAMILY_BY_NAME[family]
    big = ('héllo wörld 中文 😀 "q" \\ \n' * 40000)[: 1 << 20]
    messages = [U(" " + big + " "), A(big), U("again " + big)]
    out = cactus_render(fam, messages, add_generation_prompt=True)
    assert len(out) > 3 * len(big) - 100
    assert out == jinja_render(fam, messages, None, True)


RANDOM_STRINGS = [
    "",
    "user",
    "assistant",
    "tool",
    "system",
    "text",
    "call00001",
    "</think>",
    "\u0000",
    "é",
    "{}",
]
RANDOM_KEYS = ["role", "content", "tool_calls", "function", "name", "arguments", "id", "type", "text"]


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.choice(["null", "bool", "int", "float", "str"] + (["list", "dict"] if depth < 4 else []))
    if kind == "list":
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if kind == "dict":
        return {rng.choice(RANDOM_KEYS): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 5))}
    scalars = {
        "null": None,
        "bool": rng.random() < 0.5,
        "int": rng.randint(-(10**12), 10**12),
        "float": rng.uniform(-1e6, 1e6),
        "str": rng.choice(RANDOM_STRINGS),
    }
    return scalars[kind]


def _random_message(rng: random.Random) -> Any:
    if rng.random() < 0.2:
        return _random_json(rng)
    m: dict = {
        "role": rng.choice(["system", "user", "assistant", "tool"]),
        "content": rng.choice([None, "text", "", [{"type": "text", "text": "p"}], _random_json(rng)]),
    }
    if rng.random() < 0.4:
        m["tool_calls"] = rng.choice(
            [[CALL_W], [CALL_W, CALL_S], [], None, _random_json(rng), [{"function": _random_json(rng)}]]
        )
    return m


def test_random_input_never_crashes() -> None:
    rng = random.Random(1234)
    ok = 0
    for i in range(600):
        messages = [_random_message(rng) for _ in range(rng.randint(1, 6))]
        tools = rng.choice([None, TOOLS, [], _random_json(rng), [{"function": _random_json(rng)}]])
        fam = FAMILIES[i % len(FAMILIES)]
        try:
            out = cactus_render(fam, messages, tools, rng.random() < 0.5)
        except RuntimeError as e:
            assert str(e)
        else:
            assert isinstance(out, str)
            ok += 1
    assert ok > 20


@pytest.mark.parametrize("family", ["qwen2.5", "qwen3", "hermes-3", "lfm2", "llama3.1", "mistral-nemo"])
def test_raw_json_numbers_and_duplicate_keys(family: str) -> None:
    """JSON text the way a client sends it: Python keeps a repeated key at its first place with its last
    value, and floats print as repr() (1.0, 1e-07, 1e+20)."""
    fam = FAMILY_BY_NAME[family]
    args = '{"b": 1, "a": 1.0, "b": 2, "x": [1e2, -0, -0.0, 1E-7, 12345678901234567, 0.1, 1.5e300, 2.5e-5]}'
    tools = (
        '[{"type": "function", "function": {"name": "f", "description": "d", "name": "g", "parameters": '
        '{"type": "object", "properties": {"p": {"type": "number", "default": 1.0}, "p": '
        '{"type": "string"}}}}}]'
    )
    messages = (
        '[{"role": "user", "content": "hi"}, {"role": "assistant", "content": null, "tool_calls": '
        '[{"id": "call00001", "type": "function", "function": {"name": "g", "arguments": ' + args + "}}]}, "
        '{"role": "tool", "tool_call_id": "call00001", "content": "ok"}]'
    )
    got = cactus.render_chat(
        messages, tools, template=template_text(fam), bos_token=fam.bos, eos_token=fam.eos
    )
    assert got == jinja_render(fam, json.loads(messages), json.loads(tools), True)


# Pieces of valid conversations, combined at random and compared with Jinja family by family.
PIECES = [
    "hi", "", " spaced ", "\n\nnl\n", "<think>\nr\n</think>\n\nans", "a<think>b</think>c</think>d",
    "</think>", "<tool_response>\nx\n</tool_response>", "中文 😀", "\u3000x\u2028", 'q"\\', "\t", "None",
]  # fmt: skip
IDS = ["call00001", "call00002", "abcdefghi"]
ARGS = [{"a": 1}, {}, '{"x": [1, 2.5]}', "plain", {"nested": {"k": None, "f": 0.1}}]


def _random_turn(rng: random.Random) -> dict:
    r = rng.random()
    content: Any = rng.choice(PIECES)
    if rng.random() < 0.1:
        content = [{"type": "text", "text": rng.choice(PIECES)}, {"type": "text", "text": rng.choice(PIECES)}]
    if r < 0.15:
        return S(content)
    if r < 0.5:
        return U(content)
    if r < 0.75:
        extra = {"reasoning_content": rng.choice([None, "", "\nrr\n"])} if rng.random() < 0.2 else {}
        return A(content, **extra)
    if r < 0.88:
        calls = [call(rng.choice(IDS), "search", rng.choice(ARGS)) for _ in range(rng.randint(1, 2))]
        return A(rng.choice([None, "", "text"]), calls)
    return result(rng.choice(IDS), "search", rng.choice(PIECES))


def _known_difference(fam: Family, messages: list, tools: list | None) -> bool:
    """The cases the FAMILIES comments describe, where the template prints "None" or fails on a null."""
    null = any(m.get("content", 0) is None for m in messages)
    rest = messages[1:] if messages[0]["role"] == "system" else messages
    return (
        (null and fam.name in ("llama3.0", "gemma2", "gemma3"))
        or (fam.name == "gemma2" and messages[0]["role"] == "system")
        # Llama 3.1+ moves the first message after the system one into the tools turn, through | trim.
        or (
            fam.name in ("llama3.1", "llama3.2", "llama3.3")
            and tools is not None
            and rest
            and rest[0]["content"] is None
        )
    )


def test_random_conversations_match_jinja() -> None:
    rng = random.Random(7)
    compared = 0
    for _ in range(400):
        messages = [_random_turn(rng) for _ in range(rng.randint(1, 6))]
        tools = rng.choice([None, TOOLS, [], NO_PARAM_TOOLS])
        gen = rng.random() < 0.5
        for fam in FAMILIES:
            if _known_difference(fam, messages, tools):
                continue
            try:
                expected: Any = jinja_render(fam, messages, tools, gen)
            except jinja2.exceptions.TemplateError:
                expected = RuntimeError
            except TypeError:  # DeepSeek given an arguments object: the template cannot render it
                continue
            try:
                got: Any = cactus_render(fam, messages, tools, gen)
            except RuntimeError:
                got = RuntimeError
            assert got == expected, (fam.name, messages, tools, gen)
            compared += 1
    assert compared > 5000
