"""Numeric arrays beside apa.json (embeddings, validation-error tables, shard centres), each
an immutable .npy file named by its content's hash."""

from __future__ import annotations

import hashlib
import io
from typing import TYPE_CHECKING

from apa_console.errors import StoreInvalidError
from apa_console.fileio import atomic_write_bytes
from apa_console.store.missing_files import missing_file_error

if TYPE_CHECKING:  # numpy is imported by the two functions that need it (fast CLI start)
    import numpy as np

ARRAYS_DIR = "arrays"


def write_array(path_of, kind: str, array: np.ndarray) -> str:
    """Save an array under a content-addressed name; returns the store-relative path."""
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    data = buffer.getvalue()
    relative = f"{ARRAYS_DIR}/{kind}-{hashlib.sha256(data).hexdigest()[:20]}.npy"
    target = path_of(relative)
    if not target.exists():
        atomic_write_bytes(target, data)
    return relative


def read_array(path_of, relative: str, ndim: int | None = None,
               rows: int | None = None) -> np.ndarray:
    """A numeric array the store references; missing, truncated, garbage, or not of the
    `ndim` dimensions and `rows` rows its record implies → exit 5."""
    import numpy as np

    path = path_of(relative)
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise missing_file_error(path, relative) from None
    except IsADirectoryError:
        raise StoreInvalidError(f"{path} is referenced as an array but is a folder") from None
    except (OSError, ValueError, EOFError) as exc:  # truncated, garbage, pickled objects
        raise StoreInvalidError(
            f"{path} is corrupt (not a readable array: {exc}); restore the store from a "
            "backup"
        ) from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiub":
        raise StoreInvalidError(f"{path} is corrupt (not a numeric array)")
    if (ndim is not None and array.ndim != ndim) or (
        rows is not None and (array.ndim == 0 or array.shape[0] != rows)
    ):
        raise StoreInvalidError(
            f"{path} is corrupt (shape {array.shape} does not match its record)"
        )
    return array
