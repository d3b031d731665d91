"""The values a text file can hold a removed sample's id or text as, whatever its format.

`verify`'s trace scan matches keyed fingerprints, not substrings: the store keeps only the
HMACs of what a forget removed, so the scan can look for a value only as a whole string.
This module cuts a text file into every whole string a writer could have put there: its
lines and runs of consecutive lines (a multi-line prompt pasted into notes), each line's
fields split at tabs, commas, semicolons and bars (CSV with its quoting too, over the whole
file, so a quoted field may span lines), quoted strings, words, and the strings of every
line that is a JSON value (JSON Lines). Backslash escapes (`\\n`, `\\t`) are undone as a
second reading of each field, since TSV writers and loggers escape newlines.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from typing import Any

# Enough for a TALLRec prompt with a long instruction; a forget records the longest text's
# line count (`text_lines`), older requests fall back on this.
DEFAULT_MAX_LINES = 64
DELIMITERS = ("\t", ",", ";", "|")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'')
_ESCAPES = {"\\n": "\n", "\\t": "\t", "\\r": "\r", '\\"': '"', "\\'": "'", "\\\\": "\\"}
_ESCAPE = re.compile(r"\\[ntr\"'\\]")
_EDGE_PUNCTUATION = "\"'`()[]{}<>,;:.!?"
# csv refuses a field over 128 KB by default; a text file here may hold longer lines
csv.field_size_limit(1 << 30)


def is_text(data: bytes) -> bool:
    """A file the field scan reads: no NUL byte (binary formats have them: arrays, weights,
    Parquet; those are decoded by their own readers)."""
    return b"\x00" not in data


def text_fields(text: str) -> set[str]:
    """Every whole string of `text` short of a run of lines (see the module's doc)."""
    found: set[str] = {text, text.strip()}
    for line in text.splitlines():
        found.update(_line_fields(line))
    for delimiter in DELIMITERS:
        if delimiter in text:
            found.update(field for row in _csv_rows(text, delimiter) for field in row)
    found.update(_unescaped(field) for field in list(found) if "\\" in field)
    found.discard("")
    return found


def json_strings(value: Any) -> list[str]:
    """Every string (keys too) inside a parsed JSON value."""
    out, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
            stack.extend(item.keys())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            out.append(item)
    return out


def _line_fields(line: str) -> Iterator[str]:
    yield line
    yield line.strip()
    for delimiter in DELIMITERS:
        if delimiter in line:
            yield from (part.strip() for part in line.split(delimiter))
    for match in _QUOTED.finditer(line):
        yield match.group(1) if match.group(1) is not None else match.group(2)
    for word in line.split():
        yield word
        yield word.strip(_EDGE_PUNCTUATION)
    stripped = line.strip()
    if stripped[:1] in ("{", "[", '"'):  # a JSON Lines record, or one JSON string
        try:
            yield from json_strings(json.loads(stripped))
        except (ValueError, RecursionError):
            pass


def line_runs(text: str, max_lines: int = DEFAULT_MAX_LINES) -> Iterator[str]:
    """Runs of 2..max_lines consecutive lines, as written and with the final newline a
    prompt ends with: one at a time (a long file has many)."""
    lines = text.splitlines()
    for start in range(len(lines)):
        for end in range(start + 2, min(start + max_lines, len(lines)) + 1):
            run = "\n".join(lines[start:end])
            yield run
            yield run + "\n"


def _csv_rows(text: str, delimiter: str) -> Iterator[list[str]]:
    try:
        yield from csv.reader(io.StringIO(text), delimiter=delimiter)
    except csv.Error:  # not CSV after all: the per-line fields cover it
        return


def _unescaped(field: str) -> str:
    return _ESCAPE.sub(lambda match: _ESCAPES[match.group(0)], field)
