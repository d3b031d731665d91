"""Forget one user vs retrain every adapter from scratch, measured in one run.

For each partition method (apa, apa-user) and each K (4, 16): train all shard adapters
from scratch (the full-retrain time, validation refresh included), then forget the median
user by training-sample count end to end (purge, retrain affected shards, their validation
refresh, swap, receipt). Prints wall times, the ratio, the goal 1.2/K, and shards touched.

    .venv/bin/python -m benchmarks.forget_cost                # MovieLens-100K if present
    .venv/bin/python -m benchmarks.forget_cost --train 64 --valid 24 --ks 4

Uses the default model (SmolLM2-135M-Instruct) unless --model is given.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

from apa_console.apa.adapters import train_all
from apa_console.apa.embeddings import split_samples
from apa_console.apa.shards import run_partition
from apa_console.engine.backbone import Backbone
from apa_console.store.catalog import median_user
from apa_console.store.document import Store
from apa_console.unlearning.targets import Targets
from apa_console.workflows.forget import forget
from benchmarks.common import ML100K, build_base_store, load_source, machine_description


def _base_store(root: Path, backbone: Backbone, args) -> Store:
    try:
        parsed, source = load_source(args.data)
    except FileNotFoundError:
        parsed, source = load_source("demo")
        source += " (MovieLens-100K not found)"
    sizes = {"train": args.train, "valid": args.valid, "test": args.test}
    store = build_base_store(root / "base", backbone, parsed, sizes)
    print(f"data: {source}; train {len(split_samples(store, 'train'))}, "
          f"valid {len(split_samples(store, 'valid'))}")
    return store


def run(args) -> int:
    backbone = Backbone.load(args.model, device=args.device)
    print(f"machine: {machine_description(backbone)}")
    overrides = {"epochs": args.epochs}
    rows = []
    with tempfile.TemporaryDirectory(prefix="apa-bench-") as tmp:
        base = _base_store(Path(tmp), backbone, args)
        user = median_user(base)
        for method in args.methods:
            for k in args.ks:
                root = Path(tmp) / f"{method}-{k}"
                shutil.copytree(base.root, root)
                store = Store.open(root)
                run_partition(store, backbone, method, k, seed=0)
                started = time.perf_counter()
                train_all(store, backbone, overrides=overrides)
                full = time.perf_counter() - started
                # The core's forget workflow with the backbone already loaded. Timed as
                # before (record the request, a small JSON commit, then apply it), plus the
                # workflow's plan, which only reads the store.
                started = time.perf_counter()
                outcome = forget(store, Targets(users=[user]),
                                 lambda: contextlib.nullcontext(backbone))
                forgot = time.perf_counter() - started
                touched = len(outcome.plan["adapters_to_retrain"])
                rows.append((method, k, full, forgot, touched))
                print(f"{method:9s} K={k:<3d} full retrain {full:8.1f}s  forget {user} "
                      f"{forgot:7.1f}s  ratio {forgot / full:.3f} (goal ≤ {1.2 / k:.3f})  "
                      f"shards touched {touched}/{k}", flush=True)
    print("\n| partition | K | full retrain (s) | forget user (s) | ratio | goal 1.2/K | "
          "shards touched |\n|---|---|---|---|---|---|---|")
    for method, k, full, forgot, touched in rows:
        verdict = "met" if forgot / full <= 1.2 / k else "missed"
        print(f"| {method} | {k} | {full:.1f} | {forgot:.1f} | {forgot / full:.3f} | "
              f"{1.2 / k:.3f} ({verdict}) | {touched}/{k} |")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.forget_cost",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ML100K)
    parser.add_argument("--train", type=int, default=128)
    parser.add_argument("--valid", type=int, default=32)
    parser.add_argument("--test", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--ks", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--methods", nargs="+", default=["apa", "apa-user"])
    parser.add_argument("--model", default=None)
    parser.add_argument("--device", default=None)
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
