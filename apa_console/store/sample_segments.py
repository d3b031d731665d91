"""The samples table, kept as Parquet segments bucketed by user instead of inside apa.json.

Layout: a store fixes a bucket count when its first samples arrive (about ROWS_PER_BUCKET
samples a bucket); a user's samples all live in bucket crc32(user id) mod that count, one
segment per non-empty bucket. apa.json's meta record holds only the map
`samples = {buckets, segments: {bucket: {file, rows, splits, positives}}}`, so:
- one user's rows are one small file away (`user show`, `audit --user`, a forget's plan);
- a forget rewrites the buckets of the users it touches and nothing else;
- split and label counts (`status`, the overview) come from the map without reading rows.

Rows still in the `samples` table of the document (a schema-1 store, or a writer that
inserted rows straight into the table) are read as if they were in segments, and moved
into segments by the next commit (`absorb_inline`): that is the schema-1 → 2 migration.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from apa_console.errors import StoreInvalidError
from apa_console.samples import SPLITS
from apa_console.store import segments

if TYPE_CHECKING:
    import pyarrow as pa
    from tinydb import TinyDB

ROWS_PER_BUCKET = 2048
META_KEY = "samples"
KIND = "samples"
PathOf = Callable[[str], Any]
Entry = dict[str, Any]


def sample_schema() -> pa.Schema:
    import pyarrow as pa

    history = pa.list_(pa.struct([("item", pa.string()), ("title", pa.string()),
                                  ("liked", pa.bool_())]))
    text = pa.string()
    return pa.schema([
        ("id", text), ("user_id", text), ("target_item", text), ("target_title", text),
        ("label", pa.int8()), ("split", text), ("instruction", text), ("input", text),
        ("output", text), ("history", history), ("order", pa.int64()),
    ])


def bucket_count(total_rows: int) -> int:
    return max(1, -(-total_rows // ROWS_PER_BUCKET))


def bucket_of(user_id: str, buckets: int) -> int:
    """Stable across processes and Python versions (unlike hash())."""
    return zlib.crc32(user_id.encode("utf-8")) % buckets


# -- the map in meta -------------------------------------------------------------------------


def entry_of(document: dict) -> Entry:
    return (document.get("meta", {}).get("1", {}) or {}).get(META_KEY) or {}


def inline_rows(document: dict) -> list[dict[str, Any]]:
    return list(document.get("samples", {}).values())


def _document(db: TinyDB) -> dict:
    return db.storage.document  # type: ignore[attr-defined]


def _path_of(db: TinyDB) -> PathOf:
    return db.store.path_of  # type: ignore[attr-defined]


def check_entry(value: Any) -> bool:
    """The meta map's shape (schema.py runs it at load)."""
    if not isinstance(value, dict):
        return False
    buckets, found = value.get("buckets"), value.get("segments")
    if not (isinstance(buckets, int) and buckets >= 1 and isinstance(found, dict)):
        return False
    return all(
        key.isdigit() and int(key) < buckets and isinstance(seg, dict)
        and isinstance(seg.get("file"), str) and isinstance(seg.get("rows"), int)
        and all(isinstance(seg.get(name), dict) and set(seg[name]) <= set(SPLITS)
                and all(isinstance(n, int) for n in seg[name].values())
                for name in ("splits", "positives"))
        for key, seg in found.items()
    )


def segment_files(entry: Entry) -> list[str]:
    return [seg["file"] for seg in (entry.get("segments") or {}).values()]


# -- reading -----------------------------------------------------------------------------


def _read_table(path_of: PathOf, seg: dict) -> pa.Table:
    """A bucket's table, its split and label values and ids checked (pyarrow.compute is
    not used: its import alone costs a read command a third of a second)."""
    table = segments.read_segment(path_of, seg["file"], sample_schema(), rows=seg["rows"])
    if not (set(table.column("split").to_pylist()) <= set(SPLITS)
            and set(table.column("label").to_pylist()) <= {0, 1}
            and table.column("id").null_count == 0
            and table.column("user_id").null_count == 0):
        raise StoreInvalidError(
            f"{seg['file']} is corrupt (a sample with an unknown split, label or no id)")
    return table


def _read_bucket(path_of: PathOf, seg: dict) -> list[dict[str, Any]]:
    return _read_table(path_of, seg).to_pylist()


def _read_user(path_of: PathOf, seg: dict, user: str) -> list[dict[str, Any]]:
    """One user's rows of a bucket, converting to Python only the span holding them (rows
    are written sorted by user, so that span is theirs alone)."""
    table = _read_table(path_of, seg)
    hits = [i for i, owner in enumerate(table.column("user_id").to_pylist()) if owner == user]
    if not hits:
        return []
    span = table.slice(hits[0], hits[-1] - hits[0] + 1).to_pylist()
    return [row for row in span if row["user_id"] == user]


