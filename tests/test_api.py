"""The C API contract through the Python SDK: the response JSON, streaming, and bad input."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import cactus
import pytest
from cactus._native import ERR_BUFFER_TOO_SMALL, ERR_INVALID_ARGUMENT, ffi, lib

KEYS = {
    "success", "error", "cloud_handoff", "response", "function_calls", "confidence",
    "time_to_first_token_ms", "total_time_ms", "prefill_tps", "decode_tps", "ram_usage_mb",
    "prefill_tokens", "decode_tokens", "total_tokens",
}
MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say something."}]


def check_response(r: dict, max_tokens: int) -> None:
    assert KEYS <= set(r) and set(r) - KEYS <= {"prompt_tokens", "finish_reason"}
    assert r["finish_reason"] in ("stop", "length", "cancelled")
    assert r["prompt_tokens"] >= r["prefill_tokens"]
    assert r["success"] is True and r["error"] is None and r["cloud_handoff"] is False
    assert isinstance(r["response"], str) and isinstance(r["function_calls"], list)
    assert 0.0 <= r["confidence"] <= 1.0
    assert 1 <= r["decode_tokens"] <= max_tokens
    assert r["prefill_tokens"] > 0
    assert r["total_tokens"] == r["prefill_tokens"] + r["decode_tokens"]
    assert 0 < r["time_to_first_token_ms"] <= r["total_time_ms"]
    assert r["prefill_tps"] > 0 and r["ram_usage_mb"] > 1
    if r["decode_tokens"] > 1:
        assert r["decode_tps"] > 0


@pytest.mark.parametrize("family", ["llama", "qwen2", "qwen3"])
def test_complete_contract_and_streaming(family: str, convert_fixture) -> None:
    pieces: list = []
    with cactus.Cactus(str(convert_fixture(family, "q8_0"))) as model:
        r = model.complete(MESSAGES, max_tokens=24, temperature=0.8, seed=3,
                           callback=lambda t, i: pieces.append((t, i)))
    check_response(r, 24)
    assert "".join(t for t, _ in pieces) == r["response"]
    assert all(isinstance(i, int) for _, i in pieces)


def test_seed_compatible_functions(llama_f32: Path) -> None:
    model = cactus.cactus_init(str(llama_f32), None, False)
    try:
        streamed: list = []
        text = cactus.cactus_complete(model, json.dumps(MESSAGES), json.dumps({"max_tokens": 8}), None,
                                      lambda tok, tid: streamed.append(tok))
        r = json.loads(text)
        check_response(r, 8)
        assert "".join(streamed) == r["response"]
        ids = cactus.cactus_tokenize(model, "hello world")
        assert ids and all(isinstance(i, int) for i in ids)
        cactus.cactus_reset(model)
        cactus.cactus_stop(model)  # no-op when idle
    finally:
        cactus.cactus_destroy(model)


def test_greedy_is_deterministic(llama_f32: Path) -> None:
    with cactus.Cactus(str(llama_f32)) as model:
        a = model.complete(MESSAGES, max_tokens=16, temperature=0)
        model.reset()
        b = model.complete(MESSAGES, max_tokens=16, temperature=0)
    assert a["response"] == b["response"]


def test_logits_shape(llama_f32: Path) -> None:
    with cactus.Cactus(str(llama_f32)) as model:
        out = model.logits([1, 2, 3])
        assert out.shape == (3, model.vocab_size)


# ---- bad input never crashes the host ---------------------------------------------------------

def _init_error(path: object) -> str:
    with pytest.raises(RuntimeError) as e:
        cactus.cactus_init(str(path))
    return str(e.value)


def test_missing_path(tmp_path: Path) -> None:
    assert "does not exist" in _init_error(tmp_path / "nope.gguf")


def test_folder_without_gguf(tmp_path: Path) -> None:
    assert "no .gguf" in _init_error(tmp_path)


def test_folder_with_gguf(tmp_path: Path, llama_f32: Path) -> None:
    (tmp_path / "model.gguf").write_bytes(llama_f32.read_bytes())
    with cactus.Cactus(str(tmp_path)) as model:
        assert model.vocab_size > 0


def test_not_gguf(tmp_path: Path) -> None:
    p = tmp_path / "x.gguf"
    p.write_bytes(b"this is not a model at all" * 10)
    assert "magic" in _init_error(p).lower()


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.gguf"
    p.write_bytes(b"")
    assert _init_error(p)


@pytest.mark.parametrize("fraction", [0.001, 0.01, 0.1, 0.5, 0.99])
def test_truncated(tmp_path: Path, llama_f32: Path, fraction: float) -> None:
    data = llama_f32.read_bytes()
    p = tmp_path / "cut.gguf"
    p.write_bytes(data[: max(1, int(len(data) * fraction))])
    assert _init_error(p)


def _patch(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) >= 1
    return data.replace(old, new, 1)


def test_unknown_architecture(tmp_path: Path, llama_f32: Path) -> None:
    data = llama_f32.read_bytes()
    key = b"general.architecture"
    at = data.index(key) + len(key) + 4  # skip the value type
    length = struct.unpack_from("<Q", data, at)[0]
    assert data[at + 8: at + 8 + length] == b"llama"
    p = tmp_path / "arch.gguf"
    p.write_bytes(data[: at + 8] + b"mamba" + data[at + 8 + length:])
    msg = _init_error(p)
    assert "unsupported architecture" in msg and "mamba" in msg


def test_impossible_dimensions(tmp_path: Path, llama_f32: Path) -> None:
    data = bytearray(llama_f32.read_bytes())
    name = b"token_embd.weight"
    at = data.index(name) + len(name)
    n_dims = struct.unpack_from("<I", data, at)[0]
    assert n_dims == 2
    struct.pack_into("<Q", data, at + 4 + 8, 1 << 40)  # ne[1]: a trillion rows
    p = tmp_path / "dims.gguf"
    p.write_bytes(bytes(data))
    assert "token_embd.weight" in _init_error(p)


def test_wrong_tensor_shape(tmp_path: Path, llama_f32: Path) -> None:
    data = bytearray(llama_f32.read_bytes())
    name = b"blk.0.attn_k.weight"
    at = data.index(name) + len(name)
    ne1 = struct.unpack_from("<Q", data, at + 4 + 8)[0]
    struct.pack_into("<Q", data, at + 4 + 8, ne1 // 2)  # fewer rows than the KV heads need
    p = tmp_path / "shape.gguf"
    p.write_bytes(bytes(data))
    assert "blk.0.attn_k.weight" in _init_error(p)


def _raw_complete(model, messages: bytes, size: int = 1 << 16, options=ffi.NULL):
    buf = ffi.new("char[]", size)
    rc = lib.cactus_complete(model, messages, buf, size, options, ffi.NULL, ffi.NULL, ffi.NULL)
    return rc, ffi.string(buf).decode()


@pytest.mark.parametrize(
    "messages, needle",
    [
        (b"[{", "not valid JSON"),
        (b'{"role": "user"}', "array"),
        (b"[]", "empty"),
        (b'[{"role": "wizard", "content": "hi"}]', "wizard"),
        (b'[{"content": "hi"}]', "role"),
        (b'[{"role": "user", "content": 5}]', "content"),
        (b'[{"role": "user", "content": "\xff\xfe"}]', "JSON"),
    ],
)
def test_malformed_messages(llama_f32: Path, messages: bytes, needle: str) -> None:
    model = cactus.cactus_init(str(llama_f32))
    try:
        rc, text = _raw_complete(model, messages)
        assert rc == ERR_INVALID_ARGUMENT
        r = json.loads(text)
        assert r["success"] is False and needle in r["error"]
        assert needle in cactus.cactus_get_last_error()
        try:
            as_text = messages.decode("utf-8")
        except UnicodeDecodeError:
            return  # Python strings cannot carry invalid UTF-8; the C path above covered it
        with pytest.raises(RuntimeError, match=needle):
            cactus.cactus_complete(model, as_text)
    finally:
        cactus.cactus_destroy(model)


@pytest.mark.parametrize(
    "options, needle",
    [
        (b'{"max_tokens": "ten"}', "max_tokens"),
        (b'{"max_tokens": 0}', "max_tokens"),
        (b'{"temperature": -1}', "temperature"),
        (b'{"top_p": 2}', "top_p"),
        (b'{"stop_sequences": "x"}', "stop_sequences"),
        (b"[1, 2]", "object"),
    ],
)
def test_bad_options(llama_f32: Path, options: bytes, needle: str) -> None:
    model = cactus.cactus_init(str(llama_f32))
    try:
        rc, text = _raw_complete(model, json.dumps(MESSAGES).encode(), options=options)
        assert rc == ERR_INVALID_ARGUMENT
        assert needle in json.loads(text)["error"]
    finally:
        cactus.cactus_destroy(model)


def test_null_arguments(llama_f32: Path) -> None:
    assert lib.cactus_init(ffi.NULL, ffi.NULL, False) == ffi.NULL
    assert "NULL" in cactus.cactus_get_last_error()
    rc, text = _raw_complete(ffi.NULL, b"[]")
    assert rc == ERR_INVALID_ARGUMENT and json.loads(text)["success"] is False
    model = cactus.cactus_init(str(llama_f32))
    try:
        rc, text = _raw_complete(model, ffi.NULL)
        assert rc == ERR_INVALID_ARGUMENT and "messages_json" in json.loads(text)["error"]
        assert lib.cactus_complete(model, b"[]", ffi.NULL, 100, ffi.NULL, ffi.NULL, ffi.NULL, ffi.NULL) < 0
        n = ffi.new("size_t *")
        assert lib.cactus_tokenize(model, ffi.NULL, ffi.NULL, 0, n) == ERR_INVALID_ARGUMENT
        assert lib.cactus_logits(model, ffi.NULL, 3, ffi.NULL, 0) == ERR_INVALID_ARGUMENT
    finally:
        cactus.cactus_destroy(model)
    lib.cactus_reset(ffi.NULL)
    lib.cactus_stop(ffi.NULL)
    lib.cactus_destroy(ffi.NULL)
    assert lib.cactus_vocab_size(ffi.NULL) == 0


def test_buffer_too_small(llama_f32: Path) -> None:
    model = cactus.cactus_init(str(llama_f32))
    try:
        rc, _ = _raw_complete(model, json.dumps(MESSAGES).encode(), size=8)
        assert rc == ERR_BUFFER_TOO_SMALL
        assert "buffer too small" in cactus.cactus_get_last_error()
        rc, _text = _raw_complete(model, json.dumps(MESSAGES).encode(), size=200)
        assert rc == ERR_BUFFER_TOO_SMALL  # a 200-byte buffer cannot hold the 14 keys
        n = ffi.new("size_t *")
        out = ffi.new("uint32_t[]", 1)
        assert lib.cactus_tokenize(model, b"hello world, a longer text", out, 1, n) == ERR_BUFFER_TOO_SMALL
        assert n[0] > 1
        logits = ffi.new("float[]", 10)
        ids = ffi.new("uint32_t[]", [1, 2])
        assert lib.cactus_logits(model, ids, 2, logits, 10) == ERR_BUFFER_TOO_SMALL
    finally:
        cactus.cactus_destroy(model)


def test_token_id_out_of_range(llama_f32: Path) -> None:
    with cactus.Cactus(str(llama_f32)) as model, pytest.raises(RuntimeError, match="out of range"):
        model.logits([0, model.vocab_size + 5])


def test_closed_model_raises(llama_f32: Path) -> None:
    model = cactus.Cactus(str(llama_f32))
    model.close()
    with pytest.raises(RuntimeError, match="closed"):
        model.complete("hi")
