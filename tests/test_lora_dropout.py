"""LoRA dropout samplers: the right share kept, unbiased, seeded, off in eval, dtype kept."""

from __future__ import annotations

import pytest
import torch

from apa_console.engine.dropout import (
    DROPOUT_SAMPLERS,
    PackedBitsDropout,
    UniformMaskDropout,
    use_dropout_sampler,
)


@pytest.mark.parametrize("sampler", sorted(DROPOUT_SAMPLERS))
@pytest.mark.parametrize("p", [0.05, 0.25])
def test_sampler_keeps_the_right_share_unbiased_and_seeded(sampler, p):
    dropout = DROPOUT_SAMPLERS[sampler](p).train()
    x = torch.ones(400, 1001)  # an odd count: the packed sampler's last draw is partial
    state = torch.random.get_rng_state()
    kept = dropout(x)
    values = kept.unique().tolist()
    assert len(values) == 2 and values[0] == 0.0
    share = float((kept > 0).float().mean())
    assert abs(share - (1 - p)) < 4 * (p * (1 - p) / x.numel()) ** 0.5 + 2**-16
    assert abs(float(kept.mean()) - 1.0) < 0.01  # inverted dropout: mean unchanged
    torch.random.set_rng_state(state)
    assert torch.equal(dropout(x), kept)  # same generator state, same mask
    assert not torch.equal(dropout(x), kept)  # and a fresh mask after it
    assert dropout.eval()(x) is x
    assert DROPOUT_SAMPLERS[sampler](0.0).train()(x) is x


def test_packed_masks_use_every_bit_lane_alike():
    """All four 16-bit lanes of each 64-bit draw must drop alike (torch's plain int64
    random_() never sets the top bit, which would make every fourth lane keep all)."""
    dropout = PackedBitsDropout(0.5).train()
    kept = dropout(torch.ones(200_000, 4)) > 0
    shares = kept.float().mean(dim=0)
    assert torch.all((shares - 0.5).abs() < 0.01), shares


def test_packed_sampler_rescales_by_the_rounded_keep_probability():
    dropout = PackedBitsDropout(0.05)
    assert dropout.dropped_levels == 3277
    assert dropout.scale == pytest.approx(1 / (1 - 3277 / 65536), rel=1e-12)
    kept = dropout.train()(torch.ones(10, 10, dtype=torch.bfloat16))
    assert kept.dtype == torch.bfloat16


def test_swap_replaces_only_peft_dropout_modules():
    holder = torch.nn.Module()
    holder.lora_dropout = torch.nn.ModuleDict({"default": torch.nn.Dropout(0.1),
                                               "other": torch.nn.Identity()})
    use_dropout_sampler(holder, "packed16")
    assert isinstance(holder.lora_dropout["default"], PackedBitsDropout)
    assert holder.lora_dropout["default"].p == 0.1
    assert isinstance(holder.lora_dropout["other"], torch.nn.Identity)
    use_dropout_sampler(holder, "uniform")  # already swapped: not an nn.Dropout any more
    assert isinstance(holder.lora_dropout["default"], PackedBitsDropout)
    assert UniformMaskDropout(0.1).p == 0.1
