"""AUC by ranks for many resamples at once, and paired-bootstrap intervals of AUC
differences: how sure a comparison of two recommenders on one test set is."""

from __future__ import annotations

import numpy as np

BOOTSTRAP_ROUNDS = 2000


def average_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks of each row of (R, N) `scores`; tied values share their average rank."""
    ranks = np.empty(scores.shape)
    for row, values in enumerate(scores):
        distinct, group, counts = np.unique(values, return_inverse=True, return_counts=True)
        # A group of c ties after s smaller values holds ranks s+1 … s+c: average s + (c+1)/2.
        smaller = np.cumsum(counts) - counts
        ranks[row] = (smaller + (counts + 1) / 2)[group.reshape(-1)]
    return ranks


def rank_auc(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of (R, N) `labels`/`scores` by the rank-sum formula (ties get
    average ranks, as in sklearn); NaN where a row holds one class."""
    ranks = average_ranks(np.asarray(scores))
    positives = labels.sum(axis=1)
    negatives = labels.shape[1] - positives
    rank_sum = (ranks * labels).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def delta_interval(labels, a, b, seed: int = 0) -> tuple[float, float] | None:
    """95 % paired-bootstrap interval of AUC(a) − AUC(b) over the test samples."""
    labels, a, b = np.asarray(labels, dtype=float), np.asarray(a), np.asarray(b)
    pick = np.random.default_rng(seed).integers(0, len(labels), (BOOTSTRAP_ROUNDS, len(labels)))
    deltas = rank_auc(labels[pick], a[pick]) - rank_auc(labels[pick], b[pick])
    deltas = deltas[np.isfinite(deltas)]
    if not len(deltas):
        return None
    low, high = np.percentile(deltas, [2.5, 97.5])
    return float(low), float(high)
