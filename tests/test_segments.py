"""Samples in Parquet segments: content-addressed, rewritten only where a change lands,
collected when unreferenced, migrated from schema 1, refused with exit 5 when damaged."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from data_fixtures import assert_one_line_error, cli
from store_fixtures import make_store

from apa_console.errors import StoreChangedError
from apa_console.samples import SPLITS
from apa_console.store import records, sample_segments, segments
from apa_console.store.document import Store, update_meta
from apa_console.store.migration import migrate
from apa_console.unlearning import audit_log
from apa_console.unlearning.purge import removed_fingerprints
from apa_console.unlearning.verify import scan_for_traces


@pytest.fixture
def many_buckets(monkeypatch):
    """Four samples a bucket, so a dozen users spread over several segment files."""
    monkeypatch.setattr(sample_segments, "ROWS_PER_BUCKET", 4)


def _segment_files(store: Store) -> set[str]:
    return {p.relative_to(store.root).as_posix() for p in (store.root / "segments").glob("*")}


def _document(store: Store) -> dict:
    return json.loads(store.file.read_bytes())


def _user_bucket_file(store: Store, user: str) -> str:
    entry = sample_segments.entry_of(store.load())
    return entry["segments"][str(sample_segments.bucket_of(user, entry["buckets"]))]["file"]


def test_samples_live_in_segments_not_in_apa_json(tmp_path, many_buckets):
    store = make_store(tmp_path / "store", n_users=12, per_user=4)
    document = _document(store)
    assert document["samples"] == {} and document["meta"]["1"]["schema_version"] == 2
    entry = document["meta"]["1"]["samples"]
    assert entry["buckets"] == 12 and len(entry["segments"]) > 1
    assert sum(seg["rows"] for seg in entry["segments"].values()) == 48
    assert _segment_files(store) == set(sample_segments.segment_files(entry))
    rows = records.sample_rows(store.snapshot())
    # in ingest order, though each segment holds its rows by user
    assert [row["id"] for row in rows] == [f"s{i:06d}" for i in range(48)]
    assert records.user_sample_rows(store.snapshot(), "user3") == sorted(
        (r for r in rows if r["user_id"] == "user3"), key=lambda r: r["order"])
    per_split, _ = records.sample_counts(store.snapshot())
    assert per_split == {split: sum(r["split"] == split for r in rows) for split in SPLITS}


def test_removing_a_user_rewrites_only_their_segment_and_collects_the_old_one(
        tmp_path, many_buckets):
    store = make_store(tmp_path / "store", n_users=12, per_user=4)
    before = _segment_files(store)
    old_file = _user_bucket_file(store, "user3")
    doomed = records.user_sample_rows(store.snapshot(), "user3")
    with store.transaction() as db:
        records.remove_samples(db, {row["id"]: "user3" for row in doomed}, SPLITS)
    store.collect_garbage()
    after = _segment_files(store)
    assert before - after == {old_file}
    assert len(after - before) <= 1  # the bucket's other users, rewritten (or none left)
    assert records.user_sample_rows(store.snapshot(), "user3") == []
    assert not records.has_user(store.snapshot(), "user3")
    # the scan decodes segments, so it would see the rows; none of them is left anywhere
    names = audit_log.pseudonyms(store.snapshot())
    from apa_console.samples import Sample

    gone = [Sample.from_record(row) for row in doomed]
    assert scan_for_traces(store, removed_fingerprints(names, gone, [])) == []


def test_the_trace_scan_decodes_compressed_segments(tmp_path):
    """A stray segment (a crash's, or copied in) holding a removed sample is found, though
    its compressed bytes show neither the id nor the text."""
    store = make_store(tmp_path / "store")
    row = records.user_sample_rows(store.snapshot(), "user1")[0]
    # a text no sample left in the store holds (a kept sample's text is no trace)
    row = {**row, "input": row["input"] + " (since removed)"}
    names = audit_log.pseudonyms(store.snapshot())
    from apa_console.samples import Sample

    fingerprints = removed_fingerprints(names, [Sample.from_record(row)], [])
    import pyarrow as pa

    table = pa.Table.from_pylist([{**row}], schema=sample_segments.sample_schema())
    data = segments.encode(table)
    assert row["input"].encode() not in data
    (store.root / "stray").mkdir()
    (store.root / "stray" / "copy.bin").write_bytes(data)
    found = scan_for_traces(store, fingerprints)
    assert "stray/copy.bin: a removed sample's text" in found
    assert "stray/copy.bin: a removed sample id" in found


def _with_shards(store: Store) -> dict[int, list[str]]:
    """Two shards over the training samples (user0..2 in shard 0, the rest in shard 1), and
    cached train embeddings, written inline the way the partition step writes them."""
    train = [r for r in records.sample_rows(store.snapshot()) if r["split"] == "train"]
    manifests = {k: [r["id"] for r in train if (r["user_id"] < "user3") == (k == 0)]
                 for k in (0, 1)}
    owners = {r["id"]: r["user_id"] for r in train}
    with store.transaction() as db:
        records.replace_shards(db, [
            {"shard": k, "sample_ids": ids, "users": sorted({owners[s] for s in ids}),
             "size": len(ids), "centre": None, "adapter": None}
            for k, ids in manifests.items()])
        update_meta(db, embeddings={"train": {
            "file": store.write_array("emb-train", np.zeros((len(train), 2), np.float32)),
            "ids": [r["id"] for r in train]}})
    return manifests


def test_shard_manifests_and_embedding_ids_live_in_segments(tmp_path):
    store = make_store(tmp_path / "store")
    manifests = _with_shards(store)
    text = store.file.read_text()
    document = json.loads(text)
    assert '"sample_ids"' not in text and '"ids":' not in text
    assert all(row["ids_file"].startswith("segments/shard-ids-")
               for row in document["shards"].values())
    db = store.snapshot()
    assert {row["shard"]: row["sample_ids"] for row in records.shard_rows(db)} == manifests
    assert sorted(records.embedding_entries(db)["train"]["ids"]) == sorted(
        manifests[0] + manifests[1])
    own = [r["id"] for r in records.user_sample_rows(db, "user4")]
    assert records.user_sample_shards(db, "user4", own) == {
        sid: 1 for sid in own if sid in manifests[1]}
    shown = json.loads(cli("user", "show", "user4", "--store", store.root, "--json").stdout)
    assert shown["data"]["shards"] == [1]


def test_a_missing_shard_manifest_is_a_one_line_exit_5(tmp_path):
    store = make_store(tmp_path / "store")
    _with_shards(store)
    shard_1 = json.loads(store.file.read_text())["shards"]["2"]["ids_file"]
    store.path_of(shard_1).unlink()
    assert_one_line_error(cli("user", "show", "user4", "--store", store.root), 5, "missing")
    assert_one_line_error(cli("forget", "--user", "user4", "--dry-run", "--store",
                              store.root), 5, "missing")


# -- damaged segments ------------------------------------------------------------------------


def test_a_missing_segment_is_a_one_line_exit_5(tmp_path):
    store = make_store(tmp_path / "store")
    store.path_of(_user_bucket_file(store, "user1")).unlink()
    before = store.file.read_bytes()
    result = cli("user", "show", "user1", "--store", store.root)
    assert_one_line_error(result, 5, "referenced by the store but missing")
    assert store.file.read_bytes() == before


def test_a_reader_whose_segment_a_newer_commit_collected_is_told_to_read_again(
        tmp_path, many_buckets):
    store = make_store(tmp_path / "store", n_users=12, per_user=4)
    stale = store.snapshot()  # read apa.json, not yet the segments
    doomed = records.user_sample_rows(store.snapshot(), "user3")
    with store.transaction() as db:  # another process forgets user3 in between
        records.remove_samples(db, {row["id"]: "user3" for row in doomed}, SPLITS)
    store.collect_garbage()
    with pytest.raises(StoreChangedError) as changed:
        records.user_sample_rows(stale, "user3")
    assert changed.value.exit_code == 4 and "run it again" in str(changed.value)
    assert records.user_sample_rows(store.snapshot(), "user3") == []  # the new state reads


def test_a_corrupt_segment_is_a_one_line_exit_5(tmp_path):
    store = make_store(tmp_path / "store")
    path = store.path_of(_user_bucket_file(store, "user1"))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    result = cli("user", "show", "user1", "--store", store.root)
    assert_one_line_error(result, 5, "does not match its hash")
    result = cli("forget", "--user", "user1", "--yes", "--store", store.root)
    assert result.exit_code == 5, result.output


def test_a_segment_of_the_wrong_shape_is_a_one_line_exit_5(tmp_path):
    """Bytes matching their name but not the columns readers assume (or a bad split)."""
    import pyarrow as pa

    store = make_store(tmp_path / "store")
    entry = sample_segments.entry_of(store.load())
    wrong = segments.write_segment(store.path_of, "samples",
                                   pa.table({"id": ["s1"], "user_id": ["user1"]}))
    key = next(iter(entry["segments"]))
    with store.transaction() as db:
        update_meta(db, samples={**entry, "segments": {
            key: {**entry["segments"][key], "file": wrong, "rows": 1}}})
    result = cli("user", "show", "user1", "--store", store.root)
    assert_one_line_error(result, 5, "columns do not match")


@pytest.mark.parametrize("column,value", [("split", "holdout"), ("label", 7), ("id", None)])
def test_a_segment_row_with_an_impossible_value_is_a_one_line_exit_5(tmp_path, column, value):
    import pyarrow as pa

    store = make_store(tmp_path / "store")
    entry = sample_segments.entry_of(store.load())
    key = str(sample_segments.bucket_of("user1", entry["buckets"]))
    rows = records.user_sample_rows(store.snapshot(), "user1")
    rows[0][column] = value
    bad = segments.write_segment(store.path_of, "samples", pa.Table.from_pylist(
        rows, schema=sample_segments.sample_schema()))
    with store.transaction() as db:
        update_meta(db, samples={**entry, "segments": {
            key: {**entry["segments"][key], "file": bad, "rows": len(rows)}}})
    result = cli("user", "show", "user1", "--store", store.root)
    assert_one_line_error(result, 5, "corrupt")


def test_a_segment_path_leading_outside_the_store_is_refused(tmp_path):
    store = make_store(tmp_path / "store")
    document = _document(store)
    seg = next(iter(document["meta"]["1"]["samples"]["segments"].values()))
    seg["file"] = "../elsewhere/samples-" + "0" * 40 + ".parquet"
    store.file.write_text(json.dumps(document))
    result = cli("user", "show", "user1", "--store", store.root)
    assert_one_line_error(result, 5, "leads outside the store")


def test_a_malformed_segment_map_is_refused_at_load(tmp_path):
    store = make_store(tmp_path / "store")
    document = _document(store)
    document["meta"]["1"]["samples"]["buckets"] = 0
    store.file.write_text(json.dumps(document))
    assert_one_line_error(cli("status", "--store", store.root), 5, "malformed 'samples'")


# -- schema 1 → 2 ----------------------------------------------------------------------------


def _as_schema_1(store: Store) -> list[dict]:
    """Rewrite the store as schema 1 wrote it: every sample, shard manifest and embedding
    id inside apa.json."""
    manifests = _with_shards(store)
    rows = sorted(records.sample_rows(store.snapshot()), key=lambda r: r["order"])
    ids = records.embedding_entries(store.snapshot())["train"]["ids"]
    document = _document(store)
    for row in document["shards"].values():
        del row["ids_file"]
        row["sample_ids"] = manifests[row["shard"]]
    train = document["meta"]["1"]["embeddings"]["train"]
    document["meta"]["1"]["embeddings"]["train"] = {"file": train["file"], "ids": ids}
    document["samples"] = {str(i + 1): row for i, row in enumerate(rows)}
    del document["meta"]["1"]["samples"]
    document["meta"]["1"]["schema_version"] = 1
    store.file.write_text(json.dumps(document))
    for path in (store.root / "segments").glob("*"):
        path.unlink()
    return rows


def test_a_schema_1_store_reads_as_it_is_and_migrate_moves_its_samples(tmp_path):
    store = make_store(tmp_path / "store")
    rows = _as_schema_1(store)
    shown = cli("user", "show", "user1", "--store", store.root, "--json")
    assert shown.exit_code == 0, shown.output
    assert _document(store)["meta"]["1"]["schema_version"] == 1  # a reader changes nothing

    result = cli("migrate", "--store", store.root, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["data"]["migrated"] is True
    document = _document(store)
    assert document["meta"]["1"]["schema_version"] == 2 and document["samples"] == {}
    migrated = sorted(records.sample_rows(Store.open(store.root).snapshot()),
                      key=lambda r: r["order"])
    assert migrated == rows
    assert '"sample_ids"' not in store.file.read_text()
    assert [len(r["sample_ids"]) for r in records.shard_rows(store.snapshot())] == [
        r["size"] for r in document["shards"].values()]
    # logged like every write, and the chain still verifies
    (entry,) = [e for e in records.audit_entries(store.snapshot())
                if e["event"] == "store.migrated"]
    assert entry["data"] == {"schema_version": 2}
    assert cli("audit", "verify", "--store", store.root).exit_code == 0
    logged = store.file.read_bytes()
    again = cli("migrate", "--store", store.root)
    assert again.exit_code == 0 and "nothing to do" in again.stderr
    assert store.file.read_bytes() == logged  # a current store is not written


def test_a_schema_1_store_migrates_on_its_first_write(tmp_path):
    store = make_store(tmp_path / "store")
    rows = _as_schema_1(store)
    with store.transaction() as db:
        update_meta(db, touched=True)
    document = _document(store)
    assert document["meta"]["1"]["schema_version"] == 2 and document["samples"] == {}
    assert sorted(records.sample_rows(store.snapshot()), key=lambda r: r["order"]) == rows


def test_a_migration_killed_before_its_commit_leaves_schema_1_serving(tmp_path):
    store = make_store(tmp_path / "store")
    rows = _as_schema_1(store)
    before = store.file.read_bytes()
    code = textwrap.dedent(f"""
        import os, signal
        from apa_console.store.document import Store
        from apa_console.store.migration import migrate
        real_replace = os.replace
        def die_at_commit(src, dst):
            if str(dst).endswith("apa.json"):
                os.kill(os.getpid(), signal.SIGKILL)
            real_replace(src, dst)
        os.replace = die_at_commit
        migrate(Store.open({str(store.root)!r}))
        """)
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert finished.returncode == -9, finished.stderr
    assert store.file.read_bytes() == before
    assert _segment_files(store)  # written before the commit that never came
    reopened = Store.open(store.root)  # collects them: nothing references them
    assert not _segment_files(reopened) and not list(store.root.rglob(".*.tmp"))
    assert sorted(records.sample_rows(reopened.snapshot()), key=lambda r: r["order"]) == rows
    assert migrate(reopened) is True
    assert migrate(reopened) is False


def test_migrate_refuses_a_missing_store_and_extra_arguments(tmp_path):
    assert_one_line_error(cli("migrate", "--store", tmp_path / "none"), 5, "no store")
    assert cli("migrate", "extra", "--store", tmp_path / "none").exit_code == 2
