"""`users`, `user show` and the catalog functions behind them."""

from __future__ import annotations

import json

import pytest
from data_fixtures import (
    assert_one_line_error,
    cli,
    new_store,
    store_bytes,
    write_tiny_movielens,
)

from apa_console.store import catalog
from apa_console.store.document import Store
from apa_console.store.status import store_status


@pytest.fixture
def movielens_store(tmp_path):
    """Users 5 (5 samples), 7 (3) and 3 (2) from the tiny MovieLens fixture."""
    store_dir = new_store(tmp_path / "store")
    source = write_tiny_movielens(tmp_path / "ml")
    assert cli("ingest", "movielens", source, "--store", store_dir).exit_code == 0
    return store_dir


def test_list_users_sorts_filters_and_limits(movielens_store):
    store = Store.open(movielens_store)
    assert [(u["id"], u["samples"]) for u in catalog.list_users(store)] == [
        ("5", 5), ("7", 3), ("3", 2),
    ]
    assert catalog.list_users(store)[0]["counts"] == {"train": 3, "valid": 1, "test": 1}
    assert [u["id"] for u in catalog.list_users(store, contains="7")] == ["7"]
    assert [u["id"] for u in catalog.list_users(store, min_samples=3)] == ["5", "7"]
    assert [u["id"] for u in catalog.list_users(store, limit=1)] == ["5"]
    assert catalog.list_users(store, contains="nobody") == []


def test_ties_are_in_natural_id_order(tmp_path):
    store_dir = new_store(tmp_path / "store")
    assert cli("ingest", "demo", "--users", "12", "--store", store_dir).exit_code == 0
    ids = [u["id"] for u in catalog.list_users(Store.open(store_dir))]
    assert ids == [f"u{n:03d}" for n in range(1, 13)]
    assert catalog.natural_key("2") < catalog.natural_key("10") < catalog.natural_key("a")


def test_users_json_is_data_only(movielens_store):
    result = cli("users", "--json", "--store", movielens_store, "--min-samples", "3")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["data"] == [
        {"id": "5", "samples": 5, "counts": {"train": 3, "valid": 1, "test": 1}, "shards": []},
        {"id": "7", "samples": 3, "counts": {"train": 3, "valid": 0, "test": 0}, "shards": []},
    ]
    assert result.stderr == ""


def test_users_table_and_match(movielens_store):
    result = cli("users", "--match", "3", "--store", movielens_store)
    assert result.exit_code == 0, result.output
    assert "3" in result.stdout and "5 " not in result.stdout
    result = cli("users", "--match", "zzz", "--store", movielens_store, "--limit", "2")
    assert result.exit_code == 0 and "no users match" in result.stderr


def test_user_show_lists_samples_per_split(movielens_store):
    detail = catalog.user_detail(Store.open(movielens_store), "5", limit=2)
    assert detail["counts"] == {"train": 3, "valid": 1, "test": 1}
    assert [row["id"] for row in detail["splits"]["train"]] == ["s000005", "s000006"]
    assert detail["splits"]["valid"][0]["output"] == "Yes."

    result = cli("user", "show", "5", "--limit", "1", "--json", "--store", movielens_store)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)["data"]
    assert [len(rows) for rows in shown["splits"].values()] == [1, 1, 1]
    assert shown["splits"]["test"][0]["input"].startswith("User Preference: ")

    result = cli("user", "show", "7", "--store", movielens_store)
    assert result.exit_code == 0, result.output
    assert "s000000" in result.stdout and "Misérables" in result.stdout


def test_bad_input_for_listing_commands(movielens_store, tmp_path):
    before = store_bytes(movielens_store)
    result = cli("user", "show", "404", "--store", movielens_store)
    assert_one_line_error(result, 3, "no user '404'")
    result = cli("user", "show", "404", "--json", "--store", movielens_store)
    assert_one_line_error(result, 3, "no user '404'")
    result = cli("users", "--store", tmp_path / "absent")
    assert_one_line_error(result, 5, "no store at")
    result = cli("users", "--limit", "-1", "--store", movielens_store)
    assert result.exit_code == 2
    result = cli("user", "show", "5", "--limit", "x", "--store", movielens_store)
    assert result.exit_code == 2
    assert store_bytes(movielens_store) == before


def test_listing_a_store_without_data(tmp_path):
    store_dir = new_store(tmp_path / "store")
    result = cli("users", "--json", "--store", store_dir)
    assert result.exit_code == 0 and json.loads(result.stdout)["data"] == []
    assert store_status(Store.open(store_dir))["dataset"] is None


def test_corrupt_store_is_one_line(tmp_path):
    store_dir = new_store(tmp_path / "store")
    (store_dir / "apa.json").write_text("{broken")
    assert_one_line_error(cli("users", "--store", store_dir), 5, "corrupt")
    assert_one_line_error(cli("user", "show", "1", "--store", store_dir), 5, "corrupt")
    result = cli("export", "tallrec", tmp_path / "out", "--store", store_dir)
    assert_one_line_error(result, 5, "corrupt")
