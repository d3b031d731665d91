"""`ingest movielens|tallrec|demo|bookcrossing` and `export tallrec`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from apa_console import data
from apa_console.cli import output
from apa_console.cli.common import JsonOption, StoreOption, new_typer, open_store
from apa_console.data.demo import DEFAULT_USERS
from apa_console.data.ingest import DEFAULT_SEED, DEFAULT_SIZES, ParsedDataset
from apa_console.samples import SPLITS
from apa_console.units import plural

SourceDir = Annotated[Path, typer.Argument(help="Directory holding the source files.")]
TrainSize = Annotated[
    int, typer.Option("--train-size", help="Train samples to keep (drawn with --seed).")
]
ValidSize = Annotated[int, typer.Option("--valid-size", help="Validation samples to keep.")]
TestSize = Annotated[int, typer.Option("--test-size", help="Test samples to keep.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the subsampling.")]


def _ingest(
    store_path: Path | None,
    load: Callable[[], ParsedDataset],
    sizes: dict[str, int],
    seed: int,
    as_json: bool,
) -> None:
    store = open_store(store_path)
    data.check_sizes(sizes)
    data.ensure_no_dataset(store)  # refuse before spending time parsing
    parsed = load()
    dataset = data.write_dataset(store, parsed, sizes, seed)
    if as_json:
        output.emit_json(dataset)
    else:
        _print_summary(dataset)
    output.info(f"ingested {dataset['name']} into {store.root}")


def _print_summary(dataset: dict[str, Any]) -> None:
    output.table(
        ["split", "stored", "Yes", "No", "source total"],
        [
            [
                split,
                dataset["stored"][split]["count"],
                dataset["stored"][split]["yes"],
                dataset["stored"][split]["no"],
                dataset["full"][split]["count"],
            ]
            for split in SPLITS
        ],
        title=f"{dataset['name']}: {plural(dataset['users'], 'user')}, domain {dataset['domain']}",
    )


app = new_typer("Import and export datasets.")


ingest_app = new_typer("Import a dataset into an empty store.")
export_app = new_typer("Write the store's samples in another format.")
app.add_typer(ingest_app, name="ingest")
app.add_typer(export_app, name="export")


@ingest_app.command("movielens")
def ingest_movielens(
    path: SourceDir,
    train_size: TrainSize = DEFAULT_SIZES["train"],
    valid_size: ValidSize = DEFAULT_SIZES["valid"],
    test_size: TestSize = DEFAULT_SIZES["test"],
    seed: Seed = DEFAULT_SEED,
    store: StoreOption = None,
    json: JsonOption = False,
) -> None:
    """MovieLens-100K (u.data, u.item), preprocessed exactly as TALLRec does."""
    sizes = {"train": train_size, "valid": valid_size, "test": test_size}
    _ingest(store, lambda: data.load_movielens(path), sizes, seed, json)


@ingest_app.command("tallrec")
def ingest_tallrec(
    path: SourceDir,
    train_size: TrainSize = DEFAULT_SIZES["train"],
    valid_size: ValidSize = DEFAULT_SIZES["valid"],
    test_size: TestSize = DEFAULT_SIZES["test"],
    seed: Seed = DEFAULT_SEED,
    store: StoreOption = None,
    json: JsonOption = False,
) -> None:
    """TALLRec JSON (train.json, valid.json, test.json); `user_id` per record if present."""
    sizes = {"train": train_size, "valid": valid_size, "test": test_size}
    _ingest(store, lambda: data.load_tallrec(path), sizes, seed, json)


@ingest_app.command("bookcrossing")
def ingest_bookcrossing(
    path: SourceDir,
    train_size: TrainSize = DEFAULT_SIZES["train"],
    valid_size: ValidSize = DEFAULT_SIZES["valid"],
    test_size: TestSize = DEFAULT_SIZES["test"],
    seed: Seed = DEFAULT_SEED,
    store: StoreOption = None,
    json: JsonOption = False,
) -> None:
    """Book-Crossing (BX-Book-Ratings.csv, BX-Books.csv)."""
    sizes = {"train": train_size, "valid": valid_size, "test": test_size}
    _ingest(store, lambda: data.load_bookcrossing(path), sizes, seed, json)


@ingest_app.command("demo")
def ingest_demo(
    users: Annotated[int, typer.Option("--users", help="Users to generate.")] = DEFAULT_USERS,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the generator and the subsampling.")
    ] = DEFAULT_SEED,
    train_size: TrainSize = DEFAULT_SIZES["train"],
    valid_size: ValidSize = DEFAULT_SIZES["valid"],
    test_size: TestSize = DEFAULT_SIZES["test"],
    store: StoreOption = None,
    json: JsonOption = False,
) -> None:
    """A small generated movie dataset (24 users → 96/48/48 samples by default)."""
    sizes = {"train": train_size, "valid": valid_size, "test": test_size}
    _ingest(store, lambda: data.generate_demo(users, seed), sizes, seed, json)


@export_app.command("tallrec")
def export_tallrec_cmd(
    directory: Annotated[Path, typer.Argument(help="Directory to write the files into.")],
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite existing train/valid/test.json.")
    ] = False,
    with_user_id: Annotated[
        bool,
        typer.Option("--with-user-id", help="Add each sample's user_id (not in TALLRec)."),
    ] = False,
    store: StoreOption = None,
) -> None:
    """Write train.json, valid.json, test.json in TALLRec's format."""
    from apa_console.workflows.export import export_samples

    written = export_samples(open_store(store), directory, overwrite=force,
                             with_user_id=with_user_id)
    for path, count in written.values():
        output.info(f"wrote {path} ({plural(count, 'sample')})")
