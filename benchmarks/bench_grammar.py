"""Decode speed with and without constrained tool-call decoding (tool_choice "required").

The grammar mask costs most with a large vocabulary and a small model, so this uses a random-weight
llama-shaped model (hidden 512, 4 layers) over the real 102k-token DeepSeek vocabulary from
../shared/vocab: the output head is cheap enough that the mask's cost shows. Speed depends on shapes
and types, not values. Writes benchmarks/results/grammar.json.

    python benchmarks/bench_grammar.py [--runs 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import gguf
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
VOCAB = ROOT.parent / "shared" / "vocab" / "ggml-vocab-deepseek-llm.gguf"
TOOLS = [{"type": "function", "function": {
    "name": "send_message", "description": "Send a message",
    "parameters": {"type": "object", "properties": {"to": {"type": "string"}, "text": {"type": "string"},
                                                    "urgent": {"type": "boolean"}},
                   "required": ["to", "text", "urgent"]}}}]
ASK = [{"role": "user", "content": "Tell Ana that the meeting moved to Friday at ten."}]


def _field(reader: gguf.GGUFReader, key: str):
    f = reader.fields[key]
    if f.types[0] == gguf.GGUFValueType.ARRAY:
        if f.types[1] == gguf.GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
        return [f.parts[i][0].item() for i in f.data]
    return f.parts[f.data[0]][0].item() if f.types[0] != gguf.GGUFValueType.STRING else bytes(
        f.parts[f.data[0]]).decode("utf-8")


def make_model(path: Path, d: int = 512, layers: int = 4, ff: int = 1408) -> None:
    vocab = gguf.GGUFReader(str(VOCAB))
    tokens = _field(vocab, "tokenizer.ggml.tokens")
    w = gguf.GGUFWriter(str(path), "llama")
    for fn, v in [(w.add_context_length, 2048), (w.add_embedding_length, d), (w.add_block_count, layers),
                  (w.add_feed_forward_length, ff), (w.add_head_count, 8), (w.add_head_count_kv, 4)]:
        fn(v)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(_field(vocab, "tokenizer.ggml.pre"))
    w.add_token_list(tokens)
    w.add_token_types(_field(vocab, "tokenizer.ggml.token_type"))
    w.add_token_merges(_field(vocab, "tokenizer.ggml.merges"))
    w.add_eos_token_id(_field(vocab, "tokenizer.ggml.eos_token_id"))
    rng = np.random.default_rng(0)
    q8 = gguf.GGMLQuantizationType.Q8_0

    def add(name: str, rows: int, cols: int) -> None:
        m = rng.normal(0, 0.05, size=(rows, cols)).astype(np.float32)
        w.add_tensor(name, gguf.quants.quantize(m, q8), raw_dtype=q8)

    add("token_embd.weight", len(tokens), d)
    w.add_tensor("output_norm.weight", np.ones(d, np.float32))
    for i in range(layers):
        for part, rows, cols in [("attn_q", d, d), ("attn_k", d // 2, d), ("attn_v", d // 2, d),
                                 ("attn_output", d, d), ("ffn_gate", ff, d), ("ffn_up", ff, d),
                                 ("ffn_down", d, ff)]:
            add(f"blk.{i}.{part}.weight", rows, cols)
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(d, np.float32))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(d, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=96)
    args = ap.parse_args(argv)
    os.environ["CACTUS_THREADS"] = str(args.threads)
    import cactus

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench-grammar.gguf"
        make_model(path)
        speeds: dict = {"free": [], "constrained": []}
        with cactus.Cactus(str(path)) as model:
            model.complete(ASK, tools=TOOLS, max_tokens=8)  # warm-up: page in weights, build the vocab index
            for run in range(args.runs):
                for mode, choice in (("free", "auto"), ("constrained", "required")):
                    model.reset()
                    r = model.complete(ASK, tools=TOOLS, tool_choice=choice, max_tokens=args.max_tokens,
                                       temperature=0.8, seed=run)
                    speeds[mode].append(r["decode_tps"])
    free, constrained = statistics.median(speeds["free"]), statistics.median(speeds["constrained"])
    result = {
        "what": "decode tok/s, tool_choice auto vs required, 102k vocab, hidden 512, 4 layers, Q8_0",
        "threads": args.threads, "runs": args.runs, "free_tps": speeds["free"],
        "constrained_tps": speeds["constrained"], "median_free_tps": free, "median_constrained_tps": constrained,
        "slowdown_pct": 100.0 * (1.0 - constrained / free), "load_average": os.getloadavg(),
        "machine": platform.processor() or platform.machine(), "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    out = ROOT / "benchmarks" / "results" / "grammar.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"free {free:.1f} tok/s, constrained {constrained:.1f} tok/s, slowdown {result['slowdown_pct']:.1f}%")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
