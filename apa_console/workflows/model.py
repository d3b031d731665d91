"""Open the backbone a store was built with: the one front-end entry point to the engine."""

from __future__ import annotations

import os

from apa_console.engine.backbone import Backbone, record_model
from apa_console.store.document import Store


def open_backbone(
    store: Store,
    model: str | os.PathLike | None = None,
    device: str | None = None,
    record: bool = False,
) -> Backbone:
    """Load the backbone for `store`: `model` if given (refused when it differs from the
    store's), else the model the store records, else the default. With `record`, a store
    without a model records this one (the commands that build shards and adapters do)."""
    backbone = Backbone.load(model, store=store, device=device)
    if record:
        record_model(store, backbone.info)
    return backbone
