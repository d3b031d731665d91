"""The shape every data screen shares: header, body, job status line, footer; data read off
the UI thread; a reload whenever another writer commits to the store."""

from __future__ import annotations

import traceback
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Input
from textual.worker import get_current_worker

from apa_console.errors import ApaError, StoreChangedError
from apa_console.store.document import Store
from apa_console.tui.widgets.console_table import ConsoleTable
from apa_console.tui.widgets.job_status import JobStatus
from apa_console.tui.widgets.nav_bar import NavBar

STORE_CHANGE_RETRIES = 3  # reads of a state that commits keep replacing under them


class SearchBox(Input):
    """The `/` search line: Enter keeps the search, Esc drops it (both return to the table)."""

    BINDINGS = [Binding("escape", "drop", "Clear search", show=False)]

    def action_drop(self) -> None:
        screen = self.screen
        if isinstance(screen, ConsoleScreen) and screen._searching is not None:
            table = screen._searching
            table.set_search("")
            table.focus()


class ConsoleScreen(Screen):
    """Subclasses implement `compose_body`, `fetch` (worker thread: core calls only) and
    `show` (UI thread: put the data in widgets)."""

    # A screen that shows a fixed plan (forget) turns this off.
    RELOAD_ON_STORE_CHANGE = True
    # A screen that shows the job in full (forget) does without the one-line summary.
    SHOW_JOB_STATUS = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._loaded_token: object = None
        self.loaded = False
        self._searching: ConsoleTable | None = None

    BINDINGS = [
        # in `?` help, not the footer: at 80 columns the footer has room for the actions only
        Binding("tab", "app.focus_next", "Pane", show=False),
        Binding("slash", "search", "Search"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield NavBar()
        yield from self.compose_body()
        yield SearchBox(placeholder="search this table (Enter: keep, Esc: clear)",
                        id="table-search", classes="search")
        if self.SHOW_JOB_STATUS:
            yield JobStatus()
        yield Footer()

    # -- `/` searches the focused table (or the screen's first) ----------------------------

    def _search_target(self) -> ConsoleTable | None:
        focused = self.focused
        if isinstance(focused, ConsoleTable):
            return focused
        tables = list(self.query(ConsoleTable))
        return tables[0] if tables else None

    def action_search(self) -> None:
        table = self._search_target()
        if table is None:
            return
        self._searching = table
        box = self.query_one("#table-search", Input)
        box.value = table.search
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "table-search" and self._searching is not None:
            self._searching.set_search(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "table-search" and self._searching is not None:
            self._searching.focus()

    def on_console_table_search_changed(self, event: ConsoleTable.SearchChanged) -> None:
        if not event.table.search:
            box = self.query_one("#table-search", Input)
            box.value = ""
            box.display = False
        self.search_changed(event.table)

    def search_changed(self, table: ConsoleTable) -> None:
        """A screen that counts what a search leaves says so here."""

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.query_one("#table-search").display = False
        self.app.store_signal.subscribe(self, self._on_store_changed)
        self.reload()

    def on_screen_resume(self) -> None:
        if self.RELOAD_ON_STORE_CHANGE and self._loaded_token != self.app.store_token:
            self.reload()

    def _on_store_changed(self, token: object) -> None:
        if self.RELOAD_ON_STORE_CHANGE and self.is_current:
            self.reload()

    def reload(self) -> None:
        self._loaded_token = self.app.store_token
        self.run_worker(self._load, name=f"load {type(self).__name__}", group="load",
                        thread=True, exclusive=True, exit_on_error=False)

    def _load(self) -> None:
        worker = get_current_worker()
        try:
            data = self._fetch_current()
        except ApaError as exc:
            if not worker.is_cancelled:
                self._deliver(self.show_error, str(exc))
            return
        except Exception as exc:  # a bug: one line here, the trace in the log
            self.app.log.error(traceback.format_exc())
            if not worker.is_cancelled:
                self._deliver(self.show_error, f"unexpected {type(exc).__name__}: {exc}")
            return
        if not worker.is_cancelled:
            self._deliver(self._show, data)

    def _fetch_current(self) -> Any:
        """fetch, read again when a commit (a forget from another terminal) collected a file
        of the state it began to read."""
        for _ in range(STORE_CHANGE_RETRIES - 1):
            try:
                return self.fetch(self.app.store)
            except StoreChangedError:
                continue
        return self.fetch(self.app.store)

    def _deliver(self, callback, *args: Any) -> None:
        try:
            self.app.call_from_thread(callback, *args)
        except RuntimeError:
            pass  # the app closed while we were reading; nobody to show it to

    def _show(self, data: Any) -> None:
        if self.is_attached:
            self.show(data)
            self.loaded = True

    def show_error(self, message: str) -> None:
        self.app.show_error(message)

    def fetch(self, store: Store) -> Any:
        return None

    def show(self, data: Any) -> None:
        pass

