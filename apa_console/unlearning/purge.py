"""A forget's first commit: remove the requests' samples from every table and cached array.

After it, no served prediction depends on the removed data: shard manifests, the
validation pool and its error-table columns and the cached embeddings no longer hold it;
the shard adapters trained on it are withdrawn, with their shards' centres (APA serves the
others until the retrained versions swap in), and the all-data Retraining baseline is
retired. Their files are deleted right after the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from tinydb import TinyDB

from apa_console.apa.adapters import ids_hash
from apa_console.prompting import sample_prompt
from apa_console.samples import SPLITS, Sample
from apa_console.store import embedding_parts, id_lists, records
from apa_console.store.document import Store, get_meta, now_iso, update_meta
from apa_console.store.keys import Pseudonyms
from apa_console.store.sample_segments import bucket_of
from apa_console.unlearning import audit_log
from apa_console.unlearning.crash_points import crash_point
from apa_console.unlearning.targets import Targets, covered_samples


@dataclass
class _Removal:
    """What one purge removes, worked out from a snapshot before anything is written."""

    samples: dict[str, Sample]
    per_request: dict[str, set[str]]
    embeddings: dict = field(default_factory=dict)  # the meta entry with removed rows gone
    removed_vectors: dict[str, np.ndarray] = field(default_factory=dict)
    kept_rows: dict[str, np.ndarray] = field(default_factory=dict)  # per split: row kept?
    error_updates: dict[str, dict] = field(default_factory=dict)
    shard_updates: dict[int, dict] = field(default_factory=dict)
    affected: dict[str, set[int]] = field(default_factory=dict)  # request → shards


def adapter_ref(row: dict) -> dict:
    return {"id": row["id"], "version": row["version"], "sha256": row["sha256"],
            "manifest_hash": row["manifest_hash"]}


def _forgotten_ref(row: dict, names) -> dict:
    """An adapter trained on removed data, as receipts keep it: its manifest hash keyed, since
    a plain hash over a list that held the removed ids lets anyone test guessed ids."""
    return {"id": row["id"], "version": row["version"], "sha256": row["sha256"],
            "manifest": names.fingerprint("manifest", row["manifest_hash"])}


def _scrub(db: TinyDB, row: dict, names) -> None:
    """Withdrawn and retired rows keep no plain hash over lists that held removed ids."""
    if row.get("manifest_hash"):
        records.update_adapter(db, row["id"], {
            "manifest_hash": None, "valid_ids_hash": None,
            "manifest": names.fingerprint("manifest", row["manifest_hash"])})


def removed_fingerprints(names: Pseudonyms, samples: Sequence[Sample],
                         vectors: Sequence[np.ndarray]):
    """Keyed fingerprints of every id, text and vector removed: what `verify` scans for;
    and the longest text's line count, how many lines of a plain text file one can span."""
    texts = [text for s in samples for text in (s.input, sample_prompt(s))]
    return {
        "samples": [names.fingerprint("sample", s.id) for s in samples],
        "texts": sorted({names.fingerprint("text", text) for text in texts}),
        "vectors": sorted({names.fingerprint("vector", v.astype(np.float32).tobytes().hex())
                           for v in vectors}),
        "text_lines": max((len(text.splitlines()) for text in texts), default=0),
    }


def _covered(db: TinyDB, requests: list[dict]) -> _Removal:
    samples: dict[str, Sample] = {}
    per_request: dict[str, set[str]] = {}
    for request in requests:
        found, _ = covered_samples(db, Targets.from_dict(request["targets"]))
        samples.update((s.id, s) for s in found)
        per_request[request["id"]] = {s.id for s in found}
    return _Removal(samples, per_request, affected={r["id"]: set() for r in requests})


def _drop_embedding_rows(store: Store, db: TinyDB, removal: _Removal) -> None:
    """New arrays for the embedding parts that held removed rows (the commit switches to
    them); every other part keeps its files, so the cost follows the removed users."""
    entries = get_meta(db).get("embeddings") or {}
    out = {}
    for split, entry in entries.items():
        buckets = embedding_parts.buckets_of(entry)
        hit = {bucket_of(s.user_id, buckets) for s in removal.samples.values()
               if s.split == split}
        masks, parts, changed = [], {}, False
        for bucket, part in embedding_parts.parts_in_order(entry):
            if bucket not in hit:
                masks.append(np.ones(embedding_parts.part_rows(part), dtype=bool))
                parts[str(bucket)] = part
                continue
            ids = id_lists.embedding_part_ids(store.path_of, part)
            array = store.read_array(part["file"], ndim=2, rows=len(ids))
            keep = np.fromiter((sid not in removal.samples for sid in ids), dtype=bool,
                               count=len(ids))
            masks.append(keep)
            removal.removed_vectors.update((ids[i], array[i]) for i in np.flatnonzero(~keep))
            if keep.all():
                parts[str(bucket)] = part
                continue
            changed = True
            if keep.any() or not embedding_parts.is_parted(entry):
                parts[str(bucket)] = {"file": store.write_array(f"emb-{split}", array[keep]),
                                      "ids": [sid for sid, k in zip(ids, keep) if k]}
        removal.kept_rows[split] = np.concatenate(masks) if masks else np.ones(0, dtype=bool)
        if not changed:
            out[split] = entry
        elif embedding_parts.is_parted(entry):
            out[split] = {**entry, "parts": parts}
        else:
            out[split] = parts["0"]  # an older store's single array, rewritten whole
    removal.embeddings = out


