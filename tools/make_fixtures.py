#!/usr/bin/env python3
"""Write the tiny test checkpoints and their reference logits under tests/fixtures/<family>/.

For each family (llama, qwen2, qwen3, lfm2, gemma3) this writes, offline and seeded:

    config.json, generation_config.json, model.safetensors   a tiny RANDOM float32 checkpoint
                                                            (transformers' save_pretrained)
    tokenizer.json, tokenizer_config.json                    a byte-level BPE trained here (~500 tokens)
    reference.npz                                            tokens (int32, 72; 96 for gemma3) and, per
                                                             dtype in f32 f16 bf16 q8_0 q4_0:
        logits_<dtype>  float32 (n_tokens, n_vocab): transformers' logits (float32, eager attention) of
                        the checkpoint whose weights are replaced by what cactus.convert stores in that
                        dtype, dequantized with the gguf package (llama q/k un-permuted, gemma3 norms
                        shifted back by -1, lfm2 conv kernels reshaped back)
        sha256_<dtype>  sha256 of the converted GGUF file, so tests can tell when the converter's
                        output changed and these references are stale
                                                             and, for lfm2 and gemma3 only:
        gen_message     the user message of a one-turn chat (a 0-d unicode array)
        gen_prompt      int32: its ChatML rendering tokenized (the ids cactus_complete evaluates)
        gen_tokens      int32 (64,): transformers' greedy `generate` from gen_prompt (KV / conv cache on),
                        on the float32 checkpoint (exactly the weights of the f32 GGUF)
        gen_margin      float32: the smallest top-1 minus top-2 logit gap over those 64 steps, divided
                        by the largest |logit|, so a test knows how much numerical slack greedy has

Needs torch==2.13.0, transformers, tokenizers and gguf (none of them at test time). Re-running it gives
the same files. Usage: python tools/make_fixtures.py [--out tests/fixtures] [--family llama ...]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import gguf
import numpy as np
import torch
from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import (
    AutoModelForCausalLM,
    Gemma3TextConfig,
    Lfm2Config,
    LlamaConfig,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen3Config,
)
from transformers.utils import logging as hf_logging

ROOT = Path(__file__).resolve().parents[1]


def _load_converter() -> Any:
    """python/cactus/convert.py from this source tree, without running cactus/__init__.py (which loads the
    native library; the converter is pure Python)."""
    name = "_cactus_src"
    if name not in sys.modules:
        spec = importlib.util.spec_from_loader(name, loader=None, is_package=True)
        assert spec is not None
        pkg = importlib.util.module_from_spec(spec)
        pkg.__path__ = [str(ROOT / "python" / "cactus")]
        sys.modules[name] = pkg
    return importlib.import_module(f"{name}.convert")


cconv = _load_converter()

DTYPES = ("f32", "f16", "bf16", "q8_0", "q4_0")
N_POS = 72
BPE_VOCAB = 500
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

FAMILIES: dict[str, dict[str, Any]] = {
    # llama: untied output head, rms eps 1e-5; its q/k rows get permuted by the converter
    "llama": {
        "config": LlamaConfig, "pre": "gpt-2", "extra_tokens": [], "seed": 1001,
        "kwargs": {"rope_theta": 10000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": False},
    },
    # qwen2: q/k/v biases (always on in Qwen2), tied embeddings, Qwen2 split regex
    "qwen2": {
        "config": Qwen2Config, "pre": "qwen2", "extra_tokens": [], "seed": 2002,
        "kwargs": {"rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True},
    },
    # qwen3: head_dim 32 != 64 / 4, per-head q/k RMSNorm, tied embeddings, two non-special added tokens
    "qwen3": {
        "config": Qwen3Config, "pre": "gpt-2", "extra_tokens": ["<think>", "</think>"], "seed": 3003,
        "kwargs": {"rope_theta": 500000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True, "head_dim": 32},
    },
    # lfm2: two short-convolution blocks around an attention block (q/k RMSNorm), SwiGLU width
    # auto-adjusted 256 -> int(2 * 256 / 3) = 170 -> rounded up to a multiple of 32 = 192, tied embeddings
    "lfm2": {
        "config": Lfm2Config, "pre": "gpt-2", "extra_tokens": [], "seed": 4004, "generate": True,
        "kwargs": {
            "intermediate_size": 256, "num_hidden_layers": 3, "norm_eps": 1e-5, "conv_L_cache": 3,
            "layer_types": ["conv", "full_attention", "conv"],
            "block_auto_adjust_ff_dim": True, "block_multiple_of": 32, "block_ffn_dim_multiplier": 1.0,
            "rope_theta": 1000000.0, "tie_word_embeddings": True,
        },
    },
    # gemma3: a sliding-window block (16 over 96 tokens, local RoPE base 10000) and a global one (1e6),
    # head_dim 32 with query_pre_attn_scalar 24, final logit soft-capping at 2, tied embeddings. Its
    # embeddings are smaller (Gemma scales them by sqrt(hidden) = 8): with the usual 0.1 the current token
    # drowns the context and greedy decoding falls into a two-token loop.
    "gemma3": {
        "config": Gemma3TextConfig, "pre": "gpt-2", "extra_tokens": [], "seed": 5006, "generate": True,
        "n_pos": 96, "embed_std": 0.05,
        "kwargs": {
            "num_hidden_layers": 2, "head_dim": 32, "query_pre_attn_scalar": 24, "sliding_window": 16,
            "layer_types": ["sliding_attention", "full_attention"],
            "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "final_logit_softcapping": 2.0,
            "rms_norm_eps": 1e-6, "tie_word_embeddings": True,
        },
    },
}

# user messages tried in order for the greedy-generation reference; the first whose 64 greedy tokens
# neither end the turn, nor come within GEN_MIN_MARGIN of a tie, nor loop over fewer than GEN_MIN_DISTINCT
# tokens is kept
GEN_MESSAGES = [
    "Tell me a long story about the sea.",
    "What is the capital of the moon?",
    "Write a poem about a cactus in winter.",
    "Explain matrix multiplication simply.",
    "List three colours and a number.",
    "Describe the market at 12:45 on a summer morning.",
    "Why is the river quiet tonight?",
    "Count from one to ten, slowly.",
]
GEN_TOKENS = 64
GEN_MIN_MARGIN = 2e-3
GEN_MIN_DISTINCT = 16

# ---------------------------------------------------------------------------------------------------
# corpus

_WORDS_TEXT = """
the of and to in is was that for it with as his on be at by had are but from or have an they which one
you were her all she there would their we him been has when who will more no if out so said what up its
about into than them can only other new some could time these two may then do first any my now such like
our over man me even most made after also did many before must through back years where much your way
well down should because each just those people how too little state good very make world still own see
men work long get here between both life being under never day same another know while last might us
great old year off come since against go came right used take three small house morning river garden
window winter summer music quiet bright yellow green purple orange silver stone bridge mountain forest
ocean island market coffee bread cheese apple lemon butter honey kitchen table chair pencil paper letter
number question answer reason simple complex system network engine model token vector matrix tensor
"""
_WORDS = _WORDS_TEXT.split()

_PHRASES = [
    "don't", "it's", "we'll", "they're", "I've", "she'd", "you'RE", "I'M", "can't", "won't", "let's",
    "l'été", "café crème", "naïve façade", "Über straße", "größer", "mañana", "piñata", "coração", "Ærø",
    "Привет, мир", "хорошо", "спасибо большое", "Καλημέρα", "ευχαριστώ", "你好，世界", "今天天气很好",
    "机器学习", "こんにちは", "ありがとう", "カタカナ", "안녕하세요", "감사합니다", "مرحبا بالعالم", "شكرا",
    "नमस्ते", "धन्यवाद", "שלום", "สวัสดี", "xin chào", "😀", "🚀🚀", "👍🏽", "🌵 cactus", "∑ x² ≤ ∞", "→ ← ↑",
    "3.14159", "2025-01-31", "12:45", "$1,299.99", "100%", "#42", "v0.1.0", "0xFF", "1e-6", "x_1 + y_2",
    "def f(x):", "return x * 2", "{\"key\": [1, 2, 3]}", "a->b", "i += 1;", "<div class=\"box\">", "C:\\tmp",
    "snake_case", "camelCase", "SHOUTING", "...", "?!", "--", "(parenthesis)", "[brackets]", "'quoted'",
]


def make_corpus(seed: int = 1234, n_lines: int = 600) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for i in range(n_lines):
        n = rng.randint(3, 18)
        parts = []
        for _ in range(n):
            r = rng.random()
            if r < 0.62:
                w = rng.choice(_WORDS)
                parts.append(w.capitalize() if rng.random() < 0.12 else w)
            elif r < 0.85:
                parts.append(rng.choice(_PHRASES))
            elif r < 0.95:
                parts.append(str(rng.randint(0, 10 ** rng.randint(1, 6))))
            else:
                parts.append(rng.choice([",", ".", ";", ":", "!", "?", " -", "  ", "\t"]))
        line = " ".join(parts)
        if i % 7 == 0:
            line += "\n" + rng.choice(_PHRASES)
        if i % 11 == 0:
            line = "  " + line + "   "
        lines.append(line)
    return lines


# ---------------------------------------------------------------------------------------------------
# tokenizer


def train_tokenizer(pre: str, extra_tokens: list[str]) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    if pre == "qwen2":
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(cconv.QWEN2_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False, trim_offsets=False),
        ])
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True, trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(make_corpus(), trainer=trainer)
    if tok.get_vocab_size(with_added_tokens=False) != BPE_VOCAB:
        raise RuntimeError(f"trained vocab is {tok.get_vocab_size()}, wanted {BPE_VOCAB}; enlarge the corpus")
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    if extra_tokens:
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in extra_tokens])
    return tok


def write_tokenizer(tok: Tokenizer, out: Path) -> None:
    tok.save(str(out / "tokenizer.json"))
    decoder: dict[str, Any] = {}
    for i, a in sorted(tok.get_added_tokens_decoder().items()):
        decoder[str(i)] = {
            "content": a.content, "lstrip": a.lstrip, "normalized": a.normalized, "rstrip": a.rstrip,
            "single_word": a.single_word, "special": a.special,
        }
    cfg = {
        "add_bos_token": False,
        "add_eos_token": False,
        "added_tokens_decoder": decoder,
        "bos_token": None,
        "chat_template": CHATML,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 256,
        "pad_token": "<|endoftext|>",
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": None,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n",
                                               encoding="utf-8")


# ---------------------------------------------------------------------------------------------------
# model


def make_model(family: str, spec: dict[str, Any], tok: Tokenizer) -> torch.nn.Module:
    n_tok = tok.get_vocab_size(with_added_tokens=True)
    vocab = (n_tok + 7) // 8 * 8
    shape: dict[str, Any] = {
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "max_position_embeddings": 256,
    }
    shape.update(spec["kwargs"])
    config = spec["config"](
        vocab_size=vocab,
        bos_token_id=None,
        eos_token_id=tok.token_to_id("<|im_end|>"),
        pad_token_id=tok.token_to_id("<|endoftext|>"),
        **shape,
    )
    torch.manual_seed(spec["seed"])
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=torch.float32)
    g = torch.Generator().manual_seed(spec["seed"])
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if name.endswith("norm.weight") and family == "gemma3":
                p.copy_(0.5 * torch.randn(p.shape, generator=g))  # Gemma scales by 1 + w
            elif name.endswith("norm.weight"):
                p.copy_(1.0 + 0.5 * torch.randn(p.shape, generator=g))
            elif name.endswith("conv.conv.weight"):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))  # 3 taps: large enough to matter
            elif name.endswith(".bias") or "embed_tokens" in name or "lm_head" in name:
                std = spec.get("embed_std", 0.1) if "embed_tokens" in name else 0.1
                p.copy_(std * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.08 * torch.randn(p.shape, generator=g))
    model.eval()
    return model


# GGUF block tensor (the part between "blk.N." and ".weight") -> HF module under model.layers.N.
_HF_OF: dict[str, dict[str, str]] = {
    "llama": {
        "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
        "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm",
        "attn_k_norm": "self_attn.k_norm", "ffn_norm": "post_attention_layernorm",
        "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
    },
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
_TOP_OF = {
    "token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
    "token_embd_norm.weight": "model.embedding_norm.weight", "output.weight": "lm_head.weight",
}


def gguf_state_dict(path: Path, family: str, cfg: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The weights stored in a converted GGUF file, dequantized, under their HF names and in HF's form."""
    n_head, n_head_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hf_of = _HF_OF.get(family, _HF_OF["llama"])
    sd: dict[str, torch.Tensor] = {}
    reader = gguf.GGUFReader(str(path))
    for t in reader.tensors:
        w = np.array(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
        w = w.reshape(tuple(int(d) for d in reversed(t.shape)))
        parts = t.name.split(".")
        if parts[0] == "blk":
            layer, base, kind = parts[1], ".".join(parts[2:-1]), parts[-1]
            if family == "llama" and base == "attn_q":
                w = cconv.unpermute_qk(w, n_head)
            elif family == "llama" and base == "attn_k":
                w = cconv.unpermute_qk(w, n_head_kv)
            elif base == "shortconv.conv":
                w = w[:, None, :]  # back to Conv1d's (channels, 1, kernel)
            name = f"model.layers.{layer}.{hf_of[base]}.{kind}"
        else:
            name = _TOP_OF[t.name]
        if family == "gemma3" and t.name.endswith("norm.weight"):
            w = w - np.float32(1.0)  # llama.cpp stores Gemma's 1 + w
        sd[name] = torch.from_numpy(np.ascontiguousarray(w))
    if "lm_head.weight" not in sd:
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    return sd


def same_weights(family: str, name: str, got: torch.Tensor, want: torch.Tensor) -> bool:
    """Whether the f32 round trip kept a weight: exactly, or for Gemma norms the 1 + w HF multiplies by."""
    if family == "gemma3" and name.endswith("norm.weight"):
        return torch.equal(1.0 + got, 1.0 + want)
    return torch.equal(got, want)


def greedy_reference(model: torch.nn.Module, src: Path, tok: Tokenizer) -> dict[str, np.ndarray]:
    """transformers' greedy generation (with its KV / conv cache) on the first GEN_MESSAGES chat whose 64
    tokens neither end the turn early, nor pass within GEN_MIN_MARGIN of a tie, nor loop."""
    hf_tok = PreTrainedTokenizerFast.from_pretrained(str(src))
    eos, pad = tok.token_to_id("<|im_end|>"), tok.token_to_id("<|endoftext|>")
    best: dict[str, np.ndarray] | None = None
    for message in GEN_MESSAGES:
        text = hf_tok.apply_chat_template([{"role": "user", "content": message}], tokenize=False,
                                          add_generation_prompt=True)
        prompt = tok.encode(str(text)).ids
        with torch.no_grad():
            out = model.generate(torch.tensor([prompt]), max_new_tokens=GEN_TOKENS, do_sample=False,
                                 eos_token_id=eos, pad_token_id=pad, output_scores=True,
                                 return_dict_in_generate=True)
        gen = out.sequences[0, len(prompt):].numpy().astype(np.int32)
        scores = torch.stack(out.scores)[:, 0].to(torch.float32)
        top2 = scores.topk(2, dim=-1).values
        margin = float(((top2[:, 0] - top2[:, 1]) / scores.abs().max()).min())
        cand = {"gen_message": np.array(message), "gen_prompt": np.array(prompt, dtype=np.int32),
                "gen_tokens": gen, "gen_margin": np.array(margin, dtype=np.float32)}
        ok = len(gen) == GEN_TOKENS and eos not in gen.tolist() and len(set(gen.tolist())) >= GEN_MIN_DISTINCT
        if ok and margin >= GEN_MIN_MARGIN:
            return cand
        if best is None:
            best = cand
    raise RuntimeError(f"no message in GEN_MESSAGES gives a clean 64-token greedy run (first: {best})")


def logits_of(model: torch.nn.Module, tokens: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(tokens.astype(np.int64))[None], use_cache=False)
    return out.logits[0].to(torch.float32).numpy()


# ---------------------------------------------------------------------------------------------------


def build(family: str, out_root: Path) -> dict[str, Any]:
    spec = FAMILIES[family]
    final = out_root / family
    out_root.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{family}-", dir=out_root))
    try:
        src = stage / family  # the folder name becomes general.name, so it must match the final one
        src.mkdir()
        tok = train_tokenizer(spec["pre"], spec["extra_tokens"])
        model = make_model(family, spec, tok)
        model.save_pretrained(str(src))  # transformers >= 5 always writes safetensors
        write_tokenizer(tok, src)
        cfg = json.loads((src / "config.json").read_text(encoding="utf-8"))

        n_tok = tok.get_vocab_size(with_added_tokens=True)
        rng = np.random.default_rng(spec["seed"])
        tokens = rng.integers(0, n_tok, size=spec.get("n_pos", N_POS)).astype(np.int32)
        ref: dict[str, np.ndarray] = {"tokens": tokens}
        original = {k: v.detach().clone() for k, v in model.state_dict().items()}
        for dtype in DTYPES:
            path = stage / f"{family}-{dtype}.gguf"
            cconv.convert(src, path, dtype=dtype, progress=False)
            ref[f"sha256_{dtype}"] = np.array(hashlib.sha256(path.read_bytes()).hexdigest())
            sd = gguf_state_dict(path, family, cfg)
            if dtype == "f32":
                for k, v in sd.items():
                    assert same_weights(family, k, v, original[k]), f"f32 round trip changed {k}"
            model.load_state_dict(sd, strict=True)
            ref[f"logits_{dtype}"] = logits_of(model, tokens)
            path.unlink()
        model.load_state_dict(original, strict=True)
        np.testing.assert_array_equal(logits_of(model, tokens), ref["logits_f32"])
        if spec.get("generate"):
            ref.update(greedy_reference(model, src, tok))
        np.savez_compressed(src / "reference.npz", **ref)
        for p in src.iterdir():
            p.chmod(0o644)

        if final.exists():
            shutil.rmtree(final)
        os.replace(src, final)
    finally:
        shutil.rmtree(stage, ignore_errors=True)

    f32 = ref["logits_f32"]
    scale = float(np.abs(f32).max())
    errs = {d: float(np.abs(ref[f"logits_{d}"] - f32).max() / scale) for d in DTYPES[1:]}
    info = {
        "vocab": int(f32.shape[1]), "tokens": n_tok, "max_logit": scale, "logit_std": float(f32.std()),
        "rel_err_vs_f32": errs, "bytes": sum(p.stat().st_size for p in final.iterdir()),
    }
    if "gen_tokens" in ref:
        info["gen"] = {"message": str(ref["gen_message"]), "prompt_len": len(ref["gen_prompt"]),
                       "margin": float(ref["gen_margin"])}
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "tests" / "fixtures"), help="fixtures folder")
    ap.add_argument("--family", action="append", choices=sorted(FAMILIES), help="only these (repeatable)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # deterministic reductions
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    t0 = time.perf_counter()
    for family in args.family or list(FAMILIES):
        info = build(family, Path(args.out))
        print(f"{family}: {json.dumps(info)}")
    print(f"wall time: {time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
