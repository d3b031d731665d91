"""Does a bfloat16 base model change what the recommender learns? One run on MovieLens-100K.

    .venv/bin/python -m benchmarks.dtype_quality [--train 512] [--test 500] [--epochs N]
        [--lr X] [--seeds 0,1] [--json benchmarks/dtype_quality.json]

For each seed, trains one LoRA adapter on the same samples twice, once with the frozen
base model in float32 and once in bfloat16, and scores the test samples with each adapter
in its own dtype (and seed 0's float32 adapter in bfloat16 too). Epochs and learning rate
default to the engine's training defaults (`TrainSettings`), so the run measures the
adapters a store trains.

Reports each AUC; per seed, AUC(bf16) − AUC(fp32) with its paired-bootstrap interval; and,
with two or more seeds, each dtype's seed-to-seed differences, the training noise that a
dtype difference has to be read against (the bootstrap interval covers only the test
sample). Also the Pearson correlation of P(Yes) of the same adapter scored in both dtypes,
the base model's AUC without an adapter, and the wall times.
"""

from __future__ import annotations  # noqa: I001 (apa_console.engine must come before torch)

# Engine first: importing it requests huge pages, which torch reads once, as it loads.
from apa_console.engine.backbone import Backbone
from apa_console.engine.devices import DTYPES
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from apa_console.apa.adapters import score_with_adapter
from apa_console.apa.metrics import auc
from apa_console.data.ingest import select
from apa_console.engine.mixture import AdapterFactors
from apa_console.engine.training import MAX_SEED, TrainSettings, train_adapter
from benchmarks.bootstrap import delta_interval
from benchmarks.common import (
    load_source,
    machine_description,
    movielens_arguments,
    run_and_write,
)


def _timed(work):
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def _train_and_score(backbone: Backbone, train, prompts, dtype: str, seed: int,
                     scratch: Path, args: argparse.Namespace):
    """One adapter trained and scored in `dtype`: its row, scores and factors."""
    settings = TrainSettings(epochs=args.epochs, lr=args.lr, seed=seed, dtype=dtype)
    trained, train_s = _timed(lambda: train_adapter(
        backbone, backbone.prompts_for(train), [s.label for s in train],
        [s.id for s in train], settings, scratch / f"{dtype}-seed{seed}"))
    factors = AdapterFactors.load(trained.adapter_dir)
    work = backbone.in_dtype(DTYPES[dtype])
    scores, score_s = _timed(lambda: score_with_adapter(work, prompts, factors))
    row = {"seed": seed, "train_s": train_s, "score_s": score_s,
           "train_samples_per_s": len(train) / train_s,
           "score_samples_per_s": len(prompts) / score_s,
           "final_loss": trained.loss_curve[-1], "sha256": trained.weights_sha256}
    return row, scores, factors


