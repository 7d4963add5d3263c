"""Tests for the Hugging Face -> GGUF converter (python/cactus/convert.py).

Needs numpy, gguf and tokenizers only (no torch / transformers): the fixtures under tests/fixtures/<family>
were written by tools/make_fixtures.py, which also stored the sha256 of each converted file.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import json
import shutil
import struct
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
tokenizers = pytest.importorskip("tokenizers")
QT = gguf.GGMLQuantizationType

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
FAMILIES = ("llama", "qwen2", "qwen3")
DTYPES = ("f32", "f16", "bf16", "q8_0", "q4_0")


def _load_converter() -> Any:
    """python/cactus/convert.py from this tree, without running cactus/__init__.py (which needs the native
    library; the converter is pure Python)."""
    name = "_cactus_src"
    if name not in sys.modules:
        spec = importlib.util.spec_from_loader(name, loader=None, is_package=True)
        assert spec is not None
        pkg = importlib.util.module_from_spec(spec)
        pkg.__path__ = [str(ROOT / "python" / "cactus")]
        sys.modules[name] = pkg
    return importlib.import_module(f"{name}.convert")


cc = _load_converter()

# ------------------------------------------------------------------------------------------------------
# helpers


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """A tiny independent safetensors reader (float types only), for checking the converter."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        buf = raw[8 + n + a : 8 + n + b]
        if meta["dtype"] == "BF16":
            arr = (np.frombuffer(buf, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(buf, {"F32": "<f4", "F16": "<f2"}[meta["dtype"]]).astype(np.float32)
        out[name] = arr.reshape(meta["shape"])
    return out


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], dtype: str = "F32") -> None:
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    blobs = []
    off = 0
    for name, arr in tensors.items():
        a = np.ascontiguousarray(arr, dtype=np.float32)
        if dtype == "F16":
            data = a.astype("<f2").tobytes()
        elif dtype == "BF16":
            data = (a.view(np.uint32) >> 16).astype("<u2").tobytes()  # truncation is fine for tests
        else:
            data = a.astype("<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def field(reader: Any, key: str) -> Any:
    f = reader.get_field(key)
    assert f is not None, f"missing metadata key {key}"
    return f.contents()


def rope_theta(cfg: dict[str, Any]) -> float:
    if "rope_theta" in cfg:
        return float(cfg["rope_theta"])
    return float(cfg["rope_parameters"]["rope_theta"])


def expected_tensors(family: str, cfg: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """GGUF tensor name -> numpy shape."""
    d, ff, nv = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd = cfg.get("head_dim") or d // cfg["num_attention_heads"]
    q, kv = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
    out: dict[str, tuple[int, ...]] = {"token_embd.weight": (nv, d), "output_norm.weight": (d,)}
    if not cfg.get("tie_word_embeddings"):
        out["output.weight"] = (nv, d)
    for i in range(cfg["num_hidden_layers"]):
        p = f"blk.{i}."
        out.update({
            p + "attn_norm.weight": (d,), p + "attn_q.weight": (q, d), p + "attn_k.weight": (kv, d),
            p + "attn_v.weight": (kv, d), p + "attn_output.weight": (d, q), p + "ffn_norm.weight": (d,),
            p + "ffn_gate.weight": (ff, d), p + "ffn_up.weight": (ff, d), p + "ffn_down.weight": (d, ff),
        })
        if family == "qwen2":
            out.update({p + "attn_q.bias": (q,), p + "attn_k.bias": (kv,), p + "attn_v.bias": (kv,)})
        if family == "qwen3":
            out.update({p + "attn_q_norm.weight": (hd,), p + "attn_k_norm.weight": (hd,)})
    return out


HF_OF = {
    "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm", "ffn_norm": "post_attention_layernorm", "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}
TOP = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
       "output.weight": "lm_head.weight"}


def hf_name(gguf_name: str) -> str:
    if gguf_name in TOP:
        return TOP[gguf_name]
    _, layer, base, kind = gguf_name.split(".")
    return f"model.layers.{layer}.{HF_OF[base]}.{kind}"


def dequant(t: Any) -> np.ndarray:
    w = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
    return w.reshape(tuple(int(x) for x in reversed(t.shape)))


def load_cfg(family: str) -> dict[str, Any]:
    return json.loads((FIXTURES / family / "config.json").read_text(encoding="utf-8"))


def copy_fixture(family: str, dst: Path) -> Path:
    out = dst / family
    shutil.copytree(FIXTURES / family, out)
    (out / "reference.npz").unlink()
    return out


# ------------------------------------------------------------------------------------------------------
# converted fixtures (one conversion per family and dtype for the whole module)


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    out = tmp_path_factory.mktemp("gguf")
    paths = {}
    for family in FAMILIES:
        for dtype in DTYPES:
            p = out / f"{family}-{dtype}.gguf"
            cc.convert(FIXTURES / family, p, dtype=dtype, progress=False)
            paths[family, dtype] = p
    return paths


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_sha256_matches_reference(converted: dict[tuple[str, str], Path], family: str, dtype: str) -> None:
    ref = np.load(FIXTURES / family / "reference.npz")
    digest = hashlib.sha256(converted[family, dtype].read_bytes()).hexdigest()
    assert digest == str(ref[f"sha256_{dtype}"]), (
        f"converter output for {family}/{dtype} changed: tests/fixtures references are stale, "
        "re-run tools/make_fixtures.py if the change is intended"
    )


def test_reference_npz_layout() -> None:
    for family in FAMILIES:
        ref = np.load(FIXTURES / family / "reference.npz")
        cfg = load_cfg(family)
        assert ref["tokens"].dtype == np.int32 and ref["tokens"].shape == (72,)
        assert int(ref["tokens"].max()) < cfg["vocab_size"]
        for dtype in DTYPES:
            lg = ref[f"logits_{dtype}"]
            assert lg.dtype == np.float32 and lg.shape == (72, cfg["vocab_size"])
            assert np.isfinite(lg).all() and lg.std() > 0.1


def test_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    cc.convert(FIXTURES / "qwen3", a, dtype="q4_0", progress=False)
    cc.convert(FIXTURES / "qwen3", b, dtype="q4_0", progress=False)
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_tensors(converted: dict[tuple[str, str], Path], family: str, dtype: str) -> None:
    cfg = load_cfg(family)
    r = gguf.GGUFReader(str(converted[family, dtype]))
    want = expected_tensors(family, cfg)
    got = {t.name: t for t in r.tensors}
    assert set(got) == set(want)
    qtype = {"f32": QT.F32, "f16": QT.F16, "bf16": QT.BF16, "q8_0": QT.Q8_0, "q4_0": QT.Q4_0}[dtype]
    for name, t in got.items():
        assert tuple(int(x) for x in t.shape) == tuple(reversed(want[name])), name  # ggml order
        assert t.tensor_type == (QT.F32 if len(want[name]) == 1 else qtype), name
        assert t.data_offset % 32 == 0


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_metadata(converted: dict[tuple[str, str], Path], family: str, dtype: str) -> None:
    cfg = load_cfg(family)
    r = gguf.GGUFReader(str(converted[family, dtype]))
    a = family
    assert field(r, "general.architecture") == family
    assert field(r, "general.name") == family
    assert field(r, "general.file_type") == {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 7, "bf16": 32}[dtype]
    assert field(r, "general.quantization_version") == 2
    hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    ints = {
        f"{a}.context_length": cfg["max_position_embeddings"],
        f"{a}.embedding_length": cfg["hidden_size"],
        f"{a}.block_count": cfg["num_hidden_layers"],
        f"{a}.feed_forward_length": cfg["intermediate_size"],
        f"{a}.attention.head_count": cfg["num_attention_heads"],
        f"{a}.attention.head_count_kv": cfg["num_key_value_heads"],
        f"{a}.attention.key_length": hd,
        f"{a}.attention.value_length": hd,
        f"{a}.rope.dimension_count": hd,
        f"{a}.vocab_size": cfg["vocab_size"],
    }
    for key, value in ints.items():
        assert field(r, key) == value, key
        assert r.get_field(key).types[0] == gguf.GGUFValueType.UINT32
    assert field(r, f"{a}.attention.layer_norm_rms_epsilon") == pytest.approx(cfg["rms_norm_eps"], rel=1e-6)
    assert field(r, f"{a}.rope.freq_base") == pytest.approx(rope_theta(cfg), rel=1e-6)
    if family == "qwen3":
        assert hd != cfg["hidden_size"] // cfg["num_attention_heads"]  # the fixture exercises head_dim


@pytest.mark.parametrize("family", FAMILIES)
def test_tokenizer_metadata(converted: dict[tuple[str, str], Path], family: str) -> None:
    cfg = load_cfg(family)
    src = FIXTURES / family
    tok = tokenizers.Tokenizer.from_file(str(src / "tokenizer.json"))
    tj = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    tcfg = json.loads((src / "tokenizer_config.json").read_text(encoding="utf-8"))
    r = gguf.GGUFReader(str(converted[family, "f16"]))

    n_real = tok.get_vocab_size(with_added_tokens=True)
    tokens = field(r, "tokenizer.ggml.tokens")
    types = list(field(r, "tokenizer.ggml.token_type"))
    assert len(tokens) == len(types) == cfg["vocab_size"] >= n_real
    special = {a["id"]: a["special"] for a in tj["added_tokens"]}
    for i in range(cfg["vocab_size"]):
        if i < n_real:
            assert tokens[i] == tok.id_to_token(i), i
            assert types[i] == ((3 if special[i] else 4) if i in special else 1), i
        else:
            assert tokens[i] == f"[PAD{i}]" and types[i] == 5
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    assert field(r, "tokenizer.ggml.merges") == merges
    assert field(r, "tokenizer.ggml.model") == "gpt2"
    assert field(r, "tokenizer.ggml.pre") == {"llama": "gpt-2", "qwen2": "qwen2", "qwen3": "gpt-2"}[family]
    assert r.get_field("tokenizer.ggml.scores") is None
    assert field(r, "tokenizer.ggml.eos_token_id") == tok.token_to_id("<|im_end|>")
    assert field(r, "tokenizer.ggml.padding_token_id") == tok.token_to_id("<|endoftext|>")
    assert r.get_field("tokenizer.ggml.bos_token_id") is None
    assert field(r, "tokenizer.ggml.add_bos_token") is False
    assert field(r, "tokenizer.ggml.add_eos_token") is False
    assert field(r, "tokenizer.chat_template") == tcfg["chat_template"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_weights_round_trip(converted: dict[tuple[str, str], Path], family: str, dtype: str) -> None:
    cfg = load_cfg(family)
    hf = read_safetensors(FIXTURES / family / "model.safetensors")
    r = gguf.GGUFReader(str(converted[family, dtype]))
    for t in r.tensors:
        w = dequant(t)
        base = t.name.split(".")[-2]
        if family == "llama" and base == "attn_q":
            w = cc.unpermute_qk(w, cfg["num_attention_heads"])
        elif family == "llama" and base == "attn_k":
            w = cc.unpermute_qk(w, cfg["num_key_value_heads"])
        ref = hf[hf_name(t.name)]
        assert w.shape == ref.shape, t.name
        if w.ndim == 1 or dtype == "f32":
            np.testing.assert_array_equal(w, ref, err_msg=t.name)
        elif dtype == "f16":
            np.testing.assert_allclose(w, ref, rtol=2**-11, atol=1e-7, err_msg=t.name)
        elif dtype == "bf16":
            np.testing.assert_allclose(w, ref, rtol=2**-8, atol=1e-30, err_msg=t.name)
        else:
            blocks, err = ref.reshape(-1, 32), np.abs(w - ref).reshape(-1, 32)
            amax = np.abs(blocks).max(axis=1, keepdims=True)
            bound = amax * ((1 / 254 if dtype == "q8_0" else 1 / 8) * 1.01 + 2**-10)
            assert (err <= bound).all(), t.name


def test_llama_qk_are_permuted(converted: dict[tuple[str, str], Path]) -> None:
    cfg = load_cfg("llama")
    hf = read_safetensors(FIXTURES / "llama" / "model.safetensors")
    r = gguf.GGUFReader(str(converted["llama", "f32"]))
    t = {t.name: t for t in r.tensors}
    q, k = dequant(t["blk.0.attn_q.weight"]), dequant(t["blk.0.attn_k.weight"])
    hq = hf["model.layers.0.self_attn.q_proj.weight"]
    hd = cfg["hidden_size"] // cfg["num_attention_heads"]
    assert not np.array_equal(q, hq)
    # row 2i (resp. 2i+1) of each head is HF row i (resp. i + head_dim/2)
    for h in range(cfg["num_attention_heads"]):
        for i in range(hd // 2):
            np.testing.assert_array_equal(q[h * hd + 2 * i], hq[h * hd + i])
            np.testing.assert_array_equal(q[h * hd + 2 * i + 1], hq[h * hd + hd // 2 + i])
    np.testing.assert_array_equal(cc.unpermute_qk(cc.permute_qk(hq, 4), 4), hq)
    np.testing.assert_array_equal(cc.unpermute_qk(k, 2), hf["model.layers.0.self_attn.k_proj.weight"])
    # qwen families are not permuted
    r2 = gguf.GGUFReader(str(converted["qwen2", "f32"]))
    q2 = dequant({t.name: t for t in r2.tensors}["blk.0.attn_q.weight"])
    hf2 = read_safetensors(FIXTURES / "qwen2" / "model.safetensors")
    np.testing.assert_array_equal(q2, hf2["model.layers.0.self_attn.q_proj.weight"])


def _forward(path: Path, tokens: np.ndarray) -> np.ndarray:
    """A plain numpy (float64) forward pass over a converted GGUF file with llama.cpp semantics: llama q/k rows
    are permuted, so its RoPE rotates adjacent pairs; qwen2/qwen3 rotate (i, i + head_dim/2) pairs (NeoX)."""
    r = gguf.GGUFReader(str(path))
    arch = field(r, "general.architecture")
    w = {t.name: dequant(t).astype(np.float64) for t in r.tensors}
    n_head, n_kv = field(r, f"{arch}.attention.head_count"), field(r, f"{arch}.attention.head_count_kv")
    hd, eps = field(r, f"{arch}.attention.key_length"), field(r, f"{arch}.attention.layer_norm_rms_epsilon")
    base = field(r, f"{arch}.rope.freq_base")

    def norm(x: np.ndarray, g: np.ndarray) -> np.ndarray:
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g

    n = len(tokens)
    ang = np.arange(n)[:, None] * base ** (-np.arange(0, hd, 2) / hd)[None, :]  # (n, hd/2)
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]

    def rope(x: np.ndarray) -> np.ndarray:  # (n, heads, hd)
        if arch == "llama":
            a, b = x[..., 0::2], x[..., 1::2]
            out = np.empty_like(x)
            out[..., 0::2], out[..., 1::2] = a * cos - b * sin, a * sin + b * cos
            return out
        a, b = x[..., : hd // 2], x[..., hd // 2 :]
        return np.concatenate([a * cos - b * sin, a * sin + b * cos], axis=-1)

    x = w["token_embd.weight"][tokens]
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for i in range(field(r, f"{arch}.block_count")):
        p = f"blk.{i}."
        h = norm(x, w[p + "attn_norm.weight"])
        q, k, v = (h @ w[p + f"attn_{c}.weight"].T + w.get(p + f"attn_{c}.bias", 0.0) for c in "qkv")
        q, k, v = q.reshape(n, n_head, hd), k.reshape(n, n_kv, hd), v.reshape(n, n_kv, hd)
        if p + "attn_q_norm.weight" in w:
            q, k = norm(q, w[p + "attn_q_norm.weight"]), norm(k, w[p + "attn_k_norm.weight"])
        q, k = rope(q), rope(k)
        rep = n_head // n_kv
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
        s = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(hd) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        x = x + np.einsum("hqk,khd->qhd", s, v).reshape(n, n_head * hd) @ w[p + "attn_output.weight"].T
        h = norm(x, w[p + "ffn_norm.weight"])
        g = h @ w[p + "ffn_gate.weight"].T
        x = x + (g / (1 + np.exp(-g)) * (h @ w[p + "ffn_up.weight"].T)) @ w[p + "ffn_down.weight"].T
    out = w.get("output.weight", w["token_embd.weight"])
    return norm(x, w["output_norm.weight"]) @ out.T


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_gguf_reproduces_reference_logits(converted: dict[tuple[str, str], Path], family: str, dtype: str) -> None:
    """The converted file, read with llama.cpp's conventions, gives the transformers reference logits: this is
    what the engine is compared against, so the references and the converter agree."""
    ref = np.load(FIXTURES / family / "reference.npz")
    want = ref[f"logits_{dtype}"]
    got = _forward(converted[family, dtype], ref["tokens"])
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


# ------------------------------------------------------------------------------------------------------
# quantization: bit-exact with the gguf package (llama.cpp's reference block layouts)


def _quant_inputs() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(1234)
    cases = []
    for shape in [(32,), (1, 32), (3, 64), (17, 96), (5, 4096), (2, 3, 64)]:
        for scale in (1e-4, 1.0, 300.0):
            cases.append((f"{shape}x{scale}", (rng.standard_normal(shape) * scale).astype(np.float32)))
    special = rng.standard_normal((8, 32)).astype(np.float32)
    special[0] = 0.0  # all-zero block
    special[1] = np.arange(32, dtype=np.float32) / 2 - 8  # exact halves
    special[2, :3] = [3.0, -3.0, 3.0]  # ties in magnitude, positive first
    special[3, :3] = [-3.0, 3.0, 1.0]  # ties in magnitude, negative first
    special[4] = 1.0  # constant
    special[5] = rng.uniform(-1, 1, 32).astype(np.float32) * 6e-5  # fp16 subnormal scales
    special[6, 7] = 1e4  # one outlier
    cases.append(("special", special))
    return cases


@pytest.mark.parametrize(("name", "x"), _quant_inputs(), ids=[c[0] for c in _quant_inputs()])
def test_quantize_bit_exact(name: str, x: np.ndarray) -> None:
    assert cc.quantize_q8_0(x).tobytes() == gguf.quants.quantize(x, QT.Q8_0).tobytes()
    assert cc.quantize_q4_0(x).tobytes() == gguf.quants.quantize(x, QT.Q4_0).tobytes()
    assert cc.f32_to_bf16(x).tobytes() == gguf.quants.quantize(x, QT.BF16).tobytes()


def test_bf16_special_values() -> None:
    x = np.array([np.nan, np.inf, -np.inf, 3.4e38, -0.0, 1.00390625, 1.01171875, 1e-40], dtype=np.float32)
    assert cc.f32_to_bf16(x).tobytes() == gguf.quants.quantize(x, QT.BF16).tobytes()


def test_q4_0_nibble_layout() -> None:
    x = np.zeros(32, dtype=np.float32)
    x[0], x[16], x[1] = -8.0, 7.0, 1.0  # d = -8 / -8 = 1 -> q = x + 8
    b = cc.quantize_q4_0(x)
    assert b.size == 18 and np.frombuffer(b[:2].tobytes(), np.float16)[0] == 1.0
    assert b[2] == (0 | (15 << 4))  # element 0 low nibble, element 16 high nibble
    assert b[3] == (9 | (8 << 4))


def test_chunked_encoding_matches_whole(tmp_path: Path) -> None:
    x = np.random.default_rng(5).standard_normal((300, 64)).astype(np.float32)
    for t in (cc.GGMLType.Q4_0, cc.GGMLType.Q8_0, cc.GGMLType.BF16, cc.GGMLType.F16):
        whole = b"".join(bytes(np.ascontiguousarray(c).view(np.uint8)) for c in cc._chunks(x, t, 1 << 30))
        parts = b"".join(bytes(np.ascontiguousarray(c).view(np.uint8)) for c in cc._chunks(x, t, 1000))
        assert whole == parts


# ------------------------------------------------------------------------------------------------------
# checkpoint variants


def test_sharded_and_half_precision_sources(tmp_path: Path) -> None:
    base = tmp_path / "ref" / "qwen2"
    shutil.copytree(FIXTURES / "qwen2", base)
    cc.convert(base, tmp_path / "ref.gguf", dtype="f16", progress=False)

    # two shards + index -> identical file
    sharded = tmp_path / "sharded" / "qwen2"
    shutil.copytree(FIXTURES / "qwen2", sharded)
    tensors = read_safetensors(sharded / "model.safetensors")
    (sharded / "model.safetensors").unlink()
    names = list(tensors)
    half = len(names) // 2
    files = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
    weight_map = {}
    for fname, part in files.items():
        write_safetensors(sharded / fname, {n: tensors[n] for n in part})
        weight_map.update({n: fname for n in part})
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    cc.convert(sharded, tmp_path / "sharded.gguf", dtype="f16", progress=False)
    assert (tmp_path / "sharded.gguf").read_bytes() == (tmp_path / "ref.gguf").read_bytes()

    # BF16 checkpoint -> bf16 GGUF keeps the bits; F16 checkpoint -> f16 GGUF keeps the bits
    for st_dtype, out_dtype, qt in (("BF16", "bf16", QT.BF16), ("F16", "f16", QT.F16)):
        d = tmp_path / st_dtype / "qwen2"
        shutil.copytree(FIXTURES / "qwen2", d)
        write_safetensors(d / "model.safetensors", tensors, dtype=st_dtype)
        src = read_safetensors(d / "model.safetensors")
        out = tmp_path / f"{st_dtype}.gguf"
        cc.convert(d, out, dtype=out_dtype, progress=False)
        for t in gguf.GGUFReader(str(out)).tensors:
            w = src[hf_name(t.name)]
            if t.tensor_type == qt:
                assert bytes(t.data) == gguf.quants.quantize(w, qt).tobytes(), t.name
            else:
                np.testing.assert_array_equal(dequant(t), w)


def _tiny_checkpoint(d: Path, hidden: int, n_vocab: int = 40) -> dict[str, np.ndarray]:
    """A minimal random llama checkpoint (no tokenizer training needed)."""
    rng = np.random.default_rng(0)
    n_head, n_kv, ff, hd = 2, 1, 2 * hidden, hidden // 2
    d.mkdir(parents=True)
    cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": hidden,
        "intermediate_size": ff, "num_hidden_layers": 1, "num_attention_heads": n_head,
        "num_key_value_heads": n_kv, "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0, "vocab_size": n_vocab, "tie_word_embeddings": True,
    }
    (d / "config.json").write_text(json.dumps(cfg))
    shapes = {
        "model.embed_tokens.weight": (n_vocab, hidden), "model.norm.weight": (hidden,),
        "model.layers.0.input_layernorm.weight": (hidden,),
        "model.layers.0.self_attn.q_proj.weight": (n_head * hd, hidden),
        "model.layers.0.self_attn.k_proj.weight": (n_kv * hd, hidden),
        "model.layers.0.self_attn.v_proj.weight": (n_kv * hd, hidden),
        "model.layers.0.self_attn.o_proj.weight": (hidden, n_head * hd),
        "model.layers.0.post_attention_layernorm.weight": (hidden,),
        "model.layers.0.mlp.gate_proj.weight": (ff, hidden),
        "model.layers.0.mlp.up_proj.weight": (ff, hidden),
        "model.layers.0.mlp.down_proj.weight": (hidden, ff),
    }
    tensors = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    write_safetensors(d / "model.safetensors", tensors)
    vocab = {chr(ord("a") + i): i for i in range(26)}
    vocab.update({"ab": 26, "abc": 27, "<unk>": 28})
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": 28, "content": "<unk>", "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True}],
        "normalizer": None, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": None,
        "decoder": None,
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "vocab": vocab, "merges": [["a", "b"], ["ab", "c"]]},
    }
    (d / "tokenizer.json").write_text(json.dumps(tok))
    return tensors


def test_row_length_not_multiple_of_32_falls_back_to_f16(tmp_path: Path) -> None:
    d = tmp_path / "odd"
    tensors = _tiny_checkpoint(d, hidden=48)  # rows of 48 (and 96) do not fill q8_0/q4_0 blocks
    with pytest.raises(cc.ConvertError, match="tokenizer"):  # neither byte-level nor byte-fallback
        cc.convert(d, tmp_path / "x.gguf", dtype="q8_0", progress=False)
    tj = json.loads((d / "tokenizer.json").read_text())
    tj["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                           "use_regex": True}
    (d / "tokenizer.json").write_text(json.dumps(tj))
    for dtype, file_type in (("q8_0", 7), ("q4_0", 2)):
        out = tmp_path / f"odd-{dtype}.gguf"
        cc.convert(d, out, dtype=dtype, progress=False)
        r = gguf.GGUFReader(str(out))
        assert field(r, "general.file_type") == file_type
        assert field(r, "tokenizer.ggml.unknown_token_id") == 28
        assert list(field(r, "tokenizer.ggml.token_type"))[28] == 2
        for t in r.tensors:
            hf = tensors[hf_name(t.name)]
            if hf.ndim == 1:
                assert t.tensor_type == QT.F32
            elif hf.shape[-1] % 32:
                assert t.tensor_type == QT.F16, t.name
            else:
                assert t.tensor_type == (QT.Q8_0 if dtype == "q8_0" else QT.Q4_0), t.name


def test_sentencepiece_style_bpe(tmp_path: Path) -> None:
    d = tmp_path / "spm"
    _tiny_checkpoint(d, hidden=64, n_vocab=300)
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    vocab.update({f"<0x{b:02X}>": 3 + b for b in range(256)})
    for i, t in enumerate(["\u2581", "a", "b", "c", "\u2581a", "ab", "\u2581ab", "abc"]):
        vocab[t] = 259 + i
    specials = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
                 "normalized": False, "special": True} for c, i in (("<unk>", 0), ("<s>", 1), ("</s>", 2))]
    tok = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": specials,
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                                          {"type": "Replace", "pattern": {"String": " "},
                                                           "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                    {"Sequence": {"id": "A", "type_id": 0}},
                                    {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"},
                                                      "content": " "}, {"type": "ByteFallback"},
                                                     {"type": "Fuse"}, {"type": "Strip", "content": " ",
                                                                        "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True,
                  "vocab": vocab, "merges": ["\u2581 a", "a b", "\u2581a b", "ab c"]},
    }
    text = json.dumps(tok)
    tokenizers.Tokenizer.from_str(text)  # the hand-written tokenizer.json is valid
    (d / "tokenizer.json").write_text(text)
    (d / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>", "eos_token": "</s>",
                                                         "unk_token": "<unk>"}))
    out = tmp_path / "spm.gguf"
    cc.convert(d, out, dtype="f32", progress=False)
    r = gguf.GGUFReader(str(out))
    assert field(r, "tokenizer.ggml.model") == "llama"
    assert field(r, "tokenizer.ggml.pre") == "default"
    tokens, types = field(r, "tokenizer.ggml.tokens"), list(field(r, "tokenizer.ggml.token_type"))
    scores = list(field(r, "tokenizer.ggml.scores"))
    assert len(tokens) == len(types) == len(scores) == 300
    assert types[:3] == [2, 3, 3] and set(types[3:259]) == {6} and tokens[3 + 0x41] == "<0x41>"
    assert types[259:267] == [1] * 8 and set(types[267:]) == {5}
    # merged tokens score -rank, so earlier merges are preferred
    by_tok = dict(zip(tokens, scores))
    assert [by_tok[t] for t in ("\u2581a", "ab", "\u2581ab", "abc")] == [0.0, -1.0, -2.0, -3.0]
    assert (field(r, "tokenizer.ggml.bos_token_id"), field(r, "tokenizer.ggml.eos_token_id")) == (1, 2)
    assert field(r, "tokenizer.ggml.unknown_token_id") == 0
    assert field(r, "tokenizer.ggml.add_bos_token") is True
    assert field(r, "tokenizer.ggml.add_space_prefix") is True


