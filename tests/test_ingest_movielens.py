"""MovieLens-100K ingest: TALLRec's preprocessing on a hand-made fixture and on the real data."""

from __future__ import annotations

import hashlib
import json

import pytest
from data_fixtures import (
    REAL_ML100K,
    assert_one_line_error,
    cli,
    new_store,
    store_bytes,
    write_tiny_movielens,
)

from apa_console.data import load_movielens
from apa_console.prompting import MOVIE_INSTRUCTION
from apa_console.samples import Sample
from apa_console.store import records
from apa_console.store.document import Store, get_meta

FULL_SIZES = ("--train-size", "8000", "--valid-size", "1000", "--test-size", "1000")


@pytest.fixture
def tiny_dir(tmp_path):
    return write_tiny_movielens(tmp_path / "ml")


def test_sequences_follow_tallrec_preprocessing(tiny_dir):
    parsed = load_movielens(tiny_dir)
    train, valid, test = (parsed.samples[split] for split in ("train", "valid", "test"))
    assert (len(train), len(valid), len(test)) == (8, 1, 1)
    # users in order of first appearance (7, 3, 12, 5; 12 has no sequence)
    assert [s.user_id for s in train + valid + test] == ["7"] * 3 + ["3"] * 2 + ["5"] * 5
    assert [s.id for s in train + valid + test] == [f"s{n:06d}" for n in range(10)]
    assert [s.order for s in train + valid + test] == list(range(10))
    first = train[0]
    # timestamp order with the tie kept in file order: 6 listed before 5
    assert [h.item for h in first.history] == ["13", "12", "11", "10", "9", "8", "7", "6", "5", "4"]
    assert (first.target_item, first.label) == ("3", 1)
    assert first.target_title == "Misérables, Les (1995)"
    assert first.instruction == MOVIE_INSTRUCTION
    assert first.output == "Yes."
    assert first.input == (
        'User Preference: "Movie 13 (1990)", "Movie 9 (1990)", "Movie 8 (1990)", '
        '"Café au Lait (1993)"\n'
        'User Unpreference: "Movie 12 (1990)", "Movie 11 (1990)", "Movie 10 (1990)", '
        '"Movie 7 (1990)", "Movie 6 (1990)", "Movie 5 (1990)"\n'
        'Whether the user will like the target movie "Misérables, Les (1995)"?'
    )
    assert (valid[0].user_id, valid[0].target_item, valid[0].output) == ("5", "14", "Yes.")
    assert (test[0].user_id, test[0].target_item, test[0].output) == ("5", "15", "No.")


def test_ingest_writes_samples_users_and_meta(tiny_dir, tmp_path):
    store_dir = new_store(tmp_path / "store")
    result = cli("ingest", "movielens", tiny_dir, "--store", store_dir)
    assert result.exit_code == 0, result.output
    assert "train" in result.stdout and "ingested movielens-100k" in result.stderr

    db = Store.open(store_dir).snapshot()
    rows = sorted(records.sample_rows(db), key=lambda row: row["order"])
    assert len(rows) == 10
    assert Sample.from_record(rows[0]).to_record() == dict(rows[0])
    assert all(isinstance(row["target_item"], str) for row in rows)
    users = {row["id"]: row["counts"] for row in db.table("users")}
    assert users == {
        "7": {"train": 3, "valid": 0, "test": 0},
        "3": {"train": 2, "valid": 0, "test": 0},
        "5": {"train": 3, "valid": 1, "test": 1},
    }
    dataset = get_meta(db)["dataset"]
    assert dataset["name"] == "movielens-100k" and dataset["domain"] == "movie"
    assert dataset["sizes_requested"] == {"train": 1024, "valid": 500, "test": 1000}
    assert dataset["seed"] == 0 and dataset["users_are_records"] is False
    assert dataset["full"]["train"] == {"count": 8, "yes": 2, "no": 6}
    assert dataset["full"]["valid"] == {"count": 1, "yes": 1, "no": 0}
    assert dataset["source"] == str(tiny_dir.resolve())


