"""Training attention kernel "grouped": eager attention in fewer passes over the scores.

transformers' eager kernel copies every key/value head once per query head that shares it
(grouped-query attention), scales and masks the (B, H, T, T') scores in two passes, and
runs the softmax through a float32 copy of them. In bfloat16 on a CPU those passes cost
about as much as the attention matmuls. Here each key/value head multiplies its whole group
of query heads in one matmul, the scale is folded into the mask add, and the softmax keeps
the compute dtype. The same function of the inputs, rounded differently: adapters trained
with it record it (`TrainSettings.attention`).
"""

from __future__ import annotations

from typing import Any

import torch

from apa_console.errors import ConflictError

GROUPED = "grouped"
# Keyword arguments that change what attention computes (logit soft-capping, attention
# sinks); this kernel does not implement them, so a model that passes them is refused.
_UNSUPPORTED = ("softcap", "s_aux")


def grouped_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """transformers' attention interface: query (B, H, T, D), key and value (B, KV, T', D)
    with H a multiple of KV; returns the output (B, T, H, D) and the weights (B, H, T, T')."""
    for name in _UNSUPPORTED:
        if kwargs.get(name) is not None:
            raise ConflictError(f"attention {GROUPED!r} does not support {name}; train this "
                                "model with --dtype float32 (sdpa attention)")
    batch, heads, length, width = query.shape
    kv_heads = key.shape[1]
    group = heads // kv_heads
    # Query heads kv·group … kv·group + group − 1 share key/value head kv (repeat_kv's order).
    grouped_query = query.reshape(batch, kv_heads, group * length, width)
    scores = torch.matmul(grouped_query, key.transpose(2, 3)).view(batch, heads, length, -1)
    if attention_mask is None:
        scores = scores * scaling
    else:
        scores = torch.add(attention_mask, scores, alpha=scaling)
    weights = torch.softmax(scores, dim=-1)
    if dropout > 0.0 and module.training:
        weights = torch.nn.functional.dropout(weights, p=dropout, training=True)
    output = torch.matmul(weights.view(batch, kv_heads, group * length, -1), value)
    output = output.view(batch, heads, length, width).transpose(1, 2).contiguous()
    return output, weights


def register_grouped_attention() -> None:
    """Make "grouped" a name `set_attn_implementation` accepts (idempotent), with eager's
    additive mask: transformers builds no mask at all for an attention name it has no mask
    function for, which would make attention non-causal."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(GROUPED, grouped_attention)
    AttentionMaskInterface.register(GROUPED, eager_mask)
