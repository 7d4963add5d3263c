"""Convert a Hugging Face checkpoint (config.json + *.safetensors + tokenizer.json) into a GGUF file.

Only numpy is needed at runtime: safetensors files are parsed here and the GGUF file is written by
`cactus._gguf_writer`. Names, metadata keys and quantization block layouts follow the llama.cpp
conventions, so the output can be read by llama.cpp-compatible tools as well as by libcactus.

    python -m cactus convert HF_DIR OUT.gguf --dtype q8_0

Supported architectures: LlamaForCausalLM (gguf arch "llama"), Qwen2ForCausalLM ("qwen2"),
Qwen3ForCausalLM ("qwen3"), Lfm2ForCausalLM ("lfm2"), Gemma3ForCausalLM ("gemma3", text only).
Output types: f32, f16, bf16, q8_0, q4_0.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import re
import struct
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._gguf_writer import GGMLType, GGUFWriter, TensorInfo, ValueType

__all__ = [
    "DTYPES",
    "ConvertError",
    "convert",
    "f32_to_bf16",
    "main",
    "permute_qk",
    "quantize_q4_0",
    "quantize_q8_0",
    "unpermute_qk",
]


class ConvertError(Exception):
    """Raised when a checkpoint cannot be converted; the message says why."""


# ------------------------------------------------------------------------------------------------------
# Output types

DTYPES = ("f32", "f16", "bf16", "q8_0", "q4_0")

_DTYPE_GGML = {
    "f32": GGMLType.F32,
    "f16": GGMLType.F16,
    "bf16": GGMLType.BF16,
    "q8_0": GGMLType.Q8_0,
    "q4_0": GGMLType.Q4_0,
}

# llama.cpp's llama_ftype values
_DTYPE_FILE_TYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 7, "bf16": 32}

GGML_QUANT_VERSION = 2
QK = 32  # block size of q8_0 and q4_0


def f32_to_bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (uint16), rounding to nearest even; NaN stays a quiet NaN."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    is_nan = (bits & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
    lsb = (bits >> np.uint32(16)) & np.uint32(1)
    rounded = (bits.astype(np.uint64) + np.uint64(0x7FFF) + lsb.astype(np.uint64)) >> np.uint64(16)
    out = rounded.astype(np.uint16)
    if is_nan.any():
        out = np.where(is_nan, ((bits >> np.uint32(16)) | np.uint32(0x0040)).astype(np.uint16), out)
    return out


def _round_half_away(v: np.ndarray) -> np.ndarray:
    """C roundf() on float32 values, exactly (no x+0.5 double rounding)."""
    a = np.abs(v)
    f = np.floor(a)
    r = f + (a - f >= np.float32(0.5)).astype(np.float32)
    return np.copysign(r, v)


def quantize_q8_0(x: np.ndarray) -> np.ndarray:
    """Quantize to ggml's block_q8_0 (fp16 scale d = amax/127, then 32 int8 q = round(x/d)).

    `x` has any shape whose last dimension is a multiple of 32; returns the blocks as a flat uint8 array.
    """
    blocks = np.asarray(x, dtype=np.float32).reshape(-1, QK)
    d = np.abs(blocks).max(axis=1, keepdims=True) / np.float32(127)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)
    q = _round_half_away(blocks * inv).astype(np.int8)
    out = np.empty((blocks.shape[0], 2 + QK), dtype=np.uint8)
    out[:, :2] = d.astype(np.float16).view(np.uint8)
    out[:, 2:] = q.view(np.uint8)
    return out.reshape(-1)


def quantize_q4_0(x: np.ndarray) -> np.ndarray:
    """Quantize to ggml's block_q4_0.

    Per block of 32: `m` is the element of largest magnitude (signed, first one on ties), d = m / -8,
    q = min(15, trunc(x/d + 8.5)); stored as fp16 d then 16 bytes where byte j holds element j in its
    low nibble and element j + 16 in its high nibble.
    """
    blocks = np.asarray(x, dtype=np.float32).reshape(-1, QK)
    idx = np.abs(blocks).argmax(axis=1)[:, None]
    m = np.take_along_axis(blocks, idx, axis=1)
    d = m / np.float32(-8)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)
    q = np.trunc(blocks * inv + np.float32(8.5))
    q = np.minimum(q, np.float32(15)).astype(np.uint8)
    out = np.empty((blocks.shape[0], 2 + QK // 2), dtype=np.uint8)
    out[:, :2] = d.astype(np.float16).view(np.uint8)
    out[:, 2:] = q[:, : QK // 2] | (q[:, QK // 2 :] << np.uint8(4))
    return out.reshape(-1)


def _encode(x: np.ndarray, ggml_type: GGMLType) -> np.ndarray:
    if ggml_type == GGMLType.F32:
        return np.ascontiguousarray(x, dtype=np.float32)
    if ggml_type == GGMLType.F16:
        return np.ascontiguousarray(x, dtype=np.float32).astype(np.float16)
    if ggml_type == GGMLType.BF16:
        return f32_to_bf16(x)
    if ggml_type == GGMLType.Q8_0:
        return quantize_q8_0(x)
    if ggml_type == GGMLType.Q4_0:
        return quantize_q4_0(x)
    raise ConvertError(f"cannot encode {ggml_type.name}")


# ------------------------------------------------------------------------------------------------------
# safetensors

_ST_DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": "<u2", "F64": "<f8"}


@dataclass(frozen=True)
class _StEntry:
    path: str
    dtype: str
    shape: tuple[int, ...]
    start: int  # absolute file offset
    end: int


class SafetensorsCheckpoint:
    """The tensors of a (possibly sharded) safetensors checkpoint, read lazily through np.memmap."""

    def __init__(self, hf_dir: Path) -> None:
        files = self._shard_files(hf_dir)
        self.entries: dict[str, _StEntry] = {}
        for f in files:
            for name, e in self._read_header(f).items():
                if name in self.entries:
                    raise ConvertError(f"tensor {name!r} appears in more than one safetensors file")
                self.entries[name] = e
        self._maps: dict[str, np.memmap] = {}

    @staticmethod
    def _shard_files(hf_dir: Path) -> list[Path]:
        index = hf_dir / "model.safetensors.index.json"
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            except (ValueError, KeyError) as e:
                raise ConvertError(f"{index}: not a valid safetensors index ({e})") from e
            names = sorted(set(weight_map.values()))
            missing = [n for n in names if not (hf_dir / n).is_file()]
            if missing:
                raise ConvertError(f"{index} lists missing shard file(s): {', '.join(missing)}")
            return [hf_dir / n for n in names]
        single = hf_dir / "model.safetensors"
        if single.is_file():
            return [single]
        files = sorted(hf_dir.glob("*.safetensors"))
        if not files:
            raise ConvertError(f"no *.safetensors weights in {hf_dir} (only safetensors checkpoints are supported)")
        return files

    @staticmethod
    def _read_header(path: Path) -> dict[str, _StEntry]:
        size = path.stat().st_size
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) != 8:
                raise ConvertError(f"{path}: truncated safetensors file")
            (n,) = struct.unpack("<Q", raw)
            if n > size - 8 or n > 100 * 1024 * 1024:
                raise ConvertError(f"{path}: bad safetensors header length {n}")
            try:
                header = json.loads(f.read(n).decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                raise ConvertError(f"{path}: bad safetensors header ({e})") from e
        base = 8 + n
        out: dict[str, _StEntry] = {}
        for name, meta in header.items():
            if name == "__metadata__":
                continue
            dtype = meta.get("dtype")
            shape = tuple(int(d) for d in meta.get("shape", []))
            start, end = (int(v) for v in meta["data_offsets"])
            if base + end > size or end < start:
                raise ConvertError(f"{path}: tensor {name!r} lies outside the file")
            out[name] = _StEntry(str(path), str(dtype), shape, base + start, base + end)
        return out

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def names(self) -> list[str]:
        return list(self.entries)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.entries[name].shape

    def load(self, name: str) -> np.ndarray:
        """The tensor as a float32 array (a copy for F16/BF16/F64, a read-only view for F32)."""
        e = self.entries[name]
        if e.dtype not in _ST_DTYPES:
            raise ConvertError(
                f"tensor {name!r} has unsupported safetensors dtype {e.dtype} (supported: F32, F16, BF16, F64)"
            )
        np_dtype = np.dtype(_ST_DTYPES[e.dtype])
        count = int(np.prod(e.shape, dtype=np.int64)) if e.shape else 1
        if count * np_dtype.itemsize != e.end - e.start:
            raise ConvertError(f"tensor {name!r}: byte size does not match dtype {e.dtype} and shape {e.shape}")
        mm = self._maps.get(e.path)
        if mm is None:
            mm = np.memmap(e.path, dtype=np.uint8, mode="r")
            self._maps[e.path] = mm
        raw = mm[e.start : e.end].view(np_dtype).reshape(e.shape)
        if e.dtype == "F32":
            return raw
        if e.dtype == "BF16":
            return (raw.astype(np.uint32) << np.uint32(16)).view(np.float32)
        return raw.astype(np.float32)


# ------------------------------------------------------------------------------------------------------
# Architectures

_ARCHS = {
    "LlamaForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "Lfm2ForCausalLM": "lfm2",
    "LFM2ForCausalLM": "lfm2",
    "Gemma3ForCausalLM": "gemma3",
}
_MODEL_TYPES = {
    "llama": "LlamaForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "lfm2": "Lfm2ForCausalLM",
    "gemma3_text": "Gemma3ForCausalLM",
}

# (HF name under model.layers.N., GGUF name under blk.N.)
_LAYER_WEIGHTS = [
    ("input_layernorm.weight", "attn_norm.weight"),
    ("self_attn.q_proj.weight", "attn_q.weight"),
    ("self_attn.k_proj.weight", "attn_k.weight"),
    ("self_attn.v_proj.weight", "attn_v.weight"),
    ("self_attn.o_proj.weight", "attn_output.weight"),
    ("post_attention_layernorm.weight", "ffn_norm.weight"),
    ("mlp.gate_proj.weight", "ffn_gate.weight"),
    ("mlp.up_proj.weight", "ffn_up.weight"),
    ("mlp.down_proj.weight", "ffn_down.weight"),
]
_LAYER_QK_NORM = [
    ("self_attn.q_norm.weight", "attn_q_norm.weight"),
    ("self_attn.k_norm.weight", "attn_k_norm.weight"),
]
_LAYER_QKV_BIAS = [
    ("self_attn.q_proj.bias", "attn_q.bias"),
    ("self_attn.k_proj.bias", "attn_k.bias"),
    ("self_attn.v_proj.bias", "attn_v.bias"),
]
_LAYER_OPTIONAL_BIAS = [
    ("self_attn.o_proj.bias", "attn_output.bias"),
    ("mlp.gate_proj.bias", "ffn_gate.bias"),
    ("mlp.up_proj.bias", "ffn_up.bias"),
    ("mlp.down_proj.bias", "ffn_down.bias"),
]
# order of a block's tensors in the file (each bias right after its weight)
_LAYER_ORDER = [
    "attn_norm.weight", "attn_q.weight", "attn_q.bias", "attn_k.weight", "attn_k.bias", "attn_v.weight",
    "attn_v.bias", "attn_q_norm.weight", "attn_k_norm.weight", "attn_output.weight", "attn_output.bias",
    "ffn_norm.weight", "ffn_gate.weight", "ffn_gate.bias", "ffn_up.weight", "ffn_up.bias", "ffn_down.weight",
    "ffn_down.bias",
]
_IGNORED = re.compile(r"(^|\.)rotary_emb\.inv_freq$")


@dataclass
class _Hparams:
    arch: str
    n_vocab: int
    n_ctx: int
    n_embd: int
    n_layer: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim: int
    rms_eps: float
    rope_theta: float
    rope_scaling: dict[str, Any] | None
    tied: bool | None  # None: not stated in config.json
    # lfm2: KV heads of each block, 0 for a short-convolution block (llama.cpp's per-layer array)
    layer_kv: list[int] | None = None
    conv_l_cache: int = 0  # lfm2: kernel length of the short convolution
    # gemma3: which blocks attend within a sliding window, its length, and their own RoPE base
    swa_layers: list[bool] | None = None
    sliding_window: int = 0
    rope_theta_swa: float = 10000.0
    attn_scale: float | None = None  # gemma3: query_pre_attn_scalar ** -0.5
    final_softcap: float | None = None


def _load_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConvertError(f"cannot read {what} {path}: {e}") from e


def _need(cfg: dict[str, Any], key: str) -> Any:
    if cfg.get(key) is None:
        raise ConvertError(f"config.json has no {key!r}")
    return cfg[key]


def _arch_of(cfg: dict[str, Any]) -> str:
    archs = cfg.get("architectures") or []
    if isinstance(archs, str):
        archs = [archs]
    if not archs and cfg.get("model_type") in _MODEL_TYPES:
        archs = [_MODEL_TYPES[cfg["model_type"]]]
    supported = [a for a in archs if a in _ARCHS]
    if not supported:
        shown = ", ".join(map(str, archs)) or f"model_type={cfg.get('model_type')!r}"
        raise ConvertError(f"unsupported architecture {shown}; supported: {', '.join(_ARCHS)}")
    return _ARCHS[supported[0]]


def _rope_scaling(scaling: Any) -> dict[str, Any] | None:
    if not isinstance(scaling, dict):
        return None
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    return None if kind in (None, "default") else dict(scaling, rope_type=kind)


def _hparams(cfg: dict[str, Any]) -> _Hparams:
    arch = _arch_of(cfg)
    n_embd = int(_need(cfg, "hidden_size"))
    n_head = int(_need(cfg, "num_attention_heads"))
    n_head_kv = int(cfg.get("num_key_value_heads") or n_head)
    head_dim = int(cfg.get("head_dim") or n_embd // n_head)

    # transformers >= 5 writes rope_theta / rope scaling inside "rope_parameters"
    rope_params = cfg.get("rope_parameters") if isinstance(cfg.get("rope_parameters"), dict) else {}
    theta = cfg.get("rope_theta")
    if theta is None:
        theta = rope_params.get("rope_theta", 1000000.0 if arch == "lfm2" else 10000.0)
    scaling = cfg.get("rope_scaling")
    if not scaling and rope_params:
        scaling = rope_params

    tied = cfg.get("tie_word_embeddings", cfg.get("tie_embedding"))
    hp = _Hparams(
        arch=arch,
        n_vocab=int(_need(cfg, "vocab_size")),
        n_ctx=int(_need(cfg, "max_position_embeddings")),
        n_embd=n_embd,
        n_layer=int(_need(cfg, "num_hidden_layers")),
        n_ff=_lfm2_ff(cfg) if arch == "lfm2" else int(_need(cfg, "intermediate_size")),
        n_head=n_head,
        n_head_kv=n_head_kv,
        head_dim=head_dim,
        rms_eps=float(cfg.get("norm_eps", 1e-5) if arch == "lfm2" else cfg.get("rms_norm_eps", 1e-6)),
        rope_theta=float(theta),
        rope_scaling=_rope_scaling(scaling),
        tied=None if tied is None else bool(tied),
    )
    if arch == "lfm2":
        _lfm2_hparams(cfg, hp)
    elif arch == "gemma3":
        _gemma3_hparams(cfg, hp)
    return hp


def _lfm2_ff(cfg: dict[str, Any]) -> int:
    """The SwiGLU width LFM2 really uses: 2/3 of the configured one, times the multiplier, rounded up to
    `block_multiple_of` (transformers rounds only when a multiplier is set; llama.cpp always does)."""
    ff = int(cfg.get("block_ff_dim") or _need(cfg, "intermediate_size"))
    if cfg.get("block_auto_adjust_ff_dim", True):
        ff = int(2 * ff / 3)
        mult = cfg.get("block_ffn_dim_multiplier", 1.0)
        if mult is not None:
            ff = int(mult * ff)
            m = int(cfg.get("block_multiple_of", 256))
            ff = m * ((ff + m - 1) // m)
    return ff


def _lfm2_hparams(cfg: dict[str, Any], hp: _Hparams) -> None:
    types = cfg.get("layer_types")
    if types is None:
        full = cfg.get("full_attn_idxs")
        full = range(hp.n_layer) if full is None else full
        types = ["full_attention" if i in full else "conv" for i in range(hp.n_layer)]
    if len(types) != hp.n_layer:
        raise ConvertError(f"config.json has {len(types)} layer_types for {hp.n_layer} layers")
    if cfg.get("conv_bias"):
        raise ConvertError("LFM2 with conv_bias = true is not supported (llama.cpp has no tensor for it)")
    if hp.head_dim * hp.n_head != hp.n_embd:
        raise ConvertError("LFM2 attention needs head_dim * num_attention_heads == hidden_size")
    hp.layer_kv = [0 if t == "conv" else hp.n_head_kv for t in types]
    hp.conv_l_cache = int(cfg.get("conv_L_cache", 3))
    if hp.conv_l_cache < 1:
        raise ConvertError(f"conv_L_cache {hp.conv_l_cache} must be at least 1")


def _gemma3_hparams(cfg: dict[str, Any], hp: _Hparams) -> None:
    act = cfg.get("hidden_activation") or cfg.get("hidden_act") or "gelu_pytorch_tanh"
    if act not in ("gelu_pytorch_tanh", "gelu_tanh"):
        raise ConvertError(
            f"Gemma 3 with hidden_activation {act!r} is not supported (only gelu_pytorch_tanh)"
        )
    if cfg.get("attention_bias"):
        raise ConvertError("Gemma 3 with attention_bias = true is not supported")
    if cfg.get("use_bidirectional_attention"):
        raise ConvertError("Gemma 3 with bidirectional attention (an embedding model) is not supported")
    # transformers >= 5 nests RoPE per layer type; older configs use rope_theta / rope_local_base_freq
    params = cfg.get("rope_parameters") if isinstance(cfg.get("rope_parameters"), dict) else {}
    full, local = params.get("full_attention"), params.get("sliding_attention")
    if isinstance(full, dict) or isinstance(local, dict):
        full, local = full or {}, local or {}
        hp.rope_theta = float(full.get("rope_theta", cfg.get("rope_theta", 1000000.0)))
        hp.rope_scaling = _rope_scaling(full)
    else:
        local = {}
        if cfg.get("rope_theta") is None:
            hp.rope_theta = 1000000.0
    hp.rope_theta_swa = float(local.get("rope_theta", cfg.get("rope_local_base_freq", 10000.0)))
    if _rope_scaling(local):
        raise ConvertError("RoPE scaling on Gemma 3's sliding-window layers is not supported")

    window = cfg.get("sliding_window")
    types = cfg.get("layer_types")
    if types is None:
        pattern = int(cfg.get("sliding_window_pattern", 6))
        types = ["sliding_attention" if pattern and (i + 1) % pattern else "full_attention"
                 for i in range(hp.n_layer)]
    if len(types) != hp.n_layer:
        raise ConvertError(f"config.json has {len(types)} layer_types for {hp.n_layer} layers")
    hp.swa_layers = [t == "sliding_attention" and bool(window) for t in types]
    hp.sliding_window = int(window or 0)
    hp.attn_scale = float(cfg.get("query_pre_attn_scalar") or hp.head_dim) ** -0.5
    if cfg.get("final_logit_softcapping"):
        hp.final_softcap = float(cfg["final_logit_softcapping"])
    if cfg.get("attn_logit_softcapping"):
        # transformers' Gemma 3 never applies it and llama.cpp rejects it, so it is not written.
        warnings.warn("ignoring attn_logit_softcapping: Gemma 3 does not use it", stacklevel=4)


def permute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """Reorder q/k projection rows from HF's rotate-half layout to llama.cpp's interleaved-pair layout.

    Within each head the rows (i, i + head_dim/2) become adjacent; works for weights (rows, in) and
    biases (rows,).
    """
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of `permute_qk`."""
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _llama3_rope_factors(hp: _Hparams) -> np.ndarray:
    s = hp.rope_scaling or {}
    factor = float(s.get("factor", 8.0))
    low = float(s.get("low_freq_factor", 1.0))
    high = float(s.get("high_freq_factor", 4.0))
    old_ctx = float(s.get("original_max_position_embeddings", 8192))
    low_wavelen = old_ctx / low
    high_wavelen = old_ctx / high
    out = []
    for i in range(0, hp.head_dim, 2):
        freq = 1.0 / (hp.rope_theta ** (i / hp.head_dim))
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.asarray(out, dtype=np.float32)


