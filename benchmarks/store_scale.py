"""How the store scales: synthetic TALLRec-shaped stores of 10k, 100k and 1M samples.

    python -m benchmarks.store_scale [--sizes 10000 100000 1000000]
        [--baseline-code /path/to/older/checkout --baseline-max 100000]
        [--json benchmarks/store_results.json]

For each size it builds a store through the store API (ingest commit, a user-level
partition into K shards, live shard adapters with validation-error tables and cached
hidden states; the adapter files are stand-ins, no model is loaded), then measures what an
operator waits for:
- ingest: the commit of every sample and user (parsing a source file is not included);
- apa.json's size and the store's size on disk;
- `users --limit 50`, `user show U`, `audit --user U`: wall time of a fresh process each
  (start-up included) and its peak memory (max RSS);
- the TUI's first paint: a fresh process until the overview screen has loaded its data,
  and, apart, the time the overview's data takes to read (`views.overview`) in-process;
- a forget of the median user with training mocked out: `forget --queue`'s commit, the
  purge commit and the swap commit (each with its garbage collection).
`--baseline-code` names a checkout of an older apa-console (for instance the pre-segment
layout) to measure the same way, up to `--baseline-max` samples (beyond that its whole
apa.json would not fit the memory a benchmark may take).

Each store is built and forgotten in a child process whose PYTHONPATH is the code being
measured; this module itself imports nothing from apa_console.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().with_name("store_scale_worker.py")
SIZES = (10_000, 100_000, 1_000_000)
GOALS = {"apa_json_mb": 5.0, "forget_commits_s": 2.0, "read_command_s": 1.5,
         "tui_first_paint_s": 3.0, "ingest_s": 120.0, "read_command_max_rss_mb": 1024.0}
TUI_PROBE = """
import asyncio, sys
from apa_console.store.document import Store
from apa_console.tui.app import ApaConsoleApp

async def first_paint():
    app = ApaConsoleApp(Store.open(sys.argv[1]), device="cpu", readonly=True)
    async with app.run_test(size=(120, 40)) as pilot:
        while not getattr(app.screen, "loaded", False):
            await pilot.pause(0.02)

asyncio.run(first_paint())
"""
# The overview's data alone (what the store costs the first paint), timed in-process.
OVERVIEW_PROBE = """
import json, sys, time
from apa_console.store.document import Store
from apa_console.workflows import views
started = time.perf_counter()
views.overview(Store.open(sys.argv[1]))
print(json.dumps({"seconds": round(time.perf_counter() - started, 3)}))
"""


def _env(code: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(code)
    env.pop("APA_STORE", None)
    return env


def run_measured(argv: list[str], code: Path, timeout_s: float = 900) -> dict:
    """Wall seconds and peak RSS (MiB) of one fresh process; it must succeed."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, env=_env(code), cwd=code, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    try:
        out, err = child.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        child.kill()
        raise
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}… failed: {err.decode()[-400:]}")
    return {"seconds": round(seconds, 3), "stdout": out.decode()}


def run_with_rss(argv: list[str], code: Path, timeout_s: float = 600) -> dict:
    """Like run_measured, plus the process's own peak memory (os.wait4's rusage)."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, env=_env(code), cwd=code, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    deadline = started + timeout_s
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            child.kill()
            raise RuntimeError(f"{' '.join(argv[:4])}… ran past {timeout_s}s")
        time.sleep(0.005)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:6])}… failed: {child.stderr.read().decode()[-400:]}")
    return {"seconds": round(seconds, 3), "max_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "apa_console.cli.app", *args]


def _worker(code: Path, *args: str) -> dict:
    result = run_measured([sys.executable, str(WORKER), *args], code, timeout_s=3600)
    return json.loads(result["stdout"].strip().splitlines()[-1])


def measure_size(code: Path, samples: int, workdir: Path) -> dict:
    store = workdir / f"store-{samples}"
    shutil.rmtree(store, ignore_errors=True)
    built = _worker(code, "build", str(store), str(samples))
    user = built["median_user"]
    reads = {
        "users_limit_50": run_with_rss(_cli("users", "--limit", "50", "--store", str(store)),
                                       code),
        "user_show": run_with_rss(_cli("user", "show", user, "--store", str(store)), code),
        "audit_user": run_with_rss(_cli("audit", "--user", user, "--store", str(store)), code),
        "tui_first_paint": run_with_rss([sys.executable, "-c", TUI_PROBE, str(store)], code),
    }
    overview = run_measured([sys.executable, "-c", OVERVIEW_PROBE, str(store)], code)
    reads["overview_data_in_process"] = json.loads(overview["stdout"])
    forgot = _worker(code, "forget", str(store), user)
    disk = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
    shutil.rmtree(store, ignore_errors=True)
    return {"samples": samples, **built, "reads": reads, "forget": forgot,
            "store_mb_after_forget": round(disk / 2**20, 1)}


def verdicts(row: dict) -> dict[str, bool]:
    reads = row["reads"]
    commands = [reads[name] for name in ("users_limit_50", "user_show", "audit_user")]
    return {
        "apa_json_mb": row["apa_json_mb"] <= GOALS["apa_json_mb"],
        "forget_commits_s": row["forget"]["commits_s"] <= GOALS["forget_commits_s"],
        "read_command_s": all(c["seconds"] <= GOALS["read_command_s"] for c in commands),
        "read_command_max_rss_mb": all(c["max_rss_mb"] <= GOALS["read_command_max_rss_mb"]
                                       for c in commands),
        "tui_first_paint_s": reads["tui_first_paint"]["seconds"] <= GOALS["tui_first_paint_s"],
        "ingest_s": row["ingest_s"] <= GOALS["ingest_s"],
    }


def _layout(code: Path, sizes: list[int], workdir: Path, label: str) -> list[dict]:
    rows = []
    for samples in sizes:
        print(f"[{label}] {samples:,} samples …", file=sys.stderr, flush=True)
        row = measure_size(code, samples, workdir)
        row["goals_met"] = verdicts(row) if samples == max(SIZES) else None
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def _load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--baseline-code", type=Path, default=None)
    parser.add_argument("--baseline-max", type=int, default=100_000)
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "store_results.json")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    if any(size < 100 for size in args.sizes):
        parser.error("--sizes: each size must be at least 100 samples")
    if args.baseline_code is not None and not (args.baseline_code / "apa_console").is_dir():
        parser.error(f"--baseline-code {args.baseline_code}: no apa_console package there")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="apa-store-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    load_before = _load_average()
    result = {
        "benchmark": "store_scale",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, python "
                   f"{platform.python_version()}",
        "load_average_before": load_before,
        "goals_at_1M": GOALS,
        "segments": _layout(REPO, args.sizes, workdir, "segments"),
    }
    if args.baseline_code is not None:
        sizes = [s for s in args.sizes if s <= args.baseline_max]
        result["baseline"] = _layout(args.baseline_code.resolve(), sizes, workdir, "baseline")
        result["baseline_skipped"] = [s for s in args.sizes if s > args.baseline_max]
    result["load_average_after"] = _load_average()
    result["wall_s"] = round(time.time() - started, 1)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
