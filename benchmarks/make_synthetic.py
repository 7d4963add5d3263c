"""Random-weight GGUF files in real model shapes, for speed and memory benchmarks.

Speed depends on tensor shapes and types, not on the values, so these files stand in for the real
checkpoints: every tensor has the shape, type, name and metadata our converter (and llama.cpp's) would
write for the model it mimics. They are written with cactus' own quantizers (`quantize_q8_0`,
`quantize_q4_0`) and GGUF writer, never with the gguf package.

To keep generation fast, each type's data comes from one pool of random blocks (a few MiB of N(0, 0.02)
values quantized once with our quantizers), read cyclically from a per-tensor offset: the blocks are real,
well-formed quantized data with realistic scales; only their repetition is synthetic. Norm weights are 1,
the LFM2 convolution kernel is random f32 and Llama 3 RoPE factors are computed as the converter does.

A vocabulary is needed to load a model: the llama shape reuses the real SentencePiece vocab
`/work/shared/vocab/ggml-vocab-llama-spm.gguf` (32000 tokens, read with the `gguf` package at generation
time); the others use the GPT-2 byte-level BPE vocab, padded with unreachable tokens to the model's vocab
size. The output-head rows of end-of-generation tokens are zero, so that greedy decoding of random weights
does not stop early (this changes no timing: the row is read like any other).

Files go to a cache folder outside the repository (default ~/.cache/cactus-bench, or $CACTUS_BENCH_CACHE).

    python benchmarks/make_synthetic.py [--models tinyllama-1.1b,...] [--dtypes q4_0,q8_0] [--force]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "python"))

from cactus._gguf_writer import GGMLType, GGUFWriter, TensorInfo, ValueType
from cactus.convert import quantize_q4_0, quantize_q8_0

GENERATOR_VERSION = 1  # bump when the files' layout changes, so cached files are rebuilt
VOCAB_DIR = Path(os.environ.get("CACTUS_VOCAB_DIR", "/work/shared/vocab"))
DTYPES = {"q4_0": GGMLType.Q4_0, "q8_0": GGMLType.Q8_0, "f16": GGMLType.F16}
FILE_TYPE = {"f16": 1, "q4_0": 2, "q8_0": 7}  # llama.cpp's llama_ftype
TOKEN_NORMAL, TOKEN_CONTROL = 1, 3
POOL_ELEMS = 1 << 22  # 4 Mi values per pool: 2.1 MiB of q4_0, 4.3 MiB of q8_0


@dataclass(frozen=True)
class ModelSpec:
    name: str
    like: str  # the Hugging Face model whose shapes these are
    arch: str  # llama | qwen3 | lfm2
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ff: int
    n_vocab: int
    n_ctx: int
    rope_theta: float
    rms_eps: float
    tied: bool
    vocab: str  # stem of the shared vocab GGUF
    attn_layers: tuple[int, ...] | None = None  # lfm2: blocks with attention (the rest are convolutions)
    conv_l: int = 3  # lfm2: short-convolution kernel length
    llama3_rope: bool = False


MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        ModelSpec("tinyllama-1.1b", "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "llama", 2048, 22, 32, 4, 64, 5632,
                  32000, 2048, 10000.0, 1e-5, False, "llama-spm"),
        ModelSpec("llama-3.2-1b", "meta-llama/Llama-3.2-1B", "llama", 2048, 16, 32, 8, 64, 8192, 128256,
                  131072, 500000.0, 1e-5, True, "gpt-2", llama3_rope=True),
        ModelSpec("qwen3-0.6b", "Qwen/Qwen3-0.6B", "qwen3", 1024, 28, 16, 8, 128, 3072, 151936, 40960,
                  1000000.0, 1e-6, True, "gpt-2"),
        ModelSpec("lfm2-1.2b", "LiquidAI/LFM2-1.2B", "lfm2", 2048, 16, 32, 8, 64, 8192, 65536, 128000,
                  1000000.0, 1e-5, True, "gpt-2", attn_layers=(2, 5, 8, 10, 12, 14)),
    )
}


def cache_dir() -> Path:
    return Path(os.environ.get("CACTUS_BENCH_CACHE", Path.home() / ".cache" / "cactus-bench"))


def model_path(spec: ModelSpec, dtype: str, root: Path | None = None) -> Path:
    return (root or cache_dir()) / f"{spec.name}-{dtype}.gguf"


# ---- vocabulary ---------------------------------------------------------------------------------------


@dataclass
class Vocab:
    model: str
    pre: str | None
    tokens: list[str]
    types: list[int]
    scores: list[float] | None
    merges: list[str] | None
    ids: dict[str, int]  # bos / eos / unknown / padding token ids
    flags: dict[str, bool]  # add_bos_token / add_eos_token


def _field(reader: Any, key: str) -> Any:
    f = reader.fields.get(key)
    return None if f is None else f.contents()


def load_vocab(stem: str, n_vocab: int) -> Vocab:
    """The vocab of `ggml-vocab-<stem>.gguf`, padded with unreachable tokens (or cut) to `n_vocab`."""
    import gguf  # benchmark-time dependency: only to read the shared vocab files

    path = VOCAB_DIR / f"ggml-vocab-{stem}.gguf"
    if not path.is_file():
        raise SystemExit(f"vocab file {path} not found (set CACTUS_VOCAB_DIR)")
    r = gguf.GGUFReader(str(path))
    tokens = list(_field(r, "tokenizer.ggml.tokens"))
    types = [int(t) for t in _field(r, "tokenizer.ggml.token_type")]
    scores = _field(r, "tokenizer.ggml.scores")
    scores = None if scores is None else [float(s) for s in scores]
    merges = _field(r, "tokenizer.ggml.merges")
    ids = {}
    for k in ("bos", "eos", "unknown", "padding"):
        v = _field(r, f"tokenizer.ggml.{k}_token_id")
        if v is not None and int(v) < n_vocab:
            ids[k] = int(v)
    flags = {}
    for k in ("add_bos_token", "add_eos_token"):
        v = _field(r, f"tokenizer.ggml.{k}")
        if v is not None:
            flags[k] = bool(v)
    if len(tokens) > n_vocab:
        tokens, types = tokens[:n_vocab], types[:n_vocab]
        scores = scores[:n_vocab] if scores is not None else None
    known = set(tokens)
    i = 0
    while len(tokens) < n_vocab:
        t = f"[benchpad{i}]"
        i += 1
        if t in known:
            continue
        tokens.append(t)
        types.append(TOKEN_NORMAL)
        if scores is not None:
            scores.append(-1e9)
    return Vocab(str(_field(r, "tokenizer.ggml.model")), _field(r, "tokenizer.ggml.pre"), tokens, types,
                 scores, None if merges is None else list(merges), ids, flags)


def _eog_rows(v: Vocab) -> list[int]:
    rows = {i for i, t in enumerate(v.types) if t == TOKEN_CONTROL}
    if "eos" in v.ids:
        rows.add(v.ids["eos"])
    return sorted(rows)


# ---- tensors ------------------------------------------------------------------------------------------


def _encode(x: np.ndarray, t: GGMLType) -> np.ndarray:
    if t == GGMLType.Q4_0:
        return quantize_q4_0(x)
    if t == GGMLType.Q8_0:
        return quantize_q8_0(x)
    if t == GGMLType.F16:
        return x.astype(np.float16).view(np.uint8).reshape(-1)
    return x.astype(np.float32).view(np.uint8).reshape(-1)


class Pool:
    """Random blocks of one type, quantized once, handed out cyclically."""

    def __init__(self, t: GGMLType, seed: int) -> None:
        rng = np.random.default_rng(seed)
        vals = rng.standard_normal(POOL_ELEMS, dtype=np.float32) * np.float32(0.02)
        self.data = _encode(vals, t)
        self.block_bytes = len(self.data) // (POOL_ELEMS // 32)
        self.zero_block = _encode(np.zeros(32, np.float32), t)
        self.rng = rng

    def chunks(self, nbytes: int, max_chunk: int = 1 << 24) -> Iterator[memoryview]:
        n = len(self.data)
        mv = self.data.data
        pos = int(self.rng.integers(0, n // self.block_bytes)) * self.block_bytes
        left = nbytes
        while left > 0:
            k = min(left, n - pos, max_chunk)
            yield mv[pos : pos + k]
            left -= k
            pos = (pos + k) % n


@dataclass
class _Tensor:
    name: str
    shape: tuple[int, ...]
    ggml_type: GGMLType
    kind: str  # "pool" | "ones" | "random" | "const"
    value: np.ndarray | None = None
    zero_rows: tuple[int, ...] = ()


def _llama3_rope_factors(head_dim: int, theta: float) -> np.ndarray:
    """Llama 3.2's rope scaling (factor 32, low 1, high 4, original context 8192) as per-frequency divisors."""
    factor, low, high, orig = 32.0, 1.0, 4.0, 8192
    inv = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    wavelen = 2 * np.pi / inv
    low_wl, high_wl = orig / low, orig / high
    smooth = (orig / wavelen - low) / (high - low)
    out = np.where(wavelen < high_wl, 1.0, np.where(wavelen > low_wl, factor, 1.0 / ((1 - smooth) / factor + smooth)))
    return out.astype(np.float32)


