"""A store that looks fully built — shards, adapters with histories, requests, an audit
chain, an evaluation — written straight through the store API, with every timestamp, salt
and hash fixed, so screenshots of it are the same on every run. It uses the legacy salted
scheme (salt in meta, no key outside the store) because a random key would change the
hashes on screen. No model is needed: the
screens only read these rows (the adapter "weights" are stand-in bytes whose sha256 the
rows record, so audit verification passes)."""

from __future__ import annotations

import hashlib
from itertools import count
from pathlib import Path
from unittest import mock

import numpy as np
from store_fixtures import make_store

from apa_console.apa.partition import shard_centre
from apa_console.store import audit, records
from apa_console.store.document import Store, update_meta
from apa_console.store.keys import legacy_fingerprint

SALT = "5a" * 16
FORGOTTEN_USER = "user9"  # a user the done request removed (no longer in the store)
PENDING_USER = "user5"
N_SHARDS = 3


def clock(start_minute: int = 0):
    """Deterministic ISO timestamps, one minute apart."""
    minutes = count(start_minute)
    return lambda: f"2026-01-05T10:{next(minutes):02d}:00Z"


def _adapter_row(store: Store, shard: int, version: int, size: int, live: bool) -> dict:
    name = f"shard-{shard}"
    path = f"adapters/{name}/v{version}"
    weights = f"{name} v{version} weights".encode()
    if live:
        directory = store.path_of(path)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "adapter_model.safetensors").write_bytes(weights)
        (directory / "adapter_config.json").write_text("{}")
    curve = [round(0.72 - 0.04 * step + 0.01 * ((shard + step) % 3), 4) for step in range(12)]
    return {
        "id": f"{name}-v{version}", "kind": "shard", "shard": shard, "version": version,
        "path": path if live else None,
        "sha256": hashlib.sha256(weights).hexdigest(),
        "manifest_hash": hashlib.sha256(f"{name} manifest {version}".encode()).hexdigest(),
        "sample_count": size, "settings": {"seed": 0, "epochs": 1},
        "loss_curve": curve, "wall_time_s": 4.0 + shard, "samples_per_s": size / (4.0 + shard),
        "steps": len(curve),
        "valid_errors": (store.write_array(f"verr-{name}-v{version}",
                                           np.full(4, 0.41 + 0.02 * shard, dtype=np.float32))
                         if live else None),
        "valid_error_mean": round(0.41 + 0.02 * shard, 4),
        "status": "live" if live else "replaced",
        "created": f"2026-01-0{version + 1}T09:0{shard}:00Z",
    }


def build_display_store(path: Path) -> Store:
    store = make_store(path)
    db = store.snapshot()
    samples = sorted(records.sample_rows(db), key=lambda row: row["order"])
    train = [row for row in samples if row["split"] == "train"]

    # Hidden states with one direction per taste group, so "typical samples" mean something.
    rng = np.random.default_rng(7)
    vectors = rng.normal(scale=0.3, size=(len(train), 8)).astype(np.float32)
    for i, row in enumerate(train):
        vectors[i, int(row["user_id"][-1]) % 3] += 2.0
    embeddings = {"train": {"file": store.write_array("emb-train", vectors),
                            "ids": [row["id"] for row in train]}}

    members = [[i for i, row in enumerate(train) if int(row["user_id"][-1]) % 3 == k]
               for k in range(N_SHARDS)]
    shard_rows, adapters = [], []
    for k, idx in enumerate(members):
        ids = [train[i]["id"] for i in idx]
        live = _adapter_row(store, k, 2 if k == 0 else 1, len(ids), live=True)
        if k == 0:  # shard 0 has been retrained once already
            adapters.append(_adapter_row(store, k, 1, len(ids) + 2, live=False))
        adapters.append(live)
        shard_rows.append({
            "shard": k, "sample_ids": ids, "size": len(ids),
            "users": sorted({train[i]["user_id"] for i in idx}),
            "centre": store.write_array(f"centre-{k}", shard_centre(vectors[idx])),
            "adapter": live["id"],
        })

    times = clock()
    with mock.patch.object(audit, "now_iso", times), store.transaction() as db:
        update_meta(
            db, salt=SALT, pseudonyms=None, store_id=None, key_id=None,
            created="2026-01-01T09:00:00Z", embeddings=embeddings,
            model={"name": "tiny-llama", "source": "/nonexistent/tiny-llama",
                   "fingerprint": "0" * 64, "architecture": "LlamaForCausalLM",
                   "hidden_size": 64, "layers": 2, "parameters": 105_664,
                   "yes_token_id": 265, "no_token_id": 264},
            partition={"method": "apa", "shards": N_SHARDS, "cap": 12, "seed": 0,
                       "created": "2026-01-01T09:30:00Z", "train_samples": len(train)},
            aggregation={"tau": 50.0, "neighbours": 10, "validation_auc": 0.71,
                         "tuned": "2026-01-02T09:00:00Z"},
            last_evaluation={
                "split": "test", "samples": 8, "strategy": "adaptive",
                "evaluated": "2026-01-03T09:00:00Z",
                "rows": [
                    {"method": "Retraining", "sub_adapter_auc": None, "auc": 0.75,
                     "delta_vs_retraining": 0.0, "samples_per_s": 40.0},
                    {"method": "SISA", "sub_adapter_auc": 0.62, "auc": 0.6875,
                     "delta_vs_retraining": -0.0625, "samples_per_s": 13.5},
                    {"method": "APA(D)", "sub_adapter_auc": 0.62, "auc": 0.75,
                     "delta_vs_retraining": 0.0, "samples_per_s": 38.2},
                    {"method": "APA(ND)", "sub_adapter_auc": 0.62, "auc": 0.8125,
                     "delta_vs_retraining": 0.0625, "samples_per_s": 36.9},
                ],
            },
        )
        db.table("shards").insert_multiple(shard_rows)
        db.table("adapters").insert_multiple(adapters)
        done_fp = legacy_fingerprint(SALT, "user", FORGOTTEN_USER)
        pending_fp = legacy_fingerprint(SALT, "user", PENDING_USER)
        audit.append(db, "partition", {"method": "apa", "shards": N_SHARDS})
        audit.append(db, "forget.requested", {"request": "r0001", "subjects": [done_fp]})
        audit.append(db, "forget.purged", {"request": "r0001", "subjects": [done_fp],
                                           "shards": [0]})
        before, after = (next(a for a in adapters if a["id"] == name)
                         for name in ("shard-0-v1", "shard-0-v2"))
        receipt = {"request": "r0001", "subjects": [done_fp], "shards": [0],
                   "removed": {"train": 2, "valid": 1, "test": 1},
                   "adapters": [{"shard": 0,
                                 "before": {"id": before["id"], "sha256": before["sha256"]},
                                 "after": {"id": after["id"], "sha256": after["sha256"]}}],
                   "baseline_retired": None, "started": "2026-01-03T10:00:05Z",
                   "finished": "2026-01-03T10:00:12Z", "wall_s": 7.0}
        audit.append(db, "forget.done", {"request": "r0001", "receipt": receipt})
        audit.append(db, "forget.requested", {"request": "r0002", "subjects": [pending_fp]})
        db.table("requests").insert_multiple([
            {"id": "r0001", "status": "done", "phase": "purged", "targets": None,
             "subjects": [done_fp], "created": "2026-01-03T10:00:00Z",
             "started": "2026-01-03T10:00:05Z", "finished": "2026-01-03T10:00:12Z",
             "affected_shards": [0], "removed": {"train": 2, "valid": 1, "test": 1},
             "receipt": receipt},
            {"id": "r0002", "status": "pending", "phase": "queued",
             "targets": {"users": [PENDING_USER], "samples": [], "items": []},
             "subjects": [pending_fp], "created": "2026-01-04T10:00:00Z"},
        ])
    return store


