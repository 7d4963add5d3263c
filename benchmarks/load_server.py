"""`cactus serve` under load and faults: N concurrent clients send a fixed number of requests, about 10%
of them hostile, and the run is judged against four bars.

    python benchmarks/load_server.py [--model PATH] [--requests 2000] [--concurrency 16] [--out FILE]

The server runs as a subprocess (`python -m cactus serve`) on a free loopback port with one API key.
Valid requests are short chat completions (max_tokens 16 by default), streamed and not, some carrying
unknown fields the server must ignore. Hostile requests, spread evenly through the run, each expect a
specific answer:

    malformed_json        a truncated JSON body                                  400
    not_an_object         a JSON array as the body                               400
    invalid_utf8          bytes that are not UTF-8 inside a JSON string          400
    wrong_types           known fields of the wrong type (messages: 5, ...)      400
    negative_max_tokens   max_tokens: -5                                         400
    unknown_model         a model id the server does not have                    404
    too_many_messages     4097 messages (CACTUS_MAX_MESSAGES is 4096)            400
    lone_surrogate        "\\ud800" in a message: valid to Python, not to UTF-8   400
    tools_too_deep        a tool schema nested deeper than the engine's JSON     400
    nul_in_prompt         a raw prompt (/v1/completions) holding a NUL           400
    missing_key           no Authorization header                                401
    wrong_key             a Bearer key the server does not know                  401
    oversized_body        a body larger than --max-body (Content-Length given)   413
    oversized_chunked     the same, sent chunked (no Content-Length)             413
    disconnect            stream=true, the client closes after the first chunk   200, then the client leaves
    slow_reader           stream=true, read one chunk every 50 ms                200 and a whole stream

Reported: p50/p99 latency of valid requests, their status counts (a 5xx, a transport error or an error
event inside a stream all count as server failures), every hostile request whose answer was not the
expected one, and the server's resident memory (VmRSS of /proc/PID/status) sampled over the run. Results
go to benchmarks/results/load-server.json (--out). The exit status is 1 when a bar is missed:

    1. every valid request gets a 200 and a well-formed answer: no 5xx, no transport error, no error
       event inside a stream (and no 4xx: with a queue longer than the clients, none is legitimate);
    2. every hostile request gets its expected answer;
    3. RSS at the end is within 10% of RSS after the first 100 requests;
    4. the server still answers /health at the end.

--model defaults to the bundled default model (cactus.default_model_path()) when it is installed.
Linux only (the RSS is read from /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
KEY = "load-test-key-0123456789"
PROMPTS = [
    "Hi!",
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Count from one to five.",
    "Say something kind.",
    "Name three colours.",
]
RSS_BAR = 0.10  # final RSS may exceed the RSS after the first 100 requests by at most this fraction


# ---- the server -----------------------------------------------------------------------------------------


def start_server(model: Path, max_body: int, workers: int, log: Any) -> tuple[subprocess.Popen[bytes], str]:
    """`cactus serve MODEL` with one key on 127.0.0.1; returns the process and its base URL once healthy."""
    return _common.start_server([str(model), "--api-key", KEY, "--max-body", str(max_body), "--workers", str(workers),
                                 "--log-level", "warning"], log, who="load_server")


def rss_kb(pid: int) -> int:
    """The process's resident set size in KiB (VmRSS), 0 when it cannot be read."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def metric(text: str, name: str) -> float | None:
    """The sum of a Prometheus metric's samples in /metrics text (None when absent)."""
    values = [float(m.group(1)) for m in re.finditer(rf"^{name}(?:\{{[^}}]*\}})? (\S+)$", text, re.MULTILINE)]
    return sum(values) if values else None


# ---- the requests ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    index: int
    kind: str  # "valid" or a hostile kind
    stream: bool = False
    status: int | None = None
    latency_s: float = 0.0
    error: str | None = None  # a transport error, a malformed answer, an error event in a stream
    expected: str = ""  # for hostile requests: what counts as the right answer
    ok: bool = False


