"""The paper benchmark's PNG plots (matplotlib, headless) from its summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.paper_figures import partition_labels, sweep_points


def write_plots(summary: dict, aucs: dict, plots: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    plots.mkdir(parents=True, exist_ok=True)
    def save(fig, name):
        fig.tight_layout()
        fig.savefig(plots / name, dpi=110)
        plt.close(fig)

    forget = summary["forget"]
    if forget:
        _unlearning_plot(summary, plt, save)
    if summary.get("timing"):
        _inference_plot(summary, plt, save)
    _auc_plot(aucs, plt, save)
    if summary.get("sweep"):
        _sweep_plot(summary, plt, save)


def _unlearning_plot(summary, plt, save) -> None:
    forget = summary["forget"]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    arms = list(forget)
    x = np.arange(len(arms) + 1)
    ax.bar(x[0], summary["retraining_full_s"], color="grey", label="Retraining (full)")
    ax.bar(x[1:] - 0.2, [forget[a]["full_s"] for a in arms], 0.4, color="#9ab",
           label="full retrain of the K shards")
    ax.bar(x[1:] + 0.2, [forget[a]["forget_s"] for a in arms], 0.4, color="#c54",
           label="forget the median user")
    ax.set_xticks(x, ["Retraining"] + [partition_labels(summary)[a].split(" (")[0]
                                       for a in arms],
                  fontsize=8)
    ax.set_ylabel("seconds")
    ax.set_title("Unlearning time")
    ax.legend(fontsize=7)
    save(fig, "unlearning_time.png")


def _inference_plot(summary, plt, save) -> None:
    timing = summary["timing"]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    paths = list(timing["wall_s"])
    rates = [timing["samples"] / timing["wall_s"][p] for p in paths]
    ax.barh(range(len(paths)), rates, color="#58a")
    ax.set_yticks(range(len(paths)), paths, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"samples/s ({timing['samples']} test samples)")
    ax.set_title("Inference throughput")
    save(fig, "inference_time.png")


def _auc_plot(aucs, plt, save) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.6))
    methods = [m for m in aucs if aucs[m] is not None]
    ax.barh(range(len(methods)), [aucs[m] for m in methods], color="#7a5")
    ax.axvline(aucs["Retraining"] or 0.5, color="black", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(methods)), methods, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(min(0.45, min(aucs[m] for m in methods) - 0.02),
                max(aucs[m] for m in methods) + 0.02)
    ax.set_xlabel("test AUC (dashed: Retraining)")
    ax.set_title("AUC per method")
    save(fig, "auc_per_method.png")


def _sweep_plot(summary, plt, save) -> None:
    taus, ns = sweep_points(summary)
    fig, (left, right) = plt.subplots(1, 2, figsize=(7, 3))
    left.plot([t for t, _ in taus], [a for _, a in taus], marker="o")
    left.set_xscale("log")
    left.set_xlabel(f"τ (n = {summary['sweep']['tuned']['neighbours']})")
    left.set_ylabel("APA(D) AUC")
    right.plot([n for n, _ in ns], [a for _, a in ns], marker="o", color="#c54")
    right.set_xlabel(f"n (τ = {summary['sweep']['tuned']['tau']:g})")
    fig.suptitle("τ and n sweeps", fontsize=10)
    save(fig, "tau_n_sweeps.png")
