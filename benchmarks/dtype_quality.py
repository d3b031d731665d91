"""Does a bfloat16 base model change what the recommender learns? One run on MovieLens-100K.

    .venv/bin/python -m benchmarks.dtype_quality [--train 512] [--test 500] [--epochs 1]
        [--lr 1e-3] [--json benchmarks/dtype_quality.json]

Trains one LoRA adapter on the same samples with the same seed twice, once with the frozen
base model in float32 and once in bfloat16, and scores the test samples with each adapter
in its own dtype (and the float32 adapter in bfloat16 too). Reports each AUC, the paired
bootstrap interval of AUC(bf16) − AUC(fp32), the Pearson correlation of P(Yes) of the same
adapter scored in both dtypes, the base model's AUC without an adapter, and the wall times.
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
from apa_console.engine.training import TrainSettings, train_adapter
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
                    "machine": machine_description(backbone), "dtypes": {}}
    base, seconds = _timed(lambda: backbone.in_dtype(DTYPES["bfloat16"]).score(prompts))
    result["base_model_auc_bfloat16"] = auc(labels, base)
    print(f"base model (no adapter, bf16 scoring): AUC {result['base_model_auc_bfloat16']:.4f}",
          flush=True)
    scores: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix="apa-dtype-quality-") as scratch:
        factors = {}
        for name in ("float32", "bfloat16"):
            settings = TrainSettings(epochs=args.epochs, lr=args.lr, seed=0, dtype=name)
            trained, train_s = _timed(lambda settings=settings, name=name: train_adapter(
                backbone, backbone.prompts_for(train), [s.label for s in train],
                [s.id for s in train], settings, Path(scratch) / name))
            factors[name] = AdapterFactors.load(trained.adapter_dir)
            work = backbone.in_dtype(DTYPES[name])
            scores[name], score_s = _timed(
                lambda work=work, name=name: score_with_adapter(work, prompts, factors[name]))
            result["dtypes"][name] = {
                "auc": auc(labels, scores[name]), "train_s": train_s, "score_s": score_s,
                "train_samples_per_s": len(train) / train_s,
                "score_samples_per_s": len(test) / score_s,
                "final_loss": trained.loss_curve[-1], "sha256": trained.weights_sha256,
            }
            print(f"{name}: AUC {result['dtypes'][name]['auc']:.4f}, trained in {train_s:.0f} s,"
                  f" scored in {score_s:.0f} s", flush=True)
        cross = score_with_adapter(backbone.in_dtype(DTYPES["bfloat16"]), prompts,
                                   factors["float32"])
    interval = delta_interval(labels, scores["bfloat16"], scores["float32"])
    result["auc_bf16_minus_fp32"] = (result["dtypes"]["bfloat16"]["auc"]
                                     - result["dtypes"]["float32"]["auc"])
    result["auc_delta_interval_95"] = interval
    result["same_adapter_p_yes_correlation"] = float(np.corrcoef(scores["float32"], cross)[0, 1])
    result["same_adapter_p_yes_max_abs_diff"] = float(np.abs(scores["float32"] - cross).max())
    fp32, bf16 = result["dtypes"]["float32"], result["dtypes"]["bfloat16"]
    result["bf16_over_fp32"] = {
        "train_samples_per_s": bf16["train_samples_per_s"] / fp32["train_samples_per_s"],
        "score_samples_per_s": bf16["score_samples_per_s"] / fp32["score_samples_per_s"]}
    print(f"AUC bf16 − fp32: {result['auc_bf16_minus_fp32']:+.4f}, 95 % paired bootstrap "
          f"interval {interval}; P(Yes) of the fp32 adapter scored in fp32 vs bf16: "
          f"r = {result['same_adapter_p_yes_correlation']:.4f}; bf16/fp32 speed: training "
          f"{result['bf16_over_fp32']['train_samples_per_s']:.2f}×, scoring "
          f"{result['bf16_over_fp32']['score_samples_per_s']:.2f}×", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = movielens_arguments("benchmarks.dtype_quality", __doc__, train=512, test=500)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args(argv)
    if min(args.train, args.test, args.epochs) < 1 or not args.lr > 0:
        parser.error("--train, --test and --epochs must be at least 1, --lr above 0")
    return run_and_write(lambda: run(args), args.json)

if __name__ == "__main__":
    sys.exit(main())
