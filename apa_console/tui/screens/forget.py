"""Forget one user or several marked together (one request): the plan first (samples per
split, shards hit, adapters to retrain, time estimate), then a confirmation that needs the
user id (or the count) typed, then live progress per shard with cancel. The retrain
belongs to the app, so leaving this screen does not stop it."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from apa_console.store.document import Store
from apa_console.tui.screens.base import ConsoleScreen
from apa_console.tui.screens.modals import TypeToConfirm
from apa_console.tui.tracker import CANCELLED, DONE, ProgressTracker
from apa_console.tui.widgets.job_progress import JobProgress
from apa_console.units import plural, terminal_safe
from apa_console.unlearning import describe
from apa_console.unlearning.targets import Targets
from apa_console.workflows import forget as forgetting
from apa_console.workflows import views


def forget_title(user_ids: list[str]) -> str:
    """"forget user u1" / "forget 3 users"."""
    if len(user_ids) == 1:
        return f"forget user {user_ids[0]}"
    return f"forget {plural(len(user_ids), 'user')}"


def plan_text(plan: dict[str, Any]) -> Text:
    lines = [terminal_safe(line) for line in describe.plan_lines(plan)]
    text = Text(lines[0] + "\n", style="bold" if sum(plan["samples"].values()) else "green")
    text.append("\n".join(lines[1:]))
    return text


def outcome_text(outcome: dict[str, Any]) -> Text:
    text = Text()
    if not outcome.get("receipts"):
        already = ", ".join(outcome.get("already_forgotten") or [])
        text.append(terminal_safe(f"nothing to do: {already}"))
        return text
    for receipt in outcome["receipts"]:
        first, *rest = (terminal_safe(line) for line in describe.receipt_lines(receipt))
        text.append(first + "\n", style="bold green")
        text.append("\n".join(rest) + "\n")
    return text


class ForgetScreen(ConsoleScreen):
    # The plan describes the store as it was when the operator read it; the confirmed
    # request is re-validated when submitted.
    RELOAD_ON_STORE_CHANGE = False
    SHOW_JOB_STATUS = False
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("f", "confirm", "Forget…"),
        Binding("c", "cancel", "Cancel retrain"),
    ]

    def __init__(self, user_ids: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.user_ids = list(user_ids)
        title = terminal_safe(forget_title(self.user_ids))
        self.title = title[0].upper() + title[1:]
        self.plan: dict[str, Any] | None = None
        self.tracker: ProgressTracker | None = None

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="forget-body"):
            yield Static(id="plan-summary", classes="panel")
            yield DataTable(id="plan-shards", classes="panel", cursor_type="row")
            yield JobProgress(id="forget-progress", classes="panel")
            yield Static(id="forget-result", classes="panel")

    def on_mount(self) -> None:
        table = self.query_one("#plan-shards", DataTable)
        table.border_title = "Affected shards"
        self.query_one("#plan-summary").border_title = "Plan"
        self.query_one("#forget-progress").border_title = "Progress"
        self.query_one("#forget-result").border_title = "Result"
        self.query_one("#forget-result").display = False
        self.app.progress_signal.subscribe(self, self._on_progress)

    def fetch(self, store: Store) -> dict[str, Any]:
        return forgetting.plan(store, self.targets)

    @property
    def targets(self) -> Targets:
        return Targets(users=self.user_ids)

    def show(self, plan: dict[str, Any]) -> None:
        self.plan = plan
        self.query_one("#plan-summary", Static).update(plan_text(plan))
        table = self.query_one("#plan-shards", DataTable)
        # columns with their rows in one go: a header drawn before the rows kept its old widths
        table.clear(columns=True)
        table.add_columns(*describe.PLAN_COLUMNS)
        for row in describe.plan_rows(plan):
            table.add_row(*row, key=row[0])
        self.refresh_bindings()

    @property
    def has_work(self) -> bool:
        return bool(self.plan and sum(self.plan["samples"].values()))

    def action_confirm(self) -> None:
        if not self.has_work or self.tracker is not None:
            return
        if self.app.job_running:
            self.app.show_error("a retrain is already running; wait for it or cancel it (j)")
            return
        assert self.plan is not None
        samples = sum(self.plan["samples"].values())
        retrain = len(self.plan["adapters_to_retrain"])
        queued = [q["request"] for q in self.plan["queued"]]
        noun = "request" if len(queued) == 1 else "requests"
        also = f" It also runs the open {noun} {', '.join(queued)}." if queued else ""
        whose = describe.subject_label(self.plan)
        consequence = (f"This removes {plural(samples, 'sample')} of {whose} from "
                       f"the store and retrains {plural(retrain, 'shard adapter')}.{also} "
                       "It cannot be undone.")
        several = len(self.user_ids) > 1
        self.app.push_screen(TypeToConfirm(describe.confirmation_phrase(self.targets),
                                           consequence, "Forget", title=self.title,
                                           what="number of users" if several else "user id"),
                             self._confirmed)

    def _confirmed(self, confirmed: bool | None) -> None:
        if not confirmed:
            self.notify("nothing was changed")
            return
        assert self.plan is not None
        self.tracker = self.app.start_forget(
            self.user_ids, {q["request"] for q in self.plan["queued"]}, self.plan)
        if self.tracker is not None:
            # the plan's summary stays; the per-shard progress takes the table's place
            self.query_one("#plan-shards").display = False
            self.query_one(JobProgress).follow(self.tracker)
        self.refresh_bindings()

    def action_cancel(self) -> None:
        if self.tracker is not None and self.tracker.running:
            self.app.action_cancel_job()

    def _on_progress(self, tracker: ProgressTracker) -> None:
        if tracker is not self.tracker or tracker.running:
            return
        result = self.query_one("#forget-result", Static)
        if tracker.state == DONE:
            result.update(outcome_text(tracker.result))
            result.display = True
        elif tracker.state == CANCELLED:
            state = (views.request_state(self.app.store, tracker.request_id)
                     if tracker.request_id else "nothing was recorded")
            result.update(Text(
                f"cancelled: {state}.\nResume with a on Requests & audit, or run "
                "`apa-console apply`.", style="yellow"))
            result.display = True
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "confirm":
            if self.app.readonly:
                return False
            return self.tracker is None and self.has_work
        if action == "cancel":
            return self.tracker is not None and self.tracker.running
        return True