def plan(spec: ModelSpec, wtype: GGMLType, eog_rows: Sequence[int]) -> list[_Tensor]:
    """Tensors in converter order, with llama.cpp's names."""
    d, ff, hd, q, kv = spec.n_embd, spec.n_ff, spec.head_dim, spec.n_head * spec.head_dim, spec.n_head_kv * spec.head_dim
    zero = tuple(eog_rows)
    out = [_Tensor("token_embd.weight", (spec.n_vocab, d), wtype, "pool", zero_rows=zero if spec.tied else ())]
    if spec.llama3_rope:
        f = _llama3_rope_factors(hd, spec.rope_theta)
        out.append(_Tensor("rope_freqs.weight", f.shape, GGMLType.F32, "const", f))
    for i in range(spec.n_layer):
        p = f"blk.{i}."
        attn = spec.attn_layers is None or i in spec.attn_layers
        out.append(_Tensor(p + "attn_norm.weight", (d,), GGMLType.F32, "ones"))
        if attn:
            out += [
                _Tensor(p + "attn_q.weight", (q, d), wtype, "pool"),
                _Tensor(p + "attn_k.weight", (kv, d), wtype, "pool"),
                _Tensor(p + "attn_v.weight", (kv, d), wtype, "pool"),
            ]
            if spec.arch in ("qwen3", "lfm2"):
                out += [_Tensor(p + "attn_q_norm.weight", (hd,), GGMLType.F32, "ones"),
                        _Tensor(p + "attn_k_norm.weight", (hd,), GGMLType.F32, "ones")]
            out.append(_Tensor(p + "attn_output.weight", (d, q), wtype, "pool"))
        else:
            out += [
                _Tensor(p + "shortconv.in_proj.weight", (3 * d, d), wtype, "pool"),
                _Tensor(p + "shortconv.conv.weight", (d, spec.conv_l), GGMLType.F32, "random"),
                _Tensor(p + "shortconv.out_proj.weight", (d, d), wtype, "pool"),
            ]
        out += [
            _Tensor(p + "ffn_norm.weight", (d,), GGMLType.F32, "ones"),
            _Tensor(p + "ffn_gate.weight", (ff, d), wtype, "pool"),
            _Tensor(p + "ffn_up.weight", (ff, d), wtype, "pool"),
            _Tensor(p + "ffn_down.weight", (d, ff), wtype, "pool"),
        ]
    out.append(_Tensor("token_embd_norm.weight" if spec.arch == "lfm2" else "output_norm.weight", (d,),
                       GGMLType.F32, "ones"))
    if not spec.tied:
        out.append(_Tensor("output.weight", (spec.n_vocab, d), wtype, "pool", zero_rows=zero))
    return out


