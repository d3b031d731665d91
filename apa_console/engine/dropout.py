"""LoRA dropout masks drawn cheaply and deterministically from the seeded global generator.

peft puts an `nn.Dropout` on the input of every LoRA layer (q_proj and v_proj: 60 layers in
SmolLM2), and on a CPU drawing those masks is a noticeable part of a training step. The
samplers here keep inverted dropout's meaning
(each element kept with probability 1 - p, kept ones scaled so the mean is unchanged) and
are swapped in after peft builds the model; they hold no parameters, so saved adapters keep
peft's format. Which sampler trained an adapter is one of its settings (`TrainSettings.
dropout_sampler`): the masks differ, so retraining must use the same one to reproduce it.
"""

from __future__ import annotations

import torch

_BITS = 16
_LEVELS = 1 << _BITS


class UniformMaskDropout(torch.nn.Module):
    """Sampler "uniform": one float from `torch.rand` per element (cheaper than
    `nn.Dropout`'s `bernoulli_`). Kept for adapters trained with it (engine version 1)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape, dtype=x.dtype, device=x.device) >= self.p
        return x * keep.to(x.dtype).mul_(1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}, sampler=uniform"


class PackedBitsDropout(torch.nn.Module):
    """Sampler "packed16": 16 random bits per element, four elements per 64-bit draw.

    `torch.rand` spends a 32-bit generator draw per element; here one 64-bit value (two
    draws) serves four elements, and the mask is built in one pass.
    p is rounded to a multiple of 2^-16 (0.05 becomes 0.0500031) and kept elements are
    scaled by the exact inverse of the rounded keep probability, so E[output] = input.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)
        self.dropped_levels = round(self.p * _LEVELS)
        self.threshold = self.dropped_levels - _LEVELS // 2  # keep iff signed bits >= this
        self.scale = _LEVELS / (_LEVELS - self.dropped_levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.dropped_levels == 0:
            return x
        count = x.numel()
        # (-2**63, None) is the full 64-bit range; random_() alone leaves the top bit 0.
        words = torch.empty((count + 3) // 4, dtype=torch.int64, device=x.device)
        bits = words.random_(-(2**63), None).view(torch.int16)[:count].view(x.shape)
        scale = torch.full((), self.scale, dtype=x.dtype, device=x.device)
        mask = torch.where(bits >= self.threshold, scale, torch.zeros_like(scale))
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}, sampler=packed16"


DROPOUT_SAMPLERS: dict[str, type[torch.nn.Module]] = {
    "packed16": PackedBitsDropout,
    "uniform": UniformMaskDropout,
}


def use_dropout_sampler(peft_model: torch.nn.Module, sampler: str) -> None:
    """Swap peft's LoRA `nn.Dropout` modules for `sampler`'s module, in place. Leaves
    anything it does not recognise alone."""
    make = DROPOUT_SAMPLERS[sampler]
    for module in peft_model.modules():
        dropouts = getattr(module, "lora_dropout", None)
        if not isinstance(dropouts, torch.nn.ModuleDict):
            continue
        for name, dropout in list(dropouts.items()):
            if isinstance(dropout, torch.nn.Dropout):
                dropouts[name] = make(dropout.p)
