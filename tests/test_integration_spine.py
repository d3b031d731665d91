"""The whole APA spine on the real default model with a handful of samples: partition,
train, validation cache, aggregated scoring, comparison, forget, verify."""

from __future__ import annotations

import numpy as np
import pytest
from store_fixtures import make_store

from apa_console.apa.adapters import train_all
from apa_console.apa.serving import compare, samples_to_score, score_apa
from apa_console.apa.shards import run_partition
from apa_console.store import records
from apa_console.store.model_record import record_model
from apa_console.unlearning.forget import apply_pending
from apa_console.unlearning.requests import submit
from apa_console.unlearning.targets import Targets
from apa_console.unlearning.verify import verify_request

pytestmark = pytest.mark.integration


def test_spine_on_the_default_model(default_backbone, tmp_path):
    store = make_store(tmp_path / "store", n_users=3, per_user=6)  # 12 train, 3 valid, 3 test
    record_model(store, default_backbone.info)
    run_partition(store, default_backbone, "apa-user", 2, seed=0)
    train_all(store, default_backbone, overrides={"epochs": 1, "batch_size": 4})
    assert len(records.live_adapters(store.snapshot())) == 2
    report = score_apa(store, default_backbone, samples_to_score(store, split="test"),
                       level="ND", neighbours=2)
    assert np.all((report.p_yes > 0) & (report.p_yes < 1))
    assert np.allclose(report.weights.sum(axis=1), 1)
    methods = [row["method"] for row in compare(store, default_backbone)["rows"]]
    assert methods == ["averaging (apa-user)", "APA(D)", "APA(ND)"]
    submit(store, Targets(users=["user1"]))
    (receipt,) = apply_pending(store, default_backbone)
    assert len(receipt["adapters"]) == 1  # apa-user: one user, one shard
    assert verify_request(store, default_backbone, receipt["request"])["ok"]
