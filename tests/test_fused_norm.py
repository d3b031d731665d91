"""The fused RMSNorm swap: bit-identical forward and backward, and only where it is exact."""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from apa_console.engine.backbone import Backbone
from apa_console.engine.norms import FusedRMSNorm, fuse_rms_norms


def _llama_with_random_norm_weights() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, vocab_size=97)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name:  # ones by default would hide a misapplied weight
                parameter.uniform_(0.5, 1.5)
    return model


def _logits_and_input_grad(model: torch.nn.Module, ids: torch.Tensor):
    embeddings = model.get_input_embeddings()(ids).detach().requires_grad_(True)
    logits = model(inputs_embeds=embeddings).logits
    logits[:, -1].square().sum().backward()
    return logits.detach(), embeddings.grad


def test_swap_is_bit_identical_forward_and_backward_and_keeps_the_state_dict():
    model = _llama_with_random_norm_weights()
    ids = torch.randint(0, 97, (3, 11), generator=torch.Generator().manual_seed(1))
    keys_before = list(model.state_dict())
    logits_before, grad_before = _logits_and_input_grad(model, ids)
    assert fuse_rms_norms(model) == 2 * 2 + 1  # two per layer and the final norm
    logits_after, grad_after = _logits_and_input_grad(model, ids)
    assert torch.equal(logits_before, logits_after)
    assert torch.equal(grad_before, grad_after)
    assert list(model.state_dict()) == keys_before
    assert fuse_rms_norms(model) == 0  # already swapped


class OnePlusWeightRMSNorm(torch.nn.Module):
    """Gemma's variant: scales by (1 + weight). Looks like an RMSNorm, computes otherwise."""

    def __init__(self, size: int):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(size))
        self.variance_epsilon = 1e-6

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return x * scale * (1.0 + self.weight)


def test_a_norm_the_fused_kernel_does_not_reproduce_is_left_alone():
    holder = torch.nn.Sequential(OnePlusWeightRMSNorm(8), torch.nn.Linear(8, 8))
    assert fuse_rms_norms(holder) == 0
    assert isinstance(holder[0], OnePlusWeightRMSNorm)


def test_loaded_backbones_use_the_fused_norms(tiny_model_dir):
    backbone = Backbone.load(tiny_model_dir, device="cpu")
    norms = [m for m in backbone.model.modules() if type(m).__name__.endswith("RMSNorm")]
    assert norms and all(isinstance(m, FusedRMSNorm) for m in norms)
    copy = backbone.shared_weight_copy()
    copied = [m for m in copy.modules() if isinstance(m, FusedRMSNorm)]
    assert all(a.weight is b.weight for a, b in zip(norms, copied))  # shared, not copied
