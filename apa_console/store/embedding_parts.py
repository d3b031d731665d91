"""A split's cached hidden states as user-bucketed parts, so a forget rewrites only the parts
of the users it removes instead of the whole split's array.

apa.json: `meta.embeddings.<split> = {buckets: n, pooling, parts: {"<bucket>": {file, rows,
ids_file}}}`, `pooling` naming the hidden state the vectors are (engine/choices.py).
A user's rows all sit in part crc32(user) mod n (the samples' bucketing, over this split's
row count); the split's row order is the parts' rows in bucket order. A writer leaves each
part's ids inline (`ids`) and the commit moves them into id segments (id_lists.py). The
single-array form older stores hold (`{file, ids | ids_file + rows}`) reads as one part.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apa_console.store import arrays
from apa_console.store.sample_segments import bucket_count, bucket_of

if TYPE_CHECKING:
    import numpy as np

LEGACY_BUCKETS = 1  # an older single-array entry: every row in part 0
LEGACY_POOLING = "mean"  # what every cache written before the choice holds


def is_parted(entry: dict[str, Any]) -> bool:
    return "parts" in entry


def pooling_of(entry: dict[str, Any]) -> str:
    return entry.get("pooling", LEGACY_POOLING)


def buckets_of(entry: dict[str, Any]) -> int:
    return entry["buckets"] if is_parted(entry) else LEGACY_BUCKETS


def parts_in_order(entry: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """(bucket, part) pairs in the split's row order; a legacy entry is part 0."""
    if not is_parted(entry):
        return [(0, entry)]
    return sorted(((int(key), part) for key, part in entry["parts"].items()),
                  key=lambda pair: pair[0])


def part_rows(part: dict[str, Any]) -> int:
    return len(part["ids"]) if "ids" in part else part["rows"]


def write_split(path_of, split: str, ids: list[str], users: list[str],
                vectors: np.ndarray, pooling: str = LEGACY_POOLING) -> dict[str, Any]:
    """The entry for a split's vectors (row i is sample ids[i] of user users[i]), each part's
    array written now and its ids left inline for the commit."""
    buckets = bucket_count(len(ids))
    rows_of: dict[int, list[int]] = {}
    for row, user in enumerate(users):
        rows_of.setdefault(bucket_of(user, buckets), []).append(row)
    parts = {
        str(bucket): {"file": arrays.write_array(path_of, f"emb-{split}", vectors[rows]),
                      "ids": [ids[row] for row in rows]}
        for bucket, rows in sorted(rows_of.items())
    }
    return {"buckets": buckets, "pooling": pooling, "parts": parts}


def read_split(path_of, entry: dict[str, Any], ids_of) -> tuple[list[str], np.ndarray]:
    """Every row id and the vectors of a split, in its row order. `ids_of(part)` gives a
    part's ids (inline or from its segment)."""
    import numpy as np

    ids: list[str] = []
    blocks = []
    for _, part in parts_in_order(entry):
        part_ids = ids_of(part)
        blocks.append(arrays.read_array(path_of, part["file"], ndim=2, rows=len(part_ids)))
        ids.extend(part_ids)
    if not blocks:
        return ids, np.zeros((0, 0), dtype=np.float32)
    return ids, np.concatenate(blocks) if len(blocks) > 1 else blocks[0]


def files(entry: dict[str, Any]) -> list[Any]:
    """The array files an entry references."""
    return [part.get("file") for _, part in parts_in_order(entry)]


def id_files(entry: dict[str, Any]) -> list[Any]:
    return [part.get("ids_file") for _, part in parts_in_order(entry) if "ids_file" in part]
