"""The LLM behind every adapter (from `model_files`): loading, P(Yes) scoring, hidden states.

Numerics that the rest of apa-console relies on:
- Batches are right-padded. In a causal decoder a real token never attends to a later
  position, so padding after the text cannot change its states (not even without a padding
  mask, which is therefore left out): scores and hidden states do not depend on batch
  composition beyond float noise (tested to 1e-5 on the tiny model).
- Scoring computes the LM head only at the last prompt position and only for the two answer
  rows: P(Yes) = softmax(logit_yes, logit_no)[0], evaluated in float64 as a sigmoid of the
  difference.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from apa_console.engine.answers import AS_WRITTEN, answer_token_ids
from apa_console.engine.batching import (
    length_sorted_batches,
    pad_token_id,
    rate_event,
    shared_prefix_length,
)
from apa_console.engine.choices import HIDDEN_STATES
from apa_console.engine.devices import (
    choose_device,
    dtype_named,
    preferred_dtype,
    warn_if_emulated,
)
from apa_console.engine.model_files import model_fingerprint, resolve_model_dir
from apa_console.engine.norms import fuse_rms_norms
from apa_console.progress import NEVER_CANCELLED, CancelToken, ProgressCallback, ignore_progress
from apa_console.prompting import sample_prompt
from apa_console.samples import Sample

# Prompts longer than this keep their last tokens: the answer position must survive. The
# same as TrainSettings.max_length, so a sample is scored on the tokens it was trained on
# (TALLRec's cutoff, well above its prompts' length).
DEFAULT_MAX_PROMPT_TOKENS = 512
# Rows per forward pass when scoring or embedding: with length-sorted batches, larger batches
# gained nothing in the engine benchmark, and 8 keeps activations small and progress frequent.
SCORE_BATCH_SIZE = 8


def _load_weights(directory: Path, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """The frozen causal LM in `dtype` on `device`, eval mode, norms fused where exact."""
    from transformers import AutoModelForCausalLM

    causal_lm = AutoModelForCausalLM.from_pretrained(
        directory, dtype=dtype, attn_implementation="sdpa"
    )
    causal_lm.to(device).eval()
    causal_lm.requires_grad_(False)
    fuse_rms_norms(causal_lm)  # only where bit-identical: no score or adapter changes
    return causal_lm


def split_causal_lm(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The decoder body and LM head of a causal LM, a peft-wrapped one, or a patched one."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return inner.get_decoder(), inner.get_output_embeddings()


class Backbone:
    """A loaded causal LM with its tokenizer, answer tokens and batched scoring.

    Attributes: `model` (the base causal LM, frozen, in eval mode), `tokenizer`, `device`,
    `dtype`, `yes_id`, `no_id`, `info` (the dict recorded as store meta `model`), `directory`.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        device: torch.device,
        dtype: torch.dtype,
        info: dict[str, Any],
        directory: Path,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.dtype = dtype
        self.info = info
        self.directory = directory
        self.yes_id = int(info["yes_token_id"])
        self.no_id = int(info["no_token_id"])
        self.max_prompt_tokens = min(
            DEFAULT_MAX_PROMPT_TOKENS,
            int(getattr(model.config, "max_position_embeddings", DEFAULT_MAX_PROMPT_TOKENS)),
        )
        self.pad_id = pad_token_id(tokenizer)
        # The same model in other compute dtypes, loaded on first use and shared by all of
        # them (`in_dtype`).
        self._by_dtype: dict[torch.dtype, Backbone] = {dtype: self}

    # -- loading -----------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        model: str | os.PathLike | None = None,
        device: str | None = None,
        *,
        cache_root: Path | None = None,
        before_weights: Callable[[dict[str, Any]], None] | None = None,
        dtype: str | None = None,
        answer_style: str = AS_WRITTEN,
    ) -> Backbone:
        """Load `model` onto `device` (None: CUDA when present, else CPU) in the compute
        dtype `dtype` ("float32", "bfloat16"; None: `preferred_dtype` for the device).

        `model` None means the default SmolLM2, through the model cache at `cache_root`
        (`model_cache_root()` when None). `before_weights` sees the model's identity
        (name, source, fingerprint) before the weights load, so a caller can refuse a model
        cheaply (`workflows.model.open_backbone` refuses one the store was not built with).
        `answer_style` picks the answer tokens (`answers.py`); the fingerprint covers them.
        """
        name, source, directory = resolve_model_dir(model, cache_root)
        torch_device, _ = choose_device(device)
        compute = dtype_named(dtype) if dtype else preferred_dtype(torch_device)
        warn_if_emulated(torch_device, compute)
        from transformers import AutoTokenizer
        from transformers.utils import logging as transformers_logging

        # Its tqdm bars would write through the CLI's and the TUI's own progress display.
        transformers_logging.disable_progress_bar()

        tokenizer = AutoTokenizer.from_pretrained(directory)
        yes_id, no_id = answer_token_ids(tokenizer, answer_style)
        fingerprint = model_fingerprint(directory, yes_id, no_id, len(tokenizer))
        if before_weights is not None:
            before_weights({"name": name, "source": source, "fingerprint": fingerprint})
        causal_lm = _load_weights(directory, torch_device, compute)
        config = causal_lm.config
        info = {
            "name": name,
            "source": source,
            "fingerprint": fingerprint,
            "architecture": (config.architectures or [type(causal_lm).__name__])[0],
            "hidden_size": int(config.hidden_size),
            "layers": int(config.num_hidden_layers),
            "parameters": int(sum(p.numel() for p in causal_lm.parameters())),
            "yes_token_id": yes_id,
            "no_token_id": no_id,
            "answer_style": answer_style,
        }
        return cls(causal_lm, tokenizer, torch_device, compute, info, directory)

    def in_dtype(self, dtype: torch.dtype) -> Backbone:
        """This backbone computing in `dtype`: itself, or the same weights loaded from the
        model directory in that dtype (once; loading, not casting, keeps every dtype's
        weights exactly what training in that dtype has always used)."""
        sibling = self._by_dtype.get(dtype)
        if sibling is None:
            warn_if_emulated(self.device, dtype)
            model = _load_weights(self.directory, self.device, dtype)
            sibling = Backbone(model, self.tokenizer, self.device, dtype, self.info,
                               self.directory)
            sibling._by_dtype = self._by_dtype
            self._by_dtype[dtype] = sibling
        return sibling

    # -- text --------------------------------------------------------------------------

    @staticmethod
    def prompts_for(samples: Iterable[Sample]) -> list[str]:
        """The TALLRec Alpaca prompt of each sample; its answer token follows it."""
        return [sample_prompt(sample) for sample in samples]

    @staticmethod
    def hidden_texts_for(samples: Iterable[Sample], pooling: str = "mean") -> list[str]:
        """The text `hidden_states` should embed for a sample. For the mean: its TALLRec
        input (liked and disliked titles plus the target); the instruction and Alpaca
        wrapper are the same for every sample, so they would only dilute it. For the last
        token: the whole prompt, whose last state has read all of it."""
        if pooling == "last":
            return [sample_prompt(sample) for sample in samples]
        return [sample.input for sample in samples]

    def encode(self, texts: Sequence[str], max_length: int | None = None) -> list[list[int]]:
        """Token ids per text, no special tokens added; an overlong text keeps its end."""
        limit = max_length or self.max_prompt_tokens
        encoded = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [ids[-limit:] if len(ids) > limit else ids for ids in encoded]

    def pad_batch(self, token_ids: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded ids and the attention mask, on the backbone's device."""
        width = max(1, max(len(ids) for ids in token_ids))  # an empty text is all padding
        batch = torch.full((len(token_ids), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(token_ids), width), dtype=torch.long)
        for row, ids in enumerate(token_ids):
            batch[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            mask[row, : len(ids)] = 1
        return batch.to(self.device), mask.to(self.device)

    # -- forward passes ----------------------------------------------------------------

    @staticmethod
    def _decode(decoder: torch.nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
        """Final-norm states of right-padded rows, with no padding mask on purpose (see the
        module docstring): sdpa then runs its causal kernel, skipping the upper triangle.
        Pad positions get meaningless states; every caller reads real positions only."""
        return decoder(input_ids=input_ids, attention_mask=None).last_hidden_state

    def last_states(
        self, model: torch.nn.Module | None, token_ids: Sequence[list[int]]
    ) -> torch.Tensor:
        """Final-norm hidden state at each row's last real token (B, hidden). Keeps grads."""
        decoder, _ = split_causal_lm(model if model is not None else self.model)
        input_ids, mask = self.pad_batch(token_ids)
        lengths = mask.sum(dim=1)
        states = self._decode(decoder, input_ids)
        rows = torch.arange(len(token_ids), device=states.device)
        return states[rows, (lengths - 1).clamp(min=0)]

    def last_states_after_prefix(
        self, model: torch.nn.Module | None, prefix_cache: Any, prefix_length: int,
        token_ids: Sequence[list[int]],
    ) -> torch.Tensor:
        """Like `last_states` for rows that all start with the same `prefix_length` tokens,
        whose keys and values (`prefix_cache`, batch 1) were computed once: only the
        suffixes run. Valid only when every row sees the same weights (no per-row mixture)."""
        from transformers import DynamicCache

        decoder, _ = split_causal_lm(model if model is not None else self.model)
        suffixes = [ids[prefix_length:] for ids in token_ids]
        input_ids, suffix_mask = self.pad_batch(suffixes)
        rows, width = input_ids.shape
        mask = torch.cat(
            [torch.ones((rows, prefix_length), dtype=suffix_mask.dtype, device=self.device),
             suffix_mask], dim=1)
        cache = DynamicCache()
        for index, layer in enumerate(prefix_cache.layers):
            cache.update(layer.keys.expand(rows, -1, -1, -1).contiguous(),
                         layer.values.expand(rows, -1, -1, -1).contiguous(), index)
        positions = torch.arange(prefix_length, prefix_length + width, device=self.device)
        states = decoder(input_ids=input_ids, attention_mask=mask, cache=cache,
                         position_ids=positions.unsqueeze(0).expand(rows, -1),
                         use_cache=True).last_hidden_state
        lengths = suffix_mask.sum(dim=1)
        return states[torch.arange(rows, device=states.device), lengths - 1]

    def answer_logits(
        self, model: torch.nn.Module | None, token_ids: Sequence[list[int]],
        prefix: tuple[Any, int] | None = None,
    ) -> torch.Tensor:
        """(B, 2) float32 logits of [yes, no] at the answer position: two LM-head rows, one
        position, computed in float32 whatever the model's dtype (P(Yes) stays float32)."""
        _, head = split_causal_lm(model if model is not None else self.model)
        last = self._last_states_with(model, token_ids, prefix).float()
        rows = torch.tensor([self.yes_id, self.no_id], device=last.device)
        weight = head.weight[rows].float()
        logits = last @ weight.T
        if getattr(head, "bias", None) is not None:
            logits = logits + head.bias[rows].float()
        return logits

    def score(
        self,
        prompts: list[str],
        *,
        model: torch.nn.Module | None = None,
        batch_size: int = SCORE_BATCH_SIZE,
        progress: ProgressCallback = ignore_progress,
        cancel: CancelToken = NEVER_CANCELLED,
        task: str = "score",
        before_batch: Callable[[list[int]], None] | None = None,
        max_length: int | None = None,
        share_prefix: bool = False,
    ) -> np.ndarray:
        """P(Yes) per prompt (float64, input order).

        `model` defaults to the base model; it may be a peft model or a base model with
        patched Linear layers. Batches group prompts of similar length
        (`length_sorted_batches`), and `before_batch(rows)` runs right before each batch's
        forward pass with the input positions of that batch's rows, in row order.
        `share_prefix`: run the tokens every prompt starts with (the Alpaca preamble and the
        instruction) once and reuse their keys and values for every row.
        Only for weights that are the same for every row (the base model, one adapter).
        """
        target = model if model is not None else self.model
        token_ids = self.encode(prompts, max_length)
        scores = np.empty(len(prompts), dtype=np.float64)
        started = time.perf_counter()
        total = len(prompts)
        with torch.inference_mode():
            prefix = self._prefix_cache(target, token_ids) if share_prefix else None
            done = 0
            for rows in length_sorted_batches(token_ids, batch_size):
                cancel.raise_if_cancelled()
                if before_batch is not None:
                    before_batch(rows)
                batch = [token_ids[row] for row in rows]
                logits = self.answer_logits(target, batch, prefix).double()
                scores[rows] = torch.sigmoid(logits[:, 0] - logits[:, 1]).cpu().numpy()
                done += len(rows)
                progress(rate_event(task, done, total, started))
        return scores

    def _prefix_cache(
        self, model: torch.nn.Module, token_ids: Sequence[list[int]]
    ) -> tuple[Any, int] | None:
        """Keys/values of the prefix all rows share (`shared_prefix_length`) and its length,
        or None if there is none."""
        length = shared_prefix_length(token_ids)
        if length < 1:
            return None
        decoder, _ = split_causal_lm(model)
        prefix_ids = torch.tensor([token_ids[0][:length]], dtype=torch.long, device=self.device)
        return decoder(input_ids=prefix_ids, use_cache=True).cache, length

    def batch_last_states(
        self, model: torch.nn.Module | None, token_ids: Sequence[list[int]],
        share_prefix: bool = False,
    ) -> torch.Tensor:
        """`last_states` of one batch, keeping grads. With `share_prefix`, the tokens every
        row starts with run once for the batch (as one row) and the rows continue from their
        keys and values: the same function of the weights, on fewer tokens (the TALLRec
        preamble and instruction run once). In training, the prefix then gets one LoRA
        dropout mask for the whole batch instead of one per row, so it is a recorded
        training setting."""
        target = model if model is not None else self.model
        prefix = self._prefix_cache(target, token_ids) if share_prefix else None
        return self._last_states_with(model, token_ids, prefix)

    def _last_states_with(
        self, model: torch.nn.Module | None, token_ids: Sequence[list[int]],
        prefix: tuple[Any, int] | None,
    ) -> torch.Tensor:
        """`last_states`, continuing from a computed `prefix` (`_prefix_cache`) if given."""
        if prefix is None:
            return self.last_states(model, token_ids)
        return self.last_states_after_prefix(model, *prefix, token_ids)

    def hidden_states(
        self,
        texts: list[str],
        *,
        batch_size: int = SCORE_BATCH_SIZE,
        progress: ProgressCallback = ignore_progress,
        cancel: CancelToken = NEVER_CANCELLED,
        task: str = "hidden states",
        max_length: int | None = None,
        pooling: str = "mean",
    ) -> np.ndarray:
        """One float32 vector per text from the base model (no adapter): (N, hidden).

        `mean`: the mean of the last layer's states (after the final norm) over the text's
        real tokens; `last`: that layer's state at the last real token (`hidden_texts_for`
        says which text each takes). Real tokens only, with right padding, make either
        independent of batch composition; no randomness makes it deterministic.
        """
        if pooling not in HIDDEN_STATES:
            raise ValueError(f"pooling must be one of {', '.join(HIDDEN_STATES)}")
        decoder, _ = split_causal_lm(self.model)
        token_ids = self.encode(texts, max_length)
        vectors = np.empty((len(texts), int(self.model.config.hidden_size)), dtype=np.float32)
        started = time.perf_counter()
        total = len(texts)
        with torch.inference_mode():
            done = 0
            for rows in length_sorted_batches(token_ids, batch_size):
                cancel.raise_if_cancelled()
                input_ids, mask = self.pad_batch([token_ids[row] for row in rows])
                states = self._decode(decoder, input_ids).to(torch.float32)
                if pooling == "last":
                    last = (mask.sum(dim=1) - 1).clamp(min=0)
                    pooled = states[torch.arange(len(rows), device=states.device), last]
                else:
                    weights = mask.unsqueeze(-1).to(torch.float32)
                    pooled = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
                vectors[rows] = pooled.cpu().numpy()
                done += len(rows)
                progress(rate_event(task, done, total, started))
        return vectors

    # -- sharing the base model with adapters ------------------------------------------

    def shared_weight_copy(self) -> torch.nn.Module:
        """A new module tree over the *same* frozen parameter tensors (no weight copy).

        Attaching LoRA layers (peft injects them in place) to this copy leaves `self.model`
        untouched, so several adapters can be attached side by side and the base model
        keeps scoring without any adapter. Callers must never write to the shared weights
        (never `merge_and_unload` a copy); drop the copy to detach.
        """
        memo: dict[int, Any] = {id(p): p for p in self.model.parameters()}
        memo.update({id(b): b for b in self.model.buffers()})
        return copy.deepcopy(self.model, memo)
