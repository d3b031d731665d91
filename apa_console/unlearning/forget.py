"""Exact unlearning: plan → purge → retrain the affected shards → one atomic swap → receipt.

Two commits carry every forget, so a crash (even kill -9) at any moment leaves the store in
one of three states, all of which open and serve:
1. before the purge commit: nothing changed (stray files are garbage-collected);
2. purged, not swapped: the samples are gone from the manifests, the validation pool, the
   test split and every cached array; the *old* adapters keep serving (with their
   validation-error columns of removed samples dropped); the request is `running` or
   `pending` and `apply` resumes it;
3. swapped: all new adapters live at once, the receipt written, the request `done`.
Retraining uses the shard adapter's own recorded seed and settings on the shard's remaining
manifest, so the result is what training the shard from scratch without the data gives —
bit for bit on CPU, which `verify_request` checks.
"""

from __future__ import annotations

import json
import os
import re
import signal
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from apa_console.unlearning import audit_log as audit
from apa_console.apa.embeddings import split_samples
from apa_console.errors import ConflictError, NotFoundError, UsageError
from apa_console.apa.partition import shard_centre
from apa_console.progress import (
    NEVER_CANCELLED,
    CancelToken,
    ProgressCallback,
    ProgressEvent,
    ignore_progress,
)
from apa_console.prompting import sample_prompt
from apa_console.samples import SPLITS, Sample
from apa_console.apa.adapters import (
    build_adapter,
    commit_adapters,
    ids_hash,
    live_adapters,
    next_version,
)
from apa_console.apa.shards import shard_rows
from apa_console.store.document import MODELS_DIR, Store, get_meta, now_iso, update_meta
from apa_console.engine.training import TrainSettings, manifest_hash, train_adapter

CRASH_ENV = "APA_CRASH_AT"  # test hook: kill -9 this process at the named point


def _crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class Targets:
    users: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.users or self.samples or self.items)

    def to_dict(self) -> dict[str, list[str]]:
        return {"users": list(self.users), "samples": list(self.samples),
                "items": list(self.items)}

    @classmethod
    def from_dict(cls, data: dict[str, list[str]]) -> Targets:
        return cls(users=list(data.get("users", [])), samples=list(data.get("samples", [])),
                   items=list(data.get("items", [])))

    def fingerprints(self, salt: str) -> list[str]:
        return ([audit.fingerprint(salt, "user", u) for u in self.users]
                + [audit.fingerprint(salt, "sample", s) for s in self.samples]
                + [audit.fingerprint(salt, "item", i) for i in self.items])

    def label(self) -> str:
        parts = [f"user {u}" for u in self.users] + [f"sample {s}" for s in self.samples]
        return ", ".join(parts + [f"item {i}" for i in self.items])


# -- selecting and planning ------------------------------------------------------------


def _done_subjects(db) -> dict[str, dict]:
    """fingerprint → the done request that removed that subject."""
    found = {}
    for row in db.table("requests"):
        if row.get("status") == "done":
            for fp in row.get("subjects", []):
                found.setdefault(fp, row)
    return found


def select_samples(db, targets: Targets) -> tuple[list[Sample], list[str]]:
    """The samples the targets cover now, and the targets already forgotten earlier.

    Unknown targets raise NotFoundError; a target forgotten by a finished request is
    reported, not an error (forgetting is idempotent).
    """
    if targets.is_empty():
        raise UsageError("nothing to forget: give --user, --sample or --item")
    salt = audit.store_salt(db)
    done = _done_subjects(db)
    rows = db.table("samples").all()
    chosen: dict[str, dict] = {}
    already: list[str] = []
    users_known = {row["id"] for row in db.table("users")}
    for user in targets.users:
        matches = [r for r in rows if r["user_id"] == user]
        if not matches:
            if audit.fingerprint(salt, "user", user) in done:
                already.append(f"user {user}")
                continue
            hint = "" if users_known else " (the store holds no users)"
            raise NotFoundError(f"no user {user!r} in the store{hint}; see `apa-console users`")
        chosen.update((r["id"], r) for r in matches)
    by_id = {r["id"]: r for r in rows}
    for sample in targets.samples:
        if sample in by_id:
            chosen[sample] = by_id[sample]
        elif audit.fingerprint(salt, "sample", sample) in done:
            already.append(f"sample {sample}")
        else:
            raise NotFoundError(f"no sample {sample!r} in the store")
    for item in targets.items:
        matches = [r for r in rows if r["target_item"] == item
                   or any(h["item"] == item for h in r.get("history", []))]
        if not matches:
            if audit.fingerprint(salt, "item", item) in done:
                already.append(f"item {item}")
                continue
            raise NotFoundError(f"no sample mentions item {item!r}")
        chosen.update((r["id"], r) for r in matches)
    samples = sorted((Sample.from_record(r) for r in chosen.values()), key=lambda s: s.order)
    return samples, already


