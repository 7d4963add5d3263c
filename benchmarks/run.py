"""The speed and memory benchmark of cactus, side by side with llama.cpp when it is installed.

    python benchmarks/run.py            # full: 4 model shapes x q4_0, q8_0
    python benchmarks/run.py --quick    # TinyLlama-1.1B shape only, fewer repeats

What it does, in one run:
  1. builds libcactus (Release, build/bench) unless CACTUS_LIBRARY names one;
  2. writes random-weight GGUFs in real model shapes with our converter's quantizers and GGUF writer
     (benchmarks/make_synthetic.py; cached in ~/.cache/cactus-bench);
  3. measures the machine's read bandwidth with a small STREAM-like C probe (benchmarks/stream_probe.c,
     compiled here with `cc -O3 -march=native -pthread`, same thread count), right before each decode run;
  4. for every model and type, in a fresh subprocess per measurement (so ru_maxrss is that measurement's
     peak RSS), alternating the engines round by round so both see the same machine load:
       - init: cactus_init / llama_cpp.Llama() with the file evicted from the page cache (cold, via
         posix_fadvise DONTNEED on that file only) and with it cached (warm);
       - decode: 128 greedy tokens after a 128-token prompt; tokens/s of the decode forward passes;
       - prefill: a 512-token prompt; tokens/s (last-position logits, as llama.cpp computes them); cactus'
         `model.logits(ids)` (every position's logits) is timed too;
     medians over all runs; decode as % of the bandwidth roofline (weight bytes read per token / GB/s);
  5. writes benchmarks/results/engine.json (engine-quick.json with --quick) and a PNG chart beside it,
     and prints a markdown table with the machine, the load average and which targets are met.
Threads: --threads (default 2) for both engines (CACTUS_THREADS; n_threads and n_threads_batch).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import make_synthetic as synth
from _common import (
    REPO,
    RESULTS,
    eprint,
    git_state,
    loadavg,
    machine,
    machine_line,
    median,
    prompt_of,
    python_env,
    run_json,
    timestamp,
    write_json,
)

N_DECODE_PROMPT, N_GEN, N_PREFILL = 128, 128, 512
N_CTX = 1024  # the context both engines are given (see _worker.py)
WORKER = str(BENCH / "_worker.py")
TIMEOUT_S = 3600.0


# ---- setup --------------------------------------------------------------------------------------------


def build_library() -> str:
    lib = os.environ.get("CACTUS_LIBRARY")
    if lib:
        if not Path(lib).is_file():
            raise SystemExit(f"CACTUS_LIBRARY={lib} does not exist")
        return lib
    build = REPO / "build" / "bench"
    eprint(f"building libcactus (Release) in {build} ...")
    subprocess.run(["cmake", "-S", str(REPO), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(build), "-j", str(os.cpu_count() or 2), "--target", "cactus"],
                   check=True, stdout=subprocess.DEVNULL)
    return str(build / "libcactus.so")


def llama_cpp_info() -> dict[str, Any]:
    if importlib.util.find_spec("llama_cpp") is None:
        return {"available": False, "reason": "llama-cpp-python is not installed (pip install llama-cpp-python)"}
    try:
        code = "import llama_cpp; print(llama_cpp.__version__); print(llama_cpp.llama_print_system_info().decode())"
        out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
    except subprocess.SubprocessError as e:
        return {"available": False, "reason": f"import llama_cpp failed: {e}"}
    if out.returncode != 0:
        return {"available": False, "reason": "import llama_cpp failed: " + out.stderr.strip()[-300:]}
    lines = out.stdout.strip().splitlines()
    return {"available": True, "version": lines[0] if lines else "?", "system_info": " ".join(lines[1:]).strip(),
            "flash_attn": True, "n_batch": 512, "n_ubatch": 512, "n_ctx": N_CTX, "use_mmap": True}


def compile_probe() -> Path | None:
    exe = synth.cache_dir() / "stream_probe"
    src = BENCH / "stream_probe.c"
    if exe.is_file() and exe.stat().st_mtime >= src.stat().st_mtime:
        return exe
    exe.parent.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["cc", "-O3", "-march=native", "-pthread", str(src), "-o", str(exe)], check=True,
                       capture_output=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as e:
        eprint(f"could not compile the bandwidth probe ({e}); using the numpy fallback")
        return None
    return exe


def _numpy_bandwidth(threads: int, mib: int, passes: int) -> list[float]:
    """Fallback probe: numpy sums of per-thread slices (numpy releases the GIL in reductions)."""
    import threading
    import time

    import numpy as np

    a = np.ones(mib * 2**20 // 8, dtype=np.int64)
    parts = np.array_split(a, threads)
    out = []
    for _ in range(passes):
        ts = [threading.Thread(target=np.sum, args=(p,)) for p in parts]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        out.append(a.nbytes / (time.perf_counter() - t0) / 1e9)
    return out


def bandwidth(probe: Path | None, threads: int, mib: int, passes: int) -> dict[str, Any]:
    la = loadavg()
    if probe is not None:
        p = subprocess.run([str(probe), str(threads), str(mib), str(passes)], check=False,
                           capture_output=True, text=True, timeout=600)
        gbs = json.loads(p.stdout)["gbs"]
        method = "C probe (benchmarks/stream_probe.c, cc -O3 -march=native, pthreads)"
    else:
        gbs = _numpy_bandwidth(threads, mib, passes)
        method = "numpy sum over per-thread slices"
    return {"method": method, "threads": threads, "buffer_mib": mib, "passes_gbs": gbs,
            "best_gbs": max(gbs), "median_gbs": median(gbs), "loadavg": la}


# ---- model facts --------------------------------------------------------------------------------------


def model_facts(spec: synth.ModelSpec, path: Path) -> dict[str, Any]:
    import gguf  # benchmark-time dependency: reads the tensor table

    r = gguf.GGUFReader(str(path))
    sizes = {t.name: int(t.n_bytes) for t in r.tensors}
    total = sum(sizes.values())
    # per decoded token every weight is read once, except the embedding table (one row), unless it is also
    # the output head (tied)
    per_token = total - (0 if spec.tied else sizes["token_embd.weight"])
    n_attn = spec.n_layer if spec.attn_layers is None else len(spec.attn_layers)
    kvd = spec.n_head_kv * spec.head_dim
    kv_ours = 2 * n_attn * N_CTX * kvd * 4  # f32 K and V
    conv_ours = (spec.n_layer - n_attn) * N_CTX * spec.n_embd * 4 if spec.attn_layers is not None else 0
    kv_llama = 2 * n_attn * N_CTX * kvd * 2  # f16 K and V
    return {"file_bytes": path.stat().st_size, "tensor_bytes": total, "weight_bytes_per_token": per_token,
            "kv_cache_bytes_cactus": kv_ours, "conv_cache_bytes_cactus": conv_ours,
            "kv_cache_bytes_llama_cpp": kv_llama, "n_ctx": N_CTX}


def make_prompts(path: Path, out: Path) -> dict[str, Any]:
    import cactus

    tok = cactus.Tokenizer(str(path))
    dtext, dids = prompt_of(tok, N_DECODE_PROMPT, seed=1)
    ptext, pids = prompt_of(tok, N_PREFILL, seed=2)
    tok.close()
    p = {"n_gen": N_GEN, "decode": {"text": dtext, "ids": dids}, "prefill": {"text": ptext, "ids": pids}}
    out.write_text(json.dumps(p))
    return p


def evict(path: Path) -> None:
    """Drops this one file's pages from the page cache (no effect on other files)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def warm(path: Path) -> None:
    with open(path, "rb", buffering=0) as f:
        while f.read(16 << 20):
            pass


