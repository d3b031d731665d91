"""Quality metrics of a recommender's scores."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score


def auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC, or None when the labels hold a single class (AUC is undefined there)."""
    if len(set(np.asarray(labels).tolist())) < 2:
        return None
    return float(roc_auc_score(labels, scores))