def _retrain_estimate(adapter: dict | None, new_size: int) -> float:
    if not adapter or not adapter.get("sample_count"):
        return 0.0
    return float(adapter["wall_time_s"]) * new_size / adapter["sample_count"]


def plan(store: Store, targets: Targets) -> dict[str, Any]:
    """What forgetting `targets` would do, without doing it."""
    db = store.snapshot()
    samples, already = select_samples(db, targets)
    removed_ids = {s.id for s in samples}
    live = {row["shard"]: row for row in live_adapters(store)}
    shards = []
    for row in shard_rows(store):
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
        "total_shards": len(shard_rows(store)),
    }


# -- requests ----------------------------------------------------------------------------


def _next_request_id(db) -> str:
    numbers = [int(row["id"][1:]) for row in db.table("requests") if row["id"][1:].isdigit()]
    return f"r{max(numbers, default=0) + 1:04d}"


def submit(store: Store, targets: Targets) -> dict[str, Any]:
    """Record a pending request (validated now; applied by `apply_pending`)."""
    with store.transaction() as db:
        samples, already = select_samples(db, targets)
        if not samples:
            return {"request": None, "already_forgotten": already}
        salt = audit.store_salt(db)
        request = {
            "id": _next_request_id(db),
            "status": "pending",
            "phase": "queued",
            "created": now_iso(),
            "targets": targets.to_dict(),  # plain ids only until done (needed to resume)
            "subjects": targets.fingerprints(salt),
        }
        db.table("requests").insert(request)
        audit.append(db, "forget.requested", {"request": request["id"],
                                              "subjects": request["subjects"]})
    return {"request": request, "already_forgotten": already}


def list_requests(store: Store) -> list[dict[str, Any]]:
    return sorted(store.snapshot().table("requests").all(), key=lambda r: r["id"])


def _removed_fingerprints(salt: str, samples: Sequence[Sample], vectors: Sequence[np.ndarray]):
    return {
        "samples": [audit.fingerprint(salt, "sample", s.id) for s in samples],
        "texts": sorted({audit.fingerprint(salt, "text", text) for s in samples
                         for text in (s.input, sample_prompt(s))}),
        "vectors": sorted({audit.fingerprint(salt, "vector", v.astype(np.float32).tobytes().hex())
                           for v in vectors}),
    }


