"""The shape of every record in apa.json, checked once each time the document is loaded.

Why here and not where records are read: apa.json is a file an operator (or a disk, or a
bad copy) can change, so a record may lack a field or hold a value of the wrong type. Every
reader indexes records directly (`row["shard"]`), so without this check a damaged record
surfaces as a KeyError or TypeError deep inside some command, reported as a bug (exit 1).
Checking the structure once at load turns every such case into one line naming the table,
record and field, with the store-invalid exit code (5), before any command acts on it.
What stays exit 1 is a real bug: code misreading a record this check accepted.

Only structure is checked (field present, of the type writers write, status words known);
relations between records (a shard naming an adapter that exists) are `audit verify`'s job.
The check is a single pass of cheap type tests, a small fraction of the JSON parse. Rows in
segment files are checked when a segment is read (sample_segments.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apa_console.safe_text import clipped, quoted
from apa_console.samples import SPLITS
from apa_console.store.sample_segments import check_entry as _sample_segments

# The status words records.py uses (kept literal here: records imports the document layer).
ADAPTER_KINDS = ("shard", "baseline")
ADAPTER_STATES = ("live", "withdrawn", "retired", "replaced")
REQUEST_STATES = ("pending", "running", "done", "cancelled")


class RecordError(Exception):
    """A record does not have the shape every reader relies on (the message says where)."""


Check = Callable[[Any], bool]


def _str(value: Any) -> bool:
    return isinstance(value, str)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _count(value: Any) -> bool:
    return _int(value) and value >= 0


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bool(value: Any) -> bool:
    return isinstance(value, bool)


def _dict(value: Any) -> bool:
    return isinstance(value, dict)


def _optional(check: Check) -> Check:
    return lambda value: value is None or check(value)


def _one_of(*words: Any) -> Check:
    return lambda value: isinstance(value, (str, int)) and value in words


def _list_of(check: Check) -> Check:
    return lambda value: isinstance(value, list) and all(check(item) for item in value)


def _history(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(entry, dict) and _str(entry.get("item")) and _str(entry.get("title"))
        and _bool(entry.get("liked"))
        for entry in value
    )


def _throughput(value: Any) -> bool:
    """meta's `throughput` (store/throughput.py): per machine key, lists of positive rates."""
    return isinstance(value, dict) and all(
        isinstance(entry, dict) and all(
            _list_of(lambda x: _number(x) and 0 < x < float("inf"))(entry.get(name, []))
            for name in ("train", "score"))
        for entry in value.values())


def _split_counts(value: Any) -> bool:
    return isinstance(value, dict) and all(
        split in SPLITS and _count(n) for split, n in value.items()
    )


def _embedding_part(part: Any) -> bool:
    """{file, ids_file, rows}, or the inline {file, ids} a writer leaves to its commit
    (id_lists.py)."""
    if not (isinstance(part, dict) and _str(part.get("file"))):
        return False
    if "ids" in part:
        return set(part) == {"file", "ids"} and _list_of(_str)(part["ids"])
    return set(part) == {"file", "ids_file", "rows"} and _str(part["ids_file"]) \
        and _count(part["rows"])


def _embedding_split(entry: Any) -> bool:
    """User-bucketed parts (embedding_parts.py), or an older store's single array."""
    if not (isinstance(entry, dict) and "parts" in entry):
        return _embedding_part(entry)
    buckets, parts = entry.get("buckets"), entry["parts"]
    return set(entry) - {"pooling"} == {"buckets", "parts"} \
        and _str(entry.get("pooling", "mean")) and isinstance(buckets, int) \
        and not isinstance(buckets, bool) and buckets >= 1 and isinstance(parts, dict) \
        and all(isinstance(key, str) and key.isdigit() and int(key) < buckets
                and _embedding_part(part) for key, part in parts.items())


def _embeddings(value: Any) -> bool:
    return isinstance(value, dict) and all(
        split in SPLITS and _embedding_split(entry) for split, entry in value.items())


def _score_point(value: Any) -> bool:
    """One point of the served recommender's AUC history (apa/score_history.py)."""
    return isinstance(value, dict) and _str(value.get("time")) and value.get("split") in SPLITS \
        and _count(value.get("samples")) and _optional(_number)(value.get("auc")) \
        and _optional(_str)(value.get("after_request"))


