"""Marking users on the Users screen and forgetting them together: marks outlast a sort and
a search, `f` plans for every marked user, the confirmation asks for the count, and the
forget is one request naming all of them (the same core call as `forget --user A --user B`)."""

from __future__ import annotations

import pytest
from display_store import PENDING_USER
from pilot_helpers import column, console, footer_actions, row_keys, settle, wait_until

from apa_console.tui.screens.forget import ForgetScreen
from apa_console.tui.screens.modals import ErrorModal, TypeToConfirm
from apa_console.tui.screens.users import UsersScreen
from apa_console.tui.widgets.console_table import ConsoleTable
from apa_console.unlearning import requests as unlearning_requests

pytestmark = pytest.mark.anyio


async def mark(pilot, *users: str) -> None:
    """Move the cursor onto each user (in the order shown now) and press space."""
    for user in users:
        table = pilot.app.screen.query_one("#users", ConsoleTable)
        table.move_cursor(row=row_keys(pilot, "#users").index(user), animate=False)
        await pilot.press("space")
        await pilot.pause()


async def test_marks_show_in_the_row_and_survive_sort_and_search(display_store):
    async with console(display_store).run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        await mark(pilot, "user1", "user3")
        table = pilot.app.screen.query_one("#users", ConsoleTable)
        assert table.marked_keys == ["user1", "user3"]
        shown = dict(zip(row_keys(pilot, "#users"), column(pilot, "#users", 0)))
        assert shown["user1"] == "● user1" and shown["user3"] == "● user3"
        assert shown["user2"] == "  user2"
        assert "2 marked" in str(table.border_title)
        assert "unmark" in str(pilot.app.screen.query_one("#users-count").content)

        await pilot.press("O")  # reverse order: the marks go with their users
        await pilot.pause()
        assert row_keys(pilot, "#users")[0] == "user5"
        shown = dict(zip(row_keys(pilot, "#users"), column(pilot, "#users", 0)))
        assert shown["user1"] == "● user1" and shown["user5"] == "  user5"

        await pilot.press("slash", *"user3", "enter")  # search hides user1, keeps its mark
        await pilot.pause()
        assert row_keys(pilot, "#users") == ["user3"]
        assert table.marked_keys == ["user1", "user3"]
        await pilot.press("escape")  # clears the search
        await pilot.pause()
        assert len(row_keys(pilot, "#users")) == 6 and table.marked_keys == ["user1", "user3"]

        await mark(pilot, "user3")  # space again unmarks
        assert table.marked_keys == ["user1"]
        await pilot.press("escape")  # no search left: escape drops every mark
        await pilot.pause()
        assert table.marked_keys == [] and "marked" not in str(table.border_title)


async def test_f_forgets_every_marked_user_in_one_request(display_store):
    async with console(display_store).run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        await mark(pilot, "user2", "user4")
        await pilot.press("f")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, ForgetScreen) and screen.user_ids == ["user2", "user4"]
        assert screen.title == "Forget 2 users"
        assert screen.plan["users"] == ["user2", "user4"]
        # user2 and user4 sit in shards 2 and 1; the open request r0002 (user5) adds shard 2
        assert row_keys(pilot, "#plan-shards") == ["1", "2"]

        await pilot.press("f")
        await pilot.pause()
        modal = pilot.app.screen
        assert isinstance(modal, TypeToConfirm) and modal.expected == "2 users"
        assert "user user2, user user4" in modal.consequence
        await pilot.press(*"user2", "enter")  # one id is not the count: nothing happens
        assert isinstance(pilot.app.screen, TypeToConfirm)
        await pilot.press(*["backspace"] * 5, *"2 users", "enter")
        await settle(pilot)
        # the display store has no model: the request is recorded, then the job fails
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ErrorModal),
                         what="the error modal")
        assert pilot.app.job.title == "forget 2 users"
    pending = [r for r in unlearning_requests.list_requests(display_store)
               if r["status"] == "pending"]
    assert [r["targets"]["users"] for r in pending] == [[PENDING_USER], ["user2", "user4"]]


async def test_without_marks_f_forgets_the_highlighted_user(display_store):
    async with console(display_store).run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("down", "f")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ForgetScreen)
        assert pilot.app.screen.user_ids == ["user1"]
        await pilot.press("f")
        await pilot.pause()
        assert pilot.app.screen.expected == "user1"


async def test_readonly_offers_no_marks(display_store):
    async with console(display_store, readonly=True).run_test() as pilot:
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("space")
        await pilot.pause()
        assert pilot.app.screen.query_one("#users", ConsoleTable).marked == set()
        assert "mark" not in footer_actions(pilot)
        assert isinstance(pilot.app.screen, UsersScreen)