@dataclass
class _Plan:
    gguf_name: str
    shape: tuple[int, ...]
    ggml_type: GGMLType
    load: Callable[[], np.ndarray]


class _Planner:
    """Collects the output tensors in file order and checks the checkpoint against them."""

    def __init__(self, hp: _Hparams, ckpt: SafetensorsCheckpoint, dtype: str) -> None:
        self.hp, self.ckpt, self.want = hp, ckpt, _DTYPE_GGML[dtype]
        self.plans: list[_Plan] = []
        self.used: set[str] = set()

    def out_type(self, shape: tuple[int, ...]) -> GGMLType:
        if len(shape) < 2:
            return GGMLType.F32
        if self.want in (GGMLType.Q8_0, GGMLType.Q4_0) and shape[-1] % QK != 0:
            return GGMLType.F16  # llama.cpp's fallback for rows that do not fill whole blocks
        return self.want

    def require(self, names: list[str]) -> None:
        missing = [n for n in names if n not in self.ckpt]
        if missing:
            more = f" (and {len(missing) - 8} more)" if len(missing) > 8 else ""
            raise ConvertError(f"missing tensor(s) in checkpoint: {', '.join(missing[:8])}{more}")

    def add(self, hf: str, gguf: str, expect: tuple[int, ...] | None = None,
            transform: Callable[[np.ndarray], np.ndarray] | None = None,
            out_shape: tuple[int, ...] | None = None, f32: bool = False) -> None:
        """Plan `hf` as `gguf`; `transform` maps the loaded array to one of `out_shape` (default: the same
        shape); `f32` keeps a 2-D tensor in float32 whatever the output type (as llama.cpp does for some)."""
        shape = self.ckpt.shape(hf)
        if expect is not None and shape != expect:
            raise ConvertError(f"tensor {hf!r} has shape {shape}, expected {expect} from config.json")
        self.used.add(hf)
        ckpt = self.ckpt

        def load() -> np.ndarray:
            w = ckpt.load(hf)
            return transform(w) if transform is not None else w

        shape = out_shape or shape
        self.plans.append(_Plan(gguf, shape, GGMLType.F32 if f32 else self.out_type(shape), load))

    def tied(self) -> bool:
        tied = self.hp.tied
        if tied is None:
            tied = "lm_head.weight" not in self.ckpt
        if not tied and "lm_head.weight" not in self.ckpt:
            self.require(["lm_head.weight"])
        return tied

    def add_output(self, tied: bool, n_vocab_rows: int) -> None:
        if tied:
            self.used.add("lm_head.weight")
        else:
            self.add("lm_head.weight", "output.weight", expect=(n_vocab_rows, self.hp.n_embd))

    def finish(self) -> list[_Plan]:
        unused = [n for n in self.ckpt.names() if n not in self.used and not _IGNORED.search(n)]
        if unused:
            more = f" (and {len(unused) - 8} more)" if len(unused) > 8 else ""
            shown = ", ".join(sorted(unused)[:8])
            raise ConvertError(f"checkpoint has tensor(s) that {self.hp.arch} does not use: {shown}{more}")
        return self.plans


