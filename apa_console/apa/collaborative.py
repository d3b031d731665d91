"""Collaborative embeddings of users and items, learned from the training interactions: what
the RecEraser (`user`, UBP) and GraphEraser (`bekm`, BEKM) baselines partition on, as their
papers define them, rather than the LLM's hidden states that APA uses.

The user × item matrix holds +1 for a liked and −1 for a disliked interaction: every history
entry and target of the training samples (a pair seen twice keeps its last rating, in sample
order). A seeded truncated SVD gives user vectors U·Σ and item vectors V·Σ.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from apa_console.samples import Sample

DIMENSIONS = 16
REPRESENTATION = f"collaborative-svd{DIMENSIONS}"  # recorded in the partition settings


def interaction_vectors(
    samples: Sequence[Sample], seed: int = 0, dimensions: int = DIMENSIONS,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """{user: vector}, {item: vector} from the samples' interactions."""
    from sklearn.decomposition import TruncatedSVD  # loads in ~1 s: only when used

    ratings: dict[tuple[str, str], float] = {}
    for sample in samples:
        for entry in sample.history:
            ratings[(sample.user_id, entry.item)] = 1.0 if entry.liked else -1.0
        ratings[(sample.user_id, sample.target_item)] = 1.0 if sample.label else -1.0
    users = sorted({user for user, _ in ratings})
    items = sorted({item for _, item in ratings})
    width = min(dimensions, len(users) - 1, len(items) - 1)
    if width < 1:  # one user or one item: nothing to factorise, every vector alike
        return ({u: np.zeros(1) for u in users}, {i: np.zeros(1) for i in items})
    row = {user: n for n, user in enumerate(users)}
    column = {item: n for n, item in enumerate(items)}
    matrix = np.zeros((len(users), len(items)))
    for (user, item), rating in ratings.items():
        matrix[row[user], column[item]] = rating
    svd = TruncatedSVD(n_components=width, algorithm="randomized", random_state=seed)
    user_vectors = svd.fit_transform(matrix)  # U·Σ
    item_vectors = svd.components_.T * svd.singular_values_  # V·Σ
    return ({u: user_vectors[row[u]] for u in users},
            {i: item_vectors[column[i]] for i in items})


def partition_vectors(method: str, samples: Sequence[Sample], seed: int = 0) -> np.ndarray:
    """One row per sample: its user's vector for `user` (so a user's mean is that vector), or
    its user's vector beside its target item's for `bekm` (the interaction's embedding)."""
    user_vectors, item_vectors = interaction_vectors(samples, seed)
    if method == "user":
        return np.stack([user_vectors[s.user_id] for s in samples])
    return np.stack([np.concatenate([user_vectors[s.user_id], item_vectors[s.target_item]])
                     for s in samples])