def _purge(store: Store, requests: list[dict]) -> None:
    """Commit 1: remove the requests' samples from every table and cached array."""
    db = store.snapshot()
    salt = audit.store_salt(db)
    meta = get_meta(db)
    samples: dict[str, Sample] = {}
    per_request: dict[str, set[str]] = {}
    for request in requests:
        found, _ = select_samples(db, Targets.from_dict(request["targets"]))
        samples.update((s.id, s) for s in found)
        per_request[request["id"]] = {s.id for s in found}
    removed = set(samples)

    # New arrays first (content-addressed files); the commit below switches to them.
    embeddings = dict(meta.get("embeddings", {}))
    removed_vectors: dict[str, np.ndarray] = {}
    kept_rows: dict[str, np.ndarray] = {}
    for split, entry in embeddings.items():
        array = store.read_array(entry["file"])
        keep = np.array([sid not in removed for sid in entry["ids"]], dtype=bool)
        removed_vectors.update(
            (sid, row) for sid, row, k in zip(entry["ids"], array, keep) if not k
        )
        kept_rows[split] = keep
        if not keep.all():
            embeddings[split] = {
                "file": store.write_array(f"emb-{split}", array[keep]),
                "ids": [sid for sid, k in zip(entry["ids"], keep) if k],
            }
    valid_ids = embeddings.get("valid", {}).get("ids", [])
    error_updates = {}
    for row in live_adapters(store) + live_adapters(store, "baseline"):
        if "valid" in kept_rows and not kept_rows["valid"].all():
            errors = store.read_array(row["valid_errors"])[kept_rows["valid"]]
            error_updates[row["id"]] = {
                "valid_errors": store.write_array(f"verr-{row['id']}", errors),
                "valid_ids_hash": ids_hash(valid_ids),
                "valid_error_mean": float(errors.mean()) if len(errors) else None,
            }
    train_vectors = {}
    if "train" in embeddings:
        train_vectors = dict(zip(embeddings["train"]["ids"],
                                 store.read_array(embeddings["train"]["file"])))
    shard_updates = {}
    affected: dict[str, set[int]] = {r["id"]: set() for r in requests}
    live = {row["shard"]: row for row in live_adapters(store)}
    by_id = {r["id"]: r for r in db.table("samples")}
    for row in shard_rows(store):
        kept = [sid for sid in row["sample_ids"] if sid not in removed]
        if len(kept) == len(row["sample_ids"]):
            continue
        for request_id, ids in per_request.items():
            if ids & set(row["sample_ids"]):
                affected[request_id].add(row["shard"])
        centre = None
        if kept and all(sid in train_vectors for sid in kept):
            centre = store.write_array(
                f"centre-{row['shard']}", shard_centre(np.stack([train_vectors[s] for s in kept]))
            )
        shard_updates[row["shard"]] = {
            "sample_ids": kept, "size": len(kept), "centre": centre,
            "users": sorted({by_id[s]["user_id"] for s in kept}),
        }

    with store.transaction() as db:
        db.table("samples").remove(lambda r: r["id"] in removed)
        users = db.table("users")
        for user in {s.user_id for s in samples.values()}:
            counts = {split: 0 for split in SPLITS}
            for r in db.table("samples").search(lambda r, u=user: r["user_id"] == u):
                counts[r["split"]] += 1
            if sum(counts.values()):
                users.update({"counts": counts}, lambda r, u=user: r["id"] == u)
            else:
                users.remove(lambda r, u=user: r["id"] == u)
        for shard, update in shard_updates.items():
            db.table("shards").update(update, lambda r, k=shard: r["shard"] == k)
        for adapter_id, update in error_updates.items():
            db.table("adapters").update(update, lambda r, a=adapter_id: r["id"] == a)
        # The all-data Retraining baseline saw every removed training sample and serves no
        # one: retire it now (its files go with the next garbage collection).
        retired_baseline = None
        if any(s.split == "train" for s in samples.values()):
            for row in live_adapters(store, "baseline"):
                retired_baseline = row["id"]
                db.table("adapters").update(
                    {"status": "retired", "path": None, "valid_errors": None,
                     "retired": now_iso()}, lambda r, a=row["id"]: r["id"] == a)
        partition = dict(get_meta(db).get("partition") or {})
        if partition:
            partition["train_samples"] = sum(len(r["sample_ids"]) for r in shard_rows_db(db))
        update_meta(db, embeddings=embeddings, partition=partition or None)
        for request in requests:
            mine = [samples[sid] for sid in per_request[request["id"]]]
            vectors = [removed_vectors[s.id] for s in mine if s.id in removed_vectors]
            shards = sorted(affected[request["id"]])
            db.table("requests").update({
                "status": "running", "phase": "purged", "started": now_iso(),
                "affected_shards": shards,
                "removed": {split: sum(1 for s in mine if s.split == split) for split in SPLITS},
                "removed_fingerprints": _removed_fingerprints(salt, mine, vectors),
                "adapters_before": [
                    _adapter_ref(live[k]) | {"shard": k} for k in shards if k in live
                ],
                "baseline_retired": retired_baseline,
            }, lambda r, rid=request["id"]: r["id"] == rid)
            audit.append(db, "forget.purged", {"request": request["id"],
                                               "subjects": request["subjects"],
                                               "shards": shards})
    store.collect_garbage()


def shard_rows_db(db) -> list[dict]:
    return sorted(db.table("shards").all(), key=lambda r: r["shard"])


def _adapter_ref(row: dict) -> dict:
    return {"id": row["id"], "version": row["version"], "sha256": row["sha256"],
            "manifest_hash": row["manifest_hash"]}


def remove_leftovers(store: Store) -> list[str]:
    """Delete files an interrupted run left unreferenced (old adapter versions, stale
    arrays); returns their store-relative paths."""
    with store.locked():
        return store.collect_garbage()


