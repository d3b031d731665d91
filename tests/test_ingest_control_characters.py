"""A control character in a text field (NUL, ESC, C1, CR…) is malformed input in every
ingest format: exit 6 naming the file and line, the store unchanged. Tab and newline pass
only where a field may hold them. (`ingest interactions`: tests/test_ingest_interactions.py.)
"""

from __future__ import annotations

import json

import pytest
from data_fixtures import assert_one_line_error, cli, new_store, store_bytes, write_tiny_movielens
from test_ingest_bookcrossing import write_bx
from test_ingest_tallrec import record, write_split_files

from apa_console.data import load_movielens, load_tallrec


def _refused(tmp_path, command, source, *fragments):
    store_dir = new_store(tmp_path / "store")
    before = store_bytes(store_dir)
    result = cli("ingest", command, source, "--store", store_dir)
    assert_one_line_error(result, 6, "control character", *fragments)
    assert store_bytes(store_dir) == before


def _replace(path, old: bytes, new: bytes) -> None:
    content = path.read_bytes()
    assert content.count(old) == 1, old
    path.write_bytes(content.replace(old, new))


# -- MovieLens: u.item is Latin-1, so bytes 0x80-0x9f are C1 controls ----------------------

@pytest.mark.parametrize("file,old,new,fragments", [
    ("u.item", b"|Movie 2 (1990)|", b"|Movie\x00 2 (1990)|", ["u.item:2:", "U+0000 (NUL)"]),
    ("u.item", b"|Movie 6 (1990)|", b"|Movie\x9b6 (1990)|", ["u.item:6:", "U+009B"]),
    ("u.item", b"|Movie 7 (1990)|", b"|Movie\r7 (1990)|", ["u.item:7:", "U+000D (CR)"]),
    ("u.data", b"7\t1\t2\t980\n", b"7\x1b\t1\t2\t980\n", ["u.data:1:", "U+001B (ESC)"]),
], ids=["nul-title", "c1-title", "cr-title", "esc-user"])
def test_movielens_control_characters_exit_6(tmp_path, file, old, new, fragments):
    source = write_tiny_movielens(tmp_path / "ml")
    _replace(source / file, old, new)
    _refused(tmp_path, "movielens", source, *fragments)


def test_movielens_title_may_hold_a_tab(tmp_path):
    source = write_tiny_movielens(tmp_path / "ml")
    _replace(source / "u.item", b"|Movie 11 (1990)|", b"|Movie\t11 (1990)|")
    parsed = load_movielens(source)
    titles = {h.title for samples in parsed.samples.values() for s in samples for h in s.history}
    assert "Movie\t11 (1990)" in titles


# -- Book-Crossing --------------------------------------------------------------------------

@pytest.mark.parametrize("file,old,new,fragments", [
    ("BX-Books.csv", b'"Dune"', b'"Du\x00ne"', ["BX-Books.csv:4:", "Book-Title", "NUL"]),
    ("BX-Books.csv", b'"Emma"', b'"Em\x85ma"', ["BX-Books.csv:5:", "U+0085"]),
    ("BX-Books.csv", b'"Emma"', b'"Em\nma"', ["BX-Books.csv:6:", "U+000A (LF)"]),
    ("BX-Book-Ratings.csv", b'"99";"0001"', b'"9\x079";"0001"', ["Ratings.csv:", "U+0007"]),
], ids=["nul-title", "c1-title", "newline-in-quotes", "bell-user"])
def test_bookcrossing_control_characters_exit_6(tmp_path, file, old, new, fragments):
    source = write_bx(tmp_path / "bx")
    _replace(source / file, old, new)
    _refused(tmp_path, "bookcrossing", source, *fragments)


# -- TALLRec JSON: instruction and input are free text with lines; ids are not -------------

def _line_of(text: str, marker: str) -> int:
    """The line of the `{` opening the record that holds `marker`."""
    return text.count("\n", 0, text.rfind("{", 0, text.index(marker))) + 1


@pytest.mark.parametrize("field,value,fragments", [
    ("user_id", "u\x00", ["user_id", "NUL"]),
    ("user_id", "u\tv", ["user_id", "U+0009 (TAB)"]),
    ("target", "Heat\x1b[2J (1995)", ["input", "ESC"]),
    ("target", "Heat\x9d (1995)", ["input", "U+009D"]),
    ("target", "Heat\r (1995)", ["input", "CR"]),
], ids=["nul-user", "tab-user", "esc-title", "c1-title", "cr-title"])
def test_tallrec_control_characters_exit_6_naming_the_record_line(tmp_path, field, value,
                                                                  fragments):
    plain = record(["Alien (1979)"], [], "Fargo (1996)", user_id="u1")
    hostile = (record(["Alien (1979)"], [], value, user_id="u2") if field == "target"
               else record(["Alien (1979)"], [], "Babe (1995)", user_id=value))
    source = write_split_files(tmp_path / "tallrec", [plain, plain, hostile], [plain], [plain])
    text = (source / "train.json").read_text()
    line = _line_of(text, json.dumps(value)[1:-1])
    _refused(tmp_path, "tallrec", source, f"train.json:{line}:", *fragments)


def test_tallrec_input_may_hold_a_tab_besides_its_newlines(tmp_path):
    rows = [record(["Alien\t(1979)"], [], "Fargo (1996)", user_id="u1")]
    parsed = load_tallrec(write_split_files(tmp_path / "tallrec", rows, rows, rows))
    assert parsed.samples["train"][0].history[0].title == "Alien\t(1979)"