def _receipt(value: Any) -> bool:
    """The receipt fields charts read; a receipt from before the estimate lacks it."""
    return isinstance(value, dict) and _number(value.get("wall_s", 0)) \
        and _optional(_number)(value.get("full_retrain_estimate_s"))


# field → check; a field marked optional may be absent, any other must be present.
REQUIRED = "required"
OPTIONAL = "optional"
Fields = dict[str, tuple[str, Check]]

SAMPLE: Fields = {
    "id": (REQUIRED, _str),
    "user_id": (REQUIRED, _str),
    "target_item": (REQUIRED, _str),
    "target_title": (REQUIRED, _str),
    "label": (REQUIRED, _one_of(0, 1)),
    "split": (REQUIRED, _one_of(*SPLITS)),
    "instruction": (REQUIRED, _str),
    "input": (REQUIRED, _str),
    "output": (REQUIRED, _str),
    "history": (OPTIONAL, _history),
    "order": (REQUIRED, _int),
}
USER: Fields = {
    "id": (REQUIRED, _str),
    "counts": (REQUIRED, _split_counts),
}
SHARD: Fields = {
    "shard": (REQUIRED, _count),
    # the manifest's segment; inline `sample_ids` only until the commit moves them there
    "ids_file": (OPTIONAL, _str),
    "sample_ids": (OPTIONAL, _list_of(_str)),
    "users": (REQUIRED, _list_of(_str)),
    "size": (REQUIRED, _count),
    "centre": (OPTIONAL, _optional(_str)),
    "adapter": (OPTIONAL, _optional(_str)),
}
ADAPTER: Fields = {
    "id": (REQUIRED, _str),
    "kind": (REQUIRED, _one_of(*ADAPTER_KINDS)),
    "status": (REQUIRED, _one_of(*ADAPTER_STATES)),
    "shard": (REQUIRED, _optional(_count)),
    "version": (REQUIRED, _count),
    "path": (REQUIRED, _optional(_str)),
    "sha256": (REQUIRED, _str),
    # None once a forget keys it (a row trained on removed data keeps only `manifest`)
    "manifest_hash": (REQUIRED, _optional(_str)),
    "manifest": (OPTIONAL, _str),
    "sample_count": (OPTIONAL, _count),
    "settings": (REQUIRED, _dict),
    "valid_errors": (OPTIONAL, _optional(_str)),
    "valid_ids_hash": (OPTIONAL, _optional(_str)),
    "valid_error_mean": (OPTIONAL, _optional(_number)),
    "wall_time_s": (REQUIRED, _number),
    "loss_curve": (OPTIONAL, _list_of(_number)),
}
REQUEST: Fields = {
    "id": (REQUIRED, _str),
    "status": (REQUIRED, _one_of(*REQUEST_STATES)),
    "phase": (OPTIONAL, _str),
    "created": (OPTIONAL, _optional(_str)),
    "finished": (OPTIONAL, _optional(_str)),
    "targets": (OPTIONAL, _optional(lambda t: _dict(t) and all(
        key in ("users", "samples", "items") and _list_of(_str)(ids) for key, ids in t.items()
    ))),
    "subjects": (REQUIRED, _list_of(_str)),
    "affected_shards": (OPTIONAL, _list_of(_count)),
    "removed": (OPTIONAL, _optional(_split_counts)),
    "adapters_before": (OPTIONAL, _list_of(lambda ref: _dict(ref) and _count(ref.get("shard"))
                                           and _str(ref.get("id")))),
    "receipt": (OPTIONAL, _optional(_receipt)),
    # keyed fingerprints of what a forget removed: what `verify` scans the store for
    "removed_fingerprints": (OPTIONAL, lambda f: _dict(f) and all(
        _list_of(_str)(value) if key != "text_lines" else _count(value)
        for key, value in f.items())),
}
AUDIT: Fields = {
    "seq": (REQUIRED, _int),
    "time": (REQUIRED, _str),
    "event": (REQUIRED, _str),
    "prev": (REQUIRED, _str),
    "hash": (REQUIRED, _str),
}
META: Fields = {
    "salt": (OPTIONAL, _optional(_str)),  # stores made before keyed pseudonyms
    "pseudonyms": (OPTIONAL, _optional(_str)),
    "store_id": (OPTIONAL, _optional(_str)),
    "key_id": (OPTIONAL, _optional(_str)),
    "dataset": (OPTIONAL, _optional(_dict)),
    "model": (OPTIONAL, _optional(lambda m: _dict(m) and all(
        _optional(_str)(m.get(key)) for key in ("name", "source", "fingerprint")))),
    "embeddings": (OPTIONAL, _embeddings),
    "samples": (OPTIONAL, _sample_segments),
    "partition": (OPTIONAL, _optional(lambda p: _dict(p) and all(
        _optional(_count)(p.get(key)) for key in ("shards", "cap", "train_samples")
    ) and _optional(_str)(p.get("method")))),
    "train_settings": (OPTIONAL, _optional(_dict)),
    "aggregation": (OPTIONAL, _optional(lambda a: _dict(a) and _number(a.get("tau"))
                                        and _count(a.get("neighbours")))),
    "score_history": (OPTIONAL, _list_of(_score_point)),
    "throughput": (OPTIONAL, _throughput),  # absent in stores made before it was measured
}
TABLE_FIELDS: dict[str, Fields] = {
    "samples": SAMPLE, "users": USER, "shards": SHARD, "adapters": ADAPTER,
    "requests": REQUEST, "audit": AUDIT, "meta": META,
}


