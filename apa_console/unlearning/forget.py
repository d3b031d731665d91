"""Exact unlearning: purge → retrain the affected shards → one atomic swap → receipt.

Two commits carry every forget, so a crash (even kill -9) at any moment leaves the store in
one of three states, all of which open and serve:
1. before the purge commit: nothing changed (stray files are garbage-collected);
2. purged, not swapped: the samples are gone from the manifests, the validation pool, the
   test split and every cached array; the affected shards' adapters are withdrawn and
   deleted, so APA serves only the unaffected ones (with their validation-error columns of
   removed samples dropped); the request is `running` or `pending` and `apply_pending`
   resumes it;
3. swapped: all new adapters live at once, the receipt written, the request `done`.
Retraining uses the shard adapter's own recorded seed, settings and engine version on the
shard's remaining manifest, so the result is what training the shard from scratch without
the data gives — bit for bit on the same machine, which `verify.verify_request` checks.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Any

from apa_console.apa.adapters import adapter_job, adapter_row, recorded_settings
from apa_console.apa.embeddings import validation_pool
from apa_console.apa.shards import member_centres
from apa_console.engine.dispatch import open_dispatcher
from apa_console.engine.dispatch_options import DispatchOptions
from apa_console.engine.training import manifest_hash
from apa_console.errors import ConflictError
from apa_console.progress import (
    NEVER_CANCELLED,
    CancelToken,
    ProgressCallback,
    ProgressEvent,
    ignore_progress,
)
from apa_console.store import records, throughput
from apa_console.store.document import Store, now_iso
from apa_console.units import seconds
from apa_console.unlearning import audit_log
from apa_console.unlearning.crash_points import crash_point
from apa_console.unlearning.purge import adapter_ref, purge

_crash_point = crash_point  # a module attribute, so tests can pause here instead


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
    only: set[str] | None = None,
    dispatch: DispatchOptions | None = None,
) -> list[dict[str, Any]]:
    """Process every open request (or those of `only`, the ones an operator confirmed):
    purge, retrain each affected shard once (on Ray workers with `dispatch`; this process
    stays the only writer), swap all new adapters in one commit, write receipts. Returns
    the receipts."""
    def chosen(rows: list[dict]) -> list[dict]:
        return [r for r in rows if only is None or r["id"] in only]

    with store.locked():
        store.collect_garbage()
        requests = chosen(records.open_requests(store.snapshot()))
        if not requests:
            return []
        started = time.monotonic()
        queued = [r for r in requests if r.get("phase") != "purged"]
        if queued:
            progress(ProgressEvent(task="purge", step=0, total=1, message="removing samples"))
            purge(store, queued)
            progress(ProgressEvent(task="purge", step=1, total=1, message="samples removed"))
        _crash_point("after_purge")
        requests = chosen(records.open_requests(store.snapshot()))
        shards = sorted({k for r in requests for k in r.get("affected_shards", [])})
        try:
            new_rows, retired = _retrain_shards(store, backbone, shards, progress, cancel,
                                                dispatch)
        except BaseException:
            _crash_point("in_rollback")
            with store.transaction() as db:
                for r in requests:
                    records.update_request(db, r["id"], {"status": records.PENDING})
                audit_log.append(db, "forget.interrupted",
                                 {"requests": [r["id"] for r in requests], "shards": shards})
            store.collect_garbage()  # the half-built adapter files, never referenced
            raise
        centres = member_centres(store, [row["shard"] for row in new_rows])
        _crash_point("before_swap")
        receipts = _swap_and_receipt(store, requests, new_rows, retired, started, centres,
                                     measured_here=not (dispatch and dispatch.distributed))
        _crash_point("after_swap")
        store.collect_garbage()
        return receipts


def _retrain_shards(store, backbone, shards, progress, cancel, dispatch=None):
    db = store.snapshot()
    live = {row["shard"]: row for row in
            records.withdrawn_adapters(db) + records.live_adapters(db)}
    rows = {row["shard"]: row for row in records.shard_rows(db)}
    valid = validation_pool(store)
    retired, jobs = [], []
    overall_start = time.monotonic()
    progress(ProgressEvent(task="overall", step=0, total=len(shards), unit="shard"))
    cancel.raise_if_cancelled()
    for k in shards:
        adapter = live.get(k)
        if adapter is None:
            continue
        if not rows[k]["sample_ids"]:
            retired.append(adapter)
            continue
        if adapter["manifest_hash"] == manifest_hash(rows[k]["sample_ids"]):
            continue  # already trained on exactly the remaining data
        if backbone is None:
            raise ConflictError(f"shard {k} needs retraining but no model was loaded")
        jobs.append(adapter_job(
            store, backbone, kind=records.SHARD, shard=k, sample_ids=rows[k]["sample_ids"],
            settings=recorded_settings(adapter["settings"], adapter["id"]),
            version=records.next_adapter_version(db, records.SHARD, k), valid=valid,
        ))
    new_rows = []
    skipped = len(shards) - len(jobs)
    # a forget with nothing to retrain runs without a model (backbone None)
    with (open_dispatcher(backbone, dispatch) if jobs else nullcontext()) as dispatcher:
        results = (dispatcher.run(jobs, progress=_crash_mid_training(progress), cancel=cancel)
                   if jobs else ())
        for result in results:
            new_rows.append(adapter_row(store, result, valid))
            progress(ProgressEvent(task="overall", step=skipped + len(new_rows),
                                   total=len(shards), unit="shard",
                                   message=f"shard {result.job.key['shard']} swapped in next"))
            _crash_point("after_first_retrain")
    new_rows.sort(key=lambda row: row["shard"])  # the order the sequential path gives
    elapsed = time.monotonic() - overall_start
    progress(ProgressEvent(task="overall", step=len(shards), total=len(shards), unit="shard",
                           message=f"retrained in {seconds(elapsed)}"))
    return new_rows, retired


def _crash_mid_training(progress: ProgressCallback) -> ProgressCallback:
    def forward(event: ProgressEvent) -> None:
        if event.task.endswith("(train)") and event.step >= 1:
            _crash_point("mid_training")
        progress(event)
    return forward


def _receipt(db, request: dict, after: dict[int, dict], finished: str, started: float) -> dict:
    before = request.get("adapters_before", [])
    hit = {ref["shard"] for ref in before}
    adapters = [{"shard": ref["shard"], "before": ref,
                 "after": adapter_ref(after[ref["shard"]]) if ref["shard"] in after else None}
                for ref in before]
    live = records.live_adapters(db)  # after the swap: every shard's current adapter
    settings = [row["settings"] for row in live if row["shard"] in hit]
    return {
        "request": request["id"],
        "subjects": request["subjects"],
        "removed": request.get("removed", {}),
        "shards": request.get("affected_shards", []),
        "adapters": adapters,
        "baseline_retired": request.get("baseline_retired"),
        "settings": settings[0] if settings else None,
        "started": request.get("started"),
        "finished": finished,
        "wall_s": round(time.monotonic() - started, 3),
        # what retraining every shard instead would have cost: their recorded training and
        # validation times (the forget's wall_s covers the same two steps for its shards)
        "full_retrain_estimate_s": round(sum(
            row["wall_time_s"] + (row.get("valid_wall_s") or 0.0) for row in live), 3),
    }


def _swap_and_receipt(store, requests, new_rows, retired, started, centres,
                      measured_here: bool = True) -> list[dict]:
    """Commit 2: new adapters live with their shards' centres, empty shards' adapters
    retired, receipts written, and (unless the shards trained on Ray workers) the speed they
    trained at recorded."""
    finished = now_iso()
    receipts = []
    valid_samples = records.sample_counts(store.snapshot())[0]["valid"]  # no segment read
    with store.transaction() as db:
        records.commit_adapters(db, new_rows)
        for shard, centre in centres.items():
            records.update_shard(db, shard, {"centre": centre})
        for row in new_rows if measured_here else []:
            throughput.record_adapter(db, row, valid_samples)
        for row in retired:
            records.retire_adapter(db, row["id"])
            records.update_shard(db, row["shard"], {"adapter": None, "centre": None})
        after = {row["shard"]: row for row in new_rows}
        for request in requests:
            receipt = _receipt(db, request, after, finished, started)
            records.update_request(db, request["id"], {
                "status": records.DONE, "finished": finished, "receipt": receipt,
                "targets": None})
            entry = audit_log.append(db, "forget.done",
                                     {"request": request["id"], "receipt": receipt})
            # the head to record outside the store (`audit verify --expect-head`); not part
            # of the sealed receipt, which cannot name its own entry's hash
            records.update_request(db, request["id"], {"audit_head": entry["hash"]})
            receipts.append({**receipt, "audit_head": entry["hash"]})
    return receipts
