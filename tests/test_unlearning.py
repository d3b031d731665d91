"""Exact unlearning on the tiny model: plan, purge, retrain affected shards, swap, receipt,
audit, verification, queueing, cancel, and kill -9 at every commit boundary."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from store_fixtures import make_store
from typer.testing import CliRunner

from apa_console.apa.adapters import train_all
from apa_console.apa.serving import load_live_set, samples_to_score, score_apa
from apa_console.apa.shards import run_partition
from apa_console.cli.app import app
from apa_console.engine.backbone import Backbone
from apa_console.engine.training import TrainSettings, train_adapter
from apa_console.errors import CancelledError, NotFoundError, UsageError
from apa_console.progress import CancelToken
from apa_console.store import records
from apa_console.store.document import Store
from apa_console.store.model_record import record_model
from apa_console.unlearning import audit_log as audit
from apa_console.unlearning.forget import apply_pending
from apa_console.unlearning.requests import list_requests, plan, submit
from apa_console.unlearning.targets import Targets
from apa_console.unlearning.user_audit import user_audit
from apa_console.unlearning.verify import verify_request

FAST = {"epochs": 1, "batch_size": 4}


@pytest.fixture(scope="module")
def backbone(tiny_model_dir):
    return Backbone.load(tiny_model_dir, device="cpu")


def _trained(tmp_path_factory, backbone, method):
    store = make_store(tmp_path_factory.mktemp(f"tpl-{method}") / "store")
    record_model(store, backbone.info)
    run_partition(store, backbone, method, 3, seed=0)
    train_all(store, backbone, overrides=FAST, retrain_baseline=True)
    return store.root


@pytest.fixture(scope="module")
def apa_template(tmp_path_factory, backbone):
    return _trained(tmp_path_factory, backbone, "apa")


@pytest.fixture(scope="module")
def apa_user_template(tmp_path_factory, backbone):
    return _trained(tmp_path_factory, backbone, "apa-user")


def _copy(template: Path, tmp_path: Path) -> Store:
    target = tmp_path / "store"
    shutil.copytree(template, target)
    return Store.open(target)


def _live_shas(store: Store) -> dict[int, str]:
    return {row["shard"]: row["sha256"] for row in records.live_adapters(store.snapshot())}


def _forget(store, backbone, **targets):
    submit(store, Targets(**targets))
    return apply_pending(store, backbone)


def test_forget_user_removes_every_trace_and_retrains_only_affected_shards(
    apa_template, tmp_path, backbone
):
    store = _copy(apa_template, tmp_path)
    before = _live_shas(store)
    user = "user2"
    the_plan = plan(store, Targets(users=[user]))
    affected = {s["shard"] for s in the_plan["shards"]}
    assert sum(the_plan["samples"].values()) == 8 and affected
    (receipt,) = _forget(store, backbone, users=[user])

    db = store.snapshot()
    assert not db.table("samples").search(lambda r: r["user_id"] == user)
    assert not db.table("users").search(lambda r: r["id"] == user)
    assert all(user not in row["users"] for row in records.shard_rows(store.snapshot()))
    after = _live_shas(store)
    assert {k for k in before if before[k] != after[k]} == affected  # others untouched
    assert receipt["removed"] == the_plan["samples"]
    assert {c["shard"] for c in receipt["adapters"]} == affected
    assert receipt["baseline_retired"]  # the all-data baseline held the user's data
    # the validation cache dropped the user's validation columns
    live = load_live_set(store)
    assert live.valid_errors.shape[1] == len(samples_to_score(store, split="valid"))
    # the audit log names the user only by salted hash, and the chain holds
    log_text = str(audit.entries(store))
    assert f"'{user}'" not in log_text and audit.verify_store(store)["ok"]
    # the served model is what training from scratch on the remaining shard gives
    for k in affected:
        row = next(r for r in records.live_adapters(store.snapshot()) if r["shard"] == k)
        ids = next(r["sample_ids"] for r in records.shard_rows(store.snapshot()) if r["shard"] == k)
        by_id = {s.id: s for s in samples_to_score(store, split="train")}
        with tempfile.TemporaryDirectory() as tmp:
            fresh = train_adapter(backbone, backbone.prompts_for([by_id[i] for i in ids]),
                                  [by_id[i].label for i in ids], ids,
                                  TrainSettings.from_dict(row["settings"]), Path(tmp) / "a")
        assert fresh.weights_sha256 == row["sha256"]
    report = verify_request(store, backbone, receipt["request"])
    assert report["ok"] and not report["traces"]
    history = user_audit(store, user)
    assert not history["present"] and history["requests"][0]["status"] == "done"


def test_forgetting_twice_is_idempotent_and_unknown_targets_fail(apa_template, tmp_path,
                                                                 backbone):
    store = _copy(apa_template, tmp_path)
    _forget(store, backbone, users=["user1"])
    shas = _live_shas(store)
    again = submit(store, Targets(users=["user1"]))
    assert again["request"] is None and again["already_forgotten"] == ["user user1"]
    assert apply_pending(store, backbone) == [] and _live_shas(store) == shas
    with pytest.raises(NotFoundError):
        plan(store, Targets(users=["nobody"]))
    with pytest.raises(NotFoundError):
        plan(store, Targets(items=["no-such-item"]))
    with pytest.raises(UsageError):
        plan(store, Targets())


def test_apa_user_partition_forgets_a_user_by_retraining_one_shard(apa_user_template, tmp_path,
                                                                   backbone):
    store = _copy(apa_user_template, tmp_path)
    for user in ("user0", "user3", "user5"):
        assert len(plan(store, Targets(users=[user]))["adapters_to_retrain"]) == 1
    (receipt,) = _forget(store, backbone, users=["user3"])
    assert len(receipt["adapters"]) == 1


def test_queued_requests_retrain_each_shard_once(apa_template, tmp_path, backbone):
    store = _copy(apa_template, tmp_path)
    first = submit(store, Targets(samples=["s000000"]))["request"]["id"]
    second = submit(store, Targets(samples=["s000001", "s000002"]))["request"]["id"]
    assert [r["status"] for r in list_requests(store)] == ["pending", "pending"]
    versions_before = {r["shard"]: r["version"] for r in records.live_adapters(store.snapshot())}
    receipts = apply_pending(store, backbone)
    assert [r["request"] for r in receipts] == [first, second]
    for row in records.live_adapters(store.snapshot()):
        assert row["version"] - versions_before[row["shard"]] in (0, 1)
    assert all(r["status"] == "done" and r["targets"] is None for r in list_requests(store))


def test_item_takedown_removes_every_sample_mentioning_the_item(apa_template, tmp_path,
                                                                backbone):
    store = _copy(apa_template, tmp_path)
    item = "3"
    _forget(store, backbone, items=[item])
    for row in store.snapshot().table("samples"):
        assert row["target_item"] != item
        assert all(h["item"] != item for h in row["history"])


def test_a_shard_left_empty_is_retired_and_aggregation_uses_the_rest(apa_template, tmp_path,
                                                                     backbone):
    store = _copy(apa_template, tmp_path)
    shard = records.shard_rows(store.snapshot())[0]
    _forget(store, backbone, samples=shard["sample_ids"])
    assert len(records.live_adapters(store.snapshot())) == 2
    report = score_apa(store, backbone, samples_to_score(store, split="test"))
    assert report.weights.shape[1] == 2


def test_cancel_keeps_old_adapters_serving_and_the_request_pending(apa_template, tmp_path,
                                                                   backbone):
    store = _copy(apa_template, tmp_path)
    before = _live_shas(store)
    token = CancelToken()

    def cancel_on_first_training_step(event):
        if "(train)" in event.task:
            token.cancel()

    submit(store, Targets(users=["user4"]))
    with pytest.raises(CancelledError):
        apply_pending(store, backbone, progress=cancel_on_first_training_step, cancel=token)
    assert _live_shas(store) == before
    (request,) = list_requests(store)
    assert request["status"] == "pending" and request["phase"] == "purged"
    assert not list((store.root / "adapters").glob("*/v2"))  # no half-built adapter left
    (receipt,) = apply_pending(store, backbone)
    assert receipt["request"] == request["id"] and _live_shas(store) != before


def test_trace_scan_finds_a_planted_removed_id(apa_template, tmp_path, backbone):
    store = _copy(apa_template, tmp_path)
    victim = samples_to_score(store, split="train")[0]
    (receipt,) = _forget(store, backbone, samples=[victim.id])
    (store.root / "arrays" / "notes.json").write_text(json.dumps({"left": victim.input}))
    (store.root / "leak.txt").write_text(f"saw {victim.id} here")
    report = verify_request(store, backbone, receipt["request"])
    assert not report["ok"]
    assert any("leak.txt" in t for t in report["traces"])
    assert any("notes.json" in t and "text" in t for t in report["traces"])


def test_verify_detects_a_tampered_adapter(apa_template, tmp_path, backbone):
    store = _copy(apa_template, tmp_path)
    (receipt,) = _forget(store, backbone, users=["user0"])
    live = records.live_adapters(store.snapshot())
    row = next(r for r in live if r["shard"] == receipt["shards"][0])
    weights = store.path_of(row["path"]) / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert not audit.verify_store(store)["ok"]


# -- the CLI: bad input leaves the store as it was ---------------------------------------

runner = CliRunner()


def _invoke(store: Store, *args: str, input: str | None = None):
    return runner.invoke(app, [*args, "--store", str(store.root)], input=input)


def test_cli_bad_input_changes_nothing(apa_template, tmp_path):
    store = _copy(apa_template, tmp_path)
    original = store.file.read_bytes()
    cases = [
        (("forget", "--user", "nobody", "--yes"), 3, "no user"),
        (("forget", "--yes"), 2, "nothing to forget"),
        (("forget", "--user", "user1"), 2, "confirmation"),  # wrong text typed
        (("verify", "--request", "r9999"), 3, "no request"),
        (("score", "--strategy", "best"), 2, "--strategy"),
        (("score", "--user", "nobody"), 3, "no user"),
        (("audit", "--user", "nobody"), 3, "no record"),
        (("partition", "--method", "kmeans"), 2, "--method"),
    ]
    for args, code, message in cases:
        result = _invoke(store, *args, input="someone-else\n")
        assert result.exit_code == code, (args, result.output)
        assert message in result.output, (args, result.output)
        assert store.file.read_bytes() == original, args


def test_cli_forget_on_a_locked_store_fails_cleanly(apa_template, tmp_path):
    store = _copy(apa_template, tmp_path)
    original = store.file.read_bytes()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys,time; from apa_console.store.document import Store; s=Store.open(sys.argv[1]);"
         "s._lock.acquire(); print('locked', flush=True); time.sleep(30)", str(store.root)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = _invoke(store, "forget", "--user", "user1", "--yes")
        assert result.exit_code == 4 and "locked" in result.output
    finally:
        holder.kill()
    assert store.file.read_bytes() == original


def test_cli_dry_run_json_and_queue(apa_template, tmp_path):
    store = _copy(apa_template, tmp_path)
    original = store.file.read_bytes()
    result = _invoke(store, "forget", "--user", "user1", "--dry-run", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["plan"]["samples"]["train"] > 0
    assert store.file.read_bytes() == original
    queued = _invoke(store, "forget", "--user", "user1", "--queue", "--yes", "--json")
    assert json.loads(queued.stdout)["status"] == "pending"
    listed = json.loads(_invoke(store, "requests", "--json").stdout)
    assert [r["status"] for r in listed] == ["pending"]


# -- kill -9 at every boundary -----------------------------------------------------------


def _cli(store: Store, *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "APA_STORE": str(store.root)}
    env.pop("APA_CRASH_AT", None)
    if crash_at:
        env["APA_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-m", "apa_console.cli.app", *args],
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def reference_after_forget(apa_template, tmp_path_factory):
    store = _copy(apa_template, tmp_path_factory.mktemp("reference"))
    result = _cli(store, "forget", "--user", "user2", "--yes")
    assert result.returncode == 0, result.stderr
    return _live_shas(store)


@pytest.mark.parametrize(
    "point", ["after_purge", "after_first_retrain", "before_swap", "after_swap"]
)
def test_kill_9_leaves_a_serving_store_that_apply_completes(
    apa_template, tmp_path, point, reference_after_forget
):
    store = _copy(apa_template, tmp_path)
    old = _live_shas(store)
    crashed = _cli(store, "forget", "--user", "user2", "--yes", crash_at=point)
    assert crashed.returncode == -9, crashed.stderr
    reopened = Store.open(store.root)
    served = _live_shas(reopened)
    # never a mix: every shard serves its old adapter, or every shard its new one
    assert served in (old, reference_after_forget), point
    for row in records.live_adapters(reopened.snapshot()):
        assert (reopened.path_of(row["path"]) / "adapter_model.safetensors").is_file()
    assert len(load_live_set(reopened).rows) == 3
    resumed = _cli(store, "apply")
    assert resumed.returncode == 0, resumed.stderr
    final = Store.open(store.root)
    assert _live_shas(final) == reference_after_forget
    assert all(r["status"] == "done" for r in list_requests(final))
    assert audit.verify_store(final)["ok"]
    # nothing unreferenced (old adapter versions, stale arrays) survives the recovery
    assert final.collect_garbage() == []
    assert not np.isnan(load_live_set(final).valid_errors).any()


def test_plan_says_when_each_record_is_its_own_user(tmp_path):
    from apa_console.store.document import update_meta

    store = make_store(tmp_path / "store")
    assert plan(store, Targets(users=["user0"]))["users_are_records"] is False
    with store.transaction() as db:
        update_meta(db, dataset={"name": "tallrec-json", "users_are_records": True})
    assert plan(store, Targets(users=["user0"]))["users_are_records"] is True
