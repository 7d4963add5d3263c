"""One measurement in a fresh process (run by benchmarks/run.py; prints one JSON line).

    python benchmarks/_worker.py ENGINE TASK --model PATH --prompts PROMPTS.json --threads N [--repeats R]

ENGINE: cactus (our engine, through the Python SDK) or llama_cpp (llama-cpp-python).
TASK:
  init     load the model once: wall time of cactus_init / Llama(); then, in the same process, the time of
           the first 1-token forward pass (which pays for page faults when the file was not cached)
  decode   a 128-token prompt, then 128 greedy tokens, `repeats` times after a warm-up; tokens/s of the
           decode forward passes (each pass after the first sampled token)
  prefill  a 512-token prompt, `repeats` times after a warm-up; prompt tokens/s (logits of the last
           position only, as llama.cpp computes them); for cactus also `model.logits(ids)`, which returns
           the logits of every position, timed separately
Each task reports ru_maxrss (the peak resident set of this process) and the CPU time it used.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:
    from typing_extensions import Self

N_CTX = 1024  # both engines: room for the 512-token prompt and the 128 + 128 decode run


def _rss_kib() -> dict[str, int]:
    out = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    except OSError:
        pass
    return out


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Timer:
    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def __enter__(self) -> Self:
        self._w, self._c = time.perf_counter(), _cpu_s()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._w
        self.cpu = _cpu_s() - self._c


# ---- cactus -------------------------------------------------------------------------------------------


def cactus_task(task: str, model: str, prompts: dict[str, Any], repeats: int, logits_repeats: int) -> dict[str, Any]:
    import cactus

    out: dict[str, Any] = {"rss_before_init_kib": _rss_kib().get("VmRSS")}
    with Timer() as t:
        m = cactus.Cactus(model)
    out["init_ms"], out["init_cpu_ms"] = t.wall * 1e3, t.cpu * 1e3
    opts: dict[str, Any] = {"temperature": 0.0, "n_ctx": N_CTX}
    if task == "init":
        with Timer() as t:
            m.logits([prompts["decode"]["ids"][0]])
        out["first_forward_ms"] = t.wall * 1e3
        return out
    m.complete_text(prompts["decode"]["text"][:24], max_tokens=4, **opts)  # warm-up: page in every weight
    runs = []
    if task == "decode":
        for _ in range(repeats):
            m.reset()
            first: list[float] = []

            def on_token(_piece: str, _id: int, first: list[float] = first) -> None:
                if not first:  # the first sampled token: the decode forward passes start here
                    first.append(_cpu_s())

            with Timer() as t:
                r = m.complete_text(prompts["decode"]["text"], max_tokens=prompts["n_gen"], callback=on_token, **opts)
            if not r.get("success"):
                raise RuntimeError(r.get("error"))
            passes = max(r["decode_tokens"] - 1, 0)
            runs.append({
                "decode_tps": r["decode_tps"], "prefill_tps": r["prefill_tps"], "decode_tokens": r["decode_tokens"],
                "prompt_tokens": r["prompt_tokens"], "finish_reason": r["finish_reason"],
                "ttft_ms": r["time_to_first_token_ms"], "wall_s": t.wall, "cpu_s": t.cpu,
                "decode_s": passes / r["decode_tps"] if r["decode_tps"] else None,
                "decode_cpu_s": _cpu_s() - first[0] if first else None,
            })
    elif task == "prefill":
        for _ in range(repeats):
            m.reset()
            with Timer() as t:
                r = m.complete_text(prompts["prefill"]["text"], max_tokens=1, **opts)
            if not r.get("success"):
                raise RuntimeError(r.get("error"))
            runs.append({"prefill_tps": r["prefill_tps"], "prompt_tokens": r["prompt_tokens"],
                         "ttft_ms": r["time_to_first_token_ms"], "wall_s": t.wall, "cpu_s": t.cpu})
        ids = prompts["prefill"]["ids"]
        lruns = []
        for _ in range(logits_repeats):
            with Timer() as t:
                m.logits(ids)
            lruns.append({"tps": len(ids) / t.wall, "wall_s": t.wall, "cpu_s": t.cpu})
        out["logits_runs"] = lruns
    out["runs"] = runs
    m.close()
    return out


# ---- llama.cpp ----------------------------------------------------------------------------------------


def llama_task(task: str, model: str, prompts: dict[str, Any], repeats: int, threads: int) -> dict[str, Any]:
    import llama_cpp

    out: dict[str, Any] = {"rss_before_init_kib": _rss_kib().get("VmRSS"), "llama_cpp_version": llama_cpp.__version__}
    with Timer() as t:
        llm = llama_cpp.Llama(model_path=model, n_ctx=N_CTX, n_batch=512, n_ubatch=512, n_threads=threads,
                              n_threads_batch=threads, flash_attn=True, use_mmap=True, verbose=False)
    out["init_ms"], out["init_cpu_ms"] = t.wall * 1e3, t.cpu * 1e3
    n_vocab = llm.n_vocab()

    def last_logits() -> np.ndarray:
        p = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
        return np.ctypeslib.as_array(p, shape=(n_vocab,))

    def evaluate(ids: list[int]) -> None:
        llm.eval(ids)

    if task == "init":
        with Timer() as t:
            evaluate([prompts["decode"]["ids"][0]])
        out["first_forward_ms"] = t.wall * 1e3
        return out
    llm.reset()
    evaluate(prompts["decode"]["ids"][:8])  # warm-up: page in every weight
    runs = []
    if task == "decode":
        ids = prompts["decode"]["ids"]
        for _ in range(repeats):
            llm.reset()
            with Timer() as tp:
                evaluate(ids)
            tok = int(np.argmax(last_logits()))
            with Timer() as td:
                for _ in range(prompts["n_gen"] - 1):  # the same count of forward passes as cactus
                    evaluate([tok])
                    tok = int(np.argmax(last_logits()))
            passes = prompts["n_gen"] - 1
            runs.append({"decode_tps": passes / td.wall, "prefill_tps": len(ids) / tp.wall, "decode_tokens": prompts["n_gen"],
                         "prompt_tokens": len(ids), "wall_s": tp.wall + td.wall, "cpu_s": tp.cpu + td.cpu,
                         "decode_s": td.wall, "decode_cpu_s": td.cpu})
    elif task == "prefill":
        ids = prompts["prefill"]["ids"]
        for _ in range(repeats):
            llm.reset()
            with Timer() as t:
                evaluate(ids)
            last_logits()
            runs.append({"prefill_tps": len(ids) / t.wall, "prompt_tokens": len(ids), "wall_s": t.wall,
                         "cpu_s": t.cpu})
    out["runs"] = runs
    llm.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("engine", choices=["cactus", "llama_cpp"])
    ap.add_argument("task", choices=["init", "decode", "prefill"])
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompts", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--logits-repeats", type=int, default=1)
    args = ap.parse_args()
    os.environ["CACTUS_THREADS"] = str(args.threads)  # read by cactus_init
    prompts = json.loads(Path(args.prompts).read_text())
    run: Callable[[], dict[str, Any]]
    if args.engine == "cactus":
        def run() -> dict[str, Any]:
            return cactus_task(args.task, args.model, prompts, args.repeats, args.logits_repeats)
    else:
        def run() -> dict[str, Any]:
            return llama_task(args.task, args.model, prompts, args.repeats, args.threads)
    with Timer() as t:
        out = run()
    out["task_cpu_s"] = t.cpu
    out["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
