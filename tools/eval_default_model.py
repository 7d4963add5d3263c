"""Evaluate the default model (weights/cactus-chat) through our engine, on held-out prompts.

The prompts come from tools/make_corpus.py's held-out pools (other phrasings, cities,
names and messages than training) drawn with a different seed, plus out-of-domain questions that the
corpus leaves out on purpose. Everything runs through `cactus.Cactus(...).complete(...)` with greedy
decoding and through `Cactus.logits(...)`:

- arithmetic: the last number of the answer is the exact result (bar: >= 95%)
- tools: a parsable call (from `function_calls`, else `<tool_call>` in `response`) of the right function
  (bar: >= 95%) with the right arguments (bar: >= 90%)
- confidence (`confidence` in the response JSON) separates in-domain from out-of-domain prompts:
  ROC AUC (bar: >= 0.9)
- quantization: next-token top-1 agreement of q8_0 and q4_0 with f32 on held-out conversations
  (bars: >= 99%, >= 90%) and the perplexity of each type

    python tools/eval_default_model.py [--quick] [--out weights/cactus-chat/eval.json]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import make_corpus as mc

DEFAULT_MODEL = ROOT / "weights" / "cactus-chat" / "cactus-chat-q8_0.gguf"
DEFAULT_F32 = Path("/tmp/cactus-default-gguf/cactus-chat-f32.gguf")
DEFAULT_Q4 = Path("/tmp/cactus-default-gguf/cactus-chat-q4_0.gguf")
EVAL_SEED = 20250
BARS = {"arith_exact": 0.95, "tool_function": 0.95, "tool_arguments": 0.90, "confidence_auc": 0.90,
        "q8_0_top1_agreement": 0.99, "q4_0_top1_agreement": 0.90}

# Questions the corpus never covers (what cloud handoff is for).
OUT_OF_DOMAIN = [
    "What is the capital of Australia?", "Who painted the Mona Lisa?", "Explain quantum entanglement simply.",
    "Write a short poem about the sea.", "How do I bake sourdough bread?", "When did World War II end?",
    "Translate 'good night' into French.", "What is the derivative of x squared?",
    "Can you recommend a good science fiction book?", "Summarize the plot of Hamlet.",
    "What causes the seasons on Earth?", "How does a vaccine work?", "Who was the first person on the moon?",
    "What is the population of Brazil?", "Write a Python function that reverses a string.",
    "What is the meaning of life?", "How do airplanes stay in the air?", "What is photosynthesis?",
    "Give me three tips for a job interview.", "What is the tallest mountain in Africa?",
    "Explain how a blockchain works.", "Who wrote Pride and Prejudice?", "What should I cook for dinner tonight?",
    "Is coffee bad for your health?", "What is the difference between a virus and a bacterium?",
    "How many moons does Jupiter have?", "Describe the French Revolution in two sentences.",
    "What programming language should I learn first?", "Why is the sky blue?",
    "What is the square root of 2 to ten decimal places?", "Can you help me write a cover letter?",
    "What are black holes made of?", "How do I fix a leaking tap?", "What is machine learning?",
    "Which planet is closest to the sun?", "What does DNA stand for?", "How do I invest in stocks?",
    "Tell me about the history of the Roman Empire.", "What is the best way to learn a new language?",
    "Who is the president of France?", "What is inflation in economics?", "How long do cats usually live?",
    "Explain the theory of relativity.", "What are the rules of chess?", "How do I make my plants grow faster?",
    "What year was the printing press invented?", "Write a haiku about autumn.", "How does the stock market work?",
    "What is the boiling point of water on Mount Everest?", "Recommend a movie for tonight.",
    "What's the best route to drive across Europe?", "Why do we dream?", "How are rainbows formed?",
    "What is the GDP of Japan?", "Compose a limerick about a cat.", "What language is spoken in Brazil?",
    "How do noise cancelling headphones work?", "What is an integral?", "Who discovered penicillin?",
    "Plan a three day trip to Italy for me.",
]


# ------------------------------------------------------------------------------------------------------
# Held-out prompts


def _strip_to_prompt(conv: dict[str, Any], n_user: int) -> list[dict[str, Any]]:
    """The messages up to and including the n_user-th user turn (1-based)."""
    out: list[dict[str, Any]] = []
    seen = 0
    for m in conv["messages"]:
        out.append(m)
        if m["role"] == "user":
            seen += 1
            if seen == n_user:
                break
    return out


def arithmetic_items(g: mc.Gen, n: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for i in range(n):
        q, a, c, (_, _, op) = g.arith(["+", "-", "*"][i % 3])
        msgs: list[dict[str, Any]] = [{"role": "user", "content": q}]
        if i % 4 == 3:  # a follow-up question after a first exchange
            q2, _, c2 = g.follow(op)
            msgs += [{"role": "assistant", "content": a}, {"role": "user", "content": q2}]
            c = c2
        if i % 5 == 1:
            msgs.insert(0, {"role": "system", "content": g.r.choice(mc.SYSTEM_PROMPTS)})
        items.append({"messages": msgs, "answer": c})
    return items


def tool_items(g: mc.Gen, n: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    names = list(mc.TOOLS)
    for i in range(n):
        name = names[i % len(names)]
        turns, meta = g.tool_turns(name)
        msgs = [turns[0]]
        if i % 3 == 1:
            msgs.insert(0, {"role": "system", "content": g.r.choice(mc.SYSTEM_PROMPTS)})
        tools = g.tools_for(name) if i % 2 == 0 else list(mc.TOOLS.values())
        items.append({"messages": msgs, "tools": tools, "call": meta["call"], "after": turns[1:3],
                      "final": turns[3]["content"]})
    return items


def chat_items(g: mc.Gen, n: int) -> list[dict[str, Any]]:
    """In-domain prompts that are neither arithmetic nor tools: greetings, identity, jokes, units."""
    pools = [mc.GREET_ASK, mc.IDENTITY_ASK, mc.ABILITY_ASK, mc.JOKE_ASK, mc.THANKS_ASK, mc.HOW_ASK]
    items: list[dict[str, Any]] = []
    for i in range(n):
        if i % 4 == 3:
            conv = g.conv_units()
            items.append({"messages": conv["messages"][:1], "answer": conv["meta"]["answer"]})
        else:
            items.append({"messages": [{"role": "user", "content": g.pick(pools[i % len(pools)])}]})
    return items


# ------------------------------------------------------------------------------------------------------
# Scoring helpers


def last_number(text: str) -> float | None:
    nums = re.findall(r"-?\d+(?:\.\d+)?", text)
    return float(nums[-1]) if nums else None


def parse_calls(resp: dict[str, Any]) -> list[dict[str, Any]]:
    """Tool calls of a response: the engine's `function_calls` when present, else <tool_call> blocks."""
    calls: list[dict[str, Any]] = []
    for fc in resp.get("function_calls") or []:
        if isinstance(fc, dict):
            fn = fc.get("function", fc)
            args = fn.get("arguments")
            if isinstance(args, str):
                try:
                    args = json.loads(args)
                except ValueError:
                    args = None
            calls.append({"name": fn.get("name"), "arguments": args})
    if calls:
        return calls
    text = resp.get("response") or ""
    for body in re.findall(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", text, flags=re.DOTALL):
        try:
            obj = json.loads(body)
        except ValueError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("name"), str):
            calls.append({"name": obj["name"], "arguments": obj.get("arguments")})
    return calls


