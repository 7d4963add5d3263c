"""The default model (weights/cactus-chat) works out of the box: the one-command answer, a quick held-out
eval through our engine, tool calls end to end, and cloud handoff deciding by its confidence."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import cactus
import jsonschema
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import eval_default_model as ev
import make_corpus as mc

CARD = ROOT / "weights" / "cactus-chat" / "README.md"
MODEL = ROOT / "weights" / "cactus-chat" / "cactus-chat-q8_0.gguf"
# The handoff threshold the model card recommends (between the confidence of in-domain and out-of-domain
# answers on the held-out eval).
HANDOFF_THRESHOLD = float(re.search(r"recommended `cloud_handoff_threshold`: ([0-9.]+)",
                                    CARD.read_text(encoding="utf-8")).group(1))
KEY = "sk-test-default-model-cloud"


@pytest.fixture(scope="module")
def model():
    with cactus.Cactus(str(MODEL)) as m:
        yield m


def test_model_is_shipped_and_matches_its_card() -> None:
    assert MODEL.stat().st_size <= 30 * 1024 * 1024
    digest = hashlib.sha256(MODEL.read_bytes()).hexdigest()
    assert digest in CARD.read_text(encoding="utf-8"), "the model card's sha256 is stale"
    assert Path(cactus.default_model_path()).resolve() == MODEL.parent.resolve() or \
        (Path(cactus.default_model_path()) / MODEL.name).is_file()


def _has_run(ids: list, run: list) -> bool:
    return any(ids[i:i + len(run)] == run for i in range(len(ids) - len(run) + 1))


@pytest.mark.parametrize("name", ["Krakow", "Veve City", "Ulpes", "the doctor was moved"])
def test_a_name_is_the_same_tokens_in_the_request_and_in_the_call(model, name: str) -> None:
    """The tokenizer never merges a space or a quote into the word after it (TRAIN_REGEX in
    tools/train_default_model.py), so an argument in the call is a plain copy of the request's tokens."""
    word = model.tokenize(name)
    assert _has_run(model.tokenize(f"What is the weather in {name}?"), word)
    assert _has_run(model.tokenize(f'{{"name": "get_weather", "arguments": {{"city": "{name}"}}}}'), word)