def _plan_tensors(hp: _Hparams, ckpt: SafetensorsCheckpoint, dtype: str) -> list[_Plan]:
    pl = _Planner(hp, ckpt, dtype)
    if hp.arch == "lfm2":
        _plan_lfm2(pl)
    elif hp.arch == "gemma3":
        _plan_gemma3(pl)
    else:
        _plan_llama(pl)
    return pl.finish()


def _plan_llama(pl: _Planner) -> None:
    hp, ckpt = pl.hp, pl.ckpt
    required = ["model.embed_tokens.weight", "model.norm.weight"]
    for i in range(hp.n_layer):
        p = f"model.layers.{i}."
        required += [p + hf for hf, _ in _LAYER_WEIGHTS]
        if hp.arch == "qwen3":
            required += [p + hf for hf, _ in _LAYER_QK_NORM]
        if hp.arch == "qwen2":
            required += [p + hf for hf, _ in _LAYER_QKV_BIAS]
    pl.require(required)
    tied = pl.tied()

    q_rows, kv_rows = hp.n_head * hp.head_dim, hp.n_head_kv * hp.head_dim
    n_vocab_rows = ckpt.shape("model.embed_tokens.weight")[0]
    pl.add("model.embed_tokens.weight", "token_embd.weight", expect=(n_vocab_rows, hp.n_embd))
    if hp.rope_scaling and hp.rope_scaling.get("rope_type") == "llama3":
        factors = _llama3_rope_factors(hp)
        pl.plans.append(_Plan("rope_freqs.weight", factors.shape, GGMLType.F32, lambda: factors))

    expect_shapes = {
        "attn_norm.weight": (hp.n_embd,),
        "attn_q.weight": (q_rows, hp.n_embd),
        "attn_k.weight": (kv_rows, hp.n_embd),
        "attn_v.weight": (kv_rows, hp.n_embd),
        "attn_output.weight": (hp.n_embd, q_rows),
        "ffn_norm.weight": (hp.n_embd,),
        "ffn_gate.weight": (hp.n_ff, hp.n_embd),
        "ffn_up.weight": (hp.n_ff, hp.n_embd),
        "ffn_down.weight": (hp.n_embd, hp.n_ff),
        "attn_q_norm.weight": (hp.head_dim,),
        "attn_k_norm.weight": (hp.head_dim,),
        "attn_q.bias": (q_rows,),
        "attn_k.bias": (kv_rows,),
        "attn_v.bias": (kv_rows,),
        "attn_output.bias": (hp.n_embd,),
        "ffn_gate.bias": (hp.n_ff,),
        "ffn_up.bias": (hp.n_ff,),
        "ffn_down.bias": (hp.n_embd,),
    }
    permute = hp.arch == "llama"
    optional = _LAYER_QK_NORM + _LAYER_QKV_BIAS + _LAYER_OPTIONAL_BIAS
    for i in range(hp.n_layer):
        p = f"model.layers.{i}."
        names = list(_LAYER_WEIGHTS) + [x for x in optional if p + x[0] in ckpt]
        names.sort(key=lambda x: _LAYER_ORDER.index(x[1]))
        for hf, gg in names:
            heads = 0
            if permute and gg.startswith("attn_q."):
                heads = hp.n_head
            elif permute and gg.startswith("attn_k."):
                heads = hp.n_head_kv
            transform = functools.partial(permute_qk, n_head=heads) if heads else None
            pl.add(p + hf, f"blk.{i}.{gg}", expect_shapes[gg], transform)

    pl.add("model.norm.weight", "output_norm.weight", expect=(hp.n_embd,))
    pl.add_output(tied, n_vocab_rows)


