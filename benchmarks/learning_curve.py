"""How fast one shard's adapter learns: test AUC against training samples and seconds, per
recipe, with paired-bootstrap intervals — the numbers that size APA's shards.

    python -m benchmarks.learning_curve [--data DIR|demo] [--sizes 24,64,128,256]
        [--recipes v4,tallrec,pair] [--test 300] [--dtype float32] [--json out.json]
        [--plot out.png]

For each recipe and shard size, one adapter is trained on the first `size` samples of one
seeded shuffle of the training split (smaller shards are subsets of larger ones) and scored
on the same test samples. Each row reports AUC, its interval against the untouched model,
and, once both are measured, its difference from the reference recipe at the same
size with a paired-bootstrap interval; sample-steps (samples × epochs), training seconds and
samples/s. Recipes:
  v4       what engine version 4 trained: the " Yes"/" No" tokens, full-vocabulary loss, batch 8
  tallrec  TALLRec's recipe on the answer tokens the tokenizer writes (full-vocabulary loss)
  pair     the tokenizer's answer tokens, loss over the two answers only
  (each at batch 8; engine version 5's default is tallrec+batch_size=4)
  NAME+key=value…  a recipe with settings changed: "tallrec+lr=1e-2+lora_layers=8"
A run writes its JSON after every row and skips rows already in it (`--json` resumes).
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
from apa_console.data.demo import generate_demo
from apa_console.data.ingest import select
from apa_console.engine.answers import AS_WRITTEN, LEADING_SPACE
from apa_console.engine.mixture import AdapterFactors
from apa_console.engine.training import TrainSettings, train_adapter
from apa_console.errors import UsageError
from benchmarks.bootstrap import delta_interval
from benchmarks.common import ML100K, load_source, machine_description

# name: (answer style, training settings that differ from the engine's defaults)
# (pinned, so a name keeps its meaning when the engine's defaults move)
RECIPES: dict[str, tuple[str, dict]] = {
    "v4": (LEADING_SPACE, {"loss": "full_vocab", "batch_size": 8}),
    "tallrec": (AS_WRITTEN, {"loss": "full_vocab", "batch_size": 8}),
    "pair": (AS_WRITTEN, {"loss": "answer_pair", "batch_size": 8}),
}
# Settings a recipe name may change after a "+": "tallrec+lr=1e-2+lora_layers=8".
TUNABLE = {"lr": float, "epochs": int, "batch_size": int, "rank": int, "alpha": int,
           "warmup": float, "dropout": float, "lora_layers": int, "loss": str}


def recipe(name: str) -> tuple[str, dict]:
    """(answer style, settings) of a recipe name: a base recipe, then `+key=value` changes."""
    base, *changes = name.split("+")
    if base not in RECIPES:
        raise ValueError(f"unknown recipe {base!r}; known: {', '.join(RECIPES)}")
    style, settings = RECIPES[base]
    settings = dict(settings)
    for change in changes:
        key, _, value = change.partition("=")
        if key not in TUNABLE or not value:
            raise ValueError(f"cannot set {change!r}; settable: {', '.join(TUNABLE)}")
        settings[key] = TUNABLE[key](value)
    TrainSettings(**settings)  # refuse what training would refuse
    return style, settings


def _list(kind):
    def parse(text: str) -> list:
        try:
            values = [kind(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a comma-separated list: {text!r}") from None
        if not values:
            raise argparse.ArgumentTypeError("the list is empty")
        return values
    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.learning_curve",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ML100K), help="MovieLens-100K raw files, or demo")
    parser.add_argument("--demo-users", type=int, default=64,
                        help="users of the generated set with --data demo (4 train samples each)")
    parser.add_argument("--model", help="a local Hugging Face model directory")
    parser.add_argument("--sizes", type=_list(int), default=[24, 64, 128, 256])
    parser.add_argument("--recipes", type=_list(str), default=["v4", "tallrec", "pair"])
    parser.add_argument("--test", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0, help="shuffle and training seed")
    parser.add_argument("--reference", default="v4",
                        help="the recipe every row is compared with, paired (default v4)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--json", type=Path, help="write (and resume) the results here")
    parser.add_argument("--plot", type=Path, help="draw AUC against samples and seconds here")
    args = parser.parse_args(argv)
    for name in args.recipes:
        try:
            recipe(name)
        except (ValueError, UsageError) as error:
            parser.error(str(error))
    if min(args.sizes) < 1 or args.test < 2:
        parser.error("--sizes must be at least 1 and --test at least 2")
    return args


def _row_key(data: str, recipe: str, size: int, args: argparse.Namespace) -> str:
    source = f"demo{args.demo_users}" if data == "demo" else Path(data).name
    return f"{source}|{recipe}|{size}|{args.test}|{args.seed}|{args.dtype}"


def run(args: argparse.Namespace) -> dict:
    if args.data == "demo":
        parsed, source = generate_demo(args.demo_users), f"demo set, {args.demo_users} users"
    else:
        parsed, source = load_source(args.data)
    chosen = select(parsed, {"train": max(args.sizes), "valid": 0, "test": args.test},
                    seed=args.seed)
    train, test = chosen["train"], chosen["test"]
    order = np.random.default_rng(args.seed).permutation(len(train))
    train = [train[i] for i in order]
    if len(train) < max(args.sizes):
        raise FileNotFoundError(f"{source} has only {len(train)} training samples")
    labels = np.array([s.label for s in test], dtype=float)
    previous = json.loads(args.json.read_text()) if args.json and args.json.exists() else {}
    rows = {row["key"]: row for row in previous.get("rows", [])}
    backbones: dict[str, Backbone] = {}
    scores: dict[str, np.ndarray] = {}
    described = {name: {"answer_style": recipe(name)[0],
                        "settings": TrainSettings(**recipe(name)[1]).to_dict()}
                 for name in args.recipes}
    result = {**previous, "source": source, "test": len(test), "sizes": args.sizes,
              "dtype": args.dtype, "recipes": {**previous.get("recipes", {}), **described}}

    def backbone_for(style: str) -> Backbone:
        if style not in backbones:  # loaded only when a row needs training
            backbones[style] = Backbone.load(args.model, device="cpu", dtype=args.dtype,
                                             answer_style=style)
            base = backbones[style].score(backbones[style].prompts_for(test))
            scores[f"base|{style}"] = base
            result[f"base_auc_{style}"] = auc(labels, base)
            print(f"untouched model, {style} answers: AUC {auc(labels, base):.4f}", flush=True)
        return backbones[style]

    with tempfile.TemporaryDirectory(prefix="apa-learning-curve-") as scratch:
        for size in args.sizes:
            for name in args.recipes:
                style, changes = recipe(name)
                key = _row_key(args.data, name, size, args)
                if key in rows:  # measured by an earlier run with the same settings
                    scores[key] = np.array(rows[key]["scores"])
                    _print_row(rows[key])
                    continue
                backbone = backbone_for(style)
                result["machine"] = machine_description(backbone)
                shard = train[:size]
                settings = TrainSettings(**{**changes, "seed": args.seed, "dtype": args.dtype})
                started = time.perf_counter()
                trained = train_adapter(backbone, backbone.prompts_for(shard),
                                        [s.label for s in shard], [s.id for s in shard],
                                        settings, Path(scratch) / f"run-{len(rows)}")
                train_s = time.perf_counter() - started
                factors = AdapterFactors.load(trained.adapter_dir)
                scored = score_with_adapter(backbone, backbone.prompts_for(test), factors)
                scores[key] = scored
                rows[key] = {
                    "key": key, "recipe": name, "size": size, "auc": auc(labels, scored),
                    "sample_steps": size * settings.epochs, "train_s": train_s,
                    "train_samples_per_s": size * settings.epochs / train_s,
                    "loss_first": trained.loss_curve[0], "loss_last": trained.loss_curve[-1],
                    "vs_base_interval": delta_interval(labels, scored, scores[f"base|{style}"]),
                    "scores": [round(float(x), 8) for x in scored],
                }
                _print_row(rows[key])
                result["rows"] = list(rows.values())
                if args.json:
                    args.json.write_text(json.dumps(result, indent=2) + "\n")
    result["labels"] = labels.astype(int).tolist()
    result["reference"] = args.reference
    result["rows"] = [_against_reference(row, rows, labels, args) for row in rows.values()]
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


def _against_reference(row: dict, rows: dict, labels: np.ndarray,
                       args: argparse.Namespace) -> dict:
    """`row` with its AUC difference from the reference recipe at its size and the paired
    interval of that difference (same test samples), when the reference row exists."""
    reference = next((other for other in rows.values() if other["recipe"] == args.reference
                      and other["size"] == row["size"]), None)
    row = {key: value for key, value in row.items() if not key.startswith("vs_first")}
    if reference is None or row["recipe"] == args.reference:
        return row
    row["vs_reference"] = row["auc"] - reference["auc"]
    row["vs_reference_interval"] = delta_interval(labels, np.array(row["scores"]),
                                                  np.array(reference["scores"]))
    return row


def _print_row(row: dict) -> None:
    low, high = row["vs_base_interval"] or (float("nan"),) * 2
    text = (f"{row['recipe']:>14} {row['size']:>4} samples: AUC {row['auc']:.4f} "
            f"(vs untouched [{low:+.3f}, {high:+.3f}]); loss {row['loss_first']:.2f} → "
            f"{row['loss_last']:.2f}; {row['train_s']:.0f} s, "
            f"{row['train_samples_per_s']:.2f} samples/s")
    print(text, flush=True)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (by_steps, by_seconds) = plt.subplots(1, 2, figsize=(11, 4))
    for name in result["recipes"]:
        mine = sorted((r for r in result["rows"] if r["recipe"] == name),
                      key=lambda r: r["size"])
        if not mine:
            continue
        aucs = [r["auc"] for r in mine]
        by_steps.plot([r["sample_steps"] for r in mine], aucs, marker="o", label=name)
        by_seconds.plot([r["train_s"] for r in mine], aucs, marker="o", label=name)
    for axis, name in ((by_steps, "sample-steps (samples × epochs)"),
                       (by_seconds, "training seconds")):
        axis.set_xscale("log")
        axis.set_xlabel(name)
        axis.set_ylabel("test AUC")
        axis.axhline(0.5, color="grey", linewidth=0.5)
        axis.legend()
    figure.suptitle(f"{result['source']}, one adapter, {result['test']} test samples")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    from apa_console.errors import ApaError

    args = parse_args(argv)
    try:
        result = run(args)
    except (ApaError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.plot:
        plot(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
