"""Which device and dtype the engine runs on, and how many CPU threads it uses."""

from __future__ import annotations

import os
import time
import warnings
from functools import cache
from pathlib import Path

import torch

from apa_console.engine.choices import ComputeDtype, SlowDtypeWarning  # noqa: F401 (re-exported)
from apa_console.engine.memory import keep_freed_memory_for_reuse
from apa_console.errors import UsageError


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


# The compute dtypes of the frozen base model, by the names settings record.
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
DTYPE_ENV = "APA_DTYPE"  # forces the default compute dtype (the tests pin float32)
_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# A CPU "has" bf16 units only if a bf16 matmul also runs at their speed: the flags can say yes
# while the kernels are barred from them (ONEDNN_MAX_CPU_ISA=AVX2), and then bf16 is emulated,
# tens to hundreds of times slower than float32. Native units run it faster than float32.
BF16_PROBE_SIZE = 256
NATIVE_BF16_MAX_SLOWDOWN = 2.0


_CPUINFO = Path("/proc/cpuinfo")


def choose_device(device: str | None = None) -> tuple[torch.device, torch.dtype]:
    """CUDA when present, else CPU; `device` overrides the choice. The dtype returned is the
    one engine versions 1 and 2 used there (CUDA bfloat16, CPU float32)."""
    if device in (None, "", "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise UsageError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    dtype = legacy_dtype(chosen)
    if chosen.type == "cpu":
        torch.set_num_threads(available_cores())
        keep_freed_memory_for_reuse()
    return chosen, dtype


def cpu_threads() -> int:
    """The threads torch's CPU kernels use."""
    return torch.get_num_threads()


def legacy_dtype(device: torch.device) -> torch.dtype:
    """The compute dtype engine versions 1 and 2 used on `device` (no dtype recorded)."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def dtype_named(name: str) -> torch.dtype:
    try:
        return DTYPES[name]
    except KeyError:
        raise UsageError(f"unknown dtype {name!r}; use {', '.join(DTYPES)}") from None


def dtype_name(dtype: torch.dtype) -> str:
    return next(name for name, known in DTYPES.items() if known == dtype)


def _cpu_flags_claim_bf16() -> bool:
    try:
        flags = _CPUINFO.read_text().split()
    except OSError:
        return False
    return any(flag in flags for flag in _CPU_BF16_FLAGS)


def _best_matmul_seconds(dtype: torch.dtype, size: int, repeats: int = 5) -> float:
    left = torch.randn(size, size).to(dtype)
    right = torch.randn(size, size).to(dtype)
    torch.mm(left, right)  # warm-up: thread pool, packing buffers
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(left, right)
        best = min(best, time.perf_counter() - started)
    return max(best, 1e-9)


@cache
def bf16_matmul_slowdown() -> float:
    """How many times longer a 256² bfloat16 matmul takes than a float32 one on this CPU
    (best of five each): below 1 on native units, tens to hundreds where bf16 is emulated."""
    size = BF16_PROBE_SIZE
    return (_best_matmul_seconds(torch.bfloat16, size)
            / _best_matmul_seconds(torch.float32, size))


@cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AVX-512 BF16 or AMX) and the
    kernels use it: the flags claim it and a bf16 matmul is not much slower than float32."""
    if not _cpu_flags_claim_bf16():
        return False
    return bf16_matmul_slowdown() <= NATIVE_BF16_MAX_SLOWDOWN


def bf16_support(device: torch.device) -> str:
    """One line for `model info`: whether bfloat16 runs natively on `device`."""
    if device.type == "cuda":
        return "native" if torch.cuda.is_bf16_supported() else "not supported"
    if cpu_has_native_bf16():
        return "native (AVX-512 BF16 / AMX)"
    return (f"not native: a bf16 matmul runs {bf16_matmul_slowdown():.0f}× slower than "
            "float32 here, so auto picks float32")


def warn_if_emulated(device: torch.device, dtype: torch.dtype) -> None:
    """Tell the operator, before any work, that bfloat16 on this CPU is emulated (a
    SlowDtypeWarning the CLI prints as one line); a store that recorded bfloat16 still
    retrains in it, since its adapters' bits depend on it."""
    if dtype != torch.bfloat16 or device.type != "cpu" or cpu_has_native_bf16():
        return
    warnings.warn(SlowDtypeWarning(
        f"bfloat16 is not native on this CPU (a bf16 matmul runs "
        f"{bf16_matmul_slowdown():.0f}× slower than float32 here): expect slow work; "
        f"use --dtype float32 or unset {DTYPE_ENV} unless a store's adapters need bfloat16"),
        stacklevel=2)


def preferred_dtype(device: torch.device) -> torch.dtype:
    """The fastest exact-enough compute dtype here: bfloat16 where the hardware has native
    bf16 units, else float32. `$APA_DTYPE` overrides it."""
    forced = os.environ.get(DTYPE_ENV)
    if forced:
        return dtype_named(forced)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
