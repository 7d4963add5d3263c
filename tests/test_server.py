"""`cactus serve` against real server processes on 127.0.0.1, driven by the official openai client.

Three servers run for the module: the main one (zone "local", two API keys, a peer), its peer (zone "eu")
and a small one with a one-slot queue. All of them serve the tiny qwen3 fixture our converter makes.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cactus
import httpx
import openai
import pytest

ROOT = Path(__file__).resolve().parent.parent
KEY, OTHER_KEY = "test-key-0123456789", "second-key-abcdef"
MODEL = "qwen3-q8_0"
CTX = 8192
TIMEOUT = 120.0
MESSAGES = [{"role": "user", "content": "Tell me a long story."}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            # enums keep the random test model's constrained answer short
            "properties": {
                "city": {"type": "string", "enum": ["Paris", "Tokyo"]},
                "unit": {"type": "string", "enum": ["c", "f"]},
            },
            "required": ["city", "unit"],
        },
    },
}


CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The server subprocess imports the same cactus package as this process: the installed one in CI
# (with its library), the source tree in development (with CACTUS_LIBRARY).
PACKAGE_ROOT = str(Path(cactus.__file__).resolve().parent.parent)


class Server:
    """A `python -m cactus.server` subprocess on a free loopback port."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = os.pathsep.join([PACKAGE_ROOT, full_env.get("PYTHONPATH", "")])
        full_env.pop("CACTUS_API_KEYS", None)
        full_env.update(env or {})
        cmd = [sys.executable, "-m", "cactus.server", *args]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=full_env)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}):\n{self.output()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not come up:\n{self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()

    def client(self, key: str = KEY) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, timeout=TIMEOUT, max_retries=0)

    def post(
        self, path: str, body: object = None, key: str | None = KEY, content: bytes | None = None
    ) -> httpx.Response:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        if content is not None:
            headers["content-type"] = "application/json"
            return httpx.post(self.url + path, headers=headers, content=content, timeout=TIMEOUT)
        return httpx.post(self.url + path, headers=headers, json=body, timeout=TIMEOUT)

    def metrics(self) -> str:
        return httpx.get(self.url + "/metrics", timeout=TIMEOUT).text

    def metric(self, name: str, model: str = MODEL) -> float:
        m = re.search(rf'^{name}\{{model="{re.escape(model)}"\}} (\S+)$', self.metrics(), re.MULTILINE)
        assert m, f"{name} missing from /metrics"
        return float(m.group(1))


@pytest.fixture(scope="module")
def model_path(convert_fixture) -> Path:
    return convert_fixture("qwen3", "q8_0")


@pytest.fixture(scope="module")
def peer(model_path: Path) -> Iterator[Server]:
    server = Server([str(model_path), "--zone", "eu", "--api-key", KEY])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(model_path: Path, peer: Server) -> Iterator[Server]:
    server = Server(
        [str(model_path), "--zone", "local", "--peer", f"eu={peer.url}", "--ctx-size", str(CTX)],
        env={"CACTUS_API_KEYS": f"{KEY},{OTHER_KEY}"},
    )
    yield server
    server.stop()


def _check_completion(resp: Any, max_tokens: int, n: int = 1) -> None:
    assert resp.id.startswith("chatcmpl-") and resp.object == "chat.completion" and resp.model == MODEL
    assert abs(resp.created - time.time()) < 600
    assert [c.index for c in resp.choices] == list(range(n))
    for c in resp.choices:
        assert c.message.role == "assistant" and isinstance(c.message.content, str)
        assert c.finish_reason in ("stop", "length")
    u = resp.usage
    assert u.prompt_tokens > 0 and 1 <= u.completion_tokens <= n * max_tokens
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens


def _stream(client: openai.OpenAI, **kw: object) -> tuple[list, str]:
    chunks = list(client.chat.completions.create(model=MODEL, stream=True, **kw))  # type: ignore[call-overload]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return chunks, text


def _check_stream(chunks: list, max_tokens: int) -> None:
    """Role first, content deltas, one finish_reason, then the usage chunk; one id throughout."""
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert all(c.object == "chat.completion.chunk" and c.model == MODEL for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finishes) == 1 and finishes[0] in ("stop", "length")
    last_choice = max(i for i, c in enumerate(chunks) if c.choices)
    assert chunks[last_choice].choices[0].finish_reason == finishes[0]
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    assert 1 <= usage.completion_tokens <= max_tokens
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


# ---- the openai client, unmodified ----------------------------------------------------------------------


def test_chat_completion(server: Server) -> None:
    client = server.client()
    # seeded: unseeded sampling sometimes ends the story within 16 tokens, and the test is about "length"
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES, max_tokens=16, seed=7)
    assert raw.headers["x-cactus-zone"] == "local"
    resp = raw.parse()
    _check_completion(resp, 16)
    assert resp.choices[0].finish_reason == "length" and resp.usage.completion_tokens == 16
    # a system message, a multi-part user message and the second key work too
    resp = server.client(OTHER_KEY).chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": " there"}],
            },
        ],
        max_completion_tokens=8,
        temperature=0.7,
        top_p=0.9,
        seed=11,
    )
    _check_completion(resp, 8)


