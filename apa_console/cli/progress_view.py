"""Render the core's ProgressEvents as rich progress bars on stderr, and map Ctrl-C to the
core's CancelToken so work stops between steps instead of mid-write."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from apa_console.cli.output import stderr
from apa_console.progress import CancelToken, ProgressEvent

if TYPE_CHECKING:  # rich.progress is imported by the commands that show progress
    from rich.progress import Progress, TaskID


class ProgressBars:
    """One bar per event task name; the loss and speed of the latest step beside it.

    The display starts with the first event, so what a command prints or asks before any
    work starts (a plan, a confirmation) is not drawn over."""

    def __init__(self, progress: Progress, on_start: Callable[[], None]):
        self._progress = progress
        self._on_start = on_start
        self._tasks: dict[str, TaskID] = {}
        self.started = False

    def __call__(self, event: ProgressEvent) -> None:
        if not self.started:
            self.started = True
            self._on_start()
            self._progress.start()
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
    """Bars on stderr once work reports progress; from then on the first Ctrl-C asks the
    core to cancel (it stops at the next step boundary), a second one interrupts at once.
    Before that, Ctrl-C interrupts as usual (e.g. at a confirmation prompt)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

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
    progress = Progress(*columns, console=stderr, transient=False, disable=quiet)
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
