"""Labelled horizontal bars where the numbers matter as much as the shape: each forget's
time beside a full retrain, and each adapter's validation error. Bars scale to the width."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widget import Widget

from apa_console.tui.formatting import hbar
from apa_console.units import seconds

# room a row needs besides its bar: label, series name, value and ratio columns
MIN_BAR = 6


class BarChart(Widget):
    """Text drawn from `show(data)`, as tall as it wraps to; subclasses draw it in `render`."""

    DEFAULT_CSS = """
    BarChart { height: auto; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._data: Any = None

    def show(self, data: Any) -> None:
        self._data = data
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        # the notes wrap at words on a narrow terminal: count the lines they wrap to
        return max(len(self.render().wrap(self.app.console, max(width, 1))), 1)

    def render(self) -> Text:
        raise NotImplementedError


class ForgetCostChart(BarChart):
    """Per finished forget: its measured time and the recorded cost of retraining every
    shard, so the saving of exact unlearning by shards is read off one pair of bars."""

    def render(self) -> Text:
        data = self._data or {"requests": [], "shards": 0}
        costs = data["requests"]
        if not costs:
            return Text("no forgets yet: forget a user (f on Users, or `apa-console forget`) "
                        "and its time appears here beside a full retrain's", style="dim")
        longest = max(max(c["forget_s"], c["full_retrain_s"]) for c in costs) or 1.0
        value_width = max(len(seconds(v)) for c in costs
                          for v in (c["forget_s"], c["full_retrain_s"]))
        # request id and series name (21), value, ratio (" 0.47×" or " ~")
        width = max(self.content_size.width - 21 - value_width - 8, MIN_BAR)
        text = Text()
        for cost in costs:
            ratio = f" {cost['ratio']:.2f}×" if cost["ratio"] is not None else ""
            text.append(f"{cost['request']:<7}", style="bold")
            text.append("forget        ")
            text.append(hbar(cost["forget_s"], longest, width), style="cyan")
            text.append(f" {seconds(cost['forget_s']):>{value_width}}")
            text.append(f"{ratio}\n", style="bold")
            text.append(" " * 7 + "full retrain  ", style="dim")
            text.append(hbar(cost["full_retrain_s"], longest, width), style="magenta")
            mark = "" if cost["estimate_from"] == "receipt" else " ~"
            text.append(f" {seconds(cost['full_retrain_s']):>{value_width}}{mark}\n")
            text.append(" " * 21 + f"{cost['shards']} of {data['shards']} shards retrained\n",
                        style="dim")
        text.append("forget: purge, retrain and swap, measured · full retrain: every shard's "
                    "recorded train and validation time · ×: forget / full retrain",
                    style="dim")
        if any(c["estimate_from"] != "receipt" for c in costs):
            text.append("\n~ receipt predates the estimate: today's adapters' times",
                        style="dim")
        return text


class ValidErrorChart(BarChart):
    """Mean validation error of each shard's current adapter: the error the aggregation
    weights softmax(−τ·error) turn into each adapter's say."""

    def render(self) -> Text:
        rows = [r for r in (self._data or []) if r["error"] is not None]
        if not rows:
            return Text("no validation errors yet: `apa-console train` computes each "
                        "adapter's error on the validation pool", style="dim")
        label_width = max(len(r["adapter"]) for r in rows)
        scale = max(max(r["error"] for r in rows), 0.5)
        withdrawn = any(r["serving"] != "serving" for r in rows)
        # label and space, the value (" 0.410"), and " withdrawn" when a row needs it
        width = max(self.content_size.width - label_width - 1 - 6 - (10 if withdrawn else 0),
                    MIN_BAR)
        best = min(r["error"] for r in rows)
        text = Text()
        for row in rows:
            text.append(f"{row['adapter']:<{label_width}} ", style="bold")
            style = "green" if row["error"] == best else "cyan"
            text.append(hbar(row["error"], scale, width), style=style)
            text.append(f" {row['error']:.3f}")
            if row["serving"] != "serving":
                text.append(" withdrawn", style="yellow")
            text.append("\n")
        text.append("mean |label − P(Yes)| over the validation pool · lower is better · "
                    "0.5 is a coin flip · green: lowest", style="dim")
        return text