def test_streaming_matches_non_streaming(server: Server) -> None:
    client = server.client()
    messages = [{"role": "user", "content": "Count to ten."}]
    full = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=24, temperature=0)
    chunks, text = _stream(
        client, messages=messages, max_tokens=24, temperature=0, stream_options={"include_usage": True}
    )
    _check_stream(chunks, 24)
    assert text == full.choices[0].message.content
    assert chunks[-1].usage.prompt_tokens == full.usage.prompt_tokens
    assert chunks[-1].usage.completion_tokens == full.usage.completion_tokens
    # without include_usage there is no usage chunk
    plain = list(client.chat.completions.create(model=MODEL, messages=messages, max_tokens=4, stream=True))
    assert all(c.choices and c.usage is None for c in plain)


def test_n_choices_share_one_prefill(server: Server) -> None:
    client = server.client()
    before = server.metric("cactus_prefill_tokens_total")
    prompt = [{"role": "user", "content": f"A fresh prompt {time.time()} for two choices."}]
    resp = client.chat.completions.create(
        model=MODEL, messages=prompt, n=2, max_tokens=12, temperature=1.0, seed=5
    )
    _check_completion(resp, 12, n=2)
    assert resp.choices[0].message.content != resp.choices[1].message.content
    prefilled = server.metric("cactus_prefill_tokens_total") - before
    # the prompt is computed once (less what the cache already held); the second choice re-evaluates only
    # the prompt's last token for its logits
    cached = resp.usage.prompt_tokens_details.cached_tokens
    assert prefilled == resp.usage.prompt_tokens - cached + 1
    assert prefilled < 2 * (resp.usage.prompt_tokens - cached)
    # same seed, same choices
    again = client.chat.completions.create(
        model=MODEL, messages=prompt, n=2, max_tokens=12, temperature=1.0, seed=5
    )
    assert [c.message.content for c in again.choices] == [c.message.content for c in resp.choices]
    # streamed, each choice has its own role and finish chunks
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=prompt, n=2, max_tokens=6, temperature=1.0, seed=5, stream=True
        )
    )
    for index in (0, 1):
        mine = [c.choices[0] for c in chunks if c.choices and c.choices[0].index == index]
        assert mine[0].delta.role == "assistant"
        assert sum(1 for ch in mine if ch.finish_reason) == 1


