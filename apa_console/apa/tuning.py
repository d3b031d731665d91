"""Picking τ and n, the adaptive weights' temperature and neighbour count, on the validation
pool with each user's samples left out of their own neighbours: ranked by an output-level
proxy, shortlisted points scored with the parameter-level merge that is served."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from apa_console.apa.choices import SERVED_POINTS
from apa_console.apa.embeddings import validation_pool
from apa_console.apa.metrics import auc
from apa_console.apa.serving import LiveSet, load_live_set
from apa_console.apa.weights import neighbour_errors, softmax_rows
from apa_console.engine.mixture import mixture_model, set_row_weights
from apa_console.errors import ConflictError, UsageError
from apa_console.progress import NEVER_CANCELLED, CancelToken, ProgressCallback, ignore_progress
from apa_console.store import audit
from apa_console.store.document import Store, now_iso, update_meta

# The grids include the paper's (τ 500…2500, n 10…200); τ = 0 is the plain average.
DEFAULT_TAUS = (0.0, 1.0, 10.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 1500.0, 2000.0, 2500.0)
DEFAULT_NEIGHBOUR_GRID = (1, 5, 10, 20, 50, 100, 200)


def tune(
    store: Store, backbone=None, *, taus: Sequence[float] = DEFAULT_TAUS,
    neighbour_grid: Sequence[int] = DEFAULT_NEIGHBOUR_GRID, served_points: int = SERVED_POINTS,
    save: bool = True, progress: ProgressCallback = ignore_progress,
    cancel: CancelToken = NEVER_CANCELLED,
) -> dict[str, Any]:
    """Grid-search τ and n on the validation pool, leaving one user out: each validation
    sample's weights come from the validation samples of other users. A user's own samples
    share their labels; as neighbours they would reward sharp weights that a new user's
    sample never gets (`neighbour_errors`).

    Every grid point is first ranked by the output-level proxy (the ω-weighted mix of the
    adapters' cached P(Yes): no forward pass, milliseconds for the whole grid). With a
    backbone, the `served_points` best points are then scored as they would be served (the
    parameter-level merge at level D, one forward pass per validation sample and point, in
    one batched run), and the best served AUC wins. Ties go to the smaller τ, then n.
    """
    live = load_live_set(store)
    labels = live.valid_labels
    if len(labels) < 3 or len(set(labels.tolist())) < 2:
        raise ConflictError("tuning needs at least 3 validation samples with both labels")
    if served_points < 1:
        raise UsageError("--served-points must be at least 1")
    # P_k(Yes) recovered from the cached errors: error = |label − p|
    p_yes = np.where(labels[None, :] == 1, 1 - live.valid_errors, live.valid_errors)
    pool = validation_pool(store)  # in the cache's row order, as the errors and embeddings
    users = np.array([sample.user_id for sample in pool])
    grid, weights_of = [], {}
    for n in neighbour_grid:
        errors = neighbour_errors(live.valid_embeddings, live.valid_embeddings,
                                  live.valid_errors, n, exclude_groups=users)
        for tau in taus:
            if tau == 0 and n != neighbour_grid[0]:
                continue  # τ = 0 weighs every adapter alike, whatever n is
            weights = softmax_rows(-tau * errors)
            weights_of[(float(tau), int(n))] = weights
            grid.append({"tau": float(tau), "neighbours": int(n),
                         "proxy_auc": auc(labels, (weights * p_yes.T).sum(axis=1))})

    def rank(key: str):
        return lambda g: (g[key] if g.get(key) is not None else -1.0, -g["tau"], -g["neighbours"])

    if backbone is None:
        best = max(grid, key=rank("proxy_auc"))
        best = {**best, "auc": best["proxy_auc"], "scored_by": "proxy"}
    else:
        shortlist = sorted(grid, key=rank("proxy_auc"), reverse=True)[:served_points]
        served = _served_aucs(pool, backbone, live, [weights_of[(g["tau"], g["neighbours"])]
                                                      for g in shortlist], progress, cancel)
        for point, value in zip(shortlist, served):
            point["served_auc"] = value
        best = max(shortlist, key=rank("served_auc"))
        best = {**best, "auc": best["served_auc"], "scored_by": "served merge (D)"}
    if save:
        with store.transaction() as db:
            update_meta(db, aggregation={"tau": best["tau"], "neighbours": best["neighbours"],
                                         "validation_auc": best["auc"],
                                         "scored_by": best["scored_by"], "tuned": now_iso()})
            audit.append(db, "aggregation.tuned", {"tau": best["tau"],
                                                   "neighbours": best["neighbours"],
                                                   "scored_by": best["scored_by"]})
    return {"best": best, "grid": grid}


def _served_aucs(pool, backbone, live: LiveSet, weight_sets: list[np.ndarray], progress,
                 cancel) -> list[float | None]:
    """The validation AUC of each leave-one-user-out weight set, scored with the served merge:
    every (point, sample) pair is one row of a single batched mixture run."""
    prompts = backbone.prompts_for(pool)
    weights = np.concatenate(weight_sets)
    with mixture_model(backbone.model, live.factors, "D") as layers:
        def weights_for(rows: list[int]) -> None:
            set_row_weights(layers, weights[rows])

        p_yes = backbone.score(prompts * len(weight_sets), before_batch=weights_for,
                               progress=progress, cancel=cancel, task="tune: served merge")
    labels = live.valid_labels
    return [auc(labels, chunk) for chunk in np.split(p_yes, len(weight_sets))]
