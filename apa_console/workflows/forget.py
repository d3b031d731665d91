"""Forgetting, the one way every front-end and benchmark does it: plan → submit → apply."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from apa_console.engine.dispatch_options import DispatchOptions
from apa_console.errors import ConflictError
from apa_console.progress import (
    MODEL_TASK,
    NEVER_CANCELLED,
    CancelToken,
    ProgressCallback,
    ProgressEvent,
    ignore_progress,
)
from apa_console.store.document import Store
from apa_console.unlearning import audit_log, requests
from apa_console.unlearning.targets import Targets

if TYPE_CHECKING:  # torch loads with the model, not with the front-end
    from apa_console.engine.backbone import Backbone

# Front-ends load the model their own way (the TUI shares one across jobs): a context
# manager that yields the store's backbone.
ModelLoader = Callable[[], "AbstractContextManager[Backbone]"]


@dataclass
class ForgetOutcome:
    plan: dict[str, Any] | None
    request: str | None = None  # the request this call recorded, if any
    queued: bool = False  # recorded only; `apply` processes it
    receipts: list[dict[str, Any]] = field(default_factory=list)  # every request applied
    already_forgotten: list[str] = field(default_factory=list)
    leftovers_removed: list[str] = field(default_factory=list)
    # the audit chain's head after this call changed the store: record it outside the store
    audit_head: str | None = None

    def to_dict(self) -> dict[str, Any]:
        status = None if self.request is None else ("pending" if self.queued else "done")
        return {"plan": self.plan, "request": self.request, "status": status,
                "receipts": self.receipts, "already_forgotten": self.already_forgotten,
                "audit_head": self.audit_head}


def plan(store: Store, targets: Targets) -> dict[str, Any]:
    """What forgetting `targets` would do; changes nothing."""
    return requests.plan(store, targets)


def same_queue(plan: dict[str, Any], confirmed: set[str]) -> None:
    """Refuse when the open requests differ from those the operator confirmed (another
    process queued or applied one since the plan was shown)."""
    now = {q["request"] for q in plan["queued"]}
    if now != confirmed:
        added, gone = sorted(now - confirmed), sorted(confirmed - now)
        change = "; ".join(part for part in (
            f"{', '.join(added)} queued" if added else "",
            f"{', '.join(gone)} finished" if gone else "") if part)
        raise ConflictError(f"the open requests changed since the plan was shown ({change}); "
                            "nothing was changed: review the plan again")


def forget(
    store: Store,
    targets: Targets,
    model: ModelLoader,
    *,
    confirm: Callable[[dict[str, Any]], None] | None = None,
    queue: bool = False,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken = NEVER_CANCELLED,
    dispatch: DispatchOptions | None = None,
) -> ForgetOutcome:
    """Plan; let `confirm(plan)` refuse by raising; record the request; unless `queue`,
    apply it together with the open requests the plan listed (what the operator confirmed,
    nothing queued after the plan was shown).

    The request is committed before any model work, so a cancel or crash leaves it
    pending for `apply`.
    """
    the_plan = plan(store, targets)
    if sum(the_plan["samples"].values()) == 0:
        return ForgetOutcome(the_plan, already_forgotten=the_plan["already_forgotten"])
    if confirm is not None:
        confirm(the_plan)
    submitted = requests.submit(store, targets)
    request = submitted["request"]
    outcome = ForgetOutcome(the_plan, request=request["id"] if request else None,
                            already_forgotten=submitted["already_forgotten"])
    if request is None:
        return outcome
    progress(ProgressEvent("request", 1, 1, message=f"{request['id']} recorded",
                           request=request["id"]))
    if queue:
        outcome.queued = True
        outcome.audit_head = audit_log.current_head(store)
        return outcome
    confirmed = {request["id"]} | {q["request"] for q in the_plan["queued"]}
    applied = apply_pending(store, model, progress=progress, cancel=cancel, only=confirmed,
                            dispatch=dispatch)
    outcome.receipts, outcome.audit_head = applied.receipts, applied.audit_head
    return outcome


def apply_pending(
    store: Store,
    model: ModelLoader,
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken = NEVER_CANCELLED,
    only: set[str] | None = None,
    dispatch: DispatchOptions | None = None,
) -> ForgetOutcome:
    """Process every open request (or those in `only`); with none, only delete files an
    interrupted run left. `dispatch` retrains the shards on Ray workers."""
    # the pipeline loads torch: a front-end that only plans (the TUI's forget screen) never does
    from apa_console.unlearning import forget as forget_pipeline

    if not requests.open_requests(store):
        return ForgetOutcome(None, leftovers_removed=forget_pipeline.remove_leftovers(store))
    if not requests.needs_retraining(store, only):  # nothing to train: no model to load
        receipts = forget_pipeline.apply_pending(store, None, progress=progress,
                                                 cancel=cancel, only=only, dispatch=dispatch)
        return ForgetOutcome(None, receipts=receipts, audit_head=audit_log.current_head(store))
    # the model takes a while to load: say so, or the first seconds look like a hang
    progress(ProgressEvent(MODEL_TASK, 0, 1, message="loading the model…"))
    with model() as backbone:
        progress(ProgressEvent(MODEL_TASK, 1, 1, message="model loaded"))
        receipts = forget_pipeline.apply_pending(store, backbone, progress=progress,
                                                 cancel=cancel, only=only, dispatch=dispatch)
    return ForgetOutcome(None, receipts=receipts, audit_head=audit_log.current_head(store))
