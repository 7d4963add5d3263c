"""The default model's recipe: a seeded corpus that is the same bytes for the same seed, held-out prompts
that training never sees, and the eval's helpers (the shipped model itself: tests/test_default_model.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import eval_default_model as ev
import make_corpus as mc


def test_corpus_is_deterministic() -> None:
    a = mc.corpus_bytes(seed=3, n=200)
    assert a == mc.corpus_bytes(seed=3, n=200)
    assert a != mc.corpus_bytes(seed=4, n=200)
    assert mc.corpus_bytes(seed=3, n=50, split="heldout") == mc.corpus_bytes(seed=3, n=50, split="heldout")
    kinds = {json.loads(line)["meta"]["kind"] for line in a.decode("utf-8").splitlines()}
    assert {"arith", "tool", "chat", "joke", "units"} <= kinds

def test_heldout_prompts_are_not_in_training() -> None:
    for pools in (mc.ADD_ASK, mc.SUB_ASK, mc.MUL_ASK, mc.FOLLOW_ASK, mc.CITIES, mc.NAMES, mc.IDENTITY_ASK):
        assert not set(pools[0]) & set(pools[1])
    # the composed tool phrasings: none equals a held-out one, even ignoring case and punctuation
    for pools in (mc.WEATHER_ASK, mc.ALARM_ASK, mc.MESSAGE_ASK, mc.CONVERT_ASK):
        assert len(pools[0]) > 100 and pools[1]
        assert not {mc._norm(t) for t in pools[0]} & {mc._norm(t) for t in pools[1]}
    # copy turns write every word of the training text, but names are never a held-out name or city
    assert {"umbrella", "please", "weather"} <= set(mc.COPY_WORDS)
    assert not {w.capitalize() for w in mc.NAME_WORDS} & set(mc.CITIES[1] + mc.NAMES[1])
    g = mc.Gen(2)
    assert not {g.name() for _ in range(3000)} & set(mc.NAMES[1] + mc.CITIES[1])
    assert not {g.city() for _ in range(3000)} & set(mc.CITIES[1])
    train = {m["content"] for c in mc.generate(5, 300) for m in c["messages"] if m["role"] == "user"}
    held = [m["content"] for c in mc.generate(5, 300, "heldout") for m in c["messages"] if m["role"] == "user"]
    # only prompts that every split shares by design (greetings, thanks, bare numbers) may repeat
    assert len([h for h in held if h in train]) < 0.05 * len(held)


def test_arithmetic_operands_in_range() -> None:
    g = mc.Gen(0, "train")
    for _ in range(500):
        a, b = g.pair(ordered=True)
        assert 0 <= b <= a <= mc.ARITH_MAX
    _, answer, c, (a, b, _) = g.arith("-")
    assert answer == f"{a}-{b} equals {a - b}." and c == a - b

def test_auc_helper() -> None:
    assert ev.roc_auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert ev.roc_auc([0.5], [0.5]) == 0.5
    assert ev.roc_auc([0.1], [0.9]) == 0.0

def test_tool_call_parsing() -> None:
    r = {"response": '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>',
         "function_calls": []}
    assert ev.parse_calls(r) == [{"name": "get_weather", "arguments": {"city": "Oslo"}}]
    r = {"response": "", "function_calls": [{"name": "set_alarm", "arguments": '{"time": "7:30"}'}]}
    assert ev.parse_calls(r) == [{"name": "set_alarm", "arguments": {"time": "7:30"}}]
    assert ev.same_arguments({"value": 5.0, "to_unit": "km"}, {"value": 5, "to_unit": "km"})
    assert not ev.same_arguments({"value": 5}, {"value": 5, "to_unit": "km"})
