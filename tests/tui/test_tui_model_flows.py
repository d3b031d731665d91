"""Pilot tests on a store really trained on the tiny model: scoring, the full forget flow
(plan → typed confirmation → live per-shard progress → refreshed screens), navigating
while the model is busy, and cancel (the request stays pending; apply finishes it)."""

from __future__ import annotations

import threading

import pytest
from pilot_helpers import console, row_keys, run_palette, settle, text_of, wait_until

from apa_console.progress_rows import progress_rows
from apa_console.tui.screens.forget import ForgetScreen
from apa_console.tui.screens.job import JobScreen
from apa_console.tui.screens.modals import ConfirmModal, TypeToConfirm
from apa_console.tui.screens.requests import RequestsScreen
from apa_console.tui.screens.score import ScoreScreen
from apa_console.tui.screens.shards import ShardsScreen
from apa_console.unlearning import audit_log as audit
from apa_console.unlearning import forget as forget_pipeline
from apa_console.unlearning import requests as unlearning_requests

pytestmark = pytest.mark.anyio


async def open_forget(pilot, user: str) -> ForgetScreen:
    """Users → the user's row → f: the plan."""
    await pilot.press("2")
    await settle(pilot)
    keys = row_keys(pilot, "#users")
    for _ in range(keys.index(user)):
        await pilot.press("down")
    await pilot.press("f")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, ForgetScreen) and screen.user_ids == [user]
    return screen


async def confirm_forget(pilot, user: str) -> None:
    await pilot.press("f")
    await pilot.pause()
    assert isinstance(pilot.app.screen, TypeToConfirm)
    await pilot.press(*user, "enter")
    await pilot.pause()


async def test_score_test_split_and_a_user(trained_store):
    async with console(trained_store).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, ScoreScreen) and screen.user is None
        report = screen.report
        assert report is not None and report["samples"] == 4
        assert report["auc"] is not None and 0.0 <= report["auc"] <= 1.0
        assert row_keys(pilot, "#scores") == [row["sample"] for row in report["rows"]]
        for row in report["rows"]:
            assert 0.0 <= row["p_yes"] <= 1.0
            assert len(row["weights"]) == 3
            assert sum(row["weights"].values()) == pytest.approx(1.0, abs=1e-5)
        summary = text_of(pilot, "#score-summary")
        assert f"AUC {report['auc']:.4f} over only 4 test samples" in summary
        assert "shard-0-v1" in text_of(pilot, "#weights")
        await pilot.press("escape")

        await pilot.press("2")
        await settle(pilot)
        await pilot.press("down", "s")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, ScoreScreen) and screen.user == "user1"
        assert {row["user"] for row in screen.report["rows"]} == {"user1"}


async def test_forget_flow_with_navigation_while_the_model_is_busy(trained_store):
    app = console(trained_store)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await open_forget(pilot, "user1")
        plan = screen.plan
        assert sum(plan["samples"].values()) == 6
        assert row_keys(pilot, "#plan-shards") == [str(s["shard"]) for s in plan["shards"]]
        # `train` measured this machine's speed, so the estimate rests on it
        assert plan["estimate_basis"] == "measured"
        assert "from the speed measured on this machine" in text_of(pilot, "#plan-summary")

        # Another job holds the model: the forget records its request and waits, and the
        # console stays usable meanwhile.
        app.models._use_lock.acquire()
        try:
            await confirm_forget(pilot, "user1")
            tracker = screen.tracker
            assert tracker is not None and tracker.running
            await wait_until(pilot, lambda: any(
                "waiting" in t.event.message for t in tracker.view().tasks),
                what="the job to wait for the model")
            for key, screen_type in (("3", ShardsScreen), ("4", RequestsScreen)):
                await pilot.press(key)
                await wait_until(pilot, lambda t=screen_type: isinstance(app.screen, t)
                                 and app.screen.loaded, what=f"{screen_type.__name__} to load")
            assert row_keys(pilot, "#requests") == ["r0001"]  # recorded, pending
            assert tracker.running
            assert "forget user user1" in text_of(pilot, "JobStatus")
        finally:
            app.models._use_lock.release()

        await pilot.press("j")
        assert isinstance(app.screen, JobScreen)
        await settle(pilot)
        assert tracker.state == "done", tracker.error
        view = tracker.view()
        tasks = {t.event.task for t in view.tasks}
        assert {"purge", "overall"} <= tasks
        for shard in plan["shards"]:
            train = next(t for t in view.tasks if t.event.task == f"shard-{shard['shard']} (train)")
            assert train.event.done and train.last_loss is not None
        rows = {row.name: row for row in progress_rows(view.tasks)}
        shard_row = rows[f"shard-{plan['shards'][0]['shard']}"]
        assert shard_row.done and shard_row.label == "validation (2/2)"
        assert shard_row.count.endswith(" samples") and shard_row.loss is not None
        assert rows["model"].done and rows["overall"].count.endswith(" shard" if len(
            plan["shards"]) == 1 else " shards")
        await pilot.press("escape")  # back to Requests & audit, refreshed
        await settle(pilot)
        assert isinstance(app.screen, RequestsScreen)
        assert "done" in text_of(pilot, "JobStatus")
        assert "chain intact" in text_of(pilot, "#chain")
        assert "forget.done" in [str(c) for c in
                                 app.screen.query_one("#audit").get_column_at(2)]

        await pilot.press("2")  # the users section still shows the forget screen, with its receipt
        await settle(pilot)
        assert isinstance(app.screen, ForgetScreen)
        assert "receipt r0001" in text_of(pilot, "#forget-result")
        await pilot.press("escape")
        await settle(pilot)
        assert "user1" not in row_keys(pilot, "#users")
    [request] = unlearning_requests.list_requests(trained_store)
    assert request["status"] == "done"
    assert audit.verify_store(trained_store)["ok"]


