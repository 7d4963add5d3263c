"""Our logits against Hugging Face transformers' on the fixtures, every family and weight type.

The references were computed by tools/make_fixtures.py with transformers on the very weights each
GGUF stores (dequantized), so the bars measure the engine, not the quantizer.
"""

from __future__ import annotations

import hashlib

import cactus
import numpy as np
import pytest

from .conftest import DTYPES, FAMILIES

BARS = {"f32": 1e-3, "f16": 1e-3, "bf16": 1e-3, "q8_0": 5e-2, "q4_0": 5e-2}


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
    assert rel <= BARS[dtype], f"{family} {dtype}: max|d|/max|logit| = {rel:.3e}"


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
