"""The CLI's conventions (#22): `--version` and shell completion on the root app, TSV tables
off a terminal, one `--json` envelope, real metavars, the same did-you-mean / forgotten hint
for an unknown user on every command, plural wording, and a score that says what it scored."""

from __future__ import annotations

import json
import re
import shutil
from importlib import metadata

import pytest
from data_fixtures import cli, new_store, runner, store_bytes
from store_fixtures import make_store

from apa_console.cli.app import app
from apa_console.units import auc_summary, plural

BOXES = set("│┃━─┏┗┡╇┼")


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    """12 generated users u001…u012, no model."""
    store = new_store(tmp_path_factory.mktemp("conventions") / "store")
    result = cli("ingest", "demo", "--users", "12", "--store", store)
    assert result.exit_code == 0, result.output
    return store


def envelope(result, command: str):
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert set(answer) == {"data", "meta"}
    assert answer["meta"] == {"command": command, "version": metadata.version("apa-console")}
    return answer["data"]


# -- version, completion, metavars ---------------------------------------------------------


def test_version_prints_the_package_version():
    result = cli("--version")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"apa-console {metadata.version('apa-console')}\n"


def test_completion_is_offered_on_the_root_app_only():
    root = cli("--help")
    assert root.exit_code == 0
    assert "--install-completion" in root.stdout and "--show-completion" in root.stdout
    assert "--version" in root.stdout
    sub = cli("users", "--help")
    assert sub.exit_code == 0 and "--install-completion" not in sub.stdout


EVERY_COMMAND = [
    [], ["init"], ["status"], ["model"], ["model", "info"], ["ingest"], ["ingest", "movielens"],
    ["ingest", "tallrec"], ["ingest", "demo"], ["ingest", "bookcrossing"], ["export"],
    ["export", "tallrec"], ["users"], ["user"], ["user", "show"], ["partition"], ["shards"],
    ["train"], ["score"], ["compare"], ["tune"], ["forget"], ["apply"], ["verify"],
    ["requests"], ["requests", "cancel"], ["audit"], ["audit", "head"], ["audit", "verify"],
    ["tui"],
]


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=lambda c: " ".join(c) or "root")
def test_help_shows_real_metavars_not_type_placeholders(command):
    result = cli(*command, "--help")
    assert result.exit_code == 0, result.output
    for placeholder in ("bool>", "list[", "<str>", "<int", "<float>", "<path>", "{"):
        assert placeholder not in result.stdout, (placeholder, result.stdout)


def test_metavars_name_the_value_and_list_the_choices():
    score = cli("score", "--help").stdout
    assert re.search(r"--split\s+\[train\|valid\|test\]", score), score
    assert re.search(r"--level\s+\[D\|ND\]", score) and re.search(r"--user\s+USER", score)
    assert re.search(r"--limit\s+N ", score)
    forget = cli("forget", "--help").stdout
    assert re.search(r"--user\s+USER\s+User id \(repeatable\)", forget), forget
    assert re.search(r"--ray-address\s+HOST:PORT", forget) and re.search(r"--model\s+DIR", forget)
    ingest = cli("ingest", "movielens", "--help").stdout
    assert re.search(r"Usage: \S+ ingest movielens \[OPTIONS\] PATH\s", ingest), ingest
    assert re.search(r"user show \[OPTIONS\] ID\s", cli("user", "show", "--help").stdout)


def test_a_split_outside_the_choices_is_one_line_and_exit_2(demo_store):
    result = cli("score", "--split", "holdout", "--store", demo_store)
    assert result.exit_code == 2
    assert "holdout" in result.output and "train" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_command_summaries_are_not_broken_mid_sentence():
    listing = cli("--help").stdout
    assert "partition or a baseline)." in " ".join(listing.split())
    assert not re.search(r"partition or a\s*│\n", listing)


# -- tables ----------------------------------------------------------------------------------


