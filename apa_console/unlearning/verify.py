"""Proof of a finished forget: retrain its shards and compare bits, and scan every file in
the store for the removed samples' ids, texts and hidden-state vectors."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from apa_console.apa.adapters import recorded_settings
from apa_console.apa.embeddings import cached_embeddings
from apa_console.engine.dispatch import open_dispatcher
from apa_console.engine.dispatch_options import DispatchOptions
from apa_console.engine.shard_jobs import ShardJob
from apa_console.errors import ConflictError, NotFoundError, StoreInvalidError
from apa_console.progress import NEVER_CANCELLED, CancelToken, ProgressCallback, ignore_progress
from apa_console.prompting import sample_prompt
from apa_console.safe_text import quoted
from apa_console.samples import SPLITS
from apa_console.store import records, segments
from apa_console.store.document import LOCK_FILE, MODELS_DIR, STORE_FILE, Store
from apa_console.store.references import referenced_paths
from apa_console.unlearning import audit_log
from apa_console.unlearning.trace_fields import (
    DEFAULT_MAX_LINES,
    is_text,
    json_strings,
    line_runs,
    text_fields,
)

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


def scan_for_traces(store: Store, fingerprints: dict[str, Any],
                    subjects: list[str] | None = None) -> list[str]:
    """Files (and what was found) that still hold a removed sample's id, text or vector, or
    a forgotten subject's id. Every regular file outside `models/` counts, hidden and
    temporary ones included, whatever its name or format: id-like tokens in its bytes; a
    JSON document's strings; a Parquet segment's cells (compressed, its raw bytes show
    nothing); an array's rows; and a text file's lines, runs of lines and fields (tabs,
    commas, quotes, words, JSON Lines records: trace_fields.py). Each value is matched by
    its keyed fingerprint against those the request keeps."""
    names = audit_log.pseudonyms(store.snapshot())
    wanted = _Wanted(set(fingerprints.get("samples", [])), set(fingerprints.get("texts", [])),
                     set(fingerprints.get("vectors", [])), set(subjects or []),
                     fingerprints.get("text_lines") or DEFAULT_MAX_LINES)
    wanted = _without_kept(store, names, wanted)
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
        if path.is_file():
            own = relative in (STORE_FILE, LOCK_FILE) or _referenced(relative, referenced)
            found += [f"{relative}: {what}" for what in
                      _traces_in(store, names, wanted, path.read_bytes(), relative, own)]
    return found


@dataclass(frozen=True)
class _Wanted:
    """The keyed fingerprints a scan looks for."""

    samples: set[str]
    texts: set[str]
    vectors: set[str]
    subjects: set[str]
    text_lines: int


def _without_kept(store: Store, names, wanted: _Wanted) -> _Wanted:
    """`wanted` less the texts and vectors a sample still in the store holds too: another
    user's identical prompt (and so identical hidden state) is that user's data, not a trace
    of the removed one. A hidden state embeds a text, so vectors are compared only when some
    kept sample shares a removed text (rarely: the arrays are read once more then)."""
    kept_texts = {names.fingerprint("text", text)
                  for sample in records.samples_by_id(store.snapshot()).values()
                  for text in (sample.input, sample_prompt(sample))} & wanted.texts
    kept_vectors: set[str] = set()
    for split in SPLITS if kept_texts and wanted.vectors else ():
        cached = cached_embeddings(store, split)
        if cached is not None:
            kept_vectors |= {names.fingerprint("vector", row.astype(np.float32).tobytes().hex())
                             for row in cached[1]} & wanted.vectors
    return replace(wanted, texts=wanted.texts - kept_texts,
                   vectors=wanted.vectors - kept_vectors)


def _referenced(relative: str, referenced: set[str]) -> bool:
    names = {relative} | {parent.as_posix() for parent in PurePosixPath(relative).parents}
    return bool(names & referenced)


def _traces_in(store: Store, names, wanted: _Wanted, data: bytes, relative: str,
               own: bool) -> list[str]:
    """What one file holds, each kind named once."""
    hits: list[str] = []
    tokens = {t.decode() for t in _TOKEN.findall(data)}
    document = _json_or_none(data)
    # a file the store did not write is matched field by field; a segment's rows (even a
    # stray one's) hold other users' item ids, checked under their keys like own files
    loose = not own
    if document is None and data.startswith(segments.PARQUET_MAGIC):
        document, loose = segments.decode_any(data), False
        if document is None and own:
            raise StoreInvalidError(f"{store.root / relative} is corrupt (not a readable "
                                    "segment); restore the store from a backup")
    text = data.decode("utf-8", errors="replace") if document is None and is_text(data) \
        else None
    fields = set(json_strings(document)) if document is not None else set()
    if text is not None:
        fields |= text_fields(text)
    # sample ids are id-like tokens: hashing every text field as one would double the cost
    tokens.update(value for value in fields if _TOKEN.fullmatch(value.encode()))
    if any(names.fingerprint("sample", value) in wanted.samples for value in tokens):
        hits.append("a removed sample id")
    # Ids as short as "42" occur by chance in the store's own files: there a forgotten user
    # or item counts only under the JSON keys the store writes such ids under.
    if wanted.subjects and (
        (document is not None and any(names.fingerprint(kind, value) in wanted.subjects
                                      for kind, value in _subject_values(document)))
        or (loose and any(names.fingerprint(kind, value) in wanted.subjects
                            for value in fields for kind in _SUBJECT_KINDS))
    ):
        hits.append("a forgotten user or item id")
    if wanted.texts and (
        any(names.fingerprint("text", value) in wanted.texts for value in fields)
        or (text is not None and any(names.fingerprint("text", run) in wanted.texts
                                     for run in line_runs(text, wanted.text_lines)))
    ):
        hits.append("a removed sample's text")
    if wanted.vectors and data.startswith(_NPY_MAGIC) and _has_vector(
            store, names, wanted.vectors, data, relative, own):
        hits.append("a removed sample's hidden-state vector")
    return hits


def _has_vector(store: Store, names, vectors: set[str], data: bytes, relative: str,
                own: bool) -> bool:
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError, EOFError):
        if own:  # a file the store relies on is damaged
            store.read_array(relative)  # raises its one-line StoreInvalidError
        return False  # a stray unreadable file: its bytes were scanned for ids
    return array.ndim == 2 and any(
        names.fingerprint("vector", row.astype(np.float32).tobytes().hex()) in vectors
        for row in array)


_SUBJECT_KEYS = {"user_id": "user", "user": "user", "users": "user", "target_item": "item",
                 "item": "item"}
_SUBJECT_KINDS = ("user", "item", "sample")


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
