"""Writes a corpus of malformed GGUF model files, each with the keyword its load error must contain.

Every file starts from a tiny valid model (built here byte by byte, no converter involved, so every
section boundary is known) and breaks one thing: truncation at every section boundary, wrong magic
or version, absurd counts and dimensions, tensors past the end of the file, unknown types,
overlapping offsets, metadata strings without their bytes, and wrong or missing hyper-parameters.
tests/test_malformed_models.py loads each file with cactus_init and expects NULL with that error.

    python tools/make_malformed_models.py OUT_DIR     # writes OUT_DIR/*.gguf and OUT_DIR/manifest.json

The files are generated at test time into a temporary folder; nothing here is committed output.
tests/fuzz/make_seeds.py also uses tiny_model() for the gguf fuzzer's seeds.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Union

# GGUF metadata value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
# ggml tensor types
GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0, GGML_Q4_K, GGML_BF16 = 0, 1, 2, 8, 12, 30

_SCALAR = {
    U8: "<B",
    I8: "<b",
    U16: "<H",
    I16: "<h",
    U32: "<I",
    I32: "<i",
    F32: "<f",
    BOOL: "<?",
    U64: "<Q",
    I64: "<q",
    F64: "<d",
}

Value = Union[int, float, bool, str, tuple[int, list]]


def _str(s: str | bytes) -> bytes:
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def _value(vtype: int, value: Value) -> bytes:
    if vtype == STR:
        assert isinstance(value, (str, bytes))
        return _str(value)
    if vtype == ARR:
        assert isinstance(value, tuple)
        etype, items = value
        return struct.pack("<IQ", etype, len(items)) + b"".join(_value(etype, v) for v in items)
    return struct.pack(_SCALAR[vtype], value)


@dataclass
class KV:
    key: str
    vtype: int
    value: Value = 0
    raw: bytes | None = None  # replaces the encoded value (after the type field)
    whole: bytes | None = None  # replaces the whole entry (key, type and value)


@dataclass
class Tensor:
    name: str
    ne: list[int]  # ne[0] is the row (contiguous) dimension
    gtype: int
    data: bytes
    offset: int | None = None  # the offset the table claims; None: where the data really is
    raw_name: bytes | None = None  # replaces the encoded name (length + bytes)


@dataclass
class Gguf:
    """A GGUF file under construction. build() also fills `boundaries`: (label, byte offset) of
    every section and item start, and the end of the file."""

    kvs: list[KV] = field(default_factory=list)
    tensors: list[Tensor] = field(default_factory=list)
    magic: bytes = b"GGUF"
    version: int = 3
    n_tensors: int | None = None  # header count override
    n_kv: int | None = None
    alignment: int = 32
    boundaries: list[tuple[str, int]] = field(default_factory=list)

    def set(self, key: str, vtype: int, value: Value = 0, raw: bytes | None = None) -> Gguf:
        self.drop(key)
        self.kvs.append(KV(key, vtype, value, raw))
        return self

    def drop(self, key: str) -> Gguf:
        self.kvs = [kv for kv in self.kvs if kv.key != key]
        return self

    def tensor(self, name: str) -> Tensor:
        return next(t for t in self.tensors if t.name == name)

    def drop_tensor(self, name: str) -> Gguf:
        self.tensors = [t for t in self.tensors if t.name != name]
        return self

    def build(self) -> bytes:
        marks: list[tuple[str, int]] = []
        out = bytearray()
        out += self.magic
        marks.append(("after magic", len(out)))
        out += struct.pack("<I", self.version)
        marks.append(("after version", len(out)))
        out += struct.pack("<Q", len(self.tensors) if self.n_tensors is None else self.n_tensors)
        marks.append(("after tensor count", len(out)))
        out += struct.pack("<Q", len(self.kvs) if self.n_kv is None else self.n_kv)
        for kv in self.kvs:
            marks.append((f"kv {kv.key}", len(out)))
            if kv.whole is not None:
                out += kv.whole
                continue
            out += _str(kv.key)
            marks.append((f"kv {kv.key} type", len(out)))
            out += struct.pack("<I", kv.vtype)
            marks.append((f"kv {kv.key} value", len(out)))
            out += kv.raw if kv.raw is not None else _value(kv.vtype, kv.value)
        # data layout: each tensor at the next aligned offset
        real: list[int] = []
        pos = 0
        for t in self.tensors:
            pos = (pos + self.alignment - 1) // self.alignment * self.alignment
            real.append(pos)
            pos += len(t.data)
        for t, off in zip(self.tensors, real):
            marks.append((f"tensor info {t.name}", len(out)))
            out += (_str(t.name) if t.raw_name is None else t.raw_name) + struct.pack("<I", len(t.ne))
            out += b"".join(struct.pack("<Q", d) for d in t.ne)
            out += struct.pack("<IQ", t.gtype, off if t.offset is None else t.offset)
        marks.append(("end of tensor table", len(out)))
        data_start = (len(out) + self.alignment - 1) // self.alignment * self.alignment
        out += b"\0" * (data_start - len(out))
        for t, off in zip(self.tensors, real):
            marks.append((f"tensor data {t.name}", data_start + off))
            out += b"\0" * (data_start + off - len(out))
            out += t.data
        marks.append(("end of file", len(out)))
        self.boundaries = marks
        return bytes(out)


# ---- the tiny valid model ---------------------------------------------------------------------

SPM_SPACE = "\u2581"
VOCAB = (
    ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", SPM_SPACE]
    + [chr(c) for c in range(ord("a"), ord("z") + 1)]
    + [SPM_SPACE + w for w in ("the", "a", "is", "hello", "user", "assistant")]
    + list(".,!?'\n")
    + ["he", "ll"]
)
TOKEN_TYPES = [2, 3, 3, 3, 3] + [1] * (len(VOCAB) - 5)  # unknown, control x4, normal
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

HP = {
    "embedding_length": 8,
    "block_count": 1,
    "feed_forward_length": 16,
    "attention.head_count": 2,
    "attention.head_count_kv": 1,
    "context_length": 64,
}


def _floats(n: int, seed: int) -> bytes:
    """n deterministic small floats (an LCG; no numpy needed)."""
    x = seed * 2654435761 % 2**32 or 1
    vals = []
    for _ in range(n):
        x = (1103515245 * x + 12345) % 2**31
        vals.append((x / 2**31 - 0.5) * 0.5)
    return struct.pack(f"<{n}f", *vals)


def _ones(n: int) -> bytes:
    return struct.pack(f"<{n}f", *([1.0] * n))


def tiny_model(arch: str = "llama", tensors: bool = True, n_layer: int = 1) -> Gguf:
    """A valid model of `arch` (llama or qwen3): 8-wide, 2 heads (1 KV head), n_layer blocks, a
    SentencePiece vocabulary of len(VOCAB) tokens, f32 weights. tensors=False: vocabulary only."""
    g = Gguf()
    g.set("general.architecture", STR, arch)
    g.set("general.alignment", U32, 32)
    for k, v in HP.items():
        g.set(f"{arch}.{k}", U32, n_layer if k == "block_count" else v)
    g.set(f"{arch}.attention.layer_norm_rms_epsilon", F32, 1e-5)
    g.set(f"{arch}.rope.freq_base", F32, 10000.0)
    g.set("tokenizer.ggml.model", STR, "llama")
    g.set("tokenizer.ggml.tokens", ARR, (STR, VOCAB))
    g.set("tokenizer.ggml.scores", ARR, (F32, [-float(i) for i in range(len(VOCAB))]))
    g.set("tokenizer.ggml.token_type", ARR, (I32, TOKEN_TYPES))
    g.set("tokenizer.ggml.bos_token_id", U32, 1)
    g.set("tokenizer.ggml.eos_token_id", U32, 2)
    g.set("tokenizer.chat_template", STR, CHAT_TEMPLATE)
    if not tensors:
        return g
    D, F, V = HP["embedding_length"], HP["feed_forward_length"], len(VOCAB)
    hd = D // HP["attention.head_count"]
    qd, kvd = HP["attention.head_count"] * hd, HP["attention.head_count_kv"] * hd
    seed = 1

    def w(name: str, n_in: int, n_out: int) -> None:
        nonlocal seed
        seed += 1
        g.tensors.append(Tensor(name, [n_in, n_out], GGML_F32, _floats(n_in * n_out, seed)))

    def v(name: str, n: int) -> None:
        g.tensors.append(Tensor(name, [n], GGML_F32, _ones(n)))

    w("token_embd.weight", D, V)
    v("output_norm.weight", D)
    for il in range(n_layer):
        b = f"blk.{il}."
        v(b + "attn_norm.weight", D)
        w(b + "attn_q.weight", D, qd)
        w(b + "attn_k.weight", D, kvd)
        w(b + "attn_v.weight", D, kvd)
        w(b + "attn_output.weight", qd, D)
        if arch == "qwen3":
            v(b + "attn_q_norm.weight", hd)
            v(b + "attn_k_norm.weight", hd)
        v(b + "ffn_norm.weight", D)
        w(b + "ffn_gate.weight", D, F)
        w(b + "ffn_up.weight", D, F)
        w(b + "ffn_down.weight", F, D)
    return g


# ---- the malformed cases ----------------------------------------------------------------------

# Keywords are regular expressions matched (case-insensitively) against the load error.
TRUNCATED = r"truncated|cannot fit|past (the )?end|empty file"


@dataclass
class Case:
    name: str
    data: bytes
    keyword: str


def _mutated(name: str, keyword: str, mutate: Callable[[Gguf], Gguf | None], arch: str = "llama") -> Case:
    g = tiny_model(arch)
    g = mutate(g) or g
    return Case(name, g.build(), keyword)


def _patch(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, offset, value)
    return bytes(b)


def _hp(key: str, value: int, vtype: int = U32) -> Callable[[Gguf], None]:
    return lambda g: (g.set(f"llama.{key}", vtype, value), None)[1]


def truncation_cases() -> list[Case]:
    """The valid model cut at every section boundary (and a few bytes into each)."""
    g = tiny_model()
    data = g.build()
    cuts: dict[int, str] = {0: "empty"}
    for label, off in g.boundaries:
        if off < len(data):
            cuts.setdefault(off, label)
            cuts.setdefault(off + 3, label + " +3")
    cuts.setdefault(len(data) - 1, "last byte missing")
    out = []
    for i, (off, label) in enumerate(sorted(cuts.items())):
        if 0 <= off < len(data):
            slug = "".join(c if c.isalnum() else "_" for c in label)[:60]
            out.append(Case(f"truncated_{i:03d}_{off}_{slug}", data[:off], TRUNCATED))
    return out


def header_cases() -> list[Case]:
    base = tiny_model().build()
    kv_count_at, tensor_count_at = 16, 8
    return [
        Case("wrong_magic", b"GGUG" + base[4:], "bad magic"),
        Case("magic_lowercase", b"gguf" + base[4:], "bad magic"),
        Case("version_0", _patch(base, 4, "<I", 0), "unsupported GGUF version"),
        Case("version_1", _patch(base, 4, "<I", 1), "version 1"),
        Case("version_4", _patch(base, 4, "<I", 4), "unsupported GGUF version"),
        Case("version_big_endian", _patch(base, 4, "<I", 0x03000000), "big-endian"),
        Case("tensor_count_2_63", _patch(base, tensor_count_at, "<Q", 2**63), "tensor count"),
        Case("tensor_count_max", _patch(base, tensor_count_at, "<Q", 2**64 - 1), "tensor count"),
        Case(
            "tensor_count_plus_one",
            _patch(base, tensor_count_at, "<Q", len(tiny_model().tensors) + 1),
            TRUNCATED + "|tensor",
        ),
        Case("kv_count_2_63", _patch(base, kv_count_at, "<Q", 2**63), "metadata count"),
        Case(
            "kv_count_plus_one",
            _patch(base, kv_count_at, "<Q", len(tiny_model().kvs) + 1),
            TRUNCATED + "|unknown value type|metadata",
        ),
        Case("only_magic", b"GGUF", TRUNCATED),
        Case("not_gguf_text", b"this is not a model file at all\n" * 4, "bad magic"),
    ]


def metadata_cases() -> list[Case]:
    big = 2**63
    cases = [
        _mutated(
            "kv_unknown_value_type",
            "unknown value type",
            lambda g: g.set("general.name", 13, raw=b"\0\0\0\0"),
        ),
        _mutated(
            "kv_value_type_2_31", "unknown value type", lambda g: g.set("general.name", 0x80000000, raw=b"")
        ),
        _mutated(
            "kv_array_unknown_element_type",
            "unknown array element type",
            lambda g: g.set("general.tags", ARR, raw=struct.pack("<IQ", 99, 1) + b"\0" * 8),
        ),
        _mutated(
            "kv_array_length_2_63",
            "cannot fit",
            lambda g: g.set("general.tags", ARR, raw=struct.pack("<IQ", U32, big)),
        ),
        _mutated(
            "kv_string_array_length_huge",
            "cannot fit",
            lambda g: g.set("general.tags", ARR, raw=struct.pack("<IQ", STR, 2**40)),
        ),
        _mutated(
            "kv_nested_arrays_too_deep",
            "nested deeper",
            lambda g: g.set(
                "general.tags",
                ARR,
                raw=b"".join(struct.pack("<IQ", ARR, 1) for _ in range(12)) + struct.pack("<IQ", U8, 0),
            ),
        ),
        _mutated(
            "kv_key_length_2_63",
            "runs past the end",
            lambda g: g.kvs.insert(0, KV("", U8, whole=struct.pack("<Q", big) + b"key")),
        ),
        _mutated(
            "kv_string_length_2_63",
            "runs past the end",
            lambda g: g.set("general.name", STR, raw=struct.pack("<Q", big) + b"abc"),
        ),
        _mutated(
            "kv_string_without_bytes",
            "runs past the end",
            lambda g: g.set("general.name", STR, raw=struct.pack("<Q", 100)),
        ),
        _mutated(
            "kv_array_string_without_bytes",
            "runs past the end",
            lambda g: g.set("general.tags", ARR, raw=struct.pack("<IQQ", STR, 1, 1000) + b"x"),
        ),
        _mutated(
            "kv_duplicate_key",
            "duplicate metadata key",
            lambda g: g.kvs.append(KV("general.architecture", STR, "llama")),
        ),
        _mutated("alignment_not_power_of_two", "power of two", lambda g: g.set("general.alignment", U32, 48)),
        _mutated("alignment_zero", "power of two", lambda g: g.set("general.alignment", U32, 0)),
        _mutated("alignment_string", "general.alignment", lambda g: g.set("general.alignment", STR, "32")),
        _mutated("alignment_negative", "general.alignment", lambda g: g.set("general.alignment", I32, -32)),
    ]
    return cases


def tensor_cases() -> list[Case]:
    def dims(name: str, ne: Sequence[int]) -> Callable[[Gguf], None]:
        return lambda g: setattr(g.tensor(name), "ne", list(ne))

    def gtype(name: str, t: int) -> Callable[[Gguf], None]:
        return lambda g: setattr(g.tensor(name), "gtype", t)

    def offset(name: str, off: int) -> Callable[[Gguf], None]:
        return lambda g: setattr(g.tensor(name), "offset", off)

    emb, norm, q = "token_embd.weight", "output_norm.weight", "blk.0.attn_q.weight"
    return [
        _mutated("tensor_2_63_elements", "overflows 2", dims(emb, [2**32, 2**31])),
        _mutated("tensor_2_64_elements", "overflows 2", dims(emb, [2**32, 2**32])),
        _mutated("tensor_4d_overflow", "overflows 2", dims(emb, [2**16, 2**16, 2**16, 2**16])),
        _mutated("tensor_byte_size_overflow", "byte size overflows", dims(norm, [2**62])),
        _mutated("tensor_huge_but_countable", "past end", dims(norm, [2**40])),
        _mutated("tensor_zero_dim", "zero-sized", dims(emb, [8, 0])),
        _mutated("tensor_zero_dims", "dimensions", dims(norm, [])),
        _mutated("tensor_five_dims", "dimensions", dims(norm, [8, 1, 1, 1, 1])),
        _mutated("tensor_past_eof", "past end", offset(q, 1 << 20)),
        _mutated("tensor_offset_2_64_minus_align", "overflows|past end", offset(q, 2**64 - 32)),
        _mutated("tensor_offset_misaligned", "alignment", offset(q, 4)),
        _mutated("tensor_overlap", "overlap", offset(q, 0)),
        _mutated("tensor_unknown_type", "unsupported type", gtype(norm, 99)),
        _mutated("tensor_type_q4_K", "q4_K", gtype(norm, GGML_Q4_K)),
        _mutated("tensor_type_2_31", "unsupported type", gtype(norm, 0x80000000)),
        _mutated("tensor_q8_0_partial_block", "block size", gtype(emb, GGML_Q8_0)),
        _mutated(
            "tensor_duplicate_name",
            "duplicate tensor",
            lambda g: g.tensors.append(Tensor(norm, [8], GGML_F32, _ones(8))),
        ),
        _mutated(
            "tensor_name_length_huge",
            "runs past the end",
            lambda g: setattr(g.tensor(norm), "raw_name", struct.pack("<Q", 2**40) + b"abc"),
        ),
    ]


def hparam_cases() -> list[Case]:
    a = "llama"
    return [
        _mutated("arch_missing", "general.architecture", lambda g: g.drop("general.architecture")),
        _mutated(
            "arch_unknown", "unsupported architecture", lambda g: g.set("general.architecture", STR, "gpt9")
        ),
        _mutated("arch_not_string", "general.architecture", lambda g: g.set("general.architecture", U32, 1)),
        _mutated("head_count_0", "attention.head_count", _hp("attention.head_count", 0)),
        _mutated("head_count_huge", "attention.head_count", _hp("attention.head_count", 2**31 - 1)),
        _mutated("head_count_kv_0", "head_count_kv", _hp("attention.head_count_kv", 0)),
        _mutated("head_count_kv_not_divisor", "head_count_kv|multiple", _hp("attention.head_count_kv", 3)),
        _mutated(
            "head_count_kv_array_wrong_length",
            "entries",
            lambda g: g.set(f"{a}.attention.head_count_kv", ARR, (U32, [1, 1, 1])),
        ),
        _mutated(
            "head_count_kv_array_all_zero",
            "no layer has attention|all 0",
            lambda g: g.set(f"{a}.attention.head_count_kv", ARR, (U32, [0])),
        ),
        _mutated("embedding_length_0", "embedding_length", _hp("embedding_length", 0)),
        _mutated("embedding_length_huge", "embedding_length", _hp("embedding_length", 2**31 - 1)),
        _mutated("embedding_length_u64_huge", "embedding_length", _hp("embedding_length", 2**40, U64)),
        _mutated("embedding_length_negative", "embedding_length", _hp("embedding_length", -8, I32)),
        _mutated("embedding_length_float", "embedding_length", _hp("embedding_length", 8.0, F32)),
        _mutated("embedding_length_mismatch", "token_embd.weight|shape", _hp("embedding_length", 16)),
        _mutated("embedding_length_missing", "embedding_length", lambda g: g.drop(f"{a}.embedding_length")),
        _mutated("block_count_missing", "block_count", lambda g: g.drop(f"{a}.block_count")),
        _mutated("block_count_0", "block_count", _hp("block_count", 0)),
        _mutated("block_count_huge", "block_count", _hp("block_count", 2**20)),
        _mutated("block_count_more_than_tensors", "blk\\.1\\..*missing", _hp("block_count", 2)),
        _mutated("feed_forward_length_0", "feed_forward_length", _hp("feed_forward_length", 0)),
        _mutated("feed_forward_length_mismatch", "ffn_gate|shape", _hp("feed_forward_length", 32)),
        _mutated("context_length_0", "context_length", _hp("context_length", 0)),
        _mutated("key_length_odd", "odd|key_length", _hp("attention.key_length", 3)),
        _mutated("key_length_0", "key_length", _hp("attention.key_length", 0)),
        _mutated(
            "rms_epsilon_nan",
            "epsilon",
            lambda g: g.set(f"{a}.attention.layer_norm_rms_epsilon", F32, float("nan")),
        ),
        _mutated(
            "rms_epsilon_negative",
            "epsilon",
            lambda g: g.set(f"{a}.attention.layer_norm_rms_epsilon", F32, -1.0),
        ),
        _mutated("rope_base_zero", "freq_base", lambda g: g.set(f"{a}.rope.freq_base", F32, 0.0)),
        _mutated(
            "rope_base_inf_negative", "freq_base", lambda g: g.set(f"{a}.rope.freq_base", F32, float("-inf"))
        ),
        _mutated(
            "rope_scaling_factor_zero",
            "scaling.factor",
            lambda g: (
                g.set(f"{a}.rope.scaling.type", STR, "linear"),
                g.set(f"{a}.rope.scaling.factor", F32, 0.0),
                None,
            )[2],
        ),
        _mutated("token_embd_missing", "token_embd.weight", lambda g: g.drop_tensor("token_embd.weight")),
        _mutated(
            "token_embd_1d",
            "token_embd.weight",
            lambda g: setattr(g.tensor("token_embd.weight"), "ne", [8 * len(VOCAB)]),
        ),
        _mutated("output_norm_missing", "output_norm.weight", lambda g: g.drop_tensor("output_norm.weight")),
        _mutated("attn_q_missing", "attn_q", lambda g: g.drop_tensor("blk.0.attn_q.weight")),
        _mutated(
            "attn_q_transposed",
            "attn_q.*shape|shape.*attn_q",
            lambda g: setattr(g.tensor("blk.0.attn_q.weight"), "ne", [8, 8, 1]),
        ),
        _mutated(
            "attn_k_wrong_rows", "attn_k", lambda g: setattr(g.tensor("blk.0.attn_k.weight"), "ne", [4, 8])
        ),
        _mutated(
            "norm_q8_0",
            "output_norm.weight",
            lambda g: (
                setattr(g.tensor("output_norm.weight"), "ne", [32]),
                setattr(g.tensor("output_norm.weight"), "gtype", GGML_Q8_0),
                setattr(g.tensor("output_norm.weight"), "data", b"\0" * 34),
                None,
            )[3],
        ),
        _mutated(
            "qwen3_q_norm_missing",
            "attn_q_norm",
            lambda g: g.drop_tensor("blk.0.attn_q_norm.weight"),
            arch="qwen3",
        ),
        _mutated("tokenizer_missing", "tokenizer", lambda g: g.drop("tokenizer.ggml.tokens")),
        _mutated("tokenizer_model_missing", "tokenizer.ggml.model", lambda g: g.drop("tokenizer.ggml.model")),
        _mutated(
            "tokenizer_model_unknown",
            "unsupported tokenizer model",
            lambda g: g.set("tokenizer.ggml.model", STR, "unigram9"),
        ),
        _mutated(
            "tokenizer_tokens_empty", "tokenizer", lambda g: g.set("tokenizer.ggml.tokens", ARR, (STR, []))
        ),
        _mutated(
            "tokenizer_tokens_not_strings",
            "tokenizer",
            lambda g: g.set("tokenizer.ggml.tokens", ARR, (U32, list(range(len(VOCAB))))),
        ),
        _mutated(
            "tokenizer_scores_short", "scores", lambda g: g.set("tokenizer.ggml.scores", ARR, (F32, [0.0]))
        ),
        _mutated(
            "tokenizer_types_short",
            "token_type",
            lambda g: g.set("tokenizer.ggml.token_type", ARR, (I32, [1])),
        ),
        _mutated("tokenizer_bigger_than_embedding", "tokenizer has", _bigger_vocab),
        _mutated(
            "tokenizer_bpe_without_merges", "merges", lambda g: g.set("tokenizer.ggml.model", STR, "gpt2")
        ),
    ]


def _bigger_vocab(g: Gguf) -> None:
    g.set("tokenizer.ggml.tokens", ARR, (STR, VOCAB + ["x1", "x2"]))
    g.set("tokenizer.ggml.scores", ARR, (F32, [-float(i) for i in range(len(VOCAB) + 2)]))
    g.set("tokenizer.ggml.token_type", ARR, (I32, TOKEN_TYPES + [1, 1]))


def all_cases() -> list[Case]:
    cases = header_cases() + truncation_cases() + metadata_cases() + tensor_cases() + hparam_cases()
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    return cases


def write_corpus(out_dir: Path) -> tuple[Path, list[tuple[Path, str]]]:
    """Writes valid.gguf (the unbroken model) and every case; returns (valid path, [(path, keyword)])."""
    out_dir.mkdir(parents=True, exist_ok=True)
    valid = out_dir / "valid.gguf"
    valid.write_bytes(tiny_model().build())
    (out_dir / "valid-qwen3.gguf").write_bytes(tiny_model("qwen3").build())
    written = []
    for c in all_cases():
        p = out_dir / f"{c.name}.gguf"
        p.write_bytes(c.data)
        written.append((p, c.keyword))
    manifest = {p.name: kw for p, kw in written}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return valid, written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir", type=Path)
    args = ap.parse_args(argv)
    _, written = write_corpus(args.out_dir)
    print(f"wrote {len(written)} malformed models and valid.gguf to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
