"""`tui`: the full-screen console. Textual is imported only when the command runs, so the
rest of the CLI (and the core) never loads it."""

from __future__ import annotations

from typing import Annotated

import typer

from apa_console.cli.common import DeviceOption, ModelOption, StoreOption, new_typer, open_store

app = new_typer("The full-screen console.")


@app.command()
def tui(
    store: StoreOption = None,
    model: ModelOption = None,
    device: DeviceOption = None,
    readonly: Annotated[
        bool, typer.Option("--readonly", help="Hide destructive actions (forget, apply).")
    ] = False,
) -> None:
    """Open the interactive console: overview, users, shards, requests and audit; score
    and forget with live progress."""
    target = open_store(store)
    from apa_console.tui.app import ApaConsoleApp

    ApaConsoleApp(target, model=model, device=device, readonly=readonly).run()
