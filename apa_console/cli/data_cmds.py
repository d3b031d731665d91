"""`ingest movielens|tallrec|demo|bookcrossing|interactions` and `export tallrec`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from apa_console import data
from apa_console.cli import output
from apa_console.cli.common import JsonOption, StoreOption, new_typer, open_store
from apa_console.data.demo import DEFAULT_USERS
from apa_console.data.ingest import ALL, DEFAULT_SEED, DEFAULT_SIZES, ParsedDataset
from apa_console.samples import SPLITS
from apa_console.units import plural


def _split_size(value: str) -> int | None:
    """A split size: a count, or `all` to keep the whole split."""
    if isinstance(value, int) or value is None:  # the default, already parsed
        return value
    if value.strip().lower() == "all":
        return ALL
    try:
        return int(value)
    except ValueError:
        raise typer.BadParameter(f"{value[:40]!r} is not a count or 'all'") from None


def _size_option(name: str, help_text: str) -> Any:
    return typer.Option(name, help=help_text, parser=_split_size, metavar="N|all")


SourceDir = Annotated[Path, typer.Argument(help="Directory holding the source files.")]
TrainSize = Annotated[
    int | None, _size_option("--train-size", "Train samples to keep (drawn with --seed; "
                                            "all: every one).")
]
ValidSize = Annotated[int | None, _size_option("--valid-size", "Validation samples to keep.")]
TestSize = Annotated[int | None, _size_option("--test-size", "Test samples to keep.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the subsampling.")]


def _ingest(
    store_path: Path | None,
    load: Callable[[], ParsedDataset],
    sizes: dict[str, int],
    seed: int,
    as_json: bool,
) -> dict[str, Any]:
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
    return dataset


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


@ingest_app.command("interactions")
def ingest_interactions(
    ratings: Annotated[Path, typer.Argument(
        help="Interaction log, one row per rating or like: .csv, .tsv, .parquet, .jsonl.")],
    items: Annotated[Path, typer.Option(
        "--items", help="Item table with an id and a title column: .csv, .tsv, .parquet, "
        ".jsonl or .json.", show_default=False)],
    user_col: Annotated[str, typer.Option("--user-col", help="Column of user ids.")] = "user_id",
    item_col: Annotated[str, typer.Option("--item-col", help="Column of item ids.")] = "item_id",
    rating_col: Annotated[str, typer.Option(
        "--rating-col", help="Column of ratings, or of likes (1/0, true/false).")] = "rating",
    time_col: Annotated[str, typer.Option(
        "--time-col", help="Column of times: seconds or ISO 8601.")] = "timestamp",
    file_order: Annotated[bool, typer.Option(
        "--file-order", help="No time column: each user's rows in file order.")] = False,
    items_id_col: Annotated[str | None, typer.Option(
        "--items-id-col", help="The item table's id column (default: --item-col).",
        show_default=False)] = None,
    title_col: Annotated[str, typer.Option("--title-col", help="Column of titles.")] = "title",
    text_col: Annotated[list[str] | None, typer.Option(
        "--text-col", help="Item column shown after the title, \"Title (brand)\"; repeatable.",
        show_default=False)] = None,
    like_above: Annotated[float, typer.Option(
        "--like-above", help="A rating above this is a like (0 for a 1/0 like column).")] = 3.0,
    history: Annotated[int, typer.Option(
        "--history", help="Ratings before each target in its prompt (TALLRec: 10).")] = 10,
    domain: Annotated[str, typer.Option(
        "--domain", help="What the items are, one word: \"… like the target game?\"")] = "item",
    no_header: Annotated[bool, typer.Option(
        "--no-header", help="CSV/TSV without a header row: name columns 1, 2, …")] = False,
    train_size: TrainSize = DEFAULT_SIZES["train"],
    valid_size: ValidSize = DEFAULT_SIZES["valid"],
    test_size: TestSize = DEFAULT_SIZES["test"],
    seed: Seed = DEFAULT_SEED,
    store: StoreOption = None,
    json: JsonOption = False,
) -> None:
    """Your own interaction log: TALLRec's sliding windows over each user's ratings in time
    order, users cut 80/10/10 in order of first appearance."""
    from apa_console.data.interactions import InteractionSpec, load_interactions

    spec = InteractionSpec(
        user_col=user_col, item_col=item_col, rating_col=rating_col,
        time_col=None if file_order else time_col, items_id_col=items_id_col,
        title_col=title_col, text_cols=tuple(text_col or ()), like_above=like_above,
        history=history, domain=domain, header=not no_header,
    )
    spec.check()  # bad options exit 2 before the store is opened
    sizes = {"train": train_size, "valid": valid_size, "test": test_size}
    dataset = _ingest(store, lambda: load_interactions(ratings, items, spec), sizes, seed, json)
    unknown = dataset["interactions"]["unknown_item"]
    if unknown:
        output.info(f"left out {plural(unknown, 'row')} naming items {items.name} lacks")


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
