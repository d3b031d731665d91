"""Shard jobs and who runs them.

A shard job is everything one adapter's training needs, as plain data: prompts, labels and
sample ids in manifest order, the settings (seed included), and optionally the validation
pool to compute its column of the error table. A dispatcher runs a list of jobs and yields
each finished one in completion order. The default runs them one after another in this
process, on the caller's backbone; `ray_dispatch.py` (imported only when `--workers` or
`--ray-address` asks for it) runs them on Ray workers, each with its own copy of the model.
Either way a job runs the same code (`run_job`), so the adapter is the same bit for bit.

Dispatchers know nothing of the store: the caller names where each adapter folder goes and
commits the results itself, so it stays the single writer.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from apa_console.errors import UsageError
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

RAY_EXTRA = "pip install 'apa-console[ray]'"
CONNECT_TIMEOUT_S = 5.0
JOIN_TIMEOUT_S = 60.0
# Ray ends the process that cannot reach a cluster's GCS, so joining is tried in a child first.
_JOIN_PROBE = ("import sys, ray; ray.init(address=sys.argv[1], include_dashboard=False, "
               "log_to_driver=False, configure_logging=False); ray.shutdown()")
_ADDRESS = re.compile(r"^(auto|(ray://)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5})$")


@dataclass(frozen=True)
class DispatchOptions:
    """Where shard jobs run. Neither `workers` nor `address`: here, one after another.

    `workers`: N Ray workers (a local Ray instance started for the command unless `address`
    names a running cluster; with `address`, at most N workers, default one per job).
    `gpus_per_job` / `cpus_per_job`: what Ray reserves for each worker (fractions share a
    GPU); gpus default to 1 when the model runs on CUDA, else 0.
    """

    workers: int | None = None
    address: str | None = None
    gpus_per_job: float | None = None
    cpus_per_job: float | None = None

    @property
    def distributed(self) -> bool:
        return self.workers is not None or self.address is not None

    def check(self) -> DispatchOptions:
        """Refuse impossible combinations (UsageError, exit 2) before anything runs."""
        if self.workers is not None and self.workers < 1:
            raise UsageError("--workers must be at least 1")
        if not self.distributed and (self.gpus_per_job is not None
                                     or self.cpus_per_job is not None):
            raise UsageError("--gpus-per-job and --cpus-per-job need --workers or --ray-address")
        for name, value in (("--gpus-per-job", self.gpus_per_job),
                            ("--cpus-per-job", self.cpus_per_job)):
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise UsageError(f"{name} must be a number >= 0")
        if self.address is not None and not _ADDRESS.match(self.address):
            raise UsageError(f"--ray-address {self.address!r} is not a Ray address "
                             "(HOST:PORT, ray://HOST:PORT or auto)")
        if self.address is not None:
            _reachable(self.address)
            _joinable(self.address)
        return self


def _reachable(address: str) -> None:
    """Refuse (exit 2) an address nothing listens on, before any work and instead of Ray's
    long retries."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT_S).close()
    except (OSError, ValueError) as exc:
        raise UsageError(f"no Ray cluster answers at {address} ({' '.join(str(exc).split())}); "
                         "start one with `ray start --head`, or check the address") from None


def _joinable(address: str) -> None:
    """Refuse (exit 2) an address where something answers but no Ray cluster can be joined:
    Ray itself would retry for a minute and then end this process."""
    env = {**os.environ, "RAY_gcs_rpc_server_reconnect_timeout_s": "10"}
    try:
        joined = subprocess.run([sys.executable, "-c", _JOIN_PROBE, address], env=env,
                                capture_output=True, text=True, timeout=JOIN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise UsageError(f"no Ray cluster could be joined at {address} within "
                         f"{JOIN_TIMEOUT_S:.0f} s; check the address (the head's GCS port, "
                         "6379 unless `ray start --port` chose another)") from None
    if joined.returncode == 0:
        return
    if "No module named 'ray'" in joined.stderr:
        raise UsageError(f"--workers and --ray-address need Ray: {RAY_EXTRA}")
    # Ray's last complaint, without its log prefix: "Failed to connect to GCS within 10 s…"
    reasons = [_ray_log_message(line) for line in joined.stderr.splitlines()
               if "Error" in line or "Failed to" in line]
    reason = " ".join(reasons[-1].split())[:160] if reasons else "Ray could not join it"
    raise UsageError(f"{address} answers but is not a Ray cluster this machine can join "
                     f"({reason})")


def _ray_log_message(line: str) -> str:
    """"[time W pid tid] file.cc:12: Failed to connect. More…" → "Failed to connect"."""
    if line.startswith("["):
        line = line.partition("] ")[2].partition(": ")[2] or line
    return line.split(". ")[0]


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


@contextmanager
def open_dispatcher(backbone, options: DispatchOptions | None) -> Iterator[Dispatcher]:
    """The dispatcher `options` ask for. Ray is imported only for a distributed one, and
    started (or joined) only when its first jobs arrive; it is left when this exits."""
    if options is None or not options.distributed:
        yield SequentialDispatcher(backbone)
        return
    options.check()
    try:
        from apa_console.engine.ray_dispatch import RayDispatcher
    except ImportError as exc:
        if "ray" not in str(exc):
            raise
        raise UsageError(f"--workers and --ray-address need Ray: {RAY_EXTRA}") from None
    dispatcher = RayDispatcher(backbone, options)
    try:
        yield dispatcher
    finally:
        dispatcher.close()