def test_tables_are_tsv_with_a_header_row_off_a_terminal(demo_store):
    result = cli("users", "--limit", "2", "--store", demo_store)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "user\tsamples\ttrain\tvalid\ttest\tshards",
        "u001\t8\t4\t2\t2\t–",
        "u002\t8\t4\t2\t2\t–",
    ]
    status = cli("status", "--store", demo_store).stdout.splitlines()
    assert status[:3] == ["# apa-console store", "key\tvalue", f"store\t{demo_store}"]
    assert not BOXES & set(result.stdout + "".join(status))


def test_tty_compatible_forces_drawn_tables(demo_store):
    from data_fixtures import runner

    from apa_console.cli.app import app

    result = runner.invoke(app, ["users", "--limit", "1", "--store", str(demo_store)],
                           env={"TTY_COMPATIBLE": "1"})
    assert result.exit_code == 0, result.output
    assert BOXES & set(result.stdout) and "\t" not in result.stdout


# -- the JSON envelope -----------------------------------------------------------------------


def test_every_json_answer_has_one_envelope(demo_store):
    listed = envelope(cli("users", "--json", "--store", demo_store), "users")
    assert listed[0]["id"] == "u001"
    assert envelope(cli("user", "show", "u001", "--json", "--store", demo_store),
                    "user show")["id"] == "u001"
    assert envelope(cli("status", "--json", "--store", demo_store), "status")["users"] == 12
    assert envelope(cli("requests", "--json", "--store", demo_store), "requests") == []
    log = envelope(cli("audit", "--json", "--store", demo_store), "audit")
    head = envelope(cli("audit", "head", "--json", "--store", demo_store), "audit head")
    assert head["entries"] == len(log)
    held = envelope(cli("audit", "--user", "u001", "--json", "--store", demo_store), "audit")
    assert held["present"]
    plan = envelope(cli("forget", "--user", "u001", "--dry-run", "--json",
                        "--store", demo_store), "forget")
    assert plan["plan"]["samples"]["train"] == 4


# -- unknown users ---------------------------------------------------------------------------


UNKNOWN = {
    "user show": lambda u: ["user", "show", u],
    "audit": lambda u: ["audit", "--user", u],
    "forget": lambda u: ["forget", "--user", u, "--yes"],
    "forget dry run": lambda u: ["forget", "--user", u, "--dry-run"],
    "score": lambda u: ["score", "--user", u],
}


def _error(result, code: int = 3) -> str:
    assert result.exit_code == code, result.output
    (line,) = result.stderr.strip().splitlines()
    assert result.stdout == ""
    return line


def test_an_unknown_user_gets_the_same_suggestion_on_every_command(demo_store):
    before = (demo_store / "apa.json").read_bytes()
    lines = {name: _error(cli(*args("u03"), "--store", demo_store))
             for name, args in UNKNOWN.items()}
    assert set(lines.values()) == {
        "error: no user 'u03' in the store; did you mean u003?"}, lines
    assert (demo_store / "apa.json").read_bytes() == before


def test_nothing_close_points_at_the_users_listing(demo_store):
    line = _error(cli("user", "show", "zebra", "--store", demo_store))
    assert "did you mean" not in line and "apa-console users" in line


def test_a_store_without_users_says_so(tmp_path):
    store = new_store(tmp_path / "store")
    line = _error(cli("audit", "--user", "u001", "--store", store))
    assert line == "error: no user 'u001': the store holds no users"


@pytest.fixture(scope="module")
def forgotten_store(tmp_path_factory, tiny_model_dir):
    """A trained tiny store (users user0…user5, 2 random shards) where user1 was forgotten
    by request r0001."""
    from apa_console.apa.adapters import train_all
    from apa_console.apa.shards import run_partition
    from apa_console.engine.backbone import Backbone
    from apa_console.store.model_record import record_model

    backbone = Backbone.load(tiny_model_dir, device="cpu")
    store = make_store(tmp_path_factory.mktemp("forgotten") / "store")
    record_model(store, backbone.info)
    run_partition(store, backbone, "random", 2, seed=0)
    train_all(store, backbone, overrides={"epochs": 1, "batch_size": 4})
    result = cli("forget", "--user", "user1", "--yes", "--device", "cpu",
                 "--store", store.root)
    assert result.exit_code == 0, result.output
    return store.root


