"""One line, on every screen, about the console's background job (a forget or an apply):
what it is doing now, or how it ended. Hidden when there has been no job."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from apa_console.tui.tracker import DONE, ProgressTracker
from apa_console.units import seconds

OVERALL = "overall"  # the core's task name for "k of n shards done"


def status_line(tracker: ProgressTracker) -> Text:
    view = tracker.view()
    if view.running:
        text = Text.assemble(("⟳ ", "cyan"), (view.title, "bold"))
        overall = next((t.event for t in view.tasks if t.event.task == OVERALL), None)
        if overall is not None:
            text.append(f" · shards {overall.step}/{overall.total}")
        current = [t for t in view.tasks if t.event.task != OVERALL and not t.event.done]
        if current:
            event = max(current, key=lambda t: t.order).event
            text.append(f" · {event.task} {event.step}/{event.total}")
            if event.loss is not None:
                text.append(f" · loss {event.loss:.3f}")
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