def test_stop_string_and_list(server: Server) -> None:
    client = server.client()
    messages = [{"role": "user", "content": "Write some words."}]
    full = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=40, temperature=0)
    text = full.choices[0].message.content
    assert len(text) >= 6, text
    k = len(text) // 2
    stop = text[k : k + 2]
    expected = text[: text.index(stop)]
    one = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=40, temperature=0, stop=stop
    )
    assert one.choices[0].message.content == expected
    assert one.choices[0].finish_reason == "stop"
    many = client.chat.completions.create(
        model=MODEL,
        messages=messages,
        max_tokens=40,
        temperature=0,
        stop=["\x00never\x00", stop, "also-never"],
    )
    assert many.choices[0].message.content == expected and many.choices[0].finish_reason == "stop"
    _, streamed = _stream(client, messages=messages, max_tokens=40, temperature=0, stop=[stop])
    assert streamed == expected


def test_tool_call_comes_back(server: Server) -> None:
    client = server.client()
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    resp = client.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER_TOOL], tool_choice="required", max_tokens=256
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments)["city"] in ("Paris", "Tokyo")
    # streamed: the call arrives as a tool_calls delta, its markup never as content
    chunks, text = _stream(
        client, messages=messages, tools=[WEATHER_TOOL], tool_choice="required", max_tokens=256, seed=1
    )
    deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert len(deltas) == 1 and deltas[0].function.name == "get_weather" and deltas[0].id.startswith("call_")
    assert json.loads(deltas[0].function.arguments)["unit"] in ("c", "f")
    assert "<tool_call>" not in text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    # a named function is accepted too
    named = client.chat.completions.create(
        model=MODEL,
        messages=messages,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=256,
    )
    assert named.choices[0].message.tool_calls[0].function.name == "get_weather"
    # the answer goes back as a tool message and the conversation continues
    follow = client.chat.completions.create(
        model=MODEL,
        messages=[
            *messages,
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'},
        ],
        tools=[WEATHER_TOOL],
        tool_choice="none",
        max_tokens=8,
    )
    assert follow.choices[0].message.tool_calls is None


def test_models_embeddings_and_text_completions(server: Server) -> None:
    client = server.client()
    assert [m.id for m in client.models.list()] == [MODEL]
    assert client.models.retrieve(MODEL).id == MODEL
    emb = client.embeddings.create(model=MODEL, input=["hello world", "goodbye"])  # base64 on the wire
    assert [d.index for d in emb.data] == [0, 1] and emb.usage.prompt_tokens > 0
    vectors = [d.embedding for d in emb.data]
    assert all(len(v) == 64 and abs(sum(x * x for x in v) - 1.0) < 1e-3 for v in vectors)
    floats = server.post(
        "/v1/embeddings", {"model": MODEL, "input": "hello world", "encoding_format": "float"}
    )
    assert floats.status_code == 200
    body = floats.json()
    assert body["object"] == "list" and body["data"][0]["object"] == "embedding"
    assert max(abs(a - b) for a, b in zip(body["data"][0]["embedding"], vectors[0])) < 1e-6
    text = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=8, temperature=0)
    assert text.object == "text_completion" and text.id.startswith("cmpl-")
    assert text.choices[0].finish_reason in ("stop", "length") and text.usage.completion_tokens <= 8
    streamed = list(
        client.completions.create(
            model=MODEL, prompt="Once upon a time", max_tokens=8, temperature=0, stream=True
        )
    )
    assert "".join(c.choices[0].text for c in streamed if c.choices) == text.choices[0].text


# ---- auth, validation, errors ---------------------------------------------------------------------------


