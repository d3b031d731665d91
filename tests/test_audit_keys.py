"""Keyed pseudonyms and the authenticated audit chain (#18 §4): the key lives outside the
store, the store alone links no forgotten id, and `audit verify` catches truncation,
rewritten or reordered entries and swapped adapter weights; legacy salted stores still
work and say they are unauthenticated."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import shutil
import stat
from pathlib import Path

import pytest
from store_fixtures import trained_store
from typer.testing import CliRunner

from apa_console.apa.shards import run_partition
from apa_console.cli.app import app
from apa_console.engine.backbone import Backbone
from apa_console.store import keys, records
from apa_console.store.document import Store, get_meta
from apa_console.unlearning import audit_log as audit
from apa_console.unlearning.forget import apply_pending
from apa_console.unlearning.requests import submit
from apa_console.unlearning.targets import Targets

SHAPE = {"n_users": 4, "per_user": 6, "seed": 2}
FORGOTTEN = "user0"
runner = CliRunner()


@pytest.fixture(scope="module")
def backbone(tiny_model_dir):
    return Backbone.load(tiny_model_dir, device="cpu")


@pytest.fixture(scope="module")
def trained_template(tmp_path_factory, backbone) -> Path:
    return trained_store(tmp_path_factory.mktemp("keys-trained") / "store", backbone,
                         **SHAPE).root


@pytest.fixture(scope="module")
def forgotten_template(trained_template, tmp_path_factory, backbone):
    """The trained store after forgetting FORGOTTEN; returns (root, receipt)."""
    store = _copy(trained_template, tmp_path_factory.mktemp("keys-forgotten"))
    submit(store, Targets(users=[FORGOTTEN]))
    (receipt,) = apply_pending(store, backbone)
    return store.root, receipt


def _copy(template: Path, tmp_path: Path) -> Store:
    target = tmp_path / "store"
    shutil.copytree(template, target)
    return Store.open(target)


def _document(store: Store) -> dict:
    return json.loads(store.file.read_text())


def _write(store: Store, document: dict) -> None:
    store.file.write_text(json.dumps(document))


def _audit_rows(document: dict) -> list[tuple[str, dict]]:
    return sorted(document["audit"].items(), key=lambda item: item[1]["seq"])


def _verify(store: Store, *args: str):
    return runner.invoke(app, ["audit", "verify", "--store", str(store.root), *args])


def _events(store: Store) -> list[str]:
    return [entry["event"] for entry in audit.entries(store)]


# -- the key and the pseudonyms ------------------------------------------------------------


def test_the_key_lives_outside_the_store_and_only_there(tmp_path):
    result = runner.invoke(app, ["init", "--store", str(tmp_path / "store")])
    assert result.exit_code == 0, result.output
    store = Store.open(tmp_path / "store")
    meta = get_meta(store.snapshot())
    assert meta["pseudonyms"] == keys.KEYED and "salt" not in meta
    path = keys.key_path(meta["store_id"])
    assert path.parent == Path(os.environ[keys.KEY_DIR_ENV]) and str(path) in result.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = bytes.fromhex(path.read_text().strip())
    assert len(key) == 32 and keys.key_id(key) == meta["key_id"]
    for file in store.root.rglob("*"):
        if file.is_file():
            data = file.read_bytes()
            assert key not in data and key.hex().encode() not in data, file


def _strings(value) -> list[str]:
    if isinstance(value, dict):
        return [s for item in [*value.keys(), *value.values()] for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return [value] if isinstance(value, str) else []


def _brute_force(document: dict, candidates: list[str]) -> set[str]:
    """Every candidate id whose pseudonym can be computed from the document alone: try each
    string the document holds as salt or HMAC key, and no key at all."""
    text = json.dumps(document)
    hashes = set(re.findall(r"[0-9a-f]{64}", text))
    # every string of meta, found by walking it (a regex over the text pairs the wrong
    # quotes once a longer string, such as a segment path, comes before the salt)
    secrets = {""} | {s for s in _strings(document["meta"]) if len(s) <= 64}
    found = set()
    for value in candidates:
        for kind in ("user", "sample"):
            guesses = [hashlib.sha256(value.encode()).hexdigest()]
            for secret in secrets:
                guesses.append(keys.legacy_fingerprint(secret, kind, value))
                guesses.append(hmac.new(secret.encode(), f"{kind}\x00{value}".encode(),
                                        hashlib.sha256).hexdigest())
            if hashes.intersection(guesses):
                found.add(value)
    return found


CANDIDATES = ([f"user{n}" for n in range(1000)] + [f"u{n:03d}" for n in range(1, 1000)]
              + [f"s{n:06d}" for n in range(200)])


def test_the_store_alone_does_not_link_a_forgotten_id(forgotten_template, tmp_path):
    root, receipt = forgotten_template
    store = _copy(root, tmp_path)
    meta = get_meta(store.snapshot())
    names = audit.pseudonyms(store.snapshot())
    mine = names.fingerprint("user", FORGOTTEN)
    assert receipt["subjects"] == [mine]
    assert mine != keys.legacy_fingerprint(meta["store_id"], "user", FORGOTTEN)
    assert FORGOTTEN not in store.file.read_text()
    assert _brute_force(_document(store), CANDIDATES) == set()


def test_the_same_brute_force_breaks_a_legacy_store(forgotten_template, tmp_path):
    """The check above has teeth: on a salted store it recovers the forgotten user."""
    root, _ = forgotten_template
    store = _copy(root, tmp_path)
    document = _document(store)
    salt = "ab" * 16
    document["meta"]["1"] = {k: v for k, v in document["meta"]["1"].items()
                             if k not in ("store_id", "key_id", "pseudonyms")} | {"salt": salt}
    for row in document["requests"].values():
        row["subjects"] = [keys.legacy_fingerprint(salt, "user", FORGOTTEN)]
    assert FORGOTTEN in _brute_force(document, CANDIDATES)


def test_a_missing_key_fails_commands_that_need_it_in_one_line(trained_template, tmp_path,
                                                               monkeypatch):
    store = _copy(trained_template, tmp_path)
    original = store.file.read_bytes()
    monkeypatch.setenv(keys.KEY_DIR_ENV, str(tmp_path / "elsewhere"))
    for args in (["audit", "verify"], ["forget", "--user", "user1", "--yes"]):
        result = runner.invoke(app, [*args, "--store", str(store.root)])
        assert result.exit_code == 5, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert str(tmp_path / "elsewhere") in lines[0] and "$APA_KEY_DIR" in lines[0]
        assert "Traceback" not in result.output
    assert store.file.read_bytes() == original
    for args in (["status"], ["users"], ["shards"], ["audit"], ["audit", "head"]):
        result = runner.invoke(app, [*args, "--store", str(store.root)])
        assert result.exit_code == 0, (args, result.output)


def test_a_wrong_key_is_named_in_one_line(trained_template, tmp_path, monkeypatch):
    store = _copy(trained_template, tmp_path)
    meta = get_meta(store.snapshot())
    other = tmp_path / "other-keys"
    other.mkdir()
    (other / f"{meta['store_id']}.key").write_text(os.urandom(32).hex())
    monkeypatch.setenv(keys.KEY_DIR_ENV, str(other))
    result = _verify(store)
    assert result.exit_code == 5 and "is not this store's key" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# -- every state change is logged ----------------------------------------------------------


def test_every_write_is_logged(forgotten_template, tmp_path, backbone):
    root, receipt = forgotten_template
    store = _copy(root, tmp_path)
    events = _events(store)
    assert events[:3] == ["model.recorded", "partition", "train.settings"]
    assert events.count("train.adapter") == 3
    assert events[-3:] == ["forget.requested", "forget.purged", "forget.done"]
    trained = [e["data"] for e in audit.entries(store) if e["event"] == "train.adapter"]
    assert all(len(d["sha256"]) == 64 and d["settings"]["seed"] is not None for d in trained)
    assert receipt["audit_head"] == audit.current_head(store)
    # partition --force is logged with the adapters it retired
    live = {row["id"] for row in records.live_adapters(store.snapshot())}
    run_partition(store, backbone, "apa", 2, seed=0, force=True)
    last = audit.entries(store)[-1]
    assert last["event"] == "partition" and last["data"]["force"] is True
    assert set(last["data"]["retired_adapters"]) == live
    assert audit.verify_store(store)["ok"]
    # nothing personal in the log
    log = json.dumps(audit.entries(store))
    assert not any(f'"{user}"' in log for user in ("user0", "user1", "user2", "user3"))
    assert not re.search(r'"s\d{6}"', log)


def test_ingest_is_logged(tmp_path):
    path = tmp_path / "store"
    assert runner.invoke(app, ["init", "--store", str(path)]).exit_code == 0
    result = runner.invoke(app, ["ingest", "demo", "--users", "4", "--store", str(path)])
    assert result.exit_code == 0, result.output
    store = Store.open(path)
    (entry,) = audit.entries(store)
    assert entry["event"] == "ingest" and entry["data"]["users"] == 4
    assert sum(entry["data"]["samples"].values()) > 0
    assert audit.verify_store(store)["ok"]


# -- audit verify: what it catches ---------------------------------------------------------


def test_verify_passes_untouched_and_with_the_anchored_head(forgotten_template, tmp_path):
    root, receipt = forgotten_template
    store = _copy(root, tmp_path)
    result = _verify(store, "--expect-head", receipt["audit_head"])
    assert result.exit_code == 0, result.output
    assert receipt["audit_head"] in result.stdout and "0 entries follow" in result.stdout
    head = runner.invoke(app, ["audit", "head", "--store", str(store.root)])
    assert head.stdout.strip() == receipt["audit_head"]
    earlier = audit.entries(store)[2]["hash"]
    result = _verify(store, "--expect-head", earlier[:16], "--json")
    assert result.exit_code == 0
    anchor = json.loads(result.stdout)["data"]["anchor"]
    assert anchor["entries_after"] == len(audit.entries(store)) - 3


@pytest.mark.parametrize("typo", ["deadbeef", "zz" * 16, "a" * 65, " "])
def test_a_malformed_expected_head_is_a_usage_error_not_tampering(forgotten_template,
                                                                  tmp_path, typo):
    root, _ = forgotten_template
    store = _copy(root, tmp_path)
    result = _verify(store, "--expect-head", typo)
    assert result.exit_code == 2, result.output
    assert "is not a head" in result.stderr and "rewritten" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def _assert_fails(store: Store, *args: str, fragment: str) -> None:
    result = _verify(store, *args)
    assert result.exit_code == 8, result.output
    assert fragment in result.stdout, result.stdout
    assert "Traceback" not in result.output


def test_verify_catches_a_deleted_last_entry_with_the_anchored_head(forgotten_template,
                                                                   tmp_path):
    root, receipt = forgotten_template
    store = _copy(root, tmp_path)
    document = _document(store)
    last_key, _ = _audit_rows(document)[-1]
    del document["audit"][last_key]
    _write(store, document)
    _assert_fails(store, "--expect-head", receipt["audit_head"], fragment="anchored head")


def test_verify_catches_an_edited_entry_rehashed_with_sha256(forgotten_template, tmp_path):
    root, _ = forgotten_template
    store = _copy(root, tmp_path)
    document = _document(store)
    prev = "0" * 64
    for _, entry in _audit_rows(document):  # the old, unkeyed chain, recomputed in full
        if entry["event"] == "forget.requested":
            entry["data"]["subjects"] = ["f" * 64]
        body = json.dumps({k: entry[k] for k in ("seq", "time", "event", "data")},
                          sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        entry["prev"], entry["hash"] = prev, hashlib.sha256((prev + body).encode()).hexdigest()
        prev = entry["hash"]
    _write(store, document)
    _assert_fails(store, fragment="does not match its keyed hash")


def test_verify_catches_an_edited_entry(forgotten_template, tmp_path):
    root, _ = forgotten_template
    store = _copy(root, tmp_path)
    document = _document(store)
    entry = next(e for _, e in _audit_rows(document) if e["event"] == "partition")
    entry["data"]["seed"] = 99
    _write(store, document)
    _assert_fails(store, fragment="does not match its keyed hash")


def test_verify_catches_two_swapped_entries(forgotten_template, tmp_path):
    root, _ = forgotten_template
    store = _copy(root, tmp_path)
    document = _document(store)
    rows = _audit_rows(document)
    (_, first), (_, second) = rows[1], rows[2]
    for field in ("time", "event", "data"):
        first[field], second[field] = second[field], first[field]
    _write(store, document)
    _assert_fails(store, fragment="does not match its keyed hash")


def test_verify_catches_weights_copied_over_another_adapter(forgotten_template, tmp_path):
    root, _ = forgotten_template
    store = _copy(root, tmp_path)
    source, victim = sorted(records.live_adapters(store.snapshot()), key=lambda r: r["shard"])[:2]
    weights = "adapter_model.safetensors"
    shutil.copyfile(store.path_of(source["path"]) / weights,
                    store.path_of(victim["path"]) / weights)
    document = _document(store)
    row = next(r for r in document["adapters"].values() if r["id"] == victim["id"])
    row["sha256"] = source["sha256"]
    _write(store, document)
    _assert_fails(store, fragment=f"adapter {victim['id']}: weights do not match the sha256 "
                                  "its audit entry recorded")


# -- legacy stores -------------------------------------------------------------------------


def test_a_legacy_salted_store_still_forgets_and_verifies(trained_template, tmp_path, backbone):
    store = _copy(trained_template, tmp_path)
    document = _document(store)
    salt = "cd" * 16
    meta = document["meta"]["1"]
    document["meta"]["1"] = {"app": meta["app"], "schema_version": meta["schema_version"],
                             "created": meta["created"], "salt": salt,
                             **{k: meta[k] for k in meta if k in ("dataset", "model",
                                                                   "partition", "embeddings",
                                                                   "train_settings",
                                                                   "samples")}}
    document["audit"] = {}  # old stores logged forgets only
    _write(store, document)
    submit(store, Targets(users=["user1"]))
    (receipt,) = apply_pending(store, backbone)
    assert receipt["subjects"] == [keys.legacy_fingerprint(salt, "user", "user1")]
    result = _verify(store)
    assert result.exit_code == 0, result.output
    assert "UNAUTHENTICATED" in result.stdout and "predates keyed pseudonyms" in result.stdout
    # a forgotten id is still recognised, and an edit still breaks the (plain) chain
    again = runner.invoke(app, ["forget", "--user", "user1", "--yes", "--store",
                                str(store.root)])
    assert again.exit_code == 0 and "already forgotten" in again.stdout
    document = _document(store)
    _audit_rows(document)[0][1]["data"]["request"] = "r9999"
    _write(store, document)
    _assert_fails(store, fragment="does not match its hash")


def test_a_downgrade_to_the_legacy_scheme_is_caught_by_the_anchored_head(forgotten_template,
                                                                          tmp_path):
    """Without the key, an attacker could rewrite meta as a legacy store and re-hash the chain
    with sha256: verify then reports an unauthenticated chain, and the anchored head fails."""
    root, receipt = forgotten_template
    store = _copy(root, tmp_path)
    document = _document(store)
    meta = document["meta"]["1"]
    for field in ("store_id", "key_id", "pseudonyms"):
        meta.pop(field)
    meta["salt"] = "ee" * 16
    prev = "0" * 64
    rows = _audit_rows(document)
    del document["audit"][rows[-1][0]]  # drop the last entry too
    for _, entry in rows[:-1]:
        body = json.dumps({k: entry[k] for k in ("seq", "time", "event", "data")},
                          sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        entry["prev"], entry["hash"] = prev, hashlib.sha256((prev + body).encode()).hexdigest()
        prev = entry["hash"]
    _write(store, document)
    plain = _verify(store)
    assert "UNAUTHENTICATED" in plain.stdout
    _assert_fails(store, "--expect-head", receipt["audit_head"], fragment="anchored head")
