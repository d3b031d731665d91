"""Forget requests before they run: the plan (what a forget would do) and the queue."""

from __future__ import annotations

from typing import Any

from apa_console.samples import SPLITS
from apa_console.store import records
from apa_console.store.document import Store, get_meta, now_iso
from apa_console.unlearning import audit_log
from apa_console.unlearning.targets import Targets, covered_samples


def _retrain_estimate(adapter: dict | None, new_size: int) -> float:
    if not adapter or not adapter.get("sample_count"):
        return 0.0
    return float(adapter["wall_time_s"]) * new_size / adapter["sample_count"]


def plan(store: Store, targets: Targets) -> dict[str, Any]:
    """What forgetting `targets` would do, without doing it."""
    db = store.snapshot()
    samples, already = covered_samples(db, targets)
    removed_ids = {s.id for s in samples}
    live = {row["shard"]: row for row in records.live_adapters(db)}
    shard_rows = records.shard_rows(db)
    shards = []
    for row in shard_rows:
        hit = [sid for sid in row["sample_ids"] if sid in removed_ids]
        if not hit:
            continue
        remaining = row["size"] - len(hit)
        adapter = live.get(row["shard"])
        shards.append({
            "shard": row["shard"], "removed": len(hit), "remaining": remaining,
            "adapter": adapter["id"] if adapter else None,
            "action": "retire" if remaining == 0 else ("retrain" if adapter else "none"),
            "estimate_s": 0.0 if remaining == 0 else _retrain_estimate(adapter, remaining),
        })
    counts = {split: sum(1 for s in samples if s.split == split) for split in SPLITS}
    dataset = get_meta(db).get("dataset") or {}
    return {
        # imported without user ids, every record is its own "user": --user removes one record
        "users_are_records": bool(dataset.get("users_are_records")),
        "targets": targets.to_dict(),
        "already_forgotten": already,
        "samples": counts,
        "users": sorted({s.user_id for s in samples}),
        "shards": shards,
        "adapters_to_retrain": [s["adapter"] for s in shards if s["action"] == "retrain"],
        "estimate_s": sum(s["estimate_s"] for s in shards),
        "total_shards": len(shard_rows),
    }


def submit(store: Store, targets: Targets) -> dict[str, Any]:
    """Record a pending request (validated now; applied by `forget.apply_pending`)."""
    with store.transaction() as db:
        samples, already = covered_samples(db, targets)
        if not samples:
            return {"request": None, "already_forgotten": already}
        request = {
            "id": records.next_request_id(db),
            "status": records.PENDING,
            "phase": "queued",
            "created": now_iso(),
            "targets": targets.to_dict(),  # plain ids only until done (needed to resume)
            "subjects": targets.fingerprints(audit_log.pseudonyms(db)),
        }
        records.insert_request(db, request)
        audit_log.append(db, "forget.requested", {"request": request["id"],
                                                  "subjects": request["subjects"]})
    return {"request": request, "already_forgotten": already}


def list_requests(store: Store) -> list[dict[str, Any]]:
    return records.request_rows(store.snapshot())


def open_requests(store: Store) -> list[dict[str, Any]]:
    """Queued requests and those a crash or cancel interrupted: `apply` finishes them."""
    return records.open_requests(store.snapshot())