def same_arguments(got: Any, want: dict[str, Any]) -> bool:
    if not isinstance(got, dict) or set(got) != set(want):
        return False
    for k, v in want.items():
        g = got[k]
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if not isinstance(g, (int, float)) or abs(float(g) - float(v)) > 1e-9:
                return False
        elif g != v:
            return False
    return True


def roc_auc(pos: Sequence[float], neg: Sequence[float]) -> float:
    """P(a positive scores above a negative), ties counting one half (Mann-Whitney U)."""
    if not pos or not neg:
        return float("nan")
    wins = 0.0
    for p in pos:
        for q in neg:
            wins += 1.0 if p > q else 0.5 if p == q else 0.0
    return wins / (len(pos) * len(neg))


# ------------------------------------------------------------------------------------------------------
# Runs


def _complete(model: Any, item: dict[str, Any], max_tokens: int) -> dict[str, Any]:
    return model.complete(item["messages"], tools=item.get("tools"), max_tokens=max_tokens, temperature=0.0)


HANDOFF_GRID = [round(0.30 + 0.05 * i, 2) for i in range(14)]  # 0.30 .. 0.95


def handoff_sweep(model: Any, inside: list[dict[str, Any]], outside: list[dict[str, Any]],
                  max_tokens: int) -> list[dict[str, Any]]:
    """For each threshold of HANDOFF_GRID, the share of in-domain prompts kept on the device and of
    out-of-domain prompts the engine would hand off. It is the engine's own decision (first token, rolling
    window, whole answer), read with no cloud handler installed: a handoff attempt then shows as
    `cloud_error`, and nothing leaves the machine."""
    from cactus import ffi, lib

    lib.cactus_set_cloud_handler(model._handle, ffi.NULL, ffi.NULL)
    rows = []
    for th in HANDOFF_GRID:
        def wants_cloud(it: dict[str, Any], th: float = th) -> bool:
            r = model.complete(it["messages"], tools=it.get("tools"), max_tokens=max_tokens, temperature=0.0,
                               cloud_handoff_threshold=th)
            return "cloud_error" in r

        kept = sum(not wants_cloud(it) for it in inside) / max(1, len(inside))
        sent = sum(wants_cloud(it) for it in outside) / max(1, len(outside))
        rows.append({"threshold": th, "in_domain_kept": round(kept, 4), "out_of_domain_sent": round(sent, 4)})
    return rows


