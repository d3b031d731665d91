"""Shard jobs on Ray workers: the `[ray]` extra, imported only for `--workers`/`--ray-address`.

Each worker is a Ray actor that loads the backbone once, from the model directory the driver
names (the same path on every node: one machine, or a shared filesystem), and refuses to
work when the model it finds there has another fingerprint than the driver's. The driver
hands each idle worker the next job; the worker trains it with `dispatch.run_job` (the code
the sequential path runs, with the driver's settings, seed, device type and compute dtype,
so adapters are bit-identical on one machine) in a scratch folder, and returns the adapter's
files with the result. Workers never see the store: the driver writes the files into the
folder the job names and its caller commits them.

Progress and cancel go through one small relay actor: workers push their ProgressEvents to
it at most every `SYNC_S` seconds and learn in the same call whether the driver asked them to
stop; the driver drains it between waits and forwards every event to its own callback.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from apa_console.engine.adapter_format import ADAPTER_WEIGHTS
from apa_console.engine.dispatch_options import DispatchOptions
from apa_console.engine.shard_jobs import JobResult, ShardJob, run_job
from apa_console.errors import (
    ApaError,
    CancelledError,
    ConflictError,
    UsageError,
    WorkerError,
)
from apa_console.fileio import sha256_file
from apa_console.progress import (
    NEVER_CANCELLED,
    CancelToken,
    ProgressCallback,
    ProgressEvent,
    ignore_progress,
)

SYNC_S = 0.1  # how often a worker sends its progress and looks for a cancel
WAIT_S = 0.1  # how long the driver waits for a result before forwarding progress again
# Test hook (like unlearning/crash_points.py): a worker whose job is named in the file this
# variable names exits at that job's first training step, as a crashed node would.
WORKER_CRASH_ENV = "APA_WORKER_CRASH_FILE"


@ray.remote(num_cpus=0)
class _Relay:
    """Progress events from the workers to the driver, and the driver's cancel back."""

    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []
        self.cancelled = False

    def push(self, events: list[ProgressEvent]) -> bool:
        self.events.extend(events)
        return self.cancelled

    def drain(self) -> list[ProgressEvent]:
        events, self.events = self.events, []
        return events

    def cancel(self) -> None:
        self.cancelled = True


class _RelayLink(CancelToken):
    """A worker's progress callback and cancel token in one: events are batched and sent
    with each cancel poll, at most every SYNC_S seconds (and at every finished task)."""

    def __init__(self, relay) -> None:
        super().__init__()
        self.relay = relay
        self.buffer: list[ProgressEvent] = []
        self.synced = 0.0

    def __call__(self, event: ProgressEvent) -> None:
        self.buffer.append(event)
        if event.done:
            self.sync()
        else:
            self._sync_if_due()

    def _sync_if_due(self) -> None:
        if time.monotonic() - self.synced >= SYNC_S:
            self.sync()

    def sync(self) -> None:
        events, self.buffer = self.buffer, []
        if ray.get(self.relay.push.remote(events)):
            self.cancel()
        self.synced = time.monotonic()

    @property
    def cancelled(self) -> bool:
        self._sync_if_due()
        return super().cancelled

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise CancelledError()


@ray.remote(max_restarts=0)
class ShardWorker:
    """One copy of the backbone; trains the jobs it is given, one at a time."""

    def __init__(self, model_dir: str, device: str, dtype: str, answer_style: str) -> None:
        self.model_dir, self.device, self.dtype = model_dir, device, dtype
        self.answer_style = answer_style
        self.backbone = None

    def load(self) -> dict[str, Any]:
        from apa_console.engine.backbone import Backbone

        self.backbone = Backbone.load(self.model_dir, self.device, dtype=self.dtype,
                                      answer_style=self.answer_style)
        return {"fingerprint": self.backbone.info["fingerprint"],
                "host": socket.gethostname(), "pid": os.getpid()}

    def run(self, job: ShardJob, relay) -> tuple[JobResult, dict[str, bytes]]:
        link = _RelayLink(relay)
        progress: ProgressCallback = link
        if _crash_requested(job.name):
            progress = _crash_on_first_step(link)
        scratch = Path(tempfile.mkdtemp(prefix="apa-worker-"))
        try:
            result = run_job(self.backbone, job, scratch / "adapter", progress=progress,
                             cancel=link)
            link.sync()  # the last events before the result
            files = ({path.name: path.read_bytes()
                      for path in sorted((scratch / "adapter").iterdir()) if path.is_file()}
                     if job.out_dir is not None else {})
            return result, files
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def _crash_requested(name: str) -> bool:
    path = os.environ.get(WORKER_CRASH_ENV)
    try:
        return bool(path) and name in Path(path).read_text().split()
    except OSError:
        return False


