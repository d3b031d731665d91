"""Read models for the front-ends: what each console screen shows, assembled from core calls.

Plain dicts and lists only — no rendering and no Textual — so the TUI stays a thin layer over
these, and they can be tested (or reused by the CLI) without a terminal. Each function reads
the committed store afresh, so a screen that calls it after another process wrote sees the
new state.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from apa_console.apa.embeddings import cached_embeddings
from apa_console.apa.partition import cosine_distances
from apa_console.apa.shards import shard_summary
from apa_console.errors import NotFoundError
from apa_console.safe_text import quoted
from apa_console.store import catalog, records
from apa_console.store.document import Store, get_meta
from apa_console.store.status import store_status
from apa_console.units import plural
from apa_console.unlearning import audit_log as audit
from apa_console.unlearning.requests import list_requests
from apa_console.unlearning.targets import Targets
from apa_console.unlearning.user_audit import user_audit

TYPICAL_SAMPLES = 5


def request_subject(request: dict[str, Any]) -> str:
    """Who a request is about: plain ids while it is open, a fingerprint once it is done
    (a finished request keeps no plain identifier of the forgotten subject)."""
    targets = request.get("targets")
    if targets:
        return Targets.from_dict(targets).label()
    subjects = request.get("subjects") or []
    return f"forgotten · {subjects[0][:8]}" if subjects else "–"


def request_summary(request: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": request["id"],
        "status": request.get("status"),
        "open": request.get("status") in records.OPEN_REQUEST_STATES,
        "phase": request.get("phase"),
        "state": request.get("state"),
        "subject": request_subject(request),
        "created": request.get("created"),
        "finished": request.get("finished"),
        "shards": list(request.get("affected_shards") or []),
        "removed": dict(request.get("removed") or {}),
    }


def adapter_summary(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "shard": row.get("shard"),
        "version": row.get("version"),
        "sha256": row.get("sha256"),
        "manifest_hash": row.get("manifest_hash"),
        "sample_count": row.get("sample_count"),
        "loss_curve": list(row.get("loss_curve") or []),
        "wall_time_s": row.get("wall_time_s"),
        "samples_per_s": row.get("samples_per_s"),
        "valid_error_mean": row.get("valid_error_mean"),
        "created": row.get("created"),
    }


def overview(store: Store) -> dict[str, Any]:
    """Dataset and model, partition and balance, live adapters, open requests, last
    evaluation: the console's landing page."""
    db = store.snapshot()
    meta = get_meta(db)
    return {
        "status": store_status(store),
        "shards": shard_summary(store),
        "adapters": [adapter_summary(row) for row in records.live_adapters(db)],
        "open_requests": [request_summary(r) for r in list_requests(store)
                          if r.get("status") in records.OPEN_REQUEST_STATES],
        "evaluation": meta.get("last_evaluation"),
        "aggregation": meta.get("aggregation"),
    }


def user_rows(store: Store, contains: str | None = None) -> list[dict[str, Any]]:
    """Users as {id, samples, counts, shards}; `shards` are the shards holding their data."""
    db = store.snapshot()
    shards_of = records.user_shards(db)
    users = catalog.list_users(db, contains=contains)
    for user in users:
        user["shards"] = shards_of.get(user["id"], [])
    return users


def user_view(store: Store, user_id: str) -> dict[str, Any]:
    """One user: their samples (with the shard holding each training sample) and the forget
    requests about them. A forgotten user has no samples but keeps their request history."""
    try:
        detail = catalog.user_detail(store, user_id)
    except NotFoundError:
        detail = None
    try:
        history = user_audit(store, user_id)["requests"]
    except NotFoundError:
        history = []
    if detail is None and not history:
        raise catalog.user_not_found(store, user_id)
    samples = []
    if detail is not None:
        for split_rows in detail["splits"].values():
            for row in split_rows:
                samples.append({
                    "id": row["id"],
                    "split": row["split"],
                    "label": row["label"],
                    "target_title": row.get("target_title", ""),
                    "input": row.get("input", ""),
                    "shard": row.get("shard"),
                    "order": row.get("order", 0),
                })
    samples.sort(key=lambda s: s["order"])
    return {
        "id": user_id,
        "present": detail is not None,
        "counts": detail["counts"] if detail else {"train": 0, "valid": 0, "test": 0},
        "shards": sorted({s["shard"] for s in samples if s["shard"] is not None}),
        "samples": samples,
        "requests": history,
    }