def best_threshold(rows: list[dict[str, Any]]) -> float:
    """The threshold with the best balanced accuracy (the lowest of equals: fewer needless handoffs)."""
    return max(rows, key=lambda r: (r["in_domain_kept"] + r["out_of_domain_sent"], -r["threshold"]))["threshold"]


def behaviour_eval(model_path: str, n_arith: int, n_tool: int, n_chat: int, n_ood: int,
                   seed: int = EVAL_SEED, max_tokens: int = 64, verbose: bool = False,
                   sweep: bool = False) -> dict[str, Any]:
    import cactus

    g = mc.Gen(seed, "heldout")
    arith, tools, chat = arithmetic_items(g, n_arith), tool_items(g, n_tool), chat_items(g, n_chat)
    ood = [{"messages": [{"role": "user", "content": q}]} for q in OUT_OF_DOMAIN[:n_ood]]
    conf_in: list[float] = []
    conf_out: list[float] = []
    failures: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    with cactus.Cactus(str(model_path)) as model:
        ok = 0
        for it in arith:
            r = _complete(model, it, max_tokens)
            conf_in.append(float(r["confidence"]))
            good = last_number(r["response"]) == float(it["answer"])
            ok += good
            if not good:
                failures.append({"kind": "arith", "prompt": it["messages"][-1]["content"], "want": it["answer"],
                                 "got": r["response"]})
        arith_exact = ok / max(1, len(arith))

        fn_ok = args_ok = parsed = final_ok = 0
        for it in tools:
            r = _complete(model, it, max_tokens)
            conf_in.append(float(r["confidence"]))
            calls = parse_calls(r)
            parsed += bool(calls)
            want = it["call"]
            good_fn = bool(calls) and calls[0]["name"] == want["name"]
            good_args = good_fn and same_arguments(calls[0]["arguments"], want["arguments"])
            fn_ok += good_fn
            args_ok += good_args
            if not good_args:
                failures.append({"kind": "tool", "prompt": it["messages"][-1]["content"], "want": want,
                                 "got": r["response"], "function_calls": r.get("function_calls")})
            # the answer once the tool result is in (after the expected call)
            r2 = model.complete(it["messages"] + it["after"], tools=it["tools"], max_tokens=max_tokens,
                                temperature=0.0)
            final_ok += r2["response"].strip() == it["final"]
        units_ok = units_n = 0
        for it in chat:
            r = _complete(model, it, max_tokens)
            conf_in.append(float(r["confidence"]))
            if "answer" in it:
                units_n += 1
                units_ok += last_number(r["response"]) == float(it["answer"])
            if verbose:
                print(f"  [chat] {it['messages'][-1]['content']!r} -> {r['response']!r} ({r['confidence']:.3f})")
        ood_samples = []
        for it in ood:
            r = _complete(model, it, max_tokens)
            conf_out.append(float(r["confidence"]))
            ood_samples.append({"prompt": it["messages"][-1]["content"], "response": r["response"],
                                "confidence": round(float(r["confidence"]), 4)})
        rows = handoff_sweep(model, arith[:40] + tools[:40] + chat[:20], ood, max_tokens) if sweep else []
    n_tools = max(1, len(tools))
    return {
        "model": str(model_path),
        "seed": seed,
        "arith_n": len(arith), "arith_exact": arith_exact,
        "tool_n": len(tools), "tool_parsable": parsed / n_tools, "tool_function": fn_ok / n_tools,
        "tool_arguments": args_ok / n_tools, "tool_result_answer_exact": final_ok / n_tools,
        "units_n": units_n, "units_exact": units_ok / max(1, units_n),
        "in_domain_n": len(conf_in), "out_of_domain_n": len(conf_out),
        "confidence_auc": roc_auc(conf_in, conf_out),
        "confidence_in_mean": float(np.mean(conf_in)) if conf_in else float("nan"),
        "confidence_out_mean": float(np.mean(conf_out)) if conf_out else float("nan"),
        "confidence_in_min": float(np.min(conf_in)) if conf_in else float("nan"),
        "confidence_out_max": float(np.max(conf_out)) if conf_out else float("nan"),
        "seconds": round(time.perf_counter() - t0, 1),
        "failures": failures[:20],
        "out_of_domain_samples": ood_samples[:8],
        **({"handoff_sweep": rows, "recommended_threshold": best_threshold(rows)} if rows else {}),
    }