# -- what the Charts screen needs beyond the other screens -------------------------------------

SPREAD_USERS = {"user1": 3, "user0": 2}  # users the chart history spreads over several shards
# (AUC, the forget it ran after): a score before any forget, two after r0001, one after r0003
SCORES = ((0.62, None), (0.66, "r0001"), (0.64, "r0001"), (0.71, "r0003"))
R0003_FORGET_S, R0003_FULL_RETRAIN_S = 5.2, 16.5


def add_chart_history(store: Store) -> Store:
    """The display store after more use: user1's training samples in all three shards and
    user0's in two, shard 1's adapter trained for two epochs, four recorded scores of the
    test split, and a second finished forget whose receipt records a full-retrain estimate.
    Kept apart from `build_display_store` so the other screens' snapshots stay as they are."""
    with store.transaction() as db:
        shards = {row["shard"]: row for row in records.shard_rows(db)}
        user_of = {row["id"]: row["user_id"] for row in records.sample_rows(db)}

        def move(user: str, source: int, target: int) -> None:
            sample = next(s for s in shards[source]["sample_ids"] if user_of[s] == user)
            shards[source]["sample_ids"].remove(sample)
            shards[target]["sample_ids"].append(sample)

        move("user1", 1, 0)
        move("user1", 1, 2)
        move("user0", 0, 2)
        for row in shards.values():
            ids = row["sample_ids"]
            db.table("shards").update(
                {"sample_ids": ids, "size": len(ids),
                 "users": sorted({user_of[s] for s in ids})},
                lambda r, k=row["shard"]: r["shard"] == k)
        db.table("adapters").update({"settings": {"seed": 0, "epochs": 2}},
                                    lambda r: r["id"] == "shard-1-v1")
        points = [{"time": f"2026-01-0{day}T12:00:00Z", "split": "test", "samples": 8,
                   "positives": 4, "auc": auc, "method": "APA(D)", "strategy": "adaptive",
                   "adapters": ["shard-0-v2", "shard-1-v1", "shard-2-v1"],
                   "after_request": after}
                  for day, (auc, after) in enumerate(SCORES, start=2)]
        update_meta(db, score_history=points)
        receipt = {"request": "r0003", "subjects": ["f" * 64], "shards": [1, 2],
                   "removed": {"train": 3, "valid": 1, "test": 1}, "adapters": [],
                   "baseline_retired": None, "started": "2026-01-05T10:00:00Z",
                   "finished": "2026-01-05T10:00:05Z", "wall_s": R0003_FORGET_S,
                   "full_retrain_estimate_s": R0003_FULL_RETRAIN_S}
        db.table("requests").insert(
            {"id": "r0003", "status": "done", "phase": "purged", "targets": None,
             "subjects": ["f" * 64], "created": "2026-01-05T09:59:00Z",
             "started": "2026-01-05T10:00:00Z", "finished": "2026-01-05T10:00:05Z",
             "affected_shards": [1, 2], "removed": receipt["removed"], "receipt": receipt})
    return store
