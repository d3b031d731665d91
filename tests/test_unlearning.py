"""Exact unlearning on the tiny model: plan, purge, retrain affected shards, swap, receipt,
audit, verification, queueing, cancel, and kill -9 at every commit boundary."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest
from store_fixtures import FAST_TRAINING, make_store, trained_store
from typer.testing import CliRunner

from apa_console.apa.adapters import train_all
from apa_console.apa.serving import load_live_set, samples_to_score, score_apa
from apa_console.apa.shards import run_partition
from apa_console.cli.app import app
from apa_console.engine.backbone import Backbone
from apa_console.engine.training import TrainSettings, train_adapter
from apa_console.errors import CancelledError, ConflictError, NotFoundError, UsageError
from apa_console.progress import CancelToken
from apa_console.samples import SPLITS
from apa_console.store import records
from apa_console.store.document import Store
from apa_console.unlearning import audit_log as audit
from apa_console.unlearning import describe
from apa_console.unlearning.forget import apply_pending
from apa_console.unlearning.requests import list_requests, plan, submit
from apa_console.unlearning.targets import Targets
from apa_console.unlearning.user_audit import user_audit
from apa_console.unlearning.verify import scan_for_traces, verify_request

FAST = FAST_TRAINING


@pytest.fixture(scope="module")
def backbone(tiny_model_dir):
    return Backbone.load(tiny_model_dir, device="cpu")


def _trained(tmp_path_factory, backbone, method):
    return trained_store(tmp_path_factory.mktemp(f"tpl-{method}") / "store", backbone, method,
                         baseline=True).root


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
    assert not [r for r in records.sample_rows(db) if r["user_id"] == user]
    assert not db.table("users").search(lambda r: r["id"] == user)
    assert all(user not in row["users"] for row in records.shard_rows(store.snapshot()))
    after = _live_shas(store)
    assert {k for k in before if before[k] != after[k]} == affected  # others untouched
    assert receipt["removed"] == the_plan["samples"]
    assert {c["shard"] for c in receipt["adapters"]} == affected
    assert receipt["baseline_retired"]  # the all-data baseline held the user's data
    # the cost of retraining every shard instead, for the TUI's forget-cost chart
    assert receipt["full_retrain_estimate_s"] == pytest.approx(sum(
        row["wall_time_s"] + row["valid_wall_s"]
        for row in records.live_adapters(store.snapshot())), abs=0.01)
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
    for row in records.sample_rows(store.snapshot()):
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


def _single_shard_user(store: Store) -> tuple[str, int]:
    """A user whose training samples all sit in one shard (apa-user partitions by user)."""
    spans = records.user_shards(store.snapshot())
    user = next(u for u, shards in sorted(spans.items()) if len(shards) == 1)
    return user, spans[user][0]


def _test_scores(store: Store, backbone) -> np.ndarray:
    return score_apa(store, backbone, samples_to_score(store, split="test")).p_yes


def test_cancel_withdraws_the_affected_adapter_and_apa_serves_the_others(
    apa_user_template, tmp_path, backbone
):
    store = _copy(apa_user_template, tmp_path)
    user, shard = _single_shard_user(store)
    before = _live_shas(store)
    token = CancelToken()

    def cancel_on_first_training_step(event):
        if "(train)" in event.task:
            token.cancel()

    submit(store, Targets(users=[user]))
    with pytest.raises(CancelledError):
        apply_pending(store, backbone, progress=cancel_on_first_training_step, cancel=token)
    (request,) = list_requests(store)
    assert request["status"] == "pending" and request["phase"] == "purged"
    # the adapter trained on the user's samples left serving, and its files are gone
    assert _live_shas(store) == {k: sha for k, sha in before.items() if k != shard}
    (withdrawn,) = records.withdrawn_adapters(store.snapshot())
    assert withdrawn["shard"] == shard and withdrawn["withdrawn_by"] == request["id"]
    assert not (store.root / "adapters" / f"shard-{shard}").exists() or not any(
        (store.root / "adapters" / f"shard-{shard}").rglob("*.safetensors"))
    assert not list((store.root / "adapters").glob("*/v2"))  # no half-built adapter left
    assert request["state"] == (f"removed from data; shard {shard}'s adapter withdrawn, "
                                f"retrain pending ({request['id']})")
    assert user_audit(store, user)["requests"][0]["state"] == request["state"]
    withdrawn_scores = _test_scores(store, backbone)

    # Oracle: the same forget run to the end, then the retrained shard taken out by hand:
    # APA over exactly the unaffected adapters.
    oracle = _copy(apa_user_template, tmp_path / "oracle")
    _forget(oracle, backbone, users=[user])
    with oracle.transaction() as db:
        (retrained,) = [r for r in records.live_adapters(db) if r["shard"] == shard]
        records.retire_adapter(db, retrained["id"])
    assert np.array_equal(withdrawn_scores, _test_scores(oracle, backbone))

    (receipt,) = apply_pending(store, backbone)
    assert receipt["request"] == request["id"]
    after = _live_shas(store)
    assert set(after) == set(before) and after[shard] != before[shard]
    assert not records.withdrawn_adapters(store.snapshot())


def test_scoring_refuses_clearly_while_every_adapter_is_withdrawn(apa_template, tmp_path,
                                                                  backbone):
    store = _copy(apa_template, tmp_path)
    everyone = sorted(records.user_ids(store.snapshot()))
    token = CancelToken()
    token.cancel()
    submit(store, Targets(users=everyone[:6]))
    with pytest.raises(CancelledError):
        apply_pending(store, backbone, cancel=token)
    assert not records.live_adapters(store.snapshot())  # these users span every shard
    with pytest.raises(ConflictError, match="withdrawn until the retrain of r0001"):
        load_live_set(store)


def test_plan_lists_the_open_requests_a_forget_also_runs(apa_user_template, tmp_path,
                                                        backbone):
    store = _copy(apa_user_template, tmp_path)
    spans = records.user_shards(store.snapshot())
    first, second = sorted(spans)[:2]
    submit(store, Targets(users=[first]))
    the_plan = plan(store, Targets(users=[second]))
    (queued,) = the_plan["queued"]
    assert queued["request"] == "r0001" and queued["label"] == f"user {first}"
    hit = {row["shard"] for row in the_plan["shards"]}
    assert hit == set(spans[first]) | set(spans[second])
    lines = "\n".join(describe.plan_lines(the_plan))
    assert "also runs 1 open request" in lines and f"r0001: user {first}" in lines


def test_cli_forget_prints_every_receipt_it_writes(apa_user_template, tmp_path):
    store = _copy(apa_user_template, tmp_path)
    first, second = sorted(records.user_shards(store.snapshot()))[:2]
    assert _invoke(store, "forget", "--user", first, "--queue", "--yes").exit_code == 0
    result = _invoke(store, "forget", "--user", second, "--yes")
    assert result.exit_code == 0, result.output
    assert "also runs 1 open request" in result.output
    assert "receipt r0001" in result.output and "receipt r0002" in result.output


def test_forget_runs_only_the_requests_its_plan_showed(apa_user_template, tmp_path, backbone):
    from apa_console.workflows import forget as forgetting

    store = _copy(apa_user_template, tmp_path)
    first, second = sorted(records.user_shards(store.snapshot()))[:2]

    def someone_queues_meanwhile(shown_plan):
        assert shown_plan["queued"] == []
        submit(store, Targets(users=[first]))  # another terminal, after the plan was shown

    outcome = forgetting.forget(store, Targets(users=[second]), lambda: nullcontext(backbone),
                                confirm=someone_queues_meanwhile)
    assert [r["request"] for r in outcome.receipts] == [outcome.request]
    status = {r["id"]: r["status"] for r in list_requests(store)}
    assert status == {"r0001": "pending", "r0002": "done"}
    with pytest.raises(ConflictError, match="r0001 queued"):
        forgetting.same_queue(plan(store, Targets(users=[first])), set())


def test_train_and_partition_wait_for_open_forgets(apa_template, tmp_path, backbone):
    store = _copy(apa_template, tmp_path)
    submit(store, Targets(users=["user1"]))
    original = store.file.read_bytes()
    with pytest.raises(ConflictError, match="r0001 are open"):
        train_all(store, backbone, overrides=FAST)
    with pytest.raises(ConflictError, match="pending"):
        run_partition(store, backbone, "apa", 3, force=True)
    assert store.file.read_bytes() == original


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
        (("forget", "--user", "user1"), 2, "not 'user1': nothing was changed"),  # mistyped
        (("verify", "--request", "r9999"), 3, "no request"),
        (("score", "--strategy", "best"), 2, "--strategy"),
        (("score", "--user", "nobody"), 3, "no user"),
        (("audit", "--user", "nobody"), 3, "no user"),
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
    assert json.loads(result.stdout)["data"]["plan"]["samples"]["train"] > 0
    assert store.file.read_bytes() == original
    queued = _invoke(store, "forget", "--user", "user1", "--queue", "--yes", "--json")
    assert json.loads(queued.stdout)["data"]["status"] == "pending"
    listed = json.loads(_invoke(store, "requests", "--json").stdout)["data"]
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


PURGED_POINTS = ["before_purge_collect", "after_purge", "mid_training", "after_first_retrain",
                 "before_swap"]


def _assert_recovered(store: Store, reference: dict[int, str]) -> None:
    """`apply` finished the forget: the reference adapters, an intact log, nothing left."""
    final = Store.open(store.root)
    assert _live_shas(final) == reference
    assert all(r["status"] == "done" for r in list_requests(final))
    assert not records.withdrawn_adapters(final.snapshot())
    assert audit.verify_store(final)["ok"]
    # nothing unreferenced (old adapter versions, stale arrays, temp files) survives
    assert final.collect_garbage() == [] and not list(final.root.rglob("*.tmp"))
    assert not np.isnan(load_live_set(final).valid_errors).any()
    for request in list_requests(final):  # and no file holds a removed id, text or vector
        assert scan_for_traces(final, request["removed_fingerprints"],
                               request["subjects"]) == []


@pytest.mark.parametrize("point", ["before_purge_commit", *PURGED_POINTS, "after_swap"])
def test_kill_9_leaves_a_serving_store_that_apply_completes(
    apa_template, tmp_path, point, reference_after_forget
):
    store = _copy(apa_template, tmp_path)
    old = _live_shas(store)
    affected = {row["shard"] for row in plan(store, Targets(users=["user2"]))["shards"]}
    assert affected and affected != set(old)  # the interesting case: some shards keep serving
    crashed = _cli(store, "forget", "--user", "user2", "--yes", crash_at=point)
    assert crashed.returncode == -9, crashed.stderr
    reopened = Store.open(store.root)
    served = _live_shas(reopened)
    # the user's rows come from segment files: the old ones serve until the purge commit,
    # from which on no segment the store references holds them
    held = records.user_sample_rows(reopened.snapshot(), "user2")
    assert bool(held) == (point == "before_purge_commit")
    if point == "before_purge_commit":
        assert served == old
    elif point in PURGED_POINTS:
        # from the purge commit on, only adapters untouched by the removed data serve
        assert served == {k: sha for k, sha in old.items() if k not in affected}
        assert {r["shard"] for r in records.withdrawn_adapters(reopened.snapshot())} == affected
    else:
        assert served == reference_after_forget
    for row in records.live_adapters(reopened.snapshot()):
        assert (reopened.path_of(row["path"]) / "adapter_model.safetensors").is_file()
    # opening collected the crash's leftovers: no file of a withdrawn or replaced adapter
    assert reopened.collect_garbage() == []
    assert len(load_live_set(reopened).rows) == len(served)
    assert _cli(store, "status").returncode == 0
    assert audit.verify_store(reopened)["ok"]
    resumed = _cli(store, "apply")
    assert resumed.returncode == 0, resumed.stderr
    _assert_recovered(store, reference_after_forget)


def test_a_second_crash_during_apply_still_recovers(apa_template, tmp_path,
                                                     reference_after_forget):
    store = _copy(apa_template, tmp_path)
    assert _cli(store, "forget", "--user", "user2", "--yes",
                crash_at="after_purge").returncode == -9
    assert _cli(store, "apply", crash_at="mid_training").returncode == -9
    assert _cli(store, "status").returncode == 0
    assert _cli(store, "audit", "verify").returncode == 0
    resumed = _cli(store, "apply")
    assert resumed.returncode == 0, resumed.stderr
    _assert_recovered(store, reference_after_forget)


def test_a_crash_during_a_cancels_rollback_leaves_the_forget_resumable(
    apa_template, tmp_path, backbone, reference_after_forget, monkeypatch
):
    from apa_console.unlearning import forget as forget_pipeline

    class Killed(BaseException):
        """Stands in for kill -9 inside this process: nothing after it runs."""

    def die_in_rollback(name: str) -> None:
        if name == "in_rollback":
            raise Killed

    store = _copy(apa_template, tmp_path)
    monkeypatch.setattr(forget_pipeline, "_crash_point", die_in_rollback)
    token = CancelToken()
    submit(store, Targets(users=["user2"]))
    with pytest.raises(Killed):
        apply_pending(store, backbone, progress=lambda e: token.cancel()
                      if "(train)" in e.task else None, cancel=token)
    monkeypatch.undo()
    (request,) = list_requests(Store.open(store.root))
    assert request["status"] == "running" and request["phase"] == "purged"
    apply_pending(Store.open(store.root), backbone)
    _assert_recovered(store, reference_after_forget)


def test_a_temp_file_left_by_a_killed_commit_is_removed_on_open(apa_template, tmp_path):
    store = _copy(apa_template, tmp_path)
    # what kill -9 just before os.replace leaves: the whole document under a temp name
    leftover = store.root / ".apa.json.k9x2.tmp"
    leftover.write_bytes(store.file.read_bytes())
    (store.root / "arrays" / ".emb-train-1234.npy.abcd.tmp").write_bytes(b"half")
    Store.open(store.root)
    assert not list(store.root.rglob("*.tmp"))


def test_a_hit_shards_centre_is_cleared_by_the_purge_and_rebuilt_from_its_members(
        apa_template, tmp_path, backbone, monkeypatch):
    from apa_console.apa.embeddings import cached_embeddings
    from apa_console.apa.partition import shard_centre
    from apa_console.unlearning import forget as pipeline

    store = _copy(apa_template, tmp_path)
    affected = {s["shard"] for s in plan(store, Targets(users=["user2"]))["shards"]}
    centres_after_purge = {}
    real_centres = pipeline.member_centres

    def observed(store_, shards):
        centres_after_purge.update((r["shard"], r["centre"])
                                   for r in records.shard_rows(store_.snapshot()))
        return real_centres(store_, shards)

    monkeypatch.setattr(pipeline, "member_centres", observed)
    _forget(store, backbone, users=["user2"])
    assert affected and all(centres_after_purge[k] is None for k in affected)
    ids, vectors = cached_embeddings(store, "train")
    row_of = {sid: i for i, sid in enumerate(ids)}
    for row in records.shard_rows(store.snapshot()):
        expected = shard_centre(vectors[[row_of[sid] for sid in row["sample_ids"]]])
        assert np.array_equal(store.read_array(row["centre"]), expected), row["shard"]


def test_trace_scan_reads_temp_files_whatever_their_names(apa_template, tmp_path, backbone):
    store = _copy(apa_template, tmp_path)
    before_forget = store.file.read_bytes()
    (receipt,) = _forget(store, backbone, users=["user2"])
    assert verify_request(store, backbone, receipt["request"])["ok"]
    # a pre-forget document, its sample segments and an embedding array under names no
    # scan expects (the removed rows' ids and texts live in the segments, not apa.json)
    (store.root / ".apa.json.zz.tmp").write_bytes(before_forget)
    for n, old in enumerate(sorted((apa_template / "segments").glob("*"))):
        shutil.copy(old, store.root / f".segment-{n}.zz.tmp")
    old_embedding = json.loads(before_forget)["meta"]["1"]["embeddings"]["train"]
    for n, part in enumerate(old_embedding["parts"].values()):  # the removed rows' part too
        shutil.copy(apa_template / part["file"], store.root / "arrays" / f"old-cache-{n}.bin")
    traces = verify_request(store, backbone, receipt["request"])["traces"]
    assert any(".zz.tmp: a removed sample id" in t for t in traces)
    assert any(".zz.tmp: a removed sample's text" in t for t in traces)
    assert any(".apa.json.zz.tmp: a forgotten user or item id" in t for t in traces)
    assert any("old-cache-" in t and ": a removed sample's hidden-state vector" in t
               for t in traces)


def test_plan_says_when_each_record_is_its_own_user(tmp_path):
    from apa_console.store.document import update_meta

    store = make_store(tmp_path / "store")
    assert plan(store, Targets(users=["user0"]))["users_are_records"] is False
    with store.transaction() as db:
        update_meta(db, dataset={"name": "tallrec-json", "users_are_records": True})
    assert plan(store, Targets(users=["user0"]))["users_are_records"] is True


def test_no_plain_hash_over_a_forgotten_manifest_survives(apa_template, tmp_path, backbone):
    """A plain hash of a list that held a removed id lets anyone test guessed ids against
    it: only keyed versions of the pre-forget manifests and validation lists may remain."""
    from apa_console.apa.adapters import ids_hash
    from apa_console.engine.training import manifest_hash

    store = _copy(apa_template, tmp_path)
    db = store.snapshot()
    hit = {row["shard"] for row in plan(store, Targets(users=["user3"]))["shards"]}
    old_hashes = {manifest_hash(row["sample_ids"]) for row in records.shard_rows(db)
                  if row["shard"] in hit}
    old_hashes.add(manifest_hash([s.id for s in records.split_samples(db, "train")]))
    old_hashes.add(ids_hash([s.id for s in records.split_samples(db, "valid")]))
    token = CancelToken()
    token.cancel()
    submit(store, Targets(users=["user3"]))  # training and validation samples
    with pytest.raises(CancelledError):  # the purged, withdrawn state is checked too
        apply_pending(store, backbone, cancel=token)
    for state in ("purged", "done"):
        if state == "done":
            apply_pending(store, backbone)
        for path in (p for p in store.root.rglob("*") if p.is_file()):
            data = path.read_bytes()
            assert not [h for h in old_hashes if h.encode() in data], (state, path)


def test_trace_scan_tells_a_forgotten_numeric_user_from_an_item_with_the_same_id(tmp_path):
    """MovieLens ids are small numbers shared by users and items: forgetting user "7" must not
    flag item "7" in other users' samples, and must flag "7" where a user id is written."""
    store = make_store(tmp_path / "store")
    with store.transaction() as db:
        rows = records.sample_rows(db)
        records.remove_samples(db, {row["id"]: row["user_id"] for row in rows}, SPLITS)
        rows[0]["target_item"] = "7"
        counts: dict[str, dict[str, int]] = {}
        for row in rows:
            counts.setdefault(row["user_id"], dict.fromkeys(SPLITS, 0))[row["split"]] += 1
        records.insert_dataset(db, rows, counts)
    names = audit.pseudonyms(store.snapshot())
    subjects = [names.fingerprint("user", "7")]
    assert scan_for_traces(store, {}, subjects) == []
    (store.root / "arrays").mkdir()
    (store.root / "arrays" / ".stale.tmp").write_text('{"rows": [{"user_id": "7"}]}')
    assert scan_for_traces(store, {}, subjects) == [
        "arrays/.stale.tmp: a forgotten user or item id"]


