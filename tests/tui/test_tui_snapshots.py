"""SVG snapshots of every screen on the deterministic display store.

Regenerate after an intended change with `pytest tests/tui --snapshot-update`, look at the
SVGs under __snapshots__/, and commit them. The store path (the only thing that varies
between runs) is replaced in the header before each screenshot.
"""

from __future__ import annotations

import pytest
from pilot_helpers import console, settle, wait_until
from textual.widgets import Input

from apa_console.progress import MODEL_TASK, ProgressEvent
from apa_console.tui import tracker as tracker_module
from apa_console.tui.jobs import new_tracker
from apa_console.tui.screens.job import JobScreen
from apa_console.tui.screens.score import ScoreScreen

SHOWN_STORE_PATH = "/srv/apa/store"
NARROW = (80, 24)
WIDE = (110, 32)

# What `serving.score_apa(...).to_dict()` returns, with fixed numbers: the score screen's
# table, bars and weights without depending on a model's floating point.
FIXED_REPORT = {
    "method": "APA(D)", "strategy": "adaptive", "level": "D", "tau": 50.0, "neighbours": 10,
    "auc": 0.75, "samples": 4, "wall_s": 0.5, "samples_per_s": 8.0,
    "adapters": ["shard-0-v2", "shard-1-v1", "shard-2-v1"],
    "rows": [
        {"sample": "s000005", "user": "user0", "label": 1, "p_yes": 0.81,
         "weights": {"shard-0-v2": 0.7, "shard-1-v1": 0.2, "shard-2-v1": 0.1}},
        {"sample": "s000011", "user": "user1", "label": 0, "p_yes": 0.34,
         "weights": {"shard-0-v2": 0.15, "shard-1-v1": 0.6, "shard-2-v1": 0.25}},
        {"sample": "s000017", "user": "user2", "label": 1, "p_yes": 0.57,
         "weights": {"shard-0-v2": 0.05, "shard-1-v1": 0.15, "shard-2-v1": 0.8}},
        {"sample": "s000023", "user": "user3", "label": 0, "p_yes": 0.12,
         "weights": {"shard-0-v2": 0.34, "shard-1-v1": 0.33, "shard-2-v1": 0.33}},
    ],
}


def prepare(*keys: str, then=None):
    """A run_before that fixes the header, presses keys (letting data load after each),
    and optionally runs `then(app)`."""

    async def run_before(pilot) -> None:
        pilot.app.sub_title = SHOWN_STORE_PATH
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
            # a screen's first load may start after the workers settle waited for
            await wait_until(pilot, lambda: getattr(pilot.app.screen, "loaded", True),
                             what=f"{type(pilot.app.screen).__name__}'s data")
            await settle(pilot)
        if then is not None:
            then(pilot.app)
            await settle(pilot)
        # A focused Input's cursor blinks every 0.5 s, so a slow run would catch it hidden:
        # stop the blink (which hides the cursor) so every run draws the same frame.
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    return run_before


def test_overview(snap_compare, display_store):
    assert snap_compare(console(display_store), terminal_size=NARROW, run_before=prepare())


def test_users_filtered(snap_compare, display_store):
    assert snap_compare(console(display_store), terminal_size=NARROW,
                        run_before=prepare("2", "slash", "u", "s", "e", "r", "1"))


def test_user_detail(snap_compare, display_store):
    assert snap_compare(console(display_store), terminal_size=WIDE,
                        run_before=prepare("2", "down", "enter", "down", "down"))


def test_shards(snap_compare, display_store):
    assert snap_compare(console(display_store), terminal_size=WIDE,
                        run_before=prepare("3", "down"))


def test_requests_and_audit(snap_compare, display_store):
    assert snap_compare(console(display_store), terminal_size=WIDE, run_before=prepare("4"))


def test_score(snap_compare, display_store):
    assert snap_compare(
        console(display_store), terminal_size=WIDE,
        run_before=prepare(then=lambda app: app.push_screen(ScoreScreen(report=FIXED_REPORT))),
    )


def test_forget_plan(snap_compare, display_store):
    assert snap_compare(console(display_store), terminal_size=NARROW,
                        run_before=prepare("2", "down", "down", "f"))


def test_forget_typed_confirmation(snap_compare, display_store):
    assert snap_compare(console(display_store), terminal_size=NARROW,
                        run_before=prepare("2", "down", "down", "f", "f", "u", "s", "e"))


