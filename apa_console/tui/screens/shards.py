"""Shards: size, users, live adapter (version, sha256 prefix, validation error), and for the
highlighted shard its loss curve, last retrain and most typical samples (nearest the
shard's centre)."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Sparkline, Static

from apa_console.store.document import Store
from apa_console.tui.screens.base import ConsoleScreen
from apa_console.tui.widgets.console_table import ConsoleTable, selected_key
from apa_console.units import number, plural, seconds, when
from apa_console.workflows import views


def _adapter_details(shard: dict[str, Any]) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column()
    adapter = shard["adapter"]
    if adapter is None:
        grid.add_row("adapter", "none live (train the shard, or it is empty)")
        return grid
    grid.add_row("adapter", f"{adapter['id']} (v{adapter['version']} of {shard['versions']})")
    grid.add_row("serving", Text(shard["serving"],
                                 style="" if shard["serving"] == "serving" else "yellow"))
    grid.add_row("sha256", (adapter["sha256"] or "")[:16] + "…")
    grid.add_row("retrained", when(adapter["created"]))
    grid.add_row("took", f"{seconds(adapter['wall_time_s'])} · {adapter['sample_count']} samples")
    curve = adapter["loss_curve"]
    if curve:
        grid.add_row("loss", f"{curve[0]:.3f} → {curve[-1]:.3f} ({plural(len(curve), 'step')})")
    return grid


class ShardsScreen(ConsoleScreen):
    TITLE = "Shards"
    BINDINGS = [Binding("c", "copy_hash", "Copy sha256"),
                Binding("l", "loss_chart", "Loss")]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shards: dict[str, dict[str, Any]] = {}

    def compose_body(self) -> ComposeResult:
        yield ConsoleTable(id="shards", classes="panel", cursor_type="row")
        with Horizontal(id="shard-detail"):
            with Vertical(id="shard-adapter", classes="panel"):
                yield Static(id="adapter-info")
                yield Sparkline([], id="loss-curve")
            yield ConsoleTable(id="typical", classes="panel", cursor_type="row")

    def on_mount(self) -> None:
        table = self.query_one("#shards", DataTable)
        table.border_title = "Shards"
        table.add_columns("shard", "size", "users", "adapter", "serving", "sha256",
                          "valid err")
        self.query_one("#shard-adapter").border_title = "Adapter"
        typical = self.query_one("#typical", DataTable)
        typical.border_title = "Most typical samples"
        typical.add_columns("sample", "user", "label", "dist", "target")
        table.focus()

    def fetch(self, store: Store) -> dict[str, Any]:
        return views.shard_views(store)

    def show(self, data: dict[str, Any]) -> None:
        self._shards = {str(s["shard"]): s for s in data["shards"]}
        table = self.query_one("#shards", DataTable)
        partition = data.get("partition")
        table.border_subtitle = (f"{partition['method']} · K={partition['shards']} · "
                                 f"cap {partition['cap']}" if partition else "not partitioned")
        table.set_rows([
            (str(s["shard"]), (str(s["shard"]), str(s["size"]), str(s["users"]),
                               s["adapter"]["id"] if s["adapter"] else "–",
                               s["serving"],
                               (s["adapter"]["sha256"] or "")[:10] if s["adapter"] else "–",
                               number(s["adapter"]["valid_error_mean"]) if s["adapter"] else "–"))
            for s in data["shards"]
        ])
        self._show_detail()

    def action_copy_hash(self) -> None:
        shard = self._shards.get(selected_key(self.query_one("#shards", DataTable)) or "")
        if shard and shard["adapter"] and shard["adapter"]["sha256"]:
            self.app.copy_to_clipboard(shard["adapter"]["sha256"])
            self.notify(f"copied the sha256 of {shard['adapter']['id']}", timeout=2)

    def action_loss_chart(self) -> None:
        key = selected_key(self.query_one("#shards", DataTable))
        self.app.show_chart("loss", int(key) if key is not None else None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "shards":
            self._show_detail()

    def _show_detail(self) -> None:
        shard = self._shards.get(selected_key(self.query_one("#shards", DataTable)) or "")
        info = self.query_one("#adapter-info", Static)
        sparkline = self.query_one("#loss-curve", Sparkline)
        typical = self.query_one("#typical", DataTable)
        if shard is None:
            info.update(Text("no shards yet: run `apa-console partition`", style="dim"))
            sparkline.data = []
            typical.clear()
            return
        self.query_one("#shard-adapter").border_title = f"Shard {shard['shard']} adapter"
        info.update(_adapter_details(shard))
        sparkline.data = shard["adapter"]["loss_curve"] if shard["adapter"] else []
        typical.set_rows([
            (t["sample"], (t["sample"], t["user"] or "?",
                           "Yes" if t["label"] == 1 else "No", f"{t['distance']:.3f}",
                           t["target_title"] or ""))
            for t in shard["typical"]
        ])
