"""Pilot tests on the display store (no model): sections, filter, a user, help, the command
palette, read-only mode, errors in a modal, and refresh after another process writes."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from display_store import FORGOTTEN_USER, PENDING_USER
from pilot_helpers import (
    console,
    footer_actions,
    row_keys,
    run_palette,
    settle,
    text_of,
    wait_until,
)
from textual.widgets import Button, Input

from apa_console.store.document import Store
from apa_console.tui.screens.forget import ForgetScreen
from apa_console.tui.screens.help import HelpScreen
from apa_console.tui.screens.modals import ConfirmModal, ErrorModal, TypeToConfirm
from apa_console.tui.screens.overview import OverviewScreen
from apa_console.tui.screens.requests import RequestsScreen
from apa_console.tui.screens.shards import ShardsScreen
from apa_console.tui.screens.user_detail import UserScreen
from apa_console.tui.screens.users import UsersScreen
from apa_console.tui.widgets.balance_chart import BalanceChart
from apa_console.unlearning import requests as unlearning_requests

pytestmark = pytest.mark.anyio

ALL_USERS = [f"user{i}" for i in range(6)]


async def test_number_keys_switch_sections_and_each_loads(display_store):
    async with console(display_store).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert isinstance(pilot.app.screen, OverviewScreen)
        assert row_keys(pilot, "#adapters") == ["shard-0-v2", "shard-1-v1", "shard-2-v1"]
        assert row_keys(pilot, "#evaluation") == ["Retraining", "SISA", "APA(D)", "APA(ND)"]
        assert [s["size"] for s in pilot.app.screen.query_one(BalanceChart)._shards] == [12, 12, 8]
        for key, screen_type, table, expected in (
            ("2", UsersScreen, "#users", ALL_USERS),
            ("3", ShardsScreen, "#shards", ["0", "1", "2"]),
            ("4", RequestsScreen, "#requests", ["r0001", "r0002"]),
        ):
            await pilot.press(key)
            await settle(pilot)
            assert isinstance(pilot.app.screen, screen_type)
            assert row_keys(pilot, table) == expected
        # the shard detail follows the cursor: typical samples belong to the shard
        await pilot.press("3", "down")
        await settle(pilot)
        shard = pilot.app.screen._shards["1"]
        assert row_keys(pilot, "#typical") == [t["sample"] for t in shard["typical"]]
        assert len(shard["typical"]) == 5
        await pilot.press("1")
        assert isinstance(pilot.app.screen, OverviewScreen)


async def test_slash_filters_users_and_escape_clears(display_store):
    async with console(display_store).run_test() as pilot:
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("slash")
        assert isinstance(pilot.app.focused, Input)
        await pilot.press(*"user3")  # typed keys go to the filter, not to bindings
        await pilot.pause()
        assert row_keys(pilot, "#users") == ["user3"]
        assert "1 of 6 users" in text_of(pilot, "#users-count")
        await pilot.press("enter")  # keep the filter, back to the table
        assert pilot.app.focused.id == "users"
        assert row_keys(pilot, "#users") == ["user3"]
        await pilot.press("escape")
        assert row_keys(pilot, "#users") == ALL_USERS


async def test_enter_opens_a_user_with_samples_shards_and_history(display_store):
    async with console(display_store).run_test(size=(100, 40)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("down", "enter")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, UserScreen) and screen.user_id == "user1"
        samples = screen._samples
        assert len(samples) == 8
        # training samples name their shard; valid/test samples are in none
        assert all((s["shard"] is None) == (s["split"] != "train") for s in samples.values())
        assert {s["shard"] for s in samples.values() if s["shard"] is not None} == {1}
        assert "User Preference" in text_of(pilot, "#sample-text")
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, UsersScreen)

        pilot.app.open_user(PENDING_USER)
        await settle(pilot)
        assert row_keys(pilot, "#user-requests") == ["r0002"]


async def test_forgotten_user_keeps_request_history_but_no_actions(display_store):
    async with console(display_store).run_test() as pilot:
        pilot.app.open_user(FORGOTTEN_USER)
        await settle(pilot)
        screen = pilot.app.screen
        assert not screen.present
        assert row_keys(pilot, "#user-requests") == ["r0001"]
        assert "forgotten" in text_of(pilot, "#user-summary")
        assert not {"forget", "score"} & footer_actions(pilot)


async def test_help_and_command_palette(display_store):
    async with console(display_store).run_test() as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(pilot.app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, OverviewScreen)

        await run_palette(pilot, "user user4")
        assert isinstance(pilot.app.screen, UserScreen) and pilot.app.screen.user_id == "user4"

        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Requests & audit")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(pilot.app.screen, RequestsScreen)


async def test_readonly_hides_destructive_actions(display_store):
    async with console(display_store, readonly=True).run_test() as pilot:
        await pilot.press("2")
        await settle(pilot)
        assert "forget_user" not in footer_actions(pilot)
        assert "score_user" in footer_actions(pilot)
        await pilot.press("f")
        await pilot.pause()
        assert isinstance(pilot.app.screen, UsersScreen)  # nothing opened
        await pilot.press("enter")
        await settle(pilot)
        assert "forget" not in footer_actions(pilot)
        await pilot.press("4")
        await settle(pilot)
        assert "apply_pending" not in footer_actions(pilot)
        assert "read-only" in pilot.app.sub_title


async def test_a_failing_job_shows_one_line_error_in_a_modal(display_store):
    """The display store's model does not exist: the forget is recorded, then fails to load
    the model; the operator sees the core's one-line message, and the request waits."""
    async with console(display_store).run_test(size=(100, 30)) as pilot:
        pilot.app.forget("user2")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ForgetScreen)
        assert row_keys(pilot, "#plan-shards") == ["2"]
        await pilot.press("f")
        await pilot.pause()
        assert isinstance(pilot.app.screen, TypeToConfirm)
        await pilot.press(*"user")
        await pilot.pause()
        assert pilot.app.screen.query_one("#confirm", Button).disabled
        await pilot.press("enter")  # a wrong name confirms nothing
        assert isinstance(pilot.app.screen, TypeToConfirm)
        await pilot.press("2", "enter")
        await settle(pilot)
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ErrorModal),
                         what="the error modal")
        message = pilot.app.screen.message
        assert "\n" not in message and "Traceback" not in message
        assert pilot.app.job.state == "failed"
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, ForgetScreen)
    requests = unlearning_requests.list_requests(display_store)
    pending = [r for r in requests if r["status"] == "pending"]
    assert [r["targets"]["users"] for r in pending] == [[PENDING_USER], ["user2"]]


