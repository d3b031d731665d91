"""Immutable, content-addressed Parquet files holding the store's bulk per-sample rows.

Why Parquet: columnar, typed (a damaged file fails its schema check instead of handing a
reader a wrong type), nested lists for a sample's history, and compressed; pyarrow reads
one file in milliseconds, so a command that needs one user's rows reads one small file.

A segment's name carries the SHA-256 of its bytes (`segments/<kind>-<hash>.parquet`):
writing the same rows twice costs nothing, a segment is never changed after it is written,
and every read checks the bytes against the name, so a truncated or edited file is a
one-line StoreInvalidError (exit 5), never silently different data.

Segments obey the store's file rules (document.py): written before the commit that
references them, collected once no committed apa.json does.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apa_console.errors import StoreInvalidError
from apa_console.fileio import atomic_write_bytes
from apa_console.safe_text import quoted
from apa_console.store.missing_files import missing_file_error

if TYPE_CHECKING:  # pyarrow is imported by the functions that need it (fast CLI start)
    import pyarrow as pa

SEGMENTS_DIR = "segments"
SUFFIX = ".parquet"
HASH_CHARS = 40
PARQUET_MAGIC = b"PAR1"


def segment_name(kind: str, data: bytes) -> str:
    return f"{SEGMENTS_DIR}/{kind}-{hashlib.sha256(data).hexdigest()[:HASH_CHARS]}{SUFFIX}"


def encode(table: pa.Table) -> bytes:
    """A table's Parquet bytes. zstd-compressed: the residual-trace scan decodes segments
    (verify.py), so compression hides nothing from it. No column statistics: they would
    copy min/max values (sample ids, texts) into the footer, outside the rows the scan
    decodes."""
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", write_statistics=False)
    return buffer.getvalue()


def write_segment(path_of, kind: str, table: pa.Table) -> str:
    """Write `table` under its content name (unless that file exists); returns the
    store-relative path. `path_of` is the store's checked path resolver."""
    data = encode(table)
    relative = segment_name(kind, data)
    target: Path = path_of(relative)
    if not target.exists():
        atomic_write_bytes(target, data)
    return relative


def expected_hash(relative: str) -> str | None:
    stem = Path(relative).name.removesuffix(SUFFIX)
    digest = stem.rsplit("-", 1)[-1]
    if len(digest) != HASH_CHARS or not all(c in "0123456789abcdef" for c in digest):
        return None
    return digest


def read_segment(path_of, relative: str, schema: pa.Schema, rows: int | None = None) -> pa.Table:
    """A segment the store references, checked against its name's hash, the `schema` its
    readers assume and the row count its record holds; anything else → exit 5."""
    import pyarrow as pa

    path: Path = path_of(relative)
    digest = expected_hash(relative)
    if digest is None:
        raise StoreInvalidError(f"store file is corrupt: {quoted(relative)} is not a segment name")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise missing_file_error(path, relative) from None
    except IsADirectoryError:
        raise StoreInvalidError(f"{path} is referenced as a segment but is a folder") from None
    except OSError as exc:
        raise StoreInvalidError(f"cannot read {path}: {exc.strerror}") from None
    if hashlib.sha256(data).hexdigest()[:HASH_CHARS] != digest:
        raise StoreInvalidError(
            f"{path} is corrupt (its content does not match its hash); restore the store "
            "from a backup")
    try:
        table = _decode(data)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise StoreInvalidError(f"{path} is corrupt (not a readable segment: {exc})") from None
    if not table.schema.equals(schema):
        raise StoreInvalidError(f"{path} is corrupt (its columns do not match its record)")
    if rows is not None and table.num_rows != rows:
        raise StoreInvalidError(
            f"{path} is corrupt ({table.num_rows} rows, its record says {rows})")
    return table


def _decode(data: bytes) -> pa.Table:
    """One file's table. ParquetFile, not read_table: read_table goes through
    pyarrow.dataset, whose import alone costs a read command half a second. One thread: a
    read command reads one small file, and the machine's cores are shared."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pq.ParquetFile(pa.BufferReader(data)).read(use_threads=False)


def decode_any(data: bytes) -> list[dict[str, Any]] | None:
    """Every row of a Parquet file's bytes, whatever its schema; None when they are not one
    (the residual-trace scan's view of a segment, valid or stray)."""
    if not data.startswith(PARQUET_MAGIC):
        return None
    import pyarrow as pa

    try:
        return _decode(data).to_pylist()
    except (pa.ArrowException, OSError, ValueError):
        return None
