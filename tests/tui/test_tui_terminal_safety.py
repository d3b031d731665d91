"""The console shows dataset ids literally: markup in an id is text (and no crash), control
characters and bidi overrides appear as escapes."""

from __future__ import annotations

import pytest
from pilot_helpers import column, console, row_keys, settle, text_of
from test_terminal_safety import HOSTILE_USER, _hostile_store
from textual.widgets import Static

from apa_console.store.document import Store
from apa_console.tui.screens.forget import ForgetScreen
from apa_console.tui.screens.modals import TypeToConfirm
from apa_console.tui.screens.users import UsersScreen

pytestmark = pytest.mark.anyio


async def test_users_table_forget_plan_and_confirmation_show_a_hostile_id_as_escaped_text(
    tmp_path,
):
    store = Store.open(_hostile_store(tmp_path))
    async with console(store).run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        assert isinstance(pilot.app.screen, UsersScreen)
        keys = row_keys(pilot, "#users")
        assert HOSTILE_USER in keys  # the key stays the exact id
        shown = column(pilot, "#users", 0)
        hostile = next(cell for cell in shown if cell.lstrip().startswith("u\\x1b"))
        assert "[bold red]x[/]\\u202eevil\\nforged" in hostile
        assert not any("\x1b" in cell or "\u202e" in cell for cell in shown)

        for _ in range(keys.index(HOSTILE_USER)):
            await pilot.press("down")
        await pilot.press("f")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ForgetScreen)
        plan = text_of(pilot, "#plan-summary")
        assert "Forget user u\\x1b]0;owned" in plan and "\x1b" not in plan
        assert "\x1b" not in pilot.app.screen.title
        await pilot.press("f")
        await settle(pilot)
        dialog = pilot.app.screen
        assert isinstance(dialog, TypeToConfirm)
        text = "".join(str(static.render()) for static in dialog.query(Static))
        assert "\\u202eevil" in text and "\u202e" not in text and "\x1b" not in text
