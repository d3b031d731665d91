"""Requests & audit: the forget-request queue, and the hash-chained audit log with the
result of verifying it (chain links and live adapter weights)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from apa_console.store.document import Store
from apa_console.tui.screens.base import ConsoleScreen
from apa_console.tui.screens.request_detail import RequestScreen
from apa_console.tui.widgets.console_table import ConsoleTable, selected_key
from apa_console.units import shard_list, split_counts, when
from apa_console.workflows import views

STATUS_STYLE = {"done": "green", "pending": "yellow", "running": "cyan", "cancelled": "dim"}


def chain_status(verification: dict[str, Any]) -> Text:
    adapters = verification.get("adapters", [])
    intact = sum(1 for a in adapters if a["ok"])
    text = Text()
    if verification["ok"]:
        text.append("✔ chain intact", style="bold green")
    else:
        text.append("✘ verification failed", style="bold red")
    text.append(f" · {verification['entries']} entries · head {verification['head'][:12]}… · "
                f"adapter weights {intact}/{len(adapters)} match")
    for problem in verification.get("problems", [])[:3]:
        text.append(f"\n  {problem}", style="red")
    return text


class RequestsScreen(ConsoleScreen):
    TITLE = "Requests & audit"
    BINDINGS = [
        Binding("a", "apply_pending", "Apply"),
        Binding("x", "withdraw", "Withdraw"),
        Binding("v", "verify", "Verify"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.open_requests = 0
        self._requests: dict[str, dict[str, Any]] = {}

    def compose_body(self) -> ComposeResult:
        yield ConsoleTable(id="requests", classes="panel", cursor_type="row")
        yield Static(id="chain", classes="panel")
        yield ConsoleTable(id="audit", classes="panel", cursor_type="row", follow_top=True)

    def on_mount(self) -> None:
        requests = self.query_one("#requests", DataTable)
        requests.border_title = "Forget requests"
        requests.add_columns("request", "status", "subject", "shards", "removed tr/va/te",
                             "finished")
        self.query_one("#chain").border_title = "Chain status"
        audit = self.query_one("#audit", DataTable)
        audit.border_title = "Audit log"
        audit.add_columns("seq", "time", "event", "hash", "link", "details")
        requests.focus()

    def fetch(self, store: Store) -> dict[str, Any]:
        return {"requests": views.requests_view(store), "audit": views.audit_view(store)}

    def show(self, data: dict[str, Any]) -> None:
        requests = data["requests"]
        self._requests = {r["id"]: r for r in requests}
        self.open_requests = sum(1 for r in requests if r["open"])
        table = self.query_one("#requests", DataTable)
        table.set_rows([
            (r["id"], (r["id"], Text(r["status"], style=STATUS_STYLE.get(r["status"], "")),
                       r["subject"], shard_list(r["shards"]), split_counts(r["removed"]),
                       when(r["finished"])))
            for r in requests
        ])
        states = "; ".join(r["state"] for r in requests if r["open"] and r["state"])
        table.border_subtitle = (f"{len(requests)} total · {self.open_requests} open"
                                 + (f" · {states}" if states else ""))
        audit = data["audit"]
        self.query_one("#chain", Static).update(chain_status(audit["verification"]))
        self.query_one("#audit", ConsoleTable).set_rows([
            (str(e["seq"]), (str(e["seq"]), when(e["time"]), e["event"], e["hash"][:12],
                             Text("✔", style="green") if e["linked"] else Text("✘", style="red"),
                             e["summary"]))
            for e in reversed(audit["entries"])  # newest first: new entries appear on top
        ])
        self.refresh_bindings()

    def _selected(self) -> dict[str, Any] | None:
        return self._requests.get(selected_key(self.query_one("#requests", DataTable)) or "")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "requests":
            self.action_open_request()

    def action_open_request(self) -> None:
        request = self._selected()
        if request is not None:
            self.app.push_screen(RequestScreen(request["id"]))

    def action_withdraw(self) -> None:
        request = self._selected()
        if request is None or not _withdrawable(request):
            self.notify("only a queued request that removed nothing yet can be withdrawn",
                        severity="warning")
            return
        self.app.withdraw_request(request["id"])

    def action_verify(self) -> None:
        self.reload()
        self.notify("verifying the audit chain and adapter weights…", timeout=2)

    def action_apply_pending(self) -> None:
        self.app.apply_pending()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "apply_pending":
            if self.app.readonly:
                return False
            return True if self.open_requests else None
        if action == "withdraw":
            if self.app.readonly:
                return False
            request = self._selected()
            return True if request is not None and _withdrawable(request) else None
        return True

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "requests":
            self.refresh_bindings()


def _withdrawable(request: dict[str, Any]) -> bool:
    return request["open"] and request.get("phase") != "purged"