def test_json_summary_goes_to_stdout(tiny_dir, tmp_path):
    store_dir = new_store(tmp_path / "store")
    result = cli("ingest", "movielens", tiny_dir, "--store", store_dir, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["data"]
    assert summary["stored"]["test"] == {"count": 1, "yes": 0, "no": 1}


def stored_ids(store_dir, split):
    db = Store.open(store_dir).snapshot()
    return [row["id"] for row in records.sample_rows(db) if row["split"] == split]


def test_subsampling_is_seeded_and_keeps_order(tiny_dir, tmp_path):
    def ingest(name, *sizes):
        store_dir = new_store(tmp_path / name)
        result = cli("ingest", "movielens", tiny_dir, "--store", store_dir, *sizes)
        assert result.exit_code == 0, result.output
        return store_dir

    first = ingest("a", "--train-size", "4", "--valid-size", "1", "--seed", "3")
    again = ingest("b", "--train-size", "4", "--valid-size", "1", "--seed", "3")
    other_valid = ingest("c", "--train-size", "4", "--valid-size", "0", "--seed", "3")
    kept = stored_ids(first, "train")
    assert len(kept) == 4 and kept == sorted(kept)
    assert stored_ids(again, "train") == kept
    assert stored_ids(other_valid, "train") == kept  # one split's size never moves another
    assert stored_ids(other_valid, "valid") == []
    seeds = {tuple(stored_ids(ingest(f"s{seed}", "--train-size", "4", "--seed", str(seed)),
                              "train")) for seed in range(4)}
    assert len(seeds) > 1


# The one valid record of the fixture, exactly as TALLRec's json.dump(..., indent=4) writes
# it: ASCII only (é → \u00e9), 4-space indent, no newline at the end.
EXPECTED_VALID_JSON = r"""[
    {
        "instruction": "Given the user's preference and unpreference, identify whether the user will like the target movie by answering \"Yes.\" or \"No.\".",
        "input": "User Preference: \"Caf\u00e9 au Lait (1993)\", \"Movie 8 (1990)\", \"Movie 9 (1990)\", \"Movie 13 (1990)\"\nUser Unpreference: \"Movie 5 (1990)\", \"Movie 6 (1990)\", \"Movie 7 (1990)\", \"Movie 10 (1990)\", \"Movie 11 (1990)\", \"Movie 12 (1990)\"\nWhether the user will like the target movie \"Movie 14 (1990)\"?",
        "output": "Yes."
    }
]"""  # noqa: E501


def test_export_writes_tallrec_json(tiny_dir, tmp_path):
    store_dir = new_store(tmp_path / "store")
    assert cli("ingest", "movielens", tiny_dir, "--store", store_dir).exit_code == 0
    out = tmp_path / "out"
    result = cli("export", "tallrec", out, "--store", store_dir)
    assert result.exit_code == 0, result.output
    assert (out / "valid.json").read_bytes() == EXPECTED_VALID_JSON.encode("ascii")
    train = json.loads((out / "train.json").read_bytes())
    assert len(train) == 8 and list(train[0]) == ["instruction", "input", "output"]
    assert "Mis\\u00e9rables" in (out / "train.json").read_text()


def movielens_error_cases():
    """(name, how to break the fixture, expected exit code, message fragments)."""

    def replace_line(file, number, text):
        def damage(directory):
            path = directory / file
            lines = path.read_bytes().split(b"\n")
            lines[number - 1] = text
            path.write_bytes(b"\n".join(lines))

        return damage

    def remove(file):
        return lambda directory: (directory / file).unlink()

    def utf8_items(directory):
        path = directory / "u.item"
        path.write_bytes(path.read_bytes().decode("latin-1").encode("utf-8"))

    def few_ratings(directory):
        path = directory / "u.data"
        path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:20]))

    return [
        ("three fields", replace_line("u.data", 5, b"7\t2\t3"), 6, ["u.data:5:", "4 tab"]),
        ("rating text", replace_line("u.data", 6, b"3\t2\tfive\t502"), 6, ["u.data:6:", "integer"]),
        ("rating range", replace_line("u.data", 7, b"12\t2\t9\t702"), 6, ["u.data:7:", "1..5"]),
        ("unknown item", replace_line("u.data", 8, b"5\t99\t3\t602"), 6, ["u.data:8:", "'99'"]),
        ("latin-1 in u.data", replace_line("u.data", 9, b"7\t3\t4\t96\xe90"), 6,
         ["u.data:9:", "ascii"]),
        ("utf-8 u.item", utf8_items, 6, ["u.item:3:", "Latin-1"]),
        ("item line", replace_line("u.item", 2, b"no pipes here"), 6, ["u.item:2:", "id|title"]),
        ("duplicate item", replace_line("u.item", 2, b"1|Again (1990)|x"), 6,
         ["u.item:2:", "twice"]),
        ("missing u.item", remove("u.item"), 6, ["u.item: missing"]),
        ("missing u.data", remove("u.data"), 6, ["u.data: missing"]),
        ("no sequences", few_ratings, 6, ["u.data:1:", "no user has more than 10"]),
    ]


