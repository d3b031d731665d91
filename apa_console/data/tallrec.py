"""TALLRec's JSON format: `train.json`, `valid.json`, `test.json`, each a list of
{instruction, input, output}, written as `json.dump(records, f, indent=4)` writes it
(4-space indent, non-ASCII escaped as \\uXXXX, no trailing newline).

Import reads that format back. The records carry no user or item ids, so history items
are identified by their titles, and unless a record has a `user_id` field each record is
its own user (`users_are_records` in the dataset meta).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from apa_console.data.ingest import (
    ParsedDataset,
    decode_text,
    read_bytes,
    refuse_control_characters,
    require_dir,
    sample_id,
)
from apa_console.errors import ConflictError, DataError
from apa_console.fileio import atomic_write_bytes
from apa_console.samples import SPLITS, HistoryEntry, Sample

MAX_ID_LENGTH = 256
SPLIT_FILES = {split: f"{split}.json" for split in SPLITS}
ANSWERS = {"Yes.": 1, "No.": 0}

_INPUT_PATTERN = re.compile(
    r"User Preference: (?P<liked>.*)\n"
    r"User Unpreference: (?P<disliked>.*)\n"
    r"Whether the user will like the target (?P<domain>\w+) (?P<target>.*)\?",
    re.DOTALL,
)


# -- export ------------------------------------------------------------------------------


def tallrec_record(sample: Sample, with_user_id: bool = False) -> dict[str, Any]:
    record: dict[str, Any] = {
        "instruction": sample.instruction,
        "input": sample.input,
        "output": sample.output,
    }
    if with_user_id:
        record["user_id"] = sample.user_id
    return record


def dumps_tallrec(records: list[dict[str, Any]]) -> bytes:
    # Exactly what TALLRec's json.dump(..., indent=4) produces, so files compare byte for byte.
    return json.dumps(records, indent=4).encode("ascii")


def export_tallrec(
    samples_by_split: dict[str, list[Sample]],
    directory: Path,
    overwrite: bool = False,
    with_user_id: bool = False,
) -> dict[str, Path]:
    """Write one file per split; samples in `order` so a full export matches the source."""
    directory = Path(directory)
    targets = {split: directory / name for split, name in SPLIT_FILES.items()}
    existing = [str(path) for path in targets.values() if path.exists()]
    if existing and not overwrite:
        raise ConflictError(f"{existing[0]} already exists; choose another directory, or "
                            "overwrite with `apa-console export tallrec --force`")
    for split, path in targets.items():
        ordered = sorted(samples_by_split.get(split, []), key=lambda sample: sample.order)
        atomic_write_bytes(path, dumps_tallrec([tallrec_record(s, with_user_id) for s in ordered]))
    return targets


# -- import ------------------------------------------------------------------------------


def iter_json_list(path: Path, text: str):
    """Yield (line number, element) for each element of a top-level JSON list.

    Decoding element by element is what lets an error name the line of the bad record.
    Positions only move forward, so line numbers are counted on from the last one asked
    for: counting from the start of the file for every record made large files quadratic.
    """
    decoder = json.JSONDecoder()
    counted_to, line_there = 0, 1

    def line_at(position: int) -> int:
        nonlocal counted_to, line_there
        if position < counted_to:  # not reached while positions only grow; kept correct
            return text.count("\n", 0, position) + 1
        line_there += text.count("\n", counted_to, position)
        counted_to = position
        return line_there

    def skip_space(position: int) -> int:
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        return position

    position = skip_space(0)
    if position >= len(text) or text[position] != "[":
        raise DataError(f"{path}:{line_at(position)}: expected a JSON list of records")
    position = skip_space(position + 1)
    if position < len(text) and text[position] == "]":
        return
    while True:
        try:
            element, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
        except ValueError as exc:  # a number too long to convert (Python's digit limit)
            raise DataError(f"{path}:{line_at(position)}: invalid JSON ({exc})") from None
        except RecursionError:
            raise DataError(
                f"{path}:{line_at(position)}: invalid JSON (nested too deeply)"
            ) from None
        yield line_at(position), element
        position = skip_space(end)
        if position < len(text) and text[position] == ",":
            position = skip_space(position + 1)
            continue
        if position < len(text) and text[position] == "]":
            break
        raise DataError(f"{path}:{line_at(position)}: expected `,` or `]` after a record")
    rest = skip_space(position + 1)
    if rest != len(text):
        raise DataError(f"{path}:{line_at(rest)}: unexpected text after the list")


def parse_items(listing: str) -> list[str]:
    """`"A", "B"` → ["A", "B"]; the empty string is an empty list.

    Items are split where `, "` starts the next quoted item, so TALLRec's book form
    `"Title" written by Author, "Next" written by …` parses too.
    """
    if listing == "":
        return []
    return [unquote(item) for item in re.split(r', (?=")', listing)]


def unquote(item: str) -> str:
    """`"Title (1995)"` → `Title (1995)`; `"Title" written by A` → `Title written by A`."""
    item = item.strip()
    if len(item) >= 2 and item.startswith('"') and item.endswith('"') and '"' not in item[1:-1]:
        return item[1:-1]
    return re.sub(r'^"([^"]*)"\s*', r"\1 ", item).strip()


def parse_record(path: Path, line: int, record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise DataError(f"{path}:{line}: a record must be a JSON object")
    for key in ("instruction", "input", "output"):
        if not isinstance(record.get(key), str):
            raise DataError(f"{path}:{line}: record has no string field {key!r}")
    for key in ("instruction", "input"):  # free text: lines and tabs are part of it
        refuse_control_characters(path, line, key, record[key], allowed="\t\n")
    if record["output"] not in ANSWERS:
        raise DataError(f'{path}:{line}: output must be "Yes." or "No.", got {record["output"]!r}')
    match = _INPUT_PATTERN.fullmatch(record["input"])
    if not match:
        raise DataError(
            f"{path}:{line}: input is not TALLRec's "
            '"User Preference: …\\nUser Unpreference: …\\nWhether the user will like …" text'
        )
    user_id = record.get("user_id")
    if user_id is not None and not (
        (isinstance(user_id, str) and 0 < len(user_id) <= MAX_ID_LENGTH)
        or (isinstance(user_id, int) and not isinstance(user_id, bool)
            and abs(user_id) < 2**63)
    ):
        raise DataError(
            f"{path}:{line}: user_id must be a string of 1 to {MAX_ID_LENGTH} characters "
            "or a 64-bit integer"
        )
    if isinstance(user_id, str):
        refuse_control_characters(path, line, "user_id", user_id)
    history = [
        HistoryEntry(item=title, title=title, liked=liked)
        for group, liked in (("liked", True), ("disliked", False))
        for title in parse_items(match.group(group))
    ]
    return {
        "instruction": record["instruction"],
        "input": record["input"],
        "label": ANSWERS[record["output"]],
        "output": record["output"],
        "domain": match.group("domain"),
        "target": unquote(match.group("target")),
        "history": tuple(history),
        "user_id": None if user_id is None else str(user_id),
    }


def load_tallrec(directory: Path) -> ParsedDataset:
    directory = require_dir(Path(directory))
    parsed: dict[str, list[tuple[Path, int, dict[str, Any]]]] = {}
    for split, name in SPLIT_FILES.items():
        path = directory / name
        text = decode_text(path, read_bytes(path), "utf-8")
        parsed[split] = [
            (path, line, parse_record(path, line, record))
            for line, record in iter_json_list(path, text)
        ]
    everything = [entry for split in SPLITS for entry in parsed[split]]
    if not everything:
        raise DataError(f"{directory / SPLIT_FILES['train']}:1: no records in any split")
    with_user = [entry for entry in everything if entry[2]["user_id"] is not None]
    if with_user and len(with_user) != len(everything):
        path, line, _ = next(entry for entry in everything if entry[2]["user_id"] is None)
        raise DataError(f"{path}:{line}: record has no user_id while other records do")
    domain = everything[0][2]["domain"]
    for path, line, record in everything:
        if record["domain"] != domain:
            raise DataError(
                f"{path}:{line}: target {record['domain']!r} where earlier records "
                f"target {domain!r}; one dataset holds one domain"
            )

    samples: dict[str, list[Sample]] = {}
    order = 0
    for split in SPLITS:
        samples[split] = []
        for _path, _line, record in parsed[split]:
            samples[split].append(
                Sample(
                    id=sample_id(order),
                    user_id=record["user_id"] or f"r{order:06d}",
                    target_item=record["target"],
                    target_title=record["target"],
                    label=record["label"],
                    split=split,
                    instruction=record["instruction"],
                    input=record["input"],
                    output=record["output"],
                    history=record["history"],
                    order=order,
                )
            )
            order += 1
    return ParsedDataset(
        name="tallrec-json",
        domain=domain,
        source=str(directory.resolve()),
        samples=samples,
        users_are_records=not with_user,
    )
