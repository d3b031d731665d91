"""What a store holds, summarised for `status` and the TUI overview."""

from __future__ import annotations

from collections import Counter
from typing import Any

from apa_console.store import records
from apa_console.store.document import Store, get_meta


def store_status(store: Store) -> dict[str, Any]:
    db = store.snapshot()
    meta = get_meta(db)
    splits, positives = records.sample_counts(db)
    requests = Counter(row.get("status", "?") for row in db.table("requests"))
    adapters = records.all_live_adapters(db)
    return {
        "store": str(store.root),
        "schema_version": meta.get("schema_version"),
        "created": meta.get("created"),
        "dataset": meta.get("dataset"),
        "model": meta.get("model"),
        "partition": meta.get("partition"),
        "users": len(db.table("users")),
        "samples": splits,
        "positives": positives,
        "shards": len(db.table("shards")),
        "live_adapters": len(adapters),
        "withdrawn_adapters": [
            {"adapter": row["id"], "shard": row["shard"], "request": row.get("withdrawn_by")}
            for row in records.withdrawn_adapters(db)],
        "requests": dict(requests),
        "audit_entries": len(db.table("audit")),
    }