# LFM2 blocks: (HF name under model.layers.N., GGUF name under blk.N.)
_LFM2_COMMON = [
    ("operator_norm.weight", "attn_norm.weight"),
    ("ffn_norm.weight", "ffn_norm.weight"),
    ("feed_forward.w1.weight", "ffn_gate.weight"),
    ("feed_forward.w3.weight", "ffn_up.weight"),
    ("feed_forward.w2.weight", "ffn_down.weight"),
]
_LFM2_ATTN = [
    ("self_attn.q_proj.weight", "attn_q.weight"),
    ("self_attn.k_proj.weight", "attn_k.weight"),
    ("self_attn.v_proj.weight", "attn_v.weight"),
    ("self_attn.q_layernorm.weight", "attn_q_norm.weight"),
    ("self_attn.k_layernorm.weight", "attn_k_norm.weight"),
    ("self_attn.out_proj.weight", "attn_output.weight"),
]
_LFM2_CONV = [
    ("conv.in_proj.weight", "shortconv.in_proj.weight"),
    ("conv.conv.weight", "shortconv.conv.weight"),
    ("conv.out_proj.weight", "shortconv.out_proj.weight"),
]


def _squeeze_conv(w: np.ndarray) -> np.ndarray:
    """HF's depthwise Conv1d weight (channels, 1, kernel) -> llama.cpp's 2-D (channels, kernel)."""
    return w.reshape(w.shape[0], w.shape[2])


