"""`model info`: which LLM the engine uses, where its cache lives, and how it will run."""

from __future__ import annotations

import time

import torch
import typer

from apa_console.engine.backbone import Backbone, available_cores, model_cache_root
from apa_console.errors import StoreInvalidError
from apa_console.store.document import Store, get_meta, resolve_store_path
from apa_console.cli import output
from apa_console.cli.common import DeviceOption, JsonOption, ModelOption, StoreOption, new_typer

# The shared `--model` / `--device` options live in common.py (every command group imports
# them from there); re-exported so engine-facing commands can take them from here too.
__all__ = ["DeviceOption", "ModelOption", "model_info", "register"]


def _existing_store(path) -> Store | None:
    """The store at `path` if there is one: `model info` also works before `init`."""
    root = resolve_store_path(path)
    if not (root / "apa.json").exists():
        return None
    try:
        return Store.open(root)
    except StoreInvalidError:
        return None


def model_info(model: str | None, device: str | None, store: Store | None) -> dict:
    """Load the model (creating the cache if missing) and describe it."""
    started = time.perf_counter()
    backbone = Backbone.load(model, store=store, device=device, check_store=False)
    load_s = time.perf_counter() - started
    recorded = get_meta(store.snapshot()).get("model") if store is not None else None
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
        "cache_root": str(model_cache_root(store)),
        "device": str(backbone.device),
        "dtype": str(backbone.dtype).removeprefix("torch."),
        "cpu_threads": torch.get_num_threads() if backbone.device.type == "cpu" else None,
        "cores_available": available_cores(),
        "yes_token": tokenizer.convert_ids_to_tokens(backbone.yes_id),
        "no_token": tokenizer.convert_ids_to_tokens(backbone.no_id),
        "store": str(store.root) if store is not None else None,
        "store_model": store_model,
        "load_s": round(load_s, 2),
    }


def register(app: typer.Typer) -> None:
    model_app = new_typer("The LLM behind the adapters: which one, its cache, how it runs.")
    app.add_typer(model_app, name="model")

    @model_app.command("info")
    def info(
        model: ModelOption = None,
        device: DeviceOption = None,
        store: StoreOption = None,
        json: JsonOption = False,
    ) -> None:
        """Load the model (building its cache on first use) and show its identity, cache path,
        device/dtype and answer token ids."""
        target = _existing_store(store)
        output.info("loading model… (the first load of the default model converts it, ~30 s)")
        summary = model_info(model, device, target)
        if json:
            output.emit_json(summary)
            return
        output.key_values(
            [
                ("model", summary["name"]),
                ("source", summary["source"]),
                ("directory", summary["directory"]),
                ("cache root", summary["cache_root"]),
                ("architecture", summary["architecture"]),
                ("parameters", f"{summary['parameters']:,}"),
                ("hidden size", summary["hidden_size"]),
                ("layers", summary["layers"]),
                ("device", summary["device"]),
                ("dtype", summary["dtype"]),
                ("cpu threads", summary["cpu_threads"] or "–"),
                ("yes token", f"{summary['yes_token_id']} ({summary['yes_token']!r})"),
                ("no token", f"{summary['no_token_id']} ({summary['no_token']!r})"),
                ("fingerprint", summary["fingerprint"]),
                ("store", summary["store"] or "(none here: cache is per user)"),
                ("store model", summary["store_model"] or "–"),
                ("load time", f"{summary['load_s']} s"),
            ],
            title="apa-console model",
        )
