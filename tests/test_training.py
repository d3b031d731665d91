"""LoRA training on the tiny model: determinism, peft format, cancel, progress, isolation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from adapter_oracles import load_adapter_model
from peft import PeftModel
from test_backbone import make_prompts
from transformers import AutoModelForCausalLM

from apa_console.engine.adapter_format import ADAPTER_CONFIG, ADAPTER_WEIGHTS
from apa_console.engine.backbone import Backbone
from apa_console.engine.batching import shared_prefix_length
from apa_console.engine.training import (
    LENGTH_GROUP_BATCHES,
    TrainSettings,
    _lora_config,
    epoch_batches,
    manifest_hash,
    train_adapter,
)
from apa_console.errors import CancelledError, ConflictError, UsageError
from apa_console.fileio import sha256_file
from apa_console.progress import CancelToken

FAST = TrainSettings(epochs=2, batch_size=4, lr=5e-3, seed=7)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir) -> Backbone:
    return Backbone.load(tiny_model_dir, device="cpu")


@pytest.fixture(scope="module")
def shard():
    prompts = make_prompts(10)
    labels = [index % 2 for index in range(10)]
    ids = [f"sample-{index}" for index in range(10)]
    return prompts, labels, ids


def train(tiny, shard, out_dir, settings=FAST, **kwargs):
    prompts, labels, ids = shard
    return train_adapter(tiny, prompts, labels, ids, settings, out_dir, **kwargs)


def test_settings_round_trip_and_validation():
    settings = TrainSettings(rank=4, target_modules=["q_proj"], seed=3)
    assert settings.target_modules == ("q_proj",)
    data = settings.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert TrainSettings.from_dict({**data, "unknown": 1}) == settings
    defaults = TrainSettings()
    assert (defaults.rank, defaults.alpha, defaults.dropout) == (8, 16, 0.05)
    assert defaults.target_modules == ("q_proj", "v_proj")
    with pytest.raises(UsageError):
        TrainSettings(epochs=0)
    with pytest.raises(UsageError):
        TrainSettings(warmup=1.5)


def test_records_from_before_a_setting_existed_keep_the_old_behaviour():
    assert TrainSettings().group_by_length
    legacy = TrainSettings().to_dict()
    del legacy["group_by_length"]
    del legacy["dropout_sampler"]
    del legacy["share_prefix"]
    del legacy["engine_version"]  # such records predate engine versions too
    old = TrainSettings.from_dict(legacy)
    assert not old.group_by_length and old.dropout_sampler == "uniform"
    assert not old.share_prefix and old.engine_version == 1
    current = TrainSettings.from_dict(TrainSettings().to_dict())
    assert current.group_by_length and current.dropout_sampler == "packed16"
    assert current.share_prefix
    with pytest.raises(UsageError, match="dropout_sampler"):
        TrainSettings(dropout_sampler="bernoulli")


def _padding(batches, lengths):
    return sum(max(lengths[r] for r in rows) * len(rows) - sum(lengths[r] for r in rows)
               for rows in batches)


def test_plain_epoch_batches_are_consecutive_slices_of_the_order():
    order = [4, 2, 0, 1, 3]
    batches = epoch_batches(order, [9, 8, 7, 6, 5], 2, False, torch.Generator().manual_seed(0))
    assert batches == [[4, 2], [0, 1], [3]]


def test_grouped_epoch_batches_cover_every_row_once_with_less_padding_deterministically():
    lengths = torch.randint(150, 260, (300,), generator=torch.Generator().manual_seed(3)).tolist()
    order = torch.randperm(300, generator=torch.Generator().manual_seed(4)).tolist()

    def grouped(seed):
        return epoch_batches(order, lengths, 8, True, torch.Generator().manual_seed(seed))

    batches = grouped(5)
    assert len(batches) == len(epoch_batches(order, lengths, 8, False, torch.Generator()))
    assert sorted(r for rows in batches for r in rows) == list(range(300))
    assert sorted(len(rows) for rows in batches)[1:] == [8] * (len(batches) - 1)
    assert all([lengths[r] for r in rows] == sorted((lengths[r] for r in rows), reverse=True)
               for rows in batches)
    plain = epoch_batches(order, lengths, 8, False, torch.Generator())
    assert _padding(batches, lengths) < 0.2 * _padding(plain, lengths)
    assert grouped(5) == batches and grouped(6) != batches  # seeded, and really shuffled
    # Rows only meet rows from their own window of the shuffled order.
    window = 8 * LENGTH_GROUP_BATCHES
    assert all(len({order.index(r) // window for r in rows}) == 1 for rows in batches)


def test_manifest_hash_depends_on_ids_and_order():
    assert manifest_hash(["a", "b"]) == manifest_hash(["a", "b"])
    assert manifest_hash(["a", "b"]) != manifest_hash(["b", "a"])
    assert manifest_hash(["a,b"]) != manifest_hash(["a", "b"])
    assert len(manifest_hash([])) == 64


def test_training_is_bit_identical_for_the_same_inputs(tiny, shard, tmp_path):
    first = train(tiny, shard, tmp_path / "first")
    second = train(tiny, shard, tmp_path / "second")
    assert first.weights_sha256 == second.weights_sha256
    assert first.loss_curve == second.loss_curve
    assert first.weights_sha256 == sha256_file(tmp_path / "first" / ADAPTER_WEIGHTS)
    assert first.manifest_hash == manifest_hash(shard[2])
    assert first.settings == FAST.resolved(tiny.device).to_dict()  # the dtype spelled out
    assert first.steps == 6 and len(first.loss_curve) == 6  # 2 epochs of ceil(10 / 4)
    assert first.wall_time_s > 0 and first.samples_per_s > 0

    reseeded = train(tiny, shard, tmp_path / "reseeded", TrainSettings(**{**FAST.to_dict(),
                                                                          "seed": 8}))
    assert reseeded.weights_sha256 != first.weights_sha256
    prompts, labels, ids = shard
    fewer = train_adapter(tiny, prompts[1:], labels[1:], ids[1:], FAST, tmp_path / "fewer")
    assert fewer.weights_sha256 != first.weights_sha256
    assert fewer.manifest_hash != first.manifest_hash


def test_training_leaves_peft_files_only_and_never_overwrites(tiny, shard, tmp_path):
    train(tiny, shard, tmp_path / "adapters" / "0")
    assert sorted(p.name for p in (tmp_path / "adapters" / "0").iterdir()) == [
        ADAPTER_CONFIG,
        ADAPTER_WEIGHTS,
    ]
    assert [p.name for p in (tmp_path / "adapters").iterdir()] == ["0"]  # no temp folder
    config = json.loads((tmp_path / "adapters" / "0" / ADAPTER_CONFIG).read_text())
    assert config["r"] == FAST.rank and set(config["target_modules"]) == {"q_proj", "v_proj"}
    with pytest.raises(ConflictError):
        train(tiny, shard, tmp_path / "adapters" / "0")


def test_training_does_not_touch_the_base_model(tiny, shard, tmp_path):
    before = {name: tensor.clone() for name, tensor in tiny.model.state_dict().items()}
    scores_before = tiny.score(shard[0])
    train(tiny, shard, tmp_path / "a")
    load_adapter_model(tiny, tmp_path / "a")
    after = tiny.model.state_dict()
    assert before.keys() == after.keys()
    for name, tensor in before.items():
        assert torch.equal(tensor, after[name]), name
    assert not tiny.model.training
    assert not any("lora" in name for name, _ in tiny.model.named_modules())
    np.testing.assert_array_equal(scores_before, tiny.score(shard[0]))


def test_progress_after_every_step(tiny, shard, tmp_path):
    events = []
    result = train(tiny, shard, tmp_path / "a", progress=events.append, task="shard 3")
    assert [event.step for event in events] == list(range(1, 7))
    assert all(event.total == 6 and event.task == "shard 3" for event in events)
    assert [event.loss for event in events] == result.loss_curve
    assert all(event.samples_per_s > 0 and event.eta_s >= 0 for event in events)
    assert events[-1].eta_s == 0


def test_cancel_between_steps_leaves_no_files(tiny, shard, tmp_path):
    token = CancelToken()
    seen = []

    def cancel_after_two(event):
        seen.append(event.step)
        if event.step == 2:
            token.cancel()

    parent = tmp_path / "adapters"
    with pytest.raises(CancelledError):
        train(tiny, shard, parent / "0", progress=cancel_after_two, cancel=token)
    assert seen == [1, 2]
    assert not (parent / "0").exists()
    assert list(parent.iterdir()) == []


def test_training_lowers_the_loss(tiny, shard, tmp_path):
    settings = TrainSettings(epochs=8, batch_size=5, lr=2e-2, dropout=0.0, seed=1, warmup=0.0)
    result = train(tiny, shard, tmp_path / "a", settings)
    assert np.mean(result.loss_curve[-2:]) < np.mean(result.loss_curve[:2])


def test_adapter_loads_with_plain_peft_and_scores_the_same(tiny, shard, tiny_model_dir, tmp_path):
    train(tiny, shard, tmp_path / "a")
    ours = tiny.score(shard[0], model=load_adapter_model(tiny, tmp_path / "a"), batch_size=3)

    fresh_base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    plain = PeftModel.from_pretrained(fresh_base, tmp_path / "a").eval()
    theirs = tiny.score(shard[0], model=plain, batch_size=3)
    np.testing.assert_allclose(ours, theirs, atol=1e-6, rtol=0)
    assert np.abs(ours - tiny.score(shard[0])).max() > 1e-4, "the adapter should change scores"

    # And the full forward pass of the plain peft model agrees with the shortcut.
    ids = torch.tensor([tiny.encode([shard[0][0]])[0]])
    with torch.no_grad():
        logits = plain(input_ids=ids).logits[0, -1].double()
    pair = torch.softmax(logits[[tiny.yes_id, tiny.no_id]], dim=0)
    assert abs(float(pair[0]) - ours[0]) < 1e-6


def test_two_adapters_attached_side_by_side(tiny, shard, tmp_path):
    train(tiny, shard, tmp_path / "a")
    train(tiny, shard, tmp_path / "b", TrainSettings(**{**FAST.to_dict(), "seed": 99}))
    first = load_adapter_model(tiny, tmp_path / "a")
    second = load_adapter_model(tiny, tmp_path / "b")
    alone = tiny.score(shard[0], model=load_adapter_model(tiny, tmp_path / "a"))
    np.testing.assert_array_equal(tiny.score(shard[0], model=first), alone)
    assert np.abs(tiny.score(shard[0], model=second) - alone).max() > 1e-6


def test_bad_training_inputs(tiny, tmp_path):
    with pytest.raises(UsageError):
        train_adapter(tiny, ["a"], [1, 0], ["x"], FAST, tmp_path / "a")
    with pytest.raises(ConflictError):
        train_adapter(tiny, [], [], [], FAST, tmp_path / "a")


def test_training_follows_the_length_grouping_setting(tiny, shard, tmp_path):
    plain = TrainSettings(**{**FAST.to_dict(), "group_by_length": False})
    grouped = train(tiny, shard, tmp_path / "grouped")
    assert train(tiny, shard, tmp_path / "plain", plain).weights_sha256 != grouped.weights_sha256
    assert train(tiny, shard, tmp_path / "again").weights_sha256 == grouped.weights_sha256


def test_training_follows_the_dropout_sampler_setting(tiny, shard, tmp_path):
    uniform = TrainSettings(**{**FAST.to_dict(), "dropout_sampler": "uniform"})
    packed = train(tiny, shard, tmp_path / "packed")
    assert train(tiny, shard, tmp_path / "uniform", uniform).weights_sha256 != packed.weights_sha256


def test_training_follows_the_prefix_sharing_setting(tiny, shard, tmp_path):
    full_rows = TrainSettings(**{**FAST.to_dict(), "share_prefix": False})
    shared = train(tiny, shard, tmp_path / "shared")
    assert train(tiny, shard, tmp_path / "full", full_rows).weights_sha256 != shared.weights_sha256
    assert train(tiny, shard, tmp_path / "again").weights_sha256 == shared.weights_sha256


def test_shared_prefix_gives_the_full_rows_loss_and_gradients(tiny, shard):
    """Without dropout, running the batch's common prefix once is the same function of the
    LoRA weights as running every row in full: loss and gradients agree to float noise."""
    from peft import get_peft_model

    torch.manual_seed(0)
    settings = TrainSettings(dropout=0.0)
    model = get_peft_model(tiny.shared_weight_copy(), _lora_config(settings))
    with torch.no_grad():  # B starts at zero, which would leave A's gradient zero
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    lora = {name: p for name, p in model.named_parameters() if p.requires_grad}
    rows = tiny.encode(shard[0][:6])
    assert shared_prefix_length(rows) > 20  # the Alpaca preamble and the instruction
    targets = torch.tensor([tiny.yes_id, tiny.no_id] * 3)

    def loss_and_grads(share_prefix):
        model.zero_grad(set_to_none=True)
        states = tiny.batch_last_states(model, rows, share_prefix)
        head = model.get_output_embeddings().weight
        loss = torch.nn.functional.cross_entropy(states @ head.T, targets)
        loss.backward()
        return loss.detach(), {name: p.grad.clone() for name, p in lora.items()}

    full_loss, full_grads = loss_and_grads(False)
    shared_loss, shared_grads = loss_and_grads(True)
    assert torch.allclose(shared_loss, full_loss, atol=1e-6)
    for name, grad in full_grads.items():
        assert grad.abs().max() > 0, name
        torch.testing.assert_close(shared_grads[name], grad, rtol=1e-4, atol=1e-6)
