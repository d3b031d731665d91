"""What every loader shares: the parsed dataset, seeded subsampling, and the one commit.

A loader parses its source completely into a `ParsedDataset` (raising `DataError` on the
first bad line) before anything touches the store; `write_dataset` then commits samples,
users and the dataset description in a single transaction, so a failed ingest changes
nothing.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from apa_console.errors import ConflictError, DataError, UsageError
from apa_console.samples import SPLITS, Sample
from apa_console.store import audit, records
from apa_console.store.document import Store, get_meta, now_iso, update_meta

DEFAULT_SIZES = {"train": 1024, "valid": 500, "test": 1000}
DEFAULT_SEED = 0
MAX_ID_LENGTH = 256  # user and item ids: longer is a malformed file, not an id
ALL = None  # a split size that keeps the whole split (`--train-size all`)


def sample_id(order: int) -> str:
    """Stable id of the sequence at `order` in the source's full sequence list."""
    return f"s{order:06d}"


def split_bounds(count: int) -> tuple[int, int]:
    """TALLRec's 80/10/10 cut points of an ordered sequence list."""
    return int(count * 0.8), int(count * 0.9)


def split_in_order(items: list) -> dict[str, list]:
    """Cut an ordered list 80/10/10 into train/valid/test without reordering."""
    train_end, valid_end = split_bounds(len(items))
    return {
        "train": items[:train_end],
        "valid": items[train_end:valid_end],
        "test": items[valid_end:],
    }


@dataclass
class ParsedDataset:
    """A whole source, parsed: every sample of every split, in source order."""

    name: str
    domain: str
    source: str
    samples: dict[str, list[Sample]]
    users_are_records: bool = False
    details: dict[str, Any] = field(default_factory=dict)  # loader-specific facts for meta


def label_counts(samples: list[Sample]) -> dict[str, int]:
    labels = Counter(sample.label for sample in samples)
    return {"count": len(samples), "yes": labels.get(1, 0), "no": labels.get(0, 0)}


def check_sizes(sizes: dict[str, int | None]) -> dict[str, int | None]:
    """Refuse negative sizes, and all-zero ones: an ingest that keeps no samples would still
    record a dataset, and the store would refuse every later ingest. `ALL` keeps a split."""
    for split, size in sizes.items():
        if size is not ALL and size < 0:
            raise UsageError(f"--{split}-size must be 0 or more, got {size}")
    if not any(sizes.get(split) is ALL or sizes.get(split) for split in SPLITS):
        raise UsageError("--train-size, --valid-size and --test-size are all 0: nothing to keep")
    return {split: sizes[split] if sizes[split] is ALL else int(sizes[split]) for split in SPLITS}


def subsample(samples: list[Sample], size: int | None, seed: int, split: str) -> list[Sample]:
    """`size` samples drawn with `seed`, kept in their original order.

    Each split draws from its own generator (seeded by seed and split name) so changing one
    split's size never changes which samples another split keeps. A string seed is hashed
    with SHA-512 by `random`, which does not depend on PYTHONHASHSEED.
    """
    if size is ALL or size >= len(samples):
        return list(samples)
    generator = random.Random(f"apa-console:{seed}:{split}")
    chosen = sorted(generator.sample(range(len(samples)), size))
    return [samples[index] for index in chosen]


def select(
    parsed: ParsedDataset, sizes: dict[str, int | None], seed: int
) -> dict[str, list[Sample]]:
    return {
        split: subsample(parsed.samples.get(split, []), sizes[split], seed, split)
        for split in SPLITS
    }


def ensure_no_dataset(store: Store) -> None:
    """Refuse early, before parsing, when the store already holds data or its key is
    missing (the commit logs the ingest)."""
    db = store.snapshot()
    _refuse_if_holding_data(db, store)
    audit.pseudonyms(db)


def _refuse_if_holding_data(db, store: Store) -> None:
    dataset = get_meta(db).get("dataset")
    if dataset or records.has_samples(db):
        name = (dataset or {}).get("name", "a dataset")
        raise ConflictError(
            f"store {store.root} already holds {name}; ingest into a new store "
            "(`apa-console init --store NEW_DIR`)"
        )