def test_cactus_run_what_is_two_plus_two() -> None:
    """The README's first command, as a user types it (a seed only to make the test repeatable)."""
    out = subprocess.run([sys.executable, "-m", "cactus", "run", "What is 2+2?", "--seed", "1"], check=False,
                         capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert "4" in out.stdout, out.stdout
    assert "confidence" in out.stderr and "tok/s" in out.stderr  # the line of figures


def test_cactus_chat_keeps_history_and_reuses_the_cache() -> None:
    """The REPL: a follow-up is understood in context, its turn prefills only the new tokens, /reset
    starts over (the whole prompt prefilled again)."""
    lines = "What is 2+2?\nWhat about 3+3?\n/reset\nWhat is 5+4?\n/quit\n"
    out = subprocess.run([sys.executable, "-m", "cactus", "chat", "--temperature", "0"], input=lines,
                         capture_output=True, text=True, timeout=120, env=dict(os.environ), check=False)
    assert out.returncode == 0, out.stderr
    answers = [line for line in out.stdout.splitlines() if "equals" in line]
    assert len(answers) == 3 and "4" in answers[0] and "6" in answers[1] and "9" in answers[2], out.stdout
    fills = [(int(a), int(b)) for a, b in re.findall(r"prefill (\d+)/(\d+) tokens", out.stderr)]
    assert len(fills) == 3, out.stderr
    assert fills[0][0] == fills[0][1]            # first turn: the whole prompt
    assert fills[1][0] < fills[1][1] // 2        # follow-up: only what is new
    assert fills[2][0] == fills[2][1]            # after /reset: the whole prompt again


@pytest.fixture(scope="module")
def quick_eval() -> dict[str, Any]:
    return ev.behaviour_eval(str(MODEL), n_arith=30, n_tool=24, n_chat=12, n_ood=24)


def test_quick_eval_arithmetic(quick_eval: dict[str, Any]) -> None:
    assert quick_eval["arith_exact"] >= ev.BARS["arith_exact"], quick_eval["failures"]


def test_quick_eval_confidence_separates_out_of_domain(quick_eval: dict[str, Any]) -> None:
    assert quick_eval["confidence_auc"] >= ev.BARS["confidence_auc"], (
        quick_eval["confidence_in_mean"], quick_eval["confidence_out_mean"])


# phrasings from the held-out pools, never seen in training; Tokyo and Berlin are cities the corpus teaches,
# Krakow, Montevideo and the invented Veve City come from the held-out pool: the model copies them from the
# request (rare words in a message text are where it is still weak: see the tool figures of its model card)
@pytest.mark.parametrize("prompt, name, arguments", [
    ("Could you look up the weather in Tokyo?", "get_weather", {"city": "Tokyo"}),
    ("Is it raining in Berlin?", "get_weather", {"city": "Berlin"}),
    ("Could you look up the weather in Krakow?", "get_weather", {"city": "Krakow"}),
    ("Could you look up the weather in Veve City?", "get_weather", {"city": "Veve City"}),
    ("Is it raining in Montevideo?", "get_weather", {"city": "Montevideo"}),
    ("Could you wake me at 6:45?", "set_alarm", {"time": "6:45"}),
    ("I need an alarm at 07:30.", "set_alarm", {"time": "07:30"}),
])
def test_weather_and_alarm_requests_call_the_tool(model, prompt: str, name: str, arguments: dict) -> None:
    """End to end (tool_choice auto, the model decides): the request yields the expected call, parsed
    into function_calls with arguments that validate against the tool's schema."""
    tools = list(mc.TOOLS.values())
    model.reset()
    r = model.complete([{"role": "user", "content": prompt}], tools=tools, temperature=0, max_tokens=64)
    assert r["success"], r["error"]
    assert r["function_calls"] == [{"name": name, "arguments": arguments}], r
    assert "<tool_call>" not in r["response"]
    jsonschema.validate(r["function_calls"][0]["arguments"], mc.TOOLS[name]["function"]["parameters"])


IN_DOMAIN = ["What is 7+5?", "What's 9 times 6?", "Hello, who are you?", "Tell me a joke.",
             "How much is 15 minus 8?", "What can you do?", "Thanks!", "Calculate 12+9."]
OUT_OF_DOMAIN = ["What is the capital of Australia?", "Who painted the Mona Lisa?", "How does a vaccine work?",
                 "Summarize the plot of Hamlet.", "Why is the sky blue?", "Explain how a blockchain works.",
                 "Who wrote Pride and Prejudice?", "What causes the seasons on Earth?"]


def test_handoff_threshold_sends_out_of_domain_to_the_cloud(model, monkeypatch: pytest.MonkeyPatch,
                                                             convert_fixture, tmp_path: Path) -> None:
    """With the card's threshold and a real `cactus serve` on loopback as the cloud, questions the model
    was never taught go to the cloud and the ones it knows stay on the device."""
    from .test_server import Server

    server = Server([str(convert_fixture("llama", "q8_0")), "--api-key", KEY, "--name", "cloud"])
    try:
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
        monkeypatch.setenv("CACTUS_CLOUD_URL", server.url + "/v1")
        monkeypatch.setenv("CACTUS_CLOUD_API_KEY", KEY)
        monkeypatch.setenv("CACTUS_CLOUD_MODEL", "cloud")
        decisions = {}
        for prompt in IN_DOMAIN + OUT_OF_DOMAIN:
            model.reset()
            r = model.complete([{"role": "user", "content": prompt}], temperature=0, max_tokens=48,
                               cloud_handoff_threshold=HANDOFF_THRESHOLD)
            assert r["success"] and "cloud_error" not in r, r
            decisions[prompt] = r["cloud_handoff"]
    finally:
        server.stop()
    kept = sum(not decisions[p] for p in IN_DOMAIN)
    sent = sum(decisions[p] for p in OUT_OF_DOMAIN)
    assert kept >= 7 and sent >= 7, decisions
