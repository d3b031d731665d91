"""How progress reaches the screen: the tracker keeps the newest event per task, a newer
update message replaces a queued older one, and shard phases share one row."""

from __future__ import annotations

import threading

from apa_console.progress import ProgressEvent
from apa_console.tui.jobs import TrackerUpdated
from apa_console.tui.tracker import CANCELLED, ProgressTracker
from apa_console.tui.widgets.job_progress import merged_rows, render_view


def test_tracker_keeps_the_latest_event_per_task_and_estimates_eta():
    notified = []
    tracker = ProgressTracker("forget user u1", notify=notified.append)
    for step in range(1, 4):
        tracker(ProgressEvent("shard-0 (train)", step, 10, loss=1.0 / step))
    tracker(ProgressEvent("overall", 0, 2))
    view = tracker.view()
    assert [t.event.task for t in view.tasks] == ["shard-0 (train)", "overall"]
    train = view.tasks[0]
    assert (train.event.step, train.last_loss) == (3, 1.0 / 3)
    assert train.eta_s is not None and train.eta_s >= 0
    assert len(notified) == 4
    # a task seen again from an earlier step (a second pass) starts over
    tracker(ProgressEvent("shard-0 (train)", 1, 10))
    assert tracker.view().tasks[0].event.step == 1
    tracker.finish(CANCELLED, error="cancelled by the operator")
    assert not tracker.running and tracker.view().error == "cancelled by the operator"


def test_tracker_is_safe_to_feed_from_several_threads():
    tracker = ProgressTracker("score")

    def feed(task: str) -> None:
        for step in range(200):
            tracker(ProgressEvent(task, step + 1, 200))

    threads = [threading.Thread(target=feed, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(t.event.step for t in tracker.view().tasks) == [200] * 4


def test_a_newer_update_replaces_a_queued_one_for_the_same_tracker_only():
    first, second = ProgressTracker("a"), ProgressTracker("b")
    assert TrackerUpdated(first).can_replace(TrackerUpdated(first))
    assert not TrackerUpdated(first).can_replace(TrackerUpdated(second))


def test_shard_phases_share_a_row_that_keeps_the_training_loss():
    tracker = ProgressTracker("forget")
    tracker(ProgressEvent("purge", 1, 1))
    tracker(ProgressEvent("shard-1 (train)", 4, 4, loss=0.5))
    tracker(ProgressEvent("shard-1 (validation)", 1, 3))
    rows = merged_rows(tracker.view().tasks)
    assert [(base, phase) for base, phase, _, _ in rows] == [("purge", ""),
                                                            ("shard-1", "validation")]
    assert rows[1][3] == 0.5
    render_view(tracker.view())  # renders without a terminal
