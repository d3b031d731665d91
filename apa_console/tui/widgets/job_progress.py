"""Live progress of one tracked operation: a row per task (model, purge, overall, and one
per shard that goes through training and validation on one bar) with its count in named
units, loss, speed and ETA; the headline says what the job is doing now."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from apa_console.progress_rows import activity, progress_rows
from apa_console.tui.tracker import CANCELLED, DONE, FAILED, ProgressTracker, TrackerView
from apa_console.units import number, seconds

STATE_STYLE = {DONE: "green", CANCELLED: "yellow", FAILED: "red"}
REPAINT_S = 0.5


def estimate_text(view: TrackerView) -> str:
    """"estimated 1m02s from throughput measured here": the plan's figure and its basis."""
    if view.estimate_s is None:
        return ""
    basis = f" from {view.estimate_basis}" if view.estimate_basis else ""
    return f"estimated {seconds(view.estimate_s)}{basis}"


def headline(view: TrackerView) -> Text:
    if view.running:
        doing = activity(progress_rows(view.tasks), running=True)
        text = Text.assemble((view.title, "bold"), " · ", (doing, "cyan"),
                             f" · {seconds(view.elapsed_s)}")
        estimate = estimate_text(view)
        if estimate:
            text.append(f" · {estimate}", style="dim")
        return text
    text = Text.assemble((view.title, "bold"), " · ",
                         (view.state, STATE_STYLE.get(view.state, "")),
                         f" after {seconds(view.elapsed_s)}")
    if view.error and view.state != DONE:
        text.append(f" — {view.error}", style=STATE_STYLE.get(view.state, ""))
    return text


def render_view(view: TrackerView) -> Group:
    table = Table(box=None, expand=True, show_edge=False, pad_edge=False, header_style="dim")
    table.add_column("task", no_wrap=True, overflow="ellipsis", max_width=12)
    table.add_column("stage", no_wrap=True, overflow="ellipsis")
    table.add_column("", ratio=1, min_width=6)
    table.add_column("done", justify="right", no_wrap=True)
    table.add_column("loss", justify="right", no_wrap=True)
    table.add_column("smp/s", justify="right", no_wrap=True)
    table.add_column("ETA", justify="right", no_wrap=True)
    table.add_column("", ratio=1, no_wrap=True, overflow="ellipsis")
    for row in progress_rows(view.tasks):
        event = row.event
        table.add_row(
            row.name,
            row.label,
            ProgressBar(total=1000, completed=round(row.fraction * 1000),
                        complete_style="green" if row.done else "cyan"),
            row.count,
            number(row.loss, 3),
            number(event.samples_per_s, 1),
            "" if row.done or not view.running else seconds(row.eta_s),
            event.message,
        )
    return Group(headline(view), table) if view.tasks else Group(headline(view))


class JobProgress(Static):
    """Shows a tracker; repaints on every update the app publishes for it, and twice a
    second while it runs (so elapsed time and ETAs move during long silent steps)."""

    DEFAULT_CSS = """
    JobProgress { height: auto; }
    """

    def __init__(self, tracker: ProgressTracker | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tracker = tracker

    def on_mount(self) -> None:
        self.app.progress_signal.subscribe(self, self._on_progress)
        self.set_interval(REPAINT_S, self._tick)
        self.repaint()

    def follow(self, tracker: ProgressTracker | None) -> None:
        self.tracker = tracker
        self.repaint()

    def _on_progress(self, tracker: ProgressTracker) -> None:
        if tracker is self.tracker:
            self.repaint()

    def _tick(self) -> None:
        if self.tracker is not None and self.tracker.running:
            self.repaint()

    def repaint(self) -> None:
        self.display = self.tracker is not None
        if self.tracker is not None:
            self.update(render_view(self.tracker.view()))
