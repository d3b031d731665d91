"""`init`, `status` and `migrate`."""

from __future__ import annotations

from apa_console.cli import output
from apa_console.cli.common import JsonOption, StoreOption, new_typer, open_store
from apa_console.store import migration
from apa_console.store import status as status_core
from apa_console.store.audit import key_file
from apa_console.store.document import Store

app = new_typer("Create a store and summarise it.")


@app.command()
def init(store: StoreOption = None) -> None:
    """Create an empty store, and its secret key outside it ($APA_KEY_DIR, default
    ~/.config/apa-console/keys)."""
    created = Store.create(store)
    output.info(f"created store at {created.root}")
    output.info(f"its key: {key_file(created)} (back it up apart from the store)")


@app.command()
def status(store: StoreOption = None, json: JsonOption = False) -> None:
    """Summarise the store: dataset, model, shards, adapters, requests."""
    summary = status_core.store_status(open_store(store))
    if json:
        output.emit_json(summary)
        return
    dataset = summary["dataset"] or {}
    model = summary["model"] or {}
    partition = summary["partition"] or {}
    output.key_values(
        [
            ("store", summary["store"]),
            ("dataset", dataset.get("name", "(none: run `apa-console ingest`)")),
            ("users", summary["users"]),
            *[
                (f"{split} samples", f"{n} ({summary['positives'][split]} Yes)")
                for split, n in summary["samples"].items()
            ],
            ("model", model.get("name", "(not chosen yet)")),
            ("partition", partition.get("method", "(none)")),
            ("shards", summary["shards"]),
            ("live adapters", summary["live_adapters"]),
            *[(f"shard {w['shard']}", f"adapter {w['adapter']} withdrawn, retrain pending "
               f"({w['request']}): run `apa-console apply`")
              for w in summary["withdrawn_adapters"]],
            ("requests", ", ".join(f"{k}: {v}" for k, v in summary["requests"].items())
             or "none"),
            ("audit entries", summary["audit_entries"]),
        ],
        title="apa-console store",
    )


@app.command()
def migrate(store: StoreOption = None, json: JsonOption = False) -> None:
    """Bring a store an older apa-console wrote to the current layout (its samples move out
    of apa.json into segment files) in one atomic commit. Any write does the same on its
    way; a store already current is left untouched."""
    opened = open_store(store)
    changed = migration.migrate(opened)
    if json:
        output.emit_json({"store": str(opened.root), "migrated": changed})
        return
    output.info(f"migrated {opened.root} to the segment layout" if changed
                else f"{opened.root} already has the current layout; nothing to do")