def _add_metadata(w: GGUFWriter, spec: ModelSpec, dtype: str, v: Vocab) -> None:
    a = spec.arch
    w.add_string("general.architecture", a)
    w.add_string("general.name", f"synthetic {spec.name} ({spec.like} shapes, random weights) v{GENERATOR_VERSION}")
    w.add_uint32("general.file_type", FILE_TYPE[dtype])
    w.add_uint32("general.quantization_version", 2)
    w.add_uint32(f"{a}.vocab_size", spec.n_vocab)
    w.add_uint32(f"{a}.context_length", spec.n_ctx)
    w.add_uint32(f"{a}.embedding_length", spec.n_embd)
    w.add_uint32(f"{a}.block_count", spec.n_layer)
    w.add_uint32(f"{a}.feed_forward_length", spec.n_ff)
    w.add_uint32(f"{a}.attention.head_count", spec.n_head)
    if spec.attn_layers is not None:
        kv = [spec.n_head_kv if i in spec.attn_layers else 0 for i in range(spec.n_layer)]
        w.add_array(f"{a}.attention.head_count_kv", kv, ValueType.INT32)
        w.add_uint32(f"{a}.shortconv.l_cache", spec.conv_l)
    else:
        w.add_uint32(f"{a}.attention.head_count_kv", spec.n_head_kv)
    w.add_uint32(f"{a}.attention.key_length", spec.head_dim)
    w.add_uint32(f"{a}.attention.value_length", spec.head_dim)
    w.add_float32(f"{a}.attention.layer_norm_rms_epsilon", spec.rms_eps)
    w.add_uint32(f"{a}.rope.dimension_count", spec.head_dim)
    w.add_float32(f"{a}.rope.freq_base", spec.rope_theta)
    w.add_string("tokenizer.ggml.model", v.model)
    if v.pre is not None:
        w.add_string("tokenizer.ggml.pre", v.pre)
    w.add_array("tokenizer.ggml.tokens", v.tokens, ValueType.STRING)
    if v.scores is not None:
        w.add_array("tokenizer.ggml.scores", v.scores, ValueType.FLOAT32)
    w.add_array("tokenizer.ggml.token_type", v.types, ValueType.INT32)
    if v.merges is not None:
        w.add_array("tokenizer.ggml.merges", v.merges, ValueType.STRING)
    for k, i in v.ids.items():
        w.add_uint32(f"tokenizer.ggml.{k}_token_id", i)
    for k, b in v.flags.items():
        w.add_bool(f"tokenizer.ggml.{k}", b)


