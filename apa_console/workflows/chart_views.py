"""Read models for the console's charts: loss curves, the users × shards map, the served
recommender's AUC over time, each forget's time against a full retrain, and each adapter's
validation error. Plain data from one snapshot of the store; the TUI only draws it."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

from tinydb import TinyDB

from apa_console.store import records
from apa_console.store.document import Store


def _serving_adapters(db: TinyDB) -> dict[int, dict[str, Any]]:
    """Each shard's current adapter: the live one, or the one withdrawn until a retrain."""
    return {row["shard"]: row for row in
            records.withdrawn_adapters(db) + records.live_adapters(db)}


def epoch_starts(steps: int, epochs: int | None) -> list[int]:
    """The 1-based steps at which epochs 2, 3, … begin (one loss per optimizer step, the
    same number of steps in every epoch); none when the epoch count is unknown."""
    if not steps or not epochs or epochs < 2:
        return []
    per_epoch = math.ceil(steps / epochs)
    return [epoch * per_epoch + 1 for epoch in range(1, epochs) if epoch * per_epoch < steps]


def loss_curves(db: TinyDB) -> list[dict[str, Any]]:
    """Per shard: its current adapter's loss at every training step and the epoch marks."""
    adapters = _serving_adapters(db)
    curves = []
    for shard in records.shard_rows(db):
        row = adapters.get(shard["shard"])
        curve = [float(x) for x in (row.get("loss_curve") or [])] if row else []
        epochs = (row.get("settings") or {}).get("epochs") if row else None
        epochs = epochs if isinstance(epochs, int) else None
        curves.append({
            "shard": shard["shard"],
            "adapter": row["id"] if row else None,
            "serving": records.serving_state(row),
            "curve": curve,
            "epochs": epochs,
            "epoch_starts": epoch_starts(len(curve), epochs),
            "samples": row.get("sample_count") if row else None,
        })
    return curves


def user_shard_map(db: TinyDB) -> dict[str, Any]:
    """Training samples per (user, shard). A user whose samples sit in several shards costs
    that many retrains to forget, so users are listed widest span first."""
    user_of = {row["id"]: row["user_id"] for row in records.sample_rows(db)}
    shards = [row["shard"] for row in records.shard_rows(db)]
    counts: dict[str, Counter] = defaultdict(Counter)
    for row in records.shard_rows(db):
        for sample_id in row["sample_ids"]:
            if sample_id in user_of:
                counts[user_of[sample_id]][row["shard"]] += 1
    users = [{"id": user, "counts": dict(per_shard), "span": len(per_shard),
              "samples": sum(per_shard.values())}
             for user, per_shard in counts.items()]
    users.sort(key=lambda u: (-u["span"], -u["samples"], u["id"]))
    spread = Counter(u["span"] for u in users)
    return {"shards": shards, "users": users,
            "spread": {span: spread[span] for span in sorted(spread)}}


def auc_history(db: TinyDB) -> list[dict[str, Any]]:
    """The recorded whole-split scores of the served recommender, oldest first, each named
    by the forget it ran after ("start" before any)."""
    return [{**point, "label": point.get("after_request") or "start"}
            for point in records.score_history(db)]


def forget_costs(db: TinyDB) -> dict[str, Any]:
    """Per finished forget: its measured time (purge, retrain, swap) beside retraining every
    shard. Receipts written before the estimate was recorded borrow today's adapters' times,
    and say so."""
    today = sum(row["wall_time_s"] + (row.get("valid_wall_s") or 0.0)
                for row in records.live_adapters(db))
    costs = []
    for request in records.request_rows(db):
        receipt = request.get("receipt")
        if request.get("status") != records.DONE or not receipt:
            continue
        recorded = receipt.get("full_retrain_estimate_s")
        full = recorded if recorded is not None else today
        forget_s = float(receipt.get("wall_s") or 0.0)
        costs.append({
            "request": request["id"],
            "finished": request.get("finished"),
            "forget_s": forget_s,
            "full_retrain_s": float(full),
            "estimate_from": "receipt" if recorded is not None else "current adapters",
            "ratio": forget_s / full if full else None,
            "shards": len(receipt.get("shards") or []),
        })
    return {"shards": len(records.shard_rows(db)), "requests": costs}


def validation_errors(db: TinyDB) -> list[dict[str, Any]]:
    """Each shard's current adapter's mean validation error (the aggregation weights favour
    adapters with low error near a sample)."""
    adapters = _serving_adapters(db)
    return [{"shard": k, "adapter": row["id"], "serving": records.serving_state(row),
             "error": row.get("valid_error_mean"), "auc": row.get("valid_auc")}
            for k, row in sorted(adapters.items())]


def charts_view(store: Store) -> dict[str, Any]:
    """Everything the Charts screen draws, read from one snapshot."""
    db = store.snapshot()
    return {
        "loss": loss_curves(db),
        "user_shards": user_shard_map(db),
        "auc": auc_history(db),
        "forget_costs": forget_costs(db),
        "valid_errors": validation_errors(db),
    }
