"""`partition`, `shards`, `train`, `score`, `compare`, `tune`: the APA spine."""

from __future__ import annotations

from typing import Annotated

import typer

from apa_console.apa.choices import SERVED_POINTS, PartitionMethod, Strategy
from apa_console.cli import output
from apa_console.cli.common import (
    CpusPerJobOption,
    DeviceOption,
    GpusPerJobOption,
    JsonOption,
    ModelOption,
    RayAddressOption,
    StoreOption,
    WorkersOption,
    dispatch_options,
    new_typer,
    open_store,
)
from apa_console.cli.progress_view import live_progress
from apa_console.engine.choices import ComputeDtype, HiddenState, MixtureLevel, TrainingLoss
from apa_console.errors import UsageError
from apa_console.samples import Split
from apa_console.units import auc_summary, plural
from apa_console.workflows.model import open_backbone

# The core behind these commands (numpy, scikit-learn, torch) is imported inside each command,
# so `--help` and the light commands start in a fraction of a second.


def _fmt(value, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


app = new_typer("The APA spine: partition, train, score, compare, tune.")


@app.command()
def partition(
    method: Annotated[PartitionMethod, typer.Option("--method", help="Partition method.")]
    = PartitionMethod.APA,
    shards: Annotated[int, typer.Option("--shards", "-k", help="Number of shards K.")] = 4,
    max_size: Annotated[
        int | None, typer.Option("--max-size", help="Shard size cap t (default ⌈N/K⌉).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for K-means / random choices.")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Re-partition, retiring adapters.")]
    = False,
    hidden_state: Annotated[HiddenState, typer.Option(
        help="A sample's vector: the mean of the final states over its input, or the final "
             "state at its prompt's last token.")] = HiddenState.MEAN,
    store: StoreOption = None,
    model: ModelOption = None,
    device: DeviceOption = None,
    json: JsonOption = False,
) -> None:
    """Split the training samples into K shards (APA's semantic balanced partition or a
    baseline)."""
    from apa_console.apa import shards as sharding

    target = open_store(store)
    sharding.check_partition(target, method.value, shards, max_size, force, seed,
                             hidden_state.value)
    backbone = open_backbone(target, model, device, record=True)
    with live_progress(quiet=json) as (bars, cancel):
        summary = sharding.run_partition(
            target, backbone, method.value, shards, cap=max_size, seed=seed, force=force,
            hidden_state=hidden_state.value, progress=bars, cancel=cancel,
        )
    _print_shards(summary, json)


@app.command("shards")
def shards_cmd(store: StoreOption = None, json: JsonOption = False) -> None:
    """List the shards with balance statistics and their adapters."""
    from apa_console.apa import shards as sharding

    _print_shards(sharding.shard_summary(open_store(store)), json)


@app.command()
def train(
    retrain_baseline: Annotated[
        bool, typer.Option("--retrain-baseline",
                           help="Also train one adapter on all training data.")
    ] = False,
    epochs: Annotated[int | None, typer.Option(min=1, help="Training epochs.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate.")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Batch size.")] = None,
    seed: Annotated[int | None, typer.Option(help="Training seed.")] = None,
    group_by_length: Annotated[
        bool | None, typer.Option("--group-by-length/--no-group-by-length",
                                  help="Batch rows of similar length (less padding).")
    ] = None,
    share_prefix: Annotated[
        bool | None, typer.Option("--share-prefix/--no-share-prefix",
                                  help="Run a batch's common prompt prefix once.")
    ] = None,
    dtype: Annotated[
        ComputeDtype | None, typer.Option(
            help="The base model's compute dtype (auto: bfloat16 where the hardware has it; "
                 "a store keeps the one it recorded until this is given).")
    ] = None,
    loss: Annotated[
        TrainingLoss | None, typer.Option(
            help="The loss at the answer: over the two answer tokens, or the whole "
                 "vocabulary (TALLRec's).")
    ] = None,
    lora_layers: Annotated[
        int | None, typer.Option(
            min=0, help="Adapt only the top N decoder layers (0: all); the layers below run "
                        "once per sample, so each step costs less.")
    ] = None,
    store: StoreOption = None,
    model: ModelOption = None,
    device: DeviceOption = None,
    workers: WorkersOption = None,
    ray_address: RayAddressOption = None,
    gpus_per_job: GpusPerJobOption = None,
    cpus_per_job: CpusPerJobOption = None,
    json: JsonOption = False,
) -> None:
    """Train every shard's adapter (resumable: up-to-date adapters are skipped), then
    cache each adapter's validation errors."""
    from apa_console.apa.adapters import check_train, train_all

    dispatch = dispatch_options(workers, ray_address, gpus_per_job, cpus_per_job)
    target = open_store(store)
    overrides = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed,
                 "group_by_length": group_by_length, "share_prefix": share_prefix,
                 "dtype": dtype.value if dtype else None,
                 "loss": loss.value if loss else None, "lora_layers": lora_layers}
    check_train(target, overrides)  # refuse bad settings before the model loads or is recorded
    backbone = open_backbone(target, model, device, record=True)
    with live_progress(quiet=json) as (bars, cancel):
        trained = train_all(target, backbone, overrides=overrides,
                            retrain_baseline=retrain_baseline, progress=bars, cancel=cancel,
                            dispatch=dispatch)
    if json:
        output.emit_json([{k: row[k] for k in ("id", "sha256", "sample_count",
                                               "wall_time_s", "valid_error_mean")}
                          for row in trained])
        return
    if not trained:
        output.info("every adapter is up to date; nothing to train")
    for row in trained:
        output.stdout.print(
            f"{row['id']}: {plural(row['sample_count'], 'sample')}, {row['wall_time_s']:.1f}s, "
            f"validation error {_fmt(row['valid_error_mean'], 3)}, sha256 {row['sha256'][:12]}"
        )


@app.command()
def score(
    user: Annotated[str | None, typer.Option("--user", help="Score this user's samples.")]
    = None,
    split: Annotated[Split | None, typer.Option(
        "--split", help="The split to score (default test; with --user, that user's samples "
        "of it).", show_default=False)] = None,
    strategy: Annotated[Strategy, typer.Option(help="How adapters are weighted per sample.")]
    = Strategy.ADAPTIVE,
    level: Annotated[MixtureLevel, typer.Option(help="D (decomposition) or ND.")]
    = MixtureLevel.D,
    tau: Annotated[float | None, typer.Option(help="Softmax temperature τ.")] = None,
    neighbours: Annotated[
        int | None, typer.Option("--neighbours", "-n", min=1, help="Validation neighbours n.")
    ] = None,
    limit: Annotated[int, typer.Option(min=0, help="Rows to print (human output).")] = 20,
    store: StoreOption = None,
    model: ModelOption = None,
    device: DeviceOption = None,
    json: JsonOption = False,
) -> None:
    """Score samples with the per-sample merged adapter: P(Yes), label, weights, AUC."""
    from apa_console.apa import serving
    from apa_console.apa.weights import check_aggregation

    target = open_store(store)
    check_aggregation(tau, neighbours)
    samples = serving.samples_to_score(target, split=split and split.value, user=user)
    serving.check_servable(target)
    backbone = open_backbone(target, model, device)
    with live_progress(quiet=json) as (bars, cancel):
        report = serving.score_apa(target, backbone, samples, strategy=strategy.value,
                                   level=level.value,
                                   tau=tau, neighbours=neighbours, progress=bars,
                                   cancel=cancel,
                                   # a whole split's AUC joins the history the TUI charts
                                   record_as=None if user is not None else (split or "test"))
    if json:
        output.emit_json(report.to_dict())
        return
    rows = report.to_dict()["rows"]
    scored = split.value if split else "test"
    whose = f"user {user}'s " if user is not None else ""
    # one weight column per adapter, headed by its id (shard-K-vN), in the mixture's order
    output.table(
        ["sample", "user", "label", "P(Yes)", *(f"w {a}" for a in report.adapter_ids)],
        ([r["sample"], r["user"], "Yes" if r["label"] else "No", f"{r['p_yes']:.3f}",
          *(f"{r.get('weights', {}).get(a, 0.0):.2f}" for a in report.adapter_ids)]
         for r in rows[:limit]),
        title=f"{whose}{scored} split · {report.method} · {strategy.value} · "
        f"τ={report.tau:g} n={report.neighbours}",
    )
    if len(rows) > limit:
        output.info(f"… {plural(len(rows) - limit, 'more row')} (--limit, or --json for all)")
    positives = sum(1 for r in rows if r["label"])
    output.stdout.print(
        f"{auc_summary(report.auc, len(rows), positives, scored)} · "
        f"{report.samples_per_s:.2f} samples/s · "
        f"{plural(len(report.adapter_ids), 'adapter')} ({', '.join(report.adapter_ids)})"
    )


@app.command()
def compare(
    split: Annotated[Split, typer.Option(help="Split to evaluate.")] = Split.TEST,
    strategy: Annotated[Strategy, typer.Option(help="APA weight strategy.")]
    = Strategy.ADAPTIVE,
    store: StoreOption = None,
    model: ModelOption = None,
    device: DeviceOption = None,
    json: JsonOption = False,
) -> None:
    """Retraining vs output averaging (SISA on a random partition) vs APA(D) vs APA(ND): the
    paper's Table I columns."""
    from apa_console.apa import serving

    target = open_store(store)
    serving.check_servable(target)
    backbone = open_backbone(target, model, device)
    with live_progress(quiet=json) as (bars, cancel):
        result = serving.compare(target, backbone, split=split.value, strategy=strategy.value,
                                 progress=bars, cancel=cancel)
    if json:
        output.emit_json(result)
        return
    output.table(
        ["method", "avg sub-adapter AUC", "AUC", "Δ vs Retraining", "samples/s"],
        ([r["method"], _fmt(r["sub_adapter_auc"]), _fmt(r["auc"]),
          _fmt(r["delta_vs_retraining"]), f"{r['samples_per_s']:.2f}"]
         for r in result["rows"]),
        title=f"{result['split']} split, {plural(result['samples'], 'sample')}",
    )
    if not any(r["method"] == "Retraining" for r in result["rows"]):
        output.info("no Retraining baseline: run `apa-console train --retrain-baseline`")


@app.command()
def tune(
    proxy: Annotated[bool, typer.Option(
        "--proxy", help="Rank by the output-level proxy only (no model load, milliseconds).")]
    = False,
    served_points: Annotated[int, typer.Option(
        metavar="N", help="Grid points the proxy shortlists for scoring with the served merge.")]
    = SERVED_POINTS,
    store: StoreOption = None,
    model: ModelOption = None,
    device: DeviceOption = None,
    json: JsonOption = False,
) -> None:
    """Search τ and n on the validation pool (each user left out of their own neighbours) and
    store the best: the proxy ranks the grid, then its best points are scored as served."""
    from apa_console.apa import serving, tuning

    if served_points < 1:
        raise UsageError("--served-points must be at least 1")
    target = open_store(store)
    serving.load_live_set(target)  # refuse an unservable store before loading a model
    backbone = None if proxy else open_backbone(target, model, device)
    with live_progress(quiet=json or proxy) as (bars, cancel):
        result = tuning.tune(target, backbone, served_points=served_points, progress=bars,
                             cancel=cancel)
    if json:
        output.emit_json(result)
        return
    best = result["best"]
    output.stdout.print(
        f"best τ={best['tau']:g} n={best['neighbours']} "
        f"(validation AUC {_fmt(best['auc'])}, {best['scored_by']}); stored as the score "
        "defaults"
    )


def _print_shards(summary: dict, as_json: bool) -> None:
    if as_json:
        output.emit_json(summary)
        return
    partition = summary["partition"] or {}
    if not summary["shards"]:
        output.info("no shards yet: run `apa-console partition`")
        return
    output.table(
        ["shard", "size", "users", "adapter", "serving", "sha256", "valid error"],
        ([s["shard"], s["size"], s["users"], s["adapter"] or "–", s["serving"],
          (s["adapter_sha256"] or "")[:12], _fmt(s["valid_error"], 3)]
         for s in summary["shards"]),
        title=f"{partition.get('method')} partition, K={partition.get('shards')}, "
        f"cap t={partition.get('cap')}",
    )
    b = summary["balance"]
    output.stdout.print(
        f"size min/max/std {b['min_size']}/{b['max_size']}/{b['std_size']:.2f} · "
        f"users per shard min/max/mean {b['min_users']}/{b['max_users']}/{b['mean_users']:.1f}"
    )