def _typical_samples(
    store: Store, row: dict[str, Any], train: tuple[list[str], np.ndarray] | None,
    samples: dict[str, dict], count: int,
) -> list[dict[str, Any]]:
    """The shard's members nearest its centre (cosine distance on the cached hidden states):
    the samples that best describe what the shard is about."""
    if not train or not row.get("centre") or not row["sample_ids"]:
        return []
    index = {sid: i for i, sid in enumerate(train[0])}
    members = [sid for sid in row["sample_ids"] if sid in index]
    if not members:
        return []
    centre = store.read_array(row["centre"]).reshape(1, -1)
    distances = cosine_distances(train[1][[index[sid] for sid in members]], centre)[:, 0]
    nearest = sorted(zip(distances.tolist(), members))[:count]
    return [
        {"sample": sid, "distance": float(distance),
         "user": samples.get(sid, {}).get("user_id"),
         "target_title": samples.get(sid, {}).get("target_title"),
         "label": samples.get(sid, {}).get("label")}
        for distance, sid in nearest
    ]


def shard_views(store: Store, typical: int = TYPICAL_SAMPLES) -> dict[str, Any]:
    """Every shard with its live adapter (version, hashes, loss curve, timings), how many
    adapter versions it has had, and its most typical samples."""
    db = store.snapshot()
    adapters = records.adapter_rows(db)
    live = {row["shard"]: row for row in
            records.withdrawn_adapters(db) + records.live_adapters(db)}
    samples = {row["id"]: row for row in records.sample_rows(db)}
    train = cached_embeddings(store, "train")
    shards = []
    for row in records.shard_rows(db):
        versions = [a for a in adapters
                    if a.get("kind") == records.SHARD and a.get("shard") == row["shard"]]
        adapter = live.get(row["shard"])
        shards.append({
            "shard": row["shard"],
            "size": row["size"],
            "users": len(row["users"]),
            "adapter": adapter_summary(adapter) if adapter else None,
            "serving": records.serving_state(adapter),
            "versions": len(versions),
            "typical": _typical_samples(store, row, train, samples, typical),
        })
    return {"partition": get_meta(db).get("partition"), "shards": shards}


def request_state(store: Store, request_id: str) -> str:
    """One request's state in words (what is removed, what is withdrawn, what is pending)."""
    for row in list_requests(store):
        if row["id"] == request_id:
            return row["state"]
    return f"no request {request_id}"


def request_detail(store: Store, request_id: str) -> dict[str, Any]:
    """One request: its summary and state, its receipt (adapters before → after with their
    hashes) and every audit entry about it."""
    row = next((r for r in list_requests(store) if r["id"] == request_id), None)
    if row is None:
        raise NotFoundError(f"no request {quoted(request_id)} (see `apa-console requests`)")
    entries = [{"seq": e.get("seq"), "time": e.get("time"), "event": e.get("event"),
                "hash": e.get("hash", "")}
               for e in audit.entries(store) if (e.get("data") or {}).get("request") == request_id]
    return {"summary": request_summary(row), "receipt": row.get("receipt"),
            "started": row.get("started"), "audit": entries}


def requests_view(store: Store) -> list[dict[str, Any]]:
    return [request_summary(r) for r in list_requests(store)]


def _entry_summary(entry: dict[str, Any]) -> str:
    data = entry.get("data") or {}
    parts = []
    if "request" in data:
        parts.append(str(data["request"]))
    if isinstance(data.get("shards"), list) and data["shards"]:
        parts.append("shards " + ",".join(str(k) for k in data["shards"]))
    if isinstance(data.get("receipt"), dict):
        swapped = len(data["receipt"].get("adapters", []))
        parts.append(f"{plural(swapped, 'adapter')} swapped")
    if not parts:
        parts = [f"{key}={value}" for key, value in data.items()
                 if isinstance(value, (str, int, float))][:3]
    return " · ".join(parts)


def audit_view(store: Store) -> dict[str, Any]:
    """The hash-chained log, each entry marked with whether it links to the one before, and
    the full verification (chain plus live adapter weights)."""
    log = audit.entries(store)
    previous = audit.GENESIS
    rows = []
    for entry in log:
        rows.append({
            "seq": entry.get("seq"),
            "time": entry.get("time"),
            "event": entry.get("event"),
            "hash": entry.get("hash", ""),
            "linked": entry.get("prev") == previous,
            "summary": _entry_summary(entry),
        })
        previous = entry.get("hash", "")
    return {"entries": rows, "verification": audit.verify_store(store)}
