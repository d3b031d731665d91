"""Engine throughput against this machine's own matmul peak, measured in one run.

    python benchmarks/engine.py [--score-samples 64] [--train-samples 32] [--json out.json]

Prints:
- peak: the best fp32 GFLOP/s of large square torch matmuls on all available cores;
- scoring: samples/s of `Backbone.score` with the default model at TALLRec prompt lengths
  (Alpaca wrapper + 10 quoted movie titles + target), per batch size, and its achieved
  GFLOP/s as a fraction of the peak;
- training: samples/s of `train_adapter` steps (steady state, setup excluded) and its
  achieved GFLOP/s as a fraction of the peak.

FLOP accounting (stated so the fractions can be checked):
  forward per sample = 2 * P * T + 2 * L * d * T**2
    P: parameters of the decoder's Linear layers (the embedding is a lookup, and the LM head
       runs at one position only, so neither is counted), T: prompt tokens, L: layers,
       d: attention width; 2·L·d·T² is causal attention (QKᵀ and AV, half of the square).
  training per sample = 2 * forward: the base weights are frozen, so backward computes
       input gradients (≈ one forward) but no weight gradients; LoRA's own are negligible.
       The common "3 × forward" rule assumes weight gradients too; it is printed as well, but
       the 2× figure is the honest one for LoRA.
  The model cache is the shared one (`$APA_MODEL_CACHE`, else ~/.cache/apa-console/models).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from apa_console.backbone import MODEL_CACHE_ENV, USER_MODEL_CACHE, Backbone, available_cores
from apa_console.prompting import MOVIE_INSTRUCTION, build_input, build_prompt
from apa_console.samples import HistoryEntry
from apa_console.training import TrainSettings, train_adapter

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


def matmul_peak(seconds: float = 6.0) -> float:
    """Best fp32 GFLOP/s over large square matmuls (all cores, the same thread count as the
    engine uses)."""
    best = 0.0
    deadline = time.perf_counter() + seconds
    sizes = (2048, 3072, 4096)
    while time.perf_counter() < deadline:
        for size in sizes:
            left, right = torch.randn(size, size), torch.randn(size, size)
            torch.mm(left, right)  # warm-up: thread pool and packing buffers
            started = time.perf_counter()
            repeats = 3
            for _ in range(repeats):
                torch.mm(left, right)
            elapsed = time.perf_counter() - started
            best = max(best, 2 * size**3 * repeats / elapsed / 1e9)
    return best


def flops_per_sample(backbone: Backbone, tokens: float) -> float:
    """Forward FLOPs for one prompt of `tokens` tokens (see the module docstring)."""
    decoder = backbone.model.get_decoder()
    linear_params = sum(
        module.weight.numel()
        for module in decoder.modules()
        if isinstance(module, torch.nn.Linear)
    )
    config = backbone.model.config
    attention_width = config.num_attention_heads * (
        getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    )
    return 2 * linear_params * tokens + 2 * config.num_hidden_layers * attention_width * tokens**2


def bench_scoring(backbone: Backbone, prompts: list[str], batch_sizes: list[int],
                  repeats: int) -> dict[int, float]:
    """Best-of-`repeats` samples/s per batch size (best-of, because other processes on a
    small shared machine only ever slow a run down)."""
    results = {}
    for batch_size in batch_sizes:
        backbone.score(prompts[:batch_size], batch_size=batch_size)  # warm-up
        rates = []
        for _ in range(repeats):
            started = time.perf_counter()
            backbone.score(prompts, batch_size=batch_size)
            rates.append(len(prompts) / (time.perf_counter() - started))
        results[batch_size] = max(rates)
        print(f"  scoring   batch {batch_size:>3}: {results[batch_size]:6.2f} samples/s "
              f"(runs: {', '.join(f'{rate:.2f}' for rate in rates)})", flush=True)
    return results


def bench_training(backbone: Backbone, prompts: list[str], labels: list[int],
                   batch_size: int, repeats: int) -> float:
    """Best-of-`repeats` steady-state samples/s: from the end of the first (warm-up) step to
    the end of the last, counting the samples of the steps in between."""
    step_sizes = [min(batch_size, len(prompts) - start)
                  for start in range(0, len(prompts), batch_size)]
    timed_samples = sum(step_sizes[1:])
    settings = TrainSettings(epochs=1, batch_size=batch_size, seed=0)
    rates = []
    for _ in range(repeats):
        stamps: list[float] = []
        with tempfile.TemporaryDirectory() as scratch:
            train_adapter(
                backbone, prompts, labels, [str(i) for i in range(len(prompts))], settings,
                Path(scratch) / "adapter",
                progress=lambda event, stamps=stamps: stamps.append(time.perf_counter()),
            )
        rates.append(timed_samples / (stamps[-1] - stamps[0]))
    print(f"  training  batch {batch_size:>3}: {max(rates):6.2f} samples/s "
          f"({len(step_sizes) - 1} steps timed after a warm-up step; "
          f"runs: {', '.join(f'{rate:.2f}' for rate in rates)})", flush=True)
    return max(rates)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--score-samples", type=int, default=32)
    parser.add_argument("--score-batches", default="4,8,16")
    parser.add_argument("--train-samples", type=int, default=32)
    parser.add_argument("--train-batches", default="8")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    os.environ.setdefault(MODEL_CACHE_ENV, str(USER_MODEL_CACHE.expanduser()))
    load_before = os.getloadavg()[0]
    cores = available_cores()
    torch.set_num_threads(cores)
    print(f"machine: {cores} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {load_before:.2f}", flush=True)

    peaks = [matmul_peak()]
    print(f"peak fp32 matmul: {peaks[0]:.1f} GFLOP/s", flush=True)

    started = time.perf_counter()
    backbone = Backbone.load(None, device="cpu")
    print(f"model: {backbone.info['name']} loaded in {time.perf_counter() - started:.2f} s "
          f"({backbone.device}, {str(backbone.dtype).removeprefix('torch.')})", flush=True)

    score_prompts, _ = realistic_prompts(args.score_samples, seed=1)
    train_prompts, train_labels = realistic_prompts(args.train_samples, seed=2)
    lengths = [len(ids) for ids in backbone.encode(score_prompts)]
    tokens = float(np.mean(lengths))
    forward = flops_per_sample(backbone, tokens)
    print(f"prompts: {tokens:.0f} tokens on average ({min(lengths)}–{max(lengths)}); "
          f"forward {forward / 1e9:.1f} GFLOP per sample", flush=True)

    batch_sizes = [int(size) for size in args.score_batches.split(",")]
    scoring = bench_scoring(backbone, score_prompts, batch_sizes, args.repeats)
    best_batch = max(scoring, key=scoring.get)
    peaks.append(matmul_peak(3.0))
    training_rates = {
        int(size): bench_training(backbone, train_prompts, train_labels, int(size),
                                  args.repeats)
        for size in args.train_batches.split(",")
    }
    peaks.append(matmul_peak(3.0))
    # The best peak seen during the run: the fractions below are conservative.
    peak = max(peaks)
    print(f"peak fp32 matmul at start/middle/end: "
          f"{', '.join(f'{value:.1f}' for value in peaks)} GFLOP/s; using {peak:.1f}")
    train_batch = max(training_rates, key=training_rates.get)
    training = training_rates[train_batch]

    score_gflops = scoring[best_batch] * forward / 1e9
    train_gflops = training * 2 * forward / 1e9
    train_gflops_3x = training * 3 * forward / 1e9
    load_after = os.getloadavg()[0]
    print()
    print(f"scoring : {scoring[best_batch]:.2f} samples/s (batch {best_batch}) = "
          f"{score_gflops:.1f} GFLOP/s = {score_gflops / peak:.2f} of peak")
    print(f"training: {training:.2f} samples/s (batch {train_batch}) = "
          f"{train_gflops:.1f} GFLOP/s = {train_gflops / peak:.2f} of peak "
          f"(2×forward; by the 3×forward rule: {train_gflops_3x / peak:.2f})")
    print(f"load average before/after: {load_before:.2f}/{load_after:.2f} "
          f"(above {cores - 0.5:.1f} means other processes shared the cores)")

    results = {
        "cores": cores,
        "peak_gflops": peak,
        "peak_gflops_samples": peaks,
        "tokens_per_prompt": tokens,
        "forward_gflop_per_sample": forward / 1e9,
        "scoring_samples_per_s": scoring,
        "scoring_fraction_of_peak": score_gflops / peak,
        "training_samples_per_s": training_rates,
        "training_batch": train_batch,
        "training_fraction_of_peak": train_gflops / peak,
        "training_fraction_of_peak_3x_rule": train_gflops_3x / peak,
        "load_average": [load_before, load_after],
    }
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
