"""Charts: where a table hides the story. One tab per chart — each shard adapter's loss
curve, the users × shards map (the forget cost of each user), the served recommender's AUC
after each forget, each forget's time against a full retrain, and each adapter's
validation error. `[` and `]` step through the tabs."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from apa_console.store.document import Store
from apa_console.tui.screens.base import ConsoleScreen
from apa_console.tui.widgets.bar_charts import ForgetCostChart, ValidErrorChart
from apa_console.tui.widgets.console_table import ConsoleTable, selected_key
from apa_console.tui.widgets.plots import AucChart, LossChart
from apa_console.tui.widgets.user_shard_map import UserShardMap, spread_summary
from apa_console.workflows import chart_views

# (tab id, tab label, what the palette says it shows)
CHARTS = (
    ("loss", "Loss", "each shard adapter's training loss per step, epochs marked"),
    ("map", "Users×shards", "which users span several shards (what forgetting them costs)"),
    ("auc", "AUC", "the served recommender's AUC after each forget"),
    ("cost", "Forget cost", "each forget's time against retraining every shard"),
    ("error", "Valid error", "each adapter's mean validation error"),
)


class ChartsScreen(ConsoleScreen):
    TITLE = "Charts"
    BINDINGS = [
        # one footer entry for the pair keeps Quit whole at 80 columns
        Binding("left_square_bracket", "step_chart(-1)", "Previous chart", show=False),
        Binding("right_square_bracket", "step_chart(1)", "Next chart"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._curves: dict[str, dict[str, Any]] = {}
        self._wanted_shard: str | None = None  # asked for before the data arrived

    def compose_body(self) -> ComposeResult:
        with TabbedContent(id="charts"):
            with TabPane("Loss", id="loss"), Horizontal():
                yield ConsoleTable(id="loss-shards", classes="panel", cursor_type="row")
                yield LossChart(id="loss-chart", classes="panel")
            with TabPane("Users×shards", id="map"):
                yield Static(id="map-summary", classes="hint")
                with VerticalScroll(id="map-scroll", classes="panel"):
                    yield UserShardMap(id="user-shards")
            with TabPane("AUC", id="auc"):
                yield AucChart(id="auc-chart", classes="panel")
            with TabPane("Forget cost", id="cost"), VerticalScroll(classes="panel"):
                yield ForgetCostChart(id="cost-chart")
            with TabPane("Valid error", id="error"), VerticalScroll(classes="panel"):
                yield ValidErrorChart(id="error-chart")

    def on_mount(self) -> None:
        table = self.query_one("#loss-shards", DataTable)
        table.border_title = "Shards"
        table.add_columns("shard", "adapter", "steps", "last")
        self.query_one("#map-scroll").border_title = "Training samples per user and shard"
        table.focus()

    def fetch(self, store: Store) -> dict[str, Any]:
        return chart_views.charts_view(store)

    def show(self, data: dict[str, Any]) -> None:
        self._curves = {str(c["shard"]): c for c in data["loss"]}
        self.query_one("#loss-shards", ConsoleTable).set_rows([
            (str(c["shard"]), (str(c["shard"]), c["adapter"] or "–", str(len(c["curve"])),
                               f"{c['curve'][-1]:.3f}" if c["curve"] else "–"))
            for c in data["loss"]])
        self._highlight_wanted_shard()
        self._show_loss()
        summary = spread_summary(data["user_shards"])
        self.query_one("#map-summary", Static).update(Text(summary))
        self.query_one("#map-summary").display = bool(summary)
        self.query_one(UserShardMap).show(data["user_shards"])
        self.query_one(AucChart).show(data["auc"])
        self.query_one(ForgetCostChart).show(data["forget_costs"])
        self.query_one(ValidErrorChart).show(data["valid_errors"])

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "loss-shards":
            self._show_loss()

    def _show_loss(self) -> None:
        key = selected_key(self.query_one("#loss-shards", DataTable))
        self.query_one(LossChart).show(self._curves.get(key or ""))

    # -- choosing a chart --------------------------------------------------------------------

    def show_chart(self, chart: str, shard: int | None = None) -> None:
        """Open one tab; for the loss chart, optionally with a shard's row highlighted."""
        self.query_one(TabbedContent).active = chart
        if shard is not None:
            self._wanted_shard = str(shard)
            self._highlight_wanted_shard()

    def _highlight_wanted_shard(self) -> None:
        table = self.query_one("#loss-shards", ConsoleTable)
        keys = [row.key.value for row in table.ordered_rows]
        if self._wanted_shard in keys:
            table.move_cursor(row=keys.index(self._wanted_shard))
            self._wanted_shard = None
            table.focus()

    def _search_target(self) -> ConsoleTable | None:
        # `/` searches the loss chart's shard table only while it is in view
        if self.query_one(TabbedContent).active != "loss":
            return None
        return super()._search_target()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        # keys act on the chart in view: the loss table, or the scrolling map and bars
        pane = event.pane
        focusable = [w for w in pane.query("ConsoleTable, VerticalScroll") if w.focusable]
        if focusable:
            focusable[0].focus()

    def action_step_chart(self, step: int) -> None:
        ids = [chart for chart, _, _ in CHARTS]
        current = self.query_one(TabbedContent).active
        position = ids.index(current) if current in ids else 0
        self.show_chart(ids[(position + step) % len(ids)])