def test_a_queued_request_can_be_withdrawn_and_a_purged_one_cannot(apa_template, tmp_path,
                                                                  backbone):
    store = _copy(apa_template, tmp_path)
    before = store.snapshot()
    assert _invoke(store, "forget", "--user", "user1", "--queue", "--yes").exit_code == 0
    withdrawn = _invoke(store, "requests", "cancel", "r0001")
    assert withdrawn.exit_code == 0 and "withdrawn; nothing was removed" in withdrawn.output
    (request,) = list_requests(store)
    assert request["status"] == "cancelled" and request["targets"] is None
    assert request["state"] == "withdrawn before it ran: nothing removed (r0001)"
    assert records.sample_rows(store.snapshot()) == records.sample_rows(before)
    assert apply_pending(store, backbone) == []  # nothing left to run
    assert audit.entries(store)[-1]["event"] == "forget.cancelled"
    again = _invoke(store, "requests", "cancel", "r0001")
    assert again.exit_code == 7 and "only a queued request" in again.stderr
    assert _invoke(store, "requests", "cancel", "r0404").exit_code == 3
    token = CancelToken()
    token.cancel()
    submit(store, Targets(users=["user2"]))
    with pytest.raises(CancelledError):  # purged, then interrupted: it must finish instead
        apply_pending(store, backbone, cancel=token)
    purged = _invoke(store, "requests", "cancel", "r0002")
    assert purged.exit_code == 7 and "already removed its samples" in purged.stderr


def test_a_forget_that_retrains_nothing_loads_no_model(apa_template, tmp_path, backbone):
    from apa_console.workflows import forget as forgetting

    store = _copy(apa_template, tmp_path)
    test_sample = next(s for s in records.samples_by_id(store.snapshot()).values()
                       if s.split == "test")
    shas = _live_shas(store)

    def no_model():
        raise AssertionError("the model was loaded for a forget of a test sample")

    outcome = forgetting.forget(store, Targets(samples=[test_sample.id]), no_model)
    (receipt,) = outcome.receipts
    assert receipt["removed"]["test"] == 1 and _live_shas(store) == shas
    train_sample = next(s for s in records.samples_by_id(store.snapshot()).values()
                        if s.split == "train")
    with pytest.raises(AssertionError, match="model was loaded"):
        forgetting.forget(store, Targets(samples=[train_sample.id]), no_model)
