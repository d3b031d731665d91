"""How much arithmetic a forward pass and a training step of the backbone do, in GFLOP.

The counting rule is stated once, in `benchmarks.engine_speed`'s module docstring.
"""

from __future__ import annotations

import functools

import torch

from apa_console.engine.backbone import Backbone


@functools.cache
def _flop_coefficients(model: torch.nn.Module) -> tuple[int, int]:
    """(Linear parameters of the decoder, layers × attention width) of `model`, counted once:
    `forward_gflop` runs between a step's end and its clock stopping."""
    linear_params = sum(module.weight.numel() for module in model.get_decoder().modules()
                        if isinstance(module, torch.nn.Linear))
    config = model.config
    attention_width = config.num_attention_heads * (
        getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    )
    return linear_params, config.num_hidden_layers * attention_width


def forward_gflop_parts(backbone: Backbone, tokens: float, after: int = 0) -> tuple[float, float]:
    """(Linear, attention) forward GFLOP for a row of `tokens` tokens that follows `after`
    tokens whose keys and values are already computed (a shared prefix), per the module
    docstring."""
    linear_params, attention = _flop_coefficients(backbone.model)
    return (2 * linear_params * tokens / 1e9,
            2 * attention * (tokens**2 + 2 * after * tokens) / 1e9)


def forward_gflop(backbone: Backbone, tokens: float, after: int = 0) -> float:
    return sum(forward_gflop_parts(backbone, tokens, after))


def batch_gflop_parts(backbone: Backbone, lengths: list[int],
                      prefix: int) -> tuple[float, float, int]:
    """(Linear GFLOP, attention GFLOP, tokens run) of one forward pass over a batch whose
    rows share their first `prefix` tokens, run once (0: every row runs all its tokens)."""
    if prefix == 0:
        parts = [forward_gflop_parts(backbone, n) for n in lengths]
        tokens = sum(lengths)
    else:
        parts = [forward_gflop_parts(backbone, prefix)] + [
            forward_gflop_parts(backbone, n - prefix, after=prefix) for n in lengths]
        tokens = prefix + sum(n - prefix for n in lengths)
    return sum(p[0] for p in parts), sum(p[1] for p in parts), tokens


def training_step_gflop(backbone: Backbone, lengths: list[int], prefix: int,
                        trainable_params: int) -> float:
    """GFLOP of one training step (forward and backward), per the module docstring."""
    linear, attention, tokens = batch_gflop_parts(backbone, lengths, prefix)
    return 2 * linear + 3 * attention + 6 * trainable_params * tokens / 1e9
