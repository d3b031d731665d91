"""Engine version 5's recipe on the tiny model: the answer-pair loss, LoRA on the top layers
only, and what older records imply (the full-vocabulary loss, every layer, the leading-space
answer tokens kept by a store that recorded them)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from test_backbone import make_prompts

from apa_console.engine.adapter_format import ADAPTER_WEIGHTS
from apa_console.engine.answers import AS_WRITTEN, LEADING_SPACE
from apa_console.engine.backbone import Backbone
from apa_console.engine.settings import TrainSettings
from apa_console.engine.training import answer_loss, train_adapter
from apa_console.engine.versions import CURRENT_ENGINE_VERSION
from apa_console.errors import UsageError
from apa_console.store.document import Store
from apa_console.store.model_record import record_model
from apa_console.workflows.model import answer_style_for

QUICK = TrainSettings(epochs=1, batch_size=4, lr=5e-3, seed=11, loss="answer_pair")


@pytest.fixture(scope="module")
def tiny(tiny_model_dir) -> Backbone:
    return Backbone.load(tiny_model_dir, device="cpu")


@pytest.fixture(scope="module")
def shard():
    return make_prompts(8), [index % 2 for index in range(8)], [f"s{index}" for index in range(8)]


def _train(tiny, shard, out, settings):
    prompts, labels, ids = shard
    return train_adapter(tiny, prompts, labels, ids, settings, out)


def test_the_answer_pair_loss_is_the_log_loss_of_p_yes():
    torch.manual_seed(0)
    head = torch.nn.Linear(6, 10, bias=False)
    last = torch.randn(4, 6)
    labels = torch.tensor([1, 0, 1, 0])
    logits = head(last)
    p_yes = torch.sigmoid(logits[:, 3] - logits[:, 7])  # what scoring reports
    expected = -torch.where(labels.bool(), p_yes.log(), (1 - p_yes).log()).mean()
    pair = answer_loss(last, head, 3, 7, labels, "answer_pair")
    assert torch.allclose(pair, expected, atol=1e-6)
    full = answer_loss(last, head, 3, 7, labels, "full_vocab")
    targets = torch.tensor([3, 7, 3, 7])
    assert torch.equal(full, F.cross_entropy(logits, targets))  # TALLRec's, as before
    assert full > pair  # the full vocabulary also charges for mass off both answers


def test_each_loss_trains_bit_identical_adapters_and_they_differ(tiny, shard, tmp_path):
    pair = _train(tiny, shard, tmp_path / "a", QUICK)
    again = _train(tiny, shard, tmp_path / "b", QUICK)
    assert pair.weights_sha256 == again.weights_sha256 and pair.settings["loss"] == "answer_pair"
    full = _train(tiny, shard, tmp_path / "c", TrainSettings(
        **{**QUICK.to_dict(), "loss": "full_vocab"}))
    assert full.weights_sha256 != pair.weights_sha256
    assert full.loss_curve[0] > pair.loss_curve[0]


def test_lora_on_the_top_layers_only(tiny, shard, tmp_path):
    top = _train(tiny, shard, tmp_path / "top", TrainSettings(
        **{**QUICK.to_dict(), "lora_layers": 1}))
    names = load_file(str(top.adapter_dir / ADAPTER_WEIGHTS)).keys()
    layers = {name.split(".layers.")[1].split(".")[0] for name in names}
    assert layers == {"1"}  # the tiny model has layers 0 and 1
    every = _train(tiny, shard, tmp_path / "all", QUICK)
    names = load_file(str(every.adapter_dir / ADAPTER_WEIGHTS)).keys()
    assert {name.split(".layers.")[1].split(".")[0] for name in names} == {"0", "1"}
    for bad in (-1, True, "2"):
        with pytest.raises(UsageError, match="lora_layers"):
            TrainSettings(lora_layers=bad)
    assert TrainSettings(lora_layers=0).lora_layers is None  # 0: every layer
    with pytest.raises(UsageError, match="loss"):
        TrainSettings(loss="hinge")


def test_records_of_older_engines_keep_their_loss_and_layers():
    assert CURRENT_ENGINE_VERSION == 5
    for version in (1, 2, 3, 4):
        old = TrainSettings.from_dict({"engine_version": version})
        assert old.loss == "full_vocab" and old.lora_layers is None
    assert TrainSettings().loss == "full_vocab" and TrainSettings().batch_size == 4


def test_a_store_keeps_the_answer_tokens_its_model_record_names(tiny, tmp_path):
    fresh = Store.create(tmp_path / "fresh")
    assert answer_style_for(fresh) == AS_WRITTEN  # nothing recorded: today's tokens
    record_model(fresh, tiny.info)
    assert answer_style_for(fresh) == AS_WRITTEN
    legacy = Store.create(tmp_path / "legacy")
    old_info = {key: value for key, value in tiny.info.items() if key != "answer_style"}
    record_model(legacy, old_info)  # as engines before version 5 recorded it
    assert answer_style_for(legacy) == LEADING_SPACE


def test_a_store_trained_by_engine_version_4_forgets_and_verifies_bit_for_bit(
        tiny_model_dir, tmp_path):
    from store_fixtures import make_store
    from typer.testing import CliRunner

    from apa_console.apa.adapters import train_all
    from apa_console.apa.shards import run_partition
    from apa_console.cli.app import app
    from apa_console.store import records
    from apa_console.store.document import get_meta, update_meta

    # What version 4 left: " Yes"/" No" answers, a model record without a style, adapters
    # trained with the full-vocabulary loss and recorded without the settings it lacked.
    legacy = Backbone.load(tiny_model_dir, device="cpu", answer_style=LEADING_SPACE)
    store = make_store(tmp_path / "v4")
    old_info = {key: value for key, value in legacy.info.items() if key != "answer_style"}
    record_model(store, old_info)
    run_partition(store, legacy, "apa", 3, seed=0)
    train_all(store, legacy, overrides={"epochs": 1, "batch_size": 4, "loss": "full_vocab",
                                        "lora_layers": None})
    with store.transaction() as db:
        recorded = dict(get_meta(db)["train_settings"])
        for key in ("loss", "lora_layers"):
            recorded.pop(key)
        update_meta(db, train_settings={**recorded, "engine_version": 4})
        for row in db.table("adapters").all():
            settings = {k: v for k, v in row["settings"].items()
                        if k not in ("loss", "lora_layers")}
            db.table("adapters").update({"settings": {**settings, "engine_version": 4}},
                                        doc_ids=[row.doc_id])
    user = sorted(records.user_ids(store.snapshot()))[0]
    runner = CliRunner()
    forgot = runner.invoke(app, ["forget", "--user", user, "--yes", "--store", str(store.root)])
    assert forgot.exit_code == 0, forgot.output
    verified = runner.invoke(app, ["verify", "--request", "r0001", "--store", str(store.root)])
    assert verified.exit_code == 0, verified.output
    rows = records.live_adapters(Store.open(store.root).snapshot())
    assert all(row["settings"].get("engine_version") == 4 for row in rows)
    assert all(TrainSettings.from_dict(row["settings"]).loss == "full_vocab" for row in rows)


def test_frozen_layers_run_once_and_the_top_layers_give_the_full_model_s_states(tiny):
    from apa_console.engine.backbone import split_causal_lm
    from apa_console.engine.frozen_layers import (
        first_adapted_layer,
        frozen_states,
        top_last_states,
    )

    token_ids = tiny.encode(make_prompts(5))
    assert len({len(ids) for ids in token_ids}) > 1  # rows of several lengths get padded
    decoder, _ = split_causal_lm(tiny.model)
    split = first_adapted_layer(2, 1)
    assert split == 1 and first_adapted_layer(2, None) == 0 and first_adapted_layer(2, 9) == 0
    cached = frozen_states(decoder, token_ids, split, tiny.pad_id)
    assert [len(state) for state in cached] == [len(ids) for ids in token_ids]
    with torch.no_grad():
        top = top_last_states(decoder, cached, split)
        whole = tiny.last_states(None, token_ids)
    assert torch.allclose(top, whole, atol=1e-5)
    assert len(decoder.layers) == 2 and not isinstance(decoder.norm, torch.nn.Identity)


def test_top_layer_training_is_bit_identical_and_shares_no_prefix(tiny, shard, tmp_path):
    settings = TrainSettings(**{**QUICK.to_dict(), "lora_layers": 1})
    first = _train(tiny, shard, tmp_path / "a", settings)
    again = _train(tiny, shard, tmp_path / "b", settings)
    assert first.weights_sha256 == again.weights_sha256
    assert first.loss_curve == again.loss_curve
    assert first.settings["share_prefix"] is False  # recorded as it ran
