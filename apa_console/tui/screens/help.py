"""`?`: every key, grouped by where it works."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = (
    ("Everywhere", (
        ("1 2 3 4 5", "Overview · Users · Shards · Requests · Charts"),
        ("tab / shift+tab", "next / previous pane"),
        ("?", "this help"),
        ("ctrl+p", "command palette (screens, users, actions)"),
        ("j", "progress of the running forget/apply"),
        ("escape", "back (close a screen or dialog)"),
        ("q", "quit (asks first while a job runs)"),
    )),
    ("Every table", (
        ("/", "search the table (Enter keeps, Esc clears)"),
        ("o / O", "sort by the next column / reverse the order"),
        ("g G home end", "first / last row"),
        ("y / Y", "copy the row's id / the whole row"),
    )),
    ("Users", (
        ("enter", "open the user: samples, shards, request history"),
        ("s", "score the user's test samples"),
        ("space", "mark / unmark the user (esc unmarks all)"),
        ("f", "forget the marked users, or the highlighted one (plan, typed "
              "confirmation, retrain)"),
    )),
    ("Overview", (("s", "score the test split"),)),
    ("Shards", (("c", "copy the adapter's full sha256"),
                ("l", "the highlighted shard's loss curve (Charts)"))),
    ("Score", (("r", "score again"),)),
    ("Forget", (("f", "confirm (type the user id, or the count: 3 users)"),
                ("c", "cancel the retrain"))),
    ("Requests & audit", (("enter", "open a request: state, receipt, its audit entries"),
                          ("a", "apply pending requests"),
                          ("x", "withdraw a queued request (before it removes anything)"),
                          ("v", "verify the chain again"))),
    ("Charts", (("[ / ]", "previous / next chart (loss, users×shards, AUC, forget "
                          "cost, validation error)"),)),
)


def key_table(readonly: bool) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for section, keys in KEYS:
        table.add_row(f"[bold]{section}[/bold]", "")
        for key, meaning in keys:
            if readonly and ("forget" in meaning or "apply" in meaning):
                continue
            table.add_row(f"  {key}", meaning)
    if readonly:
        table.add_row("", "[dim]read-only session: destructive actions are hidden[/dim]")
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help-dialog") as dialog:
            dialog.border_title = "Keys"
            yield Static(key_table(self.app.readonly))
