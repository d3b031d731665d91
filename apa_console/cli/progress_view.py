"""Render the core's ProgressEvents as rich progress bars on stderr, and map Ctrl-C to the
core's CancelToken so work stops between steps instead of mid-write."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from apa_console.cli.output import stderr
from apa_console.progress import CancelToken, ProgressEvent


class ProgressBars:
    """One bar per event task name; the loss and speed of the latest step beside it."""

    def __init__(self, progress: Progress):
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def __call__(self, event: ProgressEvent) -> None:
        details = []
        if event.loss is not None:
            details.append(f"loss {event.loss:.4f}")
        if event.samples_per_s:
            details.append(f"{event.samples_per_s:.2f} samples/s")
        if event.message:
            details.append(event.message)
        task = self._tasks.get(event.task)
        if task is None:
            task = self._progress.add_task(event.task, total=max(event.total, 1), details="")
            self._tasks[event.task] = task
        self._progress.update(
            task, completed=event.step, total=max(event.total, 1), details=" · ".join(details)
        )


@contextmanager
def live_progress(quiet: bool = False) -> Iterator[tuple[ProgressBars, CancelToken]]:
    """Bars on stderr while the block runs; the first Ctrl-C asks the core to cancel
    (it stops at the next step boundary), a second one interrupts at once."""
    cancel = CancelToken()

    def on_interrupt(signum, frame):
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()
        stderr.print("[yellow]cancelling after the current step… (Ctrl-C again to abort)")

    columns = (
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[details]}"),
    )
    with Progress(*columns, console=stderr, transient=False, disable=quiet) as progress:
        bars = ProgressBars(progress)
        previous = signal.signal(signal.SIGINT, on_interrupt)
        try:
            yield bars, cancel
        finally:
            signal.signal(signal.SIGINT, previous)
