"""Which training recipe makes a shard's adapter learn? A resumable sweep on MovieLens-100K.

    .venv/bin/python -m benchmarks.recipe_sweep [--train 256] [--test 400]
        [--configs 1e-3:2 3e-3:2 1e-2:2 1e-3:4 3e-3:4] [--json benchmarks/recipe_sweep.json]

Trains one LoRA adapter per configuration (learning rate : epochs; every other setting is
the engine's default, bf16 where native) on the same `--train` TALLRec training samples, the
size of one shard, and scores the same test samples with each. Reports each AUC, the paired
bootstrap interval of its gain over the base model without an adapter, the final loss and
the wall times. Each finished configuration is written to the JSON at once, and a rerun with
the same JSON skips it, so the sweep survives an interruption.
"""

from __future__ import annotations  # noqa: I001 (apa_console.engine must come before torch)

# Engine first: importing it requests huge pages, which torch reads once, as it loads.
from apa_console.engine.backbone import Backbone
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from apa_console.apa.adapters import score_with_adapter
from apa_console.apa.metrics import auc
from apa_console.data.ingest import select
from apa_console.engine.mixture import AdapterFactors
from apa_console.engine.training import TrainSettings, train_adapter
from apa_console.errors import ApaError
from benchmarks.bootstrap import delta_interval
from benchmarks.common import (
    load_source,
    machine_description,
    movielens_arguments,
    run_and_write,
)

DEFAULT_CONFIGS = ("1e-3:2", "3e-3:2", "1e-2:2", "1e-3:4", "3e-3:4")


def parse_config(text: str) -> tuple[float, int]:
    lr, _, epochs = text.partition(":")
    try:
        parsed = float(lr), int(epochs)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not LR:EPOCHS (e.g. 3e-3:2)") from None
    if not (parsed[0] > 0 and parsed[1] >= 1):
        raise argparse.ArgumentTypeError(f"{text!r}: the rate must be > 0, epochs >= 1")
    return parsed


def config_name(lr: float, epochs: int) -> str:
    return f"lr {lr:g}, {epochs} epoch{'s' if epochs != 1 else ''}"


def run(args: argparse.Namespace, previous: dict) -> dict:
    parsed, source = load_source(args.data)
    chosen = select(parsed, {"train": args.train, "valid": 0, "test": args.test}, seed=0)
    train, test = chosen["train"], chosen["test"]
    backbone = Backbone.load(args.model, device="cpu")
    machine = machine_description(backbone)
    print(f"{source}: {len(train)} train, {len(test)} test; {machine}", flush=True)
    sizes = {"train": len(train), "test": len(test)}
    if previous.get("sizes") not in (None, sizes):
        raise ApaError(f"{args.json} holds a sweep over other sizes ({previous['sizes']}); "
                       "name another --json")
    result = {"benchmark": "recipe_sweep", "source": source, "sizes": sizes,
              "machine": machine, "configs": previous.get("configs", {})}
    prompts = backbone.prompts_for(test)
    labels = np.array([s.label for s in test], dtype=float)
    started = time.perf_counter()
    base = backbone.score(prompts)
    result["base_model_auc"] = auc(labels, base)
    print(f"base model (no adapter): AUC {result['base_model_auc']:.4f} "
          f"({time.perf_counter() - started:.0f} s)", flush=True)
    for lr, epochs in args.configs:
        name = config_name(lr, epochs)
        if name in result["configs"]:
            print(f"{name}: done in an earlier run, AUC {result['configs'][name]['auc']:.4f}")
            continue
        settings = TrainSettings(epochs=epochs, lr=lr, seed=0)
        with tempfile.TemporaryDirectory(prefix="apa-recipe-") as scratch:
            started = time.perf_counter()
            trained = train_adapter(backbone, backbone.prompts_for(train),
                                    [s.label for s in train], [s.id for s in train],
                                    settings, Path(scratch) / "adapter")
            train_s = time.perf_counter() - started
            factors = AdapterFactors.load(trained.adapter_dir)
        started = time.perf_counter()
        scores = score_with_adapter(backbone, prompts, factors)
        score_s = time.perf_counter() - started
        result["configs"][name] = {
            "lr": lr, "epochs": epochs, "batch_size": settings.batch_size,
            "auc": auc(labels, scores),
            "gain_over_base_interval_95": delta_interval(labels, scores, base),
            "final_loss": trained.loss_curve[-1], "train_s": train_s, "score_s": score_s,
            "dtype": trained.settings.get("dtype"),
        }
        entry = result["configs"][name]
        print(f"{name}: AUC {entry['auc']:.4f} (gain over base, 95 %: "
              f"{entry['gain_over_base_interval_95']}), final loss {entry['final_loss']:.3f}, "
              f"trained in {train_s:.0f} s", flush=True)
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = movielens_arguments("benchmarks.recipe_sweep", __doc__, train=256, test=400)
    parser.add_argument("--configs", nargs="+", type=parse_config,
                        default=[parse_config(text) for text in DEFAULT_CONFIGS],
                        metavar="LR:EPOCHS")
    args = parser.parse_args(argv)
    if min(args.train, args.test) < 2:
        parser.error("--train and --test must be at least 2")
    previous = {}
    if args.json and args.json.exists():  # resume: finished configurations are kept
        try:
            previous = json.loads(args.json.read_text())
        except (OSError, json.JSONDecodeError) as error:
            parser.error(f"{args.json}: cannot resume from it ({error})")
    return run_and_write(lambda: run(args, previous), args.json)

if __name__ == "__main__":
    sys.exit(main())