def test_rope_scaling_llama3_and_yarn(tmp_path: Path) -> None:
    d = tmp_path / "l3" / "llama"
    shutil.copytree(FIXTURES / "llama", d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["rope_parameters"] = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
                              "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                              "original_max_position_embeddings": 64}
    (d / "config.json").write_text(json.dumps(cfg))
    cc.convert(d, tmp_path / "l3.gguf", dtype="f16", progress=False)
    r = gguf.GGUFReader(str(tmp_path / "l3.gguf"))
    t = {t.name: t for t in r.tensors}["rope_freqs.weight"]
    f = dequant(t)
    assert t.tensor_type == QT.F32 and f.shape == (8,)
    assert f[0] == 1.0 and f[-1] == 32.0 and np.all(np.diff(f) >= 0)
    assert field(r, "llama.rope.freq_base") == 500000.0

    cfg["rope_parameters"] = {"rope_type": "yarn", "rope_theta": 1e6, "factor": 4.0,
                              "original_max_position_embeddings": 64}
    (d / "config.json").write_text(json.dumps(cfg))
    cc.convert(d, tmp_path / "yarn.gguf", dtype="f16", progress=False)
    r = gguf.GGUFReader(str(tmp_path / "yarn.gguf"))
    assert field(r, "llama.rope.scaling.type") == "yarn"
    assert field(r, "llama.rope.scaling.factor") == 4.0
    assert field(r, "llama.rope.scaling.original_context_length") == 64

    cfg["rope_parameters"] = {"rope_type": "longrope", "rope_theta": 1e6}
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(cc.ConvertError, match="rope scaling type 'longrope'"):
        cc.convert(d, tmp_path / "x.gguf", progress=False)


def test_pre_tokenizer_detection() -> None:
    def bl(use_regex: bool) -> dict[str, Any]:
        return {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": use_regex}

    def split(regex: str) -> dict[str, Any]:
        return {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}

    assert cc._detect_pre({"pre_tokenizer": bl(True)}) == "gpt-2"
    seq = {"type": "Sequence", "pretokenizers": [split(cc.LLAMA3_REGEX), bl(False)]}
    assert cc._detect_pre({"pre_tokenizer": seq}) == "llama-bpe"
    seq = {"type": "Sequence", "pretokenizers": [split(cc.QWEN2_REGEX), bl(False)]}
    assert cc._detect_pre({"pre_tokenizer": seq}) == "qwen2"
    seq = {"type": "Sequence", "pretokenizers": [split(r"\p{N}+"), bl(False)]}
    with pytest.warns(UserWarning, match="default"):
        assert cc._detect_pre({"pre_tokenizer": seq}) == "default"
    # the regexes are the ones the fixtures' tokenizers actually use
    tj = json.loads((FIXTURES / "qwen2" / "tokenizer.json").read_text(encoding="utf-8"))
    assert tj["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] == cc.QWEN2_REGEX


# ------------------------------------------------------------------------------------------------------
# errors


def test_error_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(cc.ConvertError, match="is not a directory"):
        cc.convert(tmp_path / "nope", tmp_path / "x.gguf", progress=False)


def test_error_missing_config(tmp_path: Path) -> None:
    d = copy_fixture("llama", tmp_path)
    (d / "config.json").unlink()
    with pytest.raises(cc.ConvertError, match="missing config.json"):
        cc.convert(d, tmp_path / "x.gguf", progress=False)


def test_error_unsupported_architecture(tmp_path: Path) -> None:
    d = copy_fixture("llama", tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg["architectures"] = ["GPTNeoXForCausalLM"]
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(cc.ConvertError, match="unsupported architecture GPTNeoXForCausalLM"):
        cc.convert(d, tmp_path / "x.gguf", progress=False)


@pytest.mark.parametrize("dtype", ["q4_k", "int8", ""])
def test_error_unknown_dtype(tmp_path: Path, dtype: str) -> None:
    with pytest.raises(cc.ConvertError, match="unsupported dtype"):
        cc.convert(FIXTURES / "llama", tmp_path / "x.gguf", dtype=dtype, progress=False)
    assert not (tmp_path / "x.gguf").exists()


def test_error_missing_tensor(tmp_path: Path) -> None:
    d = copy_fixture("qwen2", tmp_path)
    tensors = read_safetensors(d / "model.safetensors")
    del tensors["model.layers.1.self_attn.k_proj.bias"]
    write_safetensors(d / "model.safetensors", tensors)
    with pytest.raises(cc.ConvertError, match=r"missing tensor\(s\).*model.layers.1.self_attn.k_proj.bias"):
        cc.convert(d, tmp_path / "x.gguf", progress=False)
    assert not list(tmp_path.glob("x.gguf*"))


def test_error_untied_without_lm_head(tmp_path: Path) -> None:
    d = copy_fixture("llama", tmp_path)
    tensors = read_safetensors(d / "model.safetensors")
    del tensors["lm_head.weight"]
    write_safetensors(d / "model.safetensors", tensors)
    with pytest.raises(cc.ConvertError, match="lm_head.weight"):
        cc.convert(d, tmp_path / "x.gguf", progress=False)


def test_error_unexpected_tensor_and_shape(tmp_path: Path) -> None:
    d = copy_fixture("llama", tmp_path)
    tensors = read_safetensors(d / "model.safetensors")
    write_safetensors(d / "model.safetensors", {**tensors, "model.layers.0.mystery.weight": np.zeros((4, 4))})
    with pytest.raises(cc.ConvertError, match="does not use: model.layers.0.mystery.weight"):
        cc.convert(d, tmp_path / "x.gguf", progress=False)
    tensors["model.layers.0.mlp.up_proj.weight"] = tensors["model.layers.0.mlp.up_proj.weight"][:64]
    write_safetensors(d / "model.safetensors", tensors)
    with pytest.raises(cc.ConvertError, match="has shape"):
        cc.convert(d, tmp_path / "x.gguf", progress=False)


def test_error_missing_weights_and_tokenizer(tmp_path: Path) -> None:
    d = copy_fixture("qwen3", tmp_path)
    (d / "tokenizer.json").unlink()
    with pytest.raises(cc.ConvertError, match="missing tokenizer.json"):
        cc.convert(d, tmp_path / "x.gguf", progress=False)
    (d / "model.safetensors").unlink()
    with pytest.raises(cc.ConvertError, match="no \\*.safetensors"):
        cc.convert(d, tmp_path / "x.gguf", progress=False)


# ------------------------------------------------------------------------------------------------------
# command line


def test_main_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.gguf"
    assert cc.main([str(FIXTURES / "qwen3"), str(out), "--dtype", "q8_0"]) == 0
    ref = np.load(FIXTURES / "qwen3" / "reference.npz")
    assert hashlib.sha256(out.read_bytes()).hexdigest() == str(ref["sha256_q8_0"])
    err = capsys.readouterr().err
    assert "done" in err and "wrote" in err
    out2 = tmp_path / "m2.gguf"
    assert cc.main([str(FIXTURES / "qwen3"), str(out2), "--quiet"]) == 0  # default f16
    assert capsys.readouterr().err == ""
    assert field(gguf.GGUFReader(str(out2)), "general.file_type") == 1


def test_main_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cc.main([str(tmp_path / "missing"), str(tmp_path / "o.gguf"), "-q"]) == 1
    assert "error:" in capsys.readouterr().err
    assert cc.main([str(FIXTURES / "llama"), str(tmp_path / "o.gguf"), "--dtype", "q5_k"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert cc.main([]) == 2
    assert cc.main(["--help"]) == 0
    assert "--dtype" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------------
# hybrid families: LFM2 (short convolutions + attention) and Gemma 3 (sliding-window attention)

HYBRID = ("lfm2", "gemma3")

# GGUF block tensor (between "blk.N." and ".weight") -> HF module under model.layers.N.
HF_OF_HYBRID = {
    "lfm2": {
        "attn_norm": "operator_norm", "ffn_norm": "ffn_norm", "ffn_gate": "feed_forward.w1",
        "ffn_up": "feed_forward.w3", "ffn_down": "feed_forward.w2", "attn_q": "self_attn.q_proj",
        "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.out_proj",
        "attn_q_norm": "self_attn.q_layernorm", "attn_k_norm": "self_attn.k_layernorm",
        "shortconv.conv": "conv.conv", "shortconv.in_proj": "conv.in_proj",
        "shortconv.out_proj": "conv.out_proj",
    },
    "gemma3": {
        "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
        "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm",
        "attn_k_norm": "self_attn.k_norm", "post_attention_norm": "post_attention_layernorm",
        "ffn_norm": "pre_feedforward_layernorm", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
        "ffn_down": "mlp.down_proj", "post_ffw_norm": "post_feedforward_layernorm",
    },
}
TOP_HYBRID = {
    "token_embd.weight": "model.embed_tokens.weight", "token_embd_norm.weight": "model.embedding_norm.weight",
    "output_norm.weight": "model.norm.weight", "output.weight": "lm_head.weight",
}


def hybrid_hf_name(family: str, gguf_name: str) -> str:
    if gguf_name in TOP_HYBRID:
        return TOP_HYBRID[gguf_name]
    parts = gguf_name.split(".")
    return f"model.layers.{parts[1]}.{HF_OF_HYBRID[family]['.'.join(parts[2:-1])]}.{parts[-1]}"


def lfm2_ff(cfg: dict[str, Any]) -> int:
    ff = int(2 * cfg["intermediate_size"] / 3)
    ff = int(cfg["block_ffn_dim_multiplier"] * ff)
    m = cfg["block_multiple_of"]
    return m * ((ff + m - 1) // m)


def expected_hybrid_tensors(family: str, cfg: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    d, nv = cfg["hidden_size"], cfg["vocab_size"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or d // nh
    out: dict[str, tuple[int, ...]] = {"token_embd.weight": (nv, d)}
    if family == "lfm2":
        ff = lfm2_ff(cfg)
        out["token_embd_norm.weight"] = (d,)
        for i, kind in enumerate(cfg["layer_types"]):
            p = f"blk.{i}."
            out.update({p + "attn_norm.weight": (d,), p + "ffn_norm.weight": (d,),
                        p + "ffn_gate.weight": (ff, d), p + "ffn_up.weight": (ff, d),
                        p + "ffn_down.weight": (d, ff)})
            if kind == "conv":
                out.update({p + "shortconv.in_proj.weight": (3 * d, d),
                            p + "shortconv.out_proj.weight": (d, d),
                            p + "shortconv.conv.weight": (d, cfg["conv_L_cache"])})
            else:
                out.update({p + "attn_q.weight": (nh * hd, d), p + "attn_k.weight": (nkv * hd, d),
                            p + "attn_v.weight": (nkv * hd, d), p + "attn_output.weight": (d, nh * hd),
                            p + "attn_q_norm.weight": (hd,), p + "attn_k_norm.weight": (hd,)})
        return out
    ff = cfg["intermediate_size"]
    out["output_norm.weight"] = (d,)
    for i in range(cfg["num_hidden_layers"]):
        p = f"blk.{i}."
        out.update({
            p + "attn_norm.weight": (d,), p + "attn_q.weight": (nh * hd, d),
            p + "attn_k.weight": (nkv * hd, d), p + "attn_v.weight": (nkv * hd, d),
            p + "attn_q_norm.weight": (hd,), p + "attn_k_norm.weight": (hd,),
            p + "attn_output.weight": (d, nh * hd), p + "post_attention_norm.weight": (d,),
            p + "ffn_norm.weight": (d,), p + "ffn_gate.weight": (ff, d), p + "ffn_up.weight": (ff, d),
            p + "ffn_down.weight": (d, ff), p + "post_ffw_norm.weight": (d,),
        })
    return out


@pytest.fixture(scope="module")
def converted_hybrid(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    out = tmp_path_factory.mktemp("gguf-hybrid")
    paths = {}
    for family in HYBRID:
        for dtype in DTYPES:
            p = out / f"{family}-{dtype}.gguf"
            cc.convert(FIXTURES / family, p, dtype=dtype, progress=False)
            paths[family, dtype] = p
    return paths


@pytest.mark.parametrize("family", HYBRID)
@pytest.mark.parametrize("dtype", DTYPES)
def test_hybrid_sha256_matches_reference(converted_hybrid: dict[tuple[str, str], Path], family: str,
                                         dtype: str) -> None:
    ref = np.load(FIXTURES / family / "reference.npz")
    digest = hashlib.sha256(converted_hybrid[family, dtype].read_bytes()).hexdigest()
    assert digest == str(ref[f"sha256_{dtype}"]), f"{family}/{dtype} changed: re-run tools/make_fixtures.py"


def test_hybrid_reference_npz_layout() -> None:
    for family, n_pos in (("lfm2", 72), ("gemma3", 96)):
        ref = np.load(FIXTURES / family / "reference.npz")
        cfg = load_cfg(family)
        assert ref["tokens"].dtype == np.int32 and ref["tokens"].shape == (n_pos,)
        for dtype in DTYPES:
            lg = ref[f"logits_{dtype}"]
            assert lg.dtype == np.float32 and lg.shape == (n_pos, cfg["vocab_size"])
            assert np.isfinite(lg).all() and lg.std() > 0.1
        assert ref["gen_prompt"].dtype == np.int32 and ref["gen_tokens"].dtype == np.int32
        assert ref["gen_tokens"].shape == (64,) and len(set(ref["gen_tokens"].tolist())) >= 16
    # the sequence crosses Gemma 3's sliding window several times, and a prefill chunk boundary (64)
    assert load_cfg("gemma3")["sliding_window"] * 4 < 96
    types = load_cfg("gemma3")["layer_types"]
    assert "sliding_attention" in types and "full_attention" in types
    assert {"conv", "full_attention"} <= set(load_cfg("lfm2")["layer_types"])


@pytest.mark.parametrize("family", HYBRID)
@pytest.mark.parametrize("dtype", DTYPES)
def test_hybrid_tensors(converted_hybrid: dict[tuple[str, str], Path], family: str, dtype: str) -> None:
    want = expected_hybrid_tensors(family, load_cfg(family))
    got = {t.name: t for t in gguf.GGUFReader(str(converted_hybrid[family, dtype])).tensors}
    assert set(got) == set(want)
    qtype = {"f32": QT.F32, "f16": QT.F16, "bf16": QT.BF16, "q8_0": QT.Q8_0, "q4_0": QT.Q4_0}[dtype]
    for name, t in got.items():
        assert tuple(int(x) for x in t.shape) == tuple(reversed(want[name])), name
        # norms and the convolution kernel stay float32, as llama.cpp writes them
        f32 = len(want[name]) == 1 or name.endswith("shortconv.conv.weight")
        assert t.tensor_type == (QT.F32 if f32 else qtype), name


@pytest.mark.parametrize("dtype", ["f32", "q4_0"])
def test_lfm2_metadata(converted_hybrid: dict[tuple[str, str], Path], dtype: str) -> None:
    cfg = load_cfg("lfm2")
    r = gguf.GGUFReader(str(converted_hybrid["lfm2", dtype]))
    assert field(r, "general.architecture") == "lfm2"
    kv = r.get_field("lfm2.attention.head_count_kv")
    assert kv.types == [gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.INT32]
    want = [0 if t == "conv" else cfg["num_key_value_heads"] for t in cfg["layer_types"]]
    assert list(kv.contents()) == want
    assert field(r, "lfm2.feed_forward_length") == lfm2_ff(cfg) == 192  # 256 -> 170 -> up to a multiple of 32
    assert field(r, "lfm2.shortconv.l_cache") == cfg["conv_L_cache"]
    assert field(r, "lfm2.attention.head_count") == cfg["num_attention_heads"]
    assert field(r, "lfm2.attention.layer_norm_rms_epsilon") == pytest.approx(cfg["norm_eps"], rel=1e-6)
    assert field(r, "lfm2.rope.freq_base") == pytest.approx(rope_theta(cfg), rel=1e-6)
    assert field(r, "lfm2.vocab_size") == cfg["vocab_size"]


@pytest.mark.parametrize("dtype", ["f32", "q8_0"])
def test_gemma3_metadata(converted_hybrid: dict[tuple[str, str], Path], dtype: str) -> None:
    cfg = load_cfg("gemma3")
    r = gguf.GGUFReader(str(converted_hybrid["gemma3", dtype]))
    assert field(r, "general.architecture") == "gemma3"
    assert field(r, "gemma3.attention.sliding_window") == cfg["sliding_window"]
    pattern = r.get_field("gemma3.attention.sliding_window_pattern")
    assert pattern.types == [gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.BOOL]
    assert list(pattern.contents()) == [t == "sliding_attention" for t in cfg["layer_types"]]
    rope = cfg["rope_parameters"]
    approx = functools.partial(pytest.approx, rel=1e-6)
    assert field(r, "gemma3.rope.freq_base") == approx(rope["full_attention"]["rope_theta"])
    assert field(r, "gemma3.rope.freq_base_swa") == approx(rope["sliding_attention"]["rope_theta"])
    assert field(r, "gemma3.attention.scale") == approx(cfg["query_pre_attn_scalar"] ** -0.5)
    assert field(r, "gemma3.final_logit_softcapping") == approx(cfg["final_logit_softcapping"])
    assert r.get_field("gemma3.attn_logit_softcapping") is None
    assert field(r, "gemma3.attention.key_length") == cfg["head_dim"]
    assert field(r, "gemma3.attention.head_count_kv") == cfg["num_key_value_heads"]


@pytest.mark.parametrize("family", HYBRID)
@pytest.mark.parametrize("dtype", ["f32", "bf16", "q8_0"])
def test_hybrid_weights_round_trip(converted_hybrid: dict[tuple[str, str], Path], family: str,
                                   dtype: str) -> None:
    hf = read_safetensors(FIXTURES / family / "model.safetensors")
    for t in gguf.GGUFReader(str(converted_hybrid[family, dtype])).tensors:
        w, ref = dequant(t), hf[hybrid_hf_name(family, t.name)]
        if t.name.endswith("shortconv.conv.weight"):
            ref = ref[:, 0, :]  # Conv1d's (channels, 1, kernel) stored as (channels, kernel)
        if family == "gemma3" and t.name.endswith("norm.weight"):
            ref = ref + np.float32(1.0)  # Gemma multiplies by 1 + w; llama.cpp stores 1 + w
        assert w.shape == ref.shape, t.name
        if t.tensor_type == QT.F32:
            np.testing.assert_array_equal(w, ref, err_msg=t.name)
        elif dtype == "bf16":
            np.testing.assert_allclose(w, ref, rtol=2**-8, atol=1e-30, err_msg=t.name)
        else:
            amax = np.abs(ref.reshape(-1, 32)).max(axis=1, keepdims=True)
            assert (np.abs(w - ref).reshape(-1, 32) <= amax * (1 / 254 * 1.01 + 2**-10)).all(), t.name


def _quant_acts(x: np.ndarray, bits: int) -> np.ndarray:
    """Activations as the engine's quantized-weight matmuls round them (kernels.h), in float32 like the C code.
    8 bits: per block of 32, q = x * (127 / max|x|) rounded to nearest even, scale d = max|x| / 127. 12 bits:
    plus lo = (x - q * d) * (1 / (d / 16)) rounded and clamped to [-8, 8], so x = (16 q + lo) * d / 16."""
    b = np.asarray(x, dtype=np.float32).reshape(-1, 32)
    amax = np.abs(b).max(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        inv = np.where(amax > 2.0**-100, np.float32(127) / amax, np.float32(0)).astype(np.float32)
    q = np.rint(b * inv).astype(np.float32)
    d = (amax / np.float32(127)).astype(np.float32)
    if bits == 8:
        return (q * d).reshape(np.shape(x)).astype(np.float64)
    step = (d / np.float32(16)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv_step = np.where(step > 0, np.float32(1) / step, np.float32(0)).astype(np.float32)
    lo = np.clip(np.rint((b - q * d) * inv_step), -8, 8).astype(np.float32)
    return ((16 * q.astype(np.float64) + lo) * step).reshape(np.shape(x))


def forward_hybrid(path: Path, tokens: np.ndarray, act_bits: int = 0) -> np.ndarray:
    """A plain numpy (float64) forward pass over a converted LFM2 or Gemma 3 GGUF with llama.cpp semantics.
    `act_bits` (8 or 12) rounds every input of a Q8_0/Q4_0 matmul first, as the engine's kernels do."""
    r = gguf.GGUFReader(str(path))
    arch = field(r, "general.architecture")
    w = {t.name: dequant(t).astype(np.float64) for t in r.tensors}
    quant = {t.name for t in r.tensors if t.tensor_type in (QT.Q8_0, QT.Q4_0)}
    nh, nkv = field(r, f"{arch}.attention.head_count"), field(r, f"{arch}.attention.head_count_kv")
    hd, eps = field(r, f"{arch}.attention.key_length"), field(r, f"{arch}.attention.layer_norm_rms_epsilon")
    d, n = field(r, f"{arch}.embedding_length"), len(tokens)

    def mm(x: np.ndarray, name: str) -> np.ndarray:
        return (_quant_acts(x, act_bits) if act_bits and name in quant else x) @ w[name].T

    def norm(x: np.ndarray, g: np.ndarray) -> np.ndarray:
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g

    def rope_tables(base: float) -> tuple[np.ndarray, np.ndarray]:
        ang = np.arange(n)[:, None] * base ** (-np.arange(0, hd, 2) / hd)[None, :]
        return np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]

    def attention(h: np.ndarray, p: str, n_kv: int, rope: tuple[np.ndarray, np.ndarray], scale: float,
                  window: int) -> np.ndarray:
        q = norm(mm(h, p + "attn_q.weight").reshape(n, nh, hd), w[p + "attn_q_norm.weight"])
        k = norm(mm(h, p + "attn_k.weight").reshape(n, n_kv, hd), w[p + "attn_k_norm.weight"])
        v = mm(h, p + "attn_v.weight").reshape(n, n_kv, hd)
        cos, sin = rope
        q, k = ((np.concatenate([a[..., : hd // 2] * cos - a[..., hd // 2 :] * sin,
                                 a[..., : hd // 2] * sin + a[..., hd // 2 :] * cos], -1)) for a in (q, k))
        k, v = np.repeat(k, nh // n_kv, axis=1), np.repeat(v, nh // n_kv, axis=1)
        i = np.arange(n)
        seen = (i[None, :] <= i[:, None]) & ((i[:, None] - i[None, :] < window) if window else True)
        s = np.einsum("qhd,khd->hqk", q, k) * scale + np.where(seen, 0.0, -np.inf)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        return mm(np.einsum("hqk,khd->qhd", s, v).reshape(n, nh * hd), p + "attn_output.weight")

    x = w["token_embd.weight"][tokens]
    head = "output.weight" if "output.weight" in w else "token_embd.weight"
    if arch == "lfm2":
        big_l, rope = field(r, "lfm2.shortconv.l_cache"), rope_tables(field(r, "lfm2.rope.freq_base"))
        for i in range(field(r, "lfm2.block_count")):
            p = f"blk.{i}."
            h = norm(x, w[p + "attn_norm.weight"])
            if nkv[i] == 0:
                bcx = mm(h, p + "shortconv.in_proj.weight")
                b, c, xx = bcx[:, :d], bcx[:, d : 2 * d], bcx[:, 2 * d :]
                hist = np.concatenate([np.zeros((big_l - 1, d)), b * xx])
                conv = sum(w[p + "shortconv.conv.weight"][:, j] * hist[j : j + n] for j in range(big_l))
                x = x + mm(c * conv, p + "shortconv.out_proj.weight")
            else:
                x = x + attention(h, p, int(nkv[i]), rope, hd**-0.5, 0)
            h = norm(x, w[p + "ffn_norm.weight"])
            g = mm(h, p + "ffn_gate.weight")
            x = x + mm(g / (1 + np.exp(-g)) * mm(h, p + "ffn_up.weight"), p + "ffn_down.weight")
        return mm(norm(x, w["token_embd_norm.weight"]), head)
    x = x * np.sqrt(d)
    sliding = field(r, "gemma3.attention.sliding_window_pattern")
    window, scale = field(r, "gemma3.attention.sliding_window"), field(r, "gemma3.attention.scale")
    global_rope = rope_tables(field(r, "gemma3.rope.freq_base"))
    local_rope = rope_tables(field(r, "gemma3.rope.freq_base_swa"))
    for i in range(field(r, "gemma3.block_count")):
        p = f"blk.{i}."
        rope = local_rope if sliding[i] else global_rope
        a = attention(norm(x, w[p + "attn_norm.weight"]), p, nkv, rope, scale, window if sliding[i] else 0)
        x = x + norm(a, w[p + "post_attention_norm.weight"])
        h = norm(x, w[p + "ffn_norm.weight"])
        g = mm(h, p + "ffn_gate.weight")
        g = 0.5 * g * (1 + np.tanh(np.sqrt(2 / np.pi) * (g + 0.044715 * g**3)))
        x = x + norm(mm(g * mm(h, p + "ffn_up.weight"), p + "ffn_down.weight"), w[p + "post_ffw_norm.weight"])
    cap = field(r, "gemma3.final_logit_softcapping")
    return cap * np.tanh(mm(norm(x, w["output_norm.weight"]), head) / cap)


@pytest.mark.parametrize("family", HYBRID)
@pytest.mark.parametrize("dtype", DTYPES)
def test_hybrid_gguf_reproduces_reference_logits(converted_hybrid: dict[tuple[str, str], Path], family: str,
                                                 dtype: str) -> None:
    """The converted file, read with llama.cpp's conventions (token_embd_norm as LFM2's final norm, Gemma's
    stored 1 + w, the sliding-window pattern and local RoPE base from the metadata), gives transformers'
    reference logits."""
    ref = np.load(FIXTURES / family / "reference.npz")
    want = ref[f"logits_{dtype}"]
    got = forward_hybrid(converted_hybrid[family, dtype], ref["tokens"])
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


def test_lfm2_ff_width_rule() -> None:
    base = {"block_ff_dim": 12288, "block_auto_adjust_ff_dim": True, "block_multiple_of": 256}
    assert cc._lfm2_ff(dict(base, block_ffn_dim_multiplier=1.0)) == 8192  # LFM2-1.2B
    assert cc._lfm2_ff(dict(base, block_ffn_dim_multiplier=1.5)) == 12288
    assert cc._lfm2_ff(dict(base, block_auto_adjust_ff_dim=False)) == 12288
    # transformers rounds to the multiple only when a multiplier is set
    assert cc._lfm2_ff({"intermediate_size": 300, "block_ffn_dim_multiplier": None}) == 200


def test_gemma3_old_style_config(tmp_path: Path) -> None:
    """rope_theta / rope_local_base_freq / sliding_window_pattern (transformers < 5) give the same file."""
    d = tmp_path / "gemma3"
    shutil.copytree(FIXTURES / "gemma3", d)
    (d / "reference.npz").unlink()
    cfg = json.loads((d / "config.json").read_text())
    rope = cfg.pop("rope_parameters")
    cfg.update(rope_theta=rope["full_attention"]["rope_theta"],
               rope_local_base_freq=rope["sliding_attention"]["rope_theta"])
    (d / "config.json").write_text(json.dumps(cfg))
    cc.convert(d, tmp_path / "old.gguf", dtype="f32", progress=False)
    ref = np.load(FIXTURES / "gemma3" / "reference.npz")
    assert hashlib.sha256((tmp_path / "old.gguf").read_bytes()).hexdigest() == str(ref["sha256_f32"])
    # without layer_types the period decides: (i + 1) % pattern != 0 slides
    del cfg["layer_types"]
    cfg["sliding_window_pattern"] = 2
    (d / "config.json").write_text(json.dumps(cfg))
    cc.convert(d, tmp_path / "p2.gguf", dtype="f32", progress=False)
    r = gguf.GGUFReader(str(tmp_path / "p2.gguf"))
    assert list(field(r, "gemma3.attention.sliding_window_pattern")) == [True, False]


@pytest.mark.parametrize(("family", "key", "value", "message"), [
    ("lfm2", "conv_bias", True, "conv_bias"),
    ("lfm2", "layer_types", ["conv"], "layer_types"),
    ("gemma3", "hidden_activation", "silu", "hidden_activation"),
    ("gemma3", "attention_bias", True, "attention_bias"),
])
def test_hybrid_config_errors(tmp_path: Path, family: str, key: str, value: Any, message: str) -> None:
    d = copy_fixture(family, tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg[key] = value
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(cc.ConvertError, match=message):
        cc.convert(d, tmp_path / "x.gguf", progress=False)


def test_lfm2_missing_conv_tensor(tmp_path: Path) -> None:
    d = copy_fixture("lfm2", tmp_path)
    tensors = read_safetensors(d / "model.safetensors")
    del tensors["model.layers.0.conv.conv.weight"]
    write_safetensors(d / "model.safetensors", tensors)
    with pytest.raises(cc.ConvertError, match=r"missing tensor\(s\).*model.layers.0.conv.conv.weight"):
        cc.convert(d, tmp_path / "x.gguf", progress=False)
