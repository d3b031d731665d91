"""The bodies of the console's worker threads: core calls only, progress into the tracker.

Each returns a plain result the screens display; a CancelledError or ApaError raised here
becomes the tracker's end state (see `jobs.run_tracked`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apa_console.apa import serving

from apa_console.unlearning import forget as unlearning
from apa_console.progress import ProgressEvent
from apa_console.store.document import Store
from apa_console.tui.model_host import ModelHost
from apa_console.tui.tracker import ProgressTracker

Work = Callable[[ProgressTracker], Any]


def score(store: Store, models: ModelHost, user: str | None) -> Work:
    """APA scores for a user's test samples, or for the whole test split."""

    def work(tracker: ProgressTracker) -> dict[str, Any]:
        samples = serving.select_samples(store, split=None if user else "test", user=user)
        with models.use(tracker, tracker.cancel) as backbone:
            report = serving.score_apa(store, backbone, samples, progress=tracker,
                                       cancel=tracker.cancel)
        return report.to_dict()

    return work


def forget_user(store: Store, models: ModelHost, user: str) -> Work:
    """Record a forget request for `user`, then process every pending request.

    The request is committed first, so a cancel (or a crash) leaves it pending for `apply`.
    """

    def work(tracker: ProgressTracker) -> dict[str, Any]:
        submitted = unlearning.submit(store, unlearning.Targets(users=[user]))
        request = submitted["request"]
        if request is None:
            return {"request": None, "receipts": [],
                    "already_forgotten": submitted["already_forgotten"]}
        tracker(ProgressEvent("request", 1, 1, message=f"{request['id']} recorded"))
        tracker.request_id = request["id"]
        return {"request": request["id"], "receipts": _apply(store, models, tracker)}

    return work


def apply_pending(store: Store, models: ModelHost) -> Work:
    def work(tracker: ProgressTracker) -> dict[str, Any]:
        return {"request": None, "receipts": _apply(store, models, tracker)}

    return work


def _apply(store: Store, models: ModelHost, tracker: ProgressTracker) -> list[dict]:
    with models.use(tracker, tracker.cancel) as backbone:
        return unlearning.apply_pending(store, backbone, progress=tracker, cancel=tracker.cancel)