async def test_cli_writes_from_another_process_refresh_the_open_screen(display_store):
    async with console(display_store).run_test() as pilot:
        await pilot.press("4")
        await settle(pilot)
        assert row_keys(pilot, "#requests") == ["r0001", "r0002"]
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "apa_console.cli.app", "forget", "--user", "user0",
             "--queue", "--yes", "--store", str(display_store.root)],
            capture_output=True, text=True, timeout=120,
        )
        assert result.returncode == 0, result.stderr
        await wait_until(pilot, lambda: row_keys(pilot, "#requests") == ["r0001", "r0002",
                                                                         "r0003"],
                         what="the new request to appear")
        # the other sections pick the change up when shown
        await pilot.press("1")
        await settle(pilot)
        assert "2 open (r0002, r0003)" in text_of(pilot, "#store-summary")


async def test_quit_during_a_job_asks_then_cancels_it_and_leaves_the_request_queued(
    display_store
):
    app = console(display_store)
    async with app.run_test() as pilot:
        app.models._use_lock.acquire()  # the job will wait for the model
        try:
            tracker = app.start_forget(["user3"], {"r0002"})
            await wait_until(pilot, lambda: tracker.request_id is not None,
                             what="the request to be recorded")
            await pilot.press("q")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmModal) and not tracker.cancel.cancelled
            await pilot.press("escape")  # changed their mind: the job goes on
            await pilot.pause()
            assert not tracker.cancel.cancelled and app.is_running
            await pilot.press("q")
            await pilot.pause()
            await pilot.press("y")
            await pilot.pause()
            assert tracker.cancel.cancelled
            await settle(pilot)
        finally:
            app.models._use_lock.release()
        assert tracker.state == "cancelled"
        assert not app.is_running  # q exited once the job had stopped
    statuses = {r["id"]: r["status"] for r in unlearning_requests.list_requests(display_store)}
    assert statuses == {"r0001": "done", "r0002": "pending", "r0003": "pending"}


