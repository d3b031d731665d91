"""Known failures, each with the process exit code the CLI uses for it."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The documented exit codes of every `apa-console` command."""

    OK = 0
    ERROR = 1  # unexpected failure (a bug: APA_DEBUG=1 for the traceback), or a dead Ray worker
    USAGE = 2  # bad options or arguments (also Typer's own code)
    NOT_FOUND = 3  # unknown user, sample, shard, request or file
    STORE_LOCKED = 4  # another process is writing to the store
    STORE_INVALID = 5  # store missing, corrupt, foreign, or of another schema version
    DATA_INVALID = 6  # input data malformed (names file and line)
    CONFLICT = 7  # the request contradicts the store's state (other model, no shards yet…)
    VERIFY_FAILED = 8  # a verification ran and found a problem
    CANCELLED = 130  # interrupted by the operator (Ctrl-C)


class ApaError(Exception):
    """An error with a one-line message meant for the operator."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, exit_code: ExitCode | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(ApaError):
    exit_code = ExitCode.USAGE


class NotFoundError(ApaError):
    exit_code = ExitCode.NOT_FOUND


class StoreLockedError(ApaError):
    exit_code = ExitCode.STORE_LOCKED


class StoreInvalidError(ApaError):
    exit_code = ExitCode.STORE_INVALID


class StoreChangedError(ApaError):
    """A file the state being read referenced was collected by a newer commit (a forget
    deletes its files at once): reading again sees the new state."""

    exit_code = ExitCode.STORE_LOCKED


class DataError(ApaError):
    exit_code = ExitCode.DATA_INVALID


class ConflictError(ApaError):
    exit_code = ExitCode.CONFLICT


class VerificationError(ApaError):
    exit_code = ExitCode.VERIFY_FAILED


class WorkerError(ApaError):
    """A shard job failed on a Ray worker (the worker died, or the job raised)."""

    exit_code = ExitCode.ERROR


class CancelledError(ApaError):
    exit_code = ExitCode.CANCELLED

    def __init__(self, message: str = "cancelled by the operator"):
        super().__init__(message)