@pytest.fixture
def forgotten(forgotten_store, tmp_path):
    return shutil.copytree(forgotten_store, tmp_path / "store")


def test_a_forgotten_user_is_named_with_the_request_that_forgot_them(forgotten):
    for args in (["user", "show", "user1"], ["score", "--user", "user1"]):
        line = _error(cli(*args, "--store", forgotten))
        assert line == "error: no user 'user1' in the store: user1 was forgotten in r0001"
    audit = cli("audit", "--user", "user1", "--store", forgotten)
    assert audit.exit_code == 0, audit.output
    assert "holds no data" in audit.stdout and "r0001" in audit.stdout
    # counts as words, the way `requests` prints them, not a Python dict
    assert re.search(r"removed train \d+, valid \d+, test \d+", audit.stdout), audit.stdout
    assert "{" not in audit.stdout
    again = cli("forget", "--user", "user1", "--yes", "--json", "--store", forgotten)
    assert envelope(again, "forget")["already_forgotten"] == ["user user1"]


def test_requests_print_split_counts_like_audit(forgotten):
    rows = cli("requests", "--store", forgotten).stdout.splitlines()
    header = rows[0].split("\t")
    assert header == ["request", "status", "created", "finished", "shards", "removed"]
    removed = rows[1].split("\t")[header.index("removed")]
    assert re.fullmatch(r"train \d+, valid \d+, test \d+", removed), removed


def test_score_names_its_split_its_weights_and_its_sample_count(forgotten):
    result = cli("score", "--user", "user0", "--device", "cpu", "--store", forgotten)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("# user user0's test split · APA")
    header = lines[1].split("\t")
    weights = [column for column in header if column.startswith("w ")]
    assert len(weights) == 2 and all(re.fullmatch(r"w shard-\d-v\d+", w) for w in weights)
    assert all(len(line.split("\t")) == len(header) for line in lines[2:-1])
    summary = lines[-1]
    assert re.match(r"(AUC \d\.\d{4} over only \d test samples? \(fewer than 10"
                    r"|no AUC: \d test samples?, all labelled (Yes|No))", summary), summary
    assert "2 adapters (shard-" in summary


def test_user_show_counts_its_shards_in_words(forgotten):
    detail = envelope(cli("user", "show", "user0", "--json", "--store", forgotten),
                      "user show")
    text = cli("user", "show", "user0", "--store", forgotten).stdout.splitlines()[0]
    held = detail["shards"]
    noun = "shard" if len(held) == 1 else "shards"
    assert text.endswith(f"training data in {noun} {', '.join(map(str, held))}"), text
    assert "(s)" not in text


# -- wording ---------------------------------------------------------------------------------


def test_plural_and_auc_wording():
    assert plural(1, "shard") == "1 shard" and plural(0, "shard") == "0 shards"
    assert plural(2, "entry", "entries") == "2 entries"
    assert auc_summary(0.75, 48, 20, "test") == "AUC 0.7500 over 48 test samples"
    assert auc_summary(0.5, 2, 1, "test") == (
        "AUC 0.5000 over only 2 test samples (fewer than 10: not a reliable estimate)")
    assert auc_summary(None, 1, 1, "valid") == (
        "no AUC: 1 valid sample, all labelled Yes (AUC needs both labels)")


def test_forgetting_several_users_is_confirmed_by_typing_their_count(demo_store):
    """The TUI's marked users and `forget --user A --user B` share the plan and the phrase."""
    before = store_bytes(demo_store)
    args = ["forget", "--user", "u001", "--user", "u002", "--store", str(demo_store)]
    result = runner.invoke(app, args, input="u001\n")
    assert result.exit_code == 2, result.output
    assert "type '2 users' to confirm" in result.output
    assert "typed 'u001', not '2 users': nothing was changed" in result.output
    assert "Forget user u001, user u002: 16 samples" in result.output
    assert store_bytes(demo_store) == before