def _error(resp: httpx.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    return err


def test_auth(server: Server) -> None:
    body = {"model": MODEL, "messages": MESSAGES, "max_tokens": 1}
    assert _error(server.post("/v1/chat/completions", body, key=None), 401)["code"] == "invalid_api_key"
    assert _error(server.post("/v1/chat/completions", body, key="wrong"), 401)["code"] == "invalid_api_key"
    assert httpx.get(server.url + "/v1/models", timeout=TIMEOUT).status_code == 401
    # auth comes before the body is read: an unauthenticated bad body is still a 401
    _error(server.post("/v1/chat/completions", key=None, content=b"{bad"), 401)
    with pytest.raises(openai.AuthenticationError):
        server.client("nope").models.list()
    assert httpx.get(server.url + "/health", timeout=TIMEOUT).json()["zone"] == "local"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": MODEL}, "messages"),
        ({"model": MODEL, "messages": []}, "messages"),
        ({"model": MODEL, "messages": MESSAGES, "temperature": 3}, "temperature"),
        ({"model": MODEL, "messages": MESSAGES, "n": 0}, "n"),
        ({"model": MODEL, "messages": MESSAGES, "n": 9}, "n"),
        ({"model": MODEL, "messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ({"model": MODEL, "messages": MESSAGES, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"model": MODEL, "messages": MESSAGES, "top_p": 1.5}, "top_p"),
        ({"model": MODEL, "messages": MESSAGES, "max_tokens": 0}, "max_tokens"),
        ({"messages": MESSAGES}, "model"),
    ],
)
def test_invalid_fields_are_400(server: Server, body: dict, param: str) -> None:
    err = _error(server.post("/v1/chat/completions", body), 400)
    assert err["param"] == param and err["type"] == "invalid_request_error"


def test_bad_json_unknown_model_zone_and_size(server: Server) -> None:
    err = _error(server.post("/v1/chat/completions", content=b'{"model": '), 400)
    assert err["code"] == "invalid_json"
    err = _error(server.post("/v1/chat/completions", {"model": "nope", "messages": MESSAGES}), 404)
    assert err["code"] == "model_not_found" and err["param"] == "model"
    with pytest.raises(openai.NotFoundError):
        server.client().chat.completions.create(model="nope", messages=MESSAGES)
    err = _error(
        server.post("/v1/chat/completions", {"model": MODEL, "messages": MESSAGES, "zone": "mars"}), 400
    )
    assert err["param"] == "zone" and "local" in err["message"] and "eu" in err["message"]
    big = {"model": MODEL, "messages": [{"role": "user", "content": "x" * (1 << 20)}]}
    assert _error(server.post("/v1/chat/completions", big), 413)["code"] == "request_too_large"
    assert _error(server.post("/v1/nowhere", {}), 404)


def _nested_schema(depth: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


@pytest.mark.parametrize(
    ("path", "content", "needle"),
    [
        # the engine refuses these; its error code (not its wording) makes them the caller's fault
        (
            "/v1/chat/completions",
            b'{"model": "%s", "messages": [{"role": "user", "content": "\\ud800"}], "max_tokens": 2}',
            "lone high surrogate",
        ),
        (
            "/v1/chat/completions",
            json.dumps(
                {
                    "model": "%s",
                    "messages": MESSAGES,
                    "max_tokens": 2,
                    "tools": [{"type": "function", "function": {"name": "f", "parameters": _nested_schema(40)}}],
                }
            ).encode(),
            "deeper than 64",
        ),
        # the empty string and a NUL: nothing to condition on, or text the C API would cut short
        ("/v1/completions", b'{"model": "%s", "prompt": "", "max_tokens": 2}', "at least 1 character"),
        ("/v1/embeddings", b'{"model": "%s", "input": ""}', "at least 1 character"),
        ("/v1/completions", b'{"model": "%s", "prompt": "\\u0000hi", "max_tokens": 2}', "match pattern"),
        ("/v1/embeddings", b'{"model": "%s", "input": "a\\u0000"}', "match pattern"),
        # the protocol mirrors CACTUS_MAX_MESSAGES
        (
            "/v1/chat/completions",
            json.dumps({"model": "%s", "messages": [{"role": "user", "content": ""}] * 4097}).encode(),
            "at most 4096",
        ),
    ],
    ids=[
        "lone-surrogate",
        "tools-too-deep",
        "empty-prompt",
        "empty-embedding",
        "nul-in-prompt",
        "nul-in-input",
        "too-many-messages",
    ],
)
def test_hostile_input_is_400_not_500(server: Server, path: str, content: bytes, needle: str) -> None:
    # regressions: each was a 500 or, for a NUL, a prompt cut short (found by the load-test probes and
    # schemathesis, benchmarks/)
    err = _error(server.post(path, content=content.replace(b"%s", MODEL.encode())), 400)
    assert needle in err["message"] and err["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        # the types the schema says, strictly (found by schemathesis): no "16" for 16, no 1 for true
        ({"max_tokens": "2"}, "max_tokens"),
        ({"stream": "yes"}, "stream"),
        ({"stream": 1}, "stream"),
        ({"logprobs": 0}, "logprobs"),
        ({"n": 1.5}, "n"),
        ({"messages": [{"role": "system", "content": "x", "tool_calls": [CALL]}]}, "messages[0]"),
        ({"stop": ["x" * 65]}, "stop"),
        ({"repetition_penalty": 1e-4}, "repetition_penalty"),
        ({"max_tokens": (1 << 24) + 1}, "max_tokens"),
    ],
)
def test_strict_request_types(server: Server, extra: dict, param: str) -> None:
    body = {"model": MODEL, "messages": MESSAGES, "max_tokens": 2, **extra}
    err = _error(server.post("/v1/chat/completions", body), 400)
    assert err["param"] == param and err["type"] == "invalid_request_error"


def test_integral_floats_are_integers(server: Server) -> None:
    # JSON Schema's integer includes 2.0: what the schema allows is accepted
    body = {"model": MODEL, "messages": MESSAGES, "max_tokens": 2.0, "n": 1.0}
    assert server.post("/v1/chat/completions", body).status_code == 200


def test_embedding_dimensions_are_checked_first(server: Server) -> None:
    # the error named 'dimensions' as its type, not its param, and came after the embedding was computed
    err = _error(server.post("/v1/embeddings", {"model": MODEL, "input": "hi", "dimensions": 3}), 400)
    assert err["param"] == "dimensions" and err["type"] == "invalid_request_error"
    assert "3" in err["message"]


def test_engine_errors_keep_their_meaning(peer: Server) -> None:
    # the peer runs with the model's own context (256 tokens): a longer prompt is the caller's fault
    long = {"model": MODEL, "messages": [{"role": "user", "content": "hello world " * 300}], "max_tokens": 4}
    for stream in (False, True):
        err = _error(peer.post("/v1/chat/completions", {**long, "stream": stream}), 400)
        assert err["code"] == "context_length_exceeded" and "context" in err["message"]


def test_peer_zone_is_served_by_the_peer(server: Server, peer: Server) -> None:
    client = server.client()
    before = peer.metric("cactus_completion_tokens_total")
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES, max_tokens=5, extra_body={"zone": "eu"}
    )
    assert raw.headers["x-cactus-zone"] == "eu"
    _check_completion(raw.parse(), 5)
    chunks, _ = _stream(
        client,
        messages=MESSAGES,
        max_tokens=5,
        stream_options={"include_usage": True},
        extra_body={"zone": "eu"},
    )
    _check_stream(chunks, 5)
    assert peer.metric("cactus_completion_tokens_total") - before == 10
    here = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES, max_tokens=2, extra_body={"zone": "local"}
    )
    assert here.headers["x-cactus-zone"] == "local"
    emb = server.post("/v1/embeddings", {"model": MODEL, "input": "hi", "zone": "eu"})
    assert emb.status_code == 200 and emb.headers["x-cactus-zone"] == "eu"


