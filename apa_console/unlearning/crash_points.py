"""Test hooks at the named points of a forget: `APA_CRASH_AT=<name>` kills the process with
SIGKILL there, so tests can prove every crash leaves a store that opens, serves and resumes;
`APA_PAUSE_AT=<name>` waits there a few seconds, so a test can press Ctrl-C at that point."""

from __future__ import annotations

import os
import signal
import time

CRASH_ENV = "APA_CRASH_AT"
PAUSE_ENV = "APA_PAUSE_AT"
PAUSE_S = 5.0


def crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get(PAUSE_ENV) == name:
        time.sleep(PAUSE_S)
