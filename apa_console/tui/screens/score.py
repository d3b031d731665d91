"""Score a user's test samples (or the whole test split) with APA: P(Yes) per sample beside
its label, each sample's weight per shard adapter (column w2 is shard 2's), and the AUC
with the number of samples behind it, flagged when too few for the AUC to mean much.
Scoring runs in a worker; leaving the screen cancels it."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from apa_console.tui import operations
from apa_console.tui.formatting import hbar, weight_column, yes_no
from apa_console.tui.jobs import new_tracker, run_tracked
from apa_console.tui.tracker import DONE, ProgressTracker
from apa_console.tui.widgets.console_table import ConsoleTable, selected_key
from apa_console.tui.widgets.job_progress import JobProgress
from apa_console.tui.widgets.job_status import JobStatus
from apa_console.units import MIN_AUC_SAMPLES, auc_summary, plural, terminal_safe

BASE_COLUMNS = ("sample", "user", "label", "P(Yes)", "")


def weight_cells(weights: dict[str, float], adapters: list[str]) -> list[Text]:
    """One cell per adapter, in the table's column order; the sample's largest in bold."""
    top = max(weights.values(), default=None)
    return [Text(f"{weights.get(a, 0.0):.2f}",
                 style="bold magenta" if weights.get(a) == top else "magenta")
            for a in adapters]


def weight_bars(sample: dict[str, Any]) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column(justify="right")
    for adapter, value in (sample.get("weights") or {}).items():
        grid.add_row(weight_column(adapter), adapter, Text(hbar(value, 1.0, 24), style="magenta"),
                     f"{value:.3f}")
    return grid


def summary_text(report: dict[str, Any]) -> Text:
    """What was scored (whose samples, which split), the AUC with its sample count (in
    yellow when too few samples or one label make it no finding), and the weighting."""
    rows = report["rows"]
    split = report.get("split") or "test"
    whose = f"user {report['user']}'s " if report.get("user") else ""
    positives = sum(1 for row in rows if row["label"])
    auc = auc_summary(report["auc"], len(rows), positives, split)
    weak = report["auc"] is None or len(rows) < MIN_AUC_SAMPLES
    text = Text()
    text.append(f"{report['method']} on {whose}{split} split", style="bold")
    text.append(" · ")
    text.append(("⚠ " if weak else "") + auc, style="yellow" if weak else "")
    text.append(f" · {report['samples_per_s']:.1f} samples/s · {report['strategy']} weights"
                f" over {plural(len(report['adapters']), 'shard adapter')} (w0 = shard 0's)")
    return text


class ScoreScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("r", "rescore", "Score again"),
    ]

    def __init__(self, user: str | None = None, report: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.user = user
        self.title = f"Score user {terminal_safe(user)}" if user else "Score test split"
        self.report = report
        self.tracker: ProgressTracker | None = None
        self._rows: dict[str, dict[str, Any]] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="score-summary", classes="panel")
        yield JobProgress(id="score-progress", classes="panel")
        yield ConsoleTable(id="scores", classes="panel", cursor_type="row", zebra_stripes=True)
        yield Static(id="weights", classes="panel")
        yield JobStatus()
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#scores", DataTable)
        table.border_title = "P(Yes) per sample"
        table.add_columns(*BASE_COLUMNS)
        self.query_one("#weights").border_title = "Adapter weights"
        table.focus()
        if self.report is not None:
            self.show_report(self.report)
        else:
            self.action_rescore()

    def action_rescore(self) -> None:
        if self.tracker is not None and self.tracker.running:
            return
        self.tracker = new_tracker(self, self.title, on_finish=self._finished)
        self.query_one(JobProgress).follow(self.tracker)
        self.query_one("#score-summary", Static).update(Text("scoring…", style="dim"))
        run_tracked(self, self.tracker,
                    operations.score(self.app.store, self.app.models, self.user,
                                     record=not self.app.readonly))

    def _finished(self, tracker: ProgressTracker) -> None:
        if not self.is_attached:
            return
        if tracker.state == DONE:
            self.query_one(JobProgress).follow(None)
            self.show_report(tracker.result)
            if tracker.result.get("recorded"):
                self.notify("this AUC is now a point on the AUC chart (5 Charts)", timeout=4)
        else:
            self.query_one("#score-summary", Static).update(
                Text(f"scoring {tracker.state}: {tracker.error}", style="yellow"))
            if tracker.state != "cancelled":
                self.app.show_error(tracker.error or "scoring failed")

    def show_report(self, report: dict[str, Any]) -> None:
        self.report = report
        self.query_one("#score-summary", Static).update(summary_text(report))
        self._rows = {row["sample"]: row for row in report["rows"]}
        adapters = list(report["adapters"])
        table = self.query_one("#scores", ConsoleTable)
        table.clear(columns=True)
        table.add_columns(*BASE_COLUMNS, *(weight_column(a) for a in adapters))
        table.set_rows([
            (row["sample"], (row["sample"], row["user"], yes_no(row["label"]),
                             f"{row['p_yes']:.3f}",
                             Text(hbar(row["p_yes"], 1.0, 10), style="cyan"),
                             *weight_cells(row.get("weights") or {}, adapters)))
            for row in report["rows"]])
        self._show_weights()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_weights()

    def _show_weights(self) -> None:
        row = self._rows.get(selected_key(self.query_one("#scores", DataTable)) or "")
        self.query_one("#weights", Static).update(
            weight_bars(row) if row else Text("no samples scored", style="dim"))
        if row:
            self.query_one("#weights").border_title = f"Adapter weights · {row['sample']}"

    def action_back(self) -> None:
        self.app.pop_screen()

    def on_unmount(self) -> None:
        if self.tracker is not None and self.tracker.running:
            self.tracker.cancel.cancel()