async def test_cancel_while_waiting_for_the_model_keeps_the_request_queued(trained_store):
    app = console(trained_store)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await open_forget(pilot, "user0")
        app.models._use_lock.acquire()  # another job holds the model
        try:
            await confirm_forget(pilot, "user0")
            await wait_until(pilot, lambda: screen.tracker.request_id is not None,
                             what="the request to be recorded")
            await pilot.press("c")
            await settle(pilot)
        finally:
            app.models._use_lock.release()
        assert screen.tracker.state == "cancelled"
    [request] = unlearning_requests.list_requests(trained_store)
    assert (request["status"], request["phase"]) == ("pending", "queued")


async def test_cancel_mid_forget_leaves_the_request_pending_and_apply_finishes_it(
    trained_store, monkeypatch
):
    """Cancel lands after the purge commit, before any shard retrains: the request stays
    pending (purged) and the old adapters keep serving; `a` on Requests finishes it."""
    purged = threading.Event()
    cancel_pressed = threading.Event()

    def pause_after_purge(name: str) -> None:
        if name == "after_purge":
            purged.set()
            cancel_pressed.wait(timeout=30)

    monkeypatch.setattr(forget_pipeline, "_crash_point", pause_after_purge)
    app = console(trained_store)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await open_forget(pilot, "user2")
        await confirm_forget(pilot, "user2")
        tracker = screen.tracker
        await wait_until(pilot, purged.is_set, what="the purge commit")
        await pilot.press("c")
        assert tracker.cancel.cancelled
        cancel_pressed.set()
        await settle(pilot)
        assert tracker.state == "cancelled"
        assert "retrain pending" in text_of(pilot, "#forget-result")
        [request] = unlearning_requests.list_requests(trained_store)
        assert request["status"] == "pending" and request["id"] == tracker.request_id
        assert request["phase"] == "purged"

        await pilot.press("4")
        await settle(pilot)
        assert isinstance(app.screen, RequestsScreen)
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("y")
        await pilot.pause()
        assert isinstance(app.screen, JobScreen)
        await settle(pilot)
        assert app.job.state == "done", app.job.error
        [request] = unlearning_requests.list_requests(trained_store)
        assert request["status"] == "done"
        await pilot.press("escape")
        await settle(pilot)
        assert row_keys(pilot, "#requests") == ["r0001"]


async def test_the_palette_verifies_a_done_request_without_changing_the_store(
        trained_store, tiny_model_dir):
    from apa_console.engine.backbone import Backbone
    from apa_console.unlearning.targets import Targets

    unlearning_requests.submit(trained_store, Targets(users=["user1"]))
    forget_pipeline.apply_pending(trained_store, Backbone.load(tiny_model_dir, device="cpu"))
    before = trained_store.file.read_bytes()
    app = console(trained_store)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await run_palette(pilot, "verify request r0001")
        tracker = app.job
        assert tracker is not None and tracker.title == "verify r0001"
        await settle(pilot)
        assert tracker.state == "done", tracker.error
        assert tracker.result["ok"] and tracker.result["traces"] == []
        assert any("PASS" in str(note.message) for note in app._notifications)
    assert trained_store.file.read_bytes() == before
