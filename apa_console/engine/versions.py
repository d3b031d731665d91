"""Engine versions: what an adapter's recorded version says about how it was trained.

A change to the engine that moves adapter bits gets a new version here, with the settings
it implies. Every adapter records its version with its settings; a record that lacks a
setting takes the value its version implies, so retraining and `verify` reproduce adapters
trained by older engines bit for bit. Records made before versions existed are version 1.

Policy: a version stays as long as a supported store can hold a live adapter trained with
it. A release may drop one only after a release that warned about it; an adapter of a
version this table lacks is refused with a one-line error (`implied_settings`).
"""

from __future__ import annotations

from typing import Any

from apa_console.errors import ConflictError

ENGINE_VERSIONS: dict[int, dict[str, Any]] = {
    # before versions were recorded: input-order batches, uniform dropout masks, full rows;
    # the base model in the device's dtype (dtype None: float32 on CPU, bfloat16 on CUDA)
    1: {"group_by_length": False, "dropout_sampler": "uniform", "share_prefix": False,
        "dtype": None, "attention": "sdpa", "loss": "full_vocab", "lora_layers": None},
    # length-grouped batches, packed 16-bit dropout masks, a batch's shared prefix run once
    2: {"group_by_length": True, "dropout_sampler": "packed16", "share_prefix": True,
        "dtype": None, "attention": "sdpa", "loss": "full_vocab", "lora_layers": None},
    # the base model's compute dtype and training attention kernel are recorded settings
    # (bfloat16 where it is native, trained with eager attention)
    3: {"group_by_length": True, "dropout_sampler": "packed16", "share_prefix": True,
        "dtype": "float32", "attention": "sdpa", "loss": "full_vocab", "lora_layers": None},
    # bfloat16's "auto" attention is the grouped kernel (attention.py) instead of eager
    4: {"group_by_length": True, "dropout_sampler": "packed16", "share_prefix": True,
        "dtype": "float32", "attention": "sdpa", "loss": "full_vocab", "lora_layers": None},
    # the loss and the adapted layers are recorded settings (stores keep their answer tokens
    # in their model record, `answers.py`)
    5: {"group_by_length": True, "dropout_sampler": "packed16", "share_prefix": True,
        "dtype": "float32", "attention": "sdpa", "loss": "full_vocab", "lora_layers": None},
}
CURRENT_ENGINE_VERSION = max(ENGINE_VERSIONS)
UNVERSIONED = 1  # what a record without `engine_version` was trained with


def implied_settings(version: int) -> dict[str, Any]:
    """The settings `version` implies; ConflictError for a version this engine lacks."""
    if version not in ENGINE_VERSIONS:
        known = ", ".join(map(str, sorted(ENGINE_VERSIONS)))
        raise ConflictError(
            f"adapter trained by engine version {version}, which this apa-console does not "
            f"have (it has {known}); use the release that trained it"
        )
    return dict(ENGINE_VERSIONS[version])
