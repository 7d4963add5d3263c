"""Shared helpers of the benchmark scripts: the machine's description, load, test texts, prompts."""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
INTERESTING_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
                     "avx512_bf16", "avx512_fp16", "amx_int8", "amx_bf16", "asimd", "asimddp", "sve", "i8mm")


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            info.setdefault(k.strip(), v.strip())
    return info


def _mem_total_gib() -> float | None:
    try:
        m = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
    except OSError:
        return None
    return round(int(m.group(1)) / 2**20, 1) if m else None


def _cc_version() -> str | None:
    try:
        out = subprocess.run(["cc", "--version"], check=False, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0] if out else None


def machine() -> dict[str, Any]:
    ci = _cpuinfo()
    flags = set((ci.get("flags") or ci.get("Features") or "").split())
    return {
        "cpu": ci.get("model name") or ci.get("Model") or platform.processor() or "unknown",
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "flags": [f for f in INTERESTING_FLAGS if f in flags],
        "virtualized": "hypervisor" in flags,
        "ram_gib": _mem_total_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "cc": _cc_version(),
        "loadavg": loadavg(),
    }


def machine_line(m: dict[str, Any]) -> str:
    return (f"{m['cpu']}, {m['logical_cpus']} logical CPUs, {m['ram_gib']} GiB RAM"
            f"{' (VM)' if m.get('virtualized') else ''}; flags: {' '.join(m['flags']) or 'none of interest'}")


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, check=False, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain", "--", "csrc"))}


