"""Score samples with the live adapters: APA (one pass, per-sample mixture), SISA (K passes,
averaged outputs), a single adapter (the Retraining baseline); compare them. (τ and n are
tuned in tuning.py.)"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from apa_console.apa import score_history
from apa_console.apa.adapters import ids_hash, load_adapter, score_with_adapter
from apa_console.apa.embeddings import cached_embeddings, embeddings_for, split_samples
from apa_console.apa.metrics import auc
from apa_console.apa.weights import (
    DEFAULT_NEIGHBOURS,
    DEFAULT_TAU,
    aggregation_weights,
    check_aggregation,
)
from apa_console.engine.backbone import SCORE_BATCH_SIZE
from apa_console.engine.mixture import AdapterFactors, mixture_model, set_row_weights
from apa_console.errors import ConflictError, NotFoundError, StoreInvalidError, UsageError
from apa_console.progress import NEVER_CANCELLED, CancelToken, ProgressCallback, ignore_progress
from apa_console.safe_text import quoted
from apa_console.samples import SPLITS, Sample
from apa_console.store import catalog, records
from apa_console.store.document import Store, get_meta, now_iso, update_meta
from apa_console.store.records import BASELINE


@dataclass
class ScoreReport:
    method: str
    sample_ids: list[str]
    user_ids: list[str]
    labels: np.ndarray
    p_yes: np.ndarray
    wall_s: float
    adapter_ids: list[str] = field(default_factory=list)
    weights: np.ndarray | None = None  # (M, K) aggregation weights, when aggregated
    strategy: str | None = None
    level: str | None = None
    tau: float | None = None
    neighbours: int | None = None
    recorded: bool = False  # added to the served recommender's score history

    @property
    def auc(self) -> float | None:
        return auc(self.labels, self.p_yes)

    @property
    def samples_per_s(self) -> float:
        return len(self.sample_ids) / self.wall_s if self.wall_s > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        rows = []
        for i, sid in enumerate(self.sample_ids):
            row = {"sample": sid, "user": self.user_ids[i], "label": int(self.labels[i]),
                   "p_yes": float(self.p_yes[i])}
            if self.weights is not None:
                row["weights"] = dict(zip(self.adapter_ids, map(float, self.weights[i])))
            rows.append(row)
        return {
            "method": self.method, "strategy": self.strategy, "level": self.level,
            "tau": self.tau, "neighbours": self.neighbours, "auc": self.auc,
            "samples": len(self.sample_ids), "wall_s": self.wall_s,
            "samples_per_s": self.samples_per_s, "adapters": self.adapter_ids, "rows": rows,
            "recorded": self.recorded,
        }


def samples_to_score(
    store: Store, split: str | None = None, user: str | None = None
) -> list[Sample]:
    """A user's samples of one split (test by default), or a whole split."""
    if user is not None:
        db = store.snapshot()
        if not records.has_user(db, user):
            raise catalog.user_not_found(db, user)
        wanted = split or "test"
        rows = records.user_sample_rows(db, user, wanted)
        if not rows:
            raise NotFoundError(f"user {quoted(user)} has no {wanted} samples")
        return [Sample.from_record(r) for r in sorted(rows, key=lambda r: r["order"])]
    split = split or "test"
    if split not in SPLITS:
        raise UsageError(f"unknown split {quoted(split)}; choose one of {', '.join(SPLITS)}")
    samples = split_samples(store, split)
    if not samples:
        raise NotFoundError(f"the {split} split of {store.root} is empty")
    return samples


def aggregation_defaults(store: Store) -> tuple[float, int]:
    tuned = get_meta(store.snapshot()).get("aggregation") or {}
    return float(tuned.get("tau", DEFAULT_TAU)), int(tuned.get("neighbours", DEFAULT_NEIGHBOURS))


@dataclass
class LiveSet:
    rows: list[dict]
    factors: list[AdapterFactors]
    valid_embeddings: np.ndarray
    valid_errors: np.ndarray  # (K, V)
    valid_labels: np.ndarray
    centres: np.ndarray | None

    @property
    def ids(self) -> list[str]:
        return [row["id"] for row in self.rows]


def check_servable(store: Store) -> None:
    """Refuse scoring a store without live shard adapters before any model loads (loading
    one would build its cache in the store for nothing)."""
    db = store.snapshot()
    if not records.live_adapters(db):
        withdrawn = records.withdrawn_adapters(db)
        if withdrawn:
            pending = sorted({row.get("withdrawn_by") or "?" for row in withdrawn})
            raise ConflictError(
                f"every shard adapter is withdrawn until the retrain of {', '.join(pending)} "
                "lands: run `apa-console apply`")
        raise ConflictError("no trained shard adapters: run `apa-console train` first")


