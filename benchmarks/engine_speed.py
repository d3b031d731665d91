"""Engine throughput against this machine's own matmul peak, measured in one run.

    python -m benchmarks.engine_speed [--score-batches 8,16] [--train-batches 8] [--repeats 2]
                                      [--probe-seconds 0.5] [--model PATH] [--json out.json]

Prints:
- peak: the best fp32 GFLOP/s of large square (2048²) torch matmuls on all available cores.
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
from apa_console.engine.devices import available_cores
from apa_console.engine.model_files import MODEL_CACHE_ENV, USER_MODEL_CACHE
from apa_console.engine.training import TrainSettings, train_adapter
import argparse
import json
import math
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


class PeakProbe:
    """Best fp32 GFLOP/s of large square matmuls on all cores (the engine's thread count),
    with its buffers allocated once so a probe run between a workload's steps allocates
    nothing the workload might then reuse."""

    def __init__(self, size: int = 2048):
        self.size = size
        self.left, self.right = torch.randn(size, size), torch.randn(size, size)
        self.out = torch.empty(size, size)
        torch.mm(self.left, self.right, out=self.out)  # warm-up: thread pool, packing buffers

    def __call__(self, seconds: float) -> float:
        best = 0.0
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            torch.mm(self.left, self.right, out=self.out)
            best = max(best, 2 * self.size**3 / (time.perf_counter() - started) / 1e9)
        return best


class StepLog:
    """One run of a workload, step by step: each step's GFLOP (from its rows' own lengths)
    and seconds, and the peak probed right before and right after it.

    This machine's matmul peak drifts by ±20 % within minutes (a shared VM: clock boost,
    neighbours' memory traffic), so each step is compared with the peak around it: the run's
    fraction is its GFLOP over the sum of step seconds × adjacent peak. Probes run between
    steps and their time is not counted as the workload's.
    """

    def __init__(self, probe: PeakProbe, probe_seconds: float):
        self.probe, self.probe_seconds = probe, probe_seconds
        self.peaks: list[float] = []
        self.steps: list[tuple[float, float, int]] = []  # (GFLOP, seconds, samples)
        self.model_gflop: list[float] = []  # per step: the model's nominal GFLOP (docstring)
        self._resumed = 0.0

    def resume(self) -> None:
        """Probe the peak, then start the clock for the next step."""
        self.peaks.append(self.probe(self.probe_seconds))
        self._resumed = time.perf_counter()

    def step_done(self, gflop: float, samples: int, model_gflop: float | None = None) -> None:
        """Stop the clock for the step that ran since `resume`, then `resume`.
        `model_gflop`: the step's nominal GFLOP where it differs from the work that ran."""
        self.steps.append((gflop, time.perf_counter() - self._resumed, samples))
        self.model_gflop.append(gflop if model_gflop is None else model_gflop)
        self.resume()

    def adjacent_peaks(self) -> list[float]:
        return [(before + after) / 2 for before, after in zip(self.peaks, self.peaks[1:])]

    def _peak_gflop(self) -> float:
        """What the steps' seconds could have done at the peak around each of them."""
        return sum(seconds * peak for (_, seconds, _), peak in
                   zip(self.steps, self.adjacent_peaks()))

    def fraction(self) -> float:
        return sum(gflop for gflop, _, _ in self.steps) / self._peak_gflop()

    def model_fraction(self) -> float:
        return sum(self.model_gflop) / self._peak_gflop()

    def step_fractions(self) -> list[float]:
        return [gflop / seconds / peak for (gflop, seconds, _), peak in
                zip(self.steps, self.adjacent_peaks())]

    def samples_per_s(self) -> float:
        return sum(n for _, _, n in self.steps) / sum(seconds for _, seconds, _ in self.steps)

    def gflops(self) -> float:
        return sum(g for g, _, _ in self.steps) / sum(seconds for _, seconds, _ in self.steps)


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


