"""The console app: five sections (Overview, Users, Shards, Requests & audit, Charts) as modes,
screens pushed on top of them (a user, a score, a forget), one background job at a time,
and a refresh whenever another process commits to the store."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.signal import Signal

from apa_console.errors import ApaError
from apa_console.store.document import Store
from apa_console.tui import operations
from apa_console.tui.commands import RequestCommands, UserCommands
from apa_console.tui.jobs import new_tracker, run_tracked
from apa_console.tui.model_host import ModelHost
from apa_console.tui.screens.charts import CHARTS, ChartsScreen
from apa_console.tui.screens.forget import ForgetScreen, forget_title
from apa_console.tui.screens.help import HelpScreen
from apa_console.tui.screens.job import JobScreen
from apa_console.tui.screens.modals import AskDirectory, ConfirmModal, ErrorModal
from apa_console.tui.screens.overview import OverviewScreen
from apa_console.tui.screens.request_detail import RequestScreen
from apa_console.tui.screens.requests import RequestsScreen
from apa_console.tui.screens.score import ScoreScreen
from apa_console.tui.screens.shards import ShardsScreen
from apa_console.tui.screens.user_detail import UserScreen
from apa_console.tui.screens.users import UsersScreen
from apa_console.tui.tracker import CANCELLED, DONE, ProgressTracker
from apa_console.tui.widgets.nav_bar import SECTIONS
from apa_console.unlearning import describe
from apa_console.unlearning import requests as requests_core

STORE_POLL_S = 1.0


class ApaConsoleApp(App[None]):
    TITLE = "apa-console"
    CSS_PATH = "app.tcss"
    MODES = {
        "overview": OverviewScreen,
        "users": UsersScreen,
        "shards": ShardsScreen,
        "requests": RequestsScreen,
        "charts": ChartsScreen,
    }
    DEFAULT_MODE = "overview"
    COMMANDS = App.COMMANDS | {UserCommands, RequestCommands}
    BINDINGS = [
        *(Binding(key, f"switch_mode('{mode}')", label, show=False)
          for mode, key, label in SECTIONS),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
        Binding("j", "show_job", "Job", show=False),
        Binding("c", "cancel_job", "Cancel retrain", show=False),
    ]

    def __init__(
        self,
        store: Store,
        *,
        model: str | None = None,
        device: str | None = None,
        readonly: bool = False,
        poll_s: float = STORE_POLL_S,
    ) -> None:
        super().__init__()
        self.store = store
        self.readonly = readonly
        self.models = ModelHost(store, model, device)
        self.poll_s = poll_s
        self.store_token = store.change_token()
        # Published when another writer (or our own job) commits; screens reload on it.
        self.store_signal: Signal[object] = Signal(self, "store-changed")
        # Published on every tracker update; progress widgets pick out their tracker.
        self.progress_signal: Signal[ProgressTracker] = Signal(self, "progress")
        self.job: ProgressTracker | None = None
        self._report_done: Callable[[ProgressTracker], None] = self._forget_finished
        self._quit_when_idle = False

    def on_mount(self) -> None:
        self.sub_title = str(self.store.root)
        if self.readonly:
            self.sub_title += " (read-only)"
        self.set_interval(self.poll_s, self.check_store)

    # -- store changes ---------------------------------------------------------------------

    def check_store(self) -> None:
        token = self.store.change_token()
        if token != self.store_token:
            self.store_token = token
            self.store_signal.publish(token)

    # -- progress --------------------------------------------------------------------------

    def on_tracker_updated(self, message) -> None:
        tracker: ProgressTracker = message.tracker
        self.progress_signal.publish(tracker)
        if not tracker.running and not tracker.finish_announced:
            tracker.finish_announced = True
            if tracker.on_finish is not None:
                tracker.on_finish(tracker)

    # -- navigation ------------------------------------------------------------------------

    def open_user(self, user_id: str) -> None:
        self.push_screen(UserScreen(user_id))

    def open_request(self, request_id: str) -> None:
        self.push_screen(RequestScreen(request_id))

    def withdraw_request(self, request_id: str) -> None:
        """Withdraw a queued request (after a confirmation), as `x` on Requests does."""
        if self.readonly:
            return

        def confirmed(yes: bool | None) -> None:
            if not yes:
                self.notify("nothing was changed")
                return
            try:
                requests_core.cancel(self.store, request_id)
            except ApaError as exc:
                self.show_error(str(exc))
                return
            self.notify(f"{request_id} withdrawn; nothing was removed")
            self.check_store()

        self.push_screen(ConfirmModal(
            f"Withdraw {request_id}? It has removed nothing yet; the data stays in the store.",
            title="Withdraw a queued request"), confirmed)

    def show_chart(self, chart: str, shard: int | None = None) -> None:
        """Charts (5) on one chart; the loss chart can open on a shard (l on Shards)."""

        def on_charts() -> None:
            if isinstance(self.screen, ChartsScreen):
                self.screen.show_chart(chart, shard)

        self.switch_mode("charts")
        self.call_after_refresh(on_charts)

    def score(self, user: str | None = None) -> None:
        self.push_screen(ScoreScreen(user))

    def action_score_test(self) -> None:
        self.score(None)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def show_error(self, message: str) -> None:
        self.push_screen(ErrorModal(message))

    # -- the background job: forget / apply -------------------------------------------------

    @property
    def job_running(self) -> bool:
        return self.job is not None and self.job.running

    def forget(self, *user_ids: str) -> None:
        """Show the plan for forgetting these users together (one request)."""
        if not self.readonly and user_ids:
            self.push_screen(ForgetScreen(list(user_ids)))

    def start_forget(self, user_ids: list[str], queued: set[str],
                     plan: dict | None = None) -> ProgressTracker | None:
        """Forget `user_ids` and the open requests `queued` the operator saw in `plan`
        (whose estimate the progress shows)."""
        tracker = self._start_job(forget_title(user_ids),
                                  operations.forget_users(self.store, self.models, user_ids,
                                                          queued))
        if tracker is not None and plan is not None:
            tracker.estimate_s = plan.get("estimate_s")
            tracker.estimate_basis = describe.estimate_basis(plan)
        return tracker

    def apply_pending(self) -> None:
        if self.readonly:
            return
        if self.job_running:
            self.show_error("a retrain is already running; wait for it or cancel it (j)")
            return

        def confirmed(yes: bool | None) -> None:
            if yes and self._start_job("apply pending requests",
                                       operations.apply_pending(self.store, self.models)):
                self.push_screen(JobScreen())

        self.push_screen(ConfirmModal(
            "Process every pending forget request now? The affected shards are retrained.",
            title="Apply pending requests"), confirmed)

    def verify_request(self, request_id: str) -> None:
        """Retrain the request's shards and check them bit for bit (changes nothing)."""
        if self._start_job(f"verify {request_id}", operations.verify(
                self.store, self.models, request_id), on_done=self._verify_finished):
            self.push_screen(JobScreen())

    def export_samples(self) -> None:
        """Ask for a directory, then write the samples there as TALLRec JSON (`export tallrec`)."""

        def chosen(directory: Path | None) -> None:
            if directory is not None:
                self.run_worker(partial(self._export_to, directory), thread=True,
                                name="export", exit_on_error=False)

        self.push_screen(AskDirectory("Write train.json, valid.json and test.json (TALLRec's "
                                      "format) into which directory?", "Export the samples"),
                         chosen)

    def _export_to(self, directory: Path) -> None:
        from apa_console.workflows.export import export_samples

        try:
            written = export_samples(self.store, directory)
        except ApaError as exc:
            self.call_from_thread(self.show_error, str(exc))
            return
        counts = " / ".join(str(count) for _, count in written.values())
        self.call_from_thread(self.notify, f"wrote {len(written)} files to {directory} "
                              f"(train / valid / test: {counts} samples)", title="Exported")

    def _start_job(self, title: str, work: operations.Work,
                   on_done: Callable[[ProgressTracker], None] | None = None
                   ) -> ProgressTracker | None:
        """Run `work` as the background job; `on_done` reports its result (default: the
        receipts a forget or apply wrote)."""
        if self.job_running:
            self.show_error("a retrain is already running; wait for it or cancel it (j)")
            return None
        self._report_done = on_done or self._forget_finished
        self.job = new_tracker(self, title, on_finish=self._job_finished)
        run_tracked(self, self.job, work)
        self.progress_signal.publish(self.job)
        self.refresh_bindings()
        return self.job

    def _job_finished(self, tracker: ProgressTracker) -> None:
        if tracker.state == DONE:
            self._report_done(tracker)
        elif tracker.state == CANCELLED:
            pending = f"; request {tracker.request_id} stays pending" if tracker.request_id else ""
            self.notify(f"{tracker.title}: cancelled{pending}", severity="warning")
        else:
            self.show_error(tracker.error or f"{tracker.title} failed")
        self.check_store()
        self.refresh_bindings()
        if self._quit_when_idle:
            self.exit()

    def _forget_finished(self, tracker: ProgressTracker) -> None:
        receipts = (tracker.result or {}).get("receipts", [])
        self.notify(f"{tracker.title}: done, {len(receipts)} receipt(s) written",
                    title="Forget finished")

    def _verify_finished(self, tracker: ProgressTracker) -> None:
        title, result = tracker.title, tracker.result
        checks, traces = result["shards"], result["traces"]
        same = sum(check["ok"] for check in checks)
        summary = (f"{same} of {len(checks)} shard{'s' if len(checks) != 1 else ''} "
                   f"bit-identical, {len(traces)} trace{'s' if len(traces) != 1 else ''}")
        if result["ok"]:
            self.notify(f"{title}: PASS ({summary})", title="Verified")
        else:
            self.show_error(f"{title}: FAIL ({summary})")

    def action_cancel_job(self) -> None:
        if self.job_running:
            assert self.job is not None
            self.job.cancel.cancel()
            self.notify("cancelling after the current step…", severity="warning")

    def action_show_job(self) -> None:
        if self.job is not None and not isinstance(self.screen, JobScreen):
            self.push_screen(JobScreen())

    async def action_quit(self) -> None:
        if self.job_running and not self._quit_when_idle:
            assert self.job is not None

            def confirmed(yes: bool | None) -> None:
                if not yes:
                    return
                # Stop at a clean step boundary: the request stays pending, nothing
                # half-written.
                self._quit_when_idle = True
                self.action_cancel_job()
                self.notify("quitting once the job stops (q again to quit now)")

            self.push_screen(ConfirmModal(
                f"{self.job.title} is running. Quitting cancels it at its next "
                "step; a forget stays pending for `apa-console apply`. Quit?",
                title="Quit while a job runs"), confirmed)
            return
        self.exit()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_job":
            return self.job_running
        if action == "show_job":
            return self.job is not None
        return True

    # -- command palette -------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode, key, label in SECTIONS:
            yield SystemCommand(label, f"go to {label} ({key})",
                                lambda mode=mode: self.switch_mode(mode))
        for chart, label, shows in CHARTS:
            yield SystemCommand(f"Chart: {label}", shows,
                                lambda chart=chart: self.show_chart(chart))
        yield SystemCommand("Score the test split", "APA P(Yes), weights and AUC on test",
                            self.action_score_test)
        if not self.readonly:
            yield SystemCommand("Apply pending requests", "retrain the shards pending "
                                "forget requests touch", self.apply_pending)
        if self.job is not None:
            yield SystemCommand("Show the background job", "progress per shard (j)",
                                self.action_show_job)
        yield SystemCommand("Export the samples", "train/valid/test JSON in TALLRec's format",
                            self.export_samples)
        yield SystemCommand("Help", "all keys (?)", self.action_help)
