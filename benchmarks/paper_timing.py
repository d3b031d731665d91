"""The paper benchmark's inference timing: every serving path on the same samples, batched
and one sample at a time (the paper's Fig. 4 protocol)."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from apa_console.apa.adapters import score_with_adapter, validation_errors
from apa_console.apa.embeddings import validation_pool
from apa_console.apa.serving import load_live_set, score_apa
from apa_console.engine.backbone import SCORE_BATCH_SIZE
from apa_console.engine.mixture import AdapterFactors
from apa_console.store import records
from apa_console.store.document import Store


def inference_timing(stores: dict[str, Store], backbone, samples, bars, cancel) -> dict:
    """Every serving path on the same samples at the engine's scoring batch, then the
    paper's Fig. 4 protocol (one sample at a time) for the four methods, in one stage
    (ratios from one run). All paths run every token of every row; the prefix-sharing
    single adapter is extra."""
    retraining = records.live_adapters(stores["retraining"].snapshot())[0]
    single = AdapterFactors.load(stores["retraining"].path_of(retraining["path"]))
    prompts = backbone.prompts_for(samples)
    score_with_adapter(backbone, prompts[:4], single, share_prefix=False)  # warm-up
    timings = {}

    def timed(name, run):
        started = time.perf_counter()
        run()
        timings[name] = time.perf_counter() - started

    timed("Retraining (one adapter)", lambda: score_with_adapter(
        backbone, prompts, single, share_prefix=False, progress=bars, cancel=cancel,
        task="time: one adapter"))
    sisa = load_live_set(stores["random"])
    timed(f"SISA ({len(sisa.rows)} passes)", lambda: [score_with_adapter(
        backbone, prompts, factors, share_prefix=False, progress=bars, cancel=cancel,
        task=f"time: SISA {row['id']}") for row, factors in zip(sisa.rows, sisa.factors)])
    apa = stores["apa"]
    live = load_live_set(apa)
    for level in ("D", "ND"):
        timed(f"APA({level})", lambda level=level: score_apa(
            apa, backbone, samples, level=level, live=live, progress=bars, cancel=cancel))
    timed("APA(D), embeddings computed", lambda: score_apa(
        apa, backbone, samples, level="D", live=live, use_cache=False, progress=bars,
        cancel=cancel))

    def without_any_precomputation():
        valid = validation_pool(apa)
        errors = np.stack([validation_errors(backbone, apa.path_of(row["path"]), valid,
                                             progress=bars, cancel=cancel)
                           for row in live.rows])
        score_apa(apa, backbone, samples, level="D", live=replace(live, valid_errors=errors),
                  use_cache=False, progress=bars, cancel=cancel)

    timed("APA(D), embeddings and validation errors computed", without_any_precomputation)
    timed("Retraining (one adapter, shared prefix)", lambda: score_with_adapter(
        backbone, prompts, single, share_prefix=True, progress=bars, cancel=cancel,
        task="time: shared prefix"))
    batched, timings = timings, {}
    timed("Retraining (one adapter)", lambda: score_with_adapter(
        backbone, prompts, single, share_prefix=False, batch_size=1, progress=bars,
        cancel=cancel, task="time: one adapter, batch 1"))
    timed(f"SISA ({len(sisa.rows)} passes)", lambda: [score_with_adapter(
        backbone, prompts, factors, share_prefix=False, batch_size=1, progress=bars,
        cancel=cancel, task=f"time: SISA {row['id']}, batch 1")
        for row, factors in zip(sisa.rows, sisa.factors)])
    for level in ("D", "ND"):
        timed(f"APA({level})", lambda level=level: score_apa(
            apa, backbone, samples, level=level, live=live, batch_size=1, progress=bars,
            cancel=cancel))
    return {"samples": len(samples), "batch_size": SCORE_BATCH_SIZE, "wall_s": batched,
            "one_at_a_time_wall_s": timings}