# ---- measuring ----------------------------------------------------------------------------------------


def worker(engine: str, task: str, path: Path, prompts: Path, args: argparse.Namespace, env: dict[str, str],
           repeats: int, logits_repeats: int = 0) -> dict[str, Any]:
    cmd = [sys.executable, WORKER, engine, task, "--model", str(path), "--prompts", str(prompts),
           "--threads", str(args.threads), "--repeats", str(repeats), "--logits-repeats", str(logits_repeats)]
    r = run_json(cmd, env, TIMEOUT_S)
    status = "ok" if r.get("ok") else f"FAILED: {r.get('error')}"
    eprint(f"    {engine:9s} {task:7s} load {r.get('loadavg')} {status}")
    return r


def _runs(results: list[dict[str, Any]], key: str) -> list[float]:
    return [run[key] for r in results if r.get("ok") for run in r.get("runs", []) if run.get(key)]


def summarize(engine: str, init_cold: list[dict[str, Any]], init_warm: list[dict[str, Any]],
              dec: list[dict[str, Any]], pre: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in init_cold + init_warm + dec + pre if r.get("ok")]
    errors = sorted({str(r.get("error")) for r in init_cold + init_warm + dec + pre if not r.get("ok")})
    decode = _runs(dec, "decode_tps")
    prefill = _runs(pre, "prefill_tps")
    logits = [x["tps"] for r in pre if r.get("ok") for x in r.get("logits_runs", [])]
    cpu_share = [run["cpu_s"] / run["wall_s"] for r in dec + pre if r.get("ok") for run in r.get("runs", [])]
    # decode passes per CPU-second of the process (all threads, spinning included): less sensitive to the
    # machine's load than wall-clock rates
    dec_cpu = [(run["decode_tokens"] - 1) / run["decode_cpu_s"] for r in dec if r.get("ok")
               for run in r.get("runs", []) if run.get("decode_cpu_s")]
    pre_cpu = [run["prompt_tokens"] / run["cpu_s"] for r in pre if r.get("ok") for run in r.get("runs", [])
               if run.get("cpu_s")]
    s: dict[str, Any] = {
        "decode_tps": median(decode), "decode_tps_runs": [round(x, 3) for x in decode],
        "prefill_tps": median(prefill), "prefill_tps_runs": [round(x, 3) for x in prefill],
        "init_cold_ms": median([r["init_ms"] for r in init_cold if r.get("ok")]),
        "init_warm_ms": median([r["init_ms"] for r in init_warm if r.get("ok")]),
        "init_warm_ms_runs": [round(r["init_ms"], 2) for r in init_warm if r.get("ok")],
        "init_warm_cpu_ms": median([r["init_cpu_ms"] for r in init_warm if r.get("ok")]),
        "first_forward_cold_ms": median([r["first_forward_ms"] for r in init_cold if r.get("ok")]),
        "first_forward_warm_ms": median([r["first_forward_ms"] for r in init_warm if r.get("ok")]),
        "peak_rss_mib": {
            task: max([r["peak_rss_kib"] / 1024 for r in rs if r.get("ok")], default=None)
            for task, rs in (("init", init_warm), ("decode", dec), ("prefill", pre))
        },
        "rss_before_init_mib": median([r["rss_before_init_kib"] / 1024 for r in ok if r.get("rss_before_init_kib")]),
        "cpu_per_wall": median(cpu_share),
        "decode_tok_per_cpu_s": median(dec_cpu),
        "prefill_tok_per_cpu_s": median(pre_cpu),
        "decode_tokens": [run.get("decode_tokens") for r in dec if r.get("ok") for run in r.get("runs", [])],
        "prompt_tokens": sorted({run.get("prompt_tokens") for r in dec + pre if r.get("ok") for run in r.get("runs", [])}),
        "loadavg_1min": [r["loadavg"][0] for r in dec + pre if r.get("loadavg")],
        "errors": errors,
        "kernels": sorted({r["kernels"] for r in ok if r.get("kernels")}),
    }
    if engine == "cactus":
        s["logits_all_positions_tps"] = median(logits)
        s["logits_all_positions_tps_runs"] = [round(x, 3) for x in logits]
    return s


