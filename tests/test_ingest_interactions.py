"""`ingest interactions`: an operator's own log in CSV, TSV, Parquet or JSON, checked against
MovieLens' TALLRec preprocessing on the same ratings, and every refusal before a write."""

from __future__ import annotations

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from data_fixtures import (
    assert_one_line_error,
    cli,
    new_store,
    store_bytes,
    tiny_ratings,
    title_of,
    write_tiny_movielens,
)

from apa_console.data import load_interactions, load_movielens
from apa_console.data.interactions import InteractionSpec
from apa_console.errors import DataError, UsageError
from apa_console.prompting import instruction_for
from apa_console.store.document import Store, get_meta

MOVIE = InteractionSpec(domain="movie")


def write_csv(path, header, rows, delimiter=","):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def tiny_log_csv(directory):
    """The tiny MovieLens ratings and titles as an operator would export them."""
    directory.mkdir(parents=True, exist_ok=True)
    ratings = write_csv(directory / "ratings.csv", ["user_id", "item_id", "rating", "timestamp"],
                        tiny_ratings())
    items = write_csv(directory / "items.csv", ["item_id", "title"],
                      [(k, title_of(k)) for k in range(1, 16)])
    return ratings, items


def records_of(parsed):
    return {split: [s.to_record() for s in samples] for split, samples in parsed.samples.items()}


def test_a_csv_log_gives_exactly_the_movielens_samples_of_the_same_ratings(tmp_path):
    ratings, items = tiny_log_csv(tmp_path / "log")
    from_log = load_interactions(ratings, items, MOVIE)
    from_movielens = load_movielens(write_tiny_movielens(tmp_path / "ml"))
    assert records_of(from_log) == records_of(from_movielens)
    assert from_log.details["interactions"] == {
        "read": 50, "unknown_item": 0, "windows": 10, "history": 10, "like_above": 3.0}


def test_parquet_with_typed_columns_gives_the_same_samples_as_csv(tmp_path):
    ratings_csv, items_csv = tiny_log_csv(tmp_path / "log")
    rows = tiny_ratings()
    pq.write_table(pa.table({
        "user": pa.array([int(user) for user, *_ in rows], pa.int64()),
        "movie": pa.array([item for _, item, _, _ in rows], pa.int32()),
        "stars": pa.array([float(rating) for *_, rating, _ in rows], pa.float64()),
        "when": pa.array([time for *_, time in rows], pa.timestamp("s")),
    }), tmp_path / "ratings.parquet")
    pq.write_table(pa.table({"movie": list(range(1, 16)),
                             "name": [title_of(k) for k in range(1, 16)]}),
                   tmp_path / "items.parquet")
    spec = InteractionSpec(user_col="user", item_col="movie", rating_col="stars",
                           time_col="when", title_col="name", domain="movie")
    from_parquet = load_interactions(tmp_path / "ratings.parquet", tmp_path / "items.parquet",
                                     spec)
    assert records_of(from_parquet) == records_of(load_interactions(ratings_csv, items_csv,
                                                                     MOVIE))


