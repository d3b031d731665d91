"""A refused command changes nothing, and says why in one line with its documented exit code.

Each case runs one command on a copy of a small trained store (built once per module with
the tiny model) after breaking one thing: a bad number on the command line, a damaged
record in apa.json, a garbage or missing file the store references, a path that leaves the
store, a symlink, or a malformed input file. Every case checks the exit code, exactly one
non-empty line on stderr, no traceback, and every file of the store byte for byte.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from refusal_checks import assert_refused, copy_of, runner
from store_fixtures import make_store

from apa_console.apa.adapters import train_all
from apa_console.apa.shards import run_partition
from apa_console.cli.app import app
from apa_console.engine.backbone import Backbone
from apa_console.errors import ExitCode
from apa_console.store.model_record import record_model
from apa_console.unlearning.forget import apply_pending
from apa_console.unlearning.requests import submit
from apa_console.unlearning.targets import Targets

BIG = str(2**70)
USAGE, STORE, DATA = int(ExitCode.USAGE), int(ExitCode.STORE_INVALID), int(ExitCode.DATA_INVALID)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir) -> Path:
    """Partitioned (apa, K=3), trained (with the baseline), one forget applied."""
    backbone = Backbone.load(tiny_model_dir, device="cpu")
    store = make_store(tmp_path_factory.mktemp("refusals") / "store")
    record_model(store, backbone.info)
    run_partition(store, backbone, "apa", 3, seed=0)
    train_all(store, backbone, overrides={"epochs": 1, "batch_size": 4}, retrain_baseline=True)
    submit(store, Targets(samples=["s000000"]))
    apply_pending(store, backbone)
    return store.root


@pytest.fixture(scope="module")
def empty(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("refusals-empty") / "store"
    assert runner.invoke(app, ["init", "--store", str(root)]).exit_code == 0
    return root


# -- bad numbers on the command line: exit 2, before anything is read or written ----------

NUMBER_CASES = [
    *[(["partition", "--force", "--shards", v]) for v in ("0", "-1", BIG, "abc", "1.5")],
    *[(["partition", "--force", "--max-size", v]) for v in ("0", "-1", BIG, "abc")],
    *[(["partition", "--force", "--seed", v]) for v in ("-1", BIG, "abc")],
    *[(["train", "--lr", v]) for v in ("nan", "inf", "-inf", "-1", "0", "1e400", "abc")],
    *[(["train", "--seed", v]) for v in ("-1", BIG, "abc")],
    *[(["train", "--epochs", v]) for v in ("0", "-1", BIG, "abc")],
    *[(["train", "--batch-size", v]) for v in ("0", "-1", BIG, "abc")],
    *[(["score", "--tau", v]) for v in ("nan", "inf", "-1", "1e300", "abc")],
    *[(["score", "--neighbours", v]) for v in ("0", "-1", BIG, "abc")],
    *[(["score", "--limit", v]) for v in ("-1", "abc")],
    *[(["users", "--min-samples", v]) for v in ("-1", "abc")],
    *[(["users", "--limit", v]) for v in ("-1", "abc")],
    *[(["user", "show", "user1", "--limit", v]) for v in ("-1", "abc")],
    ["score", "--strategy", "best"],
    ["score", "--level", "X"],
    ["partition", "--method", "kmeans"],
    ["train", "--dtype", "float8"],
    ["statuss"],
    ["status", "--bogus"],
]


@pytest.mark.parametrize("args", NUMBER_CASES, ids=lambda a: " ".join(a))
def test_bad_numbers_and_options_are_refused(trained, tmp_path, args):
    assert_refused(copy_of(trained, tmp_path), args, USAGE)


INGEST_NUMBER_CASES = [
    *[(["ingest", "demo", "--users", v]) for v in ("0", "-1", BIG, "abc")],
    *[(["ingest", "demo", f"--{split}-size", "-1"]) for split in ("train", "valid", "test")],
    ["ingest", "demo", "--train-size", "abc"],
    ["ingest", "demo", "--seed", "abc"],
    ["ingest", "demo", "--train-size", "0", "--valid-size", "0", "--test-size", "0"],
]


@pytest.mark.parametrize("args", INGEST_NUMBER_CASES, ids=lambda a: " ".join(a))
def test_bad_ingest_numbers_leave_the_empty_store_empty(empty, tmp_path, args):
    assert_refused(copy_of(empty, tmp_path), args, USAGE)


def test_an_all_zero_ingest_is_refused_so_a_later_ingest_still_works(empty, tmp_path):
    store = copy_of(empty, tmp_path)
    zero = ["ingest", "demo", "--train-size", "0", "--valid-size", "0", "--test-size", "0"]
    assert_refused(store, zero, USAGE, "nothing to keep")
    assert runner.invoke(app, ["ingest", "demo", "--store", str(store)]).exit_code == 0


def test_train_on_an_unpartitioned_store_loads_and_records_no_model(tmp_path):
    store = make_store(tmp_path / "store").root
    assert_refused(store, ["train"], int(ExitCode.CONFLICT), "partition")
    assert_refused(store, ["score"], int(ExitCode.CONFLICT), "train")
    assert_refused(store, ["compare"], int(ExitCode.CONFLICT), "train")
    assert not (store / "models").exists()


# -- damaged records in apa.json: exit 5 ---------------------------------------------------

DROP = object()


def _first(document: dict, table: str, where: Callable[[dict], bool] = lambda row: True):
    return next(row for row in document[table].values() if where(row))


def _live(row: dict) -> bool:
    return row.get("status") == "live" and row.get("kind") == "shard"


RECORD_FIELDS = [
    # samples live in segment files, checked as they are read (test_segments.py)
    ("users", None, ["id", "counts"]),
    ("shards", None, ["shard", "ids_file", "users", "size", "centre"]),
    ("adapters", _live, ["id", "kind", "status", "shard", "path", "sha256", "settings",
                         "manifest_hash", "valid_errors", "wall_time_s"]),
    ("requests", None, ["id", "status", "subjects", "targets", "affected_shards"]),
    ("audit", None, ["seq", "time", "event", "prev", "hash"]),
    ("meta", None, ["key_id", "store_id", "pseudonyms", "embeddings", "partition", "model",
                    "train_settings"]),
]
# a value of the wrong type for each field (None is fine for a few optional ones)
WRONG = {"label": 7, "split": "holdout", "history": [{"item": 1}], "order": "1",
         "counts": {"train": "many"}, "sample_ids": "s000001", "users": [1], "size": -3,
         "centre": 5, "kind": "mystery", "status": "zombie", "shard": "0", "path": 42,
         "settings": "fast", "valid_errors": [], "wall_time_s": "slow",
         "subjects": "someone", "targets": "user1", "affected_shards": ["two"],
         "seq": "1", "embeddings": ["arrays/x.npy"], "partition": "apa", "model": 3,
         "train_settings": [1]}
REQUIRED_ONLY = {"history", "centre", "targets", "affected_shards", "valid_errors", "embeddings",
                 "partition", "train_settings", "model"}  # these may be absent
COMMANDS = (["status"], ["users"], ["shards"], ["requests"], ["audit"], ["audit", "verify"],
            ["score"], ["forget", "--user", "user1", "--dry-run"])

RECORD_CASES = []
for _table, _where, _fields in RECORD_FIELDS:
    for _field in _fields:
        if _field not in REQUIRED_ONLY:
            RECORD_CASES.append((_table, _where, _field, DROP))
        RECORD_CASES.append((_table, _where, _field, WRONG.get(_field, 12345)))
for _table in ("users", "shards", "adapters", "requests", "audit"):
    RECORD_CASES.append((_table, None, None, "not an object"))


def _case_id(case) -> str:
    table, _, field, value = case
    return f"{table}.{field or '*'}={'missing' if value is DROP else type(value).__name__}"


@pytest.mark.parametrize("case", RECORD_CASES, ids=_case_id)
def test_damaged_records_exit_5(trained, tmp_path, case):
    table, where, field, value = case
    store = copy_of(trained, tmp_path)
    document = json.loads((store / "apa.json").read_text())
    if field is None:
        document[table][next(iter(document[table]))] = value
    else:
        row = _first(document, table, where or (lambda row: True))
        if value is DROP:
            row.pop(field)
        else:
            row[field] = value
    (store / "apa.json").write_text(json.dumps(document))
    command = COMMANDS[RECORD_CASES.index(case) % len(COMMANDS)]
    assert_refused(store, list(command), STORE, "corrupt")


META_CASES = [
    ("embeddings.test.ids", lambda m: m["embeddings"]["test"].update(ids="s1")),
    ("embeddings.test.file", lambda m: m["embeddings"]["test"].update(file=None)),
    ("embeddings.holdout", lambda m: m["embeddings"].update(holdout={"file": "a", "ids": []})),
    ("partition.shards", lambda m: m["partition"].update(shards="three")),
    ("model.fingerprint", lambda m: m["model"].update(fingerprint=1)),
    ("aggregation", lambda m: m.update(aggregation={"tau": "hot", "neighbours": 3})),
]


@pytest.mark.parametrize("name,change", META_CASES, ids=[c[0] for c in META_CASES])
def test_damaged_meta_exits_5(trained, tmp_path, name, change):
    store = copy_of(trained, tmp_path)
    document = json.loads((store / "apa.json").read_text())
    change(document["meta"]["1"])
    (store / "apa.json").write_text(json.dumps(document))
    assert_refused(store, ["status"], STORE, "corrupt")


@pytest.mark.parametrize("lr", ["fast", None, float("inf"), -1])
def test_an_adapters_damaged_settings_exit_5_before_train_writes(trained, tmp_path, lr):
    store = copy_of(trained, tmp_path)
    document = json.loads((store / "apa.json").read_text())
    _first(document, "adapters", _live)["settings"]["lr"] = lr
    (store / "apa.json").write_text(json.dumps(document))
    assert_refused(store, ["train", "--epochs", "2"], STORE, "training settings")


@pytest.mark.parametrize("lr", ["fast", None, float("inf"), -1])
def test_recorded_training_settings_that_are_damaged_exit_5(trained, tmp_path, lr):
    store = copy_of(trained, tmp_path)
    document = json.loads((store / "apa.json").read_text())
    document["meta"]["1"]["train_settings"]["lr"] = lr
    (store / "apa.json").write_text(json.dumps(document))
    assert_refused(store, ["train"], STORE, "training settings")


# -- garbage, missing or truncated files the store references: exit 5 -----------------------


def _live_dir(store: Path) -> Path:
    document = json.loads((store / "apa.json").read_text())
    return store / _first(document, "adapters", _live)["path"]


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00garbage\xff" * 7)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _arrays(store: Path, prefix: str) -> list[Path]:
    return sorted((store / "arrays").glob(f"{prefix}-*.npy"))


FILE_CASES = {
    "weights garbage": lambda s: _garbage(_live_dir(s) / "adapter_model.safetensors"),
    "weights truncated": lambda s: _truncate(_live_dir(s) / "adapter_model.safetensors"),
    "weights missing": lambda s: (_live_dir(s) / "adapter_model.safetensors").unlink(),
    "config garbage": lambda s: _garbage(_live_dir(s) / "adapter_config.json"),
    "config a list": lambda s: (_live_dir(s) / "adapter_config.json").write_text("[1]"),
    "config missing": lambda s: (_live_dir(s) / "adapter_config.json").unlink(),
    "adapter folder missing": lambda s: shutil.rmtree(_live_dir(s)),
    "embeddings garbage": lambda s: [_garbage(p) for p in _arrays(s, "emb")],
    "embeddings truncated": lambda s: [_truncate(p) for p in _arrays(s, "emb")],
    "embeddings missing": lambda s: [p.unlink() for p in _arrays(s, "emb")],
    "embeddings wrong shape": lambda s: [np.save(p, np.zeros(2, np.float32))
                                         for p in _arrays(s, "emb")],
    "embeddings pickled": lambda s: [np.save(p, np.array([{}], dtype=object), allow_pickle=True)
                                     for p in _arrays(s, "emb")],
    "errors garbage": lambda s: [_garbage(p) for p in _arrays(s, "verr")],
    "errors truncated": lambda s: [_truncate(p) for p in _arrays(s, "verr")],
    "errors wrong length": lambda s: [np.save(p, np.zeros(3, np.float32))
                                      for p in _arrays(s, "verr")],
    "errors text": lambda s: [p.write_text("0.1 0.2") for p in _arrays(s, "verr")],
    "arrays folder missing": lambda s: shutil.rmtree(s / "arrays"),
}


@pytest.mark.parametrize("name", list(FILE_CASES))
def test_damaged_files_exit_5(trained, tmp_path, name):
    store = copy_of(trained, tmp_path)
    FILE_CASES[name](store)
    assert_refused(store, ["score", "--json"], STORE)


@pytest.mark.parametrize("name", ["centre garbage", "centre wrong width"])
def test_damaged_centres_exit_5_for_semantic_weights(trained, tmp_path, name):
    store = copy_of(trained, tmp_path)
    for path in _arrays(store, "centre"):
        if name == "centre garbage":
            _garbage(path)
        else:
            np.save(path, np.zeros(3, np.float32))
    assert_refused(store, ["score", "--json", "--strategy", "semantic"], STORE)


def test_changed_weights_fail_the_audit_with_exit_8(trained, tmp_path):
    store = copy_of(trained, tmp_path)
    _garbage(_live_dir(store) / "adapter_model.safetensors")
    assert_refused(store, ["audit", "verify", "--json"], int(ExitCode.VERIFY_FAILED),
                   "audit")


# -- recorded paths stay inside the store; no symlinks: exit 5 ------------------------------


def _set_path(kind: str, value: str):
    def change(store: Path) -> None:
        document = json.loads((store / "apa.json").read_text())
        meta = document["meta"]["1"]
        if kind == "embedding":
            meta["embeddings"]["test"]["file"] = value
        elif kind == "adapter":
            _first(document, "adapters", _live)["path"] = value
        elif kind == "errors":
            _first(document, "adapters", _live)["valid_errors"] = value
        (store / "apa.json").write_text(json.dumps(document))
    return change


def _link(store: Path, target: Path, name: str) -> None:
    (store / name).unlink() if (store / name).is_file() else shutil.rmtree(store / name)
    (store / name).symlink_to(target)


PATH_CASES = {
    "embedding ../ traversal": _set_path("embedding", "arrays/../../../../etc/passwd"),
    "embedding absolute": _set_path("embedding", "/etc/passwd"),
    "embedding empty": _set_path("embedding", ""),
    "embedding NUL": _set_path("embedding", "arrays/x\x00.npy"),
    "adapter ../ traversal": _set_path("adapter", "adapters/../../elsewhere"),
    "adapter absolute": _set_path("adapter", "/tmp"),
    "errors ../ traversal": _set_path("errors", "../outside.npy"),
    "errors backslash": _set_path("errors", "arrays\\..\\..\\x.npy"),
}


@pytest.mark.parametrize("name", list(PATH_CASES))
def test_recorded_paths_that_leave_the_store_exit_5(trained, tmp_path, name):
    store = copy_of(trained, tmp_path)
    PATH_CASES[name](store)
    assert_refused(store, ["score", "--json"], STORE)


def test_a_symlinked_arrays_folder_exits_5(trained, tmp_path):
    store = copy_of(trained, tmp_path)
    shutil.copytree(store / "arrays", tmp_path / "outside")
    _link(store, tmp_path / "outside", "arrays")
    assert_refused(store, ["score", "--json"], STORE, "symlink")


def test_symlinked_adapter_weights_exit_5(trained, tmp_path):
    store = copy_of(trained, tmp_path)
    weights = _live_dir(store) / "adapter_model.safetensors"
    shutil.copy(weights, tmp_path / "weights")
    weights.unlink()
    weights.symlink_to(tmp_path / "weights")
    assert_refused(store, ["score", "--json"], STORE, "symlink")


def test_a_symlinked_embedding_file_exits_5(trained, tmp_path):
    store = copy_of(trained, tmp_path)
    target = _arrays(store, "emb")[0]
    shutil.copy(target, tmp_path / "emb.npy")
    target.unlink()
    target.symlink_to(tmp_path / "emb.npy")
    assert_refused(store, ["score", "--json"], STORE, "symlink")


# -- malformed ingest input files: exit 6 ---------------------------------------------------

VALID_INPUT = ('User Preference: "A (1990)"\nUser Unpreference: "B (1991)"\n'
               'Whether the user will like the target movie "C (1992)"?')


def _record(**extra) -> dict:
    return {"instruction": "Answer.", "input": VALID_INPUT, "output": "Yes.", **extra}


TALLREC_CASES = {
    "deep nesting": "[" * 100_000 + "]" * 100_000,
    "5000-digit user id": "[" + json.dumps(_record())[:-1] + ', "user_id": ' + "9" * 5000 + "}]",
    "5000-digit number anywhere": "[" + json.dumps(_record())[:-1] + ', "x": ' + "1" * 5000
                                  + "}]",
    "user_id true": json.dumps([_record(user_id=True)]),
    "user_id a list": json.dumps([_record(user_id=["u"])]),
    "user_id empty": json.dumps([_record(user_id="")]),
    "user_id 2**70": json.dumps([_record(user_id=2**70)]),
    "user_id 5000 characters": json.dumps([_record(user_id="u" * 5000)]),
    "an object, not a list": json.dumps(_record()),
    "a record that is a string": json.dumps(["hello"]),
    "output maybe": json.dumps([_record(output="Maybe.")]),
    "input not TALLRec's": json.dumps([_record(input="hello")]),
    "truncated": json.dumps([_record()])[:-5],
    "not UTF-8": b"[\xff\xfe]",
}


@pytest.mark.parametrize("name", list(TALLREC_CASES))
def test_malformed_tallrec_input_exits_6(empty, tmp_path, name):
    store = copy_of(empty, tmp_path)
    source = tmp_path / "source"
    source.mkdir()
    content = TALLREC_CASES[name]
    (source / "train.json").write_bytes(content if isinstance(content, bytes)
                                        else content.encode())
    for split in ("valid", "test"):
        (source / f"{split}.json").write_text("[]")
    assert_refused(store, ["ingest", "tallrec", str(source)], DATA)


MOVIELENS_CASES = {
    "5000-digit rating": "1\t1\t" + "5" * 5000 + "\t100\n",
    "rating 0": "1\t1\t0\t100\n",
    "three fields": "1\t1\t5\n",
    "unknown item": "1\t99\t5\t100\n",
    "empty user": "\t1\t5\t100\n",
}


@pytest.mark.parametrize("name", list(MOVIELENS_CASES))
def test_malformed_movielens_input_exits_6(empty, tmp_path, name):
    store = copy_of(empty, tmp_path)
    source = tmp_path / "ml"
    source.mkdir()
    (source / "u.item").write_bytes(b"1|A (1990)|01-Jan-1990||http://x|0\n")
    (source / "u.data").write_text(MOVIELENS_CASES[name])
    assert_refused(store, ["ingest", "movielens", str(source)], DATA)


def test_a_store_with_adapters_but_no_recorded_model_exits_5_before_loading_one(trained,
                                                                                  tmp_path):
    store = copy_of(trained, tmp_path)
    document = json.loads((store / "apa.json").read_text())
    del document["meta"]["1"]["model"]
    (store / "apa.json").write_text(json.dumps(document))
    assert_refused(store, ["score", "--json"], STORE, "records no model")
    assert not (store / "models").exists()
