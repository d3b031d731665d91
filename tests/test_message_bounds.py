"""Every refusal is one bounded line (issue 36, classes 3 and 4).

A message quoting operator input (an id, a path, an option's value) clips it to 80
characters (paths 160) with a "…" and escapes control characters (`safe_text.quoted`); the
CLI's error sink and the TUI's error display make whatever reaches them one line of at most
`LINE_LIMIT` characters, so no message, however built, floods or forges terminal lines.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from refusal_checks import assert_refused, copy_of, refusal_line, runner
from store_fixtures import make_store

from apa_console.cli.app import app
from apa_console.errors import ApaError, ExitCode, NotFoundError, StoreInvalidError
from apa_console.safe_text import LINE_LIMIT, QUOTE_LIMIT, clipped, one_line, quoted
from apa_console.store.missing_files import missing_file_error
from apa_console.tui.tracker import ProgressTracker
from apa_console.unlearning.verify import verify_request

NOT_FOUND = int(ExitCode.NOT_FOUND)
HUGE = "u" * 100_000
HOSTILE = "u\x1b[2J\x1b]0;owned\x07\nerror: forged line\u202e" * 2_000


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return make_store(tmp_path_factory.mktemp("bounds") / "store").root


@pytest.fixture
def store(template, tmp_path) -> Path:
    return copy_of(template, tmp_path)


# -- the helpers -------------------------------------------------------------------------------


def test_a_short_value_is_quoted_whole_and_a_long_one_keeps_both_ends():
    assert quoted("user42") == "'user42'"
    long = "a" * 60 + "MIDDLE" + "z" * 60
    shown = clipped(long)
    assert len(shown) == QUOTE_LIMIT and shown.startswith("a" * 39) and shown.endswith("z" * 40)
    assert "MIDDLE" not in shown and "…" in shown


def test_control_characters_are_escaped_before_clipping_counts_them():
    shown = quoted("a\nb\x1bc\u202e")
    assert shown == "'a\\nb\\x1bc\\u202e'"
    assert all(ch.isprintable() for ch in clipped(HOSTILE))


def test_one_line_has_no_line_break_and_a_bounded_length():
    line = one_line(f"no user {HOSTILE} here\r\nsecond line")
    assert "\n" not in line and "\r" not in line and len(line) <= LINE_LIMIT
    assert one_line("short message: keep it") == "short message: keep it"


# -- long and hostile ids through every command that echoes one -------------------------------

ECHOING = {
    "user show": ["user", "show"],
    "forget --user": ["forget", "--dry-run", "--user"],
    "forget --sample": ["forget", "--dry-run", "--sample"],
    "forget --item": ["forget", "--dry-run", "--item"],
    "audit --user": ["audit", "--user"],
    "requests cancel": ["requests", "cancel"],
    "score --user": ["score", "--user"],
}


@pytest.mark.parametrize("value", [HUGE, HOSTILE], ids=["100 KB id", "hostile id"])
@pytest.mark.parametrize("name", list(ECHOING))
def test_an_unknown_id_is_echoed_clipped_on_one_line(store, name, value):
    before = runner.invoke(app, ["status", "--store", str(store)]).stdout
    result = runner.invoke(app, [*ECHOING[name], value, "--store", str(store)])
    if result.exit_code != NOT_FOUND:  # score refuses an unpartitioned store first
        assert name == "score --user" and result.exit_code == int(ExitCode.CONFLICT)
        return
    line = refusal_line(result, NOT_FOUND)
    assert "…" in line and len(line) < 2 * QUOTE_LIMIT + 150, line
    assert "\x1b" not in result.stderr and "\u202e" not in result.stderr
    assert runner.invoke(app, ["status", "--store", str(store)]).stdout == before


def test_verify_quotes_an_unknown_request_clipped(store):
    from apa_console.store.document import Store

    with pytest.raises(NotFoundError) as refused:
        verify_request(Store.open(store), None, HUGE)
    assert len(str(refused.value)) < 2 * QUOTE_LIMIT


def test_a_long_store_path_is_clipped(tmp_path):
    result = runner.invoke(app, ["status", "--store", str(tmp_path / ("d" * 100_000))])
    assert len(refusal_line(result, int(ExitCode.USAGE), "file name too long")) < 400


def test_a_long_option_value_is_clipped(store):
    assert_refused(store, ["partition", "--method", HUGE], int(ExitCode.USAGE), "…")


# -- the sinks: one line whatever the message --------------------------------------------------


@pytest.mark.parametrize("error", [
    ApaError("first\nsecond\nthird", ExitCode.STORE_INVALID),
    StoreInvalidError("x" * 50_000),
    RuntimeError("a bug\nwith a multi-line message"),
], ids=["multi-line refusal", "50 KB refusal", "multi-line bug"])
def test_the_cli_sink_writes_one_bounded_line(store, monkeypatch, error):
    from apa_console.cli import store_cmds

    def fail(_store):
        raise error

    monkeypatch.setattr(store_cmds.status_core, "store_status", fail)
    result = runner.invoke(app, ["status", "--store", str(store)])
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and len(lines[0]) <= LINE_LIMIT + len("error: "), lines


def test_a_library_warning_is_one_line_too(monkeypatch, capsys):
    from apa_console.cli import output

    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # restored after
    output.show_engine_warnings()  # what the CLI's entry point installs
    warnings.showwarning(UserWarning("first line\nsecond line"), UserWarning, "lib.py", 7)
    assert capsys.readouterr().err.splitlines() == [
        "warning: UserWarning: first line\\nsecond line"]


def test_the_tui_shows_a_jobs_error_on_one_line():
    tracker = ProgressTracker("forget user1")
    tracker.finish("failed", error="cannot\nwrite " + "x" * 50_000)
    assert "\n" not in tracker.error and len(tracker.error) <= LINE_LIMIT


def test_a_missing_file_whose_name_json_escapes_is_exit_5_not_a_changed_store(tmp_path):
    """A reference with a newline is written `\\n` in apa.json: still named there, so its
    absence is damage (5), not a commit that came between two reads (4)."""
    relative = "arrays/emb\nx.npy"
    (tmp_path / "apa.json").write_text(json.dumps({"file": relative}))
    error = missing_file_error(tmp_path / relative, relative)
    assert isinstance(error, StoreInvalidError)
    assert "\n" not in one_line(str(error))
