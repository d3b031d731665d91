"""The `apa-console` command: assembles the command groups."""

from __future__ import annotations

import importlib

from apa_console.cli.common import new_typer

app = new_typer(
    "Exact machine unlearning for LLM recommenders: shard, train, aggregate (APA), forget, audit."
)

# Each module exposes register(app); the list is the CLI's table of contents.
_COMMAND_MODULES = (
    "store_cmds",
    "model_cmds",
    "data_cmds",
    "users_cmds",
    "apa_cmds",
    "unlearning_cmds",
    "tui_cmd",
)

for _name in _COMMAND_MODULES:
    importlib.import_module(f"{__package__}.{_name}").register(app)


def main() -> None:
    app(prog_name="apa-console")


if __name__ == "__main__":
    main()
