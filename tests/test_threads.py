"""The SDK from several threads at once: one handle per thread generating together (greedy answers equal
the single-threaded ones), cactus_stop racing a completion, handles created and destroyed while another
generates, and a Cactus object closed or reset from another thread while it generates.

cffi releases the GIL around every C call, so these threads really run the C core concurrently.
tests/c/test_threads.c covers the same ground in C (and runs under ThreadSanitizer: tools/sanitize.sh).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cactus
import pytest
from cactus import Cactus, Tokenizer

PROMPTS = [
    [{"role": "user", "content": "Hello there"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tell me a story"}],
    [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
    ],
    [{"role": "user", "content": "\u00e9t\u00e9 \u4e2d\u6587 \U0001f600"}],
]
GREEDY = {"max_tokens": 24, "temperature": 0}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string", "maxLength": 12}, "days": {"type": "integer"}},
                "required": ["location", "days"],
            },
        },
    }
]
N_THREADS = 4


@pytest.fixture(scope="module")
def model_path(convert_fixture) -> str:
    return str(convert_fixture("qwen3", "q8_0"))


def _answer(m: Cactus, messages: list, **options: object) -> tuple:
    """A fresh conversation each time, so the answer depends on the prompt only."""
    m.reset()
    r = m.complete(messages, **options)
    return r["success"], r["response"], r["decode_tokens"], r["function_calls"]


@pytest.fixture(scope="module")
def references(model_path: str) -> dict:
    with Cactus(model_path) as m:
        refs = {i: _answer(m, p, **GREEDY) for i, p in enumerate(PROMPTS)}
        refs["tool"] = _answer(
            m, PROMPTS[0], tools=TOOLS, tool_choice="required", max_tokens=64, temperature=0
        )
    assert all(r[0] and r[2] > 0 for r in refs.values())
    return refs


def test_handles_on_threads_match_single_thread(model_path: str, references: dict) -> None:
    start = threading.Barrier(N_THREADS)

    def work(index: int) -> list:
        got = []
        with Cactus(model_path) as m:
            start.wait()
            for _ in range(2):
                for k in range(len(PROMPTS)):
                    i = (k + index) % len(PROMPTS)
                    got.append((i, _answer(m, PROMPTS[i], **GREEDY)))
                got.append(
                    (
                        "tool",
                        _answer(
                            m, PROMPTS[0], tools=TOOLS, tool_choice="required", max_tokens=64, temperature=0
                        ),
                    )
                )
        return got

    with ThreadPoolExecutor(N_THREADS) as pool:
        results = list(pool.map(work, range(N_THREADS)))
    for index, got in enumerate(results):
        assert len(got) == 2 * (len(PROMPTS) + 1)
        for key, answer in got:
            assert answer == references[key], (index, key)


def test_shared_tokenizer_on_threads(model_path: str) -> None:
    """A Tokenizer only reads its tables: one may serve several threads."""
    texts = ["Hello world", "\u00e9t\u00e9 \u4e2d\u6587", "  spaces\tand\nlines ", "<|im_start|>user"] * 8
    with Tokenizer(model_path) as tok:
        expected = [tok.encode(t) for t in texts]

        def work(_: int) -> list:
            return [tok.encode(t) for t in texts]

        with ThreadPoolExecutor(N_THREADS) as pool:
            for got in pool.map(work, range(N_THREADS * 2)):
                assert got == expected


def test_stop_from_another_thread(model_path: str) -> None:
    with Cactus(model_path) as m:
        first = threading.Event()
        release = threading.Event()

        def on_token(piece: str, token_id: int) -> None:
            first.set()
            release.wait(10)  # generation cannot go on until the stop has been issued

        result: dict = {}
        t = threading.Thread(
            target=lambda: result.update(
                m.complete(PROMPTS[1], max_tokens=200, temperature=0, callback=on_token)
            )
        )
        t.start()
        assert first.wait(30)
        m.stop()
        release.set()
        t.join(30)
        assert not t.is_alive()
        assert result["success"] and result["finish_reason"] == "cancelled"
        assert result["decode_tokens"] == 1


def test_stop_at_random_moments(model_path: str, references: dict) -> None:
    with Cactus(model_path) as m:
        done = threading.Event()

        def stopper() -> None:
            x = 7
            while not done.is_set():
                x = (x * 1103515245 + 12345) % 2**31
                done.wait((x % 3000) / 1e6)
                m.stop()

        t = threading.Thread(target=stopper)
        t.start()
        try:
            for n in range(40):
                i = n % len(PROMPTS)
                m.reset()
                r = m.complete(PROMPTS[i], **GREEDY)
                _, text, n_tok, _ = references[i]
                assert r["success"] and 0 <= r["decode_tokens"] <= n_tok
                if r["finish_reason"] == "cancelled":
                    assert text.startswith(r["response"])
                else:
                    assert (r["response"], r["decode_tokens"]) == (text, n_tok)
        finally:
            done.set()
            t.join()
        # a stop with nothing running is a no-op
        m.stop()
        assert _answer(m, PROMPTS[0], **GREEDY) == references[0]


def test_destroy_other_handles_while_generating(model_path: str, references: dict) -> None:
    answers: list = []
    with Cactus(model_path) as m:

        def generate() -> None:
            for _ in range(3):
                for i in range(len(PROMPTS)):
                    answers.append((i, _answer(m, PROMPTS[i], **GREEDY)))

        t = threading.Thread(target=generate)
        t.start()
        cycles = 0
        while t.is_alive() or cycles < 2:
            with Cactus(model_path) as other:
                if cycles % 2 == 0:
                    assert _answer(other, PROMPTS[3], **GREEDY) == references[3]
            with Tokenizer(model_path) as tok:
                assert tok.vocab_size > 0
            cycles += 1
        t.join()
    assert len(answers) == 3 * len(PROMPTS)
    for i, answer in answers:
        assert answer == references[i]


# Closing or resetting a Cactus while another thread generates on it must wait for (or refuse) the running
# completion: the C handle must not be freed or its conversation cut under a running cactus_complete. Run in
# a child process: when the SDK gets this wrong the generating thread goes on with a freed handle.
_CLOSE_SCRIPT = textwrap.dedent("""
    import os, sys, threading, time
    from cactus import Cactus
    m = Cactus(sys.argv[1])
    first = threading.Event()
    tokens = []
    def on_token(piece, token_id):
        tokens.append(token_id)
        first.set()
        time.sleep(0.02)
    outcome = []
    def run():
        try:
            r = m.complete("Tell me a story", max_tokens=12, temperature=0, callback=on_token)
            outcome.append(r["success"])
        except RuntimeError as exc:
            outcome.append(exc)
    t = threading.Thread(target=run)
    t.start()
    first.wait(30)
    try:
        getattr(m, sys.argv[2])()
    except RuntimeError:
        print("ok", flush=True)  # refusing while busy is fine too
        os._exit(0)
    seen = len(tokens)
    t.join(10)
    whole = len(tokens) == seen and not t.is_alive() and outcome == [True]
    print("ok" if whole else f"returned-while-running: {outcome}", flush=True)
    os._exit(0)
""")


@pytest.mark.parametrize("method", ["close", "reset"])
def test_close_or_reset_while_generating(model_path: str, method: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(cactus.__file__).resolve().parent.parent) + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-c", _CLOSE_SCRIPT, model_path, method],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ok", (
        f"Cactus.{method}() returned while a completion ran: {proc.stdout.strip()}"
    )
