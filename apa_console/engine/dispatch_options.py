"""Where shard jobs run (`DispatchOptions`): here one after another, on N local Ray
workers, or on a running Ray cluster, with the checks that refuse a bad address early."""

from __future__ import annotations

import math
import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass

from apa_console.errors import UsageError

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
