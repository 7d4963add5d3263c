"""schemathesis against `cactus serve`: property-based requests generated from the server's own
/openapi.json, every response checked against it.

    python benchmarks/schema_server.py [--model PATH] [--max-examples 200] [--seed 0] [--out FILE]

The server runs as a subprocess on a free loopback port with one API key (sent as a Bearer header with
every generated request). schemathesis (`pip install schemathesis`) runs all its checks (`--checks all`:
no 5xx, status codes, content types, headers and bodies as documented, server-sent events as documented,
schema-violating requests refused, schema-valid ones accepted, auth enforced) in all its phases, with at
most --max-examples cases per operation and phase. benchmarks/schema_hooks.py drops the "schema-valid request
rejected" reports that come from the two rules no JSON Schema can state (a named tool_choice must be one of
the tools; the prompt must fit the context); every other failure counts.

Reported: the cases generated, the failures by kind, and the 5xx answers the server itself counted
(its /metrics, before and after). Results go to benchmarks/results/schema-server.json (--out). The exit
status is 1 when schemathesis found a failure or the server answered a 5xx.

Without --model it converts the tiny qwen3 test fixture (q8_0): the schema, not the model, is under test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from load_server import KEY, start_server  # the same server start as the load test

RESULTS = ROOT / "benchmarks" / "results"


def tiny_model(tmp: Path) -> Path:
    sys.path.insert(0, str(ROOT / "python"))
    from cactus.convert import convert

    out = tmp / "qwen3-q8_0.gguf"
    convert(ROOT / "tests" / "fixtures" / "qwen3", out, dtype="q8_0", progress=False)
    return out


def server_errors(url: str) -> float:
    """The server's own count of 5xx answers so far (cactus_requests_total, every route)."""
    text = httpx.get(url + "/metrics", timeout=30).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("cactus_requests_total{") and 'status="5' in line
    )


def run_schemathesis(url: str, args: argparse.Namespace, report: Path, log: Path, dropped: Path) -> int:
    cmd = [sys.executable, "-m", "schemathesis.cli", "run", url + "/openapi.json"]
    cmd += ["--checks", "all", "--max-examples", str(args.max_examples), "--seed", str(args.seed)]
    cmd += ["--header", f"Authorization: Bearer {KEY}", "--workers", str(args.workers)]
    cmd += ["--generation-database", "none", "--continue-on-failure", "--no-color"]
    cmd += [
        "--request-timeout",
        str(args.request_timeout),
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    env = dict(os.environ)
    env["SCHEMATHESIS_HOOKS"] = "schema_hooks"
    env["SCHEMA_HOOKS_DROPPED"] = str(dropped)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    with log.open("wb") as out:
        # run from the temporary folder: schemathesis leaves a .schemathesis/ cache where it runs
        return subprocess.run(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False, cwd=report.parent
        ).returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="a .gguf (default: the tiny qwen3 fixture)")
    ap.add_argument("--max-examples", type=int, default=200, help="cases per operation and phase (200)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1, help="schemathesis's concurrent workers (1)")
    ap.add_argument("--request-timeout", type=float, default=120.0, help="seconds per request (120)")
    ap.add_argument("--out", type=Path, default=RESULTS / "schema-server.json", help="result JSON file")
    args = ap.parse_args(argv)
    try:
        import schemathesis  # noqa: F401
    except ImportError:
        raise SystemExit("schema_server: needs schemathesis (pip install schemathesis)") from None
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        model = args.model.resolve() if args.model else tiny_model(tmp)
        with (tmp / "server.log").open("wb") as server_log:
            proc, url = start_server(model, 1 << 20, 1, server_log)
            try:
                before = server_errors(url)
                t0 = time.perf_counter()
                code = run_schemathesis(url, args, tmp / "report.json", tmp / "st.log", tmp / "dropped.jsonl")
                elapsed = time.perf_counter() - t0
                after = server_errors(url)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
        st_log = (tmp / "st.log").read_text(errors="replace")
        dropped: dict[str, int] = {}
        if (tmp / "dropped.jsonl").exists():
            for line in (tmp / "dropped.jsonl").read_text().splitlines():
                key = "{operation}: {rule}".format(**json.loads(line))
                dropped[key] = dropped.get(key, 0) + 1
        report: dict[str, Any] = (
            json.loads((tmp / "report.json").read_text()) if (tmp / "report.json").exists() else {}
        )
    failures = [
        {
            "code": f.get("code"),
            "title": f.get("title"),
            "count": f.get("count"),
            "operations": f.get("operations"),
        }
        for f in report.get("failures", [])
    ]
    summary = [line for line in st_log.splitlines() if "dropped by" in line or "generated" in line]
    result = {
        "benchmark": "schema-server",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": str(args.model) if args.model else "tests/fixtures/qwen3 (q8_0, converted)",
        "schemathesis": report.get("schemathesis_version"),
        "command": report.get("command"),
        "max_examples": args.max_examples,
        "seed": args.seed,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "seconds": round(elapsed, 1),
        "operations": report.get("operations"),
        "test_cases": report.get("test_cases"),
        "phases": {k: v.get("status") for k, v in report.get("phases", {}).items()},
        "failures": failures,
        "dropped_unstatable_rules": dropped,
        "errors": report.get("errors"),
        "summary_lines": summary,
        "server_5xx": after - before,
        "schemathesis_exit_code": code,
        "log_tail": st_log[-3000:] if code else "",
    }
    result["passed"] = code == 0 and not failures and result["server_5xx"] == 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    cases = result["test_cases"] or {}
    print(
        f"schemathesis {result['schemathesis']}: {cases.get('generated', '?')} cases in {result['seconds']} s "
        f"(--max-examples {args.max_examples}, seed {args.seed}), exit code {code}"
    )
    for line in summary:
        print("  " + line.strip())
    for key, n in sorted(dropped.items()):
        print(f"  dropped (a rule no schema can state) {n} x {key}")
    for f in failures:
        print(f"  FAILURE {f['code']} {f['title']}: {f['count']} in {', '.join(f['operations'] or [])}")
    print(f"server 5xx answers: {result['server_5xx']:.0f}")
    if code and not failures:
        print(st_log[-3000:])
    print(f"{'passed' if result['passed'] else 'FAILED'}; wrote {args.out}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
