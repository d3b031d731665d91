"""What one long operation (loading the model, scoring, a retrain) has reported so far.

The worker thread feeds the core's ProgressEvents into a tracker; the UI reads a snapshot
of it whenever it repaints. Keeping only the latest event per task is the coalescing: a
UI that falls behind skips straight to the newest state instead of replaying stale steps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apa_console.progress import CancelToken, ProgressEvent
from apa_console.safe_text import one_line

RUNNING, DONE, CANCELLED, FAILED = "running", "done", "cancelled", "failed"


@dataclass(frozen=True)
class TaskView:
    """One task's latest event, with an ETA filled in when the core gave none. `order`
    says which task reported last (higher = more recent)."""

    event: ProgressEvent
    eta_s: float | None
    elapsed_s: float
    order: int
    last_loss: float | None


@dataclass(frozen=True)
class TrackerView:
    title: str
    state: str
    tasks: list[TaskView]
    elapsed_s: float
    error: str | None
    result: Any
    estimate_s: float | None = None
    estimate_basis: str = ""

    @property
    def running(self) -> bool:
        return self.state == RUNNING


@dataclass
class _TaskClock:
    first_seen: float
    first_step: int
    latest: ProgressEvent
    order: int
    last_loss: float | None = None


@dataclass
class ProgressTracker:
    """Callable as a core `progress` callback; `cancel` is the token handed to the core.

    `notify` is called (from whichever thread reported) after every change; the TUI makes it
    post a replaceable message. `on_finish` runs on the UI thread once, when it ends.
    """

    title: str
    notify: Callable[[ProgressTracker], None] = lambda tracker: None
    on_finish: Callable[[ProgressTracker], None] | None = None
    cancel: CancelToken = field(default_factory=CancelToken)
    state: str = RUNNING
    error: str | None = None
    result: Any = None
    finish_announced: bool = False
    # The forget request a job recorded, so a cancel can say which one stays pending.
    request_id: str | None = None
    # What the plan estimated before the job started, and from what ("throughput
    # measured here"), shown beside the elapsed time.
    estimate_s: float | None = None
    estimate_basis: str = ""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[str, _TaskClock] = {}
        self._updates = 0
        self._started = time.monotonic()
        self._ended: float | None = None

    def __call__(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        with self._lock:
            self._updates += 1
            clock = self._tasks.get(event.task)
            if clock is None or event.step < clock.latest.step:
                # a task name seen again from step 0 (a second pass) restarts its clock
                clock = self._tasks[event.task] = _TaskClock(now, event.step, event, 0)
            clock.latest = event
            clock.order = self._updates
            if event.loss is not None:
                clock.last_loss = event.loss
            if event.request is not None:
                self.request_id = event.request
        self.notify(self)

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    def finish(self, state: str, *, result: Any = None, error: str | None = None) -> None:
        if error is not None:  # shown in a one-row status line: never more than one line
            error = one_line(error)
        with self._lock:
            self.state, self.result, self.error = state, result, error
            self._ended = time.monotonic()
        self.notify(self)

    def view(self) -> TrackerView:
        now = time.monotonic()
        with self._lock:
            tasks = [self._task_view(clock, now) for clock in self._tasks.values()]
            end = self._ended or now
            return TrackerView(self.title, self.state, tasks, end - self._started,
                               self.error, self.result, self.estimate_s, self.estimate_basis)

    @staticmethod
    def _task_view(clock: _TaskClock, now: float) -> TaskView:
        event = clock.latest
        elapsed = now - clock.first_seen
        eta = event.eta_s
        steps_done = event.step - clock.first_step
        if eta is None and steps_done > 0 and event.total > event.step:
            eta = elapsed / steps_done * (event.total - event.step)
        return TaskView(event, eta, elapsed, clock.order, clock.last_loss)
