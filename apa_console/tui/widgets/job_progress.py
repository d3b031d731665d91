"""Live progress of one tracked operation: a row per task (model, purge, overall, and one
per shard that follows it through training and validation) with its bar, steps, loss,
speed and ETA."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from apa_console.tui.tracker import CANCELLED, DONE, FAILED, ProgressTracker, TaskView, TrackerView
from apa_console.units import number, seconds

STATE_STYLE = {DONE: "green", CANCELLED: "yellow", FAILED: "red"}
REPAINT_S = 0.5


def split_task(name: str) -> tuple[str, str]:
    """"shard-1 (train)" → ("shard-1", "train"); a plain name has no phase."""
    if name.endswith(")") and " (" in name:
        base, phase = name[:-1].split(" (", 1)
        return base, phase
    return name, ""


def merged_rows(tasks: list[TaskView]) -> list[tuple[str, str, TaskView, float | None]]:
    """One row per task base name, showing its most recent phase; a shard keeps the training
    loss on screen while its validation pass runs."""
    groups: dict[str, list[TaskView]] = {}
    for task in tasks:
        groups.setdefault(split_task(task.event.task)[0], []).append(task)
    rows = []
    for base, members in groups.items():
        latest = max(members, key=lambda t: t.order)
        losses = [t.last_loss for t in sorted(members, key=lambda t: t.order)
                  if t.last_loss is not None]
        rows.append((base, split_task(latest.event.task)[1], latest,
                     losses[-1] if losses else None))
    return rows


def headline(view: TrackerView) -> Text:
    if view.running:
        return Text.assemble((view.title, "bold"), f" · running {seconds(view.elapsed_s)}")
    text = Text.assemble((view.title, "bold"), " · ",
                         (view.state, STATE_STYLE.get(view.state, "")),
                         f" after {seconds(view.elapsed_s)}")
    if view.error and view.state != DONE:
        text.append(f" — {view.error}", style=STATE_STYLE.get(view.state, ""))
    return text


def render_view(view: TrackerView) -> Group:
    table = Table(box=None, expand=True, show_edge=False, pad_edge=False, header_style="dim")
    table.add_column("task", no_wrap=True, max_width=14)
    table.add_column("", ratio=1, min_width=6)
    table.add_column("steps", justify="right", no_wrap=True)
    table.add_column("loss", justify="right", no_wrap=True)
    table.add_column("smp/s", justify="right", no_wrap=True)
    table.add_column("ETA", justify="right", no_wrap=True)
    table.add_column("", ratio=1, no_wrap=True, overflow="ellipsis")
    for base, phase, task, loss in merged_rows(view.tasks):
        event = task.event
        total = max(event.total, 1)
        table.add_row(
            base,
            ProgressBar(total=total, completed=min(event.step, total),
                        complete_style="green" if event.done else "cyan"),
            f"{event.step}/{event.total}",
            number(loss, 3),
            number(event.samples_per_s, 1),
            "" if event.done or not view.running else seconds(task.eta_s),
            " ".join(part for part in (phase, event.message) if part),
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
