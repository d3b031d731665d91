"""Train shard adapters through the engine and keep the validation error table current.

An adapter row (`adapters` table) records everything needed to retrain it bit for bit and to
prove it: shard, version, path, weight sha256, manifest hash, settings (seed included), loss
curve, timings, and `valid_errors` = |label − P_k(Yes)| over the validation pool (an array
aligned with `embeddings.valid.ids`).
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import numpy as np

from apa_console.apa.embeddings import embeddings_for, split_samples, validation_pool
from apa_console.apa.metrics import auc
from apa_console.engine.dispatch import open_dispatcher
from apa_console.engine.dispatch_options import DispatchOptions
from apa_console.engine.mixture import AdapterFactors, absolute_errors, score_one_adapter
from apa_console.engine.shard_jobs import JobResult, ShardJob, run_job
from apa_console.engine.training import TrainSettings, manifest_hash
from apa_console.engine.versions import CURRENT_ENGINE_VERSION
from apa_console.errors import ConflictError, StoreInvalidError, UsageError
from apa_console.progress import (
    NEVER_CANCELLED,
    CancelToken,
    ProgressCallback,
    ProgressEvent,
    ignore_progress,
)
from apa_console.samples import Sample
from apa_console.store import audit, records, throughput
from apa_console.store.document import Store, get_meta, now_iso, update_meta
from apa_console.store.records import BASELINE


def ids_hash(ids: list[str]) -> str:
    return hashlib.sha256(json.dumps(ids).encode()).hexdigest()


def recorded_settings(data: Any, where: str) -> TrainSettings:
    """Training settings read back from the store. They were valid when written, so a value
    that is not means the record was damaged: exit 5, not a usage error."""
    try:
        return TrainSettings.from_dict(data)
    except (UsageError, TypeError, ValueError, OverflowError, AttributeError) as exc:
        raise StoreInvalidError(
            f"the training settings of {where} are corrupt ({exc}); restore the store from a "
            "backup"
        ) from None


def store_settings(store: Store, overrides: dict[str, Any] | None = None) -> TrainSettings:
    """The store's training settings: recorded ones (or defaults) with `overrides` applied."""
    recorded = get_meta(store.snapshot()).get("train_settings")
    base = recorded_settings(recorded, "the store") if recorded else TrainSettings()
    chosen = {k: v for k, v in (overrides or {}).items() if v is not None}
    # settings a store recorded keep their values; new adapters come from today's engine
    return TrainSettings.from_dict(
        {**base.to_dict(), **chosen, "engine_version": CURRENT_ENGINE_VERSION})


def load_adapter(store: Store, row: dict[str, Any]) -> AdapterFactors:
    """A live adapter's weights from the folder its row names. The files are the store's:
    missing, truncated or garbage ones mean a damaged store (exit 5), not a bug."""
    from safetensors import SafetensorError

    directory = store.path_of(row["path"])
    try:
        return AdapterFactors.load(directory)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, SafetensorError) as exc:
        raise StoreInvalidError(
            f"adapter {row['id']} in {directory} is missing or corrupt "
            f"({type(exc).__name__}: {exc}); retrain it (`apa-console train`) or restore "
            "the store"
        ) from None


def score_with_adapter(
    backbone,
    prompts: list[str],
    factors: AdapterFactors,
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken = NEVER_CANCELLED,
    task: str = "score",
    share_prefix: bool = True,
    batch_size: int | None = None,
) -> np.ndarray:
    """P(Yes) from the base model with one LoRA adapter applied (`score_one_adapter`)."""
    return score_one_adapter(backbone, prompts, factors, progress=progress, cancel=cancel,
                             task=task, share_prefix=share_prefix, batch_size=batch_size)


def validation_errors(
    backbone, adapter_dir, valid: list[Sample], *,
    progress: ProgressCallback = ignore_progress, cancel: CancelToken = NEVER_CANCELLED,
    task: str = "validation",
) -> np.ndarray:
    return absolute_errors(backbone, adapter_dir, backbone.prompts_for(valid),
                           [s.label for s in valid], progress=progress, cancel=cancel,
                           task=task)


def adapter_name(kind: str, shard: int | None) -> str:
    return BASELINE if kind == BASELINE else f"shard-{shard}"


