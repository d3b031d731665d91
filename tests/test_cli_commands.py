"""Every command's successful run through the CLI on the tiny model, checked against the
core it fronts; and the two exit codes that only a failure or an operator produces: 1 (a
bug, with the traceback under APA_DEBUG) and 130 (Ctrl-C, the forget left pending)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from store_fixtures import trained_store
from typer.testing import CliRunner

from apa_console.apa.metrics import auc
from apa_console.apa.serving import samples_to_score, score_apa
from apa_console.cli.app import app
from apa_console.engine.backbone import Backbone
from apa_console.store import records
from apa_console.store.document import Store
from apa_console.unlearning.requests import list_requests

runner = CliRunner()


@pytest.fixture(scope="module")
def backbone(tiny_model_dir):
    return Backbone.load(tiny_model_dir, device="cpu")


@pytest.fixture(scope="module")
def template(tmp_path_factory, backbone) -> Path:
    return trained_store(tmp_path_factory.mktemp("cli-commands") / "store", backbone,
                         baseline=True).root


@pytest.fixture
def store(template, tmp_path) -> Store:
    shutil.copytree(template, tmp_path / "store")
    return Store.open(tmp_path / "store")


def cli(store: Store, *args: str):
    result = runner.invoke(app, [*args, "--store", str(store.root)])
    assert result.exit_code == 0, (args, result.output)
    return result


def cli_json(store: Store, *args: str):
    return json.loads(cli(store, *args, "--json").stdout)["data"]


def test_status_and_shards_describe_the_store(store):
    status = cli_json(store, "status")
    assert status["shards"] == 3 and status["live_adapters"] == 4  # 3 shards + the baseline
    assert status["withdrawn_adapters"] == []
    assert "live adapters" in cli(store, "status").output
    shards = cli_json(store, "shards")["shards"]
    live = {row["shard"]: row["id"] for row in records.live_adapters(store.snapshot())}
    assert {s["shard"]: s["adapter"] for s in shards} == live
    assert all(s["serving"] == "serving" for s in shards)
    table = cli(store, "shards").output
    assert all(adapter_id in table for adapter_id in live.values())


def test_score_json_matches_the_core_and_its_auc(store, backbone):
    report = cli_json(store, "score", "--split", "test")
    samples = samples_to_score(store, split="test")
    expected = score_apa(store, backbone, samples)
    assert [r["sample"] for r in report["rows"]] == [s.id for s in samples]
    assert np.allclose([r["p_yes"] for r in report["rows"]], expected.p_yes, atol=1e-6)
    labels = np.array([s.label for s in samples])
    assert report["auc"] == pytest.approx(auc(labels, expected.p_yes))
    human = cli(store, "score", "--split", "test").output
    assert f"{len(samples)} test samples" in human  # "over only 8 test samples (fewer than 10…"
    # each whole-split score from the CLI is a point of the TUI's AUC chart; the core call
    # without record_as and a user's score add none
    cli(store, "score", "--user", samples[0].user_id)
    history = records.score_history(store.snapshot())
    assert report["recorded"] and len(history) == 2
    assert history[0]["auc"] == pytest.approx(report["auc"]) and history[0]["split"] == "test"
    assert history[0]["samples"] == len(samples) and history[0]["after_request"] is None


def test_compare_reports_aucs_that_recompute_from_the_scores(store, backbone):
    result = cli_json(store, "compare")
    rows = {row["method"]: row for row in result["rows"]}
    assert list(rows) == ["Retraining", "averaging (apa)", "APA(D)", "APA(ND)"]
    samples = samples_to_score(store, split="test")
    labels = np.array([s.label for s in samples])
    apa_d = score_apa(store, backbone, samples, level="D").p_yes
    assert rows["APA(D)"]["auc"] == pytest.approx(auc(labels, apa_d))
    for method, row in rows.items():
        assert 0.0 <= row["auc"] <= 1.0, method
        assert row["delta_vs_retraining"] == pytest.approx(
            row["auc"] - rows["Retraining"]["auc"])
    assert "APA(ND)" in cli(store, "compare").output


def test_tune_stores_defaults_that_score_then_uses(store):
    result = cli_json(store, "tune")
    best = result["best"]
    assert best["scored_by"] == "served merge (D)"
    assert cli_json(store, "tune", "--proxy")["best"]["scored_by"] == "proxy"
    refused = runner.invoke(app, ["tune", "--served-points", "0", "--store", str(store.root)])
    assert refused.exit_code == 2 and "--served-points must be at least 1" in refused.output
    best = cli_json(store, "tune")["best"]
    report = cli_json(store, "score", "--split", "valid")
    assert (report["tau"], report["neighbours"]) == (best["tau"], best["neighbours"])


def test_audit_listing_head_and_verify(store):
    log = cli_json(store, "audit")
    assert log and [e["seq"] for e in log] == list(range(1, len(log) + 1))
    head = cli(store, "audit", "head").output.strip().split()[-1]
    assert log[-1]["hash"].startswith(head[:16])
    verified = cli_json(store, "audit", "verify", "--expect-head", log[-1]["hash"])
    assert verified["ok"] and verified["entries"] == len(log)
    assert "PASS" in cli(store, "audit", "verify").output


@pytest.mark.parametrize("flag", ["--sample", "--item"])
def test_forget_by_sample_or_item_then_verify_and_audit(store, flag):
    victim = samples_to_score(store, split="train")[0]
    value = victim.id if flag == "--sample" else victim.target_item
    forgotten = cli_json(store, "forget", flag, value, "--yes")
    (receipt,) = forgotten["receipts"]
    remaining = records.sample_rows(store.snapshot())
    if flag == "--sample":
        assert all(row["id"] != victim.id for row in remaining)
    else:
        assert all(row["target_item"] != value
                   and all(h["item"] != value for h in row["history"]) for row in remaining)
    verified = cli_json(store, "verify", "--request", receipt["request"])
    assert verified["ok"] and verified["traces"] == []
    assert "PASS trace scan: 0 traces" in cli(store, "verify", "-r", receipt["request"]).output
    again = cli_json(store, "forget", flag, value, "--yes")
    assert again["request"] is None and again["already_forgotten"] == [f"{flag[2:]} {value}"]
    (row,) = cli_json(store, "requests")
    assert row["id"] == receipt["request"] and row["status"] == "done"
    assert row["state"] == f"forgotten: data removed, adapters swapped ({row['id']})"


def test_audit_user_prints_counts_and_states(store):
    shown = cli(store, "audit", "--user", "user1").output
    assert "user user1 has data in:" in shown and "{" not in shown
    cli(store, "forget", "--user", "user1", "--yes")
    after = cli(store, "audit", "--user", "user1").output
    assert "holds no data" in after and "forgotten: data removed, adapters swapped (r0001)" in after
    assert "train " in after and "{" not in after


def test_verify_catches_wrong_weights_under_a_consistent_hash(store):
    """Weights swapped in and every recorded hash edited to match: only retraining and
    comparing bits can tell, and the CLI says so with exit code 8."""
    forgotten = cli_json(store, "forget", "--user", "user0", "--yes")
    (receipt,) = forgotten["receipts"]
    shard = receipt["shards"][0]
    db = store.snapshot()
    target = next(r for r in records.live_adapters(db) if r["shard"] == shard)
    other = next(r for r in records.live_adapters(db) if r["shard"] != shard)
    weights = "adapter_model.safetensors"
    shutil.copy(store.path_of(other["path"]) / weights, store.path_of(target["path"]) / weights)
    with store.transaction() as db:
        records.update_adapter(db, target["id"], {"sha256": other["sha256"]})
    result = runner.invoke(app, ["verify", "-r", receipt["request"], "--store",
                                 str(store.root)])
    assert result.exit_code == 8, result.output
    assert f"FAIL shard {shard}" in result.output
    assert "Traceback" not in result.output


def test_a_bug_is_exit_1_in_one_line_and_a_traceback_under_apa_debug(store, monkeypatch):
    from apa_console.store import status as status_core

    def broken(_store):
        raise RuntimeError("simulated defect")

    monkeypatch.setattr(status_core, "store_status", broken)
    plain = runner.invoke(app, ["status", "--store", str(store.root)])
    assert plain.exit_code == 1
    lines = plain.stderr.strip().splitlines()
    assert len(lines) == 1 and "unexpected RuntimeError: simulated defect" in lines[0]
    assert "APA_DEBUG=1" in lines[0] and "Traceback" not in plain.output
    monkeypatch.setenv("APA_DEBUG", "1")
    debug = runner.invoke(app, ["status", "--store", str(store.root)])
    assert debug.exit_code != 0 and isinstance(debug.exception, RuntimeError)


def test_ctrl_c_during_a_forget_exits_130_and_leaves_the_request_pending(store):
    env = {**os.environ, "APA_STORE": str(store.root), "APA_PAUSE_AT": "after_purge"}
    process = subprocess.Popen(
        [sys.executable, "-m", "apa_console.cli.app", "forget", "--user", "user2", "--yes"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(r.get("phase") == "purged" for r in list_requests(Store(store.root))):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the forget never reached its purge"
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    (request,) = list_requests(Store.open(store.root))
    assert request["status"] == "pending" and request["phase"] == "purged"
    assert "retrain pending (r0001)" in request["state"]
