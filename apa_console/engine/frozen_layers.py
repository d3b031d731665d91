"""Training only the top decoder layers: the layers below the lowest adapted one are frozen
and see no adapter, so their output for a sample is the same in every epoch. It is computed
once per sample (`frozen_states`) and each step runs only the adapted layers on it
(`top_last_states`): forward and backward both shrink to the top layers' share.

The states are kept in memory for the adapter's training: tokens × hidden × 4 bytes a sample
in float32 (about 0.6 MB for a 254-token prompt on SmolLM2), so 1,000 samples hold ~0.6 GB.
Rows are right-padded without a padding mask, as everywhere in the engine: under causal
attention a real token never reads the padding after it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from apa_console.engine.batching import length_sorted_batches
from apa_console.progress import NEVER_CANCELLED, CancelToken

STATE_BATCH_SIZE = 8  # rows per pass through the frozen layers


def first_adapted_layer(layer_count: int, lora_layers: int | None) -> int:
    """Index of the lowest layer that gets LoRA (0: every layer, nothing to cache)."""
    if lora_layers is None:
        return 0
    return max(0, layer_count - lora_layers)


@contextmanager
def decoder_slice(decoder: torch.nn.Module, start: int, stop: int,
                  final_norm: bool) -> Iterator[torch.nn.Module]:
    """`decoder` running only its layers [start, stop), and its final norm only if asked;
    the full decoder comes back on exit (the layer objects are the same, never copied)."""
    layers, norm = decoder.layers, decoder.norm
    decoder.layers = torch.nn.ModuleList(list(layers)[start:stop])
    if not final_norm:
        decoder.norm = torch.nn.Identity()
    try:
        yield decoder
    finally:
        decoder.layers, decoder.norm = layers, norm


def frozen_states(decoder: torch.nn.Module, token_ids: Sequence[list[int]], split: int,
                  pad_id: int, cancel: CancelToken = NEVER_CANCELLED) -> list[torch.Tensor]:
    """Each sample's hidden states after layer `split - 1` (tokens × hidden), no grad."""
    device = next(decoder.parameters()).device
    states: list[torch.Tensor | None] = [None] * len(token_ids)
    with torch.no_grad(), decoder_slice(decoder, 0, split, final_norm=False):
        for rows in length_sorted_batches(token_ids, STATE_BATCH_SIZE):
            cancel.raise_if_cancelled()
            width = max(1, max(len(token_ids[row]) for row in rows))
            batch = torch.full((len(rows), width), pad_id, dtype=torch.long)
            for index, row in enumerate(rows):
                batch[index, :len(token_ids[row])] = torch.tensor(token_ids[row])
            hidden = decoder(input_ids=batch.to(device), attention_mask=None).last_hidden_state
            for index, row in enumerate(rows):
                states[row] = hidden[index, :len(token_ids[row])].clone()
    return states  # type: ignore[return-value]


def top_last_states(decoder: torch.nn.Module, states: Sequence[torch.Tensor],
                    split: int) -> torch.Tensor:
    """Final-norm state at each row's last token, running layers `split`… on cached states
    (B, hidden); keeps grads for the adapted layers."""
    lengths = [len(state) for state in states]
    padded = states[0].new_zeros((len(states), max(lengths), states[0].shape[-1]))
    for row, state in enumerate(states):
        padded[row, :len(state)] = state
    with decoder_slice(decoder, split, len(decoder.layers), final_norm=True):
        hidden = decoder(inputs_embeds=padded, attention_mask=None).last_hidden_state
    last = torch.tensor(lengths, device=hidden.device) - 1
    return hidden[torch.arange(len(states), device=hidden.device), last]
