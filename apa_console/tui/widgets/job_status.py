"""One line, on every screen, about the console's background job (a forget or an apply):
what it is doing now, or how it ended. Hidden when there has been no job."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from apa_console.progress import OVERALL_TASK
from apa_console.progress_rows import activity, progress_rows
from apa_console.tui.tracker import DONE, ProgressTracker
from apa_console.units import seconds


def status_line(tracker: ProgressTracker) -> Text:
    view = tracker.view()
    if view.running:
        rows = progress_rows(view.tasks)
        text = Text.assemble(("⟳ ", "cyan"), (view.title, "bold"), " · ",
                             (activity(rows, running=True), "cyan"))
        overall = next((row for row in rows if row.name == OVERALL_TASK), None)
        if overall is not None and overall.count:
            text.append(f" · {overall.count} done")
        text.append(f" · {seconds(view.elapsed_s)} — j: progress, c: cancel", style="dim")
        return text
    if view.state == DONE:
        return Text.assemble(("✔ ", "green"), (view.title, "bold"),
                             f" done in {seconds(view.elapsed_s)}")
    return Text.assemble(("✘ ", "yellow"), (view.title, "bold"),
                         f" {view.state}: {view.error or ''}")


class JobStatus(Static):
    DEFAULT_CSS = """
    JobStatus { height: 1; padding: 0 1; background: $boost; }
    """

    def on_mount(self) -> None:
        self.app.progress_signal.subscribe(self, self._on_progress)
        self.set_interval(1.0, self._tick)
        self.repaint()

    def _tick(self) -> None:
        if self.app.job_running:
            self.repaint()

    def _on_progress(self, tracker: ProgressTracker) -> None:
        if tracker is self.app.job:
            self.repaint()

    def repaint(self) -> None:
        job = self.app.job
        self.display = job is not None
        if job is not None:
            self.update(status_line(job))
