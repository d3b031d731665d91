"""RMSNorm layers swapped for torch's own `rms_norm` op: the same numbers, fewer temporaries.

Llama-family models write RMSNorm as separate elementwise ops (square, mean, add, rsqrt, two
multiplies), each allocating a full activation tensor. `torch.nn.functional.rms_norm` does
the same arithmetic inside one op (on CPU still several passes internally, so the gain is
small). A layer is swapped only after a probe shows the op gives
bit-identical output for it, so scores, hidden states and trained adapters do not change
(adapter hashes from before the swap still verify); any norm written differently (Gemma's
`1 + weight`, another epsilon placement, bf16 rounding) keeps its own code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class FusedRMSNorm(torch.nn.Module):
    """RMSNorm over the last dimension through `F.rms_norm`, sharing the original weight."""

    def __init__(self, weight: torch.nn.Parameter, eps: float):
        super().__init__()
        self.weight = weight
        self.variance_epsilon = eps

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(hidden_states, (hidden_states.shape[-1],), self.weight,
                          self.variance_epsilon)

    def extra_repr(self) -> str:
        return f"{tuple(self.weight.shape)}, eps={self.variance_epsilon}, fused"


def _candidate(module: torch.nn.Module) -> FusedRMSNorm | None:
    """A fused twin of `module` if it is an RMSNorm that the fused kernel reproduces exactly."""
    weight = getattr(module, "weight", None)
    eps = getattr(module, "variance_epsilon", None)
    if (isinstance(module, FusedRMSNorm) or not type(module).__name__.endswith("RMSNorm")
            or not isinstance(weight, torch.nn.Parameter) or weight.dim() != 1
            or not isinstance(eps, float)):
        return None
    fused = FusedRMSNorm(weight, eps)
    generator = torch.Generator().manual_seed(0)
    # Spread magnitudes so rounding differences, if the formulas differ, would show.
    magnitudes = torch.logspace(-3, 3, 5)[:, None]
    probe = torch.randn((3, 5, weight.shape[0]), generator=generator) * magnitudes
    probe = probe.to(device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        if not torch.equal(module(probe), fused(probe)):
            return None
    return fused


def fuse_rms_norms(model: torch.nn.Module) -> int:
    """Swap every exactly reproducible RMSNorm in `model` for `FusedRMSNorm`, in place.

    Returns how many were swapped. Parameters are shared, not copied, so the state dict and
    any weight-sharing copies (`Backbone.shared_weight_copy`) are unaffected.
    """
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            fused = _candidate(child)
            if fused is not None:
                setattr(parent, name, fused)
                swapped += 1
    return swapped
