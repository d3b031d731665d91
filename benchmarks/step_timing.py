"""Timing workloads step by step against the matmul peak probed right around each step, so
a drifting shared machine is compared with itself (see `engine_speed`'s docstring)."""

from __future__ import annotations

import math
import time

import numpy as np
import torch


class PeakProbe:
    """Best GFLOP/s of large square matmuls in one dtype on all cores (the engine's thread
    count), with its buffers allocated once so a probe run between a workload's steps
    allocates nothing the workload might then reuse.

    The side is sized to the rate the dtype runs at here (`sized_for`): 2048² where it is
    fast, smaller where one such matmul would outlast the probe (bfloat16 emulated on a CPU
    without bf16 units runs 2048² in tens of seconds)."""

    def __init__(self, size: int | None = None, dtype: torch.dtype = torch.float32,
                 seconds: float = 0.5):
        self.size = size or self.sized_for(dtype, seconds)
        self.left = torch.randn(self.size, self.size).to(dtype)
        self.right = torch.randn(self.size, self.size).to(dtype)
        self.out = torch.empty(self.size, self.size, dtype=dtype)
        torch.mm(self.left, self.right, out=self.out)  # warm-up: thread pool, packing buffers

    @staticmethod
    def sized_for(dtype: torch.dtype, seconds: float, largest: int = 2048,
                  smallest: int = 128) -> int:
        """The largest side (a multiple of 128, at most `largest`) whose one matmul takes at
        most a quarter of `seconds` at the rate a 128² matmul in `dtype` runs here (best of 3)."""
        side = smallest
        left = torch.randn(side, side).to(dtype)
        torch.mm(left, left)  # warm-up
        fastest = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            torch.mm(left, left)
            fastest = min(fastest, time.perf_counter() - started)
        rate = 2 * side**3 / max(fastest, 1e-9)
        fitting = int((rate * seconds / 4 / 2) ** (1 / 3)) // smallest * smallest
        return max(smallest, min(largest, fitting))

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
        self.started = time.perf_counter()  # lets a report show which runs ran back to back

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
                      "steps_model_gflop": log.model_gflop, "started_s": log.started}
                     for log in self.logs],
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
