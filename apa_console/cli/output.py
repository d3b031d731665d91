"""One output sink: data to stdout (human tables or --json), diagnostics to stderr.

On a terminal, tables are drawn with rich; when stdout is a pipe or a file they are
tab-separated text with a header row (a title becomes a leading `# ` line), so `cut`, `sort`
and spreadsheets read them. `--json` prints one envelope for every command:
`{"data": …, "meta": {"command": "audit head", "version": "0.1.0"}}`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from apa_console.safe_text import one_line, terminal_safe

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)  # a diagnostic is one line


def shown(value: Any) -> Text:
    """A value from the store or the operator, displayed literally: no markup, no control
    characters reaching the terminal."""
    return Text("" if value is None else terminal_safe(value))


def markup_safe(value: Any) -> str:
    """The same, for a value placed inside a markup string."""
    return escape(terminal_safe(value))


def package_version() -> str:
    """The installed distribution's version (the source tree's when it is not installed)."""
    from importlib import metadata

    try:
        return metadata.version("apa-console")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        from apa_console import __version__

        return __version__


def command_name() -> str | None:
    """The running command's path without the program name ("user show"), from Click's
    context; None outside a command."""
    try:  # typer >= 0.29 vendors click
        from typer._click.globals import get_current_context
    except ImportError:  # pragma: no cover
        from click import get_current_context

    ctx = get_current_context(silent=True)
    names: list[str] = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names)) or None


def envelope(data: Any, command: str | None = None) -> dict[str, Any]:
    """Every --json answer: the command's data, and what produced it."""
    return {"data": data,
            "meta": {"command": command or command_name(), "version": package_version()}}


def emit_json(data: Any, command: str | None = None) -> None:
    text = json.dumps(envelope(data, command), indent=2, ensure_ascii=False, default=str)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def info(message: str) -> None:
    stderr.print(shown(message))


def show_engine_warnings() -> None:
    """Print every warning as one `warning:` line on stderr (Python's default adds the
    file, line and source line); the engine's SlowDtypeWarning without its class name."""
    import warnings

    from apa_console.engine.choices import SlowDtypeWarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, SlowDtypeWarning):
            sys.stderr.write(f"warning: {one_line(message)}\n")
        else:  # a library's warning: one line too, so stderr stays one line per diagnostic
            sys.stderr.write(f"warning: {category.__name__}: {one_line(message)}\n")
        sys.stderr.flush()

    warnings.showwarning = show


def error_line(message: str) -> None:
    """The one sink of every refusal: one line whatever the message holds (escaped, long
    runs clipped). A plain write: rich would wrap a long path onto two lines."""
    sys.stderr.write(f"error: {one_line(message)}\n")
    sys.stderr.flush()


def plain_tables() -> bool:
    """Tables as TSV: stdout is not a terminal. TTY_COMPATIBLE=1 forces drawn tables and
    TTY_COMPATIBLE=0 forces TSV (rich's convention; FORCE_COLOR is about colour only)."""
    forced = os.environ.get("TTY_COMPATIBLE", "")
    if forced in ("0", "1"):
        return forced == "0"
    isatty = getattr(sys.stdout, "isatty", None)
    try:
        return not (isatty is not None and isatty())
    except ValueError:  # a closed stream
        return True


def tsv_cell(value: Any) -> str:
    """One TSV field: terminal-safe, which also turns tabs and newlines into escapes, so a
    value can never split a row or a column."""
    return "" if value is None else terminal_safe(value)


def _tsv(rows: Iterable[Sequence[Any]], title: str | None) -> None:
    lines = [f"# {tsv_cell(title)}"] if title else []
    lines += ["\t".join(tsv_cell(cell) for cell in row) for row in rows]
    sys.stdout.write("".join(line + "\n" for line in lines))
    sys.stdout.flush()


def table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None
) -> None:
    if plain_tables():
        _tsv([list(columns), *rows], title)
        return
    view = Table(title=shown(title) if title else None, show_lines=False, header_style="bold")
    for column in columns:
        view.add_column(column, overflow="fold")
    for row in rows:
        view.add_row(*(shown(cell) for cell in row))
    stdout.print(view)


def key_values(pairs: Iterable[tuple[str, Any]], title: str | None = None) -> None:
    if plain_tables():
        _tsv([("key", "value"), *pairs], title)
        return
    view = Table(title=title, show_header=False, box=None, pad_edge=False)
    view.add_column(style="bold")
    view.add_column(overflow="fold")
    for key, value in pairs:
        view.add_row(key, shown(value))
    stdout.print(view)
