"""The `apa-console` command: every command group, imported explicitly."""

from __future__ import annotations

from typing import Annotated

import typer

from apa_console.cli import (
    apa_cmds,
    data_cmds,
    model_cmds,
    output,
    store_cmds,
    tui_cmd,
    unlearning_cmds,
    users_cmds,
)
from apa_console.cli.common import new_typer

app = new_typer(
    "Exact machine unlearning for LLM recommenders: shard, train, aggregate (APA), forget, audit.",
    add_completion=True,
)


def _print_version(value: bool) -> None:
    if value:
        output.stdout.print(f"apa-console {output.package_version()}", markup=False)
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True,
                     help="Print the version and exit."),
    ] = False,
) -> None:
    # no docstring: the app's help text above stays the `--help` description
    pass

# The order here is the order of `--help`.
app.add_typer(store_cmds.app)
app.add_typer(model_cmds.app, name="model")
app.add_typer(data_cmds.app)
app.add_typer(users_cmds.app)
app.add_typer(apa_cmds.app)
app.add_typer(unlearning_cmds.app)
app.add_typer(tui_cmd.app)


def main() -> None:
    output.show_engine_warnings()
    app(prog_name="apa-console")


if __name__ == "__main__":
    main()
