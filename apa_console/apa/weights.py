"""How much each shard adapter counts for each sample (APA step 3).

Each sample gets ω ∈ Δ^K over the K live adapters:
- `adaptive`: the n validation samples most similar to it (cosine of hidden states);
   error_k = mean |label − P_k(Yes)| over them; ω = softmax(−τ·error).
- `average`:  ω = 1/K.
- `major`:    all weight on the adapter with the smallest adaptive error.
- `semantic`: ω = softmax(τ·cos(sample, shard centre)).
The engine's `mixture` layers apply the weights in one forward pass.
"""

from __future__ import annotations

import math

import numpy as np

from apa_console.apa.choices import STRATEGIES, Strategy  # noqa: F401 (re-exported)
from apa_console.errors import ConflictError, UsageError

DEFAULT_TAU = 500.0
DEFAULT_NEIGHBOURS = 20


MAX_TAU = 1e6  # beyond this softmax(−τ·error) is one-hot already, and overflows soon after
MAX_NEIGHBOURS = 1_000_000


def check_aggregation(tau: float | None, neighbours: int | None) -> None:
    """Refuse a temperature or neighbour count that would give meaningless weights."""
    if tau is not None and not (math.isfinite(tau) and 0 <= tau <= MAX_TAU):
        raise UsageError(f"--tau must be a number in [0, {MAX_TAU:g}], got {tau}")
    if neighbours is not None and not 1 <= neighbours <= MAX_NEIGHBOURS:
        raise UsageError(f"--neighbours must be in [1, {MAX_NEIGHBOURS}], got {neighbours}")


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = vectors.astype(np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def softmax_rows(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def neighbour_errors(
    sample_embeddings: np.ndarray,
    valid_embeddings: np.ndarray,
    valid_errors: np.ndarray,
    neighbours: int,
    exclude_groups: np.ndarray | None = None,
) -> np.ndarray:
    """error[m, k] = mean error of adapter k over sample m's `neighbours` most similar
    validation samples. `valid_errors` is (K, V). With `exclude_groups` (tuning on the
    validation pool itself: one group label per pool sample, its user) a sample never has a
    neighbour of its own group, itself included."""
    n_valid = valid_embeddings.shape[0]
    if n_valid == 0:
        raise UsageError("the validation pool is empty: adaptive weights need validation samples")
    similarity = _unit(sample_embeddings) @ _unit(valid_embeddings).T
    if exclude_groups is not None:
        groups = np.asarray(exclude_groups)
        similarity[groups[:, None] == groups[None, :]] = -np.inf
    count = max(1, min(neighbours, n_valid))
    # argsort on (-similarity, index) keeps ties deterministic
    nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :count]
    # a row with fewer than `count` samples outside its group averages over those it has
    usable = np.isfinite(np.take_along_axis(similarity, nearest, axis=1))
    if not usable[:, 0].all():
        raise ConflictError("a validation user holds every validation sample: tuning needs "
                            "validation samples of at least 2 users")
    errors = valid_errors.astype(np.float64)[:, nearest]  # (K, M, count)
    return ((errors * usable).sum(axis=2) / usable.sum(axis=1)).T  # (M, K)


def aggregation_weights(
    strategy: str,
    sample_embeddings: np.ndarray,
    *,
    valid_embeddings: np.ndarray | None = None,
    valid_errors: np.ndarray | None = None,
    centres: np.ndarray | None = None,
    tau: float = DEFAULT_TAU,
    neighbours: int = DEFAULT_NEIGHBOURS,
    n_adapters: int | None = None,
    exclude_groups: np.ndarray | None = None,
) -> np.ndarray:
    """(M, K) weights, each row summing to 1."""
    strategy = parse_strategy(strategy)
    n_samples = sample_embeddings.shape[0]
    if strategy == "average":
        k = n_adapters if n_adapters is not None else len(valid_errors)  # type: ignore[arg-type]
        return np.full((n_samples, k), 1.0 / k)
    if strategy == "semantic":
        if centres is None:
            raise UsageError("semantic weights need shard centres (run `partition` first)")
        return softmax_rows(tau * (_unit(sample_embeddings) @ _unit(centres).T))
    if valid_embeddings is None or valid_errors is None:
        raise UsageError("adaptive weights need the validation cache (run `train` first)")
    errors = neighbour_errors(
        sample_embeddings, valid_embeddings, valid_errors, neighbours, exclude_groups
    )
    if strategy == "major":
        weights = np.zeros_like(errors)
        weights[np.arange(n_samples), np.argmin(errors, axis=1)] = 1.0
        return weights
    return softmax_rows(-tau * errors)


def parse_strategy(value: str) -> Strategy:
    """The one check of a strategy name, for every front-end."""
    try:
        return Strategy(value)
    except ValueError:
        raise UsageError(
            f"unknown strategy {value!r}; choose one of {', '.join(STRATEGIES)}"
        ) from None