# ---- concurrency and cancellation -----------------------------------------------------------------------


def test_sixteen_concurrent_streams(server: Server) -> None:
    client = server.client()

    def one(i: int) -> tuple[list, str]:
        return _stream(
            client,
            messages=[{"role": "user", "content": f"Client {i} says hello."}],
            max_tokens=24,
            temperature=0.8,
            seed=i,
            stream_options={"include_usage": True},
        )

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(16)))
    assert len({chunks[0].id for chunks, _ in results}) == 16
    for chunks, text in results:
        _check_stream(chunks, 24)
        assert isinstance(text, str)


def test_disconnect_frees_the_model(server: Server) -> None:
    client = server.client()
    prompt = [{"role": "user", "content": "Tell me a long story."}]
    # calibration: how fast this prompt decodes (greedy, it does not stop by itself)
    t0 = time.monotonic()
    calib = client.chat.completions.create(model=MODEL, messages=prompt, max_tokens=300, temperature=0)
    rate = 300 / (time.monotonic() - t0)
    assert calib.choices[0].finish_reason == "length"
    cancelled = server.metric("cactus_cancelled_total")
    long_tokens = CTX - 200
    stream = client.chat.completions.create(
        model=MODEL, messages=prompt, max_tokens=long_tokens, temperature=0, stream=True
    )
    got = 0
    for chunk in stream:
        got += bool(chunk.choices and chunk.choices[0].delta.content)
        if got >= 10:
            break
    stream.close()  # the client goes away mid-answer
    t1 = time.monotonic()
    quick = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4, stream=True
    )
    next(iter(quick))  # the first chunk is sent with the first token
    ttft = time.monotonic() - t1
    list(quick)
    # Left running, the abandoned answer would hold the model for at least this long (later tokens are
    # slower than the calibration's: attention grows with the context).
    remaining = (long_tokens - 300) / rate
    assert ttft < min(0.2 * remaining, 5.0), (ttft, remaining)
    deadline = time.monotonic() + 10
    while server.metric("cactus_cancelled_total") < cancelled + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.metric("cactus_cancelled_total") == cancelled + 1
    assert server.metric("cactus_running") == 0


