"""Shard balance as two horizontal bars per shard: training samples and distinct users."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widget import Widget

from apa_console.tui.formatting import hbar


class BalanceChart(Widget):
    """Bars scale to the widget's width; `show(shard_summary)` sets the data."""

    DEFAULT_CSS = """
    BalanceChart { height: auto; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shards: list[dict[str, Any]] = []
        self._balance: dict[str, Any] = {}

    def show(self, summary: dict[str, Any]) -> None:
        self._shards = list(summary.get("shards", []))
        self._balance = dict(summary.get("balance", {}))
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        return max(len(self._shards), 1) + (2 if self._shards else 0)

    def render(self) -> Text:
        if not self._shards:
            return Text("no shards yet: run `apa-console partition`", style="dim")
        max_size = max(s["size"] for s in self._shards) or 1
        max_users = max(s["users"] for s in self._shards) or 1
        size_digits = len(str(max_size))
        user_digits = len(str(max_users))
        label_width = len(str(len(self._shards) - 1))
        # label, two numbers, separators: split what is left 3:2 between the two bars
        spare = max(self.content_size.width - label_width - size_digits - user_digits - 8, 6)
        size_width = spare * 3 // 5
        users_width = spare - size_width
        text = Text()
        text.append(" " * (label_width + 1) + "samples".ljust(size_width + size_digits + 2)
                    + "users\n", style="dim")
        for shard in self._shards:
            text.append(f"{shard['shard']:>{label_width}} ", style="bold")
            text.append(hbar(shard["size"], max_size, size_width), style="cyan")
            text.append(f" {shard['size']:>{size_digits}}  ")
            text.append(hbar(shard["users"], max_users, users_width), style="magenta")
            text.append(f" {shard['users']:>{user_digits}}\n")
        balance = self._balance
        text.append(
            f"size {balance.get('min_size')}–{balance.get('max_size')} "
            f"(σ {balance.get('std_size', 0):.1f}) · users {balance.get('min_users')}–"
            f"{balance.get('max_users')}",
            style="dim",
        )
        return text
