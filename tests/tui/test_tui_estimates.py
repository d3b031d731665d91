"""A forget's time estimate: from the speed measured on this machine once a job measured it
(the plan says so), else from the adapters' own training times (and it says that)."""

from __future__ import annotations

import pytest
from display_store import PENDING_USER
from pilot_helpers import console, settle, text_of

from apa_console.store import records, throughput
from apa_console.store.document import Store, get_meta
from apa_console.unlearning import describe
from apa_console.unlearning.targets import Targets
from apa_console.workflows import forget as forgetting

USER = "user1"  # shard 1 retrains; so does shard 2, for the open request of user5


def _valid_left(store: Store) -> int:
    gone = {USER, PENDING_USER}
    return sum(1 for s in records.split_samples(store.snapshot(), "valid")
               if s.user_id not in gone)


def test_without_measurements_the_plan_scales_the_adapters_training_time(display_store):
    assert "throughput" not in get_meta(display_store.snapshot())  # an older store
    plan = forgetting.plan(display_store, Targets(users=[USER]))
    assert [s["action"] for s in plan["shards"]] == ["retrain", "retrain"]
    adapters = {a["id"]: a for a in records.adapter_rows(display_store.snapshot())}
    assert plan["estimate_basis"] == "adapter times"
    for shard in plan["shards"]:
        adapter = adapters[shard["adapter"]]
        assert shard["estimate_s"] == pytest.approx(
            adapter["wall_time_s"] * shard["remaining"] / adapter["sample_count"])
    assert "from the adapters' training times (nothing measured on this machine yet)" in (
        describe.plan_lines(plan)[-1])


def test_a_measured_job_drives_the_next_estimate_and_the_store_still_opens(display_store):
    with display_store.transaction() as db:
        row = {"samples_per_s": 2.0, "valid_wall_s": 2.0, "settings": {"epochs": 1}}
        throughput.record_adapter(db, row, valid_samples=8)  # scoring: 4 samples/s
        throughput.record_adapter(db, {**row, "samples_per_s": 4.0}, valid_samples=8)
        throughput.record_adapter(db, {**row, "samples_per_s": 3.0}, valid_samples=8)
    reopened = Store.open(display_store.root)  # the schema accepts what was recorded
    rates = throughput.measured(reopened.snapshot(), None)
    assert rates == {"train_samples_per_s": 3.0, "score_samples_per_s": 4.0, "jobs": 3}
    assert throughput.measured(reopened.snapshot(), "bfloat16") is None  # another dtype

    plan = forgetting.plan(reopened, Targets(users=[USER]))
    assert plan["estimate_basis"] == "measured"
    for shard in plan["shards"]:  # 1 epoch at 3 samples/s, then the pool at 4 samples/s
        assert shard["estimate_s"] == pytest.approx(shard["remaining"] / 3.0
                                                    + _valid_left(reopened) / 4.0)
    assert "from the speed measured on this machine, plus loading the model" in (
        describe.plan_lines(plan)[-1])


def test_a_malformed_measurement_is_refused_when_the_store_opens(display_store):
    from apa_console.errors import StoreInvalidError

    with display_store.transaction() as db:
        db.table("meta").update({"throughput": {"host/m/d": {"train": [-1.0]}}}, doc_ids=[1])
    with pytest.raises(StoreInvalidError):
        Store.open(display_store.root)


@pytest.mark.anyio
async def test_the_forget_screen_says_what_its_estimate_rests_on(display_store):
    async with console(display_store).run_test(size=(100, 30)) as pilot:
        pilot.app.forget(USER)
        await settle(pilot)
        summary = text_of(pilot, "#plan-summary")
        assert "from the adapters' training times" in summary
        assert "plus loading the model" in summary