def all_rows(db: TinyDB) -> list[dict[str, Any]]:
    """Every sample row (segments in bucket order, then rows not yet moved)."""
    document = _document(db)
    entry = entry_of(document)
    rows: list[dict[str, Any]] = []
    for key in sorted(entry.get("segments", {}), key=int):
        rows.extend(_read_bucket(_path_of(db), entry["segments"][key]))
    return rows + inline_rows(document)


def user_rows(db: TinyDB, user: str) -> list[dict[str, Any]]:
    """One user's rows, reading only their bucket."""
    document = _document(db)
    entry = entry_of(document)
    found = [row for row in inline_rows(document) if row["user_id"] == user]
    if entry:
        seg = entry["segments"].get(str(bucket_of(user, entry["buckets"])))
        if seg is not None:
            found = _read_user(_path_of(db), seg, user) + found
    return found


def counts(db: TinyDB) -> tuple[dict[str, int], dict[str, int]]:
    """(samples per split, positives per split), from the map, without reading rows."""
    document = _document(db)
    per_split = dict.fromkeys(SPLITS, 0)
    positives = dict.fromkeys(SPLITS, 0)
    for seg in (entry_of(document).get("segments") or {}).values():
        for split in SPLITS:
            per_split[split] += seg["splits"].get(split, 0)
            positives[split] += seg["positives"].get(split, 0)
    for row in inline_rows(document):
        per_split[row["split"]] += 1
        positives[row["split"]] += row["label"] == 1
    return per_split, positives


def has_rows(db: TinyDB) -> bool:
    document = _document(db)
    return bool(entry_of(document).get("segments")) or bool(inline_rows(document))


# -- writing -----------------------------------------------------------------------------


def _segment_entry(path_of: PathOf, rows: list[dict[str, Any]]) -> dict[str, Any]:
    import pyarrow as pa

    rows.sort(key=lambda row: (row["user_id"], row["order"]))
    table = pa.Table.from_pylist(
        [{**row, "history": row.get("history") or []} for row in rows], schema=sample_schema())
    per_split = {s: 0 for s in SPLITS}
    positives = {s: 0 for s in SPLITS}
    for row in rows:
        per_split[row["split"]] += 1
        positives[row["split"]] += row["label"] == 1
    return {"file": segments.write_segment(path_of, KIND, table), "rows": len(rows),
            "splits": per_split, "positives": positives}


def merged(path_of: PathOf, entry: Entry, add: list[dict[str, Any]] = (),
           remove: dict[str, str] | None = None) -> Entry:
    """The map after adding `add` rows and removing the ids in `remove` (sample id → its
    user); only the buckets they touch are read and rewritten."""
    remove = remove or {}
    buckets = entry.get("buckets") or bucket_count(len(add))
    old = dict(entry.get("segments") or {})
    added: dict[int, list[dict]] = defaultdict(list)
    columns = set(sample_schema().names)
    for row in add:  # a row with extra keys (a TinyDB doc id, say) is copied without them
        added[bucket_of(row["user_id"], buckets)].append(
            row if row.keys() <= columns else {k: v for k, v in row.items() if k in columns})
    touched = set(added) | {bucket_of(user, buckets) for user in remove.values()}
    new = {key: seg for key, seg in old.items() if int(key) not in touched}
    for bucket in sorted(touched):
        seg = old.get(str(bucket))
        rows = [r for r in (_read_bucket(path_of, seg) if seg else []) if r["id"] not in remove]
        rows += added.get(bucket, [])
        if rows:
            new[str(bucket)] = _segment_entry(path_of, rows)
    return {"buckets": buckets, "segments": dict(sorted(new.items(), key=lambda kv: int(kv[0])))}


def _set_entry(db: TinyDB, entry: Entry) -> None:
    db.table("meta").update({META_KEY: entry}, doc_ids=[1])


def add_rows(db: TinyDB, rows: list[dict[str, Any]]) -> None:
    _set_entry(db, merged(_path_of(db), entry_of(_document(db)), add=rows))


def remove_rows(db: TinyDB, owners: dict[str, str]) -> None:
    """Drop the samples `owners` names (sample id → user id), wherever they are."""
    document = _document(db)
    if any(row["id"] in owners for row in inline_rows(document)):
        db.table("samples").remove(lambda row: row["id"] in owners)
    entry = entry_of(document)
    if entry:
        _set_entry(db, merged(_path_of(db), entry, remove=owners))


def absorb_inline(path_of: PathOf, document: dict) -> bool:
    """Move rows still in the document's samples table into segments (in place); True when
    there were any. Called on every commit, so it is also the schema-1 migration."""
    rows = inline_rows(document)
    if not rows:
        return False
    meta = document["meta"]["1"]
    meta[META_KEY] = merged(path_of, meta.get(META_KEY) or {}, add=rows)
    document["samples"] = {}
    return True
