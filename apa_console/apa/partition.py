"""Partition training samples into K shards: APA's method, our user-level variant, baselines.

Every method is a pure function of (embeddings, users, K, cap, seed) and returns shards as
lists of row indices in ascending order, so the same inputs always give the same manifests.

- `apa`      APA's Algorithm 1: K-means centres, then a capped assignment that walks all
             (sample, centre) pairs by ascending cosine distance.
- `apa-user` the same clustering and capped walk, with whole users as the unit so that one
             user's data lives in exactly one shard (forgetting a user retrains one adapter).
- `random`   SISA: a seeded permutation cut into K equal parts.
- `user`     RecEraser's user-based balanced partition: anchors from random users, capped
             assignment of users (weighed by their samples) by distance, anchors moved to
             their members' mean, repeated.
- `bekm`     GraphEraser's balanced embedding K-means: the same loop at sample level.
`user` and `bekm` are given collaborative embeddings (apa/collaborative.py), the others the
LLM's hidden states.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from apa_console.apa.choices import METHODS, PartitionMethod  # noqa: F401 (re-exported)
from apa_console.errors import UsageError
from apa_console.units import plural

BALANCED_ITERATIONS = 10  # RecEraser/GraphEraser refine anchors a fixed number of rounds


@dataclass(frozen=True)
class Partition:
    method: str
    shards: list[list[int]]  # row indices per shard, ascending
    cap: int  # the size limit t used by the capped assignment


def default_cap(n_items: int, n_shards: int) -> int:
    return math.ceil(n_items / n_shards)


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def cosine_distances(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return 1.0 - _normalise(points.astype(np.float64)) @ _normalise(centres.astype(np.float64)).T


def capped_assignment(
    distances: np.ndarray, cap: int, weights: Sequence[int] | None = None
) -> np.ndarray:
    """Walk (item, centre) pairs by ascending distance; give each unassigned item to the
    centre while that centre's load stays within `cap`.

    `weights` is each item's load (1 per sample, or a user's sample count). Items that fit
    nowhere once the walk ends (possible only with weights > 1) go to the least-loaded
    centre, heaviest first, so the result is always complete. Ties break by item, then
    centre index, which keeps the result deterministic.
    """
    n_items, n_centres = distances.shape
    load_of = np.ones(n_items, dtype=np.int64) if weights is None else np.asarray(weights)
    order = np.lexsort((np.tile(np.arange(n_centres), n_items),
                        np.repeat(np.arange(n_items), n_centres),
                        distances.ravel()))
    owner = np.full(n_items, -1, dtype=np.int64)
    load = np.zeros(n_centres, dtype=np.int64)
    remaining = n_items
    for flat in order:
        item, centre = divmod(int(flat), n_centres)
        if owner[item] >= 0 or load[centre] + load_of[item] > cap:
            continue
        owner[item] = centre
        load[centre] += load_of[item]
        remaining -= 1
        if remaining == 0:
            break
    for item in sorted(np.flatnonzero(owner < 0), key=lambda i: (-load_of[i], i)):
        centre = int(np.argmin(load))
        owner[item] = centre
        load[centre] += load_of[item]
    return owner


def _shards_from_owner(owner: np.ndarray, n_shards: int) -> list[list[int]]:
    return [np.flatnonzero(owner == k).tolist() for k in range(n_shards)]


def _user_groups(users: Sequence[str]) -> tuple[list[str], list[np.ndarray]]:
    """Users in order of first appearance, with the row indices of each."""
    order: dict[str, list[int]] = {}
    for row, user in enumerate(users):
        order.setdefault(user, []).append(row)
    return list(order), [np.asarray(rows) for rows in order.values()]


def _kmeans_centres(embeddings: np.ndarray, n_shards: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans  # scikit-learn loads in ~1 s: only when used

    model = KMeans(n_clusters=n_shards, random_state=seed, n_init=10)
    model.fit(embeddings.astype(np.float64))
    return model.cluster_centers_


def _balanced_kmeans(
    points: np.ndarray, n_shards: int, cap: int, seed: int, weights: np.ndarray | None
) -> np.ndarray:
    """Anchors from random points; capped assignment by Euclidean distance; anchors move to
    their members' mean; repeat. Shared by RecEraser (users) and GraphEraser (samples)."""
    rng = np.random.default_rng(seed)
    anchors = points[rng.choice(len(points), size=n_shards, replace=False)].astype(np.float64)
    owner = np.full(len(points), -1)
    for _ in range(BALANCED_ITERATIONS):
        distances = np.linalg.norm(points[:, None, :] - anchors[None, :, :], axis=2)
        new_owner = capped_assignment(distances, cap, weights)
        if np.array_equal(new_owner, owner):
            break
        owner = new_owner
        for k in range(n_shards):
            members = points[owner == k]
            if len(members):
                anchors[k] = members.mean(axis=0)
    return owner
