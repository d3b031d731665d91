"""The console's table: every listing sorts by any column, searches, and jumps to its ends
the way k9s and lazygit tables do. Screens hand it all rows (`set_rows`); it shows the ones
matching the search, in the chosen order, keeping the cursor on the same key. A markable
table (Users) lets `space` mark rows by key, so marks outlast a sort, a search or a reload."""

from __future__ import annotations

import re
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from apa_console.units import terminal_safe

ASCENDING, DESCENDING = " ▲", " ▼"
MIN_LAST_COLUMN = 6  # narrower than this, the table scrolls sideways instead
MARKED, UNMARKED = "● ", "  "
_NUMBER = re.compile(r"^[-+]?\d+(\.\d+)?([eE][-+]?\d+)?")


def plain(cell: Any) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def sort_key(cell: Any) -> tuple:
    """Numbers by value, then text case-insensitively with digit runs as numbers, so
    "user10" follows "user9" and "–" (no value) sorts last."""
    text = plain(cell).strip()
    if not text or text in ("–", "-"):
        return (2, ())
    number = _NUMBER.match(text)
    if number and number.end() == len(text):
        return (0, (float(text),))
    parts = re.split(r"(\d+)", text.lower())
    return (1, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts if p))


def literal(cell: Any) -> Any:
    """A text cell shown as written: dataset ids and titles are neither markup nor terminal
    control sequences. Rich renderables (styled Text, bars) pass through; text that does
    not fit its column ends in "…" rather than mid-word."""
    if isinstance(cell, str):
        return Text(terminal_safe(cell), overflow="ellipsis", no_wrap=True)
    if isinstance(cell, Text):
        cell = cell.copy()
        cell.overflow, cell.no_wrap = "ellipsis", True
    return cell


def cell_width(cell: Any) -> int | None:
    """Columns a one-line text cell needs; None for other renderables."""
    return cell.cell_len if isinstance(cell, Text) else None


def selected_key(table: DataTable) -> str | None:
    """The row key under the table's cursor, or None when the table is empty."""
    if table.row_count == 0:
        return None
    row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
    return row_key.value


