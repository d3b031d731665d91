"""Training and scoring speed measured on this machine, per model and compute dtype.

A forget's plan estimates from these when they exist. An adapter's own training time leaves
out its validation pass and may come from another machine or dtype, so it is only the
fallback. Every adapter trained here adds a measurement; the estimate takes the median of
the last few, so one run slowed by a busy machine moves it little.
"""

from __future__ import annotations

import platform
import statistics
from typing import Any

from tinydb import TinyDB

from apa_console.store.document import get_meta, now_iso, update_meta

RECENT = 5  # measurements kept per machine, model and dtype


def machine_key(db: TinyDB, dtype: str | None) -> str:
    """"host/model/dtype": whose speed a measurement is."""
    model = (get_meta(db).get("model") or {}).get("name") or "model"
    return f"{platform.node() or 'this machine'}/{model}/{dtype or 'default dtype'}"


def record_adapter(db: TinyDB, row: dict[str, Any], valid_samples: int) -> None:
    """Add what training `row` (an adapters-table row just trained here) measured: training
    samples/s (every epoch's passes) and, when it scored the validation pool, scoring
    samples/s. Inside the caller's transaction, so it commits with the adapter."""
    train_rate = row.get("samples_per_s")
    valid_s = row.get("valid_wall_s") or 0.0
    score_rate = valid_samples / valid_s if valid_samples and valid_s > 0 else None
    if not train_rate:
        return
    rates = dict(get_meta(db).get("throughput") or {})
    key = machine_key(db, (row.get("settings") or {}).get("dtype"))
    entry = dict(rates.get(key) or {"train": [], "score": [], "jobs": 0})
    entry["train"] = [*entry.get("train", []), float(train_rate)][-RECENT:]
    if score_rate:
        entry["score"] = [*entry.get("score", []), float(score_rate)][-RECENT:]
    entry["jobs"] = int(entry.get("jobs", 0)) + 1
    entry["measured"] = now_iso()
    rates[key] = entry
    update_meta(db, throughput=rates)


def measured(db: TinyDB, dtype: str | None) -> dict[str, Any] | None:
    """{"train_samples_per_s", "score_samples_per_s", "jobs"} measured here for the store's
    model at `dtype`, or None when nothing (or no scoring) was measured yet."""
    entry = (get_meta(db).get("throughput") or {}).get(machine_key(db, dtype))
    if not entry or not entry.get("train") or not entry.get("score"):
        return None
    return {"train_samples_per_s": statistics.median(entry["train"]),
            "score_samples_per_s": statistics.median(entry["score"]),
            "jobs": int(entry.get("jobs", 0))}

