"""How progress reaches the screen: the tracker keeps the newest event per task, a newer
update message replaces a queued older one, a shard's training and validation share one
row whose bar only moves forward, and the headline says what the job is doing."""

from __future__ import annotations

import threading

from apa_console.progress import MODEL_TASK, ProgressEvent
from apa_console.progress_rows import activity, count_text, progress_rows
from apa_console.tui.jobs import TrackerUpdated
from apa_console.tui.tracker import CANCELLED, ProgressTracker
from apa_console.tui.widgets.job_progress import headline, render_view


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


def _feed_a_shard_job(tracker: ProgressTracker) -> list[tuple[float, str, str]]:
    """A retrain as the core reports it; after each event: the row's bar, stage and count."""
    events = [
        ProgressEvent(MODEL_TASK, 0, 1, message="loading the model…"),
        ProgressEvent(MODEL_TASK, 1, 1, message="model loaded"),
        ProgressEvent("overall", 0, 1, unit="shard"),
        ProgressEvent("shard-1 (train)", 0, 0, unit="step", message="preparing"),
        ProgressEvent("shard-1 (validation)", 0, 48, unit="sample", message="after training"),
        *(ProgressEvent("shard-1 (train)", step, 6, loss=0.7 - step / 100, unit="step")
          for step in range(1, 7)),
        *(ProgressEvent("shard-1 (validation)", done, 48, unit="sample")
          for done in (16, 32, 48)),
    ]
    seen = []
    for event in events:
        tracker(event)
        row = next((r for r in progress_rows(tracker.view().tasks) if r.name == "shard-1"),
                   None)
        if row is not None:
            seen.append((row.fraction, row.label, row.count))
    return seen


def test_a_shard_is_one_row_whose_bar_never_goes_back_and_names_its_unit():
    seen = _feed_a_shard_job(ProgressTracker("forget"))
    fractions = [fraction for fraction, _, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert [label for _, label, _ in seen[:2]] == ["train", "train (1/2)"]  # announced,
    # validation is a stage to come, not the one running
    assert ("0.5", "train (1/2)", "6/6 steps") == (f"{seen[7][0]:.1f}", *seen[7][1:])
    assert seen[8][1:] == ("validation (2/2)", "16/48 samples")
    assert seen[-1][2] == "48/48 samples"


def test_counts_are_plural_only_when_more_than_one():
    assert count_text(ProgressEvent("overall", 0, 1, unit="shard")) == "0/1 shard"
    assert count_text(ProgressEvent("overall", 1, 3, unit="shard")) == "1/3 shards"
    assert count_text(ProgressEvent("purge", 1, 1)) == ""  # a stage counts nothing


def test_the_headline_names_what_the_job_does_and_the_estimate_behind_it():
    tracker = ProgressTracker("forget user u1", estimate_s=62.0,
                              estimate_basis="the speed measured on this machine")
    tracker(ProgressEvent(MODEL_TASK, 0, 1, message="loading the model…"))
    line = headline(tracker.view()).plain
    assert "loading the model…" in line
    assert "estimated 1m02s from the speed measured on this machine" in line
    tracker(ProgressEvent(MODEL_TASK, 1, 1, message="model loaded"))
    tracker(ProgressEvent("purge", 0, 1, message="removing samples"))
    assert "removing the samples…" in headline(tracker.view()).plain
    tracker(ProgressEvent("shard-2 (train)", 1, 4, unit="step"))
    assert "training shard-2" in headline(tracker.view()).plain
    assert activity(progress_rows(tracker.view().tasks), running=False) == ""
    render_view(tracker.view())  # renders without a terminal
