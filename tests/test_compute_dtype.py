"""The base model's compute dtype: bfloat16 training is deterministic and recorded, records
from before the setting keep their old dtype, and `auto` follows the hardware."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_backbone import make_prompts

from apa_console.engine import devices
from apa_console.engine.backbone import Backbone
from apa_console.engine.training import TrainSettings, train_adapter
from apa_console.errors import UsageError

BF16 = TrainSettings(epochs=1, batch_size=4, lr=5e-3, seed=3, dtype="bfloat16")


@pytest.fixture(scope="module")
def tiny(tiny_model_dir) -> Backbone:
    return Backbone.load(tiny_model_dir, device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def shard():
    return make_prompts(8), [index % 2 for index in range(8)], [f"s{index}" for index in range(8)]


def _train(tiny, shard, out, settings):
    prompts, labels, ids = shard
    return train_adapter(tiny, prompts, labels, ids, settings, out)


def test_bfloat16_training_is_bit_identical_and_recorded(tiny, shard, tmp_path):
    first = _train(tiny, shard, tmp_path / "a", BF16)
    second = _train(tiny, shard, tmp_path / "b", BF16)
    assert first.weights_sha256 == second.weights_sha256
    assert first.loss_curve == second.loss_curve
    assert first.settings["dtype"] == "bfloat16"
    fp32 = _train(tiny, shard, tmp_path / "c", TrainSettings(**{**BF16.to_dict(),
                                                                "dtype": "float32"}))
    assert fp32.weights_sha256 != first.weights_sha256
    assert tiny.dtype == torch.float32  # the caller's backbone is untouched


def test_a_backbone_loads_each_dtype_once_and_shares_it(tiny):
    bf16 = tiny.in_dtype(torch.bfloat16)
    assert bf16.dtype == torch.bfloat16 and bf16.model.dtype == torch.bfloat16
    assert bf16 is tiny.in_dtype(torch.bfloat16) and bf16.in_dtype(torch.float32) is tiny
    assert bf16.tokenizer is tiny.tokenizer and bf16.info == tiny.info
    prompts = make_prompts(6)
    p32, p16 = tiny.score(prompts), bf16.score(prompts)
    assert p16.dtype == np.float64 and np.all((p16 > 0) & (p16 < 1))
    assert np.abs(p32 - p16).max() < 0.05  # same weights, rounded to bf16


def test_records_without_a_dtype_keep_the_device_dtype_they_were_trained_in():
    legacy = {key: value for key, value in TrainSettings().to_dict().items()
              if key not in ("dtype", "engine_version")}
    old = TrainSettings.from_dict(legacy)
    assert old.dtype is None and old.engine_version == 1
    assert old.resolved(torch.device("cpu")).dtype == "float32"
    v2 = TrainSettings.from_dict({**legacy, "engine_version": 2})
    assert v2.resolved(torch.device("cpu")).dtype == "float32"
    assert TrainSettings.from_dict(TrainSettings().to_dict()).dtype == "auto"
    with pytest.raises(UsageError, match="dtype"):
        TrainSettings(dtype="float16")


def test_auto_picks_bfloat16_only_where_the_hardware_has_it(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.delenv(devices.DTYPE_ENV, raising=False)
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: True)
    assert devices.preferred_dtype(cpu) == torch.bfloat16
    assert TrainSettings().resolved(cpu).dtype == "bfloat16"
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: False)
    assert devices.preferred_dtype(cpu) == torch.float32
    monkeypatch.setenv(devices.DTYPE_ENV, "bfloat16")
    assert devices.preferred_dtype(cpu) == torch.bfloat16
    monkeypatch.setenv(devices.DTYPE_ENV, "float16")
    with pytest.raises(UsageError, match="float16"):
        devices.preferred_dtype(cpu)


def test_settings_that_differ_only_in_how_the_dtype_is_spelled_train_alike():
    cpu = torch.device("cpu")
    explicit = TrainSettings(dtype="float32")
    legacy = TrainSettings.from_dict({**explicit.to_dict(), "dtype": None, "engine_version": 2})
    assert legacy.trains_like(explicit, cpu)
    assert not TrainSettings(dtype="bfloat16").trains_like(explicit, cpu)


def test_bfloat16_trains_with_grouped_attention_on_a_copy_only(tiny, shard, tmp_path):
    cpu = torch.device("cpu")
    assert BF16.resolved(cpu).attention == "grouped"
    assert TrainSettings(dtype="float32").resolved(cpu).attention == "sdpa"
    legacy = TrainSettings.from_dict({"engine_version": 2})
    assert legacy.resolved(cpu).attention == "sdpa"
    v3 = TrainSettings.from_dict({**BF16.to_dict(), "engine_version": 3})
    assert v3.resolved(cpu).attention == "eager"  # what auto meant when it was trained
    assert not v3.trains_like(BF16, cpu)
    result = _train(tiny, shard, tmp_path / "a", BF16)
    assert result.settings["attention"] == "grouped"
    again = _train(tiny, shard, tmp_path / "b", BF16)
    assert again.weights_sha256 == result.weights_sha256
    eager = _train(tiny, shard, tmp_path / "c", TrainSettings.from_dict(
        {**BF16.to_dict(), "attention": "eager"}))
    assert eager.weights_sha256 != result.weights_sha256  # the kernel reaches the weights
    assert tiny.in_dtype(torch.bfloat16).model.config._attn_implementation == "sdpa"
    with pytest.raises(UsageError, match="attention"):
        TrainSettings(attention="flash")


def test_engine_version_3_in_float32_trains_the_bits_version_2_did(tiny, shard, tmp_path):
    fp32 = TrainSettings(**{**BF16.to_dict(), "dtype": "float32"})
    v2 = {key: value for key, value in fp32.to_dict().items()
          if key not in ("dtype", "attention")} | {"engine_version": 2}
    now = _train(tiny, shard, tmp_path / "v3", fp32)
    then = _train(tiny, shard, tmp_path / "v2", TrainSettings.from_dict(v2))
    assert now.weights_sha256 == then.weights_sha256