def load_live_set(store: Store) -> LiveSet:
    """The serving state: live shard adapters, their validation errors and the pool."""
    check_servable(store)
    db = store.snapshot()
    rows = records.live_adapters(db)
    cached = cached_embeddings(store, "valid")
    valid_ids = cached[0] if cached else []
    for row in rows:
        if row.get("valid_ids_hash") != ids_hash(valid_ids):
            raise ConflictError(
                f"the validation cache of {row['id']} is stale: run `apa-console train`"
            )
    labels_by_id = {s.id: s.label for s in records.split_samples(db, "valid")}
    shards = {r["shard"]: r for r in records.shard_rows(db)}
    centre_files = [shards.get(row["shard"], {}).get("centre") for row in rows]
    dim = cached[1].shape[1] if cached else None
    return LiveSet(
        rows=rows,
        factors=[load_adapter(store, row) for row in rows],
        valid_embeddings=cached[1] if cached else np.zeros((0, 1), dtype=np.float32),
        valid_errors=np.stack([store.read_array(row["valid_errors"], ndim=1, rows=len(valid_ids))
                               for row in rows]),
        valid_labels=np.array([labels_by_id[i] for i in valid_ids], dtype=np.float64),
        centres=(np.stack([_centre(store, f, dim) for f in centre_files])
                 if all(centre_files) else None),
    )


def _centre(store: Store, relative: str, dim: int | None) -> np.ndarray:
    """A shard's centre vector, the same width as the cached hidden states."""
    centre = store.read_array(relative).reshape(-1)
    if dim is not None and centre.shape[0] != dim:
        raise StoreInvalidError(
            f"{store.path_of(relative)} is corrupt (a centre of {centre.shape[0]} values, "
            f"the embeddings have {dim})"
        )
    return centre


def _sample_vectors(store, backbone, samples, use_cache, progress, cancel) -> np.ndarray:
    if use_cache:
        split = samples[0].split if len({s.split for s in samples}) == 1 else None
        return embeddings_for(store, backbone, samples, split=split, save=False,
                              progress=progress, cancel=cancel)
    return embeddings_for(store, backbone, samples, split=None, progress=progress, cancel=cancel)


def score_apa(
    store: Store, backbone, samples: Sequence[Sample], *, strategy: str = "adaptive",
    level: str = "D", tau: float | None = None, neighbours: int | None = None,
    use_cache: bool = True, live: LiveSet | None = None, batch_size: int = SCORE_BATCH_SIZE,
    progress: ProgressCallback = ignore_progress, cancel: CancelToken = NEVER_CANCELLED,
    record_as: str | None = None,
) -> ScoreReport:
    """APA inference: per-sample weights, then one forward pass per batch with each row's own
    adapter mixture. `use_cache=False` recomputes the samples' embeddings (the paper's
    "without precomputation" timing). `record_as="test"` adds the AUC to the served
    recommender's history as a score of the whole test split (`score_history`), when this
    is the served recommender: adaptive weights, level D, the store's τ and n."""
    samples = list(samples)
    check_aggregation(tau, neighbours)
    served = strategy == "adaptive" and level == "D" and tau is None and neighbours is None
    default_tau, default_n = aggregation_defaults(store)
    tau = default_tau if tau is None else tau
    neighbours = default_n if neighbours is None else neighbours
    live = live or load_live_set(store)
    started = time.perf_counter()
    vectors = _sample_vectors(store, backbone, samples, use_cache, progress, cancel)
    weights = aggregation_weights(
        strategy, vectors, valid_embeddings=live.valid_embeddings,
        valid_errors=live.valid_errors, centres=live.centres, tau=tau,
        neighbours=neighbours, n_adapters=len(live.rows),
    )
    with mixture_model(backbone.model, live.factors, level) as layers:
        def weights_for(rows: list[int]) -> None:
            set_row_weights(layers, weights[rows])

        p_yes = backbone.score(backbone.prompts_for(samples), before_batch=weights_for,
                               batch_size=batch_size, progress=progress, cancel=cancel,
                               task=f"APA({level})")
    report = ScoreReport(
        method=f"APA({level})", sample_ids=[s.id for s in samples],
        user_ids=[s.user_id for s in samples],
        labels=np.array([s.label for s in samples]), p_yes=p_yes,
        wall_s=time.perf_counter() - started, adapter_ids=live.ids, weights=weights,
        strategy=strategy, level=level, tau=tau, neighbours=neighbours,
    )
    if record_as is not None and served:
        report.recorded = score_history.record_score(store, report, record_as)
    return report


