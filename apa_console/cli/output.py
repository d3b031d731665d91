"""One output sink: data to stdout (human tables or --json), diagnostics to stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from apa_console.units import terminal_safe

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False)


def shown(value: Any) -> Text:
    """A value from the store or the operator, displayed literally: no markup, no control
    characters reaching the terminal."""
    return Text("" if value is None else terminal_safe(value))


def markup_safe(value: Any) -> str:
    """The same, for a value placed inside a markup string."""
    return escape(terminal_safe(value))


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def info(message: str) -> None:
    stderr.print(shown(message))


def error_line(message: str) -> None:
    # Plain write: rich would wrap a long path onto two lines, and errors are one line.
    sys.stderr.write(f"error: {terminal_safe(message)}\n")
    sys.stderr.flush()


def table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None
) -> None:
    view = Table(title=shown(title) if title else None, show_lines=False, header_style="bold")
    for column in columns:
        view.add_column(column, overflow="fold")
    for row in rows:
        view.add_row(*(shown(cell) for cell in row))
    stdout.print(view)


def key_values(pairs: Iterable[tuple[str, Any]], title: str | None = None) -> None:
    view = Table(title=title, show_header=False, box=None, pad_edge=False)
    view.add_column(style="bold")
    view.add_column(overflow="fold")
    for key, value in pairs:
        view.add_row(key, shown(value))
    stdout.print(view)
