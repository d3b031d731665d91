"""The engine on the real default model (SmolLM2-135M-Instruct), through the shared cache.

Kept small (about a minute on 2 CPU cores): the tiny-model tests cover the logic; these check
that the real model loads, scores sensibly, trains a step and round-trips through peft.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from adapter_oracles import load_adapter_model
from peft import PeftModel
from test_backbone import make_prompts
from transformers import AutoModelForCausalLM

from apa_console.engine.backbone import Backbone
from apa_console.engine.model_files import DEFAULT_MODEL_NAME
from apa_console.engine.training import TrainSettings, train_adapter

pytestmark = pytest.mark.integration


def test_default_model_loads_from_the_cache(default_backbone, default_model_cache):
    info = default_backbone.info
    assert info["name"] == DEFAULT_MODEL_NAME
    assert default_backbone.directory == default_model_cache / DEFAULT_MODEL_NAME
    assert (info["yes_token_id"], info["no_token_id"]) == (10539, 5230)  # "Yes", "No"
    assert (info["hidden_size"], info["layers"]) == (576, 30)
    assert default_backbone.device.type == "cpu" and default_backbone.dtype == torch.float32
    again = Backbone.load(None, device="cpu")
    assert again.info["fingerprint"] == info["fingerprint"]


def test_default_model_scores_and_embeds(default_backbone):
    prompts = make_prompts(4)
    batched = default_backbone.score(prompts, batch_size=4)
    single = np.array([default_backbone.score([prompt])[0] for prompt in prompts])
    np.testing.assert_allclose(batched, single, atol=1e-5, rtol=0)
    assert ((batched > 0) & (batched < 1)).all()
    vectors = default_backbone.hidden_states([p[-200:] for p in prompts], batch_size=4)
    assert vectors.shape == (4, 576) and np.isfinite(vectors).all()


def test_default_model_trains_a_step_and_round_trips_through_peft(default_backbone, tmp_path):
    prompts = make_prompts(4)
    labels = [1, 0, 1, 0]
    settings = TrainSettings(epochs=1, batch_size=4, lr=1e-3, seed=0)
    result = train_adapter(
        default_backbone, prompts, labels, ["a", "b", "c", "d"], settings, tmp_path / "adapter"
    )
    assert result.steps == 1 and np.isfinite(result.loss_curve).all()

    ours = default_backbone.score(prompts, model=load_adapter_model(default_backbone,
                                                                    tmp_path / "adapter"))
    fresh_base = AutoModelForCausalLM.from_pretrained(default_backbone.directory,
                                                      dtype=torch.float32)
    plain = PeftModel.from_pretrained(fresh_base, tmp_path / "adapter").eval()
    theirs = default_backbone.score(prompts, model=plain)
    np.testing.assert_allclose(ours, theirs, atol=1e-6, rtol=0)