def bench_one(spec: synth.ModelSpec, dtype: str, args: argparse.Namespace, env: dict[str, str],
              engines: list[str], probe: Path | None) -> dict[str, Any]:
    path = synth.model_path(spec, dtype)
    eprint(f"== {spec.name} {dtype} ({path.stat().st_size / 1e6:.0f} MB)")
    prompts_path = synth.cache_dir() / f"prompts-{spec.name}.json"
    prompts = make_prompts(path, prompts_path)
    facts = model_facts(spec, path)
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {e: {"cold": [], "warm": [], "dec": [], "pre": []} for e in engines}
    for _ in range(args.init_rounds):
        for e in engines:
            evict(path)
            raw[e]["cold"].append(worker(e, "init", path, prompts_path, args, env, 1))
    warm(path)
    for _ in range(args.init_rounds):
        for e in engines:
            raw[e]["warm"].append(worker(e, "init", path, prompts_path, args, env, 1))
    bws = []
    for _ in range(args.rounds):
        for e in engines:
            warm(path)
            bws.append(bandwidth(probe, args.threads, args.bw_mib, args.bw_passes))
            raw[e]["dec"].append(worker(e, "decode", path, prompts_path, args, env, args.repeats))
    for i in range(args.rounds):
        for e in engines:
            lr = args.logits_repeats if (e == "cactus" and i == 0) else 0
            raw[e]["pre"].append(worker(e, "prefill", path, prompts_path, args, env, args.repeats, lr))
    row: dict[str, Any] = {"model": spec.name, "like": spec.like, "arch": spec.arch, "dtype": dtype, **facts,
                           "prompt_tokens": {"decode": len(prompts["decode"]["ids"]),
                                             "prefill": len(prompts["prefill"]["ids"])}}
    for e in engines:
        row[e] = summarize(e, raw[e]["cold"], raw[e]["warm"], raw[e]["dec"], raw[e]["pre"])
    bw_best = max(b["best_gbs"] for b in bws)
    bw_med = median([b["median_gbs"] for b in bws])
    roof = bw_best * 1e9 / facts["weight_bytes_per_token"]
    row["bandwidth"] = {"best_gbs": bw_best, "median_gbs": bw_med, "probes": bws}
    row["roofline_decode_tps"] = roof
    for e in engines:
        d = row[e]["decode_tps"]
        row[e]["roofline_pct"] = 100.0 * d / roof if d else None
        row[e]["roofline_pct_vs_median_bw"] = (100.0 * d * facts["weight_bytes_per_token"] / (bw_med * 1e9)
                                               if d and bw_med else None)
    if "llama_cpp" in engines:
        row["ratio"] = {
            k: (row["cactus"][k] / row["llama_cpp"][k]) if row["cactus"][k] and row["llama_cpp"][k] else None
            for k in ("decode_tps", "prefill_tps", "decode_tok_per_cpu_s", "prefill_tok_per_cpu_s")
        }
    return row


