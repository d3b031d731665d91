"""The background job (a forget or an apply) in full: progress per shard, and cancel."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from apa_console.tui.widgets.job_progress import JobProgress


class JobScreen(Screen):
    TITLE = "Background job"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("c", "app.cancel_job", "Cancel retrain"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield JobProgress(self.app.job, id="job-progress", classes="panel")
        yield Static("Esc returns to the screen you came from; the job keeps running.",
                     classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.app.progress_signal.subscribe(self, lambda tracker: self.refresh_bindings())