HOSTILE_KINDS = [
    "malformed_json",
    "not_an_object",
    "invalid_utf8",
    "wrong_types",
    "negative_max_tokens",
    "unknown_model",
    "too_many_messages",
    "lone_surrogate",
    "tools_too_deep",
    "nul_in_prompt",
    "missing_key",
    "wrong_key",
    "oversized_body",
    "oversized_chunked",
    "disconnect",
    "slow_reader",
]
EXPECTED_STATUS = {
    "malformed_json": 400,
    "not_an_object": 400,
    "invalid_utf8": 400,
    "wrong_types": 400,
    "negative_max_tokens": 400,
    "unknown_model": 404,
    "too_many_messages": 400,
    "lone_surrogate": 400,
    "tools_too_deep": 400,
    "nul_in_prompt": 400,
    "missing_key": 401,
    "wrong_key": 401,
    "oversized_body": 413,
    "oversized_chunked": 413,
    "disconnect": 200,
    "slow_reader": 200,
}


def plan(n: int, hostile_fraction: float, seed: int) -> list[str]:
    """The kind of every request: hostile ones evenly spaced, their kinds in turn, the rest valid."""
    kinds = ["valid"] * n
    n_hostile = round(n * hostile_fraction)
    if n_hostile:
        step = n / n_hostile
        offset = random.Random(seed).random() * step
        for j in range(n_hostile):
            kinds[min(n - 1, int(offset + j * step))] = HOSTILE_KINDS[j % len(HOSTILE_KINDS)]
    return kinds


