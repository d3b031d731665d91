"""Partition a store's training samples into shards, and describe the shards."""

from __future__ import annotations

from typing import Any

import numpy as np

from apa_console.apa.collaborative import REPRESENTATION, partition_vectors
from apa_console.apa.embeddings import cached_embeddings, embeddings_for
from apa_console.apa.partition import check_request, default_cap, partition, shard_centre
from apa_console.engine.choices import HIDDEN_STATES
from apa_console.errors import ConflictError, UsageError
from apa_console.progress import NEVER_CANCELLED, CancelToken, ProgressCallback, ignore_progress
from apa_console.safe_text import quoted
from apa_console.store import audit, records
from apa_console.store.document import Store, get_meta, now_iso, update_meta

COLLABORATIVE_METHODS = ("user", "bekm")
DEFAULT_HIDDEN_STATE = "mean"  # not yet measured against "last" on the paper's experiment


def check_partition(
    store: Store, method: str, n_shards: int, cap: int | None = None, force: bool = False,
    seed: int = 0, hidden_state: str = DEFAULT_HIDDEN_STATE,
) -> None:
    """Refuse (one line) what `run_partition` would refuse, before any model loads."""
    _checked(store, method, n_shards, cap, force, seed, hidden_state)


def _checked(store: Store, method: str, n_shards: int, cap: int | None, force: bool,
             seed: int = 0, hidden_state: str = DEFAULT_HIDDEN_STATE):
    if hidden_state not in HIDDEN_STATES:
        raise UsageError(f"unknown hidden state {quoted(hidden_state)}; choose one of "
                         f"{', '.join(HIDDEN_STATES)}")
    db = store.snapshot()
    existing = records.shard_rows(db)
    if existing and not force:
        method_now = get_meta(db).get("partition", {}).get("method")
        raise ConflictError(
            f"{store.root} is already partitioned ({method_now}, {len(existing)} "
            "shards); pass --force to re-partition and retire its adapters"
        )
    if records.open_requests(db):
        raise ConflictError("forget requests are pending; run `apa-console apply` first")
    audit.pseudonyms(db)  # the commit is logged: refuse now, not after embedding
    samples = records.split_samples(db, "train")
    if not samples:
        raise UsageError("the store has no training samples: run `apa-console ingest` first")
    method, _ = check_request(method, len(samples), n_shards, cap, seed)
    return samples, method


def run_partition(
    store: Store,
    backbone,
    method: str,
    n_shards: int,
    cap: int | None = None,
    seed: int = 0,
    force: bool = False,
    hidden_state: str = DEFAULT_HIDDEN_STATE,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken = NEVER_CANCELLED,
) -> dict[str, Any]:
    """Embed the training samples (as the `hidden_state` kind, which the store then uses
    for neighbours and centres too), split them, and record the shards (replacing none
    unless `force`: re-partitioning retires every trained shard adapter)."""
    with store.locked():
        samples, method = _checked(store, method, n_shards, cap, force, seed, hidden_state)
        vectors = embeddings_for(
            store, backbone, samples, split="train", save=True, pooling=hidden_state,
            progress=progress, cancel=cancel,
        )
        cancel.raise_if_cancelled()
        users = [s.user_id for s in samples]
        # the baselines partition on what their papers use; centres stay on hidden states
        collaborative = method in COLLABORATIVE_METHODS
        basis = partition_vectors(method, samples, seed) if collaborative else vectors
        result = partition(method, basis, users, n_shards, cap=cap, seed=seed)
        rows = []
        for k, members in enumerate(result.shards):
            ids = [samples[i].id for i in members]
            centre = shard_centre(vectors[members]) if members else None
            rows.append({
                "shard": k,
                "sample_ids": ids,
                "users": sorted({samples[i].user_id for i in members}),
                "size": len(ids),
                "centre": store.write_array(f"centre-{k}", centre) if centre is not None else None,
                "adapter": None,
            })
        with store.transaction() as db:
            replaced = len(records.shard_rows(db))
            records.replace_shards(db, rows)
            retired = []
            for row in records.live_adapters(db):  # trained on shards that no longer exist
                records.retire_adapter(db, row["id"])
                retired.append(row["id"])
            settings = {
                "method": method,
                "shards": n_shards,
                "cap": result.cap if cap is not None else default_cap(len(samples), n_shards),
                "seed": seed,
                "representation": REPRESENTATION if collaborative else "hidden-state",
                "hidden_state": hidden_state,
                "created": now_iso(),
                "train_samples": len(samples),
            }
            update_meta(db, partition=settings)
            audit.append(db, "partition", {
                **{k: v for k, v in settings.items() if k != "created"},
                "sizes": [row["size"] for row in rows], "force": force,
                "replaced_shards": replaced, "retired_adapters": retired})
        store.collect_garbage()
    return shard_summary(store)


def shard_summary(store: Store) -> dict[str, Any]:
    db = store.snapshot()
    meta = get_meta(db)
    adapters = {row["id"]: row for row in records.adapter_rows(db)}
    shards = []
    for row in records.shard_summaries(db):  # sizes and users only: no manifest is read
        adapter = adapters.get(row.get("adapter") or "")
        shards.append({
            "shard": row["shard"],
            "size": row["size"],
            "users": len(row["users"]),
            "adapter": adapter["id"] if adapter else None,
            "serving": records.serving_state(adapter),
            "adapter_sha256": adapter["sha256"] if adapter else None,
            "valid_error": adapter.get("valid_error_mean") if adapter else None,
            "trained": adapter.get("created") if adapter else None,
        })
    sizes = np.array([s["size"] for s in shards] or [0])
    users = np.array([s["users"] for s in shards] or [0])
    return {
        "partition": meta.get("partition"),
        "shards": shards,
        "balance": {
            "min_size": int(sizes.min()),
            "max_size": int(sizes.max()),
            "std_size": float(sizes.std()),
            "min_users": int(users.min()),
            "max_users": int(users.max()),
            "mean_users": float(users.mean()),
        },
    }


def member_centres(store: Store, shards: list[int]) -> dict[int, str | None]:
    """Each listed shard's centre from its current members' cached training vectors, written
    as an array (None for a shard with no members or members that are not cached)."""
    db = store.snapshot()
    manifests = {row["shard"]: row["sample_ids"] for row in records.shard_rows(db)
                 if row["shard"] in shards}
    if not any(manifests.values()):
        return dict.fromkeys(manifests)
    cached = cached_embeddings(store, "train")
    row_of = {sid: row for row, sid in enumerate(cached[0])} if cached else {}
    out: dict[int, str | None] = {}
    for shard, members in manifests.items():
        if not members or not all(sid in row_of for sid in members):
            out[shard] = None
            continue
        centre = shard_centre(cached[1][[row_of[sid] for sid in members]])
        out[shard] = store.write_array(f"centre-{shard}", centre)
    return out
