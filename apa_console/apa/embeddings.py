"""Cached hidden-state vectors per split (partitioning, neighbours, semantic weights).

The vectors live in user-bucketed, content-addressed parts per split (store/
embedding_parts.py); rows are reused across recomputes, and removing a user's samples
rewrites only that user's part.
"""

from __future__ import annotations

import numpy as np

from apa_console.progress import NEVER_CANCELLED, CancelToken, ProgressCallback, ignore_progress
from apa_console.samples import Sample
from apa_console.store import embedding_parts, id_lists, records
from apa_console.store.document import Store, get_meta, update_meta


def split_samples(store: Store, split: str) -> list[Sample]:
    return records.split_samples(store.snapshot(), split)


def validation_pool(store: Store) -> list[Sample]:
    """The validation samples in the cache's row order, which error tables are aligned with
    (split order until the split is cached)."""
    valid = split_samples(store, "valid")
    cached = records.embedding_entries(store.snapshot()).get("valid")
    if not cached:
        return valid
    position = {sid: row for row, sid in enumerate(cached["ids"])}
    return sorted(valid, key=lambda s: position.get(s.id, len(position)))


def store_pooling(store: Store) -> str:
    """The hidden state the store's partition chose (`partition --hidden-state`)."""
    partition = get_meta(store.snapshot()).get("partition") or {}
    return partition.get("hidden_state", embedding_parts.LEGACY_POOLING)


def cached_embeddings(store: Store, split: str,
                      pooling: str | None = None) -> tuple[list[str], np.ndarray] | None:
    """The split's cached ids and vectors; with `pooling`, None unless they are that kind."""
    db = store.snapshot()
    entry = (get_meta(db).get("embeddings") or {}).get(split)
    if not entry or (pooling is not None and embedding_parts.pooling_of(entry) != pooling):
        return None
    return embedding_parts.read_split(
        store.path_of, entry, lambda part: id_lists.embedding_part_ids(store.path_of, part))


def embeddings_for(
    store: Store,
    backbone,
    samples: list[Sample],
    *,
    split: str | None = None,
    save: bool = False,
    pooling: str | None = None,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken = NEVER_CANCELLED,
) -> np.ndarray:
    """Vectors for `samples` of the `pooling` kind (None: the store's), reusing the split's
    cache when it holds that kind; with `save`, the cache is replaced by exactly these
    samples' vectors (the caller holds the store lock)."""
    pooling = pooling or store_pooling(store)
    cached = cached_embeddings(store, split, pooling) if split else None
    row_of = {sid: row for row, sid in enumerate(cached[0])} if cached else {}
    missing = [s for s in samples if s.id not in row_of]
    fresh = (
        backbone.hidden_states(
            backbone.hidden_texts_for(missing, pooling), pooling=pooling, progress=progress,
            cancel=cancel,
        )
        if missing
        else None
    )
    fresh_row = {s.id: row for row, s in enumerate(missing)}
    vectors = np.stack(
        [cached[1][row_of[s.id]] if s.id in row_of else fresh[fresh_row[s.id]] for s in samples]
    ) if samples else np.zeros((0, 0), dtype=np.float32)
    # parts keep rows in bucket order, so the cache is current when it holds the same ids
    if save and split and (missing or len(samples) != len(row_of)):
        entry = embedding_parts.write_split(
            store.path_of, split, [s.id for s in samples], [s.user_id for s in samples],
            vectors.astype(np.float32), pooling)
        with store.transaction() as db:
            meta = get_meta(db)
            embeddings = dict(meta.get("embeddings", {}))
            embeddings[split] = entry
            update_meta(db, embeddings=embeddings)
    return vectors.astype(np.float32)