def run(args: argparse.Namespace) -> dict:
    parsed, source = load_source(args.data)
    chosen = select(parsed, {"train": args.train, "valid": 0, "test": args.test}, seed=0)
    train, test = chosen["train"], chosen["test"]
    backbone = Backbone.load(args.model, device="cpu", dtype="float32")
    print(f"{source}: {len(train)} train, {len(test)} test; {machine_description(backbone)}",
          flush=True)
    prompts = backbone.prompts_for(test)
    labels = np.array([s.label for s in test], dtype=float)
    result: dict = {"source": source, "train": len(train), "test": len(test),
                    "epochs": args.epochs, "lr": args.lr, "seeds": args.seeds,
                    "machine": machine_description(backbone)}
    base = backbone.in_dtype(DTYPES["bfloat16"]).score(prompts)
    result["base_model_auc_bfloat16"] = auc(labels, base)
    print(f"base model (no adapter, bf16 scoring): AUC {result['base_model_auc_bfloat16']:.4f}",
          flush=True)
    names = ("float32", "bfloat16")
    runs: dict[str, list[dict]] = {name: [] for name in names}
    scores: dict[str, list[np.ndarray]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="apa-dtype-quality-") as scratch:
        for seed in args.seeds:
            for name in names:
                row, seed_scores, factors = _train_and_score(
                    backbone, train, prompts, name, seed, Path(scratch), args)
                row["auc"] = auc(labels, seed_scores)
                runs[name].append(row)
                scores[name].append(seed_scores)
                if name == "float32" and seed == args.seeds[0]:
                    cross = score_with_adapter(backbone.in_dtype(DTYPES["bfloat16"]), prompts,
                                               factors)
                print(f"seed {seed}, {name}: AUC {row['auc']:.4f}, trained in "
                      f"{row['train_s']:.0f} s, scored in {row['score_s']:.0f} s", flush=True)
    result["runs"] = runs
    result["dtypes"] = {name: _dtype_summary(runs[name]) for name in names}
    result["auc_bf16_minus_fp32"] = float(np.mean(
        [b["auc"] - f["auc"] for f, b in zip(runs["float32"], runs["bfloat16"])]))
    result["per_seed"] = [
        {"seed": seed, "auc_bf16_minus_fp32": b["auc"] - f["auc"],
         "interval_95": delta_interval(labels, b_scores, f_scores)}
        for seed, f, b, f_scores, b_scores in zip(
            args.seeds, runs["float32"], runs["bfloat16"], scores["float32"],
            scores["bfloat16"])]
    # Training noise: every later seed against the first, within one dtype.
    result["seed_to_seed"] = {
        name: [{"seeds": [args.seeds[0], seed], "auc_delta": row["auc"] - runs[name][0]["auc"],
                "interval_95": delta_interval(labels, later, scores[name][0])}
               for seed, row, later in zip(args.seeds[1:], runs[name][1:], scores[name][1:])]
        for name in names}
    first_fp32 = scores["float32"][0]
    result["same_adapter_p_yes_correlation"] = float(np.corrcoef(first_fp32, cross)[0, 1])
    result["same_adapter_p_yes_max_abs_diff"] = float(np.abs(first_fp32 - cross).max())
    fp32, bf16 = result["dtypes"]["float32"], result["dtypes"]["bfloat16"]
    result["bf16_over_fp32"] = {
        "train_samples_per_s": bf16["train_samples_per_s"] / fp32["train_samples_per_s"],
        "score_samples_per_s": bf16["score_samples_per_s"] / fp32["score_samples_per_s"]}
    _print_summary(result)
    return result


def _dtype_summary(rows: list[dict]) -> dict:
    """A dtype's AUC over the seeds and its median speeds."""
    return {"auc_mean": float(np.mean([row["auc"] for row in rows])),
            "auc_per_seed": [row["auc"] for row in rows],
            "train_samples_per_s": float(np.median([r["train_samples_per_s"] for r in rows])),
            "score_samples_per_s": float(np.median([r["score_samples_per_s"] for r in rows]))}


def _interval_text(interval) -> str:
    return "[n/a]" if interval is None else f"[{interval[0]:+.4f}, {interval[1]:+.4f}]"


def _print_summary(result: dict) -> None:
    for row in result["per_seed"]:
        print(f"seed {row['seed']}: AUC bf16 − fp32 {row['auc_bf16_minus_fp32']:+.4f}, 95 % "
              f"paired bootstrap interval {_interval_text(row['interval_95'])}")
    for name, deltas in result["seed_to_seed"].items():
        for row in deltas:
            first, later = row["seeds"]
            print(f"{name}: AUC seed {later} − seed {first} {row['auc_delta']:+.4f} "
                  f"{_interval_text(row['interval_95'])}")
    speed = result["bf16_over_fp32"]
    print(f"mean AUC bf16 − fp32 over the seeds: {result['auc_bf16_minus_fp32']:+.4f}; P(Yes) "
          f"of the fp32 adapter scored in fp32 vs bf16: r = "
          f"{result['same_adapter_p_yes_correlation']:.4f}; bf16/fp32 speed: training "
          f"{speed['train_samples_per_s']:.2f}×, scoring {speed['score_samples_per_s']:.2f}×",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = movielens_arguments("benchmarks.dtype_quality", __doc__, train=512, test=500)
    defaults = TrainSettings()
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--seeds", type=_seeds, default=[0, 1],
                        help="training seeds, comma-separated, distinct")
    args = parser.parse_args(argv)
    if min(args.train, args.test, args.epochs) < 1 or not args.lr > 0:
        parser.error("--train, --test and --epochs must be at least 1, --lr above 0")
    return run_and_write(lambda: run(args), args.json)


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of seeds: {text!r}") from None
    if len(set(seeds)) != len(seeds) or not all(0 <= seed <= MAX_SEED for seed in seeds):
        raise argparse.ArgumentTypeError(
            f"seeds must be distinct, each in [0, {MAX_SEED}]: {text!r}")
    return seeds


if __name__ == "__main__":
    sys.exit(main())
