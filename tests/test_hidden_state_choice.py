"""A sample's hidden-state vector is a recorded partition setting: the mean over its input
(the default) or the final state at its prompt's last token; the store then uses that kind
for every cached split, neighbours and centres."""

from __future__ import annotations

import numpy as np
import pytest
from store_fixtures import FAST_TRAINING, make_store
from typer.testing import CliRunner

from apa_console.apa.adapters import train_all
from apa_console.apa.embeddings import cached_embeddings, split_samples
from apa_console.apa.serving import samples_to_score, score_apa
from apa_console.apa.shards import run_partition
from apa_console.cli.app import app
from apa_console.engine.backbone import Backbone
from apa_console.errors import UsageError
from apa_console.store.document import get_meta
from apa_console.store.model_record import record_model


@pytest.fixture(scope="module")
def backbone(tiny_model_dir):
    return Backbone.load(tiny_model_dir, device="cpu")


def test_last_token_vectors_are_the_final_state_at_each_prompts_end(tmp_path, backbone):
    samples = split_samples(make_store(tmp_path / "store"), "train")[:5]
    texts = backbone.hidden_texts_for(samples, "last")
    assert texts == backbone.prompts_for(samples)  # the whole prompt, not just the input
    vectors = backbone.hidden_states(texts, pooling="last", batch_size=2)
    expected = backbone.last_states(None, backbone.encode(texts)).float().detach().numpy()
    np.testing.assert_allclose(vectors, expected, atol=1e-5, rtol=0)
    single = np.concatenate([backbone.hidden_states([t], pooling="last") for t in texts])
    np.testing.assert_allclose(vectors, single, atol=1e-5, rtol=0)
    assert not np.allclose(vectors, backbone.hidden_states(backbone.hidden_texts_for(samples)))
    with pytest.raises(ValueError, match="pooling must be one of mean, last"):
        backbone.hidden_states(texts, pooling="max")


def test_the_choice_is_recorded_and_every_cached_split_follows_it(tmp_path, backbone):
    store = make_store(tmp_path / "store")
    record_model(store, backbone.info)
    run_partition(store, backbone, "apa", 2, seed=0, hidden_state="last")
    assert get_meta(store.snapshot())["partition"]["hidden_state"] == "last"
    train_all(store, backbone, overrides=FAST_TRAINING)
    entries = get_meta(store.snapshot())["embeddings"]
    assert {split: entry["pooling"] for split, entry in entries.items()} == {
        "train": "last", "valid": "last", "test": "last"}
    ids, vectors = cached_embeddings(store, "valid")
    by_id = {s.id: s for s in split_samples(store, "valid")}
    expected = backbone.hidden_states(
        backbone.hidden_texts_for([by_id[i] for i in ids], "last"), pooling="last")
    np.testing.assert_allclose(vectors, expected, atol=1e-5, rtol=0)
    report = score_apa(store, backbone, samples_to_score(store, split="test"))
    assert np.all((report.p_yes > 0) & (report.p_yes < 1))
    # re-partitioning with the mean replaces the train cache with mean vectors
    run_partition(store, backbone, "apa", 2, seed=0, force=True, hidden_state="mean")
    assert get_meta(store.snapshot())["embeddings"]["train"]["pooling"] == "mean"
    assert cached_embeddings(store, "train", "last") is None


def test_an_unknown_hidden_state_is_refused_before_any_write(tmp_path, backbone):
    store = make_store(tmp_path / "store")
    before = store.file.read_bytes()
    with pytest.raises(UsageError, match="unknown hidden state 'max'"):
        run_partition(store, backbone, "apa", 2, hidden_state="max")
    assert store.file.read_bytes() == before
    result = CliRunner().invoke(app, ["partition", "--hidden-state", "max", "--store",
                                      str(store.root)])
    assert result.exit_code == 2 and "'max' is not one of" in result.output
    assert store.file.read_bytes() == before