def apply_pending(
    store: Store,
    backbone,
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken = NEVER_CANCELLED,
) -> list[dict[str, Any]]:
    """Process every pending request: purge, retrain each affected shard once, swap all new
    adapters in one commit, write receipts. Returns the receipts."""
    with store.locked():
        store.collect_garbage()
        requests = [r for r in list_requests(store) if r["status"] in ("pending", "running")]
        if not requests:
            return []
        started = time.monotonic()
        queued = [r for r in requests if r.get("phase") != "purged"]
        if queued:
            progress(ProgressEvent(task="purge", step=0, total=1, message="removing samples"))
            _purge(store, queued)
            progress(ProgressEvent(task="purge", step=1, total=1, message="samples removed"))
        _crash_point("after_purge")
        requests = [r for r in list_requests(store) if r["status"] in ("pending", "running")]
        shards = sorted({k for r in requests for k in r.get("affected_shards", [])})
        try:
            new_rows, retired = _retrain_shards(store, backbone, shards, progress, cancel)
        except BaseException:
            with store.transaction() as db:
                for r in requests:
                    db.table("requests").update({"status": "pending"},
                                                lambda row, rid=r["id"]: row["id"] == rid)
            store.collect_garbage()  # the half-built adapter files, never referenced
            raise
        _crash_point("before_swap")
        receipts = _swap_and_receipt(store, requests, new_rows, retired, started)
        _crash_point("after_swap")
        store.collect_garbage()
        return receipts


def _retrain_shards(store, backbone, shards, progress, cancel):
    live = {row["shard"]: row for row in live_adapters(store)}
    rows = {row["shard"]: row for row in shard_rows(store)}
    valid = split_samples(store, "valid")
    new_rows, retired = [], []
    overall_start = time.monotonic()
    for done, k in enumerate(shards):
        progress(ProgressEvent(task="overall", step=done, total=len(shards),
                               message=f"shard {k}"))
        cancel.raise_if_cancelled()
        adapter = live.get(k)
        if adapter is None:
            continue
        if not rows[k]["sample_ids"]:
            retired.append(adapter)
            continue
        if adapter["manifest_hash"] == manifest_hash(rows[k]["sample_ids"]):
            continue  # already trained on exactly the remaining data
        new_rows.append(build_adapter(
            store, backbone, kind="shard", shard=k, sample_ids=rows[k]["sample_ids"],
            settings=TrainSettings.from_dict(adapter["settings"]),
            version=next_version(store.snapshot(), "shard", k), valid=valid, progress=progress,
            cancel=cancel,
        ))
        _crash_point("after_first_retrain")
    elapsed = time.monotonic() - overall_start
    progress(ProgressEvent(task="overall", step=len(shards), total=len(shards),
                           message=f"{len(shards)} shards in {elapsed:.1f}s"))
    return new_rows, retired


def _swap_and_receipt(store, requests, new_rows, retired, started) -> list[dict]:
    """Commit 2: new adapters live, empty shards' adapters retired, receipts written."""
    finished = now_iso()
    receipts = []
    with store.transaction() as db:
        commit_adapters(db, new_rows)
        for row in retired:
            db.table("adapters").update(
                {"status": "retired", "path": None, "valid_errors": None, "retired": finished},
                lambda r, a=row["id"]: r["id"] == a)
            db.table("shards").update({"adapter": None, "centre": None},
                                      lambda r, k=row["shard"]: r["shard"] == k)
        after = {row["shard"]: row for row in new_rows}
        for request in requests:
            before = request.get("adapters_before", [])
            adapters = []
            for ref in before:
                new = after.get(ref["shard"])
                adapters.append({"shard": ref["shard"], "before": ref,
                                 "after": _adapter_ref(new) if new else None})
            settings = [b for b in live_adapters_db(db) if b["shard"] in
                        {ref["shard"] for ref in before}]
            receipt = {
                "request": request["id"],
                "subjects": request["subjects"],
                "removed": request.get("removed", {}),
                "shards": request.get("affected_shards", []),
                "adapters": adapters,
                "baseline_retired": request.get("baseline_retired"),
                "settings": settings[0]["settings"] if settings else None,
                "started": request.get("started"),
                "finished": finished,
                "wall_s": round(time.monotonic() - started, 3),
            }
            db.table("requests").update(
                {"status": "done", "finished": finished, "receipt": receipt, "targets": None},
                lambda r, rid=request["id"]: r["id"] == rid)
            audit.append(db, "forget.done", {"request": request["id"], "receipt": receipt})
            receipts.append(receipt)
    return receipts


def live_adapters_db(db) -> list[dict]:
    return [r for r in db.table("adapters") if r.get("status") == "live"
            and r.get("kind") == "shard"]


# -- audit queries and verification -----------------------------------------------------


