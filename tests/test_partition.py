"""Partition invariants and the capped assignment against a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apa_console.apa.partition import (
    METHODS,
    capped_assignment,
    default_cap,
    partition,
    shard_centre,
)
from apa_console.errors import UsageError


def brute_force_assignment(distances: np.ndarray, cap: int) -> np.ndarray:
    """Reference: repeatedly take the globally closest eligible (item, centre) pair."""
    n_items, n_centres = distances.shape
    owner = np.full(n_items, -1)
    load = np.zeros(n_centres, dtype=int)
    while (owner < 0).any():
        best = None
        for item in range(n_items):
            if owner[item] >= 0:
                continue
            for centre in range(n_centres):
                if load[centre] >= cap:
                    continue
                key = (distances[item, centre], item, centre)
                if best is None or key < best:
                    best = key
        _, item, centre = best
        owner[item] = centre
        load[centre] += 1
    return owner


@settings(max_examples=60, deadline=None)
@given(
    n_items=st.integers(1, 9),
    n_centres=st.integers(1, 4),
    seed=st.integers(0, 10_000),
    ties=st.booleans(),
)
def test_capped_assignment_matches_brute_force(n_items, n_centres, seed, ties):
    rng = np.random.default_rng(seed)
    distances = rng.random((n_items, n_centres))
    if ties:  # coarse values force equal distances
        distances = np.round(distances * 3) / 3
    cap = default_cap(n_items, n_centres)
    assert capped_assignment(distances, cap).tolist() == brute_force_assignment(
        distances, cap
    ).tolist()


def _fixture(n_samples: int, n_users: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(size=(n_samples, 8)).astype(np.float32)
    users = [f"u{rng.integers(n_users)}" for _ in range(n_samples)]
    return embeddings, users


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=15, deadline=None)
@given(n_samples=st.integers(8, 60), n_shards=st.integers(1, 4), seed=st.integers(0, 99))
def test_partition_is_disjoint_complete_and_capped(method, n_samples, n_shards, seed):
    embeddings, users = _fixture(n_samples, n_users=max(n_shards, n_samples // 3), seed=seed)
    if method in ("apa-user", "user") and len(set(users)) < n_shards:
        return
    result = partition(method, embeddings, users, n_shards, seed=seed)
    rows = [row for shard in result.shards for row in shard]
    assert sorted(rows) == list(range(n_samples))  # complete and disjoint
    assert all(shard == sorted(shard) for shard in result.shards)
    sizes = [len(shard) for shard in result.shards]
    if method in ("apa", "bekm", "random"):
        assert max(sizes) <= result.cap
    if method in ("apa-user", "user"):
        owner_of_user = {}
        for k, shard in enumerate(result.shards):
            for row in shard:
                assert owner_of_user.setdefault(users[row], k) == k  # users stay whole
    if method == "apa-user":
        per_user = {u: users.count(u) for u in set(users)}
        assert max(sizes) <= result.cap + max(per_user.values())


def test_partition_is_deterministic():
    embeddings, users = _fixture(40, 10)
    for method in METHODS:
        first = partition(method, embeddings, users, 3, seed=7)
        second = partition(method, embeddings, users, 3, seed=7)
        assert first.shards == second.shards, method


def test_apa_groups_semantically_close_samples():
    rng = np.random.default_rng(1)
    centres = np.eye(4, 16) * 10
    embeddings = np.concatenate([c + rng.normal(scale=0.1, size=(10, 16)) for c in centres])
    users = [f"u{i}" for i in range(40)]
    result = partition("apa", embeddings, users, 4, seed=0)
    assert sorted(map(tuple, result.shards)) == [tuple(range(i, i + 10)) for i in (0, 10, 20, 30)]


def test_apa_user_with_one_shard_per_cluster_keeps_clusters():
    rng = np.random.default_rng(2)
    centres = np.eye(2, 6) * 5
    embeddings = np.concatenate([c + rng.normal(scale=0.05, size=(6, 6)) for c in centres])
    users = ["a", "a", "b", "b", "c", "c", "d", "d", "e", "e", "f", "f"]
    result = partition("apa-user", embeddings, users, 2, seed=0)
    assert sorted(map(tuple, result.shards)) == [tuple(range(6)), tuple(range(6, 12))]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "nope"}, "unknown partition method"),
        ({"n_shards": 0}, "at least 1"),
        ({"n_shards": 50}, "cannot split"),
        ({"cap": 2}, "cannot hold"),
    ],
)
def test_bad_partition_arguments(kwargs, message):
    embeddings, users = _fixture(20, 5)
    args = {"method": "apa", "embeddings": embeddings, "users": users, "n_shards": 4}
    args.update(kwargs)
    with pytest.raises(UsageError, match=message):
        partition(**args)


def test_shard_centre_is_mean_of_unit_vectors():
    vectors = np.array([[2.0, 0.0], [0.0, 3.0]])
    assert np.allclose(shard_centre(vectors), [0.5, 0.5])
