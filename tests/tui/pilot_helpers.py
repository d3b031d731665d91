"""Waiting for the console in Pilot tests: data loads and jobs run in thread workers."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable

from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from apa_console.tui.app import ApaConsoleApp


def console(store, **kwargs) -> ApaConsoleApp:
    # a fast store poll keeps the cross-process refresh test short
    return ApaConsoleApp(store, device="cpu", poll_s=0.2, **kwargs)


async def settle(pilot: Pilot) -> None:
    """Let every worker finish and the UI apply what they delivered."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


async def wait_until(pilot: Pilot, condition: Callable[[], bool], timeout: float = 30.0,
                     what: str = "condition") -> None:
    """Poll while the app keeps running (unlike settle, this does not wait for a job)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)
        await pilot.pause()


def row_keys(pilot: Pilot, selector: str) -> list[str]:
    table = pilot.app.screen.query_one(selector, DataTable)
    return [row.key.value for row in table.ordered_rows]


def column(pilot: Pilot, selector: str, index: int) -> list[str]:
    table = pilot.app.screen.query_one(selector, DataTable)
    return [str(table.get_row(row.key)[index]) for row in table.ordered_rows]


def footer_actions(pilot: Pilot) -> set[str]:
    """Actions the footer would offer now (bindings that are shown and enabled)."""
    screen = pilot.app.screen
    return {
        binding.action
        for _, binding, enabled, _ in screen.active_bindings.values()
        if binding.show and enabled
    }


def text_of(pilot: Pilot, selector: str) -> str:
    """The plain text a Static on the current screen shows (whatever renderable it holds)."""
    content = pilot.app.screen.query_one(selector, Static).content
    if isinstance(content, str):
        return content
    console = Console(width=200, record=True, file=io.StringIO(), color_system=None)
    console.print(content)
    return console.export_text()


async def run_palette(pilot: Pilot, text: str) -> None:
    """Open the command palette, type `text`, wait for its hits and run the first."""
    from textual.command import CommandList

    await pilot.press("ctrl+p")
    await pilot.pause()
    await pilot.press(*text)
    await wait_until(pilot, lambda: pilot.app.screen.query_one(CommandList).option_count,
                     what="palette hits")
    await pilot.pause(0.3)
    await pilot.press("enter")
    await settle(pilot)