async def test_an_empty_store_renders_every_section_without_errors(tmp_path):
    store = Store.create(tmp_path / "empty")
    async with console(store).run_test() as pilot:
        for key in ("1", "2", "3", "4"):
            await pilot.press(key)
            await settle(pilot)
            assert not isinstance(pilot.app.screen, ErrorModal), pilot.app.screen.message
        assert "chain intact" in text_of(pilot, "#chain")
        await pilot.press("1")
        await settle(pilot)
        assert "ingest" in text_of(pilot, "#store-summary")


async def test_enter_opens_a_request_with_its_receipt_and_x_withdraws_a_queued_one(
    display_store
):
    from apa_console.tui.screens.request_detail import RequestScreen

    async with console(display_store).run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        await settle(pilot)
        assert isinstance(pilot.app.screen, RequestsScreen)
        audit_seqs = row_keys(pilot, "#audit")
        assert audit_seqs == sorted(audit_seqs, key=int, reverse=True)  # newest first
        await pilot.press("enter")  # r0001, done: its receipt and audit entries
        await settle(pilot)
        assert isinstance(pilot.app.screen, RequestScreen)
        assert "forgotten: data removed" in text_of(pilot, "#request-summary")
        assert "receipt r0001" in text_of(pilot, "#request-receipt")
        assert row_keys(pilot, "#request-audit") == ["2", "3", "4"]
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("down", "x")  # r0002 is queued: withdraw it, after a confirmation
        await pilot.pause()
        assert isinstance(pilot.app.screen, ConfirmModal)
        await pilot.press("y")
        await settle(pilot)
    statuses = {r["id"]: r["status"] for r in unlearning_requests.list_requests(display_store)}
    assert statuses == {"r0001": "done", "r0002": "cancelled"}
    assert PENDING_USER in {u["id"] for u in views_users(display_store)}  # nothing removed


def views_users(store):
    from apa_console.workflows import views

    return views.user_rows(store)


async def test_every_table_sorts_searches_and_jumps_to_its_ends(display_store):
    from apa_console.tui.widgets.console_table import ConsoleTable

    async with console(display_store).run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        users = pilot.app.screen.query_one("#users", ConsoleTable)
        await pilot.press("G")
        assert users.cursor_row == users.row_count - 1
        await pilot.press("g")
        assert users.cursor_row == 0
        await pilot.press("o", "o")  # sort by the second column, samples, ascending
        samples = [int(users.get_row_at(i)[1].plain) for i in range(users.row_count)]
        assert samples == sorted(samples) and "samples ▲" in str(users.ordered_columns[1].label)
        assert "by samples ascending" in str(users.border_title)
        await pilot.press("O")
        samples = [int(users.get_row_at(i)[1].plain) for i in range(users.row_count)]
        assert samples == sorted(samples, reverse=True)
        await pilot.press("4")  # the audit log searches too, by any cell
        await settle(pilot)
        await pilot.press("tab")
        audit = pilot.app.screen.query_one("#audit", ConsoleTable)
        assert pilot.app.focused is audit
        await pilot.press("slash", *"purged")
        await pilot.pause()
        assert row_keys(pilot, "#audit") == ["3"]
        assert "/purged 1 of 5" in str(audit.border_title)
        await pilot.press("enter", "escape")  # keep, then clear from the table
        await pilot.pause()
        assert len(row_keys(pilot, "#audit")) == 5
        assert isinstance(pilot.app.screen, RequestsScreen)  # escape cleared, did not go back