def median(xs: Sequence[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")


def timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def python_env(library: str | None = None) -> dict[str, str]:
    """The environment for subprocesses that import cactus from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "python")] + [p for p in [env.get("PYTHONPATH")] if p])
    if library:
        env["CACTUS_LIBRARY"] = library
    return env


def start_server(args: Sequence[str], log: Any = None, who: str = "benchmark") -> tuple[subprocess.Popen[bytes], str]:
    """`cactus serve ARGS...` from this checkout on a free 127.0.0.1 port (keys only from ARGS, none from the
    environment); returns the process and its base URL once /health answers, within 120 s."""
    import socket

    import httpx

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = python_env()
    env.pop("CACTUS_API_KEYS", None)
    cmd = [sys.executable, "-m", "cactus", "serve", *args, "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT if log else None)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{who}: the server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.terminate()
    raise SystemExit(f"{who}: the server did not come up within 120 s")


def run_json(cmd: Sequence[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Runs a worker that prints one JSON object as its last stdout line."""
    t0 = time.perf_counter()
    before = loadavg()
    try:
        p = subprocess.run(list(cmd), check=False, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout:.0f} s", "loadavg": before}
    lines = [x for x in p.stdout.splitlines() if x.startswith("{")]
    if p.returncode != 0 or not lines:
        tail = (p.stderr or p.stdout).strip().splitlines()[-6:]
        return {"ok": False, "error": f"exit {p.returncode}: " + " | ".join(tail), "loadavg": before}
    out = json.loads(lines[-1])
    out.setdefault("ok", True)
    out["loadavg"] = before
    out["loadavg_after"] = loadavg()
    out["process_wall_s"] = round(time.perf_counter() - t0, 2)
    for line in p.stderr.splitlines():
        if "kernels:" in line:  # cactus logs its kernel table at CACTUS_LOG=info
            out["kernels"] = line.split("kernels:", 1)[1].strip()
    return out


# ---- texts --------------------------------------------------------------------------------------------

def _words(s: str) -> list[str]:
    return s.split()


_EN_WORDS = _words(
    "the of and to in a is that for it as was with be by on not he this are or his from at which but have an "
    "they you were her she there one all we their been has when who will more no if out so said what up its "
    "about into than them can only other new some could time these two may then do first any my now such like "
    "our over man me even most made after also did many before must through back years where much your way "
    "well down should because each just those people how too little state good very make world still own see "
    "men work long get here between both life being under never day same another know while last might us "
    "great old year off come since against go came right used take three small model engine memory thread "
    "kernel cache token weights layer matrix vector speed latency device phone laptop battery network server "
    "request answer question language english river mountain city market history science music garden winter "
    "summer morning evening window table letter story friend family school teacher student water light paper "
    "number group problem system program government company country question example important different "
    "following however because although therefore meanwhile nevertheless quickly slowly carefully together"
)
_EN_NAMES = _words("Alice Bob London Paris Tuesday October Python Linux Amazon Tokyo Mary Johnson Europe Monday")
_PUNCT = [".", ".", ".", ",", ",", ",", ";", ":", "?", "!", " -"]

_MIXED_WORDS = {
    "en": _EN_WORDS,
    "zh": _words("我们 今天 天气 很好 学习 中文 模型 推理 速度 内存 手机 电脑 世界 人民 时间 问题 发展 经济 城市 文化 "
                 "语言 机器 学习 数据 计算 网络 朋友 家庭"),
    "ja": _words("こんにちは ありがとう 日本語 東京 今日 天気 勉強 モデル 推論 速度 メモリ スマートフォン 世界 時間 "
                 "問題 カタカナ ひらがな 漢字 電車 学校 先生"),
    "ru": _words("привет мир сегодня погода модель скорость память телефон компьютер время вопрос язык город "
                 "история наука музыка друг семья школа"),
    "ar": _words("مرحبا العالم اليوم الطقس نموذج سرعة ذاكرة هاتف حاسوب وقت سؤال لغة مدينة تاريخ علم موسيقى صديق"),
    "hi": _words("नमस्ते दुनिया आज मौसम मॉडल गति स्मृति फ़ोन कंप्यूटर समय प्रश्न भाषा शहर इतिहास विज्ञान संगीत"),
    "ko": _words("안녕하세요 세계 오늘 날씨 모델 속도 메모리 전화 컴퓨터 시간 질문 언어 도시 역사 과학 음악"),
    "el": _words("γεια κόσμος σήμερα καιρός μοντέλο ταχύτητα μνήμη τηλέφωνο υπολογιστής χρόνος ερώτηση"),
    "emoji": _words("😀 🚀 🌍 🔥 👍 🎉 🤖 ❤️ 👩‍💻 🇯🇵"),
    "code": _words("def return self.x = [i for i in range(10)] {\"key\": 1} if(a<b){ } x->y; #include <stdio.h> 0x1F"),
}
_NO_SPACE = {"zh", "ja"}


def english_text(n_bytes: int, seed: int = 0) -> str:
    """Deterministic English-like prose: Zipf-distributed common words, names, numbers and punctuation."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(_EN_WORDS) + 1) ** 0.9
    weights /= weights.sum()
    parts: list[str] = []
    size = 0
    while size < n_bytes:
        n = int(rng.integers(6, 22))
        words = list(rng.choice(_EN_WORDS, size=n, p=weights))
        if rng.random() < 0.3:
            words[int(rng.integers(0, n))] = str(rng.choice(_EN_NAMES))
        if rng.random() < 0.15:
            words[int(rng.integers(0, n))] = str(int(rng.integers(0, 100000)))
        s = " ".join(words)
        s = s[0].upper() + s[1:] + str(rng.choice(_PUNCT))
        s += "\n\n" if rng.random() < 0.1 else " "
        parts.append(s)
        size += len(s.encode())
    return "".join(parts)[:n_bytes]


def mixed_text(n_bytes: int, seed: int = 0) -> str:
    """Deterministic mixed-script text: runs of English, CJK, Cyrillic, Arabic, Devanagari, Hangul, Greek,
    emoji and code, switching script every few words."""
    rng = np.random.default_rng(seed)
    scripts = list(_MIXED_WORDS)
    parts: list[str] = []
    size = 0
    while size < n_bytes:
        sc = str(rng.choice(scripts))
        words = list(rng.choice(_MIXED_WORDS[sc], size=int(rng.integers(2, 9))))
        s = ("" if sc in _NO_SPACE else " ").join(words) + str(rng.choice([" ", ", ", ". ", "\n", "! "]))
        parts.append(s)
        size += len(s.encode())
    text = "".join(parts)
    data = text.encode()[:n_bytes]
    return data.decode("utf-8", "ignore")


def prompt_of(tokenizer: Any, n_tokens: int, seed: int = 0) -> tuple[str, list[int]]:
    """English text that tokenizes (with the vocab's BOS) to exactly `n_tokens` ids where possible."""
    text = english_text(n_tokens * 12 + 256, seed)
    words = text.split(" ")
    lo, hi = 1, len(words)
    while lo < hi:  # the longest word prefix with at most n_tokens tokens
        mid = (lo + hi + 1) // 2
        if len(tokenizer.encode(" ".join(words[:mid]), add_special=True)) <= n_tokens:
            lo = mid
        else:
            hi = mid - 1
    best = " ".join(words[:lo])
    for tail in ("", " a", " of", ".", ","):  # pad to the exact count with a short tail when one fits
        ids = tokenizer.encode(best + tail, add_special=True)
        if len(ids) == n_tokens:
            return best + tail, list(ids)
    return best, list(tokenizer.encode(best, add_special=True))


def eprint(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)
