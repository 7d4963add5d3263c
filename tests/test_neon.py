"""The ARM NEON (dotprod) kernels, cross-compiled for aarch64 and run under qemu: every kernel against the
scalar reference (tests/c/test_kernels.c), as on an x86 host for the AVX2 / AVX-512 tables.

Needs Debian's gcc-aarch64-linux-gnu and qemu-user; skipped, saying so, where they are missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CC = "aarch64-linux-gnu-gcc"
QEMU = "qemu-aarch64"
SYSROOT = Path("/usr/aarch64-linux-gnu")


@pytest.mark.skipif(not (shutil.which(CC) and shutil.which(QEMU) and SYSROOT.is_dir()),
                    reason=f"no aarch64 cross toolchain ({CC}, {QEMU}, {SYSROOT}): apt-get install "
                           "gcc-aarch64-linux-gnu qemu-user")
def test_neon_kernels_match_scalar_under_qemu() -> None:
    build = ROOT / "build" / "aarch64"
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), "-DCMAKE_SYSTEM_NAME=Linux",
                    "-DCMAKE_SYSTEM_PROCESSOR=aarch64", f"-DCMAKE_C_COMPILER={CC}", "-DCACTUS_BUILD_TESTS=ON",
                    "-DCACTUS_WERROR=ON"], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build), "-j2", "--target", "test_kernels"], check=True,
                   capture_output=True)
    # -cpu max has the dot-product extension, so the dispatcher picks the NEON table
    out = subprocess.run([QEMU, "-L", str(SYSROOT), "-cpu", "max", str(build / "test_kernels")],
                         capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "kernel table: neon" in out.stdout, out.stdout[-2000:]
    assert " 0 failed" in out.stdout
