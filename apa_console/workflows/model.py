"""Open the backbone a store was built with, and describe it: the front-ends' one way in to
the engine's model loading."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apa_console.errors import StoreInvalidError
from apa_console.store import records
from apa_console.store.document import STORE_FILE, Store, get_meta, resolve_store_path
from apa_console.store.model_record import check_model, record_model

if TYPE_CHECKING:
    from apa_console.engine.backbone import Backbone

# The engine (torch, transformers) is imported by the functions that load a model, not here:
# every command imports this module, and most never load a model.


def _recorded_model(store: Store | None) -> dict[str, Any]:
    return (get_meta(store.snapshot()).get("model") or {}) if store is not None else {}


def _requested_model(store: Store | None, model: str | os.PathLike | None):
    """`model` if given, else the non-default model the store records, else None (default)."""
    from apa_console.engine.model_files import DEFAULT_MODEL_NAME

    if model is not None:
        return model
    recorded = _recorded_model(store)
    if recorded.get("name") and recorded.get("name") != DEFAULT_MODEL_NAME:
        return recorded.get("source")
    return None


def answer_style_for(store: Store | None) -> str:
    """The answer tokens a store's adapters use: those its model record names; the leading-
    space tokens of engines before version 5 for a record without a style; else the tokenizer's
    own (a store that has recorded no model yet)."""
    from apa_console.engine.answers import AS_WRITTEN, LEADING_SPACE

    recorded = _recorded_model(store)
    if not recorded:
        return AS_WRITTEN
    return recorded.get("answer_style") or LEADING_SPACE


def cache_root_for(store: Store | None) -> Path:
    from apa_console.engine.model_files import model_cache_root

    return model_cache_root(store.models_dir() if store is not None else None)


def open_backbone(
    store: Store,
    model: str | os.PathLike | None = None,
    device: str | None = None,
    record: bool = False,
) -> Backbone:
    """Load the backbone for `store`: `model` if given (refused when it differs from the
    store's), else the model the store records, else the default. With `record`, a store
    without a model records this one (the commands that build shards and adapters do)."""
    from apa_console.engine.backbone import Backbone

    if model is None and not _recorded_model(store) and records.adapter_rows(store.snapshot()):
        # adapters mean something only on the model they were trained on: loading the
        # default one (and building its cache in the store) would serve them on another
        raise StoreInvalidError(
            f"{store.file} records no model but holds adapters; pass --model with the "
            "model they were trained on, or restore the store"
        )
    backbone = Backbone.load(
        _requested_model(store, model), device, cache_root=cache_root_for(store),
        before_weights=lambda identity: check_model(store, identity),
        answer_style=answer_style_for(store),
    )
    if record:
        record_model(store, backbone.info)
    return backbone


def existing_store(path: str | os.PathLike | None) -> Store | None:
    """The store at `path` if there is one: `model info` also works before `init`."""
    root = resolve_store_path(path)
    if not (root / STORE_FILE).exists():
        return None
    try:
        return Store.open(root)
    except StoreInvalidError:
        return None


def model_info(model: str | None, device: str | None, store: Store | None) -> dict[str, Any]:
    """Load the model (creating the cache if missing) and describe it, without refusing one
    the store was not built with (it says so instead)."""
    from apa_console.engine.backbone import Backbone
    from apa_console.engine.devices import available_cores, bf16_support, cpu_threads

    started = time.perf_counter()
    backbone = Backbone.load(_requested_model(store, model), device,
                             cache_root=cache_root_for(store),
                             answer_style=answer_style_for(store))
    load_s = time.perf_counter() - started
    recorded = _recorded_model(store)
    if store is None:
        store_model = None
    elif not recorded:
        store_model = "none recorded yet"
    elif recorded.get("fingerprint") == backbone.info["fingerprint"]:
        store_model = "matches"
    else:
        store_model = (
            f"differs: store was built with {recorded.get('name')} ({recorded.get('source')})"
        )
    tokenizer = backbone.tokenizer
    return {
        **backbone.info,
        "directory": str(backbone.directory),
        "cache_root": str(cache_root_for(store)),
        "device": str(backbone.device),
        "dtype": str(backbone.dtype).removeprefix("torch."),
        "bfloat16": bf16_support(backbone.device),
        "cpu_threads": cpu_threads() if backbone.device.type == "cpu" else None,
        "cores_available": available_cores(),
        "yes_token": tokenizer.convert_ids_to_tokens(backbone.yes_id),
        "no_token": tokenizer.convert_ids_to_tokens(backbone.no_id),
        "store": str(store.root) if store is not None else None,
        "store_model": store_model,
        "load_s": round(load_s, 2),
    }
