"""Shared fixtures: tiny models converted from tests/fixtures with our own converter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cactus.convert import convert

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SHARED = ROOT.parent / "shared"
FAMILIES = ["llama", "qwen2", "qwen3", "lfm2", "gemma3"]
DTYPES = ["f32", "f16", "bf16", "q8_0", "q4_0"]


@pytest.fixture(scope="session")
def gguf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gguf")


@pytest.fixture(scope="session")
def convert_fixture(gguf_dir: Path):
    """convert_fixture(family, dtype) -> path of the converted GGUF (made once per session)."""
    made: dict = {}

    def get(family: str, dtype: str = "f32") -> Path:
        key = (family, dtype)
        if key not in made:
            out = gguf_dir / f"{family}-{dtype}.gguf"
            convert(FIXTURES / family, out, dtype=dtype, progress=False)
            made[key] = out
        return made[key]

    return get


@pytest.fixture(scope="session")
def reference():
    cache: dict = {}

    def get(family: str) -> dict:
        if family not in cache:
            with np.load(FIXTURES / family / "reference.npz") as z:
                cache[family] = {k: z[k] for k in z.files}
        return cache[family]

    return get


@pytest.fixture(scope="session")
def llama_f32(convert_fixture) -> Path:
    return convert_fixture("llama", "f32")
