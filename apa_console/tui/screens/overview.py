"""Overview: dataset and model, partition and shard balance, live adapters, open requests,
and the last evaluation."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Static

from apa_console.store.document import Store
from apa_console.tui.screens.base import ConsoleScreen
from apa_console.tui.widgets.balance_chart import BalanceChart
from apa_console.tui.widgets.console_table import ConsoleTable
from apa_console.units import number
from apa_console.workflows import views


def _describe_requests(open_requests: list[dict], counts: dict[str, int]) -> Text:
    if not counts:
        return Text("none yet", style="dim")
    text = Text()
    if open_requests:
        ids = ", ".join(r["id"] for r in open_requests[:3])
        more = "…" if len(open_requests) > 3 else ""
        text.append(f"{len(open_requests)} open ({ids}{more})", style="yellow")
    else:
        text.append("none open", style="green")
    done = counts.get("done", 0)
    if done:
        text.append(f" · {done} done")
    return text


def _describe_store(data: dict[str, Any]) -> Table:
    status = data["status"]
    dataset = status.get("dataset") or {}
    model = status.get("model") or {}
    partition = status.get("partition") or {}
    aggregation = data.get("aggregation") or {}
    samples = status["samples"]
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True, min_width=8)
    grid.add_column(no_wrap=True, overflow="ellipsis")
    grid.add_row("dataset", f"{dataset.get('name', '–')} ({dataset.get('domain', '?')}) · "
                            f"{status['users']:,} users" if dataset
                 else "– (run `apa-console ingest`)")
    grid.add_row("samples", f"{samples['train']:,} train · {samples['valid']:,} valid · "
                            f"{samples['test']:,} test")
    params = model.get("parameters")
    grid.add_row("model", (f"{model.get('name', '?')}"
                           + (f" · {params / 1e6:.1f}M params" if params else ""))
                 if model else "– (none recorded yet)")
    if partition:
        method = f"{partition.get('method')} K={partition.get('shards')} cap {partition.get('cap')}"
        if aggregation:
            method += f" · τ={aggregation.get('tau'):g} n={aggregation.get('neighbours')}"
        grid.add_row("shards", method)
    else:
        grid.add_row("shards", "– (run `apa-console partition`)")
    grid.add_row("requests", _describe_requests(data["open_requests"],
                                                status.get("requests", {})))
    for withdrawn in status.get("withdrawn_adapters", []):
        grid.add_row(f"shard {withdrawn['shard']}",
                     Text(f"adapter withdrawn, retrain pending ({withdrawn['request']})",
                          style="yellow"))
    return grid


class OverviewScreen(ConsoleScreen):
    TITLE = "Overview"
    BINDINGS = [
        Binding("s", "app.score_test", "Score test split"),
    ]

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="overview-top"):
            yield Static(id="store-summary", classes="panel")
            yield BalanceChart(id="balance", classes="panel")
        with Horizontal(id="overview-bottom"):
            yield ConsoleTable(id="adapters", classes="panel", cursor_type="row")
            yield ConsoleTable(id="evaluation", classes="panel", cursor_type="row")

    def on_mount(self) -> None:
        self.query_one("#store-summary").border_title = "Dataset & model"
        self.query_one("#balance").border_title = "Shard balance"
        adapters = self.query_one("#adapters", DataTable)
        adapters.border_title = "Adapters"
        adapters.add_columns("adapter", "valid err", "sha256")
        evaluation = self.query_one("#evaluation", DataTable)
        evaluation.border_title = "Last evaluation"
        evaluation.add_columns("method", "AUC", "Δ", "samples/s")

    def fetch(self, store: Store) -> dict[str, Any]:
        return views.overview(store)

    def show(self, data: dict[str, Any]) -> None:
        self.query_one("#store-summary", Static).update(_describe_store(data))
        chart = self.query_one(BalanceChart)
        chart.show(data["shards"])
        partition = data["shards"].get("partition")
        chart.border_title = (f"Shard balance · {partition['method']} K={partition['shards']}"
                              if partition else "Shard balance")
        self.query_one("#adapters", ConsoleTable).set_rows([
            (a["id"], (a["id"], number(a["valid_error_mean"]), (a["sha256"] or "")[:8]))
            for a in data["adapters"]
        ])
        evaluation = data.get("evaluation") or {}
        table = self.query_one("#evaluation", DataTable)
        table.set_rows([
            (row["method"], (row["method"], number(row.get("auc")),
                             _signed(row.get("delta_vs_retraining")),
                             number(row.get("samples_per_s"), 1)))
            for row in evaluation.get("rows", [])
        ])
        table.border_title = (f"Last evaluation · {evaluation.get('split')} "
                              f"({evaluation.get('samples')})" if evaluation else "Last evaluation")
        sub_aucs = [r["sub_adapter_auc"] for r in evaluation.get("rows", [])
                    if r.get("sub_adapter_auc") is not None]
        table.border_subtitle = (f"mean sub-adapter AUC {sub_aucs[0]:.3f}" if sub_aucs
                                 else "" if evaluation else "none yet: `apa-console compare`")


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.3f}"
