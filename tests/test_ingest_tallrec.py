"""TALLRec JSON: import, export, and the round trip between them."""

from __future__ import annotations

import json

import pytest
from data_fixtures import assert_one_line_error, cli, new_store, store_bytes

from apa_console.data import load_tallrec
from apa_console.prompting import BOOK_INSTRUCTION, MOVIE_INSTRUCTION
from apa_console.store import catalog
from apa_console.store.document import Store, get_meta


def record(liked, disliked, target, answer="Yes.", domain="movie", **extra):
    quoted = lambda titles: ", ".join(f'"{title}"' for title in titles)  # noqa: E731
    return {
        "instruction": MOVIE_INSTRUCTION if domain == "movie" else BOOK_INSTRUCTION,
        "input": (
            f"User Preference: {quoted(liked)}\nUser Unpreference: {quoted(disliked)}\n"
            f'Whether the user will like the target {domain} "{target}"?'
        ),
        "output": answer,
        **extra,
    }


def write_split_files(directory, train, valid, test):
    directory.mkdir(parents=True, exist_ok=True)
    for name, records in (("train", train), ("valid", valid), ("test", test)):
        (directory / f"{name}.json").write_text(json.dumps(records, indent=4))
    return directory


@pytest.fixture
def tallrec_dir(tmp_path):
    return write_split_files(
        tmp_path / "tallrec",
        [
            record(["Heat (1995)", "Alien (1979)"], ["Fargo (1996)"], "Scream (1996)"),
            record([], ["Heat (1995)"], "Babe (1995)", "No."),
            record(["Misérables, Les (1995)"], [], "Heat (1995)"),
        ],
        [record(["Alien (1979)"], [], "Fargo (1996)", "No.")],
        [record(["Fargo (1996)"], ["Babe (1995)"], "Alien (1979)")],
    )


def test_each_record_is_its_own_user_without_user_id(tallrec_dir):
    parsed = load_tallrec(tallrec_dir)
    assert parsed.users_are_records is True and parsed.domain == "movie"
    train = parsed.samples["train"]
    assert [s.user_id for s in train] == ["r000000", "r000001", "r000002"]
    assert [s.id for s in parsed.samples["test"]] == ["s000004"]
    first = train[0]
    assert [(h.item, h.title, h.liked) for h in first.history] == [
        ("Heat (1995)", "Heat (1995)", True),
        ("Alien (1979)", "Alien (1979)", True),
        ("Fargo (1996)", "Fargo (1996)", False),
    ]
    assert (first.target_item, first.label, first.output) == ("Scream (1996)", 1, "Yes.")
    assert train[1].history[0].liked is False and train[1].label == 0
    assert train[2].history[0].title == "Misérables, Les (1995)"


def test_ingest_records_users_are_records_in_meta(tallrec_dir, tmp_path):
    store_dir = new_store(tmp_path / "store")
    result = cli("ingest", "tallrec", tallrec_dir, "--store", store_dir)
    assert result.exit_code == 0, result.output
    dataset = get_meta(Store.open(store_dir).snapshot())["dataset"]
    assert dataset["users_are_records"] is True
    assert dataset["full"]["train"] == {"count": 3, "yes": 2, "no": 1}
    assert len(catalog.list_users(Store.open(store_dir))) == 5


def test_user_id_field_groups_records(tmp_path):
    directory = write_split_files(
        tmp_path / "tallrec",
        [record(["A (1990)"], [], "B (1991)", user_id="42"), record([], [], "C", user_id=7)],
        [record(["B (1991)"], [], "C (1992)", "No.", user_id="42")],
        [],
    )
    parsed = load_tallrec(directory)
    assert parsed.users_are_records is False
    assert [s.user_id for s in parsed.samples["train"] + parsed.samples["valid"]] == [
        "42", "7", "42",
    ]