def _split_ids(store: Store, entry: dict | None) -> list[str]:
    return [sid for _, part in embedding_parts.parts_in_order(entry or {"parts": {}, "buckets": 1})
            for sid in id_lists.embedding_part_ids(store.path_of, part)]


def _drop_error_columns(store: Store, db: TinyDB, removal: _Removal) -> None:
    """Each live adapter's validation errors without the removed validation samples."""
    keep = removal.kept_rows.get("valid")
    if keep is None or keep.all():
        return
    valid_ids = _split_ids(store, removal.embeddings.get("valid"))
    withdrawn = {k for shards in removal.affected.values() for k in shards}
    for row in records.live_adapters(db) + records.live_adapters(db, records.BASELINE):
        if row.get("kind") == records.SHARD and row["shard"] in withdrawn:
            continue  # leaves serving in this commit
        errors = store.read_array(row["valid_errors"], ndim=1, rows=len(keep))[keep]
        removal.error_updates[row["id"]] = {
            "valid_errors": store.write_array(f"verr-{row['id']}", errors),
            "valid_ids_hash": ids_hash(valid_ids),
            "valid_error_mean": float(errors.mean()) if len(errors) else None,
        }


def _shrink_shards(db: TinyDB, removal: _Removal) -> None:
    """Each hit shard's remaining manifest and users. Its centre is cleared: the shard leaves
    serving in this commit, and the swap records the centre of its remaining members."""
    # A removed sample's owner stays in a shard only while another of their samples does;
    # reading just the owners' rows keeps the purge's cost to the size of the change.
    remaining = {
        user: {r["id"] for r in records.user_sample_rows(db, user)} - set(removal.samples)
        for user in {s.user_id for s in removal.samples.values()}
    }
    for row in records.shard_rows(db):
        kept = [sid for sid in row["sample_ids"] if sid not in removal.samples]
        if len(kept) == len(row["sample_ids"]):
            continue
        kept_set = set(kept)
        for request_id, ids in removal.per_request.items():
            if ids & set(row["sample_ids"]):
                removal.affected[request_id].add(row["shard"])
        removal.shard_updates[row["shard"]] = {
            "sample_ids": kept, "size": len(kept), "centre": None,
            "users": [user for user in row["users"]
                      if user not in remaining or remaining[user] & kept_set],
        }


def _commit(db: TinyDB, requests: list[dict], removal: _Removal) -> None:
    names = audit_log.pseudonyms(db)
    # an adapter an earlier, interrupted forget withdrew is still the shard's "before"
    live = {row["shard"]: row for row in
            records.withdrawn_adapters(db) + records.live_adapters(db)}
    records.remove_samples(db, {sid: s.user_id for sid, s in removal.samples.items()}, SPLITS)
    for shard, update in removal.shard_updates.items():
        records.update_shard(db, shard, update)
    for adapter_id, update in removal.error_updates.items():
        records.update_adapter(db, adapter_id, update)
    # The all-data Retraining baseline saw every removed training sample and serves no one:
    # retire it now (its files go with the next garbage collection).
    retired_baseline = None
    if any(s.split == "train" for s in removal.samples.values()):
        for row in records.live_adapters(db, records.BASELINE):
            retired_baseline = row["id"]
            records.retire_adapter(db, row["id"])
            _scrub(db, row, names)
    partition = dict(get_meta(db).get("partition") or {})
    if partition:
        partition["train_samples"] = sum(r["size"] for r in records.shard_summaries(db))
    update_meta(db, embeddings=removal.embeddings, partition=partition or None)
    for request in requests:
        mine = [removal.samples[sid] for sid in removal.per_request[request["id"]]]
        vectors = [removal.removed_vectors[s.id] for s in mine
                   if s.id in removal.removed_vectors]
        shards = sorted(removal.affected[request["id"]])
        records.update_request(db, request["id"], {
            "status": records.RUNNING, "phase": "purged", "started": now_iso(),
            "affected_shards": shards,
            "removed": {split: sum(1 for s in mine if s.split == split) for split in SPLITS},
            "removed_fingerprints": removed_fingerprints(names, mine, vectors),
            "adapters_before": [_forgotten_ref(live[k], names) | {"shard": k}
                                for k in shards if k in live],
            "baseline_retired": retired_baseline,
        })
        for k in shards:
            if k in live and live[k]["status"] == records.LIVE:
                records.withdraw_adapter(db, live[k]["id"], request["id"])
                _scrub(db, live[k], names)
                live[k] = live[k] | {"status": records.WITHDRAWN}
        audit_log.append(db, "forget.purged", {"request": request["id"],
                                               "subjects": request["subjects"],
                                               "shards": shards})


def purge(store: Store, requests: list[dict]) -> None:
    """Commit 1 of a forget (the caller holds the lock)."""
    db = store.snapshot()
    removal = _covered(db, requests)
    _drop_embedding_rows(store, db, removal)
    _shrink_shards(db, removal)
    _drop_error_columns(store, db, removal)
    crash_point("before_purge_commit")
    with store.transaction() as db:
        _commit(db, requests, removal)
    crash_point("before_purge_collect")  # the withdrawn adapters' files are still on disk
    store.collect_garbage()
