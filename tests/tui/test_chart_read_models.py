"""The data behind the Charts screen (workflows/chart_views.py) and the score history it
draws (apa/score_history.py), on the deterministic display store: no model, no terminal."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from display_store import (
    R0003_FORGET_S,
    R0003_FULL_RETRAIN_S,
    SCORES,
    add_chart_history,
)

from apa_console.apa.score_history import record_score
from apa_console.apa.serving import ScoreReport
from apa_console.errors import StoreInvalidError
from apa_console.store import records
from apa_console.store.document import LOCK_FILE, STORE_FILE, Store
from apa_console.workflows import chart_views
from apa_console.workflows.chart_views import epoch_starts


def report(auc_labels=(1, 0, 1, 0), p_yes=(0.9, 0.2, 0.6, 0.4)) -> ScoreReport:
    return ScoreReport(method="APA(D)", sample_ids=[f"s{i}" for i in range(len(p_yes))],
                       user_ids=[f"user{i}" for i in range(len(p_yes))],
                       labels=np.array(auc_labels), p_yes=np.array(p_yes), wall_s=0.5,
                       adapter_ids=["shard-0-v2"], strategy="adaptive", level="D")


@pytest.mark.parametrize("steps, epochs, starts", [
    (12, 2, [7]), (10, 3, [5, 9]), (12, 1, []), (0, 2, []), (12, None, []), (3, 4, [2, 3]),
])
def test_epoch_marks_fall_where_each_later_epoch_begins(steps, epochs, starts):
    assert epoch_starts(steps, epochs) == starts


def test_charts_view_reads_every_chart_from_the_store(display_store):
    data = chart_views.charts_view(add_chart_history(display_store))
    loss = {c["shard"]: c for c in data["loss"]}
    assert loss[1]["epochs"] == 2 and loss[1]["epoch_starts"] == [7]
    assert loss[0]["epoch_starts"] == [] and len(loss[0]["curve"]) == 12

    users = data["user_shards"]["users"]
    assert [(u["id"], u["span"]) for u in users[:3]] == [("user1", 3), ("user0", 2),
                                                        ("user3", 1)]
    assert users[0]["counts"] == {0: 1, 1: 4, 2: 1}
    assert data["user_shards"]["spread"] == {1: 4, 2: 1, 3: 1}

    assert [(p["auc"], p["label"]) for p in data["auc"]] == [
        (auc, after or "start") for auc, after in SCORES]

    costs = {c["request"]: c for c in data["forget_costs"]["requests"]}
    assert costs["r0003"]["estimate_from"] == "receipt"
    assert costs["r0003"]["full_retrain_s"] == R0003_FULL_RETRAIN_S
    assert costs["r0003"]["ratio"] == pytest.approx(R0003_FORGET_S / R0003_FULL_RETRAIN_S)
    # r0001's receipt predates the estimate: today's three adapters' train times (4+5+6 s)
    assert costs["r0001"]["estimate_from"] == "current adapters"
    assert costs["r0001"]["full_retrain_s"] == pytest.approx(15.0)
    assert "r0002" not in costs  # still pending

    assert [(e["adapter"], e["error"]) for e in data["valid_errors"]] == [
        ("shard-0-v2", 0.41), ("shard-1-v1", 0.43), ("shard-2-v1", 0.45)]


def test_a_store_with_nothing_yet_gives_empty_charts(tmp_path):
    from store_fixtures import make_store

    data = chart_views.charts_view(make_store(tmp_path / "store"))
    assert data["loss"] == [] and data["auc"] == [] and data["valid_errors"] == []
    assert data["user_shards"]["users"] == [] and data["forget_costs"]["requests"] == []


def test_a_score_is_recorded_after_the_last_forget_without_any_user_or_sample_id(
        display_store):
    assert record_score(display_store, report(), "test")
    (point,) = records.score_history(display_store.snapshot())
    assert point["after_request"] == "r0001" and point["auc"] == 1.0
    assert (point["samples"], point["positives"], point["split"]) == (4, 2, "test")
    assert "user0" not in json.dumps(point) and "s0" not in point["adapters"]


def test_the_history_keeps_the_newest_points_only(display_store, monkeypatch):
    monkeypatch.setattr(records, "SCORE_HISTORY_LIMIT", 3)
    for p_yes in ((0.9, 0.2, 0.6, 0.4), (0.9, 0.2, 0.3, 0.4), (0.1, 0.2, 0.3, 0.4),
                  (0.1, 0.2, 0.05, 0.4)):
        record_score(display_store, report(p_yes=p_yes), "test")
    history = records.score_history(display_store.snapshot())
    assert [p["auc"] for p in history] == [0.75, 0.25, 0.0]  # the first (1.0) is gone


def test_a_score_while_another_writer_holds_the_store_goes_unrecorded(display_store):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from filelock import FileLock
        lock = FileLock({str(display_store.root / LOCK_FILE)!r})
        lock.acquire()
        print("locked", flush=True)
        time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert record_score(display_store, report(), "test") is False
    finally:
        holder.kill()
        holder.wait()
    assert records.score_history(display_store.snapshot()) == []


@pytest.mark.parametrize("damage, field", [
    (lambda doc: doc["meta"]["1"].update(score_history=[{"auc": 0.7}]), "score_history"),
    (lambda doc: doc["requests"]["1"]["receipt"].update(full_retrain_estimate_s="15 s"),
     "receipt"),
])
def test_a_malformed_chart_field_is_refused_naming_it(display_store, damage, field):
    path = display_store.root / STORE_FILE
    document = json.loads(path.read_text())
    damage(document)
    path.write_text(json.dumps(document))
    with pytest.raises(StoreInvalidError, match=field):
        Store.open(display_store.root)
