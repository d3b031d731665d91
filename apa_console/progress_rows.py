"""How the CLI and the TUI turn the latest event of each task into the rows a person reads.

A shard job reports its stages as separate tasks ("shard-1 (train)" counting steps, then
"shard-1 (validation)" counting samples). Shown as they come, the bar would fill, drop back
to zero and change its unit. Here a job is one row whose bar spans all its stages (each an
equal part, in `JOB_STAGES` order), and whose count names the stage and its unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from apa_console.progress import (
    MODEL_TASK,
    OVERALL_TASK,
    PURGE_TASK,
    ProgressEvent,
    split_task,
    stage_index,
)
from apa_console.units import plural


class TaskState(Protocol):
    """What a front-end keeps per task: its newest event, when it last reported (higher is
    more recent), its latest loss and an ETA."""

    event: ProgressEvent
    order: int
    eta_s: float | None
    last_loss: float | None


@dataclass(frozen=True)
class Row:
    name: str  # "shard-1", "model", "overall"
    stage: str  # the stage running now ("train", "validation"), "" for a one-stage task
    stages: tuple[str, ...]
    fraction: float  # of the whole row, every stage together
    count: str  # "3/6 steps", "12/48 samples", "" when the task counts nothing
    event: ProgressEvent  # the newest event of the row
    loss: float | None  # training loss, kept while later stages run
    eta_s: float | None  # of the stage running now
    order: int

    @property
    def done(self) -> bool:
        return self.fraction >= 1.0

    @property
    def label(self) -> str:
        """"train (1/2)": which stage of how many, when there are several."""
        if len(self.stages) < 2:
            return self.stage
        return f"{self.stage} ({self.stages.index(self.stage) + 1}/{len(self.stages)})"


def count_text(event: ProgressEvent) -> str:
    if not event.unit or event.total <= 0:
        return ""
    return f"{event.step}/{plural(event.total, event.unit)}"


def progress_rows(tasks: list[TaskState]) -> list[Row]:
    """One row per job or task, in the order each first appeared."""
    groups: dict[str, list[TaskState]] = {}
    for task in tasks:
        groups.setdefault(split_task(task.event.task)[0], []).append(task)
    return [_row(name, members) for name, members in groups.items()]


def _row(name: str, members: list[TaskState]) -> Row:
    by_stage = {split_task(m.event.task)[1]: m for m in members}
    stages = tuple(sorted(by_stage, key=stage_index))
    latest = max(members, key=lambda m: m.order)
    # stages are announced (step 0) before they run: the current one is the latest that
    # has made a step, or else the first stage
    started = [m for m in members if m.event.step > 0]
    current = (max(started, key=lambda m: m.order) if started else
               min(members, key=lambda m: stage_index(split_task(m.event.task)[1])))
    stage = split_task(current.event.task)[1]
    position = stages.index(stage)
    event = current.event
    within = min(event.step / event.total, 1.0) if event.total > 0 else 0.0
    losses = [m.last_loss for m in sorted(members, key=lambda m: m.order)
              if m.last_loss is not None]
    return Row(name, stage, stages, (position + within) / len(stages), count_text(event),
               event, losses[-1] if losses else None, current.eta_s,
               latest.order)


def activity(rows: list[Row], running: bool) -> str:
    """What a running job is doing now, in words: the row that reported last and is not
    finished ("loading the model…", "training shard-1", "validating shard-1")."""
    if not running:
        return ""
    busy = [row for row in rows if not row.done and row.name != OVERALL_TASK]
    if not busy:
        overall = next((row for row in rows if row.name == OVERALL_TASK), None)
        if overall is not None and overall.done:
            return "swapping the new adapters in…"
        return "starting…"
    row = max(busy, key=lambda r: r.order)
    if row.name == MODEL_TASK:
        return row.event.message or "loading the model…"
    if row.name == PURGE_TASK:
        return "removing the samples…"
    if row.stage == "validation":
        return f"validating {row.name}"
    if row.stage in ("train", "verify"):
        return f"{'retraining' if row.stage == 'verify' else 'training'} {row.name}"
    return row.event.message or row.name