def _plan_lfm2(pl: _Planner) -> None:
    hp, ckpt = pl.hp, pl.ckpt
    assert hp.layer_kv is not None
    d, ff, hd, L = hp.n_embd, hp.n_ff, hp.head_dim, hp.conv_l_cache
    required = ["model.embed_tokens.weight", "model.embedding_norm.weight"]
    for i, kv in enumerate(hp.layer_kv):
        block = _LFM2_COMMON[:2] + (_LFM2_ATTN if kv else _LFM2_CONV) + _LFM2_COMMON[2:]
        required += [f"model.layers.{i}.{hf}" for hf, _ in block]
    pl.require(required)
    tied = pl.tied()
    n_vocab_rows = ckpt.shape("model.embed_tokens.weight")[0]
    pl.add("model.embed_tokens.weight", "token_embd.weight", expect=(n_vocab_rows, d))
    shapes = {
        "attn_norm.weight": (d,), "ffn_norm.weight": (d,), "ffn_gate.weight": (ff, d),
        "ffn_up.weight": (ff, d), "ffn_down.weight": (d, ff), "attn_q.weight": (hp.n_head * hd, d),
        "attn_k.weight": (hp.n_head_kv * hd, d), "attn_v.weight": (hp.n_head_kv * hd, d),
        "attn_q_norm.weight": (hd,), "attn_k_norm.weight": (hd,),
        "attn_output.weight": (d, hp.n_head * hd), "shortconv.in_proj.weight": (3 * d, d),
        "shortconv.conv.weight": (d, 1, L), "shortconv.out_proj.weight": (d, d),
    }
    for i, kv in enumerate(hp.layer_kv):
        block = _LFM2_COMMON[:1] + (_LFM2_ATTN if kv else _LFM2_CONV) + _LFM2_COMMON[1:]
        for hf, gg in block:
            if gg == "shortconv.conv.weight":
                # the convolution kernel stays float32 in every output type, as in llama.cpp
                pl.add(f"model.layers.{i}.{hf}", f"blk.{i}.{gg}", shapes[gg], _squeeze_conv, (d, L), f32=True)
            else:
                pl.add(f"model.layers.{i}.{hf}", f"blk.{i}.{gg}", shapes[gg])
    # the final norm is called embedding_norm in HF and token_embd_norm in llama.cpp
    pl.add("model.embedding_norm.weight", "token_embd_norm.weight", expect=(d,))
    pl.add_output(tied, n_vocab_rows)


# Gemma 3 blocks: (HF name under model.layers.N., GGUF name under blk.N.)
_GEMMA3_LAYER = [
    ("input_layernorm.weight", "attn_norm.weight"),
    ("self_attn.q_proj.weight", "attn_q.weight"),
    ("self_attn.k_proj.weight", "attn_k.weight"),
    ("self_attn.v_proj.weight", "attn_v.weight"),
    ("self_attn.q_norm.weight", "attn_q_norm.weight"),
    ("self_attn.k_norm.weight", "attn_k_norm.weight"),
    ("self_attn.o_proj.weight", "attn_output.weight"),
    ("post_attention_layernorm.weight", "post_attention_norm.weight"),
    ("pre_feedforward_layernorm.weight", "ffn_norm.weight"),
    ("mlp.gate_proj.weight", "ffn_gate.weight"),
    ("mlp.up_proj.weight", "ffn_up.weight"),
    ("mlp.down_proj.weight", "ffn_down.weight"),
    ("post_feedforward_layernorm.weight", "post_ffw_norm.weight"),
]


def _gemma_norm(w: np.ndarray) -> np.ndarray:
    """Gemma's RMSNorm scales by (1 + w); llama.cpp stores the 1 + w it multiplies by, in float32."""
    return np.asarray(w, dtype=np.float32) + np.float32(1.0)


