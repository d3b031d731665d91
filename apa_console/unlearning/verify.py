"""Proof of a finished forget: retrain its shards and compare bits, and scan every file in
the store for the removed samples' ids, texts and hidden-state vectors."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import numpy as np

from apa_console.apa.adapters import recorded_settings
from apa_console.engine.dispatch import open_dispatcher
from apa_console.engine.dispatch_options import DispatchOptions
from apa_console.engine.shard_jobs import ShardJob
from apa_console.errors import ConflictError, NotFoundError, StoreInvalidError
from apa_console.progress import NEVER_CANCELLED, CancelToken, ProgressCallback, ignore_progress
from apa_console.safe_text import quoted
from apa_console.store import records, segments
from apa_console.store.document import MODELS_DIR, Store
from apa_console.store.references import referenced_paths
from apa_console.unlearning import audit_log

_TOKEN = re.compile(rb"[A-Za-z0-9_:.\-]{2,64}")
_NPY_MAGIC = b"\x93NUMPY"


def verify_request(
    store: Store, backbone, request_id: str, *, progress: ProgressCallback = ignore_progress,
    cancel: CancelToken = NEVER_CANCELLED, dispatch: DispatchOptions | None = None,
) -> dict[str, Any]:
    """Retrain the request's shards from their current manifests (on Ray workers with
    `dispatch`) and check the live adapters are bit-identical; then scan every file in the
    store for traces of the removed samples."""
    db = store.snapshot()
    request = records.find_request(db, request_id)
    if request is None:
        raise NotFoundError(f"no request {quoted(request_id)} (see `apa-console requests`)")
    if request["status"] != records.DONE:
        raise ConflictError(f"request {request_id} is {request['status']}; run `apa-console "
                            "apply` first")
    live = {row["shard"]: row for row in records.live_adapters(db)}
    manifests = {row["shard"]: row for row in records.shard_rows(db)}
    by_id = records.samples_by_id(db)
    checks, jobs = {}, []
    for k in request.get("affected_shards", []):
        adapter = live.get(k)
        if adapter is None:
            checks[k] = {"shard": k, "ok": not manifests[k]["sample_ids"],
                         "detail": "retired (shard empty)"}
            continue
        ids = manifests[k]["sample_ids"]
        samples = [by_id[sid] for sid in ids]
        settings = recorded_settings(adapter["settings"], adapter["id"])
        jobs.append(ShardJob(
            name=f"shard-{k}", prompts=backbone.prompts_for(samples),
            labels=[s.label for s in samples], sample_ids=ids, settings=settings.to_dict(),
            out_dir=None, validate=False, purpose="verify", key=k,
        ))
    with open_dispatcher(backbone, dispatch) as dispatcher:
        for done in dispatcher.run(jobs, progress=progress, cancel=cancel):
            k, result = done.job.key, done.train
            adapter = live[k]
            ok = (result.weights_sha256 == adapter["sha256"]
                  and result.manifest_hash == adapter["manifest_hash"])
            checks[k] = {"shard": k, "ok": ok, "live_sha256": adapter["sha256"],
                         "retrained_sha256": result.weights_sha256}
    checks = [checks[k] for k in request.get("affected_shards", [])]
    traces = scan_for_traces(store, request.get("removed_fingerprints", {}),
                             request.get("subjects", []))
    return {"request": request_id, "shards": checks, "traces": traces,
            "ok": all(c["ok"] for c in checks) and not traces}


def scan_for_traces(store: Store, fingerprints: dict[str, list[str]],
                    subjects: list[str] | None = None) -> list[str]:
    """Files (and what was found) that still hold a removed sample's id, text or vector, or
    a forgotten subject's id. Every file counts, hidden and temporary ones included: each
    is read for id-like tokens, parsed as JSON whatever its name, decoded as a Parquet
    segment or read as an array when it starts like one. Segments are compressed, so their
    raw bytes show nothing: decoding them is what lets the scan see every cell."""
    names = audit_log.pseudonyms(store.snapshot())
    ids = set(fingerprints.get("samples", []))
    texts = set(fingerprints.get("texts", []))
    vectors = set(fingerprints.get("vectors", []))
    subject_set = set(subjects or [])
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
        tokens = {t.decode() for t in _TOKEN.findall(data)}
        document = _json_or_none(data)
        if document is None and data.startswith(segments.PARQUET_MAGIC):
            document = segments.decode_any(data)
            if document is None and relative in referenced:
                raise StoreInvalidError(f"{path} is corrupt (not a readable segment); "
                                        "restore the store from a backup")
        strings = _json_strings(document) if document is not None else []
        tokens.update(s for s in strings if _TOKEN.fullmatch(s.encode()))
        if any(names.fingerprint("sample", t) in ids for t in tokens):
            found.append(f"{relative}: a removed sample id")
        # Ids as short as "42" occur by chance elsewhere: a forgotten user or item is looked
        # for where the store writes such ids, under their JSON keys.
        if subject_set and document is not None and any(
            names.fingerprint(kind, value) in subject_set
            for kind, value in _subject_values(document)
        ):
            found.append(f"{relative}: a forgotten user or item id")
        if any(names.fingerprint("text", s) in texts for s in strings):
            found.append(f"{relative}: a removed sample's text")
        if vectors and data.startswith(_NPY_MAGIC):
            try:
                array = np.load(io.BytesIO(data), allow_pickle=False)
            except (OSError, ValueError, EOFError):
                if relative in referenced:  # a file the store relies on is damaged
                    store.read_array(relative)  # raises its one-line StoreInvalidError
                array = None  # a stray unreadable file: its bytes were scanned for ids above
            if array is not None and array.ndim == 2 and any(
                names.fingerprint("vector", row.astype(np.float32).tobytes().hex())
                in vectors for row in array
            ):
                found.append(f"{relative}: a removed sample's hidden-state vector")
    return found


_SUBJECT_KEYS = {"user_id": "user", "user": "user", "users": "user", "target_item": "item",
                 "item": "item"}


def _json_or_none(data: bytes) -> Any:
    if data.lstrip()[:1] not in (b"{", b"["):
        return None
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def _subject_values(document: Any) -> list[tuple[str, str]]:
    """(kind, id) for every user or item id the document holds under a key naming one;
    the users table's own `id` counts as a user id."""
    out, stack = [], [document]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            for key, value in item.items():
                kind = _SUBJECT_KEYS.get(key)
                values = value if isinstance(value, list) else [value]
                if kind:
                    out.extend((kind, v) for v in values if isinstance(v, str))
                stack.append(value)
            if "counts" in item and isinstance(item.get("id"), str):  # a users-table row
                out.append(("user", item["id"]))
    return out


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
