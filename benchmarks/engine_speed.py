"""Engine throughput against this machine's own matmul peak, measured in one run.

    python -m benchmarks.engine_speed [--dtypes float32,bfloat16] [--score-batches 8,16]
        [--train-batches 8] [--repeats 2] [--probe-seconds 0.5] [--model PATH] [--json out.json]

Every workload runs `--repeats` times per compute dtype of the base model (float32, and
bfloat16 where the CPU has native bf16), each against its own dtype's matmul peak. The
dtypes take turns run by run, and each bfloat16 / float32 ratio divides two runs that ran
back to back (the headline is the median pair): the machine's speed drifts within the
benchmark, and a drift between one dtype's half and the other's would show as a ratio.
Prints, per dtype:
- peak: the best GFLOP/s of large square (2048²) torch matmuls in that dtype on all cores.
  The peak of this shared VM drifts by ±20 % within minutes (and by more while neighbours
  are busy), so it is probed again between every two steps of every workload, and each
  step is compared with the probes right before and after it;
- scoring: samples/s of `Backbone.score` with the default model at TALLRec prompt lengths
  (Alpaca wrapper + 10 quoted movie titles + target), per batch size; a step is one batch;
- training: samples/s of `train_adapter` steps (steady state: the first step, with setup
  and heap growth, is left out); a step is one optimizer step. Twice: with the default
  settings (each batch's shared prompt prefix runs once) and with `share_prefix` off
  ("full rows", every row runs all its tokens, as before that setting existed);
- for each run: achieved GFLOP/s as a fraction of the adjacent peak (the run's GFLOP over
  the sum of step seconds × adjacent peak), the median of the steps' own fractions, and,
  as a conservative bound, the run's GFLOP/s over the best peak seen in the whole benchmark.
  Probe time is not counted as workload time.

FLOP accounting (stated so the fractions can be checked), per step from its rows' own
prompt lengths (padding is not counted as work):
  forward per sample = linear + attention, linear = 2 * P * T, attention = 2 * L * d * T**2
    P: parameters of the decoder's Linear layers (the embedding is a lookup, and the LM head
       runs at one position only, so neither is counted), T: prompt tokens, L: layers,
       d: attention width; 2·L·d·T² is causal attention (QKᵀ and AV, half of the square).
  shared prefix of S tokens in a batch: the prefix counts once as a row of S tokens, and
       each row's own T - S tokens as linear 2 * P * (T - S) and attention
       2 * L * d * ((T - S)**2 + 2 * S * (T - S)) (they also attend to the S cached positions).
  training = 2 * linear + 3 * attention + 6 * R * (tokens run): the base weights are
       frozen, so a Linear layer's backward computes its input gradient (one forward's
       work) but no weight gradient. Attention's operands are all activations, so its
       backward needs the gradients of both operands of QKᵀ and of AV: twice its forward.
       R: trainable (LoRA) parameters, run forward and given input and weight gradients.
       The common "3 × forward" rule assumes weight gradients for every layer; it does not
       hold for LoRA on frozen weights.
  Two fractions per run, as large-model training reports do:
  - hardware FLOPs ("of the adjacent peak"): the work that actually ran; the work a shared
    prefix saves is not counted, so this measures how fast the executed work runs;
  - model FLOPs ("model FLOPs"): what the model nominally costs per sample (every row with
    all its own tokens, as `share_prefix` off runs it), so a path that skips work gets
    credit for the samples it delivers. For scoring and full rows the two are equal.
  The model cache is the shared one (`$APA_MODEL_CACHE`, else ~/.cache/apa-console/models).
"""

from __future__ import annotations  # noqa: I001 (apa_console.engine must come before torch)

# Engine first: importing it requests huge pages, which torch reads once, as it loads.
from apa_console.engine.backbone import Backbone
from apa_console.engine.batching import shared_prefix_length
from apa_console.engine.devices import (
    DTYPES,
    available_cores,
    bf16_matmul_slowdown,
    cpu_has_native_bf16,
)
from apa_console.engine.model_files import MODEL_CACHE_ENV, USER_MODEL_CACHE
from apa_console.engine.training import TrainSettings, train_adapter
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from apa_console.errors import ApaError
from apa_console.prompting import MOVIE_INSTRUCTION, build_input, build_prompt
from apa_console.samples import HistoryEntry
from benchmarks.flops import forward_gflop, training_step_gflop
from benchmarks.step_timing import PeakProbe, StepLog, Workload