def _plan_gemma3(pl: _Planner) -> None:
    hp, ckpt = pl.hp, pl.ckpt
    d, ff, q, kv = hp.n_embd, hp.n_ff, hp.n_head * hp.head_dim, hp.n_head_kv * hp.head_dim
    required = ["model.embed_tokens.weight", "model.norm.weight"]
    for i in range(hp.n_layer):
        required += [f"model.layers.{i}.{hf}" for hf, _ in _GEMMA3_LAYER]
    pl.require(required)
    tied = pl.tied()
    n_vocab_rows = ckpt.shape("model.embed_tokens.weight")[0]
    pl.add("model.embed_tokens.weight", "token_embd.weight", expect=(n_vocab_rows, d))
    shapes = {
        "attn_q.weight": (q, d), "attn_k.weight": (kv, d), "attn_v.weight": (kv, d),
        "attn_q_norm.weight": (hp.head_dim,), "attn_k_norm.weight": (hp.head_dim,),
        "attn_output.weight": (d, q),
        "ffn_gate.weight": (ff, d), "ffn_up.weight": (ff, d), "ffn_down.weight": (d, ff),
    }
    for i in range(hp.n_layer):
        for hf, gg in _GEMMA3_LAYER:
            norm = hf.endswith("norm.weight")
            transform = _gemma_norm if norm else None
            pl.add(f"model.layers.{i}.{hf}", f"blk.{i}.{gg}", shapes.get(gg, (d,)), transform)
    pl.add("model.norm.weight", "output_norm.weight", expect=(d,), transform=_gemma_norm)
    pl.add_output(tied, n_vocab_rows)


# ------------------------------------------------------------------------------------------------------
# Tokenizer

LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED, TOKEN_BYTE = 1, 2, 3, 4, 5, 6
_BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")


def _flatten(node: Any) -> list[dict[str, Any]]:
    """Components of a (possibly Sequence) normalizer / pre-tokenizer, in order."""
    if not isinstance(node, dict):
        return []
    if node.get("type") == "Sequence":
        out: list[dict[str, Any]] = []
        for child in node.get("pretokenizers") or node.get("normalizers") or []:
            out += _flatten(child)
        return out
    return [node]


def _detect_pre(tok: dict[str, Any]) -> str:
    parts = _flatten(tok.get("pre_tokenizer"))
    kinds = [p.get("type") for p in parts]
    if kinds == ["ByteLevel"] and parts[0].get("use_regex", True):
        return "gpt-2"  # llama.cpp's spelling (LLAMA_VOCAB_PRE_TYPE_GPT2)
    splits = [p for p in parts if p.get("type") == "Split"]
    if len(splits) == 1 and kinds[-1] == "ByteLevel" and not parts[-1].get("use_regex", True):
        pattern = splits[0].get("pattern") or {}
        regex = pattern.get("Regex") if isinstance(pattern, dict) else None
        if regex == LLAMA3_REGEX:
            return "llama-bpe"
        if regex == QWEN2_REGEX:
            return "qwen2"
    warnings.warn(
        f"unrecognised pre-tokenizer {kinds}; writing tokenizer.ggml.pre = 'default'", stacklevel=3
    )
    return "default"


def _token_content(v: Any) -> str | None:
    if isinstance(v, str):
        return v
    if isinstance(v, dict) and isinstance(v.get("content"), str):
        return v["content"]
    return None


def _merge_strings(merges: Sequence[Any]) -> list[str]:
    out = []
    for m in merges:
        if isinstance(m, str):
            out.append(m)
        elif isinstance(m, (list, tuple)) and len(m) == 2:
            out.append(f"{m[0]} {m[1]}")
        else:
            raise ConvertError(f"tokenizer.json: unrecognised merge entry {m!r}")
    return out


def _chat_templates(hf_dir: Path, tcfg: dict[str, Any]) -> list[tuple[str | None, str]]:
    tpl = tcfg.get("chat_template")
    if tpl is None and (hf_dir / "chat_template.jinja").is_file():
        tpl = (hf_dir / "chat_template.jinja").read_text(encoding="utf-8")
    if tpl is None and (hf_dir / "chat_template.json").is_file():
        tpl = _load_json(hf_dir / "chat_template.json", "chat template").get("chat_template")
    if isinstance(tpl, str):
        return [(None, tpl)]
    out: list[tuple[str | None, str]] = []
    if isinstance(tpl, list):
        for item in tpl:
            if isinstance(item, dict) and isinstance(item.get("template"), str):
                name = item.get("name")
                out.append((None if name == "default" else str(name), item["template"]))
    return out


