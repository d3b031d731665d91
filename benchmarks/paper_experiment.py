"""The APA paper's comparison on MovieLens-100K, reproduced in one run and written up.

    .venv/bin/python -m benchmarks.paper_experiment --profile quick   # ≤ 45 min, 2-core CPU
    .venv/bin/python -m benchmarks.paper_experiment --profile paper   # 1024/500/1000, K = 4

Arms (each a store copied from one base store that holds the data and every split's hidden
states): Retraining (one adapter on all training data), and K-shard partitions by random
(SISA), user (RecEraser-style), bekm (GraphEraser-style), apa and apa-user. Then:
- Table I: mean sub-adapter AUC, AUC, Δ vs Retraining (paired-bootstrap 95 % interval) for
  Retraining, SISA / RecEraser / GraphEraser (output averaging), APA(D), APA(ND), apa-user;
- forgetting the median user (by training samples) per partition vs that arm's full retrain;
- inference time of every serving path on the same samples, batched and one at a time;
- ablations: partition method (APA(D) and APA(ND)) and weight strategy; τ and n sweeps;
- with the opt-in arms apa-half-k and apa-double-k, the shard size study; with apa-last,
  APA on the prompt's last-token state instead of the mean over its input.
`--arms` picks a subset and `--table-only` stops after Table I, to size a run to a CPU.

Resumable: work lives in `--workdir` (default benchmarks/.work/<profile>-<config hash>);
trained adapters are reused when manifest and settings match, and every finished stage's
numbers are kept in results.json there, so a rerun after an interruption picks up where it
stopped. `--report-only` rewrites RESULTS.md, results.json and the plots from the work
directory's summary.json.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from apa_console.apa.adapters import (
    train_all,
)
from apa_console.apa.embeddings import split_samples
from apa_console.apa.serving import (
    aggregation_defaults,
    load_live_set,
    score_apa,
    score_each_adapter,
)
from apa_console.apa.shards import DEFAULT_HIDDEN_STATE, run_partition
from apa_console.apa.tuning import tune
from apa_console.cli.progress_view import live_progress
from apa_console.engine.backbone import Backbone
from apa_console.store import records
from apa_console.store.catalog import median_user
from apa_console.store.document import Store
from apa_console.unlearning.targets import Targets
from apa_console.workflows.forget import forget
from benchmarks.common import ML100K, build_base_store, load_source, machine_description
from benchmarks.paper_report import write_report
from benchmarks.paper_timing import inference_timing
from benchmarks.stage_cache import Results, adapters_key, copy_store, stage

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Profile:
    name: str
    train: int
    valid: int
    test: int
    shards: int
    epochs: int
    inference_samples: int  # the timed serving comparison
    sweep_samples: int  # τ/n sweeps (parameter-level APA(D) on the first test samples)
    taus: tuple[float, ...]
    neighbours: tuple[int, ...]
    seed: int = 0


PROFILES = {
    # quick: every stage at sizes a 2-core CPU runs in under an hour (its time is in
    # quick/RESULTS.md); paper: the paper's Movie setting, 1024 training samples in K = 4.
    "quick": Profile("quick", train=128, valid=48, test=88, shards=4, epochs=1,
                     inference_samples=32, sweep_samples=32,
                     taus=(1.0, 10.0, 100.0, 1000.0), neighbours=(1, 5, 20, 40)),
    "paper": Profile("paper", train=1024, valid=500, test=1000, shards=4, epochs=2,
                     inference_samples=500, sweep_samples=1000,
                     taus=(1.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0),
                     neighbours=(1, 5, 10, 20, 50, 100)),
}

# arm → (partition method, number of shards or None for the profile's K)
ARMS = {
    "retraining": ("random", 1),
    "random": ("random", None),
    "user": ("user", None),
    "bekm": ("bekm", None),
    "apa": ("apa", None),
    "apa-user": ("apa-user", None),
    # the shard size study (the paper's Fig. 7): APA with half and double the profile's K
    "apa-half-k": ("apa", "half"),
    "apa-double-k": ("apa", "double"),
    # the representation study: APA on the whole prompt's last-token state
    "apa-last": ("apa", None),
}
ARM_HIDDEN_STATES = {"apa-last": "last"}  # the others take the store's default (the mean)
DEFAULT_ARMS = ("retraining", "random", "user", "bekm", "apa", "apa-user")
PARTITION_ARMS = ("random", "user", "bekm", "apa", "apa-user")
# the reference, SISA and APA: every table needs them
REQUIRED_ARMS = ("retraining", "random", "apa")


def prepare_arm(workdir: Path, base: Store, arm: str, profile: Profile, backbone, bars, cancel):
    """The arm's store, partitioned and with every adapter trained (reused when current)."""
    root = workdir / arm
    store = Store.open(root) if root.is_dir() else copy_store(base.root, root)
    method, k = ARMS[arm]
    if not records.shard_rows(store.snapshot()):
        run_partition(store, backbone, method, arm_shards(arm, profile), seed=profile.seed,
                      hidden_state=ARM_HIDDEN_STATES.get(arm, DEFAULT_HIDDEN_STATE),
                      progress=bars, cancel=cancel)
    train_all(store, backbone, overrides={"epochs": profile.epochs, "seed": profile.seed},
              progress=bars, cancel=cancel)
    return store