def test_help(snap_compare, display_store):
    assert snap_compare(console(display_store), terminal_size=(80, 30),
                        run_before=prepare("question_mark"))


def test_request_detail(snap_compare, display_store):
    assert snap_compare(console(display_store), terminal_size=NARROW,
                        run_before=prepare("4", "enter"))


def test_request_detail_wide(snap_compare, display_store):
    assert snap_compare(console(display_store), terminal_size=(120, 40),
                        run_before=prepare("4", "enter"))


# -- views changed for #22: marks, several users' plan, flagged scores, progress, 80 columns --

LARGE = (120, 40)


def _two_sample_report() -> dict:
    return {**FIXED_REPORT, "rows": FIXED_REPORT["rows"][:2], "samples": 2, "auc": 1.0,
            "split": "test", "user": "user0"}


@pytest.mark.parametrize("size", [NARROW, LARGE], ids=["80x24", "120x40"])
def test_users_marked(snap_compare, display_store, size):
    """Two users marked (● in the row, the count in the title and the hint line), then
    sorted by samples: the marks stay with their users."""
    assert snap_compare(console(display_store), terminal_size=size,
                        run_before=prepare("2", "down", "space", "down", "space", "o", "o"))


@pytest.mark.parametrize("size", [NARROW, LARGE], ids=["80x24", "120x40"])
def test_forget_plan_for_marked_users(snap_compare, display_store, size):
    assert snap_compare(console(display_store), terminal_size=size,
                        run_before=prepare("2", "space", "down", "space", "f"))


@pytest.mark.parametrize("size", [NARROW, LARGE], ids=["80x24", "120x40"])
def test_score_of_two_samples_is_flagged(snap_compare, display_store, size):
    assert snap_compare(
        console(display_store), terminal_size=size,
        run_before=prepare(then=lambda app: app.push_screen(
            ScoreScreen("user0", report=_two_sample_report()))))


@pytest.mark.parametrize("size", [NARROW, LARGE], ids=["80x24", "120x40"])
def test_requests_and_audit_sorted(snap_compare, display_store, size):
    """At 80 columns the audit details end in "…"; the requests sorted newest first."""
    assert snap_compare(console(display_store), terminal_size=size,
                        run_before=prepare("4", "o", "O"))


class FrozenClock:
    """The tracker's clock, stopped: elapsed times and ETAs in the picture never move."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def _job_mid_validation(app, clock: FrozenClock) -> None:
    """A forget of two shards as the core reports it: shard 0 trained and validating,
    shard 2 announced, the model loaded, the plan's estimate measured on this machine."""
    tracker = new_tracker(app, "forget 2 users")
    tracker.estimate_s, tracker.estimate_basis = 62.0, "the speed measured on this machine"
    steps = [
        ProgressEvent("request", 1, 1, message="r0003 recorded", request="r0003"),
        ProgressEvent(MODEL_TASK, 0, 1, message="loading the model…"),
        ProgressEvent(MODEL_TASK, 1, 1, message="tiny-llama loaded"),
        ProgressEvent("purge", 1, 1, message="samples removed"),
        ProgressEvent("overall", 0, 2, unit="shard"),
        ProgressEvent("shard-0 (train)", 0, 0, unit="step", message="preparing"),
        ProgressEvent("shard-0 (validation)", 0, 8, unit="sample", message="after training"),
        *(ProgressEvent("shard-0 (train)", step, 4, loss=0.7 - step / 20, samples_per_s=2.5,
                        eta_s=(4 - step) * 3.0, unit="step") for step in range(1, 5)),
        ProgressEvent("shard-0 (validation)", 4, 8, samples_per_s=11.0, eta_s=0.4,
                      unit="sample"),
    ]
    for event in steps:
        clock.now += 1.5
        tracker(event)
    app.job = tracker
    app.push_screen(JobScreen())


@pytest.mark.parametrize("size", [NARROW, LARGE], ids=["80x24", "120x40"])
def test_job_progress_one_row_per_shard(snap_compare, display_store, size, monkeypatch):
    clock = FrozenClock()
    monkeypatch.setattr(tracker_module, "time", clock)
    assert snap_compare(console(display_store), terminal_size=size,
                        run_before=prepare(then=lambda app: _job_mid_validation(app, clock)))
