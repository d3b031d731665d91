"""The bodies of the console's worker threads: core calls only, progress into the tracker.

Each returns a plain result the screens display; a CancelledError or ApaError raised here
becomes the tracker's end state (see `jobs.run_tracked`). The core is imported inside each
body: it loads torch, which the console needs only once a job runs, not to paint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apa_console.store.document import Store
from apa_console.tui.model_host import ModelHost
from apa_console.tui.tracker import ProgressTracker
from apa_console.unlearning.targets import Targets

Work = Callable[[ProgressTracker], Any]
SCORED_SPLIT = "test"  # the console scores held-out samples, as `apa-console score` does


def score(store: Store, models: ModelHost, user: str | None, record: bool = True) -> Work:
    """APA scores for a user's test samples, or for the whole test split (which, with
    `record`, adds a point to the served recommender's AUC history)."""

    def work(tracker: ProgressTracker) -> dict[str, Any]:
        from apa_console.apa import serving

        samples = serving.samples_to_score(store, split=SCORED_SPLIT, user=user)
        with models.use(tracker, tracker.cancel) as backbone:
            report = serving.score_apa(store, backbone, samples, progress=tracker,
                                       cancel=tracker.cancel,
                                       record_as=SCORED_SPLIT if record and user is None
                                       else None)
        return {**report.to_dict(), "split": SCORED_SPLIT, "user": user}

    return work


def forget_users(store: Store, models: ModelHost, users: list[str], queued: set[str]) -> Work:
    """Forget `users` in one request, and the open requests `queued` (the plan the operator
    confirmed on screen), through the same workflow as `apa-console forget --user …`."""

    def work(tracker: ProgressTracker) -> dict[str, Any]:
        from apa_console.workflows import forget as forgetting

        return forgetting.forget(
            store, Targets(users=list(users)), lambda: models.use(tracker, tracker.cancel),
            confirm=lambda plan: forgetting.same_queue(plan, queued),
            progress=tracker, cancel=tracker.cancel,
        ).to_dict()

    return work


def apply_pending(store: Store, models: ModelHost) -> Work:
    def work(tracker: ProgressTracker) -> dict[str, Any]:
        from apa_console.workflows import forget as forgetting

        return forgetting.apply_pending(
            store, lambda: models.use(tracker, tracker.cancel),
            progress=tracker, cancel=tracker.cancel,
        ).to_dict()

    return work


def verify(store: Store, models: ModelHost, request_id: str) -> Work:
    """Retrain a done request's shards and scan for traces, as `apa-console verify` does."""

    def work(tracker: ProgressTracker) -> dict[str, Any]:
        from apa_console.unlearning.verify import verify_request

        with models.use(tracker, tracker.cancel) as backbone:
            return verify_request(store, backbone, request_id, progress=tracker,
                                  cancel=tracker.cancel)

    return work