def user_audit(store: Store, user: str) -> dict[str, Any]:
    """Where a user's data is now, and which finished requests removed it."""
    db = store.snapshot()
    salt = audit.store_salt(db)
    fp = audit.fingerprint(salt, "user", user)
    held = {}
    shard_of = {sid: row["shard"] for row in shard_rows(store) for sid in row["sample_ids"]}
    for row in db.table("samples").search(lambda r: r["user_id"] == user):
        key = f"shard {shard_of[row['id']]}" if row["id"] in shard_of else row["split"]
        held[key] = held.get(key, 0) + 1
    history = []
    for row in db.table("requests"):
        if fp in row.get("subjects", []):
            history.append({"request": row["id"], "status": row["status"],
                            "created": row.get("created"), "finished": row.get("finished"),
                            "shards": row.get("affected_shards", []),
                            "removed": row.get("removed")})
    if not held and not history:
        raise NotFoundError(f"the store has no record of user {user!r}, now or forgotten")
    return {"user_fingerprint": fp, "holds": held,
            "present": bool(held), "requests": sorted(history, key=lambda h: h["request"])}


def verify_request(
    store: Store, backbone, request_id: str, *, progress: ProgressCallback = ignore_progress,
    cancel: CancelToken = NEVER_CANCELLED,
) -> dict[str, Any]:
    """Retrain the request's shards from their current manifests and check the live adapters
    are bit-identical; then scan every file in the store for traces of the removed samples."""
    db = store.snapshot()
    rows = db.table("requests").search(lambda r: r["id"] == request_id)
    if not rows:
        raise NotFoundError(f"no request {request_id!r} (see `apa-console requests`)")
    request = rows[0]
    if request["status"] != "done":
        raise ConflictError(f"request {request_id} is {request['status']}; run `apa-console "
                            "apply` first")
    live = {row["shard"]: row for row in live_adapters(store)}
    manifests = {row["shard"]: row for row in shard_rows(store)}
    by_id = {r["id"]: Sample.from_record(r) for r in db.table("samples")}
    checks = []
    for k in request.get("affected_shards", []):
        adapter = live.get(k)
        if adapter is None:
            checks.append({"shard": k, "ok": not manifests[k]["sample_ids"],
                           "detail": "retired (shard empty)"})
            continue
        ids = manifests[k]["sample_ids"]
        with tempfile.TemporaryDirectory(prefix="apa-verify-") as tmp:
            samples = [by_id[sid] for sid in ids]
            result = train_adapter(
                backbone, backbone.prompts_for(samples), [s.label for s in samples], ids,
                TrainSettings.from_dict(adapter["settings"]), Path(tmp) / "adapter",
                progress=progress, cancel=cancel, task=f"shard-{k} (verify)",
            )
        ok = (result.weights_sha256 == adapter["sha256"]
              and result.manifest_hash == adapter["manifest_hash"])
        checks.append({"shard": k, "ok": ok, "live_sha256": adapter["sha256"],
                       "retrained_sha256": result.weights_sha256})
    traces = scan_for_traces(store, request.get("removed_fingerprints", {}))
    return {"request": request_id, "shards": checks, "traces": traces,
            "ok": all(c["ok"] for c in checks) and not traces}


def scan_for_traces(store: Store, fingerprints: dict[str, list[str]]) -> list[str]:
    """Files (and what was found) that still hold a removed sample's id, text or vector."""
    salt = audit.store_salt(store.snapshot())
    ids = set(fingerprints.get("samples", []))
    texts = set(fingerprints.get("texts", []))
    vectors = set(fingerprints.get("vectors", []))
    token = re.compile(rb"[A-Za-z0-9_:.\-]{2,64}")
    found = []
    for path in sorted(p for p in store.root.rglob("*") if p.is_file()):
        relative = path.relative_to(store.root).as_posix()
        if relative.startswith(f"{MODELS_DIR}/"):
            continue  # the base model's cache: written before any data, never by a user
        data = path.read_bytes()
        if any(audit.fingerprint(salt, "sample", t.decode()) in ids
               for t in set(token.findall(data))):
            found.append(f"{relative}: a removed sample id")
        if path.suffix == ".json":
            try:
                strings = _json_strings(json.loads(data))
            except ValueError:
                strings = []
            if any(audit.fingerprint(salt, "text", s) in texts for s in strings):
                found.append(f"{relative}: a removed sample's text")
        if path.suffix == ".npy" and vectors:
            array = np.load(path, allow_pickle=False)
            if array.ndim == 2 and any(
                audit.fingerprint(salt, "vector", row.astype(np.float32).tobytes().hex())
                in vectors for row in array
            ):
                found.append(f"{relative}: a removed sample's hidden-state vector")
    return found


def _json_strings(value: Any) -> list[str]:
    out, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
            stack.extend(item.keys())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            out.append(item)
    return out
