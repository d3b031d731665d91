"""Shard jobs on Ray workers (the `[ray]` extra): bit-identical to sequential training on
one machine, for train, forget and verify; progress and cancel cross the process boundary;
a dead worker fails only its shard; bad flags refuse before anything runs.

One local two-worker Ray instance serves the whole module (the dispatcher joins the
instance this process already runs); the tests skip when Ray is not installed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from store_fixtures import make_store
from typer.testing import CliRunner

from apa_console.apa.adapters import train_all
from apa_console.apa.shards import run_partition
from apa_console.cli.app import app
from apa_console.engine.backbone import Backbone
from apa_console.engine.dispatch_options import DispatchOptions
from apa_console.errors import CancelledError, UsageError, WorkerError
from apa_console.progress import CancelToken
from apa_console.store import records
from apa_console.store.model_record import record_model
from apa_console.unlearning.forget import apply_pending
from apa_console.unlearning.requests import submit
from apa_console.unlearning.targets import Targets
from apa_console.unlearning.verify import verify_request

FAST = {"epochs": 1, "batch_size": 4}
TWO = DispatchOptions(workers=2)
TIMINGS = ("wall_time_s", "valid_wall_s", "samples_per_s", "created")


@pytest.fixture(scope="module")
def ray_instance(tmp_path_factory):
    ray = pytest.importorskip("ray")
    from apa_console.engine.ray_dispatch import WORKER_CRASH_ENV

    crash_file = tmp_path_factory.mktemp("ray") / "crash-at"
    os.environ[WORKER_CRASH_ENV] = str(crash_file)  # the workers inherit it
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    yield crash_file
    ray.shutdown()
    os.environ.pop(WORKER_CRASH_ENV, None)


@pytest.fixture(scope="module")
def backbone(tiny_model_dir):
    return Backbone.load(tiny_model_dir, device="cpu")


def _partitioned(path, backbone):
    store = make_store(path)
    record_model(store, backbone.info)
    run_partition(store, backbone, "apa", 4, seed=0)
    return store


def _rows(store):
    return {row["id"]: row for row in records.live_adapters(store.snapshot())}


def _errors(store, row):
    return store.read_array(row["valid_errors"])


@pytest.fixture(scope="module")
def twin_stores(tmp_path_factory, backbone, ray_instance):
    """The same store trained twice: one shard after another here, and on two Ray workers
    (with every progress event the driver saw)."""
    sequential = _partitioned(tmp_path_factory.mktemp("seq") / "store", backbone)
    train_all(sequential, backbone, overrides=FAST)
    distributed = _partitioned(tmp_path_factory.mktemp("ray") / "store", backbone)
    events = []
    train_all(distributed, backbone, overrides=FAST, progress=events.append, dispatch=TWO)
    return sequential, distributed, events


def test_ray_workers_train_bit_identical_adapters_and_rows(twin_stores):
    sequential, distributed, _ = twin_stores
    seq, dist = _rows(sequential), _rows(distributed)
    assert sorted(seq) == sorted(dist) == [f"shard-{k}-v1" for k in range(4)]
    for name, row in seq.items():
        other = dist[name]
        assert other["sha256"] == row["sha256"]
        assert ({k: v for k, v in other.items() if k not in TIMINGS}
                == {k: v for k, v in row.items() if k not in TIMINGS})
        assert (distributed.path_of(other["path"]) / "adapter_model.safetensors").read_bytes() \
            == (sequential.path_of(row["path"]) / "adapter_model.safetensors").read_bytes()
        np.testing.assert_array_equal(_errors(distributed, other), _errors(sequential, row))


def test_progress_from_every_worker_reaches_the_driver(twin_stores):
    _, _, events = twin_stores
    for k in range(4):
        for task in (f"shard-{k} (train)", f"shard-{k} (validation)"):
            mine = [e for e in events if e.task == task]
            assert mine and mine[-1].done, task
    overall = [e for e in events if e.task == "overall"]
    assert overall[-1].step == overall[-1].total == 4


def test_forget_and_verify_on_ray_match_the_sequential_forget(tmp_path, twin_stores, backbone):
    sequential, distributed, _ = twin_stores
    user = records.samples_by_id(sequential.snapshot())
    user = sorted({s.user_id for s in user.values()})[0]
    for store, dispatch in ((sequential, None), (distributed, TWO)):
        submit(store, Targets(users=[user]))
        receipts = apply_pending(store, backbone, dispatch=dispatch)
        assert len(receipts) == 1
    seq, dist = _rows(sequential), _rows(distributed)
    assert sorted(seq) == sorted(dist)
    assert {k: r["sha256"] for k, r in seq.items()} == {k: r["sha256"] for k, r in dist.items()}
    request = receipts[0]["request"]
    events = []
    result = verify_request(distributed, backbone, request, dispatch=TWO,
                            progress=events.append)
    assert result["ok"], result
    assert any(e.task.endswith("(verify)") for e in events)


def test_cancel_stops_every_worker_and_commits_nothing(tmp_path, backbone, ray_instance):
    store = _partitioned(tmp_path / "store", backbone)
    token, events = CancelToken(), []

    def cancel_once_training(event):
        events.append(event)
        if event.task.endswith("(train)"):
            token.cancel()

    with pytest.raises(CancelledError):
        train_all(store, backbone, overrides={"epochs": 40, "batch_size": 4},
                  progress=cancel_once_training, cancel=token, dispatch=TWO)
    assert records.live_adapters(store.snapshot()) == []
    assert not any(e.done for e in events if e.task.endswith("(train)"))
    assert not list((store.root / "adapters").rglob("*.safetensors")) \
        if (store.root / "adapters").exists() else True


def test_a_dead_worker_fails_its_shard_and_the_others_are_kept(tmp_path, backbone,
                                                               ray_instance):
    store = _partitioned(tmp_path / "store", backbone)
    ray_instance.write_text("shard-1")
    try:
        with pytest.raises(WorkerError) as failed:
            train_all(store, backbone, overrides=FAST, dispatch=TWO)
    finally:
        ray_instance.write_text("")
    message = str(failed.value)
    assert "\n" not in message and "shard-1: its Ray worker died" in message
    assert sorted(_rows(store)) == ["shard-0-v1", "shard-2-v1", "shard-3-v1"]
    # the resume trains only the missing shard
    resumed = train_all(store, backbone, overrides=FAST, dispatch=TWO)
    assert [row["id"] for row in resumed] == ["shard-1-v1"]


def test_bad_ray_flags_exit_2_with_one_line(tmp_path):
    runner = CliRunner()
    for args in (["train", "--workers", "0"], ["train", "--gpus-per-job", "1"],
                 ["apply", "--ray-address", "127.0.0.1:1"],
                 ["verify", "-r", "r0001", "--ray-address", "not an address"]):
        result = runner.invoke(app, [*args, "--store", str(tmp_path / "none")])
        assert result.exit_code == 2, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output
    with pytest.raises(UsageError):
        DispatchOptions(workers=1, cpus_per_job=-1).check()


def test_an_address_that_answers_but_is_not_ray_is_refused_in_one_line(tmp_path):
    pytest.importorskip("ray")
    with socket.socket() as listener:  # answers TCP, speaks no Ray
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        result = CliRunner().invoke(app, ["apply", "--ray-address", address,
                                          "--store", str(tmp_path / "none")])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert f"{address} answers but is not a Ray cluster" in result.output \
        or "no Ray cluster could be joined" in result.output
    assert not (tmp_path / "none").exists()


def test_a_running_cluster_address_is_accepted(ray_instance):
    import ray

    address = ray.get_runtime_context().gcs_address
    assert DispatchOptions(address=address).check().address == address


def test_sequential_commands_never_import_ray(tmp_path):
    probe = (
        "import json, sys\n"
        "import apa_console.apa.adapters, apa_console.unlearning.forget\n"
        "import apa_console.unlearning.verify, apa_console.workflows.forget\n"
        "import apa_console.cli.app\n"
        "from apa_console.engine.dispatch import open_dispatcher\n"
        "from apa_console.engine.shard_jobs import SequentialDispatcher\n"
        "with open_dispatcher(None, None) as d: assert isinstance(d, SequentialDispatcher)\n"
        "print(json.dumps('ray' in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) is False
