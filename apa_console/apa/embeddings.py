"""Cached hidden-state vectors per split (partitioning, neighbours, semantic weights).

The vectors live in one content-addressed array per split, with the ordered sample ids in
the store meta (`embeddings.<split>` = {file, ids}); rows are reused across recomputes, so
removing samples only rewrites the array without them.
"""

from __future__ import annotations

import numpy as np

from apa_console.progress import NEVER_CANCELLED, CancelToken, ProgressCallback, ignore_progress
from apa_console.samples import Sample
from apa_console.store import records
from apa_console.store.document import Store, get_meta, update_meta


def split_samples(store: Store, split: str) -> list[Sample]:
    return records.split_samples(store.snapshot(), split)


def cached_embeddings(store: Store, split: str) -> tuple[list[str], np.ndarray] | None:
    entry = records.embedding_entries(store.snapshot()).get(split)
    if not entry:
        return None
    return list(entry["ids"]), store.read_array(entry["file"], ndim=2, rows=len(entry["ids"]))


def embeddings_for(
    store: Store,
    backbone,
    samples: list[Sample],
    *,
    split: str | None = None,
    save: bool = False,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken = NEVER_CANCELLED,
) -> np.ndarray:
    """Vectors for `samples`, reusing the split's cache; with `save`, the cache is replaced by
    exactly these samples' vectors (the caller holds the store lock)."""
    cached = cached_embeddings(store, split) if split else None
    row_of = {sid: row for row, sid in enumerate(cached[0])} if cached else {}
    missing = [s for s in samples if s.id not in row_of]
    fresh = (
        backbone.hidden_states(
            backbone.hidden_texts_for(missing), progress=progress, cancel=cancel
        )
        if missing
        else None
    )
    fresh_row = {s.id: row for row, s in enumerate(missing)}
    vectors = np.stack(
        [cached[1][row_of[s.id]] if s.id in row_of else fresh[fresh_row[s.id]] for s in samples]
    ) if samples else np.zeros((0, 0), dtype=np.float32)
    if save and split and (missing or [s.id for s in samples] != (cached[0] if cached else [])):
        file = store.write_array(f"emb-{split}", vectors.astype(np.float32))
        with store.transaction() as db:
            meta = get_meta(db)
            embeddings = dict(meta.get("embeddings", {}))
            embeddings[split] = {"file": file, "ids": [s.id for s in samples]}
            update_meta(db, embeddings=embeddings)
    return vectors.astype(np.float32)