def amazon_like(directory):
    """Amazon's ratings-only CSV has no header (item, user, rating, time); its metadata is
    JSON Lines keyed by asin with a title and sometimes a brand. Item G9 has no metadata."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = []
    for user in ("A1", "B2"):
        for step in range(5):
            item = f"G{(step + (user == 'B2')) % 4}"
            rows.append((item, user, 5 if step % 2 else 2, 1_400_000_000 + step))
    rows.insert(3, ("G9", "A1", "5", 1_400_000_002))
    write_csv(directory / "ratings_Video_Games.csv", None, rows)
    meta = [{"asin": f"G{k}", "title": f"Quest {k}", **({"brand": "Nintendo"} if k % 2 else {})}
            for k in range(4)]
    (directory / "meta_Video_Games.json").write_text(
        "\n".join(json.dumps(record) for record in meta) + "\n")
    return directory / "ratings_Video_Games.csv", directory / "meta_Video_Games.json"


AMAZON = InteractionSpec(user_col="2", item_col="1", rating_col="3", time_col="4",
                         items_id_col="asin", text_cols=("brand",), history=3, domain="game",
                         header=False)


def test_an_amazon_reviews_shape_with_json_lines_metadata(tmp_path):
    ratings, meta = amazon_like(tmp_path / "amazon")
    parsed = load_interactions(ratings, meta, AMAZON)
    assert parsed.domain == "game" and parsed.details["interactions"]["unknown_item"] == 1
    every = [s for split in ("train", "valid", "test") for s in parsed.samples[split]]
    assert [(s.user_id, s.target_item) for s in every] == [
        ("A1", "G3"), ("A1", "G0"), ("B2", "G0"), ("B2", "G1")]
    first = every[0]
    assert first.instruction == instruction_for("game")
    assert [(h.item, h.title, h.liked) for h in first.history] == [
        ("G0", "Quest 0", False), ("G1", "Quest 1 (Nintendo)", True), ("G2", "Quest 2", False)]
    assert first.input.endswith('the target game "Quest 3 (Nintendo)"?') and first.label == 1


def test_likes_ties_and_iso_times(tmp_path):
    """A 1/0 or true/false like column with --like-above 0; ISO times sort by time, equal
    times keep file order; --file-order ignores times altogether."""
    items = write_csv(tmp_path / "items.tsv", ["item_id", "title"],
                      [(k, f"T{k}") for k in range(4)], delimiter="\t")
    rows = [("u", 0, "true", "2024-03-01T00:00:00+00:00"), ("u", 1, "0", "2024-01-01"),
            ("u", 2, "1", "2024-02-01"), ("u", 3, "false", "2024-02-01")]
    ratings = write_csv(tmp_path / "ratings.csv", ["user_id", "item_id", "liked", "at"], rows)
    spec = InteractionSpec(rating_col="liked", time_col="at", like_above=0, history=2)
    timed = load_interactions(ratings, items, spec).samples
    windows = [(s.target_item, s.label, [h.item for h in s.history])
               for split in ("train", "valid", "test") for s in timed[split]]
    assert windows == [("3", 0, ["1", "2"]), ("0", 1, ["2", "3"])]
    in_file_order = load_interactions(
        ratings, items, InteractionSpec(rating_col="liked", time_col=None, like_above=0,
                                        history=2)).samples
    assert [s.target_item for split in ("train", "valid", "test")
            for s in in_file_order[split]] == ["2", "3"]


def test_cli_keeps_all_with_size_all_and_records_the_request(tmp_path):
    ratings, items = tiny_log_csv(tmp_path / "log")
    store_dir = new_store(tmp_path / "store")
    result = cli("ingest", "interactions", ratings, "--items", items, "--domain", "movie",
                 "--train-size", "all", "--valid-size", "ALL", "--test-size", "0",
                 "--store", store_dir, "--json")
    assert result.exit_code == 0, result.output
    dataset = get_meta(Store.open(store_dir).snapshot())["dataset"]
    assert dataset["sizes_requested"] == {"train": "all", "valid": "all", "test": 0}
    assert {split: dataset["stored"][split]["count"] for split in dataset["stored"]} == {
        "train": 8, "valid": 1, "test": 0}


def test_cli_says_how_many_rows_name_items_the_table_lacks(tmp_path):
    ratings, meta = amazon_like(tmp_path / "amazon")
    store_dir = new_store(tmp_path / "store")
    result = cli("ingest", "interactions", ratings, "--items", meta, "--no-header",
                 "--user-col", "2", "--item-col", "1", "--rating-col", "3", "--time-col", "4",
                 "--items-id-col", "asin", "--history", "3", "--store", store_dir)
    assert result.exit_code == 0, result.output
    assert "left out 1 row naming items meta_Video_Games.json lacks" in result.stderr


# -- refusals: nothing is written ----------------------------------------------------------

HEADER = "user_id,item_id,rating,timestamp\n"
BAD_RATINGS = {
    "rating not a number": (HEADER + "u,1,ten,5\n", ["ratings.csv:2:", "'rating'", "'ten'"]),
    "rating NaN": (HEADER + "u,1,nan,5\n", ["ratings.csv:2:", "'rating'", "finite"]),
    "empty user": (HEADER + "u,1,4,5\n,1,4,6\n", ["ratings.csv:3:", "'user_id'", "empty id"]),
    "NUL in user": (HEADER + "u\x00x,1,4,5\n", ["ratings.csv:2:", "'user_id'", "U+0000 (NUL)"]),
    "ESC in item": (HEADER + "u,1\x1b[2J,4,5\n", ["ratings.csv:2:", "'item_id'", "U+001B"]),
    "tab in user": (HEADER + "u\tv,1,4,5\n", ["ratings.csv:2:", "'user_id'", "U+0009"]),
    "newline in user": (HEADER + '"u\nv",1,4,5\n', ["ratings.csv:3:", "U+000A"]),
    "short row": (HEADER + "u,1,4\n", ["ratings.csv:2:", "expected 4 fields", "got 3"]),
    "bad time": (HEADER + "u,1,4,yesterday\n", ["ratings.csv:2:", "'timestamp'", "ISO 8601"]),
    "id too long": (HEADER + "u" * 300 + ",1,4,5\n", ["ratings.csv:2:", "longer than 256"]),
    "not UTF-8": (HEADER.encode() + b"u\xff,1,4,5\n", ["ratings.csv:2:", "not valid utf-8"]),
    "header only": (HEADER, ["ratings.csv:1:", "no rows"]),
    "too few ratings": (HEADER + "u,1,4,5\n", ["ratings.csv:1:", "more than 10 ratings"]),
}
BAD_ITEMS = {
    "NUL in title": ("item_id,title\n1,Heat\n2,Ca\x00sino\n", ["items.csv:3:", "'title'",
                                                              "NUL"]),
    "C1 in title": ("item_id,title\n1,Heat \x9b31m\n", ["items.csv:2:", "U+009B"]),
    "empty title": ("item_id,title\n1,\n", ["items.csv:2:", "empty title"]),
    "item twice": ("item_id,title\n1,A\n2,B\n1,C\n", ["items.csv:4:", "appears twice"]),
    "header twice": ("item_id,item_id\n1,A\n", ["items.csv:1:", "twice"]),
}


def _refused(tmp_path, ratings, items, fragments, *options, code=6):
    store_dir = new_store(tmp_path / "store")
    before = store_bytes(store_dir)
    result = cli("ingest", "interactions", ratings, "--items", items, *options,
                 "--store", store_dir)
    assert_one_line_error(result, code, *fragments)
    assert store_bytes(store_dir) == before


@pytest.mark.parametrize("case", sorted(BAD_RATINGS))
def test_a_malformed_ratings_file_exits_6_naming_file_line_and_column(tmp_path, case):
    _, items = tiny_log_csv(tmp_path / "log")
    content, fragments = BAD_RATINGS[case]
    ratings = tmp_path / "ratings.csv"
    ratings.write_bytes(content if isinstance(content, bytes) else content.encode())
    _refused(tmp_path, ratings, items, fragments)


@pytest.mark.parametrize("case", sorted(BAD_ITEMS))
def test_a_malformed_item_table_exits_6_naming_file_line_and_column(tmp_path, case):
    ratings, _ = tiny_log_csv(tmp_path / "log")
    content, fragments = BAD_ITEMS[case]
    items = tmp_path / "items.csv"
    items.write_text(content)
    _refused(tmp_path, ratings, items, fragments)


def test_malformed_json_lines_and_parquet_exit_6(tmp_path):
    ratings, _ = tiny_log_csv(tmp_path / "log")
    items = tmp_path / "items.jsonl"
    items.write_text('{"item_id": 1, "title": "A"}\n{"item_id": 2, "title": \n')
    _refused(tmp_path / "a", ratings, items, ["items.jsonl:2:", "invalid JSON"])
    items.write_text('{"item_id": 1, "title": "A"}\n{"item_id": 2, "title": ["B"]}\n')
    _refused(tmp_path / "b", ratings, items, ["items.jsonl:2:", "'title'", "expected text"])
    items.write_text('{"item_id": 1, "title": "A\\u0000"}\n')
    _refused(tmp_path / "c", ratings, items, ["items.jsonl:1:", "NUL"])
    parquet = tmp_path / "items.parquet"
    parquet.write_bytes(b"PAR1 not really")
    _refused(tmp_path / "d", ratings, parquet, ["items.parquet", "not a readable Parquet"])
    pq.write_table(pa.table({"item_id": [1, 2], "title": ["A", "B\x00"]}), parquet)
    _refused(tmp_path / "e", ratings, parquet, ["items.parquet:row 2:", "'title'", "NUL"])


@pytest.mark.parametrize("options,fragments", [
    (["--rating-col", "stars"], ["--rating-col 'stars'", "has no such column", "'rating'"]),
    (["--title-col", "name"], ["--title-col 'name'", "items.csv has no such column"]),
    (["--history", "0"], ["--history must be 1 to 50"]),
    (["--domain", "video game"], ["--domain must be one word"]),
    (["--like-above", "nan"], ["--like-above must be a finite number"]),
    (["--train-size", "most"], ["'most' is not a count or 'all'"]),
    (["--train-size", "-1"], ["--train-size must be 0 or more"]),
])
def test_bad_options_exit_2(tmp_path, options, fragments):
    ratings, items = tiny_log_csv(tmp_path / "log")
    store_dir = new_store(tmp_path / "store")
    before = store_bytes(store_dir)
    result = cli("ingest", "interactions", ratings, "--items", items, *options,
                 "--store", store_dir)
    assert result.exit_code == 2, result.output
    assert all(fragment in result.stderr for fragment in fragments), result.stderr
    assert store_bytes(store_dir) == before


def test_an_unknown_suffix_or_no_items_option_exits_2(tmp_path):
    ratings, items = tiny_log_csv(tmp_path / "log")
    renamed = ratings.rename(tmp_path / "ratings.dat")
    with pytest.raises(UsageError, match="cannot tell the format"):
        load_interactions(renamed, items, MOVIE)
    store_dir = new_store(tmp_path / "store")
    result = cli("ingest", "interactions", renamed, "--store", store_dir)
    assert result.exit_code == 2 and "--items" in result.stderr


def test_rows_of_unknown_items_are_still_checked(tmp_path):
    """Leaving a row out because its item has no title must not skip its checks."""
    ratings, items = tiny_log_csv(tmp_path / "log")
    with ratings.open("a") as handle:
        handle.write("7,99,five,1\n")
    with pytest.raises(DataError, match=r"ratings.csv:52: column 'rating'"):
        load_interactions(ratings, items, MOVIE)


# -- end to end on the tiny model --------------------------------------------------------


def test_a_csv_log_ingests_partitions_trains_forgets_and_verifies(tmp_path, tiny_model_dir):
    """User 7 is forgotten: their windows (ratings in reverse item order) are nobody else's,
    while user 3's prompts equal user 5's first ones, which the trace scan would report."""
    ratings, items = tiny_log_csv(tmp_path / "log")
    store_dir = new_store(tmp_path / "store")
    model = ["--model", str(tiny_model_dir), "--store", str(store_dir)]
    steps = [
        ["ingest", "interactions", ratings, "--items", items, "--domain", "movie",
         "--store", store_dir],
        ["partition", "--method", "apa-user", "--shards", "2", *model],
        ["train", "--epochs", "1", "--batch-size", "4", *model],
        ["forget", "--user", "7", "--yes", *model, "--json"],
    ]
    for step in steps:
        result = cli(*step)
        assert result.exit_code == 0, (step[0], result.output)
    request = json.loads(result.stdout)["data"]["request"]
    verified = cli("verify", "--request", request, *model)
    assert verified.exit_code == 0, verified.output
    users = json.loads(cli("users", "--json", "--store", store_dir).stdout)["data"]
    assert "7" not in {user["id"] for user in users}
