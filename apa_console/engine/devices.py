"""Which device and dtype the engine runs on, and how many CPU threads it uses."""

from __future__ import annotations

import os

import torch

from apa_console.engine.memory import keep_freed_memory_for_reuse
from apa_console.errors import UsageError


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def choose_device(device: str | None = None) -> tuple[torch.device, torch.dtype]:
    """CUDA in bfloat16 when present, else CPU in float32; `device` overrides the choice."""
    if device in (None, "", "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise UsageError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    dtype = torch.bfloat16 if chosen.type == "cuda" else torch.float32
    if chosen.type == "cpu":
        torch.set_num_threads(available_cores())
        keep_freed_memory_for_reuse()
    return chosen, dtype


def cpu_threads() -> int:
    """The threads torch's CPU kernels use."""
    return torch.get_num_threads()
