"""LFM2 and Gemma 3 through the engine's own incremental decoding: greedy generation against transformers'
`generate`, and the session's cache (KV and LFM2's convolution inputs) under multi-turn reuse and reset.

The references (tools/make_fixtures.py) hold a one-message chat rendered with the fixtures' ChatML
template and tokenized (gen_prompt), and the 64 tokens transformers' greedy `generate` made from it with
its own KV / convolution cache (gen_tokens), on the float32 checkpoint the f32 GGUF stores exactly.
"""

from __future__ import annotations

import json

import cactus
import numpy as np
import pytest

from .conftest import FIXTURES

HYBRID = ["lfm2", "gemma3"]
FIRST_TURN = [{"role": "user", "content": "Hello there, tell me about the river."}]
FIRST_TURNS = [FIRST_TURN] + [
    [{"role": "user", "content": text}]
    for text in ("Write a poem about a cactus in winter.", "What is 12 + 30?", "Say something.")
]


def _template(family: str) -> str:
    cfg = json.loads((FIXTURES / family / "tokenizer_config.json").read_text(encoding="utf-8"))
    return cfg["chat_template"]


def _prompt_ids(path, family: str, messages: list) -> list:
    """The ids cactus_complete evaluates for `messages`: the chat rendering, tokenized with specials."""
    with cactus.Tokenizer(str(path)) as tok:
        return tok.encode(cactus.render_chat(messages, template=_template(family)), add_special=True,
                          parse_special=True)


def _complete(model: cactus.Cactus, messages: list, **opts) -> tuple:
    ids: list = []
    r = model.complete(messages, callback=lambda _piece, i: ids.append(i), **opts)
    assert r["success"], r.get("error")
    return r, ids


@pytest.fixture(scope="module", params=HYBRID)
def family_model(request, convert_fixture):
    path = convert_fixture(request.param, "f32")
    with cactus.Cactus(str(path)) as m:
        yield request.param, path, m


def test_greedy_generation_matches_transformers(family_model, reference) -> None:
    family, path, model = family_model
    ref = reference(family)
    messages = [{"role": "user", "content": str(ref["gen_message"])}]
    # the engine evaluates exactly the prompt transformers generated from
    assert _prompt_ids(path, family, messages) == ref["gen_prompt"].tolist()
    model.reset()
    r, ids = _complete(model, messages, max_tokens=64, temperature=0)
    want = ref["gen_tokens"].tolist()
    assert r["prefill_tokens"] == len(ref["gen_prompt"])
    assert r["decode_tokens"] == 64 and r["finish_reason"] == "length"
    # one callback per token; a final flush of held-back bytes may repeat the last id
    got = ids[:64]
    first_diff = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)
    assert got == want, (f"{family}: first difference at token {first_diff} "
                         f"(reference margin {float(ref['gen_margin']):.1e})")
    if family == "gemma3":
        assert len(ref["gen_prompt"]) + 64 > 4 * 16  # decoding ran well past the sliding window


def _second_turn(first: list, answer: str) -> list:
    return first + [{"role": "assistant", "content": answer}, {"role": "user", "content": "And then what?"}]


def test_second_turn_prefills_only_new_tokens(family_model) -> None:
    """A follow-up reuses the cache (KV rows, and LFM2's per-position conv inputs) up to the longest common
    prefix and answers exactly as a fresh session does."""
    family, path, model = family_model
    reached_answer = False
    for first in FIRST_TURNS:
        model.reset()
        r1, ids = _complete(model, first, max_tokens=12, temperature=0)
        msgs2 = _second_turn(first, r1["response"])
        r2, _ = _complete(model, msgs2, max_tokens=12, temperature=0)
        # the cache held the first prompt and every generated token that was evaluated (all but the last)
        prompt1 = _prompt_ids(path, family, first)
        cached = prompt1 + ids[: r1["decode_tokens"] - 1]
        prompt2 = _prompt_ids(path, family, msgs2)
        common = 0
        while common < min(len(cached), len(prompt2)) and cached[common] == prompt2[common]:
            common += 1
        assert r2["prefill_tokens"] == len(prompt2) - common
        assert common >= len(prompt1)
        # rows written one decoded token at a time are reused when the answer re-tokenizes the same way
        reached_answer |= common > len(prompt1)
        model.reset()
        fresh, _ = _complete(model, msgs2, max_tokens=12, temperature=0)
        assert fresh["prefill_tokens"] == len(prompt2)
        assert fresh["response"] == r2["response"]
    assert reached_answer, "no first answer re-tokenized into its generated ids; the test saw no decode reuse"


