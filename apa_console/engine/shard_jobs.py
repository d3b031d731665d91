"""Shard jobs and the code every dispatcher runs for one.

A shard job is everything one adapter's training needs, as plain data: prompts, labels and
sample ids in manifest order, the settings (seed included), and optionally the validation
pool to compute its column of the error table. Every dispatcher runs a job through
`run_job`, so the adapter is the same bit for bit wherever it runs.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from apa_console.progress import (
    NEVER_CANCELLED,
    CancelToken,
    ProgressCallback,
    ProgressEvent,
    ignore_progress,
)

if TYPE_CHECKING:  # numpy and torch load with the jobs, not with the CLI's options
    import numpy as np

    from apa_console.engine.training import TrainResult


@dataclass(frozen=True)
class ShardJob:
    """One adapter to train. `name` ("shard-2", "baseline") prefixes the progress tasks;
    `purpose` ("train", "verify") ends the training task's name. `out_dir`: where the
    adapter folder must end up on this machine (None: only its hashes are wanted).
    Validation prompts and labels, when given, yield the adapter's validation errors."""

    name: str
    prompts: list[str]
    labels: list[int]
    sample_ids: list[str]
    settings: dict[str, Any]
    out_dir: Path | None
    valid_prompts: list[str] = field(default_factory=list)
    valid_labels: list[int] = field(default_factory=list)
    validate: bool = True
    purpose: str = "train"
    key: Any = None  # the caller's handle on the job (e.g. its shard number)


@dataclass
class JobResult:
    job: ShardJob
    train: TrainResult
    valid_errors: np.ndarray | None = None
    valid_wall_s: float = 0.0


class Dispatcher(Protocol):
    def run(self, jobs: Iterable[ShardJob], *, progress: ProgressCallback = ...,
            cancel: CancelToken = ...) -> Iterator[JobResult]:
        """Run `jobs`; yield each result as it finishes. Raises CancelledError once `cancel`
        is set (after the results finished before it), or a one-line error naming the jobs
        that failed after yielding every one that did not."""
        ...


def run_job(backbone, job: ShardJob, out_dir: Path, *,
            progress: ProgressCallback = ignore_progress,
            cancel: CancelToken = NEVER_CANCELLED) -> JobResult:
    """Train one job's adapter into `out_dir` (a new folder) on `backbone`, then score the
    validation pool with it: the one code path every dispatcher runs."""
    from apa_console.engine.mixture import absolute_errors
    from apa_console.engine.training import TrainSettings, train_adapter

    # both stages announced now, so a front-end shows the whole job from the start
    progress(ProgressEvent(f"{job.name} ({job.purpose})", 0, 0, unit="step",
                           message="preparing"))
    if job.validate:
        progress(ProgressEvent(f"{job.name} (validation)", 0, len(job.valid_prompts),
                               unit="sample", message="after training"))
    result = train_adapter(
        backbone, job.prompts, job.labels, job.sample_ids,
        TrainSettings.from_dict(job.settings), out_dir, progress=progress, cancel=cancel,
        task=f"{job.name} ({job.purpose})",
    )
    if not job.validate:
        return JobResult(job, result)
    started = time.perf_counter()
    errors = absolute_errors(backbone, out_dir, job.valid_prompts, job.valid_labels,
                             progress=progress, cancel=cancel, task=f"{job.name} (validation)")
    return JobResult(job, result, errors, time.perf_counter() - started)


class SequentialDispatcher:
    """The jobs one after another on the caller's backbone (what every command does without
    `--workers`/`--ray-address`)."""

    def __init__(self, backbone) -> None:
        self.backbone = backbone

    def run(self, jobs: Iterable[ShardJob], *, progress: ProgressCallback = ignore_progress,
            cancel: CancelToken = NEVER_CANCELLED) -> Iterator[JobResult]:
        for job in jobs:
            cancel.raise_if_cancelled()
            if job.out_dir is not None:
                yield run_job(self.backbone, job, job.out_dir, progress=progress, cancel=cancel)
                continue
            scratch = Path(tempfile.mkdtemp(prefix="apa-job-"))
            try:
                yield run_job(self.backbone, job, scratch / "adapter", progress=progress,
                              cancel=cancel)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
