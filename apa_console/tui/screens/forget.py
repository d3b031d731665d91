"""Forget a user: the plan first (samples per split, shards hit, adapters to retrain, time
estimate), then a confirmation that needs the user id typed, then live progress per shard
with cancel. The retrain belongs to the app, so leaving this screen does not stop it."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from apa_console.unlearning import forget as unlearning
from apa_console.store.document import Store
from apa_console.tui.formatting import plural, seconds
from apa_console.tui.tracker import CANCELLED, DONE, ProgressTracker
from apa_console.tui.widgets.job_progress import JobProgress
from apa_console.tui.screens.base import ConsoleScreen
from apa_console.tui.screens.modals import TypeToConfirm


def describe_plan(user: str, plan: dict[str, Any]) -> Text:
    counts = plan["samples"]
    total = sum(counts.values())
    text = Text()
    if total == 0:
        text.append(f"user {user} has no data left to forget", style="green")
        for label in plan.get("already_forgotten", []):
            text.append(f"\n{label} was already forgotten")
        return text
    text.append(f"Forget user {user}: ", style="bold")
    text.append(f"{total} samples (train {counts['train']}, valid {counts['valid']}, "
                f"test {counts['test']})\n")
    retrain = len(plan["adapters_to_retrain"])
    text.append(f"retrain {retrain} of {plural(plan['total_shards'], 'shard adapter')} · "
                f"estimated {seconds(plan['estimate_s'])}")
    return text


def describe_receipts(result: dict[str, Any]) -> Text:
    text = Text()
    if result.get("request") is None and not result.get("receipts"):
        text.append("nothing to do: " + ", ".join(result.get("already_forgotten") or []))
        return text
    for receipt in result["receipts"]:
        removed = receipt["removed"]
        text.append(f"receipt {receipt['request']}", style="bold green")
        text.append(f" · removed train {removed.get('train', 0)}, valid "
                    f"{removed.get('valid', 0)}, test {removed.get('test', 0)} · "
                    f"{seconds(receipt['wall_s'])}\n")
        for change in receipt["adapters"]:
            before, after = change["before"], change["after"]
            text.append(f"  shard {change['shard']}: {before['id']} {before['sha256'][:10]} → ")
            text.append(f"{after['id']} {after['sha256'][:10]}\n" if after
                        else "retired (shard empty)\n")
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

    def __init__(self, user_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.user_id = user_id
        self.title = f"Forget user {user_id}"
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
        table.add_columns("shard", "removed", "remaining", "adapter", "action", "estimate")
        self.query_one("#plan-summary").border_title = "Plan"
        self.query_one("#forget-progress").border_title = "Progress"
        self.query_one("#forget-result").border_title = "Result"
        self.query_one("#forget-result").display = False
        self.app.progress_signal.subscribe(self, self._on_progress)

    def fetch(self, store: Store) -> dict[str, Any]:
        return unlearning.plan(store, unlearning.Targets(users=[self.user_id]))

    def show(self, plan: dict[str, Any]) -> None:
        self.plan = plan
        self.query_one("#plan-summary", Static).update(describe_plan(self.user_id, plan))
        table = self.query_one("#plan-shards", DataTable)
        table.clear()
        for shard in plan["shards"]:
            table.add_row(str(shard["shard"]), str(shard["removed"]), str(shard["remaining"]),
                          shard["adapter"] or "–", shard["action"], seconds(shard["estimate_s"]),
                          key=str(shard["shard"]))
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
        consequence = (f"This removes {samples} samples of user {self.user_id} from the store "
                       f"and retrains {plural(retrain, 'shard adapter')}. It cannot be undone.")
        self.app.push_screen(TypeToConfirm(self.user_id, consequence, "Forget",
                                           title=f"Forget user {self.user_id}"),
                             self._confirmed)

    def _confirmed(self, confirmed: bool | None) -> None:
        if not confirmed:
            self.notify("nothing was changed")
            return
        self.tracker = self.app.start_forget(self.user_id)
        if self.tracker is not None:
            # the plan's summary stays; the per-shard progress takes the table's place
            self.query_one("#plan-shards").display = False
            self.query_one(JobProgress).follow(self.tracker)
        self.refresh_bindings()

    def action_cancel(self) -> None:
        if self.tracker is not None and self.tracker.running:
            self.app.cancel_job()

    def _on_progress(self, tracker: ProgressTracker) -> None:
        if tracker is not self.tracker or tracker.running:
            return
        result = self.query_one("#forget-result", Static)
        if tracker.state == DONE:
            result.update(describe_receipts(tracker.result))
            result.display = True
        elif tracker.state == CANCELLED:
            result.update(Text(
                f"cancelled; request {tracker.request_id or '–'} stays pending "
                "(Requests & audit, a: apply)", style="yellow"))
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