def _add_tokenizer(w: GGUFWriter, hf_dir: Path, cfg: dict[str, Any], n_vocab: int) -> None:
    path = hf_dir / "tokenizer.json"
    if not path.is_file():
        raise ConvertError(f"missing tokenizer.json in {hf_dir} (needed for the vocabulary)")
    tok = _load_json(path, "tokenizer")
    tcfg_path = hf_dir / "tokenizer_config.json"
    tcfg = _load_json(tcfg_path, "tokenizer config") if tcfg_path.is_file() else {}
    model = tok.get("model") or {}
    if model.get("type", "BPE") != "BPE" or not isinstance(model.get("vocab"), dict):
        raise ConvertError(f"unsupported tokenizer model {model.get('type')!r} (only BPE tokenizers are supported)")

    byte_fallback = bool(model.get("byte_fallback", False))
    byte_level = any(p.get("type") == "ByteLevel" for p in _flatten(tok.get("pre_tokenizer")))
    byte_level = byte_level or (tok.get("decoder") or {}).get("type") == "ByteLevel"
    if byte_fallback:
        kind, pre = "llama", "default"
    elif byte_level:
        kind, pre = "gpt2", _detect_pre(tok)
    else:
        raise ConvertError("unsupported tokenizer: BPE that is neither byte-level nor byte-fallback (SentencePiece)")

    id_to_tok: dict[int, str] = {}
    for text, i in model["vocab"].items():
        id_to_tok[int(i)] = text
    added: dict[int, bool] = {}  # id -> special
    for a in tok.get("added_tokens") or []:
        i = int(a["id"])
        id_to_tok[i] = a["content"]
        added[i] = bool(a.get("special", False))
    tok_to_id = {t: i for i, t in id_to_tok.items()}
    max_id = max(id_to_tok) if id_to_tok else -1
    if max_id >= n_vocab:
        raise ConvertError(f"tokenizer has token id {max_id} but the model has only {n_vocab} embedding rows")

    unk = _token_content(model.get("unk_token"))
    unk_id = tok_to_id.get(unk) if unk is not None else None

    tokens: list[str] = []
    types: list[int] = []
    for i in range(n_vocab):
        text = id_to_tok.get(i)
        if text is None:
            tokens.append(f"[PAD{i}]")
            types.append(TOKEN_UNUSED)
        elif i == unk_id:
            tokens.append(text)
            types.append(TOKEN_UNKNOWN)
        elif i in added:
            tokens.append(text)
            types.append(TOKEN_CONTROL if added[i] else TOKEN_USER_DEFINED)
        elif kind == "llama" and _BYTE_TOKEN.fullmatch(text):
            tokens.append(text)
            types.append(TOKEN_BYTE)
        else:
            tokens.append(text)
            types.append(TOKEN_NORMAL)

    merges = _merge_strings(model.get("merges") or [])

    w.add_string("tokenizer.ggml.model", kind)
    w.add_string("tokenizer.ggml.pre", pre)
    w.add_array("tokenizer.ggml.tokens", tokens, ValueType.STRING)
    if kind == "llama":
        # SentencePiece-style BPE merges the adjacent pair whose result has the highest score, so a token
        # made by merge number r scores -r (earlier merges win, as in the HF merge list).
        rank: dict[str, int] = {}
        for r, m in enumerate(merges):
            a, _, b = m.partition(" ")
            rank.setdefault(a + b, r)
        scores = [
            -float(rank[t]) if types[i] == TOKEN_NORMAL and t in rank else 0.0 for i, t in enumerate(tokens)
        ]
        w.add_array("tokenizer.ggml.scores", scores, ValueType.FLOAT32)
    w.add_array("tokenizer.ggml.token_type", types, ValueType.INT32)
    if merges:
        w.add_array("tokenizer.ggml.merges", merges, ValueType.STRING)

    # special tokens: tokenizer_config.json first, then config.json's *_token_id, as llama.cpp does
    special: dict[str, int] = {}
    for role in ("bos", "eos", "unk", "pad"):
        text = _token_content(tcfg.get(f"{role}_token"))
        if text is not None and text in tok_to_id:
            special[role] = tok_to_id[text]
            continue
        cid = cfg.get(f"{role}_token_id")
        if isinstance(cid, list):
            cid = cid[0] if cid else None
        if isinstance(cid, int) and 0 <= cid < n_vocab:
            special[role] = cid
    if "unk" not in special and unk_id is not None:
        special["unk"] = unk_id

    # add_bos / add_eos: the post-processor's template, overridden by tokenizer_config.json
    add_bos, add_eos = kind == "llama", False
    post = tok.get("post_processor") or {}
    procs = post.get("processors", []) if post.get("type") == "Sequence" else [post]
    for proc in procs:
        if isinstance(proc, dict) and proc.get("type") == "TemplateProcessing":
            single = proc.get("single") or []
            add_bos = bool(single) and "SpecialToken" in single[0]
            add_eos = bool(single) and "SpecialToken" in single[-1]
            if add_bos and "bos" not in special:
                bos_id = tok_to_id.get(single[0]["SpecialToken"].get("id"))
                if bos_id is not None:
                    special["bos"] = bos_id
    if isinstance(tcfg.get("add_bos_token"), bool):
        add_bos = tcfg["add_bos_token"]
    if isinstance(tcfg.get("add_eos_token"), bool):
        add_eos = tcfg["add_eos_token"]

    for role, key in (("bos", "bos"), ("eos", "eos"), ("unk", "unknown"), ("pad", "padding")):
        if role in special:
            w.add_uint32(f"tokenizer.ggml.{key}_token_id", special[role])
    w.add_bool("tokenizer.ggml.add_bos_token", add_bos)
    w.add_bool("tokenizer.ggml.add_eos_token", add_eos)

    if kind == "llama":
        prefix = False
        for n in _flatten(tok.get("normalizer")):
            if n.get("type") == "Prepend" and n.get("prepend") == "\u2581":
                prefix = True
        for p in _flatten(tok.get("pre_tokenizer")):
            if p.get("type") == "Metaspace":
                prefix = p.get("prepend_scheme", "always") != "never" and p.get("add_prefix_space", True)
        w.add_bool("tokenizer.ggml.add_space_prefix", bool(prefix))

    templates = _chat_templates(hf_dir, tcfg)
    named = []
    for name, text in templates:
        if name is None:
            if not w.has_key("tokenizer.chat_template"):
                w.add_string("tokenizer.chat_template", text)
        else:
            named.append(name)
            w.add_string(f"tokenizer.chat_template.{name}", text)
    if named:
        w.add_array("tokenizer.chat_templates", named, ValueType.STRING)


# ------------------------------------------------------------------------------------------------------
# Conversion


