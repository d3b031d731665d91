"""What dispatching shard jobs through Ray costs against training them one after another.

Builds one base store (demo dataset, hidden states cached), partitions it into K shards
(APA), then trains every shard adapter from scratch three ways on copies of it: in this
process (no Ray), and through a local Ray instance the run starts with `--workers N` for
each N given. The Ray times include everything an operator waits for: starting Ray, each
worker loading the model, moving the adapters back. Checks the adapters are bit-identical.

    .venv/bin/python -m benchmarks.ray_overhead --json benchmarks/ray_overhead.json
    .venv/bin/python -m benchmarks.ray_overhead --model tests-tiny-model-dir --train 32

Uses the default model (SmolLM2-135M-Instruct) unless --model is given.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from apa_console.apa.adapters import train_all
from apa_console.apa.shards import run_partition
from apa_console.engine.backbone import Backbone
from apa_console.engine.dispatch_options import DispatchOptions
from apa_console.store import records
from apa_console.store.document import Store
from benchmarks.common import build_base_store, load_source, machine_description


def _train(base: Store, root: Path, backbone: Backbone, overrides: dict,
           dispatch: DispatchOptions | None) -> tuple[float, dict[str, str]]:
    shutil.copytree(base.root, root)
    store = Store.open(root)
    started = time.perf_counter()
    train_all(store, backbone, overrides=overrides, dispatch=dispatch)
    wall = time.perf_counter() - started
    return wall, {row["id"]: row["sha256"] for row in records.live_adapters(store.snapshot())}


def run(args) -> dict:
    backbone = Backbone.load(args.model, device=args.device)
    overrides = {"epochs": args.epochs, "batch_size": args.batch_size}
    with tempfile.TemporaryDirectory(prefix="apa-bench-ray-") as tmp:
        parsed, source = load_source("demo")
        sizes = {"train": args.train, "valid": args.valid, "test": args.test}
        base = build_base_store(Path(tmp) / "base", backbone, parsed, sizes)
        run_partition(base, backbone, "apa", args.shards, seed=0)
        sequential, reference = _train(base, Path(tmp) / "sequential", backbone, overrides,
                                       None)
        print(f"sequential: {sequential:.1f}s", flush=True)
        runs = []
        for workers in args.workers:
            wall, shas = _train(base, Path(tmp) / f"ray-{workers}", backbone, overrides,
                                DispatchOptions(workers=workers))
            runs.append({"workers": workers, "seconds": round(wall, 2),
                         "ratio_to_sequential": round(wall / sequential, 3),
                         "bit_identical": shas == reference})
            print(f"ray, {workers} workers: {wall:.1f}s, ratio {wall / sequential:.2f}, "
                  f"bit-identical {shas == reference}", flush=True)
    return {
        "benchmark": "ray_overhead",
        "machine": machine_description(backbone),
        "model": backbone.info["name"],
        "data": source,
        "shards": args.shards,
        "samples": sizes,
        "settings": overrides,
        "sequential_seconds": round(sequential, 2),
        "ray": runs,
        "note": "Ray times include starting a local Ray instance and each worker loading "
                "the model; every worker uses the machine's torch threads (as the driver "
                "does), so on one CPU machine workers share its cores.",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model directory (default SmolLM2)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shards", type=int, default=4, help="K (the demo's 4)")
    parser.add_argument("--train", type=int, default=64)
    parser.add_argument("--valid", type=int, default=16)
    parser.add_argument("--test", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    result = run(args)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