def _crash_on_first_step(progress: ProgressCallback) -> ProgressCallback:
    def forward(event: ProgressEvent) -> None:
        progress(event)
        os._exit(1)
    return forward


class RayDispatcher:
    """Shard jobs on Ray workers (see the module docstring). Joins the Ray instance this
    process already runs, or the cluster at `options.address`, or starts a local one with
    room for `options.workers` workers; leaves only what it started."""

    def __init__(self, backbone, options: DispatchOptions) -> None:
        self.backbone = backbone
        self.options = options
        self.started_ray = False
        self.workers: list[Any] = []
        self.relay = None
        on_cuda = backbone.device.type == "cuda"
        gpus = options.gpus_per_job
        if gpus is None:
            gpus = 1.0 if on_cuda else 0.0
        if on_cuda and gpus == 0:
            raise UsageError("the model runs on CUDA: give each job a GPU share "
                             "(--gpus-per-job > 0), or run with --device cpu")
        self.gpus = gpus
        self.cpus = 1.0 if options.cpus_per_job is None else options.cpus_per_job

    # -- the cluster and the workers ----------------------------------------------------

    def _connect(self) -> None:
        if ray.is_initialized():
            return
        quiet = {"include_dashboard": False, "log_to_driver": False,
                 "configure_logging": False}
        if self.options.address is not None:
            try:
                ray.init(address=self.options.address, **quiet)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise UsageError(f"cannot join the Ray cluster at {self.options.address}: "
                                 f"{' '.join(str(exc).split())[:200]}") from None
        else:
            workers = self.options.workers or 1
            # this process's import path, so workers load the same apa_console as the driver
            path = os.pathsep.join(p for p in (str(Path(__file__).parents[2]),
                                               os.environ.get("PYTHONPATH")) if p)
            ray.init(num_cpus=max(1, int(round(workers * self.cpus + 0.4999))),
                     runtime_env={"env_vars": {"PYTHONPATH": path}}, **quiet)
        self.started_ray = True

    def _start_workers(self, count: int) -> None:
        self._connect()
        self.relay = _Relay.remote()
        device = self.backbone.device.type  # Ray gives each worker its own GPU(s) as cuda:0
        from apa_console.engine.devices import dtype_name

        self.workers = [
            ShardWorker.options(num_cpus=self.cpus, num_gpus=self.gpus).remote(
                str(self.backbone.directory), device, dtype_name(self.backbone.dtype),
                self.backbone.info["answer_style"])
            for _ in range(count)
        ]
        expected = self.backbone.info["fingerprint"]
        loaded = [worker.load.remote() for worker in self.workers]
        for ref in loaded:
            try:
                info = ray.get(ref)
            except RayTaskError as exc:
                cause = exc.cause
                if isinstance(cause, ApaError):
                    raise type(cause)(f"a Ray worker could not load the model: {cause}"
                                      ) from None
                raise WorkerError(f"a Ray worker could not load the model from "
                                  f"{self.backbone.directory}: {_one_line(cause)}") from None
            except RayActorError as exc:
                raise WorkerError(f"a Ray worker died while loading the model: "
                                  f"{_one_line(exc)}") from None
            if info["fingerprint"] != expected:
                raise ConflictError(
                    f"the Ray worker on {info['host']} finds another model at "
                    f"{self.backbone.directory} (fingerprint {info['fingerprint'][:12]}, the "
                    f"driver's is {expected[:12]}); every node must see the same model files")

    def close(self) -> None:
        for worker in self.workers:
            ray.kill(worker)
        if self.relay is not None:
            ray.kill(self.relay)
        self.workers, self.relay = [], None
        if self.started_ray:
            ray.shutdown()
            self.started_ray = False

    # -- running jobs ---------------------------------------------------------------------

    def run(self, jobs: Iterable[ShardJob], *, progress: ProgressCallback = ignore_progress,
            cancel: CancelToken = NEVER_CANCELLED) -> Iterator[JobResult]:
        queue = deque(jobs)
        if not queue:
            return
        cancel.raise_if_cancelled()
        if not self.workers:
            limit = self.options.workers or len(queue)
            self._start_workers(min(limit, len(queue)))
        idle = list(self.workers)
        running: dict[Any, tuple[Any, ShardJob]] = {}
        failures: list[str] = []
        cancelled = False
        try:
            while queue or running:
                while queue and idle and not cancelled:
                    worker, job = idle.pop(0), queue.popleft()
                    running[worker.run.remote(job, self.relay)] = (worker, job)
                if not running:  # every worker is gone: the rest cannot run
                    failures += [f"{job.name}: no Ray worker left to run it" for job in queue]
                    queue.clear()
                    break
                ready, _ = ray.wait(list(running), num_returns=1, timeout=WAIT_S)
                self._forward(progress)
                if cancel.cancelled and not cancelled:
                    cancelled = True
                    queue.clear()
                    self.relay.cancel.remote()
                for ref in ready:
                    worker, job = running.pop(ref)
                    outcome, died = self._outcome(ref, job)
                    if not died:
                        idle.append(worker)
                    if isinstance(outcome, str):
                        failures.append(outcome)
                        continue
                    if outcome is None or cancelled:
                        cancelled = True  # a worker saw the cancel first
                        continue
                    result, files = outcome
                    self._forward(progress)
                    yield self._deliver(result, files)
        finally:
            if running:  # the caller stopped early: stop the jobs still running
                self.relay.cancel.remote()
                try:
                    ray.wait(list(running), num_returns=len(running), timeout=30)
                except GetTimeoutError:  # pragma: no cover
                    pass
            self._forward(progress)
        if cancelled:
            raise CancelledError()
        if failures:
            raise WorkerError("; ".join(failures) + " (finished adapters were kept: run the "
                              "command again to resume)")

    def _forward(self, progress: ProgressCallback) -> None:
        if self.relay is None:
            return
        for event in ray.get(self.relay.drain.remote()):
            progress(event)

    @staticmethod
    def _outcome(ref, job: ShardJob):
        """((result, files), False); (None, False) when the job stopped for a cancel; or
        (a one-line failure, whether the worker died)."""
        try:
            return ray.get(ref), False
        except RayActorError:
            return f"{job.name}: its Ray worker died", True
        except RayTaskError as exc:
            cause = exc.cause
            if isinstance(cause, CancelledError):
                return None, False
            if isinstance(cause, ApaError):
                return f"{job.name}: {cause}", False
            return f"{job.name}: failed on its Ray worker ({_one_line(cause)[:200]})", False

    @staticmethod
    def _deliver(result: JobResult, files: dict[str, bytes]) -> JobResult:
        """Write the adapter's files where the job says, as train_adapter would: assembled in
        a temporary sibling folder, checked against the worker's hash, renamed into place."""
        out_dir = result.job.out_dir
        if out_dir is None:
            return result
        out_dir = Path(out_dir)
        if out_dir.exists():
            raise ConflictError(f"adapter folder {out_dir} already exists; adapters are "
                                "write-once")
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
        try:
            for name, data in files.items():
                (staging / Path(name).name).write_bytes(data)
            got = sha256_file(staging / ADAPTER_WEIGHTS)
            if got != result.train.weights_sha256:
                raise WorkerError(f"{result.job.name}: the adapter received from its Ray "
                                  "worker does not match the hash it reported")
            os.rename(staging, out_dir)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        result.train = replace(result.train, adapter_dir=out_dir)
        return result


def _one_line(exc: BaseException | None) -> str:
    text = " ".join(str(exc).split()) if exc is not None else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