class ConsoleTable(DataTable):
    BINDINGS = [
        Binding("g,home", "first_row", "Top", show=False),
        Binding("G,end", "last_row", "Bottom", show=False),
        Binding("o", "sort_next", "Sort"),
        Binding("O", "sort_reverse", "Reverse", show=False),
        Binding("escape", "clear_search", "Clear search", show=False),
        Binding("y", "copy_key", "Copy id", show=False),
        Binding("Y", "copy_row", "Copy row", show=False),
        Binding("space", "toggle_mark", "Mark", show=False),
    ]

    def __init__(self, *args: Any, markable: bool = False, follow_top: bool = False,
                 **kwargs: Any) -> None:
        kwargs.setdefault("cursor_type", "row")
        super().__init__(*args, **kwargs)
        self.markable = markable
        # A log listed newest first: while the cursor is on the top row, new rows arriving
        # on top take it along (like `tail -f`); moved elsewhere, it stays put.
        self.follow_top = follow_top
        self.marked: set[str] = set()
        self._rows: list[tuple[str, tuple]] = []
        self._labels: list[str] = []
        self.search = ""
        self.sort_column: int | None = None
        self.sort_reverse = False
        self._title: str | None = None

    # -- data ------------------------------------------------------------------------------

    def add_columns(self, *labels: str) -> list:  # type: ignore[override]
        self._labels = list(labels)
        return super().add_columns(*labels)

    def set_rows(self, rows: list[tuple[str, tuple]]) -> None:
        self._rows = list(rows)
        self.marked &= {key for key, _ in self._rows}  # a row that went takes its mark along
        self._redraw()

    @property
    def marked_keys(self) -> list[str]:
        """The marked rows' keys in the order the screen gave the rows (not the sort's)."""
        return [key for key, _ in self._rows if key in self.marked]

    @property
    def total_rows(self) -> int:
        return len(self._rows)

    def set_search(self, text: str) -> None:
        self.search = text
        self._redraw()
        self.post_message(self.SearchChanged(self))

    def _visible(self) -> list[tuple[str, tuple]]:
        needle = self.search.strip().lower()
        rows = [row for row in self._rows
                if not needle or any(needle in plain(cell).lower() for cell in row[1])]
        if self.sort_column is not None:
            rows.sort(key=lambda row: sort_key(row[1][self.sort_column]),
                      reverse=self.sort_reverse)
        return rows

    def _redraw(self) -> None:
        keep = selected_key(self)
        following = (self.follow_top and self.sort_column is None
                     and (self.row_count == 0 or self.cursor_row == 0))
        rows = self._visible()
        self.clear()
        for key, cells in rows:
            shown = [literal(cell) for cell in cells]
            if self.markable and shown and isinstance(shown[0], Text):
                mark = (MARKED, "bold yellow") if key in self.marked else UNMARKED
                shown[0] = Text.assemble(mark, shown[0])
            self.add_row(*shown, key=key)
        keys = [key for key, _ in rows]
        if following and keys:
            self.move_cursor(row=0, animate=False)
            self.scroll_home(animate=False)
        elif keep in keys:
            self.move_cursor(row=keys.index(keep), animate=False)
        self._label_columns()
        self._fit_last_column()
        # Rows can arrive before the layout settles the table's width (a busy machine):
        # fit again once the next refresh has laid it out.
        self.call_after_refresh(self._fit_last_column)
        # the search and sort go beside the title the screen gave, which stays as it was
        if self._title is None:
            self._title = str(self.border_title or "")
        status = self._status()
        self.border_title = f"{self._title} · {status}" if status else self._title

    def on_resize(self) -> None:
        self._fit_last_column()

    def _fit_last_column(self) -> None:
        """Narrow the last column (the free text: details, titles) to what the table has
        room for, so its cells end in "…" at the border instead of running past it."""
        columns = self.ordered_columns
        available = self.content_region.width
        if self.row_count + int(self.show_header) > self.content_region.height:
            available -= self.styles.scrollbar_size_vertical  # it appears once rows arrive
        if not columns or available <= 0:
            return
        pad = 2 * self.cell_padding
        shown = [[literal(cells[i]) for _, cells in self._visible()]
                 for i in range(len(columns))]
        widths = []
        for column, cells in zip(columns, shown):
            measured = [cell_width(cell) for cell in cells]
            if None in measured:
                return  # a bar or grid: leave the table to size itself
            widths.append(max([column.label.cell_len, *measured]))
        last = columns[-1]
        if self.markable:
            widths[0] += len(MARKED)
        for column, width in zip(columns[:-1], widths):
            column.content_width = max(column.content_width, width)
        room = available - sum(w + pad for w in widths[:-1]) - pad
        fits = widths[-1] <= room or room < MIN_LAST_COLUMN
        last.auto_width, last.width = fits, widths[-1] if fits else room
        self._require_update_dimensions = True
        self.refresh()

    def _label_columns(self) -> None:
        for index, column in enumerate(self.ordered_columns):
            if index >= len(self._labels):
                break
            mark = ""
            if index == self.sort_column:
                mark = DESCENDING if self.sort_reverse else ASCENDING
            column.label = Text(self._labels[index] + mark)
            # the table sizes a column by its cells when they arrive; the arrow widens it now
            column.content_width = max(column.content_width, column.label.cell_len)
        self.refresh()

    def _status(self) -> str:
        parts = [f"{len(self.marked)} marked"] if self.marked else []
        if self.search:
            parts.append(f"/{terminal_safe(self.search)} {self.row_count} of {self.total_rows}")
        if self.sort_column is not None and self.sort_column < len(self._labels):
            way = "descending" if self.sort_reverse else "ascending"
            parts.append(f"by {self._labels[self.sort_column]} {way}")
        return " · ".join(parts).replace("[", r"\[")

    # -- actions ---------------------------------------------------------------------------

    def action_first_row(self) -> None:
        if self.row_count:
            self.move_cursor(row=0, animate=False)

    def action_last_row(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1, animate=False)

    def sort_by(self, column: int, reverse: bool = False) -> None:
        self.sort_column, self.sort_reverse = column, reverse
        self._redraw()

    def action_sort_next(self) -> None:
        if not self._labels:
            return
        column = 0 if self.sort_column is None else (self.sort_column + 1) % len(self._labels)
        self.sort_by(column)

    def action_sort_reverse(self) -> None:
        self.sort_by(self.sort_column or 0, not self.sort_reverse)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        column = event.column_index
        self.sort_by(column, reverse=self.sort_column == column and not self.sort_reverse)

    class SearchChanged(Message):
        """The rows shown changed because the search did (the screen may say so)."""

        def __init__(self, table: ConsoleTable) -> None:
            super().__init__()
            self.table = table

    def action_copy_key(self) -> None:
        """The row's id (user, adapter, request…) to the clipboard: OSC 52 reaches the
        terminal's clipboard, over ssh too, where the terminal allows it."""
        key = selected_key(self)
        if key is not None:
            self.app.copy_to_clipboard(key)
            self.notify(f"copied {terminal_safe(key)}", timeout=2)

    def action_copy_row(self) -> None:
        """The row as tab-separated text, as shown."""
        key = selected_key(self)
        row = next((cells for k, cells in self._rows if k == key), None)
        if row is not None:
            self.app.copy_to_clipboard("\t".join(plain(cell) for cell in row))
            self.notify(f"copied the row of {terminal_safe(key)}", timeout=2)

    def action_clear_search(self) -> None:
        self.set_search("")

    def action_toggle_mark(self) -> None:
        """Mark or unmark the row under the cursor, then step to the next one."""
        key = selected_key(self)
        if key is None:
            return
        self.marked ^= {key}
        row = self.cursor_row
        self._redraw()
        self.move_cursor(row=min(row + 1, self.row_count - 1), animate=False)
        self.post_message(self.MarksChanged(self))

    def clear_marks(self) -> None:
        if self.marked:
            self.marked.clear()
            self._redraw()
            self.post_message(self.MarksChanged(self))

    class MarksChanged(Message):
        """Rows were marked or unmarked (the screen may count them)."""

        def __init__(self, table: ConsoleTable) -> None:
            super().__init__()
            self.table = table

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_search":
            return bool(self.search)  # otherwise escape goes on to the screen (back)
        if action == "toggle_mark":
            return self.markable
        return True
