"""Users: samples per split and the shards holding each user's data; `/` searches, `o`
sorts, Enter opens the user, space marks users so `f` forgets them together."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from apa_console.store.document import Store
from apa_console.tui.screens.base import ConsoleScreen
from apa_console.tui.widgets.console_table import ConsoleTable, selected_key
from apa_console.units import shard_list, terminal_safe
from apa_console.workflows import views


class UsersScreen(ConsoleScreen):
    TITLE = "Users"
    BINDINGS = [
        Binding("enter", "open_user", "Open"),
        Binding("s", "score_user", "Score"),
        Binding("f", "forget_user", "Forget"),
        Binding("space", "mark", "Mark", key_display="space"),
        Binding("escape", "clear_marks", "Unmark all", show=False),  # the hint line says so
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._users: list[dict[str, Any]] = []

    def compose_body(self) -> ComposeResult:
        yield ConsoleTable(id="users", classes="panel", cursor_type="row", zebra_stripes=True,
                           markable=not self.app.readonly)
        yield Static(id="users-count", classes="hint")

    def on_mount(self) -> None:
        table = self.query_one("#users", ConsoleTable)
        table.border_title = "Users"
        table.add_columns("user", "samples", "train", "valid", "test", "shards")
        table.focus()

    def fetch(self, store: Store) -> list[dict[str, Any]]:
        return views.user_rows(store)

    def show(self, users: list[dict[str, Any]]) -> None:
        self._users = users
        table = self.query_one("#users", ConsoleTable)
        table.set_rows([
            (u["id"], (u["id"], str(u["samples"]), str(u["counts"]["train"]),
                       str(u["counts"]["valid"]), str(u["counts"]["test"]),
                       shard_list(u["shards"])))
            for u in users
        ])
        self.search_changed(table)

    def search_changed(self, table: ConsoleTable) -> None:
        if table.id != "users":
            return
        suffix = f" matching {table.search!r}" if table.search else ""
        marked = len(table.marked)
        keys = (f"{marked} marked · f: forget them · esc: unmark" if marked
                else "enter: open · space: mark")
        self.query_one("#users-count", Static).update(Text(
            f"{table.row_count} of {len(self._users)} users{terminal_safe(suffix)} · {keys}"))

    def on_console_table_marks_changed(self, event: ConsoleTable.MarksChanged) -> None:
        self.search_changed(event.table)
        self.refresh_bindings()

    # -- actions on the selected user -------------------------------------------------------

    @property
    def selected_user(self) -> str | None:
        return selected_key(self.query_one("#users", DataTable))

    @property
    def marked_users(self) -> list[str]:
        return self.query_one("#users", ConsoleTable).marked_keys

    def action_mark(self) -> None:
        self.query_one("#users", ConsoleTable).action_toggle_mark()

    def action_clear_marks(self) -> None:
        self.query_one("#users", ConsoleTable).clear_marks()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_user()

    def action_open_user(self) -> None:
        if self.selected_user:
            self.app.open_user(self.selected_user)

    def action_score_user(self) -> None:
        if self.selected_user:
            self.app.score(user=self.selected_user)

    def action_forget_user(self) -> None:
        """The marked users, or the highlighted one when none is marked: one plan for all."""
        users = self.marked_users or ([self.selected_user] if self.selected_user else [])
        if users:
            self.app.forget(*users)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("forget_user", "mark"):
            return not self.app.readonly
        if action == "clear_marks":
            return bool(self.query_one("#users", ConsoleTable).marked)
        return True
