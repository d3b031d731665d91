"""A hand-edited or damaged apa.json is exit 5 naming what is wrong, never a crash (issue
36, class 2): the load-time check covers the type of every top-level table, the id of every
record, and every record, before any command reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from refusal_checks import assert_refused, copy_of, runner
from store_fixtures import make_store

from apa_console.cli.app import app
from apa_console.errors import ExitCode
from apa_console.store.document import TABLES

STORE = int(ExitCode.STORE_INVALID)
COMMANDS = (["status"], ["users"], ["audit"], ["requests"], ["shards"],
            ["forget", "--user", "user1", "--dry-run"])
NOT_TABLES = {"a list": [1, 2], "an empty list": [], "a string": "users", "a number": 7,
              "null": None, "true": True}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A store with a row in every table: users, samples, a queued request, the audit."""
    root = make_store(tmp_path_factory.mktemp("shape") / "store").root
    queued = runner.invoke(app, ["forget", "--user", "user1", "--queue", "--yes",
                                 "--store", str(root)])
    assert queued.exit_code == 0, queued.stderr
    return root


@pytest.fixture
def store(template, tmp_path) -> Path:
    return copy_of(template, tmp_path)


def _edit(store: Path, change) -> None:
    document = json.loads((store / "apa.json").read_text())
    change(document)
    (store / "apa.json").write_text(json.dumps(document))


CASES = [(table, kind) for table in (*TABLES, "an_extra_table") for kind in NOT_TABLES]


@pytest.mark.parametrize("table,kind", CASES, ids=[f"{t}={k}" for t, k in CASES])
def test_a_table_of_the_wrong_type_is_exit_5_naming_it(store, table, kind):
    _edit(store, lambda document: document.__setitem__(table, NOT_TABLES[kind]))
    command = COMMANDS[CASES.index((table, kind)) % len(COMMANDS)]
    assert_refused(store, command, STORE, f"table '{table}'")


@pytest.mark.parametrize("table", ["users", "requests", "audit", "meta", "an_extra_table"])
@pytest.mark.parametrize("doc_id", ["abc", "", "1.5", "-1", "١"])  # the last: an Arabic digit
def test_a_record_under_an_id_that_is_not_a_number_is_exit_5(store, table, doc_id):
    def change(document):
        rows = document.setdefault(table, {})
        rows[doc_id] = next(iter(rows.values()), {"x": 1})

    _edit(store, change)
    assert_refused(store, ["status"], STORE, "not a number")


@pytest.mark.parametrize("table", ["users", "requests", "audit", "an_extra_table"])
@pytest.mark.parametrize("record", [[1], "row", 3, None])
def test_a_record_that_is_not_an_object_is_exit_5(store, table, record):
    _edit(store, lambda document: document.setdefault(table, {}).__setitem__("9", record))
    assert_refused(store, ["users"], STORE, f"{table} record 9 is not an object")


@pytest.mark.parametrize("meta", [[], "meta", 1, None])
def test_a_meta_record_of_the_wrong_type_is_exit_5(store, meta):
    _edit(store, lambda document: document["meta"].__setitem__("1", meta))
    assert_refused(store, ["status"], STORE, "meta record 1 is not an object")


@pytest.mark.parametrize("fingerprints", [[], "abc", {"texts": "abc"}, {"samples": [1]},
                                          {"text_lines": "many"}])
def test_a_requests_damaged_fingerprints_are_exit_5(store, fingerprints):
    _edit(store, lambda document: next(iter(document["requests"].values())).__setitem__(
        "removed_fingerprints", fingerprints))
    assert_refused(store, ["requests"], STORE, "removed_fingerprints")


def test_a_long_table_name_is_named_clipped(store):
    name = "t" * 5000
    _edit(store, lambda document: document.__setitem__(name, []))
    line = assert_refused(store, ["status"], STORE, "is not a table of records")
    assert "…" in line and len(line) < 400


def test_a_foreign_json_file_is_still_not_a_store(store):
    (store / "apa.json").write_text(json.dumps({"name": "x", "scripts": ["build"]}))
    assert_refused(store, ["status"], STORE, "not an apa-console store")


def test_an_extra_table_of_records_is_accepted(store):
    """The check refuses damage, not additions a later version may make."""
    _edit(store, lambda document: document.__setitem__("later", {"1": {"x": 1}}))
    assert runner.invoke(app, ["status", "--store", str(store)]).exit_code == 0