def score_each_adapter(
    backbone, samples: Sequence[Sample], live: LiveSet, *,
    progress: ProgressCallback = ignore_progress, cancel: CancelToken = NEVER_CANCELLED,
) -> tuple[np.ndarray, float]:
    """(K, M) P(Yes) of every live adapter separately, and the wall time of the K passes."""
    prompts = backbone.prompts_for(list(samples))
    started = time.perf_counter()
    scores = np.stack([
        score_with_adapter(backbone, prompts, factors, progress=progress, cancel=cancel,
                           task=f"{row['id']}")
        for row, factors in zip(live.rows, live.factors)
    ])
    return scores, time.perf_counter() - started


def score_sisa(
    store: Store, backbone, samples: Sequence[Sample], *, live: LiveSet | None = None,
    per_adapter: tuple[np.ndarray, float] | None = None,
    progress: ProgressCallback = ignore_progress, cancel: CancelToken = NEVER_CANCELLED,
) -> ScoreReport:
    """Output averaging: every adapter scores every sample (K passes) and the outputs are
    averaged. That is SISA only over a random partition, so any other partition is named by
    its method ("averaging (apa)")."""
    live = live or load_live_set(store)
    method = (get_meta(store.snapshot()).get("partition") or {}).get("method")
    scores, wall = per_adapter or score_each_adapter(backbone, samples, live,
                                                     progress=progress, cancel=cancel)
    return ScoreReport(
        method="SISA" if method == "random" else f"averaging ({method or 'unknown'})",
        sample_ids=[s.id for s in samples], user_ids=[s.user_id for s in samples],
        labels=np.array([s.label for s in samples]), p_yes=scores.mean(axis=0), wall_s=wall,
        adapter_ids=live.ids, weights=np.full((len(samples), len(live.rows)), 1 / len(live.rows)),
        strategy="average", level="output",
    )


def score_baseline(
    store: Store, backbone, samples: Sequence[Sample], *,
    progress: ProgressCallback = ignore_progress, cancel: CancelToken = NEVER_CANCELLED,
) -> ScoreReport | None:
    rows = records.live_adapters(store.snapshot(), BASELINE)
    if not rows:
        return None
    started = time.perf_counter()
    p_yes = score_with_adapter(
        backbone, backbone.prompts_for(list(samples)),
        load_adapter(store, rows[0]), progress=progress, cancel=cancel,
        task="Retraining",
    )
    return ScoreReport(
        method="Retraining", sample_ids=[s.id for s in samples],
        user_ids=[s.user_id for s in samples], labels=np.array([s.label for s in samples]),
        p_yes=p_yes, wall_s=time.perf_counter() - started, adapter_ids=[rows[0]["id"]],
    )


def compare(
    store: Store, backbone, *, split: str = "test", strategy: str = "adaptive",
    progress: ProgressCallback = ignore_progress, cancel: CancelToken = NEVER_CANCELLED,
) -> dict[str, Any]:
    """The paper's Table I on one split: average sub-adapter AUC before aggregation, AUC,
    Δ vs Retraining, and inference throughput, for Retraining, output averaging (SISA over
    a random partition), APA(D) and APA(ND)."""
    samples = samples_to_score(store, split=split)
    live = load_live_set(store)
    per_adapter = score_each_adapter(backbone, samples, live, progress=progress, cancel=cancel)
    labels = np.array([s.label for s in samples])
    sub_aucs = [auc(labels, row) for row in per_adapter[0]]
    known = [a for a in sub_aucs if a is not None]
    reports = [
        score_baseline(store, backbone, samples, progress=progress, cancel=cancel),
        score_sisa(store, backbone, samples, live=live, per_adapter=per_adapter),
        score_apa(store, backbone, samples, strategy=strategy, level="D", live=live,
                  progress=progress, cancel=cancel, record_as=split),
        score_apa(store, backbone, samples, strategy=strategy, level="ND", live=live,
                  progress=progress, cancel=cancel),
    ]
    reports = [r for r in reports if r is not None]
    reference = next((r.auc for r in reports if r.method == "Retraining"), None)
    rows = [{
        "method": r.method,
        "sub_adapter_auc": None if r.method == "Retraining" else (
            float(np.mean(known)) if known else None),
        "auc": r.auc,
        "delta_vs_retraining": (r.auc - reference) if (reference is not None
                                                      and r.auc is not None) else None,
        "samples_per_s": r.samples_per_s,
    } for r in reports]
    result = {"split": split, "samples": len(samples), "strategy": strategy,
              "adapters": live.ids, "sub_adapter_aucs": dict(zip(live.ids, sub_aucs)),
              "rows": rows, "evaluated": now_iso()}
    with store.transaction() as db:
        update_meta(db, last_evaluation=result)
    return result
