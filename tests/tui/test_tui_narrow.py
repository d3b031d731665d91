"""At 80×24: a table's free-text column ends in "…" at the border instead of being cut
mid-word, and the audit log, newest first, follows new entries while its cursor is on top."""

from __future__ import annotations

import pytest
from display_store import PENDING_USER
from pilot_helpers import console, row_keys, settle, wait_until

from apa_console.tui.widgets.console_table import ConsoleTable
from apa_console.unlearning import requests as requests_core

pytestmark = pytest.mark.anyio

NARROW = (80, 24)


def shown_lines(table: ConsoleTable) -> list[str]:
    return [table.render_line(y).text for y in range(table.size.height)]


async def test_the_last_column_ends_in_an_ellipsis_where_it_does_not_fit(display_store):
    async with console(display_store).run_test(size=NARROW) as pilot:
        await pilot.press("4")
        await settle(pilot)
        audit = pilot.app.screen.query_one("#audit", ConsoleTable)
        details = audit.ordered_columns[-1]
        assert not details.auto_width  # narrowed to the room left
        lines = shown_lines(audit)
        assert any(line.rstrip().endswith("…") for line in lines), lines
        assert all(len(line) <= audit.size.width for line in lines)
        assert "method=apa · s…" in "\n".join(lines)

    async with console(display_store).run_test(size=(160, 40)) as pilot:
        await pilot.press("4")
        await settle(pilot)
        audit = pilot.app.screen.query_one("#audit", ConsoleTable)
        assert audit.ordered_columns[-1].auto_width  # room enough: nothing shortened
        assert not any("…" in line for line in shown_lines(audit))


async def test_the_audit_log_follows_new_entries_while_its_cursor_is_on_top(display_store):
    async with console(display_store).run_test(size=NARROW) as pilot:
        await pilot.press("4")
        await settle(pilot)
        audit = pilot.app.screen.query_one("#audit", ConsoleTable)
        assert row_keys(pilot, "#audit") == ["5", "4", "3", "2", "1"]
        assert audit.cursor_row == 0
        requests_core.cancel(display_store, "r0002")  # another writer appends entry 6
        await wait_until(pilot, lambda: row_keys(pilot, "#audit")[0] == "6",
                         what="the new entry")
        assert audit.cursor_row == 0 and audit.scroll_y == 0  # the newest is in view

        audit.focus()
        await pilot.press("down", "down")  # the operator reads entry 4: it stays put
        assert row_keys(pilot, "#audit")[audit.cursor_row] == "4"
        requests_core.submit(display_store, requests_core.Targets(users=[PENDING_USER]))
        await wait_until(pilot, lambda: row_keys(pilot, "#audit")[0] == "7",
                         what="the next entry")
        assert row_keys(pilot, "#audit")[audit.cursor_row] == "4"


async def test_a_long_log_fits_beside_its_scrollbar(display_store):
    for _ in range(12):  # two audit entries each: the log outgrows its panel
        request = requests_core.submit(display_store, requests_core.Targets(users=["user0"]))
        requests_core.cancel(display_store, request["request"]["id"])
    async with console(display_store).run_test(size=NARROW) as pilot:
        await pilot.press("4")
        await settle(pilot)
        audit = pilot.app.screen.query_one("#audit", ConsoleTable)
        await pilot.pause()
        assert audit.row_count > audit.size.height  # it scrolls vertically
        assert audit.virtual_size.width <= audit.scrollable_content_region.width  # not across
        assert not audit.ordered_columns[-1].auto_width  # the details were narrowed to fit