def test_book_records_with_authors_parse(tmp_path):
    book = {
        "instruction": BOOK_INSTRUCTION,
        "input": 'User Preference: "Emma" written by Jane Austen, "Dune" written by Frank Herbert\n'
        "User Unpreference: \n"
        'Whether the user will like the target book "Ulysses" written by James Joyce?',
        "output": "No.",
    }
    parsed = load_tallrec(write_split_files(tmp_path / "books", [book], [], []))
    sample = parsed.samples["train"][0]
    assert parsed.domain == "book"
    assert [h.title for h in sample.history] == [
        "Emma written by Jane Austen", "Dune written by Frank Herbert",
    ]
    assert sample.target_title == "Ulysses written by James Joyce"


def test_round_trip_through_export(tmp_path):
    source = new_store(tmp_path / "source")
    assert cli("ingest", "demo", "--users", "5", "--store", source).exit_code == 0
    plain, with_ids = tmp_path / "plain", tmp_path / "with-ids"
    assert cli("export", "tallrec", plain, "--store", source).exit_code == 0
    result = cli("export", "tallrec", with_ids, "--with-user-id", "--store", source)
    assert result.exit_code == 0, result.output

    copy = new_store(tmp_path / "copy")
    assert cli("ingest", "tallrec", with_ids, "--store", copy).exit_code == 0
    original, imported = Store.open(source).snapshot(), Store.open(copy).snapshot()
    assert get_meta(imported)["dataset"]["users_are_records"] is False
    for split, samples in catalog.samples_by_split(original).items():
        again = catalog.samples_by_split(imported)[split]
        # ids number the records as the files list them, so only the content must agree
        assert [(s.user_id, s.input, s.output, s.label) for s in samples] == [
            (s.user_id, s.input, s.output, s.label) for s in again
        ]
        # TALLRec text lists liked titles first: that is the order an import recovers
        assert [[(h.title, h.liked) for h in s.history] for s in again] == [
            [(h.title, h.liked) for h in s.history if h.liked]
            + [(h.title, h.liked) for h in s.history if not h.liked]
            for s in samples
        ]
    reexported = tmp_path / "again"
    assert cli("export", "tallrec", reexported, "--store", copy).exit_code == 0
    for name in ("train.json", "valid.json", "test.json"):
        assert (reexported / name).read_bytes() == (plain / name).read_bytes()


def test_export_refuses_to_overwrite_without_force(tallrec_dir, tmp_path):
    store_dir = new_store(tmp_path / "store")
    assert cli("ingest", "tallrec", tallrec_dir, "--store", store_dir).exit_code == 0
    out = tmp_path / "out"
    assert cli("export", "tallrec", out, "--store", store_dir).exit_code == 0
    before = (out / "train.json").read_bytes()
    result = cli("export", "tallrec", out, "--store", store_dir)
    assert_one_line_error(result, 7, "already exists", "--force")
    assert cli("export", "tallrec", out, "--force", "--store", store_dir).exit_code == 0
    assert (out / "train.json").read_bytes() == before


def test_export_of_an_empty_store_is_a_conflict(tmp_path):
    store_dir = new_store(tmp_path / "store")
    result = cli("export", "tallrec", tmp_path / "out", "--store", store_dir)
    assert_one_line_error(result, 7, "no samples", "ingest")
    assert not (tmp_path / "out").exists()


GOOD = json.dumps(record(["A (1990)"], [], "B (1991)"), indent=4)


