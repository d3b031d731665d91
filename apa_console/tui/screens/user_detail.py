"""One user: their samples (text, label, shard), their forget-request history, and the
actions on them (score, forget)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from apa_console.store.document import Store
from apa_console.tui.formatting import yes_no
from apa_console.tui.screens.base import ConsoleScreen
from apa_console.tui.widgets.console_table import ConsoleTable, selected_key
from apa_console.units import shard_list, split_counts, terminal_safe, when
from apa_console.workflows import views


class UserScreen(ConsoleScreen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("s", "score", "Score"),
        Binding("f", "forget", "Forget"),
    ]

    def __init__(self, user_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.user_id = user_id
        self.title = f"User {terminal_safe(user_id)}"
        self._samples: dict[str, dict[str, Any]] = {}
        self.present = True

    def compose_body(self) -> ComposeResult:
        yield Static(id="user-summary", classes="panel")
        yield ConsoleTable(id="user-samples", classes="panel", zebra_stripes=True)
        yield Static(id="sample-text", classes="panel")
        yield ConsoleTable(id="user-requests", classes="panel", cursor_type="row")

    def on_mount(self) -> None:
        samples = self.query_one("#user-samples", DataTable)
        samples.border_title = "Samples"
        samples.add_columns("sample", "split", "label", "shard", "target")
        self.query_one("#sample-text").border_title = "Sample text"
        requests = self.query_one("#user-requests", DataTable)
        requests.border_title = "Forget requests"
        requests.add_columns("request", "status", "shards", "removed tr/va/te", "created",
                             "finished")
        samples.focus()

    def fetch(self, store: Store) -> dict[str, Any]:
        return views.user_view(store, self.user_id)

    def show(self, data: dict[str, Any]) -> None:
        self.present = data["present"]
        counts = data["counts"]
        summary = Text()
        summary.append(f"{terminal_safe(self.user_id)}  ", style="bold")
        if data["present"]:
            summary.append(f"train {counts['train']} · valid {counts['valid']} · "
                           f"test {counts['test']} · shards {shard_list(data['shards'])}")
        else:
            summary.append("no data left in the store (forgotten)", style="green")
        self.query_one("#user-summary", Static).update(summary)
        self._samples = {s["id"]: s for s in data["samples"]}
        self.query_one("#user-samples", ConsoleTable).set_rows([
            (s["id"], (s["id"], s["split"], yes_no(s["label"]),
                       "–" if s["shard"] is None else str(s["shard"]), s["target_title"]))
            for s in data["samples"]
        ])
        self.query_one("#user-requests", ConsoleTable).set_rows([
            (r["request"], (r["request"], r["status"], shard_list(r.get("shards") or []),
                            split_counts(r.get("removed")), when(r.get("created")),
                            when(r.get("finished"))))
            for r in data["requests"]
        ])
        self._show_sample_text()
        self.refresh_bindings()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "user-samples":
            self._show_sample_text()

    def _show_sample_text(self) -> None:
        key = selected_key(self.query_one("#user-samples", DataTable))
        sample = self._samples.get(key or "")
        self.query_one("#sample-text", Static).update(
            Text(sample["input"]) if sample else Text("no samples", style="dim"))

    def action_score(self) -> None:
        self.app.score(user=self.user_id)

    def action_forget(self) -> None:
        self.app.forget(self.user_id)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "forget":
            return not self.app.readonly and self.present
        if action == "score":
            return self.present
        return True

