"""Formatting only the screens need: block-character bars and coloured labels."""

from __future__ import annotations

import re

from rich.text import Text

EIGHTHS = " ▏▎▍▌▋▊▉"
LEVELS = "▁▂▃▄▅▆▇█"


def hbar(value: float, maximum: float, width: int) -> str:
    """A left-aligned horizontal bar, `width` cells for `maximum`, in eighth-cell steps."""
    if maximum <= 0 or width <= 0:
        return " " * max(width, 0)
    eighths = round(max(0.0, min(value / maximum, 1.0)) * width * 8)
    full, part = divmod(eighths, 8)
    bar = "█" * full + (EIGHTHS[part] if part else "")
    return bar.ljust(width)


def level(fraction: float) -> str:
    """One cell whose height shows a fraction in [0, 1]."""
    fraction = max(0.0, min(fraction, 1.0))
    return LEVELS[min(int(fraction * len(LEVELS)), len(LEVELS) - 1)]


def yes_no(label: int) -> Text:
    return Text("Yes", style="green") if label == 1 else Text("No", style="red")


_SHARD_ADAPTER = re.compile(r"^shard-(\d+)-v\d+$")


def weight_column(adapter_id: str) -> str:
    """The score table's header for one adapter's weight: "w0" for shard 0's adapter
    (shard-0-v2), so each weight names its shard; any other adapter keeps its id."""
    match = _SHARD_ADAPTER.match(adapter_id)
    return f"w{match.group(1)}" if match else adapter_id