def arm_shards(arm: str, profile: Profile) -> int:
    """The arm's number of shards K."""
    k = ARMS[arm][1]
    if k == "half":
        return max(1, profile.shards // 2)
    if k == "double":
        return profile.shards * 2
    return k or profile.shards


def full_retrain_s(store: Store) -> float:
    """Training plus validation-refresh time of every live adapter, as recorded when built."""
    return float(sum(row["wall_time_s"] + row.get("valid_wall_s", 0.0)
                     for row in records.live_adapters(store.snapshot())))


def score_arm(results: Results, arm: str, store: Store, backbone, test, bars, cancel,
              table_only: bool = False) -> dict:
    """Every adapter of the arm on the test split; for shard arms, APA(D) and APA(ND) too
    (with `table_only`, only for APA's own partitions: Table I needs no other)."""
    key = f"{arm}:{adapters_key(store)}"
    live = load_live_set(store)

    def per_adapter():
        scores, wall = score_each_adapter(backbone, test, live, progress=bars, cancel=cancel)
        return {"adapters": live.ids, "p_yes": scores.tolist(), "wall_s": wall}

    out = {"per_adapter": stage(results, f"{key}:per-adapter", per_adapter)}
    if arm == "retraining" or (table_only and ARMS[arm][0] not in ("apa", "apa-user")):
        return out
    # τ and n as served: the proxy's shortlist scored with the level-D merge (`tune`)
    tuned = stage(results, f"{key}:tune-served-by-user", lambda: tune(
        store, backbone, progress=bars, cancel=cancel)["best"])
    levels = ("D", "ND")  # ND on every partition: the partition ablation shows both
    for level in levels:
        out[f"APA({level})"] = stage(
            results, f"{key}:apa-{level}-adaptive-{tuned['tau']:g}-{tuned['neighbours']}",
            lambda level=level: apa_scores(store, backbone, test, level=level,
                                           strategy="adaptive", live=live, bars=bars,
                                           cancel=cancel))
    out["tuned"] = tuned
    return out


def apa_scores(store, backbone, samples, *, level, strategy, live, bars, cancel,
               tau=None, neighbours=None) -> dict:
    report = score_apa(store, backbone, samples, strategy=strategy, level=level, live=live,
                       tau=tau, neighbours=neighbours, progress=bars, cancel=cancel)
    return {"p_yes": report.p_yes.tolist(), "wall_s": report.wall_s, "tau": report.tau,
            "neighbours": report.neighbours, "weights_mean": report.weights.mean(0).tolist()}


def weight_ablation(results, store, backbone, test, bars, cancel) -> dict:
    tau, neighbours = aggregation_defaults(store)  # `major` uses n, `semantic` τ
    key = f"apa:{adapters_key(store)}:{tau:g}-{neighbours}"
    live = load_live_set(store)
    return {strategy: stage(results, f"{key}:apa-D-{strategy}", lambda strategy=strategy: (
        apa_scores(store, backbone, test, level="D", strategy=strategy, live=live, bars=bars,
                   cancel=cancel)))
        for strategy in ("average", "major", "semantic")}


def sweeps(results, store, backbone, samples, profile, tuned, bars, cancel) -> dict:
    """APA(D) AUC over τ at the tuned n, and over n at the tuned τ."""
    key = f"apa:{adapters_key(store)}"
    live = load_live_set(store)
    points = [(tau, tuned["neighbours"]) for tau in profile.taus]
    points += [(tuned["tau"], n) for n in profile.neighbours]
    out = []
    for tau, n in points:
        value = stage(results, f"{key}:sweep-{len(samples)}-{tau:g}-{n}", lambda t=tau, n=n: (
            apa_scores(store, backbone, samples, level="D", strategy="adaptive", live=live,
                       tau=t, neighbours=n, bars=bars, cancel=cancel)))
        out.append({"tau": tau, "neighbours": n, "p_yes": value["p_yes"]})
    return {"tuned": tuned, "points": out}


def forget_median_user(results, workdir, arm, store, user, backbone, bars, cancel) -> dict:
    """Forget `user` end to end on a copy of the arm (purge, retrain affected shards with
    their validation refresh, swap, receipt); the arm itself stays as trained."""
    def compute():
        copy = copy_store(store.root, workdir / f"forget-{arm}")
        try:
            # The core's forget workflow with the backbone already loaded. Timed as before
            # (record the request, a small JSON commit, then apply it), plus the workflow's
            # plan, which only reads the store.
            started = time.perf_counter()
            outcome = forget(copy, Targets(users=[user]), lambda: contextlib.nullcontext(backbone),
                             progress=bars, cancel=cancel)
            forgot = time.perf_counter() - started
            touched = outcome.plan["adapters_to_retrain"]
        finally:
            shutil.rmtree(workdir / f"forget-{arm}", ignore_errors=True)
        return {"user": user, "forget_s": forgot, "full_s": full_retrain_s(store),
                "touched": len(touched), "shards": len(records.live_adapters(store.snapshot()))}

    return stage(results, f"{arm}:{adapters_key(store)}:forget-{user}", compute)


def run(args) -> int:
    if args.report_only:
        return report_only(args)
    started = time.perf_counter()
    sizes = {name: getattr(args, name) for name in ("train", "valid", "test",
                                                   "inference_samples", "sweep_samples")
             if getattr(args, name) is not None}
    profile = replace(PROFILES[args.profile], **sizes)
    arms = [arm for arm in ARMS if arm in args.arms]
    try:
        parsed, source = load_source(args.data)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    backbone = Backbone.load(args.model, device=args.device)
    config = {"profile": asdict(profile), "data": source, "model": backbone.info["fingerprint"],
              "device": str(backbone.device)}
    if arms != list(DEFAULT_ARMS):  # another arm set is another run; the default keeps digests
        config["arms"] = arms
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:8]
    workdir = Path(args.workdir or HERE / ".work" / f"{profile.name}-{digest}")
    workdir.mkdir(parents=True, exist_ok=True)
    # stages are keyed by arm and adapters, so another arm set may reuse them
    results = Results(workdir / "results.json",
                      {key: value for key, value in config.items() if key != "arms"})
    print(f"profile {profile.name}: {source}; {machine_description(backbone)}; "
          f"work in {workdir}", flush=True)
    with live_progress(quiet=args.quiet) as (bars, cancel):
        base_root = workdir / "base"
        if not base_root.is_dir():
            shutil.rmtree(workdir / "base.partial", ignore_errors=True)
            build_base_store(workdir / "base.partial", backbone, parsed,
                             {"train": profile.train, "valid": profile.valid,
                              "test": profile.test}, seed=profile.seed, progress=bars)
            os.replace(workdir / "base.partial", base_root)
        base = Store.open(base_root)
        test = split_samples(base, "test")
        user = median_user(base)
        stores, scores, forgets = {}, {}, {}
        for arm in arms:
            stores[arm] = prepare_arm(workdir, base, arm, profile, backbone, bars, cancel)
            adapters = len(records.live_adapters(stores[arm].snapshot()))
            print(f"  ready   {arm}: {adapters} adapters, full "
                  f"retrain {full_retrain_s(stores[arm]):.0f}s", flush=True)
            scores[arm] = score_arm(results, arm, stores[arm], backbone, test, bars, cancel,
                                    args.table_only)
        base_scores = stage(results, "base-model", lambda: {"p_yes": backbone.score(
            backbone.prompts_for(test), share_prefix=True, progress=bars, cancel=cancel,
            task="base model").tolist()})
        if args.table_only:
            ablation = sweep = timing = None
        else:
            ablation = weight_ablation(results, stores["apa"], backbone, test, bars, cancel)
            sweep = sweeps(results, stores["apa"], backbone, test[:profile.sweep_samples],
                           profile, scores["apa"]["tuned"], bars, cancel)
            timing = stage(results, f"inference-{profile.inference_samples}:" + ":".join(
                adapters_key(stores[a]) for a in ("retraining", "random", "apa")),
                lambda: inference_timing(stores, backbone, test[:profile.inference_samples],
                                         bars, cancel))
            for arm in (arm for arm in PARTITION_ARMS if arm in arms):
                forgets[arm] = forget_median_user(results, workdir, arm, stores[arm], user,
                                                  backbone, bars, cancel)
    summary = {
        "profile": asdict(profile), "source": source, "machine": machine_description(backbone),
        "command": "python -m benchmarks.paper_experiment " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"), "labels": [s.label for s in test],
        "base_model": base_scores, "scores": scores, "weight_ablation": ablation,
        "sweep": sweep, "timing": timing, "forget": forgets, "table_only": args.table_only,
        "retraining_full_s": full_retrain_s(stores["retraining"]), "median_user": user,
        "settings": recorded_settings(stores["retraining"]),
        "shard_sizes": {arm: [len(row["sample_ids"])
                              for row in records.shard_rows(stores[arm].snapshot())]
                        for arm in arms if arm != "retraining"},
        "run_wall_s": time.perf_counter() - started,
    }
    (workdir / "summary.json").write_text(json.dumps(summary, indent=1))
    out = report_dir(args, profile.name)
    write_report(summary, out)
    print(f"wrote {out / 'RESULTS.md'} and plots in "
          f"{time.perf_counter() - started:.0f}s", flush=True)
    return 0