@pytest.fixture(scope="module")
def small(model_path: Path) -> Iterator[Server]:
    server = Server([str(model_path), "--name", "tiny", "--max-queue", "1", "--ctx-size", "4096"])
    yield server
    server.stop()


def test_full_queue_is_429(small: Server) -> None:
    prompt = [{"role": "user", "content": "Tell me a long story."}]
    client = openai.OpenAI(base_url=small.url + "/v1", api_key="unused", timeout=TIMEOUT, max_retries=0)
    assert [m.id for m in client.models.list()] == ["tiny"]
    running = client.chat.completions.create(
        model="tiny", messages=prompt, max_tokens=4000, temperature=0, stream=True
    )
    next(iter(running))  # generating now
    queued: dict = {}

    def wait_in_queue() -> None:
        queued["resp"] = small.post(
            "/v1/chat/completions", {"model": "tiny", "messages": prompt, "max_tokens": 2}
        )

    waiter = threading.Thread(target=wait_in_queue)
    waiter.start()
    deadline = time.monotonic() + 10
    while small.metric("cactus_queue_depth", "tiny") < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    resp = small.post(
        "/v1/chat/completions", {"model": "tiny", "messages": prompt, "max_tokens": 2}, key=None
    )
    err = _error(resp, 429)
    assert err["code"] == "queue_full" and resp.headers["retry-after"]
    running.close()  # frees the worker: the queued request runs
    waiter.join(timeout=60)
    assert queued["resp"].status_code == 200


# ---- operations -----------------------------------------------------------------------------------------


