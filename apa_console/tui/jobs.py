"""Running core work in Textual thread workers, reported through a ProgressTracker.

Every long operation — loading the model, scoring, retraining — goes through `run_tracked`:
the work runs off the UI thread, its ProgressEvents land in the tracker, and the tracker
posts `TrackerUpdated`, a message that a newer one for the same tracker replaces in the
queue, so a burst of training steps costs the UI one repaint.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from textual.dom import DOMNode
from textual.message import Message
from textual.worker import Worker

from apa_console.errors import ApaError, CancelledError
from apa_console.tui.tracker import CANCELLED, DONE, FAILED, ProgressTracker


class TrackerUpdated(Message):
    """A tracker changed; handlers read its latest state with `tracker.view()`."""

    def __init__(self, tracker: ProgressTracker) -> None:
        super().__init__()
        self.tracker = tracker

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TrackerUpdated) and message.tracker is self.tracker


def new_tracker(
    node: DOMNode, title: str, on_finish: Callable[[ProgressTracker], None] | None = None
) -> ProgressTracker:
    app = node.app
    return ProgressTracker(title, notify=lambda t: app.post_message(TrackerUpdated(t)),
                           on_finish=on_finish)


def run_tracked(
    node: DOMNode, tracker: ProgressTracker, work: Callable[[ProgressTracker], Any]
) -> Worker:
    """Run `work(tracker)` in a thread worker owned by `node`; its outcome (result, a
    cancellation, or an error's one-line message) ends up in the tracker."""
    app = node.app

    def body() -> None:
        try:
            result = work(tracker)
        except CancelledError as exc:
            tracker.finish(CANCELLED, error=str(exc))
        except ApaError as exc:
            tracker.finish(FAILED, error=str(exc))
        except Exception as exc:  # a bug: one line for the operator, the trace for the log
            app.log.error(traceback.format_exc())
            tracker.finish(FAILED, error=f"unexpected {type(exc).__name__}: {exc}")
        else:
            tracker.finish(DONE, result=result)

    return node.run_worker(body, name=tracker.title, group="tracked", thread=True,
                           exit_on_error=False)
