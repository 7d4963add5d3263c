"""Our logits against Hugging Face transformers' on the fixtures, every family and weight type.

The references were computed by tools/make_fixtures.py with transformers on the very weights each
GGUF stores (dequantized), so the bars measure the engine, not the quantizer. The fixtures cover every
family's particulars: LFM2's mix of short-convolution and attention blocks, Gemma 3's sliding window (16)
crossed several times over 96 tokens, its local RoPE base, query scale and logit soft-capping; every
sequence also crosses a prefill chunk boundary (64 tokens).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import cactus
import numpy as np
import pytest

from .conftest import DTYPES, FAMILIES, FIXTURES

BARS = {"f32": 1e-3, "f16": 1e-3, "bf16": 1e-3, "q8_0": 5e-2, "q4_0": 5e-2}
# With Q8_0/Q4_0 weights the kernels quantize the activations to 8 bits too (kernels.h, as llama.cpp
# does), which transformers does not: that rounding is what the 5e-2 bar leaves room for. The gated LFM2
# and soft-capped Gemma 3 fixtures amplify it past 5e-2 even at their minimal depth (measured 5.4e-2 and
# 6.2e-2); they are held to 8e-2 here. test_quantized_matches_int8_activation_model checks the same
# logits against a model of exactly those 8-bit activations, which isolates the rounding, and
# test_quantized_weights_with_exact_activations holds every family to 1e-3 with f32 activations.
INT8_ACTIVATION_BAR = {"lfm2": 8e-2, "gemma3": 8e-2}
HYBRID = ["lfm2", "gemma3"]


def _bar(family: str, dtype: str) -> float:
    if dtype in ("q8_0", "q4_0") and family in INT8_ACTIVATION_BAR:
        return INT8_ACTIVATION_BAR[family]
    return BARS[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_logits_match_transformers(family: str, dtype: str, convert_fixture, reference) -> None:
    ref = reference(family)
    path = convert_fixture(family, dtype)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == str(ref[f"sha256_{dtype}"]), "converter output changed: rerun tools/make_fixtures.py"
    tokens = ref["tokens"]
    assert len(tokens) >= 64
    expected = ref[f"logits_{dtype}"]
    with cactus.Cactus(str(path)) as model:
        got = model.logits(tokens)
    assert got.shape == expected.shape
    rel = float(np.abs(got - expected).max() / np.abs(expected).max())
    assert rel <= _bar(family, dtype), f"{family} {dtype}: max|d|/max|logit| = {rel:.3e}"


@pytest.mark.parametrize("dtype", ["q8_0", "q4_0"])
@pytest.mark.parametrize("family", HYBRID)
def test_quantized_matches_int8_activation_model(family: str, dtype: str, convert_fixture, reference) -> None:
    """The quantized path is transformers' model up to the 8-bit activations alone: a float64 numpy forward
    that rounds each quantized matmul's input the way the kernels do agrees with the engine (what is left
    is the odd activation landing on the other side of a rounding boundary in float32 vs float64)."""
    from .test_convert import forward_hybrid

    ref = reference(family)
    path = convert_fixture(family, dtype)
    with cactus.Cactus(str(path)) as model:
        got = model.logits(ref["tokens"])
    want = forward_hybrid(path, ref["tokens"], int8_acts=True)
    rel = float(np.abs(got - want).max() / np.abs(ref[f"logits_{dtype}"]).max())
    assert rel <= 2e-2, f"{family} {dtype}: max|d|/max|logit| = {rel:.3e} against the 8-bit activation model"


def test_logits_are_not_flat(reference) -> None:
    # A parity test on flat logits would prove nothing.
    for family in FAMILIES:
        ref = reference(family)["logits_f32"]
        assert float(ref.std(axis=1).min()) > 0.1


def test_logits_independent_of_history(llama_f32, reference) -> None:
    ref = reference("llama")
    with cactus.Cactus(str(llama_f32)) as model:
        model.complete("hello", max_tokens=3, temperature=0)
        first = model.logits(ref["tokens"][:10])
        second = model.logits(ref["tokens"][:10])
    np.testing.assert_array_equal(first, second)


EXACT_SCRIPT = """
import json, sys
import numpy as np
import cactus
out = {}
for family, path, ref_path, dtype in json.loads(sys.argv[1]):
    ref = np.load(ref_path)
    with cactus.Cactus(path) as model:
        got = model.logits(ref["tokens"])
    expected = ref["logits_" + dtype]
    out[family + "-" + dtype] = float(np.abs(got - expected).max() / np.abs(expected).max())
print(json.dumps(out))
"""


def test_quantized_weights_with_exact_activations(convert_fixture) -> None:
    """CACTUS_EXACT_ACTIVATIONS=1 keeps activations in f32 for Q8_0/Q4_0 weights: then every family
    matches transformers on the same dequantized weights to 1e-3 (the switch is read once per process,
    hence the subprocess)."""
    jobs = [(f, str(convert_fixture(f, d)), str(FIXTURES / f / "reference.npz"), d)
            for f in FAMILIES for d in ("q8_0", "q4_0")]
    env = dict(os.environ, CACTUS_EXACT_ACTIVATIONS="1")
    proc = subprocess.run([sys.executable, "-c", EXACT_SCRIPT, json.dumps(jobs)], env=env, capture_output=True,
                          text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    errors = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(errors) == len(jobs)
    bad = {k: v for k, v in errors.items() if v > 1e-3}
    assert not bad, bad
