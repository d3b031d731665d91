"""Proof of a finished forget: retrain its shards and compare bits, and scan every file in
the store for the removed samples' ids, texts and hidden-state vectors."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from apa_console.apa.adapters import recorded_settings
from apa_console.engine.training import train_adapter
from apa_console.errors import ConflictError, NotFoundError, StoreInvalidError
from apa_console.progress import NEVER_CANCELLED, CancelToken, ProgressCallback, ignore_progress
from apa_console.store import records
from apa_console.store.document import MODELS_DIR, Store, referenced_paths
from apa_console.unlearning import audit_log

_TOKEN = re.compile(rb"[A-Za-z0-9_:.\-]{2,64}")


def verify_request(
    store: Store, backbone, request_id: str, *, progress: ProgressCallback = ignore_progress,
    cancel: CancelToken = NEVER_CANCELLED,
) -> dict[str, Any]:
    """Retrain the request's shards from their current manifests and check the live adapters
    are bit-identical; then scan every file in the store for traces of the removed samples."""
    db = store.snapshot()
    request = records.find_request(db, request_id)
    if request is None:
        raise NotFoundError(f"no request {request_id!r} (see `apa-console requests`)")
    if request["status"] != records.DONE:
        raise ConflictError(f"request {request_id} is {request['status']}; run `apa-console "
                            "apply` first")
    live = {row["shard"]: row for row in records.live_adapters(db)}
    manifests = {row["shard"]: row for row in records.shard_rows(db)}
    by_id = records.samples_by_id(db)
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
                recorded_settings(adapter["settings"], adapter["id"]), Path(tmp) / "adapter",
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
    salt = audit_log.store_salt(store.snapshot())
    ids = set(fingerprints.get("samples", []))
    texts = set(fingerprints.get("texts", []))
    vectors = set(fingerprints.get("vectors", []))
    found = []
    referenced = referenced_paths(store.load())
    for path in sorted(store.root.rglob("*")):
        relative = path.relative_to(store.root).as_posix()
        if relative.startswith(f"{MODELS_DIR}/"):
            continue  # the base model's cache: written before any data, never by a user
        if path.is_symlink():  # it could lead to any file, read as if it were the store's
            raise StoreInvalidError(
                f"{path} is a symlink; a store holds only its own files (remove the link)"
            )
        if not path.is_file():
            continue
        data = path.read_bytes()
        if any(audit_log.fingerprint(salt, "sample", t.decode()) in ids
               for t in set(_TOKEN.findall(data))):
            found.append(f"{relative}: a removed sample id")
        if path.suffix == ".json":
            try:
                strings = _json_strings(json.loads(data))
            except ValueError:
                strings = []
            if any(audit_log.fingerprint(salt, "text", s) in texts for s in strings):
                found.append(f"{relative}: a removed sample's text")
        if path.suffix == ".npy" and vectors:
            try:
                array = np.load(path, allow_pickle=False)
            except (OSError, ValueError, EOFError):
                if relative in referenced:  # a file the store relies on is damaged
                    store.read_array(relative)  # raises its one-line StoreInvalidError
                continue  # a stray unreadable file: its bytes were scanned for ids above
            if array.ndim == 2 and any(
                audit_log.fingerprint(salt, "vector", row.astype(np.float32).tobytes().hex())
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
