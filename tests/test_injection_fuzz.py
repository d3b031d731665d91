"""Injection fuzz: every kind of hostile id or title a dataset can carry, through every
command that prints one. Each case asserts the documented exit code, that nothing raw
reaches the terminal (no control character, no bidi override, no forged line, no markup
taking effect), and that a refused command leaves the store byte-identical."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from data_fixtures import cli, has_control_character, new_store, plant_tallrec
from test_ingest_tallrec import record, write_split_files

PAYLOADS = {
    "csi-clear": "u\x1b[2J\x1b[H",
    "osc-title": "u\x1b]0;owned\x07",
    "osc8-link": "u\x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\",
    "c1-csi": "u\x9b31m",
    "bell-backspace": "u\x07\x08\x08x",
    "carriage-return": "u\roverwritten",
    "newline-forge": "u\nERROR: store deleted",
    "tab-del-nul": "u\t\x7f\x00z",
    "bidi-rlo": "u\u202eevil",
    "bidi-isolates": "u\u2066\u2067\u2068\u2069",
    "markup-style": "[bold red]u[/bold red]",
    "markup-close": "u[/]",
    "markup-link": "[link=http://evil]u[/link]",
    "markup-emoji-escape": "u:warning:\\[x]",
}
# Tab is the field separator of the TSV tables a pipe gets (CliRunner is not a terminal);
# `_assert_columns` checks that no payload adds a field.
RAW = [chr(c) for c in range(0x20) if chr(c) not in "\n\t"] + ["\x7f"] + [chr(c) for c in range(
    0x80, 0xA0)] + ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067",
                    "\u2068", "\u2069"]


def _assert_safe(text: str, payload: str, shown: bool = False) -> None:
    """`shown`: the output names the payload, so markup in it must appear as text."""
    raw = [ch for ch in RAW if ch in text]
    assert not raw, [hex(ord(ch)) for ch in raw]
    _assert_columns(text)
    assert not any(line.startswith("ERROR: store deleted") for line in text.splitlines())
    if shown and payload.startswith("[bold red]"):
        assert "[bold red]" in text  # markup shown as text, not applied


def _assert_columns(text: str) -> None:
    """Every row of a TSV table has as many fields as its header: a payload's tab or
    newline is escaped, never a separator."""
    width = None
    for line in text.splitlines():
        if "\t" not in line:
            width = None  # a title, a note or the end of a table
            continue
        fields = line.count("\t")
        assert width is None or fields == width, line
        width = fields


@pytest.fixture(scope="module", params=sorted(PAYLOADS))
def hostile(request, tmp_path_factory):
    """A store whose user id and a target title carry one payload."""
    name = request.param
    payload = PAYLOADS[name]
    base = tmp_path_factory.mktemp(f"inject-{name}")
    title = f"Heat {payload} (1995)"
    source = write_split_files(
        base / "tallrec",
        [record(["Alien (1979)"], [], title, user_id=payload),
         record([], ["Fargo (1996)"], "Babe (1995)", "No.", user_id="plain")],
        [record(["Alien (1979)"], [], "Fargo (1996)", "No.", user_id=payload)],
        [record(["Fargo (1996)"], [], "Alien (1979)", user_id="plain")],
    )
    store = new_store(base / "store")
    result = cli("ingest", "tallrec", source, "--store", store)
    if has_control_character(payload):  # malformed input today: refused, store unchanged
        assert result.exit_code == 6 and "control character" in result.stderr, result.output
        plant_tallrec(store, source)  # older ingests stored it; commands must still cope
    else:
        assert result.exit_code == 0, result.output
    return payload, store


def _digest(store: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in store.rglob("*") if p.is_file() and p.name != "apa.lock"):
        digest.update(path.relative_to(store).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


SHOWS = {
    "users": lambda p: ["users"],
    "users-match": lambda p: ["users", "--match", p],
    "user-show": lambda p: ["user", "show", p],
    "audit-user": lambda p: ["audit", "--user", p],
    "forget-dry-run": lambda p: ["forget", "--user", p, "--dry-run"],
    "status": lambda p: ["status"],
}
REFUSALS = {  # command → exit code
    "user-show-unknown": (lambda p: ["user", "show", p + "?"], 3),
    "audit-unknown": (lambda p: ["audit", "--user", p + "?"], 3),
    "forget-unknown": (lambda p: ["forget", "--user", p + "?", "--yes"], 3),
    "score-unknown": (lambda p: ["score", "--user", p + "?"], 3),
    "forget-wrong-confirmation": (lambda p: ["forget", "--user", p], 2),
}


@pytest.mark.parametrize("command", sorted(SHOWS))
def test_listings_show_the_payload_literally(hostile, command):
    payload, store = hostile
    result = cli(*SHOWS[command](payload), "--store", store)
    assert result.exit_code == 0, result.output
    _assert_safe(result.stdout, payload, shown=command != "status")
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", sorted(REFUSALS))
def test_refusals_name_the_payload_safely_and_change_nothing(hostile, command):
    payload, store = hostile
    args, code = REFUSALS[command]
    before = _digest(store)
    result = cli(*args(payload), "--store", store)
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    _assert_safe(result.stderr + result.stdout, payload, shown=True)
    assert _digest(store) == before


def test_queued_requests_show_the_payload_literally(hostile, tmp_path):
    payload, original = hostile
    store = tmp_path / "store"
    shutil.copytree(original, store)
    queued = cli("forget", "--user", payload, "--queue", "--yes", "--store", store)
    assert queued.exit_code == 0, queued.output
    _assert_safe(queued.stdout, payload)
    for args in (["requests"], ["audit", "--user", payload], ["status"],
                 ["forget", "--user", "plain", "--dry-run"]):
        result = cli(*args, "--store", store)
        assert result.exit_code == 0, (args, result.output)
        _assert_safe(result.stdout, payload)