@pytest.mark.parametrize(
    "train_text,fragments",
    [
        ('[\n    {"instruction": "x",\n     "input": }\n]', ["train.json:3:", "invalid JSON"]),
        ('{"not": "a list"}', ["train.json:1:", "JSON list"]),
        (f"[\n{GOOD},\n    42\n]", ["train.json:7:", "JSON object"]),
        (f'[\n{GOOD},\n    {{"instruction": "x", "input": "y"}}\n]', ["train.json:7:", "'output'"]),
        (
            "[\n" + GOOD.replace('"Yes."', '"Maybe"') + "\n]",
            ["train.json:2:", '"Yes." or "No."'],
        ),
        ("[\n" + GOOD.replace("User Preference", "Likes") + "\n]", ["train.json:2:", "TALLRec"]),
        (f"[\n{GOOD}\n]\n]", ["train.json:8:", "after the list"]),
        (f"[\n{GOOD} {GOOD}\n]", ["train.json:6:", "`,` or `]`"]),
    ],
    ids=["syntax", "not-list", "not-object", "no-output", "answer", "input", "trailing", "comma"],
)
def test_malformed_records_name_file_and_line(tmp_path, train_text, fragments):
    directory = write_split_files(tmp_path / "bad", [], [], [])
    (directory / "train.json").write_text(train_text)
    store_dir = new_store(tmp_path / "store")
    before = store_bytes(store_dir)
    result = cli("ingest", "tallrec", directory, "--store", store_dir)
    assert_one_line_error(result, 6, *fragments)
    assert store_bytes(store_dir) == before


def test_other_bad_sources(tallrec_dir, tmp_path):
    store_dir = new_store(tmp_path / "store")
    before = store_bytes(store_dir)

    (tallrec_dir / "valid.json").write_bytes(b'[\n    {"output": "No\xe9."}\n]')
    result = cli("ingest", "tallrec", tallrec_dir, "--store", store_dir)
    assert_one_line_error(result, 6, "valid.json:2:", "utf-8")

    (tallrec_dir / "valid.json").unlink()
    result = cli("ingest", "tallrec", tallrec_dir, "--store", store_dir)
    assert_one_line_error(result, 6, "valid.json: missing")

    mixed = write_split_files(
        tmp_path / "mixed", [record([], [], "A", user_id="1"), record([], [], "B")], [], []
    )
    result = cli("ingest", "tallrec", mixed, "--store", store_dir)
    assert_one_line_error(result, 6, "train.json:", "no user_id")

    domains = write_split_files(
        tmp_path / "domains", [record([], [], "A"), record([], [], "B", domain="book")], [], []
    )
    result = cli("ingest", "tallrec", domains, "--store", store_dir)
    assert_one_line_error(result, 6, "train.json:", "one domain")

    empty = write_split_files(tmp_path / "empty", [], [], [])
    result = cli("ingest", "tallrec", empty, "--store", store_dir)
    assert_one_line_error(result, 6, "no records")
    assert store_bytes(store_dir) == before


def test_errors_far_into_a_large_file_name_the_right_line(tmp_path):
    """Line numbers are counted on from record to record (counting from the start of the
    file each time was quadratic); every kind of error still names its own line."""
    from apa_console.data.tallrec import iter_json_list
    from apa_console.errors import DataError

    rows = [record(["Heat (1995)"], [], f"Film {n} (1990)") for n in range(3000)]
    text = json.dumps(rows, indent=4)
    lines = [line for line, _ in iter_json_list(tmp_path / "train.json", text)]
    opening = [number for number, line in enumerate(text.split("\n"), start=1)
               if line == "    {"]
    assert lines == opening and len(lines) == 3000

    def error_line(content: str) -> str:
        with pytest.raises(DataError) as refused:
            list(iter_json_list(tmp_path / "train.json", content))
        return str(refused.value).split(": ", 1)[0].rsplit(":", 1)[1]

    last = text.rfind("    {")
    expected = text.count("\n", 0, last) + 1
    assert error_line(text[:last] + "    nonsense\n]") == str(expected)  # invalid JSON
    no_comma = text[:last].rstrip().rstrip(",") + "\n" + text[last:]  # before the last
    assert error_line(no_comma) == str(expected)  # "expected `,` or `]`", where `{` stands
    rows[-1]["output"] = "Maybe."  # a record that parses but is not TALLRec's
    with pytest.raises(DataError, match=rf"train.json:{expected}: output must be"):
        load_tallrec(write_split_files(tmp_path / "maybe", rows, [], []))
    assert error_line(text + "\n\n x") == str(text.count("\n") + 3)  # text after the list
