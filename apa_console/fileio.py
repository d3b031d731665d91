"""Writing and hashing files so that a crash leaves the old file or the new one, never half."""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from apa_console.errors import ApaError
from apa_console.safe_text import PATH_LIMIT, quoted

# What the filesystem, not the code, refuses: a path that exists (or is gone), a file where
# a folder belongs (or the reverse), a symlink loop, permissions, a read-only or full
# filesystem. These are the operator's to fix: refusals with an exit code, never "bugs".
FILESYSTEM_ERRNOS = frozenset({
    errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EEXIST,
    errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.ENAMETOOLONG, errno.EMLINK, errno.EFBIG,
    errno.ETXTBSY, errno.EBUSY, errno.ENOTEMPTY, errno.EXDEV, errno.ENOENT,
})


def is_filesystem_refusal(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in FILESYSTEM_ERRNOS


def os_reason(exc: OSError) -> str:
    """"permission denied", "no space left on device": the OS's words, lower case."""
    reason = exc.strerror or type(exc).__name__
    return reason[:1].lower() + reason[1:]


def os_refusal(exc: OSError, action: str, error: type[ApaError], hint: str = "") -> ApaError:
    """`exc` as the one-line refusal "cannot <action> <path>: <reason>[; hint]"."""
    path = exc.filename2 or exc.filename
    where = f" {quoted(os.fsdecode(path), PATH_LIMIT)}" if path is not None else ""
    return error(f"cannot {action}{where}: {os_reason(exc)}" + (f"; {hint}" if hint else ""))


@contextmanager
def refusing_os_errors(action: str, error: type[ApaError], hint: str = "",
                       within: Path | None = None) -> Iterator[None]:
    """Turn a filesystem refusal raised in the block into `error` (see `os_refusal`);
    with `within`, only one about a path under that folder (another is left to its own
    handler). Other OSErrors pass: they are not the filesystem saying no."""
    try:
        yield
    except OSError as exc:
        if not is_filesystem_refusal(exc) or (within is not None and not _under(exc, within)):
            raise
        raise os_refusal(exc, action, error, hint) from exc


def _under(exc: OSError, folder: Path) -> bool:
    paths = [p for p in (exc.filename, exc.filename2) if p is not None]
    return any(Path(os.fsdecode(p)).absolute().is_relative_to(folder.absolute())
               for p in paths)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a crash leaves either the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
