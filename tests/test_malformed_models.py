"""Malformed model files: cactus_init returns NULL with an error that names the problem, and never crashes.

The corpus comes from tools/make_malformed_models.py, generated into a temporary folder: the tiny valid
model it builds, truncated at every section boundary, with a wrong magic or version, absurd counts and
dimensions, tensors past the end of the file, unknown types, overlapping offsets, metadata strings
without their bytes, and wrong or missing hyper-parameters. Each case carries a keyword (a regular
expression) that the load error must contain.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from cactus import Cactus, Tokenizer, cactus_init

from .conftest import ROOT


def _load_tool() -> ModuleType:
    name = "make_malformed_models"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look the module up while the class is built
    spec.loader.exec_module(module)
    return module


mm = _load_tool()
CASES = mm.all_cases()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("malformed")
    mm.write_corpus(out)
    return out


def test_corpus_covers_every_kind() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    for prefix in (
        "truncated_",
        "wrong_magic",
        "version_",
        "tensor_count",
        "kv_count",
        "tensor_2_63",
        "tensor_zero",
        "tensor_past_eof",
        "tensor_unknown_type",
        "tensor_overlap",
        "kv_string_without_bytes",
        "head_count_0",
        "embedding_length_huge",
        "block_count_more_than_tensors",
    ):
        assert any(n.startswith(prefix) for n in names), prefix
    # a truncation at every section boundary of the valid file
    g = mm.tiny_model()
    size = len(g.build())
    cuts = {len(c.data) for c in CASES if c.name.startswith("truncated_")}
    for label, offset in g.boundaries:
        if offset < size:
            assert offset in cuts, label


@pytest.mark.parametrize("arch", ["valid.gguf", "valid-qwen3.gguf"])
def test_the_unbroken_model_loads_and_runs(corpus: Path, arch: str) -> None:
    with Cactus(str(corpus / arch)) as m:
        r = m.complete("hello", max_tokens=4, temperature=0)
        assert r["success"] and r["decode_tokens"] >= 1


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_model_is_refused(corpus: Path, case: mm.Case) -> None:  # type: ignore[name-defined]
    path = corpus / f"{case.name}.gguf"
    with pytest.raises(RuntimeError) as err:
        cactus_init(str(path))
    message = str(err.value)
    assert re.search(case.keyword, message, re.IGNORECASE), (case.keyword, message)


def test_tokenizer_alone_never_crashes(corpus: Path) -> None:
    """cactus_tokenizer_init reads the same files (hyper-parameters aside): a clean result either way."""
    loaded = 0
    for case in CASES:
        try:
            with Tokenizer(str(corpus / f"{case.name}.gguf")) as tok:
                assert tok.vocab_size > 0
                assert tok.decode(tok.encode("hello")) == "hello"
                loaded += 1
        except RuntimeError as exc:
            assert str(exc)
    # the files broken only in their hyper-parameters or weights still have a good vocabulary
    assert loaded > 10
