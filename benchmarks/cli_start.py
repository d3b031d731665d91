"""How long `apa-console` takes to start, against a bare `python -c "import typer"`.

    python -m benchmarks.cli_start [--repeats 7] [--json benchmarks/cli_start.json]

Every command starts a fresh interpreter, so its start time is what an operator waits for
before anything happens. Measured in one run, each the median wall time of `--repeats`
fresh processes: `python -c "import typer"` (the floor: the interpreter and the CLI
framework), then `apa-console --help`, `status`, `users` and `audit` on a small demo store
(created here with `init` and `ingest demo`, no model needed). Prints each time and its
ratio to the floor; the goal is every ratio within 4 (torch, transformers and scikit-learn
are imported only by the commands that use them).

This module imports nothing heavy itself: it only runs subprocesses.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_RATIO = 4.0


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def timed(argv: list[str], repeats: int) -> float:
    """Median wall seconds of `repeats` fresh processes running `argv` (each must succeed)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=_env(), cwd=REPO)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "apa_console.cli.app", *args]


def measure(repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "store")
        subprocess.run(cli("init", "--store", store), check=True, capture_output=True,
                       env=_env())
        subprocess.run(cli("ingest", "demo", "--store", store), check=True,
                       capture_output=True, env=_env())
        floor = timed([sys.executable, "-c", "import typer"], repeats)
        commands = {
            "--help": cli("--help"),
            "status": cli("status", "--store", store),
            "users": cli("users", "--store", store),
            "audit": cli("audit", "--store", store),
        }
        rows = []
        for name, argv in commands.items():
            seconds = timed(argv, repeats)
            rows.append({"command": f"apa-console {name}", "seconds": round(seconds, 3),
                         "ratio": round(seconds / floor, 2)})
    return {
        "benchmark": "cli_start",
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "repeats": repeats,
        "import_typer_seconds": round(floor, 3),
        "target_ratio": TARGET_RATIO,
        "commands": rows,
        "met": all(row["ratio"] <= TARGET_RATIO for row in rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="processes per command")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    result = measure(max(1, args.repeats))
    print(f"python -c 'import typer': {result['import_typer_seconds']:.3f} s")
    for row in result["commands"]:
        print(f"{row['command']:<22} {row['seconds']:.3f} s  {row['ratio']:.2f}x")
    print(f"target: every command within {TARGET_RATIO:g}x: "
          f"{'met' if result['met'] else 'missed'}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
