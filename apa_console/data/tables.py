"""Tables an operator exports — CSV, TSV, Parquet, JSON Lines or a JSON list — read as rows
of named columns.

`read_columns` yields (position, values) for the columns asked for, position being the line
number (CSV, TSV, JSON) or "row N" (Parquet has no lines), so every error can name the
file, the line and the column. A column the file lacks is the option's fault (exit 2);
everything inside the file is malformed input (exit 6).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from apa_console.data.ingest import decode_text, read_bytes, require_file
from apa_console.data.tallrec import iter_json_list
from apa_console.errors import DataError, UsageError

FORMATS = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet",
    ".jsonl": "json", ".ndjson": "json", ".json": "json",
}
DELIMITERS = {"csv": ",", "tsv": "\t"}
PARQUET_BATCH_ROWS = 65_536  # rows converted to Python at a time: bounds the memory

Row = tuple[int | str, tuple[Any, ...]]


def table_format(path: Path, option: str) -> str:
    """The format by suffix; an unknown one is a usage error, found before any reading."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise UsageError(
            f"{option} {path}: cannot tell the format from its suffix "
            f"(use {', '.join(sorted(FORMATS))})"
        )
    return kind


Wanted = list[tuple[str, str]]  # (the option that names a column, the column's name)


def read_columns(
    path: Path, option: str, wanted: Wanted, header: bool = True, optional: int = 0
) -> Iterator[Row]:
    """(position, values in `wanted`'s order) per row; `header=False` names a CSV's
    columns 1, 2, … The last `optional` columns may be missing from a JSON record (None)."""
    kind = table_format(path, option)
    require_file(path)
    if kind == "parquet":
        return _parquet_rows(path, wanted)
    if kind == "json":
        return _json_rows(path, wanted, len(wanted) - optional)
    return _delimited_rows(path, wanted, DELIMITERS[kind], header)


def _missing_column(path: Path, wanted: Wanted, names: list[str]) -> None:
    present = set(names)
    for option, column in wanted:
        if column not in present:
            shown = ", ".join(repr(name)[:40] for name in names[:12])
            more = ", …" if len(names) > 12 else ""
            raise UsageError(
                f"{option} {column[:80]!r}: {path} has no such column (it has {shown}{more})"
            )


def _delimited_rows(
    path: Path, wanted: Wanted, delimiter: str, header: bool
) -> Iterator[Row]:
    text = _utf8_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    indexes: list[int] | None = None
    width = 0
    try:
        for fields in reader:
            if not any(field.strip() for field in fields):
                continue
            if indexes is None:
                width = len(fields)
                names = ([field.strip() for field in fields] if header
                         else [str(number) for number in range(1, width + 1)])
                if len(set(names)) != len(names):
                    raise DataError(f"{path}:{reader.line_num}: the header names a column twice")
                _missing_column(path, wanted, names)
                indexes = [names.index(column) for _, column in wanted]
                if header:
                    continue
            if len(fields) != width:
                raise DataError(
                    f"{path}:{reader.line_num}: expected {width} fields like the first row, "
                    f"got {len(fields)}"
                )
            yield reader.line_num, tuple(fields[index] for index in indexes)
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: {exc}") from None
    if indexes is None:
        raise DataError(f"{path}:1: empty file")


def _json_rows(path: Path, wanted: Wanted, required: int) -> Iterator[Row]:
    """JSON Lines (one object a line), or one JSON list of objects. Records may leave out
    keys, so only the first `required` columns are looked for, in the first record."""
    text = _utf8_text(path)
    if text.lstrip().startswith("["):
        records = iter_json_list(path, text)
    else:
        records = _json_lines(path, text)
    first = True
    for line, record in records:
        if not isinstance(record, dict):
            raise DataError(f"{path}:{line}: expected a JSON object per record")
        if first:  # columns are known once the first record is read
            _missing_column(path, wanted[:required], list(record))
            first = False
        yield line, tuple(record.get(column) for _, column in wanted)
    if first:
        raise DataError(f"{path}:1: no records")


def _utf8_text(path: Path) -> str:
    # a byte-order mark (spreadsheets write one) is not part of the first column's name
    return decode_text(path, read_bytes(path).removeprefix(codecs.BOM_UTF8), "utf-8")


def _json_lines(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    for line, content in enumerate(text.split("\n"), start=1):
        if not content.strip():
            continue
        try:
            yield line, json.loads(content)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}:{line}: invalid JSON at column {exc.colno} ({exc.msg})"
            ) from None
        except (ValueError, RecursionError) as exc:  # Python's digit limit, deep nesting
            raise DataError(f"{path}:{line}: invalid JSON ({str(exc)[:80]})") from None


def _parquet_rows(path: Path, wanted: Wanted) -> Iterator[Row]:
    import pyarrow as pa  # only an ingest of Parquet pays for importing pyarrow
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path)
        _missing_column(path, wanted, list(table.schema_arrow.names))
        columns = list(dict.fromkeys(column for _, column in wanted))
        row = 0
        for batch in table.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns):
            values = batch.to_pydict()
            picked = [values[column] for _, column in wanted]
            for fields in zip(*picked, strict=True):
                row += 1
                yield f"row {row}", fields
    except (pa.ArrowException, OSError) as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: not a readable Parquet file ({reason})") from None
