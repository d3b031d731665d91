"""The section tabs under the header: which of the five screens you are on, and its key."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

SECTIONS = (
    ("overview", "1", "Overview"),
    ("users", "2", "Users"),
    ("shards", "3", "Shards"),
    ("requests", "4", "Requests & audit"),
    ("charts", "5", "Charts"),
)


class NavBar(Static):
    DEFAULT_CSS = """
    NavBar { height: 1; padding: 0 1; background: $boost; }
    """

    def on_mount(self) -> None:
        self.update(self.describe(self.app.current_mode))

    @staticmethod
    def describe(current: str) -> Text:
        text = Text()
        for mode, key, label in SECTIONS:
            style = "bold reverse" if mode == current else ""
            text.append(f" {key} ", style="bold cyan" if mode != current else style)
            text.append(f"{label} ", style=style)
            text.append(" ")
        return text