class Driver:
    """Sends the planned requests from `concurrency` tasks over one connection pool."""

    def __init__(self, url: str, model_id: str, args: argparse.Namespace, on_done: Callable[[int], None]):
        self.url, self.model_id, self.args, self.on_done = url, model_id, args, on_done
        self.auth = {"authorization": f"Bearer {KEY}"}
        self.rng = random.Random(args.seed)
        big = "x" * (args.max_body + 1024)
        self.oversized = json.dumps(
            {"model": model_id, "messages": [{"role": "user", "content": big}]}
        ).encode()
        self.completed = 0

    def valid_body(self, i: int, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model_id,
            "messages": [{"role": "user", "content": f"{PROMPTS[i % len(PROMPTS)]} (request {i})"}],
            "max_tokens": self.args.max_tokens,
            "temperature": 0.7,
            "seed": i,
            "stream": stream,
        }
        if i % 7 == 0:  # unknown fields are ignored, whatever their type
            body["x_unknown"] = {"nested": [1, None, "two"]}
            body["logit_bias_extension"] = "not a dict"
        if stream and i % 2 == 0:
            body["stream_options"] = {"include_usage": True}
        return body

    async def run(self, kinds: list[str]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(len(kinds)):
            queue.put_nowait(i)
        limits = httpx.Limits(
            max_connections=self.args.concurrency, max_keepalive_connections=self.args.concurrency
        )
        timeout = httpx.Timeout(self.args.timeout, connect=10.0)
        async with httpx.AsyncClient(base_url=self.url, timeout=timeout, limits=limits) as client:

            async def worker() -> None:
                while True:
                    try:
                        i = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    outcome = await self.one(client, i, kinds[i])
                    outcomes.append(outcome)
                    self.completed += 1
                    self.on_done(self.completed)

            await asyncio.gather(*(worker() for _ in range(self.args.concurrency)))
        outcomes.sort(key=lambda o: o.index)
        return outcomes

    async def one(self, client: httpx.AsyncClient, i: int, kind: str) -> Outcome:
        o = Outcome(index=i, kind=kind)
        t0 = time.perf_counter()
        try:
            if kind == "valid":
                o.stream = i % 2 == 1
                await self.valid(client, i, o)
            else:
                o.expected = str(EXPECTED_STATUS[kind])
                await self.hostile(client, i, kind, o)
        except httpx.HTTPError as exc:
            o.error = f"{type(exc).__name__}: {exc}"
            o.ok = False
        o.latency_s = time.perf_counter() - t0
        return o

    async def valid(self, client: httpx.AsyncClient, i: int, o: Outcome) -> None:
        body = self.valid_body(i, o.stream)
        if not o.stream:
            r = await client.post("/v1/chat/completions", json=body, headers=self.auth)
            o.status = r.status_code
            if r.status_code == 200:
                data = r.json()
                message = data["choices"][0]["message"]
                if message.get("role") != "assistant" or not isinstance(message.get("content"), str):
                    o.error = f"malformed answer: {r.text[:200]}"
            else:
                o.error = r.text[:300]
            o.ok = o.status == 200 and o.error is None
            return
        async with client.stream("POST", "/v1/chat/completions", json=body, headers=self.auth) as r:
            o.status = r.status_code
            if r.status_code != 200:
                o.error = (await r.aread()).decode("utf-8", "replace")[:300]
                return
            o.error = check_stream([line async for line in r.aiter_lines()])
        o.ok = o.error is None

    async def hostile(self, client: httpx.AsyncClient, i: int, kind: str, o: Outcome) -> None:
        path = "/v1/chat/completions"
        json_headers = {**self.auth, "content-type": "application/json"}
        good = self.valid_body(i, stream=False)
        if kind in ("disconnect", "slow_reader"):
            body = dict(good, stream=True)
            async with client.stream("POST", path, json=body, headers=self.auth) as r:
                o.status = r.status_code
                if r.status_code != 200:
                    o.error = (await r.aread()).decode("utf-8", "replace")[:300]
                elif kind == "disconnect":
                    async for _chunk in r.aiter_raw():
                        break  # leaving the block closes the connection mid-stream
                else:
                    lines: list[str] = []
                    async for chunk in r.aiter_raw():
                        lines.extend(chunk.decode("utf-8").splitlines())
                        await asyncio.sleep(0.05)
                    o.error = check_stream(lines)
            o.ok = o.status == 200 and o.error is None
            return
        content: Any
        headers = json_headers
        if kind == "malformed_json":
            content = b'{"model": "' + self.model_id.encode() + b'", "messages": [{"role": "user", "con'
        elif kind == "not_an_object":
            content = b"[1, 2, 3]"
        elif kind == "invalid_utf8":
            content = b'{"model": "m", "messages": [{"role": "user", "content": "\xff\xfe\xc3"}]}'
        elif kind == "wrong_types":
            bad = [
                {"messages": 5},
                {"temperature": "hot"},
                {"n": 1.5},
                {"stream": {"yes": True}},
                {"messages": [{"role": "user", "content": 7}]},
            ]
            content = json.dumps(dict(good, **bad[i % len(bad)])).encode()
        elif kind == "negative_max_tokens":
            content = json.dumps(dict(good, max_tokens=-5)).encode()
        elif kind == "unknown_model":
            content = json.dumps(dict(good, model="no-such-model")).encode()
        elif kind == "too_many_messages":
            content = json.dumps(dict(good, messages=[{"role": "user", "content": "hi"}] * 4097)).encode()
        elif kind == "lone_surrogate":
            content = json.dumps(dict(good, messages=[{"role": "user", "content": "\ud800"}])).encode()
        elif kind == "tools_too_deep":
            schema: dict[str, Any] = {"type": "string"}
            for _ in range(40):  # two JSON levels each: past the engine's 64
                schema = {"type": "object", "properties": {"a": schema}}
            tools = [{"type": "function", "function": {"name": "f", "parameters": schema}}]
            content = json.dumps(dict(good, tools=tools)).encode()
        elif kind == "nul_in_prompt":
            path = "/v1/completions"
            content = json.dumps(
                {"model": self.model_id, "prompt": "hi\u0000there", "max_tokens": 2}
            ).encode()
        elif kind == "missing_key":
            content, headers = json.dumps(good).encode(), {"content-type": "application/json"}
        elif kind == "wrong_key":
            content = json.dumps(good).encode()
            headers = {"authorization": "Bearer not-the-key", "content-type": "application/json"}
        elif kind == "oversized_body":
            content = self.oversized
        elif kind == "oversized_chunked":
            data = self.oversized

            async def chunks() -> Any:  # an async iterator makes httpx send Transfer-Encoding: chunked
                for k in range(0, len(data), 64 << 10):
                    yield data[k : k + (64 << 10)]

            content = chunks()
        else:
            raise ValueError(kind)
        r = await client.post(path, content=content, headers=headers)
        o.status = r.status_code
        o.ok = r.status_code == EXPECTED_STATUS[kind] and is_error_body(r)
        if not o.ok:
            o.error = r.text[:300]


def is_error_body(r: httpx.Response) -> bool:
    """OpenAI's error shape: {"error": {"message": str, "type": str, ...}}."""
    try:
        err = r.json()["error"]
        return isinstance(err["message"], str) and isinstance(err["type"], str)
    except (ValueError, KeyError, TypeError):
        return False


def check_stream(lines: list[str]) -> str | None:
    """None for a well-formed chat stream (chunks, then [DONE], no error event); else what is wrong."""
    data = [line[6:] for line in lines if line.startswith("data: ")]
    if not data or data[-1] != "[DONE]":
        return "the stream does not end with data: [DONE]"
    for text in data[:-1]:
        obj = json.loads(text)
        if "error" in obj:
            return f"error event in the stream: {text[:200]}"
        if obj.get("object") != "chat.completion.chunk":
            return f"unexpected stream object: {text[:200]}"
    return None


# ---- the run --------------------------------------------------------------------------------------------


@dataclass
class RssLog:
    pid: int
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (seconds, requests done, KiB)
    after_100_kb: int | None = None
    t0: float = field(default_factory=time.perf_counter)

    def sample(self, done: int) -> int:
        kb = rss_kb(self.pid)
        self.samples.append((round(time.perf_counter() - self.t0, 3), done, kb))
        return kb


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 1])."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