def adapter_job(
    store: Store,
    backbone,
    *,
    kind: str,
    shard: int | None,
    sample_ids: list[str],
    settings: TrainSettings,
    version: int,
    valid: list[Sample],
) -> ShardJob:
    """One adapter's training as a shard job: its manifest's texts and labels, its settings,
    the validation pool, and the fresh store folder its files go to."""
    by_id = records.samples_by_id(store.snapshot())
    samples = [by_id[sid] for sid in sample_ids]
    name = adapter_name(kind, shard)
    relative = f"adapters/{name}/v{version}"
    return ShardJob(
        name=name, prompts=backbone.prompts_for(samples), labels=[s.label for s in samples],
        sample_ids=list(sample_ids), settings=settings.to_dict(),
        out_dir=store.path_of(relative), valid_prompts=backbone.prompts_for(valid),
        valid_labels=[s.label for s in valid],
        key={"kind": kind, "shard": shard, "version": version, "path": relative},
    )


def adapter_row(store: Store, done: JobResult, valid: list[Sample]) -> dict[str, Any]:
    """The adapters-table row of a finished job (its validation errors written as an array);
    live once a caller commits it."""
    key, result, errors = done.job.key, done.train, done.valid_errors
    name = adapter_name(key["kind"], key["shard"])
    labels = np.array([s.label for s in valid], dtype=np.float64)
    return {
        "id": f"{name}-v{key['version']}",
        "kind": key["kind"],
        "shard": key["shard"],
        "version": key["version"],
        "path": key["path"],
        "sha256": result.weights_sha256,
        "manifest_hash": result.manifest_hash,
        "sample_count": len(done.job.sample_ids),
        "settings": result.settings,
        "loss_curve": [float(x) for x in result.loss_curve],
        "wall_time_s": result.wall_time_s,
        "valid_wall_s": done.valid_wall_s,
        "samples_per_s": result.samples_per_s,
        "steps": result.steps,
        "valid_errors": store.write_array(f"verr-{name}-v{key['version']}", errors),
        "valid_ids_hash": ids_hash([s.id for s in valid]),
        "valid_error_mean": float(errors.mean()) if len(errors) else None,
        "valid_auc": auc(labels, np.abs(labels - errors)) if len(errors) else None,
        "status": records.LIVE,
        "created": now_iso(),
    }


def build_adapter(
    store: Store,
    backbone,
    *,
    kind: str,
    shard: int | None,
    sample_ids: list[str],
    settings: TrainSettings,
    version: int,
    valid: list[Sample],
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken = NEVER_CANCELLED,
) -> dict[str, Any]:
    """Train one adapter here and compute its validation errors; writes files, commits
    nothing. The returned row becomes live when a caller commits it (so several can swap
    at once)."""
    job = adapter_job(store, backbone, kind=kind, shard=shard, sample_ids=sample_ids,
                      settings=settings, version=version, valid=valid)
    return adapter_row(store, run_job(backbone, job, job.out_dir, progress=progress,
                                      cancel=cancel), valid)


def adapter_entry(row: dict[str, Any], names) -> dict[str, Any]:
    """What the audit log records when an adapter goes live: enough to check its weights
    (`audit verify`) and to retrain it (seed and settings), and no sample ids. The manifest
    hash is keyed: a plain one would let anyone test a guessed sample id against it after
    that sample is forgotten."""
    return {"adapter": row["id"], "kind": row["kind"], "shard": row["shard"],
            "version": row["version"], "sha256": row["sha256"],
            "manifest": names.fingerprint("manifest", row["manifest_hash"]),
            "samples": row["sample_count"], "settings": row["settings"]}


def ensure_validation_cache(
    store: Store, backbone, *, progress: ProgressCallback = ignore_progress,
    cancel: CancelToken = NEVER_CANCELLED,
) -> list[Sample]:
    """Embed the validation and test splits once (the caller holds the lock)."""
    embeddings_for(store, backbone, split_samples(store, "valid"), split="valid", save=True,
                   progress=progress, cancel=cancel)
    test = split_samples(store, "test")
    embeddings_for(store, backbone, test, split="test", save=True, progress=progress,
                   cancel=cancel)
    return validation_pool(store)


