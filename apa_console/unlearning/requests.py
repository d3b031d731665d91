"""Forget requests before they run: the plan (what a forget would do) and the queue."""

from __future__ import annotations

from typing import Any

from apa_console.errors import ConflictError, NotFoundError
from apa_console.safe_text import quoted
from apa_console.samples import SPLITS
from apa_console.store import records, throughput
from apa_console.store.document import Store, get_meta, now_iso
from apa_console.unlearning import audit_log
from apa_console.unlearning.targets import Targets, covered_samples

MEASURED, ADAPTER_TIMES = "measured", "adapter times"  # what a plan's estimate rests on


def _retrain_estimate(db, adapter: dict | None, new_size: int,
                      valid_left: int) -> tuple[float, str | None]:
    """Seconds to retrain `adapter`'s shard on `new_size` samples and score the validation
    pool with it, and what that rests on: the speed measured on this machine for the
    adapter's dtype, or else (nothing measured yet) its own training time scaled to the
    new size, which leaves the validation pass out."""
    if not adapter:
        return 0.0, None
    settings = adapter.get("settings") or {}
    rates = throughput.measured(db, settings.get("dtype"))
    if rates:
        epochs = int(settings.get("epochs") or 1)
        return (new_size * epochs / rates["train_samples_per_s"]
                + valid_left / rates["score_samples_per_s"]), MEASURED
    if not adapter.get("sample_count"):
        return 0.0, None
    return float(adapter["wall_time_s"]) * new_size / adapter["sample_count"], ADAPTER_TIMES


def plan(store: Store, targets: Targets) -> dict[str, Any]:
    """What forgetting `targets` would do, without doing it.

    A forget also runs every request already open (queued, or interrupted after its
    purge), so the plan covers them too: `queued` lists them, and the shard table and the
    estimate are for everything that will run.
    """
    db = store.snapshot()
    samples, already = covered_samples(db, targets)
    queued = _open_request_plans(db)
    removed_ids = {s.id for s in samples}.union(*(q["sample_ids"] for q in queued))
    pending_retrain = {k for q in queued for k in q["shards"]}
    live = {row["shard"]: row for row in
            records.withdrawn_adapters(db) + records.live_adapters(db)}
    shard_rows = records.shard_rows(db)
    # counted, not read: reading the validation split would read every sample segment
    removed_valid = {s.id for s in samples if s.split == "valid"}.union(
        *(q["valid_ids"] for q in queued))
    valid_left = records.sample_counts(db)[0]["valid"] - len(removed_valid)
    shards, bases = [], set()
    for row in shard_rows:
        hit = [sid for sid in row["sample_ids"] if sid in removed_ids]
        if not hit and row["shard"] not in pending_retrain:
            continue
        remaining = row["size"] - len(hit)
        adapter = live.get(row["shard"])
        estimate, basis = (_retrain_estimate(db, adapter, remaining, valid_left)
                           if remaining else (0.0, None))
        bases.add(basis)
        shards.append({
            "shard": row["shard"], "removed": len(hit), "remaining": remaining,
            "adapter": adapter["id"] if adapter else None,
            "action": "retire" if remaining == 0 else ("retrain" if adapter else "none"),
            "estimate_s": estimate,
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
        "queued": [{key: q[key] for key in
                    ("request", "status", "purged", "label", "samples", "shards")}
                   for q in queued],
        "shards": shards,
        "adapters_to_retrain": [s["adapter"] for s in shards if s["action"] == "retrain"],
        "estimate_s": sum(s["estimate_s"] for s in shards),
        # "measured" only when every shard's estimate is: one fallback makes it approximate
        "estimate_basis": (ADAPTER_TIMES if ADAPTER_TIMES in bases
                           else MEASURED if MEASURED in bases else None),
        "total_shards": len(shard_rows),
    }


def _open_request_plans(db) -> list[dict[str, Any]]:
    """Each open request: what it still removes (nothing once purged) and the shards it
    still has to retrain."""
    out = []
    shard_of = records.sample_shards(db)
    for request in records.open_requests(db):
        purged = request.get("phase") == "purged"
        try:
            found = [] if purged else covered_samples(
                db, Targets.from_dict(request["targets"]))[0]
        except NotFoundError:  # its subjects went with another request's purge
            found = []
        shards = (request.get("affected_shards", []) if purged
                  else sorted({shard_of[s.id] for s in found if s.id in shard_of}))
        out.append({
            "request": request["id"], "status": request["status"], "purged": purged,
            "label": Targets.from_dict(request.get("targets") or {}).label(),
            "samples": (sum((request.get("removed") or {}).values()) if purged
                        else len(found)),
            "sample_ids": {s.id for s in found}, "shards": shards,
            "valid_ids": {s.id for s in found if s.split == "valid"},
        })
    return out


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


def cancel(store: Store, request_id: str) -> dict[str, Any]:
    """Withdraw a queued request that has not been purged: nothing was removed yet, so
    nothing needs undoing. Its plain ids go; its pseudonyms stay for the log."""
    with store.transaction() as db:
        request = records.find_request(db, request_id)
        if request is None:
            raise NotFoundError(f"no request {quoted(request_id)} (see `apa-console requests`)")
        if request["status"] not in records.OPEN_REQUEST_STATES:
            raise ConflictError(f"request {request_id} is {request['status']}; only a queued "
                                "request can be withdrawn")
        if request.get("phase") == "purged":
            raise ConflictError(f"request {request_id} has already removed its samples; "
                                "run `apa-console apply` to finish it")
        records.update_request(db, request_id, {"status": records.CANCELLED,
                                                "finished": now_iso(), "targets": None})
        audit_log.append(db, "forget.cancelled", {"request": request_id,
                                                  "subjects": request["subjects"]})
    return records.find_request(store.snapshot(), request_id)


def list_requests(store: Store) -> list[dict[str, Any]]:
    """Every request, each with its `state` in words."""
    db = store.snapshot()
    withdrawn = records.withdrawn_adapters(db)
    return [row | {"state": request_state(row, withdrawn),
                   "open": row.get("status") in records.OPEN_REQUEST_STATES}
            for row in records.request_rows(db)]


def needs_retraining(store: Store, only: set[str] | None = None) -> bool:
    """Whether applying the open requests (or those in `only`) retrains any shard: a forget
    of test or validation samples alone does not, and needs no model."""
    return any(plan["shards"] for plan in _open_request_plans(store.snapshot())
               if only is None or plan["request"] in only)


def open_requests(store: Store) -> list[dict[str, Any]]:
    """Queued requests and those a crash or cancel interrupted: `apply` finishes them."""
    return records.open_requests(store.snapshot())


def request_state(request: dict[str, Any], withdrawn: list[dict[str, Any]]) -> str:
    """Where a request stands, in the operator's words: what is gone and what still runs."""
    if request.get("status") == records.DONE:
        return f"forgotten: data removed, adapters swapped ({request['id']})"
    if request.get("status") == records.CANCELLED:
        return f"withdrawn before it ran: nothing removed ({request['id']})"
    if request.get("phase") != "purged":
        return f"queued, nothing removed yet ({request['id']}): run `apa-console apply`"
    mine = [row for row in withdrawn if row["shard"] in request.get("affected_shards", [])]
    if not mine:
        return f"removed from data, swap pending ({request['id']}): run `apa-console apply`"
    shards = ", ".join(str(row["shard"]) for row in mine)
    noun = "shard" if len(mine) == 1 else "shards"
    verb = "adapter" if len(mine) == 1 else "adapters"
    return (f"removed from data; {noun} {shards}'s {verb} withdrawn, retrain pending "
            f"({request['id']})")
