"""Scoring with the shared prompt prefix computed once equals scoring every row in full."""

from __future__ import annotations

import numpy as np
import pytest
from store_fixtures import make_samples

from apa_console.apa.adapters import score_with_adapter
from apa_console.engine.backbone import Backbone
from apa_console.engine.mixture import AdapterFactors


@pytest.fixture(scope="module")
def backbone(tiny_model_dir):
    return Backbone.load(tiny_model_dir, device="cpu")


def test_shared_prefix_scores_equal_full_scores(backbone):
    prompts = backbone.prompts_for(make_samples(n_users=3, per_user=5))
    full = backbone.score(prompts, batch_size=4)
    shared = backbone.score(prompts, batch_size=4, share_prefix=True)
    assert np.abs(full - shared).max() < 1e-5
    assert backbone._prefix_cache(backbone.model, backbone.encode(prompts))[1] > 20


def test_no_common_prefix_and_single_prompt(backbone):
    prompts = ["Yes or No?", "Completely different text"]
    assert np.allclose(backbone.score(prompts), backbone.score(prompts, share_prefix=True),
                       atol=1e-5)
    one = backbone.prompts_for(make_samples(n_users=1, per_user=1))
    assert np.allclose(backbone.score(one), backbone.score(one, share_prefix=True), atol=1e-5)


def test_single_adapter_scoring_with_shared_prefix_matches_row_by_row(backbone, tmp_path):
    from apa_console.engine.training import TrainSettings, train_adapter

    samples = make_samples(n_users=2, per_user=4)
    prompts = backbone.prompts_for(samples)
    train_adapter(backbone, prompts, [s.label for s in samples], [s.id for s in samples],
                  TrainSettings(epochs=1, batch_size=4), tmp_path / "a")
    factors = AdapterFactors.load(tmp_path / "a")
    batched = score_with_adapter(backbone, prompts, factors)
    one_by_one = np.concatenate([score_with_adapter(backbone, [p], factors) for p in prompts])
    assert np.abs(batched - one_by_one).max() < 1e-5
