"""Builds the C unit tests with CMake (warnings are errors) and runs them with ctest."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT


@pytest.fixture(scope="module")
def c_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not shutil.which("cmake"):
        pytest.fail("cmake is required to build the C tests")
    build = tmp_path_factory.mktemp("cbuild")
    sanitize = "ON" if os.environ.get("CACTUS_SANITIZE") == "1" else "OFF"
    subprocess.run(
        ["cmake", "-S", str(ROOT), "-B", str(build), "-DCACTUS_BUILD_TESTS=ON", "-DCACTUS_WERROR=ON",
         f"-DCACTUS_SANITIZE={sanitize}"],
        check=True, capture_output=True, text=True,
    )
    proc = subprocess.run(["cmake", "--build", str(build), "-j2"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return build


def test_ctest(c_build: Path, llama_f32: Path) -> None:
    env = dict(os.environ, CACTUS_TEST_MODEL=str(llama_f32))
    proc = subprocess.run(
        ["ctest", "--test-dir", str(c_build), "--output-on-failure"],
        capture_output=True, text=True, env=env, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "tests passed" in proc.stdout
    # Every test program must have run: a missing one would be a silent gap.
    for name in ("test_gguf", "test_json", "test_kernels", "test_sampler", "test_api"):
        assert name in proc.stdout