def check_record(table: str, doc_id: str, record: Any, fields: Fields) -> None:
    if not isinstance(record, dict):
        raise RecordError(f"{table} record {doc_id} is not an object")
    for name, (presence, check) in fields.items():
        if name not in record:
            if presence == REQUIRED:
                raise RecordError(f"{table} record {doc_id} has no {name!r}")
            continue
        if not check(record[name]):
            raise RecordError(f"{table} record {doc_id} has a malformed {name!r}")


def check_meta_table(document: Any) -> dict | None:
    """The meta record; None where the document has none (not a store at all: a foreign
    JSON file). A meta table or record of the wrong type is damage: RecordError."""
    if not isinstance(document, dict) or "meta" not in document:
        return None
    table = document["meta"]
    if not isinstance(table, dict):
        raise RecordError("table 'meta' is not a table of records")
    if "1" in table and not isinstance(table["1"], dict):
        raise RecordError("meta record 1 is not an object")
    return table.get("1")


def check_tables(document: dict[str, Any]) -> None:
    """Every top-level value is a table: an object of records (objects) under numeric ids,
    as TinyDB reads them (it turns each id into an int)."""
    for table, rows in document.items():
        if not isinstance(rows, dict):
            raise RecordError(f"table {quoted(table)} is not a table of records")
        for doc_id, record in rows.items():
            if not (doc_id.isascii() and doc_id.isdigit()):
                raise RecordError(f"table {quoted(table)} has a record under "
                                  f"{quoted(doc_id)}, not a number")
            if not isinstance(record, dict):
                raise RecordError(f"{clipped(table)} record {doc_id} is not an object")


def check_document(document: dict[str, Any]) -> None:
    """Raise RecordError naming the first table or record whose shape readers would trip
    on."""
    check_tables(document)
    for table, fields in TABLE_FIELDS.items():
        rows = document.get(table, {})
        for doc_id, record in rows.items():
            check_record(table, doc_id, record, fields)
    meta = document.get("meta", {}).get("1", {})
    if not meta.get("salt") and not all(meta.get(key) for key in ("pseudonyms", "store_id",
                                                                   "key_id")):
        raise RecordError("meta record 1 names neither a salt nor a key for its pseudonyms")
    for doc_id, row in document.get("shards", {}).items():
        if "ids_file" not in row and "sample_ids" not in row:
            raise RecordError(f"shards record {doc_id} has no 'ids_file'")
    live_files = ("path", "valid_errors")
    for doc_id, row in document.get("adapters", {}).items():
        if row["status"] == "live" and not all(_str(row.get(key)) for key in live_files):
            raise RecordError(f"adapters record {doc_id} is live but names no files")
        if row["status"] == "live" and not _str(row.get("manifest_hash")):
            raise RecordError(f"adapters record {doc_id} is live but has no manifest hash")
        if row["kind"] == "shard" and row["shard"] is None:
            raise RecordError(f"adapters record {doc_id} is a shard adapter without a shard")
