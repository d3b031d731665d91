"""Users × shards: one row per user, one column per shard, each cell the user's training
samples in that shard. Forgetting a user retrains every shard on their row, so rows are
ordered widest first and a user spread over several shards stands out."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widget import Widget

from apa_console.units import plural, terminal_safe

USER_WIDTH = 12  # longer ids end in "…" rather than pushing the map off screen
SHADES = ("grey50", "cyan", "bright_cyan", "bold bright_white")


def _shade(count: int, most: int) -> str:
    """Heavier style for more samples, relative to the fullest cell."""
    step = min(int(count / most * len(SHADES)), len(SHADES) - 1) if most else 0
    return SHADES[step]


def _user_label(user_id: str) -> str:
    safe = terminal_safe(user_id)
    return safe if len(safe) <= USER_WIDTH else safe[:USER_WIDTH - 1] + "…"


def spread_summary(data: dict[str, Any]) -> str:
    """"4 of 6 users in one shard · 2 span 2 shards (forgetting one retrains 2 adapters)"."""
    users, spread = data["users"], data["spread"]
    if not users:
        return ""
    parts = [f"{spread.get(1, 0)} of {len(users)} users in one shard"]
    for span, count in spread.items():
        if span > 1:
            parts.append(f"{count} span {span} shards")
    widest = max(spread)
    summary = " · ".join(parts)
    if widest > 1:
        summary += f" (forgetting one retrains up to {plural(widest, 'adapter')})"
    else:
        summary += " (forgetting anyone retrains one adapter)"
    return summary


class UserShardMap(Widget):
    DEFAULT_CSS = """
    UserShardMap { height: auto; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._data: dict[str, Any] = {"shards": [], "users": [], "spread": {}}

    def show(self, data: dict[str, Any]) -> None:
        self._data = data
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self._data["users"]) + 1 if self._data["users"] else 1

    def render(self) -> Text:
        shards, users = self._data["shards"], self._data["users"]
        if not users:
            return Text("no training samples in shards yet: run `apa-console partition`",
                        style="dim")
        cell = max(len(str(max(shards))), 2) + 1
        most = max(max(u["counts"].values()) for u in users)
        text = Text()
        text.append(f"{'user':<{USER_WIDTH}} span", style="dim")
        for shard in shards:
            text.append(f"{shard:>{cell}}", style="dim")
        for user in users:
            text.append("\n")
            text.append(f"{_user_label(user['id']):<{USER_WIDTH}}")
            text.append(f"{user['span']:>5}",
                        style="bold yellow" if user["span"] > 1 else "")
            for shard in shards:
                count = user["counts"].get(shard, 0)
                if count:
                    text.append(f"{count:>{cell}}", style=_shade(count, most))
                else:
                    text.append(f"{'·':>{cell}}", style="grey35")
        return text