MOVIE_TITLES = (
    "Toy Story (1995)", "GoldenEye (1995)", "Four Rooms (1995)", "Get Shorty (1995)",
    "Copycat (1995)", "Twelve Monkeys (1995)", "Babe (1995)", "Dead Man Walking (1995)",
    "Richard III (1995)", "Seven (Se7en) (1995)", "Usual Suspects, The (1995)",
    "Mighty Aphrodite (1995)", "Postino, Il (1994)", "Mr. Holland's Opus (1995)",
    "French Twist (Gazon maudit) (1995)", "From Dusk Till Dawn (1996)", "Braveheart (1995)",
    "Taxi Driver (1976)", "Rumble in the Bronx (1995)", "Birdcage, The (1996)",
    "Brothers McMullen, The (1995)", "Bad Boys (1995)", "Apollo 13 (1995)",
    "Batman Forever (1995)", "Belle de jour (1967)", "Crimson Tide (1995)",
    "Crumb (1994)", "Desperado (1995)", "Doom Generation, The (1995)",
    "Free Willy 2: The Adventure Home (1995)", "Mad Love (1995)", "Nadja (1994)",
    "Net, The (1995)", "Strange Days (1995)", "To Wong Foo, Thanks for Everything! (1995)",
    "Billy Madison (1995)", "Clerks (1994)", "Disclosure (1994)", "Dolores Claiborne (1994)",
    "Eat Drink Man Woman (1994)", "Exotica (1994)", "Ed Wood (1994)", "Hoop Dreams (1994)",
    "I.Q. (1994)", "Star Wars (1977)", "Legends of the Fall (1994)", "Madness of King George, "
    "The (1994)", "Natural Born Killers (1994)", "Outbreak (1995)", "Professional, The (1994)",
    "Pulp Fiction (1994)", "Priest (1994)", "Quiz Show (1994)", "Three Colors: Red (1994)",
    "Shawshank Redemption, The (1994)", "While You Were Sleeping (1995)", "Stargate (1994)",
)


def realistic_prompts(count: int, seed: int = 0) -> tuple[list[str], list[int]]:
    """TALLRec movie prompts: 10 quoted history titles (liked and disliked) and a target."""
    rng = np.random.default_rng(seed)
    prompts, labels = [], []
    for _ in range(count):
        picked = rng.choice(len(MOVIE_TITLES), size=11, replace=False)
        liked = rng.random(10) < 0.6
        history = [
            HistoryEntry(str(index), MOVIE_TITLES[index], bool(flag))
            for index, flag in zip(picked[:10], liked)
        ]
        target = MOVIE_TITLES[picked[10]]
        prompts.append(build_prompt(MOVIE_INSTRUCTION, build_input(history, target)))
        labels.append(int(rng.random() < 0.5))
    return prompts, labels


def scoring_run(backbone: Backbone, prompts: list[str], batch_size: int, log: StepLog) -> None:
    """Every batch is a step: timed from right before its forward pass to its progress
    event."""
    lengths = [len(ids) for ids in backbone.encode(prompts)]
    batches: list[tuple[float, int]] = []  # (GFLOP, rows)

    def before_batch(rows: list[int]) -> None:
        batches.append((sum(forward_gflop(backbone, lengths[row]) for row in rows), len(rows)))
        if not log.peaks:
            log.resume()

    backbone.score(prompts, batch_size=batch_size, before_batch=before_batch,
                   progress=lambda event: log.step_done(*batches[-1]))


def training_run(backbone: Backbone, prompts: list[str], labels: list[int],
                 settings: TrainSettings, log: StepLog) -> None:
    """Steady-state steps: each timed from the end of the previous step's progress event to
    its own; the first step (heap growth, setup) is left out. A step's GFLOP are those of
    the work it ran (with `share_prefix`, its rows' common prefix once; module docstring),
    which a wrapper around `batch_last_states` records; its model GFLOP are those of the
    same rows without a shared prefix."""
    batch_gflop: list[tuple[float, float, int]] = []  # (GFLOP run, model GFLOP, rows)
    batch_last_states = backbone.batch_last_states

    def recording(model, token_ids, share_prefix=False):
        prefix = shared_prefix_length(token_ids) if share_prefix else 0
        lengths = [len(ids) for ids in token_ids]
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        batch_gflop.append((training_step_gflop(backbone, lengths, prefix, trainable),
                            training_step_gflop(backbone, lengths, 0, trainable),
                            len(lengths)))
        return batch_last_states(model, token_ids, share_prefix)

    def step_done(event) -> None:
        gflop, model_gflop, rows = batch_gflop[-1]
        if event.step == 1:
            log.resume()
        else:
            log.step_done(gflop, rows, model_gflop)

    backbone.batch_last_states = recording
    try:
        with tempfile.TemporaryDirectory() as scratch:
            train_adapter(
                backbone, prompts, labels, [str(i) for i in range(len(prompts))], settings,
                Path(scratch) / "adapter", progress=step_done,
            )
    finally:
        del backbone.batch_last_states  # the instance attribute; the method shows through again