def user_counts(samples: dict[str, list[Sample]]) -> dict[str, dict[str, int]]:
    """Stored samples per user and split, users in order of their first stored sample."""
    counts: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        for sample in samples[split]:
            counts.setdefault(sample.user_id, {name: 0 for name in SPLITS})[split] += 1
    return counts


def write_dataset(
    store: Store, parsed: ParsedDataset, sizes: dict[str, int | None], seed: int
) -> dict[str, Any]:
    """Keep the requested samples per split and commit them; returns the dataset meta."""
    sizes = check_sizes(sizes)
    kept = select(parsed, sizes, seed)
    if not any(kept.values()):
        raise DataError(f"{parsed.source} holds no samples for the requested splits")
    for sample in (s for split in SPLITS for s in kept[split]):
        if len(sample.user_id) > MAX_ID_LENGTH:
            raise DataError(
                f"{parsed.source}: user id longer than {MAX_ID_LENGTH} characters "
                f"({sample.user_id[:40]}…)"
            )
    counts = user_counts(kept)
    dataset = {
        "name": parsed.name,
        "source": parsed.source,
        "domain": parsed.domain,
        "sizes_requested": {split: "all" if size is ALL else size
                            for split, size in sizes.items()},
        "seed": seed,
        "full": {split: label_counts(parsed.samples.get(split, [])) for split in SPLITS},
        "stored": {split: label_counts(kept[split]) for split in SPLITS},
        "users": len(counts),
        "users_are_records": parsed.users_are_records,
        "ingested": now_iso(),
        **parsed.details,
    }
    with store.transaction() as db:
        _refuse_if_holding_data(db, store)
        records.insert_dataset(
            db, [sample.to_record() for split in SPLITS for sample in kept[split]], counts)
        update_meta(db, dataset=dataset)
        audit.append(db, "ingest", {
            "dataset": parsed.name,
            "samples": {split: len(kept[split]) for split in SPLITS},
            "users": len(counts), "seed": seed})
    return dataset


# -- reading source files ----------------------------------------------------------------


def require_file(path: Path) -> Path:
    if not path.is_file():
        what = "a directory, not a file" if path.is_dir() else "missing"
        raise DataError(f"{path}: {what}")
    return path


def require_dir(path: Path) -> Path:
    if not path.is_dir():
        what = "a file, not a directory" if path.exists() else "missing"
        raise DataError(f"{path}: {what}")
    return path


def read_bytes(path: Path) -> bytes:
    require_file(path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None


def decode_text(path: Path, raw: bytes, encoding: str) -> str:
    """Decode a whole file; a bad byte becomes a DataError naming its line."""
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path}:{line}: byte 0x{raw[exc.start]:02x} is not valid {encoding} "
            "(wrong file encoding?)"
        ) from None


def numbered_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) for every non-blank line, line endings removed."""
    return [
        (number, line.rstrip("\r"))
        for number, line in enumerate(text.split("\n"), start=1)
        if line.strip()
    ]


# -- text fields ---------------------------------------------------------------------------

CONTROL_NAMES = {0: "NUL", 0x1B: "ESC", 0x7F: "DEL", 0x0D: "CR", 0x09: "TAB", 0x0A: "LF"}


@lru_cache(maxsize=8)
def _controls_except(allowed: str) -> re.Pattern[str]:
    # C0 controls, DEL and C1 controls: Unicode's category Cc, less what the field may hold.
    excluded = "".join(f"\\x{ord(ch):02x}" for ch in allowed)
    return re.compile(f"(?![{excluded}])[\\x00-\\x1f\\x7f-\\x9f]" if excluded
                      else "[\\x00-\\x1f\\x7f-\\x9f]")


def refuse_control_characters(
    path: Path | str, line: int | str, what: str, value: str, allowed: str = ""
) -> None:
    """A control character in a text field is malformed input, never data: it would reach
    prompts and terminals. `line` is a line number, or "row N" where a file has no lines;
    `allowed` names the ones the field may hold (a tab in a title, TALLRec input's newlines).
    """
    found = _controls_except(allowed).search(value)
    if found is None:
        return
    code = ord(found.group())
    name = CONTROL_NAMES.get(code)
    raise DataError(
        f"{path}:{line}: {what} holds the control character U+{code:04X}"
        f"{f' ({name})' if name else ''} at character {found.start() + 1}"
    )
