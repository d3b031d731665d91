"""The generated demo dataset: deterministic, the advertised size, and learnable."""

from __future__ import annotations

from collections import Counter

from data_fixtures import assert_one_line_error, cli, new_store, store_bytes

from apa_console.data.demo import GENRE_WORDS, build_catalog, generate_demo
from apa_console.store import records as store_records
from apa_console.store.document import Store, get_meta


def records(parsed):
    return [sample.to_record() for split in parsed.samples.values() for sample in split]


def test_default_size_and_per_user_splits():
    parsed = generate_demo()
    assert {split: len(samples) for split, samples in parsed.samples.items()} == {
        "train": 96, "valid": 48, "test": 48,
    }
    per_user = Counter((s.user_id, s.split) for split in parsed.samples.values() for s in split)
    assert len({user for user, _ in per_user}) == 24
    assert set(per_user.values()) == {4, 2} and all(
        per_user[(user, "train")] == 4 and per_user[(user, "test")] == 2 for user, _ in per_user
    )
    assert all(len(s.history) == 10 for s in parsed.samples["train"])
    orders = [s.order for s in parsed.samples["train"]]
    assert orders == sorted(orders)


def test_same_arguments_give_identical_samples():
    assert records(generate_demo(24, 0)) == records(generate_demo(24, 0))
    assert records(generate_demo(24, 0)) != records(generate_demo(24, 1))
    # users are generated one after another, so more users only append
    first_five = {f"u{n:03d}" for n in range(1, 6)}
    assert records(generate_demo(5, 0)) == [
        row for row in records(generate_demo(24, 0)) if row["user_id"] in first_five
    ]


def test_titles_carry_their_genre_and_labels_follow_it():
    catalog = build_catalog()
    assert len({item["title"] for item in catalog}) == len(catalog) == 72
    for item in catalog:
        openings, endings = GENRE_WORDS[item["genre"]]
        assert any(word in item["title"] for word in openings)
        assert any(word in item["title"] for word in endings)
        assert f"({item['genre']}, " in item["title"]  # the genre is named, not only implied
    genre_of = {item["id"]: item["genre"] for item in catalog}
    samples = [s for split in generate_demo().samples.values() for s in split]
    # the signal: a target whose genre the user liked in the history is mostly a Yes
    agree = sum(
        (genre_of[s.target_item] in {genre_of[h.item] for h in s.history if h.liked})
        == bool(s.label)
        for s in samples
    )
    assert agree / len(samples) > 0.75
    assert 0.3 < sum(s.label for s in samples) / len(samples) < 0.7
    assert max(len(s.input) for s in samples) < 520  # about 120 tokens


def test_cli_ingest_demo_is_deterministic(tmp_path):
    stores = []
    for name in ("a", "b"):
        store_dir = new_store(tmp_path / name)
        result = cli("ingest", "demo", "--users", "6", "--seed", "4", "--store", store_dir)
        assert result.exit_code == 0, result.output
        stores.append(Store.open(store_dir).snapshot())
    first, second = stores
    assert store_records.sample_rows(first) == store_records.sample_rows(second)
    assert list(first.table("users")) == list(second.table("users"))
    dataset = get_meta(first)["dataset"]
    assert dataset["name"] == "demo" and dataset["stored"]["train"]["count"] == 24
    assert dataset["generator"] == {"users": 6, "seed": 4, "label_noise": 0.1}


def test_bad_demo_arguments(tmp_path):
    store_dir = new_store(tmp_path / "store")
    before = store_bytes(store_dir)
    assert_one_line_error(cli("ingest", "demo", "--users", "0", "--store", store_dir), 2, "--users")
    result = cli("ingest", "demo", "--valid-size", "-3", "--store", store_dir)
    assert_one_line_error(result, 2, "--valid-size")
    assert store_bytes(store_dir) == before
    result = cli("ingest", "demo", "--users", "many", "--store", store_dir)
    assert result.exit_code == 2 and store_bytes(store_dir) == before
