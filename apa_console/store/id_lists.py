"""Long lists of sample ids (shard manifests, the row ids of cached embeddings) kept as
one-column segments, so apa.json holds a file name per list instead of every id.

Writers keep writing the lists inline (`sample_ids` on a shard row, `ids` on an embeddings
entry); each commit moves every inline list into its segment (`absorb_inline`), and a list
nobody changed keeps its file, since a segment's name is its content's hash. Readers get
the lists back through `shard_with_ids` and `embedding_entries`, which accept both forms,
so a transaction sees its own uncommitted changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apa_console.errors import StoreInvalidError
from apa_console.store import embedding_parts, segments

if TYPE_CHECKING:
    import pyarrow as pa

SHARD_KIND = "shard-ids"
EMBEDDING_KIND = "embedding-ids"


def id_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([("id", pa.string())])


def write_ids(path_of, kind: str, ids: list[str]) -> str:
    import pyarrow as pa

    return segments.write_segment(path_of, kind, pa.table({"id": pa.array(ids, pa.string())}))


def read_ids(path_of, relative: str, rows: int) -> list[str]:
    column = segments.read_segment(path_of, relative, id_schema(), rows=rows).column("id")
    if column.null_count:
        raise StoreInvalidError(f"{relative} is corrupt (a missing sample id)")
    return column.to_pylist()


# -- shard manifests -----------------------------------------------------------------------


def shard_with_ids(path_of, row: dict[str, Any]) -> dict[str, Any]:
    """The shard row with its `sample_ids`, read from its segment when not inline."""
    if "sample_ids" in row:
        return dict(row)
    return {**row, "sample_ids": read_ids(path_of, row["ids_file"], row["size"])}


def shard_members_among(path_of, row: dict[str, Any], wanted: list[str]) -> list[str]:
    """Which of `wanted` the shard holds (in `wanted`'s order)."""
    members = set(shard_with_ids(path_of, row)["sample_ids"])
    return [sid for sid in wanted if sid in members]


# -- embeddings entries --------------------------------------------------------------------


def embedding_part_ids(path_of, part: dict[str, Any]) -> list[str]:
    """One embedding part's row ids (or a legacy entry's), inline or from its segment."""
    return list(part["ids"]) if "ids" in part else read_ids(path_of, part["ids_file"],
                                                          part["rows"])


def embedding_entries(path_of, entries: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """{split: {buckets, parts: [{bucket, file, ids}], ids}}: every part's ids read from its
    segment when not inline, and the split's ids in row order."""
    out = {}
    for split, entry in (entries or {}).items():
        parts = [{"bucket": bucket, "file": part["file"],
                  "ids": embedding_part_ids(path_of, part)}
                 for bucket, part in embedding_parts.parts_in_order(entry)]
        out[split] = {"buckets": embedding_parts.buckets_of(entry), "parts": parts,
                      "ids": [sid for part in parts for sid in part["ids"]]}
    return out


# -- the commit ----------------------------------------------------------------------------


def absorb_inline(path_of, document: dict[str, Any]) -> None:
    """Move every inline id list of `document` into its segment (in place)."""
    for row in document.get("shards", {}).values():
        if "sample_ids" in row:
            ids = row.pop("sample_ids")
            row["ids_file"] = write_ids(path_of, SHARD_KIND, ids)
            row["size"] = len(ids)
    meta = document.get("meta", {}).get("1", {})
    for split, entry in (meta.get("embeddings") or {}).items():
        if "ids" in entry:  # a legacy single-array entry written inline
            ids = entry["ids"]
            meta["embeddings"][split] = {"file": entry["file"], "rows": len(ids),
                                         "ids_file": write_ids(path_of, EMBEDDING_KIND, ids)}
        for key, part in (entry.get("parts") or {}).items():
            if "ids" in part:
                ids = part["ids"]
                entry["parts"][key] = {"file": part["file"], "rows": len(ids),
                                       "ids_file": write_ids(path_of, EMBEDDING_KIND, ids)}


def files(document: dict[str, Any]) -> list[Any]:
    """The id-list file fields of `document` (for the store's reference check)."""
    meta = document.get("meta", {}).get("1", {})
    return ([row.get("ids_file") for row in document.get("shards", {}).values()
             if "ids_file" in row]
            + [ref for entry in (meta.get("embeddings") or {}).values()
               for ref in embedding_parts.id_files(entry)])
