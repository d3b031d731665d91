"""Book-Crossing ingest on hand-made BX files."""

from __future__ import annotations

import pytest
from data_fixtures import assert_one_line_error, cli, new_store, store_bytes

from apa_console.data import load_bookcrossing
from apa_console.prompting import BOOK_INSTRUCTION

BOOKS_HEADER = '"ISBN";"Book-Title";"Book-Author";"Year-Of-Publication";"Publisher"\n'
RATINGS_HEADER = '"User-ID";"ISBN";"Book-Rating"\n'
RATINGS = "BX-Book-Ratings.csv"


def write_bx(directory):
    """Ten eligible users (1..10) with three known books each; user 99 has two; user 1 also
    rated a book missing from BX-Books.csv, which is dropped as in TALLRec's inner join."""
    directory.mkdir(parents=True, exist_ok=True)
    books = [
        ("0001", "Les Misérables", "Victor Hugo"),
        ("0002", 'The \\"Quoted\\" Book', "Ann Author"),
        ("0003", "Dune", "Frank Herbert"),
        ("0004", "Emma", "Jane Austen"),
    ]
    (directory / "BX-Books.csv").write_bytes(
        (BOOKS_HEADER + "".join(f'"{i}";"{t}";"{a}";"1990";"P"\n' for i, t, a in books)).encode(
            "latin-1"
        )
    )
    ratings = [("1", "9999", "10")]
    for user in range(1, 11):
        ratings += [(str(user), "0001", "8"), (str(user), "0002", "0"), (str(user), "0003", "6")]
        ratings.append((str(user), "0004", str(user)))  # the target: liked when user > 5
    ratings += [("99", "0001", "9"), ("99", "0003", "9")]
    (directory / "BX-Book-Ratings.csv").write_bytes(
        (RATINGS_HEADER + "".join(f'"{u}";"{i}";"{r}"\n' for u, i, r in ratings)).encode("ascii")
    )
    return directory


def test_one_sample_per_eligible_user(tmp_path):
    parsed = load_bookcrossing(write_bx(tmp_path / "bx"))
    assert parsed.domain == "book"
    counts = {split: len(samples) for split, samples in parsed.samples.items()}
    assert counts == {"train": 8, "valid": 1, "test": 1}
    first = parsed.samples["train"][0]
    assert first.user_id == "1" and first.instruction == BOOK_INSTRUCTION
    assert [(h.item, h.liked) for h in first.history] == [
        ("0001", True), ("0002", False), ("0003", True),
    ]
    assert first.history[0].title == "Les Misérables written by Victor Hugo"
    assert first.history[1].title == 'The "Quoted" Book written by Ann Author'
    assert first.target_title == "Emma written by Jane Austen" and first.label == 0
    assert parsed.samples["test"][0].user_id == "10" and parsed.samples["test"][0].output == "Yes."
    assert first.input.endswith(
        'Whether the user will like the target book "Emma written by Jane Austen"?'
    )


def test_cli_ingest_bookcrossing(tmp_path):
    store_dir = new_store(tmp_path / "store")
    result = cli("ingest", "bookcrossing", write_bx(tmp_path / "bx"), "--store", store_dir)
    assert result.exit_code == 0, result.output
    result = cli("users", "--json", "--store", store_dir)
    assert len(result.stdout) and '"id": "99"' not in result.stdout


@pytest.mark.parametrize(
    "file,content,fragments",
    [
        (RATINGS, RATINGS_HEADER + '"1";"0001"\n', ["Ratings.csv:2:", "3 `;`"]),
        (RATINGS, RATINGS_HEADER + '"1";"0001";"ten"\n', ["Ratings.csv:2:", "integer"]),
        (RATINGS, '"who";"what"\n', ["Ratings.csv:1:", "header"]),
        ("BX-Books.csv", BOOKS_HEADER + '"";"No ISBN";"X";"1";"P"\n', ["Books.csv:2:", "empty"]),
        (RATINGS, RATINGS_HEADER + '"1";"0001";"5"\n', ["3 or more"]),
    ],
    ids=["fields", "rating", "header", "isbn", "no-eligible-user"],
)
def test_bad_files_name_file_and_line(tmp_path, file, content, fragments):
    directory = write_bx(tmp_path / "bx")
    (directory / file).write_text(content, encoding="latin-1")
    store_dir = new_store(tmp_path / "store")
    before = store_bytes(store_dir)
    result = cli("ingest", "bookcrossing", directory, "--store", store_dir)
    assert_one_line_error(result, 6, *fragments)
    assert store_bytes(store_dir) == before


def test_missing_file(tmp_path):
    directory = write_bx(tmp_path / "bx")
    (directory / "BX-Books.csv").unlink()
    store_dir = new_store(tmp_path / "store")
    result = cli("ingest", "bookcrossing", directory, "--store", store_dir)
    assert_one_line_error(result, 6, "BX-Books.csv: missing")
