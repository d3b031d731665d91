"""A test hook: `APA_CRASH_AT=<name>` kills this process with SIGKILL at the named point of
a forget, so tests can prove every crash leaves a store that opens, serves and resumes."""

from __future__ import annotations

import os
import signal

CRASH_ENV = "APA_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
