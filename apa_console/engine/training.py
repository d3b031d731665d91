"""Train one LoRA adapter on one shard, deterministically, and attach adapters for scoring.

Exact unlearning rests on one promise made here: the same ordered manifest (sample ids and
their texts), the same seed and the same settings give a bit-identical
`adapter_model.safetensors` on the same CPU machine. So: the global RNG is seeded (inside a
forked RNG state, so callers' randomness is untouched) before the LoRA matrices are drawn and
drives LoRA dropout; shuffling uses its own seeded generator; deterministic algorithms are
enforced while training.

The loss is evaluated at the answer position only (`answer_loss`): over the two answer tokens
(the default) or, as TALLRec, over the whole vocabulary. The standard `labels=` loss would run
the LM head (the whole vocabulary) at every position, for nothing.

Adapters are saved in peft's own format (adapter_config.json + adapter_model.safetensors),
assembled in a temporary sibling folder and renamed into place: a cancel or a crash leaves no
partial adapter folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from apa_console.engine.adapter_format import ADAPTER_WEIGHTS
from apa_console.engine.attention import GROUPED, register_grouped_attention
from apa_console.engine.backbone import Backbone, split_causal_lm
from apa_console.engine.devices import dtype_named
from apa_console.engine.dropout import use_dropout_sampler
from apa_console.engine.frozen_layers import first_adapted_layer, frozen_states, top_last_states
from apa_console.engine.settings import MAX_SEED, TrainSettings  # noqa: F401 (re-exported)
from apa_console.errors import ConflictError, UsageError
from apa_console.fileio import sha256_file
from apa_console.progress import (
    NEVER_CANCELLED,
    CancelToken,
    ProgressCallback,
    ProgressEvent,
    ignore_progress,
)

# Rows are sorted by length within windows of this many batches of the shuffled order.
LENGTH_GROUP_BATCHES = 16


@dataclass(frozen=True)
class TrainResult:
    adapter_dir: Path
    weights_sha256: str
    manifest_hash: str
    settings: dict[str, Any]
    loss_curve: list[float] = field(default_factory=list)
    wall_time_s: float = 0.0
    samples_per_s: float = 0.0
    steps: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["adapter_dir"] = str(self.adapter_dir)
        return data


def manifest_hash(sample_ids: list[str]) -> str:
    """sha256 of the ordered sample ids (JSON-encoded, so no separator can be ambiguous)."""
    encoded = json.dumps(list(sample_ids), separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


@contextmanager
def _deterministic_algorithms() -> Iterator[None]:
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    previous_fill = torch.utils.deterministic.fill_uninitialized_memory
    # warn_only: on CUDA a few kernels have no deterministic variant; on CPU every op we use
    # does, and exactness is promised for CPU.
    torch.use_deterministic_algorithms(True, warn_only=True)
    # Deterministic mode also NaN-fills every new buffer (a debugging aid against kernels that
    # read memory they never wrote). Our kernels write all they read, the fill costs time on
    # every step, and the bit-identity tests would catch a kernel that did otherwise.
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.utils.deterministic.fill_uninitialized_memory = previous_fill
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)


def epoch_batches(
    order: list[int], lengths: Sequence[int], batch_size: int, group_by_length: bool,
    shuffler: torch.Generator,
) -> list[list[int]]:
    """One epoch's batches of row positions, from that epoch's shuffled `order`.

    Plain: consecutive slices of `order`. Grouped by length: `order` is cut into windows of
    LENGTH_GROUP_BATCHES batches, each window's rows are sorted by length (longest first,
    ties in shuffled order) and sliced into batches, and the batches are shuffled with
    `shuffler`. Batches stay random in which rows they hold and when they run, but a batch
    pads to little more than its rows' own lengths. Same number of batches either way.
    """
    if not group_by_length:
        return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    window = batch_size * LENGTH_GROUP_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        rows = sorted(order[start:start + window], key=lambda row: -lengths[row])
        batches += [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=shuffler).tolist()]


def _lr_factor(step: int, total: int, warmup_steps: int) -> float:
    """Linear warmup to 1, then linear decay towards 0 at the last step."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    remaining = total - warmup_steps
    if remaining <= 0:
        return 1.0
    return max(0.0, 1.0 - (step - warmup_steps) / remaining)


def _lora_config(settings: TrainSettings, layer_count: int | None = None):
    """peft's LoRA config for `settings`; `layer_count` (the model's decoder layers) is needed
    when only the top `settings.lora_layers` are adapted."""
    from peft import LoraConfig

    layers = None
    if settings.lora_layers is not None:
        if layer_count is None:
            raise UsageError("lora_layers needs the model's layer count")
        layers = list(range(max(0, layer_count - settings.lora_layers), layer_count))
    return LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        layers_to_transform=layers,
        bias="none",
        task_type="CAUSAL_LM",
    )


def answer_loss(last: torch.Tensor, head: torch.nn.Module, yes_id: int, no_id: int,
                labels: torch.Tensor, kind: str) -> torch.Tensor:
    """The loss at the answer position (`last`: (B, hidden) states; `labels` 1 for Yes).

    "answer_pair": cross-entropy over the [yes, no] logits only, the log-loss of the P(Yes)
    that scoring reports. "full_vocab": TALLRec's cross-entropy over the whole vocabulary
    for the answer token. Either computes only the LM-head rows it needs at one position."""
    bias = getattr(head, "bias", None)
    if kind == "answer_pair":
        rows = torch.tensor([yes_id, no_id], device=last.device)
        logits = F.linear(last, head.weight[rows], None if bias is None else bias[rows])
        return F.cross_entropy(logits.float(), 1 - labels)  # class 0 is Yes
    logits = F.linear(last, head.weight, bias).float()
    answers = torch.where(labels.bool(), torch.tensor(yes_id, device=last.device),
                          torch.tensor(no_id, device=last.device))
    return F.cross_entropy(logits, answers)