def test_truncation_inside_the_history(family_model) -> None:
    """A new prompt that leaves the cached history mid-way (an edited first message) truncates the cache
    to the common prefix; the conv state and sliding window then come from the kept rows alone."""
    _, _, model = family_model
    long_first = [{"role": "user", "content": "Describe the market at noon, the bridge, the river and the "
                                              "stone houses, then the garden and the quiet winter music."}]
    edited = [{"role": "user", "content": "Describe the market at noon, the bridge, the forest and the "
                                          "silver ocean."}]
    model.reset()
    _complete(model, long_first, max_tokens=24, temperature=0)
    reused, _ = _complete(model, edited, max_tokens=24, temperature=0)
    model.reset()
    fresh, _ = _complete(model, edited, max_tokens=24, temperature=0)
    assert 0 < reused["prefill_tokens"] < fresh["prefill_tokens"]
    assert reused["response"] == fresh["response"]


def test_reset_forgets_the_conversation(family_model) -> None:
    _, _, model = family_model
    model.reset()
    a, ids_a = _complete(model, FIRST_TURN, max_tokens=16, temperature=0)
    _complete(model, [{"role": "user", "content": "Something else entirely: count to ten."}], max_tokens=16,
              temperature=0)
    model.reset()
    b, ids_b = _complete(model, FIRST_TURN, max_tokens=16, temperature=0)
    assert ids_a == ids_b and a["response"] == b["response"]
    assert b["prefill_tokens"] == a["prefill_tokens"]


def test_prefix_logits_agree_across_chunk_boundaries(family_model, reference) -> None:
    """Prefill runs in chunks of 64; prefixes ending before, at and after a chunk boundary, evaluated from
    scratch, give the last-position logits of the whole sequence's pass."""
    family, _, model = family_model
    tokens = reference(family)["tokens"]
    full = model.logits(tokens)
    for n in (1, 17, 63, 64, 65, len(tokens)):
        part = model.logits(tokens[:n])
        np.testing.assert_allclose(part[-1], full[n - 1], rtol=0, atol=1e-5 * float(np.abs(full).max()))


def test_gemma3_llamacpp_defaults(tmp_path, monkeypatch, reference) -> None:
    """A Gemma 3 GGUF as llama.cpp's converter writes it (no sliding-window pattern, local RoPE base or
    query scale keys) runs with llama.cpp's fixed choices: every 6th block global, base 10000, scale
    head_dim^-1/2. Spelled out explicitly, the same choices give bit-identical logits."""
    import cactus.convert as cconv
    from cactus._gguf_writer import ValueType

    def llamacpp_keys(w, hp) -> None:
        w.add_uint32("gemma3.attention.sliding_window", hp.sliding_window)
        w.add_float32("gemma3.final_logit_softcapping", hp.final_softcap)

    def explicit_defaults(w, hp) -> None:
        llamacpp_keys(w, hp)
        w.add_array("gemma3.attention.sliding_window_pattern", [i % 6 < 5 for i in range(hp.n_layer)],
                    ValueType.BOOL)
        w.add_float32("gemma3.rope.freq_base_swa", 10000.0)
        w.add_float32("gemma3.attention.scale", hp.head_dim**-0.5)

    tokens = reference("gemma3")["tokens"]
    logits = {}
    for name, writer in (("llamacpp", llamacpp_keys), ("explicit", explicit_defaults)):
        monkeypatch.setattr(cconv, "_add_family_metadata", writer)
        path = tmp_path / f"{name}.gguf"
        cconv.convert(FIXTURES / "gemma3", path, dtype="f32", progress=False)
        with cactus.Cactus(str(path)) as m:
            logits[name] = m.logits(tokens)
    np.testing.assert_array_equal(logits["llamacpp"], logits["explicit"])
    # and the fixture's own layout (query_pre_attn_scalar 24, a global second block) is not that
    assert np.abs(logits["llamacpp"] - reference("gemma3")["logits_f32"]).max() > 1e-2
