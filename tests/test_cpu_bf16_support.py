"""bfloat16 on CPUs without bf16 units: the engine tells native from emulated by measuring,
not by the CPU flags alone; an operator asking for bfloat16 there is warned in one line
before any work; and the dtype-dependent tests pass as they would on an AVX2-only CPU.

`AVX2_ONLY` makes any x86 CPU behave like one without bf16 units (oneDNN may not use
AVX-512 or AMX, ATen's kernels stop at AVX2), so these run the same on every CI machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from apa_console.engine import devices

REPO = Path(__file__).resolve().parents[1]
AVX2_ONLY = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
# The test files whose outcome depends on how this CPU runs bfloat16.
DTYPE_DEPENDENT_TESTS = ["tests/test_compute_dtype.py", "tests/test_engine_benchmark.py",
                         "tests/test_dtype_quality_benchmark.py",
                         "tests/test_grouped_attention.py", "tests/test_lora_dropout.py"]


def _avx2_only_env() -> dict[str, str]:
    return {**os.environ, **AVX2_ONLY}


def running_as_avx2_only() -> bool:
    return all(os.environ.get(name) == value for name, value in AVX2_ONLY.items())


def test_cpu_flags_alone_do_not_make_bfloat16_native(monkeypatch):
    detect = devices.cpu_has_native_bf16.__wrapped__  # uncached
    monkeypatch.setattr(devices, "_cpu_flags_claim_bf16", lambda: True)
    monkeypatch.setattr(devices, "bf16_matmul_slowdown", lambda: 150.0)
    assert not detect()
    monkeypatch.setattr(devices, "bf16_matmul_slowdown", lambda: 0.5)
    assert detect()
    monkeypatch.setattr(devices, "_cpu_flags_claim_bf16", lambda: False)
    assert not detect()


def test_an_avx2_only_cpu_is_seen_as_one():
    probe = ("from apa_console.engine import devices as d; "
             "print(d.cpu_has_native_bf16(), round(d.bf16_matmul_slowdown(), 1))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            env=_avx2_only_env(), cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    native, slowdown = result.stdout.split()
    assert native == "False"
    assert float(slowdown) > devices.NATIVE_BF16_MAX_SLOWDOWN  # emulated: far slower


def test_bfloat16_on_a_cpu_that_emulates_it_is_warned_in_one_line(tiny_model_dir):
    env = {**_avx2_only_env(), "APA_DTYPE": "bfloat16", "COLUMNS": "200"}
    command = [sys.executable, "-m", "apa_console.cli.app", "model", "info", "--model",
               str(tiny_model_dir), "--json"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "bfloat16 is not native on this CPU" in warnings[0]
    assert "slower than float32" in warnings[0] and "--dtype float32" in warnings[0]
    assert "Warning" not in result.stderr  # Python's own two-line format is not used
    assert '"bfloat16": "not native' in result.stdout
    assert '"dtype": "bfloat16"' in result.stdout  # warned, not refused: stores may need it


@pytest.mark.slow
@pytest.mark.skipif(running_as_avx2_only(), reason="this run already is AVX2-only")
def test_the_dtype_dependent_tests_pass_on_an_avx2_only_cpu():
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               *DTYPE_DEPENDENT_TESTS]
    result = subprocess.run(command, capture_output=True, text=True, env=_avx2_only_env(),
                            cwd=REPO, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout.splitlines()[-1]