class Workload:
    """Runs of one workload setting and their summary."""

    def __init__(self, label: str):
        self.label = label
        self.logs: list[StepLog] = []

    def summary(self, best_peak: float) -> dict:
        fractions = [log.fraction() for log in self.logs]
        step_fractions = [f for log in self.logs for f in log.step_fractions()]
        return {
            "samples_per_s": [log.samples_per_s() for log in self.logs],
            "gflops": [log.gflops() for log in self.logs],
            "fraction_of_adjacent_peak": fractions,
            "median_fraction": float(np.median(fractions)),
            "median_step_fraction": float(np.median(step_fractions)),
            "model_flops_fraction": [log.model_fraction() for log in self.logs],
            "steps": len(step_fractions),
            "fraction_of_best_peak": [log.gflops() / best_peak for log in self.logs],
            "probe_range_gflops": [min(p for log in self.logs for p in log.peaks),
                                   max(p for log in self.logs for p in log.peaks)],
            "runs": [{"steps_gflop_seconds_samples": log.steps, "probes_gflops": log.peaks,
                      "steps_model_gflop": log.model_gflop} for log in self.logs],
        }

    def report(self, best_peak: float) -> None:
        s = self.summary(best_peak)

        def listed(values: list[float]) -> str:
            return ", ".join(f"{value:.2f}" for value in values)

        model_flops = ""
        if any(not math.isclose(m, f) for m, f in zip(s["model_flops_fraction"],
                                                       s["fraction_of_adjacent_peak"])):
            model_flops = f"; model FLOPs: {listed(s['model_flops_fraction'])}"
        print(f"  {self.label}: {listed(s['samples_per_s'])} samples/s; of the adjacent peak:"
              f" runs {listed(s['fraction_of_adjacent_peak'])}"
              f" (median {s['median_fraction']:.2f}; median of {s['steps']} steps"
              f" {s['median_step_fraction']:.2f}){model_flops}; of the best peak seen:"
              f" {listed(s['fraction_of_best_peak'])}; probes"
              f" {s['probe_range_gflops'][0]:.0f}–{s['probe_range_gflops'][1]:.0f} GFLOP/s",
              flush=True)


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
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
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


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault(MODEL_CACHE_ENV, str(USER_MODEL_CACHE.expanduser()))
    load_before = os.getloadavg()[0]
    cores = available_cores()
    torch.set_num_threads(cores)
    print(f"machine: {cores} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {load_before:.2f}, "
          f"THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', '')}", flush=True)
    probe = PeakProbe()
    first_seconds = 12 * args.probe_seconds  # a longer first look: 6 s by default
    first_peak = probe(first_seconds)
    print(f"peak fp32 matmul (2048², best over {first_seconds:g} s): {first_peak:.1f} GFLOP/s",
          flush=True)

    started = time.perf_counter()
    backbone = Backbone.load(args.model, device="cpu")
    print(f"model: {backbone.info['name']} loaded in {time.perf_counter() - started:.2f} s "
          f"({backbone.device}, {str(backbone.dtype).removeprefix('torch.')})", flush=True)

    score_prompts, _ = realistic_prompts(args.score_samples, seed=1)
    train_prompts, train_labels = realistic_prompts(args.train_samples, seed=2)
    for name, prompts in (("scoring", score_prompts), ("training", train_prompts)):
        lengths = [len(ids) for ids in backbone.encode(prompts)]
        gflop = float(np.mean([forward_gflop(backbone, n) for n in lengths]))
        print(f"{name} prompts: {np.mean(lengths):.0f} tokens on average "
              f"({min(lengths)}–{max(lengths)}); forward {gflop:.1f} GFLOP per sample",
              flush=True)
    print("training counted as 2× linear + 3× attention forward + LoRA (see the docstring); "
          "padding is not counted as work", flush=True)

    workloads: dict[str, dict[int, Workload]] = {"scoring": {}, "training": {},
                                                 "training_full_rows": {}}
    for batch_size in args.score_batches:
        backbone.score(score_prompts[:batch_size], batch_size=batch_size)  # warm-up
        workload = workloads["scoring"][batch_size] = Workload(f"scoring  batch {batch_size:>2}")
        for _ in range(args.repeats):
            workload.logs.append(StepLog(probe, args.probe_seconds))
            scoring_run(backbone, score_prompts, batch_size, workload.logs[-1])
    for kind, share_prefix in (("training", True), ("training_full_rows", False)):
        for batch_size in args.train_batches:
            label = f"training batch {batch_size:>2}" + ("" if share_prefix else ", full rows")
            workload = workloads[kind][batch_size] = Workload(label)
            settings = TrainSettings(epochs=1, batch_size=batch_size, seed=0,
                                     share_prefix=share_prefix)
            for _ in range(args.repeats):
                workload.logs.append(StepLog(probe, args.probe_seconds))
                training_run(backbone, train_prompts, train_labels, settings,
                             workload.logs[-1])

    best_peak = max([first_peak] + [peak for kind in workloads.values()
                                    for workload in kind.values()
                                    for log in workload.logs for peak in log.peaks])
    print(f"\nbest peak seen: {best_peak:.1f} GFLOP/s")
    for kind in workloads.values():
        for workload in kind.values():
            workload.report(best_peak)
    load_after = os.getloadavg()[0]
    print(f"load average before/after: {load_before:.2f}/{load_after:.2f} (the benchmark's own "
          f"{cores} threads count too: only well above {cores} means other processes ran)")

    if args.json:
        results = {
            "cores": cores,
            "first_peak_gflops": first_peak,
            "best_peak_gflops": best_peak,
            **{name: {size: workload.summary(best_peak) for size, workload in kind.items()}
               for name, kind in workloads.items()},
            "load_average": [load_before, load_after],
        }
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
