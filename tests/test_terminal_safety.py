"""Ids and titles come from datasets: the CLI shows them literally. Escape sequences, control
characters and bidi overrides reach the terminal as visible escapes, and rich markup in a
title is text, not style (nor a crash)."""

from __future__ import annotations

import json

from data_fixtures import cli, new_store, plant_tallrec
from test_ingest_tallrec import record, write_split_files

from apa_console.units import terminal_safe

HOSTILE_USER = "u\x1b]0;owned\x07\x1b[2J[bold red]x[/]\u202eevil\nforged"
HOSTILE_TITLE = "Heat [/] (1995)\x1b[31m\u2066"


def _hostile_store(tmp_path):
    source = write_split_files(
        tmp_path / "tallrec",
        [record(["Alien (1979)"], [], HOSTILE_TITLE, user_id=HOSTILE_USER),
         record([], ["Fargo (1996)"], "Babe (1995)", "No.", user_id="plain")],
        [record(["Alien (1979)"], [], "Fargo (1996)", "No.", user_id=HOSTILE_USER)],
        [record(["Fargo (1996)"], [], "Alien (1979)", user_id="plain")],
    )
    store = new_store(tmp_path / "store")
    result = cli("ingest", "tallrec", source, "--store", store)
    # control characters are malformed input today; stores older ingests wrote hold them
    assert result.exit_code == 6 and "control character" in result.stderr, result.output
    plant_tallrec(store, source)
    return store


def _assert_literal(output: str) -> None:
    assert "\x1b" not in output and "\x07" not in output
    assert "\u202e" not in output and "\u2066" not in output


def test_terminal_safe_escapes_controls_and_bidi_but_keeps_text():
    assert terminal_safe("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert terminal_safe("l1\nl2\t\u202e") == "l1\\nl2\\t\\u202e"
    assert terminal_safe("Misérables [bold]") == "Misérables [bold]"


def test_listings_show_hostile_ids_and_titles_literally(tmp_path):
    store = _hostile_store(tmp_path)
    users = cli("users", "--store", store)
    assert users.exit_code == 0, users.output
    _assert_literal(users.stdout)  # a table: cells fold, but nothing raw gets through
    shown = cli("user", "show", HOSTILE_USER, "--store", store)
    assert shown.exit_code == 0, shown.output
    _assert_literal(shown.stdout)
    header = shown.stdout.splitlines()[0]
    assert header.startswith("user u\\x1b]0;owned\\x07\\x1b[2J[bold red]x[/]\\u202eevil\\nforged:")
    audit = cli("audit", "--user", HOSTILE_USER, "--store", store)
    assert audit.exit_code == 0, audit.output
    _assert_literal(audit.stdout)
    assert audit.stdout.startswith("user u\\x1b]0;owned")
    assert "\\nforged has data in" in audit.stdout.splitlines()[0]  # no forged line
    missing = cli("audit", "--user", "nobody\x1b[2J", "--store", store)
    assert missing.exit_code == 3 and "\x1b" not in missing.stderr
    # --json keeps the data exact: escaping is for terminals, not for machines
    listed = json.loads(cli("users", "--json", "--store", store).stdout)["data"]
    assert HOSTILE_USER in {row["id"] for row in listed}
