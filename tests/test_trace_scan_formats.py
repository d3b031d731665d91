"""`verify`'s trace scan finds a forgotten user's data in any file, whatever its format
(issue 36, class 6): plain text, JSON Lines, CSV, no extension, a hidden file, CRLF lines,
escaped newlines, a non-UTF-8 file. It matches whole values by keyed fingerprint, so a
clean store, a longer id that contains the forgotten one, or a line that every prompt
shares, is no trace.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from refusal_checks import copy_of, runner
from store_fixtures import make_samples, make_store, trained_store

from apa_console.cli.app import app
from apa_console.engine.backbone import Backbone
from apa_console.errors import ExitCode
from apa_console.prompting import sample_prompt
from apa_console.store import records
from apa_console.store.document import Store
from apa_console.unlearning.trace_fields import line_runs, text_fields
from apa_console.unlearning.verify import scan_for_traces

USER = "user1"
GONE = [s for s in make_samples() if s.user_id == USER]
KEPT = next(s for s in make_samples() if s.user_id != USER)
TEXT, ID, SUBJECT = ("a removed sample's text", "a removed sample id",
                     "a forgotten user or item id")


@pytest.fixture(scope="module")
def forgotten(tmp_path_factory) -> Path:
    """A store that forgot USER (no shards, so no model is needed)."""
    root = make_store(tmp_path_factory.mktemp("scan") / "store").root
    result = runner.invoke(app, ["forget", "--user", USER, "--yes", "--store", str(root)])
    assert result.exit_code == 0, result.stderr
    return root


def scan(root: Path) -> list[str]:
    store = Store(root)  # not Store.open: opening collects stray files in managed folders
    request = records.find_request(store.snapshot(), "r0001")
    return scan_for_traces(store, request["removed_fingerprints"], request["subjects"])


def _csv(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


PLANTED = {
    "notes.txt": (f"asked to forget\n{USER}\n\n{sample_prompt(GONE[0])}\nend\n", {TEXT, SUBJECT}),
    "log.jsonl": (json.dumps({"who": USER}) + "\n" + json.dumps({"p": GONE[1].input}) + "\n",
                  {TEXT, SUBJECT}),
    "export.csv": (_csv([["id", "user", "input"], [GONE[2].id, USER, GONE[2].input]]),
                   {TEXT, ID, SUBJECT}),
    "NOTES": ("\t".join(["1", GONE[0].input.replace("\n", "\\n"), "x"]) + "\n", {TEXT}),
    ".hidden": (f"sample {GONE[3].id}, asked by {USER}.\n", {ID, SUBJECT}),
    "deep/er/crlf.md": (GONE[1].input.replace("\n", "\r\n") + "\r\n", {TEXT}),
    "semi.txt": (f"x;{USER};y\n", {SUBJECT}),
    "quoted.log": (f"user='{USER}' done\n", {SUBJECT}),
}


def test_a_clean_store_has_no_traces(forgotten):
    assert scan(forgotten) == []


@pytest.mark.parametrize("name", list(PLANTED))
def test_a_planted_copy_is_found_whatever_its_format(forgotten, tmp_path, name):
    store = copy_of(forgotten, tmp_path)
    content, expected = PLANTED[name]
    (store / name).parent.mkdir(parents=True, exist_ok=True)
    (store / name).write_text(content)
    assert set(scan(store)) == {f"{name}: {what}" for what in expected}


def test_a_file_in_another_encoding_is_read_for_its_ascii_values(forgotten, tmp_path):
    store = copy_of(forgotten, tmp_path)
    (store / "latin1.txt").write_bytes(b"caf\xe9\n" + USER.encode() + b"\n")
    assert scan(store) == [f"latin1.txt: {SUBJECT}"]


NOT_TRACES = {
    "a longer id": f"{USER}0 and x{USER}\n",
    "a line every prompt shares": sample_prompt(GONE[0]).splitlines()[0] + "\n",
    "a kept user's prompt": sample_prompt(KEPT) + "\n",
    "half of a removed input": GONE[0].input.splitlines()[0] + "\n",
}


@pytest.mark.parametrize("name", list(NOT_TRACES))
def test_what_only_resembles_a_removed_value_is_no_trace(forgotten, tmp_path, name):
    store = copy_of(forgotten, tmp_path)
    (store / "notes.txt").write_text(NOT_TRACES[name])
    assert scan(store) == []


def test_the_fields_of_a_text_file():
    text = 'a\t"b, c"\t{"k": "v\\nw"}\nx,y\n'
    fields = text_fields(text)
    assert {"a", "b, c", "v\nw", "x", "y", '{"k": "v\\nw"}'} <= fields
    assert "a\nx,y" not in fields  # runs of lines come from line_runs, one at a time
    assert list(line_runs("1\n2\n3", max_lines=2)) == ["1\n2", "1\n2\n", "2\n3", "2\n3\n"]


def test_verify_request_fails_on_a_planted_notes_file_and_passes_without(tmp_path,
                                                                       tiny_model_dir):
    store = trained_store(tmp_path / "store", Backbone.load(tiny_model_dir, device="cpu"))
    args = ["--store", str(store.root)]
    assert runner.invoke(app, ["forget", "--user", "user2", "--yes", *args]).exit_code == 0
    assert runner.invoke(app, ["verify", "--request", "r0001", *args]).exit_code == 0
    removed = [s for s in make_samples() if s.user_id == "user2"]
    (store.root / "notes.txt").write_text(f"user2\n{sample_prompt(removed[0])}")
    result = runner.invoke(app, ["verify", "--request", "r0001", *args])
    assert result.exit_code == int(ExitCode.VERIFY_FAILED)
    assert "notes.txt: a removed sample's text" in result.stdout
    assert "notes.txt: a forgotten user or item id" in result.stdout


def test_a_kept_user_s_identical_prompt_is_not_a_trace_of_the_forgotten_one(tmp_path):
    from dataclasses import replace

    from apa_console.store.document import update_meta

    store = Store.create(tmp_path / "store")
    twin = replace(GONE[0], id="twin-of-a-removed-sample", user_id="user2")
    samples = make_samples() + [twin]
    with store.transaction() as db:
        db.table("samples").insert_multiple(s.to_record() for s in samples)
        users: dict[str, dict] = {}
        for s in samples:
            users.setdefault(s.user_id, {"train": 0, "valid": 0, "test": 0})[s.split] += 1
        db.table("users").insert_multiple({"id": u, "counts": c} for u, c in users.items())
        update_meta(db, dataset={"name": "synthetic", "domain": "movie"})
    result = runner.invoke(app, ["forget", "--user", USER, "--yes", "--store", str(store.root)])
    assert result.exit_code == 0, result.stderr
    assert scan(store.root) == []  # the twin's segment holds the same text: it is user2's
    (store.root / "notes.txt").write_text(GONE[1].input + "\n")  # a text no kept sample has
    assert scan(store.root) == ["notes.txt: " + TEXT]
