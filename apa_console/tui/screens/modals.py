"""Modal dialogs: an error, a yes/no confirmation, a confirmation that needs the target's
name typed (destructive actions), and a directory to write to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from apa_console.safe_text import one_line, terminal_safe


class ErrorModal(ModalScreen[None]):
    """A one-line error from the core, never a traceback."""

    BINDINGS = [Binding("escape,enter", "dismiss", "Close")]

    def __init__(self, message: str, title: str = "Error", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.message = message
        self.heading = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog error-dialog") as dialog:
            dialog.border_title = escape(terminal_safe(self.heading))
            yield Static(Text(one_line(self.message)), id="error-message")
            with Horizontal(classes="dialog-buttons"):
                yield Button("OK", variant="error", id="ok")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)


class _Question(ModalScreen):
    """A dialog that asks one question under a title."""

    def __init__(self, question: str, title: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.question = question
        self.heading = title

    def _asking(self) -> Vertical:
        dialog = Vertical(classes="dialog")
        dialog.border_title = escape(terminal_safe(self.heading))
        return dialog


class ConfirmModal(_Question):
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("y", "confirm", "Yes")]

    def __init__(self, question: str, title: str = "Confirm", **kwargs: Any) -> None:
        super().__init__(question, title, **kwargs)

    def compose(self) -> ComposeResult:
        with self._asking():
            yield Static(Text(terminal_safe(self.question)))
            with Horizontal(classes="dialog-buttons"):
                yield Button("Yes", variant="warning", id="yes")
                yield Button("No", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


class TypeToConfirm(ModalScreen[bool]):
    """The action button stays disabled until the operator types `expected` exactly."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, expected: str, consequence: str, action_label: str,
                 title: str = "Confirm", what: str = "user id", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.expected = expected
        self.consequence = consequence
        self.action_label = action_label
        self.heading = title
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog danger-dialog") as dialog:
            dialog.border_title = escape(terminal_safe(self.heading))
            yield Static(Text(terminal_safe(self.consequence)))
            yield Label(Text.assemble("Type ", (terminal_safe(self.expected), "bold"),
                                      " to confirm:"))
            yield Input(placeholder=self.what, id="confirm-input")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.action_label, variant="error", id="confirm", disabled=True)
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @property
    def matches(self) -> bool:
        return self.query_one(Input).value.strip() == self.expected

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#confirm", Button).disabled = not self.matches

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if self.matches:
            self.dismiss(True)
        else:
            self.notify(f"type {self.expected!r} exactly, or Esc to cancel", severity="warning")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm" and self.matches)

    def action_cancel(self) -> None:
        self.dismiss(False)


class AskDirectory(_Question):
    """One line for a directory (Enter takes it, Esc cancels): where an export goes."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with self._asking():
            yield Static(Text(terminal_safe(self.question)))
            yield Input(placeholder="directory", id="directory-input")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if text:
            self.dismiss(Path(text).expanduser())
        else:
            self.notify("type a directory, or Esc to cancel", severity="warning")

    def action_cancel(self) -> None:
        self.dismiss(None)