def train_adapter(
    backbone: Backbone,
    prompts: Sequence[str],
    labels: Sequence[int],
    sample_ids: Sequence[str],
    settings: TrainSettings,
    out_dir: str | os.PathLike,
    *,
    progress: ProgressCallback = ignore_progress,
    cancel: CancelToken = NEVER_CANCELLED,
    task: str = "adapter",
) -> TrainResult:
    """Train one LoRA adapter on (prompt, label) pairs and save it to `out_dir` (new folder).

    `sample_ids` name the rows in order; their hash goes into the result. The base model of
    `backbone` is never modified: LoRA layers go into a weight-sharing copy of it, in the
    compute dtype the settings name (`Backbone.in_dtype`); the result records it.
    Raises CancelledError between steps when `cancel` is set; nothing is left on disk then.
    """
    from peft import get_peft_model

    prompts, labels, sample_ids = list(prompts), [int(x) for x in labels], list(sample_ids)
    if not (len(prompts) == len(labels) == len(sample_ids)):
        raise UsageError(
            f"train_adapter needs one label and one id per prompt "
            f"(got {len(prompts)} prompts, {len(labels)} labels, {len(sample_ids)} ids)"
        )
    if not prompts:
        raise ConflictError("cannot train an adapter on an empty shard")
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise ConflictError(f"adapter folder {out_dir} already exists; adapters are write-once")

    settings = settings.resolved(backbone.device)
    backbone = backbone.in_dtype(dtype_named(settings.dtype))
    started = time.perf_counter()
    count = len(prompts)
    steps_per_epoch = math.ceil(count / settings.batch_size)
    total_steps = steps_per_epoch * settings.epochs
    warmup_steps = int(round(settings.warmup * total_steps))
    token_ids = backbone.encode(prompts, settings.max_length)
    label_tensor = torch.tensor(labels, dtype=torch.long, device=backbone.device)
    loss_curve: list[float] = []
    seen = 0

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        # Fork the generators we seed, so the caller's random streams continue untouched.
        forked = [backbone.device.index or 0] if backbone.device.type == "cuda" else []
        with torch.random.fork_rng(devices=forked), _deterministic_algorithms():
            torch.manual_seed(settings.seed)
            with warnings.catch_warnings():
                # peft asks transformers a deprecated question; nothing for an operator to fix.
                warnings.filterwarnings("ignore", category=FutureWarning)
                base = backbone.shared_weight_copy()
                if settings.attention == GROUPED:
                    register_grouped_attention()
                base.set_attn_implementation(settings.attention)  # the copy only
                layer_count = int(base.config.num_hidden_layers)
                peft_model = get_peft_model(base, _lora_config(settings, layer_count))
            use_dropout_sampler(peft_model, settings.dropout_sampler)
            peft_model.train()
            trainable = [p for p in peft_model.parameters() if p.requires_grad]
            optimizer = torch.optim.AdamW(
                trainable, lr=settings.lr, weight_decay=settings.weight_decay
            )
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda step: _lr_factor(step, total_steps, warmup_steps)
            )
            decoder, head = split_causal_lm(peft_model)
            split = first_adapted_layer(layer_count, settings.lora_layers)
            frozen = (frozen_states(decoder, token_ids, split, backbone.pad_id, cancel)
                      if split else None)
            shuffler = torch.Generator().manual_seed(settings.seed)
            step = 0
            lengths = [len(ids) for ids in token_ids]
            for _epoch in range(settings.epochs):
                order = torch.randperm(count, generator=shuffler).tolist()
                for rows in epoch_batches(order, lengths, settings.batch_size,
                                          settings.group_by_length, shuffler):
                    cancel.raise_if_cancelled()
                    if frozen is not None:
                        last = top_last_states(decoder, [frozen[i] for i in rows], split)
                    else:
                        last = backbone.batch_last_states(
                            peft_model, [token_ids[i] for i in rows], settings.share_prefix)
                    loss = answer_loss(last, head, backbone.yes_id, backbone.no_id,
                                       label_tensor[rows], settings.loss)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    scheduler.step()
                    step += 1
                    seen += len(rows)
                    loss_curve.append(float(loss.detach()))
                    elapsed = max(time.perf_counter() - started, 1e-9)
                    progress(
                        ProgressEvent(
                            task,
                            step,
                            total_steps,
                            loss=loss_curve[-1],
                            samples_per_s=seen / elapsed,
                            eta_s=(total_steps - step) * elapsed / step,
                            unit="step",
                        )
                    )
            cancel.raise_if_cancelled()
            peft_model.save_pretrained(staging, safe_serialization=True)
        (staging / "README.md").unlink(missing_ok=True)  # peft's model-card stub
        if not (staging / ADAPTER_WEIGHTS).is_file():
            raise ConflictError(f"peft did not write {ADAPTER_WEIGHTS}; is peft too old?")
        os.rename(staging, out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)

    wall = time.perf_counter() - started
    return TrainResult(
        adapter_dir=out_dir,
        weights_sha256=sha256_file(out_dir / ADAPTER_WEIGHTS),
        manifest_hash=manifest_hash(sample_ids),
        settings=settings.to_dict(),
        loss_curve=loss_curve,
        wall_time_s=wall,
        samples_per_s=seen / wall if wall > 0 else 0.0,
        steps=total_steps,
    )
