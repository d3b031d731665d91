"""The store's safety rules: one writer, atomic commits, clear errors, garbage collection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from data_fixtures import assert_one_line_error, cli, new_store, store_bytes

from apa_console.data import generate_demo, write_dataset
from apa_console.errors import (
    ConflictError,
    ExitCode,
    StoreChangedError,
    StoreInvalidError,
    StoreLockedError,
)
from apa_console.store import records
from apa_console.store.document import LOCK_FILE, Store, get_meta, update_meta

SIZES = {"train": 1024, "valid": 500, "test": 1000}


@pytest.fixture
def store(tmp_path):
    return Store.create(tmp_path / "store")


def hold_lock(store: Store) -> subprocess.Popen:
    """Another process holding the writer lock until we stop it."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from filelock import FileLock
        lock = FileLock({str(store.root / LOCK_FILE)!r})
        lock.acquire()
        print("locked", flush=True)
        time.sleep(60)
        """
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_lock_held_by_another_process(store):
    before = store_bytes(store.root)
    holder = hold_lock(store)
    try:
        with pytest.raises(StoreLockedError) as caught:
            with store.transaction(wait_s=0.2) as db:
                update_meta(db, touched=True)
        assert caught.value.exit_code == ExitCode.STORE_LOCKED == 4
        result = cli("ingest", "demo", "--store", store.root)
        assert_one_line_error(result, 4, "locked by another apa-console process")
        assert store_bytes(store.root) == before
    finally:
        holder.kill()
        holder.wait()
    # the kernel released the dead holder's lock: writing works again
    with store.transaction(wait_s=2) as db:
        update_meta(db, touched=True)
    assert get_meta(store.snapshot())["touched"] is True


def test_failed_replace_leaves_the_old_file(store, monkeypatch):
    before = store_bytes(store.root)

    def refuse(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_dataset(store, generate_demo(4), SIZES, 0)
    monkeypatch.undo()
    assert store_bytes(store.root) == before
    assert not [p for p in store.root.iterdir() if p.name.endswith(".tmp")]
    assert records.sample_rows(store.snapshot()) == []


def test_process_killed_mid_write_leaves_the_old_file(store):
    before = store_bytes(store.root)
    # The writer dies (SIGKILL) after the new content reached the temp file, just before
    # the rename that would commit it: the worst moment.
    code = textwrap.dedent(
        f"""
        import os, signal
        from apa_console.data import generate_demo, write_dataset
        from apa_console.store.document import Store
        os.replace = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
        write_dataset(Store.open({str(store.root)!r}), generate_demo(4), {SIZES!r}, 0)
        """
    )
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert finished.returncode == -9, finished.stderr
    assert store_bytes(store.root) == before
    assert records.sample_rows(Store.open(store.root).snapshot()) == []
    # and the next writer is not blocked by the dead one
    write_dataset(store, generate_demo(4), SIZES, 0)
    assert len(records.sample_rows(store.snapshot())) == 32


def test_exception_inside_transaction_discards_changes(store):
    before = store_bytes(store.root)
    with pytest.raises(RuntimeError):
        with store.transaction() as db:
            db.table("users").insert({"id": "x", "counts": {}})
            raise RuntimeError("changed my mind")
    assert store_bytes(store.root) == before


def test_read_only_snapshot_refuses_writes(store):
    with pytest.raises(RuntimeError, match="read-only"):
        store.snapshot().table("users").insert({"id": "x"})


@pytest.mark.parametrize(
    "content,fragment",
    [
        (b"{not json", "corrupt (not valid JSON)"),
        (b"\xff\xfe\x00", "corrupt (not valid JSON)"),
        (json.dumps({"_default": {"1": {"hello": "tinydb"}}}).encode(), "not an apa-console store"),
        (b"[1, 2, 3]", "not an apa-console store"),
    ],
    ids=["syntax", "binary", "foreign-tinydb", "list"],
)
def test_corrupt_or_foreign_file(store, content, fragment):
    (store.root / "apa.json").write_bytes(content)
    with pytest.raises(StoreInvalidError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        Store.open(store.root)
    result = cli("status", "--store", store.root)
    assert_one_line_error(result, 5, fragment)
    assert (store.root / "apa.json").read_bytes() == content


def test_wrong_schema_and_malformed_table(store):
    document = json.loads(store_bytes(store.root))
    document["meta"]["1"]["schema_version"] = 99
    (store.root / "apa.json").write_text(json.dumps(document))
    assert_one_line_error(cli("users", "--store", store.root), 5, "schema version 99")

    document["meta"]["1"]["schema_version"] = 1
    document["samples"] = []
    (store.root / "apa.json").write_text(json.dumps(document))
    assert_one_line_error(cli("users", "--store", store.root), 5,
                          "table 'samples' is not a table of records")


def test_create_refuses_an_existing_store(store, tmp_path):
    with pytest.raises(ConflictError):
        Store.create(store.root)
    assert_one_line_error(cli("init", "--store", store.root), 7, "already holds a store")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert_one_line_error(cli("init", "--store", a_file), 5, "not a directory")


def test_garbage_collection_removes_only_unreferenced_arrays(store):
    kept = store.write_array("emb", np.arange(4, dtype=np.float32))
    dropped = store.write_array("emb", np.ones(3))
    stray = store.path_of("arrays/nested/left-over.npy")
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"from a crash")
    with store.transaction() as db:
        update_meta(db, embeddings={"train": {"file": kept, "ids": ["a", "b", "c", "d"]}})

    removed = store.collect_garbage()
    assert sorted(removed) == sorted([dropped, "arrays/nested/left-over.npy"])
    assert np.array_equal(store.read_array(kept), np.arange(4, dtype=np.float32))
    assert not store.path_of(dropped).exists() and not stray.parent.exists()

    ids_file = get_meta(store.snapshot())["embeddings"]["train"]["ids_file"]
    assert ids_file.startswith("segments/")  # the commit moved the id list out of apa.json
    with store.transaction() as db:
        update_meta(db, embeddings={})
    assert sorted(store.collect_garbage()) == sorted([kept, ids_file])
    with pytest.raises(StoreChangedError, match="run it again"):  # a commit dropped it
        store.read_array(kept)


def test_same_array_is_stored_once(store):
    first = store.write_array("err", np.eye(2))
    second = store.write_array("err", np.eye(2))
    assert first == second and len(list(store.path_of("arrays").iterdir())) == 1


def test_new_store_via_cli_is_valid(tmp_path):
    store_dir = new_store(tmp_path / "fresh")
    meta = get_meta(Store.open(store_dir).snapshot())
    assert meta["app"] == "apa-console" and meta["schema_version"] == 2
