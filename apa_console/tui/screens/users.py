"""Users: samples per split and the shards holding each user's data; `/` filters by id,
Enter opens the user."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Input, Static

from apa_console.store.document import Store
from apa_console.tui.screens.base import ConsoleScreen, refill, selected_key
from apa_console.units import shard_list
from apa_console.workflows import views


class UsersScreen(ConsoleScreen):
    TITLE = "Users"
    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("enter", "open_user", "Open"),
        Binding("s", "score_user", "Score"),
        Binding("f", "forget_user", "Forget"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._users: list[dict[str, Any]] = []

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder="filter users by id (Enter: keep, Esc: clear)", id="user-filter")
        yield DataTable(id="users", classes="panel", cursor_type="row", zebra_stripes=True)
        yield Static(id="users-count", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#user-filter").display = False
        table = self.query_one("#users", DataTable)
        table.border_title = "Users"
        table.add_columns("user", "samples", "train", "valid", "test", "shards")
        table.focus()

    def fetch(self, store: Store) -> list[dict[str, Any]]:
        return views.user_rows(store)

    def show(self, users: list[dict[str, Any]]) -> None:
        self._users = users
        self._apply_filter()

    @property
    def filter_text(self) -> str:
        return self.query_one("#user-filter", Input).value.strip().lower()

    def _apply_filter(self) -> None:
        needle = self.filter_text
        shown = [u for u in self._users if needle in u["id"].lower()]
        refill(self.query_one("#users", DataTable), [
            (u["id"], (u["id"], str(u["samples"]), str(u["counts"]["train"]),
                       str(u["counts"]["valid"]), str(u["counts"]["test"]),
                       shard_list(u["shards"])))
            for u in shown
        ])
        suffix = f" matching {needle!r}" if needle else ""
        self.query_one("#users-count", Static).update(
            f"{len(shown)} of {len(self._users)} users{suffix} · enter: open")

    # -- filter ----------------------------------------------------------------------------

    def action_filter(self) -> None:
        box = self.query_one("#user-filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self._apply_filter()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one("#users", DataTable).focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#user-filter", Input)
        if box.display:
            box.value = ""
            box.display = False
            self._apply_filter()
        self.query_one("#users", DataTable).focus()

    # -- actions on the selected user -------------------------------------------------------

    @property
    def selected_user(self) -> str | None:
        return selected_key(self.query_one("#users", DataTable))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_user()

    def action_open_user(self) -> None:
        if self.selected_user:
            self.app.open_user(self.selected_user)

    def action_score_user(self) -> None:
        if self.selected_user:
            self.app.score(user=self.selected_user)

    def action_forget_user(self) -> None:
        if self.selected_user:
            self.app.forget(self.selected_user)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "forget_user":
            return not self.app.readonly
        return True
