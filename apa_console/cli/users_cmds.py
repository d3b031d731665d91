"""`users` and `user show`."""

from __future__ import annotations

from typing import Annotated

import typer

from apa_console.cli import output
from apa_console.cli.common import JsonOption, StoreOption, new_typer, open_store
from apa_console.samples import SPLITS
from apa_console.store import catalog
from apa_console.units import plural
from apa_console.unlearning.describe import split_summary

LimitOption = Annotated[int | None, typer.Option("--limit", min=0, help="Show at most N.")]


app = new_typer("Users and their samples.")


user_app = new_typer("One user: their samples.")
app.add_typer(user_app, name="user")


@app.command()
def users(
    match: Annotated[
        str | None, typer.Option("--match", metavar="TEXT", help="Only ids containing this text.")
    ] = None,
    min_samples: Annotated[
        int, typer.Option("--min-samples", min=0, help="Only users with at least N samples.")
    ] = 0,
    limit: LimitOption = None,
    store: StoreOption = None,
    json: JsonOption = False,
) -> None:
    """List users, most samples first."""
    rows = catalog.list_users(open_store(store), match, min_samples, limit)
    if json:
        output.emit_json(rows)
        return
    output.table(
        ["user", "samples", *SPLITS, "shards"],
        [[row["id"], row["samples"], *row["counts"].values(),
          ",".join(map(str, row["shards"])) or "–"] for row in rows],
    )
    if not rows:
        output.info("no users match")


@user_app.command("show")
def user_show(
    user_id: Annotated[str, typer.Argument(metavar="ID", help="The user's id.")],
    limit: Annotated[
        int | None, typer.Option("--limit", min=0, help="At most N samples per split.")
    ] = None,
    store: StoreOption = None,
    json: JsonOption = False,
) -> None:
    """A user's samples per split, with their text and label."""
    detail = catalog.user_detail(open_store(store), user_id, limit)
    if json:
        output.emit_json(detail)
        return
    counts = split_summary(detail["counts"])
    held = detail["shards"]
    shards = (f"{'shard' if len(held) == 1 else 'shards'} {', '.join(map(str, held))}" if held
              else "no shard (not partitioned yet)")
    output.stdout.print(
        f"[bold]user {output.markup_safe(detail['id'])}[/]: "
        f"{plural(detail['samples'], 'sample')} ({counts}); training data in {shards}"
    )
    for split, rows in detail["splits"].items():
        if not rows:
            continue
        shown = f"{len(rows)} of {detail['counts'][split]}"
        output.table(
            ["sample", "shard", "label", "target", "input"],
            [
                [row["id"], "–" if row["shard"] is None else row["shard"], row["output"],
                 row["target_title"], row["input"]]
                for row in rows
            ],
            title=f"{split} ({shown})",
        )
