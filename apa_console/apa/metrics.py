"""Quality metrics of a recommender's scores."""

from __future__ import annotations

import numpy as np


def auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC, or None when the labels hold a single class (AUC is undefined there)."""
    if len(set(np.asarray(labels).tolist())) < 2:
        return None
    from sklearn.metrics import roc_auc_score  # scikit-learn loads in ~1 s: only when used

    return float(roc_auc_score(labels, scores))
