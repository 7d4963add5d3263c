"""Train the default model shipped in weights/cactus-chat (a small LFM2, CPU, seeded).

Steps: generate the corpus (tools/make_corpus.py) -> train a byte-level BPE tokenizer on it (`tokenizers`;
the Qwen2 pre-tokenizer regex, so digits are split one by one and the converter writes pre = "qwen2";
ChatML and tool tags as added tokens) -> train `Lfm2ForCausalLM` (torch, CPU) with the loss on assistant
tokens only -> save a Hugging Face checkpoint (config.json, model.safetensors, tokenizer.json,
tokenizer_config.json with the ChatML + tools chat template) -> convert it with our converter to GGUF.

    python tools/train_default_model.py                       # full run (see weights/cactus-chat/README.md)
    python tools/train_default_model.py --steps 20 --hf-dir /tmp/x --gguf-dir /tmp/x   # smoke test

Everything is seeded; with the same torch build and thread count the run is repeatable.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "python"))

import make_corpus as mc

# the Qwen2 pre-tokenizer regex (digits one at a time), as python/cactus/convert.py recognises it
QWEN2_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# The same regex with the one-character prefix of a word split off. Merges learned on these pieces never join a
# space or quote to the letters after it, so a name is the same tokens in "in Krakow?" and in {"city": "Krakow"},
# and a tool call's arguments are a plain copy of the request's tokens (with GPT-2 style " Krakow" tokens the
# model had to re-spell every unseen name, and garbled them). Encoding with QWEN2_REGEX gives the same ids.
TRAIN_REGEX = QWEN2_REGEX.replace(r"[^\r\n\p{L}\p{N}]?\p{L}+", r"\p{L}+")
assert TRAIN_REGEX != QWEN2_REGEX
CONTROL_TOKENS = [mc.EOT, mc.IM_START, mc.IM_END]  # special: not shown when decoding
TAG_TOKENS = [mc.TOOL_CALL, mc.TOOL_CALL_END, mc.TOOL_RESPONSE, mc.TOOL_RESPONSE_END]  # shown as text


# The chat template shipped in tokenizer_config.json: it renders exactly what the Qwen2.5 template renders
# (tools in the system prompt, <tool_call> JSON, <tool_response> user turns), default system text included,
# so that engines (ours: csrc/chat.c detects the family by that text) render it with their Qwen2.5 code.
CHAT_TEMPLATE = (
    "{%- set default_system = 'DEFAULT_SYSTEM' -%}\n"
    "{%- if tools -%}\n"
    "{{- '<|im_start|>system\\n' + (messages[0]['content'] if messages[0]['role'] == 'system' else default_system) -}}\n"
    "{{- '\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n'"
    " + 'You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' -}}\n"
    "{%- for tool in tools -%}{{- '\\n' + (tool | tojson) -}}{%- endfor -%}\n"
    "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments'"
    " + ' within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\"name\": <function-name>, \"arguments\":'"
    " + ' <args-json-object>}\\n</tool_call><|im_end|>\\n' -}}\n"
    "{%- else -%}\n"
    "{{- '<|im_start|>system\\n' + (messages[0]['content'] if messages[0]['role'] == 'system' else default_system)"
    " + '<|im_end|>\\n' -}}\n"
    "{%- endif -%}\n"
    "{%- for m in messages -%}\n"
    "{%- if m.role == 'user' or (m.role == 'system' and not loop.first)"
    " or (m.role == 'assistant' and not m.tool_calls) -%}\n"
    "{{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' -}}\n"
    "{%- elif m.role == 'assistant' -%}\n"
    "{{- '<|im_start|>assistant' + (('\\n' + m.content) if m.content else '') -}}\n"
    "{%- for call in m.tool_calls -%}\n"
    "{%- set f = call.function if call.function is defined else call -%}\n"
    "{{- '\\n<tool_call>\\n{\"name\": \"' + f.name + '\", \"arguments\": ' + (f.arguments | tojson)"
    " + '}\\n</tool_call>' -}}\n"
    "{%- endfor -%}\n"
    "{{- '<|im_end|>\\n' -}}\n"
    "{%- elif m.role == 'tool' -%}\n"
    "{%- if loop.first or loop.previtem.role != 'tool' -%}{{- '<|im_start|>user' -}}{%- endif -%}\n"
    "{{- '\\n<tool_response>\\n' + m.content + '\\n</tool_response>' -}}\n"
    "{%- if loop.last or loop.nextitem.role != 'tool' -%}{{- '<|im_end|>\\n' -}}{%- endif -%}\n"
    "{%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}\n"
).replace("DEFAULT_SYSTEM", mc.QWEN_DEFAULT_SYSTEM)


# ------------------------------------------------------------------------------------------------------
# Tokenizer


def _pre_tokenizer(regex: str) -> Any:
    from tokenizers import Regex, pre_tokenizers

    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])


def train_tokenizer(texts: list[str], vocab_size: int) -> Any:
    """Byte-level BPE learned on TRAIN_REGEX pieces, shipped with the Qwen2 pre-tokenizer (see TRAIN_REGEX);
    raises if the two pre-tokenizers encode any of a sample of about 2000 `texts` differently."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(byte_fallback=False))
    tok.pre_tokenizer = _pre_tokenizer(TRAIN_REGEX)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[AddedToken(t, special=True, normalized=False) for t in CONTROL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    split = re.compile("|".join(re.escape(t) for t in mc.SPECIAL_TOKENS))
    pieces = [p for t in texts for p in split.split(t) if p]
    tok.train_from_iterator(pieces, trainer=trainer, length=len(pieces))
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TAG_TOKENS])
    sample = texts[:: max(1, len(texts) // 2000)]
    fine = [e.ids for e in tok.encode_batch(sample, add_special_tokens=False)]
    tok.pre_tokenizer = _pre_tokenizer(QWEN2_REGEX)
    shipped = [e.ids for e in tok.encode_batch(sample, add_special_tokens=False)]
    bad = sum(a != b for a, b in zip(fine, shipped))
    if bad:
        raise RuntimeError(f"{bad}/{len(sample)} texts encode differently with the shipped pre-tokenizer")
    return tok


def encode_conversation(tok: Any, conv: dict[str, Any]) -> tuple[list[int], list[int]]:
    """Token ids of the rendered conversation and a 0/1 mask of the assistant tokens to learn."""
    segs = mc.render_conversation(conv)
    text = "".join(t for t, _ in segs)
    trained = [False] * len(text)
    pos = 0
    for t, is_out in segs:
        if is_out:
            trained[pos:pos + len(t)] = [True] * len(t)
        pos += len(t)
    enc = tok.encode(text, add_special_tokens=False)
    mask = [1 if e > s and trained[s] else 0 for s, e in enc.offsets]
    return list(enc.ids), mask


# ------------------------------------------------------------------------------------------------------
# Training


WIDTH_STEP = 64  # batch widths are padded to multiples of this: each new (rows, width) shape costs oneDNN a
                 # kernel compilation (seconds), so few distinct shapes train several times faster


def padded_width(n: int) -> int:
    return -(-n // WIDTH_STEP) * WIDTH_STEP


def make_batches(lengths: list[int], tokens_per_batch: int, rng: random.Random) -> list[list[int]]:
    """Length-bucketed batches of conversation indices: conversations of the same padded width together,
    as many rows as fit in `tokens_per_batch` (so the batch shapes repeat)."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    by_width: dict[int, list[int]] = {}
    for i in order:
        by_width.setdefault(padded_width(lengths[i]), []).append(i)
    batches: list[list[int]] = []
    for width, members in sorted(by_width.items()):
        rows = max(1, tokens_per_batch // width)
        batches += [members[k:k + rows] for k in range(0, len(members), rows)]
    rng.shuffle(batches)
    return batches


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def make_batch(data: list[tuple[list[int], list[int]]], idx: list[int], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded input ids and labels (-100 where no loss: prompts, padding) for conversations `idx`."""
    width = padded_width(max(len(data[i][0]) for i in idx))
    ids = torch.full((len(idx), width), pad, dtype=torch.long)
    labels = torch.full((len(idx), width), -100, dtype=torch.long)
    for row, i in enumerate(idx):
        x, m = data[i]
        ids[row, :len(x)] = torch.tensor(x)
        lab = torch.tensor([t if k else -100 for t, k in zip(x, m)])
        labels[row, :len(x) - 1] = lab[1:]  # position j predicts token j + 1
    return ids, labels


def train(args: argparse.Namespace, model: Any, data: list[tuple[list[int], list[int]]], vocab: int,
          pad: int) -> tuple[int, int]:
    """AdamW with warmup and cosine decay over `args.steps` length-bucketed batches; returns (steps, epochs).
    `--max-minutes` stops early (and says so) rather than overrun the time budget on a busy machine."""
    rng = random.Random(args.seed)
    lengths = [len(x) for x, _ in data]
    decay = [t for t in model.parameters() if t.ndim >= 2]
    no_decay = [t for t in model.parameters() if t.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.98), eps=1e-8)
    model.train()
    batches: list[list[int]] = []
    step, epoch, seen = 0, 0, 0
    t0 = time.perf_counter()
    run_loss, run_n = 0.0, 0
    while step < args.steps:
        if time.perf_counter() - t0 > args.max_minutes * 60:
            print(f"stopping at step {step}: the {args.max_minutes} minute budget is spent", flush=True)
            break
        if not batches:
            batches = make_batches(lengths, args.tokens_per_batch, rng)
            epoch += 1
        ids, labels = make_batch(data, batches.pop(), pad)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=not args.fp32):
            logits = model(input_ids=ids).logits
        loss = torch.nn.functional.cross_entropy(logits.float().view(-1, vocab), labels.view(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        seen += int(ids.numel())
        run_loss += loss.item()
        run_n += 1
        if step % args.log_every == 0 or step == args.steps:
            dt = time.perf_counter() - t0
            print(f"step {step}/{args.steps} epoch {epoch} loss {run_loss / run_n:.4f} lr {opt.param_groups[0]['lr']:.2e} "
                  f"{seen / dt:.0f} tok/s  {dt / 60:.1f} min", flush=True)
            run_loss, run_n = 0.0, 0
    return step, epoch


def build_model(args: argparse.Namespace, vocab: int, eot: int, im_end: int) -> Any:
    """A fresh model of `args.arch`. LFM2 alternates gated short-convolution blocks with attention blocks: the
    convolution hands each position its predecessors for free, so an attention block can match "the token
    after the one I just wrote" in one step. That is what copying a name from the request into a tool call
    takes, and in a 5-minute trial on fresh repeat-after-me turns an LFM2 got to a loss of 0.27 where the
    same-sized LLaMA was still at 1.62."""
    from transformers import Lfm2Config, Lfm2ForCausalLM, LlamaConfig, LlamaForCausalLM

    common: dict[str, Any] = {
        "vocab_size": vocab, "hidden_size": args.hidden, "intermediate_size": args.ffn,
        "num_hidden_layers": args.layers, "num_attention_heads": args.heads, "num_key_value_heads": args.kv_heads,
        "max_position_embeddings": args.ctx, "tie_word_embeddings": True, "bos_token_id": eot,
        "eos_token_id": im_end, "pad_token_id": eot,
    }
    if args.arch == "llama":
        return LlamaForCausalLM(LlamaConfig(**common, rms_norm_eps=1e-5, rope_theta=10000.0, hidden_act="silu",
                                            attention_bias=False, mlp_bias=False))
    kinds = ["conv", "full_attention"] * (args.layers // 2) + ["conv"] * (args.layers % 2)
    return Lfm2ForCausalLM(Lfm2Config(**common, norm_eps=1e-5, rope_theta=10000.0, conv_L_cache=3,
                                      layer_types=kinds, block_auto_adjust_ff_dim=False))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--corpus-seed", type=int, default=1)
    p.add_argument("--n-conversations", type=int, default=115000)
    p.add_argument("--vocab-size", type=int, default=2048)
    p.add_argument("--arch", choices=["lfm2", "llama"], default="lfm2")
    p.add_argument("--hidden", type=int, default=192)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=3)
    p.add_argument("--kv-heads", type=int, default=3)
    p.add_argument("--ffn", type=int, default=512)
    p.add_argument("--ctx", type=int, default=2048, help="max_position_embeddings written to config.json")
    p.add_argument("--steps", type=int, default=7000)
    p.add_argument("--tokens-per-batch", type=int, default=4096)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--threads", type=int, default=2, help="torch threads (the machine has 2 cores)")
    p.add_argument("--max-minutes", type=float, default=52.0, help="stop training early past this wall time")
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast (default: bf16 matmuls, fp32 weights)")
    p.add_argument("--hf-dir", default="/tmp/cactus-default-hf")
    p.add_argument("--gguf-dir", default=str(ROOT / "weights" / "cactus-chat"),
                   help="where cactus-chat-q8_0.gguf goes (f32 and q4_0 go to --extra-dir)")
    p.add_argument("--extra-dir", default="/tmp/cactus-default-gguf")
    p.add_argument("--log-every", type=int, default=50)
    args = p.parse_args(argv)

    t_start = time.perf_counter()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    # 1. corpus
    convs = mc.generate(args.corpus_seed, args.n_conversations, "train")
    texts = ["".join(t for t, _ in mc.render_conversation(c)) for c in convs]
    print(f"corpus: {len(convs)} conversations, {sum(map(len, texts)) / 1e6:.2f} M chars "
          f"(make_corpus seed {args.corpus_seed})", flush=True)

    # 2. tokenizer
    tok = train_tokenizer(texts, args.vocab_size)
    vocab = tok.get_vocab_size()
    data = [encode_conversation(tok, c) for c in convs]
    lengths = [len(ids) for ids, _ in data]
    n_tok = sum(lengths)
    n_train_tok = sum(sum(m) for _, m in data)
    print(f"tokenizer: {vocab} tokens; corpus {n_tok / 1e6:.2f} M tokens ({n_train_tok / 1e6:.2f} M assistant), "
          f"mean {n_tok / len(data):.0f}, max {max(lengths)} per conversation  [{time.perf_counter() - t_start:.0f}s]",
          flush=True)
    im_end = tok.token_to_id(mc.IM_END)
    eot = tok.token_to_id(mc.EOT)

    # 3. model
    model = build_model(args, vocab, eot, im_end)
    n_params = sum(t.numel() for t in model.parameters())
    print(f"model: {type(model).__name__} {args.layers} layers x {args.hidden} (ffn {args.ffn}, heads {args.heads}/"
          f"{args.kv_heads}), {n_params / 1e6:.2f} M parameters (tied embeddings)", flush=True)

    # 4. train
    t_train = time.perf_counter()
    steps_done, epoch = train(args, model, data, vocab, eot)
    train_s = time.perf_counter() - t_train

    # 5. save the Hugging Face checkpoint
    hf = Path(args.hf_dir)
    hf.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(hf, safe_serialization=True)
    tok.save(str(hf / "tokenizer.json"))
    added = {}
    for t in CONTROL_TOKENS + TAG_TOKENS:
        added[str(tok.token_to_id(t))] = {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                           "single_word": False, "special": t in CONTROL_TOKENS}
    tcfg = {
        "tokenizer_class": "PreTrainedTokenizerFast", "add_bos_token": False, "add_eos_token": False,
        "bos_token": None, "eos_token": mc.IM_END, "pad_token": mc.EOT, "unk_token": None,
        "model_max_length": args.ctx, "clean_up_tokenization_spaces": False, "added_tokens_decoder": added,
        "chat_template": CHAT_TEMPLATE,
    }
    (hf / "tokenizer_config.json").write_text(json.dumps(tcfg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    gen_cfg = {"eos_token_id": [im_end, eot], "pad_token_id": eot, "do_sample": False}
    (hf / "generation_config.json").write_text(json.dumps(gen_cfg, indent=2) + "\n", encoding="utf-8")

    # 6. convert with our converter
    from cactus.convert import convert

    out = Path(args.gguf_dir)
    extra = Path(args.extra_dir)
    out.mkdir(parents=True, exist_ok=True)
    extra.mkdir(parents=True, exist_ok=True)
    paths = {"q8_0": out / "cactus-chat-q8_0.gguf", "f32": extra / "cactus-chat-f32.gguf",
             "q4_0": extra / "cactus-chat-q4_0.gguf"}
    for dtype, path in paths.items():
        convert(hf, path, dtype=dtype, progress=False)
        print(f"wrote {path} ({os.path.getsize(path)} bytes)", flush=True)

    total_s = time.perf_counter() - t_start
    summary = {
        "parameters": n_params, "arch": args.arch, "vocab_size": vocab, "layers": args.layers, "hidden": args.hidden,
        "ffn": args.ffn, "heads": args.heads, "kv_heads": args.kv_heads, "steps": steps_done, "epochs": epoch,
        "tokens_per_batch": args.tokens_per_batch, "corpus_conversations": len(convs), "corpus_tokens": n_tok,
        "corpus_assistant_tokens": n_train_tok, "train_seconds": round(train_s, 1),
        "total_seconds": round(total_s, 1), "threads": args.threads, "bf16_autocast": not args.fp32,
        "torch": torch.__version__, "args": vars(args),
    }
    (hf / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"done: training {train_s / 60:.1f} min, total wall {total_s / 60:.1f} min on {args.threads} threads",
          flush=True)
    print("summary: " + json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