def _assistant_mask(tok: Any, ids: list[int], conv: dict[str, Any]) -> list[bool] | None:
    """Which tokens lie in assistant output, from each token's decoded text (None if that does not line up)."""
    segs = mc.render_conversation(conv)
    text = "".join(t for t, _ in segs)
    trained = [False] * len(text)
    pos = 0
    for t, out in segs:
        if out:
            trained[pos:pos + len(t)] = [True] * len(t)
        pos += len(t)
    mask: list[bool] = []
    pos = 0
    for i in ids:
        piece = tok.decode([i], special=True)
        mask.append(pos < len(text) and trained[pos])
        pos += len(piece)
    return mask if pos == len(text) else None


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def quant_eval(paths: dict[str, str], n_conv: int, seed: int = EVAL_SEED + 1) -> dict[str, Any]:
    """Top-1 agreement with f32 and perplexity per dtype, on held-out conversations (teacher forcing)."""
    import cactus

    convs = mc.generate(seed, n_conv, "heldout")
    tok = cactus.Tokenizer(str(paths["f32"]))
    seqs: list[tuple[list[int], list[bool] | None]] = []
    for c in convs:
        text = "".join(t for t, _ in mc.render_conversation(c))
        ids = tok.encode(text, add_special=True, parse_special=True)
        seqs.append((ids, _assistant_mask(tok, ids, c)))
    top1: dict[str, list[np.ndarray]] = {}
    nll_all: dict[str, list[float]] = {}
    nll_asst: dict[str, list[float]] = {}
    for dtype, path in paths.items():
        top1[dtype], nll_all[dtype], nll_asst[dtype] = [], [], []
        with cactus.Cactus(str(path)) as model:
            for ids, mask in seqs:
                logits = model.logits(ids)
                top1[dtype].append(np.argmax(logits[:-1], axis=-1))
                lp = _log_softmax(logits[:-1])
                nll = -lp[np.arange(len(ids) - 1), np.asarray(ids[1:])]
                nll_all[dtype] += nll.tolist()
                if mask is not None:
                    nll_asst[dtype] += [v for v, m in zip(nll.tolist(), mask[1:]) if m]
    out: dict[str, Any] = {"conversations": n_conv, "tokens": int(sum(len(s) - 1 for s, _ in seqs)),
                           "assistant_tokens": len(nll_asst["f32"])}
    ref = np.concatenate(top1["f32"])
    for dtype in paths:
        agree = float(np.mean(np.concatenate(top1[dtype]) == ref))
        if dtype != "f32":
            out[f"{dtype}_top1_agreement"] = agree
        out[f"{dtype}_perplexity_all"] = float(math.exp(np.mean(nll_all[dtype])))
        if nll_asst[dtype]:
            out[f"{dtype}_perplexity_assistant"] = float(math.exp(np.mean(nll_asst[dtype])))
    return out


def check(results: dict[str, Any]) -> list[str]:
    """The bars this result misses (empty when all are met)."""
    missed = []
    flat = dict(results.get("behaviour", {}), **results.get("quantization", {}))
    for key, bar in BARS.items():
        if key in flat and not flat[key] >= bar:
            missed.append(f"{key} = {flat[key]:.4f} < {bar}")
    return missed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="the q8_0 GGUF to evaluate")
    p.add_argument("--f32", default=str(DEFAULT_F32), help="f32 GGUF (quantization reference)")
    p.add_argument("--q4", default=str(DEFAULT_Q4), help="q4_0 GGUF")
    p.add_argument("--quick", action="store_true", help="a few dozen prompts")
    p.add_argument("--seed", type=int, default=EVAL_SEED)
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)

    if args.quick:
        sizes = {"n_arith": 24, "n_tool": 24, "n_chat": 12, "n_ood": 24}
        n_quant = 12
    else:
        sizes = {"n_arith": 300, "n_tool": 200, "n_chat": 60, "n_ood": len(OUT_OF_DOMAIN)}
        n_quant = 100
    results: dict[str, Any] = {"quick": args.quick, "bars": BARS}
    results["behaviour"] = behaviour_eval(args.model, seed=args.seed, verbose=args.verbose, sweep=not args.quick,
                                          **sizes)
    if Path(args.f32).is_file() and Path(args.q4).is_file():
        results["quantization"] = quant_eval({"f32": args.f32, "q8_0": args.model, "q4_0": args.q4}, n_quant)
    else:
        print(f"(no {args.f32} / {args.q4}: quantization comparison skipped)", file=sys.stderr)
    missed = check(results)
    results["passed"] = not missed
    text = json.dumps(results, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    summary = {k: v for k, v in results["behaviour"].items()
               if k not in ("failures", "out_of_domain_samples", "handoff_sweep")}
    print(json.dumps(summary, indent=2))
    if "quantization" in results:
        print(json.dumps(results["quantization"], indent=2))
    for f in results["behaviour"]["failures"][:10]:
        print("FAIL", json.dumps(f))
    print("all bars met" if not missed else "MISSED: " + "; ".join(missed))
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main())