def write_model(spec: ModelSpec, dtype: str, path: Path, seed: int = 0) -> None:
    wtype = DTYPES[dtype]
    v = load_vocab(spec.vocab, spec.n_vocab)
    tensors = plan(spec, wtype, _eog_rows(v))
    w = GGUFWriter()
    _add_metadata(w, spec, dtype, v)
    for t in tensors:
        w.add_tensor_info(t.name, t.shape, t.ggml_type)
    by_name = {t.name: t for t in tensors}
    pool = Pool(wtype, seed)
    rng = np.random.default_rng(seed + 1)

    def data(info: TensorInfo) -> Iterator[Any]:
        t = by_name[info.name]
        if t.kind == "ones":
            yield np.ones(t.shape, np.float32)
        elif t.kind == "random":
            yield (rng.standard_normal(t.shape, dtype=np.float32) * np.float32(0.1))
        elif t.kind == "const":
            assert t.value is not None
            yield t.value
        else:
            row = info.nbytes // t.shape[0]
            zero_row = np.tile(pool.zero_block, row // len(pool.zero_block))
            at = 0
            for r in t.zero_rows:
                yield from pool.chunks(r * row - at)
                yield zero_row
                at = (r + 1) * row
            yield from pool.chunks(info.nbytes - at)

    path.parent.mkdir(parents=True, exist_ok=True)
    w.write(path, data)


def is_current(path: Path) -> bool:
    """Whether `path` exists and was written by this generator version."""
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    return f"v{GENERATOR_VERSION}".encode() in head and b"synthetic " in head


def ensure(names: Sequence[str], dtypes: Sequence[str], force: bool = False, quiet: bool = False) -> list[Path]:
    """Writes the missing files; returns their paths (models x dtypes order)."""
    paths = []
    for n in names:
        spec = MODELS[n]
        for dt in dtypes:
            p = model_path(spec, dt)
            if force or not is_current(p):
                t0 = time.perf_counter()
                write_model(spec, dt, p)
                if not quiet:
                    print(f"wrote {p} ({p.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s",
                          file=sys.stderr)
            paths.append(p)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma list of {', '.join(MODELS)}")
    ap.add_argument("--dtypes", default="q4_0,q8_0", help="comma list of q4_0, q8_0, f16")
    ap.add_argument("--force", action="store_true", help="rewrite files that are already cached")
    args = ap.parse_args(argv)
    names = [m for m in args.models.split(",") if m]
    dtypes = [d for d in args.dtypes.split(",") if d]
    bad = [m for m in names if m not in MODELS] + [d for d in dtypes if d not in DTYPES]
    if bad:
        ap.error(f"unknown model or dtype: {', '.join(bad)}")
    for p in ensure(names, dtypes, args.force):
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
