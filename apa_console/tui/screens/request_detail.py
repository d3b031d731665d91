"""One forget request: its state, the receipt (each shard's adapter before → after with
hashes), and the audit entries about it. Opened with Enter on the Requests screen."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from apa_console.store.document import Store
from apa_console.tui.screens.base import ConsoleScreen
from apa_console.tui.widgets.console_table import ConsoleTable
from apa_console.units import shard_list, split_counts, terminal_safe, when
from apa_console.unlearning import describe
from apa_console.workflows import views


def summary_table(detail: dict[str, Any]) -> Table:
    summary = detail["summary"]
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column()
    grid.add_row("state", Text(terminal_safe(summary["state"] or summary["status"])))
    grid.add_row("subject", Text(terminal_safe(summary["subject"])))
    grid.add_row("shards", shard_list(summary["shards"]))
    grid.add_row("removed", f"{split_counts(summary['removed'])} (train/valid/test)")
    grid.add_row("created", when(summary["created"]))
    grid.add_row("finished", when(summary["finished"]))
    return grid


def receipt_text(detail: dict[str, Any]) -> Text:
    receipt = detail["receipt"]
    if not receipt:
        return Text("no receipt yet: a receipt is written when the request finishes",
                    style="dim")
    return Text("\n".join(terminal_safe(line) for line in describe.receipt_lines(receipt)))


class RequestScreen(ConsoleScreen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, request_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.request_id = request_id
        self.title = f"Request {terminal_safe(request_id)}"

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="request-body"):
            yield Static(id="request-summary", classes="panel")
            yield Static(id="request-receipt", classes="panel")
            yield ConsoleTable(id="request-audit", classes="panel", cursor_type="row")

    def on_mount(self) -> None:
        self.query_one("#request-summary").border_title = "Request"
        self.query_one("#request-receipt").border_title = "Receipt"
        table = self.query_one("#request-audit", DataTable)
        table.border_title = "Audit entries"
        table.add_columns("seq", "time", "event", "hash")

    def fetch(self, store: Store) -> dict[str, Any]:
        return views.request_detail(store, self.request_id)

    def show(self, detail: dict[str, Any]) -> None:
        self.query_one("#request-summary", Static).update(summary_table(detail))
        self.query_one("#request-receipt", Static).update(receipt_text(detail))
        self.query_one("#request-audit", ConsoleTable).set_rows([
            (str(e["seq"]), (str(e["seq"]), when(e["time"]), e["event"], e["hash"][:16]))
            for e in detail["audit"]
        ])