def report_dir(args, profile: str) -> Path:
    """--out, or benchmarks/ for the paper profile and benchmarks/<profile>/ for others."""
    if args.out:
        return Path(args.out)
    return HERE if profile == "paper" else HERE / profile


def recorded_settings(store: Store) -> dict:
    """The training settings the arm's adapters record (the report prints them)."""
    return records.live_adapters(store.snapshot())[0]["settings"]


def report_only(args) -> int:
    if not args.workdir:
        print("error: --report-only needs --workdir (the run's work directory)", file=sys.stderr)
        return 2
    summary_path = Path(args.workdir) / "summary.json"
    if not summary_path.is_file():
        print(f"error: no summary.json in {args.workdir}: run the benchmark first",
              file=sys.stderr)
        return 2
    summary = json.loads(summary_path.read_text())
    retraining = Path(args.workdir) / "retraining"
    if "settings" not in summary and retraining.is_dir():  # a summary written before it had them
        summary["settings"] = recorded_settings(Store.open(retraining))
    write_report(summary, report_dir(args, summary["profile"]["name"]))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.paper_experiment",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--data", default=str(ML100K),
                        help="MovieLens-100K raw directory, or 'demo' for the generated set")
    parser.add_argument("--model", default=None, help="local HF model dir (default SmolLM2)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--out", default=None,
                        help="where RESULTS.md, results.json and plots go (default: "
                             "benchmarks/ for the paper profile, benchmarks/<profile>/ else)")
    for name in ("train", "valid", "test", "inference-samples", "sweep-samples"):
        parser.add_argument(f"--{name}", type=int, default=None,
                            help="override the profile's size")
    parser.add_argument("--arms", default=",".join(DEFAULT_ARMS),
                        help=f"comma-separated arms out of {','.join(ARMS)} (must include "
                             f"{','.join(REQUIRED_ARMS)}; default: {','.join(DEFAULT_ARMS)})")
    parser.add_argument("--table-only", action="store_true",
                        help="Table I only: skip the ablations, sweeps, timing and forgets")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    args.arms = [arm.strip() for arm in args.arms.split(",") if arm.strip()]
    unknown = sorted(set(args.arms) - set(ARMS))
    if unknown:
        parser.error(f"unknown arm(s) {', '.join(unknown)}; choose from {', '.join(ARMS)}")
    missing = [arm for arm in REQUIRED_ARMS if arm not in args.arms]
    if missing:
        parser.error(f"--arms must include {', '.join(missing)}")
    for name in ("train", "valid", "test", "inference_samples", "sweep_samples"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
