"""The `apa-console` command: every command group, imported explicitly."""

from __future__ import annotations

from apa_console.cli import (
    apa_cmds,
    data_cmds,
    model_cmds,
    store_cmds,
    tui_cmd,
    unlearning_cmds,
    users_cmds,
)
from apa_console.cli.common import new_typer

app = new_typer(
    "Exact machine unlearning for LLM recommenders: shard, train, aggregate (APA), forget, audit."
)
# The order here is the order of `--help`.
app.add_typer(store_cmds.app)
app.add_typer(model_cmds.app, name="model")
app.add_typer(data_cmds.app)
app.add_typer(users_cmds.app)
app.add_typer(apa_cmds.app)
app.add_typer(unlearning_cmds.app)
app.add_typer(tui_cmd.app)


def main() -> None:
    app(prog_name="apa-console")


if __name__ == "__main__":
    main()
