"""Throughput of `cactus serve`: requests/s and aggregate generated tokens/s at 1, 4 and 16 concurrent
streaming clients, with time-to-first-token percentiles. Not a test: it measures, it asserts nothing.

    python benchmarks/bench_server.py [--model PATH] [--workers N] [--max-tokens 64] [--seconds 10]

Without --model it converts the tiny qwen3 test fixture (q8_0) into a temporary folder. The server runs
as a subprocess on a free loopback port; results go to benchmarks/results/server-<date>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def start_server(model: Path, workers: int, max_queue: int) -> tuple[subprocess.Popen[bytes], str]:
    return _common.start_server([str(model), "--workers", str(workers), "--max-queue", str(max_queue),
                                 "--log-level", "warning"], who="bench_server")


async def one_request(client: httpx.AsyncClient, model: str, i: int, max_tokens: int) -> dict:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": f"Request {i}: tell me a story."}],
        "max_tokens": max_tokens,
        "temperature": 0.8,
        "seed": i,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    t0 = time.perf_counter()
    ttft = None
    usage = None
    async with client.stream("POST", "/v1/chat/completions", json=body) as resp:
        resp.raise_for_status()
        async for line in resp.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if ttft is None and chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                ttft = time.perf_counter() - t0
            if chunk.get("usage"):
                usage = chunk["usage"]
    total = time.perf_counter() - t0
    return {
        "ttft": ttft if ttft is not None else total,
        "latency": total,
        "tokens": usage["completion_tokens"],
    }


async def run_level(url: str, model: str, concurrency: int, seconds: float, max_tokens: int) -> dict:
    stop_at = time.perf_counter() + seconds
    results: list[dict] = []
    counter = [0]

    async def client_loop(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < stop_at:
            counter[0] += 1
            results.append(await one_request(client, model, counter[0], max_tokens))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        await one_request(client, model, 0, 4)  # warm-up
        t0 = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0

    def pct(values: list[float], q: float) -> float:
        values = sorted(values)
        return values[min(len(values) - 1, int(q * len(values)))]

    ttfts = [r["ttft"] for r in results]
    lat = [r["latency"] for r in results]
    tokens = sum(r["tokens"] for r in results)
    return {
        "concurrency": concurrency,
        "requests": len(results),
        "seconds": round(elapsed, 3),
        "requests_per_s": round(len(results) / elapsed, 2),
        "tokens_per_s": round(tokens / elapsed, 1),
        "completion_tokens": tokens,
        "ttft_p50_ms": round(1000 * statistics.median(ttfts), 1),
        "ttft_p95_ms": round(1000 * pct(ttfts, 0.95), 1),
        "latency_p50_ms": round(1000 * statistics.median(lat), 1),
        "latency_p95_ms": round(1000 * pct(lat, 0.95), 1),
    }


def tiny_model(tmp: Path) -> Path:
    sys.path.insert(0, str(ROOT / "python"))
    from cactus.convert import convert

    out = tmp / "qwen3-q8_0.gguf"
    convert(ROOT / "tests" / "fixtures" / "qwen3", out, dtype="q8_0", progress=False)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="a .gguf (default: the tiny qwen3 fixture)")
    ap.add_argument("--workers", type=int, default=1, help="engine handles per model on the server")
    ap.add_argument("--levels", default="1,4,16", help="concurrency levels (default 1,4,16)")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=10.0, help="duration of each level")
    ap.add_argument("--out", type=Path, default=None, help="result file (default benchmarks/results/...)")
    args = ap.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or tiny_model(Path(tmp))
        model_id = model.stem if model.suffix == ".gguf" else model.name
        proc, url = start_server(model, args.workers, max_queue=max(64, 2 * max(levels)))
        try:
            rows = []
            for level in levels:
                row = asyncio.run(run_level(url, model_id, level, args.seconds, args.max_tokens))
                rows.append(row)
                print(
                    f"{level:>3} clients: {row['requests_per_s']:8.2f} req/s  {row['tokens_per_s']:9.1f} tok/s  "
                    f"ttft p50 {row['ttft_p50_ms']:.1f} ms p95 {row['ttft_p95_ms']:.1f} ms  "
                    f"latency p50 {row['latency_p50_ms']:.1f} ms",
                    flush=True,
                )
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    stamp = datetime.now(timezone.utc)
    result = {
        "benchmark": "server",
        "date": stamp.isoformat(timespec="seconds"),
        "model": str(args.model) if args.model else "tests/fixtures/qwen3 (q8_0, converted)",
        "workers": args.workers,
        "max_tokens": args.max_tokens,
        "seconds_per_level": args.seconds,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "levels": rows,
    }
    out = args.out or RESULTS / f"server-{stamp.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