async def drive(url: str, model_id: str, pid: int, args: argparse.Namespace) -> dict[str, Any]:
    kinds = plan(args.requests, args.hostile_fraction, args.seed)
    rss = RssLog(pid)
    baseline_at = min(100, args.requests)

    def on_done(done: int) -> None:
        if done == baseline_at:
            rss.after_100_kb = rss.sample(done)

    driver = Driver(url, model_id, args, on_done)

    async def sampler() -> None:
        while True:
            rss.sample(driver.completed)
            await asyncio.sleep(args.sample_interval)

    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        before = (await c.get("/metrics")).text
    rss.sample(0)
    sampling = asyncio.ensure_future(sampler())
    t0 = time.perf_counter()
    outcomes = await driver.run(kinds)
    elapsed = time.perf_counter() - t0
    sampling.cancel()
    final_kb = rss.sample(driver.completed)
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        health = (await c.get("/health")).status_code
        await asyncio.sleep(0.5)  # cancellations of the last disconnects land
        after = (await c.get("/metrics")).text
    return summarize(outcomes, rss, final_kb, elapsed, health, before, after, args)


def summarize(
    outcomes: list[Outcome],
    rss: RssLog,
    final_kb: int,
    elapsed: float,
    health: int,
    metrics_before: str,
    metrics_after: str,
    args: argparse.Namespace,
) -> dict[str, Any]:
    valid = [o for o in outcomes if o.kind == "valid"]
    hostile = [o for o in outcomes if o.kind != "valid"]
    lat = [o.latency_s * 1000 for o in valid if o.ok]
    status_counts: dict[str, int] = {}
    for o in valid:
        key = str(o.status) if o.status is not None else "transport error"
        status_counts[key] = status_counts.get(key, 0) + 1
    server_failures = [
        o for o in valid if o.status is None or o.status >= 500 or (o.status == 200 and o.error is not None)
    ]
    failed_valid = [o for o in valid if not o.ok]
    per_kind: dict[str, dict[str, Any]] = {}
    for o in hostile:
        k = per_kind.setdefault(o.kind, {"expected": EXPECTED_STATUS[o.kind], "count": 0, "ok": 0, "got": {}})
        k["count"] += 1
        k["ok"] += int(o.ok)
        got = str(o.status) if o.status is not None else "transport error"
        k["got"][got] = k["got"].get(got, 0) + 1
    mismatches = [
        {"index": o.index, "kind": o.kind, "expected": o.expected, "status": o.status, "detail": o.error}
        for o in hostile
        if not o.ok
    ]

    def delta(name: str) -> float | None:
        a, b = metric(metrics_before, name), metric(metrics_after, name)
        return None if a is None or b is None else b - a

    base_kb = rss.after_100_kb or 0
    growth = (final_kb - base_kb) / base_kb if base_kb else None
    bars = {
        "zero_failed_valid": not server_failures and not failed_valid,
        "every_hostile_as_expected": not mismatches,
        "rss_within_10_percent": growth is not None and growth <= RSS_BAR,
        "healthy_after": health == 200,
    }
    return {
        "benchmark": "load-server",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": str(args.model),
        "config": {
            "requests": args.requests,
            "concurrency": args.concurrency,
            "hostile_fraction": args.hostile_fraction,
            "max_tokens": args.max_tokens,
            "max_body": args.max_body,
            "workers": args.workers,
            "seed": args.seed,
        },
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(outcomes) / elapsed, 2) if elapsed else None,
        "valid": {
            "count": len(valid),
            "ok": len(valid) - len(failed_valid),
            "stream": sum(o.stream for o in valid),
            "status": status_counts,
            "server_failures": len(server_failures),
            "count_5xx": sum(1 for o in valid if o.status is not None and o.status >= 500),
            "latency_ms": {
                "p50": round(percentile(lat, 0.50), 1) if lat else None,
                "p99": round(percentile(lat, 0.99), 1) if lat else None,
                "max": round(max(lat), 1) if lat else None,
                "mean": round(statistics.fmean(lat), 1) if lat else None,
            },
            "failures": [asdict(o) for o in failed_valid[:50]],
        },
        "hostile": {"count": len(hostile), "ok": len(hostile) - len(mismatches), "kinds": per_kind},
        "mismatches": mismatches,
        "server": {
            "health_after": health,
            "cancelled": delta("cactus_cancelled_total"),
            "completion_tokens": delta("cactus_completion_tokens_total"),
        },
        "rss": {
            "after_100_mb": round(base_kb / 1024, 1),
            "final_mb": round(final_kb / 1024, 1),
            "peak_mb": round(max(kb for _, _, kb in rss.samples) / 1024, 1),
            "growth": round(growth, 4) if growth is not None else None,
            "samples": [{"t": t, "done": d, "mb": round(kb / 1024, 1)} for t, d, kb in rss.samples],
        },
        "bars": bars,
        "passed": all(bars.values()),
    }


