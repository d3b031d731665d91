"""Train one LoRA adapter on one shard, deterministically, and attach adapters for scoring.

Exact unlearning rests on one promise made here: the same ordered manifest (sample ids and
their texts), the same seed and the same settings give a bit-identical
`adapter_model.safetensors` on the same CPU machine. So: the global RNG is seeded (inside a
forked RNG state, so callers' randomness is untouched) before the LoRA matrices are drawn and
drives LoRA dropout; shuffling uses its own seeded generator; deterministic algorithms are
enforced while training.

The loss is TALLRec's: cross-entropy over the full vocabulary for the answer token (" Yes" /
" No"), but evaluated at the answer position only. The standard `labels=` loss would run the
LM head (the whole vocabulary) at every position, for nothing.

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
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from apa_console.engine.adapter_format import ADAPTER_WEIGHTS
from apa_console.engine.attention import GROUPED, register_grouped_attention
from apa_console.engine.backbone import Backbone, split_causal_lm
from apa_console.engine.devices import (
    DTYPES,
    dtype_name,
    dtype_named,
    legacy_dtype,
    preferred_dtype,
)
from apa_console.engine.dropout import DROPOUT_SAMPLERS, use_dropout_sampler
from apa_console.engine.versions import (
    CURRENT_ENGINE_VERSION,
    ENGINE_VERSIONS,
    UNVERSIONED,
    implied_settings,
)
from apa_console.errors import ConflictError, UsageError
from apa_console.fileio import sha256_file
from apa_console.progress import (
    NEVER_CANCELLED,
    CancelToken,
    ProgressCallback,
    ProgressEvent,
    ignore_progress,
)


@dataclass(frozen=True)
class TrainSettings:
    """How an adapter is trained. Part of an adapter's identity: retraining uses the same.

    Defaults are sized for a 135M model on a CPU and shards of a few hundred samples:
    rank 8 / alpha 16 / dropout 0.05 on q_proj and v_proj are TALLRec's LoRA settings; the
    learning rate and epochs were chosen by `benchmarks.recipe_sweep` on a shard-sized
    MovieLens set (TALLRec's 1e-4 is for 7B over many more steps); batch 8 keeps a CPU step
    short while matmuls stay large enough to run near peak; 10 % linear warmup, then linear
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
    batch_size: int = 8
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
    engine_version: int = CURRENT_ENGINE_VERSION  # versions.py: what older adapters imply

    def __post_init__(self) -> None:
        if isinstance(self.target_modules, (list, tuple)):
            object.__setattr__(self, "target_modules", tuple(self.target_modules))
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
        return replace(self, dtype=dtype, attention=attention)

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
    for name in ("dtype", "attention", "dropout_sampler"):
        value = getattr(settings, name)
        if not (isinstance(value, str) or (name == "dtype" and value is None)):
            problems.append(f"{name} must be a name")
    return problems
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


def _lora_config(settings: TrainSettings):
    from peft import LoraConfig

    return LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )


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
    answer_ids = torch.tensor(
        [backbone.yes_id if label else backbone.no_id for label in labels],
        device=backbone.device,
    )
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
                peft_model = get_peft_model(base, _lora_config(settings))
            use_dropout_sampler(peft_model, settings.dropout_sampler)
            peft_model.train()
            trainable = [p for p in peft_model.parameters() if p.requires_grad]
            optimizer = torch.optim.AdamW(
                trainable, lr=settings.lr, weight_decay=settings.weight_decay
            )
            scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda step: _lr_factor(step, total_steps, warmup_steps)
            )
            _, head = split_causal_lm(peft_model)
            shuffler = torch.Generator().manual_seed(settings.seed)
            step = 0
            lengths = [len(ids) for ids in token_ids]
            for _epoch in range(settings.epochs):
                order = torch.randperm(count, generator=shuffler).tolist()
                for rows in epoch_batches(order, lengths, settings.batch_size,
                                          settings.group_by_length, shuffler):
                    cancel.raise_if_cancelled()
                    last = backbone.batch_last_states(
                        peft_model, [token_ids[i] for i in rows], settings.share_prefix)
                    # The LM head at the answer position only: (B, vocab) instead of (B, T, vocab).
                    logits = F.linear(last, head.weight, getattr(head, "bias", None)).float()
                    loss = F.cross_entropy(logits, answer_ids[rows])
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
