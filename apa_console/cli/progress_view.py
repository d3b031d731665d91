"""Render the core's ProgressEvents as rich progress bars on stderr, and map Ctrl-C to the
core's CancelToken so work stops between steps instead of mid-write."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from apa_console.cli.output import stderr
from apa_console.progress import CancelToken, ProgressEvent, split_task
from apa_console.progress_rows import progress_rows
from apa_console.units import seconds

if TYPE_CHECKING:  # rich.progress is imported by the commands that show progress
    from rich.progress import Progress, TaskID

BAR_STEPS = 1000  # a bar counts thousandths of its row: stages have different units


@dataclass
class _Latest:
    """A task's newest event, as `progress_rows` reads it."""

    event: ProgressEvent
    order: int
    eta_s: float | None = None
    last_loss: float | None = None


class ProgressBars:
    """One bar per job (a shard's training and validation share it, see `progress_rows`);
    the stage, its count in named units, loss and speed beside it.

    The display starts with the first event, so what a command prints or asks before any
    work starts (a plan, a confirmation) is not drawn over."""

    def __init__(self, progress: Progress, on_start: Callable[[], None]):
        self._progress = progress
        self._on_start = on_start
        self._latest: dict[str, _Latest] = {}
        self._bars: dict[str, TaskID] = {}
        self._updates = 0
        self.started = False

    def __call__(self, event: ProgressEvent) -> None:
        if not self.started:
            self.started = True
            self._on_start()
            self._progress.start()
        self._updates += 1
        previous = self._latest.get(event.task)
        loss = event.loss if event.loss is not None else (previous and previous.last_loss)
        self._latest[event.task] = _Latest(event, self._updates, event.eta_s, loss)
        name = split_task(event.task)[0]
        row = next(r for r in progress_rows(list(self._latest.values())) if r.name == name)
        details = [part for part in (
            row.count,
            f"loss {row.loss:.4f}" if row.loss is not None else "",
            f"{row.event.samples_per_s:.2f} samples/s" if row.event.samples_per_s else "",
            f"{seconds(row.eta_s)} left" + (f" in {row.stage}" if row.stage else "")
            if row.eta_s is not None and not row.done else "",
            row.event.message) if part]
        description = f"{row.name} {row.label}".strip()
        bar = self._bars.get(name)
        if bar is None:
            bar = self._bars[name] = self._progress.add_task(description, total=BAR_STEPS,
                                                             details="")
        self._progress.update(bar, description=description,
                              completed=round(row.fraction * BAR_STEPS),
                              details=" · ".join(details))


@contextmanager
def live_progress(quiet: bool = False) -> Iterator[tuple[ProgressBars, CancelToken]]:
    """Bars on stderr once work reports progress; from then on the first Ctrl-C asks the
    core to cancel (it stops at the next step boundary), a second one interrupts at once.
    Before that, Ctrl-C interrupts as usual (e.g. at a confirmation prompt)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Column

    cancel = CancelToken()

    def on_interrupt(signum, frame):
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()
        stderr.print("[yellow]cancelling after the current step… (Ctrl-C again to abort)")

    columns = (
        TextColumn("{task.description}", table_column=Column(width=25, no_wrap=True,
                                                             overflow="ellipsis")),
        BarColumn(bar_width=16),
        TimeElapsedColumn(),
        TextColumn("{task.fields[details]}",
                   table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis")),
    )
    progress = Progress(*columns, console=stderr, transient=False, disable=quiet, expand=True)
    previous = signal.getsignal(signal.SIGINT)
    taken: list[bool] = []

    def take_interrupts() -> None:
        try:
            signal.signal(signal.SIGINT, on_interrupt)
            taken.append(True)
        except ValueError:  # not the main thread: Ctrl-C keeps its default meaning
            pass

    bars = ProgressBars(progress, take_interrupts)
    try:
        yield bars, cancel
    finally:
        if bars.started:
            progress.stop()
        if taken:
            signal.signal(signal.SIGINT, previous)
