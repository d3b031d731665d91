"""The one progress event type every long operation emits, and cooperative cancellation.

The core never renders anything: the CLI turns events into rich progress bars, the TUI into
progress widgets. Cancellation is checked between steps, so work stops at a clean boundary.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from apa_console.errors import CancelledError


@dataclass(frozen=True)
class ProgressEvent:
    """Where one task stands. `task` identifies the bar (e.g. "shard 2", "validation")."""

    task: str
    step: int
    total: int
    loss: float | None = None
    samples_per_s: float | None = None
    eta_s: float | None = None
    message: str = ""
    request: str | None = None  # the forget request this work was recorded as, once it is
    unit: str = ""  # what `step` counts ("step", "sample", "shard"), singular; "" for a stage

    @property
    def done(self) -> bool:
        return self.total > 0 and self.step >= self.total


# Task names every front-end knows: loading the model, the purge commit, "k of n done".
MODEL_TASK, PURGE_TASK, OVERALL_TASK = "model", "purge", "overall"

# A shard job reports its stages as tasks "shard-2 (train)", "shard-2 (validation)"; a
# front-end shows them as one row that goes through the stages in this order.
JOB_STAGES = ("train", "verify", "validation")


def split_task(name: str) -> tuple[str, str]:
    """"shard-1 (train)" → ("shard-1", "train"); a plain name has no stage."""
    if name.endswith(")") and " (" in name:
        base, stage = name[:-1].split(" (", 1)
        return base, stage
    return name, ""


def stage_index(stage: str) -> int:
    return JOB_STAGES.index(stage) if stage in JOB_STAGES else len(JOB_STAGES)


ProgressCallback = Callable[[ProgressEvent], None]


def ignore_progress(event: ProgressEvent) -> None:
    """The default sink for callers that don't render progress."""


class CancelToken:
    """Set from any thread (Ctrl-C handler, TUI button); polled by the worker between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise CancelledError()


NEVER_CANCELLED = CancelToken()
