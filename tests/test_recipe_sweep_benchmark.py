"""benchmarks.recipe_sweep on the tiny model and the demo data: one row per configuration,
a rerun resumes (finished configurations are not trained again), bad input fails in one line."""

from __future__ import annotations

import json

import pytest
from benchmark_process import run_benchmark


@pytest.mark.slow
def test_recipe_sweep_reports_each_configuration_and_resumes(tiny_model_dir, tmp_path):
    out = tmp_path / "sweep.json"
    common = ("--data", "demo", "--model", str(tiny_model_dir), "--train", "8", "--test", "24",
              "--json", str(out))
    first = run_benchmark("recipe_sweep", *common, "--configs", "1e-3:1")
    assert first.returncode == 0, first.stderr
    row = json.loads(out.read_text())["configs"]["lr 0.001, 1 epoch"]
    low, high = row["gain_over_base_interval_95"]
    assert 0 <= row["auc"] <= 1 and low <= high and row["epochs"] == 1
    second = run_benchmark("recipe_sweep", *common, "--configs", "1e-3:1", "3e-3:2")
    assert second.returncode == 0, second.stderr
    assert "lr 0.001, 1 epoch: done in an earlier run" in second.stdout
    report = json.loads(out.read_text())
    assert list(report["configs"]) == ["lr 0.001, 1 epoch", "lr 0.003, 2 epochs"]
    assert report["configs"]["lr 0.001, 1 epoch"] == row
    other_sizes = run_benchmark("recipe_sweep", *common[:-4], "--test", "12", "--json", str(out),
                                "--configs", "1e-3:1")
    assert other_sizes.returncode == 2 and "other sizes" in other_sizes.stderr


@pytest.mark.parametrize("args, message", [
    (["--configs", "1e-3"], "is not LR:EPOCHS"),
    (["--configs", "0:2"], "the rate must be > 0"),
    (["--train", "1"], "at least 2"),
])
def test_recipe_sweep_rejects_bad_settings(args, message):
    result = run_benchmark("recipe_sweep", *args)
    assert result.returncode == 2 and message in result.stderr