@pytest.mark.parametrize(
    "damage,exit_code,fragments",
    [case[1:] for case in movielens_error_cases()],
    ids=[case[0] for case in movielens_error_cases()],
)
def test_bad_input_leaves_store_untouched(tiny_dir, tmp_path, damage, exit_code, fragments):
    store_dir = new_store(tmp_path / "store")
    before = store_bytes(store_dir)
    damage(tiny_dir)
    result = cli("ingest", "movielens", tiny_dir, "--store", store_dir)
    assert_one_line_error(result, exit_code, *fragments)
    assert store_bytes(store_dir) == before


def test_bad_arguments_leave_store_untouched(tiny_dir, tmp_path):
    store_dir = new_store(tmp_path / "store")
    before = store_bytes(store_dir)
    result = cli("ingest", "movielens", tmp_path / "nowhere", "--store", store_dir)
    assert_one_line_error(result, 6, "nowhere: missing")
    result = cli("ingest", "movielens", tiny_dir, "--store", store_dir, "--train-size", "-1")
    assert_one_line_error(result, 2, "--train-size")
    result = cli("ingest", "movielens", tiny_dir, "--store", tmp_path / "no-store")
    assert_one_line_error(result, 5, "no store at")
    assert store_bytes(store_dir) == before


def test_second_ingest_is_a_conflict(tiny_dir, tmp_path):
    store_dir = new_store(tmp_path / "store")
    assert cli("ingest", "movielens", tiny_dir, "--store", store_dir).exit_code == 0
    before = store_bytes(store_dir)
    result = cli("ingest", "demo", "--store", store_dir)
    assert_one_line_error(result, 7, "already holds movielens-100k", "new store")
    assert store_bytes(store_dir) == before


# -- the real MovieLens-100K (not in the repository: its license forbids redistribution) --

real_data = pytest.mark.skipif(
    not (REAL_ML100K / "u.data").is_file(), reason=f"MovieLens-100K not at {REAL_ML100K}"
)

# TALLRec's published data/movie/valid.json and test.json (github.com/SAI990323/TALLRec,
# commit 5fb0ae5) are 628,187 and 612,555 bytes. Our full-split export was compared with
# them: same length, and the first, a middle and the last 16,000-character windows are
# identical. These are the sha256 of that export, so any drift from it is caught here.
PUBLISHED = {
    "valid.json": (628_187, "d4aa0c005868aef9b8a85583db946662a2be9c2e0e09f810fe3a7ad31d89274f"),
    "test.json": (612_555, "474e02cde467c8c7001168a4a390a581217edcd8f4726c39aa88c9aa37c54d5e"),
}


@real_data
def test_real_counts_match_tallrec():
    parsed = load_movielens(REAL_ML100K)
    counts = {
        split: (len(samples), sum(s.label for s in samples), sum(1 - s.label for s in samples))
        for split, samples in parsed.samples.items()
    }
    assert counts["train"][0] == 8000
    assert counts["valid"] == (1000, 658, 342)
    assert counts["test"] == (1000, 528, 472)


@real_data
def test_real_full_split_export_reproduces_tallrec_files(tmp_path):
    store_dir = new_store(tmp_path / "store")
    result = cli("ingest", "movielens", REAL_ML100K, "--store", store_dir, *FULL_SIZES)
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    assert cli("export", "tallrec", out, "--store", store_dir).exit_code == 0
    for name, (size, digest) in PUBLISHED.items():
        data = (out / name).read_bytes()
        assert len(data) == size, name
        assert hashlib.sha256(data).hexdigest() == digest, name
    assert len(json.loads((out / "train.json").read_bytes())) == 8000
