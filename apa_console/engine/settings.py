"""How an adapter is trained: the settings that are part of its identity, validated, with
what each engine version implies for records that lack a setting (`versions.py`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch

from apa_console.engine.attention import GROUPED
from apa_console.engine.choices import TrainingLoss
from apa_console.engine.devices import DTYPES, dtype_name, legacy_dtype, preferred_dtype
from apa_console.engine.dropout import DROPOUT_SAMPLERS
from apa_console.engine.versions import (
    CURRENT_ENGINE_VERSION,
    ENGINE_VERSIONS,
    UNVERSIONED,
    implied_settings,
)
from apa_console.errors import UsageError


@dataclass(frozen=True)
class TrainSettings:
    """How an adapter is trained. Part of an adapter's identity: retraining uses the same.

    Defaults are sized for a 135M model on a CPU and shards of a few hundred samples:
    rank 8 / alpha 16 / dropout 0.05 on q_proj and v_proj are TALLRec's LoRA settings; the
    learning rate and epochs were chosen by `benchmarks.recipe_sweep` on a shard-sized
    MovieLens set (TALLRec's 1e-4 is for 7B over many more steps); batch 4 gives a shard of
    a few dozen samples twice the steps of batch 8 at the same cost (`benchmarks.learning_curve`
    measured it better at 64 samples and no worse at 256); 10 % linear warmup, then linear
    decay to zero, keeps the first steps on random LoRA init from overshooting. Prompts longer than
    `max_length` tokens keep their end (the answer position). `group_by_length` batches rows
    of similar length together (`epoch_batches`), so little of a step is spent on padding;
    `dropout_sampler` picks how LoRA dropout masks are drawn (`dropout.py`).
    `share_prefix` runs the tokens all rows of a batch start with (the Alpaca preamble and
    the instruction) once per batch instead of once per row (`Backbone.batch_last_states`),
    so a step does less work. The loss is the same
    function of the weights; only LoRA dropout differs, drawing one mask for the shared
    tokens of a batch rather than one per row.
    """

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    epochs: int = 2
    lr: float = 3e-3
    batch_size: int = 4
    max_length: int = 512
    seed: int = 0
    warmup: float = 0.1  # fraction of all steps spent ramping the learning rate up
    weight_decay: float = 0.0
    group_by_length: bool = True
    dropout_sampler: str = "packed16"  # how LoRA dropout masks are drawn (lora_dropout.py)
    share_prefix: bool = True  # a batch's common prompt prefix runs once (see above)
    # The frozen base model's compute dtype: "float32", "bfloat16", "auto" (the fastest
    # here, `preferred_dtype`) or None (engine versions 1-2: the device's dtype). LoRA
    # weights, optimizer state and the loss stay float32. Recorded resolved (`resolved`).
    dtype: str | None = "auto"
    # Attention kernel while training: "sdpa", "eager", "grouped" (attention.py), or "auto":
    # for bfloat16, whose CPU sdpa backward is slow, grouped (eager in engine version 3);
    # sdpa for float32. Recorded resolved.
    attention: str = "auto"
    # The loss at the answer position: "full_vocab" (TALLRec's: cross-entropy over the whole
    # vocabulary) or "answer_pair" (over the two answer tokens only, what P(Yes) reads;
    # it learned less in `benchmarks.learning_curve`).
    loss: str = "full_vocab"
    # LoRA on the top `lora_layers` decoder layers only (None: all): the layers below run
    # once per sample and each step runs the top ones only (`frozen_layers.py`).
    lora_layers: int | None = None
    engine_version: int = CURRENT_ENGINE_VERSION  # versions.py: what older adapters imply

    def __post_init__(self) -> None:
        if isinstance(self.target_modules, (list, tuple)):
            object.__setattr__(self, "target_modules", tuple(self.target_modules))
        if self.lora_layers == 0 and not isinstance(self.lora_layers, bool):
            object.__setattr__(self, "lora_layers", None)  # 0 spells "every layer" too
        problems = _type_problems(self)
        if problems:  # the range checks below assume numbers
            raise UsageError("invalid training settings: " + "; ".join(problems))
        if not 1 <= self.rank <= MAX_RANK:
            problems.append(f"rank must be in [1, {MAX_RANK}]")
        if not 1 <= self.epochs <= MAX_EPOCHS:
            problems.append(f"epochs must be in [1, {MAX_EPOCHS}]")
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            problems.append(f"batch_size must be in [1, {MAX_BATCH_SIZE}]")
        if not (math.isfinite(self.lr) and self.lr > 0):
            problems.append("lr must be a finite number > 0")
        if not (math.isfinite(self.alpha) and self.alpha > 0):
            problems.append("alpha must be a finite number > 0")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            problems.append("weight_decay must be a finite number >= 0")
        if not 0 <= self.seed <= MAX_SEED:
            problems.append(f"seed must be in [0, {MAX_SEED}]")
        if not 0 <= self.dropout < 1:
            problems.append("dropout must be in [0, 1)")
        if not 0 <= self.warmup < 1:
            problems.append("warmup must be a fraction in [0, 1)")
        if not 8 <= self.max_length <= MAX_LENGTH:
            problems.append(f"max_length must be in [8, {MAX_LENGTH}]")
        if self.attention not in ATTENTION_KERNELS:
            problems.append(f"attention must be one of {', '.join(ATTENTION_KERNELS)}")
        if self.dtype not in (None, "auto", *DTYPES):
            problems.append(f"dtype must be auto or one of {', '.join(DTYPES)}")
        if self.engine_version not in ENGINE_VERSIONS:
            problems.append(f"engine_version must be one of {sorted(ENGINE_VERSIONS)}")
        if self.loss not in LOSSES:
            problems.append(f"loss must be one of {', '.join(LOSSES)}")
        if self.lora_layers is not None and not 1 <= self.lora_layers <= MAX_LAYERS:
            problems.append(f"lora_layers must be in [1, {MAX_LAYERS}] or none (all)")
        if self.dropout_sampler not in DROPOUT_SAMPLERS:
            problems.append(f"dropout_sampler must be one of {', '.join(DROPOUT_SAMPLERS)}")
        if problems:
            raise UsageError("invalid training settings: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data

    def resolved(self, device: torch.device) -> TrainSettings:
        """These settings with the dtype and attention kernel they mean on `device` spelled
        out."""
        if self.dtype == "auto":
            dtype = dtype_name(preferred_dtype(device))
        elif self.dtype is None:
            dtype = dtype_name(legacy_dtype(device))
        else:
            dtype = self.dtype
        attention = self.attention
        if attention == "auto":
            if dtype != "bfloat16":
                attention = "sdpa"
            else:
                attention = GROUPED if self.engine_version >= GROUPED_SINCE else "eager"
        # Top-layer training runs the frozen layers once per sample and the adapted ones on
        # full rows (`frozen_layers.py`): no prompt prefix is shared then.
        share_prefix = self.share_prefix and self.lora_layers is None
        return replace(self, dtype=dtype, attention=attention, share_prefix=share_prefix)

    def trains_like(self, other: TrainSettings, device: torch.device) -> bool:
        """Whether both train bit-identical adapters on `device`: every setting but the
        version label agrees (a version only fills in settings a record lacks)."""
        mine, theirs = self.resolved(device).to_dict(), other.resolved(device).to_dict()
        mine.pop("engine_version")
        theirs.pop("engine_version")
        return mine == theirs

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainSettings:
        """Settings from a record: a setting the record lacks takes the value its engine
        version implies (`versions.py`), so older adapters retrain bit for bit."""
        known = {f.name for f in fields(cls)}
        version = int(data.get("engine_version", UNVERSIONED))
        data = {**implied_settings(version), **data, "engine_version": version}
        return cls(**{key: value for key, value in data.items() if key in known})


ATTENTION_KERNELS = ("auto", "sdpa", "eager", GROUPED)
LOSSES = tuple(loss.value for loss in TrainingLoss)
MAX_LAYERS = 4096
GROUPED_SINCE = 4  # the engine version whose "auto" means the grouped kernel for bfloat16
# Bounds that keep a mistyped number from being recorded (it would break every later train).
MAX_SEED = 2**32 - 1
MAX_EPOCHS = 1000
MAX_BATCH_SIZE = 65536
MAX_RANK = 4096
MAX_LENGTH = 1 << 20
_INT_SETTINGS = ("rank", "epochs", "batch_size", "max_length", "seed", "engine_version")
_REAL_SETTINGS = ("alpha", "dropout", "lr", "warmup", "weight_decay")
_BOOL_SETTINGS = ("group_by_length", "share_prefix")


def _type_problems(settings: TrainSettings) -> list[str]:
    """Settings of the wrong type (from a damaged record or a caller's typo)."""
    problems = []
    for name in _INT_SETTINGS:
        value = getattr(settings, name)
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{name} must be an integer")
    for name in _REAL_SETTINGS:
        value = getattr(settings, name)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            problems.append(f"{name} must be a number")
    for name in _BOOL_SETTINGS:
        if not isinstance(getattr(settings, name), bool):
            problems.append(f"{name} must be true or false")
    if not (isinstance(settings.target_modules, tuple)
            and all(isinstance(module, str) for module in settings.target_modules)):
        problems.append("target_modules must be module names")
    if settings.lora_layers is not None and (not isinstance(settings.lora_layers, int)
                                             or isinstance(settings.lora_layers, bool)):
        problems.append("lora_layers must be an integer or none")
    for name in ("dtype", "attention", "dropout_sampler", "loss"):
        value = getattr(settings, name)
        if not (isinstance(value, str) or (name == "dtype" and value is None)):
            problems.append(f"{name} must be a name")
    return problems
