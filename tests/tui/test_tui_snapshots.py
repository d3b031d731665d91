"""SVG snapshots of every screen on the deterministic display store.

Regenerate after an intended change with `pytest tests/tui --snapshot-update`, look at the
SVGs under __snapshots__/, and commit them. The store path (the only thing that varies
between runs) is replaced in the header before each screenshot.
"""

from __future__ import annotations

from pilot_helpers import console, settle

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
        if then is not None:
            then(pilot.app)
            await settle(pilot)

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