# ---- report -------------------------------------------------------------------------------------------


def _f(x: Any, nd: int = 1) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def rss_budget_mib(row: dict[str, Any]) -> float:
    return (row["file_bytes"] + row["kv_cache_bytes_cactus"] + row["conv_cache_bytes_cactus"]) / 2**20 + 64


def table(rows: list[dict[str, Any]], has_llama: bool) -> str:
    head = ["model", "type", "file MB", "decode tok/s", "roofline tok/s", "% roofline", "prefill tok/s",
            "logits() tok/s", "init warm ms", "init cold ms", "peak RSS MiB (budget)"]
    if has_llama:
        head[4:4] = ["llama.cpp decode", "ratio"]
        head[8:8] = ["llama.cpp prefill", "ratio"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        c = r["cactus"]
        rss = max([v for v in c["peak_rss_mib"].values() if v is not None], default=None)
        cells = [r["model"], r["dtype"], _f(r["file_bytes"] / 1e6, 0), _f(c["decode_tps"], 2),
                 _f(r["roofline_decode_tps"], 2), _f(c["roofline_pct"], 0), _f(c["prefill_tps"], 1),
                 _f(c.get("logits_all_positions_tps"), 1), _f(c["init_warm_ms"], 1), _f(c["init_cold_ms"], 1),
                 f"{_f(rss, 0)} ({_f(rss_budget_mib(r), 0)})"]
        if has_llama:
            lc, ratio = r["llama_cpp"], r.get("ratio", {})
            cells[4:4] = [_f(lc["decode_tps"], 2), _f(ratio.get("decode_tps"), 2)]
            cells[8:8] = [_f(lc["prefill_tps"], 1), _f(ratio.get("prefill_tps"), 2)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(rows: list[dict[str, Any]], has_llama: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(name: str, value: float | None, goal: float, higher: bool = True) -> None:
        met = None if value is None else (value >= goal if higher else value <= goal)
        out.append({"target": name, "value": value, "goal": goal, "met": met})

    for r in rows:
        if r["model"] != "tinyllama-1.1b":
            continue
        dt, c = r["dtype"], r["cactus"]
        if has_llama:
            add(f"decode {dt} vs llama.cpp (x)", r["ratio"]["decode_tps"], 1.10 if dt == "q4_0" else 1.05)
            add(f"prefill {dt} vs llama.cpp (x)", r["ratio"]["prefill_tps"], 1.5)
        add(f"decode {dt} % of bandwidth roofline", c["roofline_pct"], 85.0)
        if r["file_bytes"] >= 1e9:
            add(f"cactus_init warm ms ({r['file_bytes'] / 1e9:.2f} GB file)", c["init_warm_ms"], 100.0, higher=False)
        rss = max([v for v in c["peak_rss_mib"].values() if v is not None], default=None)
        add(f"peak RSS MiB {dt} (file + KV + 64 MiB)", rss, rss_budget_mib(r), higher=False)
    return out


def chart(rows: list[dict[str, Any]], has_llama: bool, path: Path, title: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        eprint("matplotlib is not installed: no chart (pip install matplotlib)")
        return False
    labels = [f"{r['model']}\n{r['dtype']}" for r in rows]
    xs = list(range(len(rows)))
    w = 0.38 if has_llama else 0.6
    fig, axes = plt.subplots(2, 1, figsize=(max(7.0, 1.6 * len(rows)), 7.5))
    for ax, key, name in ((axes[0], "decode_tps", "decode tok/s (128 after 128)"),
                          (axes[1], "prefill_tps", "prefill tok/s (512-token prompt)")):
        ours = [r["cactus"][key] or 0 for r in rows]
        ax.bar([x - (w / 2 if has_llama else 0) for x in xs], ours, w, label="cactus", color="#2a9d8f")
        if has_llama:
            theirs = [r["llama_cpp"][key] or 0 for r in rows]
            ax.bar([x + w / 2 for x in xs], theirs, w, label="llama.cpp", color="#e76f51")
        if key == "decode_tps":
            ax.scatter(xs, [r["roofline_decode_tps"] for r in rows], marker="_", s=900, color="black",
                       label="bandwidth roofline", zorder=3)
        ax.set_ylabel(name)
        ax.set_xticks(xs)
        ax.set_xticklabels(labels, fontsize=8)
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="cactus speed and memory benchmark (see the module docstring)")
    ap.add_argument("--quick", action="store_true", help="TinyLlama shape only, fewer repeats")
    ap.add_argument("--models", help=f"comma list of {', '.join(synth.MODELS)} (default: all; --quick: tinyllama)")
    ap.add_argument("--dtypes", default="q4_0,q8_0", help="comma list of q4_0, q8_0, f16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, help="subprocesses per engine and measurement (default 1)")
    ap.add_argument("--repeats", type=int, help="runs inside each subprocess (default 3; quick 2)")
    ap.add_argument("--init-rounds", type=int, help="init subprocesses per engine, cold and warm (default 2)")
    ap.add_argument("--logits-repeats", type=int, default=1, help="timed model.logits(ids) calls (cactus)")
    ap.add_argument("--bw-mib", type=int, default=1024, help="bandwidth probe buffer (MiB)")
    ap.add_argument("--bw-passes", type=int, default=6)
    ap.add_argument("--no-llama-cpp", action="store_true", help="skip llama.cpp even when installed")
    ap.add_argument("--out", help="output path prefix (default benchmarks/results/engine[-quick])")
    args = ap.parse_args(argv)
    args.rounds = args.rounds or 1
    args.repeats = args.repeats or (2 if args.quick else 3)
    args.init_rounds = args.init_rounds or 2
    names = (args.models or ("tinyllama-1.1b" if args.quick else ",".join(synth.MODELS))).split(",")
    dtypes = args.dtypes.split(",")
    bad = [m for m in names if m not in synth.MODELS] + [d for d in dtypes if d not in synth.DTYPES]
    if bad:
        ap.error(f"unknown model or dtype: {', '.join(bad)}")
    out_prefix = Path(args.out) if args.out else RESULTS / ("engine-quick" if args.quick else "engine")

    start_load = loadavg()
    lib = build_library()
    env = python_env(lib)
    env["CACTUS_LOG"] = "info"  # the kernel table chosen goes to stderr
    llama = {"available": False, "reason": "--no-llama-cpp"} if args.no_llama_cpp else llama_cpp_info()
    engines = ["cactus"] + (["llama_cpp"] if llama["available"] else [])
    if not llama["available"]:
        eprint(f"llama.cpp: not compared ({llama['reason']})")
    mach = machine()
    eprint(machine_line(mach) + f"; load average {start_load}")
    synth.ensure(names, dtypes)
    probe = compile_probe()
    sys.path.insert(0, str(REPO / "python"))
    os.environ["CACTUS_LIBRARY"] = lib

    rows: list[dict[str, Any]] = []
    partial = synth.cache_dir() / f"{out_prefix.name}-partial.json"
    for n in names:
        for dt in dtypes:
            rows.append(bench_one(synth.MODELS[n], dt, args, env, engines, probe))
            write_json(partial, rows)  # what is done so far survives an interrupted run
    has_llama = "llama_cpp" in engines
    kernels = sorted({k for r in rows for k in r["cactus"]["kernels"]})
    tg = targets(rows, has_llama)
    result: dict[str, Any] = {
        "schema": 1,
        "kind": "engine",
        "timestamp": timestamp(),
        "command": "python benchmarks/run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": mach,
        "loadavg": {"start": start_load, "end": loadavg()},
        "threads": args.threads,
        "settings": {"rounds": args.rounds, "repeats": args.repeats, "init_rounds": args.init_rounds,
                     "decode_prompt": N_DECODE_PROMPT, "decode_tokens": N_GEN, "prefill_prompt": N_PREFILL,
                     "n_ctx": N_CTX, "statistic": "median over all runs"},
        "cactus": {"library": lib, "git": git_state(), "kernels": kernels or None},
        "llama_cpp": llama,
        "results": rows,
        "targets": tg,
    }
    write_json(out_prefix.with_suffix(".json"), result)
    title = (f"cactus vs llama.cpp, {args.threads} threads - {mach['cpu']} - load avg {start_load[:1]}"
             if has_llama else f"cactus, {args.threads} threads - {mach['cpu']}")
    drew = chart(rows, has_llama, out_prefix.with_suffix(".png"), title)

    print(f"\n**Machine:** {machine_line(mach)}; {args.threads} threads; load average at start {start_load}, "
          f"at end {result['loadavg']['end']}.")
    if has_llama:
        print(f"**llama.cpp:** llama-cpp-python {llama['version']} (flash_attn on, n_batch 512), same GGUF files.")
    print(f"**Bandwidth:** {rows[0]['bandwidth']['probes'][0]['method']}, {args.threads} threads, "
          + ", ".join(f"{r['model']} {r['dtype']}: best {r['bandwidth']['best_gbs']:.1f} GB/s" for r in rows) + "\n")
    print(table(rows, has_llama))
    print("\n| target | value | goal | met |\n|---|---|---|---|")
    for t in tg:
        print(f"| {t['target']} | {_f(t['value'], 2)} | {t['goal']:.2f} | "
              f"{'yes' if t['met'] else 'no' if t['met'] is not None else '-'} |")
    print(f"\nwrote {out_prefix.with_suffix('.json')}" + (f" and {out_prefix.with_suffix('.png')}" if drew else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