def default_model() -> Path:
    sys.path.insert(0, str(ROOT / "python"))
    try:
        from cactus import default_model_path

        return Path(default_model_path())
    except (ImportError, OSError) as exc:
        raise SystemExit(
            f"load_server: the default model is not installed ({exc}); pass --model PATH"
        ) from None


def report(result: dict[str, Any]) -> None:
    v, h, r = result["valid"], result["hostile"], result["rss"]
    cfg = result["config"]
    print(
        f"{cfg['requests']} requests, {cfg['concurrency']} clients, {result['seconds']} s "
        f"({result['requests_per_s']} req/s)"
    )
    print(
        f"valid: {v['ok']}/{v['count']} ok ({v['stream']} streamed), status {v['status']}, "
        f"5xx {v['count_5xx']}, server failures {v['server_failures']}; "
        f"latency p50 {v['latency_ms']['p50']} ms, p99 {v['latency_ms']['p99']} ms"
    )
    print(f"hostile: {h['ok']}/{h['count']} as expected")
    for kind, k in sorted(h["kinds"].items()):
        print(f"    {kind:<20} {k['ok']:>4}/{k['count']:<4} expected {k['expected']}, got {k['got']}")
    for m in result["mismatches"][:20]:
        print(
            f"  MISMATCH #{m['index']} {m['kind']}: expected {m['expected']}, got {m['status']}: {m['detail']}"
        )
    print(
        f"server RSS: {r['after_100_mb']} MB after 100 requests, {r['final_mb']} MB at the end "
        f"(growth {r['growth']}), peak {r['peak_mb']} MB; cancelled streams {result['server']['cancelled']}"
    )
    for bar, ok in result["bars"].items():
        print(f"  {'pass' if ok else 'FAIL'}  {bar}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--model", type=Path, default=None, help="a .gguf or a folder holding one (default model)"
    )
    ap.add_argument("--requests", type=int, default=2000, help="requests in all (2000)")
    ap.add_argument("--concurrency", type=int, default=16, help="concurrent clients (16)")
    ap.add_argument("--hostile-fraction", type=float, default=0.10, help="share of hostile requests (0.10)")
    ap.add_argument("--max-tokens", type=int, default=16, help="max_tokens of valid requests (16)")
    ap.add_argument("--max-body", type=int, default=1 << 20, help="the server's --max-body in bytes (1 MiB)")
    ap.add_argument("--workers", type=int, default=1, help="the server's --workers (1)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds one request may take (300)")
    ap.add_argument("--sample-interval", type=float, default=0.5, help="seconds between RSS samples (0.5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS / "load-server.json", help="result JSON file")
    args = ap.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or not 0 <= args.hostile_fraction <= 1:
        ap.error("--requests and --concurrency must be positive, --hostile-fraction in [0, 1]")
    args.model = (args.model or default_model()).resolve()
    model_id = args.model.stem if args.model.suffix.lower() == ".gguf" else args.model.name
    with tempfile.TemporaryFile() as log:
        proc, url = start_server(args.model, args.max_body, args.workers, log)
        try:
            result = asyncio.run(drive(url, model_id, proc.pid, args))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            log.seek(0)
            server_log = log.read().decode("utf-8", "replace")
    result["server"]["log_tail"] = server_log[-4000:]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    report(result)
    print(f"wrote {args.out}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
