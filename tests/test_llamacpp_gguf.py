"""A GGUF written the way llama.cpp's converter writes one (the `gguf` package, llama arch,
SentencePiece vocab, Q8_0 and Q4_0 tensors) loads, tokenizes exactly and generates."""

from __future__ import annotations

from pathlib import Path

import cactus
import gguf
import numpy as np
import pytest

from .conftest import SHARED

VOCAB = SHARED / "vocab" / "ggml-vocab-llama-spm.gguf"
D, FF, HEADS, KV_HEADS, LAYERS = 64, 128, 4, 2, 2


def _field(reader: gguf.GGUFReader, key: str):
    f = reader.fields[key]
    if f.types[0] == gguf.GGUFValueType.ARRAY:
        if f.types[1] == gguf.GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
        return [f.parts[i][0].item() for i in f.data]
    if f.types[0] == gguf.GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8")
    return f.parts[f.data[0]][0].item()


def _quant(w: np.ndarray, qtype: gguf.GGMLQuantizationType) -> np.ndarray:
    return gguf.quants.quantize(w.astype(np.float32), qtype)


@pytest.fixture(scope="module")
def llamacpp_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not VOCAB.exists():
        pytest.fail(f"{VOCAB} is missing: ../shared must sit beside the checkout")
    vocab = gguf.GGUFReader(str(VOCAB))
    tokens = _field(vocab, "tokenizer.ggml.tokens")
    n_vocab = len(tokens)
    path = tmp_path_factory.mktemp("llamacpp") / "tiny-llama-spm.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny llama spm")
    w.add_context_length(512)
    w.add_embedding_length(D)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FF)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_dimension_count(D // HEADS)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_0)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(_field(vocab, "tokenizer.ggml.scores"))
    w.add_token_types(_field(vocab, "tokenizer.ggml.token_type"))
    w.add_bos_token_id(_field(vocab, "tokenizer.ggml.bos_token_id"))
    w.add_eos_token_id(_field(vocab, "tokenizer.ggml.eos_token_id"))
    w.add_unk_token_id(_field(vocab, "tokenizer.ggml.unknown_token_id"))
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    rng = np.random.default_rng(0)
    Q8, Q4 = gguf.GGMLQuantizationType.Q8_0, gguf.GGMLQuantizationType.Q4_0

    def mat(rows: int, cols: int) -> np.ndarray:
        return rng.normal(0, 0.08, size=(rows, cols)).astype(np.float32)

    def add(name: str, rows: int, cols: int, qtype: gguf.GGMLQuantizationType) -> None:
        w.add_tensor(name, _quant(mat(rows, cols), qtype), raw_dtype=qtype)

    add("token_embd.weight", n_vocab, D, Q8)
    w.add_tensor("output_norm.weight", (1 + 0.3 * rng.normal(size=D)).astype(np.float32))
    add("output.weight", n_vocab, D, Q8)
    hd = D // HEADS
    for i in range(LAYERS):
        w.add_tensor(f"blk.{i}.attn_norm.weight", (1 + 0.3 * rng.normal(size=D)).astype(np.float32))
        add(f"blk.{i}.attn_q.weight", HEADS * hd, D, Q4)
        add(f"blk.{i}.attn_k.weight", KV_HEADS * hd, D, Q4)
        add(f"blk.{i}.attn_v.weight", KV_HEADS * hd, D, Q8)
        add(f"blk.{i}.attn_output.weight", D, HEADS * hd, Q4)
        w.add_tensor(f"blk.{i}.ffn_norm.weight", (1 + 0.3 * rng.normal(size=D)).astype(np.float32))
        add(f"blk.{i}.ffn_gate.weight", FF, D, Q4)
        add(f"blk.{i}.ffn_up.weight", FF, D, Q4)
        add(f"blk.{i}.ffn_down.weight", D, FF, Q8)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _vocab_cases() -> list:
    texts = (VOCAB.parent / (VOCAB.name + ".inp")).read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    outs = (VOCAB.parent / (VOCAB.name + ".out")).read_text(encoding="utf-8").split("\n")
    return [(t, [int(x) for x in o.split()]) for t, o in zip(texts, outs)]


def test_loads_and_tokenizes_exactly(llamacpp_model: Path) -> None:
    cases = _vocab_cases()
    assert len(cases) >= 40
    with cactus.Cactus(str(llamacpp_model)) as model:
        assert model.vocab_size == 32000
        for text, expected in cases:
            assert model.tokenize(text) == expected, text


def test_generates(llamacpp_model: Path) -> None:
    with cactus.Cactus(str(llamacpp_model)) as model:
        pieces: list = []
        r = model.complete("Hello, how are you?", max_tokens=16, temperature=0,
                           callback=lambda t, i: pieces.append(t))
        assert r["success"] and r["decode_tokens"] >= 1
        assert "".join(pieces) == r["response"]
        logits = model.logits(model.tokenize("The quick brown fox"))
        assert np.isfinite(logits).all() and logits.std() > 0.01
