"""`model info`: which LLM the engine uses, where its cache lives, and how it will run."""

from __future__ import annotations

from apa_console.cli import output
from apa_console.cli.common import DeviceOption, JsonOption, ModelOption, StoreOption, new_typer
from apa_console.workflows.model import existing_store, model_info

app = new_typer("The LLM behind the adapters: which one, its cache, how it runs.")


@app.command("info")
def info(
    model: ModelOption = None,
    device: DeviceOption = None,
    store: StoreOption = None,
    json: JsonOption = False,
) -> None:
    """Load the model (building its cache on first use) and show its identity, cache path,
    device/dtype and answer token ids."""
    target = existing_store(store)
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
            ("bfloat16", summary["bfloat16"]),
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
