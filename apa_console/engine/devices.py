"""Which device and dtype the engine runs on, and how many CPU threads it uses."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import torch

from apa_console.engine.choices import ComputeDtype  # noqa: F401 (re-exported)
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


@cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AVX-512 BF16 or AMX)."""
    try:
        flags = _CPUINFO.read_text().split()
    except OSError:
        return False
    return any(flag in flags for flag in _CPU_BF16_FLAGS)


def preferred_dtype(device: torch.device) -> torch.dtype:
    """The fastest exact-enough compute dtype here: bfloat16 where the hardware has native
    bf16 units, else float32. `$APA_DTYPE` overrides it."""
    forced = os.environ.get(DTYPE_ENV)
    if forced:
        return dtype_named(forced)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
