"""The grouped training attention kernel computes what transformers' eager kernel does."""

from __future__ import annotations

import pytest
import torch
from test_backbone import make_prompts
from transformers.models.llama.modeling_llama import eager_attention_forward

from apa_console.engine.attention import GROUPED, grouped_attention, register_grouped_attention
from apa_console.engine.backbone import Backbone
from apa_console.errors import ConflictError


class _Heads(torch.nn.Module):
    num_key_value_groups = 3


def _inputs(masked: bool):
    generator = torch.Generator().manual_seed(0)
    query = torch.randn(2, 6, 5, 8, generator=generator)
    key = torch.randn(2, 2, 9, 8, generator=generator)  # 4 cached positions + 5 new
    value = torch.randn(2, 2, 9, 8, generator=generator)
    mask = None
    if masked:  # causal over the new positions, every cached one visible, one row padded
        mask = torch.zeros(2, 1, 5, 9)
        mask[:, :, :, 4:] = torch.triu(torch.full((5, 5), float("-inf")), diagonal=1)
        mask[1, :, :, 2] = float("-inf")
    return query, key, value, mask


@pytest.mark.parametrize("masked", [False, True])
def test_grouped_matches_eager_forward_and_backward(masked):
    module = _Heads().eval()
    results = []
    for kernel in (eager_attention_forward, grouped_attention):
        query, key, value, mask = (t.clone().requires_grad_(True) if t is not None and i < 3
                                   else t for i, t in enumerate(_inputs(masked)))
        output, weights = kernel(module, query, key, value, mask, scaling=8 ** -0.5)
        (output * torch.linspace(-1, 1, output.numel()).view_as(output)).sum().backward()
        results.append((output, weights, query.grad, key.grad, value.grad))
    assert results[1][0].shape == (2, 5, 6, 8)  # (B, T, H, D), as the layers expect
    for eager, grouped in zip(*results):
        torch.testing.assert_close(grouped, eager, rtol=1e-5, atol=1e-6)


def test_grouped_in_bfloat16_stays_close_to_float32():
    module = _Heads().eval()
    query, key, value, mask = _inputs(True)
    exact, _ = eager_attention_forward(module, query, key, value, mask, scaling=8 ** -0.5)
    low, _ = grouped_attention(module, query.bfloat16(), key.bfloat16(), value.bfloat16(),
                               mask.bfloat16(), scaling=8 ** -0.5)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), exact, rtol=0.05, atol=0.05)


def test_grouped_refuses_what_it_does_not_compute():
    query, key, value, mask = _inputs(True)
    with pytest.raises(ConflictError, match="softcap"):
        grouped_attention(_Heads(), query, key, value, mask, scaling=1.0, softcap=30.0)


def test_a_model_on_the_grouped_kernel_computes_what_eager_does(tiny_model_dir):
    # Through transformers, so the causal mask it builds for the kernel is exercised too:
    # with a padded batch and no mask (full rows) and after a cached shared prefix.
    backbone = Backbone.load(tiny_model_dir, device="cpu", dtype="float32")
    register_grouped_attention()
    token_ids = backbone.encode(make_prompts(6))
    states = {}
    for kernel in ("eager", GROUPED):
        model = backbone.shared_weight_copy()
        model.set_attn_implementation(kernel)
        with torch.no_grad():
            states[kernel] = [backbone.batch_last_states(model, token_ids, share_prefix=shared)
                              for shared in (False, True)]
    for eager, grouped in zip(states["eager"], states[GROUPED]):
        torch.testing.assert_close(grouped, eager, rtol=1e-4, atol=1e-5)
