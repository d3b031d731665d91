"""Cached hidden states in user-bucketed parts: read back in row order, a purge rewrites
only the removed users' parts, older single-array caches still read and purge, and a
malformed parts map is refused at load."""

from __future__ import annotations

import json

import numpy as np
import pytest
from data_fixtures import assert_one_line_error, cli
from store_fixtures import make_store

from apa_console.apa.embeddings import cached_embeddings, validation_pool
from apa_console.samples import Sample
from apa_console.store import embedding_parts, records, sample_segments
from apa_console.store.document import Store, get_meta, update_meta
from apa_console.unlearning import audit_log
from apa_console.unlearning.purge import purge, removed_fingerprints
from apa_console.unlearning.requests import submit
from apa_console.unlearning.targets import Targets
from apa_console.unlearning.verify import scan_for_traces


@pytest.fixture
def many_buckets(monkeypatch):
    """Four rows a bucket, so a dozen users' vectors spread over several parts."""
    monkeypatch.setattr(sample_segments, "ROWS_PER_BUCKET", 4)


def _vector(sample_id: str) -> np.ndarray:
    """A distinct, recognisable vector per sample (its number in every coordinate)."""
    return np.full(3, float(sample_id[1:]) + 0.5, dtype=np.float32)


def _cache_split(store: Store, split: str, *, legacy: bool = False) -> list[dict]:
    rows = [r for r in records.sample_rows(store.snapshot()) if r["split"] == split]
    ids, users = [r["id"] for r in rows], [r["user_id"] for r in rows]
    vectors = np.stack([_vector(sid) for sid in ids])
    entry = ({"file": store.write_array(f"emb-{split}", vectors), "ids": ids} if legacy
             else embedding_parts.write_split(store.path_of, split, ids, users, vectors))
    with store.transaction() as db:
        update_meta(db, embeddings={**(get_meta(db).get("embeddings") or {}), split: entry})
    return rows


def _part_files(store: Store, split: str) -> dict[int, str]:
    entry = get_meta(store.snapshot())["embeddings"][split]
    return {bucket: part["file"] for bucket, part in embedding_parts.parts_in_order(entry)}


def _forget_user(store: Store, user: str) -> list[Sample]:
    doomed = [Sample.from_record(r) for r in records.user_sample_rows(store.snapshot(), user)]
    submit(store, Targets(users=[user]))
    with store.locked():
        purge(store, records.open_requests(store.snapshot()))
    return doomed


def test_vectors_read_back_by_id_with_each_users_rows_in_one_part(tmp_path, many_buckets):
    store = make_store(tmp_path / "store", n_users=12, per_user=4)
    rows = _cache_split(store, "train")
    entry = get_meta(store.snapshot())["embeddings"]["train"]
    assert len(entry["parts"]) > 1 and '"ids":' not in store.file.read_text()
    ids, vectors = cached_embeddings(store, "train")
    assert sorted(ids) == sorted(r["id"] for r in rows)
    assert all((vectors[i] == _vector(sid)).all() for i, sid in enumerate(ids))
    owner = {r["id"]: r["user_id"] for r in rows}
    for part in records.embedding_entries(store.snapshot())["train"]["parts"]:
        buckets = {sample_segments.bucket_of(owner[sid], entry["buckets"]) for sid in part["ids"]}
        assert buckets == {part["bucket"]}


def test_a_purge_rewrites_only_the_removed_users_part(tmp_path, many_buckets):
    store = make_store(tmp_path / "store", n_users=12, per_user=4)
    _cache_split(store, "train")
    before = _part_files(store, "train")
    buckets = get_meta(store.snapshot())["embeddings"]["train"]["buckets"]
    hit = sample_segments.bucket_of("user3", buckets)
    doomed = _forget_user(store, "user3")
    after = _part_files(store, "train")
    assert {b: f for b, f in before.items() if b != hit} == {
        b: f for b, f in after.items() if b != hit}
    assert after.get(hit) != before[hit]
    ids, vectors = cached_embeddings(store, "train")
    assert not {s.id for s in doomed} & set(ids)
    assert all((vectors[i] == _vector(sid)).all() for i, sid in enumerate(ids))
    names = audit_log.pseudonyms(store.snapshot())
    removed = removed_fingerprints(names, doomed, [_vector(s.id) for s in doomed
                                                   if s.split == "train"])
    assert removed["vectors"] and scan_for_traces(store, removed) == []


def test_error_tables_follow_the_validation_cache_order(tmp_path, many_buckets):
    store = make_store(tmp_path / "store", n_users=12, per_user=4)
    rows = _cache_split(store, "valid")
    pool = validation_pool(store)
    assert [s.id for s in pool] == cached_embeddings(store, "valid")[0]
    assert [s.id for s in pool] != [r["id"] for r in rows]  # the bucket order is its own


def test_an_older_single_array_cache_still_reads_and_purges(tmp_path):
    store = make_store(tmp_path / "store", n_users=6, per_user=4)
    rows = _cache_split(store, "train", legacy=True)
    ids, _ = cached_embeddings(store, "train")
    assert ids == [r["id"] for r in rows]
    doomed = _forget_user(store, "user2")
    entry = get_meta(store.snapshot())["embeddings"]["train"]
    assert "parts" not in entry
    ids, vectors = cached_embeddings(store, "train")
    assert ids == [r["id"] for r in rows if r["user_id"] != "user2"]
    assert all((vectors[i] == _vector(sid)).all() for i, sid in enumerate(ids))
    names = audit_log.pseudonyms(store.snapshot())
    assert scan_for_traces(store, removed_fingerprints(names, doomed, [])) == []


@pytest.mark.parametrize("damage", [
    lambda e: e.update(buckets=0),
    lambda e: e["parts"].update({"99": next(iter(e["parts"].values()))}),
    lambda e: next(iter(e["parts"].values())).pop("rows"),
    lambda e: next(iter(e["parts"].values())).update(extra=1),
    lambda e: e.update(file="arrays/x.npy"),
], ids=["no-buckets", "bucket-out-of-range", "part-without-rows", "part-extra-key",
        "mixed-forms"])
def test_a_malformed_parts_map_is_refused_at_load(tmp_path, many_buckets, damage):
    store = make_store(tmp_path / "store", n_users=12, per_user=4)
    _cache_split(store, "train")
    document = json.loads(store.file.read_text())
    damage(document["meta"]["1"]["embeddings"]["train"])
    store.file.write_text(json.dumps(document))
    assert_one_line_error(cli("status", "--store", store.root), 5, "embeddings")


def test_a_missing_or_corrupt_part_is_a_one_line_store_error(tmp_path, many_buckets):
    from apa_console.errors import StoreInvalidError

    store = make_store(tmp_path / "store", n_users=12, per_user=4)
    _cache_split(store, "train")
    files = sorted(_part_files(store, "train").values())
    store.path_of(files[0]).unlink()
    with pytest.raises(StoreInvalidError, match="referenced by the store but missing"):
        cached_embeddings(store, "train")
    _cache_split(store, "train")  # the same vectors again: the missing part is rewritten
    store.path_of(files[1]).write_bytes(b"not an array")
    with pytest.raises(StoreInvalidError, match="is corrupt"):
        cached_embeddings(store, "train")