def test_sort_keys_order_numbers_by_value_and_ids_naturally():
    from apa_console.tui.widgets.console_table import sort_key

    assert sorted(["user10", "user9", "user1"], key=sort_key) == ["user1", "user9", "user10"]
    assert sorted(["10", "9.5", "–", "100"], key=sort_key) == ["9.5", "10", "100", "–"]


async def test_y_copies_a_rows_id_and_c_an_adapters_full_hash(display_store):
    async with console(display_store).run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("y")
        assert pilot.app.clipboard == "user0"
        await pilot.press("Y")
        assert pilot.app.clipboard.split("\t")[0] == "user0"
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("c")
        shard = pilot.app.screen._shards["0"]
        assert pilot.app.clipboard == shard["adapter"]["sha256"]
        assert len(pilot.app.clipboard) == 64


async def test_the_palette_acts_on_users_and_requests(display_store):
    from apa_console.tui.screens.request_detail import RequestScreen

    async with console(display_store).run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await run_palette(pilot, "forget user user4")
        assert isinstance(pilot.app.screen, ForgetScreen) and pilot.app.screen.user_ids == ["user4"]
        await pilot.press("escape")
        await settle(pilot)
        await run_palette(pilot, "request r0001")
        assert isinstance(pilot.app.screen, RequestScreen)
        assert pilot.app.screen.request_id == "r0001"
        await pilot.press("escape")
        await settle(pilot)
        await run_palette(pilot, "withdraw request r0002")
        assert isinstance(pilot.app.screen, ConfirmModal)
        await pilot.press("y")
        await settle(pilot)
    statuses = {r["id"]: r["status"] for r in unlearning_requests.list_requests(display_store)}
    assert statuses == {"r0001": "done", "r0002": "cancelled"}


def test_a_screen_reads_again_when_a_commit_collected_what_it_was_reading():
    from types import SimpleNamespace

    from apa_console.errors import StoreChangedError
    from apa_console.tui.screens.base import STORE_CHANGE_RETRIES, ConsoleScreen

    attempts = []

    def fetch(store):
        attempts.append(store)
        if len(attempts) < STORE_CHANGE_RETRIES:
            raise StoreChangedError("changed")
        return "new state"

    screen = SimpleNamespace(fetch=fetch, app=SimpleNamespace(store="store"))
    assert ConsoleScreen._fetch_current(screen) == "new state"
    assert len(attempts) == STORE_CHANGE_RETRIES
    attempts.clear()
    screen.fetch = lambda store: (_ for _ in ()).throw(StoreChangedError("changed"))
    with pytest.raises(StoreChangedError):
        ConsoleScreen._fetch_current(screen)


async def test_the_palette_exports_the_samples_and_refuses_to_overwrite(display_store, tmp_path):
    import json

    from apa_console.tui.screens.modals import AskDirectory, ErrorModal

    target = tmp_path / "export"
    async with console(display_store, readonly=True).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await run_palette(pilot, "Export the samples")
        assert isinstance(pilot.app.screen, AskDirectory)
        await pilot.press(*str(target), "enter")
        await wait_until(pilot, lambda: (target / "test.json").exists(), what="the export")
        await settle(pilot)
        assert any("wrote 3 files" in str(note.message) for note in pilot.app._notifications)
        exported = sum(len(json.loads((target / f"{split}.json").read_text()))
                       for split in ("train", "valid", "test"))
        assert exported == sum(user["samples"] for user in views_users(display_store))
        before = (target / "train.json").read_bytes()
        await run_palette(pilot, "Export the samples")
        await pilot.press(*str(target), "enter")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ErrorModal),
                         what="the refusal")
        assert "already exists" in pilot.app.screen.message
        assert (target / "train.json").read_bytes() == before