class _Progress:
    def __init__(self, total: int, enabled: bool, width: int = 30) -> None:
        self.total, self.enabled, self.width = total, enabled, width
        self.t0 = time.perf_counter()

    def update(self, done: int, label: str) -> None:
        if not self.enabled:
            return
        frac = done / self.total if self.total else 1.0
        fill = min(self.width, int(frac * self.width + 0.5))
        bar = "#" * fill + "." * (self.width - fill)
        dt = time.perf_counter() - self.t0
        sys.stderr.write(f"\r[{bar}] {done}/{self.total} {dt:6.1f}s {label[:40]:<40}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _chunks(x: np.ndarray, ggml_type: GGMLType, max_elems: int = 1 << 22) -> Iterator[np.ndarray]:
    if x.ndim < 2 or x.size <= max_elems:
        yield _encode(x, ggml_type)
        return
    rows = x.reshape(-1, x.shape[-1])
    step = max(1, max_elems // rows.shape[1])
    for r in range(0, rows.shape[0], step):
        yield _encode(rows[r : r + step], ggml_type)


def convert(hf_dir: str | os.PathLike[str], out_path: str | os.PathLike[str], dtype: str = "f16",
            progress: bool = True) -> None:
    """Convert the Hugging Face checkpoint in `hf_dir` into the GGUF file `out_path`.

    `dtype` is the type of 2-D weights: f32, f16, bf16, q8_0 or q4_0 (1-D tensors are always f32; rows
    that are not a multiple of 32 fall back to f16 for q8_0/q4_0). Raises ConvertError on bad input.
    The output is deterministic: the same checkpoint and dtype always give the same bytes.
    """
    dtype = str(dtype).lower()
    if dtype not in _DTYPE_GGML:
        raise ConvertError(f"unsupported dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    src = Path(hf_dir)
    if not src.is_dir():
        raise ConvertError(f"{src} is not a directory (expected a Hugging Face checkpoint folder)")
    cfg_path = src / "config.json"
    if not cfg_path.is_file():
        raise ConvertError(f"missing config.json in {src}")
    cfg = _load_json(cfg_path, "config")
    if not isinstance(cfg, dict):
        raise ConvertError(f"{cfg_path} is not a JSON object")
    hp = _hparams(cfg)
    out = Path(out_path)
    if not out.parent.is_dir():
        raise ConvertError(f"output directory {out.parent} does not exist")
    ckpt = SafetensorsCheckpoint(src)
    plans = _plan_tensors(hp, ckpt, dtype)
    n_vocab = ckpt.shape("model.embed_tokens.weight")[0]
    if n_vocab != hp.n_vocab:
        warnings.warn(f"config vocab_size {hp.n_vocab} != embedding rows {n_vocab}; using {n_vocab}", stacklevel=2)

    a = hp.arch
    w = GGUFWriter()
    w.add_string("general.architecture", a)
    w.add_string("general.name", src.resolve().name)
    w.add_uint32("general.file_type", _DTYPE_FILE_TYPE[dtype])
    w.add_uint32("general.quantization_version", GGML_QUANT_VERSION)
    w.add_uint32(f"{a}.vocab_size", n_vocab)
    w.add_uint32(f"{a}.context_length", hp.n_ctx)
    w.add_uint32(f"{a}.embedding_length", hp.n_embd)
    w.add_uint32(f"{a}.block_count", hp.n_layer)
    w.add_uint32(f"{a}.feed_forward_length", hp.n_ff)
    w.add_uint32(f"{a}.attention.head_count", hp.n_head)
    if hp.layer_kv is not None:
        # llama.cpp's per-layer form: 0 marks a block without attention (an LFM2 short convolution)
        w.add_array(f"{a}.attention.head_count_kv", hp.layer_kv, ValueType.INT32)
    else:
        w.add_uint32(f"{a}.attention.head_count_kv", hp.n_head_kv)
    w.add_uint32(f"{a}.attention.key_length", hp.head_dim)
    w.add_uint32(f"{a}.attention.value_length", hp.head_dim)
    w.add_float32(f"{a}.attention.layer_norm_rms_epsilon", hp.rms_eps)
    w.add_uint32(f"{a}.rope.dimension_count", hp.head_dim)
    w.add_float32(f"{a}.rope.freq_base", hp.rope_theta)
    _add_rope_scaling(w, hp)
    _add_family_metadata(w, hp)
    _add_tokenizer(w, src, cfg, n_vocab)

    by_name = {p.gguf_name: p for p in plans}
    for p in plans:
        w.add_tensor_info(p.gguf_name, p.shape, p.ggml_type)

    bar = _Progress(len(plans), progress)
    done = [0]

    def data(info: TensorInfo) -> Iterator[np.ndarray]:
        bar.update(done[0], info.name)
        arr = by_name[info.name].load()
        yield from _chunks(arr, info.ggml_type)
        done[0] += 1

    try:
        w.write(out, data)
        bar.update(len(plans), "done")
    finally:
        bar.close()


def _add_family_metadata(w: GGUFWriter, hp: _Hparams) -> None:
    a = hp.arch
    if a == "lfm2":
        w.add_uint32(f"{a}.shortconv.l_cache", hp.conv_l_cache)
    if a != "gemma3":
        return
    assert hp.swa_layers is not None
    if any(hp.swa_layers):
        w.add_uint32(f"{a}.attention.sliding_window", hp.sliding_window)
    # llama.cpp assumes Gemma 3's every-6th-layer-global pattern, a local RoPE base of 10000 and a query
    # scale of head_dim ** -0.5 (hidden / heads for 27B); these keys say what this checkpoint really uses.
    w.add_array(f"{a}.attention.sliding_window_pattern", hp.swa_layers, ValueType.BOOL)
    w.add_float32(f"{a}.rope.freq_base_swa", hp.rope_theta_swa)
    if hp.attn_scale is not None:
        w.add_float32(f"{a}.attention.scale", hp.attn_scale)
    if hp.final_softcap:
        w.add_float32(f"{a}.final_logit_softcapping", hp.final_softcap)


def _add_rope_scaling(w: GGUFWriter, hp: _Hparams) -> None:
    s = hp.rope_scaling
    if not s:
        return
    kind = s["rope_type"]
    a = hp.arch
    if kind == "llama3":
        return  # expressed by the rope_freqs.weight tensor, as llama.cpp does
    if kind in ("linear", "yarn"):
        w.add_string(f"{a}.rope.scaling.type", kind)
        w.add_float32(f"{a}.rope.scaling.factor", float(s.get("factor", 1.0)))
        if kind == "yarn":
            orig = s.get("original_max_position_embeddings")
            if orig is not None:
                w.add_uint32(f"{a}.rope.scaling.original_context_length", int(orig))
            for hf_key, key in (("beta_fast", "yarn_beta_fast"), ("beta_slow", "yarn_beta_slow")):
                if s.get(hf_key) is not None:
                    w.add_float32(f"{a}.rope.scaling.{key}", float(s[hf_key]))
        return
    if kind == "dynamic":
        warnings.warn("dynamic NTK rope scaling is not stored in GGUF; ignoring it", stacklevel=3)
        return
    raise ConvertError(f"unsupported rope scaling type {kind!r} (supported: linear, yarn, llama3)")


# ------------------------------------------------------------------------------------------------------
# Command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `convert` arguments to `parser` (used by the `cactus convert` subcommand)."""
    parser.add_argument("hf_dir", metavar="HF_DIR", help="Hugging Face checkpoint folder (config.json, "
                        "*.safetensors, tokenizer.json)")
    parser.add_argument("out", metavar="OUT.gguf", help="output GGUF file")
    parser.add_argument("--dtype", default="f16", type=str.lower, choices=DTYPES,
                        help="type of the 2-D weights (default: f16)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run a parsed `convert` command; returns the exit code."""
    try:
        convert(args.hf_dir, args.out, dtype=args.dtype, progress=not args.quiet)
    except ConvertError as e:
        sys.stderr.write(f"cactus convert: error: {e}\n")
        return 1
    if not args.quiet:
        sys.stderr.write(f"wrote {args.out}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`convert HF_DIR OUT.gguf [--dtype f32|f16|bf16|q8_0|q4_0] [--quiet]`; returns the exit code."""
    parser = argparse.ArgumentParser(prog="cactus convert",
                                     description="Convert a Hugging Face checkpoint to GGUF.")
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits on --help and on usage errors
        return int(e.code) if isinstance(e.code, int) else 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
