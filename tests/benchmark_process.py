"""Run a benchmark the way its users do: `python -m benchmarks.<name>` from the repo root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_benchmark(name: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
