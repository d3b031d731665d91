"""Line charts with axes (textual-plotext): one adapter's training loss with its epoch marks,
and the served recommender's AUC over time. Each says what to do when it has nothing to
draw instead of showing empty axes."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

CHANCE_AUC = 0.5
SPLIT_COLOURS = {"test": "cyan", "valid": "magenta", "train": "yellow"}
MAX_TICKS = 8


def _forget_ticks(labels: list[str]) -> list[int]:
    """Positions to label: the first score after each forget, at most MAX_TICKS of them
    (the latest always), so labels never run into each other."""
    firsts = [i for i, label in enumerate(labels) if i == 0 or label != labels[i - 1]]
    if len(firsts) <= MAX_TICKS:
        return firsts
    stride = -(-len(firsts) // MAX_TICKS)
    return firsts[::-1][::stride][::-1]


def _step_ticks(steps: int, epoch_starts: list[int]) -> tuple[list[int], list[str]]:
    """Whole-step ticks: the first and last step and where each later epoch begins, or
    (one epoch) a few evenly spaced steps."""
    if epoch_starts:
        marks = {1: "1", steps: str(steps)}
        marks.update({start: f"e{n}" for n, start in enumerate(epoch_starts, start=2)})
    else:
        marks = {step: str(step) for step in {round(1 + (steps - 1) * i / 4) for i in range(5)}}
    ticks = sorted(marks)
    return ticks, [marks[t] for t in ticks]


class ChartPane(Vertical):
    """A plot, or in its place one line saying why there is none."""

    DEFAULT_CSS = """
    ChartPane { height: 1fr; }
    ChartPane > .chart-empty { color: $text-muted; height: auto; }
    ChartPane > .chart-note { color: $text-muted; height: auto; }
    """

    def compose(self) -> ComposeResult:
        yield Static(classes="chart-empty")
        yield PlotextPlot()
        yield Static(classes="chart-note")

    @property
    def plot(self) -> PlotextPlot:
        return self.query_one(PlotextPlot)

    def empty(self, message: str) -> None:
        self.query_one(".chart-empty", Static).update(Text(message))
        self.query_one(".chart-empty").display = True
        self.plot.display = False
        self.note("")

    def note(self, message: str) -> None:
        note = self.query_one(".chart-note", Static)
        note.update(Text(message))
        note.display = bool(message)

    def drawn(self) -> None:
        self.query_one(".chart-empty").display = False
        self.plot.display = True
        self.plot.refresh()

    def start(self):
        """The plot's plotext object, cleared for a new figure."""
        plt = self.plot.plt
        plt.clear_figure()
        return plt


class LossChart(ChartPane):
    """Loss at every optimizer step of one shard's current adapter; a dotted line where
    each epoch after the first begins."""

    def show(self, entry: dict[str, Any] | None) -> None:
        if entry is None:
            self.empty("no shards yet: run `apa-console partition`, then `train`")
            return
        curve = entry["curve"]
        if not curve:
            self.empty(f"shard {entry['shard']}: no loss recorded "
                       + ("(no adapter trained yet: run `apa-console train`)"
                          if entry["adapter"] is None else "(trained before loss was kept)"))
            return
        plt = self.start()
        steps = list(range(1, len(curve) + 1))
        plt.plot(steps, curve, marker="braille", color="cyan")
        for start in entry["epoch_starts"]:
            plt.vertical_line(start - 0.5, color="gray")
        plt.xticks(*_step_ticks(len(curve), entry["epoch_starts"]))
        plt.xlabel("step" + (" (eN: epoch N begins)" if entry["epoch_starts"] else ""))
        plt.title(f"{entry['adapter']} loss")
        self.drawn()
        epochs = entry["epochs"]
        self.note(f"{len(curve)} steps"
                  + (f" over {epochs} epoch{'s' if epochs != 1 else ''}" if epochs else "")
                  + f" · {curve[0]:.3f} → {curve[-1]:.3f}")


class AucChart(ChartPane):
    """AUC of every recorded whole-split score, in order, each labelled by the forget it
    followed; the grey line is chance."""

    def show(self, points: list[dict[str, Any]]) -> None:
        scored = [p for p in points if p.get("auc") is not None]
        if not scored:
            self.empty("no scores recorded yet: press s (or run `apa-console score`) to "
                       "score the test split; each score after a forget adds a point")
            return
        plt = self.start()
        xs = list(range(1, len(scored) + 1))
        aucs = [p["auc"] for p in scored]
        splits = [split for split in SPLIT_COLOURS if any(p["split"] == split for p in scored)]
        for split in splits:  # one line per split: a valid AUC is not a test AUC
            mine = [(x, p["auc"]) for x, p in zip(xs, scored) if p["split"] == split]
            plt.plot(*zip(*mine), marker="braille", color=SPLIT_COLOURS[split])
            plt.scatter(*zip(*mine), marker="●", color=SPLIT_COLOURS[split])
        plt.horizontal_line(CHANCE_AUC, color="gray")
        # chance always in view, and room around the points so close AUCs stay apart
        plt.ylim(max(min(*aucs, CHANCE_AUC) - 0.05, 0.0), min(max(aucs) + 0.05, 1.0))
        plt.xlim(0.5, len(scored) + 0.5)
        ticks = _forget_ticks([p["label"] for p in scored])
        plt.xticks([xs[i] for i in ticks], [scored[i]["label"] for i in ticks])
        plt.xlabel("after forget")
        plt.title("served recommender AUC")
        self.drawn()
        last = scored[-1]
        small = [p for p in scored if p["samples"] < 10]
        self.note(f"{len(scored)} scores · last {last['auc']:.3f} on {last['samples']} "
                  f"{last['split']} samples"
                  + (f" · {len(small)} on fewer than 10 samples" if small else "")
                  + " · grey line: chance (0.5)"
                  + ("" if splits == ["test"] else " · " + ", ".join(
                      f"{SPLIT_COLOURS[split]}: {split}" for split in splits)))