def check_train(store: Store, overrides: dict[str, Any] | None = None) -> TrainSettings:
    """The settings `train_all` would use, or the one-line error it would raise, without
    loading a model or writing anything."""
    db = store.snapshot()
    if not records.shard_rows(db):
        raise ConflictError("no shards yet: run `apa-console partition` first")
    # a withdrawn adapter is rebuilt by its forget, with its own recorded settings
    pending = [r["id"] for r in records.open_requests(db)]
    if pending:
        raise ConflictError(f"forget requests {', '.join(pending)} are open: run "
                            "`apa-console apply` first")
    audit.pseudonyms(db)  # every adapter is logged: refuse now if the key is missing
    for row in records.live_adapters(db) + records.live_adapters(db, BASELINE):
        recorded_settings(row["settings"], row["id"])  # damaged: refuse before any write
    return store_settings(store, overrides)


def train_all(
    store: Store,
    backbone,
    *,
    overrides: dict[str, Any] | None = None,
    retrain_baseline: bool = False,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken = NEVER_CANCELLED,
    dispatch: DispatchOptions | None = None,
) -> list[dict]:
    """Train every shard whose live adapter is missing or stale (manifest or settings
    changed), and optionally the all-data baseline. Resumable: each adapter is committed as
    soon as it is ready, and finished ones are skipped on the next run. `dispatch` runs the
    jobs on Ray workers (`engine.dispatch`); the store is written here either way."""
    with store.locked():
        store.collect_garbage()  # leftovers of an interrupted run
        # recorded with the dtype spelled out, so the store keeps it on every machine
        settings = check_train(store, overrides).resolved(backbone.device)
        shards = records.shard_rows(store.snapshot())
        with store.transaction() as db:
            if get_meta(db).get("train_settings") != settings.to_dict():
                update_meta(db, train_settings=settings.to_dict())
                audit.append(db, "train.settings", {"settings": settings.to_dict()})
        valid = ensure_validation_cache(store, backbone, progress=progress, cancel=cancel)
        live = {row.get("shard"): row for row in records.live_adapters(store.snapshot())}
        valid_hash = ids_hash([s.id for s in valid])

        def up_to_date(row: dict | None, ids: list[str]) -> bool:
            return bool(row and row["manifest_hash"] == manifest_hash(ids)
                        and recorded_settings(row["settings"], row["id"]).trains_like(
                            settings, backbone.device))

        jobs: list[tuple[str, int | None, list[str]]] = []
        for shard in shards:
            current = live.get(shard["shard"])
            if not shard["sample_ids"] or (up_to_date(current, shard["sample_ids"])
                                           and current.get("valid_ids_hash") == valid_hash):
                continue
            jobs.append(("shard", shard["shard"], shard["sample_ids"]))
        if retrain_baseline:
            all_ids = [s.id for s in split_samples(store, "train")]
            baseline = records.live_adapters(store.snapshot(), BASELINE)
            if not up_to_date(baseline[0] if baseline else None, all_ids):
                jobs.append((BASELINE, None, all_ids))
        trained = []
        started = time.monotonic()
        todo = [adapter_job(store, backbone, kind=kind, shard=shard, sample_ids=ids,
                            settings=settings, valid=valid,
                            version=records.next_adapter_version(store.snapshot(), kind, shard))
                for kind, shard, ids in jobs]
        progress_overall(progress, 0, len(todo), started)
        # Ray workers' speed (other processes, maybe other machines) is not this machine's
        measured_here = not (dispatch and dispatch.distributed)
        with open_dispatcher(backbone, dispatch) as dispatcher:
            # each adapter is committed as it arrives: a later failure or cancel keeps it
            for result in dispatcher.run(todo, progress=progress, cancel=cancel):
                row = adapter_row(store, result, valid)
                with store.transaction() as db:
                    records.commit_adapters(db, [row])
                    audit.append(db, "train.adapter",
                                 adapter_entry(row, audit.pseudonyms(db)))
                    if measured_here:
                        throughput.record_adapter(db, row, len(valid))
                store.collect_garbage()
                trained.append(row)
                progress_overall(progress, len(trained), len(todo), started)
        return trained


def progress_overall(progress: ProgressCallback, done: int, total: int, started: float) -> None:
    elapsed = time.monotonic() - started
    eta = elapsed / done * (total - done) if done else None
    progress(ProgressEvent(task="overall", step=done, total=total, eta_s=eta, unit="adapter"))