MAX_SEED = 2**32 - 1  # K-means' random_state takes no more


def check_request(
    method: str, n_items: int, n_shards: int, cap: int | None, seed: int = 0
) -> tuple[str, int]:
    """The method's name and the shard cap, or a one-line UsageError: checked before any
    work, so a refused partition writes nothing."""
    try:
        method = PartitionMethod(method).value
    except ValueError:
        raise UsageError(
            f"unknown partition method {method!r}; choose one of {', '.join(METHODS)}"
        ) from None
    if n_shards < 1:
        raise UsageError("--shards must be at least 1")
    if not 0 <= seed <= MAX_SEED:
        raise UsageError(f"--seed must be in [0, {MAX_SEED}], got {seed}")
    if n_items < n_shards:
        raise UsageError(f"cannot split {plural(n_items, 'training sample')} into "
                         f"{plural(n_shards, 'shard')}")
    if cap is None:
        cap = default_cap(n_items, n_shards)
    if not 1 <= cap <= n_items:  # a cap above the sample count would record a non-limit
        raise UsageError(f"--max-size must be in [1, {n_items}] (the training samples), "
                         f"got {cap}")
    if cap * n_shards < n_items:
        raise UsageError(
            f"--max-size {cap} × {plural(n_shards, 'shard')} cannot hold "
            f"{plural(n_items, 'sample')}; "
            f"use at least {default_cap(n_items, n_shards)}"
        )
    return method, cap


def partition(
    method: str,
    embeddings: np.ndarray,
    users: Sequence[str],
    n_shards: int,
    cap: int | None = None,
    seed: int = 0,
) -> Partition:
    """Split rows 0..N-1 into `n_shards` shards. See the module docstring for the methods."""
    n_items = len(users)
    method, cap = check_request(method, n_items, n_shards, cap, seed)
    if embeddings.shape[0] != n_items:
        raise ValueError("embeddings and users must describe the same samples")
    if method == "random":
        permutation = np.random.default_rng(seed).permutation(n_items)
        shards = [sorted(chunk.tolist()) for chunk in np.array_split(permutation, n_shards)]
        return Partition(method, shards, cap)

    if method == "apa":
        centres = _kmeans_centres(embeddings, n_shards, seed)
        owner = capped_assignment(cosine_distances(embeddings, centres), cap)
        return Partition(method, _shards_from_owner(owner, n_shards), cap)

    if method == "bekm":
        owner = _balanced_kmeans(embeddings.astype(np.float64), n_shards, cap, seed, None)
        return Partition(method, _shards_from_owner(owner, n_shards), cap)

    # User-granular methods: assign users, then expand to their rows.
    names, rows_of = _user_groups(users)
    if len(names) < n_shards:
        raise UsageError(f"cannot split {plural(len(names), 'user')} into "
                         f"{plural(n_shards, 'user-level shard')}")
    user_vectors = np.stack([embeddings[rows].mean(axis=0) for rows in rows_of])
    sizes = np.array([len(rows) for rows in rows_of])
    if method == "apa-user":
        centres = _kmeans_centres(embeddings, n_shards, seed)
        user_owner = capped_assignment(cosine_distances(user_vectors, centres), cap, sizes)
    else:  # "user": RecEraser's UBP, balanced in samples (a user's rows weigh their count)
        user_owner = _balanced_kmeans(user_vectors.astype(np.float64), n_shards, cap,
                                      seed, sizes)
    owner = np.empty(n_items, dtype=np.int64)
    for user_index, rows in enumerate(rows_of):
        owner[rows] = user_owner[user_index]
    return Partition(method, _shards_from_owner(owner, n_shards), cap)


def shard_centre(embeddings: np.ndarray) -> np.ndarray:
    """A shard's centre: the mean of its members' unit-normalised embeddings.

    Defined from the current members only, so after a forget the centre is recomputed from
    the remaining samples and keeps no trace of the removed ones (K-means centroids, which
    saw every sample, are used during assignment and never stored).
    """
    return _normalise(embeddings.astype(np.float64)).mean(axis=0).astype(np.float32)