def _batch_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of sizes: {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"batch sizes must be at least 1: {text!r}")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.engine_speed",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--score-samples", type=int, default=32)
    parser.add_argument("--score-batches", type=_batch_sizes, default=[8, 16])
    parser.add_argument("--train-samples", type=int, default=64)
    parser.add_argument("--train-batches", type=_batch_sizes, default=[8])
    parser.add_argument("--repeats", type=int, default=2, help="runs per setting")
    parser.add_argument("--probe-seconds", type=float, default=0.5,
                        help="length of each peak probe between steps")
    parser.add_argument("--model", help="a local Hugging Face model directory "
                        "(default: SmolLM2-135M-Instruct from the model cache)")
    parser.add_argument("--dtypes", type=_dtypes, default=None,
                        help="compute dtypes to measure side by side (default: float32, and "
                             "bfloat16 where the CPU has native bf16)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.dtypes is None:  # checked only now: the check times two small matmuls
        args.dtypes = ["float32", "bfloat16"] if cpu_has_native_bf16() else ["float32"]
    if args.score_samples < 1 or args.repeats < 1 or args.probe_seconds <= 0:
        parser.error("--score-samples and --repeats must be at least 1, --probe-seconds > 0")
    if args.train_samples <= max(args.train_batches):
        parser.error("--train-samples must exceed the largest training batch: the first "
                     "step is warm-up, so at least two steps are needed")
    try:
        return run(args)
    except ApaError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _dtypes(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in DTYPES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"dtypes are a comma-separated list of "
                                         f"{', '.join(DTYPES)}: {text!r}")
    return names


WORKLOAD_KINDS = ("scoring", "training", "training_full_rows")


def measure(args: argparse.Namespace, backbone: Backbone) -> dict[str, dict]:
    """Every workload in every compute dtype, each against its own dtype's matmul peak.

    The dtypes take turns run by run (float32 then bfloat16, then the other way round), so
    the runs compared in a ratio are minutes apart at most and a slow spell of the shared
    machine lands on both, not on one dtype's half of the benchmark."""
    works = {name: backbone.in_dtype(DTYPES[name]) for name in args.dtypes}
    probes = {name: PeakProbe(dtype=work.dtype, seconds=args.probe_seconds)
              for name, work in works.items()}
    first_seconds = 12 * args.probe_seconds  # a longer first look: 6 s by default
    first_peaks = {}
    for name in args.dtypes:
        first_peaks[name] = probes[name](first_seconds)
        side = probes[name].size
        print(f"{name}: peak matmul ({side}², best over {first_seconds:g} s): "
              f"{first_peaks[name]:.1f} GFLOP/s", flush=True)
    score_prompts, _ = realistic_prompts(args.score_samples, seed=1)
    train_prompts, train_labels = realistic_prompts(args.train_samples, seed=2)
    workloads = {name: {kind: {} for kind in WORKLOAD_KINDS} for name in args.dtypes}

    def take_turns(kind: str, batch_size: int, label: str, run_once) -> None:
        for name in args.dtypes:
            workloads[name][kind][batch_size] = Workload(label)
        for repeat in range(args.repeats):
            for name in args.dtypes if repeat % 2 == 0 else args.dtypes[::-1]:
                log = StepLog(probes[name], args.probe_seconds)
                workloads[name][kind][batch_size].logs.append(log)
                run_once(name, log)

    for batch_size in args.score_batches:
        for work in works.values():
            work.score(score_prompts[:batch_size], batch_size=batch_size)  # warm-up
        take_turns("scoring", batch_size, f"scoring  batch {batch_size:>2}",
                   lambda name, log, size=batch_size:
                   scoring_run(works[name], score_prompts, size, log))
    for kind, share_prefix in (("training", True), ("training_full_rows", False)):
        for batch_size in args.train_batches:
            label = f"training batch {batch_size:>2}" + ("" if share_prefix else ", full rows")

            def train_once(name: str, log: StepLog, size=batch_size, share=share_prefix):
                settings = TrainSettings(epochs=1, batch_size=size, seed=0,
                                         share_prefix=share, dtype=name)
                training_run(works[name], train_prompts, train_labels, settings, log)

            take_turns(kind, batch_size, label, train_once)
    return {name: _summarise(args, name, first_peaks[name], probes[name].size, workloads[name])
            for name in args.dtypes}


def _summarise(args: argparse.Namespace, name: str, first_peak: float, probe_size: int,
               workloads: dict[str, dict[int, Workload]]) -> dict:
    best_peak = max([first_peak] + [peak for kind in workloads.values()
                                    for workload in kind.values()
                                    for log in workload.logs for peak in log.peaks])
    print(f"\n== {name}: best peak seen {best_peak:.1f} GFLOP/s")
    for kind in workloads.values():
        for workload in kind.values():
            workload.report(best_peak)
    summaries = {kind: {size: workload.summary(best_peak) for size, workload in by_size.items()}
                 for kind, by_size in workloads.items()}
    score = summaries["scoring"][args.score_batches[0]]
    train = summaries["training"][args.train_batches[0]]
    return {
        "probe_size": probe_size,
        "first_peak_gflops": first_peak,
        "peak_gflops": best_peak,
        "score_samples_per_s": float(np.median(score["samples_per_s"])),
        "train_samples_per_s": float(np.median(train["samples_per_s"])),
        "score_fraction_of_peak": score["median_fraction"],
        "train_fraction_of_peak": train["median_fraction"],
        "train_model_flops_fraction": float(np.median(train["model_flops_fraction"])),
        **summaries,
    }


def paired_ratios(numerator: dict, denominator: dict) -> dict[str, dict[int, list[float]]]:
    """Per workload and batch size, run i of one dtype over run i of the other: the two runs
    of a pair ran back to back."""
    return {kind: {size: [top / bottom for top, bottom in
                          zip(numerator[kind][size]["samples_per_s"],
                              denominator[kind][size]["samples_per_s"])]
                   for size in numerator[kind]}
            for kind in WORKLOAD_KINDS}


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault(MODEL_CACHE_ENV, str(USER_MODEL_CACHE.expanduser()))
    load_before = os.getloadavg()[0]
    cores = available_cores()
    torch.set_num_threads(cores)
    print(f"machine: {cores} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, native bf16: {cpu_has_native_bf16()}, "
          f"load average {load_before:.2f}, "
          f"THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', '')}", flush=True)

    started = time.perf_counter()
    backbone = Backbone.load(args.model, device="cpu", dtype=args.dtypes[0])
    print(f"model: {backbone.info['name']} loaded in {time.perf_counter() - started:.2f} s "
          f"({backbone.device})", flush=True)
    for name, prompts in (("scoring", realistic_prompts(args.score_samples, seed=1)[0]),
                          ("training", realistic_prompts(args.train_samples, seed=2)[0])):
        lengths = [len(ids) for ids in backbone.encode(prompts)]
        gflop = float(np.mean([forward_gflop(backbone, n) for n in lengths]))
        print(f"{name} prompts: {np.mean(lengths):.0f} tokens on average "
              f"({min(lengths)}–{max(lengths)}); forward {gflop:.1f} GFLOP per sample",
              flush=True)
    print("training counted as 2× linear + 3× attention forward + LoRA (see the docstring); "
          "padding is not counted as work", flush=True)

    left_out = {}
    if "bfloat16" not in args.dtypes and not cpu_has_native_bf16():
        left_out["bfloat16"] = (f"not native on this CPU (a bf16 matmul ran "
                                f"{bf16_matmul_slowdown():.0f}× slower than float32)")
        print(f"bfloat16 left out: {left_out['bfloat16']}", flush=True)
    by_dtype = measure(args, backbone)
    speedups, pairs = {}, {}
    if "float32" in by_dtype and "bfloat16" in by_dtype:
        fp32, bf16 = by_dtype["float32"], by_dtype["bfloat16"]
        pairs = paired_ratios(bf16, fp32)
        headline = {"score_samples_per_s": ("scoring", args.score_batches[0]),
                    "train_samples_per_s": ("training", args.train_batches[0])}
        speedups = {key: float(np.median(pairs[kind][size]))
                    for key, (kind, size) in headline.items()}
        speedups["peak_gflops"] = bf16["peak_gflops"] / fp32["peak_gflops"]
        print("\nbfloat16 / float32, runs paired back to back (median; each pair):")
        for kind, by_size in pairs.items():
            for size, ratios in by_size.items():
                print(f"  {kind} batch {size}: {np.median(ratios):.2f}× ("
                      + ", ".join(f"{ratio:.2f}" for ratio in ratios) + ")")
        print(f"  peak matmul: {speedups['peak_gflops']:.2f}×")
    load_after = os.getloadavg()[0]
    print(f"load average before/after: {load_before:.2f}/{load_after:.2f} (the benchmark's own "
          f"{cores} threads count too: only well above {cores} means other processes ran)")

    if args.json:
        results = {"cores": cores, "native_bf16": cpu_has_native_bf16(),
                   "dtypes_left_out": left_out,
                   "dtypes": by_dtype, "bfloat16_over_float32": speedups,
                   "bfloat16_over_float32_pairs": pairs,
                   "load_average": [load_before, load_after]}
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