def test_metrics_and_openapi(server: Server) -> None:
    server.client().chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=2)
    server.post("/v1/models", key="wrong")
    text = server.metrics()
    assert re.search(
        r'^cactus_requests_total\{route="/v1/chat/completions",method="POST",status="200"\} \d+$',
        text,
        re.MULTILINE,
    )
    assert re.search(r'^cactus_requests_total\{.*status="401"\} \d+$', text, re.MULTILINE)
    for name in ("cactus_time_to_first_token_seconds", "cactus_request_duration_seconds"):
        assert f"# TYPE {name} histogram" in text and f"{name}_bucket{{" in text and 'le="+Inf"' in text
    assert f'cactus_queue_depth{{model="{MODEL}"}} 0' in text
    assert (
        server.metric("cactus_prompt_tokens_total") > 0
        and server.metric("cactus_completion_tokens_total") > 0
    )
    spec = httpx.get(server.url + "/openapi.json", timeout=TIMEOUT).json()
    for path in (
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/models",
        "/health",
        "/metrics",
    ):
        assert path in spec["paths"]
    chat = spec["paths"]["/v1/chat/completions"]["post"]
    assert "422" not in chat["responses"] and {"400", "401", "404", "413", "429", "500"} <= set(
        chat["responses"]
    )
    assert "text/event-stream" in chat["responses"]["200"]["content"]
    schemas = spec["components"]["schemas"]
    assert {"ChatCompletionRequest", "ChatCompletionResponse", "ChatCompletionChunk", "ErrorResponse"} <= set(
        schemas
    )
    assert "zone" in schemas["ChatCompletionRequest"]["properties"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(spec)))
    assert refs and refs <= set(schemas), refs - set(schemas)
    assert {"delta", "finish_reason"} <= set(schemas["ChunkChoice"]["properties"])
    # what the server serves and takes, said in the schema (schemathesis checks requests against it)
    chat_req = schemas["ChatCompletionRequest"]["properties"]
    assert chat_req["model"]["enum"] == [MODEL]
    assert {"type": "string", "enum": ["local", "eu"]} in chat_req["zone"]["anyOf"]
    assert chat_req["n"]["minimum"] == 1 and chat_req["n"]["maximum"] == 8
    assert schemas["ChatCompletionRequest"]["properties"]["messages"]["maxItems"] == 4096
    assert '"ge"' not in json.dumps(schemas) and '"le"' not in json.dumps(schemas)
    dims = schemas["EmbeddingRequest"]["properties"]["dimensions"]["anyOf"][0]["enum"]
    emb = server.post("/v1/embeddings", {"model": MODEL, "input": "hi"}).json()
    assert dims == [len(emb["data"][0]["embedding"])]
    # an event stream's schema describes one event, its data "[DONE]" or a chunk (or an error) in JSON
    event = chat["responses"]["200"]["content"]["text/event-stream"]["schema"]
    data = event["properties"]["data"]["anyOf"]
    assert data[0]["const"] == "[DONE]" and data[1]["contentMediaType"] == "application/json"


def test_refuses_open_address_without_key(model_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=PACKAGE_ROOT)
    env.pop("CACTUS_API_KEYS", None)
    cmd = [sys.executable, "-c", "import sys; from cactus.server import main; sys.exit(main(sys.argv[1:]))"]
    out = subprocess.run(
        [*cmd, str(model_path), "--host", "0.0.0.0", "--port", "1"],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2 and b"API key" in out.stderr
    out = subprocess.run([*cmd, "/no/such/model.gguf"], env=env, capture_output=True, timeout=60, check=False)
    assert out.returncode == 2 and b"no such model" in out.stderr


def test_missing_default_model_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import cactus
    from cactus import server as srv

    def missing() -> str:
        raise FileNotFoundError("not installed")

    monkeypatch.setattr(cactus, "default_model_path", missing)
    with pytest.raises(SystemExit, match="default model"):
        srv._resolve_models([], [])


def test_fair_queue_round_robin_across_tenants() -> None:
    from cactus.server.scheduler import FairQueue, Job, QueueFull

    loop = asyncio.new_event_loop()
    try:
        q = FairQueue(maxsize=5)
        jobs = [Job("chat", [], loop, tenant=t) for t in ("a", "a", "a", "b", "c")]
        for job in jobs:
            q.put(job)
        with pytest.raises(QueueFull):
            q.put(Job("chat", [], loop, tenant="d"))
        assert q.remove(jobs[1]) and not q.remove(jobs[1]) and len(q) == 4
        order = [q.get() for _ in range(4)]
        assert [j.tenant for j in order] == ["a", "b", "c", "a"]  # one flooding tenant waits its turn
        assert order[0] is jobs[0] and order[3] is jobs[2]
        assert q.close() == []
        assert q.get() is None
    finally:
        loop.close()
